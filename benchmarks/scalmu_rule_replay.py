"""Replay prior-scale choice rules on a recorded ``bench_scalmu.py`` run (docs/scalmu.md §4.11).

The run must have been made with ``--ablations --prior-scales 0,0.25,0.5,0.75,1``: every rule picks an
α from the default row's recorded per-fold held-out scores, and that α's row of the same run gives the
gain over cnmf-matched, so no inference is re-run. Usage::

    python benchmarks/scalmu_rule_replay.py URBAN.json VALIDATION.json
    python benchmarks/scalmu_rule_replay.py --fit-kappa CALIBRATION.json URBAN.json VALIDATION.json
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


def band_share_penalty(fold_scores: dict[float, list[float]], n_bands: int, kappa: float) -> float:
    """The α maximising s(α) − κ·α/(l − 1), s the mean held-out SNR (dB), l the MSI bands (§4.13);
    within 0.01 dB the larger α. κ = 0 is the current rule."""
    pen = {a: float(np.mean(v)) - kappa * a / max(n_bands - 1, 1) for a, v in fold_scores.items()}
    return float(max(a for a, v in pen.items() if v >= max(pen.values()) - 0.01))


KAPPAS = tuple(np.arange(0, 4.01, 0.25))
RULES: dict[str, Callable[[dict[float, list[float]], int], float]] = {
    "current": lambda fs, l: pick_prior_scale(fs),  # over the recorded candidates (five before §4.14)
    "1se-weaker": lambda fs, l: one_standard_error(fs, weaker=True),
    "1se-stronger": lambda fs, l: one_standard_error(fs, weaker=False),
    "alphas-0-.5-1": lambda fs, l: pick_prior_scale({a: fs[a] for a in (0.0, 0.5, 1.0)}),  # §4.14
}


def replay(path: str, rules: dict[str, Callable[[dict[float, list[float]], int], float]] = RULES,
           verbose: bool = True) -> dict[str, float]:
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
        picks = {name: rule(fs, len(m["scalmu"]["msi_bands"])) for name, rule in rules.items()}
        for name, a in picks.items():
            gains[name].append(m[f"abl:prior*{a:g}"]["psnr"] - base)
        gains["hindsight"].append(max(m[f"abl:prior*{a:g}"]["psnr"] for a in fs) - base)
        if verbose:
            print(key, " ".join(f"{n}={a:g}" for n, a in picks.items()), "gains",
                  " ".join(f"{n}={v[-1]:+.3f}" for n, v in gains.items()))
    for name, v in gains.items():
        if verbose or name in ("current", "hindsight"):
            print(f"{path}: {name:<13} mean {np.mean(v):+.3f}  wins {sum(x > 0 for x in v)}/{len(v)}")
    return {name: float(np.mean(v)) for name, v in gains.items()}


def fit_kappa(path: str) -> float:
    """The smallest κ of :data:`KAPPAS` with the highest mean gain on ``path`` (the calibration run)."""
    rules = {f"kappa={k:g}": (lambda fs, l, k=k: band_share_penalty(fs, l, k)) for k in KAPPAS}
    means = replay(path, rules, verbose=False)
    for name in rules:
        print(f"{path}: {name:<11} mean {means[name]:+.4f}")
    best = max(means[name] for name in rules)
    return float(min(k for k in KAPPAS if means[f"kappa={k:g}"] >= best))


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--fit-kappa":  # --fit-kappa CALIBRATION.json [RUN.json ...]
        kappa = fit_kappa(args[1])
        print(f"fitted kappa = {kappa:g}")
        RULES[f"kappa={kappa:g}"] = lambda fs, l: band_share_penalty(fs, l, kappa)
        args = args[2:]
    means = [replay(p) for p in args]
    if len(means) > 1:
        for name in means[0]:
            print(f"{name:<13} mean over sets {np.mean([m[name] for m in means]):+.3f}")
