"""Keyword search (BM25) over memory_entries and its fusion with vector search.

SQLite: an FTS5 table ``memory_fts`` (porter + unicode61) in omnilab's own database, rowid = the memory's
vector id (``memory_vectors.id``), whose rows omnilab writes in the same transaction as the key rows, with
camelCase identifiers split into words (unicode61 already splits snake_case); a trigger drops a keyword
row with its key row, and the memory store re-adds missing ones. PostgreSQL: a generated ``tsvector``
column of memory_entries (``english`` configuration, the same identifier splitting done with
``regexp_replace``) with a GIN index, ranked by ``ts_rank``.

Fusion over the union of both candidate lists, ``weight`` on the vector side: ``"blend"`` (default)
= weight * cosine + (1 - weight) * keyword / max keyword; ``"minmax"`` also min-max scales the cosines;
``"rrf"`` is weighted reciprocal rank fusion. All see full information: every candidate gets its exact
cosine and its keyword score (0 when it does not match). The default (blend, 0.85) was chosen on the
training modules of ``omnilab.analysis.evaluation`` with MiniLM.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from omnilab.sql.own_tables import memory_vectors
from omnilab.sql.schema import TABLES
from omnilab.vectors.embedders import split_identifiers

__all__ = [
    "fts_body",
    "fts_write",
    "fts_missing",
    "query_terms",
    "keyword_search",
    "fuse",
    "DEFAULT_FUSION",
    "DEFAULT_WEIGHT",
    "FUSIONS",
    "RRF_K",
]

MEM = TABLES["memory_entries"]
MV = memory_vectors
FTS = sa.table("memory_fts", sa.column("rowid", sa.Integer), sa.column("body", sa.Text))

#: chosen on the training split of the stdlib code-search evaluation (omnilab.analysis.evaluation)
DEFAULT_FUSION = "blend"
DEFAULT_WEIGHT = 0.85
FUSIONS = ("blend", "minmax", "rrf")
RRF_K = 60

_CAMEL_WORD = re.compile(r"\b[A-Za-z0-9_]*[a-z0-9][A-Z][A-Za-z0-9_]*\b|\b[A-Z]{2,}[a-z][A-Za-z0-9_]*\b")

# Common English words carry no signal for code search and make OR-queries match nearly everything.
STOPWORDS = frozenset(
    """a an and are as at be been but by can do does for from has have if in into is it its
of on or that the their then there these this those to was were which will with you your not no""".split()
)


def fts_body(content: str) -> str:
    """What the SQLite keyword index stores: the text plus the words of its camelCase identifiers."""
    extra = [" ".join(split_identifiers(w)) for w in _CAMEL_WORD.findall(content)]
    return content if not extra else content + "\n" + " ".join(extra)


def fts_write(conn: sa.Connection, rows: Sequence[tuple[int, str]], *, fresh: bool = False) -> None:
    """(Re)write keyword rows for (vector id, content) pairs inside the caller's transaction (SQLite only).

    ``fresh``: the key rows were just inserted, so there is nothing to replace.
    """
    if conn.dialect.name != "sqlite" or not rows:
        return
    if not fresh:
        ids = [r[0] for r in rows]
        for i in range(0, len(ids), 500):
            conn.execute(sa.delete(FTS).where(FTS.c.rowid.in_(ids[i : i + 500])))
    conn.exec_driver_sql("INSERT INTO memory_fts (rowid, body) VALUES (?, ?)", [(int(i), fts_body(c)) for i, c in rows])


def fts_missing(conn: sa.Connection) -> list[tuple[int, str]]:
    """(vector id, memory id) of key rows without a keyword row (SQLite); drops keyword rows without a key row."""
    if conn.dialect.name != "sqlite":
        return []
    conn.execute(sa.delete(FTS).where(FTS.c.rowid.not_in(sa.select(MV.c.id))))
    stmt = sa.select(MV.c.id, MV.c.memory_id).where(MV.c.id.not_in(sa.select(FTS.c.rowid))).order_by(MV.c.id)
    return [(int(i), m) for i, m in conn.execute(stmt)]


def query_terms(query: str) -> list[str]:
    """Search words of a query: identifiers split, lower-cased, stopwords dropped, first occurrence order."""
    seen: dict[str, None] = {}
    for w in split_identifiers(query):
        if w not in STOPWORDS and len(w) > 1:
            seen.setdefault(w, None)
    return list(seen)


def keyword_search(
    conn: sa.Connection,
    query: str,
    *,
    limit: int,
    where: sa.ColumnElement | None = None,
    types: Iterable[str] | None = None,
    ids: Sequence[int] | None = None,
    allowed: Container[int] | None = None,
) -> dict[int, float]:
    """vector id -> keyword score (higher is better) of the best ``limit`` matches.

    ``conn``: omnilab's own database. ``where``: a compiled filter on memory_entries, only when that table
    is in the same database; ``allowed``: the vector ids passing the filter otherwise. ``ids``: only score
    these memories (all of them that match).
    """
    terms = query_terms(query)
    if not terms or limit <= 0:
        return {}
    if conn.dialect.name == "postgresql":  # the generated tsvector column of memory_entries
        tsv: sa.ColumnElement[Any] = sa.literal_column("memory_entries.content_tsv")
        tsq = sa.func.to_tsquery(sa.literal_column("'english'::regconfig"), sa.bindparam("q", " | ".join(terms)))
        score: sa.ColumnElement[float] = sa.func.ts_rank(tsv, tsq, 1)
        stmt = (
            sa.select(MV.c.id, score.label("s"))
            .select_from(MEM.join(MV, MV.c.memory_id == MEM.c.id))
            .where(tsv.op("@@")(tsq))
        )
    else:
        match = " OR ".join(f'"{t}"' for t in terms)  # terms are [a-z0-9]+ only, so quoting is safe
        score = -sa.func.bm25(sa.literal_column("memory_fts"))
        source = FTS.join(MV, MV.c.id == FTS.c.rowid)
        if where is not None:
            source = source.join(MEM, MEM.c.id == MV.c.memory_id)
        stmt = (
            sa.select(MV.c.id, score.label("s"))
            .select_from(source)
            .where(sa.literal_column("memory_fts").op("MATCH")(sa.bindparam("q", match)))
        )
    if where is not None:
        stmt = stmt.where(where)
    if types is not None:
        stmt = stmt.where(MV.c.memory_type.in_(list(types)))
    out: dict[int, float] = {}
    if ids is not None:
        ids = list(ids)
        for i in range(0, len(ids), 500):
            for vid, s in conn.execute(stmt.where(MV.c.id.in_(ids[i : i + 500]))):
                if allowed is None or vid in allowed:
                    out[int(vid)] = float(s)
        return out
    stmt = stmt.order_by(sa.desc("s"), MV.c.id)
    if allowed is None:
        return {int(v): float(s) for v, s in conn.execute(stmt.limit(limit))}
    for vid, s in conn.execute(stmt):  # the filter lives in the other database: applied here, best first
        if vid in allowed:
            out[int(vid)] = float(s)
            if len(out) >= limit:
                break
    return out


def fuse(
    vector: Mapping[int, float],
    keyword: Mapping[int, float],
    *,
    method: str = DEFAULT_FUSION,
    weight: float = DEFAULT_WEIGHT,
) -> list[tuple[int, float]]:
    """Fused (memory id, score) best first over the union of ids.

    ``vector`` must hold the cosine of every id in the union; ``keyword`` the keyword score of those that
    match (others count as 0 / unranked). ``weight`` in [0, 1] is the share of the vector side.
    """
    ids = np.fromiter(vector.keys(), dtype=np.int64, count=len(vector))
    if ids.size == 0:
        return []
    v = np.fromiter((vector[i] for i in ids.tolist()), dtype=np.float64, count=ids.size)
    kw = np.fromiter((keyword.get(i, 0.0) for i in ids.tolist()), dtype=np.float64, count=ids.size)
    if method in ("blend", "minmax"):
        kn = kw / kw.max() if kw.max() > 0 else np.zeros_like(kw)
        if method == "blend":  # cosine is already on a fixed scale: stretching it exaggerates tiny gaps
            vn = v
        else:
            vn = (v - v.min()) / (v.max() - v.min()) if v.max() > v.min() else np.ones_like(v)
        fused = weight * vn + (1.0 - weight) * kn
    elif method == "rrf":
        rank_v = np.empty(ids.size)
        rank_v[np.lexsort((ids, -v))] = np.arange(1, ids.size + 1)
        rank_k = np.empty(ids.size)
        rank_k[np.lexsort((ids, -kw))] = np.arange(1, ids.size + 1)
        fused = weight / (RRF_K + rank_v) + np.where(kw > 0, (1.0 - weight) / (RRF_K + rank_k), 0.0)
    else:
        from omnilab.errors import InvalidInput

        raise InvalidInput(f"fusion must be one of {FUSIONS}, got {method!r}")
    order = np.lexsort((ids, -fused))
    return [(int(ids[j]), float(fused[j])) for j in order]
