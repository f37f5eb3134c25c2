"""The OmniDev sample: the 29 agents exactly as the platform lists them, deterministic data, real stdlib text."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import omnilab
from omnilab import InvalidInput, sample

ANCHOR = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)

EXPECTED_AGENTS = {
    "The Agency": [("architect", "architect", 9), ("coder", "coder", 8), ("tester", "tester", 7),
                   ("reviewer", "reviewer", 8), ("fixer", "fixer", 9), ("deployer", "deployer", 6)],
    "MeistroCraft": [("gpt4_orchestrator", "orchestrator", 10), ("claude_executor", "coder", 8),
                     ("session_manager", "memory", 7), ("github_integrator", "deployer", 6),
                     ("token_tracker", "analyzer", 5)],
    "OBELISK": [("code_architect", "architect", 10), ("code_generator", "coder", 8),
                ("quality_checker", "reviewer", 8), ("test_harness", "tester", 7), ("ideas_agent", "analyzer", 6),
                ("creativity_agent", "analyzer", 6), ("self_scoring", "analyzer", 5)],
    "AI-Development-Team": [("ai_dev_team_project_manager", "orchestrator", 9),
                            ("ai_dev_team_architect", "architect", 9), ("ai_dev_team_developer", "coder", 8),
                            ("ai_dev_team_qa", "tester", 8), ("ai_dev_team_devops", "deployer", 8),
                            ("ai_dev_team_review", "reviewer", 8)],
    "Village of Intelligence": [("village_thinker", "analyzer", 10), ("village_builder", "coder", 9),
                                ("village_artist", "creative", 8), ("village_guardian", "guardian", 10),
                                ("village_trainer", "trainer", 9)],
}


def test_the_29_agents_exactly_as_listed():
    agents = sample.agents_frame()
    assert len(agents) == 29 and agents["name"].is_unique
    got = {s: sorted(zip(g["name"], g["agent_type"], g["priority"])) for s, g in agents.groupby("system")}
    assert got == {s: sorted(v) for s, v in EXPECTED_AGENTS.items()}
    for caps in agents["capabilities"]:
        assert caps and all(c == c.lower() and " " not in c for c in caps)
    assert {t.value for t in omnilab.AgentType} >= set(agents["agent_type"])


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return list(a) == list(b)


def test_generation_is_deterministic_for_a_seed_and_differs_across_seeds():
    one = sample.generate("small", seed=7, anchor=ANCHOR)
    two = sample.generate("small", seed=7, anchor=ANCHOR)
    other = sample.generate("small", seed=8, anchor=ANCHOR)
    for table in one:
        for col in one[table]:
            assert _same(one[table][col], two[table][col]), (table, col)
    assert not _same(one["agent_performance"]["execution_time"], other["agent_performance"]["execution_time"])


def test_generated_data_is_plausible():
    data = sample.generate("small", seed=0, anchor=ANCHOR)
    perf = pd.DataFrame({k: data["agent_performance"][k] for k in ("agent_id", "success", "execution_time")})
    rates = perf.groupby("agent_id")["success"].mean()
    assert len(rates) == 29 and rates.max() - rates.min() > 0.1  # agents differ believably
    assert (perf["execution_time"] > 0).all()
    ts = pd.to_datetime(data["agent_performance"]["timestamp"])
    assert ts.min() >= pd.Timestamp(ANCHOR - dt.timedelta(days=30)).tz_localize(None)
    assert ts.max() <= pd.Timestamp(ANCHOR).tz_localize(None)
    statuses = pd.Series(data["tasks"]["status"]).value_counts(normalize=True)
    assert set(statuses.index) == {"pending", "assigned", "in_progress", "completed", "failed", "cancelled"}
    assert statuses["completed"] > 0.4
    assert len(data["task_dependencies"]["task_id"]) > 0


def test_memories_come_from_real_stdlib_text():
    funcs = sample.stdlib_functions()
    assert len(funcs) > 500
    import inspect
    import textwrap

    f = next(f for f in funcs if f["module"] == "textwrap" and f["function_name"] == "dedent")
    assert "def dedent" in f["source"] and "Remove any common leading whitespace" in f["docstring"]
    assert f["docstring"].splitlines()[0] not in f["code"] and "def dedent" in f["code"]
    assert inspect.getdoc(textwrap.dedent) == f["docstring"]
    mems = sample.generate("small", seed=0, anchor=ANCHOR)["memory_entries"]
    types = pd.Series(mems["memory_type"]).value_counts()
    assert types["code"] == 600 and types["knowledge"] > 20 and types["task"] > 50
    code_meta = [m for m, t in zip(mems["metadata"], mems["memory_type"]) if t == "code"]
    assert all({"language", "file_path", "function_name"} <= set(m) for m in code_meta)


def test_sizes():
    assert sample.SIZES["large"].perf_rows >= 1_000_000
    with pytest.raises(InvalidInput, match="size must be one of"):
        sample.generate("huge")
    with pytest.raises(InvalidInput, match="days"):
        sample.generate("small", days=0)


def test_load_into_a_lab(lab):
    counts = lab.load_sample("small")
    assert counts == {k: v for k, v in lab.counts().items() if v}
    assert counts["agents"] == 29 and counts["agent_performance"] == 8_000
    agents = lab.agents()
    assert set(agents["name"]) == {n for group in EXPECTED_AGENTS.values() for n, _, _ in group}
    assert isinstance(agents["capabilities"][0], list)
    memories = lab.table("memory_entries")
    assert memories["metadata"].map(lambda m: isinstance(m, dict)).all()
    with pytest.raises(InvalidInput, match="already has agents"):
        lab.load_sample("small")
