"""Blind estimation of the PSF and the relative SRF from the data pair (``classical.md`` §2.4).

The estimator rests on one identity of the observation model: with Y_h = X·D_b (blur by the
PSF b, then decimation) and Y_m = R·X,

    R·Y_h = R·X·D_b = Y_m·D_b.

Both unknowns enter linearly, so they are found by alternating two regularised least-squares
problems: R with b fixed, b with R fixed. The first R is fitted on a pair blurred so strongly
that the unknown PSF hardly matters; later passes use the exact identity with the current b.

The result, :class:`SensorEstimate`, converts to a :class:`~hyperfuse.types.SensorSpec` with
:meth:`SensorEstimate.to_sensor_spec`, so an estimated sensor can be saved as JSON and reused by
every method.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from .._validation import check_pair, check_ratio
from ..errors import ShapeError, ValueRangeError
from ..types import SensorSpec
from .functional import Boundary

__all__ = ["SensorEstimate", "estimate_sensor", "psf_centroid", "strong_blur_widths"]

Mode = Literal["consistent", "hysure"]

#: Neighbouring HS centres further apart than this many median spacings form a gap.
GAP_FACTOR = 1.5
#: Bytes of footprint patches built at once in the PSF step.
_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True, eq=False)
class SensorEstimate:
    """Result of :func:`estimate_sensor`.

    Parameters
    ----------
    R : ndarray of shape (l, L)
        Relative spectral response (rows need not sum to 1), in the units of the input data.
    psf : ndarray of shape (K, K)
        PSF in correlation form, summing to 1, centred at ((K-1)/2, (K-1)/2) on the LR
        sample position ``r*i + o``.
    residual : ndarray of shape (l,)
        Relative misfit per MSI band of the final pass,
        ‖R_k·Y_h − (Y_m·D_b)_k‖ / ‖(Y_m·D_b)_k‖ over the LR pixels used. Values above ~0.1
        mean the band is not explained by the HSI (e.g. outside its spectral range).
    centroid : tuple of float
        PSF centre of mass (dy, dx) in HR pixels relative to the kernel centre; a registration
        check (a shift between the images moves it).
    condition : dict
        Condition numbers of the final pass: ``"srf"`` (largest over the bands' R-step
        systems) and ``"psf"`` (the PSF normal equations).
    ratio : int
        Resolution ratio r the estimate was made for.
    offset : tuple of int
        Sampling offset (o_y, o_x) the estimate was made for.
    history : list of dict
        One record per pass: residuals, condition numbers and PSF sum before normalisation.
    info : dict
        Settings and sizes (mode, K, λ values, pixel counts, blur widths, scale).
    """

    R: np.ndarray
    psf: np.ndarray
    residual: np.ndarray
    centroid: tuple[float, float]
    condition: dict[str, float]
    ratio: int
    offset: tuple[int, int]
    history: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def srf(self) -> np.ndarray:
        """Alias of :attr:`R`."""
        return self.R

    def to_sensor_spec(
        self,
        ratio: int | None = None,
        offset: tuple[int, int] | int | None = None,
        wavelengths: np.ndarray | None = None,
        *,
        boundary: Boundary = "reflect",
        msi_band_names: tuple[str, ...] | None = None,
        clip_psf: bool = True,
    ) -> SensorSpec:
        """A :class:`~hyperfuse.types.SensorSpec` carrying the estimated PSF and SRF.

        Parameters
        ----------
        ratio : int, optional
            Resolution ratio; default (and it must agree with) the one of the estimate.
        offset : int or tuple of int, optional
            Sampling offset; default the one of the estimate.
        wavelengths : ndarray of shape (L,), optional
            HSI band centres in nm, stored in the spec.
        boundary : {"reflect", "circular", "replicate", "zeros"}
            Boundary mode of the spec's blur.
        msi_band_names : tuple of str, optional
            Names of the MSI bands.
        clip_psf : bool
            Clip the PSF's (small) negative lobes to 0 and renormalise it, scaling R by the same
            factor so that R·Y_h ≈ Y_m·D_b still holds. A ``SensorSpec`` PSF is meant to be
            non-negative.

        Returns
        -------
        SensorSpec
            ``info`` records ``psf_kind="estimated"``, ``srf_source="estimated"`` and the
            residuals, centroid and condition numbers.

        Examples
        --------
        >>> est = SensorEstimate(np.full((2, 4), 0.25), np.full((3, 3), 1 / 9), np.zeros(2),
        ...                      (0.0, 0.0), {"srf": 1.0, "psf": 1.0}, 2, (1, 1))
        >>> spec = est.to_sensor_spec()
        >>> spec.ratio, spec.offset, spec.srf.shape
        (2, (1, 1), (2, 4))
        """
        r = self.ratio if ratio is None else check_ratio(ratio)
        if r != self.ratio:
            raise ShapeError(
                f"the sensor was estimated for ratio {self.ratio}, not {r}; re-run the estimate"
            )
        o = self.offset if offset is None else _as_offset(offset, r)
        psf = np.array(self.psf, dtype=np.float64)
        R = np.array(self.R, dtype=np.float64)
        clipped = 0.0
        if clip_psf:
            pos = np.clip(psf, 0.0, None)
            total = float(pos.sum())
            clipped = float(-psf[psf < 0].sum())
            psf = pos / total
            R = R / total
        info: dict[str, Any] = {
            "psf_kind": "estimated",
            "psf_size": int(psf.shape[0]),
            "psf_clipped_mass": clipped,
            "srf_source": "estimated",
            "estimate_residual": [float(v) for v in self.residual],
            "estimate_centroid": [float(v) for v in self.centroid],
            "estimate_condition": {k: float(v) for k, v in self.condition.items()},
            "estimate": dict(self.info),
        }
        if o != self.offset:
            info["estimate_offset"] = list(self.offset)
        return SensorSpec(
            ratio=r,
            psf=psf,
            srf=R,
            offset=o,
            boundary=boundary,
            wavelengths=None if wavelengths is None else np.asarray(wavelengths, dtype=np.float64),
            msi_band_names=msi_band_names,
            info=info,
        )


# --------------------------------------------------------------------------- helpers


def _as_offset(offset: tuple[int, int] | int | None, r: int) -> tuple[int, int]:
    if offset is None:
        return (r // 2, r // 2)
    if isinstance(offset, (int, np.integer)):
        o = (int(offset), int(offset))
    else:
        oy, ox = offset
        o = (int(oy), int(ox))
    if not all(0 <= v < r for v in o):
        raise ShapeError(f"offset {o} is outside 0..{r - 1}; pass an offset below the ratio")
    return o


def _as_cube(x: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4 or t.numel() == 0:
        raise ShapeError(f"{name} must have shape (C, H, W) or (B, C, H, W), got {tuple(t.shape)}")
    t = t.detach().to("cpu", torch.float64)
    if not torch.isfinite(t).all():
        raise ValueRangeError(f"{name} contains NaN or Inf; fill or mask those pixels first")
    return t


def strong_blur_widths(ratio: int, mode: Mode = "consistent") -> tuple[int, int]:
    """Widths (HR box on the MSI, LR box on the HSI) of the common strong blur (§2.4 step 2).

    ``"consistent"``: the smallest odd width ≥ 3r, and 3. ``"hysure"``: 9, and
    2·⌊4/r + ½⌋ + 1.

    Examples
    --------
    >>> strong_blur_widths(4), strong_blur_widths(8), strong_blur_widths(8, "hysure")
    ((13, 3), (25, 3), (9, 3))
    """
    r = int(ratio)
    if mode == "consistent":
        return (3 * r if (3 * r) % 2 else 3 * r + 1), 3
    if mode == "hysure":
        return 9, 2 * math.floor(4.0 / r + 0.5) + 1
    raise ShapeError(f"unknown mode {mode!r}; use 'consistent' or 'hysure'")


def psf_centroid(psf: np.ndarray) -> tuple[float, float]:
    """Centre of mass (dy, dx) of a kernel relative to its centre ((K-1)/2, (K-1)/2).

    Examples
    --------
    >>> k = np.zeros((3, 3)); k[1, 2] = 1.0
    >>> psf_centroid(k)
    (0.0, 1.0)
    """
    k = np.asarray(psf, dtype=np.float64)
    total = float(k.sum())
    if total == 0.0:
        return (math.nan, math.nan)
    uy = np.arange(k.shape[0]) - (k.shape[0] - 1) / 2.0
    ux = np.arange(k.shape[1]) - (k.shape[1] - 1) / 2.0
    return (float((k.sum(axis=1) * uy).sum() / total), float((k.sum(axis=0) * ux).sum() / total))


def _valid_range(n_lr: int, n_hr: int, r: int, o: int, lo: int, hi: int) -> tuple[int, int]:
    """LR indices i with r*i + o - lo >= 0 and r*i + o + hi <= n_hr - 1 (half-open range)."""
    i0 = max(0, -((o - lo) // r))  # ceil((lo - o) / r)
    i1 = min(n_lr, (n_hr - 1 - o - hi) // r + 1)
    return i0, max(i0, i1)


def _difference_gram(n: int, cut: np.ndarray | None = None) -> np.ndarray:
    """ΔᵀΔ (n×n, tridiagonal) of the first differences on n samples; differences flagged in
    ``cut`` (length n−1) are left out."""
    keep = np.ones(max(n - 1, 0), dtype=bool) if cut is None else ~np.asarray(cut, dtype=bool)
    G = np.zeros((n, n))
    i = np.flatnonzero(keep)
    np.add.at(G, (i, i), 1.0)
    np.add.at(G, (i + 1, i + 1), 1.0)
    G[i, i + 1] -= 1.0
    G[i + 1, i] -= 1.0
    return G


def _band_groups(
    L: int, l: int, wavelengths: np.ndarray | None, msi_support: np.ndarray | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per MS band: the contributing HS band indices C_k and the gap-aware ΔᵀΔ on them."""
    if msi_support is not None and wavelengths is None:
        raise ShapeError("msi_support needs the HSI wavelengths; pass wavelengths= as well")
    groups: list[tuple[np.ndarray, np.ndarray]] = []
    if wavelengths is None:
        DtD = _difference_gram(L)
        return [(np.arange(L), DtD) for _ in range(l)]
    wl = np.asarray(wavelengths, dtype=np.float64).reshape(-1)
    if wl.size != L:
        raise ShapeError(f"{wl.size} wavelengths for {L} HSI bands; pass one wavelength per band")
    order = np.argsort(wl)
    steps = np.diff(wl[order])
    spacing = float(np.median(steps)) if steps.size else 1.0
    support = None
    if msi_support is not None:
        support = np.asarray(msi_support, dtype=np.float64).reshape(-1, 2)
        if support.shape[0] != l:
            raise ShapeError(
                f"msi_support has {support.shape[0]} rows but the MSI has {l} bands; "
                "pass one (low, high) nm pair per MSI band"
            )
    for k in range(l):
        idx = order
        if support is not None:
            lo, hi = sorted(support[k])
            idx = order[(wl[order] >= lo) & (wl[order] <= hi)]
        cut = np.diff(wl[idx]) > GAP_FACTOR * spacing
        groups.append((idx, _difference_gram(idx.size, cut)))
    return groups


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Small dense LAPACK calls run single-threaded: threads gain nothing on matrices of a few
    hundred rows and cost orders of magnitude on a busy machine."""
    old = torch.get_num_threads()
    if old != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


def _sym_cond(A: torch.Tensor) -> float:
    with _one_thread():
        ev = torch.linalg.eigvalsh(A)
    lo = float(ev[0])
    return math.inf if lo <= 0 else float(ev[-1]) / lo


def _r_step(
    Yh: torch.Tensor,
    Ym: torch.Tensor,
    groups: list[tuple[np.ndarray, np.ndarray]],
    lam: float,
    nonneg: bool,
) -> tuple[torch.Tensor, list[float]]:
    """R[k, C_k] = (Ŷ_C Ŷ_Cᵀ + λ Δᵀ Δ)⁻¹ Ŷ_C ŷ_kᵀ for every MS band k."""
    L, l = Yh.shape[0], Ym.shape[0]
    G = Yh @ Yh.T
    B = Yh @ Ym.T  # (L, l)
    R = Yh.new_zeros((l, L))
    conds = []
    for k, (idx, DtD) in enumerate(groups):
        if idx.size == 0:
            conds.append(math.nan)
            continue
        ii = torch.as_tensor(idx)
        A = G[ii][:, ii] + lam * torch.as_tensor(DtD, dtype=G.dtype)
        with _one_thread():
            rho = torch.linalg.solve(A, B[ii, k])
        if nonneg:
            rho = rho.clamp_min(0)
        R[k, ii] = rho
        conds.append(_sym_cond(A))
    return R, conds


def _patch_chunks(
    Ym: torch.Tensor,
    r: int,
    o: tuple[int, int],
    K: int,
    rows: tuple[int, int],
    cols: tuple[int, int],
):  # type: ignore[no-untyped-def]
    """Yield (row range, patches (B, l, K², m)) of the K×K footprints of the valid LR pixels."""
    B, l = Ym.shape[:2]
    c = K // 2
    (i0, i1), (j0, j1) = rows, cols
    nj = j1 - j0
    per_row = B * l * K * K * nj * 8
    step = max(1, _CHUNK_BYTES // max(per_row, 1))
    x0 = j0 * r + o[1] - c
    for a in range(i0, i1, step):
        b = min(i1, a + step)
        y0 = a * r + o[0] - c
        y1 = (b - 1) * r + o[0] - c + K
        x1 = (j1 - 1) * r + o[1] - c + K
        sub = Ym[:, :, y0:y1, x0:x1].reshape(B * l, 1, y1 - y0, x1 - x0)
        p = F.unfold(sub, K, stride=r)  # (B*l, K², m)
        yield (a, b), p.reshape(B, l, K * K, -1)


def _psf_step(
    Ym: torch.Tensor,
    T: torch.Tensor,
    r: int,
    o: tuple[int, int],
    K: int,
    rows: tuple[int, int],
    cols: tuple[int, int],
    lam: float,
) -> tuple[torch.Tensor, float]:
    """Solve (PᵀP + λ(Δ_hᵀΔ_h + Δ_vᵀΔ_v)) b = Pᵀt; T is (B, l, n_rows, n_cols) of targets."""
    K2 = K * K
    PtP = Ym.new_zeros((K2, K2))
    Ptt = Ym.new_zeros(K2)
    for (a, b), P in _patch_chunks(Ym, r, o, K, rows, cols):
        Pm = P.permute(2, 0, 1, 3).reshape(K2, -1)  # one column per (item, band, pixel)
        t = T[:, :, a - rows[0] : b - rows[0], :].reshape(T.shape[0], T.shape[1], -1).reshape(-1)
        PtP += Pm @ Pm.T  # the dominant cost: 2·(n·l)·K⁴ FLOPs, one GEMM
        Ptt += Pm @ t
    D1tD1 = _difference_gram(K)
    eye = np.eye(K)
    reg = np.kron(eye, D1tD1) + np.kron(D1tD1, eye)  # horizontal + vertical, row-major kernel
    A = PtP + lam * torch.as_tensor(reg, dtype=PtP.dtype)
    with _one_thread():
        bvec = torch.linalg.solve(A, Ptt)
    return bvec.reshape(K, K), _sym_cond(A)


def _apply_psf(
    Ym: torch.Tensor,
    psf: torch.Tensor,
    r: int,
    o: tuple[int, int],
    rows: tuple[int, int],
    cols: tuple[int, int],
) -> torch.Tensor:
    """Y_m·D_b on the valid LR pixels only (no boundary handling needed): (B, l, n_rows, n_cols)."""
    B, l = Ym.shape[:2]
    K = psf.shape[0]
    c = K // 2
    (i0, i1), (j0, j1) = rows, cols
    y0, x0 = i0 * r + o[0] - c, j0 * r + o[1] - c
    y1, x1 = (i1 - 1) * r + o[0] - c + K, (j1 - 1) * r + o[1] - c + K
    sub = Ym[:, :, y0:y1, x0:x1].reshape(B * l, 1, y1 - y0, x1 - x0)
    out = F.conv2d(sub, psf[None, None], stride=r)
    return out.reshape(B, l, i1 - i0, j1 - j0)


def _strong_blur(
    Yh: torch.Tensor, Ym: torch.Tensor, r: int, o: tuple[int, int], wb: int, wl: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Box-blurred pair on the LR pixels where both boxes fit: (L, m) and (l, m)."""
    B, L, h, w = Yh.shape
    l, H, W = Ym.shape[1:]
    hb, hl = wb // 2, wl // 2
    ry = _valid_range(h, H, r, o[0], hb, wb - 1 - hb)
    rx = _valid_range(w, W, r, o[1], hb, wb - 1 - hb)
    ry = (max(ry[0], hl), min(ry[1], h - (wl - 1 - hl)))
    rx = (max(rx[0], hl), min(rx[1], w - (wl - 1 - hl)))
    ni, nj = ry[1] - ry[0], rx[1] - rx[0]
    if ni <= 0 or nj <= 0:
        raise ShapeError(
            f"images of {h}x{w} LR pixels are too small for the {wb}-pixel blur at ratio {r}; "
            "pass larger images"
        )
    y0, x0 = ry[0] * r + o[0] - hb, rx[0] * r + o[1] - hb
    sub = Ym[..., y0 : y0 + (ni - 1) * r + wb, x0 : x0 + (nj - 1) * r + wb]
    ym = F.avg_pool2d(sub, wb, stride=r)
    subh = Yh[..., ry[0] - hl : ry[1] + (wl - 1 - hl), rx[0] - hl : rx[1] + (wl - 1 - hl)]
    yh = F.avg_pool2d(subh, wl, stride=1)
    return (
        yh.permute(1, 0, 2, 3).reshape(L, -1),
        ym.permute(1, 0, 2, 3).reshape(l, -1),
    )


# --------------------------------------------------------------------------- estimator


def estimate_sensor(
    hsi: Any,
    msi: Any,
    ratio: int,
    *,
    offset: tuple[int, int] | int | None = None,
    K: int | None = None,
    lam_R: float = 10.0,
    lam_B: float = 10.0,
    wavelengths: np.ndarray | None = None,
    msi_support: np.ndarray | None = None,
    n_alt: int = 3,
    mode: Mode = "consistent",
    nonneg_R: bool = False,
    num_threads: int | None = None,
) -> SensorEstimate:
    """Estimate the PSF and the relative SRF R from an (LR-HSI, HR-MSI) pair.

    Parameters
    ----------
    hsi : Tensor or ndarray of shape (B, L, h, w) or (L, h, w)
        Low-resolution hyperspectral image. Batch items are pooled (one sensor for all).
    msi : Tensor or ndarray of shape (B, l, H, W) or (l, H, W)
        High-resolution multispectral image, H = r·h, W = r·w.
    ratio : int
        Resolution ratio r.
    offset : int or tuple of int, optional
        Sampling offset (o_y, o_x); default (⌊r/2⌋, ⌊r/2⌋), the block-centred convention.
    K : int, optional
        PSF width; default 2r − 1. The estimate absorbs shifts of up to ±(K − r)/2 HR pixels.
    lam_R, lam_B : float
        Weights of the first-difference regularisers of R (across bands) and of the PSF
        (across the K×K grid). They assume the data scaled by max(Y_h), which is done here.
    wavelengths : ndarray of shape (L,), optional
        HSI band centres (nm): first differences across a gap in the band centres (> 1.5
        median spacings, e.g. removed water bands) are not penalised.
    msi_support : ndarray of shape (l, 2), optional
        Nominal (low, high) support of each MS band in nm; only HS bands whose centre lies
        inside it contribute to that band's row of R. Needs ``wavelengths``.
    n_alt : int
        Number of (R step, PSF step) passes; ≥ 1.
    mode : {"consistent", "hysure"}
        Common strong blur of the first R step: ``"consistent"`` (an HR box of odd width ≥ 3r
        against a 3×3 LR box) or ``"hysure"`` (HySure's 9×9 HR box against an LR box of width
        2⌊4/r + ½⌋ + 1).
    nonneg_R : bool
        Clip negative entries of R after every R step.
    num_threads : int, optional
        Torch threads while estimating (restored afterwards). Default: one thread unless the
        PSF step exceeds 10 GFLOP (small problems gain nothing from threads and lose much on a
        busy machine).

    Returns
    -------
    SensorEstimate
        ``estimate_sensor(hsi, msi, r).to_sensor_spec()`` is a ready-to-save sensor.

    Raises
    ------
    ShapeError
        Inconsistent shapes, or images too small for the blurs or the PSF footprint.
    ValueRangeError
        Non-finite data, or data without the spatial structure needed to fix the PSF (its
        sum is not positive).

    Notes
    -----
    Steps (``classical.md`` §2.4), with Y_h (L×n) and Y_m (l×N) scaled by s = max(Y_h):

    1. Blur both images strongly so that neither side depends on the unknown PSF, giving
       Ŷ_h and Ŷ_m on the same LR grid; only LR pixels where the boxes fit are used, so no
       boundary model is involved.
    2. R step, per MS band k: ρ = (Ŷ_C Ŷ_Cᵀ + λ_R Δᵀ Δ)⁻¹ Ŷ_C ŷ_kᵀ, R[k, C] = ρ, where Δ are
       first differences over the contributing bands C with rows across a gap zeroed.
    3. Denoise the HSI: Y_h′ = V Vᵀ Y_h, V the top min(30, L) left singular vectors.
    4. PSF step: every LR pixel whose K×K HR footprint lies inside the image and every band k
       give one row of P (the footprint of Y_m,k) and one target t = (R Y_h′)_k at that pixel;
       solve (PᵀP + λ_B(Δ_hᵀΔ_h + Δ_vᵀΔ_v)) b = Pᵀt. PᵀP is accumulated by GEMMs over chunks
       of footprints (2·n·l·K⁴ FLOPs).
    5. Normalise b ← b/Σb, R ← R/Σb.
    6. Repeat n_alt − 1 times: the R step on the unblurred pair (Y_h, Y_m·D_b), then the PSF
       step.

    R is identifiable only on the span of the data: compare estimates by their action R·X.

    References
    ----------
    M. Simões, J. Bioucas-Dias, L. B. Almeida and J. Chanussot, "A convex formulation for
    hyperspectral image superresolution via subspace-based regularization", IEEE TGRS 53(6),
    2015, §IV.

    Examples
    --------
    >>> from hyperfuse.physics.functional import gaussian_psf, spatial_degrade
    >>> g = torch.Generator().manual_seed(0)
    >>> X = F.avg_pool2d(torch.rand(1, 6, 68, 68, generator=g, dtype=torch.float64), 5, 1)
    >>> R = torch.rand(2, 6, generator=g, dtype=torch.float64)
    >>> hsi = spatial_degrade(X, gaussian_psf(1.7, 7), 4, (2, 2), "circular")
    >>> msi = torch.einsum("ml,blhw->bmhw", R, X)
    >>> est = estimate_sensor(hsi, msi, 4)
    >>> est.psf.shape, est.R.shape, bool(abs(est.psf.sum() - 1) < 1e-9)
    ((7, 7), (2, 6), True)
    """
    r = check_ratio(ratio)
    Yh = _as_cube(hsi, "hsi")
    Ym = _as_cube(msi, "msi")
    check_pair(Yh, Ym, r)
    o = _as_offset(offset, r)
    K = 2 * r - 1 if K is None else int(K)
    if K < 1:
        raise ShapeError(f"PSF width K must be >= 1, got {K}")
    if int(n_alt) < 1:
        raise ShapeError(f"n_alt must be >= 1, got {n_alt}")
    if num_threads is None:
        big = 2.0 * Yh.shape[0] * Yh.shape[-2] * Yh.shape[-1] * Ym.shape[1] * K**4 > 1e10
        num_threads = torch.get_num_threads() if big else 1
    old = torch.get_num_threads()
    torch.set_num_threads(int(num_threads))
    try:
        return _estimate(
            Yh, Ym, r, o, K, lam_R, lam_B, wavelengths, msi_support, int(n_alt), mode, nonneg_R
        )
    finally:
        torch.set_num_threads(old)


def _estimate(
    Yh: torch.Tensor,
    Ym: torch.Tensor,
    r: int,
    o: tuple[int, int],
    K: int,
    lam_R: float,
    lam_B: float,
    wavelengths: np.ndarray | None,
    msi_support: np.ndarray | None,
    n_alt: int,
    mode: Mode,
    nonneg_R: bool,
) -> SensorEstimate:
    wb, wl = strong_blur_widths(r, mode)
    B, L, h, w = Yh.shape
    l, H, W = Ym.shape[1:]

    # 1. Scale.
    s = float(Yh.max())
    if not s > 0:
        raise ValueRangeError("the HSI has no positive value; pass reflectance-like data")
    Yh = Yh / s
    Ym = Ym / s
    groups = _band_groups(L, l, wavelengths, msi_support)

    # PSF footprints that lie inside the image.
    c = K // 2
    rows = _valid_range(h, H, r, o[0], c, K - 1 - c)
    cols = _valid_range(w, W, r, o[1], c, K - 1 - c)
    if rows[1] <= rows[0] or cols[1] <= cols[0]:
        raise ShapeError(
            f"no LR pixel has its {K}x{K} footprint inside the image; pass larger images"
        )
    n_psf = B * (rows[1] - rows[0]) * (cols[1] - cols[0])
    if n_psf * l < K * K:
        warnings.warn(
            f"only {n_psf * l} footprint equations for a {K}x{K} PSF; the estimate leans on "
            "its smoothness prior",
            UserWarning,
            stacklevel=3,
        )
    Yh_fp = Yh[..., rows[0] : rows[1], cols[0] : cols[1]]  # HSI at the footprint pixels

    # 2-3. Common strong blur and first R step.
    yh_b, ym_b = _strong_blur(Yh, Ym, r, o, wb, wl)
    R, conds_R = _r_step(yh_b, ym_b, groups, lam_R, nonneg_R)

    # 4. Denoise the HSI by its top singular vectors.
    Yflat = Yh_fp.permute(1, 0, 2, 3).reshape(L, -1)
    G = Yh.permute(1, 0, 2, 3).reshape(L, -1)
    with _one_thread():
        _, V = torch.linalg.eigh(G @ G.T)
    V = V[:, -min(30, L) :]
    Yden = V @ (V.T @ Yflat)

    history: list[dict[str, Any]] = []
    psf = torch.zeros(K, K, dtype=torch.float64)
    cond_B = math.nan
    for it in range(int(n_alt)):
        if it > 0:
            # 6. R step on the unblurred pair (Y_h, Y_m·D_b).
            ymd = _apply_psf(Ym, psf, r, o, rows, cols).permute(1, 0, 2, 3).reshape(l, -1)
            R, conds_R = _r_step(Yflat, ymd, groups, lam_R, nonneg_R)
        # 5. PSF step.
        T = (R @ Yden).reshape(l, B, rows[1] - rows[0], cols[1] - cols[0]).permute(1, 0, 2, 3)
        psf, cond_B = _psf_step(Ym, T, r, o, K, rows, cols, lam_B)
        total = float(psf.sum())
        if not total > 0:
            raise ValueRangeError(
                "the PSF estimate does not sum to a positive value: the MSI lacks the spatial "
                "detail needed (or the images are not co-registered)"
            )
        # 6. Normalise.
        psf = psf / total
        R = R / total
        history.append(
            {"pass": it + 1, "psf_sum": total, "cond_srf": max(conds_R), "cond_psf": cond_B}
        )

    # Residual per band on the exact identity R·Y_h = Y_m·D_b.
    ymd = _apply_psf(Ym, psf, r, o, rows, cols).permute(1, 0, 2, 3).reshape(l, -1)
    res = torch.linalg.vector_norm(R @ Yflat - ymd, dim=1) / torch.linalg.vector_norm(
        ymd, dim=1
    ).clamp_min(1e-300)
    residual = res.numpy().copy()
    history[-1]["residual"] = residual.tolist()
    psf_np = psf.numpy().copy()
    info = {
        "mode": mode,
        "K": K,
        "lam_R": float(lam_R),
        "lam_B": float(lam_B),
        "n_alt": int(n_alt),
        "nonneg_R": bool(nonneg_R),
        "scale": s,
        "blur_widths": [wb, wl],
        "n_footprints": n_psf,
        "n_blurred_pixels": int(yh_b.shape[1]),
        "band_groups": [g[0].tolist() for g in groups] if msi_support is not None else None,
        "psf_step_flops": float(2 * n_psf * l * K**4),
    }
    return SensorEstimate(
        R=R.numpy().copy(),
        psf=psf_np,
        residual=residual,
        centroid=psf_centroid(psf_np),
        condition={"srf": float(max(conds_R)), "psf": float(cond_B)},
        ratio=r,
        offset=o,
        history=history,
        info=info,
    )
