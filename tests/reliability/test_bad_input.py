"""The bad-input table: every case through the public API or the ``omnilab`` CLI, on SQLite and PostgreSQL.

Each case ends in the documented typed error (``InvalidInput``, ``NotFound``, ``ConfigError``,
``StoreUnavailable``; the CLI: exit 2 with one ``omnilab: error:`` line) or in the documented recovery
(stored verbatim, an empty result, a damaged index rebuilt from SQL) — and a snapshot of the lab taken
before (row counts of all 15 tables, memory ids, embedding-cache rows, indexed ids) is compared after:
a failed call writes nothing, a successful one writes exactly what it says.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from rel_checks import MEM, REDIS_URL, assert_consistent, consistency, snapshot

import omnilab
from omnilab import cli
from omnilab.errors import ConfigError, InvalidInput, NotFound, StoreUnavailable
from omnilab.sql.own_tables import memory_vectors

SQLI = "'; DROP TABLE agents; --"
DIM = 384  # the hashing embedder's dimension
NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens on port 1


class Env:
    """A seeded lab (6 memories, 1 agent, 1 task) and helpers to reopen it or run the CLI on it."""

    def __init__(self, tmp: Path, url: str | None, redis_url: str) -> None:
        self.tmp, self.url, self.redis_url = tmp, url, redis_url
        self.path = tmp / "lab"
        self.prefix = f"rel{uuid.uuid4().hex[:8]}:"
        self.lab = self.open()
        self.lab.insert("agents", {"id": "coder", "name": "coder", "agent_type": "coder", "capabilities": ["code"]})
        self.lab.insert("tasks", {"id": str(uuid.uuid4()), "content": "seed task", "agent_id": "coder"})
        self.ids = self.lab.ingest(
            [
                {
                    "content": f"seed memory {i} about parsing dates tok{i}",
                    "memory_type": ("code", "task")[i % 2],
                    "agent_id": "coder",
                    "metadata": {"lang": "python"},
                }
                for i in range(6)
            ],
            progress=False,
        )["memory_ids"]

    def open(self, **kw: Any) -> omnilab.Lab:
        kw.setdefault("redis_url", self.redis_url)
        kw.setdefault("embedder", "hashing")
        return omnilab.open(self.path, database_url=self.url, redis_prefix=self.prefix, **kw)

    def reopen(self, damage: Callable[[Path], None]) -> omnilab.Lab:
        self.lab.close()
        damage(self.path / "vectors")
        self.lab = self.open()
        return self.lab

    def cli(self, *argv: str) -> tuple[int, str, str]:
        base = argv[0].split() + ["--lab", str(self.path)]  # "queue stats": options follow the action
        if self.url:
            base += ["--database-url", self.url]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main([*base, *argv[1:]])
        return code, out.getvalue(), err.getvalue()

    def write(self, name: str, data: bytes) -> str:
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return str(p)


OK = "ok"  # the call succeeds (what it returns is checked by the case's `check`)
CLI_ERROR = "cli-exit-2"


@dataclass(frozen=True)
class Case:
    id: str
    run: Callable[[Env], Any]
    expect: Any  # an exception class, OK, or CLI_ERROR
    check: Callable[[Env, Any], None] | None = None
    added: int = 0  # memory rows a successful call adds
    sqlite_only: bool = False  # nothing database-specific (paths, config): run once


def _ten_mb(env: Env) -> str:
    return env.lab.remember("lorem ipsum dolor " * 600_000 + "unique-tail-token", "knowledge")


def _check_ten_mb(env: Env, mid: str) -> None:
    row = env.lab.memories(id=mid)
    assert len(row) == 1 and len(row["content"].iloc[0]) == len("lorem ipsum dolor " * 600_000 + "unique-tail-token")
    assert env.lab.search("lorem ipsum dolor", k=1)["memory_id"].iloc[0] == mid


def _stored_verbatim(field: str) -> Callable[[Env, Any], None]:
    def check(env: Env, mid: str) -> None:
        row = env.lab.memories(id=mid).iloc[0]
        value = {"content": row["content"], "tags": row["tags"], "metadata": row["metadata"]}[field]
        assert SQLI in json.dumps(value, ensure_ascii=False)
        assert len(env.lab.agents()) == 1  # and the agents table is still there

    return check


def _valid_frame(n: int | None = None) -> Callable[[Env, Any], None]:
    def check(env: Env, res: pd.DataFrame) -> None:
        assert isinstance(res, pd.DataFrame)
        if n is not None:
            assert len(res) == n
        if "rank" in res:
            assert list(res["rank"]) == list(range(1, len(res) + 1))
        assert len(env.lab.agents()) == 1

    return check


def _equals(value: Any) -> Callable[[Env, Any], None]:
    def check(env: Env, res: Any) -> None:
        assert res == value

    return check


def _recovered(env: Env, res: pd.DataFrame) -> None:
    assert len(res) == 6, "a damaged index must be rebuilt from SQL, not return nothing"
    assert_consistent(consistency(env.lab))


def _damage(fn: Callable[[Path], None]) -> Callable[[Env], Any]:
    def run(env: Env) -> Any:
        lab = env.reopen(fn)
        return lab.search("seed memory", k=50)

    return run


def _faiss_file(vec: Path, suffix: str = ".faiss") -> Path:
    return next(p for p in sorted(vec.iterdir()) if p.name.endswith(suffix))


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])


def _manifest_edit(change: Callable[[dict], Any]) -> Callable[[Path], None]:
    def fn(vec: Path) -> None:
        m = json.loads((vec / "manifest.json").read_text())
        (vec / "manifest.json").write_text(json.dumps(change(m)))

    return fn


def _ro_bind_mount(env: Env) -> Any:
    """A read-only lab directory. Tests run as root, for whom chmod stops nothing: a read-only bind mount
    does (falling back to ``chattr +i``)."""
    env.lab.close()
    p = str(env.path)
    how = None
    if shutil.which("mount") and subprocess.run(["mount", "--bind", p, p], capture_output=True).returncode == 0:
        if subprocess.run(["mount", "-o", "remount,ro,bind", p], capture_output=True).returncode == 0:
            how = "mount"
        else:
            subprocess.run(["umount", p], capture_output=True)
    chattr = shutil.which("chattr")
    if how is None and chattr and subprocess.run([chattr, "+i", p], capture_output=True).returncode == 0:
        how = "chattr"
    if how is None:
        pytest.skip("neither a read-only bind mount nor chattr +i is possible here")
    try:
        return env.open()
    finally:
        if how == "mount":
            subprocess.run(["umount", p], check=True)
        else:
            subprocess.run(["chattr", "-i", p], check=True)
        env.lab = env.open()


def _lab_is_file(env: Env) -> Any:
    f = env.tmp / "afile"
    f.write_text("not a lab")
    return omnilab.open(f, embedder="hashing")


def _redis_nowhere(action: str) -> Callable[[Env], Any]:
    def run(env: Env) -> Any:
        env.lab.close()
        env.lab = env.open(redis_url=NOWHERE)
        if action == "sessions":
            return env.lab.sessions.create("user-1")
        if action == "queue":
            return env.lab.queue.enqueue({"content": "never queued"})
        if action == "agent_status":
            return env.lab.agent_state.set("coder", {"status": "busy"})
        res = env.lab.search("seed memory", k=3)  # the search cache is bypassed, SQL + FAISS answer
        assert len(env.lab.sql("SELECT id FROM agents")) == 1
        assert len(env.lab.memories()) == 6
        return res

    return run


def _jsonl(rows: list[Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def _emb(value: float) -> list:
    return [value] * DIM


CASES = [
    # ------------------------------------------------------------------------------ text
    Case("empty-text", lambda e: e.lab.remember("", "code"), InvalidInput),
    Case("whitespace-text", lambda e: e.lab.remember(" \n\t  ", "code"), InvalidInput),
    Case("empty-query", lambda e: e.lab.search("   "), InvalidInput),
    Case("10mb-text", _ten_mb, OK, _check_ten_mb, added=1),
    Case("surrogate-content", lambda e: e.lab.remember("bad \ud800 text", "code"), InvalidInput),
    Case("surrogate-query", lambda e: e.lab.search("x \udc80 y"), InvalidInput),
    Case("surrogate-hybrid-query", lambda e: e.lab.hybrid_search("x \udc80 y"), InvalidInput),
    Case(
        "surrogate-agent-name",
        lambda e: e.lab.insert("agents", {"id": "a2", "name": "x\udcff", "agent_type": "coder"}),
        InvalidInput,
    ),
    Case(
        "bytes-content",
        lambda e: e.lab.ingest([{"content": b"\xff\xfe", "memory_type": "code"}], progress=False),
        InvalidInput,
    ),
    Case(
        "invalid-utf8-jsonl",
        lambda e: e.lab.ingest(
            e.write(
                "bad.jsonl",
                b'{"content": "ok", "memory_type": "code"}\n{"content": "x \xff\xfe", "memory_type": "code"}\n',
            ),
            progress=False,
        ),
        InvalidInput,
    ),
    Case(
        "invalid-utf8-csv",
        lambda e: e.lab.ingest(e.write("bad.csv", b'content,memory_type\n"ok \xff",code\n'), progress=False),
        InvalidInput,
    ),
    Case("nul-content", lambda e: e.lab.remember("a\x00b", "code"), InvalidInput),
    Case(
        "nul-agent-id",
        lambda e: e.lab.insert("agents", {"id": "a\x00b", "name": "n", "agent_type": "coder"}),
        InvalidInput,
    ),
    # ------------------------------------------------------------------------------ vectors
    Case(
        "nan-embedding",
        lambda e: e.lab.ingest(
            [{"content": "v1", "memory_type": "code", "embedding": np.full(DIM, np.nan)}], progress=False
        ),
        InvalidInput,
    ),
    Case(
        "inf-embedding",
        lambda e: e.lab.ingest(
            [{"content": "v2", "memory_type": "code", "embedding": np.full(DIM, np.inf)}], progress=False
        ),
        InvalidInput,
    ),
    Case(
        "zero-embedding",
        lambda e: e.lab.ingest([{"content": "v3", "memory_type": "code", "embedding": np.zeros(DIM)}], progress=False),
        InvalidInput,
    ),
    Case(
        "wrong-dim-embedding",
        lambda e: e.lab.ingest(
            [{"content": "v4", "memory_type": "code", "embedding": np.ones(DIM + 1)}], progress=False
        ),
        InvalidInput,
    ),
    Case(
        "text-embedding",
        lambda e: e.lab.ingest([{"content": "v5", "memory_type": "code", "embedding": ["a"] * DIM}], progress=False),
        InvalidInput,
    ),
    Case("nan-query-vector", lambda e: e.lab.search(np.full(DIM, np.nan)), InvalidInput),
    Case("wrong-dim-query-vector", lambda e: e.lab.search(np.ones(3)), InvalidInput),
    Case("2d-query-vector", lambda e: e.lab.search(np.ones((2, DIM))), InvalidInput),
    Case(
        "good-rows-then-bad-vector",
        lambda e: e.lab.ingest(
            [{"content": f"good {i}", "memory_type": "code"} for i in range(3)]
            + [{"content": "bad", "memory_type": "code", "embedding": _emb(float("nan"))}],
            progress=False,
        ),
        InvalidInput,
    ),
    # ------------------------------------------------------------------------------ DataFrame dtypes
    Case(
        "df-priority-text",
        lambda e: e.lab.ingest(
            pd.DataFrame({"content": ["p1", "p2"], "memory_type": ["code"] * 2, "priority": ["5", "high"]}),
            progress=False,
        ),
        InvalidInput,
    ),
    Case(
        "df-priority-float",
        lambda e: e.lab.ingest(
            pd.DataFrame({"content": ["p3"], "memory_type": ["code"], "priority": [5.5]}), progress=False
        ),
        InvalidInput,
    ),
    Case(
        "df-content-int",
        lambda e: e.lab.ingest(pd.DataFrame({"content": [123], "memory_type": ["code"]}), progress=False),
        InvalidInput,
    ),
    Case(
        "df-bad-datetime",
        lambda e: e.lab.insert(
            "agents",
            pd.DataFrame({"id": ["a3"], "name": ["a3"], "agent_type": ["coder"], "created_at": ["yesterday-ish"]}),
        ),
        InvalidInput,
    ),
    Case(
        "df-text-in-float-column",
        lambda e: e.lab.insert(
            "agent_performance",
            pd.DataFrame({"agent_id": ["coder", "coder"], "execution_time": [1.5, "fast"], "success": [True, True]}),
        ),
        InvalidInput,
    ),
    # ------------------------------------------------------------------------------ unknown names
    Case("unknown-memory-type", lambda e: e.lab.remember("zz", "nonsense"), InvalidInput),
    Case("unknown-memory-type-search", lambda e: e.lab.search("zz", memory_type="nonsense"), InvalidInput),
    Case("unknown-table-insert", lambda e: e.lab.insert("nonsense", [{"a": 1}]), InvalidInput),
    Case("unknown-table-read", lambda e: e.lab.table("nonsense"), InvalidInput),
    Case(
        "unknown-column",
        lambda e: e.lab.insert("agents", {"id": "a4", "name": "a", "agent_type": "coder", "colour": "red"}),
        InvalidInput,
    ),
    Case("unknown-filter-key", lambda e: e.lab.search("zz", where={"colour": "red"}), InvalidInput),
    Case("unknown-filter-operator", lambda e: e.lab.search("zz", where={"priority": {"$regex": "x"}}), InvalidInput),
    Case("unknown-top-operator", lambda e: e.lab.memories(where={"$xor": [{"priority": 1}]}), InvalidInput),
    Case("nan-filter-value", lambda e: e.lab.search("zz", where={"priority": float("nan")}), InvalidInput),
    Case("filter-not-a-dict", lambda e: e.lab.search("zz", where="priority = 1"), InvalidInput),
    # ------------------------------------------------------------------------------ SQL-looking strings
    Case("sqli-content", lambda e: e.lab.remember(f"note {SQLI}", "code"), OK, _stored_verbatim("content"), added=1),
    Case(
        "sqli-tags-metadata",
        lambda e: e.lab.remember("tagged note", "code", tags=[SQLI], metadata={SQLI: SQLI}),
        OK,
        _stored_verbatim("tags"),
        added=1,
    ),
    Case("sqli-search-query", lambda e: e.lab.search(SQLI, k=3), OK, _valid_frame(3)),
    Case("sqli-hybrid-query", lambda e: e.lab.hybrid_search(SQLI + ' " OR NEAR( * -', k=3), OK, _valid_frame()),
    Case("sqli-memory-type", lambda e: e.lab.search("zz", memory_type=SQLI), InvalidInput),
    Case("sqli-filter-key", lambda e: e.lab.search("zz", where={f"metadata.x{SQLI}": 1}), InvalidInput),
    Case("sqli-filter-value", lambda e: e.lab.search("zz", where={"metadata.lang": SQLI}), OK, _valid_frame(0)),
    Case("sqli-memories-keyword", lambda e: e.lab.memories(session_id=SQLI), OK, _valid_frame(0)),
    Case("sqli-agent-id", lambda e: e.lab.remember("zz", "code", agent_id=SQLI), InvalidInput),
    Case("sqli-table-name", lambda e: e.lab.table(f"agents; {SQLI}"), InvalidInput),
    Case("sqli-task-status", lambda e: e.lab.tasks(status=SQLI), InvalidInput),
    Case("sqli-task-agent", lambda e: e.lab.tasks(agent_id=SQLI), OK, _valid_frame(0)),
    Case("sqli-forget", lambda e: e.lab.forget([SQLI]), OK, _equals(0)),
    Case("sqli-update", lambda e: e.lab.update_memory(SQLI, content="x"), NotFound),
    Case("sqli-agent-performance", lambda e: e.lab.agent_performance(SQLI), NotFound),
    Case("sqli-breakdown", lambda e: e.lab.performance_breakdown(SQLI), InvalidInput),
    Case("sqli-available-agents", lambda e: e.lab.available_agents(SQLI), OK, _valid_frame(0)),
    Case(
        "sqli-sql-param",
        lambda e: e.lab.sql("SELECT count(*) AS n FROM agents WHERE id = :x", {"x": SQLI}),
        OK,
        lambda e, r: r["n"].tolist() == [0] or pytest.fail(str(r)),
    ),
    Case("sqli-relate", lambda e: e.lab.relate(SQLI, e.ids[0]), NotFound),
    # ------------------------------------------------------------------------------ k and days
    Case("negative-k", lambda e: e.lab.search("seed", k=-1), InvalidInput),
    Case("zero-k", lambda e: e.lab.search("seed", k=0), InvalidInput),
    Case("fractional-k", lambda e: e.lab.search("seed", k=2.5), InvalidInput),
    Case("huge-k", lambda e: e.lab.search("seed", k=10**12), OK, _valid_frame(6)),
    Case("huge-k-hybrid", lambda e: e.lab.hybrid_search("seed", k=10**12), OK, _valid_frame(6)),
    Case("negative-days", lambda e: e.lab.performance_summary(days=-1), InvalidInput),
    Case("huge-days", lambda e: e.lab.performance_summary(days=10**9), InvalidInput),
    Case("nan-days", lambda e: e.lab.agent_timeseries(days=float("nan")), InvalidInput),
    Case("negative-limit", lambda e: e.lab.memories(limit=-5), InvalidInput),
    # ------------------------------------------------------------------------------ lab directory
    Case("lab-dir-is-a-file", _lab_is_file, ConfigError, sqlite_only=True),
    Case(
        "lab-parent-is-a-file",
        lambda e: omnilab.open(e.write("f", b"x") + "/lab", embedder="hashing"),
        ConfigError,
        sqlite_only=True,
    ),
    Case("read-only-lab-dir", _ro_bind_mount, ConfigError),
    Case(
        "corrupt-sqlite-file",
        lambda e: (e.write("bad/omnilab.db", b"garbage" * 500), omnilab.open(e.tmp / "bad", embedder="hashing")),
        StoreUnavailable,
        sqlite_only=True,
    ),
    Case("other-embedder", lambda e: e.open(embedder="hashing:128"), ConfigError),
    # ------------------------------------------------------------------------------ damaged index
    Case("truncated-faiss-file", _damage(lambda v: _truncate(_faiss_file(v))), OK, _recovered),
    Case("truncated-keys-file", _damage(lambda v: _truncate(_faiss_file(v, ".keys.npy"))), OK, _recovered),
    Case("garbage-faiss-file", _damage(lambda v: _faiss_file(v).write_bytes(b"\x00" * 999)), OK, _recovered),
    Case("truncated-manifest", _damage(lambda v: _truncate(v / "manifest.json")), OK, _recovered),
    Case("manifest-not-an-object", _damage(lambda v: (v / "manifest.json").write_text("[1, 2]")), OK, _recovered),
    Case(
        "manifest-names-missing-file",
        _damage(
            _manifest_edit(
                lambda m: {**m, "types": {t: {**i, "file": "gone.00000099.faiss"} for t, i in m["types"].items()}}
            )
        ),
        OK,
        _recovered,
    ),
    Case(
        "manifest-path-traversal",
        _damage(
            _manifest_edit(
                lambda m: {**m, "types": {t: {**i, "file": "../../omnilab.db"} for t, i in m["types"].items()}}
            )
        ),
        OK,
        _recovered,
    ),
    Case("manifest-wrong-dim", _damage(_manifest_edit(lambda m: {**m, "dim": 7})), OK, _recovered),
    Case("index-dir-deleted", _damage(lambda v: shutil.rmtree(v)), OK, _recovered),
    # ------------------------------------------------------------------------------ Redis
    Case("redis-nowhere-sessions", _redis_nowhere("sessions"), StoreUnavailable),
    Case("redis-nowhere-queue", _redis_nowhere("queue"), StoreUnavailable),
    Case("redis-nowhere-agent-state", _redis_nowhere("agent_status"), StoreUnavailable),
    Case("redis-nowhere-search-and-sql", _redis_nowhere("search"), OK, _valid_frame(3)),
    Case("redis-bad-scheme", lambda e: e.open(redis_url="http://127.0.0.1:6379"), ConfigError, sqlite_only=True),
    # ------------------------------------------------------------------------------ the CLI
    Case(
        "cli-lab-is-a-file",
        lambda e: cli.main(["info", "--lab", e.write("cli-file", b"x")]),
        CLI_ERROR,
        sqlite_only=True,
    ),
    Case("cli-negative-k", lambda e: e.cli("search", "seed", "-k", "-5"), CLI_ERROR),
    Case("cli-where-not-json", lambda e: e.cli("search", "seed", "--where", "{priority: 1"), CLI_ERROR),
    Case(
        "cli-where-bad-operator", lambda e: e.cli("search", "seed", "--where", '{"priority": {"$where": 1}}'), CLI_ERROR
    ),
    Case("cli-unknown-type", lambda e: e.cli("search", "seed", "--type", SQLI), CLI_ERROR),
    Case("cli-surrogate-query", lambda e: e.cli("search", "seed \udcff"), CLI_ERROR),
    Case(
        "cli-sqli-query",
        lambda e: e.cli("search", SQLI, "--json"),
        OK,
        lambda e, r: (r[0] == 0 and len(json.loads(r[1])) == 6) or pytest.fail(str(r)),
    ),
    Case(
        "cli-ingest-invalid-utf8",
        lambda e: e.cli("ingest", e.write("c.jsonl", b'{"content": "\xff", "memory_type": "code"}\n'), "-q"),
        CLI_ERROR,
    ),
    Case(
        "cli-ingest-nan-embedding",
        lambda e: e.cli(
            "ingest",
            e.write(
                "n.jsonl",
                _jsonl(
                    [
                        {"content": "fine", "memory_type": "code"},
                        {"content": "nan", "memory_type": "code", "embedding": [None] * DIM},
                    ]
                ),
            ),
            "-q",
        ),
        CLI_ERROR,
    ),
    Case("cli-ingest-missing-file", lambda e: e.cli("ingest", str(e.tmp / "nope.jsonl"), "-q"), CLI_ERROR),
    Case("cli-report-negative-days", lambda e: e.cli("report", "-o", str(e.tmp / "r.html"), "--days", "-1"), CLI_ERROR),
    Case("cli-queue-redis-nowhere", lambda e: e.cli("queue stats", "--redis-url", NOWHERE), CLI_ERROR),
]

assert len({c.id for c in CASES}) == len(CASES)


def _params() -> list[Any]:
    out = []
    for c in CASES:
        out.append(pytest.param(c, None, id=f"{c.id}-sqlite"))
        if not c.sqlite_only:
            out.append(pytest.param(c, "postgresql", id=f"{c.id}-postgresql", marks=pytest.mark.postgres))
    return out


@pytest.mark.parametrize(("case", "backend"), _params())
def test_bad_input(case: Case, backend: str | None, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = request.getfixturevalue("pg_schema_url") if backend else None
    env = Env(tmp_path, url, REDIS_URL or "embedded")
    try:
        before = snapshot(env.lab)
        outcome = "?"
        if case.expect is OK:
            result = case.run(env)
            if case.check:
                case.check(env, result)
            outcome = "ok"
        elif case.expect is CLI_ERROR:
            result = case.run(env)
            code, err = (result, "") if isinstance(result, int) else (result[0], result[2])
            assert code == 2, result
            assert err == "" or err.startswith("omnilab: error:") and err.count("\n") == 1, err
            outcome = "exit 2"
        else:
            with pytest.raises(case.expect) as info:
                case.run(env)
            assert type(info.value).__module__.startswith("omnilab"), type(info.value)
            outcome = type(info.value).__name__
        env.lab.memory.refresh()
        after = snapshot(env.lab)
        if case.added:
            assert after["counts"]["memory_entries"] == before["counts"]["memory_entries"] + case.added
            assert after["memory_ids"] > before["memory_ids"]
            assert after["indexed"] > before["indexed"]
        else:
            assert after == before  # nothing half-written
        with env.lab.engine.connect() as conn:  # the indexed ids are exactly the vector keys of SQL's memories
            keyed = sa.select(memory_vectors.c.id).join(MEM, MEM.c.id == memory_vectors.c.memory_id)
            assert set(conn.execute(keyed).scalars()) == after["indexed"]
        request.node.user_properties.append(("outcome", outcome))
    finally:
        env.lab.close()


def test_the_table_is_big_enough():
    assert len(CASES) >= 30
    assert sum(c.id.startswith("cli-") for c in CASES) >= 5
