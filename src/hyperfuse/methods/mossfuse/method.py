"""The registered ``mossfuse`` fusion method: single-scene fitting or inference from weights."""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch

from ...errors import WeightsError
from ...physics.functional import upsample
from ...physics.sensor import FusionPhysics, make_sensor
from ...types import FusionResult, SensorSpec
from ..base import FusionMethod
from ..registry import register_method
from .checkpoint import load_weights
from .losses import LossWeights
from .network import Geometry, MossFuseNet, geometry_of, parameter_formula
from .training import (
    ProgressFn,
    candidate_geometries,
    classical_sensor_init,
    fit_blind,
    fit_single_scene,
)

__all__ = ["MossFuseConfig", "MossFuse", "network_from_record", "net_config_record", "sensor_spec_of"]


@dataclass(frozen=True)
class MossFuseConfig:
    """Options of :class:`MossFuse` (``mossfuse.md``; single-scene defaults are project choices).

    Parameters
    ----------
    dim, n_blocks : int
        Feature width C (divisible by 8) and blocks per stage N.
    geometry : {"auto", "block_centred", "mossfuse"}
        D_k geometry. ``"auto"`` (single-scene) picks, among the block-centred geometry and
        the two half-pixel-shifted ones, the best fit of the classical sensor estimate.
    psf_size : int, optional
        Override K.
    reference_layout : bool, default True
        Keep the reference's two unused 1×1 convs (585,485 parameters at the default).
    init_sensor : {"classical", "delta"}
        BlindNet start: ``"classical"`` = NNLS SRF + Gaussian σ grid search, then
        ``blind_steps`` Adam steps on L_DE; ``"delta"`` = the reference start (uniform SRF,
        σ = 0.2 px), trained only during the main loop.
    init_output : {"cnmf", "bicubic", "none"}
        Output initialisation: the network's D_HR output is added to a base image (CNMF run
        with the estimated sensor, or bicubic upsampling), with the last head conv zeroed so
        training starts from the base. ``"none"`` is the reference behaviour.
    steps : int
        Iteration cap of single-scene mode.
    time_budget_s : float, optional
        Wall-clock budget of single-scene mode (blind-head fit + training), seconds.
    patch_size, batch_size : int
        HR patch size (rounded down to a multiple of r; the whole scene if smaller) and batch.
    lr, lr_min, blind_lr : float
        Adam learning rate (cosine-annealed per step to ``lr_min``); BlindNet group rate
        (``None``: same as ``lr``).
    lambda_sc, lambda_sct, lambda_ma, lambda_de : float
        Loss weights (``mossfuse.md`` §7).
    augment : bool
        Dihedral augmentation with tracked sampling offsets.
    eval_every : int
        Steps between no-reference selection evaluations (full-image L_MA).
    blind_steps, blind_lr_init : int, float
        Adam steps / rate of the BlindNet warm-up on L_DE (``init_sensor="classical"``).
    weights : str, optional
        Path of a trained checkpoint (``train_mossfuse`` output): inference only.
    scale : float, optional
        Divisor bringing the inputs to [0, 1]; default: the larger of 1 and the inputs' maximum.
    seed : int
        Patch sampling and initialisation seed.
    num_threads : int, optional
        Torch threads during the call (restored afterwards). ``None``: one thread when the
        1-minute load average exceeds the core count (oversubscribed OpenMP threads were
        5–10× slower on a shared 2-core machine), else unchanged.
    channels_last : bool
        Run inference in channels-last memory format.
    """

    dim: int = 48
    n_blocks: int = 1
    geometry: Literal["auto", "block_centred", "mossfuse"] = "auto"
    psf_size: int | None = None
    reference_layout: bool = True
    init_sensor: Literal["classical", "delta"] = "classical"
    init_output: Literal["cnmf", "bicubic", "none"] = "cnmf"
    steps: int = 10000
    time_budget_s: float | None = 120.0
    patch_size: int = 64
    batch_size: int = 2
    lr: float = 2e-4
    lr_min: float = 1e-6
    blind_lr: float | None = None
    lambda_sc: float = 0.1
    lambda_sct: float = 1.0
    lambda_ma: float = 1.0
    lambda_de: float = 1.0
    augment: bool = True
    eval_every: int = 25
    blind_steps: int = 150
    blind_lr_init: float = 2e-2
    weights: str | None = None
    scale: float | None = None
    seed: int = 0
    num_threads: int | None = None
    channels_last: bool = True

    def loss_weights(self) -> LossWeights:
        s, m = self.lambda_sct, self.lambda_ma
        return LossWeights(sc=self.lambda_sc, sct_msi=s, sct_hsi=s, sct_lr_x=s, sct_lr_y=s,
                           ma_hsi=m, ma_msi=m, de=self.lambda_de)


def net_config_record(net: MossFuseNet, dim: int, n_blocks: int, reference_layout: bool) -> dict[str, Any]:
    """JSON record of everything needed to rebuild ``net``."""
    g = net.geometry
    return {"hs_bands": net.hs_bands, "ms_bands": net.ms_bands, "ratio": net.ratio, "dim": dim,
            "n_blocks": n_blocks, "psf_size": g.size, "offset": g.offset,
            "reference_layout": reference_layout, "learn_psf_shift": net.blind.psf_shift is not None}


def network_from_record(rec: dict[str, Any]) -> MossFuseNet:
    """Rebuild a network from :func:`net_config_record` output."""
    net = MossFuseNet(rec["hs_bands"], rec["ms_bands"], rec["ratio"], dim=rec["dim"],
                      n_blocks=rec["n_blocks"], psf_size=rec["psf_size"],
                      reference_layout=rec["reference_layout"], learn_psf_shift=rec["learn_psf_shift"])
    set_geometry(net, Geometry(rec["ratio"], rec["psf_size"], rec["offset"]))
    return net


def set_geometry(net: MossFuseNet, g: Geometry) -> None:
    net.geometry = g
    net.blind.geometry = g


def sensor_spec_of(net: MossFuseNet, info: dict[str, Any] | None = None) -> SensorSpec:
    """The estimated sensor (ratio, PSF, SRF, offset) as a :class:`SensorSpec`."""
    with torch.no_grad():
        R = net.blind.srf().double().cpu().numpy()
        k = net.blind.psf().double().cpu().numpy()
    sy, sx = net.blind.sigma()
    g = net.geometry
    meta = {"estimated_by": "mossfuse", "psf_kind": "gaussian_estimated", "psf_sigma": [sy, sx],
            "psf_size": g.size, "phase": g.offset}
    meta.update(info or {})
    return SensorSpec(ratio=net.ratio, psf=k, srf=R, offset=(g.offset, g.offset), boundary="reflect",
                      info=meta)


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    if n is None:
        try:
            busy = os.getloadavg()[0] > (os.cpu_count() or 1)
        except OSError:  # pragma: no cover - platform without load average
            busy = False
        if not busy:
            yield
            return
        n = 1
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


@register_method("mossfuse", config=MossFuseConfig)
class MossFuse(FusionMethod):
    """MossFuse: self-supervised modality-decoupled fusion with a blind PSF/SRF head.

    Without ``weights`` the network is fitted on the given pair (single-scene mode, time- or
    step-boxed); with ``weights`` a trained checkpoint runs the fusion path only. The
    estimated sensor is returned in ``FusionResult.sensor_estimate``.

    Examples
    --------
    >>> MossFuse().parameter_count()
    585485
    """

    description = "MossFuse (self-supervised modality decoupling, blind PSF/SRF; learned)"
    blind = True
    trainable = True
    needs_srf = False
    needs_grad = True

    def __init__(self, config: MossFuseConfig | None = None) -> None:
        super().__init__(config or MossFuseConfig())
        self.progress: ProgressFn | None = None
        self.net: MossFuseNet | None = None

    def parameter_count(self) -> int:
        """Trainable parameters of the default configuration (L = 31, l = 3, r = 32)."""
        c = self.config
        return parameter_formula(31, 3, c.dim, c.n_blocks, c.reference_layout)["total"]

    def _report(self, stage: str, i: int, total: int, cost: float) -> None:
        if self.progress is not None:
            self.progress(stage, i, total, cost)

    def _fuse(self, hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics | None) -> FusionResult:
        c: MossFuseConfig = self.config
        with _threads(c.num_threads):
            outs, infos, hists = [], [], []
            spec = None
            for b in range(hsi.shape[0]):
                x, Y = hsi[b : b + 1].float(), msi[b : b + 1].float()
                if c.weights is not None:
                    cube, spec, info, hist = self._infer(x, Y)
                else:
                    cube, spec, info, hist = self._single_scene(x, Y, physics)
                outs.append(cube.to(hsi.dtype))
                infos.append(info)
                hists.append(hist)
        info = infos[0] if len(infos) == 1 else {"items": infos}
        return FusionResult(cube=torch.cat(outs), sensor_estimate=spec, history=hists[0], info=info)

    def _scale(self, x: torch.Tensor, Y: torch.Tensor) -> float:
        if self.config.scale is not None:
            return float(self.config.scale)
        return max(1.0, float(x.max()), float(Y.max()))

    def _infer(self, x: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, SensorSpec, dict[str, Any], dict[str, list[float]]]:
        tensors, meta = load_weights(self.config.weights)  # type: ignore[arg-type]
        rec = meta.get("network")
        if not isinstance(rec, dict):
            raise WeightsError(f"{self.config.weights}: metadata has no network record")
        want = (rec["hs_bands"], rec["ms_bands"], rec["ratio"])
        have = (x.shape[1], Y.shape[1], Y.shape[-1] // x.shape[-1])
        if want != have:
            raise WeightsError(
                f"{self.config.weights}: trained for (L, l, r) = {want} but the pair has {have}; "
                "use weights trained for this sensor or fit in single-scene mode (no --weights)"
            )
        net = network_from_record(rec)
        state = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise WeightsError(f"{self.config.weights}: tensors do not match the network ({exc})") from None
        s = float(meta.get("scale", 1.0))
        t0 = time.perf_counter()
        fused = fusion_path(net, x / s, Y / s, channels_last=self.config.channels_last)
        self.net = net
        self._report("infer", 1, 1, math.nan)
        info = {"mode": "weights", "weights": str(self.config.weights), "scale": s,
                "inference_time_s": time.perf_counter() - t0, "trained_step": meta.get("step")}
        return fused * s, sensor_spec_of(net), info, {}

    def _single_scene(
        self, x: torch.Tensor, Y: torch.Tensor, physics: FusionPhysics | None
    ) -> tuple[torch.Tensor, SensorSpec, dict[str, Any], dict[str, list[float]]]:
        c: MossFuseConfig = self.config
        t0 = time.perf_counter()
        torch.manual_seed(c.seed)
        s = self._scale(x, Y)
        x, Y = x / s, Y / s
        r = Y.shape[-1] // x.shape[-1]
        L, l = x.shape[1], Y.shape[1]
        info: dict[str, Any] = {"mode": "single_scene", "scale": s}
        # 1. geometry and blind head
        if c.geometry == "auto":
            cands = candidate_geometries(r)
            if c.psf_size is not None:
                cands = [Geometry(r, c.psf_size, g.offset) for g in cands[:1]]
        else:
            cands = [geometry_of(r, c.geometry, c.psf_size)]
        net = MossFuseNet(L, l, r, dim=c.dim, n_blocks=c.n_blocks, psf_size=cands[0].size,
                          reference_layout=c.reference_layout)
        if c.init_sensor == "classical":
            g, R0, sigma0, rec = classical_sensor_init(x, Y, cands)
            set_geometry(net, g)
            net.blind.set_estimate(R0, sigma0)
            info["classical_init"] = {"psf_size": g.size, "offset": g.offset, "sigma": sigma0,
                                      "fit_error": rec["fit_error"]}
            fit_blind(net.blind, x, Y, steps=c.blind_steps, lr=c.blind_lr_init, progress=self.progress)
        else:
            set_geometry(net, cands[0])
        # 2. output initialisation
        base = None
        if c.init_output != "none":
            base = self._base(x, Y, net, c.init_output)
            with torch.no_grad():
                net.dec_hr.head.conv2.weight.zero_()
        info["init_output"] = c.init_output
        budget = None if c.time_budget_s is None else max(c.time_budget_s - (time.perf_counter() - t0), 0.0)
        res = fit_single_scene(
            net, x, Y, steps=c.steps, time_budget_s=budget, patch_size=c.patch_size,
            batch_size=c.batch_size, lr=c.lr, lr_min=c.lr_min, weights=c.loss_weights(),
            augment=c.augment, eval_every=c.eval_every, seed=c.seed, base=base,
            blind_lr=c.blind_lr, progress=self.progress,
        )
        info.update(res.info)
        info["total_time_s"] = time.perf_counter() - t0
        self.net = res.net
        spec = sensor_spec_of(res.net, {"scale": s})
        return res.fused * s, spec, info, res.history

    def _base(self, x: torch.Tensor, Y: torch.Tensor, net: MossFuseNet, kind: str) -> torch.Tensor:
        r = net.ratio
        if kind == "bicubic":
            return upsample(x, r, "bicubic")
        try:
            from ..classical.cnmf import CNMF
        except ImportError:  # pragma: no cover - CNMF is part of the package
            warnings.warn("CNMF is unavailable; starting from bicubic", RuntimeWarning, stacklevel=2)
            return upsample(x, r, "bicubic")
        spec = sensor_spec_of(net)
        sensor = make_sensor(r, srf=spec.srf, psf=spec.psf, phase=spec.offset[0])
        self._report("cnmf", 0, 1, math.nan)
        with torch.no_grad():
            out = CNMF().fuse(x, Y, sensor).cube.float()
        self._report("cnmf", 1, 1, math.nan)
        return out


@torch.no_grad()
def fusion_path(net: MossFuseNet, x: torch.Tensor, Y: torch.Tensor, *, channels_last: bool = True,
                base: torch.Tensor | None = None) -> torch.Tensor:
    """Eval-mode fusion path (no self-supervised decoders), no gradients."""
    net.eval()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        Y = Y.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        out = net(x, Y, return_aux=False, base=base).fused
    return out.contiguous()


def config_dict(config: MossFuseConfig) -> dict[str, Any]:
    return asdict(config)



