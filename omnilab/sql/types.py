"""Column types shared by the models and the migrations (migrations import them, so keep them stable)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

__all__ = ["UTCDateTime", "JSONType", "utcnow"]


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp that is always UTC: aware values are converted, naive ones are taken as UTC.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text. Values come back aware (UTC)
    on both, so the two backends give identical results.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if hasattr(value, "to_pydatetime"):  # pandas Timestamp
            value = value.to_pydatetime()
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        else:
            value = value.astimezone(dt.timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


# JSON everywhere; JSONB on PostgreSQL so containment (@>) and indexing work.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# 64-bit surrogate keys; on SQLite it must be INTEGER to alias the rowid (and so autoincrement).
BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
__all__.append("BigIntPK")
