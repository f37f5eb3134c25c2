"""Models and migrations agree (alembic check), and upgrade -> downgrade base -> upgrade round-trips."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from omnilab.sql import migrate
from omnilab.sql.engine import create_engine
from omnilab.sql.schema import TABLES

REPO = Path(__file__).resolve().parents[2]

NAMED_INDEXES = {
    ("agents", "ix_agents_status"), ("agents", "ix_agents_agent_type"), ("tasks", "ix_tasks_status"),
    ("tasks", "ix_tasks_agent_id"), ("tasks", "ix_tasks_created_at"),
    ("memory_entries", "ix_memory_entries_memory_type"), ("memory_entries", "ix_memory_entries_created_at"),
    ("agent_performance", "ix_agent_performance_timestamp"),
}


@pytest.fixture
def engine(tmp_path, database_url):
    url = database_url or f"sqlite:///{tmp_path / 'm.db'}"
    eng = create_engine(url)
    yield eng
    eng.dispose()


def _tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_creates_every_table_and_matches_the_models(engine):
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()
    assert set(TABLES) <= _tables(engine)
    assert migrate.check(engine) == []
    insp = sa.inspect(engine)
    present = {(t, ix["name"]) for t in TABLES for ix in insp.get_indexes(t)}
    assert NAMED_INDEXES <= present


def test_round_trip_upgrade_downgrade_upgrade(engine):
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert migrate.current(engine) is None
    assert not (set(TABLES) & _tables(engine))
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()
    assert migrate.check(engine) == []


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


def test_plain_alembic_cli_works_from_the_repo(tmp_path, database_url):
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
