"""Format dispatch: :func:`read`, :func:`write` and :func:`merge_meta`."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError, HyperfuseError, ShapeError
from ..types import RasterMeta
from ._common import Layout, apply_layout, check_layout, check_meta, one_line

__all__ = ["read", "write", "merge_meta", "format_of", "SUFFIXES"]

#: File suffix -> (module name, human-readable format name).
SUFFIXES: dict[str, tuple[str, str]] = {
    ".npy": ("npy", ".npy"),
    ".npz": ("npz", ".npz"),
    ".mat": ("matlab", "MAT-file"),
    ".tif": ("geotiff", "GeoTIFF"),
    ".tiff": ("geotiff", "GeoTIFF"),
    ".hdr": ("envi", "ENVI"),
    ".img": ("envi", "ENVI"),
    ".h5": ("hdf5", "HDF5"),
    ".hdf5": ("hdf5", "HDF5"),
    ".zarr": ("zarr", "zarr"),
}


def format_of(path: str | Path) -> tuple[str, str]:
    """Return ``(module name, format name)`` for ``path`` from its suffix.

    Raises
    ------
    FormatError
        If the suffix is not one of :data:`SUFFIXES`.

    Examples
    --------
    >>> format_of("scene.TIF")
    ('geotiff', 'GeoTIFF')
    >>> format_of("scene.xyz")
    Traceback (most recent call last):
    ...
    hyperfuse.errors.FormatError: scene.xyz: unknown file format '.xyz'; use one of .npy, .npz, .mat, .tif, .tiff, .hdr, .img, .h5, .hdf5, .zarr
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        shown = f"'{p.suffix}'" if p.suffix else "(no suffix)"
        raise FormatError(f"{p}: unknown file format {shown}; use one of {', '.join(SUFFIXES)}")
    return SUFFIXES[suffix]


def _module(name: str) -> Any:
    return importlib.import_module(f"{__package__}.{name}")


def read(
    path: str | Path,
    *,
    key: str | None = None,
    layout: Layout | None = None,
    lazy: bool = False,
) -> tuple[Any, RasterMeta]:
    """Read a cube and its metadata, dispatching on the file suffix.

    Values are returned as stored (no scaling, no validation): use
    :func:`~hyperfuse.io.load_cube` to get a checked float32 cube.

    Parameters
    ----------
    path : str or Path
        ``.npy``, ``.npz`` (read-only; ``hyperfuse synth`` scenes), ``.mat``,
        ``.tif``/``.tiff``, ``.hdr``/``.img`` (ENVI), ``.h5``/``.hdf5`` or ``.zarr``.
    key : str, optional
        Variable / dataset / array name for ``.mat``, HDF5 and zarr. Without it the
        only 2-D/3-D numeric array is used (HDF5/zarr first try ``"cube"``).
    layout : {"hwc", "chw"}, optional
        Axis order on disk for formats that do not define it (``.npy``, ``.mat``,
        HDF5, zarr); default ``"hwc"`` (HDF5/zarr: the stored ``layout`` attribute).
        GeoTIFF and ENVI define their own band axis and ignore it.
    lazy : bool
        Return an array-like that reads only what is sliced: a :class:`numpy.memmap`
        (``.npy``, ENVI) or a :class:`~hyperfuse.io.LazyCube` (HDF5, MAT v7.3, zarr,
        GeoTIFF; close it when done). MAT v5 files are always loaded.

    Returns
    -------
    array : ndarray or array-like of shape (H, W, C)
        Stored values and dtype (2-D arrays are returned as stored).
    meta : RasterMeta
        Wavelengths, FWHM, CRS, transform, scale, nodata, band names as available.

    Raises
    ------
    FormatError
        Unknown suffix, missing file, unreadable or corrupt file, bad ``key``,
        ambiguous variables without ``key``.
    MissingDependencyError
        The optional dependency of the format (rasterio, h5py, zarr) is missing.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = write(Path(d) / "x.npy", np.zeros((2, 3, 4), np.uint16))
    ...     cube, meta = read(Path(d) / "x.npy")
    >>> cube.shape, cube.dtype.name
    ((2, 3, 4), 'uint16')
    """
    p = Path(path).expanduser()
    name, fmt = format_of(p)
    lay = check_layout(layout, p)
    if name == "zarr":
        if not p.exists():
            raise FormatError(f"{p}: file not found; check the path")
    elif not p.is_file():
        if p.is_dir():
            raise FormatError(f"{p}: is a directory, not a {fmt} file; pass the file path")
        raise FormatError(f"{p}: file not found; check the path")
    try:
        return _module(name).read(p, key=key, layout=lay, lazy=lazy)  # type: ignore[no-any-return]
    except HyperfuseError:
        raise
    except Exception as exc:
        raise FormatError(
            f"{p}: cannot read as {fmt} ({one_line(exc)}); check that the file is a valid {fmt} file"
        ) from exc


def _as_numpy(array: Any) -> np.ndarray:
    if hasattr(array, "detach") and hasattr(array, "cpu"):  # torch.Tensor without importing torch
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def write(
    path: str | Path,
    array: Any,
    meta: RasterMeta | None = None,
    *,
    layout: Layout = "hwc",
    key: str | None = None,
) -> Path:
    """Write a cube and its metadata atomically, dispatching on the file suffix.

    The data go to a hidden temporary sibling first and are renamed into place only
    when complete, so a failed write never leaves a partial output and never harms
    an existing file. Formats store the cube in their own band order (``.npy``,
    ``.mat``, HDF5, zarr: (H, W, C); GeoTIFF: bands; ENVI: BSQ).

    Parameters
    ----------
    path : str or Path
        Output path; the suffix picks the format (see :func:`read`). ENVI writes
        ``<stem>.hdr`` + ``<stem>.img``; ``.npy`` adds a ``.npy.json`` sidecar when
        ``meta`` has content (and removes a stale one otherwise).
    array : array-like of shape (H, W, C) or (C, H, W)
        The cube (NumPy array, tensor or :class:`~hyperfuse.io.LazyCube`).
    meta : RasterMeta, optional
        Metadata to store (see each format module for what is kept).
    layout : {"hwc", "chw"}
        Axis order of ``array``.
    key : str, optional
        Variable / dataset name for ``.mat``, HDF5 and zarr (default ``"cube"``).

    Returns
    -------
    Path
        The written path (ENVI: the ``.hdr``).

    Raises
    ------
    ShapeError
        ``array`` is not 3-D, or per-band metadata does not match its band count.
    FormatError
        Unknown suffix, dtype the format cannot hold, or the write failed.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = write(Path(d) / "x.npy", np.ones((3, 2, 2)), layout="chw")
    ...     read(out)[0].shape
    (2, 2, 3)
    """
    p = Path(path).expanduser()
    name, fmt = format_of(p)
    lay = check_layout(layout, p) or "hwc"
    arr = _as_numpy(array)
    if arr.ndim != 3:
        raise ShapeError(
            f"{p}: cannot write an array of shape {arr.shape}; pass a 3-D cube (rows, cols, bands)"
        )
    if arr.dtype.kind not in "biufc":
        raise FormatError(f"{p}: cannot write dtype {arr.dtype}; pass a numeric array")
    hwc = apply_layout(arr, lay)
    meta = RasterMeta() if meta is None else meta
    check_meta(meta, hwc.shape[2], p)
    if name == "envi" and p.suffix.lower() == ".img":
        out = p.with_suffix(".hdr")
    else:
        out = p
    try:
        _module(name).write(p, hwc, meta, key=key)
    except HyperfuseError:
        raise
    except Exception as exc:
        raise FormatError(
            f"{p}: cannot write {fmt} ({one_line(exc)}); check the path and the data"
        ) from exc
    return out


def merge_meta(hsi_meta: RasterMeta | None, msi_meta: RasterMeta | None) -> RasterMeta:
    """Metadata of a fused cube: spectral fields from the HSI, spatial fields from the MSI.

    The fused image has the HSI's bands on the MSI's pixel grid, so it takes
    ``wavelengths``, ``fwhm`` and ``band_names`` from ``hsi_meta`` and ``crs`` and
    ``transform`` from ``msi_meta``. ``scale`` and ``nodata`` are dropped (the fused
    cube is float reflectance with missing pixels already filled).

    Parameters
    ----------
    hsi_meta, msi_meta : RasterMeta or None
        Metadata of the low-resolution HSI and the high-resolution MSI.

    Returns
    -------
    RasterMeta

    Examples
    --------
    >>> hsi = RasterMeta(wavelengths=np.array([450.0, 550.0]), crs="EPSG:4326", scale=1e4)
    >>> msi = RasterMeta(crs="EPSG:32633", transform=(10.0, 0.0, 5e5, 0.0, -10.0, 4e6))
    >>> m = merge_meta(hsi, msi)
    >>> m.wavelengths.tolist(), m.crs, m.transform[0], m.scale
    ([450.0, 550.0], 'EPSG:32633', 10.0, None)
    """
    h = hsi_meta or RasterMeta()
    m = msi_meta or RasterMeta()
    return RasterMeta(
        wavelengths=h.wavelengths,
        fwhm=h.fwhm,
        crs=m.crs,
        transform=m.transform,
        band_names=h.band_names,
        extra={"fused_from": {"hsi": h.extra, "msi": m.extra}} if (h.extra or m.extra) else {},
    )
