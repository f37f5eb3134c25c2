"""Search-threshold tuning: precision/recall/F1 at every score threshold, rank metrics, the F1-optimal threshold.

Labelled queries map a query text to the set of memory ids that answer it. Each query is searched once
(top-``k``, exactly what ``lab.search(query, k=k)`` returns); a threshold ``t`` then keeps the hits with
cosine >= t. Counts are pooled over queries (micro-averaged):

    precision(t) = TP / retrieved,   recall(t) = TP / (all relevant ids),   F1 = 2 TP / (retrieved + relevant)

The curve is evaluated at every distinct hit score (any other threshold gives one of those result sets).
The recommendation is the F1-optimal score ``s*``, moved down to the midpoint between ``s*`` and the next
lower score: every threshold in that gap keeps the same hits, and the midpoint leaves the widest margin
for queries not seen while tuning. Thresholds are saved per (memory type, embedder) in
``search_thresholds``; ``lab.search(..., threshold="tuned")`` reads them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from omnilab._checks import is_integral
from omnilab.errors import InvalidInput
from omnilab.vectors import thresholds

if TYPE_CHECKING:
    from omnilab.analysis.plots import NotebookFigure

__all__ = [
    "DESIGN_THRESHOLD",
    "TuningResult",
    "StdlibLabels",
    "normalize_labels",
    "stdlib_labels",
    "score_labels",
    "threshold_curve",
    "best_threshold",
    "metrics_at",
    "rank_metrics",
    "tune",
    "held_out_comparison",
    "save_threshold",
    "get_threshold",
    "saved_thresholds",
    "resolve_threshold",
    "plot_curves",
]

log = logging.getLogger(__name__)

#: the similarity threshold hard-coded by the platform's design
DESIGN_THRESHOLD = 0.7


# ------------------------------------------------------------------------------------------ labels
def normalize_labels(labels: Any) -> pd.DataFrame:
    """Labels as a DataFrame: ``query`` (str), ``relevant`` (tuple of memory ids) and any extra columns.

    Accepts a DataFrame with ``query`` and ``relevant`` columns (a memory id or an iterable of them per
    row), a mapping ``{query: memory id | iterable of memory ids}`` or :class:`StdlibLabels`.
    """
    if isinstance(labels, StdlibLabels):
        labels = labels.labels
    if isinstance(labels, Mapping):
        frame = pd.DataFrame({"query": list(labels.keys()), "relevant": list(labels.values())})
    elif isinstance(labels, pd.DataFrame):
        missing = {"query", "relevant"} - set(labels.columns)
        if missing:
            raise InvalidInput(f"labels need the columns query and relevant; missing {sorted(missing)}")
        frame = labels.reset_index(drop=True).copy()
    else:
        raise InvalidInput("labels must be a DataFrame (query, relevant) or a dict {query: memory ids}")
    if frame.empty:
        raise InvalidInput("labels are empty")
    rel: list[tuple[str, ...]] = []
    for i, (q, r) in enumerate(zip(frame["query"], frame["relevant"])):
        if not isinstance(q, str) or not q.strip():
            raise InvalidInput(f"label row {i}: query must be a non-empty string, got {q!r}")
        items = (r,) if isinstance(r, str) else tuple(r) if isinstance(r, Iterable) else None
        if items is None or not all(isinstance(x, str) for x in items):
            raise InvalidInput(f"label row {i}: relevant must be a memory id or a list of memory ids, got {r!r}")
        rel.append(tuple(dict.fromkeys(items)))
    frame["relevant"] = pd.Series(rel, index=frame.index, dtype=object)
    if not any(rel):
        raise InvalidInput("no label has a relevant memory id")
    return frame


@dataclass
class StdlibLabels:
    """Labelled standard-library queries and the lab whose memory ids they name.

    ``labels``: query, relevant, module, function_name, memory_type, split. ``lab``: where to score them —
    a scratch lab (``scratch`` is its directory) for ``code`` labels unless they were built with
    ``add_to_lab=True``, the lab itself for ``knowledge`` labels. ``tune(...)`` and
    ``held_out_comparison(...)`` run on that lab. Thresholds are kept per (memory type, embedder) and the
    scratch lab uses the lab's embedder, so a result tuned there can be saved into the lab:
    ``lab.save_threshold(labels.tune(split="train"))``. ``close()`` (or ``with``) closes a scratch lab.
    """

    labels: pd.DataFrame
    lab: Any
    scratch: Path | None = None

    def tune(self, **options: Any) -> TuningResult:
        """:func:`tune` on the lab the labels belong to."""
        return tune(self.lab, self.labels, **options)

    def held_out_comparison(self, **options: Any) -> tuple[pd.DataFrame, TuningResult, TuningResult]:
        """:func:`held_out_comparison` on the lab the labels belong to."""
        return held_out_comparison(self.lab, self.labels, **options)

    def close(self) -> None:
        if self.scratch is not None:
            self.lab.close()

    def __enter__(self) -> StdlibLabels:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f"scratch lab {self.scratch}" if self.scratch is not None else "the lab itself"
        return f"StdlibLabels({len(self.labels)} queries on {where})"


def _belonging(lab: Any, labels: Any) -> Any:
    """``labels`` unwrapped from :class:`StdlibLabels` when they name memories of ``lab``; InvalidInput
    (saying where they belong) when they name another lab's."""
    if not isinstance(labels, StdlibLabels):
        return labels
    if labels.lab is not lab:
        raise InvalidInput(
            f"these labels name memories of the scratch lab at {labels.scratch}, not of this lab: "
            "tune on that lab with labels.tune(...) (or tuning.tune(labels.lab, labels.labels)); "
            "the result can then be saved here with lab.save_threshold(result)"
        )
    return labels.labels


def stdlib_labels(
    lab: Any,
    memory_type: str = "code",
    *,
    max_queries: int | None = None,
    seed: int = 0,
    per_module: int = 5,
    progress: bool = False,
    add_to_lab: bool = False,
) -> StdlibLabels:
    """Labelled queries from the standard library (see :mod:`omnilab.analysis.evaluation`), with a split.

    ``code``: query = a function docstring's first sentence; relevant = the function's code without its
    docstring, stored as a ``code`` memory with ``metadata.pair``. Those memories go into a scratch lab at
    ``<lab directory>/scratch/stdlib-code`` (SQLite, the lab's embedder; kept between calls so embeddings
    are not computed twice, and holding exactly the chosen queries' code), never into ``lab`` itself —
    unless ``add_to_lab=True``, which adds them to ``lab`` and also counts the sample's own memory of each
    function as relevant. ``knowledge``: the same queries (at most ``per_module`` per module) against the
    sample's module docstrings in ``lab`` (nothing is added); relevant = the docstring of the function's
    module. Label columns: query, relevant, module, function_name, memory_type, split ("train"/"test", by
    module). Returns a :class:`StdlibLabels`: ``.labels``, ``.lab`` (where they are scored), ``.tune()``.
    """
    from omnilab.analysis import evaluation

    pairs = evaluation.code_search_pairs()
    pairs["split"] = evaluation.split_by_module(pairs)
    if memory_type == "code":
        pairs = _pick(pairs, max_queries, seed)
        if add_to_lab:
            return StdlibLabels(_code_labels(lab, pairs, progress), lab)
        scratch = _open_scratch(lab, "stdlib-code")
        try:
            _keep_only(scratch, set(pairs["code"]))
            return StdlibLabels(_code_labels(scratch, pairs, progress), scratch, scratch.path)
        except BaseException:
            scratch.close()
            raise
    if memory_type == "knowledge":
        return StdlibLabels(
            _knowledge_labels(lab, pairs, max_queries=max_queries, seed=seed, per_module=per_module), lab
        )
    raise InvalidInput(f"stdlib labels exist for the code and knowledge memory types, not {memory_type!r}")


def _pick(pairs: pd.DataFrame, max_queries: int | None, seed: int) -> pd.DataFrame:
    """At most ``max_queries`` rows, drawn with ``seed``, in their original order."""
    if max_queries is None or max_queries >= len(pairs):
        return pairs
    keep = np.sort(np.random.default_rng(seed).choice(len(pairs), max_queries, replace=False))
    return pairs.iloc[keep].reset_index(drop=True)


def _open_scratch(lab: Any, name: str) -> Any:
    """A lab of the same kind at ``<lab directory>/scratch/<name>``: its own SQLite file, the lab's embedder."""
    path = Path(lab.path) / "scratch" / name
    settings = lab.settings.replace(data_dir=path, database_url=None, read_only=False, embedder=lab.memory.embedder)
    log.info("building the labelled stdlib corpus in the scratch lab %s (the lab at %s is not changed)", path, lab.path)
    return type(lab)(settings)  # the lab's own class: this layer does not import omnilab.lab


def _keep_only(scratch: Any, codes: set[str]) -> None:
    """Forget the scratch lab's code memories that are not among ``codes`` (a rerun with other queries)."""
    mem = scratch.memories("code")
    stale = [mid for mid, content in zip(mem["id"], mem["content"]) if content not in codes]
    if stale:
        scratch.forget(stale)


def _code_labels(target: Any, pairs: pd.DataFrame, progress: bool) -> pd.DataFrame:
    from omnilab.analysis import evaluation

    pair_ids = evaluation.load_pairs(target, pairs, progress=progress)
    same: dict[tuple[str, str], list[str]] = {}  # the sample's own memory of a function, if loaded
    mem = target.memories("code")
    for mid, meta in zip(mem["id"], mem["metadata"]):
        meta = meta if isinstance(meta, dict) else {}
        if "pair" not in meta and meta.get("module") and meta.get("function_name"):
            same.setdefault((meta["module"], meta["function_name"]), []).append(mid)
    relevant = [(pid, *same.get((m, f), [])) for pid, m, f in zip(pair_ids, pairs["module"], pairs["function_name"])]
    return _frame(pairs, relevant, "code")


def _knowledge_labels(
    lab: Any, pairs: pd.DataFrame, *, max_queries: int | None, seed: int, per_module: int
) -> pd.DataFrame:
    mem = lab.memories("knowledge")
    doc_of: dict[str, str] = {}
    for mid, meta in zip(mem["id"], mem["metadata"]):
        if isinstance(meta, dict) and meta.get("module") and "function_name" not in meta:
            doc_of.setdefault(meta["module"], mid)
    if not doc_of:
        raise InvalidInput("knowledge labels need the sample's module docstrings: run lab.load_sample() first")
    pairs = pairs[pairs["module"].isin(doc_of)]
    pairs = _pick(pairs.groupby("module", sort=False).head(per_module).reset_index(drop=True), max_queries, seed)
    return _frame(pairs, [(doc_of[m],) for m in pairs["module"]], "knowledge")


def _frame(pairs: pd.DataFrame, relevant: list[tuple[str, ...]], memory_type: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "query": pairs["query"],
            "relevant": pd.Series(relevant, dtype=object),
            "module": pairs["module"],
            "function_name": pairs["function_name"],
            "memory_type": memory_type,
            "split": pairs["split"],
        }
    )


# ----------------------------------------------------------------------------------------- scoring
def score_labels(
    lab: Any, labels: Any, *, memory_type: str | None, k: int = 10, where: Mapping[str, Any] | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """Search every labelled query once; returns (hits, relevant counts per query).

    hits: one row per returned memory with query_index, rank, memory_id, score, relevant (bool).
    """
    from omnilab.analysis import evaluation

    labels = normalize_labels(_belonging(lab, labels))
    if not is_integral(k) or k < 1:
        raise InvalidInput(f"k must be a positive integer, got {k!r}")
    store = lab.memory
    store.reconcile()  # rows written by bulk loaders (the sample) get their vectors first
    valid = set(lab.memories(memory_type)["id"].tolist())
    name_of = {v: m for m, v in store.vector_ids_for(valid).items()}  # hits carry vector ids
    for i, rel in enumerate(labels["relevant"]):
        unknown = [m for m in rel if m not in valid]
        if unknown:
            scope = f"a {memory_type} memory" if memory_type else "a memory"
            raise InvalidInput(f"label row {i}: {unknown[0]!r} is not {scope} of this lab")
    queries = [str(q) for q in labels["query"]]
    evaluation.warm_queries(store, queries)  # one batched embedding call instead of one per query
    rows: list[tuple[int, int, str, float, bool]] = []
    for qi, (query, rel) in enumerate(zip(queries, labels["relevant"])):
        rel_set = set(rel)
        for rank, hit in enumerate(store.search_hits(query, memory_type=memory_type, k=int(k), where=where), 1):
            mid = name_of.get(hit.id)
            if mid is not None:
                rows.append((qi, rank, mid, float(hit.score), mid in rel_set))
    hits = pd.DataFrame(rows, columns=["query_index", "rank", "memory_id", "score", "relevant"])
    hits = hits.astype({"query_index": "int64", "rank": "int64", "score": "float64", "relevant": "bool"})
    return hits, np.array([len(r) for r in labels["relevant"]], dtype=np.int64)


def threshold_curve(scores: Any, relevant: Any, n_relevant: int) -> pd.DataFrame:
    """Precision, recall and F1 of "keep score >= t" at every distinct score t (ascending).

    ``scores``/``relevant``: the pooled hits of all queries, (n,) floats and bools; ``n_relevant``: the
    number of relevant (query, memory) pairs, found or not.
    """
    s = np.asarray(scores, dtype=np.float64)
    r = np.asarray(relevant, dtype=bool)
    if s.shape != r.shape or s.ndim != 1:
        raise InvalidInput("scores and relevant must be 1-d arrays of the same length")
    if n_relevant < int(r.sum()) or n_relevant < 1:
        raise InvalidInput(f"n_relevant must be >= the relevant hits ({int(r.sum())}) and >= 1")
    cols = ["threshold", "retrieved", "tp", "fp", "fn", "precision", "recall", "f1"]
    if s.size == 0:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    order = np.argsort(-s, kind="stable")
    s, r = s[order], r[order]
    tp_all = np.cumsum(r)
    last = np.r_[np.nonzero(s[:-1] != s[1:])[0], s.size - 1]  # last hit of each run of equal scores
    tp = tp_all[last]
    retrieved = last + 1
    curve = pd.DataFrame(
        {
            "threshold": s[last],
            "retrieved": retrieved,
            "tp": tp,
            "fp": retrieved - tp,
            "fn": n_relevant - tp,
            "precision": tp / retrieved,
            "recall": tp / n_relevant,
            "f1": 2.0 * tp / (retrieved + n_relevant),
        }
    )
    return curve.iloc[::-1].reset_index(drop=True)


def best_threshold(curve: pd.DataFrame) -> dict[str, float]:
    """The F1-optimal threshold: ``score`` (the hit score s*) and ``threshold`` (midpoint below s*).

    Ties in F1 go to the higher threshold (fewer results for the same F1).
    """
    if curve.empty:
        raise InvalidInput("the curve is empty: no query returned any hit")
    f1 = curve["f1"].to_numpy()
    best = int(np.flatnonzero(f1 == f1.max())[-1])  # ascending thresholds: the last maximum is the highest
    s_star = float(curve["threshold"].iloc[best])
    below = float(curve["threshold"].iloc[best - 1]) if best > 0 else s_star
    row = curve.iloc[best]
    return {
        "threshold": (s_star + below) / 2.0,
        "score": s_star,
        "f1": float(row["f1"]),
        "precision": float(row["precision"]),
        "recall": float(row["recall"]),
    }


def metrics_at(hits: pd.DataFrame, n_relevant: int, threshold: float | None) -> dict[str, float]:
    """Precision, recall and F1 of the hits with score >= ``threshold`` (None: every hit)."""
    keep = hits if threshold is None else hits[hits["score"] >= threshold]
    tp = int(keep["relevant"].sum())
    retrieved = len(keep)
    return {
        "threshold": math.nan if threshold is None else float(threshold),
        "retrieved": retrieved,
        "tp": tp,
        "precision": tp / retrieved if retrieved else math.nan,
        "recall": tp / n_relevant if n_relevant else math.nan,
        "f1": 2.0 * tp / (retrieved + n_relevant) if retrieved + n_relevant else math.nan,
    }


def rank_metrics(
    hits: pd.DataFrame, n_relevant: Sequence[int] | np.ndarray, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """precision@k, recall@k (queries with a relevant id) and MRR (first relevant rank within the pool)."""
    n_rel = np.asarray(n_relevant, dtype=np.int64)
    nq = len(n_rel)
    rel = hits[hits["relevant"]]
    out: dict[str, float] = {}
    has = n_rel > 0
    for k in ks:
        found = np.bincount(rel.loc[rel["rank"] <= k, "query_index"].to_numpy(), minlength=nq)[:nq]
        out[f"precision@{k}"] = float(np.mean(found / k)) if nq else math.nan
        out[f"recall@{k}"] = float(np.mean(found[has] / n_rel[has])) if has.any() else math.nan
    first = rel.groupby("query_index")["rank"].min()
    rr = np.zeros(nq)
    rr[first.index.to_numpy()] = 1.0 / first.to_numpy()
    out["mrr"] = float(rr[has].mean()) if has.any() else math.nan
    return out


# ------------------------------------------------------------------------------------------ result
@dataclass
class TuningResult:
    """Curve and recommendation for one memory type and embedder. ``.curve``, ``.threshold``, ``.at(t)``."""

    memory_type: str | None
    embedder: str
    k: int
    n_queries: int
    n_relevant: int
    curve: pd.DataFrame = field(repr=False)
    threshold: float
    score: float
    f1: float
    precision: float
    recall: float
    ranks: dict[str, float] = field(repr=False)
    hits: pd.DataFrame = field(repr=False)

    def at(self, threshold: float | None) -> dict[str, float]:
        """Precision/recall/F1 at any threshold (the live point of the tuner)."""
        return metrics_at(self.hits, self.n_relevant, threshold)

    @property
    def recommendation(self) -> dict[str, Any]:
        return {
            "memory_type": self.memory_type,
            "embedder": self.embedder,
            "threshold": self.threshold,
            "f1": self.f1,
            "precision": self.precision,
            "recall": self.recall,
            "k": self.k,
            "n_queries": self.n_queries,
        }

    def _repr_html_(self) -> str:
        design = self.at(DESIGN_THRESHOLD)
        from html import escape  # names come from lab data and settings: never markup

        ranks = escape(", ".join(f"{k} {v:.3f}" for k, v in self.ranks.items()))
        return (
            f"<div><b>threshold tuning</b> — {escape(str(self.memory_type or 'all types'))} / "
            f"<code>{escape(str(self.embedder))}</code>"
            f", {self.n_queries} queries, top-{self.k}<br>recommended threshold <b>{self.threshold:.3f}</b>: "
            f"F1 {self.f1:.3f} (precision {self.precision:.3f}, recall {self.recall:.3f}); at the design's "
            f"{DESIGN_THRESHOLD}: F1 {_fmt(design['f1'])}<br>{ranks}</div>"
        )


def _fmt(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def _subset(labels: pd.DataFrame, split: str | None) -> pd.DataFrame:
    if split is None:
        return labels
    if "split" not in labels.columns:
        raise InvalidInput("split= needs labels with a 'split' column")
    sub = labels[labels["split"] == split].reset_index(drop=True)
    if sub.empty:
        raise InvalidInput(f"no labels in split {split!r}")
    return sub


def tune(
    lab: Any,
    labels: Any,
    *,
    memory_type: Any = None,
    k: int = 10,
    split: str | None = None,
    where: Mapping[str, Any] | None = None,
) -> TuningResult:
    """Score the labels (optionally one ``split``) and recommend the F1-optimal threshold."""
    mtype = thresholds.check_memory_type(memory_type)
    labels = _subset(normalize_labels(_belonging(lab, labels)), split)
    if mtype is None and "memory_type" in labels.columns and labels["memory_type"].nunique() == 1:
        mtype = thresholds.check_memory_type(labels["memory_type"].iloc[0])
    hits, n_rel = score_labels(lab, labels, memory_type=mtype, k=k, where=where)
    total = int(n_rel.sum())
    curve = threshold_curve(hits["score"], hits["relevant"], total)
    best = best_threshold(curve)
    return TuningResult(
        memory_type=mtype,
        embedder=lab.memory.embedder.name,
        k=int(k),
        n_queries=len(labels),
        n_relevant=total,
        curve=curve,
        threshold=best["threshold"],
        score=best["score"],
        f1=best["f1"],
        precision=best["precision"],
        recall=best["recall"],
        ranks=rank_metrics(hits, n_rel, ks=sorted({1, 5, int(k)})),
        hits=hits,
    )


def held_out_comparison(
    lab: Any, labels: Any, *, memory_type: Any = None, k: int = 10, design: float = DESIGN_THRESHOLD
) -> tuple[pd.DataFrame, TuningResult, TuningResult]:
    """Tune on the "train" labels, judge on "test": the design's threshold, the tuned one, and no threshold.

    Returns (table, train result, test result); the table has one row per threshold choice with the
    held-out precision, recall and F1 (and ``best_possible``: the F1-optimal threshold of the test set
    itself, an upper bound no tuning can reach).
    """
    train = tune(lab, labels, memory_type=memory_type, k=k, split="train")
    test = tune(lab, labels, memory_type=train.memory_type, k=k, split="test")
    rows = []
    for name, t in (("none", None), ("design", design), ("tuned", train.threshold), ("best_possible", test.threshold)):
        m = test.at(t)
        rows.append(
            {
                "memory_type": train.memory_type,
                "embedder": train.embedder,
                "choice": name,
                "threshold": m["threshold"],
                "precision": m["precision"],
                "recall": m["recall"],
                "f1": m["f1"],
                "retrieved": m["retrieved"],
                "test_queries": test.n_queries,
            }
        )
    return pd.DataFrame(rows), train, test


# ----------------------------------------------------------------------------------- persistence
# Kept in omnilab's own search_thresholds table by omnilab.vectors.thresholds (the search path resolves
# threshold="tuned" there); these take a lab and a TuningResult.
def _embedder_name(lab: Any, embedder: str | None) -> str:
    """``embedder``, by default the lab's."""
    return str(lab.memory.embedder.name) if embedder is None else embedder


def save_threshold(
    lab: Any, result: TuningResult | float, *, memory_type: Any = None, embedder: str | None = None
) -> dict[str, Any]:
    """Store a tuned threshold for (memory type, embedder); replaces an earlier one. Returns the row.

    A ``TuningResult`` brings its type, embedder and scores; a number needs ``memory_type`` (embedder: the lab's).
    """
    if isinstance(result, TuningResult):
        return thresholds.save_threshold(
            lab.memory.own,
            result.threshold,
            memory_type=result.memory_type if memory_type is None else memory_type,
            embedder=result.embedder if embedder is None else embedder,
            f1=result.f1,
            precision=result.precision,
            recall=result.recall,
            k=result.k,
            n_queries=result.n_queries,
            details={"score": result.score, "ranks": result.ranks},
        )
    return thresholds.save_threshold(
        lab.memory.own, result, memory_type=memory_type, embedder=_embedder_name(lab, embedder)
    )


def get_threshold(lab: Any, memory_type: Any, embedder: str | None = None) -> float | None:
    """The saved threshold for (memory type, embedder: default the lab's), or None."""
    return thresholds.get_threshold(lab.memory.own, memory_type, _embedder_name(lab, embedder))


def saved_thresholds(lab: Any) -> pd.DataFrame:
    """Every saved threshold (all embedders), by memory type."""
    return thresholds.saved_thresholds(lab.memory.own)


def resolve_threshold(lab: Any, threshold: Any, memory_type: Any) -> float | None:
    """``threshold`` as ``lab.search`` takes it: a number, None, or "tuned" (the saved value for the type)."""
    return thresholds.resolve_threshold(lab.memory.own, threshold, memory_type, embedder=lab.memory.embedder.name)


# ------------------------------------------------------------------------------------------- plots
def plot_curves(results: TuningResult | Sequence[TuningResult], *, design: float = DESIGN_THRESHOLD) -> NotebookFigure:
    """Precision-recall and F1-vs-threshold side by side, one line per result; a matplotlib Figure (shown as
    a PNG in Jupyter without ``%matplotlib inline``)."""
    from omnilab.analysis.plots import NotebookFigure

    results = [results] if isinstance(results, TuningResult) else list(results)
    fig = NotebookFigure(figsize=(11, 4), layout="constrained")
    ax_pr, ax_f1 = fig.subplots(1, 2)
    for res in results:
        label = f"{res.memory_type or 'all'} / {res.embedder}"
        c = res.curve
        (line,) = ax_pr.plot(c["recall"], c["precision"], label=label)
        ax_pr.plot([res.recall], [res.precision], "o", color=line.get_color())
        ax_f1.plot(c["threshold"], c["f1"], color=line.get_color(), label=f"{label}: tuned {res.threshold:.2f}")
        ax_f1.axvline(res.threshold, color=line.get_color(), ls="--", lw=1)
    ax_f1.axvline(design, color="grey", ls=":", lw=1.5, label=f"design {design}")
    ax_pr.set(
        xlabel="recall", ylabel="precision", title="precision-recall (threshold sweep)", xlim=(0, 1.02), ylim=(0, 1.02)
    )
    ax_f1.set(xlabel="cosine threshold", ylabel="F1", title="F1 vs threshold", ylim=(0, 1.02))
    ax_pr.legend(fontsize=8)
    ax_f1.legend(fontsize=8)
    return fig
