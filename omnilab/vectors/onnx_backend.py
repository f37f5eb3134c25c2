"""ONNX Runtime backend for sentence-transformers BERT models (all-MiniLM-L6-v2): same vectors, no torch to run.

Loading torch + sentence-transformers costs seconds per process; onnxruntime + the HF ``tokenizers`` fast
tokenizer load in a fraction of that. The model is exported once, offline, from the weights on disk
(``torch.onnx.export`` with dynamic batch and sequence axes, then onnxruntime's BERT fusions when they apply),
checked against the PyTorch model on probe texts (cosine >= :data:`MIN_EXPORT_COSINE`) and cached in the
user cache directory (``$XDG_CACHE_HOME/omnilab/onnx`` or ``~/.cache/omnilab/onnx``). A cache entry is keyed
by the model name, a fingerprint of the weight and config files (name, size, mtime) and
:data:`EXPORT_FORMAT`; it is written atomically (temp file, fsync, ``os.replace``, the JSON manifest last)
under a file lock, so two processes never export at once and a reader never sees half a file. Every load
checks the model's size against the manifest, and its sha256 unless the file still has the inode, size and
mtime recorded when it was published (hashing 90 MB would cost a tenth of a second per process); a damaged
or partial entry is exported again.

Pooling matches sentence-transformers for a Transformer -> mean Pooling (-> Normalize) model: token
embeddings averaged over the attention mask, with the same truncation (``max_seq_length`` from
``sentence_bert_config.json``, special tokens included). Only this module's loading path runs at search time:
it imports onnxruntime, tokenizers and numpy, never torch, transformers or sentence_transformers (those are
imported by :func:`_export` only).

Precision: ``load_model(layout, precision="int8")`` (the embedder's default) derives a second cache entry from
the fp32 one, once, offline: onnxruntime's dynamic quantization (int8 weights per output channel, activations
quantized per call) of the fused graph's attention and feed-forward MatMuls, except the feed-forward output
projections of the first :data:`FP32_FFN_OUTPUT_LAYERS` layers, whose inputs (after GELU) carry the outliers
that cost the most accuracy. It runs ~2x faster on CPU, with vectors at cosine >= 0.99 to PyTorch on every
sample memory (0.9924 at worst, 0.9965 on average; a plain per-tensor quantization gives 0.90). The entry is
checked against the fp32 export on the probe texts (cosine >= :data:`MIN_QUANTIZED_COSINE`) before it is
published, under its own lock, with the same atomic write and load-time checks as the fp32 entry. Building it
needs the ``onnx`` package but not torch when the fp32 entry is already cached.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omnilab.errors import ConfigError, OmnilabError

__all__ = [
    "EXPORT_FORMAT",
    "MIN_EXPORT_COSINE",
    "MIN_QUANTIZED_COSINE",
    "QUANTIZE_FORMAT",
    "PRECISIONS",
    "StLayout",
    "OnnxModel",
    "available",
    "read_layout",
    "default_cache_dir",
    "load_tokenizer",
    "load_model",
    "is_cached",
]

log = logging.getLogger(__name__)

#: bump when the exported graph, its inputs or the export checks change: older cache entries are then ignored
EXPORT_FORMAT = 1
#: an export is cached only if every probe text's vector is at least this close to the PyTorch one
MIN_EXPORT_COSINE = 0.9999
#: bump when the quantization recipe changes: older int8 entries are then ignored
QUANTIZE_FORMAT = 1
#: an int8 entry is cached only if every probe text's vector is at least this close to the fp32 export's
MIN_QUANTIZED_COSINE = 0.99
#: the feed-forward output MatMuls of this many first layers stay fp32 in the int8 model (see the module doc)
FP32_FFN_OUTPUT_LAYERS = 3
#: the precisions :func:`load_model` builds
PRECISIONS = ("fp32", "int8")
_WEIGHT_FILES = ("config.json", "model.safetensors", "pytorch_model.bin")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_LOCK_TIMEOUT = 900.0  # seconds to wait for another process's export (minutes on a busy 2-core machine)
# Probe texts for checking an export: different lengths (one past max_seq_length), padding, non-ASCII.
_PROBES = (
    "parse a date from a string",
    "Return the number of days in the given month, taking leap years into account. " * 3,
    "Über naïve café façades: 日本語のテキストと emoji ✓ — mixed scripts & punctuation!?",
    "def split(s, comments=False, posix=True): lexer = shlex(s, posix=posix) " * 40,
)


def available() -> bool:
    """True when onnxruntime and the fast tokenizer are installed (the run-time needs of this backend)."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers"))


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/omnilab/onnx``, else ``~/.cache/omnilab/onnx``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "omnilab" / "onnx"


@dataclass(frozen=True)
class StLayout:
    """What the ONNX path needs to know about a sentence-transformers model directory."""

    path: Path
    name: str  # short model name, used in cache file names
    max_seq_length: int
    do_lower_case: bool
    dim: int
    num_heads: int

    @property
    def fingerprint(self) -> str:
        """Cache key: model name, export format, and name/size/mtime of the files the export reads."""
        files = []
        for fname in _WEIGHT_FILES:
            with contextlib.suppress(OSError):
                st = (self.path / fname).stat()
                files.append([fname, st.st_size, st.st_mtime_ns])
        blob = json.dumps({"model": self.name, "format": EXPORT_FORMAT, "files": files}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def _check_modules(path: Path) -> None:
    """Only Transformer -> mean Pooling [-> Normalize] is reproduced here; anything else stays on torch."""
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in _json(path / "modules.json")]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise ConfigError(f"the ONNX backend supports Transformer + Pooling [+ Normalize] models, not {kinds}")
    pooling = _json(path / "1_Pooling" / "config.json")
    modes = {k: bool(v) for k, v in pooling.items() if k.startswith("pooling_mode_")}
    if not modes.get("pooling_mode_mean_tokens") or sum(modes.values()) != 1:
        raise ConfigError(f"the ONNX backend supports mean pooling only, the model at {path} uses {modes}")


def read_layout(path: Path, name: str) -> StLayout:
    """The layout of a BERT sentence-transformers model with mean pooling, or ConfigError saying why not."""
    _check_modules(path)
    config = _json(path / "config.json")
    if config.get("model_type") != "bert":
        raise ConfigError(f"the ONNX backend supports BERT models, the model at {path} is {config.get('model_type')}")
    if not (path / "tokenizer.json").is_file():
        raise ConfigError(f"the ONNX backend needs the fast tokenizer file {path / 'tokenizer.json'}")
    st_config = _json(path / "sentence_bert_config.json")
    return StLayout(
        path=path,
        name=re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60],
        max_seq_length=int(st_config.get("max_seq_length") or 512),
        do_lower_case=bool(st_config.get("do_lower_case", False)),
        dim=int(config["hidden_size"]),
        num_heads=int(config["num_attention_heads"]),
    )


@functools.lru_cache(maxsize=8)
def load_tokenizer(path: Path, max_seq_length: int) -> Any:
    """The model's fast tokenizer truncating like sentence-transformers (special tokens included), no padding.

    ``tokenizer.json`` files carry their own truncation and fixed padding (128 for MiniLM); both are replaced.
    The object is shared and never reconfigured after this call.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # as on the torch path: no fork warnings
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.enable_truncation(max_length=max_seq_length)
    tok.no_padding()
    return tok


def _threads() -> int:
    """The CPUs this process may run on (respects taskset and container CPU sets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _session(model: bytes | str) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = _threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: the fused graph's load is otherwise chatty
    # the export is already fused offline; "all" adds only layout passes for convolutions, ~50 ms per load
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


class OnnxModel:
    """A loaded export: ``encode(texts)`` gives mean-pooled (not yet normalized) float32 vectors."""

    def __init__(self, layout: StLayout, session: Any, source: str) -> None:
        self.layout, self.session = layout, session
        #: where it came from: "exported" (this call exported it), "cache" (read from disk), "memory"
        self.source = source
        self._inputs = [i.name for i in session.get_inputs()]
        unknown = set(self._inputs) - set(_INPUTS)
        if unknown:
            raise OmnilabError(f"the ONNX export takes unexpected inputs {sorted(unknown)}")

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(n, dim) float32 mean-pooled vectors; texts are batched by token length to keep padding small."""
        seqs = _tokenize(self.layout, texts)
        lengths = np.fromiter((len(x) for x in seqs), dtype=np.int64, count=len(seqs))
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(seqs), self.layout.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            ids, mask = _pad([seqs[i] for i in rows])
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self.session.run(None, {k: feeds[k] for k in self._inputs})[0]
            out[rows] = _mean_pool(hidden, mask)
        return out


def _tokenize(layout: StLayout, texts: Sequence[str]) -> list[list[int]]:
    """Token ids with special tokens, truncated to max_seq_length, as sentence-transformers tokenizes."""
    texts = [t.lower() for t in texts] if layout.do_lower_case else list(texts)
    return [e.ids for e in load_tokenizer(layout.path, layout.max_seq_length).encode_batch(texts)]


def _pad(seqs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, attention mask), int64, right-padded with 0 to the longest sequence."""
    width = max(len(s) for s in seqs)
    ids = np.zeros((len(seqs), width), dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling: the sum over unmasked tokens over max(count, 1e-9)."""
    weights = mask[..., None].astype(np.float32)
    return (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)


# ----------------------------------------------------------------------------------------- cache entry
@dataclass(frozen=True)
class _Entry:
    model: Path
    manifest: Path
    lock: Path
    key: str

    @classmethod
    def of(cls, layout: StLayout, cache_dir: Path, precision: str = "fp32") -> _Entry:
        """The fp32 entry ``<name>-<key>.onnx``, or the int8 one ``<name>-<key>-int8.onnx`` (its own key)."""
        key = layout.fingerprint
        stem = f"{layout.name}-{key}"
        if precision == "int8":
            blob = f"{key}:int8:{QUANTIZE_FORMAT}:{FP32_FFN_OUTPUT_LAYERS}".encode()
            key, stem = hashlib.sha256(blob).hexdigest()[:16], f"{stem}-int8"
        elif precision != "fp32":
            raise ConfigError(f"ONNX precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        path = cache_dir / stem
        return cls(path.with_name(stem + ".onnx"), path.with_name(stem + ".json"), path.with_name(stem + ".lock"), key)

    def read(self) -> bytes | None:
        """The cached model's bytes if its manifest matches them (format, key, size, sha256), else None."""
        try:
            meta = json.loads(self.manifest.read_text(encoding="utf-8"))
            if meta.get("format") != EXPORT_FORMAT or meta.get("key") != self.key:
                return None
            stat = _stat_key(self.model)
            if stat[1] != meta.get("size"):
                log.warning("cached ONNX export %s is incomplete; exporting again", self.model)
                return None
            data = self.model.read_bytes()
        except (OSError, ValueError, AttributeError):
            return None
        if list(stat) == meta.get("stat"):  # untouched since it was published (and checked)
            return data
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            log.warning("cached ONNX export %s is damaged (checksum mismatch); exporting again", self.model)
            return None
        return data


_LOADED: dict[Path, tuple[tuple[int, int, int], Any]] = {}
_LOADED_LOCK = threading.RLock()
_Maker = Callable[[Path], tuple[Path, dict[str, Any]]]


def _stat_key(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def load_model(layout: StLayout, cache_dir: Path | None = None, precision: str = "fp32") -> OnnxModel:
    """The model's ONNX export, from this process's memory, the disk cache, or a fresh export (once).

    ``precision="int8"`` gives the quantized model, made from the fp32 entry (exported first if needed).
    Raises OmnilabError (ConfigError when torch/transformers/onnx are missing) if it cannot be built.
    """
    cache_dir = cache_dir or default_cache_dir()
    entry = _Entry.of(layout, cache_dir, precision)
    with _LOADED_LOCK:
        loaded = _from_memory(layout, entry) or _load_cached(layout, entry)
        if loaded is None:
            if precision == "int8":
                # made from the fp32 entry (exported first if needed), which is not kept loaded for this
                source = load_model(layout, cache_dir, "fp32")
                _LOADED.pop(_Entry.of(layout, cache_dir, "fp32").model, None)
                del source

                def make(tmp: Path) -> tuple[Path, dict[str, Any]]:
                    return _quantize(layout, _Entry.of(layout, cache_dir, "fp32").model, tmp)

            else:

                def make(tmp: Path) -> tuple[Path, dict[str, Any]]:
                    return _export(layout, tmp)

            loaded = _load_or_export(layout, entry, make)
        with contextlib.suppress(OSError):
            _LOADED[entry.model] = (_stat_key(entry.model), loaded.session)
        return loaded


def is_cached(layout: StLayout, cache_dir: Path | None = None, precision: str = "fp32") -> bool:
    """True when the cache holds a published entry for this model and precision (not checked further)."""
    entry = _Entry.of(layout, cache_dir or default_cache_dir(), precision)
    try:
        meta = json.loads(entry.manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("key") == entry.key and entry.model.is_file()


def _from_memory(layout: StLayout, entry: _Entry) -> OnnxModel | None:
    with contextlib.suppress(OSError):
        known = _LOADED.get(entry.model)
        if known is not None and known[0] == _stat_key(entry.model):
            return OnnxModel(layout, known[1], "memory")
    return None


def _load_cached(layout: StLayout, entry: _Entry) -> OnnxModel | None:
    data = entry.read()
    if data is None:
        return None
    try:
        return OnnxModel(layout, _session(data), "cache")
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types for bad models
        log.warning("cached ONNX export %s does not load (%s); exporting again", entry.model, exc)
        return None


def _load_or_export(layout: StLayout, entry: _Entry, make: _Maker) -> OnnxModel:
    cached = _load_cached(layout, entry)
    if cached is not None:
        return cached
    from filelock import FileLock, Timeout

    try:
        entry.model.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(entry.lock), timeout=_LOCK_TIMEOUT):
            cached = _load_cached(layout, entry)  # another process may have exported while we waited
            if cached is not None:
                return cached
            _build(layout, entry, make)
    except Timeout as exc:
        raise OmnilabError(f"another process has held {entry.lock} for {_LOCK_TIMEOUT:.0f}s") from exc
    except OmnilabError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch's exporter and the file system raise many kinds
        raise OmnilabError(f"exporting {layout.name} to ONNX failed: {type(exc).__name__}: {exc}") from exc
    loaded = _load_cached(layout, entry)
    if loaded is None:
        raise OmnilabError(f"the ONNX export written to {entry.model} does not read back")
    loaded.source = "exported"
    return loaded


@contextlib.contextmanager
def _scratch(entry: _Entry) -> Iterator[Path]:
    """A temporary directory beside the cache entry (same filesystem, for os.replace); left-overs of a killed
    export of the same entry are removed first (the caller holds the entry's lock)."""
    prefix = f".{entry.model.stem}.export-"
    for old in entry.model.parent.glob(prefix + "*"):
        shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=entry.model.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _build(layout: StLayout, entry: _Entry, make: _Maker) -> None:
    """Make the model (export or quantize, each checked), and publish it atomically: model first, manifest last."""
    from omnilab.vectors.index import _fsync_dir, _fsync_write

    started = time.perf_counter()
    what = "an int8 ONNX model" if entry.model.stem.endswith("-int8") else "ONNX"
    log.warning(
        "exporting %s to %s once (this takes a while; later runs load it in well under a second) into %s",
        layout.name,
        what,
        entry.model.parent,
    )
    with _scratch(entry) as tmp:
        model_file, info = make(tmp)
        data = model_file.read_bytes()
        with open(model_file, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(model_file, entry.model)
    manifest = {
        "format": EXPORT_FORMAT,
        "key": entry.key,
        "model": layout.name,
        "source": str(layout.path),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "stat": list(_stat_key(entry.model)),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **info,
    }
    _fsync_write(entry.manifest, json.dumps(manifest, indent=1).encode("utf-8"))
    _fsync_dir(entry.model.parent)
    log.warning(
        "exported %s to %s in %.1fs (min cosine to %s on probe texts %.6f)",
        layout.name,
        entry.model,
        time.perf_counter() - started,
        info.get("reference", "PyTorch"),
        info["min_probe_cosine"],
    )


def _export(layout: StLayout, tmp: Path) -> tuple[Path, dict[str, Any]]:
    """Export the transformer to ONNX in ``tmp``, fuse it for onnxruntime, and check it against PyTorch."""
    # Never reach a model hub, and no weight-loading progress bars.
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(var, "1")
    missing = [m for m in ("torch", "transformers", "onnx") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"exporting the model to ONNX needs {', '.join(missing)}: `pip install 'omnilab[local]'`")
    import torch
    from transformers import AutoModel

    try:
        model = AutoModel.from_pretrained(str(layout.path), local_files_only=True, attn_implementation="eager")
    except Exception as exc:  # noqa: BLE001 - transformers raises many kinds
        raise OmnilabError(f"cannot load the model at {layout.path} for the ONNX export: {exc}") from exc
    model.eval()

    class HiddenStates(torch.nn.Module):
        """The transformer's last hidden state from positional inputs (pooling is done outside the graph)."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    # The PyTorch reference for the check below, on other lengths than the trace and one past max_seq_length.
    ids, mask = _pad(_tokenize(layout, _PROBES))
    with torch.no_grad():
        ref = _mean_pool(
            model(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                token_type_ids=torch.zeros_like(torch.from_numpy(ids)),
            ).last_hidden_state.numpy(),
            mask,
        )
    ids, mask = _pad(_tokenize(layout, _PROBES[:2]))  # traced with padding, so the graph keeps the mask
    raw = tmp / "raw.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
        # eval(): the exporter puts the module back in its own mode afterwards, and a new Module trains
        torch.onnx.export(
            HiddenStates().eval(),
            (torch.from_numpy(ids), torch.from_numpy(mask), torch.zeros_like(torch.from_numpy(ids))),
            str(raw),
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in (*_INPUTS, "last_hidden_state")},
            opset_version=17,
            dynamo=False,
        )
    final, fused = _fuse(layout, raw, tmp / "fused.onnx")
    got = OnnxModel(layout, _session(str(final)), "exported").encode(_PROBES, batch_size=3)
    cosine = float(_cosines(ref, got).min())
    if not cosine >= MIN_EXPORT_COSINE:
        raise OmnilabError(f"the ONNX export of {layout.name} differs from PyTorch (min cosine {cosine:.6f})")
    import onnxruntime
    import transformers

    return final, {
        "precision": "fp32",
        "fused": fused,
        "min_probe_cosine": cosine,
        "max_seq_length": layout.max_seq_length,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
    }


def _quantize(layout: StLayout, fp32: Path, tmp: Path) -> tuple[Path, dict[str, Any]]:
    """Dynamic int8 quantization of the fused fp32 export (see the module doc), checked against fp32."""
    if importlib.util.find_spec("onnx") is None:
        raise ConfigError("quantizing the ONNX model needs onnx: `pip install 'omnilab[local]'`")
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32), load_external_data=False).graph
    ffn_out = [
        n.name
        for n in graph.node
        if n.op_type == "MatMul" and n.name.endswith("/output/dense/MatMul") and "/attention/" not in n.name
    ]
    keep = ffn_out[:FP32_FFN_OUTPUT_LAYERS]
    out = tmp / "int8.onnx"
    with warnings.catch_warnings(), _quiet("onnxruntime.quantization", "root"):
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(fp32),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_exclude=keep,
            # the fused graph's contrib ops defeat shape inference; every tensor in it is float
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    ref = OnnxModel(layout, _session(str(fp32)), "cache").encode(_PROBES, batch_size=3)
    got = OnnxModel(layout, _session(str(out)), "exported").encode(_PROBES, batch_size=3)
    cosine = float(_cosines(ref, got).min())
    if not cosine >= MIN_QUANTIZED_COSINE:
        raise OmnilabError(f"the int8 model of {layout.name} differs from fp32 (min cosine {cosine:.6f})")
    import onnxruntime

    return out, {
        "precision": "int8",
        "reference": "the fp32 export",
        "quantize_format": QUANTIZE_FORMAT,
        "fp32_matmuls": keep,
        "min_probe_cosine": cosine,
        "max_seq_length": layout.max_seq_length,
        "versions": {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
    }


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """The quantizer logs a warning per node it cannot quantize, and suggests pre-processing: errors only."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _fuse(layout: StLayout, raw: Path, out: Path) -> tuple[Path, bool]:
    """onnxruntime's BERT fusions (attention, layer norm, GELU): ~1.3x faster on CPU; the raw graph if they fail."""
    try:
        from onnxruntime.transformers import optimizer

        fused = optimizer.optimize_model(
            str(raw), model_type="bert", num_heads=layout.num_heads, hidden_size=layout.dim, opt_level=1
        )
        fused.save_model_to_file(str(out))
    except Exception as exc:  # noqa: BLE001 - the optimizer is best effort; the raw graph is correct
        log.info("onnxruntime's BERT fusions did not apply to %s (%s); using the plain export", layout.name, exc)
        return raw, False
    return out, True


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)
