"""SCALMU benchmark: SCALMU vs CNMF (same initialisation, same passes) vs bicubic, one run.

On the same simulated inputs (Wald protocol, Gaussian PSF σ = 0.4247 r, 35 dB SNR on both
images, ×4 and ×8):

- synthetic dead-leaves test scenes never seen in training (seeds 900001+, built-in spectra);
- every real scene found in ``../shared/data`` (relative to this script): Jasper Ridge
  ``[:96, :96] / 1e4`` and Samson ``[:88, :88] / 1402``, with Sentinel-2A (B2, B3, B4, B8 for
  Jasper; B2–B8 with min_coverage 0.9 for Samson) and an RGB camera (nikon-5100, bands with
  coverage ≥ 0.9 over the HSI range).

Methods: ``bicubic``; ``cnmf-matched`` = SCALMU's initialisation followed by K plain coupled
Lee–Seung passes (the learned parts neutral: the "same initialisation, same number of passes"
CNMF); ``cnmf-full`` = the registered CNMF with its default iteration counts and the same p
(a stronger, much longer reference); ``scalmu`` (shipped weights); ``scalmu+adapt``.
``--ablations`` adds inference-time ablations of the trained model (step matrices off, prior
off, first k layers only, the safeguard) and the ``--extra-weights`` models; for an extra
model of another depth K it adds ``cnmf-matched-K{K}`` (K plain passes), its fair baseline. ``--validation`` swaps the scenes for held-out
synthetic validation scenes (seeds 700001+); ``--urban`` for the real validation scene of
``scalmu.md`` §5 (the HYDICE Urban crop, in no reported table; ``--urban wide`` adds five sensors
with 3-6 bands); ``--calibration`` for synthetic scenes with 3-6-band MSIs (seeds 710001+). Only
these are used for design decisions.
``--speed`` times a 512 × 512 × 31, ×8 scene (per layer, whole inference) for SCALMU and the
matched CNMF passes.

    python benchmarks/bench_scalmu.py [--weights PATH] [--ablations] [--speed] [--no-adapt]
                                      [--threads 2] [--adapt-budget S] [--out results.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
DATA = (HERE.parent / ".." / "shared" / "data").resolve()


def _srf(name: str, wl: np.ndarray, bands: list[str] | None, min_coverage: float) -> tuple[np.ndarray, list[str]]:
    from hyperfuse.physics.srf import get_srf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = get_srf(name, wl, min_coverage=min_coverage)
    names = list(res.band_names)
    if bands is None:
        return np.asarray(res.matrix), names
    idx = [names.index(b) for b in bands]
    return np.asarray(res.matrix)[idx], bands


def _dead_leaves_case(name: str, seed: int, k: int, n_endmembers: int, rgb: bool = False,
                      sensor: tuple[str, list[str] | None, float] | None = None) -> dict[str, Any]:
    """A 96² dead-leaves test case: SWIR grid for even k, VNIR for odd; Sentinel-2A or RGB bands,
    or ``sensor`` = (SRF name, bands or None, min coverage)."""
    from hyperfuse.data.synthetic import dead_leaves_scene

    wl = np.linspace(400.0, 2400.0, 120) if k % 2 == 0 else np.linspace(400.0, 1000.0, 60)
    s = dead_leaves_scene((96, 96), wl, n_endmembers=n_endmembers, rng=seed)
    cube = np.moveaxis(np.asarray(s.cube, dtype=np.float64), 0, -1)
    name_, bands, cov = sensor or (FEW_BAND_SENSORS["rgb"] if rgb else ("sentinel-2a", None, 0.95))
    srf, names = _srf(name_, wl, bands, cov)
    return dict(name=name, real=False, cube=cube, wl=wl, srf=srf, bands=names)


def validation_scenes(n: int = 6) -> list[dict[str, Any]]:
    """Held-out synthetic scenes for design decisions (seeds 700001+; neither the training and
    validation streams nor the test scenes below): dead leaves with 4-9 built-in endmembers,
    alternating SWIR/VNIR grids, Sentinel-2A or (every third) RGB responses."""
    return [_dead_leaves_case(f"val{700001 + k}", 700001 + k, k, 4 + k, rgb=k % 3 == 0) for k in range(n)]


#: Few-band sensors (SRF name, bands or None, min coverage) by tag: the calibration scenes use
#: them in this order, ``--urban wide`` by tag (scalmu.md §4.13)
FEW_BAND_SENSORS: dict[str, tuple[str, list[str] | None, float]] = {
    "rgb": ("nikon-5100", None, 0.9),
    "s2-10m": ("sentinel-2a", ["B2", "B3", "B4", "B8"], 0.95),
    "l8-vis": ("landsat-8", ["B2", "B3", "B4"], 0.95),
    "wv2-4": ("wv2-like", ["Blue", "Green", "Red", "NIR1"], 0.95),
    "rgb3": ("sigma-sdmerill", None, 0.9),
    "l8-refl": ("landsat-8", ["B2", "B3", "B4", "B5", "B6", "B7"], 0.95),
}


def calibration_scenes(n: int = 12) -> list[dict[str, Any]]:
    """Synthetic scenes for calibrating a design on few-band MSIs (seeds 710001+, used by
    nothing else): dead leaves with 4-9 endmembers, alternating SWIR/VNIR grids, the 3-6-band
    sensors of :data:`FEW_BAND_SENSORS` in turn (those needing SWIR only on the SWIR grid)."""
    sensors = list(FEW_BAND_SENSORS.values())
    out = []
    for k in range(n):
        # SWIR grid (even k): all six in turn; VNIR grid: the first five (Landsat-8 B5-B7 lie beyond it)
        sensor = sensors[(k // 2) % (len(sensors) - k % 2)]
        out.append(_dead_leaves_case(f"cal{710001 + k}", 710001 + k, k, 4 + k % 6, sensor=sensor))
    return out


def urban_wavelengths() -> np.ndarray:
    """HYDICE Urban's 162-band grid: 210 bands at 400-2500 nm minus the water-vapour and noisy
    bands removed in the 162-band version (1-4, 76, 87, 101-111, 136-153, 198-210, 1-based)."""
    removed = {*range(1, 5), 76, 87, *range(101, 112), *range(136, 154), *range(198, 211)}
    wl = np.linspace(400.0, 2500.0, 210)
    return wl[[k - 1 for k in range(1, 211) if k not in removed]]


def urban_scenes(wide: bool = False) -> list[dict[str, Any]]:
    """The real validation scene of ``scalmu.md`` §5 (not part of any reported table): the
    34 x 78 HYDICE Urban crop, cut to 32 x 72 (a multiple of 4 and 8), with Sentinel-2A (bands
    with coverage >= 0.95) and RGB (nikon-5100, >= 0.9; 2 bands on Urban's grid) responses.

    ``wide`` adds five sensors with 3-6 bands (``scalmu.md`` §4.13): an RGB camera with three
    bands on this grid (sigma-sdmerill, >= 0.9), Sentinel-2A's 10-m bands (B2, B3, B4, B8),
    Landsat-8's visible bands (B2, B3, B4), a WorldView-2-like 4-band product (Blue, Green, Red,
    NIR1) and Landsat-8's reflective bands B2-B7."""
    f = DATA / "urban_hydice_subimage" / "urban_34x78x162_counts_uint16.npy"
    if not f.exists():
        print(f"skip urban: {f} not found", file=sys.stderr)
        return []
    cube = np.load(f).astype(np.float64)[:32, :72] / 1000.0
    wl = urban_wavelengths()
    tags = ("rgb", "rgb3", "s2-10m", "l8-vis", "wv2-4", "l8-refl") if wide else ("rgb",)
    sensors = [("s2", ("sentinel-2a", None, 0.95))] + [(tag, FEW_BAND_SENSORS[tag]) for tag in tags]
    return [dict(name=f"urban-{tag}", real=True, cube=cube, wl=wl, srf=srf, bands=names)
            for tag, (name, bands, cov) in sensors for srf, names in [_srf(name, wl, bands, cov)]]


def load_scenes(synthetic: int) -> list[dict[str, Any]]:
    scenes: list[dict[str, Any]] = []
    jr = DATA / "jasper_ridge"
    cube_p, wl_p = jr / "jasper_100x100x198_uint16.npy", jr / "wavelengths_nm_APPROX_aviris1995.npy"
    if cube_p.exists() and wl_p.exists():
        cube = np.load(cube_p).astype(np.float64)[:96, :96] / 1e4
        wl = np.load(wl_p).astype(np.float64)
        for tag, (srf, names) in (
            ("s2", _srf("sentinel-2a", wl, ["B2", "B3", "B4", "B8"], 0.95)),
            ("rgb", _srf("nikon-5100", wl, None, 0.9)),
        ):
            scenes.append(dict(name=f"jasper-{tag}", real=True, cube=cube, wl=wl, srf=srf, bands=names))
    else:
        print(f"skip jasper: {cube_p} not found", file=sys.stderr)
    sm = DATA / "samson" / "samson_95x95x156_counts_uint16.npy"
    if sm.exists():
        cube = np.load(sm).astype(np.float64)[:88, :88] / 1402.0
        wl = np.linspace(401.0, 889.0, 156)
        for tag, (srf, names) in (
            ("s2", _srf("sentinel-2a", wl, ["B2", "B3", "B4", "B5", "B6", "B7", "B8"], 0.9)),
            ("rgb", _srf("nikon-5100", wl, None, 0.9)),
        ):
            scenes.append(dict(name=f"samson-{tag}", real=True, cube=cube, wl=wl, srf=srf, bands=names))
    else:
        print(f"skip samson: {sm} not found", file=sys.stderr)
    for k in range(synthetic):
        scenes.append(_dead_leaves_case(f"deadleaves{900001 + k}", 900001 + k, k, 6 + 2 * k))
    return scenes


def _metrics(out: torch.Tensor, ref: torch.Tensor, r: int) -> dict[str, float]:
    from hyperfuse.metrics.functional import ergas, psnr, sam

    out = out.detach().float().cpu()
    return {
        "psnr": float(psnr(out, ref, data_range=1.0)[0]),
        "sam": float(sam(out, ref)[0]),
        "ergas": float(ergas(out, ref, ratio=r)[0]),
    }


def _ablate(method: Any, **changes: Any) -> Any:
    """Inference-time ablation: change the architecture flags of every layer."""
    method.net.set_arch(dataclasses.replace(method.net.arch, **changes))
    return method


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from hyperfuse.methods import get_method
    from hyperfuse.methods.classical.cnmf import REFERENCE_VCA
    from hyperfuse.methods.unrolled.scalmu import SCALMU, SCALMUConfig, _choose_p
    from hyperfuse.physics.sensor import make_sensor, simulate

    torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    scenes = (validation_scenes() if args.validation else calibration_scenes() if args.calibration
              else urban_scenes(args.urban == "wide") if args.urban else load_scenes(args.synthetic))
    w = args.weights
    depths = extra_depths(args) if args.ablations else []
    # VCA of every NMF-based method's initialisation (SCALMU, its matched passes, full CNMF)
    vca_opts = REFERENCE_VCA if args.init_vca == "reference" else {}
    Cfg = functools.partial(SCALMUConfig, **vca_opts)
    for sc in scenes:
        x = torch.from_numpy(np.moveaxis(sc["cube"], -1, 0).copy())[None].float()
        for r, seed in [(r, s) for r in args.ratios for s in range(args.noise_seeds)]:
            sensor = make_sensor(
                r, srf=sc["srf"], psf_sigma=0.4247 * r, wavelengths=sc["wl"],
                msi_band_names=tuple(sc["bands"]), snr_hsi=35.0, snr_msi=35.0,
            )
            pair = simulate(x, sensor, rng=seed)
            ref = pair.reference
            p = _choose_p(pair.hsi, SCALMUConfig())
            methods: list[tuple[str, Any]] = [
                ("bicubic", lambda: get_method("bicubic")),
                ("cnmf-matched", lambda: SCALMU(Cfg(weights="neutral", n_endmembers=p))),
                ("cnmf-full", lambda: get_method("cnmf", n_endmembers=p, **vca_opts)),
                ("scalmu", lambda: SCALMU(Cfg(weights=w, n_endmembers=p))),
            ]
            if args.adapt:
                methods.append(("scalmu+adapt", lambda: SCALMU(Cfg(weights=w, n_endmembers=p, adapt=True,
                                                                          adapt_budget_s=args.adapt_budget))))
                methods += [(f"scalmu+adapt:{data}/{select}",
                             (lambda data=data, select=select: SCALMU(Cfg(
                                 weights=w, n_endmembers=p, adapt=True, adapt_budget_s=args.adapt_budget,
                                 adapt_data=data, adapt_select=select))))
                            for data, select in args.adapt_modes]
            if args.ablations:
                methods += [
                    ("abl:no-step", lambda: _ablate(SCALMU(Cfg(weights=w, n_endmembers=p)), use_step=False)),
                    ("abl:no-prior", lambda: _ablate(SCALMU(Cfg(weights=w, n_endmembers=p)), use_prior=False)),
                    ("abl:K=4", lambda: _ablate(SCALMU(Cfg(weights=w, n_endmembers=p)), n_layers=4)),
                    ("abl:safeguard", lambda: SCALMU(Cfg(weights=w, n_endmembers=p, safeguard=True))),
                ]
                methods += [(f"abl:prior*{a if a == 'auto' else format(a, 'g')}",
                             (lambda a=a: SCALMU(Cfg(weights=w, n_endmembers=p, prior_scale=a))))
                            for a in args.prior_scales]
                methods += [(f"abl:{name}", (lambda pth=pth: SCALMU(Cfg(weights=pth, n_endmembers=p))))
                            for name, pth in args.extra_weights]
                # "same number of passes" for extra models of another depth K
                methods += [(f"cnmf-matched-K{k}", (lambda k=k: SCALMU(Cfg(weights="neutral", n_endmembers=p,
                                                                                   n_layers=k))))
                            for k in depths]
            for name, make in methods:
                row: dict[str, Any] = dict(scene=sc["name"], real=sc["real"], ratio=r, noise_seed=seed,
                                           method=name, p=p, msi_bands=list(sc["bands"]))
                try:
                    m = make()
                    if hasattr(m, "net"):
                        row["K"] = m.net.arch.n_layers
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        t0 = time.perf_counter()
                        res = m.fuse(pair.hsi, pair.msi, sensor)
                        row["time_s"] = time.perf_counter() - t0
                    row.update(_metrics(res.cube, ref, r))
                    for key in ("adapt", "prior_scale"):
                        if key in (res.info or {}):
                            row[key] = res.info[key]
                except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
                    row["error"] = f"{type(exc).__name__}: {exc}"[:300]
                rows.append(row)
                print(f"{row['scene']:<22}x{r:<3}n{seed:<2}{name:<16}"
                      + (f"PSNR {row['psnr']:7.2f}  SAM {row['sam']:6.2f}  ERGAS {row['ergas']:6.3f}  "
                         f"{row['time_s']:6.2f}s" if "psnr" in row else row.get("error", ""))
                      + (f"  alpha={row['prior_scale']['chosen']:g}" if "prior_scale" in row else ""), flush=True)
    return rows


def extra_depths(args: argparse.Namespace) -> list[int]:
    """Depths K of the ``--extra-weights`` models other than the shipped model's."""
    from hyperfuse.methods.unrolled.scalmu import SCALMU, SCALMUConfig

    shipped = SCALMU(SCALMUConfig(weights=args.weights)).net.arch.n_layers
    ks = {SCALMU(SCALMUConfig(weights=pth)).net.arch.n_layers for _, pth in args.extra_weights}
    return sorted(ks - {shipped})


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Per case: SCALMU (and +adapt) minus cnmf-matched; then, for every learned variant, the mean
    PSNR gain over its matched baseline (real and synthetic cases apart) and its wins."""
    lines = ["", "SCALMU minus CNMF-matched (same init, same passes): dPSNR dB / dSAM deg / dERGAS"]
    by = {(r["scene"], r["ratio"], r.get("noise_seed", 0), r["method"]): r for r in rows if "psnr" in r}
    gains: dict[tuple[str, bool], list[float]] = {}
    per_case: dict[tuple[str, int, str], list[tuple[float, float, float]]] = {}
    for (scene, ratio, seed, method), r in sorted(by.items()):
        if not (method.startswith(("scalmu", "abl:"))):
            continue
        # a model of another depth K against K plain passes, when the run has them
        base = by.get((scene, ratio, seed, f"cnmf-matched-K{r.get('K')}")) or by.get((scene, ratio, seed, "cnmf-matched"))
        if base is None:
            continue
        d = (r["psnr"] - base["psnr"], r["sam"] - base["sam"], r["ergas"] - base["ergas"])
        gains.setdefault((method, bool(r["real"])), []).append(d[0])
        if method in ("scalmu", "scalmu+adapt"):
            lines.append(f"  {scene:<22}x{ratio:<3}n{seed:<2}{method:<14}{d[0]:+7.2f} {d[1]:+7.3f} {d[2]:+7.3f}")
            per_case.setdefault((scene, ratio, method), []).append(d)
    if any(len(v) > 1 for v in per_case.values()):  # several noise realisations: their mean per case
        lines.append("mean over the noise realisations, per case: dPSNR / dSAM / dERGAS (runs won)")
        for (scene, ratio, method), ds in per_case.items():
            m = np.mean(ds, axis=0)
            lines.append(f"  {scene:<22}x{ratio:<3}   {method:<14}{m[0]:+7.3f} {m[1]:+7.3f} {m[2]:+7.3f}"
                         f"  ({sum(d[0] > 0 for d in ds)}/{len(ds)})")
    lines.append("mean PSNR gain over the matched CNMF passes (wins / cases):")
    for (method, real), v in sorted(gains.items()):
        kind = "real" if real else "synthetic"
        lines.append(f"  {method:<22}{kind:<10}{np.mean(v):+7.3f} dB  ({sum(g > 0 for g in v)}/{len(v)})")
    return lines


def speed(args: argparse.Namespace) -> dict[str, Any]:
    from hyperfuse.data.synthetic import dead_leaves_scene
    from hyperfuse.methods.unrolled.scalmu import SCALMU, SCALMUConfig
    from hyperfuse.physics.sensor import make_sensor, simulate

    torch.set_num_threads(args.threads)
    wl = np.linspace(400.0, 700.0, 31)
    s = dead_leaves_scene((512, 512), wl, n_endmembers=8, rng=900100)
    srf, names = _srf("nikon-5100", wl, None, 0.5)
    sensor = make_sensor(8, srf=srf, psf_sigma=0.4247 * 8, snr_hsi=35.0, snr_msi=35.0)
    pair = simulate(torch.from_numpy(s.cube)[None], sensor, rng=0)
    out: dict[str, Any] = {"shape": [31, 512, 512], "ratio": 8, "threads": args.threads}
    # scalmu = the default (prior scale chosen per scene, "auto"); scalmu-fixed = the same weights
    # at prior_scale 1 (no choice), i.e. the inference itself
    models = {name: SCALMU(cfg) for name, cfg in (("cnmf-matched", SCALMUConfig(weights="neutral")),
                                                   ("scalmu", SCALMUConfig(weights=args.weights)),
                                                   ("scalmu-fixed", SCALMUConfig(weights=args.weights,
                                                                                 prior_scale=1.0)))}
    runs: dict[str, list[tuple[float, dict[str, Any]]]] = {name: [] for name in models}
    for m in models.values():
        m.fuse(pair.hsi[..., :8, :8], pair.msi[..., :64, :64], sensor)  # warm-up
    for _ in range(args.repeat):  # interleaved, so that machine noise hits both alike
        for name, m in models.items():
            t0 = time.perf_counter()
            res = m.fuse(pair.hsi, pair.msi, sensor)
            runs[name].append((time.perf_counter() - t0, res))
    for name, rs in runs.items():
        tots = [t for t, _ in rs]
        res = rs[int(np.argsort(tots)[len(tots) // 2])][1]  # the median run's record
        tm = res.info["timings"]
        tot = float(np.median(tots))
        out[name] = {"total_s": tot, "total_s_runs": tots, "init_s": tm["init"], "per_layer_s": tm["per_layer"],
                     "layers_s": tm["layers"], "p": res.info["p"], "psnr": _metrics(res.cube, pair.reference, 8)["psnr"]}
        auto = res.info.get("prior_scale")
        if auto:
            out[name]["prior_scale"] = auto
        print(f"speed {name:<14} total median {tot:.2f}s (runs {' '.join(f'{t:.2f}' for t in tots)})  "
              f"init {tm['init']:.2f}s  per layer {tm['per_layer']*1e3:.0f} ms  (K={len(tm['layers'])}, p={res.info['p']})"
              + (f"  prior-scale choice {auto['seconds']:.2f}s -> {auto['chosen']:g}" if auto else ""),
              flush=True)
    if args.speed_adapt:  # issue 5: --adapt within 3 min for 512 x 512 on 2 cores
        m = SCALMU(SCALMUConfig(weights=args.weights, adapt=True, adapt_budget_s=args.adapt_budget))
        t0 = time.perf_counter()
        res = m.fuse(pair.hsi, pair.msi, sensor)
        tot = time.perf_counter() - t0
        arec = res.info["adapt"]
        out["scalmu+adapt"] = {"total_s": tot, "adapt": arec, "psnr": _metrics(res.cube, pair.reference, 8)["psnr"]}
        print(f"speed scalmu+adapt   total {tot:.1f}s  (adaptation {arec['seconds']:.1f}s, {arec['steps']} steps, "
              f"budget {args.adapt_budget:.0f}s, best step {arec['best_step']})", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help="weights file (default: the shipped one)")
    ap.add_argument("--ratios", default="4,8")
    ap.add_argument("--synthetic", type=int, default=2, help="number of synthetic test scenes")
    ap.add_argument("--no-adapt", dest="adapt", action="store_false")
    ap.add_argument("--adapt-budget", type=float, default=150.0, help="seconds per adaptation")
    ap.add_argument("--adapt-modes", default="",
                    help="extra adaptation rows DATA/SELECT, comma-separated, e.g. "
                         "dead_leaves/held_out_bands,held_out_bands/held_out_bands")
    ap.add_argument("--ablations", action="store_true")
    ap.add_argument("--validation", action="store_true",
                    help="run on the held-out synthetic validation scenes instead (design decisions)")
    ap.add_argument("--calibration", action="store_true",
                    help="run on synthetic calibration scenes with 3-6-band MSIs (seeds 710001+, §4.13)")
    ap.add_argument("--urban", nargs="?", const="two", choices=("two", "wide"),
                    help="run on the real validation scene (HYDICE Urban crop, scalmu.md §5) instead: with "
                         "its two sensors (S2, RGB), or 'wide': five more with 3-6 bands (§4.13)")
    ap.add_argument("--extra-weights", action="append", default=[], metavar="NAME=PATH",
                    help="extra trained variants for the ablation table")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--speed-adapt", action="store_true",
                    help="with --speed/--speed-only: also time one run with --adapt (default budget)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per model for --speed (median reported)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--noise-seeds", type=int, default=1,
                    help="noise realisations 0..N-1 per case (default 1: realisation 0)")
    ap.add_argument("--init-vca", choices=["paper", "reference"], default="paper",
                    help="VCA of the initialisation of every NMF-based method: the §2.1 default, or the "
                         "reference code's (uniform draws, its branch test, projected spectra)")
    ap.add_argument("--prior-scales", default="",
                    help="with --ablations: comma-separated inference prior scales, e.g. 0.25,0.5,auto")
    ap.add_argument("--auto-window", default=None,
                    help="PX,MINLR: the window of prior_scale='auto' (AUTO_CROP, AUTO_MIN_LR), e.g. 64,8")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    args = ap.parse_args(argv)
    args.ratios = [int(v) for v in args.ratios.split(",")]
    args.adapt_modes = [tuple(v.strip().split("/")) for v in args.adapt_modes.split(",") if v.strip()]
    args.prior_scales = [v.strip() if v.strip() == "auto" else float(v)
                         for v in args.prior_scales.split(",") if v.strip()]
    args.extra_weights = [tuple(s.split("=", 1)) for s in args.extra_weights]
    if args.auto_window:
        from hyperfuse.methods.unrolled import scalmu

        scalmu.AUTO_CROP, scalmu.AUTO_MIN_LR = (int(v) for v in args.auto_window.split(","))
    result: dict[str, Any] = {"argv": sys.argv[1:]}
    if not args.speed_only:
        rows = run(args)
        result["rows"] = rows
        lines = summary(rows)
        print("\n".join(lines))
    if args.speed or args.speed_only:
        result["speed"] = speed(args)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
