"""Keyword fields (revision 0009): name / signature / body, identifier splitting, field weights, per-type fusion
weight, and the keyword rows following writes on SQLite FTS5 and PostgreSQL (memory_keywords)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import omnilab
from omnilab.errors import InvalidInput
from omnilab.sql import keywords
from omnilab.vectors import hybrid

SCAN = "def py_scanstring(s, end, strict=True):\n    chunks = []\n    return chunks"
VARIANCE = "def pvariance(data, mu=None):\n    ss = _ss(data)\n    return ss / len(data)"
LRU = "class LRUCache:\n    def get(self, key):\n        return self.data[key]"
# mentions 'variance' only in its body, three times (more body term frequency than VARIANCE has)
BODY = "def spread(xs):\n    # variance variance variance of the xs\n    return max(xs) - min(xs)"


def test_fields_of_a_code_memory():
    name, sig, body = keywords.keyword_fields(SCAN)
    assert name == "py scanstring scan string"
    assert sig == "def py scanstring s end strict true"
    assert body.startswith(SCAN) and body.endswith("scan string")
    assert keywords.keyword_fields(LRU)[:2] == ("lru cache", "class lru cache")
    assert keywords.keyword_fields("async def fetchAll(urls):\n  pass")[0] == "fetch all"
    # "parse" is no whole word of the vocabulary: its cover adds "par" (noise the index tolerates)
    assert keywords.keyword_fields("function parseURL(s) {\n  return s }")[0].startswith("parse url")
    # prose: no definition line, so no name or signature ("class of" is not a definition)
    assert keywords.keyword_fields("class of problems:\nwords")[:2] == ("", "")
    # PostgreSQL's parser does not split identifiers: its body carries every identifier word
    assert "py scanstring s end strict true" in keywords.keyword_fields(SCAN, "postgresql")[2]
    assert keywords.keyword_fields(SCAN, camel=False, compounds=False)[0] == "py scanstring"


@pytest.mark.parametrize(
    ("word", "parts"),
    [
        ("scanstring", ("scan", "string")),
        ("setprofile", ("set", "profile")),
        ("formatmonthname", ("format", "month", "name")),
        ("isdir", ("is", "dir")),
        ("pvariance", ("variance",)),  # one-letter pieces are dropped
        ("string", ()),  # a word itself
        ("abc", ()),  # too short
        ("xqzvkw", ()),  # no vocabulary word in any cover
        ("get_attr", ()),  # not a run-together word
    ],
)
def test_split_compound(word, parts):
    assert keywords.split_compound(word) == parts


def test_field_weights_are_checked():
    assert hybrid.check_field_weights(None) == hybrid.FIELD_WEIGHTS
    assert hybrid.check_field_weights([1, 0, 2]) == (1.0, 0.0, 2.0)
    for bad in ((1, 2), (0, 0, 0), (1, -1, 1), ("a", 1, 1), (float("nan"), 1, 1), (True, 1, 1), 3, "abc"):
        with pytest.raises(InvalidInput):
            hybrid.check_field_weights(bad)


def test_default_weight_per_memory_type():
    assert hybrid.default_weight(["code"]) == hybrid.TYPE_WEIGHTS["code"]
    assert hybrid.default_weight(None) == hybrid.DEFAULT_WEIGHT
    assert hybrid.default_weight(["code", "knowledge"]) == hybrid.DEFAULT_WEIGHT
    assert hybrid.default_weight(["knowledge"]) == hybrid.TYPE_WEIGHTS.get("knowledge", hybrid.DEFAULT_WEIGHT)


def _keyword(lab, query, **kw):
    with lab.memory.own.connect() as conn:
        scores = hybrid.keyword_search(conn, query, limit=10, **kw)
    name_of = {v: m for m, v in lab.memory.vector_ids_for(lab.memories()["id"].tolist()).items()}
    return [name_of[v] for v, _ in sorted(scores.items(), key=lambda x: (-x[1], x[0]))]


def test_name_field_outranks_body_mentions_and_weights_change_that(lab):
    var = lab.remember(VARIANCE, "code")
    body = lab.remember(BODY, "code")
    lab.remember(SCAN, "code")
    assert _keyword(lab, "variance") == [var, body]  # the name field (weight 4) beats three body mentions
    assert _keyword(lab, "variance", field_weights=(0, 0, 1)) == [body, var]  # body only: term frequency wins
    assert _keyword(lab, "scan string")[0] == lab.memories(where={"content": SCAN})["id"].iloc[0]
    res = lab.hybrid_search("population variance of data", memory_type="code", k=2)
    assert res["memory_id"].iloc[0] == var and res["keyword_score"].iloc[0] > 0


def test_keyword_rows_follow_update_forget_and_are_repaired(lab):
    a = lab.remember(VARIANCE, "code")
    b = lab.remember(LRU, "code")
    assert _keyword(lab, "lru cache") == [b]
    lab.memory.update(b, content="def median_grouped(data):\n    return data")
    assert _keyword(lab, "lru cache") == []
    assert _keyword(lab, "median grouped") == [b]
    lab.forget(a)
    assert _keyword(lab, "variance") == []
    own = lab.memory.own
    table = "memory_keywords" if own.dialect.name == "postgresql" else "memory_fts"
    with own.begin() as conn:  # a lost keyword row (e.g. written by an older version) is re-added by repair
        conn.exec_driver_sql(f"DELETE FROM {table}")
        assert hybrid.fts_missing(conn) == [(lab.memory.vector_ids_for([b])[b], b)]
    lab.memory.reconcile()
    assert _keyword(lab, "median grouped") == [b]


def test_an_old_shape_sqlite_keyword_table_is_rebuilt(tmp_path):
    """A lab attached read-only keeps its own SQLite file, which no migration upgrades: repair rebuilds it."""
    with omnilab.open(tmp_path / "lab", embedder="hashing") as lab:
        mid = lab.remember(VARIANCE, "code")
        with lab.memory.own.begin() as conn:
            conn.exec_driver_sql("DROP TABLE memory_fts")
            conn.exec_driver_sql("CREATE VIRTUAL TABLE memory_fts USING fts5(body, tokenize='porter unicode61')")
            conn.exec_driver_sql("INSERT INTO memory_fts (rowid, body) VALUES (1, 'stale')")
        lab.memory.reconcile()
        with lab.memory.own.connect() as conn:
            cols = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(memory_fts)")]
            assert cols == list(keywords.FIELDS)
            names = conn.execute(sa.text("SELECT name FROM memory_fts")).scalars().all()
        assert names == ["pvariance variance"]
        assert _keyword(lab, "variance") == [mid]
