"""MemoryStore: memories in SQL (the truth), their vectors in FAISS, keyword rows for hybrid search.

Two databases may be involved: ``engine`` holds the platform's tables (memory_entries, relationships,
access log), ``own_engine`` omnilab's (embedding cache, lab_meta, the key rows of ``memory_vectors``, the
SQLite keyword index); usually they are one. With one database, every write commits the memory rows, key
rows, cache entries, keyword rows and the write generation in one transaction, then updates the in-memory
index, which is saved atomically. On open and whenever another process has saved, the index reconciles
itself with SQL: missing vectors come from the embedding cache (re-embedding only what the cache lacks),
stale ones are dropped. A crash at any point loses no committed memory and leaves no corrupt index.

``read_only=True`` (a platform attached read-only) never writes ``engine``: writes raise
``ReadOnlyViolation``, and every read first follows what the platform changed (see ``omnilab.vectors.keys``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from omnilab.errors import ConfigError, InvalidInput, NotFound, OmnilabError, ReadOnlyViolation, StoreUnavailable
from omnilab.sql.bulk import bulk_insert
from omnilab.sql.own_tables import embedding_cache
from omnilab.sql.schema import TABLES
from omnilab.sql.types import utcnow
from omnilab.sql.validate import check_foreign_keys, validate_rows
from omnilab.vectors import hybrid, relations
from omnilab.vectors.cache import EmbeddingCache, embed_texts
from omnilab.vectors.changes import KEEP_SECONDS, ChangeLog
from omnilab.vectors.columns import MemoryColumns
from omnilab.vectors.embedders import Embedder, create_embedder, default_spec
from omnilab.vectors.index import Hit, VectorIndex
from omnilab.vectors.ingest import (
    Batch,
    BatchVectors,
    dedupe_batch,
    embed_batch,
    numbered,
    validate_batch,
    write_cache,
)
from omnilab.vectors.keys import MV, KeyRows, chunks, insert_keys, stored_content_hash
from omnilab.vectors.meta import ChangeOp, LabMeta, log_changes
from omnilab.vectors.pgvector import PgVectorIndex
from omnilab.vectors.search import RESULT_COLUMNS, Fused, MemorySearch, ResultCacheProvider, expired_clause
from omnilab.vectors.sources import iter_batches

__all__ = ["MemoryStore", "RESULT_COLUMNS"]

log = logging.getLogger(__name__)

MEM = TABLES["memory_entries"]
REL = TABLES["memory_relationships"]
ACCESS = TABLES["memory_access"]
_SAVE_SMALL = 20_000  # below this many vectors in the changed types, every write saves at once
_SAVE_EVERY = 5.0  # otherwise at most every few seconds (and always on close / after ingest)
_REFRESH_EVERY = 1.0  # seconds: how often a search looks for another process's index save with no commit seen


class MemoryStore:
    """Vector memory over one lab's databases and ``<lab>/vectors`` directory. Thread-safe.

    ``follow`` (default: on when read-only or when the two engines differ) makes every read check whether
    the platform changed memory_entries and catch up first. The store builds two collaborators and passes
    them what they use: :class:`~omnilab.vectors.keys.KeyRows` (``self.keys``: key rows, following
    memory_entries, reconciling the index) and :class:`~omnilab.vectors.search.MemorySearch` (``self.searcher``:
    every read). ``result_cache`` provides the cache of ``search(cache=...)`` (see
    :data:`omnilab.vectors.search.ResultCacheProvider`; without one, results are never cached).
    """

    def __init__(
        self,
        engine: sa.Engine,
        directory: str | Path,
        *,
        own_engine: sa.Engine | None = None,
        read_only: bool = False,
        embedder: str | Embedder | None = None,
        index: str = "flat",
        vector_backend: str = "faiss",
        reindex: bool = False,
        progress: bool = False,
        log_access: bool = False,
        follow: bool | None = None,
        result_cache: ResultCacheProvider | None = None,
    ) -> None:
        self.engine = engine
        self.own = own_engine if own_engine is not None else engine
        self.split = self.own is not engine
        self.dialect = engine.dialect.name
        self.read_only = bool(read_only)
        self.follow = (self.read_only or self.split) if follow is None else bool(follow)
        if self.split and self.own.dialect.name != "sqlite":
            raise ConfigError("omnilab's own tables live in the platform's PostgreSQL database or in a SQLite file")
        if self.read_only and log_access:
            raise ReadOnlyViolation(
                "this lab is attached read-only: log_access would write memory_access rows to the platform's database"
            )
        with engine.connect() as conn:  # a platform database lacks omnilab's added columns
            self.columns = frozenset(c["name"] for c in sa.inspect(conn).get_columns("memory_entries"))
        self.directory = Path(directory)
        self._lock = threading.RLock()
        self.log_access = log_access
        self._last_save = 0.0
        self._refreshed = (-1, 0.0)  # (write generation, monotonic time) of the search path's last refresh
        self.meta = LabMeta(self.own)
        recorded = self.meta.get("embedder")
        wanted = create_embedder(embedder) if embedder is not None else None
        if recorded is None:
            emb = wanted or create_embedder(default_spec())
            self.meta.set("embedder", {"name": emb.name, "spec": emb.spec, "dim": emb.dim}, only_if_new=True)
            recorded = self.meta.get("embedder")
            if recorded["name"] != emb.name:  # another process created the lab first with another one
                raise ConfigError(f"lab was just created with embedder {recorded['name']}, not {emb.name}")
        if wanted is not None and wanted.name != recorded["name"] and not reindex:
            raise ConfigError(
                f"this lab's memories are embedded with {recorded['name']} (dim {recorded['dim']}); "
                f"opening it with {wanted.name} needs omnilab.open(..., reindex=True) or lab.reindex('{wanted.spec}')"
            )
        self.embedder = (
            wanted if wanted is not None and wanted.name == recorded["name"] else create_embedder(recorded["spec"])
        )
        self.index_kind = index
        self.vector_backend = vector_backend
        self._open_index()
        self.keys = KeyRows(
            engine=engine,
            own=self.own,
            meta=self.meta,
            embedder=self.embedder,
            cache=self.cache,
            index=self.index,
            lock=self._lock,
            follow=self.follow,
            progress=progress,
            saved=self._mark_saved,
            maybe_save=self._maybe_save,
        )
        table = self._memory_table()
        self.changes = ChangeLog(
            own=self.own,
            meta=self.meta,
            keys=self.keys,
            lock=self._lock,
            listener=None if table is None else table.changes_read,
        )
        self.searcher = MemorySearch(
            engine=engine,
            own=self.own,
            columns=self.columns,
            embedder=self.embedder,
            cache=self.cache,
            index=self.index,
            lock=self._lock,
            catch_up=self._catch_up,
            refresh=self._refresh_for_search,
            key_map=self.keys.key_map,
            generation=self.sql_generation,
            read_only=self.read_only,
            log_access=log_access,
            result_cache=result_cache,
            table=table,
        )
        if wanted is not None and wanted.name != recorded["name"]:
            self.reindex(wanted, progress=progress)
        elif self.follow:
            self.keys.stale = True  # an attached platform is read (and embedded) on the first search, not on open
        else:
            self.reconcile(progress=progress, embed=False)

    def _memory_table(self) -> MemoryColumns | None:
        """The in-memory filter columns, where the change log covers every write: one database of omnilab's own
        (not an attached platform, whose writes are not logged), FAISS (pgvector filters in SQL)."""
        if self.follow or self.split or self.vector_backend != "faiss":
            return None
        if not {c.name for c in MEM.columns} <= self.columns:  # a database without omnilab's columns
            return None
        return MemoryColumns(self.engine)

    def _open_index(self) -> None:
        self.cache = EmbeddingCache(self.own, self.embedder.name, self.embedder.dim)
        self.index = self._new_index(self.embedder)
        with self.index.lock:
            try:
                if self.index.load():
                    self._mark_saved()  # what is on disk is what we hold
            except (ConfigError, OmnilabError) as exc:  # a derived file: rebuild it from SQL
                log.warning("rebuilding the vector index: %s", exc)
                self.index.generation = (
                    self.index.disk_generation() if self._manifest_readable() else self.index.file_generation()
                )
                self.index.clear()

    def _new_index(self, embedder: Embedder) -> VectorIndex:
        """FAISS files in the lab directory, or (``vector_backend="pgvector"``) the database's own column."""
        if self.vector_backend == "pgvector":
            if self.split or self.read_only:
                raise ConfigError("vector_backend='pgvector' needs the lab's own PostgreSQL database (not read_only)")
            return PgVectorIndex(
                self.own, self.directory, dim=embedder.dim, embedder=embedder.name, kind=self.index_kind
            )
        return VectorIndex(self.directory, dim=embedder.dim, embedder=embedder.name, kind=self.index_kind)

    def _manifest_readable(self) -> bool:
        try:
            self.index.disk_generation()
            return True
        except OmnilabError:
            return False

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyViolation(f"this lab is attached read-only: {what} would write to the platform's database")

    @contextlib.contextmanager
    def _write(self) -> Iterator[tuple[sa.Connection, sa.Connection]]:
        """(platform connection, own connection) in a transaction; one transaction when they are one database.

        With two databases omnilab's own commits first; a failure in between is repaired by the next sync.
        """
        if not self.split:
            with self.engine.begin() as conn:
                yield conn, conn
            return
        with self.engine.begin() as pconn, self.own.begin() as oconn:
            yield pconn, oconn

    # -------------------------------------------------------------------------------- generation
    def record_external_write(self, conn: sa.Connection) -> None:
        """Memory rows were written by other code in ``conn``'s transaction: bump the generation, index later."""
        self._writable("writing memory rows")
        if self.split:
            with self.own.begin() as oconn:
                log_changes(oconn, self.meta.bump(oconn), "resync")
        else:
            log_changes(conn, self.meta.bump(conn), "resync")
        self.keys.stale = True

    def sql_generation(self) -> int:
        """The memory write generation: changes with every memory write, the platform's included."""
        self.keys.check_platform()
        return self.changes.catch_up()

    def _catch_up(self) -> int:
        """Before a read: follow the platform (attached labs) and apply memory writes made by other labs;
        returns the write generation."""
        self.keys.check_platform()
        return self.changes.catch_up()

    def compact_changes(self, keep_seconds: float = KEEP_SECONDS) -> int:
        """Delete memory change-log rows older than ``keep_seconds`` (default a week); returns how many.

        Labs whose index is behind the deleted rows reconcile with SQL in full on their next search.
        """
        return self.changes.compact(keep_seconds)

    @property
    def generation(self) -> int:
        """Monotonic write generation as this process knows it (changes on every memory write)."""
        return max(self.meta.bumped, self.index.sql_generation)

    # -------------------------------------------------------------------------------- persistence
    def save(self, *, force: bool = False) -> None:
        """Write the index now (atomic); resolves concurrent writers by reloading and reconciling."""
        with self._lock, self.index.lock:
            for _attempt in range(5):
                if self.index.save(self.meta.generation(), force=force):
                    self._mark_saved()
                    return
                self.index.load()  # another process saved first: take theirs, then catch up with SQL
                self.keys.reconcile_locked(progress=False, save=False)
            raise OmnilabError("could not save the vector index: other writers keep changing it")

    def _mark_saved(self) -> None:
        self._last_save = time.monotonic()

    def _maybe_save(self) -> None:
        dirty_size = sum(self.index.types[t].count for t in self.index.dirty if t in self.index.types)
        if dirty_size <= _SAVE_SMALL or time.monotonic() - self._last_save >= _SAVE_EVERY:
            self.save()

    def refresh(self) -> None:
        """Reload if another process saved a newer index (a stat per call; cheap)."""
        if self.index.changed_on_disk():
            with self._lock, self.index.lock:
                had_unsaved = bool(self.index.dirty)
                self.index.load()
                if had_unsaved:
                    self.keys.reconcile_locked(progress=False, save=True)

    def _refresh_for_search(self, generation: int) -> None:
        """:meth:`refresh` on the search path: only when the write generation moved, or a second passed.

        Skipping the stat never makes a result stale: every write is followed through the change log (a newer
        saved index only saves that work). Another process saves its index after committing a change (its
        writes, a re-index), and the once-a-second look still picks up a save that lands after its commit.
        """
        now = time.monotonic()
        if generation == self._refreshed[0] and now - self._refreshed[1] < _REFRESH_EVERY:
            return
        self.refresh()
        self._refreshed = (generation, now)

    def close(self) -> None:
        with self._lock:
            self.searcher.flush_access()
            if self.index.dirty:
                self.save()
            try:
                self.changes.maybe_compact()
            except sa.exc.SQLAlchemyError as exc:  # housekeeping only: the next close tries again
                log.warning("could not compact the memory change log: %s", exc)
            self.keys.close()
            self.meta.close()

    # ----------------------------------------------------------------------------------- writing
    def remember(
        self,
        content: str,
        memory_type: str,
        *,
        priority: int = 5,
        agent_id: str | None = None,
        session_id: str | None = None,
        project_id: str | None = None,
        tags: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> str:
        """Store one memory and return its memory id (a uuid string unless ``id`` is given)."""
        self._writable("remember()")
        if isinstance(tags, str):
            raise InvalidInput("tags must be a list of strings, not one string")
        row = {
            "content": content,
            "memory_type": getattr(memory_type, "value", memory_type),
            "priority": int(getattr(priority, "value", priority)) if priority is not None else None,
            "agent_id": agent_id,
            "session_id": session_id,
            "project_id": project_id,
            "tags": list(tags),
            "metadata": dict(metadata or {}),
            **extra,
        }
        summary = self.ingest([row], progress=False, dedupe=False)
        if not summary["memory_ids"]:
            raise InvalidInput(f"a memory with id {row.get('id') or row.get('memory_id')!r} already exists")
        return summary["memory_ids"][0]

    def ingest(
        self,
        data: Any,
        *,
        memory_type: str | None = None,
        batch_size: int = 1000,
        progress: bool = True,
        dedupe: bool = True,
    ) -> dict[str, Any]:
        """Bulk-add memories; see :meth:`omnilab.Lab.ingest`. Returns a summary dict.

        Each batch is one transaction, so an ingest that fails part-way keeps the batches written before
        the failure and nothing of the failing batch. The exception says exactly what was written: its
        ``memory_ids`` attribute lists the ids committed by this call (``summary`` holds the counts so
        far). A lost database connection raises :class:`StoreUnavailable`; when the connection dies while
        a batch commits, the batch's ids are looked up on a fresh connection, so they are reported as
        written exactly when the commit went through; only if the database cannot be reached to check
        are they listed in ``unknown_ids`` instead. Rows, vectors and memory are streamed batch by batch.
        """
        from tqdm.auto import tqdm

        self._writable("ingest()")
        started = time.perf_counter()
        summary: dict[str, Any] = {
            "added": 0,
            "duplicates": 0,
            "embedded": 0,
            "cache_hits": 0,
            "precomputed": 0,
            "seconds": 0.0,
            "memory_ids": [],
        }
        total = len(data) if hasattr(data, "__len__") and not isinstance(data, (str, Path)) else None
        before = {t: ti.count for t, ti in self.index.types.items()}  # FAISS types (pgvector holds none)
        bar = tqdm(total=total, desc="ingest", unit="mem", disable=not progress)
        with self._lock:
            try:
                if self.follow:
                    self.keys.check_platform()  # dedupe against what the platform holds now
                for offset, batch in numbered(iter_batches(data, batch_size)):
                    self._ingest_batch(batch, offset, memory_type, dedupe, summary)
                    bar.update(len(batch))
            except OmnilabError as exc:  # what this call committed before the failure
                exc.memory_ids = list(summary["memory_ids"])  # type: ignore[attr-defined]
                exc.summary = summary  # type: ignore[attr-defined]
                raise
            finally:
                bar.close()
                grown = [
                    t for t, ti in self.index.types.items() if ti.count - before.get(t, 0) >= max(1000, ti.count // 10)
                ]
                self.index.compact(grown)  # bulk-added indexes scan faster as a fresh copy
                if self.index.dirty:
                    try:
                        self.save()
                    except (sa.exc.SQLAlchemyError, OmnilabError) as exc:  # derived: rebuilt on next open
                        log.warning("could not save the vector index after ingest: %s", exc)
        summary["seconds"] = round(time.perf_counter() - started, 3)
        return summary

    def _ingest_batch(
        self, batch: list[dict[str, Any]], offset: int, memory_type: str | None, dedupe: bool, summary: dict[str, Any]
    ) -> None:
        """One batch: validate -> dedupe -> embed -> write (one transaction) -> index; counts go to ``summary``."""
        pending: list[str] = []  # the ids being committed: looked up again if the connection dies meanwhile
        try:
            valid = validate_batch(batch, offset, memory_type, self.embedder.dim)
            fresh, duplicates, leftover = dedupe_batch(self.engine, self.own, valid, dedupe=dedupe)
            summary["duplicates"] += duplicates
            if not fresh.rows:
                return
            vectors = embed_batch(self.embedder, self.cache, fresh)
            for name in ("embedded", "cache_hits", "precomputed"):
                summary[name] += getattr(vectors, name)
            pending = [r["id"] for r in fresh.rows]
            vids = self._write_batch(fresh, vectors, leftover)
        except self._driver_errors as exc:  # driver errors: the bulk insert calls the driver itself
            raise self._write_failed(exc, offset, pending, summary) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise OmnilabError(f"writing memories failed, batch not written: {exc}") from exc
        self._index_batch(fresh, vectors, vids, leftover)
        self.changes.applied(self.meta.bumped)
        summary["added"] += len(pending)
        summary["memory_ids"].extend(pending)

    @property
    def _driver_errors(self) -> tuple[type[Exception], ...]:
        """SQLAlchemy's wrapped driver errors and the driver's own (the bulk insert calls the driver directly)."""
        dbapi = self.engine.dialect.dbapi
        return (sa.exc.DBAPIError,) if dbapi is None else (sa.exc.DBAPIError, dbapi.Error)

    def _write_failed(self, exc: Exception, offset: int, pending: list[str], summary: dict[str, Any]) -> OmnilabError:
        """The error to raise for a driver error while ingesting the batch at ``offset``."""
        if not _connection_lost(exc, self.engine.dialect.dbapi):
            return OmnilabError(f"writing memories failed, batch not written: {exc}")
        written, unknown = self._committed(pending)
        summary["added"] += len(written)
        summary["memory_ids"].extend(written)
        self.keys.stale = True  # a batch that did commit reaches the index through the next reconcile
        err = StoreUnavailable(
            f"lost the database connection while ingesting (rows from {offset}): "
            f"{len(summary['memory_ids'])} memories written by this call"
            + (f", {len(unknown)} not known (the database cannot be reached to check)" if unknown else "")
            + f": {getattr(exc, 'orig', exc)}"
        )
        err.unknown_ids = unknown  # type: ignore[attr-defined]  # documented extra attribute of this error
        return err

    def _committed(self, ids: list[str]) -> tuple[list[str], list[str]]:
        """Which of a batch's new ids exist, asked on a fresh connection: (written, unknown when unreachable)."""
        if not ids:
            return [], []
        try:
            found: set[str] = set()
            with self.engine.connect() as conn:
                for part in chunks(ids):
                    found.update(conn.execute(sa.select(MEM.c.id).where(MEM.c.id.in_(part))).scalars())
        except sa.exc.SQLAlchemyError:
            return [], list(ids)
        return [i for i in ids if i in found], []

    def _write_batch(self, batch: Batch, vectors: BatchVectors, leftover: Mapping[str, int]) -> list[int]:
        """Memory rows, new cache entries, key rows (replacing ``leftover`` ones), keyword rows and the write
        generation in one transaction (two when the databases differ); returns the rows' vector ids."""
        rows = batch.rows
        try:
            with self._write() as (pconn, oconn), write_cache(pconn, oconn):
                check_foreign_keys(pconn, "memory_entries", rows)
                self.cache.put_many(oconn, vectors.new)  # do-nothing on keys already cached
                cols = {c: [r[c] for r in rows] for c in rows[0]}
                # all-NULL columns need no conversion at all (they default to NULL)
                cols = {c: v for c, v in cols.items() if not all(x is None for x in v) or not MEM.c[c].nullable}
                bulk_insert(pconn, "memory_entries", cols)
                for part in chunks(list(leftover.values())):
                    oconn.execute(sa.delete(MV).where(MV.c.id.in_(part)))  # keyword rows go by trigger
                id_of = insert_keys(
                    oconn,
                    [
                        {"memory_id": r["id"], "memory_type": r["memory_type"], "content_hash": h, "embedding_key": k}
                        for r, h, k in zip(rows, batch.hashes, vectors.keys)
                    ],
                )
                vids = [id_of[r["id"]] for r in rows]
                if isinstance(self.index, PgVectorIndex):  # the embeddings commit with their memories
                    self.index.write(oconn, vids, [vectors.vectors[k] for k in vectors.keys])
                hybrid.fts_write(oconn, [(v, r["content"]) for v, r in zip(vids, rows)], fresh=True)
                seq = self.meta.bump(oconn)
                log_changes(oconn, seq, "delete", leftover.values())
                log_changes(oconn, seq, "add", vids)
        except sa.exc.IntegrityError as exc:
            raise InvalidInput(f"memories violate a constraint, batch not written: {exc.orig}") from exc
        return vids

    def _index_batch(self, batch: Batch, vectors: BatchVectors, vids: list[int], leftover: Mapping[str, int]) -> None:
        """The written batch's vectors into the index (replacing those of ``leftover`` key rows)."""
        self.keys.forget_key_map()
        if isinstance(self.index, PgVectorIndex):  # written with the rows (and leftover rows deleted)
            return
        self.index.remove(leftover.values())
        keys = vectors.keys
        mat = vectors.matrix  # row j: the vector of batch row j
        if mat is None:
            mat = np.vstack([vectors.vectors[k] for k in keys])
        ids = np.asarray(vids, dtype=np.int64)
        types = np.asarray([r["memory_type"] for r in batch.rows])
        for mtype in dict.fromkeys(types.tolist()):  # one add per type, in first-seen order
            js = np.flatnonzero(types == mtype)
            self.index.add(mtype, ids[js], mat[js], [keys[j] for j in js.tolist()])

    def forget(self, memory_ids: str | Iterable[str]) -> int:
        """Delete memories by memory id (with their access log and relationships); returns how many existed."""
        self._writable("forget()")
        ids = [memory_ids] if isinstance(memory_ids, str) else list(memory_ids)
        if not all(isinstance(m, str) for m in ids):
            raise InvalidInput("forget takes memory ids (strings)")
        return len(self._delete(ids))

    def purge_expired(self) -> list[str]:
        """Delete every memory past its ``expires_at`` with its vector, key row, keyword row, access log and
        relationships; returns their ids. Nothing expires where memory_entries has no ``expires_at`` (an
        attached platform's compatibility view holds NULL). Each row is re-checked in the deleting
        transaction, so a memory whose expiry another process just moved into the future stays."""
        self._writable("purge_expired()")
        purged: list[str] = []
        while True:  # in chunks: memory stays bounded however many expired
            expired = expired_clause(self.dialect, self.columns, utcnow())
            if expired is None:
                return purged
            with self.engine.connect() as conn:
                ids = list(conn.execute(sa.select(MEM.c.id).where(expired).order_by(MEM.c.id).limit(5000)).scalars())
            if not ids:
                return purged
            purged += self._delete(ids, only=expired)

    def _delete(self, ids: list[str], *, only: sa.ColumnElement | None = None) -> list[str]:
        """Delete memories by id (``only``: those still matching it); returns the ids deleted."""
        if not ids:
            return []
        with self._lock:
            found: list[str] = []
            vids: list[int] = []
            with self._write() as (pconn, oconn):
                for part in chunks(ids):
                    stmt = sa.select(MEM.c.id).where(MEM.c.id.in_(part))
                    if only is not None:
                        stmt = stmt.where(only)
                    mine = list(
                        pconn.execute(stmt.with_for_update() if self.dialect == "postgresql" else stmt).scalars()
                    )
                    if not mine:
                        continue
                    found += mine
                    # the platform's foreign keys have no ON DELETE: dependents go first
                    pconn.execute(sa.delete(ACCESS).where(ACCESS.c.memory_id.in_(mine)))
                    pconn.execute(
                        sa.delete(REL).where(sa.or_(REL.c.source_memory_id.in_(mine), REL.c.target_memory_id.in_(mine)))
                    )
                    pconn.execute(sa.delete(MEM).where(MEM.c.id.in_(mine)))
                    vids += list(oconn.execute(sa.select(MV.c.id).where(MV.c.memory_id.in_(mine))).scalars())
                    oconn.execute(sa.delete(MV).where(MV.c.memory_id.in_(mine)))  # keyword rows go by trigger
                if found:
                    log_changes(oconn, self.meta.bump(oconn), "delete", vids)
            self.index.remove(vids)
            if found:
                self.changes.applied(self.meta.bumped)
                self.keys.forget_key_map()
                self._maybe_save()
            return found

    def update(self, memory_id: str, **changes: Any) -> None:
        """Change fields of one memory; new content (or type) re-embeds/re-indexes it."""
        self._writable("update_memory()")
        allowed = {
            "content",
            "memory_type",
            "priority",
            "agent_id",
            "session_id",
            "project_id",
            "tags",
            "metadata",
            "expires_at",
        }
        bad = set(changes) - allowed
        if bad:
            raise InvalidInput(f"cannot update {', '.join(sorted(bad))}; allowed: {', '.join(sorted(allowed))}")
        with self._lock:
            self.keys.ensure_fresh()
            with self.engine.connect() as conn:
                cur = (
                    conn.execute(
                        sa.select(*[c for c in MEM.columns if c.name in self.columns]).where(MEM.c.id == memory_id)
                    )
                    .mappings()
                    .one_or_none()
                )
            if cur is None:
                raise NotFound(f"no memory with id {memory_id!r}")
            with self.own.connect() as conn:
                vid, key = conn.execute(
                    sa.select(MV.c.id, MV.c.embedding_key).where(MV.c.memory_id == memory_id)
                ).one_or_none() or (None, None)
            row = {k: v for k, v in cur.items() if k != "updated_at"}
            row.update({k: getattr(v, "value", v) for k, v in changes.items()})
            clean = validate_rows("memory_entries", [row])[0]
            values = {k: clean[k] for k in changes}
            keyrow: dict[str, Any] = {"memory_type": clean["memory_type"]}
            vec = None
            if "content" in changes or key is None:
                keys, vecs, _ = embed_texts(self.embedder, self.cache, [clean["content"]])
                key, vec = keys[0], vecs[keys[0]]
                keyrow.update(content_hash=stored_content_hash(clean["content"]), embedding_key=key)
            values["updated_at"] = utcnow()
            with self._write() as (pconn, oconn):
                check_foreign_keys(pconn, "memory_entries", [clean])
                if vec is not None:
                    self.cache.put_many(oconn, {key: vec})
                pconn.execute(sa.update(MEM).where(MEM.c.id == memory_id).values(**values))
                op: ChangeOp = "update"
                if vid is None:
                    vid, op = insert_keys(oconn, [{"memory_id": memory_id, **keyrow}])[memory_id], "add"
                    hybrid.fts_write(oconn, [(vid, clean["content"])], fresh=True)
                else:
                    oconn.execute(sa.update(MV).where(MV.c.id == vid).values(**keyrow))
                    if "content" in changes:
                        hybrid.fts_write(oconn, [(vid, clean["content"])])
                if vec is not None and isinstance(self.index, PgVectorIndex):
                    self.index.write(oconn, [vid], [vec])
                # every field change is logged: the in-memory filter columns of every lab follow it
                log_changes(oconn, self.meta.bump(oconn), op, [vid])
                seq = self.meta.bumped
            self.keys.forget_key_map()
            if (vec is not None or "memory_type" in changes) and not isinstance(self.index, PgVectorIndex):
                if vec is None:
                    _, mat = self.index.vectors([vid])
                    vec = mat[0] if len(mat) else self.cache.get_many([key])[key]
                self.index.add(clean["memory_type"], np.asarray([vid], dtype=np.int64), vec[None, :], [key])
                self._maybe_save()
            self.changes.applied(seq)

    def reindex(self, embedder: str | Embedder | None = None, *, progress: bool = True) -> dict[str, int]:
        """Re-embed every memory with ``embedder`` (default: the current one), record it, rebuild the index.

        Writes only omnilab's own tables and files, so it works on a read-only attached platform too.
        """
        from tqdm.auto import tqdm

        new = create_embedder(embedder) if embedder is not None else self.embedder
        with self._lock:
            start = self.meta.generation()  # the rebuilt index reflects every write up to here
            with self.index.lock:
                self.keys.sync_keys()
            cache = EmbeddingCache(self.own, new.name, new.dim)
            with self.own.connect() as conn:
                keyrows = conn.execute(sa.select(MV.c.id, MV.c.memory_id, MV.c.memory_type).order_by(MV.c.id)).all()
            plan: dict[int, tuple[str, str]] = {}
            embedded = hits = 0
            for part in tqdm(list(chunks(keyrows, 512)), desc=f"reindex ({new.name})", disable=not progress):
                contents = self.keys.contents([m for _, m, _ in part])
                part = [p for p in part if p[1] in contents]
                keys, vecs, stats = embed_texts(new, cache, [contents[m] for _, m, _ in part])
                embedded, hits = embedded + stats.embedded, hits + stats.cache_hits
                with self.own.begin() as conn:
                    cache.put_many(conn, {k: vecs[k] for k in stats.new_keys})
                    for (vid, _m, mtype), k in zip(part, keys):
                        conn.execute(sa.update(MV).where(MV.c.id == vid).values(embedding_key=k))
                        plan[vid] = (mtype, k)
            with self.own.begin() as conn:
                self.meta.set("embedder", {"name": new.name, "spec": new.spec, "dim": new.dim}, conn=conn)
                self.meta.bump(conn)
            self.embedder = new
            with self.index.lock:
                old_gen = self.index.disk_generation() if self._manifest_readable() else 0
                self.cache = cache
                self.index = self._new_index(new)
                self.index.generation = old_gen
                self.index.applied_seq = start
                self.keys.use(new, cache, self.index)
                self.keys.add_from_cache(plan, progress=False)
                self.index.save(self.meta.generation(), force=True)
            self.searcher.use(self.embedder, self.cache, self.index)
            return {"memories": len(plan), "embedded": embedded, "cache_hits": hits}

    # ---------------------------------------------------------------------------------- key rows
    def reconcile(self, *, progress: bool = False, embed: bool = True) -> dict[str, int]:
        """Make the key rows agree with memory_entries and the index with the key rows, and read the
        in-memory filter columns again on the next search; returns counts (see :meth:`KeyRows.reconcile`)."""
        if self.searcher.table is not None:  # rows may have been written behind omnilab's back
            self.searcher.table.invalidate()
        return self.keys.reconcile(progress=progress, embed=embed)

    def vector_ids_for(self, memory_ids: Iterable[str]) -> dict[str, int]:
        """memory id -> vector id (the FAISS id) for the memories that have a key row."""
        return self.keys.vector_ids_for(memory_ids)

    def memory_ids_for(self, vector_ids: Iterable[int]) -> dict[int, str]:
        """vector id -> memory id."""
        return self.keys.memory_ids_for(vector_ids)

    # ------------------------------------------------------------------------------------ reading
    # Done by self.searcher (MemorySearch); these are the store's public face for it.
    def memories(
        self,
        memory_type: str | Iterable[str] | None = None,
        *,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
        include_expired: bool = False,
        **filters: Any,
    ) -> pd.DataFrame:
        """Memories newest first (see :meth:`MemorySearch.memories`)."""
        return self.searcher.memories(memory_type, where=where, limit=limit, include_expired=include_expired, **filters)

    def query_vector(self, query: Any) -> np.ndarray:
        """A text or vector query as a normalized (dim,) float32 vector."""
        return self.searcher.query_vector(query)

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
        """Exact top-k memories as a frame (see :meth:`MemorySearch.search`; results are cached only when asked)."""
        return self.searcher.search(
            query,
            memory_type=memory_type,
            k=k,
            threshold=threshold,
            where=where,
            cache=cache,
            include_expired=include_expired,
        )

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
        """Exact top-k (vector id, cosine, type) among memories matching ``where``."""
        return self.searcher.search_hits(
            query, memory_type=memory_type, k=k, threshold=threshold, where=where, include_expired=include_expired
        )

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
        """Keyword (BM25) and vector search fused (see :meth:`MemorySearch.hybrid_search`)."""
        return self.searcher.hybrid_search(
            query,
            memory_type=memory_type,
            k=k,
            where=where,
            fusion=fusion,
            weight=weight,
            pool=pool,
            include_expired=include_expired,
        )

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
        return self.searcher.hybrid_hits(
            query,
            memory_type=memory_type,
            k=k,
            where=where,
            fusion=fusion,
            weight=weight,
            pool=pool,
            include_expired=include_expired,
        )

    def hybrid_pools(
        self,
        query: str,
        *,
        memory_type: Any = None,
        where: Mapping[str, Any] | None = None,
        pool: int = 50,
        include_expired: bool = False,
    ) -> tuple[dict[int, float], dict[int, float]]:
        """Both candidate pools of a hybrid search: (cosine by id, keyword score by id)."""
        return self.searcher.hybrid_pools(
            query, memory_type=memory_type, where=where, pool=pool, include_expired=include_expired
        )

    def relate(self, source: str, target: str, relationship_type: str = "related", strength: float = 1.0) -> None:
        """Link two memories (directed, unique per type); an existing link gets the new strength."""
        self._writable("relate()")
        relations.relate(self.engine, source, target, relationship_type, strength)

    def related(self, memory_id: str, relationship_type: str | None = None) -> pd.DataFrame:
        """Memories linked to ``memory_id`` either way: direction, relationship_type, strength and the memory."""
        return relations.related(self.engine, memory_id, relationship_type)

    # ------------------------------------------------------------------------------------- admin
    def add_filter_index(self, key: str) -> str:
        """Index ``metadata.<key>`` so equality filters on it are index lookups; returns the index name.

        Worth it for selective filters on large labs (the filter then costs well under a millisecond).
        Idempotent. Alembic's schema comparison ignores these indexes.
        """
        from omnilab.sql.own_tables import FILTER_INDEX_PREFIX
        from omnilab.vectors.filters import json_path_expr

        self._writable("add_filter_index()")
        if not isinstance(key, str) or not key.startswith("metadata.") or len(key) > 60:
            raise InvalidInput(f"add_filter_index takes 'metadata.<key>', got {key!r}")
        path = tuple(key.split(".")[1:])
        expr = json_path_expr(None, path, self.dialect == "postgresql")  # validates the parts
        name = FILTER_INDEX_PREFIX + "__".join(path).replace("-", "_")
        sql_expr = str(expr.compile(dialect=self.engine.dialect))
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON memory_entries (({sql_expr}))')
        return name

    def stats(self) -> dict[str, Any]:
        with self.own.connect() as conn:
            cached = conn.execute(sa.select(sa.func.count()).select_from(embedding_cache)).scalar_one()
        return {
            "embedder": self.embedder.name,
            "dim": self.embedder.dim,
            "index": self.index_kind,
            "vectors": len(self.index),
            "per_type": self.index.counts(),
            "generation": self.generation,
            "cached_embeddings": int(cached),
            "read_only": self.read_only,
        }


def _connection_lost(exc: Exception, dbapi: Any) -> bool:
    """The database connection broke (server gone, backend terminated), as opposed to a bad statement."""
    if isinstance(exc, sa.exc.DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))
    return dbapi is not None and isinstance(exc, (dbapi.OperationalError, dbapi.InterfaceError))
