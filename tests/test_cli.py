"""The omnilab command: exit codes, one-line errors, no tracebacks for user mistakes."""

import json
import os
import subprocess
import sys

import pytest

import omnilab
from omnilab.cli import main


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "omnilab.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_help_everywhere():
    for args in ([], ["demo"], ["db"], ["db", "upgrade"], ["sample"], ["info"]):
        with pytest.raises(SystemExit) as exc:
            main([*args, "--help"])
        assert exc.value.code == 0


def test_demo_creates_a_lab_and_reports_it(tmp_path):
    lab = tmp_path / "demo-lab"
    out = run("demo", "--lab", str(lab), "--embedder", "hashing")
    assert out.returncode == 0, out.stderr
    assert str(lab) in out.stdout and "29 agents in 5 systems" in out.stdout
    again = run("demo", "--lab", str(lab), "--embedder", "hashing")
    assert again.returncode == 0 and "already loaded" in again.stdout


def test_db_commands(tmp_path, capsys):
    lab = str(tmp_path / "lab")
    assert main(["db", "current", "--lab", lab]) == 0
    assert "base (empty)" in capsys.readouterr().out
    assert main(["db", "check", "--lab", lab]) == 1  # an empty database differs from the models
    assert main(["db", "upgrade", "--lab", lab]) == 0
    assert main(["db", "check", "--lab", lab]) == 0
    assert "agree" in capsys.readouterr().out
    # the platform schema (0005) holds the old data in another shape: a downgrade is refused, nothing changes
    assert main(["db", "downgrade", "base", "--lab", lab]) == 2
    err = capsys.readouterr().err
    assert "cannot be downgraded" in err and err.strip().count("\n") == 0
    assert main(["db", "current", "--lab", lab]) == 0
    assert "(up to date)" in capsys.readouterr().out
    assert main(["db", "check", "--lab", lab]) == 0


def test_sample_info_and_search(tmp_path, capsys):
    lab = str(tmp_path / "lab")
    assert main(["sample", "--lab", lab, "--embedder", "hashing", "-q"]) == 0
    out = capsys.readouterr().out
    assert "rows/s" in out
    printed = {line.split(":")[0].strip(): int(line.split(":")[1].replace(",", "")) for line in out.splitlines()
               if ":" in line and "rows/s" not in line}
    assert main(["info", "--lab", lab, "--embedder", "hashing", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rows"]["agents"] == 29 and info["schema_revision"]
    assert printed == {k: v for k, v in info["rows"].items() if v}  # every table the sample filled, as counted
    assert printed["agent_stats"] > 29 and printed["memory_access"] > 0

    # search: results carry the memories' string ids
    with omnilab.open(lab, embedder="hashing") as opened:
        memories = opened.memories()
        configparser_ids = set(memories.loc[memories["metadata"].map(
            lambda m: (m or {}).get("module") == "configparser"), "id"])
    assert main(["search", "read a configuration file", "--lab", lab, "--embedder", "hashing", "-k", "4",
                 "--where", '{"metadata.module": "configparser"}', "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == min(4, len(configparser_ids)) > 0
    assert {h["memory_id"] for h in hits} <= configparser_ids
    assert all(isinstance(h["memory_id"], str) and isinstance(h["created_at"], str) for h in hits)
    assert main(["search", "read a configuration file", "--lab", lab, "--embedder", "hashing", "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.split()[3] in set(memories["id"]) for line in lines)


@pytest.mark.parametrize("args, message", [
    (["sample", "--size", "huge"], "invalid choice"),
    (["db", "downgrade"], "required"),
    (["nonsense"], "invalid choice"),
])
def test_usage_errors_exit_2(args, message):
    out = run(*args)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_user_mistakes_are_one_line_without_traceback(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    out = run("info", "--lab", str(f))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and "not a directory" in out.stderr
    out = run("info", "--lab", str(tmp_path / "x"), "--database-url", "mysql://x@y/z")
    assert out.returncode == 2 and "OMNILAB_DATABASE_URL" in out.stderr and "Traceback" not in out.stderr
    out = run("sample", "--lab", str(tmp_path / "y"), "--days", "0", "-q")
    assert out.returncode == 2 and "days" in out.stderr and "Traceback" not in out.stderr


def test_read_only_attach_from_the_command_line(tmp_path, capsys):
    from omnilab.platform_sample import build_platform_sqlite

    db = tmp_path / "omnidev.db"
    build_platform_sqlite(db)
    before = db.read_bytes()
    url = f"sqlite:///{db}"
    common = ["--lab", str(tmp_path / "lab"), "--database-url", url, "--embedder", "hashing"]
    assert main(["info", *common]) == 2  # a platform database: refused, naming read-only and adopt
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "read_only=True" in err and "omnilab db adopt" in err
    assert main(["info", *common, "--read-only"]) == 0
    assert "relational (read-only)" in capsys.readouterr().out
    assert main(["search", "payroll salary run", *common, "--read-only", "-k", "1", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["memory_id"] == "mem_000003"
    assert db.read_bytes() == before
