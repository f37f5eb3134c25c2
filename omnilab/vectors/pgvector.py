"""The pgvector backend (``vector_backend="pgvector"``): embeddings in ``memory_vectors.embedding``, searched
by PostgreSQL itself, so there are no index files and every lab on the database sees every write at once.

:class:`PgVectorIndex` stands where the store otherwise keeps its FAISS :class:`~omnilab.vectors.index.VectorIndex`
(same methods, so key rows, reconcile and re-index work unchanged): ``add`` writes the column, ``keys`` reads
which rows have an embedding, ``save``/``load`` have nothing to do. The store writes a memory's embedding in
the transaction that writes the memory (:meth:`PgVectorIndex.write`); :class:`~omnilab.vectors.search.MemorySearch`
ranks with :meth:`PgVectorIndex.search_rows`, one SQL statement with the compiled ``where`` as a true
pre-filter:

* exact (``index="flat"``, the default): ``ORDER BY embedding <=> :q LIMIT k`` — a scan, recall 1.0 at any
  selectivity;
* ``index="hnsw"``: per memory type an HNSW index on ``(embedding::vector(DIM)) vector_cosine_ops`` (partial,
  ``WHERE memory_type = '<type>'``), searched with ``hnsw.iterative_scan = strict_order`` set for the
  transaction; a filtered search that still returns fewer than k rows is rerun exactly, so k is never
  silently short.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from omnilab import enums
from omnilab.errors import ConfigError, InvalidInput
from omnilab.sql.own_tables import memory_vectors
from omnilab.sql.vector_column import EMBEDDING_COLUMN, HNSW_PREFIX, add_vector_column, vector_available
from omnilab.vectors.index import Hit, VectorIndex, key_code
from omnilab.vectors.keys import chunks

__all__ = ["PgVectorIndex", "vector_literal"]

log = logging.getLogger(__name__)

MV = memory_vectors
_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")  # types become literals in index predicates: checked first
_EMBEDDING: sa.ColumnClause[Any] = sa.literal_column(f"memory_vectors.{EMBEDDING_COLUMN}")
_ALL_APPLIED = 2**62  # applied_seq: above any write generation
# HNSW parameters as the FAISS index's (M 32, efSearch 128): pgvector's defaults (16, 64 / 40) lose recall
# on 384-d vectors
_HNSW_M, _EF_CONSTRUCTION, _EF_SEARCH = 32, 128, 128


class _Vector(sa.types.UserDefinedType[str]):
    """pgvector's type in casts: ``vector`` or ``vector(DIM)``."""

    cache_ok = True

    def __init__(self, dim: int | None = None) -> None:
        self.dim = dim

    def get_col_spec(self, **kw: Any) -> str:
        return "vector" if self.dim is None else f"vector({self.dim})"


def _distance(left: sa.ColumnElement[Any], dim: int | None) -> sa.ColumnElement[float]:
    """Cosine distance from ``left`` to the query (bind parameter ``q``, a vector literal)."""
    q = sa.cast(sa.bindparam("q", type_=sa.Text), _Vector(dim))
    return left.op("<=>", return_type=sa.Float)(q)


def vector_literal(vec: np.ndarray) -> str:
    """pgvector's text form of a vector: ``[0.1,0.2,...]`` (float32 values round-trip exactly)."""
    return "[" + ",".join(map(str, np.asarray(vec, dtype=np.float32).tolist())) + "]"


def _parse(text: str) -> np.ndarray:
    return np.array(text[1:-1].split(","), dtype=np.float32)


def _install_hint(conn: sa.Connection) -> str:
    major = conn.execute(sa.text("SHOW server_version_num")).scalar_one()
    return (
        f"install pgvector on the database server (e.g. `apt install postgresql-{int(major) // 10000}-pgvector`, "
        "or see https://github.com/pgvector/pgvector#installation), run `CREATE EXTENSION vector;` in this "
        "database as a superuser, then open the lab again"
    )


class PgVectorIndex(VectorIndex):
    """Embeddings in PostgreSQL's ``memory_vectors.embedding``; the store's index for ``vector_backend="pgvector"``.

    ``directory`` is only remembered (nothing is written there). Opening checks the column (creating it when
    the extension is available and may be created) and raises :class:`ConfigError` saying how to install
    pgvector otherwise; with ``kind="hnsw"`` it creates the HNSW indexes for ``dim``.
    """

    def __init__(
        self, engine: sa.Engine, directory: str | Path, *, dim: int, embedder: str, kind: str = "flat"
    ) -> None:
        if kind not in ("flat", "hnsw"):
            raise ConfigError(f"index kind must be 'flat' or 'hnsw', got {kind!r}")
        if engine.dialect.name != "postgresql":
            raise ConfigError("vector_backend='pgvector' needs a PostgreSQL database_url")
        self.engine = engine
        self.dir = Path(directory)
        self.dim, self.embedder, self.kind = int(dim), embedder, kind
        self.hnsw_m, self.ef_search = _HNSW_M, _EF_SEARCH
        self.types = {}
        self.where = {}
        self.generation = 0
        self.sql_generation = 0
        self.dirty: set[str] = set()  # always empty: every write is in SQL already
        self._files = {}
        self._stat = None
        from filelock import FileLock

        # The store takes this lock around reconciles; nothing may go in the lab directory, so it lives in
        # the temp directory, one per (database, lab directory).
        tag = hashlib.sha256(f"{engine.url.render_as_string()}|{self.dir.resolve()}".encode()).hexdigest()[:16]
        self.lock = FileLock(str(Path(tempfile.gettempdir()) / f"omnilab-pgvector-{tag}.lock"), timeout=120)
        self._hnsw_ready = False
        with engine.begin() as conn:
            if not add_vector_column(conn):
                why = "has no pgvector extension" if not vector_available(conn) else "has not enabled pgvector"
                raise ConfigError(f"vector_backend='pgvector': the database server {why}; {_install_hint(conn)}")
            self._drop_other_dims(conn)
        self._ensure_hnsw()

    # ------------------------------------------------------------------------------- HNSW indexes
    def _index_name(self, memory_type: str) -> str:
        return f"{HNSW_PREFIX}{self.dim}_{memory_type}"

    def _drop_other_dims(self, conn: sa.Connection) -> None:
        """HNSW indexes built for another dimension (before a re-index) would refuse the new vectors."""
        names = conn.execute(
            sa.text(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename = 'memory_vectors' AND starts_with(indexname, :p)"
            ),
            {"p": HNSW_PREFIX},
        ).scalars()
        for name in names:
            if not name.startswith(f"{HNSW_PREFIX}{self.dim}_"):
                conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{name}"')

    def _ensure_hnsw(self) -> None:
        """Create the per-type HNSW indexes once every embedding has this dimension (not mid re-index)."""
        if self.kind != "hnsw" or self._hnsw_ready:
            return
        with self.engine.begin() as conn:
            other = conn.execute(
                sa.text(f"SELECT 1 FROM memory_vectors WHERE vector_dims({EMBEDDING_COLUMN}) <> :d LIMIT 1"),
                {"d": self.dim},
            ).first()
            if other is not None:
                return
            for t in enums.values(enums.MemoryType):
                conn.exec_driver_sql(
                    f'CREATE INDEX IF NOT EXISTS "{self._index_name(t)}" ON memory_vectors USING hnsw '
                    f"(({EMBEDDING_COLUMN}::vector({self.dim})) vector_cosine_ops) "
                    f"WITH (m = {self.hnsw_m}, ef_construction = {_EF_CONSTRUCTION}) WHERE memory_type = '{t}'"
                )
        self._hnsw_ready = True

    # ------------------------------------------------------------------------------------ contents
    def write(self, conn: sa.Connection, ids: Sequence[int], vectors: Sequence[np.ndarray]) -> None:
        """Set the embeddings of key rows ``ids`` in ``conn``'s transaction (the one writing the memories)."""
        if len(ids):
            conn.execute(
                sa.text(f"UPDATE memory_vectors SET {EMBEDDING_COLUMN} = CAST(:v AS vector) WHERE id = :id"),
                [{"id": int(i), "v": vector_literal(v)} for i, v in zip(ids, vectors)],
            )

    def __len__(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(f"SELECT count(*) FROM memory_vectors WHERE {EMBEDDING_COLUMN} IS NOT NULL")
                ).scalar_one()
            )

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    f"SELECT memory_type, count(*) FROM memory_vectors WHERE {EMBEDDING_COLUMN} IS NOT NULL "
                    "GROUP BY memory_type ORDER BY memory_type"
                )
            ).all()
        return {t: int(n) for t, n in rows}

    def keys(self) -> dict[int, tuple[str, int]]:
        """vector id -> (memory type, key code) of every row that has an embedding."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(MV.c.id, MV.c.memory_type, MV.c.embedding_key).where(_EMBEDDING.is_not(None))
            ).all()
        return {int(i): (t, key_code(k)) for i, t, k in rows}

    def add(self, memory_type: str, ids: np.ndarray, vectors: np.ndarray, keys: Iterable[str | None]) -> None:
        """Write (or replace) the embeddings of existing key rows (reconcile, re-index)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(ids), self.dim):
            raise InvalidInput(f"vectors must have shape ({len(ids)}, {self.dim}), got {vectors.shape}")
        for part in chunks(list(range(len(ids))), 1000):
            with self.engine.begin() as conn:
                self.write(conn, [int(ids[j]) for j in part], [vectors[j] for j in part])

    def remove(self, ids: Iterable[int]) -> int:
        """Clear the embeddings of these rows (usually deleted already with their memories)."""
        n = 0
        for part in chunks([int(i) for i in ids]):
            with self.engine.begin() as conn:
                n += conn.execute(
                    sa.text(
                        f"UPDATE memory_vectors SET {EMBEDDING_COLUMN} = NULL "
                        f"WHERE id IN :ids AND {EMBEDDING_COLUMN} IS NOT NULL"
                    ).bindparams(sa.bindparam("ids", expanding=True)),
                    {"ids": part},
                ).rowcount
        return n

    def vectors(self, ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """(found ids (m,), their vectors (m, d)) for the rows that have an embedding."""
        found: list[int] = []
        mats: list[np.ndarray] = []
        for part in chunks([int(i) for i in ids]):
            with self.engine.connect() as conn:
                for i, text in conn.execute(
                    sa.select(MV.c.id, sa.cast(_EMBEDDING, sa.Text)).where(MV.c.id.in_(part), _EMBEDDING.is_not(None))
                ):
                    found.append(int(i))
                    mats.append(_parse(text))
        if not found:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(found, dtype=np.int64), np.vstack(mats)

    # -------------------------------------------------------------------------------------- search
    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        types: Iterable[str] | None = None,
        candidates: Mapping[str, np.ndarray] | None = None,
    ) -> list[Hit]:
        """The k best rows (as the FAISS index's ``search``; ``candidates`` restricts to those ids)."""
        stmt = sa.select(MV.c.id, MV.c.memory_type)
        names = None if types is None else list(types)
        if candidates is not None:
            ids = [int(i) for t, arr in candidates.items() if names is None or t in names for i in arr]
            stmt = stmt.where(MV.c.id.in_(ids))
        rows = self.search_rows(stmt, query, k, types=names, filtered=candidates is not None)
        return [Hit(int(r[0]), float(r[-1]), r[1]) for r in rows]

    def search_rows(
        self, stmt: sa.Select, query: np.ndarray, k: int, *, types: Sequence[str] | None, filtered: bool
    ) -> list[tuple[Any, ...]]:
        """The k rows of ``stmt`` (a select over memory_vectors, filters applied) nearest to ``query``, best
        first, each with its cosine appended as the last column; ties go to the lower id."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise InvalidInput(f"query vector has dimension {q.shape[0]}, the index has {self.dim}")
        literal = vector_literal(q)
        if types is not None:
            bad = [t for t in types if not _TYPE_RE.match(t)]
            if bad:
                raise InvalidInput(f"bad memory type(s) {bad}")
        if self.kind == "hnsw":
            self._ensure_hnsw()
        if self.kind == "hnsw" and self._hnsw_ready:
            rows = self._approximate(stmt, literal, k, types)
            if len(rows) >= k or not filtered:
                return rows
            log.debug("filtered HNSW search returned %d < %d rows: exact search instead", len(rows), k)
        return self._exact(stmt, literal, k, types)

    def _exact(self, stmt: sa.Select, literal: str, k: int, types: Sequence[str] | None) -> list[tuple[Any, ...]]:
        # no cast to vector(DIM): the HNSW indexes (on that expression) cannot be used, the scan is exact
        dist = _distance(_EMBEDDING, None)
        ranked = stmt.add_columns((1.0 - dist).label("score")).where(_EMBEDDING.is_not(None))
        if types is not None:
            ranked = ranked.where(MV.c.memory_type.in_(list(types)))
        ranked = ranked.order_by(dist, MV.c.id).limit(k)
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(ranked, {"q": literal})]

    def _approximate(self, stmt: sa.Select, literal: str, k: int, types: Sequence[str] | None) -> list[tuple[Any, ...]]:
        """One branch per type, each ordered by its partial HNSW index, merged by score."""
        dist = _distance(sa.cast(_EMBEDDING, _Vector(self.dim)), self.dim)  # the HNSW indexes' expression
        names = list(enums.values(enums.MemoryType)) if types is None else list(types)
        branches = [
            stmt.add_columns((1.0 - dist).label("score"))
            .where(MV.c.memory_type == sa.literal_column(f"'{t}'"))  # a literal: the partial index's predicate
            .order_by(dist)
            .limit(k)
            for t in names
        ]
        if not branches:
            return []
        union = sa.union_all(*branches).subquery()
        merged = sa.select(*union.c).order_by(union.c.score.desc(), union.c[0]).limit(k)
        with self.engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL hnsw.iterative_scan = strict_order")
            conn.exec_driver_sql(f"SET LOCAL hnsw.ef_search = {int(self.ef_search)}")
            return [tuple(r) for r in conn.execute(merged, {"q": literal})]

    @property  # VectorIndex's plain attribute; here every change is applied at commit
    def applied_seq(self) -> int:
        """The change log never needs applying: the database is the index (so catching up is one lookup)."""
        return _ALL_APPLIED

    @applied_seq.setter
    def applied_seq(self, value: int) -> None:
        """Ignored (see the getter)."""

    # ------------------------------------------------------------------------- persistence (none)
    def load(self) -> bool:
        return False

    def changed_on_disk(self) -> bool:
        return False

    def disk_generation(self) -> int:
        return 0

    def file_generation(self) -> int:
        return 0

    def save(self, sql_generation: int, *, force: bool = False) -> bool:
        """Nothing to write; builds the HNSW indexes once a re-index has made every vector this dimension."""
        self.sql_generation = int(sql_generation)
        self._ensure_hnsw()
        return True

    def clear(self) -> None:
        """Nothing held in memory."""
