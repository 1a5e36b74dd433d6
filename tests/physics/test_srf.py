"""Tests of hyperfuse.physics.srf (protocols.md §5)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperfuse.errors import SRFError
from hyperfuse.physics.srf import (
    SRFResult,
    get_srf,
    list_srfs,
    load_srf,
    resample_srf,
    srf_from_spec,
)

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is absent")
data = [pytest.mark.data, needs_data]

try:  # optional extras
    import pyrsr  # noqa: F401

    HAS_PYRSR = True
except ImportError:  # pragma: no cover
    HAS_PYRSR = False
try:
    import colour  # noqa: F401

    HAS_COLOUR = True
except ImportError:  # pragma: no cover
    HAS_COLOUR = False
needs_pyrsr = pytest.mark.skipif(not HAS_PYRSR, reason="pyrsr not installed")
needs_colour = pytest.mark.skipif(not HAS_COLOUR, reason="colour-science not installed")


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg.strip() == msg and msg
    return msg


def _quiet(fn, *args, **kwargs):
    """Call fn with warnings recorded (not raised); return (result, messages)."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in rec]


# ----------------------------------------------------------------- data helpers


def _jasper_wl() -> np.ndarray:
    return np.load(DATA / "jasper_ridge" / "wavelengths_nm_APPROX_aviris1995.npy").astype(float)


def _jasper_fwhm() -> np.ndarray:
    lib = np.load(DATA / "spectral_libraries" / "usgs1995_aviris224.npz")
    ch = np.load(DATA / "jasper_ridge" / "aviris_band_numbers_1based.npy").astype(int)
    return lib["datalib_full"][ch - 1, 1] * 1000.0


SAMSON_WL = np.linspace(401.0, 889.0, 156)
CHIKUSEI_WL = np.linspace(363.0, 1018.0, 128)
PAVIA_WL = np.linspace(430.0, 860.0, 103)
S2_KEPT = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12")


# ----------------------------------------------------------------- resample_srf basics


def test_boxcar_on_regular_grid_is_hat_weights():
    wl = np.arange(400.0, 501.0, 10.0)
    res = resample_srf([440, 460], [1.0, 1.0], wl, band_names=["box"])
    assert isinstance(res, SRFResult)
    assert res.matrix.shape == (1, wl.size) and res.matrix.dtype == np.float64
    # 1-nm grid 440..460: the 440/450/460 hats collect 5.5, 10 and 5.5 of 21 samples
    np.testing.assert_allclose(res.matrix[0, 4:7], np.array([5.5, 10, 5.5]) / 21, atol=1e-12)
    assert res.matrix[0, :4].sum() == 0 and res.matrix[0, 7:].sum() == 0
    assert res.matrix[0].sum() == pytest.approx(1.0)
    assert res.coverage[0] == pytest.approx(1.0)
    assert res.centres[0] == pytest.approx(450.0)
    assert res.dropped == () and res.band_names == ("box",)


def test_result_is_frozen_and_read_only():
    res = resample_srf([440, 460], [1.0, 1.0], np.arange(400.0, 501.0, 10.0))
    with pytest.raises(AttributeError):
        res.source = "x"  # type: ignore[misc]
    with pytest.raises(ValueError):
        res.matrix[0, 0] = 1.0
    info = res.to_info()
    assert info["srf_band_names"] == ["band_1"] and info["srf_dropped"] == {}


def test_normalise_rows_false_keeps_gains():
    wl = np.arange(400.0, 501.0, 10.0)
    res = resample_srf([440, 460], [[2.0, 2.0]], wl, normalise_rows=False)
    # Σ_λ r φ Δλ over 440..460 (21 grid points of value 2), all covered.
    assert res.matrix.sum() == pytest.approx(42.0)


def test_partition_of_unity_for_flat_response_with_gap_and_ends():
    # centres with a gap (600 -> 700): flat extension f/2 = 5 nm on each side.
    wl = np.r_[np.arange(500.0, 601.0, 10.0), np.arange(700.0, 801.0, 10.0)]
    flat = resample_srf([495, 805], [[1.0, 1.0]], wl, min_coverage=0.0, normalise_rows=False)
    # observed: 495..605 (111 pts) + 695..805 (111 pts) out of 311 grid points
    assert flat.coverage[0] == pytest.approx(222 / 311)
    # a band lying inside the gap is not observed at all
    with pytest.raises(SRFError, match="none of the SRF bands overlaps") as exc:
        resample_srf([620, 680], [[1.0, 1.0]], wl, min_coverage=0.0)
    _one_line(exc)


def test_band_entirely_outside_is_dropped_with_warning():
    wl = np.linspace(400.0, 700.0, 31)
    with pytest.warns(UserWarning, match=r"G2 \(coverage 0\.000\)"):
        res = get_srf("gaussian:500,1500@30", wl)
    assert res.band_names == ("G1",)
    assert res.dropped == (("G2", 0.0),)
    assert res.matrix.shape == (1, 31)


def test_partial_band_dropped_and_kept_with_lower_min_coverage():
    wl = np.linspace(400.0, 700.0, 31)
    with pytest.warns(UserWarning, match="G2"):
        res = get_srf("gaussian:500,700@40", wl)
    assert res.band_names == ("G1",) and 0.4 < res.dropped[0][1] < 0.7
    res2 = get_srf("gaussian:500,700@40", wl, min_coverage=0.4)
    assert res2.band_names == ("G1", "G2")
    np.testing.assert_allclose(res2.matrix.sum(axis=1), 1.0)


@pytest.mark.parametrize("method", ["hat", "point", "gaussian"])
def test_methods_agree_for_narrow_bands(method):
    wl = np.arange(400.0, 901.0, 5.0)
    base = get_srf("gaussian:500,650,800@40", wl)
    res = get_srf("gaussian:500,650,800@40", wl, method=method)
    for a, b in zip(base.matrix, res.matrix, strict=True):
        assert np.corrcoef(a, b)[0, 1] > 0.999
    np.testing.assert_allclose(res.centres, [500, 650, 800], atol=0.5)
    np.testing.assert_allclose(res.coverage, 1.0, atol=0.02)


def test_fwhm_scalar_and_array_equivalent():
    wl = np.arange(400.0, 701.0, 10.0)
    a = get_srf("gaussian:3", wl, hsi_fwhm=12.0, method="gaussian")
    b = get_srf("gaussian:3", wl, hsi_fwhm=np.full(wl.size, 12.0), method="gaussian")
    np.testing.assert_array_equal(a.matrix, b.matrix)


def test_duplicate_centres_share_weight():
    wl = np.array([400.0, 410.0, 420.0, 420.0, 430.0, 440.0])
    res = resample_srf([405, 435], [1.0, 1.0], wl)
    assert res.matrix[0, 2] == pytest.approx(res.matrix[0, 3])
    assert res.coverage[0] == pytest.approx(1.0)


@settings(max_examples=20, deadline=None)
@given(perm_seed=st.integers(0, 2**32 - 1))
def test_unsorted_bands_give_the_same_matrix_after_reordering(perm_seed):
    rng = np.random.default_rng(perm_seed)
    wl = np.r_[np.linspace(400, 1300, 60), np.linspace(1450, 2400, 40)]
    perm = rng.permutation(wl.size)
    for method in ("hat", "point", "gaussian"):
        ref = get_srf("gaussian:6", wl, method=method, min_coverage=0.0)
        got = get_srf("gaussian:6", wl[perm], method=method, min_coverage=0.0)
        np.testing.assert_allclose(got.matrix, ref.matrix[:, perm], rtol=0, atol=1e-14)
        np.testing.assert_allclose(got.coverage, ref.coverage, atol=1e-14)
        np.testing.assert_allclose(got.centres, ref.centres, atol=1e-9)


# ----------------------------------------------------------------- registry


def test_list_srfs_contents():
    names = list_srfs()
    assert names == sorted(names)
    for n in ("sentinel-2a", "sentinel-2b", "landsat-8", "landsat-9", "cie1931", "wv2-like", "rgb"):
        assert n in names
    if HAS_COLOUR:
        assert "nikon-5100" in names and "sigma-sdmerill" in names


def test_gaussian_n_spreads_over_range():
    wl = np.linspace(400.0, 1000.0, 121)
    res = get_srf("gaussian:4", wl)
    assert res.band_names == ("G1", "G2", "G3", "G4")
    np.testing.assert_allclose(res.coverage, 1.0)
    # nominal centres 475, 625, 775, 925; truncation at the range pulls the end bands in
    np.testing.assert_allclose(res.centres[1:3], [625, 775], atol=3)
    assert 475 < res.centres[0] < 500 and 900 < res.centres[3] < 925
    np.testing.assert_allclose(res.matrix.sum(axis=1), 1.0)


def test_wv2_like_on_chikusei_grid():
    with pytest.warns(UserWarning, match=r"NIR2 \(coverage 0\.890\)"):
        res = get_srf("wv2-like", CHIKUSEI_WL)
    assert res.approximate is True and "APPROXIMATE" in res.source
    assert res.band_names == ("Coastal", "Blue", "Green", "Yellow", "Red", "RedEdge", "NIR1")
    np.testing.assert_allclose(res.coverage, 1.0, atol=0.005)
    assert res.dropped[0][0] == "NIR2" and res.dropped[0][1] == pytest.approx(0.89, abs=0.005)
    # protocols.md §7 chikusei preset keeps it with min_coverage=0.8
    res8 = get_srf("wv2-like", CHIKUSEI_WL, min_coverage=0.8)
    assert res8.n_bands == 8 and res8.coverage[-1] == pytest.approx(0.89, abs=0.005)


@needs_colour
def test_cameras_and_cie():
    wl = np.arange(380.0, 781.0, 5.0)
    rgb = get_srf("rgb", wl)
    nikon = get_srf("nikon-5100", wl)
    np.testing.assert_array_equal(rgb.matrix, nikon.matrix)
    assert nikon.band_names == ("R", "G", "B")
    assert nikon.centres[0] > nikon.centres[1] > nikon.centres[2]
    cie = get_srf("CIE1931", wl)
    assert cie.band_names == ("X", "Y", "Z") and "colour-science" in cie.source
    assert cie.centres[1] == pytest.approx(560, abs=10)
    np.testing.assert_allclose(cie.matrix.sum(axis=1), 1.0)


@needs_pyrsr
def test_landsat_only_oli_bands():
    wl = np.arange(400.0, 2501.0, 10.0)
    for name in ("landsat-8", "landsat-9"):
        res, msgs = _quiet(get_srf, name, wl)
        assert res.band_names == tuple(f"B{i}" for i in range(1, 10))  # TIRS B10, B11 gone
        assert res.dropped == () and msgs == []
        assert np.all(res.matrix >= 0)


@needs_pyrsr
def test_sentinel2_10band_variant():
    wl = np.arange(400.0, 2501.0, 10.0)
    res = get_srf("sentinel-2a-10band", wl)
    assert res.band_names == ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")


# ----------------------------------------------------------------- check values (protocols §5)


@pytest.mark.data
@needs_data
@needs_pyrsr
def test_sentinel2a_on_jasper_check_values():
    wl = _jasper_wl()
    assert wl.size == 198 and np.any(np.diff(wl) < 0)  # not monotonic
    with pytest.warns(UserWarning, match=r"B10 \(coverage"):
        res = get_srf("sentinel-2a", wl, hsi_fwhm=_jasper_fwhm())
    assert res.band_names == S2_KEPT
    assert res.matrix.shape == (12, 198)
    np.testing.assert_allclose(res.matrix.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(res.coverage, 1.0, atol=0.005)
    assert [n for n, _ in res.dropped] == ["B10"]
    assert res.dropped[0][1] == pytest.approx(0.015, abs=0.005)
    # weighted centres agree with the table's #weighted_center_nm line
    expected = [
        442.70,
        492.44,
        559.85,
        664.62,
        704.11,
        740.49,
        782.75,
        832.79,
        864.71,
        945.05,
        1613.66,
        2202.37,
    ]
    np.testing.assert_allclose(res.centres, expected, atol=5)
    # default widths (local spacing): B10 still dropped, the other bands still covered
    with pytest.warns(UserWarning, match="B10"):
        res2 = get_srf("sentinel-2a", wl)
    assert res2.band_names == S2_KEPT and res2.dropped[0][1] < 0.02
    np.testing.assert_allclose(res2.coverage, 1.0, atol=0.005)


@pytest.mark.data
@needs_data
@needs_pyrsr
def test_pyrsr_equals_shipped_table():
    wl = _jasper_wl()
    with pytest.warns(UserWarning, match="B10"):
        named = get_srf("sentinel-2a", wl)
    with pytest.warns(UserWarning, match="band_10"):
        table = load_srf(DATA / "srf" / "rsr_Sentinel-2A_MSI.csv", wl)
    assert table.band_names == tuple("band_" + n[1:] for n in S2_KEPT)
    np.testing.assert_allclose(table.matrix, named.matrix, rtol=0, atol=1e-12)
    np.testing.assert_allclose(table.coverage, named.coverage, atol=1e-12)
    assert table.dropped[0][1] == pytest.approx(named.dropped[0][1], abs=1e-6)
    assert "rsr_Sentinel-2A_MSI.csv" in table.source


@pytest.mark.data
@needs_data
def test_camspec_nikon_d700_on_samson():
    z = np.load(DATA / "srf" / "camspec_28cams_rgb_400-720nm.npz")
    i = [str(c) for c in z["cameras"]].index("Nikon D700")
    res = resample_srf(z["wavelength_nm"], z["srf"][i], SAMSON_WL, band_names=["R", "G", "B"])
    np.testing.assert_allclose(res.coverage, 1.0, atol=0.005)
    peaks = SAMSON_WL[res.matrix.argmax(axis=1)]
    np.testing.assert_allclose(peaks, [593, 530, 458], atol=5)
    last = SAMSON_WL[np.flatnonzero(res.matrix.max(axis=0) > 0)].max()
    assert last == pytest.approx(722, abs=5)


@pytest.mark.data
@needs_data
def test_ikonos_hat_vs_point_and_mhfnet_matrix():
    path = DATA / "srf" / "ikonos_350-1035nm.csv"
    hat = load_srf(path, PAVIA_WL, min_coverage=0.0)
    point = load_srf(path, PAVIA_WL, min_coverage=0.0, method="point")
    assert hat.band_names == ("pan", "blue", "green", "red", "nir")
    for a, b in zip(hat.matrix[1:], point.matrix[1:], strict=True):
        assert np.corrcoef(a, b)[0, 1] > 0.9999
    # protocols.md §5: the MHF-net ROSIS matrix is these bands sampled on the grid
    ref = np.load(DATA / "srf" / "rosis103_to_4band_R_mhfnet.npy")
    for a, b in zip(hat.matrix[1:], ref, strict=True):
        assert np.corrcoef(a, b)[0, 1] > 0.999


# ----------------------------------------------------------------- user files


def _write_table(path: Path, wl: np.ndarray, resp: np.ndarray, names, wl_name="wavelength_nm"):
    lines = ["# a comment", ",".join([wl_name, *names])]
    lines += [",".join(f"{v:.12g}" for v in [w, *col]) for w, col in zip(wl, resp.T, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def test_table_round_trip(tmp_path):
    hsi = np.linspace(400.0, 1000.0, 61)
    twl = np.arange(380.0, 1021.0, 2.0)
    resp = np.stack([np.exp(-0.5 * ((twl - c) / 20.0) ** 2) for c in (500, 650, 850)])
    ref = resample_srf(twl, resp, hsi, band_names=["a", "b", "c"])
    p = tmp_path / "srf.csv"
    _write_table(p, twl, resp, ["a", "b", "c"])
    got = load_srf(p, hsi)
    assert got.band_names == ("a", "b", "c")
    np.testing.assert_allclose(got.matrix, ref.matrix, atol=1e-12)
    np.testing.assert_allclose(got.coverage, ref.coverage, atol=1e-12)
    # the same table in µm, by value (max < 30) and by column name
    p2 = tmp_path / "srf_um.csv"
    _write_table(p2, twl / 1000.0, resp, ["a", "b", "c"], wl_name="lambda")
    um = load_srf(p2, hsi)
    assert "converted from µm" in um.source
    np.testing.assert_allclose(um.matrix, ref.matrix, atol=1e-9)
    # whitespace-separated with a "wl" column
    p3 = tmp_path / "srf.txt"
    p3.write_text("wl a\n" + "\n".join(f"{w} {r}" for w, r in zip(twl, resp[0], strict=True)))
    np.testing.assert_allclose(load_srf(p3, hsi).matrix, ref.matrix[:1], atol=1e-12)


def test_matrix_round_trip_npy_and_csv(tmp_path):
    hsi = np.linspace(400.0, 700.0, 31)
    ref = get_srf("gaussian:3", hsi)
    p = tmp_path / "R.npy"
    np.save(p, ref.matrix * 7.0)  # un-normalised on disk
    got = load_srf(p, hsi)
    np.testing.assert_allclose(got.matrix, ref.matrix, atol=1e-12)
    np.testing.assert_allclose(got.centres, ref.centres, atol=1e-9)
    assert np.all(np.isnan(got.coverage)) and "matrix" in got.source
    q = tmp_path / "R.csv"
    np.savetxt(q, ref.matrix, delimiter=",")
    np.testing.assert_allclose(load_srf(q, hsi).matrix, ref.matrix, atol=1e-12)
    no_wl = load_srf(q)  # a matrix needs no wavelengths
    assert no_wl.matrix.shape == (3, 31) and np.all(np.isnan(no_wl.centres))


def test_srf_from_spec_name_and_file(tmp_path):
    hsi = np.linspace(400.0, 700.0, 31)
    a = srf_from_spec(" Gaussian:3 ", hsi)
    p = tmp_path / "R.npy"
    np.save(p, a.matrix)
    b = srf_from_spec(str(p), hsi)
    np.testing.assert_allclose(a.matrix, b.matrix, atol=1e-12)
    assert srf_from_spec("wv2-like", np.linspace(400, 1050, 131)).n_bands == 8


# ----------------------------------------------------------------- errors


def test_error_matrix_column_count(tmp_path):
    p = tmp_path / "R.npy"
    np.save(p, np.ones((3, 31)))
    with pytest.raises(SRFError) as exc:
        load_srf(p, np.linspace(400, 2400, 198))
    assert _one_line(exc).startswith("SRF has 31 columns but the HSI has 198 bands; ")


def test_error_matrix_transposed(tmp_path):
    p = tmp_path / "R.npy"
    np.save(p, np.ones((31, 3)))
    with pytest.raises(SRFError, match="transpose") as exc:
        load_srf(p, np.linspace(400, 700, 31))
    assert "SRF has 3 columns but the HSI has 31 bands" in _one_line(exc)


def test_error_headerless_table_hint(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("400,1\n410,1\n420,0\n")
    with pytest.raises(SRFError, match="header") as exc:
        load_srf(p, np.linspace(400, 700, 31))
    _one_line(exc)


def test_error_table_needs_wavelengths(tmp_path):
    p = tmp_path / "t.csv"
    _write_table(p, np.arange(400.0, 501.0), np.ones((1, 101)), ["a"])
    with pytest.raises(SRFError) as exc:
        load_srf(p)
    assert "needs the HSI band wavelengths; pass --wavelengths FILE" in _one_line(exc)
    with pytest.raises(SRFError, match="needs the HSI band wavelengths"):
        get_srf("wv2-like", None)


def test_error_no_overlap(tmp_path):
    p = tmp_path / "t.csv"
    _write_table(p, np.arange(1500.0, 1601.0), np.ones((2, 101)), ["a", "b"])
    with pytest.raises(SRFError) as exc:
        load_srf(p, np.linspace(400, 1000, 61))
    assert _one_line(exc).startswith("none of the SRF bands overlaps the HSI range 400–1000 nm; ")


def test_error_all_partial():
    with pytest.raises(SRFError, match="min_coverage") as exc:
        resample_srf([650, 750], [[1.0, 1.0]], np.linspace(400, 700, 31))
    _one_line(exc)


@pytest.mark.parametrize(
    "content, match",
    [
        ("wavelength_nm,a\n400,1\n410,-0.5\n420,1\n", "negative"),
        ("wavelength_nm,a\n400,1\n410,nan\n420,1\n", "NaN"),
        ("wavelength_nm,a\n400,1\n410,\n420,1\n", "NaN"),
        ("wavelength_nm,a\n400,1\n410,1,2\n", "row 2 has 3 values"),
        ("wavelength_nm,a\n400,1\n410,x\n", "non-numeric"),
        ("name,a\n400,1\n", "wavelength column"),
        ("wavelength_nm\n400\n410\n", "no band columns"),
        ("# only comments\n\n", "no data rows"),
        ("wavelength_nm,a\n400,1\n400,1\n", "repeated wavelengths"),
        ("wavelength_nm,a\n400,0\n410,0\n", "zero everywhere"),
    ],
)
def test_error_bad_tables(tmp_path, content, match):
    p = tmp_path / "t.csv"
    p.write_text(content)
    with pytest.raises(SRFError, match=match) as exc:
        load_srf(p, np.linspace(400, 700, 31))
    _one_line(exc)


@pytest.mark.parametrize(
    "matrix, match",
    [
        (np.array([[1.0, -1.0, 0.0]]), "negative"),
        (np.array([[1.0, np.nan, 0.0]]), "NaN"),
        (np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]), "all-zero row"),
        (np.ones((2, 3, 1)), "2-D"),
    ],
)
def test_error_bad_matrices(tmp_path, matrix, match):
    p = tmp_path / "R.npy"
    np.save(p, matrix)
    with pytest.raises(SRFError, match=match) as exc:
        load_srf(p, [400.0, 500.0, 600.0])
    _one_line(exc)


def test_error_files(tmp_path):
    with pytest.raises(SRFError, match="not found") as exc:
        load_srf(tmp_path / "missing.csv")
    _one_line(exc)
    q = tmp_path / "R.mat"
    q.write_text("x")
    with pytest.raises(SRFError, match="use .npy or .csv") as exc:
        load_srf(q)
    _one_line(exc)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(responses=[[1.0, -1.0]]), "negative"),
        (dict(responses=[[1.0, np.nan]]), "NaN"),
        (dict(responses=[[1.0, 1.0, 1.0]]), "one band per row"),
        (dict(method="spline"), "unknown method"),
        (dict(band_names=["a", "b"]), "2 band names for 1 SRF bands"),
        (dict(hsi_wavelengths=np.linspace(0.4, 0.7, 31)), "micrometres"),
        (dict(hsi_wavelengths=[]), "non-empty"),
        (dict(hsi_wavelengths=[400.0, np.nan]), "NaN"),
        (dict(hsi_fwhm=np.ones(3)), "hsi_fwhm has shape"),
        (dict(hsi_fwhm=-1.0), "positive"),
        (dict(min_coverage=1.5), "min_coverage"),
        (dict(hsi_wavelengths=[450.0]), "single HSI band"),
    ],
)
def test_error_resample_arguments(kwargs, match):
    args = dict(
        response_wavelengths=[440.0, 460.0],
        responses=[[1.0, 1.0]],
        hsi_wavelengths=np.linspace(400, 700, 31),
    )
    args.update(kwargs)
    with pytest.raises(SRFError, match=match) as exc:
        resample_srf(
            args.pop("response_wavelengths"),
            args.pop("responses"),
            args.pop("hsi_wavelengths"),
            **args,
        )
    _one_line(exc)


@pytest.mark.parametrize(
    "name, match",
    [
        ("quickbird", "unknown SRF 'quickbird'; use one of: .*sentinel-2a.*gaussian:N"),
        ("gaussian:", "cannot parse"),
        ("gaussian:abc@10", "cannot parse"),
        ("gaussian:500@0", "positive FWHM"),
        ("gaussian:0", "N >= 1"),
    ],
)
def test_error_get_srf_names(name, match):
    with pytest.raises(SRFError, match=match) as exc:
        get_srf(name, np.linspace(400, 700, 31))
    _one_line(exc)


def test_error_srf_from_spec(tmp_path):
    wl = np.linspace(400, 700, 31)
    with pytest.raises(SRFError, match="unknown SRF 'landsat-7'; use one of: .*wv2-like") as exc:
        srf_from_spec("landsat-7", wl)
    assert "file path" in _one_line(exc)
    with pytest.raises(SRFError, match="not found") as exc:
        srf_from_spec(str(tmp_path / "nope.npy"), wl)
    _one_line(exc)
    with pytest.raises(SRFError, match="empty SRF spec"):
        srf_from_spec("  ", wl)
