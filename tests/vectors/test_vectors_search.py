"""Exact search and pre-filtered search against a brute-force numpy reference, on SQLite and PostgreSQL."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from vector_data import reference, seeded_rows

import omnilab
from omnilab.errors import InvalidInput


def _same(result, expected, tol=1e-5):
    """Same ids in the same order (allowing swaps only between equal scores) and the same scores."""
    got = list(zip(result["memory_id"], result["score"]))
    assert len(got) == len(expected)
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], atol=tol)
    for (gid, gs), (eid, es) in zip(got, expected):
        if gid != eid:  # only acceptable for a tie
            assert abs(gs - es) < tol and any(abs(s - gs) < tol for _, s in expected if _ == gid)


def test_search_equals_brute_force(seeded):
    lab, rows, ids = seeded
    rng = np.random.default_rng(7)
    for _ in range(5):
        q = rng.standard_normal(384).astype(np.float32)
        _same(lab.search(q, k=10), reference(rows, ids, q, 10))
        _same(lab.search(q, k=7, memory_type="task"), reference(rows, ids, q, 7, lambda r: r["memory_type"] == "task"))
    # a memory's own vector finds it first with cosine 1
    res = lab.search(rows[42]["embedding"], k=1)
    assert res["memory_id"].iloc[0] == ids[42] and res["score"].iloc[0] == pytest.approx(1.0, abs=1e-5)
    assert list(res.columns[:10]) == [
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
    ]


def test_threshold_keeps_cosine_at_least_t(seeded):
    lab, rows, ids = seeded
    q = rows[3]["embedding"] + 0.5 * rows[4]["embedding"]
    for t in (0.05, 0.3, 0.9):
        res = lab.search(q, k=50, threshold=t)
        exp = reference(rows, ids, q, 50, threshold=t)
        _same(res, exp)
        assert (res["score"] >= t).all()
    assert lab.search(q, k=5, threshold=1.0).empty


FILTERS = [
    ({"metadata.group": 3}, lambda r: r["metadata"]["group"] == 3),
    ({"metadata.group": {"$eq": 3}}, lambda r: r["metadata"]["group"] == 3),
    ({"metadata.lang": {"$ne": "go"}}, lambda r: r["metadata"].get("lang") != "go"),
    ({"metadata.lang": {"$in": ["go", "rust"]}}, lambda r: r["metadata"].get("lang") in ("go", "rust")),
    ({"metadata.lang": {"$nin": ["go", "rust"]}}, lambda r: r["metadata"].get("lang") not in ("go", "rust")),
    ({"metadata.score": {"$gt": 0.9}}, lambda r: r["metadata"]["score"] > 0.9),
    ({"metadata.score": {"$gte": 0.2, "$lt": 0.25}}, lambda r: 0.2 <= r["metadata"]["score"] < 0.25),
    ({"metadata.group": {"$lte": 2}}, lambda r: r["metadata"]["group"] <= 2),
    ({"metadata.rare": True}, lambda r: r["metadata"]["rare"] is True),
    ({"metadata.labels": {"$contains": "beta"}}, lambda r: "beta" in r["metadata"].get("labels", [])),
    ({"metadata.lang": None}, lambda r: r["metadata"].get("lang") is None),
    ({"tags": {"$contains": "hot"}}, lambda r: "hot" in r["tags"]),
    ({"priority": {"$gte": 8}}, lambda r: r["priority"] >= 8),
    (
        {"priority": {"$in": [1, 10]}, "memory_type": "code"},
        lambda r: r["priority"] in (1, 10) and r["memory_type"] == "code",
    ),
    ({"session_id": {"$ne": "s3"}}, lambda r: r["session_id"] != "s3"),
    (
        {"$or": [{"metadata.group": 1}, {"tags": {"$contains": "t5"}}]},
        lambda r: r["metadata"]["group"] == 1 or "t5" in r["tags"],
    ),
    (
        {"$and": [{"metadata.group": {"$gt": 10}}, {"metadata.lang": "python"}, {"priority": {"$lt": 8}}]},
        lambda r: r["metadata"]["group"] > 10 and r["metadata"].get("lang") == "python" and r["priority"] < 8,
    ),
    ({"metadata.group": 999}, lambda r: False),
]


@pytest.mark.parametrize("where,keep", FILTERS, ids=[str(f[0]) for f in FILTERS])
def test_filtered_search_equals_brute_force(seeded, where, keep):
    lab, rows, ids = seeded
    q = np.random.default_rng(zlib.crc32(str(where).encode())).standard_normal(384).astype(np.float32)
    expected = reference(rows, ids, q, 10, keep)
    _same(lab.search(q, k=10, where=where), expected)
    # the same rows come back from memories() (the filter is one SQL clause for both)
    n_match = sum(keep(r) for r in rows)
    assert len(lab.memories(where=where)) == n_match


def test_hybrid_search_respects_where(seeded):
    lab, rows, ids = seeded
    res = lab.hybrid_search("memory number 12 group", k=10, where={"metadata.group": 12})
    allowed = {ids[i] for i, r in enumerate(rows) if r["metadata"]["group"] == 12}
    assert len(res) == 10 and set(res["memory_id"]) <= allowed


@pytest.mark.parametrize(
    "where",
    [
        {"colour": "red"},
        {"metadata.group": {"$regex": "x"}},
        {"$nor": [{"priority": 1}]},
        {"tags": "hot"},
        {"metadata": {"group": 1}},
        {"metadata.bad key": 1},
        {"priority": {"$in": 5}},
        {"priority": "high"},
        {"metadata.group": {"$gt": True}},
        {"$or": []},
        {"created_at": {"$gt": "not a date"}},
        ["priority"],
    ],
)
def test_bad_filters_raise_invalid_input(lab, where):
    lab.remember("something", "code")
    with pytest.raises(InvalidInput):
        lab.search("something", where=where)


def test_bad_search_arguments(lab):
    lab.remember("something", "code")
    for kwargs in ({"k": 0}, {"k": 2.5}, {"threshold": 2}, {"memory_type": "nope"}):
        with pytest.raises(InvalidInput):
            lab.search("x", **kwargs)
    with pytest.raises(InvalidInput):
        lab.search(np.ones(17, dtype=np.float32))
    with pytest.raises(InvalidInput):
        lab.search(np.full(384, np.nan, dtype=np.float32))
    with pytest.raises(InvalidInput):
        lab.search("   ")


def _selective(lab_, n: int, k_values=(10, 50)):
    rows = seeded_rows(n, seed=3, rare_every=1000)  # 0.1 % of the rows have metadata.rare = true
    ids = lab_.ingest(rows, progress=False, batch_size=5000)["memory_ids"]
    matches = sum(r["metadata"]["rare"] for r in rows)
    assert matches == n // 1000
    rng = np.random.default_rng(11)
    for k in k_values:
        q = rng.standard_normal(384).astype(np.float32)
        res = lab_.search(q, k=k, where={"metadata.rare": True})
        assert len(res) == min(k, matches)
        _same(res, reference(rows, ids, q, k, lambda r: r["metadata"]["rare"]))
        # and combined with a type: still the true top-k of the (even fewer) matches
        res = lab_.search(q, k=k, where={"metadata.rare": True}, memory_type="knowledge")
        _same(res, reference(rows, ids, q, k, lambda r: r["metadata"]["rare"] and r["memory_type"] == "knowledge"))


def test_selective_filter_0_1_percent_of_20000(tmp_path):
    with omnilab.open(tmp_path / "lab", embedder="hashing") as lab:
        _selective(lab, 20_000)


@pytest.mark.postgres
def test_selective_filter_0_1_percent_postgres(tmp_path, pg_schema_url):
    with omnilab.open(tmp_path / "lab", embedder="hashing", database_url=pg_schema_url) as lab:
        _selective(lab, 5_000, k_values=(3, 10))


def test_hnsw_index_unfiltered_recall_and_exact_filters(tmp_path, database_url):
    path = tmp_path / "lab"
    rows = seeded_rows(8000, dim=64, seed=9)
    for r in rows:  # one big type, so the HNSW graph (used from 5,000 vectors) answers unfiltered queries
        r["memory_type"] = "code"
    with omnilab.open(path, embedder="hashing:64", index="hnsw", database_url=database_url) as lab:
        ids = lab.ingest(rows, progress=False, batch_size=4000)["memory_ids"]
        assert lab.memory.index.types["code"].hnsw.ntotal == 8000
        rng = np.random.default_rng(2)
        recall = []
        for _ in range(10):
            q = rng.standard_normal(64).astype(np.float32)
            exp = {m for m, _ in reference(rows, ids, q, 10, lambda r: r["memory_type"] == "code")}
            got = set(lab.search(q, k=10, memory_type="code")["memory_id"])
            recall.append(len(exp & got) / 10)
            # filtered searches are answered exactly, even on an HNSW lab
            _same(
                lab.search(q, k=10, where={"metadata.group": 4}),
                reference(rows, ids, q, 10, lambda r: r["metadata"]["group"] == 4),
            )
        assert np.mean(recall) >= 0.9
        gone = ids[:1500]
        assert lab.forget(gone) == 1500  # HNSW cannot remove: tombstones (a rebuild past 25 %)
        assert (lab.memory.index.types["code"].labels < 0).sum() == 1500
        q = rows[2000]["embedding"]
        assert lab.search(q, k=1)["memory_id"].tolist() == [ids[2000]]
        assert not set(lab.search(rows[10]["embedding"], k=20)["memory_id"]) & set(gone)
    with omnilab.open(path, database_url=database_url, index="hnsw") as lab:  # reloaded from disk
        assert len(lab.memory.index) == 6500 and lab.memory.index.types["code"].hnsw.ntotal == 8000
        assert lab.search(rows[3000]["embedding"], k=1)["memory_id"].tolist() == [ids[3000]]
        assert not set(lab.search(rows[10]["embedding"], k=20)["memory_id"]) & set(gone)
