"""The OmniDev sample dataset: the platform's 29 agents plus generated operations data and memories
taken from real text (functions and module docstrings of the Python standard library).

Tables and columns are the platform's (``system_name``, ``tasks.content``, per-day ``agent_stats``, string
memory ids, ...); summary tables (``agent_stats``, ``project_stats``, ``memory_entries.access_count``) are
derived from the generated detail rows, so they agree with any recomputation.

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

# (system_name, name, agent_type, priority, capabilities) — the platform's 29 agents (id = name).
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
# Per agent type: max_concurrent_tasks.
_CONCURRENCY = {"architect": 2, "coder": 3, "tester": 4, "reviewer": 3, "fixer": 2, "deployer": 1, "orchestrator": 10,
                "memory": 20, "creative": 2, "guardian": 5, "analyzer": 4, "trainer": 1}
# Per system: the models its agents need (a few agents name their own).
_MODELS = {"The Agency": ["claude-3-sonnet"], "MeistroCraft": ["gpt-3.5-turbo"], "OBELISK": ["gpt-4"],
           "AI-Development-Team": ["gpt-4-turbo"], "Village of Intelligence": ["claude-3-haiku"],
           "gpt4_orchestrator": ["gpt-4"], "claude_executor": ["claude-3-opus"],
           "session_manager": ["text-embedding-ada-002"]}
_TASK_STATUSES = ("completed", "failed", "in_progress", "assigned", "pending", "cancelled")
_TASK_STATUS_P = (0.60, 0.08, 0.07, 0.05, 0.15, 0.05)
_COMPLEXITIES = ("simple", "medium", "complex", "expert")
_COMPLEXITY_FACTOR = {"simple": 0.5, "medium": 1.0, "complex": 1.8, "expert": 3.0}
_ERROR_TYPES = ("TimeoutError", "RateLimitError", "ValidationError", "ToolExecutionError", "ContextOverflow")
_ERROR_TEXT = ("execution exceeded the agent's timeout", "the provider answered 429 Too Many Requests",
               "the output did not match the expected schema", "a tool call exited with a non-zero status",
               "the prompt exceeded the model's context window")
_ERROR_MESSAGES = np.array([f"{e}: {t}" for e, t in zip(_ERROR_TYPES, _ERROR_TEXT)], dtype=object)
_COMPONENTS = ("task_executor", "memory_service", "api_gateway", "agent_runtime", "scheduler", "vector_index")
_ENDPOINTS = {  # endpoint -> (method, provider, model, median latency ms)
    "/v1/chat/completions": ("POST", "openai", "gpt-4o", 1800.0),
    "/v1/messages": ("POST", "anthropic", "claude-sonnet", 2100.0),
    "/v1/embeddings": ("POST", "openai", "text-embedding-ada-002", 180.0),
    "/api/tasks": ("GET", "internal", None, 25.0),
    "/api/memory/search": ("POST", "internal", None, 60.0),
    "/api/agents/status": ("GET", "internal", None, 12.0),
}
_PROJECTS = (  # name, description, language, framework
    ("omnidev-core", "The platform's orchestration core", "python", "fastapi"),
    ("memory-service", "Vector memory and retrieval service", "python", "fastapi"),
    ("agent-dashboard", "Web dashboard for agent monitoring", "typescript", "react"),
    ("code-review-bot", "Automated pull-request reviews", "python", "langchain"),
    ("deploy-pipeline", "CI/CD and release automation", "yaml", "github-actions"),
    ("village-sim", "Village of Intelligence simulation", "python", "asyncio"),
)
_WORKFLOW_STEPS = (("design", "architect"), ("implement", "coder"), ("test", "tester"), ("review", "reviewer"),
                   ("deploy", "deployer"))
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


def _timeout(agent_type: str) -> int:
    """timeout_seconds: ten times the type's median run, in whole minutes, at least the platform's 300."""
    return max(300, int(np.ceil(10 * _TYPE_PROFILE[agent_type][0] / 60)) * 60)


def agents_frame() -> pd.DataFrame:
    """The 29 agents as rows of the agents table (id = name)."""
    return pd.DataFrame(
        [
            {"id": name, "name": name, "agent_type": atype, "system_name": system,
             "description": f"{atype} agent of {system}", "capabilities": list(caps), "priority": prio,
             "max_concurrent_tasks": _CONCURRENCY[atype], "timeout_seconds": _timeout(atype),
             "model_requirements": list(_MODELS.get(name, _MODELS[system])),
             "tags": [system.lower().replace(" ", "-"), atype], "status": "idle",
             "config": {"temperature": 0.8 if atype == "creative" else 0.2, "max_retries": 3}, "version": "1.0"}
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
    """Module docstrings of the given standard-library modules (parsed with ``ast``, never imported).

    Each: module, file_path, docstring, lines, size (bytes), sha256 and head (the first 400 characters).
    """
    out = []
    for module in modules:
        found = _module_source(module)
        if found is None:
            continue
        source, path = found
        doc = ast.get_docstring(ast.parse(source))
        if doc and len(doc.split()) >= 8:
            out.append({"module": module, "file_path": _rel(path), "docstring": doc.strip(),
                        "lines": source.count("\n") + 1, "size": len(source.encode()),
                        "sha256": hashlib.sha256(source.encode()).hexdigest(), "head": source[:400]})
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


def _naive(t: dt.datetime) -> np.datetime64:
    """An aware datetime as naive-UTC datetime64[us] (the generator's internal time representation)."""
    return np.datetime64(t.astimezone(dt.timezone.utc).replace(tzinfo=None), "us")


def _seconds(x: np.ndarray | float) -> np.ndarray:
    """Seconds as timedelta64[us]."""
    return (np.asarray(x) * 1e6).astype("timedelta64[us]")


def _maybe(values: Any, keep: np.ndarray) -> list:
    """``values`` where ``keep``, None elsewhere."""
    return [v if k else None for v, k in zip(values, keep)]


def generate(size: str = "small", *, seed: int = 0, days: int | None = None,
             anchor: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """The sample as columns per table (``{table: {column: values}}``), deterministic for seed and anchor.

    Timestamps are naive-UTC ``datetime64[us]`` arrays or aware datetimes; JSON columns hold lists/dicts.
    """
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
    t0 = _naive(start)

    def times(n: int) -> np.ndarray:
        """n sorted timestamps in the window, as datetime64[us] (UTC)."""
        return t0 + _seconds(np.sort(rng.uniform(0, span, n)))

    out: dict[str, dict[str, Any]] = {}
    agents = agents_frame()
    out["agents"] = {c: agents[c].tolist() for c in agents.columns}
    out["agents"].update(created_at=[start - dt.timedelta(days=90)] * len(agents), updated_at=[start] * len(agents))
    agent_ids = np.array(agents["id"])
    agent_types = np.array(agents["agent_type"])
    orchestrators = agent_ids[agent_types == "orchestrator"]
    # the platform's sessions: tasks, memories, API calls and errors happen in one of them
    sessions = np.array([f"sess_{rng.bytes(6).hex()}" for _ in range(max(20, spec.tasks // 6))], dtype=object)

    # projects, files, workflows
    n_proj = len(_PROJECTS)
    project_ids = [_uuid(rng) for _ in _PROJECTS]
    out["projects"] = {
        "id": project_ids, "name": [p[0] for p in _PROJECTS], "description": [p[1] for p in _PROJECTS],
        "language": [p[2] for p in _PROJECTS], "framework": [p[3] for p in _PROJECTS],
        "status": ["active"] * (n_proj - 1) + ["archived"],
        "settings": [{"default_branch": "main", "review_required": bool(i % 2 == 0)} for i in range(n_proj)],
        "created_by": rng.choice(orchestrators, n_proj).tolist(),
        "created_at": [start - dt.timedelta(days=30 + 7 * i) for i in range(n_proj)],
        "updated_at": [now] * n_proj,
        "repository_url": [f"https://git.example.org/omnidev/{p[0]}" for p in _PROJECTS],
    }
    modules = stdlib_modules()
    file_project = rng.integers(0, n_proj, len(modules))
    file_updated = t0 + _seconds(rng.uniform(0, span, len(modules)))
    out["project_files"] = {
        "project_id": [project_ids[i] for i in file_project],
        "file_path": [f"src/{m['file_path']}" for m in modules],
        "content": [m["head"] for m in modules],
        "language": ["python"] * len(modules),
        "size": [m["size"] for m in modules],
        "created_at": [start] * len(modules),
        "updated_at": file_updated,
        "line_count": [m["lines"] for m in modules],
        "content_hash": [m["sha256"] for m in modules],
        "last_modified_by": rng.choice(agent_ids[agent_types == "coder"], len(modules)).tolist(),
    }
    workflow_ids = [_uuid(rng) for _ in range(2 * n_proj)]  # per project: a hotfix and a feature flow
    out["workflows"] = {
        "id": workflow_ids,
        "name": [f"{_PROJECTS[i // 2][0]} {'feature' if i % 2 else 'hotfix'} flow" for i in range(2 * n_proj)],
        "description": [f"{'Feature' if i % 2 else 'Hotfix'} workflow of {_PROJECTS[i // 2][0]}"
                        for i in range(2 * n_proj)],
        "definition": [{"steps": [{"name": step, "agent_type": who}
                                  for step, who in _WORKFLOW_STEPS[: 3 + 2 * (i % 2)]]} for i in range(2 * n_proj)],
        "status": rng.choice(["active", "completed", "paused"], 2 * n_proj).tolist(),
        "created_by": rng.choice(orchestrators, 2 * n_proj).tolist(),
        "created_at": [start] * (2 * n_proj), "updated_at": [start] * (2 * n_proj),
        "project_id": [project_ids[i // 2] for i in range(2 * n_proj)],
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
    est = np.round([_TYPE_PROFILE[agent_types[a]][0] * _COMPLEXITY_FACTOR[c]
                    for a, c in zip(task_agent_idx, complexity)], 1)
    dur = est * rng.lognormal(0, 0.4, n_tasks)
    started = created + _seconds(rng.uniform(5, 600, n_tasks))
    completed = started + _seconds(dur)
    is_started = np.isin(status, ("completed", "failed", "in_progress"))
    is_done = np.isin(status, ("completed", "failed"))
    module_names = [m["module"] for m in modules] or ["json"]
    contents = []
    for t in task_type:
        templates = _TASK_TITLES.get(t, ("{T} for the {m} module",))
        contents.append(templates[rng.integers(0, len(templates))].format(
            m=module_names[rng.integers(0, len(module_names))], T=t.replace("_", " ").capitalize()))
    task_ids = [_uuid(rng) for _ in range(n_tasks)]
    task_project = rng.integers(0, n_proj, n_tasks)
    has_agent = status != "pending"
    timeouts = np.array(agents["timeout_seconds"])
    updated = np.where(is_done, completed, np.where(is_started, started, created))
    out["tasks"] = {
        "id": task_ids, "content": contents, "task_type": task_type, "complexity": complexity.tolist(),
        "priority": rng.integers(1, 11, n_tasks).tolist(),
        "agent_id": _maybe(agent_ids[task_agent_idx], has_agent),
        "status": status.tolist(),
        "progress": np.where(status == "completed", 100,
                             np.where(status == "in_progress", rng.integers(5, 95, n_tasks), 0)).tolist(),
        "result": [{"summary": "done", "files_changed": int(rng.integers(1, 12))} if s == "completed" else None
                   for s in status],
        "error_message": _maybe(_ERROR_MESSAGES[rng.integers(0, len(_ERROR_TYPES), n_tasks)], status == "failed"),
        "context": [{"source": "sample", "complexity_score": round(float(x), 2)} for x in rng.uniform(0, 1, n_tasks)],
        "constraints": [{"max_execution_time": int(timeouts[a]), "required_capabilities": [t]}
                        for a, t in zip(task_agent_idx, task_type)],
        "session_id": sessions[rng.integers(0, len(sessions), n_tasks)].tolist(),
        "project_id": [project_ids[p] for p in task_project],
        "created_at": created,
        "started_at": _maybe(started, is_started),
        "completed_at": _maybe(completed, is_done),
        "estimated_completion": _maybe(np.where(is_started, started, created) + _seconds(est), status != "cancelled"),
        "description": [f"{c}. Complexity {x}; requested by the {_PROJECTS[p][0]} team." for c, x, p
                        in zip(contents, complexity, task_project)],
        "workflow_id": [workflow_ids[2 * p + int(rng.integers(0, 2))] if rng.random() < 0.5 else None
                        for p in task_project],
        "retry_count": np.where(status == "failed", rng.integers(1, 4, n_tasks), 0).tolist(),
        "estimated_duration": est.tolist(),
        "updated_at": updated,
    }
    # dependencies: about a fifth of tasks wait for an earlier task of the same project
    deps_task, deps_on = [], []
    by_project: dict[int, list[int]] = {}
    for i, p in enumerate(task_project):
        earlier = by_project.setdefault(int(p), [])
        if earlier and rng.random() < 0.2:
            deps_task.append(i)
            deps_on.append(earlier[int(rng.integers(max(0, len(earlier) - 10), len(earlier)))])
        earlier.append(i)
    out["task_dependencies"] = {
        "task_id": [task_ids[i] for i in deps_task], "depends_on_task_id": [task_ids[i] for i in deps_on],
        "dependency_type": rng.choice(["sequential", "blocking"], len(deps_task), p=(0.8, 0.2)).tolist(),
        "created_at": created[np.array(deps_task, dtype=int)],
    }

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
    err_idx = rng.integers(0, len(_ERROR_TYPES), n_perf)
    cap_choice = rng.integers(0, 3, n_perf)
    perf_task_type = [caps[a][c % len(caps[a])] for a, c in zip(perf_agent, cap_choice)]
    done_tasks = np.flatnonzero(is_done)
    link = rng.random(n_perf) < (min(1.0, len(done_tasks) / n_perf) if len(done_tasks) else 0)
    perf_task = np.where(link, done_tasks[rng.integers(0, max(1, len(done_tasks)), n_perf)] if len(done_tasks)
                         else -1, -1)
    perf_ts = times(n_perf)
    task_ids_arr = np.array(task_ids, dtype=object)
    out["agent_performance"] = {
        "agent_id": agent_ids[perf_agent].tolist(),
        "task_type": perf_task_type,
        "execution_time": exec_time, "tokens_used": tokens, "success": success,
        "error_message": np.where(success, None, _ERROR_MESSAGES[err_idx]).tolist(),
        "timestamp": perf_ts,
        "task_id": np.where(perf_task >= 0, task_ids_arr[perf_task], None).tolist(),
        "error_type": np.where(success, None, np.array(_ERROR_TYPES, dtype=object)[err_idx]).tolist(),
    }  # metrics stays NULL, as in the platform's rows
    perf = pd.DataFrame({"agent_id": agent_ids[perf_agent], "success": success, "execution_time": exec_time,
                         "tokens_used": tokens, "timestamp": perf_ts})
    out["agent_stats"] = daily_agent_stats(perf)
    last_run = perf.groupby("agent_id")["timestamp"].max()
    out["agents"]["last_active"] = [last_run.get(a) for a in agent_ids]

    # api_usage (response_time in seconds, as the platform stores it)
    endpoints = list(_ENDPOINTS)
    n_api = spec.api_rows
    ep = rng.choice(len(endpoints), n_api, p=(0.3, 0.2, 0.25, 0.1, 0.1, 0.05))
    codes = rng.choice([200, 201, 400, 429, 500, 503], n_api, p=(0.9, 0.02, 0.02, 0.035, 0.015, 0.01))
    lat = np.array([_ENDPOINTS[endpoints[e]][3] for e in ep]) * rng.lognormal(0, 0.45, n_api)
    lat = np.where(codes == 429, lat * 0.05, lat)
    external = np.array([_ENDPOINTS[endpoints[e]][1] != "internal" for e in ep])
    api_tokens = np.where(external & (codes < 300), rng.integers(100, 4000, n_api), 0)
    out["api_usage"] = {
        "endpoint": [endpoints[e] for e in ep], "method": [_ENDPOINTS[endpoints[e]][0] for e in ep],
        "agent_id": agent_ids[rng.integers(0, len(agent_ids), n_api)].tolist(),
        "session_id": _maybe(sessions[rng.integers(0, len(sessions), n_api)], rng.random(n_api) < 0.8),
        "response_time": np.round(lat / 1000.0, 5), "status_code": codes, "timestamp": times(n_api),
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
    failed_idx = np.flatnonzero(status == "failed")
    err_task = rng.random(n_err) < (0.3 if len(failed_idx) else 0.0)
    out["error_logs"] = {
        "component": comp.tolist(), "error_type": etype.tolist(),
        "message": [f"{e} in {c}: operation did not complete" for e, c in zip(etype, comp)],
        "stack_trace": [f'Traceback (most recent call last):\n  File "{c}.py", line {int(n)}\n{e}'
                        for c, n, e in zip(comp, rng.integers(10, 900, n_err), etype)],
        "agent_id": agent_ids[rng.integers(0, len(agent_ids), n_err)].tolist(),
        "session_id": _maybe(sessions[rng.integers(0, len(sessions), n_err)], rng.random(n_err) < 0.7),
        "severity": sev.tolist(), "timestamp": times(n_err),
        "task_id": _maybe(task_ids_arr[failed_idx[rng.integers(0, max(1, len(failed_idx)), n_err)]]
                          if len(failed_idx) else [None] * n_err, err_task),
        "context": [{"attempt": int(a)} for a in rng.integers(1, 4, n_err)],
        "resolved": rng.random(n_err) < 0.6,
    }

    # system_health: every component sampled on a fixed cadence; the readings go into `metrics`
    steps = int(n_days * 24 * 60 / spec.health_every_minutes)
    hs = np.repeat(t0 + _seconds(np.arange(steps) * spec.health_every_minutes * 60.0), len(_COMPONENTS))
    hc = np.tile(np.array(_COMPONENTS), steps)
    n_h = len(hs)
    cpu = np.round(np.clip(rng.normal(45, 15, n_h), 1, 100), 1)
    status_h = np.where(cpu > 90, "degraded", "healthy")
    status_h[rng.random(n_h) < 0.002] = "down"
    mem = np.round(np.clip(rng.normal(60, 12, n_h), 1, 100), 1)
    disk = np.round(np.clip(rng.normal(55, 5, n_h), 1, 100), 1)
    active, queue = rng.integers(3, 29, n_h), rng.poisson(6, n_h)
    resp = np.round(rng.lognormal(3.5, 0.5, n_h), 2)
    out["system_health"] = {
        "component": hc.tolist(), "status": status_h.tolist(),
        "metrics": [{"cpu_percent": c, "memory_percent": m, "disk_percent": d, "active_agents": a, "queue_depth": q,
                     "response_time_ms": r} for c, m, d, a, q, r in zip(cpu.tolist(), mem.tolist(), disk.tolist(),
                                                                       active.tolist(), queue.tolist(), resp.tolist())],
        "message": [None if s == "healthy" else f"cpu at {c:.0f}%" if s == "degraded"
                    else "no answer to the health check" for s, c in zip(status_h, cpu)],
        "timestamp": hs,
    }

    # project_stats: summarized from the tasks, files and runs above
    tdf = pd.DataFrame({"p": task_project, "status": status, "agent": _maybe(agent_ids[task_agent_idx], has_agent),
                        "dur": np.where(status == "completed", (completed - started) / np.timedelta64(1, "s"), np.nan),
                        "updated": updated})
    fdf = pd.DataFrame({"p": file_project, "lines": [m["lines"] for m in modules], "updated": file_updated})
    kdf = pd.DataFrame({"p": task_project[perf_task[perf_task >= 0]], "tok": tokens[perf_task >= 0]})
    last = pd.concat([tdf[["p", "updated"]], fdf[["p", "updated"]]]).groupby("p")["updated"].max()
    ps = range(n_proj)
    out["project_stats"] = {
        "project_id": project_ids,
        "files_count": [int((fdf.p == p).sum()) for p in ps],
        "lines_of_code": [int(fdf.lines[fdf.p == p].sum()) for p in ps],
        "tasks_completed": [int(((tdf.p == p) & (tdf.status == "completed")).sum()) for p in ps],
        "agents_used": [int(tdf.agent[tdf.p == p].nunique()) for p in ps],
        "last_activity": [last.get(p) for p in ps],
        "tasks_total": [int((tdf.p == p).sum()) for p in ps],
        "tasks_failed": [int(((tdf.p == p) & (tdf.status == "failed")).sum()) for p in ps],
        "total_tokens": [int(kdf.tok[kdf.p == p].sum()) for p in ps],
        "avg_task_duration": [None if np.isnan(v) else float(v) for v in (tdf.dur[tdf.p == p].mean() for p in ps)],
        "updated_at": [now] * n_proj,
    }

    out.update(_memories(rng, spec, n_days, now, out, modules, sessions))
    return out


def daily_agent_stats(perf: pd.DataFrame) -> dict[str, list]:
    """agent_stats rows from agent_performance rows: one per agent per UTC date with runs.

    ``perf`` has agent_id, success, execution_time (s), tokens_used and timestamp (naive UTC). A run counts
    as completed when it succeeded and as failed otherwise; average_response_time is the mean execution time
    and success_rate the share of successful runs (0..1).
    """
    day = pd.to_datetime(perf["timestamp"]).dt.floor("D")
    g = perf.assign(date=day, ok=perf["success"].astype(bool)).groupby(["agent_id", "date"], sort=True)
    stats = g.agg(runs=("ok", "size"), completed=("ok", "sum"), total_time=("execution_time", "sum"),
                  tokens=("tokens_used", "sum"), avg_time=("execution_time", "mean")).reset_index()
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


def _memories(rng: np.random.Generator, spec: SampleSize, n_days: int, now: dt.datetime,
              tables: dict[str, dict[str, Any]], modules: tuple[dict[str, Any], ...],
              sessions: np.ndarray) -> dict[str, dict[str, Any]]:
    """memory_entries — code (stdlib functions), knowledge (module docstrings), task (task descriptions) —
    plus memory_relationships between them and the memory_access log of who wrote and read them."""
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
                     "project_id": tasks["project_id"][i], "session_id": tasks["session_id"][i],
                     "tags": [tasks["task_type"][i]],
                     "metadata": {"task_id": tasks["id"][i], "status": tasks["status"][i]}})
    n = len(rows)
    t_now = _naive(now)
    created = t_now - np.timedelta64(n_days * 86400, "s") + _seconds(np.sort(rng.uniform(0, n_days * 86400.0, n)))
    ids = [_uuid(rng) for _ in range(n)]
    age = (t_now - created) / np.timedelta64(1, "s")
    session_ids = [r.get("session_id") or sessions[int(s)] for r, s in zip(rows, rng.integers(0, len(sessions), n))]

    # accesses: the write when the memory was made, a few reads since, an update for some
    n_reads = rng.poisson(2.0, n)
    read_of = np.repeat(np.arange(n), n_reads)
    read_at = created[read_of] + _seconds(rng.uniform(0, 1, len(read_of)) * age[read_of])
    is_updated = rng.random(n) < 0.1
    upd_of = np.flatnonzero(is_updated)
    upd_at = created[upd_of] + _seconds(rng.uniform(0, 1, len(upd_of)) * age[upd_of])
    updated_at = created.copy()
    updated_at[upd_of] = upd_at
    last_read = pd.Series(read_at).groupby(read_of).max()
    readers = np.array(agents["id"])[rng.integers(0, len(agents["id"]), len(read_of) + len(upd_of))]
    acc_mem = np.concatenate([np.arange(n), read_of, upd_of])
    acc_sessions = np.concatenate([np.array(session_ids, dtype=object),
                                   sessions[rng.integers(0, len(sessions), len(read_of) + len(upd_of))]])
    memory_access = {
        "memory_id": [ids[i] for i in acc_mem],
        "agent_id": [r["agent_id"] for r in rows] + readers.tolist(),
        "session_id": acc_sessions.tolist(),
        "access_type": ["write"] * n + ["read"] * len(read_of) + ["update"] * len(upd_of),
        "timestamp": np.concatenate([created, read_at, upd_at]),
    }

    # relationships: a function belongs to its module's docstring; related functions of one module;
    # task memories follow their tasks' dependencies
    knowledge_of = {r["metadata"]["module"]: i for i, r in enumerate(rows) if r["memory_type"] == "knowledge"}
    task_mem = {r["metadata"]["task_id"]: i for i, r in enumerate(rows) if r["memory_type"] == "task"}
    links: list[tuple[int, int, str, float]] = []  # (source, target, type, strength)
    previous: dict[str, int] = {}
    for i, r in enumerate(rows):
        if r["memory_type"] != "code":
            continue
        module = r["metadata"]["module"]
        if module in knowledge_of:
            links.append((i, knowledge_of[module], "part_of", 1.0))
        if module in previous and rng.random() < 0.2:
            links.append((i, previous[module], "related_to", round(float(rng.uniform(0.5, 0.95)), 3)))
        previous[module] = i
    deps = tables["task_dependencies"]
    links += [(task_mem[t], task_mem[on], "depends_on", 0.8)
              for t, on in zip(deps["task_id"], deps["depends_on_task_id"]) if t in task_mem and on in task_mem]
    src, dst = np.array([x[0] for x in links], dtype=int), np.array([x[1] for x in links], dtype=int)

    return {
        "memory_entries": {
            "id": ids,
            "content": [r["content"] for r in rows],
            "memory_type": [r["memory_type"] for r in rows],
            "priority": rng.choice([1, 5, 8, 10], n, p=(0.2, 0.5, 0.22, 0.08)).tolist(),
            "metadata": [r["metadata"] for r in rows],
            "tags": [r["tags"] for r in rows],
            "agent_id": [r["agent_id"] for r in rows],
            "session_id": session_ids,
            "project_id": [r.get("project_id") for r in rows],
            "created_at": created,
            "updated_at": updated_at,
            "access_count": n_reads.tolist(),
            "last_accessed": [last_read.get(i) for i in range(n)],
        },
        "memory_relationships": {
            "source_memory_id": [ids[i] for i in src], "target_memory_id": [ids[i] for i in dst],
            "relationship_type": [x[2] for x in links], "strength": [x[3] for x in links],
            "created_at": np.maximum(created[src], created[dst]),
        },
        "memory_access": memory_access,
    }


# --------------------------------------------------------------------------------------------- loading
_LOAD_ORDER = ("agents", "projects", "workflows", "project_files", "tasks", "task_dependencies",
               "agent_performance", "agent_stats", "api_usage", "error_logs", "system_health", "project_stats")
_MEMORY_TABLES = ("memory_entries", "memory_relationships", "memory_access")


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
    with lab.engine.begin() as conn:
        for table in tqdm(_LOAD_ORDER, desc=f"sample ({size})", disable=not progress):
            counts[table] = bulk_insert(conn, table, data[table])
    counts.update(_store_memories(lab, {t: data[t] for t in _MEMORY_TABLES}))
    log.info("loaded the %s sample: %d rows in %.1fs", size, sum(counts.values()), time.perf_counter() - started)
    return counts


def _store_memories(lab: Lab, tables: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Memory rows without vectors: the store bumps its write generation and indexes them before searching."""
    from omnilab.sql.bulk import bulk_insert

    with lab.engine.begin() as conn:
        counts = {t: bulk_insert(conn, t, tables[t]) for t in _MEMORY_TABLES}
        lab.memory.record_external_write(conn)
    return counts
