"""FUSE — fast fusion by a closed-form Sylvester solution (Wei, Dobigeon, Tourneret 2015).

``classical.md`` §8. The image is X = E U with E a whitened PCA basis of the LR-HSI; U
minimises a weighted least-squares data fit to both images plus a Gaussian prior around the
interpolated HSI. Its normal equations, A_h U DDᵀ + A_m U = C, decouple after a generalised
eigendecomposition of (A_m, A_h) into one equation per component, each solved exactly in the
Fourier domain (circular boundary): the r² aliases of an LR frequency couple through a rank-one
term, which Sherman–Morrison removes (the Woodbury form of R-FUSE, Wei et al. 2016).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from ...errors import InputError, SRFError
from ...physics.interpolate import lr_pixel_centre, up_bicubic
from ...physics.sensor import FusionPhysics
from ...types import FusionResult
from ...unmix import hysime
from ..base import FusionMethod
from ..registry import register_method
from .gsa import ProgressFn

__all__ = ["FUSE", "FUSEConfig", "fourier_kernel", "sylvester_solve", "pca_basis"]


def fourier_kernel(
    psf: torch.Tensor | np.ndarray, offset: tuple[int, int], shape: tuple[int, int]
) -> torch.Tensor:
    """Ĝ: the blur and sampling offset of D as an (H, W) complex128 transfer function.

    Parameters
    ----------
    psf : array of shape (K_h, K_w)
        The PSF k (correlation form).
    offset : tuple of int
        Sampling offset (o_y, o_x).
    shape : tuple of int
        HR grid (H, W).

    Returns
    -------
    Tensor of shape (H, W), complex128

    Notes
    -----
    k[u, v] is added into P at ((u − ⌊K_h/2⌋ + o_y) mod H, (v − ⌊K_w/2⌋ + o_x) mod W) and
    Ĝ = conj(FFT2(P)). Then, with circular boundary,
    X D = IFFT2(Ĝ ⊙ FFT2(X))[0::r, 0::r]: the offset is folded into Ĝ.

    Examples
    --------
    >>> G = fourier_kernel(np.ones((1, 1)), (0, 0), (4, 4))
    >>> bool(torch.allclose(G, torch.ones(4, 4, dtype=torch.complex128)))
    True
    """
    k = torch.as_tensor(psf, dtype=torch.float64)
    kh, kw = k.shape
    H, W = shape
    dev = k.device
    iy = (torch.arange(kh, device=dev) - kh // 2 + offset[0]) % H
    ix = (torch.arange(kw, device=dev) - kw // 2 + offset[1]) % W
    P = torch.zeros(H, W, dtype=torch.float64, device=dev)
    P.index_put_((iy[:, None].expand(kh, kw), ix[None, :].expand(kh, kw)), k, accumulate=True)
    return torch.conj(torch.fft.fft2(P))


def pca_basis(yh: torch.Tensor, k: int, *, drop_rel: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """Whitened (uncentred) PCA basis of the HS pixels.

    Parameters
    ----------
    yh : Tensor of shape (L, n)
    k : int
        Maximum number of components (capped at L).
    drop_rel : float
        Components with eigenvalue s_i < drop_rel·s_1 are dropped.

    Returns
    -------
    E : Tensor of shape (L, k'), float64
        V·diag(√s), so that X = E U with U whitened.
    s : Tensor of shape (k',), float64
        The kept eigenvalues of Y_h Y_hᵀ / n, descending.

    Examples
    --------
    >>> E, s = pca_basis(torch.rand(5, 40, dtype=torch.float64), 3)
    >>> tuple(E.shape), bool((s[:-1] >= s[1:]).all())
    ((5, 3), True)
    """
    Y = yh.to(torch.float64)
    C = Y @ Y.T / Y.shape[1]
    evals, evecs = torch.linalg.eigh(C)
    evals, evecs = evals.flip(0), evecs.flip(1)
    k = max(1, min(int(k), Y.shape[0]))
    top = float(evals[0]) if evals.numel() else 0.0
    keep = int(((evals[:k] >= drop_rel * top) & (evals[:k] > 0)).sum()) if top > 0 else 0
    if keep == 0:
        raise InputError("the HSI is identically zero; FUSE needs a non-zero HSI")
    s = evals[:keep]
    return evecs[:, :keep] * s.sqrt()[None, :], s


def sylvester_solve(
    hsi: torch.Tensor,
    msi: torch.Tensor,
    srf: torch.Tensor | np.ndarray,
    psf: torch.Tensor | np.ndarray,
    ratio: int,
    offset: tuple[int, int],
    basis: torch.Tensor,
    prior: torch.Tensor,
    tau: float,
    *,
    hsi_weights: torch.Tensor | None = None,
    msi_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Closed-form minimiser U of the FUSE objective for one image (float64 / complex128).

    Parameters
    ----------
    hsi : Tensor of shape (L, h, w)
        Y_h.
    msi : Tensor of shape (l, H, W)
        Y_m, H = r·h, W = r·w.
    srf : array of shape (l, L)
        R.
    psf : array of shape (K_h, K_w)
        PSF of D (circular boundary).
    ratio : int
        r.
    offset : tuple of int
        Sampling offset of D.
    basis : Tensor of shape (L, k)
        E (any full-column-rank basis).
    prior : Tensor of shape (k, H, W)
        Ū.
    tau : float
        Prior precision τ > 0.
    hsi_weights, msi_weights : Tensor of shape (L,) / (l,), optional
        Diagonal noise weights W_h, W_m (default identity).

    Returns
    -------
    U : Tensor of shape (k, H, W), float64
    info : dict
        ``eigenvalues`` λ of the generalised eigenproblem.

    Notes
    -----
    The minimiser of ½‖W_h^½(Y_h − EUD)‖² + ½‖W_m^½(Y_m − REU)‖² + (τ/2)‖U − Ū‖² solves

    .. math::

        A_h U D D^\\top + A_m U = C,\\quad A_h = E^\\top W_h E,\\quad
        A_m = (RE)^\\top W_m (RE) + \\tau I,

        C = E^\\top W_h Y_h D^\\top + (RE)^\\top W_m Y_m + \\tau \\bar U .

    With A_m Q = A_h Q Λ and QᵀA_hQ = I, U = QW splits into λ_i w_i + w_i DDᵀ = c̃_i,
    C̃ = QᵀC. In Fourier, for the r² aliases f of an LR frequency κ (one (h, w) index of the
    spectra reshaped to (r, h, r, w)):

    .. math::

        s_\\kappa = \\sum_f \\hat G \\hat C_i,\\quad
        d_\\kappa = \\lambda_i r^2 + \\sum_f |\\hat G|^2,\\quad
        \\hat W_i = (\\hat C_i - \\overline{\\hat G} s_\\kappa / d_\\kappa) / \\lambda_i .

    Cost: k LR and 2k HR complex FFTs plus O(L·k·N) projections. Memory: k×N complex128.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.rand(3, 8, 8, dtype=torch.float64, generator=g)
    >>> E = torch.eye(3, dtype=torch.float64)
    >>> psf = np.full((2, 2), 0.25)
    >>> from hyperfuse.physics.functional import spatial_degrade
    >>> yh = spatial_degrade(X[None], psf, 2, (1, 1), "circular")[0]
    >>> ym = X[:2]
    >>> U, _ = sylvester_solve(yh, ym, np.eye(2, 3), psf, 2, (1, 1), E, X, 1e-3)
    >>> bool(torch.allclose(U, X, atol=1e-8))
    True
    """
    r = int(ratio)
    dev = hsi.device
    f64 = torch.float64
    if not tau > 0:
        raise InputError(f"tau must be > 0, got {tau}; pass e.g. 1e-8")
    L, h, w = hsi.shape
    l, H, W = msi.shape
    E = basis.to(dev, f64)
    k = E.shape[1]
    R = torch.as_tensor(np.asarray(srf) if not isinstance(srf, torch.Tensor) else srf)
    R = R.to(dev, f64)
    wh = torch.ones(L, dtype=f64, device=dev) if hsi_weights is None else hsi_weights.to(dev, f64)
    wm = torch.ones(l, dtype=f64, device=dev) if msi_weights is None else msi_weights.to(dev, f64)
    RE = R @ E
    A_h = E.T @ (wh[:, None] * E)
    A_m = RE.T @ (wm[:, None] * RE) + tau * torch.eye(k, dtype=f64, device=dev)
    A_h = 0.5 * (A_h + A_h.T)
    A_m = 0.5 * (A_m + A_m.T)
    # Generalised symmetric eigenproblem through the Cholesky factor of A_h.
    Lc = torch.linalg.cholesky(A_h)
    Li = torch.linalg.solve_triangular(Lc, torch.eye(k, dtype=f64, device=dev), upper=False)
    M = Li @ A_m @ Li.T
    lam, V = torch.linalg.eigh(0.5 * (M + M.T))
    Q = Li.T @ V  # QᵀA_hQ = I, QᵀA_mQ = Λ
    lam = torch.clamp(lam, min=tau * 1e-3)
    # Right-hand side: small products first, then the FFTs.
    Th = (Q.T @ (E.T * wh[None, :])) @ hsi.to(f64).reshape(L, -1)  # (k, n)
    Tm = (Q.T @ (RE.T * wm[None, :])) @ msi.to(f64).reshape(l, -1)  # (k, N)
    Tm = Tm + tau * (Q.T @ prior.to(dev, f64).reshape(k, -1))
    G = fourier_kernel(torch.as_tensor(psf).to(dev), offset, (H, W))
    Ch = torch.fft.fft2(Th.reshape(k, h, w)).tile(1, r, r) * torch.conj(G)
    C = Ch + torch.fft.fft2(Tm.reshape(k, H, W))
    del Ch
    # Per-frequency solve: aliases of an LR frequency share an (h, w) index.
    G5 = G.reshape(r, h, r, w)
    C5 = C.reshape(k, r, h, r, w)
    s = (G5[None] * C5).sum(dim=(1, 3), keepdim=True)  # (k, 1, h, 1, w)
    d = (G5.abs() ** 2).sum(dim=(0, 2), keepdim=True)[None]  # (1, 1, h, 1, w)
    lam5 = lam.reshape(k, 1, 1, 1, 1)
    C5 = (C5 - torch.conj(G5)[None] * (s / (lam5 * r * r + d))) / lam5
    Wsp = torch.fft.ifft2(C5.reshape(k, H, W)).real
    U = (Q @ Wsp.reshape(k, -1)).reshape(k, H, W)
    return U, {"eigenvalues": lam.tolist()}


def _hysime_noise(Y: np.ndarray) -> np.ndarray:
    """Per-band noise variance by multiple regression on the other bands (HySime step 1)."""
    L, n = Y.shape
    G = Y @ Y.T + 1e-6 * np.eye(L)
    Gi = np.linalg.inv(G)
    Wn = (Gi @ Y) / np.diag(Gi)[:, None]
    return np.maximum(np.einsum("ij,ij->i", Wn, Wn) / n, 1e-300)


@dataclass(frozen=True)
class FUSEConfig:
    """Options of :class:`FUSE` (``classical.md`` §8).

    Parameters
    ----------
    n_components : int or "hysime", default 15
        Subspace size k (capped at L; eigenpairs below 1e-10·s₁ are dropped). ``"hysime"``
        uses the HySime estimate (at least 1).
    tau : float, default 1e-8
        Prior precision τ on the whitened coefficients (σ_n² with σ_n = 1e-4 reflectance).
    noise : {"identity", "hysime"}, default "identity"
        W_h = W_m = I, or diagonal inverse noise variances estimated by HySime's regression
        (both rescaled by one factor so that mean(W_h) = 1, which keeps τ's meaning).
    drop_uncovered_bands : bool, default True
        Give MS bands with a zero SRF row zero weight (with a warning).
    clip : bool, default False
        Clip the output to [0, ∞).
    """

    n_components: int | Literal["hysime"] = 15
    tau: float = 1e-8
    noise: Literal["identity", "hysime"] = "identity"
    drop_uncovered_bands: bool = True
    clip: bool = False


@register_method("fuse-sylvester", config=FUSEConfig)
class FUSE(FusionMethod):
    """FUSE (Wei et al. 2015): closed-form Sylvester solution in a PCA subspace.

    Parameters
    ----------
    config : FUSEConfig, optional
    progress : callable, optional
        ``progress("fuse", b, B, nan)`` after each batch item (there are no iterations).

    Notes
    -----
    Per batch item: E = V·diag(√s) from the top eigenpairs of Y_hY_hᵀ/n, Ū =
    E⁺·up_bicubic(Y_h) (interpolated on the sensor's sampling phase), then
    :func:`sylvester_solve` with the sensor's SRF, PSF, ratio and offset, and X̂ = E U.
    The model assumes a circular boundary whatever ``sensor.boundary`` says (recorded in
    ``info["boundary"]``); with another boundary the edges carry a small model error. The
    solve runs in float64 / complex128; the result is float32.

    Cost: 2k + 1 complex FFTs of the HR size (k of them LR-sized) plus O(L·k·N);
    memory ≈ 16·k·N bytes (complex128) per item.

    ``FusionResult.info``: ``n_components``, ``eigenvalues``, ``pca_eigenvalues``,
    ``dropped_bands``, ``boundary``, ``time_s``.

    References
    ----------
    Q. Wei, N. Dobigeon, J.-Y. Tourneret, "Fast fusion of multi-band images based on solving a
    Sylvester equation", IEEE TIP 24(11), 2015.
    Q. Wei, N. Dobigeon, J.-Y. Tourneret, J. Bioucas-Dias, S. Godsill, "R-FUSE: robust fast
    fusion of multiband images based on solving a Sylvester equation", IEEE SPL 23(11), 2016.

    Examples
    --------
    >>> from hyperfuse.physics.sensor import make_sensor
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(1, 6, 16, 16, generator=g)
    >>> sensor = make_sensor(4, srf=np.full((2, 6), 1 / 6), boundary="circular")
    >>> phys = FusionPhysics(sensor)
    >>> out = FUSE().fuse(phys.spatial(x), phys.spectral(x), sensor)
    >>> tuple(out.cube.shape), out.cube.dtype
    ((1, 6, 16, 16), torch.float32)
    """

    description = "FUSE (Wei et al. 2015): closed-form Sylvester solution"
    needs_srf = True

    def __init__(self, config: FUSEConfig | None = None, *, progress: ProgressFn | None = None) -> None:
        super().__init__(config or FUSEConfig())
        self.progress = progress
        cfg = self.config
        nc = cfg.n_components
        if not (nc == "hysime" or (isinstance(nc, (int, np.integer)) and not isinstance(nc, bool) and nc >= 1)):
            raise InputError(f"n_components must be a positive int or 'hysime', got {nc!r}")
        if not (isinstance(cfg.tau, (int, float)) and math.isfinite(cfg.tau) and cfg.tau > 0):
            raise InputError(f"tau must be a finite number > 0, got {cfg.tau!r}; pass e.g. 1e-8")
        if cfg.noise not in ("identity", "hysime"):
            raise InputError(f"noise must be 'identity' or 'hysime', got {cfg.noise!r}")

    def _fuse(
        self, hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics | None
    ) -> FusionResult:
        t0 = time.perf_counter()
        cfg = self.config
        assert physics is not None and physics.spec.srf is not None  # guaranteed by fuse()
        spec = physics.spec
        r = spec.ratio
        R = np.asarray(spec.srf, dtype=np.float64)
        dropped = np.flatnonzero(~(R > 0).any(axis=1)).tolist() if cfg.drop_uncovered_bands else []
        if dropped:
            if len(dropped) == R.shape[0]:
                raise SRFError(
                    "no MSI band is covered by the HSI (all SRF rows are zero); "
                    "check that both images see the same spectral range"
                )
            warnings.warn(
                f"FUSE drops MSI band(s) {dropped}: not covered by the HSI (zero SRF row)",
                UserWarning,
                stacklevel=3,
            )
        keep = [i for i in range(R.shape[0]) if i not in dropped]
        Rk = R[keep]
        dev = hsi.device
        B, L, h, w = hsi.shape
        H, W = msi.shape[-2:]
        psf = torch.as_tensor(np.asarray(spec.psf, dtype=np.float64))
        centre = lr_pixel_centre(tuple(psf.shape), spec.offset)  # type: ignore[arg-type]
        out = torch.empty(B, L, H, W, dtype=torch.float32, device=dev)
        items: list[dict[str, Any]] = []
        for b in range(B):
            yh = hsi[b].detach().to(torch.float64)
            ym = msi[b, keep].detach().to(torch.float64)
            Y = yh.reshape(L, -1)
            k_max = L
            if cfg.n_components == "hysime":
                k_max = max(1, hysime(Y.cpu().numpy())[0])
            else:
                k_max = int(cfg.n_components)
            E, s = pca_basis(Y, k_max)
            k = E.shape[1]
            E_pinv = (E / s[None, :]).T  # diag(1/√s)Vᵀ = diag(1/s)Eᵀ
            prior = up_bicubic((E_pinv @ Y).reshape(k, h, w), r, offset=centre)
            wh = wm = None
            if cfg.noise == "hysime":
                vh = _hysime_noise(Y.cpu().numpy())
                vm = _hysime_noise(ym.reshape(len(keep), -1).cpu().numpy())
                scale = float(np.mean(1.0 / vh))
                wh = torch.from_numpy(1.0 / vh / scale)
                wm = torch.from_numpy(1.0 / vm / scale)
            U, sinfo = sylvester_solve(
                yh, ym, Rk, psf.to(dev), r, spec.offset, E, prior, float(cfg.tau),
                hsi_weights=wh, msi_weights=wm,
            )
            X = (E @ U.reshape(k, -1)).reshape(L, H, W)
            out[b] = X.to(torch.float32)
            items.append(
                {"n_components": k, "pca_eigenvalues": s.tolist(), "eigenvalues": sinfo["eigenvalues"]}
            )
            if self.progress is not None:
                self.progress("fuse", b + 1, B, math.nan)
        if cfg.clip:
            out = out.clamp_min(0)
        return FusionResult(
            cube=out,
            info={
                "n_components": [it["n_components"] for it in items],
                "pca_eigenvalues": [it["pca_eigenvalues"] for it in items],
                "eigenvalues": [it["eigenvalues"] for it in items],
                "dropped_bands": dropped,
                "boundary": "circular (model)"
                + ("" if spec.boundary == "circular" else f"; sensor says {spec.boundary}"),
                "tau": cfg.tau,
                "time_s": time.perf_counter() - t0,
            },
        )
