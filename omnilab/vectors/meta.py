"""A lab's own facts in ``lab_meta``: the embedder it records, the memory-table fingerprint, the write generation.

The write generation (``memory_generation``) is a counter bumped in the same transaction as every memory
write, omnilab's and (once noticed) the platform's; cached search results are keyed by it, and the memory
change log (``memory_changes``, see ``omnilab.vectors.changes``) is written with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

import sqlalchemy as sa

from omnilab.sql.engine import insert_on_conflict
from omnilab.sql.own_tables import lab_meta
from omnilab.sql.types import utcnow
from omnilab.sql.watch import CommitWatch

__all__ = ["LabMeta", "log_changes", "ChangeOp"]

ChangeOp = Literal["add", "update", "delete", "resync"]

_GENERATION = "memory_generation"


class LabMeta:
    """Read and write ``lab_meta`` in ``engine`` (the database of omnilab's own tables)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.bumped = 0  # the generation this process last wrote
        # SQLite: when nothing was committed since the last read, the generation cannot have moved
        self._watch = CommitWatch(engine, local_only=True)
        self._seen: tuple[Any, int] | None = None  # (commit token, generation read after it)

    def get(self, key: str, conn: sa.Connection | None = None) -> Any:
        """The value stored under ``key`` (None if absent); in ``conn``'s transaction when given."""
        stmt = sa.select(lab_meta.c.value).where(lab_meta.c.key == key)
        if conn is not None:
            return conn.execute(stmt).scalar_one_or_none()
        with self.engine.connect() as c:
            return c.execute(stmt).scalar_one_or_none()

    def set(self, key: str, value: Any, *, only_if_new: bool = False, conn: sa.Connection | None = None) -> None:
        """Store ``value`` under ``key`` (``only_if_new``: keep an existing value); in ``conn``'s transaction
        when given, else in one of its own."""
        if conn is not None:
            self._set(conn, key, value, only_if_new)
            return
        with self.engine.begin() as c:
            self._set(c, key, value, only_if_new)

    def _set(self, conn: sa.Connection, key: str, value: Any, only_if_new: bool) -> None:
        ins = insert_on_conflict(conn, lab_meta).values(key=key, value=value, counter=0, updated_at=utcnow())
        conn.execute(
            ins.on_conflict_do_nothing()
            if only_if_new
            else ins.on_conflict_do_update(index_elements=["key"], set_={"value": value, "updated_at": utcnow()})
        )

    def bump(self, conn: sa.Connection) -> int:
        """Increment the memory write generation inside the caller's transaction; returns the new value."""
        ins = insert_on_conflict(conn, lab_meta).values(key=_GENERATION, value=None, counter=1, updated_at=utcnow())
        stmt = ins.on_conflict_do_update(
            index_elements=["key"], set_={"counter": lab_meta.c.counter + 1, "updated_at": utcnow()}
        ).returning(lab_meta.c.counter)
        self.bumped = int(conn.execute(stmt).scalar_one())
        return self.bumped

    def generation(self) -> int:
        """The memory write generation as stored (0 before the first write).

        On a SQLite file, read again only when something was committed since the last read (a few
        microseconds otherwise): the commit token is taken before the read, so a commit in between shows.
        """
        token = self._watch.token()
        seen = self._seen
        if token is not None and seen is not None and seen[0] == token:
            return seen[1]
        with self.engine.connect() as conn:
            gen = conn.execute(sa.select(lab_meta.c.counter).where(lab_meta.c.key == _GENERATION)).scalar_one_or_none()
        value = int(gen or 0)
        self._seen = None if token is None else (token, value)
        return value

    def close(self) -> None:
        """Close the connection that watches for commits."""
        self._watch.close()


def log_changes(conn: sa.Connection, seq: int, op: ChangeOp, vector_ids: Iterable[int | None] = (None,)) -> None:
    """Log ``op`` for each vector id at ``seq`` in ``conn``'s transaction (the one that bumped ``seq``);
    ``"resync"`` logs one row without a vector id. One statement however many ids (rows in the given order)."""
    ids = [None if v is None else int(v) for v in vector_ids]
    if not ids:
        return
    now = utcnow()
    if conn.dialect.name == "sqlite":  # UTCDateTime's SQLite storage: naive UTC text
        stamp = now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        conn.exec_driver_sql(
            "INSERT INTO memory_changes (seq, vector_id, op, changed_at) "
            "SELECT ?, value, ?, ? FROM json_each(?) ORDER BY key",
            (int(seq), op, stamp, json.dumps(ids)),
        )
    else:  # PostgreSQL (omnilab's own tables live in SQLite or PostgreSQL)
        conn.exec_driver_sql(
            "INSERT INTO memory_changes (seq, vector_id, op, changed_at) "
            "SELECT %s, v, %s, %s FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(v, o) ORDER BY o",
            (int(seq), op, now, ids),
        )
