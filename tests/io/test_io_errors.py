"""Every bad input to read/write gives a typed, one-line error naming the problem and the fix."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from hyperfuse.errors import FormatError, InputError, ShapeError
from hyperfuse.io import format_of, read, write
from hyperfuse.types import RasterMeta

SUFFIXES = [".npy", ".mat", ".tif", ".hdr", ".h5", ".zarr"]


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    assert ";" in msg, f"message should name the fix after ';': {msg}"
    return msg


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_missing_file(tmp_path, suffix):
    p = tmp_path / f"nope{suffix}"
    with pytest.raises(FormatError) as exc:
        read(p)
    msg = one_line(exc)
    assert str(p) in msg and "not found" in msg
    assert isinstance(exc.value, InputError)


def test_unknown_suffix(tmp_path):
    p = tmp_path / "scene.xyz"
    p.write_bytes(b"x")
    with pytest.raises(FormatError) as exc:
        read(p)
    msg = one_line(exc)
    assert "unknown file format '.xyz'" in msg and ".npy" in msg and ".zarr" in msg
    with pytest.raises(FormatError, match="unknown file format"):
        write(tmp_path / "out.xyz", np.zeros((2, 2, 2)))
    with pytest.raises(FormatError, match=r"\(no suffix\)"):
        format_of("scene")


def test_directory_instead_of_file(tmp_path):
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(FormatError, match="is a directory"):
        read(tmp_path / "d.npy")


@pytest.mark.parametrize("suffix", [".npy", ".mat", ".tif", ".h5", ".img"])
def test_corrupt_file(tmp_path, suffix):
    p = tmp_path / f"bad{suffix}"
    p.write_bytes(b"this is not a raster file at all" * 8)
    if suffix == ".img":
        (tmp_path / "bad.hdr").write_text("not an envi header\n")
    with pytest.raises(FormatError) as exc:
        read(p)
    assert str(tmp_path) in one_line(exc)


def test_corrupt_zarr(tmp_path):
    p = tmp_path / "bad.zarr"
    p.mkdir()
    (p / "zarr.json").write_text("garbage")
    with pytest.raises(FormatError) as exc:
        read(p)
    one_line(exc)


def test_truncated_npy(tmp_path):
    p = tmp_path / "t.npy"
    np.save(p, np.zeros((10, 10, 3)))
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(FormatError) as exc:
        read(p)
    one_line(exc)


def test_pickled_npy_is_rejected(tmp_path):
    p = tmp_path / "o.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FormatError):
        read(p)


def test_bad_sidecar(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.zeros((2, 2, 2)))
    (tmp_path / "a.npy.json").write_text("{not json")
    with pytest.raises(FormatError, match="sidecar"):
        read(p)
    (tmp_path / "a.npy.json").write_text("[1, 2]")
    with pytest.raises(FormatError, match="JSON object"):
        read(p)


def test_truncated_envi_binary(tmp_path):
    write(tmp_path / "e.hdr", np.zeros((4, 4, 3), np.float32))
    data = tmp_path / "e.img"
    data.write_bytes(data.read_bytes()[:-10])
    with pytest.raises(FormatError, match="truncated") as exc:
        read(tmp_path / "e.hdr")
    one_line(exc)


def test_envi_missing_binary_and_header(tmp_path):
    write(tmp_path / "e.hdr", np.zeros((2, 2, 1), np.float32))
    (tmp_path / "e.img").unlink()
    with pytest.raises(FormatError, match="data file not found"):
        read(tmp_path / "e.hdr")
    (tmp_path / "f.img").write_bytes(b"\0" * 16)
    with pytest.raises(FormatError, match="header not found"):
        read(tmp_path / "f.img")


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ("ENVI\nsamples = 2\nlines = 2\ndata type = 4\n", "'bands'"),
        ("ENVI\nsamples = 2\nlines = 2\nbands = 1\ndata type = 99\n", "data type 99"),
        (
            "ENVI\nsamples = 2\nlines = 2\nbands = 1\ndata type = 4\ninterleave = xyz\n",
            "interleave",
        ),
        ("ENVI\nsamples = two\nlines = 2\nbands = 1\ndata type = 4\n", "not an integer"),
        (
            "ENVI\nsamples = 2\nlines = 2\nbands = 1\ndata type = 4\nwavelength = {1, x}\n",
            "numbers",
        ),
        (
            "ENVI\nsamples = 2\nlines = 2\nbands = 1\ndata type = 4\nwavelength = {1, 2\n",
            "unterminated",
        ),
    ],
)
def test_bad_envi_headers(tmp_path, header, match):
    (tmp_path / "h.hdr").write_text(header)
    (tmp_path / "h.img").write_bytes(b"\0" * 64)
    with pytest.raises(FormatError, match=match) as exc:
        read(tmp_path / "h.hdr")
    one_line(exc)


@pytest.mark.parametrize("suffix", [".mat", ".h5", ".zarr"])
def test_wrong_key_lists_available(tmp_path, suffix):
    p = tmp_path / f"k{suffix}"
    write(p, np.zeros((3, 3, 2), np.float32), key="radiance")
    with pytest.raises(FormatError) as exc:
        read(p, key="rad")
    msg = one_line(exc)
    assert "'rad'" in msg and "radiance" in msg and "--key" in msg


def test_ambiguous_mat_without_key(tmp_path):
    p = tmp_path / "two.mat"
    scipy.io.savemat(
        p, {"hsi": np.zeros((4, 4, 3)), "msi": np.zeros((8, 8, 2)), "wl": np.arange(3.0)}
    )
    with pytest.raises(FormatError) as exc:
        read(p)
    msg = one_line(exc)
    assert "hsi" in msg and "msi" in msg and "pass --key NAME" in msg
    cube, meta = read(p, key="hsi")
    assert cube.shape == (4, 4, 3)
    np.testing.assert_array_equal(meta.wavelengths, [0.0, 1.0, 2.0])


def test_mat_without_any_cube(tmp_path):
    p = tmp_path / "none.mat"
    scipy.io.savemat(p, {"wl": np.arange(3.0), "name": "x"})
    with pytest.raises(FormatError, match="no 2-D/3-D numeric array") as exc:
        read(p)
    one_line(exc)
    with pytest.raises(FormatError, match="not a real numeric array"):
        read(p, key="name")


@pytest.mark.parametrize("suffix", [".h5", ".zarr"])
def test_ambiguous_group_without_key(tmp_path, suffix):
    p = tmp_path / f"two{suffix}"
    if suffix == ".h5":
        import h5py

        with h5py.File(p, "w") as f:
            f["a"] = np.zeros((3, 3, 2))
            f["b"] = np.zeros((3, 3, 2))
            f["names"] = np.array([b"x"])
    else:
        import zarr

        g = zarr.open_group(str(p), mode="w")
        g.create_array("a", shape=(3, 3, 2), dtype="f4")
        g.create_array("b", shape=(3, 3, 2), dtype="f4")
    with pytest.raises(FormatError, match="several candidate") as exc:
        read(p)
    one_line(exc)
    assert read(p, key="b")[0].shape == (3, 3, 2)


def test_unknown_layout(tmp_path):
    write(tmp_path / "a.npy", np.zeros((2, 2, 2)))
    with pytest.raises(FormatError, match="unknown layout") as exc:
        read(tmp_path / "a.npy", layout="whc")  # type: ignore[arg-type]
    one_line(exc)


@pytest.mark.parametrize("shape", [(4, 4), (2, 2, 2, 2), (5,)])
def test_write_rejects_non_cubes(tmp_path, shape):
    with pytest.raises(ShapeError) as exc:
        write(tmp_path / "a.npy", np.zeros(shape))
    one_line(exc)


def test_write_rejects_mismatched_meta(tmp_path):
    with pytest.raises(
        ShapeError, match="wavelengths has 2 entries but the cube has 3 bands"
    ) as exc:
        write(tmp_path / "a.tif", np.zeros((2, 2, 3)), RasterMeta(wavelengths=np.array([1.0, 2.0])))
    one_line(exc)
    assert not (tmp_path / "a.tif").exists()


def test_write_rejects_unstorable_dtypes(tmp_path):
    with pytest.raises(FormatError, match="cannot store dtype complex64") as exc:
        write(tmp_path / "c.tif", np.zeros((2, 2, 2), np.complex64))
    one_line(exc)
    with pytest.raises(FormatError, match="pass a numeric array"):
        write(tmp_path / "s.npy", np.array([[["a"]]]))


def test_geotiff_nodata_out_of_range(tmp_path):
    with pytest.raises(FormatError, match="does not fit dtype uint16") as exc:
        write(tmp_path / "n.tif", np.zeros((2, 2, 2), np.uint16), RasterMeta(nodata=-9999.0))
    one_line(exc)


def test_geotiff_bad_crs(tmp_path):
    with pytest.raises(FormatError, match="cannot interpret crs"):
        write(tmp_path / "c.tif", np.zeros((2, 2, 1), np.float32), RasterMeta(crs="not a crs"))
