"""`omnilab ui` end to end: Voila serves the search UI for a sample lab, headless Chromium types a query,
clicks search and finds the expected memory in the results table."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import omnilab
from omnilab.analysis.evaluation import first_sentence

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"omnilab ui exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - localhost
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout}s")


@pytest.fixture
def ui_lab(tmp_path):
    """A sample lab (hashing) and a query whose best code memory is known: (path, query, memory_id, function)."""
    path = tmp_path / "lab"
    with omnilab.open(path, embedder="hashing") as lab:
        lab.load_sample("small")
        lab.memory.reconcile()
        code = lab.memories("code")
        for mid, meta in zip(code["id"], code["metadata"]):
            from omnilab.sample.stdlib import stdlib_functions

            doc = next((f["docstring"] for f in stdlib_functions()
                        if f["module"] == meta["module"] and f["function_name"] == meta["function_name"]), None)
            if not doc or len(first_sentence(doc).split()) < 6:
                continue
            query = first_sentence(doc)
            top = lab.search(query, memory_type="code", k=1)
            if top["memory_id"].iloc[0] == mid:  # the function its own docstring describes ranks first
                return path, query, mid, meta["function_name"]
    pytest.fail("no sample function is found by its own docstring")


def test_search_in_the_browser(ui_lab):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    path, query, memory_id, function_name = ui_lab
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "omnilab.cli", "ui", "--lab", str(path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "OMNILAB_EMBEDDER": "hashing"})
    try:
        _wait_http(f"http://127.0.0.1:{port}/", proc)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/", timeout=120_000)
                box = page.locator(".omnilab-search-ui input[type=text]").first
                box.wait_for(timeout=120_000)  # the kernel ran the notebook and the widgets rendered
                box.fill(query)
                page.get_by_role("button", name="search").click()
                table = page.locator("table.omnilab-results")
                table.wait_for(timeout=60_000)
                row = table.locator(f"tr[data-memory-id='{memory_id}']")
                row.wait_for(timeout=10_000)
                assert function_name in row.inner_text()
                assert table.locator("tbody tr").count() == 10
                assert "ms" in page.locator(".omnilab-latency").inner_text()
                assert row.locator("mark").count() > 0  # query terms highlighted
            finally:
                browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: Voila and its kernels shut down
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    text = out.decode(errors="replace")
    assert f"http://127.0.0.1:{port}/" in text and "search UI stopped" in text
    assert proc.returncode == 0
