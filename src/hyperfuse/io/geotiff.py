"""GeoTIFF through rasterio (optional ``io`` extra).

Bands are the TIFF bands, so the cube reads as (H, W, C) whatever ``layout`` says.
Kept on disk and read back:

* CRS (returned as ``"EPSG:n"`` when it has an EPSG code, else WKT) and the affine
  transform (``None`` when the file is not georeferenced);
* nodata (GDAL nodata tag);
* wavelengths and FWHM: a per-band tag ``wavelength`` / ``fwhm`` (nm) plus
  dataset tags ``wavelengths`` / ``fwhm`` holding the JSON lists;
* scale: the dataset tag ``scale_den`` (value / scale_den is reflectance); files
  without it but with a GDAL band scale ``s != 1`` read as ``scale = 1 / s``;
* band names as band descriptions, ``extra`` as the JSON dataset tag ``hyperfuse_extra``.

GeoTIFF cannot hold bool, int8 or float16 cubes; they are written as uint8, int16
and float32.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_outputs
from ..errors import FormatError, require
from ..types import RasterMeta
from ._common import Layout, coerce_dtype, one_line
from ._lazy import LazyCube

__all__ = ["read", "write", "SUPPORTED_DTYPES"]

SUPPORTED_DTYPES = (
    "uint8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "int64",
    "uint64",
    "float32",
    "float64",
)


def _rasterio() -> Any:
    rasterio = require("rasterio", "io")
    return rasterio


def _crs_string(crs: Any) -> str | None:
    if crs is None:
        return None
    try:
        epsg = crs.to_epsg()
    except Exception:  # pragma: no cover - exotic CRS
        epsg = None
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def _json_list(text: str | None) -> np.ndarray | None:
    if not text:
        return None
    try:
        v = json.loads(text)
    except ValueError:
        try:
            v = [float(t) for t in text.replace("{", "").replace("}", "").split(",")]
        except ValueError:
            return None
    try:
        return np.asarray(v, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None


def _band_values(ds: Any, tag: str) -> np.ndarray | None:
    vals = []
    for b in range(1, ds.count + 1):
        t = ds.tags(b).get(tag)
        if t is None:
            return None
        try:
            vals.append(float(t))
        except ValueError:
            return None
    return np.asarray(vals, dtype=np.float64)


def _meta(ds: Any) -> RasterMeta:
    tags = ds.tags()
    n = ds.count
    wl = _json_list(tags.get("wavelengths"))
    if wl is None or wl.size != n:
        wl = _band_values(ds, "wavelength")
    fwhm = _json_list(tags.get("fwhm"))
    if fwhm is None or fwhm.size != n:
        fwhm = _band_values(ds, "fwhm")
    scale = None
    if tags.get("scale_den"):
        try:
            scale = float(tags["scale_den"])
        except ValueError:
            scale = None
    elif ds.scales and len(set(ds.scales)) == 1 and ds.scales[0] not in (0.0, 1.0):
        scale = 1.0 / float(ds.scales[0])
    descs = tuple(ds.descriptions)
    names = descs if all(descs) else None
    extra: dict[str, Any] = {}
    if tags.get("hyperfuse_extra"):
        try:
            extra = dict(json.loads(tags["hyperfuse_extra"]))
        except (ValueError, TypeError):
            extra = {}
    transform = None
    if ds.crs is not None or not ds.transform.is_identity:
        transform = tuple(float(v) for v in tuple(ds.transform)[:6])
    return RasterMeta(
        wavelengths=wl,
        fwhm=fwhm,
        crs=_crs_string(ds.crs),
        transform=transform,
        scale=scale,
        nodata=None if ds.nodata is None else float(ds.nodata),
        band_names=names,
        extra=extra,
    )


def _open(path: Path) -> Any:
    rasterio = _rasterio()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        try:
            return rasterio.open(path)
        except rasterio.errors.RasterioIOError as exc:
            raise FormatError(
                f"{path}: not a readable GeoTIFF ({one_line(exc)}); check the file or re-export it"
            ) from exc


def read(
    path: Path, *, key: str | None = None, layout: Layout | None = None, lazy: bool = False
) -> tuple[Any, RasterMeta]:
    """Read a GeoTIFF as (H, W, C) plus its metadata (``key``/``layout`` are ignored)."""
    rasterio = _rasterio()
    ds = _open(path)
    try:
        meta = _meta(ds)
        if lazy:
            from rasterio.windows import Window

            def reader(s: tuple[slice, ...]) -> np.ndarray:
                sb, sr, sc = s
                bands = list(range(sb.start + 1, sb.stop + 1, sb.step))
                win = Window(sc.start, sr.start, sc.stop - sc.start, sr.stop - sr.start)
                block = ds.read(bands, window=win)
                return block[:, :: sr.step, :: sc.step]

            cube = LazyCube(
                reader,
                (ds.count, ds.height, ds.width),
                ds.dtypes[0],
                axes=(1, 2, 0),
                closer=ds.close,
                source=ds,
            )
            return cube, meta
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            data = ds.read()
        ds.close()
        return np.moveaxis(data, 0, -1), meta
    except BaseException:
        ds.close()
        raise


def write(path: Path, array: np.ndarray, meta: RasterMeta, *, key: str | None = None) -> None:
    """Write an (H, W, C) array as a GeoTIFF with CRS, transform, nodata and band metadata."""
    rasterio = _rasterio()
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    arr = coerce_dtype(array, SUPPORTED_DTYPES, path, "GeoTIFF")
    h, w, c = arr.shape
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": h,
        "width": w,
        "count": c,
        "dtype": arr.dtype.name,
        "interleave": "pixel",
        "BIGTIFF": "IF_SAFER",
        "photometric": "MINISBLACK",
    }
    if h >= 256 and w >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if meta.crs is not None:
        try:
            profile["crs"] = CRS.from_user_input(meta.crs)
        except Exception as exc:
            raise FormatError(
                f"{path}: cannot interpret crs {meta.crs!r} ({one_line(exc)}); pass WKT or 'EPSG:n'"
            ) from exc
    if meta.transform is not None:
        profile["transform"] = Affine(*[float(v) for v in meta.transform[:6]])
    if meta.nodata is not None:
        nd = float(meta.nodata)
        info = np.iinfo(arr.dtype) if arr.dtype.kind in "iu" else None
        if info is not None and not (
            np.isfinite(nd) and nd == int(nd) and info.min <= nd <= info.max
        ):
            raise FormatError(
                f"{path}: nodata {meta.nodata} does not fit dtype {arr.dtype.name}; "
                "pass a nodata value inside the dtype range or convert the cube to float"
            )
        profile["nodata"] = nd
    tags: dict[str, str] = {}
    if meta.wavelengths is not None:
        tags["wavelengths"] = json.dumps(np.asarray(meta.wavelengths, dtype=float).tolist())
    if meta.fwhm is not None:
        tags["fwhm"] = json.dumps(np.asarray(meta.fwhm, dtype=float).tolist())
    if meta.scale is not None:
        tags["scale_den"] = repr(float(meta.scale))
    if meta.extra:
        tags["hyperfuse_extra"] = json.dumps(meta.extra, default=str)
    with atomic_outputs(path) as (tmp,):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(tmp, "w", **profile) as dst:
                if tags:
                    dst.update_tags(**tags)
                for b in range(c):
                    btags = {}
                    if meta.wavelengths is not None:
                        btags["wavelength"] = repr(float(meta.wavelengths[b]))
                    if meta.fwhm is not None:
                        btags["fwhm"] = repr(float(meta.fwhm[b]))
                    if btags:
                        dst.update_tags(b + 1, **btags)
                    if meta.band_names is not None:
                        dst.set_band_description(b + 1, str(meta.band_names[b]))
                if meta.scale is not None:
                    dst.scales = [1.0 / float(meta.scale)] * c
                dst.write(np.moveaxis(arr, -1, 0))
