"""Benchmark of the SSIM metric on a 512 x 512 x 31 float64 cube (target: < 1 s).

Times ``hyperfuse.metrics.ssim`` (Gaussian 11 x 11 window) against a direct reference
computation in the same process — five full 2-D convolutions per band with the 11 x 11
kernel, the textbook formula — and checks that both give the same value. Best of
``--repeat`` runs after a warm-up (wall time on a shared machine is noisy).

    python benchmarks/bench_metrics.py [--threads 2] [--repeat 3] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch


def direct_ssim(x_hat: torch.Tensor, ref: torch.Tensor, data_range: float) -> float:
    """SSIM by plain conv2d over whole bands (Wang et al. 2004 Gaussian window, population moments)."""
    g = torch.exp(-0.5 * (torch.arange(-5, 6, dtype=torch.float64) / 1.5) ** 2)
    g = g / g.sum()
    k2 = (g[:, None] * g[None, :])[None, None]
    x = ref.reshape(-1, 1, *ref.shape[-2:])
    y = x_hat.reshape(-1, 1, *x_hat.shape[-2:])

    def f(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(t, k2)

    ux, uy = f(x), f(y)
    vx, vy, vxy = f(x * x) - ux * ux, f(y * y) - uy * uy, f(x * y) - ux * uy
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return float(s.mean(dim=(1, 2, 3)).mean())


def best_time(fn: Any, repeat: int) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    from hyperfuse.metrics import ssim

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 31, 512, 512, generator=g, dtype=torch.float64)
    y = x + 0.01 * torch.rand(1, 31, 512, 512, generator=g, dtype=torch.float64)
    ssim(y[:, :2], x[:, :2], data_range=1.0)  # warm-up
    t_ours, v_ours = best_time(lambda: float(ssim(y, x, data_range=1.0)[0]), args.repeat)
    t_ref, v_ref = best_time(lambda: direct_ssim(y, x, 1.0), args.repeat)
    result = {"shape": [31, 512, 512], "dtype": "float64", "threads": args.threads, "repeat": args.repeat,
              "ssim_s": t_ours, "direct_s": t_ref, "speedup": t_ref / t_ours, "value": v_ours,
              "value_direct": v_ref, "target_s": 1.0, "meets_target": t_ours < 1.0}
    print(f"{'':<22}{'best s':>8}  value")
    print(f"{'hyperfuse ssim':<22}{t_ours:8.3f}  {v_ours:.9f}")
    print(f"{'direct conv2d':<22}{t_ref:8.3f}  {v_ref:.9f}")
    print(f"speed-up {t_ref / t_ours:.1f}x in this run; target < 1 s: {'met' if t_ours < 1.0 else 'NOT met'}")
    if abs(v_ours - v_ref) > 1e-9:
        print(f"VALUES DIFFER by {abs(v_ours - v_ref):.2e}")
        return 1
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
