"""Sensor descriptions, the fusion physics module and the Wald simulation protocol."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from .._random import RNGLike, as_numpy_rng
from .._validation import check_cube, check_ratio
from ..errors import ShapeError, SRFError
from ..types import SensorSpec
from . import functional as Fn
from .noise import SNRRef, add_gaussian_noise
from .operators import SpatialDegradation, SpectralResponse

__all__ = [
    "make_sensor",
    "FusionPhysics",
    "SimulatedPair",
    "simulate",
    "Preset",
    "PRESETS",
]

ShapePolicy = Literal["crop", "strict"]


def make_sensor(
    ratio: int,
    *,
    srf: np.ndarray | None = None,
    psf: np.ndarray | None = None,
    psf_sigma: float | None = None,
    psf_size: int | None = None,
    phase: Fn.Phase | int = "block_centred",
    boundary: Fn.Boundary = "reflect",
    wavelengths: np.ndarray | None = None,
    msi_band_names: tuple[str, ...] | None = None,
    snr_hsi: float | None = None,
    snr_msi: float | None = None,
    snr_ref: SNRRef = "band_power",
    info: dict[str, Any] | None = None,
) -> SensorSpec:
    """Build a :class:`~hyperfuse.types.SensorSpec` with the protocol defaults.

    Parameters
    ----------
    ratio : int
        Resolution ratio r.
    srf : ndarray of shape (l, L), optional
        Spectral response (``None``: unknown).
    psf : ndarray of shape (K, K), optional
        Explicit PSF. Otherwise a Gaussian of ``psf_sigma`` (default FWHM = r, i.e.
        sigma = 0.4247 r) on ``psf_size`` (default: smallest K >= 2 ceil(3 sigma)+1 with
        K = r mod 2).
    phase : {"block_centred", "mossfuse", "corner"} or int
        Sampling offset convention (``protocols.md`` §3).
    boundary : {"reflect", "circular", "replicate", "zeros"}
    wavelengths, msi_band_names, snr_hsi, snr_msi, snr_ref, info
        Stored as given.

    Returns
    -------
    SensorSpec

    Examples
    --------
    >>> s = make_sensor(8)
    >>> s.psf.shape, s.offset, round(s.info["psf_sigma"], 3)
    ((24, 24), (4, 4), 3.397)
    """
    r = check_ratio(ratio)
    meta: dict[str, Any] = dict(info or {})
    if psf is None:
        sigma = Fn.fwhm_to_sigma(r) if psf_sigma is None else float(psf_sigma)
        size = Fn.default_psf_size(sigma, r) if psf_size is None else int(psf_size)
        psf = Fn.gaussian_psf(sigma, size)
        meta.update(psf_kind="gaussian", psf_sigma=sigma, psf_size=size)
    else:
        psf = np.array(psf, dtype=np.float64)
        if psf.ndim != 2 or (psf < 0).any() or not np.isfinite(psf).all() or psf.sum() <= 0:
            raise ShapeError("PSF must be a finite non-negative 2-D kernel; check the PSF file")
        psf = psf / psf.sum()
        meta.update(psf_kind="explicit", psf_size=int(psf.shape[0]))
    o = Fn.phase_offset(phase, r)
    meta["phase"] = phase if isinstance(phase, str) else int(phase)
    if srf is not None:
        srf = np.array(srf, dtype=np.float64)  # a private, writable copy
        if srf.ndim != 2:
            raise SRFError(f"SRF must be a 2-D (l, L) matrix, got shape {srf.shape}")
        if wavelengths is not None and srf.shape[1] != len(wavelengths):
            raise SRFError(
                f"SRF has {srf.shape[1]} columns but there are {len(wavelengths)} HSI bands; "
                "pass an SRF with one column per HSI band"
            )
    return SensorSpec(
        ratio=r,
        psf=psf,
        srf=srf,
        offset=(o, o),
        boundary=boundary,
        wavelengths=None if wavelengths is None else np.asarray(wavelengths, dtype=np.float64),
        msi_band_names=msi_band_names,
        snr_hsi=snr_hsi,
        snr_msi=snr_msi,
        snr_ref=snr_ref,
        info=meta,
    )


class FusionPhysics(nn.Module):
    """The forward model of a sensor pair: ``.spatial`` (D) and ``.spectral`` (R).

    Parameters
    ----------
    spec : SensorSpec
        The sensor. ``spec.srf`` may be ``None`` (blind methods); ``.spectral`` is then
        ``None``.

    Examples
    --------
    >>> phys = FusionPhysics(make_sensor(4, srf=np.full((2, 6), 1 / 6)))
    >>> x = torch.rand(1, 6, 16, 16)
    >>> phys.spatial(x).shape, phys.spectral(x).shape
    (torch.Size([1, 6, 4, 4]), torch.Size([1, 2, 16, 16]))
    """

    def __init__(self, spec: SensorSpec) -> None:
        super().__init__()
        self.spec = spec
        self.ratio = spec.ratio
        self.spatial = SpatialDegradation(spec.psf, spec.ratio, spec.offset, spec.boundary)
        self.spectral = None if spec.srf is None else SpectralResponse(spec.srf)

    @classmethod
    def from_spec(cls, spec: SensorSpec | FusionPhysics) -> FusionPhysics:
        """Return ``spec`` if it is already a ``FusionPhysics``, else wrap it."""
        return spec if isinstance(spec, FusionPhysics) else cls(spec)


@dataclass
class SimulatedPair:
    """Output of :func:`simulate`.

    ``hsi`` (B, L, h, w) and ``msi`` (B, l, H, W) are what a method sees; the clean pair is
    kept for diagnostics only. ``reference`` is the (possibly cropped) input cube.
    """

    hsi: torch.Tensor
    msi: torch.Tensor
    reference: torch.Tensor
    sensor: SensorSpec
    hsi_clean: torch.Tensor
    msi_clean: torch.Tensor
    crop: tuple[int, int] = (0, 0)
    info: dict[str, Any] = field(default_factory=dict)


def simulate(
    x: torch.Tensor,
    sensor: SensorSpec,
    *,
    rng: RNGLike = None,
    shape_policy: ShapePolicy = "crop",
) -> SimulatedPair:
    """Wald-protocol simulation: x = D(X) + n_h, Y = R X + n_m (``protocols.md`` §1).

    Computed in float64 and returned as float32. If H or W is not a multiple of r,
    ``shape_policy="crop"`` removes the excess bottom rows and right columns (recorded
    in ``crop``); ``"strict"`` raises. Noise follows ``sensor.snr_hsi``/``snr_msi``: HSI
    standard normals (h, w, L) are drawn first, then the MSI ones (H, W, l), from
    ``numpy.random.Generator(PCG64(seed))`` per batch item.

    Parameters
    ----------
    x : Tensor of shape (B, L, H, W)
        Reference cube.
    sensor : SensorSpec
        Must have an SRF.
    rng : int, Generator or None
        Noise randomness.
    shape_policy : {"crop", "strict"}

    Returns
    -------
    SimulatedPair

    Examples
    --------
    >>> spec = make_sensor(4, srf=np.full((3, 10), 0.1))
    >>> pair = simulate(torch.rand(1, 10, 18, 16), spec, rng=0)
    >>> tuple(pair.hsi.shape), tuple(pair.msi.shape), pair.crop
    ((1, 10, 4, 4), (1, 3, 16, 16), (2, 0))
    """
    check_cube(x, "reference")
    if sensor.srf is None:
        raise SRFError("simulation needs an SRF; pass --srf NAME or a file")
    if sensor.srf.shape[1] != x.shape[1]:
        raise SRFError(
            f"SRF has {sensor.srf.shape[1]} columns but the cube has {x.shape[1]} bands; "
            "pass an SRF resampled to the cube's wavelengths"
        )
    r = sensor.ratio
    H, W = x.shape[-2:]
    ch, cw = H % r, W % r
    if ch or cw:
        if shape_policy == "strict":
            raise ShapeError(f"cube size {H}x{W} is not a multiple of ratio {r}; crop it or use crop")
        x = x[..., : H - ch, : W - cw]
    if x.shape[-2] < r or x.shape[-1] < r:
        raise ShapeError(f"cube {H}x{W} is smaller than the ratio {r}; pass a larger cube")
    x64 = x.to(torch.float64)
    phys = FusionPhysics(sensor)
    hsi_clean = phys.spatial(x64)
    msi_clean = phys.spectral(x64)  # type: ignore[misc]
    gen = as_numpy_rng(rng)
    hsi, msi = [], []
    for b in range(x.shape[0]):
        zh = hsi_clean[b].permute(1, 2, 0).cpu().numpy()
        zm = msi_clean[b].permute(1, 2, 0).cpu().numpy()
        nh = add_gaussian_noise(zh, sensor.snr_hsi, gen, sensor.snr_ref)
        nm = add_gaussian_noise(zm, sensor.snr_msi, gen, sensor.snr_ref)
        hsi.append(torch.from_numpy(np.ascontiguousarray(nh)).permute(2, 0, 1))
        msi.append(torch.from_numpy(np.ascontiguousarray(nm)).permute(2, 0, 1))
    dev = x.device
    return SimulatedPair(
        hsi=torch.stack(hsi).to(dev, torch.float32),
        msi=torch.stack(msi).to(dev, torch.float32),
        reference=x.to(torch.float32),
        sensor=sensor,
        hsi_clean=hsi_clean.to(torch.float32),
        msi_clean=msi_clean.to(torch.float32),
        crop=(ch, cw),
    )


@dataclass(frozen=True)
class Preset:
    """A named simulation protocol (``protocols.md`` §7)."""

    name: str
    ratio: int
    srf: str | None
    psf_sigma: float
    psf_size: int
    phase: Fn.Phase
    crop: tuple[int, int] | None = None
    scale: float | str | None = None
    snr: float | None = None
    min_coverage: float = 0.95
    description: str = ""
    srf_note: str = ""

    def sensor_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`make_sensor` (without the SRF)."""
        return dict(
            ratio=self.ratio,
            psf_sigma=self.psf_sigma,
            psf_size=self.psf_size,
            phase=self.phase,
            snr_hsi=self.snr,
            snr_msi=self.snr,
            info={"preset": self.name},
        )

    def to_dict(self) -> dict[str, Any]:
        """Canonical dictionary (for run records)."""
        return dataclasses.asdict(self)


def _fwhm(r: int) -> float:
    return Fn.fwhm_to_sigma(r)


# Responses that hyperfuse does not ship (their licences or sources are the user's): the
# preset names the file and the user passes it with --srf.
_D700 = "the Nikon D700 31x3 matrix (nikon_d700_31x3_mhfnet_colnorm.npy, transposed to 3x31)"
_CAMSPEC = "the CamSpec Nikon D700 curves as a wavelength table (camspec_28cams_rgb_400-720nm.npz)"

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("cave-x32-mossfuse", 32, None, 2.0, 31, "mossfuse", scale=65535.0,
               description="CAVE 512x512x31 (user-supplied), MossFuse geometry", srf_note=_D700),
        Preset("cave-x8", 8, None, 2.0, 7, "mossfuse", scale=65535.0,
               description="CAVE 512x512x31 (user-supplied), x8", srf_note=_D700),
        Preset("chikusei-x6-wv2-35db", 6, "wv2-like", _fwhm(6), 12, "block_centred", scale=10000.0,
               snr=35.0, min_coverage=0.8, description="Chikusei 540x420 crop, Yokoya review set-up"),
        Preset("paviau-x8-ikonos4", 8, None, _fwhm(8), 24, "block_centred", crop=(608, 336),
               scale="max", description="Pavia University (user-supplied), 4-band IKONOS-like MSI",
               srf_note="the 4x103 ROSIS-to-IKONOS matrix (rosis103_to_4band_R_mhfnet.npy)"),
        Preset("jasper-s2-x4", 4, "sentinel-2a", _fwhm(4), 14, "block_centred", scale=5437.0,
               description="Jasper Ridge 100x100x198, Sentinel-2A (B10 dropped)"),
        Preset("jasper-s2-x8", 8, "sentinel-2a", _fwhm(8), 24, "block_centred", crop=(96, 96),
               scale=5437.0, description="Jasper Ridge cropped to 96x96"),
        Preset("samson-rgb-x4", 4, None, _fwhm(4), 14, "block_centred", crop=(92, 92),
               scale=1402.0, description="Samson 95x95x156 cropped to 92x92, Nikon D700 RGB",
               srf_note=_CAMSPEC),
        Preset("samson-rgb-x8", 8, None, _fwhm(8), 24, "block_centred", crop=(88, 88),
               scale=1402.0, description="Samson cropped to 88x88", srf_note=_CAMSPEC),
    ]
}
