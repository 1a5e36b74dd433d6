"""Additive Gaussian noise defined by its SNR (``protocols.md`` §4)."""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["noise_sigma", "add_gaussian_noise"]

SNRRef = Literal["band_power", "cube_power", "band_variance"]


def noise_sigma(z_hwc: np.ndarray, snr_db: float, snr_ref: SNRRef = "band_power") -> np.ndarray:
    """Per-band noise standard deviation for a clean (H, W, C) image.

    sigma_b = sqrt(mean_p z_b(p)^2) * 10^(-SNR/20) for ``"band_power"``; ``"cube_power"`` uses
    one mean square over all bands and ``"band_variance"`` the band variance.

    Examples
    --------
    >>> noise_sigma(np.ones((2, 2, 1)), 20.0)
    array([0.1])
    """
    z = np.asarray(z_hwc, dtype=np.float64).reshape(-1, z_hwc.shape[-1])
    if snr_ref == "band_power":
        power = np.mean(z**2, axis=0)
    elif snr_ref == "cube_power":
        power = np.full(z.shape[1], np.mean(z**2))
    elif snr_ref == "band_variance":
        power = np.var(z, axis=0)
    else:
        raise ValueError(f"unknown snr_ref {snr_ref!r}")
    return np.sqrt(power) * 10.0 ** (-float(snr_db) / 20.0)


def add_gaussian_noise(
    z_hwc: np.ndarray, snr_db: float | None, rng: np.random.Generator, snr_ref: SNRRef = "band_power"
) -> np.ndarray:
    """Return z + n with i.i.d. Gaussian n at the requested SNR; ``None`` returns z unchanged.

    Standard normals are drawn with shape (H, W, C) in C order, so a seed gives the
    same noise on every machine.
    """
    if snr_db is None:
        return z_hwc
    sigma = noise_sigma(z_hwc, snr_db, snr_ref)
    return z_hwc + rng.standard_normal(z_hwc.shape) * sigma
