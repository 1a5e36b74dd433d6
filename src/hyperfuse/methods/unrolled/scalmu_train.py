"""Training recipe of SCALMU on streamed dead-leaves pairs (``scalmu.md`` §5).

Sample i of a run is a pure function of ``(seed, i)``: a random band grid (31–224 bands
in 400–2500 nm), a random sensor (:class:`~hyperfuse.physics.generators.SensorGenerator`:
ratio 4/8/16/32, Gaussian PSF σ ∈ [0.35 r, 0.65 r], random phase, real or random SRF,
25–60 dB or noise-free), a dead-leaves scene (built-in spectra or the USGS library when
available) and its simulated pair. The validation set uses the held-back seed
``seed + 100_003``. Loss: L1 + λ·SAM, with deep supervision on intermediate layers.
Adam, cosine schedule, gradient clipping; gradients accumulate over ``batch`` samples
(samples have different shapes).

Outputs in ``out_dir``: ``log.csv`` (one row per step), ``checkpoint.pt`` (atomic,
every ``checkpoint_every`` steps; ``resume=True`` continues from it), ``best.safetensors``
and the final ``scalmu.safetensors`` + ``scalmu.json`` (config, generator seed,
validation metrics, SHA-256).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..._atomic import atomic_path
from ...errors import InputError
from ...physics.generators import SensorGenerator, random_wavelengths
from ...physics.sensor import FusionPhysics, simulate
from .nmf import NMFState
from .scalmu import SCALMUArch, SCALMUConfig, SCALMUNet, scalmu_init

__all__ = ["SCALMUTrainConfig", "train_scalmu", "make_sample", "scalmu_loss", "evaluate"]

GENERATOR_VERSION = "scalmu-deadleaves-1"
_LIBRARY = Path(__file__).resolve().parents[4] / ".." / "shared" / "data" / "spectral_libraries" / "usgs1995_aviris224.npz"


@dataclass(frozen=True)
class SCALMUTrainConfig:
    """Training recipe (round-trips to JSON/YAML).

    Parameters
    ----------
    steps : int
        Optimiser steps.
    batch : int
        Samples per step (gradient accumulation).
    lr, weight_decay, clip : float
        Adam learning rate (cosine-decayed to 5 %), weight decay, gradient-norm clip.
    crop : int
        Scene size (at least 4 r so that the LR image has ≥ 4×4 pixels).
    seed : int
        Stream seed; validation uses ``seed + 100_003``.
    n_val : int
        Held-back validation scenes.
    val_every, checkpoint_every : int
        Intervals in steps.
    sam_weight : float
        λ of the SAM term (radians).
    deep_supervision : float
        Weight of the intermediate-layer losses (linearly increasing with depth).
    extra_endmembers : int
        The model's p is the scene's p plus 0 … this many (capped at min(L, n)).
    ratios, ratio_weights : tuple
        Ratio distribution.
    library : str, optional
        Spectral library used for half of the scenes ("auto": the shared USGS file when
        present; "none": built-in spectra only).
    time_budget_s : float, optional
        Stop (and finalise) after this much wall time.
    num_threads : int
        Torch threads.
    arch : dict
        :class:`SCALMUArch` fields.
    init_hs_iters, init_ms_iters : int
        Initialisation iterations during training.
    concentration_range : (float, float), optional
        Draw each scene's Dirichlet leaf concentration log-uniformly from this range (larger
        values give more mixed pixels, as in real 10-30 m scenes); default: the generator's
        0.3 for every scene.
    shading_prob : float
        Probability that a scene's abundances are multiplied by a smooth shading field
        (illumination variation: no longer summing to one).
    inference_p_prob : float
        Probability that a sample uses the p of inference, min(30, L, n) (the default rule
        without the VD term), instead of the scene's p plus ``extra_endmembers``: at
        inference p is almost always 30, far above a scene's number of materials.
    prior_drop_prob : float
        Probability that a training sample runs with the learned prior switched off (the
        step matrices must then work without it, and the prior learns what it adds on top).
        Validation and inference always run with the prior on.
    """

    steps: int = 1500
    batch: int = 4
    lr: float = 3e-3
    weight_decay: float = 0.0
    clip: float = 1.0
    crop: int = 64
    seed: int = 0
    n_val: int = 8
    val_every: int = 100
    checkpoint_every: int = 25
    sam_weight: float = 0.1
    deep_supervision: float = 0.3
    extra_endmembers: int = 6
    ratios: tuple[int, ...] = (4, 8, 16, 32)
    ratio_weights: tuple[float, ...] = (0.35, 0.35, 0.2, 0.1)
    library: str = "auto"
    time_budget_s: float | None = None
    num_threads: int = 1
    arch: dict[str, Any] = dataclasses.field(default_factory=lambda: asdict(SCALMUArch()))
    init_hs_iters: int = 60
    init_ms_iters: int = 20
    concentration_range: tuple[float, float] | None = None
    shading_prob: float = 0.0
    inference_p_prob: float = 0.0
    prior_drop_prob: float = 0.0

    def __post_init__(self) -> None:
        cr = self.concentration_range
        if cr is not None and not (len(cr) == 2 and 0 < cr[0] <= cr[1]):
            raise InputError(f"concentration_range must be (lo, hi) with 0 < lo <= hi, got {cr}")
        for name in ("shading_prob", "inference_p_prob", "prior_drop_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SCALMUTrainConfig:
        """Build from a dict (unknown keys are refused)."""
        names = {f.name for f in dataclasses.fields(cls)}
        bad = set(d) - names
        if bad:
            raise InputError(f"unknown training option(s) {sorted(bad)}; valid: {sorted(names)}")
        kw = dict(d)
        for k in ("ratios", "ratio_weights", "concentration_range"):
            if k in kw and kw[k] is not None:
                kw[k] = tuple(kw[k])
        return cls(**kw)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SCALMUTrainConfig:
        """Read a JSON or YAML file."""
        text = Path(path).read_text()
        if str(path).endswith((".yaml", ".yml")):
            import yaml  # type: ignore[import-untyped]

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
        return cls.from_dict(data)


def _library(cfg: SCALMUTrainConfig) -> str | None:
    if cfg.library == "none":
        return None
    if cfg.library == "auto":
        p = _LIBRARY.resolve()
        return str(p) if p.is_file() else None
    return cfg.library


def make_sample(cfg: SCALMUTrainConfig, seed: int, index: int) -> dict[str, Any]:
    """Training/validation sample ``index`` of stream ``seed`` (pure function of both)."""
    from ...data.synthetic import dead_leaves_scene

    gen = np.random.default_rng([seed, int(index)])
    wl = random_wavelengths(gen)
    sensor = SensorGenerator(ratios=cfg.ratios, ratio_weights=cfg.ratio_weights)(gen, wl)
    r = sensor.ratio
    size = max(cfg.crop, 4 * r)
    p_true = int(gen.integers(3, 11))
    lib = _library(cfg)
    spectra: Any = lib if (lib is not None and gen.random() < 0.5) else "builtin"
    abundance: dict[str, Any] = {}  # drawn only when enabled: the default stream is unchanged
    if cfg.concentration_range is not None:
        lo, hi = cfg.concentration_range
        abundance["concentration"] = float(np.exp(gen.uniform(np.log(lo), np.log(hi))))
    if cfg.shading_prob > 0:
        abundance["sum_to_one"] = bool(gen.random() >= cfg.shading_prob)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            scene = dead_leaves_scene(size, wl, n_endmembers=p_true, spectra=spectra, rng=gen, **abundance)
        except Exception:  # noqa: BLE001 - library without enough valid spectra for this grid
            scene = dead_leaves_scene(size, wl, n_endmembers=p_true, spectra="builtin", rng=gen, **abundance)
    pair = simulate(torch.from_numpy(scene.cube)[None], sensor, rng=gen)
    n = (size // r) ** 2
    p = int(min(p_true + gen.integers(0, cfg.extra_endmembers + 1), wl.size, n))
    if cfg.inference_p_prob > 0 and gen.random() < cfg.inference_p_prob:  # drawn only when enabled
        p = int(min(30, wl.size, n))
    prior_off = cfg.prior_drop_prob > 0 and bool(gen.random() < cfg.prior_drop_prob)  # drawn only when enabled
    return {
        "cube": pair.reference,
        "hsi": pair.hsi.clamp_min(0),
        "msi": pair.msi.clamp_min(0),
        "sensor": sensor,
        "p": p,
        "prior_off": prior_off,
    }


def _sam(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    dot = (x * ref).sum(1)
    nx = x.pow(2).sum(1).clamp_min(1e-12).sqrt()
    nr = ref.pow(2).sum(1).clamp_min(1e-12).sqrt()
    return torch.acos((dot / (nx * nr)).clamp(-1 + 1e-6, 1 - 1e-6)).mean()


def scalmu_loss(x: torch.Tensor, ref: torch.Tensor, sam_weight: float) -> torch.Tensor:
    """L1 (relative to the mean of ``ref``) + λ·SAM (radians)."""
    scale = ref.abs().mean().clamp_min(1e-6)
    return (x - ref).abs().mean() / scale + sam_weight * _sam(x, ref)


def _psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    mse = float((x - ref).double().pow(2).mean())
    peak = float(ref.double().max())
    return 10 * math.log10(peak**2 / max(mse, 1e-20))


def _run(
    net: SCALMUNet, s: dict[str, Any], cfg: SCALMUTrainConfig, *, history: list[NMFState] | None = None
) -> torch.Tensor:
    phys = FusionPhysics(s["sensor"])
    with torch.no_grad():
        st = scalmu_init(s["hsi"], s["msi"], phys, s["p"], hs_iters=cfg.init_hs_iters, ms_iters=cfg.init_ms_iters)
    if not s.get("prior_off"):
        return net(st, s["hsi"], s["msi"], phys, history=history).reconstruct()
    arch = net.arch
    net.set_arch(dataclasses.replace(arch, use_prior=False))
    try:
        return net(st, s["hsi"], s["msi"], phys, history=history).reconstruct()
    finally:
        net.set_arch(arch)


def evaluate(net: SCALMUNet, samples: list[dict[str, Any]], cfg: SCALMUTrainConfig) -> dict[str, float]:
    """Mean PSNR / SAM (degrees) / loss of ``net`` and of its neutral twin on ``samples``."""
    neutral = SCALMUNet(net.arch)
    neutral.neutralise()
    out: dict[str, list[float]] = {"psnr": [], "sam": [], "loss": [], "psnr_neutral": [], "sam_neutral": []}
    with torch.no_grad():
        for s in samples:
            for tag, m in (("", net), ("_neutral", neutral)):
                x = _run(m, {**s, "prior_off": False}, cfg)  # inference: prior on
                out["psnr" + tag].append(_psnr(x, s["cube"]))
                out["sam" + tag].append(float(_sam(x, s["cube"])) * 180 / math.pi)
                if not tag:
                    out["loss"].append(float(scalmu_loss(x, s["cube"], cfg.sam_weight)))
    res = {k: float(np.mean(v)) for k, v in out.items()}
    res["psnr_gain"] = res["psnr"] - res["psnr_neutral"]
    return res


_FIELDS = ["step", "time_s", "loss", "grad_norm", "lr", "val_psnr", "val_sam", "val_gain"]


def train_scalmu(
    config: SCALMUTrainConfig | str | os.PathLike[str] | None = None,
    *,
    out_dir: str | os.PathLike[str],
    resume: bool = False,
    progress: Callable[[str, int, int, float], None] | None = None,
) -> Path:
    """Train SCALMU; returns the path of the final ``scalmu.safetensors``.

    Parameters
    ----------
    config : SCALMUTrainConfig, path to a JSON/YAML file, or None (defaults)
    out_dir : path
        Output folder (created).
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` (its saved config wins).
    progress : callable, optional
        ``progress("train", step, steps, loss)`` after every step and
        ``progress("val", step, steps, val_psnr)`` after every validation.

    Returns
    -------
    Path
    """
    from ...weights import save_weights

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    if config is None:
        cfg = SCALMUTrainConfig()
    elif isinstance(config, SCALMUTrainConfig):
        cfg = config
    else:
        cfg = SCALMUTrainConfig.load(config)
    ckpt = None
    if resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        cfg = SCALMUTrainConfig.from_dict(ckpt["config"])
    torch.set_num_threads(int(cfg.num_threads))
    arch = SCALMUArch(**cfg.arch)
    torch.manual_seed(cfg.seed)  # parameter initialisation only (local generator below)
    net = SCALMUNet(arch)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        t = min(step / max(cfg.steps, 1), 1.0)
        return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))

    step = 0
    best = -math.inf
    elapsed0 = 0.0
    val_hist: list[dict[str, Any]] = []
    if ckpt is not None:
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step = int(ckpt["step"])
        best = float(ckpt["best"])
        elapsed0 = float(ckpt["elapsed"])
        val_hist = list(ckpt["val"])
    # CSV: keep rows up to the checkpointed step (a killed run may have logged more).
    log_path = out / "log.csv"
    rows: list[dict[str, str]] = []
    if ckpt is not None and log_path.is_file():
        with open(log_path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    with atomic_path(log_path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=_FIELDS)
            w.writeheader()
            w.writerows(rows)
    val_seed = cfg.seed + 100_003
    val = [make_sample(cfg, val_seed, i) for i in range(cfg.n_val)]

    def save_ckpt() -> None:
        with atomic_path(ckpt_path) as tmp:
            torch.save(
                {
                    "config": _jsonable(asdict(cfg)),
                    "model": net.state_dict(),
                    "optimizer": opt.state_dict(),
                    "step": step,
                    "best": best,
                    "elapsed": elapsed0 + time.perf_counter() - t_start,
                    "val": val_hist,
                },
                tmp,
            )

    t_start = time.perf_counter()
    logf = open(log_path, "a", newline="")  # noqa: SIM115 - kept open for the run
    writer = csv.DictWriter(logf, fieldnames=_FIELDS)
    try:
        while step < cfg.steps:
            if cfg.time_budget_s is not None and elapsed0 + time.perf_counter() - t_start > cfg.time_budget_s:
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            opt.zero_grad(set_to_none=True)
            tot = 0.0
            for j in range(cfg.batch):
                s = make_sample(cfg, cfg.seed, step * cfg.batch + j)
                hist: list[NMFState] = []
                x = _run(net, s, cfg, history=hist)
                loss = scalmu_loss(x, s["cube"], cfg.sam_weight)
                K = len(hist)
                if cfg.deep_supervision > 0 and K > 1:
                    for k, st in enumerate(hist[:-1]):
                        loss = loss + cfg.deep_supervision * (k + 1) / K * scalmu_loss(
                            st.reconstruct(), s["cube"], cfg.sam_weight
                        ) / (K - 1)
                if not torch.isfinite(loss):
                    continue
                (loss / cfg.batch).backward()
                tot += float(loss.detach()) / cfg.batch
            gn = float(torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip))
            if math.isfinite(gn):
                opt.step()
            step += 1
            row: dict[str, Any] = {
                "step": step,
                "time_s": round(elapsed0 + time.perf_counter() - t_start, 2),
                "loss": tot,
                "grad_norm": gn,
                "lr": lr_at(step - 1),
            }
            if progress is not None:
                progress("train", step, cfg.steps, tot)
            if step % cfg.val_every == 0 or step == cfg.steps:
                m = evaluate(net, val, cfg)
                row.update(val_psnr=m["psnr"], val_sam=m["sam"], val_gain=m["psnr_gain"])
                val_hist.append({"step": step, **m})
                if m["psnr"] > best:
                    best = m["psnr"]
                    save_weights(out / "best.safetensors", net.state_dict(), _meta(cfg, arch, m, step))
                if progress is not None:
                    progress("val", step, cfg.steps, m["psnr"])
            writer.writerow(row)
            logf.flush()
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save_ckpt()
        save_ckpt()
    finally:
        logf.close()
    # Final record: the best validated state (or the last one if never validated).
    m = evaluate(net, val, cfg)
    final_state = net.state_dict()
    chosen_step = step
    if (out / "best.safetensors").is_file() and best > m["psnr"]:
        from ...weights import load_weights

        final_state, bm = load_weights(out / "best.safetensors", expected_method="scalmu")
        m = bm["validation"]
        chosen_step = bm["step"]
    else:
        val_hist.append({"step": step, **m})
    meta = _meta(cfg, arch, m, chosen_step)
    meta["training"]["wall_time_s"] = elapsed0 + time.perf_counter() - t_start
    meta["training"]["steps_done"] = step
    meta["validation_history"] = val_hist
    return save_weights(out / "scalmu.safetensors", final_state, meta)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _meta(cfg: SCALMUTrainConfig, arch: SCALMUArch, metrics: dict[str, float], step: int) -> dict[str, Any]:
    return {
        "method": "scalmu",
        "format": 1,
        "arch": asdict(arch),
        "step": step,
        "inference_defaults": {
            "init_hs_iters": SCALMUConfig().init_hs_iters,
            "init_ms_iters": SCALMUConfig().init_ms_iters,
        },
        "training": {
            "config": _jsonable(asdict(cfg)),
            "generator": GENERATOR_VERSION,
            "generator_seed": cfg.seed,
            "validation_seed": cfg.seed + 100_003,
            "library": _library(cfg),
        },
        "sensor_family": {
            "ratios": list(cfg.ratios),
            "bands": [31, 224],
            "wavelength_range_nm": [400, 2500],
            "srf": "sentinel-2a, landsat-8, nikon-5100, cie1931 (coverage >= 0.9) or 3-10 random Gaussian/flat-top bands",
            "psf": "Gaussian sigma in [0.35 r, 0.65 r], random phase",
            "snr_db": [25, 60],
        },
        "validation": metrics,
    }
