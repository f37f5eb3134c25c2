"""Sessions and agent state in the platform's own Redis keys (``data/platform/redis-layout.md``).

Used when the connection has ``layout="platform"`` (:func:`omnilab.sessions.layout.session_store` returns a
:class:`PlatformSessionStore`, :func:`~omnilab.sessions.layout.agent_state_cache` a :class:`PlatformAgentStateCache`):

- ``session:<id>``: JSON ``{session_id, user_id, created_at, last_activity, context{...}, temporary_data{...}}``,
  written with an expiry of 3600 s; times are ISO 8601 UTC with ``Z``.
- ``ws_connections:<id>``: set of connection ids, SADD + EXPIRE 3600.
- ``agent_state:<id>``: JSON ``{agent_id, status, current_task, progress, estimated_completion,
  performance_metrics{response_time, success_rate, tokens_used}}`` and ``agent_status:<id>`` (plain status),
  both 300 s.

There is no index key in this layout, so listings SCAN the key pattern (never KEYS). Reads never refresh a
TTL; a key holding something other than the platform's JSON is skipped in frames (logged) and reported by
``get``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import pandas as pd
import redis

from omnilab.errors import InvalidInput, NotFound, OmnilabError
from omnilab.sessions.connection import dumps, expiry, loads, reply_opt
from omnilab.sessions.store import (
    AgentStateCache,
    SessionStore,
    _check_dict,
    _check_id,
    _check_ttl,
)

__all__ = [
    "PlatformSessionStore",
    "PlatformAgentStateCache",
    "iso_z",
    "SESSION_PREFIX",
    "STATE_PREFIX",
    "STATUS_PREFIX",
    "CONNECTIONS_PREFIX",
]

log = logging.getLogger(__name__)

SESSION_PREFIX = "session:"
CONNECTIONS_PREFIX = "ws_connections:"
STATE_PREFIX = "agent_state:"
STATUS_PREFIX = "agent_status:"

CONTEXT_FIELDS: dict[str, Any] = {
    "current_project": None,
    "active_agents": [],
    "conversation_history": [],
    "preferences": {},
}
TEMPORARY_FIELDS: dict[str, Any] = {"draft_code": None, "incomplete_tasks": [], "search_results": []}
STATE_FIELDS = ("agent_id", "status", "current_task", "progress", "estimated_completion", "performance_metrics")
METRIC_FIELDS = ("response_time", "success_rate", "tokens_used")


def iso_z(when: dt.datetime | None = None) -> str:
    """A UTC time as the platform writes it: ISO 8601 with ``Z`` (milliseconds)."""
    when = (when or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    return when.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _fresh(defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.copy() if isinstance(v, (list, dict)) else v) for k, v in defaults.items()}


def _seconds_left(pttl: Any) -> float:
    return pttl / 1000 if isinstance(pttl, int) and pttl >= 0 else float("nan")


def _scan(r: redis.Redis, prefix: str) -> list[str]:
    return sorted({k for k in r.scan_iter(match=prefix + "*", count=1000)})


def _utc_column(values: list[Any]) -> pd.Series:
    out = pd.to_datetime(pd.Series(values, dtype=object), utc=True, errors="coerce", format="ISO8601")
    return out.astype("datetime64[us, UTC]")


def _dict_field(doc: dict[str, Any], field: str) -> dict[str, Any]:
    """``doc[field]`` when it is a JSON object, else ``{}`` (a foreign value in the platform's keys)."""
    value = doc.get(field)
    return value if isinstance(value, dict) else {}


def _json_object(key: str, raw: Any) -> dict[str, Any] | None:
    """The JSON object stored at ``key``, or None (logged) if it holds something else."""
    if raw is None or isinstance(raw, Exception):
        if isinstance(raw, Exception):
            log.warning("skipping %s: %s", key, raw)
        return None
    try:
        value = loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        log.warning("skipping %s: not a JSON object", key)
        return None
    return value


class PlatformSessionStore(SessionStore):
    """The platform's ``session:<id>`` JSON sessions (TTL 3600 s) and ``ws_connections:<id>`` sets."""

    platform_layout = True

    def _key(self, session_id: str) -> str:
        return SESSION_PREFIX + session_id

    def _connections_key(self, session_id: str) -> str:
        return CONNECTIONS_PREFIX + session_id

    def _ttl_ms(self, ttl: float | None) -> int:
        return _check_ttl(self.default_ttl if ttl is None else ttl)

    def create(
        self,
        user_id: str,
        context: dict[str, Any] | None = None,
        ttl: float | None = None,
        *,
        data: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> str:
        """Write ``session:<id>`` in the platform's shape (``data`` fills ``temporary_data``); returns the id."""
        self.conn.check_writable("creating a session")
        _check_id("user_id", user_id)
        ctx, tmp = _check_dict("context", context), _check_dict("data", data)
        ttl_ms = self._ttl_ms(ttl)
        sid = str(uuid.uuid4()) if session_id is None else _check_id("session_id", session_id)
        now = iso_z()
        doc = {
            "session_id": sid,
            "user_id": user_id,
            "created_at": now,
            "last_activity": now,
            "context": {**_fresh(CONTEXT_FIELDS), **ctx},
            "temporary_data": {**_fresh(TEMPORARY_FIELDS), **tmp},
        }
        text = dumps(doc)
        ok = self.conn.run(lambda r: r.set(self._key(sid), text, nx=True, **expiry(ttl_ms)), "session create")
        if not ok:
            raise InvalidInput(f"session {sid!r} already exists")
        return sid

    def get(self, session_id: str, *, touch: bool = False) -> dict[str, Any] | None:
        """The platform's session JSON as stored, plus ``seconds_left``; ``None`` if there is none."""
        _check_id("session_id", session_id)
        if touch and not self.touch(session_id):
            return None
        key = self._key(session_id)

        def _get(r: redis.Redis) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            pipe.get(key)
            pipe.pttl(key)
            return pipe.execute(raise_on_error=False)

        raw, pttl = self.conn.run(_get, "session get")
        if raw is None:
            return None
        doc = _json_object(key, raw)
        if doc is None:
            raise OmnilabError(f"Redis key {key} does not hold a platform session (JSON object)")
        return {**doc, "seconds_left": _seconds_left(pttl)}

    def _rewrite(self, session_id: str, change: Any, ttl_ms: int, what: str) -> dict[str, Any] | None:
        """Apply ``change(doc)`` atomically (WATCH/MULTI), set last_activity and the expiry; None if gone."""
        key = self._key(session_id)
        out: dict[str, Any] = {}

        def _tx(pipe: redis.client.Pipeline) -> None:
            out.clear()
            doc = _json_object(key, pipe.get(key))
            if doc is None:
                return
            change(doc)
            doc["last_activity"] = iso_z()
            out.update(doc)
            pipe.multi()
            pipe.set(key, dumps(doc), **expiry(ttl_ms))

        self.conn.run(lambda r: r.transaction(_tx, key), what)
        return out or None

    def touch(self, session_id: str, ttl: float | None = None) -> bool:
        """Set ``last_activity`` to now and the expiry back to the full TTL; False if the session is gone."""
        self.conn.check_writable("touching a session")
        _check_id("session_id", session_id)
        return self._rewrite(session_id, lambda doc: None, self._ttl_ms(ttl), "session touch") is not None

    def update(
        self,
        session_id: str,
        *,
        context: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        replace: bool = False,
    ) -> dict[str, Any]:
        """Merge (or replace) ``context`` and ``temporary_data`` (given as ``data``); slides the expiry."""
        self.conn.check_writable("updating a session")
        _check_id("session_id", session_id)
        ctx, tmp = _check_dict("context", context), _check_dict("data", data)

        def change(doc: dict[str, Any]) -> None:
            for field, given, value in (("context", context, ctx), ("temporary_data", data, tmp)):
                if given is not None:
                    old = doc.get(field)
                    doc[field] = dict(value) if replace else {**(old if isinstance(old, dict) else {}), **value}

        if self._rewrite(session_id, change, self._ttl_ms(None), "session update") is None:
            raise NotFound(f"session {session_id!r} does not exist (expired or ended)")
        out = self.get(session_id)
        if out is None:
            raise NotFound(f"session {session_id!r} expired during the update")
        return out

    def end(self, session_id: str) -> bool:
        """Delete ``session:<id>``; True if it existed (its ``ws_connections`` set is the platform's to drop)."""
        self.conn.check_writable("ending a session")
        key = self._key(_check_id("session_id", session_id))
        return bool(self.conn.run(lambda r: r.delete(key), "session end"))

    def frame(self) -> pd.DataFrame:
        """Live ``session:*`` keys: session_id, user_id, created_at, last_activity, seconds_left, connections,
        current_project, active_agents, context, temporary_data (sorted by created_at)."""

        def _live(r: redis.Redis) -> list[tuple[str, Any, Any, Any]]:
            keys = _scan(r, SESSION_PREFIX)
            pipe = r.pipeline(transaction=False)
            for k in keys:
                pipe.get(k)
                pipe.pttl(k)
                pipe.scard(CONNECTIONS_PREFIX + k[len(SESSION_PREFIX) :])
            res = pipe.execute(raise_on_error=False)
            return [(k, *res[3 * i : 3 * i + 3]) for i, k in enumerate(keys)]

        rows = []
        for key, raw, pttl, n_conn in self.conn.run(_live, "session list"):
            doc = _json_object(key, raw)
            if doc is None:
                continue
            ctx = _dict_field(doc, "context")
            rows.append(
                {
                    "session_id": key[len(SESSION_PREFIX) :],
                    "user_id": doc.get("user_id"),
                    "created_at": doc.get("created_at"),
                    "last_activity": doc.get("last_activity"),
                    "seconds_left": _seconds_left(pttl),
                    "connections": n_conn if isinstance(n_conn, int) else 0,
                    "current_project": ctx.get("current_project"),
                    "active_agents": ctx.get("active_agents"),
                    "context": doc.get("context"),
                    "temporary_data": doc.get("temporary_data"),
                }
            )
        cols = [
            "session_id",
            "user_id",
            "created_at",
            "last_activity",
            "seconds_left",
            "connections",
            "current_project",
            "active_agents",
            "context",
            "temporary_data",
        ]
        frame = pd.DataFrame(rows, columns=cols)
        for c in ("created_at", "last_activity"):
            frame[c] = _utc_column(list(frame[c]))
        frame = frame.astype({"seconds_left": "float64", "connections": "int64"})
        return frame.sort_values(["created_at", "session_id"], ignore_index=True)

    def __repr__(self) -> str:
        return f"<PlatformSessionStore {self.conn.display} (platform keys session:*)>"


class PlatformAgentStateCache(AgentStateCache):
    """The platform's ``agent_state:<id>`` JSON and ``agent_status:<id>`` text, both with a 300 s TTL."""

    platform_layout = True

    def _key(self, agent_id: str) -> str:
        return STATE_PREFIX + agent_id

    def set(
        self, agent_id: str, state: dict[str, Any], *, ttl: float | None = None, merge: bool = True
    ) -> dict[str, Any]:
        """Write ``agent_state:<id>`` (merged into the current state by default; only the platform's fields)
        and, when the state has a status, ``agent_status:<id>``; returns the stored state."""
        self.conn.check_writable("setting agent state")
        _check_id("agent_id", agent_id)
        state = _check_dict("state", state)
        unknown = sorted(set(state) - set(STATE_FIELDS))
        if unknown:
            raise InvalidInput(
                f"agent state field(s) {', '.join(unknown)} are not the platform's ({', '.join(STATE_FIELDS)})"
            )
        metrics = state.get("performance_metrics")
        if metrics is not None and (not isinstance(metrics, dict) or set(metrics) - set(METRIC_FIELDS)):
            raise InvalidInput(f"performance_metrics must be a dict of {', '.join(METRIC_FIELDS)}")
        if state.get("agent_id", agent_id) != agent_id:
            raise InvalidInput(f"state agent_id {state['agent_id']!r} differs from {agent_id!r}")
        ttl_args = expiry(_check_ttl(self.ttl if ttl is None else ttl))
        key, status_key = self._key(agent_id), STATUS_PREFIX + agent_id
        out: dict[str, Any] = {}

        def _set(pipe: redis.client.Pipeline) -> None:
            old = _json_object(key, pipe.get(key)) if merge else None
            doc: dict[str, Any] = {
                **{f: None for f in STATE_FIELDS},
                "performance_metrics": dict.fromkeys(METRIC_FIELDS),
            }
            for layer in (old or {}, state):
                for f, v in layer.items():
                    if f == "performance_metrics" and isinstance(v, dict):
                        doc[f] = {**(doc[f] or {}), **v}
                    else:
                        doc[f] = v
            doc["agent_id"] = agent_id
            out.clear()
            out.update(doc)
            pipe.multi()
            pipe.set(key, dumps(doc), **ttl_args)
            if doc["status"] is not None:
                pipe.set(status_key, str(doc["status"]), **ttl_args)

        self.conn.run(lambda r: r.transaction(_set, key), "agent state set")
        return out

    def get(self, agent_id: str) -> dict[str, Any] | None:
        """``agent_state:<id>`` as stored, or ``None``."""
        key = self._key(_check_id("agent_id", agent_id))
        raw = self.conn.run(lambda r: r.get(key), "agent state get")
        return None if raw is None else _json_object(key, raw)

    def status(self, agent_id: str) -> str | None:
        """``agent_status:<id>`` (the plain status the platform keeps beside the state), or ``None``."""
        key = STATUS_PREFIX + _check_id("agent_id", agent_id)
        return self.conn.run(lambda r: reply_opt(r.get(key)), "agent status get")

    def delete(self, agent_id: str) -> bool:
        """Delete ``agent_state:<id>`` and ``agent_status:<id>``; True if either existed."""
        self.conn.check_writable("deleting agent state")
        _check_id("agent_id", agent_id)
        return bool(
            self.conn.run(lambda r: r.delete(self._key(agent_id), STATUS_PREFIX + agent_id), "agent state delete")
        )

    def frame(self) -> pd.DataFrame:
        """One row per agent with ``agent_state:*`` or ``agent_status:*``: agent_id, status (from the state),
        agent_status (the plain key), current_task, progress, estimated_completion, response_time,
        success_rate, tokens_used, seconds_left (state TTL), status_seconds_left, state (the whole dict)."""

        def _live(r: redis.Redis) -> list[tuple[str, Any, Any, Any, Any]]:
            ids = sorted(
                {k[len(STATE_PREFIX) :] for k in _scan(r, STATE_PREFIX)}
                | {k[len(STATUS_PREFIX) :] for k in _scan(r, STATUS_PREFIX)}
            )
            pipe = r.pipeline(transaction=False)
            for aid in ids:
                for k in (STATE_PREFIX + aid, STATUS_PREFIX + aid):
                    pipe.get(k)
                    pipe.pttl(k)
            res = pipe.execute(raise_on_error=False)
            return [(aid, *res[4 * i : 4 * i + 4]) for i, aid in enumerate(ids)]

        rows = []
        for aid, raw, pttl, status, status_pttl in self.conn.run(_live, "agent state list"):
            state = _json_object(STATE_PREFIX + aid, raw)
            if isinstance(status, Exception):
                log.warning("skipping %s%s: %s", STATUS_PREFIX, aid, status)
                status = None
            if state is None and status is None:
                continue
            st = state or {}
            metrics = _dict_field(st, "performance_metrics")
            rows.append(
                {
                    "agent_id": aid,
                    "status": st.get("status"),
                    "agent_status": status,
                    "current_task": st.get("current_task"),
                    "progress": st.get("progress"),
                    "estimated_completion": st.get("estimated_completion"),
                    **{m: metrics.get(m) for m in METRIC_FIELDS},
                    "seconds_left": _seconds_left(pttl) if state is not None else float("nan"),
                    "status_seconds_left": _seconds_left(status_pttl) if status is not None else float("nan"),
                    "state": state,
                }
            )
        cols = [
            "agent_id",
            "status",
            "agent_status",
            "current_task",
            "progress",
            "estimated_completion",
            *METRIC_FIELDS,
            "seconds_left",
            "status_seconds_left",
            "state",
        ]
        frame = pd.DataFrame(rows, columns=cols)
        frame["estimated_completion"] = _utc_column(list(frame["estimated_completion"]))
        for c in ("progress", *METRIC_FIELDS, "seconds_left", "status_seconds_left"):
            frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
        return frame.sort_values("agent_id", ignore_index=True)

    def __repr__(self) -> str:
        return f"<PlatformAgentStateCache {self.conn.display} ttl={self.ttl}s (platform keys agent_state:*)>"
