"""Interpolators of ``classical.md`` §2.5."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperfuse.errors import ShapeError
from hyperfuse.physics.interpolate import (
    fir_taps,
    keys_kernel,
    lr_pixel_centre,
    up_bicubic,
    up_bilinear,
    up_fir,
)


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).uniform(0, 1, shape))


@pytest.mark.parametrize("r", [2, 3, 4, 5])
def test_bilinear_matches_torch_align_corners_false(r: int) -> None:
    x = _rand(2, 3, 5, 7)
    ref = F.interpolate(x, scale_factor=r, mode="bilinear", align_corners=False)
    assert torch.allclose(up_bilinear(x, r), ref, atol=1e-12)


def _bicubic_reference(x: np.ndarray, r: int, c: float) -> np.ndarray:
    """Direct 1-D sum with explicit half-sample symmetric padding, applied separably."""

    def one_axis(a: np.ndarray) -> np.ndarray:  # interpolate the last axis
        n = a.shape[-1]
        pad = 4
        ap = np.pad(a, [(0, 0)] * (a.ndim - 1) + [(pad, pad)], mode="symmetric")
        out = np.zeros(a.shape[:-1] + (n * r,))
        for t in range(n * r):
            s = (t - c) / r
            for i in range(int(np.floor(s)) - 2, int(np.floor(s)) + 4):
                out[..., t] += keys_kernel(np.array(s - i))[()] * ap[..., i + pad]
        return out

    y = one_axis(x)
    return np.swapaxes(one_axis(np.swapaxes(y, -1, -2)), -1, -2)


@pytest.mark.parametrize(("r", "c"), [(2, 0.5), (3, 1.0), (4, 1.5), (4, 2.0)])
def test_bicubic_matches_direct_sum(r: int, c: float) -> None:
    x = _rand(1, 2, 5, 6, seed=1)
    ref = _bicubic_reference(x.numpy(), r, c)
    out = up_bicubic(x, r, offset=c)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)


def test_bicubic_reproduces_constants_and_samples() -> None:
    x = _rand(1, 1, 6, 5, seed=2)
    assert torch.allclose(up_bicubic(torch.full((1, 1, 4, 3), 0.7), 4), torch.tensor(0.7, dtype=torch.float32))
    # Odd ratio: the default alignment puts LR samples on HR pixels (r-1)/2 + r*i.
    y = up_bicubic(x, 3)
    assert torch.allclose(y[..., 1::3, 1::3], x, atol=1e-12)


def test_bicubic_reproduces_quadratics_away_from_edges() -> None:
    t = torch.arange(12, dtype=torch.float64)
    q = 0.3 * t**2 - t + 2
    x = q[None, None, None, :].expand(1, 1, 3, 12)
    y = up_bicubic(x, 4)[0, 0, 0]
    s = (torch.arange(48, dtype=torch.float64) - 1.5) / 4
    inner = slice(12, 36)
    assert torch.allclose(y[inner], (0.3 * s**2 - s + 2)[inner], atol=1e-12)


def test_bicubic_boundary_modes() -> None:
    x = _rand(1, 1, 8, 8, seed=3)
    sym = up_bicubic(x, 2, boundary="symmetric")
    refl = up_bicubic(x, 2, boundary="reflect")
    assert not torch.allclose(sym, refl)
    assert torch.allclose(sym[..., 3:-3, 3:-3], refl[..., 3:-3, 3:-3])
    circ = up_bicubic(x, 2, boundary="circular")
    shifted = up_bicubic(torch.roll(x, 1, dims=-1), 2, boundary="circular")
    assert torch.allclose(torch.roll(circ, 2, dims=-1), shifted, atol=1e-12)
    with pytest.raises(ShapeError):
        up_bicubic(x, 2, boundary="mirror")  # type: ignore[arg-type]


def test_fir_taps_interpolating() -> None:
    h = fir_taps(4)
    assert h.shape == (45,)
    assert h[22] == 1.0
    assert np.all(h[22 + 4 :: 4] == 0) and np.all(h[22 - 4 :: -4] == 0)
    np.testing.assert_allclose(h, h[::-1])
    with pytest.raises(ShapeError):
        fir_taps(4, 44)


@pytest.mark.parametrize("r", [2, 3, 4, 8])
def test_fir_keeps_samples_and_constants(r: int) -> None:
    x = _rand(1, 2, 6, 5, seed=4)
    o = r // 2
    y = up_fir(x, r, offset=o)
    assert torch.equal(y[..., o::r, o::r], x)
    ones = up_fir(torch.ones(1, 1, 3, 4, dtype=torch.float64), r)
    assert torch.allclose(ones, torch.ones((), dtype=torch.float64), atol=1e-14)


def test_fir_is_circular_and_shift_equivariant() -> None:
    x = _rand(1, 1, 6, 6, seed=5)
    y = up_fir(x, 4)
    y1 = up_fir(torch.roll(x, (1, 2), dims=(-2, -1)), 4)
    assert torch.allclose(torch.roll(y, (4, 8), dims=(-2, -1)), y1, atol=1e-12)


def test_fir_reconstructs_band_limited_signal() -> None:
    r, n = 4, 32
    c = (r - 1) / 2
    t_lr = np.arange(n) * r + c
    t_hr = np.arange(n * r)

    def f(t: np.ndarray) -> np.ndarray:
        return np.cos(2 * np.pi * 3 * t / (n * r)) + 0.5 * np.sin(2 * np.pi * 5 * t / (n * r))

    x = torch.from_numpy(np.outer(f(t_lr), np.ones(3)))[None, None]
    y = up_fir(x, r, offset=(c, 0.0))
    err = (y[0, 0, :, 0].numpy() - f(t_hr)).__abs__().max()
    assert err < 1e-2


def test_fractional_offset_matches_shifted_integer_grid() -> None:
    # Offset 1.5 at r=4 evaluates the same windowed sinc at half-pixel distances: a
    # constant stays constant and a slow cosine is still reconstructed.
    r, n = 4, 32
    t_hr = np.arange(n * r)
    f = lambda t: np.cos(2 * np.pi * 2 * t / (n * r))  # noqa: E731
    x = torch.from_numpy(f(np.arange(n) * r + 1.5))[None, None, None, :].expand(1, 1, 2, n)
    y = up_fir(x, r, offset=1.5)[0, 0, 0].numpy()
    assert np.abs(y - f(t_hr)).max() < 1e-2


def test_lr_pixel_centre() -> None:
    assert lr_pixel_centre((14, 14), (2, 2)) == (1.5, 1.5)
    assert lr_pixel_centre((13, 15), (1, 2)) == (1.0, 2.0)


@pytest.mark.parametrize("fn", [up_bilinear, up_bicubic, up_fir])
def test_shapes_dtype_device_and_errors(fn) -> None:  # type: ignore[no-untyped-def]
    x = torch.rand(2, 3, 5, 7)
    y = fn(x, 3)
    assert y.shape == (2, 3, 15, 21) and y.dtype == torch.float32 and y.device == x.device
    assert fn(torch.rand(5, 7), 2).shape == (10, 14)
    assert fn(torch.rand(1, 1, 1, 1), 4).shape == (1, 1, 4, 4)
    with pytest.raises(ShapeError):
        fn(x, 2.5)
    with pytest.raises(ShapeError):
        fn(x, 0)


@settings(max_examples=15, deadline=None)
@given(
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    r=st.integers(1, 5),
    a=st.floats(-2, 2),
    seed=st.integers(0, 100),
)
def test_interpolators_are_linear_and_preserve_constants(h: int, w: int, r: int, a: float, seed: int) -> None:
    x = _rand(1, 1, h, w, seed=seed)
    z = _rand(1, 1, h, w, seed=seed + 1)
    for fn in (up_bilinear, up_bicubic, up_fir):
        assert torch.allclose(fn(a * x + z, r), a * fn(x, r) + fn(z, r), atol=1e-10)
        c = fn(torch.full((1, 1, h, w), 0.3, dtype=torch.float64), r)
        assert torch.allclose(c, torch.tensor(0.3, dtype=torch.float64), atol=1e-12)
