"""Seeded random data for the analytics tests, in the platform's names, with the awkward cases built in.

- agents with no runs at all, agents whose runs are all older than the window, agents whose tasks are
  all finished, capabilities that contain others as substrings, NULL capabilities, NULL priority, NULL
  status, two agents with the same name;
- runs exactly at ``now - days`` (inside), a microsecond before it (outside), exactly at ``now``
  (inside) and after ``now`` (outside);
- the platform's nullable columns left NULL here and there: run success / execution_time / tokens_used,
  task status / priority / created_at / updated_at, api_usage response_time / status_code / provider /
  model / cost_usd,
  error_logs.resolved, project_files line_count (content given instead) and updated_at.

``populate`` writes through ``lab.insert`` when given a Lab (the validated path, which may fill
defaults for NULLs) and with plain SQLAlchemy Core inserts when given an Engine (NULLs stay NULL).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import numpy as np
import sqlalchemy as sa

from omnilab.sql.schema import TABLES

NOW = dt.datetime(2026, 3, 15, 12, 0, 0, tzinfo=dt.timezone.utc)
DAYS = 7
US = dt.timedelta(microseconds=1)

CAPABILITIES = ["code", "code_review", "coder", "testing", "unit_testing_helper", "deploy", "docs"]
TASK_TYPES = ["code", "test", "review", "deploy", None]


def _maybe(rng: np.random.Generator, value: Any, p: float = 0.06) -> Any:
    """``value``, or None with probability ``p`` (the platform's nullable columns)."""
    return None if rng.random() < p else value


def rows(seed: int = 0, n_runs: int = 600) -> dict[str, list[dict[str, Any]]]:
    """The rows per table, in insertion order (parents first)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[dict[str, Any]]] = {}
    systems = ["alpha", "beta", "gamma"]
    statuses = ["idle", "busy", "idle", "error", "idle", None, "idle", "busy", "idle"]
    agents = []
    for i in range(9):
        caps = sorted(set(rng.choice(CAPABILITIES, size=int(rng.integers(0, 4)), replace=False).tolist()))
        agents.append(
            {
                "id": f"agent_{i}",
                "name": f"Agent {i}",
                "system_name": systems[i % 3],
                "agent_type": ["coder", "tester", "reviewer"][i % 3],
                "status": statuses[i],
                "priority": int(rng.integers(1, 11)),
                "capabilities": caps,
                "max_concurrent_tasks": 1 + i % 3,
            }
        )
    # fixed cases: exact-match capabilities, NULL capabilities, NULL priority, a repeated name
    agents[0]["capabilities"] = ["unit_testing_helper", "code_review"]
    agents[2]["capabilities"] = ["testing", "code"]
    agents[4]["capabilities"] = ["coder"]
    agents[6]["capabilities"] = None
    agents[8]["priority"] = None
    agents[8]["name"] = "Agent 2"
    out["agents"] = agents
    ids = [a["id"] for a in agents]
    runners = ids[:7]  # agent_7 and agent_8 never run; agent_6 only ran long ago

    out["projects"] = [{"id": f"proj_{i}", "name": f"Project {i}"} for i in range(4)]

    task_statuses = ["pending", "assigned", "in_progress", "completed", "failed", "cancelled"]
    tasks = []
    for i in range(60):
        status = _maybe(rng, str(rng.choice(task_statuses)))
        created = NOW - dt.timedelta(days=float(rng.uniform(0, 20)))
        started = created + dt.timedelta(seconds=float(rng.uniform(1, 600)))
        completed = started + dt.timedelta(seconds=float(rng.uniform(1, 5000))) if status == "completed" else None
        tasks.append(
            {
                "id": f"task_{i}",
                "content": f"Task {i}",
                "status": status,
                "priority": _maybe(rng, 5),
                "agent_id": None if i % 11 == 0 else str(rng.choice(ids)),
                "project_id": None if i % 7 == 0 else f"proj_{i % 3}",
                "task_type": TASK_TYPES[i % 4],
                "created_at": _maybe(rng, created),
                "updated_at": _maybe(rng, created + dt.timedelta(hours=1), 0.2),
                "started_at": started,
                "completed_at": completed,
            }
        )
    # agent_1's tasks are all finished: it must still show 0 active tasks
    for t in tasks:
        if t["agent_id"] == "agent_1" and t["status"] in ("pending", "assigned", "in_progress", None):
            t["status"] = "completed"
            t["completed_at"] = t["started_at"] + dt.timedelta(seconds=30)
    out["tasks"] = tasks

    runs = []
    for _ in range(n_runs):
        success = _maybe(rng, bool(rng.random() < 0.8))
        runs.append(
            {
                "agent_id": str(rng.choice(runners[:6])),
                "task_id": f"task_{int(rng.integers(0, 60))}" if rng.random() < 0.7 else None,
                "task_type": TASK_TYPES[int(rng.integers(0, 5))],
                "timestamp": NOW - dt.timedelta(seconds=float(rng.uniform(-2 * 86400, 40 * 86400))),
                "execution_time": _maybe(rng, float(np.round(rng.lognormal(1.0, 1.0), 6))),
                "success": success,
                "tokens_used": _maybe(rng, int(rng.integers(0, 5000))),
                "error_type": str(rng.choice(["timeout", "crash", "bad_output"])) if success is False else None,
            }
        )
    boundary = [
        NOW - dt.timedelta(days=DAYS),  # exactly `days` ago: inside
        NOW - dt.timedelta(days=DAYS) - US,  # a microsecond older: outside
        NOW,  # exactly now: inside
        NOW + US,  # the future: outside
        NOW - dt.timedelta(days=30),  # the 30-day boundary: inside for days=30
        NOW - dt.timedelta(days=30) - US,
    ]
    for j, ts in enumerate(boundary):
        runs.append(
            {
                "agent_id": "agent_3",
                "task_id": None,
                "task_type": "boundary",
                "timestamp": ts,
                "execution_time": 100.0 + j,
                "success": j % 2 == 0,
                "tokens_used": 1000 * (j + 1),
                "error_type": None,
            }
        )
    runs.append(
        {
            "agent_id": "agent_6",
            "task_id": None,
            "task_type": "code",
            "timestamp": NOW - dt.timedelta(days=90),
            "execution_time": 5.0,
            "success": True,
            "tokens_used": 10,
            "error_type": None,
        }
    )
    out["agent_performance"] = runs

    errors = []
    for i in range(150):
        errors.append(
            {
                "timestamp": NOW - dt.timedelta(seconds=float(rng.uniform(-86400, 40 * 86400))),
                "component": str(rng.choice(["api", "memory", "scheduler"])),
                "severity": str(rng.choice(["warning", "error", "critical"])),
                "error_type": str(rng.choice(["Timeout", "ValueError", "KeyError"])),
                "message": f"error {i}",
                "agent_id": None if rng.random() < 0.3 else str(rng.choice(ids)),
                "resolved": _maybe(rng, bool(rng.random() < 0.4), 0.1),
            }
        )
    errors.append(
        {
            "timestamp": NOW - dt.timedelta(days=DAYS),
            "component": "edge",
            "severity": "error",
            "error_type": "Boundary",
            "message": "exactly days ago",
            "resolved": False,
        }
    )
    errors.append(
        {
            "timestamp": NOW - dt.timedelta(days=DAYS) - US,
            "component": "edge",
            "severity": "error",
            "error_type": "Outside",
            "message": "just too old",
            "resolved": False,
        }
    )
    out["error_logs"] = errors

    usage = []
    for _ in range(500):
        usage.append(
            {
                "timestamp": NOW - dt.timedelta(seconds=float(rng.uniform(-86400, 40 * 86400))),
                "endpoint": str(rng.choice(["/chat", "/embed", "/search", "/health"])),
                "method": str(rng.choice(["GET", "POST"])),
                "status_code": _maybe(rng, int(rng.choice([200, 200, 200, 201, 304, 400, 404, 429, 500, 503]))),
                "response_time": _maybe(rng, float(np.round(rng.gamma(2.0, 80.0), 3)) / 1000.0),  # seconds
                "agent_id": str(rng.choice(ids)),
                "tokens_used": int(rng.integers(0, 900)),
            }
        )
    # omnilab's model columns from a separate stream, so the rows above stay what they were: NULL models
    # (internal calls), NULL costs, a model that only one provider has and one name shared by two providers
    mrng = np.random.default_rng(seed + 1000)
    models = [
        ("openai", "gpt-4o"),
        ("anthropic", "claude-sonnet"),
        ("internal", None),
        (None, None),
        ("azure", "gpt-4o"),
    ]
    for item in usage:
        provider, model = models[int(mrng.integers(0, len(models)))]
        item.update(
            provider=provider, model=model, cost_usd=_maybe(mrng, float(np.round(mrng.uniform(0, 0.05), 6)), 0.1)
        )
    usage.append(
        {
            "timestamp": NOW - dt.timedelta(days=DAYS),
            "endpoint": "/edge",
            "method": "GET",
            "status_code": 200,
            "response_time": 0.001,
        }
    )
    out["api_usage"] = usage

    out["memory_entries"] = [
        {
            "id": f"mem_{i}",
            "content": f"memory {i}",
            "memory_type": ["code", "task", "knowledge"][i % 3],
            "agent_id": ids[i % 5],
        }
        for i in range(12)
    ]
    access = []
    for _ in range(200):
        access.append(
            {
                "memory_id": f"mem_{int(rng.integers(0, 12))}",
                "agent_id": None if rng.random() < 0.2 else str(rng.choice(ids)),
                "access_type": str(rng.choice(["read", "search", "update"])),
                "score": None if rng.random() < 0.3 else float(np.round(rng.uniform(0, 1), 6)),
                "timestamp": NOW - dt.timedelta(seconds=float(rng.uniform(-86400, 40 * 86400))),
            }
        )
    out["memory_access"] = access

    files = []
    for i in range(20):
        n_lines = int(rng.integers(1, 900))
        files.append(
            {
                "project_id": f"proj_{i % 3}",
                "file_path": f"src/file_{i}.py",
                # every third file has only its content (as the platform writes it), the last line unterminated
                "line_count": None if i % 3 == 0 else n_lines,
                "content": "\n".join(f"line {k}" for k in range(n_lines)) if i % 3 == 0 else None,
                "created_at": NOW - dt.timedelta(days=40),
                "updated_at": _maybe(rng, NOW - dt.timedelta(days=float(rng.uniform(0, 30))), 0.2),
            }
        )
    out["project_files"] = files
    return out


def _core_insert(engine: sa.Engine, table: str, items: list[dict[str, Any]]) -> None:
    # One executemany per set of keys, so omitted columns get the models' defaults.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        groups[tuple(item)].append(item)
    with engine.begin() as conn:
        for group in groups.values():
            conn.execute(TABLES[table].insert(), group)


def populate(target: Any, seed: int = 0, n_runs: int = 600, *, memories: bool | None = None) -> dict[str, list]:
    """Fill a Lab (via ``lab.insert``) or an Engine (Core inserts) with :func:`rows`.

    ``memories`` (memory_entries and memory_access): default only for an Engine, so the chart and report
    tests do not depend on the vector store. Returns the agent ids and project ids.
    """
    data = rows(seed, n_runs)
    is_lab = not isinstance(target, sa.Engine)
    if memories is None:
        memories = not is_lab
    for table, items in data.items():
        if not memories and table in ("memory_entries", "memory_access"):
            continue
        if is_lab:
            target.insert(table, items)
        else:
            _core_insert(target, table, items)
    return {"agents": [a["id"] for a in data["agents"]], "projects": [p["id"] for p in data["projects"]]}
