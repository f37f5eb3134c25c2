"""Charts of agent performance. Each function takes the DataFrame of the matching query and returns a
matplotlib ``Figure``; ``lab.plot.<name>(days=…)`` runs the query and draws it in one call.

Figures are built with the object API (``matplotlib.figure.Figure``), not pyplot: nothing is shown,
nothing leaks into pyplot's global figure list, whatever backend is active, and ``savefig`` renders
them with Agg, headless, in scripts, reports and CI. In Jupyter a returned figure displays as a PNG
without ``%matplotlib inline``: it is a :class:`NotebookFigure`, whose ``_repr_png_`` IPython calls when
no inline backend registered a formatter for figures (with one, that formatter draws it, once).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from omnilab.errors import InvalidInput

__all__ = [
    "NotebookFigure",
    "figure_png",
    "success_by_agent",
    "execution_time_distribution",
    "daily_trend",
    "workload",
    "token_use",
    "error_mix",
    "cost_by_model",
    "latency_by_model",
    "model_label",
    "LabPlots",
    "CHARTS",
]

_PALETTE = [
    "#4C72B0",
    "#DD8452",
    "#55A868",
    "#C44E52",
    "#8172B3",
    "#937860",
    "#DA8BC3",
    "#8C8C8C",
    "#CCB974",
    "#64B5CD",
]


def _need(frame: Any, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(f"{what} needs a DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(f"{what} needs column(s) {', '.join(missing)}")
    return frame


def figure_png(fig: Figure, *, dpi: float | None = None, tight: bool = False) -> bytes:
    """``fig`` as PNG bytes, rendered with Agg whatever backend is active (nothing is shown)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi if dpi is not None else "figure", bbox_inches="tight" if tight else None)
    return buf.getvalue()


class NotebookFigure(Figure):
    """A matplotlib ``Figure`` that shows itself as a PNG in Jupyter without ``%matplotlib inline``.

    Built with the object API it never enters pyplot, so no inline backend flushes it a second time."""

    def _repr_png_(self) -> bytes:
        return figure_png(self, tight=True)


def _figure(height: float, width: float = 9.0) -> NotebookFigure:
    return NotebookFigure(figsize=(width, max(2.5, height)), layout="constrained")


def _system_colors(systems: Any) -> dict[str, str]:
    return {s: _PALETTE[i % len(_PALETTE)] for i, s in enumerate(sorted(map(str, pd.unique(systems))))}


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def _window(days: int | None) -> str:
    return f" — last {days} days" if days else ""


def _labels(data: pd.DataFrame) -> pd.Series:
    """Agent names, with the id added where a name is not unique (the platform allows repeats)."""
    names = data["name"].astype(str)
    if "agent_id" not in data:
        return names
    repeated = names.duplicated(keep=False)
    return names.where(~repeated, names + " [" + data["agent_id"].astype(str) + "]")


def _known_outcomes(data: pd.DataFrame) -> pd.Series:
    """Runs with a known success per row: successful + failed when the frame has them, else total_tasks."""
    if {"successful_tasks", "failed_tasks"} <= set(data.columns):
        return data["successful_tasks"] + data["failed_tasks"]
    return data["total_tasks"]


def success_by_agent(summary: pd.DataFrame, *, days: int | None = None) -> Figure:
    """Horizontal bars of success rate (%) per agent, grouped by system_name (systems ordered by their
    overall success rate, agents best-first inside each), annotated with the number of runs; with
    ``success_rate_low`` / ``_high`` columns, their 95 % Wilson interval as error bars."""
    _need(summary, ("name", "system_name", "total_tasks", "success_rate"), "success_by_agent")
    data = summary.copy()
    data["system_name"] = data["system_name"].astype(str)
    data["_label"] = _labels(data)
    known = _known_outcomes(data)
    wins = (data["success_rate"].fillna(0) * known / 100).groupby(data["system_name"]).sum()
    system_rate = (wins / known.groupby(data["system_name"]).sum().replace(0, np.nan)).fillna(-1)
    data["_sys_rank"] = data["system_name"].map(system_rate)
    data = data.sort_values(
        ["_sys_rank", "system_name", "success_rate", "_label"], ascending=[True, True, True, False], na_position="first"
    )
    fig = _figure(0.3 * len(data) + 1.2)
    ax = fig.add_subplot()
    if data.empty:
        _empty(ax, "no agents")
    else:
        colors = _system_colors(data["system_name"])
        y = np.arange(len(data))
        ax.barh(y, data["success_rate"].fillna(0), color=[colors[s] for s in data["system_name"]])
        has_ci = {"success_rate_low", "success_rate_high"} <= set(data.columns)
        if has_ci and data["success_rate"].notna().any():
            known = data["success_rate"].notna().to_numpy()
            rate = data["success_rate"].to_numpy(float)
            err = np.vstack(
                [rate - data["success_rate_low"].to_numpy(float), data["success_rate_high"].to_numpy(float) - rate]
            )
            ax.errorbar(
                rate[known],
                y[known],
                xerr=err[:, known],
                fmt="none",
                ecolor="#333333",
                elinewidth=0.8,
                capsize=2,
                label="95% Wilson interval",
            )
        ax.set_yticks(y, [f"{n} ({s})" for n, s in zip(data["_label"], data["system_name"])], fontsize=8)
        ends = data["success_rate_high"] if has_ci else data["success_rate"]
        for yi, rate, end, n in zip(y, data["success_rate"], ends, data["total_tasks"]):
            if pd.isna(rate):
                label = "no runs" if n == 0 else f"{n:,} runs, outcome unknown"
            else:
                label = f"{rate:.1f}% of {n:,}"
            ax.text(
                (0 if pd.isna(rate) else max(rate, end if pd.notna(end) else rate)) + 1,
                float(yi),
                label,
                va="center",
                fontsize=7,
            )
        ax.set_xlim(0, 115)
        handles = [Patch(color=c, label=s) for s, c in colors.items()]
        ax.legend(handles=handles, title="system_name", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set_xlabel("success rate (%)")
    ax.set_title(f"Success rate by agent, grouped by system{_window(days)}")
    if not data.empty and {"success_rate_low", "success_rate_high"} <= set(data.columns):
        ax.set_xlabel("success rate (%); error bars: 95% Wilson interval")
    return fig


def execution_time_distribution(times: pd.DataFrame, *, days: int | None = None) -> Figure:
    """Box plots of execution time (s, log scale) per system_name, fastest median at the top; runs
    without an execution time are left out."""
    _need(times, ("system_name", "execution_time"), "execution_time_distribution")
    fig = _figure(0.5 * max(1, times["system_name"].nunique()) + 1.5)
    ax = fig.add_subplot()
    positive = times[times["execution_time"] > 0]
    if positive.empty:
        _empty(ax, "no runs in the window")
    else:
        groups = positive.groupby("system_name")["execution_time"]
        order = groups.median().sort_values(ascending=False).index.tolist()
        values = [groups.get_group(s).to_numpy() for s in order]
        try:
            ax.boxplot(values, orientation="horizontal", showfliers=False)
        except TypeError:  # matplotlib < 3.10 has no `orientation`
            ax.boxplot(values, vert=False, showfliers=False)
        ax.set_yticks(np.arange(1, len(order) + 1), [f"{s} (n={len(groups.get_group(s)):,})" for s in order])
        ax.set_xscale("log")
    ax.set_xlabel("execution time (s, log scale; whiskers 1.5 IQR, outliers hidden)")
    ax.set_title(f"Execution-time distribution by system{_window(days)}")
    return fig


def daily_trend(trend: pd.DataFrame, *, days: int | None = None) -> Figure:
    """Runs per day (bars) and success rate (%) per day (line, right axis, with its 95 % Wilson band when
    the frame has ``success_rate_low`` / ``_high``); days the window covers only partly (``partial``)
    are hatched and lighter."""
    _need(trend, ("day", "total_tasks", "success_rate"), "daily_trend")
    fig = _figure(4.0, 10.0)
    ax = fig.add_subplot()
    if trend.empty:
        _empty(ax, "no days in the window")
    else:
        data = trend.sort_values("day")
        x = pd.to_datetime(data["day"]).dt.tz_localize(None)
        partial = data["partial"].to_numpy(bool) if "partial" in data else np.zeros(len(data), bool)
        ax.bar(x[~partial], data["total_tasks"][~partial], color="#4C72B0", alpha=0.6, label="runs")
        if partial.any():
            ax.bar(
                x[partial],
                data["total_tasks"][partial],
                color="#4C72B0",
                alpha=0.25,
                hatch="//",
                edgecolor="#4C72B0",
                label="runs (partial day)",
            )
        ax.set_ylabel("runs per day")
        right = ax.twinx()
        if {"success_rate_low", "success_rate_high"} <= set(data.columns):
            right.fill_between(
                x,
                data["success_rate_low"],
                data["success_rate_high"],
                color="#C44E52",
                alpha=0.15,
                label="95% Wilson interval",
            )
        right.plot(x, data["success_rate"], color="#C44E52", marker="o", markersize=3, label="success rate")
        right.set_ylabel("success rate (%)")
        right.set_ylim(0, 105)
        ax.legend(
            handles=[*ax.get_legend_handles_labels()[0], *right.get_legend_handles_labels()[0]],
            loc="lower left",
            fontsize=8,
        )
        fig.autofmt_xdate()
    ax.set_xlabel("day (UTC)")
    ax.set_title(f"Daily runs and success rate{_window(days)}")
    return fig


def workload(frame: pd.DataFrame) -> Figure:
    """Active (pending/assigned/in-progress) tasks per available agent, busiest at the top."""
    _need(frame, ("name", "active_tasks"), "workload")
    data = frame.sort_values(["active_tasks", "name"], ascending=[True, False])
    fig = _figure(0.28 * len(data) + 1.2)
    ax = fig.add_subplot()
    if data.empty:
        _empty(ax, "no agent can take work (none idle or busy)")
    else:
        colors = _system_colors(data["system_name"]) if "system_name" in data else {}
        y = np.arange(len(data))
        ax.barh(
            y,
            data["active_tasks"],
            color=[colors.get(str(s), "#4C72B0") for s in data.get("system_name", ["?"] * len(data))],
        )
        ax.set_yticks(y, _labels(data), fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True))
    ax.set_xlabel("active tasks (pending, assigned, in progress)")
    ax.set_title("Workload of agents that can take work (idle or busy)")
    return fig


def token_use(summary: pd.DataFrame, *, days: int | None = None) -> Figure:
    """Total tokens per agent (runs without a count add 0), largest at the top, colored by system_name."""
    _need(summary, ("name", "system_name", "total_tokens"), "token_use")
    data = summary.sort_values(["total_tokens", "name"], ascending=[True, False])
    fig = _figure(0.28 * len(data) + 1.2)
    ax = fig.add_subplot()
    if data.empty:
        _empty(ax, "no agents")
    else:
        colors = _system_colors(data["system_name"])
        y = np.arange(len(data))
        ax.barh(y, data["total_tokens"] / 1000, color=[colors[str(s)] for s in data["system_name"]])
        ax.set_yticks(y, _labels(data), fontsize=8)
        handles = [Patch(color=c, label=s) for s, c in colors.items()]
        ax.legend(handles=handles, title="system_name", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set_xlabel("tokens used (thousands)")
    ax.set_title(f"Token use by agent{_window(days)}")
    return fig


def error_mix(errors: pd.DataFrame, *, days: int | None = None, top: int = 12) -> Figure:
    """Errors per component (stacked by severity), most errors at the top, plus the top error types."""
    _need(errors, ("component", "severity", "error_type", "errors"), "error_mix")
    fig = _figure(4.5, 11.0)
    left, right = fig.subplots(1, 2)
    if errors.empty:
        _empty(left, "no errors in the window")
        _empty(right, "no errors in the window")
    else:
        table = errors.pivot_table(index="component", columns="severity", values="errors", aggfunc="sum", fill_value=0)
        table = table.loc[table.sum(axis=1).sort_values().index]
        severities = [s for s in ("critical", "error", "warning", "info") if s in table.columns]
        severities += [s for s in table.columns if s not in severities]
        sev_colors = {"critical": "#8B0000", "error": "#C44E52", "warning": "#DD8452", "info": "#4C72B0"}
        base = np.zeros(len(table))
        for i, sev in enumerate(severities):
            left.barh(
                table.index.astype(str),
                table[sev],
                left=base,
                label=sev,
                color=sev_colors.get(sev, _PALETTE[i % len(_PALETTE)]),
            )
            base += table[sev].to_numpy()
        left.legend(title="severity", fontsize=8)
        kinds = errors.groupby("error_type")["errors"].sum().sort_values().tail(top)
        right.barh(kinds.index.astype(str), kinds.to_numpy(), color="#8172B3")
    left.set_xlabel("errors")
    left.set_title("by component and severity")
    right.set_xlabel("errors")
    right.set_title("most frequent error types")
    fig.suptitle(f"Error mix{_window(days)}")
    return fig


def model_label(provider: Any, model: Any) -> str:
    """``provider/model`` for a chart or table; a missing part reads "(none)"."""

    def part(v: Any) -> str:
        return "(none)" if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else str(v)

    return f"{part(provider)}/{part(model)}"


def cost_by_model(usage: pd.DataFrame, *, days: int | None = None) -> Figure:
    """Cost (USD) per UTC day, stacked by provider/model (the frame of ``model_usage(by_day=True)``);
    partial first/last days are hatched."""
    _need(usage, ("day", "provider", "model", "cost_usd"), "cost_by_model")
    fig = _figure(4.0, 10.0)
    ax = fig.add_subplot()
    costs = usage.assign(_model=[model_label(p, m) for p, m in zip(usage["provider"], usage["model"])])
    costs = costs[costs["cost_usd"].notna()]
    if costs.empty or not (costs["cost_usd"] > 0).any():
        _empty(ax, "no API cost recorded in the window")
    else:
        table = costs.pivot_table(index="day", columns="_model", values="cost_usd", aggfunc="sum", fill_value=0.0)
        table = table[table.sum().sort_values(ascending=False).index]
        table = table.loc[:, table.sum() > 0]
        x = pd.to_datetime(table.index).tz_localize(None)
        partial = (
            costs.groupby("day")["partial"].any().reindex(table.index).fillna(False).to_numpy(bool)
            if "partial" in costs
            else np.zeros(len(table), bool)
        )
        base = np.zeros(len(table))
        for i, model in enumerate(table.columns):
            color = _PALETTE[i % len(_PALETTE)]
            ax.bar(
                x,
                table[model],
                bottom=base,
                color=color,
                label=model,
                hatch=["//" if p else "" for p in partial],
                edgecolor="white",
                linewidth=0.3,
            )
            base += table[model].to_numpy()
        if partial.any():
            ax.bar(x[:1], [0], color="white", hatch="//", edgecolor="grey", label="partial day (hatched)")
        ax.legend(title="provider/model", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
        fig.autofmt_xdate()
    ax.set_xlabel("day (UTC)")
    ax.set_ylabel("cost (USD)")
    ax.set_title(f"API cost per day by model{_window(days)}")
    return fig


def latency_by_model(usage: pd.DataFrame, *, days: int | None = None) -> Figure:
    """Latency p50 / p95 / p99 (ms, log scale) per provider/model (``model_usage(by_day=False)``), the
    slowest p95 at the top; the number of calls in each label."""
    _need(usage, ("provider", "model", "calls", "p50_ms", "p95_ms", "p99_ms"), "latency_by_model")
    data = usage[usage["p50_ms"].notna()].sort_values("p95_ms")
    fig = _figure(0.55 * max(1, len(data)) + 1.5)
    ax = fig.add_subplot()
    if data.empty:
        _empty(ax, "no API calls with a response time in the window")
    else:
        y = np.arange(len(data))
        height = 0.27
        for i, (col, color) in enumerate((("p50_ms", "#4C72B0"), ("p95_ms", "#DD8452"), ("p99_ms", "#C44E52"))):
            ax.barh(y + (i - 1) * height, data[col], height=height, color=color, label=col.replace("_ms", ""))
        ax.set_yticks(
            y,
            [f"{model_label(p, m)} (n={n:,})" for p, m, n in zip(data["provider"], data["model"], data["calls"])],
            fontsize=8,
        )
        ax.set_xscale("log")
        ax.legend(title="quantile", loc="lower right", fontsize=8)
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_title(f"API latency quantiles by model{_window(days)}")
    return fig


#: chart name -> function (the report draws each of these)
CHARTS = {
    "success_by_agent": success_by_agent,
    "execution_time_distribution": execution_time_distribution,
    "daily_trend": daily_trend,
    "workload": workload,
    "token_use": token_use,
    "error_mix": error_mix,
    "cost_by_model": cost_by_model,
    "latency_by_model": latency_by_model,
}


class LabPlots:
    """``lab.plot``: one method per chart; each runs its query on the lab and returns a Figure."""

    def __init__(self, lab: Any) -> None:
        self._lab = lab

    def __repr__(self) -> str:
        return f"<lab.plot: {', '.join(CHARTS)}>"

    def success_by_agent(self, days: int = 30, *, now: Any = None) -> Figure:
        return success_by_agent(self._lab.performance_summary(days, now=now), days=days)

    def execution_time_distribution(self, days: int = 30, *, now: Any = None) -> Figure:
        return execution_time_distribution(self._lab.execution_times(days, now=now), days=days)

    def daily_trend(self, days: int = 30, *, now: Any = None) -> Figure:
        return daily_trend(self._lab.daily_trend(days, now=now), days=days)

    def workload(self) -> Figure:
        return workload(self._lab.agent_workload())

    def token_use(self, days: int = 30, *, now: Any = None) -> Figure:
        return token_use(self._lab.performance_summary(days, now=now), days=days)

    def error_mix(self, days: int = 30, *, now: Any = None) -> Figure:
        return error_mix(self._lab.error_summary(days, now=now), days=days)

    def cost_by_model(self, days: int = 30, *, now: Any = None) -> Figure:
        return cost_by_model(self._lab.model_usage(days, now=now), days=days)

    def latency_by_model(self, days: int = 30, *, now: Any = None) -> Figure:
        return latency_by_model(self._lab.model_usage(days, now=now, by_day=False), days=days)
