"""Two and four processes ingest into one lab at once (SQLite and PostgreSQL) while a third searches.

Zero errors may reach the user ("database is locked" or anything else), every acknowledged row is stored
exactly once, the index agrees with SQL afterwards, and every search during the run returned a valid frame
in which an already-acknowledged memory, searched by its own text, ranks first.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from rel_checks import MEM, assert_consistent, consistency
from rel_workers import get_context, searcher, writer

import omnilab

PER_WRITER = 300
BATCH = 5


@pytest.mark.parametrize("writers", [2, 4])
def test_concurrent_writers(tmp_path, database_url, writers):
    path = tmp_path / "lab"
    with omnilab.open(path, database_url=database_url, embedder="hashing"):
        pass
    ctx = get_context()
    logs = [str(tmp_path / f"w{i}.log") for i in range(writers)]
    results = [str(tmp_path / f"w{i}.json") for i in range(writers)]
    stop = tmp_path / "stop"
    search_result = tmp_path / "searcher.json"
    reader = ctx.Process(target=searcher, args=(str(path), database_url, logs, str(stop), str(search_result)))
    reader.start()
    procs = [
        ctx.Process(target=writer, args=(str(path), database_url, i, PER_WRITER, BATCH, logs[i], results[i]))
        for i in range(writers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
    stop.touch()
    reader.join(60)
    assert all(p.exitcode == 0 for p in procs + [reader])

    outs = [json.loads(Path(r).read_text()) for r in results]
    errors = [e for o in outs for e in o["errors"]]
    lock_errors = [e for e in errors if "locked" in e.lower() or "deadlock" in e.lower()]
    seen = json.loads(search_result.read_text())
    acked = {}
    for lp in logs:
        for line in Path(lp).read_text().splitlines():
            _, mid, content = line.split(" ", 2)
            acked[mid] = json.loads(content)
    with omnilab.open(path, database_url=database_url, embedder="hashing") as lab:
        with lab.engine.connect() as conn:
            stored = conn.execute(sa.select(MEM.c.id, MEM.c.content)).all()
        report = consistency(lab, sample_public=10)
    ids = [r[0] for r in stored]
    contents = [r[1] for r in stored]
    figures = {
        "backend": "sqlite" if database_url is None else "postgresql",
        "writers": writers,
        "rows": len(stored),
        "expected": writers * PER_WRITER,
        "errors": len(errors),
        "lock_errors": len(lock_errors),
        "searches": seen["searches"],
        "verified_first": seen["verified"],
        "search_errors": len(seen["errors"]),
        "seconds": round(max(o["seconds"] for o in outs), 1),
    }
    print("\nCONCURRENT " + json.dumps(figures))
    assert errors == [], errors[:5]
    assert seen["errors"] == [], seen["errors"][:5]
    assert seen["searches"] > 0 and seen["verified"] > 0
    assert len(ids) == len(set(ids)) == writers * PER_WRITER  # every row exactly once
    assert len(set(contents)) == len(contents)
    assert {m: c for m, c in stored} == acked  # exactly the acknowledged rows, with their content
    assert_consistent(report)
