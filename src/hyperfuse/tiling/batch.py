"""Fuse many scenes: :func:`fuse_batch` (``hyperfuse fuse-batch``).

Every scene goes through :func:`~hyperfuse.tiling.fuse_tiled` (or
:func:`~hyperfuse.tiling.dask.fuse_tiled_dask` when a scheduler is given), so each output is
resumable on its own; finished outputs (complete marker present) are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .store import is_complete

__all__ = ["BatchItem", "fuse_batch"]


@dataclass
class BatchItem:
    """Outcome of one scene: ``status`` is ``"done"``, ``"skipped"`` or ``"failed"``."""

    hsi: Any
    msi: Any
    out: Path
    status: str
    seconds: float = 0.0
    error: str | None = None


def fuse_batch(
    method: Any,
    pairs: Sequence[tuple[Any, Any, str | Path]],
    sensor: Any,
    *,
    tile: int,
    overlap: int | None = None,
    scheduler: Any = None,
    n_workers: int | None = None,
    resume: bool = True,
    on_error: Literal["raise", "continue"] = "raise",
    progress: Callable[[int, int, BatchItem], None] | None = None,
) -> list[BatchItem]:
    """Fuse ``(hsi, msi, out)`` pairs one after the other, each tiled and resumable.

    Parameters
    ----------
    method : FusionMethod or str
    pairs : sequence of (hsi, msi, out)
        Inputs as accepted by :func:`~hyperfuse.tiling.fuse_tiled` (paths for large scenes).
    sensor : SensorSpec, FusionPhysics, None, or callable
        One sensor for all scenes, or ``sensor(hsi, msi)`` returning one per scene.
    tile, overlap
        As in :func:`~hyperfuse.tiling.fuse_tiled`.
    scheduler : str, Client or cluster, optional
        ``None``: in-process; otherwise tiles run on Dask (see :mod:`hyperfuse.tiling.dask`).
    n_workers : int, optional
    resume : bool
        Skip finished outputs and reuse finished tiles.
    on_error : {"raise", "continue"}
        ``"continue"`` records the failure and goes on with the next scene.
    progress : callable, optional
        ``progress(index, total, item)`` after every scene.

    Returns
    -------
    list of BatchItem
    """
    from ..methods import get_method
    from .tiles import fuse_tiled

    m = get_method(method) if isinstance(method, str) else method
    items: list[BatchItem] = []
    for k, (hsi, msi, out) in enumerate(pairs):
        outp = Path(out).expanduser()
        t0 = time.perf_counter()
        if resume and is_complete(outp):
            item = BatchItem(hsi, msi, outp, "skipped")
        else:
            sens = sensor(hsi, msi) if callable(sensor) else sensor
            try:
                if scheduler is None:
                    fuse_tiled(m, hsi, msi, sens, tile=tile, overlap=overlap, out=outp, resume=resume)
                else:
                    from .dask import fuse_tiled_dask

                    fuse_tiled_dask(
                        m, hsi, msi, sens, tile=tile, overlap=overlap, out=outp,
                        scheduler=scheduler, n_workers=n_workers, resume=resume,
                    )
                item = BatchItem(hsi, msi, outp, "done", time.perf_counter() - t0)
            except Exception as exc:
                if on_error == "raise":
                    raise
                item = BatchItem(hsi, msi, outp, "failed", time.perf_counter() - t0, f"{type(exc).__name__}: {exc}")
        items.append(item)
        if progress is not None:
            progress(k + 1, len(pairs), item)
    return items
