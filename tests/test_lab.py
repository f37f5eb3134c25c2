"""Opening labs: paths, context manager, display."""

import pytest

import omnilab
from omnilab import ConfigError, StoreUnavailable


def test_open_creates_the_directory_and_migrates(tmp_path):
    path = tmp_path / "a" / "b"
    with omnilab.open(path, embedder="hashing") as lab:
        assert path.is_dir() and (path / "omnilab.db").exists()
        assert lab.counts().sum() == 0
        assert lab.backend == "sqlite"
    # reopening keeps the data
    with omnilab.open(path, embedder="hashing") as lab:
        lab.insert("agents", {"name": "x", "agent_type": "coder"})
    with omnilab.open(path, embedder="hashing") as lab:
        assert lab.agents()["name"].tolist() == ["x"]


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    with omnilab.open(tmp_path / "lab", embedder="hashing") as lab, lab.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_a_path_that_is_a_file_is_a_config_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        omnilab.open(f)


def test_unreachable_database_is_store_unavailable(tmp_path):
    with pytest.raises(StoreUnavailable, match="127.0.0.1:1"):
        omnilab.open(tmp_path / "lab", database_url="postgresql://nobody@127.0.0.1:1/none")


def test_repr_html_shows_stores_and_counts(lab):
    lab.insert("agents", {"name": "x", "agent_type": "coder"})
    page = lab._repr_html_()
    assert "relational" in page and "vectors" in page and "sessions" in page
    assert "<td>agents</td><td style='text-align:right'>1</td>" in page
    assert str(lab.path) in page


def test_passwords_never_show(tmp_path, pg_schema_url):
    import sqlalchemy as sa

    url = sa.engine.make_url(pg_schema_url).set(password="s3cret-pw")  # trust auth ignores it
    with omnilab.open(tmp_path / "lab", database_url=url.render_as_string(hide_password=False)) as lab:
        assert "s3cret-pw" not in repr(lab) and "s3cret-pw" not in lab._repr_html_()
