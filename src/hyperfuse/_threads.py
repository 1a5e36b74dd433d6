"""Per-block CPU settings: torch's and the BLAS libraries' thread counts (process-wide, so set
them around whole phases) and the calling thread's denormal mode."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch
from threadpoolctl import threadpool_limits

__all__ = ["blas_threads", "denormals_flushed", "on_main_thread", "torch_threads"]


def on_main_thread() -> bool:
    """Whether the caller is the main thread: the only one that changes process-wide thread
    counts (inside e.g. Dask's threaded tasks, two changes would restore each other out of order)."""
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch threads and restore the previous count; ``None``: unchanged.

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    old = torch.get_num_threads()
    if n is not None and n != old:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


def _flushing() -> bool:
    # A subnormal float32 constant reads back as 0 when the thread flushes denormals.
    return torch.tensor(1e-39, dtype=torch.float32).item() == 0.0


@contextlib.contextmanager
def denormals_flushed(on: bool = True) -> Iterator[None]:
    """Run the block with subnormal floats flushed to zero on this thread (and on threads it
    starts), then restore the previous mode; ``on=False``: unchanged.

    Multiplicative updates drive unused entries geometrically towards zero; once they are
    subnormal, every product that reads them takes a slow path on x86 CPUs (CNMF on the
    issue-4 Jasper scene: 0.86 s -> 0.53 s with identical PSNR).

    Examples
    --------
    >>> with denormals_flushed():
    ...     torch.tensor(1e-39, dtype=torch.float32).item()
    0.0
    """
    if not on or _flushing():
        yield
        return
    if not torch.set_flush_denormal(True):  # CPU without DAZ/FTZ: nothing to do
        yield
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Run the block with at most ``n`` threads in the BLAS/OpenMP libraries NumPy and SciPy
    load (``threadpoolctl``), then restore them; ``None``: unchanged."""
    if n is None:
        yield
        return
    with threadpool_limits(limits=int(n)):
        yield
