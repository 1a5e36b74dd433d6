"""HySure — subspace fusion with vector total variation (Simões, Bioucas-Dias, Almeida, Chanussot 2015).

``classical.md`` §7. The fused image is X = E·Z with a basis E (L×p) learned from the LR-HSI and
coefficients Z (p×N) that minimise

    ½‖Y_h − E Z D‖² + (λ_m/2)‖Y_m − R E Z‖² + λ_φ Σ_pixels √(Σ_i (Z∂_h)_i² + (Z∂_v)_i²),

a data term on each image plus an isotropic vector total variation coupled across the p
channels. The problem is split by ADMM (SALSA) into V1 = Z blurred (not decimated), V2 = Z,
V3 = Z∂_h and V4 = Z∂_v: the Z-step is diagonal in the Fourier domain (circular boundary), the
V-steps are per-pixel p×p solves and a vector soft-threshold.

The method is blind: without an SRF it first estimates the PSF and the SRF with
:func:`~hyperfuse.physics.blind.estimate_sensor` (§2.4) and returns the estimate in
``FusionResult.sensor_estimate``.
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

from ..._threads import torch_threads as _threads
from ...errors import InputError, SRFError
from ...physics.blind import estimate_sensor
from ...physics.sensor import FusionPhysics
from ...types import FusionResult, SensorSpec
from ...unmix import hysime, vca
from ..base import FusionMethod
from ..registry import register_method

__all__ = [
    "HySure",
    "HySureConfig",
    "ProgressFn",
    "hysure_flops",
    "transfer_functions",
    "symmetric_pad",
]

ProgressFn = Callable[[str, int, int, float], None]
"""``progress(stage, iteration, max_iterations, cost)``, called after every ADMM iteration."""


@dataclass(frozen=True)
class HySureConfig:
    """Options of :class:`HySure` (defaults of ``classical.md`` §7).

    Parameters
    ----------
    n_components : int or "hysime", default 30
        Subspace size p, capped at min(L, n). ``"hysime"`` uses the HySime estimate.
    basis : {"vca", "svd"}, default "vca"
        ``"vca"``: the best of ``vca_runs`` VCA runs (orthogonal branch, projected spectra,
        largest |det(EᵀE)|). ``"svd"``: the top p left singular vectors of Y_h
        (deterministic).
    vca_runs : int, default 20
        Number of VCA runs.
    seed : int, default 0
        rng of the first VCA run (run i uses seed + i).
    lam_phi : float, default 1e-3
        λ_φ, weight of the vector total variation (data scaled by max(Y_h)).
    lam_m : float, default 1.0
        λ_m, weight of the MSI data term.
    mu : float, default 0.05
        ADMM penalty μ.
    iters : int, default 200
        ADMM iterations.
    tol : float, optional
        Early stop when the relative primal and dual residuals both fall below ``tol``
        (our addition; ``None`` always runs ``iters``).
    project_output : bool, default True
        Project X̂ on the top p singular vectors of Y_h (no-op with ``basis="svd"``).
    pad : {"auto", "always", "never"}, default "auto"
        Symmetric padding by ⌈(2K + 2r)/r⌉ LR pixels (r times as many HR pixels) before the
        FFTs, cropped afterwards. ``"auto"`` pads unless the sensor's boundary is
        ``"circular"`` (then the FFT model is exact).
    dtype : {"float32", "float64"}, default "float32"
        Working precision of the ADMM arrays (costs accumulate in float64).
    estimate_sensor : bool, default False
        Estimate the PSF and SRF (§2.4) even when the sensor has them. They are always
        estimated when the sensor is missing or has no SRF.
    sensor_K : int, optional
        PSF width of the estimate (default 2r − 1).
    sensor_lam_R, sensor_lam_B : float, default 10.0
        Regularisation weights of the sensor estimate.
    sensor_n_alt : int, default 3
        (R, PSF) passes of the sensor estimate.
    sensor_mode : {"consistent", "hysure"}, default "consistent"
        Common strong blur of the sensor estimate.
    drop_uncovered_bands : bool, default True
        Drop (with a warning) MSI bands with a zero SRF row or, for an estimated SRF, a
        relative residual above 0.1.
    num_threads : int, optional
        Torch threads for the ADMM loop (restored afterwards). Default: one thread when an
        iterate has fewer than 2**22 elements (small FFTs gain nothing from threads and
        lose a lot on a busy machine), otherwise unchanged.
    """

    n_components: int | Literal["hysime"] = 30
    basis: Literal["vca", "svd"] = "vca"
    vca_runs: int = 20
    seed: int = 0
    lam_phi: float = 1e-3
    lam_m: float = 1.0
    mu: float = 0.05
    iters: int = 200
    tol: float | None = None
    project_output: bool = True
    pad: Literal["auto", "always", "never"] = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    estimate_sensor: bool = False
    sensor_K: int | None = None
    sensor_lam_R: float = 10.0
    sensor_lam_B: float = 10.0
    sensor_n_alt: int = 3
    sensor_mode: Literal["consistent", "hysure"] = "consistent"
    drop_uncovered_bands: bool = True
    num_threads: int | None = None




def hysure_flops(N: int, n: int, p: int) -> float:
    """FLOPs of one ADMM iteration: 8·p·2.5·N·log₂N + 2p²N + 2p²n + 12pN (§7).

    Examples
    --------
    >>> round(hysure_flops(512 * 512, 64 * 64, 30) / 1e9, 1)
    3.4
    """
    return float(
        8 * p * 2.5 * N * math.log2(max(N, 2)) + 2 * p * p * N + 2 * p * p * n + 12 * p * N
    )


def transfer_functions(
    psf: np.ndarray, offset: tuple[int, int], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-spectrum transfer functions (Ĝ, Ĝ_h, Ĝ_v) on an H×W circular grid (§1).

    ``irfft2(rfft2(X) * G)[..., ::r, ::r]`` is X·D with the PSF in correlation form and the
    offset folded in; Ĝ_h and Ĝ_v are the circular forward differences along x and y.

    Examples
    --------
    >>> g, gh, gv = transfer_functions(np.ones((1, 1)), (0, 0), (4, 4))
    >>> g.shape, bool(np.allclose(g, 1)), bool(np.allclose(gh[0, 0], 0))
    ((4, 3), True, True)
    """
    H, W = shape
    k = np.asarray(psf, dtype=np.float64)
    Kh, Kw = k.shape
    cy, cx = Kh // 2, Kw // 2
    P = np.zeros((H, W))
    uu, vv = np.meshgrid(np.arange(Kh), np.arange(Kw), indexing="ij")
    np.add.at(P, ((uu - cy + offset[0]) % H, (vv - cx + offset[1]) % W), k)
    Ph = np.zeros((H, W))
    Ph[0, 0] -= 1.0
    Ph[0, 1 % W] += 1.0
    Pv = np.zeros((H, W))
    Pv[0, 0] -= 1.0
    Pv[1 % H, 0] += 1.0
    return tuple(np.conj(np.fft.rfft2(a)) for a in (P, Ph, Pv))  # type: ignore[return-value]


def symmetric_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Half-sample symmetric padding (edge pixel repeated) of the last two axes.

    Consistent across scales: a symmetric extension of X about the image edge degrades to a
    symmetric extension of its block-centred LR image. Pads longer than the image repeat the
    mirrored image periodically.

    Examples
    --------
    >>> symmetric_pad(torch.arange(3.).reshape(1, 1, 3), 2)[0, 2]
    tensor([1., 0., 0., 1., 2., 2., 1.])
    """
    if pad <= 0:
        return x
    out = x
    for axis in (-2, -1):
        n = x.shape[axis]
        pos = torch.arange(-pad, n + pad, device=x.device)
        q = pos % (2 * n)
        idx = torch.where(q < n, q, 2 * n - 1 - q)
        out = out.index_select(axis, idx)
    return out


def _top_singular_vectors(Y: np.ndarray, p: int) -> np.ndarray:
    """(L, p) top left singular vectors of Y (L, n), from the eigenvectors of Y Yᵀ."""
    with _threads(1):
        _, V = torch.linalg.eigh(torch.from_numpy(Y @ Y.T))
    return np.ascontiguousarray(V.numpy()[:, ::-1][:, :p])


def _basis(Y: np.ndarray, p: int, cfg: HySureConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """(L, p) basis of the LR-HSI (scaled, pixels as columns)."""
    L, n = Y.shape
    if cfg.basis == "svd":
        return _top_singular_vectors(Y, p), {}
    # Orthogonal-branch VCA on the projected spectra m + U Uᵀ(y − m).
    m = Y.mean(axis=1, keepdims=True)
    C = Y @ Y.T / n - m @ m.T
    _, Vc = np.linalg.eigh(C)
    U = Vc[:, ::-1][:, : max(p - 1, 0)]
    Yp = m + U @ (U.T @ (Y - m))
    best, best_ld, best_run = None, -math.inf, 0
    for i in range(max(1, int(cfg.vca_runs))):
        idx = vca(np.clip(Y, 0.0, None), p, rng=cfg.seed + i, snr=-math.inf)
        E = Yp[:, idx]
        sign, ld = np.linalg.slogdet(E.T @ E)
        ld = ld if sign > 0 else -math.inf
        if best is None or ld > best_ld:
            best, best_ld, best_run = E, ld, i
    assert best is not None
    return best, {"vca_best_run": best_run, "vca_logdet": float(best_ld)}


@register_method("hysure", config=HySureConfig)
class HySure(FusionMethod):
    """HySure: subspace + vector-TV fusion by ADMM, blind when the sensor is unknown.

    With ``sensor=None`` (or a sensor without SRF) the PSF and SRF are first estimated from
    the pair (:func:`~hyperfuse.physics.blind.estimate_sensor`) and returned in
    ``FusionResult.sensor_estimate``. Set :attr:`progress` to a callable
    ``(stage, i, total, cost)`` to follow the iterations.

    ``FusionResult.info`` records ``p``, ``iterations``, ``lam_phi``, ``mu``, ``lam_m``,
    ``pad``, ``timings``, ``flops``, ``srf``, ``psf``, ``sensor_estimated`` and
    ``dropped_bands``; ``history["cost"]`` holds the objective per iteration (scaled data).

    References
    ----------
    M. Simões, J. Bioucas-Dias, L. B. Almeida and J. Chanussot, "A convex formulation for
    hyperspectral image superresolution via subspace-based regularization", IEEE TGRS 53(6),
    2015.

    Examples
    --------
    >>> from hyperfuse.physics.sensor import make_sensor
    >>> x = torch.rand(1, 6, 16, 16)
    >>> sensor = make_sensor(4, srf=np.full((2, 6), 1 / 6), boundary="circular")
    >>> phys = FusionPhysics(sensor)
    >>> cfg = HySureConfig(n_components=3, basis="svd", iters=5)
    >>> out = HySure(cfg).fuse(phys.spatial(x), phys.spectral(x), sensor)
    >>> tuple(out.cube.shape), out.info["iterations"]
    ((1, 6, 16, 16), [5])
    """

    description = (
        "HySure: subspace fusion with vector total variation (ADMM); blind sensor estimate"
    )
    blind = True
    needs_srf = False

    def __init__(self, config: HySureConfig | None = None) -> None:
        super().__init__(config or HySureConfig())
        self.progress: ProgressFn | None = None

    # ------------------------------------------------------------------ sensor
    def _sensor(
        self, hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics | None
    ) -> tuple[SensorSpec, SensorSpec | None, torch.Tensor, dict[str, Any]]:
        """Resolve (or estimate) PSF and SRF; drop uncovered MSI bands."""
        cfg = self.config
        r = physics.ratio if physics is not None else msi.shape[-1] // hsi.shape[-1]
        info: dict[str, Any] = {}
        estimated: SensorSpec | None = None
        if physics is None or physics.spectral is None or cfg.estimate_sensor:
            spec0 = physics.spec if physics is not None else None
            offset = spec0.offset if spec0 is not None else (r // 2, r // 2)
            wl = spec0.wavelengths if spec0 is not None else None
            if wl is not None and len(wl) != hsi.shape[1]:
                wl = None
            t0 = time.perf_counter()
            est = estimate_sensor(
                hsi,
                msi,
                r,
                offset=offset,
                K=cfg.sensor_K,
                lam_R=cfg.sensor_lam_R,
                lam_B=cfg.sensor_lam_B,
                wavelengths=wl,
                n_alt=cfg.sensor_n_alt,
                mode=cfg.sensor_mode,
            )
            info["sensor_seconds"] = time.perf_counter() - t0
            estimated = est.to_sensor_spec(
                r,
                offset,
                wl,
                boundary=spec0.boundary if spec0 is not None else "reflect",
                msi_band_names=spec0.msi_band_names if spec0 is not None else None,
            )
            spec = estimated
            uncovered = np.flatnonzero(~(est.residual <= 0.1))
            info["sensor_residual"] = est.residual.tolist()
        else:
            spec = physics.spec
            uncovered = np.flatnonzero(~(np.asarray(spec.srf) > 0).any(axis=1))
        info["sensor_estimated"] = estimated is not None
        R = np.asarray(spec.srf, dtype=np.float64)
        if uncovered.size and cfg.drop_uncovered_bands:
            if uncovered.size == R.shape[0]:
                raise SRFError(
                    "no MSI band is covered by the HSI (zero SRF rows or estimate residuals > 0.1); "
                    "check that both images see the same spectral range"
                )
            warnings.warn(
                f"HySure drops MSI band(s) {uncovered.tolist()}: not covered by the HSI "
                "(zero SRF row or estimate residual > 0.1)",
                UserWarning,
                stacklevel=4,
            )
            keep = np.setdiff1d(np.arange(R.shape[0]), uncovered)
            R = R[keep]
            msi = msi[:, torch.as_tensor(keep, device=msi.device)]
        info["dropped_bands"] = uncovered.tolist() if cfg.drop_uncovered_bands else []
        return spec.replace(srf=R), estimated, msi, info

    # ------------------------------------------------------------------ main
    def _fuse(
        self, hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics | None
    ) -> FusionResult:
        cfg = self.config
        t_start = time.perf_counter()
        out_dtype = hsi.dtype if hsi.is_floating_point() else torch.float32
        dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
        device = hsi.device
        hsi = hsi.detach()
        msi = msi.detach()
        spec, estimated, msi, sinfo = self._sensor(hsi, msi, physics)
        B, L, h, w = hsi.shape
        l, H, W = msi.shape[1:]
        r = spec.ratio
        if cfg.pad == "always" or (cfg.pad == "auto" and spec.boundary != "circular"):
            K = max(spec.psf.shape)
            pad_lr = -(-(2 * K + 2 * r) // r)
        else:
            pad_lr = 0
        t_prep = time.perf_counter() - t_start

        cubes, histories, items = [], [], []
        size = min(int(cfg.n_components) if cfg.n_components != "hysime" else L, L) * (
            (H + 2 * r * pad_lr) * (W + 2 * r * pad_lr)
        )
        threads = cfg.num_threads if cfg.num_threads is not None else (1 if size < 2**22 else None)
        with _threads(threads):
            for b in range(B):
                X, cost, item = self._solve(hsi[b], msi[b], spec, pad_lr, dtype)
                cubes.append(X.to(out_dtype))
                histories.extend(cost)
                items.append(item)
        cube = torch.stack(cubes).to(device)
        p = items[0]["p"]
        N_pad = (H + 2 * r * pad_lr) * (W + 2 * r * pad_lr)
        n_pad = (h + 2 * pad_lr) * (w + 2 * pad_lr)
        info: dict[str, Any] = {
            **sinfo,
            "p": p,
            "basis": cfg.basis,
            "iterations": [it["iterations"] for it in items],
            "lam_phi": cfg.lam_phi,
            "lam_m": cfg.lam_m,
            "mu": cfg.mu,
            "pad": pad_lr * r,
            "num_threads": threads if threads is not None else torch.get_num_threads(),
            "items": items,
            "srf": np.asarray(spec.srf).tolist(),
            "psf": np.asarray(spec.psf).tolist(),
            "flops": hysure_flops(N_pad, n_pad, p) * sum(it["iterations"] for it in items),
            "timings": {
                "prepare": t_prep,
                "total": time.perf_counter() - t_start,
            },
        }
        return FusionResult(
            cube=cube, sensor_estimate=estimated, history={"cost": histories}, info=info
        )

    def _n_components(self, Y: np.ndarray) -> int:
        cfg = self.config
        L, n = Y.shape
        if cfg.n_components == "hysime":
            p = max(1, hysime(Y)[0])
        else:
            p = int(cfg.n_components)
            if p < 1:
                raise InputError(f"n_components must be >= 1, got {p}")
        return min(p, L, n)

    def _solve(
        self,
        hsi: torch.Tensor,
        msi: torch.Tensor,
        spec: SensorSpec,
        pad_lr: int,
        dtype: torch.dtype,
    ) -> tuple[torch.Tensor, list[float], dict[str, Any]]:
        """ADMM for one item: hsi (L, h, w), msi (l, H, W) -> X̂ (L, H, W)."""
        cfg = self.config
        t0 = time.perf_counter()
        r = spec.ratio
        L, h, w = hsi.shape
        l, H, W = msi.shape
        dev = hsi.device
        Yh64 = hsi.to(torch.float64)
        s = float(Yh64.max())
        s = s if s > 0 else 1.0
        Yh_mat = (Yh64 / s).reshape(L, -1).cpu().numpy()
        p = self._n_components(Yh_mat)
        E_np, binfo = _basis(Yh_mat, p, cfg)
        R_np = np.asarray(spec.srf, dtype=np.float64)
        mu, lam_m, lam_phi = float(cfg.mu), float(cfg.lam_m), float(cfg.lam_phi)
        M1 = np.linalg.inv(E_np.T @ E_np + mu * np.eye(p))
        RE = R_np @ E_np
        M2 = np.linalg.inv(lam_m * RE.T @ RE + mu * np.eye(p))
        t_basis = time.perf_counter() - t0

        # Padded, scaled data.
        Yh = symmetric_pad((hsi.to(dtype) / s), pad_lr)
        Ym = symmetric_pad((msi.to(dtype) / s), pad_lr * r)
        hp, wp = Yh.shape[-2:]
        Hp, Wp = Ym.shape[-2:]
        g_np, gh_np, gv_np = transfer_functions(spec.psf, spec.offset, (Hp, Wp))
        cdt = torch.complex128 if dtype == torch.float64 else torch.complex64
        g = torch.as_tensor(g_np, dtype=cdt, device=dev)
        gh = torch.as_tensor(gh_np, dtype=cdt, device=dev)
        gv = torch.as_tensor(gv_np, dtype=cdt, device=dev)
        gc, ghc, gvc = g.conj(), gh.conj(), gv.conj()
        den = (g.abs() ** 2 + gh.abs() ** 2 + gv.abs() ** 2 + 1.0).to(dtype)

        def T(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, dtype=dtype, device=dev)

        E, M1t, M2t, REt = T(E_np), T(M1), T(M2), T(RE)
        C1 = torch.einsum("lp,lhw->phw", E, Yh)  # Eᵀ Y_h on the sampled pixels
        A1 = torch.einsum("pq,qhw->phw", M1t, C1)
        C2 = lam_m * torch.einsum("pq,qhw->phw", M2t @ REt.T, Ym)
        mM1, mM2 = mu * M1t, mu * M2t
        tau = lam_phi / mu
        shape = (p, Hp, Wp)
        V1, V2, V3, V4 = (torch.zeros(shape, dtype=dtype, device=dev) for _ in range(4))
        G1, G2, G3, G4 = (torch.zeros(shape, dtype=dtype, device=dev) for _ in range(4))
        fft, ifft = torch.fft.rfft2, torch.fft.irfft2
        yh_sq = float(torch.sum(Yh * Yh, dtype=torch.float64))
        C1_64 = C1.to(torch.float64)
        EtE = T(E_np.T @ E_np).to(torch.float64)
        costs: list[float] = []
        iters_done = 0
        stopped = False
        t_loop = time.perf_counter()
        Z = torch.zeros(shape, dtype=dtype, device=dev)
        for it in range(1, int(cfg.iters) + 1):
            # (a) Z-step, diagonal in Fourier.
            num = fft(V1 + G1) * gc + fft(V2 + G2) + fft(V3 + G3) * ghc + fft(V4 + G4) * gvc
            Zh = num / den
            Z = ifft(Zh, s=(Hp, Wp))
            ZB = ifft(Zh * g, s=(Hp, Wp))
            Zdh = ifft(Zh * gh, s=(Hp, Wp))
            Zdv = ifft(Zh * gv, s=(Hp, Wp))
            # (b)
            T1, T2, T3, T4 = ZB - G1, Z - G2, Zdh - G3, Zdv - G4
            # (c) data term of the HSI on the sampled pixels.
            V1n = T1.clone()
            V1n[:, ::r, ::r] = A1 + torch.einsum("pq,qhw->phw", mM1, T1[:, ::r, ::r])
            # (d) data term of the MSI.
            V2n = C2 + torch.einsum("pq,qhw->phw", mM2, T2)
            # (e) vector soft threshold.
            nu = torch.sqrt((T3**2).sum(0) + (T4**2).sum(0))
            sh = (nu - tau).clamp_min(0)
            f = sh / (sh + tau)
            V3n, V4n = T3 * f, T4 * f
            # Objective at Z (scaled data), from the products already computed.
            zb = ZB[:, ::r, ::r].to(torch.float64)
            jh = (
                yh_sq
                - 2 * float((C1_64 * zb).sum())
                + float((zb * torch.einsum("pq,qhw->phw", EtE, zb)).sum())
            )
            res_m = Ym - torch.einsum("lp,phw->lhw", REt, Z)
            jm = float(torch.sum(res_m * res_m, dtype=torch.float64))
            tv = float(
                torch.sum(torch.sqrt((Zdh * Zdh).sum(0) + (Zdv * Zdv).sum(0)), dtype=torch.float64)
            )
            J = 0.5 * max(jh, 0.0) + 0.5 * lam_m * jm + lam_phi * tv
            costs.append(J)
            # (f) dual update (and residuals for the optional stop rule).
            if cfg.tol is not None:
                prim = sum(
                    float(((Vn - (Tt + Gt)) ** 2).sum())
                    for Vn, Tt, Gt in ((V1n, T1, G1), (V2n, T2, G2), (V3n, T3, G3), (V4n, T4, G4))
                )
                dual = sum(
                    float(((Vn - Vo) ** 2).sum())
                    for Vn, Vo in ((V1n, V1), (V2n, V2), (V3n, V3), (V4n, V4))
                )
                vnorm = sum(float((Vn**2).sum()) for Vn in (V1n, V2n, V3n, V4n))
            G1, G2, G3, G4 = V1n - T1, V2n - T2, V3n - T3, V4n - T4
            V1, V2, V3, V4 = V1n, V2n, V3n, V4n
            iters_done = it
            if self.progress is not None:
                self.progress("admm", it, int(cfg.iters), J)
            if cfg.tol is not None and it > 1:
                scale = max(vnorm, 1e-300)
                if math.sqrt(prim / scale) < cfg.tol and math.sqrt(dual / scale) < cfg.tol:
                    stopped = True
                    break
        t_iter = time.perf_counter() - t_loop

        # Output: X̂ = E Z, cropped, projected on the HSI subspace, unscaled.
        P = pad_lr * r
        Zc = Z[:, P : P + H, P : P + W]
        X = torch.einsum("lp,phw->lhw", E, Zc)
        if cfg.project_output and cfg.basis != "svd":
            Vd = T(_top_singular_vectors(Yh_mat, p))
            X = torch.einsum("lp,phw->lhw", Vd, torch.einsum("lp,lhw->phw", Vd, X))
        X = X * s
        item = {
            "p": p,
            "iterations": iters_done,
            "stopped_early": stopped,
            "scale": s,
            **binfo,
            "seconds": {"basis": t_basis, "admm": t_iter},
        }
        return X, costs, item
