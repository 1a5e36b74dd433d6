"""FUSE — closed-form Sylvester fusion (``classical.md`` §8)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperfuse.errors import InputError, SRFError
from hyperfuse.methods import get_method, list_methods, method_info
from hyperfuse.methods.classical.fuse import (
    FUSE,
    FUSEConfig,
    fourier_kernel,
    pca_basis,
    sylvester_solve,
)
from hyperfuse.physics.functional import spatial_degrade
from hyperfuse.physics.interpolate import lr_pixel_centre, up_bicubic

_spec = importlib.util.spec_from_file_location("_hyperfuse_test_scenes", Path(__file__).parent / "scenes.py")
scenes = importlib.util.module_from_spec(_spec)
sys.modules.setdefault(_spec.name, scenes)
_spec.loader.exec_module(scenes)  # type: ignore[union-attr]
make_scene, psnr = scenes.make_scene, scenes.psnr


def test_registered() -> None:
    assert "fuse-sylvester" in list_methods()
    info = method_info("fuse-sylvester")
    assert info["description"].startswith("FUSE (Wei et al. 2015)")
    assert info["config"]["n_components"] == 15 and info["config"]["tau"] == 1e-8
    assert FUSE.needs_srf and not FUSE.blind


@pytest.mark.parametrize(("K", "offset"), [(7, (1, 2)), (6, (3, 0)), (14, (2, 2))])
def test_fourier_kernel_matches_direct_degradation(K: int, offset: tuple[int, int]) -> None:
    g = np.random.default_rng(0)
    psf = g.uniform(0, 1, (K, K))
    psf /= psf.sum()
    X = torch.from_numpy(g.standard_normal((2, 16, 20)))
    G = fourier_kernel(psf, offset, (16, 20))
    fft = torch.fft.ifft2(G * torch.fft.fft2(X)).real[:, ::4, ::4]
    direct = spatial_degrade(X[None], psf, 4, offset, "circular")[0]
    assert torch.allclose(fft, direct, atol=1e-12)


def test_closed_form_matches_dense_normal_equations() -> None:
    """16², r = 4, L = 8, l = 3, k = 5, random 7×7 kernel, offset (1, 2), τ = 0.3."""
    g = np.random.default_rng(1)
    H = W = 16
    r, L, l, k, tau, offset = 4, 8, 3, 5, 0.3, (1, 2)
    h, w = H // r, W // r
    N, n = H * W, h * w
    psf = g.uniform(0, 1, (7, 7))
    psf /= psf.sum()
    yh = torch.from_numpy(g.uniform(0, 1, (L, h, w)))
    ym = torch.from_numpy(g.uniform(0, 1, (l, H, W)))
    R = g.uniform(0, 1, (l, L))
    E = torch.from_numpy(g.standard_normal((L, k)))
    Ubar = torch.from_numpy(g.standard_normal((k, H, W)))
    U, _ = sylvester_solve(yh, ym, R, psf, r, offset, E, Ubar, tau)
    # Dense D (N×n): row t is the degradation of the t-th HR unit image.
    eye = torch.eye(N, dtype=torch.float64).reshape(N, 1, H, W)
    D = spatial_degrade(eye, psf, r, offset, "circular").reshape(N, n)
    Et = E
    RE = torch.from_numpy(R) @ Et
    A_h = Et.T @ Et
    A_m = RE.T @ RE + tau * torch.eye(k, dtype=torch.float64)
    C = Et.T @ yh.reshape(L, n) @ D.T + RE.T @ ym.reshape(l, N) + tau * Ubar.reshape(k, N)
    DDt = D @ D.T
    big = torch.kron(A_h, DDt.T.contiguous()) + torch.kron(A_m, torch.eye(N, dtype=torch.float64))
    U_dense = torch.linalg.solve(big, C.reshape(-1)).reshape(k, H, W)
    rel = float((U - U_dense).norm() / U_dense.norm())
    assert rel < 1e-10


def test_pca_basis_whitened_and_drops_null_directions() -> None:
    g = np.random.default_rng(2)
    Y = torch.from_numpy(g.uniform(0, 1, (10, 3)) @ g.uniform(0, 1, (3, 200)))
    E, s = pca_basis(Y, 15)
    assert E.shape == (10, 3) and s.shape == (3,)
    Epinv = (E / s).T
    Uw = Epinv @ Y
    assert torch.allclose(Uw @ Uw.T / 200, torch.eye(3, dtype=torch.float64), atol=1e-8)
    assert torch.allclose(E @ Uw, Y, atol=1e-10)
    with pytest.raises(InputError):
        pca_basis(torch.zeros(4, 10), 2)


@pytest.mark.parametrize("k", [6, 15])
def test_well_posed_case_is_nearly_exact(k: int) -> None:
    """l = 8, rank-6 scene, τ = 1e-8, noise-free, r = 8: PSNR ≥ 80 dB."""
    s = make_scene(64, L=31, p=6, l=8, ratio=8, seed=0)
    res = FUSE(FUSEConfig(n_components=k)).fuse(*s.pair(), s.sensor)
    assert res.info["n_components"] == [6]
    assert psnr(res.cube, s.X) >= 80.0


@pytest.mark.parametrize(("r", "floor"), [(4, 40.0), (8, 33.0)])
def test_three_band_msi(r: int, floor: float) -> None:
    s = make_scene(64, L=31, p=4, l=3, ratio=r, seed=0)
    hsi, msi = s.pair()
    h0, m0 = hsi.clone(), msi.clone()
    out = get_method("fuse-sylvester").fuse(hsi, msi, s.sensor).cube
    assert out.shape == (1, 31, 64, 64) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert torch.equal(hsi, h0) and torch.equal(msi, m0)
    p = psnr(out, s.X)
    base = up_bicubic(hsi, r, offset=lr_pixel_centre(s.sensor.psf.shape, s.sensor.offset))
    assert p >= floor and p > psnr(base, s.X) + 1.0
    assert torch.equal(out, get_method("fuse-sylvester").fuse(hsi, msi, s.sensor).cube)


def test_noisy_scene_hysime_options_and_reflect_sensor() -> None:
    s = make_scene(32, L=16, p=4, l=3, ratio=4, seed=3, snr=35.0)
    sensor = s.sensor.replace(boundary="reflect")
    res = FUSE(FUSEConfig(n_components="hysime", noise="hysime")).fuse(*s.pair(), sensor)
    assert torch.isfinite(res.cube).all()
    assert "reflect" in res.info["boundary"]
    base = up_bicubic(s.pair()[0], 4, offset=lr_pixel_centre(s.sensor.psf.shape, s.sensor.offset))
    assert psnr(res.cube, s.X) > psnr(base, s.X)


def test_uncovered_band_is_dropped_with_warning() -> None:
    s = make_scene(32, L=12, p=3, l=3, ratio=4, seed=4)
    srf = np.asarray(s.sensor.srf).copy()
    srf[1] = 0
    with pytest.warns(UserWarning, match="drops MSI band"):
        res = FUSE().fuse(*s.pair(), s.sensor.replace(srf=srf))
    assert res.info["dropped_bands"] == [1] and torch.isfinite(res.cube).all()
    with pytest.raises(SRFError):
        FUSE().fuse(*s.pair(), s.sensor.replace(srf=np.zeros_like(srf)))


def test_batch_progress_and_odd_sizes() -> None:
    a = make_scene(24, L=8, p=3, l=2, ratio=3, seed=5)
    b = make_scene(24, L=8, p=3, l=2, ratio=3, seed=6)
    hsi = torch.cat([a.pair()[0], b.pair()[0]])
    msi = torch.cat([a.pair()[1], b.pair()[1]])
    calls: list[tuple[int, int]] = []
    out = FUSE(progress=lambda st, i, n, c: calls.append((i, n))).fuse(hsi, msi, a.sensor).cube
    assert calls == [(1, 2), (2, 2)]
    assert torch.allclose(out[1:], FUSE().fuse(*b.pair(), a.sensor).cube, atol=1e-6)


def test_needs_srf_and_config_errors() -> None:
    with pytest.raises(SRFError):
        FUSE().fuse(torch.rand(1, 4, 4, 4), torch.rand(1, 2, 16, 16), None)
    for bad in ({"n_components": 0}, {"n_components": "auto"}, {"tau": 0.0}, {"noise": "x"}):
        with pytest.raises(InputError):
            FUSE(FUSEConfig(**bad))  # type: ignore[arg-type]
    with pytest.raises(InputError):
        sylvester_solve(torch.rand(2, 2, 2), torch.rand(1, 4, 4), np.ones((1, 2)), np.ones((1, 1)),
                        2, (0, 0), torch.eye(2), torch.zeros(2, 4, 4), 0.0)
