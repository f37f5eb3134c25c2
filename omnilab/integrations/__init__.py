"""Adapters that let agent frameworks use a lab's memory: ``omnilab.integrations.langchain`` and
``omnilab.integrations.llamaindex``.

Nothing is imported here: each adapter module imports its framework when it is imported itself, and
says which extra to install (``pip install 'omnilab[langchain]'`` / ``'omnilab[llamaindex]'``) if it is
missing. SQL stays the truth: both adapters write memories through the lab, so what an agent stores is
what a notebook studies.
"""

__all__: list[str] = []
