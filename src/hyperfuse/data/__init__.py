"""Synthetic scenes, spectra sources and datasets."""

from .spectra import (
    FAMILIES,
    builtin_spectra,
    check_wavelengths,
    library_spectra,
    read_library,
    scene_spectra,
)
from .synthetic import (
    DeadLeavesPairs,
    SyntheticScene,
    collate_pairs,
    dead_leaves_abundances,
    dead_leaves_scene,
    load_scene_npz,
    preview_figure,
    save_scene_npz,
)

__all__ = [
    "FAMILIES",
    "builtin_spectra",
    "check_wavelengths",
    "library_spectra",
    "read_library",
    "scene_spectra",
    "DeadLeavesPairs",
    "SyntheticScene",
    "collate_pairs",
    "dead_leaves_abundances",
    "dead_leaves_scene",
    "load_scene_npz",
    "preview_figure",
    "save_scene_npz",
]
