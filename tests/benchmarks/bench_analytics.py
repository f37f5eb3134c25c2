"""Benchmark: ``performance_summary`` in SQL vs the design's ORM approach vs pandas.read_sql + groupby.

On the ``large`` OmniDev sample (>= 1M agent_performance rows), for each window (days) and backend:

- ``sql``    omnilab.sql.queries.performance_summary: one GROUP BY query, aggregated in the database;
- ``orm``    the design's approach: the window's rows as ORM objects, aggregated in a Python loop;
- ``pandas`` pandas.read_sql of the four needed columns, then groupby + merge with the agents.

All three results are checked equal (same agents, counts and tokens exact, averages/rates to 1e-9).
Prints a table of medians and ratios (baseline median / sql median), the query plans (EXPLAIN QUERY PLAN
on SQLite, EXPLAIN ANALYZE on PostgreSQL) and a JSON document.

    python tests/benchmarks/bench_analytics.py                     # SQLite, lab in a temp dir
    python tests/benchmarks/bench_analytics.py --lab /tmp/big --pg postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

import omnilab
from omnilab.sql import queries
from omnilab.sql.schema import TABLES, Agent, AgentPerformance

COLUMNS = ["agent_id", "name", "system_name", "total_tasks", "avg_execution_time", "total_tokens", "success_rate"]


# ------------------------------------------------------------------------------------------ approaches
def sql_summary(engine: sa.Engine, days: int, now: Any) -> pd.DataFrame:
    return queries.performance_summary(engine, days, now=now)


def orm_summary(engine: sa.Engine, days: int, now: Any) -> pd.DataFrame:
    """The design's way: load the window's rows as ORM objects and aggregate them in Python (NULL-safe:
    unknown outcomes out of the rate's denominator, unknown times out of the mean, unknown tokens as 0)."""
    start, end = queries.window(days, now)
    with Session(engine) as session:
        agents = session.scalars(sa.select(Agent)).all()
        runs = session.scalars(
            sa.select(AgentPerformance).where(AgentPerformance.timestamp >= start, AgentPerformance.timestamp <= end)
        ).all()
        acc: dict[str, list] = {a.id: [0, 0.0, 0, 0, 0, 0] for a in agents}  # n, s, timed, tokens, wins, known
        for run in runs:
            a = acc[run.agent_id]
            a[0] += 1
            if run.execution_time is not None:
                a[1] += run.execution_time
                a[2] += 1
            a[3] += run.tokens_used or 0
            if run.success is not None:
                a[4] += 1 if run.success else 0
                a[5] += 1
        rows = []
        for agent in agents:
            n, seconds, timed, tokens, wins, known = acc[agent.id]
            rows.append(
                {
                    "agent_id": agent.id,
                    "name": agent.name,
                    "system_name": agent.system_name,
                    "total_tasks": n,
                    "avg_execution_time": seconds / timed if timed else float("nan"),
                    "total_tokens": tokens,
                    "success_rate": wins * 100.0 / known if known else float("nan"),
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def pandas_summary(engine: sa.Engine, days: int, now: Any) -> pd.DataFrame:
    """pandas.read_sql of only the needed columns, then groupby and a merge with the agents."""
    start, end = queries.window(days, now)
    p, a = TABLES["agent_performance"], TABLES["agents"]
    with engine.connect() as conn:
        runs = pd.read_sql(
            sa.select(p.c.agent_id, p.c.execution_time, p.c.success, p.c.tokens_used).where(
                p.c.timestamp >= start, p.c.timestamp <= end
            ),
            conn,
        )
        agents = pd.read_sql(sa.select(a.c.id.label("agent_id"), a.c.name, a.c.system_name), conn)
    success = runs["success"].astype("boolean")
    runs = runs.assign(win=(success == True).fillna(False), known=success.notna())  # noqa: E712
    g = runs.groupby("agent_id").agg(
        total_tasks=("agent_id", "size"),
        avg_execution_time=("execution_time", "mean"),
        total_tokens=("tokens_used", "sum"),
        wins=("win", "sum"),
        known=("known", "sum"),
    )
    out = agents.merge(g, left_on="agent_id", right_index=True, how="left")
    out["total_tasks"] = out["total_tasks"].fillna(0).astype("int64")
    out["total_tokens"] = out["total_tokens"].fillna(0).astype("int64")
    out["success_rate"] = (out["wins"] * 100.0 / out["known"].where(out["known"] > 0)).astype(float)
    return out[COLUMNS]


APPROACHES: dict[str, Callable[[sa.Engine, int, Any], pd.DataFrame]] = {
    "sql": sql_summary,
    "pandas": pandas_summary,
    "orm": orm_summary,
}


# -------------------------------------------------------------------------------------------- helpers
def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a.sort_values("agent_id").reset_index(drop=True)
    b = b.sort_values("agent_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a[COLUMNS], b[COLUMNS], check_dtype=False, check_exact=False, rtol=1e-9)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    fn()  # warm-up: caches, connection pool, statement compilation
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def query_plan(engine: sa.Engine, days: int, now: Any) -> str:
    """The plan of the exact statement performance_summary sends (captured, then EXPLAINed)."""
    captured: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        captured.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        queries.performance_summary(engine, days, now=now)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    statement, params = captured[-1]
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            return "\n".join(f"  {'  ' * (r[1] > 0)}{r[3]}" for r in rows)
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, params).all()
        return "\n".join(f"  {r[0]}" for r in rows)


def bench_backend(lab: omnilab.Lab, days_list: list[int], repeats: int, orm_repeats: int) -> list[dict]:
    engine = lab.engine
    n_rows = int(lab.counts()["agent_performance"])
    if lab.backend == "postgresql":  # what autovacuum does after a bulk load: stats + visibility map
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE agent_performance")
            conn.exec_driver_sql("VACUUM ANALYZE agents")
    # The sample is anchored at the current hour, so "the last N days" are populated; one frozen `now`
    # makes every approach see the same window.
    now = queries.window(1)[1]
    out = []
    for days in days_list:
        results, row = {}, {"backend": lab.backend, "rows_in_table": n_rows, "days": days}
        for name, fn in APPROACHES.items():
            reps = orm_repeats if name == "orm" else repeats
            times, frame = timed(lambda fn=fn: fn(engine, days, now), reps)
            results[name] = frame
            row[f"{name}_median_s"] = statistics.median(times)
            row[f"{name}_times_s"] = [round(t, 5) for t in times]
        for name in ("pandas", "orm"):
            same(results["sql"], results[name])
        row["rows_in_window"] = int(results["sql"]["total_tasks"].sum())
        row["results_equal"] = True
        row["orm_over_sql"] = row["orm_median_s"] / row["sql_median_s"]
        row["pandas_over_sql"] = row["pandas_median_s"] / row["sql_median_s"]
        row["plan"] = query_plan(engine, days, now)
        out.append(row)
        print(
            f"  {lab.backend} days={days}: rows={row['rows_in_window']:,} sql={row['sql_median_s']:.4f}s "
            f"pandas={row['pandas_median_s']:.4f}s orm={row['orm_median_s']:.3f}s",
            file=sys.stderr,
            flush=True,
        )
    return out


def open_lab(path: str, database_url: str | None) -> omnilab.Lab:
    lab = omnilab.open(path, database_url=database_url, embedder="hashing")
    if lab.counts()["agent_performance"] < 1_000_000:
        print(f"loading the large sample into {path} ({lab.backend}) …", file=sys.stderr, flush=True)
        start = time.perf_counter()
        lab.load_sample("large")
        print(f"  loaded in {time.perf_counter() - start:.0f}s", file=sys.stderr, flush=True)
    return lab


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lab", help="SQLite lab directory (reused when it holds the large sample)")
    ap.add_argument("--pg", metavar="URL", help="also run on this PostgreSQL database (schema bench_analytics)")
    ap.add_argument("--days", default="7,30,90", help="comma-separated windows (default 7,30,90)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--orm-repeats", type=int, default=3)
    ap.add_argument("--json", metavar="FILE", help="also write the JSON here")
    args = ap.parse_args(argv)
    days_list = [int(d) for d in args.days.split(",")]

    rows: list[dict] = []
    with omnilab.open(args.lab or tempfile.mkdtemp(prefix="omnilab-bench-"), embedder="hashing") as probe:
        lab_path = str(probe.path)
    with open_lab(lab_path, None) as lab:
        rows += bench_backend(lab, days_list, args.repeats, args.orm_repeats)
    if args.pg:
        admin = sa.create_engine(args.pg)
        with admin.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS bench_analytics")
        admin.dispose()
        url = sa.engine.make_url(args.pg).update_query_dict({"options": "-csearch_path=bench_analytics"})
        with open_lab(lab_path + "-pg", url.render_as_string(hide_password=False)) as lab:
            rows += bench_backend(lab, days_list, args.repeats, args.orm_repeats)

    print("\nperformance_summary: median seconds (ratio = baseline / sql; targets orm >= 10x, pandas >= 3x)")
    head = (
        f"{'backend':<11}{'days':>5}{'rows':>11}{'sql':>10}{'pandas':>10}{'orm':>10}{'pandas/sql':>12}{'orm/sql':>10}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['backend']:<11}{r['days']:>5}{r['rows_in_window']:>11,}{r['sql_median_s']:>10.4f}"
            f"{r['pandas_median_s']:>10.4f}{r['orm_median_s']:>10.3f}{r['pandas_over_sql']:>11.1f}x"
            f"{r['orm_over_sql']:>9.1f}x"
        )
    print("\nquery plans of performance_summary:")
    for r in rows:
        print(f"[{r['backend']} days={r['days']}]\n{r['plan']}")
    doc = {
        "benchmark": "performance_summary",
        "approaches": list(APPROACHES),
        "results": rows,
        "targets": {"orm_over_sql": 10, "pandas_over_sql": 3},
        "met": all(r["orm_over_sql"] >= 10 and r["pandas_over_sql"] >= 3 for r in rows),
    }
    text = json.dumps(doc, indent=2, default=str)
    print("\n" + text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
