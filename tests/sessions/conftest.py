"""Fixtures for the Redis store: every test runs on the embedded server and on the server Redis.

Each test gets its own random key prefix and, on the shared server, deletes only its own keys.
Platform-layout tests (the platform's fixed, unprefixed key names) use db 15 of the server Redis, one test at
a time (a file lock), and delete the platform's key patterns there before and after.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

import omnilab
from omnilab.sessions.connection import RedisConnection

REDIS_URL = os.environ.get("OMNILAB_TEST_REDIS_URL")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["embedded", "server"])
def redis_url(request: pytest.FixtureRequest) -> str:
    """``"embedded"`` (a redis-server inside the test's lab) or the server at OMNILAB_TEST_REDIS_URL."""
    if request.param == "embedded":
        return "embedded"
    if not REDIS_URL:
        pytest.skip("OMNILAB_TEST_REDIS_URL is not set, so the server-Redis variant cannot run")
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A fresh prefix; afterwards every key under it is deleted (and nothing else)."""
    prefix = f"t{uuid.uuid4().hex[:12]}:"
    yield prefix
    if redis_url != "embedded":
        conn = RedisConnection(redis_url, prefix)
        try:
            conn.delete_prefix()
        finally:
            conn.close()


def _open(path: Path, redis_url: str, prefix: str, database_url: str | None = None) -> omnilab.Lab:
    return omnilab.open(path, redis_url=redis_url, redis_prefix=prefix, database_url=database_url, embedder="hashing")


@pytest.fixture
def rlab(tmp_path: Path, redis_url: str, redis_prefix: str) -> Iterator[omnilab.Lab]:
    """A SQLite lab on each Redis variant."""
    with _open(tmp_path / "lab", redis_url, redis_prefix) as lab:
        yield lab


@pytest.fixture
def qlab(tmp_path: Path, redis_url: str, redis_prefix: str, database_url: str | None) -> Iterator[omnilab.Lab]:
    """A lab on each Redis variant x each SQL backend (for the queue, whose truth is SQL)."""
    with _open(tmp_path / "lab", redis_url, redis_prefix, database_url) as lab:
        yield lab


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server we own on a free port, so a test may kill and restart it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.exe = shutil.which("redis-server")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    if server.exe is None:
        pytest.skip("redis-server is not on PATH")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def run_child(code: str, *args: str) -> subprocess.Popen:
    """Start ``python -c code args...`` with the repo importable; stdout is a text pipe."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.fixture
def child() -> Iterator:
    """``child(code, *args)`` starts a Python subprocess; all are killed at the end of the test."""
    procs: list[subprocess.Popen] = []

    def start(code: str, *args: str) -> subprocess.Popen:
        proc = run_child(code, *args)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


# ------------------------------------------------------------------------------------ platform layout
PLATFORM_DB = 15
#: every key name of the platform's layout (data/platform/redis-layout.md)
PLATFORM_PATTERNS = (
    "session:*",
    "ws_connections:*",
    "agent_state:*",
    "agent_status:*",
    "task_queue",
    "processing_tasks",
    "memory:*",
    "memory_search:*",
    "agent_response:*",
    "transaction:*",
)


def _with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def _clean_platform_keys(r: redis.Redis, prefix: str) -> None:
    for pattern in (*PLATFORM_PATTERNS, prefix + "*"):
        keys = list(r.scan_iter(match=pattern, count=1000))
        if keys:
            r.delete(*keys)


class PlatformRedis:
    """A Redis holding only platform-layout keys: ``raw`` (redis-py, no prefix) and ``connect(...)``."""

    def __init__(self, url: str, lab_dir: Path, prefix: str) -> None:
        self.url, self.lab_dir, self.prefix = url, lab_dir, prefix
        self._conns: list[RedisConnection] = []
        admin = self.connect(layout="omnilab")  # embedded: starts the lab's server
        self.raw: redis.Redis = admin.client  # no prefix, no layout: what any other client sees

    def connect(self, *, layout: str = "platform", read_only: bool = False) -> RedisConnection:
        conn = RedisConnection(self.url, self.prefix, lab_dir=self.lab_dir, layout=layout, read_only=read_only)
        self._conns.append(conn)
        return conn

    def snapshot(self) -> dict[str, tuple[str, object]]:
        """Every key -> (type, value) (TTLs are compared separately: they tick)."""
        out: dict[str, tuple[str, object]] = {}
        for k in self.raw.scan_iter(count=1000):
            kind = self.raw.type(k)
            value = {
                "string": self.raw.get,
                "set": self.raw.smembers,
                "list": lambda x: self.raw.lrange(x, 0, -1),
                "hash": self.raw.hgetall,
                "zset": lambda x: self.raw.zrange(x, 0, -1, withscores=True),
            }[kind](k)
            out[k] = (kind, value)
        return out

    def close(self) -> None:
        for conn in reversed(self._conns):
            conn.close()


@pytest.fixture
def platform_redis(tmp_path: Path, redis_url: str) -> Iterator[PlatformRedis]:
    """Embedded Redis in a fresh lab, or db 15 of the server Redis (locked, platform keys cleaned)."""
    prefix = f"t{uuid.uuid4().hex[:12]}:"
    with contextlib.ExitStack() as stack:
        if redis_url == "embedded":
            url = "embedded"
        else:
            url = _with_db(redis_url, PLATFORM_DB)
            lock = stack.enter_context(open(Path(tempfile.gettempdir()) / "omnilab-test-redis-db15.lock", "a+"))
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            stack.callback(fcntl.flock, lock.fileno(), fcntl.LOCK_UN)
        pr = PlatformRedis(url, tmp_path / "lab", prefix)
        stack.callback(pr.close)
        if url != "embedded":
            _clean_platform_keys(pr.raw, prefix)
            stack.callback(_clean_platform_keys, pr.raw, prefix)
        yield pr


@pytest.fixture
def sql_engine(tmp_path: Path, database_url: str | None) -> Iterator[Any]:
    """An engine with omnilab's schema (the platform's tables plus additions) on SQLite or PostgreSQL."""
    from omnilab.sql.engine import create_engine
    from omnilab.sql.schema import Base

    engine = create_engine(database_url or f"sqlite:///{tmp_path / 'tasks.db'}")
    Base.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
