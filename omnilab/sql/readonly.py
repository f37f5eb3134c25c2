"""Read-only execution for ``Lab.sql``: enforced by the database, not by parsing SQL text.

SQLite: an authorizer that allows only reading (no PRAGMA, ATTACH, writes or DDL) plus
``PRAGMA query_only``. PostgreSQL: a ``READ ONLY`` transaction that is always rolled back, and a
prepared statement, which the server refuses to hold more than one command.
"""

from __future__ import annotations

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
            raw.rollback()


def _classify(exc: BaseException) -> OmnilabError:
    text = str(getattr(exc, "orig", exc))
    lowered = text.lower()
    if any(s in lowered for s in ("not authorized", "read-only", "read only", "readonly",
                                  "multiple commands", "one statement at a time", "query_only")):
        return ReadOnlyViolation(f"lab.sql is read-only: {text.strip()}")
    return InvalidInput(f"query failed: {text.strip()}")
