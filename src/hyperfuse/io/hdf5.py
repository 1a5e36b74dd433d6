"""HDF5 cubes through h5py (optional ``io`` extra).

The cube is the dataset ``key`` (default ``"cube"``; without ``key`` and without a
``cube`` dataset, the only 2-D/3-D numeric dataset in the file). Its attributes
hold the metadata: ``wavelengths``, ``fwhm``, ``crs``, ``transform``, ``scale``,
``nodata``, ``band_names``, ``extra`` (JSON text) and ``layout`` (``"hwc"`` or
``"chw"``, used when :func:`read` gets no ``layout``). A lazy read returns a
:class:`~hyperfuse.io.LazyCube` over the open dataset; close it when done.
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


def _datasets(f: Any) -> dict[str, Any]:
    h5py = require("h5py", "io")
    found: dict[str, Any] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            found[name] = obj

    f.visititems(visit)
    return found


def _select(path: Path, f: Any, key: str | None) -> Any:
    sets = _datasets(f)
    names = sorted(sets)
    if key is not None:
        if key.strip("/") not in sets:
            raise FormatError(
                f"{path}: no dataset {key!r}; available: {', '.join(names) or '(none)'}; pass --key NAME"
            )
        return sets[key.strip("/")]
    if DEFAULT_KEY in sets:
        return sets[DEFAULT_KEY]
    cands = [n for n in names if sets[n].ndim in (2, 3) and sets[n].dtype.kind in "biuf"]
    if len(cands) == 1:
        return sets[cands[0]]
    if not cands:
        raise FormatError(
            f"{path}: no 2-D/3-D numeric dataset (datasets: {', '.join(names) or 'none'}); pass --key NAME"
        )
    desc = ", ".join(f"{n} {sets[n].shape}" for n in cands)
    raise FormatError(f"{path}: several candidate datasets ({desc}); pass --key NAME")


def read(
    path: Path, *, key: str | None = None, layout: Layout | None = None, lazy: bool = False
) -> tuple[Any, RasterMeta]:
    """Read dataset ``key`` as (H, W, C) plus the metadata in its attributes."""
    h5py = require("h5py", "io")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(
            f"{path}: not a readable HDF5 file ({one_line(exc)}); check the file"
        ) from exc
    keep_open = False
    try:
        ds = _select(path, f, key)
        if ds.dtype.kind not in "biufc":
            raise FormatError(
                f"{path}: dataset {ds.name!r} is not numeric ({ds.dtype}); pass --key NAME"
            )
        attrs = dict(ds.attrs)
        stored = attrs.get("layout")
        if isinstance(stored, bytes):
            stored = stored.decode()
        eff = (
            layout
            if layout is not None
            else check_layout(stored if isinstance(stored, str) else None, path)
        )
        meta = meta_from_attrs(attrs, skip=("layout",))
        if lazy:
            keep_open = True
            cube = LazyCube(
                lambda s: ds[s],
                ds.shape,
                ds.dtype,
                axes=layout_axes(eff, ds.ndim),
                closer=f.close,
                source=ds,
            )
            return cube, meta
        return apply_layout(np.asarray(ds[()]), eff), meta
    finally:
        if not keep_open:
            f.close()


def write(path: Path, array: np.ndarray, meta: RasterMeta, *, key: str | None = None) -> None:
    """Write an (H, W, C) array as dataset ``key`` with metadata attributes (layout ``hwc``)."""
    h5py = require("h5py", "io")
    name = key or DEFAULT_KEY
    attrs = meta_to_attrs(meta)
    with atomic_outputs(path) as (tmp,):
        with h5py.File(tmp, "w") as f:
            kw: dict[str, Any] = {}
            if array.size and array.nbytes > 1 << 20:
                kw.update(chunks=True, compression="gzip", compression_opts=4, shuffle=True)
            ds = f.create_dataset(name, data=array, **kw)
            for k, v in attrs.items():
                if k == "extra":
                    ds.attrs["extra"] = json.dumps(v)
                elif k == "band_names":
                    ds.attrs[k] = np.asarray(v, dtype=h5py.string_dtype())
                else:
                    ds.attrs[k] = v
            ds.attrs["layout"] = "hwc"
