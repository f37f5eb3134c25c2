"""Threshold tuning: the curve, the recommendation and the rank metrics against brute-force references;
saved thresholds and ``lab.search(threshold="tuned")`` on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import omnilab
from omnilab.analysis import tuning
from omnilab.errors import InvalidInput

# ------------------------------------------------------------------------------------ references


def brute_curve(scores, relevant, n_relevant):
    """For every distinct score t: count the hits with score >= t by looping (no sorting tricks)."""
    rows = []
    for t in sorted(set(scores)):
        tp = sum(1 for s, r in zip(scores, relevant) if s >= t and r)
        ret = sum(1 for s in scores if s >= t)
        p, r = tp / ret, tp / n_relevant
        f1 = 0.0 if p + r == 0 else 2 * p * r / (p + r)
        rows.append((t, ret, tp, ret - tp, n_relevant - tp, p, r, f1))
    return pd.DataFrame(rows, columns=["threshold", "retrieved", "tp", "fp", "fn", "precision", "recall", "f1"])


def brute_ranks(per_query_ranked, per_query_relevant, ks):
    """per_query_ranked: list of lists of memory ids best first; per_query_relevant: list of sets."""
    out = {}
    with_rel = [i for i, rel in enumerate(per_query_relevant) if rel]
    for k in ks:
        found = [len(set(ids[:k]) & rel) for ids, rel in zip(per_query_ranked, per_query_relevant)]
        out[f"precision@{k}"] = float(np.mean([f / k for f in found]))
        out[f"recall@{k}"] = float(np.mean([found[i] / len(per_query_relevant[i]) for i in with_rel]))
    rr = []
    for i in with_rel:
        ranks = [r for r, m in enumerate(per_query_ranked[i], 1) if m in per_query_relevant[i]]
        rr.append(1.0 / ranks[0] if ranks else 0.0)
    out["mrr"] = float(np.mean(rr))
    return out


# ------------------------------------------------------------------------------- the pure parts
def test_curve_on_a_tiny_hand_made_case():
    # three queries, 4 relevant pairs in all; one relevant pair is never retrieved; 0.5 appears twice
    scores = [0.9, 0.8, 0.5, 0.5, 0.3, 0.2]
    relevant = [True, False, True, False, True, False]
    curve = tuning.threshold_curve(scores, relevant, n_relevant=4)
    assert curve["threshold"].tolist() == [0.2, 0.3, 0.5, 0.8, 0.9]
    assert curve["retrieved"].tolist() == [6, 5, 4, 2, 1]
    assert curve["tp"].tolist() == [3, 3, 2, 1, 1]
    # by hand: at t=0.3 precision 3/5, recall 3/4, F1 = 2*3/(5+4) = 2/3
    row = curve.set_index("threshold").loc[0.3]
    assert row["precision"] == pytest.approx(0.6) and row["recall"] == pytest.approx(0.75)
    assert row["f1"] == pytest.approx(2 / 3)
    pd.testing.assert_frame_equal(curve, brute_curve(scores, relevant, 4), check_dtype=False)
    best = tuning.best_threshold(curve)
    assert best["score"] == 0.3 and best["f1"] == pytest.approx(2 / 3)
    assert best["threshold"] == pytest.approx((0.3 + 0.2) / 2)  # midpoint to the next lower score


def test_best_threshold_ties_go_to_the_higher_threshold():
    curve = tuning.threshold_curve([0.9, 0.6, 0.4, 0.1], [True, False, True, False], n_relevant=2)
    # F1: t=0.9 -> 2/3; t=0.6 -> 2*1/(2+2)=0.5; t=0.4 -> 2*2/(3+2)=0.8; t=0.1 -> 4/6
    assert curve["f1"].tolist() == pytest.approx([4 / 6, 0.8, 0.5, 2 / 3])
    assert tuning.best_threshold(curve)["score"] == 0.4
    tied = tuning.threshold_curve([0.9, 0.5], [True, True], n_relevant=4)  # F1 1/3 < 2/3: no tie here
    assert tuning.best_threshold(tied)["score"] == 0.5
    same = pd.DataFrame({"threshold": [0.2, 0.6], "f1": [0.5, 0.5], "precision": [0.5, 0.5], "recall": [0.5, 0.5]})
    assert tuning.best_threshold(same)["score"] == 0.6


@pytest.mark.parametrize("seed", range(5))
def test_curve_and_metrics_match_brute_force_on_seeded_data(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    scores = np.round(rng.uniform(-0.2, 1.0, n), 2)  # rounding makes ties
    relevant = rng.random(n) < 0.3
    n_rel = int(relevant.sum()) + int(rng.integers(0, 20)) or 1
    curve = tuning.threshold_curve(scores, relevant, n_rel)
    ref = brute_curve(scores.tolist(), relevant.tolist(), n_rel)
    pd.testing.assert_frame_equal(curve, ref, check_dtype=False)
    best = tuning.best_threshold(curve)
    assert best["f1"] == pytest.approx(ref["f1"].max())
    hits = pd.DataFrame({"score": scores, "relevant": relevant})
    # the recommended midpoint keeps exactly the hits of s*
    at_mid = tuning.metrics_at(hits, n_rel, best["threshold"])
    assert at_mid["f1"] == pytest.approx(best["f1"]) and at_mid["precision"] == pytest.approx(best["precision"])
    for t in rng.uniform(-0.3, 1.1, 10):
        m = tuning.metrics_at(hits, n_rel, float(t))
        keep = scores >= t
        assert m["retrieved"] == keep.sum() and m["tp"] == (keep & relevant).sum()
        if keep.sum():
            assert m["precision"] == pytest.approx((keep & relevant).sum() / keep.sum())
        else:
            assert math.isnan(m["precision"])


def test_rank_metrics_match_brute_force():
    rng = np.random.default_rng(7)
    ranked, rel_sets, rows = [], [], []
    for q in range(40):
        ids = [f"m{i}" for i in rng.permutation(30)[:10]]
        rel = {f"m{i}" for i in rng.choice(30, int(rng.integers(0, 4)), replace=False)}
        ranked.append(ids)
        rel_sets.append(rel)
        rows += [(q, r, m, 1.0 - r / 100, m in rel) for r, m in enumerate(ids, 1)]
    hits = pd.DataFrame(rows, columns=["query_index", "rank", "memory_id", "score", "relevant"])
    got = tuning.rank_metrics(hits, [len(r) for r in rel_sets], ks=(1, 5, 10))
    assert got == pytest.approx(brute_ranks(ranked, rel_sets, (1, 5, 10)))


def test_bad_labels_and_curves_are_refused():
    with pytest.raises(InvalidInput):
        tuning.normalize_labels(pd.DataFrame({"query": ["x"]}))
    with pytest.raises(InvalidInput):
        tuning.normalize_labels({"": ["a"]})
    with pytest.raises(InvalidInput):
        tuning.normalize_labels({"q": [1, 2]})
    with pytest.raises(InvalidInput):
        tuning.normalize_labels({"q": []})
    with pytest.raises(InvalidInput):
        tuning.normalize_labels([("q", "a")])
    with pytest.raises(InvalidInput):
        tuning.threshold_curve([0.5], [True], n_relevant=0)
    with pytest.raises(InvalidInput):
        tuning.best_threshold(tuning.threshold_curve([], [], n_relevant=1))
    labels = tuning.normalize_labels({"q1": "a", "q2": ["b", "c", "b"]})
    assert labels["relevant"].tolist() == [("a",), ("b", "c")]


# ------------------------------------------------------------------------------ through the lab
WORDS = (
    "alpha beta gamma delta epsilon zeta theta kappa lambda sigma omega parse render fetch store cache "
    "queue token vector index merge split sort filter"
).split()


def _seed_lab(lab, seed=3, n=60):
    rng = np.random.default_rng(seed)
    docs = []
    while len(docs) < n:
        doc = " ".join(rng.choice(WORDS, 8))
        if doc not in docs:
            docs.append(doc)
    ids = lab.ingest([{"content": d, "memory_type": "knowledge"} for d in docs], progress=False)["memory_ids"]
    labels = {}
    for i in range(0, n, 3):  # query: 3 words of a document (+1 random); relevant: that doc and its neighbour
        words = docs[i].split()
        q = " ".join([*rng.choice(words, 3), str(rng.choice(WORDS))])
        if q not in labels:
            labels[q] = [ids[i], ids[(i + 1) % n]]
    return docs, ids, labels


def test_tune_matches_a_numpy_reference(lab):
    docs, ids, labels = _seed_lab(lab)
    k = 5
    res = lab.tune_threshold(labels, memory_type="knowledge", k=k)
    emb = lab.memory.embedder
    E = emb.embed([emb.preprocess(d) for d in docs])
    Q = emb.embed([emb.preprocess(q) for q in labels])
    S = Q @ E.T
    scores, relevant, ranked, rel_sets = [], [], [], []
    for qi, rel in enumerate(labels.values()):
        top = np.argsort(-S[qi], kind="stable")[:k]
        ranked.append([ids[j] for j in top])
        rel_sets.append(set(rel))
        scores += [float(S[qi, j]) for j in top]
        relevant += [ids[j] in rel for j in top]
    n_rel = sum(len(r) for r in rel_sets)
    ref = brute_curve(scores, relevant, n_rel)  # float32 FAISS vs numpy dot products: equal to ~1e-7
    pd.testing.assert_frame_equal(res.curve, ref, check_dtype=False, atol=1e-5)
    counts = ["retrieved", "tp", "fp", "fn"]
    assert res.curve[counts].to_numpy().tolist() == ref[counts].to_numpy().tolist()
    assert res.f1 == pytest.approx(ref["f1"].max())
    assert res.ranks == pytest.approx(brute_ranks(ranked, rel_sets, (1, 5)))
    assert res.embedder == emb.name and res.n_queries == len(labels) and res.memory_type == "knowledge"
    assert "recommended threshold" in res._repr_html_()


def test_saved_threshold_drives_search_tuned(lab):
    docs, ids, labels = _seed_lab(lab)
    with pytest.raises(InvalidInput, match="no tuned threshold"):
        lab.search("alpha", memory_type="knowledge", threshold="tuned")
    res = lab.tune_threshold(labels, memory_type="knowledge", k=5)
    row = lab.save_threshold(res)
    assert row["threshold"] == res.threshold
    assert tuning.get_threshold(lab, "knowledge") == pytest.approx(res.threshold)
    tuned = lab.search("alpha beta gamma", memory_type="knowledge", threshold="tuned", k=20)
    plain = lab.search("alpha beta gamma", memory_type="knowledge", threshold=res.threshold, k=20)
    assert tuned["memory_id"].tolist() == plain["memory_id"].tolist()
    assert (tuned["score"] >= res.threshold).all()
    # a number replaces it; other embedders and types are separate rows
    lab.save_threshold(0.25, memory_type="knowledge")
    lab.save_threshold(0.9, memory_type="knowledge", embedder="sentence-transformers:all-MiniLM-L6-v2")
    assert tuning.get_threshold(lab, "knowledge") == pytest.approx(0.25)
    saved = lab.thresholds()
    assert len(saved) == 2 and set(saved["embedder"]) == {
        lab.memory.embedder.name,
        "sentence-transformers:all-MiniLM-L6-v2",
    }
    assert tuning.get_threshold(lab, "code") is None
    with pytest.raises(InvalidInput, match="one memory_type"):
        lab.search("alpha", threshold="tuned")
    with pytest.raises(InvalidInput):
        lab.search("alpha", memory_type="knowledge", threshold="best")
    with pytest.raises(InvalidInput):
        lab.save_threshold(1.5, memory_type="knowledge")
    with pytest.raises(InvalidInput):
        lab.save_threshold(0.5)  # no memory type
    with pytest.raises(InvalidInput):
        lab.save_threshold(0.5, memory_type="nonsense")
    assert len(lab.thresholds()) == 2  # nothing half-written by the refused calls


def test_labels_must_name_memories_of_the_type(lab):
    _docs, ids, _labels = _seed_lab(lab, n=9)
    with pytest.raises(InvalidInput, match="not a code memory"):
        lab.tune_threshold({"alpha beta": ids[0]}, memory_type="code")
    with pytest.raises(InvalidInput, match="not a knowledge memory"):
        lab.tune_threshold({"alpha beta": "no-such-id"}, memory_type="knowledge")
    with pytest.raises(InvalidInput, match="split"):
        lab.tune_threshold({"alpha beta": ids[0]}, memory_type="knowledge", split="test")


@pytest.fixture(scope="module")
def stdlib_lab(tmp_path_factory):
    with omnilab.open(tmp_path_factory.mktemp("tuning") / "lab", embedder="hashing") as lab:
        lab.load_sample("small")
        yield lab


def test_stdlib_labels_and_held_out_comparison(stdlib_lab):
    """add_to_lab=True: the labelled code goes into the lab itself and the sample's own memory of each
    function counts as relevant too (the behaviour before scratch labs)."""
    lab = stdlib_lab
    corpus = tuning.stdlib_labels(lab, "code", max_queries=240, seed=1, add_to_lab=True)
    labels = corpus.labels
    assert corpus.lab is lab and corpus.scratch is None
    assert len(labels) == 240 and set(labels["split"]) == {"train", "test"}
    mem = lab.memories("code").set_index("id")
    n_with_sample = 0
    for rel, module, func in zip(labels["relevant"], labels["module"], labels["function_name"]):
        metas = [mem.loc[m, "metadata"] for m in rel]
        assert all(m["module"] == module and m["function_name"] == func for m in metas)
        assert "pair" in metas[0]  # the docstring-free copy first, then the sample's own memory if any
        n_with_sample += len(rel) > 1
    assert n_with_sample > 0
    # modules never straddle the split
    assert labels.groupby("module")["split"].nunique().max() == 1
    table, train, test = tuning.held_out_comparison(lab, corpus, memory_type="code")
    by = table.set_index("choice")
    assert by.loc["tuned", "threshold"] == pytest.approx(train.threshold)
    # recompute the held-out F1 of the tuned and the design threshold from the test hits by hand
    for choice in ("tuned", "design"):
        t = by.loc[choice, "threshold"]
        keep = test.hits[test.hits["score"] >= t]
        tp = int(keep["relevant"].sum())
        assert by.loc[choice, "f1"] == pytest.approx(2 * tp / (len(keep) + test.n_relevant))
    # the test set's own optimum bounds every choice from above
    assert by.loc["best_possible", "f1"] >= by[["f1"]].drop("best_possible")["f1"].max() - 1e-12
    knowledge = tuning.stdlib_labels(lab, "knowledge", per_module=2)
    assert knowledge.lab is lab and all(len(r) == 1 for r in knowledge.labels["relevant"])
    before = lab.counts()
    res = lab.tune_threshold(knowledge, memory_type="knowledge")
    assert 0 < res.f1 <= 1 and res.n_queries == len(knowledge.labels)
    assert lab.counts().equals(before)


def test_stdlib_code_labels_live_in_a_scratch_lab(lab):
    """By default the labelled code goes into <lab>/scratch/stdlib-code (SQLite, the lab's embedder), never
    into the lab: its rows and vectors stay as they were, on SQLite and PostgreSQL alike."""
    lab.remember("the user's own memory about parsing dates", "code")
    counts, vectors = lab.counts(), lab.memory.stats()["vectors"]
    with tuning.stdlib_labels(lab, "code", max_queries=60, seed=2) as corpus:
        scratch = corpus.lab
        assert corpus.scratch == lab.path / "scratch" / "stdlib-code" and scratch.path == corpus.scratch
        assert scratch.database_url.startswith("sqlite:///") and str(corpus.scratch) in scratch.database_url
        assert scratch.memory.embedder.name == lab.memory.embedder.name
        assert lab.counts().equals(counts) and lab.memory.stats()["vectors"] == vectors
        labels = corpus.labels
        assert len(labels) == 60 and all(len(r) == 1 for r in labels["relevant"])
        code = scratch.memories("code").set_index("id")
        assert len(code) == 60 and set(code.index) == {r[0] for r in labels["relevant"]}
        with pytest.raises(InvalidInput, match="scratch lab .*labels.tune"):
            lab.tune_threshold(corpus, memory_type="code")
        train = corpus.tune(split="train")
        assert train.embedder == lab.memory.embedder.name and 0 < train.f1 <= 1
        lab.save_threshold(train)  # thresholds are per (memory type, embedder): valid for the lab
        assert tuning.get_threshold(lab, "code") == pytest.approx(train.threshold)
        table, _, _ = corpus.held_out_comparison()
        assert set(table["choice"]) == {"none", "design", "tuned", "best_possible"}
    # a rerun with other queries reuses the scratch lab and holds exactly the new queries' code
    with tuning.stdlib_labels(lab, "code", max_queries=25, seed=3) as again:
        assert len(again.lab.memories("code")) == 25
        assert set(again.lab.memories("code")["id"]) == {r[0] for r in again.labels["relevant"]}
    assert lab.counts().equals(counts)
    assert lab.memory.stats()["vectors"] == vectors
