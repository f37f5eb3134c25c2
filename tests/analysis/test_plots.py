"""Charts: each returns a matplotlib Figure with a title, axis units and sorted bars; nothing is shown."""

from __future__ import annotations

import io

import matplotlib
import pandas as pd
import pytest
from matplotlib.figure import Figure

from omnilab.analysis import plots
from omnilab.errors import InvalidInput

CHARTS = ["success_by_agent", "execution_time_distribution", "daily_trend", "token_use", "error_mix"]


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
    assert ax.get_xlabel() == "success rate (%)"
    assert set(systems) == set(summary["system_name"])


def test_repeated_names_get_their_id_and_unknown_outcomes_are_labelled():
    summary = pd.DataFrame({
        "agent_id": ["a1", "a2", "a3"], "name": ["coder", "coder", "tester"], "system_name": ["S", "S", "T"],
        "total_tasks": [10, 4, 0], "successful_tasks": [5, 0, 0], "failed_tasks": [5, 0, 0],
        "success_rate": [50.0, float("nan"), float("nan")], "total_tokens": [100, 7, 0]})
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
    figs = [lab.plot.success_by_agent(), lab.plot.execution_time_distribution(), lab.plot.daily_trend(7),
            lab.plot.workload(), lab.plot.token_use(), lab.plot.error_mix()]
    for fig in figs:
        assert isinstance(fig, Figure) and _render(fig)


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
