"""The README runs as written: every ```python and ```bash block, in order, in a fresh copy of the repository.

Python blocks share one interpreter (a reader's notebook or REPL session); shell blocks run in bash with
``set -euo pipefail``. The first block is the README's set-up command; its ``pip install`` part is what the
test command already did (``.[dev]`` includes ``.[all]``), so only the rest (``omnilab demo``) runs here —
installing again from the copy would re-point the editable install. A block preceded by the line
``<!-- not run: REASON -->`` is skipped (a team's database host, the command that runs this test…); the
reason must say why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
_FENCE = re.compile(r"^```(\w*)\s*$")
_NOT_RUN = re.compile(r"^<!-- not run: (.*\S) -->$")
_INSTALL = re.compile(r'^python -m pip install -e "\.\[all\]" && ')


def readme_blocks(text: str) -> list[dict]:
    """Every fenced block: language, code, first line number, and the not-run reason (or None)."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while not lines[j].startswith("```"):
            j += 1
        reason = None
        k = start - 1  # the HTML comments directly above the fence
        while k >= 0 and lines[k].startswith("<!--"):
            if (r := _NOT_RUN.match(lines[k])) is not None:
                reason = r.group(1)
            k -= 1
        blocks.append({"lang": lang, "code": "\n".join(lines[start + 1 : j]), "line": start + 1, "reason": reason})
        i = j + 1
    return blocks


_DRIVER = textwrap.dedent("""
    import json, subprocess, sys, traceback
    blocks = json.load(open(sys.argv[1]))
    namespace = {"__name__": "__main__"}
    for b in blocks:
        print(f"--- README line {b['line']} ({b['lang']})", flush=True)
        if b["lang"] == "python":
            try:
                exec(compile(b["code"], f"README.md:{b['line']}", "exec"), namespace)
            except BaseException:
                traceback.print_exc()
                print(f"README block at line {b['line']} failed", flush=True)
                sys.exit(1)
        else:
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", b["code"]])
            if r.returncode != 0:
                print(f"README block at line {b['line']} exited {r.returncode}", flush=True)
                sys.exit(1)
    namespace.get("lab") is not None and namespace["lab"].close()
    print("README ran to the end", flush=True)
""")


def test_every_block_is_run_or_says_why_not():
    blocks = readme_blocks(README.read_text())
    code = [b for b in blocks if b["lang"] in ("python", "bash")]
    assert code, "no code blocks found"
    assert _INSTALL.match(code[0]["code"]), "the first block is the set-up command"
    assert code[0]["reason"] is None, "the set-up command runs"
    test_command = [b for b in code if "python -m pytest" in b["code"]]
    assert test_command and all(b["reason"] for b in test_command), "the test command must not run itself"
    for b in blocks:
        assert b["lang"] in ("python", "bash", ""), f"README line {b['line']}: unknown block language {b['lang']!r}"


def test_readme_runs_in_a_fresh_copy(tmp_path):
    import json

    fresh = tmp_path / "repo"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (fresh / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, fresh / name)
    blocks = [b for b in readme_blocks(README.read_text()) if b["lang"] in ("python", "bash") and not b["reason"]]
    blocks[0] = {**blocks[0], "code": _INSTALL.sub("", blocks[0]["code"])}  # installed by the test command
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))
    (tmp_path / "driver.py").write_text(_DRIVER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNILAB_")}  # a new user's shell
    env.update(MPLBACKEND="Agg", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    r = subprocess.run(
        [sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "blocks.json")],
        cwd=fresh,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    tail = (r.stdout + r.stderr)[-6000:]
    assert r.returncode == 0, tail
    assert "README ran to the end" in r.stdout, tail


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<!-- not run: needs a team's PostgreSQL host -->\n```python\nx = 1\n```\n", "needs a team's PostgreSQL host"),
        ("```bash\necho hi\n```\n", None),
        ("<!-- not run: a -->\n<!-- test-command -->\n```bash\npytest\n```\n", "a"),
    ],
)
def test_not_run_marker_is_read(text, expected):
    (block,) = readme_blocks(text)
    assert block["reason"] == expected
