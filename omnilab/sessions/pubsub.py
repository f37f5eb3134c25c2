"""Pub/sub broadcasts: to one session's subscribers, and agent updates to everyone listening.

Messages are JSON envelopes ``{"event", "data", "sent_at", "session_id" | "agent_id"}``; a
:class:`Subscriber` yields them decoded (``channel`` added, without the key prefix), as an iterator
with a timeout or through a callback on a background thread (handy in a notebook).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis

from omnilab.errors import InvalidInput, StoreUnavailable
from omnilab.sessions.connection import UNREACHABLE, RedisConnection, dumps, loads

__all__ = [
    "broadcast_to_session",
    "broadcast_agent_update",
    "session_channel",
    "agents_channel",
    "Subscriber",
]

log = logging.getLogger(__name__)


def session_channel(conn: RedisConnection, session_id: str) -> str:
    """The channel of one session."""
    if not isinstance(session_id, str) or not session_id:
        raise InvalidInput(f"session_id must be a non-empty string, got {session_id!r}")
    return conn.key("ch", "session", session_id)


def agents_channel(conn: RedisConnection) -> str:
    """The channel carrying agent status and state updates."""
    return conn.key("ch", "agents")


def _publish(conn: RedisConnection, channel: str, envelope: dict[str, Any]) -> int:
    envelope["sent_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
    text = dumps(envelope)
    return int(conn.run(lambda r: r.publish(channel, text), "publish"))


def broadcast_to_session(conn: RedisConnection, session_id: str, data: Any, *,
                         event: str = "message") -> int:
    """Send ``data`` (JSON-able) to everyone subscribed to the session; returns the receiver count."""
    return _publish(conn, session_channel(conn, session_id),
                    {"event": event, "session_id": session_id, "data": data})


def broadcast_agent_update(conn: RedisConnection, agent_id: str, update: dict[str, Any], *,
                           event: str = "agent_update") -> int:
    """Announce an agent change (e.g. ``{"status": "busy"}``); returns the receiver count."""
    if not isinstance(agent_id, str) or not agent_id:
        raise InvalidInput(f"agent_id must be a non-empty string, got {agent_id!r}")
    if not isinstance(update, dict):
        raise InvalidInput(f"update must be a dict, got {type(update).__name__}")
    return _publish(conn, agents_channel(conn), {"event": event, "agent_id": agent_id, "data": update})


class Subscriber:
    """Decoded messages from channels (full key names) and/or glob patterns.

    >>> with Subscriber(conn, [session_channel(conn, sid)]) as sub:
    ...     for msg in sub.listen(timeout=5):   # stops after 5 s without a message
    ...         print(msg["data"])
    """

    def __init__(self, conn: RedisConnection, channels: Iterable[str] = (),
                 patterns: Iterable[str] = ()) -> None:
        self.conn = conn
        self.channels = list(channels)
        self.patterns = list(patterns)
        if not self.channels and not self.patterns:
            raise InvalidInput("subscribe to at least one channel or pattern")
        self._pubsub: redis.client.PubSub | None = None
        self._thread: SubscriberThread | None = None
        self._open()

    def _open(self) -> None:
        def _sub(r: redis.Redis) -> redis.client.PubSub:
            ps = r.pubsub(ignore_subscribe_messages=True)
            if self.channels:
                ps.subscribe(*self.channels)
            if self.patterns:
                ps.psubscribe(*self.patterns)
            return ps

        self._pubsub = self.conn.run(_sub, "subscribe")

    def _decode(self, raw: dict[str, Any]) -> dict[str, Any]:
        try:
            msg = loads(raw["data"])
        except ValueError:
            msg = {"event": "raw", "data": raw["data"]}
        if not isinstance(msg, dict):
            msg = {"event": "raw", "data": msg}
        channel = raw["channel"]
        msg["channel"] = channel[len(self.conn.prefix):] if channel.startswith(self.conn.prefix) else channel
        return msg

    def get(self, timeout: float = 0.0) -> dict[str, Any] | None:
        """The next message, waiting up to ``timeout`` seconds; ``None`` if none arrived."""
        if self._pubsub is None:
            raise InvalidInput("this subscriber is closed")
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            left = max(0.0, deadline - time.monotonic())
            try:
                raw = self._pubsub.get_message(timeout=left)
            except UNREACHABLE as exc:
                raise StoreUnavailable(f"Redis {self.conn.display} is unavailable (subscribe): {exc}") from exc
            if raw is not None and raw.get("type") in ("message", "pmessage"):
                return self._decode(raw)
            if time.monotonic() >= deadline:
                return None

    def listen(self, timeout: float | None = None, max_messages: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield messages until ``timeout`` seconds pass without one (``None``: forever)
        or ``max_messages`` have been yielded."""
        n = 0
        while max_messages is None or n < max_messages:
            msg = self.get(timeout=3600.0 if timeout is None else timeout)
            if msg is None:
                if timeout is None:
                    continue
                return
            n += 1
            yield msg

    __iter__ = listen

    def run_in_thread(self, callback: Callable[[dict[str, Any]], Any], *,
                      poll: float = 0.1) -> SubscriberThread:
        """Call ``callback(message)`` for every message on a daemon thread; ``.stop()`` ends it."""
        if self._thread is not None and self._thread.is_alive():
            raise InvalidInput("this subscriber already runs a thread")
        self._thread = SubscriberThread(self, callback, poll)
        self._thread.start()
        return self._thread

    def close(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except UNREACHABLE:
                pass
            self._pubsub = None

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SubscriberThread(threading.Thread):
    """Delivers a subscriber's messages to a callback until stopped; errors are logged, not raised."""

    def __init__(self, sub: Subscriber, callback: Callable[[dict[str, Any]], Any], poll: float) -> None:
        super().__init__(daemon=True, name="omnilab-subscriber")
        self.sub, self.callback, self.poll = sub, callback, poll
        self._stop_event = threading.Event()
        self.errors: list[BaseException] = []

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                msg = self.sub.get(timeout=self.poll)
            except StoreUnavailable as exc:
                log.warning("subscriber lost Redis: %s", exc)
                self.errors.append(exc)
                self._stop_event.wait(1.0)
                continue
            except Exception as exc:  # noqa: BLE001 - a closed pubsub ends the thread quietly
                if not self._stop_event.is_set():
                    self.errors.append(exc)
                return
            if msg is None:
                continue
            try:
                self.callback(msg)
            except Exception as exc:  # noqa: BLE001 - a bad callback must not kill the listener
                log.exception("subscriber callback failed")
                self.errors.append(exc)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop_event.set()
        if threading.current_thread() is not self:
            self.join(timeout)
