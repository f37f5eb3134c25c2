"""Team labs: labs in different directories on one database follow each other's memory writes live.

Each lab keeps its own FAISS index; before a search it applies the memory change log past the seq its index
has (issue 11). Checked on a SQLite file shared by two lab directories and on PostgreSQL.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

import omnilab
from omnilab.sql.own_tables import embedding_cache, lab_meta, memory_changes, memory_vectors
from omnilab.vectors.changes import HORIZON

PG_PARAM = pytest.param("postgresql", marks=pytest.mark.postgres)


@pytest.fixture(params=["sqlite", PG_PARAM])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database for several lab directories: a SQLite file outside them, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'team.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


def _open(path: Path, url: str) -> omnilab.Lab:
    return omnilab.open(path, database_url=url, embedder="hashing")


@pytest.fixture
def two_labs(tmp_path: Path, shared_url: str) -> Iterator[tuple[omnilab.Lab, omnilab.Lab]]:
    a = _open(tmp_path / "a", shared_url)
    b = _open(tmp_path / "b", shared_url)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _rows(n: int, start: int = 0) -> list[dict[str, str]]:
    return [
        {"content": f"note {i} about topic {i % 37} and detail {i * 7919 % 1000}", "memory_type": "knowledge"}
        for i in range(start, start + n)
    ]


def test_replica_follows_add_ingest_forget(two_labs: tuple[omnilab.Lab, omnilab.Lab]) -> None:
    a, b = two_labs
    assert len(b.search("anything", k=5)) == 0
    first = a.remember("the cluster restarts every night at two", "knowledge")
    hits = b.search("the cluster restarts every night at two", k=1)
    assert list(hits["memory_id"]) == [first]

    ids = a.ingest(_rows(500), progress=False)["memory_ids"]
    assert len(ids) == 500
    got = b.search("note about topic", k=600)
    assert len(got) == 501 and set(got["memory_id"]) == {first, *ids}
    assert got["memory_id"].is_unique

    gone = set(ids[:100])
    assert a.forget(list(gone)) == 100
    got = b.search("note about topic", k=600)
    assert len(got) == 401
    assert not gone & set(got["memory_id"])
    assert b.memory.changes.last.full is False  # applied from the log, not a full reconcile
    # B's hybrid search sees the same memories
    assert not gone & set(b.hybrid_search("note topic", k=600)["memory_id"])


def _sql_matrix(lab: omnilab.Lab) -> tuple[list[str], np.ndarray]:
    """Every memory's id and current embedding, read from SQL (key rows joined to the embedding cache)."""
    with lab.memory.own.connect() as conn:
        rows = conn.execute(
            sa.select(memory_vectors.c.memory_id, embedding_cache.c.vector).join(
                embedding_cache, embedding_cache.c.text_hash == memory_vectors.c.embedding_key
            )
        ).all()
    return [r[0] for r in rows], np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows])


def test_replica_reranks_updated_content(two_labs: tuple[omnilab.Lab, omnilab.Lab]) -> None:
    a, b = two_labs
    ids = a.ingest(_rows(200), progress=False)["memory_ids"]
    b.search("warm up", k=1)
    target = ids[17]
    a.update_memory(target, content="submarine sonar calibration drifts in cold water")
    query = "submarine sonar calibration drifts in cold water"
    got = b.search(query, k=10)
    mids, mat = _sql_matrix(a)
    scores = mat @ b.memory.query_vector(query)
    order = np.lexsort((np.arange(len(mids)), -scores))[:10]
    assert list(got["memory_id"]) == [mids[i] for i in order]
    assert np.allclose(got["score"].to_numpy(), scores[order], atol=1e-5)
    assert got["memory_id"].iloc[0] == target


def test_no_change_search_costs_one_lookup(two_labs: tuple[omnilab.Lab, omnilab.Lab]) -> None:
    a, b = two_labs
    a.ingest(_rows(50), progress=False)
    b.search("note", k=5)  # caught up
    statements: list[str] = []

    def record(conn, cursor, statement, params, context, executemany):  # noqa: ANN001, ANN202 - SQLAlchemy's signature
        statements.append(statement)

    engines = {id(b.memory.engine): b.memory.engine, id(b.memory.own): b.memory.own}
    for eng in engines.values():
        sa.event.listen(eng, "before_cursor_execute", record)
    try:
        b.search("note", k=5)
        baseline = list(statements)
        statements.clear()
        b.search("note", k=5)
    finally:
        for eng in engines.values():
            sa.event.remove(eng, "before_cursor_execute", record)
    assert statements == baseline  # no-change searches are alike
    if b.memory.engine.dialect.name == "sqlite":  # nothing was committed since: PRAGMA data_version says so
        assert statements == []
    else:
        assert sum("memory_changes" in s for s in statements) == 0
        assert sum("lab_meta" in s for s in statements) == 1  # the generation lookup


def test_catch_up_reads_only_the_changes(two_labs: tuple[omnilab.Lab, omnilab.Lab]) -> None:
    a, b = two_labs
    a.ingest(_rows(2000), progress=False)
    b.search("note", k=5)
    a.ingest(_rows(30, start=5000), progress=False)
    statements: list[str] = []

    def record(conn, cursor, statement, params, context, executemany):  # noqa: ANN001, ANN202 - SQLAlchemy's signature
        statements.append(statement)

    sa.event.listen(b.memory.own, "before_cursor_execute", record)
    try:
        b.search("note", k=5)
    finally:
        sa.event.remove(b.memory.own, "before_cursor_execute", record)
    last = b.memory.changes.last
    assert (last.changes, last.added, last.removed, last.full) == (30, 30, 0, False)
    # nothing is scanned in full (no fingerprint, no count, no unfiltered read): key rows are read by id
    assert statements and all("WHERE" in s for s in statements)
    assert not any("count(" in s.lower() for s in statements)
    assert sum("FROM memory_changes" in s for s in statements) == 1
    assert len(b.memory.index) == 2030


def test_reopen_resumes_from_applied_seq(tmp_path: Path, shared_url: str) -> None:
    with _open(tmp_path / "a", shared_url) as a, _open(tmp_path / "b", shared_url) as b:
        a.ingest(_rows(20), progress=False)
        b.search("note", k=1)
        applied = b.memory.index.applied_seq
        assert applied == a.memory.meta.generation()
    with _open(tmp_path / "a", shared_url) as a:
        a.ingest(_rows(5, start=100), progress=False)
    with _open(tmp_path / "b", shared_url) as b:
        assert b.memory.index.applied_seq >= applied
        assert len(b.search("note", k=100)) == 25


def test_compaction_sends_lagging_replica_to_full_reconcile(two_labs: tuple[omnilab.Lab, omnilab.Lab]) -> None:
    a, b = two_labs
    a.ingest(_rows(10), progress=False)
    b.search("note", k=1)
    ids = a.ingest(_rows(10, start=50), progress=False)["memory_ids"]
    a.forget(ids[:3])
    with a.memory.own.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(memory_changes)).scalar_one()
    assert a.memory.compact_changes(keep_seconds=3600) == 0  # nothing old enough
    deleted = a.memory.compact_changes(keep_seconds=0)
    assert deleted == before
    with a.memory.own.connect() as conn:
        horizon = conn.execute(sa.select(lab_meta.c.counter).where(lab_meta.c.key == HORIZON)).scalar_one()
        left = conn.execute(sa.select(sa.func.count()).select_from(memory_changes)).scalar_one()
    assert left == 0 and horizon == a.memory.meta.generation()
    got = b.search("note", k=100)
    assert b.memory.changes.last.full is True
    assert len(got) == 17 and not set(ids[:3]) & set(got["memory_id"])
    # caught up past the horizon: later changes apply from the log again
    a.remember("one more after compaction", "knowledge")
    assert len(b.search("note", k=100)) == 18
    assert b.memory.changes.last.full is False


def test_external_write_logs_resync(two_labs: tuple[omnilab.Lab, omnilab.Lab]) -> None:
    a, b = two_labs
    b.search("x", k=1)
    a.insert("memory_entries", [{"id": "ext-1", "content": "written by other code", "memory_type": "knowledge"}])
    got = b.search("written by other code", k=1)
    assert list(got["memory_id"]) == ["ext-1"]
    assert b.memory.changes.last.full is True


def _writer(path: str, url: str, n: int, tag: str, done: str, out: str) -> None:
    """Ingest ``n`` rows in batches, then (once every writer is done) search everything with this lab open."""
    with omnilab.open(path, database_url=url, embedder="hashing") as lab:
        for start in range(0, n, 20):
            lab.ingest(
                [{"content": f"{tag} row {i}", "memory_type": "knowledge"} for i in range(start, start + 20)],
                progress=False,
            )
        Path(done, tag).touch()
        deadline = time.monotonic() + 180
        while len(list(Path(done).iterdir())) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        got = lab.search("row", k=1000)
        Path(out).write_text(json.dumps(list(got["content"])))


def test_three_writer_processes(tmp_path: Path, shared_url: str) -> None:
    done = tmp_path / "done"
    done.mkdir()
    expected = sorted(f"writer{w} row {r}" for w in range(3) for r in range(100))
    with _open(tmp_path / "watcher", shared_url) as watcher:
        assert len(watcher.search("row", k=10)) == 0
        ctx = multiprocessing.get_context("spawn")
        outs = [tmp_path / f"out{i}.json" for i in range(3)]
        procs = [
            ctx.Process(
                target=_writer,
                args=(str(tmp_path / f"w{i}"), shared_url, 100, f"writer{i}", str(done), str(outs[i])),
            )
            for i in range(3)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(240)
        assert [p.exitcode for p in procs] == [0, 0, 0]
        for out in outs:  # each writer's own lab, still open, saw every row exactly once
            assert sorted(json.loads(out.read_text())) == expected
        got = watcher.search("row", k=1000)  # a lab open all along, never reopened
        assert sorted(got["content"]) == expected and got["memory_id"].is_unique


def test_revision_0007_starts_the_horizon_at_the_generation(tmp_path: Path) -> None:
    """A lab upgraded from 0006 logged nothing before: an index it saved then reconciles in full once."""
    from omnilab.sql import migrate
    from omnilab.sql.engine import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrate.upgrade(engine, "0006")
        with engine.begin() as conn:
            conn.execute(sa.insert(lab_meta).values(key="memory_generation", value=None, counter=42))
        migrate.upgrade(engine, "0007")
        with engine.connect() as conn:
            horizon = conn.execute(sa.select(lab_meta.c.counter).where(lab_meta.c.key == HORIZON)).scalar_one()
            assert conn.execute(sa.select(sa.func.count()).select_from(memory_changes)).scalar_one() == 0
        assert horizon == 42
        migrate.downgrade(engine, "0006")
        assert "memory_changes" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
