"""Quality metrics: full-reference (``functional``), no-reference (``noref``) and
named metric sets with one-call evaluation (``collection``).

Every metric takes ``(x_hat, ref)`` (estimate first), computes in float64 and
returns one value per image, shape (B,). See ``metrics.md`` for the exact
definitions and conventions.
"""

from __future__ import annotations

from .collection import (
    HIGHER_IS_BETTER,
    IDEAL_VALUES,
    METRIC_SETS,
    METRICS,
    Metric,
    evaluate,
    get_metric_set,
)
from .functional import (
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
from .noref import (
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

__all__ = [
    "psnr",
    "rmse",
    "mae",
    "sam",
    "sam_map",
    "ergas",
    "cc",
    "ssim",
    "uiqi",
    "q2n",
    "hypercomplex_product",
    "QNRResult",
    "qbar",
    "d_lambda_core",
    "d_s_core",
    "qnr_core",
    "d_lambda",
    "d_s",
    "qnr",
    "bicubic_upsample",
    "consistency",
    "METRICS",
    "METRIC_SETS",
    "HIGHER_IS_BETTER",
    "IDEAL_VALUES",
    "get_metric_set",
    "evaluate",
    "Metric",
]
