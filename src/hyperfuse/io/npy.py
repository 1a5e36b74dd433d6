"""NumPy ``.npy`` cubes with an optional JSON metadata sidecar.

The array is stored (H, W, C) unless ``layout="chw"`` is passed to :func:`read`.
Metadata that ``.npy`` cannot hold (wavelengths, CRS, transform, scale, band names,
...) lives in ``<file>.npy.json`` beside it (:meth:`RasterMeta.to_dict` without
``None`` fields). A lazy read returns a read-only :class:`numpy.memmap`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_outputs
from ..errors import FormatError
from ..types import RasterMeta
from ._common import Layout, apply_layout, meta_from_attrs, meta_to_attrs, one_line

__all__ = ["read", "write", "sidecar_path"]


def sidecar_path(path: Path) -> Path:
    """Path of the metadata sidecar of ``path`` (``scene.npy`` -> ``scene.npy.json``).

    Examples
    --------
    >>> sidecar_path(Path("scene.npy")).name
    'scene.npy.json'
    """
    return path.with_name(path.name + ".json")


def _read_sidecar(path: Path) -> RasterMeta:
    side = sidecar_path(path)
    if not side.is_file():
        return RasterMeta()
    try:
        d = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FormatError(
            f"{side}: metadata sidecar is not valid JSON ({one_line(exc)}); fix or delete it"
        ) from exc
    if not isinstance(d, dict):
        raise FormatError(f"{side}: metadata sidecar must hold a JSON object; fix or delete it")
    return meta_from_attrs(d)


def read(
    path: Path, *, key: str | None = None, layout: Layout | None = None, lazy: bool = False
) -> tuple[Any, RasterMeta]:
    """Read a ``.npy`` cube (``key`` is ignored) and its sidecar metadata."""
    try:
        arr = np.load(path, mmap_mode="r" if lazy else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise FormatError(
            f"{path}: not a readable .npy file ({one_line(exc)}); re-save it with numpy.save"
        ) from exc
    if not isinstance(arr, np.ndarray):  # pragma: no cover - np.load on .npz
        raise FormatError(f"{path}: expected a single array; save the cube with numpy.save")
    meta = _read_sidecar(path)
    return apply_layout(arr, layout), meta


def write(path: Path, array: np.ndarray, meta: RasterMeta, *, key: str | None = None) -> None:
    """Write an (H, W, C) array as ``.npy`` plus a sidecar when ``meta`` has content."""
    attrs = meta_to_attrs(meta)
    with atomic_outputs(path, sidecar_path(path)) as (tmp, tmp_side):
        with open(tmp, "wb") as fh:
            np.lib.format.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)
        if attrs:
            tmp_side.write_text(json.dumps(attrs, indent=1), encoding="utf-8")
