"""Shared coupled-NMF machinery: state, data terms, the multiplicative-update stage, unrolling.

``classical.md`` §3 and ``conventions.md`` §3.4. Classical CNMF runs these parts with the
fixed Lee–Seung rule and many stages; SCALMU subclasses :class:`MultiplicativeUpdate` to
change the numerator, the denominator or the step, and runs few stages.

Model: X ≈ E A with endmembers E (L×p) and HR abundances A (p×N). The HS data satisfy
Y_h ≈ E A_h with A_h = A D; the MS data satisfy Y_m ≈ E_m A with E_m = R E. Both
abundance updates use the sum-to-one augmentation Ỹ = [Y; δ1ᵀ], Ẽ = [E; δ1ᵀ], so that

    ẼᵀỸ = EᵀY + δ²,    ẼᵀẼ = EᵀE + δ²      (δ² added to every entry).

Shapes (per batch item b): ``endmembers`` (B, L, p), ``abundances`` (B, p, H, W),
``abundances_lr`` (B, p, h, w), ``ms_endmembers`` (B, l, p). Data matrices are the cubes
reshaped to (B, C, pixels), which is a view.

Examples
--------
>>> import numpy as np
>>> from hyperfuse.physics.sensor import FusionPhysics, make_sensor
>>> phys = FusionPhysics(make_sensor(2, srf=np.full((2, 5), 0.2)))
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.rand(1, 5, 8, 8, dtype=torch.float64, generator=g)
>>> hsi, msi = phys.spatial(x), phys.spectral(x)
>>> state = NMFState(torch.rand(1, 5, 3, dtype=torch.float64, generator=g),
...                  torch.full((1, 3, 8, 8), 1 / 3, dtype=torch.float64))
>>> state = couple(state, phys)
>>> net = Unrolled(lambda k: MultiplicativeUpdate(("E", "A_h", "A")), n_stages=5, share_weights=True)
>>> net(state, hsi, msi, phys).reconstruct().shape
torch.Size([1, 5, 8, 8])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from ...errors import InputError, ShapeError

__all__ = [
    "Target",
    "NMFState",
    "DataTerm",
    "sum_to_one_delta",
    "ms_endmembers",
    "lr_abundances",
    "couple",
    "hs_term",
    "ms_term",
    "coupled_hs_abundance_parts",
    "MultiplicativeUpdate",
    "Unrolled",
    "UnrolledRun",
]

Target = Literal["E", "A_h", "E_m", "A"]
"""Which factor a multiplicative step updates: ``"E"`` and ``"A_h"`` against the HSI,
``"E_m"`` and ``"A"`` against the MSI."""


@dataclass
class NMFState:
    """Iterate of a coupled NMF.

    Parameters
    ----------
    endmembers : Tensor of shape (B, L, p)
        E, HS endmember spectra (non-negative).
    abundances : Tensor of shape (B, p, H, W)
        A, HR abundances (non-negative).
    abundances_lr : Tensor of shape (B, p, h, w), optional
        A_h, LR abundances of the HS factorisation.
    ms_endmembers : Tensor of shape (B, l, p), optional
        E_m, MS endmembers of the MS factorisation.
    """

    endmembers: torch.Tensor
    abundances: torch.Tensor
    abundances_lr: torch.Tensor | None = None
    ms_endmembers: torch.Tensor | None = None

    @property
    def n_endmembers(self) -> int:
        """p."""
        return int(self.endmembers.shape[-1])

    def replace(self, **changes: Any) -> NMFState:
        """Copy with some fields replaced (tensors are shared, not cloned)."""
        return dataclasses.replace(self, **changes)

    def clone(self) -> NMFState:
        """Deep copy of every tensor."""
        return NMFState(
            *(None if t is None else t.clone() for t in dataclasses.astuple(self))  # type: ignore[arg-type]
        )

    def reconstruct(self) -> torch.Tensor:
        """X̂ = E A as a (B, L, H, W) cube."""
        B, p, H, W = self.abundances.shape
        X = torch.bmm(self.endmembers, self.abundances.reshape(B, p, H * W))
        return X.reshape(B, -1, H, W)


def sum_to_one_delta(msi: torch.Tensor) -> torch.Tensor:
    """CNMF's augmentation weight δ = 2 √(mean(Y_m)/0.7455) / l³, per batch item.

    Parameters
    ----------
    msi : Tensor of shape (B, l, H, W)

    Returns
    -------
    Tensor of shape (B, 1, 1), float64

    Examples
    --------
    >>> round(float(sum_to_one_delta(torch.full((1, 1, 2, 2), 0.7455))), 6)
    2.0
    """
    mean = msi.reshape(msi.shape[0], -1).to(torch.float64).mean(dim=1).clamp_min(0)
    return (2.0 * torch.sqrt(mean / 0.7455) / msi.shape[1] ** 3).reshape(-1, 1, 1)


@dataclass(frozen=True)
class DataTerm:
    """One factorisation ``Y ≈ E A`` with sum-to-one augmentation weight δ.

    Parameters
    ----------
    Y : Tensor of shape (B, C, n)
        Data, pixels as columns.
    delta : Tensor of shape (B, 1, 1) or float
        δ; the abundance parts use Ẽ = [E; δ1ᵀ] and Ỹ = [Y; δ1ᵀ].

    Notes
    -----
    For A: numerator ẼᵀỸ = EᵀY + δ², denominator (ẼᵀẼ) A (Gram-first) or Ẽᵀ(ẼA)
    (data-first, cheaper when 2(C+1) < p). For E: numerator Y Aᵀ, denominator E (A Aᵀ).
    The augmented rows are never updated.
    """

    Y: torch.Tensor
    delta: torch.Tensor | float = 0.0

    def _d2(self, like: torch.Tensor) -> torch.Tensor | float:
        d = self.delta
        return (d * d).to(like.dtype) if isinstance(d, torch.Tensor) else d * d

    def abundance_numerator(self, E: torch.Tensor) -> torch.Tensor:
        """ẼᵀỸ, shape (B, p, n)."""
        return torch.bmm(E.transpose(1, 2), self.Y) + self._d2(E)

    def abundance_denominator(
        self, E: torch.Tensor, A: torch.Tensor, order: Literal["gram", "data"] = "gram"
    ) -> torch.Tensor:
        """ẼᵀẼA, shape (B, p, n)."""
        d2 = self._d2(E)
        if order == "gram":
            G = torch.bmm(E.transpose(1, 2), E) + d2
            return torch.bmm(G, A)
        P = torch.bmm(E, A)
        s = A.sum(dim=1, keepdim=True)
        return torch.bmm(E.transpose(1, 2), P) + d2 * s

    def endmember_numerator(self, A: torch.Tensor) -> torch.Tensor:
        """Y Aᵀ, shape (B, C, p)."""
        return torch.bmm(self.Y, A.transpose(1, 2))

    def endmember_denominator(self, E: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        """E (A Aᵀ), shape (B, C, p)."""
        return torch.bmm(E, torch.bmm(A, A.transpose(1, 2)))

    def cost(self, E: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        """J = ‖Y − E A‖²_F per item, float64 sum of the direct residual; shape (B,)."""
        R = self.Y - torch.bmm(E, A)
        return (R.to(torch.float64) ** 2).sum(dim=(1, 2))

    def augmented_cost(self, E: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        """J + δ²‖1 − 1ᵀA‖², the quantity the abundance updates never increase; shape (B,)."""
        s = A.to(torch.float64).sum(dim=1)
        d = self.delta
        d2 = (d.reshape(-1) ** 2).to(torch.float64) if isinstance(d, torch.Tensor) else d * d
        return self.cost(E, A) + d2 * ((1.0 - s) ** 2).sum(dim=1)


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], x.shape[1], -1)


def hs_term(hsi: torch.Tensor, delta: torch.Tensor | float) -> DataTerm:
    """Data term of the HSI, Y_h (B, L, n)."""
    return DataTerm(_flat(hsi), delta)


def ms_term(msi: torch.Tensor, delta: torch.Tensor | float) -> DataTerm:
    """Data term of the MSI, Y_m (B, l, N)."""
    return DataTerm(_flat(msi), delta)


def ms_endmembers(E: torch.Tensor, physics: Any) -> torch.Tensor:
    """E_m = R E through ``physics.spectral.A``: (B, L, p) -> (B, l, p)."""
    if physics is None or physics.spectral is None:
        raise InputError("the MS endmembers need an SRF (physics.spectral); estimate or pass one")
    return physics.spectral.A(E.unsqueeze(-1)).squeeze(-1)


def lr_abundances(A: torch.Tensor, physics: Any) -> torch.Tensor:
    """A_h = A D through ``physics.spatial.A``: (B, p, H, W) -> (B, p, h, w)."""
    return physics.spatial.A(A)


def couple(state: NMFState, physics: Any) -> NMFState:
    """Fill the missing coupled factors: E_m ← R E and A_h ← A D where absent."""
    Em = state.ms_endmembers if state.ms_endmembers is not None else ms_endmembers(
        state.endmembers, physics
    )
    Ah = state.abundances_lr if state.abundances_lr is not None else lr_abundances(
        state.abundances, physics
    )
    return state.replace(ms_endmembers=Em, abundances_lr=Ah)


def coupled_hs_abundance_parts(
    E: torch.Tensor, A: torch.Tensor, hsi: torch.Tensor, physics: Any, delta: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """MU parts of ‖Ỹ_h − Ẽ A D‖² with respect to the HR abundances A.

    Numerator ``Dᵀ(ẼᵀỸ_h)`` and denominator ``Dᵀ((ẼᵀẼ) A D)``, both (B, p, H, W), through
    ``physics.spatial.A`` / ``A_adjoint`` (non-negative for a non-negative PSF). Not used by
    classical CNMF (which couples through A_h), offered to learned variants.
    """
    term = hs_term(hsi, delta)
    Ah = lr_abundances(A, physics)
    B, p, h, w = Ah.shape
    num = term.abundance_numerator(E).reshape(B, p, h, w)
    den = term.abundance_denominator(E, _flat(Ah)).reshape(B, p, h, w)
    return physics.spatial.A_adjoint(num), physics.spatial.A_adjoint(den)


class MultiplicativeUpdate(nn.Module):
    """One stage: Lee–Seung multiplicative steps on the listed factors, in order.

    ``x ← x ⊙ num ⊘ max(den, ε)`` with the CNMF numerators and denominators of
    :class:`DataTerm`. A learned rule subclasses this and overrides :meth:`numerator`,
    :meth:`denominator` or :meth:`step` (e.g. an element-wise exponent M or a prior term).

    Parameters
    ----------
    targets : sequence of {"E", "A_h", "E_m", "A"}
        Factors to update, in order. ``"E"``/``"A_h"`` fit the HSI, ``"E_m"``/``"A"`` the MSI.
    eps : float, default 1e-12
        Floor of every denominator.
    delta : float, optional
        Sum-to-one weight δ; default :func:`sum_to_one_delta` of the MSI.
    abundance_order : {"gram", "data"}, default "gram"
        Product order of the abundance denominators.

    Shape
    -----
    ``forward(state, hsi (B, L, h, w), msi (B, l, H, W), physics) -> state``. Missing
    ``abundances_lr``/``ms_endmembers`` are first filled by :func:`couple`.
    """

    def __init__(
        self,
        targets: Sequence[Target],
        *,
        eps: float = 1e-12,
        delta: float | None = None,
        abundance_order: Literal["gram", "data"] = "gram",
    ) -> None:
        super().__init__()
        bad = [t for t in targets if t not in ("E", "A_h", "E_m", "A")]
        if bad or not targets:
            raise InputError(f"targets must be a non-empty list of E, A_h, E_m, A; got {targets}")
        self.targets: tuple[Target, ...] = tuple(targets)
        self.eps = float(eps)
        self.delta = delta
        self.abundance_order: Literal["gram", "data"] = abundance_order

    def terms(self, hsi: torch.Tensor, msi: torch.Tensor) -> tuple[DataTerm, DataTerm]:
        """(HS term, MS term) for this stage."""
        d: torch.Tensor | float = sum_to_one_delta(msi) if self.delta is None else self.delta
        return hs_term(hsi, d), ms_term(msi, d)

    def numerator(self, target: Target, state: NMFState, term: DataTerm) -> torch.Tensor:
        """Positive part of the negative gradient for ``target``."""
        if target == "E":
            return term.endmember_numerator(_flat(state.abundances_lr))  # type: ignore[arg-type]
        if target == "E_m":
            return term.endmember_numerator(_flat(state.abundances))
        if target == "A_h":
            return term.abundance_numerator(state.endmembers)
        return term.abundance_numerator(state.ms_endmembers)  # type: ignore[arg-type]

    def denominator(self, target: Target, state: NMFState, term: DataTerm) -> torch.Tensor:
        """Positive part of the gradient for ``target``."""
        if target == "E":
            return term.endmember_denominator(state.endmembers, _flat(state.abundances_lr))  # type: ignore[arg-type]
        if target == "E_m":
            return term.endmember_denominator(state.ms_endmembers, _flat(state.abundances))  # type: ignore[arg-type]
        if target == "A_h":
            return term.abundance_denominator(
                state.endmembers, _flat(state.abundances_lr), self.abundance_order  # type: ignore[arg-type]
            )
        return term.abundance_denominator(
            state.ms_endmembers, _flat(state.abundances), self.abundance_order  # type: ignore[arg-type]
        )

    def step(self, target: Target, x: torch.Tensor, num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
        """The multiplicative step ``x ⊙ num ⊘ max(den, ε)``."""
        return x * num / den.clamp_min(self.eps)

    def forward(
        self, state: NMFState, hsi: torch.Tensor, msi: torch.Tensor, physics: Any
    ) -> NMFState:
        if state.abundances_lr is None or state.ms_endmembers is None:
            state = couple(state, physics)
        hs, ms = self.terms(hsi, msi)
        fields = {"E": "endmembers", "A_h": "abundances_lr", "E_m": "ms_endmembers", "A": "abundances"}
        for t in self.targets:
            term = hs if t in ("E", "A_h") else ms
            x = getattr(state, fields[t])
            num = self.numerator(t, state, term)
            den = self.denominator(t, state, term)
            new = self.step(t, _flat(x) if t in ("A_h", "A") else x, num, den).reshape(x.shape)
            state = state.replace(**{fields[t]: new})
        return state


@dataclass
class UnrolledRun:
    """Output of :meth:`Unrolled.run`: final state, accepted costs, stages run, stop flag."""

    state: NMFState
    costs: list[float] = field(default_factory=list)
    iterations: int = 0
    stopped: bool = False


class Unrolled(nn.Module):
    """A chain of stages ``stage_factory(k)``, k = 0 … n_stages−1.

    Parameters
    ----------
    stage_factory : callable int -> Module
        Builds stage k (a :class:`MultiplicativeUpdate` or a learned subclass).
    n_stages : int
        Number of stages.
    share_weights : bool, default False
        Build one stage and apply it ``n_stages`` times.
    """

    def __init__(
        self, stage_factory: Callable[[int], nn.Module], n_stages: int, share_weights: bool = False
    ) -> None:
        super().__init__()
        if n_stages < 0:
            raise ShapeError(f"n_stages must be >= 0, got {n_stages}")
        self.n_stages = int(n_stages)
        self.share_weights = bool(share_weights)
        n_built = min(1, self.n_stages) if share_weights else self.n_stages
        self.stages = nn.ModuleList(stage_factory(k) for k in range(n_built))

    def stage(self, k: int) -> nn.Module:
        """The module applied at stage k."""
        return self.stages[0 if self.share_weights else k]

    def forward(self, state: NMFState, hsi: torch.Tensor, msi: torch.Tensor, physics: Any) -> NMFState:
        for k in range(self.n_stages):
            state = self.stage(k)(state, hsi, msi, physics)
        return state

    def run(
        self,
        state: NMFState,
        hsi: torch.Tensor,
        msi: torch.Tensor,
        physics: Any,
        *,
        cost: Callable[[NMFState], float] | None = None,
        theta: float = 0.0,
        callback: Callable[[int, float, NMFState], None] | None = None,
    ) -> UnrolledRun:
        """Run the stages with CNMF's stop rule.

        After each stage J = ``cost(state)``. From the second stage on, if
        (J_prev − J)/J < ``theta`` the stage's update is discarded (the previous state is
        restored) and the loop ends. ``callback(k, J, state)`` is called for every accepted
        stage.
        """
        out = UnrolledRun(state)
        prev: float | None = None
        for k in range(self.n_stages):
            new = self.stage(k)(state, hsi, msi, physics)
            if cost is None:
                state = new
                out.iterations = k + 1
                continue
            J = float(cost(new))
            if prev is not None and (prev - J) / max(J, 1e-300) < theta:
                out.stopped = True
                break
            state, prev = new, J
            out.costs.append(J)
            out.iterations = k + 1
            if callback is not None:
                callback(k + 1, J, state)
        out.state = state
        return out
