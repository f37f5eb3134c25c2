"""A LlamaIndex vector store (``BasePydanticVectorStore``) over a lab: one memory type is the collection.

    from omnilab.integrations.llamaindex import OmnilabVectorStore
    store = OmnilabVectorStore.open("data/agent-lab", dim=384)       # nodes bring their own embeddings
    index = VectorStoreIndex.from_vector_store(store, embed_model=...)

Nodes are memories: the node id is the memory id, the node's text its content, and its metadata the
memory's metadata in LlamaIndex's usual layout (the node's own keys at the top, plus ``_node_content``,
``_node_type``, ``doc_id``/``document_id``/``ref_doc_id``), so ``metadata.<key>`` filters and LlamaIndex's
node reconstruction both work. ``MetadataFilters`` become omnilab's ``where`` and run in SQL before
ranking: a filtered query returns the exact top-k of the matching nodes. Scores are cosine similarities.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from omnilab.errors import InvalidInput
from omnilab.integrations._common import check_ids, ids_where, memory_type_value, rows_by_id, split_existing, vectors_of
from omnilab.sql.own_tables import memory_vectors
from omnilab.vectors.embedders import DetachedEmbedder, PrecomputedEmbedder, create_embedder

try:
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.schema import BaseNode, MetadataMode
    from llama_index.core.vector_stores.types import (
        BasePydanticVectorStore,
        FilterCondition,
        FilterOperator,
        MetadataFilter,
        MetadataFilters,
        VectorStoreQuery,
        VectorStoreQueryMode,
        VectorStoreQueryResult,
    )
    from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "omnilab.integrations.llamaindex needs llama-index-core: pip install 'omnilab[llamaindex]'"
    ) from exc

__all__ = ["OmnilabVectorStore", "filters_to_where"]

_SIMPLE = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
    FilterOperator.CONTAINS: "$contains",
}
_NEGATED = {
    FilterOperator.EQ: FilterOperator.NE,
    FilterOperator.NE: FilterOperator.EQ,
    FilterOperator.IN: FilterOperator.NIN,
    FilterOperator.NIN: FilterOperator.IN,
}


def filters_to_where(
    filters: MetadataFilters | None, lab: Any = None, memory_type: str | None = None
) -> dict[str, Any] | None:
    """LlamaIndex ``MetadataFilters`` as omnilab's ``where`` on ``metadata.<key>`` (exact, same semantics as
    LlamaIndex's own in-memory store: a missing key matches only ``!=`` and ``nin``).

    ``text_match`` / ``text_match_insensitive`` and ``is_empty`` look at the stored values of that key in
    ``lab`` (substring tests are not in the ``where`` language) and become an exact ``$in``.
    """
    if filters is None:
        return None
    if not isinstance(filters, MetadataFilters):
        raise InvalidInput(f"filters must be MetadataFilters, got {type(filters).__name__}")
    cond = filters.condition or FilterCondition.AND
    if cond == FilterCondition.NOT:
        leaves: list[MetadataFilter | MetadataFilters] = []
        for f in filters.filters:
            if not isinstance(f, MetadataFilter) or f.operator not in _NEGATED:
                raise InvalidInput("a NOT condition is supported over ==, !=, in and nin filters only")
            leaves.append(MetadataFilter(key=f.key, value=f.value, operator=_NEGATED[f.operator]))
        filters, cond = MetadataFilters(filters=leaves, condition=FilterCondition.AND), FilterCondition.AND
    parts = [
        filters_to_where(f, lab, memory_type) if isinstance(f, MetadataFilters) else _leaf(f, lab, memory_type)
        for f in filters.filters
    ]
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return {"$and" if cond == FilterCondition.AND else "$or": parts}


def _leaf(f: MetadataFilter, lab: Any, memory_type: str | None) -> dict[str, Any]:
    key, op, value = f"metadata.{f.key}", f.operator, f.value
    if op == FilterOperator.IS_EMPTY:
        return {"$or": [{key: None}, {key: ""}, {"id": {"$in": _ids_with_empty_list(lab, memory_type, key)}}]}
    if value is None:
        raise InvalidInput(f"filter on {f.key!r}: value None (use is_empty for missing values)")
    if op in _SIMPLE:
        if op in (FilterOperator.IN, FilterOperator.NIN) and not isinstance(value, list):
            raise InvalidInput(f"filter on {f.key!r}: {op.value} takes a list")
        return {key: {_SIMPLE[op]: value}}
    if op in (FilterOperator.ANY, FilterOperator.ALL):
        if not isinstance(value, list):
            raise InvalidInput(f"filter on {f.key!r}: {op.value} takes a list")
        if not value:  # any([]) is False; all([]) is True wherever the key has a value
            return {key: {"$in": []}} if op == FilterOperator.ANY else {key: {"$ne": None}}
        return {"$or" if op == FilterOperator.ANY else "$and": [{key: {"$contains": v}} for v in value]}
    if op in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE):
        if not isinstance(value, str):
            raise InvalidInput(f"filter on {f.key!r}: {op.value} takes a string")
        insensitive = op == FilterOperator.TEXT_MATCH_INSENSITIVE
        needle = value.lower() if insensitive else value
        values = _string_values(lab, memory_type, key)
        return {key: {"$in": [s for s in values if needle in (s.lower() if insensitive else s)]}}
    raise InvalidInput(f"filter operator {op!r} is not supported")


def _needs_lab(lab: Any, key: str) -> None:
    if lab is None:
        raise InvalidInput(f"filter on {key!r}: text_match and is_empty need the lab to read stored values")


def _string_values(lab: Any, memory_type: str | None, key: str) -> list[str]:
    """Distinct string values of ``metadata.<key>`` among the store's memories."""
    _needs_lab(lab, key)
    frame = lab.memory.memories(memory_type, where={key: {"$gte": ""}})  # every string compares >= ""
    path = key.split(".")[1:]
    out = set()
    for meta in frame["metadata"]:
        v = _get(meta, path)
        if isinstance(v, str):
            out.add(v)
    return sorted(out)


def _ids_with_empty_list(lab: Any, memory_type: str | None, key: str) -> list[str]:
    _needs_lab(lab, key)
    frame = lab.memory.memories(memory_type, where={key: {"$ne": None}})
    path = key.split(".")[1:]
    return [str(i) for i, meta in zip(frame["id"], frame["metadata"]) if _get(meta, path) == []]


def _get(meta: Any, path: list[str]) -> Any:
    for p in path:
        if not isinstance(meta, dict):
            return None
        meta = meta.get(p)
    return meta


class OmnilabVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store over the ``memory_type`` memories of an open lab (``store.client`` is the lab)."""

    stores_text: bool = True
    flat_metadata: bool = False
    memory_type: str = "knowledge"

    _lab: Any = PrivateAttr()
    _owns_lab: bool = PrivateAttr(default=False)

    def __init__(self, lab: Any, memory_type: Any = "knowledge", *, owns_lab: bool = False, **kwargs: Any) -> None:
        super().__init__(memory_type=memory_type_value(memory_type), **kwargs)
        self._lab = lab
        self._owns_lab = owns_lab

    @classmethod
    def class_name(cls) -> str:
        return "OmnilabVectorStore"

    @classmethod
    def open(
        cls,
        path: str | Path | None,
        dim: int | None = None,
        *,
        embed_model: Any = None,
        memory_type: Any = "knowledge",
        **open_options: Any,
    ) -> OmnilabVectorStore:
        """Open (or create) the lab at ``path`` for LlamaIndex.

        ``dim``: nodes bring their own embeddings of that dimension (the lab's embedder is
        ``precomputed:<dim>``); ``embed_model``: a LlamaIndex embedding model becomes the lab's embedder
        (nodes without embeddings and text queries use it). Neither: the lab's own (recorded) embedder.
        """
        import omnilab

        if "embedder" in open_options and (dim is not None or embed_model is not None):
            raise InvalidInput("give dim=/embed_model= or embedder=, not both")
        if embed_model is not None:
            emb = create_embedder(embed_model)
            if dim is not None and emb.dim != dim:
                raise InvalidInput(f"embed_model has dimension {emb.dim}, not {dim}")
            open_options["embedder"] = emb
        elif dim is not None:
            open_options["embedder"] = PrecomputedEmbedder(dim)
        lab = omnilab.open(path, **open_options)
        try:
            return cls(lab, memory_type, owns_lab=True)
        except Exception:
            lab.close()
            raise

    def close(self) -> None:
        """Close the lab if this store opened it."""
        if self._owns_lab:
            self._lab.close()

    @property
    def client(self) -> Any:
        return self._lab

    @property
    def lab(self) -> Any:
        return self._lab

    # ------------------------------------------------------------------------------------ writing
    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Store nodes (with their embeddings; without one, the lab's embedder embeds the text).

        A node whose id exists replaces it (deleted, then added: LlamaIndex's own update is delete+insert).
        """
        if add_kwargs:
            raise InvalidInput(f"unknown argument(s) {', '.join(sorted(add_kwargs))}")
        rows: dict[str, dict[str, Any]] = {}
        can_embed = not isinstance(self._lab.memory.embedder, DetachedEmbedder)
        for i, node in enumerate(nodes):
            if not isinstance(node, BaseNode):
                raise InvalidInput(f"node {i} is a {type(node).__name__}, not a LlamaIndex node")
            row: dict[str, Any] = {
                "id": node.node_id,
                "memory_type": self.memory_type,
                "content": node.get_content(metadata_mode=MetadataMode.NONE),
                "metadata": node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata),
            }
            if node.embedding is not None:
                row["embedding"] = np.asarray(node.embedding, dtype=np.float32)
            elif not can_embed:
                raise InvalidInput(
                    f"node {node.node_id!r} has no embedding and this lab's embedder "
                    f"({self._lab.memory.embedder.name}) cannot embed text"
                )
            rows[node.node_id] = row
        if not rows:
            return []
        check_ids(list(rows), "node ids")
        from omnilab.sql.validate import validate_rows
        from omnilab.vectors.sources import check_vector

        dim = self._lab.memory.embedder.dim
        for mid, row in rows.items():  # everything checked before anything is deleted or written
            if "embedding" in row:
                check_vector(row["embedding"], dim, f"node {mid!r}")
        validate_rows("memory_entries", [{k: v for k, v in r.items() if k != "embedding"} for r in rows.values()])
        existing = split_existing(self._lab, self.memory_type, list(rows))
        if existing:
            self._lab.forget(list(existing))
        self._lab.ingest(list(rows.values()), progress=False, dedupe=False)
        return [n.node_id for n in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the source document ``ref_doc_id``."""
        if delete_kwargs:
            raise InvalidInput(f"unknown argument(s) {', '.join(sorted(delete_kwargs))}")
        if not isinstance(ref_doc_id, str) or not ref_doc_id:
            raise InvalidInput(f"ref_doc_id must be a non-empty string, got {ref_doc_id!r}")
        ids = ids_where(self._lab, self.memory_type, {"metadata.ref_doc_id": ref_doc_id})
        if ids:
            self._lab.forget(ids)

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        """Delete the nodes with these ids and/or matching ``filters`` (one of them is required)."""
        if delete_kwargs:
            raise InvalidInput(f"unknown argument(s) {', '.join(sorted(delete_kwargs))}")
        if node_ids is None and filters is None:
            raise InvalidInput("delete_nodes needs node_ids or filters; clear() deletes every node")
        ids = self._matching(node_ids, filters)
        if ids:
            self._lab.forget(ids)

    def clear(self) -> None:
        """Delete every node of this store (every memory of its type)."""
        ids = ids_where(self._lab, self.memory_type, None)
        if ids:
            self._lab.forget(ids)

    # ------------------------------------------------------------------------------------ reading
    def _where(
        self, node_ids: list[str] | None, filters: MetadataFilters | None, doc_ids: list[str] | None = None
    ) -> dict[str, Any] | None:
        parts = []
        if node_ids is not None:
            parts.append({"id": {"$in": check_ids(node_ids, "node_ids")}})
        if doc_ids is not None:
            parts.append({"metadata.ref_doc_id": {"$in": check_ids(doc_ids, "doc_ids")}})
        where = filters_to_where(filters, self._lab, self.memory_type)
        if where is not None:
            parts.append(where)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"$and": parts}

    def _matching(self, node_ids: list[str] | None, filters: MetadataFilters | None) -> list[str]:
        return ids_where(self._lab, self.memory_type, self._where(node_ids, filters))

    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None) -> list[BaseNode]:
        """Nodes by id and/or filters (all nodes with neither), each with its (L2-normalized) embedding."""
        ids = self._matching(node_ids, filters)
        if node_ids is not None:  # in the order asked
            order = {m: i for i, m in enumerate(node_ids)}
            ids.sort(key=lambda m: order.get(m, len(order)))
        rows = rows_by_id(self._lab, ids)
        mv = memory_vectors
        vids: dict[str, int] = {}
        with self._lab.own_engine.connect() as conn:
            for start in range(0, len(ids), 500):
                vids.update(
                    conn.execute(
                        sa.select(mv.c.memory_id, mv.c.id).where(mv.c.memory_id.in_(ids[start : start + 500]))
                    ).all()
                )
        vecs = vectors_of(self._lab, list(vids), list(vids.values()))
        out = []
        for m in ids:
            node = self._node(m, rows[m]["content"], rows[m]["metadata"])
            if m in vecs:
                node.embedding = vecs[m].tolist()
            out.append(node)
        return out

    @staticmethod
    def _node(memory_id: str, content: str, metadata: dict[str, Any]) -> BaseNode:
        try:
            node = metadata_dict_to_node(metadata, text=content)
        except (ValueError, TypeError):  # a memory written by other code: a plain text node
            from llama_index.core.schema import TextNode

            node = TextNode(text=content, metadata=dict(metadata or {}))
        node.id_ = memory_id
        return node

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Top ``similarity_top_k`` nodes by cosine among those matching filters, doc_ids and node_ids.

        Modes: default, and MMR (``mmr_threshold`` = lambda, ``mmr_prefetch_k`` or ``mmr_prefetch_factor``).
        """
        mode = query.mode
        if mode not in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR):
            raise InvalidInput(f"query mode {mode.value!r} is not supported (default and mmr are)")
        memory = self._lab.memory
        if query.query_embedding is not None:
            vec = memory.query_vector(np.asarray(query.query_embedding, dtype=np.float32))
        elif query.query_str:
            vec = memory.embedder.embed_one(query.query_str)
        else:
            raise InvalidInput("the query needs query_embedding (or query_str with a lab that can embed text)")
        k = query.similarity_top_k
        where = self._where(query.node_ids, query.filters, query.doc_ids)
        fetch = k
        if mode == VectorStoreQueryMode.MMR:
            fetch = int(kwargs.get("mmr_prefetch_k") or k * float(kwargs.get("mmr_prefetch_factor") or 4.0))
        frame = memory.search(vec, memory_type=self.memory_type, k=max(fetch, 1), where=where)
        ids = [str(m) for m in frame["memory_id"]]
        scores = [float(s) for s in frame["score"]]
        if mode == VectorStoreQueryMode.MMR and ids:
            from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings

            vecs = vectors_of(self._lab, ids, [int(v) for v in frame["vector_id"]])
            keep = [m for m in ids if m in vecs]
            scores, ids = get_top_k_mmr_embeddings(
                vec.tolist(),
                [vecs[m].tolist() for m in keep],
                embedding_ids=keep,
                similarity_top_k=k,
                mmr_threshold=query.mmr_threshold,
            )
            frame = frame.set_index("memory_id").loc[ids].reset_index()
        nodes = [
            self._node(m, c, md or {}) for m, c, md in zip(frame["memory_id"], frame["content"], frame["metadata"])
        ]
        return VectorStoreQueryResult(nodes=nodes, similarities=list(scores), ids=list(ids))

    def persist(self, persist_path: str, fs: Any = None) -> None:
        """Nothing to do: every write is already committed to the lab's database and index."""

    # ------------------------------------------------------------------------------------- async
    # The lab is synchronous; a worker thread keeps the event loop free.
    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        return await asyncio.to_thread(self.add, nodes, **kwargs)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await asyncio.to_thread(self.delete, ref_doc_id, **delete_kwargs)

    async def adelete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        await asyncio.to_thread(self.delete_nodes, node_ids, filters, **delete_kwargs)

    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)

    async def aget_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        return await asyncio.to_thread(self.get_nodes, node_ids, filters)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return await asyncio.to_thread(self.query, query, **kwargs)
