"""Enumerations used by the platform. Members are ``str``/``int`` enums so they compare equal to raw values."""

from __future__ import annotations

import enum

__all__ = [
    "MemoryType",
    "MemoryPriority",
    "AgentType",
    "AgentStatus",
    "TaskStatus",
    "TaskComplexity",
]


class MemoryType(str, enum.Enum):
    CODE = "code"
    TASK = "task"
    AGENT = "agent"
    KNOWLEDGE = "knowledge"
    SESSION = "session"
    PROJECT = "project"
    ERROR = "error"
    WORKFLOW = "workflow"
    INSIGHT = "insight"
    FEEDBACK = "feedback"


class MemoryPriority(enum.IntEnum):
    LOW = 1
    MEDIUM = 5
    HIGH = 8
    CRITICAL = 10


class AgentType(str, enum.Enum):
    ARCHITECT = "architect"
    CODER = "coder"
    TESTER = "tester"
    REVIEWER = "reviewer"
    FIXER = "fixer"
    DEPLOYER = "deployer"
    ORCHESTRATOR = "orchestrator"
    MEMORY = "memory"
    CREATIVE = "creative"
    GUARDIAN = "guardian"
    ANALYZER = "analyzer"
    TRAINER = "trainer"


class AgentStatus(str, enum.Enum):
    IDLE = "idle"
    BUSY = "busy"
    ERROR = "error"
    DISABLED = "disabled"


class TaskStatus(str, enum.Enum):
    PENDING = "pending"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TaskComplexity(str, enum.Enum):
    SIMPLE = "simple"
    MEDIUM = "medium"
    COMPLEX = "complex"
    EXPERT = "expert"


def values(enum_cls: type[enum.Enum]) -> tuple:
    """The raw values of an enumeration, in declaration order."""
    return tuple(m.value for m in enum_cls)
