"""Shape and value guards, and the NumPy <-> torch conversion at the API boundary.

Inside the library every cube is a float32 ``torch.Tensor`` of shape (B, C, H, W).
Public wrappers accept NumPy arrays laid out (H, W, C) and convert exactly once,
with :func:`to_internal` and back with :func:`to_hwc`.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import torch

from .errors import InputError, ShapeError, ValueRangeError

__all__ = [
    "check_choice",
    "check_cube",
    "check_ratio",
    "check_pair",
    "to_internal",
    "to_hwc",
    "check_finite",
]

Layout = Literal["hwc", "chw"]


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise :class:`InputError` naming ``name`` and its choices unless ``value`` is one of them."""
    if value not in choices:
        opts = ", ".join(repr(c) for c in choices)
        raise InputError(f"{name} must be one of {opts}, got {value!r}")


def check_ratio(ratio: Any) -> int:
    """Return ``ratio`` as a positive int or raise :class:`~hyperfuse.errors.InputError`.

    Examples
    --------
    >>> check_ratio(4)
    4
    >>> check_ratio(4.0)
    4
    >>> check_ratio(2.5)
    Traceback (most recent call last):
    ...
    hyperfuse.errors.ShapeError: ratio must be a positive integer, got 2.5; pass e.g. --ratio 4
    """
    try:
        f = float(ratio)
    except (TypeError, ValueError):
        raise ShapeError(
            f"ratio must be a positive integer, got {ratio!r}; pass e.g. --ratio 4"
        ) from None
    if not np.isfinite(f) or f != int(f) or int(f) < 1:
        raise ShapeError(f"ratio must be a positive integer, got {ratio!r}; pass e.g. --ratio 4")
    return int(f)


def check_cube(x: torch.Tensor, name: str = "cube") -> torch.Tensor:
    """Check that ``x`` is a non-empty 4-D (B, C, H, W) tensor."""
    if x.ndim != 4:
        raise ShapeError(
            f"{name} must have shape (B, C, H, W), got {tuple(x.shape)}; "
            "pass a cube with a spectral axis"
        )
    if x.numel() == 0:
        raise ShapeError(f"{name} is empty (shape {tuple(x.shape)}); pass a non-empty cube")
    return x


def check_finite(x: np.ndarray | torch.Tensor, name: str = "cube") -> None:
    """Raise :class:`ValueRangeError` if ``x`` contains NaN or Inf."""
    bad = (~torch.isfinite(x)).sum().item() if isinstance(x, torch.Tensor) else int(
        np.size(x) - np.count_nonzero(np.isfinite(x))
    )
    if bad:
        raise ValueRangeError(
            f"{name} contains {bad} NaN/Inf values; mask them with --nodata VALUE "
            "(they are then filled from neighbours) or clean the file"
        )


def check_pair(hsi: torch.Tensor, msi: torch.Tensor, ratio: int) -> None:
    """Check that an (LR-HSI, HR-MSI) pair is consistent with ``ratio``."""
    check_cube(hsi, "hsi")
    check_cube(msi, "msi")
    if hsi.shape[0] != msi.shape[0]:
        raise ShapeError(
            f"hsi and msi batch sizes differ ({hsi.shape[0]} vs {msi.shape[0]}); pass matching batches"
        )
    h, w = hsi.shape[-2:]
    H, W = msi.shape[-2:]
    if (h * ratio, w * ratio) != (H, W):
        raise ShapeError(
            f"hsi size {h}x{w} times ratio {ratio} is {h * ratio}x{w * ratio} but msi is {H}x{W}; "
            "check --ratio or crop the msi to a multiple of the hsi size"
        )


def to_internal(
    array: np.ndarray | torch.Tensor,
    *,
    layout: Layout = "hwc",
    name: str = "cube",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Convert a boundary array to an internal (B, C, H, W) float tensor.

    Parameters
    ----------
    array : ndarray or Tensor
        (H, W, C) or (C, H, W) per ``layout``, or already (B, C, H, W) when a tensor.
    layout : {"hwc", "chw"}
        Axis order of a 3-D ``array``.
    name : str
        Used in error messages.
    dtype : torch.dtype
        Output dtype.

    Returns
    -------
    Tensor of shape (1, C, H, W)

    Examples
    --------
    >>> to_internal(np.zeros((4, 5, 3))).shape
    torch.Size([1, 3, 4, 5])
    """
    if isinstance(array, torch.Tensor):
        t = array
        if t.ndim == 3:
            t = t.unsqueeze(0) if layout == "chw" else t.permute(2, 0, 1).unsqueeze(0)
    else:
        a = np.asarray(array)
        if a.ndim == 2:
            raise ShapeError(
                f"{name} is 2-D {a.shape} but a cube (rows, cols, bands) is expected; "
                "pass a 3-D array (add a band axis for a single band)"
            )
        if a.ndim != 3:
            raise ShapeError(f"{name} must be 3-D (rows, cols, bands), got shape {a.shape}")
        if layout == "hwc":
            a = np.moveaxis(a, -1, 0)
        t = torch.from_numpy(np.ascontiguousarray(a)).unsqueeze(0)
    check_cube(t, name)
    return t.to(dtype)


def to_hwc(x: torch.Tensor) -> np.ndarray:
    """Convert a (1, C, H, W) or (C, H, W) tensor back to an (H, W, C) NumPy array."""
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ShapeError(f"expected a single image, got batch size {x.shape[0]}")
        x = x[0]
    return np.ascontiguousarray(x.detach().cpu().permute(1, 2, 0).numpy())


def warn_negative(x: np.ndarray | torch.Tensor, name: str) -> None:
    """Warn (and keep the values) when a cube has negative entries."""
    n = int((x < 0).sum())
    if n:
        warnings.warn(
            f"{name} has {n} negative values; they are kept (methods that need "
            "non-negative data clip them internally)",
            UserWarning,
            stacklevel=2,
        )
