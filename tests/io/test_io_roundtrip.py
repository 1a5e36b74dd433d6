"""Round trips through every format: values, dtypes, layouts, metadata and lazy reads."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperfuse.io import LazyCube, read, write
from hyperfuse.types import RasterMeta

SUFFIXES = [".npy", ".mat", ".tif", ".hdr", ".h5", ".zarr"]
DTYPES = [
    "bool",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float16",
    "float32",
    "float64",
]
# dtype substitutions of formats that cannot hold a dtype (documented in each module)
STORED = {
    ".mat": {"bool": "uint8", "float16": "float32"},
    ".tif": {"bool": "uint8", "float16": "float32", "int8": "int16"},
    ".hdr": {"bool": "uint8", "float16": "float32", "int8": "int16"},
}

HYP = settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def random_cube(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
    return (rng.standard_normal(shape) * 100).astype(dt)


def full_meta(c: int) -> RasterMeta:
    return RasterMeta(
        wavelengths=np.linspace(400.0, 1000.0, c),
        fwhm=np.full(c, 10.5),
        crs="EPSG:32633",
        transform=(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0),
        scale=10000.0,
        nodata=-9999.0,
        band_names=tuple(f"b{i}" for i in range(c)),
    )


@pytest.mark.parametrize("suffix", SUFFIXES)
@HYP
@given(
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    c=st.integers(1, 5),
    dtype=st.sampled_from(DTYPES),
    layout=st.sampled_from(["hwc", "chw"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_roundtrip_values_and_dtype(tmp_path, suffix, h, w, c, dtype, layout, seed):
    hwc = random_cube((h, w, c), dtype, seed)
    given_array = hwc if layout == "hwc" else np.ascontiguousarray(hwc.transpose(2, 0, 1))
    out = write(tmp_path / f"cube{suffix}", given_array, layout=layout)
    got, meta = read(tmp_path / f"cube{suffix}")
    assert isinstance(meta, RasterMeta)
    assert got.shape == (h, w, c)
    assert got.dtype == np.dtype(STORED.get(suffix, {}).get(dtype, dtype))
    np.testing.assert_array_equal(got, hwc.astype(got.dtype))
    assert out.exists()


@pytest.mark.parametrize("suffix", [".npy", ".mat", ".h5", ".zarr"])
@HYP
@given(
    h=st.integers(1, 5),
    w=st.integers(1, 5),
    c=st.integers(1, 4),
    dtype=st.sampled_from(["uint16", "float32", "int32"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_chw_on_disk_read_with_layout(tmp_path, suffix, h, w, c, dtype, seed):
    """A file holding (C, H, W) data (written by someone else) reads as HWC with layout='chw'."""
    hwc = random_cube((h, w, c), dtype, seed)
    chw = np.ascontiguousarray(hwc.transpose(2, 0, 1))
    path = tmp_path / f"chw{suffix}"
    write(path, chw)  # stored as-is: the array is declared hwc
    got, _ = read(path, layout="chw")
    np.testing.assert_array_equal(got, hwc)
    lazy, _ = read(path, layout="chw", lazy=True)
    np.testing.assert_array_equal(np.asarray(lazy), hwc)
    np.testing.assert_array_equal(lazy[..., -1], hwc[..., -1])
    if isinstance(lazy, LazyCube):
        lazy.close()


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_metadata_roundtrip(tmp_path, suffix):
    c = 4
    cube = np.arange(3 * 5 * c, dtype=np.int16).reshape(3, 5, c)
    meta = full_meta(c)
    write(tmp_path / f"m{suffix}", cube, meta)
    got, m = read(tmp_path / f"m{suffix}")
    np.testing.assert_array_equal(got, cube)
    np.testing.assert_allclose(m.wavelengths, meta.wavelengths)
    np.testing.assert_allclose(m.fwhm, meta.fwhm)
    assert m.transform == pytest.approx(meta.transform)
    assert m.scale == meta.scale
    assert m.nodata == meta.nodata
    assert m.band_names == meta.band_names
    assert m.crs == "EPSG:32633"


@pytest.mark.parametrize("suffix", [".npy", ".mat", ".tif", ".h5", ".zarr"])
def test_extra_metadata_roundtrip(tmp_path, suffix):
    meta = RasterMeta(extra={"sensor": "AVIRIS", "year": 1995, "nested": {"a": [1, 2]}})
    write(tmp_path / f"e{suffix}", np.zeros((2, 2, 2), np.float32), meta)
    _, m = read(tmp_path / f"e{suffix}")
    assert m.extra == meta.extra


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_no_metadata_reads_empty_meta(tmp_path, suffix):
    write(tmp_path / f"n{suffix}", np.ones((2, 3, 2), np.float32))
    _, m = read(tmp_path / f"n{suffix}")
    assert m.wavelengths is None and m.crs is None and m.transform is None
    assert m.scale is None and m.nodata is None


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_nan_nodata_roundtrip(tmp_path, suffix):
    cube = np.ones((2, 3, 2), np.float32)
    cube[0, 0, 0] = np.nan
    write(tmp_path / f"nan{suffix}", cube, RasterMeta(nodata=float("nan")))
    got, m = read(tmp_path / f"nan{suffix}")
    np.testing.assert_array_equal(got, cube)
    assert m.nodata is not None and np.isnan(m.nodata)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_lazy_read_slices_correctly(tmp_path, suffix):
    cube = np.arange(7 * 9 * 5, dtype=np.float32).reshape(7, 9, 5)
    write(tmp_path / f"lz{suffix}", cube, RasterMeta(wavelengths=np.arange(5.0) + 400))
    lazy, meta = read(tmp_path / f"lz{suffix}", lazy=True)
    try:
        assert lazy.shape == cube.shape
        assert lazy.dtype == cube.dtype
        assert meta.wavelengths is not None
        keys = [
            (slice(1, 5), slice(2, 8, 2), slice(None)),
            (slice(None, None, -1), 3, slice(1, 4)),
            (-1, -2, -3),
            (Ellipsis, 0),
            (slice(2, 2), slice(None), 0),
            (slice(6, 0, -3), Ellipsis),
            2,
        ]
        for k in keys:
            np.testing.assert_array_equal(np.asarray(lazy[k]), cube[k], err_msg=str(k))
        np.testing.assert_array_equal(np.asarray(lazy), cube)
    finally:
        if isinstance(lazy, LazyCube):
            lazy.close()


def test_lazy_npy_is_memmap(tmp_path):
    write(tmp_path / "a.npy", np.zeros((4, 4, 3), np.uint16))
    lazy, _ = read(tmp_path / "a.npy", lazy=True)
    assert isinstance(lazy, np.memmap)


def test_lazy_envi_is_memmap_view(tmp_path):
    write(tmp_path / "a.hdr", np.zeros((4, 4, 3), np.uint16))
    lazy, _ = read(tmp_path / "a.hdr", lazy=True)
    assert isinstance(lazy, np.memmap)


def test_lazy_cube_advanced_index_and_context(tmp_path):
    cube = np.arange(4 * 3 * 2, dtype=np.int32).reshape(4, 3, 2)
    write(tmp_path / "a.h5", cube)
    lazy, _ = read(tmp_path / "a.h5", lazy=True)
    with lazy:
        np.testing.assert_array_equal(lazy[[0, 2], :, 1], cube[[0, 2], :, 1])
        np.testing.assert_array_equal(lazy[None, 1], cube[None, 1])
        assert len(lazy) == 4 and lazy.ndim == 3 and lazy.size == cube.size
        assert "LazyCube" in repr(lazy)
        with pytest.raises(IndexError):
            lazy[4]
        with pytest.raises(IndexError):
            lazy[0, 0, 0, 0]
        with pytest.raises(IndexError):
            lazy[..., ...]
    lazy.close()  # idempotent


def test_write_accepts_tensor_and_lazy(tmp_path):
    import torch

    t = torch.arange(12, dtype=torch.float32).reshape(2, 3, 2).requires_grad_()
    write(tmp_path / "t.npy", t)
    got, _ = read(tmp_path / "t.npy")
    np.testing.assert_array_equal(got, t.detach().numpy())
    write(tmp_path / "t.h5", got)
    lazy, _ = read(tmp_path / "t.h5", lazy=True)
    with lazy:
        write(tmp_path / "t2.zarr", lazy)
    np.testing.assert_array_equal(read(tmp_path / "t2.zarr")[0], got)


def test_write_img_suffix_gives_hdr_pair(tmp_path):
    out = write(tmp_path / "scene.img", np.zeros((2, 2, 2), np.float32))
    assert out == tmp_path / "scene.hdr"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.hdr", "scene.img"]
    assert read(tmp_path / "scene.img")[0].shape == (2, 2, 2)


def test_overwrite_npy_drops_stale_sidecar(tmp_path):
    p = tmp_path / "a.npy"
    write(p, np.zeros((2, 2, 2)), RasterMeta(scale=10.0))
    assert (tmp_path / "a.npy.json").exists()
    write(p, np.zeros((2, 2, 2)))
    assert not (tmp_path / "a.npy.json").exists()
    assert read(p)[1].scale is None


def test_overwrite_zarr_replaces_store(tmp_path):
    p = tmp_path / "a.zarr"
    write(p, np.zeros((2, 2, 2), np.float32))
    write(p, np.ones((3, 3, 1), np.float32), key="other")
    got, _ = read(p)
    assert got.shape == (3, 3, 1)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.zarr"]


def test_read_and_write_accept_str_paths_and_uppercase_suffix(tmp_path):
    p = str(tmp_path / "A.TIF")
    write(p, np.zeros((2, 2, 1), np.uint8))
    assert read(p)[0].shape == (2, 2, 1)
