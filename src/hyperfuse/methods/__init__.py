"""Fusion methods behind one call, ``fuse(hsi, msi, sensor) -> FusionResult``."""

from .base import FusionMethod
from .registry import get_method, list_methods, method_info, register_method

__all__ = ["FusionMethod", "get_method", "list_methods", "method_info", "register_method"]
