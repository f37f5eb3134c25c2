"""Benchmark: peak memory (RSS) of a large ingest and of the final index save, this checkout vs a baseline.

Each measurement runs in a fresh subprocess (so ``ru_maxrss`` is that run's own peak): open a new lab
(SQLite, hashing embedder), ingest ``--rows`` short rows streamed from a generator (so the input itself
costs nothing), and sample the process's RSS every 10 ms. Reported per run:

- ``open``          RSS after ``omnilab.open`` (interpreter, libraries: the constant);
- ``ingest peak``   the highest RSS while ingesting, the final index save excluded;
- ``save peak``     the highest RSS during the final index save (``MemoryStore.save`` at the end of ingest);
- ``ru_maxrss``     the kernel's peak for the whole run;
- ``index``         the final FAISS index size (vectors x dim x 4 bytes);
- ``ratio``         (peak - open) / index: the issue's bound is 1.3.

The baseline is the omnilab package of a git revision (default ``HEAD``, i.e. before uncommitted changes),
extracted with ``git archive`` into a temporary directory and run the same way. Prints a table and JSON.

    python tests/benchmarks/bench_memory.py                   # 400k rows, this checkout vs HEAD
    python tests/benchmarks/bench_memory.py --baseline 73e92c7  # vs the revision before issue 17's streaming
    python tests/benchmarks/bench_memory.py --rows 100000 --baseline HEAD~3
    python tests/benchmarks/bench_memory.py --no-baseline
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
WORDS = [
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
]
TYPES = ["knowledge", "code", "task", "insight"]


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rows(n: int) -> Any:
    for i in range(n):
        yield {
            "content": f"note {i}: {WORDS[i % 16]} {WORDS[(i // 16) % 16]} item {i * 7919 % 100003}",
            "memory_type": TYPES[i % 4],
            "metadata": {"n": i},
        }


def child(src: str, n: int, batch: int) -> dict[str, Any]:
    """Runs in the measuring subprocess: one ingest, RSS sampled by a thread."""
    sys.path.insert(0, src)
    import omnilab
    from omnilab.vectors import memory as memory_mod

    phase = {"name": "open"}
    peaks: dict[str, int] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss = _rss()
            peaks[phase["name"]] = max(peaks.get(phase["name"], 0), rss)
            time.sleep(0.01)

    original_save = memory_mod.MemoryStore.save

    def save(self: Any, **kw: Any) -> None:
        before = phase["name"]
        phase["name"] = "save" if before == "ingest" else before
        peaks["before save"] = _rss()
        try:
            original_save(self, **kw)
        finally:
            phase["name"] = before

    memory_mod.MemoryStore.save = save  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        lab = omnilab.open(Path(tmp) / "lab", embedder="hashing")
        opened = _rss()
        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        phase["name"] = "ingest"
        started = time.perf_counter()
        summary = lab.ingest(rows(n), batch_size=batch, progress=False)
        seconds = time.perf_counter() - started
        phase["name"] = "after"
        time.sleep(0.05)
        stop.set()
        thread.join()
        vectors, dim = len(lab.memory.index), lab.memory.embedder.dim
        lab.close()
    index = vectors * dim * 4
    peak = max(peaks.get("ingest", 0), peaks.get("save", 0))
    return {
        "rows": n,
        "added": summary["added"],
        "seconds": round(seconds, 1),
        "open_mb": opened / MB,
        "ingest_peak_mb": peaks.get("ingest", 0) / MB,
        "save_peak_mb": peaks.get("save", 0) / MB,
        "before_save_mb": peaks.get("before save", 0) / MB,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "index_mb": index / MB,
        "ratio": (peak - opened) / index if index else None,
    }


def run(src: Path, n: int, batch: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(src), "--rows", str(n), "--batch", str(batch)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(src)},
    )
    if out.returncode != 0:
        raise SystemExit(f"measuring run failed ({src}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=400_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--baseline", default="HEAD", help="git revision of the baseline (default HEAD)")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--child", metavar="SRC", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.rows, args.batch)))
        return
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_baseline:
            base = Path(tmp) / "baseline"
            base.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.baseline, "omnilab"], capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
            results[f"baseline ({args.baseline})"] = run(base, args.rows, args.batch)
        results["this checkout"] = run(ROOT, args.rows, args.batch)
    cols = [
        "seconds",
        "open_mb",
        "ingest_peak_mb",
        "before_save_mb",
        "save_peak_mb",
        "ru_maxrss_mb",
        "index_mb",
        "ratio",
    ]
    print(f"{args.rows} rows, batch {args.batch}, hashing embedder, SQLite")
    print(f"{'run':<22}" + "".join(f"{c:>16}" for c in cols))
    for name, r in results.items():
        print(f"{name:<22}" + "".join(f"{r[c]:>16.2f}" if isinstance(r[c], float) else f"{r[c]!s:>16}" for c in cols))
    if len(results) == 2:
        (_, b), (_, a) = results.items()
        print(
            f"peak RSS after/before: {a['ru_maxrss_mb'] / b['ru_maxrss_mb']:.2f}x "
            f"({b['ru_maxrss_mb']:.0f} MB -> {a['ru_maxrss_mb']:.0f} MB)"
        )
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
