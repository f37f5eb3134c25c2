"""Pub/sub broadcasts: to one session's subscribers, and agent updates to everyone listening.

omnilab layout: channels ``<prefix>ch:session:<id>`` and ``<prefix>ch:agents``; messages are JSON envelopes
``{"event", "data", "sent_at", "session_id" | "agent_id"}``.
Platform layout: the platform's channels ``session:<id>`` and ``agent_updates:<agent_id>``; the message on
the wire is the JSON of ``data`` / ``update`` itself (e.g. ``{"status": "busy"}``), as the platform sends it.

A :class:`Subscriber` yields messages decoded into the same envelope in both layouts (``channel`` added,
without the key prefix; a platform message becomes ``data``, its ``type`` field if any the ``event``), as an
iterator with a timeout or through a callback on a background thread (handy in a notebook).
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
    "agent_channel",
    "agents_pattern",
    "Subscriber",
]

PLATFORM_SESSION = "session:"
PLATFORM_AGENT = "agent_updates:"

log = logging.getLogger(__name__)


def _check_id(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{name} must be a non-empty string, got {value!r}")
    return value


def session_channel(conn: RedisConnection, session_id: str) -> str:
    """The channel of one session (``session:<id>`` in the platform layout)."""
    _check_id("session_id", session_id)
    return PLATFORM_SESSION + session_id if conn.platform else conn.key("ch", "session", session_id)


def agents_channel(conn: RedisConnection) -> str:
    """omnilab's single channel carrying every agent's updates (omnilab layout)."""
    return conn.key("ch", "agents")


def agent_channel(conn: RedisConnection, agent_id: str) -> str:
    """The channel an update of ``agent_id`` goes to: ``agent_updates:<id>`` (platform) or the agents channel."""
    _check_id("agent_id", agent_id)
    return PLATFORM_AGENT + agent_id if conn.platform else agents_channel(conn)


def agents_pattern(conn: RedisConnection) -> str:
    """A glob pattern for every agent's updates in the platform layout."""
    return PLATFORM_AGENT + "*"


def _publish(conn: RedisConnection, channel: str, message: Any) -> int:
    conn.check_writable("publishing a message")
    text = dumps(message)
    return int(conn.run(lambda r: r.publish(channel, text), "publish"))


def _envelope(**fields: Any) -> dict[str, Any]:
    return {**fields, "sent_at": dt.datetime.now(dt.timezone.utc).isoformat()}


def broadcast_to_session(conn: RedisConnection, session_id: str, data: Any, *, event: str = "message") -> int:
    """Send ``data`` (JSON-able) to everyone subscribed to the session; returns the receiver count.

    In the platform layout ``data`` itself is the message (``event`` is not sent)."""
    channel = session_channel(conn, session_id)
    if conn.platform:
        return _publish(conn, channel, data)
    return _publish(conn, channel, _envelope(event=event, session_id=session_id, data=data))


def broadcast_agent_update(
    conn: RedisConnection, agent_id: str, update: dict[str, Any], *, event: str = "agent_update"
) -> int:
    """Announce an agent change (e.g. ``{"status": "busy"}``); returns the receiver count.

    In the platform layout ``update`` itself goes to ``agent_updates:<agent_id>`` (``event`` is not sent)."""
    channel = agent_channel(conn, agent_id)
    if not isinstance(update, dict):
        raise InvalidInput(f"update must be a dict, got {type(update).__name__}")
    if conn.platform:
        return _publish(conn, channel, update)
    return _publish(conn, channel, _envelope(event=event, agent_id=agent_id, data=update))


class Subscriber:
    """Decoded messages from channels (full key names) and/or glob patterns.

    >>> with Subscriber(conn, [session_channel(conn, sid)]) as sub:
    ...     for msg in sub.listen(timeout=5):   # stops after 5 s without a message
    ...         print(msg["data"])
    """

    def __init__(self, conn: RedisConnection, channels: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
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
        channel = raw["channel"]
        try:
            body = loads(raw["data"])
        except ValueError:
            body = raw["data"]
        if self.conn.platform:  # the platform sends bare JSON: wrap it in omnilab's envelope
            return _platform_envelope(channel, body)
        msg = body if isinstance(body, dict) else {"event": "raw", "data": body}
        msg["channel"] = channel[len(self.conn.prefix) :] if channel.startswith(self.conn.prefix) else channel
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

    def run_in_thread(self, callback: Callable[[dict[str, Any]], Any], *, poll: float = 0.1) -> SubscriberThread:
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


def _platform_envelope(channel: str, body: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"event": "message", "data": body, "channel": channel}
    if channel.startswith(PLATFORM_AGENT):
        msg.update(event="agent_update", agent_id=channel[len(PLATFORM_AGENT) :])
    elif channel.startswith(PLATFORM_SESSION):
        msg["session_id"] = channel[len(PLATFORM_SESSION) :]
    if isinstance(body, dict) and isinstance(body.get("type"), str):
        msg["event"] = body["type"]
    return msg


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
