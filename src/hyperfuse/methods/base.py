"""The one interface every fusion method implements."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import torch
from torch import nn

from .._validation import check_pair
from ..errors import SRFError
from ..physics.sensor import FusionPhysics
from ..types import FusionResult, SensorSpec

__all__ = ["FusionMethod"]


class FusionMethod(nn.Module, abc.ABC):
    """Base class of all fusion methods, classical and learned.

    Subclasses implement :meth:`_fuse`; callers use :meth:`fuse`, which validates the
    pair, checks that non-blind methods get an SRF, runs without gradients unless the
    method asks for them, and never modifies its inputs.

    Class attributes
    ----------------
    name : str
        Registry name (set by :func:`~hyperfuse.methods.registry.register_method`).
    blind : bool
        True when the method estimates the sensor itself (``sensor`` may be ``None``).
    trainable : bool
        True for learned methods.
    needs_srf : bool
        True when a known SRF is required (False for bicubic and blind methods).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    blind: ClassVar[bool] = False
    trainable: ClassVar[bool] = False
    needs_srf: ClassVar[bool] = True
    needs_grad: ClassVar[bool] = False

    def __init__(self, config: Any = None) -> None:
        super().__init__()
        self.config = config

    def fuse(
        self, hsi: torch.Tensor, msi: torch.Tensor, sensor: SensorSpec | FusionPhysics | None
    ) -> FusionResult:
        """Fuse an LR-HSI (B, L, h, w) with an HR-MSI (B, l, H, W) into (B, L, H, W).

        Parameters
        ----------
        hsi : Tensor of shape (B, L, h, w)
        msi : Tensor of shape (B, l, H, W)
        sensor : SensorSpec, FusionPhysics or None
            ``None`` only for blind methods.

        Returns
        -------
        FusionResult
        """
        if sensor is None:
            if self.needs_srf and not self.blind:
                raise SRFError(
                    f"method {self.name!r} needs the sensor (ratio, PSF, SRF); pass --srf "
                    "or use --srf estimate"
                )
            physics = None
            ratio = msi.shape[-1] // hsi.shape[-1]
        else:
            physics = FusionPhysics.from_spec(sensor)
            ratio = physics.ratio
            if self.needs_srf and physics.spectral is None and not self.blind:
                raise SRFError(
                    f"method {self.name!r} needs an SRF; pass --srf NAME|FILE or --srf estimate"
                )
            if physics.spectral is not None and physics.spec.srf is not None:
                srf = physics.spec.srf
                if srf.shape != (msi.shape[1], hsi.shape[1]):
                    raise SRFError(
                        f"SRF is {srf.shape[0]}x{srf.shape[1]} but the pair has {msi.shape[1]} MSI "
                        f"and {hsi.shape[1]} HSI bands; pass an SRF with one row per MSI band and "
                        "one column per HSI band"
                    )
        check_pair(hsi, msi, ratio)
        with torch.set_grad_enabled(self.needs_grad):
            result = self._fuse(hsi, msi, physics)
        return result

    @abc.abstractmethod
    def _fuse(
        self, hsi: torch.Tensor, msi: torch.Tensor, physics: FusionPhysics | None
    ) -> FusionResult:
        """Method-specific fusion (inputs already validated)."""

    def forward(self, hsi: torch.Tensor, msi: torch.Tensor, sensor: Any = None) -> torch.Tensor:
        return self.fuse(hsi, msi, sensor).cube
