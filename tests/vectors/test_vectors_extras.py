"""Filter indexes, the evaluation helpers, the CLI commands and migrations bookkeeping."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import omnilab
from omnilab.analysis import evaluation
from omnilab.cli import main
from omnilab.errors import InvalidInput
from omnilab.sql import migrate


def test_filter_index_is_used_and_invisible_to_alembic(lab):
    lab.ingest(
        [
            {"content": f"m {i}", "memory_type": "code", "metadata": {"group": i % 40, "name": f"n{i % 3}"}}
            for i in range(400)
        ],
        progress=False,
    )
    name = lab.memory.add_filter_index("metadata.group")
    assert lab.memory.add_filter_index("metadata.group") == name  # idempotent
    assert migrate.check(lab.engine) == []
    with pytest.raises(InvalidInput):
        lab.memory.add_filter_index("metadata.x'; drop table agents; --")
    with pytest.raises(InvalidInput):
        lab.memory.add_filter_index("priority")
    res = lab.search("m 7", k=50, where={"metadata.group": 7})
    assert len(res) == 10 and {m["group"] for m in res["metadata"]} == {7}
    from omnilab.vectors.filters import compile_where
    from omnilab.vectors.memory import MEM

    stmt = sa.select(MEM.c.id).where(compile_where({"metadata.group": 7}, lab.backend))
    with lab.engine.connect() as conn:
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = " ".join(
            str(r)
            for r in conn.exec_driver_sql("EXPLAIN " + ("" if lab.backend == "postgresql" else "QUERY PLAN ") + sql)
        )
    if lab.backend == "sqlite":
        assert name in plan
    else:  # the planner may prefer a scan on a tiny table; the index must at least exist
        with lab.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM pg_indexes WHERE indexname = :n"), {"n": name}).scalar()


def test_evaluation_helpers():
    assert evaluation.first_sentence("Return the sum.  More text.\n\nDetails") == "Return the sum."
    assert evaluation.first_sentence("Split the string\ninto words") == "Split the string into words"
    pairs = evaluation.code_search_pairs(["shlex", "glob"])
    assert len(pairs) > 5 and set(pairs["module"]) == {"shlex", "glob"}
    assert not pairs["query"].duplicated().any()
    assert all('"""' not in c for c in pairs["code"])
    split = evaluation.split_by_module(pairs)
    assert split.groupby(pairs["module"]).nunique().max() == 1  # whole modules on one side
    assert split.equals(evaluation.split_by_module(pairs))
    assert evaluation.mrr([[3, 1, 2], [5, 6], [9]], [1, 5, 7]) == pytest.approx((0.5 + 1 + 0) / 3)


def test_evaluation_pools_on_a_small_lab(lab):
    pairs = evaluation.code_search_pairs(["shlex"])
    ids = evaluation.load_pairs(lab, pairs, progress=False)
    pools = evaluation.run_queries(lab.memory, list(pairs["query"]), pool=20)
    vids = lab.memory.vector_ids_for(ids)
    rel = [vids[m] for m in ids]
    ranked = [[i for i, _ in sorted(v.items(), key=lambda x: -x[1])] for v, _ in pools]
    # the vector pool is the store's exact search
    assert ranked[0][:5] == [h.id for h in lab.memory.search_hits(pairs["query"][0], k=5, memory_type="code")]
    assert 0 < evaluation.mrr(ranked, rel) <= 1


def test_cli_ingest_and_search(tmp_path, capsys):
    src = tmp_path / "m.jsonl"
    src.write_text(
        "\n".join(
            json.dumps({"content": t, "metadata": {"lang": lang}})
            for t, lang in [
                ("def parse_header(line): return line.split(':')", "python"),
                ("fn parse_header(line: &str) -> Vec<&str> { line.split(':').collect() }", "rust"),
                ("Deploy the service after the tests pass", "en"),
            ]
        )
    )
    lab = str(tmp_path / "lab")
    assert main(["ingest", str(src), "--lab", lab, "--type", "code", "-q"]) == 2  # no lab there: nothing created
    omnilab.open(lab, embedder="hashing").close()
    assert main(["ingest", str(src), "--lab", lab, "--embedder", "hashing", "--type", "code", "-q"]) == 0
    assert "added 3 memories" in capsys.readouterr().out
    assert main(["ingest", str(src), "--lab", lab, "--type", "code", "-q", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["duplicates"] == 3
    assert (
        main(
            [
                "search",
                "parse header",
                "--lab",
                lab,
                "--type",
                "code",
                "-k",
                "1",
                "--where",
                '{"metadata.lang": "rust"}',
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 1 and out[0]["metadata"] == {"lang": "rust"}
    assert main(["search", "parse header", "--lab", lab, "--hybrid"]) == 0
    assert "1. " in capsys.readouterr().out
    assert main(["search", "x", "--lab", lab, "--where", "{bad json"]) == 2
    assert main(["search", "x", "--lab", lab, "--where", '{"nope": 1}']) == 2
    assert "unknown filter key" in capsys.readouterr().err


def test_frame_dtypes_match_memories(lab):
    lab.remember("dtype check", "code", priority=8, tags=["a"], metadata={"k": 1})
    res = lab.search("dtype check")
    mem = lab.memories()
    for col in ("priority", "created_at", "tags", "metadata"):
        assert res[col].dtype == mem[col].dtype, col
    assert res["memory_id"].dtype == mem["id"].dtype and res["memory_id"].tolist() == mem["id"].tolist()
    assert "id" not in res.columns and res["vector_id"].dtype == "Int64"
    assert res["rank"].dtype == np.int64 and res["score"].dtype == np.float64
    empty = lab.search("dtype check", where={"metadata.k": 2})
    assert empty.empty and list(empty.columns) == list(res.columns)
    assert isinstance(res, pd.DataFrame)


def test_default_embedder_is_recorded(tmp_path, monkeypatch):
    from omnilab.vectors import embedders

    monkeypatch.setattr(embedders, "sentence_transformers_available", lambda: False)
    with omnilab.open(tmp_path / "lab") as lab:  # no embedder given: chosen once and recorded
        assert lab.memory.embedder.name == "hashing-v1:384"
    manifest = json.loads((tmp_path / "lab" / "vectors" / "manifest.json").read_text())
    assert manifest["embedder"] == "hashing-v1:384" and manifest["format"] == 1


def test_tuning_result_html_escapes_the_embedder_name():
    from omnilab.analysis.tuning import TuningResult

    evil = "<script>alert(1)</script>"
    res = TuningResult(
        memory_type=None,
        embedder=evil,
        k=5,
        n_queries=3,
        n_relevant=3,
        curve=pd.DataFrame({"threshold": [0.5], "precision": [1.0], "recall": [1.0], "f1": [1.0]}),
        threshold=0.5,
        score=1.0,
        f1=1.0,
        precision=1.0,
        recall=1.0,
        ranks={"<b>mrr</b>": 1.0},
        hits=pd.DataFrame({"score": [0.9, 0.4], "relevant": [True, False]}),
    )
    out = res._repr_html_()
    assert evil not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "<b>mrr</b>" not in out and "&lt;b&gt;mrr&lt;/b&gt;" in out
