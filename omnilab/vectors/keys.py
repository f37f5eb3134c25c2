"""omnilab's key rows (``memory_vectors``), how they follow the platform's ``memory_entries``, and how the
FAISS index reconciles itself with them.

``memory_entries.id`` is the platform's string id; ``memory_vectors`` maps it to the integer id that FAISS
and the SQLite keyword index use (monotonic, never reused), with the row's type, content hash and
embedding-cache key. omnilab's own writes keep both tables in step in one transaction. Rows written by
others (``lab.insert``, the sample loader, the platform itself) are picked up by :meth:`KeyRows.sync_keys`:

* a *fingerprint* of memory_entries (row count, newest ``created_at``, newest ``updated_at``) is kept in
  ``lab_meta``; rows stamped at or after the recorded one are compared by content hash (new rows get key
  rows, changed content is re-embedded), and when the row count then differs from the key-row count, a
  full id comparison drops the key rows of vanished memories;
* on an attached platform (``follow``), every read first asks the database whether anything was committed
  at all (SQLite ``PRAGMA data_version`` on a dedicated connection, PostgreSQL's transaction snapshot —
  both microseconds) and only then computes the fingerprint.

The platform and omnilab's own tables may live in two databases (read-only attach): queries never join
across them; ids are carried from one to the other.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from omnilab.errors import InvalidInput
from omnilab.sql.own_tables import memory_vectors
from omnilab.sql.schema import TABLES
from omnilab.sql.watch import CommitWatch
from omnilab.vectors import hybrid
from omnilab.vectors.cache import EmbeddingCache, embed_texts
from omnilab.vectors.embedders import Embedder, collapse
from omnilab.vectors.index import MANIFEST, VectorIndex, key_code
from omnilab.vectors.meta import LabMeta, log_changes

__all__ = ["KeyRows", "content_hash", "stored_content_hash", "insert_keys", "chunks", "MV"]

log = logging.getLogger(__name__)

MEM = TABLES["memory_entries"]
MV = memory_vectors
_CHUNK = 500  # ids per IN (...) list
_RAW = sa.types.NullType()  # results as the driver returns them (timestamps stay text on SQLite)


def content_hash(content: Any) -> str:
    """sha256 of the whitespace-collapsed content: how duplicates and changed content are recognized.

    ``InvalidInput`` for content omnilab refuses (not text, empty, lone surrogates)."""
    return hashlib.sha256(collapse(content).encode()).hexdigest()


def stored_content_hash(content: Any) -> str | None:
    """:func:`content_hash` of content already stored, where anything may be (None where omnilab would refuse it)."""
    try:
        return content_hash(content or "")
    except InvalidInput:
        return None


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def insert_keys(conn: sa.Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert key rows (memory_id, memory_type, content_hash, embedding_key); returns memory id -> vector id.

    One statement for all rows (a JSON array unpacked by SQLite's ``json_each``, arrays unpacked by
    PostgreSQL's ``unnest``); a row whose memory id already has a key row (a concurrent sync of the same
    lab added it first) keeps the existing one, whose vector id is returned.
    """
    if not rows:
        return {}
    cols = ("memory_id", "memory_type", "content_hash", "embedding_key")
    values = [[r.get(c) for c in cols] for r in rows]
    if conn.dialect.name == "sqlite":
        got = conn.exec_driver_sql(
            "INSERT INTO memory_vectors (memory_id, memory_type, content_hash, embedding_key) "
            "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
            "json_extract(value, '$[3]') FROM json_each(?) WHERE true "
            "ON CONFLICT (memory_id) DO NOTHING RETURNING memory_id, id",
            (json.dumps(values),),
        )
    else:  # PostgreSQL (omnilab's own tables live in SQLite or PostgreSQL)
        got = conn.exec_driver_sql(
            "INSERT INTO memory_vectors (memory_id, memory_type, content_hash, embedding_key) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) "
            "ON CONFLICT (memory_id) DO NOTHING RETURNING memory_id, id",
            tuple(list(c) for c in zip(*values)),
        )
    out = {m: int(i) for m, i in got}
    missing = [r["memory_id"] for r in rows if r["memory_id"] not in out]
    for part in chunks(missing):
        out.update(conn.execute(sa.select(MV.c.memory_id, MV.c.id).where(MV.c.memory_id.in_(part))).all())
    return out


def _since(col: sa.Column, raw: Any, pg: bool) -> sa.ColumnElement:
    """``col >= raw`` for a value the fingerprint read raw.

    SQLite holds timestamps as text in more than one format ('YYYY-MM-DD HH:MM:SS' from CURRENT_TIMESTAMP,
    with '.ffffff' from Python): compared to the second, inclusive, so a row stamped in the same second as
    the last look is checked again (by content hash; cheap) rather than missed.
    """
    if pg:
        return col >= sa.cast(sa.literal(raw, sa.Text), sa.DateTime(timezone=True))

    def second(x: Any) -> sa.ColumnElement:
        return sa.func.replace(sa.func.substr(x, 1, 19), "T", " ")

    return second(sa.type_coerce(col, sa.Text)) >= second(sa.literal(str(raw), sa.Text))


class KeyRows:
    """The key rows of a :class:`~omnilab.vectors.memory.MemoryStore`: id lookups, following memory_entries,
    reconciling the index with them. Built by the store, which passes everything it uses.

    ``engine``: the platform's tables (memory_entries); ``own``: omnilab's (memory_vectors, keyword rows);
    ``meta``: lab_meta (the fingerprint, the write generation); ``embedder``, ``cache`` (embedding cache) and
    ``index``: the store's vector side (swapped together by :meth:`use`); ``lock``: the store's lock;
    ``follow``: check for writes by others on every read; ``progress``: progress bars while catching up;
    ``saved`` is called after this object saved the index, ``maybe_save`` saves it when a save is due.
    """

    def __init__(
        self,
        *,
        engine: sa.Engine,
        own: sa.Engine,
        meta: LabMeta,
        embedder: Embedder,
        cache: EmbeddingCache,
        index: VectorIndex,
        lock: threading.RLock,
        follow: bool,
        progress: bool,
        saved: Callable[[], None],
        maybe_save: Callable[[], None],
    ) -> None:
        self.engine = engine
        self.own = own
        self.meta = meta
        self.embedder = embedder
        self.cache = cache
        self.index = index
        self.follow = follow
        self._lock = lock
        self._progress = progress
        self._saved = saved
        self._maybe_save = maybe_save
        #: rows were written behind the index's back (by others, or by a write whose end was lost):
        #: the next read reconciles first
        self.stale = False
        self._keymap: dict[str, tuple[int, str]] | None = None
        self._watch: CommitWatch | None = None  # commits to the platform's database
        self._token: Any = None  # the platform's commit token at the last look
        self.synced_seq = 0  # the generation the last sync_keys bumped to

    def use(self, embedder: Embedder, cache: EmbeddingCache, index: VectorIndex) -> None:
        """Work with another embedder, embedding cache and index (during a re-index)."""
        self.embedder, self.cache, self.index = embedder, cache, index

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    # ---------------------------------------------------------------------------------- lookups
    def vector_ids_for(self, memory_ids: Iterable[str]) -> dict[str, int]:
        """memory id -> vector id (the FAISS id) for the memories that have a key row."""
        ids = list(dict.fromkeys(memory_ids))
        out: dict[str, int] = {}
        with self.own.connect() as conn:
            for part in chunks(ids):
                out.update(conn.execute(sa.select(MV.c.memory_id, MV.c.id).where(MV.c.memory_id.in_(part))).all())
        return out

    def memory_ids_for(self, vector_ids: Iterable[int]) -> dict[int, str]:
        """vector id -> memory id."""
        ids = [int(i) for i in dict.fromkeys(vector_ids)]
        out: dict[int, str] = {}
        with self.own.connect() as conn:
            for part in chunks(ids):
                out.update(conn.execute(sa.select(MV.c.id, MV.c.memory_id).where(MV.c.id.in_(part))).all())
        return out

    def key_map(self) -> dict[str, tuple[int, str]]:
        """memory id -> (vector id, memory type) of every key row, kept in memory (two-database labs only)."""
        if self._keymap is None:
            with self.own.connect() as conn:
                self._keymap = {
                    m: (int(i), t) for i, m, t in conn.execute(sa.select(MV.c.id, MV.c.memory_id, MV.c.memory_type))
                }
        return self._keymap

    # ------------------------------------------------------------------------------- freshness
    def _platform_token(self) -> Any:
        """Changes whenever anything was committed to the platform's database (a cheap gate)."""
        if self._watch is None:
            self._watch = CommitWatch(self.engine)
        return self._watch.token()

    def _fingerprint(self) -> list[Any]:
        """What changes when memory_entries changes: [rows, newest created_at, newest updated_at, total content
        length, sum of updated_at seconds] (JSON-ready; one scan of the table)."""
        pg = self.engine.dialect.name == "postgresql"
        cols: list[sa.ColumnElement[Any]]
        if pg:
            cols = [
                sa.func.count(),
                sa.cast(sa.func.max(MEM.c.created_at), sa.Text),
                sa.cast(sa.func.max(MEM.c.updated_at), sa.Text),
                sa.func.sum(sa.func.length(MEM.c.content)),
                sa.cast(sa.func.sum(sa.extract("epoch", MEM.c.updated_at)), sa.Text),
            ]
        else:  # timestamps are text there, possibly in several formats: read raw
            cols = [
                sa.func.count(),
                sa.func.max(MEM.c.created_at, type_=_RAW),
                sa.func.max(MEM.c.updated_at, type_=_RAW),
                sa.func.sum(sa.func.length(MEM.c.content)),
                sa.func.sum(sa.cast(sa.func.strftime("%s", sa.type_coerce(MEM.c.updated_at, sa.Text)), sa.Integer)),
            ]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*cols).select_from(MEM)).one()
        return [int(row[0]), row[1], row[2], int(row[3] or 0), row[4]]

    def check_platform(self) -> None:
        """Follow writes made by others (attached labs): reconcile when memory_entries changed."""
        if not self.follow:
            self.ensure_fresh()
            return
        token = self._platform_token()
        if token == self._token and not self.stale:
            return
        with self._lock, self.index.lock:
            fp = self._fingerprint()
            if self.stale:  # first look in this process: everything, keyword rows repaired, saved
                self.reconcile_locked(progress=self._progress, save=True, fp=fp)
            elif fp != self.meta.get("memory_fingerprint"):  # a few rows changed: saved as writes are
                self.reconcile_locked(progress=self._progress, save=False, fp=fp, repair=False)
                self._maybe_save()
            self._token = token

    # ------------------------------------------------------------------------------------ sync
    def sync_keys(self, fp: list[Any] | None = None) -> dict[str, int]:
        """Make memory_vectors (and the SQLite keyword rows) agree with memory_entries; returns counts.

        Key rows of vanished memories are deleted (their keyword rows go by trigger), new memories get key
        rows without an embedding key (embedded by the caller), changed content clears the embedding key.
        """
        pg = self.engine.dialect.name == "postgresql"
        fp = fp or self._fingerprint()  # before reading rows: a row committed in between is seen next time
        last = self.meta.get("memory_fingerprint")
        out = {"new_keys": 0, "changed": 0, "dropped": 0}
        if fp == last:
            return out
        everything = sa.select(MEM.c.id, MEM.c.memory_type, MEM.c.content)
        stmt = everything
        usable = isinstance(last, list) and len(last) == len(fp) and (last[1] is not None or last[2] is not None)
        if usable:  # only rows stamped since the last look can be new or changed (for the rest: see below)
            stmt = stmt.where(
                sa.or_(
                    *[
                        _since(c, v, pg)
                        for c, v in ((MEM.c.created_at, last[1]), (MEM.c.updated_at, last[2]))
                        if v is not None
                    ]
                )
            )
        seen = self._sync_select(stmt, out)
        with self.own.connect() as conn:
            n_keys = conn.execute(sa.select(sa.func.count()).select_from(MV)).scalar_one()
        if n_keys != fp[0]:  # deletions (or rows without timestamps): compare every id
            out["dropped"], extra = self._sync_ids()
            out["new_keys"] += extra
        elif usable and not seen:  # changed without a new timestamp: compare every content hash
            self._sync_select(everything, out)
        with self.own.begin() as conn:
            self.meta.set("memory_fingerprint", fp, conn=conn)
            if any(out.values()) or self.follow:
                # memory rows changed behind omnilab's back: cached searches are stale
                self.synced_seq = self.meta.bump(conn)
                if any(out.values()):  # labs in other directories compare everything
                    log_changes(conn, self.synced_seq, "resync")
        if any(out.values()):
            self._keymap = None
        return out

    def forget_key_map(self) -> None:
        """Key rows changed: the in-memory key map is read again when next needed."""
        self._keymap = None

    def _sync_select(self, stmt: sa.Select, out: dict[str, int]) -> int:
        """Run _sync_rows over the (id, memory_type, content) rows of ``stmt``; returns how many were read."""
        seen = 0
        with self.engine.connect() as conn:
            for part in conn.execution_options(yield_per=2000).execute(stmt).partitions(2000):
                new, changed = self._sync_rows(part)
                out["new_keys"] += new
                out["changed"] += changed
                seen += len(part)
        return seen

    def _sync_rows(self, rows: Sequence[Any]) -> tuple[int, int]:
        """Key rows for memory rows read from memory_entries (id, memory_type, content): (added, changed)."""
        with self.own.begin() as conn:
            have = {}
            for part in chunks([r[0] for r in rows]):
                have.update(
                    {
                        m: (i, t, h)
                        for i, m, t, h in conn.execute(
                            sa.select(MV.c.id, MV.c.memory_id, MV.c.memory_type, MV.c.content_hash).where(
                                MV.c.memory_id.in_(part)
                            )
                        )
                    }
                )
            new, fts = [], []
            changed = 0
            for mid, mtype, content in rows:
                h = stored_content_hash(content)
                cur = have.get(mid)
                if cur is None:
                    new.append(
                        {
                            "memory_id": mid,
                            "memory_type": mtype,
                            "content_hash": h,
                            "embedding_key": None,
                            "_content": content,
                        }
                    )
                elif cur[2] != h or cur[1] != mtype:
                    values: dict[str, Any] = {"memory_type": mtype}
                    if cur[2] != h:
                        values.update(content_hash=h, embedding_key=None)  # re-embedded by the caller
                        fts.append((cur[0], content or ""))
                    conn.execute(sa.update(MV).where(MV.c.id == cur[0]).values(**values))
                    changed += 1
            ids = insert_keys(conn, [{k: v for k, v in r.items() if k != "_content"} for r in new])
            hybrid.fts_write(conn, fts)
            hybrid.fts_write(conn, [(ids[r["memory_id"]], r["_content"] or "") for r in new], fresh=True)
        return len(new), changed

    def _sync_ids(self) -> tuple[int, int]:
        """Full id comparison: drop key rows of vanished memories, add those of unkeyed ones."""
        with self.engine.connect() as conn:
            live = set(conn.execute(sa.select(MEM.c.id)).scalars())
        with self.own.connect() as conn:
            keys = dict(conn.execute(sa.select(MV.c.memory_id, MV.c.id)).all())
        gone = [i for m, i in keys.items() if m not in live]
        with self.own.begin() as conn:
            for part in chunks(gone):
                conn.execute(sa.delete(MV).where(MV.c.id.in_(part)))
        missing = [m for m in live if m not in keys]
        added = 0
        for part in chunks(missing, 2000):
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(MEM.c.id, MEM.c.memory_type, MEM.c.content).where(MEM.c.id.in_(part))
                ).all()
            added += self._sync_rows(rows)[0]
        return len(gone), added

    def contents(self, memory_ids: Sequence[str]) -> dict[str, str]:
        """memory id -> content, read from memory_entries."""
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            for part in chunks(list(memory_ids)):
                out.update(conn.execute(sa.select(MEM.c.id, MEM.c.content).where(MEM.c.id.in_(part))).all())
        return out

    # -------------------------------------------------------------------------------- reconcile
    def reconcile(self, *, progress: bool = False, embed: bool = True) -> dict[str, int]:
        """Make the key rows agree with memory_entries and the index with the key rows; returns counts.

        Rows written by other tools (``lab.insert``, the sample loader, the platform) have no vector yet;
        ``embed`` embeds them now (cache first). On open this is deferred to the first search, so opening
        a lab never waits for a model.
        """
        with self._lock, self.index.lock:
            return self.reconcile_locked(progress=progress, save=True, embed=embed)

    def ensure_fresh(self) -> None:
        if self.stale:
            self.reconcile(progress=self._progress)

    def reconcile_locked(
        self, *, progress: bool, save: bool, embed: bool = True, fp: list[Any] | None = None, repair: bool = True
    ) -> dict[str, int]:
        """``fp``: the fingerprint just taken; ``repair``: also look for missing keyword rows (a full scan)."""
        started = time.perf_counter()
        gen = self.meta.generation()  # everything committed up to here is reflected when this returns
        synced = self.sync_keys(fp)
        if self.synced_seq == gen + 1:  # the sync's own bump: reflected too
            gen = self.synced_seq
        with self.own.connect() as conn:
            rows = conn.execute(sa.select(MV.c.id, MV.c.memory_type, MV.c.embedding_key)).all()
        indexed = self.index.keys()
        live = {r[0] for r in rows}
        stale = [i for i in indexed if i not in live]
        unkeyed = [r[0] for r in rows if r[2] is None]
        embedded = self._embed_rows(unkeyed, progress=progress) if unkeyed and embed else {}
        self.stale = bool(unkeyed) and not embed
        want: dict[int, tuple[str, str]] = {}
        for vid, mtype, key in rows:
            key = key or embedded.get(vid)
            if key is None:
                continue
            have = indexed.get(vid)
            if have is None or have[0] != mtype or have[1] != key_code(key):
                want[vid] = (mtype, key)
        removed = self.index.remove(stale)
        added = self.add_from_cache(want, progress=progress)
        self.index.applied_seq = max(self.index.applied_seq, gen)
        missing_fts: list[tuple[int, str]] = []
        if repair:  # SQLite and PostgreSQL keyword rows (fts_missing: none elsewhere)
            with self.own.begin() as conn:
                missing_fts = hybrid.fts_missing(conn)
            for part in chunks(missing_fts, 2000):
                contents = self.contents([m for _, m in part])
                with self.own.begin() as conn:
                    hybrid.fts_write(conn, [(v, contents[m]) for v, m in part if m in contents])
        if save and (self.index.dirty or not (self.index.dir / MANIFEST).exists()):
            if not self.index.save(self.meta.generation(), force=not (self.index.dir / MANIFEST).exists()):
                self.index.load()
                return self.reconcile_locked(progress=progress, save=save, embed=embed)
            self._saved()
        out = {
            "added": added,
            "removed": removed,
            "embedded": len(embedded),
            "keyword_rows": len(missing_fts),
            **synced,
        }
        if any(out.values()):
            log.info("reconciled the vector index with SQL in %.2fs: %s", time.perf_counter() - started, out)
        return out

    def _embed_rows(self, ids: list[int], *, progress: bool) -> dict[int, str]:
        """Embed memories whose key row has no embedding key yet (cache first); returns vector id -> key."""
        from tqdm.auto import tqdm

        out: dict[int, str] = {}
        bar = tqdm(total=len(ids), desc="embedding memories", disable=not progress, unit="mem")
        set_key = (
            sa.update(MV)
            .where(MV.c.id == sa.bindparam("vid"))
            .values(embedding_key=sa.bindparam("key"), content_hash=sa.bindparam("hash"))
        )
        for chunk in chunks(ids, 1024):
            with self.own.connect() as conn:
                mids = dict(conn.execute(sa.select(MV.c.id, MV.c.memory_id).where(MV.c.id.in_(chunk))).all())
            contents = self.contents(list(mids.values()))
            pairs = [(vid, contents[m]) for vid, m in mids.items() if m in contents]
            texts = [c if c and c.strip() else "(empty)" for _, c in pairs]
            keys, vectors, stats = embed_texts(self.embedder, self.cache, texts)
            with self.own.begin() as conn:
                self.cache.put_many(conn, {k: vectors[k] for k in stats.new_keys})
                if pairs:  # one executemany: per-row statements cost more than the embedding itself
                    conn.execute(
                        set_key,
                        [
                            {"vid": vid, "key": key, "hash": stored_content_hash(content)}
                            for (vid, content), key in zip(pairs, keys)
                        ],
                    )
            out.update({p[0]: k for p, k in zip(pairs, keys)})
            bar.update(len(chunk))
        bar.close()
        return out

    def add_from_cache(self, want: Mapping[int, tuple[str, str]], *, progress: bool) -> int:
        if not want:
            return 0
        keys = {k for _, k in want.values()}
        vectors = self.cache.get_many(keys)
        lacking = keys - set(vectors)
        if lacking:  # cache rows removed by hand: embed the content again
            ids = [vid for vid, (_, k) in want.items() if k in lacking]
            fresh = self._embed_rows(ids, progress=progress)
            want = {**want, **{vid: (want[vid][0], key) for vid, key in fresh.items()}}
            vectors = self.cache.get_many({k for _, k in want.values()})
        by_type: dict[str, list[int]] = {}
        for vid, (mtype, _k) in want.items():
            by_type.setdefault(mtype, []).append(vid)
        for mtype, ids in by_type.items():
            ids.sort()
            mat = np.vstack([vectors[want[i][1]] for i in ids])
            self.index.add(mtype, np.asarray(ids, dtype=np.int64), mat, [want[i][1] for i in ids])
        return len(want)
