"""Query results as pandas DataFrames with proper dtypes (UTC datetimes, nullable ints, decoded JSON)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa

from omnilab.sql.types import UTCDateTime

__all__ = ["read_frame", "table_dtypes"]


def table_dtypes(table: sa.Table) -> dict[str, str]:
    """pandas dtype per column of a table: datetime64[us, UTC], Int64, float64, boolean, object."""
    out: dict[str, str] = {}
    for col in table.columns:
        t = col.type
        if isinstance(t, UTCDateTime):
            out[col.name] = "datetime64[us, UTC]"
        elif isinstance(t, sa.Boolean):
            out[col.name] = "boolean"
        elif isinstance(t, sa.Integer):
            out[col.name] = "Int64"
        elif isinstance(t, sa.Float):
            out[col.name] = "float64"
        else:
            out[col.name] = "object"  # text and JSON (lists/dicts)
    return out


def read_frame(
    conn: sa.Connection, stmt: Any, params: Any = None, dtypes: dict[str, str] | None = None
) -> pd.DataFrame:
    """Execute ``stmt`` and return a DataFrame; ``dtypes`` maps result columns to pandas dtypes."""
    result = conn.execute(stmt, params or {})
    columns = list(result.keys())
    frame = pd.DataFrame.from_records(list(result), columns=columns)
    for name, dtype in (dtypes or {}).items():
        if name not in frame.columns:
            continue
        if dtype.startswith("datetime64"):
            frame[name] = pd.to_datetime(frame[name], utc=True).astype(dtype)
        elif dtype == "object":
            frame[name] = frame[name].astype(object)
        else:
            frame[name] = frame[name].astype(dtype)
    return frame
