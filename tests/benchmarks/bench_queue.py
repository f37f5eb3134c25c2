"""Benchmark: omnilab's reliable queue vs the platform's raw LPUSH/BRPOP, in the same run.

For N tasks (default 10 000): enqueue all, then dequeue + ack each (a single worker, no real work).
Variants:
  raw           LPUSH a JSON task / BRPOP it (what the platform does; loses tasks on a crash)
  omnilab       enqueue / dequeue / ack one task at a time (SQL row + Redis lease per task)
  omnilab-batch enqueue_many(500) / dequeue_many(100) / ack_many (same guarantees, batched round trips)
Then a crash scenario: a worker takes K tasks and dies without finishing them; a second worker drains
the queue. Lost = tasks never completed.

    python tests/benchmarks/bench_queue.py [--n 10000] [--repeats 3] [--redis URL|embedded]
                                           [--database-url URL]

Prints a table and a JSON document (medians over repeats, throughput ratios vs raw).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import omnilab


def _lab(tmp: Path, redis_url: str, database_url: str | None) -> omnilab.Lab:
    return omnilab.open(
        tmp / f"lab-{uuid.uuid4().hex[:6]}",
        redis_url=redis_url,
        redis_prefix=f"bench{uuid.uuid4().hex[:8]}:",
        database_url=database_url,
    )


def run_raw(lab: omnilab.Lab, n: int) -> dict[str, Any]:
    r = lab.queue.conn.client
    key = lab.queue.conn.key("raw", "queue")
    t0 = time.perf_counter()
    for i in range(n):
        r.lpush(key, json.dumps({"id": i, "content": f"task {i}", "task_type": "testing", "priority": 5}))
    t1 = time.perf_counter()
    done = 0
    for _ in range(n):
        item = r.brpop([key], timeout=1)
        if item is None:
            break
        json.loads(item[1])
        done += 1
    t2 = time.perf_counter()
    return {"enqueue_s": t1 - t0, "drain_s": t2 - t1, "total_s": t2 - t0, "completed": done, "lost": n - done}


def _check(lab: omnilab.Lab, ids: list[str]) -> int:
    tasks = lab.tasks().set_index("id").loc[ids]
    return int((tasks["status"] != "completed").sum())


def run_omnilab(lab: omnilab.Lab, n: int) -> dict[str, Any]:
    q = lab.queue
    t0 = time.perf_counter()
    ids = [q.enqueue({"content": f"task {i}", "task_type": "testing"}) for i in range(n)]
    t1 = time.perf_counter()
    done = 0
    while (lease := q.dequeue("w", lease=60)) is not None:
        done += lease.ack({"ok": True})
    t2 = time.perf_counter()
    return {"enqueue_s": t1 - t0, "drain_s": t2 - t1, "total_s": t2 - t0, "completed": done, "lost": _check(lab, ids)}


def run_omnilab_batch(lab: omnilab.Lab, n: int, enq_batch: int = 500, deq_batch: int = 100) -> dict[str, Any]:
    q = lab.queue
    t0 = time.perf_counter()
    ids: list[str] = []
    for start in range(0, n, enq_batch):
        ids += q.enqueue_many(
            [{"content": f"task {i}", "task_type": "testing"} for i in range(start, min(n, start + enq_batch))]
        )
    t1 = time.perf_counter()
    done = 0
    while leases := q.dequeue_many("w", deq_batch, lease=60):
        done += sum(q.ack_many(leases, [{"ok": True}] * len(leases)))
    t2 = time.perf_counter()
    return {"enqueue_s": t1 - t0, "drain_s": t2 - t1, "total_s": t2 - t0, "completed": done, "lost": _check(lab, ids)}


def crash_scenario(lab: omnilab.Lab, n: int, k: int, lease: float = 0.5) -> dict[str, int]:
    """A worker takes k tasks and dies; a second worker drains. Returns lost tasks per approach."""
    r = lab.queue.conn.client
    key = lab.queue.conn.key("raw", "crash")
    for i in range(n):
        r.lpush(key, json.dumps({"id": i}))
    for _ in range(k):
        r.brpop([key], timeout=1)  # popped by the doomed worker, never finished
    raw_done = 0
    while r.brpop([key], timeout=0.2) is not None:
        raw_done += 1

    q = lab.queue
    ids = q.enqueue_many([{"content": f"c{i}", "task_type": "testing"} for i in range(n)], queue="crash")
    q.dequeue_many("doomed", k, queue="crash", lease=lease)  # leased, never acked: the worker "died"
    done = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        leases = q.dequeue_many("survivor", 100, queue="crash", timeout=lease + 1.5, lease=60)
        if not leases:
            break
        done += sum(q.ack_many(leases))
    return {
        "n": n,
        "killed_worker_held": k,
        "raw_lost": n - raw_done,
        "omnilab_lost": _check(lab, ids),
        "omnilab_completed": done,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--redis", default=os.environ.get("OMNILAB_TEST_REDIS_URL", "embedded"))
    ap.add_argument("--database-url", default=None, help="default: the lab's own SQLite file")
    args = ap.parse_args()

    runners = {"raw": run_raw, "omnilab": run_omnilab, "omnilab-batch": run_omnilab_batch}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in runners}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for name, fn in runners.items():  # interleaved, so drift hits every variant alike
                with _lab(Path(tmp), args.redis, args.database_url) as lab:
                    try:
                        results[name].append(fn(lab, args.n))
                    finally:
                        lab.queue.conn.delete_prefix()
        with _lab(Path(tmp), args.redis, args.database_url) as lab:
            backend = lab.backend
            try:
                crash = crash_scenario(lab, 1000, 100)
            finally:
                lab.queue.conn.delete_prefix()

    summary: dict[str, dict[str, float]] = {}
    for name, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in ("enqueue_s", "drain_s", "total_s")}
        summary[name] = {**med, "tasks_per_s": args.n / med["total_s"], "lost": max(r["lost"] for r in runs)}
    raw_tps = summary["raw"]["tasks_per_s"]
    for s in summary.values():
        s["ratio_vs_raw"] = s["tasks_per_s"] / raw_tps

    print(f"queue benchmark: n={args.n}, repeats={args.repeats} (medians), redis={args.redis}, sql={backend}")
    print(f"{'variant':<15}{'enqueue s':>11}{'drain s':>10}{'total s':>10}{'tasks/s':>10}{'x raw':>8}{'lost':>6}")
    for name, s in summary.items():
        print(
            f"{name:<15}{s['enqueue_s']:>11.3f}{s['drain_s']:>10.3f}{s['total_s']:>10.3f}"
            f"{s['tasks_per_s']:>10.0f}{s['ratio_vs_raw']:>8.2f}{s['lost']:>6d}"
        )
    print(
        f"crash (worker dies holding {crash['killed_worker_held']} of {crash['n']}): "
        f"raw lost {crash['raw_lost']}, omnilab lost {crash['omnilab_lost']}"
    )
    print(
        json.dumps(
            {
                "n": args.n,
                "repeats": args.repeats,
                "redis": args.redis,
                "sql": backend,
                "target_ratio": 0.5,
                "results": summary,
                "crash": crash,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
