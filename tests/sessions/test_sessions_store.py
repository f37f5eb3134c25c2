"""Sessions (sliding TTL), agent-state cache and set_agent_status, on embedded and server Redis."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from omnilab import InvalidInput, NotFound
from omnilab.sessions.connection import RedisConnection


def test_session_lifecycle(rlab):
    s = rlab.sessions
    sid = s.create("alice", {"project": "p1"}, ttl=60)
    got = s.get(sid)
    assert got["user_id"] == "alice" and got["context"] == {"project": "p1"} and got["data"] == {}
    assert 59 < got["seconds_left"] <= 60 and got["ttl"] == 60
    assert got["created_at"].tzinfo is not None

    upd = s.update(sid, context={"step": 2}, data={"draft": [1, 2]})
    assert upd["context"] == {"project": "p1", "step": 2} and upd["data"] == {"draft": [1, 2]}
    upd = s.update(sid, context={"only": True}, replace=True)
    assert upd["context"] == {"only": True} and upd["data"] == {"draft": [1, 2]}

    assert s.end(sid) is True
    assert s.get(sid) is None and s.end(sid) is False and s.touch(sid) is False
    with pytest.raises(NotFound):
        s.update(sid, context={"x": 1})


def test_session_ttl_expires_and_touch_slides(rlab):
    s = rlab.sessions
    short = s.create("bob", ttl=0.4)
    slid = s.create("carol", ttl=0.4)
    time.sleep(0.25)
    assert s.touch(slid) is True  # back to a full 0.4 s
    time.sleep(0.25)  # short: 0.5 s old -> gone; slid: 0.25 s since touch -> alive
    assert s.get(short) is None
    alive = s.get(slid)
    assert alive is not None and alive["last_seen"] > alive["created_at"]
    assert list(s.frame()["session_id"]) == [slid]
    time.sleep(0.3)
    assert s.get(slid) is None and s.frame().empty


def test_session_frame(rlab):
    s = rlab.sessions
    ids = [s.create(f"user{i}", {"i": i}, ttl=100 + i) for i in range(3)]
    ended = s.create("gone")
    s.end(ended)
    f = s.frame()
    assert list(f.columns) == [
        "session_id",
        "user_id",
        "created_at",
        "last_seen",
        "ttl",
        "seconds_left",
        "context",
        "data",
    ]
    assert list(f["session_id"]) == ids
    assert list(f["user_id"]) == ["user0", "user1", "user2"]
    assert str(f["created_at"].dtype) == "datetime64[us, UTC]"
    assert (f["seconds_left"] <= f["ttl"]).all() and (f["seconds_left"] > 98).all()
    assert [c["i"] for c in f["context"]] == [0, 1, 2]


def test_session_bad_input_writes_nothing(rlab):
    s = rlab.sessions
    for call in (
        lambda: s.create(""),
        lambda: s.create("u", ttl=0),
        lambda: s.create("u", ttl=-1),
        lambda: s.create("u", context=[1]),
        lambda: s.create("u", context={"x": object()}),
        lambda: s.create("u", ttl=float("nan")),
    ):
        with pytest.raises(InvalidInput):
            call()
    assert s.frame().empty
    sid = s.create("u", session_id="fixed")
    with pytest.raises(InvalidInput, match="already exists"):
        s.create("v", session_id="fixed")
    assert s.get(sid)["user_id"] == "u"


def test_concurrent_updates_keep_every_key(rlab):
    s = rlab.sessions
    sid = s.create("u")

    def worker(n: int) -> None:
        for j in range(20):
            s.update(sid, data={f"w{n}_{j}": j})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(s.get(sid)["data"]) == 80


def test_keys_live_under_the_prefix(rlab, redis_prefix):
    rlab.sessions.create("u")
    rlab.queue  # noqa: B018 - touching it must not write anything
    raw = RedisConnection(rlab.settings.redis_url, "", lab_dir=rlab.path)
    try:
        keys = raw.run(lambda r: list(r.scan_iter(match=redis_prefix + "*")))
        assert keys and all(k.startswith(redis_prefix) for k in keys)
    finally:
        raw.close()


def test_agent_state_cache_ttl_and_frame(rlab):
    st = rlab.agent_state
    st.set("coder", {"status": "busy", "task": "t1"}, ttl=0.3)
    st.set("tester", {"status": "idle"})
    merged = st.set("tester", {"load": 0.5})
    assert merged["status"] == "idle" and merged["load"] == 0.5
    assert st.get("coder")["task"] == "t1"
    f = rlab.agent_states()
    assert list(f["agent_id"]) == ["coder", "tester"] and list(f["status"]) == ["busy", "idle"]
    assert f.loc[1, "seconds_left"] > 299
    time.sleep(0.4)
    assert st.get("coder") is None
    assert list(rlab.agent_states()["agent_id"]) == ["tester"]
    assert st.delete("tester") is True and rlab.agent_states().empty


def test_set_agent_status_sql_first_then_cache_then_publish(rlab):
    rlab.insert("agents", [{"name": "coder", "agent_type": "coder"}])
    with rlab.sessions.subscribe(agents=True) as sub:
        assert rlab.set_agent_status("coder", "busy") is True
        msg = sub.get(timeout=5)
    assert msg["event"] == "agent_update" and msg["agent_id"] == "coder" and msg["data"] == {"status": "busy"}
    assert msg["channel"] == "ch:agents"
    row = rlab.agents().set_index("id").loc["coder"]
    assert row["status"] == "busy" and pd.notna(row["last_active"])
    assert rlab.agent_state.get("coder")["status"] == "busy"

    with pytest.raises(NotFound):
        rlab.set_agent_status("nobody", "idle")
    with pytest.raises(InvalidInput):
        rlab.set_agent_status("coder", "sleeping")
    assert rlab.agents().set_index("id").loc["coder", "status"] == "busy"
    assert rlab.agent_state.get("nobody") is None


def test_broadcast_and_subscriber_forms(rlab):
    s = rlab.sessions
    sid = s.create("alice")
    other = s.create("bob")
    with s.subscribe(sid) as sub:
        assert s.broadcast(sid, {"text": "hello"}) == 1
        assert s.broadcast(other, {"text": "not for alice"}) == 0
        s.broadcast(sid, [1, 2, 3], event="chunk")
        got = list(sub.listen(timeout=0.5))
    assert [(m["event"], m["data"]) for m in got] == [("message", {"text": "hello"}), ("chunk", [1, 2, 3])]
    assert all(m["session_id"] == sid and m["channel"] == f"ch:session:{sid}" for m in got)

    received: list[dict] = []
    done = threading.Event()

    def on_message(msg: dict) -> None:
        received.append(msg)
        if len(received) == 3:
            done.set()

    with s.subscribe(sid) as sub:
        thread = sub.run_in_thread(on_message, poll=0.05)
        for i in range(3):
            s.broadcast(sid, {"i": i})
        assert done.wait(5)
        thread.stop()
        assert not thread.is_alive() and thread.errors == []
    assert [m["data"]["i"] for m in received] == [0, 1, 2]
    with pytest.raises(InvalidInput):
        s.broadcast("", {})


def test_connections_in_omnilab_layout(rlab, redis_prefix):
    s = rlab.sessions
    sid = s.create("alice")
    assert s.connections(sid) == []
    assert s.register_connection(sid, "ws_b") == 1 and s.register_connection(sid, "ws_a") == 1
    assert s.register_connection(sid, "ws_a") == 0  # already there
    assert s.connections(sid) == ["ws_a", "ws_b"]
    raw = RedisConnection(rlab.settings.redis_url, "", lab_dir=rlab.path)
    try:
        key = f"{redis_prefix}ws_connections:{sid}"
        assert raw.run(lambda r: r.smembers(key)) == {"ws_a", "ws_b"}
        assert 3595 <= raw.run(lambda r: r.ttl(key)) <= 3600
    finally:
        raw.close()
    assert s.unregister_connection(sid, "ws_b") is True and s.unregister_connection(sid, "ws_b") is False
    assert s.connections(sid) == ["ws_a"]
    with pytest.raises(InvalidInput):
        s.register_connection(sid, "")
