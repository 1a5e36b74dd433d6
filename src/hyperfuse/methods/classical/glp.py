"""GLP-HS — MTF-matched generalized Laplacian pyramid with hypersharpening (``classical.md`` §6).

Each HS band is interpolated with the GLP FIR interpolator and receives the high-pass detail
of its regressed synthetic MS band, s_j − s_j^LP, where s_j^LP is s_j low-passed with the
sensor's MTF, decimated and interpolated back exactly as the HS band was. One global gain
per band (the regression of the interpolated HS band on s_j^LP) scales the injection.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ...errors import InputError
from ...physics import functional as Fn
from ...physics.interpolate import up_fir
from ...physics.sensor import FusionPhysics
from ...types import FusionResult
from ..base import FusionMethod
from ..registry import register_method
from .gsa import ProgressFn, _centre, _check_dtype, _resolve_physics, _warn_uncovered
from .sfim import _apply_weights, _band_chunks, synthetic_band_weights

__all__ = ["GLPHS", "GLPConfig", "mtf_kernel"]


def mtf_kernel(ratio: int, *, nyquist_gain: float = 0.3, parity: int | None = None) -> np.ndarray:
    """Gaussian MTF kernel whose frequency response at the LR Nyquist frequency is ``nyquist_gain``.

    Parameters
    ----------
    ratio : int
        Resolution ratio r.
    nyquist_gain : float, default 0.3
        G_N ∈ (0, 1); σ = (r/π)·√(−2 ln G_N) (≈ 0.494·r for 0.3).
    parity : int, optional
        Force K ≡ parity (mod 2) (to share the sensor PSF's sampling centre); default K ≡ r.

    Returns
    -------
    ndarray of shape (K, K)
        K = the smallest width ≥ 2⌈3σ⌉ + 1 with the required parity; sums to 1.

    Examples
    --------
    >>> mtf_kernel(4).shape, round(float(mtf_kernel(4).sum()), 12)
    ((14, 14), 1.0)
    """
    if not 0 < nyquist_gain < 1:
        raise InputError(f"nyquist_gain must lie in (0, 1), got {nyquist_gain}; pass e.g. 0.3")
    sigma = ratio / math.pi * math.sqrt(-2.0 * math.log(nyquist_gain))
    K = 2 * math.ceil(3.0 * sigma) + 1
    want = ratio % 2 if parity is None else parity % 2
    if K % 2 != want:
        K += 1
    return Fn.gaussian_psf(sigma, K)


@dataclass(frozen=True)
class GLPConfig:
    """Options of :class:`GLPHS` (``classical.md`` §6).

    Parameters
    ----------
    mtf : {"sensor", "nyquist", "fwhm"}, default "sensor"
        D_MTF: the sensor's PSF (MTF matching; without a sensor this falls back to
        ``"nyquist"``), a Gaussian with Nyquist gain ``nyquist_gain``, or a Gaussian with
        FWHM = r (Nyquist gain ≈ 0.41, the review package's setting).
    nyquist_gain : float, default 0.3
        G_N of the ``"nyquist"`` MTF.
    taps : int, default 45
        Length of the FIR interpolator.
    clip : bool, default False
        Clip the output to [0, ∞).
    dtype : {"float32", "float64"}, default "float32"
        Working precision of the HR arrays.
    """

    mtf: Literal["sensor", "nyquist", "fwhm"] = "sensor"
    nyquist_gain: float = 0.3
    taps: int = 45
    clip: bool = False
    dtype: Literal["float32", "float64"] = "float32"


@register_method("glp-hs", config=GLPConfig)
class GLPHS(FusionMethod):
    """MTF-GLP hypersharpening with regressed synthetic MS bands.

    Parameters
    ----------
    config : GLPConfig, optional
    progress : callable, optional
        ``progress("glp", i, total, nan)`` after each chunk of bands (over all items).

    Notes
    -----
    With s_j = M_hr β_j the least-squares synthetic band of SFIM-HS (``mode="ls"``):

    .. math::

        \\hat Y_j = \\mathrm{up}(y_{h,j}),\\quad
        s^{LP}_j = \\mathrm{up}(s_j D_{MTF}),\\quad
        g_j = \\frac{\\mathrm{cov}(\\hat Y_j, s^{LP}_j)}{\\mathrm{var}(s^{LP}_j)},\\quad
        F_j = \\hat Y_j + g_j (s_j - s^{LP}_j),

    with ``up`` = :func:`~hyperfuse.physics.interpolate.up_fir` at the sensor's LR pixel
    centre (fractional for even PSF widths, so both phases of the reference's
    ``phase_average`` are unnecessary). D_MTF samples at the same offset as the sensor.
    Since s_j D_MTF is linear in the MS bands, only the l MS bands are filtered and
    interpolated. If var(s_j^LP) = 0 the band is only interpolated (g = 0, warning).

    Cost ≈ 2·T/r·L·N (FIR interpolation of the HS bands) plus the same for the l MS bands;
    memory: a chunk of bands plus the output.

    References
    ----------
    B. Aiazzi, L. Alparone, S. Baronti, A. Garzelli, M. Selva, "MTF-tailored multiscale fusion
    of high-resolution MS and Pan imagery", PE&RS 72(5), 2006.
    M. Selva et al., "Hyper-sharpening: a first approach on SIM-GA data", IEEE JSTARS 8(6),
    2015.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> hsi, msi = torch.rand(1, 6, 4, 4, generator=g), torch.rand(1, 2, 16, 16, generator=g)
    >>> tuple(GLPHS().fuse(hsi, msi, None).cube.shape)
    (1, 6, 16, 16)
    """

    description = "GLP-HS (Aiazzi et al. 2006): MTF-matched Laplacian pyramid, hypersharpening"
    needs_srf = False

    def __init__(self, config: GLPConfig | None = None, *, progress: ProgressFn | None = None) -> None:
        super().__init__(config or GLPConfig())
        self.progress = progress
        cfg = self.config
        _check_dtype(cfg.dtype)
        if cfg.mtf not in ("sensor", "nyquist", "fwhm"):
            raise InputError(f"mtf must be 'sensor', 'nyquist' or 'fwhm', got {cfg.mtf!r}")
        if cfg.taps < 1 or cfg.taps % 2 == 0:
            raise InputError(f"taps must be odd and positive, got {cfg.taps}; pass e.g. 45")
        if not 0 < cfg.nyquist_gain < 1:
            raise InputError(f"nyquist_gain must lie in (0, 1), got {cfg.nyquist_gain}")

    def _mtf(self, phys: FusionPhysics, known: bool) -> tuple[np.ndarray | torch.Tensor, str]:
        cfg = self.config
        r = phys.ratio
        parity = int(phys.spatial.psf.shape[0]) % 2
        if cfg.mtf == "sensor" and known:
            return phys.spatial.psf, "sensor"
        if cfg.mtf == "fwhm":
            sigma = Fn.fwhm_to_sigma(r)
            K = 2 * math.ceil(3.0 * sigma) + 1
            K += (K - parity) % 2
            return Fn.gaussian_psf(sigma, K), "fwhm"
        return mtf_kernel(r, nyquist_gain=cfg.nyquist_gain, parity=parity), "nyquist"

    def _fuse(
        self, hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics | None
    ) -> FusionResult:
        t0 = time.perf_counter()
        cfg = self.config
        dtype = _check_dtype(cfg.dtype)
        uncovered = _warn_uncovered(physics, "GLP-HS")
        phys = _resolve_physics(hsi, msi, physics)
        r = phys.ratio
        centre = _centre(phys)
        kernel, mtf_used = self._mtf(phys, physics is not None)
        hsi = hsi.detach().to(dtype)
        msi = msi.detach().to(dtype)
        B, L, h, w = hsi.shape
        l, H, W = msi.shape[1:]
        spatial = phys.spatial
        out = hsi.new_empty((B, L, H, W))
        ym_lr_all = spatial.A(msi)
        # Low-pass MS bands: up(Y_m D_MTF), on the sensor's phase (l bands only).
        ms_lp_lr = Fn.spatial_degrade(msi, kernel, r, spatial.offset, spatial.boundary)
        ms_lp = up_fir(ms_lp_lr, r, offset=centre, taps=cfg.taps)
        chunks = _band_chunks(L, H * W)
        total, step = B * len(chunks), 0
        gains_all, betas, flat = [], [], []
        for b in range(B):
            beta = synthetic_band_weights(hsi[b].reshape(L, -1), ym_lr_all[b].reshape(l, -1), "ls")
            betas.append(beta.tolist())
            gains_b: list[float] = []
            for sl in chunks:
                Yup = up_fir(hsi[b, sl], r, offset=centre, taps=cfg.taps)  # (m, H, W)
                s = _apply_weights(beta[sl], msi[b], dtype)
                s_lp = _apply_weights(beta[sl], ms_lp[b], dtype)
                a = s_lp.to(torch.float64)
                a = a - a.mean(dim=(1, 2), keepdim=True)
                y = Yup.to(torch.float64)
                y = y - y.mean(dim=(1, 2), keepdim=True)
                var = (a * a).mean(dim=(1, 2))
                cov = (a * y).mean(dim=(1, 2))
                # Constant up to rounding: relative spread below 1e-6 of the band's level.
                level = s_lp.to(torch.float64).pow(2).mean(dim=(1, 2))
                bad = var <= torch.clamp(1e-12 * level, min=1e-300)
                g = torch.where(bad, torch.zeros_like(cov), cov / torch.clamp(var, min=1e-300))
                if bool(bad.any()):
                    idx = (torch.nonzero(bad).flatten() + sl.start).tolist()
                    flat.extend(idx)
                    warnings.warn(
                        f"GLP-HS: the low-pass synthetic band of HS band(s) {idx} is constant; "
                        "they are only interpolated",
                        UserWarning,
                        stacklevel=3,
                    )
                out[b, sl] = Yup + g.to(dtype)[:, None, None] * (s - s_lp)
                gains_b.extend(g.tolist())
                step += 1
                if self.progress is not None:
                    self.progress("glp", step, total, math.nan)
            gains_all.append(gains_b)
        if cfg.clip:
            out = out.clamp_min(0)
        return FusionResult(
            cube=out.to(torch.float32),
            info={
                "mtf": mtf_used,
                "gains": gains_all,
                "weights": betas,
                "interpolation_only_bands": flat,
                "uncovered_bands": uncovered,
                "centre": list(centre),
                "time_s": time.perf_counter() - t0,
            },
        )
