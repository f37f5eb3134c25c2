"""Redis-backed sessions: connection (URL or embedded), sessions and agent state, reliable queue,
pub/sub broadcasts and generation-keyed caches. Redis is never the only copy of anything durable.

``RedisConnection(..., layout="platform")`` makes the stores speak the OmniDev platform's own keys and
channels (``data/platform/redis-layout.md``; :func:`session_store` and :func:`agent_state_cache` pick the class
of a connection's layout); ``read_only=True`` refuses every write."""

from omnilab.errors import LeaseLost
from omnilab.sessions.cache import Caches, MemoryCache, ResponseCache, SearchCache
from omnilab.sessions.connection import LAYOUTS, RedisConnection, describe_redis_url
from omnilab.sessions.layout import agent_state_cache, session_store
from omnilab.sessions.platform import PlatformAgentStateCache, PlatformSessionStore
from omnilab.sessions.pubsub import Subscriber, broadcast_agent_update, broadcast_to_session
from omnilab.sessions.queue import Lease, TaskQueue
from omnilab.sessions.store import AgentStateCache, SessionStore
from omnilab.sessions.tasks import update_task_progress
from omnilab.sessions.txlog import read_transaction, transaction

__all__ = [
    "RedisConnection",
    "LAYOUTS",
    "describe_redis_url",
    "SessionStore",
    "AgentStateCache",
    "session_store",
    "agent_state_cache",
    "PlatformSessionStore",
    "PlatformAgentStateCache",
    "TaskQueue",
    "Lease",
    "LeaseLost",
    "SearchCache",
    "ResponseCache",
    "MemoryCache",
    "Caches",
    "Subscriber",
    "broadcast_to_session",
    "broadcast_agent_update",
    "update_task_progress",
    "transaction",
    "read_transaction",
]
