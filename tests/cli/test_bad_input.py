"""Every bad input of the foundation issue: one-line error, exit code 2, no traceback, no output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hyperfuse.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def assert_clean_failure(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for f in fragments:
        assert f.lower() in lines[0].lower(), lines[0]


@pytest.fixture
def pair(tmp_path: Path) -> dict[str, Path]:
    """A valid float HSI (8x8x6), MSI (32x32x2) and its SRF matrix, plus wavelengths."""
    g = np.random.default_rng(0)
    hsi = g.random((8, 8, 6)).astype(np.float32)
    msi = g.random((32, 32, 2)).astype(np.float32)
    srf = np.array([[0.5, 0.5, 0, 0, 0, 0], [0, 0, 0, 0, 0.5, 0.5]])
    ref = g.random((32, 32, 6)).astype(np.float32)
    paths = {k: tmp_path / f"{k}.npy" for k in ("hsi", "msi", "srf", "ref", "wl")}
    np.save(paths["hsi"], hsi)
    np.save(paths["msi"], msi)
    np.save(paths["srf"], srf)
    np.save(paths["ref"], ref)
    np.save(paths["wl"], np.linspace(450, 700, 6))
    return paths


def fuse_args(pair: dict[str, Path], out: Path, **over: str | Path) -> list[str | Path]:
    opts: dict[str, str | Path] = {
        "--hsi": pair["hsi"], "--msi": pair["msi"], "--ratio": "4", "--srf": pair["srf"],
        "--method": "bicubic", "--out": out,
    }
    opts.update(over)
    args: list[str | Path] = ["fuse"]
    for k, v in opts.items():
        args += [k, v]
    return args


def test_valid_pair_works(capsys, pair, tmp_path):
    out = tmp_path / "fused.npy"
    code, _, err = run(capsys, *fuse_args(pair, out, **{"--record": tmp_path / "run.json"}))
    assert code == 0, err
    assert np.load(out).shape == (32, 32, 6)
    assert (tmp_path / "run.json").exists()


def test_missing_file(capsys, pair, tmp_path):
    out = tmp_path / "fused.npy"
    code, _, err = run(capsys, *fuse_args(pair, out, **{"--hsi": tmp_path / "nope.npy"}))
    assert_clean_failure(code, err, "nope.npy")
    assert not out.exists()


def test_unreadable_file(capsys, pair, tmp_path):
    bad = tmp_path / "corrupt.npy"
    bad.write_bytes(b"this is not numpy")
    out = tmp_path / "fused.npy"
    code, _, err = run(capsys, *fuse_args(pair, out, **{"--hsi": bad}))
    assert_clean_failure(code, err, "corrupt.npy")
    assert not out.exists()


def test_unknown_format(capsys, pair, tmp_path):
    bad = tmp_path / "cube.xyz"
    bad.write_bytes(b"1234")
    code, _, err = run(capsys, *fuse_args(pair, tmp_path / "o.npy", **{"--msi": bad}))
    assert_clean_failure(code, err, ".xyz")
    code, _, err = run(capsys, *fuse_args(pair, tmp_path / "o.xyz"))
    assert_clean_failure(code, err, ".xyz")
    assert not (tmp_path / "o.xyz").exists()


def test_wrong_key(capsys, pair, tmp_path):
    from scipy.io import savemat

    mat = tmp_path / "hsi.mat"
    savemat(mat, {"cube": np.load(pair["hsi"]), "other": np.ones((3, 3))})
    out = tmp_path / "o.npy"
    code, _, err = run(capsys, *fuse_args(pair, out, **{"--hsi": mat, "--key": "wrong"}))
    assert_clean_failure(code, err, "wrong")
    assert not out.exists()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_rejected_or_masked(capsys, pair, tmp_path, bad):
    hsi = np.load(pair["hsi"])
    hsi[2, 3, 1] = bad
    np.save(pair["hsi"], hsi)
    out = tmp_path / "o.npy"
    code, _, err = run(capsys, *fuse_args(pair, out))
    assert_clean_failure(code, err, "nan", "--nodata")
    assert not out.exists()
    code, _, err = run(capsys, *fuse_args(pair, out, **{"--nodata": "-9999"}))
    assert code == 0, err
    assert np.isfinite(np.load(out)).all()


def test_negative_values_warn_and_keep(capsys, pair, tmp_path):
    hsi = np.load(pair["hsi"])
    hsi[0, 0, 0] = -0.5
    np.save(pair["hsi"], hsi)
    out = tmp_path / "o.npy"
    code, _, err = run(capsys, *fuse_args(pair, out))
    assert code == 0, err
    assert "negative" in err.lower()
    assert np.load(out).min() < 0


def test_size_mismatch(capsys, pair, tmp_path):
    out = tmp_path / "o.npy"
    code, _, err = run(capsys, *fuse_args(pair, out, **{"--ratio": "3"}))
    assert_clean_failure(code, err, "ratio")
    assert not out.exists()


@pytest.mark.parametrize("ratio", ["2.5", "0", "-4", "four"])
def test_bad_ratio(capsys, pair, tmp_path, ratio):
    out = tmp_path / "o.npy"
    code, _, err = run(capsys, *fuse_args(pair, out, **{"--ratio": ratio}))
    assert_clean_failure(code, err, "ratio")
    assert not out.exists()


def test_srf_band_count_mismatch(capsys, pair, tmp_path):
    np.save(pair["srf"], np.full((2, 5), 0.2))
    out = tmp_path / "o.npy"
    code, _, err = run(capsys, *fuse_args(pair, out))
    assert_clean_failure(code, err, "srf")
    assert not out.exists()


def test_srf_not_overlapping(capsys, pair, tmp_path):
    table = tmp_path / "srf.csv"
    wl = np.arange(1500, 1601)
    table.write_text("wavelength_nm,b1\n" + "".join(f"{w},{1.0}\n" for w in wl))
    out = tmp_path / "o.npy"
    code, _, err = run(
        capsys, *fuse_args(pair, out, **{"--srf": table, "--wavelengths": pair["wl"]})
    )
    assert_clean_failure(code, err, "overlap")
    assert not out.exists()


def test_two_d_input(capsys, pair, tmp_path):
    np.save(pair["hsi"], np.ones((8, 8), np.float32))
    out = tmp_path / "o.npy"
    code, _, err = run(capsys, *fuse_args(pair, out))
    assert_clean_failure(code, err, "2-d")
    assert not out.exists()


def test_empty_array(capsys, pair, tmp_path):
    np.save(pair["hsi"], np.ones((0, 8, 6), np.float32))
    out = tmp_path / "o.npy"
    code, _, err = run(capsys, *fuse_args(pair, out))
    assert_clean_failure(code, err, "empty")
    assert not out.exists()


def test_integer_needs_scale(capsys, pair, tmp_path):
    np.save(pair["hsi"], (np.load(pair["hsi"]) * 1000).astype(np.uint16))
    out = tmp_path / "o.npy"
    code, _, err = run(capsys, *fuse_args(pair, out))
    assert_clean_failure(code, err, "--scale")
    assert not out.exists()
    np.save(pair["msi"], (np.load(pair["msi"]) * 1000).astype(np.uint16))
    code, _, err = run(capsys, *fuse_args(pair, out, **{"--scale": "1000"}))
    assert code == 0, err
    assert np.load(out).max() <= 1.5


def test_simulate_bad_inputs_leave_nothing(capsys, pair, tmp_path):
    hsi_out, msi_out = tmp_path / "h.npy", tmp_path / "m.npy"
    base = ["simulate", pair["ref"], "--hsi-out", hsi_out, "--msi-out", msi_out, "--srf", pair["srf"]]
    code, _, err = run(capsys, *base, "--ratio", "0")
    assert_clean_failure(code, err, "ratio")
    np.save(pair["srf"], np.full((2, 7), 1 / 7))
    code, _, err = run(capsys, *base, "--ratio", "4")
    assert_clean_failure(code, err, "srf")
    assert not hsi_out.exists() and not msi_out.exists()


def test_evaluate_shape_mismatch(capsys, pair, tmp_path):
    code, _, err = run(capsys, "evaluate", "--reference", pair["ref"], "--estimate", pair["msi"], "--ratio", "4")
    assert_clean_failure(code, err, "shape")


def test_unknown_method(capsys, pair, tmp_path):
    code, _, err = run(capsys, *fuse_args(pair, tmp_path / "o.npy", **{"--method": "magic"}))
    assert_clean_failure(code, err, "magic")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["fuse", "--hsi", "h.npy", "--msi", "m.npy"], "missing option '--out'"),
        (["fuse", "--hsi", "h.npy", "--msi", "m.npy", "--out", "o.npy", "--bogus", "1"], "no such option"),
        (["fuse", "--hsi", "h.npy", "--msi", "m.npy", "--out", "o.npy", "--tile", "abc"], "invalid value for '--tile'"),
        (["nosuchcmd"], "no such command"),
    ],
)
def test_usage_errors_are_one_line(capsys, tmp_path, args, fragment):  # type: ignore[no-untyped-def]
    """Missing/unknown options and unparsable values: one line with a --help hint, exit 2."""
    code, _, err = run(capsys, *args)
    assert_clean_failure(code, err, fragment, "--help")
    assert not (tmp_path / "o.npy").exists()


def test_bare_command_prints_help(capsys):  # type: ignore[no-untyped-def]
    code, out, err = run(capsys)
    assert code == 0 and "Usage: hyperfuse" in out and "Traceback" not in err
