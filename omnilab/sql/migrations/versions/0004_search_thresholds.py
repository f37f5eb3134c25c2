"""tuning: search_thresholds, the tuned cosine threshold per memory type and embedder

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Written by ``lab.save_threshold``; read by ``lab.search(..., threshold="tuned")`` and the search UI.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import omnilab.sql.types
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: Union[str, None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "search_thresholds",
        sa.Column("memory_type", sa.String(length=32), nullable=False),
        sa.Column("embedder", sa.String(length=128), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("f1", sa.Float(), nullable=True),
        sa.Column("precision", sa.Float(), nullable=True),
        sa.Column("recall", sa.Float(), nullable=True),
        sa.Column("k", sa.Integer(), nullable=True),
        sa.Column("n_queries", sa.Integer(), nullable=True),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column("updated_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("memory_type", "embedder", name=op.f("pk_search_thresholds")),
    )


def downgrade() -> None:
    op.drop_table("search_thresholds")
