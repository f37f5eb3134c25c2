"""Caches for memory-search results (30 min) and agent responses (2 h), with hit/miss statistics.

A search key is the sha256 of a canonical JSON of everything that decides the answer: the query (text,
or a hash of the vector's bytes, dtype and shape), memory type, k, threshold, filters, embedder and the
vector index *generation*. Any memory write bumps the generation, so old entries are simply never
asked for again (they expire on their TTL) — no key scanning.

DataFrames travel as JSON (``orient="split"``-like, with every column's dtype recorded and restored);
no pickle. If Redis is down the search cache steps aside: ``get`` returns ``None`` and logs one warning
per outage, ``set`` does nothing, so ``lab.search`` keeps working.

Keys: ``<prefix>cache:search:<digest>`` and ``<prefix>cache:response:<digest>`` (omnilab layout), or the
platform's ``memory_search:<digest>`` (TTL 1800) and ``agent_response:<agent_id>:<digest>`` (TTL 7200)
(platform layout; the digest still includes the index generation, so stale results are never served).
A platform-layout search entry holds omnilab's frame document (a JSON object keeping dtypes), not the
platform's bare result list: only omnilab reads the entries it writes. Hit/miss counters stay under
omnilab's prefix (in-process when read-only, since counting is a write). :class:`MemoryCache` keeps
``memory:<id>`` (the JSON memory entry, TTL 3600) in step with memory writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import redis

from omnilab._checks import is_number
from omnilab.errors import InvalidInput, StoreUnavailable
from omnilab.sessions.connection import RedisConnection, dumps, expiry, glob_escape, loads, reply_opt

__all__ = ["SearchCache", "ResponseCache", "MemoryCache", "Caches", "frame_to_json", "frame_from_json", "canonical_key"]

log = logging.getLogger(__name__)

SEARCH_TTL = 30 * 60
RESPONSE_TTL = 2 * 60 * 60
MEMORY_TTL = 60 * 60


# -------------------------------------------------------------------------------- canonical keys
def _canon(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        return {
            "$ndarray": hashlib.sha256(arr.tobytes()).hexdigest(),
            "dtype": str(arr.dtype),
            "shape": list(arr.shape),
        }
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_canon(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True, default=str))
    if hasattr(value, "value") and not isinstance(value, (str, int, float, bool)):  # enums
        return _canon(value.value)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def canonical_key(**parts: Any) -> str:
    """sha256 hex of a canonical JSON (sorted keys, no whitespace) of ``parts``."""
    text = json.dumps(_canon(parts), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------- DataFrame <-> JSON
def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return _cell(value.item())
    return value


def _json_attrs(attrs: dict[Any, Any]) -> dict[str, Any]:
    """The JSON-able part of ``DataFrame.attrs`` (anything else is metadata we may drop)."""
    out = {}
    for k, v in attrs.items():
        try:
            dumps(v)
        except InvalidInput:
            continue
        out[str(k)] = v
    return out


def frame_to_json(frame: pd.DataFrame) -> str:
    """JSON text holding columns, index, rows and dtypes (restored by :func:`frame_from_json`)."""
    cols = [str(c) for c in frame.columns]
    if len(set(cols)) != len(cols):
        raise InvalidInput("cannot cache a DataFrame with duplicate column names")
    data = [[_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    index = frame.index
    doc = {
        "columns": cols,
        "dtypes": [str(t) for t in frame.dtypes],
        "index": [_cell(v) for v in index],
        "index_dtype": str(index.dtype),
        "index_name": index.name,
        "range_index": isinstance(index, pd.RangeIndex),
        "data": data,
        "attrs": _json_attrs(frame.attrs),
    }
    return dumps(doc)


def _restore(values: list[Any], dtype: str) -> pd.Series:
    s = pd.Series(values, dtype=object)
    if dtype.startswith("datetime64"):
        out = pd.to_datetime(s, utc="UTC" in dtype or "," in dtype, format="ISO8601")
        return out.astype(dtype)
    if dtype.startswith("timedelta64"):
        return pd.to_timedelta(s).astype(dtype)
    if dtype == "object":
        return s
    if dtype.startswith(("float", "Float")):
        return pd.to_numeric(s.where(s.notna(), np.nan), errors="raise").astype(dtype)
    return s.astype(dtype)


def frame_from_json(text: str) -> pd.DataFrame:
    """The DataFrame written by :func:`frame_to_json`, with the same dtypes."""
    doc = loads(text)
    cols = doc["columns"]
    rows = doc["data"]
    series = {c: _restore([r[j] for r in rows], dt) for j, (c, dt) in enumerate(zip(cols, doc["dtypes"]))}
    if doc["range_index"]:
        index: pd.Index = pd.RangeIndex(len(rows), name=doc["index_name"])
    else:
        index = pd.Index(_restore(doc["index"], doc["index_dtype"]), name=doc["index_name"])
    frame = pd.DataFrame(series, columns=cols)
    frame.index = index
    frame.attrs.update(doc.get("attrs") or {})
    return frame


# ------------------------------------------------------------------------------------- caches
def _check_ttl(ttl: object) -> None:
    if not is_number(ttl) or not ttl > 0:
        raise InvalidInput(f"ttl must be a positive number of seconds, got {ttl!r}")


# one round trip: read the entry and count the hit or miss
_GET_COUNTED = """
local v = redis.call('GET', KEYS[1])
redis.call('HINCRBY', KEYS[2], v and 'hits' or 'misses', 1)
return v
"""


class _Counted:
    """Shared hit/miss counters in Redis (so every process contributes) and the degraded switch."""

    kind = "cache"
    platform_prefix = ""  # the platform's key prefix of this cache (platform layout)

    def __init__(self, conn: RedisConnection, ttl: float) -> None:
        _check_ttl(ttl)
        self.conn = conn
        self.ttl = ttl
        self._warned = False
        self._lock = threading.Lock()
        self._local = {"hits": 0, "misses": 0, "sets": 0}  # read-only connections count in-process

    def _key(self, digest: str) -> str:
        if self.conn.platform:
            return self.platform_prefix + digest
        return self.conn.key("cache", self.kind, digest)

    @property
    def _pattern(self) -> str:
        """Glob of this cache's entries."""
        if self.conn.platform:
            return glob_escape(self.platform_prefix) + "*"
        return glob_escape(self.conn.key("cache", self.kind, "")) + "*"

    @property
    def _stats_key(self) -> str:
        return self.conn.key("cache", "stats", self.kind)

    def _degraded(self, exc: StoreUnavailable) -> None:
        with self._lock:
            if not self._warned:
                self._warned = True
                log.warning("%s cache bypassed, Redis is unavailable: %s", self.kind, exc)

    def _recovered(self) -> None:
        if self._warned:
            with self._lock:
                self._warned = False
            log.info("%s cache: Redis is reachable again", self.kind)

    def _get_raw(self, key: str) -> str | None:
        if self.conn.read_only:
            raw = self.conn.run(lambda r: reply_opt(r.get(key)), f"{self.kind} cache get")
            with self._lock:
                self._local["hits" if raw is not None else "misses"] += 1
            return raw
        return self.conn.run(lambda r: r.eval(_GET_COUNTED, 2, key, self._stats_key), f"{self.kind} cache get")

    def _set_raw(self, key: str, text: str, ttl: float | None) -> None:
        self.conn.check_writable(f"writing the {self.kind} cache")
        px = max(1, int((self.ttl if ttl is None else ttl) * 1000))

        def _set(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=False)
            pipe.set(key, text, **expiry(px))
            pipe.hincrby(self._stats_key, "sets", 1)
            pipe.execute()

        self.conn.run(_set, f"{self.kind} cache set")

    def counters(self) -> dict[str, int]:
        if self.conn.read_only:
            with self._lock:
                return dict(self._local)
        raw = self.conn.run(lambda r: r.hgetall(self._stats_key), "cache stats")
        return {k: int(raw.get(k, 0)) for k in ("hits", "misses", "sets")}

    def count_keys(self) -> int:
        """Live entries (SCAN over this cache's keys; for statistics only)."""
        pattern = self._pattern
        return self.conn.run(lambda r: sum(1 for _ in r.scan_iter(match=pattern, count=1000)), "cache keys")

    def clear(self) -> int:
        """Delete this cache's entries and counters; returns how many keys went.

        In the platform layout this deletes every ``memory_search:*`` / ``agent_response:*`` entry,
        the platform's own included (they are caches; the platform recomputes them)."""
        n = self.conn.delete_matching(self._pattern)
        self.conn.run(lambda r: r.delete(self._stats_key), "cache clear")
        return n


class SearchCache(_Counted):
    """Memory-search results keyed by everything that decides them, including the index generation."""

    kind = "search"
    platform_prefix = "memory_search:"

    def __init__(self, conn: RedisConnection, *, ttl: float = SEARCH_TTL) -> None:
        super().__init__(conn, ttl)

    @staticmethod
    def key(
        query: Any,
        *,
        memory_type: Any = None,
        k: int = 10,
        threshold: float | None = None,
        where: Any = None,
        embedder: str | None = None,
        generation: Any = None,
        **extra: Any,
    ) -> str:
        """The cache digest for a search (``extra``: any further argument that changes the result)."""
        if isinstance(query, np.ndarray):
            q: Any = _canon(query)
        elif isinstance(query, str):
            q = {"$text": query}
        else:
            raise InvalidInput(f"query must be a string or a numpy vector, got {type(query).__name__}")
        return canonical_key(
            query=q,
            memory_type=memory_type,
            k=k,
            threshold=threshold,
            where=where,
            embedder=embedder,
            generation=generation,
            extra=extra,
        )

    def get(self, query: Any, **params: Any) -> pd.DataFrame | None:
        """The cached result or ``None`` (miss, or Redis down: one warning, then silence)."""
        digest = self.key(query, **params)
        try:
            raw = self._get_raw(self._key(digest))
        except StoreUnavailable as exc:
            self._degraded(exc)
            return None
        self._recovered()
        if raw is None:
            return None
        try:
            return frame_from_json(raw)
        except (ValueError, KeyError, TypeError) as exc:  # an entry from an older format: treat as a miss
            log.debug("unreadable search cache entry %s: %s", digest, exc)
            return None

    def set(self, query: Any, frame: pd.DataFrame, *, ttl: float | None = None, **params: Any) -> bool:
        """Cache a result frame; returns False (silently) when Redis is unavailable.

        Raises :class:`ReadOnlyViolation` on a read-only connection."""
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInput(f"frame must be a DataFrame, got {type(frame).__name__}")
        self.conn.check_writable("writing the search cache")
        digest = self.key(query, **params)
        text = frame_to_json(frame)
        try:
            self._set_raw(self._key(digest), text, ttl)
        except StoreUnavailable as exc:
            self._degraded(exc)
            return False
        self._recovered()
        return True

    def __repr__(self) -> str:
        return f"<SearchCache ttl={self.ttl}s {self.conn.display}>"


class ResponseCache(_Counted):
    """Agent responses keyed by agent, prompt, model and parameters (default TTL two hours).

    Unlike the search cache, a Redis outage raises :class:`StoreUnavailable` here: callers decide.
    Platform layout: ``agent_response:<agent_id>:<task hash>`` with the hash of prompt, model and parameters.
    """

    kind = "response"
    platform_prefix = "agent_response:"

    def __init__(self, conn: RedisConnection, *, ttl: float = RESPONSE_TTL) -> None:
        super().__init__(conn, ttl)

    @staticmethod
    def key(agent_id: str, prompt: str, *, model: str | None = None, params: dict[str, Any] | None = None) -> str:
        if not isinstance(agent_id, str) or not agent_id:
            raise InvalidInput(f"agent_id must be a non-empty string, got {agent_id!r}")
        if not isinstance(prompt, str):
            raise InvalidInput(f"prompt must be a string, got {type(prompt).__name__}")
        return canonical_key(agent_id=agent_id, prompt=prompt, model=model, params=params or {})

    @staticmethod
    def task_hash(prompt: str, *, model: str | None = None, params: dict[str, Any] | None = None) -> str:
        """The ``<task_hash>`` of a platform-layout key (the agent id is in the key itself)."""
        if not isinstance(prompt, str):
            raise InvalidInput(f"prompt must be a string, got {type(prompt).__name__}")
        return canonical_key(prompt=prompt, model=model, params=params or {})

    def full_key(
        self, agent_id: str, prompt: str, *, model: str | None = None, params: dict[str, Any] | None = None
    ) -> str:
        """The Redis key of a response in this connection's layout."""
        digest = self.key(agent_id, prompt, model=model, params=params)  # validates both layouts alike
        if self.conn.platform:
            return f"{self.platform_prefix}{agent_id}:{self.task_hash(prompt, model=model, params=params)}"
        return self._key(digest)

    def get(self, agent_id: str, prompt: str, *, model: str | None = None, params: dict[str, Any] | None = None) -> Any:
        """The cached response (any JSON value) or ``None``."""
        raw = self._get_raw(self.full_key(agent_id, prompt, model=model, params=params))
        return None if raw is None else loads(raw)["response"]

    def set(
        self,
        agent_id: str,
        prompt: str,
        response: Any,
        *,
        model: str | None = None,
        params: dict[str, Any] | None = None,
        ttl: float | None = None,
    ) -> None:
        """Cache a response (JSON-able: a string, dict, list, ...)."""
        self.conn.check_writable("writing the response cache")
        text = dumps({"response": response})
        self._set_raw(self.full_key(agent_id, prompt, model=model, params=params), text, ttl)

    def lookup(self, agent_id: str, task_hash: str) -> Any:
        """The decoded JSON at ``agent_response:<agent_id>:<task_hash>`` as stored (e.g. an entry the
        platform wrote under its own hash), or ``None``; platform layout only, counts nothing."""
        if not self.conn.platform:
            raise InvalidInput("lookup by task hash needs redis_layout='platform'")
        key = f"{self.platform_prefix}{agent_id}:{task_hash}"
        return loads(self.conn.run(lambda r: r.get(key), "response cache lookup"))

    def __repr__(self) -> str:
        return f"<ResponseCache ttl={self.ttl}s {self.conn.display}>"


class MemoryCache:
    """One JSON memory entry per key, ``memory:<id>`` (platform layout) or ``<prefix>memory:<id>``, TTL 1 h.

    Kept in step with memory writes (set after remember/update, delete after forget). SQL is the truth, so a
    Redis outage does not fail the caller: the methods log one warning and return False / 0. A read-only
    connection raises :class:`ReadOnlyViolation` on set/delete.
    """

    def __init__(self, conn: RedisConnection, *, ttl: float = MEMORY_TTL) -> None:
        _check_ttl(ttl)
        self.conn = conn
        self.ttl = ttl

    def key(self, memory_id: str) -> str:
        if not isinstance(memory_id, str) or not memory_id:
            raise InvalidInput(f"memory_id must be a non-empty string, got {memory_id!r}")
        return "memory:" + memory_id if self.conn.platform else self.conn.key("memory", memory_id)

    def set(self, memory_id: str, entry: Mapping[str, Any]) -> bool:
        """Cache one memory entry (a memory_entries row as a dict); False if Redis is unavailable."""
        return self.set_many([entry], ids=[memory_id]) == 1

    def set_many(
        self, entries: Iterable[Mapping[str, Any]], *, ids: Iterable[str] | None = None, id_field: str = "id"
    ) -> int:
        """Cache many entries in one round trip (ids from ``ids`` or each entry's ``id_field``);
        returns how many were written (0 if Redis is unavailable)."""
        self.conn.check_writable("writing the memory cache")
        entries = list(entries)
        given: list[Any] = list(ids) if ids is not None else [e.get(id_field) for e in entries]  # checked by key()
        keys = [self.key(i) for i in given]
        if len(keys) != len(entries):
            raise InvalidInput("give one id per memory entry")
        texts = [dumps(dict(e)) for e in entries]
        ttl = expiry(max(1, int(self.ttl * 1000)))

        def _set(r: redis.Redis) -> int:
            pipe = r.pipeline(transaction=False)
            for k, text in zip(keys, texts):
                pipe.set(k, text, **ttl)
            pipe.execute()
            return len(keys)

        try:
            return self.conn.run(_set, "memory cache set") if keys else 0
        except StoreUnavailable as exc:
            log.warning("memory cache not updated (Redis unavailable; entries expire within %ss): %s", self.ttl, exc)
            return 0

    def get(self, memory_id: str) -> dict[str, Any] | None:
        """The cached entry or ``None`` (also when Redis is unavailable)."""
        key = self.key(memory_id)
        try:
            return loads(self.conn.run(lambda r: r.get(key), "memory cache get"))
        except StoreUnavailable as exc:
            log.warning("memory cache unavailable: %s", exc)
            return None

    def delete(self, *memory_ids: str) -> int:
        """Drop entries (after forget); returns how many existed (0 if Redis is unavailable)."""
        self.conn.check_writable("deleting from the memory cache")
        keys = [self.key(i) for i in memory_ids]
        if not keys:
            return 0
        try:
            return int(self.conn.run(lambda r: r.delete(*keys), "memory cache delete"))
        except StoreUnavailable as exc:
            log.warning(
                "memory cache entries %s not deleted (Redis unavailable; they expire within %ss): %s",
                ", ".join(memory_ids[:5]),
                self.ttl,
                exc,
            )
            return 0

    def __repr__(self) -> str:
        return f"<MemoryCache ttl={self.ttl}s {self.conn.display}>"


class Caches:
    """``lab.cache``: ``.search`` (:class:`SearchCache`), ``.responses`` (:class:`ResponseCache`),
    ``.memories`` (:class:`MemoryCache`), ``.stats()``."""

    def __init__(
        self,
        conn: RedisConnection,
        *,
        search_ttl: float = SEARCH_TTL,
        response_ttl: float = RESPONSE_TTL,
        memory_ttl: float = MEMORY_TTL,
    ) -> None:
        self.conn = conn
        self.search = SearchCache(conn, ttl=search_ttl)
        self.responses = ResponseCache(conn, ttl=response_ttl)
        self.memories = MemoryCache(conn, ttl=memory_ttl)

    def stats(self) -> pd.DataFrame:
        """Per cache: hits, misses, sets, hit_rate, keys (live entries), ttl_s."""
        rows = []
        for cache in (self.search, self.responses):
            c = cache.counters()
            lookups = c["hits"] + c["misses"]
            rows.append(
                {
                    "cache": cache.kind,
                    **c,
                    "hit_rate": c["hits"] / lookups if lookups else float("nan"),
                    "keys": cache.count_keys(),
                    "ttl_s": float(cache.ttl),
                }
            )
        frame = pd.DataFrame(rows, columns=["cache", "hits", "misses", "sets", "hit_rate", "keys", "ttl_s"])
        return frame.astype({"hits": "int64", "misses": "int64", "sets": "int64", "keys": "int64"})

    def clear(self) -> int:
        """Empty both caches and reset their counters."""
        return self.search.clear() + self.responses.clear()

    def __repr__(self) -> str:
        return f"<Caches {self.conn.display}>"
