"""Sessions with sliding expiry and an agent-state cache, both with DataFrame views.

A session is a Redis hash ``<prefix>session:<id>`` (user_id, context JSON, data JSON, times, ttl)
that expires on its own; a sorted set ``<prefix>sessions`` (id -> expiry in ms) lets ``frame()``
list live sessions without scanning keys. Agent state works the same way with a 5-minute TTL.
A session's WebSocket connections are a set ``<prefix>ws_connections:<id>``.

A connection with ``layout="platform"`` takes the subclasses in :mod:`omnilab.sessions.platform`, which speak
the platform's own keys; :func:`omnilab.sessions.layout.session_store` and ``agent_state_cache`` pick the class
that matches a connection's layout (these classes refuse a platform-layout connection).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any, ClassVar

import pandas as pd
import redis
import sqlalchemy as sa
from pandas.api.typing import NaTType
from redis.typing import EncodableT, FieldT

from omnilab._checks import is_number
from omnilab.enums import AgentStatus
from omnilab.errors import InvalidInput, NotFound, StoreUnavailable
from omnilab.sessions import pubsub
from omnilab.sessions.connection import RedisConnection, dumps, loads, reply_strs

__all__ = ["SessionStore", "AgentStateCache", "set_agent_status"]

log = logging.getLogger(__name__)

SESSION_TTL = 3600
AGENT_STATE_TTL = 300


# atomic sliding expiry: never resurrects a session that expired a moment ago
_TOUCH_LUA = """
local ttl = ARGV[1]
if ttl == '' then ttl = redis.call('HGET', KEYS[1], 'ttl_ms') end
if (not ttl) or redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 0
end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[2], 'ttl_ms', ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], tonumber(ARGV[4]) + tonumber(ttl), ARGV[3])
return 1
"""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _ms() -> int:
    return int(time.time() * 1000)


def _check_ttl(ttl: Any) -> int:
    """A TTL in seconds (fractions allowed) as milliseconds."""
    if not is_number(ttl, finite=True) or ttl <= 0:
        raise InvalidInput(f"ttl must be a positive number of seconds, got {ttl!r}")
    return max(1, int(round(ttl * 1000)))


def _check_id(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} must be a non-empty string, got {value!r}")
    return value


def _check_dict(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} must be a dict, got {type(value).__name__}")
    dumps(value)  # fail now, before anything is written, if it is not JSON-able
    return value


def _utc(text: str | None) -> pd.Timestamp | NaTType:
    return pd.Timestamp(text) if text else pd.NaT


def _check_layout(store: SessionStore | AgentStateCache, conn: RedisConnection) -> None:
    """Refuse a platform-layout connection in an omnilab-layout store (it would write keys the platform never
    reads)."""
    if conn.platform and not store.platform_layout:
        raise InvalidInput(
            f"{conn.display} uses the platform's key layout: open this store with "
            f"omnilab.sessions.layout.{store.factory}(conn)"
        )


class SessionStore:
    """User sessions in Redis with a sliding expiry (default one hour)."""

    #: True in the class that speaks the platform's keys (:class:`~omnilab.sessions.platform.PlatformSessionStore`)
    platform_layout: ClassVar[bool] = False
    factory: ClassVar[str] = "session_store"

    def __init__(self, conn: RedisConnection, *, default_ttl: float = SESSION_TTL) -> None:
        _check_layout(self, conn)
        self.conn = conn
        self.default_ttl = default_ttl
        _check_ttl(default_ttl)

    def _key(self, session_id: str) -> str:
        return self.conn.key("session", session_id)

    @property
    def _index(self) -> str:
        return self.conn.key("sessions")

    def create(
        self,
        user_id: str,
        context: dict[str, Any] | None = None,
        ttl: float | None = None,
        *,
        data: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> str:
        """Start a session for ``user_id``; returns its id (a new uuid4 unless ``session_id`` is given)."""
        self.conn.check_writable("creating a session")
        _check_id("user_id", user_id)
        ctx, tmp = _check_dict("context", context), _check_dict("data", data)
        ttl_ms = _check_ttl(self.default_ttl if ttl is None else ttl)
        sid = str(uuid.uuid4()) if session_id is None else _check_id("session_id", session_id)
        now = _now().isoformat()
        fields: dict[FieldT, EncodableT] = {
            "user_id": user_id,
            "context": dumps(ctx),
            "data": dumps(tmp),
            "created_at": now,
            "last_seen": now,
            "ttl_ms": ttl_ms,
        }
        key = self._key(sid)

        def _create(r: redis.Redis) -> bool:
            # HSETNX claims the id atomically, so a caller-chosen id never overwrites a live session
            if not r.hsetnx(key, "user_id", user_id):
                return False
            pipe = r.pipeline()
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, ttl_ms)
            pipe.zadd(self._index, {sid: _ms() + ttl_ms})
            pipe.execute()
            return True

        if not self.conn.run(_create, "session create"):
            raise InvalidInput(f"session {sid!r} already exists")
        return sid

    def get(self, session_id: str, *, touch: bool = False) -> dict[str, Any] | None:
        """The session as a dict (``context`` and ``data`` decoded, ``seconds_left``) or ``None``."""
        _check_id("session_id", session_id)
        if touch and not self.touch(session_id):
            return None
        key = self._key(session_id)

        def _get(r: redis.Redis) -> tuple[dict[str, str], int]:
            pipe = r.pipeline()
            pipe.hgetall(key)
            pipe.pttl(key)
            fields, pttl = pipe.execute()
            return fields, pttl

        fields, pttl = self.conn.run(_get, "session get")
        if not fields:
            return None
        return self._decode(session_id, fields, pttl)

    @staticmethod
    def _decode(session_id: str, fields: dict[str, str], pttl: int) -> dict[str, Any]:
        return {
            "session_id": session_id,
            "user_id": fields.get("user_id"),
            "context": loads(fields.get("context")) or {},
            "data": loads(fields.get("data")) or {},
            "created_at": dt.datetime.fromisoformat(fields["created_at"]),
            "last_seen": dt.datetime.fromisoformat(fields["last_seen"]),
            "ttl": int(fields.get("ttl_ms", 0)) / 1000,
            "seconds_left": max(pttl, 0) / 1000,
        }

    def touch(self, session_id: str, ttl: float | None = None) -> bool:
        """Slide the expiry forward by the session's TTL (or a new ``ttl``); False if it is gone."""
        self.conn.check_writable("touching a session")
        _check_id("session_id", session_id)
        key = self._key(session_id)
        new_ms = None if ttl is None else _check_ttl(ttl)

        def _touch(r: redis.Redis) -> int:
            return r.eval(
                _TOUCH_LUA, 2, key, self._index, "" if new_ms is None else new_ms, _now().isoformat(), session_id, _ms()
            )

        return bool(self.conn.run(_touch, "session touch"))

    def update(
        self,
        session_id: str,
        *,
        context: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        replace: bool = False,
    ) -> dict[str, Any]:
        """Merge (or with ``replace=True`` overwrite) the session's context and/or temporary data.

        The merge is atomic (WATCH/MULTI), so concurrent updates do not lose keys. Raises
        :class:`NotFound` if the session has expired or ended. Returns the updated session.
        """
        self.conn.check_writable("updating a session")
        _check_id("session_id", session_id)
        ctx, tmp = _check_dict("context", context), _check_dict("data", data)
        key = self._key(session_id)

        def _update(pipe: redis.client.Pipeline) -> None:
            current = pipe.hmget(key, ["context", "data", "ttl_ms"])
            if current[2] is None:
                raise NotFound(f"session {session_id!r} does not exist (expired or ended)")
            new: dict[FieldT, EncodableT] = {}
            for name, given, old in (("context", context, current[0]), ("data", data, current[1])):
                if given is None:
                    continue
                value = dict(ctx if name == "context" else tmp)
                if not replace:
                    value = {**(loads(old) or {}), **value}
                new[name] = dumps(value)
            pipe.multi()
            if new:
                pipe.hset(key, mapping=new)

        self.conn.run(lambda r: r.transaction(_update, key), "session update")
        out = self.get(session_id)
        if out is None:
            raise NotFound(f"session {session_id!r} expired during the update")
        return out

    def end(self, session_id: str) -> bool:
        """Delete the session now; True if it existed."""
        self.conn.check_writable("ending a session")
        _check_id("session_id", session_id)

        def _end(r: redis.Redis) -> int:
            pipe = r.pipeline()
            pipe.delete(self._key(session_id))
            pipe.zrem(self._index, session_id)
            return pipe.execute()[0]

        return bool(self.conn.run(_end, "session end"))

    def delete(self, session_id: str) -> bool:
        """Same as :meth:`end`."""
        return self.end(session_id)

    # WebSocket connections of a session (a set with the session's lifetime, as the platform keeps them)
    def _connections_key(self, session_id: str) -> str:
        return self.conn.key("ws_connections", session_id)

    def connections(self, session_id: str) -> list[str]:
        """The connection ids registered for the session (sorted)."""
        key = self._connections_key(_check_id("session_id", session_id))
        return sorted(self.conn.run(lambda r: reply_strs(r.smembers(key)), "session connections"))

    def register_connection(self, session_id: str, connection_id: str, *, ttl: float = SESSION_TTL) -> int:
        """Add a connection id to the session's set (SADD + EXPIRE ``ttl``); returns 1 if it was new."""
        self.conn.check_writable("registering a connection")
        key = self._connections_key(_check_id("session_id", session_id))
        _check_id("connection_id", connection_id)
        seconds = max(1, int(round(_check_ttl(ttl) / 1000)))

        def _register(r: redis.Redis) -> int:
            pipe = r.pipeline()
            pipe.sadd(key, connection_id)
            pipe.expire(key, seconds)
            return int(pipe.execute()[0])

        return self.conn.run(_register, "register connection")

    def unregister_connection(self, session_id: str, connection_id: str) -> bool:
        """Remove a connection id from the session's set; True if it was there."""
        self.conn.check_writable("unregistering a connection")
        key = self._connections_key(_check_id("session_id", session_id))
        _check_id("connection_id", connection_id)
        return bool(self.conn.run(lambda r: r.srem(key, connection_id), "unregister connection"))

    def frame(self) -> pd.DataFrame:
        """Live sessions: session_id, user_id, created_at, last_seen, ttl, seconds_left, context, data."""

        def _live(r: redis.Redis) -> list[tuple[str, dict[str, str], int]]:
            if self.conn.read_only:  # only read: skip index entries past their expiry
                ids = reply_strs(r.zrangebyscore(self._index, _ms(), "+inf"))
            else:
                r.zremrangebyscore(self._index, "-inf", _ms())  # forget sessions past their expiry
                ids = reply_strs(r.zrange(self._index, 0, -1))
            pipe = r.pipeline(transaction=False)
            for sid in ids:
                pipe.hgetall(self._key(sid))
                pipe.pttl(self._key(sid))
            res = pipe.execute()
            return [(sid, res[2 * i], res[2 * i + 1]) for i, sid in enumerate(ids)]

        rows = [self._decode(sid, f, pttl) for sid, f, pttl in self.conn.run(_live, "session list") if f]
        cols = ["session_id", "user_id", "created_at", "last_seen", "ttl", "seconds_left", "context", "data"]
        frame = pd.DataFrame(rows, columns=cols)
        for c in ("created_at", "last_seen"):
            frame[c] = pd.to_datetime(frame[c], utc=True).astype("datetime64[us, UTC]")
        frame[["ttl", "seconds_left"]] = frame[["ttl", "seconds_left"]].astype("float64")
        return frame.sort_values("created_at", ignore_index=True)

    # pub/sub for one session
    def broadcast(self, session_id: str, data: Any, *, event: str = "message") -> int:
        """Send ``data`` to the session's subscribers; returns how many received it."""
        return pubsub.broadcast_to_session(self.conn, session_id, data, event=event)

    def subscribe(self, *session_ids: str, agents: bool | Iterable[str] = False) -> pubsub.Subscriber:
        """A :class:`~omnilab.sessions.pubsub.Subscriber` for these sessions and, with ``agents=True``, every
        agent's updates (or ``agents=[ids]``: those agents' channels in the platform layout; omnilab's single
        agents channel carries all agents)."""
        channels = [pubsub.session_channel(self.conn, s) for s in session_ids]
        patterns: list[str] = []
        if agents is True:
            if self.conn.platform:
                patterns.append(pubsub.agents_pattern(self.conn))
            else:
                channels.append(pubsub.agents_channel(self.conn))
        elif agents:
            if isinstance(agents, str):
                raise InvalidInput("agents must be True or a list of agent ids")
            channels += list(dict.fromkeys(pubsub.agent_channel(self.conn, a) for a in agents))
        return pubsub.Subscriber(self.conn, channels, patterns)

    def __len__(self) -> int:
        return len(self.frame())

    def __repr__(self) -> str:
        return f"<SessionStore {self.conn.display} prefix={self.conn.prefix!r}>"


class AgentStateCache:
    """Agent state (a JSON dict with at least ``status``) cached for a short TTL (default 5 minutes)."""

    #: True in the class that speaks the platform's keys (:class:`~omnilab.sessions.platform.PlatformAgentStateCache`)
    platform_layout: ClassVar[bool] = False
    factory: ClassVar[str] = "agent_state_cache"

    def __init__(self, conn: RedisConnection, *, ttl: float = AGENT_STATE_TTL) -> None:
        _check_layout(self, conn)
        self.conn = conn
        self.ttl = ttl
        _check_ttl(ttl)

    def _key(self, agent_id: str) -> str:
        return self.conn.key("agent", agent_id)

    @property
    def _index(self) -> str:
        return self.conn.key("agents")

    def set(
        self, agent_id: str, state: dict[str, Any], *, ttl: float | None = None, merge: bool = True
    ) -> dict[str, Any]:
        """Store (by default merge into) the agent's cached state; returns the stored state."""
        self.conn.check_writable("setting agent state")
        _check_id("agent_id", agent_id)
        state = _check_dict("state", state)
        ttl_ms = _check_ttl(self.ttl if ttl is None else ttl)
        key = self._key(agent_id)
        out: dict[str, Any] = {}

        def _set(pipe: redis.client.Pipeline) -> None:
            old = loads(pipe.get(key)) if merge else None
            out.clear()
            out.update({**(old or {}), **state, "updated_at": _now().isoformat()})
            pipe.multi()
            pipe.set(key, dumps(out), px=ttl_ms)
            pipe.zadd(self._index, {agent_id: _ms() + ttl_ms})

        self.conn.run(lambda r: r.transaction(_set, key), "agent state set")
        return out

    def get(self, agent_id: str) -> dict[str, Any] | None:
        """The cached state or ``None`` (never cached, or expired)."""
        _check_id("agent_id", agent_id)
        return loads(self.conn.run(lambda r: r.get(self._key(agent_id)), "agent state get"))

    def delete(self, agent_id: str) -> bool:
        self.conn.check_writable("deleting agent state")
        _check_id("agent_id", agent_id)

        def _del(r: redis.Redis) -> int:
            pipe = r.pipeline()
            pipe.delete(self._key(agent_id))
            pipe.zrem(self._index, agent_id)
            return pipe.execute()[0]

        return bool(self.conn.run(_del, "agent state delete"))

    def frame(self) -> pd.DataFrame:
        """Cached agents: agent_id, status, updated_at, seconds_left, state (the whole dict)."""

        def _live(r: redis.Redis) -> list[tuple[str, str | None, int]]:
            if self.conn.read_only:
                ids = reply_strs(r.zrangebyscore(self._index, _ms(), "+inf"))
            else:
                r.zremrangebyscore(self._index, "-inf", _ms())
                ids = reply_strs(r.zrange(self._index, 0, -1))
            pipe = r.pipeline(transaction=False)
            for aid in ids:
                pipe.get(self._key(aid))
                pipe.pttl(self._key(aid))
            res = pipe.execute()
            return [(aid, res[2 * i], res[2 * i + 1]) for i, aid in enumerate(ids)]

        rows = []
        for aid, raw, pttl in self.conn.run(_live, "agent state list"):
            if raw is None:
                continue
            state = loads(raw)
            rows.append(
                {
                    "agent_id": aid,
                    "status": state.get("status"),
                    "updated_at": _utc(state.get("updated_at")),
                    "seconds_left": max(pttl, 0) / 1000,
                    "state": state,
                }
            )
        frame = pd.DataFrame(rows, columns=["agent_id", "status", "updated_at", "seconds_left", "state"])
        frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True).astype("datetime64[us, UTC]")
        frame["seconds_left"] = frame["seconds_left"].astype("float64")
        return frame.sort_values("agent_id", ignore_index=True)

    def __repr__(self) -> str:
        return f"<AgentStateCache {self.conn.display} ttl={self.ttl}s>"


def set_agent_status(engine: sa.Engine, states: AgentStateCache, agent_id: str, status: Any) -> bool:
    """Write the agents table (the truth), then the cache, then publish the change.

    Raises NotFound / InvalidInput before anything is written. Returns True when cache and
    broadcast followed; False (with a warning) if Redis was unreachable — the SQL write stands.
    """
    from omnilab.sql.schema import TABLES

    _check_id("agent_id", agent_id)
    states.conn.check_writable("setting an agent's status")
    status = getattr(status, "value", status)
    allowed = [s.value for s in AgentStatus]
    if status not in allowed:
        raise InvalidInput(f"status must be one of {', '.join(allowed)}, got {status!r}")
    agents = TABLES["agents"]
    now = _now()
    with engine.begin() as c:
        n = c.execute(
            sa.update(agents).where(agents.c.id == agent_id).values(status=status, updated_at=now, last_active=now)
        ).rowcount
    if n == 0:
        raise NotFound(f"agent {agent_id!r} does not exist")
    try:
        states.set(agent_id, {"status": status})
        pubsub.broadcast_agent_update(states.conn, agent_id, {"status": status})
    except StoreUnavailable as exc:
        log.warning("agent %s status saved in SQL, but the cache/broadcast was skipped: %s", agent_id, exc)
        return False
    return True
