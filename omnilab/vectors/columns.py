"""In-memory columns of a lab's live memories: what ``where`` filters and result rows need, without SQL.

One row per key row (``memory_vectors`` joined to ``memory_entries``), in append order: the vector id, the
index's memory type, the text fields (memory_id, memory_type, content, agent_id, tags, metadata, session_id,
project_id) in one object matrix, priority, and the timestamps as int64
microseconds. A filter is evaluated over these arrays (:mod:`omnilab.vectors.masks`) and the matching ids go
to FAISS as candidates; result frames are built from the same arrays in one step.

Kept exactly in step with SQL through the memory change log: :meth:`MemoryColumns.follow` is given the write
generation before every search and, when it moved past the seq this copy reflects, reads the change rows
since then and reloads the rows of the vector ids they name (a deleted one is marked dead); a ``"resync"``
row, a seq behind the compaction horizon or a large change set reloads everything. ``access_count`` and
``last_accessed`` change without a logged change (the access log), so they are not held here: a filter
naming them is answered by SQL.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from omnilab.sql.own_tables import lab_meta, memory_changes, memory_vectors
from omnilab.sql.schema import TABLES
from omnilab.vectors.changes import HORIZON
from omnilab.vectors.keys import chunks

__all__ = ["MemoryColumns", "FIELDS", "HELD_COLUMNS", "NAT", "RESULT_COLUMNS", "micros", "now_micros", "result_frame"]

log = logging.getLogger(__name__)

MEM = TABLES["memory_entries"]
MV = memory_vectors
MC = memory_changes
#: rows of the object matrix, in this order
FIELDS = ("memory_id", "memory_type", "content", "agent_id", "tags", "metadata", "session_id", "project_id")
_ROW = {name: i for i, name in enumerate(FIELDS)}
#: memory_entries columns a filter may name that are held here (the rest go to SQL)
HELD_COLUMNS = frozenset(
    "id memory_type content agent_id session_id project_id priority created_at updated_at expires_at".split()
)
#: int64 microseconds of a missing timestamp (numpy's NaT)
NAT = np.iinfo(np.int64).min
_RELOAD_SHARE = 0.2  # more changed rows than this share of all rows: reload everything


def micros(values: Sequence[Any]) -> np.ndarray:
    """Aware datetimes (None allowed) as int64 microseconds since the epoch; None -> :data:`NAT`."""
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    idx = pd.DatetimeIndex(pd.to_datetime(pd.Series(list(values), dtype=object), utc=True))
    return np.asarray(idx.as_unit("us").asi8, dtype=np.int64)


class MemoryColumns:
    """The live memories' filterable fields and result rows, in memory (see the module docstring).

    ``engine``: the database holding memory_entries, memory_vectors and the change log (one database).
    Not thread-safe by itself: the memory store calls it under its lock. Arrays are valid up to ``n``.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.pg = engine.dialect.name == "postgresql"
        self.loaded = False
        self.applied = -1  # the write generation this copy reflects
        self.loads = 0  # full loads so far (tests and benchmarks look at it)
        self._clear()

    def _clear(self) -> None:
        self.n = 0
        self.vid = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.itype = np.zeros(0, dtype=np.int16)  # code of the index's memory type (memory_vectors)
        self.obj = np.empty((len(FIELDS), 0), dtype=object)
        self.priority = np.zeros(0, dtype=np.int64)
        self.priority_null = np.zeros(0, dtype=bool)
        self.created = np.zeros(0, dtype=np.int64)
        self.updated = np.zeros(0, dtype=np.int64)
        self.expires = np.zeros(0, dtype=np.int64)
        self.type_names: list[str] = []
        self._type_code: dict[str, int] = {}
        self.pos: dict[int, int] = {}  # vector id -> position of its live row
        self.dead = 0
        self.expiring = 0  # live rows with an expires_at (0: nothing can expire, no check needed)
        self.derived: dict[Any, Any] = {}  # encodings built by omnilab.vectors.masks, extended as rows arrive

    # ------------------------------------------------------------------------------------ following
    def follow(self, generation: int) -> None:
        """Reflect SQL as of ``generation`` (the write generation just read): a no-op when it did not move."""
        if self.loaded and generation <= self.applied:
            return
        if not self.loaded:
            self.load(generation)
            return
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(MC.c.seq, MC.c.vector_id, MC.c.op).where(MC.c.seq > self.applied).order_by(MC.c.seq)
            ).all()
            horizon = conn.execute(sa.select(lab_meta.c.counter).where(lab_meta.c.key == HORIZON)).scalar_one_or_none()
        self._apply(rows, int(horizon or 0), generation)
        if not self.loaded:  # a resync, or too much changed
            self.load(generation)

    def changes_read(self, since: int, rows: Sequence[Sequence[Any]], horizon: int, generation: int) -> None:
        """The change log rows after seq ``since`` were just read (by the index's catch-up, in the same lock):
        apply them too when this copy is at ``since``, saving a second read."""
        if self.loaded and self.applied == since:
            self._apply(rows, horizon, generation)

    def _apply(self, rows: Sequence[Sequence[Any]], horizon: int, generation: int) -> None:
        """Apply change rows (seq, vector id, op) after ``self.applied``: the last op per vector decides."""
        last = {int(vid): op for _seq, vid, op in rows if vid is not None}
        resync = any(op == "resync" for _, _, op in rows)
        if resync or self.applied < horizon or len(last) > max(5000, _RELOAD_SHARE * self.n):
            self.loaded = False  # read in full when next needed
            return
        self._kill(list(last))
        live = [v for v, op in last.items() if op != "delete"]
        with self.engine.connect() as conn:
            for part in chunks(live):
                self._append(conn.execute(self._select().where(MV.c.id.in_(part))).all())
        self.applied = max(generation, max((int(r[0]) for r in rows), default=generation))
        self._maybe_compact()

    def invalidate(self) -> None:
        """Read everything again on the next search (after writes omnilab was not told about)."""
        self.loaded = False

    def load(self, generation: int) -> None:
        """Read every live memory (``generation``: the write generation read before this call)."""
        self._clear()
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=5000).execute(self._select())
            for part in result.partitions(5000):
                self._append(part)
        self.loaded = True
        self.applied = generation
        self.loads += 1
        log.debug("loaded %d memories into the in-memory filter columns", self.n)

    def _select(self) -> sa.Select:
        """The rows, with JSON as text and (SQLite) timestamps as their stored text: decoded in bulk by
        :meth:`_append`, ~10x faster than value by value."""

        def stamp(col: sa.Column) -> sa.ColumnElement[Any]:
            return col if self.pg else sa.type_coerce(col, sa.Text)

        return sa.select(
            MV.c.id,
            MV.c.memory_type,
            MEM.c.id,
            MEM.c.memory_type,
            MEM.c.content,
            MEM.c.agent_id,
            sa.cast(MEM.c.tags, sa.Text),
            sa.cast(MEM.c.metadata, sa.Text),
            MEM.c.session_id,
            MEM.c.project_id,
            MEM.c.priority,
            stamp(MEM.c.created_at),
            stamp(MEM.c.updated_at),
            stamp(MEM.c.expires_at),
        ).join(MEM, MV.c.memory_id == MEM.c.id)

    # -------------------------------------------------------------------------------------- rows
    def _kill(self, vids: Iterable[int]) -> None:
        for v in vids:
            p = self.pos.pop(v, None)
            if p is not None:
                self.alive[p] = False
                self.dead += 1
                if self.expires[p] != NAT:
                    self.expiring -= 1

    def _append(self, rows: Sequence[Sequence[Any]]) -> None:
        """Append rows as :meth:`_select` returns them (a vector id already held is replaced)."""
        if not rows:
            return
        self._kill(int(r[0]) for r in rows if int(r[0]) in self.pos)
        m = len(rows)
        start, stop = self.n, self.n + m
        self._reserve(stop)
        cols = list(zip(*rows))
        self.vid[start:stop] = np.asarray(cols[0], dtype=np.int64)
        self.alive[start:stop] = True
        self.itype[start:stop] = [self._code(t) for t in cols[1]]
        for j, name in enumerate(FIELDS):
            self.obj[j, start:stop] = _json_many(cols[j + 2]) if name in ("tags", "metadata") else cols[j + 2]
        prio = cols[10]
        self.priority_null[start:stop] = [p is None for p in prio]
        self.priority[start:stop] = [0 if p is None else int(p) for p in prio]
        stamps = micros if self.pg else _stored_micros
        self.created[start:stop] = stamps(cols[11])
        self.updated[start:stop] = stamps(cols[12])
        self.expires[start:stop] = exp = stamps(cols[13])
        self.expiring += int(np.count_nonzero(exp != NAT))
        self.pos.update(zip(self.vid[start:stop].tolist(), range(start, stop)))
        self.n = stop

    def _code(self, mtype: str) -> int:
        code = self._type_code.get(mtype)
        if code is None:
            code = self._type_code[mtype] = len(self.type_names)
            self.type_names.append(mtype)
        return code

    def _reserve(self, size: int) -> None:
        cap = self.vid.shape[0]
        if size <= cap:
            return
        new = max(size, 2 * cap, 1024)

        def grow(arr: np.ndarray) -> np.ndarray:
            out = np.empty((*arr.shape[:-1], new), dtype=arr.dtype)
            out[..., : self.n] = arr[..., : self.n]
            return out

        self.vid, self.alive, self.itype, self.obj = grow(self.vid), grow(self.alive), grow(self.itype), grow(self.obj)
        self.priority, self.priority_null = grow(self.priority), grow(self.priority_null)
        self.created, self.updated, self.expires = grow(self.created), grow(self.updated), grow(self.expires)

    def _maybe_compact(self) -> None:
        """Drop dead rows once they are a quarter of all (positions change: derived encodings are rebuilt)."""
        if self.dead <= max(1000, self.n // 4):
            return
        keep = np.flatnonzero(self.alive[: self.n])
        self.vid, self.alive, self.itype = self.vid[keep], self.alive[keep], self.itype[keep]
        self.obj = self.obj[:, keep]
        self.priority, self.priority_null = self.priority[keep], self.priority_null[keep]
        self.created, self.updated, self.expires = self.created[keep], self.updated[keep], self.expires[keep]
        self.n, self.dead = int(keep.size), 0
        self.pos = dict(zip(self.vid.tolist(), range(self.n)))
        self.derived.clear()

    # ----------------------------------------------------------------------------------- reading
    def field(self, name: str) -> np.ndarray:
        """One text field (a FIELDS name) over the rows, as an object array view."""
        return self.obj[_ROW[name], : self.n]

    def candidates(self, mask: np.ndarray, types: list[str] | None) -> dict[str, np.ndarray]:
        """memory type -> vector ids (int64) of the rows in ``mask`` (of ``types``; None: all)."""
        pos = np.flatnonzero(mask)
        codes = self.itype[pos]
        out: dict[str, np.ndarray] = {}
        for code, name in enumerate(self.type_names):
            if types is not None and name not in types:
                continue
            ids = self.vid[pos[codes == code]]
            if ids.size:
                out[name] = ids
        return out

    def position(self, vid: int, *, include_expired: bool, now_us: int) -> int | None:
        """The row of a live vector id (None: deleted, or expired unless ``include_expired``)."""
        p = self.pos.get(vid)
        if p is None:
            return None
        if not include_expired and self.expiring:
            e = self.expires[p]
            if e != NAT and e <= now_us:
                return None
        return p


def _json_many(texts: Sequence[str | None]) -> list[Any]:
    """Decode many JSON texts (None: NULL) with one parser call."""
    return json.loads("[" + ",".join("null" if t is None else t for t in texts) + "]")


def _stored_micros(texts: Sequence[str | None]) -> np.ndarray:
    """SQLite's stored timestamp text (naive UTC) as int64 microseconds; None -> NAT."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy only warns when it meets a UTC offset
            return np.array(texts, dtype="datetime64[us]").view(np.int64)
    except (ValueError, Warning):  # other tools' forms: value by value
        return np.array([_text_micros(t) for t in texts], dtype=np.int64)


def _text_micros(text: str | None) -> int:
    """One stored timestamp as SQLite's julianday() reads it: ISO with ' ' or 'T', fractions and offsets
    optional (naive = UTC); anything else is no time at all (NULL), as there."""
    if text is None:
        return NAT
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return NAT
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return now_micros(value)


# ---------------------------------------------------------------------------------------- frames
#: the columns of a search result frame, in order
RESULT_COLUMNS = [
    "rank",
    "score",
    "memory_id",
    "memory_type",
    "content",
    "agent_id",
    "priority",
    "tags",
    "metadata",
    "created_at",
    "session_id",
    "project_id",
    "vector_id",
]
_FRAME_COLUMNS = pd.Index(RESULT_COLUMNS)
_OBJECT_PLACES = np.array([2, 3, 4, 5, 7, 8, 10, 11])  # where FIELDS go in the frame
_UTC = pd.DatetimeTZDtype("us", "UTC")
try:  # pandas >= 3: a frame from ready-made blocks, without per-column inference (~10x faster)
    from pandas.api.internals import create_dataframe_from_blocks as _from_blocks  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - older pandas
    _from_blocks = None


def result_frame(cols: MemoryColumns, positions: list[int], scores: list[float]) -> pd.DataFrame:
    """Search results (rank order) from the rows at ``positions``: the columns of lab.search, in one step.

    tags and metadata are copies, so a caller mutating them never touches the held rows.
    """
    n = len(positions)
    pos = np.asarray(positions, dtype=np.intp)
    obj = cols.obj[:, pos]
    obj[_ROW["tags"]] = [[] if t is None else _copy(t) for t in obj[_ROW["tags"]]]
    obj[_ROW["metadata"]] = [{} if t is None else _copy(t) for t in obj[_ROW["metadata"]]]
    priority = _int64(cols.priority[pos], cols.priority_null[pos])
    created = _utc(cols.created[pos].view("datetime64[us]"))
    vids = _int64(cols.vid[pos], np.zeros(n, dtype=bool))
    rank = np.arange(1, n + 1, dtype=np.int64)
    score = np.asarray(scores, dtype=np.float64)
    if _from_blocks is not None:
        frame = _from_blocks(
            [
                (rank[None, :], np.array([0])),
                (score[None, :], np.array([1])),
                (obj, _OBJECT_PLACES),
                (priority, np.array([6])),
                (created, np.array([9])),
                (vids, np.array([12])),
            ],
            index=pd.RangeIndex(n),
            columns=_FRAME_COLUMNS,
        )
    else:  # pragma: no cover - older pandas
        data: dict[str, Any] = {"rank": rank, "score": score}
        for name, row in zip(FIELDS, obj):
            data[name] = pd.Series(row, dtype=object, copy=False)
        data.update(priority=priority, created_at=created, vector_id=vids)
        frame = pd.DataFrame(data, copy=False)[list(_FRAME_COLUMNS)]
    ends = cols.expires[pos]
    ends = ends[ends != NAT]
    now = dt.datetime.now(dt.timezone.utc).timestamp()
    frame.attrs["valid_for"] = float(ends.min()) / 1e6 - now if ends.size else None
    return frame


_SCALARS = (str, int, float, bool, type(None))


def _copy(value: Any) -> Any:
    """A copy of a JSON value: shallow where that suffices (the common flat list or dict), else deep."""
    if isinstance(value, list):
        return list(value) if all(isinstance(v, _SCALARS) for v in value) else copy.deepcopy(value)
    if isinstance(value, dict):
        return dict(value) if all(isinstance(v, _SCALARS) for v in value.values()) else copy.deepcopy(value)
    return value


# The arrays below are built without pandas' inference and validation, on every search's path (DatetimeArray
# ~20x faster, IntegerArray ~7x): the values are already of the right dtype. Public constructors where a
# pandas lacks these.
_simple_new = getattr(pd.arrays.DatetimeArray, "_simple_new", None)
_simple_int = getattr(pd.arrays.IntegerArray, "_simple_new", None)


def _utc(values: np.ndarray) -> Any:
    """datetime64[us] values (naive UTC) as a UTC DatetimeArray."""
    if _simple_new is not None:
        return _simple_new(values, dtype=_UTC)
    return pd.array(values).tz_localize("UTC")  # pragma: no cover - a pandas without it


def _int64(values: np.ndarray, mask: np.ndarray) -> Any:
    """int64 values and their NA mask as an Int64 array."""
    if _simple_int is not None:
        return _simple_int(values, mask)
    return pd.arrays.IntegerArray(values, mask)  # pragma: no cover - a pandas without it


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_US = dt.timedelta(microseconds=1)


def now_micros(now: dt.datetime) -> int:
    """An aware datetime as int64 microseconds since the epoch."""
    return (now - _EPOCH) // _US
