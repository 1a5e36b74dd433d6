"""Sensor estimation from the data pair: relative SRF by NNLS with offset (``classical.md`` §2.3)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from scipy.linalg import qr
from scipy.optimize import nnls

from .._validation import check_ratio
from ..errors import InputError, ShapeError, SRFError
from . import functional as Fn
from .functional import Boundary

__all__ = ["SRFEstimate", "estimate_srf_nnls"]


@dataclass(frozen=True)
class SRFEstimate:
    """Result of :func:`estimate_srf_nnls`.

    Parameters
    ----------
    srf : ndarray of shape (l, L)
        Relative spectral response R (rows need not sum to 1), non-negative.
    offset : ndarray of shape (l,)
        Per-band additive offsets b_k of the MSI: ``msi_k ≈ R[k] @ hsi + b_k``.
    error : ndarray of shape (l,)
        Fit errors e_k = RMSE_k / mean(ỹ_k); above 0.1 the band is not covered by the HSI.
    """

    srf: np.ndarray
    offset: np.ndarray
    error: np.ndarray


def _as_cube(x: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4 or t.numel() == 0:
        raise ShapeError(f"{name} must have shape (C, H, W) or (B, C, H, W), got {tuple(t.shape)}")
    return t.detach().to("cpu", torch.float64)


def _nonneg_lstsq(A: np.ndarray, y: np.ndarray) -> np.ndarray:
    """min ||A x - y|| subject to x >= 0: Lawson-Hanson, falling back to bounded-variable
    least squares when it does not converge (under-determined systems, e.g. fewer LR
    pixels than HS bands, can make Lawson-Hanson cycle)."""
    try:
        return nnls(A, y, maxiter=50 * A.shape[1])[0]
    except RuntimeError:
        from scipy.optimize import lsq_linear

        return np.asarray(lsq_linear(A, y, bounds=(0.0, np.inf), method="bvls").x)


def estimate_srf_nnls(
    hsi: Any,
    msi: Any,
    ratio: int,
    *,
    psf: np.ndarray | torch.Tensor | None = None,
    offset: tuple[int, int] | None = None,
    boundary: Boundary = "circular",
    fit_offset: bool | Literal["auto"] = "auto",
) -> SRFEstimate:
    """Estimate a relative SRF R (l, L) and MSI offsets by non-negative least squares.

    Parameters
    ----------
    hsi : array or Tensor of shape (B, L, h, w) or (L, h, w)
        LR hyperspectral image.
    msi : array or Tensor of shape (B, l, H, W) or (l, H, W)
        HR multispectral image, H = ratio·h. All batch items share one sensor: their pixels
        are pooled.
    ratio : int
        Resolution ratio r.
    psf : array of shape (K, K), optional
        PSF used to bring the MSI to the HSI grid. Default: Gaussian with FWHM = r on the
        default grid (``classical.md`` §1).
    offset : tuple of int, optional
        Sampling offset (o_y, o_x). Default (⌊r/2⌋, ⌊r/2⌋).
    boundary : {"circular", "reflect", "replicate", "zeros"}, default "circular"
        Boundary mode of the blur.
    fit_offset : bool or "auto", default "auto"
        Whether each band gets a free offset b_k. ``"auto"`` fits both models and keeps the
        offset only where it pays for its parameter by the Bayesian information criterion
        (n·ln(RSS₀/RSS₁) > ln n over the n LR pixels, and RSS₀ − RSS₁ above 1e-12·‖ỹ_k‖²,
        float64 round-off); otherwise b_k = 0. When the abundances sum to one, the offset
        and the direction of R that sees only the pixel sum are confounded: both models
        fit, and a free offset hands the fusion an SRF that differs from the true one
        along that direction.

    Returns
    -------
    SRFEstimate
        ``srf`` (l, L), ``offset`` (l,) and fit ``error`` (l,), float64.

    Raises
    ------
    ShapeError
        If the shapes do not agree with ``ratio``.
    SRFError
        If an MSI band has zero mean after degradation (its relative error is undefined).

    Notes
    -----
    With Ỹ_m = Y_m D, each band k solves
    ``min ‖ỹ_k − Y_hᵀ ρ − b_k 1‖²`` s.t. ρ ≥ 0, b_k free (or 0, see ``fit_offset``). The free offset is eliminated by
    centring ỹ_k and the rows of Y_h over pixels; b_k = mean(ỹ_k) − ρᵀ mean(Y_h). The centred
    n×L system is first reduced by a QR factorisation (Y_cᵀ = QT, so
    ‖Y_cᵀρ − c‖² = ‖Tρ − Qᵀc‖² + const), then solved by Lawson–Hanson NNLS
    (:func:`scipy.optimize.nnls`). Cost O(L²n + l·L³). Callers subtract the offsets:
    ``msi_k ← max(msi_k − b_k, 0)``.

    Examples
    --------
    >>> g = np.random.default_rng(0)
    >>> X = torch.from_numpy(g.uniform(0, 1, (1, 6, 16, 16)))
    >>> R = np.array([[0.5, 0.5, 0, 0, 0, 0], [0, 0, 0, 0.2, 0.3, 0.4]])
    >>> psf = Fn.gaussian_psf(Fn.fwhm_to_sigma(4), 14)
    >>> hsi = Fn.spatial_degrade(X, psf, 4, (2, 2), "circular")
    >>> msi = Fn.apply_srf(X, R) + 0.1
    >>> est = estimate_srf_nnls(hsi, msi, 4)
    >>> bool(np.allclose(est.srf, R, atol=1e-8)), np.round(est.offset, 6).tolist()
    (True, [0.1, 0.1])
    """
    r = check_ratio(ratio)
    if fit_offset not in (True, False, "auto"):
        raise InputError(f"fit_offset must be True, False or 'auto', got {fit_offset!r}")
    Yh = _as_cube(hsi, "hsi")
    Ym = _as_cube(msi, "msi")
    B, L, h, w = Yh.shape
    if Ym.shape[0] != B or Ym.shape[-2:] != (h * r, w * r):
        raise ShapeError(
            f"msi shape {tuple(Ym.shape)} does not match hsi {tuple(Yh.shape)} at ratio {r}; "
            "check --ratio"
        )
    if psf is None:
        sigma = Fn.fwhm_to_sigma(r)
        psf = Fn.gaussian_psf(sigma, Fn.default_psf_size(sigma, r))
    o = (r // 2, r // 2) if offset is None else (int(offset[0]), int(offset[1]))
    Yt = Fn.spatial_degrade(Ym, torch.as_tensor(np.asarray(psf), dtype=torch.float64), r, o, boundary)
    Yt = Yt.permute(1, 0, 2, 3).reshape(Ym.shape[1], -1).numpy()  # (l, B n)
    Y = Yh.permute(1, 0, 2, 3).reshape(L, -1).numpy()  # (L, B n)
    mu_y = Y.mean(axis=1)
    Yc = (Y - mu_y[:, None]).T  # (B n, L)
    n_px = Y.shape[1]
    Q, T = qr(Yc, mode="economic") if fit_offset is not False else (None, None)
    Q0, T0 = qr(Y.T, mode="economic") if fit_offset is not True else (None, None)
    l = Yt.shape[0]
    R = np.zeros((l, L))
    b = np.zeros(l)
    err = np.zeros(l)
    for k in range(l):
        yk = Yt[k]
        mk = float(yk.mean())
        if mk == 0:
            raise SRFError(
                f"MSI band {k} is zero everywhere after degradation; drop it before estimating the SRF"
            )
        fits = []
        if Q is not None:
            rho = _nonneg_lstsq(T, Q.T @ (yk - mk))
            off = mk - float(rho @ mu_y)
            fits.append((rho, off, float(np.sum((yk - rho @ Y - off) ** 2))))
        if Q0 is not None:
            rho0 = _nonneg_lstsq(T0, Q0.T @ yk)
            fits.append((rho0, 0.0, float(np.sum((yk - rho0 @ Y) ** 2))))
        if len(fits) == 2 and not _offset_pays(fits[1][2], fits[0][2], n_px, float(yk @ yk)):
            fits = fits[1:]
        R[k], b[k], rss = fits[0]
        err[k] = float(np.sqrt(rss / n_px)) / abs(mk)
    return SRFEstimate(srf=R, offset=b, error=err)


def _offset_pays(rss_without: float, rss_with: float, n: int, energy: float) -> bool:
    """BIC for one extra parameter: n ln(RSS₀/RSS₁) > ln n, beyond float64 round-off."""
    gain = rss_without - rss_with
    if gain <= 1e-12 * energy:
        return False
    return n * math.log(rss_without / max(rss_with, 1e-300)) > math.log(n)
