"""The exceptions omnilab raises. Everything derives from :class:`OmnilabError`."""

from __future__ import annotations

__all__ = [
    "OmnilabError",
    "ConfigError",
    "InvalidInput",
    "NotFound",
    "StoreUnavailable",
    "ReadOnlyViolation",
    "QueryTimeout",
    "LeaseLost",
]


class OmnilabError(Exception):
    """Base class of every error omnilab raises on purpose."""


class ConfigError(OmnilabError):
    """A setting, environment variable or lab configuration is invalid or inconsistent."""


class InvalidInput(OmnilabError, ValueError):
    """An argument or a row handed to a public helper is invalid."""


class NotFound(OmnilabError, LookupError):
    """A requested agent, memory, task or other record does not exist."""


class StoreUnavailable(OmnilabError):
    """A backing store (database, Redis, index files) cannot be reached or read."""


class ReadOnlyViolation(InvalidInput):
    """A statement handed to a read-only helper (``lab.sql``) would write."""


class QueryTimeout(InvalidInput):
    """A ``lab.sql`` statement ran longer than its ``timeout`` and was stopped (nothing was changed)."""


class LeaseLost(OmnilabError):
    """A task's lease expired and the task was handed to another worker (or finished)."""
