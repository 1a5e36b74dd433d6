"""Benchmark of the dead-leaves generator (``specs/synthetic.md`` §5).

Runs on one thread (OMP/MKL/OpenBLAS and torch) and times, as the median of several
runs after a warm-up:

1. a 512 x 512 abundance map with the default parameters (target <= 0.5 s);
2. a 128 x 128 x 100-band training pair end to end -- abundances, built-in spectra,
   mixing and, when ``hyperfuse.physics`` is importable, ``simulate`` at ratio 4
   (target <= 50 ms); its stages are timed separately too.

Both wall-clock and process CPU time are recorded; on a busy machine the CPU time is
the better estimate of single-core cost, so the pass/fail verdict uses the CPU-time
median (the wall-clock median is printed beside it).

Usage::

    python benchmarks/bench_synthetic.py [--out results.json] [--repeats 7]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hyperfuse.data import builtin_spectra, dead_leaves_abundances  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "bench_synthetic.json"


def timeit(fn: Callable[[int], Any], repeats: int) -> dict[str, float]:
    """Median/min wall and CPU seconds of ``fn(seed)`` over ``repeats`` seeds (1 warm-up)."""
    fn(10_000)
    wall, cpu = [], []
    for seed in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn(seed)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return {
        "wall_median_s": statistics.median(wall),
        "wall_min_s": min(wall),
        "cpu_median_s": statistics.median(cpu),
        "cpu_min_s": min(cpu),
        "repeats": repeats,
    }


def make_pair_fn(
    with_physics: bool,
) -> tuple[Callable[[int], Any], dict[str, Callable[[int], Any]]]:
    wl = np.linspace(400.0, 2500.0, 100)
    sensor = None
    simulate = None
    if with_physics:
        from hyperfuse.physics import make_sensor, simulate

        centres = np.linspace(450.0, 2200.0, 8)
        srf = np.exp(-0.5 * ((wl[None, :] - centres[:, None]) / 40.0) ** 2)
        srf /= srf.sum(axis=1, keepdims=True)
        sensor = make_sensor(4, srf=srf, wavelengths=wl, snr_hsi=35.0, snr_msi=40.0)

    def abundances(seed: int) -> np.ndarray:
        return dead_leaves_abundances((128, 128), 8, rng=seed)[0]

    def spectra_and_mix(seed: int) -> np.ndarray:
        A = abundances(seed)
        E = builtin_spectra(wl, 8, rng=seed).astype(np.float32)
        return (E @ A.reshape(8, -1)).reshape(100, 128, 128)

    def pair(seed: int) -> Any:
        cube = spectra_and_mix(seed)
        if simulate is None:
            return cube
        return simulate(torch.from_numpy(cube)[None], sensor, rng=seed)

    stages: dict[str, Callable[[int], Any]] = {
        "abundances_128": abundances,
        "spectra_100_bands": lambda seed: builtin_spectra(wl, 8, rng=seed),
    }
    if simulate is not None:
        cube = torch.from_numpy(spectra_and_mix(0))[None]
        stages["simulate_ratio4"] = lambda seed: simulate(cube, sensor, rng=seed)
    return pair, stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    try:
        import hyperfuse.physics  # noqa: F401

        has_physics = True
    except ImportError:
        has_physics = False

    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "processor": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads(),
            "physics_available": has_physics,
        },
        "cases": {},
    }
    _, info = dead_leaves_abundances((512, 512), rng=0)
    results["abundance_512_info"] = {
        "n_leaves": info["n_leaves"],
        "coverage": info["coverage"],
        "stopped": info["stopped"],
    }
    cases = results["cases"]
    cases["abundances_512_default"] = {
        **timeit(lambda s: dead_leaves_abundances((512, 512), rng=s), args.repeats),
        "target_s": 0.5,
    }
    pair, stages = make_pair_fn(has_physics)
    cases["pair_128x128x100" + ("_ratio4" if has_physics else "_no_physics")] = {
        **timeit(pair, args.repeats),
        "target_s": 0.05,
    }
    for name, fn in stages.items():
        cases[f"stage:{name}"] = timeit(fn, args.repeats)

    print(f"{'case':<34} {'cpu med':>9} {'wall med':>9} {'target':>8}  verdict")
    for name, c in cases.items():
        target = c.get("target_s")
        if target is not None:
            c["pass"] = bool(c["cpu_median_s"] <= target)
        verdict = "" if target is None else ("PASS" if c["pass"] else "FAIL")
        tgt = "" if target is None else f"{target * 1000:.0f} ms"
        print(
            f"{name:<34} {c['cpu_median_s'] * 1000:>7.1f}ms {c['wall_median_s'] * 1000:>7.1f}ms "
            f"{tgt:>8}  {verdict}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=True))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
