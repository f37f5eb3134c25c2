"""The memory API on both SQL backends: remember/ingest/forget/update, sources, caches, embedder records."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from vector_data import seeded_rows

import omnilab
from omnilab.errors import ConfigError, InvalidInput, NotFound


def test_remember_search_forget(lab):
    a = lab.remember(
        "def parse_header_line(line): return line.split(':')",
        "code",
        priority=8,
        tags=["http"],
        metadata={"language": "python"},
    )
    b = lab.remember("Deploy the service to staging after tests pass", "task")
    assert isinstance(a, str) and len(a) == 36
    top = lab.search("parse header line", k=1)
    assert top["memory_id"].tolist() == [a] and top["priority"].iloc[0] == 8
    assert top["tags"].iloc[0] == ["http"] and top["metadata"].iloc[0] == {"language": "python"}
    gen = lab.memory.generation
    assert lab.forget([a, "no-such-id"]) == 1
    assert lab.memory.generation > gen
    assert lab.search("parse header line", k=5)["memory_id"].tolist() == [b]
    assert lab.forget(a) == 0
    assert len(lab.memory.index) == 1 and lab.counts()["memory_entries"] == 1


def test_update_reembeds_and_moves_type(lab):
    a = lab.remember("alpha beta gamma", "knowledge")
    lab.remember("completely unrelated words about deployment", "task")
    before = lab.memory.index.vectors(lab.memory.vector_ids_for([a]).values())
    lab.update_memory(a, content="deployment words unrelated completely about")
    assert lab.search("deployment words unrelated completely about", k=1)["memory_id"].iloc[0] == a
    row = lab.memories(id=a).iloc[0]
    assert row["content"].startswith("deployment")
    lab.update_memory(a, memory_type="insight", priority=10, tags=["x"])
    assert lab.search("deployment words", memory_type="insight")["memory_id"].tolist() == [a]
    assert lab.search("deployment words", memory_type="knowledge").empty
    assert lab.memory.index.counts() == {"insight": 1, "task": 1}
    assert before[0].size == 1
    with pytest.raises(NotFound):
        lab.update_memory("nope", content="x")
    with pytest.raises(InvalidInput):
        lab.update_memory(a, priority=99)
    with pytest.raises(InvalidInput):
        lab.update_memory(a, id="other")
    assert lab.memories(id=a).iloc[0]["priority"] == 10  # the failed updates changed nothing


def test_ingest_sources_and_summary(lab, tmp_path):
    rows = [
        {"content": f"note {i} about caching", "memory_type": "knowledge", "tags": ["c"], "metadata": {"i": i}}
        for i in range(30)
    ]
    s = lab.ingest(pd.DataFrame(rows), progress=False, batch_size=7)
    assert (s["added"], s["duplicates"], s["embedded"], s["cache_hits"]) == (30, 0, 30, 0)
    # the same content again is a duplicate; the same id too (``memory_id`` is accepted as its alias)
    s = lab.ingest(rows[:5], progress=False)
    assert (s["added"], s["duplicates"]) == (0, 5)
    mid = lab.memories().iloc[0]["id"]
    s = lab.ingest(
        [
            {"memory_id": mid, "content": "other text", "memory_type": "task"},
            {"id": mid, "content": "yet another text", "memory_type": "task"},
        ],
        progress=False,
    )
    assert (s["added"], s["duplicates"]) == (0, 2)
    s = lab.ingest(
        [{"id": "mem_given_1", "content": "a memory with its own id", "memory_type": "task"}], progress=False
    )
    assert s["memory_ids"] == ["mem_given_1"] and lab.memories(id="mem_given_1")["content"].tolist() == [
        "a memory with its own id"
    ]
    # jsonl and csv files, memory_type given for the whole file
    jl = tmp_path / "m.jsonl"
    jl.write_text("\n".join(json.dumps({"content": f"jsonl memory {i}", "metadata": {"src": "jl"}}) for i in range(4)))
    assert lab.ingest(jl, memory_type="insight", progress=False)["added"] == 4
    csv = tmp_path / "m.csv"
    pd.DataFrame(
        {
            "content": ["csv one", "csv two"],
            "memory_type": ["feedback", "feedback"],
            "priority": [8, 1],
            "tags": ['["a"]', '["b"]'],
        }
    ).to_csv(csv, index=False)
    assert lab.ingest(csv, progress=False)["added"] == 2
    m = lab.memories("feedback")
    assert sorted(m["priority"]) == [1, 8] and sorted(map(tuple, m["tags"])) == [("a",), ("b",)]
    assert len(lab.memories(where={"metadata.src": "jl"})) == 4
    assert lab.search("jsonl memory 2", k=1, memory_type="insight")["content"].iloc[0] == "jsonl memory 2"
    # dedupe off: the same texts become new memories, embedded from the cache
    s = lab.ingest(rows[:10], progress=False, dedupe=False)
    assert (s["added"], s["embedded"], s["cache_hits"]) == (10, 0, 10)


@pytest.mark.parametrize(
    "bad,msg",
    [
        ({"content": "   ", "memory_type": "code"}, "empty"),
        ({"content": "x", "memory_type": "nope"}, "memory_type"),
        ({"content": "x", "memory_type": "code", "priority": 11}, "priority"),
        ({"content": "x", "memory_type": "code", "embedding": [1.0, 2.0]}, "dimension"),
        ({"content": "x", "memory_type": "code", "embedding": [float("nan")] * 384}, "non-finite"),
        ({"content": "x", "memory_type": "code", "embedding": [0.0] * 384}, "zero"),
        ({"content": "x", "memory_type": "code", "agent_id": "ghost"}, "does not exist"),
        ({"content": "x", "memory_type": "code", "vector_id": 7}, "assigned by omnilab"),
        ({"content": "x", "memory_type": "code", "id": 7}, "expected text"),
        ({"content": "x", "memory_type": "code", "colour": "red"}, "unknown column"),
    ],
)
def test_bad_rows_write_nothing(lab, bad, msg):
    good = [{"content": f"good {i}", "memory_type": "code"} for i in range(3)]
    with pytest.raises(InvalidInput, match=msg):
        lab.ingest(good + [bad], progress=False)
    assert lab.counts()["memory_entries"] == 0 and len(lab.memory.index) == 0


def test_bad_sources(lab, tmp_path):
    with pytest.raises(InvalidInput):
        lab.ingest(tmp_path / "missing.jsonl", progress=False)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InvalidInput):
        lab.ingest(tmp_path / "x.txt", progress=False)
    (tmp_path / "bad.jsonl").write_text('{"content": "a", "memory_type": "code"}\nnot json\n')
    with pytest.raises(InvalidInput, match="line 2"):
        lab.ingest(tmp_path / "bad.jsonl", progress=False, batch_size=1)
    with pytest.raises(InvalidInput):
        lab.ingest(42, progress=False)


def test_precomputed_embeddings_are_indexed_as_given(lab):
    rows = seeded_rows(40, seed=5)
    s = lab.ingest(rows, progress=False)
    assert (s["precomputed"], s["embedded"]) == (40, 0)
    vids = lab.memory.vector_ids_for(s["memory_ids"])
    found, vecs = lab.memory.index.vectors([vids[m] for m in s["memory_ids"]])
    assert len(found) == 40
    by_vid = {v: m for m, v in vids.items()}
    ids = s["memory_ids"]
    for i, v in zip(found, vecs):
        np.testing.assert_allclose(v, rows[ids.index(by_vid[int(i)])]["embedding"], atol=1e-6)


def test_relate_and_related(lab):
    a = lab.remember("a", "code")
    b = lab.remember("b", "code")
    c = lab.remember("c", "task")
    lab.relate(a, b, "depends_on", 0.5)
    lab.relate(c, a, "mentions")
    lab.relate(a, b, "depends_on", 0.9)  # updates the strength
    rel = lab.related(a)
    assert rel[["direction", "relationship_type", "memory_id"]].values.tolist() == [
        ["in", "mentions", c],
        ["out", "depends_on", b],
    ]
    assert rel["strength"].tolist() == [1.0, 0.9]
    assert lab.related(a, "mentions")["memory_id"].tolist() == [c]
    with pytest.raises(NotFound):
        lab.relate(a, "missing")
    with pytest.raises(InvalidInput):
        lab.relate(a, a)
    lab.forget(b)  # its relationships go with it (the platform's foreign keys have no ON DELETE)
    assert lab.related(a)["memory_id"].tolist() == [c]
    with lab.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM memory_relationships").scalar_one() == 1


def test_cache_reuse_across_reopen_and_index_rebuild(tmp_path, database_url):
    path = tmp_path / "lab"
    texts = [{"content": f"text number {i} on vector caches", "memory_type": "knowledge"} for i in range(50)]
    with omnilab.open(path, database_url=database_url, embedder="hashing") as lab:
        assert lab.ingest(texts, progress=False)["embedded"] == 50
        gen = lab.memory.generation
    with omnilab.open(path, database_url=database_url) as lab:  # the recorded embedder is used
        assert lab.memory.embedder.name == "hashing-v1:384" and lab.memory.generation == gen
        s = lab.ingest(texts, progress=False, dedupe=False)
        assert (s["embedded"], s["cache_hits"]) == (0, 50)
        n = len(lab.memory.index)
    shutil.rmtree(path / "vectors")  # the index is derived: rebuilt from SQL + cache, nothing embedded
    embedded = []
    orig = omnilab.vectors.embedders.HashingEmbedder.embed

    def spy(self, batch):
        embedded.extend(batch)
        return orig(self, batch)

    omnilab.vectors.embedders.HashingEmbedder.embed = spy
    try:
        with omnilab.open(path, database_url=database_url) as lab:
            assert len(lab.memory.index) == n == 100
            assert (
                lab.search("text number 7 on vector caches", k=2)["content"].tolist()
                == ["text number 7 on vector caches"] * 2
            )
    finally:
        omnilab.vectors.embedders.HashingEmbedder.embed = orig
    assert [e for e in embedded if e != "text number 7 on vector caches"] == []  # only the query


def test_embedder_mismatch_and_reindex(tmp_path, database_url):
    path = tmp_path / "lab"
    with omnilab.open(path, database_url=database_url, embedder="hashing:384") as lab:
        a = lab.remember("the quick brown fox", "knowledge")
    with pytest.raises(ConfigError, match="reindex"):
        omnilab.open(path, database_url=database_url, embedder="hashing:128")
    with omnilab.open(path, database_url=database_url, embedder="hashing:128", reindex=True) as lab:
        assert lab.memory.embedder.dim == 128 and len(lab.memory.index) == 1
        assert lab.search("quick brown fox", k=1)["memory_id"].tolist() == [a]
    with omnilab.open(path, database_url=database_url) as lab:
        assert lab.memory.embedder.name == "hashing-v1:128"
        lab.reindex("hashing:64", progress=False)
        assert lab.search("quick brown fox", k=1)["memory_id"].tolist() == [a]
    manifest = json.loads((path / "vectors" / "manifest.json").read_text())
    assert manifest["embedder"] == "hashing-v1:64" and manifest["dim"] == 64 and manifest["counts"] == {"knowledge": 1}


def test_second_process_view_reloads_on_newer_generation(tmp_path, database_url):
    path = tmp_path / "lab"
    with (
        omnilab.open(path, database_url=database_url, embedder="hashing") as writer,
        omnilab.open(path, database_url=database_url) as reader,
    ):
        assert reader.search("late arrival", k=3).empty
        mid = writer.remember("a late arrival in the index", "session")
        res = reader.search("late arrival", k=3)
        assert res["memory_id"].tolist() == [mid]
        assert reader.memory.generation == writer.memory.generation
        writer.forget(mid)
        assert reader.search("late arrival", k=3).empty


def test_rows_inserted_by_other_tools_are_indexed_on_open(tmp_path, database_url):
    path = tmp_path / "lab"
    with omnilab.open(path, database_url=database_url, embedder="hashing") as lab:
        lab.insert("memory_entries", [{"content": "inserted without the vector store", "memory_type": "error"}])
    with omnilab.open(path, database_url=database_url) as lab:
        assert lab.search("inserted without", k=1)["content"].tolist() == ["inserted without the vector store"]
        assert lab.hybrid_search("vector store", k=1)["keyword_score"].iloc[0] > 0


def test_hybrid_keyword_side_splits_identifiers(lab):
    a = lab.remember("def parseHeaderLine(raw): return raw.partition(':')", "code")
    b = lab.remember("def read_config_file(path): return open(path).read()", "code")
    lab.remember("Nothing to see: weather report for tuesday", "knowledge")
    res = lab.hybrid_search("parse header line", k=3)
    assert res["memory_id"].iloc[0] == a and res["keyword_score"].iloc[0] > 0
    res = lab.hybrid_search("read config file", k=3, fusion="rrf")
    assert res["memory_id"].iloc[0] == b and res["keyword_score"].iloc[0] > 0
    assert lab.hybrid_search("readConfigFile", k=1)["memory_id"].iloc[0] == b
    with pytest.raises(InvalidInput):
        lab.hybrid_search("x", fusion="magic")
    with pytest.raises(InvalidInput):
        lab.hybrid_search("x", weight=1.5)


def test_access_logging_is_opt_in(tmp_path, database_url):
    with omnilab.open(tmp_path / "lab", database_url=database_url, embedder="hashing", log_access=True) as lab:
        lab.remember("logged memory", "code")
        lab.search("logged", k=1)
        lab.memory.close()  # flushes the batch
        acc = lab.table("memory_access")
        assert acc["access_type"].tolist() == ["read"] and acc["query"].tolist() == ["logged"]
        assert acc["memory_id"].tolist() == lab.memories()["id"].tolist()
        assert lab.memories()["access_count"].tolist() == [1]
        mid = lab.memories()["id"].iloc[0]
        assert lab.forget(mid) == 1  # its access rows go first (no ON DELETE on the platform's keys)
        assert lab.table("memory_access").empty


def test_rows_inserted_in_session_are_indexed_before_the_next_search(lab):
    lab.remember("first memory through the store", "code")
    lab.insert("memory_entries", [{"content": "second memory via lab.insert", "memory_type": "code"}])
    res = lab.search("second memory via lab.insert", k=1)
    assert res["content"].tolist() == ["second memory via lab.insert"]
    assert len(lab.memory.index) == 2
