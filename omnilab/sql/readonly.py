"""Read-only execution for ``Lab.sql``: enforced by the database, with a deny-list of functions and a timeout.

SQLite: an authorizer that allows only reading (no PRAGMA, ATTACH, writes or DDL) plus ``PRAGMA query_only``.
The authorizer also sees every function a statement calls (``SQLITE_FUNCTION``, with SQLite's canonical
lower-case name, also inside views) and every table it reads, so functions that reach native code or the file
system (:data:`SQLITE_DENIED_FUNCTIONS`: ``fts3_tokenizer`` leaks and installs raw pointers, which crashed the
process) and file-reading virtual tables (:data:`SQLITE_DENIED_TABLES`) are refused before anything runs. A
progress handler ends a statement that runs past its ``timeout``.

PostgreSQL: a ``READ ONLY`` transaction that is always rolled back, and a prepared statement, which the server
refuses to hold more than one command. Because a read-only transaction still runs utility commands (``COPY …
TO '<file>'``, ``SET``, ``DO``, ``VACUUM``), statements must start like a query, and session advisory locks,
which outlive a rollback, are released afterwards. Some functions act outside the transaction and so survive
the rollback (ending other sessions, resetting statistics, creating replication slots, reading server files,
running SQL text of their own): :func:`pg_denied_names` refuses every statement that names one of them
(:data:`PG_DENIED_FUNCTIONS`, :data:`PG_DENIED_PREFIXES`). ``SET LOCAL statement_timeout`` bounds the run time.

Why a tokenizer on PostgreSQL, and why it cannot be fooled: the server offers no way to list the functions a
statement calls without running or creating something (``EXPLAIN VERBOSE`` does not show ``LIMIT``
expressions or ``VALUES`` lists, so ``SELECT 1 LIMIT pg_terminate_backend(…)::int`` would pass it; a temporary
view to read ``pg_depend`` needs a writable transaction; a restricted role needs ``CREATEROLE``). A function is
only called by naming it, so the check does not look for calls: it lexes the *exact text the server receives*
(positional ``$n`` parameters, sent as is) the way PostgreSQL's scanner does (``--`` and nested ``/* */``
comments, ``'…'``, ``E'…'`` with backslash escapes, ``U&'…'``, ``B''``/``X''``/``N''``, ``$tag$`` dollar quotes,
``"quoted"`` and ``U&"…" UESCAPE`` identifiers, with ``standard_conforming_strings`` forced on for the
statement) and refuses the statement if *any* identifier outside literals and comments — function, column,
alias or schema-qualified part, compared case-insensitively after PostgreSQL's 63-byte truncation — is a
denied name. Quoting, comments between name and parenthesis, upper case and ``pg_catalog.`` qualification
therefore change nothing; a false positive (a column called ``set_config``) is refused, never run.

What this does not cover: functions hidden inside views or functions that already exist in the database run
with the privileges of the role you connect as (a superuser role can still do anything its views do), and
``lab.sql`` guards the data, not the server's memory (``SELECT randomblob(1e9)`` allocates a gigabyte).
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from typing import Any

import sqlalchemy as sa

from omnilab._checks import is_number
from omnilab.errors import InvalidInput, OmnilabError, QueryTimeout, ReadOnlyViolation, StoreUnavailable
from omnilab.sql.engine import driver_connection

__all__ = [
    "run_read_only",
    "QueryTimeout",
    "DEFAULT_TIMEOUT",
    "pg_denied_names",
    "SQLITE_DENIED_FUNCTIONS",
    "SQLITE_DENIED_TABLES",
    "PG_DENIED_FUNCTIONS",
    "PG_DENIED_PREFIXES",
]

#: seconds a ``lab.sql`` statement may run by default
DEFAULT_TIMEOUT = 30.0
_PG_MAX_TIMEOUT_MS = 2**31 - 1  # statement_timeout is an int4 of milliseconds


# ------------------------------------------------------------------------------------------ deny-lists
#: SQLite functions that reach native code, the file system or other SQL (canonical lower-case names)
SQLITE_DENIED_FUNCTIONS = frozenset(
    {
        "fts3_tokenizer",  # one argument returns a native pointer, two install one: a later FTS3 use crashes
        "fts5",  # hands out the FTS5 API pointer (sqlite3_bind_pointer)
        "load_extension",  # loads a shared library (also disabled by the driver; refused here in any case)
        "readfile",
        "writefile",
        "lsmode",
        "edit",  # fileio / shell extensions: files and an external editor
        "eval",  # the eval extension runs SQL text
        "zipfile",
        "sqlar_compress",
        "sqlar_uncompress",  # zipfile / sqlar extensions read and write archives
        "rtreenode",
        "rtreedepth",  # debugging functions that parse raw node blobs (CVE-2019-8457)
    }
)
#: SQLite virtual tables that read files or raw database pages
SQLITE_DENIED_TABLES = frozenset({"fsdir", "zipfile", "sqlite_dbpage", "sqlite_dbdata", "sqlite_dbptr"})

#: PostgreSQL functions whose effect outlives the rolled-back read-only transaction, or that read server
#: files or run SQL text of their own (also views named like them: pg_hba_file_rules, …)
PG_DENIED_FUNCTIONS = frozenset(
    {
        # other sessions and the server
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_rotate_logfile_old",
        "pg_switch_wal",
        "pg_switch_xlog",
        "pg_create_restore_point",
        "pg_promote",
        "pg_wal_replay_pause",
        "pg_wal_replay_resume",
        "pg_xlog_replay_pause",
        "pg_xlog_replay_resume",
        "pg_backup_start",
        "pg_backup_stop",
        "pg_start_backup",
        "pg_stop_backup",
        "pg_log_backend_memory_contexts",
        "pg_import_system_collations",
        "pg_stop_making_pinned_objects",
        "pg_nextoid",
        "gin_clean_pending_list",
        "brin_summarize_new_values",
        "brin_summarize_range",
        "brin_desummarize_range",
        "pg_stat_statements_reset",
        "pg_notify",
        # session state that survives a rollback (and would let a query lift its own timeout)
        "set_config",
        "setseed",
        # server files
        "pg_stat_file",
        "pg_show_all_file_settings",
        "pg_hba_file_rules",
        "pg_ident_file_mappings",
        "pg_logdir_ls",
        # replication slots (created and dropped outside the transaction, they hold WAL forever)
        "pg_create_physical_replication_slot",
        "pg_create_logical_replication_slot",
        "pg_copy_physical_replication_slot",
        "pg_copy_logical_replication_slot",
        "pg_drop_replication_slot",
        "pg_replication_slot_advance",
        # SQL text run by the function itself, out of reach of this check
        "query_to_xml",
        "query_to_xml_and_xmlschema",
        "query_to_xmlschema",
        "cursor_to_xml",
        "cursor_to_xmlschema",
        "ts_stat",
        "ts_rewrite",
        "connectby",
        # large objects written through the old API
        "lowrite",
        "loread",
    }
)
#: …and every name starting with one of these
PG_DENIED_PREFIXES = (
    "pg_stat_reset",  # pg_stat_reset, _shared, _single_table_counters, _slru, _replication_slot, …
    "pg_advisory_",
    "pg_try_advisory_",  # advisory locks (session locks outlive the rollback)
    "pg_read_",
    "pg_ls_",
    "pg_file_",  # pg_read_file, pg_read_binary_file, pg_ls_dir, …; adminpack's pg_file_*
    "lo_",  # lo_import / lo_export (server files) and the other large-object functions
    "pg_logical_",
    "pg_replication_origin_",  # logical decoding, WAL messages, replication origins
    "dblink",
    "crosstab",  # extensions that open connections or run SQL text
    "binary_upgrade_",
)


# ------------------------------------------------------------------------------------------------ entry
def run_read_only(
    engine: sa.Engine, query: str, params: dict[str, Any], *, timeout: float | None = DEFAULT_TIMEOUT
) -> tuple[list[str], list[tuple]]:
    """Execute one read-only statement; returns (column names, rows).

    ``timeout``: seconds before the statement is stopped with :class:`QueryTimeout` (``None``: no limit).
    """
    seconds = _check_timeout(timeout)
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
        return _sqlite(engine, stmt, params, seconds)
    return _postgresql(engine, stmt, params, seconds)


def _check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if not is_number(timeout, finite=True) or timeout <= 0:
        raise InvalidInput(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    if timeout * 1000 > _PG_MAX_TIMEOUT_MS:
        raise InvalidInput(f"timeout must be at most {_PG_MAX_TIMEOUT_MS // 1000:,} seconds (or None: no limit)")
    return float(timeout)


# ----------------------------------------------------------------------------------------------- SQLite
_SQLITE_ALLOWED = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}
_PROGRESS_STEPS = 1000  # VM instructions between two clock checks (about 10-50 µs of work)


def _sqlite(
    engine: sa.Engine, stmt: sa.TextClause, params: dict[str, Any], seconds: float | None
) -> tuple[list[str], list[tuple]]:
    refused: list[str] = []

    def authorizer(action: int, arg1: Any, arg2: Any, *_rest: Any) -> int:
        if action not in _SQLITE_ALLOWED:
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION and str(arg2).lower() in SQLITE_DENIED_FUNCTIONS:
            refused.append(f"the function {str(arg2).lower()}")
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_READ and str(arg1).lower() in SQLITE_DENIED_TABLES:
            refused.append(f"the virtual table {str(arg1).lower()}")
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    deadline = None if seconds is None else time.monotonic() + seconds
    timed_out: list[bool] = []

    def progress() -> int:
        if deadline is not None and time.monotonic() > deadline:
            timed_out.append(True)
            return 1  # a non-zero answer interrupts the statement
        return 0

    with _connect(engine) as conn:
        raw = driver_connection(conn)
        raw.execute("PRAGMA query_only=ON")
        # json_each/json_tree declare their table on first use in a connection, which the authorizer would
        # refuse (it looks like a schema change): construct them once before it is installed
        raw.execute("SELECT 1 FROM json_each('[]'), json_tree('[]')").fetchall()
        raw.set_authorizer(authorizer)  # also expires statements prepared without it
        if deadline is not None:
            raw.set_progress_handler(progress, _PROGRESS_STEPS)
        try:
            result = conn.execute(stmt, params)
            return list(result.keys()), [tuple(r) for r in result]
        except sa.exc.DatabaseError as exc:
            if timed_out:
                raise QueryTimeout(f"lab.sql stopped the query after {seconds:g} s (timeout=)") from exc
            if refused:
                raise ReadOnlyViolation(
                    f"lab.sql does not run {refused[0]}: it reaches native code, files or the server outside the query"
                ) from exc
            raise _classify(exc) from exc
        finally:
            raw.set_progress_handler(None, 0)
            raw.set_authorizer(None)
            raw.execute("PRAGMA query_only=OFF")
            conn.rollback()


# ------------------------------------------------------------------------------------------- PostgreSQL
def _postgresql(
    engine: sa.Engine, stmt: sa.TextClause, params: dict[str, Any], seconds: float | None
) -> tuple[list[str], list[tuple]]:
    import psycopg

    sql_text, args = _pg_positional(stmt, params)
    # A READ ONLY transaction still runs COPY ... TO '<server file>', SET, DO, VACUUM and the like, so only
    # statements that start like a query get that far (comments skipped, nested ones too).
    first = _first_word(sql_text)
    if first not in _PG_QUERY_STARTS:
        raise ReadOnlyViolation(
            f"lab.sql runs queries only (SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN), "
            f"not {first.upper() or 'this statement'}"
        )
    denied = pg_denied_names(sql_text)
    if denied:
        raise ReadOnlyViolation(
            f"lab.sql does not run {', '.join(denied)}: server administration, files or "
            f"effects that outlive the read-only transaction"
        )
    with _connect(engine) as conn:
        raw = driver_connection(conn)
        try:
            # RawCursor: the text goes to the server exactly as checked above ($n placeholders, no rewriting)
            with psycopg.RawCursor(raw) as cur:
                cur.execute("SET TRANSACTION READ ONLY")
                cur.execute("SET LOCAL standard_conforming_strings = on")  # the lexer's reading of '\'
                if seconds is not None:
                    ms = max(1, math.ceil(seconds * 1000))
                    cur.execute("SELECT set_config('statement_timeout', $1, true)", [str(ms)])
                # prepare=True: extended protocol, so "SELECT 1; COMMIT; DROP …" is refused outright
                cur.execute(sql_text, args, prepare=True)
                columns = [d.name for d in cur.description] if cur.description else []
                rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
            return columns, rows
        except Exception as exc:  # psycopg errors
            raise _pg_error(exc, raw, seconds) from exc
        finally:
            _pg_reset(conn, raw)


_PG_QUERY_STARTS = {"select", "with", "values", "table", "show", "explain", "("}
_NUMERIC_DOLLAR = None


def _connect(engine: sa.Engine) -> sa.Connection:
    try:
        return engine.connect()
    except sa.exc.DBAPIError as exc:
        raise StoreUnavailable(f"cannot reach the database for lab.sql: {str(exc.orig).strip()}") from exc


def _pg_positional(stmt: sa.TextClause, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """The statement with ``$1 … $n`` placeholders (what the server receives) and the values in order."""
    global _NUMERIC_DOLLAR
    if _NUMERIC_DOLLAR is None:
        from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg

        _NUMERIC_DOLLAR = pg_psycopg.dialect(paramstyle="numeric_dollar")
    compiled = stmt.compile(dialect=_NUMERIC_DOLLAR)
    return str(compiled), [params[name] for name in (compiled.positiontup or [])]


def _pg_error(exc: BaseException, raw: Any, seconds: float | None) -> OmnilabError:
    import psycopg

    sqlstate = getattr(exc, "sqlstate", None) or ""
    if isinstance(exc, psycopg.errors.QueryCanceled) and "statement timeout" in str(exc):
        return QueryTimeout(f"lab.sql stopped the query after {seconds:g} s (timeout=)")
    if isinstance(exc, psycopg.errors.QueryCanceled):  # pg_cancel_backend from another session
        return StoreUnavailable(f"the server cancelled the query: {str(exc).strip()}")
    if raw.closed or raw.broken or sqlstate.startswith(("08", "57P")) or isinstance(exc, psycopg.InterfaceError):
        return StoreUnavailable(f"lost the PostgreSQL connection during lab.sql: {str(exc).strip()}")
    return _classify(exc)


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
            i = _skip_block_comment(sql, i)
        else:
            break
    m = re.match(r"\(|[A-Za-z_]+", sql[i:])
    return m.group(0).lower() if m else ""


# -------------------------------------------------------------------------------- PostgreSQL lexer
# Character classes of PostgreSQL's scanner (src/backend/parser/scan.l). Bytes >= 0x80 are identifier
# letters there, so every non-ASCII character is one here; only ASCII whitespace separates tokens.
_PG_SPACE = frozenset(" \t\n\r\f\v")
_IDENT_START = re.compile(r"[A-Za-z_\x80-\U0010ffff]")
_IDENT = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z_0-9$\x80-\U0010ffff]*")
_DOLLAR_DELIM = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z_0-9\x80-\U0010ffff]*)?\$")
_PARAM = re.compile(r"\$[0-9]+")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAMEDATALEN = 63  # identifiers are truncated to 63 bytes
_DIGITS = frozenset("0123456789")  # ASCII only (str.isdigit also accepts other scripts' digits)
_UESCAPE = re.compile(r"uescape(?![A-Za-z_0-9$\x80-\U0010ffff])", re.IGNORECASE)
_UESCAPE_CHAR = re.compile(r"'([^'])'")


class _LexError(ValueError):
    pass


def _token(pattern: re.Pattern[str], sql: str, i: int) -> re.Match[str]:
    """The token ``pattern`` reads at ``i`` (the caller has checked its first character)."""
    m = pattern.match(sql, i)
    if m is None:
        raise _LexError(f"unreadable token at offset {i}")
    return m


def pg_denied_names(sql: str) -> list[str]:
    """Denied function names among the identifiers of ``sql`` (sorted; empty: nothing denied).

    Text the lexer cannot read (an unterminated string or comment, a bad ``U&`` escape) is refused as a
    whole (``["<unreadable statement>"]``): the server would reject it too, and no reading is guessed.
    """
    try:
        names = _pg_identifiers(sql)
    except _LexError:
        return ["<unreadable statement>"]
    return sorted({n for n in names if _pg_is_denied(n)})


def _pg_is_denied(name: str) -> bool:
    return name in PG_DENIED_FUNCTIONS or name.startswith(PG_DENIED_PREFIXES)


def _normal(name: str) -> str:
    """PostgreSQL's form of an identifier for the comparison: truncated to 63 bytes, lower case."""
    raw = name.encode("utf-8", "surrogatepass")
    if len(raw) > _NAMEDATALEN:
        name = raw[:_NAMEDATALEN].decode("utf-8", "ignore")
    return name.lower()  # quoted names are case-sensitive; comparing them folded only refuses more


def _pg_identifiers(sql: str) -> list[str]:
    out: list[str] = []
    i, n = 0, len(sql)
    while (i := _skip_space_and_comments(sql, i)) < n:
        c = sql[i]
        if c == "'":
            i = _skip_string(sql, i + 1, backslash=False)
        elif c in "eE" and sql.startswith("'", i + 1):
            i = _skip_string(sql, i + 2, backslash=True)
        elif c in "bBxXnN" and sql.startswith("'", i + 1):
            i = _skip_string(sql, i + 2, backslash=False)
        elif c in "uU" and sql.startswith("&'", i + 1):
            i = _skip_string(sql, i + 3, backslash=False)
        elif c in "uU" and sql.startswith('&"', i + 1):
            text, i = _quoted_identifier(sql, i + 3)
            escape, i = _uescape(sql, i)
            out.append(_normal(_decode_unicode(text, escape)))
        elif c == '"':
            text, i = _quoted_identifier(sql, i + 1)
            out.append(_normal(text))
        elif c == "$":
            if m := _PARAM.match(sql, i):
                i = m.end()
            elif m := _DOLLAR_DELIM.match(sql, i):
                end = sql.find(m.group(0), m.end())
                if end < 0:
                    raise _LexError("unterminated dollar-quoted string")
                i = end + len(m.group(0))
            else:
                i += 1  # a lone "$": the identifier after it is read next
        elif c in _DIGITS or (c == "." and i + 1 < n and sql[i + 1] in _DIGITS):
            i = _token(_NUMBER, sql, i).end()  # letters straight after a number are read as an identifier
        elif _IDENT_START.match(c):
            m = _token(_IDENT, sql, i)
            out.append(_normal(m.group(0)))
            i = m.end()
        else:
            i += 1  # operators and punctuation
    return out


def _skip_block_comment(sql: str, i: int) -> int:
    """The index after the (nested) comment starting at ``i``, or -1 if it never ends."""
    depth, i, n = 1, i + 2, len(sql)
    while i < n and depth:
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i if depth == 0 else -1


def _skip_string(sql: str, i: int, *, backslash: bool) -> int:
    """The index after a '…' literal whose body starts at ``i`` ('' is a quote; \\x an escape in E'…')."""
    n = len(sql)
    while i < n:
        c = sql[i]
        if backslash and c == "\\":
            i += 2
        elif c == "'":
            if sql.startswith("'", i + 1):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    raise _LexError("unterminated string literal")


def _quoted_identifier(sql: str, i: int) -> tuple[str, int]:
    """The text of a "…" identifier whose body starts at ``i`` ("" is a quote) and the index after it."""
    parts, n = [], len(sql)
    while i < n:
        j = sql.find('"', i)
        if j < 0:
            break
        parts.append(sql[i:j])
        if sql.startswith('"', j + 1):
            parts.append('"')
            i = j + 2
        else:
            return "".join(parts), j + 1
    raise _LexError("unterminated quoted identifier")


def _skip_space_and_comments(sql: str, i: int) -> int:
    n = len(sql)
    while i < n:
        if sql[i] in _PG_SPACE:
            i += 1
        elif sql.startswith("--", i):
            j = min((k for k in (sql.find("\n", i), sql.find("\r", i)) if k >= 0), default=n)
            i = j + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
            if i < 0:
                raise _LexError("unterminated /* comment")
        else:
            break
    return i


def _uescape(sql: str, i: int) -> tuple[str, int]:
    """An optional ``UESCAPE 'c'`` after a U& identifier: (escape character, index after the clause)."""
    j = _skip_space_and_comments(sql, i)
    if not _UESCAPE.match(sql, j):
        return "\\", i
    j = _skip_space_and_comments(sql, j + len("uescape"))
    m = _UESCAPE_CHAR.match(sql, j)
    if not m or m.group(1) in "0123456789abcdefABCDEF+'\"" or m.group(1) in _PG_SPACE:
        raise _LexError("bad UESCAPE clause")
    return m.group(1), m.end()


def _decode_unicode(text: str, escape: str) -> str:
    """The identifier a U&"…" body stands for (``\\XXXX``, ``\\+XXXXXX``, ``\\\\``)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c != escape:
            out.append(c)
            i += 1
        elif text.startswith(escape, i + 1):
            out.append(escape)
            i += 2
        elif re.fullmatch(r"[0-9A-Fa-f]{4}", text[i + 1 : i + 5]):
            out.append(_codepoint(text[i + 1 : i + 5]))
            i += 5
        elif text.startswith("+", i + 1) and re.fullmatch(r"[0-9A-Fa-f]{6}", text[i + 2 : i + 8]):
            out.append(_codepoint(text[i + 2 : i + 8]))
            i += 8
        else:
            raise _LexError("bad Unicode escape in a U& identifier")
    return "".join(out)


def _codepoint(hex_digits: str) -> str:
    value = int(hex_digits, 16)
    if value == 0 or value > 0x10FFFF:
        raise _LexError("bad Unicode escape in a U& identifier")
    return chr(value)


def _pg_reset(conn: sa.Connection, raw: Any) -> None:
    """Roll back (undoing SET LOCAL, large objects …) and drop session advisory locks, which outlive a
    rollback; a connection the query killed is discarded from the pool."""
    try:
        raw.rollback()
        with raw.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock_all()")
        raw.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone (killed by another session, server restart)
        conn.invalidate()


def _classify(exc: BaseException) -> OmnilabError:
    text = str(getattr(exc, "orig", exc))
    lowered = text.lower()
    if any(
        s in lowered
        for s in (
            "not authorized",
            "read-only",
            "read only",
            "readonly",
            "multiple commands",
            "one statement at a time",
            "query_only",
            "cannot modify",
        )
    ):
        return ReadOnlyViolation(f"lab.sql is read-only: {text.strip()}")
    return InvalidInput(f"query failed: {text.strip()}")
