"""SIGKILL an ingesting process at a random moment: every committed memory stays searchable, no orphans."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import sqlalchemy as sa

import omnilab
from omnilab.sql.own_tables import embedding_cache

CHILD = textwrap.dedent("""
    import sys, omnilab
    path, url, start = sys.argv[1], (sys.argv[2] or None), int(sys.argv[3])
    lab = omnilab.open(path, database_url=url, embedder="hashing")
    i = start
    while True:
        batch = [{"content": f"crash test memory {j} with words w{j % 97} v{j * 7919 % 1000}",
                  "memory_type": ("code", "task", "knowledge")[j % 3], "metadata": {"j": j}}
                 for j in range(i, i + 50)]
        lab.ingest(batch, batch_size=25, progress=False)
        if i % 200 == 0:
            lab.forget([lab.memories(limit=1)["id"].iloc[0]])  # deletes race with kills too
        i += 50
        print(i, flush=True)
""")


def _check(path, url):
    with omnilab.open(path, database_url=url) as lab:
        store = lab.memory
        with lab.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, embedding_key FROM memory_vectors")).all()
            n_mem = conn.execute(sa.text("SELECT count(*) FROM memory_entries")).scalar_one()
            cached = dict(conn.execute(sa.select(embedding_cache.c.text_hash, embedding_cache.c.vector)).all())
        sql_ids = {r[0] for r in rows}
        assert len(sql_ids) == n_mem  # one key row per memory
        assert set(store.index.where) == sql_ids  # nothing missing, no orphan vectors
        for mid, key in rows:  # each memory's own vector returns it first
            vec = np.frombuffer(cached[key], dtype="<f4")
            hit = store.search_hits(vec, k=1)[0]
            assert hit.id == mid and hit.score == pytest.approx(1.0, abs=1e-5)
        n = len(rows)
        if url is None:
            with lab.engine.connect() as conn:
                fts = conn.execute(sa.text("SELECT count(*) FROM memory_fts")).scalar_one()
            assert fts == n  # keyword rows agree too
        return n


def test_sigkill_during_ingest_loses_nothing(tmp_path, database_url):
    kills = 3 if database_url is None else 2  # PostgreSQL rounds are slower; both backends are covered
    path = str(tmp_path / "lab")
    url = database_url or ""
    rng = random.Random(int.from_bytes(os.urandom(4), "little"))
    start, total = 0, 0
    omnilab.open(path, database_url=database_url, embedder="hashing").close()
    for round_ in range(kills):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, path, url, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            progressed = 0
            while progressed < 2:  # let it get going, then kill at a random moment
                line = proc.stdout.readline()
                if not line:
                    pytest.fail(f"child died: {proc.stderr.read()}")
                progressed += 1
            time.sleep(rng.uniform(0.0, 0.6))
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
            proc.stdout.close()
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        # the next child writes fresh contents: a killed child may have gone on far past its last line,
        # and re-ingesting its contents would be (correctly) skipped as duplicates
        start = (round_ + 1) * 1_000_000
        n = _check(path, database_url)
        assert n > total
        total = n
