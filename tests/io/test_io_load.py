"""load_cube: validation, missing-value filling and scaling rules; load_wavelengths."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperfuse.errors import FormatError, ShapeError, ValueRangeError
from hyperfuse.io import folder_scale, load_cube, load_wavelengths, write
from hyperfuse.types import RasterMeta

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def save(tmp_path, array, name="c.npy", meta=None):
    p = tmp_path / name
    if np.asarray(array).ndim == 3:
        write(p, array, meta)
    else:
        np.save(p, array)
    return p


# -- shape / emptiness ----------------------------------------------------------------------
def test_empty_cube(tmp_path):
    p = save(tmp_path, np.zeros((0, 4, 3), np.float32))
    with pytest.raises(ValueRangeError, match="is empty") as exc:
        load_cube(p)
    assert "\n" not in str(exc.value)


def test_two_d_input(tmp_path):
    p = save(tmp_path, np.zeros((4, 5), np.float32))
    with pytest.raises(ShapeError, match=r"is 2-D .*pass a cube \(rows, cols, bands\)") as exc:
        load_cube(p, name="hsi")
    assert str(exc.value).startswith("hsi (")


def test_four_d_input(tmp_path):
    p = save(tmp_path, np.zeros((2, 2, 2, 2), np.float32))
    with pytest.raises(ShapeError, match="pass a cube"):
        load_cube(p)


def test_complex_input(tmp_path):
    p = save(tmp_path, np.zeros((2, 2, 2), np.complex64))
    with pytest.raises(ValueRangeError, match="complex"):
        load_cube(p)


# -- scaling ---------------------------------------------------------------------------------
def test_float_used_as_is(tmp_path):
    cube = np.random.default_rng(0).random((3, 4, 2)).astype(np.float64)
    out, meta = load_cube(save(tmp_path, cube))
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, cube.astype(np.float32))
    assert meta.extra["applied_scale"] is None


def test_float_ignores_file_scale_but_honours_argument(tmp_path):
    cube = np.full((2, 2, 2), 50.0, np.float32)
    p = save(tmp_path, cube, meta=RasterMeta(scale=100.0))
    np.testing.assert_array_equal(load_cube(p)[0], cube)
    np.testing.assert_allclose(load_cube(p, scale=100)[0], 0.5)
    np.testing.assert_allclose(load_cube(p, scale="max")[0], 1.0)


def test_integer_without_scale_is_an_error(tmp_path):
    p = save(tmp_path, np.full((2, 2, 2), 7, np.uint16))
    with pytest.raises(ValueRangeError, match=r"unscaled integers.*--scale N.*--scale max") as exc:
        load_cube(p)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("scale", [1000, 1000.0, "1000"])
def test_integer_with_numeric_scale(tmp_path, scale):
    cube = np.arange(8, dtype=np.int16).reshape(2, 2, 2) * 100
    out, meta = load_cube(save(tmp_path, cube), scale=scale)
    np.testing.assert_array_equal(out, (cube / 1000.0).astype(np.float32))
    assert meta.scale is None and meta.extra["applied_scale"] == 1000.0


@pytest.mark.parametrize("scale", ["max", "MAX"])
def test_integer_with_max_scale(tmp_path, scale):
    cube = np.array([1, 2, 4, 8], np.uint8).reshape(1, 2, 2)
    out, meta = load_cube(save(tmp_path, cube), scale=scale)
    np.testing.assert_array_equal(out, cube / 8.0)
    assert meta.extra["applied_scale"] == 8.0


def test_max_scale_of_all_zero_cube_is_an_error(tmp_path):
    with pytest.raises(ValueRangeError, match="maximum"):
        load_cube(save(tmp_path, np.zeros((2, 2, 2), np.uint8)), scale="max")


@pytest.mark.parametrize("scale", [0, -3, float("nan"), float("inf"), "abc"])
def test_bad_scale_argument(tmp_path, scale):
    p = save(tmp_path, np.ones((2, 2, 2), np.uint8))
    with pytest.raises(ValueRangeError, match="positive number or 'max'"):
        load_cube(p, scale=scale)


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".hdr", ".h5", ".zarr", ".mat"])
def test_integer_uses_scale_carried_by_file(tmp_path, suffix):
    cube = np.full((2, 3, 2), 5000, np.uint16)
    p = tmp_path / f"s{suffix}"
    write(p, cube, RasterMeta(scale=10000.0))
    out, meta = load_cube(p)
    np.testing.assert_allclose(out, 0.5)
    assert meta.extra["applied_scale"] == 10000.0
    np.testing.assert_allclose(load_cube(p, scale=5000)[0], 1.0)  # argument wins


def test_integer_uses_scale_json_in_folder(tmp_path):
    (tmp_path / "scale.json").write_text(
        json.dumps({"value = counts / scale_den": True, "scale_den": 1402})
    )
    cube = np.array([0, 701, 1402], np.uint16).reshape(1, 1, 3)
    out, meta = load_cube(save(tmp_path, cube))
    np.testing.assert_array_equal(out, np.array([0, 0.5, 1.0], np.float32).reshape(1, 1, 3))
    assert meta.extra["applied_scale"] == 1402.0
    assert folder_scale(tmp_path / "c.npy") == 1402.0


@pytest.mark.parametrize("text", ["{bad", '{"scale_den": -1}', '{"other": 3}', "[1]"])
def test_bad_scale_json(tmp_path, text):
    (tmp_path / "scale.json").write_text(text)
    with pytest.raises(FormatError, match="scale_den"):
        load_cube(save(tmp_path, np.ones((2, 2, 2), np.uint16)))


def test_scaling_matches_float64_division(tmp_path):
    cube = np.arange(0, 1403, dtype=np.uint16).reshape(1, 1403, 1)
    out, _ = load_cube(save(tmp_path, cube), scale=1402)
    np.testing.assert_array_equal(out, (cube.astype(np.float64) / 1402).astype(np.float32))


HYP = settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@HYP
@given(
    shape=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 4)),
    dtype=st.sampled_from(["uint8", "uint16", "int32", "float32", "float64"]),
    scale=st.one_of(st.floats(0.5, 1e5), st.just("max")),
    seed=st.integers(0, 2**31),
)
def test_load_cube_property(tmp_path, shape, dtype, scale, seed):
    rng = np.random.default_rng(seed)
    cube = (rng.random(shape) * 200 + 1).astype(dtype)
    out, _ = load_cube(save(tmp_path, cube, name="p.npy"), scale=scale)
    den = float(cube.max()) if scale == "max" else float(scale)
    assert out.shape == shape and out.dtype == np.float32
    np.testing.assert_allclose(out, cube.astype(np.float64) / den, rtol=1e-6)


# -- missing values --------------------------------------------------------------------------
def test_nan_without_nodata_is_an_error(tmp_path):
    cube = np.ones((3, 3, 2), np.float32)
    cube[0, 0, 0] = np.nan
    cube[1, 1, 1] = np.inf
    with pytest.raises(ValueRangeError, match="contains 2 NaN/Inf values; pass --nodata VALUE"):
        load_cube(save(tmp_path, cube))


def test_nan_filled_from_nearest_neighbour_with_nodata(tmp_path):
    cube = np.arange(5 * 5 * 2, dtype=np.float32).reshape(5, 5, 2)
    expect = cube.copy()
    cube[0, 0, 0] = np.nan  # nearest valid neighbours (0,1),(1,0); EDT picks one of them
    cube[2, 2, 1] = -9999.0  # nodata value
    cube[4, 4, :] = np.inf
    with pytest.warns(UserWarning, match=r"filled 4 missing values"):
        out, meta = load_cube(save(tmp_path, cube), nodata=-9999)
    assert np.isfinite(out).all()
    assert out[0, 0, 0] in (expect[0, 1, 0], expect[1, 0, 0])
    assert out[2, 2, 1] in {expect[y, x, 1] for y, x in [(1, 2), (3, 2), (2, 1), (2, 3)]}
    assert out[4, 4, 0] in (expect[3, 4, 0], expect[4, 3, 0])
    mask = np.ones(cube.shape, bool)
    mask[0, 0, 0] = mask[2, 2, 1] = mask[4, 4, 0] = mask[4, 4, 1] = False
    np.testing.assert_array_equal(out[mask], expect[mask])
    assert meta.nodata is None and meta.extra["filled_values"] == 4


def test_file_nodata_is_used_for_integers_before_scaling(tmp_path):
    cube = np.full((3, 3, 1), 100, np.uint16)
    cube[1, 1, 0] = 0
    p = tmp_path / "n.tif"
    write(p, cube, RasterMeta(nodata=0.0, scale=200.0))
    with pytest.warns(UserWarning, match="filled 1 missing"):
        out, _ = load_cube(p)
    np.testing.assert_allclose(out, 0.5)


def test_shared_mask_across_bands(tmp_path):
    cube = np.ones((4, 4, 3), np.float32)
    cube[1:3, 1:3, :] = np.nan
    with pytest.warns(UserWarning, match="filled 12"):
        out, _ = load_cube(save(tmp_path, cube), nodata=float("nan"))
    np.testing.assert_array_equal(out, 1.0)


def test_band_entirely_missing_is_an_error(tmp_path):
    cube = np.ones((2, 2, 2), np.float32)
    cube[..., 1] = -1
    with pytest.raises(ValueRangeError, match="band 1 has no valid pixel"):
        load_cube(save(tmp_path, cube), nodata=-1)


def test_nodata_without_missing_pixels_is_silent(tmp_path):
    out, meta = load_cube(save(tmp_path, np.ones((2, 2, 2), np.float32)), nodata=-1)
    assert meta.extra.get("filled_values") is None


def test_max_scale_after_fill_ignores_nodata(tmp_path):
    cube = np.array([10, 20, 65535, 40], np.uint16).reshape(2, 2, 1)
    with pytest.warns(UserWarning, match="filled 1"):
        out, meta = load_cube(save(tmp_path, cube), nodata=65535, scale="max")
    assert meta.extra["applied_scale"] == 40.0
    assert out.max() == 1.0


# -- negative values ------------------------------------------------------------------------
def test_negative_values_warn_and_are_kept(tmp_path):
    cube = np.array([-0.5, 0.5], np.float32).reshape(1, 1, 2)
    with pytest.warns(UserWarning, match="1 negative values; they are kept"):
        out, _ = load_cube(save(tmp_path, cube))
    np.testing.assert_array_equal(out, cube)


def test_clean_cube_emits_no_warning(tmp_path):
    p = save(tmp_path, np.ones((2, 2, 2), np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_cube(p)


# -- real data ---------------------------------------------------------------------------------
@pytest.mark.data
def test_real_samson_uses_its_scale_json():
    path = DATA / "samson" / "samson_95x95x156_counts_uint16.npy"
    if not path.is_file():
        pytest.skip(f"shared data not available at {DATA}")
    cube, meta = load_cube(path, name="samson")
    assert cube.shape == (95, 95, 156) and cube.dtype == np.float32
    assert meta.extra["applied_scale"] == 1402.0
    assert 0.0 <= float(cube.min()) and float(cube.max()) <= 1.0
    raw = np.load(path)
    np.testing.assert_array_equal(cube, (raw / 1402.0).astype(np.float32))
    wl = load_wavelengths(DATA / "samson" / "wavelengths_nm_APPROX.npy")
    assert wl.shape == (156,) and wl[0] == pytest.approx(401, abs=1)


# -- load_wavelengths --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("wl.txt", "400\n500\n600\n"),
        ("wl.txt", "# nm\n400 500 600\n"),
        ("wl.csv", "wavelength_nm\n400\n500\n600\n"),
        ("wl.csv", "400,500,600\n"),
        ("wl.csv", "400;500;600"),
    ],
)
def test_load_wavelengths_text(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    np.testing.assert_array_equal(load_wavelengths(tmp_path / name), [400.0, 500.0, 600.0])


@pytest.mark.parametrize("shape", [(3,), (1, 3), (3, 1)])
def test_load_wavelengths_npy(tmp_path, shape):
    np.save(tmp_path / "wl.npy", np.array([400, 500, 600], np.float32).reshape(shape))
    out = load_wavelengths(tmp_path / "wl.npy")
    assert out.dtype == np.float64 and out.tolist() == [400.0, 500.0, 600.0]


def test_load_wavelengths_micrometres_are_converted(tmp_path):
    (tmp_path / "wl.txt").write_text("0.4\n0.5\n")
    with pytest.warns(UserWarning, match="micrometres"):
        np.testing.assert_allclose(load_wavelengths(tmp_path / "wl.txt"), [400.0, 500.0])


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("wl.txt", "400\nabc\n", "line 2 is not numeric"),
        ("wl.txt", "400 500\n600\n", "different lengths"),
        ("wl.csv", "400,500\n600,700\n", "1-D list"),
        ("wl.txt", "", "no wavelengths"),
        ("wl.txt", "400\n-5\n", "finite and positive"),
        ("wl.json", "[1]", "unknown wavelengths format"),
    ],
)
def test_load_wavelengths_errors(tmp_path, name, content, match):
    (tmp_path / name).write_text(content)
    with pytest.raises(FormatError, match=match) as exc:
        load_wavelengths(tmp_path / name)
    assert "\n" not in str(exc.value)


def test_load_wavelengths_missing_and_corrupt(tmp_path):
    with pytest.raises(FormatError, match="not found"):
        load_wavelengths(tmp_path / "nope.npy")
    (tmp_path / "bad.npy").write_bytes(b"junk")
    with pytest.raises(FormatError, match="not a readable"):
        load_wavelengths(tmp_path / "bad.npy")
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(FormatError, match="numeric"):
        load_wavelengths(tmp_path / "s.npy")


def test_nodata_variants(tmp_path):
    cube = np.full((2, 2, 1), 3, np.int16)
    cube[0, 0, 0] = 7
    p = save(tmp_path, cube)
    out, _ = load_cube(p, nodata=2.5, scale=1)  # fractional nodata never matches integers
    assert out[0, 0, 0] == 7
    out, _ = load_cube(p, nodata=float("inf"), scale=1)
    assert out[0, 0, 0] == 7
    with pytest.warns(UserWarning, match="filled 1"):
        out, _ = load_cube(p, nodata="7", scale=1)  # type: ignore[arg-type]
    assert out[0, 0, 0] == 3
    with pytest.raises(ValueRangeError, match="nodata must be a number"):
        load_cube(p, nodata="abc", scale=1)  # type: ignore[arg-type]
