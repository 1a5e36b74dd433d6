"""CLI bodies of ``fuse --tile SIZE --overlap PX`` and ``fuse-batch`` (issue 9).

Plain functions; the CLI maintainer registers them with typer. Inputs are read lazily
(GeoTIFF windows, zarr chunks, memory-mapped .npy / ENVI); the output (.zarr, .tif, .npy)
is written incrementally and is resumable (see :mod:`hyperfuse.tiling`).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

from ..errors import InputError, ShapeError, SRFError

__all__ = ["build_tiled_sensor", "fuse_batch_command", "fuse_tiled_command", "read_pairs_file"]


def build_tiled_sensor(
    *, hsi: Any, method: Any, ratio: str | None, srf: str | None, sensor: Path | None,
    psf_sigma: float | None, psf_size: int | None, phase: str, wavelengths: Path | None,
    min_coverage: float, n_msi_bands: int,
) -> Any:
    """The SensorSpec of a tiled run, resolved as in ``fuse`` (``--ratio``/``--srf``/``--sensor``)."""
    from ..io import read
    from ..physics.sensor import make_sensor
    from ..types import RasterMeta
    from . import _common as C
    from .commands import load_sensor_file
    from .main import _phase

    spec_file = load_sensor_file(sensor) if sensor is not None else None
    if not ratio and spec_file is None:
        raise InputError("missing --ratio; pass e.g. --ratio 4")
    from .._validation import check_ratio  # type: ignore[attr-defined]

    r = check_ratio(ratio) if ratio else spec_file.ratio  # type: ignore[union-attr]
    meta = read(hsi, lazy=True)[1] if isinstance(hsi, (str, Path)) else RasterMeta()
    a = read(hsi, lazy=True)[0]
    n_bands = int(a.shape[2])
    if hasattr(a, "close"):
        a.close()
    wl = C.hsi_wavelengths(meta, wavelengths)
    if spec_file is not None:
        spec = spec_file
        if srf is not None and srf != "estimate":
            R, names, info = C.resolve_srf(srf, wl, n_bands, min_coverage=min_coverage)
            spec = spec.replace(srf=R, msi_band_names=names, info={**spec.info, **info})
        elif srf == "estimate":
            spec = spec.replace(srf=None)
    else:
        R, names, info = None, None, {}
        if srf is None and method.needs_srf and not method.blind:
            raise SRFError(f"method {method.name!r} needs --srf NAME|FILE, or --srf estimate if it is unknown")
        if srf is not None and srf != "estimate":
            R, names, info = C.resolve_srf(srf, wl, n_bands, min_coverage=min_coverage)
        spec = make_sensor(r, srf=R, psf_sigma=psf_sigma, psf_size=psf_size, phase=_phase(phase),
                           wavelengths=wl, msi_band_names=names, info=info)
    if spec.ratio != r:
        raise ShapeError(f"--ratio {r} differs from the sensor file's ratio {spec.ratio}")
    if spec.srf is not None and spec.srf.shape[0] != n_msi_bands:
        raise SRFError(f"SRF has {spec.srf.shape[0]} bands but the MSI has {n_msi_bands}; pass the SRF of this MSI")
    return spec


def _sources(hsi: Path, msi: Path, key: str | None, scale: str | None) -> tuple[Any, Any]:
    from ..tiling.store import PathSource
    from ._common import parse_scale

    s = parse_scale(scale)
    if isinstance(s, str):
        raise InputError("tiled fusion needs a numeric --scale (e.g. 10000), not 'auto'")
    return PathSource(hsi, key=key, scale=s), PathSource(msi, key=key, scale=s)


def fuse_tiled_command(
    *, hsi: Path, msi: Path, out: Path, method: str, tile: int, overlap: int | None = None,
    scheduler: str | None = None, workers: int | None = None, resume: bool = True,
    ratio: str | None = None, srf: str | None = None, sensor: Path | None = None,
    psf_sigma: float | None = None, psf_size: int | None = None, phase: str = "block_centred",
    key: str | None = None, scale: str | None = None, wavelengths: Path | None = None,
    min_coverage: float = 0.95, option: list[str] | None = None,
) -> Path:
    """``hyperfuse fuse HSI MSI OUT --tile SIZE [--overlap PX] [--scheduler S] [--no-resume]``.

    Returns the output path (``.zarr``, ``.tif``/``.tiff`` or ``.npy``).
    """
    from ..io import read
    from ..methods.registry import get_method
    from ..tiling import fuse_tiled
    from . import _common as C
    from .commands import _parse_options

    t0 = time.perf_counter()
    fusion = get_method(method, **_parse_options(option))
    hs, ms = _sources(hsi, msi, key, scale)
    spec = build_tiled_sensor(
        hsi=hsi, method=fusion, ratio=ratio, srf=srf, sensor=sensor, psf_sigma=psf_sigma,
        psf_size=psf_size, phase=phase, wavelengths=wavelengths, min_coverage=min_coverage,
        n_msi_bands=ms.shape[1],
    )
    m_meta = read(msi, key=key, lazy=True)[1]
    from ..types import RasterMeta

    meta = RasterMeta(crs=m_meta.crs, transform=m_meta.transform)
    with C.progress_bar(f"{method} tiles") as update:
        def progress(done: int, total: int) -> None:
            update(done, total, f"{done}/{total} tiles")

        if scheduler is None:
            res = fuse_tiled(fusion, hs, ms, spec, tile=tile, overlap=overlap, out=out,
                             progress=progress, resume=resume, meta=meta)
        else:
            from ..tiling.dask import fuse_tiled_dask

            res = fuse_tiled_dask(fusion, hs, ms, spec, tile=tile, overlap=overlap, out=out,
                                  scheduler=scheduler, n_workers=workers, progress=progress,
                                  resume=resume, meta=meta)
    from ..records import peak_memory_mb

    C.console.print(
        f"{method} (tiled {tile}px): -> {res} in {time.perf_counter() - t0:.2f} s "
        f"(peak memory {peak_memory_mb():.0f} MiB)", highlight=False,
    )
    return Path(res)


def read_pairs_file(path: Path) -> list[tuple[Path, Path, Path]]:
    """Read ``HSI,MSI,OUT`` rows (CSV, ``#`` comments; relative paths are relative to the file).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "p.csv").write_text("# hsi,msi,out\\na.tif,b.tif,c.zarr\\n")
    >>> [p.name for p in read_pairs_file(d / "p.csv")[0]]
    ['a.tif', 'b.tif', 'c.zarr']
    """
    base = Path(path).parent
    rows: list[tuple[Path, Path, Path]] = []
    try:
        text = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: pairs file not found; check the path") from None
    for n, row in enumerate(csv.reader(line for line in text if line.strip() and not line.lstrip().startswith("#"))):
        if len(row) != 3:
            raise InputError(f"{path}: row {n + 1} must be HSI,MSI,OUT, got {row}")
        h, m, o = (base / Path(c.strip()) for c in row)
        rows.append((h, m, o))
    return rows


def fuse_batch_command(
    *, pairs: Path, method: str, tile: int, overlap: int | None = None,
    scheduler: str | None = None, workers: int | None = None, resume: bool = True,
    keep_going: bool = False, ratio: str | None = None, srf: str | None = None,
    sensor: Path | None = None, psf_sigma: float | None = None, psf_size: int | None = None,
    phase: str = "block_centred", key: str | None = None, scale: str | None = None,
    wavelengths: Path | None = None, min_coverage: float = 0.95, option: list[str] | None = None,
) -> int:
    """``hyperfuse fuse-batch PAIRS.csv --tile SIZE ...``: fuse every ``HSI,MSI,OUT`` row.

    Finished outputs are skipped; returns the number of failed scenes (0 on success).
    """
    from ..methods.registry import get_method
    from ..tiling.batch import fuse_batch
    from . import _common as C
    from .commands import _parse_options

    rows = read_pairs_file(pairs)
    fusion = get_method(method, **_parse_options(option))
    srcs = [(*_sources(h, m, key, scale), o) for h, m, o in rows]
    by_id = {id(hs): h for (hs, _, _), (h, _, _) in zip(srcs, rows, strict=True)}

    def sensor_for(hs: Any, ms: Any) -> Any:
        return build_tiled_sensor(
            hsi=by_id[id(hs)], method=fusion, ratio=ratio, srf=srf, sensor=sensor,
            psf_sigma=psf_sigma, psf_size=psf_size, phase=phase, wavelengths=wavelengths,
            min_coverage=min_coverage, n_msi_bands=ms.shape[1],
        )

    def progress(i: int, total: int, item: Any) -> None:
        C.console.print(f"[{i}/{total}] {item.out}: {item.status} {item.error or ''}", highlight=False)

    items = fuse_batch(
        fusion, srcs, sensor_for, tile=tile, overlap=overlap, scheduler=scheduler,
        n_workers=workers, resume=resume, on_error="continue" if keep_going else "raise",
        progress=progress,
    )
    return sum(i.status == "failed" for i in items)
