"""queue ownership: tasks.queue_name and tasks.lab_id

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-10

Each task row records the omnilab queue that holds it and the lab that queued it, so ``queue.recover()``
puts a lab's own tasks back on their own queues after Redis lost them, and a lab never leases another
lab's task. Both columns are nullable: existing rows (and rows the platform writes) have no owner until a
lab claims them.

PostgreSQL adds the columns in place. SQLite rebuilds ``tasks`` (copy aside, drop, create, copy back in
one transaction, foreign keys deferred and checked at commit), so the table's DDL is exactly what a fresh
database gets from the models: ``ALTER TABLE ADD COLUMN`` would append the columns after the table's
constraints. The children's ``REFERENCES tasks`` are untouched by this (nothing is renamed).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import omnilab.sql.types
from sqlalchemy.dialects import postgresql

revision: str = '0006'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_OLD_COLUMNS = (
    "id", "content", "task_type", "complexity", "priority", "agent_id", "status", "progress", "result",
    "error_message", "context", "constraints", "session_id", "project_id", "created_at", "started_at",
    "completed_at", "estimated_completion", "description", "workflow_id", "retry_count", "estimated_duration",
    "updated_at",
)
_INDEXES = (("idx_tasks_agent_id", ["agent_id"]), ("idx_tasks_created_at", ["created_at"]),
            ("idx_tasks_status", ["status"]), ("ix_tasks_project_id", ["project_id"]))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.add_column('tasks', sa.Column('queue_name', sa.String(length=100), nullable=True))
        op.add_column('tasks', sa.Column('lab_id', sa.String(length=200), nullable=True))
        op.create_index('ix_tasks_lab_id_status', 'tasks', ['lab_id', 'status'], unique=False)
        return
    raw = bind.connection.dbapi_connection
    if not raw.in_transaction:  # one transaction for the whole rebuild (the driver would autocommit DDL)
        bind.exec_driver_sql("BEGIN")
    # dropping tasks deletes its rows first: the children's references are checked at commit instead,
    # by when every row is back
    bind.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
    columns = ", ".join(_OLD_COLUMNS)
    bind.exec_driver_sql("CREATE TEMP TABLE _old0005_tasks AS SELECT * FROM main.tasks")
    for name, _ in _INDEXES:
        op.drop_index(name, table_name='tasks')
    op.drop_table('tasks')
    _create_tasks()
    bind.exec_driver_sql(f"INSERT INTO main.tasks ({columns}) SELECT {columns} FROM temp._old0005_tasks "
                         "ORDER BY rowid")
    bind.exec_driver_sql("DROP TABLE temp._old0005_tasks")


def _create_tasks() -> None:
    """``tasks`` as the models have it at 0006."""
    op.create_table('tasks',
    sa.Column('id', sa.String(length=50), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('task_type', sa.String(length=50), nullable=False),
    sa.Column('complexity', sa.String(length=20), server_default=sa.text("'medium'"), nullable=True),
    sa.Column('priority', sa.Integer(), server_default=sa.text('5'), nullable=True),
    sa.Column('agent_id', sa.String(length=50), nullable=True),
    sa.Column('status', sa.String(length=20), server_default=sa.text("'pending'"), nullable=True),
    sa.Column('progress', sa.Integer(), server_default=sa.text('0'), nullable=True),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('context', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('constraints', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('session_id', sa.String(length=50), nullable=True),
    sa.Column('project_id', sa.String(length=50), nullable=True),
    sa.Column('created_at', omnilab.sql.types.UTCDateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=True),
    sa.Column('started_at', omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_at', omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('estimated_completion', omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('workflow_id', sa.String(length=50), nullable=True),
    sa.Column('retry_count', sa.Integer(), server_default=sa.text('0'), nullable=True),
    sa.Column('estimated_duration', sa.Float(), nullable=True),
    sa.Column('updated_at', omnilab.sql.types.UTCDateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=True),
    sa.Column('queue_name', sa.String(length=100), nullable=True),
    sa.Column('lab_id', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_tasks_agent_id_agents')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_tasks_project_id_projects')),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_tasks_workflow_id_workflows')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks'))
    )
    for name, cols in _INDEXES:
        op.create_index(name, 'tasks', cols, unique=False)
    op.create_index('ix_tasks_lab_id_status', 'tasks', ['lab_id', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_tasks_lab_id_status', table_name='tasks')
    op.drop_column('tasks', 'lab_id')
    op.drop_column('tasks', 'queue_name')
