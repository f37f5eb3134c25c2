"""The omnilab command: exit codes, one-line errors, no tracebacks for user mistakes."""

import json
import os
import subprocess
import sys

import pytest

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
    assert main(["db", "downgrade", "base", "--lab", lab]) == 0
    assert main(["db", "current", "--lab", lab]) == 0
    assert "base (empty)" in capsys.readouterr().out


def test_sample_and_info(tmp_path, capsys):
    lab = str(tmp_path / "lab")
    assert main(["sample", "--lab", lab, "--embedder", "hashing", "-q"]) == 0
    assert "rows/s" in capsys.readouterr().out
    assert main(["info", "--lab", lab, "--embedder", "hashing", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rows"]["agents"] == 29 and info["schema_revision"]


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
