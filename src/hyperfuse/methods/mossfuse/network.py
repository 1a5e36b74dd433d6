"""The MossFuse network: encoders, decoders, the fusion head and the blind degradation net.

``mossfuse.md`` §1 (data flow), §3 (modules), §4 (BlindNet, geometry), §5 (parameter counts)
and §6 (generalisation to any L, l and integer r).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ShapeError
from .blocks import Aggregation, Head, TransformerBlock, UniRepLKBlock, conv1x1

__all__ = [
    "Geometry",
    "geometry_of",
    "gaussian_kernel",
    "degrade",
    "sample_lr",
    "upsample_bilinear",
    "dihedral",
    "dihedral_offset",
    "BlindNet",
    "MossFuseOutput",
    "MossFuseNet",
    "parameter_formula",
]

GeometryName = Literal["block_centred", "mossfuse"]


@dataclass(frozen=True)
class Geometry:
    """Sampling geometry of the spatial operator D_k (``mossfuse.md`` §4).

    Parameters
    ----------
    ratio : int
        Stride r.
    size : int
        PSF width K.
    offset : int
        Sampling offset o (same on both axes).
    """

    ratio: int
    size: int
    offset: int

    @property
    def centre(self) -> float:
        """LR sample centre e in HR pixels: o for odd K, o − ½ for even K."""
        return self.offset - 0.5 * (1 - self.size % 2)


def geometry_of(ratio: int, name: GeometryName = "block_centred", size: int | None = None) -> Geometry:
    """K and o of a geometry preset.

    Examples
    --------
    >>> [geometry_of(r).size for r in (4, 6, 8, 32)]
    [14, 18, 24, 84]
    >>> geometry_of(32, "mossfuse")
    Geometry(ratio=32, size=31, offset=15)
    """
    r = int(ratio)
    if r < 1:
        raise ShapeError(f"ratio must be a positive integer, got {ratio}")
    if name == "mossfuse":
        k, o = 2 * ((r - 1) // 2) + 1, (r - 1) // 2
    elif name == "block_centred":
        s = r / 2.35482
        k = 2 * math.ceil(3 * s) + 1
        if (k - r) % 2:
            k += 1
        o = r // 2
    else:
        raise ShapeError(f"unknown geometry {name!r}; use block_centred or mossfuse")
    if size is not None:
        k = int(size)
    return Geometry(r, k, o)


def gaussian_kernel(Q: torch.Tensor, size: int, shift: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian PSF from a lower-triangular precision factor (``mossfuse.md`` §4).

    M = Q ⊙ [[1, 0], [1, 1]], P = MᵀM, k[u, v] ∝ exp(−½ dᵀPd), d = (u − μ, v − μ) (row
    offset first), μ = (K−1)/2 (+ ``shift``), normalised to sum 1.

    Examples
    --------
    >>> k = gaussian_kernel(torch.eye(2, dtype=torch.float64) / 2, 31)
    >>> from hyperfuse.physics.functional import gaussian_psf
    >>> bool(torch.allclose(k, torch.from_numpy(gaussian_psf(2.0, 31)), atol=1e-12))
    True
    """
    mask = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=Q.dtype, device=Q.device)
    M = Q * mask
    P = M.T @ M
    t = torch.arange(size, dtype=Q.dtype, device=Q.device) - (size - 1) / 2.0
    du = t[:, None].expand(size, size)
    dv = t[None, :].expand(size, size)
    if shift is not None:
        du = du - shift[0]
        dv = dv - shift[1]
    e = P[0, 0] * du * du + (P[0, 1] + P[1, 0]) * du * dv + P[1, 1] * dv * dv
    e = -0.5 * e
    k = torch.exp(e - e.max())
    return k / k.sum()


def _pads(geom: Geometry, o: int) -> tuple[int, int]:
    K, r = geom.size, geom.ratio
    return max(0, K // 2 - o), max(0, o + K - K // 2 - r)


def _degrade_one(x: torch.Tensor, k: torch.Tensor, geom: Geometry, oy: int, ox: int) -> torch.Tensor:
    B, C, H, W = x.shape
    r, K = geom.ratio, geom.size
    pt, pb = _pads(geom, oy)
    pl, pr = _pads(geom, ox)
    z = x.reshape(B * C, 1, H, W)
    if pt or pb or pl or pr:
        if max(pt, pb) >= H or max(pl, pr) >= W:
            raise ShapeError(f"image {H}x{W} is too small for a {K}x{K} PSF; pass a larger image")
        z = F.pad(z, (pl, pr, pt, pb), mode="reflect")
    z = z[..., oy - K // 2 + pt :, ox - K // 2 + pl :]
    y = F.conv2d(z, k.to(x.dtype)[None, None], stride=r)
    return y[..., : H // r, : W // r].reshape(B, C, H // r, W // r)


def degrade(
    x: torch.Tensor, k: torch.Tensor, geom: Geometry, offsets: list[tuple[int, int]] | None = None
) -> torch.Tensor:
    """D_k: correlation-form blur with ``k`` and decimation by r at offset o, reflect-101 padding.

    Parameters
    ----------
    x : Tensor of shape (B, C, H, W)
    k : Tensor of shape (K, K) or (B, K, K)
        PSF, or one PSF per item.
    geom : Geometry
    offsets : list of (o_y, o_x), optional
        One offset per batch item (augmentation tracking); default ``geom.offset``.

    Returns
    -------
    Tensor of shape (B, C, H // r, W // r)

    Examples
    --------
    >>> g = geometry_of(4)
    >>> x = torch.rand(1, 2, 16, 16, dtype=torch.float64)
    >>> k = torch.full((g.size, g.size), 1.0 / g.size**2, dtype=torch.float64)
    >>> from hyperfuse.physics.functional import spatial_degrade
    >>> ref = spatial_degrade(x, k, 4, (g.offset, g.offset))
    >>> bool(torch.allclose(degrade(x, k, g), ref))
    True
    """
    if k.ndim == 3:  # one kernel per item
        offs = offsets or [(geom.offset, geom.offset)] * x.shape[0]
        return torch.cat([_degrade_one(x[i : i + 1], k[i], geom, *o) for i, o in enumerate(offs)])
    if offsets is None or all(o == offsets[0] for o in offsets):
        oy, ox = offsets[0] if offsets else (geom.offset, geom.offset)
        return _degrade_one(x, k, geom, oy, ox)
    return torch.cat([_degrade_one(x[i : i + 1], k, geom, *o) for i, o in enumerate(offsets)])


def _sample_one(x: torch.Tensor, geom: Geometry, oy: int, ox: int) -> torch.Tensor:
    r = geom.ratio
    h, w = x.shape[-2] // r, x.shape[-1] // r
    if geom.size % 2:
        return x[..., oy : oy + r * h : r, ox : ox + r * w : r]
    # even K: centre o − ½, the mean of pixels o − 1 and o on each axis
    def ax(t: torch.Tensor, o: int, dim: int, n: int) -> torch.Tensor:
        i1 = torch.arange(n, device=t.device) * r + o
        i0 = (i1 - 1).clamp(min=0)
        return 0.5 * (t.index_select(dim, i0) + t.index_select(dim, i1))

    return ax(ax(x, oy, -2, h), ox, -1, w)


def sample_lr(
    x: torch.Tensor, geom: Geometry, offsets: list[tuple[int, int]] | None = None
) -> torch.Tensor:
    """S(·): read an HR image at the LR sample centres (``mossfuse.md`` §6).

    Examples
    --------
    >>> x = torch.arange(64.).reshape(1, 1, 8, 8)
    >>> sample_lr(x, geometry_of(4, "mossfuse"))[0, 0]
    tensor([[ 9., 13.],
            [41., 45.]])
    """
    if offsets is None or all(o == offsets[0] for o in offsets):
        oy, ox = offsets[0] if offsets else (geom.offset, geom.offset)
        return _sample_one(x, geom, oy, ox)
    return torch.cat([_sample_one(x[i : i + 1], geom, *o) for i, o in enumerate(offsets)])


def dihedral(t: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """T(t) = rot90(flip_x(t) if flip else t, k) on the last two axes (NumPy orientation)."""
    if flip:
        t = t.flip(-1)
    return torch.rot90(t, k, dims=(-2, -1)) if k % 4 else t


def dihedral_offset(geom: Geometry, k: int, flip: bool) -> tuple[int, int]:
    """Sampling offsets (o_y, o_x) after the transform :func:`dihedral` (``mossfuse.md`` §8).

    The LR centre e maps as: flip along x, e_x ← r−1−e_x; each rot90,
    (e_y, e_x) ← (r−1−e_x, e_y).

    Examples
    --------
    >>> g = geometry_of(32, "mossfuse")
    >>> dihedral_offset(g, 0, True), dihedral_offset(geometry_of(8), 1, True)
    ((15, 16), (4, 4))
    """
    r = geom.ratio
    half = 0.5 * (1 - geom.size % 2)
    ey = ex = geom.offset - half
    if flip:
        ex = r - 1 - ex
    for _ in range(k % 4):
        ey, ex = r - 1 - ex, ey
    return int(round(ey + half)), int(round(ex + half))


def upsample_bilinear(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """U: bilinear ×r upsampling with ``align_corners=False``."""
    return F.interpolate(x, scale_factor=ratio, mode="bilinear", align_corners=False)


class BlindNet(nn.Module):
    """Blind PSF and SRF estimator (``mossfuse.md`` §4); l·L + 4 parameters (+2 with shift).

    R = rownorm(softplus(θ)) (non-negative, rows sum to 1), θ initialised to log(e − 1)
    (uniform rows); the PSF is the Gaussian of :func:`gaussian_kernel` with Q initialised
    to 5·I (σ = 0.2 px).

    Parameters
    ----------
    hs_bands, ms_bands : int
        L and l.
    geometry : Geometry
        K, r and o of D_k.
    learn_psf_shift : bool, default False
        Learn a centre offset δ ∈ ℝ² of the Gaussian.
    clamp : bool, default True
        Clamp y_x and y_Y to [0, 1] (the reference behaviour; inputs must be in [0, 1]).
    """

    def __init__(
        self, hs_bands: int, ms_bands: int, geometry: Geometry, *, learn_psf_shift: bool = False,
        clamp: bool = True,
    ) -> None:
        super().__init__()
        self.geometry = geometry
        self.clamp = clamp
        self.srf_logits = nn.Parameter(torch.full((ms_bands, hs_bands), math.log(math.e - 1.0)))
        self.Q = nn.Parameter(5.0 * torch.eye(2))
        self.psf_shift = nn.Parameter(torch.zeros(2)) if learn_psf_shift else None

    def srf(self) -> torch.Tensor:
        """R (l, L)."""
        s = F.softplus(self.srf_logits)
        return s / s.sum(dim=1, keepdim=True)

    def psf(self) -> torch.Tensor:
        """k (K, K)."""
        return gaussian_kernel(self.Q, self.geometry.size, self.psf_shift)

    def sigma(self) -> tuple[float, float]:
        """PSF widths √diag(P⁻¹) in HR pixels."""
        with torch.no_grad():
            M = self.Q.double() * torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
            C = torch.linalg.inv(M.T @ M)
            return float(C[0, 0].sqrt()), float(C[1, 1].sqrt())

    @torch.no_grad()
    def set_estimate(self, srf: np.ndarray | None = None, sigma: float | None = None,
                     shift: tuple[float, float] | None = None) -> None:
        """Initialise R (rows normalised, floored at 1e-6), an isotropic σ and the shift."""
        if srf is not None:
            R = torch.as_tensor(np.asarray(srf), dtype=torch.float64)
            R = R.clamp_min(0)
            R = R / R.sum(dim=1, keepdim=True).clamp_min(1e-12)
            R = R.clamp_min(1e-6)
            # softplus⁻¹ of R scaled so that the largest entry per row is ~1 (well-conditioned)
            R = R / R.amax(dim=1, keepdim=True)
            self.srf_logits.copy_(torch.log(torch.expm1(R)).to(self.srf_logits.dtype))
        if sigma is not None:
            self.Q.copy_(torch.eye(2) / float(sigma))
        if shift is not None and self.psf_shift is not None:
            self.psf_shift.copy_(torch.tensor(shift, dtype=self.psf_shift.dtype))

    def forward(
        self, x: torch.Tensor, Y: torch.Tensor, offsets: list[tuple[int, int]] | None = None,
        transforms: list[tuple[int, bool]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return y_x = R·x, y_Y = D_k(Y) (both (B, l, h, w)), R and k.

        With ``transforms`` (one dihedral transform per item, see :func:`dihedral`), k is
        returned per item, (B, K, K), transformed like the images.
        """
        R = self.srf()
        k = self.psf()
        if transforms is not None:
            k = torch.stack([dihedral(k, *t) for t in transforms])
        y_x = torch.einsum("ml,blhw->bmhw", R, x)
        y_Y = degrade(Y, k, self.geometry, offsets)
        if self.clamp:
            y_x, y_Y = y_x.clamp(0, 1), y_Y.clamp(0, 1)
        return y_x, y_Y, R, k


class EncoderMSI(nn.Module):
    """E_MSI: T = TB^N(embed Y); shared [LK7, LK0, LK0, TB](T); complement [LK7, LK0, LK0](T)."""

    def __init__(self, bands: int, dim: int, n_blocks: int) -> None:
        super().__init__()
        self.embed = nn.Conv2d(bands, dim, 3, padding=1, bias=False)
        self.trunk = nn.Sequential(*[TransformerBlock(dim) for _ in range(n_blocks)])
        self.shared = nn.Sequential(
            UniRepLKBlock(dim, True), UniRepLKBlock(dim, False), UniRepLKBlock(dim, False),
            TransformerBlock(dim),
        )
        self.complement = nn.Sequential(
            UniRepLKBlock(dim, True), UniRepLKBlock(dim, False), UniRepLKBlock(dim, False)
        )

    def forward(self, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.trunk(self.embed(Y))
        return self.shared(t), self.complement(t)


class EncoderHSI(nn.Module):
    """E_HSI: T = TB^N(embed x↑); shared [TB, LK7, LK0, LK0](T); complement TB(T)."""

    def __init__(self, bands: int, dim: int, n_blocks: int) -> None:
        super().__init__()
        self.embed = nn.Conv2d(bands, dim, 3, padding=1, bias=False)
        self.trunk = nn.Sequential(*[TransformerBlock(dim) for _ in range(n_blocks)])
        self.shared = nn.Sequential(
            TransformerBlock(dim), UniRepLKBlock(dim, True), UniRepLKBlock(dim, False),
            UniRepLKBlock(dim, False),
        )
        self.complement = TransformerBlock(dim)

    def forward(self, x_up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.trunk(self.embed(x_up))
        return self.shared(t), self.complement(t)


class SelfDecoder(nn.Module):
    """D_MSI (``spatial=True``) or D_HSI: Head(TB^{N−1}(Agg(F^S, F^C)))."""

    def __init__(self, bands: int, dim: int, n_blocks: int, spatial: bool, reference_layout: bool) -> None:
        super().__init__()
        # the reference holds an unused 1×1 conv here (kept only to load its checkpoint)
        self.unused_fuse = conv1x1(2 * dim, dim) if reference_layout else None
        self.agg = Aggregation(dim, spatial)
        self.blocks = nn.Sequential(*[TransformerBlock(dim) for _ in range(n_blocks - 1)])
        self.head = Head(dim, bands)

    def forward(self, fs: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.agg(fs, fc)))


class DecoderLR(nn.Module):
    """D_LR: Head_l(TB^N(1×1(concat[F_Y^S, F_x^S])))."""

    def __init__(self, bands: int, dim: int, n_blocks: int) -> None:
        super().__init__()
        self.fuse = conv1x1(2 * dim, dim)
        self.blocks = nn.Sequential(*[TransformerBlock(dim) for _ in range(n_blocks)])
        self.head = Head(dim, bands)

    def forward(self, fys: torch.Tensor, fxs: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.fuse(torch.cat([fys, fxs], 1))))


class DecoderHR(nn.Module):
    """D_HR: Head_L(TB^N(SpecAgg(SpatAgg(1×1(concat[F_Y^S, F_x^S]), F_Y^C), F_x^C)))."""

    def __init__(self, bands: int, dim: int, n_blocks: int) -> None:
        super().__init__()
        self.fuse = conv1x1(2 * dim, dim)
        self.spat = Aggregation(dim, spatial=True)
        self.spec = Aggregation(dim, spatial=False)
        self.blocks = nn.Sequential(*[TransformerBlock(dim) for _ in range(n_blocks)])
        self.head = Head(dim, bands)

    def forward(self, fys: torch.Tensor, fxs: torch.Tensor, fyc: torch.Tensor, fxc: torch.Tensor) -> torch.Tensor:
        z = self.fuse(torch.cat([fys, fxs], 1))
        return self.head(self.blocks(self.spec(self.spat(z, fyc), fxc)))


@dataclass
class MossFuseOutput:
    """Typed output of :meth:`MossFuseNet.forward` (shapes in ``mossfuse.md`` §1).

    ``fused`` (B, L, H, W), ``srf`` (l, L), ``psf`` (K, K); with ``return_aux=True`` also the
    four feature maps, the self-supervised reconstructions and the BlindNet outputs.
    """

    fused: torch.Tensor
    srf: torch.Tensor
    psf: torch.Tensor
    f_ys: torch.Tensor | None = None
    f_yc: torch.Tensor | None = None
    f_xs: torch.Tensor | None = None
    f_xc: torch.Tensor | None = None
    msi_rec: torch.Tensor | None = None
    hsi_rec: torch.Tensor | None = None
    lr_msi_rec: torch.Tensor | None = None
    y_x: torch.Tensor | None = None
    y_Y: torch.Tensor | None = None


class MossFuseNet(nn.Module):
    """The MossFuse network (``mossfuse.md`` §1–§6).

    Parameters
    ----------
    hs_bands, ms_bands : int
        L and l.
    ratio : int
        Integer resolution ratio r.
    dim : int, default 48
        Feature width C (divisible by 8).
    n_blocks : int, default 1
        N.
    geometry : {"block_centred", "mossfuse"}, default "block_centred"
    psf_size : int, optional
        Override K.
    reference_layout : bool, default True
        Keep the two unused 1×1 convs of the reference D_MSI and D_HSI (2·2C² parameters),
        so the count is the reference's 585,485 and its checkpoint can be loaded.
    learn_psf_shift : bool, default False
    clamp_lr_msi : bool, default True

    Examples
    --------
    >>> net = MossFuseNet(31, 3, 32)
    >>> sum(p.numel() for p in net.parameters())
    585485
    >>> sum(p.numel() for p in net.fusion_parameters())
    449153
    """

    def __init__(
        self, hs_bands: int, ms_bands: int, ratio: int, *, dim: int = 48, n_blocks: int = 1,
        geometry: GeometryName = "block_centred", psf_size: int | None = None,
        reference_layout: bool = True, learn_psf_shift: bool = False, clamp_lr_msi: bool = True,
    ) -> None:
        super().__init__()
        if dim % 8:
            raise ShapeError(f"feature width must be divisible by 8, got {dim}")
        if n_blocks < 1:
            raise ShapeError(f"n_blocks must be >= 1, got {n_blocks}")
        self.hs_bands, self.ms_bands, self.ratio = hs_bands, ms_bands, int(ratio)
        self.geometry = geometry_of(ratio, geometry, psf_size)
        # registration order = the reference's module order (for loading by position)
        self.enc_msi = EncoderMSI(ms_bands, dim, n_blocks)
        self.enc_hsi = EncoderHSI(hs_bands, dim, n_blocks)
        self.dec_msi = SelfDecoder(ms_bands, dim, n_blocks, True, reference_layout)
        self.dec_hsi = SelfDecoder(hs_bands, dim, n_blocks, False, reference_layout)
        self.blind = BlindNet(hs_bands, ms_bands, self.geometry, learn_psf_shift=learn_psf_shift,
                              clamp=clamp_lr_msi)
        self.dec_lr = DecoderLR(ms_bands, dim, n_blocks)
        self.dec_hr = DecoderHR(hs_bands, dim, n_blocks)

    def fusion_modules(self) -> list[nn.Module]:
        """E_MSI, E_HSI, BlindNet and D_HR (the inference path)."""
        return [self.enc_msi, self.enc_hsi, self.blind, self.dec_hr]

    def fusion_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.fusion_modules() for p in m.parameters()]

    def main_parameters(self) -> list[nn.Parameter]:
        """Every parameter but BlindNet's."""
        blind = {id(p) for p in self.blind.parameters()}
        return [p for p in self.parameters() if id(p) not in blind]

    def forward(
        self, x: torch.Tensor, Y: torch.Tensor, *, return_aux: bool = True,
        offsets: list[tuple[int, int]] | None = None, base: torch.Tensor | None = None,
        transforms: list[tuple[int, bool]] | None = None,
    ) -> MossFuseOutput:
        """Run the network.

        Parameters
        ----------
        x : Tensor of shape (B, L, h, w)
        Y : Tensor of shape (B, l, H, W)
        return_aux : bool
            ``False`` runs the fusion path only (no self-supervised decoders, no BlindNet
            forward on the images).
        offsets : list of (int, int), optional
            Per-item sampling offsets (augmentation tracking).
        transforms : list of (int, bool), optional
            Per-item dihedral transforms applied to the inputs; the PSF is transformed too.
        base : Tensor of shape (B, L, H, W), optional
            Added to D_HR's output (an output initialisation; ``None`` in the reference).
        """
        r = self.ratio
        if Y.shape[-2] != r * x.shape[-2] or Y.shape[-1] != r * x.shape[-1]:
            raise ShapeError(
                f"MSI {tuple(Y.shape[-2:])} is not {r}x the HSI {tuple(x.shape[-2:])}; check the ratio"
            )
        x_up = upsample_bilinear(x, r)
        f_ys, f_yc = self.enc_msi(Y)
        f_xs, f_xc = self.enc_hsi(x_up)
        fused = self.dec_hr(f_ys, f_xs, f_yc, f_xc)
        if base is not None:
            fused = fused + base
        if not return_aux:
            return MossFuseOutput(fused=fused, srf=self.blind.srf(), psf=self.blind.psf())
        y_x, y_Y, R, k = self.blind(x, Y, offsets, transforms)
        return MossFuseOutput(
            fused=fused, srf=R, psf=k, f_ys=f_ys, f_yc=f_yc, f_xs=f_xs, f_xc=f_xc,
            msi_rec=self.dec_msi(f_ys, f_yc), hsi_rec=self.dec_hsi(f_xs, f_xc),
            lr_msi_rec=self.dec_lr(f_ys, f_xs), y_x=y_x, y_Y=y_Y,
        )


def parameter_formula(L: int, l: int, C: int = 48, N: int = 1, reference_layout: bool = True) -> dict[str, int]:
    """Closed-form parameter counts of ``mossfuse.md`` §5 (total and fusion path).

    Examples
    --------
    >>> parameter_formula(31, 3)
    {'total': 585485, 'fusion': 449153}
    """
    tb = 10 * C * C + 67 * C + 8
    lk7 = (34 * C * C + 473 * C) // 4
    lk0 = (34 * C * C + 65 * C) // 4
    spg = C * C // 8 + C * C // 64 + C // 8
    spe = C * C // 4 + C * C // 64
    csa = 4 * C * C + 36 * C + 8 + spg + spe
    cspa = 5 * C * C + 27 * C + 8 + spg + spe
    agg = 4 * C + 6 * C * C + 36 * C
    spat, spec = agg + csa, agg + cspa
    head = lambda o: (9 * C * C + 9 * C * o) // 2  # noqa: E731
    e_msi = 9 * l * C + N * tb + 2 * lk7 + 4 * lk0 + tb
    e_hsi = 9 * L * C + N * tb + lk7 + 2 * lk0 + 2 * tb
    unused = 2 * C * C if reference_layout else 0
    d_msi = unused + spat + (N - 1) * tb + head(l)
    d_hsi = unused + spec + (N - 1) * tb + head(L)
    d_lr = 2 * C * C + N * tb + head(l)
    blind = l * L + 4
    d_hr = 2 * C * C + spat + spec + N * tb + head(L)
    fusion = e_msi + e_hsi + blind + d_hr
    return {"total": fusion + d_msi + d_hsi + d_lr, "fusion": fusion}
