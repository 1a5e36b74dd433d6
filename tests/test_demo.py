"""The built-in main job on a small scene: table rows, figures that open, records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.image import imread

from hyperfuse.cli import main
from hyperfuse.demo import run_demo


def test_run_demo_small(tmp_path: Path):
    res = run_demo(tmp_path / "demo", size=64, bands=40, ratio=4, n_endmembers=6, methods=["bicubic", "gsa"])
    names = [r["method"] for r in res.rows]
    assert names == ["bicubic", "gsa"]
    by = {r["method"]: r for r in res.rows}
    assert by["gsa"]["psnr"] > by["bicubic"]["psnr"]  # the MSI adds detail
    img = imread(res.figure)
    assert img.shape[0] > 400 and img.shape[1] > 600 and img[..., :3].std() > 0.05
    rec = json.loads((res.folder / "results.json").read_text())
    assert len(rec["rows"]) == 2 and rec["sensor"]["ratio"] == 4
    assert (res.folder / "results.csv").read_text().startswith("method,psnr")


def test_demo_command(capsys, tmp_path: Path):
    code = main(["demo", "--out", str(tmp_path / "d"), "--size", "48", "--bands", "31", "--ratio", "4",
                 "--endmembers", "5", "--method", "bicubic"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "bicubic" in cap.out and (tmp_path / "d" / "demo.png").exists()
    code = main(["demo", "--out", str(tmp_path / "e"), "--size", "50", "--ratio", "4"])
    assert code == 2  # 50 is not a multiple of 4
    assert not (tmp_path / "e").exists()


def test_synth_command(capsys, tmp_path: Path):
    code = main(["synth", "--out", str(tmp_path / "s.npz"), "--size", "32", "40", "--bands", "31",
                 "--wavelengths", "400", "700", "--endmembers", "4", "--seed", "1",
                 "--preview", str(tmp_path / "s.png")])
    assert code == 0, capsys.readouterr().err
    with np.load(tmp_path / "s.npz") as z:
        assert z["cube"].shape == (32, 40, 31) and z["E"].shape == (31, 4)
    assert imread(tmp_path / "s.png").shape[0] > 100
