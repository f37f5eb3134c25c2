"""The ONNX Runtime backend of the sentence-transformers embedder (all-MiniLM-L6-v2): same vectors and name as
PyTorch, an export cached once and reused, damaged cache entries rebuilt, and no torch on the loading path;
the int8 model (the default precision) derived from it, within cosine 0.99 of PyTorch on every sample memory.

The model is exported once per test session into a temporary cache directory (tens of seconds); the tests
compare against the real sentence-transformers model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import omnilab
from omnilab.errors import ConfigError, OmnilabError
from omnilab.sample import generate
from omnilab.vectors import onnx_backend
from omnilab.vectors.embedders import (
    BACKEND_ENV,
    PRECISION_ENV,
    OnnxSentenceEmbedder,
    SentenceTransformerEmbedder,
    create_embedder,
    sentence_transformers_available,
)

pytestmark = pytest.mark.skipif(
    not (
        sentence_transformers_available()
        and onnx_backend.available()
        and all(__import__("importlib").util.find_spec(m) for m in ("torch", "transformers", "onnx"))
    ),
    reason="needs sentence-transformers, the bundled MiniLM weights, onnxruntime, tokenizers and onnx",
)

QUERIES = [
    "parse a date from a string",
    "read a configuration file",
    "split a shell command line into tokens",
    "retry a failed deployment",
    "compress data with gzip",
    "format a number as currency",
    "walk a directory tree",
    "send an email message",
]


@pytest.fixture(scope="module")
def xdg(tmp_path_factory) -> Path:
    """A private XDG cache home; the export lives in <xdg>/omnilab/onnx, as it would in ~/.cache."""
    return tmp_path_factory.mktemp("xdg")


@pytest.fixture(scope="module")
def onnx_st(xdg) -> OnnxSentenceEmbedder:
    emb = OnnxSentenceEmbedder(cache_dir=xdg / "omnilab" / "onnx", fallback=False, precision="fp32")
    emb.load()
    assert emb.active_backend == "onnx" and emb._onnx.source in ("exported", "memory")
    return emb


@pytest.fixture(scope="module")
def onnx_int8(xdg, onnx_st) -> OnnxSentenceEmbedder:
    """The default precision, made from the fp32 export already in the cache (so without torch)."""
    emb = OnnxSentenceEmbedder(cache_dir=xdg / "omnilab" / "onnx", fallback=False)
    assert emb.precision == "int8"
    emb.load()
    assert emb.active_backend == "onnx" and emb.active_precision == "int8"
    assert emb._onnx.source in ("exported", "memory")
    return emb


@pytest.fixture(scope="module")
def torch_st() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module")
def memories() -> list[dict]:
    """160 sample memories of every type, some past the 256-token limit (so truncation is exercised)."""
    m = generate("small")["memory_entries"]
    keep = range(0, len(m["id"]), len(m["id"]) // 160)
    return [{"id": m["id"][i], "content": m["content"][i], "memory_type": m["memory_type"][i]} for i in keep][:160]


def _cache_files(root: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_same_embedder_and_vectors_as_sentence_transformers(onnx_st, torch_st, memories):
    assert (onnx_st.name, onnx_st.dim, onnx_st.spec) == (torch_st.name, torch_st.dim, torch_st.spec)
    assert onnx_st.name == "sentence-transformers:all-MiniLM-L6-v2" and onnx_st.dim == 384
    texts = [m["content"] for m in memories]
    pre = [onnx_st.preprocess(t) for t in texts]
    assert pre == [torch_st.preprocess(t) for t in texts]  # same truncation, so the same embedding-cache keys
    assert sum(len(p) < len(" ".join(t.split())) for p, t in zip(pre, texts)) >= 10  # truncation was exercised
    a, b = onnx_st.embed(pre), torch_st.embed(pre)
    assert a.shape == b.shape == (len(texts), 384) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    cos = (a * b).sum(axis=1)
    assert cos.min() >= 0.9999, cos.min()
    # one text alone (no padding) gives the vector it gets in a padded, length-sorted batch
    assert float(onnx_st.embed(pre[:1])[0] @ a[0]) >= 0.99999


def test_search_results_identical_both_ways_and_labs_interchange(tmp_path, onnx_st, torch_st, memories):
    with omnilab.open(tmp_path / "torch", embedder=torch_st) as lab:
        lab.ingest(memories, progress=False)
        by_torch = {q: lab.search(q, k=10)["memory_id"].tolist() for q in QUERIES}
    with omnilab.open(tmp_path / "onnx", embedder=onnx_st) as lab:
        lab.ingest(memories, progress=False)
        by_onnx = {q: lab.search(q, k=10)["memory_id"].tolist() for q in QUERIES}
    assert by_onnx == by_torch and all(len(v) == 10 for v in by_onnx.values())
    # the same embedder to a lab: the torch-made lab opens with ONNX without re-embedding anything, and back
    with omnilab.open(tmp_path / "torch", embedder=onnx_st) as lab:
        assert lab.memory.reconcile()["embedded"] == 0
        assert {q: lab.search(q, k=10)["memory_id"].tolist() for q in QUERIES} == by_torch
    with omnilab.open(tmp_path / "onnx", embedder=torch_st) as lab:
        assert lab.memory.reconcile()["embedded"] == 0
        assert lab.search(QUERIES[0], k=10)["memory_id"].tolist() == by_torch[QUERIES[0]]


def test_later_process_reuses_the_export_without_torch(tmp_path, xdg, onnx_st, onnx_int8, memories):
    with omnilab.open(tmp_path / "lab", embedder=onnx_st) as lab:
        lab.ingest(memories[:40], progress=False)
    before = _cache_files(xdg / "omnilab")
    script = textwrap.dedent(f"""
        import json, sys
        import omnilab
        from omnilab.vectors.embedders import create_embedder
        emb = create_embedder("sentence-transformers")
        vec = emb.embed([emb.preprocess({QUERIES[0]!r})])[0]
        with omnilab.open({str(tmp_path / "lab")!r}) as lab:  # the lab's recorded spec picks the embedder
            ids = lab.search({QUERIES[1]!r}, k=5)["memory_id"].tolist()
            used = type(lab.memory.embedder).__name__
        print(json.dumps({{"cls": type(emb).__name__, "used": used, "source": emb._onnx.source, "ids": ids,
                          "vec": vec.tolist(), "heavy": sorted(m for m in ("torch", "transformers",
                                                               "sentence_transformers") if m in sys.modules)}}))
    """)
    env = {**os.environ, "XDG_CACHE_HOME": str(xdg)}
    env.pop(BACKEND_ENV, None)
    env.pop(PRECISION_ENV, None)  # the default: int8
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["cls"] == out["used"] == "OnnxSentenceEmbedder"
    assert out["source"] == "cache"  # loaded from disk, not exported again
    assert out["heavy"] == []  # neither torch, transformers nor sentence_transformers was imported
    assert _cache_files(xdg / "omnilab") == before  # nothing rewritten
    assert float(np.asarray(out["vec"]) @ onnx_int8.embed([onnx_int8.preprocess(QUERIES[0])])[0]) >= 0.99999
    with omnilab.open(tmp_path / "lab", embedder=onnx_int8) as lab:
        assert out["ids"] == lab.search(QUERIES[1], k=5)["memory_id"].tolist()


@pytest.mark.parametrize("damage", ["truncated", "flipped", "no manifest", "wrong key"])
def test_damaged_cache_entry_is_detected(tmp_path, xdg, onnx_st, damage):
    cache = tmp_path / "cache"
    shutil.copytree(xdg / "omnilab" / "onnx", cache)
    entry = onnx_backend._Entry.of(onnx_st.layout, cache)
    assert entry.read() is not None
    if damage == "truncated":
        with open(entry.model, "r+b") as fh:
            fh.truncate(entry.model.stat().st_size // 2)
    elif damage == "flipped":  # same size, one byte changed in the weights
        with open(entry.model, "r+b") as fh:
            fh.seek(entry.model.stat().st_size // 2)
            byte = fh.read(1)
            fh.seek(-1, os.SEEK_CUR)
            fh.write(bytes([byte[0] ^ 0xFF]))
    elif damage == "no manifest":  # a process killed between publishing the model and its manifest
        entry.manifest.unlink()
    else:
        meta = json.loads(entry.manifest.read_text())
        entry.manifest.write_text(json.dumps({**meta, "key": "0" * 16}))
    assert entry.read() is None


def test_partial_cache_entry_is_rebuilt(tmp_path, xdg, onnx_st, torch_st, memories):
    cache = tmp_path / "cache"
    shutil.copytree(xdg / "omnilab" / "onnx", cache)
    entry = onnx_backend._Entry.of(onnx_st.layout, cache)
    with open(entry.model, "r+b") as fh:
        fh.truncate(1000)
    rebuilt = OnnxSentenceEmbedder(cache_dir=cache, fallback=False, precision="fp32")
    rebuilt.load()
    assert rebuilt._onnx.source == "exported"
    meta = json.loads(entry.manifest.read_text())
    assert entry.model.stat().st_size == meta["size"] > 1000 and meta["min_probe_cosine"] >= 0.9999
    assert not list(cache.glob(".*export-*"))  # the scratch directory is gone
    texts = [rebuilt.preprocess(m["content"]) for m in memories[:20]]
    assert float((rebuilt.embed(texts) * torch_st.embed(texts)).sum(axis=1).min()) >= 0.9999
    again = OnnxSentenceEmbedder(cache_dir=cache, fallback=False, precision="fp32")
    again.load()
    assert again._onnx.source in ("cache", "memory")


def test_failed_export_falls_back_to_torch_with_a_warning(tmp_path, torch_st, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")  # the cache directory cannot be created below a file
    emb = OnnxSentenceEmbedder(cache_dir=blocker / "onnx")
    vec = emb.embed([emb.preprocess(QUERIES[0])])
    assert emb.active_backend == "torch"
    assert "embedding with PyTorch instead" in caplog.text
    assert float(vec[0] @ torch_st.embed([QUERIES[0]])[0]) >= 0.99999
    strict = OnnxSentenceEmbedder(cache_dir=blocker / "onnx", fallback=False)
    with pytest.raises(OmnilabError, match="ONNX"):
        strict.embed([QUERIES[0]])


def test_backend_choice(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert type(create_embedder("sentence-transformers")) is OnnxSentenceEmbedder  # the default
    monkeypatch.setenv(BACKEND_ENV, "torch")
    assert type(create_embedder("sentence-transformers:all-MiniLM-L6-v2")) is SentenceTransformerEmbedder
    monkeypatch.setenv(BACKEND_ENV, "onnx")
    assert type(create_embedder("st")) is OnnxSentenceEmbedder
    monkeypatch.setenv(BACKEND_ENV, "tensorflow")
    with pytest.raises(ConfigError, match=BACKEND_ENV):
        create_embedder("sentence-transformers")


def test_models_the_onnx_path_does_not_reproduce_stay_on_torch(tmp_path, monkeypatch):
    src = Path(SentenceTransformerEmbedder().path)
    model = tmp_path / "cls-pooled"
    shutil.copytree(src, model)
    pooling = json.loads((model / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (model / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    emb = create_embedder(f"sentence-transformers:{model}")
    assert type(emb) is SentenceTransformerEmbedder and emb.name == "sentence-transformers:cls-pooled"
    monkeypatch.setenv(BACKEND_ENV, "onnx")
    with pytest.raises(ConfigError, match="mean pooling"):
        create_embedder(f"sentence-transformers:{model}")


# ------------------------------------------------------------------------------------------------ int8
def test_int8_vectors_within_cosine_099_of_pytorch_on_every_sample_memory(onnx_int8, torch_st):
    """Against the PyTorch vectors of the whole sample (the shipped ones, which tests/test_sample.py checks
    against PyTorch run live), plus PyTorch run here on a spread of them."""
    from omnilab.sample import shipped
    from omnilab.vectors.embedders import text_key

    meta, ref = shipped.shipped_vectors()
    pre = {text_key(p): p for p in (onnx_int8.preprocess(t) for t in shipped.sample_texts())}
    texts = [pre[k] for k in meta["keys"]]
    got = onnx_int8.embed(texts)
    assert got.shape == ref.shape and onnx_int8.name == torch_st.name  # one embedder to a lab
    cos = (got * ref).sum(axis=1)
    assert cos.min() >= 0.99 and cos.mean() >= 0.995, (cos.min(), cos.mean())
    some = list(range(0, len(texts), 40))
    live = (got[some] * torch_st.embed([texts[i] for i in some])).sum(axis=1)
    assert live.min() >= 0.99
    assert float(cos.min()) < 0.9995  # it is a different model run than fp32 (which gives 0.9999+)


def test_int8_entry_is_its_own_cache_entry_made_from_fp32(xdg, onnx_st, onnx_int8):
    cache = xdg / "omnilab" / "onnx"
    fp32, int8 = (onnx_backend._Entry.of(onnx_st.layout, cache, p) for p in ("fp32", "int8"))
    assert fp32.model != int8.model and fp32.key != int8.key and int8.model.name.endswith("-int8.onnx")
    meta = json.loads(int8.manifest.read_text())
    assert meta["precision"] == "int8" and meta["min_probe_cosine"] >= onnx_backend.MIN_QUANTIZED_COSINE
    assert len(meta["fp32_matmuls"]) == onnx_backend.FP32_FFN_OUTPUT_LAYERS
    assert int8.read() is not None and int8.model.stat().st_size < 0.8 * fp32.model.stat().st_size
    assert onnx_backend.is_cached(onnx_st.layout, cache, "int8") and onnx_backend.is_cached(onnx_st.layout, cache)
    with pytest.raises(ConfigError, match="precision"):
        onnx_backend._Entry.of(onnx_st.layout, cache, "int4")


def test_a_torch_lab_opens_and_searches_with_int8_without_re_embedding(tmp_path, torch_st, onnx_int8, memories):
    with omnilab.open(tmp_path / "torch", embedder=torch_st) as lab:
        lab.ingest(memories, progress=False)
        by_torch = {q: lab.search(q, k=10)["memory_id"].tolist() for q in QUERIES}
    with omnilab.open(tmp_path / "torch", embedder=onnx_int8) as lab:
        assert lab.memory.reconcile()["embedded"] == 0 and lab.memory.cache.count() == len(memories)
        by_int8 = {q: lab.search(q, k=10)["memory_id"].tolist() for q in QUERIES}
    overlap = [len(set(by_int8[q]) & set(by_torch[q])) for q in QUERIES]
    tops = [by_int8[q][0] == by_torch[q][0] for q in QUERIES]
    assert sum(overlap) / len(overlap) >= 8 and sum(tops) >= len(QUERIES) - 1, (overlap, tops)


def test_failed_int8_model_falls_back_to_fp32_with_a_warning(tmp_path, xdg, onnx_st, monkeypatch, caplog):
    cache = tmp_path / "cache"
    cache.mkdir()
    for f in (onnx_backend._Entry.of(onnx_st.layout, xdg / "omnilab" / "onnx"),):
        shutil.copy2(f.model, cache / f.model.name)
        shutil.copy2(f.manifest, cache / f.manifest.name)

    def broken(*args, **kwargs):
        raise OmnilabError("no quantizer here")

    monkeypatch.setattr(onnx_backend, "_quantize", broken)
    emb = OnnxSentenceEmbedder(cache_dir=cache)
    vec = emb.embed([emb.preprocess(QUERIES[0])])
    assert emb.active_backend == "onnx" and emb.active_precision == "fp32"
    assert "embedding with the fp32 ONNX export instead" in caplog.text
    assert float(vec[0] @ onnx_st.embed([QUERIES[0]])[0]) >= 0.99999
    assert not onnx_backend.is_cached(onnx_st.layout, cache, "int8")  # nothing half-published
    with pytest.raises(OmnilabError, match="no quantizer"):
        OnnxSentenceEmbedder(cache_dir=cache, fallback=False).embed([QUERIES[0]])


def test_precision_choice(monkeypatch):
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    assert OnnxSentenceEmbedder().precision == "int8"
    monkeypatch.setenv(PRECISION_ENV, "FP32")
    assert create_embedder("sentence-transformers").precision == "fp32"
    assert OnnxSentenceEmbedder(precision="int8").precision == "int8"  # the argument wins
    monkeypatch.setenv(PRECISION_ENV, "fp16")
    with pytest.raises(ConfigError, match=PRECISION_ENV):
        OnnxSentenceEmbedder()
