"""The memory change log (``memory_changes``): how labs in other directories on one database follow writes.

Every memory write logs one row per memory it added, updated or deleted — ``seq`` is the write generation
bumped in the same transaction (``LabMeta.bump``), so seq order is commit order: the bump's row lock
serializes writers until they commit. Rows written by other code (``lab.insert``, the sample loader, key rows
a sync added) log one ``"resync"`` row instead. Each index records the seq it has applied (saved in its
manifest); before a search the lab reads the generation (one indexed lookup) and, when it moved, applies
only the logged changes since: deletes drop vectors, adds and updates take the vector from the shared
embedding cache (never embedded again). A ``"resync"`` row, or an applied seq older than the compaction
horizon (lab_meta ``memory_changes_compacted_through``), falls back to the full reconcile.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from omnilab.sql.engine import insert_on_conflict
from omnilab.sql.own_tables import lab_meta, memory_changes
from omnilab.sql.types import utcnow
from omnilab.vectors.index import key_code
from omnilab.vectors.keys import MV, KeyRows, chunks
from omnilab.vectors.meta import LabMeta

__all__ = ["ChangeLog", "CatchUp", "HORIZON", "KEEP_SECONDS"]

log = logging.getLogger(__name__)

MC = memory_changes
#: lab_meta key: change rows with seq at or below its counter have been deleted
HORIZON = "memory_changes_compacted_through"
#: how long change rows are kept by default (a lab idle for longer reconciles in full once)
KEEP_SECONDS = 7 * 24 * 3600.0
_COMPACT_EVERY = 3600.0  # opportunistic compaction (on close) at most hourly


@dataclass
class CatchUp:
    """What the last catch-up did: changes read, vectors added and removed, whether it reconciled in full."""

    changes: int = 0
    added: int = 0
    removed: int = 0
    full: bool = False


def _counter(conn: sa.Connection, key: str) -> int:
    return int(conn.execute(sa.select(lab_meta.c.counter).where(lab_meta.c.key == key)).scalar_one_or_none() or 0)


class ChangeLog:
    """Applies the change log to a store's index (``keys.index``, swapped with it on a re-index).

    ``own``: the database of omnilab's own tables; ``meta``: its lab_meta; ``keys``: the store's key rows
    (full reconcile, adding vectors from the embedding cache); ``lock``: the store's lock.
    """

    def __init__(
        self,
        *,
        own: sa.Engine,
        meta: LabMeta,
        keys: KeyRows,
        lock: threading.RLock,
        listener: Callable[[int, Sequence[Any], int, int], None] | None = None,
    ) -> None:
        self.own = own
        self.meta = meta
        self.keys = keys
        self._lock = lock
        #: told (applied seq, change rows read after it, horizon, generation) whenever rows are read
        self.listener = listener
        self.last = CatchUp()

    def applied(self, seq: int) -> None:
        """This process applied its own write ``seq`` to the index: the next seq, when nothing is in between."""
        index = self.keys.index
        if index.applied_seq == seq - 1:
            index.applied_seq = seq

    def catch_up(self) -> int:
        """Bring the index up to the SQL generation; returns that generation (one lookup when nothing changed)."""
        gen = self.meta.generation()
        if gen <= self.keys.index.applied_seq:
            return gen
        with self._lock:
            applied = self.keys.index.applied_seq
            if gen <= applied:  # another thread caught up meanwhile
                return gen
            with self.own.connect() as conn:
                # changes first, then the horizon: a compaction committed in between shows in the horizon
                rows = conn.execute(
                    sa.select(MC.c.seq, MC.c.vector_id, MC.c.op).where(MC.c.seq > applied).order_by(MC.c.seq, MC.c.id)
                ).all()
                horizon = _counter(conn, HORIZON)
            if self.listener is not None:
                self.listener(applied, rows, horizon, gen)
            if applied < horizon or any(op == "resync" for _, _, op in rows):
                self.last = CatchUp(changes=len(rows), full=True)
                self.keys.reconcile(progress=False)  # records the generation it read as applied
            else:
                self._apply(rows)
            index = self.keys.index
            index.applied_seq = max(index.applied_seq, gen, max((r[0] for r in rows), default=0))
        return gen

    def _apply(self, rows: Sequence[sa.Row[int, int | None, str]]) -> None:
        """Apply change rows: the last op per vector decides; live ones are read from the key rows."""
        last: dict[int, str] = {}
        for _seq, vid, op in rows:
            if vid is not None:
                last[int(vid)] = op
        index = self.keys.index
        live = [v for v, op in last.items() if op != "delete"]
        found: dict[int, tuple[str, str | None]] = {}
        with self.own.connect() as conn:
            for part in chunks(live):
                found.update(
                    (int(i), (t, k))
                    for i, t, k in conn.execute(
                        sa.select(MV.c.id, MV.c.memory_type, MV.c.embedding_key).where(MV.c.id.in_(part))
                    )
                )
        indexed = {v: index.where.get(v) for v in last}
        want: dict[int, tuple[str, str]] = {}
        for vid, (mtype, key) in found.items():
            if key is None:  # not embedded yet (a sync added it): the reconcile embeds it
                self.keys.stale = True
            elif indexed[vid] != mtype or index.types[mtype].keys.get(vid) != key_code(key):
                want[vid] = (mtype, key)
        gone = [v for v in last if v not in found and indexed[v] is not None]
        removed = index.remove(gone)
        added = self.keys.add_from_cache(want, progress=False)
        if removed or added:
            self.keys.forget_key_map()
        self.last = CatchUp(changes=len(rows), added=added, removed=removed)
        log.debug("applied %d logged memory changes: %s", len(rows), self.last)

    def compact(self, keep_seconds: float = KEEP_SECONDS) -> int:
        """Delete change rows older than ``keep_seconds`` and raise the horizon past them, in one transaction;
        returns how many rows were deleted. A lab whose index is behind the horizon reconciles in full."""
        cutoff = utcnow() - dt.timedelta(seconds=float(keep_seconds))
        with self.own.begin() as conn:
            through = conn.execute(sa.select(sa.func.max(MC.c.seq)).where(MC.c.changed_at < cutoff)).scalar()
            deleted = 0
            if through is not None:
                deleted = conn.execute(sa.delete(MC).where(MC.c.seq <= int(through))).rowcount
            new = int(through or 0)
            ins = insert_on_conflict(conn, lab_meta).values(key=HORIZON, value=None, counter=new, updated_at=utcnow())
            conn.execute(  # the horizon only rises (a concurrent compaction may have raised it further)
                ins.on_conflict_do_update(
                    index_elements=["key"],
                    set_={
                        "counter": sa.case((lab_meta.c.counter < new, new), else_=lab_meta.c.counter),
                        "updated_at": utcnow(),
                    },
                )
            )
        if deleted:
            log.info("compacted the memory change log: %d rows through seq %d", deleted, new)
        return int(deleted)

    def maybe_compact(self) -> None:
        """Compact with the default retention when the last compaction is over an hour old."""
        with self.own.connect() as conn:
            at = conn.execute(sa.select(lab_meta.c.updated_at).where(lab_meta.c.key == HORIZON)).scalar_one_or_none()
        if at is None or (utcnow() - at).total_seconds() >= _COMPACT_EVERY:
            self.compact()
