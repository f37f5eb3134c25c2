"""omnilab's own tables — the embedding cache, the vector keys, the memory change log, the lab's settings,
the tuned search thresholds — and the keyword-search objects the models cannot express.

They live on their own ``METADATA``, apart from the platform's fifteen tables (``omnilab.sql.schema``), so
``TABLES`` (what ``lab.insert``/``lab.counts`` work on) stays the platform's; Alembic compares both metadata
objects, and a lab attached read-only keeps these tables in its own SQLite file.
"""

from __future__ import annotations

import sqlalchemy as sa

from omnilab.sql.schema import NAMING
from omnilab.sql.types import BigIntPK, JSONType, UTCDateTime, utcnow
from omnilab.sql.vector_column import EMBEDDING_COLUMN, HNSW_PREFIX

__all__ = [
    "METADATA",
    "embedding_cache",
    "lab_meta",
    "memory_vectors",
    "memory_changes",
    "search_thresholds",
    "FTS_NAMES",
    "FILTER_INDEX_PREFIX",
    "PG_TSV",
    "keyword_ddl",
    "include_object",
    "include_name",
]

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

#: small key/value facts about a lab: the embedder it was created with, the memory write generation, the
#: sample loaded into it
lab_meta = sa.Table(
    "lab_meta",
    METADATA,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", JSONType, nullable=True),
    sa.Column("counter", sa.BigInteger, nullable=False, default=0),
    sa.Column("updated_at", UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow),
)

#: omnilab's key for each memory: ``id`` is the integer FAISS id (and the keyword-index rowid), never the
#: platform's string ``memory_entries.id``, which it maps to. No foreign key: on an attached (read-only)
#: platform the memory rows live in another database.
memory_vectors = sa.Table(
    "memory_vectors",
    METADATA,
    sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
    sa.Column("memory_id", sa.String(50), nullable=False, unique=True),
    sa.Column("memory_type", sa.String(50), nullable=False),
    # sha256 of the whitespace-collapsed content (duplicate detection, change detection on attached labs)
    sa.Column("content_hash", sa.String(64), nullable=True, index=True),
    # embedding-cache key of the row's vector (None until embedded)
    sa.Column("embedding_key", sa.String(64), nullable=True),
    sqlite_autoincrement=True,  # ids are never reused: a FAISS id always means one memory
)

#: the memory change log: one row per memory a write added, updated or deleted ("resync": rows were written
#: by other code, compare everything), ``seq`` = the write generation of the writing transaction (so many
#: rows share one seq). Labs with other directories on the same database apply the rows past the seq their
#: index has; old rows are compacted (lab_meta "memory_changes_compacted_through").
memory_changes = sa.Table(
    "memory_changes",
    METADATA,
    sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
    sa.Column("seq", sa.BigInteger, nullable=False, index=True),
    sa.Column("vector_id", sa.BigInteger, nullable=True),
    sa.Column("op", sa.String(8), nullable=False),
    sa.Column("changed_at", UTCDateTime(), nullable=False, default=utcnow),
)

#: (memory_type, embedder name) -> the cosine threshold chosen by ``lab.tune_threshold`` and how it scored
search_thresholds = sa.Table(
    "search_thresholds",
    METADATA,
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

#: database objects for keyword search that the models cannot express (FTS5 table and its shadow
#: tables and triggers on SQLite, a generated tsvector column and its GIN index on PostgreSQL);
#: Alembic's comparison skips them.
FTS_NAMES = frozenset(
    {
        "memory_fts",
        "memory_fts_data",
        "memory_fts_idx",
        "memory_fts_content",
        "memory_fts_docsize",
        "memory_fts_config",
        "content_tsv",
        "ix_memory_entries_content_tsv",
        "memory_keywords",
        "ix_memory_keywords_tsv",
    }
)

#: prefix of the expression indexes users add for metadata filters (MemoryStore.add_filter_index)
FILTER_INDEX_PREFIX = "ix_memory_entries_meta_"


def _ours(name: str | None) -> bool:
    return name in FTS_NAMES or (name or "").startswith((FILTER_INDEX_PREFIX, HNSW_PREFIX))


def _vector_column(name: str | None, type_: str, table: str | None) -> bool:
    """pgvector's ``memory_vectors.embedding``, present only where the server has the extension."""
    return type_ == "column" and name == EMBEDDING_COLUMN and table == "memory_vectors"


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic hook: leave keyword-search objects and filter indexes out of autogenerate comparisons."""
    table = getattr(getattr(obj, "table", None), "name", None)
    return not _ours(name) and not _vector_column(name, type_, table)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic hook: do not even reflect the FTS5 shadow tables or the filter indexes."""
    table = parent_names.get("table_name") if isinstance(parent_names, dict) else None
    return not _ours(name) and not _vector_column(name, type_, table)


# the generated content_tsv column of revisions 0002-0008 (0009 replaced it by memory_keywords)
PG_TSV = (
    "to_tsvector('english', content || ' ' || regexp_replace(regexp_replace(regexp_replace(content, "
    "'([a-z0-9])([A-Z])', '\\1 \\2', 'g'), '([A-Z])([A-Z][a-z])', '\\1 \\2', 'g'), '[_\\W]+', ' ', 'g'))"
)


def keyword_ddl(dialect: str) -> list[str]:
    """Statements that create the keyword-search objects the models cannot express (revision 0009).

    PostgreSQL: the table ``memory_keywords`` (vector id, weighted ``tsvector``) with a GIN index. SQLite: an
    FTS5 table ``memory_fts(name, signature, body)`` whose rowid is ``memory_vectors.id`` and a trigger
    dropping a memory's keyword row when its key row goes. Rows are written by omnilab
    (:mod:`omnilab.sql.keywords`).
    """
    from omnilab.sql.keywords import KEYWORD_DDL

    return list(KEYWORD_DDL.get(dialect, KEYWORD_DDL["sqlite"]))
