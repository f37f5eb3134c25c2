"""Jupyter widgets over a lab: ``SearchUI`` (search memories) and ``ThresholdTuner`` (pick a threshold).

Each is a ``VBox`` with one ``update`` callback and an ``Output``; the logic lives in the plain functions
above them (``build_where``, ``search_once``, ``results_html``, ``status_html``, ``tuned_marker_html``), which
tests call directly. Tests drive the widgets by setting ``.value`` and calling ``.click()``.
"""

from __future__ import annotations

import html
import itertools
import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as W
import pandas as pd

from omnilab import enums
from omnilab.analysis import plots, tuning
from omnilab.errors import InvalidInput, OmnilabError

__all__ = [
    "SearchUI",
    "ThresholdTuner",
    "SearchOutcome",
    "build_where",
    "search_once",
    "run_search",
    "results_html",
    "status_html",
    "query_terms",
    "highlight",
    "tuned_marker_html",
    "format_score",
]

log = logging.getLogger(__name__)

ALL = "(all)"
ANY = "(any)"
_STOP = frozenset("a an and are as at be by for from in is it of on or the to with".split())
_WORD = "A-Za-z0-9"  # a word is letters and digits: "_" and punctuation separate words (parse_date: parse, date)
_ids = itertools.count(1)


# ----------------------------------------------------------------------------------------- logic
def format_score(x: float | None) -> str:
    """A score, precision or F1 with three decimals; "—" when there is none (None or NaN)."""
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


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


@dataclass
class SearchOutcome:
    """One search as the UI ran it: the rows shown, and what the threshold hid from the top k.

    ``cut``: how many of the top-k hits scored below ``threshold`` (``best_cut``: the best of them);
    ``column``: the score the threshold applied to (``score``: cosine; ``vector_score`` in hybrid mode).
    """

    frame: pd.DataFrame
    seconds: float
    threshold: float | None = None
    cut: int = 0
    best_cut: float | None = None
    column: str = "score"


def search_once(
    lab: Any,
    query: str,
    *,
    memory_type: str | None = None,
    k: int = 10,
    threshold: float | None = None,
    mode: str = "semantic",
    where: dict[str, Any] | None = None,
) -> SearchOutcome:
    """Search the top ``k`` and keep the hits with cosine >= ``threshold``, counting the ones it hides.

    ``semantic``: ``lab.search`` (the same rows as ``lab.search(..., threshold=t)``). ``hybrid``:
    ``lab.hybrid_search``, ranked by the fused score; the threshold applies to each hit's cosine
    (``vector_score``), since the fused score is not a cosine.
    """
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("type a query first")
    if mode not in ("semantic", "hybrid"):
        raise InvalidInput(f"mode must be 'semantic' or 'hybrid', got {mode!r}")
    mtype = None if memory_type in (None, ALL) else memory_type
    started = time.perf_counter()
    if mode == "hybrid":
        frame, column = lab.hybrid_search(query, memory_type=mtype, k=k, where=where), "vector_score"
    else:
        frame, column = lab.search(query, memory_type=mtype, k=k, where=where), "score"
    seconds = time.perf_counter() - started
    if threshold is None or frame.empty:
        return SearchOutcome(frame, seconds, threshold, column=column)
    keep = frame[column] >= threshold
    hidden = frame.loc[~keep, column]
    return SearchOutcome(
        frame[keep].reset_index(drop=True),
        seconds,
        threshold,
        cut=len(hidden),
        best_cut=float(hidden.max()) if len(hidden) else None,
        column=column,
    )


def run_search(
    lab: Any,
    query: str,
    *,
    memory_type: str | None = None,
    k: int = 10,
    threshold: float | None = None,
    mode: str = "semantic",
    where: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, float]:
    """One search as the UI runs it; returns (results, seconds). See :func:`search_once`."""
    outcome = search_once(lab, query, memory_type=memory_type, k=k, threshold=threshold, mode=mode, where=where)
    return outcome.frame, outcome.seconds


def query_terms(query: str) -> list[str]:
    """Words of the query worth highlighting (lower-cased, 3+ characters or digits, no stop words)."""
    words = re.findall(rf"[{_WORD}]+", query.lower())
    return list(dict.fromkeys(w for w in words if (len(w) >= 3 or w.isdigit()) and w not in _STOP))


def highlight(text: str, terms: Sequence[str], *, width: int = 320) -> str:
    """HTML-escaped snippet of ``text`` around the first term, every whole-word term wrapped in ``<mark>``.

    Whole words only: "date" marks "date" and "parse_date", not "datetime" or "update"."""
    flat = " ".join(str(text).split())
    alternatives = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    pattern = re.compile(rf"(?<![{_WORD}])(?:{alternatives})(?![{_WORD}])", re.I) if terms else None
    start = 0
    if pattern is not None:
        m = pattern.search(flat)
        if m and m.start() > width // 3:
            start = m.start() - width // 3
    snippet = flat[start : start + width]
    prefix, suffix = ("…" if start else ""), ("…" if start + width < len(flat) else "")
    if pattern is None:
        return prefix + html.escape(snippet) + suffix
    out, pos = [], 0
    for m in pattern.finditer(snippet):
        out.append(html.escape(snippet[pos : m.start()]))
        out.append(f"<mark>{html.escape(m.group(0))}</mark>")
        pos = m.end()
    out.append(html.escape(snippet[pos:]))
    return prefix + "".join(out) + suffix


def _label(meta: Any) -> str:
    if isinstance(meta, dict):
        return str(meta.get("function_name") or meta.get("module") or meta.get("task_id") or "")
    return ""


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _agent_cell(agent_id: Any, agents: Mapping[str, str]) -> str:
    """The agent's name (its id on hover); a dash when the memory records no agent (agent_id is NULL)."""
    if _missing(agent_id) or str(agent_id) == "":
        return "<td class='omnilab-agent' title='no agent recorded for this memory'>—</td>"
    ident = str(agent_id)
    name = agents.get(ident, ident)
    return f"<td class='omnilab-agent' title='{html.escape(ident, quote=True)}'>{html.escape(name)}</td>"


def results_html(
    frame: pd.DataFrame,
    query: str,
    *,
    seconds: float | None = None,
    agents: Mapping[str, str] | None = None,
    summary: bool = True,
) -> str:
    """Results as an HTML table (class ``omnilab-results``): rank, score, type, agent, where, highlighted text.

    ``agents``: agent id -> name, to show names; ``summary``: a line with the count (and ``seconds``) first.
    """
    took = f" in {seconds * 1000:.1f} ms" if seconds is not None and summary else ""
    if frame.empty:
        return f"<p class='omnilab-empty'>no matching memories{took}</p>"
    terms = query_terms(query)
    names = agents or {}
    extra = "vector_score" in frame.columns
    head = (
        "<th>#</th><th>score</th>"
        + ("<th>cosine</th><th>keyword</th>" if extra else "")
        + "<th>type</th><th>agent</th><th>source</th><th>memory</th>"
    )
    rows = []
    for r in frame.itertuples():
        scores = f"<td>{r.score:.3f}</td>" + (
            f"<td>{r.vector_score:.3f}</td><td>{r.keyword_score:.3f}</td>" if extra else ""
        )
        rows.append(
            f"<tr data-memory-id='{html.escape(str(r.memory_id))}'><td>{r.rank}</td>{scores}"
            f"<td>{html.escape(str(r.memory_type))}</td>{_agent_cell(r.agent_id, names)}"
            f"<td><code>{html.escape(_label(r.metadata))}</code></td>"
            f"<td style='text-align:left'>{highlight(str(r.content), terms)}</td></tr>"
        )
    line = f"<p class='omnilab-summary'>{len(frame)} result(s){took}</p>" if summary else ""
    return f"{line}<table class='omnilab-results'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def status_html(outcome: SearchOutcome, *, k: int, tuned: float | None = None, tuned_for: str = "") -> str:
    """One line over the results: how many, how fast, and what the threshold hid from the top ``k`` (and
    whether it is the tuned one, so an empty page never looks like "nothing matches")."""
    n = len(outcome.frame)
    parts = [
        f"<small class='omnilab-latency'>{n} result{'' if n == 1 else 's'} in {outcome.seconds * 1000:.1f} ms</small>"
    ]
    if outcome.cut:
        t = outcome.threshold
        which = (
            "the tuned threshold"
            if tuned is not None and t is not None and math.isclose(t, tuned, abs_tol=5e-4)
            else "the threshold"
        )
        whose = f" for {html.escape(tuned_for)}" if which == "the tuned threshold" and tuned_for else ""
        on = "cosine" if outcome.column == "score" else "cosine (the vector part of each hybrid hit)"
        parts.append(
            f"<div class='omnilab-cut' style='color:#8a4b00'>{which} {format_score(t)}{whose} hid {outcome.cut} of "
            f"the top {k} (their {on} is below it; the best hidden one scores {format_score(outcome.best_cut)}): "
            f"lower the threshold to see them</div>"
        )
    return "".join(parts)


def tuned_marker_html(
    tuned: float | None, lo: float = 0.0, hi: float = 1.0, *, embedder: str = "", slider_class: str = ""
) -> str:
    """The tuned threshold as text, and as a red tick drawn on the track of the slider with CSS class
    ``slider_class`` (ipywidgets 8 / noUiSlider markup: Voila, JupyterLab, Notebook 7) at its value."""
    if tuned is None:
        return f"<span class='omnilab-tuned'>no tuned threshold saved for this type / {html.escape(embedder)}</span>"
    pct = 100.0 * min(max((tuned - lo) / (hi - lo), 0.0), 1.0)
    style = ""
    if slider_class:
        # the handle's centre sits at value% of .noUi-base, so a tick at the same percentage marks the value
        style = (
            f"<style>.{slider_class} .noUi-base::after {{content:'';position:absolute;"
            f"left:calc({pct:.2f}% - 1.5px);top:-5px;width:3px;height:calc(100% + 10px);background:#d62728;"
            f"z-index:5;pointer-events:none}}</style>"
        )
    return (
        f"{style}<span class='omnilab-tuned' data-tuned='{tuned:.6f}' data-pct='{pct:.2f}' "
        f"title='the red tick on the slider'><span style='color:#d62728'>▮</span> tuned "
        f"<b>{tuned:.3f}</b> ({html.escape(embedder)})</span>"
    )


# ---------------------------------------------------------------------------------------- widgets
class SearchUI(W.VBox):
    """Search a lab's memories: query, type (every type by default), threshold (tuned value marked on the
    slider), k, agent/tag filters, mode; a status line says how many results came in how long and how many
    the threshold hid."""

    def __init__(self, lab: Any, *, memory_type: str | None = None, k: int = 10) -> None:
        self.lab = lab
        present = lab.memory.stats()["per_type"]
        types = [t for t in enums.values(enums.MemoryType) if t in present] or enums.values(enums.MemoryType)
        self.agent_names = _agent_names(lab)
        agents = lab.sql("SELECT DISTINCT agent_id FROM memory_entries WHERE agent_id IS NOT NULL ORDER BY agent_id")[
            "agent_id"
        ].tolist()
        self.query = W.Text(
            placeholder="what are you looking for?",
            description="query",
            layout=W.Layout(width="520px"),
            continuous_update=False,
        )
        self.memory_type = W.Dropdown(
            options=[ALL, *types], value=memory_type if memory_type in types else ALL, description="type"
        )
        self.slider_class = f"omnilab-threshold-{next(_ids)}"
        self.threshold = W.FloatSlider(
            value=0.0,
            min=0.0,
            max=1.0,
            step=0.001,
            readout_format=".3f",
            description="threshold",
            continuous_update=False,
            layout=W.Layout(width="420px"),
        )
        self.threshold.add_class(self.slider_class)
        self.tuned = W.HTML()
        self.tuned_value: float | None = None
        self.k = W.BoundedIntText(value=k, min=1, max=200, description="k", layout=W.Layout(width="160px"))
        self.agent = W.Dropdown(
            options=[(ANY, ANY), *[(self._agent_label(a), a) for a in agents]], value=ANY, description="agent"
        )
        self.tags = W.Text(placeholder="tag1, tag2", description="tags", layout=W.Layout(width="300px"))
        self.mode = W.ToggleButtons(
            options=["semantic", "hybrid"],
            value="semantic",
            description="mode",
            tooltips=["rank by cosine", "rank by cosine + keywords (BM25); the threshold applies to the cosine"],
        )
        self.button = W.Button(description="search", button_style="primary", icon="search")
        self.latency = W.HTML()
        self.results = W.HTML()
        self.output = W.Output()
        self.frame: pd.DataFrame = pd.DataFrame()
        self.seconds = 0.0
        self.outcome: SearchOutcome | None = None
        self.button.on_click(self.update)
        self.query.observe(self._on_submit, names="value")
        self.memory_type.observe(self._on_type, names="value")
        self._on_type()
        super().__init__(
            [
                W.HBox([self.query, self.button]),
                W.HBox([self.memory_type, self.mode]),
                W.HBox([self.threshold, self.tuned]),
                W.HBox([self.k, self.agent, self.tags]),
                self.latency,
                self.results,
                self.output,
            ]
        )
        self.add_class("omnilab-search-ui")

    def _agent_label(self, agent_id: str) -> str:
        name = self.agent_names.get(agent_id, agent_id)
        return name if name == agent_id else f"{name} ({agent_id})"

    def _on_submit(self, change: dict[str, Any]) -> None:
        if change["new"].strip():  # Enter (or leaving the box) in the query field searches
            self.update()

    def _on_type(self, change: dict[str, Any] | None = None) -> None:
        """Show (and pre-select) the tuned threshold of the chosen type for the lab's embedder."""
        name = self.lab.memory.embedder.name
        tuned = tuning.get_threshold(self.lab, self.memory_type.value) if self.memory_type.value != ALL else None
        self.tuned.value = tuned_marker_html(
            tuned, self.threshold.min, self.threshold.max, embedder=name, slider_class=self.slider_class
        )
        self.tuned_value = tuned
        self.threshold.value = tuned if tuned is not None else 0.0

    def update(self, *_: Any) -> None:
        """Run the search with the current settings and show the results (errors go to the Output)."""
        self.output.clear_output()
        threshold = self.threshold.value if self.threshold.value > 0 else None  # 0 means "no threshold"
        k = int(self.k.value)
        try:
            outcome = search_once(
                self.lab,
                self.query.value,
                memory_type=self.memory_type.value,
                k=k,
                threshold=threshold,
                mode=self.mode.value,
                where=build_where(self.agent.value, self.tags.value),
            )
        except OmnilabError as exc:
            self.frame, self.outcome = pd.DataFrame(), None
            self.results.value = f"<p class='omnilab-error' style='color:#b00'>{html.escape(str(exc))}</p>"
            self.latency.value = ""
            self.output.append_stdout(f"search failed: {exc}\n")
            log.info("search failed: %s", exc)
            return
        self.outcome, self.frame, self.seconds = outcome, outcome.frame, outcome.seconds
        tuned_for = f"{self.memory_type.value} / {self.lab.memory.embedder.name}"
        self.latency.value = status_html(outcome, k=k, tuned=self.tuned_value, tuned_for=tuned_for)
        if outcome.frame.empty and outcome.cut:
            self.results.value = f"<p class='omnilab-empty'>no result reaches {format_score(threshold)}</p>"
        else:
            self.results.value = results_html(outcome.frame, self.query.value, agents=self.agent_names, summary=False)


def _agent_names(lab: Any) -> dict[str, str]:
    """agent id -> name, from the agents table (empty when the lab has no agents)."""
    frame = lab.sql("SELECT id, name FROM agents")
    return {str(i): str(n) for i, n in zip(frame["id"], frame["name"]) if not _missing(n)}


class ThresholdTuner(W.VBox):
    """A threshold slider over a tuned curve, showing the live precision/recall/F1 point; "save" stores it
    in ``lab``. ``labels`` from :func:`~omnilab.analysis.tuning.stdlib_labels` are scored in their own
    (scratch) lab; the saved threshold still goes to ``lab``."""

    def __init__(
        self,
        lab: Any,
        labels: Any,
        *,
        memory_type: Any = "code",
        k: int = 10,
        result: tuning.TuningResult | None = None,
        plot: bool = True,
    ) -> None:
        self.lab = lab
        if result is None:
            scored_in = labels.lab if isinstance(labels, tuning.StdlibLabels) else lab
            result = tuning.tune(scored_in, labels, memory_type=memory_type, k=k)
        self.result = result
        lo = float(min(self.result.curve["threshold"].min(), self.result.threshold)) if len(self.result.curve) else 0.0
        self.slider = W.FloatSlider(
            value=round(self.result.threshold, 3),
            min=math.floor(lo * 20) / 20,
            max=1.0,
            step=0.005,
            readout_format=".3f",
            description="threshold",
            continuous_update=False,
            layout=W.Layout(width="480px"),
        )
        self.readout = W.HTML()
        self.save_button = W.Button(description="save threshold", icon="save")
        self.saved = W.HTML()
        self.figure = W.Image(format="png")
        self.output = W.Output()
        self.plot = plot
        self.point: dict[str, float] = {}
        self.slider.observe(self.update, names="value")
        self.save_button.on_click(self._save)
        super().__init__([W.HBox([self.slider, self.save_button]), self.readout, self.saved, self.figure, self.output])
        self.add_class("omnilab-threshold-tuner")
        self.update()

    def update(self, *_: Any) -> None:
        """Recompute the point at the slider's threshold and redraw."""
        t = float(self.slider.value)
        self.point = self.result.at(t)
        p = self.point
        fmt = format_score
        self.readout.value = (
            f"<span class='omnilab-point'>threshold {t:.3f}: precision {fmt(p['precision'])}, "
            f"recall {fmt(p['recall'])}, F1 {fmt(p['f1'])} ({p['retrieved']} hits); "
            f"tuned {self.result.threshold:.3f} → F1 {self.result.f1:.3f}</span>"
        )
        if self.plot:
            self._draw(t)

    def _draw(self, t: float) -> None:
        fig = tuning.plot_curves(self.result)
        ax_pr, ax_f1 = fig.axes
        p = self.point
        if not math.isnan(p["precision"]):
            ax_pr.plot([p["recall"]], [p["precision"]], "s", color="black", ms=8, label=f"t = {t:.3f}")
        ax_f1.axvline(t, color="black", lw=1)
        ax_f1.plot([t], [p["f1"]], "s", color="black", ms=8)
        ax_pr.legend(fontsize=8)
        self.figure.value = plots.figure_png(fig, dpi=80)  # a PNG in an Image widget: Voila, no kernel needed

    def _save(self, *_: Any) -> None:
        res = self.result
        try:
            row = tuning.save_threshold(
                self.lab, float(self.slider.value), memory_type=res.memory_type, embedder=res.embedder
            )
        except OmnilabError as exc:
            self.output.append_stdout(f"not saved: {exc}\n")
            return
        self.saved.value = f"<small>saved {row['threshold']:.3f} for {row['memory_type']} / {row['embedder']}</small>"
