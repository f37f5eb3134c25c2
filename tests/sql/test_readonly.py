"""lab.sql: parameterized reads work; anything that would write is refused by the database and changes nothing."""

import pytest

from omnilab import InvalidInput, ReadOnlyViolation


@pytest.fixture
def seeded(lab):
    lab.insert("agents", [{"name": "coder", "agent_type": "coder"}, {"name": "tester", "agent_type": "tester"}])
    return lab


def test_parameterized_select(seeded):
    frame = seeded.sql("SELECT name FROM agents WHERE agent_type = :t ORDER BY name", {"t": "tester"})
    assert list(frame.columns) == ["name"] and frame["name"].tolist() == ["tester"]


def test_sql_looking_parameters_are_only_values(seeded):
    frame = seeded.sql("SELECT name FROM agents WHERE name = :n", {"n": "'; DROP TABLE agents; --"})
    assert frame.empty
    assert len(seeded.agents()) == 2


def test_cte_and_aggregates_are_fine(seeded):
    frame = seeded.sql("WITH x AS (SELECT agent_type FROM agents) SELECT count(*) AS n FROM x")
    assert int(frame["n"][0]) == 2


WRITES = [
    "DELETE FROM agents",
    "UPDATE agents SET name = 'x'",
    "INSERT INTO agents (id, name, agent_type) VALUES ('z', 'z', 'coder')",
    "DROP TABLE agents",
    "CREATE TABLE evil (x int)",
    "ALTER TABLE agents ADD COLUMN evil int",
    "SELECT 1; DELETE FROM agents",
    "SELECT 1; COMMIT; DROP TABLE agents",
]
SQLITE_ONLY = ["PRAGMA foreign_keys=OFF", "PRAGMA journal_mode=DELETE", "ATTACH DATABASE ':memory:' AS other", "VACUUM"]
POSTGRES_ONLY = [
    "CREATE TEMP TABLE t AS SELECT 1",
    "DO $$ BEGIN DELETE FROM agents; END $$",
    "SELECT setval('agent_performance_id_seq', 100)",
]


@pytest.mark.parametrize("statement", WRITES + SQLITE_ONLY + POSTGRES_ONLY)
def test_writes_are_refused_and_change_nothing(seeded, statement):
    if seeded.backend == "sqlite" and statement in POSTGRES_ONLY:
        pytest.skip("PostgreSQL syntax")
    if seeded.backend == "postgresql" and statement in SQLITE_ONLY:
        pytest.skip("SQLite syntax")
    with pytest.raises((ReadOnlyViolation, InvalidInput)):
        seeded.sql(statement)
    assert sorted(seeded.agents()["name"]) == ["coder", "tester"]
    assert seeded.sql("SELECT count(*) AS n FROM agents")["n"][0] == 2


def test_write_statements_raise_read_only_violation_specifically(seeded):
    with pytest.raises(ReadOnlyViolation):
        seeded.sql("DELETE FROM agents")
    with pytest.raises(ReadOnlyViolation):
        seeded.sql("SELECT 1; DELETE FROM agents")


def test_session_settings_cannot_leak_into_later_calls(seeded):
    # On PostgreSQL a SET inside the read-only transaction is allowed but rolled back with it.
    try:
        seeded.sql(
            "SET default_transaction_read_only = off" if seeded.backend == "postgresql" else "PRAGMA query_only = OFF"
        )
    except ReadOnlyViolation:
        pass
    with pytest.raises(ReadOnlyViolation):
        seeded.sql("DELETE FROM agents")
    assert len(seeded.agents()) == 2


def test_the_connection_is_writable_again_afterwards(seeded):
    with pytest.raises(ReadOnlyViolation):
        seeded.sql("DELETE FROM agents")
    assert seeded.insert("agents", {"name": "later", "agent_type": "coder"}) == 1


@pytest.mark.parametrize(
    "query, params, message",
    [
        ("", None, "non-empty"),
        ("SELECT :a", None, "missing"),
        ("SELECT 1", {"b": 1}, "unused"),
        ("SELECT * FROM no_such_table", None, "query failed"),
    ],
)
def test_bad_queries(seeded, query, params, message):
    with pytest.raises(InvalidInput, match=message):
        seeded.sql(query, params)
