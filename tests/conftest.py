"""Shared fixtures: seeded rng, the shared data folder, tiny synthetic scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def shared_data() -> Path:
    """The developers' real-data folder; skips the test when it is absent."""
    if not (SHARED_DATA / "MANIFEST.md").exists():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA.resolve()


def smooth_scene(
    height: int = 32, width: int = 32, bands: int = 12, n_endmembers: int = 3, seed: int = 0
) -> torch.Tensor:
    """A small (1, L, H, W) cube from smooth endmembers and smooth softmax abundances."""
    g = np.random.default_rng(seed)
    t = np.linspace(0, 1, bands)
    E = 0.05 + sum(
        g.uniform(0.1, 1, n_endmembers)[None] * np.exp(-((t[:, None] - g.uniform(0, 1, n_endmembers)) ** 2)
        / (2 * g.uniform(0.05, 0.3, n_endmembers) ** 2))
        for _ in range(4)
    )
    E = E / (1.1 * E.max())
    noise = g.standard_normal((n_endmembers, height, width))
    f = np.fft.fftfreq(height)[:, None] ** 2 + np.fft.fftfreq(width)[None] ** 2
    F = np.real(np.fft.ifft2(np.fft.fft2(noise) * np.exp(-2 * np.pi**2 * 4.0**2 * f)))
    F /= F.std()
    A = np.exp(3 * F) / np.exp(3 * F).sum(0, keepdims=True)
    X = np.einsum("lp,phw->lhw", E, A)
    return torch.from_numpy(X)[None].float()


@pytest.fixture
def tiny_scene() -> torch.Tensor:
    return smooth_scene()
