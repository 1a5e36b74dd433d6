"""Global spectral stage + local spatial solve: the protocol and the built-in adapters.

Issue 9, item 2: spectral quantities are estimated once for the whole scene from the LR-HSI
(which is r² smaller than the output), and each tile solves only the spatial part, so that
tiling barely changes the result.

A method can implement the protocol itself::

    def fit_global(self, hsi, msi, physics) -> state
    def fuse_with_global(self, hsi_tile, msi_tile, physics, state) -> Tensor  # (B, L, h_t·r, w_t·r)

``hsi`` is the whole LR-HSI as a (1, L, h, w) tensor; ``msi`` is a :class:`~.store.Source`
(lazy; read windows with ``msi.window(...)`` or reduce it with :func:`msi_band_means`).
Otherwise :func:`adapter_for` supplies one:

- ``cnmf`` → :class:`CNMFGlobal`: SRF resolution, δ, p, VCA and the whole HS-side unmixing
  (``classical.md`` §3 steps 0–3) on the full LR-HSI; tiles run the MS-side stages (step 5)
  with E fixed, reusing CNMF's own solver, and output X = E·A.
- ``gsa`` → :class:`GSAGlobal`: band groups, regression weights α, injection gains and means
  from the whole LR scene; tiles only interpolate and inject detail.
- ``scalmu`` → :class:`SCALMUGlobal`: p, δ, the scene means of the context maps and the HS
  unmixing (VCA, E, A_h) on the full LR-HSI; tiles run the MS start and the K learned layers.
- anything else → :class:`GenericAdapter` (no global state; ``method.fuse`` on every tile).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch

from ..methods.base import FusionMethod
from ..physics.sensor import FusionPhysics

__all__ = [
    "CNMFGlobal",
    "GSAGlobal",
    "GenericAdapter",
    "SCALMUGlobal",
    "GlobalAdapter",
    "adapter_for",
    "msi_band_means",
]


@runtime_checkable
class GlobalAdapter(Protocol):
    """The global/local split used by :func:`~hyperfuse.tiling.fuse_tiled`."""

    def fit_global(self, hsi: torch.Tensor, msi: Any, physics: FusionPhysics | None) -> Any:
        """Estimate the scene-wide (spectral) state from the whole LR-HSI (and MSI statistics)."""

    def fuse_with_global(
        self, hsi_tile: torch.Tensor, msi_tile: torch.Tensor, physics: FusionPhysics | None, state: Any
    ) -> torch.Tensor:
        """Fuse one tile with the global state; returns (B, L, H_t, W_t) float32.

        Two-pass adapters (with ``lr_partial``, ``refine_global`` and ``finalize``, e.g.
        :class:`CNMFGlobal`) return a partial result instead (CNMF: the abundances), which
        is blended, reduced to LR to refine the global state, and turned into the output
        block by block by ``finalize``. Round-based adapters (``n_rounds``, ``round_tile``,
        ``sync``, ``finalize``, e.g. :class:`SCALMUGlobal`) do not use this method: every
        round maps each tile's carry to a new carry and an LR partial, and ``sync`` updates
        the global state from the blended LR partials before the next round.
        """


def msi_band_means(msi: Any, *, block: int = 1024, clip: bool = True) -> np.ndarray:
    """Per-band mean of an MSI source (read in row blocks; float64), clipped at 0 first.

    Parameters
    ----------
    msi : Source or Tensor of shape (1, l, H, W)
    block : int
        Rows per read.
    clip : bool
        Clip values at 0 before averaging (CNMF's preprocessing).

    Returns
    -------
    ndarray of shape (l,)
    """
    from .store import as_source

    src = as_source(msi)
    _, l, H, W = src.shape
    acc = np.zeros(l, dtype=np.float64)
    for y in range(0, H, block):
        win = src.window(slice(y, min(y + block, H)), slice(0, W)).to(torch.float64)
        if clip:
            win = win.clamp_min(0)
        acc += win.sum(dim=(0, 2, 3)).numpy()
    return acc / (H * W * src.shape[0])


class GenericAdapter:
    """No global state: every tile is fused by ``method.fuse`` on its own."""

    def __init__(self, method: FusionMethod) -> None:
        self.method = method

    def fit_global(self, hsi: torch.Tensor, msi: Any, physics: FusionPhysics | None) -> None:
        return None

    def fuse_with_global(
        self, hsi_tile: torch.Tensor, msi_tile: torch.Tensor, physics: FusionPhysics | None, state: Any
    ) -> torch.Tensor:
        return self.method.fuse(hsi_tile, msi_tile, physics).cube


class _MethodProtocol:
    """Adapter for a method that implements ``fit_global`` / ``fuse_with_global`` itself."""

    def __init__(self, method: Any) -> None:
        self.method = method

    def fit_global(self, hsi: torch.Tensor, msi: Any, physics: FusionPhysics | None) -> Any:
        return self.method.fit_global(hsi, msi, physics)

    def fuse_with_global(
        self, hsi_tile: torch.Tensor, msi_tile: torch.Tensor, physics: FusionPhysics | None, state: Any
    ) -> torch.Tensor:
        return self.method.fuse_with_global(hsi_tile, msi_tile, physics, state)  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- CNMF
@dataclass
class CNMFState:
    """Scene-wide CNMF quantities (``classical.md`` §3 steps 0–3).

    Attributes
    ----------
    physics : FusionPhysics
        Sensor with the resolved SRF (uncovered bands dropped).
    keep : list of int
        MSI bands kept.
    offset : ndarray or None
        MSI offsets subtracted when the SRF was estimated.
    delta : float
        Sum-to-one weight δ (from the whole MSI's mean).
    endmembers : Tensor (L, p)
    abundances_lr : Tensor (p, h, w)
        HS-side abundances, the initial A of every tile (upsampled).
    """

    physics: FusionPhysics
    keep: list[int]
    offset: np.ndarray | None
    delta: float
    endmembers: torch.Tensor
    abundances_lr: torch.Tensor
    info: dict[str, Any]
    ms_trajectory: list[torch.Tensor] | None = None


class CNMFGlobal:
    """CNMF with global endmembers and per-tile MS-side unmixing (E fixed).

    The HS side (VCA, A_h-only and alternating E/A_h loops) runs once on the whole LR-HSI
    with CNMF's own ``_FastSolver``; a tile couples (E_m = R E, A = up(A_h)) and runs step 5
    on its window with the same solver. The outer loop's E refinement (step 6) would need the
    whole HR abundance map and is not run: with the default I_out = 1 it only refines E.
    """

    def __init__(
        self,
        method: FusionMethod,
        *,
        ms_endmembers: Literal["global", "local", "fixed"] = "global",
        sample_pixels: int = 2**16,
    ) -> None:
        self.method = method
        self.ms_endmembers = ms_endmembers
        self.sample_pixels = sample_pixels

    def _global_ms_endmembers(
        self, src: Any, E: torch.Tensor, Ah: torch.Tensor, phys: FusionPhysics, keep: list[int],
        offset: np.ndarray | None, delta: float, Yh: torch.Tensor, I_in: int,
    ) -> list[torch.Tensor]:
        """Step 5 (A-only, then alternating E_m / A) on a strided pixel sample of the whole MSI.

        With E_m fixed the A-updates are per pixel and the E_m-update only needs the sums
        Y_m Aᵀ and A Aᵀ, so a regular sample of ≈ ``sample_pixels`` HR pixels estimates the
        scene-wide E_m of every alternation step; returns that trajectory, which the tiles
        replay in their A-updates.
        """
        from ..methods.classical.cnmf import _FastSolver, _Log
        from ..physics.functional import upsample

        cfg = self.method.config
        dt = E.dtype
        _, _, H, W = src.shape
        r = phys.ratio
        p, h, _ = Ah.shape
        st = max(1, int(math.sqrt(H * W / self.sample_pixels)))
        cols = slice(st // 2, W, st)
        ys = list(range(st // 2, H, st))
        Ym_parts, A_parts = [], []
        blk = 64
        for a0 in range(0, h, blk):
            a1 = min(a0 + blk, h)
            rows = [y for y in ys if a0 * r <= y < a1 * r]
            if not rows:
                continue
            la, lb = max(0, a0 - 2), min(h, a1 + 2)
            Aup = upsample(Ah[None, :, la:lb], r, "bilinear").clamp_min(0)[0]
            for y in rows:
                A_parts.append(Aup[:, y - la * r, cols])
                ym = src.window(slice(y, y + 1), slice(0, W))[0, keep, 0, cols].to(dt)
                if offset is not None:
                    ym = ym - torch.as_tensor(offset[keep], dtype=dt)[:, None]
                Ym_parts.append(ym.clamp_min(0))
        Ym = torch.cat(Ym_parts, dim=1)
        A = torch.cat(A_parts, dim=1).contiguous()
        solver = _FastSolver(Yh, Ym, delta, cfg, _Log(None), 1, cfg.num_threads)
        Em = torch.as_tensor(np.asarray(phys.spec.srf), dtype=dt) @ E
        A = solver.ms_abundances(Em, A, I_in, "sample_ms_abundances")
        trajectory: list[torch.Tensor] = []
        solver.ms_alternate(Em, A, I_in, "sample_ms_alternate", trajectory=trajectory)
        return trajectory

    def _dtype(self) -> torch.dtype:
        return torch.float64 if self.method.config.dtype == "float64" else torch.float32

    def fit_global(self, hsi: torch.Tensor, msi: Any, physics: FusionPhysics | None) -> CNMFState:
        from ..errors import InputError
        from ..methods.classical.cnmf import (
            _FastSolver,
            _hs_single,
            _hs_unmix,
            _init_endmembers,
            _Log,
            _sum_to_one_deltas,
        )
        from ..physics.sensor import make_sensor
        from ..unmix import vd_hfc
        from .store import as_source

        cfg = self.method.config
        dt = self._dtype()
        src = as_source(msi)
        if hsi.shape[0] != 1:
            raise InputError("tiled CNMF fuses one scene at a time (batch size 1)")
        hsi = hsi.detach().to(dt).clamp_min(0)
        if physics is None:
            physics = FusionPhysics(make_sensor(src.shape[-1] // hsi.shape[-1]))
        needs_full = physics.spectral is None or cfg.estimate_srf
        if needs_full:  # NNLS SRF estimation needs the whole MSI (l bands only)
            msi_full = src.window(slice(0, src.shape[2]), slice(0, src.shape[3])).to(dt).clamp_min(0)
        else:  # only the band count matters for a known SRF
            msi_full = hsi.new_zeros((1, src.shape[1], 1, 1))
        phys, _, sinfo = self.method._sensor(hsi, msi_full, physics)  # type: ignore[attr-defined]
        del msi_full
        dropped = set(sinfo.get("dropped_bands", []))
        keep = [k for k in range(src.shape[1]) if k not in dropped]
        offset = np.asarray(sinfo["srf_offset"]) if sinfo.get("srf_estimated") else None
        means = msi_band_means(src)
        if offset is not None:
            # mean(max(y - o, 0)) needs a pass; approximate with the shifted mean (clipped).
            means = np.maximum(means - offset, 0.0)
        means = means[keep]
        delta = _sum_to_one_deltas(torch.as_tensor(means, dtype=torch.float64).reshape(1, -1, 1, 1), cfg)[0]
        _, L, h, w = hsi.shape
        n = h * w
        Yh = hsi.reshape(L, n)
        if cfg.n_endmembers is not None:
            p = int(cfg.n_endmembers)
            vd = None
        else:
            vd = vd_hfc(Yh.cpu().numpy(), cfg.vd_alpha)
            p = min(max(min(30, L), vd), L, n)
        l = len(keep)
        I_in = cfg.pan_inner_iters if l == 1 else cfg.inner_iters
        hs_threads = 1 if _hs_single(n, p, L) else cfg.num_threads
        log = _Log(None)
        solver = _FastSolver(Yh, Yh, delta, cfg, log, hs_threads, cfg.num_threads)
        _, E, Ah = _init_endmembers(Yh, p, cfg)
        E, Ah = _hs_unmix(solver, E, Ah, cfg, I_in)
        info = {"p": p, "vd": vd, "delta": delta, "inner_iters": I_in, **sinfo,
                "iterations": {lp.name: lp.iterations for lp in log.loops}}
        traj = None
        if l > 3 and self.ms_endmembers == "global":
            traj = self._global_ms_endmembers(
                src, E, Ah.reshape(p, h, w), phys, keep, offset, delta, Yh, I_in
            )
        return CNMFState(phys, keep, offset, delta, E, Ah.reshape(p, h, w), info, traj)

    def tile_state(self, state: CNMFState, lr: tuple[slice, slice]) -> CNMFState:
        """The state restricted to one tile's LR window (its initial abundances)."""
        return dataclasses.replace(state, abundances_lr=state.abundances_lr[:, lr[0], lr[1]])

    def fuse_with_global(
        self, hsi_tile: torch.Tensor, msi_tile: torch.Tensor, physics: FusionPhysics | None, state: CNMFState
    ) -> torch.Tensor:
        from ..methods.classical.cnmf import _FastSolver, _Log, _ms_single
        from ..physics.functional import upsample

        cfg = self.method.config
        dt = self._dtype()
        phys = state.physics
        r = phys.ratio
        msi_tile = msi_tile.detach().to(dt)[:, state.keep]
        if state.offset is not None:
            off = torch.as_tensor(state.offset[state.keep], dtype=dt).reshape(1, -1, 1, 1)
            msi_tile = msi_tile - off
        msi_tile = msi_tile.clamp_min(0)
        _, l, H, W = msi_tile.shape
        h, w = H // r, W // r
        E = state.endmembers
        p = E.shape[1]
        N = H * W
        Ah = state.abundances_lr
        I_in = cfg.pan_inner_iters if l == 1 else cfg.inner_iters
        ms_threads = 1 if _ms_single(N, p, l) else cfg.num_threads
        Yh = hsi_tile.detach().to(dt).clamp_min(0).reshape(hsi_tile.shape[1], -1)
        solver = _FastSolver(Yh, msi_tile.reshape(l, N), state.delta, cfg, _Log(None), 1, ms_threads)
        Rt = torch.as_tensor(np.asarray(phys.spec.srf), dtype=dt)
        Em = Rt @ E
        A = upsample(Ah.reshape(1, p, h, w), r, "bilinear").clamp_min(0).reshape(p, N)
        A = solver.ms_abundances(Em, A, I_in, "ms_abundances")
        if l > 3 and self.ms_endmembers == "local":
            Em, A = solver.ms_alternate(Em, A, I_in, "ms_alternate")
        elif state.ms_trajectory is not None:  # l > 3, "global": the scene-wide step 5(b)
            A = solver.ms_replay(state.ms_trajectory, A)
        else:  # l <= 3 (E_m = R E throughout, as untiled) or "fixed"
            A = solver.ms_abundances(Em, A, I_in, "ms_alternate")
        return A.reshape(1, p, H, W).to(torch.float32)

    def lr_partial(self, partial: torch.Tensor, state: CNMFState) -> torch.Tensor:
        """A_h = A D of a tile's abundances (``classical.md`` §3 step 6a)."""
        from ..methods.unrolled.nmf import lr_abundances

        return lr_abundances(partial.to(self._dtype()), state.physics).to(torch.float32)

    def refine_global(self, state: CNMFState, hsi: torch.Tensor, lr_partial: torch.Tensor) -> CNMFState:
        """Step 6(b)-(c) on the whole scene: refine E from the blended A_h = A D."""
        from ..methods.classical.cnmf import _FastSolver, _hs_single, _Log

        cfg = self.method.config
        dt = self._dtype()
        Yh = hsi.detach().to(dt).clamp_min(0)
        L = Yh.shape[1]
        Yh = Yh.reshape(L, -1)
        p = state.endmembers.shape[1]
        Ah = lr_partial.to(dt).reshape(p, -1)
        n = Ah.shape[1]
        l = len(state.keep)
        I_in = cfg.pan_inner_iters if l == 1 else cfg.inner_iters
        hs_threads = 1 if _hs_single(n, p, L) else cfg.num_threads
        solver = _FastSolver(Yh, Yh, state.delta, cfg, _Log(None), hs_threads, cfg.num_threads)
        E = solver.hs_endmembers(state.endmembers, Ah, I_in, "outer1_endmembers")
        if l > 3:
            E, Ah = solver.hs_alternate(E, Ah, I_in, "outer1_alternate", e_first=False)
        else:
            E = solver.hs_endmembers(E, Ah, I_in, "outer1_alternate")
        return dataclasses.replace(state, endmembers=E)

    def finalize(self, partial: torch.Tensor, state: CNMFState) -> torch.Tensor:
        """X = E A on a block of blended abundances (B, p, h, w) -> (B, L, h, w)."""
        E = state.endmembers.to(torch.float32)
        return torch.einsum("lp,bphw->blhw", E, partial.to(torch.float32))


# ----------------------------------------------------------------------------- SCALMU
@dataclass
class SCALMUState:
    """Scene-wide SCALMU quantities: sensor, kept bands, δ, E, A_h and the layers (which carry δ and
    the scene means of their context maps)."""

    physics: FusionPhysics
    keep: list[int]
    delta: float
    endmembers: torch.Tensor
    abundances_lr: torch.Tensor
    net: Any
    prior_scale: dict[str, Any] | None = None


class SCALMUGlobal:
    """SCALMU tiled in synchronised rounds: tiles update abundances, the scene updates E.

    ``fit_global`` chooses p, δ (from the whole MSI's mean), the scene means of the context
    maps, the prior scale when it is ``"auto"`` (chosen on the central window, read from the MSI,
    as untiled SCALMU does), and runs VCA plus the HS unmixing of
    :func:`~hyperfuse.methods.unrolled.scalmu.scalmu_init` on the full LR-HSI. Round k
    (one per learned layer) runs the layer's abundance steps (A against the MSI, the
    coupling, A_h against the HSI; all local in space) on every tile, carrying its A to the
    next round; ``sync`` blends the tiles' A_h into the scene's and takes the layer's E step
    on the whole LR-HSI, exactly as untiled SCALMU does. The output is E·A.
    """

    def __init__(self, method: FusionMethod) -> None:
        self.method = method

    def fit_global(self, hsi: torch.Tensor, msi: Any, physics: FusionPhysics | None) -> SCALMUState:
        import copy

        from ..errors import InputError
        from ..methods.classical.cnmf import CNMFConfig, _FastSolver, _Log
        from ..methods.unrolled.nmf import sum_to_one_delta
        from ..methods.unrolled.scalmu import (
            _choose_p,
            auto_window,
            choose_prior_scale,
            covered_physics,
            hs_unmixing,
        )
        from .store import as_source

        method: Any = self.method
        cfg = method.config
        src = as_source(msi)
        if hsi.shape[0] != 1:
            raise InputError("tiled SCALMU fuses one scene at a time (batch size 1)")
        if cfg.adapt:
            raise InputError("SCALMU --adapt fine-tunes on the whole HR pair and cannot run tiled; "
                             "drop --adapt or --tile")
        if cfg.safeguard:
            raise InputError("SCALMU safeguard compares whole-scene data misfits per layer and cannot run "
                             "tiled yet; drop safeguard or --tile")
        phys, keep = covered_physics(physics)
        hsi = hsi.detach().float().clamp_min(0)
        _, L, h, w = hsi.shape
        method._check_family(L, phys.ratio)
        band_means = msi_band_means(src)[keep]
        mean_m = float(band_means.mean())
        # δ of the whole MSI from its band means (their mean is the MSI mean: equal band sizes)
        delta = float(sum_to_one_delta(torch.as_tensor(band_means, dtype=torch.float64).reshape(1, -1, 1, 1)))
        p = _choose_p(hsi, cfg)
        Yh = hsi[0].reshape(L, h * w)
        solver = _FastSolver(Yh, Yh, delta, CNMFConfig(eps=cfg.eps, theta=-math.inf), _Log(None), 1, None)
        with torch.no_grad():
            E, Ah = hs_unmixing(solver, Yh, p, cfg.init_hs_iters, cfg.vca_seed, cfg.vca_options())
        auto = None
        if method.chooses_prior_scale:
            lr, hr = auto_window(h, w, phys.ratio)
            msi_c = src.window(*hr)[:, torch.as_tensor(keep)].clamp_min(0)
            alpha, auto = choose_prior_scale(method, hsi[..., lr[0], lr[1]], msi_c, phys, p)
            method.set_prior_scale(alpha)
        net = copy.deepcopy(method.net)
        means = (mean_m, float(hsi.mean()))
        for lay in net.layers:
            lay.delta = delta
            lay.scene_means = means
            lay.chunk = 8
        return SCALMUState(phys, keep.tolist(), delta, E, Ah.reshape(p, h, w), net, auto)

    def n_rounds(self, state: SCALMUState) -> int:
        """One round per learned layer."""
        return int(state.net.arch.n_layers)

    def tile_state(self, state: SCALMUState, lr: tuple[slice, slice]) -> SCALMUState:
        """The state restricted to one tile's LR window."""
        return dataclasses.replace(state, abundances_lr=state.abundances_lr[:, lr[0], lr[1]])

    def round_tile(
        self, k: int, hsi_tile: torch.Tensor, msi_tile: torch.Tensor, carry: torch.Tensor | None,
        state: SCALMUState,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer k's abundance steps on a tile: returns (A (1, p, H, W), A_h (1, p, h, w))."""
        from ..methods.unrolled.nmf import NMFState, ms_endmembers

        phys = state.physics
        hsi_tile = hsi_tile.detach().float().clamp_min(0)
        msi_tile = msi_tile.detach().float()[:, state.keep].clamp_min(0)
        E = state.endmembers
        p = E.shape[1]
        _, l, H, W = msi_tile.shape
        if carry is None:  # round 0 starts from the MS start of the initialisation
            from ..methods.classical.cnmf import CNMFConfig, _FastSolver, _Log
            from ..methods.unrolled.scalmu import ms_start

            cfg = self.method.config
            Yh = hsi_tile[0].reshape(hsi_tile.shape[1], -1)
            solver = _FastSolver(Yh, msi_tile[0].reshape(l, H * W), state.delta,
                                 CNMFConfig(eps=cfg.eps, theta=-math.inf), _Log(None), 1, None)
            Rt = phys.spectral.srf.to(E.dtype)  # type: ignore[union-attr]
            carry = ms_start(solver, Rt @ E, state.abundances_lr, phys.ratio, cfg.init_ms_iters).reshape(1, p, H, W)
        nmf = NMFState(E[None], carry.to(E.dtype), state.abundances_lr[None], ms_endmembers(E[None], phys))
        nmf = state.net.layer(k).update_abundances(nmf, hsi_tile, msi_tile, phys)
        return nmf.abundances, nmf.abundances_lr  # type: ignore[return-value]

    def sync(self, k: int, state: SCALMUState, hsi: torch.Tensor, lr_blended: torch.Tensor) -> SCALMUState:
        """Layer k's E step on the whole LR-HSI with the blended A_h (the E step does not read A)."""
        from ..methods.unrolled.nmf import NMFState

        Ah = lr_blended.to(state.endmembers.dtype)
        nmf = NMFState(state.endmembers[None], Ah, Ah, None)
        nmf = state.net.layer(k).update_endmembers(nmf, hsi.detach().float().clamp_min(0), None, state.physics)
        return dataclasses.replace(state, endmembers=nmf.endmembers[0], abundances_lr=Ah[0])

    def finalize(self, partial: torch.Tensor, state: SCALMUState) -> torch.Tensor:
        """X = E A on a block of blended abundances (B, p, h, w) -> (B, L, h, w)."""
        return torch.einsum("lp,bphw->blhw", state.endmembers.float(), partial.float())


# ----------------------------------------------------------------------------- GSA
@dataclass
class GSAState:
    """Scene-wide GSA quantities: groups, α, gains, HS means and MS means."""

    groups: list[dict[str, Any]]
    centre: tuple[float, float]
    physics: FusionPhysics


class GSAGlobal:
    """GSA with scene-wide regression weights and gains (LR statistics) and local injection.

    Groups and α are exactly those of untiled GSA (LR fits). The gains
    g_j = cov(I⁰, H̃⁰_j)/var(I⁰) and the means are taken at LR (untiled GSA takes them on the
    bicubic-upsampled bands; the ratio of covariances is nearly scale-invariant).
    """

    def __init__(self, method: FusionMethod) -> None:
        self.method = method

    def fit_global(self, hsi: torch.Tensor, msi: Any, physics: FusionPhysics | None) -> GSAState:
        from ..methods.classical.gsa import (
            _centre,
            _centred_cols,
            _min_norm_lstsq,
            _rtol,
            _warn_uncovered,
            correlation_groups,
        )
        from .store import as_source

        src = as_source(msi)
        _warn_uncovered(physics, "GSA", stacklevel=6)
        dt = torch.float64
        hsi = hsi.detach().to(dt)
        _, L, h, w = hsi.shape
        if physics is None:
            from ..physics.sensor import make_sensor

            physics = FusionPhysics(make_sensor(src.shape[-1] // w))
        phys = physics
        r = phys.ratio
        # LR MSI Y_m D, computed per row strip of LR rows with a halo (D is local).
        ym_lr = _degrade_source(src, phys, dt)
        p_means = msi_band_means(src, clip=False)
        l = ym_lr.shape[1]
        g, _cc = correlation_groups(hsi[0].reshape(L, -1), ym_lr[0].reshape(l, -1))
        ones_lr = phys.spatial.A(hsi.new_ones((1, 1, h * r, w * r)))[0, 0]
        groups = []
        for k in range(l):
            members = np.flatnonzero(g == k)
            if members.size == 0:
                continue
            yh = hsi[0, torch.as_tensor(members)]
            mu = yh.mean(dim=(1, 2))
            h0 = _centred_cols(yh.reshape(members.size, -1))
            P0_lr = ym_lr[0, k] - p_means[k] * ones_lr
            M = torch.cat([h0.T, h0.new_ones(h0.shape[1], 1)], dim=1)
            coef = _min_norm_lstsq(M, P0_lr.reshape(-1), _rtol(dt))
            alpha = coef[:-1]
            I0 = alpha @ h0
            I0c = I0 - I0.mean()
            cov = (h0 @ I0c) / I0c.numel()
            var_I = float((alpha * cov).sum())
            gains = cov / var_I if var_I > 1e-300 else torch.zeros_like(alpha)
            groups.append({"k": k, "members": members.tolist(), "alpha": alpha, "mu": mu,
                           "gains": gains, "p_mean": float(p_means[k])})
        return GSAState(groups, _centre(phys), phys)

    def fuse_with_global(
        self, hsi_tile: torch.Tensor, msi_tile: torch.Tensor, physics: FusionPhysics | None, state: GSAState
    ) -> torch.Tensor:
        from ..physics.interpolate import up_bicubic

        dt = torch.float64 if self.method.config.dtype == "float64" else torch.float32
        r = state.physics.ratio
        B, L = hsi_tile.shape[:2]
        H, W = msi_tile.shape[-2:]
        out = hsi_tile.new_empty((B, L, H, W), dtype=dt)
        for gr in state.groups:
            idx = torch.as_tensor(gr["members"])
            for b in range(B):
                Ht = up_bicubic(hsi_tile[b, idx].to(dt), r, offset=state.centre)
                H0 = Ht - gr["mu"].to(dt)[:, None, None]
                I0 = torch.einsum("m,mhw->hw", gr["alpha"].to(dt), H0)
                P0 = msi_tile[b, gr["k"]].to(dt) - gr["p_mean"]
                out[b, idx] = Ht + gr["gains"].to(dt)[:, None, None] * (P0 - I0)[None]
        if self.method.config.clip:
            out = out.clamp_min(0)
        return out.to(torch.float32)


def _degrade_source(src: Any, phys: FusionPhysics, dt: torch.dtype, block: int = 512) -> torch.Tensor:
    """Y_m D of a whole MSI source, in row strips with a PSF-sized halo (LR rows exact)."""
    _, l, H, W = src.shape
    r = phys.ratio
    K = int(max(phys.spatial.psf.shape))
    halo = int(math.ceil((K + r) / r)) * r
    block = max(r, (block // r) * r)
    parts = []
    for y in range(0, H, block):
        y1 = min(y + block, H)
        a, b = max(0, y - halo), min(H, y1 + halo)
        win = src.window(slice(a, b), slice(0, W)).to(dt)
        lr = phys.spatial.A(win)
        parts.append(lr[:, :, (y - a) // r : (y - a) // r + (y1 - y) // r])
    return torch.cat(parts, dim=2)


def adapter_for(method: Any) -> GlobalAdapter:
    """The global/local adapter of a method (its own protocol, a built-in one, or generic).

    Examples
    --------
    >>> from hyperfuse.methods import get_method
    >>> type(adapter_for(get_method("cnmf"))).__name__, type(adapter_for(get_method("bicubic"))).__name__
    ('CNMFGlobal', 'GenericAdapter')
    """
    if hasattr(method, "fit_global") and hasattr(method, "fuse_with_global"):
        return _MethodProtocol(method)
    name = getattr(method, "name", "")
    if name == "cnmf":
        return CNMFGlobal(method)
    if name == "gsa":
        return GSAGlobal(method)
    if name == "scalmu":
        return SCALMUGlobal(method)
    return GenericAdapter(method)
