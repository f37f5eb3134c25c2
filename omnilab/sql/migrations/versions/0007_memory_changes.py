"""memory change log: memory_changes, so labs in other directories on one database follow memory writes

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-20

Every memory write logs (seq = its write generation, vector id, op) in the same transaction; a lab whose
index has applied seq S applies only the rows past S before it searches. Writes made before this revision
were never logged: the compaction horizon starts at the current generation, so an index saved before the
upgrade (it records no applied seq) reconciles with SQL in full once.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import omnilab.sql.types

revision: str = "0007"
down_revision: Union[str, None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "memory_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("vector_id", sa.BigInteger(), nullable=True),
        sa.Column("op", sa.String(length=8), nullable=False),
        sa.Column("changed_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_changes")),
    )
    op.create_index(op.f("ix_memory_changes_seq"), "memory_changes", ["seq"], unique=False)
    meta = sa.table(
        "lab_meta",
        sa.column("key", sa.String),
        sa.column("counter", sa.BigInteger),
        sa.column("updated_at", omnilab.sql.types.UTCDateTime(timezone=True)),
    )
    conn = op.get_bind()
    generation = conn.execute(sa.select(meta.c.counter).where(meta.c.key == "memory_generation")).scalar()
    if generation:
        conn.execute(
            sa.insert(meta).values(
                key="memory_changes_compacted_through", counter=int(generation), updated_at=omnilab.sql.types.utcnow()
            )
        )


def downgrade() -> None:
    op.execute("DELETE FROM lab_meta WHERE key = 'memory_changes_compacted_through'")
    op.drop_index(op.f("ix_memory_changes_seq"), table_name="memory_changes")
    op.drop_table("memory_changes")
