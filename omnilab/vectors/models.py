"""Tables of the vector memory that are not platform tables: the embedding cache and the lab's own settings.

They live on their own ``MetaData`` so ``omnilab.sql.schema.TABLES`` stays the fifteen platform tables
(``lab.insert``/``lab.counts`` work on those); Alembic compares both metadata objects.
"""

from __future__ import annotations

import sqlalchemy as sa

from omnilab.sql.schema import NAMING
from omnilab.sql.types import JSONType, UTCDateTime, utcnow

__all__ = ["METADATA", "embedding_cache", "lab_meta", "FTS_NAMES", "FILTER_INDEX_PREFIX"]

METADATA = sa.MetaData(naming_convention=NAMING)

#: (embedder name, sha256 of the preprocessed text) -> float32 vector bytes; never embedded twice
embedding_cache = sa.Table(
    "embedding_cache",
    METADATA,
    sa.Column("embedder", sa.String(128), primary_key=True),
    sa.Column("text_hash", sa.String(64), primary_key=True),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("vector", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
)

#: small key/value facts about a lab: the embedder it was created with, the memory write generation
lab_meta = sa.Table(
    "lab_meta",
    METADATA,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", JSONType, nullable=True),
    sa.Column("counter", sa.BigInteger, nullable=False, default=0),
    sa.Column("updated_at", UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow),
)

#: database objects for keyword search that the models cannot express (FTS5 table and its shadow
#: tables and triggers on SQLite, a generated tsvector column and its GIN index on PostgreSQL);
#: Alembic's comparison skips them.
FTS_NAMES = frozenset({
    "memory_fts", "memory_fts_data", "memory_fts_idx", "memory_fts_content", "memory_fts_docsize",
    "memory_fts_config", "content_tsv", "ix_memory_entries_content_tsv",
})


#: prefix of the expression indexes users add for metadata filters (MemoryStore.add_filter_index)
FILTER_INDEX_PREFIX = "ix_memory_entries_meta_"


def _ours(name: str | None) -> bool:
    return name in FTS_NAMES or (name or "").startswith(FILTER_INDEX_PREFIX)


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic hook: leave keyword-search objects and filter indexes out of autogenerate comparisons."""
    return not _ours(name)


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic hook: do not even reflect the FTS5 shadow tables or the filter indexes."""
    return not _ours(name)
