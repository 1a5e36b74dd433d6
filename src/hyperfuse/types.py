"""Frozen dataclasses shared across the package."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["RasterMeta", "SensorSpec", "FusionResult", "Boundary"]

Boundary = Literal["reflect", "circular", "replicate", "zeros"]


def _fields_to_dict(obj: Any) -> dict[str, Any]:
    """Dataclass fields as plain values: arrays to lists, tuples to lists."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def _array_or_none(value: Any) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=np.float64)


@dataclass(frozen=True)
class RasterMeta:
    """Metadata travelling with a cube read from or written to disk.

    Parameters
    ----------
    wavelengths : ndarray of shape (C,), optional
        Band centres in nanometres.
    fwhm : ndarray of shape (C,), optional
        Band widths (full width at half maximum) in nanometres.
    crs : str, optional
        Coordinate reference system as WKT (or an EPSG string).
    transform : tuple of 6 floats, optional
        Affine geotransform in rasterio order ``(a, b, c, d, e, f)``.
    scale : float, optional
        Divisor that maps stored values to reflectance (value / scale).
    nodata : float, optional
        Value marking missing pixels.
    band_names : tuple of str, optional
        One name per band.
    extra : dict
        Anything else worth keeping (free-form, JSON-serialisable).
    """

    wavelengths: np.ndarray | None = None
    fwhm: np.ndarray | None = None
    crs: str | None = None
    transform: tuple[float, ...] | None = None
    scale: float | None = None
    nodata: float | None = None
    band_names: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> RasterMeta:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary (arrays become nested lists)."""
        return _fields_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RasterMeta:
        """Inverse of :meth:`to_dict`; unknown keys go to ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw: dict[str, Any] = {k: v for k, v in d.items() if k in names}
        extra = dict(kw.pop("extra", {}) or {})
        extra.update({k: v for k, v in d.items() if k not in names})
        for k in ("wavelengths", "fwhm"):
            kw[k] = _array_or_none(kw.get(k))
        for k in ("transform", "band_names"):
            if kw.get(k) is not None:
                kw[k] = tuple(kw[k])
        return cls(**kw, extra=extra)


@dataclass(frozen=True)
class SensorSpec:
    """Everything that describes how an (LR-HSI, HR-MSI) pair sees a scene.

    Parameters
    ----------
    ratio : int
        Integer resolution ratio r = H / h (> 1 for fusion; 1 is allowed for tests).
    psf : ndarray of shape (K, K)
        Point spread function, non-negative, summing to 1. Correlation form.
    srf : ndarray of shape (l, L), optional
        Spectral response matrix: MSI band m = ``srf[m] @`` HSI spectrum.
        ``None`` means unknown (a blind method estimates it).
    offset : tuple of int
        Sampling offset o = (o_y, o_x) in HR pixels, ``0 <= o < ratio``
        (``protocols.md`` §3). The LR pixel (i, j) is centred on
        ``(r*i + o + (K-1)/2 - K//2, ...)``.
    boundary : {"reflect", "circular", "replicate", "zeros"}
        Out-of-range handling of the blur. ``"reflect"`` is reflect-101.
    wavelengths : ndarray of shape (L,), optional
        HSI band centres in nm.
    msi_band_names : tuple of str, optional
        Names of the MSI bands (rows of ``srf``).
    snr_hsi, snr_msi : float, optional
        Noise level in dB for simulation; ``None`` means noise-free.
    snr_ref : {"band_power", "cube_power", "band_variance"}
        What the SNR is relative to (``protocols.md`` §4).
    info : dict
        Provenance: PSF convention, sigma, SRF source, coverage, dropped bands.
    """

    ratio: int
    psf: np.ndarray
    srf: np.ndarray | None = None
    offset: tuple[int, int] = (0, 0)
    boundary: Boundary = "reflect"
    wavelengths: np.ndarray | None = None
    msi_band_names: tuple[str, ...] | None = None
    snr_hsi: float | None = None
    snr_msi: float | None = None
    snr_ref: Literal["band_power", "cube_power", "band_variance"] = "band_power"
    info: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> SensorSpec:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @property
    def psf_size(self) -> tuple[int, int]:
        """Kernel shape (K_h, K_w)."""
        return (int(self.psf.shape[0]), int(self.psf.shape[1]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary (arrays become nested lists)."""
        return _fields_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SensorSpec:
        """Inverse of :meth:`to_dict`."""
        kw = dict(d)
        kw["psf"] = np.asarray(kw["psf"], dtype=np.float64)
        kw["srf"] = _array_or_none(kw.get("srf"))
        kw["wavelengths"] = _array_or_none(kw.get("wavelengths"))
        kw["offset"] = tuple(int(v) for v in kw.get("offset", (0, 0)))
        if kw.get("msi_band_names") is not None:
            kw["msi_band_names"] = tuple(kw["msi_band_names"])
        kw["ratio"] = int(kw["ratio"])
        return cls(**kw)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass
class FusionResult:
    """What every fusion method returns.

    Parameters
    ----------
    cube : torch.Tensor of shape (B, L, H, W)
        The fused image.
    sensor_estimate : SensorSpec, optional
        Estimated sensor, filled by blind methods.
    endmembers : torch.Tensor of shape (B, L, p), optional
        Endmember spectra, for unmixing-based methods.
    abundances : torch.Tensor of shape (B, p, H, W), optional
        Abundance maps, for unmixing-based methods.
    history : dict of list of float
        Per-iteration quantities (e.g. ``"cost"``).
    info : dict
        Iteration counts, timings and anything a run record should keep.
    """

    cube: Any
    sensor_estimate: SensorSpec | None = None
    endmembers: Any = None
    abundances: Any = None
    history: dict[str, list[float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
