"""A single self-contained HTML performance report: charts as base64 PNGs, tables, the data window,
when it was generated and where the lab lives (passwords hidden). It needs no network to open.

It opens with "What changed": the last ``change_days`` against the ``change_days`` before, per agent and
per model, significant changes (Benjamini-Hochberg q < 0.05) first, with their evidence. Every success
rate carries its 95 % Wilson interval. Tables have readable headers, thousands separators, text left and
numbers right, and sort on a click on their header (a small inline script; nothing is fetched).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import logging
import math
import os
import string
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omnilab.analysis import plots
from omnilab.errors import InvalidInput, OmnilabError
from omnilab.sql import queries
from omnilab.sql.engine import describe_url

__all__ = ["write_report", "render_report", "figure_to_data_uri"]

log = logging.getLogger(__name__)

_CAPTIONS = {
    "success_by_agent": "Success rate per agent, grouped by system_name; labels give the rate and the number of runs.",
    "execution_time_distribution": "Execution time per system_name (log scale); the box spans the middle half of runs.",
    "daily_trend": "Runs per UTC day and the day's success rate.",
    "workload": "Active tasks of each agent that can take work.",
    "token_use": "Tokens used per agent over the window.",
    "error_mix": "Logged errors per component and severity, and the most frequent error types.",
    "cost_by_model": "API cost per UTC day by provider/model; hatched days are only partly inside the window.",
    "latency_by_model": "API latency p50, p95 and p99 per provider/model (log scale).",
}

#: column name -> readable header
_HEADERS = {
    "agent_id": "Agent",
    "name": "Name",
    "system_name": "Agent system",
    "task_type": "Task type",
    "agent_type": "Agent type",
    "agents": "Agents",
    "total_tasks": "Runs",
    "successful_tasks": "Successful",
    "failed_tasks": "Failed",
    "success_rate": "Success rate %",
    "avg_execution_time": "Mean time (s)",
    "p50_execution_time": "Median time (s)",
    "p95_execution_time": "p95 time (s)",
    "total_tokens": "Tokens",
    "active_tasks": "Active tasks",
    "status": "Status",
    "priority": "Priority",
    "max_concurrent_tasks": "Max concurrent",
    "component": "Component",
    "severity": "Severity",
    "error_type": "Error type",
    "errors": "Errors",
    "unresolved": "Unresolved",
    "first_seen": "First seen",
    "last_seen": "Last seen",
    "endpoint": "Endpoint",
    "method": "Method",
    "requests": "Requests",
    "mean_ms": "Mean (ms)",
    "p50_ms": "p50 (ms)",
    "p95_ms": "p95 (ms)",
    "p99_ms": "p99 (ms)",
    "error_rate": "Error rate %",
    "status_2xx": "2xx",
    "status_3xx": "3xx",
    "status_4xx": "4xx",
    "status_5xx": "5xx",
    "model": "Model",
    "calls": "Calls",
    "tokens": "Tokens",
    "cost_usd": "Cost (USD)",
}

_SORT_SCRIPT = """<script>
// Click a header to sort its table (again to reverse); numbers sort by value, text alphabetically.
document.querySelectorAll("table.sortable th").forEach(function (th, _, all) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
    var asc = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var key = function (row) {
      var cell = row.cells[col], v = cell.getAttribute("data-v");
      return v === null ? cell.textContent.trim().toLowerCase() : (v === "" ? NaN : parseFloat(v));
    };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      if (typeof x === "number" || typeof y === "number") {
        if (isNaN(x)) return 1; if (isNaN(y)) return -1;  // empty cells last either way
        return asc ? x - y : y - x;
      }
      return asc ? x.localeCompare(y) : y.localeCompare(x);
    }).forEach(function (row) { body.appendChild(row); });
  });
});
</script>"""


def figure_to_data_uri(fig: Any, dpi: int = 100) -> str:
    """A matplotlib Figure as a ``data:image/png;base64,…`` URI (rendered with Agg, nothing shown)."""
    return "data:image/png;base64," + base64.b64encode(plots.figure_png(fig, dpi=dpi)).decode("ascii")


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


def _cell(value: Any, kind: str) -> str:
    """One ``<td>``: numbers right-aligned with their raw value for sorting, text left-aligned."""
    if kind == "num":
        if _missing(value):
            return '<td class="num" data-v="">—</td>'
        text = f"{value:,}" if isinstance(value, (int, np.integer)) else f"{float(value):,.2f}"
        return f'<td class="num" data-v="{float(value)!r}">{text}</td>'
    if _missing(value):
        return '<td class="text">—</td>'
    if isinstance(value, pd.Timestamp):
        value = value.strftime("%Y-%m-%d %H:%M:%S")
    elif isinstance(value, list):
        value = ", ".join(map(str, value))
    return f'<td class="text">{html.escape(str(value))}</td>'


def _rate_cell(rate: Any, low: Any, high: Any) -> str:
    if _missing(rate):
        return '<td class="num" data-v="">—</td>'
    return f'<td class="num" data-v="{float(rate)!r}">{rate:.1f} <span class="ci">[{low:.1f}, {high:.1f}]</span></td>'


def _table(
    frame: pd.DataFrame,
    *,
    max_rows: int | None = None,
    empty: str = "Nothing in this window.",
    headers: dict[str, str] | None = None,
) -> str:
    """A sortable HTML table of ``frame``: readable headers, rates with their interval in one cell, the
    ``name`` column dropped where it only repeats ``agent_id``."""
    if frame.empty:
        return f'<p class="note empty">{html.escape(empty)}</p>'
    shown = frame if max_rows is None else frame.head(max_rows)
    if {"agent_id", "name"} <= set(shown.columns) and (
        shown["agent_id"].astype(str) == shown["name"].astype(str)
    ).all():
        shown = shown.drop(columns="name")
    cis = {c[: -len("_low")] for c in shown.columns if c.endswith("_low") and c[: -len("_low")] in shown.columns}
    columns = [c for c in shown.columns if not any(c in (f"{r}_low", f"{r}_high") for r in cis)]
    names = {**_HEADERS, **(headers or {})}
    kinds = {
        c: "num" if pd.api.types.is_numeric_dtype(shown[c]) and not pd.api.types.is_bool_dtype(shown[c]) else "text"
        for c in columns
    }

    def header(c: str) -> str:
        return names.get(c, c.replace("_", " ").capitalize()) + (" (95% CI)" if c in cis else "")

    head = "".join(f'<th class="{kinds[c]}" title="{html.escape(c)}">{html.escape(header(c))}</th>' for c in columns)
    rows = []
    for record in shown.to_dict("records"):
        cells = [
            _rate_cell(record[c], record[f"{c}_low"], record[f"{c}_high"]) if c in cis else _cell(record[c], kinds[c])
            for c in columns
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    body = f'<table class="dataframe sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    if max_rows is not None and len(frame) > max_rows:
        body += f'<p class="note">First {max_rows} of {len(frame):,} rows.</p>'
    return body


def _p(value: Any) -> str:
    if _missing(value):
        return "—"
    return "&lt; 0.0001" if value < 1e-4 else f"{value:.4f}"


def _what_changed(changes: pd.DataFrame, models: pd.DataFrame) -> str:
    """The report's first section: significant changes (rate, then median time), with the evidence."""
    prev, cur = changes.attrs["previous_window"], changes.attrs["current_window"]
    fmt = "%Y-%m-%d %H:%M"
    intro = (
        f'<p class="note">The last {changes.attrs["days"]} days ({cur[0]:{fmt}} to {cur[1]:{fmt}} UTC) '
        f"against the {changes.attrs['days']} days before ({prev[0]:{fmt}} to {prev[1]:{fmt}}). A success-rate "
        "change is tested with a two-proportion z-test (Fisher's exact test for small counts), a change of "
        "median execution time with a Mann-Whitney U test; q-values are Benjamini-Hochberg adjusted over all "
        "agents (models) compared, and a change counts when q &lt; 0.05.</p>"
    )
    parts = [intro]
    for label, frame, key in (("Agents", changes, "agent_id"), ("Models", models, "model")):
        tested = int(frame["p_value"].notna().sum())
        rate_rows, time_rows = frame[frame["significant"]], frame[frame["time_significant"]]
        order = {"regression": 0, "improvement": 1}
        rate_rows = rate_rows.assign(_o=rate_rows["verdict"].map(order)).sort_values(["_o", "q_value"])
        items = []
        for r in rate_rows.to_dict("records"):
            who = (
                html.escape(str(r["agent_id"]))
                if key == "agent_id"
                else html.escape(plots.model_label(r["provider"], r["model"]))
            )
            items.append(
                f'<li class="{r["verdict"]}"><b>{r["verdict"].capitalize()}: {who}</b> — success rate '
                f"{r['success_rate_previous']:.1f}% [{r['success_rate_previous_low']:.1f}, "
                f"{r['success_rate_previous_high']:.1f}] of {r['successful_previous'] + r['failed_previous']:,} → "
                f"{r['success_rate_current']:.1f}% [{r['success_rate_current_low']:.1f}, "
                f"{r['success_rate_current_high']:.1f}] of {r['successful_current'] + r['failed_current']:,} "
                f"({r['rate_change']:+.1f} points; {'Fisher' if r['test'] == 'fisher' else 'z-test'} "
                f"p = {_p(r['p_value'])}, q = {_p(r['q_value'])})</li>"
            )
        for r in time_rows.to_dict("records"):
            who = (
                html.escape(str(r["agent_id"]))
                if key == "agent_id"
                else html.escape(plots.model_label(r["provider"], r["model"]))
            )
            word = "slower" if r["median_time_change"] > 0 else "faster"
            items.append(
                f'<li class="time"><b>{word.capitalize()}: {who}</b> — median time {r["median_time_previous"]:,.3g} s '
                f"→ {r['median_time_current']:,.3g} s (Mann-Whitney p = {_p(r['time_p_value'])}, "
                f"q = {_p(r['time_q_value'])})</li>"
            )
        parts.append(f"<h3>{label}</h3>")
        if items:
            parts.append('<ul class="changes">' + "".join(items) + "</ul>")
        elif tested:
            parts.append(
                f'<p class="note">No significant change among the {tested:,} {label.lower()} with runs in '
                "both windows.</p>"
            )
        else:
            parts.append(
                f'<p class="note empty">Not enough data: no {label[:-1].lower()} has runs with a known '
                "outcome in both windows.</p>"
            )
    return "\n".join(parts)


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{html.escape(value)}</b><span>{html.escape(label)}</span></div>'


def _highlights(summary: pd.DataFrame, systems: pd.DataFrame, min_runs: int = 5) -> str:
    """Best/worst agent and system in words (agents with fewer than ``min_runs`` runs are left out)."""
    lines = []
    ranked = summary[(summary["total_tasks"] >= min_runs) & summary["success_rate"].notna()]
    ranked = ranked.sort_values("success_rate", ascending=False)
    if len(ranked) >= 2:
        best, worst = ranked.iloc[0], ranked.iloc[-1]

        def ci(row: pd.Series) -> str:
            return (
                f" [{row['success_rate_low']:.1f}, {row['success_rate_high']:.1f}]"
                if "success_rate_low" in row and pd.notna(row["success_rate_low"])
                else ""
            )

        lines.append(
            f"Best agent: <b>{html.escape(str(best['name']))}</b> ({html.escape(str(best['system_name']))}) "
            f"with {best['success_rate']:.1f}%{ci(best)} of {best['total_tasks']:,} runs; worst: "
            f"<b>{html.escape(str(worst['name']))}</b> ({html.escape(str(worst['system_name']))}) "
            f"with {worst['success_rate']:.1f}%{ci(worst)} of {worst['total_tasks']:,}"
            + (
                " (the intervals do not overlap: the gap is larger than chance)."
                if ci(best) and worst["success_rate_high"] < best["success_rate_low"]
                else "."
            )
        )
    sys_ranked = systems[(systems["total_tasks"] > 0) & systems["success_rate"].notna()]
    sys_ranked = sys_ranked.sort_values("success_rate", ascending=False)
    if len(sys_ranked) >= 2:
        best, worst = sys_ranked.iloc[0], sys_ranked.iloc[-1]
        lines.append(
            f"Best system: <b>{html.escape(str(best['system_name']))}</b> ({best['success_rate']:.1f}%, "
            f"median {best['p50_execution_time']:.2f} s); worst: "
            f"<b>{html.escape(str(worst['system_name']))}</b> "
            f"({worst['success_rate']:.1f}%, median {worst['p50_execution_time']:.2f} s)."
        )
    idle = summary[summary["total_tasks"] == 0]
    if len(idle):
        names = ", ".join(html.escape(str(n)) for n in idle["name"])
        lines.append(f"No runs in the window: {names}.")
    if not lines:
        return ""
    return "<ul>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>"


def render_report(lab: Any, days: int = 30, *, now: Any = None, change_days: int | None = None) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    start, end = queries.window(days, now)
    change_days = min(7, int(days)) if change_days is None else queries.check_days(change_days)
    generated = dt.datetime.now(dt.timezone.utc)
    changes = lab.compare_windows(change_days, now=end)
    model_changes = lab.compare_windows(change_days, now=end, by="model")
    summary = lab.performance_summary(days, now=end)
    systems = lab.performance_breakdown("system_name", days, now=end)
    task_types = lab.performance_breakdown("task_type", days, now=end)
    workload = lab.agent_workload()
    errors = lab.error_summary(days, now=end)
    api = lab.api_latency(days, now=end)
    models_daily = lab.model_usage(days, now=end)
    models = lab.model_usage(days, now=end, by_day=False)
    figures = {
        "success_by_agent": plots.success_by_agent(summary, days=days),
        "execution_time_distribution": plots.execution_time_distribution(lab.execution_times(days, now=end), days=days),
        "daily_trend": plots.daily_trend(lab.daily_trend(days, now=end), days=days),
        "workload": plots.workload(workload),
        "token_use": plots.token_use(summary, days=days),
        "error_mix": plots.error_mix(errors, days=days),
        "cost_by_model": plots.cost_by_model(models_daily, days=days),
        "latency_by_model": plots.latency_by_model(models, days=days),
    }
    charts = "\n".join(
        f'<figure id="{name}"><img alt="{html.escape(name.replace("_", " "))}" src="{figure_to_data_uri(fig)}">'
        f"<figcaption>{html.escape(_CAPTIONS[name])}</figcaption></figure>"
        for name, fig in figures.items()
    )
    runs = int(summary["total_tasks"].sum())
    wins = int(summary["successful_tasks"].sum())
    known = wins + int(summary["failed_tasks"].sum())  # runs with a NULL success are in neither
    cost = models["cost_usd"].sum(min_count=1) if len(models) else float("nan")
    cards = "".join(
        [
            _card(f"{len(summary):,}", "agents"),
            _card(f"{runs:,}", "runs in the window"),
            _card(f"{100 * wins / known:.1f}%" if known else "—", "success rate"),
            _card(f"{int(summary['total_tokens'].sum()):,}", "tokens used"),
            _card(f"{int(errors['errors'].sum()) if len(errors) else 0:,}", "errors logged"),
            _card("—" if pd.isna(cost) else f"${cost:,.2f}", "API cost"),
        ]
    )
    model_table = models.assign(model=[plots.model_label(p, m) for p, m in zip(models["provider"], models["model"])])
    change_table = changes.drop(
        columns=[
            c
            for c in changes.columns
            if c.startswith(("successful_", "failed_"))
            or c in ("significant", "time_significant", "median_time_change")
        ]
    )
    from omnilab._version import __version__

    template = string.Template(
        (resources.files("omnilab.analysis") / "templates" / "report.html").read_text(encoding="utf-8")
    )
    fmt = "%Y-%m-%d %H:%M:%S"
    return template.substitute(
        title="omnilab agent performance report",
        version=html.escape(__version__),
        window_start=start.strftime(fmt),
        window_end=end.strftime(fmt),
        days=int(days),
        generated_at=generated.strftime(fmt),
        lab_path=html.escape(str(lab.path)),
        database=html.escape(describe_url(lab.database_url)),
        what_changed=_what_changed(changes, model_changes),
        change_table=_table(change_table, empty="No agents.", headers=_CHANGE_HEADERS),
        cards=cards,
        highlights=_highlights(summary, systems),
        charts=charts,
        summary_table=_table(summary, empty="No agents in this lab."),
        system_table=_table(systems, empty="No agent systems in this lab."),
        task_type_table=_table(task_types, empty="No runs in this window."),
        workload_table=_table(workload, empty="No agent can take work (none is idle or busy)."),
        error_table=_table(errors, max_rows=40, empty="No errors logged in this window."),
        model_table=_table(model_table.drop(columns="provider"), empty="No API calls in this window."),
        api_table=_table(api, empty="No API calls in this window."),
        sort_script=_SORT_SCRIPT,
    )


_CHANGE_HEADERS = {
    "runs_previous": "Runs before",
    "runs_current": "Runs now",
    "success_rate_previous": "Success % before",
    "success_rate_current": "Success % now",
    "rate_change": "Change (points)",
    "p_value": "p",
    "test": "Test",
    "q_value": "q",
    "median_time_previous": "Median s before",
    "median_time_current": "Median s now",
    "time_p_value": "Time p",
    "time_q_value": "Time q",
    "verdict": "Verdict",
}


def write_report(
    lab: Any, path: str | os.PathLike[str], days: int = 30, *, now: Any = None, change_days: int | None = None
) -> Path:
    """Write the report to ``path`` atomically (temp file, fsync, rename) and return the resolved path.

    ``change_days``: the windows "What changed" compares (default: the last 7 days, or ``days`` if fewer,
    against as many days before).
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InvalidInput(f"path must be a file path, got {path!r}")
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        raise InvalidInput(f"{target} is a directory; give a file name such as report.html")
    if not target.parent.is_dir():
        raise InvalidInput(f"directory {target.parent} does not exist")
    text = render_report(lab, days, now=now, change_days=change_days)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is meant to be shared
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OmnilabError(f"cannot write the report to {target}: {exc.strerror}") from exc
    log.info("wrote report %s (%d bytes)", target, len(text))
    return target
