"""Real pairs without ground truth: reduced-resolution self-check and no-reference report.

``protocols.md`` §6: degrade both real inputs by r with the sensor's spatial operator,
x↓ = D(x) and Y↓ = D(Y), fuse (x↓, Y↓) into an estimate of x and score it against x with
the full-reference metrics. At full resolution, report QNR / D_λ / D_s, the consistency
indices (``metrics.md`` §2) and a registration check (phase-correlation shift between
R·U_r(x) and Y, flagged above 0.5 LR pixel).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch

from ..errors import InputError, ShapeError
from ..types import SensorSpec

__all__ = ["reduced_resolution_selfcheck", "registration_shift", "evaluate_no_reference"]


def _as_bchw(a: Any, name: str) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4:
        raise ShapeError(f"{name} must be (B, C, H, W) or (C, H, W), got shape {tuple(t.shape)}")
    return t.to(torch.float32)


def _physics(sensor: Any) -> Any:
    from ..physics import FusionPhysics

    if isinstance(sensor, FusionPhysics):
        return sensor
    if isinstance(sensor, SensorSpec):
        return FusionPhysics(sensor)
    raise InputError("sensor must be a SensorSpec or FusionPhysics (see hyperfuse.physics.make_sensor)")


def reduced_resolution_selfcheck(
    hsi: Any,
    msi: Any,
    method: Any,
    sensor: SensorSpec,
    *,
    metric_set: Literal["hyperfuse", "yokoya2017", "mossfuse_reference"] = "hyperfuse",
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Wald self-check on a real pair: fuse (D(x), D(Y)) and score against x.

    Parameters
    ----------
    hsi : Tensor or ndarray of shape (B, L, h, w)
        Real LR-HSI x.
    msi : Tensor or ndarray of shape (B, l, r h, r w)
        Real HR-MSI Y.
    method : str or FusionMethod
        A registered name (with ``options``) or an instance.
    sensor : SensorSpec
        Known or estimated sensor (ratio, PSF, offset, SRF).
    metric_set : str
        Named metric set (``metrics.md`` §3).
    options : dict, optional
        Method config overrides when ``method`` is a name.

    Returns
    -------
    dict
        The metrics of :func:`hyperfuse.metrics.evaluate` (``psnr``, ``sam``, ...), plus
        ``sizes``, ``crop`` (rows/cols dropped so h, w are multiples of r) and ``method``.

    Raises
    ------
    ShapeError
        When the degraded pair would be smaller than one pixel, or x is smaller than the
        metric window.

    Notes
    -----
    This assumes the method behaves the same at both scales.

    Examples
    --------
    >>> from hyperfuse.physics import make_sensor, simulate
    >>> spec = make_sensor(2, srf=np.full((3, 6), 1 / 6))
    >>> pair = simulate(torch.rand(1, 6, 48, 48, generator=torch.Generator().manual_seed(0)), spec)
    >>> out = reduced_resolution_selfcheck(pair.hsi, pair.msi, "bicubic", spec)
    >>> out["sizes"]["reduced_hsi"], out["psnr"] > 0
    ([1, 6, 12, 12], True)
    """
    from ..methods import get_method
    from . import evaluate

    x = _as_bchw(hsi, "hsi")
    y = _as_bchw(msi, "msi")
    r = int(sensor.ratio)
    h, w = x.shape[-2:]
    if y.shape[-2:] != (r * h, r * w):
        raise ShapeError(f"msi is {tuple(y.shape[-2:])}, expected {(r * h, r * w)} for ratio {r}")
    ch, cw = h % r, w % r
    if h // r < 1 or w // r < 1:
        raise ShapeError(f"hsi {h}x{w} is smaller than the ratio {r}; no reduced-resolution check")
    x = x[..., : h - ch, : w - cw]
    y = y[..., : r * (h - ch), : r * (w - cw)]
    phys = _physics(sensor)
    with torch.no_grad():
        x_lr = phys.spatial(x.to(torch.float64)).to(torch.float32)
        y_lr = phys.spatial(y.to(torch.float64)).to(torch.float32)
    m = get_method(method, **(options or {})) if isinstance(method, str) else method
    res = m.fuse(x_lr, y_lr, sensor)
    scores = evaluate(res.cube.detach(), x, ratio=r, metric_set=metric_set)
    scores.pop("per_image", None)
    scores["sizes"] = {"reference_hsi": list(x.shape), "reduced_hsi": list(x_lr.shape),
                       "reduced_msi": list(y_lr.shape)}
    scores["crop"] = [int(ch), int(cw)]
    scores["method"] = method if isinstance(method, str) else getattr(m, "name", type(m).__name__)
    return scores


def registration_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Shift (dy, dx) in pixels that best aligns image ``b`` to ``a`` (phase correlation).

    Sub-pixel precision by a parabolic fit around the peak.

    Examples
    --------
    >>> g = np.random.default_rng(0).random((32, 32))
    >>> tuple(round(v, 3) for v in registration_shift(g, np.roll(g, (2, -3), axis=(0, 1))))
    (-2.0, 3.0)
    """
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    Fa, Fb = np.fft.fft2(a), np.fft.fft2(b)
    cross = Fa * np.conj(Fb)
    cross /= np.maximum(np.abs(cross), 1e-12)
    corr = np.real(np.fft.ifft2(cross))
    iy, ix = np.unravel_index(int(np.argmax(corr)), corr.shape)
    out = []
    for axis, i in ((0, iy), (1, ix)):
        n = corr.shape[axis]
        idx = [iy, ix]
        vals = []
        for d in (-1, 0, 1):
            idx[axis] = (i + d) % n
            vals.append(corr[idx[0], idx[1]])
        den = vals[0] - 2 * vals[1] + vals[2]
        frac = 0.5 * (vals[0] - vals[2]) / den if abs(den) > 1e-12 else 0.0
        s = i + frac
        out.append(s - n if s > n / 2 else s)
    return float(out[0]), float(out[1])


def _auto_block(H: int, W: int) -> int:
    for s in (32, 16):
        if min(H, W) >= 2 * s:  # at least 2x2 blocks
            return s
    if min(H, W) >= 8:
        return 8
    raise ShapeError(f"image {H}x{W} is smaller than the smallest QNR block (8)")


def evaluate_no_reference(
    hsi: Any,
    msi: Any,
    fused: Any,
    sensor: SensorSpec,
    *,
    block: int | None = None,
    scale: Literal["hr", "lr"] = "hr",
    ds_mode: Literal["all_pairs", "synthetic_pan"] = "all_pairs",
    data_range: float = 1.0,
    method: Any = None,
    method_options: dict[str, Any] | None = None,
    metric_set: Literal["hyperfuse", "yokoya2017", "mossfuse_reference"] = "hyperfuse",
) -> dict[str, Any]:
    """No-reference report for a real HSI/MSI pair and its fusion.

    Parameters
    ----------
    hsi : Tensor or ndarray of shape (B, L, h, w) or (L, h, w)
        LR-HSI x.
    msi : Tensor or ndarray of shape (B, l, H, W) or (l, H, W)
        HR-MSI Y.
    fused : Tensor or ndarray of shape (B, L, H, W) or (L, H, W)
        Fused image F.
    sensor : SensorSpec
        Known or estimated sensor; its spatial operator is D, its SRF (if any) R.
    block : int, optional
        QNR block S (default: 32, or 16/8 for small images).
    scale : {"hr", "lr"}
        QNR scale mode.
    ds_mode : {"all_pairs", "synthetic_pan"}
        Multi-band D_s convention.
    data_range : float
        PSNR peak of the consistency indices.
    method : str or FusionMethod, optional
        When given, also run :func:`reduced_resolution_selfcheck` with it.
    method_options : dict, optional
        Config overrides of ``method``.
    metric_set : str
        Metric set of the self-check.

    Returns
    -------
    dict
        JSON-ready: ``qnr``, ``d_lambda``, ``d_s`` (means over the batch), ``qnr_config``,
        ``consistency`` (``spatial_psnr``, ``spectral_psnr``, ``spatial_mae``,
        ``spectral_mae``; spectral entries only with an SRF), ``registration``
        (``shift_hr_px``, ``shift_lr_px``, ``warning`` above 0.5 LR pixel; needs an SRF)
        and ``selfcheck`` (or ``None``).

    Examples
    --------
    >>> from hyperfuse.physics import make_sensor, simulate
    >>> spec = make_sensor(2, srf=np.full((3, 6), 1 / 6))
    >>> ref = torch.rand(1, 6, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> pair = simulate(ref, spec)
    >>> rep = evaluate_no_reference(pair.hsi, pair.msi, ref, spec)
    >>> 0 <= rep["qnr"] <= 1, rep["qnr_config"]["block"], rep["registration"]["warning"]
    (True, 16, False)
    """
    from .noref import bicubic_upsample, consistency, qnr

    x = _as_bchw(hsi, "hsi")
    y = _as_bchw(msi, "msi")
    f = _as_bchw(fused, "fused")
    r = int(sensor.ratio)
    if f.shape[-2:] != y.shape[-2:] or f.shape[1] != x.shape[1]:
        raise ShapeError(
            f"fused is {tuple(f.shape)}; expected {x.shape[1]} bands (as the HSI) and the MSI size "
            f"{tuple(y.shape[-2:])}"
        )
    phys = _physics(sensor)
    H, W = f.shape[-2:]
    s = int(block) if block is not None else _auto_block(H, W)
    res = qnr(f, x, y, ratio=r, degrade=phys.spatial, scale=scale, block=s, ds_mode=ds_mode)
    out: dict[str, Any] = {
        "qnr": float(res.qnr.mean()),
        "d_lambda": float(res.d_lambda.mean()),
        "d_s": float(res.d_s.mean()),
        "qnr_config": {**res.config, "block": s},
    }
    cons: dict[str, float] = {}
    with torch.no_grad():
        dF = phys.spatial(f.to(torch.float64))
    x64 = x.to(torch.float64)
    if dF.shape == x64.shape:
        mse = torch.mean((dF - x64) ** 2, dim=(-2, -1))
        cons["spatial_psnr"] = float(torch.mean(10 * torch.log10(data_range**2 / mse.clamp_min(1e-30))))
        cons["spatial_mae"] = float(torch.mean(torch.abs(dF - x64)))
    registration: dict[str, Any] | None = None
    if sensor.srf is not None:
        c = consistency(f, x, y, degrade=phys.spatial, spectral=sensor.srf, data_range=data_range)
        cons.update({k: float(v.mean()) for k, v in c.items()})
        R = torch.as_tensor(sensor.srf, dtype=torch.float64)
        up = bicubic_upsample(x64, r)
        sim = torch.einsum("ml,blhw->bmhw", R, up)[0].mean(0).numpy()
        real = y[0].to(torch.float64).mean(0).numpy()
        dy, dx = registration_shift(real, sim)
        lr = math.hypot(dy, dx) / r
        registration = {"shift_hr_px": [dy, dx], "shift_lr_px": lr, "warning": bool(lr > 0.5),
                        "between": "band mean of R·U_r(x) and of Y"}
    out["consistency"] = cons
    out["registration"] = registration
    out["selfcheck"] = None
    if method is not None:
        out["selfcheck"] = reduced_resolution_selfcheck(
            x, y, method, sensor, metric_set=metric_set, options=method_options)
    from ..records import jsonable

    return jsonable(out)  # type: ignore[no-any-return]
