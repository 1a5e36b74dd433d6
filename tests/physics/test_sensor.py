"""Sensor construction, Wald simulation and noise (protocols.md §1-4, §9)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperfuse.errors import ShapeError, SRFError
from hyperfuse.physics import functional as Fn
from hyperfuse.physics.noise import noise_sigma
from hyperfuse.physics.sensor import PRESETS, make_sensor, simulate


def _srf(l, L):
    R = np.random.default_rng(0).random((l, L))
    return R / R.sum(1, keepdims=True)


def test_defaults_follow_protocol():
    s = make_sensor(4)
    assert s.psf.shape == (14, 14) and s.offset == (2, 2)
    assert abs(s.info["psf_sigma"] - 1.699) < 1e-3
    s = make_sensor(5, psf_sigma=1.0, psf_size=7, phase="corner")
    assert s.psf.shape == (7, 7) and s.offset == (0, 0)


def test_simulate_matches_formula_with_explicit_psf_and_phase():
    rng = np.random.default_rng(0)
    X = rng.random((1, 6, 24, 20))
    spec = make_sensor(4, srf=_srf(2, 6), psf_sigma=1.3, psf_size=9, phase=1)
    pair = simulate(torch.from_numpy(X), spec, rng=0)
    k = Fn.gaussian_psf(1.3, 9)
    t = np.arange(9) - 4.0
    g = np.exp(-(t**2) / (2 * 1.3**2))
    np.testing.assert_allclose(k, np.outer(g, g) / np.outer(g, g).sum(), atol=1e-15)
    from scipy import ndimage

    blurred = np.stack([ndimage.correlate(X[0, b], k, mode="mirror") for b in range(6)])
    np.testing.assert_allclose(pair.hsi[0].numpy(), blurred[:, 1::4, 1::4], atol=1e-6)
    np.testing.assert_allclose(
        pair.msi[0].numpy(), np.einsum("ml,lhw->mhw", spec.srf, X[0]), atol=1e-6
    )
    assert pair.hsi.dtype == torch.float32


def test_crop_policy_and_strict():
    spec = make_sensor(4, srf=_srf(3, 5))
    pair = simulate(torch.rand(1, 5, 18, 17), spec)
    assert pair.crop == (2, 1) and pair.msi.shape[-2:] == (16, 16)
    with pytest.raises(ShapeError):
        simulate(torch.rand(1, 5, 18, 17), spec, shape_policy="strict")


def test_srf_mismatch_and_missing():
    with pytest.raises(SRFError):
        simulate(torch.rand(1, 5, 16, 16), make_sensor(4, srf=_srf(3, 6)))
    with pytest.raises(SRFError):
        simulate(torch.rand(1, 5, 16, 16), make_sensor(4))


def test_noise_snr_seed_and_none():
    X = torch.rand(1, 2, 512, 512, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    spec = make_sensor(1, srf=np.eye(2), psf=np.ones((1, 1)), snr_hsi=30.0, snr_msi=25.0)
    a = simulate(X, spec, rng=7)
    b = simulate(X, spec, rng=7)
    assert torch.equal(a.hsi, b.hsi) and torch.equal(a.msi, b.msi)
    for noisy, clean, snr in ((a.hsi, a.hsi_clean, 30.0), (a.msi, a.msi_clean, 25.0)):
        n = (noisy.double() - clean.double()).numpy()[0]
        c = clean.double().numpy()[0]
        emp = 10 * np.log10((c**2).mean(axis=(1, 2)) / (n**2).mean(axis=(1, 2)))
        assert np.all(np.abs(emp - snr) < 0.05), emp
    c = simulate(X, spec, rng=8)
    assert not torch.equal(a.hsi, c.hsi)
    clean = simulate(X, make_sensor(1, srf=np.eye(2), psf=np.ones((1, 1))), rng=7)
    assert torch.equal(clean.hsi, clean.hsi_clean) and torch.equal(clean.msi, clean.msi_clean)


def test_noise_draw_order_is_hsi_first_in_hwc_c_order():
    X = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    spec = make_sensor(2, srf=_srf(2, 3), snr_hsi=20.0, snr_msi=20.0)
    pair = simulate(X, spec, rng=123)
    gen = np.random.Generator(np.random.PCG64(123))
    zh = pair.hsi_clean[0].double().permute(1, 2, 0).numpy()
    nh = gen.standard_normal(zh.shape) * noise_sigma(zh, 20.0)
    np.testing.assert_allclose(pair.hsi[0].permute(1, 2, 0).numpy(), zh + nh, atol=1e-6)


def test_snr_reference_options():
    z = np.random.default_rng(0).random((4, 4, 3)) + 1.0
    assert noise_sigma(z, 20, "cube_power").std() == 0
    assert np.all(noise_sigma(z, 20, "band_variance") < noise_sigma(z, 20, "band_power"))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_consistent(name):
    p = PRESETS[name]
    s = make_sensor(**p.sensor_kwargs())
    assert s.psf.shape == (p.psf_size, p.psf_size)
    assert 0 <= s.offset[0] < p.ratio
