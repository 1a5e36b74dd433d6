"""GSA — Gram–Schmidt adaptive component substitution, as hypersharpening (``classical.md`` §4).

Each HS band joins the MS band it correlates with best (at LR). For every group, the MS
band P is the "pan": an intensity I is regressed from the group's HS bands at LR, and
each band receives the detail P − I with its own gain, the GSA injection rule of Aiazzi et
al. (2007) applied per group as in the hypersharpening scheme of Selva et al. (2015).

The helpers shared by the regression-based methods (SFIM-HS, GLP-HS) also live here:
sensor resolution, the LR MSI, the correlation grouping and the uncovered-band warning.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from ...errors import InputError
from ...physics.interpolate import lr_pixel_centre, up_bicubic
from ...physics.sensor import FusionPhysics, make_sensor
from ...types import FusionResult
from ..base import FusionMethod
from ..registry import register_method

__all__ = ["GSA", "GSAConfig", "ProgressFn", "correlation_groups"]

ProgressFn = Callable[[str, int, int, float], None]
"""``progress(stage, i, total, cost)``; ``cost`` is NaN for methods without a cost."""

EPS = 1e-12


# --------------------------------------------------------------------- shared helpers
def _resolve_physics(
    hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics | None
) -> FusionPhysics:
    """The given physics on the data's device, or the default sensor for the pair's ratio."""
    if physics is None:
        physics = FusionPhysics(make_sensor(msi.shape[-1] // hsi.shape[-1]))
    return physics.to(hsi.device)


def _centre(physics: FusionPhysics) -> tuple[float, float]:
    """HR coordinate of LR pixel 0's centre for the physics' PSF and offset."""
    psf = physics.spatial.psf
    return lr_pixel_centre((int(psf.shape[0]), int(psf.shape[1])), physics.spatial.offset)


def _warn_uncovered(physics: FusionPhysics | None, method: str, stacklevel: int = 5) -> list[int]:
    """Warn (and keep) MS bands whose SRF row is zero; returns their indices."""
    if physics is None or physics.spec.srf is None:
        return []
    R = np.asarray(physics.spec.srf, dtype=np.float64)
    bad = np.flatnonzero(~(R > 0).any(axis=1)).tolist()
    if bad:
        warnings.warn(
            f"{method}: MSI band(s) {bad} are not covered by the HSI (zero SRF row); "
            "they are kept and only supply spatial detail",
            UserWarning,
            stacklevel=stacklevel,
        )
    return bad


def _check_dtype(name: str) -> torch.dtype:
    if name not in ("float32", "float64"):
        raise InputError(f"dtype must be 'float32' or 'float64', got {name!r}")
    return torch.float64 if name == "float64" else torch.float32


def _centred_cols(Y: torch.Tensor) -> torch.Tensor:
    """Rows of a (c, n) matrix minus their means, in float64."""
    Y = Y.to(torch.float64)
    return Y - Y.mean(dim=1, keepdim=True)


def correlation_groups(yh: torch.Tensor, ym_lr: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Assign each HS band to the LR MS band it correlates with best.

    Parameters
    ----------
    yh : Tensor of shape (L, n)
        HS bands (pixels as columns).
    ym_lr : Tensor of shape (l, n)
        MS bands degraded to the HS grid.

    Returns
    -------
    groups : ndarray of shape (L,)
        g(j) = argmax_k CC[k, j] (ties to the lowest k; constant bands correlate 0).
    cc : ndarray of shape (l, L)
        Correlation coefficients over the LR pixels.

    Examples
    --------
    >>> t = torch.linspace(0, 1, 20)
    >>> g, cc = correlation_groups(torch.stack([t, -t, t**2]), torch.stack([-t, t]))
    >>> g.tolist()
    [1, 0, 1]
    """
    a = _centred_cols(yh)
    b = _centred_cols(ym_lr)
    na = a.norm(dim=1)
    nb = b.norm(dim=1)
    cc = (b @ a.T) / torch.clamp(nb[:, None] * na[None, :], min=1e-300)
    cc = torch.where((nb[:, None] > 0) & (na[None, :] > 0), cc, torch.zeros_like(cc))
    ccn = cc.cpu().numpy()
    return np.argmax(ccn, axis=0), ccn


def _rtol(dtype: torch.dtype) -> float:
    """Relative singular-value cut-off for fits on data of ``dtype`` (its rounding level)."""
    return 1e-10 if dtype == torch.float64 else 1e-6


def _min_norm_lstsq(M: torch.Tensor, y: torch.Tensor, rtol: float = 1e-10) -> torch.Tensor:
    """Minimum-norm least-squares solution of M β ≈ y, in float64.

    M (n×p, tall) is reduced by a QR factorisation, M = QT, and the small p×p factor T is
    pseudo-inverted by SVD with singular values below ``rtol`` times the largest treated as
    zero, so collinear columns (also collinear up to the data's rounding, e.g. constant bands
    in float32) get the minimum-norm solution. Cost O(n·p²), on M's device.
    """
    M = M.to(torch.float64)
    y = y.to(torch.float64)
    vec = y.ndim == 1
    Y = y[:, None] if vec else y
    if M.shape[0] >= M.shape[1]:
        Q, T = torch.linalg.qr(M)
        Y = Q.T @ Y
    else:
        T = M
    U, S, Vh = torch.linalg.svd(T, full_matrices=False)
    keep = S > rtol * S[0] if S.numel() and S[0] > 0 else torch.zeros_like(S, dtype=torch.bool)
    inv = torch.where(keep, 1.0 / torch.where(keep, S, torch.ones_like(S)), torch.zeros_like(S))
    sol = Vh.T @ (inv[:, None] * (U.T @ Y))
    return sol[:, 0] if vec else sol


# --------------------------------------------------------------------------- GSA
@dataclass(frozen=True)
class GSAConfig:
    """Options of :class:`GSA` (``classical.md`` §4: GSA has no tuning parameters).

    Parameters
    ----------
    clip : bool, default False
        Clip the output to [0, ∞).
    dtype : {"float32", "float64"}, default "float32"
        Working precision of the HR arrays (fits and statistics always use float64).
    """

    clip: bool = False
    dtype: Literal["float32", "float64"] = "float32"


@register_method("gsa", config=GSAConfig)
class GSA(FusionMethod):
    """Gram–Schmidt adaptive (GSA) hypersharpening.

    Parameters
    ----------
    config : GSAConfig, optional
    progress : callable, optional
        ``progress("gsa", i, total, nan)`` after each band group (over all batch items).

    Notes
    -----
    Per batch item, with Y_m^lr = Y_m D (sensor PSF, offset and boundary, or the default
    sensor when none is given) and CC_{k,j} the LR correlation of HS band j with Y^lr_{m,k},
    band j joins group G_k, k = argmax CC_{·,j}. For each non-empty group, with P = Y_{m,k}:

    .. math::

        \\tilde H_j = \\mathrm{up}(y_{h,j}),\\quad \\tilde H^0_j = \\tilde H_j - \\tilde\\mu_j,
        \\quad P^0 = P - \\bar P,

        (\\alpha, \\alpha_0) = \\arg\\min \\| P^0 D - \\textstyle\\sum_j \\alpha_j h^0_j
        - \\alpha_0 \\|^2 \\ \\text{(LR pixels, minimum norm)},

        I^0 = \\textstyle\\sum_j \\alpha_j \\tilde H^0_j,\\quad
        g_j = \\frac{\\mathrm{cov}(I^0, \\tilde H^0_j)}{\\mathrm{var}(I^0)},\\quad
        F_j = \\tilde H^0_j + g_j (P^0 - I^0) + \\tilde\\mu_j .

    Because Σ_j α_j g_j = 1, the fused group's synthetic intensity equals the MS band:
    Σ_j α_j (F_j − μ̃_j) = P⁰. ``up`` is :func:`~hyperfuse.physics.interpolate.up_bicubic`
    on the sensor's sampling phase. If var(I⁰) = 0 (e.g. a constant P) the group is only
    interpolated (g = 0) and a warning is issued. MS bands with a zero SRF row are kept,
    with a warning. The SRF itself is not needed.

    Cost ≈ 25·L·N (bicubic upsampling) plus O(n·|G_k|²) per fit; memory: one group's
    |G_k|·N plus the output.

    ``FusionResult.info``: ``groups`` (per item, per group: MS band, HS members, α, α₀, μ̃,
    gains), ``correlation`` (l×L per item), ``degenerate_groups``, ``uncovered_bands``,
    ``time_s``.

    References
    ----------
    B. Aiazzi, S. Baronti, M. Selva, "Improving component substitution pansharpening through
    multivariate regression of MS+Pan data", IEEE TGRS 45(10), 2007.
    M. Selva, B. Aiazzi, F. Butera, L. Chiarantini, S. Baronti, "Hyper-sharpening: a first
    approach on SIM-GA data", IEEE JSTARS 8(6), 2015.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> hsi, msi = torch.rand(1, 6, 4, 4, generator=g), torch.rand(1, 2, 16, 16, generator=g)
    >>> tuple(GSA().fuse(hsi, msi, None).cube.shape)
    (1, 6, 16, 16)
    """

    description = "GSA (Aiazzi et al. 2007): Gram-Schmidt adaptive component substitution, hypersharpening"
    needs_srf = False  # regresses the intensity; the SRF is not used

    def __init__(self, config: GSAConfig | None = None, *, progress: ProgressFn | None = None) -> None:
        super().__init__(config or GSAConfig())
        self.progress = progress
        _check_dtype(self.config.dtype)

    def _fuse(
        self, hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics | None
    ) -> FusionResult:
        t0 = time.perf_counter()
        cfg = self.config
        dtype = _check_dtype(cfg.dtype)
        uncovered = _warn_uncovered(physics, "GSA")
        phys = _resolve_physics(hsi, msi, physics)
        r = phys.ratio
        centre = _centre(phys)
        hsi = hsi.detach().to(dtype)
        msi = msi.detach().to(dtype)
        B, L, h, w = hsi.shape
        l, H, W = msi.shape[1:]
        out = hsi.new_empty((B, L, H, W))
        ym_lr_all = phys.spatial.A(msi)
        ones_lr = phys.spatial.A(msi.new_ones((1, 1, H, W)))
        info_groups: list[list[dict[str, Any]]] = []
        ccs: list[list[list[float]]] = []
        degenerate: list[tuple[int, int]] = []
        n_groups_total = 0
        groups_per_item = []
        for b in range(B):
            g, cc = correlation_groups(hsi[b].reshape(L, -1), ym_lr_all[b].reshape(l, -1))
            groups_per_item.append((g, cc))
            n_groups_total += len(np.unique(g))
        step = 0
        for b in range(B):
            g, cc = groups_per_item[b]
            ccs.append(cc.tolist())
            item_groups: list[dict[str, Any]] = []
            for k in range(l):
                members = np.flatnonzero(g == k)
                if members.size == 0:
                    continue
                idx = torch.as_tensor(members, device=hsi.device)
                yh = hsi[b, idx]  # (m, h, w)
                Ht = up_bicubic(yh, r, offset=centre)  # (m, H, W)
                mu = Ht.to(torch.float64).mean(dim=(1, 2))
                H0 = Ht - mu.to(dtype)[:, None, None]
                P = msi[b, k]
                p_mean = P.to(torch.float64).mean()
                P0 = P - p_mean.to(dtype)
                # P⁰D = PD − mean(P)·1D, reusing the degraded MSI (D is linear).
                P0_lr = ym_lr_all[b, k] - p_mean.to(dtype) * ones_lr[0, 0]
                h0 = _centred_cols(yh.reshape(members.size, -1))  # (m, n)
                M = torch.cat([h0.T, h0.new_ones(h0.shape[1], 1)], dim=1)
                coef = _min_norm_lstsq(M, P0_lr.reshape(-1), _rtol(dtype))
                alpha = coef[:-1]
                I0 = torch.einsum("m,mhw->hw", alpha.to(dtype), H0)
                I0c = I0 - I0.to(torch.float64).mean().to(dtype)
                # cov(I⁰, H̃⁰_j) (H̃⁰_j has zero mean); var(I⁰) = Σ_j α_j cov_j, so that
                # Σ_j α_j g_j = 1 holds to rounding.
                cov = (H0.reshape(members.size, -1) @ I0c.reshape(-1)).to(torch.float64) / I0c.numel()
                var_I = float((alpha * cov).sum())
                var_P = float(P0.to(torch.float64).pow(2).mean())
                level = float(p_mean) ** 2 + var_P
                if var_P <= 1e-12 * level or var_I <= max(1e-12 * var_P, 1e-300):
                    degenerate.append((b, k))
                    warnings.warn(
                        f"GSA: the intensity of MS band {k} has zero variance (constant band or "
                        "no fit); its HS bands are only interpolated",
                        UserWarning,
                        stacklevel=3,
                    )
                    gains = torch.zeros_like(alpha)
                else:
                    gains = cov / var_I
                detail = (P0 - I0)[None]
                F = H0 + gains.to(dtype)[:, None, None] * detail + mu.to(dtype)[:, None, None]
                out[b, idx] = F
                item_groups.append(
                    {
                        "msi_band": k,
                        "hsi_bands": members.tolist(),
                        "alpha": alpha.tolist(),
                        "alpha0": float(coef[-1]),
                        "mu": mu.tolist(),
                        "gains": gains.tolist(),
                    }
                )
                step += 1
                if self.progress is not None:
                    self.progress("gsa", step, n_groups_total, math.nan)
            info_groups.append(item_groups)
        if cfg.clip:
            out = out.clamp_min(0)
        return FusionResult(
            cube=out.to(torch.float32),
            info={
                "groups": info_groups,
                "correlation": ccs,
                "degenerate_groups": degenerate,
                "uncovered_bands": uncovered,
                "centre": list(centre),
                "time_s": time.perf_counter() - t0,
            },
        )
