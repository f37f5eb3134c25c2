"""vector memory: embedding cache, lab_meta, memory hashes, keyword-search index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Keyword search objects are backend-specific and invisible to the models (Alembic's comparison skips
them, see ``omnilab.sql.own_tables.FTS_NAMES``): an FTS5 table with a delete/update trigger on SQLite,
a generated ``tsvector`` column with a GIN index on PostgreSQL.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import omnilab.sql.types
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: Union[str, None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# camelCase and snake_case identifiers split into words, the whole text kept too
PG_TSV = (
    "to_tsvector('english', content || ' ' || regexp_replace(regexp_replace(regexp_replace(content, "
    "'([a-z0-9])([A-Z])', '\\1 \\2', 'g'), '([A-Z])([A-Z][a-z])', '\\1 \\2', 'g'), '[_\\W]+', ' ', 'g'))"
)


def upgrade() -> None:
    op.create_table(
        "embedding_cache",
        sa.Column("embedder", sa.String(length=128), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("embedder", "text_hash", name=op.f("pk_embedding_cache")),
    )
    op.create_table(
        "lab_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column(
            "value", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_lab_meta")),
    )
    with op.batch_alter_table("memory_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("embedding_key", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_memory_entries_content_hash"), ["content_hash"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE memory_entries ADD COLUMN content_tsv tsvector GENERATED ALWAYS AS ({PG_TSV}) STORED")
        op.execute("CREATE INDEX ix_memory_entries_content_tsv ON memory_entries USING gin (content_tsv)")
    else:
        # Rows are written by omnilab (identifier-split text, same transaction as the memory row);
        # the triggers make deletes and content edits from anywhere drop the stale keyword row.
        op.execute("CREATE VIRTUAL TABLE memory_fts USING fts5(body, tokenize='porter unicode61')")
        op.execute(
            "CREATE TRIGGER memory_fts_ad AFTER DELETE ON memory_entries BEGIN "
            "DELETE FROM memory_fts WHERE rowid = old.id; END"
        )
        op.execute(
            "CREATE TRIGGER memory_fts_au AFTER UPDATE OF content ON memory_entries BEGIN "
            "DELETE FROM memory_fts WHERE rowid = old.id; END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_memory_entries_content_tsv")
        op.execute("ALTER TABLE memory_entries DROP COLUMN IF EXISTS content_tsv")
    else:
        op.execute("DROP TRIGGER IF EXISTS memory_fts_au")
        op.execute("DROP TRIGGER IF EXISTS memory_fts_ad")
        op.execute("DROP TABLE IF EXISTS memory_fts")
    with op.batch_alter_table("memory_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memory_entries_content_hash"))
        batch_op.drop_column("embedding_key")
        batch_op.drop_column("content_hash")

    op.drop_table("lab_meta")
    op.drop_table("embedding_cache")
