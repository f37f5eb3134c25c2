"""Models and migrations agree (alembic check); 0005 moves a populated 0004 lab to the platform schema without
losing a row; a fresh database and a database walked through every revision are the same database."""

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from omnilab.errors import OmnilabError
from omnilab.sql import migrate
from omnilab.sql.engine import create_engine
from omnilab.sql.schema import PLATFORM_INDEXES, TABLES

REPO = Path(__file__).resolve().parents[2]
UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 1, 23, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path, database_url):
    url = database_url or f"sqlite:///{tmp_path / 'm.db'}"
    eng = create_engine(url)
    yield eng
    eng.dispose()


@contextlib.contextmanager
def _pg_schema(pg_url: str):
    """A second empty PostgreSQL schema (the conftest fixture gives one per test)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            sa.engine.make_url(pg_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _walk(engine, revision: str) -> None:
    """Replay the revisions one by one (migrate.upgrade would create an empty database from the models)."""
    migrate._run(engine, command.upgrade, revision)


def _tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_creates_every_table_and_matches_the_models(engine):
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head() == migrate.HEAD
    assert set(TABLES) | {"memory_vectors", "memory_changes", "search_thresholds"} <= _tables(engine)
    assert migrate.check(engine) == []
    insp = sa.inspect(engine)
    present = {ix["name"] for t in TABLES for ix in insp.get_indexes(t)}
    assert PLATFORM_INDEXES <= present


def _structure(engine) -> dict:
    """Everything reflection sees: columns (type, nullability, default), keys, indexes; plus SQLite's DDL."""
    insp = sa.inspect(engine)
    out: dict = {}
    for t in sorted(_tables(engine)):
        out[t] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], c.get("default")) for c in insp.get_columns(t)],
            "pk": insp.get_pk_constraint(t)["constrained_columns"],
            "fks": sorted(
                (
                    tuple(f["constrained_columns"]),
                    f["referred_table"],
                    tuple(f["referred_columns"]),
                    json.dumps(f.get("options", {}), sort_keys=True),
                )
                for f in insp.get_foreign_keys(t)
            ),
            "indexes": sorted((i["name"], tuple(i["column_names"]), i["unique"]) for i in insp.get_indexes(t)),
            "unique": sorted((u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(t)),
        }
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            out["sqlite_master"] = sorted(
                (kind, name, table, _definitions(sql) if kind == "table" else sql)
                for kind, name, table, sql in conn.exec_driver_sql(
                    "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT IN ('sqlite_sequence')"
                )
            )
    return out


def _definitions(sql: str | None) -> tuple[str, ...] | None:
    """A CREATE TABLE's column and constraint definitions, sorted: ``ALTER TABLE ADD COLUMN`` (0006) appends
    its column after the constraints, which changes the text but not the table."""
    if sql is None:
        return None
    body = sql[sql.index("(") + 1 : sql.rindex(")")]
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(body[start:i].strip())
            start = i + 1
    parts.append(body[start:].strip())
    return (sql[: sql.index("(")].strip(), *sorted(parts))


def test_a_fresh_database_and_a_walked_one_are_the_same(tmp_path, database_url):
    """create_fresh (models + stamp) and 0001 -> 0006 give identical schemas, and both match the models."""
    with contextlib.ExitStack() as stack:
        if database_url:
            urls = [database_url, stack.enter_context(_pg_schema(os.environ["OMNILAB_TEST_DATABASE_URL"]))]
        else:
            urls = [f"sqlite:///{tmp_path / 'fresh.db'}", f"sqlite:///{tmp_path / 'walked.db'}"]
        fresh, walked = (create_engine(u) for u in urls)
        stack.callback(fresh.dispose)
        stack.callback(walked.dispose)
        migrate.upgrade(fresh)
        _walk(walked, "head")
        assert migrate.current(fresh) == migrate.current(walked) == migrate.head()
        assert migrate.check(fresh) == [] and migrate.check(walked) == []
        a, b = _structure(fresh), _structure(walked)
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == b[key], key
        for engine in (fresh, walked):  # the keyword objects of revision 0009, which check() skips
            with engine.connect() as conn:
                if engine.dialect.name == "postgresql":
                    index = conn.exec_driver_sql(
                        "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_memory_keywords_tsv'"
                    ).scalar()
                    assert index is not None and index.endswith("USING gin (tsv)")
                    cols = sa.inspect(conn).get_columns("memory_entries")
                    assert "content_tsv" not in {c["name"] for c in cols}
                else:
                    cols = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(memory_fts)")]
                    assert cols == ["name", "signature", "body"]


def test_downgrade_of_0005_is_refused_and_older_revisions_still_downgrade(engine):
    _walk(engine, "head")
    migrate.downgrade(engine, "0005")  # 0006 (queue ownership columns) goes down
    assert "queue_name" not in {c["name"] for c in sa.inspect(engine).get_columns("tasks")}
    with pytest.raises(OmnilabError, match="0005 cannot be downgraded"):
        migrate.downgrade(engine, "0004")
    assert migrate.current(engine) == "0005"
    _walk(engine, "head")  # the refusal changed nothing: 0006 applies again and the models match
    assert migrate.check(engine) == []


def test_old_revisions_round_trip(engine):
    _walk(engine, "0004")
    migrate.downgrade(engine, "base")
    assert migrate.current(engine) is None
    assert not (set(TABLES) & _tables(engine))
    _walk(engine, "0004")
    assert migrate.current(engine) == "0004"


def test_check_reports_a_drifted_database(engine):
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE stray_table (id INTEGER PRIMARY KEY)"))
    diffs = migrate.check(engine)
    assert any(migrate.describe_diff(d) == "remove_table stray_table" for d in diffs)


def test_one_head_only():
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(migrate.alembic_config()).get_heads()
    assert len(heads) == 1
    assert heads == [migrate.HEAD]  # the constant that lets a current lab open without starting alembic


def test_opening_a_current_lab_does_not_start_alembic(tmp_path):
    import subprocess
    import sys

    import omnilab

    omnilab.open(tmp_path / "lab", embedder="hashing").close()
    code = "import sys, omnilab; omnilab.open(sys.argv[1], embedder='hashing').close(); print('alembic' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "lab")], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[-1] == "False"


def test_plain_alembic_cli_works_from_the_repo(tmp_path, database_url):
    """The plain ``alembic`` command replays every revision on an empty database and then agrees with the models."""
    env = dict(os.environ)
    env["OMNILAB_DATA_DIR"] = str(tmp_path / "cli-lab")
    if database_url:
        env["OMNILAB_DATABASE_URL"] = database_url
    else:
        env.pop("OMNILAB_DATABASE_URL", None)
    (tmp_path / "cli-lab").mkdir()
    alembic = [sys.executable, "-m", "alembic"]
    up = subprocess.run([*alembic, "upgrade", "head"], cwd=REPO, env=env, capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    cur = subprocess.run([*alembic, "current"], cwd=REPO, env=env, capture_output=True, text=True)
    assert cur.returncode == 0, cur.stderr
    assert migrate.head() in cur.stdout
    check = subprocess.run([*alembic, "check"], cwd=REPO, env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


# ------------------------------------------------------------------------------ 0004 -> 0005 with data
def _t(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def old_rows() -> dict[str, list[dict]]:
    """Rows in the 0004 shape (parents first), with NULLs, gaps in ids and JSON everywhere it was allowed."""
    return {
        "agents": [
            {
                "id": "a1",
                "name": "coder",
                "system": "The Agency",
                "agent_type": "coder",
                "status": "busy",
                "priority": 8,
                "capabilities": ["code"],
                "config": {"model": "x"},
                "description": "writes code",
                "version": "2.0",
                "created_at": _t(0),
                "updated_at": _t(1),
                "last_active": _t(2),
            },
            {
                "id": "a2",
                "name": "tester",
                "system": "OBELISK",
                "agent_type": "tester",
                "status": "idle",
                "priority": 5,
                "capabilities": [],
                "config": {},
                "description": None,
                "version": "1.0",
                "created_at": _t(3),
                "updated_at": _t(4),
                "last_active": None,
            },
        ],
        "projects": [
            {
                "id": "p1",
                "name": "core",
                "description": "d",
                "status": "active",
                "language": "python",
                "repository_url": "https://example.org/core",
                "settings": {"ci": True},
                "created_at": _t(5),
                "updated_at": _t(6),
            }
        ],
        "workflows": [
            {
                "id": "w1",
                "name": "release",
                "description": None,
                "status": "pending",
                "steps": ["design", {"name": "build", "agent": "a1"}],
                "project_id": "p1",
                "created_by": "a1",
                "created_at": _t(7),
                "updated_at": _t(8),
                "completed_at": None,
            }
        ],
        "tasks": [
            {
                "id": "t1",
                "title": "Write the parser",
                "description": "long text",
                "task_type": "code_generation",
                "status": "completed",
                "complexity": "complex",
                "priority": 7,
                "agent_id": "a1",
                "project_id": "p1",
                "workflow_id": "w1",
                "progress": 100,
                "context": {"k": [1, 2]},
                "result": {"ok": True},
                "error_message": None,
                "retry_count": 1,
                "estimated_duration": 12.5,
                "created_at": _t(9),
                "updated_at": _t(10),
                "started_at": _t(11),
                "completed_at": _t(12),
            },
            {
                "id": "t2",
                "title": "Test it",
                "description": None,
                "task_type": None,
                "status": "pending",
                "complexity": "medium",
                "priority": 5,
                "agent_id": "a2",
                "project_id": "p1",
                "workflow_id": None,
                "progress": 0,
                "context": {},
                "result": None,
                "error_message": None,
                "retry_count": 0,
                "estimated_duration": None,
                "created_at": _t(13),
                "updated_at": _t(14),
                "started_at": None,
                "completed_at": None,
            },
        ],
        "task_dependencies": [
            {"id": 4, "task_id": "t2", "depends_on_id": "t1", "dependency_type": "blocks", "created_at": _t(15)}
        ],
        "agent_stats": [  # one row per agent; updated_at 23:30 UTC decides the date
            {
                "agent_id": "a2",
                "total_tasks": 4,
                "completed_tasks": 3,
                "failed_tasks": 1,
                "avg_execution_time": 2.5,
                "total_tokens": 2_000_000_000,
                "success_rate": 0.75,
                "last_task_at": _t(16),
                "updated_at": _t(17),
            },
            {
                "agent_id": "a1",
                "total_tasks": 0,
                "completed_tasks": 0,
                "failed_tasks": 0,
                "avg_execution_time": 0.0,
                "total_tokens": 0,
                "success_rate": 0.0,
                "last_task_at": None,
                "updated_at": _t(-24 * 60),
            },
        ],
        "agent_performance": [
            {
                "id": 1,
                "agent_id": "a1",
                "task_id": "t1",
                "task_type": "code_generation",
                "timestamp": _t(18),
                "execution_time": 3.25,
                "success": True,
                "tokens_used": 900,
                "error_type": None,
                "metrics": {"c": 1},
            },
            {
                "id": 3,
                "agent_id": "a2",
                "task_id": None,
                "task_type": None,
                "timestamp": _t(19),
                "execution_time": 0.5,
                "success": False,
                "tokens_used": 0,
                "error_type": "Timeout",
                "metrics": {},
            },
        ],
        "project_files": [
            {
                "id": 2,
                "project_id": "p1",
                "file_path": "src/a.py",
                "language": "python",
                "size_bytes": 1234,
                "line_count": 40,
                "content_hash": "ab" * 32,
                "last_modified_by": "a1",
                "created_at": _t(20),
                "updated_at": _t(21),
            }
        ],
        "project_stats": [
            {
                "project_id": "p1",
                "total_tasks": 2,
                "completed_tasks": 1,
                "failed_tasks": 0,
                "total_files": 1,
                "total_lines": 40,
                "total_tokens": 900,
                "avg_task_duration": 3.25,
                "last_activity": _t(22),
                "updated_at": _t(23),
            }
        ],
        "memory_entries": [
            {
                "id": 1,
                "memory_id": "m-one",
                "content": "def retry(): pass",
                "memory_type": "code",
                "priority": 8,
                "agent_id": "a1",
                "session_id": "s1",
                "project_id": "p1",
                "tags": ["py"],
                "metadata": {"n": 1},
                "access_count": 3,
                "last_accessed": _t(24),
                "expires_at": None,
                "created_at": _t(25),
                "updated_at": _t(26),
                "content_hash": "c1" * 32,
                "embedding_key": "e1" * 32,
            },
            {
                "id": 2,
                "memory_id": "m-two",
                "content": "PostgreSQL is read-only here",
                "memory_type": "knowledge",
                "priority": 5,
                "agent_id": None,
                "session_id": None,
                "project_id": None,
                "tags": [],
                "metadata": {},
                "access_count": 0,
                "last_accessed": None,
                "expires_at": _t(27),
                "created_at": _t(28),
                "updated_at": _t(29),
                "content_hash": "c2" * 32,
                "embedding_key": None,
            },
            {
                "id": 7,
                "memory_id": "m-seven",
                "content": "retry later",
                "memory_type": "code",
                "priority": 1,
                "agent_id": "a2",
                "session_id": "s2",
                "project_id": "p1",
                "tags": ["a", "b"],
                "metadata": {"x": [1]},
                "access_count": 0,
                "last_accessed": None,
                "expires_at": None,
                "created_at": _t(30),
                "updated_at": _t(31),
                "content_hash": None,
                "embedding_key": None,
            },
        ],
        "memory_relationships": [
            {
                "id": 5,
                "source_id": 1,
                "target_id": 7,
                "relationship_type": "similar",
                "strength": 0.5,
                "created_at": _t(32),
            }
        ],
        "memory_access": [
            {
                "id": 1,
                "memory_id": 2,
                "agent_id": "a1",
                "access_type": "search",
                "query": "read-only",
                "score": 0.9,
                "accessed_at": _t(33),
            },
            {
                "id": 2,
                "memory_id": 7,
                "agent_id": None,
                "access_type": "read",
                "query": None,
                "score": None,
                "accessed_at": _t(34),
            },
        ],
        "system_health": [
            {
                "id": 1,
                "timestamp": _t(35),
                "component": "api",
                "status": "healthy",
                "cpu_percent": 12.5,
                "memory_percent": 40.0,
                "disk_percent": 70.25,
                "active_agents": 3,
                "queue_depth": 2,
                "response_time_ms": 120.5,
                "details": {"region": "eu", "cpu_percent": 1.0},
            },
            {
                "id": 2,
                "timestamp": _t(36),
                "component": "worker",
                "status": "degraded",
                "cpu_percent": None,
                "memory_percent": None,
                "disk_percent": None,
                "active_agents": 0,
                "queue_depth": 9,
                "response_time_ms": None,
                "details": {"cpu_percent": 99.0},
            },
        ],
        "api_usage": [
            {
                "id": 9,
                "timestamp": _t(37),
                "endpoint": "/v1/chat",
                "method": "POST",
                "status_code": 200,
                "response_time_ms": 1205.0,
                "agent_id": "a1",
                "provider": "openai",
                "model": "gpt",
                "tokens_used": 10,
                "cost_usd": 0.001,
                "request_id": "r1",
            }
        ],
        "error_logs": [
            {
                "id": 1,
                "timestamp": _t(38),
                "component": "api",
                "severity": "warning",
                "error_type": "TimeoutError",
                "message": "boom",
                "stack_trace": "tb",
                "agent_id": "a2",
                "task_id": "t1",
                "context": {"attempt": 2},
                "resolved": True,
                "resolved_at": _t(39),
            }
        ],
        "search_thresholds": [
            {
                "memory_type": "code",
                "embedder": "hashing-256",
                "threshold": 0.4,
                "f1": 0.8,
                "precision": 0.9,
                "recall": 0.7,
                "k": 10,
                "n_queries": 20,
                "details": {"a": 1},
                "updated_at": _t(40),
            }
        ],
        "lab_meta": [{"key": "embedder", "value": {"name": "hashing", "dim": 256}, "counter": 4, "updated_at": _t(41)}],
        "embedding_cache": [
            {"embedder": "hashing", "text_hash": "e1" * 32, "dim": 2, "vector": b"\x00" * 8, "created_at": _t(42)}
        ],
    }


def expected_rows(old: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """What 0005 must make of ``old``, written out independently of the migration's SQL."""

    def keep(row: dict, drop=(), **renames) -> dict:
        out = {k: v for k, v in row.items() if k not in drop and k not in renames}
        out.update({new: row[old_name] for old_name, new in renames.items()})
        return out

    mem = {m["id"]: m["memory_id"] for m in old["memory_entries"]}
    keys = ("cpu_percent", "memory_percent", "disk_percent", "active_agents", "queue_depth", "response_time_ms")
    stats = sorted(old["agent_stats"], key=lambda r: r["agent_id"])
    return {
        "agents": [
            {
                **keep(a, system="system_name"),
                "max_concurrent_tasks": 1,
                "timeout_seconds": 300,
                "model_requirements": None,
                "tags": None,
            }
            for a in old["agents"]
        ],
        "projects": [{**p, "framework": None, "created_by": None} for p in old["projects"]],
        "workflows": [{**keep(w, drop=("steps",)), "definition": {"steps": w["steps"]}} for w in old["workflows"]],
        "tasks": [
            {
                **keep(t, title="content"),
                "task_type": t["task_type"] or "general",
                "constraints": None,
                "session_id": None,
                "estimated_completion": None,
            }
            for t in old["tasks"]
        ],
        "task_dependencies": [keep(d, depends_on_id="depends_on_task_id") for d in old["task_dependencies"]],
        "agent_stats": [
            {
                "id": i + 1,
                "agent_id": s["agent_id"],
                "tasks_completed": s["completed_tasks"],
                "tasks_failed": s["failed_tasks"],
                "total_execution_time": s["avg_execution_time"] * s["total_tasks"],
                "total_tokens_used": s["total_tokens"],
                "average_response_time": s["avg_execution_time"],
                "success_rate": s["success_rate"],
                "date": s["updated_at"].date(),
            }
            for i, s in enumerate(stats)
        ],
        "agent_performance": [{**p, "error_message": None} for p in old["agent_performance"]],
        "project_files": [{**keep(f, size_bytes="size"), "content": None} for f in old["project_files"]],
        "project_stats": [
            {
                "id": i + 1,
                "project_id": s["project_id"],
                "files_count": s["total_files"],
                "lines_of_code": s["total_lines"],
                "tasks_completed": s["completed_tasks"],
                "agents_used": len(
                    {t["agent_id"] for t in old["tasks"] if t["project_id"] == s["project_id"] and t["agent_id"]}
                ),
                "last_activity": s["last_activity"],
                "tasks_total": s["total_tasks"],
                "tasks_failed": s["failed_tasks"],
                "total_tokens": s["total_tokens"],
                "avg_task_duration": s["avg_task_duration"],
                "updated_at": s["updated_at"],
            }
            for i, s in enumerate(old["project_stats"])
        ],
        "memory_entries": [
            keep(m, drop=("id", "content_hash", "embedding_key"), memory_id="id") for m in old["memory_entries"]
        ],
        "memory_vectors": [
            {
                "id": m["id"],
                "memory_id": m["memory_id"],
                "memory_type": m["memory_type"],
                "content_hash": m["content_hash"],
                "embedding_key": m["embedding_key"],
            }
            for m in old["memory_entries"]
        ],
        "memory_relationships": [
            {
                **keep(r, drop=("source_id", "target_id")),
                "source_memory_id": mem[r["source_id"]],
                "target_memory_id": mem[r["target_id"]],
            }
            for r in old["memory_relationships"]
        ],
        "memory_access": [
            {
                **keep(a, drop=("memory_id",), accessed_at="timestamp"),
                "memory_id": mem[a["memory_id"]],
                "session_id": None,
            }
            for a in old["memory_access"]
        ],
        "system_health": [
            {
                **keep(h, drop=(*keys, "details")),
                "message": None,
                "metrics": {**h["details"], **{k: h[k] for k in keys if h[k] is not None}},
            }
            for h in old["system_health"]
        ],
        "api_usage": [
            {**keep(u, drop=("response_time_ms",)), "response_time": u["response_time_ms"] / 1000, "session_id": None}
            for u in old["api_usage"]
        ],
        "error_logs": [{**e, "session_id": None} for e in old["error_logs"]],
        "search_thresholds": old["search_thresholds"],
        "lab_meta": old["lab_meta"],
        "embedding_cache": old["embedding_cache"],
    }


def _norm(v):
    """Reflected values in one convention: naive UTC datetimes, floats rounded, bools as bools."""
    if isinstance(v, dt.datetime):
        return v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo else v
    if isinstance(v, float):
        return round(v, 9)
    if isinstance(v, memoryview):
        return bytes(v)
    return v


def _read(engine, table: str) -> list[dict]:
    """Rows through plain reflection (not omnilab's models), ordered by primary key."""
    t = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(*t.primary_key.columns)).mappings().all()
    return [{k: _norm(v) for k, v in r.items() if k != "content_tsv"} for r in rows]  # generated keyword column


def _populate_0004(engine) -> dict[str, list[dict]]:
    rows = old_rows()
    meta = sa.MetaData()
    meta.reflect(engine)  # the 0004 tables as the database has them, independent of today's models
    with engine.begin() as conn:
        for name, items in rows.items():
            conn.execute(meta.tables[name].insert(), items)
        if engine.dialect.name == "sqlite":  # keyword rows keyed by the integer memory id
            conn.exec_driver_sql(
                "INSERT INTO memory_fts (rowid, body) VALUES (1, 'retry'), (2, 'read only'), (7, 'retry later')"
            )
        else:  # ids handed out and deleted again: the new sequences must continue after them
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('memory_entries', 'id'), 20)")
    return rows


def test_0005_moves_a_populated_0004_lab_without_losing_anything(engine):
    _walk(engine, "0004")
    old = _populate_0004(engine)
    _walk(engine, "0005")

    assert migrate.current(engine) == "0005"
    want = expected_rows(old)
    for table, rows in want.items():
        got = _read(engine, table)
        assert len(got) == len(rows), table
        key = "key" if table == "lab_meta" else "embedder" if table == "embedding_cache" else None
        expect = [{k: _norm(v) for k, v in r.items()} for r in rows]
        if key is None and "id" in expect[0]:
            expect.sort(key=lambda r: r["id"])
        elif table == "search_thresholds":
            expect.sort(key=lambda r: (r["memory_type"], r["embedder"]))
        assert got == expect, table

    # FAISS ids never go backwards, and the keyword index follows memory_vectors
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO memory_vectors (memory_id, memory_type) VALUES ('m-new', 'code')"))
        new_id = conn.execute(sa.text("SELECT id FROM memory_vectors WHERE memory_id = 'm-new'")).scalar()
        assert new_id == (21 if engine.dialect.name == "postgresql" else 8)
        if engine.dialect.name == "sqlite":
            conn.execute(sa.text("DELETE FROM memory_relationships"))
            conn.execute(sa.text("DELETE FROM memory_vectors WHERE memory_id = 'm-seven'"))
            assert conn.execute(sa.text("SELECT rowid FROM memory_fts ORDER BY rowid")).scalars().all() == [1, 2]
            triggers = conn.exec_driver_sql("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'").all()
            assert triggers == [("memory_fts_ad", "memory_vectors")]
        else:
            hits = (
                conn.execute(
                    sa.text(
                        "SELECT id FROM memory_entries WHERE content_tsv @@ "
                        "plainto_tsquery('english', 'retry') ORDER BY id"
                    )
                )
                .scalars()
                .all()
            )
            assert hits == ["m-one", "m-seven"]
        # serial ids continue after the copied ones on every table
        conn.execute(sa.text("INSERT INTO api_usage (endpoint, method) VALUES ('/x', 'GET')"))
        assert conn.execute(sa.text("SELECT MAX(id) FROM api_usage")).scalar() == 10
    assert not any(t.startswith("_old0004_") for t in _tables(engine))

    # 0006 adds tasks.queue_name and tasks.lab_id (empty) and keeps every task and every reference to one
    before = {t: _read(engine, t) for t in ("tasks", "task_dependencies", "agent_performance", "error_logs")}
    _walk(engine, "head")
    assert migrate.current(engine) == migrate.HEAD and migrate.check(engine) == []
    tasks = _read(engine, "tasks")
    assert [{k: v for k, v in r.items() if k not in ("queue_name", "lab_id")} for r in tasks] == before["tasks"]
    assert all(r["queue_name"] is None and r["lab_id"] is None for r in tasks) and len(tasks) == 2
    for table in ("task_dependencies", "agent_performance", "error_logs"):
        assert _read(engine, table) == before[table], table
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert not conn.exec_driver_sql("SELECT name FROM sqlite_temp_master").all()
        refs = (
            conn.exec_driver_sql(
                "SELECT d.task_id FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on_task_id"
            )
            .scalars()
            .all()
        )
        assert refs == ["t2"]


def test_0005_refuses_values_that_do_not_fit_the_platform_columns_on_postgresql(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce VARCHAR lengths, so nothing would be truncated")
    _walk(engine, "0004")
    rows = old_rows()
    rows["agents"][0]["system"] = "s" * 60
    rows["agent_stats"][0]["total_tokens"] = 12_000_000_000  # BIGINT before, the platform's INTEGER now
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        for name in ("agents", "agent_stats"):
            conn.execute(meta.tables[name].insert(), rows[name])
    with pytest.raises(OmnilabError) as err:
        _walk(engine, "head")
    assert "agents.system_name (VARCHAR(50), longest value 60)" in str(err.value)
    assert "agent_stats.total_tokens_used (INTEGER, largest value 12000000000)" in str(err.value)
    assert migrate.current(engine) == "0004"  # rolled back as a whole
    assert "system" in {c["name"] for c in sa.inspect(engine).get_columns("agents")}


def test_0005_failing_half_way_leaves_a_sqlite_lab_at_0004(engine):
    """A memory_access row whose memory is gone (foreign keys were off once) stops the move, atomically."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's transactional DDL is covered by the length test")
    _walk(engine, "0004")
    _populate_0004(engine)
    raw = engine.raw_connection()
    try:
        raw.execute("PRAGMA foreign_keys = OFF")
        raw.execute(
            "INSERT INTO memory_access (memory_id, access_type, accessed_at) VALUES (99, 'read', "
            "'2026-03-01 00:00:00.000000')"
        )
        raw.commit()
    finally:
        raw.close()
    with pytest.raises(OmnilabError, match="memory_access has 3 rows but only 2"):
        _walk(engine, "head")
    assert migrate.current(engine) == "0004"
    assert {"title", "description"} <= {c["name"] for c in sa.inspect(engine).get_columns("tasks")}
    assert not any(t.startswith("_old0004_") for t in _tables(engine))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM memory_entries").scalar() == 3


def test_0009_rebuilds_the_keyword_rows_of_an_0008_lab_and_downgrades(engine):
    """An 0008 lab's memories get keyword rows with the three fields; 0009 down restores the old objects."""
    _walk(engine, "0008")
    pg = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        for mid, content in (
            ("m1", "def pvariance(data, mu=None):\n    return 1"),
            ("m2", "class LRUCache:\n    pass"),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO memory_entries (id, memory_type, content, created_at) "
                    "VALUES (:id, 'code', :c, CURRENT_TIMESTAMP)"
                ),
                {"id": mid, "c": content},
            )
            conn.execute(
                sa.text("INSERT INTO memory_vectors (memory_id, memory_type) VALUES (:id, 'code')"), {"id": mid}
            )
    _walk(engine, "0009")
    assert migrate.check(engine) == []
    with engine.connect() as conn:
        if pg:
            found = conn.exec_driver_sql(
                "SELECT v.memory_id FROM memory_keywords k JOIN memory_vectors v ON v.id = k.vector_id "
                "WHERE k.tsv @@ to_tsquery('english', 'variance') ORDER BY 1"
            ).all()
            weighted = conn.exec_driver_sql(
                "SELECT v.memory_id FROM memory_keywords k JOIN memory_vectors v ON v.id = k.vector_id "
                "WHERE k.tsv @@ to_tsquery('english', 'lru:A') ORDER BY 1"
            ).all()
            assert [r[0] for r in weighted] == ["m2"]  # the class name is in the name field (weight A)
        else:
            found = conn.exec_driver_sql(
                "SELECT v.memory_id FROM memory_fts f JOIN memory_vectors v ON v.id = f.rowid "
                "WHERE memory_fts MATCH 'name:variance' ORDER BY 1"
            ).all()
        assert [r[0] for r in found] == ["m1"]  # pvariance split into its words
    migrate.downgrade(engine, "0008")
    with engine.connect() as conn:
        if pg:
            hits = conn.exec_driver_sql(
                "SELECT id FROM memory_entries WHERE content_tsv @@ plainto_tsquery('english', 'lru cache')"
            ).all()
        else:
            hits = conn.exec_driver_sql(
                "SELECT v.memory_id FROM memory_fts f JOIN memory_vectors v ON v.id = f.rowid "
                "WHERE memory_fts MATCH 'lru'"
            ).all()
        assert [r[0] for r in hits] == ["m2"]
    _walk(engine, "head")
    assert migrate.current(engine) == migrate.HEAD
