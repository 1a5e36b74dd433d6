"""ENVI raster: a text ``.hdr`` header plus a raw binary file, read with :class:`numpy.memmap`.

No GDAL needed. :func:`read` accepts the header (``scene.hdr``) or the binary
(``scene.img``); the binary is looked up as ``scene``, ``scene.img``, ``scene.dat``,
``scene.raw``, ``scene.bsq``/``.bil``/``.bip`` (and ``scene.img.hdr`` for the header).
BSQ, BIL and BIP interleaves and both byte orders are supported; a lazy read
returns a memmap view in (H, W, C) order.

Header fields mapped to :class:`~hyperfuse.types.RasterMeta`:

==============================  ==============================================
``wavelength`` (+ units)        ``wavelengths`` in nm (micrometres are x1000;
                                without units, values below 30 are taken as um)
``fwhm``                        ``fwhm`` in nm (same unit rule)
``reflectance scale factor``    ``scale`` (value / scale is reflectance)
``data ignore value``           ``nodata``
``band names``                  ``band_names``
``map info``                    ``transform`` (north-up, optional rotation)
``coordinate system string``    ``crs`` (WKT)
==============================  ==============================================

Writing produces ``scene.hdr`` + ``scene.img`` (BSQ, little-endian). ENVI has no
int8/float16/bool type; those are written as int16/float32/uint8. ``extra`` is not
stored.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_outputs
from ..errors import FormatError
from ..types import RasterMeta
from ._common import Layout, coerce_dtype, one_line

__all__ = ["read", "write", "parse_header", "header_and_data_paths", "SUPPORTED_DTYPES"]

_ENVI_TO_DTYPE = {
    1: "uint8",
    2: "int16",
    3: "int32",
    4: "float32",
    5: "float64",
    6: "complex64",
    9: "complex128",
    12: "uint16",
    13: "uint32",
    14: "int64",
    15: "uint64",
}
_DTYPE_TO_ENVI = {v: k for k, v in _ENVI_TO_DTYPE.items()}
SUPPORTED_DTYPES = tuple(_DTYPE_TO_ENVI)
_DATA_SUFFIXES = ("", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip")


def parse_header(text: str, path: Path | str = "header") -> dict[str, str]:
    """Parse ENVI header text into ``{lower-case key: raw value}`` (braces kept).

    Examples
    --------
    >>> h = parse_header("ENVI\\nsamples = 3\\nwavelength = {400,\\n 500}\\n")
    >>> h["samples"], h["wavelength"]
    ('3', '{400, 500}')
    """
    lines = text.splitlines()
    if not lines or not lines[0].strip().upper().startswith("ENVI"):
        raise FormatError(f"{path}: not an ENVI header (first line must be 'ENVI'); check the file")
    out: dict[str, str] = {}
    i = 1
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith(";") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        v = v.strip()
        if v.startswith("{"):
            parts = [v]
            while "}" not in parts[-1] and i < len(lines):
                parts.append(lines[i].strip())
                i += 1
            v = " ".join(p for p in parts if p)
            if "}" not in v:
                raise FormatError(
                    f"{path}: unterminated '{{' in field {k.strip()!r}; fix the header"
                )
        out[k.strip().lower()] = v
    return out


def _items(value: str) -> list[str]:
    inner = value.strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1]
    return [t.strip() for t in inner.split(",") if t.strip()]


def _floats(value: str | None, path: Path, field: str) -> np.ndarray | None:
    if value is None:
        return None
    try:
        return np.asarray([float(t) for t in _items(value)], dtype=np.float64)
    except ValueError as exc:
        raise FormatError(
            f"{path}: header field {field!r} is not a list of numbers; fix the header"
        ) from exc


def _int_field(h: dict[str, str], name: str, path: Path, default: int | None = None) -> int:
    if name not in h:
        if default is not None:
            return default
        raise FormatError(f"{path}: header lacks required field {name!r}; add it to the header")
    try:
        return int(float(h[name]))
    except ValueError as exc:
        raise FormatError(
            f"{path}: header field {name!r} = {h[name]!r} is not an integer; fix the header"
        ) from exc


def header_and_data_paths(path: Path) -> tuple[Path, Path]:
    """Find the header and binary of an ENVI file given either of them."""
    if path.suffix.lower() == ".hdr":
        hdr = path
        base = path.with_suffix("")
        for suf in _DATA_SUFFIXES:
            cand = base.with_name(base.name + suf) if suf else base
            if cand.is_file():
                return hdr, cand
        raise FormatError(
            f"{path}: ENVI data file not found (looked for {base.name} with "
            f"{', '.join(s or 'no' for s in _DATA_SUFFIXES)} suffix); put the binary beside the header"
        )
    for hdr in (path.with_suffix(".hdr"), path.with_name(path.name + ".hdr")):
        if hdr.is_file():
            return hdr, path
    raise FormatError(
        f"{path}: ENVI header not found ({path.with_suffix('.hdr').name}); put the .hdr beside the binary"
    )


def _to_nm(values: np.ndarray | None, units: str) -> np.ndarray | None:
    if values is None:
        return None
    u = units.lower()
    if u.startswith("micro") or u in ("um", "µm"):
        return values * 1000.0
    if u.startswith("milli") or u == "mm":
        return values * 1e6
    if not u and values.size and np.nanmax(values) < 30:
        return values * 1000.0
    return values


def _transform(h: dict[str, str], path: Path) -> tuple[float, ...] | None:
    if "hyperfuse transform" in h:
        t = _floats(h["hyperfuse transform"], path, "hyperfuse transform")
        return tuple(float(v) for v in t) if t is not None and t.size == 6 else None
    if "map info" not in h:
        return None
    items = _items(h["map info"])
    try:
        px, py, x0, y0, dx, dy = (float(v) for v in items[1:7])
    except (ValueError, IndexError):
        return None
    rot = 0.0
    for it in items:
        m = re.match(r"rotation\s*=\s*([-+0-9.eE]+)", it)
        if m:
            rot = math.radians(float(m.group(1)))
    c, s = math.cos(rot), math.sin(rot)
    a, b, d, e = dx * c, dy * s, dx * s, -dy * c
    c0 = x0 - (px - 1) * a - (py - 1) * b
    f0 = y0 - (px - 1) * d - (py - 1) * e
    return (a, b, c0, d, e, f0)


def _meta(h: dict[str, str], path: Path, n_bands: int) -> RasterMeta:
    units = h.get("wavelength units", "").strip()
    wl = _to_nm(_floats(h.get("wavelength"), path, "wavelength"), units)
    fwhm = _to_nm(_floats(h.get("fwhm"), path, "fwhm"), units)
    if wl is not None and wl.size != n_bands:
        wl = None
    if fwhm is not None and fwhm.size != n_bands:
        fwhm = None
    scale = None
    if "reflectance scale factor" in h:
        try:
            scale = float(_items(h["reflectance scale factor"])[0])
        except (ValueError, IndexError):
            scale = None
    nodata = None
    if "data ignore value" in h:
        try:
            nodata = float(_items(h["data ignore value"])[0])
        except (ValueError, IndexError):
            nodata = None
    names = None
    if "band names" in h:
        bn = _items(h["band names"])
        names = tuple(bn) if len(bn) == n_bands else None
    crs = None
    for field in ("hyperfuse crs", "coordinate system string"):
        if field in h:
            v = h[field].strip()
            crs = v[1:-1].strip() if v.startswith("{") and v.endswith("}") else v
            break
    extra: dict[str, Any] = {}
    if units:
        extra["wavelength_units"] = units
    if "description" in h:
        extra["description"] = h["description"].strip("{} ")
    return RasterMeta(
        wavelengths=wl,
        fwhm=fwhm,
        crs=crs or None,
        transform=_transform(h, path),
        scale=scale,
        nodata=nodata,
        band_names=names,
        extra=extra,
    )


def read(
    path: Path, *, key: str | None = None, layout: Layout | None = None, lazy: bool = False
) -> tuple[Any, RasterMeta]:
    """Read an ENVI cube as (H, W, C) plus header metadata (``key``/``layout`` are ignored)."""
    hdr, data = header_and_data_paths(path)
    try:
        text = hdr.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise FormatError(
            f"{hdr}: cannot read header ({one_line(exc)}); check permissions"
        ) from exc
    h = parse_header(text, hdr)
    samples = _int_field(h, "samples", hdr)
    lines = _int_field(h, "lines", hdr)
    bands = _int_field(h, "bands", hdr)
    offset = _int_field(h, "header offset", hdr, default=0)
    code = _int_field(h, "data type", hdr)
    if code not in _ENVI_TO_DTYPE:
        raise FormatError(
            f"{hdr}: unsupported ENVI data type {code}; convert the file to a numeric type"
        )
    order = _int_field(h, "byte order", hdr, default=0)
    dtype = np.dtype(_ENVI_TO_DTYPE[code]).newbyteorder(">" if order == 1 else "<")
    interleave = h.get("interleave", "bsq").strip().lower()
    shapes = {
        "bsq": (bands, lines, samples),
        "bil": (lines, bands, samples),
        "bip": (lines, samples, bands),
    }
    axes = {"bsq": (1, 2, 0), "bil": (0, 2, 1), "bip": (0, 1, 2)}
    if interleave not in shapes:
        raise FormatError(f"{hdr}: unknown interleave {interleave!r}; use bsq, bil or bip")
    need = offset + samples * lines * bands * dtype.itemsize
    size = data.stat().st_size
    if size < need:
        raise FormatError(
            f"{data}: ENVI binary is {size} bytes but the header needs {need}; the file is truncated or the header is wrong"
        )
    meta = _meta(h, hdr, bands)
    if samples * lines * bands == 0:
        return np.zeros((lines, samples, bands), dtype=dtype.newbyteorder("=")), meta
    mm = np.memmap(data, dtype=dtype, mode="r", offset=offset, shape=shapes[interleave])
    view = mm.transpose(axes[interleave])
    if lazy:
        return view, meta
    out = np.array(view, dtype=dtype.newbyteorder("="), order="C")
    del mm, view
    return out, meta


def _fmt_list(values: Any) -> str:
    return "{" + ", ".join(repr(float(v)) for v in values) + "}"


def _esri_wkt(crs: str) -> str | None:
    """WKT for the ``coordinate system string`` field (needs rasterio unless already WKT)."""
    if (
        crs.lstrip()
        .upper()
        .startswith(("PROJCS", "GEOGCS", "PROJCRS", "GEOGCRS", "COMPD", "LOCAL_CS"))
    ):
        return crs
    try:
        from rasterio.crs import CRS
    except ImportError:  # pragma: no cover - optional
        return None
    try:
        return " ".join(CRS.from_user_input(crs).to_wkt(version="WKT1_ESRI").split())
    except Exception:
        return None


def _header_text(arr: np.ndarray, meta: RasterMeta, data_name: str) -> str:
    h, w, c = arr.shape
    lines = [
        "ENVI",
        "description = {written by hyperfuse}",
        f"samples = {w}",
        f"lines = {h}",
        f"bands = {c}",
        "header offset = 0",
        "file type = ENVI Standard",
        f"data type = {_DTYPE_TO_ENVI[arr.dtype.name]}",
        "interleave = bsq",
        "byte order = 0",
    ]
    if meta.wavelengths is not None:
        lines += ["wavelength units = Nanometers", f"wavelength = {_fmt_list(meta.wavelengths)}"]
    if meta.fwhm is not None:
        lines.append(f"fwhm = {_fmt_list(meta.fwhm)}")
    if meta.scale is not None:
        lines.append(f"reflectance scale factor = {float(meta.scale)!r}")
    if meta.nodata is not None:
        lines.append(f"data ignore value = {float(meta.nodata)!r}")
    if meta.band_names is not None:
        lines.append(
            "band names = {" + ", ".join(str(n).replace(",", ";") for n in meta.band_names) + "}"
        )
    if meta.transform is not None:
        a, b, c0, d, e, f0 = (float(v) for v in meta.transform[:6])
        if b == 0.0 and d == 0.0 and a > 0 and e < 0:
            lines.append(
                f"map info = {{Arbitrary, 1.0, 1.0, {c0!r}, {f0!r}, {a!r}, {-e!r}, units=Meters}}"
            )
        lines.append(f"hyperfuse transform = {_fmt_list((a, b, c0, d, e, f0))}")
    if meta.crs is not None:
        crs = " ".join(str(meta.crs).split())
        lines.append(f"hyperfuse crs = {{{crs}}}")
        wkt = _esri_wkt(crs)
        if wkt:
            lines.append(f"coordinate system string = {{{wkt}}}")
    return "\n".join(lines) + "\n"


def _write_bsq(fh: Any, arr: np.ndarray) -> None:
    le = arr.dtype.newbyteorder("<")
    for b in range(arr.shape[2]):
        fh.write(np.ascontiguousarray(arr[:, :, b], dtype=le).tobytes())


def write(path: Path, array: np.ndarray, meta: RasterMeta, *, key: str | None = None) -> None:
    """Write ``scene.hdr`` + ``scene.img`` (BSQ, little-endian) from an (H, W, C) array."""
    arr = coerce_dtype(array, SUPPORTED_DTYPES, path, "ENVI")
    base = path.with_suffix("")
    hdr, data = base.with_name(base.name + ".hdr"), base.with_name(base.name + ".img")
    text = _header_text(arr, meta, data.name)
    with atomic_outputs(data, hdr) as (tmp_data, tmp_hdr):
        with open(tmp_data, "wb") as fh:
            _write_bsq(fh, arr)
        tmp_hdr.write_text(text, encoding="utf-8")
