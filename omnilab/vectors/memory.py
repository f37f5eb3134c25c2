"""MemoryStore: memories in SQL (the truth), their vectors in FAISS, keyword rows for hybrid search.

Every write commits to SQL first (rows, cache entries, keyword rows and the write generation in one
transaction), then updates the in-memory index, which is saved atomically. On open and whenever another
process has saved, the index reconciles itself with SQL: missing vectors come from the embedding cache
(re-embedding only what the cache lacks), stale ones are dropped. A crash at any point loses no
committed memory and leaves no corrupt index.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from omnilab import enums
from omnilab.errors import ConfigError, InvalidInput, NotFound, OmnilabError
from omnilab.sql.schema import TABLES
from omnilab.sql.types import utcnow
from omnilab.sql.validate import check_foreign_keys, validate_rows
from omnilab.vectors import hybrid
from omnilab.vectors.cache import EmbeddingCache, embed_texts
from omnilab.vectors.embedders import Embedder, collapse, create_embedder, default_spec
from omnilab.vectors.index import VectorIndex, key_code
from omnilab.vectors.models import embedding_cache, lab_meta
from omnilab.vectors.search import RESULT_COLUMNS, SearchMixin
from omnilab.vectors.sources import check_vector, fast_memory_rows, iter_batches

__all__ = ["MemoryStore", "RESULT_COLUMNS"]

log = logging.getLogger(__name__)

MEM = TABLES["memory_entries"]
REL = TABLES["memory_relationships"]
MEMORY_TYPES = enums.values(enums.MemoryType)
_SAVE_SMALL = 20_000  # below this many vectors in the changed types, every write saves at once
_SAVE_EVERY = 5.0  # otherwise at most every few seconds (and always on close / after ingest)


def _precomputed_key(vec: np.ndarray) -> str:
    # A vector handed in by the user is cached under a key of its own bytes, never under a text's key,
    # so it cannot stand in for what the embedder would compute for some text.
    return hashlib.sha256(b"omnilab-precomputed\0" + np.ascontiguousarray(vec, "<f4").tobytes()).hexdigest()


class MemoryStore(SearchMixin):
    """Vector memory over one lab's database and ``<lab>/vectors`` directory. Thread-safe."""

    def __init__(self, engine: sa.Engine, directory: str | Path, *, embedder: str | Embedder | None = None,
                 index: str = "flat", reindex: bool = False, progress: bool = False,
                 log_access: bool = False) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.directory = Path(directory)
        self._lock = threading.RLock()
        self.log_access = log_access
        self._access: list[dict[str, Any]] = []
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._where_cache: OrderedDict[str, sa.ColumnElement] = OrderedDict()
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
        else:
            self.reconcile(progress=progress, embed=False)

    def _open_index(self) -> None:
        self.cache = EmbeddingCache(self.engine, self.embedder.name, self.embedder.dim)
        self.index = VectorIndex(self.directory, dim=self.embedder.dim, embedder=self.embedder.name,
                                 kind=self.index_kind)
        with self.index.lock:
            try:
                self.index.load()
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

    # ----------------------------------------------------------------------------------- lab_meta
    def _meta(self, key: str, conn: sa.Connection | None = None) -> Any:
        stmt = sa.select(lab_meta.c.value).where(lab_meta.c.key == key)
        if conn is not None:
            return conn.execute(stmt).scalar_one_or_none()
        with self.engine.connect() as c:
            return c.execute(stmt).scalar_one_or_none()

    def _upsert(self, conn: sa.Connection) -> Any:
        if self.dialect == "postgresql":
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
            with self.engine.begin() as c:
                run(c)

    def _bump(self, conn: sa.Connection) -> int:
        """Increment the memory write generation inside the caller's transaction."""
        ins = self._upsert(conn).values(key="memory_generation", value=None, counter=1, updated_at=utcnow())
        stmt = ins.on_conflict_do_update(index_elements=["key"], set_={
            "counter": lab_meta.c.counter + 1, "updated_at": utcnow()}).returning(lab_meta.c.counter)
        gen = int(conn.execute(stmt).scalar_one())
        self._generation = gen
        return gen

    def record_external_write(self, conn: sa.Connection) -> None:
        """Memory rows were written by other code in ``conn``'s transaction: bump the generation, index later."""
        self._bump(conn)
        self._stale = True

    def sql_generation(self) -> int:
        """The memory write generation recorded in SQL (every remember/ingest/forget/update bumps it)."""
        with self.engine.connect() as conn:
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
                if self.index.save(self.sql_generation(), force=force):
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

    # -------------------------------------------------------------------------------- reconcile
    def reconcile(self, *, progress: bool = False, embed: bool = True) -> dict[str, int]:
        """Make the index agree with SQL; returns counts of vectors added, removed and rows embedded.

        Rows written by other tools (``lab.insert``, the sample loader) have no vector yet; ``embed``
        embeds them now (cache first). On open this is deferred to the first search, so opening a lab
        never waits for a model.
        """
        with self._lock, self.index.lock:
            return self._reconcile_locked(progress=progress, save=True, embed=embed)

    def _ensure_fresh(self) -> None:
        if self._stale:
            self.reconcile(progress=self._progress)

    def _reconcile_locked(self, *, progress: bool, save: bool, embed: bool = True) -> dict[str, int]:
        started = time.perf_counter()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(MEM.c.id, MEM.c.memory_type, MEM.c.embedding_key)).all()
        indexed = self.index.keys()
        sql_ids = {r[0] for r in rows}
        stale = [i for i in indexed if i not in sql_ids]
        unkeyed = [r[0] for r in rows if r[2] is None]
        embedded = self._embed_rows(unkeyed, progress=progress) if unkeyed and embed else {}
        self._stale = bool(unkeyed) and not embed
        want: dict[int, tuple[str, str]] = {}
        for mid, mtype, key in rows:
            key = key or embedded.get(mid)
            if key is None:
                continue
            have = indexed.get(mid)
            if have is None or have[0] != mtype or have[1] != key_code(key):
                want[mid] = (mtype, key)
        removed = self.index.remove(stale)
        added = self._add_from_cache(want, progress=progress)
        with self.engine.begin() as conn:
            missing_fts = hybrid.fts_missing(conn)
            for i in range(0, len(missing_fts), 2000):
                ids = missing_fts[i:i + 2000]
                pairs = conn.execute(sa.select(MEM.c.id, MEM.c.content).where(MEM.c.id.in_(ids))).all()
                hybrid.fts_write(conn, [(a, b) for a, b in pairs])
        if save and (self.index.dirty or not (self.directory / "manifest.json").exists()):
            if not self.index.save(self.sql_generation(), force=not (self.directory / "manifest.json").exists()):
                self.index.load()
                return self._reconcile_locked(progress=progress, save=save, embed=embed)
            self._last_save = time.monotonic()
        out = {"added": added, "removed": removed, "embedded": len(embedded), "keyword_rows": len(missing_fts)}
        if any(out.values()):
            log.info("reconciled the vector index with SQL in %.2fs: %s", time.perf_counter() - started, out)
        return out

    def _embed_rows(self, ids: list[int], *, progress: bool) -> dict[int, str]:
        """Embed memory rows that have no embedding key yet (written by other tools); returns id -> key."""
        from tqdm.auto import tqdm

        out: dict[int, str] = {}
        bar = tqdm(total=len(ids), desc="embedding memories", disable=not progress, unit="mem")
        for start in range(0, len(ids), 256):
            chunk = ids[start:start + 256]
            with self.engine.connect() as conn:
                pairs = conn.execute(sa.select(MEM.c.id, MEM.c.content).where(MEM.c.id.in_(chunk))).all()
            texts = [p[1] if p[1] and p[1].strip() else "(empty)" for p in pairs]
            keys, vectors, _stats = embed_texts(self.embedder, self.cache, texts)
            with self.engine.begin() as conn:
                self.cache.put_many(conn, {k: vectors[k] for k in _stats.new_keys})
                for (mid, content), key in zip(pairs, keys):
                    conn.execute(sa.update(MEM).where(MEM.c.id == mid).values(
                        embedding_key=key, content_hash=_safe_hash(content)))
            out.update({p[0]: k for p, k in zip(pairs, keys)})
            bar.update(len(chunk))
        bar.close()
        return out

    def _add_from_cache(self, want: Mapping[int, tuple[str, str]], *, progress: bool) -> int:
        if not want:
            return 0
        keys = {k for _, k in want.values()}
        vectors = self.cache.get_many(keys)
        lacking = keys - set(vectors)
        if lacking:  # cache rows removed by hand: embed the content again
            ids = [mid for mid, (_, k) in want.items() if k in lacking]
            for mid, key in self._embed_rows(ids, progress=progress).items():
                want = {**want, mid: (want[mid][0], key)}
            vectors = self.cache.get_many({k for _, k in want.values()})
        by_type: dict[str, list[int]] = {}
        for mid, (mtype, _k) in want.items():
            by_type.setdefault(mtype, []).append(mid)
        for mtype, ids in by_type.items():
            ids.sort()
            mat = np.vstack([vectors[want[i][1]] for i in ids])
            self.index.add(mtype, np.asarray(ids, dtype=np.int64), mat, [want[i][1] for i in ids])
        return len(want)

    # ----------------------------------------------------------------------------------- writing
    def remember(self, content: str, memory_type: str, *, priority: int = 5, agent_id: str | None = None,
                 session_id: str | None = None, project_id: str | None = None, tags: Iterable[str] = (),
                 metadata: Mapping[str, Any] | None = None, **extra: Any) -> str:
        """Store one memory and return its memory id (a uuid string)."""
        if isinstance(tags, str):
            raise InvalidInput("tags must be a list of strings, not one string")
        row = {"content": content, "memory_type": getattr(memory_type, "value", memory_type),
               "priority": int(getattr(priority, "value", priority)) if priority is not None else None,
               "agent_id": agent_id, "session_id": session_id, "project_id": project_id,
               "tags": list(tags), "metadata": dict(metadata or {}), **extra}
        summary = self.ingest([row], progress=False, dedupe=False)
        return summary["memory_ids"][0]

    def ingest(self, data: Any, *, memory_type: str | None = None, batch_size: int = 1000,
               progress: bool = True, dedupe: bool = True) -> dict[str, Any]:
        """Bulk-add memories; see :meth:`omnilab.Lab.ingest`. Returns a summary dict."""
        from tqdm.auto import tqdm

        started = time.perf_counter()
        summary: dict[str, Any] = {"added": 0, "duplicates": 0, "embedded": 0, "cache_hits": 0,
                                   "precomputed": 0, "seconds": 0.0, "memory_ids": []}
        total = len(data) if hasattr(data, "__len__") and not isinstance(data, (str, Path)) else None
        bar = tqdm(total=total, desc="ingest", unit="mem", disable=not progress)
        seen: set[tuple[str, str]] = set()
        with self._lock:
            try:
                for offset, batch in _numbered(iter_batches(data, batch_size)):
                    self._ingest_batch(batch, offset, memory_type, dedupe, seen, summary)
                    bar.update(len(batch))
            finally:
                bar.close()
                if self.index.dirty:
                    self.save()
        summary["seconds"] = round(time.perf_counter() - started, 3)
        return summary

    def _ingest_batch(self, batch: list[dict[str, Any]], offset: int, memory_type: str | None, dedupe: bool,
                      seen: set[tuple[str, str]], summary: dict[str, Any]) -> None:
        pre: list[np.ndarray | None] = []
        for i, row in enumerate(batch):
            where = f"memory row {offset + i}"
            if memory_type is not None and row.get("memory_type") is None:
                row["memory_type"] = getattr(memory_type, "value", memory_type)
            for internal in ("id", "content_hash", "embedding_key"):
                if row.get(internal) is not None:
                    raise InvalidInput(f"{where}: {internal!r} is assigned by omnilab")
                row.pop(internal, None)
            pre.append(row.pop("embedding", None))
            try:
                row["content_hash"] = hashlib.sha256(collapse(row.get("content")).encode()).hexdigest()
            except InvalidInput as exc:
                raise InvalidInput(f"{where}: content {exc}") from exc
        pre = _check_vectors(pre, self.embedder.dim, offset)
        try:
            rows = fast_memory_rows(batch, MEMORY_TYPES) or validate_rows("memory_entries", batch)
        except InvalidInput as exc:
            raise InvalidInput(str(exc).replace("memory_entries row ", f"memory row {offset}+")) from exc
        # duplicates: a memory_id already stored, or (dedupe) the same type+content already stored/seen
        with self.engine.connect() as conn:
            existing = set()
            ids = [r["memory_id"] for r in rows]
            for s in range(0, len(ids), 500):
                existing.update(conn.execute(sa.select(MEM.c.memory_id).where(MEM.c.memory_id.in_(ids[s:s + 500])))
                                .scalars())
            known: set[tuple[str, str]] = set()
            if dedupe:
                hashes = sorted({r["content_hash"] for r in rows})
                for s in range(0, len(hashes), 500):
                    known.update(conn.execute(sa.select(MEM.c.memory_type, MEM.c.content_hash).where(
                        MEM.c.content_hash.in_(hashes[s:s + 500]))).all())
        keep: list[int] = []
        for i, r in enumerate(rows):
            sig = (r["memory_type"], r["content_hash"])
            if r["memory_id"] in existing or (dedupe and (sig in known or sig in seen)):
                summary["duplicates"] += 1
                continue
            existing.add(r["memory_id"])
            seen.add(sig)
            keep.append(i)
        if not keep:
            return
        rows = [rows[i] for i in keep]
        pre = [pre[i] for i in keep]
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
        for r, k in zip(rows, keys):
            r["embedding_key"] = k
        try:
            with self.engine.begin() as conn:
                check_foreign_keys(conn, "memory_entries", rows)
                self.cache.put_many(conn, new_cache)  # do-nothing on keys already cached
                from omnilab.sql.bulk import bulk_insert

                cols = {c: [r[c] for r in rows] for c in rows[0]}
                # all-NULL columns need no conversion at all (they default to NULL)
                cols = {c: v for c, v in cols.items() if not all(x is None for x in v) or not MEM.c[c].nullable}
                bulk_insert(conn, "memory_entries", cols)
                mids = [r["memory_id"] for r in rows]
                id_of: dict[str, int] = {}
                for s in range(0, len(mids), 500):
                    id_of.update(conn.execute(sa.select(MEM.c.memory_id, MEM.c.id).where(
                        MEM.c.memory_id.in_(mids[s:s + 500]))).all())
                int_ids = [id_of[m] for m in mids]
                hybrid.fts_write(conn, [(i, r["content"]) for i, r in zip(int_ids, rows)], fresh=True)
                self._bump(conn)
        except sa.exc.IntegrityError as exc:
            raise InvalidInput(f"memories violate a constraint, batch not written: {exc.orig}") from exc
        except sa.exc.SQLAlchemyError as exc:
            raise OmnilabError(f"writing memories failed, batch not written: {exc}") from exc
        by_type: dict[str, list[int]] = {}
        for j, r in enumerate(rows):
            by_type.setdefault(r["memory_type"], []).append(j)
        for mtype, js in by_type.items():
            self.index.add(mtype, np.asarray([int_ids[j] for j in js], dtype=np.int64),
                           np.vstack([vectors[keys[j]] for j in js]), [keys[j] for j in js])
        summary["added"] += len(rows)
        summary["memory_ids"].extend(r["memory_id"] for r in rows)

    def forget(self, memory_ids: str | Iterable[str]) -> int:
        """Delete memories by memory id; returns how many existed. Unknown ids are ignored."""
        ids = [memory_ids] if isinstance(memory_ids, str) else list(memory_ids)
        if not all(isinstance(m, str) for m in ids):
            raise InvalidInput("forget takes memory ids (strings)")
        if not ids:
            return 0
        with self._lock:
            int_ids: list[int] = []
            with self.engine.begin() as conn:
                for s in range(0, len(ids), 500):
                    chunk = ids[s:s + 500]
                    int_ids += list(conn.execute(sa.select(MEM.c.id).where(MEM.c.memory_id.in_(chunk))).scalars())
                    conn.execute(sa.delete(MEM).where(MEM.c.memory_id.in_(chunk)))
                if int_ids:
                    self._bump(conn)
            self.index.remove(int_ids)
            if int_ids:
                self._maybe_save()
            return len(int_ids)

    def update(self, memory_id: str, **changes: Any) -> None:
        """Change fields of one memory; new content (or type) re-embeds/re-indexes it."""
        allowed = {"content", "memory_type", "priority", "agent_id", "session_id", "project_id", "tags",
                   "metadata", "expires_at"}
        bad = set(changes) - allowed
        if bad:
            raise InvalidInput(f"cannot update {', '.join(sorted(bad))}; allowed: {', '.join(sorted(allowed))}")
        with self._lock:
            with self.engine.connect() as conn:
                cur = conn.execute(sa.select(MEM).where(MEM.c.memory_id == memory_id)).mappings().one_or_none()
            if cur is None:
                raise NotFound(f"no memory with id {memory_id!r}")
            row = {k: v for k, v in cur.items() if k not in ("id", "content_hash", "embedding_key", "updated_at")}
            row.update({k: getattr(v, "value", v) for k, v in changes.items()})
            clean = validate_rows("memory_entries", [row])[0]
            values = {k: clean[k] for k in changes}
            key, vec = cur["embedding_key"], None
            if "content" in changes:
                values["content_hash"] = hashlib.sha256(collapse(clean["content"]).encode()).hexdigest()
                keys, vecs, _ = embed_texts(self.embedder, self.cache, [clean["content"]])
                key, vec = keys[0], vecs[keys[0]]
                values["embedding_key"] = key
            values["updated_at"] = utcnow()
            with self.engine.begin() as conn:
                check_foreign_keys(conn, "memory_entries", [clean])
                if vec is not None:
                    self.cache.put_many(conn, {key: vec})
                conn.execute(sa.update(MEM).where(MEM.c.id == cur["id"]).values(**values))
                if "content" in changes:
                    hybrid.fts_write(conn, [(cur["id"], clean["content"])])
                self._bump(conn)
            if vec is not None or "memory_type" in changes:
                if vec is None:
                    _, mat = self.index.vectors([cur["id"]])
                    vec = mat[0] if len(mat) else self.cache.get_many([key])[key]
                self.index.add(clean["memory_type"], np.asarray([cur["id"]], dtype=np.int64), vec[None, :], [key])
                self._maybe_save()

    def reindex(self, embedder: str | Embedder | None = None, *, progress: bool = True) -> dict[str, int]:
        """Re-embed every memory with ``embedder`` (default: the current one), record it, rebuild the index."""
        from tqdm.auto import tqdm

        new = create_embedder(embedder) if embedder is not None else self.embedder
        with self._lock:
            cache = EmbeddingCache(self.engine, new.name, new.dim)
            with self.engine.connect() as conn:
                ids = list(conn.execute(sa.select(MEM.c.id).order_by(MEM.c.id)).scalars())
            plan: dict[int, tuple[str, str]] = {}
            embedded = hits = 0
            for s in tqdm(range(0, len(ids), 512), desc=f"reindex ({new.name})", disable=not progress):
                with self.engine.connect() as conn:
                    part = conn.execute(sa.select(MEM.c.id, MEM.c.memory_type, MEM.c.content).where(
                        MEM.c.id.in_(ids[s:s + 512]))).all()
                keys, vecs, stats = embed_texts(new, cache, [p[2] for p in part])
                embedded, hits = embedded + stats.embedded, hits + stats.cache_hits
                with self.engine.begin() as conn:
                    cache.put_many(conn, {k: vecs[k] for k in stats.new_keys})
                    for (mid, mtype, _c), k in zip(part, keys):
                        conn.execute(sa.update(MEM).where(MEM.c.id == mid).values(embedding_key=k))
                        plan[mid] = (mtype, k)
            with self.engine.begin() as conn:
                self._set_meta("embedder", {"name": new.name, "spec": new.spec, "dim": new.dim}, conn=conn)
                self._bump(conn)
            self.embedder = new
            with self.index.lock:
                old_gen = self.index.disk_generation() if self._manifest_readable() else 0
                self.cache = cache
                self.index = VectorIndex(self.directory, dim=new.dim, embedder=new.name, kind=self.index_kind)
                self.index.generation = old_gen
                self._add_from_cache(plan, progress=False)
                self.index.save(self.sql_generation(), force=True)
            self._query_cache.clear()
            return {"memories": len(ids), "embedded": embedded, "cache_hits": hits}

    def add_filter_index(self, key: str) -> str:
        """Index ``metadata.<key>`` so equality filters on it are index lookups; returns the index name.

        Worth it for selective filters on large labs (the filter then costs well under a millisecond).
        Idempotent. Alembic's schema comparison ignores these indexes.
        """
        from omnilab.vectors.filters import json_path_expr
        from omnilab.vectors.models import FILTER_INDEX_PREFIX

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
        with self.engine.connect() as conn:
            cached = conn.execute(sa.select(sa.func.count()).select_from(embedding_cache)).scalar_one()
        return {"embedder": self.embedder.name, "dim": self.embedder.dim, "index": self.index_kind,
                "vectors": len(self.index), "per_type": self.index.counts(), "generation": self.generation,
                "cached_embeddings": int(cached)}


def _check_vectors(values: list[Any], dim: int, offset: int) -> list[np.ndarray | None]:
    """Precomputed embeddings checked (dimension, finite, non-zero) and normalized; None where absent."""
    if values and all(isinstance(v, np.ndarray) and v.shape == (dim,) for v in values):
        mat = np.vstack(values).astype(np.float32, copy=False)  # the common case, checked at once
        norms = np.linalg.norm(mat, axis=1)
        bad = ~np.isfinite(mat).all(axis=1) | (norms == 0)
        if not bad.any():
            return list(mat / norms[:, None])
    return [None if v is None else check_vector(v, dim, f"memory row {offset + i}") for i, v in enumerate(values)]


def _numbered(batches: Iterable[list[dict[str, Any]]]) -> Iterable[tuple[int, list[dict[str, Any]]]]:
    offset = 0
    for b in batches:
        yield offset, b
        offset += len(b)


def _safe_hash(content: str | None) -> str | None:
    try:
        return hashlib.sha256(collapse(content or "").encode()).hexdigest()
    except InvalidInput:
        return None

