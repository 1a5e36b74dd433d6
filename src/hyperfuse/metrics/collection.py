"""Named metric sets and one-call evaluation (``metrics.md`` §3).

A result always records which conventions produced it: :func:`evaluate` returns
the dataset means, the per-image values and a ``"conventions"`` record of every
option used, all JSON-serialisable.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any, Literal, TypeAlias

import torch

from ..errors import InputError
from .functional import (
    ArrayLike,
    Crop,
    DataRange,
    _as_float64,
    cc,
    ergas,
    mae,
    psnr,
    q2n,
    rmse,
    sam,
    ssim,
    uiqi,
)

__all__ = [
    "MetricSetName",
    "METRICS",
    "METRIC_SETS",
    "HIGHER_IS_BETTER",
    "IDEAL_VALUES",
    "get_metric_set",
    "evaluate",
    "Metric",
]

MetricSetName: TypeAlias = Literal["hyperfuse", "yokoya2017", "mossfuse_reference"]

#: Full-reference metric functions by name.
METRICS: dict[str, Callable[..., torch.Tensor]] = {
    "psnr": psnr,
    "rmse": rmse,
    "mae": mae,
    "sam": sam,
    "ergas": ergas,
    "ssim": ssim,
    "uiqi": uiqi,
    "cc": cc,
    "q2n": q2n,
}

#: Direction of improvement of every metric and index.
HIGHER_IS_BETTER: dict[str, bool] = {
    "psnr": True,
    "rmse": False,
    "mae": False,
    "sam": False,
    "ergas": False,
    "ssim": True,
    "uiqi": True,
    "cc": True,
    "q2n": True,
    "d_lambda": False,
    "d_s": False,
    "qnr": True,
}

#: Value reached by a perfect estimate.
IDEAL_VALUES: dict[str, float] = {
    "psnr": math.inf,
    "rmse": 0.0,
    "mae": 0.0,
    "sam": 0.0,
    "ergas": 0.0,
    "ssim": 1.0,
    "uiqi": 1.0,
    "cc": 1.0,
    "q2n": 1.0,
    "d_lambda": 0.0,
    "d_s": 0.0,
    "qnr": 1.0,
}

_REPORTED = ("psnr", "rmse", "sam", "ergas", "ssim", "uiqi", "cc", "q2n")

#: Declarative definition of each named set (``metrics.md`` §3). ``"peak"`` in
#: a ``data_range`` slot means the set's peak (``data_range`` of :func:`evaluate`).
METRIC_SETS: dict[str, dict[str, Any]] = {
    "hyperfuse": {
        "description": "hyperfuse default: peak from the preset, true ratio, Wald ERGAS",
        "data_range": 1.0,
        "data_range_fixed": False,
        "clip": None,
        "options": {
            "psnr": {"aggregate": "band_mean", "data_range": "peak"},
            "rmse": {"scale": 1.0},
            "sam": {"unit": "deg", "zero": "exclude"},
            "ergas": {"mean_from": "reference", "variant": "standard"},
            "ssim": {"window": "gaussian11", "data_range": "peak"},
            "uiqi": {"block": 8, "mode": "sliding"},
            "cc": {"mode": "band_mean"},
            "q2n": {"block": 32, "step": 32, "uint16_scale": None},
        },
        "notes": {},
        "variants": {},
    },
    "yokoya2017": {
        "description": "Yokoya et al. (2017) review evaluation code",
        "data_range": "ref_band_max",
        "data_range_fixed": True,
        "clip": None,
        "options": {
            "psnr": {"aggregate": "band_mean", "data_range": "peak"},
            "rmse": {"scale": 1.0},
            "sam": {"unit": "deg", "zero": "exclude"},
            "ergas": {"mean_from": "estimate", "variant": "standard"},
            "ssim": {"window": "gaussian11", "data_range": "peak"},
            "uiqi": {"block": 8, "mode": "sliding"},
            "cc": {"mode": "band_mean"},
            "q2n": {"block": 32, "step": 32, "uint16_scale": "user"},
        },
        "notes": {
            "ssim": "not part of yokoya2017; hyperfuse default window with D = ref_band_max",
            "uiqi": "not part of yokoya2017; hyperfuse default (sliding 8)",
        },
        "variants": {"crop_ratio": {"metrics": ["cc", "sam", "rmse", "ergas"], "crop": "ratio"}},
    },
    "mossfuse_reference": {
        "description": "MossFuse reference test script (estimate clipped to [0, 1], peak 1)",
        "data_range": 1.0,
        "data_range_fixed": True,
        "clip": [0.0, 1.0],
        "options": {
            "psnr": {"aggregate": "band_mean", "data_range": "peak"},
            "rmse": {"scale": 1.0},
            "sam": {"unit": "deg", "zero": "nan", "clip": [1e-5, 1.0]},
            "ergas": {"mean_from": "reference", "variant": "mossfuse_reference"},
            "ssim": {"window": "uniform7", "data_range": "peak"},
            "uiqi": {"block": 8, "mode": "sliding"},
            "cc": {"mode": "band_mean"},
            "q2n": {"block": 32, "step": 32, "uint16_scale": None},
        },
        "notes": {
            "sam": "no zero exclusion: NaN if a reference pixel is all zero",
            "uiqi": "sliding-8 UIQI; the sewar uqi of the MossFuse script is not reproduced "
            "(not comparable)",
            "cc": "hyperfuse default (band mean)",
            "rmse": "hyperfuse default",
            "q2n": "not part of the reference script; hyperfuse default 32/32",
        },
        "variants": {},
    },
}


def get_metric_set(name: MetricSetName) -> dict[str, Any]:
    """Return a copy of the definition of a named metric set.

    Parameters
    ----------
    name : {"hyperfuse", "yokoya2017", "mossfuse_reference"}
        Set name.

    Returns
    -------
    dict
        JSON-serialisable definition (options of every metric, clip, peak, notes).

    Notes
    -----
    ``"peak"`` in a ``data_range`` slot stands for the set's peak, and
    ``uint16_scale="user"`` for the value passed to :func:`evaluate`.

    Examples
    --------
    >>> get_metric_set("mossfuse_reference")["options"]["ssim"]["window"]
    'uniform7'
    """
    if name not in METRIC_SETS:
        raise InputError(
            f"unknown metric set {name!r}; choose one of {', '.join(sorted(METRIC_SETS))}"
        )
    return copy.deepcopy(METRIC_SETS[name])


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else math.nan


def evaluate(
    x_hat: ArrayLike,
    ref: ArrayLike,
    *,
    ratio: float,
    metric_set: MetricSetName = "hyperfuse",
    data_range: DataRange | None = None,
    crop: Crop = 0,
    uint16_scale: float | None = None,
) -> dict[str, Any]:
    """Score a batch of estimates with a named metric set.

    Parameters
    ----------
    x_hat : Tensor or ndarray of shape (B, C, H, W) or (C, H, W)
        Estimates.
    ref : Tensor or ndarray, same shape as ``x_hat``
        References.
    ratio : float
        Resolution ratio r (ERGAS and ``crop="ratio"``).
    metric_set : {"hyperfuse", "yokoya2017", "mossfuse_reference"}
        Named conventions (``metrics.md`` §3).
    data_range : float or {"ref_band_max", "ref_global_max"}, optional
        PSNR peak and SSIM D. ``None`` uses the set's peak: 1.0 for
        ``"hyperfuse"`` (the preset value) and ``"mossfuse_reference"``,
        ``"ref_band_max"`` for ``"yokoya2017"``. The last two sets fix the peak,
        so a different value raises.
    crop : int or "ratio"
        Border excluded from every metric.
    uint16_scale : float, optional
        Q2n uint16 cast (``yokoya2017`` with integer-scaled data, e.g. 10000).

    Returns
    -------
    dict
        ``"psnr"``, ``"rmse"``, ``"sam"``, ``"ergas"``, ``"ssim"``, ``"uiqi"``,
        ``"cc"``, ``"q2n"``: arithmetic means of the per-image values;
        ``"per_image"``: lists of per-image values (plus SAM's excluded pixel
        counts); ``"conventions"``: every option used; ``"variants"``: extra
        conventions of the set (e.g. ``crop="ratio"`` for ``yokoya2017``);
        ``"n_images"``. Everything is JSON-serialisable (``inf``/``nan`` as floats).

    Raises
    ------
    InputError
        For an unknown set, or options that contradict the set.
    ShapeError
        If the images are smaller than the set's SSIM window (11 or 7 pixels).

    Notes
    -----
    The dataset score of every metric is :math:`\\frac{1}{B}\\sum_i m(\\hat X_i, X_i)`.

    Examples
    --------
    >>> import torch
    >>> ref = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> out = evaluate(ref, ref, ratio=4)
    >>> out["psnr"], out["sam"], out["ssim"], out["conventions"]["metric_set"]
    (inf, 0.0, 1.0, 'hyperfuse')
    """
    spec = get_metric_set(metric_set)
    if data_range is None:
        peak: DataRange = spec["data_range"]
    else:
        peak = data_range
        if spec["data_range_fixed"] and peak != spec["data_range"]:
            raise InputError(
                f"metric set {metric_set!r} fixes data_range={spec['data_range']!r}, got "
                f"{data_range!r}; omit data_range or use metric_set='hyperfuse'"
            )
    if uint16_scale is not None and spec["options"]["q2n"]["uint16_scale"] != "user":
        raise InputError(
            f"uint16_scale belongs to the yokoya2017 set, not {metric_set!r}; "
            "omit it or use metric_set='yokoya2017'"
        )
    xh = _as_float64(x_hat, "x_hat")
    xr = _as_float64(ref, "ref")
    set_clip = spec["clip"]
    per_image: dict[str, list[float]] = {}
    used: dict[str, dict[str, Any]] = {}

    def _options(name: str) -> dict[str, Any]:
        opts = dict(spec["options"][name])
        for k, v in list(opts.items()):
            if v == "peak":
                opts[k] = peak
        if name == "q2n":
            opts["uint16_scale"] = uint16_scale
        if name == "ergas":
            opts["ratio"] = ratio
        return opts

    def _run(name: str, crop_: Crop) -> tuple[list[float], dict[str, Any], list[int] | None]:
        opts = _options(name)
        clip = opts.pop("clip", None)
        extra: dict[str, Any] = {"crop": crop_}
        if name != "ergas":
            extra["ratio"] = ratio
        call_clip = set_clip
        if clip is not None:
            # clipping to the set range and then to the metric's range is one clip to
            # the intersection
            lo, hi = clip
            if set_clip is not None:
                lo, hi = max(lo, set_clip[0]), min(hi, set_clip[1])
            call_clip = [lo, hi]
        fn = METRICS[name]
        excluded = None
        clip_arg = None if call_clip is None else (float(call_clip[0]), float(call_clip[1]))
        if name == "sam":
            val, exc = sam(xh, xr, clip=clip_arg, return_excluded=True, **opts, **extra)
            excluded = [int(v) for v in exc]
        else:
            val = fn(xh, xr, clip=clip_arg, **opts, **extra)
        record = {k: (list(v) if isinstance(v, tuple) else v) for k, v in {**opts, **extra}.items()}
        record["clip"] = None if call_clip is None else [float(call_clip[0]), float(call_clip[1])]
        return [float(v) for v in val], record, excluded

    result: dict[str, Any] = {}
    for name in _REPORTED:
        vals, record, excluded = _run(name, crop)
        per_image[name] = vals
        used[name] = record
        result[name] = _mean(vals)
        if excluded is not None:
            per_image["sam_excluded_pixels"] = excluded
    variants: dict[str, Any] = {}
    for vname, vdef in spec["variants"].items():
        vres: dict[str, Any] = {"per_image": {}, "conventions": {}}
        for name in vdef["metrics"]:
            vals, record, _ = _run(name, vdef["crop"])
            vres[name] = _mean(vals)
            vres["per_image"][name] = vals
            vres["conventions"][name] = record
        variants[vname] = vres
    result["per_image"] = per_image
    result["conventions"] = {
        "metric_set": metric_set,
        "description": spec["description"],
        "data_range": peak,
        "crop": crop,
        "ratio": float(ratio),
        "clip": set_clip,
        "aggregation": "arithmetic mean of per-image values",
        "computation": "float64",
        "metrics": used,
        "notes": spec["notes"],
        "higher_is_better": {k: HIGHER_IS_BETTER[k] for k in _REPORTED},
    }
    result["variants"] = variants
    result["n_images"] = int(xh.shape[0])
    return result


class Metric(torch.nn.Module):
    """Module wrapper around one metric function with fixed options.

    Parameters
    ----------
    name : str
        One of :data:`METRICS` (``"psnr"``, ``"sam"``, ...).
    **options
        Keyword options passed to the function on every call.

    Notes
    -----
    ``forward(x_hat, ref)`` returns the function's (B,) float64 tensor;
    ``higher_is_better`` gives the direction of improvement.

    Examples
    --------
    >>> import torch
    >>> m = Metric("psnr", data_range=1.0)
    >>> ref = torch.full((1, 1, 4, 4), 0.5, dtype=torch.float64)
    >>> round(float(m(ref + 0.1, ref)), 6), m.higher_is_better
    (20.0, True)
    """

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__()
        if name not in METRICS:
            raise InputError(f"unknown metric {name!r}; choose one of {', '.join(METRICS)}")
        self.name = name
        self.options = dict(options)
        self.higher_is_better = HIGHER_IS_BETTER[name]

    def forward(self, x_hat: ArrayLike, ref: ArrayLike) -> torch.Tensor:
        """Return the metric of each image, shape (B,)."""
        return METRICS[self.name](x_hat, ref, **self.options)

    def extra_repr(self) -> str:
        """Options shown in ``repr``."""
        return ", ".join([repr(self.name)] + [f"{k}={v!r}" for k, v in self.options.items()])
