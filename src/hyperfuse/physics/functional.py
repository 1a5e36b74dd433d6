"""Pure tensor kernels of the degradation model (no state).

Conventions (``protocols.md`` §1–3, ``classical.md`` §1). Cubes are (B, C, H, W).
The spatial operator D is in correlation form::

    D(X)[b, i, j] = sum_{u,v} k[u, v] X[b, r*i + o_y + u - K_h//2, r*j + o_x + v - K_w//2]

with PSF k (K_h x K_w, sum 1), integer ratio r, offset o and a boundary mode
that resolves out-of-range indices: ``"reflect"`` (reflect-101: the edge pixel is
not repeated), ``"circular"``, ``"replicate"`` or ``"zeros"``. Padding is an index
gather, so every adjoint is exact: the adjoint of padding scatters back with
``index_add``.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ShapeError

__all__ = [
    "fwhm_to_sigma",
    "gaussian_psf",
    "box_psf",
    "default_psf_size",
    "phase_offset",
    "blur",
    "blur_adjoint",
    "decimate",
    "decimate_adjoint",
    "spatial_degrade",
    "spatial_degrade_adjoint",
    "apply_srf",
    "apply_srf_adjoint",
    "upsample",
    "separable_factors",
    "degradation_matrix",
]

Boundary = Literal["reflect", "circular", "replicate", "zeros"]
Phase = Literal["block_centred", "mossfuse", "corner"]

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def fwhm_to_sigma(fwhm: float) -> float:
    """Gaussian standard deviation for a full width at half maximum.

    Examples
    --------
    >>> round(fwhm_to_sigma(4), 3)
    1.699
    """
    return float(fwhm) / FWHM_PER_SIGMA


def default_psf_size(sigma: float, ratio: int) -> int:
    """Smallest K >= 2*ceil(3*sigma)+1 with K = ratio (mod 2).

    The parity rule keeps the block-centred geometry exact for even and odd ratios.

    Examples
    --------
    >>> [default_psf_size(fwhm_to_sigma(r), r) for r in (4, 6, 8)]
    [14, 18, 24]
    """
    k = 2 * math.ceil(3.0 * sigma) + 1
    if (k - ratio) % 2:
        k += 1
    return int(k)


def gaussian_psf(sigma: float, size: int) -> np.ndarray:
    """Isotropic Gaussian PSF truncated to ``size`` x ``size``, then normalised to sum 1.

    Parameters
    ----------
    sigma : float
        Standard deviation in HR pixels (> 0).
    size : int
        Kernel width K (>= 1). The centre is at (K-1)/2 for odd and even K.

    Returns
    -------
    ndarray of shape (K, K), float64

    Examples
    --------
    >>> k = gaussian_psf(1.0, 5)
    >>> k.shape, round(float(k.sum()), 12)
    ((5, 5), 1.0)
    """
    if not sigma > 0:
        raise ShapeError(f"PSF sigma must be > 0, got {sigma}; pass e.g. --psf-sigma 1.7")
    if int(size) != size or size < 1:
        raise ShapeError(f"PSF size must be a positive integer, got {size}; pass e.g. --psf-size 13")
    t = np.arange(int(size), dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(t**2) / (2.0 * sigma**2))
    k = np.outer(g, g)
    return k / k.sum()


def box_psf(ratio: int) -> np.ndarray:
    """Uniform r x r block-average PSF.

    Examples
    --------
    >>> box_psf(2)
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    return np.full((ratio, ratio), 1.0 / ratio**2)


def phase_offset(phase: Phase | int, ratio: int, size: int | None = None) -> int:
    """Sampling offset o for a named phase convention (``protocols.md`` §3).

    ``"block_centred"`` gives floor(r/2): with K = r (mod 2) the LR pixel is centred on
    its r x r block. ``"mossfuse"`` gives floor((r-1)/2); ``"corner"`` gives 0. An int is
    returned as is after a range check.

    Examples
    --------
    >>> phase_offset("block_centred", 8), phase_offset("mossfuse", 32), phase_offset("corner", 4)
    (4, 15, 0)
    """
    if isinstance(phase, (int, np.integer)) and not isinstance(phase, bool):
        o = int(phase)
    elif phase == "block_centred":
        o = ratio // 2
    elif phase == "mossfuse":
        o = (ratio - 1) // 2
    elif phase == "corner":
        o = 0
    else:
        raise ShapeError(
            f"unknown phase {phase!r}; use block_centred, mossfuse, corner or an integer 0..r-1"
        )
    if not 0 <= o < max(ratio, 1):
        raise ShapeError(f"phase offset {o} is outside 0..{ratio - 1}; pass an offset below the ratio")
    return o


def _pad_index(n: int, before: int, after: int, boundary: Boundary, device: torch.device):
    """Source index for each padded position along one axis (and a validity mask)."""
    pos = torch.arange(-before, n + after, device=device)
    if boundary == "circular":
        return pos % n, None
    if boundary == "replicate":
        return pos.clamp(0, n - 1), None
    if boundary == "zeros":
        valid = (pos >= 0) & (pos < n)
        return pos.clamp(0, n - 1), valid
    if boundary == "reflect":
        if n == 1:
            return torch.zeros_like(pos), None
        period = 2 * (n - 1)
        q = pos % period
        return torch.where(q < n, q, period - q), None
    raise ShapeError(f"unknown boundary {boundary!r}; use reflect, circular, replicate or zeros")


def _pad(x: torch.Tensor, pads: tuple[int, int, int, int], boundary: Boundary) -> torch.Tensor:
    top, bottom, left, right = pads
    H, W = x.shape[-2:]
    iy, my = _pad_index(H, top, bottom, boundary, x.device)
    ix, mx = _pad_index(W, left, right, boundary, x.device)
    out = x.index_select(-2, iy).index_select(-1, ix)
    if my is not None:
        out = out * my.to(x.dtype)[:, None]
    if mx is not None:
        out = out * mx.to(x.dtype)[None, :]
    return out


def _pad_adjoint(
    y: torch.Tensor, shape: tuple[int, int], pads: tuple[int, int, int, int], boundary: Boundary
) -> torch.Tensor:
    top, bottom, left, right = pads
    H, W = shape
    iy, my = _pad_index(H, top, bottom, boundary, y.device)
    ix, mx = _pad_index(W, left, right, boundary, y.device)
    if my is not None:
        y = y * my.to(y.dtype)[:, None]
    if mx is not None:
        y = y * mx.to(y.dtype)[None, :]
    z = y.new_zeros((*y.shape[:-1], W)).index_add_(-1, ix, y)
    return z.new_zeros((*z.shape[:-2], H, W)).index_add_(-2, iy, z)


def _kernel(psf: torch.Tensor | np.ndarray, x: torch.Tensor) -> torch.Tensor:
    k = torch.as_tensor(psf, dtype=x.dtype, device=x.device)
    if k.ndim != 2:
        raise ShapeError(f"PSF must be a 2-D kernel, got shape {tuple(k.shape)}")
    return k.expand(x.shape[1], 1, *k.shape)


def _same_pads(psf_shape: tuple[int, int]) -> tuple[int, int, int, int]:
    kh, kw = psf_shape
    return (kh // 2, kh - 1 - kh // 2, kw // 2, kw - 1 - kw // 2)


def blur(x: torch.Tensor, psf: torch.Tensor | np.ndarray, boundary: Boundary = "reflect") -> torch.Tensor:
    """Band-wise 'same' correlation with ``psf``.

    Parameters
    ----------
    x : Tensor of shape (B, C, H, W)
    psf : array of shape (K_h, K_w)
    boundary : {"reflect", "circular", "replicate", "zeros"}

    Returns
    -------
    Tensor of shape (B, C, H, W)

    Examples
    --------
    >>> x = torch.ones(1, 2, 5, 5)
    >>> bool(torch.allclose(blur(x, gaussian_psf(1.0, 3)), x))
    True
    """
    w = _kernel(psf, x)
    pads = _same_pads(tuple(w.shape[-2:]))
    return F.conv2d(_pad(x, pads, boundary), w, groups=x.shape[1])


def blur_adjoint(
    y: torch.Tensor, psf: torch.Tensor | np.ndarray, boundary: Boundary = "reflect"
) -> torch.Tensor:
    """Exact adjoint of :func:`blur`."""
    w = _kernel(psf, y)
    pads = _same_pads(tuple(w.shape[-2:]))
    z = F.conv_transpose2d(y, w, groups=y.shape[1])
    return _pad_adjoint(z, tuple(y.shape[-2:]), pads, boundary)


def decimate(x: torch.Tensor, ratio: int, offset: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Keep every ``ratio``-th sample starting at ``offset``; output h = H // ratio.

    Examples
    --------
    >>> decimate(torch.arange(16.).reshape(1, 1, 4, 4), 2, (1, 1))[0, 0]
    tensor([[ 5.,  7.],
            [13., 15.]])
    """
    h, w = x.shape[-2] // ratio, x.shape[-1] // ratio
    oy, ox = offset
    return x[..., oy : oy + ratio * h : ratio, ox : ox + ratio * w : ratio]


def decimate_adjoint(
    y: torch.Tensor, ratio: int, offset: tuple[int, int], shape: tuple[int, int]
) -> torch.Tensor:
    """Zero-filling adjoint of :func:`decimate` onto an (H, W) grid."""
    out = y.new_zeros((*y.shape[:-2], *shape))
    h, w = y.shape[-2:]
    oy, ox = offset
    out[..., oy : oy + ratio * h : ratio, ox : ox + ratio * w : ratio] = y
    return out


def separable_factors(psf: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Return (k_y, k_x) with psf = outer(k_y, k_x) when the PSF is separable, else ``None``.

    Examples
    --------
    >>> ky, kx = separable_factors(gaussian_psf(1.0, 5))
    >>> bool(np.allclose(np.outer(ky, kx), gaussian_psf(1.0, 5)))
    True
    >>> separable_factors(np.eye(3)) is None
    True
    """
    k = np.asarray(psf.detach().cpu() if isinstance(psf, torch.Tensor) else psf, dtype=np.float64)
    if k.ndim != 2:
        return None
    u, s, vt = np.linalg.svd(k)
    if s[0] == 0 or (s.size > 1 and s[1] > 1e-12 * s[0]):
        return None
    sign = 1.0 if u[:, 0].sum() >= 0 else -1.0
    return sign * u[:, 0] * np.sqrt(s[0]), sign * vt[0] * np.sqrt(s[0])


def degradation_matrix(
    kernel_1d: np.ndarray, n: int, ratio: int, offset: int, boundary: Boundary = "reflect"
) -> np.ndarray:
    """The 1-D blur + decimation as an (n // ratio, n) matrix, boundary folded in.

    For a separable PSF k = k_y k_x^T, D(X) = M_y X M_x^T exactly (including the boundary),
    which turns the operator into two matrix products.

    Examples
    --------
    >>> degradation_matrix(np.array([0.5, 0.5]), 4, 2, 1)
    array([[0.5, 0.5, 0. , 0. ],
           [0. , 0. , 0.5, 0.5]])
    """
    k = np.asarray(kernel_1d, dtype=np.float64)
    K = k.size
    c = K // 2
    m = n // ratio
    pos = (ratio * np.arange(m) + offset)[:, None] + np.arange(K)[None, :] - c
    idx, valid = _pad_index(n, c + ratio, K + ratio, boundary, torch.device("cpu"))
    src = idx.numpy()[pos + c + ratio]
    w = np.broadcast_to(k, pos.shape).copy()
    if valid is not None:
        w = w * valid.numpy()[pos + c + ratio]
    out = np.zeros((m, n))
    np.add.at(out, (np.repeat(np.arange(m), K), src.ravel()), w.ravel())
    return out


_MATRIX_LIMIT = 2**24  # entries; above this the strided convolution uses less memory


def _separable_matrices(
    psf: torch.Tensor | np.ndarray, ratio: int, offset: tuple[int, int], shape: tuple[int, int],
    boundary: Boundary, like: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    H, W = shape
    if (H * H + W * W) // ratio > _MATRIX_LIMIT:
        return None
    k = np.ascontiguousarray(psf.detach().cpu() if isinstance(psf, torch.Tensor) else psf, dtype=np.float64)
    mats = _cached_matrices(k.tobytes(), k.shape, ratio, tuple(offset), (H, W), boundary)
    if mats is None:
        return None
    return (torch.as_tensor(mats[0], dtype=like.dtype, device=like.device),
            torch.as_tensor(mats[1], dtype=like.dtype, device=like.device))


@functools.lru_cache(maxsize=32)
def _cached_matrices(
    psf_bytes: bytes, psf_shape: tuple[int, ...], ratio: int, offset: tuple[int, int],
    shape: tuple[int, int], boundary: Boundary,
) -> tuple[np.ndarray, np.ndarray] | None:
    factors = separable_factors(np.frombuffer(psf_bytes).reshape(psf_shape))
    if factors is None:
        return None
    return (degradation_matrix(factors[0], shape[0], ratio, offset[0], boundary),
            degradation_matrix(factors[1], shape[1], ratio, offset[1], boundary))


def spatial_degrade(
    x: torch.Tensor,
    psf: torch.Tensor | np.ndarray,
    ratio: int,
    offset: tuple[int, int],
    boundary: Boundary = "reflect",
) -> torch.Tensor:
    """Blur then decimate in one strided correlation: D(X) of shape (B, C, H//r, W//r).

    Only the kept samples are computed, so the cost is (H W / r^2) K^2 per band.

    Examples
    --------
    >>> x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    >>> k = gaussian_psf(1.0, 4)
    >>> a = spatial_degrade(x, k, 2, (1, 1))
    >>> b = decimate(blur(x, k), 2, (1, 1))
    >>> bool(torch.allclose(a, b))
    True
    """
    H, W = x.shape[-2:]
    if H < ratio or W < ratio:
        raise ShapeError(f"image {H}x{W} is smaller than the ratio {ratio}; pass a larger image")
    mats = _separable_matrices(psf, ratio, offset, (H, W), boundary, x)
    if mats is not None:  # separable PSF: two matrix products, boundary folded in
        my, mx = mats
        return torch.matmul(torch.matmul(my, x), mx.T)
    w = _kernel(psf, x)
    pads = _same_pads(tuple(w.shape[-2:]))
    oy, ox = offset
    xp = _pad(x, pads, boundary)[..., oy:, ox:]
    y = F.conv2d(xp, w, stride=ratio, groups=x.shape[1])
    return y[..., : H // ratio, : W // ratio]


def spatial_degrade_adjoint(
    y: torch.Tensor,
    psf: torch.Tensor | np.ndarray,
    ratio: int,
    offset: tuple[int, int],
    shape: tuple[int, int],
    boundary: Boundary = "reflect",
) -> torch.Tensor:
    """Exact adjoint of :func:`spatial_degrade` onto an HR grid of ``shape`` (H, W)."""
    H, W = shape
    mats = _separable_matrices(psf, ratio, offset, (H, W), boundary, y)
    if mats is not None:
        my, mx = mats
        return torch.matmul(torch.matmul(my.T, y), mx)
    w = _kernel(psf, y)
    kh, kw = w.shape[-2:]
    pads = _same_pads((kh, kw))
    oy, ox = offset
    z = F.conv_transpose2d(y, w, stride=ratio, groups=y.shape[1])
    zp = y.new_zeros((*y.shape[:-2], H + kh - 1, W + kw - 1))
    zh = min(z.shape[-2], zp.shape[-2] - oy)
    zw = min(z.shape[-1], zp.shape[-1] - ox)
    zp[..., oy : oy + zh, ox : ox + zw] = z[..., :zh, :zw]
    return _pad_adjoint(zp, (H, W), pads, boundary)


def apply_srf(x: torch.Tensor, srf: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Apply an (l, L) spectral response per pixel: (B, L, H, W) -> (B, l, H, W).

    Examples
    --------
    >>> apply_srf(torch.ones(1, 4, 2, 2), np.full((2, 4), 0.25)).shape
    torch.Size([1, 2, 2, 2])
    """
    R = torch.as_tensor(srf, dtype=x.dtype, device=x.device)
    if R.ndim != 2 or R.shape[1] != x.shape[1]:
        raise ShapeError(
            f"SRF has shape {tuple(R.shape)} but the cube has {x.shape[1]} bands; "
            "pass an SRF with one column per HSI band"
        )
    return torch.einsum("ml,blhw->bmhw", R, x)


def apply_srf_adjoint(y: torch.Tensor, srf: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Adjoint of :func:`apply_srf`: (B, l, H, W) -> (B, L, H, W)."""
    R = torch.as_tensor(srf, dtype=y.dtype, device=y.device)
    return torch.einsum("ml,bmhw->blhw", R, y)


def upsample(
    x: torch.Tensor, ratio: int, mode: Literal["bicubic", "bilinear", "nearest"] = "bicubic"
) -> torch.Tensor:
    """Interpolate (B, C, h, w) to (B, C, r h, r w), pixel-centre aligned.

    ``align_corners=False`` assumes block-centred samples (``protocols.md`` §3). Bicubic is
    Keys' kernel with a = -0.75 (PyTorch), edges replicated.

    Examples
    --------
    >>> upsample(torch.ones(1, 2, 3, 3), 4).shape
    torch.Size([1, 2, 12, 12])
    """
    if mode == "nearest":
        return F.interpolate(x, scale_factor=ratio, mode="nearest")
    return F.interpolate(x, scale_factor=ratio, mode=mode, align_corners=False)
