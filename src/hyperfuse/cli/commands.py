"""Implementations of the CLI subcommands (kept apart from the option declarations)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._validation import check_pair, check_ratio, to_hwc, to_internal
from ..errors import InputError, ShapeError, SRFError
from ..types import RasterMeta, SensorSpec
from . import _common as C

__all__ = [
    "simulate_command",
    "fuse_command",
    "evaluate_command",
    "methods_command",
    "demo_command",
    "synth_command",
    "estimate_srf_command",
    "estimate_sensor_command",
    "train_scalmu_command",
    "train_mossfuse_command",
]


def _check_writable(*paths: Path) -> None:
    from ..io import format_of

    for p in paths:
        if p.suffix.lower() == ".json":
            continue
        format_of(p)  # raises FormatError for an unknown suffix before any work is done


def _write_all(items: list[tuple[Path, np.ndarray, RasterMeta]]) -> None:
    """Write several outputs; if any fails, remove the ones already written."""
    from ..io import write

    done: list[Path] = []
    try:
        for path, array, meta in items:
            write(path, array, meta)
            done.append(path)
    except BaseException:
        for p in done:
            _remove(p)
        raise


def _remove(p: Path) -> None:
    import shutil

    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)
        for side in (p.with_name(p.name + ".json"), p.with_suffix(".hdr"), p.with_suffix(".img")):
            if side != p:
                side.unlink(missing_ok=True)


def _lr_transform(transform: tuple[float, ...] | None, ratio: int) -> tuple[float, ...] | None:
    if transform is None:
        return None
    a, b, c, d, e, f = transform[:6]
    return (a * ratio, b * ratio, c, d * ratio, e * ratio, f)


def simulate_command(
    *, reference: Path, hsi_out: Path, msi_out: Path, ratio: str, srf: str, psf_sigma: float | None,
    psf_size: int | None, phase: str, snr_hsi: float | None, snr_msi: float | None, seed: int,
    preset: str | None, key: str | None, layout: str | None, scale: str | None, nodata: float | None,
    wavelengths: Path | None, min_coverage: float, sensor_out: Path | None,
) -> None:
    from ..physics.sensor import PRESETS, make_sensor, simulate
    from .main import _phase

    kw: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise InputError(f"unknown preset {preset!r}; choose one of: {', '.join(sorted(PRESETS))}")
        p = PRESETS[preset]
        kw = p.sensor_kwargs()
        ratio = ratio or str(p.ratio)
        if not srf and p.srf is None:
            raise InputError(f"preset {preset} needs {p.srf_note}; pass it with --srf FILE")
        srf = srf or p.srf or ""
        scale = scale or (None if p.scale is None else str(p.scale))
        min_coverage = p.min_coverage if min_coverage == 0.95 else min_coverage
    if not ratio:
        raise InputError("missing --ratio; pass e.g. --ratio 4 (or --preset NAME)")
    if not srf:
        raise InputError("missing --srf; pass a name (hyperfuse srfs) or a file (or --preset NAME)")
    r = check_ratio(ratio)
    _check_writable(hsi_out, msi_out, *([sensor_out] if sensor_out else []))
    cube, meta = C.load_cube(reference, name="reference", key=key, layout=layout, scale=scale, nodata=nodata)
    if preset is not None and PRESETS[preset].crop is not None:
        ch, cw = PRESETS[preset].crop  # type: ignore[misc]
        cube = cube[:ch, :cw]
    if cube.shape[0] < r or cube.shape[1] < r:
        raise ShapeError(f"reference is {cube.shape[0]}x{cube.shape[1]}, smaller than the ratio {r}")
    wl = C.hsi_wavelengths(meta, wavelengths)
    R, band_names, srf_info = C.resolve_srf(srf, wl, cube.shape[2], min_coverage=min_coverage)
    kw.update(
        ratio=r, srf=R, wavelengths=wl, msi_band_names=band_names, phase=_phase(phase),
        snr_hsi=snr_hsi if snr_hsi is not None else kw.get("snr_hsi"),
        snr_msi=snr_msi if snr_msi is not None else kw.get("snr_msi"),
    )
    if psf_sigma is not None:
        kw["psf_sigma"] = psf_sigma
    if psf_size is not None:
        kw["psf_size"] = psf_size
    kw["info"] = {**kw.get("info", {}), **srf_info}
    spec = make_sensor(**kw)
    pair = simulate(to_internal(cube, name="reference"), spec, rng=seed)
    if pair.crop != (0, 0):
        C.err_console.print(
            f"[yellow]note:[/yellow] cropped {pair.crop[0]} rows and {pair.crop[1]} columns so the "
            f"size is a multiple of {r}", highlight=False,
        )
    base = meta.extra.copy()
    base.update(simulation={"seed": seed, "crop": list(pair.crop), "preset": preset, "reference": str(reference)})
    hsi_meta = RasterMeta(wavelengths=wl, fwhm=meta.fwhm, crs=meta.crs,
                          transform=_lr_transform(meta.transform, r), extra=base)
    msi_meta = RasterMeta(crs=meta.crs, transform=meta.transform, band_names=band_names, extra=base)
    outputs = [(hsi_out, to_hwc(pair.hsi), hsi_meta), (msi_out, to_hwc(pair.msi), msi_meta)]
    _write_all(outputs)
    if sensor_out is not None:
        try:
            C.write_json(sensor_out, spec.to_dict())
        except BaseException:
            for p, _, _ in outputs:
                _remove(p)
            raise
    C.console.print(
        f"LR-HSI {tuple(pair.hsi.shape[1:])} -> {hsi_out}\nHR-MSI {tuple(pair.msi.shape[1:])} -> {msi_out}"
        f"\nratio {r}, PSF {spec.psf.shape[0]}x{spec.psf.shape[1]} "
        f"(sigma {spec.info.get('psf_sigma', float('nan')):.3f}), offset {spec.offset[0]}, "
        f"MSI bands {', '.join(band_names)}", highlight=False,
    )


def _parse_options(options: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in options or []:
        if "=" not in item:
            raise InputError(f"--option must be KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip().replace("-", "_")] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip().replace("-", "_")] = v
    return out


def load_sensor_file(path: Path) -> SensorSpec:
    """Read a sensor JSON written by ``simulate --sensor-out`` or an estimator."""
    try:
        data = json.loads(Path(path).read_text())
        return SensorSpec.from_dict(data)
    except FileNotFoundError:
        raise InputError(f"{path}: sensor file not found; check the path") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: not a valid sensor JSON ({exc}); write one with --sensor-out") from None


def fuse_command(
    *, hsi: Path, msi: Path, out: Path, method: str, ratio: str, srf: str | None, sensor: Path | None,
    psf_sigma: float | None, psf_size: int | None, phase: str, record: Path | None, key: str | None,
    layout: str | None, scale: str | None, nodata: float | None, wavelengths: Path | None,
    min_coverage: float, option: list[str] | None, weights: Path | None = None, adapt: bool = False,
    save_sensor: Path | None = None, tile: int | None = None, overlap: int | None = None,
    scheduler: str | None = None, workers: int | None = None,
) -> None:
    from ..methods.registry import get_method

    if tile is not None:
        from .tiling import fuse_tiled_command

        if weights is not None or adapt or record is not None or save_sensor is not None or layout or nodata:
            raise InputError("--tile does not combine with --weights/--adapt/--record/--save-sensor/--layout/--nodata yet")
        fuse_tiled_command(hsi=hsi, msi=msi, out=out, method=method, tile=tile, overlap=overlap,
                           scheduler=scheduler, workers=workers, ratio=ratio or None, srf=srf, sensor=sensor,
                           psf_sigma=psf_sigma, psf_size=psf_size, phase=phase, key=key, scale=scale,
                           wavelengths=wavelengths, min_coverage=min_coverage, option=option)
        return
    from ..physics.sensor import make_sensor
    from .main import _phase

    t0 = time.perf_counter()
    spec_file = load_sensor_file(sensor) if sensor is not None else None
    if not ratio and spec_file is None:
        raise InputError("missing --ratio; pass e.g. --ratio 4")
    r = check_ratio(ratio) if ratio else spec_file.ratio  # type: ignore[union-attr]
    if spec_file is not None and spec_file.ratio != r:
        raise ShapeError(f"--ratio {r} differs from the sensor file's ratio {spec_file.ratio}")
    options = _parse_options(option)
    if weights is not None:
        if not weights.exists():
            raise InputError(f"{weights}: weights file not found; check the path")
        options["weights"] = str(weights)
    if adapt:
        options["adapt"] = True
    fusion = get_method(method, **options)
    _check_writable(out, *([record] if record else []), *([save_sensor] if save_sensor else []))
    h_arr, h_meta = C.load_cube(hsi, name="hsi", key=key, layout=layout, scale=scale, nodata=nodata)
    m_arr, m_meta = C.load_cube(msi, name="msi", key=key, layout=layout, scale=scale, nodata=nodata)
    h = to_internal(h_arr, name="hsi")
    m = to_internal(m_arr, name="msi")
    check_pair(h, m, r)
    wl = C.hsi_wavelengths(h_meta, wavelengths)
    if spec_file is not None:
        spec = spec_file
        if srf is not None and srf != "estimate":
            R, names, info = C.resolve_srf(srf, wl, h.shape[1], min_coverage=min_coverage)
            spec = spec.replace(srf=R, msi_band_names=names, info={**spec.info, **info})
        elif srf == "estimate":
            spec = spec.replace(srf=None)
    else:
        R = None
        names = m_meta.band_names
        info: dict[str, Any] = {}
        if srf is None and fusion.needs_srf and not fusion.blind:
            raise SRFError(f"method {method!r} needs --srf NAME|FILE, or --srf estimate if it is unknown")
        if srf is not None and srf != "estimate":
            R, names, info = C.resolve_srf(srf, wl, h.shape[1], min_coverage=min_coverage)
        spec = make_sensor(r, srf=R, psf_sigma=psf_sigma, psf_size=psf_size, phase=_phase(phase),
                           wavelengths=wl, msi_band_names=names, info=info)
    if spec.srf is not None and spec.srf.shape[0] != m.shape[1]:
        raise SRFError(
            f"SRF has {spec.srf.shape[0]} bands but the MSI has {m.shape[1]}; pass the SRF of this "
            "MSI (bands dropped for low coverage must also be removed from the MSI)"
        )
    with C.progress_bar(f"{method}") as update:
        def progress(stage: str, i: int, total: int, cost: float = math.nan) -> None:
            update(i, total, f"{stage} cost {cost:.4g}" if cost == cost else stage)

        if hasattr(fusion, "progress"):
            fusion.progress = progress  # type: ignore[attr-defined]
        result = fusion.fuse(h, m, spec)
    cube = result.cube
    out_meta = RasterMeta(
        wavelengths=wl, fwhm=h_meta.fwhm, crs=m_meta.crs, transform=m_meta.transform,
        extra={"method": method},
    )
    wall = time.perf_counter() - t0
    rec = C.run_record(
        command="fuse", method=method,
        config=_config_dict(fusion), sensor=result.sensor_estimate or spec, wall_time=wall,
        extra={
            "inputs": {"hsi": str(hsi), "msi": str(msi)},
            "output": str(out),
            "iterations": {k: v for k, v in result.info.items() if "iter" in k},
            "info": result.info,
            "history_length": {k: len(v) for k, v in result.history.items()},
        },
    )
    _write_all([(out, to_hwc(cube.float()), out_meta)])
    try:
        if record is not None:
            C.write_json(record, rec)
        if save_sensor is not None:
            C.write_json(save_sensor, (result.sensor_estimate or spec).to_dict())
    except BaseException:
        for p in (out, record, save_sensor):
            if p is not None:
                _remove(p)
        raise
    C.console.print(
        f"{method}: {tuple(cube.shape[1:])} -> {out} in {wall:.2f} s "
        f"(peak memory {rec['peak_memory_mb']:.0f} MiB)", highlight=False,
    )
    auto = result.info.get("prior_scale")
    if auto:  # SCALMU's per-scene choice: say what it picked and on what
        folds = len(next(iter(auto["fold_scores_db"].values()), []))
        C.console.print(
            f"{method}: learned prior at strength {auto['chosen']:g} (of 0-1), chosen by how well "
            f"{folds} held-out MSI bands are predicted (-o prior_scale=... fixes it)", highlight=False,
        )


def _config_dict(fusion: Any) -> dict[str, Any]:
    import dataclasses

    cfg = getattr(fusion, "config", None)
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else {}


def evaluate_command(
    *, reference: Path, estimate: Path, ratio: str, as_json: bool, metric_set: str, data_range: str,
    crop: str, key: str | None, layout: str | None, scale: str | None,
) -> None:
    from ..metrics import evaluate

    if not ratio:
        raise InputError("missing --ratio; pass the resolution ratio used for ERGAS, e.g. --ratio 4")
    r = check_ratio(ratio)
    try:
        dr: float | str = float(data_range)
    except ValueError:
        dr = data_range
    crop_v: int | str = int(crop) if crop.isdigit() else crop
    ref, _ = C.load_cube(reference, name="reference", key=key, layout=layout, scale=scale)
    est, _ = C.load_cube(estimate, name="estimate", key=key, layout=layout, scale=scale)
    if ref.shape != est.shape:
        raise ShapeError(
            f"reference is {ref.shape} but estimate is {est.shape} (H, W, bands); pass cubes of the same shape"
        )
    res = evaluate(
        torch.from_numpy(est).permute(2, 0, 1)[None], torch.from_numpy(ref).permute(2, 0, 1)[None],
        ratio=r, metric_set=metric_set, data_range=dr, crop=crop_v,
    )
    if as_json:
        print(json.dumps(C.jsonable(res), sort_keys=True))
        return
    from rich.table import Table

    table = Table(title=f"{estimate} vs {reference}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k in ("psnr", "rmse", "sam", "ergas", "ssim", "uiqi", "cc"):
        if k in res:
            table.add_row(k.upper(), f"{res[k]:.4f}")
    C.console.print(table)


def methods_command(*, as_json: bool) -> None:
    from ..methods.registry import list_methods, method_info

    infos = [method_info(n) for n in list_methods()]
    if as_json:
        print(json.dumps(C.jsonable(infos), indent=2))
        return
    from rich.table import Table

    table = Table(title="hyperfuse methods")
    for col in ("name", "blind", "trainable", "parameters", "description"):
        table.add_column(col)
    for i in infos:
        table.add_row(i["name"], str(i["blind"]), str(i["trainable"]),
                      "-" if i["parameters"] is None else f"{i['parameters']:,}", i["description"])
    C.console.print(table)


def demo_command(
    *, out: Path, size: int, bands: int, ratio: int, srf: str, snr: float, endmembers: int, seed: int,
    method: list[str] | None,
) -> None:
    from ..demo import run_demo

    r = check_ratio(ratio)
    if size < 2 * r or size % r:
        raise ShapeError(f"--size {size} must be a multiple of the ratio {r} and at least {2 * r}")
    with C.progress_bar("demo") as update:
        def progress(stage: str, i: int, total: int, cost: float = math.nan) -> None:
            update(i, total, f"cost {cost:.4g}" if cost == cost else "", desc=stage)

        res = run_demo(out, size=size, bands=bands, ratio=r, srf=srf, snr=snr or None, seed=seed,
                       n_endmembers=endmembers,
                       methods=method, progress=progress,
                       log=lambda msg: C.err_console.print(msg, highlight=False))
    from rich.table import Table

    table = Table(title=f"hyperfuse demo: dead leaves {size}x{size}x{bands}, x{r}")
    for col in ("method", "PSNR (dB)", "SAM (deg)", "ERGAS", "SSIM", "time (s)"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for row in res.rows:
        table.add_row(row["method"], f"{row['psnr']:.2f}", f"{row['sam']:.3f}", f"{row['ergas']:.3f}",
                      f"{row['ssim']:.4f}", f"{row['time_s']:.2f}")
    C.console.print(table)
    C.console.print(f"figure: {res.figure}\nresults: {res.folder / 'results.csv'}", highlight=False)


def synth_command(
    *, out: Path, size: tuple[int, int], bands: int, wavelengths: tuple[float, float], endmembers: int,
    library: Path | None, seed: int, preview: Path | None,
) -> None:
    from ..data.synthetic import dead_leaves_scene, preview_figure, save_scene_npz

    if out.suffix != ".npz":
        raise InputError(f"--out must end in .npz, got {out.name!r}")
    if bands < 1 or min(size) < 1 or endmembers < 1:
        raise InputError("--size, --bands and --endmembers must be positive")
    lo, hi = wavelengths
    if not hi > lo:
        raise InputError(f"--wavelengths must be increasing, got {lo} {hi}")
    wl = np.linspace(lo, hi, bands)
    spectra: Any = "builtin" if library is None else library
    scene = dead_leaves_scene(tuple(size), wl, n_endmembers=endmembers, spectra=spectra, rng=seed)
    save_scene_npz(out, scene)
    if preview is not None:
        preview_figure(scene, preview)
    C.console.print(f"scene {size[0]}x{size[1]}x{bands}, {endmembers} endmembers -> {out}"
                    + (f" (preview {preview})" if preview else ""), highlight=False)


def estimate_srf_command(
    *, hsi: Path, msi: Path, out: Path, ratio: str, psf_sigma: float | None, psf_size: int | None,
    phase: str, key: str | None, layout: str | None, scale: str | None, nodata: float | None,
    wavelengths: Path | None,
) -> None:
    from ..physics.estimate import estimate_srf_nnls
    from ..physics.sensor import make_sensor
    from .main import _phase

    if not ratio:
        raise InputError("missing --ratio; pass e.g. --ratio 4")
    r = check_ratio(ratio)
    if out.suffix.lower() not in (".json", ".npy", ".csv"):
        raise InputError(f"--out must end in .json, .npy or .csv, got {out.name!r}")
    h_arr, h_meta = C.load_cube(hsi, name="hsi", key=key, layout=layout, scale=scale, nodata=nodata)
    m_arr, m_meta = C.load_cube(msi, name="msi", key=key, layout=layout, scale=scale, nodata=nodata)
    h, m = to_internal(h_arr, name="hsi"), to_internal(m_arr, name="msi")
    check_pair(h, m, r)
    base = make_sensor(r, psf_sigma=psf_sigma, psf_size=psf_size, phase=_phase(phase),
                       wavelengths=C.hsi_wavelengths(h_meta, wavelengths), msi_band_names=m_meta.band_names)
    est = estimate_srf_nnls(h, m, r, psf=base.psf, offset=base.offset, boundary=base.boundary)
    R = np.asarray(est.srf, dtype=np.float64)
    if out.suffix.lower() == ".json":
        spec = base.replace(srf=R, info={**base.info, "srf_source": "estimated (NNLS with offset)",
                                         "msi_offsets": np.asarray(est.offset).tolist(),
                                         "fit_error": np.asarray(est.error).tolist()})
        C.write_json(out, spec.to_dict())
    elif out.suffix.lower() == ".npy":
        from .._atomic import atomic_path

        with atomic_path(out) as tmp:
            np.save(tmp, R)
    else:
        C.atomic_write_text(out, "\n".join(",".join(f"{v:.10g}" for v in row) for row in R) + "\n")
    errs = ", ".join(f"{e:.3g}" for e in np.atleast_1d(np.asarray(est.error)))
    C.console.print(f"estimated SRF {R.shape[0]}x{R.shape[1]} -> {out} (relative fit error per band: {errs})",
                    highlight=False)


def estimate_sensor_command(
    *, hsi: Path, msi: Path, out: Path, ratio: str, phase: str, psf_size: int | None, key: str | None,
    layout: str | None, scale: str | None, nodata: float | None, wavelengths: Path | None,
) -> None:
    from ..physics.blind import estimate_sensor
    from ..physics.functional import phase_offset
    from .main import _phase

    if not ratio:
        raise InputError("missing --ratio; pass e.g. --ratio 4")
    r = check_ratio(ratio)
    if out.suffix.lower() != ".json":
        raise InputError(f"--out must be a .json file, got {out.name!r}")
    h_arr, h_meta = C.load_cube(hsi, name="hsi", key=key, layout=layout, scale=scale, nodata=nodata)
    m_arr, m_meta = C.load_cube(msi, name="msi", key=key, layout=layout, scale=scale, nodata=nodata)
    h, m = to_internal(h_arr, name="hsi"), to_internal(m_arr, name="msi")
    check_pair(h, m, r)
    o = phase_offset(_phase(phase), r)  # type: ignore[arg-type]
    with C.progress_bar("estimating PSF and SRF"):
        est = estimate_sensor(h, m, r, offset=(o, o), K=psf_size)
    spec = est.to_sensor_spec(ratio=r, offset=(o, o), wavelengths=C.hsi_wavelengths(h_meta, wavelengths),
                              msi_band_names=m_meta.band_names)
    C.write_json(out, spec.to_dict())
    res = ", ".join(f"{v:.3g}" for v in np.atleast_1d(np.asarray(est.residual)))
    C.console.print(f"PSF {spec.psf.shape[0]}x{spec.psf.shape[1]}, SRF {spec.srf.shape[0]}x{spec.srf.shape[1]} "  # type: ignore[union-attr]
                    f"-> {out} (residual per band: {res})", highlight=False)


def train_scalmu_command(*, config: Path | None, out: Path, resume: bool) -> None:
    from ..methods.unrolled.scalmu import train_scalmu

    if config is not None and not config.exists():
        raise InputError(f"{config}: config file not found; check the path")
    with C.progress_bar("training SCALMU") as update:
        def progress(stage: str, i: int, total: int, cost: float = math.nan) -> None:
            update(i, total, f"loss {cost:.4g}" if cost == cost else "", desc=stage)

        path = train_scalmu(config, out_dir=out, resume=resume, progress=progress)
    C.console.print(f"weights: {path}", highlight=False)


def _pair_files(folder: Path, what: str) -> list[Path]:
    from ..io import SUFFIXES

    if not folder.is_dir():
        raise InputError(f"{folder}: {what} folder not found; pass an existing folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and not p.name.startswith("."))
    if not files:
        raise InputError(f"{folder}: no readable cubes in the {what} folder")
    return files


def train_mossfuse_command(
    *, hsi_dir: Path, msi_dir: Path, ratio: str, out: Path, resume: bool, epochs: int | None, steps: int | None,
) -> None:
    import dataclasses

    from ..methods.mossfuse import MossFuseConfig, train_mossfuse

    if not ratio:
        raise InputError("missing --ratio; pass e.g. --ratio 4")
    r = check_ratio(ratio)
    hs, ms = _pair_files(hsi_dir, "HSI"), _pair_files(msi_dir, "MSI")
    if len(hs) != len(ms):
        raise InputError(f"{len(hs)} HSI files but {len(ms)} MSI files; the folders must pair up by sorted name")
    cfg = MossFuseConfig()
    if steps is not None:
        cfg = dataclasses.replace(cfg, steps=steps)
    with C.progress_bar("training MossFuse") as update:
        def progress(stage: str, i: int, total: int, cost: float = math.nan) -> None:
            update(i, total, f"loss {cost:.4g}" if cost == cost else "", desc=stage)

        path = train_mossfuse(hs, ms, config=cfg, out_dir=out, resume=resume, ratio=r, progress=progress,
                              epochs=epochs)
    C.console.print(f"weights: {path}", highlight=False)
