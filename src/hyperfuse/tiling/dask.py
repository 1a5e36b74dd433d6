"""Run tiled fusion on Dask: local threads/processes or a distributed cluster.

The same :class:`~hyperfuse.tiling.tiles.TileJob` as :func:`~hyperfuse.tiling.fuse_tiled`:
the global stage runs once in the driver, tiles run as independent tasks (each stores its
result atomically, so a killed job resumes and skips finished tiles), and the driver refines
the global state (two-pass methods) and assembles the output chunk by chunk.

Dask is imported lazily (the ``dask`` extra); ``distributed`` only for cluster schedulers.

``scheduler``:

- ``"threads"`` (default), ``"processes"``, ``"sync"``: :func:`dask.compute` with that scheduler;
- ``"tcp://HOST:PORT"`` (or any scheduler address): a :class:`distributed.Client` to it;
- a :class:`distributed.Client` or a cluster object (e.g. ``LocalCluster``): used as is.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .._threads import torch_threads
from ..errors import InputError
from .tiles import (
    ProgressFn,
    Tile,
    TileJob,
    assemble,
    blend_stored,
    prepare,
    round_scratch,
    run_rounds,
)

__all__ = ["fuse_tiled_dask", "resolve_scheduler"]

LOCAL_SCHEDULERS = ("threads", "processes", "sync", "synchronous", "single-threaded")


def _require_dask() -> Any:
    try:
        import dask
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("tiled fusion on Dask needs the 'dask' extra: pip install 'hyperfuse[dask]'") from exc
    return dask


def resolve_scheduler(scheduler: Any) -> tuple[str, Any]:
    """Classify ``scheduler`` as ``("local", name)`` or ``("client", Client)``.

    Examples
    --------
    >>> resolve_scheduler("threads")
    ('local', 'threads')
    """
    if scheduler is None:
        return "local", "threads"
    if isinstance(scheduler, str):
        if scheduler in LOCAL_SCHEDULERS:
            return "local", scheduler
        if "://" in scheduler:
            from distributed import Client

            return "client", Client(scheduler)
        raise InputError(
            f"unknown scheduler {scheduler!r}; pass threads, processes, sync or tcp://HOST:PORT"
        )
    if hasattr(scheduler, "submit") and hasattr(scheduler, "gather"):
        return "client", scheduler
    if hasattr(scheduler, "scheduler_address"):
        from distributed import Client

        return "client", Client(scheduler)
    raise InputError(f"unsupported scheduler object {type(scheduler).__name__}")


class _TaskProgress:
    """Dask local-scheduler callback: ``tick()`` after every finished task named ``prefix-…``."""

    def __init__(self, prefix: str, tick: Callable[[], None]) -> None:
        from dask.callbacks import Callback

        outer = self

        class _CB(Callback):  # type: ignore[misc]
            def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
                name = key[0] if isinstance(key, tuple) else key
                if str(name).startswith(outer.prefix):
                    outer.tick()

        self.prefix, self.tick, self.cb = prefix, tick, _CB()

    def __enter__(self) -> _TaskProgress:
        self.cb.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cb.__exit__(*exc)


def _run_tile(job: TileJob, tile: Tile, threads: int | None) -> Any:
    """Worker task: fuse one tile; stores it (file output) or returns it (in memory)."""
    with torch_threads(threads):
        if job.scratch is not None:
            return job.run(tile)
        part = job.fuse(tile)
        lr = job.adapter.lr_partial(part, job.state) if job.two_pass else None
        return tile.key, part, lr


def _run_round(job: TileJob, tile: Tile, threads: int | None, k: int) -> str:
    """Worker task: round k of one tile (round-based adapters; stored in the job's scratch)."""
    with torch_threads(threads):
        return job.run_round(tile, k)


def fuse_tiled_dask(
    method: Any,
    hsi: Any,
    msi: Any,
    sensor: Any,
    *,
    tile: int,
    overlap: int | None = None,
    out: str | Path | None = None,
    scheduler: Any = "threads",
    n_workers: int | None = None,
    threads_per_task: int | None = None,
    driver_threads: int | None = None,
    progress: ProgressFn | None = None,
    resume: bool = True,
    meta: Any = None,
) -> torch.Tensor | Path:
    """:func:`~hyperfuse.tiling.fuse_tiled` with tiles as Dask tasks.

    Parameters
    ----------
    method, hsi, msi, sensor, tile, overlap, out, progress, resume, meta
        As in :func:`~hyperfuse.tiling.fuse_tiled`. With processes or a cluster, pass the
        inputs as file paths so that workers read their own windows.
    scheduler : str, Client or cluster
        ``"threads"``, ``"processes"``, ``"sync"``, ``"tcp://HOST:PORT"``, a
        :class:`distributed.Client` or a cluster object.
    n_workers : int, optional
        Workers of the local ``threads`` / ``processes`` schedulers.
    threads_per_task : int, optional
        Torch threads inside a task (default: 1 when several local workers share the cores).
    driver_threads : int, optional
        Torch threads of this process outside the tasks: the global stage, the refinement or
        round synchronisation and the assembly (default: ``n_workers`` with a local scheduler,
        whose workers are idle then; otherwise unchanged).

    Returns
    -------
    Tensor of shape (B, L, H, W), or the output Path.
    """
    dask = _require_dask()
    from .store import is_complete

    if out is not None and resume and is_complete(Path(out).expanduser()):
        return Path(out).expanduser()
    if driver_threads is None and (n_workers or 1) > 1 and (
        scheduler is None or (isinstance(scheduler, str) and scheduler in LOCAL_SCHEDULERS)
    ):
        driver_threads = n_workers  # the local workers are idle during the global stage
    with torch_threads(driver_threads):
        job = prepare(method, hsi, msi, sensor, tile=tile, overlap=overlap, out=out, resume=resume)
        tiles = job.grid.tiles
        todo = [t for t in tiles if not job.done(t)]
        total = len(tiles)
        done = total - len(todo)
        if progress is not None and done:
            progress(done, total)
        kind, sched = resolve_scheduler(scheduler)
        if threads_per_task is None and kind == "local" and (n_workers or 1) > 1:
            threads_per_task = 1

        lock = threading.Lock()

        def tick() -> None:
            nonlocal done
            with lock:
                done += 1
                if progress is not None:
                    progress(done, total)

        def run_tasks(fn: Any, todo: list[Tile], *extra: Any) -> list[Any]:
            """fn(job, tile, threads, *extra) for every tile, as Dask tasks; results in any order."""
            nonlocal done
            results: list[Any] = []
            if kind == "local":
                job_d = dask.delayed(job, name=f"hyperfuse-job-{uuid.uuid4().hex}", traverse=False)  # no hashing of the job
                tasks = [dask.delayed(fn, pure=False)(job_d, t, threads_per_task, *extra) for t in todo]
                kw: dict[str, Any] = {"scheduler": sched}
                if n_workers is not None:
                    kw["num_workers"] = n_workers
                if tasks:
                    with torch_threads(threads_per_task), _TaskProgress(fn.__name__, tick):
                        results = list(dask.compute(*tasks, **kw))
                return results
            from distributed import as_completed

            job_f = sched.scatter(job, broadcast=True)  # re-sent each call: the state changes per round
            futures = [sched.submit(fn, job_f, t, threads_per_task, *extra, pure=False,
                                    key=f"hyperfuse-{t.key}-{id(job)}-{'-'.join(map(str, extra))}") for t in todo]
            for fut in as_completed(futures):
                results.append(fut.result())
                done += 1
                if progress is not None:
                    progress(done, total)
            return results

        try:
            if job.n_rounds:
                total = len(tiles) * job.n_rounds
                done = 0
                with round_scratch(job):

                    def run_round(k: int, todo: list[Tile]) -> None:
                        nonlocal done
                        done = k * len(tiles) + len(tiles) - len(todo)
                        run_tasks(_run_round, todo, k)

                    run_rounds(job, run_round)
                    return assemble(job, out, meta=meta) if out is not None else blend_stored(job)
            results = run_tasks(_run_tile, todo)
        finally:
            if kind == "client" and isinstance(scheduler, str):
                sched.close()
        if out is not None:
            job.refine(job.hsi.full())
            return assemble(job, out, meta=meta)
        return _blend_in_memory(job, results)


def _blend_in_memory(job: TileJob, results: Sequence[Any]) -> torch.Tensor:
    by_key = {k: (part, lr) for k, part, lr in results}
    acc = job.blend(lambda t: by_key[t.key][0])
    if job.two_pass:
        job.refine(job.hsi.full(), {k: v[1] for k, v in by_key.items()})
    return job.finalize(acc)
