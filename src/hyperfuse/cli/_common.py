"""Shared pieces of the CLI commands: loading inputs, building sensors, progress, records."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_write_text
from ..errors import InputError, SRFError
from ..records import jsonable, peak_memory_mb, run_record, versions, write_json
from ..types import RasterMeta

__all__ = [
    "console",
    "err_console",
    "parse_scale",
    "load_cube",
    "resolve_srf",
    "progress_bar",
    "run_record",
    "write_json",
    "hsi_wavelengths",
    "jsonable",
    "atomic_write_text",
    "peak_memory_mb",
    "versions",
]


def _consoles():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(), Console(stderr=True)


console, err_console = _consoles()


def parse_scale(value: str | None) -> float | str | None:
    """``--scale`` accepts a number (the value that maps to reflectance 1) or ``max``."""
    if value is None:
        return None
    if value.lower() == "max":
        return "max"
    try:
        s = float(value)
    except ValueError:
        raise InputError(f"--scale must be a number or 'max', got {value!r}") from None
    if not s > 0:
        raise InputError(f"--scale must be > 0, got {value!r}")
    return s


def load_cube(
    path: Path,
    *,
    name: str,
    key: str | None = None,
    layout: str | None = None,
    scale: str | None = None,
    nodata: float | None = None,
) -> tuple[np.ndarray, RasterMeta]:
    """Read, validate and scale a cube (H, W, C) float32 through :func:`hyperfuse.io.load_cube`."""
    from ..io import load_cube as _load

    return _load(path, key=key, layout=layout, scale=parse_scale(scale), nodata=nodata, name=name)


def hsi_wavelengths(meta: RasterMeta, wavelengths_file: Path | None) -> np.ndarray | None:
    """HSI band centres: ``--wavelengths FILE`` first, then the file's metadata."""
    if wavelengths_file is not None:
        from ..io import load_wavelengths

        return load_wavelengths(wavelengths_file)
    return meta.wavelengths


def resolve_srf(
    spec: str,
    wavelengths: np.ndarray | None,
    n_hsi_bands: int,
    *,
    min_coverage: float = 0.95,
) -> tuple[np.ndarray, tuple[str, ...], dict[str, Any]]:
    """Turn a ``--srf`` value (name or file) into an (l, L) matrix, band names and provenance."""
    from ..physics.srf import srf_from_spec

    if wavelengths is not None and len(wavelengths) != n_hsi_bands:
        raise SRFError(
            f"{len(wavelengths)} wavelengths given but the HSI has {n_hsi_bands} bands; "
            "pass a wavelengths file with one value per band"
        )
    res = srf_from_spec(spec, wavelengths, min_coverage=min_coverage)
    matrix = np.asarray(res.matrix, dtype=np.float64)
    if matrix.shape[1] != n_hsi_bands:
        raise SRFError(
            f"SRF has {matrix.shape[1]} columns but the HSI has {n_hsi_bands} bands; "
            "pass an SRF with one column per HSI band"
        )
    info = {
        "srf_source": getattr(res, "source", spec),
        "srf_coverage": [float(c) for c in np.atleast_1d(getattr(res, "coverage", []))],
        "srf_dropped": [str(d) for d in (getattr(res, "dropped", None) or [])],
        "srf_approximate": bool(getattr(res, "approximate", False)),
    }
    return matrix, tuple(str(b) for b in res.band_names), info


@contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[Callable[..., None]]:
    """A rich progress bar; yields ``update(completed, total=None, info="")``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=err_console,
        transient=True,
    ) as prog:
        task = prog.add_task(description, total=total, info="")

        def update(completed: int, total: int | None = None, info: str = "", desc: str | None = None) -> None:
            kw: dict[str, Any] = {"completed": completed, "info": info}
            if total is not None:
                kw["total"] = total
            if desc is not None:
                kw["description"] = desc
            prog.update(task, **kw)

        yield update


@contextmanager
def user_warnings_to_console() -> Iterator[None]:
    """Show library warnings as one yellow line each instead of Python's default format."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen = set()
            for w in caught:
                msg = str(w.message)
                if msg not in seen:
                    seen.add(msg)
                    err_console.print(f"[yellow]warning:[/yellow] {msg}", highlight=False, soft_wrap=True)
