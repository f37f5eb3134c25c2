"""The OpenAI embedder against a local OpenAI-compatible HTTP server (the only mocked outside service)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

import omnilab
from omnilab.errors import ConfigError, StoreUnavailable
from omnilab.vectors.embedders import HashingEmbedder, OpenAIEmbedder, create_embedder

REFERENCE = HashingEmbedder(64)  # the fake server answers with these vectors (scaled, to check normalization)


class FakeOpenAI(BaseHTTPRequestHandler):
    requests: list[dict] = []
    fail_first: list[int] = []  # HTTP codes to answer with before succeeding

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if type(self).fail_first:
            code = type(self).fail_first.pop(0)
            self.send_response(code)
            self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "slow down"}}')
            return
        if self.path != "/v1/embeddings" or self.headers.get("Authorization") != "Bearer test-key":
            self.send_response(401)
            self.end_headers()
            return
        dims = body.get("dimensions", 64)
        vecs = REFERENCE.embed(body["input"])[:, :dims] * 3.0
        data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vecs)]
        out = json.dumps({"object": "list", "data": data[::-1], "model": body["model"]}).encode()  # any order
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    FakeOpenAI.requests = []
    FakeOpenAI.fail_first = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}/v1")
    yield FakeOpenAI
    httpd.shutdown()


def test_embeds_normalized_in_order_with_retry_on_429(server):
    emb = create_embedder("openai:text-embedding-3-small:64")
    emb.backoff = 0.01
    server.fail_first = [429, 503]
    texts = ["alpha beta", "gamma delta", "epsilon"]
    vecs = emb.embed(texts)
    np.testing.assert_allclose(vecs, REFERENCE.embed(texts), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)
    assert len(server.requests) == 3 and emb.requests == 3
    assert server.requests[-1]["body"] == {
        "model": "text-embedding-3-small",
        "input": texts,
        "encoding_format": "float",
        "dimensions": 64,
    }


def test_batches_within_input_limit(server):
    emb = OpenAIEmbedder("text-embedding-3-small", dimensions=64)
    texts = [f"text {i}" for i in range(4100)]
    vecs = emb.embed(texts)
    assert vecs.shape == (4100, 64)
    assert [len(r["body"]["input"]) for r in server.requests] == [2048, 2048, 4]
    np.testing.assert_allclose(vecs[4099], REFERENCE.embed(["text 4099"])[0], atol=1e-6)


def test_errors(server, monkeypatch):
    emb = OpenAIEmbedder("text-embedding-3-small", dimensions=64, max_retries=1, backoff=0.0)
    server.fail_first = [429, 429]
    with pytest.raises(StoreUnavailable, match="429"):
        emb.embed(["x"])
    server.fail_first = [400]
    with pytest.raises(StoreUnavailable, match="400"):
        emb.embed(["x"])
    with pytest.raises(ConfigError):
        create_embedder("openai:some-unknown-model")
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        create_embedder("openai")


def test_lab_with_openai_embedder_caches(server, tmp_path, database_url):
    path = tmp_path / "lab"
    with omnilab.open(path, database_url=database_url, embedder="openai:text-embedding-3-small:64") as lab:
        mid = lab.remember("a memory embedded over HTTP", "knowledge")
        lab.remember("another unrelated note", "knowledge")
        assert lab.search("a memory embedded over HTTP", k=1)["memory_id"].tolist() == [mid]
    n = len(server.requests)
    with omnilab.open(path, database_url=database_url) as lab:  # reopen: recorded embedder, nothing re-embedded
        assert lab.memory.embedder.name == "openai:text-embedding-3-small:64"
        assert len(lab.memory.index) == 2
        lab.ingest([{"content": "another unrelated note", "memory_type": "task"}], progress=False)
    assert len(server.requests) == n
