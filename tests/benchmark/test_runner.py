"""Benchmark runner: failed cells are recorded, an interrupted run resumes to the same table."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

from hyperfuse.benchmark import BenchConfig, expand_cells, load_config, run_benchmark
from hyperfuse.benchmark.report import markdown_report
from hyperfuse.errors import InputError
from hyperfuse.methods.base import FusionMethod
from hyperfuse.methods.registry import _REGISTRY, register_method

FAIL = "_test_failing"


@pytest.fixture
def failing_method():
    @register_method(FAIL)
    class Failing(FusionMethod):
        def _fuse(self, hsi, msi, physics):  # type: ignore[no-untyped-def]
            raise RuntimeError("deliberate failure")

    yield FAIL
    _REGISTRY.pop(FAIL, None)


def tiny_config(figures: bool = False) -> BenchConfig:
    return BenchConfig.from_dict({
        "name": "tiny",
        "methods": ["bicubic", FAIL, {"name": "gsa"}],
        "scenes": [{"name": "dl", "kind": "dead_leaves", "seed": 3, "shape": [24, 24], "bands": 10,
                    "n_endmembers": 3}],
        "sensors": [{"name": "x4", "ratio": 4, "srf": "gaussian:3", "snr": 40}],
        "figures": figures,
    })


def _metric_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    drop = {"time", "cpu_time", "peak_memory_mb", "total_wall"}
    for r in rows:
        for k in drop:
            r.pop(k)
        r["error"] = r["error"].split(":")[0]
    return rows


def test_failed_cell_is_recorded(tmp_path, failing_method):
    res = run_benchmark(tiny_config(), tmp_path, workers=1)
    assert res.complete and res.ran == 3 and len(res.failed) == 1
    bad = res.failed[0]
    assert bad["method"] == FAIL and bad["error"]["type"] == "RuntimeError"
    assert "deliberate failure" in bad["error"]["traceback"]
    rows = {r["method"]: r for r in _metric_rows(tmp_path)}
    assert rows[FAIL]["status"] == "failed" and rows[FAIL]["psnr"] == ""
    assert rows["bicubic"]["status"] == "ok" and float(rows["bicubic"]["psnr"]) > 15
    assert float(rows["gsa"]["psnr"]) > float(rows["bicubic"]["psnr"])
    ok = [r for r in res.records if r and r["status"] == "ok"]
    assert all(r["peak_memory_mb"] > 0 and r["time"] >= 0 and r["cpu_time"] >= 0 for r in ok)
    assert all(r["memory_method"] in ("vmhwm_reset", "ru_maxrss") for r in ok)
    md = (tmp_path / "report.md").read_text()
    assert "failed (RuntimeError)" in md and "**" in md


def test_interrupted_run_resumes_to_the_same_table(tmp_path, failing_method):
    cfg = tiny_config()
    full = run_benchmark(cfg, tmp_path / "full", workers=1)
    part = run_benchmark(cfg, tmp_path / "resumed", workers=1, max_cells=2)
    assert not part.complete and part.ran == 2
    # a half-written file of the missing cell (killed mid-write) must not count as finished
    missing = [c for c, r in zip(part.cells, part.records, strict=True) if r is None][0]
    (tmp_path / "resumed" / "cells" / f"{missing.id}.json").write_text('{"status": "o')
    res = run_benchmark(cfg, tmp_path / "resumed", workers=1, resume=True)
    assert res.complete and res.ran == 1 and res.skipped == 2
    assert _metric_rows(tmp_path / "full") == _metric_rows(tmp_path / "resumed")
    assert markdown_report(full.records, include_time=False) == markdown_report(res.records, include_time=False)
    again = run_benchmark(cfg, tmp_path / "resumed", workers=1, resume=True, report=False)
    assert again.ran == 0


def test_cell_ids_are_stable_and_change_with_the_cell(failing_method):
    cfg = tiny_config()
    ids = [c.id for c in expand_cells(cfg)]
    assert ids == [c.id for c in expand_cells(tiny_config())] and len(set(ids)) == 3
    other = dataclasses.replace(cfg, seeds=(1,))
    assert not set(ids) & {c.id for c in expand_cells(other)}


def test_config_yaml_round_trip_and_errors(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_text(
        "name: t\nmethods: [bicubic, {name: m2, method: mossfuse, options: {time_budget_s: 5}}]\n"
        "scenes:\n  - {name: j, kind: real, dataset: jasper_ridge, sensors: [x4]}\n"
        "sensors:\n  - {name: x4, preset: jasper-s2-x4}\n  - {name: x8, preset: jasper-s2-x8}\n"
        "data_root: data\n"
    )
    cfg = load_config(p)
    assert cfg.methods[1].options == {"time_budget_s": 5} and cfg.data_root == str(tmp_path / "data")
    assert [(s.name, t.name) for s, t in cfg.pairs()] == [("j", "x4")]
    assert cfg.sensors[0].resolved()["ratio"] == 4
    assert BenchConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InputError, match="unknown sensors"):
        BenchConfig.from_dict({"methods": ["a"], "scenes": [{"name": "s", "sensors": ["zz"]}],
                               "sensors": [{"name": "x"}]})
    with pytest.raises(InputError, match="unknown scene field"):
        BenchConfig.from_dict({"methods": ["a"], "scenes": [{"name": "s", "colour": 1}],
                               "sensors": [{"name": "x"}]})
    with pytest.raises(InputError, match="needs an SRF"):
        BenchConfig.from_dict({"methods": ["a"], "scenes": [{"name": "s"}],
                               "sensors": [{"name": "x", "preset": "samson-rgb-x4"}]}).sensors[0].resolved()


def test_missing_real_data_is_a_failed_cell(tmp_path):
    cfg = BenchConfig.from_dict({
        "methods": ["bicubic"], "scenes": [{"name": "jasper_ridge", "kind": "real"}],
        "sensors": [{"name": "x4", "preset": "jasper-s2-x4"}], "data_root": str(tmp_path / "nowhere"),
        "figures": False,
    })
    res = run_benchmark(cfg, tmp_path / "out", workers=1)
    assert res.failed[0]["error"]["type"] == "DatasetNotFoundError"


@pytest.mark.slow
def test_parallel_workers(tmp_path):
    cfg = dataclasses.replace(tiny_config(), methods=tiny_config().methods[::2])
    res = run_benchmark(cfg, tmp_path, workers=2)
    assert res.workers == 2 and not res.failed
    assert all(r["memory_method"] in ("vmhwm_reset", "vmhwm_process") for r in res.records if r)
