"""MossFuse loss terms (``mossfuse.md`` §7). No term sees ground truth.

One backward pass of ``total`` reproduces the reference's two-pass scheme: every target
that comes from BlindNet (R, k, y_x, y_Y) is detached in the main terms, and L_DE only
reaches BlindNet (its inputs are the data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from .network import Geometry, MossFuseOutput, degrade, sample_lr, upsample_bilinear

__all__ = ["LossWeights", "LossTerms", "subspace_clustering_loss", "mossfuse_losses"]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (defaults of ``mossfuse.md`` §7)."""

    sc: float = 0.1
    sct_msi: float = 1.0
    sct_hsi: float = 1.0
    sct_lr_x: float = 1.0
    sct_lr_y: float = 1.0
    ma_hsi: float = 1.0
    ma_msi: float = 1.0
    de: float = 1.0


@dataclass
class LossTerms:
    """Individual terms (scalars) and their weighted sum ``total``."""

    sc: torch.Tensor
    sct_msi: torch.Tensor
    sct_hsi: torch.Tensor
    sct_lr_x: torch.Tensor
    sct_lr_y: torch.Tensor
    ma_hsi: torch.Tensor
    ma_msi: torch.Tensor
    de: torch.Tensor
    total: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {k: float(v.detach()) for k, v in self.__dict__.items()}


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    num = (a * b).sum()
    return num / torch.clamp(a.norm() * b.norm(), min=1e-8)


def _cos_per_sample(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.flatten(1), b.flatten(1)
    return (a * b).sum(1) / torch.clamp(a.norm(dim=1) * b.norm(dim=1), min=1e-8)


def subspace_clustering_loss(
    f_ys: torch.Tensor, f_xs: torch.Tensor, f_yc: torch.Tensor, f_xc: torch.Tensor,
    reduction: Literal["batch", "per_sample"] = "batch",
) -> torch.Tensor:
    """L_SC = −log(P / (P + N)), P = e^{cos(F_Y^S, F_x^S)}, N = the three other pairs.

    Examples
    --------
    >>> a = torch.ones(1, 2, 2, 2)
    >>> round(float(subspace_clustering_loss(a, a, -a, a)), 4)
    0.8201
    """
    cos = _cos if reduction == "batch" else _cos_per_sample
    p = torch.exp(cos(f_ys, f_xs))
    n = torch.exp(cos(f_ys, f_yc)) + torch.exp(cos(f_xs, f_xc)) + torch.exp(cos(f_yc, f_xc))
    return (-torch.log(p / (p + n))).mean()


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().mean()


def mossfuse_losses(
    out: MossFuseOutput, x: torch.Tensor, Y: torch.Tensor, geom: Geometry,
    weights: LossWeights = LossWeights(), *, offsets: list[tuple[int, int]] | None = None,
    sc_reduction: Literal["batch", "per_sample"] = "batch",
) -> LossTerms:
    """Every loss term of ``mossfuse.md`` §7 from one forward pass with ``return_aux=True``.

    Parameters
    ----------
    out : MossFuseOutput
    x : Tensor of shape (B, L, h, w)
        LR-HSI.
    Y : Tensor of shape (B, l, H, W)
        HR-MSI.
    geom : Geometry
        D_k geometry (the network's).
    weights : LossWeights
    offsets : list of (int, int), optional
        Per-item sampling offsets (augmentation tracking).
    """
    assert out.f_ys is not None and out.msi_rec is not None and out.y_x is not None
    r = geom.ratio
    sc = subspace_clustering_loss(out.f_ys, out.f_xs, out.f_yc, out.f_xc, sc_reduction)  # type: ignore[arg-type]
    sct_msi = _l1(Y, out.msi_rec)
    sct_hsi = _l1(x, sample_lr(out.hsi_rec, geom, offsets))  # type: ignore[arg-type]
    sct_lr_x = _l1(upsample_bilinear(out.y_x.detach(), r), out.lr_msi_rec)  # type: ignore[arg-type]
    sct_lr_y = _l1(upsample_bilinear(out.y_Y.detach(), r), out.lr_msi_rec)  # type: ignore[arg-type]
    ma_hsi = _l1(x, degrade(out.fused, out.psf.detach(), geom, offsets))
    ma_msi = _l1(Y, torch.einsum("ml,blhw->bmhw", out.srf.detach(), out.fused))
    de = _l1(out.y_x, out.y_Y)
    w = weights
    total = (
        w.sc * sc + w.sct_msi * sct_msi + w.sct_hsi * sct_hsi + w.sct_lr_x * sct_lr_x
        + w.sct_lr_y * sct_lr_y + w.ma_hsi * ma_hsi + w.ma_msi * ma_msi + w.de * de
    )
    return LossTerms(sc, sct_msi, sct_hsi, sct_lr_x, sct_lr_y, ma_hsi, ma_msi, de, total)
