"""``adopt``: make the platform's own database an omnilab database in place, only adding to it.

The platform keeps working on an adopted database unchanged: nothing of its tables, columns, defaults,
constraints or indexes is dropped or altered. omnilab adds its extra columns (nullable or defaulted, with
their foreign keys), its own tables and indexes and the keyword-search objects, then stamps the newest
revision. SQLite is first copied next to itself with the backup API (consistent under WAL); PostgreSQL,
which cannot be copied that way, needs an explicit ``yes`` and runs in one transaction.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from omnilab.errors import ConfigError, OmnilabError, StoreUnavailable
from omnilab.sql import migrate
from omnilab.sql.engine import create_engine, describe_url

__all__ = ["adopt", "backup_sqlite"]


def _models() -> tuple[dict[str, sa.Table], list[sa.Table]]:
    """(the platform's fifteen tables, omnilab's own tables), as the models define them."""
    from omnilab.sql.own_tables import METADATA
    from omnilab.sql.schema import TABLES

    return TABLES, list(METADATA.sorted_tables)


def backup_sqlite(path: Path, now: dt.datetime | None = None) -> Path:
    """Copy the SQLite file at ``path`` to ``NAME.bak-YYYYmmddTHHMMSS`` with sqlite3's online backup API."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.bak-{stamp}")
    if target.exists():
        raise ConfigError(f"backup {target} exists already; move it away or wait a second")
    try:
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(str(target))
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise StoreUnavailable(f"cannot back up {path} to {target}: {exc}") from exc
    return target


def _check_platform(conn: sa.Connection, url: str) -> None:
    """Refuse a database omnilab already manages, or one that is not the platform's."""
    platform, _ = _models()
    insp = sa.inspect(conn)
    names = set(insp.get_table_names())
    if "alembic_version" in names:
        raise ConfigError(
            f"{url} is an omnilab database already (it has alembic_version): use `omnilab db upgrade` instead of adopt"
        )
    missing = sorted(set(platform) - names)
    if missing:
        raise ConfigError(f"{url} is not a platform database: tables {', '.join(missing)} are missing")
    from omnilab.sql.schema import OMNILAB_COLUMNS

    absent = []
    for name, table in platform.items():
        have = {c["name"] for c in insp.get_columns(name)}
        extras = set(OMNILAB_COLUMNS.get(name, ()))
        absent += [f"{name}.{c.name}" for c in table.columns if c.name not in extras and c.name not in have]
    if absent:
        raise ConfigError(f"{url} is not a platform database: columns {', '.join(absent)} are missing")


def _server_default(column: sa.Column) -> str | sa.TextClause | sa.ColumnElement[Any] | None:
    """The model's ``server_default`` of ``column`` as text or SQL (the models give ``sa.text(...)``)."""
    clause = column.server_default
    if not isinstance(clause, sa.DefaultClause):
        return None
    if not isinstance(clause.arg, (str, sa.TextClause, sa.ColumnElement)):
        raise OmnilabError(f"{column.table.name}.{column.name}: unsupported server default {clause.arg!r}")
    return clause.arg


def _column_ddl(conn: sa.Connection, column: sa.Column) -> tuple[str, str | None]:
    """``ADD COLUMN`` text for one of omnilab's columns, and a default to set afterwards (if any).

    A ``CURRENT_TIMESTAMP`` default would stamp every existing platform row with the time of adoption on
    PostgreSQL (and SQLite refuses it in ADD COLUMN): such a column is added empty; PostgreSQL then gets
    the default for new rows.
    """
    dialect = conn.dialect
    default = _server_default(column)
    later = None
    if default is not None and "CURRENT_TIMESTAMP" in str(default).upper():
        default, later = None, ("CURRENT_TIMESTAMP" if dialect.name == "postgresql" else None)
    bare = sa.Column(column.name, column.type, nullable=True, server_default=default)
    sa.Table(column.table.name, sa.MetaData(), bare)  # CreateColumn needs the column on a table
    ddl = str(sa.schema.CreateColumn(bare).compile(dialect=dialect))
    for fk in column.foreign_keys:  # SQLite allows REFERENCES in ADD COLUMN when the default is NULL
        target = dialect.identifier_preparer.quote(fk.column.table.name)
        name = fk.constraint.name if fk.constraint is not None else None  # a column on a table has one
        ddl += (
            f" CONSTRAINT {dialect.identifier_preparer.quote(str(name))} "
            f"REFERENCES {target} ({dialect.identifier_preparer.quote(fk.column.name)})"
        )
    return ddl, later


def _add(conn: sa.Connection) -> dict[str, list[str]]:
    """Every addition, in order: columns, tables, indexes, keyword objects; what was added, by kind."""
    from omnilab.sql.own_tables import keyword_ddl
    from omnilab.sql.schema import OMNILAB_COLUMNS

    platform, own = _models()
    insp = sa.inspect(conn)
    prep = conn.dialect.identifier_preparer
    added: dict[str, list[str]] = {"columns_added": [], "tables_created": [], "indexes_created": []}
    for name, columns in OMNILAB_COLUMNS.items():
        have = {c["name"] for c in insp.get_columns(name)}
        for col in columns:
            if col in have:
                continue
            ddl, later = _column_ddl(conn, platform[name].c[col])
            conn.exec_driver_sql(f"ALTER TABLE {prep.quote(name)} ADD COLUMN {ddl}")
            if later:
                conn.exec_driver_sql(
                    f"ALTER TABLE {prep.quote(name)} ALTER COLUMN {prep.quote(col)} SET DEFAULT {later}"
                )
            added["columns_added"].append(f"{name}.{col}")
    existing = set(insp.get_table_names())
    for table in own:
        if table.name not in existing:
            table.create(conn)  # with its own indexes
            added["tables_created"].append(table.name)
    indexes = {ix["name"] for name in platform for ix in sa.inspect(conn).get_indexes(name)}
    for table in platform.values():
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            if index.name not in indexes:
                index.create(conn)
                added["indexes_created"].append(str(index.name))
    for stmt in keyword_ddl(conn.dialect.name):
        conn.exec_driver_sql(stmt)
    return added


def adopt(url: str, *, yes: bool = False, backup: bool = True, now: dt.datetime | None = None) -> dict[str, Any]:
    """Make the platform database at ``url`` an omnilab database in place, only adding to it.

    Adds omnilab's extra columns (``omnilab.sql.schema.OMNILAB_COLUMNS``), its tables (embedding cache,
    lab_meta, memory_vectors, memory_changes, search_thresholds), the model indexes the database lacks and
    the keyword search objects, then stamps the newest revision. SQLite: copied first to ``NAME.bak-YYYYmmddTHHMMSS``
    (unless ``backup=False``; ``now`` fixes the timestamp). PostgreSQL: refused unless ``yes=True``.
    Everything runs in one transaction. Refuses (:class:`ConfigError`) a database that omnilab manages
    already or that is not a platform database.

    Returns ``{"backup": path or None, "columns_added": [...], "tables_created": [...],
    "indexes_created": [...], "revision": ...}``.
    """
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"invalid database URL {url!r}") from exc
    shown = describe_url(url)
    backend = parsed.get_backend_name()
    path = None
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigError("adopt needs a SQLite file, not an in-memory database")
        path = Path(parsed.database)
        if not path.is_file():
            raise ConfigError(f"{shown} is not a platform database: {path} does not exist")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            _check_platform(conn, shown)
        if backend == "postgresql" and not yes:
            raise ConfigError(
                f"adopting {shown} adds omnilab's columns, tables and indexes to the platform's "
                f"PostgreSQL database in place and cannot be backed up here: take a backup "
                f"(pg_dump), then pass --yes (yes=True)"
            )
        saved = backup_sqlite(path, now) if path is not None and backup else None
        try:
            with engine.connect() as conn:
                if backend == "sqlite":  # pysqlite would autocommit each DDL statement
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                else:
                    conn.begin()
                _check_platform(conn, shown)  # again, now that we hold the write lock
                added = _add(conn)
                script = ScriptDirectory.from_config(migrate.alembic_config())
                MigrationContext.configure(conn).stamp(script, "head")
                conn.commit()
        except sa.exc.SQLAlchemyError as exc:
            hint = f" ({shown} is unchanged; the backup {saved} was kept)" if saved else f" ({shown} is unchanged)"
            raise OmnilabError(f"adopting {shown} failed: {exc}{hint}") from exc
    finally:
        engine.dispose()
    return {"backup": str(saved) if saved else None, **added, "revision": migrate.head()}
