"""Every chart helper shows as a PNG in a real Jupyter kernel without any ``%matplotlib`` magic (also when
MPLBACKEND=Agg, as in CI), exactly once with ``%matplotlib inline``, and never leaves a pyplot figure open."""

from __future__ import annotations

import json
import os

import nbformat
import pytest

import omnilab
from omnilab.analysis import plots

nbclient = pytest.importorskip("nbclient", reason="the jupyter extra is not installed")

#: one cell per chart helper: lab.plot.<name> for every chart, the plain functions, and tuning.plot_curves
CHART_CELLS = {
    **{f"lab.plot.{name}": (f"lab.plot.{name}()" if name == "workload" else f"lab.plot.{name}(30)")
       for name in plots.CHARTS},
    "plots.success_by_agent": "plots.success_by_agent(lab.performance_summary(30), days=30)",
    "plots.daily_trend": "plots.daily_trend(lab.daily_trend(30), days=30)",
    "plots.latency_by_model": "plots.latency_by_model(lab.model_usage(30, by_day=False), days=30)",
    "tuning.plot_curves": "tuning.plot_curves(tuning.tune(lab, labels, memory_type='code', k=5))",
}


@pytest.fixture(scope="module")
def chart_lab(tmp_path_factory) -> tuple[str, dict[str, list[str]]]:
    """A hashing lab with the small sample, embedded, and labels for a threshold curve: (path, labels)."""
    path = tmp_path_factory.mktemp("figures") / "lab"
    with omnilab.open(path, embedder="hashing") as lab:
        lab.load_sample("small")
        lab.memory.reconcile()
        code = lab.memories("code").head(12)
        labels = {" ".join(str(c).split()[:8]): [mid] for mid, c in zip(code["id"], code["content"])}
    return str(path), labels


def _notebook(lab_path: str, labels: dict[str, list[str]], magic: bool) -> nbformat.NotebookNode:
    setup = ("%matplotlib inline\n" if magic else "") + (
        "import omnilab\nfrom omnilab.analysis import plots, tuning\n\n"
        f"lab = omnilab.open({lab_path!r})  # the lab's recorded embedder (hashing)\n"
        f"labels = {json.dumps(labels)}")
    cells = [nbformat.v4.new_code_cell(setup)]
    for name, code in CHART_CELLS.items():
        cells.append(nbformat.v4.new_code_cell(code, metadata={"chart": name}))
    cells.append(nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\nprint('open pyplot figures:', plt.get_fignums())\nlab.close()"))
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.mark.parametrize("backend, magic", [("Agg", False), (None, False), ("Agg", True)],
                         ids=["MPLBACKEND=Agg", "kernel-default-backend", "with-%matplotlib-inline"])
def test_every_chart_helper_shows_one_png(chart_lab, tmp_path, backend, magic):
    lab_path, labels = chart_lab
    nb = _notebook(lab_path, labels, magic)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    if backend:
        env["MPLBACKEND"] = backend
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}
                            ).execute(env=env)
    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors[0]["evalue"] if errors else ""
    for cell in nb.cells[1:-1]:
        pngs = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        assert len(pngs) == 1, f"{cell.metadata['chart']}: {[o.get('data', {}).keys() for o in cell.outputs]}"
        png = pngs[0]["data"]["image/png"]
        assert png.startswith("iVBORw0KGgo")  # base64 of the PNG signature
    last = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert "open pyplot figures: []" in last  # nothing leaked into pyplot
