"""Full-reference quality metrics (``metrics.md`` §1).

Every metric has the signature ``metric(x_hat, ref, *, ...)``: the estimate comes
first and the reference second. Inputs are torch tensors or NumPy arrays of shape
(B, C, H, W), or (C, H, W) for a single image. Computation is in float64 and the
result is a float64 tensor of shape (B,), one value per image. Inputs are never
modified.

Order of operations, for every metric:

1. ``crop`` the border (``c`` pixels from each side; ``crop="ratio"`` means
   ``c = ratio``);
2. optionally ``clip`` the estimate (the reference is never altered);
3. compute.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import Literal, TypeAlias, overload

import numpy as np
import torch
import torch.nn.functional as F

from .._validation import check_choice
from ..errors import InputError, ShapeError

__all__ = [
    "ArrayLike",
    "DataRange",
    "Crop",
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
]

ArrayLike: TypeAlias = torch.Tensor | np.ndarray
DataRange: TypeAlias = float | Literal["ref_band_max", "ref_global_max"]
Crop: TypeAlias = int | Literal["ratio"]
Clip: TypeAlias = tuple[float, float] | None

#: Pixels per plane processed at once by the windowed metrics (cache-sized strips).
_STRIP_PIXELS = 1 << 15

#: float64 machine epsilon, used by Q2n for zero-variance blocks (MATLAB ``eps``).
_EPS64 = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------- helpers


def _as_float64(a: ArrayLike, name: str) -> torch.Tensor:
    """Return ``a`` as a float64 (B, C, H, W) tensor without touching its data."""
    if isinstance(a, torch.Tensor):
        if a.is_complex():
            raise InputError(f"{name} is complex ({a.dtype}); pass real-valued data")
        t = a.detach().to(torch.float64)
    else:
        arr = np.asarray(a)
        if arr.dtype.kind not in "biuf":
            raise InputError(f"{name} has dtype {arr.dtype}; pass a real numeric array")
        t = torch.from_numpy(np.array(arr, dtype=np.float64, copy=True))
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4:
        raise ShapeError(
            f"{name} must have shape (B, C, H, W) or (C, H, W), got {tuple(t.shape)}; "
            "add the missing axes"
        )
    if t.numel() == 0:
        raise ShapeError(f"{name} is empty (shape {tuple(t.shape)}); pass a non-empty cube")
    return t


def _crop_width(crop: Crop, ratio: float | None) -> int:
    if isinstance(crop, str):
        if crop != "ratio":
            raise InputError(f"crop must be an int or 'ratio', got {crop!r}; pass e.g. crop=4")
        if ratio is None:
            raise InputError("crop='ratio' needs the resolution ratio; pass ratio=r as well")
        r = float(ratio)
        if r != int(r) or r < 0:
            raise InputError(f"crop='ratio' needs an integer ratio, got {ratio!r}; pass crop=int")
        return int(r)
    if isinstance(crop, bool) or not isinstance(crop, int | np.integer) or crop < 0:
        raise InputError(f"crop must be a non-negative int or 'ratio', got {crop!r}")
    return int(crop)


def _crop(t: torch.Tensor, c: int) -> torch.Tensor:
    if c == 0:
        return t
    h, w = t.shape[-2:]
    if 2 * c >= h or 2 * c >= w:
        raise ShapeError(f"crop={c} removes the whole {h}x{w} image; pass a smaller crop")
    return t[..., c : h - c, c : w - c]


def _prepare(
    x_hat: ArrayLike,
    ref: ArrayLike,
    crop: Crop,
    ratio: float | None,
    clip: Clip,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert, check shapes, crop, then clip the estimate."""
    xh = _as_float64(x_hat, "x_hat")
    xr = _as_float64(ref, "ref")
    if xh.shape != xr.shape:
        raise ShapeError(
            f"x_hat has shape {tuple(xh.shape)} but ref has {tuple(xr.shape)}; "
            "pass an estimate and a reference of the same shape"
        )
    xr = xr.to(xh.device)
    c = _crop_width(crop, ratio)
    xh, xr = _crop(xh, c), _crop(xr, c)
    if clip is not None:
        lo, hi = (float(v) for v in clip)
        if not lo <= hi:
            raise InputError(f"clip must be (low, high) with low <= high, got {clip!r}")
        xh = xh.clamp(lo, hi)
    return xh, xr


def _band_mse(xh: torch.Tensor, xr: torch.Tensor) -> torch.Tensor:
    return ((xh - xr) ** 2).mean(dim=(-2, -1))  # (B, C)


def _peak(xr: torch.Tensor, data_range: DataRange) -> torch.Tensor:
    """Per-band peak, shape (B, C)."""
    b, c = xr.shape[:2]
    if isinstance(data_range, str):
        if data_range == "ref_band_max":
            return xr.amax(dim=(-2, -1))
        if data_range == "ref_global_max":
            return xr.amax(dim=(1, 2, 3))[:, None].expand(b, c)
        raise InputError(
            f"data_range must be a float, 'ref_band_max' or 'ref_global_max', got {data_range!r}"
        )
    if isinstance(data_range, bool) or not isinstance(data_range, int | float | np.number):
        raise InputError(
            f"data_range must be a float, 'ref_band_max' or 'ref_global_max', got {data_range!r}; "
            "pass e.g. data_range=1.0 for data in [0, 1]"
        )
    v = float(data_range)
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"data_range must be a positive finite number, got {data_range!r}")
    return torch.full((b, c), v, dtype=torch.float64, device=xr.device)


def _is_const(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """True where ``x`` is exactly constant along ``dims`` (robust zero variance)."""
    return x.amax(dim=dims) == x.amin(dim=dims)


# --------------------------------------------------------------------------- PSNR / RMSE


def psnr(
    x_hat: ArrayLike,
    ref: ArrayLike,
    *,
    data_range: DataRange,
    aggregate: Literal["band_mean", "cube"] = "band_mean",
    crop: Crop = 0,
    ratio: float | None = None,
    clip: Clip = None,
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, averaged over bands.

    Parameters
    ----------
    x_hat : Tensor or ndarray of shape (B, C, H, W) or (C, H, W)
        Estimate.
    ref : Tensor or ndarray, same shape as ``x_hat``
        Reference.
    data_range : float or {"ref_band_max", "ref_global_max"}
        Peak value (required). A float is used for every band;
        ``"ref_band_max"`` uses the maximum of each reference band and
        ``"ref_global_max"`` the maximum of the whole reference cube.
    aggregate : {"band_mean", "cube"}
        ``"band_mean"`` averages per-band PSNRs; ``"cube"`` computes one MSE
        over all values (only with a float or ``"ref_global_max"`` peak).
    crop : int or "ratio"
        Border width removed from each side before computing.
    ratio : float, optional
        Resolution ratio, needed only for ``crop="ratio"``.
    clip : (float, float), optional
        Clip the estimate to this range (the reference is never altered).

    Returns
    -------
    Tensor of shape (B,), float64
        PSNR of each image in dB; ``inf`` when a band has zero error.

    Notes
    -----
    .. math:: \\mathrm{PSNR} = \\frac{1}{L}\\sum_b 10\\log_{10}
              \\frac{\\mathrm{peak}_b^2}{\\mathrm{MSE}_b}

    A band with :math:`\\mathrm{MSE}_b = 0` gives :math:`+\\infty` and no cap is applied.

    Examples
    --------
    >>> import torch
    >>> ref = torch.full((1, 2, 4, 4), 0.5, dtype=torch.float64)
    >>> round(float(psnr(ref + 0.1, ref, data_range=1.0)), 6)
    20.0
    >>> psnr(ref, ref, data_range=1.0)
    tensor([inf], dtype=torch.float64)
    """
    check_choice("aggregate", aggregate, ("band_mean", "cube"))
    xh, xr = _prepare(x_hat, ref, crop, ratio, clip)
    peak = _peak(xr, data_range)
    if aggregate == "cube":
        if data_range == "ref_band_max":
            raise InputError(
                "aggregate='cube' has no single peak with data_range='ref_band_max'; "
                "use aggregate='band_mean' or data_range='ref_global_max'"
            )
        mse = ((xh - xr) ** 2).mean(dim=(1, 2, 3))
        p = peak[:, 0]
        val = 10.0 * torch.log10(p**2 / mse)
        return torch.where(mse == 0, torch.full_like(val, math.inf), val)
    mse = _band_mse(xh, xr)
    val = 10.0 * torch.log10(peak**2 / mse)
    val = torch.where(mse == 0, torch.full_like(val, math.inf), val)
    return val.mean(dim=1)


def rmse(
    x_hat: ArrayLike,
    ref: ArrayLike,
    *,
    scale: float = 1.0,
    crop: Crop = 0,
    ratio: float | None = None,
    clip: Clip = None,
) -> torch.Tensor:
    """Root-mean-square error over all bands and pixels.

    Parameters
    ----------
    x_hat : Tensor or ndarray of shape (B, C, H, W) or (C, H, W)
        Estimate.
    ref : Tensor or ndarray, same shape as ``x_hat``
        Reference.
    scale : float
        Reported value is ``scale * RMSE`` (e.g. 255, or 10000 for reflectance x 1e4).
    crop, ratio, clip
        As in :func:`psnr`.

    Returns
    -------
    Tensor of shape (B,), float64

    Notes
    -----
    .. math:: \\mathrm{RMSE} = s\\sqrt{\\frac{1}{LP}\\sum_{b,p}(x_b(p)-\\hat x_b(p))^2}

    Examples
    --------
    >>> import torch
    >>> ref = torch.zeros(1, 1, 2, 2)
    >>> rmse(ref + 0.5, ref)
    tensor([0.5000], dtype=torch.float64)
    >>> rmse(ref + 0.5, ref, scale=255.0)
    tensor([127.5000], dtype=torch.float64)
    """
    xh, xr = _prepare(x_hat, ref, crop, ratio, clip)
    return float(scale) * ((xh - xr) ** 2).mean(dim=(1, 2, 3)).sqrt()


def mae(
    x_hat: ArrayLike,
    ref: ArrayLike,
    *,
    crop: Crop = 0,
    ratio: float | None = None,
    clip: Clip = None,
) -> torch.Tensor:
    """Mean absolute error over all bands and pixels.

    Parameters
    ----------
    x_hat : Tensor or ndarray of shape (B, C, H, W) or (C, H, W)
        Estimate.
    ref : Tensor or ndarray, same shape as ``x_hat``
        Reference.
    crop, ratio, clip
        As in :func:`psnr`.

    Returns
    -------
    Tensor of shape (B,), float64

    Notes
    -----
    .. math:: \\mathrm{MAE} = \\frac{1}{LP}\\sum_{b,p}|x_b(p)-\\hat x_b(p)|

    Examples
    --------
    >>> import torch
    >>> mae(torch.full((1, 1, 2, 2), 0.25), torch.zeros(1, 1, 2, 2))
    tensor([0.2500], dtype=torch.float64)
    """
    xh, xr = _prepare(x_hat, ref, crop, ratio, clip)
    return (xh - xr).abs().mean(dim=(1, 2, 3))


# --------------------------------------------------------------------------- SAM


def _sam_angles(
    xh: torch.Tensor, xr: torch.Tensor, unit: str, zero: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Angle map (B, H, W) and validity mask (B, H, W)."""
    check_choice("unit", unit, ("deg", "rad"))
    check_choice("zero", zero, ("exclude", "eps", "nan"))
    dot = (xh * xr).sum(dim=1)
    # sqrt(|x|^2 |y|^2) rather than |x| |y|: exactly |dot| for parallel spectra, so
    # SAM(x, x) = SAM(x, 2x) = 0 exactly (arccos is ill-conditioned near 1)
    den = (xh.pow(2).sum(dim=1) * xr.pow(2).sum(dim=1)).sqrt()
    valid = den > 0
    if zero == "exclude":
        cos = torch.where(valid, dot / torch.where(valid, den, torch.ones_like(den)), dot)
    elif zero == "eps":
        cos = dot / (den + 1e-12)
    else:  # "nan": propagate 0/0 like torchmetrics / deepinv
        cos = dot / den
    theta = torch.arccos(cos.clamp(-1.0, 1.0))
    if unit == "deg":
        theta = torch.rad2deg(theta)
    if zero == "exclude":
        theta = torch.where(valid, theta, torch.full_like(theta, math.nan))
    return theta, valid


def sam_map(
    x_hat: ArrayLike,
    ref: ArrayLike,
    *,
    unit: Literal["deg", "rad"] = "deg",
    zero: Literal["exclude", "eps", "nan"] = "exclude",
    crop: Crop = 0,
    ratio: float | None = None,
    clip: Clip = None,
) -> torch.Tensor:
    """Per-pixel spectral angle.

    Parameters
    ----------
    x_hat : Tensor or ndarray of shape (B, C, H, W) or (C, H, W)
        Estimate.
    ref : Tensor or ndarray, same shape as ``x_hat``
        Reference.
    unit : {"deg", "rad"}
        Angle unit.
    zero : {"exclude", "eps", "nan"}
        Zero-norm pixel handling, see :func:`sam`. With ``"exclude"`` the map
        holds NaN at those pixels.
    crop, ratio, clip
        As in :func:`psnr`.

    Returns
    -------
    Tensor of shape (B, H', W'), float64
        Angle at each (cropped) pixel.

    Notes
    -----
    .. math:: \\theta(p) = \\arccos\\,\\mathrm{clip}\\!\\left(
              \\frac{\\langle x(p), \\hat x(p)\\rangle}{\\|x(p)\\|\\,\\|\\hat x(p)\\|}, -1, 1\\right)

    Examples
    --------
    >>> import torch
    >>> ref = torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]])  # (C=2, H=1, W=2)
    >>> est = torch.tensor([[[0.0, 0.0]], [[1.0, 0.0]]])
    >>> sam_map(est, ref)
    tensor([[[90., nan]]], dtype=torch.float64)
    """
    xh, xr = _prepare(x_hat, ref, crop, ratio, clip)
    return _sam_angles(xh, xr, unit, zero)[0]


@overload
def sam(
    x_hat: ArrayLike,
    ref: ArrayLike,
    *,
    unit: Literal["deg", "rad"] = ...,
    zero: Literal["exclude", "eps", "nan"] = ...,
    crop: Crop = ...,
    ratio: float | None = ...,
    clip: Clip = ...,
    return_excluded: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def sam(
    x_hat: ArrayLike,
    ref: ArrayLike,
    *,
    unit: Literal["deg", "rad"] = ...,
    zero: Literal["exclude", "eps", "nan"] = ...,
    crop: Crop = ...,
    ratio: float | None = ...,
    clip: Clip = ...,
    return_excluded: Literal[True],
) -> tuple[torch.Tensor, torch.Tensor]: ...


def sam(
    x_hat: ArrayLike,
    ref: ArrayLike,
    *,
    unit: Literal["deg", "rad"] = "deg",
    zero: Literal["exclude", "eps", "nan"] = "exclude",
    crop: Crop = 0,
    ratio: float | None = None,
    clip: Clip = None,
    return_excluded: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Spectral angle mapper: mean spectral angle over the valid pixels.

    Parameters
    ----------
    x_hat : Tensor or ndarray of shape (B, C, H, W) or (C, H, W)
        Estimate.
    ref : Tensor or ndarray, same shape as ``x_hat``
        Reference.
    unit : {"deg", "rad"}
        Degrees (default) or radians (as torchmetrics, deepinv and sewar).
    zero : {"exclude", "eps", "nan"}
        ``"exclude"`` (default) drops pixels with
        :math:`\\|x(p)\\|\\,\\|\\hat x(p)\\| = 0` from the mean (NaN with a
        warning if none is left); ``"eps"`` adds 1e-12 to the denominator so
        that such pixels count as 90 degrees; ``"nan"`` propagates NaN
        (torchmetrics/deepinv behaviour).
    crop, ratio, clip
        As in :func:`psnr`.
    return_excluded : bool
        Also return the number of zero-norm pixels per image.

    Returns
    -------
    Tensor of shape (B,), float64
        Mean angle per image.
    Tensor of shape (B,), int64
        Number of zero-norm pixels (only if ``return_excluded``).

    Notes
    -----
    .. math:: \\mathrm{SAM} = \\frac{1}{|V|}\\sum_{p\\in V}\\arccos\\,\\mathrm{clip}\\!\\left(
              \\frac{\\langle x(p), \\hat x(p)\\rangle}{\\|x(p)\\|\\,\\|\\hat x(p)\\|}, -1, 1\\right)

    The cosine is always clipped to [-1, 1]: rounding can give 1.0000000000000002.

    Examples
    --------
    >>> import torch
    >>> ref = torch.tensor([1.0, 0.0]).reshape(1, 2, 1, 1)
    >>> round(float(sam(torch.tensor([1.0, 1.0]).reshape(1, 2, 1, 1), ref)), 6)
    45.0
    >>> sam(2 * ref, ref, unit="rad")
    tensor([0.], dtype=torch.float64)
    """
    xh, xr = _prepare(x_hat, ref, crop, ratio, clip)
    theta, valid = _sam_angles(xh, xr, unit, zero)
    excluded = (~valid).sum(dim=(1, 2))
    if zero == "exclude":
        n = valid.sum(dim=(1, 2))
        total = torch.where(valid, theta, torch.zeros_like(theta)).sum(dim=(1, 2))
        out = torch.where(n > 0, total / n.clamp(min=1), torch.full_like(total, math.nan))
        if bool((n == 0).any()):
            bad = [int(i) for i in torch.nonzero(n == 0).flatten()]
            warnings.warn(
                f"SAM is NaN for image(s) {bad}: every pixel has a zero spectrum in the estimate "
                "or the reference; check the data or use zero='eps'",
                UserWarning,
                stacklevel=2,
            )
    else:
        out = theta.mean(dim=(1, 2))
    if return_excluded:
        return out, excluded
    return out


# --------------------------------------------------------------------------- ERGAS / CC


def ergas(
    x_hat: ArrayLike,
    ref: ArrayLike,
    *,
    ratio: float | None = None,
    mean_from: Literal["reference", "estimate"] = "reference",
    variant: Literal["standard", "mossfuse_reference"] = "standard",
    crop: Crop = 0,
    clip: Clip = None,
) -> torch.Tensor:
    """Relative dimensionless global error in synthesis (Wald).

    Parameters
    ----------
    x_hat : Tensor or ndarray of shape (B, C, H, W) or (C, H, W)
        Estimate.
    ref : Tensor or ndarray, same shape as ``x_hat``
        Reference.
    ratio : float
        Resolution ratio r = HR-MSI / LR-HSI linear size (r >= 1, e.g. 4 or 32).
        Required, except with ``variant="mossfuse_reference"`` (which always
        uses 32). A value below 1 (d_h/d_l) raises.
    mean_from : {"reference", "estimate"}
        Whose band means normalise the errors: the reference (Wald) or the
        estimate (Yokoya review code).
    variant : {"standard", "mossfuse_reference"}
        ``"mossfuse_reference"`` uses the factor 100/32 for every ratio and
        divides the sum by L + 1.
    crop : int or "ratio"
        Border width removed from each side.
    clip : (float, float), optional
        Clip the estimate to this range.

    Returns
    -------
    Tensor of shape (B,), float64

    Notes
    -----
    .. math:: \\mathrm{ERGAS} = \\frac{100}{r}\\sqrt{\\frac{1}{L}\\sum_b
              \\frac{\\mathrm{MSE}_b}{\\mu_b^2}}

    Bands with :math:`\\mu_b = 0` are excluded with a warning. The variant
    ``"mossfuse_reference"`` gives :math:`(100/32)\\sqrt{\\sum_b(\\cdot)/(L+1)}`,
    with L the number of bands used.

    Examples
    --------
    >>> import torch
    >>> ref = torch.full((1, 1, 2, 2), 0.5, dtype=torch.float64)
    >>> round(float(ergas(ref * 1.1, ref, ratio=4)), 6)
    2.5
    """
    check_choice("mean_from", mean_from, ("reference", "estimate"))
    check_choice("variant", variant, ("standard", "mossfuse_reference"))
    if variant == "standard":
        if ratio is None:
            raise InputError("ergas needs the resolution ratio; pass ratio=r (HR/LR size, e.g. 4)")
        r = float(ratio)
        if not math.isfinite(r) or r < 1:
            raise InputError(
                f"ergas ratio must be HR/LR linear size >= 1, got {ratio!r}; "
                f"pass its inverse (d_l/d_h) instead"
            )
        factor = 100.0 / r
    else:
        factor = 100.0 / 32.0
    xh, xr = _prepare(x_hat, ref, crop, ratio, clip)
    mse = _band_mse(xh, xr)
    mu = (xr if mean_from == "reference" else xh).mean(dim=(-2, -1))
    ok = mu != 0
    if not bool(ok.all()):
        bad = torch.nonzero(~ok).tolist()
        warnings.warn(
            f"ERGAS excludes {len(bad)} band(s) with zero {mean_from} mean, as (image, band): "
            f"{bad}; drop or rescale those bands to silence this",
            UserWarning,
            stacklevel=2,
        )
    terms = torch.where(ok, mse / torch.where(ok, mu, torch.ones_like(mu)) ** 2, 0.0)
    n = ok.sum(dim=1).to(torch.float64)
    denom = n if variant == "standard" else n + 1.0
    val = factor * (terms.sum(dim=1) / denom).sqrt()
    return torch.where(n > 0, val, torch.full_like(val, math.nan))


def cc(
    x_hat: ArrayLike,
    ref: ArrayLike,
    *,
    mode: Literal["band_mean", "global"] = "band_mean",
    crop: Crop = 0,
    ratio: float | None = None,
    clip: Clip = None,
) -> torch.Tensor:
    """Correlation coefficient: mean over bands of the Pearson correlation.

    Parameters
    ----------
    x_hat : Tensor or ndarray of shape (B, C, H, W) or (C, H, W)
        Estimate.
    ref : Tensor or ndarray, same shape as ``x_hat``
        Reference.
    mode : {"band_mean", "global"}
        ``"band_mean"`` (Yokoya review) averages per-band correlations;
        ``"global"`` pools all values into one correlation.
    crop, ratio, clip
        As in :func:`psnr`.

    Returns
    -------
    Tensor of shape (B,), float64

    Notes
    -----
    .. math:: \\mathrm{CC} = \\frac{1}{L}\\sum_b
              \\frac{\\sum_p (x_b-\\mu_b)(\\hat x_b-\\hat\\mu_b)}
                    {\\sqrt{\\sum_p (x_b-\\mu_b)^2\\sum_p(\\hat x_b-\\hat\\mu_b)^2}}

    Bands with zero variance in either image are excluded with a warning
    (NaN if none is left).

    Examples
    --------
    >>> import torch
    >>> ref = torch.arange(8.0).reshape(1, 2, 2, 2)
    >>> cc(2 * ref + 1, ref)
    tensor([1.], dtype=torch.float64)
    """
    check_choice("mode", mode, ("band_mean", "global"))
    xh, xr = _prepare(x_hat, ref, crop, ratio, clip)
    if mode == "global":
        a = xr.flatten(1)
        b = xh.flatten(1)
        const = _is_const(a, (1,)) | _is_const(b, (1,))
    else:
        a = xr.flatten(2)
        b = xh.flatten(2)
        const = _is_const(a, (2,)) | _is_const(b, (2,))
    ac = a - a.mean(dim=-1, keepdim=True)
    bc = b - b.mean(dim=-1, keepdim=True)
    num = (ac * bc).sum(dim=-1)
    den = ((ac**2).sum(dim=-1) * (bc**2).sum(dim=-1)).sqrt()
    ok = ~const
    r = torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), 0.0)
    if not bool(ok.all()):
        bad = torch.nonzero(const).tolist()
        warnings.warn(
            f"CC excludes {len(bad)} constant band(s) (zero variance), as (image[, band]): {bad}; "
            "drop those bands to silence this",
            UserWarning,
            stacklevel=2,
        )
    if mode == "global":
        return torch.where(ok, r, torch.full_like(r, math.nan))
    n = ok.sum(dim=1)
    out = r.sum(dim=1) / n.clamp(min=1)
    return torch.where(n > 0, out, torch.full_like(out, math.nan))


# --------------------------------------------------------------------------- SSIM


@lru_cache(maxsize=8)
def _gauss1d(sigma: float, radius: int) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def _sep_filter(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Valid separable correlation of (..., H, W) with the 1-D kernel ``k`` on both axes.

    Shifted multiply-adds are much faster than float64 ``conv2d`` on CPU.
    """
    w = [float(v) for v in k]
    n = len(w)
    wo = x.shape[-1] - n + 1
    out = x[..., 0:wo] * w[0]
    for i in range(1, n):
        out.add_(x[..., i : i + wo], alpha=w[i])
    ho = x.shape[-2] - n + 1
    out2 = out[..., 0:ho, :] * w[0]
    for i in range(1, n):
        out2.add_(out[..., i : i + ho, :], alpha=w[i])
    return out2


def _sliding_reduce(x: torch.Tensor, size: int, dim: int, op: str) -> torch.Tensor:
    """Valid sliding sum (``op="sum"``) or OR (``op="or"``) of width ``size`` along ``dim``.

    Uses O(log size) shifted operations: sums of width 2w are built from two
    sums of width w, and the binary digits of ``size`` select the pieces.
    """
    length = x.shape[dim]
    out_len = length - size + 1

    def comb(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a | b if op == "or" else a + b

    result: torch.Tensor | None = None
    cur, width, offset, bits = x, 1, 0, size
    while True:
        if bits & 1:
            piece = cur.narrow(dim, offset, out_len)
            result = piece if result is None else comb(result, piece)
            offset += width
        bits >>= 1
        if not bits:
            break
        n = cur.shape[dim] - width
        cur = comb(cur.narrow(dim, 0, n), cur.narrow(dim, width, n))
        width *= 2
    assert result is not None
    return result


def _box_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """Valid size x size moving average of (..., H, W)."""
    out = _sliding_reduce(_sliding_reduce(x, size, -1, "sum"), size, -2, "sum")
    return out * (1.0 / (size * size))


def _sliding_any(m: torch.Tensor, bh: int, bw: int) -> torch.Tensor:
    """Valid bh x bw sliding OR of a boolean (..., H, W) mask."""
    return _sliding_reduce(_sliding_reduce(m, bw, -1, "or"), bh, -2, "or")


def _const_windows(x: torch.Tensor, block: int) -> torch.Tensor:
    """True for each valid block x block window of (..., H, W) that is exactly constant.

    A window is constant iff no two horizontally or vertically adjacent pixels
    inside it differ.
    """
    if block == 1:
        return torch.ones_like(x, dtype=torch.bool)
    dh = x[..., :, 1:] != x[..., :, :-1]
    dv = x[..., 1:, :] != x[..., :-1, :]
    return ~(_sliding_any(dh, block, block - 1) | _sliding_any(dv, block - 1, block))


Combine: TypeAlias = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, slice, int, int],
    torch.Tensor,
]


def _windowed_mean(
    xs: torch.Tensor,
    ys: torch.Tensor,
    filt: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    combine: Combine,
) -> torch.Tensor:
    """Mean over valid window positions of ``combine(ux, uy, uxx, uyy, uxy, planes, r0, r1)``.

    ``xs``, ``ys`` are (N, 1, H, W); the local moments are filtered with the
    valid n x n filter ``filt``. Work is done on strips of about 2**15 pixels per
    plane so that it stays in cache; ``planes`` and output rows ``r0:r1`` locate
    the strip. Returns shape (N,).
    """
    n_planes, _, h, w = xs.shape
    ho, wo = h - n + 1, w - n + 1
    total = torch.zeros(n_planes, dtype=torch.float64, device=xs.device)
    px = _STRIP_PIXELS
    rows = max(px // w, 4 * n)
    planes = max(1, px // (h * w))
    for p0 in range(0, n_planes, planes):
        sl = slice(p0, min(p0 + planes, n_planes))
        m = sl.stop - sl.start
        for r0 in range(0, ho, rows):
            r1 = min(r0 + rows, ho)
            xa = xs[sl, :, r0 : r1 + n - 1]
            ya = ys[sl, :, r0 : r1 + n - 1]
            f = filt(torch.cat([xa, ya, xa * xa, ya * ya, xa * ya], dim=0))
            ux, uy, uxx, uyy, uxy = f.split(m)
            total[sl] += combine(ux, uy, uxx, uyy, uxy, sl, r0, r1).sum(dim=(1, 2, 3))
    return total / (ho * wo)


def ssim(
    x_hat: ArrayLike,
    ref: ArrayLike,
    *,
    data_range: DataRange,
    window: Literal["gaussian11", "uniform7", "global"] = "gaussian11",
    crop: Crop = 0,
    ratio: float | None = None,
    clip: Clip = None,
) -> torch.Tensor:
    """Structural similarity, mean over valid window positions, then over bands.

    Parameters
    ----------
    x_hat : Tensor or ndarray of shape (B, C, H, W) or (C, H, W)
        Estimate.
    ref : Tensor or ndarray, same shape as ``x_hat``
        Reference.
    data_range : float or {"ref_band_max", "ref_global_max"}
        D in the stabilising constants, as for :func:`psnr`.
    window : {"gaussian11", "uniform7", "global"}
        ``"gaussian11"`` (Wang et al. 2004; sigma 1.5, radius 5, population
        moments), ``"uniform7"`` (scikit-image default, sample moments) or
        ``"global"`` (one window per band).
    crop, ratio, clip
        As in :func:`psnr`.

    Returns
    -------
    Tensor of shape (B,), float64

    Raises
    ------
    ShapeError
        If a band is smaller than the window.

    Notes
    -----
    .. math:: \\mathrm{SSIM} = \\frac{(2\\mu_x\\mu_{\\hat x}+C_1)(2\\sigma_{x\\hat x}+C_2)}
              {(\\mu_x^2+\\mu_{\\hat x}^2+C_1)(\\sigma_x^2+\\sigma_{\\hat x}^2+C_2)},
              \\quad C_1=(0.01D)^2,\\ C_2=(0.03D)^2

    Only windows fully inside the band are averaged. The default equals
    scikit-image ``structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=D)`` per band; ``"uniform7"``
    equals its defaults.

    Examples
    --------
    >>> import torch
    >>> ref = torch.rand(1, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> ssim(ref, ref, data_range=1.0)
    tensor([1.], dtype=torch.float64)
    """
    check_choice("window", window, ("gaussian11", "uniform7", "global"))
    xh, xr = _prepare(x_hat, ref, crop, ratio, clip)
    b, c, h, w = xr.shape
    d = _peak(xr, data_range).reshape(b * c, 1, 1, 1)
    c1 = (0.01 * d) ** 2
    c2 = (0.03 * d) ** 2
    x = xr.reshape(b * c, 1, h, w)
    y = xh.reshape(b * c, 1, h, w)
    # shift by each band's own mean: moments are shift invariant, precision improves
    sx = x.mean(dim=(-2, -1), keepdim=True)
    sy = y.mean(dim=(-2, -1), keepdim=True)
    xs, ys = x - sx, y - sy
    if window == "global":
        mx, my = x.mean(dim=(-2, -1), keepdim=True), y.mean(dim=(-2, -1), keepdim=True)
        xc, yc = x - mx, y - my
        vx = (xc**2).mean(dim=(-2, -1), keepdim=True)
        vy = (yc**2).mean(dim=(-2, -1), keepdim=True)
        vxy = (xc * yc).mean(dim=(-2, -1), keepdim=True)
    else:
        size = 11 if window == "gaussian11" else 7
        if h < size or w < size:
            raise ShapeError(
                f"ssim window {window!r} needs bands of at least {size}x{size} pixels, "
                f"got {h}x{w} after cropping; use window='global' or a smaller crop"
            )
        if window == "gaussian11":
            kern = _gauss1d(1.5, 5)

            def filt(t: torch.Tensor) -> torch.Tensor:
                return _sep_filter(t, kern)

            cov_norm = 1.0
        else:

            def filt(t: torch.Tensor) -> torch.Tensor:
                return _box_filter(t, 7)

            cov_norm = 49.0 / 48.0

        def combine(
            ux: torch.Tensor,
            uy: torch.Tensor,
            uxx: torch.Tensor,
            uyy: torch.Tensor,
            uxy: torch.Tensor,
            sl: slice,
            r0: int,
            r1: int,
        ) -> torch.Tensor:
            vx = cov_norm * (uxx - ux * ux)
            vy = cov_norm * (uyy - uy * uy)
            vxy = cov_norm * (uxy - ux * uy)
            mx, my = ux + sx[sl], uy + sy[sl]
            num = (2 * mx * my + c1[sl]) * (2 * vxy + c2[sl])
            den = (mx**2 + my**2 + c1[sl]) * (vx + vy + c2[sl])
            return num / den

        return _windowed_mean(xs, ys, filt, size, combine).reshape(b, c).mean(dim=1)
    num = (2 * mx * my + c1) * (2 * vxy + c2)
    den = (mx**2 + my**2 + c1) * (vx + vy + c2)
    s = (num / den).mean(dim=(1, 2, 3)).reshape(b, c)
    return s.mean(dim=1)


# --------------------------------------------------------------------------- UIQI


def _q_index(
    mu_a: torch.Tensor,
    mu_b: torch.Tensor,
    var_a: torch.Tensor,
    var_b: torch.Tensor,
    cov: torch.Tensor,
) -> torch.Tensor:
    """Wang-Bovik Q from moments, with the special cases of Wang's code."""
    vs = var_a + var_b
    ms = mu_a**2 + mu_b**2
    den = vs * ms
    one = torch.ones_like(den)
    q = one
    case1 = (vs == 0) & (ms != 0)
    q = torch.where(case1, 2 * mu_a * mu_b / torch.where(case1, ms, one), q)
    full = den != 0
    q = torch.where(full, 4 * cov * mu_a * mu_b / torch.where(full, den, one), q)
    return q


def _tiles(x: torch.Tensor, s: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, nb, s*s) non-overlapping tiles; H, W multiples of s."""
    b, c, h, w = x.shape
    t = x.reshape(b, c, h // s, s, w // s, s).permute(0, 1, 2, 4, 3, 5)
    return t.reshape(b, c, (h // s) * (w // s), s * s)


def _tile_moments(x: torch.Tensor, s: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tile means (B, C, nb), centred tiles (B, C, nb, N) with constant tiles zeroed,
    and population variances (B, C, nb)."""
    t = _tiles(x, s)
    const = _is_const(t, (-1,))
    mu = torch.where(const, t[..., 0], t.mean(dim=-1))
    cen = torch.where(const[..., None], 0.0, t - mu[..., None])
    var = (cen**2).mean(dim=-1)
    return mu, cen, var


def uiqi(
    x_hat: ArrayLike,
    ref: ArrayLike,
    *,
    block: int = 8,
    mode: Literal["sliding", "blocks"] = "sliding",
    crop: Crop = 0,
    ratio: float | None = None,
    clip: Clip = None,
) -> torch.Tensor:
    """Universal image quality index (Wang & Bovik), mean over windows and bands.

    Parameters
    ----------
    x_hat : Tensor or ndarray of shape (B, C, H, W) or (C, H, W)
        Estimate.
    ref : Tensor or ndarray, same shape as ``x_hat``
        Reference.
    block : int
        Window size B (8 by default; 32 in some HS evaluation code).
    mode : {"sliding", "blocks"}
        ``"sliding"``: step 1, valid positions only (Wang's algorithm);
        ``"blocks"``: non-overlapping tiles (H, W multiples of ``block``).
    crop, ratio, clip
        As in :func:`psnr`.

    Returns
    -------
    Tensor of shape (B,), float64

    Notes
    -----
    .. math:: Q(a, b) = \\frac{4\\sigma_{ab}\\mu_a\\mu_b}
              {(\\sigma_a^2+\\sigma_b^2)(\\mu_a^2+\\mu_b^2)}

    If :math:`\\sigma_a^2+\\sigma_b^2 = 0` but :math:`\\mu_a^2+\\mu_b^2 \\neq 0`,
    :math:`Q = 2\\mu_a\\mu_b/(\\mu_a^2+\\mu_b^2)`; otherwise, when the
    denominator is 0, Q = 1 (as in Wang's code). A window is treated as having
    zero variance when it is exactly constant.

    Examples
    --------
    >>> import torch
    >>> a = torch.full((1, 1, 8, 8), 0.5)
    >>> round(float(uiqi(0.5 * a, a)), 6)  # 2ab / (a^2 + b^2) = 0.8
    0.8
    """
    check_choice("mode", mode, ("sliding", "blocks"))
    if isinstance(block, bool) or not isinstance(block, int | np.integer) or block < 1:
        raise InputError(f"block must be a positive int, got {block!r}")
    block = int(block)
    xh, xr = _prepare(x_hat, ref, crop, ratio, clip)
    b, c, h, w = xr.shape
    if block > h or block > w:
        raise ShapeError(
            f"uiqi block {block} is larger than the {h}x{w} image; pass a smaller block"
        )
    if mode == "blocks":
        if h % block or w % block:
            raise ShapeError(
                f"uiqi mode='blocks' needs H and W multiples of block={block}, got {h}x{w}; "
                "crop the images or use mode='sliding'"
            )
        ma, ca, va = _tile_moments(xr, block)
        mb, cb, vb = _tile_moments(xh, block)
        cov = (ca * cb).mean(dim=-1)
        q = _q_index(ma, mb, va, vb, cov)  # (B, C, nb)
        return q.mean(dim=(1, 2))
    x = xr.reshape(b * c, 1, h, w)
    y = xh.reshape(b * c, 1, h, w)
    sx = x.mean(dim=(-2, -1), keepdim=True)
    sy = y.mean(dim=(-2, -1), keepdim=True)
    xs, ys = x - sx, y - sy

    def combine(
        ux: torch.Tensor,
        uy: torch.Tensor,
        uxx: torch.Tensor,
        uyy: torch.Tensor,
        uxy: torch.Tensor,
        sl: slice,
        r0: int,
        r1: int,
    ) -> torch.Tensor:
        rows = slice(r0, r1 + block - 1)
        cx = _const_windows(x[sl, :, rows], block)
        cy = _const_windows(y[sl, :, rows], block)
        vx = torch.where(cx, 0.0, uxx - ux * ux)
        vy = torch.where(cy, 0.0, uyy - uy * uy)
        vxy = torch.where(cx | cy, 0.0, uxy - ux * uy)
        # a constant window's mean is its value, exactly (0 stays 0)
        ho, wo = ux.shape[-2:]
        mx = torch.where(cx, x[sl, :, r0 : r0 + ho, :wo], ux + sx[sl])
        my = torch.where(cy, y[sl, :, r0 : r0 + ho, :wo], uy + sy[sl])
        return _q_index(mx, my, vx, vy, vxy)

    return (
        _windowed_mean(xs, ys, lambda t: _box_filter(t, block), block, combine)
        .reshape(b, c)
        .mean(dim=1)
    )


# --------------------------------------------------------------------------- Q2n


def _conj(u: torch.Tensor) -> torch.Tensor:
    if u.shape[-1] == 1:
        return u
    return torch.cat([u[..., :1], -u[..., 1:]], dim=-1)


def _onion(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    n = u.shape[-1]
    if n == 1:
        return u * v
    h = n // 2
    a, b = u[..., :h], _conj(u[..., h:])
    c, d = v[..., :h], _conj(v[..., h:])
    if n == 2:
        return torch.cat([a * c - d * b, a * d + c * b], dim=-1)
    return torch.cat(
        [_onion(a, c) - _onion(d, _conj(b)), _onion(_conj(a), d) + _onion(c, b)], dim=-1
    )


def hypercomplex_product(u: ArrayLike, v: ArrayLike) -> torch.Tensor:
    """Hypercomplex ("onion") product used by Q2n, along the last axis.

    Parameters
    ----------
    u, v : Tensor or ndarray of shape (..., n)
        Hypercomplex numbers with n = 2^k components; leading axes broadcast.

    Returns
    -------
    Tensor of shape (..., n), float64

    Notes
    -----
    Defined recursively: for n = 1 the ordinary product; for n = 2,
    :math:`(a_0,a_1)\\otimes(b_0,b_1)=(a_0b_0-a_1b_1,\\ a_0b_1+a_1b_0)`; for
    n >= 4, with :math:`a=u_L`, :math:`b=\\bar u_R`, :math:`c=v_L`,
    :math:`d=\\bar v_R`,

    .. math:: u\\otimes v = (a\\otimes c - d\\otimes\\bar b,\\ \\bar a\\otimes d + c\\otimes b)

    where :math:`\\bar u = (u_0, -u_1, \\ldots, -u_{n-1})`. This is the product
    of the Q2n evaluation code (``onion_mult.m``), not Hamilton's.

    Examples
    --------
    >>> hypercomplex_product([1.0, 2, 3, 4], [5.0, 6, 7, 8])
    tensor([-60.,  12.,  30., -24.], dtype=torch.float64)
    """
    tu = (
        u.detach().to(torch.float64)
        if isinstance(u, torch.Tensor)
        else torch.as_tensor(np.asarray(u, dtype=np.float64))
    )
    tv = (
        v.detach().to(torch.float64)
        if isinstance(v, torch.Tensor)
        else torch.as_tensor(np.asarray(v, dtype=np.float64))
    )
    n = tu.shape[-1]
    if tv.shape[-1] != n or n < 1 or n & (n - 1):
        raise ShapeError(
            f"hypercomplex_product needs two (..., n) inputs with the same n = 2^k, "
            f"got {tuple(tu.shape)} and {tuple(tv.shape)}; pad with zero components"
        )
    tu, tv = torch.broadcast_tensors(tu, tv.to(tu.device))
    return _onion(tu, tv)


@lru_cache(maxsize=8)
def _onion_table(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse structure of the product: e_i (x) e_j = S[i, j] * e_{K[i, j]}.

    Built by the recursion of :func:`_onion` applied to basis vectors, in O(n^2), where
    the dense n x n x n structure tensor would cost O(n^3) memory (134 MB at n = 256).
    With h = n/2, i' = i - h, j' = j - h and sigma(0) = 1, sigma(m > 0) = -1 (conjugation):
    both in the left half give (K_h, S_h)[i, j]; i left, j right give h + K_h[i, j'] with
    sign sigma(i) sigma(j') S_h; i right, j left give h + K_h[j, i'] with sigma(i') S_h;
    both right give K_h[j', i'] with -sigma(j') S_h.
    """
    k = np.zeros((1, 1), dtype=np.int64)
    sg = np.ones((1, 1), dtype=np.int64)
    m = 1
    while m < n:
        if m == 1:
            k = np.array([[0, 1], [1, 0]])
            sg = np.array([[1, 1], [1, -1]])
        else:
            sig = np.where(np.arange(m) == 0, 1, -1)
            k2 = np.empty((2 * m, 2 * m), dtype=np.int64)
            s2 = np.empty((2 * m, 2 * m), dtype=np.int64)
            k2[:m, :m], s2[:m, :m] = k, sg
            k2[:m, m:], s2[:m, m:] = m + k, sig[:, None] * sig[None, :] * sg
            k2[m:, :m], s2[m:, :m] = m + k.T, sig[:, None] * sg.T
            k2[m:, m:], s2[m:, m:] = k.T, -sig[None, :] * sg.T
            k, sg = k2, s2
        m *= 2
    return torch.from_numpy(k.reshape(-1)), torch.from_numpy(sg.reshape(-1).astype(np.float64))


def _sym_index(length: int, total: int, device: torch.device) -> torch.Tensor:
    """Indices of a half-sample symmetric extension (NumPy 'symmetric')."""
    i = torch.arange(total, device=device) % (2 * length)
    return torch.where(i < length, i, 2 * length - 1 - i)


def _sym_pad(x: torch.Tensor, total: int, dim: int) -> torch.Tensor:
    """Extend (or cut) ``dim`` to ``total`` by half-sample symmetric reflection."""
    length = x.shape[dim]
    extra = total - length
    if extra == 0:
        return x
    if extra < 0:
        return x.narrow(dim, 0, total)
    if extra <= length:
        return torch.cat([x, x.narrow(dim, length - extra, extra).flip(dim)], dim=dim)
    return x.index_select(dim, _sym_index(length, total, x.device))


def q2n(
    x_hat: ArrayLike,
    ref: ArrayLike,
    *,
    block: int = 32,
    step: int = 32,
    uint16_scale: float | None = None,
    crop: Crop = 0,
    ratio: float | None = None,
    clip: Clip = None,
) -> torch.Tensor:
    """Q2n hypercomplex quality index (Garzelli & Nencini 2009).

    Parameters
    ----------
    x_hat : Tensor or ndarray of shape (B, C, H, W) or (C, H, W)
        Estimate.
    ref : Tensor or ndarray, same shape as ``x_hat``
        Reference.
    block : int
        Block size S (32).
    step : int
        Shift between blocks (32).
    uint16_scale : float, optional
        Multiply both images by this, round half away from zero and saturate
        to [0, 65535], as the benchmark code's uint16 cast. Default: no cast.
    crop, ratio, clip
        As in :func:`psnr`.

    Returns
    -------
    Tensor of shape (B,), float64

    Notes
    -----
    Images are padded bottom/right by half-sample symmetric reflection to
    :math:`(n_y-1)\\,\\mathrm{step}+S` rows, :math:`n_y=\\lceil H/\\mathrm{step}\\rceil`
    (likewise columns), and zero bands are appended up to
    :math:`n = 2^{\\lceil\\log_2 L\\rceil}`. In each block every band is
    normalised with the reference block's mean and sample std, then with
    :math:`z = X'(p)`, :math:`w=\\overline{\\hat X'(p)}` and N = S^2:

    .. math:: q = \\frac{2\\|\\mu_z\\|\\|\\mu_w\\|}{\\|\\mu_z\\|^2+\\|\\mu_w\\|^2}\\cdot
              \\frac{2\\,\\|\\tfrac{N}{N-1}(\\overline{z\\otimes w}-\\mu_z\\otimes\\mu_w)\\|}
              {\\sigma_z^2+\\sigma_w^2}

    and Q2n is the mean of q over blocks (q is the first factor alone when
    :math:`\\sigma_z^2+\\sigma_w^2=0`).

    Examples
    --------
    >>> import torch
    >>> ref = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> round(float(q2n(ref, ref, block=8, step=8)), 12)
    1.0
    """
    for nm, v, lo in (("block", block, 2), ("step", step, 1)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
            raise InputError(f"q2n {nm} must be an int >= {lo}, got {v!r}; pass e.g. {nm}=32")
    s, st = int(block), int(step)
    xh, xr = _prepare(x_hat, ref, crop, ratio, clip)
    if uint16_scale is not None:
        k = float(uint16_scale)

        def _u16(t: torch.Tensor) -> torch.Tensor:
            t = t * k
            t = torch.sign(t) * torch.floor(t.abs() + 0.5)
            return t.clamp(0.0, 65535.0)

        xh, xr = _u16(xh), _u16(xr)
    b, L, h, w = xr.shape
    ny, nx = math.ceil(h / st), math.ceil(w / st)
    hp, wp = (ny - 1) * st + s, (nx - 1) * st + s
    xr = _sym_pad(_sym_pad(xr, hp, 2), wp, 3)
    xh = _sym_pad(_sym_pad(xh, hp, 2), wp, 3)
    n = 1 << max(0, math.ceil(math.log2(L)))
    if n > L:
        pad = (0, 0, 0, 0, 0, n - L)
        xr, xh = F.pad(xr, pad), F.pad(xh, pad)

    # blocks: (B, n, ny, nx, S, S) -> (B, nb, n, N)
    def _blocks(t: torch.Tensor) -> torch.Tensor:
        u = t.unfold(2, s, st).unfold(3, s, st)
        return u.permute(0, 2, 3, 1, 4, 5).reshape(b, ny * nx, n, s * s)

    tr, th = _blocks(xr), _blocks(xh)
    nn = float(s * s)
    const = _is_const(tr, (-1,))
    m = torch.where(const, tr[..., 0], tr.mean(dim=-1))[..., None]
    sd = torch.where(const, 0.0, tr.std(dim=-1, correction=1))[..., None]
    sd = torch.where(sd == 0, _EPS64, sd)
    z = torch.where(const[..., None], 1.0, (tr - m) / sd + 1.0)
    wn = torch.where(m == 0, th + 1.0, (th - m) / sd + 1.0)
    sign = torch.ones(n, dtype=torch.float64, device=xr.device)
    sign[1:] = -1.0
    wn = wn * sign[:, None]  # conjugate
    mz, mw = z.mean(dim=-1), wn.mean(dim=-1)  # (B, nb, n)
    nz2, nw2 = (mz**2).sum(-1), (mw**2).sum(-1)
    kk = nn / (nn - 1.0)
    vz = kk * ((z**2).sum(dim=-2).mean(dim=-1) - nz2)
    vw = kk * ((wn**2).sum(dim=-2).mean(dim=-1) - nw2)
    beta = 2.0 * nz2.sqrt() * nw2.sqrt() / (nz2 + nw2)
    cov = kk * (torch.matmul(z, wn.transpose(-1, -2)) / nn - mz[..., :, None] * mw[..., None, :])
    kidx, ksign = (t.to(xr.device) for t in _onion_table(n))
    flat = (cov.reshape(*cov.shape[:-2], n * n) * ksign)
    cvec = flat.new_zeros((*cov.shape[:-2], n)).index_add_(-1, kidx, flat)
    vs = vz + vw
    ok = vs != 0
    q = torch.where(ok, cvec.norm(dim=-1) * beta * 2.0 / torch.where(ok, vs, 1.0).abs(), beta)
    return q.mean(dim=-1)
