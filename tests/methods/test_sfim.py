"""SFIM-HS (``classical.md`` §5)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperfuse.errors import InputError
from hyperfuse.methods import get_method, list_methods
from hyperfuse.methods.classical.sfim import SFIMHS, SFIMConfig, synthetic_band_weights
from hyperfuse.physics.interpolate import lr_pixel_centre, up_bicubic
from hyperfuse.physics.sensor import FusionPhysics, make_sensor

_spec = importlib.util.spec_from_file_location("_hyperfuse_test_scenes", Path(__file__).parent / "scenes.py")
scenes = importlib.util.module_from_spec(_spec)
sys.modules.setdefault(_spec.name, scenes)
_spec.loader.exec_module(scenes)  # type: ignore[union-attr]
make_scene, psnr = scenes.make_scene, scenes.psnr


def affine_pair(size: int = 32, L: int = 12, l: int = 3, r: int = 4, *, seed: int = 0,
                nonneg: bool = False, boundary: str = "circular"):  # type: ignore[no-untyped-def]
    """HR bands that are affine in the MSI bands: x_j = Σ_k m_jk y_m,k + c_j; Y_h = X D."""
    g = np.random.default_rng(seed)
    msi = torch.from_numpy(0.2 + 0.6 * scenes.abundances(l, size, size, 2.0, g))[None]
    m = g.uniform(0.1, 1.0, (L, l)) if nonneg else g.uniform(-0.1, 1.0, (L, l))
    c = g.uniform(0.3, 0.5, L)  # x_j >= 0.3 - 3 * 0.1 * 0.8 > 0: no fallback
    X = torch.einsum("jk,bkhw->bjhw", torch.from_numpy(m), msi) + torch.from_numpy(c)[None, :, None, None]
    sensor = make_sensor(r, boundary=boundary)  # type: ignore[arg-type]
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
    assert "sfim-hs" in list_methods()
    assert not SFIMHS.needs_srf


@pytest.mark.parametrize("config", [{}, {"mode": "nnls"}, {"upsampler": "bilinear"}])
def test_contract_smooth_scene(config: dict) -> None:
    check_contract("sfim-hs", make_scene(48, L=16, p=5, l=3, ratio=4, corr=3.0, seed=1), **config)


@pytest.mark.parametrize("upsampler", ["nearest", "bilinear"])
@pytest.mark.parametrize("boundary", ["circular", "reflect"])
def test_exact_on_affine_data(upsampler: str, boundary: str) -> None:
    X, hsi, msi, sensor = affine_pair(boundary=boundary)
    res = SFIMHS(SFIMConfig(upsampler=upsampler)).fuse(hsi, msi, sensor)  # type: ignore[arg-type]
    err = (res.cube.double() - X).norm() / X.norm()
    assert err < 1e-5
    assert res.info["fallback_pixels"] == 0


def test_nnls_exact_on_nonnegative_affine_data() -> None:
    X, hsi, msi, sensor = affine_pair(nonneg=True, seed=1)
    res = SFIMHS(SFIMConfig(mode="nnls")).fuse(hsi, msi, sensor)
    beta = np.asarray(res.info["weights"][0])
    assert (beta[:, :-1] >= 0).all()
    assert float((res.cube.double() - X).norm() / X.norm()) < 1e-5


def test_select_mode_uses_one_band() -> None:
    s = make_scene(32, L=10, p=3, l=3, ratio=4, seed=2)
    res = SFIMHS(SFIMConfig(mode="select")).fuse(*s.pair(), s.sensor)
    beta = np.asarray(res.info["weights"][0])
    assert ((beta[:, :-1] == 1).sum(axis=1) == 1).all() and (beta[:, -1] == 0).all()


def test_weights_min_norm_with_collinear_msi() -> None:
    ym = torch.rand(1, 40, dtype=torch.float64)
    ym2 = torch.cat([ym, ym])  # two identical MS bands
    yh = 2 * ym + 0.1
    beta = synthetic_band_weights(yh, ym2)
    assert torch.allclose(beta, torch.tensor([[1.0, 1.0, 0.1]], dtype=torch.float64), atol=1e-8)
    with pytest.raises(InputError):
        synthetic_band_weights(yh, ym2, "bogus")  # type: ignore[arg-type]


def test_fallback_where_synthetic_band_is_not_positive() -> None:
    X, hsi, msi, sensor = affine_pair(seed=3)
    neg = torch.cat([hsi, -hsi[:, :1]], dim=1)  # a negative band: s_lr < 0 everywhere
    res = SFIMHS().fuse(neg, msi, sensor)
    assert res.info["fallback_pixels"] == 32 * 32
    assert torch.isfinite(res.cube).all()
    assert torch.allclose(res.cube[:, -1].double(), -X[:, 0], atol=1e-5)


def test_uncovered_band_warns() -> None:
    s = make_scene(32, L=10, p=3, l=3, ratio=4, seed=4)
    srf = np.asarray(s.sensor.srf).copy()
    srf[0] = 0
    with pytest.warns(UserWarning, match="not covered"):
        res = SFIMHS().fuse(*s.pair(), s.sensor.replace(srf=srf))
    assert res.info["uncovered_bands"] == [0]


def test_odd_sizes_progress_and_no_sensor() -> None:
    calls: list[int] = []
    m = SFIMHS(progress=lambda st, i, n, c: calls.append(i))
    out = m.fuse(torch.rand(2, 5, 7, 5), torch.rand(2, 2, 21, 15), None).cube
    assert out.shape == (2, 5, 21, 15) and torch.isfinite(out).all() and calls[-1] == 2


def test_config_errors() -> None:
    for bad in ({"mode": "x"}, {"upsampler": "cubic"}, {"eps_rel": 0.0}, {"dtype": "int8"}):
        with pytest.raises(InputError):
            SFIMHS(SFIMConfig(**bad))  # type: ignore[arg-type]
