"""Alembic environment. Used by ``omnilab.open``, ``omnilab db …`` and the plain ``alembic`` CLI."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from omnilab.sql.own_tables import METADATA as OWN_METADATA
from omnilab.sql.own_tables import include_name, include_object
from omnilab.sql.schema import Base

config = context.config
target_metadata = [Base.metadata, OWN_METADATA]


def _url() -> str:
    url = None
    if config.file_config.has_section(config.config_ini_section):  # absent under [tool.alembic]
        url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from omnilab.config import Settings  # plain `alembic` CLI: same variables as the library

    return Settings.from_env().resolved_database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        compare_type=True,
        include_object=include_object,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # handed in by omnilab.sql.migrate
        _run(connection)
        return
    from omnilab.sql.engine import create_engine

    engine = create_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection: sa.Connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table instead.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=include_object,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
