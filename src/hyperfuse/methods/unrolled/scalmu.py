"""SCALMU — coupled adaptive learned multiplicative updates (``scalmu.md``).

SCALMU starts from CNMF's deterministic initialisation (VCA endmembers, HS unmixing, MS
unmixing of the upsampled LR abundances) and runs K learned *coupled passes*. Layer k:

1. HR abundances (MS side), through :meth:`MultiplicativeUpdate.numerator` /
   :meth:`denominator` plus a bounded learned prior term and an element-wise step matrix::

       Φ = β tanh(f_k) ⊙ Dn,  N' = N + relu(−Φ),  Dn' = Dn + relu(Φ)
       A ← A ⊙ (N' ⊘ Dn') ^ M_k,   M_k = s_max ^ tanh(g_k) ∈ (1/s_max, s_max)

   f_k, g_k are the two outputs of one *endmember-wise* network applied to every
   abundance map a_j with shared context maps (mean abundance, MSI luminance, MSI and
   upsampled HSI residuals), so the same weights serve any L, l, r and p.
2. Coupling: A_h ← A D + c_k (A_h − A D), c_k = sigmoid(·) ∈ (0, 1).
3. LR abundances against the HSI with a learned scalar exponent μ_k, then endmembers
   E ← E ⊙ (Y_h A_hᵀ ⊘ E A_h A_hᵀ)^m_k, and E_m ← R E.

With the learned parts neutral (f = g = 0, μ = m = 1, c = 0) a layer is exactly one
plain Lee–Seung coupled pass (the CNMF rule, same :class:`MultiplicativeUpdate` code).

Examples
--------
>>> import numpy as np
>>> from hyperfuse.physics.sensor import make_sensor
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.rand(1, 6, 16, 16, generator=g)
>>> s = make_sensor(4, srf=np.full((2, 6), 1 / 6))
>>> from hyperfuse.physics.sensor import FusionPhysics
>>> ph = FusionPhysics(s)
>>> m = SCALMU(SCALMUConfig(weights="neutral", n_endmembers=3, n_layers=2, init_hs_iters=5, init_ms_iters=5))
>>> out = m.fuse(ph.spatial(x), ph.spectral(x), s)
>>> tuple(out.cube.shape), tuple(out.abundances.shape)
((1, 6, 16, 16), (1, 3, 16, 16))
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..._validation import check_choice
from ...errors import InputError, SRFError
from ...physics.functional import upsample
from ...physics.sensor import FusionPhysics
from ...types import FusionResult
from ...unmix import vd_hfc
from ..base import FusionMethod
from ..registry import register_method
from .nmf import (
    MultiplicativeUpdate,
    NMFState,
    hs_term,
    lr_abundances,
    ms_endmembers,
    sum_to_one_delta,
)

__all__ = [
    "SCALMUConfig",
    "SCALMUArch",
    "SCALMULayer",
    "SCALMUNet",
    "SCALMU",
    "ProgressFn",
    "scalmu_init",
    "coupled_misfit",
    "train_scalmu",
]

ProgressFn = Callable[[str, int, int, float], None]
"""``progress(stage, i, total, cost)``: stage ``"layer"`` or ``"adapt"``."""


@dataclass(frozen=True)
class SCALMUArch:
    """Architecture of the learned layers (stored in the weights metadata).

    Parameters
    ----------
    n_layers : int
        K, learned coupled passes.
    hidden : int
        Width of the endmember-wise network.
    share_weights : bool
        One layer applied K times.
    use_prior : bool
        Learned prior term Φ on/off.
    use_step : bool
        Learned element-wise step matrix M on/off.
    step_max : float
        M ∈ (1/step_max, step_max); also bounds μ_k and m_k.
    prior_bound : float
        β: |Φ| ≤ β · Dn.
    """

    n_layers: int = 8
    hidden: int = 8
    share_weights: bool = False
    use_prior: bool = True
    use_step: bool = True
    step_max: float = 3.0
    prior_bound: float = 0.5


@dataclass(frozen=True)
class SCALMUConfig:
    """Options of :class:`SCALMU`.

    Parameters
    ----------
    weights : str, optional
        ``None``: the shipped ``scalmu.safetensors``; a path to a ``.safetensors`` file;
        ``"untrained"`` (fresh initialisation, for training); ``"neutral"`` (learned parts
        neutral: plain CNMF coupled passes from the same initialisation).
    n_endmembers : int, optional
        p. Default as CNMF: max(min(30, L), VD_HFC), capped at min(L, n).
    n_layers, hidden, share_weights, use_prior, use_step, step_max, prior_bound
        Architecture (:class:`SCALMUArch`) used for ``"untrained"``/``"neutral"``; a weights
        file brings its own.
    init_hs_iters : int
        I of the HS unmixing of the initialisation (3 I abundance-only then I alternating).
    init_ms_iters : int
        Plain MU steps on the MSI after upsampling the LR abundances.
    vd_alpha, vca_seed, vca_draw, vca_snr_rule, vca_endmembers, eps
        As CNMF (:class:`~hyperfuse.methods.classical.cnmf.CNMFConfig`); the shipped weights
        were trained with the defaults.
    adapt : bool
        Fine-tune on dead-leaves scenes built from the input scene before fusing.
    adapt_budget_s : float
        Wall-time budget of the adaptation (s).
    adapt_steps : int
        Maximum adaptation steps.
    adapt_lr : float
        Adam learning rate of the adaptation.
    adapt_data : {"dead_leaves", "held_out_bands"}
        What the adaptation trains on: dead-leaves scenes built from the scene's unmixing and
        sensor (``scalmu.md`` §5), or the scene itself by MSI band cross-validation (predict
        each held-out MSI band from the fusion without it; :func:`held_out_loss`).
    adapt_select : {"synthetic", "held_out_bands"}
        Which adaptation step is kept (step 0, the unadapted net, included): the best on
        held-out scene-derived dead leaves, or (default, selected on the validation data:
        ``docs/scalmu.md`` §4.9) on the scene's held-out MSI bands (:func:`held_out_snr`).
    prior_scale : float or "auto"
        Multiplies the learned prior's bound β at inference (0 = prior off, 1 = as trained);
        applies to any weights, including a loaded file. ``"auto"`` (default, selected on the
        validation data: ``docs/scalmu.md`` §4.8) picks it per scene from
        :data:`AUTO_PRIOR_SCALES` by MSI band cross-validation (:func:`choose_prior_scale`; no
        ground truth; needs ≥ 2 covered MSI bands, else 1; skipped when there is no prior:
        ``"neutral"`` weights or ``use_prior`` off).
    safeguard : bool
        Keep a layer's learned update only if the coupled data misfit
        ‖Y_m − E_m A‖²/‖Y_m‖² + ‖Y_h − E A D‖²/‖Y_h‖² is no larger than after a plain CNMF
        pass from the same state; otherwise take the plain pass (a safeguarded learned
        optimiser). Off by default: on held-out synthetic scenes it keeps only ~1/6 of the
        learned gain (``docs/scalmu.md`` §4). About a third slower (one plain pass and two
        misfits per layer).
    num_threads : int, optional
        Torch threads during the fusion (restored afterwards).
    """

    weights: str | None = None
    n_endmembers: int | None = None
    n_layers: int = 8
    hidden: int = 8
    share_weights: bool = False
    use_prior: bool = True
    use_step: bool = True
    step_max: float = 3.0
    prior_bound: float = 0.5
    init_hs_iters: int = 60
    init_ms_iters: int = 20
    vd_alpha: float = 0.05
    vca_seed: int = 0
    vca_draw: Literal["normal", "uniform"] = "normal"
    vca_snr_rule: Literal["paper", "reference"] = "paper"
    vca_endmembers: Literal["pixels", "projected"] = "pixels"
    eps: float = 1e-12
    adapt: bool = False
    adapt_budget_s: float = 150.0
    adapt_steps: int = 150
    adapt_lr: float = 5e-4
    adapt_data: Literal["dead_leaves", "held_out_bands"] = "dead_leaves"
    adapt_select: Literal["synthetic", "held_out_bands"] = "held_out_bands"
    prior_scale: float | Literal["auto"] = "auto"
    safeguard: bool = False
    num_threads: int | None = None

    def vca_options(self) -> dict[str, str]:
        """The VCA options, as CNMFConfig fields."""
        return dict(vca_draw=self.vca_draw, vca_snr_rule=self.vca_snr_rule, vca_endmembers=self.vca_endmembers)

    def arch(self) -> SCALMUArch:
        """The architecture fields as a :class:`SCALMUArch`."""
        return SCALMUArch(
            self.n_layers, self.hidden, self.share_weights, self.use_prior, self.use_step,
            self.step_max, self.prior_bound,
        )


# ---------------------------------------------------------------------- layer
class _MapNet(nn.Module):
    """Endmember-wise net: per map [a_j, log-ratio_j] + shared context (4) -> (f, g).

    1×1 conv (split into a per-map and a shared context part) → ReLU → depthwise 3×3 →
    ReLU → 1×1 to two outputs. A few hundred parameters; nothing depends on L, l, r or p.
    """

    N_MAP = 2
    N_CTX = 4

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.w_map = nn.Parameter(torch.randn(hidden, self.N_MAP) * 0.5)
        self.w_ctx = nn.Parameter(torch.randn(hidden, self.N_CTX) * 0.3)
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, padding_mode="replicate")
        self.out = nn.Conv2d(hidden, 2, 1)
        with torch.no_grad():
            self.out.weight.normal_(0.0, 1e-2)  # small, not zero: Φ's split needs a gradient
            self.out.bias.zero_()

    def context_features(self, ctx: torch.Tensor) -> torch.Tensor:
        """The first layer's shared part: ctx (B, 4, H, W) -> (B, H, W, hidden), bias included."""
        return torch.einsum("bchw,kc->bhwk", ctx, self.w_ctx.to(ctx.dtype)) + self.b1.to(ctx.dtype)

    def forward(self, a: torch.Tensor, rho: torch.Tensor, hc: torch.Tensor) -> torch.Tensor:
        """a, rho (B, p, H, W) (abundances, log-ratios), hc = :meth:`context_features`
        (B, H, W, hidden) -> (B, p, 2, H, W).

        Computed channels-last (hidden channels innermost; the output has channels-last
        strides): oneDNN's 1×1 and depthwise convs are several times faster on NHWC.
        Replicate padding commutes with the per-pixel first layer, so the 2-channel input
        is padded instead of the hidden maps. Equals the module composition
        1×1 → ReLU → ``dw`` (replicate) → ReLU → ``out``.
        """
        B, p, H, W = a.shape
        dt = a.dtype
        k = self.b1.shape[0]
        x = a.new_empty(B, p, H + 2, W + 2, 2)
        x[:, :, 1:-1, 1:-1, 0] = a
        x[:, :, 1:-1, 1:-1, 1] = rho
        _replicate_border(x)
        hc = torch.cat([hc[:, :1], hc, hc[:, -1:]], dim=1)
        hc = torch.cat([hc[:, :, :1], hc, hc[:, :, -1:]], dim=2)  # (B, H+2, W+2, k)
        x = x.reshape(B * p, H + 2, W + 2, 2).permute(0, 3, 1, 2)
        h = F.conv2d(x, self.w_map.to(dt).reshape(k, 2, 1, 1))  # channels-last (B p, k, H+2, W+2)
        h.permute(0, 2, 3, 1).reshape(B, p, H + 2, W + 2, k).add_(hc[:, None]).relu_()
        bias = None if self.dw.bias is None else self.dw.bias.to(dt)
        h = F.conv2d(h, self.dw.weight.to(dt), bias, groups=k).relu_()
        return self.out(h).reshape(B, p, 2, H, W)


def _replicate_border(x: torch.Tensor) -> None:
    """Fill the one-pixel frame of x (..., H+2, W+2, C) from its inner neighbours, in place."""
    x[:, :, 0, 1:-1] = x[:, :, 1, 1:-1]
    x[:, :, -1, 1:-1] = x[:, :, -2, 1:-1]
    x[:, :, :, 0] = x[:, :, :, 1]
    x[:, :, :, -1] = x[:, :, :, -2]


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], x.shape[1], -1)


def _bmean(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).mean(dim=1).reshape(-1, *([1] * (x.dim() - 1)))


class SCALMULayer(MultiplicativeUpdate):
    """One learned coupled pass (module docstring). Targets: A, then A_h, then E.

    Parameters
    ----------
    arch : SCALMUArch
    eps : float
    """

    def __init__(self, arch: SCALMUArch, *, eps: float = 1e-12) -> None:
        super().__init__(("A", "A_h", "E"), eps=eps)
        self.arch = arch
        self.net = _MapNet(arch.hidden)
        self.log_s = math.log(arch.step_max)
        self.mu = nn.Parameter(torch.zeros(()))  # μ_k = s^tanh(mu)
        self.m = nn.Parameter(torch.zeros(()))  # m_k = s^tanh(m)
        self.c = nn.Parameter(torch.full((), -3.0))  # c_k = sigmoid(c)
        self.chunk: int | None = None  # endmembers per net call without gradients
        self.rows = 32  # rows per net call without gradients
        # (mean MSI, mean HSI) of the whole scene; None: of the input (tiles pass the scene's).
        self.scene_means: tuple[float, float] | None = None

    def neutralise(self) -> None:
        """Set every learned part to its neutral value (a plain CNMF pass)."""
        with torch.no_grad():
            self.net.out.weight.zero_()
            self.net.out.bias.zero_()
            self.mu.zero_()
            self.m.zero_()
            self.c.fill_(-1e4)

    def _exp(self, z: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.log_s * torch.tanh(z))

    def _pow_step(self, x: torch.Tensor, num: torch.Tensor, den: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        ratio = (num / den.clamp_min(self.eps)).clamp_min(1e-30)
        return x * torch.exp(e * torch.log(ratio))  # = ratio**e; a tensor-exponent pow is 2x slower

    def _learned_parts(
        self, A: torch.Tensor, num: torch.Tensor, den: torch.Tensor, ctx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The net's two output maps (prior f, step g), each (B, p, H, W)."""
        B, p, H, W = A.shape
        rho = torch.log((num.clamp_min(1e-30)) / den.clamp_min(1e-30)).clamp(-4.0, 4.0).reshape(B, p, H, W)
        if self.chunk is None or torch.is_grad_enabled() or p * H * W <= 2**18:
            out = self.net(A, rho, self.net.context_features(ctx))
            return out[:, :, 0], out[:, :, 1]
        # Inference on large images: tiles of endmembers × rows (1-row halo for the 3×3)
        # keep the intermediates cache-sized; the result is identical. f and g are written
        # to separate contiguous maps (element-wise ops on strided views are ~1.5x slower).
        f, g = A.new_empty(B, p, H, W), A.new_empty(B, p, H, W)
        hc = self.net.context_features(ctx)
        rows = self.rows
        for i in range(0, p, self.chunk):
            for y0 in range(0, H, rows):
                a, b = max(y0 - 1, 0), min(y0 + rows + 1, H)
                o = self.net(A[:, i : i + self.chunk, a:b], rho[:, i : i + self.chunk, a:b], hc[:, a:b])
                f[:, i : i + self.chunk, y0 : y0 + rows] = o[:, :, 0, y0 - a : y0 - a + rows]
                g[:, i : i + self.chunk, y0 : y0 + rows] = o[:, :, 1, y0 - a : y0 - a + rows]
        return f, g

    def context(
        self, state: NMFState, hsi: torch.Tensor, msi: torch.Tensor, physics: Any
    ) -> torch.Tensor:
        """Shared context maps (B, 4, H, W): mean abundance, luminance, MS and HS residuals."""
        A, E, Em, Ah = state.abundances, state.endmembers, state.ms_endmembers, state.abundances_lr
        B, p, H, W = A.shape
        abar = A.mean(dim=1, keepdim=True)
        lum = msi.mean(dim=1, keepdim=True)
        means = self.scene_means
        mu_m = _bmean(lum).clamp_min(1e-12) if means is None else max(means[0], 1e-12)
        res_m = (_flat(msi) - torch.bmm(Em, _flat(A))).pow(2).mean(dim=1).sqrt().reshape(B, 1, H, W)  # type: ignore[arg-type]
        res_h = (_flat(hsi) - torch.bmm(E, _flat(Ah))).pow(2).mean(dim=1).sqrt()  # type: ignore[arg-type]
        res_h = res_h.reshape(B, 1, *hsi.shape[-2:])
        mu_h = _bmean(hsi.mean(dim=1, keepdim=True)).clamp_min(1e-12) if means is None else max(means[1], 1e-12)
        r = H // hsi.shape[-2]
        res_h = upsample(res_h, r, "bilinear") if r > 1 else res_h
        return torch.cat([abar, lum / mu_m - 1.0, 10.0 * res_m / mu_m, 10.0 * res_h / mu_h], dim=1)

    def forward(
        self, state: NMFState, hsi: torch.Tensor, msi: torch.Tensor, physics: Any
    ) -> NMFState:
        state = self.update_abundances(state, hsi, msi, physics)
        return self.update_endmembers(state, hsi, msi, physics)

    def update_abundances(
        self, state: NMFState, hsi: torch.Tensor, msi: torch.Tensor, physics: Any
    ) -> NMFState:
        """Steps 1-3a: A against the MSI, the coupling, A_h against the HSI (local in space)."""
        hs, ms = self.terms(hsi, msi)
        # 1. HR abundances against the MSI.
        A = state.abundances
        B, p, H, W = A.shape
        num = self.numerator("A", state, ms)
        den = self.denominator("A", state, ms)
        a = self.arch
        if a.use_prior or a.use_step:
            ctx = self.context(state, hsi, msi, physics)
            f, g = self._learned_parts(A, num, den, ctx)
            if a.use_prior:
                phi = (a.prior_bound * torch.tanh(f)).reshape(B, p, -1) * den
                num = num + torch.relu(-phi)
                den = den + torch.relu(phi)
            if a.use_step:
                Mk = self._exp(g).reshape(B, p, -1)
                A_new = self._pow_step(_flat(A), num, den, Mk)
            else:
                A_new = self.step("A", _flat(A), num, den)
        else:
            A_new = self.step("A", _flat(A), num, den)
        state = state.replace(abundances=A_new.reshape(B, p, H, W))
        # 2. Coupling A_h ← A D + c (A_h − A D).
        AD = lr_abundances(state.abundances, physics)
        c = torch.sigmoid(self.c).to(AD.dtype)
        Ah = AD if state.abundances_lr is None else AD + c * (state.abundances_lr - AD)
        state = state.replace(abundances_lr=Ah)
        # 3. LR abundances and endmembers against the HSI.
        x = _flat(Ah)
        num = self.numerator("A_h", state, hs)
        den = self.denominator("A_h", state, hs)
        state = state.replace(
            abundances_lr=self._pow_step(x, num, den, self._exp(self.mu).to(x.dtype)).reshape(Ah.shape)
        )
        return state

    def update_endmembers(
        self, state: NMFState, hsi: torch.Tensor, msi: torch.Tensor, physics: Any
    ) -> NMFState:
        """Step 3b: E against the HSI (needs the whole scene's A_h), then E_m = R E.

        ``msi`` is only read for δ when ``self.delta`` is None.
        """
        hs = hs_term(hsi, sum_to_one_delta(msi) if self.delta is None else self.delta)
        num = self.numerator("E", state, hs)
        den = self.denominator("E", state, hs)
        E = self._pow_step(state.endmembers, num, den, self._exp(self.m).to(num.dtype))
        return state.replace(endmembers=E, ms_endmembers=ms_endmembers(E, physics))


class SCALMUNet(nn.Module):
    """K learned layers (:class:`SCALMULayer`), optionally with shared weights.

    Parameters
    ----------
    arch : SCALMUArch
    eps : float
    """

    def __init__(self, arch: SCALMUArch, *, eps: float = 1e-12) -> None:
        super().__init__()
        self.arch = arch
        n = 1 if arch.share_weights else arch.n_layers
        self.layers = nn.ModuleList(SCALMULayer(arch, eps=eps) for _ in range(max(n, 1)))

    def set_arch(self, arch: SCALMUArch) -> None:
        """Switch the architecture flags of the net and every layer (inference-time changes:
        prior strength, ablations); the weights stay."""
        self.arch = arch
        for lay in self.layers:
            lay.arch = arch  # type: ignore[assignment]

    def layer(self, k: int) -> SCALMULayer:
        """The module applied at layer k."""
        return self.layers[0 if self.arch.share_weights else k]  # type: ignore[return-value]

    def neutralise(self) -> None:
        """All layers neutral (plain CNMF coupled passes)."""
        for lay in self.layers:
            lay.neutralise()  # type: ignore[operator]

    def _plain_layer(self, like: SCALMULayer) -> SCALMULayer:
        """A plain CNMF coupled pass shaped like ``like`` (neutral, network skipped); kept out
        of the module tree so that it never enters the weights."""
        plain = self.__dict__.get("_plain")
        ref = like.mu
        if plain is None or plain.mu.device != ref.device or plain.mu.dtype != ref.dtype:
            plain = copy.deepcopy(like)
            plain.neutralise()
            plain.arch = dataclasses.replace(like.arch, use_prior=False, use_step=False)
            self.__dict__["_plain"] = plain
        plain.scene_means = like.scene_means
        return plain

    def forward(
        self,
        state: NMFState,
        hsi: torch.Tensor,
        msi: torch.Tensor,
        physics: Any,
        *,
        history: list[NMFState] | None = None,
        progress: ProgressFn | None = None,
        times: list[float] | None = None,
        safeguard: list[bool] | None = None,
    ) -> NMFState:
        """K layers; with ``safeguard`` (a list), each layer's learned update is kept only if
        its coupled data misfit is no larger than a plain pass's, and the list receives one
        bool per layer (learned update kept)."""
        K = self.arch.n_layers
        for k in range(K):
            t0 = time.perf_counter()
            learned = self.layer(k)(state, hsi, msi, physics)
            if safeguard is not None:
                plain = self._plain_layer(self.layer(k))(state, hsi, msi, physics)
                keep = coupled_misfit(learned, hsi, msi, physics) <= coupled_misfit(plain, hsi, msi, physics)
                safeguard.append(bool(keep))
                learned = learned if keep else plain
            state = learned
            if times is not None:
                times.append(time.perf_counter() - t0)
            if history is not None:
                history.append(state)
            if progress is not None:
                res = _flat(msi) - torch.bmm(state.ms_endmembers, _flat(state.abundances))  # type: ignore[arg-type]
                progress("layer", k + 1, K, float(res.detach().double().pow(2).sum()))
        return state


def coupled_misfit(state: NMFState, hsi: torch.Tensor, msi: torch.Tensor, physics: Any) -> float:
    """‖Y_m − E_m A‖²/‖Y_m‖² + ‖Y_h − E (A D)‖²/‖Y_h‖², summed over the batch: how well the HR
    abundances explain both images (the safeguard's criterion)."""
    A = state.abundances
    rm = (_flat(msi) - torch.bmm(state.ms_endmembers, _flat(A))).pow(2).sum() / _flat(msi).pow(2).sum()  # type: ignore[arg-type]
    AD = lr_abundances(A, physics)
    rh = (_flat(hsi) - torch.bmm(state.endmembers, _flat(AD))).pow(2).sum() / _flat(hsi).pow(2).sum()
    return float(rm + rh)


# ---------------------------------------------------------------------- init
def _choose_p(hsi: torch.Tensor, cfg: SCALMUConfig) -> int:
    B, L, h, w = hsi.shape
    n = h * w
    if cfg.n_endmembers is not None:
        p = int(cfg.n_endmembers)
        if p < 1 or p > min(L, n):
            raise InputError(f"n_endmembers={p} must be in [1, min(L, n)={min(L, n)}]; pass a smaller value")
        return p
    vd = [vd_hfc(hsi[b].reshape(L, n).double().cpu().numpy(), cfg.vd_alpha) for b in range(B)]
    return int(min(max(min(30, L), max(vd)), L, n))


def scalmu_init(
    hsi: torch.Tensor,
    msi: torch.Tensor,
    physics: FusionPhysics,
    p: int,
    *,
    hs_iters: int = 100,
    ms_iters: int = 20,
    vca_seed: int = 0,
    eps: float = 1e-12,
    vca_options: dict[str, str] | None = None,
) -> NMFState:
    """CNMF's initialisation (``scalmu.md`` §4), deterministic and without gradients.

    VCA endmembers on Y_h; A_h = 1/p then 3·``hs_iters`` abundance-only and ``hs_iters``
    alternating MU steps (CNMF's HS unmixing with fewer iterations); A = bilinear
    upsampling of A_h clipped at 0, then ``ms_iters`` MU steps on Y_m with E_m = R E.
    Uses CNMF's own loop implementation.

    Returns
    -------
    NMFState
        With all four factors filled; A_h is the HS-unmixing result.
    """
    from ..classical.cnmf import CNMFConfig, _FastSolver, _Log

    B, L, h, w = hsi.shape
    l, H, W = msi.shape[1:]
    r = physics.ratio
    dt = hsi.dtype
    Rt = physics.spectral.srf.to(dt)  # type: ignore[union-attr]
    cfg = CNMFConfig(eps=eps, theta=-math.inf)
    deltas = sum_to_one_delta(msi).reshape(-1).tolist()
    Es, As, Ahs = [], [], []
    with torch.no_grad():
        for b in range(B):
            Yh = hsi[b].reshape(L, h * w)
            Ym = msi[b].reshape(l, H * W)
            solver = _FastSolver(Yh, Ym, float(deltas[b]), cfg, _Log(None), 1, None)
            E, Ah = hs_unmixing(solver, Yh, p, hs_iters, vca_seed, vca_options)
            A = ms_start(solver, Rt @ E, Ah.reshape(p, h, w), r, ms_iters)
            Es.append(E)
            As.append(A.reshape(p, H, W))
            Ahs.append(Ah.reshape(p, h, w))
    E = torch.stack(Es)
    return NMFState(E, torch.stack(As), torch.stack(Ahs), ms_endmembers(E, physics))


def hs_unmixing(
    solver: Any, Yh: torch.Tensor, p: int, hs_iters: int, vca_seed: int, vca_options: dict[str, str] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """HS side of :func:`scalmu_init`: VCA (CNMF's step 2, with CNMF's ``vca_*`` options), then
    3·I abundance-only and I alternating steps.

    Returns E (L, p) and A_h (p, n) for Y_h of shape (L, n); ``solver`` is CNMF's ``_FastSolver``.
    """
    from ..classical.cnmf import CNMFConfig, _init_endmembers

    _, E, Ah = _init_endmembers(Yh, p, CNMFConfig(vca_seed=vca_seed, **(vca_options or {})))
    E = E.clamp_min(1e-6)
    if hs_iters > 0:
        Ah = solver.hs_abundances(E, Ah, 3 * hs_iters, "hs_abundances")
        E, Ah = solver.hs_alternate(E, Ah, hs_iters, "hs_alternate", e_first=True)
    return E, Ah


def ms_start(solver: Any, Em: torch.Tensor, Ah: torch.Tensor, r: int, ms_iters: int) -> torch.Tensor:
    """MS side of :func:`scalmu_init`: bilinear A_h (p, h, w) → (p, H·W), then MU steps with E_m."""
    p, h, w = Ah.shape
    A = upsample(Ah[None], r, "bilinear").clamp_min(1e-8).reshape(p, h * r * w * r)
    if ms_iters > 0:
        A = solver.ms_abundances(Em, A, ms_iters, "ms_abundances")
    return A


# ---------------------------------------------------------------------- method
def covered_physics(physics: FusionPhysics | None) -> tuple[FusionPhysics, np.ndarray]:
    """The sensor restricted to the MSI bands the HSI covers (rows renormalised) and their indices."""
    if physics is None or physics.spectral is None:
        raise SRFError("SCALMU needs the SRF of the sensor; pass --srf NAME|FILE")
    R = np.asarray(physics.spec.srf, dtype=np.float64)
    keep = np.flatnonzero((R > 0).any(axis=1))
    if keep.size == 0:
        raise SRFError("no MSI band is covered by the HSI (all SRF rows are zero)")
    R = R[keep] / R[keep].sum(axis=1, keepdims=True)
    return FusionPhysics(physics.spec.replace(srf=R)), keep


def _prepare_physics(physics: FusionPhysics | None, hsi: torch.Tensor, msi: torch.Tensor) -> tuple[FusionPhysics, torch.Tensor]:
    phys, keep = covered_physics(physics)
    if keep.size < msi.shape[1]:
        msi = msi[:, torch.as_tensor(keep, device=msi.device)]
    return phys.to(hsi.device), msi


@register_method("scalmu", config=SCALMUConfig)
class SCALMU(FusionMethod):
    """SCALMU: CNMF's initialisation followed by K learned coupled multiplicative passes.

    Parameters
    ----------
    config : SCALMUConfig, optional
    progress : callable, optional
        ``progress(stage, i, total, cost)`` after every layer (``"layer"``) and every
        adaptation step (``"adapt"``). Also settable as the ``progress`` attribute.

    Notes
    -----
    ``FusionResult`` carries ``endmembers`` (B, L, p), ``abundances`` (B, p, H, W),
    ``history["cost"]`` (MSI residual after every layer) and ``info`` (``p``,
    ``timings`` with per-layer seconds, ``weights`` metadata, ``adapt`` record).
    """

    description = "SCALMU: unrolled CNMF with learned adaptive multiplicative updates (synthetic-trained)"
    trainable = True

    def __init__(self, config: SCALMUConfig | None = None, *, progress: ProgressFn | None = None) -> None:
        super().__init__(config or SCALMUConfig())
        self.progress = progress
        cfg: SCALMUConfig = self.config
        if cfg.prior_scale != "auto" and not (
            isinstance(cfg.prior_scale, (int, float)) and not isinstance(cfg.prior_scale, bool) and cfg.prior_scale >= 0
        ):
            raise InputError(f"prior_scale must be a number >= 0 or 'auto', got {cfg.prior_scale!r}; pass e.g. 1.0")
        from ..classical.cnmf import check_vca_options

        check_vca_options(cfg)
        check_choice("adapt_data", cfg.adapt_data, ("dead_leaves", "held_out_bands"))
        check_choice("adapt_select", cfg.adapt_select, ("synthetic", "held_out_bands"))
        self.weights_meta: dict[str, Any] = {}
        w = cfg.weights
        if w in ("untrained", "neutral"):
            self.net = SCALMUNet(cfg.arch(), eps=cfg.eps)
            if w == "neutral":
                self.net.neutralise()
            self.weights_meta = {"source": w}
        else:
            from ...weights import load_weights

            state, meta = load_weights("scalmu" if w is None else w, expected_method="scalmu")
            arch = SCALMUArch(**meta.get("arch", {}))
            self.net = SCALMUNet(arch, eps=cfg.eps)
            try:
                self.net.load_state_dict(state)
            except RuntimeError as exc:
                from ...errors import WeightsError

                raise WeightsError(
                    f"SCALMU weights {w or 'scalmu (shipped)'} do not match the architecture in their "
                    f"metadata: {exc}"
                ) from exc
            self.weights_meta = {k: v for k, v in meta.items() if k != "history"}
        self.trained_arch = self.net.arch
        if cfg.prior_scale not in (1, "auto"):
            self.set_prior_scale(float(cfg.prior_scale))
        self.net.to(torch.float32)

    @property
    def chooses_prior_scale(self) -> bool:
        """Whether fusing chooses the prior scale per scene: ``prior_scale="auto"`` and a prior to
        scale (not ``"neutral"`` weights, ``use_prior`` on)."""
        cfg: SCALMUConfig = self.config
        return cfg.prior_scale == "auto" and self.net.arch.use_prior and cfg.weights != "neutral"

    def set_prior_scale(self, alpha: float) -> None:
        """Prior bound β of the loaded weights times ``alpha`` (0 = prior off, 1 = as trained);
        the net's other architecture flags (e.g. an ablation's) stay."""
        self.net.set_arch(dataclasses.replace(self.net.arch, prior_bound=self.trained_arch.prior_bound * alpha))

    def parameter_count(self) -> int:
        """Number of learned parameters."""
        return sum(p.numel() for p in self.net.parameters())

    def _check_family(self, L: int, r: int) -> None:
        """Warn when the input is outside the sensor family the loaded weights were trained on."""
        fam = self.weights_meta.get("sensor_family")
        if not fam:
            return
        ratios = fam.get("ratios") or []
        bands = fam.get("bands") or [0, 10**9]
        out = []
        if ratios and not (min(ratios) <= r <= max(ratios)):
            out.append(f"ratio {r} (trained on {min(ratios)}-{max(ratios)})")
        if not (bands[0] <= L <= bands[1]):
            out.append(f"{L} HSI bands (trained on {bands[0]}-{bands[1]})")
        if out:
            warnings.warn(
                "SCALMU weights used outside their training family: " + ", ".join(out)
                + "; results may be less reliable (check against --method cnmf)",
                UserWarning,
                stacklevel=4,
            )

    def initial_state(
        self, hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics, p: int | None = None
    ) -> NMFState:
        """CNMF's initialisation with this configuration (see :func:`scalmu_init`)."""
        cfg: SCALMUConfig = self.config
        return scalmu_init(
            hsi, msi, physics, _choose_p(hsi, cfg) if p is None else p,
            hs_iters=cfg.init_hs_iters, ms_iters=cfg.init_ms_iters, vca_seed=cfg.vca_seed, eps=cfg.eps,
            vca_options=cfg.vca_options(),
        )

    def _fuse(self, hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics | None) -> FusionResult:
        cfg: SCALMUConfig = self.config
        t_start = time.perf_counter()
        old_threads = torch.get_num_threads()
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        try:
            hsi = hsi.detach().float().clamp_min(0)
            msi = msi.detach().float().clamp_min(0)
            phys, msi = _prepare_physics(physics, hsi, msi)
            self._check_family(hsi.shape[1], phys.ratio)
            info: dict[str, Any] = {"weights": self.weights_meta}
            p = _choose_p(hsi, cfg)
            if self.chooses_prior_scale:
                t0 = time.perf_counter()
                alpha, record = choose_prior_scale(self, hsi, msi, phys, p)
                self.set_prior_scale(alpha)
                info["prior_scale"] = {**record, "seconds": time.perf_counter() - t0}
            t0 = time.perf_counter()
            state = self.initial_state(hsi, msi, phys, p)
            t_init = time.perf_counter() - t0
            info["p"] = state.n_endmembers
            net = self.net
            if cfg.adapt:
                from .scalmu_adapt import adapt_to_scene

                t0 = time.perf_counter()
                net, arec = adapt_to_scene(self, hsi, msi, phys, state, progress=self.progress)
                info["adapt"] = {**arec, "seconds": time.perf_counter() - t0}
            times: list[float] = []
            costs: list[float] = []

            def prog(stage: str, i: int, total: int, cost: float) -> None:
                costs.append(cost)
                if self.progress is not None:
                    self.progress(stage, i, total, cost)

            for lay in net.layers:
                lay.chunk = 8  # type: ignore[assignment]
            kept: list[bool] | None = [] if cfg.safeguard else None
            with torch.no_grad():
                state = net(state, hsi, msi, phys, progress=prog, times=times, safeguard=kept)
            if kept is not None:
                info["safeguard_kept"] = kept
            cube = state.reconstruct()
            info["timings"] = {
                "init": t_init,
                "layers": times,
                "per_layer": float(np.mean(times)) if times else 0.0,
                "total": time.perf_counter() - t_start,
            }
            info["n_layers"] = net.arch.n_layers
        finally:
            torch.set_num_threads(old_threads)
        return FusionResult(
            cube=cube.float(),
            endmembers=state.endmembers.float(),
            abundances=state.abundances.float(),
            history={"cost": costs},
            info=info,
        )

    @staticmethod
    def config_dict(cfg: SCALMUConfig) -> dict[str, Any]:
        """JSON-serialisable config."""
        return asdict(cfg)


#: Candidate prior scales of ``prior_scale="auto"`` (``docs/scalmu.md`` §4.8; three since §4.14).
AUTO_PRIOR_SCALES: tuple[float, ...] = (0.0, 0.5, 1.0)
#: At most this many held-out MSI bands, and an HR window of max(AUTO_CROP, AUTO_MIN_LR · r) px
#: a side (at least AUTO_MIN_LR LR pixels), bound the cost of "auto".
AUTO_MAX_FOLDS = 4
AUTO_CROP = 64
AUTO_MIN_LR = 8


def auto_window(h: int, w: int, r: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """LR and HR (rows, cols) of the central window "auto" scores on: max(AUTO_CROP,
    AUTO_MIN_LR · r) px a side (the whole scene when smaller), aligned to the LR grid."""
    side = max(AUTO_CROP, AUTO_MIN_LR * r) // r
    ch, cw = min(h, side), min(w, side)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    lr = (slice(y0, y0 + ch), slice(x0, x0 + cw))
    hr = (slice(y0 * r, (y0 + ch) * r), slice(x0 * r, (x0 + cw) * r))
    return lr, hr


@dataclass
class HeldOutBand:
    """One fold of MSI band cross-validation on the central window: the pair without band k,
    its sensor, SCALMU's initialisation for it, and band k with its SRF row."""

    hsi: torch.Tensor
    msi: torch.Tensor
    physics: FusionPhysics
    start: NMFState
    target: torch.Tensor
    srf_row: torch.Tensor

    def predict(self, net: SCALMUNet) -> torch.Tensor:
        """Band k as the fused cube of ``net`` without it sees it: r_k X̂, (B, H, W)."""
        x = net(self.start, self.hsi, self.msi, self.physics).reconstruct()
        return torch.einsum("l,blhw->bhw", self.srf_row.to(x.dtype), x)


def held_out_bands(
    method: SCALMU, hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics, p: int
) -> list[HeldOutBand]:
    """Up to :data:`AUTO_MAX_FOLDS` evenly spaced held-out MSI bands on the central window
    (:func:`auto_window`); empty with fewer than two MSI bands."""
    l = msi.shape[1]
    if l < 2:
        return []
    lr, hr = auto_window(*hsi.shape[-2:], physics.ratio)
    hsi_c, msi_c = hsi[..., lr[0], lr[1]], msi[..., hr[0], hr[1]]
    p = min(p, hsi_c.shape[-1] * hsi_c.shape[-2])
    R = np.asarray(physics.spec.srf, dtype=np.float64)
    out = []
    with torch.no_grad():
        for k in np.unique(np.round(np.linspace(0, l - 1, min(l, AUTO_MAX_FOLDS))).astype(int)):
            rest = np.delete(np.arange(l), k)
            phys_k = FusionPhysics(physics.spec.replace(srf=R[rest])).to(hsi.device)
            msi_k = msi_c[:, torch.as_tensor(rest, device=msi.device)]
            out.append(HeldOutBand(
                hsi_c, msi_k, phys_k, method.initial_state(hsi_c, msi_k, phys_k, p), msi_c[:, k],
                torch.as_tensor(R[k], dtype=hsi.dtype, device=hsi.device),
            ))
    return out


def held_out_snrs(net: SCALMUNet, folds: list[HeldOutBand]) -> list[float]:
    """Per fold, SNR_k = 10 log10(‖y_k‖² / ‖y_k − r_k X̂‖²) (dB) of the held-out band's prediction."""
    snr = []
    with torch.no_grad():
        for f in folds:
            y = f.target.double()
            err = (y - f.predict(net).double()).pow(2).sum().clamp_min(1e-30)
            snr.append(float(10 * torch.log10(y.pow(2).sum() / err)))
    return snr


def held_out_snr(net: SCALMUNet, folds: list[HeldOutBand]) -> float:
    """Mean over the folds of :func:`held_out_snrs` (dB)."""
    return float(np.mean(held_out_snrs(net, folds)))


def held_out_loss(net: SCALMUNet, fold: HeldOutBand) -> torch.Tensor:
    """L1 of the held-out band's prediction relative to its mean (differentiable)."""
    y = fold.target
    return (fold.predict(net) - y).abs().mean() / y.abs().mean().clamp_min(1e-12)


def pick_prior_scale(fold_scores: dict[float, list[float]]) -> float:
    """The α :func:`choose_prior_scale` keeps, from the held-out SNR (dB) of each fold per α:
    the highest mean wins; within 0.01 dB of it, the larger α (closer to the training)."""
    alphas = sorted(fold_scores)
    mean = [float(np.mean(fold_scores[a])) for a in alphas]
    return float(max(a for a, m in zip(alphas, mean, strict=True) if m >= max(mean) - 0.01))


def choose_prior_scale(
    method: SCALMU, hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics, p: int
) -> tuple[float, dict[str, Any]]:
    """Pick the prior scale α for this scene by MSI band cross-validation (no ground truth).

    For each held-out MSI band k (:func:`held_out_bands`: up to :data:`AUTO_MAX_FOLDS`, evenly
    spaced, on the central window) and each α in :data:`AUTO_PRIOR_SCALES`, fuse with band k
    removed from the MSI and the SRF and score how well the fused cube predicts it
    (:func:`held_out_snrs`); :func:`pick_prior_scale` keeps one α. A batch gets one α (its errors
    are pooled). ``method``'s prior scale is left at the last candidate: set it with
    :meth:`SCALMU.set_prior_scale`.

    Returns
    -------
    alpha : float
    record : dict
        ``chosen`` (α), ``scores_db`` (mean held-out SNR in dB per candidate α) and
        ``fold_scores_db`` (the SNR of each fold per candidate α); both empty when there are fewer
        than two MSI bands (α = 1).
    """
    folds = held_out_bands(method, hsi, msi, physics, p)
    per_fold = {}
    for alpha in AUTO_PRIOR_SCALES if folds else ():
        method.set_prior_scale(alpha)
        per_fold[alpha] = held_out_snrs(method.net, folds)
    alpha = pick_prior_scale(per_fold) if per_fold else 1.0
    return alpha, {"chosen": alpha, "scores_db": {str(a): float(np.mean(v)) for a, v in per_fold.items()},
                   "fold_scores_db": {str(a): v for a, v in per_fold.items()}}


def train_scalmu(
    config: Any = None,
    *,
    out_dir: str | os.PathLike[str],
    resume: bool = False,
    progress: ProgressFn | None = None,
) -> Path:
    """Train SCALMU; see :func:`hyperfuse.methods.unrolled.scalmu_train.train_scalmu`.

    ``config`` is a ``SCALMUTrainConfig``, a JSON/YAML path, or ``None`` (defaults).
    """
    from .scalmu_train import train_scalmu as _train

    return _train(config, out_dir=out_dir, resume=resume, progress=progress)


def __getattr__(name: str) -> Any:
    """Lazy ``SCALMUTrainConfig`` (defined in ``scalmu_train``, which imports this module)."""
    if name == "SCALMUTrainConfig":
        from .scalmu_train import SCALMUTrainConfig

        return SCALMUTrainConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
