"""``where`` filters evaluated over :class:`~omnilab.vectors.columns.MemoryColumns`: a boolean mask per row.

The same language and the same answers as the SQL compiler (:mod:`omnilab.vectors.filters`), which has
already validated the filter (this module assumes a valid one). Text and JSON values are dictionary-encoded
once per field (an int32 code per row and the distinct values), so an operator is evaluated over the
distinct values and mapped to the rows with one array lookup; numbers and timestamps compare as arrays.

Where the two databases answer differently, or this module cannot be exact, it raises :class:`Unsupported`
and the search asks SQL instead: range comparisons of text on PostgreSQL (collation order), metadata paths
with all-digit parts on PostgreSQL (array indexes there), ``$contains`` over values that are neither lists
nor missing, numbers beyond 2**53 in a range comparison, and the columns not held in memory
(``access_count``, ``last_accessed``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from omnilab.vectors.columns import HELD_COLUMNS, NAT, MemoryColumns, now_micros

__all__ = ["where_mask", "Unsupported"]

_MISSING = object()
_EXACT = 2**53  # float64 holds every integer up to here
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
_TEXT_COLUMNS = {"id": "memory_id", "memory_type": "memory_type", "content": "content"} | {
    c: c for c in ("agent_id", "session_id", "project_id")
}
_TIME_COLUMNS = {"created_at": "created", "updated_at": "updated", "expires_at": "expires"}


class Unsupported(Exception):
    """This filter (or part of it) is answered by SQL, not in memory."""


def where_mask(where: Mapping[str, Any], cols: MemoryColumns) -> np.ndarray:
    """Boolean mask over ``cols``' rows (dead ones included) of the rows matching ``where``."""
    return _Evaluator(cols).clause(where)


def _key(value: Any) -> tuple[Any, ...]:
    """A JSON value as a dictionary key that compares as the databases do: by JSON type, numbers by value."""
    if value is _MISSING:
        return ("m",)
    if value is None:
        return ("z",)
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)  # 1 and 1.0 are one key, as in JSON comparisons
    if isinstance(value, str):
        return ("s", value)
    return ("j", json.dumps(value, sort_keys=True))


class _Encoding:
    """Dictionary encoding of one field: ``codes`` (int32 per row), ``values`` (distinct), their ``keys``."""

    def __init__(self) -> None:
        self.codes = np.zeros(0, dtype=np.int32)
        self.values: list[Any] = []
        self.index: dict[Any, int] = {}
        self._numbers: np.ndarray | None = None

    def extend(self, values: Any, key: Callable[[Any], Any]) -> None:
        index, distinct = self.index, self.values
        new = np.empty(len(values), dtype=np.int32)
        for i, v in enumerate(values):
            k = key(v)
            c = index.get(k)
            if c is None:
                c = index[k] = len(distinct)
                distinct.append(v)
            new[i] = c
        self.codes = np.concatenate([self.codes, new]) if self.codes.size else new
        self._numbers = None

    def table(self, pick: Callable[[Any], bool]) -> np.ndarray:
        """Boolean per distinct value."""
        return np.fromiter((bool(pick(v)) for v in self.values), dtype=bool, count=len(self.values))

    def numbers(self) -> np.ndarray:
        """Each distinct value as float64 when it is a JSON number (not a boolean), else NaN."""
        if self._numbers is None:
            nums = np.full(len(self.values), np.nan)
            for i, v in enumerate(self.values):
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    if isinstance(v, int) and abs(v) > _EXACT:
                        raise Unsupported("an integer beyond 2**53 in a range comparison")
                    nums[i] = v
            self._numbers = nums
        return self._numbers

    def member(self, keys: list[Any]) -> np.ndarray:
        """Rows whose value's key is one of ``keys``."""
        table = np.zeros(len(self.values) + 1, dtype=bool)
        for k in keys:
            c = self.index.get(k)
            if c is not None:
                table[c] = True
        return table[self.codes]


class _Evaluator:
    def __init__(self, cols: MemoryColumns) -> None:
        self.cols = cols
        self.n = cols.n

    # ---------------------------------------------------------------------------------- encodings
    def _encoding(self, name: Any, source: Callable[[int, int], Any], key: Callable[[Any], Any]) -> _Encoding:
        """The encoding of a field, built or extended to the current rows (kept in ``cols.derived``)."""
        enc = self.cols.derived.get(name)
        if enc is None:
            enc = self.cols.derived[name] = _Encoding()
        built = enc.codes.size
        if built < self.n:
            enc.extend(source(built, self.n), key)
        return enc

    def _text(self, column: str) -> _Encoding:
        field = _TEXT_COLUMNS[column]
        return self._encoding(("text", field), lambda a, b: self.cols.field(field)[a:b], lambda v: v)

    def _path(self, path: tuple[str, ...]) -> _Encoding:
        def source(a: int, b: int) -> list[Any]:
            out = []
            for d in self.cols.field("metadata")[a:b]:
                v: Any = d
                for part in path:
                    v = v.get(part, _MISSING) if isinstance(v, dict) else _MISSING
                out.append(v)
            return out

        return self._encoding(("path", path), source, _key)

    # ------------------------------------------------------------------------------------ clauses
    def clause(self, where: Mapping[str, Any]) -> np.ndarray:
        mask = np.ones(self.n, dtype=bool)
        for key, cond in where.items():
            if key in ("$and", "$or"):
                subs = [self.clause(c) for c in cond]
                part = _and(subs) if key == "$and" else functools.reduce(np.logical_or, subs)
            else:
                part = self.field(key, cond)
            mask &= part
        return mask

    def field(self, key: str, cond: Any) -> np.ndarray:
        ops = dict(cond) if isinstance(cond, Mapping) else {"$eq": cond}
        if key == "tags":
            return self._tags(ops["$contains"])
        if key.startswith("metadata."):
            path = tuple(key.split(".")[1:])
            if self.cols.pg and any(p.isdigit() for p in path):
                raise Unsupported("a metadata path with an all-digit part on PostgreSQL")
            enc = self._path(path)
            return _and([self._json_op(enc, op, v) for op, v in ops.items()])
        if key not in HELD_COLUMNS:
            raise Unsupported(f"{key} is not held in memory")
        if key in _TIME_COLUMNS:
            arr = getattr(self.cols, _TIME_COLUMNS[key])[: self.n]
            return _and([self._time_op(arr, op, v) for op, v in ops.items()])
        if key == "priority":
            return _and([self._int_op(op, v) for op, v in ops.items()])
        enc = self._text(key)
        return _and([self._text_op(enc, op, v) for op, v in ops.items()])

    # ------------------------------------------------------------------------------------ columns
    def _text_op(self, enc: _Encoding, op: str, value: Any) -> np.ndarray:
        null = enc.member([None])
        if op in ("$in", "$nin"):
            member = enc.member([v for v in value if v is not None])
            return member if op == "$in" else ~member | null
        if value is None:
            return null if op == "$eq" else ~null
        if op == "$eq":
            return enc.member([value])
        if op == "$ne":
            return ~enc.member([value]) | null
        if self.cols.pg:
            raise Unsupported("text order is the database's collation on PostgreSQL")
        cmp = _COMPARE[op]
        return enc.table(lambda v: v is not None and cmp(v, value))[enc.codes]

    def _int_op(self, op: str, value: Any) -> np.ndarray:
        vals, null = self.cols.priority[: self.n], self.cols.priority_null[: self.n]
        if op in ("$in", "$nin"):
            ints = [int(v) for v in value if v is not None and float(v).is_integer()]
            member = np.isin(vals, np.asarray(ints, dtype=np.int64)) & ~null
            return member if op == "$in" else ~member | null
        if value is None:
            return null if op == "$eq" else ~null
        if float(value).is_integer():
            value = int(value)
        elif op == "$eq":
            return np.zeros(self.n, dtype=bool)
        elif op == "$ne":
            return np.ones(self.n, dtype=bool)
        else:
            value = math.floor(value) if op in ("$gt", "$lte") else math.ceil(value)
        if op == "$eq":
            return (vals == value) & ~null
        if op == "$ne":
            return (vals != value) | null
        return _COMPARE[op](vals, value) & ~null

    def _time_op(self, arr: np.ndarray, op: str, value: Any) -> np.ndarray:
        null = arr == NAT
        if op in ("$in", "$nin"):
            values = [_micros(v) for v in value if v is not None]
            member = np.isin(arr, np.asarray(values, dtype=np.int64)) & ~null
            return member if op == "$in" else ~member | null
        if value is None:
            return null if op == "$eq" else ~null
        us = _micros(value)
        if op == "$eq":
            return (arr == us) & ~null
        if op == "$ne":
            return (arr != us) | null
        return _COMPARE[op](arr, us) & ~null

    # ---------------------------------------------------------------------------------------- JSON
    def _json_op(self, enc: _Encoding, op: str, value: Any) -> np.ndarray:
        if op == "$contains":
            return self._contains(enc, value)
        if op in ("$in", "$nin"):
            member = enc.member([_key(v) for v in value])
            return member if op == "$in" else ~member
        if value is None:
            absent = enc.member([_key(_MISSING), _key(None)])
            return absent if op == "$eq" else ~absent
        if op == "$eq":
            return enc.member([_key(value)])
        if op == "$ne":
            return ~enc.member([_key(value)])
        cmp = _COMPARE[op]
        if isinstance(value, str):
            if self.cols.pg:
                raise Unsupported("text order is the database's collation on PostgreSQL")
            return enc.table(lambda v: isinstance(v, str) and cmp(v, value))[enc.codes]
        if isinstance(value, int) and abs(value) > _EXACT:
            raise Unsupported("an integer beyond 2**53 in a range comparison")
        with np.errstate(invalid="ignore"):
            return cmp(enc.numbers(), value)[enc.codes]

    def _contains(self, enc: _Encoding, value: Any) -> np.ndarray:
        want = _key(value)

        def pick(v: Any) -> bool:
            if isinstance(v, list):
                return any(_key(e) == want for e in v)
            if v is _MISSING or v is None:
                return False
            raise Unsupported("$contains over a value that is not a list (the databases differ there)")

        return enc.table(pick)[enc.codes]

    def _tags(self, value: Any) -> np.ndarray:
        return self._contains(self._encoding(("tags",), lambda a, b: self.cols.field("tags")[a:b], _key), value)


def _and(masks: list[np.ndarray]) -> np.ndarray:
    return functools.reduce(np.logical_and, masks)


def _micros(value: Any) -> int:
    """A filter's date/time value (datetime, pandas Timestamp or ISO text; naive means UTC) in microseconds."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return now_micros(value.astimezone(dt.timezone.utc))
