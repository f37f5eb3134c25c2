"""queue ownership: tasks.queue_name and tasks.lab_id

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-10

Each task row records the omnilab queue that holds it and the lab that queued it, so ``queue.recover()``
puts a lab's own tasks back on their own queues after Redis lost them, and a lab never leases another
lab's task. Both columns are nullable: existing rows (and rows the platform writes) have no owner until a
lab claims them.

Both backends add the columns in place (see ``upgrade``).
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0006"
down_revision: Union[str, None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # In place on both backends: O(1) whatever the size of tasks (a rebuild on SQLite would make every
    # child row's foreign key be checked again — minutes on a large lab). SQLite appends the column
    # definitions after the table's constraints; the schema is the same (``migrate.check`` is empty).
    op.add_column("tasks", sa.Column("queue_name", sa.String(length=100), nullable=True))
    op.add_column("tasks", sa.Column("lab_id", sa.String(length=200), nullable=True))
    op.create_index("ix_tasks_lab_id_status", "tasks", ["lab_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tasks_lab_id_status", table_name="tasks")
    op.drop_column("tasks", "lab_id")
    op.drop_column("tasks", "queue_name")
