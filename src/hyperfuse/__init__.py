"""hyperfuse: hyperspectral-multispectral image fusion.

Top level exports are lazy so that ``import hyperfuse`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "fuse": "hyperfuse.api",
    "read": "hyperfuse.io",
    "write": "hyperfuse.io",
    "simulate": "hyperfuse.physics",
    "SensorSpec": "hyperfuse.types",
    "FusionResult": "hyperfuse.types",
    "RasterMeta": "hyperfuse.types",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hyperfuse' has no attribute {name!r}")
