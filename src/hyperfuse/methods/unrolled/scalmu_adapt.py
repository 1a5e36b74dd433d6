"""Scene adaptation of SCALMU (``scalmu.md`` §5, "Scene adaptation").

The input scene is unmixed by SCALMU's own initialisation (VCA + HS unmixing). Dead-leaves
scenes are then painted whose leaf spectra are randomly perturbed copies of the scene's
*unmixed* LR pixels (E a_h for randomly chosen LR pixels, i.e. leaf abundances sampled
from the scene's LR abundances), simulated with the scene's own sensor (SRF, PSF, ratio,
phase), and a copy of the network is fine-tuned on them for a few hundred steps within a
wall-time budget. Two further scene-derived scenes are held out; the returned network is the
best on them, the unadapted one included. No ground truth of the scene is used.

Options (``SCALMUConfig``): ``adapt_data="held_out_bands"`` trains on the scene itself instead,
by MSI band cross-validation (each step fuses without one MSI band and fits the prediction of
that band, :func:`~hyperfuse.methods.unrolled.scalmu.held_out_loss`);
``adapt_select="held_out_bands"`` keeps the step whose fusion best predicts the held-out bands
of the scene (:func:`~hyperfuse.methods.unrolled.scalmu.held_out_snr`) instead of the best on
held-out dead leaves.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from typing import Any

import numpy as np
import torch

from ...physics.sensor import FusionPhysics, simulate
from .nmf import NMFState
from .scalmu import (
    SCALMU,
    ProgressFn,
    SCALMUConfig,
    SCALMUNet,
    held_out_bands,
    held_out_loss,
    held_out_snr,
    scalmu_init,
)

__all__ = ["adapt_to_scene"]


def _scene_spectra_pool(state: NMFState, b: int, gen: np.random.Generator, k: int) -> np.ndarray:
    E = state.endmembers[b].double()
    Ah = state.abundances_lr[b].double()  # type: ignore[index]
    p, h, w = Ah.shape
    X = (E @ Ah.reshape(p, -1)).cpu().numpy()  # (L, n) unmixed LR pixels
    idx = gen.choice(X.shape[1], size=min(k, X.shape[1]), replace=False)
    return X[:, idx]


def adapt_to_scene(
    method: SCALMU,
    hsi: torch.Tensor,
    msi: torch.Tensor,
    physics: FusionPhysics,
    state: NMFState,
    *,
    progress: ProgressFn | None = None,
    seed: int = 0,
    n_val: int = 2,
    val_every: int = 10,
) -> tuple[SCALMUNet, dict[str, Any]]:
    """Fine-tune a copy of ``method.net`` on synthetic scenes built from the input scene (or,
    with ``adapt_data="held_out_bands"``, on the scene's own held-out MSI bands).

    Parameters
    ----------
    method : SCALMU
        Provides the network and the configuration (``adapt_budget_s``, ``adapt_steps``,
        ``adapt_lr``, ``adapt_data``, ``adapt_select``, initialisation iterations).
    hsi, msi : Tensor
        The input pair (only the first batch item is used to build the scenes).
    physics : FusionPhysics
        The scene's sensor.
    state : NMFState
        The scene's initialisation (its unmixing).
    progress : callable, optional
        ``progress("adapt", step, max_steps, loss)``.
    seed : int
        Randomness of the synthetic scenes.
    n_val, val_every : int
        Held-out scene-derived synthetic samples (``adapt_select="synthetic"``) and the
        validation interval; the returned network is the best on the selection data (step 0 =
        the unadapted network included).

    Returns
    -------
    net : SCALMUNet
        The adapted copy (``method.net`` is unchanged).
    record : dict
        ``data``, ``select``, ``steps``, ``loss_first``, ``loss_last``, ``size``,
        ``val_loss_before``, ``val_loss_best`` (the held-out-band selection's loss is minus the
        mean held-out SNR in dB), ``best_step`` (0: adaptation rejected); ``skipped`` when the
        held-out-band modes had fewer than two MSI bands.
    """
    from ...data.synthetic import dead_leaves_scene
    from .scalmu_train import scalmu_loss

    cfg: SCALMUConfig = method.config
    net = copy.deepcopy(method.net)
    for lay in net.layers:
        lay.chunk = None  # type: ignore[assignment]
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.adapt_lr)
    r = physics.ratio
    size = max(64, 4 * r)
    L = hsi.shape[1]
    p = state.n_endmembers
    n_syn = (size // r) ** 2
    p_syn = int(min(p, L, n_syn))
    spec = physics.spec
    gen = np.random.default_rng([seed, 7])
    pool = _scene_spectra_pool(state, 0, gen, max(3 * p, 12))
    scale = max(float(pool.max()) / 0.9, 1e-12)
    pool = np.clip(pool / scale, 0.011, 0.94)
    wl = np.linspace(400.0, 2500.0, L)  # placeholder grid: the spectra are given
    def sample(key: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, FusionPhysics, NMFState]:
        g = np.random.default_rng([seed, key])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scene = dead_leaves_scene(size, wl, n_endmembers=p_syn, spectra=pool, rng=g)
        snr_h = spec.snr_hsi if spec.snr_hsi is not None else float(g.uniform(30, 50))
        snr_m = spec.snr_msi if spec.snr_msi is not None else float(g.uniform(30, 50))
        s2 = spec.replace(snr_hsi=snr_h, snr_msi=snr_m)
        pair = simulate(torch.from_numpy(scene.cube * scale).float()[None], s2, rng=g)
        ph = FusionPhysics(s2)
        yh, ym = pair.hsi.clamp_min(0), pair.msi.clamp_min(0)
        with torch.no_grad():
            st = scalmu_init(yh, ym, ph, p_syn, hs_iters=cfg.init_hs_iters, ms_iters=cfg.init_ms_iters)
        return pair.reference, yh, ym, ph, st

    uses_bands = "held_out_bands" in (cfg.adapt_data, cfg.adapt_select)
    folds = held_out_bands(method, hsi, msi, physics, p) if uses_bands else []
    if uses_bands and not folds:
        warnings.warn("SCALMU adaptation on held-out MSI bands needs >= 2 MSI bands; not adapted",
                      UserWarning, stacklevel=3)
        return copy.deepcopy(method.net), {"steps": 0, "best_step": 0, "skipped": "one MSI band"}
    # Keep the best state (the shipped one included), so adaptation never ends worse than the
    # shipped model on its selection data: held-out scene-derived dead leaves, or the scene's
    # own held-out MSI bands.
    if cfg.adapt_select == "held_out_bands":
        def val_loss() -> float:
            return -held_out_snr(net, folds)
    else:
        val = [sample(10**6 + i) for i in range(n_val)]

        def val_loss() -> float:
            with torch.no_grad():
                return float(np.mean([float(scalmu_loss(net(st, yh, ym, ph).reconstruct(), ref, 0.1))
                                      for ref, yh, ym, ph, st in val]))

    best = val_loss()
    best_state = copy.deepcopy(net.state_dict())
    best_step = 0
    val0 = best
    losses: list[float] = []
    t0 = time.perf_counter()
    step = 0
    while step < cfg.adapt_steps and time.perf_counter() - t0 < cfg.adapt_budget_s:
        with torch.enable_grad():
            if cfg.adapt_data == "held_out_bands":
                loss = held_out_loss(net, folds[step % len(folds)])
            else:
                ref, yh, ym, ph, st = sample(step)
                loss = scalmu_loss(net(st, yh, ym, ph).reconstruct(), ref, 0.1)
            opt.zero_grad(set_to_none=True)
            if torch.isfinite(loss):
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
        lv = float(loss.detach())
        losses.append(lv)
        step += 1
        if progress is not None:
            progress("adapt", step, cfg.adapt_steps, lv)
        if step % val_every == 0:
            v = val_loss()
            if v < best:
                best, best_step = v, step
                best_state = copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    net.eval()
    for p_ in net.parameters():
        p_.requires_grad_(False)
    rec = {
        "data": cfg.adapt_data,
        "select": cfg.adapt_select,
        "steps": step,
        "size": size,
        "loss_first": losses[0] if losses else math.nan,
        "loss_last": float(np.mean(losses[-10:])) if losses else math.nan,
        "val_loss_before": val0,
        "val_loss_best": best,
        "best_step": best_step,
    }
    return net, rec
