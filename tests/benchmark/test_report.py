"""Benchmark report and figures: tables with the best value in bold, PNGs that open."""

from __future__ import annotations

import numpy as np
import pytest

from hyperfuse.benchmark import BenchConfig, run_benchmark
from hyperfuse.benchmark.figures import sensor_figure
from hyperfuse.benchmark.report import markdown_report, markdown_table


def _rec(method: str, psnr: float, sam: float, status: str = "ok") -> dict:
    r = {"method": method, "dataset": "s", "sensor": "x4", "scale": 4, "seed": 0, "status": status,
         "time": 1.0, "params": 0, "cell_id": method}
    if status == "ok":
        r["metrics"] = {"psnr": psnr, "sam": sam}
    else:
        r["error"] = {"type": "ValueError", "message": "bad"}
    return r


def test_best_per_column_in_bold_and_failed_rows():
    recs = [_rec("a", 30, 2), _rec("b", 32, 3), _rec("c", 0, 0, "failed")]
    t = markdown_table(recs, columns=("psnr", "sam"))
    assert "| a | 30.00 | **2.000** | 1/1 |" in t
    assert "| b | **32.00** | 3.000 | 1/1 |" in t
    assert "| c | failed (ValueError) | – | – |" in t
    md = markdown_report(recs, columns=("psnr", "sam"))
    assert "## s — x4 (×4)" in md and "## Failed cells" in md


def _check_png(path, min_w=300, min_h=200):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] >= min_h and img.shape[1] >= min_w
    assert float(img[..., :3].std()) > 0.02  # not blank


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    cfg = BenchConfig.from_dict({
        "name": "fig", "methods": ["bicubic", {"name": "cnmf", "options": {"inner_iters": 10}}],
        "scenes": [{"name": "dl", "kind": "dead_leaves", "seed": 2, "shape": [24, 24], "bands": 10,
                    "n_endmembers": 3}],
        "sensors": [{"name": "x4", "ratio": 4, "srf": "gaussian:3"}],
    })
    return run_benchmark(cfg, out, workers=1)


def test_figures_open_with_content(run):
    figs = {k: v for k, v in run.files.items() if str(v).endswith(".png")}
    assert {"compare_dl_x4_s0", "sam_dl_x4_s0", "psnr_vs_time", "sam_vs_time",
            "endmembers_cnmf_dl_x4_s0"} <= set(figs)
    for p in figs.values():
        _check_png(p)
    html = (run.out / "report.html").read_text()
    assert "<table>" in html and "<b>" in html and "figures/compare_dl_x4_s0.png" in html


def test_sensor_figure(tmp_path):
    g = np.random.default_rng(0)
    x = np.linspace(-2, 2, 9)
    psf = np.exp(-(x[:, None] ** 2 + x[None] ** 2))
    srf = np.abs(g.random((3, 20)))
    p = sensor_figure(tmp_path / "s.png", srf_true=srf, srf_est=srf * 1.1, psf_true=psf / psf.sum(),
                      psf_est=psf.T / psf.sum(), wavelengths=np.linspace(400, 700, 20))
    _check_png(p)
