"""Soak: two processes run mixed remember/search/forget/enqueue/dequeue/ack on one lab for a bounded time.

Reports per process: RSS at start (after a warm-up of every operation) and at the end, operation counts,
errors, and throughput in the first vs the last quarter of the run (the baseline is the run's own first
quarter: a ratio near 1 means no slow-down as the store and the caches age).

    python tests/benchmarks/bench_soak.py                 # 120 s, SQLite, server Redis if configured
    python tests/benchmarks/bench_soak.py --seconds 30 --database-url postgresql+psycopg://...

Redis: ``--redis-url`` or ``OMNILAB_TEST_REDIS_URL``, else the lab's embedded server.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))

from rel_workers import get_context, soak  # noqa: E402


def run(seconds: float, database_url: str | None, redis_url: str, workers: int = 2) -> dict:
    """Run the soak; returns {"config": ..., "processes": [...], "summary": ...}."""
    import omnilab

    tmp = Path(tempfile.mkdtemp(prefix="omnilab-soak-"))
    path = tmp / "lab"
    prefix = f"soak{uuid.uuid4().hex[:8]}:"
    with omnilab.open(path, database_url=database_url, redis_url=redis_url, redis_prefix=prefix, embedder="hashing"):
        pass
    ctx = get_context()
    results = [tmp / f"soak{i}.json" for i in range(workers)]
    procs = [
        ctx.Process(target=soak, args=(str(path), database_url, redis_url, prefix, seconds, i, str(results[i])))
        for i in range(workers)
    ]
    started = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join(seconds + 300)
    wall = time.perf_counter() - started
    out = []
    for p, r in zip(procs, results):
        if p.exitcode != 0 or not r.exists():
            out.append({"exitcode": p.exitcode, "error_count": 1, "errors": ["process died"]})
        else:
            out.append(json.loads(r.read_text()))
    with omnilab.open(
        path, database_url=database_url, redis_url=redis_url, redis_prefix=prefix, embedder="hashing"
    ) as lab:
        memories = int(lab.counts()["memory_entries"])
        for i in range(workers):
            lab.queue.purge(f"soak{i}")
    shutil.rmtree(tmp, ignore_errors=True)
    summary = {
        "total_ops": sum(o.get("total_ops", 0) for o in out),
        "errors": sum(o.get("error_count", 0) for o in out),
        "rss_growth_mb": [round(o["end_mb"] - o["start_mb"], 1) for o in out if "end_mb" in o],
        "rss_end_over_start": [round(o["end_mb"] / o["start_mb"], 3) for o in out if "end_mb" in o],
        "last_over_first_quarter_ops": [
            round(o["ops_per_quarter"][3] / max(1, o["ops_per_quarter"][0]), 3) for o in out if "ops_per_quarter" in o
        ],
        "memories_at_end": memories,
        "wall_seconds": round(wall, 1),
    }
    return {
        "config": {
            "seconds": seconds,
            "workers": workers,
            "sql": "postgresql" if database_url else "sqlite",
            "redis": "embedded" if redis_url == "embedded" else "server",
        },
        "processes": out,
        "summary": summary,
    }


def print_table(report: dict) -> None:
    cfg = report["config"]
    print(f"soak: {cfg['workers']} processes x {cfg['seconds']:.0f} s, SQL {cfg['sql']}, Redis {cfg['redis']}")
    head = (
        f"{'pid':>8} {'RSS start MB':>12} {'RSS end MB':>10} {'growth':>7} {'ops':>7} "
        f"{'remember':>8} {'search':>7} {'forget':>6} {'enq':>6} {'deq':>6} {'ack':>6} {'q4/q1':>6} {'errors':>6}"
    )
    print(head)
    print("-" * len(head))
    for o in report["processes"]:
        if "ops" not in o:
            print(f"{'?':>8} process failed: {o}")
            continue
        ops = o["ops"]
        q = o["ops_per_quarter"]
        print(
            f"{o['pid']:>8} {o['start_mb']:>12.1f} {o['end_mb']:>10.1f} {o['end_mb'] - o['start_mb']:>+7.1f} "
            f"{o['total_ops']:>7} {ops['remember']:>8} {ops['search']:>7} {ops['forget']:>6} {ops['enqueue']:>6} "
            f"{ops['dequeue']:>6} {ops['ack']:>6} {q[3] / max(1, q[0]):>6.2f} {o['error_count']:>6}"
        )
    s = report["summary"]
    print(
        f"total ops {s['total_ops']:,}, errors {s['errors']}, memories at end {s['memories_at_end']:,}, "
        f"wall {s['wall_seconds']} s"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--redis-url", default=os.environ.get("OMNILAB_TEST_REDIS_URL") or "embedded")
    args = ap.parse_args()
    report = run(args.seconds, args.database_url, args.redis_url, args.workers)
    print_table(report)
    print(json.dumps(report, indent=1))
    return 0 if report["summary"]["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
