"""No-reference indices (metrics.md §2) and test vector V5."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hyperfuse.errors import InputError, ShapeError
from hyperfuse.metrics.functional import psnr, uiqi
from hyperfuse.metrics.noref import (
    QNRResult,
    bicubic_upsample,
    consistency,
    d_lambda,
    d_lambda_core,
    d_s,
    d_s_core,
    qbar,
    qnr,
    qnr_core,
)


def close(value: object, expected: float, rel: float = 1e-6) -> bool:
    """1e-6 relative, or half a unit of the last printed digit of the spec value."""
    v = float(value.item()) if isinstance(value, torch.Tensor) else float(value)  # type: ignore[arg-type]
    if v == expected:
        return True
    text = repr(float(expected))
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 17
    return abs(v - expected) <= max(rel * abs(expected), 0.5 * 10.0 ** (-decimals))


def v5() -> dict[str, np.ndarray]:
    """V5 inputs, (C, H, W): F = mild estimate of V2, X~, Y, Y~."""
    i, j, b = np.meshgrid(np.arange(16), np.arange(16), np.arange(4), indexing="ij")
    x = 0.5 + 0.4 * np.sin(0.7 * i + 0.3 * (b + 1) * j + b)
    mild = x + 0.03 * np.cos(1.3 * i - 0.9 * j + 2 * b)
    xt = x + 0.02 * np.sin(0.5 * i + 0.5 * j + b)

    def chw(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(a, -1, 0))

    x, mild, xt = chw(x), chw(mild), chw(xt)
    y = np.stack([(x[0] + x[1]) / 2, (x[2] + x[3]) / 2])
    yt = np.stack([(xt[0] + xt[1]) / 2, (xt[2] + xt[3]) / 2])
    return {"F": mild, "Xt": xt, "Y": y, "Yt": yt}


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_v5_qnr_core(kind: str) -> None:
    d = v5()
    conv = (lambda a: torch.from_numpy(a.copy())) if kind == "torch" else (lambda a: a.copy())
    args = [conv(d[k]) for k in ("F", "Xt", "Y", "Yt")]
    res = qnr_core(*args, block=8)
    assert isinstance(res, QNRResult)
    assert close(res.d_lambda, 0.012120)
    assert close(res.d_s, 0.008267)
    assert close(res.qnr, 0.979713)
    assert res.qnr.shape == (1,) and res.qnr.dtype == torch.float64
    assert close(qnr_core(*args, block=8, p=2).d_lambda, 0.015393)
    assert close(qnr_core(*args, block=8, q=2).d_s, 0.011003)
    sp = qnr_core(*args, block=8, ds_mode="synthetic_pan")
    assert close(sp.d_s, 0.003419)
    assert close(sp.qnr, 0.984503)
    assert close(sp.d_lambda, 0.012120)
    # the standalone cores agree
    assert close(d_lambda_core(args[0], args[1], block=8), float(res.d_lambda), 1e-12)
    assert close(d_s_core(*args, block=8), float(res.d_s), 1e-12)


def test_v5_consistent_fusion_is_exactly_zero() -> None:
    d = v5()
    res = qnr_core(d["Xt"], d["Xt"], d["Yt"], d["Yt"], block=8)
    assert float(res.d_lambda) == 0.0 and float(res.d_s) == 0.0 and float(res.qnr) == 1.0


def test_qnr_exponents_alpha_beta() -> None:
    d = v5()
    res = qnr_core(d["F"], d["Xt"], d["Y"], d["Yt"], block=8, alpha=2.0, beta=0.5)
    expected = (1 - float(res.d_lambda)) ** 2 * (1 - float(res.d_s)) ** 0.5
    assert close(res.qnr, expected, 1e-12)
    assert res.config["alpha"] == 2.0 and res.config["beta"] == 0.5


def test_qbar_matches_uiqi_blocks() -> None:
    d = v5()
    q = qbar(d["F"], d["Xt"], block=8)
    assert q.shape == (1, 4, 4)
    for b in range(4):
        assert close(
            q[0, b, b],
            float(uiqi(d["F"][b : b + 1], d["Xt"][b : b + 1], block=8, mode="blocks")),
            1e-12,
        )
    # symmetric in its arguments
    torch.testing.assert_close(
        qbar(d["Xt"], d["F"], block=8), q.transpose(1, 2), rtol=0, atol=1e-15
    )


def test_qbar_special_cases() -> None:
    a = np.full((1, 8, 8), 0.3)
    b = np.full((1, 8, 8), 0.6)
    assert close(qbar(a, b, block=8)[0, 0, 0], 2 * 0.3 * 0.6 / (0.09 + 0.36), 1e-12)
    z = np.zeros((1, 8, 8))
    assert float(qbar(z, z, block=8)[0, 0, 0]) == 1.0
    with pytest.raises(ShapeError):
        qbar(np.zeros((1, 10, 8)), np.zeros((1, 10, 8)), block=8)


def test_crop_to_block_multiple_is_recorded() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 20, 17, generator=g, dtype=torch.float64)
    y = x[:, :2] * 0.5 + 0.1
    res = qnr_core(x, x, y, y, block=8)
    assert res.config["crop"] == [4, 1] and res.config["crop_tilde"] == [4, 1]
    assert res.config["block"] == 8
    ref = qnr_core(x[..., :16, :16], x[..., :16, :16], y[..., :16, :16], y[..., :16, :16], block=8)
    torch.testing.assert_close(res.qnr, ref.qnr)
    assert res.qnr.shape == (2,)
    json.dumps(res.to_dict())
    with pytest.raises(ShapeError, match="block"):
        qnr_core(x[..., :6, :6], x[..., :6, :6], y[..., :6, :6], y[..., :6, :6], block=8)


def test_core_input_errors() -> None:
    d = v5()
    with pytest.raises(ShapeError, match="2 bands"):
        d_lambda_core(d["F"][:1], d["Xt"][:1], block=8)
    with pytest.raises(ShapeError):
        qnr_core(d["F"], d["Xt"][:3], d["Y"], d["Yt"], block=8)
    with pytest.raises(ShapeError):
        qnr_core(d["F"], d["Xt"], d["Y"][:, :8], d["Yt"], block=8)
    with pytest.raises(InputError):
        qnr_core(d["F"], d["Xt"], d["Y"], d["Yt"], block=8, ds_mode="pan")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        qnr_core(d["F"], d["Xt"], d["Y"], d["Yt"], block=1)
    with pytest.raises(InputError):
        qnr_core(d["F"], d["Xt"], d["Y"], d["Yt"], block=8, p=0)


# --------------------------------------------------------------------------- sensor-level


def _scene(h: int = 64, w: int = 64, bands: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, bands, h // 8, w // 8, generator=g, dtype=torch.float64)
    truth = F.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)
    srf = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]], dtype=torch.float64)
    msi = torch.einsum("ml,blhw->bmhw", srf, truth)
    noise = 0.01 * torch.rand(truth.shape, generator=g, dtype=torch.float64)
    return {"truth": truth, "msi": msi, "srf": srf, "fused": truth + noise}


def pool4(t: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(t, 4)


def test_qnr_hr_mode_equals_core_on_prepared_inputs() -> None:
    s = _scene()
    hsi = pool4(s["truth"])
    res = qnr(s["fused"], hsi, s["msi"], ratio=4, degrade=pool4, block=16)
    xt = bicubic_upsample(hsi, 4)
    yt = bicubic_upsample(pool4(s["msi"]), 4)
    core = qnr_core(s["fused"], xt, s["msi"], yt, block=16)
    torch.testing.assert_close(res.qnr, core.qnr, rtol=1e-13, atol=0)
    torch.testing.assert_close(res.d_lambda, core.d_lambda, rtol=1e-13, atol=0)
    assert res.config["scale"] == "hr" and res.config["block"] == 16 and res.config["ratio"] == 4
    assert float(res.qnr) <= 1.0
    torch.testing.assert_close(
        d_lambda(s["fused"], hsi, ratio=4, block=16), res.d_lambda, rtol=1e-13, atol=0
    )
    torch.testing.assert_close(
        d_s(s["fused"], hsi, s["msi"], ratio=4, degrade=pool4, block=16),
        res.d_s,
        rtol=1e-13,
        atol=0,
    )


def test_qnr_lr_mode() -> None:
    s = _scene()
    hsi = pool4(s["truth"])
    res = qnr(s["fused"], hsi, s["msi"], ratio=4, degrade=pool4, block=16, scale="lr")
    core = qnr_core(s["fused"], hsi, s["msi"], pool4(s["msi"]), block=16, block_tilde=4)
    torch.testing.assert_close(res.qnr, core.qnr, rtol=1e-13, atol=0)
    assert res.config["block_tilde"] == 4 and res.config["scale"] == "lr"
    # S / r must be an integer >= 4: CAVE x32 with S = 32 cannot use "lr"
    with pytest.raises(InputError, match="block/ratio"):
        qnr(s["fused"], hsi, s["msi"], ratio=4, degrade=pool4, block=8, scale="lr")
    big = _scene(64, 64)
    with pytest.raises(InputError, match="block/ratio"):
        qnr(
            big["fused"],
            F.avg_pool2d(big["truth"], 32),
            big["msi"],
            ratio=32,
            degrade=lambda t: F.avg_pool2d(t, 32),
            block=32,
            scale="lr",
        )
    with pytest.raises(InputError):
        d_lambda(s["fused"], hsi, ratio=4, block=12, scale="lr")


def test_qnr_custom_upsample_and_checks() -> None:
    s = _scene()
    hsi = pool4(s["truth"])

    def nearest(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, scale_factor=4, mode="nearest")

    res = qnr(s["fused"], hsi, s["msi"], ratio=4, degrade=pool4, upsample=nearest, block=16)
    core = qnr_core(s["fused"], nearest(hsi), s["msi"], nearest(pool4(s["msi"])), block=16)
    torch.testing.assert_close(res.qnr, core.qnr, rtol=1e-13, atol=0)
    assert res.config["upsample"] == "user"
    with pytest.raises(ShapeError, match="degrade"):
        qnr(s["fused"], hsi, s["msi"], ratio=4, degrade=lambda t: F.avg_pool2d(t, 2), block=16)
    with pytest.raises(ShapeError, match="ratio"):
        qnr(s["fused"], hsi, s["msi"], ratio=2, degrade=pool4, block=16)
    with pytest.raises(InputError, match="ratio"):
        qnr(s["fused"], hsi, s["msi"], ratio=2.5, degrade=pool4, block=16)


def test_qnr_inputs_unmodified() -> None:
    s = _scene()
    hsi = pool4(s["truth"])
    saved = [t.clone() for t in (s["fused"], hsi, s["msi"])]
    qnr(s["fused"], hsi, s["msi"], ratio=4, degrade=pool4, block=16)
    consistency(s["fused"], hsi, s["msi"], degrade=pool4, spectral=s["srf"], data_range=1.0)
    for a, b in zip((s["fused"], hsi, s["msi"]), saved, strict=True):
        assert torch.equal(a, b)


def test_consistency_indices() -> None:
    s = _scene()
    hsi = pool4(s["truth"])
    exact = consistency(s["truth"], hsi, s["msi"], degrade=pool4, spectral=s["srf"], data_range=1.0)
    assert float(exact["spatial_mae"]) == 0.0
    assert math.isinf(float(exact["spectral_psnr"]))
    out = consistency(s["fused"], hsi, s["msi"], degrade=pool4, spectral=s["srf"], data_range=1.0)
    assert set(out) == {"spatial_psnr", "spectral_psnr", "spatial_mae", "spectral_mae"}
    torch.testing.assert_close(out["spatial_psnr"], psnr(pool4(s["fused"]), hsi, data_range=1.0))
    rf = torch.einsum("ml,blhw->bmhw", s["srf"], s["fused"])
    torch.testing.assert_close(out["spectral_psnr"], psnr(rf, s["msi"], data_range=1.0))
    # callable and matrix forms of R agree; NumPy matrix accepted
    out2 = consistency(
        s["fused"],
        hsi,
        s["msi"],
        degrade=pool4,
        spectral=lambda t: torch.einsum("ml,blhw->bmhw", s["srf"], t),
        data_range=1.0,
    )
    torch.testing.assert_close(out2["spectral_mae"], out["spectral_mae"])
    out3 = consistency(
        s["fused"].numpy(),
        hsi.numpy(),
        s["msi"].numpy(),
        degrade=pool4,
        spectral=s["srf"].numpy(),
        data_range="ref_band_max",
    )
    assert out3["spectral_psnr"].shape == (1,)
    with pytest.raises(ShapeError):
        consistency(
            s["fused"], hsi, s["msi"], degrade=pool4, spectral=s["srf"][:, :3], data_range=1.0
        )


def test_float32_operator_is_accepted() -> None:
    """An operator with float32 buffers (like a physics module) rejects float64 input."""
    s = _scene()
    hsi = pool4(s["truth"])
    weight = torch.full((4, 1, 4, 4), 1 / 16, dtype=torch.float32)

    def conv_degrade(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, weight[: t.shape[1]], stride=4, groups=t.shape[1])

    with pytest.raises(RuntimeError):
        conv_degrade(s["msi"])  # float64 in, float32 weights
    res = qnr(s["fused"], hsi, s["msi"], ratio=4, degrade=conv_degrade, block=16)
    ref = qnr(s["fused"], hsi, s["msi"], ratio=4, degrade=pool4, block=16)
    torch.testing.assert_close(res.qnr, ref.qnr, rtol=1e-5, atol=1e-6)
