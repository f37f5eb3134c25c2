"""The steps of one ingest batch before it is written: validate -> dedupe -> embed.

Each step takes what it needs and returns its result; :meth:`omnilab.vectors.memory.MemoryStore.ingest`
runs them per batch, then writes the batch in one transaction and adds its vectors to the index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from omnilab import enums
from omnilab.errors import InvalidInput
from omnilab.sql.schema import TABLES
from omnilab.sql.validate import validate_rows
from omnilab.vectors.cache import EmbeddingCache, embed_texts
from omnilab.vectors.embedders import Embedder
from omnilab.vectors.keys import MV, chunks, content_hash
from omnilab.vectors.sources import check_vector, fast_memory_rows

__all__ = ["Batch", "BatchVectors", "validate_batch", "dedupe_batch", "embed_batch", "numbered", "precomputed_key"]

MEM = TABLES["memory_entries"]
MEMORY_TYPES = enums.values(enums.MemoryType)
_INTERNAL = ("vector_id", "content_hash", "embedding_key")  # assigned by omnilab, never taken from a row


@dataclass
class Batch:
    """Validated memory rows with their content hashes, precomputed vectors (None: embed the content) and
    whether the caller named the id."""

    rows: list[dict[str, Any]]
    hashes: list[str]
    vectors: list[np.ndarray | None]
    named: list[bool]

    def subset(self, keep: list[int]) -> Batch:
        return Batch(
            [self.rows[i] for i in keep],
            [self.hashes[i] for i in keep],
            [self.vectors[i] for i in keep],
            [self.named[i] for i in keep],
        )


@dataclass
class BatchVectors:
    """The vector of every row of a batch: ``keys[i]`` (embedding-cache key) -> ``vectors[key]``."""

    keys: list[str]
    vectors: dict[str, np.ndarray]
    new: dict[str, np.ndarray] = field(default_factory=dict)  # to write to the embedding cache with the rows
    embedded: int = 0
    cache_hits: int = 0
    precomputed: int = 0


def numbered(batches: Iterable[list[dict[str, Any]]]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(offset of the first row, batch) for each batch."""
    offset = 0
    for b in batches:
        yield offset, b
        offset += len(b)


def precomputed_key(vec: np.ndarray) -> str:
    """The embedding-cache key of a vector handed in by the user: a key of its own bytes, never a text's key,
    so it cannot stand in for what the embedder would compute for some text."""
    return hashlib.sha256(b"omnilab-precomputed\0" + np.ascontiguousarray(vec, "<f4").tobytes()).hexdigest()


# ------------------------------------------------------------------------------------ validate
def validate_batch(batch: list[dict[str, Any]], offset: int, memory_type: Any, dim: int) -> Batch:
    """The batch's rows validated (``memory_type``: the type of rows without one), hashed and their
    precomputed ``embedding`` checked against ``dim``. Row dicts are normalized in place."""
    pre: list[Any] = []
    hashes: list[str] = []
    named: list[bool] = []
    for i, row in enumerate(batch):
        where = f"memory row {offset + i}"
        _normalize_row(row, where, memory_type)
        named.append(row.get("id") is not None)
        pre.append(row.pop("embedding", None))
        try:
            hashes.append(content_hash(row.get("content")))
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: content {exc}") from exc
    vectors = _check_vectors(pre, dim, offset)
    try:
        rows = fast_memory_rows(batch, MEMORY_TYPES) or validate_rows("memory_entries", batch)
    except InvalidInput as exc:
        raise InvalidInput(str(exc).replace("memory_entries row ", f"memory row {offset}+")) from exc
    return Batch(rows, hashes, vectors, named)


def _normalize_row(row: dict[str, Any], where: str, memory_type: Any) -> None:
    """The default type filled in, ``memory_id`` (the name search results use) taken as ``id``, omnilab's own
    columns refused."""
    if memory_type is not None and row.get("memory_type") is None:
        row["memory_type"] = getattr(memory_type, "value", memory_type)
    if "memory_id" in row:
        alias = row.pop("memory_id")
        if row.get("id") is not None and alias is not None and alias != row["id"]:
            raise InvalidInput(f"{where}: id and memory_id differ")
        row["id"] = row.get("id") if row.get("id") is not None else alias
    for internal in _INTERNAL:
        if row.get(internal) is not None:
            raise InvalidInput(f"{where}: {internal!r} is assigned by omnilab")
        row.pop(internal, None)


def _check_vectors(values: list[Any], dim: int, offset: int) -> list[np.ndarray | None]:
    """Precomputed embeddings checked (dimension, finite, non-zero) and normalized; None where absent."""
    if values and all(isinstance(v, np.ndarray) and v.shape == (dim,) for v in values):
        mat = np.vstack(values).astype(np.float32, copy=False)  # the common case, checked at once
        norms = np.linalg.norm(mat, axis=1)
        bad = ~np.isfinite(mat).all(axis=1) | (norms == 0)
        if not bad.any():
            return list(mat / norms[:, None])
    return [None if v is None else check_vector(v, dim, f"memory row {offset + i}") for i, v in enumerate(values)]


# -------------------------------------------------------------------------------------- dedupe
def dedupe_batch(engine: sa.Engine, own: sa.Engine, batch: Batch, *, dedupe: bool) -> tuple[Batch, int, dict[str, int]]:
    """(the rows to write, how many were duplicates, key rows to replace).

    A duplicate is a row whose id is already stored, or (``dedupe``) whose type and content are already
    stored or came earlier in the batch (earlier batches are committed: the lookup finds them). Key rows
    to replace (memory id -> vector id) belong to named ids whose memory is gone (deleted by others).
    """
    named = [r["id"] for r, g in zip(batch.rows, batch.named) if g]
    existing: set[str] = set()
    with engine.connect() as conn:
        for part in chunks(named):
            existing.update(conn.execute(sa.select(MEM.c.id).where(MEM.c.id.in_(part))).scalars())
    known: set[tuple[str, str]] = set()
    leftover: dict[str, int] = {}
    with own.connect() as conn:
        if dedupe:
            for part in chunks(sorted(set(batch.hashes))):
                known.update(
                    (t, h)
                    for t, h in conn.execute(
                        sa.select(MV.c.memory_type, MV.c.content_hash).where(MV.c.content_hash.in_(part))
                    )
                )
        for part in chunks([m for m in named if m not in existing]):
            leftover.update(
                (m, int(i)) for m, i in conn.execute(sa.select(MV.c.memory_id, MV.c.id).where(MV.c.memory_id.in_(part)))
            )
    seen: set[tuple[str, str]] = set()
    keep: list[int] = []
    for i, r in enumerate(batch.rows):
        sig = (r["memory_type"], batch.hashes[i])
        if r["id"] in existing or (dedupe and (sig in known or sig in seen)):
            continue
        existing.add(r["id"])
        seen.add(sig)
        keep.append(i)
    return batch.subset(keep), len(batch.rows) - len(keep), leftover


# --------------------------------------------------------------------------------------- embed
def embed_batch(embedder: Embedder, cache: EmbeddingCache, batch: Batch) -> BatchVectors:
    """Precomputed vectors as given, the rest from the embedding cache or the embedder."""
    out = BatchVectors(keys=[""] * len(batch.rows), vectors={})
    todo = [i for i, v in enumerate(batch.vectors) if v is None]
    if todo:
        keys, vectors, stats = embed_texts(embedder, cache, [batch.rows[i]["content"] for i in todo])
        for i, k in zip(todo, keys):
            out.keys[i] = k
        out.vectors.update(vectors)
        out.new.update({k: vectors[k] for k in stats.new_keys})
        out.embedded, out.cache_hits = stats.embedded, stats.cache_hits
    for i, v in enumerate(batch.vectors):
        if v is not None:
            k = precomputed_key(v)
            out.keys[i] = k
            out.vectors[k] = v
            out.new[k] = v
            out.precomputed += 1
    return out
