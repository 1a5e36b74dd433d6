"""Per-block CPU settings (``hyperfuse._threads``)."""

from __future__ import annotations

import threading

import pytest
import torch

from hyperfuse._threads import blas_threads, denormals_flushed, torch_threads


def flushing() -> bool:
    return torch.tensor(1e-39, dtype=torch.float32).item() == 0.0


def test_denormals_flushed_inside_and_restored_after():
    assert not flushing()
    with denormals_flushed():
        assert flushing()
        seen = []
        t = threading.Thread(target=lambda: seen.append(flushing()))  # threads started inside inherit it
        t.start()
        t.join()
        assert seen == [True]
        with denormals_flushed():  # nested: the inner block must not switch it off
            pass
        assert flushing()
    assert not flushing()


def test_denormals_flushed_restores_on_error_and_can_be_disabled():
    with pytest.raises(RuntimeError), denormals_flushed():
        raise RuntimeError("boom")
    assert not flushing()
    with denormals_flushed(False):
        assert not flushing()


def test_torch_threads_restores():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_blas_threads_limits_and_restores():
    from threadpoolctl import threadpool_info

    before = [d["num_threads"] for d in threadpool_info()]
    with blas_threads(1):
        assert all(d["num_threads"] == 1 for d in threadpool_info())
    assert [d["num_threads"] for d in threadpool_info()] == before
    with blas_threads(None):
        assert [d["num_threads"] for d in threadpool_info()] == before
