"""A single self-contained HTML performance report: charts as base64 PNGs, tables, the data window,
when it was generated and where the lab lives (passwords hidden). It needs no network to open.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import logging
import os
import string
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from omnilab.analysis import plots
from omnilab.errors import InvalidInput, OmnilabError
from omnilab.sql import queries
from omnilab.sql.engine import describe_url

__all__ = ["write_report", "render_report", "figure_to_data_uri"]

log = logging.getLogger(__name__)

_CAPTIONS = {
    "success_by_agent": "Success rate per agent, grouped by system_name; labels give the rate and the number of runs.",
    "execution_time_distribution": "Execution time per system_name (log scale); the box spans the middle half of "
                                   "runs.",
    "daily_trend": "Runs per UTC day and the day's success rate.",
    "workload": "Active tasks of each agent that can take work.",
    "token_use": "Tokens used per agent over the window.",
    "error_mix": "Logged errors per component and severity, and the most frequent error types.",
}


def figure_to_data_uri(fig: Any, dpi: int = 100) -> str:
    """A matplotlib Figure as a ``data:image/png;base64,…`` URI (rendered with Agg, nothing shown)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _table(frame: pd.DataFrame, *, max_rows: int | None = None) -> str:
    if frame.empty:
        return '<p class="note">Nothing in this window.</p>'
    shown = frame if max_rows is None else frame.head(max_rows)
    out = shown.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.strftime("%Y-%m-%d %H:%M:%S")
        elif out[col].dtype == object and out[col].map(lambda v: isinstance(v, (list, dict))).any():
            out[col] = out[col].map(lambda v: ", ".join(map(str, v)) if isinstance(v, list) else str(v))
    body = out.to_html(index=False, escape=True, na_rep="—", float_format=lambda v: f"{v:,.2f}",
                       border=0, classes="dataframe")
    if max_rows is not None and len(frame) > max_rows:
        body += f'<p class="note">First {max_rows} of {len(frame):,} rows.</p>'
    return body


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{html.escape(value)}</b><span>{html.escape(label)}</span></div>'


def _highlights(summary: pd.DataFrame, systems: pd.DataFrame, min_runs: int = 5) -> str:
    """Best/worst agent and system in words (agents with fewer than ``min_runs`` runs are left out)."""
    lines = []
    ranked = summary[(summary["total_tasks"] >= min_runs) & summary["success_rate"].notna()]
    ranked = ranked.sort_values("success_rate", ascending=False)
    if len(ranked) >= 2:
        best, worst = ranked.iloc[0], ranked.iloc[-1]
        lines.append(f"Best agent: <b>{html.escape(str(best['name']))}</b> ({html.escape(str(best['system_name']))}) "
                     f"with {best['success_rate']:.1f}% of {best['total_tasks']:,} runs; worst: "
                     f"<b>{html.escape(str(worst['name']))}</b> ({html.escape(str(worst['system_name']))}) "
                     f"with {worst['success_rate']:.1f}% of {worst['total_tasks']:,}.")
    sys_ranked = systems[(systems["total_tasks"] > 0) & systems["success_rate"].notna()]
    sys_ranked = sys_ranked.sort_values("success_rate", ascending=False)
    if len(sys_ranked) >= 2:
        best, worst = sys_ranked.iloc[0], sys_ranked.iloc[-1]
        lines.append(f"Best system: <b>{html.escape(str(best['system_name']))}</b> ({best['success_rate']:.1f}%, "
                     f"median {best['p50_execution_time']:.2f} s); worst: "
                     f"<b>{html.escape(str(worst['system_name']))}</b> "
                     f"({worst['success_rate']:.1f}%, median {worst['p50_execution_time']:.2f} s).")
    idle = summary[summary["total_tasks"] == 0]
    if len(idle):
        names = ", ".join(html.escape(str(n)) for n in idle["name"])
        lines.append(f"No runs in the window: {names}.")
    if not lines:
        return ""
    return "<ul>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>"


def render_report(lab: Any, days: int = 30, *, now: Any = None) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    start, end = queries.window(days, now)
    generated = dt.datetime.now(dt.timezone.utc)
    summary = lab.performance_summary(days, now=end)
    systems = lab.performance_breakdown("system_name", days, now=end)
    task_types = lab.performance_breakdown("task_type", days, now=end)
    workload = lab.agent_workload()
    errors = lab.error_summary(days, now=end)
    api = lab.api_latency(days, now=end)
    figures = {
        "success_by_agent": plots.success_by_agent(summary, days=days),
        "execution_time_distribution": plots.execution_time_distribution(lab.execution_times(days, now=end),
                                                                         days=days),
        "daily_trend": plots.daily_trend(lab.daily_trend(days, now=end), days=days),
        "workload": plots.workload(workload),
        "token_use": plots.token_use(summary, days=days),
        "error_mix": plots.error_mix(errors, days=days),
    }
    charts = "\n".join(
        f'<figure id="{name}"><img alt="{html.escape(name.replace("_", " "))}" src="{figure_to_data_uri(fig)}">'
        f"<figcaption>{html.escape(_CAPTIONS[name])}</figcaption></figure>"
        for name, fig in figures.items()
    )
    runs = int(summary["total_tasks"].sum())
    wins = int(summary["successful_tasks"].sum())
    known = wins + int(summary["failed_tasks"].sum())  # runs with a NULL success are in neither
    cards = "".join([
        _card(f"{len(summary):,}", "agents"),
        _card(f"{runs:,}", "runs in the window"),
        _card(f"{100 * wins / known:.1f}%" if known else "—", "success rate"),
        _card(f"{int(summary['total_tokens'].sum()):,}", "tokens used"),
        _card(f"{int(errors['errors'].sum()) if len(errors) else 0:,}", "errors logged"),
    ])
    from omnilab import __version__

    template = string.Template(
        resources.files("omnilab.analysis").joinpath("templates", "report.html").read_text(encoding="utf-8"))
    fmt = "%Y-%m-%d %H:%M:%S"
    return template.substitute(
        title="omnilab agent performance report",
        version=html.escape(__version__),
        window_start=start.strftime(fmt), window_end=end.strftime(fmt), days=int(days),
        generated_at=generated.strftime(fmt),
        lab_path=html.escape(str(lab.path)),
        database=html.escape(describe_url(lab.database_url)),
        cards=cards,
        highlights=_highlights(summary, systems),
        charts=charts,
        summary_table=_table(summary),
        system_table=_table(systems),
        task_type_table=_table(task_types),
        workload_table=_table(workload),
        error_table=_table(errors, max_rows=40),
        api_table=_table(api),
    )


def write_report(lab: Any, path: str | os.PathLike[str], days: int = 30, *, now: Any = None) -> Path:
    """Write the report to ``path`` atomically (temp file, fsync, rename) and return the resolved path."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InvalidInput(f"path must be a file path, got {path!r}")
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        raise InvalidInput(f"{target} is a directory; give a file name such as report.html")
    if not target.parent.is_dir():
        raise InvalidInput(f"directory {target.parent} does not exist")
    text = render_report(lab, days, now=now)
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
