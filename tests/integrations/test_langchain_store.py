"""The LangChain adapter beyond the standard suite: exact pre-filtered search against a numpy brute force,
the 0.1 % selectivity comparison with LangChain's own FAISS store, MMR, relevance scores, retrievers, async
without blocking the loop, and any ``Embeddings`` object as a lab embedder (name, dim, cache, mismatch, reindex).
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings  # noqa: E402
from langchain_core.vectorstores.utils import maximal_marginal_relevance  # noqa: E402

import omnilab  # noqa: E402
from omnilab.errors import ConfigError, InvalidInput  # noqa: E402
from omnilab.integrations.langchain import LabEmbeddings, OmnilabVectorStore  # noqa: E402

DIM = 32


class CountingEmbeddings(Embeddings):
    """DeterministicFakeEmbedding that counts the texts it is asked to embed (and can be slow)."""

    def __init__(self, size: int = DIM, delay: float = 0.0) -> None:
        self.inner = DeterministicFakeEmbedding(size=size)
        self.size = size
        self.delay = delay
        self.documents = 0
        self.queries = 0

    def embed_documents(self, texts):
        self.documents += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        self.queries += 1
        time.sleep(self.delay)
        return self.inner.embed_query(text)


def unit(rows) -> np.ndarray:
    m = np.asarray(rows, dtype=np.float64)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def corpus(n: int, seed: int = 0, rare_every: int | None = None):
    rng = np.random.default_rng(seed)
    topics = ["cache", "queue", "index", "agent"]
    texts = [f"memory {i} about {rng.choice(topics)} {rng.integers(1e6)}" for i in range(n)]
    metas = [{"group": int(rng.integers(0, 5)), "team": str(rng.choice(["red", "blue"]))} for _ in range(n)]
    if rare_every:
        for i in range(n):
            metas[i]["rare"] = i % rare_every == 7
    return texts, metas


def brute_force(emb: Embeddings, texts, metas, query: str, k: int, pred):
    vecs = unit(emb.embed_documents(texts))
    q = unit([emb.embed_query(query)])[0]
    scores = vecs @ q
    idx = [i for i in range(len(texts)) if pred(metas[i])]
    idx.sort(key=lambda i: -scores[i])
    return [(i, float(scores[i])) for i in idx[:k]]


@pytest.fixture
def store(tmp_path, database_url):
    with OmnilabVectorStore.open(tmp_path / "lab", embedding=CountingEmbeddings(), database_url=database_url) as s:
        yield s


def test_filtered_search_equals_numpy_brute_force(store):
    texts, metas = corpus(400, seed=1)
    ids = store.add_texts(texts, metas)
    emb = DeterministicFakeEmbedding(size=DIM)
    cases = [
        ({"metadata.group": 2}, lambda m: m["group"] == 2),
        ({"metadata.group": {"$gte": 3}, "metadata.team": "red"}, lambda m: m["group"] >= 3 and m["team"] == "red"),
        (
            {"$or": [{"metadata.group": 0}, {"metadata.team": {"$ne": "red"}}]},
            lambda m: m["group"] == 0 or m["team"] != "red",
        ),
        ({"metadata.group": {"$in": [1, 4]}}, lambda m: m["group"] in (1, 4)),
    ]
    for where, pred in cases:
        got = store.similarity_search_with_score("agent queue", k=7, filter=where)
        want = brute_force(emb, texts, metas, "agent queue", 7, pred)
        assert [d.id for d, _ in got] == [ids[i] for i, _ in want], where
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
        assert all(d.metadata == metas[ids.index(d.id)] for d, _ in got)
    # by vector, and relevance scores (= cosine)
    qv = emb.embed_query("agent queue")
    by_vec = store.similarity_search_by_vector(qv, k=5, filter={"metadata.group": 2})
    assert [d.id for d in by_vec] == [
        d.id for d, _ in store.similarity_search_with_score("agent queue", 5, {"metadata.group": 2})
    ]
    rel = store.similarity_search_with_relevance_scores("agent queue", k=3)
    want = brute_force(emb, texts, metas, "agent queue", 3, lambda m: True)
    np.testing.assert_allclose([s for _, s in rel], [s for _, s in want], atol=1e-5)
    with pytest.raises(InvalidInput):
        store.similarity_search("x", k=3, filter={"group": 2})  # a bare metadata key is not a column
    with pytest.raises(InvalidInput):
        store.similarity_search("x", k=3, fetch_k=3)


def test_mmr_is_langchains_mmr_over_the_exact_filtered_candidates(store):
    texts, metas = corpus(300, seed=2)
    ids = store.add_texts(texts, metas)
    emb = DeterministicFakeEmbedding(size=DIM)
    cand = brute_force(emb, texts, metas, "index cache", 20, lambda m: m["team"] == "blue")
    vecs = unit(emb.embed_documents([texts[i] for i, _ in cand]))
    q = unit([emb.embed_query("index cache")])[0]
    chosen = maximal_marginal_relevance(q, list(vecs), lambda_mult=0.3, k=5)
    got = store.max_marginal_relevance_search(
        "index cache", k=5, fetch_k=20, lambda_mult=0.3, filter={"metadata.team": "blue"}
    )
    assert [d.id for d in got] == [ids[cand[j][0]] for j in chosen]


def test_selectivity_0_1_percent_against_langchains_faiss(tmp_path, database_url):
    faiss_store = pytest.importorskip("langchain_community.vectorstores").FAISS
    texts, metas = corpus(10_000, seed=3, rare_every=1000)  # 10 rare memories: 0.1 %
    emb = DeterministicFakeEmbedding(size=DIM)
    with OmnilabVectorStore.open(tmp_path / "lab", embedding=emb, database_url=database_url) as store:
        ids = store.add_texts(texts, metas)
        got = store.similarity_search("agent cache", k=10, filter={"metadata.rare": True})
        want = brute_force(emb, texts, metas, "agent cache", 10, lambda m: m["rare"])
        assert len(want) == 10
        assert [d.id for d in got] == [ids[i] for i, _ in want]
    peer = faiss_store.from_texts(texts, emb, metadatas=metas)
    peer_hits = peer.similarity_search("agent cache", k=10, filter={"rare": True})  # its default fetch_k=20
    print(f"\n0.1% selectivity, k=10: omnilab {len(got)}, langchain_community FAISS {len(peer_hits)}")
    assert len(peer_hits) < 10  # post-filtering 20 nearest neighbours loses most of them


def test_upserts_deletes_and_scoping(store, tmp_path):
    lab = store.lab
    other = lab.remember("a code memory", "code")
    with pytest.raises(InvalidInput, match="belongs to a 'code' memory"):
        store.add_texts(["new text", "clash"], ids=["fresh-1", other])
    assert store.get_by_ids(["fresh-1"]) == []  # nothing written
    with pytest.raises(InvalidInput):
        store.add_texts(["ok", "   "])
    with pytest.raises(InvalidInput):
        store.add_texts(["ok"], [{"bad": {1, 2}}])
    assert len(lab.memories("knowledge")) == 0
    store.add_documents(
        [
            Document(page_content="alpha", metadata={"v": 1}, id="a"),
            Document(page_content="beta", metadata={"v": 2}, id="b"),
        ],
        tags=["lc"],
    )
    store.add_texts(["alpha two"], [{"v": 3}], ids=["a"])
    assert store.get_by_ids(["b", "a", "zz", "a"]) == [
        Document(id="b", page_content="beta", metadata={"v": 2}),
        Document(id="a", page_content="alpha two", metadata={"v": 3}),
    ]
    assert store.similarity_search("alpha two", k=1)[0].id == "a"  # re-embedded on overwrite
    assert [d.id for d in store.similarity_search("beta", k=5, filter={"tags": {"$contains": "lc"}})] != []
    store.delete([other, "b"])  # another type's id is not this store's to delete
    assert set(lab.memories()["id"]) == {other, "a"}
    with pytest.raises(InvalidInput):
        store.delete()
    store.delete(delete_all=True)
    assert list(lab.memories()["id"]) == [other]


def test_retriever_and_from_texts(tmp_path, database_url):
    emb = DeterministicFakeEmbedding(size=DIM)
    texts, metas = corpus(50, seed=4)
    with pytest.raises(InvalidInput):
        OmnilabVectorStore.from_texts(texts, emb, metas)
    store = OmnilabVectorStore.from_texts(texts, emb, metas, path=tmp_path / "lab", database_url=database_url)
    try:
        retriever = store.as_retriever(search_kwargs={"k": 3, "filter": {"metadata.group": 1}})
        assert retriever.invoke("agent") == store.similarity_search("agent", k=3, filter={"metadata.group": 1})
        assert all(d.metadata["group"] == 1 for d in retriever.invoke("agent"))
        again = OmnilabVectorStore.from_texts(["one more"], emb, lab=store.lab)
        assert len(again.lab.memories("knowledge")) == 51
        with pytest.raises(ConfigError):
            OmnilabVectorStore.from_texts(["x"], DeterministicFakeEmbedding(size=8), lab=store.lab)
    finally:
        store.close()


async def test_async_calls_leave_the_event_loop_free(tmp_path, database_url):
    emb = CountingEmbeddings(delay=0.3)
    store = OmnilabVectorStore.open(tmp_path / "lab", embedding=emb, database_url=database_url)
    try:
        await store.aadd_texts(["alpha", "beta"], ids=["a", "b"])
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        docs = await store.asimilarity_search("alpha", k=1)  # embed_query sleeps 0.3 s in a worker thread
        task.cancel()
        assert docs[0].id == "a"
        assert ticks >= 10, ticks
        assert [d.id for d in await store.amax_marginal_relevance_search("beta", k=1)] == ["b"]
        assert await store.aget_by_ids(["b"]) == [Document(id="b", page_content="beta", metadata={})]
    finally:
        store.close()


def test_embeddings_object_as_lab_embedder(tmp_path, database_url):
    path = tmp_path / "lab"
    emb = CountingEmbeddings()
    with omnilab.open(path, embedder=emb, database_url=database_url) as lab:
        assert (lab.memory.embedder.name, lab.memory.embedder.dim) == (f"langchain:CountingEmbeddings:{DIM}", DIM)
        lab.ingest([{"content": f"note {i}", "memory_type": "knowledge"} for i in range(20)], progress=False)
        assert emb.documents == 20
        vec = unit([emb.inner.embed_query("note 13")])[0]
        assert lab.search("note 13", k=1)["content"][0] == "note 13"
    emb2 = CountingEmbeddings()
    with omnilab.open(path, embedder=emb2, database_url=database_url) as lab:  # the cache answers
        mems = lab.memories()
        lab.memory.forget(list(mems["id"][mems["content"].isin([f"note {i}" for i in range(5)])]))
        lab.memory.reindex(progress=False)
        assert emb2.documents == 0
    with omnilab.open(path, database_url=database_url) as lab:  # without the object: vectors still work
        assert lab.search(vec, k=1)["content"][0] == "note 13"
        with pytest.raises(ConfigError, match="pass it again"):
            lab.search("a text never embedded")
    with pytest.raises(ConfigError, match="reindex"):
        omnilab.open(path, embedder=CountingEmbeddings(size=8), database_url=database_url)
    with omnilab.open(path, embedder=CountingEmbeddings(size=8), reindex=True, database_url=database_url) as lab:
        assert lab.memory.embedder.dim == 8 and len(lab.memory.index) == 15
        assert lab.search("note 7", k=1)["content"][0] == "note 7"
    with pytest.raises(ConfigError):
        omnilab.open(tmp_path / "other", embedder=object())


def test_store_over_a_lab_with_its_own_embedder(lab):
    lab.remember("the retry queue backs off exponentially", "knowledge", metadata={"src": "runbook"})
    lab.remember("unrelated code", "code")
    store = OmnilabVectorStore(lab)
    assert isinstance(store.embeddings, LabEmbeddings)
    hit = store.similarity_search("retry queue backoff", k=5)
    assert [d.page_content for d in hit] == ["the retry queue backs off exponentially"]
    np.testing.assert_allclose(
        store.embeddings.embed_query("retry queue"), lab.memory.embedder.embed_one("retry queue"), atol=1e-6
    )
    with pytest.raises(InvalidInput):
        OmnilabVectorStore(lab, memory_type="nope")
