"""Linear operators as ``nn.Module``s with a stateless ``A`` and an exact ``A_adjoint``.

The math lives in :mod:`hyperfuse.physics.functional`; these are thin wrappers that
hold the PSF and SRF as buffers. ``forward`` is ``A`` and never adds noise.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import functional as Fn
from .functional import Boundary

__all__ = ["LinearOperator", "SpatialDegradation", "SpectralResponse", "Composed"]


class LinearOperator(nn.Module):
    """Base class: subclasses implement ``A`` and ``A_adjoint``."""

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802 - operator notation
        raise NotImplementedError

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.A(x)

    def adjointness_error(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Relative error | <Ax, y> - <x, A^T y> | / max(|<Ax, y>|, tiny)."""
        lhs = (self.A(x) * y).sum().item()
        rhs = (x * self.A_adjoint(y)).sum().item()
        return abs(lhs - rhs) / max(abs(lhs), abs(rhs), 1e-300)

    def __mul__(self, other: LinearOperator) -> Composed:
        return Composed(self, other)


class SpatialDegradation(LinearOperator):
    """PSF blur followed by decimation: the D of ``classical.md`` §1.

    Parameters
    ----------
    psf : array of shape (K_h, K_w)
    ratio : int
    offset : tuple of int
        Sampling offset (o_y, o_x), 0 <= o < ratio.
    boundary : {"reflect", "circular", "replicate", "zeros"}
    hr_shape : tuple of int, optional
        (H, W) of the HR grid, needed by ``A_adjoint``; defaults to ratio times the input.

    Examples
    --------
    >>> D = SpatialDegradation(Fn.gaussian_psf(1.7, 14), ratio=4, offset=(2, 2))
    >>> D(torch.rand(1, 3, 16, 16)).shape
    torch.Size([1, 3, 4, 4])
    """

    psf: torch.Tensor

    def __init__(
        self,
        psf: np.ndarray | torch.Tensor,
        ratio: int,
        offset: tuple[int, int] = (0, 0),
        boundary: Boundary = "reflect",
        hr_shape: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("psf", torch.as_tensor(np.asarray(psf), dtype=torch.float64))
        self.ratio = int(ratio)
        self.offset = (int(offset[0]), int(offset[1]))
        self.boundary: Boundary = boundary
        self.hr_shape = hr_shape

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return Fn.spatial_degrade(x, self.psf, self.ratio, self.offset, self.boundary)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        shape = self.hr_shape or (y.shape[-2] * self.ratio, y.shape[-1] * self.ratio)
        return Fn.spatial_degrade_adjoint(y, self.psf, self.ratio, self.offset, shape, self.boundary)


class SpectralResponse(LinearOperator):
    """Per-pixel SRF matrix R (l x L): the spectral part of the MSI model.

    Examples
    --------
    >>> S = SpectralResponse(np.full((2, 5), 0.2))
    >>> S(torch.ones(1, 5, 3, 3)).shape
    torch.Size([1, 2, 3, 3])
    """

    srf: torch.Tensor

    def __init__(self, srf: np.ndarray | torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("srf", torch.as_tensor(np.asarray(srf), dtype=torch.float64))

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return Fn.apply_srf(x, self.srf)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return Fn.apply_srf_adjoint(y, self.srf)


class Composed(LinearOperator):
    """``outer * inner``: x -> outer(inner(x)), adjoint in reverse order."""

    def __init__(self, outer: LinearOperator, inner: LinearOperator) -> None:
        super().__init__()
        self.outer = outer
        self.inner = inner

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return self.outer.A(self.inner.A(x))

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return self.inner.A_adjoint(self.outer.A_adjoint(y))
