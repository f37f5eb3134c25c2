"""Checks shared by the reliability suite: store snapshots and the SQL / FAISS / embedding-cache agreement."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from omnilab.sql.own_tables import embedding_cache, memory_vectors
from omnilab.sql.schema import TABLES
from omnilab.vectors.cache import from_bytes
from omnilab.vectors.index import key_code

MEM = TABLES["memory_entries"]
REDIS_URL = os.environ.get("OMNILAB_TEST_REDIS_URL")


def snapshot(lab: Any) -> dict[str, Any]:
    """Everything a failed call must leave untouched: row counts, memory ids, cache size, indexed ids."""
    with lab.engine.connect() as conn:
        mids = set(conn.execute(sa.select(MEM.c.id)).scalars())
        cached = conn.execute(sa.select(sa.func.count()).select_from(embedding_cache)).scalar_one()
    return {
        "counts": {k: int(v) for k, v in lab.counts().items()},
        "memory_ids": mids,
        "cache_rows": int(cached),
        "indexed": set(lab.memory.index.where),
    }


def manifest_problems(vectors_dir: Path) -> list[str]:
    """The on-disk index as a crash left it: the manifest parses and names readable files that agree."""
    import faiss

    path = vectors_dir / "manifest.json"
    if not path.exists():
        return []
    try:
        m = json.loads(path.read_text())
    except ValueError as exc:
        return [f"manifest does not parse: {exc}"]
    out = []
    for t, info in m.get("types", {}).items():
        try:
            idx = faiss.read_index(str(vectors_dir / info["file"]))
            keys = np.load(vectors_dir / info["keys"], allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - reported as a finding
            out.append(f"{t}: files named by the manifest unreadable: {exc}")
            continue
        if idx.ntotal != info["count"] or len(keys) != info["count"]:
            out.append(f"{t}: manifest count {info['count']}, index {idx.ntotal}, keys {len(keys)}")
    return out


def consistency(lab: Any, sample_public: int = 5) -> dict[str, Any]:
    """How SQL, the FAISS index and the embedding cache disagree (all lists empty = consistent).

    * every memory row has exactly one vector, of its type and embedding key, and no vector lacks a row;
    * every row's embedding key is in the embedding cache and the indexed vector equals the cached one;
    * every memory's own (cached) vector ranks it first in its type (checked for all rows with FAISS in
      one batch, and through the public ``lab.search`` for a few).
    """
    store = lab.memory
    store.refresh()
    keys = memory_vectors
    with lab.engine.connect() as conn:
        # r.id: the FAISS id (memory_vectors.id); r.memory_id: the platform's string id
        rows = conn.execute(
            sa.select(keys.c.id, MEM.c.id.label("memory_id"), MEM.c.memory_type, keys.c.embedding_key)
            .select_from(MEM.outerjoin(keys, keys.c.memory_id == MEM.c.id))
            .order_by(keys.c.id)
        ).all()
        cached = dict(
            conn.execute(
                sa.select(embedding_cache.c.text_hash, embedding_cache.c.vector).where(
                    embedding_cache.c.embedder == store.embedder.name
                )
            ).all()
        )
    indexed = store.index.keys()
    rows = [r for r in rows if r.id is not None]
    sql_ids = {r.id for r in rows}
    out: dict[str, Any] = {
        "rows": len(rows),
        "unkeyed_rows": sorted(r.memory_id for r in rows if r.id is None),
        "orphan_vectors": sorted(set(indexed) - sql_ids),
        "missing_vectors": sorted(sql_ids - set(indexed)),
        "wrong_type_or_key": [
            r.id for r in rows if r.id in indexed and indexed[r.id] != (r.memory_type, key_code(r.embedding_key))
        ],
        "not_cached": [r.id for r in rows if r.embedding_key not in cached],
        "vector_mismatch": [],
        "not_first": [],
        "public_search_failures": [],
    }
    ok = [r for r in rows if r.id in indexed and r.embedding_key in cached]
    if ok:
        ids, mat = store.index.vectors([r.id for r in ok])
        cache_mat = np.vstack([from_bytes(cached[r.embedding_key], store.embedder.dim) for r in ok])
        bad = ~np.isclose(mat, cache_mat, atol=1e-5).all(axis=1)
        out["vector_mismatch"] = [int(i) for i in ids[bad]]
        for t in {r.memory_type for r in ok}:
            sel = [j for j, r in enumerate(ok) if r.memory_type == t]
            _, got = store.index.types[t].flat.search(np.ascontiguousarray(cache_mat[sel]), 1)
            out["not_first"] += [ok[j].id for j, g in zip(sel, got[:, 0]) if g != ok[j].id]
        rng = np.random.default_rng(len(ok))
        for j in rng.choice(len(ok), size=min(sample_public, len(ok)), replace=False):
            r = ok[int(j)]
            res = lab.search(cache_mat[int(j)], memory_type=r.memory_type, k=1)
            if res.empty or res["memory_id"].iloc[0] != r.memory_id or abs(res["score"].iloc[0] - 1) > 1e-4:
                out["public_search_failures"].append(r.memory_id)
    return out


def assert_consistent(report: dict[str, Any]) -> None:
    problems = {k: v for k, v in report.items() if k != "rows" and v}
    assert not problems, problems
