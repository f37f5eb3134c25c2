"""The vector memory over a platform database attached read-only (built by tests/platform_data.py).

The platform's tables are read through a read-only engine (SQLite ``mode=ro`` / PostgreSQL read-only
transactions); omnilab's own tables live in a separate SQLite file. References are independent: the rows
platform_data wrote and a numpy brute force over the hashing embedder's vectors of their contents.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from omnilab.errors import InvalidInput, ReadOnlyViolation
from omnilab.sql import attach
from omnilab.vectors.embedders import HashingEmbedder
from omnilab.vectors.memory import MemoryStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from platform_data import MEMORIES, build_platform_postgres, build_platform_sqlite  # noqa: E402


def own_engine(lab: Path) -> sa.Engine:
    """omnilab's own SQLite in the lab directory, exactly as Lab creates it for a read-only attach."""
    lab.mkdir(parents=True, exist_ok=True)
    return attach.own_engine(lab)


def read_only_sqlite(path: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def words(text: str, n: int = 5) -> str:
    """A query made of the text's longest words (the hashing embedder matches words)."""
    ws = sorted({w.strip(",.:()=") for w in text.split()}, key=lambda w: (-len(w), w))
    return " ".join(ws[:n])


@pytest.fixture
def platform(tmp_path):
    (tmp_path / "platform").mkdir()
    path = tmp_path / "platform" / "omnidev.db"
    rows = build_platform_sqlite(path, n_extra_memories=40)
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # rollback journal, as the platform
    return path, rows


@pytest.fixture
def attached(tmp_path, platform):
    path, rows = platform
    engine, own = read_only_sqlite(path), own_engine(tmp_path / "lab")
    store = MemoryStore(engine, tmp_path / "lab" / "vectors", own_engine=own, read_only=True, embedder="hashing")
    yield store, path, rows["memory_entries"]
    store.close()
    engine.dispose()
    own.dispose()


@pytest.fixture
def untouched(platform):
    """Asserts at teardown that the platform file has the same bytes and no journal/-wal/-shm file appeared."""
    path, _rows = platform
    before, files = digest(path), sorted(p.name for p in path.parent.iterdir())
    yield
    assert sorted(p.name for p in path.parent.iterdir()) == files
    assert digest(path) == before


def brute_force(contents: dict[str, str], query: str, k: int) -> list[tuple[str, float]]:
    emb = HashingEmbedder(384)
    ids = list(contents)
    scores = emb.embed([contents[i] for i in ids]) @ emb.embed([query])[0]
    order = np.lexsort((np.arange(len(ids)), -scores))[:k]
    return [(ids[j], float(scores[j])) for j in order]


def test_search_finds_platform_memories_by_meaning(untouched, attached):
    store, _path, rows = attached
    for i, (mtype, content) in enumerate(MEMORIES):
        res = store.search(words(content), k=3)
        assert res["memory_id"].iloc[0] == f"mem_{i:06d}", content
        top = res.iloc[0]
        assert top["memory_type"] == mtype and top["content"] == content
        assert top["tags"] == ["platform", mtype] and top["metadata"] == {"source": "platform", "n": i}
        assert str(top["created_at"].tz) == "UTC"
    assert list(res.columns) == [
        "rank",
        "score",
        "memory_id",
        "memory_type",
        "content",
        "agent_id",
        "priority",
        "tags",
        "metadata",
        "created_at",
        "session_id",
        "project_id",
        "vector_id",
    ]
    # exact scores against an independent brute force over the same texts
    contents = {r["id"]: r["content"] for r in rows}
    query = "exponential sleeping failure retry"
    got = store.search(query, k=8)
    expected = brute_force(contents, query, 8)
    np.testing.assert_allclose(got["score"], [s for _, s in expected], atol=1e-5)
    assert got["memory_id"].iloc[0] == expected[0][0] == "mem_000000"
    # filtered: the filter runs in the platform's database, the ranking here
    keep = {r["id"]: r["content"] for r in rows if json.loads(r["metadata"])["n"] % 3 == 0}
    got = store.search(query, k=5, where={"$or": [{"metadata.n": n} for n in range(0, 60, 3)]})
    np.testing.assert_allclose(got["score"], [s for _, s in brute_force(keep, query, 5)], atol=1e-5)
    assert set(got["memory_id"]) <= set(keep)
    # hybrid: the keyword side comes from omnilab's own FTS table
    res = store.hybrid_search("OAuth2 tokens instead of session cookies", k=3)
    assert res["memory_id"].iloc[0] == "mem_000004" and res["keyword_score"].iloc[0] > 0
    res = store.hybrid_search("tokens cookies", k=3, where={"memory_type": "knowledge"})
    assert set(res["memory_type"]) <= {"knowledge"}
    # memories(): the platform's columns and names; NULL-free JSON as lists/dicts
    mem = store.memories()
    assert len(mem) == len(rows) and set(mem["id"]) == set(contents) and "id" in mem.columns


def test_platform_writes_show_up_in_the_next_search(attached):
    store, path, _rows = attached
    gen = store.sql_generation()
    assert store.search(words(MEMORIES[3][1]), k=1)["memory_id"].tolist() == ["mem_000003"]
    con = sqlite3.connect(path)  # the platform, writing while the lab is open
    try:
        con.execute(
            "INSERT INTO memory_entries (id, content, memory_type, metadata, tags) VALUES (?, ?, ?, ?, ?)",
            ("mem_new", "Quarterly telescope calibration of the observatory mirrors", "knowledge", None, None),
        )
        con.commit()
        res = store.search("telescope calibration observatory mirrors", k=1)
        assert res["memory_id"].tolist() == ["mem_new"]
        assert res["tags"].iloc[0] == [] and res["metadata"].iloc[0] == {}  # NULL JSON shown empty
        gen2 = store.sql_generation()
        assert gen2 > gen
        assert store.sql_generation() == gen2  # nothing changed: same generation
        # new content: re-embedded; the old words no longer find it
        con.execute(
            "UPDATE memory_entries SET content = ?, updated_at = CURRENT_TIMESTAMP WHERE id = ?",
            ("Volcanic basalt samples from the northern glacier expedition", "mem_000003"),
        )
        con.commit()
        res = store.search("volcanic basalt glacier expedition", k=1)
        assert res["memory_id"].tolist() == ["mem_000003"] and res["content"].iloc[0].startswith("Volcanic")
        assert "mem_000003" not in store.search(words(MEMORIES[3][1]), k=3)["memory_id"].tolist()
        assert store.hybrid_search("basalt glacier", k=1)["memory_id"].tolist() == ["mem_000003"]
        gen3 = store.sql_generation()
        assert gen3 > gen2
        # deleted by the platform: gone from vector and keyword search
        con.execute("DELETE FROM memory_entries WHERE id IN ('mem_new', 'mem_000000')")
        con.commit()
        assert "mem_new" not in store.search("telescope calibration observatory mirrors", k=5)["memory_id"].tolist()
        assert "mem_000000" not in store.hybrid_search(MEMORIES[0][1], k=5)["memory_id"].tolist()
        assert store.sql_generation() > gen3
        assert len(store.index) == len(store.memories())
    finally:
        con.close()


def test_writes_raise_read_only_violation(untouched, attached, tmp_path):
    store, _path, _rows = attached
    n = len(store.memories())
    calls = [
        lambda: store.remember("x", "code"),
        lambda: store.ingest([{"content": "x", "memory_type": "code"}]),
        lambda: store.forget("mem_000001"),
        lambda: store.update("mem_000001", priority=9),
        lambda: store.relate("mem_000001", "mem_000002"),
        lambda: store.add_filter_index("metadata.n"),
    ]
    for call in calls:
        with pytest.raises(ReadOnlyViolation, match="attached read-only: .* would write to the platform"):
            call()
    assert isinstance(ReadOnlyViolation("x"), InvalidInput)
    with pytest.raises(ReadOnlyViolation, match="log_access"):
        MemoryStore(store.engine, tmp_path / "lab" / "vectors", own_engine=store.own, read_only=True, log_access=True)
    assert len(store.memories()) == n
    # what reading did write went to omnilab's own database and the lab directory
    store.search("anything at all", k=1)
    with store.own.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM memory_vectors").scalar_one() == n
        assert conn.exec_driver_sql("SELECT count(*) FROM memory_fts").scalar_one() == n
    assert (tmp_path / "lab" / "vectors" / "manifest.json").exists()


def test_reopen_reuses_keys_and_cache(untouched, attached, tmp_path):
    store, path, _rows = attached
    store.search("warm up", k=1)
    vids = store.vector_ids_for(["mem_000001", "mem_000002"])
    store.close()
    embedded: list[str] = []
    again = MemoryStore(store.engine, tmp_path / "lab" / "vectors", own_engine=store.own, read_only=True)
    orig = again.embedder.embed
    again.embedder.embed = lambda batch: embedded.extend(batch) or orig(batch)
    try:
        assert again.search(words(MEMORIES[1][1]), k=1)["memory_id"].tolist() == ["mem_000001"]
        assert again.vector_ids_for(["mem_000001", "mem_000002"]) == vids
        assert embedded == [again.embedder.preprocess(words(MEMORIES[1][1]))]  # only the query
    finally:
        again.close()


@pytest.mark.postgres
def test_postgres_platform_read_only(tmp_path, pg_schema_url):
    writer = sa.create_engine(pg_schema_url)
    raw = writer.raw_connection()
    try:
        build_platform_postgres(raw.driver_connection)
    finally:
        raw.close()
    engine = sa.create_engine(pg_schema_url, execution_options={"postgresql_readonly": True})
    own = own_engine(tmp_path / "lab")
    store = MemoryStore(engine, tmp_path / "lab" / "vectors", own_engine=own, read_only=True, embedder="hashing")
    try:
        assert store.search(words(MEMORIES[5][1]), k=1)["memory_id"].tolist() == ["mem_000005"]
        with pytest.raises(ReadOnlyViolation):
            store.remember("x", "code")
        with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="read-only"):
            conn.exec_driver_sql("DELETE FROM memory_entries")
        gen = store.sql_generation()
        with writer.begin() as conn:  # the platform writes
            conn.exec_driver_sql(
                "INSERT INTO memory_entries (id, content, memory_type) VALUES "
                "('mem_pg', 'Harvesting saffron crocus stigmas by hand', 'knowledge')"
            )
            conn.exec_driver_sql("DELETE FROM memory_entries WHERE id = 'mem_000005'")
        assert store.search("saffron crocus stigmas harvesting", k=1)["memory_id"].tolist() == ["mem_pg"]
        assert "mem_000005" not in store.search(words(MEMORIES[5][1]), k=3)["memory_id"].tolist()
        assert store.hybrid_search("saffron", k=1)["memory_id"].tolist() == ["mem_pg"]
        assert store.sql_generation() > gen
    finally:
        store.close()
        engine.dispose()
        own.dispose()
        writer.dispose()


def test_vector_ids_are_never_reused(tmp_path, database_url):
    import omnilab

    path = tmp_path / "lab"
    with omnilab.open(path, database_url=database_url, embedder="hashing") as lab:
        a = lab.remember("first memory", "code")
        va = lab.memory.vector_ids_for([a])[a]
        assert lab.forget(a) == 1 and lab.memory.vector_ids_for([a]) == {}
        b = lab.remember("second memory", "code")
        vb = lab.memory.vector_ids_for([b])[b]
        assert vb > va
        assert set(lab.memory.index.where) == {vb}
    with omnilab.open(path, database_url=database_url) as lab:
        lab.forget(b)
        c = lab.remember("third memory", "code")
        vc = lab.memory.vector_ids_for([c])[c]
        assert vc > vb and lab.search("third memory", k=1)["vector_id"].tolist() == [vc]
