"""The in-memory filter path (omnilab.vectors.columns + masks) equals the SQL path on every operator of
``where``, on both databases, and stays equal after another process adds, updates and forgets memories."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import omnilab
from omnilab.vectors.masks import Unsupported, where_mask

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
TYPES = ("code", "task", "knowledge")


def _rows(n: int, start: int = 0, seed: int = 0) -> list[dict[str, Any]]:
    """Memories whose fields take every shape a filter meets: missing keys, JSON nulls, numbers that are ints
    or floats, a key that is sometimes a number, a string or a boolean, lists, nested objects, NULL columns."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(start, start + n):
        meta: dict[str, Any] = {"n": i % 7, "f": round(float(rng.uniform(0, 10)), 2), "s": f"w{i % 13:02d}"}
        meta["mixed"] = (1, "1", True, 1.0, "a", False, 0)[i % 7]
        if i % 4 == 0:
            meta["maybe"] = None
        elif i % 4 == 1:
            meta["maybe"] = i % 3
        if i % 3 == 0:
            meta["list"] = [i % 5, f"x{i % 4}", i % 2 == 0]
        if i % 5 == 0:
            meta["nested"] = {"depth": i % 6, "name": f"n{i % 3}"}
        row: dict[str, Any] = {
            "content": f"memory {i} about topic {i % 17}",
            "memory_type": TYPES[i % 3],
            "priority": (1, 5, 8, 10, None)[i % 5],
            "tags": [f"t{i % 6}"] + (["hot"] if i % 11 == 0 else []),
            "metadata": meta,
            "session_id": None if i % 6 == 0 else f"s{i % 9}",
            "agent_id": None,
            "created_at": T0 + dt.timedelta(hours=i),
            "embedding": rng.standard_normal(384).astype(np.float32),
        }
        if i % 10 == 3:
            row["expires_at"] = T0 + dt.timedelta(days=3650)  # far future: live, but not NULL
        out.append(row)
    return out


def _filters() -> list[dict[str, Any]]:
    when = T0 + dt.timedelta(hours=40)
    return [
        # columns
        {"memory_type": "code"},
        {"memory_type": {"$ne": "code"}},
        {"memory_type": {"$in": ["code", "task"]}},
        {"memory_type": {"$nin": ["code"]}},
        {"session_id": None},
        {"session_id": {"$ne": None}},
        {"session_id": "s3"},
        {"session_id": {"$ne": "s3"}},
        {"session_id": {"$in": ["s1", "s2", None]}},
        {"session_id": {"$nin": ["s1", None]}},
        {"session_id": {"$gt": "s4"}},
        {"session_id": {"$lte": "s2"}},
        {"agent_id": None},
        {"priority": 5},
        {"priority": 5.0},
        {"priority": 5.5},
        {"priority": {"$ne": 5.5}},
        {"priority": {"$ne": 5}},
        {"priority": None},
        {"priority": {"$ne": None}},
        {"priority": {"$gt": 4.5}},
        {"priority": {"$gte": 5}},
        {"priority": {"$lt": 8}},
        {"priority": {"$lte": 7.2}},
        {"priority": {"$in": [5, 8.0, 2.5, None]}},
        {"priority": {"$nin": [5, 10]}},
        {"priority": {"$in": []}},
        {"priority": {"$nin": []}},
        {"created_at": {"$gt": when}},
        {"created_at": {"$lte": when.isoformat()}},
        {"created_at": when},
        {"created_at": {"$ne": when}},
        {"created_at": {"$in": [when, T0 + dt.timedelta(hours=3)]}},
        {"created_at": {"$gte": "2026-01-02T00:00:00", "$lt": "2026-01-03T12:00:00+00:00"}},
        {"expires_at": None},
        {"expires_at": {"$ne": None}},
        {"expires_at": {"$gt": T0}},
        {"content": "memory 5 about topic 5"},
        {"content": {"$in": ["memory 7 about topic 7", "nothing"]}},
        {"content": {"$gt": "memory 5"}},
        {"access_count": 0},  # not held in memory: answered by SQL
        # metadata
        {"metadata.n": 3},
        {"metadata.n": 3.0},
        {"metadata.n": {"$ne": 3}},
        {"metadata.n": {"$gt": 2}},
        {"metadata.n": {"$lte": 4.5}},
        {"metadata.n": {"$in": [1, 2.0, "3"]}},
        {"metadata.n": {"$nin": [1, 2]}},
        {"metadata.f": {"$gte": 5.5, "$lt": 8}},
        {"metadata.s": "w03"},
        {"metadata.s": {"$ne": "w03"}},
        {"metadata.s": {"$gt": "w07"}},
        {"metadata.s": {"$in": ["w01", "w02", 3]}},
        {"metadata.mixed": 1},
        {"metadata.mixed": "1"},
        {"metadata.mixed": True},
        {"metadata.mixed": False},
        {"metadata.mixed": {"$ne": 1}},
        {"metadata.mixed": {"$gt": 0}},
        {"metadata.mixed": {"$gte": "1"}},
        {"metadata.mixed": {"$in": [True, 0, "a"]}},
        {"metadata.mixed": {"$nin": [True, 1]}},
        {"metadata.maybe": None},
        {"metadata.maybe": {"$ne": None}},
        {"metadata.maybe": 1},
        {"metadata.maybe": {"$ne": 1}},
        {"metadata.absent": None},
        {"metadata.absent": {"$ne": "x"}},
        {"metadata.list": {"$contains": 3}},
        {"metadata.list": {"$contains": "x1"}},
        {"metadata.list": {"$contains": True}},
        {"metadata.nested.depth": {"$gte": 3}},
        {"metadata.nested.name": "n1"},
        {"metadata.nested.name": {"$ne": "n1"}},
        {"metadata.s.deeper": None},
        {"tags": {"$contains": "t1"}},
        {"tags": {"$contains": "hot"}},
        {"tags": {"$contains": 1}},
        # combinations
        {"memory_type": "task", "metadata.n": {"$gt": 3}},
        {"$or": [{"tags": {"$contains": "hot"}}, {"priority": 10}]},
        {"$and": [{"metadata.s": {"$gte": "w05"}}, {"$or": [{"session_id": None}, {"metadata.mixed": "a"}]}]},
        {"$or": [{"$and": [{"priority": {"$gte": 8}}, {"metadata.list": {"$contains": 0}}]}, {"content": "x"}]},
    ]


def _matching(lab: omnilab.Lab, where: dict[str, Any], *, in_memory: bool) -> set[int]:
    """Vector ids matching ``where`` through the in-memory table or through SQL (the table switched off)."""
    searcher = lab.memory.searcher
    table = searcher.table
    assert table is not None
    table.follow(lab.memory._catch_up())
    cand = searcher._table_candidates(where, None) if in_memory else None
    if cand is None:  # SQL (asked for, or the only exact answer)
        cand = searcher._candidates(searcher._compiled(where), None)
    assert cand is not None
    return {int(i) for ids in cand.values() for i in ids}


def _check_all(lab: omnilab.Lab) -> int:
    """Every filter gives the same ids both ways; returns how many were answered in memory."""
    table = lab.memory.searcher.table
    assert table is not None
    in_memory = 0
    for where in _filters():
        assert _matching(lab, where, in_memory=True) == _matching(lab, where, in_memory=False), where
        try:
            where_mask(where, table)
            in_memory += 1
        except Unsupported:
            pass
    return in_memory


@pytest.fixture
def filled(lab: omnilab.Lab) -> omnilab.Lab:
    assert lab.ingest(_rows(400), progress=False)["added"] == 400
    return lab


def test_every_operator_matches_sql(filled: omnilab.Lab) -> None:
    in_memory = _check_all(filled)
    pg = filled.memory.engine.dialect.name == "postgresql"
    # SQL only: access_count; on PostgreSQL also text order (collation) on columns and metadata
    assert in_memory == len(_filters()) - (1 + 6 if pg else 1)
    assert filled.memory.searcher.table.loads == 1


def test_search_frames_equal_sql_frames(filled: omnilab.Lab) -> None:
    q = np.random.default_rng(9).standard_normal(384).astype(np.float32)
    searcher = filled.memory.searcher
    for where in [None, {"metadata.n": {"$in": [1, 4]}}, {"tags": {"$contains": "hot"}}, {"priority": None}]:
        fast = filled.search(q, k=25, where=where)
        table, searcher.table = searcher.table, None
        try:
            slow = filled.search(q, k=25, where=where)
        finally:
            searcher.table = table
        pd.testing.assert_frame_equal(fast, slow)
        assert fast.attrs["valid_for"] == pytest.approx(slow.attrs["valid_for"], abs=1.0) or (
            fast.attrs["valid_for"] is None and slow.attrs["valid_for"] is None
        )
    fast = filled.hybrid_search("memory about topic 5", k=15, where={"metadata.n": {"$gte": 3}})
    table, searcher.table = searcher.table, None
    try:
        slow = filled.hybrid_search("memory about topic 5", k=15, where={"metadata.n": {"$gte": 3}})
    finally:
        searcher.table = table
    pd.testing.assert_frame_equal(fast, slow)


def test_result_rows_are_copies(filled: omnilab.Lab) -> None:
    q = np.ones(384, dtype=np.float32)
    first = filled.search(q, k=3, where={"metadata.nested.depth": {"$gte": 0}})
    first["metadata"].iloc[0]["nested"]["depth"] = 99
    first["tags"].iloc[0].append("mutated")
    again = filled.search(q, k=3, where={"metadata.nested.depth": {"$gte": 0}})
    assert again["metadata"].iloc[0]["nested"]["depth"] != 99
    assert "mutated" not in again["tags"].iloc[0]


def test_expired_memories_leave_the_fast_path_too(filled: omnilab.Lab) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    mid = filled.remember("expires very soon", "code", metadata={"n": 3})
    filled.update_memory(mid, expires_at=now + dt.timedelta(seconds=1))
    q = filled.memory.query_vector("expires very soon")
    assert filled.search(q, k=1, where={"metadata.n": 3})["memory_id"].iloc[0] == mid
    filled.update_memory(mid, expires_at=now - dt.timedelta(seconds=1))
    assert mid not in set(filled.search(q, k=50, where={"metadata.n": 3})["memory_id"])
    assert mid not in set(filled.search(q, k=50)["memory_id"])
    assert mid in set(filled.search(q, k=50, where={"metadata.n": 3}, include_expired=True)["memory_id"])


_WRITER = textwrap.dedent(
    """
    import datetime as dt, json, sys
    import numpy as np
    import omnilab
    sys.path.insert(0, {tests!r})
    from test_memory_columns import _rows
    lab = omnilab.open({path!r}, database_url={url!r}, embedder="hashing")
    ids = json.loads({ids!r})
    lab.ingest(_rows(60, start=1000, seed=5), progress=False)
    lab.forget(ids[:40])
    lab.update_memory(ids[50], metadata={{"n": 3, "s": "zz", "mixed": "fresh"}}, tags=["t1", "new"])
    lab.update_memory(ids[51], priority=1, session_id=None)
    lab.update_memory(ids[52], content="rewritten by another process", memory_type="task")
    lab.update_memory(ids[53], expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
    lab.close()
    """
)


def test_writes_by_another_process_are_followed(tmp_path: Path, database_url: str | None) -> None:
    path = tmp_path / "lab"
    with omnilab.open(path, database_url=database_url, embedder="hashing") as lab:
        ids = lab.ingest(_rows(300), progress=False)["memory_ids"]
        _check_all(lab)  # loaded now
        table = lab.memory.searcher.table
        loads = table.loads
        script = _WRITER.format(tests=str(Path(__file__).parent), path=str(path), url=database_url, ids=json.dumps(ids))
        subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
        _check_all(lab)
        assert table.loads == loads  # followed through the change log, not read again in full
        assert table.n - table.dead == 300 + 60 - 40
        gone = set(ids[:40])
        q = np.ones(384, dtype=np.float32)
        found = lab.search(q, k=1000)
        assert not gone & set(found["memory_id"]) and ids[53] not in set(found["memory_id"])
        hit = lab.search(q, k=5, where={"metadata.mixed": "fresh"})
        assert list(hit["memory_id"]) == [ids[50]] and hit["tags"].iloc[0] == ["t1", "new"]
        moved = lab.search(q, k=500, where={"content": "rewritten by another process"})
        assert list(moved["memory_id"]) == [ids[52]] and moved["memory_type"].iloc[0] == "task"


def test_resync_reads_everything_again(filled: omnilab.Lab) -> None:
    table = filled.memory.searcher.table
    _check_all(filled)
    loads = table.loads
    filled.insert("memory_entries", [{"id": "outside-1", "content": "written by lab.insert", "memory_type": "code"}])
    filled.memory.reconcile()  # embeds the new row (the next search would too)
    got = filled.search(np.ones(384, dtype=np.float32), k=5, where={"content": "written by lab.insert"})
    assert list(got["memory_id"]) == ["outside-1"]
    assert table.loads == loads + 1
    _check_all(filled)


_BAD_FILTERS: list[Any] = [
    "priority = 1",
    {"colour": "red"},
    {"priority": {"$regex": "x"}},
    {"$xor": [{"priority": 1}]},
    {"$and": []},
    {"$or": "x"},
    {"priority": float("nan")},
    {"priority": True},
    {"priority": "high"},
    {"priority": 2**40},
    {"priority": {}},
    {"priority": {"$gt": None}},
    {"memory_type": {"$contains": "x"}},
    {"memory_type": 3},
    {"memory_type": "a\x00b"},
    {"memory_type": {"$in": "code"}},
    {"memory_type": {"$in": ["code", 3]}},
    {"created_at": "yesterday"},
    {"created_at": {"$in": [T0, "not a date"]}},
    {"created_at": {"$in": [T0 + dt.timedelta(seconds=i) for i in range(10_001)]}},
    {"metadata.": 1},
    {"metadata.a b": 1},
    {"metadata.n": [1, 2]},
    {"metadata.n": {"a": 1}},
    {"metadata.n": {"$gt": True}},
    {"metadata.n": {"$lt": None}},
    {"metadata.n": {"$in": [1, None]}},
    {"metadata.n": {"$in": [1, [2]]}},
    {"metadata.n": 2**70},
    {"metadata.n": float("inf")},
    {"metadata.list": {"$contains": None}},
    {"metadata.list": {"$contains": [1]}},
    {"tags": "t1"},
    {"tags": {"$contains": "t1", "$eq": "t2"}},
    {"tags": {"$contains": None}},
    {1: "x"},
    {"$and": [{"priority": 1}, "x"]},
]


def test_check_filter_refuses_exactly_what_compile_refuses() -> None:
    """The in-memory path validates without compiling: same acceptance, same message, on every filter."""
    from omnilab.errors import InvalidInput
    from omnilab.sql.schema import TABLES
    from omnilab.vectors.filters import check_filter, compile_where

    columns = [c.name for c in TABLES["memory_entries"].columns]
    for where in _filters() + _BAD_FILTERS:
        outcomes = []
        for check in (lambda w: compile_where(w, "sqlite", columns=columns), lambda w: check_filter(w, columns)):
            try:
                check(where)
                outcomes.append(None)
            except InvalidInput as exc:
                outcomes.append(str(exc))
        assert outcomes[0] == outcomes[1], where
    refused = 0
    for where in _BAD_FILTERS:
        try:
            compile_where(where, "sqlite", columns=columns)
        except InvalidInput:
            refused += 1
    assert refused == len(_BAD_FILTERS)  # the list really holds bad filters only
