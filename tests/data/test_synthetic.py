"""Tests for the dead-leaves generator, the spectra sources and the streaming dataset."""

from __future__ import annotations

import functools
import json
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hyperfuse.data import (
    DeadLeavesPairs,
    SyntheticScene,
    builtin_spectra,
    collate_pairs,
    dead_leaves_abundances,
    dead_leaves_scene,
    library_spectra,
    load_scene_npz,
    preview_figure,
    read_library,
    save_scene_npz,
    scene_spectra,
)
from hyperfuse.data import synthetic as syn
from hyperfuse.errors import FormatError, InputError, ShapeError, ValueRangeError

USGS = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "spectral_libraries"
    / "usgs1995_aviris224.npz"
)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def truncated_power_law_mle(r: np.ndarray, r_min: float, r_max: float) -> float:
    """Maximum-likelihood exponent of a density ``r**-alpha`` on [r_min, r_max]."""
    from scipy.optimize import minimize_scalar

    n, s = r.size, float(np.log(r).sum())

    def nll(a: float) -> float:
        if abs(a - 1.0) < 1e-9:
            z = np.log(r_max / r_min)
        else:
            z = (r_max ** (1 - a) - r_min ** (1 - a)) / (1 - a)
        return a * s + n * np.log(z)

    return float(minimize_scalar(nll, bounds=(1.01, 8.0), method="bounded").x)


def brute_force_labels(leaves: syn._Leaves, shape_ss: tuple[int, int], ss: int) -> np.ndarray:
    """Sequential front-to-back painting with plain point-in-shape tests."""
    Hs, Ws = shape_ss
    lab = np.full((Hs, Ws), syn._EMPTY, dtype=np.int64)
    yy, xx = np.mgrid[0:Hs, 0:Ws] + 0.5
    for i in range(leaves.r.size):
        cy, cx, r = leaves.cy[i] * ss, leaves.cx[i] * ss, leaves.r[i] * ss
        dx, dy = xx - cx, yy - cy
        if leaves.kind[i] == 0:
            inside = dx * dx + dy * dy <= r * r
        else:
            k = int(leaves.nvert[i])
            a = leaves.angles[i, :k]
            vx, vy = r * np.cos(a), r * np.sin(a)
            inside = np.ones_like(dx, dtype=bool)
            for e in range(k):
                x0, y0, x1, y1 = vx[e], vy[e], vx[(e + 1) % k], vy[(e + 1) % k]
                inside &= (x1 - x0) * (dy - y0) - (y1 - y0) * (dx - x0) >= 0
        lab[inside & (lab == syn._EMPTY)] = i
    return lab


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture()
def usgs_like(tmp_path: Path) -> Path:
    """A tiny library in the USGS ``datalib_full`` layout with flagged entries."""
    wl_um = np.linspace(0.4, 2.5, 22)
    spectra = np.stack([0.1 + 0.3 * wl_um / 2.5, np.full(22, 0.5), 0.6 - 0.2 * wl_um], axis=1)
    spectra[5, 0] = -1.23e34  # a flagged value inside one spectrum
    channel = np.arange(1.0, 23.0)
    channel[-3:] = -1.23e34  # deleted channels, flagged in the metadata column
    full = np.column_stack([wl_um, np.full(22, 0.01), channel, spectra])
    names = np.array(["wl", "fwhm", "channel", "ramp", "flat", "falling"])
    path = tmp_path / "usgs_like.npz"
    np.savez(path, datalib_full=full, names=names, wavelength_um=wl_um)
    return path


# --------------------------------------------------------------------------------------
# abundances
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [2.5, 3.0, 3.5])
def test_radius_power_law(alpha: float) -> None:
    radii = []
    for seed in range(2):
        _, info = dead_leaves_abundances((96, 96), 3, alpha=alpha, texture=False, rng=seed)
        radii.append(info["radii"])
        assert info["radius_range"] == (2.0, 48.0)
    r = np.concatenate(radii)
    assert r.size > 500
    assert r.min() >= 2.0 and r.max() <= 48.0
    assert abs(truncated_power_law_mle(r, 2.0, 48.0) - alpha) < 0.3
    # log-log slope of the histogram agrees too
    edges = np.geomspace(2.0, 16.0, 7)
    hist, _ = np.histogram(r, bins=edges)
    density = hist / np.diff(edges)
    centres = np.sqrt(edges[1:] * edges[:-1])
    slope = np.polyfit(np.log(centres), np.log(density), 1)[0]
    assert abs(-slope - alpha) < 0.3


def test_sampler_matches_inverse_cdf() -> None:
    u = np.linspace(0, 1, 5)
    r = syn._power_law_radii(u, 2.0, 10.0, 3.0)
    assert r[0] == pytest.approx(2.0) and r[-1] == pytest.approx(10.0)
    assert np.all(np.diff(r) > 0)
    r1 = syn._power_law_radii(u, 2.0, 10.0, 1.0)  # the log-uniform special case
    assert r1[2] == pytest.approx(np.sqrt(20.0))


@pytest.mark.parametrize("antialias", [1, 2, 3])
def test_coverage_and_simplex(antialias: int) -> None:
    A, info = dead_leaves_abundances((64, 80), 5, antialias=antialias, rng=3)
    assert A.shape == (5, 64, 80) and A.dtype == np.float32
    assert info["stopped"] == "coverage"
    assert info["coverage"] >= 0.999
    assert info["n_leaves"] == info["radii"].size
    assert A.min() >= 0
    np.testing.assert_allclose(A.sum(axis=0), 1.0, atol=1e-5)
    assert sum(info["shape_counts"].values()) == info["n_leaves"]


def test_max_leaves_stop() -> None:
    _, info = dead_leaves_abundances((64, 64), 3, max_leaves=10, rng=0)
    assert info["n_leaves"] == 10 and info["stopped"] == "max_leaves"
    assert info["coverage"] < 0.999


def test_painting_is_exact_front_to_back() -> None:
    """The chunked, vectorised painter equals naive sequential painting pixel for pixel."""
    for seed, (shape, ss, rr, alpha, n) in enumerate(
        [
            ((40, 40), 2, (0.7, 40.0), 2.2, 3000),
            ((48, 64), 2, (0.6, 30.0), 3.5, 6000),  # several chunks, big and small leaves
            ((33, 57), 1, (0.5, 20.0), 3.0, 5000),
            ((30, 26), 3, (1.0, 30.0), 2.5, 3000),
        ]
    ):
        draw = functools.partial(
            syn._draw_leaves,
            np.random.default_rng(seed),
            shape=shape,
            radius_range=rr,
            alpha=alpha,
            kinds=np.array([0, 1, 2]),
        )

        shape_ss = (shape[0] * ss, shape[1] * ss)
        lab, leaves, covered, reached = syn._paint(draw, n, shape_ss, ss, 0.999)
        ref = brute_force_labels(leaves, shape_ss, ss)
        np.testing.assert_array_equal(lab, ref)
        assert covered == int(np.count_nonzero(ref != syn._EMPTY))
        if reached:  # the stopping leaf is the first one reaching the target
            before = np.count_nonzero(ref < leaves.r.size - 1)
            assert before < 0.999 * lab.size <= covered


def test_antialias_mixes_edges_only() -> None:
    kw = dict(texture=False, concentration=0.05, rng=7)
    A1, _ = dead_leaves_abundances((48, 48), 4, antialias=1, **kw)
    A2, _ = dead_leaves_abundances((48, 48), 4, antialias=2, **kw)
    # without supersampling every pixel is one leaf's vector: few distinct rows
    rows1 = np.unique(A1.reshape(4, -1).T, axis=0)
    rows2 = np.unique(A2.reshape(4, -1).T, axis=0)
    assert rows2.shape[0] > rows1.shape[0]
    # supersampling averages 4 sub-pixels: edge values are multiples of 1/4 mixes
    np.testing.assert_allclose(A2.sum(axis=0), 1.0, atol=1e-5)


def test_texture_varies_inside_leaves() -> None:
    flat, _ = dead_leaves_abundances((64, 64), 4, texture=False, antialias=1, rng=1)
    tex, _ = dead_leaves_abundances((64, 64), 4, texture=True, antialias=1, rng=1)
    n_flat = np.unique(flat.reshape(4, -1).T, axis=0).shape[0]
    n_tex = np.unique(tex.reshape(4, -1).T, axis=0).shape[0]
    assert n_tex > 4 * n_flat
    np.testing.assert_allclose(tex.sum(axis=0), 1.0, atol=1e-5)


def test_shading_when_not_sum_to_one() -> None:
    A, _ = dead_leaves_abundances((48, 48), 3, sum_to_one=False, rng=2)
    s = A.sum(axis=0)
    assert A.min() >= 0
    assert 0.5 - 1e-5 <= s.min() < s.max() <= 1.0 + 1e-5
    assert s.std() > 0.01


def test_rng_reproducibility() -> None:
    a, ia = dead_leaves_abundances((40, 40), 3, rng=11)
    b, ib = dead_leaves_abundances((40, 40), 3, rng=np.random.default_rng(11))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ia["radii"], ib["radii"])
    c, _ = dead_leaves_abundances((40, 40), 3, rng=12)
    assert not np.array_equal(a, c)
    t1, _ = dead_leaves_abundances((40, 40), 3, rng=torch.Generator().manual_seed(5))
    t2, _ = dead_leaves_abundances((40, 40), 3, rng=torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(t1, t2)
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    torch_state = torch.random.get_rng_state().clone()
    dead_leaves_abundances((16, 16), 2, rng=1)
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    assert torch.equal(torch.random.get_rng_state(), torch_state)


@pytest.mark.parametrize("shapes", [("disk",), ("rectangle",), ("polygon",)])
def test_single_shape_kinds(shapes: tuple[str, ...]) -> None:
    A, info = dead_leaves_abundances((32, 32), 3, shapes=shapes, rng=0)  # type: ignore[arg-type]
    assert info["shape_counts"][shapes[0]] == info["n_leaves"]
    np.testing.assert_allclose(A.sum(axis=0), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"radius_range": (5, 2)},
        {"shapes": ("star",)},
        {"coverage": 0.0},
        {"antialias": 0},
        {"antialias": 1.5},
        {"concentration": -1.0},
        {"max_leaves": 0},
    ],
)
def test_invalid_parameters(kwargs: dict) -> None:
    with pytest.raises(InputError):
        dead_leaves_abundances((16, 16), 3, rng=0, **kwargs)


def test_invalid_shape() -> None:
    with pytest.raises(ShapeError):
        dead_leaves_abundances((0, 16), 3, rng=0)


# --------------------------------------------------------------------------------------
# spectra
# --------------------------------------------------------------------------------------

GRIDS = [
    np.linspace(400, 700, 31),
    np.linspace(400, 2500, 400),
    np.linspace(400, 2500, 224),
    np.linspace(350, 1050, 61),
    np.linspace(450, 900, 100),
]


@pytest.mark.parametrize("wl", GRIDS, ids=lambda w: f"{w[0]:.0f}-{w[-1]:.0f}x{w.size}")
def test_builtin_spectra_ranges(wl: np.ndarray) -> None:
    E = builtin_spectra(wl, 12, rng=0)
    assert E.shape == (wl.size, 12)
    assert np.isfinite(E).all()
    assert E.min() >= 0.01 and E.max() <= 0.95
    assert 0.0 <= E.min() and E.max() <= 1.0
    assert np.linalg.matrix_rank(E[:, :5]) == min(5, wl.size)


def test_builtin_families_look_like_materials() -> None:
    wl = np.arange(400.0, 2501.0, 10.0)
    at = {int(w): i for i, w in enumerate(wl)}
    veg = builtin_spectra(wl, 5, rng=1, families=["vegetation"])
    assert (veg[at[800]] > 3 * veg[at[670]]).all()  # red edge
    assert (veg[at[550]] > veg[at[670]]).all()  # green bump
    assert (veg[at[1940]] < 0.6 * veg[at[1650]]).all()  # water absorption
    water = builtin_spectra(wl, 5, rng=1, families=["water"])
    assert (water[at[450]] > water[at[900]]).all() and water.max() < 0.2
    soil = builtin_spectra(wl, 5, rng=1, families=["soil"])
    assert (soil[at[1600]] > soil[at[450]]).all()
    with pytest.raises(InputError):
        builtin_spectra(wl, 3, rng=0, families=["plasma"])  # type: ignore[list-item]
    with pytest.raises(InputError):
        builtin_spectra(np.linspace(0.4, 2.5, 10), 3, rng=0)  # micrometres


def test_builtin_spectra_reproducible() -> None:
    wl = np.linspace(400, 1000, 50)
    np.testing.assert_array_equal(builtin_spectra(wl, 6, rng=3), builtin_spectra(wl, 6, rng=3))
    assert not np.array_equal(builtin_spectra(wl, 6, rng=3), builtin_spectra(wl, 6, rng=4))


def test_library_fixture_drops_flagged(usgs_like: Path) -> None:
    wl, spectra, names = read_library(usgs_like)
    assert names == ("ramp", "flat", "falling")
    assert np.isnan(spectra[-3:]).all()  # deleted channels
    assert np.isnan(spectra[5, 0]) and np.isfinite(spectra[5, 1:]).all()
    grid = np.linspace(400, 2500, 57)
    E = library_spectra(usgs_like, grid, 3, rng=0)
    assert E.shape == (57, 3) and np.isfinite(E).all()
    assert E.min() >= 0.01 and E.max() <= 0.95
    # the flagged value is interpolated over: the linear spectra stay exactly linear
    last_valid_nm = wl[-4]
    inside = grid <= last_valid_nm
    assert np.abs(np.diff(E[inside], 2, axis=0)).max() < 1e-9
    # beyond the last valid channel the spectra are held constant
    beyond = grid > last_valid_nm
    np.testing.assert_allclose(E[beyond], np.broadcast_to(E[beyond][:1], E[beyond].shape))
    # more spectra than the library holds: drawn with replacement
    assert library_spectra(usgs_like, grid, 7, rng=0).shape == (57, 7)


def test_library_generic_tables(tmp_path: Path) -> None:
    wl = np.array([400.0, 500.0, 600.0, 700.0])
    spectra = np.array([[0.1, 0.2], [0.2, np.nan], [0.3, 0.4], [0.4, 0.5]])
    npz = tmp_path / "lib.npz"
    np.savez(npz, wavelengths=wl, spectra=spectra.T)  # (n, L) is accepted too
    E = library_spectra(npz, [450.0, 500.0, 650.0], 2, rng=0)
    assert np.isfinite(E).all()
    csv = tmp_path / "lib.csv"
    rows = [f"{w / 1000},{s[0]},{s[1]}" for w, s in zip(wl, spectra, strict=True)]
    csv.write_text("wavelength,a,b\n" + "\n".join(rows))
    Ec = library_spectra(csv, [450.0, 500.0, 650.0], 2, rng=0)
    np.testing.assert_allclose(np.sort(Ec, axis=1), np.sort(E, axis=1))
    with pytest.raises(FormatError):
        library_spectra(tmp_path / "missing.npz", [500.0], 1, rng=0)
    bad = tmp_path / "bad.npz"
    np.savez(bad, foo=np.zeros(3))
    with pytest.raises(FormatError):
        library_spectra(bad, [500.0], 1, rng=0)


@pytest.mark.data
def test_usgs_library_real_file() -> None:
    if not USGS.is_file():
        pytest.skip(f"shared data not found: {USGS}")
    wl, spectra, names = read_library(USGS)
    assert spectra.shape == (224, 498) and len(names) == 498
    dropped = np.isnan(spectra).all(axis=1)
    assert dropped.sum() == 16  # the 16 channels flagged -1.23e34
    for grid in (
        np.linspace(400, 2500, 400),
        np.linspace(400, 700, 31),
        np.linspace(380, 2510, 100),
    ):
        E = library_spectra(USGS, grid, 20, rng=0)
        assert np.isfinite(E).all() and E.min() >= 0.01 and E.max() <= 0.95
    grid = np.linspace(2300, 2500, 41)
    E = library_spectra(USGS, grid, 5, rng=1)
    last_valid = wl[~dropped].max()
    beyond = grid > last_valid
    np.testing.assert_allclose(E[beyond], np.broadcast_to(E[beyond][:1], E[beyond].shape))


def test_scene_spectra_perturbs() -> None:
    wl = np.linspace(400, 2500, 120)
    base = builtin_spectra(wl, 3, rng=0)
    E = scene_spectra(base, 7, rng=1)
    assert E.shape == (120, 7) and E.min() >= 0.01 and E.max() <= 0.95
    # each copy stays close to one endmember but copies differ
    err = np.abs(E[:, :, None] - base[:, None, :]).mean(axis=0).min(axis=1)
    assert err.max() < 0.05
    assert not np.allclose(E[:, 0], E[:, 3])
    same = scene_spectra(base, 3, rng=1, perturb=0.0, max_shift=0.0)
    np.testing.assert_allclose(np.sort(same, axis=1), np.sort(np.clip(base, 0.01, 0.95), axis=1))
    with pytest.raises(ValueRangeError):
        scene_spectra(base * 1000, 3, rng=0)
    with pytest.raises(ValueRangeError):
        scene_spectra(np.full((5, 2), np.nan), 3, rng=0)


# --------------------------------------------------------------------------------------
# scenes, files and previews
# --------------------------------------------------------------------------------------


def test_scene_is_linear_mixture() -> None:
    wl = np.linspace(400, 2500, 64)
    s = dead_leaves_scene((32, 40), wl, n_endmembers=5, rng=4)
    assert isinstance(s, SyntheticScene) and s.shape == (64, 32, 40)
    assert s.cube.dtype == s.endmembers.dtype == s.abundances.dtype == np.float32
    mix = np.einsum("lp,phw->lhw", s.endmembers.astype(np.float64), s.abundances)
    np.testing.assert_allclose(s.cube, mix, atol=1e-5)
    assert s.cube.min() >= 0.01 - 1e-6 and s.cube.max() <= 0.95 + 1e-6
    same = dead_leaves_scene((32, 40), wl, n_endmembers=5, rng=4)
    np.testing.assert_array_equal(s.cube, same.cube)
    other = dead_leaves_scene((32, 40), wl, n_endmembers=5, rng=5)
    assert not np.array_equal(s.cube, other.cube)


def test_scene_spectra_sources(usgs_like: Path) -> None:
    wl = np.linspace(400, 2500, 30)
    built = dead_leaves_scene(24, wl, n_endmembers=4, rng=9)
    lib = dead_leaves_scene(24, wl, n_endmembers=4, spectra=usgs_like, rng=9)
    arr = dead_leaves_scene(24, wl, n_endmembers=4, spectra=built.endmembers, rng=9)
    # the abundance stream does not depend on the spectra source
    np.testing.assert_array_equal(built.abundances, lib.abundances)
    np.testing.assert_array_equal(built.abundances, arr.abundances)
    assert lib.info["spectra"]["source"] == "library"
    assert set(lib.info["spectra"]["names"]) <= {"ramp", "flat", "falling"}
    assert arr.info["spectra"]["source"] == "scene"
    with pytest.raises(ShapeError):
        dead_leaves_scene(24, wl, spectra=np.ones((7, 2)), rng=0)
    with pytest.raises(InputError):
        dead_leaves_scene(24, wl, spectra=3, rng=0)  # type: ignore[arg-type]


def test_save_load_round_trip(tmp_path: Path) -> None:
    s = dead_leaves_scene((20, 28), np.linspace(400, 1000, 9), n_endmembers=3, rng=0)
    path = save_scene_npz(tmp_path / "sub" / "scene.npz", s)
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["scene.npz"]  # no temp file left
    with np.load(path) as z:
        assert z["cube"].shape == (20, 28, 9)
        assert z["A"].shape == (20, 28, 3) and z["E"].shape == (9, 3)
        np.testing.assert_allclose(z["cube"], z["A"] @ z["E"].T, atol=1e-5)
        info = json.loads(str(z["info"]))
        assert info["n_leaves"] == s.info["n_leaves"]
    back = load_scene_npz(path)
    np.testing.assert_array_equal(back.cube, s.cube)
    np.testing.assert_array_equal(back.abundances, s.abundances)
    np.testing.assert_array_equal(back.endmembers, s.endmembers)
    np.testing.assert_array_equal(back.wavelengths, s.wavelengths)
    np.testing.assert_array_equal(back.info["radii"], s.info["radii"])
    save_scene_npz(path, s)  # overwriting is fine


@pytest.mark.parametrize("wl", [np.linspace(400, 1000, 40), np.linspace(1000, 2500, 20)])
def test_preview_png(tmp_path: Path, wl: np.ndarray) -> None:
    pytest.importorskip("matplotlib")
    s = dead_leaves_scene(32, wl, n_endmembers=4, rng=0)
    out = preview_figure(s, tmp_path / "preview.png")
    assert out.stat().st_size > 5000
    w, h = png_size(out)
    assert 400 <= w <= 4000 and 200 <= h <= 4000
    assert [p.name for p in tmp_path.iterdir()] == ["preview.png"]


# --------------------------------------------------------------------------------------
# streaming dataset
# --------------------------------------------------------------------------------------


def _sensor(n_bands: int, ratio: int = 4, n_msi: int = 3):
    from hyperfuse.physics import make_sensor

    srf = np.random.default_rng(0).random((n_msi, n_bands))
    return make_sensor(ratio, srf=srf / srf.sum(axis=1, keepdims=True), snr_hsi=40.0)


def test_pairs_stream_shapes_and_seed() -> None:
    ds = DeadLeavesPairs(32, (400, 1000, 12), seed=3, sensor=_sensor(12), n_samples=3)
    a = list(ds)
    assert len(a) == len(ds) == 3
    s = a[0]
    assert s["cube"].shape == (12, 32, 32) and s["cube"].dtype == torch.float32
    assert s["hsi"].shape == (12, 8, 8) and s["msi"].shape == (3, 32, 32)
    assert s["wavelengths"].shape == (12,)
    b = list(DeadLeavesPairs(32, (400, 1000, 12), seed=3, sensor=_sensor(12), n_samples=3))
    for x, y in zip(a, b, strict=True):
        for k in ("cube", "hsi", "msi"):
            assert torch.equal(x[k], y[k])
    c = next(iter(DeadLeavesPairs(32, (400, 1000, 12), seed=4, sensor=_sensor(12))))
    assert not torch.equal(a[0]["cube"], c["cube"])
    assert not torch.equal(a[0]["cube"], a[1]["cube"])
    ds.set_epoch(1)
    assert not torch.equal(next(iter(ds))["cube"], a[0]["cube"])
    batch = collate_pairs(a)
    assert batch["hsi"].shape == (3, 12, 8, 8) and len(batch["sensor"]) == 3


def test_pairs_workers_split_without_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = DeadLeavesPairs(16, np.linspace(400, 900, 6), seed=0, sensor=_sensor(6), n_samples=5)
    single = {s["index"]: s for s in ds}
    seen: list[int] = []
    for wid in range(2):
        info = SimpleNamespace(id=wid, num_workers=2)
        monkeypatch.setattr(syn, "get_worker_info", lambda info=info: info)
        for s in ds:
            seen.append(s["index"])
            assert torch.equal(s["cube"], single[s["index"]]["cube"])
    assert sorted(seen) == list(range(5))


def test_pairs_random_sensor_per_sample() -> None:
    def random_sensor(rng: np.random.Generator):
        return _sensor(8, ratio=int(rng.choice([2, 4])), n_msi=int(rng.integers(2, 5)))

    ds = DeadLeavesPairs(16, np.linspace(400, 900, 8), seed=1, sensor=random_sensor, n_samples=6)
    samples = list(ds)
    ratios = {s["sensor"].ratio for s in samples}
    assert ratios == {2, 4}
    for s in samples:
        r = s["sensor"].ratio
        assert s["hsi"].shape == (8, 16 // r, 16 // r)
        assert s["msi"].shape[0] == s["sensor"].srf.shape[0]
    with pytest.raises(ShapeError):
        collate_pairs(samples)
    with pytest.raises(InputError):
        DeadLeavesPairs(16, np.linspace(400, 900, 8), seed=1, sensor="nope")  # type: ignore[arg-type]
