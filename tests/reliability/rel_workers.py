"""Child-process bodies for the reliability suite and ``tests/benchmarks/bench_soak.py``.

They run in processes started from a ``forkserver`` that preloaded omnilab (so a child starts in
milliseconds, without the parent's threads). Each one logs what the library *returned* to a plain text
file, one line per completed call, flushed at once: after a SIGKILL the parent knows exactly which
operations were acknowledged to the caller and must therefore be durable.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback
from pathlib import Path

TYPES = ("code", "task", "knowledge")
WORDS = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
)


def unique_content(tag: str, i: int, rng: random.Random) -> str:
    """A text whose hashing-embedder vector is unique: it carries a token no other memory has."""
    words = " ".join(rng.choice(WORDS) for _ in range(6))
    return f"memory {tag}x{i} tok{tag}n{i} {words}"


def _log(fh, *parts: str) -> None:
    fh.write(" ".join(parts) + "\n")
    fh.flush()


# ---------------------------------------------------------------------------------------- crash loop
def crash_child(path: str, url: str | None, round_no: int, seed: int, log_path: str, mode: str) -> None:
    """Ingest (and, by ``mode``, forget/update) until SIGKILLed. Log lines:

    ``add <memory_id>`` after ingest returned; ``forget? <id>`` before and ``forget! <id>`` after a forget;
    ``update? <id> <content>`` before and ``update! <id>`` after an update (content is JSON-quoted).
    """
    import threading

    from tqdm.auto import tqdm

    import omnilab

    tqdm.set_lock(threading.RLock())  # not tqdm's multiprocessing lock: a SIGKILL would leak its semaphore
    rng = random.Random(seed)
    with open(log_path, "a", encoding="utf-8") as fh, omnilab.open(path, database_url=url, embedder="hashing") as lab:
        mine: list[str] = []
        i = 0
        while True:
            n = rng.randint(1, 12)
            batch = [
                {
                    "content": unique_content(f"r{round_no}", i + j, rng),
                    "memory_type": TYPES[(i + j) % 3],
                    "metadata": {"round": round_no, "i": i + j},
                    "tags": [f"r{round_no}"],
                }
                for j in range(n)
            ]
            i += n
            out = lab.ingest(batch, batch_size=rng.choice((3, 5, 50)), progress=False)
            for mid in out["memory_ids"]:
                _log(fh, "add", mid)
            mine.extend(out["memory_ids"])
            if "forget" in mode and len(mine) > 3 and rng.random() < 0.4:
                victim = mine.pop(rng.randrange(len(mine)))
                _log(fh, "forget?", victim)
                lab.forget([victim])
                _log(fh, "forget!", victim)
            if "update" in mode and mine and rng.random() < 0.4:
                target = rng.choice(mine)
                content = unique_content(f"r{round_no}u", i, rng)
                i += 1
                _log(fh, "update?", target, json.dumps(content))
                lab.update_memory(target, content=content, priority=rng.randint(1, 10))
                _log(fh, "update!", target)


def read_crash_log(log_path: str) -> dict[str, object]:
    """What the killed children were told: acknowledged adds, forgets (attempted/acked), updates."""
    added: list[str] = []
    forget_tried: set[str] = set()
    forgotten: set[str] = set()
    # memory id -> list of (content, acknowledged) in order
    updates: dict[str, list[list]] = {}
    text = Path(log_path).read_text(encoding="utf-8") if Path(log_path).exists() else ""
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]  # a line cut by the kill was never acknowledged
    for line in lines:
        if not line:
            continue
        op, rest = line.split(" ", 1)
        if op == "add":
            added.append(rest)
        elif op == "forget?":
            forget_tried.add(rest)
        elif op == "forget!":
            forgotten.add(rest)
        elif op == "update?":
            mid, content = rest.split(" ", 1)
            updates.setdefault(mid, []).append([json.loads(content), False])
        elif op == "update!":
            updates[rest][-1][1] = True
    return {"added": added, "forget_tried": forget_tried, "forgotten": forgotten, "updates": updates}


# ---------------------------------------------------------------------------------- concurrent writers
def writer(path: str, url: str | None, wid: int, n: int, batch: int, log_path: str, result_path: str) -> None:
    """Ingest ``n`` unique memories in batches of ``batch``; every error is recorded, never raised."""
    import omnilab

    errors: list[str] = []
    rng = random.Random(wid)
    done = 0
    started = time.perf_counter()
    try:
        with (
            open(log_path, "a", encoding="utf-8") as fh,
            omnilab.open(path, database_url=url, embedder="hashing") as lab,
        ):
            i = 0
            while i < n:
                rows = [
                    {
                        "content": unique_content(f"w{wid}", j, rng),
                        "memory_type": TYPES[j % 3],
                        "metadata": {"writer": wid, "j": j},
                    }
                    for j in range(i, min(n, i + batch))
                ]
                try:
                    out = lab.ingest(rows, batch_size=batch, progress=False)
                except Exception as exc:  # counted (the user would see it), then the batch is retried
                    errors.append(f"{type(exc).__name__}: {exc}")
                    if len(errors) > 20:
                        break
                    continue
                for mid, row in zip(out["memory_ids"], rows):
                    _log(fh, "add", mid, json.dumps(row["content"]))
                done += len(out["memory_ids"])
                i += batch
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    Path(result_path).write_text(
        json.dumps({"writer": wid, "added": done, "errors": errors, "seconds": time.perf_counter() - started})
    )


def searcher(path: str, url: str | None, log_paths: list[str], stop_path: str, result_path: str) -> None:
    """Search until ``stop_path`` exists; check every result frame and that acknowledged memories are found."""
    import numpy as np

    import omnilab
    from omnilab.vectors.search import RESULT_COLUMNS

    errors: list[str] = []
    searches = verified = 0
    rng = random.Random(99)
    try:
        with omnilab.open(path, database_url=url, embedder="hashing") as lab:
            while not os.path.exists(stop_path):
                acked: list[tuple[str, str]] = []
                for lp in log_paths:
                    if os.path.exists(lp):
                        for line in Path(lp).read_text(encoding="utf-8").splitlines(keepends=True):
                            if line.endswith("\n") and line.startswith("add "):
                                _, mid, content = line.rstrip("\n").split(" ", 2)
                                acked.append((mid, json.loads(content)))
                try:
                    if acked:
                        mid, content = rng.choice(acked)  # acknowledged before this search began
                        res = lab.search(content, k=5)
                        searches += 1
                        if res.empty or res["memory_id"].iloc[0] != mid or abs(res["score"].iloc[0] - 1) > 1e-4:
                            errors.append(f"acknowledged memory {mid} not ranked first: {res.head(2).to_dict()}")
                        else:
                            verified += 1
                    res = lab.search(
                        " ".join(rng.sample(list(WORD_POOL), 3)), k=8, memory_type=rng.choice([None, "code", "task"])
                    )
                    searches += 1
                    problems = _frame_problems(res, 8, RESULT_COLUMNS, np)
                    if problems:
                        errors.append(problems)
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    Path(result_path).write_text(json.dumps({"searches": searches, "verified": verified, "errors": errors}))


WORD_POOL = WORDS


def _frame_problems(res, k: int, columns: list[str], np) -> str:  # type: ignore[no-untyped-def]
    if list(res.columns[: len(columns)]) != columns and not set(columns) <= set(res.columns):
        return f"missing columns: {set(columns) - set(res.columns)}"
    if len(res) > k:
        return f"{len(res)} rows for k={k}"
    if list(res["rank"]) != list(range(1, len(res) + 1)):
        return f"ranks {list(res['rank'])}"
    s = res["score"].to_numpy()
    if not np.isfinite(s).all() or (s > 1 + 1e-4).any() or (s < -1 - 1e-4).any():
        return f"bad scores {s}"
    if (np.diff(s) > 1e-6).any():
        return f"scores not sorted {s}"
    if res["memory_id"].duplicated().any():
        return "duplicate memory ids in one result"
    return ""


# ------------------------------------------------------------------------------------------------ soak
def soak(path: str, url: str | None, redis_url: str, prefix: str, seconds: float, wid: int, result_path: str) -> None:
    """Mixed remember/search/forget/enqueue/dequeue/ack for ``seconds``; RSS at start and end."""
    import psutil

    import omnilab

    proc = psutil.Process()
    ops = {"remember": 0, "search": 0, "forget": 0, "enqueue": 0, "dequeue": 0, "ack": 0}
    errors: list[str] = []
    rng = random.Random(1000 + wid)
    rss: dict[str, float] = {}
    quarters = [0, 0, 0, 0]
    with omnilab.open(path, database_url=url, redis_url=redis_url, redis_prefix=prefix, embedder="hashing") as lab:
        mine: list[str] = []
        i = 0
        # warm-up: every code path once, so "start" is measured after imports and first-use caches
        lab.remember(unique_content(f"s{wid}w", 0, rng), "code")
        lab.search("alpha bravo", k=5)
        lease = None
        lab.queue.enqueue({"content": "warm-up"}, queue=f"soak{wid}")
        lease = lab.queue.dequeue(f"worker{wid}", queue=f"soak{wid}")
        if lease is not None:
            lease.ack()
        rss["start_mb"] = proc.memory_info().rss / 2**20
        started = time.perf_counter()
        deadline = started + seconds
        while (now := time.perf_counter()) < deadline:
            q = min(3, int(4 * (now - started) / seconds))
            op = rng.random()
            try:
                if op < 0.25:
                    mine.append(lab.remember(unique_content(f"s{wid}", i, rng), TYPES[i % 3], metadata={"soak": wid}))
                    i += 1
                    ops["remember"] += 1
                elif op < 0.55:
                    lab.search(" ".join(rng.sample(list(WORDS), 3)), k=10)
                    ops["search"] += 1
                elif op < 0.70:
                    if len(mine) > 50:  # keep the store bounded: forget about as much as is added
                        lab.forget([mine.pop(rng.randrange(len(mine))) for _ in range(2)])
                        ops["forget"] += 1
                elif op < 0.85:
                    lab.queue.enqueue(
                        {"content": f"soak task {wid}-{i}", "priority": rng.randint(1, 10)}, queue=f"soak{wid}"
                    )
                    i += 1
                    ops["enqueue"] += 1
                else:
                    lease = lab.queue.dequeue(f"worker{wid}", queue=f"soak{wid}")
                    ops["dequeue"] += 1
                    if lease is not None:
                        lease.ack({"ok": True})
                        ops["ack"] += 1
                quarters[q] += 1
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        rss["end_mb"] = proc.memory_info().rss / 2**20
        elapsed = time.perf_counter() - started
    Path(result_path).write_text(
        json.dumps(
            {
                "worker": wid,
                "pid": os.getpid(),
                "seconds": round(elapsed, 1),
                **{k: round(v, 1) for k, v in rss.items()},
                "ops": ops,
                "total_ops": sum(ops.values()),
                "ops_per_quarter": quarters,
                "errors": errors[:20],
                "error_count": len(errors),
                "memories_left": len(mine),
            }
        )
    )


def get_context():  # type: ignore[no-untyped-def]
    """A forkserver context that preloads omnilab once, so each child starts in milliseconds."""
    import multiprocessing as mp

    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["rel_workers", "omnilab", "omnilab.vectors.memory", "omnilab.sessions.queue"])
    return ctx
