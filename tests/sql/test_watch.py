"""CommitWatch: its token moves exactly when something was committed (SQLite file; PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa

from omnilab.sql.engine import create_engine
from omnilab.sql.watch import CommitWatch


def _table(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE watched (x INTEGER)")


def test_sqlite_token_moves_on_commit_only(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    other = create_engine(f"sqlite:///{tmp_path / 'w.db'}")  # another engine: as another process would
    _table(engine)
    watch = CommitWatch(engine, local_only=True)
    first = watch.token()
    assert first is not None and watch.token() == first
    with engine.connect() as conn:  # a read commits nothing
        conn.exec_driver_sql("SELECT count(*) FROM watched").scalar_one()
    assert watch.token() == first
    with engine.begin() as conn:  # this process's own pooled connection
        conn.exec_driver_sql("INSERT INTO watched VALUES (1)")
    second = watch.token()
    assert second != first
    with other.begin() as conn:
        conn.exec_driver_sql("INSERT INTO watched VALUES (2)")
    assert watch.token() != second
    with other.connect() as conn:  # rolled back: nothing committed
        conn.exec_driver_sql("INSERT INTO watched VALUES (3)")
        conn.rollback()
    third = watch.token()
    assert watch.token() == third
    watch.close()
    engine.dispose()
    other.dispose()


def test_no_local_watch_where_it_cannot_tell(pg_url: str) -> None:
    engine = create_engine(pg_url)
    memory = create_engine("sqlite://")
    try:
        assert CommitWatch(engine, local_only=True).token() is None  # PostgreSQL: always look
        assert CommitWatch(memory, local_only=True).token() is None  # one shared in-memory connection
        assert CommitWatch(engine).token() is not None  # the full watch asks the server
    finally:
        engine.dispose()
        memory.dispose()
