"""Issue 17, items 4 and 6: ``lab.sql`` without native escapes, server administration or runaway queries, and
the last bad inputs (deep filters and metadata, huge integers, long ``$in`` lists, NUL bytes, a lost
connection) ending in typed errors — on SQLite and PostgreSQL.

The reproductions of the issue are tests here: each failed before the fix (a leaked pointer and a segfault, a
query that ran on, a killed session, ``RecursionError``/``OverflowError``/``DataError``, a traceback).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from rel_checks import snapshot

import omnilab
from omnilab import cli
from omnilab.errors import InvalidInput, ReadOnlyViolation, StoreUnavailable
from omnilab.sample.platform import build_platform_postgres, build_platform_sqlite
from omnilab.sql import readonly
from omnilab.sql.readonly import QueryTimeout
from omnilab.vectors import filters

N = 300  # seeded memories


def _plain(url: str) -> str:
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _seed(lab: omnilab.Lab) -> list[dict[str, Any]]:
    """N memories with typed metadata; returns the rows as a reference for pandas-free filtering."""
    rows = [
        {
            "id": f"m{i:04d}",
            "content": f"memory {i} about topic {i % 7}",
            "memory_type": ("code", "task")[i % 2],
            "priority": 1 + i % 10,
            "session_id": f"s{i % 13}",
            "metadata": {"n": i, "s": f"v{i}", "b": i % 2 == 0, "f": i + 0.5, **({"opt": i} if i % 3 else {})},
        }
        for i in range(N)
    ]
    lab.ingest(rows, progress=False)
    return rows


@pytest.fixture
def seeded(lab):
    return lab, _seed(lab)


# ================================================================================ lab.sql on SQLite
def test_fts3_tokenizer_pointer_is_not_leaked(tmp_path):
    """Reproduction 4: ``SELECT hex(fts3_tokenizer('simple'))`` returned a native pointer."""
    with omnilab.open(tmp_path / "lab", embedder="hashing") as lab:
        for q in (
            "SELECT hex(fts3_tokenizer('simple')) AS p",
            "SELECT FTS3_Tokenizer('simple') AS p",
            "SELECT quote(fts3_tokenizer('porter')) AS p",
        ):
            with pytest.raises(ReadOnlyViolation, match="fts3_tokenizer"):
                lab.sql(q)
        assert lab.sql("SELECT 1 AS one")["one"].tolist() == [1]


SEGFAULT = textwrap.dedent("""
    import sys
    import omnilab
    from omnilab.errors import ReadOnlyViolation

    lab = omnilab.open(sys.argv[1], embedder="hashing")
    refused = 0
    for query, params in (("SELECT fts3_tokenizer('simple', :p) AS p", {"p": b"\\x41" * 8}),
                          ("SELECT fts3_tokenizer('simple', randomblob(8)) AS p", {})):
        try:
            lab.sql(query, params)
        except ReadOnlyViolation:
            refused += 1
    # an FTS3 table on the same pooled connection: with an arbitrary tokenizer pointer this crashed
    with lab.engine.connect() as conn:
        raw = conn.connection.driver_connection
        raw.execute("CREATE VIRTUAL TABLE temp.probe USING fts3(x)")
        raw.execute("INSERT INTO temp.probe VALUES ('hello world')")
        found = raw.execute("SELECT count(*) FROM temp.probe WHERE x MATCH 'hello'").fetchone()[0]
    print(f"refused={refused} found={found}")
""")


def test_fts3_tokenizer_cannot_install_a_pointer_and_crash(tmp_path):
    """Reproduction 4: two arguments installed an arbitrary pointer on the pooled connection and the next
    FTS3 statement crashed the process (exit 139). Run in a child process so a crash cannot take pytest."""
    proc = subprocess.run(
        [sys.executable, "-c", SEGFAULT, str(tmp_path / "lab")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.strip().splitlines()[-1] == "refused=2 found=1"


def _sqlite_functions() -> set[str]:
    import sqlite3

    con = sqlite3.connect(":memory:")
    try:
        return {r[0] for r in con.execute("SELECT name FROM pragma_function_list")}
    finally:
        con.close()


@pytest.mark.parametrize("name", sorted(readonly.SQLITE_DENIED_FUNCTIONS))
def test_sqlite_denied_functions_are_refused(tmp_path, name):
    with omnilab.open(tmp_path / "lab", embedder="hashing") as lab:
        if name not in _sqlite_functions():  # not in this SQLite build: refused by "no such function"
            with pytest.raises(InvalidInput):
                lab.sql(f"SELECT {name}('x') AS v")
            return
        args = {"rtreenode": "2, x'00'"}.get(name, "'x'")  # SQLite checks the arity before authorizing
        with pytest.raises(ReadOnlyViolation, match=name):
            lab.sql(f"SELECT {name.upper()}({args}) AS v")


def test_sqlite_denied_function_inside_a_view_is_refused(tmp_path):
    """The authorizer sees the functions a view calls, not just the statement's text (SQLite itself keeps
    fts3_tokenizer and load_extension out of views; the blob-parsing rtree functions are allowed there)."""
    with omnilab.open(tmp_path / "lab", embedder="hashing") as lab:
        with lab.engine.begin() as conn:
            conn.exec_driver_sql("CREATE VIEW leak AS SELECT rtreenode(2, x'0000') AS p")
        with pytest.raises(ReadOnlyViolation, match="rtreenode"):
            lab.sql("SELECT * FROM leak")


def test_sqlite_ordinary_functions_still_work(tmp_path):
    with omnilab.open(tmp_path / "lab", embedder="hashing") as lab:
        lab.insert("agents", {"id": "coder", "name": "coder", "agent_type": "coder", "capabilities": ["a", "b"]})
        frame = lab.sql(
            "SELECT lower(name) AS l, json_array_length(capabilities) AS n, hex('A') AS h, "
            "count(*) OVER () AS c, (SELECT count(*) FROM json_each(capabilities)) AS e FROM agents"
        )
        assert frame.iloc[0].tolist() == ["coder", 2, "41", 1, 2]


# ============================================================================= lab.sql on PostgreSQL
@pytest.fixture
def victim(pg_url):
    """Another session of the same role: lab.sql must not be able to end it."""
    conn = psycopg.connect(_plain(pg_url), autocommit=True)
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    yield conn, pid
    conn.close()


def _pg_lab(tmp_path, url: str) -> omnilab.Lab:
    lab = omnilab.open(tmp_path / "lab", database_url=url, embedder="hashing")
    lab.insert("agents", {"id": "coder", "name": "coder", "agent_type": "coder"})
    return lab


#: spellings of a call that the server reads as a call of ``{f}`` (each must be refused)
CALL_SPELLINGS = [
    "SELECT {f}(:pid) AS v",
    "SELECT PG_CATALOG.{F}(:pid) AS v",
    'SELECT "{f}"(:pid) AS v',
    'SELECT pg_catalog."{f}" /* comment */ (:pid) AS v',
    "SELECT {f} -- comment\n (:pid) AS v",
    "SELECT {f}/**/(:pid) AS v",
    "/* /* nested */ */ SELECT {f}(:pid) AS v",
    "SELECT 1 AS v LIMIT {f}(:pid)::int",
    "VALUES ({f}(:pid))",
    "WITH x AS (SELECT {f}(:pid) AS v) SELECT v FROM x",
    "SELECT (SELECT {f}(:pid)) AS v",
    "EXPLAIN ANALYZE SELECT {f}(:pid)",
    "SELECT * FROM agents WHERE {f}(:pid)",
    "SELECT E'\\'' AS a, {f}(:pid) AS v",
    "SELECT $$x$$ AS a, {f}(:pid) AS v",
    "SELECT x$$ FROM (SELECT 1 AS x$$, {f}(:pid) AS v) t",
]


def _unicode_spelling(f: str) -> list[str]:
    esc = "".join(f"\\{ord(c):04x}" for c in f)
    bang = "".join(f"!{ord(c):04x}" for c in f)
    return [f'SELECT U&"{esc}"(:pid) AS v', f"SELECT U&\"{bang}\" UESCAPE '!' (:pid) AS v"]


@pytest.mark.postgres
def test_pg_terminate_backend_cannot_end_other_sessions(tmp_path, pg_schema_url, victim):
    """Reproduction 5: lab.sql ran pg_terminate_backend (killing other sessions); every spelling is refused."""
    conn, pid = victim
    with _pg_lab(tmp_path, pg_schema_url) as lab:
        for fn in ("pg_terminate_backend", "pg_cancel_backend"):
            for template in CALL_SPELLINGS + _unicode_spelling(fn):
                query = template.replace("{f}", fn).replace("{F}", fn.upper())
                with pytest.raises(ReadOnlyViolation, match=fn):
                    lab.sql(query, {"pid": pid})
        assert conn.execute("SELECT 42").fetchone()[0] == 42  # the other session is alive
        assert lab.sql("SELECT count(*) AS n FROM agents")["n"].tolist() == [1]


@pytest.mark.postgres
def test_pg_stat_reset_is_refused(tmp_path, pg_schema_url, pg_url):
    """Reproduction 5: lab.sql ran pg_stat_reset()."""
    with _pg_lab(tmp_path, pg_schema_url) as lab:
        before = lab.sql("SELECT stats_reset::text AS t FROM pg_stat_database WHERE datname = current_database()")
        for query in (
            "SELECT pg_stat_reset()",
            "SELECT pg_catalog.PG_STAT_RESET()",
            'SELECT "pg_stat_reset"()',
            "SELECT pg_stat_reset_shared('bgwriter')",
            "SELECT pg_stat_reset_single_table_counters(0)",
        ):
            with pytest.raises(ReadOnlyViolation):
                lab.sql(query)
        after = lab.sql("SELECT stats_reset::text AS t FROM pg_stat_database WHERE datname = current_database()")
        assert after["t"].tolist() == before["t"].tolist()


@pytest.mark.postgres
def test_pg_non_transactional_effects_are_refused(tmp_path, pg_schema_url, pg_url):
    """Functions whose effect survives the rollback: replication slots, advisory locks, settings, files."""
    slot = f"omnilab_probe_{uuid.uuid4().hex[:8]}"
    queries = [
        f"SELECT pg_create_physical_replication_slot('{slot}')",
        "SELECT pg_advisory_lock(4242)",
        "SELECT pg_try_advisory_lock(4242)",
        "SELECT set_config('statement_timeout', '0', false)",
        "SELECT pg_read_file('PG_VERSION')",
        "SELECT pg_ls_dir('.')",
        "SELECT lo_import('/etc/hostname')",
        "SELECT pg_reload_conf()",
        "SELECT pg_notify('c', 'x')",
        "SELECT query_to_xml('SELECT pg_terminate_backend(1)', true, false, '')",
        "SELECT pg_logical_emit_message(false, 'p', 'x')",
        "SELECT * FROM pg_hba_file_rules",
    ]
    with _pg_lab(tmp_path, pg_schema_url) as lab:
        for q in queries:
            with pytest.raises(ReadOnlyViolation):
                lab.sql(q)
    with psycopg.connect(_plain(pg_url), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", [slot]).fetchone()[0] == 0
        assert conn.execute("SELECT pg_try_advisory_lock(4242)").fetchone()[0] is True
        conn.execute("SELECT pg_advisory_unlock_all()")


@pytest.mark.postgres
def test_every_denied_postgresql_function_of_this_server_is_refused(tmp_path, pg_schema_url):
    """All functions of the server matched by the deny-list, as the catalogue names them, are refused."""
    with _pg_lab(tmp_path, pg_schema_url) as lab:
        names = lab.sql(
            "SELECT DISTINCT p.proname AS name, n.nspname AS schema FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace"
        )
        denied = [(r.schema, r.name) for r in names.itertuples() if readonly._pg_is_denied(r.name)]  # noqa: SLF001
        assert {
            "pg_terminate_backend",
            "pg_stat_reset",
            "set_config",
            "pg_read_file",
            "pg_advisory_lock",
            "lo_import",
            "pg_create_physical_replication_slot",
        } <= {n for _, n in denied}
        for schema, name in denied:
            with pytest.raises(ReadOnlyViolation, match=name):
                lab.sql(f'SELECT "{schema}"."{name}"()')


# Differential check of the PostgreSQL lexer against the server's own scanner: a function that does not
# exist is "called" exactly when the server says it does not exist; the lexer must then refuse the statement
# (no false negatives), and must not refuse the spellings that only mention the name in a literal or comment.
CANARY = "zz_canary_fn"
HIDDEN = [  # the server does not see an identifier here
    "SELECT 'zz_canary_fn(1)' AS v",
    "SELECT 'a'' zz_canary_fn(1) --' AS v",
    "SELECT E'\\' zz_canary_fn(1) --' AS v",
    "SELECT $$zz_canary_fn(1)$$ AS v",
    "SELECT $a$ $$ zz_canary_fn(1) $$ $a$ AS v",
    "SELECT /* /* */ zz_canary_fn(1) */ 1 AS v",
    "SELECT 1 AS v -- zz_canary_fn(1)",
    "SELECT n'x'' zz_canary_fn(1) --' AS v",
    "SELECT U&'zz_canary_fn(1)' AS v",
    'SELECT 1 AS "zz_canary_fnX"',
]
CALLED = [  # the server resolves a call of the canary
    "SELECT zz_canary_fn(1)",
    "SELECT ZZ_CANARY_FN(1)",
    "SELECT pg_catalog.zz_canary_fn(1)",
    'SELECT "zz_canary_fn"(1)',
    "SELECT zz_canary_fn /* x */ (1)",
    "SELECT zz_canary_fn --x\n(1)",
    "SELECT E'\\'' AS a, zz_canary_fn(1)",
    "SELECT 'a''' AS a, zz_canary_fn(1)",
    "SELECT /* /* */ */ zz_canary_fn(1)",
    "SELECT $a$ $b$ $a$ AS a, zz_canary_fn(1)",
    "SELECT $$ $a$ $$ AS a, zz_canary_fn(1)",
    'SELECT U&"\\007a\\007a_canary_fn"(1)',
    "SELECT U&\"!007a!007a_canary_fn\" UESCAPE '!' (1)",
    "SELECT U&\"!007a!007a_canary_fn\" /* c */ UESCAPE /* c */ '!' (1)",
    "SELECT 1 LIMIT zz_canary_fn(1)",
    "VALUES (zz_canary_fn(1))",
    "SELECT x$$, zz_canary_fn(1) FROM (SELECT 1 AS x$$) t",
    "SELECT b'01' AS a, zz_canary_fn(1)",
    'SELECT "a""b" FROM (SELECT 1 AS "a""b") t WHERE zz_canary_fn(1)',
]


@pytest.mark.postgres
def test_pg_lexer_agrees_with_the_server(pg_url, monkeypatch):
    monkeypatch.setattr(readonly, "PG_DENIED_FUNCTIONS", readonly.PG_DENIED_FUNCTIONS | {CANARY})
    disagreements = []
    with psycopg.connect(_plain(pg_url)) as conn:
        for sql_text in HIDDEN + CALLED:
            with psycopg.RawCursor(conn) as cur:
                cur.execute("SET LOCAL standard_conforming_strings = on")
                try:
                    cur.execute(sql_text)
                    server_calls = False
                except psycopg.errors.UndefinedFunction as exc:
                    server_calls = CANARY in str(exc)
            conn.rollback()
            lexer_refuses = CANARY in readonly.pg_denied_names(sql_text)
            expected = sql_text in CALLED
            if server_calls != expected or lexer_refuses != expected:
                disagreements.append((sql_text, server_calls, lexer_refuses))
    assert disagreements == []


def test_pg_lexer_refuses_what_it_cannot_read():
    for sql_text in ("SELECT 'unterminated", 'SELECT "open', "SELECT $a$ open", "SELECT /* open", 'SELECT U&"\\zzzz"'):
        assert readonly.pg_denied_names(sql_text) == ["<unreadable statement>"]


# ================================================================================ timeouts (both)
def test_sql_timeout_default_is_30_seconds():
    import inspect

    assert inspect.signature(omnilab.Lab.sql).parameters["timeout"].default == 30.0
    assert inspect.signature(readonly.run_read_only).parameters["timeout"].default == readonly.DEFAULT_TIMEOUT == 30.0


RUNAWAY = {  # each would run for minutes (or forever)
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) AS v FROM c",
    "postgresql": "SELECT pg_sleep(30) AS v",
}


def _assert_times_out(lab: omnilab.Lab, query: str) -> None:
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="0.5 s"):
        lab.sql(query, timeout=0.5)
    assert time.monotonic() - started < 10
    assert lab.sql("SELECT 1 AS one", timeout=5)["one"].tolist() == [1]  # the pooled connection still works


def test_sql_timeout_stops_a_runaway_query(lab):
    """Reproduction 5: a recursive CTE (SQLite) and pg_sleep(30) (PostgreSQL) ran on."""
    _assert_times_out(lab, RUNAWAY[lab.backend])
    if lab.backend == "postgresql":  # the recursive CTE too
        _assert_times_out(
            lab, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) AS v FROM c"
        )
    assert isinstance(QueryTimeout("x"), InvalidInput)
    assert lab.insert("agents", {"id": "after", "name": "after", "agent_type": "coder"}) == 1


def test_sql_timeout_none_and_bad_values(lab):
    assert lab.sql("SELECT 2 AS two", timeout=None)["two"].tolist() == [2]
    for bad in (0, -1, float("nan"), float("inf"), "5", True, 10**9):
        with pytest.raises(InvalidInput, match="timeout"):
            lab.sql("SELECT 1", timeout=bad)


def test_sql_parameters_still_bind_on_both(lab):
    """The statement reaches the server as written: placeholders bound, percent signs left alone."""
    lab.insert(
        "agents", [{"id": "a%", "name": "x'y", "agent_type": "coder"}, {"id": "b", "name": "z", "agent_type": "coder"}]
    )
    assert lab.sql("SELECT id FROM agents WHERE name = :n ORDER BY id", {"n": "x'y"})["id"].tolist() == ["a%"]
    frame = lab.sql("SELECT id, '%' AS one, '%%' AS two FROM agents WHERE name = :n AND :n = name", {"n": "z"})
    assert frame.values.tolist() == [["b", "%", "%%"]]


# ============================================================================ attached read-only labs
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def attached(request, tmp_path):
    if request.param == "sqlite":
        path = tmp_path / "omnidev.db"
        build_platform_sqlite(path, now=NOW)
        with omnilab.open(
            tmp_path / "lab", database_url=f"sqlite:///{path}", read_only=True, embedder="hashing"
        ) as lab:
            yield lab
        return
    pg_url = request.getfixturevalue("pg_url")
    schema = f"p_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_plain(pg_url), autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        with psycopg.connect(_plain(pg_url), options=f"-csearch_path={schema}") as conn:
            build_platform_postgres(conn, now=NOW)
        url = sa.engine.make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
        with omnilab.open(
            tmp_path / "lab", database_url=url.render_as_string(hide_password=False), read_only=True, embedder="hashing"
        ) as lab:
            yield lab
    finally:
        with psycopg.connect(_plain(pg_url), autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_attached_read_only_lab_has_the_same_guards(attached):
    lab = attached
    n = lab.sql("SELECT count(*) AS n FROM agents")["n"].tolist()[0]
    assert n > 0
    _assert_times_out(lab, RUNAWAY[lab.backend])
    denied = "SELECT hex(fts3_tokenizer('simple'))" if lab.backend == "sqlite" else "SELECT pg_terminate_backend(1)"
    with pytest.raises(ReadOnlyViolation):
        lab.sql(denied)
    with pytest.raises(ReadOnlyViolation):
        lab.sql("DELETE FROM agents")
    assert lab.sql("SELECT count(*) AS n FROM agents")["n"].tolist() == [n]
    assert len(lab.agents()) == n  # omnilab's own reads on the same pool are unaffected


# ======================================================================= connection loss (PostgreSQL)
@pytest.mark.postgres
def test_connection_killed_mid_sql_is_store_unavailable(tmp_path, pg_schema_url, pg_url):
    """Reproduction 7: a PostgreSQL connection killed mid-``lab.sql`` surfaced as ``InvalidInput``."""
    marker = f"omnilab_kill_{uuid.uuid4().hex[:8]}"
    with _pg_lab(tmp_path, pg_schema_url) as lab:
        outcome: list[BaseException] = []

        def run() -> None:
            try:
                lab.sql(f"SELECT pg_sleep(20) AS {marker}", timeout=25)
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                outcome.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        killed = 0
        with psycopg.connect(_plain(pg_url), autocommit=True) as admin:
            for _ in range(100):
                killed = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE query LIKE %s AND pid <> pg_backend_pid()",
                    [f"%AS {marker}%"],
                ).fetchone()[0]
                if killed:
                    break
                time.sleep(0.05)
        worker.join(30)
        assert killed == 1 and not worker.is_alive()
        assert len(outcome) == 1 and type(outcome[0]) is StoreUnavailable, outcome
        assert lab.sql("SELECT count(*) AS n FROM agents")["n"].tolist() == [1]  # a fresh connection serves


# ======================================================================== bad inputs (item 6, both)
def _deep_and(depth: int, leaf: dict) -> dict:
    where = leaf
    for i in range(depth):
        where = {"$and": [where, {"priority": {"$gte": 1}}]} if i % 2 else {"$or": [where, {"id": "nobody"}]}
    return where


def _ids(frame) -> list[str]:
    col = "memory_id" if "memory_id" in frame else "id"
    return sorted(frame[col])


def test_deep_filter_is_invalid_input(seeded):
    """Reproduction 7: ``$and`` nested 2,000 deep raised RecursionError."""
    lab, _ = seeded
    deep = {"priority": 1}
    for _ in range(2000):
        deep = {"$and": [deep]}
    for call in (
        lambda: lab.memories(where=deep),
        lambda: lab.search("memory", where=deep),
        lambda: lab.hybrid_search("memory", where=deep),
    ):
        with pytest.raises(InvalidInput, match="deeper"):
            call()
    with pytest.raises(InvalidInput, match="deeper"):
        lab.memories(where=_deep_and(filters.MAX_WHERE_DEPTH + 1, {"priority": 1}))


def test_filter_at_the_depth_limit_is_exact(seeded):
    lab, rows = seeded
    where = _deep_and(filters.MAX_WHERE_DEPTH, {"metadata.n": {"$lt": 40}})
    want = sorted(r["id"] for r in rows if r["metadata"]["n"] < 40)
    assert _ids(lab.memories(where=where)) == want
    assert _ids(lab.search("memory topic", k=N, where=where)) == want


def test_long_or_list_is_exact(seeded):
    """A flat $or of 1,000 conditions: SQLite parses ``a OR b OR …`` as a chain 1,000 deep and refused it."""
    lab, rows = seeded
    wanted = set(range(0, N, 3))
    terms = [{"metadata.n": i} for i in sorted(wanted)] + [
        {"metadata.s": f"none{i}"} for i in range(filters.MAX_WHERE_TERMS - len(wanted))
    ]
    where = {"$or": terms}
    assert _ids(lab.memories(where=where)) == sorted(r["id"] for r in rows if r["metadata"]["n"] in wanted)
    with pytest.raises(InvalidInput, match="conditions"):
        lab.memories(where={"$or": terms + [{"priority": 1}]})


def test_deep_metadata_is_invalid_input_and_writes_nothing(seeded):
    """Reproduction 7: metadata nested 1,000 deep raised RecursionError (remember, ingest and insert)."""
    from omnilab.sql.validate import MAX_JSON_DEPTH

    lab, _ = seeded

    def nested(depth: int) -> dict:
        value: dict = {}
        for _ in range(depth - 1):
            value = {"a": value}
        return value

    before = snapshot(lab)
    deep = nested(1000)
    for call in (
        lambda: lab.remember("deep", "code", metadata=deep),
        lambda: lab.ingest(
            [{"content": "ok", "memory_type": "code"}, {"content": "deep", "memory_type": "code", "metadata": deep}],
            progress=False,
        ),
        lambda: lab.insert("memory_entries", {"content": "deep", "memory_type": "code", "metadata": deep}),
        lambda: lab.insert("agents", {"id": "x", "name": "x", "agent_type": "coder", "config": deep}),
        lambda: lab.ingest(
            [{"content": "deep", "memory_type": "code", "metadata": '{"a": ' * 999 + "{}" + "}" * 999}], progress=False
        ),
    ):
        with pytest.raises(InvalidInput, match="deeper"):
            call()
    assert snapshot(lab) == before
    ok = lab.remember("at the limit", "code", metadata=nested(MAX_JSON_DEPTH))
    assert lab.memories(id=ok)["metadata"].iloc[0] == nested(MAX_JSON_DEPTH)


def test_deep_jsonl_line_is_invalid_input(seeded, tmp_path):
    lab, _ = seeded
    line = '{"content": "x", "memory_type": "code", "metadata": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}\n"
    path = tmp_path / "deep.jsonl"
    path.write_text(line)
    with pytest.raises(InvalidInput):
        lab.ingest(path, progress=False)


@pytest.mark.parametrize(
    "where",
    [
        {"metadata.n": 2**64},
        {"metadata.n": {"$gt": -(2**63) - 1}},
        {"priority": 2**64},
        {"priority": {"$in": [1, 2**70]}},
        {"access_count": {"$lt": -(2**80)}},
        {"metadata.n": {"$nin": [2**63]}},
        {"metadata.n": float("inf")},
        {"metadata.f": {"$lt": float("-inf")}},
    ],
    ids=["meta-eq", "meta-gt", "col-eq", "col-in", "col-lt", "meta-nin", "meta-inf", "meta-neg-inf"],
)
def test_integers_beyond_64_bits_are_invalid_input(seeded, where):
    """Reproduction 7: OverflowError (SQLite) / DataError (PostgreSQL)."""
    lab, _ = seeded
    with pytest.raises(InvalidInput):
        lab.memories(where=where)
    with pytest.raises(InvalidInput):
        lab.search("memory", where=where)


def test_integer_boundaries_and_fractions(seeded):
    """JSON numbers take 64-bit integers; an INTEGER column (32-bit on PostgreSQL) its own range on both
    databases; a fraction compares exactly with an integer column (PostgreSQL would cast 5.5 to 6)."""
    lab, rows = seeded
    every = sorted(r["id"] for r in rows)
    assert _ids(lab.memories(where={"metadata.n": {"$lt": 2**63 - 1}})) == every
    assert _ids(lab.memories(where={"metadata.n": {"$gt": -(2**63)}})) == every
    assert _ids(lab.memories(where={"priority": {"$gt": -(2**31)}})) == every
    for bad in ({"priority": {"$gt": -(2**31) - 1}}, {"access_count": 2**31}):
        with pytest.raises(InvalidInput, match="range"):
            lab.memories(where=bad)
    prio = {r["id"]: r["priority"] for r in rows}
    for op, fn in (
        ("$gt", lambda p: p > 5.5),
        ("$gte", lambda p: p >= 5.5),
        ("$lt", lambda p: p < 5.5),
        ("$lte", lambda p: p <= 5.5),
        ("$eq", lambda p: p == 5.5),
        ("$ne", lambda p: p != 5.5),
    ):
        assert _ids(lab.memories(where={"priority": {op: 5.5}})) == sorted(i for i, p in prio.items() if fn(p)), op
    assert _ids(lab.memories(where={"priority": {"$in": [2.5, 3.0]}})) == sorted(i for i, p in prio.items() if p == 3)


def _kind(v: Any) -> str:
    return "bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float)) else "string"


def _typed(values: list) -> dict[str, set]:
    """``$in`` on JSON matches a value of the same JSON type (bool, number, string) that is equal
    (1 == 1.0; True is not 1): one set per type, so the reference is fast for 100,000 values."""
    out: dict[str, set] = {"bool": set(), "number": set(), "string": set()}
    for v in values:
        out[_kind(v)].add(v)
    return out


def _typed_in(value: Any, typed: dict[str, set]) -> bool:
    return value in typed[_kind(value)]


@pytest.mark.parametrize("size", [10, 1_000, 20_000, filters.MAX_IN_VALUES])
def test_long_in_lists_are_an_exact_prefilter(seeded, size):
    """Reproduction 7: ``$in`` with 1,000 values (SQLite: expression tree too large) and 20,000 (PostgreSQL:
    too many parameters). Results are compared with Python's reading of the same filter."""
    lab, rows = seeded
    numbers = list(range(N - 40, N - 40 + size - 4)) + [4.0, "3", True, 1e300]  # typed: 4.0 = 4, "3" != 3
    strings = [f"v{i}" for i in range(0, 2 * size, 2)]
    typed, string_set = _typed(numbers), set(strings)
    cases = [
        ({"metadata.n": {"$in": numbers}}, lambda r: _typed_in(r["metadata"]["n"], typed)),
        ({"metadata.n": {"$nin": numbers}}, lambda r: not _typed_in(r["metadata"]["n"], typed)),
        (
            {"metadata.opt": {"$nin": numbers}},
            lambda r: "opt" not in r["metadata"] or not _typed_in(r["metadata"]["opt"], typed),
        ),
        ({"metadata.s": {"$in": strings}}, lambda r: r["metadata"]["s"] in string_set),
        ({"metadata.b": {"$in": [True] + strings[: size // 2]}}, lambda r: r["metadata"]["b"] is True),
        (
            {"id": {"$in": [f"m{i:04d}" for i in range(0, 3 * size, 3)]}},
            lambda r: int(r["id"][1:]) % 3 == 0 and int(r["id"][1:]) < 3 * size,
        ),
        (
            {"id": {"$nin": [f"m{i:04d}" for i in range(0, 3 * size, 3)]}},
            lambda r: not (int(r["id"][1:]) % 3 == 0 and int(r["id"][1:]) < 3 * size),
        ),
        ({"priority": {"$in": list(range(3, 3 + size))}}, lambda r: r["priority"] >= 3),
        ({"priority": {"$in": [2.0, 2.5] + list(range(100, 98 + size))}}, lambda r: r["priority"] == 2),
        (
            {"session_id": {"$nin": [f"s{i}" for i in range(1, size + 1)]}},
            lambda r: not 1 <= int(r["session_id"][1:]) <= size,
        ),
    ]
    for where, keep in cases:
        want = sorted(r["id"] for r in rows if keep(r))
        assert _ids(lab.memories(where=where)) == want, where.keys()
    where, keep = cases[0]
    assert _ids(lab.search("memory topic", k=N, where=where)) == sorted(r["id"] for r in rows if keep(r))


def test_too_long_in_list_is_invalid_input(seeded):
    lab, _ = seeded
    for where in (
        {"metadata.n": {"$in": list(range(filters.MAX_IN_VALUES + 1))}},
        {"id": {"$nin": iter([str(i) for i in range(filters.MAX_IN_VALUES + 1)])}},
    ):
        with pytest.raises(InvalidInput, match="at most"):
            lab.memories(where=where)


@pytest.mark.parametrize(
    "where",
    [
        {"session_id": "a\x00b"},
        {"metadata.s": "v1\x00"},
        {"metadata.s": {"$in": ["v1", "v\x002"]}},
        {"tags": {"$contains": "a\x00"}},
        {"id": {"$nin": ["m0001\x00"]}},
        {"metadata.s": "bad \udc80"},
    ],
    ids=["col-eq", "meta-eq", "meta-in", "tags", "col-nin", "surrogate"],
)
def test_nul_bytes_in_filter_values_are_invalid_input(seeded, where):
    """Reproduction 7: a NUL byte in a PostgreSQL filter value raised DataError."""
    lab, _ = seeded
    with pytest.raises(InvalidInput):
        lab.memories(where=where)


def test_nul_bytes_in_json_are_invalid_input_and_write_nothing(seeded):
    lab, _ = seeded
    before = snapshot(lab)
    for call in (
        lambda: lab.remember("nul", "code", metadata={"k": "a\x00b"}),
        lambda: lab.remember("nul", "code", metadata={"k\x00": 1}),
        lambda: lab.remember("nul", "code", tags=["a\x00"]),
        lambda: lab.ingest(
            [
                {"content": "fine", "memory_type": "code"},
                {"content": "nul", "memory_type": "code", "metadata": {"k": ["\x00"]}},
            ],
            progress=False,
        ),
    ):
        with pytest.raises(InvalidInput, match="NUL"):
            call()
    assert snapshot(lab) == before


def test_cli_search_with_a_deep_where_prints_one_line(lab, tmp_path, database_url):
    """Reproduction 7: ``omnilab search --where`` nested 1,500 deep printed a traceback and exited 1."""
    lab.remember("a memory", "code")
    lab.close()
    for depth in (1500, 500):  # beyond what json.loads can parse, and parsed but over the limit
        where = '{"$and": [' * depth + '{"priority": 1}' + "]}" * depth
        argv = ["search", "memory", "--lab", str(tmp_path / "lab"), "--where", where]
        if database_url:
            argv += ["--database-url", database_url]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
        assert code == 2
        assert err.getvalue().startswith("omnilab: error:") and err.getvalue().count("\n") == 1, err.getvalue()


def test_check_where_is_iterative():
    """check_where walks any depth without recursion (it runs before json.dumps of the cache key)."""
    deep: Any = 1
    for _ in range(200_000):
        deep = [deep]
    with pytest.raises(InvalidInput, match="deeper"):
        filters.check_where({"metadata.k": {"$in": deep}})
    filters.check_where(_deep_and(filters.MAX_WHERE_DEPTH, {"metadata.n": {"$in": [1, 2]}}))
