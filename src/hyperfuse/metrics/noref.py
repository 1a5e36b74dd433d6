"""No-reference quality indices for real data (``metrics.md`` §2).

QNR, D_lambda and D_s (Alparone et al. 2008, extended to a multi-band MSI) and
the consistency indices. The sensor enters only through callables
(``degrade`` for the spatial operator D, ``upsample`` for U_r, ``spectral`` for
R), so this module does not depend on :mod:`hyperfuse.physics`.

All inputs are (B, C, H, W) tensors or arrays (or (C, H, W) for one image);
results are float64 tensors of shape (B,).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError, ShapeError
from .functional import ArrayLike, DataRange, _as_float64, _q_index, _tile_moments, mae, psnr

__all__ = [
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
]

Operator: TypeAlias = Callable[[torch.Tensor], torch.Tensor]
DsMode: TypeAlias = Literal["all_pairs", "synthetic_pan"]
Scale: TypeAlias = Literal["hr", "lr"]


@dataclass(frozen=True)
class QNRResult:
    """QNR and its two distortion indices, with the configuration used.

    Attributes
    ----------
    qnr, d_lambda, d_s : Tensor of shape (B,), float64
        The indices, one value per image.
    config : dict
        Every option used: ``block``, ``block_tilde``, ``p``, ``q``, ``alpha``,
        ``beta``, ``ds_mode``, ``scale`` and the bottom/right ``crop`` applied
        (rows, columns) at each scale.

    Notes
    -----
    :math:`\\mathrm{QNR} = (1-D_\\lambda)^\\alpha (1-D_s)^\\beta`; see :func:`qnr`.

    Examples
    --------
    >>> import torch
    >>> one = torch.ones(1, dtype=torch.float64)
    >>> QNRResult(qnr=one, d_lambda=0 * one, d_s=0 * one, config={"block": 32}).to_dict()
    {'qnr': [1.0], 'd_lambda': [0.0], 'd_s': [0.0], 'config': {'block': 32}}
    """

    qnr: torch.Tensor
    d_lambda: torch.Tensor
    d_s: torch.Tensor
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record (per-image lists plus the configuration)."""
        return {
            "qnr": [float(v) for v in self.qnr],
            "d_lambda": [float(v) for v in self.d_lambda],
            "d_s": [float(v) for v in self.d_s],
            "config": dict(self.config),
        }


# --------------------------------------------------------------------------- helpers


def _check_block(block: Any, name: str = "block") -> int:
    if isinstance(block, bool) or not isinstance(block, int | np.integer) or block < 2:
        raise InputError(f"{name} must be an int >= 2, got {block!r}; pass e.g. {name}=32")
    return int(block)


def _crop_to_multiple(x: torch.Tensor, s: int, name: str) -> tuple[torch.Tensor, list[int]]:
    h, w = x.shape[-2:]
    hh, ww = (h // s) * s, (w // s) * s
    if hh == 0 or ww == 0:
        raise ShapeError(
            f"{name} is {h}x{w}, smaller than the {s}x{s} QNR block; pass a smaller block (e.g. 16)"
        )
    return x[..., :hh, :ww], [h - hh, w - ww]


def qbar(a: ArrayLike, b: ArrayLike, *, block: int = 32) -> torch.Tensor:
    """Block index Q̄ between every band of ``a`` and every band of ``b``.

    Parameters
    ----------
    a : Tensor or ndarray of shape (B, La, H, W) or (La, H, W)
        First image.
    b : Tensor or ndarray of shape (B, Lb, H, W) or (Lb, H, W)
        Second image, same spatial size; H and W multiples of ``block``.
    block : int
        Block size S.

    Returns
    -------
    Tensor of shape (B, La, Lb), float64
        ``out[:, i, m]`` is the mean of the UIQI Q(a_i, b_m) over the
        non-overlapping S x S blocks.

    Notes
    -----
    .. math:: \\bar Q(a, b; S) = \\frac{1}{n_b}\\sum_{k}
              \\frac{4\\sigma_{ab,k}\\mu_{a,k}\\mu_{b,k}}
              {(\\sigma_{a,k}^2+\\sigma_{b,k}^2)(\\mu_{a,k}^2+\\mu_{b,k}^2)}

    with the special cases of :func:`hyperfuse.metrics.functional.uiqi`.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(1, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> qbar(x, x, block=4).diagonal(dim1=1, dim2=2).round(decimals=12).tolist()
    [[1.0, 1.0]]
    """
    s = _check_block(block)
    ta, tb = _as_float64(a, "a"), _as_float64(b, "b")
    if ta.shape[0] != tb.shape[0] or ta.shape[-2:] != tb.shape[-2:]:
        raise ShapeError(
            f"qbar inputs {tuple(ta.shape)} and {tuple(tb.shape)} differ in batch or size; "
            "pass images of the same batch and spatial size"
        )
    h, w = ta.shape[-2:]
    if h % s or w % s:
        raise ShapeError(f"qbar needs H and W multiples of block={s}, got {h}x{w}; crop first")
    return _qbar(ta, tb.to(ta.device), s)


def _qbar(a: torch.Tensor, b: torch.Tensor, s: int) -> torch.Tensor:
    ma, ca, va = _tile_moments(a, s)  # (B, La, nb), (B, La, nb, N), (B, La, nb)
    mb, cb, vb = _tile_moments(b, s)
    n = ca.shape[-1]
    cov = torch.matmul(ca.permute(0, 2, 1, 3), cb.permute(0, 2, 3, 1)) / n  # (B, nb, La, Lb)
    ma, va = ma.transpose(1, 2)[..., :, None], va.transpose(1, 2)[..., :, None]
    mb, vb = mb.transpose(1, 2)[..., None, :], vb.transpose(1, 2)[..., None, :]
    return _q_index(ma, mb, va, vb, cov).mean(dim=1)


def _power_mean(d: torch.Tensor, p: float) -> torch.Tensor:
    return (d.abs() ** p).mean(dim=-1) ** (1.0 / p)


def _check_exponent(v: Any, name: str) -> float:
    f = float(v)
    if not math.isfinite(f) or f <= 0:
        raise InputError(f"{name} must be a positive number, got {v!r}")
    return f


# --------------------------------------------------------------------------- cores


def d_lambda_core(
    fused: ArrayLike,
    x_tilde: ArrayLike,
    *,
    block: int = 32,
    block_tilde: int | None = None,
    p: float = 1.0,
) -> torch.Tensor:
    """Spectral distortion D_λ from already prepared inputs.

    Parameters
    ----------
    fused : Tensor or ndarray of shape (B, L, H, W)
        Fused image F.
    x_tilde : Tensor or ndarray of shape (B, L, H', W')
        The LR-HSI at the comparison scale (X̃).
    block : int
        Block size S for ``fused``.
    block_tilde : int, optional
        Block size for ``x_tilde`` (default ``block``; S/r in ``scale="lr"``).
    p : float
        Exponent.

    Returns
    -------
    Tensor of shape (B,), float64

    Notes
    -----
    .. math:: D_\\lambda = \\Big[\\frac{2}{L(L-1)}\\sum_{i<j}
              |\\bar Q(F_i,F_j)-\\bar Q(\\tilde X_i,\\tilde X_j)|^p\\Big]^{1/p}

    H and W are cropped bottom/right to multiples of the block.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> d_lambda_core(x, x, block=8)
    tensor([0.], dtype=torch.float64)
    """
    f, xt, s, st, _, _, _ = _core_inputs(fused, x_tilde, None, None, block, block_tilde)
    return _d_lambda(f, xt, s, st, p=p)


def _d_lambda(f: torch.Tensor, xt: torch.Tensor, s: int, st: int, *, p: float) -> torch.Tensor:
    p = _check_exponent(p, "p")
    big_l = f.shape[1]
    if big_l < 2:
        raise ShapeError(
            "D_lambda needs at least 2 bands in the fused image; pass a multi-band cube"
        )
    iu = torch.triu_indices(big_l, big_l, offset=1, device=f.device)
    qf = _qbar(f, f, s)[:, iu[0], iu[1]]
    qx = _qbar(xt, xt, st)[:, iu[0], iu[1]]
    return _power_mean(qf - qx, p)


def _d_s(
    f: torch.Tensor,
    xt: torch.Tensor,
    y: torch.Tensor,
    yt: torch.Tensor,
    s: int,
    st: int,
    *,
    q: float,
    ds_mode: str,
) -> torch.Tensor:
    q = _check_exponent(q, "q")
    if ds_mode not in ("all_pairs", "synthetic_pan"):
        raise InputError(f"ds_mode must be 'all_pairs' or 'synthetic_pan', got {ds_mode!r}")
    if ds_mode == "synthetic_pan":
        y = y.mean(dim=1, keepdim=True)
        yt = yt.mean(dim=1, keepdim=True)
    d = _qbar(f, y, s) - _qbar(xt, yt, st)
    return _power_mean(d.flatten(1), q)


def _core_inputs(
    fused: ArrayLike,
    x_tilde: ArrayLike,
    msi: ArrayLike | None,
    msi_tilde: ArrayLike | None,
    block: int,
    block_tilde: int | None,
) -> tuple[
    torch.Tensor, torch.Tensor, int, int, torch.Tensor | None, torch.Tensor | None, dict[str, Any]
]:
    s = _check_block(block)
    st = s if block_tilde is None else _check_block(block_tilde, "block_tilde")
    f = _as_float64(fused, "fused")
    xt = _as_float64(x_tilde, "x_tilde").to(f.device)
    if f.shape[:2] != xt.shape[:2]:
        raise ShapeError(
            f"fused {tuple(f.shape)} and x_tilde {tuple(xt.shape)} differ in batch or bands; "
            "pass the fused image and the HSI of the same scene"
        )
    y = yt = None
    if msi is not None and msi_tilde is not None:
        y = _as_float64(msi, "msi").to(f.device)
        yt = _as_float64(msi_tilde, "msi_tilde").to(f.device)
        if y.shape[0] != f.shape[0] or y.shape[-2:] != f.shape[-2:]:
            raise ShapeError(
                f"msi {tuple(y.shape)} must match fused {tuple(f.shape)} in batch and size; "
                "pass the HR-MSI of the same scene"
            )
        if yt.shape[:2] != y.shape[:2] or yt.shape[-2:] != xt.shape[-2:]:
            raise ShapeError(
                f"msi_tilde {tuple(yt.shape)} must have the bands of msi {tuple(y.shape)} and the "
                f"size of x_tilde {tuple(xt.shape)}; build it from the MSI at the x_tilde scale"
            )
    f, crop_f = _crop_to_multiple(f, s, "fused")
    xt, crop_t = _crop_to_multiple(xt, st, "x_tilde")
    if y is not None and yt is not None:
        y, _ = _crop_to_multiple(y, s, "msi")
        yt, _ = _crop_to_multiple(yt, st, "msi_tilde")
    info = {"block": s, "block_tilde": st, "crop": crop_f, "crop_tilde": crop_t}
    return f, xt, s, st, y, yt, info


def d_s_core(
    fused: ArrayLike,
    x_tilde: ArrayLike,
    msi: ArrayLike,
    msi_tilde: ArrayLike,
    *,
    block: int = 32,
    block_tilde: int | None = None,
    q: float = 1.0,
    ds_mode: DsMode = "all_pairs",
) -> torch.Tensor:
    """Spatial distortion D_s from already prepared inputs.

    Parameters
    ----------
    fused : Tensor or ndarray of shape (B, L, H, W)
        Fused image F.
    x_tilde : Tensor or ndarray of shape (B, L, H', W')
        The LR-HSI at the comparison scale (X̃).
    msi : Tensor or ndarray of shape (B, l, H, W)
        HR-MSI Y.
    msi_tilde : Tensor or ndarray of shape (B, l, H', W')
        The MSI at the X̃ scale (Ỹ).
    block, block_tilde : int
        Block sizes for the HR and the X̃-scale terms.
    q : float
        Exponent.
    ds_mode : {"all_pairs", "synthetic_pan"}
        All L·l band pairs, or Y replaced by its band mean (L terms).

    Returns
    -------
    Tensor of shape (B,), float64

    Notes
    -----
    .. math:: D_s = \\Big[\\frac{1}{L\\,l}\\sum_i\\sum_m
              |\\bar Q(F_i,Y_m)-\\bar Q(\\tilde X_i,\\tilde Y_m)|^q\\Big]^{1/q}

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> y = x[:, :2]
    >>> d_s_core(x, x, y, y, block=8)
    tensor([0.], dtype=torch.float64)
    """
    f, xt, s, st, y, yt, _ = _core_inputs(fused, x_tilde, msi, msi_tilde, block, block_tilde)
    assert y is not None and yt is not None
    return _d_s(f, xt, y, yt, s, st, q=q, ds_mode=ds_mode)


def qnr_core(
    fused: ArrayLike,
    x_tilde: ArrayLike,
    msi: ArrayLike,
    msi_tilde: ArrayLike,
    *,
    block: int = 32,
    block_tilde: int | None = None,
    p: float = 1.0,
    q: float = 1.0,
    alpha: float = 1.0,
    beta: float = 1.0,
    ds_mode: DsMode = "all_pairs",
) -> QNRResult:
    """QNR, D_λ and D_s from already prepared (same-scale or explicit-scale) inputs.

    Parameters
    ----------
    fused : Tensor or ndarray of shape (B, L, H, W)
        Fused image F.
    x_tilde : Tensor or ndarray of shape (B, L, H', W')
        X̃: U_r(x) in ``scale="hr"``, x itself in ``scale="lr"``.
    msi : Tensor or ndarray of shape (B, l, H, W)
        HR-MSI Y.
    msi_tilde : Tensor or ndarray of shape (B, l, H', W')
        Ỹ: U_r(D(Y)) in ``scale="hr"``, D(Y) in ``scale="lr"``.
    block : int
        Block size S of the HR terms (32).
    block_tilde : int, optional
        Block size of the X̃ terms (default ``block``).
    p, q : float
        Exponents of D_λ and D_s (1).
    alpha, beta : float
        Exponents of QNR (1).
    ds_mode : {"all_pairs", "synthetic_pan"}
        Multi-band D_s convention.

    Returns
    -------
    QNRResult
        ``qnr``, ``d_lambda``, ``d_s`` of shape (B,) and the ``config`` used,
        including the bottom/right crops to multiples of the blocks.

    Notes
    -----
    .. math:: \\mathrm{QNR} = (1-D_\\lambda)^\\alpha (1-D_s)^\\beta

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(1, 3, 20, 16, generator=torch.Generator().manual_seed(0))
    >>> res = qnr_core(x, x, x[:, :2], x[:, :2], block=8)
    >>> res.qnr, res.config["crop"]
    (tensor([1.], dtype=torch.float64), [4, 0])
    """
    f, xt, s, st, y, yt, info = _core_inputs(fused, x_tilde, msi, msi_tilde, block, block_tilde)
    assert y is not None and yt is not None
    dl = _d_lambda(f, xt, s, st, p=p)
    ds = _d_s(f, xt, y, yt, s, st, q=q, ds_mode=ds_mode)
    a, b = float(alpha), float(beta)
    val = (1.0 - dl) ** a * (1.0 - ds) ** b
    config = {
        **info,
        "p": float(p),
        "q": float(q),
        "alpha": a,
        "beta": b,
        "ds_mode": ds_mode,
        "scale": "same",
    }
    return QNRResult(qnr=val, d_lambda=dl, d_s=ds, config=config)


# --------------------------------------------------------------------------- sensor-level


def bicubic_upsample(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """Bicubic upsampling U_r (a = -0.75, ``align_corners=False``).

    Parameters
    ----------
    x : Tensor of shape (B, C, h, w)
        Low-resolution image.
    ratio : int
        Integer scale factor r.

    Returns
    -------
    Tensor of shape (B, C, r·h, r·w)

    Notes
    -----
    Keys's cubic convolution kernel with a = -0.75 (PyTorch's ``"bicubic"``),
    half-pixel centres; borders replicate the edge pixels.

    Examples
    --------
    >>> import torch
    >>> bicubic_upsample(torch.ones(1, 2, 3, 3, dtype=torch.float64), 4).shape
    torch.Size([1, 2, 12, 12])
    """
    return F.interpolate(x, scale_factor=int(ratio), mode="bicubic", align_corners=False)


def _check_int_ratio(ratio: Any) -> int:
    try:
        r = float(ratio)
    except (TypeError, ValueError):
        r = float("nan")
    if not math.isfinite(r) or r != int(r) or r < 1:
        raise InputError(f"ratio must be a positive integer, got {ratio!r}; pass e.g. ratio=4")
    return int(r)


def _apply(op: Operator, x: torch.Tensor, name: str, size: tuple[int, ...]) -> torch.Tensor:
    try:
        out = op(x)
    except RuntimeError:
        # operators holding float32 buffers (e.g. physics modules) reject float64 input
        out = op(x.to(torch.float32))
    if not isinstance(out, torch.Tensor):
        raise InputError(f"{name} must return a torch.Tensor, got {type(out).__name__}")
    out = out.to(device=x.device, dtype=torch.float64)
    if tuple(out.shape[-2:]) != size:
        raise ShapeError(
            f"{name} returned spatial size {tuple(out.shape[-2:])} but {size} is expected; "
            "check the operator's ratio"
        )
    return out


def _prepare_scales(
    fused: ArrayLike,
    hsi: ArrayLike,
    msi: ArrayLike | None,
    *,
    ratio: Any,
    degrade: Operator | None,
    upsample: Operator | None,
    scale: str,
    block: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None, int, int]:
    r = _check_int_ratio(ratio)
    s = _check_block(block)
    if scale not in ("hr", "lr"):
        raise InputError(f"scale must be 'hr' or 'lr', got {scale!r}")
    f = _as_float64(fused, "fused")
    x = _as_float64(hsi, "hsi").to(f.device)
    h, w = x.shape[-2:]
    hr = (f.shape[-2], f.shape[-1])
    if f.shape[:2] != x.shape[:2] or hr != (h * r, w * r):
        raise ShapeError(
            f"fused {tuple(f.shape)} must be hsi {tuple(x.shape)} upsampled by ratio {r}; "
            "check ratio or crop the fused image"
        )
    y = yt = None
    if msi is not None:
        if degrade is None:
            raise InputError(
                "D_s needs the sensor's spatial operator; pass degrade=callable (known or estimated)"
            )
        y = _as_float64(msi, "msi").to(f.device)
        if y.shape[0] != f.shape[0] or tuple(y.shape[-2:]) != hr:
            raise ShapeError(
                f"msi {tuple(y.shape)} must match fused {tuple(f.shape)} in batch and size"
            )
        yt = _apply(degrade, y, "degrade", (h, w))
    if scale == "lr":
        if s % r or s // r < 4:
            raise InputError(
                f"scale='lr' needs block/ratio to be an integer >= 4, got {s}/{r}; "
                "use scale='hr' or a larger block"
            )
        return f, x, y, yt, s, s // r
    up = upsample if upsample is not None else (lambda t: bicubic_upsample(t, r))
    xt = _apply(up, x, "upsample", hr)
    if yt is not None:
        yt = _apply(up, yt, "upsample", hr)
    return f, xt, y, yt, s, s


def d_lambda(
    fused: ArrayLike,
    hsi: ArrayLike,
    *,
    ratio: int,
    upsample: Operator | None = None,
    scale: Scale = "hr",
    block: int = 32,
    p: float = 1.0,
) -> torch.Tensor:
    """Spectral distortion D_λ of a fused image against its LR-HSI.

    Parameters
    ----------
    fused : Tensor or ndarray of shape (B, L, H, W)
        Fused image F.
    hsi : Tensor or ndarray of shape (B, L, H/r, W/r)
        LR-HSI x.
    ratio : int
        Resolution ratio r.
    upsample : callable, optional
        U_r for ``scale="hr"``; default :func:`bicubic_upsample`. Called on float64.
    scale : {"hr", "lr"}
        ``"hr"``: X̃ = U_r(x), block S; ``"lr"``: X̃ = x, block S/r (integer >= 4).
    block : int
        Block size S.
    p : float
        Exponent.

    Returns
    -------
    Tensor of shape (B,), float64

    Notes
    -----
    See :func:`d_lambda_core` for the equation.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(1, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> d_lambda(bicubic_upsample(x, 4), x, ratio=4, block=16)
    tensor([0.], dtype=torch.float64)
    """
    f, xt, _, _, s, st = _prepare_scales(
        fused, hsi, None, ratio=ratio, degrade=None, upsample=upsample, scale=scale, block=block
    )
    f, _ = _crop_to_multiple(f, s, "fused")
    xt, _ = _crop_to_multiple(xt, st, "x_tilde")
    return _d_lambda(f, xt, s, st, p=p)


def d_s(
    fused: ArrayLike,
    hsi: ArrayLike,
    msi: ArrayLike,
    *,
    ratio: int,
    degrade: Operator,
    upsample: Operator | None = None,
    scale: Scale = "hr",
    block: int = 32,
    q: float = 1.0,
    ds_mode: DsMode = "all_pairs",
) -> torch.Tensor:
    """Spatial distortion D_s of a fused image against its LR-HSI and HR-MSI.

    Parameters
    ----------
    fused : Tensor or ndarray of shape (B, L, H, W)
        Fused image F.
    hsi : Tensor or ndarray of shape (B, L, H/r, W/r)
        LR-HSI x.
    msi : Tensor or ndarray of shape (B, l, H, W)
        HR-MSI Y.
    ratio : int
        Resolution ratio r.
    degrade : callable
        The sensor's spatial operator D, (B, l, H, W) -> (B, l, H/r, W/r),
        known or estimated. Called on float64 tensors.
    upsample : callable, optional
        U_r; default :func:`bicubic_upsample`.
    scale : {"hr", "lr"}
        Scale convention, see :func:`qnr`.
    block : int
        Block size S.
    q : float
        Exponent.
    ds_mode : {"all_pairs", "synthetic_pan"}
        Multi-band convention.

    Returns
    -------
    Tensor of shape (B,), float64

    Notes
    -----
    See :func:`d_s_core` for the equation.

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> pool = lambda t: F.avg_pool2d(t, 4)
    >>> float(d_s(x, pool(x), x[:, :2], ratio=4, degrade=pool, block=16)) < 0.1
    True
    """
    f, xt, y, yt, s, st = _prepare_scales(
        fused, hsi, msi, ratio=ratio, degrade=degrade, upsample=upsample, scale=scale, block=block
    )
    assert y is not None and yt is not None
    f, _ = _crop_to_multiple(f, s, "fused")
    y, _ = _crop_to_multiple(y, s, "msi")
    xt, _ = _crop_to_multiple(xt, st, "x_tilde")
    yt, _ = _crop_to_multiple(yt, st, "msi_tilde")
    return _d_s(f, xt, y, yt, s, st, q=q, ds_mode=ds_mode)


def qnr(
    fused: ArrayLike,
    hsi: ArrayLike,
    msi: ArrayLike,
    *,
    ratio: int,
    degrade: Operator,
    upsample: Operator | None = None,
    scale: Scale = "hr",
    block: int = 32,
    p: float = 1.0,
    q: float = 1.0,
    alpha: float = 1.0,
    beta: float = 1.0,
    ds_mode: DsMode = "all_pairs",
) -> QNRResult:
    """Quality with no reference (QNR) of a fused image.

    Parameters
    ----------
    fused : Tensor or ndarray of shape (B, L, H, W)
        Fused image F.
    hsi : Tensor or ndarray of shape (B, L, H/r, W/r)
        LR-HSI x.
    msi : Tensor or ndarray of shape (B, l, H, W)
        HR-MSI Y.
    ratio : int
        Resolution ratio r.
    degrade : callable
        The sensor's spatial operator D (known, or estimated by a blind method),
        (B, l, H, W) -> (B, l, H/r, W/r); called on float64 tensors (on float32
        if it rejects them).
    upsample : callable, optional
        U_r, LR -> HR; default :func:`bicubic_upsample` (a = -0.75).
    scale : {"hr", "lr"}
        ``"hr"`` (default, Vivone et al. benchmark v1.0): X̃ = U_r(x),
        Ỹ = U_r(D(Y)), all blocks S. ``"lr"`` (Alparone et al. 2008):
        X̃ = x and Ỹ = D(Y) with block S/r (an integer >= 4), F terms at HR.
    block : int
        Block size S (32). H and W are cropped bottom/right to multiples of it.
    p, q, alpha, beta : float
        Exponents (all 1).
    ds_mode : {"all_pairs", "synthetic_pan"}
        Multi-band D_s convention.

    Returns
    -------
    QNRResult
        Indices of shape (B,) and the full configuration, crops included.

    Notes
    -----
    .. math:: \\mathrm{QNR} = (1-D_\\lambda)^\\alpha (1-D_s)^\\beta

    with :math:`D_\\lambda` and :math:`D_s` as in :func:`d_lambda_core` and
    :func:`d_s_core`.

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> pool = lambda t: F.avg_pool2d(t, 4)
    >>> res = qnr(x, pool(x), x[:, :2], ratio=4, degrade=pool, block=16)
    >>> res.qnr.shape, res.config["scale"]
    (torch.Size([1]), 'hr')
    """
    f, xt, y, yt, s, st = _prepare_scales(
        fused, hsi, msi, ratio=ratio, degrade=degrade, upsample=upsample, scale=scale, block=block
    )
    assert y is not None and yt is not None
    res = qnr_core(
        f, xt, y, yt, block=s, block_tilde=st, p=p, q=q, alpha=alpha, beta=beta, ds_mode=ds_mode
    )
    config = {
        **res.config,
        "scale": scale,
        "ratio": _check_int_ratio(ratio),
        "upsample": "bicubic(a=-0.75)" if upsample is None else "user",
    }
    return QNRResult(qnr=res.qnr, d_lambda=res.d_lambda, d_s=res.d_s, config=config)


def consistency(
    fused: ArrayLike,
    hsi: ArrayLike,
    msi: ArrayLike,
    *,
    degrade: Operator,
    spectral: Operator | torch.Tensor | np.ndarray,
    data_range: DataRange,
    aggregate: Literal["band_mean", "cube"] = "band_mean",
) -> dict[str, torch.Tensor]:
    """Spatial and spectral consistency of a fused image with its inputs.

    Parameters
    ----------
    fused : Tensor or ndarray of shape (B, L, H, W)
        Fused image F.
    hsi : Tensor or ndarray of shape (B, L, h, w)
        LR-HSI x.
    msi : Tensor or ndarray of shape (B, l, H, W)
        HR-MSI Y.
    degrade : callable
        Spatial operator D, (B, L, H, W) -> (B, L, h, w); called on float64.
    spectral : callable or array of shape (l, L)
        Spectral response R, as an operator or a matrix.
    data_range : float or {"ref_band_max", "ref_global_max"}
        PSNR peak, as in :func:`hyperfuse.metrics.functional.psnr` (taken from
        x and Y respectively).
    aggregate : {"band_mean", "cube"}
        PSNR aggregation.

    Returns
    -------
    dict of str to Tensor of shape (B,)
        ``spatial_psnr`` = PSNR(D(F), x), ``spectral_psnr`` = PSNR(R·F, Y),
        ``spatial_mae`` and ``spectral_mae``.

    Notes
    -----
    Good values are necessary but not sufficient for a good fusion. Operators
    are called on float64 tensors; one that rejects them (float32 buffers) is
    called again on float32.

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> x = torch.rand(1, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> R = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]], dtype=torch.float64)
    >>> pool = lambda t: F.avg_pool2d(t, 2)
    >>> out = consistency(x, pool(x), torch.einsum("ml,blhw->bmhw", R, x),
    ...                   degrade=pool, spectral=R, data_range=1.0)
    >>> out["spatial_mae"], out["spectral_mae"]
    (tensor([0.], dtype=torch.float64), tensor([0.], dtype=torch.float64))
    """
    f = _as_float64(fused, "fused")
    x = _as_float64(hsi, "hsi").to(f.device)
    y = _as_float64(msi, "msi").to(f.device)
    df = _apply(degrade, f, "degrade", tuple(x.shape[-2:]))
    if callable(spectral) and not isinstance(spectral, torch.Tensor | np.ndarray):
        rf = _apply(spectral, f, "spectral", tuple(y.shape[-2:]))
    else:
        rm = (
            spectral.detach().to(torch.float64)
            if isinstance(spectral, torch.Tensor)
            else torch.from_numpy(np.array(spectral, dtype=np.float64))
        ).to(f.device)
        if rm.ndim != 2 or rm.shape[1] != f.shape[1]:
            raise ShapeError(
                f"spectral matrix must be (l, {f.shape[1]}), got {tuple(rm.shape)}; "
                "pass R with one row per MSI band"
            )
        rf = torch.einsum("ml,blhw->bmhw", rm, f)
    if rf.shape != y.shape:
        raise ShapeError(f"R·F has shape {tuple(rf.shape)} but msi is {tuple(y.shape)}")
    return {
        "spatial_psnr": psnr(df, x, data_range=data_range, aggregate=aggregate),
        "spectral_psnr": psnr(rf, y, data_range=data_range, aggregate=aggregate),
        "spatial_mae": mae(df, x),
        "spectral_mae": mae(rf, y),
    }
