"""What both framework adapters need from a lab: one memory type as a collection, rows by id, upserts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from omnilab import enums
from omnilab.errors import InvalidInput
from omnilab.sql.schema import TABLES

MEM = TABLES["memory_entries"]
_CHUNK = 500


def memory_type_value(memory_type: Any) -> str:
    value = getattr(memory_type, "value", memory_type)
    allowed = enums.values(enums.MemoryType)
    if value not in allowed:
        raise InvalidInput(f"memory_type must be one of {', '.join(allowed)}, got {memory_type!r}")
    return str(value)


def rows_by_id(lab: Any, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """memory id -> {memory_type, content, metadata} for the ids that exist (any memory type)."""
    wanted = sorted({i for i in ids})
    out: dict[str, dict[str, Any]] = {}
    with lab.engine.connect() as conn:
        for start in range(0, len(wanted), _CHUNK):
            stmt = sa.select(MEM.c.id, MEM.c.memory_type, MEM.c.content, MEM.c.metadata).where(
                MEM.c.id.in_(wanted[start : start + _CHUNK])
            )
            for mid, mtype, content, meta in conn.execute(stmt):
                out[mid] = {"memory_type": mtype, "content": content, "metadata": {} if meta is None else meta}
    return out


def check_ids(ids: Sequence[Any], what: str = "ids") -> list[str]:
    if isinstance(ids, str) or not isinstance(ids, Sequence):
        raise InvalidInput(f"{what} must be a list of strings")
    bad = [i for i in ids if not isinstance(i, str) or not i]
    if bad:
        raise InvalidInput(f"{what} must be non-empty strings, got {bad[0]!r}")
    return list(ids)


def ids_where(lab: Any, memory_type: str, where: Mapping[str, Any] | None) -> list[str]:
    """Memory ids of ``memory_type`` matching an omnilab ``where`` (exact, in SQL)."""
    frame = lab.memory.memories(memory_type, where=dict(where) if where else None)
    return [str(i) for i in frame["id"]]


def split_existing(lab: Any, memory_type: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The rows among ``ids`` that exist already; one of another memory type is an InvalidInput (nothing written)."""
    existing = rows_by_id(lab, ids)
    foreign = [(i, r["memory_type"]) for i, r in existing.items() if r["memory_type"] != memory_type]
    if foreign:
        mid, mtype = foreign[0]
        raise InvalidInput(
            f"id {mid!r} belongs to a {mtype!r} memory; this store holds {memory_type!r} memories "
            "(ids are unique across a lab)"
        )
    return existing


def vectors_of(lab: Any, memory_ids: Sequence[str], vector_ids: Sequence[int]) -> dict[str, np.ndarray]:
    """memory id -> its (normalized) vector in the index, for the given (memory id, vector id) pairs."""
    memory = lab.memory
    with memory._lock:  # the index is shared with writers in other threads
        found, mat = memory.index.vectors([int(v) for v in vector_ids])
    by_vid = {int(v): mat[j] for j, v in enumerate(found)}
    return {m: by_vid[int(v)] for m, v in zip(memory_ids, vector_ids) if int(v) in by_vid}
