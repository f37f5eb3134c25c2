"""MiniLM embedding throughput on CPU: PyTorch (sentence-transformers) vs ONNX fp32 vs ONNX int8, same texts.

The texts are the sample's memories (``generate("small")``, 849 texts, code truncated at 256 word pieces),
preprocessed once. Each round embeds all of them with every backend, in a rotating order so a noisy
neighbour on the machine hits every backend alike; texts/s is reported per round and as the median, with
ratios against ONNX fp32 (the default before int8) and PyTorch measured in the same rounds. Vectors are
compared with PyTorch's (cosine per text: min, 1st percentile, mean). Model loading is not timed: each
backend embeds a few texts first. The ONNX models come from the user cache (exported there if missing).

    python tests/benchmarks/bench_embed.py [--rounds 3] [--limit N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

BASELINE = "onnx-fp32"


def _texts(limit: int | None) -> list[str]:
    from omnilab.sample import generate
    from omnilab.vectors.embedders import OnnxSentenceEmbedder

    contents = generate("small")["memory_entries"]["content"]
    pre = OnnxSentenceEmbedder(fallback=False).preprocess  # tokenizer only: same truncation as PyTorch
    texts = [pre(t) for t in contents]
    return texts[:limit] if limit else texts


def _backends() -> dict[str, Any]:
    from omnilab.vectors.embedders import OnnxSentenceEmbedder, SentenceTransformerEmbedder

    out: dict[str, Any] = {
        "torch": SentenceTransformerEmbedder(),
        "onnx-fp32": OnnxSentenceEmbedder(precision="fp32", fallback=False),
        "onnx-int8": OnnxSentenceEmbedder(precision="int8", fallback=False),
    }
    for emb in out.values():
        emb.embed(["warm up the model", "a second, slightly longer text to warm up with"])
    return out


def run(rounds: int, limit: int | None) -> dict[str, Any]:
    texts = _texts(limit)
    backends = _backends()
    names = list(backends)
    rates: dict[str, list[float]] = {n: [] for n in names}
    vectors: dict[str, np.ndarray] = {}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            started = time.perf_counter()
            vecs = backends[name].embed(texts)
            rates[name].append(len(texts) / (time.perf_counter() - started))
            vectors[name] = vecs
        print(f"round {r + 1}: " + ", ".join(f"{n} {rates[n][-1]:.1f}/s" for n in names), flush=True)
    ref = vectors["torch"]
    result: dict[str, Any] = {
        "texts": len(texts),
        "rounds": rounds,
        "threads": len(os.sched_getaffinity(0)),
        "baseline": BASELINE,
        "backends": {},
    }
    for name in names:
        cos = (vectors[name] * ref).sum(axis=1)
        med = statistics.median(rates[name])
        per_round = [a / b for a, b in zip(rates[name], rates[BASELINE])]
        result["backends"][name] = {
            "texts_per_s": rates[name],
            "median_texts_per_s": med,
            "ratio_vs_onnx_fp32_per_round": per_round,
            "ratio_vs_onnx_fp32": statistics.median(per_round),
            "ratio_vs_torch": statistics.median(a / b for a, b in zip(rates[name], rates["torch"])),
            "cosine_vs_torch": {
                "min": float(cos.min()),
                "p1": float(np.percentile(cos, 1)),
                "mean": float(cos.mean()),
            },
        }
    return result


def _table(res: dict[str, Any]) -> str:
    rounds = res["rounds"]
    head = (
        f"| backend | {' | '.join(f'round {i + 1} texts/s' for i in range(rounds))} | median | "
        "× onnx-fp32 | × torch | cos min | cos mean |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, b in res["backends"].items():
        c = b["cosine_vs_torch"]
        lines.append(
            f"| {name} | {' | '.join(f'{v:.1f}' for v in b['texts_per_s'])} | {b['median_texts_per_s']:.1f} | "
            f"{b['ratio_vs_onnx_fp32']:.2f} | {b['ratio_vs_torch']:.2f} | {c['min']:.4f} | {c['mean']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--limit", type=int, default=None, help="embed only the first N texts")
    p.add_argument("--json", metavar="PATH", help="also write the result here")
    args = p.parse_args(argv)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")
    res = run(args.rounds, args.limit)
    print(f"{res['texts']} sample memories, {res['threads']} CPU threads, ratios are medians of per-round ratios")
    print(_table(res))
    print(json.dumps(res, indent=1))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
