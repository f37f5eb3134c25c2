"""The models are the platform's schema.sql, column by column: same tables, names, types, nullability, defaults,
foreign keys and indexes; everything else in the models is an omnilab addition that the platform can ignore."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from omnilab.sample.platform import REDIS_LAYOUT, SCHEMA_SQL
from omnilab.sql.schema import JSON_COLUMNS, OMNILAB_COLUMNS, PLATFORM_INDEXES, TABLES

REPO = Path(__file__).resolve().parents[2]
DDL = SCHEMA_SQL.read_text()


@pytest.fixture(scope="module")
def platform() -> sqlite3.Connection:
    con = sqlite3.connect(":memory:")
    con.executescript(DDL)
    yield con
    con.close()


def _platform_tables(con: sqlite3.Connection) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]


def _default(text: str | None) -> object:
    """A column default as a comparable value: numbers as numbers, quoted strings unquoted, keywords upper."""
    if text is None:
        return None
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        return ("str", text[1:-1].replace("''", "'"))
    try:
        return ("num", float(text))
    except ValueError:
        return ("sql", text.upper())


def _model_default(col: sa.Column) -> object:
    if col.server_default is None:
        return None
    arg = col.server_default.arg
    return _default(arg if isinstance(arg, str) else getattr(arg, "text", str(arg)))


def _base(t: sa.types.TypeEngine) -> sa.types.TypeEngine:
    return t.impl if isinstance(t, sa.types.TypeDecorator) else t


def _type_matches(declared: str, col: sa.Column) -> bool:
    """The platform's declared type against the model column's type (TEXT -- JSON columns are JSON)."""
    t = _base(col.type)
    m = re.fullmatch(r"VARCHAR\((\d+)\)", declared)
    if m:
        return isinstance(t, sa.String) and not isinstance(t, sa.Text) and t.length == int(m.group(1))
    return {
        "TEXT": lambda: isinstance(t, (sa.Text, sa.JSON)) and not (isinstance(t, sa.String) and t.length),
        "INTEGER": lambda: isinstance(t, sa.Integer),
        "REAL": lambda: isinstance(t, sa.Float),
        "BOOLEAN": lambda: isinstance(t, sa.Boolean),
        "TIMESTAMP": lambda: isinstance(t, sa.DateTime),
        "DATE": lambda: isinstance(t, sa.Date) and not isinstance(t, sa.DateTime),
    }[declared]()


def _json_comments() -> dict[str, set[str]]:
    """Columns schema.sql marks ``-- JSON`` / ``-- JSON array``, per table."""
    out: dict[str, set[str]] = {}
    for table, body in re.findall(r"CREATE TABLE (\w+) \((.*?)\n\);", DDL, re.S):
        out[table] = {m.group(1) for m in re.finditer(r"^\s*(\w+) [^\n]*--\s*JSON", body, re.M)}
    return out


def test_the_same_fifteen_tables(platform):
    assert sorted(TABLES) == _platform_tables(platform)
    assert len(TABLES) == 15


def test_every_platform_column_is_in_the_models_with_the_same_definition(platform):
    problems = []
    for table in _platform_tables(platform):
        model = TABLES[table]
        for _cid, name, declared, notnull, default, pk in platform.execute(f"PRAGMA table_info({table})"):
            if name not in model.c:
                problems.append(f"{table}.{name}: missing from the models")
                continue
            col = model.c[name]
            if col.nullable != (not notnull and not pk):
                problems.append(f"{table}.{name}: nullable {col.nullable}, platform NOT NULL={bool(notnull)} pk={pk}")
            if bool(pk) != col.primary_key:
                problems.append(f"{table}.{name}: primary key {col.primary_key}, platform {bool(pk)}")
            if _model_default(col) != _default(default):
                problems.append(f"{table}.{name}: default {_model_default(col)}, platform {_default(default)}")
            if not _type_matches(declared, col):
                problems.append(f"{table}.{name}: type {col.type!r}, platform {declared}")
    assert problems == []


def test_json_columns_are_the_ones_schema_sql_marks_json(platform):
    marked = _json_comments()
    assert set(marked) == set(TABLES)
    for table, columns in marked.items():
        platform_json = {c for c in JSON_COLUMNS[table] if c not in OMNILAB_COLUMNS.get(table, ())}
        assert platform_json == columns, table


def test_autoincrement_keys_match(platform):
    for table, sql in platform.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ):
        model = TABLES[table].dialect_options["sqlite"]["autoincrement"]
        assert model == ("AUTOINCREMENT" in sql), table


def test_foreign_keys_match(platform):
    for table in _platform_tables(platform):
        theirs = {(r[3], r[2], r[4]) for r in platform.execute(f"PRAGMA foreign_key_list({table})")}
        ours = {
            (fk.parent.name, fk.column.table.name, fk.column.name)
            for fk in TABLES[table].foreign_keys
            if fk.parent.name not in OMNILAB_COLUMNS.get(table, ())
        }
        assert ours == theirs, table
        actions = {(r[5], r[6]) for r in platform.execute(f"PRAGMA foreign_key_list({table})")}
        assert actions <= {("NO ACTION", "NO ACTION")}
        assert all(fk.ondelete is None and fk.onupdate is None for fk in TABLES[table].foreign_keys), table


def test_platform_indexes_are_in_the_models(platform):
    theirs = {}
    for table in _platform_tables(platform):
        for _seq, name, unique, origin, _partial in platform.execute(f"PRAGMA index_list({table})"):
            if origin == "c":  # made by CREATE INDEX (not a primary key's autoindex)
                cols = tuple(r[2] for r in platform.execute(f"PRAGMA index_info({name})"))
                theirs[name] = (table, cols, bool(unique))
    assert set(theirs) == PLATFORM_INDEXES
    ours = {
        ix.name: (t.name, tuple(c.name for c in ix.columns), ix.unique) for t in TABLES.values() for ix in t.indexes
    }
    for name, definition in theirs.items():
        assert ours.get(name) == definition, name
    unique_extras = [n for n, (_, _, unique) in ours.items() if unique and n not in theirs]
    assert unique_extras == []  # a unique index omnilab added could reject the platform's rows


def test_every_other_model_column_is_an_omnilab_addition_the_platform_can_ignore(platform):
    for table in _platform_tables(platform):
        theirs = {r[1] for r in platform.execute(f"PRAGMA table_info({table})")}
        extra = [c for c in TABLES[table].columns if c.name not in theirs]
        assert [c.name for c in extra] == list(OMNILAB_COLUMNS.get(table, ())), table
        for col in extra:
            assert col.nullable or col.server_default is not None, f"{table}.{col.name}"
        unique = [c for c in TABLES[table].constraints if isinstance(c, sa.UniqueConstraint)]
        assert unique == [], table
    assert set(OMNILAB_COLUMNS) <= set(TABLES)


def test_the_packaged_contract_is_the_platforms_own():
    """The packaged schema.sql and redis-layout.md are verbatim copies of the platform's (../shared/platform)."""
    shared = REPO.parent / "shared" / "platform"
    if not shared.is_dir():
        pytest.skip(f"{shared} does not exist here (a clean clone has only the packaged copy)")
    assert (shared / "schema.sql").read_text() == DDL
    assert (shared / "redis-layout.md").read_text() == REDIS_LAYOUT.read_text()
