"""Read-only attach to the platform's own database (made from schema.sql, written the platform's way).

The database is never written (its bytes are compared), every helper answers from it, memory search embeds
the platform's memories on first use and follows rows the platform adds or changes while the lab is open.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import uuid
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
from platform_data import AGENTS, build_platform_postgres, build_platform_sqlite

import omnilab
from omnilab import ConfigError, ReadOnlyViolation

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def platform_sqlite(tmp_path) -> tuple[Path, dict]:
    path = tmp_path / "omnidev.db"
    rows = build_platform_sqlite(path, now=NOW)
    return path, rows


@pytest.fixture
def platform_postgres(pg_url) -> tuple[str, dict]:
    schema = f"p_{uuid.uuid4().hex[:10]}"
    plain = sa.engine.make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        with psycopg.connect(plain, options=f"-csearch_path={schema}") as conn:
            rows = build_platform_postgres(conn, now=NOW)
        url = sa.engine.make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False), rows
    finally:
        with psycopg.connect(plain, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _expected_summary(rows: dict, days: int) -> pd.DataFrame:
    """performance_summary computed independently with pandas from the rows the platform wrote."""
    runs = pd.DataFrame(rows["agent_performance"])
    runs["timestamp"] = pd.to_datetime(runs["timestamp"]).dt.tz_localize("UTC")
    runs = runs[(runs["timestamp"] >= NOW - dt.timedelta(days=days)) & (runs["timestamp"] <= NOW)]
    out = runs.groupby("agent_id").agg(
        total_tasks=("success", "size"),
        avg_execution_time=("execution_time", "mean"),
        total_tokens=("tokens_used", "sum"),
        successes=("success", "sum"),
    )
    out["success_rate"] = 100.0 * out["successes"] / out["total_tasks"]
    return out.drop(columns="successes").sort_index()


def _check_relational(lab: omnilab.Lab, rows: dict) -> None:
    agents = lab.agents()
    assert sorted(agents["id"]) == sorted(a[0] for a in AGENTS)
    assert dict(zip(agents["id"], agents["system_name"])) == {a[0]: a[3] for a in AGENTS}
    assert agents.set_index("id").loc["agency_coder", "capabilities"] == ["code_generation", "debugging"]
    assert lab.agent("agency_coder")["max_concurrent_tasks"] == 2

    got = lab.performance_summary(days=7, now=NOW).set_index("agent_id").sort_index()
    want = _expected_summary(rows, 7)
    got = got.loc[want.index]
    assert got["total_tasks"].tolist() == want["total_tasks"].tolist()
    assert got["total_tokens"].tolist() == want["total_tokens"].tolist()
    pd.testing.assert_series_equal(got["avg_execution_time"], want["avg_execution_time"], check_names=False)
    pd.testing.assert_series_equal(got["success_rate"], want["success_rate"], check_names=False)

    idle = [a for a in rows["agents"] if a["status"] == "idle"]
    coders = sorted(
        (a for a in idle if "code_generation" in a["capabilities"]), key=lambda a: (-a["priority"], a["name"])
    )
    assert lab.available_agents("code_generation")["agent_id"].tolist() == [a["id"] for a in coders]
    assert lab.available_agents("code")["agent_id"].tolist() == []  # element equality, not substring

    tasks = lab.tasks(status="completed")
    assert len(tasks) == sum(t["status"] == "completed" for t in rows["tasks"])
    assert tasks["result"].tolist() == [{"ok": True}] * len(tasks)
    assert lab.counts()["memory_entries"] == len(rows["memory_entries"])


def _check_refuses_writes(lab: omnilab.Lab) -> None:
    for attempt in (
        lambda: lab.insert("agents", {"name": "x", "agent_type": "coder"}),
        lambda: lab.remember("a new note", "knowledge"),
        lambda: lab.forget(["mem_000000"]),
        lambda: lab.load_sample("small"),
        lambda: lab.refresh_project_stats(),
    ):
        with pytest.raises(ReadOnlyViolation, match="read-only"):
            attempt()
    with pytest.raises(ReadOnlyViolation):
        lab.sql("DELETE FROM agents")


def test_attach_sqlite_reads_everything_and_writes_nothing(tmp_path, platform_sqlite):
    path, rows = platform_sqlite
    before = _digest(path)
    url = f"sqlite:///{path}"
    with omnilab.open(tmp_path / "lab", database_url=url, read_only=True, embedder="hashing") as lab:
        assert lab.read_only and "read-only" in repr(lab)
        _check_relational(lab, rows)
        _check_refuses_writes(lab)
        hits = lab.search("payroll salary run closes on the last business day", k=3)
        assert hits.loc[0, "memory_id"] == "mem_000003"
        assert isinstance(hits.loc[0, "memory_id"], str)
    assert _digest(path) == before
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith("omnidev")) == ["omnidev.db"]


def test_attach_follows_rows_the_platform_writes_while_open(tmp_path, platform_sqlite):
    path, _rows = platform_sqlite
    with omnilab.open(tmp_path / "lab", database_url=f"sqlite:///{path}", read_only=True, embedder="hashing") as lab:
        assert lab.search("zebra giraffe savanna migration", k=1).loc[0, "memory_id"] != "mem_new"
        with sqlite3.connect(path) as platform:  # the platform, another process, keeps writing
            platform.execute(
                "INSERT INTO memory_entries (id, content, memory_type, metadata, tags) VALUES "
                "('mem_new', 'zebra and giraffe herds on the savanna migration route', 'knowledge', "
                "'{}', '[]')"
            )
            platform.execute(
                "INSERT INTO agents (id, name, agent_type, system_name) VALUES "
                "('late_agent', 'late', 'coder', 'Late System')"
            )
        assert lab.search("zebra giraffe savanna migration", k=1).loc[0, "memory_id"] == "mem_new"
        assert "late_agent" in set(lab.agents()["id"])
        with sqlite3.connect(path) as platform:
            platform.execute("DELETE FROM memory_entries WHERE id = 'mem_new'")
        assert "mem_new" not in set(lab.search("zebra giraffe savanna migration", k=5)["memory_id"])


def test_attach_search_by_meaning_with_minilm(tmp_path, platform_sqlite):
    pytest.importorskip("sentence_transformers")
    path, _rows = platform_sqlite
    with omnilab.open(
        tmp_path / "lab", database_url=f"sqlite:///{path}", read_only=True, embedder="sentence-transformers"
    ) as lab:
        hits = lab.search("how do I call a flaky function again with growing delays?", k=3)
        assert hits.loc[0, "memory_id"] == "mem_000000"  # retry_with_backoff, found with no shared words
        assert lab.search("monthly wages", k=1).loc[0, "memory_id"] == "mem_000003"


@pytest.mark.postgres
def test_attach_postgresql_reads_everything_and_writes_nothing(tmp_path, platform_postgres):
    url, rows = platform_postgres
    with omnilab.open(tmp_path / "lab", database_url=url, read_only=True, embedder="hashing") as lab:
        _check_relational(lab, rows)
        _check_refuses_writes(lab)
        hits = lab.search(
            "payroll salary run closes on the last business day", k=3, where={"metadata.source": "platform"}
        )
        assert hits.loc[0, "memory_id"] == "mem_000003"
    engine = sa.create_engine(url)
    with engine.connect() as conn:  # nothing of omnilab's went into the platform's database
        names = set(sa.inspect(conn).get_table_names())
        assert "alembic_version" not in names and "memory_vectors" not in names
        assert conn.execute(sa.text("SELECT count(*) FROM agents")).scalar() == len(rows["agents"])
    engine.dispose()


def test_opening_a_platform_database_without_read_only_names_both_ways(tmp_path, platform_sqlite):
    path, _rows = platform_sqlite
    before = _digest(path)
    with pytest.raises(ConfigError, match="read_only=True.*omnilab db adopt"):
        omnilab.open(tmp_path / "lab", database_url=f"sqlite:///{path}", embedder="hashing")
    assert _digest(path) == before


def test_read_only_needs_an_existing_database(tmp_path):
    with pytest.raises(ConfigError, match="no database file"):
        omnilab.open(tmp_path / "lab", database_url=f"sqlite:///{tmp_path / 'missing.db'}", read_only=True)
    assert not (tmp_path / "missing.db").exists()


@pytest.fixture(params=["embedded", "server"])
def platform_redis_url(request, tmp_path):
    """The platform's Redis keys, written the platform's way, on the lab's embedded Redis or a server db."""
    from omnilab.sample.platform import write_platform_redis
    from omnilab.sessions.connection import RedisConnection

    if request.param == "embedded":
        seed = RedisConnection("embedded", lab_dir=tmp_path / "lab", layout="platform")
        write_platform_redis(seed.client)
        yield "embedded"
        seed.close()
        return
    import os

    import redis

    base = os.environ.get("OMNILAB_TEST_REDIS_URL")
    if not base:
        pytest.skip("OMNILAB_TEST_REDIS_URL is not set, so the server-Redis tests cannot run")
    url = base.rsplit("/", 1)[0] + "/14"  # platform keys have no prefix: a database of their own
    raw = redis.Redis.from_url(url)
    patterns = ("session:*", "agent_state:*", "agent_status:*", "ws_connections:*", "task_queue", "processing_tasks")

    def clean() -> None:
        for pattern in patterns:
            for key in raw.scan_iter(pattern):
                raw.delete(key)

    clean()
    write_platform_redis(raw)
    yield url
    clean()
    raw.close()


def test_attach_reads_the_platforms_redis_and_leaves_it_untouched(tmp_path, platform_sqlite, platform_redis_url):
    path, _rows = platform_sqlite
    with omnilab.open(
        tmp_path / "lab",
        database_url=f"sqlite:///{path}",
        read_only=True,
        embedder="hashing",
        redis_url=platform_redis_url,
        redis_layout="platform",
    ) as lab:
        raw = lab._redis().client
        ttls = {k: raw.ttl(k) for k in ("session:sess_a", "agent_state:agency_coder", "ws_connections:sess_a")}
        sessions = lab.sessions.frame()
        assert sessions["session_id"].tolist() == ["sess_a"] and sessions.loc[0, "user_id"] == "user_1"
        assert sorted(lab.sessions.connections("sess_a")) == ["conn_1", "conn_2"]
        states = lab.agent_states()
        assert states.loc[0, "agent_id"] == "agency_coder" and states.loc[0, "current_task"] == "task_0001"
        assert states.loc[0, "agent_status"] == "busy" and states.loc[0, "progress"] == 40
        platform_queue = lab.queue.stats().set_index("queue").loc["task_queue (platform)"]
        assert (platform_queue["pending"], platform_queue["in_flight"]) == (3, 2)
        for attempt in (
            lambda: lab.sessions.register_connection("sess_a", "conn_x"),
            lambda: lab.update_task_progress("task_0001", 50),
        ):
            with pytest.raises(ReadOnlyViolation):
                attempt()
        assert lab.search("payroll salary", k=1).attrs["cache"] == "off"  # nothing cached into the platform's Redis
        assert raw.scard("ws_connections:sess_a") == 2 and raw.llen("task_queue") == 3
        for key, ttl in ttls.items():  # reading refreshed no expiry
            assert raw.ttl(key) <= ttl
        assert not list(raw.scan_iter("memory_search:*"))
