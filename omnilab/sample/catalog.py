"""What the OmniDev sample is made of: the platform's 29 agents, per-type profiles, the projects, endpoints,
error kinds and task titles the generator draws from, and the two sizes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "AGENTS",
    "SIZES",
    "SampleSize",
    "agents_frame",
    "anchor_now",
    "TYPE_PROFILE",
    "CONCURRENCY",
    "MODELS",
    "TASK_STATUSES",
    "TASK_STATUS_P",
    "COMPLEXITIES",
    "COMPLEXITY_FACTOR",
    "ERROR_TYPES",
    "ERROR_MESSAGES",
    "COMPONENTS",
    "ENDPOINTS",
    "PROJECTS",
    "WORKFLOW_STEPS",
    "TASK_TITLES",
]

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
    (
        "AI-Development-Team",
        "ai_dev_team_project_manager",
        "orchestrator",
        9,
        ("project_management", "task_planning", "delegation"),
    ),
    ("AI-Development-Team", "ai_dev_team_architect", "architect", 9, ("system_design", "architecture_review")),
    ("AI-Development-Team", "ai_dev_team_developer", "coder", 8, ("code_generation", "debugging", "refactoring")),
    ("AI-Development-Team", "ai_dev_team_qa", "tester", 8, ("integration_testing", "unit_testing", "bug_reporting")),
    ("AI-Development-Team", "ai_dev_team_devops", "deployer", 8, ("deployment", "ci_cd", "monitoring")),
    ("AI-Development-Team", "ai_dev_team_review", "reviewer", 8, ("code_review", "security_review")),
    (
        "Village of Intelligence",
        "village_thinker",
        "analyzer",
        10,
        ("reasoning", "requirements_analysis", "root_cause_analysis"),
    ),
    ("Village of Intelligence", "village_builder", "coder", 9, ("code_generation", "prototyping", "refactoring")),
    ("Village of Intelligence", "village_artist", "creative", 8, ("ui_design", "creative_solutions", "visualization")),
    (
        "Village of Intelligence",
        "village_guardian",
        "guardian",
        10,
        ("security_review", "policy_enforcement", "monitoring"),
    ),
    ("Village of Intelligence", "village_trainer", "trainer", 9, ("model_training", "evaluation", "curriculum_design")),
)

#: per agent type: median execution time (s) and tokens per second of work.
TYPE_PROFILE = {
    "architect": (140.0, 38.0),
    "coder": (75.0, 55.0),
    "tester": (50.0, 30.0),
    "reviewer": (35.0, 60.0),
    "fixer": (90.0, 45.0),
    "deployer": (110.0, 8.0),
    "orchestrator": (20.0, 70.0),
    "memory": (6.0, 20.0),
    "creative": (60.0, 50.0),
    "guardian": (25.0, 35.0),
    "analyzer": (30.0, 65.0),
    "trainer": (240.0, 25.0),
}
#: per agent type: max_concurrent_tasks.
CONCURRENCY = {
    "architect": 2,
    "coder": 3,
    "tester": 4,
    "reviewer": 3,
    "fixer": 2,
    "deployer": 1,
    "orchestrator": 10,
    "memory": 20,
    "creative": 2,
    "guardian": 5,
    "analyzer": 4,
    "trainer": 1,
}
#: per system: the models its agents need (a few agents name their own).
MODELS = {
    "The Agency": ["claude-3-sonnet"],
    "MeistroCraft": ["gpt-3.5-turbo"],
    "OBELISK": ["gpt-4"],
    "AI-Development-Team": ["gpt-4-turbo"],
    "Village of Intelligence": ["claude-3-haiku"],
    "gpt4_orchestrator": ["gpt-4"],
    "claude_executor": ["claude-3-opus"],
    "session_manager": ["text-embedding-ada-002"],
}
TASK_STATUSES = ("completed", "failed", "in_progress", "assigned", "pending", "cancelled")
TASK_STATUS_P = (0.60, 0.08, 0.07, 0.05, 0.15, 0.05)
COMPLEXITIES = ("simple", "medium", "complex", "expert")
COMPLEXITY_FACTOR = {"simple": 0.5, "medium": 1.0, "complex": 1.8, "expert": 3.0}
ERROR_TYPES = ("TimeoutError", "RateLimitError", "ValidationError", "ToolExecutionError", "ContextOverflow")
ERROR_TEXT = (
    "execution exceeded the agent's timeout",
    "the provider answered 429 Too Many Requests",
    "the output did not match the expected schema",
    "a tool call exited with a non-zero status",
    "the prompt exceeded the model's context window",
)
ERROR_MESSAGES = np.array([f"{e}: {t}" for e, t in zip(ERROR_TYPES, ERROR_TEXT)], dtype=object)
COMPONENTS = ("task_executor", "memory_service", "api_gateway", "agent_runtime", "scheduler", "vector_index")
ENDPOINTS = {  # endpoint -> (method, provider, model, median latency ms)
    "/v1/chat/completions": ("POST", "openai", "gpt-4o", 1800.0),
    "/v1/messages": ("POST", "anthropic", "claude-sonnet", 2100.0),
    "/v1/embeddings": ("POST", "openai", "text-embedding-ada-002", 180.0),
    "/api/tasks": ("GET", "internal", None, 25.0),
    "/api/memory/search": ("POST", "internal", None, 60.0),
    "/api/agents/status": ("GET", "internal", None, 12.0),
}
PROJECTS = (  # name, description, language, framework
    ("omnidev-core", "The platform's orchestration core", "python", "fastapi"),
    ("memory-service", "Vector memory and retrieval service", "python", "fastapi"),
    ("agent-dashboard", "Web dashboard for agent monitoring", "typescript", "react"),
    ("code-review-bot", "Automated pull-request reviews", "python", "langchain"),
    ("deploy-pipeline", "CI/CD and release automation", "yaml", "github-actions"),
    ("village-sim", "Village of Intelligence simulation", "python", "asyncio"),
)
WORKFLOW_STEPS = (
    ("design", "architect"),
    ("implement", "coder"),
    ("test", "tester"),
    ("review", "reviewer"),
    ("deploy", "deployer"),
)
TASK_TITLES = {  # capability -> title templates; {m} is a stdlib module name used as a realistic subject
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


@dataclass(frozen=True)
class SampleSize:
    """How much a sample size generates: days of history and rows of the large tables."""

    days: int
    perf_rows: int
    tasks: int
    api_rows: int
    error_rows: int
    health_every_minutes: int
    code_memories: int


SIZES = {
    "small": SampleSize(
        days=30, perf_rows=8_000, tasks=600, api_rows=5_000, error_rows=400, health_every_minutes=60, code_memories=600
    ),
    "large": SampleSize(
        days=90,
        perf_rows=1_050_000,
        tasks=20_000,
        api_rows=200_000,
        error_rows=20_000,
        health_every_minutes=15,
        code_memories=3_000,
    ),
}


def anchor_now() -> dt.datetime:
    """The default "now" of generated data: the start of the current UTC hour."""
    return dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)


def _timeout(agent_type: str) -> int:
    """timeout_seconds: ten times the type's median run, in whole minutes, at least the platform's 300."""
    return max(300, int(np.ceil(10 * TYPE_PROFILE[agent_type][0] / 60)) * 60)


def agents_frame() -> pd.DataFrame:
    """The 29 agents as rows of the agents table (id = name)."""
    return pd.DataFrame(
        [
            {
                "id": name,
                "name": name,
                "agent_type": atype,
                "system_name": system,
                "description": f"{atype} agent of {system}",
                "capabilities": list(caps),
                "priority": prio,
                "max_concurrent_tasks": CONCURRENCY[atype],
                "timeout_seconds": _timeout(atype),
                "model_requirements": list(MODELS.get(name, MODELS[system])),
                "tags": [system.lower().replace(" ", "-"), atype],
                "status": "idle",
                "config": {"temperature": 0.8 if atype == "creative" else 0.2, "max_retries": 3},
                "version": "1.0",
            }
            for system, name, atype, prio, caps in AGENTS
        ]
    )
