"""lab.search through the Redis search cache: hits, invalidation by any memory write, bypass, degraded mode."""

import numpy as np
import pandas as pd
import pytest

import omnilab


@pytest.fixture
def cached_lab(qlab):
    """A lab on each Redis variant x SQL backend with twenty small code memories."""
    qlab.insert("agents", {"name": "coder", "agent_type": "coder"})
    qlab.ingest(
        [
            {"content": f"function number {i} parses {w} records", "memory_type": "code", "agent_id": "coder"}
            for i, w in enumerate(["csv", "json", "xml", "yaml", "toml"] * 4)
        ],
        progress=False,
    )
    return qlab


def test_second_identical_search_is_a_hit_and_equal(cached_lab):
    first = cached_lab.search("parses json records", k=5, cache=True)
    second = cached_lab.search("parses json records", k=5, cache=True)
    assert first.attrs["cache"] == "miss" and second.attrs["cache"] == "hit"
    pd.testing.assert_frame_equal(first, second)
    stats = cached_lab.cache.stats().set_index("cache")
    assert stats.loc["search", "hits"] >= 1


def test_any_argument_changes_the_key(cached_lab):
    cached_lab.search("parses json records", k=5, cache=True)
    for kw in ({"k": 4}, {"threshold": 0.1}, {"memory_type": "code"}, {"where": {"agent_id": "coder"}}):
        assert cached_lab.search("parses json records", cache=True, **{"k": 5, **kw}).attrs["cache"] == "miss"
    vec = np.asarray(cached_lab.memory.embedder.embed(["parses json records"])[0])
    assert cached_lab.search(vec, k=5, cache=True).attrs["cache"] == "miss"
    assert cached_lab.search(vec, k=5, cache=True).attrs["cache"] == "hit"


@pytest.mark.parametrize("write", ["remember", "forget", "update", "insert"])
def test_every_memory_write_invalidates(cached_lab, write):
    q = "parses json records"
    before = cached_lab.search(q, k=50, cache=True)
    assert cached_lab.search(q, k=50, cache=True).attrs["cache"] == "hit"
    if write == "remember":
        mid = cached_lab.remember("a brand new function parses json records quickly", "code")
    elif write == "forget":
        mid = before["memory_id"][0]
        cached_lab.forget([mid])
    elif write == "update":
        mid = before["memory_id"][0]
        cached_lab.update_memory(mid, content="now about something else entirely")
    else:
        cached_lab.insert("memory_entries", {"content": "inserted row parses json records", "memory_type": "code"})
        mid = None
    after = cached_lab.search(q, k=50, cache=True)
    assert after.attrs["cache"] == "miss"
    fresh = cached_lab.search(q, k=50, cache=False)
    pd.testing.assert_frame_equal(after, fresh, check_like=False)
    if write == "remember":
        assert mid in set(after["memory_id"])
    if write == "forget":
        assert mid not in set(after["memory_id"])
    if write == "insert":
        assert "inserted row parses json records" in set(after["content"])


def test_cache_false_bypasses(cached_lab):
    cached_lab.search("parses xml records", k=3, cache=True)
    assert cached_lab.search("parses xml records", k=3, cache=False).attrs["cache"] == "off"


def test_default_uses_the_cache_only_for_a_server_or_a_running_embedded_redis(tmp_path):
    with omnilab.open(tmp_path / "lab", embedder="hashing") as lab:
        lab.remember("one memory about sockets", "knowledge")
        assert lab.search("sockets").attrs["cache"] == "off"  # embedded Redis is not started for a search
        assert lab._redis_conn is None
        lab.sessions  # the user touched Redis: the search cache joins in
        lab.search("sockets")
        assert lab.search("sockets").attrs["cache"] == "hit"


def test_search_keeps_working_when_redis_dies_and_uses_the_cache_again_after(tmp_path, private_redis, caplog):
    with omnilab.open(tmp_path / "lab", embedder="hashing", redis_url=private_redis.url) as lab:
        lab.remember("a memory about the network stack", "knowledge")
        assert lab.search("network").attrs["cache"] == "miss"
        private_redis.kill()
        with caplog.at_level("WARNING"):
            degraded = [lab.search("network") for _ in range(3)]
        assert all(d.attrs["cache"] == "miss" and len(d) == 1 for d in degraded)  # answered from the index
        assert sum("cache bypassed" in r.getMessage() for r in caplog.records) == 1  # one warning, not three
        private_redis.start()
        lab.search("network")
        assert lab.search("network").attrs["cache"] == "hit"


def test_loading_the_sample_invalidates_cached_results(rlab):
    assert rlab.search("parse a date", k=3, cache=True).empty
    assert rlab.search("parse a date", k=3, cache=True).attrs["cache"] == "hit"
    rlab.load_sample("small")
    after = rlab.search("parse a date", k=3, cache=True)
    assert after.attrs["cache"] == "miss" and len(after) == 3


def test_a_memory_store_caches_through_the_provider_it_is_given(rlab, tmp_path, redis_url, redis_prefix):
    """No Lab in between: the store asks its provider for a cache on each search and keys entries by the
    arguments, the embedder, the write generation and the provider's scope."""
    from omnilab.sessions.cache import SearchCache
    from omnilab.sessions.connection import RedisConnection
    from omnilab.vectors.memory import MemoryStore
    from omnilab.vectors.search import ResultCacheSlot

    conn = RedisConnection(redis_url, redis_prefix, lab_dir=tmp_path / "redis")
    asked: list[bool | None] = []

    def provider(scope):
        def provide(cache):
            asked.append(cache)
            return None if cache is False else ResultCacheSlot(SearchCache(conn), scope)

        return provide

    rlab.remember("a memory about the network stack", "knowledge")
    stores = [
        MemoryStore(
            rlab.engine, tmp_path / name, own_engine=rlab.own_engine, embedder="hashing", result_cache=provider(name)
        )
        for name in ("a", "b")
    ]
    try:
        a, b = stores
        first = a.search("network", cache=True)
        second = a.search("network", cache=None)
        assert (first.attrs["cache"], second.attrs["cache"]) == ("miss", "hit")
        pd.testing.assert_frame_equal(first, second)
        assert a.search("network").attrs["cache"] == "off"  # the store's default: no caching
        assert asked == [True, None, False]
        assert b.search("network", cache=True).attrs["cache"] == "miss"  # another scope: another lab
        a.remember("another memory about the network", "knowledge")
        after = a.search("network", cache=True)
        assert after.attrs["cache"] == "miss" and len(after) == 2  # the write changed the generation
    finally:
        for store in stores:
            store.close()
        conn.close()
