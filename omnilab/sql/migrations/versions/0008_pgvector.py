"""pgvector: memory_vectors.embedding

Revision ID: 0008
Revises: 0007
Create Date: 2027-02-01

On a PostgreSQL server that has the pgvector extension available, enable it and add the column
``memory_vectors.embedding vector`` (no fixed dimension) that ``vector_backend="pgvector"`` searches.
Elsewhere (SQLite, a server without pgvector, a role that may not create extensions) nothing changes:
the column is not part of the models, so the schema compares equal either way.
"""

from typing import Sequence, Union

from alembic import op

from omnilab.sql.vector_column import add_vector_column, drop_vector_column

revision: str = "0008"
down_revision: Union[str, None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    add_vector_column(op.get_bind())


def downgrade() -> None:
    drop_vector_column(op.get_bind())
