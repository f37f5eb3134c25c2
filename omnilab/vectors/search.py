"""Reading side of the memory store: listing, exact (pre-filtered) search, hybrid search, access log, links.

A mixin of :class:`omnilab.vectors.memory.MemoryStore` (split out to keep modules small); it relies on the
store's ``engine`` (platform tables), ``own`` (key rows, keyword index), ``embedder``, ``cache``, ``index``
and locks. Hits carry vector ids; frames carry the platform's string ids (``memory_id``). When the two
databases differ, nothing joins across them: ids are looked up in one and carried to the other.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from omnilab import enums
from omnilab.errors import InvalidInput, NotFound
from omnilab.sql.frames import read_frame, table_dtypes
from omnilab.sql.schema import TABLES
from omnilab.sql.types import utcnow
from omnilab.vectors import hybrid
from omnilab.vectors.filters import check_where, compile_where
from omnilab.vectors.index import Hit
from omnilab.vectors.models import memory_vectors
from omnilab.vectors.sources import check_vector

__all__ = ["SearchMixin", "RESULT_COLUMNS", "check_k"]

log = logging.getLogger(__name__)

MEM = TABLES["memory_entries"]
MV = memory_vectors
REL = TABLES["memory_relationships"]
ACCESS = TABLES["memory_access"]
RESULT_COLUMNS = ["rank", "score", "memory_id", "memory_type", "content", "agent_id", "priority", "tags",
                  "metadata", "created_at", "session_id", "project_id", "vector_id"]
_ROW_COLUMNS = ["memory_type", "content", "agent_id", "priority", "tags", "metadata", "created_at", "session_id",
                "project_id"]
MEMORY_TYPES = enums.values(enums.MemoryType)
_UNIX_JULIAN = 2440587.5  # julianday('1970-01-01')


def _flag(value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidInput(f"include_expired must be True or False, got {value!r}")
    return bool(value)


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInput(f"k must be a positive integer, got {k!r}")
    return int(k)


class SearchMixin:
    """Read helpers of MemoryStore."""

    engine: sa.Engine
    own: sa.Engine
    split: bool
    dialect: str
    columns: frozenset[str]  # memory_entries columns the platform's database has

    # ----------------------------------------------------------------------------------- reading
    def memories(self, memory_type: str | Iterable[str] | None = None, *, where: Mapping[str, Any] | None = None,
                 limit: int | None = None, include_expired: bool = False, **filters: Any) -> pd.DataFrame:
        """Memories (memory_entries columns, platform names) newest first; keyword filters are column equality.

        Memories past their ``expires_at`` are left out unless ``include_expired``.
        """
        clause = compile_where({**dict(where or {}), **filters} or None, self.dialect, columns=self.columns)
        stmt = sa.select(*[c for c in MEM.columns if c.name in self.columns])
        types = self._types(memory_type)
        if types is not None:
            stmt = stmt.where(MEM.c.memory_type.in_(types))
        if clause is not None:
            stmt = stmt.where(clause)
        live = None if _flag(include_expired) else self._unexpired(utcnow())
        if live is not None:
            stmt = stmt.where(live)
        stmt = stmt.order_by(MEM.c.created_at.desc(), MEM.c.id.desc())
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise InvalidInput(f"limit must be a non-negative integer, got {limit!r}")
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            frame = read_frame(conn, stmt, dtypes=table_dtypes(MEM))
        for col, empty in (("tags", list), ("metadata", dict)):  # platform rows may hold NULL
            frame[col] = pd.Series([empty() if v is None else v for v in frame[col]], dtype=object,
                                   index=frame.index)
        return frame

    @staticmethod
    def _types(memory_type: Any) -> list[str] | None:
        if memory_type is None:
            return None
        items = [memory_type] if isinstance(memory_type, (str, enums.MemoryType)) else list(memory_type)
        out = [getattr(t, "value", t) for t in items]
        bad = [t for t in out if t not in MEMORY_TYPES]
        if bad:
            raise InvalidInput(f"unknown memory type(s) {bad}; use {', '.join(MEMORY_TYPES)}")
        return out

    # ------------------------------------------------------------------------------------ expiry
    def _expires_epoch(self) -> sa.ColumnElement:
        """``expires_at`` as Unix seconds (NULL: never, or not a timestamp SQLite can read)."""
        if self.engine.dialect.name == "sqlite":  # text, maybe in several formats: julianday reads them all
            return (sa.func.julianday(sa.type_coerce(MEM.c.expires_at, sa.Text)) - _UNIX_JULIAN) * 86400.0
        return sa.cast(sa.extract("epoch", MEM.c.expires_at), sa.Float)

    def _unexpired(self, now: dt.datetime | sa.BindParameter) -> sa.ColumnElement | None:
        """SQL: the memory has not expired at ``now`` (a time, or a bind parameter of Unix seconds); None when
        memory_entries has no expires_at at all."""
        if "expires_at" not in self.columns:
            return None
        epoch = self._expires_epoch()
        return sa.or_(epoch.is_(None), epoch > (now.timestamp() if isinstance(now, dt.datetime) else now))

    def _expired(self, now: dt.datetime) -> sa.ColumnElement | None:
        """SQL: the memory has expired at ``now`` (``expires_at <= now``)."""
        if "expires_at" not in self.columns:
            return None
        return self._expires_epoch() <= now.timestamp()

    def query_vector(self, query: Any) -> np.ndarray:
        """A text or vector query as a normalized (dim,) float32 vector."""
        if isinstance(query, str):
            text = self.embedder.preprocess(query)
            vec = self._query_cache.get(text)
            if vec is None:
                from omnilab.vectors.embedders import text_key

                if self.embedder.query_differs:
                    vec = self.embedder.embed_one(text)
                else:
                    vec = self.cache.get_many([text_key(text)]).get(text_key(text))
                    if vec is None:
                        vec = self.embedder.embed([text])[0]
                self._query_cache[text] = vec
                if len(self._query_cache) > 1024:
                    self._query_cache.popitem(last=False)
            return vec
        if isinstance(query, (np.ndarray, list, tuple)):
            arr = np.asarray(query, dtype=np.float32)
            if arr.ndim == 2 and arr.shape[0] == 1:
                arr = arr[0]
            return check_vector(arr, self.embedder.dim, "query")
        raise InvalidInput(f"query must be text or a 1-d vector, not {type(query).__name__}")

    def _compiled(self, where: Mapping[str, Any] | None) -> sa.ColumnElement | None:
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
            self._where_cache[key] = clause
            if len(self._where_cache) > 512:
                self._where_cache.popitem(last=False)
        return clause

    def _candidates(self, where: Mapping[str, Any] | None, types: list[str] | None) -> dict[str, np.ndarray] | None:
        """memory type -> vector ids of the memories matching ``where`` (None: no filter)."""
        clause = self._compiled(where)
        if clause is None:
            return None
        out: dict[str, list[int]] = {}
        if not self.split:
            stmt = (sa.select(MV.c.memory_type, MV.c.id).select_from(MEM.join(MV, MV.c.memory_id == MEM.c.id))
                    .where(clause))
            if types is not None:
                stmt = stmt.where(MV.c.memory_type.in_(types))
            with self.engine.connect() as conn:
                for t, i in conn.execute(stmt):
                    out.setdefault(t, []).append(i)
        else:  # matching string ids from the platform, mapped to vector ids here
            stmt = sa.select(MEM.c.id).where(clause)
            if types is not None:
                stmt = stmt.where(MEM.c.memory_type.in_(types))
            keymap = self._key_map()
            with self.engine.connect() as conn:
                for (mid,) in conn.execute(stmt):
                    hit = keymap.get(mid)
                    if hit is not None:
                        out.setdefault(hit[1], []).append(hit[0])
        return {t: np.asarray(v, dtype=np.int64) for t, v in out.items()}

    def search_hits(self, query: Any, *, memory_type: Any = None, k: int = 10, threshold: float | None = None,
                    where: Mapping[str, Any] | None = None, include_expired: bool = False) -> list[Hit]:
        """Exact top-k (vector id, cosine, type) among memories matching ``where`` (filter before ranking)."""
        return self._search(query, memory_type=memory_type, k=k, threshold=threshold, where=where,
                            include_expired=include_expired, full=False)[0]

    def _search(self, query: Any, *, memory_type: Any = None, k: int = 10, threshold: float | None = None,
                where: Mapping[str, Any] | None = None, include_expired: bool = False, full: bool = False
                ) -> tuple[list[Hit], dict[int, tuple]]:
        """The hits and (``full``) their rows: see :meth:`_live_hits`."""
        k = check_k(k)
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not -1 <= threshold <= 1:
                raise InvalidInput(f"threshold must be a cosine in [-1, 1], got {threshold!r}")
        include_expired = _flag(include_expired)
        self._check_platform()
        q = self.query_vector(query)
        types = self._types(memory_type)
        cand = self._candidates(where, types)
        self.refresh()
        hits, rows = self._live_hits(q, k, types, cand, include_expired=include_expired, full=full)
        if threshold is not None:
            hits = [h for h in hits if h.score >= threshold]
        return hits, rows

    def _live_hits(self, q: np.ndarray, k: int, types: list[str] | None, cand: dict[str, np.ndarray] | None, *,
                   include_expired: bool, full: bool) -> tuple[list[Hit], dict[int, tuple]]:
        """The k best hits whose memories exist and (unless ``include_expired``) have not expired.

        The index may hold vectors whose rows are gone (another process deleted them and has not saved its
        index yet, or died first) or expired: such hits are skipped and the search is refilled from the
        index, fetching more (doubling) until k live hits are found or the index is exhausted. The result
        is therefore exactly the top k of the live memories, as if they had been filtered first.
        """
        now = utcnow()
        rows: dict[int, tuple] = {}
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

    def search(self, query: Any, *, include_expired: bool = False, **kw: Any) -> pd.DataFrame:
        """Exact top-k memories as a frame (see :meth:`omnilab.Lab.search`).

        ``frame.attrs["valid_for"]``: seconds until the first result expires (None: none expires), after
        which a cached copy of this result is stale.
        """
        hits, rows = self._search(query, include_expired=include_expired, full=True, **kw)
        frame = self._frame([h.id for h in hits], [h.score for h in hits], rows)
        self._log_reads(frame, query)
        return frame

    def hybrid_search(self, query: str, *, memory_type: Any = None, k: int = 10,
                      where: Mapping[str, Any] | None = None, fusion: str | None = None,
                      weight: float | None = None, pool: int | None = None,
                      include_expired: bool = False) -> pd.DataFrame:
        """Keyword (BM25) and vector search fused; ``score`` is the fused score, plus both parts."""
        fused = self._hybrid_fused(query, memory_type=memory_type, k=k, where=where, fusion=fusion, weight=weight,
                                   pool=pool, include_expired=include_expired)
        # Both pools hold live memories only; a memory deleted since then is skipped and the next one taken.
        k = check_k(k)
        now = utcnow()
        rows: dict[int, tuple] = {}
        taken: list[tuple[int, float, float, float]] = []
        for start in range(0, len(fused), k):
            part = fused[start:start + k]
            rows.update(self._rows_for([h[0] for h in part], include_expired=_flag(include_expired), now=now))
            taken += [h for h in part if h[0] in rows][:k - len(taken)]
            if len(taken) >= k:
                break
        frame = self._frame([h[0] for h in taken], [h[1] for h in taken], rows)
        frame.insert(2, "vector_score", np.array([h[2] for h in taken], dtype=np.float64))
        frame.insert(3, "keyword_score", np.array([h[3] for h in taken], dtype=np.float64))
        self._log_reads(frame, query)
        return frame

    def hybrid_hits(self, query: str, *, memory_type: Any = None, k: int = 10,
                    where: Mapping[str, Any] | None = None, fusion: str | None = None,
                    weight: float | None = None, pool: int | None = None,
                    include_expired: bool = False) -> list[tuple[int, float, float, float]]:
        """Fused (id, score, cosine, keyword score) best first."""
        return self._hybrid_fused(query, memory_type=memory_type, k=k, where=where, fusion=fusion, weight=weight,
                                  pool=pool, include_expired=include_expired)[:check_k(k)]

    def _hybrid_fused(self, query: str, *, memory_type: Any, k: int, where: Mapping[str, Any] | None,
                      fusion: str | None, weight: float | None, pool: int | None,
                      include_expired: bool) -> list[tuple[int, float, float, float]]:
        """Every fused candidate (id, score, cosine, keyword score), best first."""
        k = check_k(k)
        fusion = fusion or hybrid.DEFAULT_FUSION
        weight = hybrid.DEFAULT_WEIGHT if weight is None else weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
            raise InvalidInput(f"weight must be in [0, 1], got {weight!r}")
        if fusion not in hybrid.FUSIONS:
            raise InvalidInput(f"fusion must be one of {hybrid.FUSIONS}, got {fusion!r}")
        vec, kw = self.hybrid_pools(query, memory_type=memory_type, where=where,
                                    pool=max(50, 5 * k) if pool is None else pool, include_expired=include_expired)
        fused = hybrid.fuse(vec, kw, method=fusion, weight=float(weight))
        return [(i, s, vec[i], kw.get(i, 0.0)) for i, s in fused]

    def hybrid_pools(self, query: str, *, memory_type: Any = None, where: Mapping[str, Any] | None = None,
                     pool: int = 50, include_expired: bool = False) -> tuple[dict[int, float], dict[int, float]]:
        """Both candidate pools with full information: (cosine by id, keyword score by id) over their union.

        The top ``pool`` of each side (``where`` and expiry applied before ranking on both; memories whose
        rows are gone never count); every candidate gets its exact cosine, and its keyword score when it
        matches the query at all.
        """
        if not isinstance(query, str):
            raise InvalidInput("hybrid_search needs a text query")
        pool = check_k(pool)
        include_expired = _flag(include_expired)
        q = self.query_vector(query)
        types = self._types(memory_type)
        vec = {h.id: h.score for h in self.search_hits(q, memory_type=types, k=pool, where=where,
                                                       include_expired=include_expired)}
        clause = self._compiled(where)
        allowed = None
        if self.split and clause is not None:  # the filter runs in the platform's database
            cand = self._candidates(where, types) or {}
            allowed = {int(i) for ids in cand.values() for i in ids}
            clause = None
        with self.own.connect() as conn:
            kw = self._keyword_pool(conn, query, pool, clause, types, allowed, include_expired)
            extra_kw = [i for i in vec if i not in kw]
            if extra_kw and kw:  # vec ids are live already
                kw.update(hybrid.keyword_search(conn, query, limit=len(extra_kw), where=clause, types=types,
                                                ids=extra_kw, allowed=allowed))
        only_kw = [i for i in kw if i not in vec]
        if only_kw:
            with self._lock:
                found, mat = self.index.vectors(only_kw)
            vec.update(zip(found.tolist(), (mat @ q).tolist()))
            kw = {i: s for i, s in kw.items() if i in vec}  # not indexed yet: cannot be scored fairly
        return vec, kw

    def _keyword_pool(self, conn: sa.Connection, query: str, pool: int, clause: sa.ColumnElement | None,
                      types: list[str] | None, allowed: Any, include_expired: bool) -> dict[int, float]:
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

    def _rows_for(self, ids: list[int], *, include_expired: bool = False, now: dt.datetime | None = None,
                  full: bool = True) -> dict[int, tuple]:
        """vector id -> (memory_id, *_ROW_COLUMNS, expires_at as Unix seconds) of the memories that exist and
        (unless ``include_expired``) have not expired at ``now``; ``full=False``: the ids only (empty tuples)."""
        if not ids:
            return {}
        stmt = self._row_statement(full, not include_expired)
        params = {} if include_expired else {"now_ts": (now or utcnow()).timestamp()}
        out: dict[int, tuple] = {}
        for part in _chunks(ids, 500):
            if not self.split:
                with self.engine.connect() as conn:
                    out.update({r[0]: tuple(r[1:]) for r in conn.execute(stmt, {**params, "ids": part})})
                continue
            with self.own.connect() as conn:
                mids = dict(conn.execute(sa.select(MV.c.memory_id, MV.c.id).where(MV.c.id.in_(part))).all())
            with self.engine.connect() as conn:
                out.update({mids[r[0]]: tuple(r) if full else () for r in conn.execute(
                    stmt, {**params, "ids": list(mids)})})
        return out

    def _row_statement(self, full: bool, live: bool) -> sa.Select:
        """The row lookup of :meth:`_rows_for`, built once (building it costs more than running it).

        Parameters: ``ids`` (vector ids; memory ids when the databases are split) and ``now_ts``.
        """
        cache = self.__dict__.setdefault("_row_statements", {})
        stmt = cache.get((full, live))
        if stmt is not None:
            return stmt
        expires = self._expires_epoch() if "expires_at" in self.columns else sa.null()
        cols = [MEM.c[c] for c in _ROW_COLUMNS] + [expires] if full else []
        ids = sa.bindparam("ids", expanding=True)
        if not self.split:
            stmt = sa.select(MV.c.id, MEM.c.id, *cols) if full else sa.select(MV.c.id)
            stmt = stmt.join(MEM, MV.c.memory_id == MEM.c.id).where(MV.c.id.in_(ids))
        else:
            stmt = sa.select(MEM.c.id, *cols).where(MEM.c.id.in_(ids))
        clause = self._unexpired(sa.bindparam("now_ts", type_=sa.Float)) if live else None
        if clause is not None:
            stmt = stmt.where(clause)
        cache[(full, live)] = stmt
        return stmt

    def _frame(self, ids: list[int], scores: list[float], found: Mapping[int, tuple]) -> pd.DataFrame:
        """Result rows in rank order from the rows ``_rows_for`` read (lean: this is on every search's path)."""
        keep = [(i, s) for i, s in zip(ids, scores) if i in found]
        recs = [found[i] for i, _ in keep]
        data: dict[str, Any] = {"rank": np.arange(1, len(keep) + 1, dtype=np.int64),
                                "score": np.array([s for _, s in keep], dtype=np.float64)}
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
        self._access.extend({"memory_id": m, "access_type": "read", "query": qtext, "score": float(s),
                             "timestamp": now} for m, s in zip(frame["memory_id"], frame["score"]))
        if len(self._access) >= 200:
            self._flush_access()

    def _flush_access(self) -> None:
        rows, self._access = self._access, []
        if not rows or self.read_only:
            return
        try:
            with self.engine.begin() as conn:
                live = set(conn.execute(sa.select(MEM.c.id).where(MEM.c.id.in_({r["memory_id"] for r in rows})))
                           .scalars())
                rows = [r for r in rows if r["memory_id"] in live]
                if rows:
                    conn.execute(sa.insert(ACCESS), rows)
                    for mid in {r["memory_id"] for r in rows} if "access_count" in self.columns else ():
                        n = sum(1 for r in rows if r["memory_id"] == mid)
                        conn.execute(sa.update(MEM).where(MEM.c.id == mid).values(
                            access_count=sa.func.coalesce(MEM.c.access_count, 0) + n,
                            last_accessed=rows[-1]["timestamp"]))
        except sa.exc.SQLAlchemyError as exc:  # access logging must never break a search
            log.warning("could not write memory_access rows: %s", exc)

    # ----------------------------------------------------------------------------- relationships
    def _existing(self, conn: sa.Connection, memory_ids: list[str]) -> None:
        found = set(conn.execute(sa.select(MEM.c.id).where(MEM.c.id.in_(memory_ids))).scalars())
        missing = [m for m in memory_ids if m not in found]
        if missing:
            raise NotFound(f"no memory with id {missing[0]!r}")

    def relate(self, source: str, target: str, relationship_type: str = "related", strength: float = 1.0) -> None:
        """Link two memories (directed, unique per type); an existing link gets the new strength."""
        self._writable("relate()")
        if not isinstance(relationship_type, str) or not relationship_type.strip() or len(relationship_type) > 50:
            raise InvalidInput("relationship_type must be a non-empty string of at most 50 characters")
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not np.isfinite(strength):
            raise InvalidInput(f"strength must be a finite number, got {strength!r}")
        if source == target:
            raise InvalidInput("a memory cannot be related to itself")
        with self.engine.begin() as conn:
            self._existing(conn, [source, target])
            match = sa.and_(REL.c.source_memory_id == source, REL.c.target_memory_id == target,
                            REL.c.relationship_type == relationship_type)
            if conn.execute(sa.update(REL).where(match).values(strength=float(strength))).rowcount == 0:
                conn.execute(sa.insert(REL).values(source_memory_id=source, target_memory_id=target,
                                                   relationship_type=relationship_type, strength=float(strength),
                                                   created_at=utcnow()))

    def related(self, memory_id: str, relationship_type: str | None = None) -> pd.DataFrame:
        """Memories linked to ``memory_id`` either way: direction, relationship_type, strength and the memory."""
        with self.engine.connect() as conn:
            self._existing(conn, [memory_id])
            frames = []
            for direction, mine, other in (("out", REL.c.source_memory_id, REL.c.target_memory_id),
                                           ("in", REL.c.target_memory_id, REL.c.source_memory_id)):
                stmt = (sa.select(sa.literal(direction).label("direction"), REL.c.relationship_type,
                                  REL.c.strength, MEM.c.id.label("memory_id"), MEM.c.memory_type, MEM.c.content,
                                  MEM.c.agent_id, MEM.c.created_at)
                        .join(MEM, MEM.c.id == other).where(mine == memory_id))
                if relationship_type is not None:
                    stmt = stmt.where(REL.c.relationship_type == relationship_type)
                frames.append(read_frame(conn, stmt, dtypes={"created_at": "datetime64[us, UTC]"}))
        out = pd.concat(frames, ignore_index=True)
        return out.sort_values(["strength", "memory_id"], ascending=[False, True], kind="stable").reset_index(
            drop=True)
