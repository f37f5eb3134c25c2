"""Charts: each returns a matplotlib Figure with a title, axis units and sorted bars; nothing is shown."""

from __future__ import annotations

import io

import matplotlib
import pandas as pd
import pytest
from matplotlib.figure import Figure

from omnilab.analysis import plots
from omnilab.errors import InvalidInput

CHARTS = [
    "success_by_agent",
    "execution_time_distribution",
    "daily_trend",
    "token_use",
    "error_mix",
    "cost_by_model",
    "latency_by_model",
]


def _render(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


@pytest.mark.parametrize("name", CHARTS)
def test_lab_plot_returns_a_titled_figure(data_lab, now, name):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = getattr(data_lab.plot, name)(days=30, now=now)
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == before  # not registered with pyplot: never shown, never leaked
    ax = fig.axes[0]
    title = fig.get_suptitle() or ax.get_title()
    assert "30 days" in title
    assert ax.get_xlabel() or ax.get_ylabel()
    assert _render(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_workload_chart_sorted(data_lab):
    fig = data_lab.plot.workload()
    ax = fig.axes[0]
    widths = [p.get_width() for p in ax.patches]
    assert widths == sorted(widths)  # barh draws bottom-up: busiest agent at the top
    assert len(widths) == len(data_lab.agent_workload())
    assert "active tasks" in ax.get_xlabel()


def test_success_by_agent_groups_by_system_and_sorts(data_lab, now):
    summary = data_lab.performance_summary(30, now=now)
    fig = plots.success_by_agent(summary, days=30)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == len(summary)  # every agent, including those without runs
    systems = [label.rsplit("(", 1)[1].rstrip(")") for label in labels]
    # each system's bars are contiguous
    blocks = [s for i, s in enumerate(systems) if i == 0 or systems[i - 1] != s]
    assert len(blocks) == len(set(systems))
    # inside a system, bars grow upwards (best agent at the top of its block)
    widths = [p.get_width() for p in ax.patches]
    for system in set(systems):
        mine = [w for w, s in zip(widths, systems) if s == system]
        assert mine == sorted(mine)
    assert ax.get_xlabel().startswith("success rate (%)")
    assert set(systems) == set(summary["system_name"])


def test_repeated_names_get_their_id_and_unknown_outcomes_are_labelled():
    summary = pd.DataFrame(
        {
            "agent_id": ["a1", "a2", "a3"],
            "name": ["coder", "coder", "tester"],
            "system_name": ["S", "S", "T"],
            "total_tasks": [10, 4, 0],
            "successful_tasks": [5, 0, 0],
            "failed_tasks": [5, 0, 0],
            "success_rate": [50.0, float("nan"), float("nan")],
            "total_tokens": [100, 7, 0],
        }
    )
    ax = plots.success_by_agent(summary, days=7).axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(labels) == ["coder [a1] (S)", "coder [a2] (S)", "tester (T)"]
    notes = {t.get_text() for t in ax.texts}
    assert {"50.0% of 10", "4 runs, outcome unknown", "no runs"} <= notes
    tokens = plots.token_use(summary, days=7).axes[0]
    assert [t.get_text() for t in tokens.get_yticklabels()] == ["tester", "coder [a2]", "coder [a1]"]


def test_token_use_sorted_and_in_thousands(data_lab, now):
    summary = data_lab.performance_summary(30, now=now)
    fig = plots.token_use(summary, days=30)
    widths = [p.get_width() for p in fig.axes[0].patches]
    assert widths == sorted(widths)
    assert max(widths) == pytest.approx(summary["total_tokens"].max() / 1000)
    assert "thousands" in fig.axes[0].get_xlabel()


def test_charts_handle_empty_frames(lab):
    figs = [
        lab.plot.success_by_agent(),
        lab.plot.execution_time_distribution(),
        lab.plot.daily_trend(7),
        lab.plot.workload(),
        lab.plot.token_use(),
        lab.plot.error_mix(),
        lab.plot.cost_by_model(),
        lab.plot.latency_by_model(),
    ]
    for fig in figs:
        assert isinstance(fig, Figure) and _render(fig)
    # an empty lab: a note in the middle, no axis ticks that pretend there is data
    for fig in figs[-2:]:
        ax = fig.axes[0]
        assert any("no API" in t.get_text() for t in ax.texts)
        assert len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0


def test_success_chart_draws_wilson_error_bars(data_lab, now):
    summary = data_lab.performance_summary(30, now=now)
    ax = plots.success_by_agent(summary, days=30).axes[0]
    bars = [c for c in ax.containers if c.__class__.__name__ == "ErrorbarContainer"]
    assert len(bars) == 1
    segments = bars[0].lines[2][0].get_segments()  # one horizontal segment per agent with a known rate
    known = summary.dropna(subset=["success_rate"])
    assert len(segments) == len(known)
    spans = sorted((round(seg[0][0], 9), round(seg[1][0], 9)) for seg in segments)
    expected = sorted(zip(known["success_rate_low"].round(9), known["success_rate_high"].round(9)))
    assert spans == expected
    assert "Wilson" in ax.get_xlabel()


def test_daily_trend_marks_partial_days(data_lab, now):
    trend = data_lab.daily_trend(7, now=now)
    assert trend["partial"].sum() == 2
    ax = plots.daily_trend(trend, days=7).axes[0]
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 2
    assert "runs (partial day)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_model_charts_match_model_usage(data_lab, now):
    total = data_lab.model_usage(30, now=now, by_day=False)
    ax = plots.latency_by_model(total, days=30).axes[0]
    widths = sorted(round(p.get_width(), 6) for p in ax.patches)
    expected = sorted(round(v, 6) for c in ("p50_ms", "p95_ms", "p99_ms") for v in total[c].dropna())
    assert widths == expected and ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert any(label.startswith("(none)/(none)") for label in labels)
    assert any(label.startswith("azure/gpt-4o") for label in labels) and any(
        label.startswith("openai/gpt-4o") for label in labels
    )  # same model name, two providers: two rows
    daily = data_lab.model_usage(30, now=now)
    cost_ax = plots.cost_by_model(daily, days=30).axes[0]
    heights = sum(p.get_height() for p in cost_ax.patches)
    assert heights == pytest.approx(daily["cost_usd"].sum())
    assert cost_ax.get_ylabel() == "cost (USD)"


def test_bad_frames_raise_invalid_input():
    with pytest.raises(InvalidInput):
        plots.workload(pd.DataFrame({"x": [1]}))
    with pytest.raises(InvalidInput):
        plots.daily_trend([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        plots.success_by_agent(pd.DataFrame(), days=0)


def test_no_pyplot_backend_switch():
    # importing the module must not change the user's backend (e.g. inline in Jupyter)
    backend = matplotlib.get_backend()
    import importlib

    importlib.reload(plots)
    assert matplotlib.get_backend() == backend
