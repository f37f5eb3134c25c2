"""Labs on one Redis are isolated, and queue ownership lives in SQL (issue 17, reproductions 1 and 2).

Every test runs on an embedded redis-server (the labs after the first reach it through its Unix socket) and
on the server Redis; the queue tests also on SQLite and PostgreSQL. On the shared server every lab's keys
are deleted afterwards (and nothing else).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import json
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import sqlalchemy as sa
from rel_checks import REDIS_URL

import omnilab
from omnilab import ConfigError
from omnilab.sessions.connection import RedisConnection
from omnilab.sql.schema import TABLES

TASKS = TABLES["tasks"]
SECRET = "secret note only in lab C about payroll"


class SharedRedis:
    """One Redis for several labs: ``open(name, **options)``; the labs and their keys go at the end."""

    def __init__(self, kind: str, root: Path, url: str | None = None) -> None:
        self.kind, self.root, self._url = kind, root, url
        self.labs: list[omnilab.Lab] = []
        self.prefixes: set[str] = set()
        self._socket: str | None = None

    def url(self) -> str:
        if self._url is not None:
            return self._url
        if self._socket is None:  # the first lab runs the embedded server; the others reach it by socket
            return "embedded"
        return f"unix://{self._socket}"

    def open(self, name: str, **options: Any) -> omnilab.Lab:
        options.setdefault("embedder", "hashing")
        lab = omnilab.open(self.root / name, redis_url=self.url(), **options)
        self.labs.append(lab)
        if self.kind == "embedded" and self._socket is None:
            lab.sessions.conn.run(lambda r: r.ping())
            self._socket = str(lab.sessions.conn._server.socket)
        with contextlib.suppress(ConfigError):  # a refused prefix has no keys of this lab
            namespace = getattr(lab, "_namespace", None)  # (tests run on older code too: they must fail there)
            self.prefixes.add(namespace[1] if namespace else lab.settings.redis_prefix)
        return lab

    def raw(self) -> redis.Redis:
        """A client without prefix or lab (what any other program sees)."""
        url = self._url or f"unix://{self._socket}"
        return redis.Redis.from_url(url, decode_responses=True)

    def close(self) -> None:
        for lab in reversed(self.labs):
            lab.close()
        if self._url is not None:
            for prefix in self.prefixes:
                conn = RedisConnection(self._url, prefix)
                try:
                    conn.delete_prefix()
                finally:
                    conn.close()


@pytest.fixture(params=["embedded", "server"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SharedRedis]:
    if request.param == "server" and not REDIS_URL:
        pytest.skip("OMNILAB_TEST_REDIS_URL is not set")
    redis_ = SharedRedis(request.param, tmp_path, REDIS_URL if request.param == "server" else None)
    try:
        yield redis_
    finally:
        redis_.close()


def _prefix() -> str:
    return f"iso{uuid.uuid4().hex[:10]}:"


def _db_url(lab: omnilab.Lab) -> str:
    return lab.database_url


def _task(lab: omnilab.Lab, task_id: str) -> dict[str, Any]:
    with lab.engine.connect() as conn:
        return dict(conn.execute(sa.select(TASKS).where(TASKS.c.id == task_id)).mappings().one())


# ------------------------------------------------------------------------------ 1. one Redis, two labs
def test_search_cache_of_one_lab_is_never_served_to_another(shared):
    c, d = shared.open("c"), shared.open("d")  # two SQLite labs, default prefix, one Redis
    mid = c.remember(SECRET, "knowledge")
    lunch = d.remember("the lunch menu for Friday", "knowledge")  # both labs now at memory generation 1
    first = c.search("payroll", cache=True)
    again = c.search("payroll", cache=True)
    assert first.attrs["cache"] == "miss" and again.attrs["cache"] == "hit"  # the cache works within C
    assert again["memory_id"].tolist() == [mid]
    other = d.search("payroll", cache=True)
    assert SECRET not in other["content"].tolist() and mid not in other["memory_id"].tolist()
    assert other.attrs["cache"] == "miss" and other["memory_id"].tolist() == [lunch]  # D's only memory
    # each lab's counters are its own
    stats_c = c.cache.stats().set_index("cache").loc["search"]
    stats_d = d.cache.stats().set_index("cache").loc["search"]
    assert (stats_c["hits"], stats_c["misses"]) == (1, 1) and (stats_d["hits"], stats_d["misses"]) == (0, 1)


def test_sessions_caches_and_queues_do_not_leak_between_labs(shared):
    c, d = shared.open("c"), shared.open("d")
    sid = c.sessions.create("alice", {"role": "admin"})
    assert d.sessions.get(sid) is None and c.sessions.get(sid)["user_id"] == "alice"
    c.cache.responses.set("agent-1", "prompt", {"answer": 42})
    assert d.cache.responses.get("agent-1", "prompt") is None
    tid = c.queue.enqueue({"content": "C's task", "task_type": "testing"})
    assert d.queue.dequeue("w-d") is None  # D neither takes nor removes C's task
    assert d.queue.stats().empty
    lease = c.queue.dequeue("w-c")
    assert lease is not None and lease.task_id == tid and lease.ack() is True
    assert _task(c, tid)["status"] == "completed"
    # every key each lab wrote is under its own prefix, derived from its own id
    keys = set(shared.raw().scan_iter(count=1000))
    for lab in (c, d):
        prefix = lab.sessions.conn.prefix
        assert prefix == f"omnilab:{lab._namespace[0]}:" and lab.lab_id == lab._namespace[0]
    mine = {k for k in keys if k.startswith(c.sessions.conn.prefix)}
    theirs = {k for k in keys if k.startswith(d.sessions.conn.prefix)}
    assert mine and theirs and not mine & theirs
    assert any(sid in k for k in mine) and not any(sid in k for k in theirs)


def _recorded_id(engine: sa.Engine) -> str:
    """lab_meta's "lab_id" value read with plain SQL (a JSON string: quoted text on SQLite, jsonb on PostgreSQL)."""
    with engine.connect() as conn:
        (value,) = conn.execute(sa.text("SELECT value FROM lab_meta WHERE key = 'lab_id'")).scalars().all()
    return json.loads(value) if isinstance(value, str) and value.startswith('"') else value


def test_a_lab_id_is_stable_and_recorded_in_its_database(shared, tmp_path):
    shared.open("c")  # holds the embedded server while d is closed and opened again
    d = shared.open("d")
    lab_id = d.lab_id
    assert lab_id == _recorded_id(d.engine) and len(lab_id) == 32
    d.close()
    again = shared.open("d")
    assert again.lab_id == lab_id and again.sessions.conn.prefix == f"omnilab:{lab_id}:"
    # a lab attached read-only to d's database keeps its identity in its own lab directory
    ro = omnilab.open(
        tmp_path / "ro", database_url=_db_url(again), read_only=True, embedder="hashing", redis_url=shared.url()
    )
    shared.labs.append(ro)
    assert ro.lab_id != lab_id and ro.lab_id == _recorded_id(ro.own_engine)
    assert _recorded_id(again.engine) == lab_id  # the attached database was not written
    assert ro.sessions.get(again.sessions.create("u")) is None


def test_an_explicit_prefix_is_refused_on_another_database(shared):
    prefix = _prefix()
    c = shared.open("c", redis_prefix=prefix)
    sid = c.sessions.create("u")
    d = shared.open("d", redis_prefix=prefix)  # another SQLite database
    for call in (lambda: d.sessions.get(sid), lambda: d.queue.dequeue("w"), lambda: d.search("x", cache=True)):
        with pytest.raises(ConfigError, match="belongs to a lab on another database"):
            call()
    # the same prefix on the same database is a team lab: it shares the keys
    team = shared.open("c-team", redis_prefix=prefix, database_url=_db_url(c))
    assert team.sessions.get(sid)["user_id"] == "u" and team.lab_id == c.lab_id == f"{c._namespace[0]}:{prefix}"


def test_platform_layout_keeps_the_platform_keys_and_isolates_its_own(tmp_path):
    """Two labs in the platform layout on one Redis: the platform's unprefixed keys, per-lab cache entries."""
    if REDIS_URL:
        url = urlunsplit(urlsplit(REDIS_URL)._replace(path="/15"))  # the platform-layout db of the suite
    else:
        pytest.skip("OMNILAB_TEST_REDIS_URL is not set")
    with contextlib.ExitStack() as stack:
        lock = stack.enter_context(open(Path(tempfile.gettempdir()) / "omnilab-test-redis-db15.lock", "a+"))
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        stack.callback(fcntl.flock, lock.fileno(), fcntl.LOCK_UN)
        raw = redis.Redis.from_url(url, decode_responses=True)
        before = set(raw.scan_iter(count=1000))
        stack.callback(lambda: [raw.delete(k) for k in set(raw.scan_iter(count=1000)) - before])
        shared = SharedRedis("server", tmp_path, url)
        stack.callback(shared.close)
        c = shared.open("c", redis_layout="platform")
        d = shared.open("d", redis_layout="platform")
        mid = c.remember(SECRET, "knowledge")
        lunch = d.remember("the lunch menu for Friday", "knowledge")
        assert c.search("payroll", cache=True).attrs["cache"] == "miss"
        assert c.search("payroll", cache=True).attrs["cache"] == "hit"
        other = d.search("payroll", cache=True)
        assert SECRET not in other["content"].tolist()
        assert other.attrs["cache"] == "miss" and other["memory_id"].tolist() == [lunch]
        new = set(raw.scan_iter(count=1000)) - before
        assert f"memory:{mid}" in new  # the platform's own key, unprefixed
        assert len([k for k in new if k.startswith("memory_search:")]) == 2  # one entry per lab
        own = [k for k in new if k.startswith("omnilab:")]  # omnilab's bookkeeping: under each lab's prefix
        assert own and all(k.startswith((c.sessions.conn.prefix, d.sessions.conn.prefix)) for k in own)
        assert c.cache.stats().set_index("cache").loc["search", "hits"] == 1
        assert d.cache.stats().set_index("cache").loc["search", "hits"] == 0


# ------------------------------------------------------------------------------ 2. queue ownership in SQL
def _lose_redis(shared: SharedRedis, lab: omnilab.Lab) -> None:
    """Redis lost the lab's data: the whole embedded server is flushed, the lab's keys on the shared one."""
    if shared.kind == "embedded":
        shared.raw().flushall()
    else:
        lab.sessions.conn.delete_prefix()


def test_recover_puts_every_task_back_on_its_own_queue(shared, database_url):
    lab = shared.open("a", database_url=database_url)
    q = lab.queue
    first = q.enqueue({"content": "default 1", "task_type": "testing"})
    others = q.enqueue_many([{"content": f"other {i}", "task_type": "testing"} for i in range(2)], queue="other")
    blocked = q.enqueue({"content": "after default 1", "task_type": "testing"}, queue="third", depends_on=[first])
    leased = q.enqueue({"content": "leased when Redis goes", "task_type": "testing"}, queue="other")
    assert q.dequeue("w", queue="other").task_id == others[0]  # leased: in_progress in SQL
    lease = q.dequeue("w", queue="other")
    assert lease.task_id == others[1] and lease.ack() is True
    assert q.dequeue("w", queue="other").task_id == leased

    _lose_redis(shared, lab)
    assert q.stats().empty
    assert q.recover("third") == 1  # one queue only
    assert q.recover() == 3  # the rest of the open tasks, each on its own queue
    assert q.recover() == 0
    st = q.stats().set_index("queue")
    assert st.loc["default", "pending"] == 1 and st.loc["other", "pending"] == 2 and st.loc["third", "waiting"] == 1
    got = q.dequeue_many("w", 5, queue="other")
    assert sorted(x.task_id for x in got) == sorted([others[0], leased])
    assert q.dequeue("w", queue="third") is None  # still waits for its dependency
    lease = q.dequeue("w")
    assert lease.task_id == first and lease.ack() is True
    assert q.dequeue("w", queue="third").task_id == blocked
    rows = {r["id"]: r for r in (_task(lab, i) for i in [first, *others, blocked, leased])}
    assert {i: (r["queue_name"], r["lab_id"]) for i, r in rows.items()} == {
        first: ("default", lab.lab_id),
        others[0]: ("other", lab.lab_id),
        others[1]: ("other", lab.lab_id),
        blocked: ("third", lab.lab_id),
        leased: ("other", lab.lab_id),
    }


def test_two_prefixes_on_one_database_never_take_each_others_tasks(shared, database_url):
    a = shared.open("a", database_url=database_url, redis_prefix=_prefix())
    b = shared.open("b", database_url=_db_url(a), redis_prefix=_prefix())
    ids = a.queue.enqueue_many([{"content": f"A's {i}", "task_type": "testing"} for i in range(3)])
    assert b.queue.recover() == 0 and b.queue.dequeue("b-worker") is None
    assert a.lab_id != b.lab_id
    leases = a.queue.dequeue_many("a-worker", 3)
    assert sorted(x.task_id for x in leases) == sorted(ids)
    # even with A's task ids in B's Redis (say, queued there before ownership was recorded), B's dequeue
    # cannot claim them in SQL: it drops them, and A's leases stand
    t = TASKS
    with a.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(t).where(t.c.id.in_(ids))).mappings()]
    bq = b.queue
    bq._push("default", bq._keys("default"), rows, [])
    assert bq.dequeue_many("b-worker", 3) == []
    assert bq.stats()["pending"].sum() == 0 and bq.stats()["in_flight"].sum() == 0
    assert all(x.ack() for x in leases)
    assert {_task(a, i)["status"] for i in ids} == {"completed"}


def test_a_lease_is_exclusive_across_labs_under_concurrent_claims(shared, database_url):
    """Tasks no lab owns (rows from lab.insert) sit in two labs' Redis at once; both dequeue concurrently:
    each task is leased exactly once, to the lab whose conditional UPDATE won."""
    a = shared.open("a", database_url=database_url, redis_prefix=_prefix())
    b = shared.open("b", database_url=_db_url(a), redis_prefix=_prefix())
    n = 40
    a.insert("tasks", [{"id": f"orphan-{i:02d}", "content": f"o{i}", "task_type": "testing"} for i in range(n)])
    with a.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(TASKS).order_by(TASKS.c.id)).mappings()]
    for q in (a.queue, b.queue):
        q._push("default", q._keys("default"), rows, [])

    def drain(lab: omnilab.Lab) -> list[str]:
        got = []
        while leases := lab.queue.dequeue_many(f"w-{lab.path.name}", 3):
            got += [x.task_id for x in leases]
        return got

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        got_a, got_b = (f.result() for f in [pool.submit(drain, a), pool.submit(drain, b)])
    assert not set(got_a) & set(got_b)
    assert sorted(got_a + got_b) == [r["id"] for r in rows]
    owners = {r["id"]: r["lab_id"] for r in (_task(a, i) for i in got_a + got_b)}
    assert all(owners[i] == a.lab_id for i in got_a) and all(owners[i] == b.lab_id for i in got_b)


def test_unowned_tasks_are_claimed_by_one_lab_and_team_labs_share_the_queue(shared, database_url):
    a = shared.open("a", database_url=database_url)
    a.insert("tasks", [{"id": "lone", "content": "from insert", "task_type": "testing"}])
    other = shared.open("b", database_url=_db_url(a), redis_prefix=_prefix())
    assert a.queue.recover() == 1  # claimed for A and queued
    assert other.queue.recover() == 0
    assert _task(a, "lone")["lab_id"] == a.lab_id and _task(a, "lone")["queue_name"] == "default"
    # a second Lab on the same database with the same (default) prefix is the same lab: it shares the queue
    team = shared.open("a-team", database_url=_db_url(a))
    assert team.lab_id == a.lab_id and team.sessions.conn.prefix == a.sessions.conn.prefix
    tid = a.queue.enqueue({"content": "for the team", "task_type": "testing"})
    got = sorted(x.task_id for x in team.queue.dequeue_many("team-worker", 5))
    assert got == sorted(["lone", tid])
    assert team.queue.recover() == 0 and a.queue.dequeue("a-worker") is None


def test_queue_rejects_owner_columns_and_long_queue_names(shared):
    lab = shared.open("a")
    for bad in ({"content": "x", "lab_id": "someone-else"}, {"content": "x", "queue_name": "elsewhere"}):
        with pytest.raises(omnilab.InvalidInput, match="set by the queue"):
            lab.queue.enqueue(bad)
    with pytest.raises(omnilab.InvalidInput, match="at most 100"):
        lab.queue.enqueue({"content": "x"}, queue="q" * 101)
    with pytest.raises(omnilab.InvalidInput, match="unowned"):
        lab.queue.recover(unowned="yes")
    assert lab.tasks().empty
