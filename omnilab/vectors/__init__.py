"""Vector memory: embedders with a persistent cache, FAISS indexes per memory type, filtered and hybrid search.

Importing this package is cheap; FAISS, torch and the OpenAI client are imported only when used.
"""

from __future__ import annotations

__all__ = ["embedders", "cache", "index", "filters", "hybrid", "keys", "memory"]
