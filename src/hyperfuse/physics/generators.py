"""Random sensor samplers for training on synthetic data (``conventions.md`` §2, ``scalmu.md`` §5).

Each sampler takes an explicit ``rng`` (int, NumPy or torch generator) and returns plain
arrays or a :class:`~hyperfuse.types.SensorSpec`; nothing touches global seeds.

Examples
--------
>>> import numpy as np
>>> gen = SensorGenerator(ratios=(4,), real_srfs=())
>>> s = gen(np.random.default_rng(0), np.linspace(400, 1000, 40))
>>> s.ratio, s.srf.shape[1], bool(np.allclose(s.srf.sum(1), 1))
(4, 40, True)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._random import RNGLike, as_numpy_rng
from ..types import SensorSpec
from .sensor import make_sensor

__all__ = [
    "random_wavelengths",
    "random_gaussian_srf",
    "random_real_srf",
    "random_psf_sigma",
    "random_snr",
    "SensorGenerator",
]

_PHASES = ("block_centred", "mossfuse", "corner")


def random_wavelengths(
    rng: RNGLike, *, bands: tuple[int, int] = (31, 224), span: tuple[float, float] = (400.0, 2500.0)
) -> np.ndarray:
    """A random evenly spaced band grid: L ∈ ``bands`` over a random range inside ``span``.

    The range is at least 300 nm wide (and at least 2 nm per band).

    Examples
    --------
    >>> wl = random_wavelengths(0)
    >>> bool(31 <= wl.size <= 224 and wl[0] >= 400 and wl[-1] <= 2500)
    True
    """
    g = as_numpy_rng(rng)
    L = int(g.integers(bands[0], bands[1] + 1))
    lo, hi = span
    width = float(g.uniform(max(300.0, 2.0 * L), hi - lo))
    start = float(g.uniform(lo, hi - width))
    return np.linspace(start, start + width, L)


def random_gaussian_srf(rng: RNGLike, wavelengths: np.ndarray, *, n_bands: tuple[int, int] = (3, 10)) -> np.ndarray:
    """Random family of 3–10 Gaussian or flat-top band-passes, rows summing to 1.

    Returns
    -------
    ndarray of shape (l, L)
    """
    g = as_numpy_rng(rng)
    wl = np.asarray(wavelengths, dtype=np.float64)
    lo, hi = float(wl.min()), float(wl.max())
    l = int(g.integers(n_bands[0], n_bands[1] + 1))
    centres = np.sort(g.uniform(lo, hi, size=l))
    spacing = (hi - lo) / l
    widths = spacing * g.uniform(0.4, 1.6, size=l)
    flat = g.random() < 0.5
    rows = []
    for c, w in zip(centres, widths, strict=True):
        d = np.abs(wl - c) / (w / 2.0)
        row = np.exp(-(d**8) * np.log(2.0)) if flat else np.exp(-(d**2) * np.log(2.0))
        if row.sum() <= 1e-8:  # narrower than one band: nearest band
            row = np.zeros_like(wl)
            row[int(np.argmin(np.abs(wl - c)))] = 1.0
        rows.append(row / row.sum())
    return np.stack(rows)


def random_real_srf(rng: RNGLike, wavelengths: np.ndarray, names: Sequence[str]) -> np.ndarray | None:
    """The SRF of a randomly chosen real sensor (bands with coverage ≥ 0.9), or ``None``.

    ``None`` when the chosen sensor has no band over the grid or its tables are missing.
    """
    from .srf import get_srf  # local import: optional dependencies

    g = as_numpy_rng(rng)
    if not names:
        return None
    name = str(names[int(g.integers(len(names)))])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = get_srf(name, wavelengths, min_coverage=0.9)
    except Exception:  # noqa: BLE001 - sensor out of range or package missing
        return None
    R = np.asarray(res.matrix, dtype=np.float64)
    keep = R.sum(axis=1) > 0
    if keep.sum() < 1:
        return None
    R = R[keep]
    return R / R.sum(axis=1, keepdims=True)


def random_psf_sigma(rng: RNGLike, ratio: int, *, rel: tuple[float, float] = (0.35, 0.65)) -> float:
    """Gaussian PSF σ uniform in [0.35 r, 0.65 r]."""
    g = as_numpy_rng(rng)
    return float(g.uniform(rel[0], rel[1]) * ratio)


def random_snr(rng: RNGLike, *, snr: tuple[float, float] = (25.0, 60.0), p_clean: float = 0.15) -> float | None:
    """Per-image SNR in dB (uniform in ``snr``), or ``None`` (noise-free) with probability ``p_clean``."""
    g = as_numpy_rng(rng)
    if g.random() < p_clean:
        return None
    return float(g.uniform(*snr))


@dataclass(frozen=True)
class SensorGenerator:
    """``callable(rng, wavelengths) -> SensorSpec``: a random sensor for a band grid.

    Parameters
    ----------
    ratios : tuple of int
        Ratios to draw from, with ``ratio_weights``.
    ratio_weights : tuple of float, optional
        Probabilities (default uniform).
    real_srfs : tuple of str
        Names for :func:`~hyperfuse.physics.srf.get_srf`; used with probability ``p_real``.
    p_real : float
        Probability of trying a real SRF first.
    snr : (float, float)
        SNR range in dB; ``p_clean`` is the probability of a noise-free image.
    """

    ratios: tuple[int, ...] = (4, 8, 16, 32)
    ratio_weights: tuple[float, ...] | None = None
    real_srfs: tuple[str, ...] = ("sentinel-2a", "landsat-8", "nikon-5100", "cie1931")
    p_real: float = 0.5
    snr: tuple[float, float] = (25.0, 60.0)
    p_clean: float = 0.15
    info: dict[str, Any] = field(default_factory=dict)

    def __call__(self, rng: RNGLike, wavelengths: np.ndarray) -> SensorSpec:
        g = as_numpy_rng(rng)
        w = None if self.ratio_weights is None else np.asarray(self.ratio_weights) / np.sum(self.ratio_weights)
        r = int(g.choice(np.asarray(self.ratios), p=w))
        R = None
        kind = "gaussian"
        if self.real_srfs and g.random() < self.p_real:
            R = random_real_srf(g, wavelengths, self.real_srfs)
            kind = "real"
        if R is None:
            R = random_gaussian_srf(g, wavelengths)
            kind = "gaussian"
        sigma = random_psf_sigma(g, r)
        phase = _PHASES[int(g.integers(len(_PHASES)))]
        return make_sensor(
            r,
            srf=R,
            psf_sigma=sigma,
            phase=phase,  # type: ignore[arg-type]
            wavelengths=np.asarray(wavelengths, dtype=np.float64),
            snr_hsi=random_snr(g, snr=self.snr, p_clean=self.p_clean),
            snr_msi=random_snr(g, snr=self.snr, p_clean=self.p_clean),
            info={"srf_kind": kind},
        )
