"""Alembic migrations, packaged inside omnilab so they work after ``pip install``."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from omnilab.errors import ConfigError, OmnilabError
from omnilab.sql.own_tables import METADATA as OWN_METADATA
from omnilab.sql.own_tables import include_name, include_object, keyword_ddl
from omnilab.sql.schema import Base
from omnilab.sql.vector_column import add_vector_column

if TYPE_CHECKING:
    from alembic.config import Config

# alembic is imported only when a migration runs: opening a lab that is already at HEAD (every open after the
# first) reads one row and never loads it, which keeps `omnilab search` and notebooks quick to start.

__all__ = [
    "alembic_config",
    "upgrade",
    "downgrade",
    "current",
    "head",
    "check",
    "describe_diff",
    "create_fresh",
    "PLATFORM_MARKERS",
]

#: tables whose presence (without omnilab's ``alembic_version``) marks a database as the platform's own
PLATFORM_MARKERS = ("agents", "tasks", "memory_entries")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: the newest revision in migrations/versions (a test checks it against alembic's own view)
HEAD = "0009"


def alembic_config(
    engine: sa.Engine | None = None, *, connection: sa.Connection | None = None, output: io.StringIO | None = None
) -> Config:
    from alembic.config import Config

    cfg = Config(output_buffer=output) if output is not None else Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _run(engine: sa.Engine, fn: Callable[..., None], *args: str) -> None:
    with engine.connect() as conn:
        try:
            fn(alembic_config(engine, connection=conn), *args)
        except OmnilabError:
            raise
        except Exception as exc:  # alembic raises plain CommandError/SQLAlchemy errors
            raise OmnilabError(f"migration failed: {exc}") from exc


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest).

    An empty database is created from the models and stamped (what replaying every revision would give,
    in one transaction); an omnilab database is migrated; a platform database that omnilab has not adopted
    is refused with a :class:`ConfigError` naming both ways forward (attach read-only, or adopt).
    """
    if revision == "head":
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            if "alembic_version" in names and _stamped(conn) == [HEAD]:
                return  # already current: no need to start alembic
        if "alembic_version" not in names:
            if any(t in names for t in PLATFORM_MARKERS):
                url = engine.url.render_as_string(hide_password=True)
                raise ConfigError(
                    f"{url} is a platform database that omnilab has not adopted; open it with "
                    f"omnilab.open(path, database_url=..., read_only=True) to analyse it without writing, or run "
                    f"`omnilab db adopt {url}` (omnilab.adopt(url)) to add omnilab's tables and columns in place"
                )
            if not names & {t.name for t in _all_tables()}:
                create_fresh(engine)
                return
    from alembic import command

    _run(engine, command.upgrade, revision)


def _stamped(conn: sa.Connection) -> list[str]:
    return [r[0] for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]


def _all_tables() -> list[sa.Table]:
    return [*Base.metadata.sorted_tables, *OWN_METADATA.sorted_tables]


def create_fresh(engine: sa.Engine) -> None:
    """Create every table, index and keyword-search object of the newest schema and stamp it at head."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    try:
        with engine.begin() as conn:
            Base.metadata.create_all(conn)
            OWN_METADATA.create_all(conn)
            for stmt in keyword_ddl(conn.dialect.name):
                conn.exec_driver_sql(stmt)
            add_vector_column(conn)  # revision 0008: pgvector's column where the server has the extension
            MigrationContext.configure(conn).stamp(ScriptDirectory.from_config(alembic_config()), "head")
    except sa.exc.SQLAlchemyError as exc:
        raise OmnilabError(f"creating the lab database failed: {exc}") from exc


#: revisions whose downgrade would lose the data's shape; a downgrade across one is refused before it starts
IRREVERSIBLE = ("0005",)


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Downgrade the database to ``revision`` (``"base"`` drops every omnilab table).

    A downgrade that would cross an irreversible revision (0005, the move to the platform's schema) is
    refused before any step runs, so the database is never left half-way.
    """
    from alembic import command
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    start = current(engine)
    if start is not None:
        try:
            steps = [r.revision for r in script.iterate_revisions(start, revision)]
        except Exception as exc:  # alembic's own errors for unknown or ambiguous revisions
            raise OmnilabError(f"cannot downgrade to {revision!r}: {exc}") from exc
        crossed = [r for r in steps if r in IRREVERSIBLE and r != revision]
        if crossed:
            raise OmnilabError(
                f"{crossed[0]} cannot be downgraded: the platform schema holds the older data in "
                "another shape (string memory ids, per-day agent_stats, metrics JSON); restore a "
                "backup made before the upgrade instead"
            )
    _run(engine, command.downgrade, revision)


def current(engine: sa.Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str:
    """The newest revision shipped with this omnilab."""
    from alembic.script import ScriptDirectory

    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if rev is None:  # only possible in a broken install
        raise OmnilabError("no migrations found in the omnilab package")
    return rev


def check(engine: sa.Engine) -> list[Any]:
    """Differences between the models and the database (empty when they agree), like ``alembic check``."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_object, "include_name": include_name}
        )
        with warnings.catch_warnings():  # filter indexes are expressions, which SQLite reflection skips
            warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
            warnings.filterwarnings("ignore", message="Did not recognize type 'vector'")  # pgvector's column
            # alembic compares a sequence of MetaData (as for target_metadata); its stub names only one
            return list(compare_metadata(ctx, [Base.metadata, OWN_METADATA]))  # type: ignore[arg-type]


def describe_diff(diff: object) -> str:
    """One line for an autogenerate difference, e.g. ``add_table agents`` or ``modify_type tasks.status``."""
    if isinstance(diff, list):  # column modifications come grouped
        return "; ".join(describe_diff(d) for d in diff)
    if isinstance(diff, tuple) and diff:
        kind = diff[0]
        if kind.startswith("modify_") and len(diff) > 3:
            return f"{kind} {diff[2]}.{diff[3]}"
        target = diff[-1] if kind.startswith(("add_column", "remove_column")) else diff[1]
        if kind.startswith(("add_column", "remove_column")):
            return f"{kind} {diff[2]}.{getattr(target, 'name', target)}"
        return f"{kind} {getattr(target, 'name', target)}"
    return str(diff)
