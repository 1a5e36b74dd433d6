"""Bicubic upsampling of the LR-HSI: the floor every fusion method must beat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ...physics.functional import upsample
from ...physics.sensor import FusionPhysics
from ...types import FusionResult
from ..base import FusionMethod
from ..registry import register_method

__all__ = ["Bicubic", "BicubicConfig"]


@dataclass(frozen=True)
class BicubicConfig:
    """Options of :class:`Bicubic`."""

    mode: Literal["bicubic", "bilinear", "nearest"] = "bicubic"


@register_method("bicubic", config=BicubicConfig)
class Bicubic(FusionMethod):
    """Interpolate the LR-HSI to the MSI grid; ignores the MSI (baseline).

    Examples
    --------
    >>> out = Bicubic().fuse(torch.rand(1, 5, 4, 4), torch.rand(1, 2, 16, 16), None)
    >>> tuple(out.cube.shape)
    (1, 5, 16, 16)
    """

    description = "Bicubic upsampling of the LR-HSI (baseline; ignores the MSI)"
    needs_srf = False  # needs nothing from the sensor but the ratio

    def __init__(self, config: BicubicConfig | None = None) -> None:
        super().__init__(config or BicubicConfig())

    def _fuse(
        self, hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics | None
    ) -> FusionResult:
        ratio = msi.shape[-1] // hsi.shape[-1]
        cube = upsample(hsi, ratio, self.config.mode)
        return FusionResult(cube=cube, info={"mode": self.config.mode})
