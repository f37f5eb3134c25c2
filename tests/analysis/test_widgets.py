"""SearchUI and ThresholdTuner driven like a user would (set ``.value``, ``.click()``), no browser; the plain
functions behind them checked directly. Every lab test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

pytest.importorskip("ipywidgets", reason="the jupyter extra is not installed")

from omnilab.analysis import tuning  # noqa: E402
from omnilab.analysis.widgets import (  # noqa: E402
    SearchUI,
    ThresholdTuner,
    build_where,
    highlight,
    query_terms,
    results_html,
    run_search,
)
from omnilab.errors import InvalidInput  # noqa: E402

MEMORIES = [
    ("parse a date string into a datetime object", "code", "coder_a", ["python", "dates"]),
    ("render an html page from a template", "code", "coder_b", ["python", "web"]),
    ("retry a failed http request with exponential backoff", "code", "coder_a", ["python", "web"]),
    ("the queue drains tasks in priority order", "knowledge", "analyst", ["design"]),
    ("split a shell command line into tokens <script>alert(1)</script>", "code", "coder_b", ["python", "shell"]),
]


@pytest.fixture
def filled(lab):
    lab.insert("agents", [{"id": a, "name": a, "agent_type": "coder"} for a in ("coder_a", "coder_b", "analyst")])
    ids = [lab.remember(c, t, agent_id=a, tags=tags) for c, t, a, tags in MEMORIES]
    return lab, ids


# ---------------------------------------------------------------------------------- plain functions
def test_build_where_and_terms():
    assert build_where("(any)", "") is None
    assert build_where("coder_a", None) == {"agent_id": "coder_a"}
    assert build_where(None, "web, python") == {"$and": [{"tags": {"$contains": "web"}},
                                                         {"tags": {"$contains": "python"}}]}
    assert query_terms("Parse the date of a 2 string") == ["parse", "date", "2", "string"]


def test_highlight_escapes_and_marks():
    out = highlight("split <b>tokens</b> & Split again", ["split", "tokens"])
    assert "<b>" not in out and "&lt;b&gt;" in out and "&amp;" in out
    assert out.count("<mark>") == 3 and "<mark>Split</mark>" in out
    assert "<mark>" not in highlight("metadata", ["data"])  # word starts only
    long = "x " * 400 + "needle here"
    assert "<mark>needle</mark>" in highlight(long, ["needle"]) and highlight(long, ["needle"]).startswith("…")


def test_run_search_refuses_bad_input(filled):
    lab, _ = filled
    with pytest.raises(InvalidInput):
        run_search(lab, "   ")
    with pytest.raises(InvalidInput):
        run_search(lab, "date", mode="fuzzy")


# ------------------------------------------------------------------------------------- SearchUI
def test_search_ui_shows_what_lab_search_returns(filled):
    lab, ids = filled
    ui = SearchUI(lab, memory_type="code", k=3)
    ui.query.value = "parse date"  # Enter/blur in the box searches once
    expected = lab.search("parse date", memory_type="code", k=3)
    assert ui.frame["memory_id"].tolist() == expected["memory_id"].tolist()
    assert ui.frame["memory_id"].iloc[0] == ids[0]
    html = ui.results.value
    assert "omnilab-results" in html and f"data-memory-id='{ids[0]}'" in html
    assert "<mark>parse</mark>" in html and "<mark>date</mark>" in html
    assert f"{expected['score'].iloc[0]:.3f}" in html
    assert "ms" in ui.latency.value and ui.seconds > 0
    assert html.count("<tr data-memory-id") == 3


def test_search_ui_filters_threshold_and_modes(filled):
    lab, ids = filled
    ui = SearchUI(lab)
    ui.memory_type.value = "(all)"
    ui.k.value = 10
    ui.query.value = "web request"
    ui.agent.value = "coder_a"
    ui.button.click()
    assert set(ui.frame["agent_id"]) == {"coder_a"} and ids[2] in ui.frame["memory_id"].tolist()
    ui.agent.value = "(any)"
    ui.tags.value = "web, python"
    ui.button.click()
    assert set(ui.frame["memory_id"]) == {ids[1], ids[2]}
    ui.tags.value = ""
    # threshold: exactly the results with cosine >= t
    everything = lab.search("web request", k=10)
    t = float(everything["score"].iloc[1])
    ui.threshold.value = round(t, 2)
    ui.button.click()
    assert ui.frame["memory_id"].tolist() == lab.search("web request", k=10, threshold=ui.threshold.value)[
        "memory_id"].tolist()
    assert (ui.frame["score"] >= ui.threshold.value).all()
    # hybrid: the fused ranking, threshold disabled (fused scores are not cosines)
    ui.mode.value = "hybrid"
    assert ui.threshold.disabled
    ui.button.click()
    assert ui.frame["memory_id"].tolist() == lab.hybrid_search("web request", k=10)["memory_id"].tolist()
    assert "keyword" in ui.results.value
    ui.mode.value = "semantic"
    assert not ui.threshold.disabled


def test_search_ui_errors_and_empty_results(filled):
    lab, _ = filled
    ui = SearchUI(lab)
    ui.button.click()  # no query yet
    assert "omnilab-error" in ui.results.value and ui.frame.empty
    assert "type a query first" in ui.output.outputs[-1]["text"]
    ui.query.value = "date"
    ui.threshold.value = 1.0
    ui.button.click()
    assert ui.frame.empty and "no matching memories" in ui.results.value
    ui.threshold.value = 0.0
    ui.tags.value = "no-such-tag"
    ui.button.click()
    assert ui.frame.empty


def test_search_ui_marks_and_preselects_the_tuned_threshold(filled):
    lab, _ = filled
    ui = SearchUI(lab, memory_type="code")
    assert ui.tuned_value is None and "no tuned threshold" in ui.tuned.value
    lab.save_threshold(0.42, memory_type="code")
    ui.memory_type.value = "knowledge"
    ui.memory_type.value = "code"
    assert ui.tuned_value == pytest.approx(0.42) and ui.threshold.value == pytest.approx(0.42)
    assert "0.420" in ui.tuned.value and "left:42.0%" in ui.tuned.value


# ------------------------------------------------------------------------------- ThresholdTuner
def test_threshold_tuner_live_point_and_save(filled):
    lab, ids = filled
    labels = {"parse a date": [ids[0]], "http request retry": [ids[2]], "html template page": [ids[1]],
              "shell tokens": [ids[4]]}
    tuner = ThresholdTuner(lab, labels, memory_type="code", k=3)
    res = tuner.result
    assert tuner.slider.value == pytest.approx(round(res.threshold, 3))
    hits = res.hits
    for t in (0.0, 0.2, 0.35, 0.5, 0.9):
        tuner.slider.value = t
        keep = hits[hits["score"] >= t]
        tp = int(keep["relevant"].sum())
        assert tuner.point["retrieved"] == len(keep) and tuner.point["tp"] == tp
        assert tuner.point["f1"] == pytest.approx(2 * tp / (len(keep) + 4))
        assert f"threshold {t:.3f}" in tuner.readout.value
    tuner.slider.value = 0.3
    tuner.save_button.click()
    assert tuning.get_threshold(lab, "code") == pytest.approx(0.3)
    assert "saved 0.300" in tuner.saved.value
    assert tuner.figure.value[:8] == b"\x89PNG\r\n\x1a\n"  # the curve with the live point, redrawn


def test_results_html_of_an_empty_frame():
    import pandas as pd

    assert "no matching memories" in results_html(pd.DataFrame(), "x", seconds=0.001)


# --------------------------------------------------------------------------------- the web app
def test_ui_command_refuses_a_missing_lab(tmp_path, capsys):
    from omnilab.cli import main

    assert main(["ui", "--lab", str(tmp_path / "nowhere"), "--port", "18999"]) == 2
    assert "no lab at" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()  # nothing created


def test_app_notebook_and_command(tmp_path):
    import nbformat

    from omnilab.analysis import app

    nb = nbformat.read(app.write_app_notebook(tmp_path), as_version=4)
    assert nb.cells[-1].source == app.APP_CODE and "SearchUI(lab)" in app.APP_CODE
    cmd = app.voila_command(tmp_path / "x.ipynb", 8123)
    assert "--Voila.ip=127.0.0.1" in cmd and "--no-browser" in cmd and "--port=8123" in cmd
