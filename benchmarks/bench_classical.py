#!/usr/bin/env python
"""Benchmark every registered fusion method on the shared real scenes and dead-leaves scenes.

Scenes (Wald protocol, ``hyperfuse.physics.simulate``):

- Jasper Ridge 100×100×198 ÷ 1e4, cropped to 96×96; Sentinel-2A B2, B3, B4, B8;
- Samson 95×95×156 ÷ 1402, cropped to 88×88, wavelengths linspace(401, 889, 156);
  Sentinel-2A B2–B8 (resampled with min_coverage 0.9: B8 has 0.949 of its response
  inside 401–889 nm and would otherwise be dropped);
- two dead-leaves scenes, 96×96×60 on 400–1000 nm, Sentinel-2A B2–B8A (only when
  ``hyperfuse.data.synthetic.dead_leaves_scene`` exists).

Sensor: Gaussian PSF σ = 0.4247·r, ``make_sensor`` defaults otherwise (block-centred
offset, reflect boundary), 35 dB SNR on both images, ratios 4 and 8. Scores: PSNR
(data_range 1), SAM (degrees), ERGAS (ratio r) from ``hyperfuse.metrics`` and wall time.
The shared data live in ``../../shared/data`` relative to this file; missing scenes are
skipped. Results go to ``benchmarks/results/bench_classical.json``.

Usage::

    python benchmarks/bench_classical.py [--methods gsa,fuse-sylvester] [--ratios 4,8]
                                         [--scenes jasper,samson,deadleaves1,deadleaves2]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
DATA = (HERE.parent / ".." / "shared" / "data").resolve()
OUT = HERE / "results" / "bench_classical.json"

# Literature (Yokoya et al. 2017 review): HySure, CNMF and GLP-HS ahead of GSA and SFIM-HS in
# quality; GSA and SFIM-HS the fastest.
LIT_BETTER = ("hysure", "cnmf", "glp-hs")
LIT_WORSE = ("gsa", "sfim-hs")


def _metrics():  # type: ignore[no-untyped-def]
    try:
        from hyperfuse.metrics import ergas, psnr, sam
    except ImportError:
        from hyperfuse.metrics.functional import ergas, psnr, sam
    return psnr, sam, ergas


def _srf(wl: np.ndarray, bands: list[str], min_coverage: float) -> tuple[np.ndarray, list[str], list[str]]:
    from hyperfuse.physics.srf import get_srf

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = get_srf("sentinel-2a", wl, min_coverage=min_coverage)
    names = list(res.band_names)
    missing = [b for b in bands if b not in names]
    if missing:
        raise RuntimeError(f"Sentinel-2A band(s) {missing} not available on this HSI range")
    idx = [names.index(b) for b in bands]
    return res.matrix[idx], bands, [str(w.message) for w in caught]


def load_scenes(selected: set[str]) -> list[dict[str, Any]]:
    scenes: list[dict[str, Any]] = []
    jr = DATA / "jasper_ridge"
    if "jasper" in selected:
        cube_p, wl_p = jr / "jasper_100x100x198_uint16.npy", jr / "wavelengths_nm_APPROX_aviris1995.npy"
        if cube_p.exists() and wl_p.exists():
            cube = np.load(cube_p).astype(np.float64)[:96, :96] / 1e4
            wl = np.load(wl_p).astype(np.float64)
            R, names, notes = _srf(wl, ["B2", "B3", "B4", "B8"], 0.95)
            scenes.append(dict(name="jasper", cube=cube, wl=wl, srf=R, bands=names, notes=notes))
        else:
            print(f"skip jasper: {cube_p} not found", file=sys.stderr)
    sm = DATA / "samson" / "samson_95x95x156_counts_uint16.npy"
    if "samson" in selected:
        if sm.exists():
            cube = np.load(sm).astype(np.float64)[:88, :88] / 1402.0
            wl = np.linspace(401.0, 889.0, 156)
            R, names, notes = _srf(wl, ["B2", "B3", "B4", "B5", "B6", "B7", "B8"], 0.9)
            scenes.append(dict(name="samson", cube=cube, wl=wl, srf=R, bands=names, notes=notes))
        else:
            print(f"skip samson: {sm} not found", file=sys.stderr)
    try:
        from hyperfuse.data.synthetic import dead_leaves_scene
    except ImportError:
        dead_leaves_scene = None
    for seed in (1, 2):
        name = f"deadleaves{seed}"
        if name not in selected:
            continue
        if dead_leaves_scene is None:
            print(f"skip {name}: hyperfuse.data.synthetic.dead_leaves_scene not available", file=sys.stderr)
            continue
        wl = np.linspace(400.0, 1000.0, 60)
        s = dead_leaves_scene((96, 96), wl, n_endmembers=8, rng=seed)
        cube = np.moveaxis(np.asarray(s.cube, dtype=np.float64), 0, -1)
        R, names, notes = _srf(wl, ["B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A"], 0.95)
        scenes.append(dict(name=name, cube=cube, wl=wl, srf=R, bands=names, notes=notes))
    return scenes


def run(methods: list[str], ratios: list[int], scenes: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    from hyperfuse.methods import get_method
    from hyperfuse.physics.sensor import make_sensor, simulate

    psnr, sam, ergas = _metrics()
    rows: list[dict[str, Any]] = []
    # Warm-up (first-call library initialisation must not count against the first method).
    if scenes:
        sc0 = scenes[0]
        x0 = torch.from_numpy(np.moveaxis(sc0["cube"][:32, :32], -1, 0).copy())[None].float()
        s0 = make_sensor(4, srf=sc0["srf"], psf_sigma=0.4247 * 4)
        p0 = simulate(x0, s0, rng=seed)
        for name in methods:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    get_method(name).fuse(p0.hsi, p0.msi, s0)
            except Exception:  # noqa: BLE001 - reported on the real run
                pass
    for sc in scenes:
        x = torch.from_numpy(np.moveaxis(sc["cube"], -1, 0).copy())[None].float()
        for r in ratios:
            sensor = make_sensor(
                r, srf=sc["srf"], psf_sigma=0.4247 * r, wavelengths=sc["wl"],
                msi_band_names=tuple(sc["bands"]), snr_hsi=35.0, snr_msi=35.0,
            )
            pair = simulate(x, sensor, rng=seed)
            ref = pair.reference
            for name in methods:
                row: dict[str, Any] = dict(scene=sc["name"], ratio=r, method=name,
                                           shape=list(ref.shape[1:]), msi_bands=sc["bands"])
                try:
                    method = get_method(name)
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        t0 = time.perf_counter()
                        out = method.fuse(pair.hsi, pair.msi, sensor).cube
                        row["time_s"] = time.perf_counter() - t0
                    out = out.detach().float().cpu()
                    row["psnr"] = float(psnr(out, ref, data_range=1.0)[0])
                    row["sam"] = float(sam(out, ref)[0])
                    row["ergas"] = float(ergas(out, ref, ratio=r)[0])
                    row["warnings"] = sorted({str(w.message) for w in caught})
                except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
                    row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                    row["traceback"] = traceback.format_exc(limit=3)
                rows.append(row)
                _print_row(row)
    return rows


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


HEADER = f"{'scene':<12} {'r':>2} {'method':<16} {'PSNR':>7} {'SAM':>7} {'ERGAS':>7} {'time s':>8}"


def _print_row(row: dict[str, Any]) -> None:
    if "error" in row:
        print(f"{row['scene']:<12} {row['ratio']:>2} {row['method']:<16} error: {row['error']}", flush=True)
        return
    print(
        f"{row['scene']:<12} {row['ratio']:>2} {row['method']:<16} {_fmt(row['psnr'], '7.2f')} "
        f"{_fmt(row['sam'], '7.3f')} {_fmt(row['ergas'], '7.3f')} {_fmt(row['time_s'], '8.3f')}",
        flush=True,
    )


def literature_check(rows: list[dict[str, Any]]) -> list[str]:
    """Where the measured ordering departs from the literature's."""
    notes: list[str] = []
    ok = [r for r in rows if "error" not in r]
    for key in sorted({(r["scene"], r["ratio"]) for r in ok}):
        res = {r["method"]: r for r in ok if (r["scene"], r["ratio"]) == key}
        tag = f"{key[0]} x{key[1]}"
        for good in LIT_BETTER:
            for bad in LIT_WORSE:
                if good in res and bad in res and res[good]["psnr"] < res[bad]["psnr"]:
                    notes.append(
                        f"{tag}: {good} ({res[good]['psnr']:.2f} dB) below {bad} ({res[bad]['psnr']:.2f} dB)"
                    )
        fast = [m for m in LIT_WORSE if m in res]
        others = [m for m in res if m not in LIT_WORSE and m != "bicubic"]
        for f in fast:
            for o in others:
                if res[o]["time_s"] < res[f]["time_s"]:
                    notes.append(
                        f"{tag}: {o} ({res[o]['time_s']:.3f} s) faster than {f} ({res[f]['time_s']:.3f} s)"
                    )
    return notes


def main(argv: list[str] | None = None) -> int:
    from hyperfuse.methods import list_methods

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="", help="comma-separated (default: every registered method)")
    ap.add_argument("--ratios", default="4,8")
    ap.add_argument("--scenes", default="jasper,samson,deadleaves1,deadleaves2")
    ap.add_argument("--seed", type=int, default=0, help="noise seed")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    registered = list_methods()
    methods = [m for m in args.methods.split(",") if m] or registered
    unknown = [m for m in methods if m not in registered]
    if unknown:
        print(f"unknown or unregistered methods skipped: {unknown}", file=sys.stderr)
    methods = [m for m in methods if m in registered]
    ratios = [int(v) for v in args.ratios.split(",") if v]
    scenes = load_scenes(set(args.scenes.split(",")))
    if not scenes:
        print("no scenes available; nothing to do", file=sys.stderr)
        return 0
    print(f"methods: {', '.join(methods)}")
    print(HEADER)
    rows = run(methods, ratios, scenes, args.seed)
    notes = literature_check(rows)
    print("\nDepartures from the literature ordering:" if notes else "\nOrdering as in the literature.")
    for n in notes:
        print("  " + n)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "script": "benchmarks/bench_classical.py",
        "argv": sys.argv[1:] if argv is None else argv,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "protocol": "Wald; Gaussian PSF sigma=0.4247 r; make_sensor defaults; SNR 35 dB on both; "
        "metrics: psnr(data_range=1), sam (deg), ergas(ratio=r)",
        "scenes": {s["name"]: {"shape": list(s["cube"].shape), "msi_bands": s["bands"],
                               "srf_notes": s["notes"]} for s in scenes},
        "results": rows,
        "literature_departures": notes,
    }
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, allow_nan=True))
    tmp.replace(out)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
