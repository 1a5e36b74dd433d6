"""Named metric sets and evaluate() (metrics.md §3)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from hyperfuse.errors import InputError
from hyperfuse.metrics import (
    HIGHER_IS_BETTER,
    IDEAL_VALUES,
    METRIC_SETS,
    Metric,
    cc,
    ergas,
    evaluate,
    get_metric_set,
    psnr,
    q2n,
    rmse,
    sam,
    ssim,
    uiqi,
)

MEANS = ("psnr", "rmse", "sam", "ergas", "ssim", "uiqi", "cc", "q2n")


def v2(h: int = 16, w: int = 16, bands: int = 4) -> dict[str, np.ndarray]:
    i, j, b = np.meshgrid(np.arange(h), np.arange(w), np.arange(bands), indexing="ij")
    x = 0.5 + 0.4 * np.sin(0.7 * i + 0.3 * (b + 1) * j + b)
    mild = x + 0.03 * np.cos(1.3 * i - 0.9 * j + 2 * b)
    strong = (
        0.6 * x + 0.3 * np.roll(x, -1, axis=2) + 0.05 + 0.05 * np.cos(1.3 * i - 0.9 * j + 2 * b)
    )

    def chw(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(a, -1, 0))

    return {"ref": chw(x), "mild": chw(mild), "strong": chw(strong)}


def batch() -> tuple[np.ndarray, np.ndarray]:
    d = v2()
    return np.stack([d["mild"], d["strong"]]), np.stack([d["ref"], d["ref"]])


def test_result_layout_and_json() -> None:
    est, ref = batch()
    out = evaluate(est, ref, ratio=4)
    for k in (*MEANS, "conventions", "per_image"):
        assert k in out
    for k in MEANS:
        assert isinstance(out[k], float)
        assert len(out["per_image"][k]) == 2
        assert out[k] == pytest.approx(float(np.mean(out["per_image"][k])), rel=1e-15)
    assert out["n_images"] == 2
    assert out["per_image"]["sam_excluded_pixels"] == [0, 0]
    text = json.dumps(out)
    assert json.loads(text)["conventions"]["metric_set"] == "hyperfuse"


def test_hyperfuse_set_matches_direct_calls_and_spec_values() -> None:
    est, ref = batch()
    out = evaluate(torch.from_numpy(est), torch.from_numpy(ref), ratio=4)
    direct = {
        "psnr": psnr(est, ref, data_range=1.0),
        "rmse": rmse(est, ref),
        "sam": sam(est, ref),
        "ergas": ergas(est, ref, ratio=4),
        "ssim": ssim(est, ref, data_range=1.0),
        "uiqi": uiqi(est, ref),
        "cc": cc(est, ref),
        "q2n": q2n(est, ref),
    }
    for k, v in direct.items():
        assert out["per_image"][k] == v.tolist(), k
    # metrics.md V2 (mild, strong)
    assert out["per_image"]["psnr"] == pytest.approx([33.463272, 15.870524], rel=1e-6)
    assert out["per_image"]["ergas"] == pytest.approx([1.076242, 8.167269], rel=1e-6)
    assert out["per_image"]["ssim"] == pytest.approx([0.996770, 0.650925], rel=1e-6)
    conv = out["conventions"]
    assert conv["data_range"] == 1.0 and conv["crop"] == 0 and conv["ratio"] == 4.0
    assert conv["clip"] is None
    assert conv["metrics"]["ssim"]["window"] == "gaussian11"
    assert conv["metrics"]["ssim"]["data_range"] == 1.0
    assert conv["metrics"]["sam"] == {
        "unit": "deg",
        "zero": "exclude",
        "crop": 0,
        "ratio": 4,
        "clip": None,
    }
    assert conv["metrics"]["ergas"]["mean_from"] == "reference"
    assert conv["metrics"]["uiqi"]["block"] == 8 and conv["metrics"]["uiqi"]["mode"] == "sliding"
    assert conv["metrics"]["q2n"]["block"] == 32 and conv["metrics"]["q2n"]["uint16_scale"] is None
    assert conv["higher_is_better"]["sam"] is False


def test_crop_is_applied_and_recorded() -> None:
    est, ref = batch()
    out = evaluate(est, ref, ratio=4, crop=2)
    assert out["conventions"]["crop"] == 2
    assert out["per_image"]["sam"] == sam(est, ref, crop=2).tolist()
    out = evaluate(est[:1], ref[:1], ratio=2, crop="ratio")
    assert out["conventions"]["metrics"]["psnr"]["crop"] == "ratio"
    assert out["psnr"] == float(psnr(est[:1], ref[:1], data_range=1.0, crop=2))


def test_yokoya2017_set() -> None:
    est, ref = batch()
    out = evaluate(est, ref, ratio=4, metric_set="yokoya2017")
    assert out["per_image"]["psnr"] == pytest.approx([32.547093, 14.954345], rel=1e-6)
    assert out["per_image"]["ergas"] == pytest.approx([1.076103, 8.151550], rel=1e-6)
    conv = out["conventions"]
    assert conv["data_range"] == "ref_band_max"
    assert conv["metrics"]["ergas"]["mean_from"] == "estimate"
    assert "ssim" in conv["notes"] and "uiqi" in conv["notes"]
    var = out["variants"]["crop_ratio"]
    for k in ("cc", "sam", "rmse", "ergas"):
        assert var["conventions"][k]["crop"] == "ratio"
    assert var["per_image"]["sam"] == sam(est, ref, crop=4).tolist()
    assert var["ergas"] == pytest.approx(
        float(ergas(est, ref, ratio=4, crop=4, mean_from="estimate").mean()), rel=1e-15
    )
    # mild pair: V2 crop=4 values
    assert var["per_image"]["cc"][0] == pytest.approx(0.997246, rel=1e-6)
    assert var["per_image"]["rmse"][0] == pytest.approx(0.02118006, rel=1e-6)
    json.dumps(out)
    # Q2n with the uint16 cast of integer-scaled data
    scaled = evaluate(est, ref, ratio=4, metric_set="yokoya2017", uint16_scale=10000.0)
    assert scaled["conventions"]["metrics"]["q2n"]["uint16_scale"] == 10000.0
    assert scaled["per_image"]["q2n"] == q2n(est, ref, uint16_scale=10000.0).tolist()
    with pytest.raises(InputError, match="yokoya2017"):
        evaluate(est, ref, ratio=4, uint16_scale=10000.0)
    with pytest.raises(InputError, match="fixes data_range"):
        evaluate(est, ref, ratio=4, metric_set="yokoya2017", data_range=1.0)


def test_mossfuse_reference_set() -> None:
    est, ref = batch()
    est = est.copy()
    est[0, 0, :2, :2] = 1.4  # out of range: the set clips the estimate to [0, 1]
    out = evaluate(est, ref, ratio=32, metric_set="mossfuse_reference")
    clipped = np.clip(est, 0, 1)
    assert out["per_image"]["psnr"] == psnr(clipped, ref, data_range=1.0).tolist()
    assert (
        out["per_image"]["ssim"] == ssim(clipped, ref, data_range=1.0, window="uniform7").tolist()
    )
    assert out["per_image"]["ergas"] == ergas(clipped, ref, variant="mossfuse_reference").tolist()
    assert out["per_image"]["sam"] == sam(np.clip(est, 1e-5, 1), ref, zero="nan").tolist()
    conv = out["conventions"]
    assert conv["clip"] == [0.0, 1.0]
    assert conv["metrics"]["sam"]["clip"] == [1e-5, 1.0]
    assert conv["metrics"]["sam"]["zero"] == "nan"
    assert conv["metrics"]["ergas"]["variant"] == "mossfuse_reference"
    assert "not comparable" in conv["notes"]["uiqi"]
    # V2 mild: ERGAS reference variant 0.120327 (ratio ignored)
    d = v2()
    one = evaluate(d["mild"], d["ref"], ratio=4, metric_set="mossfuse_reference")
    assert one["ergas"] == pytest.approx(0.120327, abs=5e-7)
    assert one["ssim"] == pytest.approx(0.997155, rel=1e-6)
    with pytest.raises(InputError, match="fixes data_range"):
        evaluate(est, ref, ratio=32, metric_set="mossfuse_reference", data_range=2.0)


def test_mossfuse_reference_on_v1() -> None:
    """V1 with the set's options (the 2x2 image is too small for its SSIM window)."""
    ref = np.moveaxis(
        np.array([[[0.2, 0.4, 0.6], [0.5, 0.5, 0.5]], [[0.9, 0.1, 0.3], [0.0, 0.0, 0.0]]]), -1, 0
    )
    est = np.moveaxis(
        np.array([[[0.25, 0.35, 0.6], [0.5, 0.6, 0.4]], [[0.8, 0.1, 0.35], [0.1, 0.0, 0.05]]]),
        -1,
        0,
    )
    opts = get_metric_set("mossfuse_reference")["options"]
    sam_opts = dict(opts["sam"])
    clip = tuple(sam_opts.pop("clip"))
    assert math.isnan(float(sam(est, ref, clip=clip, **sam_opts)))  # type: ignore[arg-type]
    e = ergas(np.clip(est, 0, 1), ref, **opts["ergas"])
    assert float(e) == pytest.approx(0.531637, rel=1e-6)
    assert float(psnr(np.clip(est, 0, 1), ref, data_range=1.0)) == pytest.approx(
        23.936654, rel=1e-6
    )


def test_identity_gives_ideal_values_in_every_set() -> None:
    _, ref = batch()
    for name in METRIC_SETS:
        out = evaluate(ref, ref, ratio=4, metric_set=name)  # type: ignore[arg-type]
        for k in MEANS:
            assert out[k] == pytest.approx(IDEAL_VALUES[k], abs=1e-9), (name, k)


def test_set_definitions_and_flags() -> None:
    assert set(METRIC_SETS) == {"hyperfuse", "yokoya2017", "mossfuse_reference"}
    for k in MEANS:
        assert k in HIGHER_IS_BETTER and k in IDEAL_VALUES
    assert HIGHER_IS_BETTER["qnr"] and not HIGHER_IS_BETTER["d_lambda"]
    json.dumps(METRIC_SETS)
    s = get_metric_set("hyperfuse")
    s["options"]["psnr"]["aggregate"] = "cube"  # a copy: the registry is unchanged
    assert METRIC_SETS["hyperfuse"]["options"]["psnr"]["aggregate"] == "band_mean"
    with pytest.raises(InputError, match="unknown metric set"):
        get_metric_set("wald")  # type: ignore[arg-type]


def test_metric_module_wraps_function() -> None:
    est, ref = batch()
    m = Metric("ssim", data_range=1.0, window="uniform7")
    assert isinstance(m, torch.nn.Module)
    assert torch.equal(m(est, ref), ssim(est, ref, data_range=1.0, window="uniform7"))
    assert m.higher_is_better and "uniform7" in repr(m)
    with pytest.raises(InputError):
        Metric("lpips")


def test_evaluate_leaves_inputs_unmodified() -> None:
    est, ref = batch()
    te, tr = torch.from_numpy(est * 1.2), torch.from_numpy(ref)
    e0, r0 = te.clone(), tr.clone()
    evaluate(te, tr, ratio=4, metric_set="mossfuse_reference")
    assert torch.equal(te, e0) and torch.equal(tr, r0)
