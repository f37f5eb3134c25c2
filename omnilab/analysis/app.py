"""The search web app: a generated notebook that shows ``SearchUI`` for the lab named in the environment,
served by Voila on 127.0.0.1 (``omnilab ui``).

The lab is passed to the Voila kernel through the ``OMNILAB_*`` variables that ``omnilab.open()`` reads
(``OMNILAB_DATA_DIR``, ``OMNILAB_DATABASE_URL``, ...), so every lab option of the CLI works unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import nbformat
import psutil

from omnilab.errors import ConfigError

__all__ = ["APP_CODE", "IDLE_KERNEL_SECONDS", "write_app_notebook", "voila_command", "serve"]

log = logging.getLogger(__name__)

#: seconds a kernel without an open page may stay idle before Voila shuts it down
IDLE_KERNEL_SECONDS = 60

APP_CODE = """\
import omnilab
from omnilab.analysis.widgets import SearchUI

lab = omnilab.open()  # the lab comes from OMNILAB_DATA_DIR / OMNILAB_DATABASE_URL, set by `omnilab ui`
SearchUI(lab)
"""


def write_app_notebook(directory: str | Path) -> Path:
    """Write ``omnilab_search.ipynb`` (a title and the SearchUI cell) into ``directory``; returns its path."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# omnilab · memory search\nSearch the lab's memories by meaning (semantic) or meaning + keywords (hybrid)."
        ),
        nbformat.v4.new_code_cell(APP_CODE),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = Path(directory) / "omnilab_search.ipynb"
    nbformat.write(nb, path)
    return path


def voila_command(notebook: str | Path, port: int, *, idle_kernel_seconds: int | None = None) -> list[str]:
    """The Voila command line: localhost only, no browser, tracebacks shown (a local research tool).

    Voila starts one kernel per page view. A page that closes sends a beacon that shuts its kernel down;
    Voila sets no ``_xsrf`` cookie for the beacon to carry, so jupyter_server's XSRF check is turned off
    (the server listens on 127.0.0.1 only and a kernel id is a random UUID). A kernel whose page went away
    without that beacon (a crashed tab, a plain HTTP GET) is culled after ``idle_kernel_seconds`` with no
    page connected (None: :data:`IDLE_KERNEL_SECONDS`); a kernel with an open page is never culled.
    """
    idle = IDLE_KERNEL_SECONDS if idle_kernel_seconds is None else int(idle_kernel_seconds)
    if idle < 1:
        raise ConfigError(f"the kernel idle timeout must be at least 1 second, got {idle_kernel_seconds}")
    return [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        f"--port={int(port)}",
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        "--Voila.port_retries=0",
        "--show_tracebacks=True",
        '--Voila.tornado_settings={"disable_check_xsrf": True}',
        f"--MappingKernelManager.cull_idle_timeout={idle}",
        f"--MappingKernelManager.cull_interval={max(1, idle // 4)}",
        "--MappingKernelManager.cull_connected=False",
    ]


def serve(
    port: int, env: Mapping[str, str], *, ready_message: bool = True, idle_kernel_seconds: int | None = None
) -> int:
    """Run Voila on ``port`` with the lab variables in ``env`` until it exits or a signal stops it.

    SIGINT (Ctrl-C), SIGTERM (``kill PID``, what a process manager sends) and SIGHUP all stop Voila, which
    shuts its kernels down; whatever Voila started and is still running after that is terminated, so no
    process outlives the command. Returns 0 after a stop by signal, else Voila's exit code.
    """
    if not 0 < int(port) < 65536:
        raise ConfigError(f"port must be 1..65535, got {port}")
    import importlib.util

    if importlib.util.find_spec("voila") is None:
        raise ConfigError("the search app needs Voila: pip install 'omnilab[jupyter]' (or pip install voila)")
    stopper = _Stopper()
    with tempfile.TemporaryDirectory(prefix="omnilab-ui-") as tmp, stopper.installed():
        command_line = voila_command(write_app_notebook(tmp), port, idle_kernel_seconds=idle_kernel_seconds)
        # Voila gets its own session: a terminal's Ctrl-C reaches this process only, and every signal is
        # forwarded once, from here, so the shutdown below runs the same way whoever sent it.
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            command_line, cwd=tmp, env={**os.environ, **env}, start_new_session=True
        )
        if ready_message:
            log.info("voila started (pid %d) on http://127.0.0.1:%d/", proc.pid, port)
        stopper.watch(proc)
        code = proc.wait()
        stopper.finish()
    return 0 if stopper.signals else code


class _Stopper:
    """Signal handlers that stop Voila: the first signal asks it to shut down (it stops its kernels), a
    second one kills it; afterwards, :meth:`finish` ends any process Voila started that still runs."""

    SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.signals: list[int] = []
        self.children: dict[int, psutil.Process] = {}

    def watch(self, proc: subprocess.Popen) -> None:
        """Stop ``proc`` on the next signal, or now if one came while it was starting."""
        self.proc = proc
        if self.signals:
            self._stop(proc)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():  # handlers live in the main thread only
            yield
            return
        previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signals.append(signum)
        if self.proc is not None:
            self._stop(self.proc)

    def _stop(self, proc: subprocess.Popen) -> None:
        try:
            for child in psutil.Process(proc.pid).children(recursive=True):
                self.children.setdefault(child.pid, child)
        except psutil.Error:  # Voila has already exited
            pass
        if proc.poll() is None:
            # Voila stops its loop on SIGTERM and shuts every kernel down; a second signal does not wait for it
            proc.send_signal(signal.SIGTERM if len(self.signals) == 1 else signal.SIGKILL)

    def finish(self, grace: float = 10.0) -> None:
        """Give what Voila started ``grace`` seconds to exit (kernels shut down on their own), then end it."""
        alive = [c for c in self.children.values() if _running(c)]
        _gone, alive = psutil.wait_procs(alive, timeout=grace)
        for child in alive:
            log.warning("ending %s (pid %d), still running after Voila stopped", child.name(), child.pid)
            with contextlib.suppress(psutil.Error):
                child.terminate()
        _gone, alive = psutil.wait_procs(alive, timeout=5)
        for child in alive:
            with contextlib.suppress(psutil.Error):
                child.kill()


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
