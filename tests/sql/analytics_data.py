"""Seeded random data for the analytics tests, with the awkward cases built in.

- agents with no runs at all, agents whose runs are all older than the window, agents whose tasks
  are all finished, agents with capabilities that contain others as substrings;
- runs exactly at ``now - days`` (inside), a microsecond before it (outside), exactly at ``now``
  (inside) and after ``now`` (outside).
"""

from __future__ import annotations

import datetime as dt

import numpy as np

NOW = dt.datetime(2026, 3, 15, 12, 0, 0, tzinfo=dt.timezone.utc)
DAYS = 7
US = dt.timedelta(microseconds=1)

CAPABILITIES = ["code", "code_review", "coder", "testing", "unit_testing_helper", "deploy", "docs"]
TASK_TYPES = ["code", "test", "review", "deploy", None]


def populate(lab, seed: int = 0, n_runs: int = 600) -> dict[str, list]:
    """Fill ``lab`` with seeded random rows; returns the inserted agent ids and project ids."""
    rng = np.random.default_rng(seed)
    systems = ["alpha", "beta", "gamma"]
    agents = []
    for i in range(9):
        caps = sorted(set(rng.choice(CAPABILITIES, size=int(rng.integers(0, 4)), replace=False).tolist()))
        agents.append({
            "id": f"agent_{i}", "name": f"Agent {i}", "system": systems[i % 3],
            "agent_type": ["coder", "tester", "reviewer"][i % 3],
            "status": ["idle", "busy", "idle", "error", "idle", "disabled", "idle", "busy", "idle"][i],
            "priority": int(rng.integers(1, 11)), "capabilities": caps,
        })
    # fixed capabilities so the exact-match cases are always exercised
    agents[0]["capabilities"] = ["unit_testing_helper", "code_review"]
    agents[2]["capabilities"] = ["testing", "code"]
    agents[4]["capabilities"] = ["coder"]
    lab.insert("agents", agents)
    ids = [a["id"] for a in agents]
    runners = ids[:7]  # agent_7 and agent_8 never run; agent_6 only ran long ago

    projects = [{"id": f"proj_{i}", "name": f"Project {i}"} for i in range(4)]
    lab.insert("projects", projects)

    statuses = ["pending", "assigned", "in_progress", "completed", "failed", "cancelled"]
    tasks = []
    for i in range(60):
        status = str(rng.choice(statuses))
        created = NOW - dt.timedelta(days=float(rng.uniform(0, 20)))
        started = created + dt.timedelta(seconds=float(rng.uniform(1, 600)))
        completed = started + dt.timedelta(seconds=float(rng.uniform(1, 5000))) if status == "completed" else None
        agent = None if i % 11 == 0 else str(rng.choice(ids))
        tasks.append({
            "id": f"task_{i}", "title": f"Task {i}", "status": status,
            "agent_id": agent, "project_id": None if i % 7 == 0 else f"proj_{i % 3}",
            "task_type": TASK_TYPES[i % 4], "created_at": created, "updated_at": created + dt.timedelta(hours=1),
            "started_at": started, "completed_at": completed,
        })
    # agent_1's tasks are all finished: it must still show 0 active tasks
    for t in tasks:
        if t["agent_id"] == "agent_1" and t["status"] in ("pending", "assigned", "in_progress"):
            t["status"] = "completed"
            t["completed_at"] = t["started_at"] + dt.timedelta(seconds=30)
    lab.insert("tasks", tasks)

    runs = []
    for _ in range(n_runs):
        agent = str(rng.choice(runners[:6]))
        runs.append({
            "agent_id": agent, "task_id": f"task_{int(rng.integers(0, 60))}" if rng.random() < 0.7 else None,
            "task_type": TASK_TYPES[int(rng.integers(0, 5))],
            "timestamp": NOW - dt.timedelta(seconds=float(rng.uniform(-2 * 86400, 40 * 86400))),
            "execution_time": float(np.round(rng.lognormal(1.0, 1.0), 6)),
            "success": bool(rng.random() < 0.8), "tokens_used": int(rng.integers(0, 5000)),
            "error_type": None,
        })
    boundary = [
        NOW - dt.timedelta(days=DAYS),           # exactly `days` ago: inside
        NOW - dt.timedelta(days=DAYS) - US,      # a microsecond older: outside
        NOW,                                     # exactly now: inside
        NOW + US,                                # the future: outside
        NOW - dt.timedelta(days=30),             # the 30-day boundary: inside for days=30
        NOW - dt.timedelta(days=30) - US,
    ]
    for j, ts in enumerate(boundary):
        runs.append({"agent_id": "agent_3", "task_id": None, "task_type": "boundary", "timestamp": ts,
                     "execution_time": 100.0 + j, "success": j % 2 == 0, "tokens_used": 1000 * (j + 1),
                     "error_type": None})
    runs.append({"agent_id": "agent_6", "task_id": None, "task_type": "code",
                 "timestamp": NOW - dt.timedelta(days=90), "execution_time": 5.0, "success": True,
                 "tokens_used": 10, "error_type": None})
    for r in runs:
        if not r["success"]:
            r["error_type"] = str(rng.choice(["timeout", "crash", "bad_output"]))
    lab.insert("agent_performance", runs)

    errors = []
    for i in range(150):
        errors.append({
            "timestamp": NOW - dt.timedelta(seconds=float(rng.uniform(-86400, 40 * 86400))),
            "component": str(rng.choice(["api", "memory", "scheduler"])),
            "severity": str(rng.choice(["warning", "error", "critical"])),
            "error_type": str(rng.choice(["Timeout", "ValueError", "KeyError"])),
            "message": f"error {i}", "agent_id": None if rng.random() < 0.3 else str(rng.choice(ids)),
            "resolved": bool(rng.random() < 0.4),
        })
    errors.append({"timestamp": NOW - dt.timedelta(days=DAYS), "component": "edge", "severity": "error",
                   "error_type": "Boundary", "message": "exactly days ago", "resolved": False})
    errors.append({"timestamp": NOW - dt.timedelta(days=DAYS) - US, "component": "edge", "severity": "error",
                   "error_type": "Outside", "message": "just too old", "resolved": False})
    lab.insert("error_logs", errors)

    usage = []
    for _ in range(500):
        usage.append({
            "timestamp": NOW - dt.timedelta(seconds=float(rng.uniform(-86400, 40 * 86400))),
            "endpoint": str(rng.choice(["/chat", "/embed", "/search", "/health"])),
            "method": str(rng.choice(["GET", "POST"])),
            "status_code": int(rng.choice([200, 200, 200, 201, 304, 400, 404, 429, 500, 503])),
            "response_time_ms": float(np.round(rng.gamma(2.0, 80.0), 3)),
            "agent_id": str(rng.choice(ids)), "tokens_used": int(rng.integers(0, 900)),
        })
    usage.append({"timestamp": NOW - dt.timedelta(days=DAYS), "endpoint": "/edge", "method": "GET",
                  "status_code": 200, "response_time_ms": 1.0})
    lab.insert("api_usage", usage)

    memories = [{"content": f"memory {i}", "memory_type": ["code", "task", "knowledge"][i % 3],
                 "agent_id": ids[i % 5]} for i in range(12)]
    lab.insert("memory_entries", memories)
    mem_ids = lab.table("memory_entries")["id"].tolist()
    access = []
    for _ in range(200):
        access.append({
            "memory_id": int(rng.choice(mem_ids)), "agent_id": None if rng.random() < 0.2 else str(rng.choice(ids)),
            "access_type": str(rng.choice(["read", "search", "update"])),
            "score": None if rng.random() < 0.3 else float(np.round(rng.uniform(0, 1), 6)),
            "accessed_at": NOW - dt.timedelta(seconds=float(rng.uniform(-86400, 40 * 86400))),
        })
    lab.insert("memory_access", access)

    files = [{"project_id": f"proj_{i % 3}", "file_path": f"src/file_{i}.py", "line_count": int(rng.integers(1, 900)),
              "updated_at": NOW - dt.timedelta(days=float(rng.uniform(0, 30)))} for i in range(20)]
    lab.insert("project_files", files)
    return {"agents": ids, "projects": [p["id"] for p in projects]}
