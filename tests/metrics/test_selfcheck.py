"""Reduced-resolution self-check and the no-reference report on tiny pairs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hyperfuse.data.synthetic import dead_leaves_scene
from hyperfuse.errors import ShapeError
from hyperfuse.metrics.selfcheck import (
    evaluate_no_reference,
    reduced_resolution_selfcheck,
    registration_shift,
)
from hyperfuse.physics import make_sensor, simulate


@pytest.fixture(scope="module")
def pair():
    wl = np.linspace(400, 900, 12)
    cube = dead_leaves_scene((64, 64), wl, n_endmembers=3, rng=0).cube
    srf = np.zeros((3, 12))
    for i in range(3):
        srf[i, 4 * i: 4 * i + 4] = 0.25
    spec = make_sensor(2, srf=srf)
    return simulate(torch.from_numpy(cube)[None], spec, rng=0), spec


def test_selfcheck_ranks_methods(pair):
    p, spec = pair
    bic = reduced_resolution_selfcheck(p.hsi, p.msi, "bicubic", spec)
    gsa = reduced_resolution_selfcheck(p.hsi, p.msi, "gsa", spec)
    assert bic["sizes"]["reduced_hsi"] == [1, 12, 16, 16] and bic["method"] == "bicubic"
    assert gsa["psnr"] > bic["psnr"]
    with pytest.raises(ShapeError):
        reduced_resolution_selfcheck(p.hsi, p.msi[..., :-2], "bicubic", spec)


def test_no_reference_report(pair):
    p, spec = pair
    good = evaluate_no_reference(p.hsi, p.msi, p.reference, spec, method="bicubic")
    bad = evaluate_no_reference(p.hsi, p.msi, torch.nn.functional.interpolate(
        p.hsi, scale_factor=2, mode="nearest"), spec)
    assert good["qnr"] > bad["qnr"] and good["d_s"] < bad["d_s"]
    assert good["consistency"]["spectral_psnr"] > 40
    assert not good["registration"]["warning"] and good["selfcheck"]["psnr"] > 0
    json.dumps(good)  # JSON-ready
    shifted = evaluate_no_reference(p.hsi, torch.roll(p.msi, (3, 2), dims=(-2, -1)), p.reference, spec)
    assert shifted["registration"]["warning"]


def test_registration_shift_subpixel():
    g = np.random.default_rng(1).random((32, 32))
    dy, dx = registration_shift(g, np.roll(g, (1, 2), axis=(0, 1)))
    assert (round(dy), round(dx)) == (-1, -2)


def test_evaluate_noref_command(pair, tmp_path, capsys):
    from hyperfuse.cli.bench import evaluate_noref_command

    p, spec = pair
    hwc = lambda t: np.ascontiguousarray(t[0].permute(1, 2, 0).numpy())  # noqa: E731
    for name, t in (("h", p.hsi), ("m", p.msi), ("f", p.reference)):
        np.save(tmp_path / f"{name}.npy", hwc(t))
    sensor = tmp_path / "sensor.json"
    sensor.write_text(json.dumps(spec.to_dict()))
    evaluate_noref_command(tmp_path / "h.npy", tmp_path / "m.npy", tmp_path / "f.npy", 2, None,
                           sensor, True, out=tmp_path / "r.json")
    rep = json.loads(capsys.readouterr().out)
    assert rep["qnr"] > 0.8 and json.loads((tmp_path / "r.json").read_text())["qnr"] == rep["qnr"]
