"""Dataset mode: train MossFuse on many unlabeled (LR-HSI, HR-MSI) pairs (``mossfuse.md`` §8).

The data loader reads only the two inputs of each pair; there is no HR-HSI argument
anywhere. Checkpoints are atomic; a killed run resumes from its last checkpoint.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..._validation import check_pair, to_internal
from ...errors import InputError, WeightsError
from ...types import SensorSpec
from .checkpoint import load_weights, save_weights
from .method import MossFuseConfig, net_config_record, network_from_record, set_geometry
from .network import MossFuseNet, geometry_of
from .training import (
    ProgressFn,
    consistency_error,
    dihedral,
    dihedral_offset,
    make_optimizer,
    train_step,
)

__all__ = ["train_mossfuse", "load_pairs"]

LOG_FIELDS = ["step", "epoch", "lr", "total", "sc", "sct_msi", "sct_hsi", "sct_lr_x", "sct_lr_y",
              "ma_hsi", "ma_msi", "de", "select_l_ma", "time_s"]


def load_pairs(
    hsi_paths: Sequence[str | os.PathLike[str]], msi_paths: Sequence[str | os.PathLike[str]], ratio: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Read (LR-HSI, HR-MSI) pairs with :func:`hyperfuse.io.read`; no ground truth is read."""
    from ...io import read

    if len(hsi_paths) != len(msi_paths) or not hsi_paths:
        raise InputError(f"need as many HSI as MSI files (got {len(hsi_paths)} and {len(msi_paths)})")
    pairs = []
    for hp, mp in zip(hsi_paths, msi_paths, strict=True):
        h = to_internal(read(hp)[0], name=str(hp))
        m = to_internal(read(mp)[0], name=str(mp))
        check_pair(h, m, ratio)
        pairs.append((h, m))
    return pairs


def _grid(n: int, p: int, stride: int) -> list[int]:
    if n <= p:
        return [0]
    out = list(range(0, n - p + 1, stride))
    if out[-1] != n - p:
        out.append(n - p)
    return out


def _patch_index(pairs: list[tuple[torch.Tensor, torch.Tensor]], r: int, patch: int) -> list[tuple[int, int, int]]:
    """(pair, row, col) LR origins of a grid of HR patches P = r·⌈patch/r⌉, stride ≈ P/2."""
    p_lr = max(1, math.ceil(patch / r))
    stride = max(1, round(p_lr / 2))
    idx = []
    for n, (h, _) in enumerate(pairs):
        for i in _grid(h.shape[-2], p_lr, stride):
            for j in _grid(h.shape[-1], p_lr, stride):
                idx.append((n, i, j))
    return idx


def _state_tensors(net: MossFuseNet, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {f"model/{k}": v for k, v in net.state_dict().items()}
    sd = opt.state_dict()
    for pid, st in sd["state"].items():
        for name, t in st.items():
            tensors[f"optim/{pid}/{name}"] = torch.as_tensor(t)
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups}


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim/"):
            _, pid, name = k.split("/", 2)
            state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": groups})


def train_mossfuse(
    hsi_paths: Sequence[str | os.PathLike[str]],
    msi_paths: Sequence[str | os.PathLike[str]],
    *,
    config: MossFuseConfig | None = None,
    out_dir: str | os.PathLike[str],
    resume: bool = False,
    ratio: int,
    sensor_init: SensorSpec | None = None,
    progress: ProgressFn | None = None,
    epochs: int | None = None,
    checkpoint_every: int = 100,
    held_out: int | None = None,
) -> Path:
    """Train MossFuse on unlabeled pairs; return the path of the selected weights.

    Parameters
    ----------
    hsi_paths, msi_paths : sequence of path
        LR-HSI and HR-MSI files (any format :func:`hyperfuse.io.read` knows), paired by order.
    config : MossFuseConfig, optional
        Network, loss and optimiser settings (``steps`` is the total iteration count unless
        ``epochs`` is given; ``scale`` defaults to the maximum over all inputs, recorded).
    out_dir : path
        Receives ``last.safetensors`` (model + optimiser + position, for resuming),
        ``best.safetensors`` (lowest held-out L_MA; inference weights) and ``log.csv``.
    resume : bool
        Continue from ``out_dir/last.safetensors``.
    ratio : int
        Resolution ratio r.
    sensor_init : SensorSpec, optional
        Initial SRF (and PSF width from ``info["psf_sigma"]``) of BlindNet.
    progress : callable, optional
        ``progress("train", step, total, cost)`` after every step.
    epochs : int, optional
        Number of passes over the patch grid (overrides ``config.steps``).
    checkpoint_every : int
        Steps between checkpoints (and held-out evaluations).
    held_out : int, optional
        Pairs kept out of training for model selection; default 1 when there are ≥ 3 pairs,
        else 0 (selection on the training pairs).

    Returns
    -------
    Path
        ``out_dir/best.safetensors``.
    """
    c = config or MossFuseConfig(geometry="block_centred", init_output="none", init_sensor="delta")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs = load_pairs(hsi_paths, msi_paths, ratio)
    L, l = pairs[0][0].shape[1], pairs[0][1].shape[1]
    for h, m in pairs:
        if h.shape[1] != L or m.shape[1] != l:
            raise InputError("every pair must have the same band counts")
    n_hold = held_out if held_out is not None else (1 if len(pairs) >= 3 else 0)
    train_pairs, sel_pairs = (pairs[:-n_hold], pairs[-n_hold:]) if n_hold else (pairs, pairs)
    scale = float(c.scale) if c.scale is not None else max(
        1.0, max(max(float(h.max()), float(m.max())) for h, m in pairs))
    train_pairs = [(h / scale, m / scale) for h, m in train_pairs]
    sel_pairs = [(h / scale, m / scale) for h, m in sel_pairs]
    geom = geometry_of(ratio, "block_centred" if c.geometry == "auto" else c.geometry, c.psf_size)
    torch.manual_seed(c.seed)
    net = MossFuseNet(L, l, ratio, dim=c.dim, n_blocks=c.n_blocks, psf_size=geom.size,
                      reference_layout=c.reference_layout)
    set_geometry(net, geom)
    if sensor_init is not None:
        sig = sensor_init.info.get("psf_sigma")
        sig = float(np.mean(sig)) if sig is not None else None
        net.blind.set_estimate(sensor_init.srf, sig)
    opt = make_optimizer(net, c.lr, c.blind_lr)
    index = _patch_index(train_pairs, ratio, max(c.patch_size, ratio))
    per_epoch = max(1, len(index) // c.batch_size)
    total = epochs * per_epoch if epochs is not None else int(c.steps)
    step, best = 0, math.inf
    last, best_path, log_path = out / "last.safetensors", out / "best.safetensors", out / "log.csv"
    net_rec = net_config_record(net, c.dim, c.n_blocks, c.reference_layout)
    if resume and last.exists():
        tensors, meta = load_weights(last)
        if meta.get("network") != net_rec:
            raise WeightsError(f"{last}: checkpoint network {meta.get('network')} differs from {net_rec}")
        net = network_from_record(meta["network"])
        net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
        opt = make_optimizer(net, c.lr, c.blind_lr)
        _restore_optimizer(opt, tensors, meta["optimizer"]["param_groups"])
        step, best, total = int(meta["step"]), float(meta["best"]), int(meta["total"])
    elif log_path.exists():
        log_path.unlink()
    lr0 = [c.lr, c.lr if c.blind_lr is None else c.blind_lr]
    weights = c.loss_weights()
    p_lr = max(1, math.ceil(max(c.patch_size, ratio) / ratio))
    t0 = time.perf_counter()

    def record(kind: str) -> dict[str, Any]:
        return {"method": "mossfuse", "kind": kind, "network": net_rec, "config": asdict(c),
                "step": step, "total": total, "best": best, "scale": scale, "ratio": ratio}

    while step < total:
        epoch = step // per_epoch
        order = np.random.default_rng([c.seed, epoch]).permutation(len(index))  # shuffled, resumable
        b0 = (step % per_epoch) * c.batch_size
        batch = [index[order[(b0 + q) % len(index)]] for q in range(c.batch_size)]
        aug = np.random.default_rng([c.seed, 1, step])
        xs, Ys, offs, trs = [], [], [], []
        for n, i, j in batch:
            h, m = train_pairs[n]
            ph, pw = min(p_lr, h.shape[-2]), min(p_lr, h.shape[-1])
            k, f = (int(aug.integers(0, 4)), bool(aug.integers(0, 2))) if c.augment else (0, False)
            xs.append(dihedral(h[..., i : i + ph, j : j + pw], k, f))
            Ys.append(dihedral(m[..., i * ratio : (i + ph) * ratio, j * ratio : (j + pw) * ratio], k, f))
            offs.append(dihedral_offset(net.geometry, k, f))
            trs.append((k, f))
        if len({tuple(t.shape) for t in xs}) > 1:  # pairs of different sizes: one item per step
            xs, Ys, offs, trs = xs[:1], Ys[:1], offs[:1], trs[:1]
        frac = step / max(total, 1)
        for g, l0 in zip(opt.param_groups, lr0, strict=True):
            g["lr"] = c.lr_min + 0.5 * (l0 - c.lr_min) * (1 + math.cos(math.pi * frac))
        terms = train_step(net, opt, torch.cat(xs), torch.cat(Ys), weights=weights, offsets=offs,
                           transforms=trs if c.augment else None)
        step += 1
        f = terms.as_floats()
        if progress is not None:
            progress("train", step, total, f["total"])
        row = {"step": step, "epoch": epoch, "lr": opt.param_groups[0]["lr"], **f, "select_l_ma": "",
               "time_s": round(time.perf_counter() - t0, 3)}
        if step % checkpoint_every == 0 or step == total:
            sel = float(np.mean([consistency_error(net, h, m)[0] for h, m in sel_pairs]))
            row["select_l_ma"] = sel
            if sel < best:
                best = sel
                save_weights(best_path, {f"model/{k}": v for k, v in net.state_dict().items()},
                             record("best"))
            tensors, opt_meta = _state_tensors(net, opt)
            save_weights(last, tensors, {**record("last"), "optimizer": opt_meta})
        new = not log_path.exists()
        with open(log_path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=LOG_FIELDS, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
    if not best_path.exists():
        save_weights(best_path, {f"model/{k}": v for k, v in net.state_dict().items()}, record("best"))
    return best_path
