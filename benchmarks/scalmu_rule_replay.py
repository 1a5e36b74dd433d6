"""Replay prior-scale choice rules on a recorded ``bench_scalmu.py`` run (docs/scalmu.md §4.11).

The run must have been made with ``--ablations --prior-scales 0,0.25,0.5,0.75,1``: every rule picks an
α from the default row's recorded per-fold held-out scores, and that α's row of the same run gives the
gain over cnmf-matched, so no inference is re-run. Usage::

    python benchmarks/scalmu_rule_replay.py URBAN.json VALIDATION.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from hyperfuse.methods.unrolled.scalmu import pick_prior_scale


def one_standard_error(fold_scores: dict[float, list[float]], weaker: bool) -> float:
    """The weakest (or strongest) α whose mean paired fold deficit to the best α is within one
    standard error of that deficit (Hastie et al., ESL §7.10)."""
    alphas = sorted(fold_scores)
    scores = np.array([fold_scores[a] for a in alphas])  # (n_alpha, n_folds)
    best = scores[int(np.argmax(scores.mean(1)))]
    ok = []
    for a, s in zip(alphas, scores, strict=True):
        d = best - s
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0
        if d.mean() <= se + 1e-12:
            ok.append(a)
    return min(ok) if weaker else max(ok)


RULES: dict[str, Callable[[dict[float, list[float]]], float]] = {
    "current": pick_prior_scale,
    "1se-weaker": lambda fs: one_standard_error(fs, weaker=True),
    "1se-stronger": lambda fs: one_standard_error(fs, weaker=False),
}


def replay(path: str) -> dict[str, float]:
    """Print each case's picks and gains; return the mean gain per rule (and the hindsight best)."""
    with open(path) as fh:
        data = json.load(fh)
    rows = data["rows"] if isinstance(data, dict) else data
    cases: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        cases[(r["scene"], r["ratio"], r["noise_seed"])][r["method"]] = r
    gains: dict[str, list[float]] = defaultdict(list)
    for key, m in sorted(cases.items()):
        auto = m["scalmu"]["prior_scale"]
        fs = {float(a): v for a, v in auto["fold_scores_db"].items()}
        base = m["cnmf-matched"]["psnr"]
        # the default row must be its chosen α's row, or the replay would not be the inference
        assert abs(m["scalmu"]["psnr"] - m[f"abl:prior*{auto['chosen']:g}"]["psnr"]) < 1e-6, key
        picks = {name: rule(fs) for name, rule in RULES.items()}
        for name, a in picks.items():
            gains[name].append(m[f"abl:prior*{a:g}"]["psnr"] - base)
        gains["hindsight"].append(max(m[f"abl:prior*{a:g}"]["psnr"] for a in fs) - base)
        print(key, " ".join(f"{n}={a:g}" for n, a in picks.items()), "gains",
              " ".join(f"{n}={v[-1]:+.3f}" for n, v in gains.items()))
    for name, v in gains.items():
        print(f"{path}: {name:<13} mean {np.mean(v):+.3f}  wins {sum(x > 0 for x in v)}/{len(v)}")
    return {name: float(np.mean(v)) for name, v in gains.items()}


if __name__ == "__main__":
    means = [replay(p) for p in sys.argv[1:]]
    if len(means) > 1:
        for name in means[0]:
            print(f"{name:<13} mean over sets {np.mean([m[name] for m in means]):+.3f}")
