"""lab.insert and the relational helpers: every table round-trips on both backends; bad rows write nothing."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from omnilab import InvalidInput
from omnilab.sql.schema import JSON_COLUMNS, TABLES

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def one_row_per_table() -> dict[str, dict]:
    """A valid row for each of the 15 tables, parents first, with every column given a value."""
    return {
        "agents": {
            "id": "a1",
            "name": "coder",
            "system_name": "The Agency",
            "agent_type": "coder",
            "status": "idle",
            "priority": 8,
            "capabilities": ["code_generation", "debugging"],
            "max_concurrent_tasks": 2,
            "timeout_seconds": 600,
            "model_requirements": ["gpt-4"],
            "tags": ["core"],
            "config": {"model": "x"},
            "description": "writes code",
            "version": "2.0",
            "created_at": T0,
            "updated_at": T0,
            "last_active": T0,
        },
        "projects": {
            "id": "p1",
            "name": "core",
            "description": "d",
            "status": "active",
            "language": "python",
            "framework": "fastapi",
            "created_by": "a1",
            "repository_url": "https://example.org/core",
            "settings": {"branch": "main"},
            "created_at": T0,
            "updated_at": T0,
        },
        "workflows": {
            "id": "w1",
            "name": "flow",
            "description": "d",
            "status": "active",
            "definition": {"steps": ["design", "build"]},
            "project_id": "p1",
            "created_by": "a1",
            "created_at": T0,
            "updated_at": T0,
            "completed_at": None,
        },
        "tasks": {
            "id": "t1",
            "content": "do it",
            "description": "desc",
            "task_type": "code_generation",
            "status": "completed",
            "complexity": "complex",
            "priority": 7,
            "agent_id": "a1",
            "project_id": "p1",
            "workflow_id": "w1",
            "progress": 100,
            "context": {"k": [1, 2]},
            "constraints": {"max_tokens": 10},
            "session_id": "s1",
            "estimated_completion": T0,
            "result": {"ok": True},
            "error_message": None,
            "retry_count": 1,
            "estimated_duration": 12.5,
            "created_at": T0,
            "updated_at": T0,
            "started_at": T0,
            "completed_at": T0,
        },
        "task_dependencies": {
            "task_id": "t1",
            "depends_on_task_id": "t1",
            "dependency_type": "blocks",
            "created_at": T0,
        },
        "agent_stats": {
            "agent_id": "a1",
            "tasks_completed": 2,
            "tasks_failed": 1,
            "total_execution_time": 13.5,
            "total_tokens_used": 2_000_000_000,
            "average_response_time": 4.5,
            "success_rate": 0.667,
            "date": dt.date(2026, 3, 1),
        },
        "agent_performance": {
            "agent_id": "a1",
            "task_id": "t1",
            "task_type": "code_generation",
            "timestamp": T0,
            "execution_time": 3.25,
            "success": True,
            "tokens_used": 900,
            "error_type": None,
            "error_message": None,
            "metrics": {"cpu": 0.5},
        },
        "project_files": {
            "project_id": "p1",
            "file_path": "src/a.py",
            "language": "python",
            "size": 10,
            "content": "x = 1\ny = 2\n",
            "line_count": 2,
            "content_hash": "ab" * 32,
            "last_modified_by": "a1",
            "created_at": T0,
            "updated_at": T0,
        },
        "project_stats": {
            "project_id": "p1",
            "files_count": 1,
            "lines_of_code": 2,
            "tasks_completed": 1,
            "agents_used": 1,
            "last_activity": T0,
            "tasks_total": 1,
            "tasks_failed": 0,
            "total_tokens": 900,
            "avg_task_duration": 3.0,
            "updated_at": T0,
        },
        "memory_entries": {
            "id": "m-1",
            "content": "def f(): pass",
            "memory_type": "code",
            "priority": 8,
            "agent_id": "a1",
            "session_id": "s1",
            "project_id": "p1",
            "tags": ["py", "x"],
            "metadata": {"language": "python", "n": 1},
            "access_count": 0,
            "last_accessed": None,
            "expires_at": None,
            "created_at": T0,
            "updated_at": T0,
        },
        "memory_relationships": {
            "source_memory_id": "m-1",
            "target_memory_id": "m-1",
            "relationship_type": "similar",
            "strength": 0.5,
            "created_at": T0,
        },
        "memory_access": {
            "memory_id": "m-1",
            "agent_id": "a1",
            "session_id": "s1",
            "access_type": "read",
            "query": "q",
            "score": 0.9,
            "timestamp": T0,
        },
        "system_health": {
            "timestamp": T0,
            "component": "api",
            "status": "healthy",
            "message": "ok",
            "metrics": {"cpu_percent": 12.5, "memory_percent": 40.0, "queue_depth": 2},
        },
        "api_usage": {
            "timestamp": T0,
            "endpoint": "/v1/embeddings",
            "method": "POST",
            "status_code": 200,
            "response_time": 0.1205,
            "agent_id": "a1",
            "session_id": "s1",
            "provider": "openai",
            "model": "ada",
            "tokens_used": 10,
            "cost_usd": 0.001,
            "request_id": "r1",
        },
        "error_logs": {
            "timestamp": T0,
            "component": "api",
            "severity": "error",
            "error_type": "TimeoutError",
            "message": "boom",
            "stack_trace": "tb",
            "agent_id": "a1",
            "session_id": "s1",
            "task_id": "t1",
            "context": {"attempt": 2},
            "resolved": False,
            "resolved_at": None,
        },
    }


def test_the_fixture_covers_all_fifteen_tables():
    rows = one_row_per_table()
    assert set(rows) == set(TABLES) and len(rows) == 15
    for name, row in rows.items():
        columns = {c.name for c in TABLES[name].columns}
        assert set(row) <= columns, name
        assert len(set(row)) >= len(columns) - 3, name  # nearly every column gets an explicit value


def test_every_table_round_trips(lab):
    rows = one_row_per_table()
    for name, row in rows.items():  # dict order is dependency order
        assert lab.insert(name, [row]) == 1
    for name, row in rows.items():
        frame = lab.table(name)
        assert len(frame) == 1, name
        got = frame.iloc[0].to_dict()
        for col, want in row.items():
            value = got[col]
            if want is None:
                assert pd.isna(value), (name, col)
            elif isinstance(want, dt.datetime):
                assert value == pd.Timestamp(want), (name, col)
                assert str(value.tz) == "UTC"
            elif isinstance(want, dt.date):
                assert pd.Timestamp(value).date() == want, (name, col, value)
            else:
                assert value == want, (name, col, value, want)
        for col in JSON_COLUMNS[name]:
            if row[col] is not None:
                assert isinstance(got[col], (list, dict)), (name, col)


def test_helpers_return_decoded_json_and_utc_dtypes(lab):
    rows = one_row_per_table()
    for name in ("agents", "projects", "workflows", "tasks"):
        lab.insert(name, rows[name])
    agents = lab.agents()
    assert agents.loc[0, "capabilities"] == ["code_generation", "debugging"]
    assert str(agents["created_at"].dtype) == "datetime64[us, UTC]"
    assert str(agents["priority"].dtype) == "Int64"
    tasks = lab.tasks()
    assert tasks.loc[0, "context"] == {"k": [1, 2]} and tasks.loc[0, "result"] == {"ok": True}
    assert list(lab.projects()["name"]) == ["core"]


def test_aware_times_are_stored_as_utc_and_naive_times_taken_as_utc(lab):
    plus2 = dt.timezone(dt.timedelta(hours=2))
    lab.insert(
        "agents",
        [
            {"name": "a", "agent_type": "coder", "created_at": dt.datetime(2026, 1, 1, 14, 0, tzinfo=plus2)},
            {"name": "b", "agent_type": "coder", "created_at": dt.datetime(2026, 1, 1, 12, 0)},
            {"name": "c", "agent_type": "coder", "created_at": "2026-01-01T12:00:00+00:00"},
        ],
    )
    times = lab.agents().set_index("name")["created_at"]
    assert set(times) == {pd.Timestamp("2026-01-01 12:00", tz="UTC")}


def test_dataframe_input_with_numpy_types_and_nan(lab):
    frame = pd.DataFrame(
        {
            "name": ["x", "y"],
            "agent_type": ["coder", "tester"],
            "priority": np.array([3, 9], dtype=np.int64),
            "description": ["has one", np.nan],
            "capabilities": [["a"], ["b", "c"]],
        }
    )
    assert lab.insert("agents", frame) == 2
    got = lab.agents().set_index("name")
    assert got.loc["y", "description"] is None or pd.isna(got.loc["y", "description"])
    assert got.loc["y", "capabilities"] == ["b", "c"] and got.loc["x", "priority"] == 3
    assert got.loc["x", "id"] == "x"  # an agent's id defaults to its name


def test_generated_ids_and_defaults(lab):
    lab.insert("agents", {"name": "coder", "agent_type": "coder"})
    lab.insert("tasks", [{"content": "one", "agent_id": "coder"}, {"content": "two"}])
    tasks = lab.tasks()
    assert tasks["id"].str.len().eq(36).all() and tasks["id"].nunique() == 2
    assert set(tasks["status"]) == {"pending"} and set(tasks["complexity"]) == {"medium"}
    assert set(tasks["task_type"]) == {"general"}
    assert tasks["context"].tolist() == [{}, {}]
    agent = lab.agent("coder")
    assert agent["system_name"] == "default" and agent["capabilities"] == [] and agent["max_concurrent_tasks"] == 1
    assert agent["timeout_seconds"] == 300 and agent["status"] == "idle"


@pytest.mark.parametrize(
    "table, rows, message",
    [
        ("nope", [{}], "unknown table 'nope'"),
        ("agents", [{"name": "a", "agent_type": "coder", "colour": "red"}], "row 0: unknown column"),
        ("agents", [{"name": "a"}], "row 0: column 'agent_type' is required"),
        (
            "agents",
            [{"name": "ok", "agent_type": "tester"}, {"name": "a", "agent_type": "wizard"}],
            "row 1, column 'agent_type'",
        ),
        (
            "agents",
            [{"name": "a", "agent_type": "coder", "priority": "high"}],
            "column 'priority': expected an integer",
        ),
        ("agents", [{"name": "a", "agent_type": "coder", "priority": 11}], "outside 1..10"),
        ("agents", [{"name": "a", "agent_type": "coder", "capabilities": "x"}], "must be JSON text"),
        ("agents", [{"name": "a", "agent_type": "coder", "capabilities": {"a": 1}}], "expected a list"),
        ("agents", [{"name": "a", "agent_type": "coder", "created_at": "yesterday"}], "not a date/time"),
        ("agents", [{"name": "a\x00", "agent_type": "coder"}], "NUL"),
        ("agents", [{"name": "\udcff", "agent_type": "coder"}], "not valid Unicode"),
        ("agents", [{"name": "a" * 101, "agent_type": "coder"}], "longer than 100"),
        (
            "agents",
            [{"name": "a", "agent_type": "coder"}, {"name": "a", "agent_type": "coder"}],
            "duplicate primary key",
        ),
        ("agents", ["not a dict"], "row 0: expected a dict"),
        ("agents", "a string", "must be a DataFrame or an iterable of dicts"),
        ("tasks", [{"content": "t", "status": "done"}], "'done' is not one of"),
        ("tasks", [{"content": "t", "agent_id": "ghost"}], "'ghost' does not exist in agents.id"),
        ("tasks", [{"task_type": "testing"}], "column 'content' is required"),
        ("workflows", [{"name": "w"}], "column 'definition' is required"),
        ("agent_performance", [{"agent_id": "a0", "execution_time": float("inf"), "success": True}], "not a finite"),
        ("agent_performance", [{"agent_id": "a0", "execution_time": 1.0, "success": "yes"}], "expected a boolean"),
        ("memory_entries", [{"content": "x", "memory_type": "dream"}], "'dream' is not one of"),
    ],
)
def test_bad_rows_are_rejected_naming_row_and_column_and_nothing_is_written(lab, table, rows, message):
    lab.insert("agents", {"id": "a0", "name": "existing", "agent_type": "coder"})
    before = lab.counts()
    with pytest.raises(InvalidInput, match=message):
        lab.insert(table, rows)
    assert lab.counts().equals(before)


def test_a_constraint_violation_in_the_database_rolls_back_the_whole_batch(lab):
    lab.insert("agents", {"name": "coder", "agent_type": "coder"})
    # the existing primary key is only known to the database: the first row of the batch must not survive
    with pytest.raises(InvalidInput, match="violate a constraint"):
        lab.insert(
            "agents",
            [
                {"id": "fresh", "name": "new", "agent_type": "coder"},
                {"id": "coder", "name": "again", "agent_type": "coder"},
            ],
        )
    assert list(lab.agents()["name"]) == ["coder"]


def test_unknown_agent_is_not_found(lab):
    from omnilab import NotFound

    with pytest.raises(NotFound, match="no agent with id 'ghost'"):
        lab.agent("ghost")
    with pytest.raises(InvalidInput):
        lab.agent(3)


def test_empty_input_inserts_nothing(lab):
    assert lab.insert("agents", []) == 0
    assert lab.insert("agents", pd.DataFrame()) == 0


def test_task_filters(lab):
    lab.insert("agents", [{"name": "a", "agent_type": "coder"}, {"name": "b", "agent_type": "tester"}])
    lab.insert("projects", {"id": "p", "name": "p"})
    lab.insert(
        "tasks",
        [
            {"content": "1", "agent_id": "a", "status": "pending", "project_id": "p"},
            {"content": "2", "agent_id": "a", "status": "completed"},
            {"content": "3", "agent_id": "b", "status": "pending"},
        ],
    )
    assert sorted(lab.tasks(status="pending")["content"]) == ["1", "3"]
    assert sorted(lab.tasks(agent_id="a")["content"]) == ["1", "2"]
    assert list(lab.tasks(status="pending", project_id="p")["content"]) == ["1"]
    assert lab.tasks(agent_id="nobody").empty
    with pytest.raises(InvalidInput, match="status must be one of"):
        lab.tasks(status="done")
    with pytest.raises(InvalidInput, match="agent_id must be a string"):
        lab.tasks(agent_id=3)
