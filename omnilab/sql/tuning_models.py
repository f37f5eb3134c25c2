"""Lab-internal table of tuned search thresholds (one row per memory type and embedder).

It lives on the platform models' ``MetaData`` so Alembic's comparison covers it, but it is imported by
``omnilab.sql.schema`` *after* ``TABLES`` is built: ``TABLES`` stays the platform's fifteen tables.
"""

from __future__ import annotations

import sqlalchemy as sa

from omnilab.sql.schema import Base
from omnilab.sql.types import JSONType, UTCDateTime, utcnow

__all__ = ["search_thresholds"]

#: (memory_type, embedder name) -> the cosine threshold chosen by ``lab.tune_threshold`` and how it scored
search_thresholds = sa.Table(
    "search_thresholds",
    Base.metadata,
    sa.Column("memory_type", sa.String(32), primary_key=True),
    sa.Column("embedder", sa.String(128), primary_key=True),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("f1", sa.Float, nullable=True),
    sa.Column("precision", sa.Float, nullable=True),
    sa.Column("recall", sa.Float, nullable=True),
    sa.Column("k", sa.Integer, nullable=True),
    sa.Column("n_queries", sa.Integer, nullable=True),
    sa.Column("details", JSONType, nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow),
)
