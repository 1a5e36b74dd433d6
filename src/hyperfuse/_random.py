"""Explicit randomness: every stochastic API takes ``rng`` and converts it here."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["RNGLike", "as_numpy_rng"]

RNGLike = int | np.random.Generator | torch.Generator | None


def as_numpy_rng(rng: RNGLike) -> np.random.Generator:
    """Return a NumPy ``Generator`` for ``rng`` without touching global state.

    An ``int`` seeds ``Generator(PCG64(seed))`` (the same stream on every machine);
    a ``torch.Generator`` is advanced once to draw a 63-bit seed; ``None`` gives
    fresh OS entropy.

    Examples
    --------
    >>> a = as_numpy_rng(0).standard_normal(2)
    >>> b = as_numpy_rng(0).standard_normal(2)
    >>> bool((a == b).all())
    True
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, torch.Generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=rng).item())
        return np.random.Generator(np.random.PCG64(seed))
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.Generator(np.random.PCG64(int(rng)))
    raise TypeError(f"rng must be an int, numpy Generator, torch Generator or None, got {type(rng)}")
