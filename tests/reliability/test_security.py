"""Security pass: no pickle/eval/exec/shell, parameterized SQL, namespaced Redis keys, no leaked secrets,
and ``lab.sql`` read-only on both databases.

The static checks parse ``omnilab/`` with :mod:`ast` (comments and strings never match, aliases are
resolved); the dynamic ones run the library against the real stores and look at what reached them.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from rel_checks import snapshot

import omnilab
from omnilab import cli
from omnilab.errors import InvalidInput, ReadOnlyViolation, StoreUnavailable

PKG = Path(omnilab.__file__).resolve().parent
SOURCES = sorted(p for p in PKG.rglob("*.py"))
SQLI = "'; DROP TABLE agents; --"


def _modules() -> list[tuple[str, ast.Module]]:
    return [(str(p.relative_to(PKG.parent)), ast.parse(p.read_text(), str(p))) for p in SOURCES]


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


# --------------------------------------------------------------------------------- dangerous calls
BANNED_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "joblib"}
BANNED_CALLS = {
    "eval",
    "exec",
    "compile",
    "__import__",
    "os.system",
    "os.popen",
    "pd.read_pickle",
    "pandas.read_pickle",
    "yaml.load",
    "yaml.unsafe_load",
    "torch.load",
    "np.load",
    "numpy.load",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
}


def dangerous(tree: ast.Module) -> list[str]:
    """Imports of pickle-like modules; eval/exec/compile; shell=True; np.load without allow_pickle=False."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in BANNED_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in BANNED_MODULES:
            out.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            kw = {k.arg: k.value for k in node.keywords}
            if name.split(".")[-1] == "load" and name.split(".")[0] in ("np", "numpy"):
                v = kw.get("allow_pickle")
                if not (isinstance(v, ast.Constant) and v.value is False):
                    out.append(f"{name} without allow_pickle=False (line {node.lineno})")
            elif name in BANNED_CALLS:
                out.append(f"{name}() (line {node.lineno})")
            shell = kw.get("shell")
            if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
                out.append(f"{name}(shell=...) (line {node.lineno})")
    return out


def test_scanner_catches_what_it_should():
    bad = ast.parse(
        "import pickle\nfrom dill import loads\nx = eval('1')\nimport subprocess\n"
        "subprocess.run('ls', shell=True)\nimport numpy as np\nnp.load('f.npy')\n"
        "# eval( in a comment is fine\ns = 'pickle.loads in a string is fine'\n"
    )
    assert len(dangerous(bad)) == 5
    assert dangerous(ast.parse("np.load(b, allow_pickle=False)\nstmt.compile(dialect=d)\n")) == []


def test_no_pickle_eval_exec_or_shell_anywhere():
    found = {name: hits for name, tree in _modules() if (hits := dangerous(tree))}
    assert found == {}


# ------------------------------------------------------------------------------ parameterized SQL
SQL_SINKS = {"text", "literal_column", "exec_driver_sql", "execute", "executemany", "executescript", "copy"}

#: (module, function, source of the interpolated expression) -> why it cannot carry user data.
#: Everything else that reaches a SQL sink must be a constant string or a SQLAlchemy construct.
ALLOWED_INTERPOLATIONS: dict[tuple[str, str, str], str] = {
    (
        "omnilab/sql/vector_column.py",
        "add_vector_column",
        "EMBEDDING_COLUMN",
    ): "EMBEDDING_COLUMN, the module constant naming the pgvector column",
    (
        "omnilab/sql/vector_column.py",
        "drop_vector_column",
        "EMBEDDING_COLUMN",
    ): "EMBEDDING_COLUMN, the module constant naming the pgvector column",
    (
        "omnilab/vectors/pgvector.py",
        "__len__",
        "EMBEDDING_COLUMN",
    ): "EMBEDDING_COLUMN, the module constant naming the pgvector column",
    (
        "omnilab/vectors/pgvector.py",
        "counts",
        "EMBEDDING_COLUMN",
    ): "EMBEDDING_COLUMN, the module constant naming the pgvector column",
    (
        "omnilab/vectors/pgvector.py",
        "remove",
        "EMBEDDING_COLUMN",
    ): "EMBEDDING_COLUMN, the module constant naming the pgvector column",
    (
        "omnilab/vectors/pgvector.py",
        "write",
        "EMBEDDING_COLUMN",
    ): "EMBEDDING_COLUMN, the module constant naming the pgvector column",
    (
        "omnilab/vectors/pgvector.py",
        "_ensure_hnsw",
        "EMBEDDING_COLUMN",
    ): "EMBEDDING_COLUMN, the module constant naming the pgvector column",
    (
        "omnilab/vectors/pgvector.py",
        "_approximate",
        "int(self.ef_search)",
    ): "an int (SET LOCAL takes no bound parameter)",
    (
        "omnilab/vectors/pgvector.py",
        "_approximate",
        "t",
    ): "a MemoryType value from omnilab.enums, as a literal so the partial index's predicate matches",
    (
        "omnilab/vectors/pgvector.py",
        "_drop_other_dims",
        "name",
    ): "an index name read from pg_indexes with omnilab's HNSW prefix, double-quoted",
    (
        "omnilab/vectors/pgvector.py",
        "_ensure_hnsw",
        "_EF_CONSTRUCTION",
    ): "an int module constant (index options take no bound parameter)",
    (
        "omnilab/vectors/pgvector.py",
        "_ensure_hnsw",
        "self._index_name(t)",
    ): "omnilab's HNSW prefix + the int dimension + a MemoryType value, double-quoted",
    ("omnilab/vectors/pgvector.py", "_ensure_hnsw", "self.dim"): "the embedder's int dimension",
    ("omnilab/vectors/pgvector.py", "_ensure_hnsw", "self.hnsw_m"): "an int (index options take no bound parameter)",
    (
        "omnilab/vectors/pgvector.py",
        "_ensure_hnsw",
        "t",
    ): "a MemoryType value from omnilab.enums (the partial index's predicate)",
    (
        "omnilab/sql/bulk.py",
        "bulk_insert",
        "table_name",
    ): "a key of omnilab.sql.schema.TABLES (looked up first: TABLES[table_name]); callers pass constants",
    ("omnilab/sql/bulk.py", "bulk_insert", "quoted"): "column names of the schema table, double-quoted",
    ("omnilab/sql/bulk.py", "bulk_insert", "marks"): "one '?' placeholder per column: the values are bound",
    (
        "omnilab/sql/bulk.py",
        "bulk_insert",
        "sql.Identifier(table_name)",
    ): "psycopg's sql.Identifier quotes the (schema) table name for COPY",
    (
        "omnilab/sql/bulk.py",
        "bulk_insert",
        "sql.SQL(', ').join((sql.Identifier(c) for c in names))",
    ): "psycopg-quoted schema column names for COPY; rows travel in the COPY data stream",
    ("omnilab/sql/engine.py", "_sqlite_pragmas", "BUSY_TIMEOUT_MS"): "a module constant int, formatted with :d",
    (
        "omnilab/sql/migrations/versions/0002_vector_memory.py",
        "upgrade",
        "PG_TSV",
    ): "a module constant: the generated tsvector expression of the migration",
    (
        "omnilab/vectors/filters.py",
        "json_path_expr",
        "p",
    ): "metadata key parts, each matched against _KEY_RE (letters, digits, _ and -) before use",
    ("omnilab/vectors/filters.py", "json_path_expr", "table"): "None or a schema table name given by omnilab code",
    ("omnilab/vectors/filters.py", "json_path_expr", "col"): "'metadata' or '<schema table>.metadata'",
    (
        "omnilab/vectors/memory.py",
        "add_filter_index",
        "name",
    ): "FILTER_INDEX_PREFIX + the validated key parts (json_path_expr rejects anything else first)",
    (
        "omnilab/vectors/memory.py",
        "add_filter_index",
        "sql_expr",
    ): "json_path_expr(...) compiled: a literal built only from validated key parts",
    ("omnilab/sql/schema.py", "_text", "default"): "a constant default of the platform's DDL ('idle', 'medium', ...)",
    ("omnilab/sql/attach.py", "_pragmas", "BUSY_TIMEOUT_MS"): "a module constant int, formatted with :d",
    ("omnilab/sql/attach.py", "_sqlite_read_only", "BUSY_TIMEOUT_MS"): "a module constant int (the timeout)",
    ("omnilab/sample/platform.py", "_insert", "table"): "a key of platform_rows(): the platform's table names",
    ("omnilab/sample/platform.py", "_insert", "', '.join(cols)"): "the column names of platform_rows()",
    ("omnilab/sample/platform.py", "_insert", "', '.join([mark] * len(cols))"): "one placeholder per column",
    (
        "omnilab/sql/adopt.py",
        "_add",
        "ddl",
    ): "CreateColumn of an omnilab model column (+ quoted FK target from the models)",
    ("omnilab/sql/adopt.py", "_add", "later"): "None or the constant 'CURRENT_TIMESTAMP'",
    ("omnilab/sql/adopt.py", "_add", "prep.quote(col)"): "a column name from OMNILAB_COLUMNS, quoted by the dialect",
    ("omnilab/sql/adopt.py", "_add", "prep.quote(name)"): "a table name from OMNILAB_COLUMNS, quoted by the dialect",
    (
        "omnilab/sql/migrations/versions/0005_platform_schema.py",
        "_check_fit",
        "measure",
    ): "LENGTH/ABS over a constant column expression of _copies",
    (
        "omnilab/sql/migrations/versions/0005_platform_schema.py",
        "_check_fit",
        "source",
    ): "constant FROM clause of _copies (old table names)",
    (
        "omnilab/sql/migrations/versions/0005_platform_schema.py",
        "_copy",
        "', '.join(columns)",
    ): "constant new column names of _copies",
    (
        "omnilab/sql/migrations/versions/0005_platform_schema.py",
        "_copy",
        "', '.join(columns.values())",
    ): "constant SQL expressions of _copies",
    ("omnilab/sql/migrations/versions/0005_platform_schema.py", "_copy", "name"): "a table name from _copies",
    (
        "omnilab/sql/migrations/versions/0005_platform_schema.py",
        "_copy",
        "order",
    ): "'' or ORDER BY a constant of ORDER_BY",
    ("omnilab/sql/migrations/versions/0005_platform_schema.py", "_copy", "source"): "constant FROM clause of _copies",
    ("omnilab/sql/migrations/versions/0005_platform_schema.py", "_set_aside", "OLD"): "the module constant '_old0004_'",
    (
        "omnilab/sql/migrations/versions/0005_platform_schema.py",
        "_set_aside",
        "index",
    ): "an index name read from pg_indexes, double-quoted",
    ("omnilab/sql/migrations/versions/0005_platform_schema.py", "_set_aside", "n"): "a local int counter",
    ("omnilab/sql/migrations/versions/0005_platform_schema.py", "_set_aside", "name"): "a table name from OLD_TABLES",
    (
        "omnilab/sql/migrations/versions/0005_platform_schema.py",
        "_set_aside",
        "seq",
    ): "pg_get_serial_sequence() of an OLD_TABLES table (quoted regclass text)",
    (
        "omnilab/sql/migrations/versions/0005_platform_schema.py",
        "upgrade",
        "PG_TSV",
    ): "a module constant: the generated tsvector expression (same as 0002)",
}


def _interpolations(expr: ast.AST, assigned: dict[str, list[ast.AST]], depth: int = 0) -> list[ast.AST] | None:
    """The runtime values spliced into SQL text built by ``expr`` (None: not string-building at all)."""
    if depth > 5:
        return None
    if isinstance(expr, ast.JoinedStr):
        return [v.value for v in expr.values if isinstance(v, ast.FormattedValue)]
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Mod, ast.Add)):
        left = _interpolations(expr.left, assigned, depth + 1)
        right = _interpolations(expr.right, assigned, depth + 1)
        if isinstance(expr.op, ast.Mod) and isinstance(expr.left, ast.Constant) and isinstance(expr.left.value, str):
            return [expr.right]
        text_side = any(isinstance(x, ast.Constant) and isinstance(x.value, str) for x in (expr.left, expr.right))
        if left is None and right is None and not text_side:
            return None  # not string building (e.g. numbers)
        vals = (left or []) + (right or [])
        for side, got in ((expr.left, left), (expr.right, right)):
            if got is None and not (isinstance(side, ast.Constant) and isinstance(side.value, str)):
                vals.append(side)
        return vals
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "format":
        return list(expr.args) + [k.value for k in expr.keywords]
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "join":
        args = [a.elt if isinstance(a, (ast.GeneratorExp, ast.ListComp)) else a for a in expr.args]
        inner = [_interpolations(a, assigned, depth + 1) for a in args]
        return None if all(i is None for i in inner) else [x for i in inner if i for x in i]
    if isinstance(expr, ast.IfExp):
        inner = [_interpolations(a, assigned, depth + 1) for a in (expr.body, expr.orelse)]
        return None if all(i is None for i in inner) else [x for i in inner if i for x in i]
    if isinstance(expr, ast.Name) and expr.id in assigned:
        found = [_interpolations(v, assigned, depth + 1) for v in assigned[expr.id]]
        return None if all(f is None for f in found) else [x for f in found if f for x in f]
    return None


def dynamic_sql(module: str, tree: ast.Module) -> list[tuple[str, str, str]]:
    """(module, function, expression source) for every runtime value formatted into SQL text."""
    out = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        assigned: dict[str, list[ast.AST]] = {}
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        assigned.setdefault(t.id, []).append(node.value)
        for node in ast.walk(fn):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = _dotted(node.func).split(".")[-1]
            if name not in SQL_SINKS:
                continue
            vals = _interpolations(node.args[0], assigned)
            for v in vals or []:
                out.append((module, fn.name, ast.unparse(v)))
    return sorted(set(out))


def test_sql_scanner_catches_what_it_should():
    src = (
        "def f(conn, u1, u2, u3, u4, u5):\n    q = f'SELECT * FROM t WHERE a = {u1}'\n    conn.execute(sa.text(q))\n"
        "    conn.exec_driver_sql('DELETE FROM t WHERE b = %s' % u2)\n"
        "    conn.execute(text('SELECT ' + u3))\n    conn.execute(sa.text('SELECT :a'), {'a': u5})\n"
        "    conn.execute(sa.literal_column('x' if u5 else f'{u4}'))\n"
        "    conn.execute(sa.select(t).where(t.c.a == u5))\n    n = 1 + u5\n"
    )
    assert [x[2] for x in dynamic_sql("m", ast.parse(src))] == ["u1", "u2", "u3", "u4"]


def test_sql_is_parameterized():
    """Every value formatted into SQL text is on the allow-list (identifiers from the schema and
    constants, each with its reason); everything else goes through bound parameters or SQLAlchemy Core."""
    found = [hit for name, tree in _modules() for hit in dynamic_sql(name, tree)]
    unexpected = [h for h in found if h not in ALLOWED_INTERPOLATIONS]
    stale = [k for k in ALLOWED_INTERPOLATIONS if k not in found]
    assert unexpected == [], "SQL text built from runtime values; bind them or justify them in the allow-list"
    assert stale == [], "allow-list entries that no longer exist: remove them"


# ---------------------------------------------------------------- no user value reaches SQL text
@pytest.fixture
def statements(lab):
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        seen.append(statement)

    sa.event.listen(lab.engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(lab.engine, "before_cursor_execute", record)


def test_user_strings_only_travel_as_parameters(lab, statements):
    """A marker in every string argument of the public API never appears in any statement's text."""
    marker = f"zq{uuid.uuid4().hex[:10]}"
    evil = f"{marker}{SQLI}"
    lab.insert("agents", {"id": "coder", "name": evil, "agent_type": "coder", "capabilities": [evil]})
    lab.insert("tasks", {"id": str(uuid.uuid4()), "content": evil, "agent_id": "coder", "task_type": evil})
    mid = lab.remember(f"memory {evil}", "code", tags=[evil], metadata={"k": evil}, session_id=evil[:60])
    lab.update_memory(mid, content=f"updated {evil}")
    for call in (
        lambda: lab.search(evil),
        lambda: lab.hybrid_search(evil),
        lambda: lab.memories(session_id=evil),
        lambda: lab.search(evil, where={"metadata.k": evil, "tags": {"$contains": evil}}),
        lambda: lab.search(evil, where={"$or": [{"session_id": {"$in": [evil]}}, {"content": {"$ne": evil}}]}),
        lambda: lab.tasks(agent_id=evil),
        lambda: lab.available_agents(evil),
        lambda: lab.sql("SELECT count(*) FROM agents WHERE name = :n", {"n": evil}),
        lambda: lab.forget([evil, mid]),
    ):
        call()
    with pytest.raises(InvalidInput):
        lab.search(evil, where={f"metadata.{evil}": 1})
    assert len(statements) > 20
    leaked = [s for s in statements if marker in s]
    assert leaked == []
    assert len(lab.agents()) == 1


# ------------------------------------------------------------------------------- Redis namespace
def _redis_workload(lab: omnilab.Lab) -> None:
    lab.insert("agents", {"id": "coder", "name": "coder", "agent_type": "coder"})
    lab.remember("a memory to search", "code")
    sid = lab.sessions.create("user-1", {"x": 1})
    lab.sessions.update(sid, context={"y": SQLI})
    lab.sessions.broadcast(sid, {"hello": 1})
    lab.agent_state.set("coder", {"status": "busy"})
    lab.set_agent_status("coder", "idle")
    for i in range(3):
        lab.queue.enqueue({"content": f"t{i}", "agent_id": "coder"}, queue="rq")
    lease = lab.queue.dequeue("w1", queue="rq")
    lease.ack({"ok": 1})
    lease = lab.queue.dequeue("w1", queue="rq")
    lease.fail("boom", retry=False)
    lab.search("a memory", cache=True)
    lab.search("a memory", cache=True)
    lab.cache.responses.set("coder", "prompt", {"text": "hi"})
    lab.queue.stats()
    lab.cache.stats()


def _all_keys(client: redis.Redis) -> set[bytes]:
    return {k.encode() if isinstance(k, str) else k for k in client.scan_iter(count=1000)}


def test_redis_keys_stay_under_the_prefix_on_a_server(tmp_path, database_url, server_redis_url):
    """On a dedicated database of the server, everything the workload wrote starts with the prefix."""
    url = server_redis_url.rsplit("/", 1)[0] + "/13"  # a database no other test uses
    client = redis.Redis.from_url(url)
    before = _all_keys(client)
    prefix = f"sec{uuid.uuid4().hex[:8]}:"
    with omnilab.open(
        tmp_path / "lab", database_url=database_url, embedder="hashing", redis_url=url, redis_prefix=prefix
    ) as lab:
        _redis_workload(lab)
    written = _all_keys(client) - before
    assert written, "the workload wrote nothing to Redis"
    assert {k for k in written if not k.startswith(prefix.encode())} == set()
    for k in written:
        client.delete(k)


def test_redis_keys_stay_under_the_prefix_embedded(tmp_path):
    with omnilab.open(tmp_path / "lab", embedder="hashing", redis_prefix="emb:") as lab:
        _redis_workload(lab)
        keys = _all_keys(lab._redis().client)  # noqa: SLF001 - the embedded server has no URL
    assert keys and {k for k in keys if not k.startswith(b"emb:")} == set()


# ------------------------------------------------------------------------------------- secrets
def test_secrets_never_reach_the_lab_logs_reports_or_notebooks(tmp_path, pg_schema_url, monkeypatch, caplog):
    secret_pw = f"pw{uuid.uuid4().hex}"
    secret_key = f"sk-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", secret_key)
    url = sa.engine.make_url(pg_schema_url).set(password=secret_pw).render_as_string(hide_password=False)
    monkeypatch.setenv("OMNILAB_DATABASE_URL", url)  # PostgreSQL here trusts local users: any password works
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "lab"
    texts: dict[str, str] = {}
    with omnilab.open(path, embedder="hashing", redis_url="redis://:" + secret_pw + "@127.0.0.1:1/0") as lab:
        lab.load_sample("small")
        lab.remember("secret-free memory", "code")
        lab.search("memory")
        texts["repr"] = repr(lab) + lab._repr_html_() + lab.stores().to_string() + repr(lab.settings)
        texts["report"] = lab.report(tmp_path / "report.html", days=30).read_text()
        with pytest.raises(StoreUnavailable) as err:
            lab.sessions.create("u")
        texts["redis error"] = str(err.value)
    for argv in (["info", "--json", "--lab", str(path)], ["search", "memory", "--lab", str(path), "--json"]):
        out, errs = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(errs):
            assert cli.main(argv) == 0
        texts[" ".join(argv[:1])] = out.getvalue() + errs.getvalue()
    bad_url = sa.engine.make_url(url).set(port=1).render_as_string(hide_password=False)  # unreachable
    with pytest.raises(StoreUnavailable) as err:
        omnilab.open(tmp_path / "lab2", database_url=bad_url, embedder="hashing")
    texts["db error"] = str(err.value)
    texts["logs"] = "\n".join(r.getMessage() for r in caplog.records)
    texts["notebook"] = _run_notebook(tmp_path, path)
    for name, text in texts.items():
        assert secret_pw not in text and secret_key not in text, name
    for f in path.rglob("*"):
        if f.is_file() and not f.is_socket():
            data = f.read_bytes()
            assert secret_pw.encode() not in data and secret_key.encode() not in data, f
    engine = sa.create_engine(pg_schema_url)
    with engine.connect() as conn:
        for t in sa.inspect(conn).get_table_names():
            n = conn.execute(
                sa.text(f'SELECT count(*) FROM "{t}" x WHERE x::text LIKE :a OR x::text LIKE :b'),
                {"a": f"%{secret_pw}%", "b": f"%{secret_key}%"},
            ).scalar_one()
            assert n == 0, t
    engine.dispose()


def _run_notebook(tmp_path: Path, lab_path: Path) -> str:
    """Execute a small notebook against the lab (database URL from the environment) and return its outputs."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(src)
        for src in (
            "import omnilab, os",
            f"lab = omnilab.open({str(lab_path)!r}); lab",
            "lab.stores()",
            "print(lab.settings); print(lab.database_url if False else 'ok')",
            "lab.search('memory', k=2)[['rank', 'score', 'memory_type']]",
        )
    ]
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    out = tmp_path / "run.ipynb"
    nbformat.write(nb, out)
    return out.read_text()


# ------------------------------------------------------------------------------- lab.sql read-only
WRITES = {
    "insert": "INSERT INTO agents (id, name, agent_type) VALUES ('x', 'x', 'coder')",
    "update": "UPDATE agents SET name = 'pwned'",
    "delete": "DELETE FROM agents",
    "drop": "DROP TABLE agents",
    "create": "CREATE TABLE pwned (x int)",
    "create-temp": "CREATE TEMP TABLE pwned (x int)",
    "alter": "ALTER TABLE agents ADD COLUMN pwned int",
    "two-statements": "SELECT 1; DROP TABLE agents",
    "commit-then-write": "SELECT 1; COMMIT; DELETE FROM agents",
    "cte-write": "WITH gone AS (DELETE FROM agents RETURNING id) SELECT * FROM gone",
    "insert-select": "INSERT INTO agents SELECT * FROM agents",
    "select-for-update": "SELECT * FROM agents FOR UPDATE",
}
SQLITE_ONLY = {
    "pragma-write": "PRAGMA journal_mode=DELETE",
    "pragma-query-only-off": "PRAGMA query_only=OFF",
    "pragma-writable-schema": "PRAGMA writable_schema=ON",
    "pragma-read": "PRAGMA table_info(agents)",
    "attach": "ATTACH DATABASE '/tmp/pwned.db' AS pwned",
    "detach": "DETACH DATABASE main",
    "vacuum-into": "VACUUM INTO '/tmp/pwned-copy.db'",
    "load-extension": "SELECT load_extension('/tmp/nothing')",
    "reindex": "REINDEX",
    "analyze": "ANALYZE",
    "savepoint": "SAVEPOINT s1",
}
PG_ONLY = {
    "set-role": "SET ROLE postgres",
    "set-readwrite": "SET TRANSACTION READ WRITE",
    "copy-to-file": "COPY agents TO '/tmp/pwned.csv'",
    "comment-hidden-copy": "/* /* */ SELECT */ COPY agents TO '/tmp/pwned.csv'",
    "do-block": "DO $$ BEGIN DELETE FROM agents; END $$",
    "vacuum": "VACUUM agents",
    "lock": "LOCK TABLE agents",
    "nextval": "SELECT nextval('agent_performance_id_seq')",
    "setval": "SELECT setval('agent_performance_id_seq', 999)",
    "explain-analyze-delete": "EXPLAIN ANALYZE DELETE FROM agents",
}
#: PostgreSQL functions a READ ONLY transaction lets run: they must leave no lasting effect.
PG_SIDE_EFFECTS = {
    "set-config": (
        "SELECT set_config('application_name', 'pwned', false) AS v",
        "SELECT current_setting('application_name') AS v",
        lambda v: v != "pwned",
    ),
    "advisory-lock": ("SELECT pg_advisory_lock(4242) AS v", None, None),
    "lo-import": ("SELECT lo_create(0) AS v", "SELECT count(*) AS v FROM pg_largeobject_metadata", None),
    "terminate-own-backend": ("SELECT pg_terminate_backend(pg_backend_pid()) AS v", None, None),
}


def _sql_cases() -> list[Any]:
    out = []
    for name, q in WRITES.items():
        out += [
            pytest.param(q, "sqlite", id=f"{name}-sqlite"),
            pytest.param(q, "postgresql", id=f"{name}-postgresql", marks=pytest.mark.postgres),
        ]
    out += [pytest.param(q, "sqlite", id=f"{n}-sqlite") for n, q in SQLITE_ONLY.items()]
    out += [pytest.param(q, "postgresql", id=f"{n}-postgresql", marks=pytest.mark.postgres) for n, q in PG_ONLY.items()]
    return out


@pytest.fixture(scope="module")
def sql_labs(tmp_path_factory) -> Any:
    """One seeded lab per backend for the read-only table (each case checks it changed nothing)."""
    from rel_checks import REDIS_URL  # noqa: F401 - rel_checks on the path

    labs: dict[str, Any] = {}
    stack = contextlib.ExitStack()

    def get(backend: str) -> omnilab.Lab:
        if backend not in labs:
            url = None
            if backend == "postgresql":
                pg = os.environ.get("OMNILAB_TEST_DATABASE_URL")
                if not pg:
                    pytest.skip("OMNILAB_TEST_DATABASE_URL is not set")
                schema = f"t_{uuid.uuid4().hex[:12]}"
                admin = sa.create_engine(pg)
                with admin.begin() as c:
                    c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

                def drop(admin=admin, schema=schema) -> None:
                    with admin.begin() as c:
                        c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                    admin.dispose()

                stack.callback(drop)
                url = (
                    sa.engine.make_url(pg)
                    .update_query_dict({"options": f"-csearch_path={schema}"})
                    .render_as_string(hide_password=False)
                )
            lab = omnilab.open(tmp_path_factory.mktemp(backend) / "lab", database_url=url, embedder="hashing")
            stack.callback(lab.close)
            lab.insert("agents", {"id": "coder", "name": "coder", "agent_type": "coder"})
            lab.insert("agent_performance", {"agent_id": "coder", "execution_time": 1.0, "success": True})
            lab.remember("read-only check", "code")
            labs[backend] = lab
        return labs[backend]

    yield get
    stack.close()


def _schema(lab: omnilab.Lab) -> dict[str, list[str]]:
    insp = sa.inspect(lab.engine)
    return {t: sorted(c["name"] for c in insp.get_columns(t)) for t in sorted(insp.get_table_names())}


@pytest.mark.postgres
@pytest.mark.parametrize("name", sorted(PG_SIDE_EFFECTS))
def test_lab_sql_side_effects_do_not_last(sql_labs, name, pg_url):
    lab = sql_labs("postgresql")
    query, probe, ok = PG_SIDE_EFFECTS[name]
    before, probed = snapshot(lab), (lab.sql(probe)["v"].tolist() if probe else None)
    with contextlib.suppress(InvalidInput):  # refused or not, nothing may outlive the call
        lab.sql(query)
    assert snapshot(lab) == before
    if probe:
        after = lab.sql(probe)["v"].tolist()
        assert ok(after[0]) if ok else after == probed, after
    other = sa.create_engine(pg_url)  # the advisory lock is not held by a pooled connection
    with other.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_try_advisory_lock(4242)")).scalar_one()
        conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
    other.dispose()
    assert lab.insert("agent_performance", {"agent_id": "coder", "execution_time": 3.0, "success": True}) == 1


@pytest.mark.parametrize(("query", "backend"), _sql_cases())
def test_lab_sql_is_read_only(sql_labs, query, backend):
    lab = sql_labs(backend)
    before, schema = snapshot(lab), _schema(lab)
    before_seq = None
    if backend == "postgresql":
        before_seq = lab.sql("SELECT last_value FROM agent_performance_id_seq")["last_value"].tolist()
    if query.startswith("PRAGMA table_info"):
        with pytest.raises(ReadOnlyViolation):  # even reading PRAGMAs: the authorizer allows SELECT only
            lab.sql(query)
    else:
        with pytest.raises(InvalidInput):  # ReadOnlyViolation, or the database refusing the statement
            lab.sql(query)
    assert snapshot(lab) == before and _schema(lab) == schema
    if before_seq is not None:
        assert lab.sql("SELECT last_value FROM agent_performance_id_seq")["last_value"].tolist() == before_seq
    assert not any(Path(f"/tmp/{n}").exists() for n in ("pwned.db", "pwned-copy.db", "pwned.csv"))
    # the pooled connection is not left read-only (nor writable through lab.sql): writes still work
    n = lab.insert("agent_performance", {"agent_id": "coder", "execution_time": 2.0, "success": False})
    assert n == 1
    assert lab.sql("SELECT 1 AS one")["one"].tolist() == [1]


def test_read_only_violation_is_typed(sql_labs):
    lab = sql_labs("sqlite")
    with pytest.raises(ReadOnlyViolation):
        lab.sql("DELETE FROM agents")
    assert json.loads(json.dumps(lab.sql("SELECT id FROM agents")["id"].tolist())) == ["coder"]


def test_settings_repr_hides_passwords():
    from omnilab.config import Settings

    s = Settings(database_url="postgresql://u:hunter2@db:5432/x", redis_url="rediss://:hunter3@r:6380/0")
    assert "hunter2" not in repr(s) and "hunter3" not in repr(s) and "u:***@db:5432/x" in repr(s)
    assert s.database_url == "postgresql://u:hunter2@db:5432/x"  # the value itself is intact
