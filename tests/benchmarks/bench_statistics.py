"""Benchmark: the statistics helpers and the report on the ``large`` OmniDev sample (>= 1M runs).

For each helper, omnilab's way against a named pandas baseline computing the same answer in the same run:

- ``compare_windows``  (by agent_id / model): counts aggregated in SQL, the windows' execution times read
  column-wise, tests from scipy; baseline ``pandas``: ``pandas.read_sql`` of the two windows' raw rows,
  groupby, the same scipy tests.
- ``model_usage`` (by day / whole window): one GROUP BY with quantiles in SQL; baseline ``pandas``:
  read_sql of the window's api_usage rows, groupby with quantiles.
- ``compare_agents`` on the busiest task type, and the whole HTML report (no baseline: its time is the
  number a user waits for).

Results are checked equal to the baselines (counts exact, rates / p-values / quantiles to 1e-7). Prints a
table of medians and ratios (baseline median / omnilab median), the machine's load average (it is shared)
and a JSON document.

    omnilab sample --size large --lab /tmp/big-lab
    python tests/benchmarks/bench_statistics.py --lab /tmp/big-lab

The lab's database is attached read-only (``read_only=True``): reading needs none of the lab's write
paths, and nothing here may change the sample.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics as stats_mod
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

import omnilab
from omnilab.analysis import statistics
from omnilab.analysis.report import render_report
from omnilab.sql import queries
from omnilab.sql.schema import TABLES


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


# ------------------------------------------------------------------------------------------- baselines
def pandas_compare_windows(engine: sa.Engine, days: int, now: Any, by: str) -> pd.DataFrame:
    prev, cur, end = queries.two_windows(days, now)
    if by == "model":
        u = TABLES["api_usage"]
        stmt = sa.select(u.c.provider, u.c.model, u.c.timestamp, u.c.status_code, u.c.response_time)
        stmt = stmt.where(u.c.timestamp >= prev, u.c.timestamp <= end)
    else:
        p = TABLES["agent_performance"]
        stmt = sa.select(p.c.agent_id, p.c.timestamp, p.c.success, p.c.execution_time)
        stmt = stmt.where(p.c.timestamp >= prev, p.c.timestamp <= end)
    with engine.connect() as conn:
        raw = pd.read_sql(stmt, conn)
    ts = pd.to_datetime(raw["timestamp"], utc=True)
    raw["period"] = np.where(ts >= pd.Timestamp(cur), "current", "previous")
    if by == "model":
        status = raw["status_code"].astype(float)
        raw["win"], raw["fail"] = (status < 400), (status >= 400)
        raw["execution_time"] = raw["response_time"].astype(float)
        keys = ["provider", "model"]
    else:
        success = raw["success"].astype("boolean")
        raw["win"], raw["fail"] = (success == True).fillna(False), (success == False).fillna(False)  # noqa: E712
        keys = ["agent_id"]
    rows = {}
    for key, g in raw.groupby(keys, dropna=False):
        sides = {w: g[g["period"] == w] for w in ("previous", "current")}
        row = {}
        for w, side in sides.items():
            row[f"runs_{w}"] = len(side)
            row[f"successful_{w}"], row[f"failed_{w}"] = int(side["win"].sum()), int(side["fail"].sum())
        row["p_value"] = statistics.proportion_test(
            row["successful_previous"],
            row["successful_previous"] + row["failed_previous"],
            row["successful_current"],
            row["successful_current"] + row["failed_current"],
        )[0]
        row["time_p_value"] = statistics.mann_whitney(
            sides["previous"]["execution_time"].dropna(), sides["current"]["execution_time"].dropna()
        )
        rows[key] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def pandas_model_usage(engine: sa.Engine, days: int, now: Any, by_day: bool) -> pd.DataFrame:
    start, end = queries.window(days, now)
    u = TABLES["api_usage"]
    with engine.connect() as conn:
        raw = pd.read_sql(
            sa.select(
                u.c.provider,
                u.c.model,
                u.c.timestamp,
                u.c.status_code,
                u.c.response_time,
                u.c.tokens_used,
                u.c.cost_usd,
            ).where(u.c.timestamp >= start, u.c.timestamp <= end),
            conn,
        )
    raw["day"] = pd.to_datetime(raw["timestamp"], utc=True).dt.floor("D")
    raw["ms"] = raw["response_time"] * 1000.0
    keys = (["day"] if by_day else []) + ["provider", "model"]
    g = raw.groupby(keys, dropna=False)
    return pd.DataFrame(
        {
            "calls": g.size(),
            "cost_usd": g["cost_usd"].sum(),
            "p50_ms": g["ms"].quantile(0.5),
            "p95_ms": g["ms"].quantile(0.95),
            "p99_ms": g["ms"].quantile(0.99),
        }
    )


# ---------------------------------------------------------------------------------------------- checks
def check_compare(got: pd.DataFrame, ref: pd.DataFrame, by: str) -> None:
    keys = queries.period_keys(by)
    got = got[(got["runs_previous"] + got["runs_current"]) > 0].set_index(keys)
    if len(keys) == 1:
        ref.index = ref.index.get_level_values(0)
    got, ref = got.sort_index(), ref.sort_index()
    assert len(got) == len(ref), (len(got), len(ref))
    for col in ref.columns:
        a, b = got[col].to_numpy(float), ref[col].to_numpy(float)
        assert np.allclose(a, b, rtol=1e-7, atol=1e-12, equal_nan=True), col


def check_usage(got: pd.DataFrame, ref: pd.DataFrame, by_day: bool) -> None:
    keys = (["day"] if by_day else []) + ["provider", "model"]
    got = got.set_index(keys).sort_index()
    ref = ref.sort_index()
    assert len(got) == len(ref)
    assert (got["calls"].to_numpy() == ref["calls"].to_numpy()).all()
    for col in ("cost_usd", "p50_ms", "p95_ms", "p99_ms"):
        assert np.allclose(got[col].to_numpy(float), ref[col].to_numpy(float), rtol=1e-7, equal_nan=True), col


# ----------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", default="/tmp/big-lab", help="a lab holding the large sample")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--report-repeat", type=int, default=1)
    args = parser.parse_args(argv)
    db = Path(args.lab) / "omnilab.db"
    if not db.exists():
        print(f"no lab database at {db}; run: omnilab sample --size large --lab {args.lab}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    with omnilab.open(
        tempfile.mkdtemp(prefix="bench-stats-"), database_url=f"sqlite:///{db}", read_only=True, embedder="hashing"
    ) as lab:
        engine = lab.engine
        runs = lab.sql("SELECT count(*) AS n, max(timestamp) AS last FROM agent_performance").iloc[0]
        now = pd.Timestamp(runs["last"], tz="UTC").to_pydatetime()  # the sample's own "now"
        busiest = lab.performance_by_task_type(30, now=now).sort_values("total_tasks").task_type.iloc[-1]
        cases: list[tuple[str, Callable[[], Any], Callable[[], Any] | None, Callable[[Any, Any], None] | None]] = [
            (
                "compare_windows(7)",
                lambda: lab.compare_windows(7, now=now),
                lambda: pandas_compare_windows(engine, 7, now, "agent_id"),
                lambda g, r: check_compare(g, r, "agent_id"),
            ),
            (
                "compare_windows(7, by=model)",
                lambda: lab.compare_windows(7, now=now, by="model"),
                lambda: pandas_compare_windows(engine, 7, now, "model"),
                lambda g, r: check_compare(g, r, "model"),
            ),
            (
                "model_usage(30)",
                lambda: lab.model_usage(30, now=now),
                lambda: pandas_model_usage(engine, 30, now, True),
                lambda g, r: check_usage(g, r, True),
            ),
            (
                "model_usage(30, by_day=False)",
                lambda: lab.model_usage(30, now=now, by_day=False),
                lambda: pandas_model_usage(engine, 30, now, False),
                lambda g, r: check_usage(g, r, False),
            ),
            (f"compare_agents({busiest!r}, 30)", lambda: lab.compare_agents(busiest, 30, now=now), None, None),
            ("performance_summary(7) [context]", lambda: lab.performance_summary(7, now=now), None, None),
        ]
        results = []
        for name, mine, base, check in cases:
            t_mine, got = timed(mine, args.repeat)
            row = {"case": name, "omnilab_median_s": stats_mod.median(t_mine), "omnilab_times_s": t_mine}
            if base is not None:
                t_base, ref = timed(base, args.repeat)
                check(got, ref)
                row.update(
                    baseline="pandas",
                    baseline_median_s=stats_mod.median(t_base),
                    ratio=stats_mod.median(t_base) / stats_mod.median(t_mine),
                    checked_equal=True,
                )
            results.append(row)
        t_report, text = timed(lambda: render_report(lab, 30, now=now), args.report_repeat)
        results.append(
            {
                "case": "report (30 days, render_report)",
                "omnilab_median_s": stats_mod.median(t_report),
                "omnilab_times_s": t_report,
                "html_bytes": len(text.encode()),
            }
        )
    load_after = os.getloadavg()
    print(f"large sample: {int(runs['n']):,} agent_performance rows; now = {now:%Y-%m-%d %H:%M:%S} UTC")
    print(f"load average (1/5/15 min) before {load_before}, after {load_after} on {os.cpu_count()} CPUs")
    print(f"{'case':<38} {'omnilab s':>10} {'pandas s':>10} {'ratio':>7}")
    for r in results:
        base = f"{r['baseline_median_s']:.3f}" if "baseline_median_s" in r else "—"
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else "—"
        print(f"{r['case']:<38} {r['omnilab_median_s']:>10.3f} {base:>10} {ratio:>7}")
    print(
        json.dumps(
            {
                "benchmark": "statistics",
                "rows": int(runs["n"]),
                "repeat": args.repeat,
                "load_before": load_before,
                "load_after": load_after,
                "results": results,
            },
            indent=2,
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
