"""Relative SRF by NNLS with offset (classical.md §2.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperfuse.errors import ShapeError
from hyperfuse.physics import functional as Fn
from hyperfuse.physics.estimate import estimate_srf_nnls


def _observe(X, ratio, l):
    """(LR-HSI, MSI, R) of X (B, L, H, W): Gaussian SRF rows, default PSF, circular."""
    t = np.linspace(0, 1, X.shape[1])
    R = np.exp(-((t[None] - np.linspace(0.2, 0.8, l)[:, None]) ** 2) / (2 * 0.08**2))
    R = R / R.sum(1, keepdims=True)
    sigma = Fn.fwhm_to_sigma(ratio)
    psf = Fn.gaussian_psf(sigma, Fn.default_psf_size(sigma, ratio))
    hsi = Fn.spatial_degrade(X, psf, ratio, (ratio // 2, ratio // 2), "circular")
    return hsi, Fn.apply_srf(X, R), R


def _pair(ratio=4, L=20, l=4, size=32, offset=None, seed=0, batch=1):
    g = np.random.default_rng(seed)
    X = torch.from_numpy(g.uniform(0.05, 1.0, (batch, L, size, size)))
    hsi, msi, R = _observe(X, ratio, l)
    if offset is not None:
        msi = msi + torch.as_tensor(offset).reshape(1, -1, 1, 1)
    return hsi, msi, R


@pytest.mark.parametrize("ratio", [2, 4, 8])
def test_exact_recovery_with_offset(ratio):
    b = np.array([0.05, -0.02, 0.0, 0.1])
    hsi, msi, R = _pair(ratio, size=8 * ratio, offset=b)
    est = estimate_srf_nnls(hsi, msi, ratio)
    np.testing.assert_allclose(est.srf, R, atol=1e-8)
    np.testing.assert_allclose(est.offset, b, atol=1e-9)
    assert est.error.max() < 1e-8


def test_unbatched_float32_and_batch_pooling():
    hsi, msi, R = _pair(batch=2)
    est = estimate_srf_nnls(hsi.float()[0], msi.float()[0], 4)
    np.testing.assert_allclose(est.srf, R, atol=2e-4)
    est2 = estimate_srf_nnls(hsi, msi, 4)
    np.testing.assert_allclose(est2.srf, R, atol=1e-8)


def test_uncovered_band_has_large_error():
    hsi, msi, _ = _pair(size=64)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    msi[:, 1] = 1.0 + 0.9 * torch.cos(2 * torch.pi * yy / 32) * torch.cos(2 * torch.pi * xx / 64)
    est = estimate_srf_nnls(hsi, msi, 4)
    assert est.error[1] > 0.1 and np.delete(est.error, 1).max() < 1e-8
    assert (est.srf >= 0).all()


def test_shape_mismatch():
    hsi, msi, _ = _pair()
    with pytest.raises(ShapeError):
        estimate_srf_nnls(hsi, msi, 2)


def test_underdetermined_system_does_not_fail():
    """Fewer LR pixels than HS bands (Samson x8: 121 pixels, 156 bands) must still give an estimate."""
    import numpy as np
    import torch

    from hyperfuse.physics.estimate import estimate_srf_nnls
    from hyperfuse.physics.sensor import make_sensor, simulate

    g = np.random.default_rng(0)
    X = torch.from_numpy(g.random((1, 156, 88, 88)))
    R = g.random((7, 156)) * (g.random((7, 156)) > 0.7)
    R /= R.sum(1, keepdims=True)
    pair = simulate(X, make_sensor(8, srf=R, snr_hsi=35.0, snr_msi=35.0), rng=0)
    est = estimate_srf_nnls(pair.hsi, pair.msi, 8)
    assert est.srf.shape == (7, 156) and np.all(est.srf >= 0) and np.all(np.isfinite(est.error))


def _mixture_pair(seed=0, ratio=4, L=20, l=4, p=4, size=32):
    """Noise-free X = E A with abundances summing to one (the offset is then confounded)."""
    g = np.random.default_rng(seed)
    E = g.uniform(0.05, 0.9, (L, p))
    F = g.normal(size=(p, size, size))
    A = np.exp(3 * F) / np.exp(3 * F).sum(0, keepdims=True)
    X = torch.from_numpy(np.einsum("lp,phw->lhw", E, A)[None])
    return (*_observe(X, ratio, l), X[0].reshape(L, -1).numpy())


def test_auto_offset_is_dropped_when_abundances_sum_to_one():
    hsi, msi, R, X = _mixture_pair()
    auto = estimate_srf_nnls(hsi, msi, 4)
    free = estimate_srf_nnls(hsi, msi, 4, fit_offset=True)
    assert auto.error.max() < 1e-8 and free.error.max() < 1e-8  # both models fit exactly
    np.testing.assert_array_equal(auto.offset, 0.0)
    rel = lambda est: np.linalg.norm((est.srf - R) @ X) / np.linalg.norm(R @ X)  # noqa: E731
    assert rel(auto) < 1e-6
    # The free offset trades the pixel-sum direction of R for b (the confounding "auto" avoids).
    assert np.abs(free.offset).max() > 1e-3 and rel(free) > 1e-2


def test_fit_offset_false_and_invalid():
    b = np.array([0.05, -0.02, 0.0, 0.1])
    hsi, msi, R = _pair(offset=b)
    none = estimate_srf_nnls(hsi, msi, 4, fit_offset=False)
    np.testing.assert_array_equal(none.offset, 0.0)
    assert none.error[[0, 1, 3]].min() > 1e-4 and none.error[2] < 1e-8
    with pytest.raises(ValueError, match="fit_offset"):
        estimate_srf_nnls(hsi, msi, 4, fit_offset="yes")
