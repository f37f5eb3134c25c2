"""The reliable queue on {embedded, server Redis} x {SQLite, PostgreSQL}: SQL is the truth."""

from __future__ import annotations

import os
import signal
import time

import pandas as pd
import pytest

from omnilab import InvalidInput, StoreUnavailable
from omnilab.errors import LeaseLost
from omnilab.sessions.queue import TaskQueue


def _row(lab, task_id: str) -> pd.Series:
    return lab.tasks().set_index("id").loc[task_id]


def test_priority_order_ack_writes_sql(qlab):
    q = qlab.queue
    low = q.enqueue({"content": "low", "task_type": "testing", "priority": 2, "context": {"n": 1}})
    high = q.enqueue({"content": "high", "task_type": "testing", "priority": 9})
    mid1 = q.enqueue({"content": "mid1", "task_type": "testing"})
    mid2 = q.enqueue({"content": "mid2", "task_type": "testing"})
    assert _row(qlab, low)["status"] == "pending"
    order = []
    while (lease := q.dequeue("w1", lease=30)) is not None:
        order.append(lease.task_id)
        row = _row(qlab, lease.task_id)
        assert row["status"] == "in_progress" and pd.notna(row["started_at"])
        assert lease.ack({"by": "w1", "n": len(order)}) is True
    assert order == [high, mid1, mid2, low]  # priority first, FIFO within a priority
    tasks = qlab.tasks().set_index("id")
    assert (tasks["status"] == "completed").all() and (tasks["progress"] == 100).all()
    assert tasks["completed_at"].notna().all()
    assert tasks.loc[low, "result"] == {"by": "w1", "n": 4} and tasks.loc[low, "context"] == {"n": 1}
    stats = q.stats().set_index("queue").loc["default"]
    assert stats[["pending", "waiting", "in_flight", "dead"]].tolist() == [0, 0, 0, 0]


def test_fail_retries_then_dead_letters(qlab):
    q = TaskQueue(qlab.queue.conn, qlab.engine, max_attempts=3)
    tid = q.enqueue({"content": "flaky", "task_type": "testing"}, queue="jobs")
    outcomes = []
    for attempt in (1, 2, 3):
        lease = q.dequeue("w", queue="jobs")
        assert lease.task_id == tid and lease.attempt == attempt
        outcomes.append(lease.fail(f"boom {attempt}"))
        if attempt < 3:
            row = _row(qlab, tid)
            assert row["status"] == "pending" and row["retry_count"] == attempt
    assert outcomes == ["retried", "retried", "dead"]
    assert q.dequeue("w", queue="jobs") is None
    row = _row(qlab, tid)
    assert row["status"] == "failed" and row["error_message"] == "boom 3" and row["retry_count"] == 3
    dead = q.dead_letters("jobs")
    assert dead["id"].tolist() == [tid]
    assert q.stats().set_index("queue").loc["jobs", "dead"] == 1
    # an operator can give it another chance
    assert q.retry_dead("jobs") == 1
    lease = q.dequeue("w", queue="jobs")
    assert lease.attempt == 1 and lease.ack() is True
    assert _row(qlab, tid)["status"] == "completed"


def test_retry_dead_takes_task_ids_from_a_generator(qlab):
    q = TaskQueue(qlab.queue.conn, qlab.engine, max_attempts=1)
    tids = [q.enqueue({"content": f"t{i}", "task_type": "testing"}, queue="gen") for i in range(3)]
    for _ in tids:
        assert q.dequeue("w", queue="gen").fail("boom") == "dead"
    # the ids as a one-shot iterator: each dead task must be checked against all of them
    assert q.retry_dead("gen", task_ids=(t for t in tids[1:])) == 2
    assert sorted(q.dead_letters("gen")["id"]) == [tids[0]]


def test_expired_lease_is_requeued_and_completes_once(qlab):
    q = qlab.queue
    tid = q.enqueue({"content": "slow", "task_type": "testing"})
    first = q.dequeue("slow-worker", lease=0.3)
    assert q.dequeue("other", timeout=0) is None  # leased
    time.sleep(0.4)
    assert q.stats().loc[0, "expired_leases"] == 1
    second = q.dequeue("fast-worker", timeout=2)  # automatic requeue on dequeue
    assert second.task_id == tid and second.attempt == 2
    with pytest.raises(LeaseLost):
        first.fail("too late")
    with pytest.raises(LeaseLost):
        first.extend(10)
    # the slow worker finishes anyway: its completion counts, the second delivery does not
    assert first.ack({"by": "slow"}) is True
    assert second.ack({"by": "fast"}) is False
    row = _row(qlab, tid)
    assert row["status"] == "completed" and row["result"] == {"by": "slow"} and row["retry_count"] == 1
    assert q.dequeue("anyone") is None


def test_extend_keeps_the_lease(qlab):
    q = qlab.queue
    q.enqueue({"content": "long", "task_type": "testing"})
    lease = q.dequeue("w", lease=0.3)
    lease.extend(5)
    time.sleep(0.4)
    assert q.requeue_expired() == 0 and q.dequeue("thief") is None
    assert lease.ack() is True


def test_lease_expiry_counts_towards_dead_letter(qlab):
    q = TaskQueue(qlab.queue.conn, qlab.engine, max_attempts=2)
    tid = q.enqueue({"content": "poison", "task_type": "testing"})
    for _ in range(2):
        assert q.dequeue("w", lease=0.1).task_id == tid
        time.sleep(0.15)
    assert q.requeue_expired() == 1
    row = _row(qlab, tid)
    assert row["status"] == "failed" and "lease expired" in row["error_message"]
    assert q.stats().loc[0, "dead"] == 1


def test_dependencies_gate_hand_out(qlab):
    q = qlab.queue
    a = q.enqueue({"content": "build", "task_type": "testing", "priority": 1})
    b = q.enqueue({"content": "test", "task_type": "testing", "priority": 10, "depends_on": [a]})
    c = q.enqueue({"content": "deploy", "task_type": "testing", "priority": 10}, depends_on=[a, b])
    deps = qlab.table("task_dependencies")
    assert sorted(zip(deps["task_id"], deps["depends_on_task_id"])) == sorted([(b, a), (c, a), (c, b)])
    st = q.stats().loc[0]
    assert (st["pending"], st["waiting"]) == (1, 2)
    la = q.dequeue("w")
    assert la.task_id == a and q.dequeue("w") is None  # b and c wait although they rank higher
    la.ack()
    lb = q.dequeue("w")
    assert lb.task_id == b and q.dequeue("w") is None
    lb.ack()
    lc = q.dequeue("w")
    assert lc.task_id == c
    lc.ack()
    # a dependency that is already completed does not block
    d = q.enqueue({"content": "again", "task_type": "testing"}, depends_on=[a])
    assert q.dequeue("w").task_id == d


def test_a_dependency_in_another_queue_releases_the_waiting_task_into_its_own_queue(qlab):
    q = qlab.queue
    build = q.enqueue({"content": "build", "task_type": "testing"}, queue="build")
    deploy = q.enqueue({"content": "deploy", "task_type": "testing"}, queue="deploy", depends_on=[build])
    other = q.enqueue({"content": "unrelated", "task_type": "testing"}, queue="deploy")
    stats = q.stats().set_index("queue")
    assert (stats.loc["deploy", "pending"], stats.loc["deploy", "waiting"]) == (1, 1)
    assert q.release_ready([deploy, other]) == 0  # one still blocked in SQL, the other not waiting
    lease = q.dequeue("w", queue="build")
    lease.extend(30)  # the queue's public lease calls, as Lease uses them
    q.extend_lease(lease, 30)
    assert lease.ack() is True  # releases the dependent: into "deploy", never into "build"
    stats = q.stats().set_index("queue")
    assert (stats.loc["deploy", "pending"], stats.loc["deploy", "waiting"]) == (2, 0)
    assert stats.loc["build", "pending"] == 0 and q.dequeue("w", queue="build") is None
    got = sorted(x.task_id for x in q.dequeue_many("w", 5, queue="deploy"))
    assert got == sorted([deploy, other])
    assert q.release_ready([deploy]) == 0  # already handed out: nothing moves twice


def test_fail_lease_is_the_public_form_of_lease_fail(qlab):
    q = qlab.queue
    tid = q.enqueue({"content": "flaky", "task_type": "testing"})
    assert q.fail_lease(q.dequeue("w"), "boom") == "retried"
    assert q.fail_lease(q.dequeue("w"), "boom again", retry=False) == "dead"
    row = _row(qlab, tid)
    assert (row["status"], row["error_message"]) == ("failed", "boom again")


def test_bad_tasks_write_nothing(qlab):
    q = qlab.queue
    before = len(qlab.tasks())
    bad = [
        {"priority": 5, "task_type": "testing"},  # no content
        {"content": "x", "task_type": "testing", "priority": 11},
        {"content": "x", "task_type": "testing", "status": "completed"},
        {"content": "x", "task_type": "testing", "agent_id": "no-such-agent"},
        {"content": "x", "task_type": "testing", "depends_on": ["no-such-task"]},
        {"content": "x", "task_type": "testing", "depends_on": "not-a-list"},
        {"content": "x", "task_type": "testing", "id": "self", "depends_on": ["self"]},
        {"content": "x", "task_type": "testing", "bogus": 1},
    ]
    for task in bad:
        with pytest.raises(InvalidInput):
            q.enqueue(task)
    with pytest.raises(InvalidInput):
        q.enqueue_many(
            [{"content": "ok", "task_type": "testing"}, {"content": "bad", "task_type": "testing", "priority": 0}]
        )
    with pytest.raises(InvalidInput):
        q.enqueue({"content": "x", "task_type": "testing"}, queue="bad name")
    assert q.enqueue({"content": "first", "task_type": "testing", "id": "dup"}) == "dup"
    with pytest.raises(InvalidInput):
        q.enqueue({"content": "second", "task_type": "testing", "id": "dup"})
    before += 1
    with pytest.raises(InvalidInput):
        q.dequeue("w", lease=0)
    assert len(qlab.tasks()) == before
    assert q.stats()["pending"].sum() == 1  # only the good "dup" task
    assert _row(qlab, "dup")["content"] == "first"


def test_enqueue_many_and_batches(qlab):
    q = qlab.queue
    ids = q.enqueue_many(
        [{"content": f"t{i}", "task_type": "testing", "priority": 1 + i % 10} for i in range(50)], queue="batch"
    )
    assert len(set(ids)) == 50 and q.stats().set_index("queue").loc["batch", "pending"] == 50
    got = []
    while leases := q.dequeue_many("w", 16, queue="batch"):
        got += leases
        assert all(q.ack_many(leases, [{"i": x.task_id} for x in leases]))
    assert sorted(x.task_id for x in got) == sorted(ids)
    prios = [x.task["priority"] for x in got]
    assert prios == sorted(prios, reverse=True)
    tasks = qlab.tasks().set_index("id").loc[ids]
    assert (tasks["status"] == "completed").all()


def test_recover_queues_sql_tasks_unknown_to_redis(qlab):
    qlab.insert(
        "tasks",
        [
            {"id": "t1", "content": "from insert", "task_type": "testing"},
            {"id": "t2", "content": "done", "task_type": "testing", "status": "completed"},
        ],
    )
    q = qlab.queue
    assert q.recover() == 1 and q.recover() == 0
    lease = q.dequeue("w")
    assert lease.task_id == "t1" and lease.task["content"] == "from insert"
    lease.ack()


def test_worker_killed_after_dequeue_task_completes_once(qlab, child):
    q = qlab.queue
    tid = q.enqueue({"content": "crashy", "task_type": "testing"})
    code = (
        "import sys, time, omnilab\n"
        "lab = omnilab.open(sys.argv[1], redis_url=sys.argv[2], redis_prefix=sys.argv[3],\n"
        "                   database_url=sys.argv[4] or None)\n"
        "lease = lab.queue.dequeue('doomed', timeout=10, lease=1.0)\n"
        "print(lease.task_id, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = child(
        code, str(qlab.path), qlab.settings.redis_url, qlab.settings.redis_prefix, qlab.settings.database_url or ""
    )
    line = proc.stdout.readline().strip()
    assert line == tid, proc.stderr.read() if not line else line
    assert _row(qlab, tid)["status"] == "in_progress"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert q.dequeue("survivor", timeout=0) is None  # still leased to the dead worker
    lease = q.dequeue("survivor", timeout=5, lease=30)  # handed out again once the lease ran out
    assert lease is not None and lease.task_id == tid and lease.attempt == 2
    assert lease.ack({"ok": True}) is True
    assert q.dequeue("survivor", timeout=1.2) is None
    tasks = qlab.tasks()
    done = tasks[tasks["id"] == tid]
    assert len(done) == 1 and done.iloc[0]["status"] == "completed" and done.iloc[0]["retry_count"] == 1
    assert q.stats().loc[0, ["pending", "in_flight", "dead"]].tolist() == [0, 0, 0]


def test_redis_down_before_enqueue_writes_nothing(tmp_path, private_redis, database_url):
    import omnilab

    with omnilab.open(tmp_path / "lab", redis_url=private_redis.url, database_url=database_url) as lab:
        q = lab.queue
        held = q.enqueue({"content": "held", "task_type": "testing"})
        lease = q.dequeue("w")
        q.enqueue({"content": "before", "task_type": "testing"})
        private_redis.kill()
        with pytest.raises(StoreUnavailable, match="recorded in SQL"):
            lease.ack({"done": 1})
        assert _row(lab, held)["status"] == "completed"  # the truth was written first
        with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{private_redis.port}"):
            q.enqueue({"content": "during", "task_type": "testing"})
        with pytest.raises(StoreUnavailable):
            q.dequeue("w")
        assert sorted(lab.tasks()["content"]) == ["before", "held"]  # SQL keeps working; nothing half-written
        private_redis.start()  # an empty server: the queued task is gone from Redis, SQL still has it
        assert q.recover() == 1
        lease = q.dequeue("w")
        assert lease.task["content"] == "before" and lease.ack() is True
