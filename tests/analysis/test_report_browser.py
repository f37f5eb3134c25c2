"""The written report in headless Chromium, offline: the "What changed" section renders first with the
seeded regression and its q-value, a screenshot of it is a real PNG, and clicking a header sorts a table."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_report import NOW, regression_lab  # noqa: F401 - the report tests' seeded regression (a fixture)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium (apt-get install chromium)"),
]


@pytest.fixture
def report_path(regression_lab, tmp_path) -> Path:  # noqa: F811 - the imported fixture, requested by name
    """A report over a lab where one agent fell from 90 % to 60 % last week and another held 85 %."""
    return regression_lab.report(tmp_path / "report.html", days=30, now=NOW)


def test_what_changed_renders_in_the_browser(report_path, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    shot = tmp_path / "what-changed.png"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=True)  # the report must not need the network
            page = context.new_page()
            failed: list[str] = []
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.goto(report_path.as_uri())
            section = page.locator("#what-changed")
            section.wait_for(state="visible", timeout=30_000)
            assert page.locator("h2").first.inner_text() == "What changed"  # the report's first section
            regression = section.locator("li.regression")
            assert regression.count() == 1
            text = regression.inner_text()
            assert "falling" in text and "90.0%" in text and "60.0%" in text and "q =" in text
            assert "steady" not in section.locator("ul.changes").inner_text()
            box = section.bounding_box()
            assert box and box["width"] > 200 and box["height"] > 50  # laid out, not collapsed
            section.screenshot(path=str(shot))

            # sortable: the agent summary by success rate (falling 75 %, steady 85 %), up then down
            table = page.locator("h2:has-text('Performance by agent') + p + table")
            header = table.locator("th", has_text="Success rate")

            def first_agent() -> str:
                return table.locator("tbody tr").first.locator("td").first.inner_text()

            header.click()
            assert header.get_attribute("aria-sort") == "ascending" and first_agent() == "falling"
            header.click()
            assert header.get_attribute("aria-sort") == "descending" and first_agent() == "steady"
            assert failed == []
        finally:
            browser.close()
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
