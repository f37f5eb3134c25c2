"""Connection: lazy start, embedded sharing across processes, outages and recovery, URL hygiene."""

from __future__ import annotations

import json
import os
import signal
import time

import psutil
import pytest

import omnilab
from omnilab import ConfigError, InvalidInput, StoreUnavailable
from omnilab.sessions.connection import EmbeddedServer, RedisConnection, describe_redis_url, dumps, loads


def test_describe_url_hides_password():
    assert describe_redis_url("redis://:s3cret@host:6380/2") == "redis://:***@host:6380/2"
    assert describe_redis_url("rediss://user:pw@host/0") == "rediss://user:***@host/0"
    assert describe_redis_url("unix:///tmp/r.sock") == "unix:///tmp/r.sock"


def test_json_only():
    assert loads(dumps({"a": [1, 2.5, None], "b": "é"})) == {"a": [1, 2.5, None], "b": "é"}
    with pytest.raises(InvalidInput):
        dumps({"x": object()})
    with pytest.raises(InvalidInput):
        dumps({"x": float("nan")})


def test_bad_url_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        RedisConnection("http://localhost")
    with pytest.raises(ConfigError):
        RedisConnection("embedded")  # needs a lab directory


def test_open_touches_no_redis(tmp_path):
    # an unreachable URL is fine for SQL-only use: nothing connects until sessions are used
    with omnilab.open(tmp_path / "lab", redis_url="redis://:pw@127.0.0.1:1/0") as lab:
        lab.insert("agents", [{"name": "coder", "agent_type": "coder"}])
        assert len(lab.agents()) == 1
        with pytest.raises(StoreUnavailable) as err:
            lab.sessions.create("u")
        assert "127.0.0.1:1" in str(err.value) and "pw" not in str(err.value)
        assert lab.set_agent_status("coder", "busy") is False  # SQL written, Redis part skipped
        assert lab.agents().loc[0, "status"] == "busy"
    with omnilab.open(tmp_path / "lab2") as lab:  # embedded default
        lab.insert("agents", [{"name": "coder", "agent_type": "coder"}])
    assert not (tmp_path / "lab2" / "redis").exists()


def test_embedded_lives_in_the_lab_and_stops_on_close(tmp_path):
    with omnilab.open(tmp_path / "lab") as lab:
        sid = lab.sessions.create("u", ttl=600)
        server = lab.sessions.conn._server
        pid = lab.sessions.conn.server_pid
        assert server.pidfile.parent == tmp_path / "lab" / "redis" and server.socket.exists()
        assert psutil.Process(pid).is_running()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert (tmp_path / "lab" / "redis" / "dump.rdb").exists()  # saved on shutdown
    with omnilab.open(tmp_path / "lab") as lab:  # data survives a clean restart
        assert lab.sessions.get(sid)["user_id"] == "u"


def test_long_lab_path_uses_a_short_socket(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with omnilab.open(deep / "lab") as lab:
        lab.sessions.create("u")
        sock = lab.sessions.conn._server.socket
        assert len(str(sock)) < 100 and sock.exists()


def test_two_processes_share_one_embedded_redis(tmp_path, child):
    code = (
        "import sys, omnilab\n"
        "lab = omnilab.open(sys.argv[1])\n"
        "sid = lab.sessions.create('from-child')\n"
        "print(lab.sessions.conn.server_pid, sid, flush=True)\n"
        "sys.stdin.readline()\n"
        "lab.close()\n"
        "print('closed', flush=True)\n"
    )
    path = tmp_path / "lab"
    proc = child(code, str(path))
    line = proc.stdout.readline().split()
    assert len(line) == 2, proc.stderr.read()
    child_pid, sid = int(line[0]), line[1]
    with omnilab.open(path) as lab:
        assert lab.sessions.conn.server_pid == child_pid  # connected, did not start a second server
        assert lab.sessions.get(sid)["user_id"] == "from-child"
        users = list((path / "redis" / "users").iterdir())
        assert len(users) == 2
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "closed"
        proc.wait(10)
        # the child left; the server keeps serving us
        assert psutil.Process(child_pid).is_running()
        assert lab.sessions.get(sid) is not None
    assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE


def test_killed_user_process_does_not_keep_the_server_alive(tmp_path, child):
    code = (
        "import sys, time, omnilab\nlab = omnilab.open(sys.argv[1])\n"
        "print(lab.sessions.conn.server_pid, flush=True)\ntime.sleep(60)\n"
    )
    path = tmp_path / "lab"
    proc = child(code, str(path))
    server_pid = int(proc.stdout.readline())
    with omnilab.open(path) as lab:
        assert lab.sessions.conn.server_pid == server_pid
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    # the SIGKILLed process's registration is pruned, so our close was the last one
    assert not psutil.pid_exists(server_pid) or psutil.Process(server_pid).status() == psutil.STATUS_ZOMBIE


@pytest.fixture(params=["embedded", "server"])
def killable(request, tmp_path, private_redis, database_url):
    """A lab (each SQL backend) whose Redis we can kill: the embedded one, or our private redis-server."""
    url = "embedded" if request.param == "embedded" else private_redis.url
    with omnilab.open(tmp_path / "lab", redis_url=url, database_url=database_url) as lab:
        yield request.param, lab, private_redis


def test_outage_then_recovery_without_reopening(killable):
    kind, lab, server = killable
    sid = lab.sessions.create("u")
    tid = lab.queue.enqueue({"content": "t", "task_type": "testing"})
    if kind == "server":
        server.kill()
        for call in (
            lambda: lab.sessions.create("v"),
            lambda: lab.sessions.get(sid),
            lambda: lab.queue.dequeue("w"),
            lambda: lab.queue.stats(),
        ):
            with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{server.port}"):
                call()
        assert lab.tasks()["id"].tolist() == [tid]  # SQL keeps working
        server.start()
    else:
        os.kill(lab.sessions.conn.server_pid, signal.SIGKILL)  # no save: its data is gone
        time.sleep(0.1)
    # the same lab object works again (embedded: restarted on demand; server: reconnected)
    assert lab.sessions.get(sid) is None
    assert lab.sessions.get(lab.sessions.create("again"))["user_id"] == "again"
    assert lab.queue.recover() == 1  # SQL is the truth: the lost queue entry comes back
    assert lab.queue.dequeue("w").ack() is True
    assert lab.tasks().loc[0, "status"] == "completed"


def test_server_registry_files(tmp_path):
    srv = EmbeddedServer.acquire(tmp_path / "redis")
    try:
        (user,) = list((tmp_path / "redis" / "users").iterdir())
        info = json.loads(user.read_text())
        assert info["pid"] == os.getpid()
        assert srv.pid is not None
    finally:
        srv.release()
    assert srv.pid is None and list((tmp_path / "redis" / "users").iterdir()) == []


def test_unix_url_reaches_the_same_server(tmp_path):
    with omnilab.open(tmp_path / "a", redis_prefix="shared:") as a:
        sid = a.sessions.create("u")
        sock = a.sessions.conn._server.socket
        # the same database and prefix (a team lab) share the keys of the embedded server through its socket
        with omnilab.open(
            tmp_path / "b", redis_url=f"unix://{sock}", redis_prefix="shared:", database_url=a.database_url
        ) as b:
            assert b.sessions.get(sid)["user_id"] == "u"
            assert b.sessions.conn.server_pid == a.sessions.conn.server_pid
            assert b.lab_id == a.lab_id
        # another database may not use that prefix on that server
        with omnilab.open(tmp_path / "c", redis_url=f"unix://{sock}", redis_prefix="shared:") as c:
            with pytest.raises(ConfigError, match="belongs to a lab on another database"):
                c.sessions.get(sid)
