"""The search web app: a generated notebook that shows ``SearchUI`` for the lab named in the environment,
served by Voila on 127.0.0.1 (``omnilab ui``).

The lab is passed to the Voila kernel through the ``OMNILAB_*`` variables that ``omnilab.open()`` reads
(``OMNILAB_DATA_DIR``, ``OMNILAB_DATABASE_URL``, ...), so every lab option of the CLI works unchanged.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import nbformat

from omnilab.errors import ConfigError

__all__ = ["APP_CODE", "write_app_notebook", "voila_command", "serve"]

log = logging.getLogger(__name__)

APP_CODE = """\
import omnilab
from omnilab.analysis.widgets import SearchUI

lab = omnilab.open()  # the lab comes from OMNILAB_DATA_DIR / OMNILAB_DATABASE_URL, set by `omnilab ui`
SearchUI(lab)
"""


def write_app_notebook(directory: str | Path) -> Path:
    """Write ``omnilab_search.ipynb`` (a title and the SearchUI cell) into ``directory``; returns its path."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# omnilab · memory search\nSearch the lab's memories by meaning "
                                              "(semantic) or meaning + keywords (hybrid)."),
                nbformat.v4.new_code_cell(APP_CODE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = Path(directory) / "omnilab_search.ipynb"
    nbformat.write(nb, path)
    return path


def voila_command(notebook: str | Path, port: int) -> list[str]:
    """The Voila command line: localhost only, no browser, tracebacks shown (a local research tool)."""
    return [sys.executable, "-m", "voila", str(notebook), f"--port={int(port)}", "--no-browser",
            "--Voila.ip=127.0.0.1", "--Voila.port_retries=0", "--show_tracebacks=True"]


def serve(port: int, env: Mapping[str, str], *, ready_message: bool = True) -> int:
    """Run Voila on ``port`` with the lab variables in ``env`` until it exits or Ctrl-C; returns its exit code."""
    if not 0 < int(port) < 65536:
        raise ConfigError(f"port must be 1..65535, got {port}")
    import importlib.util

    if importlib.util.find_spec("voila") is None:
        raise ConfigError("the search app needs Voila: pip install 'omnilab[jupyter]' (or pip install voila)")
    with tempfile.TemporaryDirectory(prefix="omnilab-ui-") as tmp:
        notebook = write_app_notebook(tmp)
        full_env = {**os.environ, **env}
        proc = subprocess.Popen(voila_command(notebook, port), cwd=tmp, env=full_env)  # noqa: S603 - fixed argv
        if ready_message:
            log.info("voila started (pid %d) on http://127.0.0.1:%d/", proc.pid, port)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            # Voila shuts down cleanly on SIGINT (it is in our process group and got it too); be sure.
            _stop(proc)
            return 0


def _stop(proc: subprocess.Popen) -> None:
    """Let Voila finish the shutdown that Ctrl-C (sent to the whole process group) started; then insist."""
    deadline = time.monotonic() + 10
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting politely
            break
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
