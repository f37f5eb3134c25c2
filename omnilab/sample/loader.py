"""Writing the sample into a lab: every table in one transaction, through the bulk paths.

Loading is idempotent: a lab that already holds the same sample (size, seed, days) is left as it is. The
sample is recognised by the marker the load writes into ``lab_meta`` (key ``sample``) or, for labs loaded
before the marker existed, by its deterministic ids. A lab holding other operations data is refused unless
``replace=True``, which deletes the rows of the sample's tables first, in the loading transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from omnilab._checks import is_int
from omnilab.errors import InvalidInput
from omnilab.sample.catalog import anchor_now
from omnilab.sample.generator import check_options, generate
from omnilab.sql.bulk import bulk_insert
from omnilab.sql.own_tables import lab_meta, memory_vectors
from omnilab.sql.schema import TABLES

__all__ = ["load", "loaded_sample", "LOAD_ORDER", "MARKER", "SampleTarget"]

log = logging.getLogger(__name__)

#: the sample's tables in foreign-key order: the operations tables, then the memory tables
OPERATIONS_TABLES = (
    "agents",
    "projects",
    "workflows",
    "project_files",
    "tasks",
    "task_dependencies",
    "agent_performance",
    "agent_stats",
    "api_usage",
    "error_logs",
    "system_health",
    "project_stats",
)
MEMORY_TABLES = ("memory_entries", "memory_relationships", "memory_access")
LOAD_ORDER = OPERATIONS_TABLES + MEMORY_TABLES

#: the lab_meta key recording which sample a lab holds: {size, seed, days, anchor, rows}
MARKER = "sample"

#: tables whose ids the generator draws from the seed: equal id sets mean the same sample
_ID_TABLES = ("agents", "projects", "workflows", "tasks")


class MemoryWrites(Protocol):
    def record_external_write(self, conn: sa.Connection) -> None: ...

    # also read, when present: ``embedder`` and ``cache`` (see omnilab.sample.shipped.seed_cache)


class SampleTarget(Protocol):
    """What loading needs of a lab: its (writable) engine, its directory for messages, its memory store."""

    @property
    def engine(self) -> sa.Engine: ...

    @property
    def path(self) -> Path: ...

    @property
    def memory(self) -> MemoryWrites: ...


def load(
    lab: SampleTarget,
    size: str = "small",
    *,
    seed: int = 0,
    days: int | None = None,
    anchor: dt.datetime | None = None,
    progress: bool = False,
    replace: bool = False,
    shipped_vectors: bool = True,
) -> dict[str, int]:
    """Generate the sample and write it in one transaction; returns rows added per table.

    When the lab already holds this sample (same size, seed and days; the anchor may differ) nothing is
    written and ``{}`` comes back. Operations data of any other origin raises :class:`InvalidInput`
    (the sample's agent ids would collide); ``replace=True`` deletes every row of the sample's fifteen
    tables (memories and their vector keys included) before loading, in the same transaction.

    When the lab's embedder is all-MiniLM-L6-v2 from the packaged weights, the MiniLM vectors shipped for the
    sample's memories go into its embedding cache (:mod:`omnilab.sample.shipped`), so indexing them runs no
    model; ``shipped_vectors=False`` leaves them out (the model embeds the memories when they are indexed).
    """
    _, n_days = check_options(size, days, anchor)
    if not is_int(seed) or seed < 0:
        raise InvalidInput(f"seed must be a non-negative integer, got {seed!r}")
    wanted = {"size": size, "seed": seed, "days": n_days}
    started = time.perf_counter()
    now = anchor or anchor_now()
    data = None
    if not replace:
        held, data = _held(lab, wanted, now)
        if held:
            if shipped_vectors and size == "small" and seed == 0:
                _seed(lab)
            log.info(
                "the lab at %s already holds the %s sample (seed %d, %d days): nothing loaded",
                lab.path,
                size,
                seed,
                n_days,
            )
            return {}
    if data is None:
        data = generate(size, seed=seed, days=days, anchor=now)
    from tqdm.auto import tqdm  # only here: importing the sample stays light

    with lab.engine.begin() as conn:
        if replace:
            _clear(conn)
        counts = {
            t: bulk_insert(conn, t, data[t]) for t in tqdm(LOAD_ORDER, desc=f"sample ({size})", disable=not progress)
        }
        # memory rows arrive without vectors: the store bumps its write generation and indexes them later
        lab.memory.record_external_write(conn)
        _mark(conn, {**wanted, "anchor": now.isoformat(), "rows": counts})
    if shipped_vectors and size == "small" and seed == 0:
        _seed(lab)  # after the load commits: the cache may live in another database (omnilab's own)
    log.info(
        "loaded the %s sample into %s: %d rows in %.1fs",
        size,
        lab.path,
        sum(counts.values()),
        time.perf_counter() - started,
    )
    return counts


def _seed(lab: SampleTarget) -> None:
    """The shipped MiniLM vectors of the sample into the lab's embedding cache (nothing for other embedders)."""
    from omnilab.sample.shipped import seed_cache

    n = seed_cache(lab.memory)
    if n:
        log.info("put %d shipped MiniLM vectors of the sample into the embedding cache of %s", n, lab.path)


def _held(lab: SampleTarget, wanted: dict[str, Any], now: dt.datetime) -> tuple[bool, dict[str, dict[str, Any]] | None]:
    """(whether the lab holds the wanted sample already, the sample if it was generated to tell).

    Raises InvalidInput when the lab's operations tables hold anything else.
    """
    marker, occupied = _state(lab.engine)
    if not occupied:
        return False, None
    if _same(marker, wanted):
        return True, None
    if marker is None:  # loaded before the marker existed, or other data: the ids tell
        data = generate(wanted["size"], seed=wanted["seed"], days=wanted["days"], anchor=now)
        if _holds(lab.engine, data):
            with lab.engine.begin() as conn:
                _mark(conn, {**wanted, "anchor": None, "rows": None})
            return True, data
    raise InvalidInput(_occupied_message(lab.path, marker, occupied))


def loaded_sample(engine: sa.Engine) -> dict[str, Any] | None:
    """The marker of the sample a lab holds ({size, seed, days, anchor, rows}), or None."""
    with engine.connect() as conn:
        return _marker(conn)


def _marker(conn: sa.Connection) -> dict[str, Any] | None:
    value = conn.execute(sa.select(lab_meta.c.value).where(lab_meta.c.key == MARKER)).scalar_one_or_none()
    return value if isinstance(value, dict) else None


def _state(engine: sa.Engine) -> tuple[dict[str, Any] | None, dict[str, int]]:
    """(the sample marker, rows per non-empty operations table)."""
    with engine.connect() as conn:
        rows = {
            t: conn.execute(sa.select(sa.func.count()).select_from(TABLES[t])).scalar_one() for t in OPERATIONS_TABLES
        }
        return _marker(conn), {t: n for t, n in rows.items() if n}


def _same(marker: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    return marker is not None and all(marker.get(k) == v for k, v in wanted.items())


def _holds(engine: sa.Engine, data: dict[str, dict[str, Any]]) -> bool:
    """The lab's operations ids are exactly the sample's, and every sample memory is there."""
    with engine.connect() as conn:
        for name in _ID_TABLES:
            table = TABLES[name]
            if set(conn.execute(sa.select(table.c.id)).scalars()) != set(data[name]["id"]):
                return False
        return _count_present(conn, data["memory_entries"]["id"]) == len(data["memory_entries"]["id"])


def _count_present(conn: sa.Connection, ids: Sequence[str], chunk: int = 500) -> int:
    mem = TABLES["memory_entries"]
    return sum(
        conn.execute(sa.select(sa.func.count()).select_from(mem).where(mem.c.id.in_(ids[i : i + chunk]))).scalar_one()
        for i in range(0, len(ids), chunk)
    )


def _occupied_message(path: Path, marker: dict[str, Any] | None, occupied: dict[str, int]) -> str:
    if marker is not None:
        held = f"the {marker.get('size')} sample with seed {marker.get('seed')} ({marker.get('days')} days)"
    else:
        held = "other data: " + ", ".join(f"{n:,} {t}" for t, n in occupied.items())
    return (
        f"the lab at {path} already holds {held}; load the sample into an empty lab, or pass replace=True "
        "(`omnilab sample --replace`) to delete the rows of the sample's tables first"
    )


def _clear(conn: sa.Connection) -> None:
    """Delete every row of the sample's tables (children first) and the memories' vector keys."""
    for table in reversed(list(TABLES.values())):
        conn.execute(sa.delete(table))
    # the keys of the deleted memories (their keyword rows go by trigger); the index drops their vectors
    # when it next reconciles with SQL
    conn.execute(sa.delete(memory_vectors))
    log.info("deleted the rows of the sample's tables")


def _mark(conn: sa.Connection, value: dict[str, Any]) -> None:
    conn.execute(sa.delete(lab_meta).where(lab_meta.c.key == MARKER))
    conn.execute(sa.insert(lab_meta).values(key=MARKER, value=value))
