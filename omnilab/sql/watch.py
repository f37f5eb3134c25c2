"""A cheap test of whether anything was committed to a database since the last look.

SQLite: ``PRAGMA data_version`` on a dedicated connection changes whenever *another* connection (of this
process or any other) commits to the file: a few microseconds, no table read. The dedicated connection
never writes, so every commit, omnilab's own included, shows. PostgreSQL: ``txid_current_snapshot()``, one
round trip. Used to skip reading the memory write generation when nothing was committed at all, and to
follow an attached platform.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import SingletonThreadPool, StaticPool

__all__ = ["CommitWatch"]


class CommitWatch:
    """``token()`` returns a value that changes whenever something was committed to ``engine``'s database.

    ``local_only=True``: only the microsecond SQLite check is wanted; ``token()`` returns None where there is
    none (PostgreSQL, in-memory or single-connection SQLite, where the watching connection would be the
    writing one), meaning "cannot tell: look".
    """

    def __init__(self, engine: sa.Engine, *, local_only: bool = False) -> None:
        self.engine = engine
        self.local_only = local_only
        database = engine.url.database or ""
        self._sqlite = (
            engine.dialect.name == "sqlite"
            and database not in ("", ":memory:")
            and "mode=memory" not in database
            and not isinstance(engine.pool, (StaticPool, SingletonThreadPool))
        )
        self._conn: Any = None
        self._cursor: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    def token(self) -> Any:
        if self._sqlite:
            with self._lock:
                if self._conn is None or self._pid != os.getpid():  # a forked child opens its own
                    self._conn = self.engine.raw_connection()
                    self._cursor = self._conn.cursor()
                    self._pid = os.getpid()
                return self._cursor.execute("PRAGMA data_version").fetchone()[0]
        if self.local_only:
            return None
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":  # in-memory: nothing outside this connection can commit
                return conn.exec_driver_sql("PRAGMA data_version").scalar_one()
            return conn.exec_driver_sql("SELECT txid_current_snapshot()::text").scalar_one()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = self._cursor = None
