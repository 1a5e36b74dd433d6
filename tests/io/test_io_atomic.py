"""Writes are atomic: no temporary files left behind, no partial output, old output kept on failure."""

from __future__ import annotations

import os

import numpy as np
import pytest

import hyperfuse._atomic as atomic
from hyperfuse.errors import FormatError
from hyperfuse.io import read, write
from hyperfuse.types import RasterMeta

SUFFIXES = [".npy", ".mat", ".tif", ".hdr", ".h5", ".zarr"]
OUTPUTS = {".hdr": ["out.hdr", "out.img"], ".npy": ["out.npy", "out.npy.json"]}

OLD = np.zeros((3, 4, 2), np.float32)
NEW = np.ones((5, 6, 3), np.float32)
META = RasterMeta(wavelengths=np.array([1.0, 2.0]))


def fail_replace_at(monkeypatch, tmp_path, n):
    """Make the n-th ``os.replace`` into ``tmp_path`` fail (0: every one). ``os.replace`` is
    process-wide, so renames elsewhere (another thread's atomic write) pass through."""
    real = os.replace
    calls = []

    def replace(src, dst):
        if not str(dst).startswith(str(tmp_path)):
            return real(src, dst)
        calls.append(dst)
        if n == 0 or len(calls) == n:
            raise OSError("rename failed")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)


def names(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


class Boom(RuntimeError):
    pass


def _fail_after_partial_write(monkeypatch, suffix):
    """Make the format's data write fail half-way (after some bytes reached the temp file)."""
    if suffix == ".npy":
        real = np.lib.format.write_array

        def partial(fh, array, **kw):
            fh.write(b"\x93NUMPY partial")
            raise Boom("disk full")

        monkeypatch.setattr(np.lib.format, "write_array", partial)
        return real
    if suffix == ".mat":
        import scipy.io

        def partial(fh, *a, **kw):
            fh.write(b"MATLAB 5.0 partial")
            raise Boom("disk full")

        monkeypatch.setattr(scipy.io, "savemat", partial)
    elif suffix == ".tif":
        from rasterio.io import DatasetWriter

        def partial(self, *a, **kw):
            raise Boom("disk full")

        monkeypatch.setattr(DatasetWriter, "write", partial)
    elif suffix == ".hdr":
        import hyperfuse.io.envi as envi

        def partial(fh, arr):
            fh.write(b"\0" * 10)
            raise Boom("disk full")

        monkeypatch.setattr(envi, "_write_bsq", partial)
    elif suffix == ".h5":
        import h5py

        def partial(self, name, *a, **kw):
            raise Boom("disk full")

        monkeypatch.setattr(h5py.Group, "create_dataset", partial)
    elif suffix == ".zarr":
        import zarr

        real = zarr.Array.__setitem__

        def partial(self, key, value):
            real(self, (slice(0, 1),), np.asarray(value)[:1])  # some chunks written
            raise Boom("disk full")

        monkeypatch.setattr(zarr.Array, "__setitem__", partial)
    return None


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_successful_write_leaves_no_temp_files(tmp_path, suffix):
    write(tmp_path / f"out{suffix}", NEW, RasterMeta(wavelengths=np.array([1.0, 2.0, 3.0])))
    write(
        tmp_path / f"out{suffix}", NEW, RasterMeta(wavelengths=np.array([1.0, 2.0, 3.0]))
    )  # overwrite
    assert names(tmp_path) == OUTPUTS.get(suffix, [f"out{suffix}"])


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_failed_write_leaves_nothing(tmp_path, monkeypatch, suffix):
    _fail_after_partial_write(monkeypatch, suffix)
    with pytest.raises(FormatError, match="disk full") as exc:
        write(tmp_path / f"out{suffix}", NEW)
    assert isinstance(exc.value.__cause__, Boom)
    assert names(tmp_path) == []


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_failed_overwrite_keeps_old_output(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"out{suffix}"
    write(path, OLD, META)
    before = names(tmp_path)
    with monkeypatch.context() as m:
        _fail_after_partial_write(m, suffix)
        with pytest.raises(FormatError):
            write(path, NEW)
    assert names(tmp_path) == before
    got, meta = read(path)
    np.testing.assert_array_equal(got, OLD)
    np.testing.assert_array_equal(meta.wavelengths, [1.0, 2.0])


@pytest.mark.parametrize("suffix", [".npy", ".hdr", ".zarr"])
def test_failure_at_rename_leaves_no_temp_files(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"out{suffix}"
    write(path, OLD, META)
    before = names(tmp_path)

    fail_replace_at(monkeypatch, tmp_path, 0)
    with pytest.raises(FormatError, match="rename failed"):
        write(path, NEW)
    monkeypatch.undo()
    assert names(tmp_path) == before
    np.testing.assert_array_equal(read(path)[0], OLD)


def test_zarr_swap_restores_backup_when_final_rename_fails(tmp_path, monkeypatch):
    path = tmp_path / "out.zarr"
    write(path, OLD)
    fail_replace_at(monkeypatch, tmp_path, 2)
    with pytest.raises(FormatError):
        write(path, NEW)
    monkeypatch.undo()
    assert names(tmp_path) == ["out.zarr"]
    np.testing.assert_array_equal(read(path)[0], OLD)


def test_keyboard_interrupt_cleans_up(tmp_path, monkeypatch):
    import hyperfuse.io.envi as envi

    def interrupted(fh, arr):
        fh.write(b"\0" * 4)
        raise KeyboardInterrupt

    monkeypatch.setattr(envi, "_write_bsq", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write(tmp_path / "out.hdr", NEW)
    assert names(tmp_path) == []


def test_write_creates_parent_directories(tmp_path):
    out = write(tmp_path / "a" / "b" / "c.h5", NEW)
    assert out.is_file()


@pytest.mark.parametrize("suffix", [".hdr", ".npy"])
def test_multi_file_commit_rolls_back_when_a_later_rename_fails(tmp_path, monkeypatch, suffix):
    """ENVI (binary, header) and .npy (array, sidecar): if the 2nd rename fails, the 1st is undone."""
    path = tmp_path / f"out{suffix}"
    write(path, OLD, META)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    fail_replace_at(monkeypatch, tmp_path, 2)
    with pytest.raises(FormatError, match="rename failed"):
        write(path, NEW, RasterMeta(wavelengths=np.array([4.0, 5.0, 6.0])))
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    np.testing.assert_array_equal(read(path)[0], OLD)


def test_multi_file_commit_removes_new_files_when_rename_fails(tmp_path, monkeypatch):
    fail_replace_at(monkeypatch, tmp_path, 2)
    with pytest.raises(FormatError):
        write(tmp_path / "new.hdr", NEW)
    monkeypatch.undo()
    assert names(tmp_path) == []
