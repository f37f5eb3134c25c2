"""Analysis on top of the stores: charts (``plots``), the HTML report (``report``) and notebook helpers.

Submodules are imported on demand so ``import omnilab`` stays light (no matplotlib until a chart is drawn).
"""
