"""Operator contracts: exact adjoints, protocol geometry, functional == Module."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from hyperfuse.errors import ShapeError
from hyperfuse.physics import functional as Fn
from hyperfuse.physics.operators import SpatialDegradation, SpectralResponse

BOUNDARIES = ["reflect", "circular", "replicate", "zeros"]


@settings(max_examples=60, deadline=None)
@given(
    ratio=st.integers(2, 32),
    h=st.integers(1, 3),
    w=st.integers(1, 3),
    psf_size=st.integers(1, 40),
    boundary=st.sampled_from(BOUNDARIES),
    bands=st.integers(1, 3),
    data=st.data(),
)
def test_spatial_adjointness(ratio, h, w, psf_size, boundary, bands, data):
    offset = (data.draw(st.integers(0, ratio - 1)), data.draw(st.integers(0, ratio - 1)))
    psf = torch.rand(psf_size, psf_size, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    D = SpatialDegradation(psf, ratio, offset, boundary)
    g = torch.Generator().manual_seed(ratio * 31 + psf_size)
    x = torch.randn(2, bands, h * ratio, w * ratio, dtype=torch.float64, generator=g)
    y = torch.randn(2, bands, h, w, dtype=torch.float64, generator=g)
    assert D.adjointness_error(x, y) < 1e-5


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("shape", [(7, 9), (1, 5), (13, 13)])
def test_blur_adjointness_odd_sizes(boundary, shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, *shape, dtype=torch.float64, generator=g)
    y = torch.randn(1, 2, *shape, dtype=torch.float64, generator=g)
    k = torch.rand(6, 5, dtype=torch.float64, generator=g)
    lhs = (Fn.blur(x, k, boundary) * y).sum()
    rhs = (x * Fn.blur_adjoint(y, k, boundary)).sum()
    assert abs(lhs - rhs) / abs(lhs) < 1e-10


def test_spectral_adjointness_and_decimate_adjoint():
    g = torch.Generator().manual_seed(0)
    S = SpectralResponse(torch.rand(3, 11, dtype=torch.float64, generator=g))
    x = torch.randn(2, 11, 5, 7, dtype=torch.float64, generator=g)
    y = torch.randn(2, 3, 5, 7, dtype=torch.float64, generator=g)
    assert S.adjointness_error(x, y) < 1e-12
    z = torch.randn(1, 2, 3, 4, dtype=torch.float64, generator=g)
    xx = torch.randn(1, 2, 9, 12, dtype=torch.float64, generator=g)
    lhs = (Fn.decimate(xx, 3, (2, 1)) * z).sum()
    rhs = (xx * Fn.decimate_adjoint(z, 3, (2, 1), (9, 12))).sum()
    assert abs(lhs - rhs) < 1e-12


def test_composed_adjoint():
    g = torch.Generator().manual_seed(3)
    D = SpatialDegradation(Fn.gaussian_psf(1.7, 14), 4, (2, 2))
    S = SpectralResponse(torch.rand(2, 5, dtype=torch.float64, generator=g))
    op = S * D
    x = torch.randn(1, 5, 12, 8, dtype=torch.float64, generator=g)
    y = torch.randn(1, 2, 3, 2, dtype=torch.float64, generator=g)
    assert op.adjointness_error(x, y) < 1e-12


def test_mossfuse_geometry_matches_reflect101_blur_then_slice():
    """K = 31, sigma = 2, o = 15, r = 32 equals a reflect-101 'same' blur then [15::32]."""
    rng = np.random.default_rng(0)
    x = rng.random((64, 96, 2))
    k = Fn.gaussian_psf(2.0, 31)
    ref = np.stack([ndimage.correlate(x[..., b], k, mode="mirror") for b in range(2)], -1)
    ref = ref[15::32, 15::32]
    t = torch.from_numpy(x).permute(2, 0, 1)[None]
    out = Fn.spatial_degrade(t, k, 32, (15, 15), "reflect")[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-12, rtol=0)


def test_direct_sum_definition_with_even_kernel_and_offset():
    """D(X)[i,j] = sum_uv k[u,v] X[r i + o + u - K//2, r j + o + v - K//2] (reflect-101)."""
    rng = np.random.default_rng(1)
    H, W, r, K, o = 12, 16, 4, 6, 2
    x = rng.random((H, W))
    k = rng.random((K, K))
    k /= k.sum()

    def refl(i, n):
        period = 2 * (n - 1)
        i = i % period
        return i if i < n else period - i

    expected = np.zeros((H // r, W // r))
    for i in range(H // r):
        for j in range(W // r):
            for u in range(K):
                for v in range(K):
                    expected[i, j] += k[u, v] * x[
                        refl(r * i + o + u - K // 2, H), refl(r * j + o + v - K // 2, W)
                    ]
    out = Fn.spatial_degrade(torch.from_numpy(x)[None, None], k, r, (o, o))[0, 0].numpy()
    np.testing.assert_allclose(out, expected, atol=1e-14)


@pytest.mark.parametrize("ratio", [3, 4, 5, 8])
def test_block_centred_commutes_with_dihedral_group(ratio):
    sigma = Fn.fwhm_to_sigma(ratio)
    K = Fn.default_psf_size(sigma, ratio)
    k = Fn.gaussian_psf(sigma, K)
    o = Fn.phase_offset("block_centred", ratio)
    g = torch.Generator().manual_seed(ratio)
    x = torch.rand(1, 2, 6 * ratio, 6 * ratio, dtype=torch.float64, generator=g)
    D = lambda t: Fn.spatial_degrade(t, k, ratio, (o, o), "reflect")  # noqa: E731
    for rot in range(4):
        for flip in (False, True):
            def T(t, rot=rot, flip=flip):
                t = torch.rot90(t, rot, dims=(-2, -1))
                return torch.flip(t, dims=(-1,)) if flip else t

            torch.testing.assert_close(D(T(x)), T(D(x)), atol=1e-12, rtol=0)


def test_mean_preserved_away_from_borders():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 64, 64, dtype=torch.float64, generator=g)
    x = Fn.blur(x, Fn.gaussian_psf(6.0, 37))  # smooth so that decimation does not alias
    k = Fn.gaussian_psf(Fn.fwhm_to_sigma(4), 14)
    y = Fn.spatial_degrade(x, k, 4, (2, 2))
    inner_hr = x[..., 16:48, 16:48].mean()
    inner_lr = y[..., 4:12, 4:12].mean()
    assert abs(inner_hr - inner_lr) < 2e-3 * inner_hr


def test_functional_equals_module_and_preserves_dtype():
    k = Fn.gaussian_psf(1.0, 5)
    D = SpatialDegradation(k, 2, (1, 1))
    for dtype in (torch.float32, torch.float64):
        x = torch.rand(1, 3, 8, 8, dtype=dtype)
        out = D(x)
        assert out.dtype == dtype
        torch.testing.assert_close(out, Fn.spatial_degrade(x, k, 2, (1, 1)))


def test_psf_size_rule_and_bad_parameters():
    assert [Fn.default_psf_size(Fn.fwhm_to_sigma(r), r) for r in (4, 6, 8)] == [14, 18, 24]
    assert round(Fn.fwhm_to_sigma(6), 3) == 2.548
    with pytest.raises(ShapeError):
        Fn.gaussian_psf(0.0, 5)
    with pytest.raises(ShapeError):
        Fn.phase_offset(9, 8)
    with pytest.raises(ShapeError):
        Fn.phase_offset("middle", 8)  # type: ignore[arg-type]


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("ratio,size,offset", [(2, 5, 1), (3, 4, 0), (4, 14, 2), (8, 24, 4), (5, 1, 2)])
def test_separable_fast_path_equals_convolution(boundary, ratio, size, offset):
    """Separable PSFs go through two matrix products; they must equal the strided convolution."""
    g = np.random.default_rng(ratio + size)
    k = np.outer(g.random(size), g.random(size))
    assert Fn.separable_factors(k) is not None
    x = torch.from_numpy(g.random((2, 3, 4 * ratio, 3 * ratio)))
    y = torch.from_numpy(g.random((2, 3, 4, 3)))
    fast = Fn.spatial_degrade(x, k, ratio, (offset, offset), boundary)
    wk = Fn._kernel(k, x)
    pads = Fn._same_pads(tuple(wk.shape[-2:]))
    xp = Fn._pad(x, pads, boundary)[..., offset:, offset:]
    slow = torch.nn.functional.conv2d(xp, wk, stride=ratio, groups=3)[..., :4, :3]
    torch.testing.assert_close(fast, slow, atol=1e-12, rtol=0)
    lhs = (fast * y).sum()
    rhs = (x * Fn.spatial_degrade_adjoint(y, k, ratio, (offset, offset), x.shape[-2:], boundary)).sum()
    assert abs(lhs - rhs) / abs(lhs) < 1e-12
