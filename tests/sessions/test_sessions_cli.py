"""``omnilab queue stats|recover`` on embedded and server Redis."""

from __future__ import annotations

import json

import omnilab
from omnilab.cli import main


def test_queue_cli_recover_and_stats(tmp_path, redis_url, redis_prefix, capsys, monkeypatch):
    monkeypatch.setenv("OMNILAB_REDIS_PREFIX", redis_prefix)
    lab_path = tmp_path / "lab"
    with omnilab.open(lab_path, redis_url=redis_url) as lab:
        lab.insert(
            "tasks",
            [{"content": f"t{i}", "task_type": "testing"} for i in range(3)]
            + [{"content": "done", "task_type": "testing", "status": "completed"}],
        )
    args = ["--lab", str(lab_path), "--redis-url", redis_url]
    assert main(["queue", "recover", *args, "--queue", "work"]) == 0
    assert "queued 3 open task(s)" in capsys.readouterr().out
    assert main(["queue", "stats", *args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (row,) = out["queues"]
    assert (row["queue"], row["pending"], row["in_flight"], row["dead"]) == ("work", 3, 0, 0)
    assert out["sessions"] == 0 and {c["cache"] for c in out["caches"]} == {"search", "response"}
    assert main(["queue", "stats", *args]) == 0
    assert "work" in capsys.readouterr().out
