"""Links between memories (the platform's ``memory_relationships``): directed, unique per type, with a strength.

``engine`` is the database holding the platform's tables; the memory store checks writability first.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from omnilab._checks import is_number
from omnilab.errors import InvalidInput, NotFound
from omnilab.sql.frames import read_frame
from omnilab.sql.schema import TABLES
from omnilab.sql.types import utcnow

__all__ = ["relate", "related"]

MEM = TABLES["memory_entries"]
REL = TABLES["memory_relationships"]


def _existing(conn: sa.Connection, memory_ids: list[str]) -> None:
    found = set(conn.execute(sa.select(MEM.c.id).where(MEM.c.id.in_(memory_ids))).scalars())
    missing = [m for m in memory_ids if m not in found]
    if missing:
        raise NotFound(f"no memory with id {missing[0]!r}")


def relate(
    engine: sa.Engine, source: str, target: str, relationship_type: str = "related", strength: float = 1.0
) -> None:
    """Link two memories (directed, unique per type); an existing link gets the new strength."""
    if not isinstance(relationship_type, str) or not relationship_type.strip() or len(relationship_type) > 50:
        raise InvalidInput("relationship_type must be a non-empty string of at most 50 characters")
    if not is_number(strength, finite=True):
        raise InvalidInput(f"strength must be a finite number, got {strength!r}")
    if source == target:
        raise InvalidInput("a memory cannot be related to itself")
    with engine.begin() as conn:
        _existing(conn, [source, target])
        match = sa.and_(
            REL.c.source_memory_id == source,
            REL.c.target_memory_id == target,
            REL.c.relationship_type == relationship_type,
        )
        if conn.execute(sa.update(REL).where(match).values(strength=float(strength))).rowcount == 0:
            conn.execute(
                sa.insert(REL).values(
                    source_memory_id=source,
                    target_memory_id=target,
                    relationship_type=relationship_type,
                    strength=float(strength),
                    created_at=utcnow(),
                )
            )


def related(engine: sa.Engine, memory_id: str, relationship_type: str | None = None) -> pd.DataFrame:
    """Memories linked to ``memory_id`` either way: direction, relationship_type, strength and the memory."""
    with engine.connect() as conn:
        _existing(conn, [memory_id])
        frames = []
        for direction, mine, other in (
            ("out", REL.c.source_memory_id, REL.c.target_memory_id),
            ("in", REL.c.target_memory_id, REL.c.source_memory_id),
        ):
            stmt = (
                sa.select(
                    sa.literal(direction).label("direction"),
                    REL.c.relationship_type,
                    REL.c.strength,
                    MEM.c.id.label("memory_id"),
                    MEM.c.memory_type,
                    MEM.c.content,
                    MEM.c.agent_id,
                    MEM.c.created_at,
                )
                .join(MEM, MEM.c.id == other)
                .where(mine == memory_id)
            )
            if relationship_type is not None:
                stmt = stmt.where(REL.c.relationship_type == relationship_type)
            frames.append(read_frame(conn, stmt, dtypes={"created_at": "datetime64[us, UTC]"}))
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["strength", "memory_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
