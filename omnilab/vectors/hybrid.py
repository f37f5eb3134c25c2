"""Keyword search (BM25) over memory_entries and its fusion with vector search.

Three fields per memory (:mod:`omnilab.sql.keywords`): ``name`` (the name on a code memory's ``def`` /
``class`` line), ``signature`` (that line) and ``body`` (the text), identifiers split into words (snake_case,
camelCase and run-together words). SQLite: the FTS5 table ``memory_fts(name, signature, body)`` (porter +
unicode61) in omnilab's own database, rowid = the memory's vector id (``memory_vectors.id``), ranked by
``bm25`` with :data:`FIELD_WEIGHTS`. PostgreSQL: the table ``memory_keywords`` (vector id, ``tsvector`` with
``setweight`` A/B/D for the fields), ranked by ``ts_rank`` with the same weights. omnilab writes the rows in
the same transaction as the key rows; a trigger (a foreign key) drops them with the key row, and the memory
store re-adds missing ones (and rebuilds a keyword table of an older shape, see :func:`fts_missing`).

Fusion over the union of both candidate lists, ``weight`` on the vector side: ``"blend"`` (default)
= weight * cosine + (1 - weight) * keyword / max keyword; ``"minmax"`` also min-max scales the cosines;
``"rrf"`` is weighted reciprocal rank fusion. All see full information: every candidate gets its exact
cosine and its keyword score (0 when it does not match). The fusion weight may differ per memory type
(:data:`TYPE_WEIGHTS`, :func:`default_weight`); the defaults were chosen on the training modules of
``omnilab.analysis.evaluation`` with MiniLM (never on its held-out modules).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from omnilab._checks import is_number
from omnilab.errors import InvalidInput
from omnilab.sql import keywords
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
    "TYPE_WEIGHTS",
    "FIELD_WEIGHTS",
    "default_weight",
    "check_field_weights",
    "FUSIONS",
    "RRF_K",
]

MEM = TABLES["memory_entries"]
MV = memory_vectors
FTS = sa.table("memory_fts", sa.column("rowid", sa.Integer), sa.column("body", sa.Text))
KW = sa.table("memory_keywords", sa.column("vector_id", sa.BigInteger), sa.column("tsv"))

#: chosen on the training split of the stdlib code-search evaluation (omnilab.analysis.evaluation)
DEFAULT_FUSION = "blend"
DEFAULT_WEIGHT = 0.85
#: the vector side's share per memory type where it differs from DEFAULT_WEIGHT (chosen on the training split)
TYPE_WEIGHTS: dict[str, float] = {"code": 0.8}
#: keyword field weights (name, signature, body): bm25 column weights on SQLite, ts_rank A/B/D weights on
#: PostgreSQL (relative to the largest); chosen on the training split
FIELD_WEIGHTS = (4.0, 2.0, 1.0)
FUSIONS = ("blend", "minmax", "rrf")
RRF_K = 60

# Common English words carry no signal for code search and make OR-queries match nearly everything.
STOPWORDS = frozenset(
    """a an and are as at be been but by can do does for from has have if in into is it its
of on or that the their then there these this those to was were which will with you your not no""".split()
)


def fts_body(content: str) -> str:
    """The ``body`` field SQLite's keyword index stores: the text plus the words of its split identifiers."""
    return keywords.keyword_fields(content, "sqlite")[2]


def fts_write(conn: sa.Connection, rows: Sequence[tuple[int, str]], *, fresh: bool = False) -> None:
    """(Re)write keyword rows for (vector id, content) pairs inside the caller's transaction.

    ``fresh``: the key rows were just inserted, so there is nothing to replace.
    """
    keywords.write_rows(conn, rows, fresh=fresh)


def fts_missing(conn: sa.Connection) -> list[tuple[int, str]]:
    """(vector id, memory id) of key rows without a keyword row; drops keyword rows without a key row.

    A SQLite keyword table of the shape before revision 0009 (one ``body`` column: the own database of a
    lab attached read-only, which no migration upgrades) is recreated first, so all its rows are missing.
    """
    dialect = conn.dialect.name
    if dialect == "sqlite":
        columns = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(memory_fts)")]
        if columns and list(columns) != list(keywords.FIELDS):
            conn.exec_driver_sql("DROP TABLE memory_fts")
            for ddl in keywords.KEYWORD_DDL["sqlite"]:
                conn.exec_driver_sql(ddl)
        conn.execute(sa.delete(FTS).where(FTS.c.rowid.not_in(sa.select(MV.c.id))))
        have: sa.ColumnElement[Any] = FTS.c.rowid
    elif dialect == "postgresql":  # the foreign key cascade drops rows with their key row
        have = KW.c.vector_id
    else:
        return []
    stmt = sa.select(MV.c.id, MV.c.memory_id).where(MV.c.id.not_in(sa.select(have))).order_by(MV.c.id)
    return [(int(i), m) for i, m in conn.execute(stmt)]


def check_field_weights(weights: Any) -> tuple[float, float, float]:
    """(name, signature, body) weights: three non-negative numbers, not all 0."""
    if weights is None:
        return FIELD_WEIGHTS
    vals = list(weights) if isinstance(weights, (list, tuple)) else []
    if len(vals) != 3 or not all(is_number(w) and np.isfinite(w) and w >= 0 for w in vals) or max(vals) <= 0:
        raise InvalidInput(f"field_weights must be three non-negative numbers (name, signature, body), got {weights!r}")
    return float(vals[0]), float(vals[1]), float(vals[2])


def default_weight(types: Iterable[str] | None) -> float:
    """The fusion weight of a search over ``types``: the type's own when it is one type, else DEFAULT_WEIGHT."""
    names = list(types) if types is not None else []
    return TYPE_WEIGHTS.get(names[0], DEFAULT_WEIGHT) if len(names) == 1 else DEFAULT_WEIGHT


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
    field_weights: Sequence[float] | None = None,
) -> dict[int, float]:
    """vector id -> keyword score (higher is better) of the best ``limit`` matches.

    ``conn``: omnilab's own database. ``where``: a compiled filter on memory_entries, only when that table
    is in the same database; ``allowed``: the vector ids passing the filter otherwise. ``ids``: only score
    these memories (all of them that match). ``field_weights``: (name, signature, body), default
    :data:`FIELD_WEIGHTS`.
    """
    wn, ws, wb = check_field_weights(field_weights)
    terms = query_terms(query)
    if not terms or limit <= 0:
        return {}
    if conn.dialect.name == "postgresql":  # memory_keywords: fields weighted A (name), B (signature), D (body)
        tsv: sa.ColumnElement[Any] = KW.c.tsv
        tsq = sa.func.to_tsquery(sa.literal_column("'english'::regconfig"), sa.bindparam("q", " | ".join(terms)))
        top = max(wn, ws, wb)
        weights = sa.cast(
            sa.bindparam("fw", [wb / top, 0.0, ws / top, wn / top], type_=postgresql.ARRAY(sa.Float)),
            postgresql.ARRAY(sa.REAL),
        )
        score: sa.ColumnElement[float] = sa.func.ts_rank(weights, tsv, tsq, 1)
        source = KW.join(MV, MV.c.id == KW.c.vector_id)
        if where is not None:
            source = source.join(MEM, MEM.c.id == MV.c.memory_id)
        stmt = sa.select(MV.c.id, score.label("s")).select_from(source).where(tsv.op("@@")(tsq))
    else:
        match = " OR ".join(f'"{t}"' for t in terms)  # terms are [a-z0-9]+ only, so quoting is safe
        score = -sa.func.bm25(sa.literal_column("memory_fts"), wn, ws, wb)
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
        raise InvalidInput(f"fusion must be one of {FUSIONS}, got {method!r}")
    order = np.lexsort((ids, -fused))
    return [(int(ids[j]), float(fused[j])) for j in order]
