"""Zarr (v3 API) stores through the ``zarr`` package (optional ``io`` extra).

A ``.zarr`` directory is either a group holding the array ``key`` (default
``"cube"``, or the only 2-D/3-D numeric array when ``key`` is not given) or a bare
array. The array attributes hold the metadata (same names as the HDF5 module:
``wavelengths``, ``fwhm``, ``crs``, ``transform``, ``scale``, ``nodata``,
``band_names``, ``extra``, ``layout``). Writing builds the store under a temporary
name and swaps the directory in, so readers never see a half-written store. A lazy
read returns a :class:`~hyperfuse.io.LazyCube` over the zarr array.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_outputs
from ..errors import FormatError, require
from ..types import RasterMeta
from ._common import (
    Layout,
    apply_layout,
    check_layout,
    layout_axes,
    meta_from_attrs,
    meta_to_attrs,
    one_line,
)
from ._lazy import LazyCube

__all__ = ["read", "write", "DEFAULT_KEY"]

DEFAULT_KEY = "cube"


def _zarr() -> Any:
    return require("zarr", "io")


def _arrays(group: Any) -> dict[str, Any]:
    zarr = _zarr()
    out: dict[str, Any] = {}
    for name, node in group.members(max_depth=None):
        if isinstance(node, zarr.Array):
            out[name] = node
    return out


def _select(path: Path, node: Any, key: str | None) -> Any:
    zarr = _zarr()
    if isinstance(node, zarr.Array):
        if key is not None and key.strip("/") not in ("", node.basename or ""):
            raise FormatError(f"{path}: the store is a single array, not a group; drop --key")
        return node
    arrays = _arrays(node)
    names = sorted(arrays)
    if key is not None:
        if key.strip("/") not in arrays:
            raise FormatError(
                f"{path}: no array {key!r}; available: {', '.join(names) or '(none)'}; pass --key NAME"
            )
        return arrays[key.strip("/")]
    if DEFAULT_KEY in arrays:
        return arrays[DEFAULT_KEY]
    cands = [
        n for n in names if arrays[n].ndim in (2, 3) and np.dtype(arrays[n].dtype).kind in "biuf"
    ]
    if len(cands) == 1:
        return arrays[cands[0]]
    if not cands:
        raise FormatError(
            f"{path}: no 2-D/3-D numeric array (arrays: {', '.join(names) or 'none'}); pass --key NAME"
        )
    desc = ", ".join(f"{n} {arrays[n].shape}" for n in cands)
    raise FormatError(f"{path}: several candidate arrays ({desc}); pass --key NAME")


def read(
    path: Path, *, key: str | None = None, layout: Layout | None = None, lazy: bool = False
) -> tuple[Any, RasterMeta]:
    """Read array ``key`` of a zarr store as (H, W, C) plus the metadata in its attributes."""
    zarr = _zarr()
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises many kinds (JSON, metadata, KeyError, ...)
        raise FormatError(
            f"{path}: not a readable zarr store ({one_line(exc)}); check the store"
        ) from exc
    arr = _select(path, node, key)
    dtype = np.dtype(arr.dtype)
    if dtype.kind not in "biufc":
        raise FormatError(f"{path}: array {arr.path!r} is not numeric ({dtype}); pass --key NAME")
    attrs = dict(arr.attrs)
    stored = attrs.get("layout")
    eff = (
        layout
        if layout is not None
        else check_layout(stored if isinstance(stored, str) else None, path)
    )
    meta = meta_from_attrs(attrs, skip=("layout",))
    if lazy:
        return LazyCube(
            lambda s: arr[s], arr.shape, dtype, axes=layout_axes(eff, arr.ndim), source=arr
        ), meta
    return apply_layout(np.asarray(arr[...]), eff), meta


def write(path: Path, array: np.ndarray, meta: RasterMeta, *, key: str | None = None) -> None:
    """Write an (H, W, C) array into a new zarr group as array ``key`` (default ``"cube"``)."""
    zarr = _zarr()
    name = key or DEFAULT_KEY
    attrs = meta_to_attrs(meta)
    attrs["layout"] = "hwc"
    chunks = tuple(max(1, min(n, 256)) for n in array.shape[:2]) + tuple(
        max(1, n) for n in array.shape[2:]
    )
    with atomic_outputs(path) as (tmp,):
        group = zarr.open_group(str(tmp), mode="w")
        z = group.create_array(name, shape=array.shape, dtype=array.dtype, chunks=chunks)
        if array.size:
            z[...] = array
        z.attrs.update(attrs)
