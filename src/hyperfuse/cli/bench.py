"""``hyperfuse bench`` and ``hyperfuse evaluate --no-reference`` as plain functions.

The typer registration lives in :mod:`hyperfuse.cli.main`; these functions take already
parsed values and raise :class:`~hyperfuse.errors.HyperfuseError` subclasses for user errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["bench_command", "evaluate_noref_command"]


def bench_command(config: Path, out: Path | None, resume: bool, workers: int | None) -> None:
    """Run (or resume) the benchmark described by ``config``.

    Parameters
    ----------
    config : Path
        Benchmark YAML (see :mod:`hyperfuse.benchmark.config`).
    out : Path, optional
        Output folder; default ``bench-<config name>`` in the current folder.
    resume : bool
        Skip cells already finished in ``out``.
    workers : int, optional
        Parallel cells (default: the config's, else ``min(2, cpus)`` within memory).
    """
    from ..benchmark import load_config, run_benchmark
    from ..benchmark.report import markdown_table
    from . import _common as C

    cfg = load_config(config)
    out_dir = Path(out) if out is not None else Path(f"bench-{cfg.name}")
    if not resume and (out_dir / "cells").is_dir() and any((out_dir / "cells").glob("*.json")):
        C.err_console.print(
            f"[yellow]note:[/yellow] {out_dir} already holds cell results; they are recomputed "
            "(pass --resume to keep them)", highlight=False)
    with C.progress_bar("bench") as update:
        def progress(done: int, total: int, label: str) -> None:
            update(done, total=total, info=label)

        res = run_benchmark(cfg, out_dir, resume=resume, workers=workers, progress=progress)
    C.console.print(markdown_table(res.records), highlight=False, soft_wrap=True)
    C.console.print(
        f"{len(res.cells)} cells: {res.ran} run, {res.skipped} reused, {len(res.failed)} failed "
        f"({res.workers} worker{'s' if res.workers > 1 else ''})", highlight=False)
    for r in res.failed:
        e = r.get("error") or {}
        C.err_console.print(
            f"[red]failed:[/red] {r['method']} on {r['dataset']} / {r['sensor']}: "
            f"{e.get('type')}: {str(e.get('message', ''))[:200]}", highlight=False, soft_wrap=True)
    for name in ("results_csv", "report_md", "report_html"):
        if name in res.files:
            C.console.print(f"wrote {res.files[name]}", highlight=False)


def _chw(cube: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(cube, -1, 0))


def evaluate_noref_command(
    hsi: Path,
    msi: Path,
    fused: Path,
    ratio: int,
    srf: str | None,
    sensor: Path | None,
    as_json: bool,
    *,
    method: str | None = None,
    wavelengths: Path | None = None,
    block: int | None = None,
    scale: str | None = None,
    key: str | None = None,
    layout: str | None = None,
    out: Path | None = None,
) -> None:
    """QNR-style indices, consistency, registration check and (with ``method``) the
    reduced-resolution self-check for a real HSI/MSI pair and its fusion.

    Parameters
    ----------
    hsi, msi, fused : Path
        The LR-HSI, the HR-MSI and the fused cube (any format :func:`hyperfuse.io.read` reads).
    ratio : int
        Resolution ratio (ignored when ``sensor`` is given).
    srf : str, optional
        SRF name or file (enables the spectral consistency, registration check and
        non-blind self-check methods).
    sensor : Path, optional
        Sensor JSON (``SensorSpec.to_dict``, e.g. written by ``simulate --sensor-out`` or a
        blind method's estimate); wins over ``ratio``/``srf``.
    as_json : bool
        Print JSON instead of a table.
    method : str, optional
        Method for the reduced-resolution self-check.
    wavelengths : Path, optional
        HSI wavelengths file (for a named SRF).
    block : int, optional
        QNR block size.
    scale : str, optional
        Divisor (or ``max``) applied to all three cubes.
    key, layout : str, optional
        Reader options for all three cubes.
    out : Path, optional
        Also write the report as JSON here.
    """
    from ..metrics.selfcheck import evaluate_no_reference
    from ..physics import make_sensor
    from ..types import SensorSpec
    from . import _common as C

    x, xmeta = C.load_cube(hsi, name="hsi", key=key, layout=layout, scale=scale)
    y, _ = C.load_cube(msi, name="msi", key=key, layout=layout, scale=scale)
    f, _ = C.load_cube(fused, name="fused", key=key, layout=layout, scale=scale)
    if sensor is not None:
        try:
            spec = SensorSpec.from_dict(json.loads(Path(sensor).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"cannot read the sensor file {str(sensor)!r}: {exc}") from None
    else:
        R = None
        info: dict[str, Any] = {}
        if srf:
            wl = C.hsi_wavelengths(xmeta, wavelengths)
            R, _names, info = C.resolve_srf(srf, wl, x.shape[2])
        spec = make_sensor(int(ratio), srf=R, info=info)
    report = evaluate_no_reference(_chw(x), _chw(y), _chw(f), spec, block=block, method=method)
    report["inputs"] = {"hsi": str(hsi), "msi": str(msi), "fused": str(fused)}
    if out is not None:
        C.write_json(Path(out), report)
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return
    from rich.table import Table

    t = Table(title="no-reference evaluation")
    t.add_column("index")
    t.add_column("value", justify="right")
    t.add_row("QNR ↑", f"{report['qnr']:.4f}")
    t.add_row("D_λ ↓", f"{report['d_lambda']:.4f}")
    t.add_row("D_s ↓", f"{report['d_s']:.4f}")
    for k, v in report["consistency"].items():
        t.add_row(k.replace("_", " "), "–" if v is None else f"{v:.4f}")
    reg = report["registration"]
    if reg is not None:
        t.add_row("registration shift (LR px)", f"{reg['shift_lr_px']:.3f}" + (" [red]> 0.5[/red]" if reg["warning"] else ""))
    sc = report["selfcheck"]
    if sc is not None:
        for k in ("psnr", "sam", "ergas", "ssim"):
            t.add_row(f"self-check {k.upper()} ({sc['method']})", "–" if sc[k] is None else f"{sc[k]:.4f}")
    C.console.print(t)
    C.console.print(f"QNR block {report['qnr_config']['block']}, scale {report['qnr_config'].get('scale')}",
                    highlight=False)
    if reg is not None and reg["warning"]:
        C.err_console.print(
            f"[yellow]warning:[/yellow] the MSI and the HSI are shifted by {reg['shift_lr_px']:.2f} LR pixels; "
            "check the co-registration", highlight=False)
