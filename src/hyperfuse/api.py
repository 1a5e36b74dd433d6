"""Top-level convenience: fuse NumPy (H, W, C) arrays with a named method."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import Layout, check_ratio, to_hwc, to_internal
from .methods.registry import get_method
from .physics.sensor import make_sensor
from .types import FusionResult, SensorSpec

__all__ = ["fuse"]


def fuse(
    hsi: np.ndarray,
    msi: np.ndarray,
    *,
    ratio: int,
    method: str = "cnmf",
    srf: np.ndarray | None = None,
    sensor: SensorSpec | None = None,
    layout: Layout = "hwc",
    **config: Any,
) -> tuple[np.ndarray, FusionResult]:
    """Fuse an LR-HSI with an HR-MSI given as NumPy arrays.

    Parameters
    ----------
    hsi : ndarray of shape (h, w, L)
        Low-resolution hyperspectral image (``layout="chw"`` for (L, h, w)).
    msi : ndarray of shape (H, W, l)
        High-resolution multispectral image, H = ratio * h.
    ratio : int
        Resolution ratio.
    method : str
        A registered method (``hyperfuse.methods.list_methods()``).
    srf : ndarray of shape (l, L), optional
        Spectral response; ignored when ``sensor`` is given.
    sensor : SensorSpec, optional
        Full sensor description; defaults to :func:`~hyperfuse.physics.make_sensor` with
        the protocol PSF and ``srf``.
    layout : {"hwc", "chw"}
    **config
        Overrides of the method's config dataclass.

    Returns
    -------
    fused : ndarray of shape (H, W, L), float32
    result : FusionResult
        With the method's extras (history, endmembers, ...).

    Examples
    --------
    >>> out, _ = fuse(np.ones((4, 4, 6)), np.ones((16, 16, 2)), ratio=4, method="bicubic")
    >>> out.shape
    (16, 16, 6)
    """
    r = check_ratio(ratio)
    h = to_internal(hsi, layout=layout, name="hsi")
    m = to_internal(msi, layout=layout, name="msi")
    if sensor is None:
        sensor = make_sensor(r, srf=srf)
    result = get_method(method, **config).fuse(h, m, sensor)
    out = to_hwc(result.cube)
    if layout == "chw":
        out = np.ascontiguousarray(np.moveaxis(out, -1, 0))
    return out, result
