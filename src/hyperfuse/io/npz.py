"""NumPy ``.npz`` archives, read-only: the scenes written by ``hyperfuse synth``.

The cube is the ``key`` array (default ``"cube"``, else the only 2-D/3-D numeric array),
stored (H, W, C) unless ``layout="chw"``; a ``wavelengths`` array of matching length
becomes the metadata's band centres. Write cubes as ``.npy`` (or another format) instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError
from ..types import RasterMeta
from ._common import Layout, apply_layout, one_line

__all__ = ["read", "write"]


def read(
    path: Path, *, key: str | None = None, layout: Layout | None = None, lazy: bool = False
) -> tuple[Any, RasterMeta]:
    """Read one array of a ``.npz`` archive (``lazy`` is ignored: archives are loaded)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            if key is None:
                key = "cube" if "cube" in names else None
            if key is None:
                cands = [n for n in names if z[n].ndim in (2, 3) and np.issubdtype(z[n].dtype, np.number)]
                if len(cands) != 1:
                    raise FormatError(
                        f"{path}: {len(cands)} candidate arrays ({', '.join(names)}); pass --key NAME"
                    )
                key = cands[0]
            if key not in names:
                raise FormatError(f"{path}: no array {key!r} (has {', '.join(names)}); pass --key NAME")
            arr = z[key]
            wl = z["wavelengths"] if "wavelengths" in names else None
    except FormatError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise FormatError(f"{path}: not a readable .npz archive ({one_line(exc)}); re-save it with numpy.savez") from exc
    cube = apply_layout(arr, layout)
    meta = RasterMeta()
    if wl is not None and wl.ndim == 1 and cube.ndim == 3 and wl.size == cube.shape[-1]:
        meta = RasterMeta(wavelengths=np.asarray(wl, dtype=np.float64))
    return cube, meta


def write(path: Path, array: np.ndarray, meta: RasterMeta, *, key: str | None = None) -> None:
    """``.npz`` is read-only here."""
    raise FormatError(f"{path}: .npz is read-only in hyperfuse; write the cube as .npy, .tif, .h5 or .zarr")
