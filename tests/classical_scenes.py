"""Shared by the blind-estimation and HySure tests: the ``classical.md`` §1 test scene,
its Gaussian SRF, and a single-thread fixture (import it into a test module to use it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are small: run single-threaded (threads only add contention on shared CI)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# --------------------------------------------------------------------------- §1 test scenes


def scene(size: int, L: int, p: int, corr: float, seed: int = 0) -> torch.Tensor:
    """The §1 "Test scenes" cube X = E A, (1, L, size, size) float64, exactly rank p."""
    g = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, L)
    E = np.full((L, p), 0.05)
    for j in range(p):
        a, c, w = g.uniform(0.1, 1.0, 4), g.uniform(0.0, 1.0, 4), g.uniform(0.05, 0.3, 4)
        E[:, j] += (a * np.exp(-((t[:, None] - c) ** 2) / (2 * w**2))).sum(axis=1)
    E /= 1.1 * E.max()
    noise = g.standard_normal((p, size, size))
    f2 = np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None, :] ** 2
    Fm = np.real(np.fft.ifft2(np.fft.fft2(noise) * np.exp(-2 * np.pi**2 * corr**2 * f2)))
    Fm /= Fm.std()
    A = np.exp(3 * Fm - (3 * Fm).max(axis=0, keepdims=True))
    A /= A.sum(axis=0, keepdims=True)
    return torch.from_numpy(np.einsum("lp,phw->lhw", E, A))[None]


def gaussian_srf(l: int, L: int) -> np.ndarray:
    """§1 SRF: Gaussian rows (σ = 0.08 in t) centred at linspace(0.15, 0.85, l), sum 1."""
    t = np.linspace(0.0, 1.0, L)
    R = np.exp(-((t[None, :] - np.linspace(0.15, 0.85, l)[:, None]) ** 2) / (2 * 0.08**2))
    return R / R.sum(axis=1, keepdims=True)
