"""The session stores of a connection's key layout: omnilab's own prefixed keys, or the platform's.

``session_store(conn)`` is a :class:`~omnilab.sessions.store.SessionStore` on an omnilab-layout connection and a
:class:`~omnilab.sessions.platform.PlatformSessionStore` on a ``layout="platform"`` one; ``agent_state_cache``
likewise. The caller picks the class here, so neither store module needs the other's.
"""

from __future__ import annotations

from omnilab.sessions.connection import RedisConnection
from omnilab.sessions.platform import PlatformAgentStateCache, PlatformSessionStore
from omnilab.sessions.store import AGENT_STATE_TTL, SESSION_TTL, AgentStateCache, SessionStore

__all__ = ["session_store", "agent_state_cache"]


def session_store(conn: RedisConnection, *, default_ttl: float = SESSION_TTL) -> SessionStore:
    """The user sessions in ``conn``'s key layout (sliding expiry, default one hour)."""
    cls = PlatformSessionStore if conn.platform else SessionStore
    return cls(conn, default_ttl=default_ttl)


def agent_state_cache(conn: RedisConnection, *, ttl: float = AGENT_STATE_TTL) -> AgentStateCache:
    """The agent-state cache in ``conn``'s key layout (default TTL five minutes)."""
    cls = PlatformAgentStateCache if conn.platform else AgentStateCache
    return cls(conn, ttl=ttl)
