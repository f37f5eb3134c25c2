"""The platform's performance SQL, corrected: parameterized SQLAlchemy Core, aggregated in the database.

Every function takes a ``Connection`` or an ``Engine`` and returns a DataFrame (or a dict) with fixed
columns and dtypes. Time windows are ``[now - days, now]``, **both ends inclusive**: a run exactly
``days`` ago counts, one a microsecond older does not, and rows after ``now`` are ignored (so ``now=``
gives "as of" answers and makes tests exact). ``now`` defaults to the current UTC time.

Percentiles are linear-interpolated (pandas' and numpy's default, PostgreSQL's ``percentile_cont``).
PostgreSQL computes them with ``percentile_cont``; SQLite has no such aggregate, so there the rank of
each row in its group comes from window functions and the two neighbouring values are interpolated in
the same query. The results agree on both backends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import numbers
from collections.abc import Iterator, Sequence
from typing import Any, Union

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from omnilab.errors import InvalidInput, NotFound, OmnilabError
from omnilab.sql.frames import read_frame
from omnilab.sql.schema import TABLES
from omnilab.sql.types import UTCDateTime, utcnow

__all__ = [
    "MAX_DAYS", "window", "agent_workload", "performance_summary", "agent_performance",
    "available_agents", "agent_timeseries", "daily_trend", "performance_breakdown", "execution_times",
    "error_summary", "api_latency", "memory_access_patterns", "refresh_project_stats",
]

Bind = Union[sa.Engine, sa.Connection]

#: the widest window accepted (ten years); anything larger is almost surely a unit mistake
MAX_DAYS = 3650

#: task statuses that occupy an agent
ACTIVE_TASK_STATUSES = ("pending", "assigned", "in_progress")
#: agent statuses that can take work
WORKING_AGENT_STATUSES = ("idle", "busy")

BREAKDOWNS = ("task_type", "system", "agent_type")

_agents = TABLES["agents"]
_tasks = TABLES["tasks"]
_perf = TABLES["agent_performance"]
_TS = "datetime64[us, UTC]"


# ------------------------------------------------------------------------------------------ helpers
@contextlib.contextmanager
def _connect(bind: Bind) -> Iterator[sa.Connection]:
    if isinstance(bind, sa.Connection):
        yield bind
    elif isinstance(bind, sa.Engine):
        with bind.connect() as conn:
            yield conn
    else:
        raise InvalidInput(f"expected a SQLAlchemy Engine or Connection, got {type(bind).__name__}")


def _frame(bind: Bind, stmt: Any, dtypes: dict[str, str]) -> pd.DataFrame:
    try:
        with _connect(bind) as conn:
            return read_frame(conn, stmt, dtypes=dtypes)
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc


def check_days(days: Any) -> int:
    """``days`` as an int in ``1..MAX_DAYS`` or :class:`InvalidInput`."""
    if isinstance(days, bool) or not isinstance(days, numbers.Integral):
        raise InvalidInput(f"days must be a whole number of days, got {days!r}")
    if not 1 <= int(days) <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}, got {days}")
    return int(days)


def _check_now(now: Any) -> dt.datetime:
    if now is None:
        return utcnow()
    if isinstance(now, pd.Timestamp):
        now = now.to_pydatetime()
    if not isinstance(now, dt.datetime):
        raise InvalidInput(f"now must be a datetime, got {type(now).__name__}")
    if now.tzinfo is None:  # naive means UTC, as everywhere in omnilab
        return now.replace(tzinfo=dt.timezone.utc)
    return now.astimezone(dt.timezone.utc)


def window(days: Any, now: Any = None) -> tuple[dt.datetime, dt.datetime]:
    """The inclusive window ``(now - days, now)`` as aware UTC datetimes, arguments validated."""
    days = check_days(days)
    end = _check_now(now)
    return end - dt.timedelta(days=days), end


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} must be a non-empty string, got {value!r}")
    return value


def _in_window(col: sa.ColumnElement, start: dt.datetime, end: dt.datetime) -> sa.ColumnElement:
    # The column's UTCDateTime type binds the parameters, so SQLite compares like-formatted text.
    return sa.and_(col >= start, col <= end)


def _as_float(expr: Any) -> sa.ColumnElement:
    return sa.cast(expr, sa.Float)


def _rate(numerator: Any, denominator: Any) -> sa.ColumnElement:
    """100 * numerator / denominator as a float, NULL (NaN) when the denominator is 0."""
    return _as_float(numerator) * 100.0 / sa.func.nullif(denominator, 0)


def _day(conn: sa.Connection, col: sa.ColumnElement) -> sa.ColumnElement:
    """The UTC calendar day of a timestamp as 'YYYY-MM-DD' text."""
    if conn.dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", col), "YYYY-MM-DD")
    return sa.func.substr(col, 1, 10)  # SQLite stores naive UTC 'YYYY-MM-DD HH:MM:SS.ffffff'


def _seconds_between(conn: sa.Connection, start: sa.ColumnElement, end: sa.ColumnElement) -> sa.ColumnElement:
    if conn.dialect.name == "postgresql":
        return _as_float(sa.extract("epoch", end - start))
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def _quantile_source(conn: sa.Connection, keys: Sequence[str], x: str, base: sa.Select) -> sa.Subquery:
    """``base`` as a subquery; on SQLite with each row's rank ``_rn`` and group size ``_n`` for ``x``."""
    if conn.dialect.name == "postgresql":
        return base.subquery("b")
    inner = base.subquery("raw")
    part = [inner.c[k] for k in keys]
    xc = inner.c[x]
    ranked = sa.select(
        *inner.c,
        sa.func.row_number().over(partition_by=part, order_by=(sa.case((xc.is_(None), 1), else_=0), xc))
        .label("_rn"),
        sa.func.count(xc).over(partition_by=part).label("_n"),
    )
    return ranked.subquery("b")


def _quantile(conn: sa.Connection, b: sa.Subquery, x: str, q: float) -> sa.ColumnElement:
    """The linear-interpolated ``q`` quantile of ``b.c[x]`` within the current group."""
    xc = b.c[x]
    if conn.dialect.name == "postgresql":
        return sa.func.percentile_cont(q).within_group(xc).label(None)
    rn, n = b.c._rn, b.c._n
    pos = (n - 1) * q  # 0-based position of the quantile; CAST truncates, which is floor for pos >= 0
    lo_rank = sa.cast(pos, sa.Integer) + 1
    lo = sa.func.max(sa.case((rn == lo_rank, xc)))
    hi = sa.func.coalesce(sa.func.max(sa.case((rn == lo_rank + 1, xc))), lo)
    frac = sa.func.max(pos - sa.cast(pos, sa.Integer))
    return lo + (hi - lo) * frac


def _perf_aggregates(conn: sa.Connection, b: sa.Subquery, quantiles: dict[str, float]) -> list:
    """The standard run statistics over ``b`` (columns run_id, execution_time, success, tokens_used)."""
    total = sa.func.count(b.c.run_id)
    successes = sa.func.coalesce(sa.func.sum(sa.case((b.c.success, 1), else_=0)), 0)
    cols = [
        total.label("total_tasks"),
        successes.label("successful_tasks"),
        _rate(successes, total).label("success_rate"),
        _as_float(sa.func.avg(b.c.execution_time)).label("avg_execution_time"),
    ]
    cols += [_quantile(conn, b, "execution_time", q).label(name) for name, q in quantiles.items()]
    cols.append(sa.func.coalesce(sa.func.sum(b.c.tokens_used), 0).label("total_tokens"))
    return cols


_PERF_DTYPES = {"total_tasks": "int64", "successful_tasks": "int64", "success_rate": "float64",
                "avg_execution_time": "float64", "p50_execution_time": "float64",
                "p95_execution_time": "float64", "total_tokens": "int64"}
_P50_P95 = {"p50_execution_time": 0.5, "p95_execution_time": 0.95}


# ------------------------------------------------------------------------------ the design's queries
def agent_workload(bind: Bind) -> pd.DataFrame:
    """Every agent that can take work (idle or busy) with its active task count, least loaded first.

    Active means pending, assigned or in progress. The task filter sits in the JOIN condition, so an
    agent whose tasks are all finished shows 0 instead of disappearing.
    Columns: agent_id, name, active_tasks (the design's three first), then system, status, priority.
    """
    a, t = _agents, _tasks
    joined = a.outerjoin(t, sa.and_(t.c.agent_id == a.c.id, t.c.status.in_(ACTIVE_TASK_STATUSES)))
    active = sa.func.count(t.c.id)
    stmt = (
        sa.select(a.c.id.label("agent_id"), a.c.name, active.label("active_tasks"), a.c.system, a.c.status,
                  a.c.priority)
        .select_from(joined)
        .where(a.c.status.in_(WORKING_AGENT_STATUSES))
        .group_by(a.c.id, a.c.name, a.c.system, a.c.status, a.c.priority)
        .order_by(active, a.c.priority.desc(), a.c.id)
    )
    return _frame(bind, stmt, {"priority": "int64", "active_tasks": "int64"})


def performance_summary(bind: Bind, days: int = 7, *, now: Any = None) -> pd.DataFrame:
    """Every agent's runs in the window: total_tasks, avg_execution_time (s), total_tokens, success_rate (%).

    The window condition is part of the LEFT JOIN, so agents without runs stay (0 tasks, NaN rates).
    Sorted by success_rate (best first, no-run agents last), then total_tasks, then agent_id.
    Columns: agent_id, name, total_tasks, avg_execution_time, total_tokens, success_rate (the design's),
    then system.
    """
    start, end = window(days, now)
    a, p = _agents, _perf
    joined = a.outerjoin(p, sa.and_(p.c.agent_id == a.c.id, _in_window(p.c.timestamp, start, end)))
    total = sa.func.count(p.c.id)
    successes = sa.func.sum(sa.case((p.c.success, 1), else_=0))
    rate = _rate(successes, total).label("success_rate")
    stmt = (
        sa.select(
            a.c.id.label("agent_id"), a.c.name,
            total.label("total_tasks"),
            _as_float(sa.func.avg(p.c.execution_time)).label("avg_execution_time"),
            sa.func.coalesce(sa.func.sum(p.c.tokens_used), 0).label("total_tokens"),
            rate, a.c.system,
        )
        .select_from(joined)
        .group_by(a.c.id, a.c.name, a.c.system)
        .order_by(rate.desc().nulls_last(), total.desc(), a.c.id)
    )
    return _frame(bind, stmt, {"total_tasks": "int64", "avg_execution_time": "float64",
                               "total_tokens": "int64", "success_rate": "float64"})


def agent_performance(bind: Bind, agent_id: str, days: int = 30, *, now: Any = None) -> dict[str, Any]:
    """One agent's runs in the window, aggregated in one query; unknown agent -> :class:`NotFound`.

    Keys: agent_id, name, total_tasks, failed_tasks, success_rate (%), error_rate (% failed),
    average_execution_time (s), total_tokens_used, window_start, window_end. Rates and the average are
    NaN when the agent has no runs in the window.
    """
    _check_name(agent_id, "agent_id")
    start, end = window(days, now)
    a, p = _agents, _perf
    joined = a.outerjoin(p, sa.and_(p.c.agent_id == a.c.id, _in_window(p.c.timestamp, start, end)))
    total = sa.func.count(p.c.id)
    successes = sa.func.coalesce(sa.func.sum(sa.case((p.c.success, 1), else_=0)), 0)
    stmt = (
        sa.select(
            a.c.id, a.c.name, total.label("total_tasks"),
            # count(p.id) - successes, not sum(...else 1): the LEFT JOIN's NULL row is no failure
            (total - successes).label("failed_tasks"),
            _rate(successes, total).label("success_rate"),
            _rate(total - successes, total).label("error_rate"),
            _as_float(sa.func.avg(p.c.execution_time)).label("average_execution_time"),
            sa.func.coalesce(sa.func.sum(p.c.tokens_used), 0).label("total_tokens_used"),
        )
        .select_from(joined)
        .where(a.c.id == agent_id)
        .group_by(a.c.id, a.c.name)
    )
    try:
        with _connect(bind) as conn:
            row = conn.execute(stmt).mappings().first()
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc
    if row is None:
        raise NotFound(f"no agent with id {agent_id!r}")
    nan = float("nan")
    return {
        "agent_id": row["id"],
        "name": row["name"],
        "total_tasks": int(row["total_tasks"]),
        "failed_tasks": int(row["failed_tasks"]),
        "success_rate": nan if row["success_rate"] is None else float(row["success_rate"]),
        "error_rate": nan if row["error_rate"] is None else float(row["error_rate"]),
        "average_execution_time": (nan if row["average_execution_time"] is None
                                   else float(row["average_execution_time"])),
        "total_tokens_used": int(row["total_tokens_used"]),
        "window_start": start,
        "window_end": end,
    }


def available_agents(bind: Bind, task_type: str | None = None) -> pd.DataFrame:
    """Idle agents, highest priority first; with ``task_type``, only those whose capabilities list
    contains exactly that string (JSON containment, never a substring match).

    Columns: agent_id, name, system, agent_type, priority, capabilities (list).
    """
    a = _agents
    stmt = sa.select(a.c.id.label("agent_id"), a.c.name, a.c.system, a.c.agent_type, a.c.priority,
                     a.c.capabilities).where(a.c.status == "idle")
    if task_type is not None:
        _check_name(task_type, "task_type")
        with _connect(bind) as conn:
            dialect = conn.dialect.name
        if dialect == "postgresql":
            caps = sa.type_coerce(a.c.capabilities, postgresql.JSONB())
            stmt = stmt.where(caps.contains([task_type]))  # jsonb @> '["x"]': element equality
        else:
            each = sa.func.json_each(a.c.capabilities).table_valued("value", "type")
            stmt = stmt.where(
                sa.select(sa.literal(1)).select_from(each)
                .where(each.c.type == "text", each.c.value == task_type).exists()
            )
    stmt = stmt.order_by(a.c.priority.desc(), a.c.name)
    return _frame(bind, stmt, {"priority": "int64"})


# ------------------------------------------------------------------------------- what comes next
def _perf_base(start: dt.datetime, end: dt.datetime, *extra: sa.ColumnElement) -> sa.Select:
    p = _perf
    return sa.select(p.c.id.label("run_id"), p.c.execution_time, p.c.success, p.c.tokens_used, *extra).where(
        _in_window(p.c.timestamp, start, end))


def agent_timeseries(bind: Bind, days: int = 30, *, agent_id: str | None = None,
                     now: Any = None) -> pd.DataFrame:
    """Per agent and UTC day: total_tasks, successful_tasks, success_rate (%), avg/p50/p95
    execution time (s), total_tokens. Only days on which the agent ran appear. Sorted by agent, day.
    """
    start, end = window(days, now)
    if agent_id is not None:
        _check_name(agent_id, "agent_id")
    try:
        with _connect(bind) as conn:
            base = _perf_base(start, end, _perf.c.agent_id, _day(conn, _perf.c.timestamp).label("day"))
            if agent_id is not None:
                base = base.where(_perf.c.agent_id == agent_id)
            b = _quantile_source(conn, ["agent_id", "day"], "execution_time", base)
            stmt = (sa.select(b.c.agent_id, b.c.day, *_perf_aggregates(conn, b, _P50_P95))
                    .group_by(b.c.agent_id, b.c.day).order_by(b.c.agent_id, b.c.day))
            frame = read_frame(conn, stmt, dtypes=_PERF_DTYPES)
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc
    frame["day"] = pd.to_datetime(frame["day"], utc=True).astype(_TS)
    return frame


def daily_trend(bind: Bind, days: int = 30, *, now: Any = None) -> pd.DataFrame:
    """Platform-wide per UTC day, every day of the window present (0 tasks, NaN rates on quiet days)."""
    start, end = window(days, now)
    try:
        with _connect(bind) as conn:
            base = _perf_base(start, end, _day(conn, _perf.c.timestamp).label("day"))
            b = _quantile_source(conn, ["day"], "execution_time", base)
            stmt = (sa.select(b.c.day, *_perf_aggregates(conn, b, _P50_P95))
                    .group_by(b.c.day).order_by(b.c.day))
            frame = read_frame(conn, stmt, dtypes=_PERF_DTYPES)
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc
    frame["day"] = pd.to_datetime(frame["day"], utc=True).astype(_TS)
    # Calendar filling is presentation, not aggregation: quiet days become explicit zero rows.
    calendar = pd.date_range(pd.Timestamp(start).floor("D"), pd.Timestamp(end).floor("D"), freq="D",
                             unit="us", name="day")
    frame = frame.set_index("day").reindex(calendar).reset_index()
    for col in ("total_tasks", "successful_tasks", "total_tokens"):
        frame[col] = frame[col].fillna(0).astype("int64")
    return frame


def performance_breakdown(bind: Bind, by: str = "task_type", days: int = 30, *,
                          now: Any = None) -> pd.DataFrame:
    """Run statistics per ``task_type``, agent ``system`` or ``agent_type`` over the window.

    Columns: <by>, agents (distinct agents that ran), total_tasks, successful_tasks, success_rate (%),
    avg/p50/p95 execution time (s), total_tokens. By system/agent_type every group appears (0 tasks
    when idle); by task_type only types that ran (a NULL task_type is its own group). Sorted by
    success_rate (best first), then total_tasks.
    """
    if by not in BREAKDOWNS:
        raise InvalidInput(f"by must be one of {', '.join(BREAKDOWNS)}, got {by!r}")
    start, end = window(days, now)
    a, p = _agents, _perf
    try:
        with _connect(bind) as conn:
            if by == "task_type":
                base = _perf_base(start, end, p.c.task_type, p.c.agent_id)
            else:
                base = (sa.select(p.c.id.label("run_id"), p.c.execution_time, p.c.success, p.c.tokens_used,
                                  a.c[by], p.c.agent_id)
                        .select_from(a.outerjoin(p, sa.and_(p.c.agent_id == a.c.id,
                                                            _in_window(p.c.timestamp, start, end)))))
            b = _quantile_source(conn, [by], "execution_time", base)
            aggs = _perf_aggregates(conn, b, _P50_P95)
            rate = aggs[2]
            stmt = (sa.select(b.c[by], sa.func.count(sa.distinct(b.c.agent_id)).label("agents"), *aggs)
                    .group_by(b.c[by])
                    .order_by(rate.desc().nulls_last(), aggs[0].desc(), b.c[by]))
            return read_frame(conn, stmt, dtypes={"agents": "int64", **_PERF_DTYPES})
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc


def execution_times(bind: Bind, days: int = 30, *, now: Any = None) -> pd.DataFrame:
    """Only the columns a distribution plot needs: agent_id, system, execution_time (s), success."""
    start, end = window(days, now)
    a, p = _agents, _perf
    stmt = (sa.select(p.c.agent_id, a.c.system, p.c.execution_time, p.c.success)
            .select_from(p.join(a, a.c.id == p.c.agent_id))
            .where(_in_window(p.c.timestamp, start, end)).order_by(p.c.id))
    return _frame(bind, stmt, {"execution_time": "float64", "success": "bool"})


def error_summary(bind: Bind, days: int = 30, *, now: Any = None) -> pd.DataFrame:
    """error_logs in the window per component, severity and error_type.

    Columns: component, severity, error_type, errors, unresolved, agents (distinct), first_seen,
    last_seen. Most frequent first.
    """
    start, end = window(days, now)
    e = TABLES["error_logs"]
    count = sa.func.count(e.c.id)
    stmt = (
        sa.select(e.c.component, e.c.severity, e.c.error_type, count.label("errors"),
                  sa.func.sum(sa.case((e.c.resolved, 0), else_=1)).label("unresolved"),
                  sa.func.count(sa.distinct(e.c.agent_id)).label("agents"),
                  sa.func.min(e.c.timestamp).label("first_seen"),
                  sa.func.max(e.c.timestamp).label("last_seen"))
        .where(_in_window(e.c.timestamp, start, end))
        .group_by(e.c.component, e.c.severity, e.c.error_type)
        .order_by(count.desc(), e.c.component, e.c.severity, e.c.error_type)
    )
    return _frame(bind, stmt, {"errors": "int64", "unresolved": "int64", "agents": "int64",
                               "first_seen": _TS, "last_seen": _TS})


def api_latency(bind: Bind, days: int = 30, *, now: Any = None) -> pd.DataFrame:
    """api_usage in the window per endpoint and method: latency percentiles and status-code mix.

    Columns: endpoint, method, requests, mean_ms, p50_ms, p95_ms, p99_ms, error_rate (% with status
    >= 400), status_2xx, status_3xx, status_4xx, status_5xx. Busiest endpoint first.
    """
    start, end = window(days, now)
    u = TABLES["api_usage"]
    try:
        with _connect(bind) as conn:
            base = sa.select(u.c.endpoint, u.c.method, u.c.status_code, u.c.response_time_ms).where(
                _in_window(u.c.timestamp, start, end))
            b = _quantile_source(conn, ["endpoint", "method"], "response_time_ms", base)
            count = sa.func.count(b.c.response_time_ms)

            def in_class(lo: int) -> sa.ColumnElement:
                return sa.func.sum(sa.case((sa.and_(b.c.status_code >= lo, b.c.status_code < lo + 100), 1),
                                           else_=0))

            stmt = (
                sa.select(b.c.endpoint, b.c.method, count.label("requests"),
                          _as_float(sa.func.avg(b.c.response_time_ms)).label("mean_ms"),
                          *(_quantile(conn, b, "response_time_ms", q).label(f"p{round(q * 100)}_ms")
                            for q in (0.5, 0.95, 0.99)),
                          _rate(sa.func.sum(sa.case((b.c.status_code >= 400, 1), else_=0)), count)
                          .label("error_rate"),
                          *(in_class(c).label(f"status_{c // 100}xx") for c in (200, 300, 400, 500)))
                .group_by(b.c.endpoint, b.c.method)
                .order_by(count.desc(), b.c.endpoint, b.c.method)
            )
            return read_frame(conn, stmt, dtypes={
                "requests": "int64", "mean_ms": "float64", "p50_ms": "float64", "p95_ms": "float64",
                "p99_ms": "float64", "error_rate": "float64", "status_2xx": "int64", "status_3xx": "int64",
                "status_4xx": "int64", "status_5xx": "int64"})
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc


def memory_access_patterns(bind: Bind, days: int = 30, *, by: str = "memory_type",
                           now: Any = None) -> pd.DataFrame:
    """memory_access in the window per ``memory_type`` or ``agent_id`` (of the reader) and access_type.

    Columns: <by>, access_type, accesses, memories (distinct), agents (distinct readers), avg_score,
    last_access. Most accessed first.
    """
    if by not in ("memory_type", "agent_id"):
        raise InvalidInput(f"by must be 'memory_type' or 'agent_id', got {by!r}")
    start, end = window(days, now)
    m, e = TABLES["memory_access"], TABLES["memory_entries"]
    key = e.c.memory_type if by == "memory_type" else m.c.agent_id
    count = sa.func.count(m.c.id)
    stmt = (
        sa.select(key.label(by), m.c.access_type, count.label("accesses"),
                  sa.func.count(sa.distinct(m.c.memory_id)).label("memories"),
                  sa.func.count(sa.distinct(m.c.agent_id)).label("agents"),
                  _as_float(sa.func.avg(m.c.score)).label("avg_score"),
                  sa.func.max(m.c.accessed_at).label("last_access"))
        .select_from(m.join(e, e.c.id == m.c.memory_id))
        .where(_in_window(m.c.accessed_at, start, end))
        .group_by(key, m.c.access_type)
        .order_by(count.desc(), key, m.c.access_type)
    )
    return _frame(bind, stmt, {"accesses": "int64", "memories": "int64", "agents": "int64",
                               "avg_score": "float64", "last_access": _TS})


def refresh_project_stats(bind: Bind, *, now: Any = None) -> pd.DataFrame:
    """Recompute every project's project_stats row from tasks, project_files and agent_performance.

    One transaction: the old rows are replaced by an INSERT … SELECT, so readers never see a half
    refresh. total_tokens counts runs whose task belongs to the project; avg_task_duration is the mean
    of completed_at - started_at (s) over completed tasks; last_activity is the newest task or file
    update. Returns the new rows (with the project name), by project name.
    """
    stamp = _check_now(now)
    t, f, s, pr = _tasks, TABLES["project_files"], TABLES["project_stats"], TABLES["projects"]
    try:
        with contextlib.ExitStack() as stack:
            if isinstance(bind, sa.Engine):
                conn = stack.enter_context(bind.begin())
            else:
                conn = bind
                if not conn.in_transaction():
                    stack.enter_context(conn.begin())
            done = sa.and_(t.c.status == "completed", t.c.started_at.is_not(None), t.c.completed_at.is_not(None))
            tq = (sa.select(
                t.c.project_id.label("pid"), sa.func.count(t.c.id).label("total"),
                sa.func.sum(sa.case((t.c.status == "completed", 1), else_=0)).label("completed"),
                sa.func.sum(sa.case((t.c.status == "failed", 1), else_=0)).label("failed"),
                sa.func.avg(sa.case((done, _seconds_between(conn, t.c.started_at, t.c.completed_at)))).label("dur"),
                sa.func.max(t.c.updated_at).label("last"))
                .where(t.c.project_id.is_not(None)).group_by(t.c.project_id).subquery("tq"))
            fq = (sa.select(f.c.project_id.label("pid"), sa.func.count(f.c.id).label("files"),
                            sa.func.sum(f.c.line_count).label("lines"), sa.func.max(f.c.updated_at).label("last"))
                  .group_by(f.c.project_id).subquery("fq"))
            kq = (sa.select(t.c.project_id.label("pid"), sa.func.sum(_perf.c.tokens_used).label("tokens"))
                  .select_from(_perf.join(t, t.c.id == _perf.c.task_id))
                  .where(t.c.project_id.is_not(None)).group_by(t.c.project_id).subquery("kq"))
            last = sa.case((tq.c["last"].is_(None), fq.c["last"]), (fq.c["last"].is_(None), tq.c["last"]),
                           (tq.c["last"] > fq.c["last"], tq.c["last"]), else_=fq.c["last"])
            src = (sa.select(
                pr.c.id, sa.func.coalesce(tq.c.total, 0), sa.func.coalesce(tq.c.completed, 0),
                sa.func.coalesce(tq.c.failed, 0), sa.func.coalesce(fq.c.files, 0),
                sa.func.coalesce(fq.c.lines, 0), sa.func.coalesce(kq.c.tokens, 0), _as_float(tq.c.dur),
                sa.type_coerce(last, UTCDateTime()), sa.literal(stamp, UTCDateTime()))
                .select_from(pr.outerjoin(tq, tq.c.pid == pr.c.id).outerjoin(fq, fq.c.pid == pr.c.id)
                             .outerjoin(kq, kq.c.pid == pr.c.id)))
            cols = ["project_id", "total_tasks", "completed_tasks", "failed_tasks", "total_files",
                    "total_lines", "total_tokens", "avg_task_duration", "last_activity", "updated_at"]
            conn.execute(s.delete())
            conn.execute(s.insert().from_select(cols, src))
            out = (sa.select(s.c.project_id, pr.c.name, *(s.c[c] for c in cols[1:]))
                   .select_from(s.join(pr, pr.c.id == s.c.project_id)).order_by(pr.c.name))
            return read_frame(conn, out, dtypes={
                **{c: "int64" for c in cols[1:7]}, "avg_task_duration": "float64",
                "last_activity": _TS, "updated_at": _TS})
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"refreshing project_stats failed, nothing changed: {exc}") from exc
