"""The platform's ``update_task_progress``: the ``tasks`` row first (SQL is the truth), then Redis.

Redis follows a committed SQL write: the agent's state cache (``current_task``, ``progress`` and, when the task's
status says so, the agent's ``status``) and an agent update on ``agent_updates:<agent_id>`` (platform layout)
or omnilab's agents channel. A Redis failure at that point is logged and reported in the result, not raised.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from typing import Any

import redis
import sqlalchemy as sa

from omnilab._checks import is_number
from omnilab.enums import TaskStatus
from omnilab.errors import InvalidInput, NotFound, OmnilabError, StoreUnavailable
from omnilab.sessions import pubsub
from omnilab.sessions.connection import dumps
from omnilab.sessions.store import AgentStateCache

__all__ = ["update_task_progress", "AGENT_STATUS_FOR_TASK"]

log = logging.getLogger(__name__)

FINISHED = ("completed", "failed", "cancelled")

#: the agent status the state cache takes when one of its tasks moves to a status (others leave it alone)
AGENT_STATUS_FOR_TASK = {
    "assigned": "busy",
    "in_progress": "busy",
    "completed": "idle",
    "failed": "idle",
    "cancelled": "idle",
}


def _check_progress(progress: Any) -> int:
    if not is_number(progress, finite=True) or not 0 <= progress <= 100:
        raise InvalidInput(f"progress must be a number from 0 to 100, got {progress!r}")
    return int(math.floor(progress + 0.5))  # the column is an integer; 33.5 -> 34


def _check_status(status: Any) -> str | None:
    if status is None:
        return None
    status = getattr(status, "value", status)
    allowed = [s.value for s in TaskStatus]
    if status not in allowed:
        raise InvalidInput(f"status must be one of {', '.join(allowed)}, got {status!r}")
    return status


def update_task_progress(
    engine: sa.Engine,
    agent_state: AgentStateCache,
    task_id: str,
    progress: Any,
    status: Any = None,
    result: Any = None,
    *,
    publisher: Callable[[str, dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """Set a task's progress (0-100, rounded to an integer) and optionally its status and result.

    One SQL transaction updates ``tasks.progress``/``status``/``result`` (``result`` None leaves it as is),
    sets ``started_at`` when the status becomes ``in_progress`` (if not set yet) and ``completed_at`` when it
    becomes completed, failed or cancelled. Then, if the task has an agent, the agent-state cache and an agent
    update follow; ``publisher(agent_id, message)`` replaces the default broadcast if given.

    Raises InvalidInput / NotFound (nothing written) and ReadOnlyViolation on a read-only Redis connection.
    Returns ``{task_id, agent_id, progress, status, started_at, completed_at, cached, published, warnings}``:
    ``cached`` whether the state cache was written, ``published`` the receiver count (None if not sent),
    ``warnings`` what went wrong on the Redis side.
    """
    from omnilab.sql.schema import TABLES

    if not isinstance(task_id, str) or not task_id:
        raise InvalidInput(f"task_id must be a non-empty string, got {task_id!r}")
    progress = _check_progress(progress)
    status = _check_status(status)
    if result is not None:
        dumps(result)  # JSON-able, before anything is written
    conn = agent_state.conn
    conn.check_writable("updating task progress")

    t = TABLES["tasks"]
    now = dt.datetime.now(dt.timezone.utc)
    try:
        with engine.begin() as c:
            row = c.execute(
                sa.select(t.c.agent_id, t.c.status, t.c.started_at, t.c.completed_at)
                .where(t.c.id == task_id)
                .with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"task {task_id!r} does not exist")
            values: dict[str, Any] = {"progress": progress, "updated_at": now}
            started_at, completed_at = row.started_at, row.completed_at
            if status is not None:
                values["status"] = status
                if status == "in_progress" and started_at is None:
                    values["started_at"] = started_at = now
                if status in FINISHED and (row.status != status or completed_at is None):
                    values["completed_at"] = completed_at = now
            if result is not None:
                values["result"] = result
            c.execute(sa.update(t).where(t.c.id == task_id).values(**values))
    except sa.exc.OperationalError as exc:
        raise StoreUnavailable(f"database unavailable for update_task_progress: {exc.orig}") from exc
    except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
        raise InvalidInput(f"the database rejected the task update, nothing written: {exc.orig}") from exc

    final_status = status if status is not None else row.status
    report: dict[str, Any] = {
        "task_id": task_id,
        "agent_id": row.agent_id,
        "progress": progress,
        "status": final_status,
        "started_at": started_at,
        "completed_at": completed_at,
        "cached": False,
        "published": None,
        "warnings": [],
    }
    agent_id = row.agent_id
    if agent_id is None:
        report["warnings"].append("the task has no agent: no agent state or update to send")
        return report

    state: dict[str, Any] = {"current_task": task_id, "progress": progress}
    if status in AGENT_STATUS_FOR_TASK:
        state["status"] = AGENT_STATUS_FOR_TASK[status]
    message = {"type": "task_progress", "task_id": task_id, "progress": progress, "status": final_status}
    try:
        agent_state.set(agent_id, state)
        report["cached"] = True
    except (OmnilabError, redis.RedisError, OSError) as exc:
        _warn(report, f"agent state of {agent_id} not updated: {exc}")
    try:
        if publisher is not None:
            report["published"] = publisher(agent_id, message)
        else:
            report["published"] = pubsub.broadcast_agent_update(conn, agent_id, message, event="task_progress")
    except (OmnilabError, redis.RedisError, OSError) as exc:
        _warn(report, f"agent update for {agent_id} not published: {exc}")
    return report


def _warn(report: dict[str, Any], text: str) -> None:
    log.warning("task %s progress saved in SQL, but %s", report["task_id"], text)
    report["warnings"].append(text)
