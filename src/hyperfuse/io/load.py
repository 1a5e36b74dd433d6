"""Checked loading: :func:`load_cube` (read + validation + scaling) and :func:`load_wavelengths`.

Rules applied by :func:`load_cube`, in this order:

1. **Empty** array -> :class:`~hyperfuse.errors.ValueRangeError`.
2. **Not 3-D** (e.g. a 2-D band) -> :class:`~hyperfuse.errors.ShapeError`; complex
   data -> ``ValueRangeError``.
3. **Missing values.** Missing pixels are NaN/Inf plus, when a nodata value is known
   (``nodata=`` argument, else ``meta.nodata`` from the file), the stored values equal
   to it. Without a nodata value any NaN/Inf raises ``ValueRangeError``. With one,
   every missing pixel takes the value of the *nearest valid pixel of the same
   band* (Euclidean distance in (row, col); ties resolved by
   :func:`scipy.ndimage.distance_transform_edt`), and a ``UserWarning`` says how many
   values were filled. A band with no valid pixel raises ``ValueRangeError``.
4. **Scaling** (stored value / scale, computed in float64 then cast to float32):

   * integer (or bool) data: ``scale=N`` divides by N; ``scale="max"`` divides by the
     cube maximum (after filling); ``scale=None`` uses the scale the file carries
     (ENVI ``reflectance scale factor``, GeoTIFF ``scale_den`` tag / GDAL band
     scale, ``.npy`` sidecar, HDF5/zarr ``scale`` attribute) or else a ``scale.json``
     file in the same folder (``{"scale_den": N}``); with none of these,
     ``ValueRangeError`` asks for ``--scale N`` or ``--scale max``;
   * float data are used as stored unless ``scale`` is given (a file's own scale
     is ignored for float data).
5. **Negative values** after scaling: ``UserWarning``; the values are kept.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError, ShapeError, ValueRangeError
from ..types import RasterMeta
from ._common import Layout, one_line
from ._core import read

__all__ = ["load_cube", "load_wavelengths", "folder_scale"]


def folder_scale(path: str | Path) -> float | None:
    """Scale from a ``scale.json`` beside ``path`` (``{"scale_den": N}`` or ``{"scale": N}``).

    Returns ``None`` when there is no such file.

    Raises
    ------
    FormatError
        When ``scale.json`` exists but is not valid.
    """
    f = Path(path).parent / "scale.json"
    if not f.is_file():
        return None
    try:
        d = json.loads(f.read_text(encoding="utf-8"))
        value = d.get("scale_den", d.get("scale")) if isinstance(d, dict) else None
        s = float(value) if value is not None else float("nan")
    except (OSError, ValueError, TypeError) as exc:
        raise FormatError(
            f'{f}: not valid JSON ({one_line(exc)}); write {{"scale_den": N}}'
        ) from exc
    if not np.isfinite(s) or s <= 0:
        raise FormatError(
            f"{f}: needs a positive number under 'scale_den'; write {{\"scale_den\": N}}"
        )
    return s


def _check_scale(scale: float | str | None, name: str) -> float | str | None:
    if scale is None:
        return None
    if isinstance(scale, str):
        if scale.strip().lower() == "max":
            return "max"
        try:
            scale = float(scale)
        except ValueError:
            raise ValueRangeError(
                f"{name}: scale must be a positive number or 'max', got {scale!r}; pass --scale N or --scale max"
            ) from None
    s = float(scale)
    if not np.isfinite(s) or s <= 0:
        raise ValueRangeError(
            f"{name}: scale must be a positive number or 'max', got {scale!r}; pass --scale N or --scale max"
        )
    return s


def _check_nodata(nodata: Any, label: str) -> float | None:
    if nodata is None:
        return None
    try:
        return float(nodata)
    except (TypeError, ValueError):
        raise ValueRangeError(
            f"{label}: nodata must be a number, got {nodata!r}; pass --nodata VALUE (e.g. -9999 or nan)"
        ) from None


def _fill_missing(cube: np.ndarray, missing: np.ndarray, name: str) -> None:
    """Fill ``cube[missing]`` in place from the nearest valid pixel of the same band."""
    from scipy.ndimage import distance_transform_edt

    bands = np.flatnonzero(missing.any(axis=(0, 1)))
    shared = bool((missing == missing[:, :, :1]).all())
    cache: tuple[np.ndarray, np.ndarray] | None = None
    for b in bands:
        m = missing[:, :, b]
        if m.all():
            raise ValueRangeError(
                f"{name}: band {b} has no valid pixel (all NaN/Inf/nodata); drop the band or check --nodata"
            )
        if shared and cache is not None:
            iy, ix = cache
        else:
            iy, ix = distance_transform_edt(m, return_distances=False, return_indices=True)
            if shared:
                cache = (iy, ix)
        band = cube[:, :, b]
        band[m] = band[iy[m], ix[m]]


def load_cube(
    path: str | Path,
    *,
    key: str | None = None,
    layout: Layout | None = None,
    scale: float | str | None = None,
    nodata: float | None = None,
    name: str = "cube",
) -> tuple[np.ndarray, RasterMeta]:
    """Read, validate and scale a cube: the single entry point the CLI uses.

    See the module docstring of :mod:`hyperfuse.io.load` for the full rules
    (empty / 2-D / missing values / scaling / negative values).

    Parameters
    ----------
    path : str or Path
        Any file :func:`~hyperfuse.io.read` accepts.
    key : str, optional
        Variable / dataset name (``.mat``, HDF5, zarr).
    layout : {"hwc", "chw"}, optional
        Axis order on disk (see :func:`~hyperfuse.io.read`).
    scale : float or "max", optional
        Divisor mapping stored values to reflectance. Required for integer data
        unless the file (or a ``scale.json`` beside it) carries one.
    nodata : float, optional
        Stored value marking missing pixels (overrides the file's nodata).
    name : str
        Name used in messages (e.g. ``"hsi"``).

    Returns
    -------
    cube : ndarray of shape (H, W, C), float32
        C-contiguous, scaled, with missing pixels filled.
    meta : RasterMeta
        The file's metadata with ``scale`` and (when pixels were filled) ``nodata``
        cleared, since they no longer apply to ``cube``; ``extra`` records
        ``applied_scale`` and ``filled_values``.

    Raises
    ------
    ValueRangeError
        Empty cube; NaN/Inf without nodata; integer data without a scale; a band
        entirely missing; bad ``scale``; complex data.
    ShapeError
        The array is not 3-D (e.g. a single 2-D band).
    FormatError
        Anything :func:`~hyperfuse.io.read` raises.

    Examples
    --------
    >>> import tempfile
    >>> from hyperfuse.io import write
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = write(Path(d) / "x.npy", np.full((2, 2, 3), 500, np.uint16))
    ...     cube, meta = load_cube(Path(d) / "x.npy", scale=1000)
    >>> cube.dtype.name, float(cube[0, 0, 0]), meta.extra["applied_scale"]
    ('float32', 0.5, 1000.0)
    """
    label = f"{name} ({path})"
    s_arg = _check_scale(scale, label)
    arr, meta = read(path, key=key, layout=layout)
    arr = np.asarray(arr)
    if arr.size == 0:
        raise ValueRangeError(f"{label} is empty (shape {arr.shape}); pass a non-empty cube")
    if arr.ndim == 2:
        raise ShapeError(
            f"{label} is 2-D {arr.shape} but a cube is expected; pass a cube (rows, cols, bands), "
            "e.g. add a band axis for a single band"
        )
    if arr.ndim != 3:
        raise ShapeError(f"{label} has shape {arr.shape}; pass a cube (rows, cols, bands)")
    kind = arr.dtype.kind
    if kind == "c":
        raise ValueRangeError(f"{label} holds complex values; pass real-valued data")
    if kind not in "biuf":
        raise ValueRangeError(f"{label} has non-numeric dtype {arr.dtype}; pass a numeric cube")

    # -- missing values -----------------------------------------------------------------
    nd = _check_nodata(nodata if nodata is not None else meta.nodata, label)
    missing = ~np.isfinite(arr) if kind == "f" else np.zeros(arr.shape, dtype=bool)
    n_nonfinite = int(missing.sum())
    if nd is not None and not np.isnan(nd):  # NaN/Inf are already in ``missing``
        if kind == "f":
            missing |= arr == nd
        elif nd.is_integer():  # a fractional nodata can never match integer data
            missing |= arr == nd
    n_missing = int(missing.sum())
    if n_nonfinite and nd is None:
        raise ValueRangeError(
            f"{label} contains {n_nonfinite} NaN/Inf values; pass --nodata VALUE or clean the file"
        )

    # -- scaling ------------------------------------------------------------------------
    if kind in "biu":
        s = s_arg
        if s is None:
            s = meta.scale if meta.scale is not None else folder_scale(path)
        if s is None:
            raise ValueRangeError(
                f"{label} holds unscaled integers ({arr.dtype.name}, max {arr.max()}); "
                "pass --scale N (stored value / N) or --scale max"
            )
    else:
        s = s_arg

    cube = arr.astype(np.float32)  # always a copy
    if n_missing:
        _fill_missing(cube, missing, label)
        warnings.warn(
            f"{label}: filled {n_missing} missing values (NaN/Inf or nodata={nd}) from the nearest "
            "valid pixel of the same band",
            UserWarning,
            stacklevel=2,
        )
    applied: float | None = None
    if s == "max":
        peak = float(cube.max()) if n_missing else float(arr.max())
        if not peak > 0:
            raise ValueRangeError(
                f"{label}: cannot scale by the maximum ({peak}); pass --scale N with a positive N"
            )
        applied = peak
    elif s is not None:
        applied = float(s)
    if applied is not None:
        src = cube if n_missing else arr
        for b in range(cube.shape[2]):
            cube[:, :, b] = src[:, :, b].astype(np.float64) / applied
    n_neg = int((cube < 0).sum())
    if n_neg:
        warnings.warn(
            f"{label} has {n_neg} negative values; they are kept (methods that need non-negative "
            "data clip them internally)",
            UserWarning,
            stacklevel=2,
        )
    extra = dict(meta.extra)
    extra["applied_scale"] = applied
    if n_missing:
        extra["filled_values"] = n_missing
    out_meta = meta.replace(scale=None, nodata=None if n_missing else meta.nodata, extra=extra)
    return np.ascontiguousarray(cube), out_meta


def load_wavelengths(path: str | Path) -> np.ndarray:
    """Read a 1-D wavelength vector in nanometres from ``.npy``, ``.csv`` or ``.txt``.

    Text files may separate values by commas, semicolons or whitespace, one or many
    per line; a non-numeric first line (header) and ``#`` comments are skipped. A
    single row or column is accepted. Values all below 30 are taken as micrometres
    and converted to nm with a ``UserWarning``.

    Parameters
    ----------
    path : str or Path
        The wavelengths file.

    Returns
    -------
    ndarray of shape (C,), float64
        Band centres in nm.

    Raises
    ------
    FormatError
        Missing file, unknown suffix, unparsable text, not a vector, or values that
        are not finite and positive.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = Path(d) / "wl.csv"
    ...     _ = f.write_text("wavelength_nm\\n400\\n500.5\\n")
    ...     load_wavelengths(f).tolist()
    [400.0, 500.5]
    """
    p = Path(path).expanduser()
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".csv", ".txt"):
        raise FormatError(
            f"{p}: unknown wavelengths format {p.suffix or '(no suffix)'!r}; use .npy, .csv or .txt"
        )
    if not p.is_file():
        raise FormatError(f"{p}: file not found; check the path")
    if suffix == ".npy":
        try:
            values: Any = np.load(p, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise FormatError(
                f"{p}: not a readable .npy file ({one_line(exc)}); re-save it"
            ) from exc
    else:
        rows: list[list[float]] = []
        try:
            text = p.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:  # pragma: no cover - permissions
            raise FormatError(f"{p}: cannot read ({one_line(exc)}); check permissions") from exc
        for i, line in enumerate(text.splitlines()):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            tokens = [t for t in re.split(r"[,;\s]+", line) if t]
            try:
                rows.append([float(t) for t in tokens])
            except ValueError:
                if not rows and i == 0:
                    continue  # header line
                raise FormatError(
                    f"{p}: line {i + 1} is not numeric ({line[:40]!r}); write one wavelength per line"
                ) from None
        widths = {len(r) for r in rows}
        if len(widths) > 1:
            raise FormatError(f"{p}: rows have different lengths; write one wavelength per line")
        values = np.asarray(rows, dtype=np.float64)
    v = np.asarray(values)
    if v.dtype.kind not in "iuf":
        raise FormatError(
            f"{p}: wavelengths must be numeric, got dtype {v.dtype}; save numbers in nm"
        )
    if v.ndim > 1 and sorted(v.shape)[-2] > 1:
        raise FormatError(
            f"{p}: expected a 1-D list of wavelengths, got shape {v.shape}; save a single row or column"
        )
    v = v.astype(np.float64).ravel()
    if v.size == 0:
        raise FormatError(f"{p}: no wavelengths found; write one wavelength (nm) per line")
    if not np.isfinite(v).all() or (v <= 0).any():
        raise FormatError(f"{p}: wavelengths must be finite and positive (nm); fix the file")
    if v.max() < 30:
        warnings.warn(
            f"{p}: wavelengths look like micrometres (max {v.max():g}); converted to nm (x1000)",
            UserWarning,
            stacklevel=2,
        )
        v = v * 1000.0
    return v
