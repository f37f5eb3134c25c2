"""The pgvector column of ``memory_vectors`` (``vector_backend="pgvector"``), which the models leave out.

``memory_vectors.embedding`` is a ``vector`` without a fixed dimension (a lab may be re-indexed with another
embedder); it exists only on a PostgreSQL server that has the pgvector extension, so it is not part of
the SQLAlchemy models: Alembic's comparison skips it and the HNSW indexes on it (see
``omnilab.sql.own_tables.include_object``), and a server without pgvector gets the same schema otherwise.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

__all__ = [
    "EMBEDDING_COLUMN",
    "HNSW_PREFIX",
    "vector_available",
    "has_vector_column",
    "add_vector_column",
    "drop_vector_column",
]

log = logging.getLogger(__name__)

EMBEDDING_COLUMN = "embedding"
#: prefix of the per-type HNSW indexes (``ix_memory_vectors_hnsw_<dim>_<type>``)
HNSW_PREFIX = "ix_memory_vectors_hnsw_"


def vector_available(conn: sa.Connection) -> bool:
    """The server can create the pgvector extension (installed in its share directory)."""
    if conn.dialect.name != "postgresql":
        return False
    return conn.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first() is not None


def has_vector_column(conn: sa.Connection) -> bool:
    """``memory_vectors.embedding`` exists (in the schema the connection's search_path finds first)."""
    if conn.dialect.name != "postgresql":
        return False
    found = conn.execute(
        sa.text(
            "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('memory_vectors') "
            "AND attname = :col AND NOT attisdropped"
        ),
        {"col": EMBEDDING_COLUMN},
    ).first()
    return found is not None


def add_vector_column(conn: sa.Connection) -> bool:
    """Create the extension (when the server has it) and the column; True when the column exists afterwards.

    Creating an extension needs a superuser (or the database owner on PostgreSQL 13+ for trusted ones): when
    the role may not, nothing changes here and opening a lab with pgvector explains what to run.
    """
    if has_vector_column(conn):
        return True
    if not vector_available(conn):
        return False
    try:
        with conn.begin_nested():  # a refused CREATE EXTENSION must not abort the migration's transaction
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
            conn.exec_driver_sql(f"ALTER TABLE memory_vectors ADD COLUMN IF NOT EXISTS {EMBEDDING_COLUMN} vector")
    except sa.exc.DBAPIError as exc:
        log.warning("pgvector is available but could not be enabled: %s", getattr(exc, "orig", exc))
        return False
    return True


def drop_vector_column(conn: sa.Connection) -> None:
    """Drop the column and its indexes (the extension stays: other objects may use it)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ALTER TABLE memory_vectors DROP COLUMN IF EXISTS {EMBEDDING_COLUMN}")
