"""Blind sensor estimate (classical.md §2.4) on simulated real scenes: accuracy and fusion cost.

Scenes (skipped cleanly when the shared data folder is absent):

- Jasper Ridge 96×96×198 (÷1e4, AVIRIS wavelengths), Sentinel-2A B2, B3, B4, B8;
- Samson 88×88×156 (÷1402, linspace(401, 889, 156) nm), Sentinel-2A B2–B8.

Each is simulated at ×4 and ×8 with the default Gaussian PSF (FWHM = r, K ≡ r mod 2), the
block-centred offset, reflect boundary and 35 dB SNR on both images. The estimator runs with
its defaults (K = 2r − 1, consistent mode, 3 passes). Reported:

- SRF error on the data, ‖(R̂ − R)X‖/‖RX‖ (R is identifiable only on the data's span);
- PSF relative L1 error (both kernels placed on a common grid of offsets from the LR sample
  position), and the σ of a Gaussian fitted to the estimate against the true σ;
- the blurred-MSI measure ‖Y_m D_b̂ − Y_m D_b‖/‖Y_m D_b − mean‖;
- PSNR of HySure (and CNMF, when registered) with the known sensor and with the estimated one
  (HySure blind mode: ``sensor=None``; CNMF: the estimate as a SensorSpec), and the loss.

    python benchmarks/bench_blind.py                  # everything
    python benchmarks/bench_blind.py --scenes jasper --ratios 4 --no-cnmf

Writes benchmarks/results/bench_blind.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import least_squares

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"

SCENES: dict[str, dict[str, Any]] = {
    "jasper": dict(
        cube="jasper_ridge/jasper_100x100x198_uint16.npy",
        wavelengths="jasper_ridge/wavelengths_nm_APPROX_aviris1995.npy",
        scale=1e4,
        size=96,
        bands=("B2", "B3", "B4", "B8"),
    ),
    "samson": dict(
        cube="samson/samson_95x95x156_counts_uint16.npy",
        wavelengths=None,  # linspace(401, 889, 156)
        scale=1402.0,
        size=88,
        bands=("B2", "B3", "B4", "B5", "B6", "B7", "B8"),
    ),
}


def load_scene(name: str) -> tuple[torch.Tensor, np.ndarray] | None:
    """(1, L, H, W) float64 reflectance and wavelengths, or None when the files are absent."""
    cfg = SCENES[name]
    path = DATA / cfg["cube"]
    if not path.exists():
        return None
    cube = np.load(path).astype(np.float64) / cfg["scale"]  # (H, W, L)
    s = cfg["size"]
    cube = cube[:s, :s]
    if cfg["wavelengths"] is None:
        wl = np.linspace(401.0, 889.0, cube.shape[-1])
    else:
        wl = np.load(DATA / cfg["wavelengths"]).astype(np.float64)
    return torch.from_numpy(np.ascontiguousarray(cube.transpose(2, 0, 1)))[None], wl


def sentinel_srf(wl: np.ndarray, bands: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    from hyperfuse.physics.srf import get_srf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = get_srf("sentinel-2a", wl, min_coverage=0.0)
    keep = [i for i, b in enumerate(res.band_names) if b in bands]
    return res.matrix[keep], tuple(res.band_names[i] for i in keep)


def psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    """§1 PSNR: band mean of 10 log10(max(ref_b)² / MSE_b)."""
    x, ref = x.double()[0], ref.double()[0]
    mse = ((x - ref) ** 2).mean(dim=(1, 2))
    return float((10 * torch.log10(ref.amax(dim=(1, 2)) ** 2 / mse)).mean())


def common_grid(k: np.ndarray) -> dict[tuple[int, int], float]:
    """Kernel entries keyed by (2·dy, 2·dx), the offsets from the LR sample position in half pixels.

    In correlation form the entry k[u, v] weighs the HR pixel r·i + o + u − ⌊K/2⌋.
    """
    K = k.shape[0]
    c = K // 2
    return {(2 * (u - c), 2 * (v - c)): float(k[u, v]) for u in range(K) for v in range(K)}


def psf_l1(est: np.ndarray, true: np.ndarray) -> float:
    a, b = common_grid(est), common_grid(true)
    keys = set(a) | set(b)
    return sum(abs(a.get(q, 0.0) - b.get(q, 0.0)) for q in keys) / sum(abs(v) for v in b.values())


def fit_sigma(k: np.ndarray) -> float:
    """σ of an isotropic Gaussian (free amplitude and centre) fitted to a kernel by least squares."""
    K = k.shape[0]
    u = np.arange(K) - (K - 1) / 2.0
    yy, xx = np.meshgrid(u, u, indexing="ij")

    def res(t: np.ndarray) -> np.ndarray:
        a, cy, cx, s = t
        return (a * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s**2)) - k).ravel()

    sol = least_squares(res, x0=[k.max(), 0.0, 0.0, K / 5.0])
    return float(abs(sol.x[3]))


def run_case(
    name: str,
    X: torch.Tensor,
    wl: np.ndarray,
    r: int,
    methods: list[str],
    snr: float,
    est_kw: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from hyperfuse.methods import get_method
    from hyperfuse.physics.blind import estimate_sensor
    from hyperfuse.physics.functional import apply_srf, spatial_degrade
    from hyperfuse.physics.sensor import make_sensor, simulate

    R, names = sentinel_srf(wl, SCENES[name]["bands"])
    sensor = make_sensor(r, srf=R, wavelengths=wl, msi_band_names=names, snr_hsi=snr, snr_msi=snr)
    pair = simulate(X, sensor, rng=0)
    hsi, msi = pair.hsi, pair.msi
    t0 = time.perf_counter()
    est = estimate_sensor(hsi, msi, r, offset=sensor.offset, wavelengths=wl, **(est_kw or {}))
    t_est = time.perf_counter() - t0
    RX = apply_srf(X, R)
    e_srf = float(torch.linalg.vector_norm(apply_srf(X, est.R) - RX) / torch.linalg.vector_norm(RX))
    m64 = msi.double()
    ref = spatial_degrade(m64, sensor.psf, r, sensor.offset, "reflect")
    got = spatial_degrade(m64, est.psf, r, sensor.offset, "reflect")
    e_blur = float(torch.linalg.vector_norm(got - ref) / torch.linalg.vector_norm(ref - ref.mean()))
    true_sigma = float(sensor.info["psf_sigma"])
    row: dict[str, Any] = {
        "scene": name,
        "ratio": r,
        "L": int(X.shape[1]),
        "bands": list(names),
        "size": list(X.shape[-2:]),
        "snr_db": snr,
        "true_psf_size": int(sensor.psf.shape[0]),
        "est_psf_size": int(est.psf.shape[0]),
        "srf_error": e_srf,
        "psf_l1": psf_l1(est.psf, sensor.psf),
        "sigma_true": true_sigma,
        "sigma_fit": fit_sigma(est.psf),
        "blur_error": e_blur,
        "residual": est.residual.tolist(),
        "centroid": list(est.centroid),
        "condition": est.condition,
        "estimate_seconds": t_est,
    }
    est_spec = est.to_sensor_spec(
        r, sensor.offset, wl, boundary=sensor.boundary, msi_band_names=names
    )
    for m in methods:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            known = get_method(m).fuse(hsi, msi, sensor)
            t_known = time.perf_counter() - t0
            t0 = time.perf_counter()
            blind = get_method(m).fuse(hsi, msi, None if m == "hysure" else est_spec)
            t_blind = time.perf_counter() - t0
        pk, pb = psnr(known.cube, pair.reference), psnr(blind.cube, pair.reference)
        row[m] = {
            "psnr_known": pk,
            "psnr_estimated": pb,
            "psnr_lost": pk - pb,
            "seconds_known": t_known,
            "seconds_estimated": t_blind,
        }
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", default="jasper,samson")
    ap.add_argument("--ratios", default="4,8")
    ap.add_argument("--snr", type=float, default=35.0)
    ap.add_argument("--no-cnmf", action="store_true")
    ap.add_argument("--K", type=int, default=None, help="PSF width of the estimate (default 2r-1)")
    ap.add_argument("--lam-B", type=float, default=10.0, help="PSF smoothness weight (default 10)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "bench_blind.json")
    args = ap.parse_args(argv)

    from hyperfuse.methods import list_methods

    methods = ["hysure"]
    if not args.no_cnmf and "cnmf" in list_methods():
        methods.append("cnmf")
    rows = []
    for name in args.scenes.split(","):
        loaded = load_scene(name)
        if loaded is None:
            print(f"skip {name}: data not found under {DATA}")
            continue
        X, wl = loaded
        for r in (int(v) for v in args.ratios.split(",")):
            est_kw = {"K": args.K, "lam_B": args.lam_B}
            row = run_case(name, X, wl, r, methods, args.snr, est_kw)
            row["estimator"] = est_kw
            rows.append(row)
            line = (
                f"{name:7s} x{r}  srf {row['srf_error']:.4f}  psf L1 {row['psf_l1']:.3f}  "
                f"sigma {row['sigma_fit']:.2f}/{row['sigma_true']:.2f}  blur {row['blur_error']:.4f}  "
                f"est {row['estimate_seconds']:.1f}s"
            )
            for m in methods:
                d = row[m]
                line += f"  {m} {d['psnr_known']:.2f}->{d['psnr_estimated']:.2f} ({-d['psnr_lost']:+.2f} dB)"
            print(line, flush=True)
    if not rows:
        print("no scene available; nothing written")
        return 0
    print()
    hdr = (
        f"{'scene':8s}{'r':>3s}{'SRF err':>9s}{'PSF L1':>8s}{'σ fit':>7s}{'σ true':>7s}{'blur':>8s}"
    )
    hdr += "".join(f"{m + ' lost dB':>15s}" for m in methods)
    print(hdr)
    for row in rows:
        s = (
            f"{row['scene']:8s}{row['ratio']:3d}{row['srf_error']:9.4f}{row['psf_l1']:8.3f}"
            f"{row['sigma_fit']:7.2f}{row['sigma_true']:7.2f}{row['blur_error']:8.4f}"
        )
        s += "".join(f"{row[m]['psnr_lost']:15.2f}" for m in methods)
        print(s)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "bench_blind",
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "machine": platform.platform(),
        "threads": torch.get_num_threads(),
        "rows": rows,
    }
    args.out.write_text(json.dumps(record, indent=2, allow_nan=True) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
