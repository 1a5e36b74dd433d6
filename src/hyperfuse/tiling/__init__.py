"""Tiled, resumable and distributed fusion of scenes larger than memory (issue 9).

- :func:`fuse_tiled` — ratio-aligned tiles, smooth blending, lazy inputs, incremental and
  resumable outputs (:mod:`.tiles`, :mod:`.store`);
- :mod:`.globals` — the global spectral stage / local spatial solve split;
- :func:`fuse_tiled_dask` — the same job on a Dask scheduler or cluster (:mod:`.dask`);
- :func:`fuse_batch` — many scenes (:mod:`.batch`).
"""

from __future__ import annotations

from typing import Any

from .globals import GlobalAdapter, adapter_for
from .store import as_source, complete_marker, is_complete, scratch_dir
from .tiles import Tile, TileGrid, blend_weights, fuse_tiled, tile_grid

__all__ = [
    "GlobalAdapter",
    "Tile",
    "TileGrid",
    "adapter_for",
    "as_source",
    "blend_weights",
    "complete_marker",
    "fuse_batch",
    "fuse_tiled",
    "fuse_tiled_dask",
    "is_complete",
    "scratch_dir",
    "tile_grid",
]


def __getattr__(name: str) -> Any:
    if name == "fuse_tiled_dask":
        from .dask import fuse_tiled_dask

        return fuse_tiled_dask
    if name == "fuse_batch":
        from .batch import fuse_batch

        return fuse_batch
    raise AttributeError(name)
