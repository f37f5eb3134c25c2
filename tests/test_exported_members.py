"""The public surface is pinned: adding or removing a name is a deliberate change (httpx habit)."""

import omnilab


def test_all_is_pinned():
    assert sorted(omnilab.__all__) == sorted(
        [
            "open",
            "adopt",
            "Lab",
            "Settings",
            "MemoryType",
            "MemoryPriority",
            "AgentType",
            "AgentStatus",
            "TaskStatus",
            "TaskComplexity",
            "OmnilabError",
            "ConfigError",
            "InvalidInput",
            "NotFound",
            "StoreUnavailable",
            "ReadOnlyViolation",
            "__version__",
        ]
    )


def test_every_exported_name_exists_and_errors_share_one_base():
    for name in omnilab.__all__:
        assert hasattr(omnilab, name), name
    for name in ("ConfigError", "InvalidInput", "NotFound", "StoreUnavailable", "ReadOnlyViolation"):
        assert issubclass(getattr(omnilab, name), omnilab.OmnilabError)
        assert getattr(omnilab, name).__doc__


def test_enums_match_the_platform():
    assert [m.value for m in omnilab.MemoryType] == [
        "code",
        "task",
        "agent",
        "knowledge",
        "session",
        "project",
        "error",
        "workflow",
        "insight",
        "feedback",
    ]
    assert {m.name: m.value for m in omnilab.MemoryPriority} == {"LOW": 1, "MEDIUM": 5, "HIGH": 8, "CRITICAL": 10}
    assert len(omnilab.AgentType) == 12
    assert [m.value for m in omnilab.TaskStatus] == [
        "pending",
        "assigned",
        "in_progress",
        "completed",
        "failed",
        "cancelled",
    ]
