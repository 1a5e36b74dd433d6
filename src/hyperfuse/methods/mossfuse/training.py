"""MossFuse training: blind-head initialisation, one optimisation step, single-scene fitting.

``mossfuse.md`` §7–§8. Nothing here accepts an HR-HSI: every function sees only the
LR-HSI ``x`` and the HR-MSI ``Y``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ...physics.estimate import estimate_srf_nnls
from ...physics.functional import gaussian_psf
from .losses import LossTerms, LossWeights, mossfuse_losses
from .network import (
    BlindNet,
    Geometry,
    MossFuseNet,
    degrade,
    dihedral,
    dihedral_offset,
    geometry_of,
)

__all__ = [
    "ProgressFn",
    "classical_sensor_init",
    "candidate_geometries",
    "fit_blind",
    "make_optimizer",
    "train_step",
    "consistency_error",
    "random_patches",
    "SingleSceneResult",
    "fit_single_scene",
]

ProgressFn = Callable[[str, int, int, float], None]


def candidate_geometries(ratio: int) -> list[Geometry]:
    """Block-centred geometry and the two half-pixel-shifted ones (K parity flipped).

    Examples
    --------
    >>> [(g.size, g.offset, g.centre) for g in candidate_geometries(4)]
    [(14, 2, 1.5), (15, 2, 2.0), (15, 1, 1.0)]
    """
    g0 = geometry_of(ratio, "block_centred")
    k1 = g0.size + 1
    if g0.size % 2:  # odd r: centres ± 0.5 need an even K, offsets o and o + 1
        return [g0, Geometry(ratio, k1, g0.offset + 1), Geometry(ratio, k1, g0.offset)]
    # even r: integer centres r/2 and r/2 − 1 (odd K)
    return [g0, Geometry(ratio, k1, ratio // 2), Geometry(ratio, k1, ratio // 2 - 1)]


def classical_sensor_init(
    x: torch.Tensor, Y: torch.Tensor, geometries: list[Geometry], *, sigmas: np.ndarray | None = None,
    n_components: int = 20,
) -> tuple[Geometry, np.ndarray, float, dict[str, Any]]:
    """Grid search over geometry and Gaussian σ, then an NNLS SRF at the winner.

    For every candidate (geometry, σ), Y is degraded with the Gaussian PSF and regressed
    (least squares with offset) on the top ``n_components`` principal components of the
    LR-HSI; the candidate with the lowest relative residual wins. The SRF is then fitted by
    NNLS with offset (``classical.md`` §2.3) and its rows normalised. Returns the geometry,
    the SRF (l, L), σ and a record of the search.
    """
    r = geometries[0].ratio
    if sigmas is None:
        fwhm_sigma = r / 2.35482
        sigmas = fwhm_sigma * np.array([0.35, 0.5, 0.65, 0.8, 0.9, 1.0, 1.1, 1.25, 1.45, 1.7])
    x64, Y64 = x.detach().double(), Y.detach().double()
    Xp = x64.permute(1, 0, 2, 3).reshape(x64.shape[1], -1)
    Xc = Xp - Xp.mean(1, keepdim=True)
    n = Xc.shape[1]
    p = max(1, min(n_components, Xc.shape[0], n // 4))
    U = torch.linalg.svd(Xc, full_matrices=False)[0][:, :p]
    Z = U.T @ Xc  # (p, n)
    P = Z.T @ torch.linalg.solve(Z @ Z.T, Z)  # projector onto the row space of Z (n × n)
    best: tuple[float, Geometry, float] | None = None
    scores = []
    for g in geometries:
        for s in sigmas:
            k = torch.from_numpy(gaussian_psf(float(s), g.size))
            yt = degrade(Y64, k, g).permute(1, 0, 2, 3).reshape(Y64.shape[1], -1)
            c = yt - yt.mean(1, keepdim=True)
            err = float(((c - c @ P).norm(dim=1) / c.norm(dim=1).clamp_min(1e-12)).mean())
            scores.append((g.size, g.offset, float(s), err))
            if best is None or err < best[0]:
                best = (err, g, float(s))
    assert best is not None
    err0, g, s = best
    est = estimate_srf_nnls(x64, Y64, r, psf=gaussian_psf(s, g.size), offset=(g.offset, g.offset),
                            boundary="reflect", fit_offset=True)  # as measured in bench_mossfuse
    R = np.clip(est.srf, 0, None)
    R = R / np.maximum(R.sum(1, keepdims=True), 1e-12)
    return g, R, s, {"grid": scores, "fit_error": err0, "nnls_error": est.error.tolist()}


def fit_blind(
    blind: BlindNet, x: torch.Tensor, Y: torch.Tensor, *, steps: int, lr: float = 2e-2,
    progress: ProgressFn | None = None,
) -> list[float]:
    """Train BlindNet alone on L_DE = |R·x − D_k(Y)|₁ with Adam (whole images)."""
    opt = torch.optim.Adam(blind.parameters(), lr=lr)
    hist = []
    with torch.enable_grad():
        for i in range(steps):
            y_x, y_Y, _, _ = blind(x, Y)
            loss = (y_x - y_Y).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            hist.append(float(loss.detach()))
            if progress is not None:
                progress("blind", i + 1, steps, hist[-1])
    return hist


def make_optimizer(
    net: MossFuseNet, lr: float, blind_lr: float | None = None
) -> torch.optim.Adam:
    """One Adam over two parameter groups (main, blind), β = (0.9, 0.999), no weight decay."""
    return torch.optim.Adam(
        [{"params": net.main_parameters(), "lr": lr},
         {"params": list(net.blind.parameters()), "lr": lr if blind_lr is None else blind_lr}],
        betas=(0.9, 0.999), weight_decay=0.0,
    )


def train_step(
    net: MossFuseNet, opt: torch.optim.Optimizer, x: torch.Tensor, Y: torch.Tensor, *,
    weights: LossWeights, offsets: list[tuple[int, int]] | None = None,
    transforms: list[tuple[int, bool]] | None = None, base: torch.Tensor | None = None,
) -> LossTerms:
    """One forward pass with the self-supervised decoders, one backward, one optimiser step."""
    net.train()
    with torch.enable_grad():
        out = net(x, Y, return_aux=True, offsets=offsets, transforms=transforms, base=base)
        terms = mossfuse_losses(out, x, Y, net.blind.geometry, weights, offsets=offsets)
        opt.zero_grad(set_to_none=True)
        terms.total.backward()
        opt.step()
    return terms


@torch.no_grad()
def consistency_error(
    net: MossFuseNet, x: torch.Tensor, Y: torch.Tensor, base: torch.Tensor | None = None
) -> tuple[float, torch.Tensor]:
    """Full-image L_MA (no reference) of the eval-mode fusion path, and the fused image."""
    was = net.training
    net.eval()
    out = net(x, Y, return_aux=False, base=base)
    R, k = out.srf, out.psf
    err = (x - degrade(out.fused, k, net.blind.geometry)).abs().mean() + (
        Y - torch.einsum("ml,blhw->bmhw", R, out.fused)
    ).abs().mean()
    net.train(was)
    return float(err), out.fused


def random_patches(
    tensors: list[torch.Tensor], ratio: int, patch: int, batch: int, gen: np.random.Generator,
    geom: Geometry, augment: bool,
) -> tuple[list[torch.Tensor], list[tuple[int, int]] | None, list[tuple[int, int]] | None]:
    """Random r-aligned crops (HR size ``patch``) of (x, Y[, base]) with dihedral augmentation.

    ``tensors[0]`` is the LR-HSI (1, L, h, w); the others are HR (1, ·, H, W). Returns the
    batched crops, the tracked offsets and the transforms (``None`` without augmentation).
    """
    x = tensors[0]
    h, w = x.shape[-2:]
    ph, pw = min(patch // ratio, h), min(patch // ratio, w)
    crops: list[list[torch.Tensor]] = [[] for _ in tensors]
    offsets, transforms = [], []
    for _ in range(batch):
        i = int(gen.integers(0, h - ph + 1))
        j = int(gen.integers(0, w - pw + 1))
        k, f = (int(gen.integers(0, 4)), bool(gen.integers(0, 2))) if augment else (0, False)
        for n, t in enumerate(tensors):
            s = 1 if n == 0 else ratio
            c = t[..., i * s : (i + ph) * s, j * s : (j + pw) * s]
            crops[n].append(dihedral(c, k, f))
        offsets.append(dihedral_offset(geom, k, f))
        transforms.append((k, f))
    out = [torch.cat(c) for c in crops]
    if not augment:
        return out, None, None
    return out, offsets, transforms


@dataclass
class SingleSceneResult:
    """What :func:`fit_single_scene` returns."""

    fused: torch.Tensor
    net: MossFuseNet
    history: dict[str, list[float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def fit_single_scene(
    net: MossFuseNet, x: torch.Tensor, Y: torch.Tensor, *, steps: int, time_budget_s: float | None,
    patch_size: int, batch_size: int, lr: float, lr_min: float, weights: LossWeights,
    augment: bool, eval_every: int, seed: int, base: torch.Tensor | None = None,
    blind_lr: float | None = None, progress: ProgressFn | None = None,
) -> SingleSceneResult:
    """Fit ``net`` on random patches of one (x, Y) pair, then fuse the whole scene.

    Cosine annealing per iteration (T_max = the planned number of steps; with a time budget
    the plan is re-estimated from the measured step time after 3 steps). Model selection:
    the state with the lowest full-image L_MA consistency error among the evaluations (every
    ``eval_every`` steps and at the end) — no reference is used.
    """
    t0 = time.perf_counter()
    r = net.ratio
    gen = np.random.default_rng(seed)
    opt = make_optimizer(net, lr, blind_lr)
    total = max(int(steps), 0)
    hist: dict[str, list[float]] = {"cost": [], "ma": [], "de": [], "select": []}
    tensors = [x, Y] + ([base] if base is not None else [])
    best_err, best_state = math.inf, None
    err, _ = consistency_error(net, x, Y, base)
    best_err, best_state, best_step = err, copy.deepcopy(net.state_dict()), 0
    hist["select"].append(err)
    lr0 = [g["lr"] for g in opt.param_groups]
    i = 0
    step_times: list[float] = []
    while i < total:
        if time_budget_s is not None and time.perf_counter() - t0 >= time_budget_s:
            break
        ts = time.perf_counter()
        frac = i / max(total, 1)
        for g, l0 in zip(opt.param_groups, lr0, strict=True):
            g["lr"] = lr_min + 0.5 * (l0 - lr_min) * (1 + math.cos(math.pi * frac))
        (xb, Yb, *rest), offs, trs = random_patches(tensors, r, patch_size, batch_size, gen,
                                                     net.blind.geometry, augment)
        terms = train_step(net, opt, xb, Yb, weights=weights, offsets=offs, transforms=trs,
                           base=rest[0] if rest else None)
        i += 1
        step_times.append(time.perf_counter() - ts)
        if i == 3 and time_budget_s is not None:
            per = float(np.median(step_times))
            remaining = time_budget_s - (time.perf_counter() - t0)
            total = min(total, i + max(int(remaining / per * 0.92), 0))
        f = terms.as_floats()
        hist["cost"].append(f["total"])
        hist["ma"].append(f["ma_hsi"] + f["ma_msi"])
        hist["de"].append(f["de"])
        if progress is not None:
            progress("train", i, total, f["total"])
        if i % eval_every == 0 or i == total:
            err, _ = consistency_error(net, x, Y, base)
            hist["select"].append(err)
            if err < best_err:
                best_err, best_state, best_step = err, copy.deepcopy(net.state_dict()), i
    net.load_state_dict(best_state)
    _, fused = consistency_error(net, x, Y, base)
    info = {"steps": i, "selected_step": best_step, "selection_l_ma": best_err,
            "train_time_s": time.perf_counter() - t0,
            "step_time_s": float(np.median(step_times)) if step_times else math.nan}
    return SingleSceneResult(fused=fused, net=net, history=hist, info=info)
