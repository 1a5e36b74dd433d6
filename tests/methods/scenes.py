"""Synthetic test scenes of ``classical.md`` §1 ("Test scenes"), exactly rank p.

Not a conftest: import it by path (``tests/methods/scenes.py``) from the tests that need it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hyperfuse.physics.sensor import FusionPhysics, make_sensor
from hyperfuse.types import SensorSpec


def endmembers(L: int, p: int, g: np.random.Generator) -> np.ndarray:
    """(L, p) smooth positive spectra: 0.05 + four Gaussian bumps, scaled by 1/(1.1 max)."""
    t = np.linspace(0.0, 1.0, L)
    E = np.full((L, p), 0.05)
    for j in range(p):
        a = g.uniform(0.1, 1.0, 4)
        c = g.uniform(0.0, 1.0, 4)
        w = g.uniform(0.05, 0.3, 4)
        E[:, j] += (a * np.exp(-((t[:, None] - c) ** 2) / (2 * w**2))).sum(axis=1)
    return E / (1.1 * E.max())


def abundances(p: int, H: int, W: int, corr: float, g: np.random.Generator) -> np.ndarray:
    """(p, H, W) softmax(3F) of circularly smoothed white noise F (joint unit std)."""
    noise = g.standard_normal((p, H, W))
    f2 = np.fft.fftfreq(H)[:, None] ** 2 + np.fft.fftfreq(W)[None, :] ** 2
    F = np.real(np.fft.ifft2(np.fft.fft2(noise) * np.exp(-2 * np.pi**2 * corr**2 * f2)))
    F /= F.std()
    Z = np.exp(3 * F - (3 * F).max(axis=0, keepdims=True))
    return Z / Z.sum(axis=0, keepdims=True)


def gaussian_srf(l: int, L: int, sigma: float = 0.08) -> np.ndarray:
    """(l, L) Gaussian rows centred at linspace(0.15, 0.85, l), each summing to 1."""
    t = np.linspace(0.0, 1.0, L)
    R = np.exp(-((t[None, :] - np.linspace(0.15, 0.85, l)[:, None]) ** 2) / (2 * sigma**2))
    return R / R.sum(axis=1, keepdims=True)


@dataclass
class Scene:
    X: torch.Tensor  # (1, L, H, W) float64 ground truth
    E: np.ndarray  # (L, p)
    A: np.ndarray  # (p, H, W)
    sensor: SensorSpec
    hsi: torch.Tensor  # (1, L, h, w) float64, noise-free
    msi: torch.Tensor  # (1, l, H, W) float64, noise-free

    def pair(self, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        return self.hsi.to(dtype), self.msi.to(dtype)


def make_scene(
    size: int = 128,
    L: int = 31,
    p: int = 4,
    l: int = 3,
    ratio: int = 4,
    *,
    corr: float = 6.0,
    seed: int = 0,
    snr: float | None = None,
) -> Scene:
    """The §1 scene: X = E A exactly, circular default PSF and offset, Gaussian SRF."""
    g = np.random.default_rng(seed)
    E = endmembers(L, p, g)
    A = abundances(p, size, size, corr, g)
    X = torch.from_numpy(np.einsum("lp,phw->lhw", E, A))[None]
    sensor = make_sensor(ratio, srf=gaussian_srf(l, L), boundary="circular")
    phys = FusionPhysics(sensor)
    hsi, msi = phys.spatial(X), phys.spectral(X)
    if snr is not None:
        for Y in (hsi, msi):
            s = np.sqrt(float((Y**2).mean()) / 10 ** (snr / 10))
            Y += torch.from_numpy(s * g.standard_normal(tuple(Y.shape)))
    return Scene(X=X, E=E, A=A, sensor=sensor, hsi=hsi, msi=msi)


def psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Band mean of 10 log10(max(ref_b)^2 / MSE_b) (§1), for (1, L, H, W) cubes."""
    x = x.to(torch.float64)[0]
    ref = ref.to(torch.float64)[0]
    mse = ((x - ref) ** 2).mean(dim=(1, 2))
    peak = ref.amax(dim=(1, 2))
    return float((10 * torch.log10(peak**2 / mse)).mean())
