"""`omnilab ui` end to end: Voila serves the search UI for a sample lab, headless Chromium searches every type
by default, picks `code`, types a query, clicks search and finds the expected memory; the tuned threshold is
marked on the slider and a tuned threshold that hides results says so. A closed page's kernel is shut down,
a kernel no page connects to is culled when idle, and SIGINT (Ctrl-C) or SIGTERM (`kill PID`) stops Voila
and every kernel: no process is left.

Every wait is for a condition (a port that answers, an element, a process count, an exit), never a sleep.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

import omnilab
from omnilab.analysis.evaluation import first_sentence

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
IDLE = 20  # --kernel-idle-timeout: long enough for a loaded machine's page to connect after it rendered

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(condition: Callable[[], object], timeout: float, what: str, proc: subprocess.Popen | None = None):
    """Poll ``condition`` until it returns something true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"omnilab ui exited early with code {proc.returncode}: {proc.stdout.read()}")
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout}s")


def _port_open(port: int) -> bool:
    """The server listens (a TCP connect, not an HTTP GET: a GET of the page would start a kernel)."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _kernels(pid: int) -> list[psutil.Process]:
    out = []
    for p in _descendants(pid):
        try:
            if "ipykernel_launcher" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:  # ended while we looked
            continue
    return out


@pytest.fixture
def ui_lab(tmp_path):
    """A sample lab (hashing) and a query whose best code memory is known: (path, query, memory_id, function).

    Saved thresholds: `code` a little below the query's 10th hit (nothing hidden), `knowledge` above
    every cosine (a tuned threshold that hides every result)."""
    path = tmp_path / "lab"
    with omnilab.open(path, embedder="hashing") as lab:
        lab.load_sample("small")
        lab.memory.reconcile()
        code = lab.memories("code")
        from omnilab.sample.stdlib import stdlib_functions

        docs = {(f["module"], f["function_name"]): f["docstring"] for f in stdlib_functions()}
        for mid, meta in zip(code["id"], code["metadata"]):
            doc = docs.get((meta["module"], meta["function_name"]))
            if not doc or len(first_sentence(doc).split()) < 6:
                continue
            query = first_sentence(doc)
            top = lab.search(query, memory_type="code", k=10)
            if top["memory_id"].iloc[0] == mid and top["score"].iloc[-1] > 0.05:
                lab.save_threshold(round(float(top["score"].iloc[-1]) - 0.02, 3), memory_type="code")
                lab.save_threshold(0.99, memory_type="knowledge")
                return path, query, mid, meta["function_name"]
    pytest.fail("no sample function is found by its own docstring")


_SLIDER_GEOMETRY = """() => {
  const slider = document.querySelector('.omnilab-search-ui [class*="omnilab-threshold-"]');
  const base = slider.querySelector('.noUi-base'), handle = slider.querySelector('.noUi-handle');
  const b = base.getBoundingClientRect(), h = handle.getBoundingClientRect(), tick = getComputedStyle(base, '::after');
  return {handle: h.left + h.width / 2, tick: b.left + parseFloat(tick.left) + parseFloat(tick.width) / 2,
          width: b.width, color: tick.backgroundColor};
}"""

_MARKS_ARE_WHOLE_WORDS = """() => Array.from(document.querySelectorAll('table.omnilab-results mark')).every(m => {
  const before = m.previousSibling ? m.previousSibling.textContent.slice(-1) : '';
  const after = m.nextSibling ? m.nextSibling.textContent.slice(0, 1) : '';
  return !/[A-Za-z0-9]/.test(before) && !/[A-Za-z0-9]/.test(after);
})"""


def _open_app(page, port: int):
    """Load the app and wait until the kernel ran the notebook and the widgets rendered; the query box."""
    page.goto(f"http://127.0.0.1:{port}/", timeout=180_000)
    box = page.locator(".omnilab-search-ui input[type=text]").first
    try:
        box.wait_for(timeout=180_000)
    except Exception as exc:  # playwright's TimeoutError: say what the page shows instead (a traceback?)
        raise AssertionError(f"the search UI did not render: {page.inner_text('body')[:3000]}") from exc
    return box


def _check_the_page(page, port: int, query: str, memory_id: str, function_name: str) -> None:
    box = _open_app(page, port)
    memory_type = page.locator(".omnilab-search-ui .widget-dropdown select").first
    assert memory_type.locator("option:checked").inner_text() == "(all)"  # every type by default
    memory_type.select_option(label="code")
    tuned = page.locator(".omnilab-tuned[data-tuned]")
    tuned.wait_for(timeout=30_000)
    # the tuned threshold is preselected and its red tick sits under the slider's handle
    geometry = _wait_for(
        lambda: (g := page.evaluate(_SLIDER_GEOMETRY)) and abs(g["handle"] - g["tick"]) < 2 and g,
        30,
        "the tuned tick under the slider's handle",
    )
    assert geometry["width"] > 100 and geometry["color"] == "rgb(214, 39, 40)"

    box.fill(query)
    page.get_by_role("button", name="search").click()
    table = page.locator("table.omnilab-results")
    table.wait_for(timeout=60_000)
    row = table.locator(f"tr[data-memory-id='{memory_id}']")
    row.wait_for(timeout=10_000)
    assert function_name in row.inner_text()
    assert table.locator("tbody tr").count() == 10  # the tuned threshold hides none of these
    text = page.locator(".omnilab-search-ui").inner_text()
    assert len(re.findall(r"\d ms\b", text)) == 1  # the latency, shown once
    assert row.locator("mark").count() > 0 and page.evaluate(_MARKS_ARE_WHOLE_WORDS)
    agents = table.locator("td.omnilab-agent").all_inner_texts()
    assert len(agents) == 10 and all(a.strip() and a.strip() != "nan" for a in agents)  # a name or a dash

    # a tuned threshold that hides every result says so, and how many it hid
    memory_type.select_option(label="knowledge")
    _wait_for(lambda: "0.990" in tuned.inner_text(), 30, "the knowledge threshold")
    page.get_by_role("button", name="search").click()
    cut = page.locator(".omnilab-cut")
    cut.wait_for(timeout=60_000)
    assert re.search(r"the tuned threshold 0\.990 for knowledge / \S+ hid \d+ of the top 10", cut.inner_text())
    assert "no result reaches 0.990" in page.locator(".omnilab-empty").inner_text()


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_search_in_the_browser_then_stop(ui_lab, stop):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    path, query, memory_id, function_name = ui_lab
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "omnilab.cli",
            "ui",
            "--lab",
            str(path),
            "--port",
            str(port),
            "--kernel-idle-timeout",
            str(IDLE),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "OMNILAB_EMBEDDER": "hashing"},
    )
    started: dict[int, psutil.Process] = {}
    try:
        _wait_for(lambda: _port_open(port), 120, f"port {port} did not open", proc)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                _check_the_page(page, port, query, memory_id, function_name)
                # a second page has its own kernel; leaving it sends the beacon that shuts that kernel down
                other = browser.new_page()
                _open_app(other, port)
                assert len(_kernels(proc.pid)) == 2
                other.goto("about:blank")
                _wait_for(lambda: len(_kernels(proc.pid)) == 1, 60, "the closed page's kernel was not shut down")
                # a page that never connects (a plain GET) leaves a kernel no beacon stops: it is culled when idle
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=180) as resp:  # noqa: S310
                    assert b"omnilab" in resp.read()
                assert len(_kernels(proc.pid)) == 2
                _wait_for(lambda: len(_kernels(proc.pid)) == 1, 4 * IDLE, "the idle kernel was not culled")
                assert page.locator(".omnilab-search-ui").is_visible()  # the open page keeps its kernel
                started = {c.pid: c for c in _descendants(proc.pid)}
                assert any("voila" in " ".join(c.cmdline()) for c in started.values())
                # stop with the browser still connected, as a user would
                if stop == "SIGINT":
                    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the foreground group
                else:
                    os.kill(proc.pid, signal.SIGTERM)  # what `kill PID` and process managers do
                out, _ = proc.communicate(timeout=90)
            finally:
                browser.close()
    finally:
        if proc.poll() is None:  # the test failed before the stop: clean up after it
            for child in _descendants(proc.pid):
                child.kill()
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/" in out and "search UI stopped" in out
    _gone, alive = psutil.wait_procs(list(started.values()), timeout=30)
    assert not alive, f"left running after {stop}: {[(p.pid, p.cmdline()) for p in alive]}"
