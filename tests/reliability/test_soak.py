"""The soak (slow; deselected by default, ``pytest -m slow`` runs it): two processes, mixed operations.

Same code as ``tests/benchmarks/bench_soak.py`` (which prints the figures); here it is a pass/fail
check: no errors, both processes did every kind of operation, and memory stays bounded (RSS grows by
less than half of its starting size — a leak of per-operation state over thousands of operations
would blow far past that).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

SECONDS = float(os.environ.get("OMNILAB_SOAK_SECONDS", "120"))


@pytest.mark.slow
@pytest.mark.parametrize("redis", ["server", "embedded"])
def test_soak(database_url, redis):
    from bench_soak import print_table, run

    if redis == "server":
        url = os.environ.get("OMNILAB_TEST_REDIS_URL")
        if not url:
            pytest.skip("OMNILAB_TEST_REDIS_URL is not set")
    else:
        url = "embedded"
    report = run(SECONDS, database_url, url)
    print_table(report)
    print("SOAK " + json.dumps(report["summary"]))
    assert report["summary"]["errors"] == 0, [o.get("errors") for o in report["processes"]]
    for o in report["processes"]:
        assert all(n > 0 for n in o["ops"].values()), o["ops"]
        assert o["end_mb"] < 1.5 * o["start_mb"], (o["start_mb"], o["end_mb"])
