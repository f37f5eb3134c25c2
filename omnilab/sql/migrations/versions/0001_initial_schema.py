"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import omnilab.sql.types
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: Union[str, None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:

    op.create_table(
        "agents",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("system", sa.String(length=64), nullable=False),
        sa.Column("agent_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column(
            "capabilities",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "config", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("created_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_active", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("name", name=op.f("uq_agents_name")),
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agents_agent_type"), ["agent_type"], unique=False)
        batch_op.create_index(batch_op.f("ix_agents_status"), ["status"], unique=False)

    op.create_table(
        "projects",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=32), nullable=True),
        sa.Column("repository_url", sa.String(length=500), nullable=True),
        sa.Column(
            "settings", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
    )
    op.create_table(
        "system_health",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("timestamp", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("component", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=True),
        sa.Column("memory_percent", sa.Float(), nullable=True),
        sa.Column("disk_percent", sa.Float(), nullable=True),
        sa.Column("active_agents", sa.Integer(), nullable=False),
        sa.Column("queue_depth", sa.Integer(), nullable=False),
        sa.Column("response_time_ms", sa.Float(), nullable=True),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_health")),
    )
    with op.batch_alter_table("system_health", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_system_health_timestamp"), ["timestamp"], unique=False)

    op.create_table(
        "agent_stats",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("total_tasks", sa.Integer(), nullable=False),
        sa.Column("completed_tasks", sa.Integer(), nullable=False),
        sa.Column("failed_tasks", sa.Integer(), nullable=False),
        sa.Column("avg_execution_time", sa.Float(), nullable=False),
        sa.Column("total_tokens", sa.BigInteger(), nullable=False),
        sa.Column("success_rate", sa.Float(), nullable=False),
        sa.Column("last_task_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_stats_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_stats")),
    )
    op.create_table(
        "api_usage",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("timestamp", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("endpoint", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_time_ms", sa.Float(), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("tokens_used", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_api_usage_agent_id_agents"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_usage")),
    )
    with op.batch_alter_table("api_usage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_usage_timestamp"), ["timestamp"], unique=False)

    op.create_table(
        "memory_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("memory_id", sa.String(length=36), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("memory_type", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column(
            "tags", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "metadata", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("access_count", sa.Integer(), nullable=False),
        sa.Column("last_accessed", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_memory_entries_agent_id_agents"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_memory_entries_project_id_projects"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_entries")),
        sa.UniqueConstraint("memory_id", name=op.f("uq_memory_entries_memory_id")),
    )
    with op.batch_alter_table("memory_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memory_entries_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_memory_entries_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_memory_entries_memory_type"), ["memory_type"], unique=False)

    op.create_table(
        "project_files",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("file_path", sa.String(length=1000), nullable=False),
        sa.Column("language", sa.String(length=32), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("last_modified_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["last_modified_by"],
            ["agents.id"],
            name=op.f("fk_project_files_last_modified_by_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_project_files_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_files")),
        sa.UniqueConstraint("project_id", "file_path", name=op.f("uq_project_files_project_id_file_path")),
    )
    op.create_table(
        "project_stats",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("total_tasks", sa.Integer(), nullable=False),
        sa.Column("completed_tasks", sa.Integer(), nullable=False),
        sa.Column("failed_tasks", sa.Integer(), nullable=False),
        sa.Column("total_files", sa.Integer(), nullable=False),
        sa.Column("total_lines", sa.Integer(), nullable=False),
        sa.Column("total_tokens", sa.BigInteger(), nullable=False),
        sa.Column("avg_task_duration", sa.Float(), nullable=True),
        sa.Column("last_activity", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_project_stats_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_project_stats")),
    )
    op.create_table(
        "workflows",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "steps", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["agents.id"], name=op.f("fk_workflows_created_by_agents"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_workflows_project_id_projects"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
    )
    op.create_table(
        "memory_access",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("memory_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("access_type", sa.String(length=16), nullable=False),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("accessed_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_memory_access_agent_id_agents"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["memory_id"],
            ["memory_entries.id"],
            name=op.f("fk_memory_access_memory_id_memory_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_access")),
    )
    with op.batch_alter_table("memory_access", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memory_access_accessed_at"), ["accessed_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_memory_access_memory_id"), ["memory_id"], unique=False)

    op.create_table(
        "memory_relationships",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("target_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("relationship_type", sa.String(length=32), nullable=False),
        sa.Column("strength", sa.Float(), nullable=False),
        sa.Column("created_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["memory_entries.id"],
            name=op.f("fk_memory_relationships_source_id_memory_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["memory_entries.id"],
            name=op.f("fk_memory_relationships_target_id_memory_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_relationships")),
        sa.UniqueConstraint(
            "source_id",
            "target_id",
            "relationship_type",
            name=op.f("uq_memory_relationships_source_id_target_id_relationship_type"),
        ),
    )
    with op.batch_alter_table("memory_relationships", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memory_relationships_target_id"), ["target_id"], unique=False)

    op.create_table(
        "tasks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("task_type", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("complexity", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("workflow_id", sa.String(length=36), nullable=True),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column(
            "context", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "result", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("estimated_duration", sa.Float(), nullable=True),
        sa.Column("created_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_tasks_agent_id_agents"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_tasks_project_id_projects"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflows.id"], name=op.f("fk_tasks_workflow_id_workflows"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_project_id"), ["project_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_status"), ["status"], unique=False)

    op.create_table(
        "agent_performance",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=True),
        sa.Column("task_type", sa.String(length=64), nullable=True),
        sa.Column("timestamp", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("execution_time", sa.Float(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("tokens_used", sa.Integer(), nullable=False),
        sa.Column("error_type", sa.String(length=64), nullable=True),
        sa.Column(
            "metrics", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_performance_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_agent_performance_task_id_tasks"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_performance")),
    )
    with op.batch_alter_table("agent_performance", schema=None) as batch_op:
        batch_op.create_index("ix_agent_performance_agent_id_timestamp", ["agent_id", "timestamp"], unique=False)
        batch_op.create_index(batch_op.f("ix_agent_performance_timestamp"), ["timestamp"], unique=False)

    op.create_table(
        "error_logs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("timestamp", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("component", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("error_type", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("stack_trace", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("task_id", sa.String(length=36), nullable=True),
        sa.Column(
            "context", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("resolved_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_error_logs_agent_id_agents"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_error_logs_task_id_tasks"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_error_logs")),
    )
    with op.batch_alter_table("error_logs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_error_logs_timestamp"), ["timestamp"], unique=False)

    op.create_table(
        "task_dependencies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("depends_on_id", sa.String(length=36), nullable=False),
        sa.Column("dependency_type", sa.String(length=32), nullable=False),
        sa.Column("created_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["depends_on_id"], ["tasks.id"], name=op.f("fk_task_dependencies_depends_on_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_dependencies_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_dependencies")),
        sa.UniqueConstraint("task_id", "depends_on_id", name=op.f("uq_task_dependencies_task_id_depends_on_id")),
    )
    with op.batch_alter_table("task_dependencies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_dependencies_depends_on_id"), ["depends_on_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("task_dependencies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_dependencies_depends_on_id"))

    op.drop_table("task_dependencies")
    with op.batch_alter_table("error_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_error_logs_timestamp"))

    op.drop_table("error_logs")
    with op.batch_alter_table("agent_performance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_performance_timestamp"))
        batch_op.drop_index("ix_agent_performance_agent_id_timestamp")

    op.drop_table("agent_performance")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_status"))
        batch_op.drop_index(batch_op.f("ix_tasks_project_id"))
        batch_op.drop_index(batch_op.f("ix_tasks_created_at"))
        batch_op.drop_index(batch_op.f("ix_tasks_agent_id"))

    op.drop_table("tasks")
    with op.batch_alter_table("memory_relationships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memory_relationships_target_id"))

    op.drop_table("memory_relationships")
    with op.batch_alter_table("memory_access", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memory_access_memory_id"))
        batch_op.drop_index(batch_op.f("ix_memory_access_accessed_at"))

    op.drop_table("memory_access")
    op.drop_table("workflows")
    op.drop_table("project_stats")
    op.drop_table("project_files")
    with op.batch_alter_table("memory_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memory_entries_memory_type"))
        batch_op.drop_index(batch_op.f("ix_memory_entries_created_at"))
        batch_op.drop_index(batch_op.f("ix_memory_entries_agent_id"))

    op.drop_table("memory_entries")
    with op.batch_alter_table("api_usage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_usage_timestamp"))

    op.drop_table("api_usage")
    op.drop_table("agent_stats")
    with op.batch_alter_table("system_health", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_system_health_timestamp"))

    op.drop_table("system_health")
    op.drop_table("projects")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agents_status"))
        batch_op.drop_index(batch_op.f("ix_agents_agent_type"))

    op.drop_table("agents")
