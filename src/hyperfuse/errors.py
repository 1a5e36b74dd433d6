"""Typed exceptions.

Every error a user can cause by bad input derives from :class:`HyperfuseError`.
Messages are one line: what is wrong, then how to fix it. The CLI turns any
``HyperfuseError`` into that line on stderr and exit code 2.
"""

from __future__ import annotations

__all__ = [
    "HyperfuseError",
    "InputError",
    "ShapeError",
    "FormatError",
    "SRFError",
    "ValueRangeError",
    "MissingDependencyError",
    "DatasetNotFoundError",
    "WeightsError",
]


class HyperfuseError(Exception):
    """Base class of every error caused by user input or the environment."""


class InputError(HyperfuseError, ValueError):
    """An argument or a data file is not usable as given."""


class ShapeError(InputError):
    """Array shapes are inconsistent (e.g. ``hsi`` size times ``ratio`` differs from ``msi``)."""


class FormatError(InputError):
    """A file cannot be read or written in the requested format."""


class SRFError(InputError):
    """A spectral response cannot be built or does not match the data."""


class ValueRangeError(InputError):
    """Data values are unusable (NaN/Inf, empty, unscaled integers)."""


class MissingDependencyError(HyperfuseError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class DatasetNotFoundError(HyperfuseError, FileNotFoundError):
    """A dataset is not where it is expected; the message says where to put it."""


class WeightsError(HyperfuseError):
    """A weights file is missing, corrupted or does not match its metadata."""


def require(module: str, extra: str) -> object:
    """Import an optional dependency or raise :class:`MissingDependencyError`.

    Parameters
    ----------
    module : str
        Importable module name, e.g. ``"rasterio"``.
    extra : str
        The ``hyperfuse`` extra that provides it, e.g. ``"io"``.

    Returns
    -------
    module
        The imported module.

    Examples
    --------
    >>> require("numpy", "core").__name__
    'numpy'
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"{module} is not installed; install it with: pip install 'hyperfuse[{extra}]'"
        ) from exc
