"""GLP-HS (``classical.md`` §6)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperfuse.errors import InputError
from hyperfuse.methods import get_method, list_methods
from hyperfuse.methods.classical.glp import GLPHS, GLPConfig, mtf_kernel
from hyperfuse.physics.interpolate import lr_pixel_centre, up_bicubic, up_fir
from hyperfuse.physics.sensor import FusionPhysics, make_sensor

_spec = importlib.util.spec_from_file_location("_hyperfuse_test_scenes", Path(__file__).parent / "scenes.py")
scenes = importlib.util.module_from_spec(_spec)
sys.modules.setdefault(_spec.name, scenes)
_spec.loader.exec_module(scenes)  # type: ignore[union-attr]
make_scene, psnr = scenes.make_scene, scenes.psnr


def affine_pair(size: int = 32, L: int = 12, l: int = 3, r: int = 4, *, seed: int = 0,
                boundary: str = "circular", psf_size: int | None = None):  # type: ignore[no-untyped-def]
    """HR bands affine in the MSI bands; Y_h = X D (``classical.md`` §5 exact case)."""
    g = np.random.default_rng(seed)
    msi = torch.from_numpy(0.2 + 0.6 * scenes.abundances(l, size, size, 2.0, g))[None]
    m = g.uniform(-0.5, 1.0, (L, l))
    c = g.uniform(0.3, 0.5, L)
    X = torch.einsum("jk,bkhw->bjhw", torch.from_numpy(m), msi) + torch.from_numpy(c)[None, :, None, None]
    sensor = make_sensor(r, boundary=boundary, psf_size=psf_size)  # type: ignore[arg-type]
    hsi = FusionPhysics(sensor).spatial(X)
    return X, hsi.float(), msi.float(), sensor


def check_contract(name: str, scene, **config) -> torch.Tensor:  # type: ignore[no-untyped-def]
    hsi, msi = scene.pair()
    h0, m0 = hsi.clone(), msi.clone()
    out = get_method(name, **config).fuse(hsi, msi, scene.sensor).cube
    assert out.shape == (hsi.shape[0], hsi.shape[1], *msi.shape[-2:])
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert torch.equal(hsi, h0) and torch.equal(msi, m0)
    assert torch.equal(out, get_method(name, **config).fuse(hsi, msi, scene.sensor).cube)
    base = up_bicubic(hsi, scene.sensor.ratio, offset=lr_pixel_centre(scene.sensor.psf.shape, scene.sensor.offset))
    assert psnr(out, scene.X) > psnr(base, scene.X) + 1.0
    return out


def test_registered() -> None:
    assert "glp-hs" in list_methods()
    assert not GLPHS.needs_srf


@pytest.mark.parametrize("config", [{}, {"mtf": "nyquist"}, {"mtf": "fwhm"}])
def test_contract_smooth_scene(config: dict) -> None:
    check_contract("glp-hs", make_scene(48, L=16, p=5, l=3, ratio=4, corr=3.0, seed=1), **config)


@pytest.mark.parametrize(("r", "boundary", "psf_size"), [(4, "circular", None), (4, "reflect", None),
                                                         (3, "circular", None), (4, "circular", 13)])
def test_exact_on_affine_data(r: int, boundary: str, psf_size: int | None) -> None:
    """With D_MTF = D, up(y_h) = s^LP, so g = 1 and F = X."""
    X, hsi, msi, sensor = affine_pair(size=8 * r, r=r, boundary=boundary, psf_size=psf_size)
    res = GLPHS().fuse(hsi, msi, sensor)
    assert res.info["mtf"] == "sensor"
    assert np.allclose(res.info["gains"][0], 1.0, atol=1e-5)
    assert float((res.cube.double() - X).norm() / X.norm()) < 1e-5


def test_mtf_kernel_nyquist_gain() -> None:
    for r in (2, 4, 8):
        k = mtf_kernel(r, nyquist_gain=0.3)
        t = np.arange(k.shape[0]) - (k.shape[0] - 1) / 2
        k1 = k.sum(axis=0)
        gain = float((k1 * np.cos(2 * np.pi * t / (2 * r))).sum())
        assert gain == pytest.approx(0.3, abs=2e-3)
        assert k.shape[0] % 2 == r % 2 and math.isclose(k.sum(), 1.0)
    assert mtf_kernel(4, parity=1).shape[0] % 2 == 1
    with pytest.raises(InputError):
        mtf_kernel(4, nyquist_gain=1.5)


def test_without_sensor_uses_nyquist_mtf() -> None:
    s = make_scene(32, L=8, p=3, l=2, ratio=4, seed=2)
    res = GLPHS().fuse(*s.pair(), None)
    assert res.info["mtf"] == "nyquist"


def test_constant_msi_interpolates_with_warning() -> None:
    s = make_scene(32, L=6, p=3, l=2, ratio=4, seed=3)
    hsi, _ = s.pair()
    msi = torch.full((1, 2, 32, 32), 0.5)
    with pytest.warns(UserWarning, match="constant"):
        res = GLPHS().fuse(hsi, msi, s.sensor)
    base = up_fir(hsi, 4, offset=lr_pixel_centre(s.sensor.psf.shape, s.sensor.offset))
    assert torch.allclose(res.cube, base, atol=1e-6)
    assert res.info["interpolation_only_bands"] == list(range(6))


def test_uncovered_band_warns() -> None:
    s = make_scene(32, L=10, p=3, l=3, ratio=4, seed=4)
    srf = np.asarray(s.sensor.srf).copy()
    srf[1] = 0
    with pytest.warns(UserWarning, match="not covered"):
        GLPHS().fuse(*s.pair(), s.sensor.replace(srf=srf))


def test_odd_sizes_and_progress() -> None:
    calls: list[int] = []
    m = GLPHS(progress=lambda st, i, n, c: calls.append(i))
    out = m.fuse(torch.rand(1, 5, 7, 5), torch.rand(1, 2, 21, 15), None).cube
    assert out.shape == (1, 5, 21, 15) and torch.isfinite(out).all() and calls == [1]


def test_config_errors() -> None:
    for bad in ({"mtf": "x"}, {"taps": 44}, {"nyquist_gain": 0.0}, {"dtype": "x"}):
        with pytest.raises(InputError):
            GLPHS(GLPConfig(**bad))  # type: ignore[arg-type]
