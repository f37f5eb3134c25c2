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
    format_score,
    highlight,
    query_terms,
    results_html,
    run_search,
    search_once,
    status_html,
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
    assert build_where(None, "web, python") == {
        "$and": [{"tags": {"$contains": "web"}}, {"tags": {"$contains": "python"}}]
    }
    assert query_terms("Parse the date of a 2 string") == ["parse", "date", "2", "string"]


def test_highlight_escapes_and_marks():
    out = highlight("split <b>tokens</b> & Split again", ["split", "tokens"])
    assert "<b>" not in out and "&lt;b&gt;" in out and "&amp;" in out
    assert out.count("<mark>") == 3 and "<mark>Split</mark>" in out
    assert "<mark>" not in highlight("metadata", ["data"])  # whole words only
    assert "<mark>" not in highlight("datetime updated", ["date"])
    assert highlight("parse_date(x) and a date.", ["date"]).count("<mark>date</mark>") == 2  # "_" separates words
    assert highlight("Parse dates", ["parse", "date"]) == "<mark>Parse</mark> dates"
    long = "x " * 400 + "needle here"
    assert "<mark>needle</mark>" in highlight(long, ["needle"]) and highlight(long, ["needle"]).startswith("…")


def test_run_search_refuses_bad_input(filled):
    lab, _ = filled
    with pytest.raises(InvalidInput):
        run_search(lab, "   ")
    with pytest.raises(InvalidInput):
        run_search(lab, "date", mode="fuzzy")


# ------------------------------------------------------------------------------------- SearchUI
def test_format_score():
    assert format_score(0.12345) == "0.123" and format_score(float("nan")) == "—" and format_score(None) == "—"


def test_search_ui_searches_every_type_by_default(filled):
    lab, ids = filled
    ui = SearchUI(lab)
    assert ui.memory_type.value == "(all)"
    ui.query.value = "queue tasks priority order"
    assert set(ui.frame["memory_type"]) == {"code", "knowledge"}  # k=10 over 5 memories: every one
    assert ui.frame["memory_id"].iloc[0] == ids[3]  # the knowledge memory is found


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
    assert " ms" not in html  # the latency is shown once, in the status line
    assert ui.latency.value.count(" ms") == 1 and "3 results in" in ui.latency.value


def test_agent_column_shows_names_and_a_dash_without_agent(filled):
    lab, ids = filled
    lab.insert("agents", [{"id": "agent_007", "name": "Bond", "agent_type": "coder"}])
    lab.remember("parse a date with the agent who wrote it", "code", agent_id="agent_007")
    lab.remember("parse a date, written by nobody in particular", "code")
    ui = SearchUI(lab, memory_type="code")
    ui.query.value = "parse a date"
    html = ui.results.value
    assert "<td class='omnilab-agent' title='agent_007'>Bond</td>" in html
    assert "title='no agent recorded for this memory'>—</td>" in html
    assert "<td class='omnilab-agent' title='coder_a'>coder_a</td>" in html
    assert "nan" not in html and "None" not in html
    assert ("Bond (agent_007)", "agent_007") in ui.agent.options  # the filter names agents too


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
    assert (
        ui.frame["memory_id"].tolist()
        == lab.search("web request", k=10, threshold=ui.threshold.value)["memory_id"].tolist()
    )
    assert (ui.frame["score"] >= ui.threshold.value).all()
    # hybrid: the fused ranking; the threshold applies to each hit's cosine, never shows one below it
    ui.mode.value = "hybrid"
    ui.button.click()
    fused = lab.hybrid_search("web request", k=10)
    expected = fused[fused["vector_score"] >= ui.threshold.value]
    assert ui.frame["memory_id"].tolist() == expected["memory_id"].tolist()
    assert (ui.frame["vector_score"] >= ui.threshold.value).all() and len(ui.frame) < len(fused)
    assert "keyword" in ui.results.value
    assert f"hid {len(fused) - len(expected)} of the top 10" in ui.latency.value and "hybrid" in ui.latency.value
    ui.threshold.value = 0.0
    ui.button.click()
    assert ui.frame["memory_id"].tolist() == fused["memory_id"].tolist() and "hid" not in ui.latency.value
    ui.mode.value = "semantic"


def test_search_ui_errors_and_empty_results(filled):
    lab, _ = filled
    ui = SearchUI(lab)
    ui.button.click()  # no query yet
    assert "omnilab-error" in ui.results.value and ui.frame.empty
    assert "type a query first" in ui.output.outputs[-1]["text"]
    ui.query.value = "date"
    ui.threshold.value = 1.0
    ui.button.click()
    assert ui.frame.empty and "no result reaches 1.000" in ui.results.value and "hid" in ui.latency.value
    ui.threshold.value = 0.0
    ui.tags.value = "no-such-tag"
    ui.button.click()
    assert ui.frame.empty and "no matching memories" in ui.results.value and "hid" not in ui.latency.value


def test_search_ui_marks_and_preselects_the_tuned_threshold(filled):
    lab, _ = filled
    ui = SearchUI(lab, memory_type="code")
    assert ui.tuned_value is None and "no tuned threshold" in ui.tuned.value
    lab.save_threshold(0.4237, memory_type="code")
    ui.memory_type.value = "knowledge"
    ui.memory_type.value = "code"
    assert ui.tuned_value == pytest.approx(0.4237) and ui.threshold.value == pytest.approx(0.4237)  # not rounded
    assert "0.424" in ui.tuned.value
    # the tick is drawn on this slider's own track, at the tuned value
    assert ui.slider_class in ui.threshold._dom_classes
    assert f".{ui.slider_class} .noUi-base::after" in ui.tuned.value and "left:calc(42.37% - 1.5px)" in ui.tuned.value


def test_a_tuned_threshold_that_cuts_results_says_so(filled):
    lab, ids = filled
    scores = lab.search("parse a date string", memory_type="code", k=10)["score"]
    tuned = float(scores.iloc[0]) + 0.01  # above every hit: the tuned search returns nothing
    lab.save_threshold(tuned, memory_type="code")
    ui = SearchUI(lab, memory_type="code")
    ui.query.value = "parse a date string"
    assert ui.frame.empty
    assert "no matching memories" not in ui.results.value and "no result reaches" in ui.results.value
    status = ui.latency.value
    assert "0 results" in status and f"the tuned threshold {tuned:.3f} for code / " in status
    assert f"hid {len(scores)} of the top 10" in status and f"{scores.iloc[0]:.3f}" in status
    ui.threshold.value = float(scores.iloc[1])  # a hand-picked threshold is not called tuned
    ui.button.click()
    assert len(ui.frame) == 2 and f"the threshold {scores.iloc[1]:.3f} hid {len(scores) - 2}" in ui.latency.value


def test_search_once_counts_what_the_threshold_hides(filled):
    lab, _ = filled
    everything = lab.search("web request", k=10)
    t = float(everything["score"].iloc[2])
    outcome = search_once(lab, "web request", k=10, threshold=t)
    assert outcome.frame["memory_id"].tolist() == lab.search("web request", k=10, threshold=t)["memory_id"].tolist()
    assert outcome.cut == len(everything) - len(outcome.frame) and outcome.best_cut == pytest.approx(
        everything["score"].iloc[len(outcome.frame)]
    )
    assert "hid" not in status_html(search_once(lab, "web request", k=10), k=10)


# ------------------------------------------------------------------------------- ThresholdTuner
def test_threshold_tuner_live_point_and_save(filled):
    lab, ids = filled
    labels = {
        "parse a date": [ids[0]],
        "http request retry": [ids[2]],
        "html template page": [ids[1]],
        "shell tokens": [ids[4]],
    }
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


def test_threshold_tuner_scores_scratch_labels_in_their_lab_and_saves_into_the_users(filled, tmp_path):
    import omnilab

    scratch, ids = filled  # stands in for the scratch lab stdlib_labels builds
    labels = tuning.StdlibLabels(
        labels=tuning.normalize_labels({"parse a date": [ids[0]], "http request retry": [ids[2]]}),
        lab=scratch,
        scratch=tmp_path / "scratch",
    )
    with omnilab.open(tmp_path / "mine", embedder="hashing") as mine:
        tuner = ThresholdTuner(mine, labels, memory_type="code", k=3, plot=False)
        assert tuner.result.n_queries == 2
        tuner.slider.value = 0.25
        tuner.save_button.click()
        assert tuning.get_threshold(mine, "code") == pytest.approx(0.25)
    assert tuning.get_threshold(scratch, "code") is None


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
    assert "SearchUI(lab)" in app.APP_CODE  # every memory type by default
    # kernels of closed pages go: the page's shutdown beacon is accepted, idle unconnected kernels are culled
    assert f"--MappingKernelManager.cull_idle_timeout={app.IDLE_KERNEL_SECONDS}" in cmd
    assert "--MappingKernelManager.cull_connected=False" in cmd
    assert '--Voila.tornado_settings={"disable_check_xsrf": True}' in cmd
