"""The ``where`` filter language, compiled to a SQLAlchemy Core clause on ``memory_entries``.

Keys: memory_entries columns, ``metadata.<key>`` (nested with more dots) and ``tags``. Values: a plain
value means equality; operators ``$eq $ne $in $nin $gt $gte $lt $lte``; ``$contains`` for ``tags`` and
list-valued metadata; ``$and``/``$or`` combine clauses. Unknown keys or operators raise ``InvalidInput``.
JSON values compare by type (numbers with numbers, strings with strings), identically on SQLite JSON1 and
PostgreSQL JSONB. ``$ne``/``$nin`` also match rows where the key is missing (Mongo semantics).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import numbers
import re
from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa

from omnilab.errors import InvalidInput
from omnilab.sql.schema import TABLES

__all__ = ["compile_where", "OPERATORS", "FILTER_COLUMNS"]

OPERATORS = ("$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$contains")
_COMPARE = {"$gt": "__gt__", "$gte": "__ge__", "$lt": "__lt__", "$lte": "__le__"}
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]+$")

_MEM = TABLES["memory_entries"]
#: columns a filter may name directly (JSON columns only through tags/metadata.<key>)
FILTER_COLUMNS = tuple(c.name for c in _MEM.columns if c.name not in ("metadata", "tags"))


def compile_where(where: Mapping[str, Any] | None, dialect: str, table: sa.Table = _MEM,
                  columns: Collection[str] | None = None) -> sa.ColumnElement | None:
    """A boolean SQL clause for ``where`` (``None`` for no filter). ``dialect``: "sqlite" or "postgresql".

    ``columns``: the columns the database really has (a platform database lacks omnilab's additions).
    """
    if where is None:
        return None
    if not isinstance(where, Mapping):
        raise InvalidInput(f"where must be a dict, got {type(where).__name__}")
    if not where:
        return None
    return _Compiler(dialect, table, columns).clause(where)


def _jsonb() -> Any:
    from sqlalchemy.dialects.postgresql import JSONB

    return JSONB()


def json_path_expr(table: str | None, path: tuple[str, ...], pg: bool) -> sa.ColumnElement:
    """``metadata -> 'a' -> 'b'`` (PG) or ``json_extract(metadata, '$."a"."b"')`` (SQLite) as literal SQL.

    Literal, not bound, so that it is textually identical to an expression index. Callers validate
    every part against ``_KEY_RE`` (letters, digits, ``_``, ``-``), so nothing can be injected.
    """
    if not all(_KEY_RE.match(p) for p in path):
        raise InvalidInput(f"bad metadata key {'.'.join(path)!r}")
    col = f"{table}.metadata" if table else "metadata"  # index definitions take the bare column
    if pg:
        return sa.literal_column(col + "".join(f" -> '{p}'" for p in path))
    return sa.literal_column(f"json_extract({col}, '$" + "".join(f'."{p}"' for p in path) + "')")


def _kind(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, numbers.Real):
        if isinstance(value, float) and value != value:
            raise InvalidInput(f"{where}: NaN cannot be compared")
        return "number"
    if isinstance(value, str):
        return "string"
    raise InvalidInput(f"{where}: cannot compare with a {type(value).__name__} ({value!r})")


class _Compiler:
    def __init__(self, dialect: str, table: sa.Table, columns: Collection[str] | None = None) -> None:
        self.pg = dialect == "postgresql"
        self.t = table
        self.columns = tuple(c for c in FILTER_COLUMNS if columns is None or c in columns)

    def clause(self, where: Mapping[str, Any]) -> sa.ColumnElement:
        parts = []
        for key, cond in where.items():
            if not isinstance(key, str):
                raise InvalidInput(f"filter keys must be strings, got {key!r}")
            if key in ("$and", "$or"):
                if not isinstance(cond, (list, tuple)) or not cond or not all(isinstance(c, Mapping) for c in cond):
                    raise InvalidInput(f"{key} takes a non-empty list of filter dicts")
                subs = [self.clause(c) for c in cond]
                parts.append(sa.and_(*subs) if key == "$and" else sa.or_(*subs))
            elif key.startswith("$"):
                raise InvalidInput(f"unknown filter operator {key!r} at top level; use $and/$or or a key")
            else:
                parts.append(self.field(key, cond))
        return sa.and_(*parts) if len(parts) > 1 else parts[0]

    # ---------------------------------------------------------------------------------- one key
    def field(self, key: str, cond: Any) -> sa.ColumnElement:
        ops = self._ops(key, cond)
        if key == "tags":
            if set(ops) != {"$contains"}:
                raise InvalidInput('tags supports only {"$contains": "<tag>"}')
            return self._contains(self.t.c.tags, (), ops["$contains"], key)
        if key.startswith("metadata."):
            path = tuple(key.split(".")[1:])
            if not path or not all(_KEY_RE.match(p) for p in path):
                raise InvalidInput(f"bad metadata key {key!r}: use metadata.<name> with letters, digits, _ or -")
            return sa.and_(*[self._json_op(path, op, v, key) for op, v in ops.items()])
        if key not in self.columns:
            raise InvalidInput(
                f"unknown filter key {key!r}; use a column ({', '.join(self.columns)}), tags or metadata.<key>")
        return sa.and_(*[self._column_op(self.t.c[key], op, v, key) for op, v in ops.items()])

    @staticmethod
    def _ops(key: str, cond: Any) -> dict[str, Any]:
        if isinstance(cond, Mapping):
            if not cond:
                raise InvalidInput(f"{key}: empty operator dict")
            bad = [op for op in cond if op not in OPERATORS]
            if bad:
                raise InvalidInput(
                    f"{key}: unknown operator(s) {', '.join(map(repr, bad))}; use {', '.join(OPERATORS)}")
            return dict(cond)
        return {"$eq": cond}

    @staticmethod
    def _list(op: str, value: Any, key: str) -> list:
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise InvalidInput(f"{key}: {op} takes a list of values")
        return list(value)

    # ------------------------------------------------------------------------------- columns
    def _column_op(self, col: sa.Column, op: str, value: Any, key: str) -> sa.ColumnElement:
        if op == "$contains":
            raise InvalidInput(f"{key}: $contains works on tags and list-valued metadata only")
        if op in ("$in", "$nin"):
            values = self._list(op, value, key)
            for v in values:
                self._check_column_value(col, v, key)
            if op == "$in":
                return col.in_(values) if values else sa.false()
            return sa.or_(col.not_in(values), col.is_(None)) if values else sa.true()
        self._check_column_value(col, value, key)
        if value is None:
            if op == "$eq":
                return col.is_(None)
            if op == "$ne":
                return col.is_not(None)
            raise InvalidInput(f"{key}: {op} cannot compare with None")
        if op == "$eq":
            return col == value
        if op == "$ne":
            return sa.or_(col != value, col.is_(None)) if col.nullable else col != value
        return getattr(col, _COMPARE[op])(value)

    @staticmethod
    def _check_column_value(col: sa.Column, value: Any, key: str) -> None:
        if value is None:
            return
        ctype = col.type
        if isinstance(ctype, sa.DateTime) or col.name.endswith(("_at", "_accessed")):
            if isinstance(value, str):
                try:
                    dt.datetime.fromisoformat(value)
                except ValueError as exc:
                    raise InvalidInput(f"{key}: {value!r} is not an ISO date/time") from exc
            elif not isinstance(value, dt.datetime):
                raise InvalidInput(f"{key}: expected a datetime or ISO string, got {type(value).__name__}")
        elif isinstance(ctype, sa.Integer):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise InvalidInput(f"{key}: expected a number, got {value!r}")
            if not math.isfinite(value):  # NaN compares false with everything: it would silently match nothing
                raise InvalidInput(f"{key}: cannot compare with {value!r}")
        elif isinstance(ctype, sa.String) and not isinstance(value, str):
            raise InvalidInput(f"{key}: expected text, got {value!r}")

    # ---------------------------------------------------------------------------------- JSON
    def _typed(self, path: tuple[str, ...], kind: str) -> sa.ColumnElement:
        """The JSON value at ``path`` as SQL of ``kind``, NULL when missing or of another JSON type."""
        col = self.t.c.metadata
        if self.pg:
            j = sa.func.jsonb_extract_path(col, *path)
            txt = sa.func.jsonb_extract_path_text(col, *path)
            jtype = sa.func.jsonb_typeof(j)
            if kind == "number":
                return sa.case((jtype == "number", sa.cast(txt, sa.Numeric)), else_=None)
            if kind == "string":
                return sa.case((jtype == "string", txt), else_=None)
            return sa.case((jtype == "boolean", sa.cast(txt, sa.Boolean)), else_=None)
        p = "$" + "".join(f'."{part}"' for part in path)
        jtype = sa.func.json_type(col, p)
        val = sa.func.json_extract(col, p)
        if kind == "number":
            return sa.case((jtype.in_(["integer", "real"]), val), else_=None)
        if kind == "string":
            return sa.case((jtype == "text", val), else_=None)
        return sa.case((jtype == "true", 1), (jtype == "false", 0), else_=None)

    def _json_eq(self, path: tuple[str, ...], value: Any, key: str) -> sa.ColumnElement:
        kind = _kind(value, key)
        expr = self._typed(path, kind)
        raw = value
        if kind == "bool" and not self.pg:
            value = int(value)
        # The plain extraction, redundant with the typed test, lets an expression index answer the
        # equality (see add_filter_index); path parts match _KEY_RE, so inlining them is safe.
        plain = json_path_expr(self.t.name, path, self.pg)
        if self.pg:
            probe = sa.cast(sa.bindparam(None, json.dumps(raw), type_=sa.Text), _jsonb())
            return sa.and_(plain == probe, expr == value)
        return sa.and_(plain == value, expr == value)

    def _json_op(self, path: tuple[str, ...], op: str, value: Any, key: str) -> sa.ColumnElement:
        if op == "$contains":
            return self._contains(self.t.c.metadata, path, value, key)
        if op in ("$in", "$nin"):
            values = self._list(op, value, key)
            eqs = [self._json_eq(path, v, key) for v in values]
            if op == "$in":
                return sa.or_(*eqs) if eqs else sa.false()
            return sa.and_(*[sa.func.coalesce(e, False).is_(False) if self.pg else sa.func.coalesce(e, 0) == 0
                             for e in eqs]) if eqs else sa.true()
        if value is None:
            present = self._present(path)
            if op == "$eq":
                return sa.not_(present)
            if op == "$ne":
                return present
            raise InvalidInput(f"{key}: {op} cannot compare with None")
        if op == "$eq":
            return self._json_eq(path, value, key)
        if op == "$ne":
            eq = self._json_eq(path, value, key)
            return sa.func.coalesce(eq, False).is_(False) if self.pg else sa.func.coalesce(eq, 0) == 0
        kind = _kind(value, key)
        if kind == "bool":
            raise InvalidInput(f"{key}: {op} needs a number or a string, not a boolean")
        return getattr(self._typed(path, kind), _COMPARE[op])(value)

    def _present(self, path: tuple[str, ...]) -> sa.ColumnElement:
        """The key exists with a non-null value."""
        col = self.t.c.metadata
        if self.pg:
            return sa.func.coalesce(sa.func.jsonb_typeof(sa.func.jsonb_extract_path(col, *path)), "null") != "null"
        p = "$" + "".join(f'."{part}"' for part in path)
        return sa.func.coalesce(sa.func.json_type(col, p), "null") != "null"

    def _contains(self, col: sa.Column, path: tuple[str, ...], value: Any, key: str) -> sa.ColumnElement:
        _kind(value, key)
        if self.pg:
            target = sa.func.jsonb_extract_path(col, *path) if path else col
            from sqlalchemy.dialects.postgresql import JSONB

            probe = sa.cast(sa.bindparam(None, json.dumps([value]), type_=sa.Text), JSONB)
            return sa.func.coalesce(target.op("@>")(probe), False)
        p = "$" + "".join(f'."{part}"' for part in path)
        each = sa.func.json_each(col, p).table_valued("value", "type").alias("je")
        if isinstance(value, bool):
            cond = each.c.type == ("true" if value else "false")
        elif isinstance(value, str):
            cond = sa.and_(each.c.type == "text", each.c.value == value)
        else:
            cond = sa.and_(each.c.type.in_(["integer", "real"]), each.c.value == value)
        return sa.exists(sa.select(sa.literal(1)).select_from(each).where(cond))
