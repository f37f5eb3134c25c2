"""MRR@k of vector, keyword and hybrid search on labelled standard-library code (``omnilab.analysis.evaluation``).

The fusion (method, weight) is chosen on the train modules and reported on the test modules. The labelled
code is added to the lab given with ``--lab`` as ``code`` memories: use a lab made for the benchmark.

    python tests/benchmarks/bench_code_search.py --lab PATH [--embedder sentence-transformers] [-k 10] [--steps]

``--steps`` also prints what each part of the keyword index adds (``evaluation.keyword_steps``: an in-memory
FTS5 replica built with the lab's field code; the fusion weight of every row chosen on train). Run from a
checkout with ``PYTHONPATH=.`` when another checkout is installed editable.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import omnilab
from omnilab.analysis.evaluation import evaluate, keyword_steps


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--lab", required=True, help="lab directory to use (memories are added to it)")
    p.add_argument("--embedder", default="sentence-transformers")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--steps", action="store_true", help="also measure each part of the keyword index")
    args = p.parse_args(argv)
    with omnilab.open(args.lab, embedder=args.embedder) as lab:
        res = evaluate(lab, k=args.k)
        steps = keyword_steps(lab, k=args.k) if args.steps else None
    table = res.pop("table")
    print(table.pivot_table(index=["method", "weight"], columns="split", values="mrr").round(4).to_string())
    print(json.dumps(res, indent=1))
    if steps is not None:
        base = float(steps["hybrid_test"].iloc[0])
        steps["vs_vector"] = steps["hybrid_test"] - base
        steps["step_gain"] = steps["hybrid_test"].diff()
        print(f"MRR@{args.k} on the test modules, each step's blend weight chosen on train:")
        print(steps.round(4).to_string(index=False))
        print(json.dumps({"steps": steps.round(4).to_dict(orient="records")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
