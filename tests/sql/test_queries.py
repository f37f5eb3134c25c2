"""Analytics SQL against independent pandas computations on seeded random data, on SQLite and PostgreSQL,
and on a database written exactly as the platform writes it (text timestamps, 0/1 booleans, JSON TEXT).

The query functions take a ``bind``; most tests run them on a bare engine holding the fifteen platform
tables (no Lab needed). The reference side reads the raw tables and aggregates them with pandas; nothing
in it uses omnilab.sql.queries. Windows are [now - days, now], inclusive at both ends.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from analytics_data import DAYS, NOW, US, populate

from omnilab.errors import InvalidInput, NotFound, OmnilabError
from omnilab.sample.platform import build_platform_postgres, build_platform_sqlite
from omnilab.sql import queries
from omnilab.sql.engine import create_engine
from omnilab.sql.frames import read_frame, table_dtypes
from omnilab.sql.schema import TABLES, Base

RTOL = 1e-9
#: DESIGN.md section 3's columns first, in its order; extras after them
COLUMNS = [
    "agent_id",
    "name",
    "total_tasks",
    "avg_execution_time",
    "total_tokens",
    "success_rate",
    "success_rate_low",
    "success_rate_high",
    "system_name",
    "successful_tasks",
    "failed_tasks",
]


def assert_frames(got: pd.DataFrame, ref: pd.DataFrame, dtypes: dict[str, str] | None = None) -> None:
    """Same columns, same rows in the same order, numbers equal to 1e-9 relative; and declared dtypes."""
    assert list(got.columns) == list(ref.columns)
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True),
        ref.reset_index(drop=True),
        check_dtype=False,
        check_exact=False,
        rtol=RTOL,
        atol=1e-9,
    )
    for col, dtype in (dtypes or {}).items():
        assert str(got[col].dtype) == dtype, (col, got[col].dtype)


# -------------------------------------------------------------------------------------- fixtures
@pytest.fixture
def db(tmp_path, database_url):
    """An engine on an empty database with the fifteen platform tables (SQLite file or PostgreSQL schema)."""
    engine = create_engine(database_url or f"sqlite:///{tmp_path / 'analytics.db'}")
    with engine.begin() as conn:
        Base.metadata.create_all(conn, tables=list(TABLES.values()))
    yield engine
    engine.dispose()


@pytest.fixture
def data(db):
    populate(db, seed=0)
    return db


def table(engine: sa.Engine, name: str) -> pd.DataFrame:
    """A raw table as stored (the reference side's only access to the database)."""
    t = TABLES[name]
    with engine.connect() as conn:
        return read_frame(conn, sa.select(t).order_by(*t.primary_key.columns), dtypes=table_dtypes(t))


def utc(t: dt.datetime) -> pd.Timestamp:
    """A pandas UTC timestamp (naive means UTC)."""
    t = pd.Timestamp(t)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def in_window(frame: pd.DataFrame, days: int, now: dt.datetime = NOW, col: str = "timestamp") -> pd.DataFrame:
    return frame[(frame[col] >= utc(now) - pd.Timedelta(days=days)) & (frame[col] <= utc(now))]


def rate(num: pd.Series, den: pd.Series, scale: float = 100.0) -> pd.Series:
    return (num.astype(float) * scale / den.astype(float).replace(0, np.nan)).astype(float)


def outcomes(runs: pd.DataFrame) -> pd.DataFrame:
    """Per-run flags: a NULL success is neither a success nor a failure."""
    success = runs["success"].astype("boolean")
    return runs.assign(
        win=(success == True).fillna(False).astype(int),  # noqa: E712
        fail=(success == False).fillna(False).astype(int),  # noqa: E712
        tokens=runs["tokens_used"].astype("Float64").fillna(0).astype("int64"),
        execution_time=runs["execution_time"].astype(float),
    )


def wilson_ref(wins: pd.Series, fails: pd.Series, scale: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """Wilson 95 % intervals one by one with scipy's binomtest (the code under test uses statsmodels)."""
    from scipy import stats

    low, high = [], []
    for k, f in zip(wins, fails):
        if pd.isna(k) or pd.isna(f) or k + f == 0:
            low.append(np.nan)
            high.append(np.nan)
            continue
        ci = stats.binomtest(int(k), int(k + f)).proportion_ci(confidence_level=0.95, method="wilson")
        low.append(ci.low * scale)
        high.append(ci.high * scale)
    return np.array(low, dtype=float), np.array(high, dtype=float)


def with_ci(
    frame: pd.DataFrame,
    wins: str = "successful_tasks",
    fails: str = "failed_tasks",
    rate_col: str = "success_rate",
    scale: float = 100.0,
) -> pd.DataFrame:
    out = frame.copy()
    low, high = wilson_ref(out[wins], out[fails], scale)
    at = list(out.columns).index(rate_col) + 1
    out.insert(at, f"{rate_col}_low", low)
    out.insert(at + 1, f"{rate_col}_high", high)
    return out


def partial_ref(days: pd.Series, start: dt.datetime, end: dt.datetime) -> pd.Series:
    """A UTC day is partial when the window does not contain all of it."""
    whole = (days >= utc(start)) & (days + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1) <= utc(end))
    return ~whole


# ---------------------------------------------------------------------------- the design's four
def ref_workload(agents: pd.DataFrame, tasks: pd.DataFrame) -> pd.DataFrame:
    active = tasks[tasks["status"].isin(["pending", "assigned", "in_progress"])].groupby("agent_id").size()
    ref = agents[agents["status"].isin(["idle", "busy"])].copy()
    ref["active_tasks"] = ref["id"].map(active).fillna(0).astype("int64")
    ref = ref.rename(columns={"id": "agent_id"}).sort_values(
        ["active_tasks", "priority", "agent_id"], ascending=[True, False, True], na_position="last"
    )
    return ref[["agent_id", "name", "active_tasks", "system_name", "status", "priority", "max_concurrent_tasks"]]


def test_agent_workload_matches_pandas(data):
    agents, tasks = table(data, "agents"), table(data, "tasks")
    got = queries.agent_workload(data)
    assert_frames(got, ref_workload(agents, tasks), {"active_tasks": "int64", "priority": "Int64"})
    # agent_1's tasks are all finished: it is listed with 0, not dropped (the design's bug)
    assert got.set_index("agent_id").loc["agent_1", "active_tasks"] == 0
    assert set(got["status"]) <= {"idle", "busy"} and "agent_5" not in set(got["agent_id"])  # NULL status
    assert tasks["status"].isna().any()  # NULL task statuses exist and are not active


def ref_summary(runs: pd.DataFrame, agents: pd.DataFrame) -> pd.DataFrame:
    g = outcomes(runs).groupby("agent_id")
    ref = agents[["id", "name", "system_name"]].rename(columns={"id": "agent_id"}).copy()
    ref["total_tasks"] = ref["agent_id"].map(g.size()).fillna(0).astype("int64")
    ref["avg_execution_time"] = ref["agent_id"].map(g["execution_time"].mean()).astype(float)
    ref["total_tokens"] = ref["agent_id"].map(g["tokens"].sum()).fillna(0).astype("int64")
    ref["successful_tasks"] = ref["agent_id"].map(g["win"].sum()).fillna(0).astype("int64")
    ref["failed_tasks"] = ref["agent_id"].map(g["fail"].sum()).fillna(0).astype("int64")
    ref["success_rate"] = rate(ref["successful_tasks"], ref["successful_tasks"] + ref["failed_tasks"])
    ref = ref.sort_values(
        ["success_rate", "total_tasks", "agent_id"], ascending=[False, False, True], na_position="last"
    )
    ref["success_rate_low"], ref["success_rate_high"] = wilson_ref(ref["successful_tasks"], ref["failed_tasks"])
    return ref[COLUMNS]


@pytest.mark.parametrize("days", [1, DAYS, 30])
def test_performance_summary_matches_pandas(data, days):
    runs, agents = in_window(table(data, "agent_performance"), days), table(data, "agents")
    got = queries.performance_summary(data, days, now=NOW)
    assert_frames(
        got,
        ref_summary(runs, agents),
        {"total_tasks": "int64", "avg_execution_time": "float64", "total_tokens": "int64", "success_rate": "float64"},
    )
    assert len(got) == len(agents)  # every agent, including those that never ran
    idle = got[got["total_tasks"] == 0]
    assert {"agent_7", "agent_8"} <= set(idle["agent_id"])
    assert idle["success_rate"].isna().all() and idle["avg_execution_time"].isna().all()
    assert idle["success_rate_low"].isna().all() and idle["success_rate_high"].isna().all()  # zero runs
    known = got.dropna(subset=["success_rate"])
    assert (
        (known["success_rate_low"] <= known["success_rate"]) & (known["success_rate"] <= known["success_rate_high"])
    ).all()
    assert (idle["total_tokens"] == 0).all()
    if days == 30:  # the NULL cases are really in the window
        assert runs["success"].isna().any() and runs["tokens_used"].isna().any()
        assert runs["execution_time"].isna().any()
        assert (got["total_tasks"] > got["successful_tasks"] + got["failed_tasks"]).any()


def test_window_boundaries_are_inclusive(data):
    """A run exactly `days` ago and one exactly at `now` count; a microsecond older or newer does not."""
    got = queries.performance_breakdown(data, "task_type", DAYS, now=NOW).set_index("task_type")
    edge = got.loc["boundary"]
    # boundary rows: j=0 (now - 7d, in), j=1 (now - 7d - 1us, out), j=2 (now, in), j=3 (now + 1us, out)
    assert edge["total_tasks"] == 2
    assert edge["total_tokens"] == 1000 + 3000
    assert edge["avg_execution_time"] == pytest.approx(101.0)
    # moving `now` by one microsecond moves exactly those rows across the edges
    later = queries.performance_breakdown(data, "task_type", DAYS, now=NOW + US).set_index("task_type")
    assert later.loc["boundary", "total_tasks"] == 2  # gains now+1us, loses now-7d
    assert later.loc["boundary", "total_tokens"] == 3000 + 4000
    earlier = queries.performance_breakdown(data, "task_type", DAYS, now=NOW - US).set_index("task_type")
    assert earlier.loc["boundary", "total_tokens"] == 1000 + 2000  # now-7d-1us in, now out
    errors = queries.error_summary(data, DAYS, now=NOW)
    assert "Boundary" in set(errors["error_type"]) and "Outside" not in set(errors["error_type"])
    assert "/edge" in set(queries.api_latency(data, DAYS, now=NOW)["endpoint"])
    assert "/edge" not in set(queries.api_latency(data, DAYS, now=NOW - dt.timedelta(days=DAYS) - US)["endpoint"])


def test_agent_performance_matches_pandas(data):
    runs = outcomes(in_window(table(data, "agent_performance"), 30))
    for agent_id in ["agent_0", "agent_3", "agent_6", "agent_8"]:
        mine = runs[runs["agent_id"] == agent_id]
        got = queries.agent_performance(data, agent_id, 30, now=NOW)
        wins, fails = int(mine["win"].sum()), int(mine["fail"].sum())
        assert got["total_tasks"] == len(mine)
        assert (got["successful_tasks"], got["failed_tasks"]) == (wins, fails)
        assert got["total_tokens_used"] == int(mine["tokens"].sum())
        low, high = wilson_ref(pd.Series([wins]), pd.Series([fails]))
        assert got["success_rate_low"] == pytest.approx(low[0], rel=RTOL, nan_ok=True)
        assert got["success_rate_high"] == pytest.approx(high[0], rel=RTOL, nan_ok=True)
        if len(mine):
            assert got["success_rate"] == pytest.approx(100.0 * wins / (wins + fails), rel=RTOL)
            assert got["error_rate"] == pytest.approx(100.0 * fails / (wins + fails), rel=RTOL)
            assert got["average_execution_time"] == pytest.approx(mine["execution_time"].mean(), rel=RTOL)
        else:  # agent_6 ran only 90 days ago, agent_8 never: NaN, not ZeroDivisionError
            assert math.isnan(got["success_rate"]) and math.isnan(got["error_rate"])
            assert math.isnan(got["average_execution_time"])
        assert got["window_end"] == NOW and got["window_start"] == NOW - dt.timedelta(days=30)
    assert queries.agent_performance(data, "agent_6", 100, now=NOW)["total_tasks"] == 1
    with pytest.raises(NotFound):
        queries.agent_performance(data, "nobody", now=NOW)


def ref_available(agents: pd.DataFrame, cap: str | None) -> list[str]:
    idle = agents[agents["status"] == "idle"]
    if cap is not None:
        idle = idle[idle["capabilities"].map(lambda caps: isinstance(caps, list) and cap in caps)]
    return idle.sort_values(["priority", "name", "id"], ascending=[False, True, True], na_position="last")[
        "id"
    ].tolist()


def test_available_agents_uses_exact_capabilities(data):
    agents = table(data, "agents")
    for cap in ["testing", "code", "coder", "code_review", "unit_testing_helper", "docs", "nothing"]:
        assert queries.available_agents(data, cap)["agent_id"].tolist() == ref_available(agents, cap), cap
    # the design's LIKE bug: "testing" must not match "unit_testing_helper", "code" not "code_review"
    assert "agent_0" not in set(queries.available_agents(data, "testing")["agent_id"])
    assert "agent_0" not in set(queries.available_agents(data, "code")["agent_id"])
    assert "agent_4" not in set(queries.available_agents(data, "code")["agent_id"])  # has "coder" only
    everyone = queries.available_agents(data)
    assert everyone["agent_id"].tolist() == ref_available(agents, None)
    assert everyone["agent_id"].iloc[-1] == "agent_8"  # NULL priority last
    assert everyone.set_index("agent_id").loc["agent_6", "capabilities"] is None  # NULL stays NULL
    assert list(everyone.columns) == [
        "agent_id",
        "name",
        "system_name",
        "agent_type",
        "priority",
        "capabilities",
        "max_concurrent_tasks",
    ]
    # quotes and wildcards are data, never SQL
    assert queries.available_agents(data, "%").empty
    assert queries.available_agents(data, "' OR 1=1 --").empty


# --------------------------------------------------------------------------------------- extensions
def _stats(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    frame = outcomes(frame)
    g = frame.groupby(keys, dropna=False)
    out = pd.DataFrame(
        {
            "total_tasks": g.size(),
            "successful_tasks": g["win"].sum().astype("int64"),
            "failed_tasks": g["fail"].sum().astype("int64"),
            "avg_execution_time": g["execution_time"].mean(),
            "p50_execution_time": g["execution_time"].quantile(0.5),
            "p95_execution_time": g["execution_time"].quantile(0.95),
            "total_tokens": g["tokens"].sum().astype("int64"),
        }
    ).reset_index()
    out.insert(
        len(keys) + 3, "success_rate", rate(out["successful_tasks"], out["successful_tasks"] + out["failed_tasks"])
    )
    return with_ci(out)


def test_agent_timeseries_matches_pandas(data):
    runs = in_window(table(data, "agent_performance"), 30).copy()
    runs["day"] = runs["timestamp"].dt.floor("D")
    ref = _stats(runs, ["agent_id", "day"]).sort_values(["agent_id", "day"])
    ref["partial"] = partial_ref(ref["day"], NOW - dt.timedelta(days=30), NOW)
    assert ref["partial"].any() and not ref["partial"].all()
    got = queries.agent_timeseries(data, 30, now=NOW)
    assert str(got["day"].dtype) == "datetime64[us, UTC]"
    assert_frames(got, ref, {"p95_execution_time": "float64", "total_tasks": "int64"})
    one = queries.agent_timeseries(data, 30, agent_id="agent_2", now=NOW)
    assert_frames(one, ref[ref["agent_id"] == "agent_2"])


def test_daily_trend_fills_every_day(data):
    runs = in_window(table(data, "agent_performance"), DAYS).copy()
    runs["day"] = runs["timestamp"].dt.floor("D")
    ref = _stats(runs, ["day"])
    ref["partial"] = partial_ref(ref["day"], NOW - dt.timedelta(days=DAYS), NOW)
    ref = ref.set_index("day")
    got = queries.daily_trend(data, DAYS, now=NOW)
    assert len(got) == DAYS + 1  # the window touches 8 calendar days
    # 12:00 to 12:00: the first and the last day are partial, the six between are whole
    assert got["partial"].tolist() == [True] + [False] * (DAYS - 1) + [True]
    midnight = queries.daily_trend(data, 2, now=dt.datetime(2026, 3, 15, 23, 59, 59, 999999, tzinfo=dt.timezone.utc))
    assert midnight["partial"].tolist() == [True, False, False]  # the window starts a microsecond before Mar 14
    assert_frames(got.set_index("day").loc[ref.index].reset_index(), ref.reset_index())
    quiet = queries.daily_trend(data, 3, now=NOW - dt.timedelta(days=200))
    assert len(quiet) == 4 and (quiet["total_tasks"] == 0).all() and quiet["success_rate"].isna().all()


@pytest.mark.parametrize("by", ["task_type", "system_name", "agent_type"])
def test_performance_breakdown_matches_pandas(data, by):
    runs = in_window(table(data, "agent_performance"), 30)
    agents = table(data, "agents")
    if by != "task_type":
        runs = runs.merge(agents[["id", by]], left_on="agent_id", right_on="id")
    ref = _stats(runs, [by])
    ref.insert(1, "agents", ref[by].map(runs.groupby(by, dropna=False)["agent_id"].nunique()).astype("int64"))
    ref = ref.sort_values(["success_rate", "total_tasks", by], ascending=[False, False, True], na_position="last")
    got = queries.performance_breakdown(data, by, 30, now=NOW)
    if by == "task_type":  # NULL task_type sorts differently by backend inside ties; compare as sorted
        got = got.sort_values(["success_rate", "total_tasks", by], ascending=[False, False, True], na_position="last")
    assert_frames(got, ref)


def test_breakdown_keeps_groups_without_runs(data):
    got = queries.performance_breakdown(data, "system_name", 1, now=NOW - dt.timedelta(days=300))
    assert sorted(got["system_name"]) == ["alpha", "beta", "gamma"]
    assert (got["total_tasks"] == 0).all() and got["success_rate"].isna().all()
    assert got["p50_execution_time"].isna().all()
    # omnilab's old name for the breakdown still works and answers with the platform's column
    assert_frames(
        queries.performance_breakdown(data, "system", 30, now=NOW),
        queries.performance_breakdown(data, "system_name", 30, now=NOW),
    )


def test_error_summary_matches_pandas(data):
    errors = in_window(table(data, "error_logs"), 30)
    assert errors["resolved"].isna().any()
    g = errors.assign(open=(errors["resolved"].astype("boolean") != True).fillna(True).astype(int))  # noqa: E712
    g = g.groupby(["component", "severity", "error_type"])
    ref = (
        pd.DataFrame(
            {
                "errors": g.size(),
                "unresolved": g["open"].sum(),
                "agents": g["agent_id"].nunique(),
                "first_seen": g["timestamp"].min(),
                "last_seen": g["timestamp"].max(),
            }
        )
        .reset_index()
        .sort_values(["errors", "component", "severity", "error_type"], ascending=[False, True, True, True])
    )
    got = queries.error_summary(data, 30, now=NOW)
    assert_frames(got, ref, {"errors": "int64", "first_seen": "datetime64[us, UTC]"})


def ref_latency(usage: pd.DataFrame) -> pd.DataFrame:
    usage = usage.assign(ms=usage["response_time"].astype(float) * 1000.0, status=usage["status_code"].astype(float))
    g = usage.groupby(["endpoint", "method"])
    ms = g["ms"]
    return (
        pd.DataFrame(
            {
                "requests": g.size(),
                "mean_ms": ms.mean(),
                "p50_ms": ms.quantile(0.5),
                "p95_ms": ms.quantile(0.95),
                "p99_ms": ms.quantile(0.99),
                "error_rate": g["status"].apply(
                    lambda s: 100.0 * (s >= 400).sum() / s.notna().sum() if s.notna().any() else np.nan
                ),
                **{
                    f"status_{c}xx": g["status"].apply(lambda s, c=c: int(((s >= c * 100) & (s < c * 100 + 100)).sum()))
                    for c in (2, 3, 4, 5)
                },
            }
        )
        .reset_index()
        .sort_values(["requests", "endpoint", "method"], ascending=[False, True, True])
    )


def ref_model_usage(usage: pd.DataFrame, start: dt.datetime, end: dt.datetime, by_day: bool) -> pd.DataFrame:
    usage = usage.assign(
        ms=usage["response_time"].astype(float) * 1000.0,
        status=usage["status_code"].astype(float),
        tokens=usage["tokens_used"].astype("Float64").fillna(0),
        cost=usage["cost_usd"].astype(float).fillna(0.0),
        day=usage["timestamp"].dt.floor("D"),
    )
    keys = (["day"] if by_day else []) + ["provider", "model"]
    g = usage.groupby(keys, dropna=False)
    ref = pd.DataFrame(
        {
            "calls": g.size(),
            "tokens": g["tokens"].sum().astype("int64"),
            "cost_usd": g["cost"].sum(),
            "errors": g["status"].apply(lambda s: int((s >= 400).sum())),
            "known": g["status"].apply(lambda s: int(s.notna().sum())),
            "mean_ms": g["ms"].mean(),
            "p50_ms": g["ms"].quantile(0.5),
            "p95_ms": g["ms"].quantile(0.95),
            "p99_ms": g["ms"].quantile(0.99),
        }
    ).reset_index()
    ref.insert(len(keys) + 4, "error_rate", rate(ref["errors"], ref["known"]))
    ref.insert(len(keys) + 5, "error_rate_low", wilson_ref(ref["errors"], ref["known"] - ref["errors"])[0])
    ref.insert(len(keys) + 6, "error_rate_high", wilson_ref(ref["errors"], ref["known"] - ref["errors"])[1])
    ref = ref.drop(columns="known")
    if by_day:
        ref["partial"] = partial_ref(ref["day"], start, end)
    return ref


@pytest.mark.parametrize("by_day", [True, False])
def test_model_usage_matches_pandas(data, by_day):
    usage = in_window(table(data, "api_usage"), 30)
    assert usage["model"].isna().any() and usage["cost_usd"].isna().any() and usage["status_code"].isna().any()
    got = queries.model_usage(data, 30, now=NOW, by_day=by_day)
    ref = ref_model_usage(usage, NOW - dt.timedelta(days=30), NOW, by_day)
    keys = (["day"] if by_day else []) + ["provider", "model"]
    if by_day:  # by day, then provider and model, missing ones last
        assert got["day"].is_monotonic_increasing and got["partial"].iloc[0] and got["partial"].iloc[-1]
    else:  # the costliest first
        assert got["cost_usd"].is_monotonic_decreasing
    # order inside ties differs by backend for NULL keys: compare as sorted
    assert_frames(
        got.sort_values(keys, na_position="last"),
        ref.sort_values(keys, na_position="last"),
        {"calls": "int64", "tokens": "Int64", "error_rate_low": "float64", "p99_ms": "float64"},
    )
    total = queries.model_usage(data, 30, now=NOW, by_day=False)
    assert total["calls"].sum() == len(usage) == got["calls"].sum()
    assert total["cost_usd"].sum() == pytest.approx(usage["cost_usd"].fillna(0).sum(), rel=RTOL)
    assert queries.model_usage(data, 30, now=NOW - dt.timedelta(days=400)).empty
    with pytest.raises(InvalidInput):
        queries.model_usage(data, 30, by_day="yes")


def test_api_latency_matches_pandas(data):
    usage = in_window(table(data, "api_usage"), 30)
    assert usage["response_time"].isna().any() and usage["status_code"].isna().any()
    got = queries.api_latency(data, 30, now=NOW)
    assert_frames(got, ref_latency(usage), {"p99_ms": "float64", "status_5xx": "int64"})
    assert (got["p50_ms"] <= got["p95_ms"]).all() and (got["p95_ms"] <= got["p99_ms"]).all()
    # response_time is stored in seconds, reported in milliseconds
    assert (got.loc[got["endpoint"] == "/chat", "p50_ms"] > 10).all()


@pytest.mark.parametrize("by", ["memory_type", "agent_id"])
def test_memory_access_patterns_match_pandas(data, by):
    acc = in_window(table(data, "memory_access"), 30)
    mem = table(data, "memory_entries")[["id", "memory_type"]]
    acc = acc.merge(mem, left_on="memory_id", right_on="id", suffixes=("", "_m"))
    g = acc.groupby([by, "access_type"], dropna=False)
    ref = pd.DataFrame(
        {
            "accesses": g.size(),
            "memories": g["memory_id"].nunique(),
            "agents": g["agent_id"].nunique(),
            "avg_score": g["score"].mean(),
            "last_access": g["timestamp"].max(),
        }
    ).reset_index()
    got = queries.memory_access_patterns(data, 30, by=by, now=NOW)
    # order: most accessed first; ties broken by key (NULL agent ids order per backend), so compare sorted
    assert got["accesses"].is_monotonic_decreasing
    key = [by, "access_type"]
    assert_frames(
        got.sort_values(key, na_position="first"),
        ref.sort_values(key, na_position="first"),
        {"accesses": "int64", "avg_score": "float64"},
    )


def test_refresh_project_stats_matches_pandas(data):
    tasks, files = table(data, "tasks"), table(data, "project_files")
    runs, projects = table(data, "agent_performance"), table(data, "projects")
    got = queries.refresh_project_stats(data, now=NOW)
    assert len(got) == 4 and (got["updated_at"] == pd.Timestamp(NOW)).all()
    assert got["project_id"].tolist() == projects.sort_values("name")["id"].tolist()
    assert len(table(data, "project_stats")) == 4
    assert files["line_count"].isna().any()
    for row in got.itertuples():
        t = tasks[tasks["project_id"] == row.project_id]
        f = files[files["project_id"] == row.project_id]
        k = runs[runs["task_id"].isin(t["id"])]
        assert row.tasks_total == len(t)
        assert row.tasks_completed == int((t["status"] == "completed").sum())
        assert row.tasks_failed == int((t["status"] == "failed").sum())
        assert row.agents_used == t["agent_id"].nunique()
        lines = (
            f["line_count"]
            .astype("Float64")
            .fillna(f["content"].map(lambda c: len(c.splitlines()) if isinstance(c, str) else np.nan).astype("Float64"))
        )
        assert row.files_count == len(f) and row.lines_of_code == int(lines.sum())
        assert row.total_tokens == int(k["tokens_used"].fillna(0).sum())
        done = t[(t["status"] == "completed") & t["started_at"].notna() & t["completed_at"].notna()]
        if len(done):
            expect = (done["completed_at"] - done["started_at"]).dt.total_seconds().mean()
            assert row.avg_task_duration == pytest.approx(expect, abs=1e-3)  # SQLite julianday: ~40us
        else:
            assert math.isnan(row.avg_task_duration)
        touched = t["updated_at"].fillna(t["completed_at"]).fillna(t["started_at"]).fillna(t["created_at"])
        last = pd.concat([touched, f["updated_at"].fillna(f["created_at"])]).max()
        assert (pd.isna(last) and pd.isna(row.last_activity)) or row.last_activity == last
    # idempotent: a second refresh replaces, never duplicates
    again = queries.refresh_project_stats(data, now=NOW)
    assert len(table(data, "project_stats")) == 4
    assert_frames(again, got)


def ref_agent_stats(runs: pd.DataFrame, days: int, now: dt.datetime) -> pd.DataFrame:
    first = utc(now).floor("D") - pd.Timedelta(days=days - 1)
    runs = outcomes(runs[(runs["timestamp"] >= first) & (runs["timestamp"] <= utc(now))])
    runs = runs.assign(date=runs["timestamp"].dt.floor("D"))
    g = runs.groupby(["agent_id", "date"])
    ref = pd.DataFrame(
        {
            "tasks_completed": g["win"].sum(),
            "tasks_failed": g["fail"].sum(),
            "total_execution_time": g["execution_time"].sum(),
            "total_tokens_used": g["tokens"].sum(),
            "average_response_time": g["execution_time"].mean(),
        }
    ).reset_index()
    ref["success_rate"] = rate(ref["tasks_completed"], ref["tasks_completed"] + ref["tasks_failed"], 1.0)
    ref = with_ci(ref, "tasks_completed", "tasks_failed", scale=1.0)  # the table's unit: 0..1
    return ref.sort_values(["agent_id", "date"]).reset_index(drop=True)


STATS = [
    "agent_id",
    "date",
    "tasks_completed",
    "tasks_failed",
    "total_execution_time",
    "total_tokens_used",
    "average_response_time",
    "success_rate",
    "success_rate_low",
    "success_rate_high",
]


def test_refresh_agent_stats_matches_pandas(data):
    stats = TABLES["agent_stats"]
    old, inside = dt.date(2026, 1, 1), dt.date(2026, 3, 10)
    with data.begin() as conn:  # one row outside the window (kept) and one inside (replaced)
        conn.execute(
            stats.insert(),
            [
                {"agent_id": "agent_0", "date": old, "tasks_completed": 7},
                {"agent_id": "agent_7", "date": inside, "tasks_completed": 99},
            ],
        )
    runs = table(data, "agent_performance")
    got = queries.refresh_agent_stats(data, 10, now=NOW)
    ref = ref_agent_stats(runs, 10, NOW)
    assert_frames(
        got[STATS], ref[STATS], {"date": "datetime64[us, UTC]", "tasks_completed": "Int64", "success_rate": "float64"}
    )
    assert got["date"].min() >= pd.Timestamp("2026-03-06", tz="UTC")  # 10 dates: Mar 6 .. Mar 15
    known = got["success_rate"].dropna()
    assert ((known >= 0) & (known <= 1)).all() and got["success_rate"].isna().any()  # NULL-only days: NULL
    stored = table(data, "agent_stats")
    assert old in set(stored["date"]) and "agent_7" not in set(stored["agent_id"])
    assert len(stored) == len(ref) + 1
    # the read helper gives the same rows; refreshing again replaces, never duplicates
    assert_frames(queries.agent_stats(data, 10, now=NOW), got)
    again = queries.refresh_agent_stats(data, 10, now=NOW)
    assert_frames(again.drop(columns="id"), got.drop(columns="id"))
    assert len(table(data, "agent_stats")) == len(stored)
    one = queries.agent_stats(data, 3, now=NOW, agent_id="agent_2")
    expect = ref[(ref["agent_id"] == "agent_2") & (ref["date"] >= pd.Timestamp("2026-03-13", tz="UTC"))]
    assert_frames(one[STATS], expect[STATS])
    assert queries.agent_stats(data, 30, now=NOW, agent_id="nobody").empty


# ---------------------------------------------------------------------------------- edges and errors
def test_empty_database(db):
    assert queries.performance_summary(db).empty
    assert list(queries.performance_summary(db).columns) == COLUMNS
    assert list(queries.agent_workload(db).columns)[:3] == ["agent_id", "name", "active_tasks"]
    assert queries.agent_workload(db).empty and queries.available_agents(db, "x").empty
    assert queries.agent_timeseries(db).empty and queries.error_summary(db).empty
    assert queries.api_latency(db).empty and queries.agent_stats(db).empty
    trend = queries.daily_trend(db, 5)
    assert len(trend) in (5, 6) and (trend["total_tasks"] == 0).all()
    assert queries.refresh_project_stats(db).empty and queries.refresh_agent_stats(db).empty
    with pytest.raises(NotFound):
        queries.agent_performance(db, "coder")


def test_execution_times_are_the_window_rows(data):
    runs = in_window(table(data, "agent_performance"), DAYS).sort_values("id")
    got = queries.execution_times(data, DAYS, now=NOW)
    assert got["execution_time"].tolist() == pytest.approx(runs["execution_time"].astype(float).tolist(), nan_ok=True)
    assert got["agent_id"].tolist() == runs["agent_id"].tolist()
    assert got["success"].isna().tolist() == runs["success"].isna().tolist()
    assert str(got["success"].dtype) == "boolean"
    assert list(got.columns) == ["agent_id", "system_name", "execution_time", "success"]


def test_agents_without_any_runs(db):
    with db.begin() as conn:
        conn.execute(
            TABLES["agents"].insert(),
            [
                {"id": "a", "name": "A", "agent_type": "coder", "system_name": "s1", "status": "idle"},
                {"id": "b", "name": "B", "agent_type": "tester", "system_name": "s2", "status": "busy"},
            ],
        )
    got = queries.performance_summary(db, 30)
    assert got["agent_id"].tolist() == ["a", "b"]
    assert (got["total_tasks"] == 0).all() and got["success_rate"].isna().all()
    assert queries.agent_workload(db)["active_tasks"].tolist() == [0, 0]


@pytest.mark.parametrize("days", [0, -1, 1.5, True, "7", None, queries.MAX_DAYS + 1, 10**12])
def test_bad_days_raise_invalid_input(db, days):
    for call in (
        queries.performance_summary,
        queries.agent_timeseries,
        queries.api_latency,
        queries.error_summary,
        queries.agent_stats,
        queries.refresh_agent_stats,
    ):
        with pytest.raises(InvalidInput):
            call(db, days)


def test_bad_arguments_raise_invalid_input(db):
    with pytest.raises(InvalidInput):
        queries.performance_summary(db, 7, now="yesterday")
    with pytest.raises(InvalidInput):
        queries.agent_performance(db, "")
    with pytest.raises(InvalidInput):
        queries.agent_performance(db, 42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        queries.available_agents(db, "")
    with pytest.raises(InvalidInput):
        queries.performance_breakdown(db, "colour")
    with pytest.raises(InvalidInput):
        queries.memory_access_patterns(db, by="project")
    with pytest.raises(InvalidInput):
        queries.agent_stats(db, 7, agent_id="")
    with pytest.raises(InvalidInput):
        queries.performance_summary("not an engine", 7)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        queries.refresh_agent_stats("not an engine", 7)  # type: ignore[arg-type]
    assert queries.performance_summary(db, np.int64(7)).empty  # numpy integers are whole numbers too


def test_naive_now_means_utc(data):
    aware = queries.performance_summary(data, DAYS, now=NOW)
    naive = queries.performance_summary(data, DAYS, now=NOW.replace(tzinfo=None))
    other_tz = queries.performance_summary(data, DAYS, now=NOW.astimezone(dt.timezone(dt.timedelta(hours=5))))
    assert_frames(naive, aware)
    assert_frames(other_tz, aware)


def test_queries_accept_a_connection(data):
    with data.connect() as conn:
        got = queries.performance_summary(conn, DAYS, now=NOW)
        stats = queries.refresh_agent_stats(conn, 5, now=NOW)  # joins/begins the caller's transaction
        conn.commit()
    assert_frames(got, queries.performance_summary(data, DAYS, now=NOW))
    assert_frames(stats, queries.agent_stats(data, 5, now=NOW))


def test_refresh_failure_changes_nothing(data, monkeypatch):
    """A refresh that fails half-way leaves the old rows in place (one transaction)."""
    before = queries.refresh_agent_stats(data, 10, now=NOW)
    real = queries._stats_frame

    def boom(conn, stmt):
        real(conn, stmt)
        raise sa.exc.OperationalError("SELECT", {}, Exception("disk gone"))

    monkeypatch.setattr(queries, "_stats_frame", boom)
    with pytest.raises(OmnilabError, match="nothing changed"):
        queries.refresh_agent_stats(data, 3, now=NOW + dt.timedelta(days=1))
    monkeypatch.undo()
    assert_frames(queries.agent_stats(data, 10, now=NOW), before)


@pytest.mark.postgres
def test_sqlite_and_postgresql_agree(tmp_path, pg_schema_url):
    """The same seeded data on both backends gives the same frames from every query."""
    lite, pg = create_engine(f"sqlite:///{tmp_path / 'lite.db'}"), create_engine(pg_schema_url)
    try:
        for engine in (lite, pg):
            with engine.begin() as conn:
                Base.metadata.create_all(conn, tables=list(TABLES.values()))
            populate(engine, seed=3)
        calls = [
            lambda e: queries.agent_workload(e),
            lambda e: queries.performance_summary(e, DAYS, now=NOW),
            lambda e: queries.available_agents(e, "code"),
            lambda e: queries.agent_timeseries(e, 30, now=NOW),
            lambda e: queries.daily_trend(e, 30, now=NOW),
            lambda e: queries.performance_breakdown(e, "system_name", 30, now=NOW),
            lambda e: queries.error_summary(e, 30, now=NOW),
            lambda e: queries.api_latency(e, 30, now=NOW),
            lambda e: queries.memory_access_patterns(e, 30, now=NOW),
            lambda e: queries.execution_times(e, 30, now=NOW),
            lambda e: queries.model_usage(e, 30, now=NOW),
            lambda e: queries.model_usage(e, 30, now=NOW, by_day=False),
            lambda e: queries.refresh_project_stats(e, now=NOW).drop(columns=["avg_task_duration"]),
            lambda e: queries.refresh_agent_stats(e, 30, now=NOW).drop(columns=["id"]),
        ]
        for call in calls:
            a, b = call(lite), call(pg)
            assert_frames(a, b)
            for col in a.columns:
                assert a[col].dtype == b[col].dtype, col
        x, y = (
            queries.agent_performance(lite, "agent_3", 30, now=NOW),
            queries.agent_performance(pg, "agent_3", 30, now=NOW),
        )
        assert x.keys() == y.keys()
        for key in x:
            if isinstance(x[key], float):
                assert x[key] == pytest.approx(y[key], rel=RTOL, nan_ok=True)
            else:
                assert x[key] == y[key]
    finally:
        lite.dispose()
        pg.dispose()


def test_sql_is_parameterized(data):
    """The window is a bound parameter, never spliced text (the design used str.format)."""
    stmt_text = []

    @sa.event.listens_for(data, "before_cursor_execute")
    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        stmt_text.append((statement, parameters))

    queries.performance_summary(data, 13, now=NOW)
    sa.event.remove(data, "before_cursor_execute", capture)
    statement, params = stmt_text[-1]
    assert "13" not in statement and "2026-03-02" not in statement
    assert any("2026-03-02" in str(v) for v in (params.values() if isinstance(params, dict) else params))


# ------------------------------------------------------------------------ the platform's own database
PLATFORM_NOW = dt.datetime(2026, 3, 15, 12, 0, 0)  # naive UTC, as the platform keeps time


def _ts(t: dt.datetime) -> str:
    return str(t)  # the platform's text: no fraction when the microseconds are 0


def platform_extras() -> dict[str, list[dict]]:
    """Platform-style rows for the cases platform_rows lacks: NULLs and exact window edges as text."""
    now = PLATFORM_NOW
    edge = now - dt.timedelta(days=DAYS)
    runs = [  # (timestamp, execution_time, tokens_used, success)
        (edge, 50.0, 1, 1),  # exactly 7 days ago, written without fraction
        (edge - dt.timedelta(microseconds=1), 51.0, 2, 1),  # just outside
        (edge - dt.timedelta(seconds=1), 52.0, 4, 0),  # outside
        (now, 53.0, 8, 0),  # exactly now, no fraction
        (now + dt.timedelta(seconds=1), 54.0, 16, 1),  # future
        (now - dt.timedelta(hours=1), None, None, None),  # all unknown
        (now - dt.timedelta(hours=2), 3.5, None, None),
        (now - dt.timedelta(days=2, hours=3), None, 77, 1),
    ]
    return {
        "agents": [
            {
                "id": "plat_spare",
                "name": "coder",
                "agent_type": "coder",
                "system_name": "OBELISK",
                "capabilities": None,
                "priority": None,
                "status": "idle",
                "tags": None,
                "max_concurrent_tasks": 2,
            }
        ],
        "agent_performance": [
            {
                "agent_id": "plat_spare",
                "task_type": None,
                "execution_time": e,
                "tokens_used": k,
                "success": s,
                "timestamp": _ts(ts),
            }
            for ts, e, k, s in runs
        ],
        "tasks": [
            {
                "id": "task_null",
                "content": "no status",
                "task_type": "testing",
                "agent_id": "plat_spare",
                "status": None,
                "priority": None,
                "created_at": None,
            }
        ],
    }


def platform_frame(items: list[dict], *timestamps: str) -> pd.DataFrame:
    frame = pd.DataFrame(items)
    for col in timestamps:
        frame[col] = pd.to_datetime(frame[col], format="ISO8601", utc=True)
    return frame


def check_platform(engine: sa.Engine, written: dict[str, list[dict]], *, real: str = "float64") -> None:
    """The analytics on a platform database equal pandas over the rows the platform wrote.

    ``real``: the precision of the platform's REAL columns (8 bytes on SQLite, 4 on PostgreSQL).
    """
    now = PLATFORM_NOW
    agents = platform_frame(written["agents"])
    agents["capabilities"] = agents["capabilities"].map(lambda v: json.loads(v) if isinstance(v, str) else None)
    agents["priority"] = agents["priority"].astype("Int64")
    runs = platform_frame(written["agent_performance"], "timestamp")
    runs["success"] = runs["success"].map(lambda v: None if v is None or pd.isna(v) else bool(v))
    runs["execution_time"] = runs["execution_time"].astype(float).astype(real).astype(float)
    tasks = platform_frame(written["tasks"])

    for days in (1, DAYS, 30):
        got = queries.performance_summary(engine, days, now=now)
        assert_frames(got, ref_summary(in_window(runs, days, now), agents))
    spare = queries.performance_summary(engine, DAYS, now=now).set_index("agent_id").loc["plat_spare"]
    # in: the 7-day edge, now, the three NULL-laden runs; out: just older, the future
    assert spare["total_tasks"] == 5 and spare["total_tokens"] == 1 + 8 + 77
    assert (spare["successful_tasks"], spare["failed_tasks"]) == (2, 1)

    got = queries.agent_performance(engine, "agency_coder", 30, now=now)
    mine = outcomes(in_window(runs, 30, now))
    mine = mine[mine["agent_id"] == "agency_coder"]
    assert got["total_tasks"] == len(mine) and got["total_tokens_used"] == int(mine["tokens"].sum())
    assert got["success_rate"] == pytest.approx(100 * mine["win"].sum() / (mine["win"] + mine["fail"]).sum())
    assert got["average_execution_time"] == pytest.approx(mine["execution_time"].mean(), rel=RTOL)

    ref = ref_workload(agents.assign(max_concurrent_tasks=agents["max_concurrent_tasks"]), tasks)
    assert_frames(queries.agent_workload(engine), ref)
    for cap in ("code_generation", "code_review", "code", None):
        assert queries.available_agents(engine, cap)["agent_id"].tolist() == ref_available(agents, cap), cap

    in7 = in_window(runs, DAYS, now).assign(day=lambda f: f["timestamp"].dt.floor("D"))
    trend = queries.daily_trend(engine, DAYS, now=now)
    ref = _stats(in7, ["day"])
    ref["partial"] = partial_ref(ref["day"], now - dt.timedelta(days=DAYS), now)
    ref = ref.set_index("day")
    assert_frames(trend.set_index("day").loc[ref.index].reset_index(), ref.reset_index())
    assert trend["total_tasks"].sum() == len(in7)

    usage = platform_frame(written["api_usage"], "timestamp")
    usage["response_time"] = usage["response_time"].astype(float).astype(real).astype(float)
    assert_frames(queries.api_latency(engine, 30, now=now), ref_latency(in_window(usage, 30, now)))
    # no provider / model / tokens / cost columns on the platform: one unknown model, tokens and cost NA
    models = queries.model_usage(engine, 30, now=now, by_day=False)
    assert len(models) == 1 and models["provider"].isna().all() and models["model"].isna().all()
    assert models["tokens"].isna().all() and models["cost_usd"].isna().all()
    assert models["calls"].iloc[0] == len(in_window(usage, 30, now))
    status = in_window(usage, 30, now)["status_code"].astype(float)
    assert models["error_rate"].iloc[0] == pytest.approx(100 * (status >= 400).sum() / status.notna().sum())
    errors = queries.error_summary(engine, 30, now=now)  # no `resolved` column on the platform: all open
    assert errors["errors"].sum() == len(written["error_logs"]) and (errors["unresolved"] == errors["errors"]).all()
    assert queries.memory_access_patterns(engine, 30, now=now).empty

    stats = queries.agent_stats(engine, 30, now=now)
    assert len(stats) == len(written["agent_stats"])
    assert set(stats["date"].dt.strftime("%Y-%m-%d")) == {r["date"] for r in written["agent_stats"]}
    assert stats["success_rate"].to_numpy() == pytest.approx(np.full(len(stats), 0.9), rel=1e-6)


def test_platform_sqlite_database_matches_pandas(tmp_path):
    path = tmp_path / "omnidev.db"
    written = build_platform_sqlite(path, now=PLATFORM_NOW, n_runs=400)
    extras = platform_extras()
    con = sqlite3.connect(path)
    try:
        for name, items in extras.items():
            for item in items:
                con.execute(
                    f"INSERT INTO {name} ({', '.join(item)}) VALUES ({', '.join('?' * len(item))})",
                    tuple(item.values()),
                )
                written[name].append(item)
        con.commit()
        stored = con.execute("SELECT timestamp FROM agent_performance WHERE agent_id = 'plat_spare'").fetchall()
    finally:
        con.close()
    assert ("2026-03-08 12:00:00",) in stored  # the platform's text form, no fraction
    before = path.read_bytes()
    engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        check_platform(engine, written)
        with pytest.raises(OmnilabError):  # a read-only database is never written
            queries.refresh_agent_stats(engine, 30, now=PLATFORM_NOW)
    finally:
        engine.dispose()
    assert path.read_bytes() == before


@pytest.mark.postgres
def test_platform_postgres_database_matches_pandas(pg_schema_url):
    """schema.sql on PostgreSQL: TEXT JSON, TIMESTAMP without time zone, real booleans."""
    engine = create_engine(pg_schema_url)
    try:
        raw = engine.raw_connection()
        try:
            written = build_platform_postgres(raw.driver_connection, now=PLATFORM_NOW, n_runs=400)
            extras = platform_extras()
            with raw.driver_connection.cursor() as cur:
                for name, items in extras.items():
                    for item in items:
                        row = {k: (None if v is None else bool(v)) if k == "success" else v for k, v in item.items()}
                        cur.execute(
                            f"INSERT INTO {name} ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
                            tuple(row.values()),
                        )
                        written[name].append(item)
            raw.driver_connection.commit()
        finally:
            raw.close()
        with engine.connect() as conn:  # the platform's types, not omnilab's
            kinds = dict(
                conn.exec_driver_sql(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = 'agents'"
                ).all()
            )
        assert kinds["capabilities"] == "text"
        check_platform(engine, written, real="float32")
    finally:
        engine.dispose()
