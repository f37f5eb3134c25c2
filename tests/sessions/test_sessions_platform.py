"""The platform's Redis layout (data/platform/redis-layout.md) on embedded and server Redis.

The platform's keys are written with a raw redis-py client (tests/platform_data.py, as the platform writes
them); omnilab's stores must read them exactly, write exactly the platform's names, TTLs and JSON fields,
round-trip pub/sub on the platform's channels, and with read_only=True change nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from omnilab import InvalidInput, NotFound, ReadOnlyViolation
from omnilab.sessions import pubsub
from omnilab.sessions.cache import Caches, MemoryCache, ResponseCache, SearchCache
from omnilab.sessions.layout import agent_state_cache, session_store
from omnilab.sessions.platform import PlatformAgentStateCache, PlatformSessionStore
from omnilab.sessions.queue import TaskQueue
from omnilab.sessions.store import AgentStateCache, SessionStore
from omnilab.sessions.tasks import update_task_progress
from omnilab.sessions.txlog import read_transaction, transaction

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from platform_data import write_platform_redis  # noqa: E402

SESSION_FIELDS = {"session_id", "user_id", "created_at", "last_activity", "context", "temporary_data"}
CONTEXT_FIELDS = {"current_project", "active_agents", "conversation_history", "preferences"}
TEMPORARY_FIELDS = {"draft_code", "incomplete_tasks", "search_results"}
STATE_FIELDS = {"agent_id", "status", "current_task", "progress", "estimated_completion", "performance_metrics"}
METRIC_FIELDS = {"response_time", "success_rate", "tokens_used"}


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC") if pd.Timestamp(text).tzinfo else pd.Timestamp(text, tz="UTC")


def _no_engine() -> sa.Engine:
    return sa.create_engine("sqlite://")  # TaskQueue.stats() and platform_tasks() never touch SQL


# ---------------------------------------------------------------------------------------------- reads
def test_platform_layout_reads_the_platform_keys_exactly(platform_redis):
    written = write_platform_redis(platform_redis.raw)
    conn = platform_redis.connect()
    sessions = session_store(conn)
    assert isinstance(sessions, PlatformSessionStore)

    got = sessions.get("sess_a")
    assert {k: v for k, v in got.items() if k != "seconds_left"} == written["session"]
    assert 3590 < got["seconds_left"] <= 3600
    assert sessions.get("no_such_session") is None
    assert sessions.connections("sess_a") == ["conn_1", "conn_2"]
    assert sessions.connections("no_such_session") == []

    f = sessions.frame()
    assert list(f.columns) == [
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
    assert f["session_id"].tolist() == ["sess_a"] and len(sessions) == 1
    row = f.iloc[0]
    s = written["session"]
    assert row["user_id"] == s["user_id"] and row["connections"] == 2
    assert row["created_at"] == _ts(s["created_at"]) and row["last_activity"] == _ts(s["last_activity"])
    assert str(f["created_at"].dtype) == "datetime64[us, UTC]"
    assert row["current_project"] == "proj_web" and row["active_agents"] == ["agency_coder"]
    assert row["context"] == s["context"] and row["temporary_data"] == s["temporary_data"]
    assert abs(row["seconds_left"] - platform_redis.raw.pttl("session:sess_a") / 1000) < 2

    states = agent_state_cache(conn)
    assert isinstance(states, PlatformAgentStateCache)
    state = written["state"]
    assert states.get("agency_coder") == state and states.status("agency_coder") == "busy"
    assert states.get("agency_tester") is None and states.status("agency_tester") is None
    af = states.frame()
    assert af["agent_id"].tolist() == ["agency_coder"]
    a = af.iloc[0]
    assert (a["status"], a["agent_status"], a["current_task"], a["progress"]) == ("busy", "busy", "task_0001", 40)
    assert (a["response_time"], a["success_rate"], a["tokens_used"]) == (1.2, 0.9, 1234)
    assert a["estimated_completion"] == _ts(state["estimated_completion"]) and a["state"] == state
    assert 290 < a["seconds_left"] <= 300 and 290 < a["status_seconds_left"] <= 300

    q = TaskQueue(conn, _no_engine())
    st = q.stats()
    assert st["queue"].tolist() == ["task_queue (platform)"]
    p = st.iloc[0]
    assert (p["pending"], p["in_flight"]) == (3, 2)
    assert pd.isna(p["waiting"]) and pd.isna(p["dead"]) and pd.isna(p["expired_leases"])
    tasks = q.platform_tasks()
    # LPUSH then BRPOP: the first pushed is the next taken
    assert tasks["id"].tolist() == ["task_q0", "task_q1", "task_q2"] and tasks["position"].tolist() == [0, 1, 2]
    assert tasks["content"].tolist() == ["queued 0", "queued 1", "queued 2"] and not tasks["processing"].any()

    # omnilab's own layout on the same server sees none of the platform's keys
    own = platform_redis.connect(layout="omnilab")
    assert session_store(own).frame().empty and agent_state_cache(own).frame().empty
    assert TaskQueue(own, _no_engine()).stats().empty


def test_layout_factories_pick_the_class_and_the_omnilab_classes_refuse_platform_keys(platform_redis):
    own, platform = platform_redis.connect(layout="omnilab"), platform_redis.connect()
    assert type(session_store(own)) is SessionStore and type(agent_state_cache(own)) is AgentStateCache
    assert type(session_store(platform)) is PlatformSessionStore
    assert type(agent_state_cache(platform, ttl=7)) is PlatformAgentStateCache
    assert agent_state_cache(platform, ttl=7).ttl == 7 and session_store(own, default_ttl=9).default_ttl == 9
    # the omnilab-layout classes would write keys the platform never reads: refused, naming the factory
    with pytest.raises(InvalidInput, match=r"session_store\(conn\)"):
        SessionStore(platform)
    with pytest.raises(InvalidInput, match=r"agent_state_cache\(conn\)"):
        AgentStateCache(platform)


def test_platform_frames_tolerate_foreign_values(platform_redis):
    r = platform_redis.raw
    write_platform_redis(r)
    r.set("session:broken", "not json", ex=3600)
    r.set("session:list", "[1, 2]", ex=3600)
    r.set("agent_status:lonely", "idle", ex=300)  # a status whose state expired
    sessions = session_store(platform_redis.connect())
    assert sessions.frame()["session_id"].tolist() == ["sess_a"]
    af = agent_state_cache(platform_redis.connect()).frame().set_index("agent_id")
    assert af.index.tolist() == ["agency_coder", "lonely"]
    assert af.loc["lonely", "agent_status"] == "idle" and af.loc["lonely", "state"] is None
    assert pd.isna(af.loc["lonely", "status"]) and pd.isna(af.loc["lonely", "seconds_left"])
    with pytest.raises(Exception, match="does not hold a platform session"):
        sessions.get("broken")


# --------------------------------------------------------------------------------------------- writes
def _json(r, key: str) -> dict:
    return json.loads(r.get(key))


def test_platform_layout_writes_exactly_the_platform_keys(platform_redis):
    r = platform_redis.raw
    conn = platform_redis.connect()
    sessions = session_store(conn)
    before = dt.datetime.now(dt.timezone.utc)
    sid = sessions.create("user_2", {"current_project": "p9"}, data={"draft_code": "print(1)"})
    key = f"session:{sid}"
    assert r.type(key) == "string" and 3595 <= r.ttl(key) <= 3600
    doc = _json(r, key)
    assert set(doc) == SESSION_FIELDS and set(doc["context"]) == CONTEXT_FIELDS
    assert set(doc["temporary_data"]) == TEMPORARY_FIELDS
    assert doc["session_id"] == sid and doc["user_id"] == "user_2"
    assert doc["context"] == {
        "current_project": "p9",
        "active_agents": [],
        "conversation_history": [],
        "preferences": {},
    }
    assert doc["temporary_data"] == {"draft_code": "print(1)", "incomplete_tasks": [], "search_results": []}
    assert doc["created_at"].endswith("Z") and doc["created_at"] == doc["last_activity"]
    created = _ts(doc["created_at"])
    assert before - dt.timedelta(seconds=1) <= created <= dt.datetime.now(dt.timezone.utc)
    with pytest.raises(InvalidInput, match="already exists"):
        sessions.create("someone", session_id=sid)

    assert sessions.register_connection(sid, "ws_1") == 1 and sessions.register_connection(sid, "ws_2") == 1
    assert r.type(f"ws_connections:{sid}") == "set" and r.smembers(f"ws_connections:{sid}") == {"ws_1", "ws_2"}
    assert 3595 <= r.ttl(f"ws_connections:{sid}") <= 3600
    assert sessions.connections(sid) == ["ws_1", "ws_2"]
    assert sessions.unregister_connection(sid, "ws_1") is True and sessions.connections(sid) == ["ws_2"]

    r.expire(key, 100)
    time.sleep(0.01)
    assert sessions.touch(sid) is True
    assert 3595 <= r.ttl(key) <= 3600
    touched = _json(r, key)
    assert _ts(touched["last_activity"]) > created and touched["created_at"] == doc["created_at"]

    upd = sessions.update(sid, context={"preferences": {"theme": "dark"}}, data={"search_results": ["m1"]})
    stored = _json(r, key)
    assert {k: v for k, v in upd.items() if k != "seconds_left"} == stored
    assert stored["context"] == {**doc["context"], "preferences": {"theme": "dark"}}
    assert stored["temporary_data"] == {**doc["temporary_data"], "search_results": ["m1"]}
    assert set(stored) == SESSION_FIELDS

    other = sessions.create("user_3", session_id="sess_fixed")
    assert other == "sess_fixed" and sessions.frame()["session_id"].tolist() == [sid, "sess_fixed"]
    assert sessions.end(sid) is True and r.exists(key) == 0 and sessions.end(sid) is False
    assert sessions.touch(sid) is False
    with pytest.raises(NotFound):
        sessions.update(sid, context={"x": 1})
    assert sessions.delete("sess_fixed") is True

    states = agent_state_cache(conn)
    stored_state = states.set(
        "agent_x", {"status": "busy", "current_task": "t1", "progress": 10, "performance_metrics": {"tokens_used": 5}}
    )
    doc = _json(r, "agent_state:agent_x")
    assert doc == stored_state and set(doc) == STATE_FIELDS and set(doc["performance_metrics"]) == METRIC_FIELDS
    assert doc == {
        "agent_id": "agent_x",
        "status": "busy",
        "current_task": "t1",
        "progress": 10,
        "estimated_completion": None,
        "performance_metrics": {"response_time": None, "success_rate": None, "tokens_used": 5},
    }
    assert r.get("agent_status:agent_x") == "busy"
    assert 295 <= r.ttl("agent_state:agent_x") <= 300 and 295 <= r.ttl("agent_status:agent_x") <= 300
    merged = states.set("agent_x", {"progress": 50, "performance_metrics": {"success_rate": 1.0}})
    assert merged["current_task"] == "t1" and merged["progress"] == 50
    assert merged["performance_metrics"] == {"response_time": None, "success_rate": 1.0, "tokens_used": 5}
    with pytest.raises(InvalidInput, match="not the platform's"):
        states.set("agent_x", {"load": 0.5})
    assert _json(r, "agent_state:agent_x") == merged
    assert states.delete("agent_x") is True
    assert r.exists("agent_state:agent_x", "agent_status:agent_x") == 0

    # nothing under omnilab's prefix: the platform layout writes only the platform's keys
    assert list(r.scan_iter(match=platform_redis.prefix + "*")) == []


def test_platform_caches_memory_cache_and_transaction_log(platform_redis):
    r = platform_redis.raw
    conn = platform_redis.connect()
    caches = Caches(conn)
    frame = pd.DataFrame(
        {"rank": [1, 2], "score": np.array([0.9, 0.5], dtype="float32"), "memory_id": ["mem_1", "mem_2"]}
    )
    params = {"memory_type": "code", "k": 2, "embedder": "hashing:256", "generation": 4}
    assert caches.search.set("retry with backoff", frame, **params) is True
    digest = SearchCache.key("retry with backoff", **params)
    assert list(r.scan_iter(match="memory_search:*")) == [f"memory_search:{digest}"]
    assert 1795 <= r.ttl(f"memory_search:{digest}") <= 1800
    pd.testing.assert_frame_equal(caches.search.get("retry with backoff", **params), frame)
    assert caches.search.get("retry with backoff", **{**params, "generation": 5}) is None  # stale: never served

    caches.responses.set("agency_coder", "write a sort", {"code": "sorted(x)"}, model="gpt-4")
    task_hash = ResponseCache.task_hash("write a sort", model="gpt-4")
    key = f"agent_response:agency_coder:{task_hash}"
    assert list(r.scan_iter(match="agent_response:*")) == [key] and 7195 <= r.ttl(key) <= 7200
    assert caches.responses.get("agency_coder", "write a sort", model="gpt-4") == {"code": "sorted(x)"}
    assert caches.responses.get("agency_coder", "write a sort", model="gpt-3") is None
    assert caches.responses.lookup("agency_coder", task_hash) == json.loads(r.get(key))
    stats = caches.stats().set_index("cache")
    assert stats.loc["search", ["hits", "misses", "sets", "keys"]].tolist() == [1, 1, 1, 1]
    assert stats.loc["response", ["hits", "misses", "sets", "keys"]].tolist() == [1, 1, 1, 1]

    mem = MemoryCache(conn)
    entry = {
        "id": "mem_1",
        "content": "retry with backoff",
        "memory_type": "code",
        "priority": 5,
        "tags": ["a"],
        "metadata": {"n": 1},
        "created_at": dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc),
    }
    assert mem.set("mem_1", entry) is True
    assert _json(r, "memory:mem_1") == {**entry, "created_at": "2024-05-01T12:00:00+00:00"}
    assert 3595 <= r.ttl("memory:mem_1") <= 3600 and mem.get("mem_1")["content"] == "retry with backoff"
    assert mem.set_many([{**entry, "id": "mem_2"}, {**entry, "id": "mem_3"}]) == 2
    assert mem.delete("mem_1", "mem_2", "mem_9") == 2
    assert sorted(r.scan_iter(match="memory:*")) == ["memory:mem_3"]
    assert caches.memories.key("x") == "memory:x"

    ops = [{"op": "insert", "table": "memory_entries", "ids": ["mem_3"]}]
    with transaction(conn, ops) as tx_id:
        key = f"transaction:{tx_id}"
        assert _json(r, key) == {"status": "started", "operations": ops}
        assert 3595 <= r.ttl(key) <= 3600
    assert _json(r, key) == {"status": "completed", "operations": ops} == read_transaction(conn, tx_id)
    with pytest.raises(RuntimeError, match="boom"):
        with transaction(conn, ops) as failed_id:
            raise RuntimeError("boom")
    assert _json(r, f"transaction:{failed_id}") == {"status": "rolled_back", "operations": ops}
    with pytest.raises(InvalidInput):
        with transaction(conn, "not a list"):
            pass

    assert caches.clear() == 2  # the two cache entries; memory:* and transaction:* are not caches
    assert list(r.scan_iter(match="memory_search:*")) == [] and r.exists("memory:mem_3") == 1


# -------------------------------------------------------------------------------------------- pub/sub
def test_platform_pubsub_round_trips(platform_redis):
    r = platform_redis.raw
    conn = platform_redis.connect()
    sessions = session_store(conn)
    # platform -> omnilab: the platform publishes bare JSON on its channels
    with sessions.subscribe("sess_a", agents=True) as sub:
        assert r.publish("session:sess_a", json.dumps({"type": "chat", "text": "hi"})) == 1
        assert r.publish("agent_updates:agency_coder", json.dumps({"status": "busy"})) == 1
        assert r.publish("session:other", json.dumps({"text": "not mine"})) == 0
        got = list(sub.listen(timeout=1))
    assert got == [
        {"event": "chat", "data": {"type": "chat", "text": "hi"}, "channel": "session:sess_a", "session_id": "sess_a"},
        {
            "event": "agent_update",
            "data": {"status": "busy"},
            "channel": "agent_updates:agency_coder",
            "agent_id": "agency_coder",
        },
    ]
    with sessions.subscribe(agents=["agency_tester"]) as sub:
        r.publish("agent_updates:agency_coder", json.dumps({"status": "idle"}))
        r.publish("agent_updates:agency_tester", json.dumps({"status": "error"}))
        got = list(sub.listen(timeout=0.5))
    assert [(m["agent_id"], m["data"]) for m in got] == [("agency_tester", {"status": "error"})]

    # omnilab -> platform: exactly the message on exactly the platform's channel
    ps = r.pubsub(ignore_subscribe_messages=True)
    ps.subscribe("session:sess_a", "agent_updates:agency_coder")
    try:
        assert sessions.broadcast("sess_a", {"text": "hello"}) == 1
        assert pubsub.broadcast_agent_update(conn, "agency_coder", {"status": "idle"}) == 1
        received = []
        deadline = time.monotonic() + 5
        while len(received) < 2 and time.monotonic() < deadline:
            msg = ps.get_message(timeout=0.5)
            if msg and msg["type"] == "message":
                received.append((msg["channel"], json.loads(msg["data"])))
    finally:
        ps.close()
    assert received == [("session:sess_a", {"text": "hello"}), ("agent_updates:agency_coder", {"status": "idle"})]

    # a callback thread, as a notebook would watch a live platform
    seen: list[dict] = []
    done = threading.Event()
    with sessions.subscribe(agents=True) as sub:
        thread = sub.run_in_thread(lambda m: (seen.append(m), len(seen) == 3 and done.set()), poll=0.05)
        for i in range(3):
            r.publish(f"agent_updates:a{i}", json.dumps({"progress": i}))
        assert done.wait(5)
        thread.stop()
    assert [(m["agent_id"], m["data"]["progress"]) for m in seen] == [("a0", 0), ("a1", 1), ("a2", 2)]


# ------------------------------------------------------------------------------------------ read-only
def _ttls(r, keys: list[str]) -> dict[str, int]:
    return {k: r.ttl(k) for k in keys}


@pytest.mark.parametrize("layout", ["platform", "omnilab"])
def test_read_only_refuses_every_write_and_changes_nothing(platform_redis, layout):
    r = platform_redis.raw
    write_platform_redis(r)
    if layout == "omnilab":  # omnilab's own keys, written before the lab went read-only
        rw = platform_redis.connect(layout="omnilab")
        session_store(rw).create("u", session_id="own")
        agent_state_cache(rw).set("coder", {"status": "busy"})
        session_store(rw).register_connection("own", "c1")
    for key, ttl in (
        ("session:sess_a", 1234),
        ("agent_state:agency_coder", 222),
        ("agent_status:agency_coder", 221),
        ("ws_connections:sess_a", 1111),
    ):
        r.expire(key, ttl)
    keys = sorted(r.scan_iter(count=1000))
    ttl_before = _ttls(r, keys)
    before = platform_redis.snapshot()

    ro = platform_redis.connect(layout=layout, read_only=True)
    sessions, states = session_store(ro), agent_state_cache(ro)
    caches, queue = Caches(ro), TaskQueue(ro, _no_engine())
    sid = "sess_a" if layout == "platform" else "own"
    aid = "agency_coder" if layout == "platform" else "coder"
    # every read works
    assert sessions.get(sid)["user_id"] in ("user_1", "u") and len(sessions.frame()) == 1
    assert sessions.connections(sid) in (["conn_1", "conn_2"], ["c1"])
    assert states.get(aid)["status"] == "busy" and len(states.frame()) == 1
    assert queue.stats() is not None and queue.dead_letters().empty
    assert caches.search.get("q", generation=1) is None and caches.search.get("q", generation=1) is None
    assert caches.search.counters() == {"hits": 0, "misses": 2, "sets": 0}  # counted in-process, not in Redis
    assert caches.memories.get("mem_1") is None
    if layout == "platform":
        assert len(queue.platform_tasks()) == 3

    writes = {
        "create": lambda: sessions.create("u2"),
        "touch": lambda: sessions.touch(sid),
        "get(touch=True)": lambda: sessions.get(sid, touch=True),
        "update": lambda: sessions.update(sid, context={"x": 1}),
        "end": lambda: sessions.end(sid),
        "delete": lambda: sessions.delete(sid),
        "register_connection": lambda: sessions.register_connection(sid, "c9"),
        "unregister_connection": lambda: sessions.unregister_connection(sid, "conn_1"),
        "broadcast": lambda: sessions.broadcast(sid, {"x": 1}),
        "agent update": lambda: pubsub.broadcast_agent_update(ro, aid, {"status": "idle"}),
        "state set": lambda: states.set(aid, {"status": "idle"}),
        "state delete": lambda: states.delete(aid),
        "enqueue": lambda: queue.enqueue({"content": "x", "task_type": "testing"}),
        "dequeue": lambda: queue.dequeue("w"),
        "recover": lambda: queue.recover(),
        "requeue_expired": lambda: queue.requeue_expired(),
        "retry_dead": lambda: queue.retry_dead(),
        "purge": lambda: queue.purge(),
        "search cache set": lambda: caches.search.set("q", pd.DataFrame({"a": [1]}), generation=1),
        "response cache set": lambda: caches.responses.set(aid, "p", "r"),
        "memory cache set": lambda: caches.memories.set("mem_1", {"id": "mem_1"}),
        "memory cache delete": lambda: caches.memories.delete("mem_1"),
        "cache clear": lambda: caches.clear(),
        "transaction": lambda: transaction(ro, []).__enter__(),
        "raw client SET": lambda: ro.client.set("x", 1),
        "raw client EXPIRE": lambda: ro.client.expire(f"session:{sid}", 3600),
        "raw pipeline": lambda: ro.client.pipeline().set("x", 1).execute(),
        "raw script": lambda: ro.client.eval("return redis.call('SET', 'x', 1)", 0),
    }
    if layout == "platform":
        writes["push_platform"] = lambda: queue.push_platform({"content": "x", "task_type": "testing"})
    for name, call in writes.items():
        with pytest.raises(ReadOnlyViolation) as err:
            call()
        assert "\n" not in str(err.value) and "read-only" in str(err.value), name

    assert platform_redis.snapshot() == before
    assert sorted(r.scan_iter(count=1000)) == keys
    after = _ttls(r, keys)
    for k in keys:  # nothing refreshed: every TTL only ticked down
        assert ttl_before[k] - 5 <= after[k] <= ttl_before[k], k


# ---------------------------------------------------------------------------------------- task progress
def _seed_tasks(engine: sa.Engine) -> None:
    from omnilab.sql.schema import TABLES

    with engine.begin() as c:
        c.execute(TABLES["agents"].insert(), [{"id": "coder", "name": "coder", "agent_type": "coder"}])
        c.execute(
            TABLES["tasks"].insert(),
            [
                {
                    "id": "t1",
                    "content": "write the parser",
                    "task_type": "code_generation",
                    "agent_id": "coder",
                    "status": "assigned",
                    "progress": 0,
                },
                {
                    "id": "t_free",
                    "content": "nobody's",
                    "task_type": "planning",
                    "agent_id": None,
                    "status": "pending",
                    "progress": 0,
                },
            ],
        )


def _task(engine: sa.Engine, task_id: str) -> dict:
    from omnilab.sql.schema import TABLES

    t = TABLES["tasks"]
    with engine.connect() as c:
        return dict(c.execute(sa.select(t).where(t.c.id == task_id)).one()._mapping)


def _next_message(sub, timeout: float = 5.0) -> dict:
    msg = sub.get(timeout=timeout)
    assert msg is not None, "no agent update was published"
    return msg


@pytest.mark.parametrize("layout", ["platform", "omnilab"])
def test_update_task_progress_sql_then_cache_then_publish(platform_redis, sql_engine, layout):
    _seed_tasks(sql_engine)
    r = platform_redis.raw
    conn = platform_redis.connect(layout=layout)
    states = agent_state_cache(conn)
    t0 = dt.datetime.now(dt.timezone.utc)
    with session_store(conn).subscribe(agents=True) as sub:
        out = update_task_progress(sql_engine, states, "t1", 30, "in_progress")
        msg = _next_message(sub)
        row = _task(sql_engine, "t1")
        assert (row["progress"], row["status"], row["completed_at"]) == (30, "in_progress", None)
        assert t0 - dt.timedelta(seconds=1) <= row["started_at"] <= dt.datetime.now(dt.timezone.utc)
        assert out == {
            "task_id": "t1",
            "agent_id": "coder",
            "progress": 30,
            "status": "in_progress",
            "started_at": row["started_at"],
            "completed_at": None,
            "cached": True,
            "published": 1,
            "warnings": [],
        }
        update = {"type": "task_progress", "task_id": "t1", "progress": 30, "status": "in_progress"}
        assert msg["event"] == "task_progress" and msg["agent_id"] == "coder" and msg["data"] == update
        if layout == "platform":
            assert msg["channel"] == "agent_updates:coder"
            state = json.loads(r.get("agent_state:coder"))
            assert set(state) == STATE_FIELDS and r.get("agent_status:coder") == "busy"
        else:
            assert msg["channel"] == "ch:agents"
        state = states.get("coder")
        assert (state["current_task"], state["progress"], state["status"]) == ("t1", 30, "busy")

        started = row["started_at"]
        out = update_task_progress(sql_engine, states, "t1", 59.6)  # rounded; status and started_at unchanged
        assert _next_message(sub)["data"]["progress"] == 60 and out["status"] == "in_progress"
        row = _task(sql_engine, "t1")
        assert (row["progress"], row["status"], row["started_at"]) == (60, "in_progress", started)

        out = update_task_progress(sql_engine, states, "t1", 100, "completed", {"lines": 120})
        assert _next_message(sub)["data"]["status"] == "completed"
        row = _task(sql_engine, "t1")
        assert (row["progress"], row["status"], row["result"], row["started_at"]) == (
            100,
            "completed",
            {"lines": 120},
            started,
        )
        assert started <= row["completed_at"] <= dt.datetime.now(dt.timezone.utc)
        assert out["completed_at"] == row["completed_at"]
        assert states.get("coder")["status"] == "idle" and states.get("coder")["progress"] == 100

    # bad input and unknown tasks write nothing anywhere
    snapshot = _task(sql_engine, "t1")
    for bad in (101, -1, True, float("nan"), "50", None):
        with pytest.raises(InvalidInput):
            update_task_progress(sql_engine, states, "t1", bad)
    with pytest.raises(InvalidInput):
        update_task_progress(sql_engine, states, "t1", 10, "sleeping")
    with pytest.raises(InvalidInput):
        update_task_progress(sql_engine, states, "t1", 10, result={"x": object()})
    with pytest.raises(NotFound):
        update_task_progress(sql_engine, states, "no_such_task", 10)
    assert _task(sql_engine, "t1") == snapshot

    # a task without an agent: SQL only, reported
    out = update_task_progress(sql_engine, states, "t_free", 5, "cancelled")
    assert out["cached"] is False and out["published"] is None and out["warnings"]
    assert _task(sql_engine, "t_free")["completed_at"] is not None

    # a custom publisher replaces the broadcast
    calls: list[tuple] = []
    out = update_task_progress(sql_engine, states, "t1", 100, publisher=lambda a, m: calls.append((a, m)) or 7)
    assert calls == [("coder", {"type": "task_progress", "task_id": "t1", "progress": 100, "status": "completed"})]
    assert out["published"] == 7
    assert _task(sql_engine, "t1")["completed_at"] == snapshot["completed_at"]  # already completed: kept

    # read-only Redis: refused before SQL
    ro_states = agent_state_cache(platform_redis.connect(layout=layout, read_only=True))
    with pytest.raises(ReadOnlyViolation):
        update_task_progress(sql_engine, ro_states, "t1", 10, "in_progress")
    assert _task(sql_engine, "t1")["progress"] == 100


def test_update_task_progress_redis_down_after_commit(sql_engine):
    from omnilab.sessions.connection import RedisConnection

    _seed_tasks(sql_engine)
    down = RedisConnection("redis://127.0.0.1:1/0", "x:", layout="platform", socket_timeout=0.5)
    try:
        out = update_task_progress(sql_engine, agent_state_cache(down), "t1", 40, "in_progress")
    finally:
        down.close()
    assert out["cached"] is False and out["published"] is None and len(out["warnings"]) == 2
    assert all("127.0.0.1:1" in w for w in out["warnings"])
    row = _task(sql_engine, "t1")
    assert (row["progress"], row["status"]) == (40, "in_progress") and row["started_at"] is not None


# ------------------------------------------------------------------------------------ queue, platform layout
def test_queue_in_platform_layout_keeps_its_own_keys(platform_redis, sql_engine):
    r = platform_redis.raw
    write_platform_redis(r)
    conn = platform_redis.connect()
    q = TaskQueue(conn, sql_engine)
    tid = q.enqueue({"content": "omnilab's own", "task_type": "testing", "constraints": {"max_tokens": 10}})
    assert r.llen("task_queue") == 3 and r.scard("processing_tasks") == 2  # the platform's queue untouched
    assert r.exists(platform_redis.prefix + "task:" + tid) == 1
    st = q.stats().set_index("queue")
    assert st.index.tolist() == ["default", "task_queue (platform)"]
    assert st.loc["default", ["pending", "in_flight"]].tolist() == [1, 0]
    assert st.loc["task_queue (platform)", ["pending", "in_flight"]].tolist() == [3, 2]
    lease = q.dequeue("w")
    assert lease.task["content"] == "omnilab's own" and lease.task["constraints"] == {"max_tokens": 10}
    assert lease.ack({"ok": True}) is True
    assert _task(sql_engine, tid)["status"] == "completed"
    with pytest.raises(InvalidInput, match="content"):
        q.enqueue({"task_type": "testing"})

    # explicitly handing a task to the platform's workers
    pid = q.push_platform({"content": "for the platform", "task_type": "testing", "priority": 7})
    assert r.llen("task_queue") == 4
    pushed = json.loads(r.lindex("task_queue", 0))
    from omnilab.sql.schema import OMNILAB_COLUMNS, TABLES

    platform_cols = {c.name for c in TABLES["tasks"].columns} - set(OMNILAB_COLUMNS["tasks"])
    assert set(pushed) == platform_cols
    assert (pushed["id"], pushed["content"], pushed["status"], pushed["priority"]) == (
        pid,
        "for the platform",
        "pending",
        7,
    )
    assert _task(sql_engine, pid)["status"] == "pending"
    assert q.platform_tasks()["id"].tolist()[-1] == pid  # the newest is taken last
    with pytest.raises(InvalidInput):
        TaskQueue(platform_redis.connect(layout="omnilab"), sql_engine).push_platform({"content": "x"})
