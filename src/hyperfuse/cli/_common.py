"""Shared pieces of the CLI commands: loading inputs, building sensors, progress, records."""

from __future__ import annotations

import json
import platform
import resource
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._atomic import atomic_write_text
from ..errors import InputError, SRFError
from ..types import RasterMeta, SensorSpec

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


def peak_memory_mb() -> float:
    """Peak resident set size of this process in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def versions() -> dict[str, str]:
    """Versions of the software that produced a result."""
    import numpy
    import torch

    return {
        "hyperfuse": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # torch tensors
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float | int | str | bool) or obj is None:
        return obj
    return repr(obj)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write canonical JSON atomically."""
    atomic_write_text(path, json.dumps(_jsonable(payload), indent=2, sort_keys=True) + "\n")


def run_record(
    *, command: str, method: str | None, config: dict[str, Any], sensor: SensorSpec | None,
    wall_time: float, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of one run: method, config, versions, sensor, timings, peak memory."""
    rec: dict[str, Any] = {
        "command": command,
        "method": method,
        "config": config,
        "versions": versions(),
        "wall_time_s": round(wall_time, 4),
        "peak_memory_mb": round(peak_memory_mb(), 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sensor": None if sensor is None else sensor.to_dict(),
    }
    rec.update(extra or {})
    return rec


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
                    err_console.print(f"[yellow]warning:[/yellow] {msg}", highlight=False)
