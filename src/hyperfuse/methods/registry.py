"""Explicit method registry: one decorator fills one dict."""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import HyperfuseError, InputError
from .base import FusionMethod

__all__ = ["register_method", "get_method", "list_methods", "method_info", "MethodEntry"]


@dataclass(frozen=True)
class MethodEntry:
    """What the registry knows about a method."""

    name: str
    cls: type[FusionMethod]
    config: type | None


_REGISTRY: dict[str, MethodEntry] = {}
# Modules whose import registers methods; imported on first registry access.
_BUILTIN_MODULES = (
    "hyperfuse.methods.classical.bicubic",
    "hyperfuse.methods.classical.cnmf",
    "hyperfuse.methods.classical.gsa",
    "hyperfuse.methods.classical.sfim",
    "hyperfuse.methods.classical.glp",
    "hyperfuse.methods.classical.hysure",
    "hyperfuse.methods.classical.fuse",
    "hyperfuse.methods.unrolled.scalmu",
    "hyperfuse.methods.mossfuse",
)
_loaded = False

T = TypeVar("T", bound=type[FusionMethod])


def register_method(name: str, *, config: type | None = None):  # type: ignore[no-untyped-def]
    """Class decorator registering a :class:`FusionMethod` under ``name``.

    Examples
    --------
    >>> from hyperfuse.methods.base import FusionMethod
    >>> @register_method("_doc_example")
    ... class Example(FusionMethod):
    ...     def _fuse(self, hsi, msi, physics):
    ...         raise NotImplementedError
    >>> "_doc_example" in _REGISTRY
    True
    >>> _ = _REGISTRY.pop("_doc_example")
    """

    def decorate(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"method {name!r} is already registered")
        cls.name = name  # type: ignore[misc]
        _REGISTRY[name] = MethodEntry(name, cls, config)
        return cls

    return decorate


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _BUILTIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:  # a real missing dependency inside the module
                raise


def list_methods() -> list[str]:
    """Names of every registered method, sorted.

    Examples
    --------
    >>> "bicubic" in list_methods()
    True
    """
    _load_builtins()
    return sorted(_REGISTRY)


def get_method(name: str, **overrides: Any) -> FusionMethod:
    """Instantiate a registered method with its default config and ``overrides``.

    Raises
    ------
    InputError
        Unknown method name or unknown config field.
    """
    _load_builtins()
    if name not in _REGISTRY:
        raise InputError(f"unknown method {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}")
    entry = _REGISTRY[name]
    if entry.config is None:
        if overrides:
            raise InputError(f"method {name!r} takes no options, got {sorted(overrides)}")
        return entry.cls()
    fields = {f.name for f in dataclasses.fields(entry.config)}
    unknown = set(overrides) - fields
    if unknown:
        raise InputError(
            f"unknown option(s) {sorted(unknown)} for method {name!r}; valid: {sorted(fields)}"
        )
    return entry.cls(entry.config(**overrides))


def method_info(name: str) -> dict[str, Any]:
    """Description, flags, default config and trainable parameter count of a method."""
    _load_builtins()
    entry = _REGISTRY[name]
    try:
        method = get_method(name)
    except HyperfuseError as exc:  # e.g. weights not installed: still list the method
        return {
            "name": name,
            "description": entry.cls.description,
            "blind": entry.cls.blind,
            "trainable": entry.cls.trainable,
            "parameters": None,
            "config": dataclasses.asdict(entry.config()) if entry.config is not None else {},
            "unavailable": str(exc),
        }
    # Networks whose size depends on the data (L, l, r) report the count of their
    # default configuration through ``parameter_count()``.
    counter = getattr(method, "parameter_count", None)
    n_params = counter() if callable(counter) else sum(
        p.numel() for p in method.parameters() if p.requires_grad
    )
    config = dataclasses.asdict(entry.config()) if entry.config is not None else {}
    return {
        "name": name,
        "description": entry.cls.description or (entry.cls.__doc__ or "").strip().split("\n")[0],
        "blind": entry.cls.blind,
        "trainable": entry.cls.trainable,
        "parameters": n_params if entry.cls.trainable else None,
        "config": config,
    }
