"""Lazy input windows, incremental outputs and resume markers for tiled fusion.

Inputs (:func:`as_source`): a (B, C, H, W) tensor, an (H, W, C) array-like (NumPy array,
:class:`numpy.memmap`, :class:`~hyperfuse.io.LazyCube`) or a file path (read lazily with
:func:`hyperfuse.io.read`; GeoTIFF windows, zarr chunks, memory-mapped .npy / ENVI).
Path sources re-open the file where they are used, so they pickle cheaply to Dask workers.

Outputs (:class:`OutputStore`), all (H, W, C) float32:

- ``.zarr``: written in place, chunk = tile; the array attribute ``hyperfuse_status`` is
  ``"incomplete"`` until the last chunk is written, then ``"complete"``;
- ``.tif`` / ``.tiff``: written window by window into ``.<name>.partial.tif`` and renamed
  when complete;
- ``.npy``: same, through :func:`numpy.lib.format.open_memmap`.

Markers beside the output: the scratch folder ``<out>.hyperfuse-tiles/`` holds
``manifest.json`` (grid, shapes, method) and one atomically written ``t_<i>_<j>.npy`` per
finished tile; ``<out>.hyperfuse-complete.json`` is written last. An output without the
complete marker is unfinished.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError, ShapeError

__all__ = [
    "OutputStore",
    "Source",
    "as_source",
    "complete_marker",
    "is_complete",
    "scratch_dir",
]


class Source:
    """A (B, C, H, W) view that reads windows on demand as float32 tensors."""

    shape: tuple[int, int, int, int]

    def window(self, rows: slice, cols: slice) -> torch.Tensor:
        """Read ``[:, :, rows, cols]`` as a float32 tensor."""
        raise NotImplementedError

    def full(self) -> torch.Tensor:
        """The whole array (use only for small arrays such as the LR-HSI)."""
        return self.window(slice(0, self.shape[2]), slice(0, self.shape[3]))


class TensorSource(Source):
    """A (B, C, H, W) tensor."""

    def __init__(self, x: torch.Tensor) -> None:
        if x.ndim != 4:
            raise ShapeError(f"expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
        self.x = x
        self.shape = tuple(int(s) for s in x.shape)  # type: ignore[assignment]

    def window(self, rows: slice, cols: slice) -> torch.Tensor:
        return self.x[:, :, rows, cols].to(torch.float32)


class ArraySource(Source):
    """An (H, W, C) array-like (ndarray, memmap, LazyCube); batch size 1."""

    def __init__(self, a: Any) -> None:
        if len(a.shape) != 3:
            raise ShapeError(f"expected an (H, W, C) array, got shape {tuple(a.shape)}")
        self.a = a
        H, W, C = (int(s) for s in a.shape)
        self.shape = (1, C, H, W)

    def window(self, rows: slice, cols: slice) -> torch.Tensor:
        block = np.asarray(self.a[rows, cols, :], dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(block.transpose(2, 0, 1)))[None]


class PathSource(Source):
    """A file read lazily through :func:`hyperfuse.io.read` (re-opened after unpickling).

    ``scale`` divides the stored values (e.g. 10000 for reflectance × 10⁴).
    """

    def __init__(self, path: str | os.PathLike[str], *, key: str | None = None, scale: float | None = None) -> None:
        self.path = Path(path).expanduser()
        self.key = key
        self.scale = scale
        self._a: Any = None
        a = self._array()
        H, W, C = (int(s) for s in a.shape)
        self.shape = (1, C, H, W)

    def _array(self) -> Any:
        if self._a is None:
            from ..io import read

            self._a, _ = read(self.path, key=self.key, lazy=True)
            if len(self._a.shape) != 3:
                raise ShapeError(f"{self.path}: expected a 3-D cube, got shape {self._a.shape}")
        return self._a

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["_a"] = None
        return d

    def window(self, rows: slice, cols: slice) -> torch.Tensor:
        block = np.asarray(self._array()[rows, cols, :], dtype=np.float32)
        if self.scale:
            block = block / np.float32(self.scale)
        return torch.from_numpy(np.ascontiguousarray(block.transpose(2, 0, 1)))[None]


def as_source(x: Any) -> Source:
    """Wrap a tensor (B, C, H, W), an (H, W, C) array-like or a path as a :class:`Source`.

    Examples
    --------
    >>> s = as_source(np.zeros((8, 6, 3), np.float32))
    >>> s.shape, tuple(s.window(slice(0, 2), slice(1, 4)).shape)
    ((1, 3, 8, 6), (1, 3, 2, 3))
    """
    if isinstance(x, Source):
        return x
    if isinstance(x, torch.Tensor):
        return TensorSource(x)
    if isinstance(x, (str, os.PathLike)):
        return PathSource(x)
    if hasattr(x, "shape") and hasattr(x, "__getitem__"):
        return ArraySource(x)
    raise InputError(f"cannot read tiles from {type(x).__name__}; pass a tensor, an array or a path")


# ----------------------------------------------------------------------------- markers
def scratch_dir(out: str | os.PathLike[str]) -> Path:
    """Folder of the per-tile results and manifest: ``<out>.hyperfuse-tiles``."""
    p = Path(out)
    return p.with_name(p.name + ".hyperfuse-tiles")


def complete_marker(out: str | os.PathLike[str]) -> Path:
    """The final marker ``<out>.hyperfuse-complete.json``."""
    p = Path(out)
    return p.with_name(p.name + ".hyperfuse-complete.json")


def is_complete(out: str | os.PathLike[str]) -> bool:
    """True when ``out`` was finished by the tiled driver (its complete marker exists)."""
    return complete_marker(out).is_file() and Path(out).exists()


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Save ``array`` to ``path`` through a temporary sibling and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=1, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- outputs
class OutputStore:
    """Incremental (H, W, C) float32 output, written window by window.

    Parameters
    ----------
    path : Path
        ``.zarr``, ``.tif``/``.tiff`` or ``.npy``.
    shape : (H, W, C)
    chunk : int
        Chunk / block size (zarr chunk; GeoTIFF block, rounded to 16).
    meta : RasterMeta, optional
        CRS / transform / wavelengths to store.
    """

    def __init__(self, path: Path, shape: tuple[int, int, int], chunk: int, meta: Any = None) -> None:
        self.path = Path(path)
        self.shape = shape
        self.chunk = chunk
        self.meta = meta
        suf = self.path.suffix.lower()
        if suf not in (".zarr", ".tif", ".tiff", ".npy"):
            raise InputError(
                f"{self.path}: tiled output must be .zarr, .tif/.tiff or .npy (written incrementally)"
            )
        self.kind = {".zarr": "zarr", ".tif": "tif", ".tiff": "tif", ".npy": "npy"}[suf]
        self.partial = self.path if self.kind == "zarr" else self.path.with_name(f".{self.path.name}.partial{self.path.suffix}")
        self._h: Any = None

    def open(self) -> None:
        """Create (or reopen) the partial output."""
        H, W, C = self.shape
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "zarr":
            import zarr

            if self.path.exists():
                shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
            group = zarr.open_group(str(self.path), mode="w")
            c = min(self.chunk, max(H, W))
            z = group.create_array("cube", shape=(H, W, C), dtype="float32", chunks=(min(c, H), min(c, W), C))
            attrs: dict[str, Any] = {}
            if self.meta is not None:
                from ..io._common import meta_to_attrs  # type: ignore[attr-defined]

                attrs.update(meta_to_attrs(self.meta))
            attrs.update(layout="hwc", hyperfuse_status="incomplete")
            z.attrs.update(attrs)
            self._h = z
        elif self.kind == "npy":
            self._h = np.lib.format.open_memmap(self.partial, mode="w+", dtype=np.float32, shape=(H, W, C))
        else:
            import warnings

            import rasterio

            profile: dict[str, Any] = {
                "driver": "GTiff", "height": H, "width": W, "count": C, "dtype": "float32",
                "BIGTIFF": "IF_SAFER", "photometric": "MINISBLACK", "interleave": "pixel",
            }
            b = max(16, (min(self.chunk, 512) // 16) * 16)
            if H >= b and W >= b:
                profile.update(tiled=True, blockxsize=b, blockysize=b)
            if self.meta is not None and getattr(self.meta, "crs", None) is not None:
                from rasterio.crs import CRS

                profile["crs"] = CRS.from_user_input(self.meta.crs)
            if self.meta is not None and getattr(self.meta, "transform", None) is not None:
                from rasterio.transform import Affine

                profile["transform"] = Affine(*[float(v) for v in self.meta.transform[:6]])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self._h = rasterio.open(self.partial, "w", **profile)

    def write(self, rows: slice, cols: slice, block: np.ndarray) -> None:
        """Write a (C, h, w) block at ``[rows, cols]``."""
        if self.kind == "tif":
            from rasterio.windows import Window

            self._h.write(
                np.ascontiguousarray(block, dtype=np.float32),
                window=Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start),
            )
        else:
            self._h[rows, cols, :] = np.ascontiguousarray(block.transpose(1, 2, 0), dtype=np.float32)

    def close(self, complete: bool) -> None:
        """Flush; when ``complete``, publish the output (rename / status attribute)."""
        if self._h is None:
            return
        if self.kind == "tif":
            self._h.close()
        elif self.kind == "npy":
            self._h.flush()
            del self._h
        if complete:
            if self.kind == "zarr":
                self._h.attrs.update(hyperfuse_status="complete")
            else:
                os.replace(self.partial, self.path)
        self._h = None
