"""Redis-backed sessions: connection (URL or embedded), sessions and agent state, reliable queue,
pub/sub broadcasts and generation-keyed caches. Redis is never the only copy of anything durable."""

from omnilab.sessions.connection import RedisConnection, describe_redis_url

__all__ = ["RedisConnection", "describe_redis_url"]
