"""Labelled code-search queries from the standard library, and MRR@k of vector, keyword and hybrid search.

Each query is the first sentence of a documented function's docstring; its one relevant memory is the
function's code without the docstring. Source files are parsed with ``ast`` (never imported). Modules are
split deterministically into train and test (by a hash of the module name), so fusion settings chosen
on train are reported on modules never seen while choosing.

``python tests/benchmarks/bench_code_search.py --lab PATH [--embedder SPEC]`` prints the table.
:func:`keyword_steps` measures what each part of the keyword index adds (fields, camelCase and run-together
identifier splitting) on an in-memory FTS5 replica built with the same code as the lab's index, every
fusion weight chosen on train and reported on test.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from omnilab.sample.stdlib import stdlib_functions
from omnilab.sql.keywords import keyword_fields
from omnilab.vectors.cache import embed_texts, text_key
from omnilab.vectors.hybrid import FIELD_WEIGHTS, fuse, query_terms

__all__ = [
    "first_sentence",
    "code_search_pairs",
    "split_by_module",
    "load_pairs",
    "warm_queries",
    "run_queries",
    "mrr",
    "evaluate",
    "STEPS",
    "keyword_steps",
]

_SENTENCE = re.compile(r"^(.+?[.!?])(\s|$)", re.S)


def first_sentence(doc: str) -> str:
    """The docstring's first sentence (up to the first period/blank line), whitespace collapsed."""
    para = doc.strip().split("\n\n")[0]
    m = _SENTENCE.match(para)
    text = m.group(1) if m else para
    return " ".join(text.split())


def code_search_pairs(modules: Sequence[str] | None = None, *, min_words: int = 4) -> pd.DataFrame:
    """(query, code) pairs: module, function_name, query (docstring first sentence), code (no docstring).

    Queries that occur more than once (e.g. "Return a copy.") are dropped: they have no single answer.
    """
    funcs = stdlib_functions(tuple(modules)) if modules else stdlib_functions()
    frame = pd.DataFrame(
        [
            {
                "module": f["module"],
                "function_name": f["function_name"],
                "query": first_sentence(f["docstring"]),
                "code": f["code"],
            }
            for f in funcs
        ]
    )
    frame = frame[frame["query"].str.split().str.len() >= min_words]
    frame = frame[~frame["query"].duplicated(keep=False)]
    frame = frame[~frame["code"].duplicated(keep=False)]
    return frame.reset_index(drop=True)


def split_by_module(frame: pd.DataFrame, test_share: float = 0.3) -> pd.Series:
    """ "train"/"test" per row, decided by a hash of the module name (stable across runs and machines)."""

    def side(module: str) -> str:
        h = int(hashlib.sha256(module.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return "test" if h < test_share else "train"

    return frame["module"].map(side).rename("split")


def load_pairs(lab: Any, pairs: pd.DataFrame, *, progress: bool = True) -> list[str]:
    """Ingest the code side as ``code`` memories (cached embeddings make reruns cheap); memory ids in order."""
    rows = [
        {"content": c, "memory_type": "code", "metadata": {"module": m, "function_name": f, "pair": i}}
        for i, (c, m, f) in enumerate(zip(pairs["code"], pairs["module"], pairs["function_name"]))
    ]
    lab.ingest(rows, progress=progress, batch_size=256)
    ids = lab.memories("code", where={"metadata.pair": {"$gte": 0}})[["id", "metadata", "content"]]
    by_code = {c: mid for mid, c in zip(ids["id"], ids["content"])}
    return [by_code[c] for c in pairs["code"]]


def warm_queries(store: Any, queries: Sequence[str]) -> None:
    """Embed the queries once into the persistent cache, so reruns of the evaluation are fast."""
    keys, vecs, stats = embed_texts(store.embedder, store.cache, list(queries))
    if stats.new_keys:
        with store.engine.begin() as conn:
            store.cache.put_many(conn, {k: vecs[k] for k in stats.new_keys})


def run_queries(store: Any, queries: Sequence[str], *, pool: int = 50) -> list[tuple[dict, dict]]:
    """For each query, (cosine by memory id, keyword score by memory id) over both candidate pools."""
    return [store.hybrid_pools(q, memory_type="code", pool=pool) for q in queries]


def mrr(ranked: Sequence[Sequence[int]], relevant: Sequence[int], k: int = 10) -> float:
    """Mean reciprocal rank of the relevant id within the first k (0 when absent)."""
    total = 0.0
    for ids, rel in zip(ranked, relevant):
        for r, i in enumerate(ids[:k], 1):
            if i == rel:
                total += 1.0 / r
                break
    return total / max(len(relevant), 1)


def _ranked(pools: list[tuple[dict, dict]], how: str, weight: float = 0.5) -> list[list[int]]:
    out = []
    for vec, kw in pools:
        if how == "vector":
            out.append([i for i, _ in sorted(vec.items(), key=lambda x: (-x[1], x[0]))])
        elif how == "keyword":
            out.append([i for i, _ in sorted(kw.items(), key=lambda x: (-x[1], x[0]))])
        else:
            out.append([i for i, _ in fuse(vec, kw, method=how, weight=weight)])
    return out


def evaluate(lab: Any, *, k: int = 10, pool: int = 50, progress: bool = True) -> dict[str, Any]:
    """Choose the fusion (method, weight) on train, report vector/keyword/fusions on test (MRR@k).

    The code side of every pair is added to ``lab`` as a ``code`` memory (use a lab made for it).
    """
    pairs = code_search_pairs()
    split = split_by_module(pairs)
    memory_ids = load_pairs(lab, pairs, progress=progress)
    vector_id = lab.memory.vector_ids_for(memory_ids)  # hits carry vector ids
    relevant = np.array([vector_id[m] for m in memory_ids])
    warm_queries(lab.memory, list(pairs["query"]))
    started = time.perf_counter()
    pools = run_queries(lab.memory, list(pairs["query"]), pool=pool)
    seconds = time.perf_counter() - started
    weights = [float(w) for w in np.round(np.arange(0.5, 1.0, 0.05), 2)]
    grid = [(how, w) for how in ("blend", "minmax", "rrf") for w in weights]
    rows = []
    for part in ("train", "test"):
        mask = (split == part).to_numpy()
        sub = [p for p, m in zip(pools, mask) if m]
        rel = relevant[mask]
        rows.append({"split": part, "method": "vector", "weight": 1.0, "mrr": mrr(_ranked(sub, "vector"), rel, k)})
        rows.append({"split": part, "method": "keyword", "weight": 0.0, "mrr": mrr(_ranked(sub, "keyword"), rel, k)})
        for how, w in grid:
            rows.append({"split": part, "method": how, "weight": float(w), "mrr": mrr(_ranked(sub, how, w), rel, k)})
    table = pd.DataFrame(rows)
    train = table[(table.split == "train") & table.method.isin(["blend", "minmax", "rrf"])]
    best = train.sort_values(["mrr", "method"], ascending=[False, True]).iloc[0]
    test = table[table.split == "test"].set_index(["method", "weight"])["mrr"]
    return {
        "embedder": lab.memory.embedder.name,
        "pairs": len(pairs),
        "train_queries": int((split == "train").sum()),
        "test_queries": int((split == "test").sum()),
        "test_modules": sorted(pairs["module"][split == "test"].unique()),
        "chosen": {"method": best["method"], "weight": float(best["weight"]), "train_mrr": float(best["mrr"])},
        "test_mrr": {
            "vector": float(test[("vector", 1.0)]),
            "keyword": float(test[("keyword", 0.0)]),
            "hybrid_chosen": float(test[(best["method"], float(best["weight"]))]),
            "rrf_plain": float(test[("rrf", 0.5)]),
            "minmax_0.7": float(test[("minmax", 0.7)]),
        },
        "query_seconds": round(seconds, 2),
        "table": table,
    }


#: the keyword index variants of :func:`keyword_steps`, each adding one part: (name, fields options, weights)
STEPS: tuple[tuple[str, dict[str, bool], tuple[float, float, float]], ...] = (
    ("body only, no identifier split", {"camel": False, "compounds": False}, (0.0, 0.0, 1.0)),
    ("+ camelCase split (before 0009)", {"camel": True, "compounds": False}, (0.0, 0.0, 1.0)),
    ("+ name/signature fields", {"camel": True, "compounds": False}, FIELD_WEIGHTS),
    ("+ run-together words split (0009)", {"camel": True, "compounds": True}, FIELD_WEIGHTS),
)


def _fts_scores(contents: Sequence[str], queries: Sequence[str], options: dict[str, bool], weights: Any) -> np.ndarray:
    """queries x memories keyword scores (0: no match) from an in-memory FTS5 table like the lab's."""
    con = sqlite3.connect(":memory:")
    try:
        con.execute("CREATE VIRTUAL TABLE f USING fts5(name, signature, body, tokenize='porter unicode61')")
        con.executemany(
            "INSERT INTO f (rowid, name, signature, body) VALUES (?, ?, ?, ?)",
            [(i, *keyword_fields(c, "sqlite", **options)) for i, c in enumerate(contents)],
        )
        out = np.zeros((len(queries), len(contents)))
        for qi, q in enumerate(queries):
            terms = query_terms(q)
            if terms:
                match = " OR ".join(f'"{t}"' for t in terms)
                rows = con.execute("SELECT rowid, -bm25(f, ?, ?, ?) FROM f WHERE f MATCH ?", (*weights, match))
                for rid, score in rows:
                    out[qi, rid] = max(score, 1e-9)
        return out
    finally:
        con.close()


def _pooled_mrr(cos: np.ndarray, kw: np.ndarray, weight: float | None, mask: np.ndarray, pool: int, k: int) -> float:
    """MRR@k of the blend over the pools hybrid search builds (top ``pool`` by cosine and by keyword score);
    ``weight`` None: keyword only. The relevant memory of query i is memory i."""
    n = cos.shape[0]
    cand = np.zeros(cos.shape, dtype=bool)
    np.put_along_axis(cand, np.argsort(-cos, axis=1, kind="stable")[:, :pool], True, axis=1)
    kc = np.zeros_like(cand)
    np.put_along_axis(kc, np.argsort(-kw, axis=1, kind="stable")[:, :pool], True, axis=1)
    cand |= kc & (kw > 0)
    if weight is None:
        score = np.where(kw > 0, kw, -np.inf)
    else:
        kin = np.where(cand, kw, 0.0)
        top = kin.max(axis=1, keepdims=True)
        kn = np.divide(kin, top, out=np.zeros_like(kin), where=top > 0)
        score = np.where(cand, weight * cos + (1 - weight) * kn, -np.inf)
    diag = np.arange(n)
    rel = score[diag, diag]
    rank = 1 + (score > rel[:, None]).sum(axis=1)
    rr = np.where(np.isfinite(rel) & (rank <= k), 1.0 / rank, 0.0)
    return float(rr[mask].mean())


def keyword_steps(lab: Any, *, k: int = 10, pool: int = 50) -> pd.DataFrame:
    """What each part of the keyword index adds: per :data:`STEPS` row, keyword-only and blend MRR@k on test,
    the blend weight chosen on train (grid 0.5..0.95), and the vector-only MRR for reference.

    Uses the lab's memories and cached query vectors (run :func:`evaluate` on the lab first).
    """
    pairs = code_search_pairs()
    split = split_by_module(pairs).to_numpy()
    memory_ids = load_pairs(lab, pairs, progress=False)
    store = lab.memory
    vector_id = store.vector_ids_for(memory_ids)
    vids = [vector_id[m] for m in memory_ids]
    found, mat = store.index.vectors(vids)
    row = {int(v): j for j, v in enumerate(found.tolist())}
    docs = np.stack([mat[row[v]] for v in vids])
    warm_queries(store, list(pairs["query"]))
    keys = [text_key(store.embedder.preprocess(q)) for q in pairs["query"]]
    cached = store.cache.get_many(keys)
    queries = np.stack([cached[key] for key in keys])
    cos = queries @ docs.T
    train, test = split == "train", split == "test"
    weights = [float(w) for w in np.round(np.arange(0.5, 1.0, 0.05), 2)]
    rows = [
        {
            "step": "vector only",
            "keyword_test": np.nan,
            "weight": 1.0,
            "hybrid_test": _pooled_mrr(cos, cos, 1.0, test, pool, k),
        }
    ]
    for name, options, fw in STEPS:
        kw = _fts_scores(list(pairs["code"]), list(pairs["query"]), options, fw)
        best = max(weights, key=lambda w: (_pooled_mrr(cos, kw, w, train, pool, k), -w))
        rows.append(
            {
                "step": name,
                "keyword_test": _pooled_mrr(cos, kw, None, test, pool, k),
                "weight": best,
                "train": _pooled_mrr(cos, kw, best, train, pool, k),
                "hybrid_test": _pooled_mrr(cos, kw, best, test, pool, k),
                "hybrid_test_at_0.85": _pooled_mrr(cos, kw, 0.85, test, pool, k),
            }
        )
    return pd.DataFrame(rows)
