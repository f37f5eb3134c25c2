"""Persistent embedding cache in the relational store, keyed by (embedder name, sha256 of the preprocessed text).

A text is never embedded twice by the same model, across processes and restarts. Vectors are stored as
raw little-endian float32 bytes (no pickle).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from omnilab.sql.own_tables import embedding_cache
from omnilab.sql.types import utcnow
from omnilab.vectors.embedders import Embedder, text_key

__all__ = ["EmbeddingCache", "EmbedStats", "to_bytes", "from_bytes"]

log = logging.getLogger(__name__)

_CHUNK = 500  # keys per IN (...) lookup; well under every backend's parameter limit


def to_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_bytes(blob: bytes, dim: int) -> np.ndarray:
    vec = np.frombuffer(blob, dtype="<f4")
    if vec.shape[0] != dim:
        raise ValueError(f"cached vector has {vec.shape[0]} values, expected {dim}")
    return vec.astype(np.float32)


@dataclass
class EmbedStats:
    """How a batch of texts got its vectors."""

    embedded: int = 0
    cache_hits: int = 0
    new_keys: tuple[str, ...] = ()  # keys embedded now (to be written to the cache by the caller)


class EmbeddingCache:
    """Read/write access to the ``embedding_cache`` table for one embedder."""

    def __init__(self, engine: sa.Engine, embedder_name: str, dim: int) -> None:
        self.engine = engine
        self.embedder_name = embedder_name
        self.dim = dim

    def get_many(self, keys: Iterable[str], conn: sa.Connection | None = None) -> dict[str, np.ndarray]:
        """key -> vector for the keys that are cached."""
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        if conn is None:
            with self.engine.connect() as own:
                return self._read(own, wanted)
        return self._read(conn, wanted)

    def _read(self, conn: sa.Connection, wanted: list[str]) -> dict[str, np.ndarray]:
        t = embedding_cache
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(wanted), _CHUNK):
            stmt = sa.select(t.c.text_hash, t.c.vector).where(
                t.c.embedder == self.embedder_name, t.c.text_hash.in_(wanted[i : i + _CHUNK])
            )
            for key, blob in conn.execute(stmt):
                out[key] = from_bytes(blob, self.dim)
        return out

    def put_many(self, conn: sa.Connection, items: dict[str, np.ndarray]) -> None:
        """Insert vectors inside the caller's transaction; keys already cached are left alone.

        One statement for the whole batch, straight to the driver: this is the hot path of ingest.
        """
        if not items:
            return
        now = utcnow()
        keys = list(items)
        blobs = [to_bytes(v) for v in items.values()]
        if conn.dialect.name == "sqlite":  # UTCDateTime's SQLite storage: naive UTC text
            stamp = now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
            name, dim = self.embedder_name, self.dim
            conn.exec_driver_sql(
                "INSERT OR IGNORE INTO embedding_cache (embedder, text_hash, dim, vector, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(name, k, dim, b, stamp) for k, b in zip(keys, blobs)],
            )
            return
        conn.exec_driver_sql(  # PostgreSQL: the batch as two arrays
            "INSERT INTO embedding_cache (embedder, text_hash, dim, vector, created_at) "
            "SELECT %s, k, %s, v, %s FROM unnest(%s::text[], %s::bytea[]) AS u(k, v) "
            "ON CONFLICT DO NOTHING",
            (self.embedder_name, self.dim, now, keys, blobs),
        )

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count())
                .select_from(embedding_cache)
                .where(embedding_cache.c.embedder == self.embedder_name)
            ).scalar_one()


def embed_texts(
    embedder: Embedder, cache: EmbeddingCache, texts: Sequence[str], batch_size: int = 256
) -> tuple[list[str], dict[str, np.ndarray], EmbedStats]:
    """Preprocess ``texts``, look them up in the cache and embed only the misses.

    Returns (key per text, key -> vector for every text, stats). New vectors are *not* written here: the
    caller stores them in the same transaction as the rows that use them, so nothing is half-written.
    """
    pre = [embedder.preprocess(t) for t in texts]
    keys = [text_key(p) for p in pre]
    vectors = cache.get_many(keys)
    stats = EmbedStats(cache_hits=sum(1 for k in keys if k in vectors))
    missing: dict[str, str] = {}
    for k, p in zip(keys, pre):
        if k not in vectors and k not in missing:
            missing[k] = p
    items = list(missing.items())
    for i in range(0, len(items), batch_size):
        chunk = items[i : i + batch_size]
        vecs = embedder.embed([p for _, p in chunk])
        for (k, _), v in zip(chunk, vecs):
            vectors[k] = v
    stats.embedded = len(missing)
    stats.new_keys = tuple(missing)
    return keys, vectors, stats
