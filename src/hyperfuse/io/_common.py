"""Helpers shared by the format modules: messages, layouts, dtypes and metadata attributes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import FormatError, ShapeError
from ..types import RasterMeta

__all__ = [
    "Layout",
    "one_line",
    "check_layout",
    "layout_axes",
    "apply_layout",
    "coerce_dtype",
    "check_meta",
    "meta_to_attrs",
    "meta_from_attrs",
    "WAVELENGTH_NAMES",
]

Layout = Literal["hwc", "chw"]

#: Variable / attribute names recognised as a wavelength vector (case-insensitive).
WAVELENGTH_NAMES = (
    "wavelengths",
    "wavelength",
    "wavelengths_nm",
    "wl",
    "wvl",
    "lambda",
    "bands_nm",
)

_FIELDS = ("wavelengths", "fwhm", "crs", "transform", "scale", "nodata", "band_names")


def one_line(exc: BaseException | str, limit: int = 240) -> str:
    """Collapse an exception message to one short line.

    Examples
    --------
    >>> one_line(ValueError("bad\\n  thing"))
    'bad thing'
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_layout(layout: str | None, path: Path | str = "") -> Layout | None:
    """Validate a layout argument (``None``, ``"hwc"`` or ``"chw"``)."""
    if layout is None:
        return None
    low = str(layout).lower()
    if low not in ("hwc", "chw"):
        raise FormatError(
            f"{path}: unknown layout {layout!r}; use 'hwc' (rows, cols, bands) or 'chw' (bands, rows, cols)"
        )
    return low  # type: ignore[return-value]


def layout_axes(layout: Layout | None, ndim: int) -> tuple[int, ...]:
    """Transpose that turns a stored array of ``layout`` into (H, W, C) (identity unless 3-D CHW).

    Examples
    --------
    >>> layout_axes("chw", 3), layout_axes("hwc", 3), layout_axes("chw", 2)
    ((1, 2, 0), (0, 1, 2), (0, 1))
    """
    if ndim == 3 and layout == "chw":
        return (1, 2, 0)
    return tuple(range(ndim))


def apply_layout(array: Any, layout: Layout | None) -> Any:
    """Return ``array`` in (H, W, C) order given its stored ``layout`` (a view, no copy)."""
    axes = layout_axes(layout, array.ndim)
    return array if axes == tuple(range(array.ndim)) else array.transpose(axes)


def coerce_dtype(
    array: np.ndarray, supported: Iterable[str], path: Path | str, fmt: str
) -> np.ndarray:
    """Cast ``array`` to the nearest dtype the format can store (bool->uint8, float16->float32, int8->int16).

    Raises
    ------
    FormatError
        When no lossless substitute exists (e.g. complex data for GeoTIFF).
    """
    names = set(supported)
    dt = array.dtype
    if dt.name in names:
        return array
    subs = {"bool": "uint8", "float16": "float32", "int8": "int16"}
    target = subs.get(dt.name)
    if target is not None and target in names:
        return array.astype(target)
    raise FormatError(
        f"{path}: {fmt} cannot store dtype {dt.name}; convert the array to one of "
        f"{', '.join(sorted(names))} or choose another format"
    )


def check_meta(meta: RasterMeta, n_bands: int | None, path: Path | str) -> None:
    """Raise :class:`ShapeError` when per-band metadata does not match the band count."""
    if n_bands is None:
        return
    for name in ("wavelengths", "fwhm", "band_names"):
        v = getattr(meta, name)
        if v is not None and len(v) != n_bands:
            raise ShapeError(
                f"{path}: meta.{name} has {len(v)} entries but the cube has {n_bands} bands; "
                f"pass one {name.rstrip('s')} per band"
            )
    if meta.transform is not None and len(meta.transform) < 6:
        raise ShapeError(
            f"{path}: meta.transform has {len(meta.transform)} numbers; pass 6 (a, b, c, d, e, f)"
        )


def _plain(value: Any) -> Any:
    """Convert NumPy scalars/arrays and bytes to plain JSON-able Python values."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.ndim else _plain(value.item())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def meta_to_attrs(meta: RasterMeta | None) -> dict[str, Any]:
    """Flat JSON-able attributes for HDF5/zarr/sidecars; ``None`` fields are omitted.

    Examples
    --------
    >>> meta_to_attrs(RasterMeta(wavelengths=np.array([500.0, 600.0]), scale=1e4))
    {'wavelengths': [500.0, 600.0], 'scale': 10000.0}
    """
    if meta is None:
        return {}
    d = meta.to_dict()
    out = {k: d[k] for k in _FIELDS if d.get(k) is not None}
    if meta.extra:
        out["extra"] = json.loads(json.dumps(meta.extra, default=_plain))
    return out


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    v = _plain(value)
    if isinstance(v, list):
        if not v:
            return None
        v = v[0]
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def meta_from_attrs(attrs: Mapping[str, Any], *, skip: Iterable[str] = ()) -> RasterMeta:
    """Inverse of :func:`meta_to_attrs`; tolerant of foreign attribute names.

    Wavelengths are found under any of :data:`WAVELENGTH_NAMES`; unknown attributes
    go to ``extra``.

    Examples
    --------
    >>> m = meta_from_attrs({"wavelength": [400, 500], "nodata": 0, "sensor": "x"})
    >>> m.wavelengths.tolist(), m.nodata, m.extra
    ([400.0, 500.0], 0.0, {'sensor': 'x'})
    """
    skip = set(skip)
    kw: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, raw in attrs.items():
        if key in skip:
            continue
        value = _plain(raw)
        low = key.lower()
        if low in WAVELENGTH_NAMES and "wavelengths" not in kw:
            kw["wavelengths"] = np.asarray(value, dtype=np.float64).ravel()
        elif low == "fwhm":
            kw["fwhm"] = np.asarray(value, dtype=np.float64).ravel()
        elif low == "crs":
            kw["crs"] = None if value in (None, "") else str(value)
        elif low == "transform":
            kw["transform"] = tuple(float(v) for v in np.ravel(value))[:6]
        elif low in ("scale", "scale_den"):
            kw["scale"] = _float_or_none(value)
        elif low in ("nodata", "_fillvalue") and "nodata" not in kw:
            kw["nodata"] = _float_or_none(value)
        elif low == "band_names":
            names = [value] if isinstance(value, str) else list(value)
            kw["band_names"] = tuple(str(v) for v in names)
        elif low == "extra":
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    value = {"extra": value}
            if isinstance(value, dict):
                extra.update(value)
        else:
            extra[key] = value
    return RasterMeta(**kw, extra=extra)
