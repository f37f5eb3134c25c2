"""Vector memory: embedders with a persistent cache, FAISS indexes per memory type, filtered and hybrid search.

Importing this package is cheap; FAISS, ONNX Runtime, torch and the OpenAI client are imported only when used.

``memory.MemoryStore`` composes the rest: ``ingest`` (validate -> dedupe -> embed steps), ``keys`` (key rows and
reconciliation with SQL), ``search.MemorySearch`` (semantic, filtered and hybrid search, result caching,
thresholds), ``index`` (FAISS per type), ``embedders`` (+ ``onnx_backend``) with ``cache``, ``filters``,
``hybrid`` (keyword index and fusion), ``thresholds``, ``relations``, ``meta`` and ``sources``.
"""

from __future__ import annotations

__all__ = [
    "embedders",
    "onnx_backend",
    "cache",
    "index",
    "filters",
    "hybrid",
    "keys",
    "ingest",
    "search",
    "memory",
    "meta",
    "relations",
    "sources",
    "thresholds",
]
