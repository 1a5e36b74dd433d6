"""The built-in main job: every ready method on a dead-leaves scene with known truth."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._validation import to_hwc
from .errors import HyperfuseError, MissingDependencyError

__all__ = ["DemoResult", "run_demo", "DEMO_OPTIONS"]

# Budgets that keep the whole demo within a few minutes on 2 CPU cores; the methods'
# own defaults (used by `hyperfuse fuse`) are larger.
DEMO_OPTIONS: dict[str, dict[str, Any]] = {
    "mossfuse": {"time_budget_s": 45.0},
    "hysure": {"basis": "svd"},
}


@dataclass
class DemoResult:
    """Scores per method and the files written."""

    rows: list[dict[str, Any]]
    folder: Path
    figure: Path
    files: list[Path] = field(default_factory=list)


def _srf_for(name: str, wavelengths: np.ndarray) -> tuple[np.ndarray, tuple[str, ...], str]:
    from .physics.srf import get_srf

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bands beyond the range are dropped; shown in the record
            res = get_srf(name, wavelengths)
        return np.asarray(res.matrix), tuple(res.band_names), name
    except MissingDependencyError:
        res = get_srf("gaussian:12", wavelengths)  # offline fallback without pyrsr
        return np.asarray(res.matrix), tuple(res.band_names), "gaussian:12"


def run_demo(
    out_dir: str | Path = "hyperfuse-demo",
    *,
    size: int = 256,
    bands: int = 100,
    wavelength_range: tuple[float, float] = (450.0, 2400.0),
    ratio: int = 8,
    srf: str = "sentinel-2a",
    n_endmembers: int = 20,
    snr: float | None = 35.0,
    seed: int = 0,
    methods: list[str] | None = None,
    progress: Callable[[str, int, int, float], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> DemoResult:
    """Generate a dead-leaves scene, simulate a sensor pair, run the methods and score them.

    Parameters
    ----------
    out_dir : str or Path
        Folder for ``demo.png``, ``endmembers.png``, ``results.json`` and ``results.csv``.
    size, bands, wavelength_range
        Scene size (size x size pixels, ``bands`` bands evenly spread over the range in nm).
    ratio : int
        Resolution ratio of the simulated pair.
    srf : str
        MSI spectral response name (``hyperfuse srfs``).
    n_endmembers : int
        Materials in the scene.
    snr : float, optional
        Noise on both images in dB (``None``: noise-free).
    seed : int
        Scene and noise seed.
    methods : list of str, optional
        Methods to run (default: every registered method).
    progress, log
        Callbacks for progress bars and messages.

    Returns
    -------
    DemoResult
    """
    from .data.synthetic import dead_leaves_scene
    from .methods.registry import get_method, list_methods
    from .metrics import evaluate
    from .physics.sensor import make_sensor, simulate
    from .viz import comparison_figure, endmember_figure

    say = log or (lambda msg: None)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    wl = np.linspace(*wavelength_range, bands)
    t0 = time.perf_counter()
    scene = dead_leaves_scene((size, size), wl, n_endmembers=n_endmembers, rng=seed)
    say(f"scene: {size}x{size}x{bands} dead leaves, {n_endmembers} materials "
        f"({time.perf_counter() - t0:.2f} s)")
    R, names, srf_used = _srf_for(srf, wl)
    spec = make_sensor(ratio, srf=R, wavelengths=wl, msi_band_names=names, snr_hsi=snr, snr_msi=snr,
                       info={"srf_source": srf_used})
    x = torch.as_tensor(np.asarray(scene.cube), dtype=torch.float32)[None]
    pair = simulate(x, spec, rng=seed)
    say(f"sensor: x{ratio}, {srf_used} ({len(names)} bands), Gaussian PSF FWHM = {ratio} px, "
        f"noise {'none' if snr is None else f'{snr} dB'}")
    rows: list[dict[str, Any]] = []
    outputs: dict[str, np.ndarray] = {}
    extras: dict[str, Any] = {}
    for name in methods or list_methods():
        try:
            method = get_method(name, **DEMO_OPTIONS.get(name, {}))
            if hasattr(method, "progress") and progress is not None:
                method.progress = lambda stage, i, n, cost=float("nan"), _m=name: progress(  # type: ignore[attr-defined]
                    f"{_m}: {stage}", i, n, cost
                )
            t = time.perf_counter()
            res = method.fuse(pair.hsi, pair.msi, spec)
            elapsed = time.perf_counter() - t
        except HyperfuseError as exc:
            say(f"{name}: skipped ({exc})")
            continue
        scores = evaluate(res.cube, pair.reference, ratio=ratio, data_range=1.0)
        rows.append({"method": name, "psnr": scores["psnr"], "sam": scores["sam"], "ergas": scores["ergas"],
                     "ssim": scores["ssim"], "time_s": elapsed})
        outputs[name] = to_hwc(res.cube)
        if res.endmembers is not None and res.abundances is not None and not extras:
            extras = {"name": name, "E": res.endmembers[0].cpu().numpy(), "A": res.abundances[0].cpu().numpy()}
    ref = to_hwc(pair.reference)
    msi_centres = (R @ wl) / R.sum(axis=1)
    msi_rgb = [int(np.argmin(np.abs(msi_centres - t))) for t in (650.0, 550.0, 450.0)]
    figure = comparison_figure(
        folder / "demo.png", reference=ref, hsi=to_hwc(pair.hsi), msi=to_hwc(pair.msi), outputs=outputs,
        wavelengths=wl, msi_bands=msi_rgb, scores={r["method"]: r for r in rows},
        title=f"dead leaves {size}x{size}x{bands}, x{ratio}, {srf_used}",
    )
    files = [figure]
    files.append(endmember_figure(folder / "scene_endmembers.png", np.asarray(scene.endmembers),
                                  np.asarray(scene.abundances), wl, title="ground-truth materials"))
    if extras:
        files.append(endmember_figure(folder / f"{extras['name']}_endmembers.png", extras["E"], extras["A"], wl,
                                      title=f"{extras['name']}: estimated endmembers and abundances"))
    from .records import write_json

    write_json(folder / "results.json", {"rows": rows, "sensor": spec.to_dict(), "seed": seed,
                                         "scene": {"size": size, "bands": bands, "range_nm": list(wavelength_range),
                                                   "n_endmembers": n_endmembers}})
    csv = "method,psnr,sam,ergas,ssim,time_s\n" + "".join(
        f"{r['method']},{r['psnr']:.4f},{r['sam']:.4f},{r['ergas']:.4f},{r['ssim']:.5f},{r['time_s']:.3f}\n"
        for r in rows
    )
    from ._atomic import atomic_write_text

    atomic_write_text(folder / "results.csv", csv)
    files += [folder / "results.json", folder / "results.csv"]
    return DemoResult(rows=rows, folder=folder, figure=figure, files=files)
