"""Read-only attach to a database omnilab does not own (typically the platform's own).

The database is opened so that it cannot be written: SQLite by URI with ``mode=ro`` (not even a journal
is created), PostgreSQL with every transaction ``READ ONLY``. omnilab's queries are written against its
models, which have a few columns the platform lacks (omnilab's additions) and, on PostgreSQL, types the
platform may store differently (JSON as TEXT, timestamps without time zone). Each connection therefore
gets *temporary* views named like the platform tables that add the missing columns as NULL (or their
default) and cast what needs casting; temporary objects live only in that session and write nothing to
the database. Everything omnilab owns for an attached lab (embedding cache, vector keys, keyword index,
thresholds) lives in a SQLite file in the lab directory (:func:`own_engine`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from omnilab.errors import ConfigError, StoreUnavailable
from omnilab.sql.engine import BUSY_TIMEOUT_MS, create_engine, describe_url
from omnilab.sql.schema import TABLES
from omnilab.sql.types import UTCDateTime

__all__ = ["open_read_only", "own_engine", "OWN_DB"]

log = logging.getLogger(__name__)

#: the SQLite file in the lab directory that holds what omnilab owns for an attached database
OWN_DB = "omnilab-own.db"

_JSON_TYPES = ("json", "jsonb")


def open_read_only(url: str) -> sa.Engine:
    """An engine on ``url`` that cannot write, with omnilab's column view of the platform tables."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_read_only(parsed)
    elif backend == "postgresql":
        engine = _postgresql_read_only(parsed)
    else:
        raise ConfigError(f"read-only attach supports sqlite and postgresql URLs, not {backend!r}")
    try:
        with engine.connect() as conn:
            views = _view_statements(conn)
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise StoreUnavailable(f"cannot read the database {describe_url(url)}: {exc.orig}") from exc
    missing = [t for t in ("agents", "memory_entries") if t not in views and not _has_table(engine, t)]
    if missing:
        engine.dispose()
        raise ConfigError(f"{describe_url(url)} has no {', '.join(missing)} table: not a platform database")
    _install_views(engine, list(views.values()))
    log.info("attached read-only to %s (%d compatibility views)", describe_url(url), len(views))
    return engine


def own_engine(lab_dir: Path) -> sa.Engine:
    """The lab directory's own SQLite database with omnilab's tables (created on first use)."""
    from omnilab.sql.own_tables import METADATA, keyword_ddl

    engine = create_engine(f"sqlite:///{(lab_dir / OWN_DB).resolve()}")
    with engine.begin() as conn:
        METADATA.create_all(conn)
        for stmt in keyword_ddl("sqlite"):
            conn.exec_driver_sql(stmt)
    return engine


# ------------------------------------------------------------------------------------------ engines
def _sqlite_read_only(parsed: sa.URL) -> sa.Engine:
    database = parsed.database or ""
    if not database or database == ":memory:":
        raise ConfigError("read_only=True needs a SQLite database file")
    path = Path(database).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"no database file at {path}: read_only=True attaches to an existing database")
    engine = sa.create_engine(
        f"sqlite:///file:{path}?mode=ro&uri=true",
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS:d}")

    return engine


def _postgresql_read_only(parsed: sa.URL) -> sa.Engine:
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return sa.create_engine(parsed, pool_pre_ping=True)


def _has_table(engine: sa.Engine, name: str) -> bool:
    with engine.connect() as conn:
        return sa.inspect(conn).has_table(name)


def _install_views(engine: sa.Engine, statements: list[str]) -> None:
    """Create the temporary views on every new connection; then make the session read-only (PostgreSQL)."""
    pg = engine.dialect.name == "postgresql"

    @sa.event.listens_for(engine, "connect")
    def _prepare(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        try:
            if pg:  # the platform's TIMESTAMP columns are naive UTC: day boundaries need a UTC session
                cur.execute("SET TIME ZONE 'UTC'")
            for stmt in statements:
                cur.execute(stmt)
            if pg:
                dbapi_conn.commit()  # temporary views only: nothing of the database changes
                cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                dbapi_conn.commit()
        finally:
            cur.close()

    engine.dispose()  # connections made before the listener have no views


# ------------------------------------------------------------------------------------ compatibility
def _view_statements(conn: sa.Connection) -> dict[str, str]:
    """table -> ``CREATE TEMP VIEW`` giving the model's columns, for tables that differ from the model."""
    insp = sa.inspect(conn)
    existing = set(insp.get_table_names())
    pg = conn.dialect.name == "postgresql"
    schema = _q(_current_schema(conn)) if pg else "main"
    out: dict[str, str] = {}
    for name, table in TABLES.items():
        if name not in existing:
            if name in ("agents", "memory_entries"):
                continue  # not a platform database: reported by the caller
            cols = ", ".join(f"{_null(c, pg)} AS {_q(c.name)}" for c in table.columns)
            out[name] = f"CREATE TEMP VIEW {_q(name)} AS SELECT {cols} WHERE 1 = 0"
            continue
        actual = {c["name"]: c["type"] for c in insp.get_columns(name)}
        parts, differs = [], False
        for col in table.columns:
            if col.name not in actual:
                parts.append(f"{_null(col, pg)} AS {_q(col.name)}")
                differs = True
            elif pg and (cast := _pg_cast(col, actual[col.name])) is not None:
                parts.append(f"{cast} AS {_q(col.name)}")
                differs = True
            else:
                parts.append(_q(col.name))
        if differs:
            out[name] = f"CREATE TEMP VIEW {_q(name)} AS SELECT {', '.join(parts)} FROM {schema}.{_q(name)}"
    return out


def _null(col: sa.Column, pg: bool) -> str:
    """A missing omnilab column: its server default where it has one, else a typed NULL."""
    default = (
        col.server_default.arg.text
        if isinstance(col.server_default, sa.DefaultClause) and hasattr(col.server_default.arg, "text")
        else None
    )
    if not pg:
        return default if default is not None else "NULL"
    pg_type = col.type.dialect_impl(sa.dialects.postgresql.dialect()).compile(dialect=sa.dialects.postgresql.dialect())
    return f"CAST({default if default is not None else 'NULL'} AS {pg_type})"


def _pg_cast(col: sa.Column, actual: Any) -> str | None:
    """How to read a platform column whose PostgreSQL type differs from the model's, or None."""
    name = _q(col.name)
    actual_name = type(actual).__name__.lower()
    if isinstance(col.type, sa.JSON) and actual_name not in _JSON_TYPES:
        return f"CASE WHEN {name} IS NULL OR btrim({name}::text) = '' THEN NULL ELSE {name}::jsonb END"
    if isinstance(col.type, UTCDateTime) and not getattr(actual, "timezone", False):
        return f"({name} AT TIME ZONE 'UTC')"
    if isinstance(col.type, sa.Boolean) and not isinstance(actual, sa.Boolean):
        return f"({name} <> 0)"
    return None


def _current_schema(conn: sa.Connection) -> str:
    name = conn.exec_driver_sql("SELECT current_schema()").scalar()
    if not isinstance(name, str):  # NULL: the search_path names no schema that exists
        raise ConfigError("the database's search_path names no existing schema: omnilab cannot find its tables")
    return name


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
