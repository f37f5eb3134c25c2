"""A reliable task queue: SQL ``tasks`` rows are the truth, Redis holds the order and the leases.

The platform's ``LPUSH``/``BRPOP`` queue loses a task when a worker dies between popping and
finishing it. Here a dequeue atomically (one Lua script) moves the task id from the ready set to a
processing set scored by its lease deadline; expired leases go back to ready (or, after
``max_attempts``, to the dead-letter set). So delivery is at-least-once, and ``ack`` is exactly-once
in SQL: the completing UPDATE only matches a task that is not finished yet.

Per queue ``q`` (all under the prefix): ``q:<q>:ready`` (zset: priority then FIFO), ``q:<q>:processing``
(zset: lease deadline ms), ``q:<q>:waiting`` (set: blocked by task_dependencies), ``q:<q>:dead`` (zset:
time), ``q:<q>:ages`` (zset: enqueue time of unfinished tasks), ``q:<q>:notify`` (wake-up list), and one
hash ``task:<id>`` per queued task (queue, score, attempts, lease token, payload JSON).

Tasks are rows of the platform's ``tasks`` table (``content`` required; ``task_type`` is NOT NULL, filled by
omnilab's row validation when left out). Each row records its queue (``queue_name``) and the lab that queued it
(``lab_id``, :mod:`omnilab.sessions.identity`): :meth:`TaskQueue.recover` restores only this lab's tasks, each
to its own queue, and a dequeue claims the row in SQL with a conditional UPDATE on ``lab_id``, so a lease is
exclusive across labs even when two labs' Redis namespaces both hold a task id. Rows no lab owns yet
(``lab_id`` NULL: ``lab.insert``, the platform, rows from before revision 0006) are claimed by the first lab
that recovers or dequeues them.

With ``redis_layout="platform"`` this queue still keeps its own prefixed keys: it never pushes into the
platform's ``task_queue`` (whose workers would also take the task) unless asked with :meth:`TaskQueue.push_platform`.
:meth:`TaskQueue.stats` then adds a row for the platform's queue (``task_queue`` length as ``pending``,
``processing_tasks`` size as ``in_flight``) and :meth:`TaskQueue.platform_tasks` lists what waits there.
A read-only connection refuses every queue write with :class:`ReadOnlyViolation`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pandas as pd
import redis
import sqlalchemy as sa

from omnilab._checks import is_int, is_number
from omnilab.errors import InvalidInput, LeaseLost, OmnilabError, StoreUnavailable
from omnilab.sessions.connection import UNREACHABLE, RedisConnection, dumps, loads, reply_opt, reply_strs
from omnilab.sessions.scripts import DEQUEUE, ENQUEUE, EXTEND, FAIL, FINISH, RELEASE
from omnilab.sql.schema import OMNILAB_COLUMNS, TABLES
from omnilab.sql.validate import check_foreign_keys, normalize_rows, validate_rows

__all__ = ["TaskQueue", "Lease"]

log = logging.getLogger(__name__)

OPEN = ("pending", "assigned", "in_progress")
FINISHED = ("completed", "failed", "cancelled")
_PAYLOAD = (
    "content",
    "description",
    "task_type",
    "priority",
    "complexity",
    "agent_id",
    "project_id",
    "workflow_id",
    "session_id",
    "context",
    "constraints",
    "estimated_duration",
)
PLATFORM_QUEUE = "task_queue"
PLATFORM_PROCESSING = "processing_tasks"
PLATFORM_ROW = f"{PLATFORM_QUEUE} (platform)"
DEFAULT_PRIORITY = 5
#: the tasks columns that are foreign keys (an enqueue naming one takes the path that checks them first)
_FK_COLUMNS = tuple(sorted({fk.parent.name for fk in TABLES["tasks"].foreign_keys}))
#: the constant parameters of the prepared claim and completion statements
_CLAIM_CONSTANTS = {"new_status": "in_progress", **{f"open{i}": s for i, s in enumerate(OPEN)}}
_ACK_CONSTANTS = {
    "new_status": "completed",
    "full": 100,
    "no_error": None,
    **{f"done{i}": s for i, s in enumerate(FINISHED)},
}


@dataclasses.dataclass
class _Sent:
    """A script call sent on a connection taken from the pool, its reply not read yet."""

    pool: Any
    connection: Any
    name: str
    source: str
    keys: list[str]
    args: list[Any]


class _Prepared:
    """A Core statement compiled once for a dialect and run on the driver's own cursor.

    The hot path of the queue (one task: insert, claim, completion) skips SQLAlchemy's per-call work (statement
    construction, cache key, parameter processing, result wrapping), about 0.1-0.2 ms a statement; the SQL text
    and each parameter's conversion are SQLAlchemy's own (the compiled string, the types' bind processors), so
    the values reach the database exactly as through ``Connection.execute``. Every parameter must be a named
    ``bindparam`` without a value.
    """

    __slots__ = ("sql", "_positional", "_order")

    def __init__(self, stmt: Any, dialect: sa.Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql: str = compiled.string
        self._positional = bool(compiled.positional)
        names = list(compiled.positiontup or ()) if self._positional else list(compiled.binds)
        procs: dict[str, Any] = {}
        for name, bind in compiled.binds.items():
            if not bind.required:
                raise ValueError(f"prepared statement parameter {name!r} must be a bindparam without a value")
            procs[name] = bind.type.dialect_impl(dialect).bind_processor(dialect)
        self._order = [(n, procs[n]) for n in names]

    def params(self, values: dict[str, Any]) -> Any:
        """The driver's parameters (a tuple for qmark/format drivers, else a dict) for these values."""
        if self._positional:
            return tuple([values[n] if p is None else p(values[n]) for n, p in self._order])
        return {n: values[n] if p is None else p(values[n]) for n, p in self._order}


def _pack(args: Sequence[str | bytes | int]) -> bytes:
    """One Redis command in the wire protocol (RESP), for the hot path's script calls (text, bytes, integers)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, int) and not isinstance(arg, bool):
            data = b"%d" % arg
        else:
            raise TypeError(f"cannot send {type(arg).__name__} to Redis")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _driver_error(dbapi: Any, exc: Exception) -> OmnilabError:
    """The omnilab error for a driver exception of the hot path (as :meth:`TaskQueue._sql` maps SQLAlchemy's)."""
    if isinstance(exc, (dbapi.OperationalError, dbapi.InterfaceError)):
        return StoreUnavailable(f"database unavailable for the task queue: {exc}")
    if isinstance(exc, (dbapi.IntegrityError, dbapi.DataError)):
        return InvalidInput(f"the database rejected the task rows, nothing written: {exc}")
    return OmnilabError(f"the database refused a task queue statement: {exc}")


@dataclasses.dataclass
class Lease:
    """A task handed to one worker until ``deadline``; finish it with :meth:`ack` or :meth:`fail`."""

    task_id: str
    queue: str
    worker_id: str
    attempt: int
    token: str
    deadline: dt.datetime
    task: dict[str, Any]
    _owner: TaskQueue = dataclasses.field(repr=False, compare=False)

    def ack(self, result: Any = None) -> bool:
        """Mark the task completed (progress 100, completed_at, result JSON).

        Returns False if it had already been completed (a duplicate delivery), so each task is
        completed exactly once in SQL.
        """
        return self._owner.ack_many([self], [result])[0]

    def fail(self, error: str, *, retry: bool = True) -> str:
        """Record a failure: ``"retried"`` while attempts remain, else ``"dead"`` (dead-lettered)."""
        return self._owner.fail_lease(self, error, retry=retry)

    def extend(self, seconds: float) -> None:
        """Push the lease deadline to ``seconds`` from now (a heartbeat for long tasks)."""
        self._owner.extend_lease(self, seconds)


def _lease_ms(lease: Any) -> int:
    if not is_number(lease) or not lease > 0:
        raise InvalidInput(f"lease must be a positive number of seconds, got {lease!r}")
    return max(1, int(lease * 1000))


def _utc_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)


class TaskQueue:
    """Reliable, prioritized, dependency-aware queues over the ``tasks`` table.

    ``max_attempts``: deliveries before a task is dead-lettered (failures and expired leases count).
    """

    def __init__(
        self,
        conn: RedisConnection,
        engine: sa.Engine,
        *,
        max_attempts: int = 3,
        default_lease: float = 60.0,
        lab_id: str | None = None,
    ) -> None:
        if not is_int(max_attempts) or max_attempts < 1:
            raise InvalidInput(f"max_attempts must be a positive integer, got {max_attempts!r}")
        _lease_ms(default_lease)
        self.conn = conn
        self.engine = engine
        self.max_attempts = max_attempts
        self.default_lease = default_lease
        self._tasks = TABLES["tasks"]
        self._deps = TABLES["task_dependencies"]
        self._scripts: dict[str, Any] = {}
        self._key_cache: dict[str, dict[str, str]] = {}
        self._prepared: dict[Any, _Prepared] = {}
        self._sqlite = engine.dialect.name == "sqlite"
        #: FINISH calls sent whose replies are read later (see :meth:`_finish_later`), and their lock
        self._later: list[tuple[_Sent, dict[str, str], list[str]]] = []
        self._later_lock = threading.Lock()
        #: the lab whose tasks this queue handles (``tasks.lab_id``); None: the tasks no lab owns
        self.lab_id = lab_id if lab_id is not None else conn.lab_id

    # ------------------------------------------------------------------------------ plumbing
    def _mine(self) -> Any:
        """SQL condition: the task belongs to this queue's lab."""
        t = self._tasks
        return t.c.lab_id == self.lab_id if self.lab_id is not None else t.c.lab_id.is_(None)

    def _claimable(self) -> Any:
        """SQL condition: this lab owns the task or nobody does yet (a claim then makes it this lab's)."""
        t = self._tasks
        return (
            sa.or_(t.c.lab_id == self.lab_id, t.c.lab_id.is_(None)) if self.lab_id is not None else t.c.lab_id.is_(None)
        )

    def _keys(self, queue: str) -> dict[str, str]:
        keys = self._key_cache.get(queue) if isinstance(queue, str) else None
        if keys is not None:
            return keys
        if not isinstance(queue, str) or not queue or len(queue) > 100 or any(c in queue for c in " :*?[]"):
            raise InvalidInput(
                f"queue must be a non-empty name of at most 100 characters without spaces, ':' or "
                f"glob characters, got {queue!r}"
            )
        k = self.conn.key
        keys = {n: k("q", queue, n) for n in ("ready", "processing", "waiting", "dead", "ages", "notify")}
        if len(self._key_cache) < 1000:  # names checked once; a bounded cache of the queues in use
            self._key_cache[queue] = keys
        return keys

    def _script(self, name: str, source: str) -> Any:
        if name not in self._scripts:
            self._scripts[name] = self.conn.client.register_script(source)
        return self._scripts[name]

    def _run(self, name: str, source: str, keys: Sequence[str], args: Sequence[Any], what: str) -> Any:
        self._drain()
        return self.conn.run(lambda r: self._script(name, source)(keys=list(keys), args=list(args), client=r), what)

    def _call(self, fn: Callable[[redis.Redis], Any], what: str) -> Any:
        """``conn.run(fn)`` once the replies of calls sent earlier are read (so ``fn`` sees their effect)."""
        self._drain()
        return self.conn.run(fn, what)

    # ------------------------------------------------------------------------- replies read later
    # The hot path sends a script call and reads its reply later: the ENQUEUE of one task while SQLite commits, the
    # FINISH of an ack until the queue's next Redis call. Both scripts are idempotent, so a call whose reply is
    # lost is simply made again, synchronously. A call that cannot be sent is made synchronously at once.
    def _send(self, name: str, source: str, keys: Sequence[str], args: Sequence[Any]) -> _Sent | None:
        """Send one script call without waiting for its reply; None if it could not be sent (make it with
        :meth:`_run` then, which reports the error and restarts a dead embedded server)."""
        if self.conn.read_only:
            return None
        try:
            pool = self.conn.client.connection_pool
            sha = self._script(name, source).sha
            connection = pool.get_connection()  # a connection the server closed fails here (reconnect refused)
        except (*UNREACHABLE, StoreUnavailable):
            return None
        try:
            connection.send_packed_command([_pack(["EVALSHA", sha, len(keys), *keys, *args])])
        except UNREACHABLE:
            connection.disconnect()
            pool.release(connection)
            return None
        except BaseException:
            connection.disconnect()
            pool.release(connection)
            raise
        return _Sent(pool, connection, name, source, list(keys), list(args))

    def _receive(self, sent: _Sent, what: str) -> Any:
        """The reply of a call sent by :meth:`_send` (the call is made again if the reply is lost)."""
        pool, connection = sent.pool, sent.connection
        try:
            reply = connection.read_response()
        except redis.exceptions.NoScriptError:  # the server's script cache was flushed: load it and call again
            pool.release(connection)
            return self._run(sent.name, sent.source, sent.keys, sent.args, what)
        except UNREACHABLE:
            connection.disconnect()
            pool.release(connection)
            return self._run(sent.name, sent.source, sent.keys, sent.args, what)
        except redis.ResponseError as exc:
            pool.release(connection)
            raise OmnilabError(f"Redis {self.conn.display} refused {what}: {exc}") from exc
        except BaseException:
            connection.disconnect()
            pool.release(connection)
            raise
        pool.release(connection)
        return reply

    def _script_call(self, name: str, source: str, keys: Sequence[str], args: Sequence[Any], what: str) -> Any:
        """A script call made on a pooled connection directly (what :meth:`_run` does, without redis-py's per-command
        work); falls back to :meth:`_run` when the call cannot be sent or its reply is lost."""
        self._drain()
        sent = self._send(name, source, keys, args)
        if sent is None:
            return self._run(name, source, keys, args, what)
        return self._receive(sent, what)

    def _finish_later(self, keys: dict[str, str], ids: list[str]) -> bool:
        """Send the FINISH of completed tasks (in SQL) and read its reply at the queue's next Redis call; False if
        it could not be sent. Redis runs it as soon as it arrives; the reply only names dependents to release, and
        the caller made sure SQL knows none."""
        sent = self._send("finish", FINISH, *self._finish_call(keys, ids))
        if sent is None:
            return False
        with self._later_lock:
            self._later.append((sent, keys, ids))
        return True

    def _drain(self) -> None:
        """Read the replies of the FINISH calls sent by :meth:`_finish_later` (releasing any dependents)."""
        if not self._later:
            return
        with self._later_lock:
            items, self._later = self._later, []
        dependents: list[str] = []
        for sent, _keys, ids in items:
            try:
                dependents += self._receive(sent, "ack")
            except OmnilabError as exc:  # completed in SQL: Redis drops the tasks when their leases expire
                log.warning("queue: finishing %d completed task(s) in Redis failed: %s", len(ids), exc)
        if dependents:
            try:
                self.release_ready(sorted(set(dependents)))
            except OmnilabError as exc:  # requeue_expired() releases them later
                log.warning("queue: releasing %d dependent task(s) failed: %s", len(set(dependents)), exc)

    def flush(self) -> None:
        """Wait for the Redis side of the acks made so far (the hot path of :meth:`Lease.ack` reads Redis's reply
        at the queue's next call; every queue method does this first, so calling it is rarely needed)."""
        self._drain()

    @contextlib.contextmanager
    def _sql(self, begin: bool = False) -> Iterator[sa.Connection]:
        """A connection (or transaction) whose driver errors become omnilab errors."""
        try:
            with self.engine.begin() if begin else self.engine.connect() as c:
                yield c
        except sa.exc.OperationalError as exc:
            raise StoreUnavailable(f"database unavailable for the task queue: {exc.orig}") from exc
        except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
            raise InvalidInput(f"the database rejected the task rows, nothing written: {exc.orig}") from exc

    @contextlib.contextmanager
    def _driver(self) -> Iterator[Any]:
        """A pooled DBAPI connection for the one-task hot path (:class:`_Prepared` statements); the block commits.

        Leaving the block by an exception rolls back; driver errors become omnilab errors, and a connection the
        database dropped is invalidated, not handed out again."""
        dbapi = self.engine.dialect.loaded_dbapi
        try:
            raw = self.engine.raw_connection()
        except sa.exc.DBAPIError as exc:
            raise StoreUnavailable(f"database unavailable for the task queue: {exc.orig}") from exc
        try:
            yield raw
        except dbapi.Error as exc:
            with contextlib.suppress(dbapi.Error):
                raw.rollback()
            if self.engine.dialect.is_disconnect(exc, raw.dbapi_connection, None):
                raw.invalidate()
            raise _driver_error(dbapi, exc) from exc
        except BaseException:
            with contextlib.suppress(dbapi.Error):
                raw.rollback()
            raise
        finally:
            raw.close()

    def _stmt(self, key: Any, build: Callable[[], Any]) -> _Prepared:
        """The hot-path statement ``key``, compiled for this engine's dialect on first use."""
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepared[key] = _Prepared(build(), self.engine.dialect)
        return prepared

    def _claim_stmt(self) -> _Prepared:
        """The claim of one popped task (see :meth:`_pop`), as one prepared UPDATE ... RETURNING."""

        def build() -> Any:
            t, b = self._tasks, sa.bindparam
            values: dict[str, Any] = {
                "status": b("new_status"),
                "started_at": b("now"),
                "updated_at": b("now"),
                "retry_count": b("retries"),
            }
            owner: sa.ColumnElement[bool]
            if self.lab_id is None:
                owner = t.c.lab_id.is_(None)
            else:
                owner = sa.or_(t.c.lab_id == b("lab"), t.c.lab_id.is_(None))
                values.update(lab_id=b("lab"), queue_name=sa.func.coalesce(t.c.queue_name, b("queue")))
            return (
                sa.update(t)
                .where(t.c.id == b("tid"), t.c.status.in_([b(f"open{i}") for i in range(len(OPEN))]), owner)
                .values(**values)
                .returning(t.c.id)
            )

        return self._stmt(("claim", self.lab_id is None), build)

    def _ack_stmt(self, with_result: bool) -> _Prepared:
        """The completion of one lease (see :meth:`ack_many`), as one prepared UPDATE ... RETURNING."""

        def build() -> Any:
            t, b = self._tasks, sa.bindparam
            values: dict[str, Any] = {
                "status": b("new_status"),
                "progress": b("full"),
                "completed_at": b("now"),
                "updated_at": b("now"),
                "error_message": b("no_error"),
            }
            if with_result:
                values["result"] = b("result")
            mine = t.c.lab_id.is_(None) if self.lab_id is None else t.c.lab_id == b("lab")
            td = self._deps
            return (
                sa.update(t)
                .where(t.c.id == b("tid"), t.c.status.notin_([b(f"done{i}") for i in range(len(FINISHED))]), mine)
                .values(**values)
                .returning(t.c.id, sa.exists().where(td.c.depends_on_task_id == t.c.id))
            )

        return self._stmt(("ack", self.lab_id is None, with_result), build)

    def _insert_stmt(self, columns: tuple[str, ...]) -> _Prepared:
        """INSERT of one ``tasks`` row with exactly these columns (validate_rows gives every row the same)."""
        t = self._tasks
        return self._stmt(("insert", columns), lambda: t.insert().values({c: sa.bindparam(c) for c in columns}))

    @property
    def _task_prefix(self) -> str:
        return self.conn.key("task", "")

    # ------------------------------------------------------------------------------- enqueue
    def enqueue(self, task: dict[str, Any], *, queue: str = "default", depends_on: Iterable[str] = ()) -> str:
        """Write the task row (status pending) and queue it by priority; returns the task id.

        ``task`` holds ``tasks`` columns (``content`` required, ``task_type`` expected; ``id`` generated if
        absent) and may list ``depends_on`` task ids: the task is not handed out before those are completed.
        """
        if not isinstance(task, dict):
            raise InvalidInput(f"task must be a dict, got {type(task).__name__}")
        task = dict(task)
        deps = list(task.pop("depends_on", ())) + list(depends_on)
        return self.enqueue_many([{**task, "depends_on": deps}], queue=queue)[0]

    def enqueue_many(self, tasks: Any, *, queue: str = "default") -> list[str]:
        """Enqueue many tasks with one SQL transaction and one Redis script call; returns their ids."""
        self.conn.check_writable("enqueueing tasks")
        keys = self._keys(queue)
        rows = normalize_rows(tasks)
        deps: list[list[str]] = []
        for i, row in enumerate(rows):
            d = row.pop("depends_on", None) or []
            if isinstance(d, str) or not all(isinstance(x, str) for x in d):
                raise InvalidInput(f"task {i}: depends_on must be a list of task ids")
            for col in ("status", "progress", "started_at", "completed_at", "result"):
                if row.get(col) not in (None, "pending", 0):
                    raise InvalidInput(f"task {i}: {col} is set by the queue, leave it out")
            for col in ("queue_name", "lab_id"):
                if row.get(col) is not None:
                    raise InvalidInput(f"task {i}: {col} is set by the queue, leave it out")
            row["status"], row["progress"] = "pending", 0
            row["queue_name"], row["lab_id"] = queue, self.lab_id
            deps.append(list(dict.fromkeys(d)))
        clean = validate_rows("tasks", rows)
        if not clean:
            return []
        ids = [r["id"] for r in clean]
        for tid, d in zip(ids, deps):
            if tid in d:
                raise InvalidInput(f"task {tid!r} cannot depend on itself")
        if len(clean) == 1 and not deps[0] and all(clean[0].get(c) is None for c in _FK_COLUMNS):
            self._enqueue_one(queue, keys, clean[0])  # the one-task hot path
            return ids
        # fail before writing anything if Redis is down (the row would wait for recover())
        self._call(lambda r: r.ping(), "enqueue")
        open_pairs = self._insert(clean, ids, deps)
        self._push(queue, keys, clean, open_pairs)
        if open_pairs:  # a dependency may have completed between our SQL read and the push
            self.release_ready(sorted({tid for tid, _ in open_pairs}))
        return ids

    def _enqueue_one(self, queue: str, keys: dict[str, str], row: dict[str, Any]) -> None:
        """One task without dependencies or foreign keys: one prepared INSERT, one commit, one script call.

        SQLite: the push runs inside the SQL transaction, before COMMIT, so a Redis that is down rolls the row
        back (nothing written) without a PING round trip. A worker that pops the task before the COMMIT waits in
        its claim (an UPDATE needs SQLite's one write lock, which this transaction holds) and then sees the row;
        if this process dies or the COMMIT fails instead, the claim matches no row and the worker drops the task
        from Redis — it was never enqueued (``enqueue`` did not return). PostgreSQL would let the claim run
        without seeing the uncommitted row, so there the row is committed first (after a PING), as in
        :meth:`enqueue_many`."""
        insert = self._insert_stmt(tuple(row))
        params = insert.params(row)
        ks, args = self._push_args(queue, keys, [row], set())
        if not self._sqlite:
            self._call(lambda r: r.ping(), "enqueue")  # fail before writing anything if Redis is down
            with self._driver() as raw:
                raw.cursor().execute(insert.sql, params)
                raw.commit()
            self._run_push(queue, ks, args)
            return
        self._drain()
        with self._driver() as raw:
            raw.cursor().execute(insert.sql, params)
            # sent now, its reply read after the COMMIT: Redis and SQLite work at the same time
            sent = self._send("enqueue", ENQUEUE, ks, args)
            if sent is None:  # Redis is down (or just reconnecting): make the call now, before COMMIT
                try:
                    self._run("enqueue", ENQUEUE, ks, args, "enqueue")
                except StoreUnavailable as exc:
                    raise StoreUnavailable(f"{exc}; nothing was written (the task row is rolled back)") from exc
            try:
                raw.commit()
            except BaseException:
                with contextlib.suppress(OmnilabError):  # the row is not there: take the task out of Redis again
                    if sent is not None:
                        self._receive(sent, "enqueue")
                    self._finish(keys, [row["id"]])
                raise
        if sent is not None:
            try:
                self._receive(sent, "enqueue")
            except StoreUnavailable as exc:
                raise StoreUnavailable(
                    f"{exc}; the task row is saved in SQL as pending — call queue.recover({queue!r}) when Redis is back"
                ) from exc

    def _insert(self, clean: list[dict[str, Any]], ids: list[str], deps: list[list[str]]) -> list[tuple[str, str]]:
        """Insert tasks and dependencies; returns the (task, dependency) pairs not yet completed."""
        t, td = self._tasks, self._deps
        dep_rows = [
            {"task_id": tid, "depends_on_task_id": d, "dependency_type": "sequential"}
            for tid, ds in zip(ids, deps)
            for d in ds
        ]
        wanted = {r["depends_on_task_id"] for r in dep_rows} - set(ids)
        with self._sql(begin=True) as c:
            check_foreign_keys(c, "tasks", clean)
            status: dict[str, str] = {}
            for start in range(0, len(wanted), 500):
                chunk = sorted(wanted)[start : start + 500]
                status.update(c.execute(sa.select(t.c.id, t.c.status).where(t.c.id.in_(chunk))).all())
            missing = wanted - set(status)
            if missing:
                raise InvalidInput(f"depends_on names unknown task(s): {', '.join(sorted(missing)[:5])}")
            c.execute(t.insert(), clean)
            if dep_rows:
                c.execute(td.insert(), dep_rows)
        return [(tid, d) for tid, ds in zip(ids, deps) for d in ds if status.get(d) != "completed"]

    def _push_args(
        self, queue: str, keys: dict[str, str], clean: list[dict[str, Any]], blocked: set[str]
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of the ENQUEUE script for these rows (those in ``blocked`` wait for dependencies)."""
        args: list[Any] = [self._task_prefix, queue]
        for r in clean:
            payload = {k: r.get(k) for k in _PAYLOAD}
            prio = DEFAULT_PRIORITY if r.get("priority") is None else int(r["priority"])  # NULL in platform rows
            args += [r["id"], prio, dumps(payload), "1" if r["id"] in blocked else "0"]
        ks = [
            keys["ready"],
            keys["waiting"],
            keys["ages"],
            keys["notify"],
            self.conn.key("q", "seq"),
            self.conn.key("queues"),
        ]
        return ks, args

    def _run_push(self, queue: str, ks: list[str], args: list[Any]) -> None:
        """The ENQUEUE script call for rows already committed in SQL."""
        try:
            self._run("enqueue", ENQUEUE, ks, args, "enqueue")
        except StoreUnavailable as exc:
            raise StoreUnavailable(
                f"{exc}; the task rows are saved in SQL as pending — call queue.recover({queue!r}) when Redis is back"
            ) from exc

    def _push(
        self, queue: str, keys: dict[str, str], clean: list[dict[str, Any]], open_pairs: list[tuple[str, str]]
    ) -> None:
        """Queue the tasks; those in ``open_pairs`` wait, registered as dependents of each open dependency."""
        ks, args = self._push_args(queue, keys, clean, {tid for tid, _ in open_pairs})

        def _deps(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=False)
            for tid, dep in open_pairs:
                pipe.sadd(self.conn.key("deps", dep), tid)
            pipe.execute()

        if open_pairs:  # dependents first, so a dependency finishing meanwhile finds them
            try:
                self._call(_deps, "enqueue")
            except StoreUnavailable as exc:
                raise StoreUnavailable(
                    f"{exc}; the task rows are saved in SQL as pending — call queue.recover({queue!r}) when Redis "
                    "is back"
                ) from exc
        self._run_push(queue, ks, args)

    def recover(
        self, queue: str | None = None, task_ids: Iterable[str] | None = None, *, unowned: bool | None = None
    ) -> int:
        """Queue this lab's open SQL tasks (pending/assigned/in_progress) that Redis does not know, each on its
        own queue (``tasks.queue_name``); returns how many were queued.

        Repairs a crash between the SQL write and the Redis push, or a Redis that lost its data. ``queue``:
        only that queue's tasks (default: every queue of this lab); ``task_ids``: only those. Another lab's
        tasks are never touched. ``unowned`` (default: True in the omnilab layout, False in the platform
        layout, where such rows are the platform's own, queued in its ``task_queue``): also claim open tasks no
        lab owns (``lab.insert``, rows from before revision 0006) for this lab — one conditional UPDATE, so
        exactly one lab gets each — and queue them on ``queue`` (``"default"`` if None) unless they name one.
        """
        self.conn.check_writable("recovering tasks")
        if queue is not None:
            self._keys(queue)
        if unowned is None:
            unowned = not self.conn.platform
        if unowned not in (True, False):
            raise InvalidInput(f"unowned must be True, False or None, got {unowned!r}")
        ids = _task_id_list(task_ids)
        self.conn.check_owner()  # Redis may have lost everything, the prefix's owner record included
        if unowned and self.lab_id is not None:
            self._claim_unowned(queue, ids)
        rows = self._open_rows(queue, ids)
        if not rows:
            return 0
        exists = self._call(lambda r: _exists_many(r, [self._task_prefix + x["id"] for x in rows]), "recover")
        todo = [r for r, e in zip(rows, exists) if not e]
        if not todo:
            return 0
        open_pairs = self._open_dependencies([r["id"] for r in todo])
        by_queue: dict[str, list[dict[str, Any]]] = {}
        for r in todo:
            by_queue.setdefault(r["queue_name"] or queue or "default", []).append(r)
        for q, q_rows in by_queue.items():
            q_ids = {r["id"] for r in q_rows}
            self._push(q, self._keys(q), q_rows, [p for p in open_pairs if p[0] in q_ids])
        if open_pairs:
            self.release_ready(sorted({tid for tid, _ in open_pairs}))
        return len(todo)

    def _not_platform(self) -> sa.ColumnElement[bool]:
        """SQL condition: the task was not handed to the platform's own ``task_queue``."""
        t = self._tasks
        return sa.or_(t.c.queue_name.is_(None), t.c.queue_name != PLATFORM_ROW)

    def _claim_unowned(self, queue: str | None, ids: list[str] | None) -> None:
        """Make the open tasks no lab owns (all, or those of ``ids``) this lab's, on ``queue`` unless they name one."""
        t = self._tasks
        claim = (
            sa.update(t)
            .where(t.c.lab_id.is_(None), t.c.status.in_(OPEN), self._not_platform())
            .values(lab_id=self.lab_id, queue_name=sa.func.coalesce(t.c.queue_name, queue or "default"))
        )
        with self._sql(begin=True) as c:
            if ids is None:
                c.execute(claim)
            for chunk in _chunks(ids or []):
                c.execute(claim.where(t.c.id.in_(chunk)))

    def _open_rows(self, queue: str | None, ids: list[str] | None) -> list[dict[str, Any]]:
        """This lab's open task rows (of ``queue`` and ``ids`` when given), oldest first."""
        t = self._tasks
        stmt = sa.select(t).where(self._mine(), t.c.status.in_(OPEN), self._not_platform())
        if queue is not None:
            stmt = stmt.where(sa.func.coalesce(t.c.queue_name, "default") == queue)
        rows: list[dict[str, Any]] = []
        with self._sql() as c:
            for chunk in [None] if ids is None else _chunks(ids):
                part = stmt if chunk is None else stmt.where(t.c.id.in_(chunk))
                rows += [dict(r._mapping) for r in c.execute(part.order_by(t.c.created_at, t.c.id))]
        return rows

    def _open_dependencies(self, ids: list[str]) -> list[tuple[str, str]]:
        """(task, dependency) pairs of ``ids`` whose dependency is not completed yet."""
        t, td = self._tasks, self._deps
        open_pairs: list[tuple[str, str]] = []
        with self._sql() as c:
            for chunk in _chunks(ids):
                open_pairs += [
                    (tid, dep)
                    for tid, dep in c.execute(
                        sa.select(td.c.task_id, td.c.depends_on_task_id)
                        .join(t, t.c.id == td.c.depends_on_task_id)
                        .where(td.c.task_id.in_(chunk), t.c.status != "completed")
                    )
                ]
        return open_pairs

    # ------------------------------------------------------------------------------- dequeue
    def dequeue(
        self, worker_id: str, *, queue: str = "default", timeout: float = 0.0, lease: float | None = None
    ) -> Lease | None:
        """The highest-priority ready task, leased to ``worker_id`` for ``lease`` seconds, or ``None``
        after waiting up to ``timeout`` seconds. Expired leases are re-queued first."""
        got = self.dequeue_many(worker_id, 1, queue=queue, timeout=timeout, lease=lease)
        return got[0] if got else None

    def dequeue_many(
        self, worker_id: str, count: int, *, queue: str = "default", timeout: float = 0.0, lease: float | None = None
    ) -> list[Lease]:
        """Up to ``count`` tasks in one script call and one SQL transaction (batch workers)."""
        self.conn.check_writable("dequeueing tasks")
        if not isinstance(worker_id, str) or not worker_id:
            raise InvalidInput(f"worker_id must be a non-empty string, got {worker_id!r}")
        if not is_int(count) or count < 1:
            raise InvalidInput(f"count must be a positive integer, got {count!r}")
        if not is_number(timeout) or timeout < 0:
            raise InvalidInput(f"timeout must be >= 0 seconds, got {timeout!r}")
        lease_ms = _lease_ms(self.default_lease if lease is None else lease)
        keys = self._keys(queue)
        deadline = time.monotonic() + timeout
        while True:
            leases, popped = self._pop(queue, keys, worker_id, lease_ms, count)
            if leases:
                return leases
            if popped:  # every task popped was finished or another lab's and has been dropped: look again
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            # wake on enqueue; wake at least every second so expired leases are noticed
            wait = min(left, 1.0)
            self._call(_block_pop(keys["notify"], wait), "dequeue wait")

    def _pop(self, queue: str, keys: dict[str, str], worker: str, lease_ms: int, count: int) -> tuple[list[Lease], int]:
        """(the leases claimed in SQL, how many task ids were popped from Redis)."""
        out, requeued, dead = self._script_call(
            "dequeue",
            DEQUEUE,
            [keys["ready"], keys["processing"], keys["dead"], keys["ages"]],
            [self._task_prefix, lease_ms, worker, uuid.uuid4().hex, self.max_attempts, count],
            "dequeue",
        )
        if requeued:
            log.info("queue %s: re-queued %d task(s) whose lease expired", queue, len(requeued))
        if dead:
            self._mark_failed(dead, f"lease expired {self.max_attempts} time(s) (worker died or too slow)")
        if not out:
            return [], 0
        now = dt.datetime.now(dt.timezone.utc)
        # the claim: only a task of this lab (or of none, which becomes this lab's) that is still open; concurrent
        # claims by two labs serialize on the row and the second matches nothing
        if len(out) == 1:
            claimed = self._claim_one(queue, out[0][0], int(out[0][1]), now)
        else:
            claimed = self._claim_many(queue, out, now)
        taken = [
            Lease(tid, queue, worker, int(attempts), token, _utc_ms(int(deadline)), loads(payload) or {}, self)
            for tid, attempts, token, deadline, payload in out
            if tid in claimed
        ]
        gone = [row[0] for row in out if row[0] not in claimed]
        if gone:  # finished, cancelled, deleted or another lab's in SQL (the truth): drop them from Redis
            log.info("queue %s: dropped %d task(s) finished in SQL or owned by another lab", queue, len(gone))
            self._finish(keys, gone)
        return taken, len(out)

    def _claim_one(self, queue: str, task_id: str, attempts: int, now: dt.datetime) -> set[str]:
        """The claim of one popped task: one prepared UPDATE and one commit."""
        stmt = self._claim_stmt()
        values = {**_CLAIM_CONSTANTS, "tid": task_id, "now": now, "retries": attempts - 1}
        if self.lab_id is not None:
            values.update(lab=self.lab_id, queue=queue)
        with self._driver() as raw:
            cur = raw.cursor()
            cur.execute(stmt.sql, stmt.params(values))
            claimed = {row[0] for row in cur.fetchall()}
            raw.commit()
        return claimed

    def _claim_many(self, queue: str, out: list[Any], now: dt.datetime) -> set[str]:
        """The claim of popped tasks: one UPDATE per attempt number (almost always one), one transaction."""
        t = self._tasks
        by_attempt: dict[int, list[str]] = {}
        for tid, attempts, *_ in out:
            by_attempt.setdefault(int(attempts), []).append(tid)
        claimed: set[str] = set()
        owner = (
            {}
            if self.lab_id is None
            else {"lab_id": self.lab_id, "queue_name": sa.func.coalesce(t.c.queue_name, queue)}
        )
        with self._sql(begin=True) as c:
            for attempts, ids in by_attempt.items():
                claimed.update(
                    c.execute(
                        sa.update(t)
                        .where(t.c.id.in_(ids), t.c.status.in_(OPEN), self._claimable())
                        .values(status="in_progress", started_at=now, updated_at=now, retry_count=attempts - 1, **owner)
                        .returning(t.c.id)
                    ).scalars()
                )
        return claimed

    # ------------------------------------------------------------------------------- finish
    def ack_many(self, leases: Sequence[Lease], results: Sequence[Any] | None = None) -> list[bool]:
        """Complete many leases in one SQL transaction; per lease True, or False if already completed."""
        self.conn.check_writable("acknowledging tasks")
        leases = list(leases)
        results = [None] * len(leases) if results is None else list(results)
        if len(results) != len(leases):
            raise InvalidInput("give one result per lease")
        for r in results:
            dumps(r)  # JSON-able, before anything is written
        # the status guard makes completion exactly-once: a second ack matches no row
        later = False
        if len(leases) == 1:
            completed, has_dependents = self._complete_one(leases[0].task_id, results[0])
            # SQLite, no dependents in SQL (read in the completing transaction, under SQLite's one write lock: a
            # dependent registered after it sees the task completed and is not held back): Redis's reply can wait
            later = self._sqlite and not has_dependents
        else:
            completed = self._complete_many(leases, results)
        done: list[bool] = []
        for x in leases:  # a task listed twice counts once
            done.append(x.task_id in completed)
            completed.discard(x.task_id)
        by_queue: dict[str, list[str]] = {}
        for lease in leases:
            by_queue.setdefault(lease.queue, []).append(lease.task_id)
        dependents: list[str] = []
        try:
            for q, qids in by_queue.items():
                if not (later and self._finish_later(self._keys(q), qids)):
                    dependents += self._finish(self._keys(q), qids)
        except StoreUnavailable as exc:
            raise StoreUnavailable(
                f"{exc}; the completion IS recorded in SQL — Redis drops the task "
                "when its lease expires after Redis is back"
            ) from exc
        for lease, ok in zip(leases, done):
            if not ok:
                log.warning(
                    "task %s was already finished; duplicate ack from %s ignored", lease.task_id, lease.worker_id
                )
        if dependents:
            self.release_ready(sorted(set(dependents)))
        return done

    def _complete_one(self, task_id: str, result: Any) -> tuple[set[str], bool]:
        """Complete one task (result included): one prepared UPDATE and one commit. Returns the ids completed and
        whether SQL lists tasks depending on it (``task_dependencies``, read in the same statement)."""
        stmt = self._ack_stmt(result is not None)
        values = {**_ACK_CONSTANTS, "tid": task_id, "now": dt.datetime.now(dt.timezone.utc), "result": result}
        if self.lab_id is not None:
            values["lab"] = self.lab_id
        with self._driver() as raw:
            cur = raw.cursor()
            cur.execute(stmt.sql, stmt.params(values))
            rows = cur.fetchall()
            raw.commit()
        return {row[0] for row in rows}, any(bool(row[1]) for row in rows)

    def _complete_many(self, leases: list[Lease], results: list[Any]) -> set[str]:
        """Complete many tasks in one transaction: one UPDATE, then the results of those it completed."""
        now = dt.datetime.now(dt.timezone.utc)
        t = self._tasks
        ids = list(dict.fromkeys(x.task_id for x in leases))
        with self._sql(begin=True) as c:
            completed = set(
                c.execute(
                    sa.update(t)
                    .where(t.c.id.in_(ids), t.c.status.notin_(FINISHED), self._mine())
                    .values(status="completed", progress=100, completed_at=now, updated_at=now, error_message=None)
                    .returning(t.c.id)
                ).scalars()
            )
            rows = [
                {"tid": x.task_id, "res": r}
                for x, r in zip(leases, results)
                if x.task_id in completed and r is not None
            ]
            if rows:
                c.execute(sa.update(t).where(t.c.id == sa.bindparam("tid")).values(result=sa.bindparam("res")), rows)
        return completed

    def _finish_call(self, keys: dict[str, str], ids: list[str]) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of the FINISH script for these tasks."""
        return [keys["ready"], keys["processing"], keys["ages"]], [self._task_prefix, self.conn.key("deps", ""), *ids]

    def _finish(self, keys: dict[str, str], ids: list[str]) -> list[str]:
        return self._run("finish", FINISH, *self._finish_call(keys, ids), "ack")

    def fail_lease(self, lease: Lease, error: str, *, retry: bool = True) -> str:
        """Record a failure of a leased task (:meth:`Lease.fail`): ``"retried"`` while attempts remain (and
        ``retry``), else ``"dead"``. Raises :class:`~omnilab.errors.LeaseLost` if the lease has expired."""
        self.conn.check_writable("failing a task")
        if not isinstance(error, str) or not error:
            raise InvalidInput("error must be a non-empty message")
        keys = self._keys(lease.queue)
        token = self._call(lambda r: r.hget(self._task_prefix + lease.task_id, "token"), "fail")
        if token != lease.token:
            raise LeaseLost(f"task {lease.task_id}: the lease of {lease.worker_id} expired; not recorded")
        outcome = "retried" if retry and lease.attempt < self.max_attempts else "dead"
        now = dt.datetime.now(dt.timezone.utc)
        t = self._tasks
        with self._sql(begin=True) as c:
            c.execute(
                sa.update(t)
                .where(t.c.id == lease.task_id, t.c.status.notin_(FINISHED), self._mine())
                .values(
                    status="pending" if outcome == "retried" else "failed",
                    error_message=error,
                    retry_count=lease.attempt,
                    updated_at=now,
                )
            )
        ok = self._run(
            "fail",
            FAIL,
            [keys["ready"], keys["processing"], keys["dead"], keys["ages"], keys["notify"]],
            [self._task_prefix, lease.task_id, lease.token, "retry" if outcome == "retried" else "dead", error],
            "fail",
        )
        if not ok:
            raise LeaseLost(f"task {lease.task_id}: the lease expired while failing it")
        return outcome

    def extend_lease(self, lease: Lease, seconds: float) -> None:
        """Push the lease's deadline to ``seconds`` from now (:meth:`Lease.extend`). Raises
        :class:`~omnilab.errors.LeaseLost` if the lease has expired."""
        self.conn.check_writable("extending a lease")
        ms = _lease_ms(seconds)
        deadline = self._run(
            "extend",
            EXTEND,
            [self._keys(lease.queue)["processing"]],
            [self._task_prefix, lease.task_id, lease.token, ms],
            "extend lease",
        )
        if not deadline:
            raise LeaseLost(f"task {lease.task_id}: the lease of {lease.worker_id} has expired")
        lease.deadline = _utc_ms(int(deadline))

    def _mark_failed(self, ids: list[str], message: str) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        t = self._tasks
        with self._sql(begin=True) as c:
            c.execute(
                sa.update(t)
                .where(t.c.id.in_(ids), t.c.status.notin_(FINISHED), self._mine())
                .values(status="failed", error_message=message, updated_at=now)
            )
        log.warning("dead-lettered %d task(s): %s", len(ids), message)

    # -------------------------------------------------------------------------- dependencies
    def release_ready(self, task_ids: Sequence[str]) -> int:
        """Move waiting tasks whose dependencies are all completed (in SQL) to ready; returns how many."""
        self.conn.check_writable("releasing tasks")
        ids = list(task_ids)
        if not ids:
            return 0
        t, td = self._tasks, self._deps
        with self._sql() as c:
            blocked = {
                tid
                for (tid,) in c.execute(
                    sa.select(td.c.task_id)
                    .join(t, t.c.id == td.c.depends_on_task_id)
                    .where(td.c.task_id.in_(ids), t.c.status != "completed")
                )
            }
        ready = [i for i in ids if i not in blocked]
        if not ready:
            return 0
        # each task hash names its queue; the script checks it again, atomically, before moving the task
        names = self._call(lambda r: _hash_field_many(r, [self._task_prefix + i for i in ready], "queue"), "release")
        by_queue: dict[str, list[str]] = {}
        for tid, q in zip(ready, names):
            if q is not None:  # no hash: the task is finished or not queued
                by_queue.setdefault(q, []).append(tid)
        n = 0
        for q, q_ids in by_queue.items():
            keys = self._keys(q)
            n += int(
                self._run(
                    "release",
                    RELEASE,
                    [keys["waiting"], keys["ready"], keys["notify"]],
                    [self._task_prefix, q, *q_ids],
                    "release",
                )
            )
        return n

    # ---------------------------------------------------------------------------- maintenance
    def queues(self) -> list[str]:
        """Names of the queues that have been used."""
        return sorted(self._call(lambda r: reply_strs(r.smembers(self.conn.key("queues"))), "queues"))

    def requeue_expired(self, queue: str | None = None) -> int:
        """Re-queue (or dead-letter) tasks whose lease expired and release waiting tasks whose
        dependencies completed; returns how many expired leases were handled."""
        self.conn.check_writable("re-queueing expired leases")
        n = 0
        for q in [queue] if queue else self.queues():
            keys = self._keys(q)
            _, requeued, dead = self._run(
                "dequeue",
                DEQUEUE,
                [keys["ready"], keys["processing"], keys["dead"], keys["ages"]],
                [self._task_prefix, 1, "-", "-", self.max_attempts, 0],
                "requeue",
            )
            if dead:
                self._mark_failed(dead, f"lease expired {self.max_attempts} time(s) (worker died or too slow)")
            n += len(requeued) + len(dead)
            waiting = self._call(_sorted_members(keys["waiting"]), "waiting")
            self.release_ready(waiting)
        return n

    def dead_letters(self, queue: str = "default") -> pd.DataFrame:
        """Dead-lettered tasks of a queue with their SQL row (content, error_message, retry_count, ...)."""
        keys = self._keys(queue)
        ids = self._call(lambda r: r.zrange(keys["dead"], 0, -1), "dead letters")
        t = self._tasks
        cols = ["id", "content", "task_type", "status", "retry_count", "error_message", "updated_at"]
        with self._sql() as c:
            rows = (
                [dict(r._mapping) for r in c.execute(sa.select(*(t.c[n] for n in cols)).where(t.c.id.in_(ids)))]
                if ids
                else []
            )
        return pd.DataFrame(rows, columns=cols)

    def retry_dead(self, queue: str = "default", task_ids: Iterable[str] | None = None) -> int:
        """Give dead-lettered tasks a fresh set of attempts; returns how many were re-queued."""
        self.conn.check_writable("retrying dead-lettered tasks")
        keys = self._keys(queue)
        dead = self._call(lambda r: reply_strs(r.zrange(keys["dead"], 0, -1)), "dead letters")
        wanted = None if task_ids is None else set(task_ids)  # once: task_ids may be a generator
        ids = [i for i in dead if wanted is None or i in wanted]
        if not ids:
            return 0
        t = self._tasks
        with self._sql(begin=True) as c:
            c.execute(
                sa.update(t)
                .where(t.c.id.in_(ids), t.c.status == "failed", self._mine())
                .values(status="pending", updated_at=dt.datetime.now(dt.timezone.utc))
            )

        def _revive(r: redis.Redis) -> None:
            pipe = r.pipeline()
            for i in ids:
                tk = self._task_prefix + i
                pipe.zrem(keys["dead"], i)
                pipe.hset(tk, mapping={"attempts": 0, "token": ""})
                pipe.hget(tk, "score")
            scores = pipe.execute()[2::3]
            pipe = r.pipeline()
            for i, s in zip(ids, scores):
                pipe.zadd(keys["ready"], {i: float(s)})
                pipe.zadd(keys["ages"], {i: time.time() * 1000})
                pipe.lpush(keys["notify"], "1")
            pipe.execute()

        self._call(_revive, "retry dead")
        return len(ids)

    def stats(self) -> pd.DataFrame:
        """One row per queue: pending, waiting (dependencies), in_flight, expired_leases, dead,
        oldest_age_s (age of the oldest unfinished task).

        Platform layout: one more row, ``queue="task_queue (platform)"``, with the platform's ``task_queue``
        length as ``pending`` and its ``processing_tasks`` size as ``in_flight`` (the counts become nullable
        ``Int64``: the platform has no waiting, expired or dead tasks to count, so those are ``<NA>``)."""

        def _stats(r: redis.Redis) -> list[dict[str, Any]]:
            names = sorted(reply_strs(r.smembers(self.conn.key("queues"))))
            now_ms = time.time() * 1000
            pipe = r.pipeline(transaction=False)
            for q in names:
                k = self._keys(q)
                pipe.zcard(k["ready"])
                pipe.scard(k["waiting"])
                pipe.zcard(k["processing"])
                pipe.zcount(k["processing"], "-inf", now_ms)
                pipe.zcard(k["dead"])
                pipe.zrange(k["ages"], 0, 0, withscores=True)
            res = pipe.execute()
            rows = []
            for i, q in enumerate(names):
                ready, waiting, inflight, expired, dead, oldest = res[6 * i : 6 * i + 6]
                rows.append(
                    {
                        "queue": q,
                        "pending": ready,
                        "waiting": waiting,
                        "in_flight": inflight,
                        "expired_leases": expired,
                        "dead": dead,
                        "oldest_age_s": (now_ms - oldest[0][1]) / 1000 if oldest else float("nan"),
                    }
                )
            return rows

        cols = ["queue", "pending", "waiting", "in_flight", "expired_leases", "dead", "oldest_age_s"]
        rows = self._call(_stats, "queue stats")
        if not self.conn.platform:
            frame = pd.DataFrame(rows, columns=cols)
            return frame.astype({c: "int64" for c in cols[1:-1]} | {"oldest_age_s": "float64"})

        def _platform(r: redis.Redis) -> list[int]:
            pipe = r.pipeline(transaction=False)
            pipe.llen(PLATFORM_QUEUE)
            pipe.scard(PLATFORM_PROCESSING)
            return pipe.execute()

        queued, processing = self._call(_platform, "platform queue stats")
        rows.append(
            {
                "queue": PLATFORM_ROW,
                "pending": queued,
                "waiting": pd.NA,
                "in_flight": processing,
                "expired_leases": pd.NA,
                "dead": pd.NA,
                "oldest_age_s": float("nan"),
            }
        )
        frame = pd.DataFrame(rows, columns=cols)
        return frame.astype({c: "Int64" for c in cols[1:-1]} | {"oldest_age_s": "float64"})

    # ------------------------------------------------------------------ the platform's task_queue
    def _require_platform(self) -> None:
        if not self.conn.platform:
            raise InvalidInput("the platform's task_queue is only used with redis_layout='platform'")

    def platform_tasks(self) -> pd.DataFrame:
        """The platform's ``task_queue`` (read only): one row per queued JSON task, ``position`` 0 being the
        next a platform worker takes (its BRPOP pops the oldest end), then the task's fields; ``processing``
        says whether the id is also in ``processing_tasks``."""
        self._require_platform()

        def _read(r: redis.Redis) -> tuple[list[str], set[str]]:
            pipe = r.pipeline(transaction=False)
            pipe.lrange(PLATFORM_QUEUE, 0, -1)
            pipe.smembers(PLATFORM_PROCESSING)
            items, busy = pipe.execute()
            return items, busy

        items, busy = self._call(_read, "platform queue")
        rows = []
        for pos, raw in enumerate(reversed(items)):
            try:
                task = loads(raw)
            except ValueError:
                task = None
            task = task if isinstance(task, dict) else {"raw": raw}
            rows.append({"position": pos, **task, "processing": task.get("id") in busy})
        frame = pd.DataFrame(rows)
        return frame if len(frame) else pd.DataFrame(columns=["position", "id", "processing"])

    def push_platform(self, task: dict[str, Any]) -> str:
        """Explicitly hand a task to the platform's own workers: write the ``tasks`` row (pending), then
        ``LPUSH task_queue`` its JSON (the row's platform columns), as the platform does; returns the id.

        omnilab's leases, retries and dependencies do not apply to it; platform workers take it with BRPOP."""
        self._require_platform()
        self.conn.check_writable("pushing to the platform's task_queue")
        if not isinstance(task, dict):
            raise InvalidInput(f"task must be a dict, got {type(task).__name__}")
        row = dict(task)
        for col in ("status", "progress", "started_at", "completed_at", "result"):
            if row.get(col) not in (None, "pending", 0):
                raise InvalidInput(f"{col} is set by the queue, leave it out")
        for col in ("queue_name", "lab_id"):
            if row.get(col) is not None:
                raise InvalidInput(f"{col} is set by the queue, leave it out")
        # recorded as handed to the platform: recover() leaves it to the platform's workers
        row["status"], row["progress"], row["queue_name"], row["lab_id"] = "pending", 0, PLATFORM_ROW, self.lab_id
        clean = validate_rows("tasks", [row])
        self._call(lambda r: r.ping(), "push to task_queue")
        with self._sql(begin=True) as c:
            check_foreign_keys(c, "tasks", clean)
            c.execute(self._tasks.insert(), clean)
        extras = set(OMNILAB_COLUMNS.get("tasks", ()))
        text = dumps({k: v for k, v in clean[0].items() if k not in extras})
        try:
            self._call(lambda r: r.lpush(PLATFORM_QUEUE, text), "push to task_queue")
        except StoreUnavailable as exc:
            raise StoreUnavailable(
                f"{exc}; the task row {clean[0]['id']} is saved in SQL as pending but is not in task_queue"
            ) from exc
        return clean[0]["id"]

    def purge(self, queue: str = "default") -> int:
        """Remove a queue's Redis state (SQL rows stay); returns the number of task hashes removed."""
        self.conn.check_writable("purging a queue")
        keys = self._keys(queue)

        def _purge(r: redis.Redis) -> int:
            ids = set(reply_strs(r.zrange(keys["ages"], 0, -1))) | set(reply_strs(r.zrange(keys["dead"], 0, -1)))
            pipe = r.pipeline()
            for i in ids:
                pipe.delete(self._task_prefix + i)
            pipe.delete(*keys.values())
            pipe.srem(self.conn.key("queues"), queue)
            pipe.execute()
            return len(ids)

        return int(self._call(_purge, "purge"))

    def __repr__(self) -> str:
        return f"<TaskQueue {self.conn.display} max_attempts={self.max_attempts}>"


def _task_id_list(task_ids: Iterable[str] | None) -> list[str] | None:
    """``task_ids`` (one id or many) as a list of strings; None stays None (all tasks)."""
    if task_ids is None:
        return None
    ids: list[Any] = [task_ids] if isinstance(task_ids, str) else list(task_ids)
    if not all(isinstance(i, str) for i in ids):
        raise InvalidInput("task_ids must be task id strings")
    return ids


def _chunks(ids: Sequence[str], size: int = 500) -> Iterator[list[str]]:
    """``ids`` in slices small enough for one ``IN (...)`` on every backend."""
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _block_pop(key: str, seconds: float) -> Callable[[redis.Redis], object]:
    """A call that waits up to ``seconds`` for an element of list ``key`` (and takes it)."""
    return lambda r: r.blpop([key], timeout=seconds)


def _sorted_members(key: str) -> Callable[[redis.Redis], list[str]]:
    """A call that reads set ``key``, sorted."""
    return lambda r: sorted(reply_strs(r.smembers(key)))


def _hash_field_many(r: redis.Redis, keys: list[str], field: str) -> list[str | None]:
    """``HGET key field`` for each key, in one round trip (None where the hash or field is missing)."""
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.hget(k, field)
    return [reply_opt(x) for x in pipe.execute()]


def _exists_many(r: redis.Redis, keys: list[str]) -> list[bool]:
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.exists(k)
    return [bool(x) for x in pipe.execute()]
