"""The HTML report: one self-contained file that parses, embeds its charts, and lists every agent."""

from __future__ import annotations

import base64
import datetime as dt
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

import omnilab
from omnilab.cli import main
from omnilab.errors import InvalidInput
from omnilab.sample.platform import build_platform_sqlite


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.cells: list[str] = []
        self.headers: list[str] = []
        self.h2: list[str] = []
        self.td_classes: dict[str, set[str]] = {}
        self._td_class = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.stack.append(tag)
        if tag == "td":
            self._td_class = attrs.get("class", "")
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("src", "href"):
            value = attrs.get(key)
            if value and not value.startswith("data:") and not value.startswith("#"):
                self.external.append(value)

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)
        if self.stack and self.stack[-1] == "td":
            self.cells.append(data.strip())
            self.td_classes.setdefault(data.strip(), set()).add(self._td_class)
        if self.stack and self.stack[-1] == "th":
            self.headers.append(data.strip())
        if self.stack and self.stack[-1] == "h2":
            self.h2.append(data.strip())


def parse(path) -> _Collect:
    parser = _Collect()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def check_report(lab, path, days: int) -> _Collect:
    doc = parse(path)
    assert len(doc.images) == 8
    for src in doc.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert doc.external == []  # nothing to fetch: opens offline
    text = " ".join(doc.text)
    assert "Data window" in text and "Generated at" in text and f"{days} days" in text
    assert str(lab.path) in text
    for agent_id, name in lab.agents()[["id", "name"]].itertuples(index=False):
        assert agent_id in doc.cells, f"agent {agent_id} missing from the report"
        assert doc.td_classes[agent_id] == {"text"}  # text left-aligned
    assert doc.h2[0] == "What changed"  # the first section
    assert "total_tasks" not in doc.headers and "Runs" in doc.headers  # readable headers
    assert "sortable" in path.read_text(encoding="utf-8") and "<script>" in path.read_text(encoding="utf-8")
    return doc


def test_report_on_the_sample(sample_lab_path, tmp_path):
    with omnilab.open(sample_lab_path, embedder="hashing") as lab:
        path = lab.report(tmp_path / "report.html", days=30)
        assert path == (tmp_path / "report.html").resolve()
        doc = check_report(lab, path, 30)
        assert len(lab.agents()) == 29
        assert "Best agent" in " ".join(doc.text)


def test_report_both_backends_hides_password(data_lab, now, tmp_path):
    path = data_lab.report(tmp_path / "r.html", days=7, now=now)
    check_report(data_lab, path, 7)
    html_text = path.read_text(encoding="utf-8")
    assert "2026-03-08 12:00:00" in html_text and "2026-03-15 12:00:00" in html_text  # the window
    if data_lab.backend == "postgresql":
        assert "postgresql" in html_text


def test_report_hides_database_password(tmp_path):
    from omnilab.analysis.report import render_report

    with omnilab.open(tmp_path / "lab", embedder="hashing") as lab:
        lab.database_url = "postgresql+psycopg://user:s3cret@db.example:5432/x"  # shown, never connected
        text = render_report(lab, 7)
    assert "s3cret" not in text and "***" in text


def test_report_bad_paths(data_lab, tmp_path):
    with pytest.raises(InvalidInput):
        data_lab.report(tmp_path, days=7)  # a directory
    with pytest.raises(InvalidInput):
        data_lab.report(tmp_path / "missing" / "r.html")
    with pytest.raises(InvalidInput):
        data_lab.report(tmp_path / "r.html", days=0)
    # nothing half-written: no report and no temporary file left behind
    assert not list(tmp_path.glob("*.html")) and not list(tmp_path.glob(".report-*"))


def test_cli_report(sample_lab_path, tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert main(["report", "--lab", sample_lab_path, "-o", str(out), "--days", "30"]) == 0
    assert "wrote" in capsys.readouterr().out
    with omnilab.open(sample_lab_path, embedder="hashing") as lab:
        check_report(lab, out, 30)
    assert main(["report", "--lab", sample_lab_path, "-o", str(out), "--days", "-3"]) == 2
    assert "days must be" in capsys.readouterr().err


def _card(html_text: str, label: str) -> str:
    match = re.search(r'<div class="card"><b>([^<]*)</b><span>' + re.escape(label) + "</span>", html_text)
    assert match, label
    return match.group(1)


def test_report_cards_match_pandas(data_lab, now, tmp_path):
    """The headline numbers against the raw runs: NULL outcomes out of the rate, NULL tokens as 0."""
    html_text = data_lab.report(tmp_path / "cards.html", days=30, now=now).read_text(encoding="utf-8")
    runs = data_lab.table("agent_performance")
    runs = runs[(runs["timestamp"] >= pd.Timestamp(now) - pd.Timedelta(days=30)) & (runs["timestamp"] <= now)]
    success = runs["success"].astype("boolean")
    wins, known = int((success == True).sum()), int(success.notna().sum())  # noqa: E712
    assert _card(html_text, "runs in the window") == f"{len(runs):,}"
    assert _card(html_text, "success rate") == f"{100 * wins / known:.1f}%"
    assert _card(html_text, "tokens used") == f"{int(runs['tokens_used'].fillna(0).sum()):,}"
    assert "system_name" in html_text and ">system<" not in html_text


def test_report_on_an_attached_platform_database(tmp_path):
    """A report over the platform's own database, attached read-only: written, and the database untouched."""
    fixed = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.timezone.utc)
    db = tmp_path / "omnidev.db"
    written = build_platform_sqlite(db, now=fixed, n_runs=300)
    before = db.read_bytes()
    with omnilab.open(tmp_path / "lab", database_url=f"sqlite:///{db}", read_only=True, embedder="hashing") as lab:
        path = lab.report(tmp_path / "platform.html", days=30, now=fixed)
        doc = check_report(lab, path, 30)
    assert db.read_bytes() == before
    runs = [
        r
        for r in written["agent_performance"]
        if fixed - dt.timedelta(days=30)
        <= dt.datetime.fromisoformat(r["timestamp"]).replace(tzinfo=dt.timezone.utc)
        <= fixed
    ]
    html_text = path.read_text(encoding="utf-8")
    assert _card(html_text, "runs in the window") == f"{len(runs):,}"
    assert _card(html_text, "success rate") == f"{100 * sum(r['success'] for r in runs) / len(runs):.1f}%"
    assert {"The Agency", "OBELISK", "MeistroCraft"} <= set(doc.cells)
    assert "Name" in doc.headers  # the platform's names differ from its ids: both columns stay


def test_report_on_the_sample_is_polished(sample_lab_path, tmp_path):
    """Thousands separators, numbers right-aligned, no name column repeating the agent id."""
    with omnilab.open(sample_lab_path, embedder="hashing") as lab:
        path = lab.report(tmp_path / "polish.html", days=30)
        summary = lab.performance_summary(30)
    doc = parse(path)
    assert (summary["agent_id"] == summary["name"]).all()  # the sample's ids are its names ...
    assert "Name" not in doc.headers and "Agent" in doc.headers  # ... so one identifier column, not two
    tokens = f"{int(summary['total_tokens'].max()):,}"
    assert "," in tokens and tokens in doc.cells and doc.td_classes[tokens] == {"num"}


@pytest.fixture
def regression_lab(lab):
    """One agent drops from 90 % to 60 % of 200 runs in the last week; another stays at 85 %."""
    lab.insert(
        "agents", [{"id": a, "name": a, "agent_type": "coder", "system_name": "S"} for a in ("falling", "steady")]
    )
    rows = []
    for agent, before, after in (("falling", 180, 120), ("steady", 170, 170)):
        for week, wins in ((2, before), (1, after)):
            start = NOW - dt.timedelta(days=7 * week)
            rows += [
                {
                    "agent_id": agent,
                    "success": i < wins,
                    "execution_time": 1.0 + i % 7,
                    "timestamp": start + dt.timedelta(minutes=30 * i + 1),
                }
                for i in range(200)
            ]
    lab.insert("agent_performance", rows)
    return lab


NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.timezone.utc)


def test_what_changed_lists_the_regression_with_q_values(regression_lab, tmp_path):
    path = regression_lab.report(tmp_path / "changed.html", days=30, now=NOW)
    html_text = path.read_text(encoding="utf-8")
    section = html_text[html_text.index('<section id="what-changed">') : html_text.index("</section>")]
    changes = regression_lab.compare_windows(7, now=NOW).set_index("agent_id")
    q = changes.loc["falling", "q_value"]
    assert "Regression: falling" in section and "90.0%" in section and "60.0%" in section
    assert (f"q = {q:.4f}" if q >= 1e-4 else "q = &lt; 0.0001") in section
    assert "steady" not in section.split("<details>")[0]  # unchanged: not listed among the changes
    assert changes.loc["steady", "verdict"] == "no significant change"
    assert html_text.index("What changed") < html_text.index("Charts")


def test_report_on_an_empty_lab(lab, tmp_path):
    path = lab.report(tmp_path / "empty.html", days=7)
    doc = parse(path)
    assert len(doc.images) == 8 and doc.h2[0] == "What changed"
    text = " ".join(doc.text)
    assert "Not enough data" in text and "No agents in this lab." in text and "No API calls in this window." in text
