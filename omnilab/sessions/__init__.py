"""Redis-backed sessions: connection (URL or embedded), sessions and agent state, reliable queue,
pub/sub broadcasts and generation-keyed caches. Redis is never the only copy of anything durable."""

from omnilab.sessions.cache import Caches, ResponseCache, SearchCache
from omnilab.sessions.connection import RedisConnection, describe_redis_url
from omnilab.sessions.pubsub import Subscriber, broadcast_agent_update, broadcast_to_session
from omnilab.sessions.queue import Lease, LeaseLost, TaskQueue
from omnilab.sessions.store import AgentStateCache, SessionStore

__all__ = [
    "RedisConnection", "describe_redis_url", "SessionStore", "AgentStateCache", "TaskQueue", "Lease",
    "LeaseLost", "SearchCache", "ResponseCache", "Caches", "Subscriber", "broadcast_to_session",
    "broadcast_agent_update",
]
