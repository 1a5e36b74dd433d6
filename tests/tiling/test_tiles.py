"""Tiled fusion: grid, blending, exactness, tiled-vs-untiled accuracy, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hyperfuse.data.synthetic import dead_leaves_scene
from hyperfuse.methods import get_method
from hyperfuse.metrics import psnr
from hyperfuse.physics.sensor import FusionPhysics, make_sensor
from hyperfuse.physics.srf import box_srf
from hyperfuse.tiling import (
    blend_weights,
    complete_marker,
    fuse_tiled,
    is_complete,
    scratch_dir,
    tile_grid,
)
from hyperfuse.tiling import tiles as tiles_mod
from hyperfuse.tiling.store import as_source


def _scene(size: int = 128, l: int = 3, p: int = 4, seed: int = 0):  # type: ignore[no-untyped-def]
    sc = dead_leaves_scene((size, size), np.linspace(400, 1000, 31), n_endmembers=p, rng=seed)
    x = torch.from_numpy(sc.cube)[None]
    s = make_sensor(4, srf=box_srf(31, l))
    ph = FusionPhysics(s)
    return x, ph.spatial(x), ph.spectral(x), s


@pytest.mark.parametrize(("H", "W", "r", "tile", "ov"), [(128, 96, 4, 40, 12), (64, 64, 8, 64, 16), (60, 36, 3, 14, 5)])
def test_grid_aligned_and_covering(H: int, W: int, r: int, tile: int, ov: int) -> None:
    g = tile_grid((H, W), r, tile=tile, overlap=ov)
    assert g.tile % r == 0 and g.overlap % r == 0
    cover = np.zeros((H, W), int)
    acc = torch.zeros(H, W)
    w = blend_weights(g)
    for t in g.tiles:
        assert t.y0 % r == 0 and t.x0 % r == 0 and t.y1 % r == 0 and t.x1 % r == 0
        cover[t.hr()] += 1
        acc[t.hr()] += w[(t.i, t.j)]
        assert float(w[(t.i, t.j)].min()) >= 0
    assert cover.min() >= 1
    torch.testing.assert_close(acc, torch.ones(H, W), rtol=0, atol=1e-6)


def test_grid_rejects_bad_input() -> None:
    from hyperfuse.errors import InputError, ShapeError

    with pytest.raises(ShapeError):
        tile_grid((30, 32), 4, tile=16, overlap=4)
    with pytest.raises(InputError):
        tile_grid((32, 32), 4, tile=8, overlap=8)


def test_blending_constant_gives_constant() -> None:
    g = tile_grid((48, 40), 4, tile=20, overlap=8)
    out = torch.zeros(2, 48, 40)
    for t in g.tiles:
        out[:, t.y0 : t.y1, t.x0 : t.x1] += 0.37 * blend_weights(g)[(t.i, t.j)]
    torch.testing.assert_close(out, torch.full_like(out, 0.37), rtol=0, atol=1e-6)


def test_bicubic_tiled_equals_untiled() -> None:
    x, hsi, msi, s = _scene(64)
    full = get_method("bicubic").fuse(hsi, msi, s).cube
    tiled = fuse_tiled("bicubic", hsi, msi, s, tile=40, overlap=24)
    assert isinstance(tiled, torch.Tensor)
    torch.testing.assert_close(tiled, full, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("name", "kw"), [("gsa", {}), ("cnmf", {"n_endmembers": 4, "inner_iters": 60})])
def test_tiled_psnr_close_to_untiled(name: str, kw: dict) -> None:  # type: ignore[type-arg]
    x, hsi, msi, s = _scene(128)
    m = get_method(name, **kw)
    full = m.fuse(hsi, msi, s).cube
    tiled = fuse_tiled(m, hsi, msi, s, tile=64, overlap=24)
    p_full = float(psnr(full, x, data_range=1.0)[0])
    p_tiled = float(psnr(tiled, x, data_range=1.0)[0])
    assert abs(p_full - p_tiled) <= 0.1, (p_full, p_tiled)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "kw"), [("gsa", {}), ("cnmf", {})])
def test_tiled_psnr_close_to_untiled_large(name: str, kw: dict) -> None:  # type: ignore[type-arg]
    x, hsi, msi, s = _scene(384, l=3, p=6, seed=1)
    m = get_method(name, **kw)
    full = m.fuse(hsi, msi, s).cube
    tiled = fuse_tiled(m, hsi, msi, s, tile=128, overlap=32)
    d = float(psnr(full, x, data_range=1.0)[0]) - float(psnr(tiled, x, data_range=1.0)[0])
    assert abs(d) <= 0.1


def test_lazy_inputs_and_zarr_output(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x, hsi, msi, s = _scene(64)
    hp, mp = tmp_path / "hsi.npy", tmp_path / "msi.npy"
    np.save(hp, hsi[0].permute(1, 2, 0).numpy())
    np.save(mp, msi[0].permute(1, 2, 0).numpy())
    out = tmp_path / "out.zarr"
    res = fuse_tiled("gsa", hp, np.load(mp, mmap_mode="r"), s, tile=32, overlap=12, out=out)
    assert res == out and is_complete(out) and not scratch_dir(out).exists()
    from hyperfuse.io import read

    cube, _ = read(out)
    ref = fuse_tiled("gsa", hsi, msi, s, tile=32, overlap=12)
    np.testing.assert_allclose(cube, ref[0].permute(1, 2, 0).numpy(), atol=1e-5)
    import zarr

    assert zarr.open_group(str(out), mode="r")["cube"].attrs["hyperfuse_status"] == "complete"


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_resume_after_kill(tmp_path, monkeypatch, suffix: str) -> None:  # type: ignore[no-untyped-def]
    x, hsi, msi, s = _scene(64)
    m = get_method("cnmf", n_endmembers=4, inner_iters=20)
    out = tmp_path / f"out{suffix}"
    calls: list[str] = []
    real = tiles_mod.TileJob.fuse

    def killing(self, tile):  # type: ignore[no-untyped-def]
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated kill")
        calls.append(tile.key)
        return real(self, tile)

    monkeypatch.setattr(tiles_mod.TileJob, "fuse", killing)
    with pytest.raises(KeyboardInterrupt):
        fuse_tiled(m, hsi, msi, s, tile=32, overlap=12, out=out)
    assert not out.exists() and not complete_marker(out).exists()
    sd = scratch_dir(out)
    assert json.loads((sd / "manifest.json").read_text())["method"] == "cnmf"
    done_first = sorted(p.name for p in sd.glob("t_*_*.npy") if ".lr." not in p.name)
    assert len(done_first) == 2

    second: list[str] = []

    def counting(self, tile):  # type: ignore[no-untyped-def]
        second.append(tile.key)
        return real(self, tile)

    monkeypatch.setattr(tiles_mod.TileJob, "fuse", counting)
    res = fuse_tiled(m, hsi, msi, s, tile=32, overlap=12, out=out)
    assert res == out and is_complete(out)
    n_tiles = len(tile_grid((64, 64), 4, tile=32, overlap=12))
    assert len(second) == n_tiles - 2 and not set(second) & set(calls)
    from hyperfuse.io import read

    got, _ = read(out)
    ref = fuse_tiled(m, hsi, msi, s, tile=32, overlap=12)
    np.testing.assert_allclose(got, ref[0].permute(1, 2, 0).numpy(), atol=1e-6)
    # A finished output is not recomputed.
    second.clear()
    fuse_tiled(m, hsi, msi, s, tile=32, overlap=12, out=out)
    assert second == []


def test_cnmf_sampled_ms_trajectory_close_to_untiled(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """l > 3 on a scene larger than the E_m pixel sample: tiles replay the sampled trajectory."""
    import functools

    from hyperfuse.tiling import globals as G

    monkeypatch.setattr(G.CNMFGlobal, "__init__", functools.partialmethod(G.CNMFGlobal.__init__, sample_pixels=2**10))
    x, hsi, msi, s = _scene(128, l=5, p=5, seed=5)
    m = get_method("cnmf", n_endmembers=5, inner_iters=60)
    full = float(psnr(m.fuse(hsi, msi, s).cube, x, data_range=1.0)[0])
    state = G.adapter_for(m).fit_global(hsi, msi, FusionPhysics(s))
    assert state.ms_trajectory is not None and len(state.ms_trajectory) > 1
    tiled = float(psnr(fuse_tiled(m, hsi, msi, s, tile=64, overlap=24), x, data_range=1.0)[0])
    assert abs(tiled - full) <= 0.1, (full, tiled)


def test_scalmu_tiled_matches_untiled() -> None:
    """Round-synchronised SCALMU: the tiles take the abundance steps, the scene the E steps."""
    x, hsi, msi, s = _scene(128, l=3, p=5, seed=3)
    m = get_method("scalmu")
    full = m.fuse(hsi, msi, s).cube
    tiled = fuse_tiled(m, hsi, msi, s, tile=48, overlap=16)
    d = float(psnr(full, x, data_range=1.0)[0]) - float(psnr(tiled, x, data_range=1.0)[0])
    assert abs(d) <= 0.1, d
    # Only the blending of the halo differs from the untiled run.
    assert float((tiled - full).abs().max()) < 0.05 * float(x.max())


@pytest.mark.parametrize("option", ["adapt", "safeguard"])
def test_scalmu_tiled_refuses_whole_scene_options(option: str) -> None:
    from hyperfuse.errors import InputError

    x, hsi, msi, s = _scene(64, l=3, p=4, seed=4)
    with pytest.raises(InputError, match="cannot run tiled"):
        fuse_tiled(get_method("scalmu", **{option: True}), hsi, msi, s, tile=32, overlap=12)


def test_scalmu_tiled_resume_mid_round(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    x, hsi, msi, s = _scene(64, l=3, p=4, seed=4)
    m = get_method("scalmu")
    out = tmp_path / "out.npy"
    real = tiles_mod.TileJob.run_round
    calls: list[tuple[str, int]] = []

    def killing(self, tile, k):  # type: ignore[no-untyped-def]
        if k == 2 and len([c for c in calls if c[1] == 2]) == 1:
            raise KeyboardInterrupt("simulated kill")
        if not self.round_done(tile, k):
            calls.append((tile.key, k))
        return real(self, tile, k)

    monkeypatch.setattr(tiles_mod.TileJob, "run_round", killing)
    with pytest.raises(KeyboardInterrupt):
        fuse_tiled(m, hsi, msi, s, tile=32, overlap=12, out=out)
    assert not out.exists() and not complete_marker(out).exists()
    first = len(calls)
    n_tiles = len(tile_grid((64, 64), 4, tile=32, overlap=12))
    assert first == 2 * n_tiles + 1
    calls.clear()
    monkeypatch.setattr(tiles_mod.TileJob, "run_round", lambda self, tile, k: (
        calls.append((tile.key, k)) if not self.round_done(tile, k) else None, real(self, tile, k))[1])
    assert fuse_tiled(m, hsi, msi, s, tile=32, overlap=12, out=out) == out and is_complete(out)
    assert len(calls) == 8 * n_tiles - first  # finished rounds are not recomputed
    ref = fuse_tiled(m, hsi, msi, s, tile=32, overlap=12)
    np.testing.assert_allclose(np.load(out), ref[0].permute(1, 2, 0).numpy(), atol=1e-6)


def test_source_window_matches_tensor() -> None:
    a = np.arange(4 * 6 * 3, dtype=np.float32).reshape(4, 6, 3)
    src = as_source(a)
    np.testing.assert_array_equal(src.window(slice(1, 3), slice(2, 5))[0].numpy(), a[1:3, 2:5].transpose(2, 0, 1))


def test_cnmf_global_ms_endmembers_tiling_invariant() -> None:
    """l > 3: E_m is estimated once (pixel sample); tiles solve A only, so tiling is invisible."""
    x, hsi, msi, s = _scene(96, l=4, p=4, seed=2)
    m = get_method("cnmf", n_endmembers=4, inner_iters=40)
    full = float(psnr(m.fuse(hsi, msi, s).cube, x, data_range=1.0)[0])
    one = fuse_tiled(m, hsi, msi, s, tile=96, overlap=0)
    many = fuse_tiled(m, hsi, msi, s, tile=48, overlap=24)
    p_one = float(psnr(one, x, data_range=1.0)[0])
    p_many = float(psnr(many, x, data_range=1.0)[0])
    assert abs(p_one - p_many) <= 0.01
    assert p_many >= full - 0.1, (full, p_many)


def test_scalmu_tiled_auto_prior_scale_is_chosen_like_untiled() -> None:
    """prior_scale="auto" tiled: the same held-out-band choice as untiled, from the MSI window."""
    from hyperfuse.physics.sensor import FusionPhysics
    from hyperfuse.tiling.globals import SCALMUGlobal

    x, hsi, msi, s = _scene(64, l=3, p=4, seed=4)
    untiled = get_method("scalmu", n_endmembers=4).fuse(hsi, msi, s).info["prior_scale"]
    state = SCALMUGlobal(get_method("scalmu", n_endmembers=4)).fit_global(hsi, msi, FusionPhysics(s))
    assert state.prior_scale["chosen"] == untiled["chosen"]
    assert state.prior_scale["scores_db"] == pytest.approx(untiled["scores_db"], abs=1e-4)
    bound = get_method("scalmu", prior_scale=untiled["chosen"]).net.arch.prior_bound
    assert state.net.arch.prior_bound == pytest.approx(bound)
