"""Full-reference metrics against the test vectors of metrics.md §4 (V1-V4, V6).

Reference numbers come from metrics.md §4 ("all values computed in float64 and
checked twice"); the SSIM columns there agree with scikit-image 0.26 to 1e-12.
Every number is checked to 1e-6 relative unless stated.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hyperfuse.errors import InputError, ShapeError
from hyperfuse.metrics.functional import (
    cc,
    ergas,
    hypercomplex_product,
    mae,
    psnr,
    q2n,
    rmse,
    sam,
    sam_map,
    ssim,
    uiqi,
)

REL = 1e-6


def close(value: object, expected: float, rel: float = REL) -> bool:
    """1e-6 relative, or half a unit of the last digit printed in the spec if larger.

    The spec prints values with 6-8 significant digits (e.g. 0.120327), so a small
    value cannot be checked to better than its printed precision.
    """
    v = float(value.item()) if isinstance(value, torch.Tensor) else float(value)  # type: ignore[arg-type]
    if v == expected:
        return True
    text = repr(float(expected))
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 17
    printed = 0.5 * 10.0 ** (-decimals) if rel >= REL else 0.0
    return abs(v - expected) <= max(rel * abs(expected), printed)


# --------------------------------------------------------------------------- vectors


def v1() -> tuple[np.ndarray, np.ndarray]:
    """V1 as (C, H, W): returns (estimate, reference)."""
    ref = np.array(
        [[[0.2, 0.4, 0.6], [0.5, 0.5, 0.5]], [[0.9, 0.1, 0.3], [0.0, 0.0, 0.0]]]
    )  # (H, W, L)
    est = np.array([[[0.25, 0.35, 0.6], [0.5, 0.6, 0.4]], [[0.8, 0.1, 0.35], [0.1, 0.0, 0.05]]])
    return np.moveaxis(est, -1, 0).copy(), np.moveaxis(ref, -1, 0).copy()


def v2(h: int = 16, w: int = 16, bands: int = 4) -> dict[str, np.ndarray]:
    """V2 generator, (C, H, W): reference, mild and strong estimates."""
    i, j, b = np.meshgrid(np.arange(h), np.arange(w), np.arange(bands), indexing="ij")
    x = 0.5 + 0.4 * np.sin(0.7 * i + 0.3 * (b + 1) * j + b)
    mild = x + 0.03 * np.cos(1.3 * i - 0.9 * j + 2 * b)
    strong = (
        0.6 * x + 0.3 * np.roll(x, -1, axis=2) + 0.05 + 0.05 * np.cos(1.3 * i - 0.9 * j + 2 * b)
    )

    def chw(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(a, -1, 0))

    return {"ref": chw(x), "mild": chw(mild), "strong": chw(strong)}


def as_input(a: np.ndarray, kind: str) -> np.ndarray | torch.Tensor:
    return torch.from_numpy(a.copy()) if kind == "torch" else a.copy()


KINDS = ["numpy", "torch"]


# --------------------------------------------------------------------------- V1


def test_v1_intermediates() -> None:
    est, ref = v1()
    mse = ((est - ref) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(mse, [0.005625, 0.003125, 0.00375], rtol=1e-12)
    # MSE_b recovered from the per-band PSNR at peak 1
    per_band = [float(psnr(est[b : b + 1], ref[b : b + 1], data_range=1.0)) for b in range(3)]
    np.testing.assert_allclose(10 ** (-np.array(per_band) / 10), mse, rtol=1e-12)
    np.testing.assert_allclose(ref.mean(axis=(1, 2)), [0.4, 0.25, 0.35], rtol=1e-12)
    np.testing.assert_allclose(est.mean(axis=(1, 2)), [0.4125, 0.2625, 0.35], rtol=1e-12)
    np.testing.assert_allclose(ref.max(axis=(1, 2)), [0.9, 0.5, 0.6], rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_v1_psnr(kind: str) -> None:
    est, ref = v1()
    e, r = as_input(est, kind), as_input(ref, kind)
    assert close(psnr(e, r, data_range=1.0), 23.936654)
    for b, expected in enumerate([22.498775, 25.051500, 24.259687]):
        assert close(psnr(est[b : b + 1], ref[b : b + 1], data_range=1.0), expected)
    assert close(psnr(e, r, data_range="ref_band_max"), 20.145746)
    assert close(psnr(e, r, data_range="ref_global_max"), 23.021504)
    assert close(psnr(e, r, data_range=1.0, aggregate="cube"), 23.802112)


@pytest.mark.parametrize("kind", KINDS)
def test_v1_rmse_sam(kind: str) -> None:
    est, ref = v1()
    e, r = as_input(est, kind), as_input(ref, kind)
    assert close(rmse(e, r), 0.06454972)
    val, excluded = sam(e, r, return_excluded=True)
    assert close(val, 6.620163)
    assert excluded.tolist() == [1]
    assert close(sam(e, r, unit="rad"), 0.1155436)


def test_v1_sam_map_cosines_and_angles() -> None:
    est, ref = v1()
    m = sam_map(est, ref)
    assert m.shape == (1, 2, 2)
    assert math.isnan(float(m[0, 1, 1]))
    angles = [float(m[0, 0, 0]), float(m[0, 0, 1]), float(m[0, 1, 0])]
    np.testing.assert_allclose(angles, [5.397028, 9.274500, 5.188962], rtol=REL)
    cosines = np.cos(np.deg2rad(angles))
    np.testing.assert_allclose(cosines, [0.99556684, 0.98692754, 0.99590184], rtol=1e-8)
    mr = sam_map(est, ref, unit="rad")
    np.testing.assert_allclose(float(mr[0, 0, 0]), math.radians(5.397028), rtol=REL)


def test_v1_sam_zero_options() -> None:
    est, ref = v1()
    # "eps": the zero pixel counts as 90 degrees
    expected = (5.397028 + 9.274500 + 5.188962 + 90.0) / 4
    assert close(sam(est, ref, zero="eps"), expected, rel=1e-6)
    # "nan": torchmetrics/deepinv behaviour
    assert math.isnan(float(sam(est, ref, zero="nan")))
    # mossfuse_reference: estimate clipped to [1e-5, 1], no zero exclusion -> NaN
    assert math.isnan(float(sam(est, ref, zero="nan", clip=(1e-5, 1.0))))


@pytest.mark.parametrize("kind", KINDS)
def test_v1_ergas(kind: str) -> None:
    est, ref = v1()
    e, r = as_input(est, kind), as_input(ref, kind)
    assert close(ergas(e, r, ratio=4), 4.911052)
    assert close(ergas(e, r, ratio=4, mean_from="estimate"), 4.765798)
    assert close(ergas(e, r, ratio=32), 0.613882)
    assert close(ergas(e, r, variant="mossfuse_reference"), 0.531637)
    # the reference variant ignores the ratio and is sqrt(L/(L+1)) times the true value at r=32
    assert close(ergas(e, r, ratio=4, variant="mossfuse_reference"), 0.531637)
    assert close(
        ergas(e, r, variant="mossfuse_reference"),
        float(ergas(e, r, ratio=32)) * math.sqrt(3 / 4),
        rel=1e-12,
    )


def test_v1_cc_uiqi_ssim() -> None:
    est, ref = v1()
    assert close(cc(est, ref), 0.982079)
    for b, expected in enumerate([0.999759, 0.976500, 0.969979]):
        assert close(cc(est[b : b + 1], ref[b : b + 1]), expected)
    assert close(uiqi(est, ref, block=2), 0.965704)
    assert close(uiqi(est, ref, block=2, mode="blocks"), 0.965704)
    for b, expected in enumerate([0.970055, 0.968153, 70 / 73]):
        assert close(uiqi(est[b : b + 1], ref[b : b + 1], block=2), expected)
    assert close(float(uiqi(est[2:3], ref[2:3], block=2)), 70 / 73, rel=1e-12)
    assert close(ssim(est, ref, data_range=1.0, window="global"), 0.965980)
    for b, expected in enumerate([0.970197, 0.968436, 0.959305]):
        assert close(
            ssim(est[b : b + 1], ref[b : b + 1], data_range=1.0, window="global"), expected
        )


# --------------------------------------------------------------------------- V2

V2_EXPECTED = {
    "mild": {
        "psnr1": 33.463272,
        "psnr_bm": 32.547093,
        "rmse": 0.02122450,
        "sam": 2.056834,
        "ergas_ref": 1.076242,
        "ergas_est": 1.076103,
        "ergas_moss": 0.120327,
        "cc": 0.997197,
        "ssim_g": 0.996770,
        "ssim_u": 0.997155,
        "uiqi_s": 0.997188,
        "uiqi_b": 0.997191,
        "q2n8": 0.997206,
        "q2n16": 0.997194,
    },
    "strong": {
        "psnr1": 15.870524,
        "psnr_bm": 14.954345,
        "rmse": 0.1610034,
        "sam": 15.749471,
        "ergas_ref": 8.167269,
        "ergas_est": 8.151550,
        "ergas_moss": 0.913128,
        "cc": 0.857905,
        "ssim_g": 0.650925,
        "ssim_u": 0.715533,
        "uiqi_s": 0.713135,
        "uiqi_b": 0.764522,
        "q2n8": 0.808536,
        "q2n16": 0.808340,
    },
}


def test_v2_generator() -> None:
    d = v2()
    np.testing.assert_allclose(
        d["ref"][:, 0, 0], [0.5, 0.83658839, 0.86371897, 0.556448], atol=5e-9
    )
    np.testing.assert_allclose(
        d["mild"][:, 0, 0], [0.53, 0.82410399, 0.84410966, 0.58525311], atol=5e-9
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", ["mild", "strong"])
def test_v2_values(case: str, kind: str) -> None:
    d = v2()
    e, r = as_input(d[case], kind), as_input(d["ref"], kind)
    exp = V2_EXPECTED[case]
    got = {
        "psnr1": psnr(e, r, data_range=1.0),
        "psnr_bm": psnr(e, r, data_range="ref_band_max"),
        "rmse": rmse(e, r),
        "sam": sam(e, r),
        "ergas_ref": ergas(e, r, ratio=4),
        "ergas_est": ergas(e, r, ratio=4, mean_from="estimate"),
        "ergas_moss": ergas(e, r, variant="mossfuse_reference"),
        "cc": cc(e, r),
        "ssim_g": ssim(e, r, data_range=1.0),
        "ssim_u": ssim(e, r, data_range=1.0, window="uniform7"),
        "uiqi_s": uiqi(e, r),
        "uiqi_b": uiqi(e, r, mode="blocks"),
        "q2n8": q2n(e, r, block=8, step=8),
        "q2n16": q2n(e, r, block=16, step=16),
    }
    for key, value in got.items():
        assert value.dtype == torch.float64 and value.shape == (1,), key
        assert close(value, exp[key]), (key, float(value), exp[key])


def test_v2_batch_gives_one_value_per_image() -> None:
    d = v2()
    est = np.stack([d["mild"], d["strong"]])
    ref = np.stack([d["ref"], d["ref"]])
    out = ssim(est, ref, data_range=1.0)
    assert out.shape == (2,)
    assert close(out[0], V2_EXPECTED["mild"]["ssim_g"])
    assert close(out[1], V2_EXPECTED["strong"]["ssim_g"])
    out = q2n(est, ref, block=8, step=8)
    assert close(out[0], V2_EXPECTED["mild"]["q2n8"]) and close(
        out[1], V2_EXPECTED["strong"]["q2n8"]
    )
    out = psnr(torch.from_numpy(est), torch.from_numpy(ref), data_range=1.0)
    assert close(out[1], V2_EXPECTED["strong"]["psnr1"])


def test_v2_crop_values() -> None:
    d = v2()
    e, r = d["mild"], d["ref"]
    assert close(psnr(e, r, data_range=1.0, crop=4), 33.481643)
    assert close(sam(e, r, crop=4), 1.987036)
    assert close(ergas(e, r, ratio=4, crop=4), 1.047458)
    assert close(cc(e, r, crop=4), 0.997246)
    assert close(rmse(e, r, crop=4), 0.02118006)
    # crop="ratio" means c = r
    assert close(psnr(e, r, data_range=1.0, crop="ratio", ratio=4), 33.481643)
    assert close(ergas(e, r, ratio=4, crop="ratio"), 1.047458)


def test_crop_errors() -> None:
    d = v2()
    with pytest.raises(InputError, match="ratio"):
        psnr(d["mild"], d["ref"], data_range=1.0, crop="ratio")
    with pytest.raises(ShapeError, match="crop"):
        rmse(d["mild"], d["ref"], crop=8)
    with pytest.raises(InputError):
        rmse(d["mild"], d["ref"], crop=-1)


# --------------------------------------------------------------------------- V3, V4: Q2n


def test_v3_q2n_padding() -> None:
    d = v2(40, 40, 5)  # pads to 64x64 and 8 bands
    assert close(q2n(d["strong"], d["ref"]), 0.849739)
    d = v2(32, 32, 3)  # pads to 4 bands
    assert close(q2n(d["strong"], d["ref"]), 0.839082)
    d = v2(16, 16, 8)
    assert close(q2n(d["strong"], d["ref"], block=16, step=16), 0.780533)


@pytest.mark.parametrize("shape", [(40, 40, 5), (32, 32, 3), (16, 16, 8), (16, 16, 4)])
def test_v3_q2n_identity(shape: tuple[int, int, int]) -> None:
    d = v2(*shape)
    assert abs(float(q2n(d["ref"], d["ref"])) - 1.0) < 1e-12
    assert abs(float(q2n(d["ref"], d["ref"], block=8, step=8)) - 1.0) < 1e-12


def test_v4_hypercomplex_product() -> None:
    out = hypercomplex_product([1.0, 2, 3, 4], [5.0, 6, 7, 8])
    assert out.tolist() == [-60.0, 12.0, 30.0, -24.0]
    out = hypercomplex_product(np.arange(1.0, 9.0), np.arange(2.0, 10.0))
    assert out.tolist() == [-236.0, 6.0, 8.0, -10.0, 28.0, -18.0, -16.0, 26.0]
    # n = 1 and n = 2 cases, broadcasting
    assert hypercomplex_product([3.0], [4.0]).tolist() == [12.0]
    assert hypercomplex_product([1.0, 2.0], [3.0, 4.0]).tolist() == [-5.0, 10.0]
    u = torch.tensor([[1.0, 2, 3, 4], [0.5, 0, 0, 1]])
    out = hypercomplex_product(u, torch.tensor([5.0, 6, 7, 8]))
    assert out.shape == (2, 4) and out[0].tolist() == [-60.0, 12.0, 30.0, -24.0]


def _hamilton(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a1, b1, c1, d1 = a
    a2, b2, c2, d2 = b
    return np.array(
        [
            a1 * a2 - b1 * b2 - c1 * c2 - d1 * d2,
            a1 * b2 + b1 * a2 + c1 * d2 - d1 * c2,
            a1 * c2 - b1 * d2 + c1 * a2 + d1 * b2,
            a1 * d2 + b1 * c2 - c1 * b2 + d1 * a2,
        ]
    )


def test_v4_not_hamilton() -> None:
    ham = _hamilton(np.array([1.0, 2, 3, 4]), np.array([5.0, 6, 7, 8]))
    assert ham[-1] == 24.0
    assert hypercomplex_product([1.0, 2, 3, 4], [5.0, 6, 7, 8])[-1] == -24.0


def test_hypercomplex_product_bad_shapes() -> None:
    with pytest.raises(ShapeError):
        hypercomplex_product([1.0, 2, 3], [1.0, 2, 3])
    with pytest.raises(ShapeError):
        hypercomplex_product([1.0, 2], [1.0, 2, 3, 4])


# Independent, literal, loop-based Q2n of metrics.md §1.8 (NumPy), with a pluggable product.


def _conj_np(u: np.ndarray) -> np.ndarray:
    v = -u.copy()
    v[..., 0] = u[..., 0]
    return v


def _onion_np(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    n = u.shape[-1]
    if n == 1:
        return u * v
    h = n // 2
    a, b = u[..., :h], _conj_np(u[..., h:])
    c, d = v[..., :h], _conj_np(v[..., h:])
    if n == 2:
        return np.concatenate([a * c - d * b, a * d + c * b], axis=-1)
    return np.concatenate(
        [_onion_np(a, c) - _onion_np(d, _conj_np(b)), _onion_np(_conj_np(a), d) + _onion_np(c, b)],
        axis=-1,
    )


def _cayley_dickson(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Textbook Cayley-Dickson: (a, b)(c, d) = (ac - conj(d) b, d a + b conj(c))."""
    n = u.shape[-1]
    if n == 1:
        return u * v
    h = n // 2
    a, b, c, d = u[..., :h], u[..., h:], v[..., :h], v[..., h:]
    return np.concatenate(
        [
            _cayley_dickson(a, c) - _cayley_dickson(_conj_np(d), b),
            _cayley_dickson(d, a) + _cayley_dickson(b, _conj_np(c)),
        ],
        axis=-1,
    )


def q2n_loop(est: np.ndarray, ref: np.ndarray, s: int, step: int, product=_onion_np) -> float:  # type: ignore[no-untyped-def]
    ref = np.moveaxis(ref, 0, -1)
    est = np.moveaxis(est, 0, -1)
    h, w, bands = ref.shape
    ny, nx = math.ceil(h / step), math.ceil(w / step)
    ey, ex = (ny - 1) * step + s - h, (nx - 1) * step + s - w
    pads = ((0, max(ey, 0)), (0, max(ex, 0)), (0, 0))
    ref = np.pad(ref, pads, mode="symmetric")[: h + ey, : w + ex]
    est = np.pad(est, pads, mode="symmetric")[: h + ey, : w + ex]
    n = 2 ** math.ceil(math.log2(bands))
    ref = np.concatenate([ref, np.zeros(ref.shape[:2] + (n - bands,))], axis=-1)
    est = np.concatenate([est, np.zeros(est.shape[:2] + (n - bands,))], axis=-1)
    big_n = s * s
    qs = []
    for a in range(ny):
        for c in range(nx):
            xr = ref[a * step : a * step + s, c * step : c * step + s].reshape(-1, n).copy()
            xe = est[a * step : a * step + s, c * step : c * step + s].reshape(-1, n).copy()
            for b in range(n):
                m = xr[:, b].mean()
                sd = xr[:, b].std(ddof=1)
                if sd == 0:
                    sd = 2.220446e-16
                xr[:, b] = (xr[:, b] - m) / sd + 1
                xe[:, b] = xe[:, b] + 1 if m == 0 else (xe[:, b] - m) / sd + 1
            z, wq = xr, _conj_np(xe)
            mz, mw = z.mean(0), wq.mean(0)
            vz = big_n / (big_n - 1) * ((z**2).sum(1).mean() - (mz**2).sum())
            vw = big_n / (big_n - 1) * ((wq**2).sum(1).mean() - (mw**2).sum())
            nz, nw = np.sqrt((mz**2).sum()), np.sqrt((mw**2).sum())
            beta = 2 * nz * nw / (nz**2 + nw**2)
            if vz + vw == 0:
                qs.append(beta)
                continue
            cvec = big_n / (big_n - 1) * (product(z, wq).mean(0) - product(mz, mw))
            qs.append(np.linalg.norm(cvec) * beta * 2 / (vz + vw))
    return float(np.mean(qs))


@pytest.mark.parametrize(
    "shape,s,step",
    [
        ((16, 16, 4), 8, 8),
        ((20, 18, 5), 8, 8),
        ((24, 20, 3), 8, 4),
        ((12, 12, 2), 8, 8),
        ((17, 16, 1), 4, 4),
        ((10, 12, 3), 32, 32),  # pad wider than the image
        ((44, 44, 2), 8, 16),  # step > block: the last rows are never used
    ],
)
def test_q2n_matches_literal_loop(shape: tuple[int, int, int], s: int, step: int) -> None:
    d = v2(*shape)
    expected = q2n_loop(d["strong"], d["ref"], s, step)
    assert close(q2n(d["strong"], d["ref"], block=s, step=step), expected, rel=1e-10)


@pytest.mark.parametrize("bands", [4, 5, 8])
def test_q2n_cayley_dickson_gives_same_value(bands: int) -> None:
    d = v2(16, 16, bands)
    ours = q2n_loop(d["strong"], d["ref"], 8, 8)
    textbook = q2n_loop(d["strong"], d["ref"], 8, 8, product=_cayley_dickson)
    assert close(textbook, ours, rel=1e-9)


def test_q2n_uint16_scale() -> None:
    d = v2(16, 16, 4)
    scale = 10000.0

    def cast(a: np.ndarray) -> np.ndarray:
        t = a * scale
        return np.clip(np.sign(t) * np.floor(np.abs(t) + 0.5), 0, 65535)

    expected = q2n_loop(cast(d["strong"]), cast(d["ref"]), 8, 8)
    got = q2n(d["strong"], d["ref"], block=8, step=8, uint16_scale=scale)
    assert close(got, expected, rel=1e-10)
    # rounding is half away from zero (not half to even) and saturates
    a = np.full((1, 8, 8), 2.5 / scale)
    a[0, 0, 0] = 7.0  # saturates to 65535
    r = np.full((1, 8, 8), 3.0 / scale)
    r[0, 0, 0] = 65535 / scale
    # after the cast both are identical except rounding: 2.5 -> 3
    assert close(q2n(a, r, block=8, step=8, uint16_scale=scale), 1.0, rel=1e-12)


def test_q2n_bad_arguments() -> None:
    d = v2()
    with pytest.raises(InputError):
        q2n(d["mild"], d["ref"], block=1)
    with pytest.raises(InputError):
        q2n(d["mild"], d["ref"], block=8, step=0)


# --------------------------------------------------------------------------- V6 edge cases


def test_v6_sam_parallel_is_exactly_zero() -> None:
    x = np.array([0.61, 0.73, 0.54])
    # the unclipped cosine from the norm product exceeds 1 (why clipping is mandatory)
    naive = float(np.dot(x, 2 * x) / (np.linalg.norm(x) * np.linalg.norm(2 * x)))
    assert naive == 1.0000000000000002
    val = sam(torch.from_numpy(2 * x).reshape(1, 3, 1, 1), torch.from_numpy(x).reshape(1, 3, 1, 1))
    assert float(val) == 0.0
    assert float(sam(x.reshape(3, 1, 1), x.reshape(3, 1, 1), unit="rad")) == 0.0


def test_v6_sam_all_zero_is_nan_with_warning() -> None:
    z = np.zeros((3, 2, 2))
    with pytest.warns(UserWarning, match="SAM is NaN"):
        val = sam(z, z)
    assert math.isnan(float(val))


def test_v6_psnr_identity_is_inf() -> None:
    d = v2()
    assert float(psnr(d["ref"], d["ref"], data_range=1.0)) == math.inf
    assert float(psnr(d["ref"], d["ref"], data_range=1.0, aggregate="cube")) == math.inf
    # one perfect band makes the band mean inf: no cap
    est = d["mild"].copy()
    est[0] = d["ref"][0]
    assert float(psnr(est, d["ref"], data_range=1.0)) == math.inf


@pytest.mark.parametrize("a,b", [(0.3, 0.7), (0.1, 0.1), (0.5, 0.25), (0.0, 0.6)])
@pytest.mark.parametrize("mode", ["sliding", "blocks"])
def test_v6_uiqi_constant_windows(a: float, b: float, mode: str) -> None:
    est = np.full((2, 8, 8), a)
    ref = np.full((2, 8, 8), b)
    expected = 2 * a * b / (a * a + b * b)
    assert close(uiqi(est, ref, block=8, mode=mode), expected, rel=1e-12)
    # larger image: constant sliding windows must be detected exactly
    est = np.full((1, 16, 16), a)
    ref = np.full((1, 16, 16), b)
    assert close(uiqi(est, ref, block=8, mode=mode), expected, rel=1e-12)


def test_v6_uiqi_zero_windows_is_one() -> None:
    z = np.zeros((1, 8, 8))
    assert float(uiqi(z, z)) == 1.0
    assert float(uiqi(z, z, mode="blocks")) == 1.0


def test_v6_ergas_zero_band_excluded_with_warning() -> None:
    d = v2()
    ref = d["ref"].copy()
    est = d["mild"].copy()
    ref[1] = 0.0
    with pytest.warns(UserWarning, match="ERGAS excludes 1 band"):
        val = ergas(est, ref, ratio=4)
    keep = [0, 2, 3]
    assert close(val, float(ergas(est[keep], ref[keep], ratio=4)), rel=1e-12)


def test_cc_constant_band_excluded_with_warning() -> None:
    d = v2()
    ref = d["ref"].copy()
    ref[2] = 0.4
    with pytest.warns(UserWarning, match="CC excludes"):
        val = cc(d["mild"], ref)
    keep = [0, 1, 3]
    assert close(val, float(cc(d["mild"][keep], ref[keep])), rel=1e-12)
    with pytest.warns(UserWarning):
        assert math.isnan(float(cc(np.full((1, 4, 4), 0.3), np.full((1, 4, 4), 0.2))))


def test_cc_global_mode() -> None:
    d = v2()
    e, r = d["mild"].ravel(), d["ref"].ravel()
    assert close(cc(d["mild"], d["ref"], mode="global"), float(np.corrcoef(e, r)[0, 1]), rel=1e-12)


ALL_CALLS = {
    "psnr": lambda e, r: psnr(e, r, data_range=1.0, clip=(0.0, 1.0)),
    "psnr_bm": lambda e, r: psnr(e, r, data_range="ref_band_max"),
    "rmse": lambda e, r: rmse(e, r, crop=1),
    "mae": lambda e, r: mae(e, r),
    "sam": lambda e, r: sam(e, r, clip=(1e-5, 1.0)),
    "sam_map": lambda e, r: sam_map(e, r),
    "ergas": lambda e, r: ergas(e, r, ratio=4, clip=(0.0, 1.0)),
    "cc": lambda e, r: cc(e, r),
    "ssim": lambda e, r: ssim(e, r, data_range=1.0, clip=(0.0, 1.0)),
    "ssim_u": lambda e, r: ssim(e, r, data_range="ref_band_max", window="uniform7"),
    "uiqi": lambda e, r: uiqi(e, r),
    "uiqi_b": lambda e, r: uiqi(e, r, mode="blocks"),
    "q2n": lambda e, r: q2n(e, r, block=8, step=8, uint16_scale=1000.0),
}


@pytest.mark.parametrize("name", list(ALL_CALLS))
@pytest.mark.parametrize("kind", KINDS)
def test_v6_inputs_unmodified(name: str, kind: str) -> None:
    d = v2()
    est = d["strong"] * 1.3 - 0.1  # out of [0, 1] so clipping would show
    e, r = as_input(est, kind), as_input(d["ref"], kind)
    if kind == "torch":
        e, r = e.to(torch.float64), r.to(torch.float64)
    e0 = e.clone() if isinstance(e, torch.Tensor) else e.copy()
    r0 = r.clone() if isinstance(r, torch.Tensor) else r.copy()
    ALL_CALLS[name](e, r)
    if isinstance(e, torch.Tensor):
        assert torch.equal(e, e0) and torch.equal(r, r0)
    else:
        np.testing.assert_array_equal(e, e0)
        np.testing.assert_array_equal(r, r0)


def test_v6_argument_order_pinned() -> None:
    est, ref = v1()
    # symmetric cases
    assert close(psnr(ref, est, data_range=1.0), 23.936654)
    assert close(rmse(ref, est), 0.06454972)
    # documented asymmetric cases
    assert not close(psnr(ref, est, data_range="ref_band_max"), 20.145746)
    assert close(ergas(ref, est, ratio=4), 4.765798)  # swapped = estimate means
    assert close(ergas(ref, est, ratio=4, mean_from="estimate"), 4.911052)
    d = v2()
    a = ssim(d["strong"], d["ref"], data_range="ref_band_max")
    b = ssim(d["ref"], d["strong"], data_range="ref_band_max")
    assert not close(a, float(b), rel=1e-9)
    # clipping touches only the estimate
    high = d["ref"] + 0.6
    assert float(rmse(high, d["ref"], clip=(0.0, 1.0))) != float(
        rmse(d["ref"], high, clip=(0.0, 1.0))
    )


# --------------------------------------------------------------------------- conventions not offered


def test_ergas_wrong_conventions_not_offered() -> None:
    d = v2()
    e, r = d["mild"], d["ref"]
    rr = 4
    ours = float(ergas(e, r, ratio=rr))
    mse = ((e - r) ** 2).mean(axis=(1, 2))
    mu = r.mean(axis=(1, 2))
    core = math.sqrt(float(np.mean(mse / mu**2)))
    assert close(ours, 100 / rr * core, rel=1e-12)
    # 100*r (torchmetrics before its 2024 fix) is inflated by r^2
    wrong = 100 * rr * core
    assert close(wrong, ours * rr**2, rel=1e-12) and not close(ours, wrong, rel=0.5)
    # r given as d_h/d_l < 1 is refused
    with pytest.raises(InputError, match="ratio"):
        ergas(e, r, ratio=0.25)
    with pytest.raises(InputError, match="ratio"):
        ergas(e, r)
    # a sliding-window ERGAS map without band averaging (sewar < 0.4.6) differs
    win = 8
    tr = torch.from_numpy(r)[None]
    te = torch.from_numpy(e)[None]
    mse_map = torch.nn.functional.avg_pool2d((te - tr) ** 2, win, stride=1)
    mu_map = torch.nn.functional.avg_pool2d(tr, win, stride=1)
    sewar_like = float((100 / rr * (mse_map / mu_map**2).sum(1).sqrt()).mean())
    assert not close(ours, sewar_like, rel=1e-3)


def test_psnr_peak_options_checked() -> None:
    d = v2()
    with pytest.raises(TypeError):
        psnr(d["mild"], d["ref"])  # type: ignore[call-arg]  # data_range is required
    with pytest.raises(InputError, match="data_range"):
        psnr(d["mild"], d["ref"], data_range="est_band_max")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        psnr(d["mild"], d["ref"], data_range=0.0)
    with pytest.raises(InputError, match="cube"):
        psnr(d["mild"], d["ref"], data_range="ref_band_max", aggregate="cube")
    with pytest.raises(InputError):
        psnr(d["mild"], d["ref"], data_range=1.0, aggregate="mean")  # type: ignore[arg-type]


def test_ssim_ref_band_max_equals_per_band_float() -> None:
    d = v2()
    peaks = d["ref"].max(axis=(1, 2))
    per_band = [
        float(ssim(d["strong"][b : b + 1], d["ref"][b : b + 1], data_range=float(peaks[b])))
        for b in range(4)
    ]
    assert close(
        ssim(d["strong"], d["ref"], data_range="ref_band_max"), float(np.mean(per_band)), 1e-12
    )
    g = float(d["ref"].max())
    assert close(
        ssim(d["strong"], d["ref"], data_range="ref_global_max"),
        float(ssim(d["strong"], d["ref"], data_range=g)),
        1e-12,
    )


def test_ssim_window_too_large() -> None:
    est, ref = v1()
    with pytest.raises(ShapeError, match="window"):
        ssim(est, ref, data_range=1.0)
    d = v2(10, 10, 2)
    with pytest.raises(ShapeError):
        ssim(d["mild"], d["ref"], data_range=1.0)
    assert ssim(d["mild"], d["ref"], data_range=1.0, window="uniform7").shape == (1,)


def test_uiqi_blocks_needs_multiples() -> None:
    d = v2(20, 16, 2)
    with pytest.raises(ShapeError, match="multiples"):
        uiqi(d["mild"], d["ref"], mode="blocks")
    with pytest.raises(ShapeError):
        uiqi(d["mild"], d["ref"], block=32)


def test_shape_and_type_errors() -> None:
    d = v2()
    with pytest.raises(ShapeError, match="same shape"):
        rmse(d["mild"], d["ref"][:3])
    with pytest.raises(ShapeError):
        rmse(d["mild"][0], d["ref"][0])
    with pytest.raises(ShapeError):
        rmse(np.zeros((1, 0, 4, 4)), np.zeros((1, 0, 4, 4)))
    with pytest.raises(InputError):
        rmse(d["mild"].astype(complex), d["ref"])


def test_float32_and_int_inputs_return_float64() -> None:
    d = v2()
    e32 = torch.from_numpy(d["mild"]).float()
    r32 = torch.from_numpy(d["ref"]).float()
    out = psnr(e32, r32, data_range=1.0)
    assert out.dtype == torch.float64 and close(out, 33.463272, rel=1e-5)
    ints = (d["ref"] * 10000).round().astype(np.uint16)
    assert float(rmse(ints, ints)) == 0.0


def test_readonly_numpy_input_does_not_warn() -> None:
    d = v2()
    r = d["ref"].copy()
    r.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rmse(r, r)


# --------------------------------------------------------------------------- properties

cubes = st.integers(1, 2).flatmap(
    lambda b: st.integers(1, 4).flatmap(
        lambda c: arrays(
            np.float64,
            (b, c, 12, 12),
            elements=st.floats(0.05, 1.0, allow_nan=False, allow_subnormal=False),
        )
    )
)


@settings(max_examples=10, deadline=None)
@given(x=cubes)
def test_identity_gives_ideal_value(x: np.ndarray) -> None:
    b = x.shape[0]
    for v in (psnr(x, x, data_range=1.0), psnr(x, x, data_range="ref_band_max")):
        assert v.shape == (b,) and bool(torch.isinf(v).all())
    assert torch.equal(rmse(x, x), torch.zeros(b, dtype=torch.float64))
    assert torch.equal(sam(x, x), torch.zeros(b, dtype=torch.float64))
    assert torch.equal(ergas(x, x, ratio=4), torch.zeros(b, dtype=torch.float64))
    torch.testing.assert_close(ssim(x, x, data_range=1.0), torch.ones(b, dtype=torch.float64))
    torch.testing.assert_close(uiqi(x, x), torch.ones(b, dtype=torch.float64))
    torch.testing.assert_close(q2n(x, x, block=4, step=4), torch.ones(b, dtype=torch.float64))


@settings(max_examples=20, deadline=None)
@given(x=cubes, y=cubes, k=st.floats(0.01, 100.0))
def test_sam_scale_invariance(x: np.ndarray, y: np.ndarray, k: float) -> None:
    if x.shape != y.shape:
        y = np.resize(y, x.shape)
    a = sam(y, x)
    # arccos is ill-conditioned at 1: a one-ulp change of the cosine moves a near-zero
    # angle by up to sqrt(2 eps) rad = 1.2e-6 degrees
    torch.testing.assert_close(sam(k * y, x), a, rtol=0, atol=1e-5)
    torch.testing.assert_close(sam(y, k * x), a, rtol=0, atol=1e-5)
    assert a.shape == (x.shape[0],)
    assert bool(((a >= 0) & (a <= 180)).all())


@settings(max_examples=15, deadline=None)
@given(x=cubes, y=cubes)
def test_inputs_unmodified_and_shape_property(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape != y.shape:
        y = np.resize(y, x.shape)
    tx, ty = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
    x0, y0 = tx.clone(), ty.clone()
    outs = [
        psnr(ty, tx, data_range=1.0),
        rmse(ty, tx),
        sam(ty, tx),
        ergas(ty, tx, ratio=2),
        ssim(ty, tx, data_range=1.0, window="uniform7"),
        uiqi(ty, tx, block=4),
        q2n(ty, tx, block=4, step=4),
    ]
    assert torch.equal(tx, x0) and torch.equal(ty, y0)
    for o in outs:
        assert o.shape == (x.shape[0],) and o.dtype == torch.float64
    # per-image values equal single-image calls
    assert close(outs[0][-1], float(psnr(y[-1], x[-1], data_range=1.0)), rel=1e-12)


@settings(max_examples=15, deadline=None)
@given(x=cubes)
def test_metric_ranges(x: np.ndarray) -> None:
    y = np.flip(x, axis=-1).copy()
    assert bool((q2n(y, x, block=4, step=4) <= 1 + 1e-9).all())
    assert bool((uiqi(y, x, block=4).abs() <= 1 + 1e-9).all())
    assert bool((ssim(y, x, data_range=1.0, window="uniform7") <= 1 + 1e-9).all())


# --------------------------------------------------------------------------- fast paths vs direct


def _direct_ssim(e: torch.Tensor, r: torch.Tensor, window: str, d: float) -> float:
    """SSIM by plain conv2d over whole bands (slow reference, population/sample as skimage)."""
    if window == "gaussian11":
        g = torch.exp(-0.5 * (torch.arange(-5, 6, dtype=torch.float64) / 1.5) ** 2)
        g = g / g.sum()
        k2 = (g[:, None] * g[None, :])[None, None]
        norm = 1.0
    else:
        k2 = torch.full((1, 1, 7, 7), 1 / 49, dtype=torch.float64)
        norm = 49 / 48
    x = r.reshape(-1, 1, *r.shape[-2:])
    y = e.reshape(-1, 1, *e.shape[-2:])

    def f(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(t, k2)

    ux, uy = f(x), f(y)
    vx = norm * (f(x * x) - ux * ux)
    vy = norm * (f(y * y) - uy * uy)
    vxy = norm * (f(x * y) - ux * uy)
    c1, c2 = (0.01 * d) ** 2, (0.03 * d) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return float(s.mean(dim=(1, 2, 3)).mean())


def _direct_uiqi(e: torch.Tensor, r: torch.Tensor, block: int) -> float:
    x = r.reshape(-1, 1, *r.shape[-2:])
    y = e.reshape(-1, 1, *e.shape[-2:])

    def f(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(t, block, stride=1)

    def const(t: torch.Tensor) -> torch.Tensor:
        mp = torch.nn.functional.max_pool2d
        return mp(t, block, stride=1) == -mp(-t, block, stride=1)

    ux, uy = f(x), f(y)
    vx = torch.where(const(x), 0.0, f(x * x) - ux * ux)
    vy = torch.where(const(y), 0.0, f(y * y) - uy * uy)
    vxy = torch.where(const(x) | const(y), 0.0, f(x * y) - ux * uy)
    vs, ms = vx + vy, ux**2 + uy**2
    q = torch.ones_like(vs)
    q = torch.where((vs == 0) & (ms != 0), 2 * ux * uy / ms, q)
    q = torch.where(vs * ms != 0, 4 * vxy * ux * uy / (vs * ms), q)
    return float(q.mean())


def test_strips_and_box_sums_match_direct_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    import hyperfuse.metrics.functional as fm

    monkeypatch.setattr(fm, "_STRIP_PIXELS", 1024)  # several strips on a small image
    g = torch.Generator().manual_seed(3)
    r = torch.rand(1, 2, 150, 40, generator=g, dtype=torch.float64)
    e = r + 0.1 * torch.rand(1, 2, 150, 40, generator=g, dtype=torch.float64)
    # constant patches across strip boundaries, one of them zero in both images
    r[..., 20:60, 3:20] = 0.3
    e[..., 20:60, 3:20] = 0.6
    r[..., 90:140, 15:38] = 0.0
    e[..., 90:140, 15:38] = 0.0
    for window in ("gaussian11", "uniform7"):
        got = ssim(e, r, data_range=1.0, window=window)
        assert close(got, _direct_ssim(e, r, window, 1.0), 1e-12)
    for block in (5, 8, 13, 32):
        assert close(uiqi(e, r, block=block), _direct_uiqi(e, r, block), 1e-12), block
