"""analytics: a covering index for per-agent window aggregates on agent_performance

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

performance_summary / agent_performance aggregate one agent's runs in a time window. With
(agent_id, timestamp, execution_time, success, tokens_used) the database answers them from the index
alone (SQLite: "USING COVERING INDEX"; PostgreSQL: index-only scan), about 3x faster on the large
sample than the (agent_id, timestamp) index, which becomes a redundant prefix and is dropped.
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0003"
down_revision: Union[str, None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("agent_performance", schema=None) as batch_op:
        batch_op.create_index(
            "ix_agent_performance_agent_window",
            ["agent_id", "timestamp", "execution_time", "success", "tokens_used"],
            unique=False,
        )
        batch_op.drop_index("ix_agent_performance_agent_id_timestamp")


def downgrade() -> None:
    with op.batch_alter_table("agent_performance", schema=None) as batch_op:
        batch_op.create_index("ix_agent_performance_agent_id_timestamp", ["agent_id", "timestamp"], unique=False)
        batch_op.drop_index("ix_agent_performance_agent_window")
