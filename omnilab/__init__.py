"""omnilab — a research toolkit for the memory and operations data of multi-agent AI platforms."""

from omnilab._version import __version__
from omnilab.config import Settings
from omnilab.enums import (
    AgentStatus,
    AgentType,
    MemoryPriority,
    MemoryType,
    TaskComplexity,
    TaskStatus,
)
from omnilab.errors import (
    ConfigError,
    InvalidInput,
    NotFound,
    OmnilabError,
    ReadOnlyViolation,
    StoreUnavailable,
)
from omnilab.lab import Lab, adopt, open

__all__ = [
    "open",
    "adopt",
    "Lab",
    "Settings",
    "MemoryType",
    "MemoryPriority",
    "AgentType",
    "AgentStatus",
    "TaskStatus",
    "TaskComplexity",
    "OmnilabError",
    "ConfigError",
    "InvalidInput",
    "NotFound",
    "StoreUnavailable",
    "ReadOnlyViolation",
    "__version__",
]
