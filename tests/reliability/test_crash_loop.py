"""Crash loop: 20 rounds of a child ingesting (and forgetting, updating) SIGKILLed at a random moment.

After every kill the parent checks, before and after reopening the lab:
* the on-disk index manifest parses and names readable FAISS/key files (atomic replaces work);
* the Alembic version is still the head;
* no acknowledged memory was lost (an ``add`` the child logged after ``ingest`` returned is in SQL unless
  a forget of it was attempted), no acknowledged forget came back, an acknowledged update stuck;
* SQL, the FAISS index and the embedding cache agree, and every memory's own vector ranks it first.
The figures (rounds survived, rows lost) are printed for the closing note.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time

import pytest
import sqlalchemy as sa
from rel_checks import MEM, assert_consistent, consistency, manifest_problems
from rel_workers import crash_child, get_context, read_crash_log

import omnilab
from omnilab.sql import migrate

ROUNDS = 20
MODES = ("ingest", "ingest+forget", "ingest+forget+update")


def test_crash_loop_loses_nothing(tmp_path, database_url):
    path = tmp_path / "lab"
    with omnilab.open(path, database_url=database_url, embedder="hashing"):
        pass  # the lab exists (migrated) before the first child: kills hit ingest, not creation
    ctx = get_context()
    rng = random.Random(7)
    log_path = str(tmp_path / "acks.log")
    survived = 0
    lost_total = 0
    stats = []
    for rnd in range(ROUNDS):
        mode = MODES[rnd % 3]
        child = ctx.Process(target=crash_child, args=(str(path), database_url, rnd, 1000 + rnd, log_path, mode))
        child.start()
        time.sleep(rng.uniform(0.15, 0.9))
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        assert child.exitcode == -signal.SIGKILL, f"round {rnd}: child ended by itself ({child.exitcode})"

        # 1. the files exactly as the kill left them
        assert manifest_problems(path / "vectors") == [], f"round {rnd}"
        acks = read_crash_log(log_path)
        with omnilab.open(path, database_url=database_url, embedder="hashing") as lab:
            assert migrate.current(lab.engine) == migrate.head()
            with lab.engine.connect() as conn:
                stored = dict(conn.execute(sa.select(MEM.c.id, MEM.c.content)).all())
            # 2. acknowledged operations are durable
            lost = [m for m in acks["added"] if m not in stored and m not in acks["forget_tried"]]
            resurrected = [m for m in acks["forgotten"] if m in stored]
            wrong_update = []
            for mid, versions in acks["updates"].items():
                if mid not in stored or mid in acks["forget_tried"]:
                    continue
                last_acked = max((j for j, (_, ok) in enumerate(versions) if ok), default=None)
                if last_acked is None:
                    continue
                allowed = {c for c, _ in versions[last_acked:]}  # an unacknowledged later update may have landed
                if stored[mid] not in allowed:
                    wrong_update.append(mid)
            lost_total += len(lost)
            assert not lost and not resurrected and not wrong_update, (rnd, lost, resurrected, wrong_update)
            # 3. the three stores agree
            report = consistency(lab)
            assert_consistent(report)
        stats.append(
            {
                "round": rnd,
                "mode": mode,
                "memories": report["rows"],
                "acked_adds": len(acks["added"]),
                "acked_forgets": len(acks["forgotten"]),
            }
        )
        survived += 1
    assert stats[-1]["memories"] > 0  # the children really wrote
    print(
        "\nCRASH LOOP "
        + json.dumps(
            {
                "backend": "sqlite" if database_url is None else "postgresql",
                "rounds": ROUNDS,
                "survived": survived,
                "rows_lost": lost_total,
                "final_memories": stats[-1]["memories"],
                "acked_adds": stats[-1]["acked_adds"],
                "acked_forgets": stats[-1]["acked_forgets"],
            }
        )
    )


@pytest.mark.parametrize("where", ["faiss", "keys", "manifest"])
def test_kill_mid_save_leaves_a_usable_index(tmp_path, where):
    """A torn write of an index file (as if the machine died mid-``write``) is detected and rebuilt."""
    path = tmp_path / "lab"
    with omnilab.open(path, embedder="hashing") as lab:
        lab.ingest([{"content": f"torn write {i} tok{i}", "memory_type": "code"} for i in range(30)], progress=False)
    vec = path / "vectors"
    manifest = json.loads((vec / "manifest.json").read_text())
    info = manifest["types"]["code"]
    target = {"faiss": vec / info["file"], "keys": vec / info["keys"], "manifest": vec / "manifest.json"}[where]
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    with omnilab.open(path, embedder="hashing") as lab:
        assert len(lab.search("torn write 3", k=30)) == 30
        assert_consistent(consistency(lab))
    assert manifest_problems(vec) == []  # and it was written back whole
