"""simulate -> fuse -> evaluate end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hyperfuse.cli import main


def _run(capsys, *args):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    return cap.out


def test_version_and_help(capsys):
    assert "hyperfuse" in _run(capsys, "--version")
    for cmd in ("simulate", "fuse", "evaluate", "methods", "demo", "synth", "srfs"):
        assert "Usage" in _run(capsys, cmd, "--help")


def test_methods_json(capsys):
    infos = json.loads(_run(capsys, "methods", "--json"))
    names = {i["name"] for i in infos}
    assert "bicubic" in names
    for i in infos:
        assert set(i) >= {"name", "description", "blind", "trainable", "parameters"}


def test_jasper_simulate_fuse_evaluate(capsys, shared_data: Path, tmp_path: Path):
    """Wald x4 on Jasper Ridge with Sentinel-2A restricted to its range, bicubic, evaluate --json."""
    jasper = shared_data / "jasper_ridge"
    h, m, f = tmp_path / "hsi.tif", tmp_path / "msi.tif", tmp_path / "fused.tif"
    _run(capsys, "simulate", jasper / "jasper_100x100x198_uint16.npy", "--scale", "5437",
         "--wavelengths", jasper / "wavelengths_nm_APPROX_aviris1995.npy", "--ratio", "4",
         "--srf", "sentinel-2a", "--hsi-out", h, "--msi-out", m, "--sensor-out", tmp_path / "sensor.json")
    _run(capsys, "fuse", "--hsi", h, "--msi", m, "--ratio", "4", "--srf", "sentinel-2a",
         "--method", "bicubic", "--out", f, "--record", tmp_path / "run.json")
    np.save(tmp_path / "ref.npy", np.load(jasper / "jasper_100x100x198_uint16.npy") / np.float32(5437))
    out = _run(capsys, "evaluate", "--reference", tmp_path / "ref.npy", "--estimate", f, "--ratio", "4", "--json")
    scores = json.loads(out)
    for k in ("psnr", "rmse", "sam", "ergas", "ssim", "uiqi", "cc"):
        assert k in scores
    # bicubic on Jasper x4: a blurry but sensible estimate
    assert 20 < scores["psnr"] < 40 and 0 < scores["sam"] < 20 and 0 < scores["cc"] <= 1
    rec = json.loads((tmp_path / "run.json").read_text())
    assert rec["method"] == "bicubic" and rec["wall_time_s"] > 0 and rec["peak_memory_mb"] > 0
    assert len(json.loads((tmp_path / "sensor.json").read_text())["srf"]) == 12  # B10 dropped


def test_synthetic_chain_with_sensor_file(capsys, tmp_path: Path, tiny_scene):
    ref = tmp_path / "ref.npy"
    np.save(ref, tiny_scene[0].permute(1, 2, 0).numpy())
    np.save(tmp_path / "wl.npy", np.linspace(420, 900, tiny_scene.shape[1]))
    _run(capsys, "simulate", ref, "--ratio", "4", "--srf", "gaussian:3", "--wavelengths", tmp_path / "wl.npy",
         "--hsi-out", tmp_path / "h.npy", "--msi-out", tmp_path / "m.npy", "--sensor-out", tmp_path / "s.json",
         "--snr-hsi", "40", "--seed", "3")
    _run(capsys, "fuse", "--hsi", tmp_path / "h.npy", "--msi", tmp_path / "m.npy", "--sensor", tmp_path / "s.json",
         "--method", "bicubic", "--out", tmp_path / "f.npy")
    assert np.load(tmp_path / "f.npy").shape == np.load(ref).shape


def test_fuse_scalmu_reports_its_prior_choice(capsys, tmp_path: Path, tiny_scene):
    """The console says which prior strength SCALMU chose and on how many held-out bands; the
    record holds the per-band scores; a fixed strength prints no choice."""
    ref = tmp_path / "ref.npy"
    np.save(ref, tiny_scene[0].permute(1, 2, 0).numpy())
    np.save(tmp_path / "wl.npy", np.linspace(420, 900, tiny_scene.shape[1]))
    _run(capsys, "simulate", ref, "--ratio", "4", "--srf", "gaussian:3", "--wavelengths", tmp_path / "wl.npy",
         "--hsi-out", tmp_path / "h.npy", "--msi-out", tmp_path / "m.npy", "--sensor-out", tmp_path / "s.json")
    common = ("fuse", "--hsi", tmp_path / "h.npy", "--msi", tmp_path / "m.npy", "--sensor", tmp_path / "s.json",
              "--method", "scalmu", "-o", "n_endmembers=3")
    out = " ".join(_run(capsys, *common, "--out", tmp_path / "f.npy", "--record", tmp_path / "run.json").split())
    auto = json.loads((tmp_path / "run.json").read_text())["info"]["prior_scale"]
    assert f"learned prior at strength {auto['chosen']:g} (of 0-1)" in out and "3 held-out MSI bands" in out
    assert all(len(v) == 3 for v in auto["fold_scores_db"].values())
    out = _run(capsys, *common, "-o", "prior_scale=0.5", "--out", tmp_path / "g.npy")
    assert "learned prior" not in out


def test_estimate_srf_recovers_the_simulated_response(capsys, tmp_path: Path, tiny_scene):
    ref = tmp_path / "ref.npy"
    cube = tiny_scene[0].permute(1, 2, 0).numpy()
    np.save(ref, cube)
    np.save(tmp_path / "wl.npy", np.linspace(420, 900, cube.shape[2]))
    _run(capsys, "simulate", ref, "--ratio", "4", "--srf", "gaussian:3", "--wavelengths", tmp_path / "wl.npy",
         "--hsi-out", tmp_path / "h.npy", "--msi-out", tmp_path / "m.npy", "--sensor-out", tmp_path / "s.json")
    _run(capsys, "estimate-srf", "--hsi", tmp_path / "h.npy", "--msi", tmp_path / "m.npy", "--ratio", "4",
         "--out", tmp_path / "est.json")
    true = np.array(json.loads((tmp_path / "s.json").read_text())["srf"])
    est_spec = json.loads((tmp_path / "est.json").read_text())
    est, offsets = np.array(est_spec["srf"]), np.array(est_spec["info"]["msi_offsets"])
    X = cube.reshape(-1, cube.shape[2])
    # R is identifiable only on the span of the data (a rank-3 scene with a free offset):
    # compare what the estimated response predicts for the MSI (classical.md §2.3-2.4)
    pred = X @ est.T + offsets
    assert np.linalg.norm(pred - X @ true.T) / np.linalg.norm(X @ true.T) < 0.02
    _run(capsys, "fuse", "--hsi", tmp_path / "h.npy", "--msi", tmp_path / "m.npy", "--sensor", tmp_path / "est.json",
         "--method", "bicubic", "--out", tmp_path / "f.npy", "--save-sensor", tmp_path / "used.json")
    assert json.loads((tmp_path / "used.json").read_text())["ratio"] == 4


def test_estimate_sensor_writes_a_reusable_sensor(capsys, tmp_path: Path, tiny_scene):
    ref = tmp_path / "ref.npy"
    np.save(ref, tiny_scene[0].permute(1, 2, 0).numpy())
    np.save(tmp_path / "wl.npy", np.linspace(420, 900, tiny_scene.shape[1]))
    _run(capsys, "simulate", ref, "--ratio", "4", "--srf", "gaussian:3", "--wavelengths", tmp_path / "wl.npy",
         "--hsi-out", tmp_path / "h.npy", "--msi-out", tmp_path / "m.npy")
    _run(capsys, "estimate-sensor", "--hsi", tmp_path / "h.npy", "--msi", tmp_path / "m.npy", "--ratio", "4",
         "--out", tmp_path / "blind.json")
    spec = json.loads((tmp_path / "blind.json").read_text())
    psf = np.array(spec["psf"])
    assert psf.shape == (7, 7) and abs(psf.sum() - 1) < 1e-6 and np.array(spec["srf"]).shape == (3, 12)
    _run(capsys, "fuse", "--hsi", tmp_path / "h.npy", "--msi", tmp_path / "m.npy", "--sensor", tmp_path / "blind.json",
         "--method", "gsa", "--out", tmp_path / "f.npy")


def test_train_mossfuse_bad_folders(capsys, tmp_path: Path):
    code = main(["train", "mossfuse", "--hsi-dir", str(tmp_path / "none"), "--msi-dir", str(tmp_path), "--ratio", "4"])
    err = capsys.readouterr().err
    assert code == 2 and "folder not found" in err and "Traceback" not in err


def test_simulate_cli_explicit_psf_phase_matches_protocol_formula(capsys, tmp_path: Path):
    """--psf-sigma/--psf-size/--phase give D(X)[i,j] = sum k[u,v] X[r i + o + u - K//2, ...] (reflect-101)."""
    from scipy import ndimage

    g = np.random.default_rng(5)
    X = g.random((24, 20, 5))
    np.save(tmp_path / "x.npy", X)
    R = g.random((2, 5))
    np.save(tmp_path / "R.npy", R)
    _run(capsys, "simulate", tmp_path / "x.npy", "--ratio", "4", "--srf", tmp_path / "R.npy", "--psf-sigma", "1.3",
         "--psf-size", "9", "--phase", "1", "--hsi-out", tmp_path / "h.npy", "--msi-out", tmp_path / "m.npy")
    t = np.arange(9) - 4.0
    k = np.outer(np.exp(-(t**2) / (2 * 1.3**2)), np.exp(-(t**2) / (2 * 1.3**2)))
    k /= k.sum()
    blurred = np.stack([ndimage.correlate(X[..., b], k, mode="mirror") for b in range(5)], -1)
    np.testing.assert_allclose(np.load(tmp_path / "h.npy"), blurred[1::4, 1::4], atol=1e-6)
    Rn = R / R.sum(1, keepdims=True)  # SRF rows are normalised to sum 1
    np.testing.assert_allclose(np.load(tmp_path / "m.npy"), X @ Rn.T, atol=1e-6)


def test_fuse_tiled_equals_whole_for_bicubic(capsys, tmp_path: Path, tiny_scene):
    ref = tmp_path / "ref.npy"
    cube = tiny_scene[0].permute(1, 2, 0).numpy()
    np.save(ref, np.concatenate([np.concatenate([cube, cube[::-1]], 0)] * 2, 1))  # 64 x 64
    np.save(tmp_path / "wl.npy", np.linspace(420, 900, tiny_scene.shape[1]))
    _run(capsys, "simulate", ref, "--ratio", "4", "--srf", "gaussian:3", "--wavelengths", tmp_path / "wl.npy",
         "--hsi-out", tmp_path / "h.npy", "--msi-out", tmp_path / "m.npy")
    common = ["--hsi", tmp_path / "h.npy", "--msi", tmp_path / "m.npy", "--ratio", "4", "--method", "bicubic"]
    _run(capsys, "fuse", *common, "--out", tmp_path / "whole.npy")
    _run(capsys, "fuse", *common, "--out", tmp_path / "tiled.zarr", "--tile", "32", "--overlap", "16")
    from hyperfuse.io import read

    tiled, _ = read(tmp_path / "tiled.zarr")
    whole = np.load(tmp_path / "whole.npy")
    # bicubic reaches 2 LR pixels past a tile edge, so a 16-px overlap leaves tiny seams
    np.testing.assert_allclose(np.asarray(tiled), whole, atol=1e-3)
    assert 10 * np.log10(1 / np.mean((np.asarray(tiled) - whole) ** 2)) > 60


def test_evaluate_no_reference(capsys, tmp_path: Path, tiny_scene):
    ref = tmp_path / "ref.npy"
    cube = tiny_scene[0].permute(1, 2, 0).numpy()
    np.save(ref, np.concatenate([np.concatenate([cube, cube[::-1]], 0)] * 2, 1))  # 64 x 64
    np.save(tmp_path / "wl.npy", np.linspace(420, 900, cube.shape[2]))
    _run(capsys, "simulate", ref, "--ratio", "4", "--srf", "gaussian:3", "--wavelengths", tmp_path / "wl.npy",
         "--hsi-out", tmp_path / "h.npy", "--msi-out", tmp_path / "m.npy", "--sensor-out", tmp_path / "s.json")
    _run(capsys, "fuse", "--hsi", tmp_path / "h.npy", "--msi", tmp_path / "m.npy", "--sensor", tmp_path / "s.json",
         "--method", "gsa", "--out", tmp_path / "f.npy")
    out = _run(capsys, "evaluate", "--no-reference", "--hsi", tmp_path / "h.npy", "--msi", tmp_path / "m.npy",
               "--estimate", tmp_path / "f.npy", "--sensor", tmp_path / "s.json", "--block", "16", "--json")
    res = json.loads(out)
    assert "qnr" in json.dumps(res).lower()
    code = main(["evaluate", "--estimate", str(tmp_path / "f.npy"), "--ratio", "4"])
    assert code == 2 and "--reference" in capsys.readouterr().err
