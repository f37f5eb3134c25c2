"""The OmniDev sample dataset: the platform's 29 agents plus generated operations data and memories
taken from real text (functions and module docstrings of the Python standard library).

Everything is deterministic for a given ``seed`` and ``anchor`` (the moment "now" of the data, by default
the start of the current UTC hour, so windows like "the last 7 days" are populated).
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import importlib.util
import logging
import sysconfig
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from omnilab.errors import InvalidInput

if TYPE_CHECKING:
    from omnilab.lab import Lab

__all__ = ["AGENTS", "SIZES", "load", "generate", "agents_frame", "stdlib_functions", "stdlib_modules", "anchor_now"]

log = logging.getLogger(__name__)

# (system, name, agent_type, priority, capabilities) — the platform's 29 agents.
AGENTS: tuple[tuple[str, str, str, int, tuple[str, ...]], ...] = (
    ("The Agency", "architect", "architect", 9, ("system_design", "architecture_review", "api_design", "planning")),
    ("The Agency", "coder", "coder", 8, ("code_generation", "refactoring", "debugging", "documentation")),
    ("The Agency", "tester", "tester", 7, ("unit_testing", "integration_testing", "test_generation")),
    ("The Agency", "reviewer", "reviewer", 8, ("code_review", "security_review", "style_check")),
    ("The Agency", "fixer", "fixer", 9, ("bug_fixing", "debugging", "root_cause_analysis")),
    ("The Agency", "deployer", "deployer", 6, ("deployment", "ci_cd", "containerization")),
    ("MeistroCraft", "gpt4_orchestrator", "orchestrator", 10, ("task_planning", "delegation", "workflow_management")),
    ("MeistroCraft", "claude_executor", "coder", 8, ("code_generation", "code_execution", "refactoring")),
    ("MeistroCraft", "session_manager", "memory", 7, ("session_management", "context_tracking", "memory_retrieval")),
    ("MeistroCraft", "github_integrator", "deployer", 6, ("git_operations", "pull_requests", "deployment")),
    ("MeistroCraft", "token_tracker", "analyzer", 5, ("token_accounting", "cost_analysis", "usage_reporting")),
    ("OBELISK", "code_architect", "architect", 10, ("system_design", "code_structure", "api_design")),
    ("OBELISK", "code_generator", "coder", 8, ("code_generation", "boilerplate_generation", "documentation")),
    ("OBELISK", "quality_checker", "reviewer", 8, ("code_review", "static_analysis", "quality_metrics")),
    ("OBELISK", "test_harness", "tester", 7, ("test_generation", "unit_testing", "coverage_analysis")),
    ("OBELISK", "ideas_agent", "analyzer", 6, ("ideation", "requirements_analysis", "brainstorming")),
    ("OBELISK", "creativity_agent", "analyzer", 6, ("creative_solutions", "brainstorming", "design_exploration")),
    ("OBELISK", "self_scoring", "analyzer", 5, ("self_evaluation", "quality_metrics", "scoring")),
    ("AI-Development-Team", "ai_dev_team_project_manager", "orchestrator", 9,
     ("project_management", "task_planning", "delegation")),
    ("AI-Development-Team", "ai_dev_team_architect", "architect", 9, ("system_design", "architecture_review")),
    ("AI-Development-Team", "ai_dev_team_developer", "coder", 8, ("code_generation", "debugging", "refactoring")),
    ("AI-Development-Team", "ai_dev_team_qa", "tester", 8, ("integration_testing", "unit_testing", "bug_reporting")),
    ("AI-Development-Team", "ai_dev_team_devops", "deployer", 8, ("deployment", "ci_cd", "monitoring")),
    ("AI-Development-Team", "ai_dev_team_review", "reviewer", 8, ("code_review", "security_review")),
    ("Village of Intelligence", "village_thinker", "analyzer", 10,
     ("reasoning", "requirements_analysis", "root_cause_analysis")),
    ("Village of Intelligence", "village_builder", "coder", 9, ("code_generation", "prototyping", "refactoring")),
    ("Village of Intelligence", "village_artist", "creative", 8, ("ui_design", "creative_solutions", "visualization")),
    ("Village of Intelligence", "village_guardian", "guardian", 10,
     ("security_review", "policy_enforcement", "monitoring")),
    ("Village of Intelligence", "village_trainer", "trainer", 9, ("model_training", "evaluation", "curriculum_design")),
)

# Per agent type: median execution time (s) and tokens per second of work.
_TYPE_PROFILE = {
    "architect": (140.0, 38.0), "coder": (75.0, 55.0), "tester": (50.0, 30.0), "reviewer": (35.0, 60.0),
    "fixer": (90.0, 45.0), "deployer": (110.0, 8.0), "orchestrator": (20.0, 70.0), "memory": (6.0, 20.0),
    "creative": (60.0, 50.0), "guardian": (25.0, 35.0), "analyzer": (30.0, 65.0), "trainer": (240.0, 25.0),
}
_TASK_STATUSES = ("completed", "failed", "in_progress", "assigned", "pending", "cancelled")
_TASK_STATUS_P = (0.60, 0.08, 0.07, 0.05, 0.15, 0.05)
_COMPLEXITIES = ("simple", "medium", "complex", "expert")
_COMPLEXITY_FACTOR = {"simple": 0.5, "medium": 1.0, "complex": 1.8, "expert": 3.0}
_ERROR_TYPES = ("TimeoutError", "RateLimitError", "ValidationError", "ToolExecutionError", "ContextOverflow")
_COMPONENTS = ("task_executor", "memory_service", "api_gateway", "agent_runtime", "scheduler", "vector_index")
_ENDPOINTS = {  # endpoint -> (method, provider, model, median latency ms)
    "/v1/chat/completions": ("POST", "openai", "gpt-4o", 1800.0),
    "/v1/messages": ("POST", "anthropic", "claude-sonnet", 2100.0),
    "/v1/embeddings": ("POST", "openai", "text-embedding-ada-002", 180.0),
    "/api/tasks": ("GET", "internal", None, 25.0),
    "/api/memory/search": ("POST", "internal", None, 60.0),
    "/api/agents/status": ("GET", "internal", None, 12.0),
}
_PROJECTS = (
    ("omnidev-core", "The platform's orchestration core", "python"),
    ("memory-service", "Vector memory and retrieval service", "python"),
    ("agent-dashboard", "Web dashboard for agent monitoring", "typescript"),
    ("code-review-bot", "Automated pull-request reviews", "python"),
    ("deploy-pipeline", "CI/CD and release automation", "yaml"),
    ("village-sim", "Village of Intelligence simulation", "python"),
)
_TASK_TITLES = {  # capability -> title templates; {m} is a stdlib module name used as a realistic subject
    "code_generation": ("Implement {m} adapter", "Generate client for {m}", "Write helper around {m}"),
    "refactoring": ("Refactor {m} integration", "Simplify {m} error handling"),
    "debugging": ("Debug failure in {m} wrapper", "Investigate flaky {m} call"),
    "documentation": ("Document the {m} module usage",),
    "unit_testing": ("Add unit tests for {m} wrapper",),
    "integration_testing": ("Integration test of {m} pipeline",),
    "test_generation": ("Generate property tests for {m}",),
    "code_review": ("Review pull request touching {m}",),
    "security_review": ("Security review of {m} input handling",),
    "bug_fixing": ("Fix regression in {m} parsing", "Fix crash when {m} gets empty input"),
    "deployment": ("Deploy service using {m}", "Roll back release of {m} change"),
    "system_design": ("Design storage layout for {m} data",),
    "task_planning": ("Plan sprint work on {m}",),
}
_DEFAULT_MODULES = (
    "json.decoder", "json.encoder", "textwrap", "string", "shutil", "functools", "heapq", "bisect", "statistics",
    "fractions", "difflib", "csv", "argparse", "calendar", "ipaddress", "urllib.parse", "email.utils", "pathlib",
    "tempfile", "random", "glob", "fnmatch", "base64", "html", "configparser", "pprint", "queue", "shlex",
    "zipfile", "gzip", "copy", "contextlib", "dataclasses", "enum", "inspect", "uuid", "posixpath", "operator",
    "colorsys", "datetime", "decimal", "_pydecimal", "locale", "gettext", "mimetypes", "netrc", "plistlib",
    "quopri", "sched", "secrets", "selectors", "smtplib", "socketserver", "sysconfig", "tarfile", "tokenize",
    "traceback", "typing", "weakref", "wave", "zipimport", "collections", "logging", "threading", "subprocess",
    "http.cookies", "http.client", "xml.dom.minidom", "unittest.case", "asyncio.tasks", "concurrent.futures._base",
)


@dataclass(frozen=True)
class SampleSize:
    days: int
    perf_rows: int
    tasks: int
    api_rows: int
    error_rows: int
    health_every_minutes: int
    code_memories: int


SIZES = {
    "small": SampleSize(days=30, perf_rows=8_000, tasks=600, api_rows=5_000, error_rows=400,
                        health_every_minutes=60, code_memories=600),
    "large": SampleSize(days=90, perf_rows=1_050_000, tasks=20_000, api_rows=200_000, error_rows=20_000,
                        health_every_minutes=15, code_memories=3_000),
}


def anchor_now() -> dt.datetime:
    """The default "now" of generated data: the start of the current UTC hour."""
    return dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)


def agents_frame() -> pd.DataFrame:
    """The 29 agents as rows of the agents table (id = name)."""
    return pd.DataFrame(
        [
            {"id": name, "name": name, "system": system, "agent_type": atype, "priority": prio,
             "capabilities": list(caps), "status": "idle", "version": "1.0",
             "description": f"{atype} agent of {system}"}
            for system, name, atype, prio, caps in AGENTS
        ]
    )


# ----------------------------------------------------------------------------- standard-library text
def _stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _module_source(module: str) -> tuple[str, Path] | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    path = Path(spec.origin)
    try:
        return path.read_text(encoding="utf-8"), path
    except OSError:
        return None


def _rel(path: Path) -> str:
    try:
        return path.relative_to(_stdlib_root()).as_posix()
    except ValueError:
        return path.name


@lru_cache(maxsize=4)
def stdlib_modules(modules: tuple[str, ...] = _DEFAULT_MODULES) -> tuple[dict[str, Any], ...]:
    """Module docstrings of the given standard-library modules (parsed with ``ast``, never imported)."""
    out = []
    for module in modules:
        found = _module_source(module)
        if found is None:
            continue
        source, path = found
        doc = ast.get_docstring(ast.parse(source))
        if doc and len(doc.split()) >= 8:
            out.append({"module": module, "file_path": _rel(path), "docstring": doc.strip(),
                        "lines": source.count("\n") + 1, "size_bytes": len(source.encode())})
    return tuple(out)


@lru_cache(maxsize=4)
def stdlib_functions(modules: tuple[str, ...] = _DEFAULT_MODULES, max_chars: int = 4_000) -> tuple[dict[str, Any], ...]:
    """Documented functions and methods of the given modules, in module then line order.

    Each: module, file_path, function_name (qualified), lineno, source (with docstring), docstring,
    code (the source with its docstring removed).
    """
    out: list[dict[str, Any]] = []
    for module in modules:
        found = _module_source(module)
        if found is None:
            continue
        source, path = found
        tree = ast.parse(source)
        lines = source.splitlines(keepends=True)
        for qualname, node in _walk_functions(tree):
            doc = ast.get_docstring(node)
            if not doc or len(doc.split()) < 4:
                continue
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            segment = "".join(lines[first - 1: node.end_lineno])
            if len(segment) > max_chars:
                continue
            code = _strip_docstring(node, lines)
            if len(code.strip().splitlines()) < 2:
                continue
            out.append({"module": module, "file_path": _rel(path), "function_name": qualname,
                        "lineno": node.lineno, "source": segment, "docstring": doc.strip(), "code": code})
    return tuple(out)


def _walk_functions(tree: ast.Module) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append((node.name, node))
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found.append((f"{node.name}.{item.name}", item))
    return found


def _strip_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> str:
    """The function's source lines without the docstring statement."""
    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    body_lines = lines[first - 1: node.end_lineno]
    doc_node = node.body[0]
    start, end = doc_node.lineno - first, doc_node.end_lineno - first + 1  # type: ignore[operator]
    kept = body_lines[:start] + body_lines[end:]
    return "".join(kept)


# ---------------------------------------------------------------------------------------- generation
def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def generate(size: str = "small", *, seed: int = 0, days: int | None = None,
             anchor: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """The sample as columns per table (``{table: {column: values}}``), deterministic for seed and anchor."""
    if size not in SIZES:
        raise InvalidInput(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    spec = SIZES[size]
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650):
        raise InvalidInput(f"days must be an integer between 1 and 3650, got {days!r}")
    n_days = days or spec.days
    now = anchor or anchor_now()
    if now.tzinfo is None:
        raise InvalidInput("anchor must be timezone-aware")
    rng = np.random.default_rng(seed)
    start = now - dt.timedelta(days=n_days)
    span = (now - start).total_seconds()

    def times(n: int) -> np.ndarray:
        """n sorted timestamps in the window, as datetime64[us] (UTC)."""
        offsets = np.sort(rng.uniform(0, span, n))
        base = np.datetime64(start.replace(tzinfo=None), "us")
        return base + (offsets * 1e6).astype("timedelta64[us]")

    out: dict[str, dict[str, Any]] = {}
    agents = agents_frame()
    out["agents"] = {c: agents[c].tolist() for c in agents.columns}
    agent_ids = np.array(agents["id"])
    agent_types = np.array(agents["agent_type"])

    # projects, files, workflows
    project_ids = [_uuid(rng) for _ in _PROJECTS]
    out["projects"] = {
        "id": project_ids, "name": [p[0] for p in _PROJECTS], "description": [p[1] for p in _PROJECTS],
        "language": [p[2] for p in _PROJECTS], "status": ["active"] * (len(_PROJECTS) - 1) + ["archived"],
        "repository_url": [f"https://git.example.org/omnidev/{p[0]}" for p in _PROJECTS],
        "settings": [{"default_branch": "main", "review_required": bool(i % 2 == 0)} for i in range(len(_PROJECTS))],
        "created_at": [start - dt.timedelta(days=30 + 7 * i) for i in range(len(_PROJECTS))],
    }
    modules = stdlib_modules()
    file_project = rng.integers(0, len(project_ids), len(modules))
    out["project_files"] = {
        "project_id": [project_ids[i] for i in file_project],
        "file_path": [f"src/{m['file_path']}" for m in modules],
        "language": ["python"] * len(modules),
        "size_bytes": [m["size_bytes"] for m in modules],
        "line_count": [m["lines"] for m in modules],
        "content_hash": [hashlib.sha256(m["docstring"].encode()).hexdigest() for m in modules],
        "last_modified_by": rng.choice(agent_ids[agent_types == "coder"], len(modules)).tolist(),
    }
    workflow_ids, workflow_project = [], []
    steps_by_wf = []
    for p in range(len(project_ids)):
        for w in range(2):
            workflow_ids.append(_uuid(rng))
            workflow_project.append(project_ids[p])
            steps_by_wf.append(["design", "implement", "test", "review", "deploy"][: 3 + w * 2])
    out["workflows"] = {
        "id": workflow_ids, "name": [f"{_PROJECTS[i // 2][0]} {'feature' if i % 2 else 'hotfix'} flow"
                                     for i in range(len(workflow_ids))],
        "status": rng.choice(["active", "completed", "pending"], len(workflow_ids)).tolist(),
        "steps": steps_by_wf, "project_id": workflow_project,
        "created_by": rng.choice(agent_ids[agent_types == "orchestrator"], len(workflow_ids)).tolist(),
    }

    # tasks: each assigned agent does a capability of its own; status mix; some agents end with all done
    n_tasks = spec.tasks
    task_agent_idx = rng.integers(0, len(agent_ids), n_tasks)
    caps = [AGENTS[i][4] for i in range(len(AGENTS))]
    task_type = [caps[i][rng.integers(0, len(caps[i]))] for i in task_agent_idx]
    status = rng.choice(_TASK_STATUSES, n_tasks, p=_TASK_STATUS_P)
    idle_done = {"token_tracker", "village_trainer", "self_scoring"}  # workloads of 0 show up in analytics
    for i, a in enumerate(task_agent_idx):
        if agent_ids[a] in idle_done and status[i] in ("pending", "assigned", "in_progress"):
            status[i] = "completed"
    created = times(n_tasks)
    complexity = rng.choice(_COMPLEXITIES, n_tasks, p=(0.3, 0.4, 0.2, 0.1))
    est = np.array([_TYPE_PROFILE[agent_types[a]][0] * _COMPLEXITY_FACTOR[c]
                    for a, c in zip(task_agent_idx, complexity)])
    dur = est * rng.lognormal(0, 0.4, n_tasks)
    started = created + (rng.uniform(5, 600, n_tasks) * 1e6).astype("timedelta64[us]")
    completed = started + (dur * 1e6).astype("timedelta64[us]")
    is_started = np.isin(status, ("completed", "failed", "in_progress"))
    is_done = np.isin(status, ("completed", "failed"))
    module_names = [m["module"] for m in modules] or ["json"]
    titles = []
    for t in task_type:
        templates = _TASK_TITLES.get(t, ("{T} for the {m} module",))
        titles.append(templates[rng.integers(0, len(templates))].format(
            m=module_names[rng.integers(0, len(module_names))], T=t.replace("_", " ").capitalize()))
    task_ids = [_uuid(rng) for _ in range(n_tasks)]
    task_project = rng.integers(0, len(project_ids), n_tasks)
    has_agent = status != "pending"
    out["tasks"] = {
        "id": task_ids, "title": titles,
        "description": [f"{title}. Complexity {c}; requested by the {_PROJECTS[p][0]} team." for title, c, p
                        in zip(titles, complexity, task_project)],
        "task_type": task_type, "status": status.tolist(), "complexity": complexity.tolist(),
        "priority": rng.integers(1, 11, n_tasks).tolist(),
        "agent_id": [agent_ids[a] if h else None for a, h in zip(task_agent_idx, has_agent)],
        "project_id": [project_ids[p] for p in task_project],
        "workflow_id": [workflow_ids[2 * p + int(rng.integers(0, 2))] if rng.random() < 0.5 else None
                        for p in task_project],
        "progress": np.where(status == "completed", 100,
                             np.where(status == "in_progress", rng.integers(5, 95, n_tasks), 0)).tolist(),
        "context": [{"source": "sample", "complexity_score": round(float(x), 2)} for x in rng.uniform(0, 1, n_tasks)],
        "result": [{"summary": "done", "files_changed": int(rng.integers(1, 12))} if s == "completed" else None
                   for s in status],
        "error_message": [f"{_ERROR_TYPES[rng.integers(0, len(_ERROR_TYPES))]}: step failed" if s == "failed" else None
                          for s in status],
        "estimated_duration": np.round(est, 1).tolist(),
        "created_at": created,
        "started_at": [s if ok else None for s, ok in zip(started, is_started)],
        "completed_at": [c if ok else None for c, ok in zip(completed, is_done)],
    }
    # dependencies: about a fifth of tasks wait for an earlier task of the same project
    deps_task, deps_on = [], []
    by_project: dict[int, list[int]] = {}
    for i, p in enumerate(task_project):
        earlier = by_project.setdefault(int(p), [])
        if earlier and rng.random() < 0.2:
            deps_task.append(task_ids[i])
            deps_on.append(task_ids[earlier[int(rng.integers(max(0, len(earlier) - 10), len(earlier)))]])
        earlier.append(i)
    out["task_dependencies"] = {"task_id": deps_task, "depends_on_id": deps_on,
                                "dependency_type": ["blocks"] * len(deps_task)}

    # agent_performance: per-agent skill, speed and verbosity differ believably
    n_perf = spec.perf_rows
    skill = np.clip(0.72 + 0.025 * (np.array(agents["priority"]) - 7) + rng.normal(0, 0.05, len(agent_ids)), 0.45, 0.98)
    activity = rng.gamma(4.0, 1.0, len(agent_ids))
    perf_agent = rng.choice(len(agent_ids), n_perf, p=activity / activity.sum())
    medians = np.array([_TYPE_PROFILE[t][0] for t in agent_types]) * rng.uniform(0.7, 1.3, len(agent_ids))
    tok_rate = np.array([_TYPE_PROFILE[t][1] for t in agent_types]) * rng.uniform(0.8, 1.2, len(agent_ids))
    exec_time = np.round(medians[perf_agent] * rng.lognormal(0, 0.5, n_perf), 3)
    success = rng.random(n_perf) < skill[perf_agent]
    tokens = np.maximum(50, (exec_time * tok_rate[perf_agent] * rng.lognormal(0, 0.3, n_perf))).astype(np.int64)
    perf_err = np.where(success, None, np.array(_ERROR_TYPES, dtype=object)[rng.integers(0, 5, n_perf)])
    cap_choice = rng.integers(0, 3, n_perf)
    perf_task_type = [caps[a][c % len(caps[a])] for a, c in zip(perf_agent, cap_choice)]
    done_tasks = [i for i in range(n_tasks) if is_done[i]]
    link = rng.random(n_perf) < (min(1.0, len(done_tasks) / n_perf) if done_tasks else 0)
    out["agent_performance"] = {
        "agent_id": agent_ids[perf_agent].tolist(),
        "task_id": [task_ids[done_tasks[int(rng.integers(0, len(done_tasks)))]] if lk else None for lk in link],
        "task_type": perf_task_type,
        "timestamp": times(n_perf),
        "execution_time": exec_time, "success": success, "tokens_used": tokens,
        "error_type": perf_err.tolist(),
        "metrics": [{}] * n_perf,
    }
    # agent_stats: the perf rows summarized (what the platform's nightly job would store)
    perf = pd.DataFrame({"agent_id": agent_ids[perf_agent], "success": success, "t": exec_time, "tok": tokens,
                         "ts": out["agent_performance"]["timestamp"]})
    g = perf.groupby("agent_id")
    stats = pd.DataFrame({
        "total_tasks": g.size(), "completed_tasks": g["success"].sum(), "avg_execution_time": g["t"].mean(),
        "total_tokens": g["tok"].sum(), "last_task_at": g["ts"].max(),
    }).reindex(agent_ids)
    stats["failed_tasks"] = stats["total_tasks"] - stats["completed_tasks"]
    stats = stats.fillna({"total_tasks": 0, "completed_tasks": 0, "failed_tasks": 0, "avg_execution_time": 0.0,
                          "total_tokens": 0})
    out["agent_stats"] = {
        "agent_id": agent_ids.tolist(),
        "total_tasks": stats["total_tasks"].astype(int).tolist(),
        "completed_tasks": stats["completed_tasks"].astype(int).tolist(),
        "failed_tasks": stats["failed_tasks"].astype(int).tolist(),
        "avg_execution_time": stats["avg_execution_time"].round(3).tolist(),
        "total_tokens": stats["total_tokens"].astype(int).tolist(),
        "success_rate": np.where(stats["total_tasks"] > 0,
                                 100.0 * stats["completed_tasks"] / stats["total_tasks"].clip(lower=1), 0.0).tolist(),
        "last_task_at": stats["last_task_at"].tolist(),
    }

    # api_usage
    endpoints = list(_ENDPOINTS)
    n_api = spec.api_rows
    ep = rng.choice(len(endpoints), n_api, p=(0.3, 0.2, 0.25, 0.1, 0.1, 0.05))
    codes = rng.choice([200, 201, 400, 429, 500, 503], n_api, p=(0.9, 0.02, 0.02, 0.035, 0.015, 0.01))
    lat = np.array([_ENDPOINTS[endpoints[e]][3] for e in ep]) * rng.lognormal(0, 0.45, n_api)
    lat = np.where(codes == 429, lat * 0.05, lat)
    api_tokens = np.where(np.array([_ENDPOINTS[endpoints[e]][1] != "internal" for e in ep]) & (codes < 300),
                          rng.integers(100, 4000, n_api), 0)
    out["api_usage"] = {
        "timestamp": times(n_api), "endpoint": [endpoints[e] for e in ep],
        "method": [_ENDPOINTS[endpoints[e]][0] for e in ep], "status_code": codes,
        "response_time_ms": np.round(lat, 2),
        "agent_id": agent_ids[rng.integers(0, len(agent_ids), n_api)].tolist(),
        "provider": [_ENDPOINTS[endpoints[e]][1] for e in ep],
        "model": [_ENDPOINTS[endpoints[e]][2] for e in ep],
        "tokens_used": api_tokens, "cost_usd": np.round(api_tokens * 2e-6, 6),
        "request_id": [f"req_{i:08d}" for i in range(n_api)],
    }

    # error_logs
    n_err = spec.error_rows
    comp = rng.choice(_COMPONENTS, n_err, p=(0.3, 0.15, 0.2, 0.2, 0.1, 0.05))
    sev = rng.choice(["warning", "error", "critical"], n_err, p=(0.5, 0.42, 0.08))
    etype = rng.choice(_ERROR_TYPES, n_err)
    failed_idx = [i for i in range(n_tasks) if status[i] == "failed"]
    out["error_logs"] = {
        "timestamp": times(n_err), "component": comp.tolist(), "severity": sev.tolist(),
        "error_type": etype.tolist(),
        "message": [f"{e} in {c}: operation did not complete" for e, c in zip(etype, comp)],
        "stack_trace": [f'Traceback (most recent call last):\n  File "{c}.py", line {int(n)}\n{e}'
                        for c, n, e in zip(comp, rng.integers(10, 900, n_err), etype)],
        "agent_id": agent_ids[rng.integers(0, len(agent_ids), n_err)].tolist(),
        "task_id": [task_ids[failed_idx[int(rng.integers(0, len(failed_idx)))]] if failed_idx and rng.random() < 0.3
                    else None for _ in range(n_err)],
        "context": [{"attempt": int(a)} for a in rng.integers(1, 4, n_err)],
        "resolved": (rng.random(n_err) < 0.6),
    }

    # system_health: every component sampled on a fixed cadence
    steps = int(n_days * 24 * 60 / spec.health_every_minutes)
    ts = np.datetime64(start.replace(tzinfo=None), "us") + (
        np.arange(steps) * spec.health_every_minutes * 60 * 1_000_000).astype("timedelta64[us]")
    hs = np.repeat(ts, len(_COMPONENTS))
    hc = np.tile(np.array(_COMPONENTS), steps)
    n_h = len(hs)
    cpu = np.clip(rng.normal(45, 15, n_h), 1, 100)
    status_h = np.where(cpu > 90, "degraded", "healthy")
    status_h[rng.random(n_h) < 0.002] = "down"
    out["system_health"] = {
        "timestamp": hs, "component": hc.tolist(), "status": status_h.tolist(), "cpu_percent": np.round(cpu, 1),
        "memory_percent": np.round(np.clip(rng.normal(60, 12, n_h), 1, 100), 1),
        "disk_percent": np.round(np.clip(rng.normal(55, 5, n_h), 1, 100), 1),
        "active_agents": rng.integers(3, 29, n_h), "queue_depth": rng.poisson(6, n_h),
        "response_time_ms": np.round(rng.lognormal(3.5, 0.5, n_h), 2),
        "details": [{}] * n_h,
    }

    # project_stats: summarized from the tasks and files above
    tdf = pd.DataFrame({"p": task_project, "status": status, "dur": np.where(is_done, dur, np.nan)})
    fdf = pd.DataFrame({"p": file_project, "lines": [m["lines"] for m in modules]})
    out["project_stats"] = {
        "project_id": project_ids,
        "total_tasks": [int((tdf.p == p).sum()) for p in range(len(project_ids))],
        "completed_tasks": [int(((tdf.p == p) & (tdf.status == "completed")).sum()) for p in range(len(project_ids))],
        "failed_tasks": [int(((tdf.p == p) & (tdf.status == "failed")).sum()) for p in range(len(project_ids))],
        "total_files": [int((fdf.p == p).sum()) for p in range(len(project_ids))],
        "total_lines": [int(fdf.lines[fdf.p == p].sum()) for p in range(len(project_ids))],
        "total_tokens": [0] * len(project_ids),
        "avg_task_duration": [None if np.isnan(v) else round(float(v), 3)
                              for v in (tdf.dur[tdf.p == p].mean() for p in range(len(project_ids)))],
        "last_activity": [now] * len(project_ids),
    }

    out["memory_entries"] = _memories(rng, spec, n_days, now, out, modules)
    return out


def _memories(rng: np.random.Generator, spec: SampleSize, n_days: int, now: dt.datetime,
              tables: dict[str, dict[str, Any]], modules: tuple[dict[str, Any], ...]) -> dict[str, list]:
    """code (stdlib functions), knowledge (module docstrings) and task (task descriptions) memories."""
    agents = tables["agents"]
    by_type: dict[str, list[str]] = {}
    for aid, atype in zip(agents["id"], agents["agent_type"]):
        by_type.setdefault(atype, []).append(aid)
    rows: list[dict[str, Any]] = []
    funcs = stdlib_functions()
    if len(funcs) > spec.code_memories:  # an even spread over modules, in a fixed order
        keep = np.sort(rng.choice(len(funcs), spec.code_memories, replace=False))
        funcs = tuple(funcs[i] for i in keep)
    coders = by_type["coder"]
    for f in funcs:
        coder = coders[int(rng.integers(0, len(coders)))]
        rows.append({"content": f["source"], "memory_type": "code", "agent_id": coder,
                     "tags": ["python", "stdlib", f["module"].split(".")[0]],
                     "metadata": {"language": "python", "file_path": f["file_path"],
                                  "function_name": f["function_name"], "module": f["module"], "lineno": f["lineno"]}})
    thinkers = by_type["analyzer"] + by_type["architect"]
    for m in modules:
        rows.append({"content": m["docstring"], "memory_type": "knowledge",
                     "agent_id": thinkers[int(rng.integers(0, len(thinkers)))],
                     "tags": ["python", "stdlib", "module-doc"],
                     "metadata": {"language": "python", "file_path": m["file_path"], "module": m["module"]}})
    tasks = tables["tasks"]
    n_task_mem = min(len(tasks["id"]), max(50, spec.code_memories // 3))
    for i in range(n_task_mem):
        rows.append({"content": tasks["description"][i], "memory_type": "task", "agent_id": tasks["agent_id"][i],
                     "project_id": tasks["project_id"][i], "tags": [tasks["task_type"][i]],
                     "metadata": {"task_id": tasks["id"][i], "status": tasks["status"][i]}})
    n = len(rows)
    offsets = np.sort(rng.uniform(0, n_days * 86400.0, n))
    base = np.datetime64(now.replace(tzinfo=None), "us") - np.timedelta64(n_days * 86400, "s")
    return {
        "memory_id": [_uuid(rng) for _ in range(n)],
        "content": [r["content"] for r in rows],
        "memory_type": [r["memory_type"] for r in rows],
        "priority": rng.choice([1, 5, 8, 10], n, p=(0.2, 0.5, 0.22, 0.08)).tolist(),
        "agent_id": [r["agent_id"] for r in rows],
        "project_id": [r.get("project_id") for r in rows],
        "session_id": [None] * n,
        "tags": [r["tags"] for r in rows],
        "metadata": [r["metadata"] for r in rows],
        "created_at": base + (offsets * 1e6).astype("timedelta64[us]"),
    }


# --------------------------------------------------------------------------------------------- loading
_LOAD_ORDER = ("agents", "projects", "workflows", "project_files", "tasks", "task_dependencies",
               "agent_performance", "agent_stats", "api_usage", "error_logs", "system_health", "project_stats",
               "memory_entries")


def load(lab: Lab, size: str = "small", *, seed: int = 0, days: int | None = None,
         anchor: dt.datetime | None = None, progress: bool = False) -> dict[str, int]:
    """Generate the sample and write it in one transaction (bulk paths); returns rows per table.

    Refuses a lab that already has agents (the sample's ids would collide).
    """
    import sqlalchemy as sa
    from tqdm.auto import tqdm

    from omnilab.sql.bulk import bulk_insert
    from omnilab.sql.schema import TABLES

    started = time.perf_counter()
    data = generate(size, seed=seed, days=days, anchor=anchor)
    with lab.engine.connect() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(TABLES["agents"])).scalar_one():
            raise InvalidInput(f"the lab at {lab.path} already has agents; load the sample into an empty lab")
    counts: dict[str, int] = {}
    memory_rows = data.pop("memory_entries")
    with lab.engine.begin() as conn:
        for table in tqdm(_LOAD_ORDER[:-1], desc=f"sample ({size})", disable=not progress):
            counts[table] = bulk_insert(conn, table, data[table])
    counts["memory_entries"] = _store_memories(lab, memory_rows)
    log.info("loaded the %s sample: %d rows in %.1fs", size, sum(counts.values()), time.perf_counter() - started)
    return counts


def _store_memories(lab: Lab, rows: dict[str, list]) -> int:
    """Memory rows without vectors: the store bumps its write generation and indexes them before searching."""
    from omnilab.sql.bulk import bulk_insert

    with lab.engine.begin() as conn:
        n = bulk_insert(conn, "memory_entries", rows)
        lab.memory.record_external_write(conn)
    return n
