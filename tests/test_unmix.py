"""VCA and subspace-size estimators (classical.md §2.1-2.2)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperfuse.errors import InputError, ShapeError
from hyperfuse.unmix import hysime, vca, vd_hfc

_spec = importlib.util.spec_from_file_location(
    "_hyperfuse_test_scenes", Path(__file__).parent / "methods" / "scenes.py"
)
scenes = importlib.util.module_from_spec(_spec)
sys.modules.setdefault(_spec.name, scenes)
_spec.loader.exec_module(scenes)


def pure_pixel_scene(seed: int, L: int = 31, p: int = 6, size: int = 64):
    g = np.random.default_rng(seed)
    E = scenes.endmembers(L, p, g)
    A = scenes.abundances(p, size, size, 6.0, g).reshape(p, -1)
    pure = g.choice(size * size, p, replace=False)
    A[:, pure] = np.eye(p)
    return E @ A, pure


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("draw", ["normal", "uniform"])
def test_vca_finds_pure_pixels(seed, draw):
    Y, pure = pure_pixel_scene(seed)
    idx = vca(Y, 6, rng=seed, draw=draw)
    assert sorted(idx.tolist()) == sorted(pure.tolist())


def test_vca_orthogonal_branch_finds_pure_pixels():
    Y, pure = pure_pixel_scene(0)
    assert sorted(vca(Y, 6, rng=0, snr=0.0).tolist()) == sorted(pure.tolist())


def test_vca_deterministic_and_accepts_rng_types():
    Y, _ = pure_pixel_scene(1)
    Y = Y + 0.01 * np.random.default_rng(5).standard_normal(Y.shape)
    a = vca(Y, 8, rng=3)
    assert np.array_equal(a, vca(Y, 8, rng=3))
    assert np.array_equal(a, vca(torch.from_numpy(Y), 8, rng=np.random.default_rng(3)))
    assert vca(Y, 8, rng=torch.Generator().manual_seed(0)).shape == (8,)


def test_vca_errors():
    with pytest.raises(InputError):
        vca(np.ones((4, 10)), 5)
    with pytest.raises(ShapeError):
        vca(np.ones(10), 1)
    with pytest.raises(InputError, match="draw"):
        vca(np.ones((4, 10)), 2, draw="gaussian")  # type: ignore[arg-type]


def _noisy(p: int, snr: float, L: int = 50, size: int = 128):
    g = np.random.default_rng(p)
    E = scenes.endmembers(L, p, g)
    A = scenes.abundances(p, size, size, 6.0, g).reshape(p, -1)
    X = E @ A
    s = np.sqrt((X**2).mean() / 10 ** (snr / 10))
    return X + s * g.standard_normal(X.shape)


@pytest.mark.parametrize(
    "p,snr",
    [(4, 60), pytest.param(4, 40, marks=pytest.mark.slow), pytest.param(8, 40, marks=pytest.mark.slow),
     pytest.param(8, 60, marks=pytest.mark.slow)],
)
def test_subspace_size(p, snr):
    Y = _noisy(p, snr)
    assert vd_hfc(Y, 0.05) == p
    k, basis = hysime(Y)
    assert k in (p - 1, p)
    assert basis.shape == (50, k)
    np.testing.assert_allclose(basis.T @ basis, np.eye(k), atol=1e-10)


def test_vd_noise_free_rank():
    Y, _ = pure_pixel_scene(2)
    assert vd_hfc(Y) == 6


def test_vca_reference_snr_rule_takes_the_reference_codes_branch():
    """The reference code's test (15 + 10 ln p + 8 dB) sends 40 dB data with p = 12 to the
    orthogonal branch (51 dB threshold) where the paper's (25.8 dB) keeps the projective one;
    noise-free data go to the projective branch under both rules."""
    Y = _noisy(12, 40.0)
    ref = vca(Y, 12, rng=4, snr_rule="reference")
    assert np.array_equal(ref, vca(Y, 12, rng=4, snr=-np.inf))
    assert np.array_equal(vca(Y, 12, rng=4), vca(Y, 12, rng=4, snr=np.inf))
    assert not np.array_equal(ref, vca(Y, 12, rng=4))
    Y0, _ = pure_pixel_scene(2)
    assert np.array_equal(vca(Y0, 6, rng=1, snr_rule="reference"), vca(Y0, 6, rng=1, snr=np.inf))
    with pytest.raises(InputError, match="snr_rule"):
        vca(Y0, 2, snr_rule="matlab")  # type: ignore[arg-type]


@pytest.mark.parametrize("snr", [-np.inf, np.inf])
def test_vca_projected_spectra(snr):
    """Noise-free rank-p data: the projected spectra are the selected pixels themselves. Noisy
    data: they are the pixels' projections, m + U Uᵀ(y − m) (orthogonal branch) or U Uᵀ y
    (projective), with the noise outside the subspace removed."""
    Y0, _ = pure_pixel_scene(0)
    idx, E = vca(Y0, 6, rng=0, snr=snr, return_spectra=True)
    np.testing.assert_allclose(E, Y0[:, idx], atol=1e-9)
    Y = _noisy(6, 30.0)
    idx, E = vca(Y, 6, rng=0, snr=snr, return_spectra=True)
    m = Y.mean(axis=1, keepdims=True)
    if snr < 0:
        w, V = np.linalg.eigh(np.cov(Y, bias=True))
        U = V[:, ::-1][:, :5]
        expected = m + U @ U.T @ (Y[:, idx] - m)
    else:
        w, V = np.linalg.eigh(Y @ Y.T / Y.shape[1])
        U = V[:, ::-1][:, :6]
        expected = U @ U.T @ Y[:, idx]
    np.testing.assert_allclose(E, expected, atol=1e-9)
    assert np.abs(E - Y[:, idx]).max() > 1e-3  # the noise outside the subspace is gone
