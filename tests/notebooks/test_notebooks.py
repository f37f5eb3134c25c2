"""Every notebook in notebooks/ is stored without outputs and runs top to bottom headless.

Convention: a cell tagged ``parameters`` defines ``lab_path = None``; with None the notebook makes a fresh
lab in a temporary directory and loads the sample. It also defines ``embedder = None``: the lab's recorded
embedder, so a notebook opens any existing lab (the demo's MiniLM lab too). Here each runs on its own fresh
lab directory with the fast hashing embedder, passed explicitly.
"""

from pathlib import Path

import nbformat
import pytest

import omnilab

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"

#: every notebook the suite runs headless; add new notebooks here (a test below fails for one left out)
NOTEBOOK_NAMES = [
    "00_tour",
    "01_ingest_memories",
    "02_tune_search_thresholds",
    "03_agent_performance",
    "04_search_ui",
    "05_attach_platform",
]
NOTEBOOKS = [NOTEBOOK_DIR / f"{name}.ipynb" for name in NOTEBOOK_NAMES]


def test_every_notebook_is_listed():
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOK_NAMES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_without_outputs_and_parameterized(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has stored outputs"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "lab_path = None" in tagged[0].source
    assert "embedder = None" in tagged[0].source  # the lab's own embedder unless told otherwise
    assert "%matplotlib" not in "".join(c.source for c in nb.cells)  # figures show without magics


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_runs_headless(path, tmp_path):
    papermill = pytest.importorskip("papermill", reason="the jupyter extra is not installed")
    out = tmp_path / path.name
    papermill.execute_notebook(
        str(path), str(out), parameters={"lab_path": str(tmp_path / "lab"), "embedder": "hashing"},
        kernel_name="python3",
        cwd=str(tmp_path), progress_bar=False, request_save_on_cell_execute=False, execution_timeout=600,
    )
    executed = nbformat.read(out, as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert any(c.outputs for c in executed.cells if c.cell_type == "code")


def test_notebook_opens_a_lab_with_its_recorded_embedder(tmp_path):
    """A lab made with another embedder (as the demo's MiniLM lab is) opens with the notebook's defaults."""
    papermill = pytest.importorskip("papermill", reason="the jupyter extra is not installed")
    lab_path = tmp_path / "lab"
    with omnilab.open(lab_path, embedder="hashing:256") as lab:
        lab.load_sample("small")
    with omnilab.open(lab_path) as lab:  # no embedder: the recorded one, not the default
        assert lab.memory.embedder.name == "hashing-v1:256"
    out = tmp_path / "00_tour.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK_DIR / "00_tour.ipynb"), str(out), parameters={"lab_path": str(lab_path)},
        kernel_name="python3", cwd=str(tmp_path), progress_bar=False, request_save_on_cell_execute=False,
        execution_timeout=600,
    )
    executed = nbformat.read(out, as_version=4)
    # with embedder="hashing" (the old default) the first cell raised ConfigError: another embedder's lab
    assert not [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
