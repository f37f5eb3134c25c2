"""A LangChain ``VectorStore`` over a lab: one memory type of the lab is the collection.

    from omnilab.integrations.langchain import OmnilabVectorStore
    store = OmnilabVectorStore.open("data/agent-lab", embedding=my_embeddings)   # creates or opens the lab
    store.add_documents(docs)
    store.similarity_search("retry policy", k=4, filter={"metadata.source": "runbook"})
    retriever = store.as_retriever(search_kwargs={"k": 4})

Documents are memories: ``Document.id`` is the memory id, ``page_content`` its content, ``metadata`` its
metadata (JSON). ``filter`` is omnilab's ``where`` (columns, ``metadata.<key>``, ``tags``, ``$in`` ...),
applied before ranking, so a filtered search returns the exact top-k of the matching memories. Scores are
cosine similarities. Async methods run the sync ones in a worker thread, so the event loop is never blocked.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omnilab._checks import is_int
from omnilab.errors import ConfigError, InvalidInput
from omnilab.integrations._common import check_ids, ids_where, memory_type_value, rows_by_id, split_existing, vectors_of
from omnilab.vectors.embedders import Embedder, LangChainEmbedder, collapse, create_embedder

try:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore
    from langchain_core.vectorstores.utils import maximal_marginal_relevance
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("omnilab.integrations.langchain needs langchain-core: pip install 'omnilab[langchain]'") from exc

__all__ = ["OmnilabVectorStore", "LabEmbeddings"]

#: memory_entries columns add_texts may set for every text (besides content, metadata and id)
_COLUMN_KWARGS = ("agent_id", "session_id", "project_id", "priority", "tags")


class LabEmbeddings(Embeddings):
    """A lab's own embedder (hashing, sentence-transformers, ...) seen as LangChain ``Embeddings``."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed([self.embedder.preprocess(t) for t in texts]).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_one(text).tolist()


class OmnilabVectorStore(VectorStore):
    """LangChain vector store over the ``memory_type`` memories of an open lab (``store.lab``)."""

    def __init__(self, lab: Any, memory_type: Any = "knowledge", *, owns_lab: bool = False) -> None:
        self.lab = lab
        self.memory_type = memory_type_value(memory_type)
        self._owns_lab = owns_lab

    @classmethod
    def open(
        cls, path: str | Path | None, embedding: Any = None, *, memory_type: Any = "knowledge", **open_options: Any
    ) -> OmnilabVectorStore:
        """Open (or create) the lab at ``path`` with ``embedding`` (LangChain ``Embeddings``) as its embedder.

        ``open_options`` go to :func:`omnilab.open` (``database_url``, ``reindex``, ...). The store owns
        that lab: ``store.close()`` (or ``with``) closes it.
        """
        import omnilab

        if embedding is not None:
            if "embedder" in open_options:
                raise InvalidInput("give embedding= or embedder=, not both")
            open_options["embedder"] = embedding
        lab = omnilab.open(path, **open_options)
        try:
            return cls(lab, memory_type, owns_lab=True)
        except Exception:
            lab.close()
            raise

    def close(self) -> None:
        """Close the lab if this store opened it."""
        if self._owns_lab:
            self.lab.close()

    def __enter__(self) -> OmnilabVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<OmnilabVectorStore {self.memory_type!r} of {self.lab!r}>"

    @property
    def embeddings(self) -> Embeddings:
        emb = self.lab.memory.embedder
        return emb.embeddings if isinstance(emb, LangChainEmbedder) else LabEmbeddings(emb)

    # ------------------------------------------------------------------------------------ writing
    def add_texts(
        self, texts: Iterable[str], metadatas: list[dict] | None = None, *, ids: list[str] | None = None, **kwargs: Any
    ) -> list[str]:
        """Add texts (or overwrite the memories whose ids exist: content, metadata and columns given).

        Missing ids are generated (uuid4). ``kwargs`` may set ``agent_id``, ``session_id``, ``project_id``,
        ``priority`` or ``tags`` on every text. Everything is checked before anything is written.
        """
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise InvalidInput("texts must be strings")
        n = len(texts)
        if metadatas is not None and len(metadatas) != n:
            raise InvalidInput(f"got {len(metadatas)} metadatas for {n} texts")
        if ids is not None and len(ids) != n:
            raise InvalidInput(f"got {len(ids)} ids for {n} texts")
        unknown = set(kwargs) - set(_COLUMN_KWARGS)
        if unknown:
            raise InvalidInput(
                f"unknown argument(s) {', '.join(sorted(unknown))}; columns: {', '.join(_COLUMN_KWARGS)}"
            )
        if n == 0:
            return []
        # LangChain callers pass None for an id to generate
        out_ids = [str(uuid.uuid4()) if i is None else i for i in (ids or [None] * n)]  # type: ignore[list-item]
        check_ids(out_ids)
        rows: dict[str, dict[str, Any]] = {}  # a repeated id: the last text wins, as with any upsert
        for i, (mid, text) in enumerate(zip(out_ids, texts)):
            meta = (metadatas[i] if metadatas is not None else None) or {}
            if not isinstance(meta, Mapping):
                raise InvalidInput(f"metadata {i} must be a dict, got {type(meta).__name__}")
            try:
                collapse(text)
            except InvalidInput as exc:
                raise InvalidInput(f"text {i}: {exc} (omnilab memories need content)") from exc
            rows[mid] = {"id": mid, "content": text, "memory_type": self.memory_type, "metadata": dict(meta), **kwargs}
        from omnilab.sql.validate import validate_rows

        validate_rows("memory_entries", [dict(r) for r in rows.values()])  # bad values: nothing written
        existing = split_existing(self.lab, self.memory_type, list(rows))
        fresh = [r for mid, r in rows.items() if mid not in existing]
        if fresh:
            added = set(self.lab.ingest(fresh, progress=False, dedupe=False)["memory_ids"])
            for r in fresh:  # written by someone else between the check and the insert: overwrite it
                if r["id"] not in added:
                    existing[r["id"]] = rows_by_id(self.lab, [r["id"]]).get(r["id"], {})
        for mid, cur in existing.items():
            row = rows[mid]
            changes = {k: v for k, v in row.items() if k not in ("id", "memory_type")}
            if cur.get("content") == changes["content"] and cur.get("metadata") == changes["metadata"]:
                changes.pop("content")
                changes.pop("metadata")
            if changes:
                self.lab.update_memory(mid, **changes)
        return out_ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete the memories of this store with these ids (missing ids are ignored).

        ``ids=None`` deletes every memory of this store's type only with ``delete_all=True``: a lab is a
        research record, so emptying a whole memory type is never an accident of a default argument.
        """
        delete_all = kwargs.pop("delete_all", False)
        if kwargs:
            raise InvalidInput(f"unknown argument(s) {', '.join(sorted(kwargs))}")
        if ids is None:
            if delete_all is not True:
                raise InvalidInput(
                    f"delete() needs ids; delete(delete_all=True) deletes every {self.memory_type!r} memory of the lab"
                )
            targets = ids_where(self.lab, self.memory_type, None)
        else:
            found = rows_by_id(self.lab, check_ids(ids))
            targets = [m for m, r in found.items() if r["memory_type"] == self.memory_type]
        if targets:
            self.lab.forget(targets)
        return True

    # ------------------------------------------------------------------------------------ reading
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids (in the order asked, each once; missing ids are skipped)."""
        wanted = list(dict.fromkeys(check_ids(list(ids))))
        found = rows_by_id(self.lab, wanted)
        return [
            Document(id=m, page_content=found[m]["content"], metadata=found[m]["metadata"])
            for m in wanted
            if m in found and found[m]["memory_type"] == self.memory_type
        ]

    def _query_vector(self, query: str) -> np.ndarray:
        if not isinstance(query, str):
            raise InvalidInput(f"query must be text, got {type(query).__name__}")
        emb = self.lab.memory.embedder
        if isinstance(emb, LangChainEmbedder):
            return emb.embed_one(query)  # the object's embed_query (asymmetric models)
        return self.lab.memory.query_vector(query)

    def _search(
        self, vector: Any, k: int, where: Mapping[str, Any] | None, threshold: float | None = None
    ) -> tuple[list[tuple[Document, float]], list[int]]:
        frame = self.lab.memory.search(vector, memory_type=self.memory_type, k=k, where=where, threshold=threshold)
        docs = [
            (Document(id=m, page_content=c, metadata=dict(md or {})), float(s))
            for m, c, md, s in zip(frame["memory_id"], frame["content"], frame["metadata"], frame["score"])
        ]
        return docs, [int(v) for v in frame["vector_id"]]

    def similarity_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        k: int = 4,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        threshold: float | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Top-k (document, cosine) for a query vector among the memories matching ``filter``."""
        _no_kwargs(kwargs)
        return self._search(np.asarray(embedding, dtype=np.float32), k, filter, threshold)[0]

    def similarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        threshold: float | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Top-k (document, cosine) for a text query; ``filter`` is omnilab's ``where`` (pre-filter)."""
        _no_kwargs(kwargs)
        return self._search(self._query_vector(query), k, filter, threshold)[0]

    def similarity_search(
        self,
        query: str,
        k: int = 4,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        **kwargs: Any,
    ) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        **kwargs: Any,
    ) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        # scores already are cosine similarities (1 = same direction), which is what relevance means here
        return _identity

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        **kwargs: Any,
    ) -> list[Document]:
        """``k`` documents chosen from the exact filtered top ``fetch_k`` for relevance and diversity."""
        _no_kwargs(kwargs)
        if not is_int(fetch_k) or fetch_k < 1:
            raise InvalidInput(f"fetch_k must be a positive integer, got {fetch_k!r}")
        query = np.asarray(embedding, dtype=np.float32)
        hits, vids = self._search(query, max(fetch_k, k), filter)
        if not hits:
            return []
        vecs = vectors_of(self.lab, [str(d.id) for d, _ in hits], vids)
        keep = [(d, vecs[d.id]) for d, _ in hits if d.id in vecs]
        q = self.lab.memory.query_vector(query)  # checked and normalized like the stored vectors
        chosen = maximal_marginal_relevance(q, [v.tolist() for _, v in keep], lambda_mult=lambda_mult, k=k)
        return [keep[i][0] for i in chosen]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        **kwargs: Any,
    ) -> list[Document]:
        return self.max_marginal_relevance_search_by_vector(
            self._query_vector(query).tolist(), k, fetch_k, lambda_mult, filter, **kwargs
        )

    # ------------------------------------------------------------------------------ constructors
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Any,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        path: str | Path | None = None,
        lab: Any = None,
        memory_type: Any = "knowledge",
        **open_options: Any,
    ) -> OmnilabVectorStore:
        """A store holding ``texts``: in the lab at ``path`` (opened with ``embedding``), or in an open ``lab``
        whose embedder is that same ``embedding``."""
        if (path is None) == (lab is None):
            raise InvalidInput("from_texts needs path= (a lab directory) or lab= (an open lab), exactly one")
        if lab is not None:
            if open_options:
                raise InvalidInput("open options go with path=, not with an open lab")
            if embedding is not None and create_embedder(embedding).name != lab.memory.embedder.name:
                raise ConfigError(f"the lab is embedded with {lab.memory.embedder.name}, not with this embedding")
            store = cls(lab, memory_type)
        else:
            store = cls.open(path, embedding, memory_type=memory_type, **open_options)
        store.add_texts(texts, metadatas, ids=ids)
        return store


def _identity(score: float) -> float:
    return score


def _no_kwargs(kwargs: Mapping[str, Any]) -> None:
    if kwargs:
        raise InvalidInput(
            f"unknown search argument(s) {', '.join(sorted(kwargs))}; "
            "filter= takes omnilab's where, threshold= a minimum cosine"
        )
