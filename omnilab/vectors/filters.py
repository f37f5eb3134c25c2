"""The ``where`` filter language, compiled to a SQLAlchemy Core clause on ``memory_entries``.

Keys: memory_entries columns, ``metadata.<key>`` (nested with more dots) and ``tags``. Values: a plain
value means equality; operators ``$eq $ne $in $nin $gt $gte $lt $lte``; ``$contains`` for ``tags`` and
list-valued metadata; ``$and``/``$or`` combine clauses. Unknown keys or operators raise ``InvalidInput``.
JSON values compare by type (numbers with numbers, strings with strings), identically on SQLite JSON1 and
PostgreSQL JSONB. ``$ne``/``$nin`` also match rows where the key is missing (Mongo semantics).

Limits, each an ``InvalidInput`` with a clear message rather than a database or recursion error:
``$and``/``$or`` nest at most :data:`MAX_WHERE_DEPTH` deep (and no value nests deeper than
:data:`MAX_WHERE_NESTING` containers), a filter holds at most :data:`MAX_WHERE_TERMS` conditions and an
``$in``/``$nin`` list at most :data:`MAX_IN_VALUES` values; integers must fit in 64 bits (an integer column:
its own range, 32 bits for INTEGER as on PostgreSQL) and text must not contain NUL characters (no stored
value can). A fraction compared with an integer column is exact (``priority > 5.5`` is ``priority >= 6``).
Long ``$in`` lists travel as *one* parameter (a JSON list read with ``json_each`` on SQLite, an array on
PostgreSQL), so they stay an exact SQL pre-filter of any length up to the limit, and long ``$and``/``$or``
lists are parenthesized as a balanced tree (SQLite refuses expression trees deeper than 1,000).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import numbers
import re
from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa

from omnilab.errors import InvalidInput
from omnilab.sql.schema import TABLES

__all__ = [
    "compile_where",
    "check_filter",
    "check_where",
    "OPERATORS",
    "FILTER_COLUMNS",
    "MAX_WHERE_DEPTH",
    "MAX_WHERE_NESTING",
    "MAX_WHERE_TERMS",
    "MAX_IN_VALUES",
]

#: how deep $and/$or may nest
MAX_WHERE_DEPTH = 32
#: how deep dicts and lists may nest anywhere in a filter (2 per $and/$or level, then a field's operators)
MAX_WHERE_NESTING = 2 * MAX_WHERE_DEPTH + 8
#: conditions (key/operator pairs) in one filter; each takes a few bound parameters
MAX_WHERE_TERMS = 1000
#: values in one $in/$nin list
MAX_IN_VALUES = 100_000
_INLINE_IN = 1000  # column lists up to this long are bound value by value (IN (?, ?, …))
_DATETIME_IN = 10_000  # date/time lists are always bound value by value: SQLite takes 32,766 parameters
_INT64 = (-(2**63), 2**63 - 1)
_BALANCE = 16  # $and/$or lists longer than this are parenthesized as a balanced tree

OPERATORS = ("$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$contains")
_COMPARE = {"$gt": "__gt__", "$gte": "__ge__", "$lt": "__lt__", "$lte": "__le__"}
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]+$")

_MEM = TABLES["memory_entries"]
#: columns a filter may name directly (JSON columns only through tags/metadata.<key>)
FILTER_COLUMNS = tuple(c.name for c in _MEM.columns if c.name not in ("metadata", "tags"))


def compile_where(
    where: Mapping[str, Any] | None, dialect: str, table: sa.Table = _MEM, columns: Collection[str] | None = None
) -> sa.ColumnElement | None:
    """A boolean SQL clause for ``where`` (``None`` for no filter). ``dialect``: "sqlite" or "postgresql".

    ``columns``: the columns the database really has (a platform database lacks omnilab's additions).
    """
    if where is None:
        return None
    if not isinstance(where, Mapping):
        raise InvalidInput(f"where must be a dict, got {type(where).__name__}")
    if not where:
        return None
    check_where(where)
    return _Compiler(dialect, table, columns).clause(where)


def check_filter(where: Any, columns: Collection[str] | None = None) -> None:
    """Raise ``InvalidInput`` exactly where :func:`compile_where` would, without building any SQL (a fraction
    of the cost): for filters answered in memory (``omnilab.vectors.masks``)."""
    if where is None:
        return
    if not isinstance(where, Mapping):
        raise InvalidInput(f"where must be a dict, got {type(where).__name__}")
    if where:
        check_where(where)
        _Checker("sqlite", _MEM, columns).clause(where)


def check_where(where: Any) -> None:
    """Raise ``InvalidInput`` if ``where`` nests deeper or holds more than the limits allow.

    Iterative, so it is safe on any input; call it before anything recursive touches a filter (``json.dumps``
    for a cache key, the compiler). It checks size and shape only; :func:`compile_where` checks the rest.
    """
    if where is None:
        return
    if not isinstance(where, Mapping):
        raise InvalidInput(f"where must be a dict, got {type(where).__name__}")
    terms = 0
    stack: list[tuple[Any, int, int]] = [(where, 1, 0)]  # (value, container depth, $and/$or depth)
    while stack:
        value, nesting, logic = stack.pop()
        if nesting > MAX_WHERE_NESTING:
            raise InvalidInput(f"where nests deeper than {MAX_WHERE_NESTING} levels of dicts and lists")
        if isinstance(value, Mapping):
            for key, sub in value.items():
                if key in ("$and", "$or"):
                    if logic + 1 > MAX_WHERE_DEPTH:
                        raise InvalidInput(f"where nests $and/$or deeper than {MAX_WHERE_DEPTH} levels")
                    stack.append((sub, nesting + 1, logic + 1))
                    continue
                if isinstance(key, str) and not key.startswith("$") and isinstance(sub, Mapping):
                    terms += len(sub)  # a field's operator dict: one condition per operator
                elif isinstance(key, str) and not key.startswith("$"):
                    terms += 1
                if isinstance(sub, (Mapping, list, tuple)):
                    stack.append((sub, nesting + 1, logic))
            if terms > MAX_WHERE_TERMS:
                raise InvalidInput(
                    f"where holds more than {MAX_WHERE_TERMS} conditions; combine values with $in instead"
                )
        elif isinstance(value, (list, tuple)):
            if len(value) > MAX_IN_VALUES:
                raise InvalidInput(f"a where list holds {len(value):,} values; at most {MAX_IN_VALUES:,} are allowed")
            stack.extend((sub, nesting + 1, logic) for sub in value if isinstance(sub, (Mapping, list, tuple)))


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
        _check_number(value, where)
        return "number"
    if isinstance(value, str):
        _check_text(value, where)
        return "string"
    raise InvalidInput(f"{where}: cannot compare with a {type(value).__name__} ({value!r})")


def _check_number(value: Any, where: str) -> None:
    """Integers within 64 bits (what both databases store), finite floats (JSON has no infinity)."""
    if isinstance(value, numbers.Integral):
        if not _INT64[0] <= int(value) <= _INT64[1]:
            raise InvalidInput(f"{where}: {value} is outside the 64-bit integer range")
    elif not math.isfinite(value):
        raise InvalidInput(f"{where}: cannot compare with {value!r}")


def _check_text(value: str, where: str) -> None:
    if "\x00" in value:  # PostgreSQL text cannot hold NUL, and omnilab never stores one
        raise InvalidInput(f"{where}: text contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates: no database can be asked about them
        raise InvalidInput(f"{where}: text is not valid Unicode ({exc.reason})") from exc


def _grouped(op: Any, clauses: list[sa.ColumnElement]) -> sa.ColumnElement:
    """``op(*clauses)``; long lists as a parenthesized balanced tree, so the expression depth grows as
    log(n) (SQLite parses a flat ``a OR b OR …`` as a chain n deep and refuses more than 1,000)."""
    if len(clauses) <= _BALANCE:
        return op(*clauses)
    half = len(clauses) // 2
    return op(
        *(sa.type_coerce(_grouped(op, part), sa.Boolean).self_group() for part in (clauses[:half], clauses[half:]))
    )


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
                parts.append(_grouped(sa.and_ if key == "$and" else sa.or_, subs))
            elif key.startswith("$"):
                raise InvalidInput(f"unknown filter operator {key!r} at top level; use $and/$or or a key")
            else:
                parts.append(self.field(key, cond))
        return _grouped(sa.and_, parts) if len(parts) > 1 else parts[0]

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
                f"unknown filter key {key!r}; use a column ({', '.join(self.columns)}), tags or metadata.<key>"
            )
        return sa.and_(*[self._column_op(self.t.c[key], op, v, key) for op, v in ops.items()])

    @staticmethod
    def _ops(key: str, cond: Any) -> dict[str, Any]:
        if isinstance(cond, Mapping):
            if not cond:
                raise InvalidInput(f"{key}: empty operator dict")
            bad = [op for op in cond if op not in OPERATORS]
            if bad:
                raise InvalidInput(
                    f"{key}: unknown operator(s) {', '.join(map(repr, bad))}; use {', '.join(OPERATORS)}"
                )
            return dict(cond)
        return {"$eq": cond}

    @staticmethod
    def _list(op: str, value: Any, key: str) -> list:
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise InvalidInput(f"{key}: {op} takes a list of values")
        values = list(itertools.islice(value, MAX_IN_VALUES + 1))
        if len(values) > MAX_IN_VALUES:
            raise InvalidInput(f"{key}: {op} takes at most {MAX_IN_VALUES:,} values")
        return values

    # ------------------------------------------------------------------------------- columns
    def _column_values(self, col: sa.Column, op: str, value: Any, key: str) -> list:
        """The checked values of a column operator's list ($in/$nin); refuses $contains on a column."""
        if op == "$contains":
            raise InvalidInput(f"{key}: $contains works on tags and list-valued metadata only")
        values = self._list(op, value, key) if op in ("$in", "$nin") else [value]
        for v in values:
            self._check_column_value(col, v, key)
        return values

    def _column_op(self, col: sa.Column, op: str, value: Any, key: str) -> sa.ColumnElement:
        if op in ("$contains", "$in", "$nin"):
            values = self._column_values(col, op, value, key)
            if not values:
                return sa.false() if op == "$in" else sa.true()
            member = self._column_in(col, values, key)
            if op == "$in":
                return member
            return sa.or_(sa.not_(member), col.is_(None)) if col.nullable else sa.not_(member)
        self._check_column_value(col, value, key)
        if isinstance(col.type, sa.Integer) and value is not None:
            return self._integer_op(col, op, value)
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

    def _integer_op(self, col: sa.Column, op: str, value: Any) -> sa.ColumnElement:
        """An integer column against a number, exactly and without casting the number to the column's type
        (PostgreSQL would round 5.5 to 6): a fraction never equals, and a bound moves to the next integer."""
        if float(value).is_integer():
            value = int(value)
        elif op == "$eq":
            return sa.false()
        elif op == "$ne":
            return sa.true()
        else:
            value = math.floor(value) if op in ("$gt", "$lte") else math.ceil(value)
        if op == "$eq":
            return col == value
        if op == "$ne":
            return sa.or_(col != value, col.is_(None)) if col.nullable else col != value
        return getattr(col, _COMPARE[op])(value)

    def _column_in(self, col: sa.Column, values: list, key: str) -> sa.ColumnElement:
        """``col IN values``: bound value by value when short, else as one parameter (any length)."""
        values = [v for v in values if v is not None]  # IN never matches NULL, as before
        if isinstance(col.type, sa.Integer):  # a fraction never equals an integer (and is not cast to one)
            values = [int(v) for v in values if float(v).is_integer()]
        if not values:
            return sa.false()
        if len(values) <= _INLINE_IN:
            return col.in_(values)
        if _is_datetime(col):  # needs the column's own conversion of every value
            if len(values) > _DATETIME_IN:
                raise _too_many_datetimes(key)
            return _grouped(sa.or_, [col.in_(values[i : i + _INLINE_IN]) for i in range(0, len(values), _INLINE_IN)])
        if self.pg:  # text[] (a cast to the column's varchar(n)[] would truncate) or bigint[]
            from sqlalchemy.dialects.postgresql import ARRAY

            element = (
                sa.Text()
                if isinstance(col.type, sa.String)
                else sa.BigInteger()
                if isinstance(col.type, sa.Integer)
                else col.type
            )
            return col == sa.any_(sa.bindparam(None, values, type_=ARRAY(element)))
        return col.in_(_json_list(values))

    @staticmethod
    def _check_column_value(col: sa.Column, value: Any, key: str) -> None:
        if value is None:
            return
        ctype = col.type
        if _is_datetime(col):
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
            _check_number(value, key)
            low, high = _int_range(ctype)
            if value < low or not value <= high:  # PostgreSQL refuses to bind it to the column's type
                raise InvalidInput(f"{key}: {value} is outside the column's integer range ({low}..{high})")
        elif isinstance(ctype, sa.String):
            if not isinstance(value, str):
                raise InvalidInput(f"{key}: expected text, got {value!r}")
            _check_text(value, key)

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
            if not values:
                return sa.false() if op == "$in" else sa.true()
            member = self._json_in(path, values, key)
            if op == "$in":
                return member
            return sa.func.coalesce(member, False).is_(False) if self.pg else sa.func.coalesce(member, 0) == 0
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

    def _json_in(self, path: tuple[str, ...], values: list, key: str) -> sa.ColumnElement:
        """The JSON value at ``path`` equals one of ``values`` (same typed equality as ``$eq``), with the
        whole list in one parameter: a jsonb[] on PostgreSQL, a JSON list per kind on SQLite."""
        kinds: dict[str, list] = {}
        for v in values:
            kinds.setdefault(_kind(v, key), []).append(v)
        plain = json_path_expr(self.t.name, path, self.pg)
        if self.pg:  # jsonb equality compares by JSON type: 1 = 1.0, "1" != 1, true != 1
            from sqlalchemy.dialects.postgresql import ARRAY

            probes = sa.bindparam(None, [json.dumps(v) for v in values], type_=ARRAY(sa.Text))
            return plain == sa.any_(sa.cast(probes, ARRAY(_jsonb())))
        col = self.t.c.metadata
        p = "$" + "".join(f'."{part}"' for part in path)
        jtype = sa.func.json_type(col, p)
        parts = []
        if "number" in kinds:
            parts.append(sa.and_(jtype.in_(["integer", "real"]), plain.in_(_json_list(kinds["number"]))))
        if "string" in kinds:
            parts.append(sa.and_(jtype == "text", plain.in_(_json_list(kinds["string"]))))
        if "bool" in kinds:
            parts.append(jtype.in_(sorted({"true" if v else "false" for v in kinds["bool"]})))
        return sa.or_(*parts)

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


def _too_many_datetimes(key: str) -> InvalidInput:
    return InvalidInput(
        f"{key}: $in/$nin on a date/time column takes at most {_DATETIME_IN:,} values; use $gte/$lte for a range"
    )


def _is_datetime(col: sa.Column) -> bool:
    return isinstance(col.type, sa.DateTime) or col.name.endswith(("_at", "_accessed"))


def _json_list(values: list) -> sa.Select:
    """``SELECT value FROM json_each(:list)``: a SQLite list of any length in one bound parameter."""
    each = sa.func.json_each(sa.bindparam(None, json.dumps(values), type_=sa.Text)).table_valued("value")
    return sa.select(each.alias("inlist").c.value)


def _int_range(ctype: sa.types.TypeEngine) -> tuple[int, int]:
    """The values a column of this integer type holds on both databases (INTEGER is 32-bit on PostgreSQL)."""
    if isinstance(ctype, sa.BigInteger):
        return _INT64
    if isinstance(ctype, sa.SmallInteger):
        return -(2**15), 2**15 - 1
    return -(2**31), 2**31 - 1


class _Checker(_Compiler):
    """The compiler's checks, with leaves that build nothing (every message is the compiler's own)."""

    def _column_op(self, col: sa.Column, op: str, value: Any, key: str) -> sa.ColumnElement:
        values = self._column_values(col, op, value, key)
        if op in ("$in", "$nin"):
            if _is_datetime(col) and sum(v is not None for v in values) > _DATETIME_IN:
                raise _too_many_datetimes(key)
            return _CHECKED
        if value is None and op not in ("$eq", "$ne"):
            raise InvalidInput(f"{key}: {op} cannot compare with None")
        return _CHECKED

    def _json_op(self, path: tuple[str, ...], op: str, value: Any, key: str) -> sa.ColumnElement:
        if op in ("$in", "$nin"):
            for v in self._list(op, value, key):
                _kind(v, key)
            return _CHECKED
        if value is None and op != "$contains":
            if op not in ("$eq", "$ne"):
                raise InvalidInput(f"{key}: {op} cannot compare with None")
            return _CHECKED
        kind = _kind(value, key)
        if op in _COMPARE and kind == "bool":
            raise InvalidInput(f"{key}: {op} needs a number or a string, not a boolean")
        return _CHECKED

    def _contains(self, col: sa.Column, path: tuple[str, ...], value: Any, key: str) -> sa.ColumnElement:
        _kind(value, key)
        return _CHECKED


_CHECKED = sa.true()
