"""Read-only execution for ``Lab.sql``: enforced by the database, not by parsing SQL text.

SQLite: an authorizer that allows only reading (no PRAGMA, ATTACH, writes or DDL) plus
``PRAGMA query_only``. PostgreSQL: a ``READ ONLY`` transaction that is always rolled back, and a
prepared statement, which the server refuses to hold more than one command. Because a read-only
transaction still runs utility commands (``COPY … TO '<file>'``, ``SET``, ``DO``, ``VACUUM``), PostgreSQL
statements must also start like a query (the one textual check), and session advisory locks, which
outlive a rollback, are released afterwards. ``lab.sql`` guards the data; it is not a sandbox against the
privileges of the role you connect as (a superuser can still read server files with ``pg_read_file``).
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import sqlalchemy as sa

from omnilab.errors import InvalidInput, OmnilabError, ReadOnlyViolation

__all__ = ["run_read_only"]

_SQLITE_ALLOWED = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}


def _sqlite_authorizer(action: int, *_args: Any) -> int:
    return sqlite3.SQLITE_OK if action in _SQLITE_ALLOWED else sqlite3.SQLITE_DENY


def run_read_only(engine: sa.Engine, query: str, params: dict[str, Any]) -> tuple[list[str], list[tuple]]:
    """Execute one read-only statement; returns (column names, rows)."""
    stmt = sa.text(query)
    unknown = set(params) - set(stmt._bindparams)  # noqa: SLF001 - the names in the text
    missing = set(stmt._bindparams) - set(params)  # noqa: SLF001
    if unknown or missing:
        raise InvalidInput(
            "params do not match the query's :placeholders"
            + (f"; missing {sorted(missing)}" if missing else "")
            + (f"; unused {sorted(unknown)}" if unknown else "")
        )
    if engine.dialect.name == "sqlite":
        return _sqlite(engine, stmt, params)
    return _postgresql(engine, stmt, params)


def _sqlite(engine: sa.Engine, stmt: sa.TextClause, params: dict[str, Any]) -> tuple[list[str], list[tuple]]:
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        raw.execute("PRAGMA query_only=ON")
        raw.set_authorizer(_sqlite_authorizer)
        try:
            result = conn.execute(stmt, params)
            return list(result.keys()), [tuple(r) for r in result]
        except sa.exc.DatabaseError as exc:
            raise _classify(exc) from exc
        finally:
            raw.set_authorizer(None)
            raw.execute("PRAGMA query_only=OFF")
            conn.rollback()


def _postgresql(engine: sa.Engine, stmt: sa.TextClause, params: dict[str, Any]) -> tuple[list[str], list[tuple]]:
    compiled = stmt.compile(dialect=engine.dialect)
    sql_text = str(compiled)
    bound = {k: params[k] for k in compiled.params}
    # A READ ONLY transaction still runs COPY ... TO '<server file>', SET, DO, VACUUM and the like, so only
    # statements that start like a query get that far (comments skipped, nested ones too).
    first = _first_word(sql_text)
    if first not in _PG_QUERY_STARTS:
        raise ReadOnlyViolation(f"lab.sql runs queries only (SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN), "
                                f"not {first.upper() or 'this statement'}")
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        try:
            with raw.cursor() as cur:
                cur.execute("SET TRANSACTION READ ONLY")
                # prepare=True: extended protocol, so "SELECT 1; COMMIT; DROP …" is refused outright
                cur.execute(sql_text, bound, prepare=True)
                columns = [d.name for d in cur.description] if cur.description else []
                rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
            return columns, rows
        except Exception as exc:  # psycopg errors
            raise _classify(exc) from exc
        finally:
            _pg_reset(conn, raw)


_PG_QUERY_STARTS = {"select", "with", "values", "table", "show", "explain", "("}


def _first_word(sql: str) -> str:
    """The first keyword of ``sql`` (lower case) after whitespace and ``--`` / nested ``/* */`` comments."""
    i, n = 0, len(sql)
    while i < n:
        if sql[i].isspace():
            i += 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        else:
            break
    m = re.match(r"\(|[A-Za-z_]+", sql[i:])
    return m.group(0).lower() if m else ""


def _pg_reset(conn: sa.Connection, raw: Any) -> None:
    """Roll back (undoing SET, set_config, large objects …) and drop session advisory locks, which
    outlive a rollback; a connection the query killed is discarded from the pool."""
    try:
        raw.rollback()
        with raw.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock_all()")
        raw.rollback()
    except Exception:  # noqa: BLE001 - e.g. pg_terminate_backend(pg_backend_pid()): the connection is gone
        conn.invalidate()


def _classify(exc: BaseException) -> OmnilabError:
    text = str(getattr(exc, "orig", exc))
    lowered = text.lower()
    if any(s in lowered for s in ("not authorized", "read-only", "read only", "readonly",
                                  "multiple commands", "one statement at a time", "query_only", "cannot modify")):
        return ReadOnlyViolation(f"lab.sql is read-only: {text.strip()}")
    return InvalidInput(f"query failed: {text.strip()}")
