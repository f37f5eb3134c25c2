"""The steps of one ingest batch before it is written: validate -> dedupe -> embed.

Each step takes what it needs and returns its result; :meth:`omnilab.vectors.memory.MemoryStore.ingest`
runs them per batch, then writes the batch in one transaction and adds its vectors to the index.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
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
from omnilab.vectors.sources import _plain_json, check_vector

__all__ = [
    "Batch",
    "BatchVectors",
    "validate_batch",
    "dedupe_batch",
    "embed_batch",
    "numbered",
    "precomputed_key",
    "precomputed_keys",
    "write_cache",
]

MEM = TABLES["memory_entries"]
MEMORY_TYPES = enums.values(enums.MemoryType)
_INTERNAL = ("vector_id", "content_hash", "embedding_key")  # assigned by omnilab, never taken from a row
_SPECIAL = frozenset(("memory_id", "embedding", *_INTERNAL))  # keys the first pass of validation handles
_TEXT_IDS = ("id", "agent_id", "session_id", "project_id")  # VARCHAR(50)
_DATETIMES = ("last_accessed", "expires_at", "created_at", "updated_at")
_SIMPLE_KEYS = frozenset(
    ("content", "memory_type", "priority", "tags", "metadata", "access_count", *_TEXT_IDS, *_DATETIMES)
)
_PRECOMPUTED = hashlib.sha256(b"omnilab-precomputed\0")  # copied, then fed a vector's bytes


@dataclass
class Batch:
    """Validated memory rows with their content hashes, precomputed vectors (None: embed the content) and
    whether the caller named the id."""

    rows: list[dict[str, Any]]
    hashes: list[str]
    vectors: list[np.ndarray | None]
    named: list[bool]
    matrix: np.ndarray | None = None  # (n, d) of every row's vector when all of them came precomputed

    def subset(self, keep: list[int]) -> Batch:
        if len(keep) == len(self.rows):
            return self
        return Batch(
            [self.rows[i] for i in keep],
            [self.hashes[i] for i in keep],
            [self.vectors[i] for i in keep],
            [self.named[i] for i in keep],
            None if self.matrix is None else self.matrix[np.asarray(keep, dtype=np.intp)],
        )


@dataclass
class BatchVectors:
    """The vector of every row of a batch: ``keys[i]`` (embedding-cache key) -> ``vectors[key]``."""

    keys: list[str]
    vectors: dict[str, np.ndarray]
    matrix: np.ndarray | None = None  # (n, d): row i is the vector of batch row i, when built at once
    new: dict[str, np.ndarray] = field(default_factory=dict)  # to write to the embedding cache with the rows
    embedded: int = 0
    cache_hits: int = 0
    precomputed: int = 0


@contextlib.contextmanager
def write_cache(*conns: sa.Connection) -> Iterator[None]:
    """A 64 MiB SQLite page cache for the body of a batch's write transaction on each SQLite connection,
    back to SQLite's default (2 MiB) before it commits.

    A batch touches more pages than the default cache holds (its vectors in the embedding cache, the
    random-order keys of four indexes), so SQLite would spill dirty pages to the WAL mid-transaction and
    read index pages again. Dirty pages stay pinned until the commit writes them, so shrinking the cache
    before the commit loses nothing; the pooled connection is left as it was. Connections whose cache
    size is not the default (set by someone on purpose) are left alone.
    """
    lite = [c for c in {id(c): c for c in conns}.values() if c.dialect.name == "sqlite"]
    lite = [c for c in lite if c.exec_driver_sql("PRAGMA cache_size").scalar() == -2000]
    for c in lite:
        c.exec_driver_sql("PRAGMA cache_size=-65536")
    try:
        yield
    finally:
        for c in lite:
            with contextlib.suppress(sa.exc.DBAPIError):  # a lost connection is discarded anyway
                c.exec_driver_sql("PRAGMA cache_size=-2000")


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


def precomputed_keys(mat: np.ndarray) -> list[str]:
    """:func:`precomputed_key` of each row of an (n, d) matrix, from one copy of its bytes."""
    raw = memoryview(np.ascontiguousarray(mat, "<f4").tobytes())
    step = mat.shape[1] * 4
    out = []
    for start in range(0, len(raw), step):
        h = _PRECOMPUTED.copy()
        h.update(raw[start : start + step])
        out.append(h.hexdigest())
    return out


# ------------------------------------------------------------------------------------ validate
def validate_batch(batch: list[dict[str, Any]], offset: int, memory_type: Any, dim: int) -> Batch:
    """The batch's rows validated (``memory_type``: the type of rows without one), hashed and their
    precomputed ``embedding`` checked against ``dim``. Row dicts are normalized in place."""
    pre: list[Any] = []
    hashes: list[str] = []
    named: list[bool] = []
    default = None if memory_type is None else getattr(memory_type, "value", memory_type)
    for i, row in enumerate(batch):
        if default is not None and row.get("memory_type") is None:
            row["memory_type"] = default
        if not _SPECIAL.isdisjoint(row):  # aliases, omnilab's own columns or a precomputed vector
            _normalize_row(row, f"memory row {offset + i}", memory_type)
            pre.append(row.pop("embedding", None))
        else:
            pre.append(None)
        named.append(row.get("id") is not None)
        try:
            hashes.append(content_hash(row.get("content")))
        except InvalidInput as exc:
            raise InvalidInput(f"memory row {offset + i}: content {exc}") from exc
    vectors, matrix = _check_vectors(pre, dim, offset)
    try:
        rows = _fast_rows(batch, MEMORY_TYPES) or validate_rows("memory_entries", batch)
    except InvalidInput as exc:
        raise InvalidInput(str(exc).replace("memory_entries row ", f"memory row {offset}+")) from exc
    return Batch(rows, hashes, vectors, named, matrix)


def _uuid4s(n: int) -> list[str]:
    """``n`` random (version 4) UUID strings, as ``str(uuid.uuid4())`` makes them, from one ``os.urandom``."""
    raw = bytearray(os.urandom(16 * n))
    octets = np.frombuffer(raw, dtype=np.uint8).reshape(n, 16)
    octets[:, 6] = (octets[:, 6] & 0x0F) | 0x40  # version 4
    octets[:, 8] = (octets[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * n, 32)
    ]


def _plain_text(v: str) -> bool:
    """Text that every backend stores as given: no NUL, no lone surrogates."""
    if "\x00" in v:
        return False
    if v.isascii():
        return True
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _plain_mapping(meta: dict[Any, Any]) -> bool:
    """``_plain_json(meta)`` for a dict, flat values checked inline (nested ones by ``_plain_json``)."""
    for k, v in meta.items():
        if type(k) is not str or not ((k.isascii() and "\x00" not in k) or _plain_text(k)):
            return False
        t = type(v)
        if t is str:
            if not ((v.isascii() and "\x00" not in v) or _plain_text(v)):
                return False
        elif t is int or t is bool or v is None:
            continue
        elif t is float:
            if not math.isfinite(v):
                return False
        elif not _plain_json(v, 1):
            return False
    return True


def _fast_rows(rows: list[dict[str, Any]], memory_types: Sequence[str]) -> list[dict[str, Any]] | None:
    """Validated memory rows for the common shapes (plain str/int/list/dict values), or None.

    ``None`` means "not simple": the caller falls back to the general row validation
    (:func:`omnilab.sql.validate.validate_rows`), which gives the same result, and the detailed error,
    for every shape. The same checks as :func:`omnilab.vectors.sources.fast_memory_rows`, made without
    per-value function calls; ids are drawn for the whole batch at once.
    """
    now = dt.datetime.now(dt.timezone.utc)
    types = frozenset(memory_types)
    new_ids = iter(_uuid4s(sum(1 for r in rows if r.get("id") is None)))
    out = []
    for row in rows:
        clean = _fast_row(row, types, now)
        if clean is None:
            return None
        if clean["id"] is None:
            clean["id"] = next(new_ids)
        out.append(clean)
    return out


def _fast_row(row: dict[str, Any], types: frozenset[str], now: dt.datetime) -> dict[str, Any] | None:
    """One row of :func:`_fast_rows` (its id still None when it has none), or None."""
    if not _SIMPLE_KEYS.issuperset(row):
        return None
    get = row.get
    content, mtype = get("content"), get("memory_type")
    if type(content) is not str or "\x00" in content or type(mtype) is not str or mtype not in types:
        return None
    prio = get("priority")
    prio = 5 if prio is None else prio
    if type(prio) is not int or not 1 <= prio <= 10:
        return None
    clean = {"content": content, "memory_type": mtype, "priority": prio}
    for name in _TEXT_IDS:
        v = get(name)
        if v is not None and (type(v) is not str or len(v) > 50 or "\x00" in v):
            return None
        clean[name] = v
    tags = get("tags")
    if tags is None:
        tags = []
    elif type(tags) is not list:
        return None
    for t in tags:
        if type(t) is not str or not ((t.isascii() and "\x00" not in t) or _plain_text(t)):
            return None
    meta = get("metadata")
    if meta is None:
        meta = {}
    elif type(meta) is not dict or not _plain_mapping(meta):
        return None
    clean["tags"], clean["metadata"] = list(tags), meta
    ac = get("access_count", 0)
    if type(ac) is not int or ac < 0:
        return None
    clean["access_count"] = ac
    for name in _DATETIMES:
        v = get(name)
        if v is not None and not (isinstance(v, dt.datetime) and v.tzinfo is not None):
            return None
        clean[name] = v
    clean["created_at"] = clean["created_at"] or now
    clean["updated_at"] = clean["updated_at"] or now
    return clean


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


def _check_vectors(values: list[Any], dim: int, offset: int) -> tuple[list[np.ndarray | None], np.ndarray | None]:
    """Precomputed embeddings checked (dimension, finite, non-zero) and normalized; None where absent. Also
    the (n, d) matrix of them when every row has one (else None)."""
    if values and all(isinstance(v, np.ndarray) and v.shape == (dim,) for v in values):
        mat = np.vstack(values).astype(np.float32, copy=False)  # the common case, checked at once
        norms = np.linalg.norm(mat, axis=1)  # NaN or inf in a row makes its norm so (overflow: checked below)
        if np.isfinite(norms).all() and (norms > 0).all():
            mat = mat / norms[:, None]
            return list(mat), mat
    return [None if v is None else check_vector(v, dim, f"memory row {offset + i}") for i, v in enumerate(values)], None


# -------------------------------------------------------------------------------------- dedupe
def _lookup(conn: sa.Connection, which: str, values: Sequence[str]) -> list[tuple[Any, ...]]:
    """One query for all ``values`` (a JSON array on SQLite, an array on PostgreSQL):

    ``"ids"``: memory_entries ids among them; ``"hashes"``: (memory_type, content_hash) of key rows with
    those hashes; ``"keys"``: (memory_id, id) of key rows of those memory ids.
    """
    if not values:
        return []
    if conn.dialect.name == "sqlite":
        stmt = {
            "ids": "SELECT id FROM memory_entries WHERE id IN (SELECT value FROM json_each(?))",
            "hashes": "SELECT memory_type, content_hash FROM memory_vectors "
            "WHERE content_hash IN (SELECT value FROM json_each(?))",
            "keys": "SELECT memory_id, id FROM memory_vectors WHERE memory_id IN (SELECT value FROM json_each(?))",
        }[which]
        return [tuple(r) for r in conn.exec_driver_sql(stmt, (json.dumps(list(values)),))]
    if conn.dialect.name == "postgresql":
        stmt = {
            "ids": "SELECT id FROM memory_entries WHERE id = ANY(%s::text[])",
            "hashes": "SELECT memory_type, content_hash FROM memory_vectors WHERE content_hash = ANY(%s::text[])",
            "keys": "SELECT memory_id, id FROM memory_vectors WHERE memory_id = ANY(%s::text[])",
        }[which]
        return [tuple(r) for r in conn.exec_driver_sql(stmt, (list(values),))]
    table, cols, key = {  # pragma: no cover - another platform database: portable IN lists
        "ids": (MEM, (MEM.c.id,), MEM.c.id),
        "hashes": (MV, (MV.c.memory_type, MV.c.content_hash), MV.c.content_hash),
        "keys": (MV, (MV.c.memory_id, MV.c.id), MV.c.memory_id),
    }[which]
    out: list[tuple[Any, ...]] = []
    for part in chunks(list(values)):
        out.extend(tuple(r) for r in conn.execute(sa.select(*cols).where(key.in_(part))))
    return out


def dedupe_batch(engine: sa.Engine, own: sa.Engine, batch: Batch, *, dedupe: bool) -> tuple[Batch, int, dict[str, int]]:
    """(the rows to write, how many were duplicates, key rows to replace).

    A duplicate is a row whose id is already stored, or (``dedupe``) whose type and content are already
    stored or came earlier in the batch (earlier batches are committed: the lookup finds them). Key rows
    to replace (memory id -> vector id) belong to named ids whose memory is gone (deleted by others).
    """
    named = [r["id"] for r, g in zip(batch.rows, batch.named) if g]
    existing: set[str] = set()
    if named:
        with engine.connect() as conn:
            existing.update(r[0] for r in _lookup(conn, "ids", named))
    known: set[tuple[str, str]] = set()
    leftover: dict[str, int] = {}
    with own.connect() as conn:
        if dedupe:
            known.update((t, h) for t, h in _lookup(conn, "hashes", sorted(set(batch.hashes))))
        leftover.update((m, int(i)) for m, i in _lookup(conn, "keys", [m for m in named if m not in existing]))
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
    if batch.matrix is not None and len(batch.rows):  # every vector precomputed: keyed at once
        keys = precomputed_keys(batch.matrix)
        given = dict(zip(keys, list(batch.matrix)))
        return BatchVectors(keys=keys, vectors=given, new=dict(given), precomputed=len(keys), matrix=batch.matrix)
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
