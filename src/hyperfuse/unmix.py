"""Linear unmixing building blocks: VCA and subspace-size estimators (``classical.md`` §2.1–2.2).

All functions take a data matrix ``Y`` of shape (L, n): one column per pixel (row-major
pixel order), one row per band. They accept NumPy arrays or torch tensors and compute in
float64 NumPy; results are NumPy values.

Examples
--------
>>> g = np.random.default_rng(0)
>>> E = g.uniform(0.1, 1.0, (10, 3))
>>> A = g.dirichlet(np.ones(3), 500).T
>>> A[:, :3] = np.eye(3)                      # one pure pixel per endmember
>>> sorted(vca(E @ A, 3).tolist())
[0, 1, 2]
>>> vd_hfc(E @ A)
3
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from scipy.special import ndtri

from ._random import RNGLike, as_numpy_rng
from ._validation import check_choice
from .errors import InputError, ShapeError, ValueRangeError

__all__ = ["vca", "vd_hfc", "hysime", "as_data_matrix"]


def as_data_matrix(Y: Any, name: str = "Y") -> np.ndarray:
    """Return ``Y`` as a finite float64 (L, n) NumPy matrix.

    Parameters
    ----------
    Y : array_like or Tensor of shape (L, n)
        Bands by pixels.
    name : str
        Used in error messages.

    Returns
    -------
    ndarray of shape (L, n), float64

    Raises
    ------
    ShapeError
        If ``Y`` is not 2-D or is empty.
    ValueRangeError
        If ``Y`` has NaN or Inf values.
    """
    if isinstance(Y, torch.Tensor):
        Y = Y.detach().cpu().numpy()
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2 or Y.size == 0:
        raise ShapeError(
            f"{name} must be a non-empty (bands, pixels) matrix, got shape {Y.shape}; "
            "reshape a (L, H, W) cube with cube.reshape(L, -1)"
        )
    if not np.isfinite(Y).all():
        raise ValueRangeError(f"{name} contains NaN/Inf values; clean or mask them first")
    return Y


def _eigh_desc(C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w, V = np.linalg.eigh((C + C.T) / 2.0)
    order = np.argsort(w)[::-1]
    return w[order], V[:, order]


def vca(
    Y: Any,
    p: int,
    *,
    rng: RNGLike = 0,
    snr: float | None = None,
    draw: Literal["normal", "uniform"] = "normal",
    snr_rule: Literal["paper", "reference"] = "paper",
    return_spectra: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Vertex component analysis: indices of ``p`` pixels spanning the data simplex.

    Parameters
    ----------
    Y : array_like or Tensor of shape (L, n)
        Non-negative data, pixels as columns.
    p : int
        Number of endmembers, ``1 <= p <= min(L, n)``.
    rng : int, Generator or None, default 0
        Source of the random projection directions.
    snr : float, optional
        SNR in dB that selects the projection branch; estimated from ``Y`` when omitted.
    draw : {"normal", "uniform"}, default "normal"
        Distribution of the directions before projection: standard normal (isotropic), or
        uniform on [0, 1) as in the authors' reference code.
    snr_rule : {"paper", "reference"}, default "paper"
        How the branch is chosen: the paper's SNR estimate (when ``snr`` is omitted) and
        threshold (Notes), or those of CNMF's reference code (Yokoya's, and its Python port):
        ``|10 log10((P_x − (p/L) P_y)/(P_y − P_x))|`` with P_y the mean pixel energy and P_x
        that of the data projected on the top p principal axes plus the mean, against
        ``15 + 10 ln p + 8`` dB (natural log: 57 dB at p = 30, so the orthogonal branch
        almost always).
    return_spectra : bool, default False
        Also return the selected pixels *projected* on the branch's subspace (the reference
        code's endmembers: noise outside the signal subspace removed).

    Returns
    -------
    ndarray of shape (p,), int64
        Column indices k_0 ... k_{p-1} of the selected pixels, in selection order.
    ndarray of shape (L, p), float64
        With ``return_spectra``: the projected spectra m + U xₖ (orthogonal branch) or U xₖ
        (projective branch), in the same order; they may have small negative entries.

    Raises
    ------
    InputError
        If ``p`` is out of range.

    Notes
    -----
    With C = Y Yᵀ/n (eigenvalues λ₁ ≥ λ₂ ≥ …) the SNR estimate is
    ``10 log10(P_p / P_n)`` with ``P_p = Σ_{i≤p} λ_i`` and
    ``P_n = (tr C − P_p)/(1 − p/L)``. Below ``15 + 10 log10 p`` dB the data are projected
    on the top p−1 principal axes and lifted by a constant (orthogonal branch); otherwise
    they are projected on the top p eigenvectors of C and scaled onto the hyperplane
    ``xᵀu = 1`` (projective branch). Each step then draws a direction orthogonal to the
    span of the endmembers found so far and keeps the pixel with the extreme projection.

    References
    ----------
    J. M. P. Nascimento and J. M. Bioucas-Dias, "Vertex component analysis: a fast algorithm
    to unmix hyperspectral data", IEEE TGRS 43(4), 2005.

    Examples
    --------
    >>> Y = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])
    >>> sorted(vca(Y, 2).tolist())
    [0, 1]
    """
    Y = as_data_matrix(Y)
    L, n = Y.shape
    if int(p) != p or not 1 <= p <= min(L, n):
        raise InputError(
            f"number of endmembers p={p} must be an integer in 1..min(L, n)={min(L, n)}; "
            "pass a smaller --endmembers"
        )
    check_choice("draw", draw, ("normal", "uniform"))
    check_choice("snr_rule", snr_rule, ("paper", "reference"))
    p = int(p)
    gen = as_numpy_rng(rng)
    C = Y @ Y.T / n
    lam, V = _eigh_desc(C)
    m = Y.mean(axis=1, keepdims=True)
    Vc = None
    if snr is None and snr_rule == "reference":
        _, Vc = _eigh_desc(C - m @ m.T)
        x_p = Vc[:, :p].T @ (Y - m)
        p_y = float((Y**2).sum()) / n
        p_x = float((x_p**2).sum()) / n + float((m**2).sum())
        ratio = (p_x - p / L * p_y) / (p_y - p_x) if p_y != p_x else math.inf
        snr = math.inf if ratio == 0 or not math.isfinite(ratio) else abs(10.0 * math.log10(abs(ratio)))
    threshold = 15.0 + 10.0 * math.log(p) + 8.0 if snr_rule == "reference" else 15.0 + 10.0 * math.log10(p)
    if snr is None:
        if L - p < p:
            snr = math.inf
        else:
            p_t = float(np.trace(C))
            p_p = float(lam[:p].sum())
            p_n = (p_t - p_p) / (1.0 - p / L)
            snr = math.inf if p_n <= 0 or p_p <= 0 else 10.0 * math.log10(p_p / p_n)
    orthogonal = snr < threshold
    if orthogonal:
        if Vc is None:
            _, Vc = _eigh_desc(C - m @ m.T)
        U = Vc[:, : p - 1]
        X = U.T @ (Y - m)
        c = float(np.sqrt((X**2).sum(axis=0)).max()) if p > 1 else 1.0
        Z = np.vstack([X, np.full((1, n), c)])
    else:
        U = V[:, :p]
        X = U.T @ Y
        u = p * X.mean(axis=1)
        s = u @ X
        uu = float(u @ u)
        Z = np.where(s[None, :] < 0.01, (u / max(uu, 1e-300))[:, None], X / np.where(s < 0.01, 1.0, s))
    Zbar = np.zeros((p, p))
    Zbar[p - 1, 0] = 1.0
    idx = np.zeros(p, dtype=np.int64)
    for i in range(p):
        w = gen.standard_normal(p) if draw == "normal" else gen.random(p)
        f = w - Zbar @ (np.linalg.pinv(Zbar) @ w)
        nf = np.linalg.norm(f)
        f = f / nf if nf > 0 else f
        k = int(np.argmax(np.abs(f @ Z)))
        idx[i] = k
        Zbar[:, i] = Z[:, k]
    if return_spectra:
        return idx, U @ X[:, idx] + (m if orthogonal else 0.0)
    return idx


def vd_hfc(Y: Any, alpha: float = 0.05) -> int:
    """Virtual dimensionality by the Harsanyi–Farrand–Chang (HFC) eigen-thresholding test.

    Parameters
    ----------
    Y : array_like or Tensor of shape (L, n)
        Data, pixels as columns.
    alpha : float, default 0.05
        False-alarm probability of each per-component Neyman–Pearson test.

    Returns
    -------
    int
        VD = #{i : λ_i − κ_i > τ_i}, the number of components carrying signal.

    Notes
    -----
    λ_i are the eigenvalues of the correlation matrix Y Yᵀ/n and κ_i those of the sample
    covariance, both in descending order; σ_i = √(2(λ_i² + κ_i²)/n) and
    τ_i = σ_i Φ⁻¹(1 − α). Differences below 10⁻¹⁰ λ₁ count as rounding noise, so noise-free
    data of rank p give VD = p.

    References
    ----------
    C.-I Chang and Q. Du, "Estimation of number of spectrally distinct signal sources in
    hyperspectral imagery", IEEE TGRS 42(3), 2004.

    Examples
    --------
    >>> g = np.random.default_rng(1)
    >>> Y = g.uniform(0, 1, (8, 2)) @ g.dirichlet([1, 1], 1000).T
    >>> vd_hfc(Y)
    2
    """
    Y = as_data_matrix(Y)
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}; pass e.g. 0.05")
    n = Y.shape[1]
    lam = np.sort(np.linalg.eigvalsh(Y @ Y.T / n))[::-1]
    Yc = Y - Y.mean(axis=1, keepdims=True)
    kap = np.sort(np.linalg.eigvalsh(Yc @ Yc.T / n))[::-1]
    tau = np.sqrt(2.0 * (lam**2 + kap**2) / n) * float(ndtri(1.0 - alpha))
    floor = 1e-10 * max(float(lam[0]), 0.0)  # differences below this are rounding noise
    return int(np.count_nonzero(lam - kap > tau + floor))


def hysime(Y: Any) -> tuple[int, np.ndarray]:
    """HySime signal-subspace identification.

    Parameters
    ----------
    Y : array_like or Tensor of shape (L, n)
        Data, pixels as columns.

    Returns
    -------
    k : int
        Estimated subspace dimension.
    basis : ndarray of shape (L, k)
        Orthonormal basis of the signal subspace, most negative cost first.

    Notes
    -----
    The noise is estimated by regressing each band on all the others with
    G = Y Yᵀ + 10⁻⁶ I. The regression of band i on the rest, with coefficients from a
    rank-one downdate of G⁻¹, has the residual ŵ_i = (G⁻¹ Y)_i / (G⁻¹)_{ii}.
    R_n = diag(Ŵ Ŵᵀ/n); e_i are the eigenvectors of R_x = (Y − Ŵ)(Y − Ŵ)ᵀ/n and
    R_y = Y Yᵀ/n; then k = #{i : −e_iᵀ R_y e_i + 2 e_iᵀ R_n e_i < 0}.

    References
    ----------
    J. M. Bioucas-Dias and J. M. P. Nascimento, "Hyperspectral subspace identification",
    IEEE TGRS 46(8), 2008.

    Examples
    --------
    >>> g = np.random.default_rng(2)
    >>> Y = g.uniform(0, 1, (12, 3)) @ g.dirichlet([1, 1, 1], 2000).T
    >>> Y = Y + 1e-3 * g.standard_normal(Y.shape)
    >>> k, basis = hysime(Y)
    >>> k in (2, 3), basis.shape[0]
    (True, 12)
    """
    Y = as_data_matrix(Y)
    L, n = Y.shape
    G = Y @ Y.T + 1e-6 * np.eye(L)
    Gi = np.linalg.inv(G)
    # Block-inverse identity: β_i = G_{-i,-i}⁻¹ G_{-i,i} = −Gi_{-i,i} / Gi_{ii}, so the
    # residual y_i − β_iᵀ Y_{-i} equals (Gi Y)_i / Gi_{ii} (the rank-one downdate, in closed form).
    W = (Gi @ Y) / np.diag(Gi)[:, None]
    Rn = np.diag(np.einsum("ij,ij->i", W, W) / n)
    S = Y - W
    Rx = S @ S.T / n
    Ry = Y @ Y.T / n
    _, E = _eigh_desc(Rx)
    cost = -np.einsum("li,lm,mi->i", E, Ry, E) + 2.0 * np.einsum("li,lm,mi->i", E, Rn, E)
    neg = np.flatnonzero(cost < 0)
    order = neg[np.argsort(cost[neg])]
    return int(order.size), E[:, order]
