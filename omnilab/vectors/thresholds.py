"""Tuned search thresholds: one cosine per (memory type, embedder) in omnilab's own ``search_thresholds`` table.

``lab.tune_threshold`` (:mod:`omnilab.analysis.tuning`) finds a threshold and ``lab.save_threshold`` stores it
here; ``lab.search(..., threshold="tuned")`` resolves it here, on the search path. ``engine`` is always the
database holding omnilab's own tables (on a lab attached read-only: the lab directory's SQLite file).
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import sqlalchemy as sa

from omnilab import enums
from omnilab._checks import is_number
from omnilab.errors import InvalidInput
from omnilab.sql.engine import insert_on_conflict
from omnilab.sql.frames import read_frame
from omnilab.sql.own_tables import search_thresholds
from omnilab.sql.types import utcnow

__all__ = [
    "TUNED",
    "check_memory_type",
    "check_embedder_name",
    "save_threshold",
    "get_threshold",
    "saved_thresholds",
    "resolve_threshold",
]

log = logging.getLogger(__name__)

#: the ``threshold`` value that means "the saved one"
TUNED = "tuned"
MEMORY_TYPES = enums.values(enums.MemoryType)
_KEY = ["memory_type", "embedder"]  # the table's primary key


def check_memory_type(memory_type: Any) -> str | None:
    """A memory type (or enum member) as its name; None stays None."""
    if memory_type is None:
        return None
    value = getattr(memory_type, "value", memory_type)
    if value not in MEMORY_TYPES:
        raise InvalidInput(f"memory_type must be one of {', '.join(MEMORY_TYPES)}, got {memory_type!r}")
    return str(value)


def check_embedder_name(embedder: Any) -> str:
    if not isinstance(embedder, str) or not embedder.strip() or len(embedder) > 128:
        raise InvalidInput(f"embedder must be an embedder name such as 'hashing-v1:384', got {embedder!r}")
    return embedder


def save_threshold(
    engine: sa.Engine,
    threshold: Any,
    *,
    memory_type: Any,
    embedder: str,
    f1: float | None = None,
    precision: float | None = None,
    recall: float | None = None,
    k: int | None = None,
    n_queries: int | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Store the threshold for (memory type, embedder), replacing an earlier one, with how it scored when
    tuned (all None for a number chosen by hand). Returns the row."""
    mtype = check_memory_type(memory_type)
    name = check_embedder_name(embedder)
    if mtype is None:
        raise InvalidInput("save_threshold needs a memory_type (thresholds are per type and embedder)")
    if not is_number(threshold) or not -1.0 <= float(threshold) <= 1.0:
        raise InvalidInput(f"threshold must be a cosine in [-1, 1], got {threshold!r}")
    row = {
        "memory_type": mtype,
        "embedder": name,
        "threshold": float(threshold),
        "f1": f1,
        "precision": precision,
        "recall": recall,
        "k": k,
        "n_queries": n_queries,
        "details": details,
        "updated_at": utcnow(),
    }
    update = [c for c in row if c not in _KEY]
    ins = insert_on_conflict(engine, search_thresholds).values(**row)
    stmt = ins.on_conflict_do_update(index_elements=_KEY, set_={c: ins.excluded[c] for c in update})
    with engine.begin() as conn:
        conn.execute(stmt)
    log.info("saved threshold %.4f for %s / %s", threshold, mtype, name)
    return row


def get_threshold(engine: sa.Engine, memory_type: Any, embedder: str) -> float | None:
    """The saved threshold for (memory type, embedder), or None."""
    mtype = check_memory_type(memory_type)
    name = check_embedder_name(embedder)
    t = search_thresholds
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(t.c.threshold).where(t.c.memory_type == mtype, t.c.embedder == name)
        ).scalar_one_or_none()
    return None if value is None else float(value)


def saved_thresholds(engine: sa.Engine) -> pd.DataFrame:
    """Every saved threshold (all embedders), by memory type."""
    t = search_thresholds
    with engine.connect() as conn:
        return read_frame(
            conn, sa.select(t).order_by(t.c.memory_type, t.c.embedder), dtypes={"updated_at": "datetime64[us, UTC]"}
        )


def resolve_threshold(engine: sa.Engine, threshold: Any, memory_type: Any, *, embedder: str) -> float | None:
    """``threshold`` as a search takes it: a number or None as given (checked by the search), or "tuned": the
    value saved for ``memory_type`` (exactly one type) and ``embedder``."""
    if not isinstance(threshold, str):
        return threshold
    if threshold != TUNED:
        raise InvalidInput(f"threshold must be a number, None or 'tuned', got {threshold!r}")
    mtype = getattr(memory_type, "value", memory_type)
    if not isinstance(mtype, str):
        raise InvalidInput("threshold='tuned' needs one memory_type (thresholds are tuned per type)")
    value = get_threshold(engine, mtype, embedder)
    if value is None:
        raise InvalidInput(
            f"no tuned threshold saved for memory type {mtype!r} and embedder {embedder!r}; "
            "run lab.tune_threshold(labels, memory_type=...) and lab.save_threshold(result) first"
        )
    return value
