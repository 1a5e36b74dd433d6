"""GSA hypersharpening (``classical.md`` §4)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperfuse.errors import InputError, ShapeError
from hyperfuse.methods import get_method, list_methods, method_info
from hyperfuse.methods.classical.gsa import GSA, GSAConfig, correlation_groups
from hyperfuse.physics.interpolate import lr_pixel_centre, up_bicubic
from hyperfuse.physics.sensor import FusionPhysics, make_sensor

_spec = importlib.util.spec_from_file_location("_hyperfuse_test_scenes", Path(__file__).parent / "scenes.py")
scenes = importlib.util.module_from_spec(_spec)
sys.modules.setdefault(_spec.name, scenes)
_spec.loader.exec_module(scenes)  # type: ignore[union-attr]
make_scene, psnr = scenes.make_scene, scenes.psnr


def check_contract(name: str, scene, **config) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """Shape, dtype, finiteness, inputs untouched, determinism, better than bicubic."""
    hsi, msi = scene.pair()
    h0, m0 = hsi.clone(), msi.clone()
    method = get_method(name, **config)
    out = method.fuse(hsi, msi, scene.sensor).cube
    assert out.shape == (hsi.shape[0], hsi.shape[1], *msi.shape[-2:])
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert torch.equal(hsi, h0) and torch.equal(msi, m0)
    assert torch.equal(out, get_method(name, **config).fuse(hsi, msi, scene.sensor).cube)
    r = scene.sensor.ratio
    base = up_bicubic(hsi, r, offset=lr_pixel_centre(scene.sensor.psf.shape, scene.sensor.offset))
    assert psnr(out, scene.X) > psnr(base, scene.X) + 1.0
    return out


def test_registered() -> None:
    assert "gsa" in list_methods()
    info = method_info("gsa")
    assert info["config"] == {"clip": False, "dtype": "float32"}
    assert not GSA.needs_srf and not GSA.blind and not GSA.trainable


def test_contract_smooth_scene() -> None:
    check_contract("gsa", make_scene(48, L=16, p=5, l=3, ratio=4, corr=3.0, seed=1))


def test_contract_odd_sizes_and_ratio() -> None:
    # h x w = 7 x 5 at r = 3 (odd everything), default reflect boundary.
    g = np.random.default_rng(0)
    X = torch.from_numpy(scenes.abundances(3, 21, 15, 2.0, g))[None]
    X = torch.einsum("lp,bphw->blhw", torch.from_numpy(scenes.endmembers(9, 3, g)), X)
    sensor = make_sensor(3, srf=scenes.gaussian_srf(2, 9))
    phys = FusionPhysics(sensor)
    hsi, msi = phys.spatial(X).float(), phys.spectral(X).float()
    out = GSA().fuse(hsi, msi, sensor).cube
    assert out.shape == (1, 9, 21, 15) and torch.isfinite(out).all()


def test_component_substitution_identity() -> None:
    """Σ_j α_j (F_j − μ̃_j) = P⁰ for every group (float32, 1e-6·max|P⁰|)."""
    s = make_scene(64, L=20, p=4, l=3, ratio=4, seed=2)
    hsi, msi = s.pair()
    res = GSA().fuse(hsi, msi, s.sensor)
    F = res.cube[0].double()
    groups = res.info["groups"][0]
    assert len(groups) >= 2
    for grp in groups:
        P = msi[0, grp["msi_band"]].double()
        P0 = P - P.mean()
        alpha = torch.tensor(grp["alpha"], dtype=torch.float64)
        mu = torch.tensor(grp["mu"], dtype=torch.float64)
        synth = torch.einsum("m,mhw->hw", alpha, F[grp["hsi_bands"]] - mu[:, None, None])
        assert (synth - P0).abs().max() <= 1e-6 * P0.abs().max() * max(1.0, alpha.abs().sum().item())
        assert sum(a * g for a, g in zip(grp["alpha"], grp["gains"], strict=True)) == pytest.approx(1.0, abs=1e-6)


def test_single_ms_band_gives_single_group() -> None:
    s = make_scene(32, L=10, p=3, l=1, ratio=4, seed=3)
    hsi, msi = s.pair()
    res = GSA().fuse(hsi, msi, s.sensor)
    groups = res.info["groups"][0]
    assert len(groups) == 1 and groups[0]["hsi_bands"] == list(range(10))


def test_constant_band_gives_bicubic_with_warning() -> None:
    s = make_scene(32, L=8, p=3, l=1, ratio=4, seed=4)
    hsi, _ = s.pair()
    msi = torch.full((1, 1, 32, 32), 0.4)
    with pytest.warns(UserWarning, match="zero variance"):
        res = GSA().fuse(hsi, msi, s.sensor)
    base = up_bicubic(hsi, 4, offset=lr_pixel_centre(s.sensor.psf.shape, s.sensor.offset))
    assert torch.allclose(res.cube, base, atol=1e-6)
    assert res.info["degenerate_groups"] == [(0, 0)]


def test_collinear_bands_take_min_norm_fit() -> None:
    s = make_scene(32, L=6, p=3, l=1, ratio=4, seed=5)
    hsi, msi = s.pair()
    dup = torch.cat([hsi, hsi[:, :1]], dim=1)  # band 6 duplicates band 0
    res = GSA().fuse(dup, msi, None)
    assert torch.isfinite(res.cube).all()
    alpha = res.info["groups"][0][0]["alpha"]
    assert alpha[0] == pytest.approx(alpha[6], rel=1e-6, abs=1e-9)
    assert torch.allclose(res.cube[:, 0], res.cube[:, 6])


def test_uncovered_band_warns_and_is_kept() -> None:
    s = make_scene(32, L=10, p=3, l=3, ratio=4, seed=6)
    hsi, msi = s.pair()
    srf = np.asarray(s.sensor.srf).copy()
    srf[2] = 0
    sensor = s.sensor.replace(srf=srf)
    with pytest.warns(UserWarning, match="not covered"):
        res = GSA().fuse(hsi, msi, sensor)
    assert res.info["uncovered_bands"] == [2]


def test_batch_items_are_independent() -> None:
    a, b = make_scene(32, L=8, p=3, l=2, ratio=4, seed=7), make_scene(32, L=8, p=3, l=2, ratio=4, seed=8)
    hsi = torch.cat([a.pair()[0], b.pair()[0]])
    msi = torch.cat([a.pair()[1], b.pair()[1]])
    both = GSA().fuse(hsi, msi, a.sensor).cube
    assert torch.allclose(both[1:], GSA().fuse(*b.pair(), a.sensor).cube)


def test_progress_and_no_sensor() -> None:
    s = make_scene(32, L=8, p=3, l=2, ratio=4, seed=9)
    calls: list[tuple[str, int, int]] = []
    m = GSA(progress=lambda st, i, n, c: calls.append((st, i, n)))
    m.fuse(*s.pair(), None)
    assert calls and calls[-1][1] == calls[-1][2] and calls[0][0] == "gsa"


def test_correlation_groups_argmax() -> None:
    t = torch.linspace(0, 1, 30)
    g, cc = correlation_groups(torch.stack([t, t.flip(0), torch.ones(30)]), torch.stack([t, -t]))
    assert g.tolist() == [0, 1, 0] and cc.shape == (2, 3) and cc[0, 2] == 0


def test_errors() -> None:
    with pytest.raises(InputError):
        GSA(GSAConfig(dtype="float16"))  # type: ignore[arg-type]
    with pytest.raises(InputError):
        get_method("gsa", bogus=1)
    with pytest.raises(ShapeError):
        GSA().fuse(torch.rand(1, 4, 4, 4), torch.rand(1, 2, 15, 16), None)
