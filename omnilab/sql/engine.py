"""Engines for the relational store: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL by URL.

SQLite durability (the pragmas of :func:`_sqlite_pragmas`): omnilab's databases are in WAL mode with
``synchronous=NORMAL``. A COMMIT appends the transaction's pages to the WAL file (``write()`` into the operating
system's page cache) before it returns, without an ``fsync``; the WAL is synced when it is checkpointed into the
database file. So:

- a process that is killed (``kill -9``, a crash, ``os._exit``) loses **no** committed transaction: the WAL frames
  are in the OS's cache and the next connection replays them;
- an operating-system crash or power loss may roll the database back to its last checkpoint, losing the most
  recent commits (at most about ``WAL_AUTOCHECKPOINT_PAGES`` pages of them, 16 MB with 4 KiB pages), never
  corrupting it (``synchronous=FULL`` would ``fsync`` on every commit and lose nothing there, at several
  milliseconds a commit on this kind of disk).

``wal_autocheckpoint`` is raised from SQLite's 1,000 pages to ``WAL_AUTOCHECKPOINT_PAGES``: a checkpoint (and its
``fsync``) runs on the commit that crosses it, and with small transactions (a task queue commits three times a
task) the default made those ``fsync``s most of a commit's cost. ``journal_size_limit`` truncates a WAL that
grew past it (readers holding an old snapshot can delay a checkpoint) once it is reset.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from omnilab._text import redact_url
from omnilab.errors import ConfigError, StoreUnavailable

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["create_engine", "BUSY_TIMEOUT_MS", "describe_url", "insert_on_conflict", "driver_connection"]

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
#: WAL pages after which a commit checkpoints (SQLite's default is 1,000); see the module docstring
WAL_AUTOCHECKPOINT_PAGES = 4_000
#: bytes a WAL file is truncated to after a reset (it is reused from its start, not shrunk, below that)
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # Foreign keys are off by default in SQLite and are a per-connection setting; so are the others.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS:d}")
    # WAL + NORMAL: every commit survives a killed process; an OS crash or power loss can lose the commits since
    # the last checkpoint (never corrupts). See the module docstring.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA wal_autocheckpoint=4000")  # WAL_AUTOCHECKPOINT_PAGES
    cur.execute("PRAGMA journal_size_limit=67108864")  # JOURNAL_SIZE_LIMIT
    cur.close()


def create_engine(url: str, *, echo: bool = False) -> sa.Engine:
    """An engine for ``url`` with omnilab's connection settings; checks that the database answers."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"invalid database URL {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed,
            echo=echo,
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        if database and database != ":memory:":
            try:
                with engine.connect() as conn:  # WAL is persistent, set it once per file
                    names = sa.inspect(conn).get_table_names()
                    if not names or "alembic_version" in names:  # never on a database omnilab does not own
                        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            except sa.exc.DBAPIError as exc:  # not a database, unreadable, read-only file system, ...
                engine.dispose()
                raise StoreUnavailable(f"cannot open the SQLite database {database}: {exc.orig}") from exc
    elif backend == "postgresql":
        if parsed.drivername == "postgresql":  # plain URL: use psycopg 3, which we depend on
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = sa.create_engine(parsed, echo=echo, pool_pre_ping=True)
    else:
        raise ConfigError(f"unsupported database backend {backend!r}: use sqlite or postgresql")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise StoreUnavailable(f"cannot connect to database {describe_url(url)}: {exc.orig}") from exc
    return engine


def describe_url(url: str | sa.URL) -> str:
    """The URL with any password hidden (for messages, logs and reports)."""
    return redact_url(url if isinstance(url, str) else url.render_as_string(hide_password=False))


def driver_connection(conn: sa.Connection) -> Any:
    """The driver's own connection under ``conn`` (``sqlite3.Connection`` or ``psycopg.Connection``), for what
    SQLAlchemy does not expose: COPY, authorizers, progress handlers, untouched statement text."""
    raw = conn.connection.driver_connection
    if raw is None:  # only a connection that was closed or invalidated has none
        raise StoreUnavailable("the database connection is closed")
    return raw


def insert_on_conflict(bind: sa.Connection | sa.Engine, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An ``INSERT`` into ``table`` in the dialect of ``bind``'s backend, so it takes ``on_conflict_do_nothing`` /
    ``on_conflict_do_update`` (PostgreSQL's, or SQLite's for any other backend)."""
    if bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)
