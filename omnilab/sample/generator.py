"""Generation of the OmniDev sample, one builder per table.

Every builder draws from one shared random stream, in a fixed order (the order of the calls in
:func:`generate`), so a seed always gives the same rows; summary tables (``agent_stats``, ``project_stats``,
``memory_entries.access_count``) are derived from the generated detail rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from omnilab._checks import is_int
from omnilab.errors import InvalidInput
from omnilab.sample.catalog import (
    AGENTS,
    COMPLEXITIES,
    COMPLEXITY_FACTOR,
    COMPONENTS,
    ENDPOINTS,
    ERROR_MESSAGES,
    ERROR_TYPES,
    PROJECTS,
    SIZES,
    TASK_STATUS_P,
    TASK_STATUSES,
    TASK_TITLES,
    TYPE_PROFILE,
    WORKFLOW_STEPS,
    SampleSize,
    agents_frame,
    anchor_now,
)
from omnilab.sample.draws import maybe, naive, new_uuid, seconds
from omnilab.sample.memories import memory_tables
from omnilab.sample.stdlib import stdlib_modules

__all__ = ["generate", "daily_agent_stats", "check_options"]

Columns = dict[str, Any]  # column name -> values (list, numpy array) of one table


@dataclass
class World:
    """What every builder shares: the random stream, the time window, the agents, sessions and source modules."""

    rng: np.random.Generator
    spec: SampleSize
    n_days: int
    now: dt.datetime
    agents: pd.DataFrame
    modules: tuple[dict[str, Any], ...]
    sessions: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.start = self.now - dt.timedelta(days=self.n_days)
        self.span = (self.now - self.start).total_seconds()
        self.t0 = naive(self.start)
        self.agent_ids = np.array(self.agents["id"])
        self.agent_types = np.array(self.agents["agent_type"])
        self.orchestrators = self.agent_ids[self.agent_types == "orchestrator"]
        # the platform's sessions: tasks, memories, API calls and errors happen in one of them
        self.sessions = np.array(
            [f"sess_{self.rng.bytes(6).hex()}" for _ in range(max(20, self.spec.tasks // 6))], dtype=object
        )

    def times(self, n: int) -> np.ndarray:
        """n sorted timestamps in the window, as datetime64[us] (UTC)."""
        return self.t0 + seconds(np.sort(self.rng.uniform(0, self.span, n)))

    def pick_sessions(self, n: int) -> np.ndarray:
        return self.sessions[self.rng.integers(0, len(self.sessions), n)]


@dataclass
class Projects:
    ids: list[str]
    file_project: np.ndarray  # project index per file
    file_updated: np.ndarray
    workflow_ids: list[str]


@dataclass
class Tasks:
    """The task draws later tables depend on (arrays over tasks, in generation order)."""

    agent_idx: np.ndarray
    task_type: list[str]
    status: np.ndarray
    created: np.ndarray
    complexity: np.ndarray
    est: np.ndarray
    started: np.ndarray
    completed: np.ndarray
    is_started: np.ndarray
    is_done: np.ndarray
    contents: list[str]
    ids: list[str]
    project: np.ndarray  # project index per task

    @property
    def has_agent(self) -> np.ndarray:
        return self.status != "pending"

    @property
    def updated(self) -> np.ndarray:
        return np.where(self.is_done, self.completed, np.where(self.is_started, self.started, self.created))


@dataclass
class Runs:
    """agent_performance draws that the summaries reuse."""

    frame: pd.DataFrame  # agent_id, success, execution_time, tokens_used, timestamp
    task: np.ndarray  # task index per run, -1 for none
    tokens: np.ndarray


# ---------------------------------------------------------------------------------------- entry
def check_options(size: str, days: int | None, anchor: dt.datetime | None) -> tuple[SampleSize, int]:
    """The size's spec and the days of history, or InvalidInput for a bad size, days or anchor."""
    if size not in SIZES:
        raise InvalidInput(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    spec = SIZES[size]
    if days is not None and (not is_int(days) or not 1 <= days <= 3650):
        raise InvalidInput(f"days must be an integer between 1 and 3650, got {days!r}")
    if anchor is not None and anchor.tzinfo is None:
        raise InvalidInput("anchor must be timezone-aware")
    return spec, days or spec.days


def generate(
    size: str = "small", *, seed: int = 0, days: int | None = None, anchor: dt.datetime | None = None
) -> dict[str, Columns]:
    """The sample as columns per table (``{table: {column: values}}``), deterministic for seed and anchor.

    ``anchor`` is the moment "now" of the data (default: the start of the current UTC hour, so windows like
    "the last 7 days" are populated). Timestamps are naive-UTC ``datetime64[us]`` arrays or aware datetimes;
    JSON columns hold lists/dicts.
    """
    spec, n_days = check_options(size, days, anchor)
    w = World(np.random.default_rng(seed), spec, n_days, anchor or anchor_now(), agents_frame(), stdlib_modules())
    out: dict[str, Columns] = {"agents": _agents(w)}
    projects = _projects(w, out)
    tasks = _task_plan(w)
    out["tasks"] = _task_columns(w, tasks, projects)
    out["task_dependencies"] = _task_dependencies(w, tasks)
    runs = _runs(w, tasks, out)
    out["agent_stats"] = daily_agent_stats(runs.frame)
    last_run = runs.frame.groupby("agent_id")["timestamp"].max()
    out["agents"]["last_active"] = [last_run.get(a) for a in w.agent_ids]
    out["api_usage"] = _api_usage(w)
    out["error_logs"] = _error_logs(w, tasks)
    out["system_health"] = _system_health(w)
    out["project_stats"] = _project_stats(w, projects, tasks, runs)
    out.update(memory_tables(w.rng, spec.code_memories, n_days, w.now, out, w.modules, w.sessions))
    return out


# ---------------------------------------------------------------------------------------- builders
def _agents(w: World) -> Columns:
    cols = {c: w.agents[c].tolist() for c in w.agents.columns}
    n = len(w.agents)
    cols.update(created_at=[w.start - dt.timedelta(days=90)] * n, updated_at=[w.start] * n)
    return cols


def _projects(w: World, out: dict[str, Columns]) -> Projects:
    """projects, project_files (one per stdlib module) and workflows (a hotfix and a feature flow each)."""
    project_ids = [new_uuid(w.rng) for _ in PROJECTS]
    out["projects"] = _project_rows(w, project_ids)
    file_project = w.rng.integers(0, len(PROJECTS), len(w.modules))
    file_updated = w.t0 + seconds(w.rng.uniform(0, w.span, len(w.modules)))
    out["project_files"] = _project_files(w, project_ids, file_project, file_updated)
    workflow_ids = [new_uuid(w.rng) for _ in range(2 * len(PROJECTS))]
    out["workflows"] = _workflows(w, project_ids, workflow_ids)
    return Projects(project_ids, file_project, file_updated, workflow_ids)


def _project_rows(w: World, project_ids: list[str]) -> Columns:
    n_proj = len(PROJECTS)
    return {
        "id": project_ids,
        "name": [p[0] for p in PROJECTS],
        "description": [p[1] for p in PROJECTS],
        "language": [p[2] for p in PROJECTS],
        "framework": [p[3] for p in PROJECTS],
        "status": ["active"] * (n_proj - 1) + ["archived"],
        "settings": [{"default_branch": "main", "review_required": bool(i % 2 == 0)} for i in range(n_proj)],
        "created_by": w.rng.choice(w.orchestrators, n_proj).tolist(),
        "created_at": [w.start - dt.timedelta(days=30 + 7 * i) for i in range(n_proj)],
        "updated_at": [w.now] * n_proj,
        "repository_url": [f"https://git.example.org/omnidev/{p[0]}" for p in PROJECTS],
    }


def _project_files(w: World, project_ids: list[str], file_project: np.ndarray, file_updated: np.ndarray) -> Columns:
    modules = w.modules
    return {
        "project_id": [project_ids[i] for i in file_project],
        "file_path": [f"src/{m['file_path']}" for m in modules],
        "content": [m["head"] for m in modules],
        "language": ["python"] * len(modules),
        "size": [m["size"] for m in modules],
        "created_at": [w.start] * len(modules),
        "updated_at": file_updated,
        "line_count": [m["lines"] for m in modules],
        "content_hash": [m["sha256"] for m in modules],
        "last_modified_by": w.rng.choice(w.agent_ids[w.agent_types == "coder"], len(modules)).tolist(),
    }


def _workflows(w: World, project_ids: list[str], workflow_ids: list[str]) -> Columns:
    n_flows = len(workflow_ids)
    return {
        "id": workflow_ids,
        "name": [f"{PROJECTS[i // 2][0]} {'feature' if i % 2 else 'hotfix'} flow" for i in range(n_flows)],
        "description": [
            f"{'Feature' if i % 2 else 'Hotfix'} workflow of {PROJECTS[i // 2][0]}" for i in range(n_flows)
        ],
        "definition": [
            {"steps": [{"name": step, "agent_type": who} for step, who in WORKFLOW_STEPS[: 3 + 2 * (i % 2)]]}
            for i in range(n_flows)
        ],
        "status": w.rng.choice(["active", "completed", "paused"], n_flows).tolist(),
        "created_by": w.rng.choice(w.orchestrators, n_flows).tolist(),
        "created_at": [w.start] * n_flows,
        "updated_at": [w.start] * n_flows,
        "project_id": [project_ids[i // 2] for i in range(n_flows)],
    }


def _task_plan(w: World) -> Tasks:
    """Who does what: each assigned agent does a capability of its own; status mix; timing by type and
    complexity; some agents end with everything done (workloads of 0 show up in analytics)."""
    rng, n_tasks = w.rng, w.spec.tasks
    agent_idx = rng.integers(0, len(w.agent_ids), n_tasks)
    caps = [a[4] for a in AGENTS]
    task_type = [caps[i][rng.integers(0, len(caps[i]))] for i in agent_idx]
    status = rng.choice(TASK_STATUSES, n_tasks, p=TASK_STATUS_P)
    idle_done = {"token_tracker", "village_trainer", "self_scoring"}
    for i, a in enumerate(agent_idx):
        if w.agent_ids[a] in idle_done and status[i] in ("pending", "assigned", "in_progress"):
            status[i] = "completed"
    created = w.times(n_tasks)
    complexity = rng.choice(COMPLEXITIES, n_tasks, p=(0.3, 0.4, 0.2, 0.1))
    est = np.round([TYPE_PROFILE[w.agent_types[a]][0] * COMPLEXITY_FACTOR[c] for a, c in zip(agent_idx, complexity)], 1)
    dur = est * rng.lognormal(0, 0.4, n_tasks)
    started = created + seconds(rng.uniform(5, 600, n_tasks))
    module_names = [m["module"] for m in w.modules] or ["json"]
    contents = []
    for t in task_type:
        templates = TASK_TITLES.get(t, ("{T} for the {m} module",))
        contents.append(
            templates[rng.integers(0, len(templates))].format(
                m=module_names[rng.integers(0, len(module_names))], T=t.replace("_", " ").capitalize()
            )
        )
    ids = [new_uuid(rng) for _ in range(n_tasks)]
    return Tasks(
        agent_idx=agent_idx,
        task_type=task_type,
        status=status,
        created=created,
        complexity=complexity,
        est=est,
        started=started,
        completed=started + seconds(dur),
        is_started=np.isin(status, ("completed", "failed", "in_progress")),
        is_done=np.isin(status, ("completed", "failed")),
        contents=contents,
        ids=ids,
        project=rng.integers(0, len(PROJECTS), n_tasks),
    )


def _task_columns(w: World, t: Tasks, projects: Projects) -> Columns:
    rng, n_tasks, status = w.rng, len(t.ids), t.status
    timeouts = np.array(w.agents["timeout_seconds"])
    return {
        "id": t.ids,
        "content": t.contents,
        "task_type": t.task_type,
        "complexity": t.complexity.tolist(),
        "priority": rng.integers(1, 11, n_tasks).tolist(),
        "agent_id": maybe(w.agent_ids[t.agent_idx], t.has_agent),
        "status": status.tolist(),
        "progress": np.where(
            status == "completed", 100, np.where(status == "in_progress", rng.integers(5, 95, n_tasks), 0)
        ).tolist(),
        "result": [
            {"summary": "done", "files_changed": int(rng.integers(1, 12))} if s == "completed" else None for s in status
        ],
        "error_message": maybe(ERROR_MESSAGES[rng.integers(0, len(ERROR_TYPES), n_tasks)], status == "failed"),
        "context": [{"source": "sample", "complexity_score": round(float(x), 2)} for x in rng.uniform(0, 1, n_tasks)],
        "constraints": [
            {"max_execution_time": int(timeouts[a]), "required_capabilities": [tt]}
            for a, tt in zip(t.agent_idx, t.task_type)
        ],
        "session_id": w.pick_sessions(n_tasks).tolist(),
        "project_id": [projects.ids[p] for p in t.project],
        "created_at": t.created,
        "started_at": maybe(t.started, t.is_started),
        "completed_at": maybe(t.completed, t.is_done),
        "estimated_completion": maybe(
            np.where(t.is_started, t.started, t.created) + seconds(t.est), status != "cancelled"
        ),
        "description": [
            f"{c}. Complexity {x}; requested by the {PROJECTS[p][0]} team."
            for c, x, p in zip(t.contents, t.complexity, t.project)
        ],
        "workflow_id": [
            projects.workflow_ids[2 * p + int(rng.integers(0, 2))] if rng.random() < 0.5 else None for p in t.project
        ],
        "retry_count": np.where(status == "failed", rng.integers(1, 4, n_tasks), 0).tolist(),
        "estimated_duration": t.est.tolist(),
        "updated_at": t.updated,
    }


def _task_dependencies(w: World, t: Tasks) -> Columns:
    """About a fifth of tasks wait for an earlier task of the same project."""
    rng = w.rng
    deps_task, deps_on = [], []
    by_project: dict[int, list[int]] = {}
    for i, p in enumerate(t.project):
        earlier = by_project.setdefault(int(p), [])
        if earlier and rng.random() < 0.2:
            deps_task.append(i)
            deps_on.append(earlier[int(rng.integers(max(0, len(earlier) - 10), len(earlier)))])
        earlier.append(i)
    return {
        "task_id": [t.ids[i] for i in deps_task],
        "depends_on_task_id": [t.ids[i] for i in deps_on],
        "dependency_type": rng.choice(["sequential", "blocking"], len(deps_task), p=(0.8, 0.2)).tolist(),
        "created_at": t.created[np.array(deps_task, dtype=int)],
    }


def _runs(w: World, t: Tasks, out: dict[str, Columns]) -> Runs:
    """agent_performance: per-agent skill, speed and verbosity differ believably; some runs belong to a
    finished task."""
    rng, n_perf, n_agents = w.rng, w.spec.perf_rows, len(w.agent_ids)
    skill = np.clip(0.72 + 0.025 * (np.array(w.agents["priority"]) - 7) + rng.normal(0, 0.05, n_agents), 0.45, 0.98)
    activity = rng.gamma(4.0, 1.0, n_agents)
    perf_agent = rng.choice(n_agents, n_perf, p=activity / activity.sum())
    medians = np.array([TYPE_PROFILE[a][0] for a in w.agent_types]) * rng.uniform(0.7, 1.3, n_agents)
    tok_rate = np.array([TYPE_PROFILE[a][1] for a in w.agent_types]) * rng.uniform(0.8, 1.2, n_agents)
    exec_time = np.round(medians[perf_agent] * rng.lognormal(0, 0.5, n_perf), 3)
    success = rng.random(n_perf) < skill[perf_agent]
    tokens = np.maximum(50, (exec_time * tok_rate[perf_agent] * rng.lognormal(0, 0.3, n_perf))).astype(np.int64)
    err_idx = rng.integers(0, len(ERROR_TYPES), n_perf)
    cap_choice = rng.integers(0, 3, n_perf)
    caps = [a[4] for a in AGENTS]
    perf_task_type = [caps[a][c % len(caps[a])] for a, c in zip(perf_agent, cap_choice)]
    done_tasks = np.flatnonzero(t.is_done)
    link = rng.random(n_perf) < (min(1.0, len(done_tasks) / n_perf) if len(done_tasks) else 0)
    perf_task = np.where(
        link, done_tasks[rng.integers(0, max(1, len(done_tasks)), n_perf)] if len(done_tasks) else -1, -1
    )
    perf_ts = w.times(n_perf)
    task_ids = np.array(t.ids, dtype=object)
    out["agent_performance"] = {
        "agent_id": w.agent_ids[perf_agent].tolist(),
        "task_type": perf_task_type,
        "execution_time": exec_time,
        "tokens_used": tokens,
        "success": success,
        "error_message": maybe(ERROR_MESSAGES[err_idx], ~success),
        "timestamp": perf_ts,
        "task_id": maybe(task_ids[perf_task], perf_task >= 0),
        "error_type": maybe(np.array(ERROR_TYPES, dtype=object)[err_idx], ~success),
    }  # metrics stays NULL, as in the platform's rows
    frame = pd.DataFrame(
        {
            "agent_id": w.agent_ids[perf_agent],
            "success": success,
            "execution_time": exec_time,
            "tokens_used": tokens,
            "timestamp": perf_ts,
        }
    )
    return Runs(frame, perf_task, tokens)


def _api_usage(w: World) -> Columns:
    """API calls (response_time in seconds, as the platform stores it); tokens and cost for external calls."""
    rng, n_api = w.rng, w.spec.api_rows
    endpoints = list(ENDPOINTS)
    ep = rng.choice(len(endpoints), n_api, p=(0.3, 0.2, 0.25, 0.1, 0.1, 0.05))
    codes = rng.choice([200, 201, 400, 429, 500, 503], n_api, p=(0.9, 0.02, 0.02, 0.035, 0.015, 0.01))
    lat = np.array([ENDPOINTS[endpoints[e]][3] for e in ep]) * rng.lognormal(0, 0.45, n_api)
    lat = np.where(codes == 429, lat * 0.05, lat)
    external = np.array([ENDPOINTS[endpoints[e]][1] != "internal" for e in ep])
    api_tokens = np.where(external & (codes < 300), rng.integers(100, 4000, n_api), 0)
    return {
        "endpoint": [endpoints[e] for e in ep],
        "method": [ENDPOINTS[endpoints[e]][0] for e in ep],
        "agent_id": w.agent_ids[rng.integers(0, len(w.agent_ids), n_api)].tolist(),
        "session_id": maybe(w.pick_sessions(n_api), rng.random(n_api) < 0.8),
        "response_time": np.round(lat / 1000.0, 5),
        "status_code": codes,
        "timestamp": w.times(n_api),
        "provider": [ENDPOINTS[endpoints[e]][1] for e in ep],
        "model": [ENDPOINTS[endpoints[e]][2] for e in ep],
        "tokens_used": api_tokens,
        "cost_usd": np.round(api_tokens * 2e-6, 6),
        "request_id": [f"req_{i:08d}" for i in range(n_api)],
    }


def _error_logs(w: World, t: Tasks) -> Columns:
    rng, n_err = w.rng, w.spec.error_rows
    comp = rng.choice(COMPONENTS, n_err, p=(0.3, 0.15, 0.2, 0.2, 0.1, 0.05))
    sev = rng.choice(["warning", "error", "critical"], n_err, p=(0.5, 0.42, 0.08))
    etype = rng.choice(ERROR_TYPES, n_err)
    failed_idx = np.flatnonzero(t.status == "failed")
    err_task = rng.random(n_err) < (0.3 if len(failed_idx) else 0.0)
    task_ids = np.array(t.ids, dtype=object)
    return {
        "component": comp.tolist(),
        "error_type": etype.tolist(),
        "message": [f"{e} in {c}: operation did not complete" for e, c in zip(etype, comp)],
        "stack_trace": [
            f'Traceback (most recent call last):\n  File "{c}.py", line {int(n)}\n{e}'
            for c, n, e in zip(comp, rng.integers(10, 900, n_err), etype)
        ],
        "agent_id": w.agent_ids[rng.integers(0, len(w.agent_ids), n_err)].tolist(),
        "session_id": maybe(w.pick_sessions(n_err), rng.random(n_err) < 0.7),
        "severity": sev.tolist(),
        "timestamp": w.times(n_err),
        "task_id": maybe(
            task_ids[failed_idx[rng.integers(0, max(1, len(failed_idx)), n_err)]]
            if len(failed_idx)
            else [None] * n_err,
            err_task,
        ),
        "context": [{"attempt": int(a)} for a in rng.integers(1, 4, n_err)],
        "resolved": rng.random(n_err) < 0.6,
    }


def _system_health(w: World) -> Columns:
    """Every component sampled on a fixed cadence; the readings go into ``metrics``."""
    rng, every = w.rng, w.spec.health_every_minutes
    steps = int(w.n_days * 24 * 60 / every)
    hs = np.repeat(w.t0 + seconds(np.arange(steps) * every * 60.0), len(COMPONENTS))
    hc = np.tile(np.array(COMPONENTS), steps)
    n_h = len(hs)
    cpu = np.round(np.clip(rng.normal(45, 15, n_h), 1, 100), 1)
    status_h = np.where(cpu > 90, "degraded", "healthy")
    status_h[rng.random(n_h) < 0.002] = "down"
    mem = np.round(np.clip(rng.normal(60, 12, n_h), 1, 100), 1)
    disk = np.round(np.clip(rng.normal(55, 5, n_h), 1, 100), 1)
    active, queue = rng.integers(3, 29, n_h), rng.poisson(6, n_h)
    resp = np.round(rng.lognormal(3.5, 0.5, n_h), 2)
    readings = zip(cpu.tolist(), mem.tolist(), disk.tolist(), active.tolist(), queue.tolist(), resp.tolist())
    return {
        "component": hc.tolist(),
        "status": status_h.tolist(),
        "metrics": [
            {
                "cpu_percent": c,
                "memory_percent": m,
                "disk_percent": d,
                "active_agents": a,
                "queue_depth": q,
                "response_time_ms": r,
            }
            for c, m, d, a, q, r in readings
        ],
        "message": [
            None if s == "healthy" else f"cpu at {c:.0f}%" if s == "degraded" else "no answer to the health check"
            for s, c in zip(status_h, cpu)
        ],
        "timestamp": hs,
    }


def _project_stats(w: World, projects: Projects, t: Tasks, runs: Runs) -> Columns:
    """Summarized from the tasks, files and runs above."""
    status, n_proj = t.status, len(projects.ids)
    tdf = pd.DataFrame(
        {
            "p": t.project,
            "status": status,
            "agent": maybe(w.agent_ids[t.agent_idx], t.has_agent),
            "dur": np.where(status == "completed", (t.completed - t.started) / np.timedelta64(1, "s"), np.nan),
            "updated": t.updated,
        }
    )
    fdf = pd.DataFrame(
        {"p": projects.file_project, "lines": [m["lines"] for m in w.modules], "updated": projects.file_updated}
    )
    linked = runs.task >= 0
    kdf = pd.DataFrame({"p": t.project[runs.task[linked]], "tok": runs.tokens[linked]})
    last = pd.concat([tdf[["p", "updated"]], fdf[["p", "updated"]]]).groupby("p")["updated"].max()
    ps = range(n_proj)
    return {
        "project_id": projects.ids,
        "files_count": [int((fdf.p == p).sum()) for p in ps],
        "lines_of_code": [int(fdf.lines[fdf.p == p].sum()) for p in ps],
        "tasks_completed": [int(((tdf.p == p) & (tdf.status == "completed")).sum()) for p in ps],
        "agents_used": [int(tdf.agent[tdf.p == p].nunique()) for p in ps],
        "last_activity": [last.get(p) for p in ps],
        "tasks_total": [int((tdf.p == p).sum()) for p in ps],
        "tasks_failed": [int(((tdf.p == p) & (tdf.status == "failed")).sum()) for p in ps],
        "total_tokens": [int(kdf.tok[kdf.p == p].sum()) for p in ps],
        "avg_task_duration": [None if np.isnan(v) else float(v) for v in (tdf.dur[tdf.p == p].mean() for p in ps)],
        "updated_at": [w.now] * n_proj,
    }


def daily_agent_stats(perf: pd.DataFrame) -> Columns:
    """agent_stats rows from agent_performance rows: one per agent per UTC date with runs.

    ``perf`` has agent_id, success, execution_time (s), tokens_used and timestamp (naive UTC). A run counts
    as completed when it succeeded and as failed otherwise; average_response_time is the mean execution time
    and success_rate the share of successful runs (0..1).
    """
    day = pd.to_datetime(perf["timestamp"]).dt.floor("D")
    g = perf.assign(date=day, ok=perf["success"].astype(bool)).groupby(["agent_id", "date"], sort=True)
    stats = g.agg(
        runs=("ok", "size"),
        completed=("ok", "sum"),
        total_time=("execution_time", "sum"),
        tokens=("tokens_used", "sum"),
        avg_time=("execution_time", "mean"),
    ).reset_index()
    return {
        "agent_id": stats["agent_id"].tolist(),
        "tasks_completed": stats["completed"].astype(int).tolist(),
        "tasks_failed": (stats["runs"] - stats["completed"]).astype(int).tolist(),
        "total_execution_time": stats["total_time"].tolist(),
        "total_tokens_used": stats["tokens"].astype(int).tolist(),
        "average_response_time": stats["avg_time"].tolist(),
        "success_rate": (stats["completed"] / stats["runs"]).tolist(),
        "date": [d.date() for d in stats["date"]],
    }
