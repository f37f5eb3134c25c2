"""The bulk ingest paths, on both SQL backends: what lands in SQL equals what went in, computed independently.

Covers the one-statement writes (key rows, change log, embedding cache), the vectorized validation (same
result as the general row validation, bad rows named, nothing of a failing batch written) and the column
conversions of ``omnilab.sql.bulk``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from vector_data import unit_vectors

from omnilab.errors import InvalidInput
from omnilab.sql.bulk import _column_values
from omnilab.sql.schema import TABLES
from omnilab.sql.validate import validate_rows
from omnilab.vectors.hybrid import fts_body
from omnilab.vectors.ingest import MEMORY_TYPES, _fast_rows, _uuid4s, precomputed_key, precomputed_keys
from omnilab.vectors.keys import insert_keys
from omnilab.vectors.meta import log_changes
from omnilab.vectors.sources import fast_memory_rows

DIM = 384  # the lab fixture's hashing embedder


def _rows(n: int, seed: int = 0) -> tuple[list[dict], np.ndarray]:
    raw = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32) * 3  # not normalized
    rows = [
        {
            "content": f"memory {i} about parseHeaderLine and topic {i % 7}",
            "memory_type": ("code", "task", "knowledge")[i % 3],
            "priority": 1 + i % 10,
            "metadata": {"group": i % 5, "lang": ("python", "go")[i % 2], "score": i / 7, "nested": {"k": [i, None]}},
            "tags": [f"t{i % 4}", "é"],
            "agent_id": None,
            "embedding": raw[i],
        }
        for i in range(n)
    ]
    return rows, raw


def _sha(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


def test_ingest_lands_in_sql_as_given(lab):
    rows, raw = _rows(130)
    expected = [dict(r) for r in rows]
    summary = lab.ingest(rows, batch_size=50, progress=False)
    assert summary["added"] == 130 and summary["precomputed"] == 130 and summary["embedded"] == 0
    ids = summary["memory_ids"]
    assert len(set(ids)) == 130 and all(uuid.UUID(i).version == 4 for i in ids)
    store = lab.memory
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)  # float32, as check_vector normalizes one vector
    with store.engine.connect() as conn:
        mem = pd.read_sql(sa.text("SELECT * FROM memory_entries"), conn).set_index("id").loc[ids]
        keys = pd.read_sql(sa.text("SELECT * FROM memory_vectors"), conn).set_index("memory_id").loc[ids]
        cache = dict(conn.execute(sa.text("SELECT text_hash, vector FROM embedding_cache")).all())
        changes = conn.execute(sa.text("SELECT seq, vector_id, op FROM memory_changes ORDER BY id")).all()
        cache_size = [conn.exec_driver_sql("PRAGMA cache_size").scalar()] if conn.dialect.name == "sqlite" else []
        fts = (
            dict(conn.execute(sa.text("SELECT rowid, body FROM memory_fts")).all())
            if conn.dialect.name == "sqlite"
            else dict(conn.execute(sa.text("SELECT vector_id, tsv::text FROM memory_keywords")).all())
        )
    for i, (mid, exp) in enumerate(zip(ids, expected)):
        got = mem.loc[mid]
        assert got["content"] == exp["content"] and got["memory_type"] == exp["memory_type"]
        assert int(got["priority"]) == exp["priority"] and int(got["access_count"]) == 0
        meta = got["metadata"] if isinstance(got["metadata"], dict) else json.loads(got["metadata"])
        tags = got["tags"] if isinstance(got["tags"], list) else json.loads(got["tags"])
        assert meta == exp["metadata"] and tags == exp["tags"]
        assert got["agent_id"] is None and got["expires_at"] is None
        k = keys.loc[mid]
        assert k["memory_type"] == exp["memory_type"] and k["content_hash"] == _sha(exp["content"])
        want_key = hashlib.sha256(b"omnilab-precomputed\0" + unit[i].astype("<f4").tobytes()).hexdigest()
        assert k["embedding_key"] == want_key
        np.testing.assert_allclose(np.frombuffer(cache[want_key], "<f4"), unit[i], rtol=1e-6, atol=1e-7)
        if store.dialect == "sqlite" or store.own.dialect.name == "sqlite":
            assert fts[int(k["id"])] == fts_body(exp["content"])
        else:
            # the keyword row's tsvector: english stems of the words, camelCase split as well
            lexemes = set(re.findall(r"'([^']+)'", fts[int(k["id"])]))
            assert lexemes == {"memori", "topic", "pars", "header", "line", "parseheaderlin", str(i), str(i % 7)}
    # one "add" row per vector, one seq per batch of 50, in insertion order
    vids = [int(keys.loc[m]["id"]) for m in ids]
    adds = [(s, v) for s, v, op in changes if op == "add"]
    assert [v for _, v in adds] == vids
    seqs = [s for s, _ in adds]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert [seqs.count(s) for s in sorted(set(seqs))] == [50, 50, 30]
    # the index holds exactly these vectors under these ids, by type
    got_ids, got_vecs = store.index.vectors(vids)
    order = {v: j for j, v in enumerate(vids)}
    np.testing.assert_allclose(got_vecs, unit[[order[int(v)] for v in got_ids]], rtol=1e-6, atol=1e-7)
    assert store.index.counts() == {"code": 44, "task": 43, "knowledge": 43}
    assert cache_size in ([], [-2000])  # the pooled connection keeps SQLite's default page cache


def test_bad_row_named_and_batch_not_written(lab):
    rows, _ = _rows(30, seed=2)
    rows[17]["embedding"] = np.full(DIM, np.nan, dtype=np.float32)
    with pytest.raises(InvalidInput, match=r"memory row 17: embedding has non-finite values") as info:
        lab.ingest(rows, batch_size=10, progress=False)
    assert len(info.value.memory_ids) == 10  # the first batch committed, the second (rows 10-19) not
    assert lab.counts()["memory_entries"] == 10 and len(lab.memory.index) == 10
    rows, _ = _rows(12, seed=3)
    rows[7]["metadata"] = {"bad": object()}
    rows[9]["priority"] = 11
    with pytest.raises(InvalidInput, match=r"memory row 0\+7\b|memory row 7\b"):
        lab.ingest(rows, batch_size=100, progress=False)
    rows, _ = _rows(12, seed=4)
    rows[5]["content"] = "   "
    with pytest.raises(InvalidInput, match=r"memory row 5: content"):
        lab.ingest(rows, batch_size=100, progress=False)
    assert lab.counts()["memory_entries"] == 10
    with lab.memory.own.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM memory_vectors")).scalar() == 10
        assert conn.execute(sa.text("SELECT count(*) FROM memory_changes WHERE op = 'add'")).scalar() == 10


def test_duplicates_and_named_ids_in_bulk(lab):
    rows, _ = _rows(20, seed=5)
    first = lab.ingest([dict(r) for r in rows[:10]], progress=False)
    again = [dict(r) for r in rows]  # 10 duplicates of content, 10 new
    again[12]["id"] = first["memory_ids"][0]  # an id already stored
    again[13]["id"] = "named-13"
    summary = lab.ingest(again, batch_size=7, progress=False)
    assert summary["duplicates"] == 11 and summary["added"] == 9
    assert "named-13" in summary["memory_ids"]
    assert lab.counts()["memory_entries"] == 19 and len(lab.memory.index) == 19


def test_insert_keys_keeps_existing_rows(lab):
    store = lab.memory
    with store.own.begin() as conn:
        first = insert_keys(
            conn, [{"memory_id": "a", "memory_type": "code", "content_hash": "h", "embedding_key": None}]
        )
    rows = [
        {"memory_id": m, "memory_type": "task", "content_hash": None if m == "c" else f"h{m}", "embedding_key": "k"}
        for m in ("b", "a", "c", "ü-id")
    ]
    with store.own.begin() as conn:
        got = insert_keys(conn, rows)
    assert got["a"] == first["a"] and len(set(got.values())) == 4 and got["b"] > first["a"]
    with store.own.connect() as conn:
        stored = {m: (i, t, h, k) for i, m, t, h, k in conn.execute(sa.text("SELECT * FROM memory_vectors")).all()}
    assert stored["a"] == (first["a"], "code", "h", None)  # theirs stands
    assert stored["c"] == (got["c"], "task", None, "k") and stored["ü-id"][2] == "hü-id"
    assert insert_keys(conn, []) == {}


def test_log_changes_in_order(lab):
    store = lab.memory
    with store.own.begin() as conn:
        log_changes(conn, 777, "add", [5, 3, 9])
        log_changes(conn, 777, "delete", iter([3]))
        log_changes(conn, 778, "resync")
        log_changes(conn, 779, "add", [])
    with store.own.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT seq, vector_id, op, changed_at FROM memory_changes WHERE seq >= 777 ORDER BY id")
        ).all()
    assert [tuple(r[:3]) for r in rows] == [
        (777, 5, "add"),
        (777, 3, "add"),
        (777, 9, "add"),
        (777, 3, "delete"),
        (778, None, "resync"),
    ]
    stamp = pd.Timestamp(rows[0][3])  # SQLite: naive UTC text; PostgreSQL: timestamptz
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    assert abs((pd.Timestamp.now(tz="UTC") - stamp).total_seconds()) < 120


def test_embedding_cache_put_many_ignores_cached_keys(lab):
    cache = lab.memory.cache
    vecs = unit_vectors(3, seed=6)
    with lab.memory.own.begin() as conn:
        cache.put_many(conn, {"k1": vecs[0], "k2": vecs[1]})
    with lab.memory.own.begin() as conn:
        cache.put_many(conn, {"k2": vecs[2], "k3": vecs[2]})
    got = cache.get_many(["k1", "k2", "k3", "k4"])
    assert set(got) == {"k1", "k2", "k3"}
    np.testing.assert_array_equal(got["k2"], vecs[1])  # the first write stands
    np.testing.assert_array_equal(got["k3"], vecs[2])


# ------------------------------------------------------------------------ pure functions (no database)
def _random_row(rng: np.random.Generator, i: int) -> dict:
    """Rows of many shapes: most simple, some that only the general validation can judge."""
    row: dict = {"content": f"text {i}", "memory_type": str(rng.choice(list(MEMORY_TYPES)))}
    pick = int(rng.integers(0, 16))
    if pick == 1:
        row["priority"] = int(rng.integers(0, 12))
    elif pick == 2:
        row["metadata"] = {"a": float("nan")}
    elif pick == 3:
        row["metadata"] = {"a": [1, {"b": "x\x00"}]}
    elif pick == 4:
        row["tags"] = ["ok", 3]
    elif pick == 5:
        row["agent_id"] = "x" * 51
    elif pick == 6:
        row["created_at"] = dt.datetime(2020, 1, 2, 3, 4, 5)  # naive
    elif pick == 7:
        row["created_at"] = dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    elif pick == 8:
        row["metadata"] = {1: "int key"}
    elif pick == 9:
        row["access_count"] = None
    elif pick == 10:
        row["tags"] = ("a",)
    elif pick == 11:
        row["metadata"] = {"deep": {"x": {"y": [True, None, 1.5, "s\udc80"]}}}
    elif pick == 12:
        row["id"] = f"id-{i}"
        row["session_id"] = "s"
    elif pick == 13:
        row["memory_type"] = "no-such-type"
    elif pick == 14:
        row["metadata"] = {"k": 2**70, "f": -0.0, "b": False}
    return row


def _strip(rows: list[dict] | None) -> list[dict] | None:
    """Rows without the parts drawn at random or from the clock (ids unless named, default timestamps)."""
    if rows is None:
        return None
    return [{k: v for k, v in r.items() if k not in ("created_at", "updated_at") and not (k == "id")} for r in rows]


@pytest.mark.parametrize("seed", range(40))
def test_fast_rows_equal_the_reference(seed):
    rng = np.random.default_rng(seed)
    rows = [_random_row(rng, i) for i in range(int(rng.integers(1, 6)))]
    ours = _fast_rows([dict(r) for r in rows], MEMORY_TYPES)
    ref = fast_memory_rows([dict(r) for r in rows], MEMORY_TYPES)
    assert _strip(ours) == _strip(ref)
    if ours is not None:
        for got, given in zip(ours, rows):
            assert got["id"] == given["id"] if "id" in given else uuid.UUID(got["id"]).version == 4
            assert got["created_at"] == given.get("created_at") or got["created_at"].tzinfo is not None
        general = validate_rows("memory_entries", [dict(r) for r in rows])
        assert [r["metadata"] for r in general] == [r["metadata"] for r in ours]
        assert [r["tags"] for r in general] == [r["tags"] for r in ours]
        assert [r["priority"] for r in general] == [r["priority"] for r in ours]


def test_uuid4s_are_random_version_4():
    ids = _uuid4s(2000)
    assert len(set(ids)) == 2000 and _uuid4s(0) == []
    for s in ids:
        u = uuid.UUID(s)
        assert str(u) == s and u.version == 4 and u.variant == uuid.RFC_4122
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", ids[0])


def test_precomputed_keys_equal_one_at_a_time():
    mat = unit_vectors(50, seed=7)
    assert precomputed_keys(mat) == [precomputed_key(v) for v in mat]
    assert precomputed_keys(mat[::2]) == [precomputed_key(v) for v in mat[::2]]  # non-contiguous rows


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_datetime_and_json_columns_equal_the_general_conversion(backend):
    col = TABLES["memory_entries"].c.created_at
    aware = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    values = [aware, None, dt.datetime(2024, 1, 1, 0, 0, 0), aware, dt.datetime(1999, 12, 31, 23, 59, 59, 1)]
    fast = _column_values(col, values, backend)
    ref = _column_values(col, pd.Series(values, dtype=object), backend)  # not a list: the pandas path
    assert fast == ref
    assert fast[0] == ("2024-05-06 12:08:09.123456" if backend == "sqlite" else aware)
    odd = [pd.Timestamp("2024-01-01", tz="UTC"), None]  # not plain datetimes: the general path
    assert _column_values(col, odd, backend) == _column_values(col, pd.Series(odd, dtype=object), backend)
    meta = TABLES["memory_entries"].c.metadata
    docs = [{"a": 1, "é": [1.5, None, True]}, None, [], {"n": float("nan")}, "s"]
    assert _column_values(meta, docs, backend) == [None if d is None else json.dumps(d) for d in docs]
