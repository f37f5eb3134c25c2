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
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from omnilab import enums
from omnilab.errors import ConfigError, InvalidInput, NotFound, OmnilabError, ReadOnlyViolation, StoreUnavailable
from omnilab.sql.schema import TABLES
from omnilab.sql.types import utcnow
from omnilab.sql.validate import check_foreign_keys, validate_rows
from omnilab.vectors import hybrid
from omnilab.vectors.cache import EmbeddingCache, embed_texts
from omnilab.vectors.embedders import Embedder, collapse, create_embedder, default_spec
from omnilab.vectors.index import VectorIndex
from omnilab.vectors.keys import MV, KeysMixin, chunks, content_hash, insert_keys
from omnilab.vectors.models import embedding_cache, lab_meta
from omnilab.vectors.search import RESULT_COLUMNS, SearchMixin
from omnilab.vectors.sources import check_vector, fast_memory_rows, iter_batches

__all__ = ["MemoryStore", "RESULT_COLUMNS"]

log = logging.getLogger(__name__)

MEM = TABLES["memory_entries"]
REL = TABLES["memory_relationships"]
ACCESS = TABLES["memory_access"]
MEMORY_TYPES = enums.values(enums.MemoryType)
_SAVE_SMALL = 20_000  # below this many vectors in the changed types, every write saves at once
_SAVE_EVERY = 5.0  # otherwise at most every few seconds (and always on close / after ingest)


def _precomputed_key(vec: np.ndarray) -> str:
    # A vector handed in by the user is cached under a key of its own bytes, never under a text's key,
    # so it cannot stand in for what the embedder would compute for some text.
    return hashlib.sha256(b"omnilab-precomputed\0" + np.ascontiguousarray(vec, "<f4").tobytes()).hexdigest()


class MemoryStore(KeysMixin, SearchMixin):
    """Vector memory over one lab's databases and ``<lab>/vectors`` directory. Thread-safe.

    ``follow`` (default: on when read-only or when the two engines differ) makes every read check whether
    the platform changed memory_entries and catch up first.
    """

    def __init__(self, engine: sa.Engine, directory: str | Path, *, own_engine: sa.Engine | None = None,
                 read_only: bool = False, embedder: str | Embedder | None = None, index: str = "flat",
                 reindex: bool = False, progress: bool = False, log_access: bool = False,
                 follow: bool | None = None) -> None:
        self.engine = engine
        self.own = own_engine if own_engine is not None else engine
        self.split = self.own is not engine
        self.dialect = engine.dialect.name
        self.read_only = bool(read_only)
        self.follow = (self.read_only or self.split) if follow is None else bool(follow)
        if self.split and self.own.dialect.name != "sqlite":
            raise ConfigError("omnilab's own tables live in the platform's PostgreSQL database or in a SQLite file")
        if self.read_only and log_access:
            raise ReadOnlyViolation("this lab is attached read-only: log_access would write memory_access rows "
                                    "to the platform's database")
        with engine.connect() as conn:  # a platform database lacks omnilab's added columns
            self.columns = frozenset(c["name"] for c in sa.inspect(conn).get_columns("memory_entries"))
        self.directory = Path(directory)
        self._lock = threading.RLock()
        self.log_access = log_access
        self._access: list[dict[str, Any]] = []
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._where_cache: OrderedDict[str, sa.ColumnElement] = OrderedDict()
        self._keymap: dict[str, tuple[int, str]] | None = None
        self._watch: Any = None  # dedicated SQLite connection for PRAGMA data_version
        self._token: Any = None
        self._last_save = 0.0
        self._stale = False
        self._progress = progress
        recorded = self._meta("embedder")
        wanted = create_embedder(embedder) if embedder is not None else None
        if recorded is None:
            emb = wanted or create_embedder(default_spec())
            self._set_meta("embedder", {"name": emb.name, "spec": emb.spec, "dim": emb.dim}, only_if_new=True)
            recorded = self._meta("embedder")
            if recorded["name"] != emb.name:  # another process created the lab first with another one
                raise ConfigError(f"lab was just created with embedder {recorded['name']}, not {emb.name}")
        if wanted is not None and wanted.name != recorded["name"] and not reindex:
            raise ConfigError(
                f"this lab's memories are embedded with {recorded['name']} (dim {recorded['dim']}); "
                f"opening it with {wanted.name} needs omnilab.open(..., reindex=True) or lab.reindex('{wanted.spec}')")
        self.embedder = wanted if wanted is not None and wanted.name == recorded["name"] else create_embedder(
            recorded["spec"])
        self.index_kind = index
        self._open_index()
        if wanted is not None and wanted.name != recorded["name"]:
            self.reindex(wanted, progress=progress)
        elif self.follow:
            self._stale = True  # an attached platform is read (and embedded) on the first search, not on open
        else:
            self.reconcile(progress=progress, embed=False)

    def _open_index(self) -> None:
        self.cache = EmbeddingCache(self.own, self.embedder.name, self.embedder.dim)
        self.index = VectorIndex(self.directory, dim=self.embedder.dim, embedder=self.embedder.name,
                                 kind=self.index_kind)
        with self.index.lock:
            try:
                if self.index.load():
                    self._last_save = time.monotonic()  # what is on disk is what we hold
            except (ConfigError, OmnilabError) as exc:  # a derived file: rebuild it from SQL
                log.warning("rebuilding the vector index: %s", exc)
                self.index.generation = (self.index.disk_generation() if self._manifest_readable()
                                         else self.index.file_generation())
                self.index.clear()

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

    # ----------------------------------------------------------------------------------- lab_meta
    def _meta(self, key: str, conn: sa.Connection | None = None) -> Any:
        stmt = sa.select(lab_meta.c.value).where(lab_meta.c.key == key)
        if conn is not None:
            return conn.execute(stmt).scalar_one_or_none()
        with self.own.connect() as c:
            return c.execute(stmt).scalar_one_or_none()

    def _upsert(self, conn: sa.Connection) -> Any:
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(lab_meta)

    def _set_meta(self, key: str, value: Any, *, only_if_new: bool = False, conn: sa.Connection | None = None) -> None:
        def run(c: sa.Connection) -> None:
            ins = self._upsert(c).values(key=key, value=value, counter=0, updated_at=utcnow())
            stmt = ins.on_conflict_do_nothing() if only_if_new else ins.on_conflict_do_update(
                index_elements=["key"], set_={"value": value, "updated_at": utcnow()})
            c.execute(stmt)

        if conn is not None:
            run(conn)
        else:
            with self.own.begin() as c:
                run(c)

    def _bump(self, conn: sa.Connection) -> int:
        """Increment the memory write generation inside the caller's transaction (on the own database)."""
        ins = self._upsert(conn).values(key="memory_generation", value=None, counter=1, updated_at=utcnow())
        stmt = ins.on_conflict_do_update(index_elements=["key"], set_={
            "counter": lab_meta.c.counter + 1, "updated_at": utcnow()}).returning(lab_meta.c.counter)
        gen = int(conn.execute(stmt).scalar_one())
        self._generation = gen
        return gen

    def record_external_write(self, conn: sa.Connection) -> None:
        """Memory rows were written by other code in ``conn``'s transaction: bump the generation, index later."""
        self._writable("writing memory rows")
        if self.split:
            with self.own.begin() as oconn:
                self._bump(oconn)
        else:
            self._bump(conn)
        self._stale = True

    def sql_generation(self) -> int:
        """The memory write generation: changes with every memory write, the platform's included."""
        self._check_platform()
        return self._own_generation()

    def _own_generation(self) -> int:
        with self.own.connect() as conn:
            gen = conn.execute(sa.select(lab_meta.c.counter).where(lab_meta.c.key == "memory_generation")
                               ).scalar_one_or_none()
        return int(gen or 0)

    @property
    def generation(self) -> int:
        """Monotonic write generation as this process knows it (changes on every memory write)."""
        return max(getattr(self, "_generation", 0), self.index.sql_generation)

    # -------------------------------------------------------------------------------- persistence
    def save(self, *, force: bool = False) -> None:
        """Write the index now (atomic); resolves concurrent writers by reloading and reconciling."""
        with self._lock, self.index.lock:
            for _attempt in range(5):
                if self.index.save(self._own_generation(), force=force):
                    self._last_save = time.monotonic()
                    return
                self.index.load()  # another process saved first: take theirs, then catch up with SQL
                self._reconcile_locked(progress=False, save=False)
            raise OmnilabError("could not save the vector index: other writers keep changing it")

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
                    self._reconcile_locked(progress=False, save=True)

    def close(self) -> None:
        with self._lock:
            self._flush_access()
            if self.index.dirty:
                self.save()
            if self._watch is not None:
                self._watch.close()
                self._watch = None

    # ----------------------------------------------------------------------------------- writing
    def remember(self, content: str, memory_type: str, *, priority: int = 5, agent_id: str | None = None,
                 session_id: str | None = None, project_id: str | None = None, tags: Iterable[str] = (),
                 metadata: Mapping[str, Any] | None = None, **extra: Any) -> str:
        """Store one memory and return its memory id (a uuid string unless ``id`` is given)."""
        self._writable("remember()")
        if isinstance(tags, str):
            raise InvalidInput("tags must be a list of strings, not one string")
        row = {"content": content, "memory_type": getattr(memory_type, "value", memory_type),
               "priority": int(getattr(priority, "value", priority)) if priority is not None else None,
               "agent_id": agent_id, "session_id": session_id, "project_id": project_id,
               "tags": list(tags), "metadata": dict(metadata or {}), **extra}
        summary = self.ingest([row], progress=False, dedupe=False)
        if not summary["memory_ids"]:
            raise InvalidInput(f"a memory with id {row.get('id') or row.get('memory_id')!r} already exists")
        return summary["memory_ids"][0]

    def ingest(self, data: Any, *, memory_type: str | None = None, batch_size: int = 1000,
               progress: bool = True, dedupe: bool = True) -> dict[str, Any]:
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
        summary: dict[str, Any] = {"added": 0, "duplicates": 0, "embedded": 0, "cache_hits": 0,
                                   "precomputed": 0, "seconds": 0.0, "memory_ids": []}
        total = len(data) if hasattr(data, "__len__") and not isinstance(data, (str, Path)) else None
        bar = tqdm(total=total, desc="ingest", unit="mem", disable=not progress)
        with self._lock:
            try:
                if self.follow:
                    self._check_platform()  # dedupe against what the platform holds now
                for offset, batch in _numbered(iter_batches(data, batch_size)):
                    self._ingest_batch(batch, offset, memory_type, dedupe, summary)
                    bar.update(len(batch))
            except OmnilabError as exc:  # what this call committed before the failure
                exc.memory_ids = list(summary["memory_ids"])  # type: ignore[attr-defined]
                exc.summary = summary  # type: ignore[attr-defined]
                raise
            finally:
                bar.close()
                if self.index.dirty:
                    try:
                        self.save()
                    except (sa.exc.SQLAlchemyError, OmnilabError) as exc:  # derived: rebuilt on next open
                        log.warning("could not save the vector index after ingest: %s", exc)
        summary["seconds"] = round(time.perf_counter() - started, 3)
        return summary

    def _prepare(self, batch: list[dict[str, Any]], offset: int, memory_type: str | None
                 ) -> tuple[list[dict[str, Any]], list[str], list[np.ndarray | None], list[bool]]:
        """Validated rows, their content hashes, precomputed vectors and whether the caller named the id."""
        pre: list[np.ndarray | None] = []
        hashes: list[str] = []
        given: list[bool] = []
        for i, row in enumerate(batch):
            where = f"memory row {offset + i}"
            if memory_type is not None and row.get("memory_type") is None:
                row["memory_type"] = getattr(memory_type, "value", memory_type)
            if "memory_id" in row:  # the name search results use for the platform's id
                alias = row.pop("memory_id")
                if row.get("id") is not None and alias is not None and alias != row["id"]:
                    raise InvalidInput(f"{where}: id and memory_id differ")
                row["id"] = row.get("id") if row.get("id") is not None else alias
            for internal in ("vector_id", "content_hash", "embedding_key"):
                if row.get(internal) is not None:
                    raise InvalidInput(f"{where}: {internal!r} is assigned by omnilab")
                row.pop(internal, None)
            given.append(row.get("id") is not None)
            pre.append(row.pop("embedding", None))
            try:
                hashes.append(hashlib.sha256(collapse(row.get("content")).encode()).hexdigest())
            except InvalidInput as exc:
                raise InvalidInput(f"{where}: content {exc}") from exc
        pre = _check_vectors(pre, self.embedder.dim, offset)
        try:
            rows = fast_memory_rows(batch, MEMORY_TYPES) or validate_rows("memory_entries", batch)
        except InvalidInput as exc:
            raise InvalidInput(str(exc).replace("memory_entries row ", f"memory row {offset}+")) from exc
        return rows, hashes, pre, given

    def _ingest_batch(self, batch: list[dict[str, Any]], offset: int, memory_type: str | None, dedupe: bool,
                      summary: dict[str, Any]) -> None:
        dbapi = self.engine.dialect.dbapi
        try:
            self._ingest_batch_locked(batch, offset, memory_type, dedupe, summary)
        except (sa.exc.DBAPIError, dbapi.Error) as exc:  # driver errors: the bulk insert calls the driver itself
            if not _connection_lost(exc, dbapi):
                raise OmnilabError(f"writing memories failed, batch not written: {exc}") from exc
            written, unknown = self._committed(getattr(exc, "statement_ids", []))
            summary["added"] += len(written)
            summary["memory_ids"].extend(written)
            self._stale = True  # a batch that did commit reaches the index through the next reconcile
            err = StoreUnavailable(
                f"lost the database connection while ingesting (rows from {offset}): "
                f"{len(summary['memory_ids'])} memories written by this call"
                + (f", {len(unknown)} not known (the database cannot be reached to check)" if unknown else "")
                + f": {getattr(exc, 'orig', exc)}")
            err.unknown_ids = unknown  # type: ignore[attr-defined]
            raise err from exc
        except sa.exc.SQLAlchemyError as exc:
            raise OmnilabError(f"writing memories failed, batch not written: {exc}") from exc

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

    def _ingest_batch_locked(self, batch: list[dict[str, Any]], offset: int, memory_type: str | None, dedupe: bool,
                             summary: dict[str, Any]) -> None:
        seen: set[tuple[str, str]] = set()  # earlier batches are committed: `known` below finds them in SQL
        rows, hashes, pre, given = self._prepare(batch, offset, memory_type)
        # duplicates: an id already stored, or (dedupe) the same type+content already stored/seen
        named = [r["id"] for r, g in zip(rows, given) if g]
        existing: set[str] = set()
        with self.engine.connect() as conn:
            for part in chunks(named):
                existing.update(conn.execute(sa.select(MEM.c.id).where(MEM.c.id.in_(part))).scalars())
        known: set[tuple[str, str]] = set()
        leftover: dict[str, int] = {}  # key rows of named ids whose memory is gone (deleted by others)
        with self.own.connect() as conn:
            if dedupe:
                for part in chunks(sorted(set(hashes))):
                    known.update(conn.execute(sa.select(MV.c.memory_type, MV.c.content_hash).where(
                        MV.c.content_hash.in_(part))).all())
            for part in chunks([m for m in named if m not in existing]):
                leftover.update(conn.execute(sa.select(MV.c.memory_id, MV.c.id).where(MV.c.memory_id.in_(part)))
                                .all())
        keep: list[int] = []
        for i, r in enumerate(rows):
            sig = (r["memory_type"], hashes[i])
            if r["id"] in existing or (dedupe and (sig in known or sig in seen)):
                summary["duplicates"] += 1
                continue
            existing.add(r["id"])
            seen.add(sig)
            keep.append(i)
        if not keep:
            return
        rows, hashes, pre = [rows[i] for i in keep], [hashes[i] for i in keep], [pre[i] for i in keep]
        # vectors: precomputed ones as given, the rest from the cache or the embedder
        todo = [i for i, v in enumerate(pre) if v is None]
        keys: list[str] = [""] * len(rows)
        new_cache: dict[str, np.ndarray] = {}
        vectors: dict[str, np.ndarray] = {}
        if todo:
            tkeys, tvecs, stats = embed_texts(self.embedder, self.cache, [rows[i]["content"] for i in todo])
            for i, k in zip(todo, tkeys):
                keys[i] = k
            vectors.update(tvecs)
            new_cache.update({k: tvecs[k] for k in stats.new_keys})
            summary["embedded"] += stats.embedded
            summary["cache_hits"] += stats.cache_hits
        for i, v in enumerate(pre):
            if v is not None:
                k = _precomputed_key(v)
                keys[i] = k
                vectors[k] = v
                new_cache[k] = v
                summary["precomputed"] += 1
        try:
            with self._write() as (pconn, oconn):
                check_foreign_keys(pconn, "memory_entries", rows)
                self.cache.put_many(oconn, new_cache)  # do-nothing on keys already cached
                from omnilab.sql.bulk import bulk_insert

                cols = {c: [r[c] for r in rows] for c in rows[0]}
                # all-NULL columns need no conversion at all (they default to NULL)
                cols = {c: v for c, v in cols.items() if not all(x is None for x in v) or not MEM.c[c].nullable}
                bulk_insert(pconn, "memory_entries", cols)
                for part in chunks(list(leftover.values())):
                    oconn.execute(sa.delete(MV).where(MV.c.id.in_(part)))  # keyword rows go by trigger
                id_of = insert_keys(oconn, [{"memory_id": r["id"], "memory_type": r["memory_type"],
                                             "content_hash": h, "embedding_key": k}
                                            for r, h, k in zip(rows, hashes, keys)])
                vids = [id_of[r["id"]] for r in rows]
                hybrid.fts_write(oconn, [(v, r["content"]) for v, r in zip(vids, rows)], fresh=True)
                self._bump(oconn)
        except sa.exc.IntegrityError as exc:
            raise InvalidInput(f"memories violate a constraint, batch not written: {exc.orig}") from exc
        except (sa.exc.DBAPIError, self.engine.dialect.dbapi.Error) as exc:  # the caller checks what was lost
            exc.statement_ids = [r["id"] for r in rows]  # type: ignore[union-attr]
            raise
        self.index.remove(leftover.values())
        self._keymap = None
        by_type: dict[str, list[int]] = {}
        for j, r in enumerate(rows):
            by_type.setdefault(r["memory_type"], []).append(j)
        for mtype, js in by_type.items():
            self.index.add(mtype, np.asarray([vids[j] for j in js], dtype=np.int64),
                           np.vstack([vectors[keys[j]] for j in js]), [keys[j] for j in js])
        summary["added"] += len(rows)
        summary["memory_ids"].extend(r["id"] for r in rows)

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
            expired = self._expired(utcnow())
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
                    mine = list(pconn.execute(stmt.with_for_update() if self.dialect == "postgresql" else stmt)
                                .scalars())
                    if not mine:
                        continue
                    found += mine
                    # the platform's foreign keys have no ON DELETE: dependents go first
                    pconn.execute(sa.delete(ACCESS).where(ACCESS.c.memory_id.in_(mine)))
                    pconn.execute(sa.delete(REL).where(sa.or_(REL.c.source_memory_id.in_(mine),
                                                              REL.c.target_memory_id.in_(mine))))
                    pconn.execute(sa.delete(MEM).where(MEM.c.id.in_(mine)))
                    vids += list(oconn.execute(sa.select(MV.c.id).where(MV.c.memory_id.in_(mine))).scalars())
                    oconn.execute(sa.delete(MV).where(MV.c.memory_id.in_(mine)))  # keyword rows go by trigger
                if found:
                    self._bump(oconn)
            self.index.remove(vids)
            if found:
                self._keymap = None
                self._maybe_save()
            return found

    def update(self, memory_id: str, **changes: Any) -> None:
        """Change fields of one memory; new content (or type) re-embeds/re-indexes it."""
        self._writable("update_memory()")
        allowed = {"content", "memory_type", "priority", "agent_id", "session_id", "project_id", "tags",
                   "metadata", "expires_at"}
        bad = set(changes) - allowed
        if bad:
            raise InvalidInput(f"cannot update {', '.join(sorted(bad))}; allowed: {', '.join(sorted(allowed))}")
        with self._lock:
            self._ensure_fresh()
            with self.engine.connect() as conn:
                cur = conn.execute(sa.select(*[c for c in MEM.columns if c.name in self.columns])
                                   .where(MEM.c.id == memory_id)).mappings().one_or_none()
            if cur is None:
                raise NotFound(f"no memory with id {memory_id!r}")
            with self.own.connect() as conn:
                vid, key = conn.execute(sa.select(MV.c.id, MV.c.embedding_key).where(MV.c.memory_id == memory_id)
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
                keyrow.update(content_hash=content_hash(clean["content"]), embedding_key=key)
            values["updated_at"] = utcnow()
            with self._write() as (pconn, oconn):
                check_foreign_keys(pconn, "memory_entries", [clean])
                if vec is not None:
                    self.cache.put_many(oconn, {key: vec})
                pconn.execute(sa.update(MEM).where(MEM.c.id == memory_id).values(**values))
                if vid is None:
                    vid = insert_keys(oconn, [{"memory_id": memory_id, **keyrow}])[memory_id]
                    hybrid.fts_write(oconn, [(vid, clean["content"])], fresh=True)
                else:
                    oconn.execute(sa.update(MV).where(MV.c.id == vid).values(**keyrow))
                    if "content" in changes:
                        hybrid.fts_write(oconn, [(vid, clean["content"])])
                self._bump(oconn)
            self._keymap = None
            if vec is not None or "memory_type" in changes:
                if vec is None:
                    _, mat = self.index.vectors([vid])
                    vec = mat[0] if len(mat) else self.cache.get_many([key])[key]
                self.index.add(clean["memory_type"], np.asarray([vid], dtype=np.int64), vec[None, :], [key])
                self._maybe_save()

    def reindex(self, embedder: str | Embedder | None = None, *, progress: bool = True) -> dict[str, int]:
        """Re-embed every memory with ``embedder`` (default: the current one), record it, rebuild the index.

        Writes only omnilab's own tables and files, so it works on a read-only attached platform too.
        """
        from tqdm.auto import tqdm

        new = create_embedder(embedder) if embedder is not None else self.embedder
        with self._lock:
            with self.index.lock:
                self._sync_keys()
            cache = EmbeddingCache(self.own, new.name, new.dim)
            with self.own.connect() as conn:
                keyrows = conn.execute(sa.select(MV.c.id, MV.c.memory_id, MV.c.memory_type).order_by(MV.c.id)).all()
            plan: dict[int, tuple[str, str]] = {}
            embedded = hits = 0
            for part in tqdm(list(chunks(keyrows, 512)), desc=f"reindex ({new.name})", disable=not progress):
                contents = self._contents([m for _, m, _ in part])
                part = [p for p in part if p[1] in contents]
                keys, vecs, stats = embed_texts(new, cache, [contents[m] for _, m, _ in part])
                embedded, hits = embedded + stats.embedded, hits + stats.cache_hits
                with self.own.begin() as conn:
                    cache.put_many(conn, {k: vecs[k] for k in stats.new_keys})
                    for (vid, _m, mtype), k in zip(part, keys):
                        conn.execute(sa.update(MV).where(MV.c.id == vid).values(embedding_key=k))
                        plan[vid] = (mtype, k)
            with self.own.begin() as conn:
                self._set_meta("embedder", {"name": new.name, "spec": new.spec, "dim": new.dim}, conn=conn)
                self._bump(conn)
            self.embedder = new
            with self.index.lock:
                old_gen = self.index.disk_generation() if self._manifest_readable() else 0
                self.cache = cache
                self.index = VectorIndex(self.directory, dim=new.dim, embedder=new.name, kind=self.index_kind)
                self.index.generation = old_gen
                self._add_from_cache(plan, progress=False)
                self.index.save(self._own_generation(), force=True)
            self._query_cache.clear()
            return {"memories": len(plan), "embedded": embedded, "cache_hits": hits}

    def add_filter_index(self, key: str) -> str:
        """Index ``metadata.<key>`` so equality filters on it are index lookups; returns the index name.

        Worth it for selective filters on large labs (the filter then costs well under a millisecond).
        Idempotent. Alembic's schema comparison ignores these indexes.
        """
        from omnilab.vectors.filters import json_path_expr
        from omnilab.vectors.models import FILTER_INDEX_PREFIX

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
        return {"embedder": self.embedder.name, "dim": self.embedder.dim, "index": self.index_kind,
                "vectors": len(self.index), "per_type": self.index.counts(), "generation": self.generation,
                "cached_embeddings": int(cached), "read_only": self.read_only}


def _check_vectors(values: list[Any], dim: int, offset: int) -> list[np.ndarray | None]:
    """Precomputed embeddings checked (dimension, finite, non-zero) and normalized; None where absent."""
    if values and all(isinstance(v, np.ndarray) and v.shape == (dim,) for v in values):
        mat = np.vstack(values).astype(np.float32, copy=False)  # the common case, checked at once
        norms = np.linalg.norm(mat, axis=1)
        bad = ~np.isfinite(mat).all(axis=1) | (norms == 0)
        if not bad.any():
            return list(mat / norms[:, None])
    return [None if v is None else check_vector(v, dim, f"memory row {offset + i}") for i, v in enumerate(values)]


def _connection_lost(exc: Exception, dbapi: Any) -> bool:
    """The database connection broke (server gone, backend terminated), as opposed to a bad statement."""
    if isinstance(exc, sa.exc.DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))
    return isinstance(exc, (dbapi.OperationalError, dbapi.InterfaceError))


def _numbered(batches: Iterable[list[dict[str, Any]]]) -> Iterable[tuple[int, list[dict[str, Any]]]]:
    offset = 0
    for b in batches:
        yield offset, b
        offset += len(b)
