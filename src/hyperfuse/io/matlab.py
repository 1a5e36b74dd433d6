"""MATLAB ``.mat`` files: v4/v5/v7 through :mod:`scipy.io`, v7.3 (HDF5) through h5py.

MATLAB stores arrays column-major, so h5py sees a v7.3 ``H x W x C`` variable as
``(C, W, H)``; this module reverses the axes so that it reads as (H, W, C), exactly
like a v5 file read by SciPy.

Variable selection: ``key=`` names the variable. Without it, the cube is the only
numeric 2-D/3-D array that is not a vector; several candidates raise
:class:`~hyperfuse.errors.FormatError` listing them. A 1-D (or 1 x C) variable named
like ``wavelengths``/``wavelength``/``wl`` of length C is copied into
``meta.wavelengths`` (``fwhm`` likewise). Laziness is only possible for v7.3 files;
v5 files are always loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_outputs
from ..errors import FormatError, require
from ..types import RasterMeta
from ._common import (
    WAVELENGTH_NAMES,
    Layout,
    apply_layout,
    coerce_dtype,
    layout_axes,
    meta_from_attrs,
    meta_to_attrs,
    one_line,
)
from ._lazy import LazyCube, compose_axes

__all__ = ["read", "write", "is_v73", "SUPPORTED_DTYPES"]

#: Dtypes a MAT v5 file written by :func:`write` keeps (bool -> uint8, float16 -> float32).
SUPPORTED_DTYPES = (
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float32",
    "float64",
)

META_VAR = "hyperfuse_meta"
_NUMERIC_CLASSES = {
    "double",
    "single",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "logical",
}


def is_v73(path: Path) -> bool:
    """True when ``path`` is an HDF5-based (v7.3) MAT-file."""
    with open(path, "rb") as fh:
        head = fh.read(1024 + 8)
    sig = b"\x89HDF\r\n\x1a\n"
    return any(head[o : o + 8] == sig for o in (0, 512, 1024))


def _is_cube_candidate(shape: tuple[int, ...], dtype: np.dtype) -> bool:
    if dtype.kind not in "biuf" or len(shape) not in (2, 3):
        return False
    return not (len(shape) == 2 and min(shape) <= 1)


def _pick_key(
    path: Path, key: str | None, variables: dict[str, tuple[tuple[int, ...], np.dtype]]
) -> str:
    names = sorted(variables)
    if key is not None:
        if key not in variables:
            raise FormatError(
                f"{path}: no variable {key!r}; available: {', '.join(names) or '(none)'}; pass --key NAME"
            )
        shape, dtype = variables[key]
        if dtype.kind not in "biuf":
            raise FormatError(
                f"{path}: variable {key!r} is not a real numeric array ({dtype}); "
                f"pass --key NAME with one of {', '.join(names)}"
            )
        return key
    cands = [
        n
        for n in names
        if _is_cube_candidate(*variables[n]) and n.lower() not in WAVELENGTH_NAMES + ("fwhm",)
    ]
    if len(cands) == 1:
        return cands[0]
    if not cands:
        raise FormatError(
            f"{path}: no 2-D/3-D numeric array found (variables: {', '.join(names) or 'none'}); "
            "pass --key NAME"
        )
    desc = ", ".join(f"{n} {variables[n][0]}" for n in cands)
    raise FormatError(f"{path}: several candidate arrays ({desc}); pass --key NAME")


def _band_vector(value: Any, n_bands: int | None) -> np.ndarray | None:
    v = np.asarray(value)
    if v.dtype.kind not in "iuf" or v.size < 1 or (v.ndim > 1 and sorted(v.shape)[-2] > 1):
        return None
    v = v.astype(np.float64).ravel()
    return v if n_bands is None or v.size == n_bands else None


def _meta(path: Path, loaded: dict[str, Any], n_bands: int | None) -> RasterMeta:
    attrs: dict[str, Any] = {}
    text = loaded.get(META_VAR)
    if isinstance(text, str) and text:
        try:
            d = json.loads(text)
            if isinstance(d, dict):
                attrs.update(d)
        except ValueError:
            pass
    meta = meta_from_attrs(attrs)
    for name, value in loaded.items():
        low = name.lower()
        if low in WAVELENGTH_NAMES and meta.wavelengths is None:
            wl = _band_vector(value, n_bands)
            if wl is not None:
                meta = meta.replace(wavelengths=wl)
        elif low == "fwhm" and meta.fwhm is None:
            fw = _band_vector(value, n_bands)
            if fw is not None:
                meta = meta.replace(fwhm=fw)
    return meta


def _n_bands(shape: tuple[int, ...], layout: Layout | None) -> int | None:
    if len(shape) != 3:
        return None
    return shape[0] if layout == "chw" else shape[2]


# -- v5 -----------------------------------------------------------------------------------
def _read_v5(path: Path, key: str | None, layout: Layout | None) -> tuple[np.ndarray, RasterMeta]:
    import scipy.io

    try:
        data = scipy.io.loadmat(path, squeeze_me=False, chars_as_strings=True)
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError, ...
        raise FormatError(
            f"{path}: not a readable MAT-file ({one_line(exc)}); re-save it with MATLAB save or scipy.io.savemat"
        ) from exc
    variables: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    loaded: dict[str, Any] = {}
    for name, value in data.items():
        if name.startswith("__"):
            continue
        if isinstance(value, np.ndarray) and value.dtype.kind in "US":
            loaded[name] = "".join(np.ravel(value).astype(str).tolist())
            variables[name] = (value.shape, value.dtype)
            continue
        arr = np.asarray(value)
        variables[name] = (arr.shape, arr.dtype)
        loaded[name] = arr
    name = _pick_key(path, key, variables)
    arr = loaded[name]
    return apply_layout(arr, layout), _meta(path, loaded, _n_bands(arr.shape, layout))


# -- v7.3 ---------------------------------------------------------------------------------
def _h5_variables(f: Any) -> dict[str, Any]:
    h5py = require("h5py", "io")
    out = {}
    for name, obj in f.items():
        if name.startswith("#") or not isinstance(obj, h5py.Dataset):
            continue
        out[name] = obj
    return out


def _h5_dtype(ds: Any) -> np.dtype:
    cls = ds.attrs.get("MATLAB_class")
    if isinstance(cls, bytes):
        cls = cls.decode()
    if cls is not None and cls not in _NUMERIC_CLASSES:
        return np.dtype("O") if cls != "char" else np.dtype("U1")
    return ds.dtype if ds.dtype.kind in "biuf" else np.dtype("O")


def _h5_value(ds: Any) -> Any:
    cls = ds.attrs.get("MATLAB_class")
    if isinstance(cls, bytes):
        cls = cls.decode()
    if cls == "char":
        codes = np.asarray(ds[()]).T.ravel()
        return "".join(chr(int(c)) for c in codes)
    return np.asarray(ds[()]).T


def _read_v73(
    path: Path, key: str | None, layout: Layout | None, lazy: bool
) -> tuple[Any, RasterMeta]:
    h5py = require("h5py", "io")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(
            f"{path}: not a readable MAT v7.3 (HDF5) file ({one_line(exc)}); re-save it in MATLAB"
        ) from exc
    keep_open = False
    try:
        datasets = _h5_variables(f)
        variables = {n: (tuple(reversed(ds.shape)), _h5_dtype(ds)) for n, ds in datasets.items()}
        name = _pick_key(path, key, variables)
        ds = datasets[name]
        shape = variables[name][0]
        n_bands = _n_bands(shape, layout)
        small = {
            n: _h5_value(d)
            for n, d in datasets.items()
            if n != name
            and (n == META_VAR or n.lower() in WAVELENGTH_NAMES + ("fwhm",))
            and d.size < 1_000_000
        }
        meta = _meta(path, small, n_bands)
        rev = tuple(reversed(range(ds.ndim)))
        if lazy:
            axes = compose_axes(rev, layout_axes(layout, ds.ndim))
            keep_open = True
            return (
                LazyCube(lambda s: ds[s], ds.shape, ds.dtype, axes=axes, closer=f.close, source=ds),
                meta,
            )
        return apply_layout(np.asarray(ds[()]).transpose(rev), layout), meta
    finally:
        if not keep_open:
            f.close()


def read(
    path: Path, *, key: str | None = None, layout: Layout | None = None, lazy: bool = False
) -> tuple[Any, RasterMeta]:
    """Read one variable of a MAT-file as (H, W, C) (see the module docstring)."""
    if is_v73(path):
        return _read_v73(path, key, layout, lazy)
    return _read_v5(path, key, layout)


def write(path: Path, array: np.ndarray, meta: RasterMeta, *, key: str | None = None) -> None:
    """Write a MAT v5 file with the cube under ``key`` (default ``"cube"``).

    ``wavelengths`` and ``fwhm`` are stored as row vectors and the full metadata as
    JSON text in ``hyperfuse_meta``.
    """
    import scipy.io

    name = key or "cube"
    array = coerce_dtype(array, SUPPORTED_DTYPES, path, "MAT-file")
    out: dict[str, Any] = {name: array}
    if meta.wavelengths is not None and name != "wavelengths":
        out["wavelengths"] = np.asarray(meta.wavelengths, dtype=np.float64).reshape(1, -1)
    if meta.fwhm is not None and name != "fwhm":
        out["fwhm"] = np.asarray(meta.fwhm, dtype=np.float64).reshape(1, -1)
    attrs = meta_to_attrs(meta)
    if attrs:
        out[META_VAR] = json.dumps(attrs)
    with atomic_outputs(path) as (tmp,):
        with open(tmp, "wb") as fh:
            scipy.io.savemat(fh, out, do_compression=False, oned_as="row")
