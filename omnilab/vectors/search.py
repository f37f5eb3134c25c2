"""Reading side of the memory store: listing, exact (pre-filtered) search, hybrid search, result cache, access log.

:class:`MemorySearch` is a collaborator of :class:`omnilab.vectors.memory.MemoryStore`, which builds it and
delegates its reading methods to it; everything it uses comes in through its constructor. Hits carry
vector ids; frames carry the platform's string ids (``memory_id``). When the two databases differ, nothing
joins across them: ids are looked up in one and carried to the other.

Results of :meth:`MemorySearch.search` may be cached outside the process (the lab injects its Redis search
cache: this layer does not import sessions). An entry is keyed by the arguments, the embedder, the memory
write generation and the lab, so any memory write makes it unreachable, and it lives no longer than until
the first of its memories expires.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd
import sqlalchemy as sa

from omnilab import enums
from omnilab._checks import is_int, is_integral, is_number
from omnilab.errors import InvalidInput
from omnilab.sql.frames import read_frame, table_dtypes
from omnilab.sql.own_tables import memory_vectors
from omnilab.sql.schema import TABLES
from omnilab.sql.types import utcnow
from omnilab.vectors import hybrid
from omnilab.vectors.cache import EmbeddingCache
from omnilab.vectors.columns import RESULT_COLUMNS, MemoryColumns, now_micros, result_frame
from omnilab.vectors.embedders import Embedder, text_key
from omnilab.vectors.filters import check_filter, check_where, compile_where
from omnilab.vectors.index import Hit, VectorIndex
from omnilab.vectors.keys import chunks
from omnilab.vectors.masks import Unsupported, where_mask
from omnilab.vectors.pgvector import PgVectorIndex
from omnilab.vectors.sources import check_vector
from omnilab.vectors.thresholds import resolve_threshold

__all__ = [
    "MemorySearch",
    "ResultCache",
    "ResultCacheSlot",
    "ResultCacheProvider",
    "RESULT_COLUMNS",
    "check_k",
    "expired_clause",
]

log = logging.getLogger(__name__)

MEM = TABLES["memory_entries"]
MV = memory_vectors
ACCESS = TABLES["memory_access"]
_ROW_COLUMNS = RESULT_COLUMNS[3:-1]  # memory_type .. project_id: the memory_entries columns of a result
MEMORY_TYPES = enums.values(enums.MemoryType)
_UNIX_JULIAN = 2440587.5  # julianday('1970-01-01')
_QUERY_CACHE = 1024  # query texts whose vectors are kept in memory
_WHERE_CACHE = 512  # compiled filters kept in memory
_ACCESS_BATCH = 200  # access-log rows written at once

#: (vector id, fused score, cosine, keyword score)
Fused = tuple[int, float, float, float]


# ------------------------------------------------------------------------------------ result cache
class ResultCache(Protocol):
    """Where search results are cached: ``omnilab.sessions.cache.SearchCache`` (Redis) is one."""

    ttl: float

    def get(self, query: Any, **params: Any) -> pd.DataFrame | None:
        """The cached frame for a search, or None."""

    def set(self, query: Any, frame: pd.DataFrame, *, ttl: float | None = None, **params: Any) -> bool:
        """Cache a result frame (``ttl``: seconds, default the cache's own)."""


class ResultCacheSlot(NamedTuple):
    """A result cache to use for one search and the scope that keeps labs sharing it apart (the lab id)."""

    cache: ResultCache
    scope: str


#: ``cache`` argument of a search (None: the lab decides; True; False) -> the cache to use, or None for none.
#: A callable because the lab starts its Redis lazily: a search must not start it unless asked to.
ResultCacheProvider = Callable[[bool | None], ResultCacheSlot | None]


# ------------------------------------------------------------------------------------ arguments
def _flag(value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidInput(f"include_expired must be True or False, got {value!r}")
    return bool(value)


def check_k(k: Any) -> int:
    if not is_integral(k) or k < 1:
        raise InvalidInput(f"k must be a positive integer, got {k!r}")
    return int(k)


def _check_threshold(threshold: Any) -> None:
    if threshold is not None and (not is_number(threshold) or not -1 <= threshold <= 1):
        raise InvalidInput(f"threshold must be a cosine in [-1, 1], got {threshold!r}")


def _types(memory_type: Any) -> list[str] | None:
    """``memory_type`` (None, one type or several) as a list of type names; None means every type."""
    if memory_type is None:
        return None
    items = [memory_type] if isinstance(memory_type, (str, enums.MemoryType)) else list(memory_type)
    out = [getattr(t, "value", t) for t in items]
    bad = [t for t in out if t not in MEMORY_TYPES]
    if bad:
        raise InvalidInput(f"unknown memory type(s) {bad}; use {', '.join(MEMORY_TYPES)}")
    return out


# ---------------------------------------------------------------------------------------- expiry
def _expires_epoch(dialect: str) -> sa.ColumnElement[float]:
    """``expires_at`` as Unix seconds (NULL: never, or not a timestamp SQLite can read)."""
    if dialect == "sqlite":  # text, maybe in several formats: julianday reads them all
        return (sa.func.julianday(sa.type_coerce(MEM.c.expires_at, sa.Text)) - _UNIX_JULIAN) * 86400.0
    return sa.cast(sa.extract("epoch", MEM.c.expires_at), sa.Float)


def _unexpired(
    dialect: str, columns: frozenset[str], now: dt.datetime | sa.BindParameter[float]
) -> sa.ColumnElement[bool] | None:
    """SQL: the memory has not expired at ``now`` (a time, or a bind parameter of Unix seconds); None when
    memory_entries has no expires_at at all."""
    if "expires_at" not in columns:
        return None
    epoch = _expires_epoch(dialect)
    return sa.or_(epoch.is_(None), epoch > (now.timestamp() if isinstance(now, dt.datetime) else now))


def expired_clause(dialect: str, columns: frozenset[str], now: dt.datetime) -> sa.ColumnElement[bool] | None:
    """SQL: the memory has expired at ``now`` (``expires_at <= now``); None when memory_entries has no
    expires_at (nothing ever expires)."""
    if "expires_at" not in columns:
        return None
    return _expires_epoch(dialect) <= now.timestamp()


# ---------------------------------------------------------------------------------------- search
class MemorySearch:
    """Reads of a memory store. Thread-safe as the store is: index access holds ``lock``.

    ``engine``: the platform's tables (memory_entries, access log); ``own``: omnilab's (key rows, keyword
    index, thresholds); ``columns``: the memory_entries columns the platform's database has. ``embedder``,
    ``cache`` (embedding cache) and ``index`` are the store's vector side (swapped together by :meth:`use`).
    ``table``: the live memories' filter fields and result rows in memory (single-database FAISS labs; None:
    every filter and row lookup asks SQL). Hooks into the store: ``catch_up`` follows writes made by others
    (reconciles when memory_entries changed) and returns the write generation, ``refresh(generation)`` reloads an
    index another process saved, ``key_map`` maps memory ids to (vector id, type) on two-database labs,
    ``generation`` is the memory write generation (result cache keys). ``log_access`` records every result in
    memory_access (never when ``read_only``); ``result_cache`` provides the cache of :meth:`search` (None:
    results are never cached).
    """

    def __init__(
        self,
        *,
        engine: sa.Engine,
        own: sa.Engine,
        columns: frozenset[str],
        embedder: Embedder,
        cache: EmbeddingCache,
        index: VectorIndex,
        lock: threading.RLock,
        catch_up: Callable[[], int],
        refresh: Callable[[int], None],
        key_map: Callable[[], Mapping[str, tuple[int, str]]],
        generation: Callable[[], int],
        read_only: bool = False,
        log_access: bool = False,
        result_cache: ResultCacheProvider | None = None,
        table: MemoryColumns | None = None,
    ) -> None:
        self.engine = engine
        self.table = table
        self.own = own
        self.split = own is not engine
        self.dialect = engine.dialect.name
        self.columns = columns
        self.embedder = embedder
        self.cache = cache
        self.index = index
        self.read_only = read_only
        self.log_access = log_access
        self._lock = lock
        self._catch_up = catch_up
        self._refresh = refresh
        self._key_map = key_map
        self._generation = generation
        self._result_cache = result_cache
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._where_cache: OrderedDict[str, sa.ColumnElement[bool]] = OrderedDict()
        self._row_statements: dict[tuple[bool, bool], sa.Select] = {}
        self._access: list[dict[str, Any]] = []

    def use(self, embedder: Embedder, cache: EmbeddingCache, index: VectorIndex) -> None:
        """Search with another embedder, embedding cache and index (after a re-index)."""
        self.embedder, self.cache, self.index = embedder, cache, index
        self._query_cache.clear()

    # ----------------------------------------------------------------------------------- reading
    def memories(
        self,
        memory_type: str | Iterable[str] | None = None,
        *,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
        include_expired: bool = False,
        **filters: Any,
    ) -> pd.DataFrame:
        """Memories (memory_entries columns, platform names) newest first; keyword filters are column equality.

        Memories past their ``expires_at`` are left out unless ``include_expired``.
        """
        clause = compile_where({**dict(where or {}), **filters} or None, self.dialect, columns=self.columns)
        stmt = sa.select(*[c for c in MEM.columns if c.name in self.columns])
        types = _types(memory_type)
        if types is not None:
            stmt = stmt.where(MEM.c.memory_type.in_(types))
        if clause is not None:
            stmt = stmt.where(clause)
        live = None if _flag(include_expired) else _unexpired(self.dialect, self.columns, utcnow())
        if live is not None:
            stmt = stmt.where(live)
        stmt = stmt.order_by(MEM.c.created_at.desc(), MEM.c.id.desc())
        if limit is not None:
            if not is_int(limit) or limit < 0:
                raise InvalidInput(f"limit must be a non-negative integer, got {limit!r}")
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            frame = read_frame(conn, stmt, dtypes=table_dtypes(MEM))
        for col, empty in (("tags", list), ("metadata", dict)):  # platform rows may hold NULL
            frame[col] = pd.Series([empty() if v is None else v for v in frame[col]], dtype=object, index=frame.index)
        return frame

    def query_vector(self, query: Any) -> np.ndarray:
        """A text or vector query as a normalized (dim,) float32 vector."""
        if isinstance(query, str):
            text = self.embedder.preprocess(query)
            vec = self._query_cache.get(text)
            if vec is None:
                vec = self._embed_query(text)
                self._query_cache[text] = vec
                if len(self._query_cache) > _QUERY_CACHE:
                    self._query_cache.popitem(last=False)
            return vec
        if isinstance(query, (np.ndarray, list, tuple)):
            arr = np.asarray(query, dtype=np.float32)
            if arr.ndim == 2 and arr.shape[0] == 1:
                arr = arr[0]
            return check_vector(arr, self.embedder.dim, "query")
        raise InvalidInput(f"query must be text or a 1-d vector, not {type(query).__name__}")

    def _embed_query(self, text: str) -> np.ndarray:
        """The vector of a preprocessed query text: the embedding cache's when queries embed like documents."""
        if self.embedder.query_differs:
            return self.embedder.embed_one(text)
        key = text_key(text)
        vec = self.cache.get_many([key]).get(key)
        return self.embedder.embed([text])[0] if vec is None else vec

    def _compiled(self, where: Mapping[str, Any] | None) -> sa.ColumnElement[bool] | None:
        """compile_where, memoized: building the SQLAlchemy expression costs more than running it."""
        if not where:
            return compile_where(where, self.dialect)
        check_where(where)  # depth and size limits first: json.dumps below would recurse without bound
        try:
            key = json.dumps(where, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError):  # datetimes and the like: compile every time
            return compile_where(where, self.dialect, columns=self.columns)
        clause = self._where_cache.get(key)
        if clause is None:
            clause = compile_where(where, self.dialect, columns=self.columns)
            if clause is not None:
                self._where_cache[key] = clause
                if len(self._where_cache) > _WHERE_CACHE:
                    self._where_cache.popitem(last=False)
        return clause

    def _table_lock(self) -> contextlib.AbstractContextManager[Any]:
        """The store lock when rows come from the in-memory table (its positions move only under it)."""
        return self._lock if self.table is not None else contextlib.nullcontext()

    def _table_candidates(self, where: Mapping[str, Any], types: list[str] | None) -> dict[str, np.ndarray] | None:
        """memory type -> vector ids of the memories matching ``where`` (already checked), evaluated over the
        in-memory table (caller holds the lock); None when only SQL can answer it exactly."""
        table = self.table
        if table is None:
            return None
        try:
            mask = where_mask(where, table)
        except Unsupported as why:
            log.debug("filter answered by SQL: %s", why)
            return None
        return table.candidates(mask & table.alive[: table.n], types)

    def _candidates(
        self, clause: sa.ColumnElement[bool] | None, types: list[str] | None
    ) -> dict[str, np.ndarray] | None:
        """memory type -> vector ids of the memories matching the compiled filter (None: no filter), by SQL."""
        if clause is None:
            return None
        out: dict[str, list[int]] = {}
        if not self.split:
            stmt = (
                sa.select(MV.c.memory_type, MV.c.id).select_from(MEM.join(MV, MV.c.memory_id == MEM.c.id)).where(clause)
            )
            if types is not None:
                stmt = stmt.where(MV.c.memory_type.in_(types))
            with self.engine.connect() as conn:
                for t, i in conn.execute(stmt):
                    out.setdefault(t, []).append(i)
        else:  # matching string ids from the platform, mapped to vector ids here
            ids = sa.select(MEM.c.id).where(clause)
            if types is not None:
                ids = ids.where(MEM.c.memory_type.in_(types))
            keymap = self._key_map()
            with self.engine.connect() as conn:
                for mid in conn.execute(ids).scalars():
                    hit = keymap.get(mid)
                    if hit is not None:
                        out.setdefault(hit[1], []).append(hit[0])
        return {t: np.asarray(v, dtype=np.int64) for t, v in out.items()}

    def _scope(
        self, query: Any, memory_type: Any, where: Mapping[str, Any] | None, *, clause_needed: bool = True
    ) -> tuple[np.ndarray, list[str] | None, sa.ColumnElement[bool] | None, dict[str, np.ndarray] | None]:
        """What a search computes once: (query vector, types, compiled filter, candidate ids by type), with the
        index brought up to date (writes by others followed, a newer saved index loaded).

        With the in-memory table the filter is only checked, not compiled (compiling costs more than the whole
        search), unless ``clause_needed`` or SQL has to answer it; the clause is None then.
        """
        generation = self._catch_up()
        q = self.query_vector(query)
        types = _types(memory_type)
        if self.table is not None:
            check_filter(where, self.columns)
            with self._lock:
                self.table.follow(generation)
                cand = self._table_candidates(where, types) if where else None
            clause = self._compiled(where) if clause_needed or (where and cand is None) else None
            if where and cand is None:
                cand = self._candidates(clause, types)
        else:  # pgvector filters inside its own ranking query; FAISS needs the matching ids up front
            clause = self._compiled(where)
            cand = None if isinstance(self.index, PgVectorIndex) else self._candidates(clause, types)
        self._refresh(generation)
        return q, types, clause, cand

    # ------------------------------------------------------------------------------ exact search
    def search_hits(
        self,
        query: Any,
        *,
        memory_type: Any = None,
        k: int = 10,
        threshold: float | None = None,
        where: Mapping[str, Any] | None = None,
        include_expired: bool = False,
    ) -> list[Hit]:
        """Exact top-k (vector id, cosine, type) among memories matching ``where`` (filter before ranking)."""
        return self._ranked(
            query,
            memory_type=memory_type,
            k=k,
            threshold=threshold,
            where=where,
            include_expired=include_expired,
            full=False,
        )[0]

    def _ranked(
        self,
        query: Any,
        *,
        memory_type: Any,
        k: int,
        threshold: float | None,
        where: Mapping[str, Any] | None,
        include_expired: bool,
        full: bool,
    ) -> tuple[list[Hit], dict[int, Any]]:
        """The hits and (``full``) their rows: see :meth:`_live_hits`."""
        k = check_k(k)
        _check_threshold(threshold)
        include_expired = _flag(include_expired)
        q, types, clause, cand = self._scope(query, memory_type, where, clause_needed=False)
        hits, rows = self._live_hits(q, k, types, cand, clause, include_expired=include_expired, full=full)
        if threshold is not None:
            hits = [h for h in hits if h.score >= threshold]
        return hits, rows

    def _live_hits(
        self,
        q: np.ndarray,
        k: int,
        types: list[str] | None,
        cand: dict[str, np.ndarray] | None,
        clause: sa.ColumnElement[bool] | None,
        *,
        include_expired: bool,
        full: bool,
    ) -> tuple[list[Hit], dict[int, Any]]:
        """The k best hits whose memories exist and (unless ``include_expired``) have not expired.

        On pgvector the database ranks them in one statement (:meth:`_sql_hits`). With FAISS, the index may
        hold vectors whose rows are gone (another process deleted them and has not saved its index yet, or
        died first) or expired: such hits are skipped and the search is refilled from the index, fetching more
        (doubling) until k live hits are found or the index is exhausted. The result is therefore exactly the
        top k of the live memories, as if they had been filtered first.
        """
        now = utcnow()
        if isinstance(self.index, PgVectorIndex):
            return self._sql_hits(self.index, q, k, types, clause, include_expired=include_expired, now=now)
        rows: dict[int, Any] = {}
        checked: set[int] = set()
        fetch = k
        while True:
            with self._lock:
                hits = self.index.search(q, fetch, types=types, candidates=cand)
            new = [h.id for h in hits if h.id not in checked]
            rows.update(self._rows_for(new, include_expired=include_expired, now=now, full=full))
            checked.update(new)
            live = [h for h in hits if h.id in rows]
            if len(live) >= k or len(hits) < fetch:
                break
            fetch = max(2 * fetch, k + 2 * (len(hits) - len(live)))
        if len(checked) > len(rows):
            log.debug("search skipped %d vectors of deleted or expired memories", len(checked) - len(rows))
        return live[:k], rows

    def _sql_hits(
        self,
        index: PgVectorIndex,
        q: np.ndarray,
        k: int,
        types: list[str] | None,
        clause: sa.ColumnElement[bool] | None,
        *,
        include_expired: bool,
        now: dt.datetime,
    ) -> tuple[list[Hit], dict[int, Any]]:
        """pgvector: the k nearest live memories matching ``clause``, with the rows :meth:`_rows_for` would read."""
        expires = _expires_epoch(self.dialect) if "expires_at" in self.columns else sa.null()
        stmt = sa.select(MV.c.id, MEM.c.id, *(MEM.c[c] for c in _ROW_COLUMNS), expires).join(
            MEM, MV.c.memory_id == MEM.c.id
        )
        if clause is not None:
            stmt = stmt.where(clause)
        live = None if include_expired else _unexpired(self.dialect, self.columns, now)
        if live is not None:
            stmt = stmt.where(live)
        found = index.search_rows(stmt, q, k, types=types, filtered=clause is not None or live is not None)
        # columns: vector id, memory id, *_ROW_COLUMNS (memory_type first), expires, score
        hits = [Hit(int(r[0]), float(r[-1]), r[2]) for r in found]
        return hits, {int(r[0]): tuple(r[1:-1]) for r in found}

    def search(
        self,
        query: Any,
        *,
        memory_type: Any = None,
        k: int = 10,
        threshold: float | str | None = None,
        where: Mapping[str, Any] | None = None,
        cache: bool | None = False,
        include_expired: bool = False,
    ) -> pd.DataFrame:
        """Exact top-k memories as a frame (see :meth:`omnilab.Lab.search`).

        ``threshold="tuned"``: the threshold saved for ``memory_type`` and this embedder. ``cache``: None lets
        the result-cache provider decide, True/False always/never (with no provider: never); the store's
        default is False. ``frame.attrs["cache"]`` is "hit", "miss" or "off"; ``frame.attrs["valid_for"]``:
        seconds until the first result expires (None: none expires), after which a cached copy is stale.
        """
        if where:  # limits first: the cache key below serializes the filter
            check_where(where)
        value = resolve_threshold(self.own, threshold, memory_type, embedder=self.embedder.name)
        if cache is not None and cache not in (True, False):
            raise InvalidInput(f"cache must be True, False or None, got {cache!r}")
        slot = None if self._result_cache is None else self._result_cache(cache)
        if slot is None:
            frame = self._search_frame(query, memory_type, k, value, where, include_expired)
            frame.attrs["cache"] = "off"
            return frame
        key = {
            "memory_type": memory_type,
            "k": k,
            "threshold": value,
            "where": where,
            "embedder": self.embedder.name,
            "generation": self._generation(),
            "include_expired": include_expired,
            "lab": slot.scope,
        }  # platform-layout entries share one unprefixed key space
        hit = slot.cache.get(query, **key)
        if hit is not None:
            hit.attrs["cache"] = "hit"
            return hit
        frame = self._search_frame(query, memory_type, k, value, where, include_expired)
        valid_for = frame.attrs.get("valid_for")  # cached no longer than until its first result expires
        if valid_for is None:
            slot.cache.set(query, frame, **key)
        elif valid_for > 0:
            slot.cache.set(query, frame, ttl=min(valid_for, slot.cache.ttl), **key)
        frame.attrs["cache"] = "miss"
        return frame

    def _search_frame(
        self,
        query: Any,
        memory_type: Any,
        k: int,
        threshold: float | None,
        where: Mapping[str, Any] | None,
        include_expired: bool,
    ) -> pd.DataFrame:
        if self.table is not None and isinstance(query, str):  # held rows' positions are valid under the lock
            self.query_vector(query)  # so the text is embedded before taking it (and cached)
        with self._table_lock():
            hits, rows = self._ranked(
                query,
                memory_type=memory_type,
                k=k,
                threshold=threshold,
                where=where,
                include_expired=include_expired,
                full=True,
            )
            frame = self._frame([h.id for h in hits], [h.score for h in hits], rows)
        self._log_reads(frame, query)
        return frame

    # ----------------------------------------------------------------------------- hybrid search
    def hybrid_search(
        self,
        query: str,
        *,
        memory_type: Any = None,
        k: int = 10,
        where: Mapping[str, Any] | None = None,
        fusion: str | None = None,
        weight: float | None = None,
        pool: int | None = None,
        include_expired: bool = False,
    ) -> pd.DataFrame:
        """Keyword (BM25) and vector search fused; ``score`` is the fused score, plus both parts."""
        fused = self._hybrid_fused(
            query,
            memory_type=memory_type,
            k=k,
            where=where,
            fusion=fusion,
            weight=weight,
            pool=pool,
            include_expired=include_expired,
        )
        # Both pools hold live memories only; a memory deleted since then is skipped and the next one taken.
        k = check_k(k)
        now = utcnow()
        rows: dict[int, Any] = {}
        taken: list[Fused] = []
        with self._table_lock():
            for start in range(0, len(fused), k):
                part = fused[start : start + k]
                rows.update(self._rows_for([h[0] for h in part], include_expired=_flag(include_expired), now=now))
                taken += [h for h in part if h[0] in rows][: k - len(taken)]
                if len(taken) >= k:
                    break
            frame = self._frame([h[0] for h in taken], [h[1] for h in taken], rows)
        frame.insert(2, "vector_score", np.array([h[2] for h in taken], dtype=np.float64))
        frame.insert(3, "keyword_score", np.array([h[3] for h in taken], dtype=np.float64))
        self._log_reads(frame, query)
        return frame

    def hybrid_hits(
        self,
        query: str,
        *,
        memory_type: Any = None,
        k: int = 10,
        where: Mapping[str, Any] | None = None,
        fusion: str | None = None,
        weight: float | None = None,
        pool: int | None = None,
        include_expired: bool = False,
    ) -> list[Fused]:
        """Fused (id, score, cosine, keyword score) best first."""
        return self._hybrid_fused(
            query,
            memory_type=memory_type,
            k=k,
            where=where,
            fusion=fusion,
            weight=weight,
            pool=pool,
            include_expired=include_expired,
        )[: check_k(k)]

    def _hybrid_fused(
        self,
        query: str,
        *,
        memory_type: Any,
        k: int,
        where: Mapping[str, Any] | None,
        fusion: str | None,
        weight: float | None,
        pool: int | None,
        include_expired: bool,
    ) -> list[Fused]:
        """Every fused candidate (id, score, cosine, keyword score), best first."""
        k = check_k(k)
        fusion = fusion or hybrid.DEFAULT_FUSION
        weight = hybrid.default_weight(_types(memory_type)) if weight is None else weight  # per memory type
        if not is_number(weight) or not 0 <= weight <= 1:
            raise InvalidInput(f"weight must be in [0, 1], got {weight!r}")
        if fusion not in hybrid.FUSIONS:
            raise InvalidInput(f"fusion must be one of {hybrid.FUSIONS}, got {fusion!r}")
        vec, kw = self.hybrid_pools(
            query,
            memory_type=memory_type,
            where=where,
            pool=max(50, 5 * k) if pool is None else pool,
            include_expired=include_expired,
        )
        fused = hybrid.fuse(vec, kw, method=fusion, weight=float(weight))
        return [(i, s, vec[i], kw.get(i, 0.0)) for i, s in fused]

    def hybrid_pools(
        self,
        query: str,
        *,
        memory_type: Any = None,
        where: Mapping[str, Any] | None = None,
        pool: int = 50,
        include_expired: bool = False,
    ) -> tuple[dict[int, float], dict[int, float]]:
        """Both candidate pools with full information: (cosine by id, keyword score by id) over their union.

        The top ``pool`` of each side (``where`` and expiry applied before ranking on both; memories whose
        rows are gone never count); every candidate gets its exact cosine, and its keyword score when it
        matches the query at all. Freshness, the query vector, the types and the filter are computed once.
        """
        if not isinstance(query, str):
            raise InvalidInput("hybrid_search needs a text query")
        pool = check_k(pool)
        include_expired = _flag(include_expired)
        q, types, clause, cand = self._scope(query, memory_type, where)
        hits, _ = self._live_hits(q, pool, types, cand, clause, include_expired=include_expired, full=False)
        vec = {h.id: h.score for h in hits}
        allowed = None
        if self.split and clause is not None:  # the filter runs in the platform's database
            allowed = {int(i) for ids in (cand or {}).values() for i in ids}
            clause = None
        with self.own.connect() as conn:
            kw = self._keyword_pool(conn, query, pool, clause, types, allowed, include_expired)
            extra_kw = [i for i in vec if i not in kw]
            if extra_kw and kw:  # vec ids are live already
                kw.update(
                    hybrid.keyword_search(
                        conn, query, limit=len(extra_kw), where=clause, types=types, ids=extra_kw, allowed=allowed
                    )
                )
        only_kw = [i for i in kw if i not in vec]
        if only_kw:
            with self._lock:
                found, mat = self.index.vectors(only_kw)
            vec.update(zip(found.tolist(), (mat @ q).tolist()))
            kw = {i: s for i, s in kw.items() if i in vec}  # not indexed yet: cannot be scored fairly
        return vec, kw

    def _keyword_pool(
        self,
        conn: sa.Connection,
        query: str,
        pool: int,
        clause: sa.ColumnElement[bool] | None,
        types: list[str] | None,
        allowed: set[int] | None,
        include_expired: bool,
    ) -> dict[int, float]:
        """The best ``pool`` keyword matches among live memories, refilled (doubling) past deleted/expired ones."""
        now = utcnow()
        live: set[int] = set()
        checked: set[int] = set()
        limit = pool
        while True:
            kw = hybrid.keyword_search(conn, query, limit=limit, where=clause, types=types, allowed=allowed)
            new = [i for i in kw if i not in checked]
            live.update(self._rows_for(new, include_expired=include_expired, now=now, full=False))
            checked.update(new)
            out = {i: s for i, s in kw.items() if i in live}
            if len(out) >= pool or len(kw) < limit:
                return dict(list(out.items())[:pool])
            limit = max(2 * limit, pool + 2 * (len(kw) - len(out)))

    # ------------------------------------------------------------------------------------- rows
    def _rows_for(
        self, ids: list[int], *, include_expired: bool = False, now: dt.datetime | None = None, full: bool = True
    ) -> dict[int, Any]:
        """vector id -> (memory_id, *_ROW_COLUMNS, expires_at as Unix seconds) of the memories that exist and
        (unless ``include_expired``) have not expired at ``now``; ``full=False``: the ids only (empty tuples).
        With the in-memory table: vector id -> the row's position there (valid while the lock is held)."""
        if not ids:
            return {}
        if self.table is not None:
            table, now_us = self.table, now_micros(now or utcnow())
            with self._lock:  # positions move when the table is compacted (under the lock)
                found = {i: table.position(i, include_expired=include_expired, now_us=now_us) for i in ids}
            return {i: p for i, p in found.items() if p is not None}
        stmt = self._row_statement(full, not include_expired)
        params = {} if include_expired else {"now_ts": (now or utcnow()).timestamp()}
        out: dict[int, Any] = {}
        for part in chunks(ids):
            if not self.split:
                with self.engine.connect() as conn:
                    out.update({r[0]: tuple(r[1:]) for r in conn.execute(stmt, {**params, "ids": part})})
                continue
            with self.own.connect() as conn:
                mids = dict(conn.execute(sa.select(MV.c.memory_id, MV.c.id).where(MV.c.id.in_(part))).all())
            with self.engine.connect() as conn:
                out.update(
                    {mids[r[0]]: tuple(r) if full else () for r in conn.execute(stmt, {**params, "ids": list(mids)})}
                )
        return out

    def _row_statement(self, full: bool, live: bool) -> sa.Select:
        """The row lookup of :meth:`_rows_for`, built once (building it costs more than running it).

        Parameters: ``ids`` (vector ids; memory ids when the databases are split) and ``now_ts``.
        """
        stmt = self._row_statements.get((full, live))
        if stmt is not None:
            return stmt
        expires = _expires_epoch(self.dialect) if "expires_at" in self.columns else sa.null()
        cols = [*(MEM.c[c] for c in _ROW_COLUMNS), expires] if full else []
        ids: sa.BindParameter[Any] = sa.bindparam("ids", expanding=True)
        if not self.split:
            stmt = sa.select(MV.c.id, MEM.c.id, *cols) if full else sa.select(MV.c.id)
            stmt = stmt.join(MEM, MV.c.memory_id == MEM.c.id).where(MV.c.id.in_(ids))
        else:
            stmt = sa.select(MEM.c.id, *cols).where(MEM.c.id.in_(ids))
        clause = _unexpired(self.dialect, self.columns, sa.bindparam("now_ts", type_=sa.Float)) if live else None
        if clause is not None:
            stmt = stmt.where(clause)
        self._row_statements[(full, live)] = stmt
        return stmt

    def _frame(self, ids: list[int], scores: list[float], found: Mapping[int, Any]) -> pd.DataFrame:
        """Result rows in rank order from the rows ``_rows_for`` read (lean: this is on every search's path)."""
        keep = [(i, s) for i, s in zip(ids, scores) if i in found]
        if self.table is not None:
            return result_frame(self.table, [found[i] for i, _ in keep], [s for _, s in keep])
        recs = [found[i] for i, _ in keep]
        data: dict[str, Any] = {
            "rank": np.arange(1, len(keep) + 1, dtype=np.int64),
            "score": np.array([s for _, s in keep], dtype=np.float64),
        }
        # Typed arrays up front: per-column astype after construction costs more than the search.
        for j, c in enumerate(["memory_id", *_ROW_COLUMNS]):
            vals = [r[j] for r in recs]
            if c == "priority":
                data[c] = pd.array(vals, dtype="Int64")
            elif c == "created_at":
                data[c] = pd.DatetimeIndex(pd.to_datetime(vals, utc=True)).as_unit("us").array
            else:
                if c in ("tags", "metadata"):  # platform rows may hold NULL
                    vals = [([] if c == "tags" else {}) if v is None else v for v in vals]
                arr = np.empty(len(vals), dtype=object)
                for i, v in enumerate(vals):
                    arr[i] = v
                data[c] = pd.Series(arr, dtype=object, copy=False)  # as lab.memories(): no str inference
        data["vector_id"] = pd.array([i for i, _ in keep], dtype="Int64")
        frame = pd.DataFrame(data, copy=False)
        ends = [r[-1] for r in recs if r[-1] is not None]
        frame.attrs["valid_for"] = min(ends) - utcnow().timestamp() if ends else None
        return frame

    # ------------------------------------------------------------------------------ access log
    def _log_reads(self, frame: pd.DataFrame, query: Any) -> None:
        if not self.log_access or frame.empty:
            return
        now = utcnow()
        qtext = query if isinstance(query, str) else None
        self._access.extend(
            {"memory_id": m, "access_type": "read", "query": qtext, "score": float(s), "timestamp": now}
            for m, s in zip(frame["memory_id"], frame["score"])
        )
        if len(self._access) >= _ACCESS_BATCH:
            self.flush_access()

    def flush_access(self) -> None:
        """Write the buffered access-log rows (memory_access, access counts) of memories that still exist."""
        rows, self._access = self._access, []
        if not rows or self.read_only:
            return
        try:
            with self.engine.begin() as conn:
                live = set(
                    conn.execute(sa.select(MEM.c.id).where(MEM.c.id.in_({r["memory_id"] for r in rows}))).scalars()
                )
                rows = [r for r in rows if r["memory_id"] in live]
                if rows:
                    conn.execute(sa.insert(ACCESS), rows)
                    for mid in {r["memory_id"] for r in rows} if "access_count" in self.columns else ():
                        n = sum(1 for r in rows if r["memory_id"] == mid)
                        conn.execute(
                            sa.update(MEM)
                            .where(MEM.c.id == mid)
                            .values(
                                access_count=sa.func.coalesce(MEM.c.access_count, 0) + n,
                                last_accessed=rows[-1]["timestamp"],
                            )
                        )
        except sa.exc.SQLAlchemyError as exc:  # access logging must never break a search
            log.warning("could not write memory_access rows: %s", exc)
