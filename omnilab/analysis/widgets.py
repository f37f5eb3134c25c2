"""Jupyter widgets over a lab: ``SearchUI`` (search memories) and ``ThresholdTuner`` (pick a threshold).

Each is a ``VBox`` with one ``update`` callback and an ``Output``; the logic lives in the plain functions
above them (``build_where``, ``run_search``, ``results_html``, ``tuned_marker_html``), which tests call
directly. Tests drive the widgets by setting ``.value`` and calling ``.click()``.
"""

from __future__ import annotations

import html
import logging
import math
import re
import time
from collections.abc import Sequence
from typing import Any

import ipywidgets as W
import pandas as pd

from omnilab import enums
from omnilab.analysis import tuning
from omnilab.errors import InvalidInput, OmnilabError

__all__ = ["SearchUI", "ThresholdTuner", "build_where", "run_search", "results_html", "query_terms",
           "highlight", "tuned_marker_html"]

log = logging.getLogger(__name__)

ALL = "(all)"
ANY = "(any)"
_STOP = frozenset("a an and are as at be by for from in is it of on or the to with".split())


# ----------------------------------------------------------------------------------------- logic
def build_where(agent: str | None = None, tags: str | Sequence[str] | None = None) -> dict[str, Any] | None:
    """A ``where`` filter: the agent (exact) and every tag (comma-separated string or list) contained."""
    parts: list[dict[str, Any]] = []
    if agent and agent != ANY:
        parts.append({"agent_id": agent})
    items = [t.strip() for t in (tags.split(",") if isinstance(tags, str) else tags or ())]
    parts += [{"tags": {"$contains": t}} for t in items if t]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def run_search(lab: Any, query: str, *, memory_type: str | None = None, k: int = 10, threshold: float | None = None,
               mode: str = "semantic", where: dict[str, Any] | None = None) -> tuple[pd.DataFrame, float]:
    """One search as the UI runs it; returns (results, seconds).

    ``semantic``: ``lab.search`` with the threshold (cosine >= t). ``hybrid``: ``lab.hybrid_search``; the
    fused score is not a cosine, so the threshold is not applied there.
    """
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("type a query first")
    if mode not in ("semantic", "hybrid"):
        raise InvalidInput(f"mode must be 'semantic' or 'hybrid', got {mode!r}")
    mtype = None if memory_type in (None, ALL) else memory_type
    started = time.perf_counter()
    if mode == "hybrid":
        frame = lab.hybrid_search(query, memory_type=mtype, k=k, where=where)
    else:
        frame = lab.search(query, memory_type=mtype, k=k, threshold=threshold, where=where)
    return frame, time.perf_counter() - started


def query_terms(query: str) -> list[str]:
    """Words of the query worth highlighting (lower-cased, 3+ characters or digits, no stop words)."""
    words = re.findall(r"[A-Za-z0-9_]+", query.lower())
    return list(dict.fromkeys(w for w in words if (len(w) >= 3 or w.isdigit()) and w not in _STOP))


def highlight(text: str, terms: Sequence[str], *, width: int = 320) -> str:
    """HTML-escaped snippet of ``text`` around the first term, every term wrapped in ``<mark>``."""
    flat = " ".join(str(text).split())
    alternatives = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})", re.I) if terms else None  # word starts only
    start = 0
    if pattern is not None:
        m = pattern.search(flat)
        if m and m.start() > width // 3:
            start = m.start() - width // 3
    snippet = flat[start:start + width]
    prefix, suffix = ("…" if start else ""), ("…" if start + width < len(flat) else "")
    if pattern is None:
        return prefix + html.escape(snippet) + suffix
    out, pos = [], 0
    for m in pattern.finditer(snippet):
        out.append(html.escape(snippet[pos:m.start()]))
        out.append(f"<mark>{html.escape(m.group(0))}</mark>")
        pos = m.end()
    out.append(html.escape(snippet[pos:]))
    return prefix + "".join(out) + suffix


def _label(meta: Any) -> str:
    if isinstance(meta, dict):
        return str(meta.get("function_name") or meta.get("module") or meta.get("task_id") or "")
    return ""


def results_html(frame: pd.DataFrame, query: str, *, seconds: float | None = None) -> str:
    """Results as an HTML table (class ``omnilab-results``): rank, score, type, agent, where, highlighted text."""
    took = f" in {seconds * 1000:.1f} ms" if seconds is not None else ""
    if frame.empty:
        return f"<p class='omnilab-empty'>no matching memories{took}</p>"
    terms = query_terms(query)
    extra = "vector_score" in frame.columns
    head = "<th>#</th><th>score</th>" + ("<th>cosine</th><th>keyword</th>" if extra else "") + \
        "<th>type</th><th>agent</th><th>source</th><th>memory</th>"
    rows = []
    for r in frame.itertuples():
        scores = f"<td>{r.score:.3f}</td>" + (f"<td>{r.vector_score:.3f}</td><td>{r.keyword_score:.3f}</td>"
                                              if extra else "")
        rows.append(
            f"<tr data-memory-id='{html.escape(str(r.memory_id))}'><td>{r.rank}</td>{scores}"
            f"<td>{html.escape(str(r.memory_type))}</td><td>{html.escape(str(r.agent_id or ''))}</td>"
            f"<td><code>{html.escape(_label(r.metadata))}</code></td>"
            f"<td style='text-align:left'>{highlight(str(r.content), terms)}</td></tr>")
    return (f"<p class='omnilab-summary'>{len(frame)} result(s){took}</p>"
            f"<table class='omnilab-results'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def tuned_marker_html(tuned: float | None, lo: float = 0.0, hi: float = 1.0, *, embedder: str = "") -> str:
    """A small scale with a mark at the tuned threshold (or a note that none is saved)."""
    if tuned is None:
        return f"<span class='omnilab-tuned'>no tuned threshold saved for this type / {html.escape(embedder)}</span>"
    pct = 100.0 * min(max((tuned - lo) / (hi - lo), 0.0), 1.0)
    return (f"<div class='omnilab-tuned' title='tuned threshold' style='width:300px'>"
            f"<div style='position:relative;height:8px;background:#eee;border-radius:4px'>"
            f"<div style='position:absolute;left:{pct:.1f}%;top:-3px;width:3px;height:14px;background:#d62728'>"
            f"</div></div><small>tuned: <b>{tuned:.3f}</b> ({html.escape(embedder)})</small></div>")


# ---------------------------------------------------------------------------------------- widgets
class SearchUI(W.VBox):
    """Search a lab's memories: query, type, threshold (tuned value marked), k, agent/tag filters, mode."""

    def __init__(self, lab: Any, *, memory_type: str | None = "code", k: int = 10) -> None:
        self.lab = lab
        present = lab.memory.stats()["per_type"]
        types = [t for t in enums.values(enums.MemoryType) if t in present] or enums.values(enums.MemoryType)
        agents = lab.sql("SELECT DISTINCT agent_id FROM memory_entries WHERE agent_id IS NOT NULL "
                         "ORDER BY agent_id")["agent_id"].tolist()
        self.query = W.Text(placeholder="what are you looking for?", description="query",
                            layout=W.Layout(width="520px"), continuous_update=False)
        self.memory_type = W.Dropdown(options=[ALL, *types], value=memory_type if memory_type in types else ALL,
                                      description="type")
        self.threshold = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.01, readout_format=".2f",
                                       description="threshold", continuous_update=False)
        self.tuned = W.HTML()
        self.k = W.BoundedIntText(value=k, min=1, max=200, description="k", layout=W.Layout(width="160px"))
        self.agent = W.Dropdown(options=[ANY, *agents], value=ANY, description="agent")
        self.tags = W.Text(placeholder="tag1, tag2", description="tags", layout=W.Layout(width="300px"))
        self.mode = W.ToggleButtons(options=["semantic", "hybrid"], value="semantic", description="mode")
        self.button = W.Button(description="search", button_style="primary", icon="search")
        self.latency = W.HTML()
        self.results = W.HTML()
        self.output = W.Output()
        self.frame: pd.DataFrame = pd.DataFrame()
        self.button.on_click(self.update)
        self.query.observe(self._on_submit, names="value")
        self.memory_type.observe(self._on_type, names="value")
        self.mode.observe(self._on_mode, names="value")
        self._on_type()
        super().__init__([
            W.HBox([self.query, self.button]),
            W.HBox([self.memory_type, self.mode]),
            W.HBox([self.threshold, self.tuned]),
            W.HBox([self.k, self.agent, self.tags]),
            self.latency, self.results, self.output,
        ])
        self.add_class("omnilab-search-ui")

    def _on_submit(self, change: dict[str, Any]) -> None:
        if change["new"].strip():  # Enter (or leaving the box) in the query field searches
            self.update()

    def _on_mode(self, change: dict[str, Any] | None = None) -> None:
        self.threshold.disabled = self.mode.value == "hybrid"  # fused scores are not cosines

    def _on_type(self, change: dict[str, Any] | None = None) -> None:
        """Show (and pre-select) the tuned threshold of the chosen type for the lab's embedder."""
        name = self.lab.memory.embedder.name
        tuned = tuning.get_threshold(self.lab, self.memory_type.value) if self.memory_type.value != ALL else None
        self.tuned.value = tuned_marker_html(tuned, self.threshold.min, self.threshold.max, embedder=name)
        self.tuned_value = tuned
        self.threshold.value = tuned if tuned is not None else 0.0

    def update(self, *_: Any) -> None:
        """Run the search with the current settings and show the results (errors go to the Output)."""
        self.output.clear_output()
        threshold = self.threshold.value if self.threshold.value > 0 else None  # 0 means "no threshold"
        try:
            frame, seconds = run_search(
                self.lab, self.query.value, memory_type=self.memory_type.value, k=int(self.k.value),
                threshold=threshold, mode=self.mode.value, where=build_where(self.agent.value, self.tags.value))
        except OmnilabError as exc:
            self.frame = pd.DataFrame()
            self.results.value = f"<p class='omnilab-error' style='color:#b00'>{html.escape(str(exc))}</p>"
            self.latency.value = ""
            self.output.append_stdout(f"search failed: {exc}\n")
            log.info("search failed: %s", exc)
            return
        self.frame = frame
        self.seconds = seconds
        self.latency.value = f"<small class='omnilab-latency'>{seconds * 1000:.1f} ms</small>"
        self.results.value = results_html(frame, self.query.value, seconds=seconds)


class ThresholdTuner(W.VBox):
    """A threshold slider over a tuned curve, showing the live precision/recall/F1 point; "save" stores it."""

    def __init__(self, lab: Any, labels: Any, *, memory_type: Any = "code", k: int = 10,
                 result: tuning.TuningResult | None = None, plot: bool = True) -> None:
        self.lab = lab
        self.result = result if result is not None else tuning.tune(lab, labels, memory_type=memory_type, k=k)
        lo = float(min(self.result.curve["threshold"].min(), self.result.threshold)) if len(self.result.curve) else 0.0
        self.slider = W.FloatSlider(value=round(self.result.threshold, 3), min=math.floor(lo * 20) / 20, max=1.0,
                                    step=0.005, readout_format=".3f", description="threshold",
                                    continuous_update=False, layout=W.Layout(width="480px"))
        self.readout = W.HTML()
        self.save_button = W.Button(description="save threshold", icon="save")
        self.saved = W.HTML()
        self.figure = W.Image(format="png")
        self.output = W.Output()
        self.plot = plot
        self.point: dict[str, float] = {}
        self.slider.observe(self.update, names="value")
        self.save_button.on_click(self._save)
        super().__init__([W.HBox([self.slider, self.save_button]), self.readout, self.saved, self.figure,
                          self.output])
        self.add_class("omnilab-threshold-tuner")
        self.update()

    def update(self, *_: Any) -> None:
        """Recompute the point at the slider's threshold and redraw."""
        t = float(self.slider.value)
        self.point = self.result.at(t)
        p = self.point
        fmt = tuning._fmt
        self.readout.value = (f"<span class='omnilab-point'>threshold {t:.3f}: precision {fmt(p['precision'])}, "
                              f"recall {fmt(p['recall'])}, F1 {fmt(p['f1'])} ({p['retrieved']} hits); "
                              f"tuned {self.result.threshold:.3f} → F1 {self.result.f1:.3f}</span>")
        if self.plot:
            self._draw(t)

    def _draw(self, t: float) -> None:
        import io

        fig = tuning.plot_curves(self.result)
        ax_pr, ax_f1 = fig.axes
        p = self.point
        if not math.isnan(p["precision"]):
            ax_pr.plot([p["recall"]], [p["precision"]], "s", color="black", ms=8, label=f"t = {t:.3f}")
        ax_f1.axvline(t, color="black", lw=1)
        ax_f1.plot([t], [p["f1"]], "s", color="black", ms=8)
        ax_pr.legend(fontsize=8)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)  # a PNG in an Image widget: works in Voila and without a kernel
        self.figure.value = buf.getvalue()

    def _save(self, *_: Any) -> None:
        res = self.result
        try:
            row = tuning.save_threshold(self.lab, float(self.slider.value), memory_type=res.memory_type,
                                        embedder=res.embedder)
        except OmnilabError as exc:
            self.output.append_stdout(f"not saved: {exc}\n")
            return
        self.saved.value = f"<small>saved {row['threshold']:.3f} for {row['memory_type']} / {row['embedder']}</small>"
