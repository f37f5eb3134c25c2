"""Validation of rows handed to ``Lab.insert``: clear errors naming the row and column, before any write."""

from __future__ import annotations

import datetime as dt
import json
import math
import numbers
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, SupportsInt

import numpy as np
import pandas as pd
import sqlalchemy as sa

from omnilab import enums
from omnilab.errors import InvalidInput
from omnilab.sql.schema import TABLES
from omnilab.sql.types import UTCDateTime

__all__ = ["normalize_rows", "validate_rows", "ENUM_COLUMNS", "is_missing", "check_json", "MAX_JSON_DEPTH"]

#: how deep a JSON value (metadata, tags, config, …) may nest: deeper ones are refused with InvalidInput
#: (Python's JSON encoder and the databases' JSON functions give up somewhere near 1,000)
MAX_JSON_DEPTH = 64

#: (table, column) -> allowed values
ENUM_COLUMNS: dict[tuple[str, str], tuple] = {
    ("agents", "agent_type"): enums.values(enums.AgentType),
    ("agents", "status"): enums.values(enums.AgentStatus),
    ("tasks", "status"): enums.values(enums.TaskStatus),
    ("tasks", "complexity"): enums.values(enums.TaskComplexity),
    ("memory_entries", "memory_type"): enums.values(enums.MemoryType),
}

#: (table, column) -> inclusive range
RANGE_COLUMNS: dict[tuple[str, str], tuple[float, float]] = {
    ("agents", "priority"): (1, 10),
    ("tasks", "priority"): (1, 10),
    ("tasks", "progress"): (0, 100),
    ("memory_entries", "priority"): (1, 10),
}

#: string primary keys generated (uuid4) when a row leaves them out
GENERATED_IDS = {("tasks", "id"), ("projects", "id"), ("workflows", "id"), ("memory_entries", "id")}

#: JSON columns that omnilab fills with an empty list/dict when a row leaves them out (the platform's own
#: rows may hold NULL there; readers tolerate both)
JSON_DEFAULTS: dict[tuple[str, str], type] = {
    ("agents", "capabilities"): list,
    ("agents", "model_requirements"): list,
    ("agents", "tags"): list,
    ("agents", "config"): dict,
    ("tasks", "context"): dict,
    ("projects", "settings"): dict,
    ("memory_entries", "tags"): list,
    ("memory_entries", "metadata"): dict,
    ("system_health", "metrics"): dict,
}


def is_missing(value: Any) -> bool:
    """None, NaN, NaT and pandas.NA all mean "no value"."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def normalize_rows(rows: Any) -> list[dict[str, Any]]:
    """A DataFrame, a mapping or an iterable of mappings as a list of plain dicts."""
    if isinstance(rows, pd.DataFrame):
        frame = rows.astype(object).where(rows.notna(), None)
        return [dict(zip(frame.columns.astype(str), rec)) for rec in frame.itertuples(index=False)]
    if isinstance(rows, Mapping):
        return [dict(rows)]
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Iterable):
        raise InvalidInput(f"rows must be a DataFrame or an iterable of dicts, not {type(rows).__name__}")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InvalidInput(f"row {i}: expected a dict, got {type(row).__name__}")
        out.append(dict(row))
    return out


def _to_datetime(table: str, col: sa.Column, value: Any, where: str) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = pd.Timestamp(value)
        except ValueError as exc:
            raise InvalidInput(f"{where}, column {col.name!r}: {value!r} is not a date/time") from exc
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        value = pd.Timestamp(value).to_pydatetime()
    if not isinstance(value, dt.datetime):
        raise InvalidInput(f"{where}, column {col.name!r}: expected a datetime, got {type(value).__name__}")
    return value


def _to_date(table: str, col: sa.Column, value: Any, where: str) -> dt.date:
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value[:10])
        except ValueError as exc:
            raise InvalidInput(f"{where}, column {col.name!r}: {value!r} is not a date (YYYY-MM-DD)") from exc
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        value = pd.Timestamp(value).to_pydatetime()
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        raise InvalidInput(f"{where}, column {col.name!r}: expected a date, got {type(value).__name__}")
    return value


def _to_json(table: str, col: sa.Column, value: Any, where: str) -> Any:
    name = col.name
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, tuple):
        value = list(value)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except RecursionError as exc:
            raise InvalidInput(f"{where}, column {name!r}: JSON nests deeper than {MAX_JSON_DEPTH} levels") from exc
        except ValueError as exc:
            raise InvalidInput(f"{where}, column {name!r}: a string here must be JSON text") from exc
    shape = JSON_DEFAULTS.get((table, name))
    if shape is list and not isinstance(value, list):
        raise InvalidInput(f"{where}, column {name!r}: expected a list, got {type(value).__name__}")
    if shape is dict and not isinstance(value, dict):
        raise InvalidInput(f"{where}, column {name!r}: expected a dict, got {type(value).__name__}")
    check_json(value, f"{where}, column {name!r}")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{where}, column {name!r}: not JSON-serializable ({exc})") from exc
    return value


def _to_bool(table: str, col: sa.Column, value: Any, where: str) -> bool:
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise InvalidInput(f"{where}, column {col.name!r}: expected a boolean, got {value!r}")


def _to_int(table: str, col: sa.Column, value: Any, where: str) -> int:
    name = col.name
    if isinstance(value, (bool, np.bool_)):
        raise InvalidInput(f"{where}, column {name!r}: expected an integer, got a boolean")
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif isinstance(value, numbers.Real) and float(value).is_integer():
        # exact, like int() (numpy floats have __int__ but no __trunc__; a Real need not have __int__)
        value = int(value) if isinstance(value, SupportsInt) else math.trunc(value)
    else:
        raise InvalidInput(f"{where}, column {name!r}: expected an integer, got {value!r}")
    if not -(2**63) <= value < 2**63:
        raise InvalidInput(f"{where}, column {name!r}: {value} is out of the 64-bit range")
    return value


def _to_float(table: str, col: sa.Column, value: Any, where: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidInput(f"{where}, column {col.name!r}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInput(f"{where}, column {col.name!r}: {value} is not a finite number")
    return value


def _to_text(table: str, col: sa.Column, value: Any, where: str) -> str:
    name = col.name
    if not isinstance(value, str):
        raise InvalidInput(f"{where}, column {name!r}: expected text, got {type(value).__name__}")
    if "\x00" in value:
        raise InvalidInput(f"{where}, column {name!r}: text contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{where}, column {name!r}: text is not valid Unicode ({exc.reason})") from exc
    length = col.type.length if isinstance(col.type, sa.String) else None
    if length is not None and len(value) > length:
        raise InvalidInput(f"{where}, column {name!r}: longer than {length} characters")
    return value


#: column type -> converter (checks a value and returns it in the form the driver takes); the first type the
#: column's type is an instance of wins, so subclasses come before their bases (BigInteger is an Integer, Text a
#: String). A type not listed passes its values through unchanged.
_CONVERTERS: tuple[tuple[type[Any], Callable[[str, sa.Column, Any, str], Any]], ...] = (
    (UTCDateTime, _to_datetime),
    (sa.Date, _to_date),
    (sa.JSON, _to_json),
    (sa.Boolean, _to_bool),
    (sa.Integer, _to_int),
    (sa.Float, _to_float),
    (sa.String, _to_text),
)


def _convert(table: str, col: sa.Column, value: Any, where: str) -> Any:
    """Check one value against its column and return it in the form the driver takes."""
    if is_missing(value):
        return None
    for ctype, convert in _CONVERTERS:
        if isinstance(col.type, ctype):
            value = convert(table, col, value, where)
            break
    name = col.name
    allowed = ENUM_COLUMNS.get((table, name))
    if allowed is not None and value not in allowed:
        raise InvalidInput(f"{where}, column {name!r}: {value!r} is not one of {', '.join(allowed)}")
    bounds = RANGE_COLUMNS.get((table, name))
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise InvalidInput(f"{where}, column {name!r}: {value} is outside {bounds[0]}..{bounds[1]}")
    return value


def check_json(value: Any, where: str) -> None:
    """Raise InvalidInput for a JSON value nested deeper than :data:`MAX_JSON_DEPTH` or holding text
    PostgreSQL cannot store (a NUL character, lone surrogates). Iterative, so any depth is safe to check."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_json_text(item, where)
            continue
        if not isinstance(item, (dict, list, tuple)):
            continue
        if depth > MAX_JSON_DEPTH:
            raise InvalidInput(f"{where}: JSON nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            for key, sub in item.items():
                if isinstance(key, str):
                    _check_json_text(key, where)
                stack.append((sub, depth + 1))
        else:
            stack.extend((sub, depth + 1) for sub in item)


def _check_json_text(text: str, where: str) -> None:
    if "\x00" in text:  # jsonb refuses \u0000, so it cannot be stored on PostgreSQL
        raise InvalidInput(f"{where}: JSON text contains a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInput(f"{where}: JSON text is not valid Unicode ({exc.reason})") from exc


def _default(col: sa.Column) -> Any:
    if not isinstance(col.default, sa.ColumnDefault):  # none (or one the database computes)
        return None
    arg = col.default.arg
    return arg(None) if callable(arg) else arg


def validate_rows(table_name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows checked and completed with defaults, all with the same keys (ready for executemany).

    Raises InvalidInput naming the first bad row and column; nothing has been written at that point.
    """
    table = TABLES[table_name]
    columns = {c.name: c for c in table.columns}
    pk = [c.name for c in table.primary_key.columns]
    out: list[dict[str, Any]] = []
    seen_keys: dict[tuple, int] = {}
    for i, row in enumerate(rows):
        where = f"{table_name} row {i}"
        unknown = [k for k in row if k not in columns]
        if unknown:
            raise InvalidInput(
                f"{where}: unknown column(s) {', '.join(map(repr, unknown))}; {table_name} has {', '.join(columns)}"
            )
        clean: dict[str, Any] = {}
        for name, col in columns.items():
            value = _convert(table_name, col, row.get(name), where)
            if value is None:
                if (table_name, name) in GENERATED_IDS:
                    value = str(uuid.uuid4())
                elif table_name == "agents" and name == "id" and isinstance(row.get("name"), str):
                    value = row["name"]
                elif col.primary_key and col.autoincrement is True:
                    continue  # the database assigns it
                elif (table_name, name) in JSON_DEFAULTS:
                    value = JSON_DEFAULTS[(table_name, name)]()
                else:
                    value = _default(col)
            if value is None and not col.nullable:
                raise InvalidInput(f"{where}: column {name!r} is required")
            clean[name] = value
        key = tuple(clean.get(c) for c in pk)
        if None not in key:
            if key in seen_keys:
                raise InvalidInput(f"{where}: duplicate primary key {key!r} (also row {seen_keys[key]})")
            seen_keys[key] = i
        out.append(clean)
    # executemany needs one shape: an explicit id in some rows but not others is ambiguous
    shapes = {frozenset(r) for r in out}
    if len(shapes) > 1:
        raise InvalidInput(f"{table_name}: give the integer id for every row or for none")
    return out


def check_foreign_keys(conn: sa.Connection, table_name: str, rows: list[dict[str, Any]]) -> None:
    """Raise InvalidInput naming the first row whose foreign key points at nothing."""
    table = TABLES[table_name]
    for fk in table.foreign_keys:
        col, target = fk.parent.name, fk.column
        wanted = {r[col] for r in rows if r.get(col) is not None}
        if not wanted:
            continue
        found: set = set()
        values = sorted(wanted, key=str)
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            found.update(conn.execute(sa.select(target).where(target.in_(chunk))).scalars())
        missing = wanted - found
        if missing:
            i = next(i for i, r in enumerate(rows) if r.get(col) in missing)
            raise InvalidInput(
                f"{table_name} row {i}, column {col!r}: {rows[i][col]!r} does not exist in "
                f"{target.table.name}.{target.name}"
            )
