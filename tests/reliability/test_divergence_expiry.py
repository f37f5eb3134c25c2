"""Issue 17, items 3, 5, 6 (ingest) and 7: index/SQL divergence, expiry, an ingest losing its connection.

Reproductions (each failed before the fix):
- another process forgets memories and dies before its deferred index save: ``search`` returned k-3 rows and
  ``hybrid_search`` raised ``ValueError: Length of values (3) does not match length of index (2)``;
- expired memories came back from ``search``, ``hybrid_search`` and ``memories()``;
- a PostgreSQL backend killed mid-ingest surfaced as a plain ``OmnilabError`` without the ids written.

References are independent: numpy brute force over the embedder's vectors, and SQL counts read directly.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import sqlalchemy as sa
from rel_checks import REDIS_URL

import omnilab
from omnilab import ReadOnlyViolation
from omnilab.errors import InvalidInput, StoreUnavailable
from omnilab.sample.platform import build_platform_sqlite

WORDS = [
    "deploy",
    "rollback",
    "payments",
    "service",
    "cache",
    "invoice",
    "retry",
    "queue",
    "latency",
    "schema",
    "migration",
    "token",
    "budget",
    "alert",
    "index",
    "replica",
]
QUERY = "deploy rollback of the payments service"
NOW = dt.datetime.now(dt.timezone.utc)


def _texts(n: int) -> list[str]:
    rng = np.random.default_rng(7)
    return [f"note {i}: " + " ".join(rng.choice(WORDS, size=5)) for i in range(n)]


def _reference(
    lab: omnilab.Lab, texts: list[str], ids: list[str], query: str, k: int, keep: np.ndarray | None = None
) -> list[tuple[str, float]]:
    """Top-k (memory_id, cosine) by brute force over the embedder's vectors of ``texts``."""
    emb = lab.memory.embedder
    mat = emb.embed([emb.preprocess(t) for t in texts])
    scores = mat @ emb.embed([emb.preprocess(query)])[0]
    order = [i for i in np.lexsort((np.arange(len(ids)), -scores)) if keep is None or keep[i]]
    return [(ids[i], float(scores[i])) for i in order[:k]]


def _cosines(lab: omnilab.Lab, contents: list[str], query: str) -> np.ndarray:
    emb = lab.memory.embedder
    return emb.embed([emb.preprocess(c) for c in contents]) @ emb.embed([emb.preprocess(query)])[0]


def _check_search(frame, expected: list[tuple[str, float]]) -> None:
    assert frame["memory_id"].tolist() == [m for m, _ in expected]
    np.testing.assert_allclose(frame["score"].to_numpy(), [s for _, s in expected], rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------- divergence (item 3)
FORGET_AND_DIE = """
import os, sys, time
import omnilab
from omnilab.vectors import memory
memory._SAVE_SMALL, memory._SAVE_EVERY = 0, 1e9  # as with a large index: the save is deferred
lab = omnilab.open(sys.argv[1], database_url=sys.argv[2] or None)
lab.memory._last_save = time.monotonic()
assert lab.forget(sys.argv[3].split(",")) == 3
os._exit(0)  # dies before the deferred save: its index on disk still holds the vectors
"""


def test_rows_forgotten_by_another_process_are_skipped_and_refilled(tmp_path, database_url):
    path = tmp_path / "lab"
    texts = _texts(300) + [f"{QUERY} (copy {j})" for j in range(3)]  # the best matches either way
    with omnilab.open(path, database_url=database_url, embedder="hashing") as lab:
        ids = lab.ingest([{"content": t, "memory_type": "knowledge"} for t in texts], progress=False)["memory_ids"]
        gone = ids[-3:]
        assert set(lab.hybrid_search(QUERY, k=3)["memory_id"]) == set(gone)
        vids = lab.memory.vector_ids_for(gone)
        subprocess.run(
            [sys.executable, "-c", FORGET_AND_DIE, str(path), database_url or "", ",".join(gone)],
            check=True,
            timeout=120,
        )
        assert set(vids.values()) <= set(lab.memory.index.keys())  # this process's index still has them
        hybrid = lab.hybrid_search(QUERY, k=5)  # raised ValueError (Length of values ...) before the fix
        assert len(hybrid) == 5 and not set(gone) & set(hybrid["memory_id"])
        np.testing.assert_allclose(hybrid["vector_score"], _cosines(lab, hybrid["content"].tolist(), QUERY), atol=1e-5)
        assert hybrid["score"].is_monotonic_decreasing
        keep = np.array([m not in gone for m in ids])
        expected = _reference(lab, texts, ids, QUERY, 5, keep)
        _check_search(lab.search(QUERY, k=5, cache=False), expected)  # returned k-3 rows before the fix
        # the search used by threshold tuning and the filtered path skip them too
        assert not set(vids.values()) & {h.id for h in lab.memory.search_hits(QUERY, k=50)}
        flt = lab.search(QUERY, k=5, cache=False, where={"memory_type": "knowledge"})
        _check_search(flt, expected)
    with omnilab.open(path, database_url=database_url, embedder="hashing") as fresh:  # reconciled on open
        _check_search(fresh.search(QUERY, k=5, cache=False), expected)
        again = fresh.hybrid_search(QUERY, k=5)
        assert again["memory_id"].tolist() == hybrid["memory_id"].tolist()
        np.testing.assert_allclose(again["score"], hybrid["score"], atol=1e-6)


def test_more_vanished_rows_than_k_still_fill_k(tmp_path, database_url):
    """Forty of the best fifty vanish behind the index's back: the refill fetches past all of them."""
    texts = _texts(400)
    with omnilab.open(tmp_path / "lab", database_url=database_url, embedder="hashing") as lab:
        ids = lab.ingest([{"content": t, "memory_type": "code"} for t in texts], progress=False)["memory_ids"]
        gone = lab.search(QUERY, k=40, cache=False)["memory_id"].tolist()
        with lab.engine.begin() as conn:  # behind the store's back, as another tool or process would
            conn.execute(
                sa.text("DELETE FROM memory_entries WHERE id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
                {"ids": gone},
            )
            # Other code announces memory writes (the in-memory filter columns follow the change log only);
            # the FAISS index still holds the forty vectors until the search's catch-up drops them.
            lab.memory.record_external_write(conn)
        keep = np.array([m not in gone for m in ids])
        _check_search(lab.search(QUERY, k=10, cache=False), _reference(lab, texts, ids, QUERY, 10, keep))
        hybrid = lab.hybrid_search(QUERY, k=10)
        assert len(hybrid) == 10 and not set(gone) & set(hybrid["memory_id"])


# ------------------------------------------------------------------------------------ expiry (item 5)
def _expiry_rows(texts: list[str]) -> tuple[list[dict], np.ndarray]:
    """Every third memory expired a day ago (these carry the query's words), some expire tomorrow, most never."""
    rows, expired = [], []
    for i, t in enumerate(texts):
        row = {"content": t, "memory_type": ("code", "task")[i % 2], "metadata": {"g": i % 5}}
        if i % 3 == 0:
            row["content"] = f"{QUERY} {t}"
            row["expires_at"] = NOW - dt.timedelta(days=1)
        elif i % 3 == 1 and i % 2:
            row["expires_at"] = NOW + dt.timedelta(days=1)
        rows.append(row)
        expired.append(i % 3 == 0)
    return rows, np.array(expired)


def test_expired_memories_are_hidden_and_purged(tmp_path, database_url):
    texts = _texts(300)
    rows, expired = _expiry_rows(texts)
    contents = [r["content"] for r in rows]
    with omnilab.open(tmp_path / "lab", database_url=database_url, embedder="hashing") as lab:
        ids = lab.ingest(rows, progress=False)["memory_ids"]
        dead = {m for m, e in zip(ids, expired) if e}
        # exact pre-filter: the expired memories are the best matches, yet k unexpired ones come back
        _check_search(lab.search(QUERY, k=10, cache=False), _reference(lab, contents, ids, QUERY, 10, ~expired))
        _check_search(
            lab.search(QUERY, k=10, cache=False, include_expired=True), _reference(lab, contents, ids, QUERY, 10)
        )
        g1 = np.array([r["metadata"]["g"] == 1 for r in rows])
        _check_search(
            lab.search(QUERY, k=7, cache=False, where={"metadata.g": 1}),
            _reference(lab, contents, ids, QUERY, 7, ~expired & g1),
        )
        hybrid = lab.hybrid_search(QUERY, k=10)
        assert len(hybrid) == 10 and not dead & set(hybrid["memory_id"])
        np.testing.assert_allclose(hybrid["vector_score"], _cosines(lab, hybrid["content"].tolist(), QUERY), atol=1e-5)
        assert dead & set(lab.hybrid_search(QUERY, k=10, include_expired=True)["memory_id"])
        assert sorted(lab.memories()["id"]) == sorted(set(ids) - dead)
        assert sorted(lab.memories(include_expired=True)["id"]) == sorted(ids)
        assert sorted(lab.memories("code")["id"]) == sorted(
            m for m, r in zip(ids, rows) if r["memory_type"] == "code" and m not in dead
        )
        with pytest.raises(InvalidInput):
            lab.search(QUERY, include_expired="yes")
        # expiring later by update; a relationship and an access row must not block the purge
        late = lab.search(QUERY, k=1, cache=False)["memory_id"][0]
        lab.update_memory(late, expires_at=NOW - dt.timedelta(seconds=1))
        assert late not in set(lab.search(QUERY, k=10, cache=False)["memory_id"])
        dead.add(late)
        live = sorted(set(ids) - dead)
        lab.relate(late, live[0])
        vids = lab.memory.vector_ids_for(dead)
        assert lab.purge_expired() == len(dead)
        assert lab.purge_expired() == 0
        assert sorted(lab.memories(include_expired=True)["id"]) == live
        assert not set(vids.values()) & set(lab.memory.index.keys())
        assert len(lab.memory.index) == len(live)
        with lab.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM memory_vectors")).scalar_one() == len(live)
            assert conn.execute(sa.text("SELECT count(*) FROM memory_relationships")).scalar_one() == 0
            if lab.backend == "sqlite":
                assert conn.execute(sa.text("SELECT count(*) FROM memory_fts")).scalar_one() == len(live)
        keep = np.array([m in set(live) for m in ids])
        _check_search(
            lab.search(QUERY, k=10, cache=False, include_expired=True), _reference(lab, contents, ids, QUERY, 10, keep)
        )
        path = lab.path
    with omnilab.open(path, database_url=database_url, embedder="hashing") as again:
        assert len(again.memory.index) == len(live)
        assert sorted(again.memories(include_expired=True)["id"]) == live


def test_expiry_reads_every_sqlite_timestamp_format(tmp_path):
    """The platform writes SQLite timestamps as ISO text with a 'T' and an offset, or without fractions."""
    with omnilab.open(tmp_path / "lab", embedder="hashing") as lab:
        ids = lab.ingest([{"content": f"{QUERY} {i}", "memory_type": "code"} for i in range(6)], progress=False)[
            "memory_ids"
        ]
        past, future = NOW - dt.timedelta(hours=3), NOW + dt.timedelta(hours=3)
        stamps = [
            past.isoformat(),
            past.strftime("%Y-%m-%d %H:%M:%S"),
            past.astimezone(dt.timezone(dt.timedelta(hours=5))).isoformat(),  # same instant, +05:00
            future.isoformat(),
            future.strftime("%Y-%m-%d %H:%M:%S"),
            "not a time",
        ]
        with lab.engine.begin() as conn:
            for m, s in zip(ids, stamps):
                conn.execute(sa.text("UPDATE memory_entries SET expires_at = :s WHERE id = :m"), {"s": s, "m": m})
            lab.memory.record_external_write(conn)  # other code announces memory writes
        assert sorted(lab.search(QUERY, k=10, cache=False)["memory_id"]) == sorted(ids[3:])
        table = lab.memory.searcher.table  # read every form as SQLite's julianday() does
        assert sorted(table.field("memory_id")[table.expires[: table.n] != -(2**63)].tolist()) == sorted(ids[:5])
        assert sorted(lab.memory.hybrid_search(QUERY, k=10)["memory_id"]) == sorted(ids[3:])
        assert lab.purge_expired() == 3


@pytest.mark.skipif(not REDIS_URL, reason="OMNILAB_TEST_REDIS_URL is not set")
def test_cached_search_results_expire_with_their_memories(tmp_path, database_url):
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    query = f"{QUERY} {uuid.uuid4().hex}"  # unique: no other lab's cache entry can answer it
    with omnilab.open(
        tmp_path / "lab", database_url=database_url, embedder="hashing", redis_url=REDIS_URL, redis_prefix=prefix
    ) as lab:
        lab.ingest([{"content": t, "memory_type": "code"} for t in _texts(50)], progress=False)
        soon = lab.remember(query, "code", expires_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2))
        first = lab.search(query, k=3, cache=True)
        second = lab.search(query, k=3, cache=True)
        assert first.attrs["cache"] == "miss" and second.attrs["cache"] == "hit"
        assert first["memory_id"][0] == soon == second["memory_id"][0]
        time.sleep(2.2)
        after = lab.search(query, k=3, cache=True)
        assert soon not in set(after["memory_id"]) and len(after) == 3


def test_attached_platform_without_expiry_column_expires_nothing(tmp_path):
    path = tmp_path / "omnidev.db"
    written = build_platform_sqlite(path, now=NOW)
    with omnilab.open(tmp_path / "lab", database_url=f"sqlite:///{path}", read_only=True, embedder="hashing") as lab:
        assert len(lab.memories()) == len(written["memory_entries"])
        assert len(lab.search("payroll salary", k=5, cache=False)) == 5
        assert len(lab.hybrid_search("payroll salary", k=5)) == 5
        with pytest.raises(ReadOnlyViolation):
            lab.purge_expired()


# ------------------------------------------------------------------------- lost connection (item 6)
@pytest.mark.postgres
@pytest.mark.parametrize("moment", ["statement", "copy", "commit"])
def test_ingest_interrupted_by_a_killed_backend_reports_what_was_written(tmp_path, pg_url, pg_schema_url, moment):
    """pg_terminate_backend from another connection while the third batch is being written."""
    texts = [f"row {i} " + t for i, t in enumerate(_texts(5000))]
    lab = omnilab.open(tmp_path / "lab", database_url=pg_schema_url, embedder="hashing")
    admin = sa.create_engine(pg_url)
    seen = {"batches": 0}

    def kill(conn: sa.Connection) -> None:
        pid = conn.connection.dbapi_connection.info.backend_pid
        with admin.connect() as a:  # waits (up to 5 s) until the backend is gone
            assert a.execute(sa.text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid}).scalar_one()

    def on_statement(conn, cursor, statement, params, context, executemany):
        if statement.startswith("INSERT INTO memory_vectors"):
            seen["batches"] += 1
            if seen["batches"] == 3 and moment == "statement":
                kill(conn)

    def after_statement(conn, cursor, statement, params, context, executemany):
        if statement.startswith("INSERT INTO embedding_cache") and moment == "copy" and seen["batches"] == 2:
            kill(conn)  # the memory rows' COPY, which talks to the driver directly, meets a dead connection

    def on_commit(conn):
        if seen["batches"] == 3 and moment == "commit" and not seen.get("done"):
            seen["done"] = True
            kill(conn)

    sa.event.listen(lab.engine, "before_cursor_execute", on_statement)
    sa.event.listen(lab.engine, "after_cursor_execute", after_statement)
    sa.event.listen(lab.engine, "commit", on_commit)
    try:
        with pytest.raises(StoreUnavailable) as err:
            lab.ingest([{"content": t, "memory_type": "code"} for t in texts], batch_size=1000, progress=False)
        sa.event.remove(lab.engine, "before_cursor_execute", on_statement)
        sa.event.remove(lab.engine, "after_cursor_execute", after_statement)
        sa.event.remove(lab.engine, "commit", on_commit)
        with lab.engine.connect() as conn:
            stored = set(conn.execute(sa.text("SELECT id FROM memory_entries")).scalars())
        assert set(err.value.memory_ids) == stored and len(stored) == 2000  # batches 1-2, nothing of batch 3
        assert err.value.unknown_ids == []
        # the lab carries on: the rest is ingested (the first rows are duplicates) and every row is searchable
        summary = lab.ingest([{"content": t, "memory_type": "code"} for t in texts], progress=False)
        assert summary["added"] == 3000 and summary["duplicates"] == 2000
        assert len(lab.memories()) == 5000 and len(lab.memory.index) == 5000
        assert lab.search(texts[2500], k=1, cache=False)["content"][0] == texts[2500]
    finally:
        lab.close()
        admin.dispose()


def test_bulk_ingest_dedupes_across_batches(tmp_path, database_url):
    """Dedupe state is per batch now (memory stays bounded): later batches still find earlier duplicates."""
    rows = [{"content": f"text {i % 700}", "memory_type": "code"} for i in range(2100)]
    with omnilab.open(tmp_path / "lab", database_url=database_url, embedder="hashing") as lab:
        summary = lab.ingest(rows, batch_size=250, progress=False)
        assert (summary["added"], summary["duplicates"]) == (700, 1400)
        assert sorted(lab.memories()["content"]) == sorted({r["content"] for r in rows})


def test_index_save_streams_to_disk(tmp_path):
    """The saved files load back to the same vectors (the save writes FAISS files directly)."""
    texts = _texts(500)
    with omnilab.open(tmp_path / "lab", embedder="hashing") as lab:
        lab.ingest(
            [{"content": t, "memory_type": ("code", "task")[i % 2]} for i, t in enumerate(texts)], progress=False
        )
        before = lab.memory.index.keys()
        ids, mat = lab.memory.index.vectors(sorted(before))
    assert not [p for p in (tmp_path / "lab" / "vectors").iterdir() if p.suffix == ".tmp"]
    with omnilab.open(tmp_path / "lab", embedder="hashing") as again:
        assert again.memory.index.keys() == before
        ids2, mat2 = again.memory.index.vectors(sorted(before))
        np.testing.assert_array_equal(ids, ids2)
        np.testing.assert_array_equal(mat, mat2)
    assert os.path.exists(tmp_path / "lab" / "vectors" / "manifest.json")
