"""File I/O: one module per format behind :func:`read` / :func:`write`, dispatched on the suffix.

=================  ==========================  ==================================================
suffix             module                      notes
=================  ==========================  ==================================================
``.npy``           :mod:`hyperfuse.io.npy`     (H, W, C); metadata in a ``<file>.npy.json`` sidecar
``.mat``           :mod:`hyperfuse.io.matlab`  v5 (scipy) and v7.3 (h5py, axes un-transposed)
``.tif/.tiff``     :mod:`hyperfuse.io.geotiff` rasterio; CRS, transform, nodata, band wavelengths
``.hdr/.img``      :mod:`hyperfuse.io.envi`    own header parser + memmap; BSQ/BIL/BIP
``.h5/.hdf5``      :mod:`hyperfuse.io.hdf5`    dataset ``cube``; metadata as attributes
``.zarr``          :mod:`hyperfuse.io.zarr`    zarr v3 group, array ``cube``; metadata as attributes
=================  ==========================  ==================================================

:func:`read` returns stored values in (H, W, C) order with a
:class:`~hyperfuse.types.RasterMeta`; ``lazy=True`` gives a sliceable array that reads
on demand (for tiling large scenes). :func:`write` is atomic (temporary sibling, then
rename). :func:`load_cube` is the checked entry point used by the CLI: it validates,
fills missing pixels and scales to float32; its rules are documented in
:mod:`hyperfuse.io.load`. Optional dependencies (rasterio, h5py, zarr) are imported
only when their format is used.
"""

from __future__ import annotations

from ._core import SUFFIXES, format_of, merge_meta, read, write
from ._lazy import LazyCube
from .load import folder_scale, load_cube, load_wavelengths

__all__ = [
    "read",
    "write",
    "load_cube",
    "load_wavelengths",
    "merge_meta",
    "folder_scale",
    "format_of",
    "LazyCube",
    "SUFFIXES",
]
