"""SCALMU training recipe: a few steps, CSV log, checkpoint, resume after a kill, metadata."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from hyperfuse.methods.unrolled.scalmu import SCALMU, SCALMUConfig
from hyperfuse.training import SCALMUTrainConfig, train_scalmu
from hyperfuse.weights import load_weights, sha256_file

TINY = dict(
    steps=3, batch=1, crop=32, n_val=1, val_every=3, checkpoint_every=1, ratios=[4],
    ratio_weights=[1.0], library="none", arch={"n_layers": 2, "hidden": 4},
    init_hs_iters=3, init_ms_iters=2,
)


class _Kill(Exception):
    pass


def test_recipe_runs_resumes_and_records(tmp_path: Path) -> None:
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(TINY))
    out = tmp_path / "run"

    def killer(stage: str, i: int, n: int, cost: float) -> None:
        if stage == "train" and i == 2:
            raise _Kill

    with pytest.raises(_Kill):
        train_scalmu(cfg_file, out_dir=out, resume=False, progress=killer)
    assert (out / "checkpoint.pt").is_file()
    path = train_scalmu(None, out_dir=out, resume=True)
    with open(out / "log.csv", newline="") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [1, 2, 3]
    state, meta = load_weights(path, expected_method="scalmu")
    assert meta["sha256"] == sha256_file(path)
    assert meta["training"]["generator_seed"] == 0 and "psnr" in meta["validation"]
    assert meta["training"]["config"]["steps"] == 3
    m = SCALMU(SCALMUConfig(weights=str(path)))
    assert m.net.arch.n_layers == 2


def test_config_rejects_unknown_keys() -> None:
    from hyperfuse.errors import InputError

    with pytest.raises(InputError, match="unknown training option"):
        SCALMUTrainConfig.from_dict({"stepz": 3})
