"""Format-specific behaviour: files written by other tools (MATLAB v7.3, GDAL, h5py, zarr)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from hyperfuse.io import LazyCube, merge_meta, read, write
from hyperfuse.io.envi import parse_header
from hyperfuse.types import RasterMeta

h5py = pytest.importorskip("h5py")
rasterio = pytest.importorskip("rasterio")
from rasterio.transform import Affine  # noqa: E402

no_georef_warning = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


def save_mat73(path, variables: dict) -> None:
    """Write a MATLAB v7.3-style file: 512-byte user block and column-major (transposed) data."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            if isinstance(value, str):
                ds = f.create_dataset(name, data=np.array([[ord(ch)] for ch in value], np.uint16))
                ds.attrs["MATLAB_class"] = np.bytes_("char")
                continue
            arr = np.asarray(value)
            ds = f.create_dataset(name, data=arr.T)
            cls = {"float64": "double", "float32": "single"}.get(arr.dtype.name, arr.dtype.name)
            ds.attrs["MATLAB_class"] = np.bytes_(cls)
    with open(path, "r+b") as fh:
        fh.write(
            b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
        )


# -- MATLAB -------------------------------------------------------------------------------
def test_mat73_reads_hwc_like_matlab(tmp_path):
    cube = np.arange(4 * 5 * 3, dtype=np.float64).reshape(4, 5, 3)
    p = tmp_path / "scene.mat"
    save_mat73(p, {"rad": cube, "wavelengths": np.array([[400.0, 500.0, 600.0]]), "note": "hello"})
    got, meta = read(p)
    np.testing.assert_array_equal(got, cube)
    np.testing.assert_array_equal(meta.wavelengths, [400.0, 500.0, 600.0])
    lazy, _ = read(p, lazy=True)
    with lazy:
        assert isinstance(lazy, LazyCube)
        np.testing.assert_array_equal(lazy[1:3, ::2, -1], cube[1:3, ::2, -1])
    got_chw, _ = read(p, layout="chw")
    np.testing.assert_array_equal(got_chw, cube.transpose(1, 2, 0))
    lazy_chw, _ = read(p, layout="chw", lazy=True)
    with lazy_chw:
        np.testing.assert_array_equal(np.asarray(lazy_chw), cube.transpose(1, 2, 0))


def test_mat73_key_and_ambiguity(tmp_path):
    p = tmp_path / "two.mat"
    save_mat73(p, {"hsi": np.zeros((4, 4, 3)), "msi": np.ones((8, 8, 2), np.float32)})
    with pytest.raises(Exception, match=r"pass --key NAME"):
        read(p)
    got, _ = read(p, key="msi")
    assert got.shape == (8, 8, 2) and got.dtype == np.float32
    with pytest.raises(Exception, match="available: hsi, msi"):
        read(p, key="x")


def test_mat73_corrupt(tmp_path):
    p = tmp_path / "c.mat"
    p.write_bytes(b"\0" * 512 + b"\x89HDF\r\n\x1a\n" + b"garbage" * 20)
    from hyperfuse.errors import FormatError

    with pytest.raises(FormatError, match="v7.3"):
        read(p)


def test_mat_v5_wavelength_and_fwhm_pickup(tmp_path):
    p = tmp_path / "v5.mat"
    cube = np.arange(24, dtype=np.uint16).reshape(2, 4, 3)
    scipy.io.savemat(p, {"Y": cube, "wl": np.array([450.0, 550.0, 650.0]), "FWHM": np.ones((3, 1))})
    got, meta = read(p)
    np.testing.assert_array_equal(got, cube)
    np.testing.assert_array_equal(meta.wavelengths, [450.0, 550.0, 650.0])
    np.testing.assert_array_equal(meta.fwhm, [1.0, 1.0, 1.0])


def test_mat_wavelengths_of_wrong_length_are_ignored(tmp_path):
    p = tmp_path / "v5.mat"
    scipy.io.savemat(p, {"Y": np.zeros((2, 2, 3)), "wavelength": np.arange(5.0)})
    _, meta = read(p)
    assert meta.wavelengths is None


# -- ENVI -----------------------------------------------------------------------------------
def _envi(tmp_path, cube_hwc, interleave, byteorder="<", extra="", offset=0, data_name="s.img"):
    h, w, c = cube_hwc.shape
    order = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave]
    raw = np.ascontiguousarray(cube_hwc.transpose(order)).astype(
        cube_hwc.dtype.newbyteorder(byteorder)
    )
    code = {"int16": 2, "float32": 4, "uint16": 12}[cube_hwc.dtype.name]
    (tmp_path / data_name).write_bytes(b"\0" * offset + raw.tobytes())
    header = (
        f"ENVI\nsamples = {w}\nlines   = {h}\nbands = {c}\nheader offset = {offset}\n"
        f"data type = {code}\ninterleave = {interleave}\nbyte order = {int(byteorder == '>')}\n{extra}"
    )
    return header


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_envi_interleaves_and_byte_orders(tmp_path, interleave, byteorder):
    cube = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5) - 20
    header = _envi(tmp_path, cube, interleave, byteorder, offset=32)
    (tmp_path / "s.hdr").write_text(header)
    got, _ = read(tmp_path / "s.hdr")
    np.testing.assert_array_equal(got, cube)
    assert got.dtype.isnative
    lazy, _ = read(tmp_path / "s.img", lazy=True)
    np.testing.assert_array_equal(lazy[1:, ::-1, 2:4], cube[1:, ::-1, 2:4])


def test_envi_header_fields(tmp_path):
    cube = np.ones((2, 3, 3), np.uint16)
    extra = (
        "wavelength units = Micrometers\n"
        "wavelength = {0.45, 0.55,\n 0.65}\n"
        "fwhm = {0.01, 0.01, 0.01}\n"
        "reflectance scale factor = 10000\n"
        "data ignore value = 0\n"
        "band names = {Blue, Green,\n Red}\n"
        "map info = {UTM, 2.0, 1.0, 500030.0, 4200000.0, 30.0, 30.0, 33, North, WGS-84}\n"
        'coordinate system string = {PROJCS["x"]}\n'
        "; a comment\n"
    )
    (tmp_path / "s.hdr").write_text(_envi(tmp_path, cube, "bsq", extra=extra))
    _, m = read(tmp_path / "s.hdr")
    np.testing.assert_allclose(m.wavelengths, [450.0, 550.0, 650.0])
    np.testing.assert_allclose(m.fwhm, [10.0, 10.0, 10.0])
    assert m.scale == 10000.0 and m.nodata == 0.0
    assert m.band_names == ("Blue", "Green", "Red")
    assert m.transform == pytest.approx((30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0))
    assert m.crs == 'PROJCS["x"]'


def test_envi_rotated_map_info_and_unitless_micrometres(tmp_path):
    extra = "wavelength = {0.4, 0.5}\nmap info = {Arbitrary, 1, 1, 10, 20, 2, 2, units=Meters, rotation=90}\n"
    (tmp_path / "s.hdr").write_text(
        _envi(tmp_path, np.zeros((2, 2, 2), np.float32), "bsq", extra=extra)
    )
    _, m = read(tmp_path / "s.hdr")
    np.testing.assert_allclose(m.wavelengths, [400.0, 500.0])
    np.testing.assert_allclose(m.transform, (0.0, 2.0, 10.0, 2.0, 0.0, 20.0), atol=1e-12)


@pytest.mark.parametrize("data_name", ["s", "s.dat", "s.bsq"])
def test_envi_data_file_lookup(tmp_path, data_name):
    cube = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    (tmp_path / "s.hdr").write_text(_envi(tmp_path, cube, "bsq", data_name=data_name))
    np.testing.assert_array_equal(read(tmp_path / "s.hdr")[0], cube)


def test_envi_written_file_is_readable_by_gdal(tmp_path):
    cube = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    meta = RasterMeta(
        wavelengths=np.array([400.0, 500, 600, 700]),
        crs="EPSG:32633",
        transform=(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0),
        nodata=-1.0,
    )
    write(tmp_path / "w.hdr", cube, meta)
    with rasterio.open(tmp_path / "w.img") as ds:
        np.testing.assert_array_equal(np.moveaxis(ds.read(), 0, -1), cube)
        assert ds.crs.to_epsg() == 32633
        assert tuple(ds.transform)[:6] == pytest.approx(meta.transform)
        assert ds.nodata == -1.0


def test_envi_written_by_gdal_is_readable(tmp_path):
    data = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5)
    profile = dict(
        driver="ENVI",
        height=4,
        width=5,
        count=3,
        dtype="int16",
        crs="EPSG:32633",
        transform=Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4e6),
        nodata=-9999,
        interleave="bil",
    )
    with rasterio.open(tmp_path / "g.bil", "w", **profile) as ds:
        ds.write(data)
    got, m = read(tmp_path / "g.hdr")
    np.testing.assert_array_equal(got, np.moveaxis(data, 0, -1))
    assert m.nodata == -9999.0
    assert m.transform == pytest.approx((30.0, 0.0, 500000.0, 0.0, -30.0, 4e6))
    assert "UTM" in m.crs


def test_parse_header_requires_envi_magic():
    from hyperfuse.errors import FormatError

    with pytest.raises(FormatError, match="not an ENVI header"):
        parse_header("samples = 3\n")


# -- GeoTIFF --------------------------------------------------------------------------------
@no_georef_warning
def test_geotiff_tags_written_for_other_tools(tmp_path):
    cube = np.zeros((2, 2, 3), np.uint16)
    meta = RasterMeta(wavelengths=np.array([450.0, 550.0, 650.0]), scale=10000.0)
    write(tmp_path / "t.tif", cube, meta)
    with rasterio.open(tmp_path / "t.tif") as ds:
        assert json.loads(ds.tags()["wavelengths"]) == [450.0, 550.0, 650.0]
        assert [float(ds.tags(b)["wavelength"]) for b in (1, 2, 3)] == [450.0, 550.0, 650.0]
        assert ds.scales == pytest.approx((1e-4,) * 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.tif"]


@no_georef_warning
def test_geotiff_foreign_per_band_tags_and_gdal_scale(tmp_path):
    p = tmp_path / "f.tif"
    profile = dict(driver="GTiff", height=2, width=2, count=2, dtype="int16")
    with rasterio.open(p, "w", **profile) as ds:
        ds.write(np.ones((2, 2, 2), np.int16))
        ds.update_tags(1, wavelength="500")
        ds.update_tags(2, wavelength="600")
        ds.scales = (0.0001, 0.0001)
    cube, m = read(p)
    assert cube.shape == (2, 2, 2)
    np.testing.assert_array_equal(m.wavelengths, [500.0, 600.0])
    assert m.scale == pytest.approx(10000.0)
    assert m.crs is None and m.transform is None


def test_geotiff_wkt_crs_without_epsg(tmp_path):
    wkt = (
        'PROJCS["custom",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
        'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
        'PARAMETER["latitude_of_origin",1],PARAMETER["central_meridian",7],PARAMETER["scale_factor",1],'
        'PARAMETER["false_easting",0],PARAMETER["false_northing",0],UNIT["metre",1]]'
    )
    write(
        tmp_path / "w.tif",
        np.zeros((2, 2, 1), np.float32),
        RasterMeta(crs=wkt, transform=(1, 0, 0, 0, -1, 0)),
    )
    _, m = read(tmp_path / "w.tif")
    assert "custom" in m.crs


def test_geotiff_large_enough_for_tiles(tmp_path):
    cube = np.random.default_rng(0).integers(0, 255, (260, 270, 2), dtype=np.uint8)
    write(tmp_path / "big.tif", cube)
    lazy, _ = read(tmp_path / "big.tif", lazy=True)
    with lazy:
        np.testing.assert_array_equal(lazy[250:260, 3:263:7, 1], cube[250:260, 3:263:7, 1])


# -- HDF5 / zarr ----------------------------------------------------------------------------
def test_hdf5_foreign_file_nested_key_and_attrs(tmp_path):
    p = tmp_path / "f.h5"
    with h5py.File(p, "w") as f:
        ds = f.create_dataset("data/radiance", data=np.ones((3, 4, 2), np.float32))
        ds.attrs["wavelength"] = [500.0, 600.0]
        ds.attrs["units"] = "W/m2/sr/um"
        ds.attrs["band_names"] = np.array([b"a", b"b"])
    cube, m = read(p)  # the only candidate
    assert cube.shape == (3, 4, 2)
    np.testing.assert_array_equal(m.wavelengths, [500.0, 600.0])
    assert m.extra == {"units": "W/m2/sr/um"} and m.band_names == ("a", "b")
    assert read(p, key="/data/radiance")[0].shape == (3, 4, 2)


def test_hdf5_stored_layout_attribute(tmp_path):
    p = tmp_path / "chw.h5"
    chw = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    with h5py.File(p, "w") as f:
        f["cube"] = chw
        f["cube"].attrs["layout"] = "chw"
    np.testing.assert_array_equal(read(p)[0], chw.transpose(1, 2, 0))


def test_hdf5_large_cube_is_chunked(tmp_path):
    cube = np.zeros((128, 128, 20), np.float32)
    write(tmp_path / "big.h5", cube)
    with h5py.File(tmp_path / "big.h5") as f:
        assert f["cube"].chunks is not None


def test_zarr_bare_array(tmp_path):
    zarr = pytest.importorskip("zarr")
    p = tmp_path / "bare.zarr"
    z = zarr.create_array(str(p), shape=(3, 2, 2), dtype="uint16", chunks=(3, 2, 2))
    z[...] = np.arange(12, dtype=np.uint16).reshape(3, 2, 2)
    z.attrs["wavelengths"] = [1.0, 2.0]
    cube, m = read(p)
    np.testing.assert_array_equal(cube, np.arange(12).reshape(3, 2, 2))
    np.testing.assert_array_equal(m.wavelengths, [1.0, 2.0])
    from hyperfuse.errors import FormatError

    with pytest.raises(FormatError, match="single array"):
        read(p, key="other")


def test_npy_sidecar_contents(tmp_path):
    write(
        tmp_path / "a.npy",
        np.zeros((2, 2, 2)),
        RasterMeta(wavelengths=np.array([1.0, 2.0]), crs="EPSG:4326"),
    )
    d = json.loads((tmp_path / "a.npy.json").read_text())
    assert d == {"wavelengths": [1.0, 2.0], "crs": "EPSG:4326"}


# -- merge_meta -----------------------------------------------------------------------------
def test_merge_meta_takes_spectral_from_hsi_spatial_from_msi():
    hsi = RasterMeta(
        wavelengths=np.array([1.0, 2.0]),
        fwhm=np.array([0.1, 0.1]),
        crs="EPSG:4326",
        transform=(60.0, 0, 0, 0, -60.0, 0),
        scale=1e4,
        nodata=0.0,
        band_names=("a", "b"),
    )
    msi = RasterMeta(
        wavelengths=np.array([9.0]), crs="EPSG:32633", transform=(10.0, 0, 0, 0, -10.0, 0)
    )
    m = merge_meta(hsi, msi)
    np.testing.assert_array_equal(m.wavelengths, [1.0, 2.0])
    np.testing.assert_array_equal(m.fwhm, [0.1, 0.1])
    assert m.band_names == ("a", "b")
    assert m.crs == "EPSG:32633" and m.transform[0] == 10.0
    assert m.scale is None and m.nodata is None
    assert merge_meta(None, None) == RasterMeta()
