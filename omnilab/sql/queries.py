"""The platform's performance SQL, corrected: parameterized SQLAlchemy Core, aggregated in the database.

Every function takes a ``Connection`` or an ``Engine`` and returns a DataFrame (or a dict) with fixed
columns and dtypes; column names follow the platform's schema (``system_name``, ...). Time windows are
``[now - days, now]``, **both ends inclusive**: a run exactly ``days`` ago counts, one a microsecond older
does not, and rows after ``now`` are ignored (so ``now=`` gives "as of" answers and makes tests exact).
``now`` defaults to the current UTC time.

The same answers come from omnilab's own databases and from the platform's (read-only attach): on SQLite
the platform stores naive UTC timestamps as text with or without microseconds
(``'YYYY-MM-DD HH:MM:SS[.ffffff]'``), booleans as 0/1 and JSON as TEXT, and most columns are nullable.
The rules for missing values, everywhere:

- a run with NULL ``success`` counts in ``total_tasks`` but in neither ``successful_tasks`` nor
  ``failed_tasks``, and is left out of ``success_rate``'s (and ``error_rate``'s) denominator;
- NULL ``execution_time`` is left out of averages and percentiles; NULL ``tokens_used`` counts as 0;
- a row with a NULL timestamp is in no window; a task with NULL status is not active; an agent with NULL
  status or priority is not idle/busy, and NULL priorities sort last;
- omnilab's extra columns (``error_logs.resolved``, ``memory_access.score``) may be missing altogether on
  a platform database: ``unresolved`` then counts every error, ``avg_score`` is NaN.

On PostgreSQL, day boundaries are UTC for ``timestamptz`` columns (omnilab's); a platform's ``TIMESTAMP``
(naive UTC) columns need the session time zone to be UTC.

Every success rate comes with its 95 % Wilson interval (``success_rate_low``, ``success_rate_high``, in
the rate's unit) over the runs with a known outcome; NaN where there is none
(:mod:`omnilab.sql.intervals`).

Percentiles are linear-interpolated (pandas' and numpy's default, PostgreSQL's ``percentile_cont``).
PostgreSQL computes them with ``percentile_cont``; SQLite has no such aggregate, so there the rank of
each row in its group comes from window functions and the two neighbouring values are interpolated in
the same query. The results agree on both backends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any, Final, Union

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from omnilab._checks import is_integral
from omnilab.errors import InvalidInput, NotFound, OmnilabError
from omnilab.sql.frames import read_frame
from omnilab.sql.intervals import wilson_interval, with_rate_interval
from omnilab.sql.schema import TABLES
from omnilab.sql.types import UTCDateTime, utcnow

__all__ = [
    "MAX_DAYS",
    "window",
    "stats_dates",
    "agent_workload",
    "performance_summary",
    "agent_performance",
    "available_agents",
    "agent_timeseries",
    "daily_trend",
    "performance_breakdown",
    "execution_times",
    "error_summary",
    "api_latency",
    "memory_access_patterns",
    "refresh_project_stats",
    "refresh_agent_stats",
    "agent_stats",
    "two_windows",
    "period_keys",
    "period_outcomes",
    "task_type_agents",
    "model_usage",
]

Bind = Union[sa.Engine, sa.Connection]

#: the widest window accepted (ten years); anything larger is almost surely a unit mistake
MAX_DAYS = 3650

#: task statuses that occupy an agent
ACTIVE_TASK_STATUSES = ("pending", "assigned", "in_progress")
#: agent statuses that can take work
WORKING_AGENT_STATUSES = ("idle", "busy")

BREAKDOWNS = ("task_type", "system_name", "agent_type")
#: accepted spellings of a breakdown -> the column (``system`` was omnilab's old name)
_BREAKDOWN_ALIASES = {"system": "system_name"}

_agents = TABLES["agents"]
_tasks = TABLES["tasks"]
_perf = TABLES["agent_performance"]
_TS: Final = "datetime64[us, UTC]"


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


@contextlib.contextmanager
def _transaction(bind: Bind) -> Iterator[sa.Connection]:
    """A connection inside a transaction: the engine's own, or the caller's (joined if already open)."""
    if isinstance(bind, sa.Engine):
        with bind.begin() as conn:
            yield conn
    elif isinstance(bind, sa.Connection):
        if bind.in_transaction():
            yield bind
        else:
            with bind.begin():
                yield bind
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
    if not is_integral(days):
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


def stats_dates(days: Any, now: Any = None) -> tuple[dt.date, dt.date]:
    """The UTC dates of a per-day statistics window: the last ``days`` dates, today (of ``now``) included."""
    days = check_days(days)
    today = _check_now(now).date()
    return today - dt.timedelta(days=days - 1), today


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} must be a non-empty string, got {value!r}")
    return value


class _WindowEnd(sa.types.TypeDecorator):
    """A window bound: an aware datetime on PostgreSQL, naive UTC text on SQLite.

    SQLite compares the stored text, and the platform writes ``'YYYY-MM-DD HH:MM:SS'`` when the
    microseconds are 0 (``CURRENT_TIMESTAMP``, ``str(datetime)``) where omnilab writes ``.000000``. The
    upper bound is always written with microseconds, which every same-instant form sorts at or below.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def _text(self, value: dt.datetime) -> str:
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        value = value.astimezone(dt.timezone.utc)
        return self._text(value.replace(tzinfo=None)) if dialect.name == "sqlite" else value


class _WindowStart(_WindowEnd):
    """The lower bound: without microseconds when they are 0, so ``'… HH:MM:SS'`` itself is inside."""

    cache_ok = True

    def _text(self, value: dt.datetime) -> str:
        return value.strftime("%Y-%m-%d %H:%M:%S.%f" if value.microsecond else "%Y-%m-%d %H:%M:%S")


def _in_window(col: sa.ColumnElement, start: dt.datetime, end: dt.datetime) -> sa.ColumnElement:
    return sa.and_(
        col >= sa.bindparam(None, start, type_=_WindowStart()), col <= sa.bindparam(None, end, type_=_WindowEnd())
    )


def _as_float(expr: Any) -> sa.ColumnElement:
    return sa.cast(expr, sa.Float)


def _rate(numerator: Any, denominator: Any, scale: float = 100.0) -> sa.ColumnElement:
    """scale * numerator / denominator as a float, NULL (NaN) when the denominator is 0."""
    return _as_float(numerator) * scale / sa.func.nullif(denominator, 0)


def _count_if(cond: Any) -> sa.ColumnElement:
    """How many rows satisfy ``cond`` (NULL counts as not satisfied); 0 for no rows."""
    return sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)


def _day(conn: sa.Connection, col: sa.ColumnElement) -> sa.ColumnElement:
    """The UTC calendar day of a timestamp as 'YYYY-MM-DD' text."""
    if conn.dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", col), "YYYY-MM-DD")
    return sa.func.substr(col, 1, 10)  # SQLite stores naive UTC 'YYYY-MM-DD HH:MM:SS[.ffffff]'


def _seconds_between(conn: sa.Connection, start: sa.ColumnElement, end: sa.ColumnElement) -> sa.ColumnElement:
    if conn.dialect.name == "postgresql":
        return _as_float(sa.extract("epoch", end - start))
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def _has_column(conn: sa.Connection, table: str, column: str) -> bool:
    """Whether the database's ``table`` has ``column`` (omnilab's extras are absent on a platform database)."""
    return any(c["name"] == column for c in sa.inspect(conn).get_columns(table))


def _quantile_source(conn: sa.Connection, keys: Sequence[str], x: str, base: sa.Select) -> sa.Subquery:
    """``base`` as a subquery; on SQLite with each row's rank ``_rn`` and group size ``_n`` for ``x``."""
    if conn.dialect.name == "postgresql":
        return base.subquery("b")
    inner = base.subquery("raw")
    part = [inner.c[k] for k in keys]
    xc = inner.c[x]
    ranked = sa.select(
        *inner.c,
        sa.func.row_number().over(partition_by=part, order_by=(sa.case((xc.is_(None), 1), else_=0), xc)).label("_rn"),
        sa.func.count(xc).over(partition_by=part).label("_n"),
    )
    return ranked.subquery("b")


def _quantile(conn: sa.Connection, b: sa.Subquery, x: str, q: float) -> sa.ColumnElement:
    """The linear-interpolated ``q`` quantile of the non-NULL ``b.c[x]`` within the current group."""
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


def _outcomes(run_id: Any, success: Any) -> tuple[sa.ColumnElement, sa.ColumnElement, sa.ColumnElement]:
    """(total runs, successes, failures); a NULL success is neither."""
    return sa.func.count(run_id), _count_if(success.is_(True)), _count_if(success.is_(False))


def _perf_aggregates(conn: sa.Connection, b: sa.Subquery, quantiles: dict[str, float]) -> list:
    """The standard run statistics over ``b`` (columns run_id, execution_time, success, tokens_used)."""
    total, wins, fails = _outcomes(b.c.run_id, b.c.success)
    cols = [
        total.label("total_tasks"),
        wins.label("successful_tasks"),
        fails.label("failed_tasks"),
        _rate(wins, wins + fails).label("success_rate"),
        _as_float(sa.func.avg(b.c.execution_time)).label("avg_execution_time"),
    ]
    cols += [_quantile(conn, b, "execution_time", q).label(name) for name, q in quantiles.items()]
    cols.append(sa.func.coalesce(sa.func.sum(b.c.tokens_used), 0).label("total_tokens"))
    return cols


_PERF_DTYPES = {
    "total_tasks": "int64",
    "successful_tasks": "int64",
    "failed_tasks": "int64",
    "success_rate": "float64",
    "avg_execution_time": "float64",
    "p50_execution_time": "float64",
    "p95_execution_time": "float64",
    "total_tokens": "int64",
}
_P50_P95 = {"p50_execution_time": 0.5, "p95_execution_time": 0.95}


# ------------------------------------------------------------------------------ the design's queries
def agent_workload(bind: Bind) -> pd.DataFrame:
    """Every agent that can take work (idle or busy) with its active task count, least loaded first.

    Active means pending, assigned or in progress (a NULL status is not active). The task filter sits in
    the JOIN condition, so an agent whose tasks are all finished shows 0 instead of disappearing.
    Sorted by active_tasks, then priority (highest first, NULL last), then agent_id.
    Columns: agent_id, name, active_tasks (the design's three first), then system_name, status, priority
    (Int64, may be NA), max_concurrent_tasks (Int64).
    """
    a, t = _agents, _tasks
    joined = a.outerjoin(t, sa.and_(t.c.agent_id == a.c.id, t.c.status.in_(ACTIVE_TASK_STATUSES)))
    active = sa.func.count(t.c.id)
    stmt = (
        sa.select(
            a.c.id.label("agent_id"),
            a.c.name,
            active.label("active_tasks"),
            a.c.system_name,
            a.c.status,
            a.c.priority,
            a.c.max_concurrent_tasks,
        )
        .select_from(joined)
        .where(a.c.status.in_(WORKING_AGENT_STATUSES))
        .group_by(a.c.id, a.c.name, a.c.system_name, a.c.status, a.c.priority, a.c.max_concurrent_tasks)
        .order_by(active, a.c.priority.desc().nulls_last(), a.c.id)
    )
    return _frame(bind, stmt, {"priority": "Int64", "active_tasks": "int64", "max_concurrent_tasks": "Int64"})


def performance_summary(bind: Bind, days: int = 7, *, now: Any = None) -> pd.DataFrame:
    """Every agent's runs in the window: total_tasks, avg_execution_time (s), total_tokens, success_rate (%).

    The window condition is part of the LEFT JOIN, so agents without runs stay (0 tasks, NaN rates).
    total_tasks counts every run; success_rate is successful / (successful + failed) runs, so runs with a
    NULL success are left out of its denominator (NaN when no run has a known outcome); NULL tokens
    count as 0; avg_execution_time is over the runs that have one.
    Sorted by success_rate (best first, NaN last), then total_tasks, then agent_id.
    Columns: agent_id, name, total_tasks, avg_execution_time, total_tokens, success_rate (the design's),
    then success_rate_low, success_rate_high (95 % Wilson interval), system_name, successful_tasks,
    failed_tasks.
    """
    start, end = window(days, now)
    a, p = _agents, _perf
    joined = a.outerjoin(p, sa.and_(p.c.agent_id == a.c.id, _in_window(p.c.timestamp, start, end)))
    total, wins, fails = _outcomes(p.c.id, p.c.success)
    rate = _rate(wins, wins + fails).label("success_rate")
    stmt = (
        sa.select(
            a.c.id.label("agent_id"),
            a.c.name,
            total.label("total_tasks"),
            _as_float(sa.func.avg(p.c.execution_time)).label("avg_execution_time"),
            sa.func.coalesce(sa.func.sum(p.c.tokens_used), 0).label("total_tokens"),
            rate,
            a.c.system_name,
            wins.label("successful_tasks"),
            fails.label("failed_tasks"),
        )
        .select_from(joined)
        .group_by(a.c.id, a.c.name, a.c.system_name)
        .order_by(rate.desc().nulls_last(), total.desc(), a.c.id)
    )
    return with_rate_interval(
        _frame(
            bind,
            stmt,
            {
                "total_tasks": "int64",
                "avg_execution_time": "float64",
                "total_tokens": "int64",
                "success_rate": "float64",
                "successful_tasks": "int64",
                "failed_tasks": "int64",
            },
        )
    )


def agent_performance(bind: Bind, agent_id: str, days: int = 30, *, now: Any = None) -> dict[str, Any]:
    """One agent's runs in the window, aggregated in one query; unknown agent -> :class:`NotFound`.

    Keys: agent_id, name, total_tasks (every run), successful_tasks, failed_tasks, success_rate (%) with its
    95 % Wilson interval success_rate_low / success_rate_high, and
    error_rate (% failed) — both over the runs with a known (non-NULL) success, so they add up to 100 —
    average_execution_time (s, over runs that have one), total_tokens_used (NULL as 0), window_start,
    window_end. Rates and the average are NaN when there is nothing to average.
    """
    _check_name(agent_id, "agent_id")
    start, end = window(days, now)
    a, p = _agents, _perf
    joined = a.outerjoin(p, sa.and_(p.c.agent_id == a.c.id, _in_window(p.c.timestamp, start, end)))
    total, wins, fails = _outcomes(p.c.id, p.c.success)
    stmt = (
        sa.select(
            a.c.id,
            a.c.name,
            total.label("total_tasks"),
            wins.label("successful_tasks"),
            fails.label("failed_tasks"),
            _rate(wins, wins + fails).label("success_rate"),
            _rate(fails, wins + fails).label("error_rate"),
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

    def num(key: str) -> float:
        return float("nan") if row[key] is None else float(row[key])

    n_wins, n_fails = int(row["successful_tasks"]), int(row["failed_tasks"])
    low, high = wilson_interval([n_wins], [n_wins + n_fails])
    return {
        "agent_id": row["id"],
        "name": row["name"],
        "total_tasks": int(row["total_tasks"]),
        "successful_tasks": int(row["successful_tasks"]),
        "failed_tasks": int(row["failed_tasks"]),
        "success_rate": num("success_rate"),
        "success_rate_low": float(low[0]),
        "success_rate_high": float(high[0]),
        "error_rate": num("error_rate"),
        "average_execution_time": num("average_execution_time"),
        "total_tokens_used": int(row["total_tokens_used"]),
        "window_start": start,
        "window_end": end,
    }


def available_agents(bind: Bind, task_type: str | None = None) -> pd.DataFrame:
    """Idle agents, highest priority first (NULL last), then name, then id; with ``task_type``, only
    those whose capabilities list contains exactly that string (JSON containment, never a substring
    match; NULL capabilities match nothing).

    Columns: agent_id, name, system_name, agent_type, priority (Int64), capabilities (list or None),
    max_concurrent_tasks (Int64).
    """
    a = _agents
    stmt = sa.select(
        a.c.id.label("agent_id"),
        a.c.name,
        a.c.system_name,
        a.c.agent_type,
        a.c.priority,
        a.c.capabilities,
        a.c.max_concurrent_tasks,
    ).where(a.c.status == "idle")
    if task_type is not None:
        _check_name(task_type, "task_type")
        with _connect(bind) as conn:
            dialect = conn.dialect.name
        if dialect == "postgresql":
            # CAST, not a type coercion: a platform database keeps JSON in TEXT columns
            caps = sa.cast(a.c.capabilities, postgresql.JSONB())
            stmt = stmt.where(caps.contains([task_type]))  # jsonb @> '["x"]': element equality
        else:
            each = sa.func.json_each(a.c.capabilities).table_valued("value", "type")
            stmt = stmt.where(
                sa.select(sa.literal(1))
                .select_from(each)
                .where(each.c.type == "text", each.c.value == task_type)
                .exists()
            )
    stmt = stmt.order_by(a.c.priority.desc().nulls_last(), a.c.name, a.c.id)
    return _frame(bind, stmt, {"priority": "Int64", "max_concurrent_tasks": "Int64"})


# ------------------------------------------------------------------------------- what comes next
def _perf_base(start: dt.datetime, end: dt.datetime, *extra: sa.ColumnElement) -> sa.Select:
    p = _perf
    return sa.select(p.c.id.label("run_id"), p.c.execution_time, p.c.success, p.c.tokens_used, *extra).where(
        _in_window(p.c.timestamp, start, end)
    )


def agent_timeseries(bind: Bind, days: int = 30, *, agent_id: str | None = None, now: Any = None) -> pd.DataFrame:
    """Per agent and UTC day: total_tasks, successful_tasks, failed_tasks, success_rate (%) with
    success_rate_low / _high (95 % Wilson), avg/p50/p95 execution time (s), total_tokens, partial (the
    window covers only part of that day: its first and last day). Only days on which the agent ran
    appear. Sorted by agent, day.
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
            stmt = (
                sa.select(b.c.agent_id, b.c.day, *_perf_aggregates(conn, b, _P50_P95))
                .group_by(b.c.agent_id, b.c.day)
                .order_by(b.c.agent_id, b.c.day)
            )
            frame = read_frame(conn, stmt, dtypes=_PERF_DTYPES)
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc
    frame["day"] = pd.to_datetime(frame["day"], utc=True).astype(_TS)
    frame["partial"] = _partial_days(frame["day"], start, end)
    return with_rate_interval(frame)


def daily_trend(bind: Bind, days: int = 30, *, now: Any = None) -> pd.DataFrame:
    """Platform-wide per UTC day, every day of the window present (0 tasks, NaN rates on quiet days).

    Columns: day, the run statistics of :func:`agent_timeseries` (success rate with its Wilson interval)
    and partial: True for the first and last day when the window covers only part of them.
    """
    start, end = window(days, now)
    try:
        with _connect(bind) as conn:
            base = _perf_base(start, end, _day(conn, _perf.c.timestamp).label("day"))
            b = _quantile_source(conn, ["day"], "execution_time", base)
            stmt = sa.select(b.c.day, *_perf_aggregates(conn, b, _P50_P95)).group_by(b.c.day).order_by(b.c.day)
            frame = read_frame(conn, stmt, dtypes=_PERF_DTYPES)
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc
    frame["day"] = pd.to_datetime(frame["day"], utc=True).astype(_TS)
    # Calendar filling is presentation, not aggregation: quiet days become explicit zero rows.
    calendar = pd.date_range(
        pd.Timestamp(start).floor("D"), pd.Timestamp(end).floor("D"), freq="D", unit="us", name="day"
    )
    frame = frame.set_index("day").reindex(calendar).reset_index()
    for col in ("total_tasks", "successful_tasks", "failed_tasks", "total_tokens"):
        frame[col] = frame[col].fillna(0).astype("int64")
    frame["partial"] = _partial_days(frame["day"], start, end)
    return with_rate_interval(frame)


def _partial_days(days: pd.Series, start: dt.datetime, end: dt.datetime) -> pd.Series:
    """Whether the window ``[start, end]`` misses part of each UTC day: only its first and last day can."""
    first, last = pd.Timestamp(start).floor("D"), pd.Timestamp(end).floor("D")
    start_cut = pd.Timestamp(start) > first
    end_cut = pd.Timestamp(end) < last + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return ((days == first) & start_cut) | ((days == last) & end_cut)


def performance_breakdown(bind: Bind, by: str = "task_type", days: int = 30, *, now: Any = None) -> pd.DataFrame:
    """Run statistics per ``task_type``, agent ``system_name`` or ``agent_type`` over the window.

    Columns: <by>, agents (distinct agents that ran), total_tasks, successful_tasks, failed_tasks,
    success_rate (%), success_rate_low / _high (95 % Wilson), avg/p50/p95 execution time (s),
    total_tokens. By system_name/agent_type every group appears (0 tasks when idle); by task_type only
    types that ran (a NULL task_type is its own group). Sorted by success_rate (best first), then
    total_tasks. ``by="system"`` is accepted for ``system_name``.
    """
    by = _BREAKDOWN_ALIASES.get(by, by) if isinstance(by, str) else by
    if by not in BREAKDOWNS:
        raise InvalidInput(f"by must be one of {', '.join(BREAKDOWNS)}, got {by!r}")
    start, end = window(days, now)
    a, p = _agents, _perf
    try:
        with _connect(bind) as conn:
            if by == "task_type":
                base = _perf_base(start, end, p.c.task_type, p.c.agent_id)
            else:
                base = sa.select(
                    p.c.id.label("run_id"), p.c.execution_time, p.c.success, p.c.tokens_used, a.c[by], p.c.agent_id
                ).select_from(a.outerjoin(p, sa.and_(p.c.agent_id == a.c.id, _in_window(p.c.timestamp, start, end))))
            b = _quantile_source(conn, [by], "execution_time", base)
            aggs = _perf_aggregates(conn, b, _P50_P95)
            total, rate = aggs[0], aggs[3]
            stmt = (
                sa.select(b.c[by], sa.func.count(sa.distinct(b.c.agent_id)).label("agents"), *aggs)
                .group_by(b.c[by])
                .order_by(rate.desc().nulls_last(), total.desc(), b.c[by])
            )
            return with_rate_interval(read_frame(conn, stmt, dtypes={"agents": "int64", **_PERF_DTYPES}))
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc


def execution_times(bind: Bind, days: int = 30, *, now: Any = None) -> pd.DataFrame:
    """Only the columns a distribution plot needs: agent_id, system_name, execution_time (s, NaN when
    unknown), success (nullable ``boolean``), in run order."""
    start, end = window(days, now)
    a, p = _agents, _perf
    stmt = (
        sa.select(p.c.agent_id, a.c.system_name, p.c.execution_time, p.c.success)
        .select_from(p.join(a, a.c.id == p.c.agent_id))
        .where(_in_window(p.c.timestamp, start, end))
        .order_by(p.c.id)
    )
    try:
        with _connect(bind) as conn:
            frame = _read_columns(conn, stmt, floats=["execution_time"])  # many rows: built column-wise
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc
    frame["success"] = frame["success"].astype("boolean")
    return frame


def error_summary(bind: Bind, days: int = 30, *, now: Any = None) -> pd.DataFrame:
    """error_logs in the window per component, severity and error_type.

    Columns: component, severity, error_type, errors, unresolved (not marked resolved: NULL and a
    database without omnilab's ``resolved`` column count as unresolved), agents (distinct), first_seen,
    last_seen. Most frequent first.
    """
    start, end = window(days, now)
    e = TABLES["error_logs"]
    count = sa.func.count(e.c.id)
    try:
        with _connect(bind) as conn:
            resolved = e.c.resolved if _has_column(conn, "error_logs", "resolved") else sa.cast(sa.null(), sa.Boolean)
            stmt = (
                sa.select(
                    e.c.component,
                    e.c.severity,
                    e.c.error_type,
                    count.label("errors"),
                    (count - _count_if(resolved.is_(True))).label("unresolved"),
                    sa.func.count(sa.distinct(e.c.agent_id)).label("agents"),
                    sa.func.min(e.c.timestamp).label("first_seen"),
                    sa.func.max(e.c.timestamp).label("last_seen"),
                )
                .where(_in_window(e.c.timestamp, start, end))
                .group_by(e.c.component, e.c.severity, e.c.error_type)
                .order_by(count.desc(), e.c.component, e.c.severity, e.c.error_type)
            )
            return read_frame(
                conn,
                stmt,
                dtypes={
                    "errors": "int64",
                    "unresolved": "int64",
                    "agents": "int64",
                    "first_seen": _TS,
                    "last_seen": _TS,
                },
            )
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc


def api_latency(bind: Bind, days: int = 30, *, now: Any = None) -> pd.DataFrame:
    """api_usage in the window per endpoint and method: latency percentiles and status-code mix.

    ``api_usage.response_time`` is in seconds (the platform's unit); the latency columns are in
    milliseconds (seconds * 1000) over the requests that have a response time.
    Columns: endpoint, method, requests (all), mean_ms, p50_ms, p95_ms, p99_ms, error_rate (% with status
    >= 400 among requests with a status code), status_2xx, status_3xx, status_4xx, status_5xx.
    Busiest endpoint first.
    """
    start, end = window(days, now)
    u = TABLES["api_usage"]
    try:
        with _connect(bind) as conn:
            base = sa.select(
                u.c.id, u.c.endpoint, u.c.method, u.c.status_code, (u.c.response_time * 1000.0).label("response_ms")
            ).where(_in_window(u.c.timestamp, start, end))
            b = _quantile_source(conn, ["endpoint", "method"], "response_ms", base)
            count = sa.func.count(b.c.id)

            def in_class(lo: int) -> sa.ColumnElement:
                return _count_if(sa.and_(b.c.status_code >= lo, b.c.status_code < lo + 100))

            stmt = (
                sa.select(
                    b.c.endpoint,
                    b.c.method,
                    count.label("requests"),
                    _as_float(sa.func.avg(b.c.response_ms)).label("mean_ms"),
                    *(_quantile(conn, b, "response_ms", q).label(f"p{round(q * 100)}_ms") for q in (0.5, 0.95, 0.99)),
                    _rate(_count_if(b.c.status_code >= 400), sa.func.count(b.c.status_code)).label("error_rate"),
                    *(in_class(c).label(f"status_{c // 100}xx") for c in (200, 300, 400, 500)),
                )
                .group_by(b.c.endpoint, b.c.method)
                .order_by(count.desc(), b.c.endpoint, b.c.method)
            )
            return read_frame(
                conn,
                stmt,
                dtypes={
                    "requests": "int64",
                    "mean_ms": "float64",
                    "p50_ms": "float64",
                    "p95_ms": "float64",
                    "p99_ms": "float64",
                    "error_rate": "float64",
                    "status_2xx": "int64",
                    "status_3xx": "int64",
                    "status_4xx": "int64",
                    "status_5xx": "int64",
                },
            )
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc


def memory_access_patterns(bind: Bind, days: int = 30, *, by: str = "memory_type", now: Any = None) -> pd.DataFrame:
    """memory_access in the window per ``memory_type`` or ``agent_id`` (of the reader) and access_type.

    Columns: <by>, access_type, accesses, memories (distinct memory ids), agents (distinct readers),
    avg_score (NaN on a database without omnilab's ``score`` column), last_access. Most accessed first.
    """
    if by not in ("memory_type", "agent_id"):
        raise InvalidInput(f"by must be 'memory_type' or 'agent_id', got {by!r}")
    start, end = window(days, now)
    m, e = TABLES["memory_access"], TABLES["memory_entries"]
    key = e.c.memory_type if by == "memory_type" else m.c.agent_id
    count = sa.func.count(m.c.id)
    try:
        with _connect(bind) as conn:
            score = m.c.score if _has_column(conn, "memory_access", "score") else sa.cast(sa.null(), sa.Float)
            stmt = (
                sa.select(
                    key.label(by),
                    m.c.access_type,
                    count.label("accesses"),
                    sa.func.count(sa.distinct(m.c.memory_id)).label("memories"),
                    sa.func.count(sa.distinct(m.c.agent_id)).label("agents"),
                    _as_float(sa.func.avg(score)).label("avg_score"),
                    sa.func.max(m.c.timestamp).label("last_access"),
                )
                .select_from(m.join(e, e.c.id == m.c.memory_id))
                .where(_in_window(m.c.timestamp, start, end))
                .group_by(key, m.c.access_type)
                .order_by(count.desc(), key, m.c.access_type)
            )
            return read_frame(
                conn,
                stmt,
                dtypes={
                    "accesses": "int64",
                    "memories": "int64",
                    "agents": "int64",
                    "avg_score": "float64",
                    "last_access": _TS,
                },
            )
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc


# ------------------------------------------------------------------------------ derived statistics
def _later(a: Any, b: Any) -> sa.ColumnElement:
    """The later of two nullable timestamps (NULL only when both are)."""
    return sa.case((a.is_(None), b), (b.is_(None), a), (a > b, a), else_=b)


def _line_count(content: Any) -> sa.ColumnElement:
    """Lines of a text as ``len(text.splitlines())`` counts them for '\\n' line ends (NULL for NULL)."""
    nl = sa.literal("\n", sa.String)
    newlines = sa.func.length(content) - sa.func.length(sa.func.replace(content, nl, ""))
    unterminated = sa.case(
        (sa.and_(sa.func.length(content) > 0, sa.func.substr(content, sa.func.length(content), 1) != nl), 1), else_=0
    )
    return newlines + unterminated


def refresh_project_stats(bind: Bind, *, now: Any = None) -> pd.DataFrame:
    """Recompute project_stats (one row per project) from tasks, project_files and agent_performance.

    One transaction: every old row is replaced by an INSERT … SELECT, so readers never see a half
    refresh. Platform columns: files_count, lines_of_code (per file its line_count, else the lines of its
    content), tasks_completed, agents_used (distinct agents assigned to the project's tasks),
    last_activity (the newest task — updated, completed, started or created — or file update). omnilab's
    extras: tasks_total, tasks_failed, total_tokens (runs whose task belongs to the project, NULL as 0),
    avg_task_duration (mean completed_at - started_at in s over completed tasks), updated_at (``now``).
    Returns the new rows with the project name, by project name then id.
    """
    stamp = _check_now(now)
    t, f, s, pr = _tasks, TABLES["project_files"], TABLES["project_stats"], TABLES["projects"]
    try:
        with _transaction(bind) as conn:
            done = sa.and_(t.c.status == "completed", t.c.started_at.is_not(None), t.c.completed_at.is_not(None))
            touched = sa.func.coalesce(t.c.updated_at, t.c.completed_at, t.c.started_at, t.c.created_at)
            tq = (
                sa.select(
                    t.c.project_id.label("pid"),
                    sa.func.count(t.c.id).label("total"),
                    _count_if(t.c.status == "completed").label("completed"),
                    _count_if(t.c.status == "failed").label("failed"),
                    sa.func.count(sa.distinct(t.c.agent_id)).label("agents"),
                    sa.func.avg(sa.case((done, _seconds_between(conn, t.c.started_at, t.c.completed_at)))).label("dur"),
                    sa.func.max(touched).label("last"),
                )
                .where(t.c.project_id.is_not(None))
                .group_by(t.c.project_id)
                .subquery("tq")
            )
            fq = (
                sa.select(
                    f.c.project_id.label("pid"),
                    sa.func.count(f.c.id).label("files"),
                    sa.func.sum(sa.func.coalesce(f.c.line_count, _line_count(f.c.content))).label("lines"),
                    sa.func.max(sa.func.coalesce(f.c.updated_at, f.c.created_at)).label("last"),
                )
                .group_by(f.c.project_id)
                .subquery("fq")
            )
            kq = (
                sa.select(t.c.project_id.label("pid"), sa.func.sum(_perf.c.tokens_used).label("tokens"))
                .select_from(_perf.join(t, t.c.id == _perf.c.task_id))
                .where(t.c.project_id.is_not(None))
                .group_by(t.c.project_id)
                .subquery("kq")
            )
            cols = {
                "project_id": pr.c.id,
                "files_count": sa.func.coalesce(fq.c.files, 0),
                "lines_of_code": sa.func.coalesce(fq.c.lines, 0),
                "tasks_completed": sa.func.coalesce(tq.c.completed, 0),
                "agents_used": sa.func.coalesce(tq.c.agents, 0),
                "last_activity": sa.type_coerce(_later(tq.c["last"], fq.c["last"]), UTCDateTime()),
                "tasks_total": sa.func.coalesce(tq.c.total, 0),
                "tasks_failed": sa.func.coalesce(tq.c.failed, 0),
                "total_tokens": sa.func.coalesce(kq.c.tokens, 0),
                "avg_task_duration": _as_float(tq.c.dur),
                "updated_at": sa.literal(stamp, UTCDateTime()),
            }
            src = sa.select(*cols.values()).select_from(
                pr.outerjoin(tq, tq.c.pid == pr.c.id)
                .outerjoin(fq, fq.c.pid == pr.c.id)
                .outerjoin(kq, kq.c.pid == pr.c.id)
            )
            conn.execute(s.delete())
            conn.execute(s.insert().from_select(list(cols), src))
            out = (
                sa.select(s.c.project_id, pr.c.name, *(s.c[c] for c in list(cols)[1:]))
                .select_from(s.join(pr, pr.c.id == s.c.project_id))
                .order_by(pr.c.name, pr.c.id)
            )
            return read_frame(
                conn,
                out,
                dtypes={
                    **{
                        c: "int64"
                        for c in (
                            "files_count",
                            "lines_of_code",
                            "tasks_completed",
                            "agents_used",
                            "tasks_total",
                            "tasks_failed",
                            "total_tokens",
                        )
                    },
                    "avg_task_duration": "float64",
                    "last_activity": _TS,
                    "updated_at": _TS,
                },
            )
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"refreshing project_stats failed, nothing changed: {exc}") from exc


def _date(conn: sa.Connection, col: sa.ColumnElement) -> sa.ColumnElement:
    """The UTC date of a timestamp, as the ``agent_stats.date`` column stores it."""
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("UTC", col), sa.Date)
    return sa.func.substr(col, 1, 10)  # SQLite: 'YYYY-MM-DD' text, as SQLAlchemy's Date writes it


_STATS_COLUMNS = (
    "tasks_completed",
    "tasks_failed",
    "total_execution_time",
    "total_tokens_used",
    "average_response_time",
    "success_rate",
)
_STATS_DTYPES = {
    "tasks_completed": "Int64",
    "tasks_failed": "Int64",
    "total_execution_time": "float64",
    "total_tokens_used": "Int64",
    "average_response_time": "float64",
    "success_rate": "float64",
}


def _stats_select(start: dt.date, end: dt.date, agent_id: str | None) -> sa.Select:
    s, a = TABLES["agent_stats"], _agents
    stmt = (
        sa.select(s.c.id, s.c.agent_id, a.c.name, s.c.date, *(s.c[c] for c in _STATS_COLUMNS))
        .select_from(s.outerjoin(a, a.c.id == s.c.agent_id))
        .where(s.c.date >= start, s.c.date <= end)
        .order_by(s.c.agent_id, s.c.date, s.c.id)
    )
    if agent_id is not None:
        stmt = stmt.where(s.c.agent_id == agent_id)
    return stmt


def _stats_frame(conn: sa.Connection, stmt: sa.Select) -> pd.DataFrame:
    frame = read_frame(conn, stmt, dtypes={"id": "int64", **_STATS_DTYPES})
    frame["date"] = pd.to_datetime(frame["date"].astype(object), utc=True).astype(_TS)
    # the interval from the day's counts, in the table's unit (0..1)
    return with_rate_interval(frame, successes="tasks_completed", failures="tasks_failed", scale=1.0)


def refresh_agent_stats(bind: Bind, days: int = 30, *, now: Any = None) -> pd.DataFrame:
    """Recompute the platform's per-day agent_stats rows from agent_performance for the last ``days`` UTC
    dates (today, the date of ``now``, included; runs up to ``now``).

    One row per agent per date on which it ran: tasks_completed (runs with success true), tasks_failed
    (success false; NULL success is neither), total_execution_time (s, NULL as 0), total_tokens_used
    (NULL as 0), average_response_time (mean execution time in s; NULL when no run has one), success_rate
    (0..1 over completed + failed; NULL when neither). In one transaction every agent_stats row dated in
    the window is replaced; older rows stay. Returns the new rows (see :func:`agent_stats`).
    """
    first, last = stats_dates(days, now)
    end = _check_now(now)
    start = dt.datetime.combine(first, dt.time(), tzinfo=dt.timezone.utc)
    s, p = TABLES["agent_stats"], _perf
    try:
        with _transaction(bind) as conn:
            day = _date(conn, p.c.timestamp).label("day")
            runs = (
                sa.select(p.c.agent_id, day, p.c.success, p.c.execution_time, p.c.tokens_used)
                .where(_in_window(p.c.timestamp, start, end))
                .subquery("r")
            )
            _total, wins, fails = _outcomes(runs.c.agent_id, runs.c.success)
            src = sa.select(
                runs.c.agent_id,
                runs.c.day,
                wins,
                fails,
                _as_float(sa.func.coalesce(sa.func.sum(runs.c.execution_time), 0)),
                sa.func.coalesce(sa.func.sum(runs.c.tokens_used), 0),
                _as_float(sa.func.avg(runs.c.execution_time)),
                _rate(wins, wins + fails, scale=1.0),
            ).group_by(runs.c.agent_id, runs.c.day)
            conn.execute(s.delete().where(s.c.date >= first, s.c.date <= last))
            conn.execute(s.insert().from_select(["agent_id", "date", *_STATS_COLUMNS], src))
            return _stats_frame(conn, _stats_select(first, last, None))
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"refreshing agent_stats failed, nothing changed: {exc}") from exc


def agent_stats(bind: Bind, days: int = 30, *, now: Any = None, agent_id: str | None = None) -> pd.DataFrame:
    """The platform's daily agent_stats rows dated in the last ``days`` UTC dates (today included).

    Columns: id, agent_id, name (NaN for an unknown agent), date (midnight UTC, ``datetime64[us, UTC]``
    like the ``day`` of :func:`agent_timeseries`), tasks_completed, tasks_failed (Int64),
    total_execution_time (s), total_tokens_used (Int64), average_response_time (s), success_rate (0..1),
    success_rate_low / _high (0..1: the 95 % Wilson interval of tasks_completed / (completed + failed)).
    Sorted by agent_id, date. Rows are returned as stored (written by the platform or by
    :func:`refresh_agent_stats`).
    """
    first, last = stats_dates(days, now)
    if agent_id is not None:
        _check_name(agent_id, "agent_id")
    try:
        with _connect(bind) as conn:
            return _stats_frame(conn, _stats_select(first, last, agent_id))
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc


# ------------------------------------------------------------------------ comparisons and models
def two_windows(days: Any, now: Any = None) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """``(previous_start, current_start, end)``: the current window ``[end - days, end]`` (inclusive, as
    everywhere) and the previous one ``[end - 2 days, end - days)``, so no run is in both."""
    days = check_days(days)
    end = _check_now(now)
    return end - dt.timedelta(days=2 * days), end - dt.timedelta(days=days), end


def period_keys(by: str) -> list[str]:
    """The grouping columns of :func:`period_outcomes` for ``by``."""
    return ["provider", "model"] if by == "model" else [by]


def _period_source(conn: sa.Connection, by: str, periods: tuple[dt.datetime, ...]) -> tuple[sa.Select, list[str]]:
    """Rows of both windows: key column(s), period ('previous'/'current'), run_id, execution_time, win, fail."""
    prev, cur, end = periods
    if by == "model":
        u = TABLES["api_usage"]
        keys = [
            u.c[k] if _has_column(conn, "api_usage", k) else sa.cast(sa.null(), sa.String).label(k)
            for k in ("provider", "model")
        ]
        ts, row_id, seconds = u.c.timestamp, u.c.id, u.c.response_time
        win, fail = u.c.status_code < 400, u.c.status_code >= 400  # NULL status: neither
        source: Any = u
    else:
        p, a = _perf, _agents
        ts, row_id, seconds = p.c.timestamp, p.c.id, p.c.execution_time
        win, fail = p.c.success.is_(True), p.c.success.is_(False)
        if by in ("system_name", "agent_type"):
            keys, source = [a.c[by]], p.join(a, a.c.id == p.c.agent_id)
        else:
            keys, source = [p.c[by]], p
    period = sa.case((ts >= sa.bindparam(None, cur, type_=_WindowStart()), "current"), else_="previous")
    base = (
        sa.select(
            *keys,
            period.label("period"),
            row_id.label("run_id"),
            seconds.label("execution_time"),
            sa.case((win, 1), else_=0).label("win"),
            sa.case((fail, 1), else_=0).label("fail"),
        )
        .select_from(source)
        .where(_in_window(ts, prev, end))
    )
    return base, [k.name for k in keys]


def _read_columns(conn: sa.Connection, stmt: sa.Select, floats: Sequence[str] = ()) -> pd.DataFrame:
    """A many-row, few-column result as a DataFrame, built column-wise (several times faster than
    :func:`read_frame`'s records for the raw execution times of a window); ``floats`` become float64."""
    result = conn.execute(stmt)
    names = list(result.keys())
    rows = result.fetchall()
    columns = list(zip(*rows)) if rows else [()] * len(names)
    return pd.DataFrame({n: np.array(c, dtype=float if n in floats else object) for n, c in zip(names, columns)})


def period_outcomes(
    bind: Bind, by: str, periods: tuple[dt.datetime, dt.datetime, dt.datetime]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per group of ``by`` and window of :func:`two_windows`: the counts frame and the raw times frame.

    Counts: the key(s) (for agent_id also name and system_name; every agent, and for system_name /
    agent_type every group, appears), then per window ``previous`` and ``current``: runs_<w>,
    successful_<w>, failed_<w>, success_rate_<w> (%), median_time_<w> (s). Times: key(s), period,
    execution_time (the non-NULL ones), for the rank tests. The counts are aggregated in the database;
    the medians come from the times, which the rank tests need anyway (SQLite has no percentile
    aggregate, and ranking the rows twice would double the cost).
    """
    try:
        with _connect(bind) as conn:
            base, keys = _period_source(conn, by, periods)
            b = base.subquery("b")
            wins, fails = sa.func.coalesce(sa.func.sum(b.c.win), 0), sa.func.coalesce(sa.func.sum(b.c.fail), 0)
            stmt = sa.select(
                *(b.c[k] for k in keys),
                b.c.period,
                sa.func.count(b.c.run_id).label("runs"),
                wins.label("successful"),
                fails.label("failed"),
                _rate(wins, wins + fails).label("success_rate"),
            ).group_by(*(b.c[k] for k in keys), b.c.period)
            counts = read_frame(
                conn,
                stmt,
                dtypes={"runs": "int64", "successful": "int64", "failed": "int64", "success_rate": "float64"},
            )
            times = _read_columns(
                conn,
                sa.select(*(b.c[k] for k in keys), b.c.period, b.c.execution_time).where(
                    b.c.execution_time.is_not(None)
                ),
                floats=["execution_time"],
            )
            groups = None
            if by == "agent_id":
                groups = read_frame(
                    conn,
                    sa.select(_agents.c.id.label("agent_id"), _agents.c.name, _agents.c.system_name).order_by(
                        _agents.c.id
                    ),
                )
            elif by in ("system_name", "agent_type"):
                groups = read_frame(conn, sa.select(_agents.c[by]).distinct())
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc
    for k in keys:  # all-NULL or empty key columns come back as float: make the merges below match
        counts[k], times[k] = counts[k].astype(object), times[k].astype(object)
    medians = (
        times.groupby([*keys, "period"], dropna=False)["execution_time"]
        .median()
        .rename("median_time")
        .reset_index()
        .astype({k: object for k in keys})
    )
    counts = counts.merge(medians, on=[*keys, "period"], how="left")
    measures = ["runs", "successful", "failed", "success_rate", "median_time"]
    sides = [
        counts.loc[counts["period"] == w, [*keys, *measures]].rename(columns={m: f"{m}_{w}" for m in measures})
        for w in ("previous", "current")
    ]
    frame = sides[0].merge(sides[1], on=keys, how="outer")  # pandas matches NULL keys with each other
    if groups is not None:
        frame = groups.merge(frame, on=keys, how="left")
    for w in ("previous", "current"):
        for m in ("runs", "successful", "failed"):
            frame[f"{m}_{w}"] = frame[f"{m}_{w}"].fillna(0).astype("int64")
        frame[f"success_rate_{w}"] = frame[f"success_rate_{w}"].astype(float)
        frame[f"median_time_{w}"] = frame[f"median_time_{w}"].astype(float)
    return frame.reset_index(drop=True), times


def task_type_agents(
    bind: Bind, task_type: str, days: int = 30, *, now: Any = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The agents that ran ``task_type`` in the window and their non-NULL execution times.

    Agents: agent_id, name, system_name, runs, successful_tasks, failed_tasks, success_rate (%),
    p50_execution_time, p95_execution_time (s), total_tokens; best rate first (NaN last), then runs, id.
    Times: agent_id, execution_time.
    """
    _check_name(task_type, "task_type")
    start, end = window(days, now)
    p, a = _perf, _agents
    try:
        with _connect(bind) as conn:
            base = _perf_base(start, end, p.c.agent_id).where(p.c.task_type == task_type)
            b = _quantile_source(conn, ["agent_id"], "execution_time", base)
            aggs = _perf_aggregates(conn, b, _P50_P95)
            agg = sa.select(b.c.agent_id, *aggs).group_by(b.c.agent_id).subquery("g")
            stmt = (
                sa.select(
                    agg.c.agent_id,
                    a.c.name,
                    a.c.system_name,
                    agg.c.total_tasks.label("runs"),
                    agg.c.successful_tasks,
                    agg.c.failed_tasks,
                    agg.c.success_rate,
                    agg.c.p50_execution_time,
                    agg.c.p95_execution_time,
                    agg.c.total_tokens,
                )
                .select_from(agg.outerjoin(a, a.c.id == agg.c.agent_id))
                .order_by(agg.c.success_rate.desc().nulls_last(), agg.c.total_tasks.desc(), agg.c.agent_id)
            )
            agents = read_frame(conn, stmt, dtypes={**_PERF_DTYPES, "runs": "int64"})
            raw = base.subquery("t")
            times = _read_columns(
                conn,
                sa.select(raw.c.agent_id, raw.c.execution_time).where(raw.c.execution_time.is_not(None)),
                floats=["execution_time"],
            )
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc
    return agents, times


def model_usage(bind: Bind, days: int = 30, *, now: Any = None, by_day: bool = True) -> pd.DataFrame:
    """api_usage in the window per provider and model (and UTC day unless ``by_day=False``).

    Columns: [day,] provider, model (None for calls without one, e.g. internal endpoints), calls,
    tokens (NULL as 0), cost_usd (NULL as 0), errors (status >= 400), error_rate (% of the calls with a
    status code) with error_rate_low / _high (95 % Wilson), mean_ms, p50_ms, p95_ms, p99_ms (latency over
    the calls with a response time; the platform stores seconds), [partial: the window covers only part
    of the day]. On a platform database without omnilab's provider / model / tokens_used / cost_usd
    columns those are None / NA. By day: day, provider, model order; otherwise the costliest first.
    """
    if not isinstance(by_day, bool):
        raise InvalidInput(f"by_day must be True or False, got {by_day!r}")
    start, end = window(days, now)
    u = TABLES["api_usage"]
    try:
        with _connect(bind) as conn:

            def col(name: str, type_: Any) -> sa.ColumnElement:
                present = _has_column(conn, "api_usage", name)
                return (u.c[name] if present else sa.cast(sa.null(), type_)).label(name)

            keys = (["day"] if by_day else []) + ["provider", "model"]
            base = sa.select(
                u.c.id,
                u.c.status_code,
                (u.c.response_time * 1000.0).label("response_ms"),
                col("provider", sa.String),
                col("model", sa.String),
                col("tokens_used", sa.Integer),
                col("cost_usd", sa.Float),
                *([_day(conn, u.c.timestamp).label("day")] if by_day else []),
            ).where(_in_window(u.c.timestamp, start, end))
            b = _quantile_source(conn, keys, "response_ms", base)
            errors = _count_if(b.c.status_code >= 400)
            known = sa.func.count(b.c.status_code)
            has_tokens = _has_column(conn, "api_usage", "tokens_used")
            has_cost = _has_column(conn, "api_usage", "cost_usd")
            cost = sa.func.coalesce(sa.func.sum(b.c.cost_usd), 0.0) if has_cost else sa.cast(sa.null(), sa.Float)
            stmt = sa.select(
                *(b.c[k] for k in keys),
                sa.func.count(b.c.id).label("calls"),
                (
                    sa.func.coalesce(sa.func.sum(b.c.tokens_used), 0) if has_tokens else sa.cast(sa.null(), sa.Integer)
                ).label("tokens"),
                _as_float(cost).label("cost_usd"),
                errors.label("errors"),
                (known - errors).label("_ok"),
                _rate(errors, known).label("error_rate"),
                _as_float(sa.func.avg(b.c.response_ms)).label("mean_ms"),
                *(_quantile(conn, b, "response_ms", q).label(f"p{round(q * 100)}_ms") for q in (0.5, 0.95, 0.99)),
            ).group_by(*(b.c[k] for k in keys))
            order = [b.c.day] if by_day else [cost.desc(), sa.func.count(b.c.id).desc()]
            stmt = stmt.order_by(*order, b.c.provider.asc().nulls_last(), b.c.model.asc().nulls_last())
            frame = read_frame(
                conn,
                stmt,
                dtypes={
                    "calls": "int64",
                    "tokens": "Int64",
                    "cost_usd": "float64",
                    "errors": "int64",
                    "_ok": "int64",
                    "error_rate": "float64",
                    "mean_ms": "float64",
                    "p50_ms": "float64",
                    "p95_ms": "float64",
                    "p99_ms": "float64",
                },
            )
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"analytics query failed: {exc}") from exc
    frame = with_rate_interval(frame, successes="errors", failures="_ok", rate="error_rate").drop(columns="_ok")
    if by_day:
        frame["day"] = pd.to_datetime(frame["day"], utc=True).astype(_TS)
        frame["partial"] = _partial_days(frame["day"], start, end)
    return frame
