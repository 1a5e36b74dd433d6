"""MossFuse benchmark: fusion-path speed/memory at 512×512×31 and single-scene quality.

Usage::

    python benchmarks/bench_mossfuse.py speed [--threads 1]
    python benchmarks/bench_mossfuse.py quality [--scenes jasper:4,...,synth:8,leaves:4,leaves:8]
        [--budgets 0,30,60,120,240] [--threads 1] [--out results.json]

``speed`` runs in a fresh process per variant and reports wall time of the eval-mode fusion
path on one 1×31×16×16 / 1×3×512×512 pair (r = 32, ``mossfuse`` geometry), the time of the
full forward with the three self-supervised decoders (what the reference's test forward
runs) *in the same process*, their ratio, and the peak RSS (VmHWM). Timings on a shared
machine are noisy; the ratio is the robust number.

``quality`` follows the CNMF-issue protocol on the shared real scenes (Wald, 35 dB SNR on both
images, FWHM = r Gaussian PSF on 2r+1 taps, phase ⌊r/2⌋) plus a synthetic dead-leaves-like
scene (``synth``) and a dead-leaves scene from our generator (``leaves``), and runs bicubic, CNMF (given the true sensor) and MossFuse (blind, single-scene) at
each CPU budget in the same run. Budget 0 = the initialisation only (classical sensor
estimate + CNMF base, no network step). It prints PSNR/SAM per method and budget, and
MossFuse's estimated PSF σ and SRF error against the truth.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return float(line.split()[1]) / 1024
    return float("nan")


def speed_worker(threads: int, variant: str) -> dict:
    torch.set_num_threads(threads)
    from hyperfuse.methods.mossfuse import MossFuseNet, fusion_path

    torch.manual_seed(0)
    net = MossFuseNet(31, 3, 32, geometry="mossfuse").eval()
    x, Y = torch.rand(1, 31, 16, 16), torch.rand(1, 3, 512, 512)
    out = {"threads": threads, "variant": variant}
    if variant == "fusion":
        fusion_path(net, x, Y)  # warm-up
        ts = []
        for _ in range(2):
            t = time.perf_counter()
            fusion_path(net, x, Y)
            ts.append(time.perf_counter() - t)
        out["fusion_path_s"] = ts
        with torch.no_grad():
            t = time.perf_counter()
            net(x, Y, return_aux=True)
            out["full_forward_s"] = time.perf_counter() - t
        out["ratio_fusion_over_full"] = min(ts) / out["full_forward_s"]
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def speed(args: argparse.Namespace) -> None:
    res = subprocess.run([sys.executable, __file__, "_speed_worker", str(args.threads), "fusion"],
                         capture_output=True, text=True, check=True)
    rec = json.loads(res.stdout.strip().splitlines()[-1])
    print(json.dumps(rec, indent=1))


# ----------------------------------------------------------------------------------------


def load_scene(name: str, r: int):
    from hyperfuse.physics.srf import get_srf

    if name == "jasper":
        X = np.load(DATA / "jasper_ridge/jasper_100x100x198_uint16.npy")[:96, :96].astype(np.float64) / 1e4
        wl = np.load(DATA / "jasper_ridge/wavelengths_nm_APPROX_aviris1995.npy")
        bands = ["B2", "B3", "B4", "B8"]
    elif name == "samson":
        X = np.load(DATA / "samson/samson_95x95x156_counts_uint16.npy")[:88, :88].astype(np.float64) / 1402
        wl = np.linspace(401, 889, 156)
        bands = ["B2", "B3", "B4", "B5", "B6", "B7", "B8"]
    elif name == "leaves":  # dead leaves (hyperfuse generator), seed outside any training stream
        from hyperfuse.data.synthetic import dead_leaves_scene

        wl = np.linspace(400.0, 1000.0, 60)
        s = dead_leaves_scene((96, 96), wl, n_endmembers=8, rng=900001)
        X = np.moveaxis(np.asarray(s.cube, dtype=np.float64), 0, -1)
        bands = ["B2", "B3", "B4", "B5", "B6", "B7", "B8"]
    else:  # "synth": smooth endmember mixture, 96×96×64, 400–1000 nm
        g = np.random.default_rng(7)
        L, p, n = 64, 6, 96
        t = np.linspace(0, 1, L)
        E = 0.05 + sum(g.uniform(0.1, 1, p)[None] * np.exp(-((t[:, None] - g.uniform(0, 1, p)) ** 2)
                       / (2 * g.uniform(0.05, 0.3, p) ** 2)) for _ in range(4))
        E /= 1.1 * E.max()
        f = np.fft.fftfreq(n)[:, None] ** 2 + np.fft.fftfreq(n)[None] ** 2
        F = np.real(np.fft.ifft2(np.fft.fft2(g.standard_normal((p, n, n))) * np.exp(-2 * np.pi**2 * 9 * f)))
        F /= F.std()
        A = np.exp(3 * F) / np.exp(3 * F).sum(0, keepdims=True)
        X = np.einsum("lp,phw->hwl", E, A)
        wl = np.linspace(400, 1000, L)
        bands = ["B2", "B3", "B4", "B8"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = get_srf("sentinel-2a", wl, min_coverage=0.9)  # Samson B8 coverage is 0.949
    R = s.matrix[[s.band_names.index(b) for b in bands]]
    return X, R


def quality(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    from hyperfuse.methods.registry import get_method
    from hyperfuse.metrics import psnr, sam
    from hyperfuse.physics.sensor import make_sensor, simulate

    budgets = [float(b) for b in args.budgets.split(",")]
    results = []
    for item in args.scenes.split(","):
        name, r = item.split(":")
        r = int(r)
        X, R = load_scene(name, r)
        spec = make_sensor(r, srf=R, psf_sigma=0.4247 * r, psf_size=2 * r + 1, phase="block_centred",
                           snr_hsi=35, snr_msi=35)
        pair = simulate(torch.from_numpy(X.transpose(2, 0, 1))[None].float(), spec, rng=0)
        ref = pair.reference

        def score(cube: torch.Tensor) -> tuple[float, float]:
            return float(psnr(cube, ref, data_range=1.0)[0]), float(sam(cube, ref)[0])

        row: dict = {"scene": name, "ratio": r, "shape": list(X.shape)}
        t = time.perf_counter()
        row["bicubic"] = score(get_method("bicubic").fuse(pair.hsi, pair.msi, None).cube)
        t = time.perf_counter()
        row["cnmf"] = score(get_method("cnmf").fuse(pair.hsi, pair.msi, spec).cube)
        row["cnmf_time_s"] = time.perf_counter() - t
        row["mossfuse"] = []
        Rn = R / R.sum(1, keepdims=True)
        for b in budgets:
            m = get_method("mossfuse", time_budget_s=b if b > 0 else None, steps=10**6 if b > 0 else 0,
                           num_threads=args.threads)
            t, c = time.perf_counter(), time.process_time()
            res = m.fuse(pair.hsi, pair.msi, None)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            est = res.sensor_estimate
            rec = {"budget_s": b, "wall_s": wall, "cpu_s": cpu, "load_avg_1min": os.getloadavg()[0], "steps": res.info.get("steps"),
                   "selected_step": res.info.get("selected_step"), "score": score(res.cube),
                   "psf_sigma": est.info["psf_sigma"], "psf_sigma_true": 0.4247 * r,
                   "psf_centre_offset": [est.offset[0], est.psf.shape[0]],
                   "true_offset_size": [r // 2, 2 * r + 1],
                   "srf_mae": float(np.abs(est.srf - Rn).mean()),
                   "srf_max_abs": float(np.abs(est.srf - Rn).max())}
            row["mossfuse"].append(rec)
            print(json.dumps({"scene": name, "r": r, **rec}), flush=True)
        print(json.dumps({k: v for k, v in row.items() if k != "mossfuse"}), flush=True)
        results.append(row)
    print_table(results)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


def print_table(results: list[dict]) -> None:
    """Budget-vs-PSNR table: one row per scene, one column per budget, then CNMF and bicubic."""
    budgets = [m["budget_s"] for m in results[0]["mossfuse"]] if results else []
    head = ["scene"] + [f"MossFuse {b:g} s" for b in budgets] + ["CNMF (known sensor)", "bicubic",
                                                                  "PSF σ est/true", "SRF MAE"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in results:
        last = row["mossfuse"][-1]
        cells = [f"{row['scene']} ×{row['ratio']}"]
        cells += [f"{m['score'][0]:.2f} / {m['score'][1]:.2f}°" for m in row["mossfuse"]]
        cells += [f"{row['cnmf'][0]:.2f} / {row['cnmf'][1]:.2f}°",
                  f"{row['bicubic'][0]:.2f} / {row['bicubic'][1]:.2f}°",
                  f"{np.mean(last['psf_sigma']):.3f} / {last['psf_sigma_true']:.3f}", f"{last['srf_mae']:.4f}"]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_speed_worker":
        print(json.dumps(speed_worker(int(sys.argv[2]), sys.argv[3])))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["speed", "quality"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scenes",
                    default="jasper:4,samson:4,jasper:8,samson:8,synth:4,synth:8,leaves:4,leaves:8")
    ap.add_argument("--budgets", default="0,30,60,120,240")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    (speed if args.mode == "speed" else quality)(args)


if __name__ == "__main__":
    main()
