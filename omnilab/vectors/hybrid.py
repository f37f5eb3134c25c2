"""Keyword search (BM25) over memory_entries and its fusion with vector search.

SQLite: an FTS5 table ``memory_fts`` (porter + unicode61) whose rows omnilab writes in the same transaction
as the memory rows, with camelCase identifiers split into words (unicode61 already splits snake_case); SQL
triggers drop a row's keyword entry whenever the row is deleted or its content changes, and the memory
store re-adds missing ones. PostgreSQL: a generated ``tsvector`` column (``english`` configuration, the
same identifier splitting done with ``regexp_replace``) with a GIN index, ranked by ``ts_rank``.

Fusion over the union of both candidate lists, ``weight`` on the vector side: ``"blend"`` (default)
= weight * cosine + (1 - weight) * keyword / max keyword; ``"minmax"`` also min-max scales the cosines;
``"rrf"`` is weighted reciprocal rank fusion. All see full information: every candidate gets its exact
cosine and its keyword score (0 when it does not match). The default (blend, 0.85) was chosen on the
training modules of ``omnilab.vectors.evaluation`` with MiniLM.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import sqlalchemy as sa

from omnilab.sql.schema import TABLES
from omnilab.vectors.embedders import split_identifiers

__all__ = ["fts_body", "fts_write", "fts_missing", "query_terms", "keyword_search", "fuse",
           "DEFAULT_FUSION", "DEFAULT_WEIGHT", "FUSIONS", "RRF_K"]

MEM = TABLES["memory_entries"]
FTS = sa.table("memory_fts", sa.column("rowid", sa.Integer), sa.column("body", sa.Text))

#: chosen on the training split of the stdlib code-search evaluation (omnilab.vectors.evaluation)
DEFAULT_FUSION = "blend"
DEFAULT_WEIGHT = 0.85
FUSIONS = ("blend", "minmax", "rrf")
RRF_K = 60

_CAMEL_WORD = re.compile(r"\b[A-Za-z0-9_]*[a-z0-9][A-Z][A-Za-z0-9_]*\b|\b[A-Z]{2,}[a-z][A-Za-z0-9_]*\b")

# Common English words carry no signal for code search and make OR-queries match nearly everything.
STOPWORDS = frozenset("""a an and are as at be been but by can do does for from has have if in into is it its
of on or that the their then there these this those to was were which will with you your not no""".split())


def fts_body(content: str) -> str:
    """What the SQLite keyword index stores: the text plus the words of its camelCase identifiers."""
    extra = [" ".join(split_identifiers(w)) for w in _CAMEL_WORD.findall(content)]
    return content if not extra else content + "\n" + " ".join(extra)


def fts_write(conn: sa.Connection, rows: Sequence[tuple[int, str]], *, fresh: bool = False) -> None:
    """(Re)write keyword rows for (memory id, content) pairs inside the caller's transaction (SQLite only).

    ``fresh``: the memory rows were just inserted, so there is nothing to replace.
    """
    if conn.dialect.name != "sqlite" or not rows:
        return
    if not fresh:
        ids = [r[0] for r in rows]
        for i in range(0, len(ids), 500):
            conn.execute(sa.delete(FTS).where(FTS.c.rowid.in_(ids[i:i + 500])))
    conn.exec_driver_sql("INSERT INTO memory_fts (rowid, body) VALUES (?, ?)",
                         [(int(i), fts_body(c)) for i, c in rows])


def fts_missing(conn: sa.Connection) -> list[int]:
    """Memory ids without a keyword row (SQLite); also drops keyword rows whose memory is gone."""
    if conn.dialect.name != "sqlite":
        return []
    conn.execute(sa.delete(FTS).where(FTS.c.rowid.not_in(sa.select(MEM.c.id))))
    stmt = sa.select(MEM.c.id).where(MEM.c.id.not_in(sa.select(FTS.c.rowid))).order_by(MEM.c.id)
    return list(conn.execute(stmt).scalars())


def query_terms(query: str) -> list[str]:
    """Search words of a query: identifiers split, lower-cased, stopwords dropped, first occurrence order."""
    seen: dict[str, None] = {}
    for w in split_identifiers(query):
        if w not in STOPWORDS and len(w) > 1:
            seen.setdefault(w, None)
    return list(seen)


def keyword_search(conn: sa.Connection, query: str, *, limit: int, where: sa.ColumnElement | None = None,
                   types: Iterable[str] | None = None, ids: Sequence[int] | None = None) -> dict[int, float]:
    """memory id -> keyword score (higher is better) of the best ``limit`` matches.

    ``where``: a compiled filter on memory_entries; ``ids``: only score these memories (all that match).
    """
    terms = query_terms(query)
    if not terms or limit <= 0:
        return {}
    pg = conn.dialect.name == "postgresql"
    if pg:
        tsv = sa.literal_column("memory_entries.content_tsv")
        tsq = sa.func.to_tsquery(sa.literal_column("'english'::regconfig"), sa.bindparam("q", " | ".join(terms)))
        score = sa.func.ts_rank(tsv, tsq, 1)
        stmt = sa.select(MEM.c.id, score.label("s")).where(tsv.op("@@")(tsq))
    else:
        match = " OR ".join(f'"{t}"' for t in terms)  # terms are [a-z0-9]+ only, so quoting is safe
        score = -sa.func.bm25(sa.literal_column("memory_fts"))
        stmt = (sa.select(MEM.c.id, score.label("s")).select_from(FTS.join(MEM, MEM.c.id == FTS.c.rowid))
                .where(sa.literal_column("memory_fts").op("MATCH")(sa.bindparam("q", match))))
    if where is not None:
        stmt = stmt.where(where)
    if types is not None:
        stmt = stmt.where(MEM.c.memory_type.in_(list(types)))
    out: dict[int, float] = {}
    if ids is not None:
        ids = list(ids)
        for i in range(0, len(ids), 500):
            for mid, s in conn.execute(stmt.where(MEM.c.id.in_(ids[i:i + 500]))):
                out[int(mid)] = float(s)
        return out
    for mid, s in conn.execute(stmt.order_by(sa.desc("s"), MEM.c.id).limit(limit)):
        out[int(mid)] = float(s)
    return out


def fuse(vector: Mapping[int, float], keyword: Mapping[int, float], *, method: str = DEFAULT_FUSION,
         weight: float = DEFAULT_WEIGHT) -> list[tuple[int, float]]:
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
