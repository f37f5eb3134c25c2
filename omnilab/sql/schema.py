"""SQLAlchemy 2.x models of the platform's fifteen tables, exactly as ``shared/platform/schema.sql`` has them.

Every platform table and column keeps its name, meaning, nullability, default and foreign key, so omnilab
can open the platform's real database. Defaults are given twice: ``default`` (Python side, for omnilab's
own inserts) and ``server_default`` (as the platform's DDL has them, so the platform can keep writing to a
database omnilab created). omnilab's own columns are *additions* — nullable or defaulted — marked
``# omnilab`` below; omnilab's own tables (embedding cache, vector keys, thresholds, ...) live in
``omnilab.sql.own_tables`` under names that cannot clash with the platform's.

Indexes: the platform's eight (same names, ``idx_*``) plus the ones omnilab's queries need (``ix_*``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from omnilab.sql.types import BigIntPK, JSONType, UTCDateTime, utcnow

__all__ = ["Base", "TABLES", "JSON_COLUMNS", "PLATFORM_INDEXES", "OMNILAB_COLUMNS"] + [
    "Agent",
    "AgentStats",
    "AgentPerformance",
    "Task",
    "TaskDependency",
    "Workflow",
    "Project",
    "ProjectFile",
    "ProjectStats",
    "MemoryEntry",
    "MemoryRelationship",
    "MemoryAccess",
    "SystemHealth",
    "ApiUsage",
    "ErrorLog",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_NOW = sa.text("CURRENT_TIMESTAMP")
_AUTOINC = {"sqlite_autoincrement": True}  # the platform's INTEGER PRIMARY KEY AUTOINCREMENT


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


def _id() -> Mapped[str]:
    """The platform's string primary key."""
    return mapped_column(sa.String(50), primary_key=True)


def _serial() -> Mapped[int]:
    """The platform's ``INTEGER PRIMARY KEY AUTOINCREMENT``."""
    return mapped_column(BigIntPK, primary_key=True, autoincrement=True)


def _ref(target: str, *, nullable: bool = True) -> Any:
    """A string foreign key as the platform declares it (no ON DELETE action)."""
    return mapped_column(sa.String(50), sa.ForeignKey(target), nullable=nullable)


def _stamp(*, nullable: bool = True, index: bool = False, onupdate: bool = False) -> Any:
    """``TIMESTAMP DEFAULT CURRENT_TIMESTAMP``."""
    return mapped_column(
        UTCDateTime(),
        nullable=nullable,
        default=utcnow,
        server_default=_NOW,
        index=index,
        onupdate=utcnow if onupdate else None,
    )


def _int(default: int, *, nullable: bool = True) -> Any:
    return mapped_column(sa.Integer, nullable=nullable, default=default, server_default=sa.text(str(default)))


def _real(default: float) -> Any:
    return mapped_column(sa.Float, default=default, server_default=sa.text(repr(default)))


def _text(length: int | None, default: str | None = None, *, nullable: bool = True) -> Any:
    kind = sa.String(length) if length else sa.Text()
    return mapped_column(
        kind,
        nullable=nullable,
        default=default,
        server_default=sa.text(f"'{default}'") if default is not None else None,
    )


def _json(*, nullable: bool = True) -> Any:
    """A platform ``TEXT -- JSON`` column: JSON in the models (lists/dicts out), TEXT on SQLite."""
    return mapped_column(JSONType, nullable=nullable)


# ----------------------------------------------------------------------------------------------- agents
class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (sa.Index("idx_agents_status", "status"), sa.Index("idx_agents_type", "agent_type"))

    id: Mapped[str] = _id()
    name: Mapped[str] = _text(100, nullable=False)
    agent_type: Mapped[str] = _text(50, nullable=False)
    system_name: Mapped[str] = mapped_column(sa.String(50), nullable=False, default="default")  # omnilab's default
    description: Mapped[Optional[str]] = _text(None)
    capabilities: Mapped[Optional[list]] = _json()
    priority: Mapped[Optional[int]] = _int(5)
    max_concurrent_tasks: Mapped[Optional[int]] = _int(1)
    timeout_seconds: Mapped[Optional[int]] = _int(300)
    model_requirements: Mapped[Optional[list]] = _json()
    tags: Mapped[Optional[list]] = _json()
    status: Mapped[Optional[str]] = _text(20, "idle")
    created_at: Mapped[Optional[dt.datetime]] = _stamp()
    updated_at: Mapped[Optional[dt.datetime]] = _stamp(onupdate=True)
    # omnilab
    config: Mapped[Optional[dict]] = _json()
    version: Mapped[Optional[str]] = _text(32)
    last_active: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())


class AgentStats(Base):
    """One row per agent per ``date`` (the platform's daily statistics)."""

    __tablename__ = "agent_stats"
    __table_args__ = (sa.Index("ix_agent_stats_agent_id_date", "agent_id", "date"), _AUTOINC)

    id: Mapped[int] = _serial()
    agent_id: Mapped[str] = _ref("agents.id", nullable=False)
    tasks_completed: Mapped[Optional[int]] = _int(0)
    tasks_failed: Mapped[Optional[int]] = _int(0)
    total_execution_time: Mapped[Optional[float]] = _real(0.0)  # seconds
    total_tokens_used: Mapped[Optional[int]] = _int(0)
    average_response_time: Mapped[Optional[float]] = _real(0.0)  # seconds
    success_rate: Mapped[Optional[float]] = _real(0.0)  # 0..1
    date: Mapped[Optional[dt.date]] = mapped_column(
        sa.Date, default=lambda: utcnow().date(), server_default=sa.text("CURRENT_DATE")
    )


class AgentPerformance(Base):
    __tablename__ = "agent_performance"
    # The covering index answers per-agent window aggregates from the index alone.
    __table_args__ = (
        sa.Index("idx_agent_performance_timestamp", "timestamp"),
        sa.Index(
            "ix_agent_performance_agent_window", "agent_id", "timestamp", "execution_time", "success", "tokens_used"
        ),
        _AUTOINC,
    )

    id: Mapped[int] = _serial()
    agent_id: Mapped[str] = _ref("agents.id", nullable=False)
    task_type: Mapped[Optional[str]] = _text(50)
    execution_time: Mapped[Optional[float]] = mapped_column(sa.Float)  # seconds
    tokens_used: Mapped[Optional[int]] = mapped_column(sa.Integer)
    success: Mapped[Optional[bool]] = mapped_column(sa.Boolean)
    error_message: Mapped[Optional[str]] = _text(None)
    timestamp: Mapped[Optional[dt.datetime]] = _stamp()
    # omnilab
    task_id: Mapped[Optional[str]] = _ref("tasks.id")
    error_type: Mapped[Optional[str]] = _text(64)
    metrics: Mapped[Optional[dict]] = _json()


# ------------------------------------------------------------------------------------------------ tasks
class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        sa.Index("idx_tasks_status", "status"),
        sa.Index("idx_tasks_agent_id", "agent_id"),
        sa.Index("idx_tasks_created_at", "created_at"),
        sa.Index("ix_tasks_project_id", "project_id"),
        sa.Index("ix_tasks_lab_id_status", "lab_id", "status"),
    )

    id: Mapped[str] = _id()
    content: Mapped[str] = _text(None, nullable=False)
    task_type: Mapped[str] = mapped_column(sa.String(50), nullable=False, default="general")  # omnilab's default
    complexity: Mapped[Optional[str]] = _text(20, "medium")
    priority: Mapped[Optional[int]] = _int(5)
    agent_id: Mapped[Optional[str]] = _ref("agents.id")
    status: Mapped[Optional[str]] = _text(20, "pending")
    progress: Mapped[Optional[int]] = _int(0)
    result: Mapped[Optional[Any]] = _json()
    error_message: Mapped[Optional[str]] = _text(None)
    context: Mapped[Optional[dict]] = _json()
    constraints: Mapped[Optional[Any]] = _json()
    session_id: Mapped[Optional[str]] = _text(50)
    project_id: Mapped[Optional[str]] = _ref("projects.id")
    created_at: Mapped[Optional[dt.datetime]] = _stamp()
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    completed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    estimated_completion: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    # omnilab
    description: Mapped[Optional[str]] = _text(None)
    workflow_id: Mapped[Optional[str]] = _ref("workflows.id")
    retry_count: Mapped[Optional[int]] = _int(0)
    estimated_duration: Mapped[Optional[float]] = mapped_column(sa.Float)  # seconds
    updated_at: Mapped[Optional[dt.datetime]] = _stamp(onupdate=True)
    # the omnilab queue holding the task and the lab that queued it (omnilab.sessions.identity): recover()
    # restores only its own lab's tasks, each to its queue, and only the owning lab can lease a task
    queue_name: Mapped[Optional[str]] = _text(100)
    lab_id: Mapped[Optional[str]] = _text(200)


class TaskDependency(Base):
    __tablename__ = "task_dependencies"
    __table_args__ = (
        sa.Index("ix_task_dependencies_task_id", "task_id"),
        sa.Index("ix_task_dependencies_depends_on_task_id", "depends_on_task_id"),
        _AUTOINC,
    )

    id: Mapped[int] = _serial()
    task_id: Mapped[str] = _ref("tasks.id", nullable=False)
    depends_on_task_id: Mapped[str] = _ref("tasks.id", nullable=False)
    dependency_type: Mapped[Optional[str]] = _text(20, "sequential")
    created_at: Mapped[Optional[dt.datetime]] = _stamp()


class Workflow(Base):
    __tablename__ = "workflows"

    id: Mapped[str] = _id()
    name: Mapped[str] = _text(100, nullable=False)
    description: Mapped[Optional[str]] = _text(None)
    definition: Mapped[Any] = _json(nullable=False)  # the JSON workflow definition, e.g. {"steps": [...]}
    status: Mapped[Optional[str]] = _text(20, "active")
    created_by: Mapped[Optional[str]] = _text(50)
    created_at: Mapped[Optional[dt.datetime]] = _stamp()
    updated_at: Mapped[Optional[dt.datetime]] = _stamp(onupdate=True)
    # omnilab
    project_id: Mapped[Optional[str]] = _ref("projects.id")
    completed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())


# --------------------------------------------------------------------------------------------- projects
class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = _id()
    name: Mapped[str] = _text(100, nullable=False)
    description: Mapped[Optional[str]] = _text(None)
    language: Mapped[Optional[str]] = _text(50)
    framework: Mapped[Optional[str]] = _text(50)
    status: Mapped[Optional[str]] = _text(20, "active")
    settings: Mapped[Optional[dict]] = _json()
    created_by: Mapped[Optional[str]] = _text(50)
    created_at: Mapped[Optional[dt.datetime]] = _stamp()
    updated_at: Mapped[Optional[dt.datetime]] = _stamp(onupdate=True)
    # omnilab
    repository_url: Mapped[Optional[str]] = _text(500)


class ProjectFile(Base):
    __tablename__ = "project_files"
    __table_args__ = (sa.Index("ix_project_files_project_id", "project_id"), _AUTOINC)

    id: Mapped[int] = _serial()
    project_id: Mapped[str] = _ref("projects.id", nullable=False)
    file_path: Mapped[str] = _text(500, nullable=False)
    content: Mapped[Optional[str]] = _text(None)
    language: Mapped[Optional[str]] = _text(50)
    size: Mapped[Optional[int]] = mapped_column(sa.Integer)  # bytes
    created_at: Mapped[Optional[dt.datetime]] = _stamp()
    updated_at: Mapped[Optional[dt.datetime]] = _stamp(onupdate=True)
    # omnilab
    line_count: Mapped[Optional[int]] = mapped_column(sa.Integer)
    content_hash: Mapped[Optional[str]] = _text(64)
    last_modified_by: Mapped[Optional[str]] = _ref("agents.id")


class ProjectStats(Base):
    __tablename__ = "project_stats"
    __table_args__ = (sa.Index("ix_project_stats_project_id", "project_id"), _AUTOINC)

    id: Mapped[int] = _serial()
    project_id: Mapped[str] = _ref("projects.id", nullable=False)
    files_count: Mapped[Optional[int]] = _int(0)
    lines_of_code: Mapped[Optional[int]] = _int(0)
    tasks_completed: Mapped[Optional[int]] = _int(0)
    agents_used: Mapped[Optional[int]] = _int(0)
    last_activity: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    # omnilab
    tasks_total: Mapped[Optional[int]] = mapped_column(sa.Integer)
    tasks_failed: Mapped[Optional[int]] = mapped_column(sa.Integer)
    total_tokens: Mapped[Optional[int]] = mapped_column(sa.BigInteger)
    avg_task_duration: Mapped[Optional[float]] = mapped_column(sa.Float)  # seconds
    updated_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


# --------------------------------------------------------------------------------------------- memories
class MemoryEntry(Base):
    __tablename__ = "memory_entries"
    __table_args__ = (
        sa.Index("idx_memory_entries_type", "memory_type"),
        sa.Index("idx_memory_entries_created_at", "created_at"),
        sa.Index("ix_memory_entries_agent_id", "agent_id"),
    )

    id: Mapped[str] = _id()  # the platform's string id; FAISS keys live in omnilab's memory_vectors
    content: Mapped[str] = _text(None, nullable=False)
    memory_type: Mapped[str] = _text(50, nullable=False)
    priority: Mapped[Optional[int]] = _int(5)
    # "metadata" is reserved on declarative classes, hence the attribute name.
    meta: Mapped[Optional[dict]] = mapped_column("metadata", JSONType)
    tags: Mapped[Optional[list]] = _json()
    agent_id: Mapped[Optional[str]] = _ref("agents.id")
    session_id: Mapped[Optional[str]] = _text(50)
    project_id: Mapped[Optional[str]] = _ref("projects.id")
    created_at: Mapped[Optional[dt.datetime]] = _stamp()
    updated_at: Mapped[Optional[dt.datetime]] = _stamp(onupdate=True)
    # omnilab
    access_count: Mapped[Optional[int]] = _int(0)
    last_accessed: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    expires_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())


class MemoryRelationship(Base):
    __tablename__ = "memory_relationships"
    __table_args__ = (
        sa.Index("ix_memory_relationships_source_memory_id", "source_memory_id"),
        sa.Index("ix_memory_relationships_target_memory_id", "target_memory_id"),
        _AUTOINC,
    )

    id: Mapped[int] = _serial()
    source_memory_id: Mapped[str] = _ref("memory_entries.id", nullable=False)
    target_memory_id: Mapped[str] = _ref("memory_entries.id", nullable=False)
    relationship_type: Mapped[str] = _text(50, nullable=False)
    strength: Mapped[Optional[float]] = _real(1.0)
    created_at: Mapped[Optional[dt.datetime]] = _stamp()


class MemoryAccess(Base):
    __tablename__ = "memory_access"
    __table_args__ = (
        sa.Index("ix_memory_access_memory_id", "memory_id"),
        sa.Index("ix_memory_access_timestamp", "timestamp"),
        _AUTOINC,
    )

    id: Mapped[int] = _serial()
    memory_id: Mapped[str] = _ref("memory_entries.id", nullable=False)
    agent_id: Mapped[Optional[str]] = _ref("agents.id")
    session_id: Mapped[Optional[str]] = _text(50)
    access_type: Mapped[str] = _text(20, nullable=False)  # read, write, update, delete (omnilab: also search)
    timestamp: Mapped[Optional[dt.datetime]] = _stamp()
    # omnilab
    query: Mapped[Optional[str]] = _text(None)
    score: Mapped[Optional[float]] = mapped_column(sa.Float)


# ------------------------------------------------------------------------------------------- operations
class SystemHealth(Base):
    __tablename__ = "system_health"
    __table_args__ = (sa.Index("ix_system_health_timestamp", "timestamp"), _AUTOINC)

    id: Mapped[int] = _serial()
    component: Mapped[str] = _text(50, nullable=False)
    status: Mapped[str] = _text(20, nullable=False)
    metrics: Mapped[Optional[dict]] = _json()  # cpu_percent, memory_percent, queue_depth, ...
    message: Mapped[Optional[str]] = _text(None)
    timestamp: Mapped[Optional[dt.datetime]] = _stamp()


class ApiUsage(Base):
    __tablename__ = "api_usage"
    __table_args__ = (sa.Index("ix_api_usage_timestamp", "timestamp"), _AUTOINC)

    id: Mapped[int] = _serial()
    endpoint: Mapped[str] = _text(100, nullable=False)
    method: Mapped[str] = _text(10, nullable=False)
    agent_id: Mapped[Optional[str]] = _ref("agents.id")
    session_id: Mapped[Optional[str]] = _text(50)
    response_time: Mapped[Optional[float]] = mapped_column(sa.Float)  # seconds
    status_code: Mapped[Optional[int]] = mapped_column(sa.Integer)
    timestamp: Mapped[Optional[dt.datetime]] = _stamp()
    # omnilab
    provider: Mapped[Optional[str]] = _text(32)
    model: Mapped[Optional[str]] = _text(64)
    tokens_used: Mapped[Optional[int]] = mapped_column(sa.Integer)
    cost_usd: Mapped[Optional[float]] = mapped_column(sa.Float)
    request_id: Mapped[Optional[str]] = _text(64)


class ErrorLog(Base):
    __tablename__ = "error_logs"
    __table_args__ = (sa.Index("ix_error_logs_timestamp", "timestamp"), _AUTOINC)

    id: Mapped[int] = _serial()
    component: Mapped[str] = _text(50, nullable=False)
    error_type: Mapped[str] = _text(50, nullable=False)
    message: Mapped[str] = _text(None, nullable=False)
    stack_trace: Mapped[Optional[str]] = _text(None)
    agent_id: Mapped[Optional[str]] = _ref("agents.id")
    session_id: Mapped[Optional[str]] = _text(50)
    severity: Mapped[Optional[str]] = _text(20, "error")
    timestamp: Mapped[Optional[dt.datetime]] = _stamp()
    # omnilab
    task_id: Mapped[Optional[str]] = _ref("tasks.id")
    context: Mapped[Optional[dict]] = _json()
    resolved: Mapped[Optional[bool]] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    resolved_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())


#: table name -> sqlalchemy Table, in dependency order (parents before children)
TABLES: dict[str, sa.Table] = {t.name: t for t in Base.metadata.sorted_tables}

#: table name -> names of its JSON columns (decoded to Python lists/dicts on the way out)
JSON_COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(c.name for c in table.columns if isinstance(c.type, sa.JSON)) for name, table in TABLES.items()
}

#: the platform's own eight indexes (schema.sql), by name
PLATFORM_INDEXES = frozenset(
    {
        "idx_agents_status",
        "idx_agents_type",
        "idx_tasks_status",
        "idx_tasks_agent_id",
        "idx_tasks_created_at",
        "idx_memory_entries_type",
        "idx_memory_entries_created_at",
        "idx_agent_performance_timestamp",
    }
)

#: table name -> omnilab's additions to it (nullable or defaulted; ``omnilab db adopt`` adds them)
OMNILAB_COLUMNS: dict[str, tuple[str, ...]] = {
    "agents": ("config", "version", "last_active"),
    "agent_performance": ("task_id", "error_type", "metrics"),
    "tasks": ("description", "workflow_id", "retry_count", "estimated_duration", "updated_at", "queue_name", "lab_id"),
    "workflows": ("project_id", "completed_at"),
    "projects": ("repository_url",),
    "project_files": ("line_count", "content_hash", "last_modified_by"),
    "project_stats": ("tasks_total", "tasks_failed", "total_tokens", "avg_task_duration", "updated_at"),
    "memory_entries": ("access_count", "last_accessed", "expires_at"),
    "memory_access": ("query", "score"),
    "api_usage": ("provider", "model", "tokens_used", "cost_usd", "request_id"),
    "error_logs": ("task_id", "context", "resolved", "resolved_at"),
}
