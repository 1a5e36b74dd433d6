"""The ``hyperfuse`` command.

Every subcommand is a few lines that build library objects and call the library.
Errors caused by input (any :class:`~hyperfuse.errors.HyperfuseError`) print one
line on stderr and exit with code 2; nothing is written in that case.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from .. import __version__
from ..errors import HyperfuseError, InputError

app = typer.Typer(
    name="hyperfuse",
    help="Hyperspectral-multispectral image fusion: simulate, fuse, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Shared option declarations -------------------------------------------------------------
Ratio = Annotated[str, typer.Option("--ratio", help="Integer resolution ratio r = MSI size / HSI size.")]
PsfSigma = Annotated[
    float | None, typer.Option("--psf-sigma", help="Gaussian PSF sigma in HR pixels [default: FWHM = r].")
]
PsfSize = Annotated[
    int | None, typer.Option("--psf-size", help="PSF width K [default: smallest K >= 2*ceil(3 sigma)+1, K = r mod 2].")
]
Phase = Annotated[
    str,
    typer.Option("--phase", help="Sampling phase: block_centred, mossfuse, corner, or an offset 0..r-1."),
]
Key = Annotated[str | None, typer.Option("--key", help="Variable/dataset name in .mat/.h5/.zarr files.")]
Layout = Annotated[
    str | None, typer.Option("--layout", help="Axis order of .npy/.mat arrays: hwc (default) or chw.")
]
Scale = Annotated[
    str | None,
    typer.Option(
        "--scale",
        help="Divide stored values by this number (or 'max': the cube maximum). Required for "
        "integer data without a scale in their metadata.",
    ),
]
Nodata = Annotated[
    float | None,
    typer.Option("--nodata", help="Value marking missing pixels; they and NaN/Inf are filled from neighbours."),
]
Wavelengths = Annotated[
    Path | None, typer.Option("--wavelengths", help="HSI band centres in nm (.npy/.csv/.txt), if the file has none.")
]
MinCoverage = Annotated[
    float, typer.Option("--min-coverage", help="Drop MSI bands whose response the HSI covers less than this.")
]


def _phase(value: str) -> str | int:
    if value.lstrip("-").isdigit():
        return int(value)
    if value not in ("block_centred", "mossfuse", "corner"):
        raise InputError(f"--phase must be block_centred, mossfuse, corner or an integer, got {value!r}")
    return value


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hyperfuse {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Hyperspectral-multispectral image fusion."""


# simulate ----------------------------------------------------------------------------------
@app.command()
def simulate(
    reference: Annotated[Path, typer.Argument(help="Reference cube (H, W, L) to degrade.")],
    hsi_out: Annotated[Path, typer.Option("--hsi-out", help="Where to write the LR-HSI.")],
    msi_out: Annotated[Path, typer.Option("--msi-out", help="Where to write the HR-MSI.")],
    ratio: Ratio = "",
    srf: Annotated[str, typer.Option("--srf", help="SRF name (see `hyperfuse srfs`) or file.")] = "",
    psf_sigma: PsfSigma = None,
    psf_size: PsfSize = None,
    phase: Phase = "block_centred",
    snr_hsi: Annotated[float | None, typer.Option("--snr-hsi", help="HSI noise SNR in dB.")] = None,
    snr_msi: Annotated[float | None, typer.Option("--snr-msi", help="MSI noise SNR in dB.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Noise seed.")] = 0,
    preset: Annotated[str | None, typer.Option("--preset", help="A named protocol (protocols.md §7).")] = None,
    key: Key = None,
    layout: Layout = None,
    scale: Scale = None,
    nodata: Nodata = None,
    wavelengths: Wavelengths = None,
    min_coverage: MinCoverage = 0.95,
    sensor_out: Annotated[
        Path | None, typer.Option("--sensor-out", help="Write the sensor (ratio, PSF, SRF) as JSON.")
    ] = None,
) -> None:
    """Simulate an (LR-HSI, HR-MSI) pair from a reference cube (Wald protocol)."""
    kwargs = dict(locals())
    from .commands import simulate_command

    simulate_command(**kwargs)


# fuse --------------------------------------------------------------------------------------
@app.command()
def fuse(
    hsi: Annotated[Path, typer.Option("--hsi", help="Low-resolution hyperspectral image.")],
    msi: Annotated[Path, typer.Option("--msi", help="High-resolution multispectral image.")],
    out: Annotated[Path, typer.Option("--out", help="Output cube (format from the suffix).")],
    method: Annotated[str, typer.Option("--method", help="Fusion method (see `hyperfuse methods`).")] = "cnmf",
    ratio: Ratio = "",
    srf: Annotated[
        str | None, typer.Option("--srf", help="SRF name or file; 'estimate' if unknown.")
    ] = None,
    sensor: Annotated[
        Path | None, typer.Option("--sensor", help="Sensor JSON (from --sensor-out or estimate-srf).")
    ] = None,
    psf_sigma: PsfSigma = None,
    psf_size: PsfSize = None,
    phase: Phase = "block_centred",
    record: Annotated[Path | None, typer.Option("--record", help="Write the run record (JSON).")] = None,
    key: Key = None,
    layout: Layout = None,
    scale: Scale = None,
    nodata: Nodata = None,
    wavelengths: Wavelengths = None,
    min_coverage: MinCoverage = 0.95,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="Method option KEY=VALUE (repeatable).")
    ] = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Trained weights for a learned method.")
    ] = None,
    adapt: Annotated[
        bool, typer.Option("--adapt", help="Fine-tune a learned method on this scene first (no ground truth).")
    ] = False,
    save_sensor: Annotated[
        Path | None, typer.Option("--save-sensor", help="Write the sensor used or estimated (JSON).")
    ] = None,
    tile: Annotated[
        int | None, typer.Option("--tile", help="Fuse in HR tiles of this size (scenes larger than memory).")
    ] = None,
    overlap: Annotated[
        int | None, typer.Option("--overlap", help="Tile overlap in HR pixels [default: 2K + 2r].")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Dask scheduler for tiles: threads, processes or tcp://HOST:PORT.")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Parallel tiles.")] = None,
) -> None:
    """Fuse an LR-HSI with an HR-MSI (whole, or tiled with --tile)."""
    kwargs = dict(locals())
    from .commands import fuse_command

    fuse_command(**kwargs)


@app.command("fuse-batch")
def fuse_batch(
    pairs: Annotated[Path, typer.Argument(help="CSV file with one HSI,MSI,OUT row per scene.")],
    method: Annotated[str, typer.Option("--method", help="Fusion method.")] = "cnmf",
    tile: Annotated[int, typer.Option("--tile", help="HR tile size.")] = 512,
    overlap: Annotated[int | None, typer.Option("--overlap", help="Tile overlap in HR pixels.")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="threads, processes or tcp://HOST:PORT.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Parallel tiles.")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Skip finished tiles and scenes.")] = True,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="Continue after a failed scene.")] = False,
    ratio: Ratio = "",
    srf: Annotated[str | None, typer.Option("--srf", help="SRF name or file.")] = None,
    sensor: Annotated[Path | None, typer.Option("--sensor", help="Sensor JSON.")] = None,
    psf_sigma: PsfSigma = None,
    psf_size: PsfSize = None,
    phase: Phase = "block_centred",
    key: Key = None,
    scale: Scale = None,
    wavelengths: Wavelengths = None,
    min_coverage: MinCoverage = 0.95,
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="Method option KEY=VALUE.")] = None,
) -> None:
    """Fuse many scenes, tile by tile, resumably."""
    kwargs = dict(locals())
    from .tiling import fuse_batch_command

    failed = fuse_batch_command(**kwargs)
    if failed:
        raise typer.Exit(1)


# evaluate ----------------------------------------------------------------------------------
@app.command()
def evaluate(
    estimate: Annotated[Path, typer.Option("--estimate", help="Fused cube to score.")],
    reference: Annotated[Path | None, typer.Option("--reference", help="Ground-truth cube.")] = None,
    ratio: Ratio = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    metric_set: Annotated[
        str, typer.Option("--metric-set", help="hyperfuse, yokoya2017 or mossfuse_reference.")
    ] = "hyperfuse",
    data_range: Annotated[
        str, typer.Option("--data-range", help="PSNR/SSIM peak: a number, ref_band_max or ref_global_max.")
    ] = "1.0",
    crop: Annotated[str, typer.Option("--crop", help="Border pixels to exclude, or 'ratio'.")] = "0",
    no_reference: Annotated[
        bool, typer.Option("--no-reference", help="Real pair without ground truth: QNR, consistency, self-check.")
    ] = False,
    hsi: Annotated[Path | None, typer.Option("--hsi", help="LR-HSI (with --no-reference).")] = None,
    msi: Annotated[Path | None, typer.Option("--msi", help="HR-MSI (with --no-reference).")] = None,
    srf: Annotated[str | None, typer.Option("--srf", help="SRF name or file (with --no-reference).")] = None,
    sensor: Annotated[Path | None, typer.Option("--sensor", help="Sensor JSON (with --no-reference).")] = None,
    method: Annotated[
        str | None, typer.Option("--method", help="Method for the reduced-resolution self-check.")
    ] = None,
    block: Annotated[int | None, typer.Option("--block", help="QNR block size S [default 32].")] = None,
    wavelengths: Wavelengths = None,
    key: Key = None,
    layout: Layout = None,
    scale: Scale = None,
) -> None:
    """Score an estimate against a reference, or (--no-reference) a real pair's fusion without one."""
    if no_reference:
        from .bench import evaluate_noref_command

        if hsi is None or msi is None:
            raise InputError("--no-reference needs --hsi and --msi (the pair that was fused)")
        if not ratio and sensor is None:
            raise InputError("missing --ratio; pass e.g. --ratio 4 (or --sensor FILE)")
        from .._validation import check_ratio

        evaluate_noref_command(
            hsi, msi, estimate, check_ratio(ratio) if ratio else 0, srf, sensor, as_json,
            method=method, wavelengths=wavelengths, block=block, scale=scale, key=key, layout=layout,
        )
        return
    if reference is None:
        raise InputError("missing --reference; pass the ground truth, or --no-reference for a real pair")
    kwargs = dict(reference=reference, estimate=estimate, ratio=ratio, as_json=as_json, metric_set=metric_set,
                  data_range=data_range, crop=crop, key=key, layout=layout, scale=scale)
    from .commands import evaluate_command

    evaluate_command(**kwargs)


# bench ----------------------------------------------------------------------------------------
@app.command()
def bench(
    config: Annotated[Path, typer.Option("--config", help="Benchmark YAML (methods x scenes x sensors).")],
    out: Annotated[Path | None, typer.Option("--out", help="Output folder [default: bench-<config name>].")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Skip cells already finished in --out.")] = False,
    workers: Annotated[int | None, typer.Option("--workers", help="Cells run in parallel.")] = None,
) -> None:
    """Run a benchmark: every method on every scene and sensor, with tables, report and figures."""
    from .bench import bench_command

    bench_command(config, out, resume, workers)


# methods -----------------------------------------------------------------------------------
@app.command()
def methods(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the registered fusion methods."""
    from .commands import methods_command

    methods_command(as_json=as_json)


@app.command()
def srfs() -> None:
    """List the built-in spectral response names usable with --srf."""
    from ..physics.srf import list_srfs

    for name in list_srfs():
        typer.echo(name)


# estimate-srf ------------------------------------------------------------------------------
@app.command("estimate-srf")
def estimate_srf(
    hsi: Annotated[Path, typer.Option("--hsi", help="Low-resolution hyperspectral image.")],
    msi: Annotated[Path, typer.Option("--msi", help="High-resolution multispectral image.")],
    out: Annotated[Path, typer.Option("--out", help="sensor.json (full sensor) or .npy/.csv (the l x L matrix).")],
    ratio: Ratio = "",
    psf_sigma: PsfSigma = None,
    psf_size: PsfSize = None,
    phase: Phase = "block_centred",
    key: Key = None,
    layout: Layout = None,
    scale: Scale = None,
    nodata: Nodata = None,
    wavelengths: Wavelengths = None,
) -> None:
    """Estimate the MSI's spectral response from the pair (non-negative least squares)."""
    kwargs = dict(locals())
    from .commands import estimate_srf_command

    estimate_srf_command(**kwargs)


# estimate-sensor -----------------------------------------------------------------------------
@app.command("estimate-sensor")
def estimate_sensor(
    hsi: Annotated[Path, typer.Option("--hsi", help="Low-resolution hyperspectral image.")],
    msi: Annotated[Path, typer.Option("--msi", help="High-resolution multispectral image.")],
    out: Annotated[Path, typer.Option("--out", help="sensor.json: estimated PSF and SRF.")],
    ratio: Ratio = "",
    phase: Phase = "block_centred",
    psf_size: Annotated[int | None, typer.Option("--psf-size", help="Width K of the estimated PSF [default: 2r-1].")] = None,
    key: Key = None,
    layout: Layout = None,
    scale: Scale = None,
    nodata: Nodata = None,
    wavelengths: Wavelengths = None,
) -> None:
    """Estimate the PSF and the SRF blindly from the pair (HySure's estimator)."""
    kwargs = dict(locals())
    from .commands import estimate_sensor_command

    estimate_sensor_command(**kwargs)


# train ---------------------------------------------------------------------------------------
train_app = typer.Typer(help="Train a learned method.", no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("scalmu")
def train_scalmu(
    config: Annotated[Path | None, typer.Option("--config", help="Training config (YAML or JSON).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Run folder (checkpoints, log, weights).")] = Path("runs/scalmu"),
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint in --out.")] = False,
) -> None:
    """Train SCALMU on streamed dead-leaves pairs with random sensors."""
    kwargs = dict(locals())
    from .commands import train_scalmu_command

    train_scalmu_command(**kwargs)


@train_app.command("mossfuse")
def train_mossfuse(
    hsi_dir: Annotated[Path, typer.Option("--hsi-dir", help="Folder of LR-HSI files.")],
    msi_dir: Annotated[Path, typer.Option("--msi-dir", help="Folder of HR-MSI files (paired by sorted name).")],
    ratio: Ratio = "",
    out: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path("runs/mossfuse"),
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint in --out.")] = False,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Passes over the pairs.")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Total optimisation steps.")] = None,
) -> None:
    """Train MossFuse without ground truth on many unlabeled pairs (dataset mode)."""
    kwargs = dict(locals())
    from .commands import train_mossfuse_command

    train_mossfuse_command(**kwargs)


# demo / synth ------------------------------------------------------------------------------
@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the figure and the results.")] = Path(
        "hyperfuse-demo"
    ),
    size: Annotated[int, typer.Option("--size", help="Scene size in pixels (square).")] = 256,
    bands: Annotated[int, typer.Option("--bands", help="Number of HSI bands.")] = 100,
    ratio: Annotated[int, typer.Option("--ratio", help="Resolution ratio.")] = 8,
    srf: Annotated[str, typer.Option("--srf", help="MSI spectral response name.")] = "sentinel-2a",
    snr: Annotated[float, typer.Option("--snr", help="Noise on both images in dB (0: noise-free).")] = 35.0,
    endmembers: Annotated[int, typer.Option("--endmembers", help="Materials in the scene.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Scene and noise seed.")] = 0,
    method: Annotated[
        list[str] | None, typer.Option("--method", help="Run only these methods (repeatable).")
    ] = None,
) -> None:
    """Built-in main job: a dead-leaves scene, a simulated sensor pair, every method, a figure."""
    kwargs = dict(locals())
    from .commands import demo_command

    demo_command(**kwargs)


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", help="Output .npz (cube, E, A, wavelengths).")],
    size: Annotated[
        tuple[int, int], typer.Option("--size", help="Scene height and width.")
    ] = (256, 256),
    bands: Annotated[int, typer.Option("--bands", help="Number of bands.")] = 100,
    wavelengths: Annotated[
        tuple[float, float], typer.Option("--wavelengths", help="First and last band centre in nm.")
    ] = (400.0, 2500.0),
    endmembers: Annotated[int, typer.Option("--endmembers", help="Number of materials p.")] = 8,
    library: Annotated[
        Path | None, typer.Option("--library", help="Spectral library file to draw spectra from.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    preview: Annotated[
        Path | None, typer.Option("--preview", help="Write a false-colour + endmember PNG.")
    ] = None,
) -> None:
    """Generate a dead-leaves hyperspectral scene with known endmembers and abundances."""
    kwargs = dict(locals())
    from .commands import synth_command

    synth_command(**kwargs)


def _click_exception_modules() -> tuple[object, ...]:
    """click's exception modules: typer ≥ 0.2x raises from its vendored copy, not from ``click``."""
    mods: list[object] = [click.exceptions]
    try:
        from typer._click import exceptions as vendored  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - typer without a vendored click
        return tuple(mods)
    if vendored is not click.exceptions:
        mods.append(vendored)
    return tuple(mods)


_CLICK = _click_exception_modules()
_USAGE_ERRORS = tuple(m.UsageError for m in _CLICK)  # type: ignore[attr-defined]
_CLICK_ERRORS = tuple(m.ClickException for m in _CLICK)  # type: ignore[attr-defined]
_EXITS = (click.exceptions.Exit, typer.Exit)
_ABORTS = (click.exceptions.Abort, typer.Abort)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI in-process and return the exit code (0 ok, 2 bad input)."""
    from ._common import err_console, user_warnings_to_console

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        with user_warnings_to_console():
            app(args=args, prog_name="hyperfuse", standalone_mode=False)
    except HyperfuseError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        return 2
    except _EXITS as exc:
        return int(exc.exit_code)
    except _USAGE_ERRORS as exc:  # missing/unknown option, bad value: one line, exit 2
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `hyperfuse` / `hyperfuse train`
            typer.echo(exc.format_message())
            return 0
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else " (see 'hyperfuse --help')"
        err_console.print(f"[red]error:[/red] {exc.format_message()}{hint}", highlight=False, soft_wrap=True)
        return 2
    except _CLICK_ERRORS as exc:
        exc.show()
        return int(exc.exit_code)
    except _ABORTS:
        err_console.print("aborted")
        return 130
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


