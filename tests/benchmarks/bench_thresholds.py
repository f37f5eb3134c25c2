"""The design's fixed 0.7 threshold vs a tuned one, per embedder, on held-out standard-library modules.

For each embedder: a fresh lab holding the labelled code (docstring first sentence -> the function's code
without its docstring, ``omnilab.analysis.evaluation``); the F1-optimal threshold is chosen on the train
modules and judged on the test modules, against the baseline 0.7 (the design) and against no threshold.
Uncertainty: the test modules are resampled with replacement (bootstrap, seeded); we report the median
and the 5th-95th percentiles of F1(tuned) - F1(0.7) and of the ratio F1(tuned) / F1(0.7).

    python tests/benchmarks/bench_thresholds.py [--embedders hashing,sentence-transformers] [--max-queries N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import numpy as np
import pandas as pd

import omnilab
from omnilab.analysis import tuning
from omnilab.vectors.embedders import sentence_transformers_available


def bootstrap(
    test: tuning.TuningResult, labels: pd.DataFrame, thresholds: dict[str, float], *, n: int = 300, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Resample test modules; F1 per threshold choice per resample (pooled counts, as in the curve)."""
    hits = test.hits
    n_rel = np.array([len(r) for r in labels["relevant"]])
    modules = labels["module"].to_numpy()
    uniq = np.unique(modules)
    q_of_module = {m: np.flatnonzero(modules == m) for m in uniq}
    per_query = {name: np.zeros((len(labels), 2)) for name in thresholds}  # (retrieved, tp) per query
    for name, t in thresholds.items():
        kept = hits[hits["score"] >= t] if t is not None else hits
        agg = kept.groupby("query_index")["relevant"].agg(["size", "sum"])
        per_query[name][agg.index.to_numpy()] = agg.to_numpy()
    rng = np.random.default_rng(seed)
    f1 = {name: [] for name in thresholds}
    for _ in range(n):
        pick = np.concatenate([q_of_module[m] for m in rng.choice(uniq, len(uniq), replace=True)])
        rel = n_rel[pick].sum()
        for name in thresholds:
            ret, tp = per_query[name][pick].sum(axis=0)
            f1[name].append(2 * tp / (ret + rel))
    tuned, design = np.array(f1["tuned"]), np.array(f1["design"])
    out = {"f1_tuned_minus_design": _spread(tuned - design)}
    # a ratio is undefined where the baseline finds nothing relevant (F1 = 0): reported as null
    out["f1_ratio_tuned_over_design"] = _spread(tuned[design > 0] / design[design > 0]) if (design > 0).all() else None
    return out


def _spread(values: np.ndarray) -> dict[str, float]:
    return {
        "median": round(float(np.median(values)), 4),
        "p5": round(float(np.percentile(values, 5)), 4),
        "p95": round(float(np.percentile(values, 95)), 4),
    }


def run(spec: str, max_queries: int | None, k: int) -> tuple[pd.DataFrame, dict]:
    started = time.perf_counter()
    with omnilab.open(tempfile.mkdtemp(prefix="omnilab-bench-thr-"), embedder=spec) as lab:
        # the lab is made for the benchmark: the labelled code goes into it, not into a scratch lab
        labels = tuning.stdlib_labels(lab, "code", max_queries=max_queries, add_to_lab=True).labels
        prepared = time.perf_counter() - started
        table, train, test = tuning.held_out_comparison(lab, labels, memory_type="code", k=k)
        test_labels = labels[labels["split"] == "test"].reset_index(drop=True)
        boot = bootstrap(test, test_labels, {"design": tuning.DESIGN_THRESHOLD, "tuned": train.threshold})
    by = table.set_index("choice")
    summary = {
        "embedder": train.embedder,
        "k": k,
        "train_queries": train.n_queries,
        "test_queries": test.n_queries,
        "test_modules": int(test_labels["module"].nunique()),
        "tuned_threshold": round(train.threshold, 4),
        "f1_test_design_0.7": round(float(by.loc["design", "f1"]), 4),
        "f1_test_tuned": round(float(by.loc["tuned", "f1"]), 4),
        "f1_test_no_threshold": round(float(by.loc["none", "f1"]), 4),
        "f1_test_best_possible": round(float(by.loc["best_possible", "f1"]), 4),
        "ratio_tuned_over_design": (
            round(float(by.loc["tuned", "f1"] / by.loc["design", "f1"]), 3) if by.loc["design", "f1"] > 0 else None
        ),  # undefined when 0.7 finds nothing
        "bootstrap_by_module": boot,
        "test_mrr": round(test.ranks["mrr"], 4),
        "seconds_embedding": round(prepared, 1),
        "seconds_total": round(time.perf_counter() - started, 1),
    }
    return table, summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--embedders", default="hashing,sentence-transformers")
    p.add_argument("--max-queries", type=int, default=None, help="labelled queries per embedder (default: all)")
    p.add_argument("-k", type=int, default=10)
    args = p.parse_args(argv)
    tables, summaries = [], []
    for spec in args.embedders.split(","):
        if spec.startswith(("sentence", "st")) and not sentence_transformers_available():
            print(
                f"skipping {spec}: sentence-transformers or the offline MiniLM weights are not installed",
                file=sys.stderr,
            )
            continue
        table, summary = run(spec, args.max_queries, args.k)
        tables.append(table)
        summaries.append(summary)
    table = pd.concat(tables, ignore_index=True)
    print(f"held-out modules, top-{args.k} search, F1 per threshold choice:")
    print(
        table[["embedder", "choice", "threshold", "precision", "recall", "f1", "retrieved"]]
        .round(4)
        .to_string(index=False)
    )
    print()
    print(json.dumps(summaries, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
