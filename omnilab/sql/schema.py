"""SQLAlchemy 2.x models of the platform's fifteen tables.

The relational store is the source of truth. String primary keys (agents, tasks, projects, workflows,
memory ids) are what the platform exchanges; append-only logs and memory rows use integer keys, and a
memory row's integer id is also its FAISS id.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from omnilab.sql.types import BigIntPK, JSONType, UTCDateTime, utcnow

__all__ = ["Base", "TABLES", "JSON_COLUMNS"] + [
    "Agent", "AgentStats", "AgentPerformance", "Task", "TaskDependency", "Workflow", "Project",
    "ProjectFile", "ProjectStats", "MemoryEntry", "MemoryRelationship", "MemoryAccess",
    "SystemHealth", "ApiUsage", "ErrorLog",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


def _created() -> Mapped[dt.datetime]:
    return mapped_column(UTCDateTime(), nullable=False, default=utcnow)


def _updated() -> Mapped[dt.datetime]:
    return mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


def _json(default: Any, nullable: bool = False) -> Any:
    factory = (lambda: list(default)) if isinstance(default, list) else (lambda: dict(default))
    return mapped_column(JSONType, nullable=nullable, default=factory if default is not None else None)


# ----------------------------------------------------------------------------------------------- agents
class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), nullable=False, unique=True)
    system: Mapped[str] = mapped_column(sa.String(64), nullable=False, default="default")
    agent_type: Mapped[str] = mapped_column(sa.String(32), nullable=False, index=True)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="idle", index=True)
    priority: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=5)
    capabilities: Mapped[list] = _json([])
    config: Mapped[dict] = _json({})
    description: Mapped[Optional[str]] = mapped_column(sa.Text)
    version: Mapped[str] = mapped_column(sa.String(32), nullable=False, default="1.0")
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _updated()
    last_active: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())


class AgentStats(Base):
    __tablename__ = "agent_stats"

    agent_id: Mapped[str] = mapped_column(
        sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    total_tasks: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    completed_tasks: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    failed_tasks: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    avg_execution_time: Mapped[float] = mapped_column(sa.Float, nullable=False, default=0.0)
    total_tokens: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    success_rate: Mapped[float] = mapped_column(sa.Float, nullable=False, default=0.0)
    last_task_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = _updated()


class AgentPerformance(Base):
    __tablename__ = "agent_performance"
    # Covering index (revision 0003): per-agent window aggregates are answered from the index alone.
    __table_args__ = (sa.Index("ix_agent_performance_agent_window", "agent_id", "timestamp", "execution_time",
                               "success", "tokens_used"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(
        sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False
    )
    task_id: Mapped[Optional[str]] = mapped_column(sa.ForeignKey("tasks.id", ondelete="SET NULL"))
    task_type: Mapped[Optional[str]] = mapped_column(sa.String(64))
    timestamp: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, index=True
    )
    execution_time: Mapped[float] = mapped_column(sa.Float, nullable=False)  # seconds
    success: Mapped[bool] = mapped_column(sa.Boolean, nullable=False)
    tokens_used: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    error_type: Mapped[Optional[str]] = mapped_column(sa.String(64))
    metrics: Mapped[dict] = _json({})


# ------------------------------------------------------------------------------------------------ tasks
class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    description: Mapped[Optional[str]] = mapped_column(sa.Text)
    task_type: Mapped[Optional[str]] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="pending", index=True)
    complexity: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="medium")
    priority: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=5)
    agent_id: Mapped[Optional[str]] = mapped_column(
        sa.ForeignKey("agents.id", ondelete="SET NULL"), index=True
    )
    project_id: Mapped[Optional[str]] = mapped_column(
        sa.ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    workflow_id: Mapped[Optional[str]] = mapped_column(
        sa.ForeignKey("workflows.id", ondelete="SET NULL")
    )
    progress: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    context: Mapped[dict] = _json({})
    result: Mapped[Optional[dict]] = mapped_column(JSONType)
    error_message: Mapped[Optional[str]] = mapped_column(sa.Text)
    retry_count: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    estimated_duration: Mapped[Optional[float]] = mapped_column(sa.Float)  # seconds
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, index=True
    )
    updated_at: Mapped[dt.datetime] = _updated()
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    completed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())


class TaskDependency(Base):
    __tablename__ = "task_dependencies"
    __table_args__ = (sa.UniqueConstraint("task_id", "depends_on_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(
        sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False
    )
    depends_on_id: Mapped[str] = mapped_column(
        sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, index=True
    )
    dependency_type: Mapped[str] = mapped_column(sa.String(32), nullable=False, default="blocks")
    created_at: Mapped[dt.datetime] = _created()


class Workflow(Base):
    __tablename__ = "workflows"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    description: Mapped[Optional[str]] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="pending")
    steps: Mapped[list] = _json([])
    project_id: Mapped[Optional[str]] = mapped_column(
        sa.ForeignKey("projects.id", ondelete="SET NULL")
    )
    created_by: Mapped[Optional[str]] = mapped_column(
        sa.ForeignKey("agents.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _updated()
    completed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())


# --------------------------------------------------------------------------------------------- projects
class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), nullable=False, unique=True)
    description: Mapped[Optional[str]] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="active")
    language: Mapped[Optional[str]] = mapped_column(sa.String(32))
    repository_url: Mapped[Optional[str]] = mapped_column(sa.String(500))
    settings: Mapped[dict] = _json({})
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _updated()


class ProjectFile(Base):
    __tablename__ = "project_files"
    __table_args__ = (sa.UniqueConstraint("project_id", "file_path"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(
        sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )
    file_path: Mapped[str] = mapped_column(sa.String(1000), nullable=False)
    language: Mapped[Optional[str]] = mapped_column(sa.String(32))
    size_bytes: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    line_count: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    content_hash: Mapped[Optional[str]] = mapped_column(sa.String(64))
    last_modified_by: Mapped[Optional[str]] = mapped_column(
        sa.ForeignKey("agents.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _updated()


class ProjectStats(Base):
    __tablename__ = "project_stats"

    project_id: Mapped[str] = mapped_column(
        sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    total_tasks: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    completed_tasks: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    failed_tasks: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    total_files: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    total_lines: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    total_tokens: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    avg_task_duration: Mapped[Optional[float]] = mapped_column(sa.Float)  # seconds
    last_activity: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = _updated()


# --------------------------------------------------------------------------------------------- memories
class MemoryEntry(Base):
    __tablename__ = "memory_entries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    memory_id: Mapped[str] = mapped_column(sa.String(36), nullable=False, unique=True)
    content: Mapped[str] = mapped_column(sa.Text, nullable=False)
    memory_type: Mapped[str] = mapped_column(sa.String(16), nullable=False, index=True)
    priority: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=5)
    agent_id: Mapped[Optional[str]] = mapped_column(
        sa.ForeignKey("agents.id", ondelete="SET NULL"), index=True
    )
    session_id: Mapped[Optional[str]] = mapped_column(sa.String(64))
    project_id: Mapped[Optional[str]] = mapped_column(
        sa.ForeignKey("projects.id", ondelete="SET NULL")
    )
    tags: Mapped[list] = _json([])
    # "metadata" is reserved on declarative classes, hence the attribute name.
    meta: Mapped[dict] = mapped_column("metadata", JSONType, nullable=False, default=dict)
    access_count: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    last_accessed: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    expires_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, index=True
    )
    updated_at: Mapped[dt.datetime] = _updated()
    # Vector memory bookkeeping (revision 0002): sha256 of the whitespace-collapsed content (duplicate
    # detection) and the embedding-cache key of the row's vector (None until the vector store embeds it).
    content_hash: Mapped[Optional[str]] = mapped_column(sa.String(64), index=True)
    embedding_key: Mapped[Optional[str]] = mapped_column(sa.String(64))


class MemoryRelationship(Base):
    __tablename__ = "memory_relationships"
    __table_args__ = (sa.UniqueConstraint("source_id", "target_id", "relationship_type"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(
        sa.ForeignKey("memory_entries.id", ondelete="CASCADE"), nullable=False
    )
    target_id: Mapped[int] = mapped_column(
        sa.ForeignKey("memory_entries.id", ondelete="CASCADE"), nullable=False, index=True
    )
    relationship_type: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    strength: Mapped[float] = mapped_column(sa.Float, nullable=False, default=1.0)
    created_at: Mapped[dt.datetime] = _created()


class MemoryAccess(Base):
    __tablename__ = "memory_access"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    memory_id: Mapped[int] = mapped_column(
        sa.ForeignKey("memory_entries.id", ondelete="CASCADE"), nullable=False, index=True
    )
    agent_id: Mapped[Optional[str]] = mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    access_type: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="read")
    query: Mapped[Optional[str]] = mapped_column(sa.Text)
    score: Mapped[Optional[float]] = mapped_column(sa.Float)
    accessed_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, index=True
    )


# ------------------------------------------------------------------------------------------- operations
class SystemHealth(Base):
    __tablename__ = "system_health"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    timestamp: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, index=True
    )
    component: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="healthy")
    cpu_percent: Mapped[Optional[float]] = mapped_column(sa.Float)
    memory_percent: Mapped[Optional[float]] = mapped_column(sa.Float)
    disk_percent: Mapped[Optional[float]] = mapped_column(sa.Float)
    active_agents: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    queue_depth: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    response_time_ms: Mapped[Optional[float]] = mapped_column(sa.Float)
    details: Mapped[dict] = _json({})


class ApiUsage(Base):
    __tablename__ = "api_usage"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    timestamp: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, index=True
    )
    endpoint: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    method: Mapped[str] = mapped_column(sa.String(8), nullable=False, default="POST")
    status_code: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    response_time_ms: Mapped[float] = mapped_column(sa.Float, nullable=False)
    agent_id: Mapped[Optional[str]] = mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    provider: Mapped[Optional[str]] = mapped_column(sa.String(32))
    model: Mapped[Optional[str]] = mapped_column(sa.String(64))
    tokens_used: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    cost_usd: Mapped[float] = mapped_column(sa.Float, nullable=False, default=0.0)
    request_id: Mapped[Optional[str]] = mapped_column(sa.String(64))


class ErrorLog(Base):
    __tablename__ = "error_logs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    timestamp: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, index=True
    )
    component: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    severity: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="error")
    error_type: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    message: Mapped[str] = mapped_column(sa.Text, nullable=False)
    stack_trace: Mapped[Optional[str]] = mapped_column(sa.Text)
    agent_id: Mapped[Optional[str]] = mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    task_id: Mapped[Optional[str]] = mapped_column(sa.ForeignKey("tasks.id", ondelete="SET NULL"))
    context: Mapped[dict] = _json({})
    resolved: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    resolved_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())


#: table name -> sqlalchemy Table, in dependency order (parents before children)
TABLES: dict[str, sa.Table] = {t.name: t for t in Base.metadata.sorted_tables}

#: table name -> names of its JSON columns (decoded to Python lists/dicts on the way out)
JSON_COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(c.name for c in table.columns if isinstance(c.type, sa.JSON))
    for name, table in TABLES.items()
}

# Lab-internal tables on the same MetaData (so Alembic compares them), registered only after TABLES
# and JSON_COLUMNS are built: those stay the platform's fifteen tables.
from omnilab.sql import tuning_models as _tuning_models  # noqa: E402,F401
