"""Search/response caches: JSON round trips with dtypes, generation keys, TTL, counters, degraded mode."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import pytest

import omnilab
from omnilab import InvalidInput, StoreUnavailable
from omnilab.sessions.cache import SearchCache, frame_from_json, frame_to_json


def _result_frame(n: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "rank": np.arange(1, n + 1, dtype="int64"),
            "score": rng.random(n).astype("float32"),
            "distance": np.r_[rng.random(n - 1), np.nan],
            "id": pd.array([*range(n - 1), None], dtype="Int64"),
            "memory_id": pd.Series([f"m{i}" for i in range(n - 1)] + [None], dtype="str"),
            "memory_type": ["code"] * n,
            "content": ["def f():\n    return 'é'"] * n,
            "tags": [["a", "b"], [], ["c"], []][:n] + [[]] * max(0, n - 4),
            "metadata": [{"language": "python", "line": i} for i in range(n)],
            "created_at": pd.to_datetime(
                [f"2024-05-0{i + 1}T12:00:00.123456Z" for i in range(n - 1)] + [None], utc=True
            ).astype("datetime64[us, UTC]"),
            "flag": pd.array([True, False, None, True][:n], dtype="boolean"),
            "plain_bool": [True, False] * (n // 2),
        }
    )


def test_frame_json_round_trip_keeps_values_and_dtypes():
    f = _result_frame()
    f.attrs["query"] = "sort a list"
    g = frame_from_json(frame_to_json(f))
    pd.testing.assert_frame_equal(f, g)
    assert g.attrs == {"query": "sort a list"}
    f.attrs["engine"] = object()  # not JSON: dropped from the cached copy, never pickled
    assert frame_from_json(frame_to_json(f)).attrs == {"query": "sort a list"}
    h = f.set_index("memory_id")
    pd.testing.assert_frame_equal(h, frame_from_json(frame_to_json(h)))
    empty = f.iloc[0:0]
    pd.testing.assert_frame_equal(empty, frame_from_json(frame_to_json(empty)))
    assert "pickle" not in frame_to_json(f)


def test_keys_cover_every_parameter():
    base = dict(
        memory_type="code", k=5, threshold=0.3, where={"agent_id": "coder"}, embedder="hashing:256", generation=7
    )
    k0 = SearchCache.key("sort a list", **base)
    assert k0 == SearchCache.key("sort a list", **dict(reversed(list(base.items()))))  # order-free
    changed = [SearchCache.key("sort a list!", **base)]
    for name, value in [
        ("memory_type", "task"),
        ("k", 6),
        ("threshold", 0.31),
        ("where", {"agent_id": "x"}),
        ("embedder", "hashing:512"),
        ("generation", 8),
    ]:
        changed.append(SearchCache.key("sort a list", **{**base, name: value}))
    assert len({k0, *changed}) == len(changed) + 1
    v = np.arange(8, dtype="float32")
    kv = SearchCache.key(v, **base)
    assert kv == SearchCache.key(v.copy(), **base)
    w = v.copy()
    w[3] += 1e-6
    assert kv != SearchCache.key(w, **base) and kv != SearchCache.key(v.astype("float64"), **base)
    with pytest.raises(InvalidInput):
        SearchCache.key(42)


def test_search_cache_hits_generation_and_ttl(rlab):
    cache = rlab.cache.search
    f = _result_frame()
    assert cache.get("q", k=4, generation=1) is None
    assert cache.set("q", f, k=4, generation=1) is True
    pd.testing.assert_frame_equal(cache.get("q", k=4, generation=1), f)
    assert cache.get("q", k=4, generation=2) is None  # a memory write bumped the generation
    cache.set("short", f, ttl=0.2, k=4)
    assert cache.get("short", k=4) is not None
    time.sleep(0.3)
    assert cache.get("short", k=4) is None
    stats = rlab.cache.stats().set_index("cache")
    assert stats.loc["search", ["hits", "misses", "sets"]].tolist() == [2, 3, 2]
    assert stats.loc["search", "hit_rate"] == pytest.approx(2 / 5)
    assert stats.loc["search", "keys"] == 1 and stats.loc["search", "ttl_s"] == 1800
    assert rlab.cache.clear() >= 1 and rlab.cache.stats().loc[0, "keys"] == 0


def test_response_cache(rlab):
    rc = rlab.cache.responses
    assert rc.ttl == 7200
    assert rc.get("coder", "write a sort") is None
    rc.set("coder", "write a sort", {"text": "sorted(x)", "tokens": 12}, model="gpt-4")
    assert rc.get("coder", "write a sort", model="gpt-4") == {"text": "sorted(x)", "tokens": 12}
    assert rc.get("coder", "write a sort", model="gpt-3.5") is None
    assert rc.get("tester", "write a sort", model="gpt-4") is None
    rc.set("coder", "p", "short", ttl=0.2)
    time.sleep(0.3)
    assert rc.get("coder", "p") is None
    st = rlab.cache.stats().set_index("cache").loc["response"]
    assert (st["hits"], st["misses"], st["sets"]) == (1, 4, 2)


def test_search_cache_degrades_with_one_warning_then_recovers(tmp_path, private_redis, caplog):
    with omnilab.open(tmp_path / "lab", redis_url=private_redis.url) as lab:
        cache = lab.cache.search
        f = _result_frame()
        cache.set("q", f, k=4)
        private_redis.kill()
        with caplog.at_level(logging.WARNING, logger="omnilab.sessions.cache"):
            assert cache.get("q", k=4) is None
            assert cache.get("q", k=4) is None
            assert cache.set("q", f, k=4) is False
        warnings = [r for r in caplog.records if "bypassed" in r.getMessage()]
        assert len(warnings) == 1 and f"127.0.0.1:{private_redis.port}" in warnings[0].getMessage()
        with pytest.raises(StoreUnavailable):
            lab.cache.responses.get("a", "b")
        assert lab.counts()["tasks"] == 0  # SQL helpers unaffected
        private_redis.start()  # same lab object: reconnects by itself
        assert cache.get("q", k=4) is None  # the restarted server is empty
        assert cache.set("q", f, k=4) is True
        pd.testing.assert_frame_equal(cache.get("q", k=4), f)
