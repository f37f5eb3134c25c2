"""The memory store's collaborators on their own: MemorySearch (built from what it uses), the ingest steps,
tuned thresholds and content hashes — in the vectors layer, without a Lab's help."""

from __future__ import annotations

import collections
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from omnilab.errors import InvalidInput
from omnilab.sql import attach
from omnilab.sql.own_tables import search_thresholds
from omnilab.vectors import thresholds
from omnilab.vectors.ingest import dedupe_batch, embed_batch, precomputed_key, validate_batch
from omnilab.vectors.keys import content_hash, stored_content_hash
from omnilab.vectors.memory import MemoryStore
from omnilab.vectors.search import MemorySearch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from platform_data import MEMORIES, build_platform_sqlite  # noqa: E402


def counted(store: MemoryStore, calls: collections.Counter[str]) -> MemorySearch:
    """A MemorySearch over ``store``'s parts whose hooks into the store count their calls."""

    def hook(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            calls[name] += 1
            return fn(*args)

        return run

    return MemorySearch(
        engine=store.engine,
        own=store.own,
        columns=store.columns,
        embedder=store.embedder,
        cache=store.cache,
        index=store.index,
        lock=store._lock,
        catch_up=hook("catch_up", store.keys.check_platform),
        refresh=hook("refresh", store._refresh_for_search),
        key_map=hook("key_map", store.keys.key_map),
        generation=store.sql_generation,
    )


@pytest.fixture
def attached(tmp_path: Path) -> Iterator[MemoryStore]:
    """A store over a platform database attached read-only: memory rows and key rows in two databases."""
    (tmp_path / "platform").mkdir()
    path = tmp_path / "platform" / "omnidev.db"
    build_platform_sqlite(path, n_extra_memories=40)
    engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    (tmp_path / "lab").mkdir()
    own = attach.own_engine(tmp_path / "lab")
    store = MemoryStore(engine, tmp_path / "lab" / "vectors", own_engine=own, read_only=True, embedder="hashing")
    yield store
    store.close()
    engine.dispose()
    own.dispose()


# ------------------------------------------------------------------------------------------ hybrid
def test_hybrid_search_catches_up_refreshes_and_filters_once_on_two_databases(attached):
    store = attached
    where = {"memory_type": {"$in": ["knowledge", "task"]}}
    query = "tokens cookies transactions"
    store.search_hits(query, k=1)  # the first read of an attached platform reconciles: not what is counted
    calls: collections.Counter[str] = collections.Counter()
    searcher = counted(store, calls)
    vec, kw = searcher.hybrid_pools(query, where=where, pool=5)
    # freshness, the query vector, the types and the filter's candidates once (they ran twice before)
    assert calls == {"catch_up": 1, "refresh": 1, "key_map": 1}
    # the vector pool is the exact filtered top 5, with the cosines a plain search gives
    hits = store.search_hits(query, k=5, where=where)
    assert {h.id: h.score for h in hits}.items() <= vec.items()
    # keyword matches only among memories passing the filter, and every candidate has its exact cosine
    names = store.memory_ids_for(vec)
    mem = store.memories(include_expired=True)
    types = dict(zip(mem["id"], mem["memory_type"]))
    assert kw and set(kw) <= set(vec)
    assert {types[names[i]] for i in vec} <= {"knowledge", "task"}
    found, mat = store.index.vectors(list(vec))
    np.testing.assert_allclose([vec[i] for i in found.tolist()], mat @ store.query_vector(query), atol=1e-6)
    # the store's own search object gives the same fused ranking
    fused = searcher.hybrid_search(query, where=where, k=5)
    assert fused["memory_id"].tolist() == store.hybrid_search(query, where=where, k=5)["memory_id"].tolist()


def test_hybrid_search_catches_up_once_on_one_database(lab):
    lab.ingest(
        [
            {
                "content": f"parser number {i} reads {w} files",
                "memory_type": ("code", "task")[i % 2],
                "priority": 1 + i % 10,
            }
            for i, w in enumerate(["csv", "json", "yaml", "toml"] * 10)
        ],
        progress=False,
    )
    calls: collections.Counter[str] = collections.Counter()
    searcher = counted(lab.memory, calls)
    res = searcher.hybrid_search("reads json files", memory_type="code", where={"priority": {"$gte": 3}}, k=4)
    assert calls == {"catch_up": 1, "refresh": 1}  # one database: no key map
    assert len(res) == 4 and set(res["memory_type"]) == {"code"}
    assert (lab.memories().set_index("id").loc[res["memory_id"], "priority"] >= 3).all()


def test_search_object_is_swapped_with_the_index_on_reindex(lab):
    mid = lab.remember("a memory about sockets and ports", "knowledge")
    before = lab.memory.searcher
    lab.reindex("hashing:128", progress=False)
    assert lab.memory.searcher is before
    assert lab.memory.searcher.index is lab.memory.index and lab.memory.keys.index is lab.memory.index
    assert lab.memory.searcher.embedder.dim == 128
    assert lab.search("sockets ports", k=1)["memory_id"].tolist() == [mid]


# -------------------------------------------------------------------------------- store.search
def test_store_search_does_not_cache_by_default_and_checks_the_cache_argument(lab, tmp_path):
    mid = lab.remember("one memory about queues", "knowledge")
    assert lab.memory.search("queues").attrs["cache"] == "off"  # the store's default, whatever the lab's
    assert lab._redis_conn is None  # and the lab's Redis was not started for it
    with pytest.raises(InvalidInput, match="cache must be True, False or None"):
        lab.memory.search("queues", cache="yes")
    alone = MemoryStore(lab.engine, tmp_path / "alone", own_engine=lab.own_engine, embedder="hashing")
    try:  # no result cache injected: never cached
        res = alone.search("queues", cache=True)
        assert res.attrs["cache"] == "off" and res["memory_id"].tolist() == [mid]
    finally:
        alone.close()


# ---------------------------------------------------------------------------------- thresholds
def test_thresholds_live_in_the_own_database(lab):
    engine, name = lab.memory.own, lab.memory.embedder.name
    assert thresholds.get_threshold(engine, "code", name) is None
    row = thresholds.save_threshold(
        engine, 0.4, memory_type="code", embedder=name, f1=0.5, k=10, n_queries=3, details={"score": 0.41}
    )
    assert row["threshold"] == 0.4 and row["f1"] == 0.5 and row["precision"] is None
    thresholds.save_threshold(engine, 0.3, memory_type="code", embedder=name)  # replaces, metrics cleared
    thresholds.save_threshold(engine, 0.9, memory_type="code", embedder="other-embedder:8")
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(search_thresholds.c.embedder, search_thresholds.c.threshold, search_thresholds.c.f1)
        ).all()
    assert sorted(stored) == sorted([("other-embedder:8", 0.9, None), (name, 0.3, None)])
    assert thresholds.get_threshold(engine, "code", name) == pytest.approx(0.3)
    frame = thresholds.saved_thresholds(engine)
    assert frame["embedder"].tolist() == sorted([name, "other-embedder:8"])
    assert thresholds.resolve_threshold(engine, "tuned", "code", embedder=name) == pytest.approx(0.3)
    assert thresholds.resolve_threshold(engine, 0.25, None, embedder=name) == 0.25
    assert thresholds.resolve_threshold(engine, None, "code", embedder=name) is None
    for bad, match in (
        (lambda: thresholds.resolve_threshold(engine, "tuned", "task", embedder=name), "no tuned threshold"),
        (lambda: thresholds.resolve_threshold(engine, "tuned", ["code"], embedder=name), "one memory_type"),
        (lambda: thresholds.resolve_threshold(engine, "best", "code", embedder=name), "'tuned'"),
        (lambda: thresholds.save_threshold(engine, 1.5, memory_type="code", embedder=name), "-1, 1"),
        (lambda: thresholds.save_threshold(engine, True, memory_type="code", embedder=name), "cosine"),
        (lambda: thresholds.save_threshold(engine, 0.5, memory_type=None, embedder=name), "needs a"),
        (
            lambda: thresholds.save_threshold(engine, 0.5, memory_type="nonsense", embedder=name),
            "memory_type must be one of",
        ),
        (lambda: thresholds.save_threshold(engine, 0.5, memory_type="code", embedder=" "), "embedder must be"),
    ):
        with pytest.raises(InvalidInput, match=match):
            bad()
    assert len(thresholds.saved_thresholds(engine)) == 2


def test_tuned_threshold_of_an_attached_platform_is_kept_in_the_lab_directory(attached):
    store = attached
    thresholds.save_threshold(store.own, 0.2, memory_type="knowledge", embedder=store.embedder.name)
    query = MEMORIES[2][1]
    tuned = store.search(query, memory_type="knowledge", threshold="tuned", k=20)
    plain = store.search(query, memory_type="knowledge", threshold=0.2, k=20)
    assert len(tuned) >= 1 and tuned["memory_id"].tolist() == plain["memory_id"].tolist()
    assert (tuned["score"] >= 0.2).all()


# ------------------------------------------------------------------------------------- ingest
def test_ingest_steps_return_what_they_decided(lab):
    store = lab.memory
    lab.ingest([{"id": "m1", "content": "alpha beta", "memory_type": "code"}], progress=False)
    vec = np.arange(1, store.embedder.dim + 1, dtype=np.float32)
    batch = [
        {"id": "m1", "content": "another text", "memory_type": "code"},  # id taken
        {"content": " alpha   beta ", "memory_type": "code"},  # stored content (whitespace aside)
        {"content": "gamma", "memory_id": "m2"},  # memory_id is the id; type from the default
        {"content": "gamma", "memory_type": "task"},  # repeats the row before
        {"content": "delta", "memory_type": "task", "embedding": vec},
    ]
    valid = validate_batch([dict(r) for r in batch], 10, "task", store.embedder.dim)
    assert valid.named == [True, False, True, False, False]
    assert valid.hashes[1] == content_hash("alpha beta") and valid.hashes[2] == valid.hashes[3]
    assert [r["memory_type"] for r in valid.rows] == ["code", "code", "task", "task", "task"]
    np.testing.assert_allclose(valid.vectors[4], vec / np.linalg.norm(vec), rtol=1e-6)
    assert valid.vectors[:4] == [None] * 4

    fresh, duplicates, leftover = dedupe_batch(store.engine, store.own, valid, dedupe=True)
    assert [r["content"] for r in fresh.rows] == ["gamma", "delta"] and duplicates == 3 and leftover == {}
    every, duplicates, _ = dedupe_batch(store.engine, store.own, valid, dedupe=False)
    assert len(every.rows) == 4 and duplicates == 1  # only the taken id

    vectors = embed_batch(store.embedder, store.cache, fresh)
    assert vectors.keys[1] == precomputed_key(fresh.vectors[1]) and vectors.precomputed == 1
    assert vectors.embedded + vectors.cache_hits == 1 and set(vectors.new) >= {vectors.keys[1]}
    np.testing.assert_allclose(vectors.vectors[vectors.keys[0]], store.embedder.embed(["gamma"])[0], atol=1e-6)

    # a named id whose memory row is gone (deleted by another process) leaves a key row to replace
    vid = store.vector_ids_for(["m1"])["m1"]
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM memory_entries WHERE id = 'm1'"))
    again = validate_batch([{"id": "m1", "content": "back again", "memory_type": "code"}], 0, None, store.embedder.dim)
    assert dedupe_batch(store.engine, store.own, again, dedupe=True)[2] == {"m1": vid}


def test_validate_batch_names_the_row(lab):
    dim = lab.memory.embedder.dim
    with pytest.raises(InvalidInput, match="memory row 7: content text is empty"):
        validate_batch(
            [{"content": "ok", "memory_type": "code"}, {"content": "  ", "memory_type": "code"}], 6, None, dim
        )
    with pytest.raises(InvalidInput, match="memory row 0: 'content_hash' is assigned by omnilab"):
        validate_batch([{"content": "ok", "memory_type": "code", "content_hash": "x"}], 0, None, dim)
    with pytest.raises(InvalidInput, match="memory row 0: id and memory_id differ"):
        validate_batch([{"content": "ok", "memory_type": "code", "id": "a", "memory_id": "b"}], 0, None, dim)


def test_one_content_hash_for_new_and_stored_content():
    assert content_hash("a  b\n") == content_hash(" a b") == stored_content_hash("a b")
    for bad in ("", "   ", None, 5, "lone \udcff"):
        with pytest.raises(InvalidInput):
            content_hash(bad)
        assert stored_content_hash(bad) is None
