"""CNMF performance benchmark (classical.md §3.1).

Runs CNMF (float32 torch, default iteration counts, p = 30, 2 threads) on §1-style scenes in
a fresh subprocess per scene (its VmHWM is the run's peak memory; ru_maxrss would inherit the
parent's peak across exec), and in the same
subprocess times a straightforward float64 NumPy MS iteration (the 600 M form). Prints a table
and writes benchmarks/results/bench_cnmf.json.

    python benchmarks/bench_cnmf.py                 # both scenes
    python benchmarks/bench_cnmf.py --scenes cave   # 512x512x31, 3-band MSI, x8 only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SCENES = {
    "cave": dict(size=512, L=31, l=3, ratio=8, p=30),
    "large": dict(size=1024, L=128, l=8, ratio=4, p=30),
}


def ms_a_flops(N: int, p: int, l: int) -> float:
    """Data-first, hoisted numerator, P reused: 4p(l+1)N + 2pN + 3lN."""
    return 4 * p * (l + 1) * N + 2 * p * N + 3 * l * N


def ms_a_bytes(N: int, p: int, l: int) -> float:
    """Compulsory traffic of one A-only iteration (float32): read A and the numerator, write
    A, write and read P = ẼA ((l+1) rows), read Y_m: 4N(3p + 2(l+1) + l) bytes."""
    return 4 * N * (3 * p + 2 * (l + 1) + l)


def ms_alt_flops(N: int, p: int, l: int) -> float:
    """E_m then A, with Y_mAᵀ/AAᵀ shared and a direct residual from P = ẼA:
    2lpN + p(p+1)N + 2plN + 4p(l+1)N + 2pN + 2p(l+1)N."""
    return 2 * l * p * N + p * (p + 1) * N + 2 * p * l * N + 4 * p * (l + 1) * N + 2 * p * N + 2 * p * (l + 1) * N


def make_pair(size: int, L: int, l: int, ratio: int, p: int, seed: int = 0):
    """§1 scene with p endmembers (float32 X, circular default PSF/offset, Gaussian SRF)."""
    import torch

    sys.path.insert(0, str(HERE.parent / "tests" / "methods"))
    from scenes import abundances, endmembers, gaussian_srf  # type: ignore[import-not-found]

    from hyperfuse.physics.sensor import FusionPhysics, make_sensor

    g = np.random.default_rng(seed)
    E = endmembers(L, p, g).astype(np.float32)
    A = abundances(p, size, size, 6.0, g).astype(np.float32)
    X = torch.from_numpy(E) @ torch.from_numpy(A).reshape(p, -1)
    X = X.reshape(1, L, size, size)
    sensor = make_sensor(ratio, srf=gaussian_srf(l, L), boundary="circular")
    phys = FusionPhysics(sensor)
    return X, phys.spatial(X), phys.spectral(X), sensor


def numpy_iteration(Ym: np.ndarray, Em: np.ndarray, A: np.ndarray, delta: float, reps: int = 3) -> float:
    """Straightforward float64 MS A-update (numerator recomputed, Gram-first, direct cost)."""
    l, p = Em.shape
    Et = np.vstack([Em, np.full((1, p), delta)])
    Yt = np.vstack([Ym, np.full((1, Ym.shape[1]), delta)])
    times = []
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        num = Et.T @ Yt
        den = (Et.T @ Et) @ A
        A = A * num / np.maximum(den, 1e-12)
        _ = float(((Ym - Em @ A) ** 2).sum())
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def vm_hwm_mb() -> float:
    """Peak resident set of this process image (VmHWM; unlike ru_maxrss, reset by exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(name: str, data: str, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    from hyperfuse.methods.classical.cnmf import CNMF, CNMFConfig
    from hyperfuse.types import SensorSpec

    cfg = SCENES[name]
    d = np.load(data, allow_pickle=False)
    hsi, msi = torch.from_numpy(d["hsi"]), torch.from_numpy(d["msi"])
    sensor = SensorSpec.from_dict(json.loads(str(d["sensor"])))
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    rss0 = vm_hwm_mb()
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    out = CNMF(CNMFConfig(n_endmembers=cfg["p"], num_threads=threads)).fuse(hsi, msi, sensor)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = vm_hwm_mb()
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    X = torch.from_numpy(d["X"])
    mse = ((out.cube.double() - X.double()) ** 2).mean(dim=(0, 2, 3))
    psnr = float((10 * torch.log10(X.double().amax(dim=(0, 2, 3)) ** 2 / mse)).mean())
    loops = out.info["loops"]
    N = msi.shape[-1] * msi.shape[-2]
    l, p = msi.shape[1], cfg["p"]

    def per_it(prefix: str) -> float | None:
        ls = [lp for lp in loops if lp["name"] == prefix and lp["iterations"]]
        if not ls:
            return None
        return sum(lp["seconds"] for lp in ls) / sum(lp["iterations"] for lp in ls)

    t_a = per_it("ms_abundances")
    t_alt = per_it("ms_alternate")
    # Straightforward float64 NumPy iteration on the same data and E_m.
    A0 = out.abundances[0].reshape(p, -1).double().numpy()
    Em = np.asarray(out.info["srf"]) @ out.endmembers[0].double().numpy()
    t_np = numpy_iteration(msi[0].reshape(l, -1).double().numpy(), Em, A0, out.info["delta"][0])
    res = {
        "scene": name,
        **cfg,
        "N": N,
        "threads": threads,
        "psnr_db": psnr,
        "wall_s": wall,
        "cpu_s": cpu,
        "loops": {lp["name"]: {"iterations": lp["iterations"], "seconds": lp["seconds"]} for lp in loops},
        "ms_a_iter_ms": None if t_a is None else 1e3 * t_a,
        "ms_a_flop": ms_a_flops(N, p, l),
        "ms_a_bytes": ms_a_bytes(N, p, l),
        "ms_a_gflops": None if t_a is None else ms_a_flops(N, p, l) / t_a / 1e9,
        "ms_a_gbps": None if t_a is None else ms_a_bytes(N, p, l) / t_a / 1e9,
        "ms_alt_iter_ms": None if (t_alt is None or l <= 3) else 1e3 * t_alt,
        "ms_alt_flop": ms_alt_flops(N, p, l) if l > 3 else None,
        "ms_alt_gflops": None if (t_alt is None or l <= 3) else ms_alt_flops(N, p, l) / t_alt / 1e9,
        "numpy_f64_iter_ms": 1e3 * t_np,
        "numpy_f64_flop_600M_form": ms_a_flops(N, p, l) - 4 * p * (l + 1) * N + 2 * p * p * N
        + 2 * l * p * N + 2 * p * (l + 1) * N,
        "peak_rss_mb": peak_mb,
        "rss_before_run_mb": rss0,
        "loadavg_1min": [load0, os.getloadavg()[0]],
    }
    print(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", default="cave,large")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "bench_cnmf.json"))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.threads)
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenes.split(","):
            cfg = SCENES[name]
            X, hsi, msi, sensor = make_pair(**cfg)
            path = Path(tmp) / f"{name}.npz"
            np.savez(path, X=X.numpy(), hsi=hsi.numpy(), msi=msi.numpy(), sensor=sensor.to_json())
            del X, hsi, msi
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", name, "--data", str(path),
                 "--threads", str(args.threads)],
                capture_output=True, text=True, check=True,
            )
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    hdr = (f"{'scene':<7}{'HxW xL, l, r':<20}{'MS it ms':>9}{'GFLOP/s':>9}{'GB/s':>7}{'alt ms':>8}"
           f"{'np f64 ms':>10}{'run s':>8}{'cpu s':>7}{'peak MB':>9}{'PSNR':>7}{'load':>6}")
    print(hdr)
    for r in results:
        geo = f"{r['size']}^2x{r['L']}, {r['l']}, x{r['ratio']}"
        alt = "-" if r["ms_alt_iter_ms"] is None else f"{r['ms_alt_iter_ms']:.1f}"
        print(f"{r['scene']:<7}{geo:<20}{r['ms_a_iter_ms']:>9.1f}{r['ms_a_gflops']:>9.2f}"
              f"{r['ms_a_gbps']:>7.2f}{alt:>8}{r['numpy_f64_iter_ms']:>10.1f}{r['wall_s']:>8.2f}"
              f"{r['cpu_s']:>7.1f}{r['peak_rss_mb']:>9.0f}{r['psnr_db']:>7.2f}{r['loadavg_1min'][0]:>6.1f}")
    print("MS it: data-first A-only iteration; FLOP floor 4p(l+1)N+2pN+3lN "
          f"({results[0]['ms_a_flop'] / 1e6:.1f} M for {results[0]['scene']}); "
          "GB/s against 4N(3p+2(l+1)+l) bytes.")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "cpu_count": os.cpu_count()}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
