"""Separable interpolators from the LR grid to the HR grid (``classical.md`` §2.5).

Every interpolator maps (B, C, h, w) to (B, C, r·h, r·w). LR pixel i is taken to sit at HR
coordinate ``i·r + c`` (``c`` is the ``offset`` argument, a float per axis). The default
``c = (r − 1)/2`` is the pixel-centre alignment (output t reads source (t + ½)/r − ½); it is
also where the default sensor (``classical.md`` §1: offset ⌊r/2⌋, PSF width K ≡ r mod 2) centres
its LR pixels. :func:`lr_pixel_centre` gives ``c`` for any sensor, so that methods can
interpolate on the sensor's own sampling phase.

Each output sample is a short weighted sum of LR samples whose weights depend only on the
output phase t mod r, so each axis is one boundary-resolving ``index_select`` (padding) and one
``conv1d`` with r output channels (polyphase form). The cost is (taps per axis)·C·(h·W + H·W)
multiply-adds; the memory is the output plus one padded copy of the input.

- :func:`up_bilinear`: triangle kernel, indices clamped at the edges (replicate).
- :func:`up_bicubic`: Keys' cubic convolution kernel with a = −0.5, symmetric reflection.
- :func:`up_fir`: the GLP interpolator: zero insertion at the offset followed by a 45-tap
  Hamming-windowed sinc low-pass (cut-off 1/r, gain r), circular boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

from .._validation import check_ratio
from ..errors import ShapeError

__all__ = ["up_bilinear", "up_bicubic", "up_fir", "lr_pixel_centre", "keys_kernel", "fir_taps"]

Offset = float | tuple[float, float] | None
InterpBoundary = Literal["symmetric", "reflect", "replicate", "circular"]


def lr_pixel_centre(psf_shape: tuple[int, int], offset: tuple[int, int]) -> tuple[float, float]:
    """HR coordinate of the centre of LR pixel 0 for a PSF of ``psf_shape`` and an ``offset``.

    D samples LR pixel (i, j) at ``r·i + o_y + u − ⌊K_h/2⌋``; a kernel centred at (K−1)/2 puts
    the pixel centre at ``r·i + o + (K−1)/2 − ⌊K/2⌋``, i.e. ``o`` for odd K and ``o − ½`` for
    even K.

    Parameters
    ----------
    psf_shape : tuple of int
        (K_h, K_w).
    offset : tuple of int
        Sampling offset (o_y, o_x).

    Returns
    -------
    tuple of float

    Examples
    --------
    >>> lr_pixel_centre((14, 14), (2, 2)), lr_pixel_centre((13, 13), (1, 1))
    ((1.5, 1.5), (1.0, 1.0))
    """
    kh, kw = psf_shape
    return (
        offset[0] + (kh - 1) / 2.0 - kh // 2,
        offset[1] + (kw - 1) / 2.0 - kw // 2,
    )


def keys_kernel(t: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel.

    Parameters
    ----------
    t : ndarray
        Distances in LR pixels.
    a : float, default -0.5
        Free parameter; −0.5 makes the interpolant third-order accurate (Keys 1981).

    Returns
    -------
    ndarray
        ``(a+2)|t|³ − (a+3)|t|² + 1`` for |t| ≤ 1, ``a|t|³ − 5a|t|² + 8a|t| − 4a`` for
        1 < |t| < 2, else 0.

    References
    ----------
    R. Keys, "Cubic convolution interpolation for digital image processing", IEEE TASSP
    29(6), 1981.

    Examples
    --------
    >>> keys_kernel(np.array([0.0, 0.5, 1.0, 1.5, 2.0])).tolist()
    [1.0, 0.5625, 0.0, -0.0625, 0.0]
    """
    x = np.abs(np.asarray(t, dtype=np.float64))
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def fir_taps(ratio: int, taps: int = 45) -> np.ndarray:
    """The GLP low-pass: a Hamming-windowed sinc, cut-off 1/r, gain r, ``taps`` long.

    ``h[m] = sinc(m/r)·(0.54 + 0.46 cos(2π m/(T−1)))`` for m = −(T−1)/2 … (T−1)/2, so h[0] = 1
    and h[q·r] = 0 for q ≠ 0 (the filter interpolates: it keeps the inserted samples).

    Examples
    --------
    >>> h = fir_taps(4)
    >>> h.shape, float(h[22]), round(float(h.sum()), 2)
    ((45,), 1.0, 4.0)
    """
    if taps < 1 or taps % 2 == 0:
        raise ShapeError(f"FIR length must be odd and positive, got {taps}; pass e.g. 45")
    m = np.arange(taps) - (taps - 1) / 2.0
    return _windowed_sinc(m, ratio, taps)


def _windowed_sinc(d: np.ndarray, ratio: int, taps: int) -> np.ndarray:
    half = (taps - 1) / 2.0
    win = 0.54 + 0.46 * np.cos(np.pi * d / half) if half > 0 else np.ones_like(d)
    q = d / ratio
    sinc = np.where(np.abs(q - np.round(q)) < 1e-12, (np.round(q) == 0).astype(np.float64), np.sinc(q))
    return np.where(np.abs(d) <= half + 1e-9, sinc * win, 0.0)


def _resolve(idx: np.ndarray, n: int, boundary: InterpBoundary) -> np.ndarray:
    if boundary == "circular":
        return np.mod(idx, n)
    if boundary == "replicate":
        return np.clip(idx, 0, n - 1)
    if n == 1:
        return np.zeros_like(idx)
    if boundary == "symmetric":  # half-sample: ... 1 0 | 0 1 2 ... n-1 | n-1 n-2 ...
        q = np.mod(idx, 2 * n)
        return np.where(q < n, q, 2 * n - 1 - q)
    if boundary == "reflect":  # reflect-101: ... 2 1 | 0 1 2 ... n-1 | n-2 ...
        period = 2 * (n - 1)
        q = np.mod(idx, period)
        return np.where(q < n, q, period - q)
    raise ShapeError(f"unknown boundary {boundary!r}; use symmetric, reflect, replicate or circular")


def _phase_kernels(
    n: int,
    ratio: int,
    centre: float,
    weight: Callable[[np.ndarray], np.ndarray],
    support: float,
    boundary: InterpBoundary,
    normalise: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Polyphase form of one axis: padded source indices and (r, T) correlation kernels.

    Output t = q·r + p reads LR positions first_p + q + i (i < T_p) with weights that depend
    only on the phase p, because s = (t − c)/r grows by one when t grows by r. Returns the
    source index of every padded sample and a kernel per phase such that
    out[q·r + p] = Σ_j K[p, j]·x_pad[q + j].
    """
    t = np.arange(ratio, dtype=np.float64)
    s = (t - centre) / ratio  # source positions of the r phases, in LR pixels
    first = np.ceil(s - support - 1e-9).astype(np.int64)
    last = np.floor(s + support + 1e-9).astype(np.int64)
    T = int((last - first).max()) + 1
    idx = first[:, None] + np.arange(T)[None, :]
    w = weight(s[:, None] - idx)
    if normalise:
        w = w / w.sum(axis=1, keepdims=True)
    f0 = int(first.min())
    shift = first - f0
    K = np.zeros((ratio, int(shift.max()) + T))
    for p in range(ratio):
        K[p, shift[p] : shift[p] + T] = w[p]
    pad_idx = _resolve(f0 + np.arange(n + K.shape[1] - 1), n, boundary)
    return pad_idx, K


def _apply_axis(x: torch.Tensor, dim: int, pad_idx: np.ndarray, K: np.ndarray) -> torch.Tensor:
    """Interpolate along ``dim`` (−1 or −2) with the polyphase kernels (one conv1d)."""
    if dim == -2:
        return _apply_axis(x.transpose(-1, -2), -1, pad_idx, K).transpose(-1, -2)
    r, T = K.shape
    n = x.shape[-1]
    xp = x.index_select(-1, torch.as_tensor(pad_idx, device=x.device))
    lead = xp.shape[:-1]
    wt = torch.as_tensor(K, dtype=x.dtype, device=x.device)[:, None, :]
    y = torch.nn.functional.conv1d(xp.reshape(-1, 1, xp.shape[-1]), wt)  # (M, r, n)
    return y.transpose(1, 2).reshape(*lead, n * r)


def _offsets(offset: Offset, ratio: int) -> tuple[float, float]:
    if offset is None:
        c = (ratio - 1) / 2.0
        return (c, c)
    if isinstance(offset, (int, float, np.integer, np.floating)):
        return (float(offset), float(offset))
    oy, ox = offset
    return (float(oy), float(ox))


def _separable(
    x: torch.Tensor,
    ratio: int,
    offset: Offset,
    weight: Callable[[np.ndarray], np.ndarray],
    support: float,
    boundary: InterpBoundary,
    normalise: bool,
) -> torch.Tensor:
    if x.ndim < 2:
        raise ShapeError(f"expected an image of shape (..., h, w), got {tuple(x.shape)}")
    r = check_ratio(ratio)
    cy, cx = _offsets(offset, r)
    h, w = x.shape[-2:]
    if h == 0 or w == 0:
        raise ShapeError(f"cannot interpolate an empty image of shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    iy, ky = _phase_kernels(h, r, cy, weight, support, boundary, normalise)
    ix, kx = _phase_kernels(w, r, cx, weight, support, boundary, normalise)
    return _apply_axis(_apply_axis(x, -1, ix, kx), -2, iy, ky)


def up_bilinear(x: torch.Tensor, ratio: int, *, offset: Offset = None) -> torch.Tensor:
    """Bilinear upsampling by ``ratio``, edge samples replicated.

    Parameters
    ----------
    x : Tensor of shape (..., h, w)
    ratio : int
        Integer ratio r.
    offset : float or (float, float), optional
        HR coordinate of LR pixel 0 (default (r − 1)/2: pixel-centre aligned).

    Returns
    -------
    Tensor of shape (..., r·h, r·w)

    Notes
    -----
    Output t reads the LR signal at s = (t − c)/r with the triangle kernel max(1 − |t|, 0) and
    replicated edges (the same as clamping s to [0, n − 1]). With the default offset this equals
    ``torch.nn.functional.interpolate(..., mode="bilinear", align_corners=False)``.

    Examples
    --------
    >>> up_bilinear(torch.tensor([[0.0, 1.0]]), 2)[0]
    tensor([0.0000, 0.2500, 0.7500, 1.0000])
    """
    return _separable(
        x, ratio, offset, lambda d: np.maximum(1.0 - np.abs(d), 0.0), 1.0, "replicate", normalise=False
    )


def up_bicubic(
    x: torch.Tensor,
    ratio: int,
    *,
    offset: Offset = None,
    a: float = -0.5,
    boundary: InterpBoundary = "symmetric",
) -> torch.Tensor:
    """Bicubic (Keys, a = −0.5) upsampling by ``ratio``.

    Parameters
    ----------
    x : Tensor of shape (..., h, w)
    ratio : int
        Integer ratio r.
    offset : float or (float, float), optional
        HR coordinate of LR pixel 0 (default (r − 1)/2: pixel-centre aligned).
    a : float, default -0.5
        Keys' parameter (PyTorch's ``bicubic`` uses −0.75).
    boundary : {"symmetric", "reflect", "replicate", "circular"}, default "symmetric"
        How taps beyond the edge are resolved. ``"symmetric"`` mirrors about the outer pixel
        edge (the edge sample repeats, as MATLAB's ``imresize``); ``"reflect"`` mirrors about
        the edge sample (reflect-101).

    Returns
    -------
    Tensor of shape (..., r·h, r·w)

    Notes
    -----
    Output t = Σ_i k(s − i)·x[i] with s = (t − c)/r and k = :func:`keys_kernel`. The kernel
    reproduces constants exactly and quadratics away from the edges, and interpolates
    (output at s = i equals x[i]).

    Examples
    --------
    >>> y = up_bicubic(torch.ones(1, 2, 3, 3), 4)
    >>> tuple(y.shape), bool(torch.allclose(y, torch.ones(()), atol=1e-6))
    ((1, 2, 12, 12), True)
    """
    return _separable(
        x, ratio, offset, lambda d: keys_kernel(d, a), 2.0, boundary, normalise=False
    )


def up_fir(x: torch.Tensor, ratio: int, *, offset: Offset = None, taps: int = 45) -> torch.Tensor:
    """GLP interpolation: zero insertion at ``offset``, then a windowed-sinc FIR, circular.

    Parameters
    ----------
    x : Tensor of shape (..., h, w)
    ratio : int
        Integer ratio r.
    offset : float or (float, float), optional
        HR coordinate where LR sample 0 is inserted (default (r − 1)/2). Fractional offsets
        evaluate the same windowed sinc at fractional distances (a half-pixel phase for even
        PSF widths, see :func:`lr_pixel_centre`).
    taps : int, default 45
        FIR length T (odd); 45 taps is the 44th-order filter of the GLP literature.

    Returns
    -------
    Tensor of shape (..., r·h, r·w)

    Notes
    -----
    With Z the zero-filled HR image (Z[i·r + c] = x[i]), the output is h ⋆ Z with
    h = :func:`fir_taps` (sinc(m/r) times a Hamming window, gain r), computed in polyphase form.
    Each phase is normalised to unit DC gain (a change of at most a few 1e-3 for T = 45), so
    constants are reproduced exactly; with an integer offset the inserted samples are kept
    exactly because h[0] = 1 and h[q·r] = 0.

    References
    ----------
    B. Aiazzi, L. Alparone, S. Baronti, A. Garzelli, "Context-driven fusion of high spatial
    and spectral resolution images based on oversampled multiresolution analysis",
    IEEE TGRS 40(10), 2002.

    Examples
    --------
    >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
    >>> y = up_fir(x, 2, offset=0)
    >>> y.shape, bool(torch.equal(y[..., ::2, ::2], x))
    (torch.Size([1, 1, 4, 4]), True)
    """
    r = check_ratio(ratio)
    if taps < 1 or taps % 2 == 0:
        raise ShapeError(f"FIR length must be odd and positive, got {taps}; pass e.g. 45")
    support = (taps - 1) / 2.0 / r  # in LR pixels
    return _separable(
        x,
        r,
        offset,
        lambda d: _windowed_sinc(d * r, r, taps),
        support,
        "circular",
        normalise=True,
    )
