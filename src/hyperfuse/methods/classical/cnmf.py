"""CNMF — coupled non-negative matrix factorisation (Yokoya, Yairi, Iwasaki, TGRS 2012).

``classical.md`` §3 and §3.1. The HSI is unmixed (Y_h ≈ E A_h), the endmembers are carried
to the MSI through the SRF (E_m = R E) to unmix it at high resolution (Y_m ≈ E_m A), the
abundances are carried back through the PSF (A_h = A D) to refine E, and the output is
X̂ = E A. Every loop uses Lee–Seung multiplicative updates with sum-to-one augmentation.

Two implementations compute the same iterates:

- ``"generic"`` runs each loop as :class:`~hyperfuse.methods.unrolled.nmf.Unrolled` stages of
  :class:`~hyperfuse.methods.unrolled.nmf.MultiplicativeUpdate` (the parts SCALMU reuses);
- ``"fast"`` (default) is the §3.1 plan: constant numerators hoisted out of loops where the
  other factor is fixed, data-first MS denominators Ẽᵀ(ẼA) whose product P = ẼA also gives
  the cost (and, in the E_m/A alternation, the E_m denominator (E_mA)Aᵀ), Gram-first HS
  denominators, double buffers for the stop rule's restore, costs accumulated in float64.
  The small HS-side loops run in NumPy float64 with their costs taken from the products
  of the next update. A test checks that both give the same result in float64.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ..._threads import blas_threads, denormals_flushed, on_main_thread
from ..._threads import torch_threads as _threads
from ..._validation import check_choice
from ...errors import InputError, SRFError
from ...physics.estimate import estimate_srf_nnls
from ...physics.functional import upsample
from ...physics.sensor import FusionPhysics, make_sensor
from ...types import FusionResult
from ...unmix import vca, vd_hfc
from ..base import FusionMethod
from ..registry import register_method
from ..unrolled.nmf import (
    MultiplicativeUpdate,
    NMFState,
    Target,
    Unrolled,
    hs_term,
    lr_abundances,
    ms_endmembers,
    ms_term,
    sum_to_one_delta,
)

__all__ = ["CNMF", "CNMFConfig", "ProgressFn", "REFERENCE_VCA", "cnmf_flops"]

ProgressFn = Callable[[str, int, int, float], None]
"""``progress(loop, iteration, max_iterations, cost)``, called after every accepted iteration."""

REFERENCE_VCA = {"vca_draw": "uniform", "vca_snr_rule": "reference", "vca_endmembers": "projected"}
"""VCA as CNMF's reference code (Yokoya's, and its Python port) runs it; ``CNMFConfig(**REFERENCE_VCA)``
with the §3 defaults is that code's algorithm (``docs/cnmf.md`` §4). Also accepted by SCALMUConfig."""

_VCA_CHOICES = {"vca_draw": ("normal", "uniform"), "vca_snr_rule": ("paper", "reference"),
                "vca_endmembers": ("pixels", "projected")}


def check_vca_options(cfg: Any) -> None:
    """Raise InputError if a ``vca_*`` field of ``cfg`` (CNMFConfig or SCALMUConfig) is not a choice."""
    for name, allowed in _VCA_CHOICES.items():
        check_choice(name, getattr(cfg, name), allowed)


@dataclass(frozen=True)
class CNMFConfig:
    """Options of :class:`CNMF` (defaults of ``classical.md`` §3).

    Parameters
    ----------
    n_endmembers : int, optional
        p. Default: max(min(30, L), VD_HFC(Y_h, vd_alpha)), capped at min(L, n); with a
        batch, the largest estimate over items.
    inner_iters : int, default 200
        I_in, the cap of every inner loop (the HS abundance-only loop runs up to 3·I_in).
    hs_init_iters : int, optional
        Cap of the HS abundance-only loop of step 3(a); default 3·I_in (the Python
        reference; the MATLAB reference uses I_in).
    pan_inner_iters : int, default 75
        I_in used instead when the MSI has a single band.
    outer_iters : int, default 1
        I_out.
    theta : float, default 1e-8
        Inner stop rule: leave a loop when the relative cost decrease falls below θ
        (``-inf`` always runs the caps).
    th2 : float, default 1e-2
        Outer stop rule on the relative RMSE decrease.
    vd_alpha : float, default 0.05
        False-alarm rate of the HFC virtual-dimensionality test.
    eps : float, default 1e-12
        Floor of every denominator.
    vca_seed : int, default 0
        rng of VCA.
    vca_draw : {"normal", "uniform"}, default "normal"
        VCA's direction distribution (see :func:`~hyperfuse.unmix.vca`).
    vca_snr_rule : {"paper", "reference"}, default "paper"
        How VCA picks its branch (see :func:`~hyperfuse.unmix.vca`): the paper's SNR test, or
        the reference code's (the orthogonal branch for p = 30 in practice).
    vca_endmembers : {"pixels", "projected"}, default "pixels"
        Step 2's E: the selected raw pixels (§3), or those pixels projected on VCA's signal
        subspace, as the reference code does (floored at ``eps``: MU needs E ≥ 0).
    delta_scale : float, default 1.0
        Multiplier of the sum-to-one weight δ = 2·√(mean(Y_m)/0.7455)/l³ (the reference
        heuristic, which makes δ small for many MS bands).
    dtype : {"float32", "float64"}, default "float32"
        Working precision of the arrays (costs always accumulate in float64).
    estimate_srf : bool, default False
        Estimate the SRF by NNLS with offset (§2.3) even when the sensor has one. It is
        always estimated when the sensor has none.
    drop_uncovered_bands : bool, default True
        Drop (with a warning) MSI bands with a zero SRF row or an SRF fit error > 0.1.
    num_threads : int, optional
        Torch threads for the large products (restored afterwards); default: unchanged.
        Products below about 2²⁰ (MS) or 2²¹ (HS) elements run single-threaded; a scene
        whose products are all that small runs single-threaded throughout, NumPy/SciPy's
        BLAS included (when called from the main thread).
    implementation : {"fast", "generic"}, default "fast"
        ``"generic"`` runs the shared unrolled stages (slower, same iterates).
    final_ms_iters : int or None, default 0
        Cap of a last MS abundance-only loop with E_m = R E for the final E (None: I_in;
        0, the default, disables it and gives the §3 reference output E·A from step 5). Without it the output
        keeps the A fitted to the drifted E_m of step 5(b) and does not reproduce the MSI
        through R (on the issue-4 Jasper/Samson protocol: +1.2 to +1.8 dB).
    flush_denormals : bool, default True
        Flush subnormal floats to zero on the CPU during the loops. Unused abundances decay
        geometrically into the subnormal range, where every product reading them is several
        times slower (issue-4 Jasper x4: 0.86 s -> 0.53 s, identical PSNR); the values lost
        are below 1.2e-38 (float32).
    """

    n_endmembers: int | None = None
    inner_iters: int = 200
    hs_init_iters: int | None = None
    pan_inner_iters: int = 75
    outer_iters: int = 1
    theta: float = 1e-8
    th2: float = 1e-2
    vd_alpha: float = 0.05
    eps: float = 1e-12
    vca_seed: int = 0
    vca_draw: Literal["normal", "uniform"] = "normal"
    vca_snr_rule: Literal["paper", "reference"] = "paper"
    vca_endmembers: Literal["pixels", "projected"] = "pixels"
    delta_scale: float = 1.0
    dtype: Literal["float32", "float64"] = "float32"
    estimate_srf: bool = False
    drop_uncovered_bands: bool = True
    num_threads: int | None = None
    implementation: Literal["fast", "generic"] = "fast"
    final_ms_iters: int | None = 0
    flush_denormals: bool = True


def cnmf_flops(N: int, p: int, l: int, kind: Literal["ms_a_data", "ms_a_gram", "ms_a_naive"]) -> float:
    """FLOP count of one MS abundance-only iteration (``classical.md`` §3.1 table).

    Examples
    --------
    >>> round(cnmf_flops(512 * 512, 30, 3, "ms_a_data") / 1e6, 1)
    143.9
    """
    base = 2 * p * N + 3 * l * N
    if kind == "ms_a_data":
        return float(4 * p * (l + 1) * N + base)
    gram = 2 * p * p * N + 2 * l * p * N + base
    return float(gram if kind == "ms_a_gram" else gram + 2 * p * (l + 1) * N)




@dataclass
class _Loop:
    name: str
    iterations: int = 0
    max_iterations: int = 0
    stopped: bool = False
    seconds: float = 0.0
    start: int = 0


@dataclass
class _Log:
    """Cost history and per-loop records of one batch item."""

    progress: ProgressFn | None
    cost: list[float] = field(default_factory=list)
    cost_aug: list[float] = field(default_factory=list)
    loops: list[_Loop] = field(default_factory=list)

    def open(self, name: str, max_it: int) -> _Loop:
        lp = _Loop(name, max_iterations=max_it, start=len(self.cost))
        self.loops.append(lp)
        return lp

    def record(self, lp: _Loop, J: float, Jaug: float) -> None:
        lp.iterations += 1
        self.cost.append(J)
        self.cost_aug.append(Jaug)
        if self.progress is not None:
            self.progress(lp.name, lp.iterations, lp.max_iterations, J)


def _sum_to_one_deltas(msi: torch.Tensor, cfg: CNMFConfig) -> list[float]:
    """δ per batch item of ``msi`` (B, l, H, W): the reference heuristic times ``delta_scale``."""
    return (sum_to_one_delta(msi) * cfg.delta_scale).reshape(-1).tolist()


def _init_endmembers(Yh: torch.Tensor, p: int, cfg: CNMFConfig) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """Step 2: VCA indices, E = those pixels of Y_h (or their projection), and A_h = 1/p."""
    idx, spectra = vca(Yh.cpu().numpy(), p, rng=cfg.vca_seed, draw=cfg.vca_draw, snr_rule=cfg.vca_snr_rule,
                       return_spectra=True)
    if cfg.vca_endmembers == "projected":
        E = torch.from_numpy(spectra).to(Yh.device, Yh.dtype).clamp_min(cfg.eps)
    else:
        E = Yh[:, torch.as_tensor(idx, device=Yh.device)].clone()
    return idx, E, torch.full((p, Yh.shape[1]), 1.0 / p, dtype=Yh.dtype, device=Yh.device)


def _hs_unmix(
    solver: _FastSolver, E: torch.Tensor, Ah: torch.Tensor, cfg: CNMFConfig, I_in: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 3: A_h-only updates (cap 3·I_in, or ``hs_init_iters``), then E/A_h alternation."""
    cap = 3 * I_in if cfg.hs_init_iters is None else cfg.hs_init_iters
    Ah = solver.hs_abundances(E, Ah, cap, "hs_abundances")
    return solver.hs_alternate(E, Ah, I_in, "hs_alternate", e_first=True)


def _stop(prev: float | None, J: float, theta: float) -> bool:
    return prev is not None and (prev - J) / max(J, 1e-300) < theta


def _ms_single(N: int, p: int, l: int) -> bool:
    """MS products this small run single-threaded (oversubscribed small GEMMs are many times slower)."""
    return N * max(p, l + 1) < 2**20


def _hs_single(n: int, p: int, L: int) -> bool:
    """HS products this small run single-threaded."""
    return n * max(p, L) < 2**21


def _flushed(loop: Callable[..., Any]) -> Callable[..., Any]:
    """Run a solver loop with denormals flushed when the config asks for it."""

    @functools.wraps(loop)
    def run(self: _FastSolver, *args: Any, **kwargs: Any) -> Any:
        with denormals_flushed(self.flush):
            return loop(self, *args, **kwargs)

    return run


class _FastSolver:
    """The §3.1 loops for one batch item, on matrices (pixels as columns)."""

    def __init__(
        self,
        Yh: torch.Tensor,
        Ym: torch.Tensor,
        delta: float,
        cfg: CNMFConfig,
        log: _Log,
        hs_threads: int | None,
        ms_threads: int | None,
    ) -> None:
        self.Yh, self.Ym = Yh, Ym
        self.d = delta
        self.d2 = delta * delta
        self.eps = cfg.eps
        self.theta = cfg.theta
        self.flush = cfg.flush_denormals
        self.log = log
        self.hs_threads, self.ms_threads = hs_threads, ms_threads
        self.Yh64 = Yh.to(torch.float64)
        self.Yh_np = np.ascontiguousarray(self.Yh64.cpu().numpy())
        self.Yh_lo = self.Yh_np.astype(np.float32) if Yh.dtype != torch.float64 else self.Yh_np
        self.yy_h = float((self.Yh_np**2).sum())
        self.Jh = math.nan
        self.Jm = math.nan
        self.ms_block: int | None = None  # columns per tile-resident block (None: see _blocks)

    # ---------------------------------------------------------------- HS side
    # The HS loops are small (n = h·w LR pixels): in torch, per-call overhead dominated them.
    # They run in NumPy float64 (iterates and costs; float32 runs form one of the alternating
    # loop's two large products in float32), and every cost comes from products that the
    # next update needs anyway, through the float64 identity of §3.1:
    #   A_h-only: J_aug = ‖Y‖² + δ²n − 2⟨ẼᵀỸ, A⟩ + ⟨A, (ẼᵀẼ)A⟩, J = J_aug − δ²‖1 − 1ᵀA‖²
    #             ((ẼᵀẼ)A is the next denominator);
    #   E-only:   J = ‖Y‖² − 2⟨E, YAᵀ⟩ + ⟨E, E(AAᵀ)⟩ (E(AAᵀ) is the next denominator).
    def _np(self, x: torch.Tensor) -> np.ndarray:
        return x.detach().to(torch.float64).cpu().numpy()

    def _back(self, x: np.ndarray, like: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).to(dtype=like.dtype, device=like.device)

    @_flushed
    def hs_abundances(self, E: torch.Tensor, Ah: torch.Tensor, n_it: int, name: str) -> torch.Tensor:
        """A_h-only updates with E fixed: hoisted ẼᵀỸ_h and ẼᵀẼ, Gram-first denominators whose
        product (ẼᵀẼ)A also gives the cost."""
        lp = self.log.open(name, n_it)
        t0 = time.perf_counter()
        Y, d2, eps, n = self.Yh_np, self.d2, self.eps, self.Yh_np.shape[1]
        Em, A = self._np(E), self._np(Ah)
        num = Em.T @ Y + d2
        G = Em.T @ Em + d2
        den = G @ A
        prev = None
        base = self.yy_h + d2 * n
        for _ in range(n_it):
            A2 = A * num / np.maximum(den, eps)
            den2 = G @ A2
            Jaug = base - 2.0 * float(np.vdot(num, A2)) + float(np.vdot(A2, den2))
            s = A2.sum(0)
            J = Jaug - d2 * float(((1.0 - s) ** 2).sum())
            if _stop(prev, J, self.theta):
                lp.stopped = True
                break
            A, den, prev = A2, den2, J
            self.log.record(lp, J, Jaug)
        self.Jh = prev if prev is not None else self.Jh
        lp.seconds = time.perf_counter() - t0
        return self._back(A, Ah)

    @_flushed
    def hs_endmembers(self, E: torch.Tensor, Ah: torch.Tensor, n_it: int, name: str) -> torch.Tensor:
        """E-only updates with A_h fixed: Y_hA_hᵀ and A_hA_hᵀ hoisted, O(Lp²) per iteration."""
        lp = self.log.open(name, n_it)
        t0 = time.perf_counter()
        eps = self.eps
        Em, A = self._np(E), self._np(Ah)
        YAt, AAt = self.Yh_np @ A.T, A @ A.T
        aug = self.d2 * float(((1.0 - A.sum(0)) ** 2).sum())
        den = Em @ AAt
        prev = None
        for _ in range(n_it):
            E2 = Em * YAt / np.maximum(den, eps)
            den2 = E2 @ AAt
            J = self.yy_h - 2.0 * float(np.vdot(E2, YAt)) + float(np.vdot(E2, den2))
            if _stop(prev, J, self.theta):
                lp.stopped = True
                break
            Em, den, prev = E2, den2, J
            self.log.record(lp, J, J + aug)
        self.Jh = prev if prev is not None else self.Jh
        lp.seconds = time.perf_counter() - t0
        return self._back(Em, E)

    @_flushed
    def hs_alternate(
        self, E: torch.Tensor, Ah: torch.Tensor, n_it: int, name: str, e_first: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Alternate E and A_h (order per ``e_first``); see :meth:`_hs_alternate`."""
        # Small products run in torch, single-threaded; the (process-wide) thread count is
        # only changed from the main thread.
        with _threads(self.hs_threads) if on_main_thread() else contextlib.nullcontext():
            return self._hs_alternate(E, Ah, n_it, name, e_first)

    def _hs_alternate(
        self, E: torch.Tensor, Ah: torch.Tensor, n_it: int, name: str, e_first: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Alternate E and A_h (order per ``e_first``).

        Per iteration, two products of size L·p·n dominate: E'ᵀY_h (the A_h numerator) and
        Y_hA'ᵀ (the E numerator). The cost J = ‖Y‖² − 2⟨EᵀY, A⟩ + ⟨EᵀE, AAᵀ⟩ needs one of
        them for the final pair (E, A) in float64: EᵀY when E is updated first, Y Aᵀ when A
        is. The other only feeds a multiplicative update and, in float32 runs, is formed
        in float32 (the update's own precision). Small ones (single-threaded, see
        ``hs_threads``) go through torch, whose MKL forms them up to 1.8x faster than NumPy's
        OpenBLAS on one thread; large ones stay in NumPy, faster there on two threads
        (L = 128, n = 65,536: 6.5 against 10.0 ms for EᵀY).
        """
        lp = self.log.open(name, n_it)
        t0 = time.perf_counter()
        Y, Ylo, d2, eps = self.Yh_np, self.Yh_lo, self.d2, self.eps
        lo = Ylo.dtype
        Em, A = self._np(E), self._np(Ah)
        mm = _mm if self.hs_threads == 1 and torch.get_num_threads() == 1 else np.matmul
        YAt, AAt = (mm(Ylo, A.T.astype(lo)) if e_first else mm(Y, A.T)), A @ A.T
        prev = None
        for _ in range(n_it):
            if e_first:
                E2 = Em * YAt / np.maximum(Em @ AAt, eps)
                EtE = E2.T @ E2
                M = mm(E2.T, Y)
                A2 = A * (M + d2) / np.maximum((EtE + d2) @ A, eps)
                YAt2, AAt2 = mm(Ylo, A2.T.astype(lo)), A2 @ A2.T
                J = self.yy_h - 2.0 * float(np.vdot(M, A2)) + float(np.vdot(EtE, AAt2))
            else:
                num = mm(Em.T.astype(lo), Ylo)
                num += d2
                A2 = A * num / np.maximum((Em.T @ Em + d2) @ A, eps)
                YAt2, AAt2 = mm(Y, A2.T), A2 @ A2.T
                E2 = Em * YAt2 / np.maximum(Em @ AAt2, eps)
                J = self.yy_h - 2.0 * float(np.vdot(E2, YAt2)) + float(np.vdot(E2.T @ E2, AAt2))
            if _stop(prev, J, self.theta):
                lp.stopped = True
                break
            Em, A, prev = E2, A2, J
            YAt, AAt = YAt2, AAt2
            self.log.record(lp, J, J + d2 * float(((1.0 - A.sum(0)) ** 2).sum()))
        self.Jh = prev if prev is not None else self.Jh
        lp.seconds = time.perf_counter() - t0
        return self._back(Em, E), self._back(A, Ah)

    # ---------------------------------------------------------------- MS side
    def _aug_E(self, Em: torch.Tensor) -> torch.Tensor:
        return torch.cat([Em, Em.new_full((1, Em.shape[1]), self.d)], dim=0)

    def _aug_Ym(self, c0: int, c1: int) -> torch.Tensor:
        """Columns c0:c1 of the augmented MSI Ỹ_m = [Y_m; δ1ᵀ]."""
        return torch.cat([self.Ym[:, c0:c1], self.Ym.new_full((1, c1 - c0), self.d)])

    @_flushed
    def ms_abundances(self, Em: torch.Tensor, A: torch.Tensor, n_it: int, name: str) -> torch.Tensor:
        """A-only updates with E_m fixed: hoisted numerator, data-first denominator Ẽᵀ P with
        P = ẼA, P reused for the cost J = ‖Y_m − P[:l]‖² and for the next denominator.

        With E_m fixed the pixels are independent, so the loop is tile-resident (§3.1): each
        block of A (see :meth:`_a_only_block_bytes`) runs all iterations while it stays in
        cache, the blocks spread over ``ms_threads`` single-threaded workers (when called from
        the main thread), and their per-iteration costs add up to the global J of the stop
        rule ("exact" mode: if the rule fires, the blocks are rerun to the accepted count).
        The input A is not modified.
        """
        lp = self.log.open(name, n_it)
        t0 = time.perf_counter()
        with _threads(self.ms_threads):
            workers = torch.get_num_threads()
            Et = self._aug_E(Em)
            num = Em.T @ self.Ym
            num += self.d2
        blocks = self._blocks(A, self._a_only_block_bytes(workers))
        out, J, Jaug = self._ms_blocks(Et, num, A, n_it, blocks, workers)
        accepted = n_it
        for k in range(1, n_it):
            if _stop(float(J[k - 1]), float(J[k]), self.theta):
                accepted = k
                lp.stopped = True
                break
        if accepted < n_it:
            out, _, _ = self._ms_blocks(Et, num, A, accepted, blocks, workers)
        for k in range(accepted):
            self.log.record(lp, float(J[k]), float(J[k] + Jaug[k]))
        if accepted:
            self.Jm = float(J[accepted - 1])
        lp.seconds = time.perf_counter() - t0
        return out if n_it else A

    def _ms_blocks(
        self, Et: torch.Tensor, num: torch.Tensor, A: torch.Tensor, n_it: int,
        blocks: list[tuple[int, int]], workers: int,
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Run ``n_it`` A-updates on each column block; returns (A, J per iteration, δ-row cost)."""
        out = torch.empty_like(A)
        J = np.zeros(n_it)
        Jaug = np.zeros(n_it)
        EtT = Et.T.contiguous()

        def run(c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
            a = A[:, c0:c1]
            nm = num[:, c0:c1].contiguous()
            y = self._aug_Ym(c0, c1)
            P = Et @ a
            R64 = torch.empty(y.shape, dtype=torch.float64, device=y.device)
            # Every elementwise step writes into one of its inputs: a third array per step
            # pushed the block out of L2 (2.7x slower per step at 9,216 columns).
            bufs = (a.new_empty(a.shape), a.new_empty(a.shape))
            j, ja = np.zeros(n_it), np.zeros(n_it)
            for k in range(n_it):
                x = bufs[k % 2]
                torch.matmul(EtT, P, out=x)
                x.clamp_(min=self.eps)
                torch.div(nm, x, out=x)
                x.mul_(a)
                torch.matmul(Et, x, out=P)
                torch.sub(y, P, out=R64)  # float32 difference, stored in float64
                j[k], ja[k] = _sq_norms(R64)
                a = x
            out[:, c0:c1] = a
            return j, ja

        for j, ja in self._over_blocks(run, blocks, workers):
            J += j
            Jaug += ja
        return out, J, Jaug

    @staticmethod
    def _a_only_block_bytes(workers: int) -> int:
        """256 kB blocks when this loop has the interpreter to itself (one worker, main thread);
        1 MB when other Python threads run beside it (its own workers, or Dask's tile tasks):
        smaller blocks mean more Python per iteration, and the GIL serialises it (tiled
        2048² on 2 Dask workers: 92 s with 256 kB blocks, no faster than 1 worker)."""
        alone = workers <= 1 and on_main_thread()
        return 2**18 if alone else 2**20

    def _blocks(self, A: torch.Tensor, nbytes: int = 2**18) -> list[tuple[int, int]]:
        """Equal column blocks of about ``nbytes`` of A (one block on GPUs). On one worker the
        A-only loops use 256 kB (with its work arrays a block stays in a 2 MB L2 cache); the
        alternation, and several workers (whose per-call Python overhead contends for the
        GIL), use 1 MB: 512² x 31 on 2 workers, 7.1-8.2 ms per iteration against 11.2-11.6."""
        N = A.shape[1]
        if self.ms_block:
            width = self.ms_block
        elif A.device.type != "cpu":
            width = N
        else:
            target = max(1024, nbytes // (4 * max(A.shape[0], 1)))
            width = -(-N // max(1, round(N / target)))
        return [(c, min(c + width, N)) for c in range(0, N, width)]

    def _over_blocks(self, run: Callable[[int, int], Any], blocks: list[tuple[int, int]], workers: int) -> list[Any]:
        """``run(c0, c1)`` for every block: inline, or on ``workers`` single-threaded threads.

        Worker threads need torch single-threaded, a process-wide setting: it is only changed
        from the main thread (inside e.g. Dask's threaded tasks other torch work may run)."""
        if workers <= 1 or len(blocks) == 1 or not on_main_thread():
            with _threads(self.ms_threads):
                return [run(c0, c1) for c0, c1 in blocks]
        with _threads(1), ThreadPoolExecutor(min(workers, len(blocks))) as ex:
            return list(ex.map(lambda b: run(*b), blocks))

    def _a_step(
        self, Et: torch.Tensor, EtT: torch.Tensor, yt: torch.Tensor, a: torch.Tensor,
        out: torch.Tensor | None = None, den: torch.Tensor | None = None, P: torch.Tensor | None = None,
        EtT_y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One A-update with the numerator recomputed: a ⊙ (ẼᵀỸ) ⊘ max(Ẽᵀ(Ẽa), ε), for a
        block ``yt`` = Ỹ_m = [y; δ1ᵀ] of the augmented MSI (ẼᵀỸ = E_mᵀy + δ²).

        ``out`` (p × width), ``den`` (p × width) and ``P`` ((l+1) × width) are optional work
        buffers; every elementwise step writes into one of its own inputs (a third array per
        step pushed the block out of L2). ``EtT_y``: Ẽᵀ with its columns in ``yt``'s row order
        when that differs from ``Et``'s."""
        out = torch.matmul(EtT if EtT_y is None else EtT_y, yt, out=out)
        P = torch.matmul(Et, a, out=P)
        den = torch.matmul(EtT, P, out=den)
        den.clamp_(min=self.eps)
        torch.div(out, den, out=out)
        return out.mul_(a)

    @_flushed
    def ms_replay(self, trajectory: list[torch.Tensor], A: torch.Tensor) -> torch.Tensor:
        """A-updates with E_m taking the values of a recorded ``ms_alternate`` trajectory in turn.

        Tiled CNMF records the trajectory on a pixel sample of the whole scene and replays it
        on every tile: the A-updates are per pixel, so a tile then follows step 5(b) as the
        untiled run does, with the scene-wide E_m of each iteration. Tile-resident like
        :meth:`ms_abundances` (each column block replays the whole trajectory in cache).
        """
        with _threads(self.ms_threads):
            workers = torch.get_num_threads()
        Ets = [self._aug_E(Em) for Em in trajectory]
        EtTs = [Et.T.contiguous() for Et in Ets]
        out = torch.empty_like(A)

        def run(c0: int, c1: int) -> None:
            a = A[:, c0:c1]
            yt = self._aug_Ym(c0, c1)
            bufs = (a.new_empty(a.shape), a.new_empty(a.shape))
            den, P = a.new_empty(a.shape), a.new_empty(yt.shape)
            for k, (Et, EtT) in enumerate(zip(Ets, EtTs, strict=True)):
                a = self._a_step(Et, EtT, yt, a, bufs[k % 2], den, P)
            out[:, c0:c1] = a

        self._over_blocks(run, self._blocks(A, self._a_only_block_bytes(workers)), workers)
        return out

    @_flushed
    def ms_alternate(
        self, Em: torch.Tensor, A: torch.Tensor, n_it: int, name: str,
        trajectory: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Alternate E_m then A (``trajectory``: append every accepted E_m).

        One product [Y_m; E_mA]·Aᵀ per iteration gives both the numerator Y_mAᵀ and the
        data-first denominator E_m(AAᵀ) = (E_mA)Aᵀ of the next E_m update (2·2l·p·N FLOPs
        instead of p(p+1)N for AAᵀ); E_mA is the P = ẼA that the direct-residual cost needs
        anyway. E_m couples all pixels once per iteration, so the A half runs block by block
        (column blocks of ~1 MB over ``ms_threads`` workers, as in :meth:`ms_abundances`), each
        block returning its share of that product and of the cost. The input A is not
        modified."""
        lp = self.log.open(name, n_it)
        t0 = time.perf_counter()
        l = Em.shape[0]
        with _threads(self.ms_threads):
            workers = torch.get_num_threads()
        blocks = self._blocks(A, 2**20)
        Ym = self.Ym

        # Per block, Z = [δ1ᵀ; Y_m; E_mA; δ1ᵀA] ((2l+2) × width): Z[1:2l+1]·Aᵀ is the block's
        # share of [Y_m; E_mA]·Aᵀ (only the 2l rows needed); Z[:l+1] with the augmentation
        # [δ1ᵀ; E_m] gives the A numerator, Z[l+1:] = [E_m; δ1ᵀ]A is P for the costs.
        # A lives in two flat buffers in block-major order (each block's p × width slab is
        # contiguous, so the updates run in place): ``cur`` holds the accepted A (None: the
        # input, never written), the other receives the update. At the end the spare buffer,
        # viewed as p × N, takes the assembled A (no third copy).
        p, N = A.shape
        flat = [A.new_empty(p * N), A.new_empty(p * N)]
        cur_k: int | None = None
        new_k = 0

        def slab(k: int, c0: int, c1: int) -> torch.Tensor:
            return flat[k][p * c0 : p * c1].view(p, c1 - c0)

        Zs: dict[int, torch.Tensor] = {}
        scratch = _Scratch()  # den, P, residual: per worker thread, not per block

        def start(c0: int, c1: int) -> torch.Tensor:
            a = A[:, c0:c1]
            Z = torch.empty((2 * l + 2, c1 - c0), dtype=Ym.dtype, device=Ym.device)
            Z[0] = self.d
            Z[1 : l + 1] = Ym[:, c0:c1]
            torch.matmul(self._aug_E(Em), a, out=Z[l + 1 :])
            Zs[c0] = Z
            return Z[1 : 2 * l + 1] @ a.T

        ZA = _total(self._over_blocks(start, blocks, workers))
        prev = None
        for _ in range(n_it):
            Em2 = Em * ZA[:l] / ZA[l:].clamp_min(self.eps)
            Et = self._aug_E(Em2)
            EtT = Et.T.contiguous()
            EtT_y = torch.cat([EtT[:, l:], EtT[:, :l]], dim=1)  # [δ1ᵀ; E_m]ᵀ, Z's row order

            def step(c0: int, c1: int) -> tuple[float, float, torch.Tensor]:  # runs within this iteration
                Z, w = Zs[c0], c1 - c0
                a = A[:, c0:c1] if cur_k is None else slab(cur_k, c0, c1)
                a2 = slab(new_k, c0, c1)
                den, P = scratch.get("den", a2.shape, a2), scratch.get("P", (l + 1, w), a2)
                self._a_step(Et, EtT, Z[: l + 1], a, a2, den, P, EtT_y)
                torch.matmul(Et, a2, out=Z[l + 1 :])
                R64 = scratch.get("R64", (l + 1, w), a2, torch.float64)
                torch.sub(Z[1 : l + 1], Z[l + 1 : 2 * l + 1], out=R64[:l])
                torch.sub(Z[0], Z[2 * l + 1], out=R64[l])
                j, ja = _sq_norms(R64)
                return j, ja, Z[1 : 2 * l + 1] @ a2.T

            parts = self._over_blocks(step, blocks, workers)
            J = float(sum(pt[0] for pt in parts))
            if _stop(prev, J, self.theta):
                lp.stopped = True
                break
            Em, prev = Em2, J
            cur_k, new_k = new_k, 1 - new_k
            if trajectory is not None:
                trajectory.append(Em2.clone())
            ZA = _total([pt[2] for pt in parts])
            self.log.record(lp, J, J + float(sum(pt[1] for pt in parts)))
        cur = A
        if cur_k is not None:
            cur = flat[new_k].view(p, N)
            for c0, c1 in blocks:
                cur[:, c0:c1] = slab(cur_k, c0, c1)
        self.Jm = prev if prev is not None else self.Jm
        lp.seconds = time.perf_counter() - t0
        return Em, cur


class _Scratch(threading.local):
    """Work buffers of one thread, reused across its blocks and iterations."""

    def __init__(self) -> None:
        self.bufs: dict[str, torch.Tensor] = {}

    def get(
        self, name: str, shape: tuple[int, ...] | torch.Size, like: torch.Tensor, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        n, dt = math.prod(shape), dtype or like.dtype
        b = self.bufs.get(name)
        if b is None or b.numel() < n or b.dtype != dt or b.device != like.device:
            b = self.bufs[name] = torch.empty(n, dtype=dt, device=like.device)
        return b[:n].view(shape)


def _sq_norms(R64: torch.Tensor) -> tuple[float, float]:
    """Costs from the augmented residual Ỹ − ẼA ((l+1) × width, contiguous float64):
    ‖rows :l‖² (J) and ‖row l‖² (the δ row)."""
    top, last = R64[:-1].view(-1), R64[-1]
    return float(torch.dot(top, top)), float(torch.dot(last, last))


def _mm(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x @ y through torch's BLAS (zero-copy views of the NumPy arrays)."""
    return torch.from_numpy(x).mm(torch.from_numpy(y)).numpy()


def _total(parts: list[torch.Tensor]) -> torch.Tensor:
    """Sum of the blocks' partial products."""
    out = parts[0].clone()
    for t in parts[1:]:
        out += t
    return out


class _GenericSolver(_FastSolver):
    """The same loops run as ``Unrolled`` chains of ``MultiplicativeUpdate`` stages."""

    def __init__(self, *args: Any, shape: tuple[int, int, int, int], physics: FusionPhysics) -> None:
        super().__init__(*args)
        self.h, self.w, self.H, self.W = shape
        self.physics = physics
        self.hsi = self.Yh.reshape(1, -1, self.h, self.w)
        self.msi = self.Ym.reshape(1, -1, self.H, self.W)
        self.hs = hs_term(self.hsi, self.d)
        self.ms = ms_term(self.msi, self.d)

    def _run(
        self, targets: tuple[Target, ...], state: NMFState, n_it: int, name: str, side: str
    ) -> NMFState:
        lp = self.log.open(name, n_it)
        t0 = time.perf_counter()
        net = Unrolled(
            lambda k: MultiplicativeUpdate(targets, eps=self.eps, delta=self.d), n_it, share_weights=True
        )
        if side == "hs":
            term = self.hs

            def cost(s: NMFState) -> float:
                return float(term.cost(s.endmembers, s.abundances_lr.reshape(1, s.n_endmembers, -1)))  # type: ignore[union-attr]

            def aug(s: NMFState) -> float:
                return float(term.augmented_cost(s.endmembers, s.abundances_lr.reshape(1, s.n_endmembers, -1)))  # type: ignore[union-attr]
        else:
            term = self.ms

            def cost(s: NMFState) -> float:
                return float(term.cost(s.ms_endmembers, s.abundances.reshape(1, s.n_endmembers, -1)))  # type: ignore[arg-type]

            def aug(s: NMFState) -> float:
                return float(term.augmented_cost(s.ms_endmembers, s.abundances.reshape(1, s.n_endmembers, -1)))  # type: ignore[arg-type]

        def keep(k: int, J: float, s: NMFState) -> None:
            self.log.record(lp, J, aug(s))

        with _threads(self.hs_threads if side == "hs" else self.ms_threads):
            out = net.run(
                state, self.hsi, self.msi, self.physics, cost=cost, theta=self.theta, callback=keep
            )
        lp.stopped = out.stopped
        lp.seconds = time.perf_counter() - t0
        if side == "hs":
            self.Jh = out.costs[-1] if out.costs else self.Jh
        else:
            self.Jm = out.costs[-1] if out.costs else self.Jm
        return out.state

    def _state(self, E: torch.Tensor, Ah: torch.Tensor | None, Em: torch.Tensor | None, A: torch.Tensor | None) -> NMFState:
        p = E.shape[1]
        return NMFState(
            endmembers=E[None],
            abundances=(A if A is not None else E.new_zeros(p, self.H * self.W)).reshape(1, p, self.H, self.W),
            abundances_lr=None if Ah is None else Ah.reshape(1, p, self.h, self.w),
            ms_endmembers=None if Em is None else Em[None],
        )

    def _Em(self, E: torch.Tensor) -> torch.Tensor:
        return ms_endmembers(E[None], self.physics)[0]

    @_flushed
    def hs_abundances(self, E: torch.Tensor, Ah: torch.Tensor, n_it: int, name: str) -> torch.Tensor:
        s = self._run(("A_h",), self._state(E, Ah, self._Em(E), None), n_it, name, "hs")
        return s.abundances_lr.reshape(E.shape[1], -1)  # type: ignore[union-attr]

    @_flushed
    def hs_endmembers(self, E: torch.Tensor, Ah: torch.Tensor, n_it: int, name: str) -> torch.Tensor:
        s = self._run(("E",), self._state(E, Ah, self._Em(E), None), n_it, name, "hs")
        return s.endmembers[0]

    @_flushed
    def hs_alternate(
        self, E: torch.Tensor, Ah: torch.Tensor, n_it: int, name: str, e_first: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        tg: tuple[Target, ...] = ("E", "A_h") if e_first else ("A_h", "E")
        s = self._run(tg, self._state(E, Ah, self._Em(E), None), n_it, name, "hs")
        return s.endmembers[0], s.abundances_lr.reshape(E.shape[1], -1)  # type: ignore[union-attr]

    @_flushed
    def ms_abundances(self, Em: torch.Tensor, A: torch.Tensor, n_it: int, name: str) -> torch.Tensor:
        E0 = Em.new_zeros(self.Yh.shape[0], Em.shape[1])
        Ah0 = Em.new_zeros(Em.shape[1], self.h * self.w)
        s = self._run(("A",), self._state(E0, Ah0, Em, A), n_it, name, "ms")
        return s.abundances.reshape(Em.shape[1], -1)

    @_flushed
    def ms_alternate(
        self, Em: torch.Tensor, A: torch.Tensor, n_it: int, name: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        E0 = Em.new_zeros(self.Yh.shape[0], Em.shape[1])
        Ah0 = Em.new_zeros(Em.shape[1], self.h * self.w)
        s = self._run(("E_m", "A"), self._state(E0, Ah0, Em, A), n_it, name, "ms")
        return s.ms_endmembers[0], s.abundances.reshape(Em.shape[1], -1)  # type: ignore[index]


@register_method("cnmf", config=CNMFConfig)
class CNMF(FusionMethod):
    """Coupled NMF fusion (Yokoya et al. 2012) with sum-to-one augmentation.

    Parameters
    ----------
    config : CNMFConfig, optional
        Options; defaults of ``classical.md`` §3.
    progress : callable, optional
        ``progress(loop, iteration, max_iterations, cost)`` after every accepted iteration.
        Loop names: ``hs_abundances``, ``hs_alternate``, ``ms_abundances``,
        ``ms_alternate``, ``outer{t}_endmembers``, ``outer{t}_alternate`` and, for t < I_out,
        ``outer{t}_ms_abundances`` / ``outer{t}_ms_alternate``. Can also be set later as the
        ``progress`` attribute.

    Notes
    -----
    Without an SRF (``physics.spectral is None``) or with ``estimate_srf=True``, R and the MSI
    offsets are estimated by :func:`~hyperfuse.physics.estimate.estimate_srf_nnls` with the
    sensor's PSF and offset (default PSF and offsets when no sensor is given), and the
    offsets are subtracted. Inputs are clipped at 0. Memory: about (3p + 2(l+1) + L)·N
    working floats per item.

    ``FusionResult`` fields: ``endmembers`` (B, L, p), ``abundances`` (B, p, H, W),
    ``history["cost"]`` (J of every accepted iteration, loops concatenated, items
    concatenated), ``history["cost_augmented"]`` and ``info`` (``p``, ``delta``,
    ``iterations`` per loop, ``loops``, ``timings``, ``srf``, ``dropped_bands``).

    Examples
    --------
    >>> from hyperfuse.physics.sensor import make_sensor
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(1, 6, 16, 16, generator=g)
    >>> sensor = make_sensor(4, srf=np.full((2, 6), 1 / 6), boundary="circular")
    >>> phys = FusionPhysics(sensor)
    >>> out = CNMF(CNMFConfig(n_endmembers=3, inner_iters=5)).fuse(phys.spatial(x), phys.spectral(x), sensor)
    >>> tuple(out.cube.shape), tuple(out.endmembers.shape), tuple(out.abundances.shape)
    ((1, 6, 16, 16), (1, 6, 3), (1, 3, 16, 16))
    """

    description = "Coupled NMF (Yokoya et al. 2012): alternating unmixing of HSI and MSI"
    needs_srf = False  # estimates R by NNLS when the sensor has none

    def __init__(self, config: CNMFConfig | None = None, *, progress: ProgressFn | None = None) -> None:
        super().__init__(config or CNMFConfig())
        self.progress = progress
        cfg = self.config
        if cfg.dtype not in ("float32", "float64"):
            raise InputError(f"dtype must be 'float32' or 'float64', got {cfg.dtype!r}")
        if cfg.implementation not in ("fast", "generic"):
            raise InputError(f"implementation must be 'fast' or 'generic', got {cfg.implementation!r}")
        if cfg.n_endmembers is not None and cfg.n_endmembers < 1:
            raise InputError(f"n_endmembers must be >= 1, got {cfg.n_endmembers}; pass e.g. 30")
        if not cfg.delta_scale > 0:
            raise InputError(f"delta_scale must be > 0, got {cfg.delta_scale}")
        check_vca_options(cfg)
        if cfg.inner_iters < 0 or cfg.pan_inner_iters < 0 or cfg.outer_iters < 1 or (cfg.hs_init_iters or 0) < 0:
            raise InputError("inner_iters, pan_inner_iters and hs_init_iters must be >= 0 and outer_iters >= 1")

    # ------------------------------------------------------------------ sensor
    def _sensor(
        self, hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics | None
    ) -> tuple[FusionPhysics, torch.Tensor, dict[str, Any]]:
        """Resolve R (estimating it if needed), subtract offsets, drop uncovered bands."""
        cfg = self.config
        info: dict[str, Any] = {}
        if physics is None:
            physics = FusionPhysics(make_sensor(msi.shape[-1] // hsi.shape[-1]))
        spec = physics.spec
        if physics.spectral is None or cfg.estimate_srf:
            est = estimate_srf_nnls(
                hsi, msi, physics.ratio, psf=spec.psf, offset=spec.offset, boundary=spec.boundary
            )
            R = est.srf
            off = torch.as_tensor(est.offset, dtype=msi.dtype).reshape(1, -1, 1, 1)
            msi = (msi - off).clamp_min(0)
            uncovered = np.flatnonzero(est.error > 0.1)
            info.update(srf_estimated=True, srf_offset=est.offset.tolist(), srf_fit_error=est.error.tolist())
        else:
            R = np.asarray(spec.srf, dtype=np.float64)
            uncovered = np.flatnonzero(~(R > 0).any(axis=1))
            info["srf_estimated"] = False
        if uncovered.size and cfg.drop_uncovered_bands:
            if uncovered.size == R.shape[0]:
                raise SRFError(
                    "no MSI band is covered by the HSI (zero SRF rows or SRF fit errors > 0.1); "
                    "check that both images see the same spectral range"
                )
            warnings.warn(
                f"CNMF drops MSI band(s) {uncovered.tolist()}: not covered by the HSI "
                "(zero SRF row or fit error > 0.1)",
                UserWarning,
                stacklevel=4,
            )
            keep = np.setdiff1d(np.arange(R.shape[0]), uncovered)
            R = R[keep]
            msi = msi[:, torch.as_tensor(keep)]
        info["dropped_bands"] = uncovered.tolist() if cfg.drop_uncovered_bands else []
        info["srf"] = R.tolist()
        return FusionPhysics(spec.replace(srf=R)), msi, info

    # ------------------------------------------------------------------ main
    def _fuse(
        self, hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics | None
    ) -> FusionResult:
        # A small scene runs single-threaded throughout (torch and NumPy/SciPy's BLAS): its
        # products are too small to share, and a second thread only adds synchronisation
        # (issue-4 Jasper x4 on 2 cores: 0.54 -> 0.44 s; Samson x8: 0.34-0.43 -> 0.32 s).
        _, L, h, w = hsi.shape
        l, H, W = msi.shape[1:]
        small = _ms_single(H * W, 30, l) and _hs_single(h * w, 30, L)  # p is not known yet
        with contextlib.ExitStack() as stack:
            if small and on_main_thread() and hsi.device.type == "cpu":
                stack.enter_context(_threads(1))
                stack.enter_context(blas_threads(1))
            return self._fuse_run(hsi, msi, physics)

    def _fuse_run(
        self, hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics | None
    ) -> FusionResult:
        cfg = self.config
        t_start = time.perf_counter()
        dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
        device = hsi.device
        hsi = hsi.detach().to(dtype).clamp_min(0)
        msi = msi.detach().to(dtype).clamp_min(0)
        phys, msi, sinfo = self._sensor(hsi, msi, physics)
        phys = phys.to(device)
        B, L, h, w = hsi.shape
        l, H, W = msi.shape[1:]
        n, N = h * w, H * W
        r = phys.ratio
        I_in = cfg.pan_inner_iters if l == 1 else cfg.inner_iters
        t_prep = time.perf_counter() - t_start

        # Endmember count (shared by the batch so that the outputs stack).
        t0 = time.perf_counter()
        Yh_all = hsi.reshape(B, L, n)
        Ym_all = msi.reshape(B, l, N)
        if cfg.n_endmembers is not None:
            p = int(cfg.n_endmembers)
            if p > min(L, n):
                raise InputError(
                    f"n_endmembers={p} exceeds min(L, n)={min(L, n)} (HSI bands, LR pixels); "
                    "pass a smaller value"
                )
            vd = None
        else:
            vd = [vd_hfc(Yh_all[b].cpu().numpy(), cfg.vd_alpha) for b in range(B)]
            p = min(max(min(30, L), max(vd)), L, n)
        t_vd = time.perf_counter() - t0

        # Small products run single-threaded: oversubscribed small GEMMs are many times slower.
        ms_threads = 1 if _ms_single(N, p, l) else cfg.num_threads
        hs_threads = 1 if _hs_single(n, p, L) else cfg.num_threads
        Rt = torch.as_tensor(np.asarray(phys.spec.srf), dtype=dtype, device=device)
        deltas = _sum_to_one_deltas(msi, cfg)

        cubes, Es, As, items = [], [], [], []
        history: dict[str, list[float]] = {"cost": [], "cost_augmented": []}
        for b in range(B):
            log = _Log(self.progress)
            Yh, Ym = Yh_all[b], Ym_all[b]
            d = float(deltas[b])
            args = (Yh, Ym, d, cfg, log, hs_threads, ms_threads)
            solver: _FastSolver
            if cfg.implementation == "generic":
                solver = _GenericSolver(*args, shape=(h, w, H, W), physics=phys)
            else:
                solver = _FastSolver(*args)
            t0 = time.perf_counter()
            idx, E, Ah = _init_endmembers(Yh, p, cfg)
            t_init = time.perf_counter() - t0
            E, Ah = _hs_unmix(solver, E, Ah, cfg, I_in)
            # 4. Couple.
            Em = Rt @ E
            A = upsample(Ah.reshape(1, p, h, w), r, "bilinear").clamp_min(0).reshape(p, N)

            # 5. MS unmixing.
            def ms_unmix(Em: torch.Tensor, A: torch.Tensor, tag: str) -> tuple[torch.Tensor, torch.Tensor]:
                A = solver.ms_abundances(Em, A, I_in, f"{tag}ms_abundances")
                if l > 3:
                    Em, A = solver.ms_alternate(Em, A, I_in, f"{tag}ms_alternate")
                else:
                    A = solver.ms_abundances(Em, A, I_in, f"{tag}ms_alternate")
                return Em, A

            Em, A = ms_unmix(Em, A, "")
            rm_prev = math.sqrt(max(solver.Jm, 0.0) / (l * N))
            rh_prev = math.sqrt(max(solver.Jh, 0.0) / (L * n))
            outer_done = 0
            for t in range(1, cfg.outer_iters + 1):
                outer_done = t
                # 6(a)-(c): HS side with the current HR abundances.
                Ah = lr_abundances(A.reshape(1, p, H, W), phys).reshape(p, n)
                E = solver.hs_endmembers(E, Ah, I_in, f"outer{t}_endmembers")
                if l > 3:
                    E, Ah = solver.hs_alternate(E, Ah, I_in, f"outer{t}_alternate", e_first=False)
                else:
                    E = solver.hs_endmembers(E, Ah, I_in, f"outer{t}_alternate")
                if t >= cfg.outer_iters:
                    break
                # 6(d): redo the MS unmixing from the current A with E_m = R E.
                A_prev = A
                Em, A = ms_unmix(Rt @ E, A, f"outer{t}_")
                rm = math.sqrt(max(solver.Jm, 0.0) / (l * N))
                rh = math.sqrt(max(solver.Jh, 0.0) / (L * n))
                if (rm_prev - rm) / max(rm_prev, 1e-300) < cfg.th2 or (rh_prev - rh) / max(
                    rh_prev, 1e-300
                ) < cfg.th2:
                    A = A_prev
                    break
                rm_prev, rh_prev = rm, rh
            I_fin = I_in if cfg.final_ms_iters is None else cfg.final_ms_iters
            if I_fin > 0:
                # 7'. Re-fit A to the MSI with the final endmembers (E_m = R E fixed), so that
                # the output X = E A reproduces the MSI through the SRF.
                A = solver.ms_abundances(Rt @ E, A, I_fin, "final_ms_abundances")
            t1 = time.perf_counter()
            X = (E @ A).reshape(L, H, W)
            t_out = time.perf_counter() - t1
            cubes.append(X)
            Es.append(E)
            As.append(A.reshape(p, H, W))
            loops = [
                {
                    "name": lp.name,
                    "iterations": lp.iterations,
                    "max_iterations": lp.max_iterations,
                    "stopped": lp.stopped,
                    "seconds": lp.seconds,
                    "start": len(history["cost"]) + lp.start,
                }
                for lp in log.loops
            ]
            history["cost"].extend(log.cost)
            history["cost_augmented"].extend(log.cost_aug)
            items.append(
                {
                    "loops": loops,
                    "iterations": {lp["name"]: lp["iterations"] for lp in loops},
                    "outer_iterations": outer_done,
                    "delta": d,
                    "vca_indices": idx.tolist(),
                    "timings": {
                        "init": t_init,
                        "output": t_out,
                        **{lp["name"]: lp["seconds"] for lp in loops},
                    },
                }
            )
        info: dict[str, Any] = {
            "p": p,
            "vd": vd,
            "delta": deltas,
            "inner_iters": I_in,
            "dtype": cfg.dtype,
            "implementation": cfg.implementation,
            **sinfo,
            "iterations": items[0]["iterations"],
            "loops": items[0]["loops"],
            "items": items,
            "timings": {"preprocess": t_prep, "vd": t_vd, "total": time.perf_counter() - t_start},
        }
        stack = (lambda ts: ts[0][None]) if B == 1 else torch.stack  # no copy for one item
        return FusionResult(
            cube=stack(cubes).to(torch.float32),
            endmembers=stack(Es).to(torch.float32),
            abundances=stack(As).to(torch.float32),
            history=history,
            info=info,
        )
