"""Read-only .npz: the scenes written by ``hyperfuse synth``."""

from __future__ import annotations

import numpy as np
import pytest

from hyperfuse.data.synthetic import dead_leaves_scene, save_scene_npz
from hyperfuse.errors import FormatError
from hyperfuse.io import load_cube, read, write
from hyperfuse.types import RasterMeta


def test_synth_scene_reads_as_cube_with_wavelengths(tmp_path) -> None:  # type: ignore[no-untyped-def]
    wl = np.linspace(400, 700, 5)
    s = dead_leaves_scene(8, wl, n_endmembers=2, rng=0)
    path = save_scene_npz(tmp_path / "s.npz", s)
    cube, meta = read(path)
    np.testing.assert_array_equal(cube, np.moveaxis(s.cube, 0, -1))
    np.testing.assert_allclose(meta.wavelengths, wl)
    abund, _ = read(path, key="A")
    assert abund.shape == (8, 8, 2)
    loaded, lmeta = load_cube(path)
    assert loaded.shape == (8, 8, 5) and loaded.dtype == np.float32
    np.testing.assert_allclose(lmeta.wavelengths, wl)


def test_npz_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "two.npz"
    np.savez(p, a=np.zeros((2, 2, 2)), b=np.ones((3, 3, 3)))
    with pytest.raises(FormatError, match="--key"):
        read(p)
    with pytest.raises(FormatError, match="no array 'c'"):
        read(p, key="c")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="not a readable .npz"):
        read(tmp_path / "bad.npz")
    with pytest.raises(FormatError, match="read-only"):
        write(tmp_path / "out.npz", np.zeros((2, 2, 2)), RasterMeta())
