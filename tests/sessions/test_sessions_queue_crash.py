"""The one-task hot path of the queue loses nothing when a process is killed (issue 14 item 5).

On {embedded, server Redis} x {SQLite, PostgreSQL}. The hot path (one prepared statement a step, SQLite's push inside
the INSERT's transaction, the ENQUEUE reply read after COMMIT, the FINISH reply read at the queue's next call) is
checked three ways:

- a crash loop: a child runs enqueue -> dequeue -> ack one task at a time, logging each call that returned, and is
  SIGKILLed at a random moment, several times; every enqueue that returned is in SQL, every ack that returned True
  is ``completed`` in SQL, and after ``recover()`` and the lease expiry a survivor completes every task exactly
  once, with nothing left in Redis (a task pushed by a child killed before its COMMIT is dropped, not delivered);
- a worker that pops a task between the enqueuer's push and its COMMIT (SQLite) waits for the COMMIT and gets the
  task; if the enqueuer rolls back instead, the worker drops it and nothing is left anywhere;
- an ack's FINISH whose reply is read later still leaves Redis clean for the next call, and dependents are released
  before ``ack`` returns.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from typing import Any

import pytest

from omnilab.sessions.queue import TaskQueue

CHILD = """
import sys, omnilab
lab = omnilab.open(sys.argv[1], redis_url=sys.argv[2], redis_prefix=sys.argv[3], database_url=sys.argv[4] or None,
                   embedder="hashing")
q = lab.queue
q.stats()  # connected before the parent starts the clock
print("ready", flush=True)
i = 0
while True:
    tid = q.enqueue({"content": f"{sys.argv[5]}-{i}", "task_type": "testing"})
    print("E", tid, flush=True)
    lease = q.dequeue("child", lease=1.0)
    if lease is not None:
        print("D", lease.task_id, flush=True)
        print("A", lease.task_id, lease.ack({"i": i}), flush=True)
    i += 1
"""


def _log(proc: Any) -> list[list[str]]:
    """The complete lines a killed child wrote (a line cut by the kill was never acknowledged)."""
    text = proc.stdout.read()
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]
    return [line.split() for line in lines if line]


def test_killed_one_task_workers_lose_nothing(qlab, child):
    q = qlab.queue
    rng = random.Random(14)
    enqueued: set[str] = set()
    acked_true: list[str] = []
    cut: set[str] = set()  # per round, the task a child was acking when it was killed (if any)
    for rnd in range(4):
        proc = child(
            CHILD,
            str(qlab.path),
            qlab.settings.redis_url,
            qlab.settings.redis_prefix,
            qlab.settings.database_url or "",
            f"r{rnd}",
        )
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        first = [proc.stdout.readline() for _ in range(3)]  # its first enqueue, dequeue and ack, whatever the load
        assert [x.split()[0] for x in first] == ["E", "D", "A"], (first, proc.stderr.read())
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        lines = [x.split() for x in first] + _log(proc)
        enqueued |= {line[1] for line in lines if line[0] == "E"}
        acked_true += [line[1] for line in lines if line[0] == "A" and line[2] == "True"]
        if lines[-1][0] == "D":
            cut.add(lines[-1][1])
        rows = qlab.tasks().set_index("id")
        # durable when the call returned: the row of every returned enqueue, the completion of every returned ack
        assert enqueued <= set(rows.index), f"round {rnd}: enqueued tasks missing from SQL"
        assert (rows.loc[acked_true, "status"] == "completed").all(), f"round {rnd}: an acked task is not completed"

    q.recover()  # a child killed between COMMIT and push (the PostgreSQL order) left a pending row Redis lacks
    while (lease := q.dequeue("survivor", timeout=2.5, lease=30)) is not None:  # waits out the dead children's leases
        if lease.ack({"by": "survivor"}):
            acked_true.append(lease.task_id)
    rows = qlab.tasks().set_index("id")
    assert len(rows) >= len(enqueued) > 0
    assert (rows["status"] == "completed").all(), rows[rows["status"] != "completed"][["status", "content"]]
    assert len(acked_true) == len(set(acked_true))  # no task completed twice
    # every task completed by an ack that returned True, but for a child's last ack, cut by the kill after its COMMIT
    assert set(rows.index) - set(acked_true) <= cut
    stats = q.stats().set_index("queue").loc["default"]
    assert stats[["pending", "waiting", "in_flight", "dead"]].tolist() == [0, 0, 0, 0]
    assert q.conn.client.keys(q.conn.key("task", "*")) == []  # no task hash left behind (the lab's own prefix)


class _PausingQueue(TaskQueue):
    """Pauses the enqueue of one task right after its push was sent, inside the open SQL transaction."""

    def __init__(self, *args: Any, rollback: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent = threading.Event()
        self.go = threading.Event()
        self.rollback = rollback

    def _send(self, name: str, *args: Any) -> Any:
        out = super()._send(name, *args)
        if name == "enqueue":
            self.sent.set()
            assert self.go.wait(10)
            if self.rollback:
                if out is not None:
                    self._receive(out, "enqueue")  # the push is done in Redis; the transaction is not
                raise RuntimeError("enqueuer fails before COMMIT")
        return out


@pytest.mark.parametrize("rollback", [False, True], ids=["commit", "rollback"])
def test_worker_popping_before_commit_waits_for_it_or_drops_the_task(qlab, rollback):
    if qlab.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL commits the row before the push: no task can be popped before its COMMIT")
    base = qlab.queue
    enqueuer = _PausingQueue(base.conn, qlab.engine, lab_id=base.lab_id, rollback=rollback)
    outcome: dict[str, Any] = {}

    def _enqueue() -> None:
        try:
            outcome["id"] = enqueuer.enqueue({"content": "racy", "task_type": "testing"})
        except RuntimeError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=_enqueue)
    thread.start()
    assert enqueuer.sent.wait(10)
    worker = TaskQueue(base.conn, qlab.engine, lab_id=base.lab_id)
    got: dict[str, Any] = {}
    popper = threading.Thread(target=lambda: got.setdefault("lease", worker.dequeue("w", timeout=5, lease=30)))
    popper.start()
    time.sleep(0.3)
    assert popper.is_alive()  # its claim waits for SQLite's write lock, which the enqueuer holds
    enqueuer.go.set()
    thread.join(10)
    popper.join(10)
    rows = qlab.tasks()
    if rollback:
        assert "error" in outcome and rows.empty  # nothing in SQL ...
        assert got["lease"] is None  # ... and the worker dropped the task it popped
        assert worker.stats().loc[0, ["pending", "in_flight"]].tolist() == [0, 0]
        assert worker.conn.client.keys(worker.conn.key("task", "*")) == []
    else:
        lease = got["lease"]
        assert lease is not None and lease.task_id == outcome["id"]
        assert rows.set_index("id").loc[outcome["id"], "status"] == "in_progress"
        assert lease.ack() is True


def test_ack_reply_read_later_leaves_redis_clean_and_releases_dependents(qlab):
    q = qlab.queue
    a = q.enqueue({"content": "a", "task_type": "testing"})
    b = q.enqueue({"content": "b", "task_type": "testing"}, depends_on=[a])
    lease = q.dequeue("w")
    assert lease.task_id == a and lease.ack() is True
    nxt = q.dequeue("w")  # released by a's ack before it returned (SQL lists b as a's dependent)
    assert nxt is not None and nxt.task_id == b
    assert nxt.ack({"done": True}) is True  # no dependents: Redis's reply is read at the next call
    other = TaskQueue(q.conn, qlab.engine, lab_id=q.lab_id)  # another queue object: Redis has run the FINISH
    deadline = time.monotonic() + 2
    while other.stats().loc[0, "in_flight"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert other.stats().loc[0, ["pending", "in_flight", "waiting"]].tolist() == [0, 0, 0]
    assert q.stats().loc[0, ["pending", "in_flight", "waiting"]].tolist() == [0, 0, 0]
    assert q.conn.client.keys(q.conn.key("task", "*")) == []
    assert (qlab.tasks().set_index("id").loc[[a, b], "status"] == "completed").all()


def test_sqlite_pragmas_in_effect(qlab):
    from omnilab.sql import engine as sql_engine

    if qlab.engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    with qlab.engine.connect() as c:
        got = {
            p: c.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("journal_mode", "synchronous", "wal_autocheckpoint")
        }
    assert got == {"journal_mode": "wal", "synchronous": 1, "wal_autocheckpoint": sql_engine.WAL_AUTOCHECKPOINT_PAGES}
