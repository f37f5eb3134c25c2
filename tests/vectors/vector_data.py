"""Seeded memories and the brute-force numpy reference shared by the vector tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

TYPES = ("code", "task", "knowledge")
LANGS = ("python", "rust", "go", "js")


def unit_vectors(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    """(n, dim) seeded random float32 vectors of norm 1."""
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def seeded_rows(n: int, dim: int = 384, seed: int = 0, rare_every: int | None = None) -> list[dict]:
    """n memories with random unit vectors and varied metadata; ``rare`` marks every ``rare_every``-th row."""
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    rows = []
    for i in range(n):
        meta = {
            "group": int(i % 50),
            "lang": LANGS[i % 4],
            "score": float(rng.uniform(0, 1)),
            "rare": bool(rare_every and i % rare_every == 7),
        }
        if i % 5 == 0:
            meta["labels"] = ["alpha", "beta"] if i % 10 == 0 else ["gamma"]
        if i % 7 == 0:
            del meta["lang"]  # some rows lack a key: $ne/$nin must match them
        rows.append(
            {
                "content": f"memory number {i} in group {i % 50}",
                "memory_type": TYPES[i % 3],
                "priority": int((1, 5, 8, 10)[i % 4]),
                "tags": [f"t{i % 6}"] + (["hot"] if i % 11 == 0 else []),
                "metadata": meta,
                "session_id": f"s{i % 9}",
                "embedding": vecs[i],
            }
        )
    return rows


def reference(
    rows: list[dict],
    ids: list[str],
    query: np.ndarray,
    k: int,
    keep: Callable[[dict], bool] = lambda r: True,
    threshold: float | None = None,
) -> list[tuple[str, float]]:
    """Top-k (memory_id, cosine) by brute force over the rows that pass ``keep``."""
    mat = np.vstack([r["embedding"] for r in rows])
    q = query / np.linalg.norm(query)
    scores = mat @ q
    frame = pd.DataFrame({"memory_id": ids, "score": scores, "keep": [keep(r) for r in rows]})
    frame = frame[frame["keep"]]
    if threshold is not None:
        frame = frame[frame["score"] >= threshold]
    frame = frame.sort_values("score", ascending=False, kind="stable").head(k)
    return list(zip(frame["memory_id"], frame["score"]))
