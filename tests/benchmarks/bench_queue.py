"""Benchmark: omnilab's reliable queue vs the platform's raw LPUSH/BRPOP, side by side in the same run.

Issue 14 item 5: the one-at-a-time path (``enqueue`` one task, then ``dequeue`` + ``Lease.ack`` one at a time, a
single worker, no real work) must reach >= 0.25x the throughput of raw ``LPUSH``/``BRPOP`` on SQLite, on a Redis
server and on the embedded Redis, losing nothing when a worker is killed.

Variants, per Redis (the server at ``--redis-url`` and the lab's embedded one, in the same run):
  raw           LPUSH a JSON task / BRPOP it (what the platform does; loses tasks on a crash)
  omnilab       enqueue / dequeue / ack one task at a time (SQL row + Redis lease per task, SQL the truth)
  omnilab-batch enqueue_many(500) / dequeue_many(100) / ack_many (same guarantees, batched round trips)

The machine is shared and its load moves, so the variants run interleaved in blocks of ``--block`` tasks (raw,
omnilab, batch, raw, ...) on the same lab, ``--n`` tasks in all per variant; throughput is tasks over the summed
time, and the ratio is also given as the median of the per-round ratios (each round's omnilab block against the raw
block run just before it). Every omnilab block checks afterwards that each of its tasks is ``completed`` in SQL.

Then a crash scenario per Redis: a worker takes K tasks and dies without finishing them; a second worker drains
the queue. Lost = tasks never completed (raw: those the dead worker popped).

    python tests/benchmarks/bench_queue.py [--n 6000] [--block 500] [--redis-url URL] [--database-url URL]

Prints the table and a JSON document.
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

TARGET_RATIO = 0.25


def _lab(tmp: Path, redis_url: str, database_url: str | None) -> omnilab.Lab:
    return omnilab.open(
        tmp / f"lab-{uuid.uuid4().hex[:6]}",
        redis_url=redis_url,
        redis_prefix=f"bench{uuid.uuid4().hex[:8]}:",
        database_url=database_url,
        embedder="hashing",
    )


def run_raw(lab: omnilab.Lab, n: int, start: int) -> dict[str, Any]:
    r = lab.queue.conn.client
    key = lab.queue.conn.key("raw", "queue")
    t0 = time.perf_counter()
    for i in range(start, start + n):
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
    return {"enqueue_s": t1 - t0, "drain_s": t2 - t1, "completed": done, "lost": n - done}


def _not_completed(lab: omnilab.Lab, ids: list[str]) -> int:
    tasks = lab.tasks().set_index("id").reindex(ids)
    return int((tasks["status"] != "completed").sum())


def run_omnilab(lab: omnilab.Lab, n: int, start: int) -> dict[str, Any]:
    q = lab.queue
    t0 = time.perf_counter()
    ids = [q.enqueue({"content": f"task {i}", "task_type": "testing"}) for i in range(start, start + n)]
    t1 = time.perf_counter()
    done = 0
    while (lease := q.dequeue("w", lease=60)) is not None:
        done += lease.ack({"ok": True})
    t2 = time.perf_counter()
    return {"enqueue_s": t1 - t0, "drain_s": t2 - t1, "completed": done, "lost": _not_completed(lab, ids)}


def run_omnilab_batch(
    lab: omnilab.Lab, n: int, start: int, enq_batch: int = 500, deq_batch: int = 100
) -> dict[str, Any]:
    q = lab.queue
    t0 = time.perf_counter()
    ids: list[str] = []
    for s in range(start, start + n, enq_batch):
        ids += q.enqueue_many(
            [{"content": f"task {i}", "task_type": "testing"} for i in range(s, min(start + n, s + enq_batch))]
        )
    t1 = time.perf_counter()
    done = 0
    while leases := q.dequeue_many("w", deq_batch, lease=60):
        done += sum(q.ack_many(leases, [{"ok": True}] * len(leases)))
    t2 = time.perf_counter()
    return {"enqueue_s": t1 - t0, "drain_s": t2 - t1, "completed": done, "lost": _not_completed(lab, ids)}


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
    ids = [q.enqueue({"content": f"c{i}", "task_type": "testing"}, queue="crash") for i in range(n)]
    for _ in range(k):  # leased one at a time, never acked: the worker "died"
        q.dequeue("doomed", queue="crash", lease=lease)
    done = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = q.dequeue("survivor", queue="crash", timeout=lease + 1.5, lease=60)
        if got is None:
            break
        done += got.ack()
    return {
        "n": n,
        "killed_worker_held": k,
        "raw_lost": n - raw_done,
        "omnilab_lost": _not_completed(lab, ids),
        "omnilab_completed": done,
    }


RUNNERS = {"raw": run_raw, "omnilab": run_omnilab, "omnilab-batch": run_omnilab_batch}


def bench_redis(tmp: Path, redis_url: str, database_url: str | None, n: int, block: int) -> dict[str, Any]:
    """All variants interleaved on one lab with this Redis; the summary of each and the crash scenario."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in RUNNERS}
    with _lab(tmp, redis_url, database_url) as lab:
        try:
            backend = lab.backend
            for name, fn in RUNNERS.items():  # warm-up: connections, scripts, statements
                fn(lab, 50, 0)
            for start in range(0, n, block):
                for name, fn in RUNNERS.items():
                    runs[name].append(fn(lab, min(block, n - start), 1_000_000 + start))
            crash = crash_scenario(lab, 1000, 100)
        finally:
            lab.queue.conn.delete_prefix()
    summary: dict[str, dict[str, Any]] = {}
    for name, rs in runs.items():
        enq, drain = sum(r["enqueue_s"] for r in rs), sum(r["drain_s"] for r in rs)
        summary[name] = {
            "enqueue_s": enq,
            "drain_s": drain,
            "total_s": enq + drain,
            "tasks_per_s": n / (enq + drain),
            "lost": sum(r["lost"] for r in rs),
        }
    raw_tps = summary["raw"]["tasks_per_s"]
    for name, s in summary.items():
        s["ratio_vs_raw"] = s["tasks_per_s"] / raw_tps
        rounds = [
            (a["enqueue_s"] + a["drain_s"]) / (b["enqueue_s"] + b["drain_s"]) for a, b in zip(runs["raw"], runs[name])
        ]
        s["ratio_median_of_rounds"] = statistics.median(rounds)
    return {"redis": "embedded" if redis_url == "embedded" else redis_url, "sql": backend, **summary, "crash": crash}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=6000, help="tasks per variant and Redis")
    ap.add_argument("--block", type=int, default=500, help="tasks per interleaved block")
    ap.add_argument("--redis-url", default=os.environ.get("OMNILAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--no-server", action="store_true", help="only the embedded Redis")
    ap.add_argument("--database-url", default=None, help="default: the lab's own SQLite file")
    args = ap.parse_args()

    redis_urls = ["embedded"] if args.no_server else [args.redis_url, "embedded"]
    load = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for url in redis_urls:
            results.append(bench_redis(Path(tmp), url, args.database_url, args.n, args.block))

    print(f"queue benchmark: n={args.n} per variant in blocks of {args.block}, load average {load:.1f}")
    print(
        f"{'redis':<10}{'sql':<12}{'variant':<15}{'enqueue s':>10}{'drain s':>9}{'tasks/s':>9}"
        f"{'x raw':>7}{'x raw (rounds)':>16}{'lost':>6}"
    )
    for res in results:
        where = "embedded" if res["redis"] == "embedded" else "server"
        for name in RUNNERS:
            s = res[name]
            print(
                f"{where:<10}{res['sql']:<12}{name:<15}{s['enqueue_s']:>10.3f}{s['drain_s']:>9.3f}"
                f"{s['tasks_per_s']:>9.0f}{s['ratio_vs_raw']:>7.2f}{s['ratio_median_of_rounds']:>16.2f}{s['lost']:>6d}"
            )
    for res in results:
        crash = res["crash"]
        where = "embedded" if res["redis"] == "embedded" else "server"
        print(
            f"crash on {where} Redis (worker dies holding {crash['killed_worker_held']} of {crash['n']}): "
            f"raw lost {crash['raw_lost']}, omnilab lost {crash['omnilab_lost']}"
        )
    goal = all(res["omnilab"]["ratio_vs_raw"] >= TARGET_RATIO for res in results)
    print(f"one-at-a-time goal >= {TARGET_RATIO}x raw on every Redis: {'met' if goal else 'NOT met'}")
    print(
        json.dumps(
            {
                "n": args.n,
                "block": args.block,
                "load_average": load,
                "target_ratio": TARGET_RATIO,
                "goal_met": goal,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
