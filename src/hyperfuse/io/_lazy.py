"""A sliceable, read-on-demand view of an on-disk array in (H, W, C) order.

Backends (an h5py dataset, a zarr array, a rasterio dataset) only have to read a
block given one *positive-step* slice per on-disk axis. :class:`LazyCube` turns
any basic NumPy index in (H, W, C) coordinates into such a block read, then
transposes, flips and squeezes the result so that ``lazy[key]`` equals
``np.asarray(lazy)[key]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["LazyCube", "compose_axes"]

BlockReader = Callable[[tuple[slice, ...]], np.ndarray]


def compose_axes(first: tuple[int, ...], then: tuple[int, ...]) -> tuple[int, ...]:
    """Axes of ``a.transpose(first).transpose(then)`` as a single transpose of ``a``.

    Examples
    --------
    >>> compose_axes((2, 1, 0), (1, 2, 0))
    (1, 0, 2)
    """
    return tuple(first[i] for i in then)


class LazyCube:
    """Read-on-demand array view; ``cube[rows, cols, bands]`` reads only that block.

    Parameters
    ----------
    reader : callable
        ``reader(slices)`` returns the on-disk block for one positive-step slice per
        on-disk axis, as an ndarray in on-disk axis order.
    disk_shape : tuple of int
        Shape of the array on disk.
    dtype : numpy dtype
        Stored dtype.
    axes : tuple of int, optional
        ``view = disk.transpose(axes)``; identity by default.
    closer : callable, optional
        Called by :meth:`close` (e.g. to close the file).
    source : object, optional
        The backend object (h5py dataset, zarr array, rasterio dataset), for advanced use.

    Examples
    --------
    >>> disk = np.arange(24).reshape(2, 3, 4)          # (C, H, W) on disk
    >>> lazy = LazyCube(lambda s: disk[s], disk.shape, disk.dtype, axes=(1, 2, 0))
    >>> lazy.shape
    (3, 4, 2)
    >>> bool((lazy[1:, ::-2, 0] == disk.transpose(1, 2, 0)[1:, ::-2, 0]).all())
    True
    """

    def __init__(
        self,
        reader: BlockReader,
        disk_shape: tuple[int, ...],
        dtype: Any,
        *,
        axes: tuple[int, ...] | None = None,
        closer: Callable[[], None] | None = None,
        source: Any = None,
    ) -> None:
        self._reader = reader
        self._disk_shape = tuple(int(n) for n in disk_shape)
        self._axes = tuple(range(len(disk_shape))) if axes is None else tuple(axes)
        if sorted(self._axes) != list(range(len(self._disk_shape))):
            raise ValueError(f"axes {self._axes} is not a permutation of {len(disk_shape)} axes")
        self._closer = closer
        self.dtype = np.dtype(dtype)
        self.source = source

    # -- array protocol -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape in view order."""
        return tuple(self._disk_shape[a] for a in self._axes)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self._disk_shape)

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazyCube(shape={self.shape}, dtype={self.dtype})"

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key: Any) -> np.ndarray:
        view_key = self._normalise(key)
        if view_key is None:  # advanced indexing: load, then index
            return np.asarray(self[...])[key]
        ndim = self.ndim
        disk_slices: list[slice] = [slice(0, 0)] * ndim
        flips: list[bool] = [False] * ndim
        squeeze: list[int] = []
        empty = False
        for v, k in enumerate(view_key):
            n = self.shape[v]
            d = self._axes[v]
            if isinstance(k, int):
                i = k + n if k < 0 else k
                if not 0 <= i < n:
                    raise IndexError(f"index {k} is out of bounds for axis {v} with size {n}")
                disk_slices[d] = slice(i, i + 1, 1)
                squeeze.append(v)
                continue
            start, stop, step = k.indices(n)
            count = len(range(start, stop, step))
            if count == 0:
                empty = True
                disk_slices[d] = slice(0, 0, 1)
            elif step > 0:
                disk_slices[d] = slice(start, start + (count - 1) * step + 1, step)
            else:
                last = start + (count - 1) * step  # smallest index
                disk_slices[d] = slice(last, start + 1, -step)
                flips[v] = True
        if empty:
            shape = [len(range(*s.indices(self._disk_shape[d]))) for d, s in enumerate(disk_slices)]
            block = np.empty(shape, dtype=self.dtype)
        else:
            block = np.asarray(self._reader(tuple(disk_slices)))
        out = block.transpose(self._axes)
        flip_axes = tuple(v for v, f in enumerate(flips) if f)
        if flip_axes:
            out = np.flip(out, axis=flip_axes)
        if squeeze:
            out = out.squeeze(axis=tuple(squeeze))
        return np.ascontiguousarray(out, dtype=self.dtype)

    def _normalise(self, key: Any) -> tuple[int | slice, ...] | None:
        """Expand ``key`` to one int or slice per view axis; ``None`` for advanced keys."""
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is None for k in key):
            return None
        n_ell = sum(k is Ellipsis for k in key)
        if n_ell > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        if n_ell == 0:
            key = (*key, Ellipsis)
        i = next(j for j, k in enumerate(key) if k is Ellipsis)
        fill = self.ndim - (len(key) - 1)
        if fill < 0:
            raise IndexError(f"too many indices for array: array is {self.ndim}-dimensional")
        full = (*key[:i], *([slice(None)] * fill), *key[i + 1 :])
        out: list[int | slice] = []
        for k in full:
            if isinstance(k, slice):
                out.append(k)
            elif isinstance(k, int | np.integer) and not isinstance(k, bool | np.bool_):
                out.append(int(k))
            else:
                return None
        return tuple(out)

    # -- resource handling ----------------------------------------------------------------
    def close(self) -> None:
        """Close the underlying file (idempotent)."""
        if self._closer is not None:
            closer, self._closer = self._closer, None
            closer()

    def __enter__(self) -> LazyCube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
