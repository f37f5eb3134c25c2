"""Benchmark: read-only attach to a platform database vs a lab that owns the same data.

Builds a platform SQLite database the way the platform writes it (``omnilab.sample.platform``, string ids,
text timestamps, JSON as TEXT) with ``--memories`` memory rows and ``--runs`` agent_performance rows, then
times, for the attached lab (``read_only=True``) and for a normal lab holding the same rows:

- ``open``            omnilab.open(...) (attach: reflection + compatibility views; owned: migrations check);
- ``first search``    the first lab.search (attach: keys every platform memory and embeds it, cache first);
- ``search``          later searches (median of ``--repeat``), unfiltered and with a metadata filter;
- ``summary``         performance_summary(days=7) (attach goes through the temporary views).

Prints a table of medians with ratios attached / owned, and a JSON document. The platform file's bytes
are checked unchanged at the end.

    python tests/benchmarks/bench_attach.py                      # 100k memories, 100k runs, hashing
    python tests/benchmarks/bench_attach.py --memories 10000 --embedder sentence-transformers
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

import omnilab
from omnilab.sample.platform import build_platform_sqlite

QUERIES = ["payroll salary run", "retry with exponential backoff", "topic 4242 filler note", "deployment rollback"]


def _timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def measure(lab_path: Path, repeat: int, **open_kw: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    out["open"], lab = _timed(lambda: omnilab.open(lab_path, **open_kw))
    try:
        out["first search"], _ = _timed(lambda: lab.search(QUERIES[0], k=10, cache=False))
        plain, filtered, summary = [], [], []
        for i in range(repeat):
            q = QUERIES[i % len(QUERIES)]
            plain.append(_timed(lambda q=q: lab.search(q, k=10, cache=False))[0])
            filtered.append(_timed(lambda q=q: lab.search(q, k=10, cache=False, where={"memory_type": "code"}))[0])
            summary.append(_timed(lambda: lab.performance_summary(days=7))[0])
        out["search"] = statistics.median(plain)
        out["search where"] = statistics.median(filtered)
        out["summary"] = statistics.median(summary)
    finally:
        lab.close()
    return out


def owned_copy(platform: Path, lab_path: Path, embedder: str) -> None:
    """A normal lab with the same rows (inserted through omnilab, vectors built before timing)."""
    import sqlite3

    con = sqlite3.connect(platform)
    con.row_factory = sqlite3.Row
    with omnilab.open(lab_path, embedder=embedder) as lab:
        for table in ("agents", "projects", "tasks", "agent_performance", "agent_stats"):
            rows = [dict(r) for r in con.execute(f"SELECT * FROM {table}")]  # noqa: S608 - fixed names
            if table in ("agent_performance", "agent_stats"):  # serial keys: let the database number them
                rows = [{k: v for k, v in r.items() if k != "id"} for r in rows]
            lab.insert(table, pd.DataFrame(rows))
        mems = pd.read_sql(
            "SELECT id, content, memory_type, priority, metadata, tags, agent_id, session_id, "
            "project_id FROM memory_entries",
            con,
        )
        mems["metadata"] = mems["metadata"].map(json.loads)
        mems["tags"] = mems["tags"].map(json.loads)
        lab.ingest(mems, progress=False, dedupe=False)
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memories", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--embedder", default="hashing")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        platform = tmp_path / "omnidev.db"
        t_build, _ = _timed(
            lambda: build_platform_sqlite(platform, n_runs=args.runs, n_extra_memories=args.memories - 10)
        )
        digest = hashlib.sha256(platform.read_bytes()).hexdigest()
        attached = measure(
            tmp_path / "attached-lab",
            args.repeat,
            database_url=f"sqlite:///{platform}",
            read_only=True,
            embedder=args.embedder,
        )
        reopened = measure(
            tmp_path / "attached-lab",
            args.repeat,
            database_url=f"sqlite:///{platform}",
            read_only=True,
            embedder=args.embedder,
        )
        t_copy, _ = _timed(lambda: owned_copy(platform, tmp_path / "owned-lab", args.embedder))
        owned = measure(tmp_path / "owned-lab", args.repeat, embedder=args.embedder)
        unchanged = hashlib.sha256(platform.read_bytes()).hexdigest() == digest
    rows = []
    for step in attached:
        rows.append(
            {
                "step": step,
                "attached s": attached[step],
                "attached again s": reopened[step],
                "owned lab s": owned[step],
                "attached / owned": attached[step] / owned[step],
            }
        )
    table = pd.DataFrame(rows)
    print(
        f"platform database: {args.memories:,} memories, {args.runs:,} runs (built in {t_build:.1f}s); "
        f"embedder {args.embedder}; owned copy made in {t_copy:.1f}s; medians of {args.repeat}"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"platform file unchanged: {unchanged}")
    print(
        json.dumps(
            {
                "memories": args.memories,
                "runs": args.runs,
                "embedder": args.embedder,
                "unchanged": unchanged,
                "rows": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
