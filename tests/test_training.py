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


def test_abundance_randomisation_options(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import hyperfuse.data.synthetic as synthetic
    from hyperfuse.errors import InputError
    from hyperfuse.methods.unrolled.scalmu_train import make_sample

    base = SCALMUTrainConfig.from_dict(TINY)
    again = make_sample(base, 0, 5)
    assert torch.equal(make_sample(base, 0, 5)["cube"], again["cube"])  # pure function of (seed, index)
    mixed = SCALMUTrainConfig.from_dict({**TINY, "concentration_range": [2.0, 2.0]})
    a, b = make_sample(mixed, 0, 5), make_sample(mixed, 0, 5)
    assert torch.equal(a["cube"], b["cube"]) and not torch.equal(a["cube"], again["cube"])
    seen: list[dict] = []
    real = synthetic.dead_leaves_scene

    def spy(*args, **kw):
        seen.append(kw)
        return real(*args, **kw)

    monkeypatch.setattr(synthetic, "dead_leaves_scene", spy)
    make_sample(base, 0, 5)
    make_sample(SCALMUTrainConfig.from_dict({**TINY, "shading_prob": 1.0, "concentration_range": [0.5, 0.5]}), 0, 5)
    assert "sum_to_one" not in seen[0] and "concentration" not in seen[0]
    assert seen[1]["sum_to_one"] is False and seen[1]["concentration"] == pytest.approx(0.5)
    with pytest.raises(InputError, match="concentration_range"):
        SCALMUTrainConfig.from_dict({**TINY, "concentration_range": [0.0, 1.0]})
    at_inference = make_sample(SCALMUTrainConfig.from_dict({**TINY, "inference_p_prob": 1.0}), 0, 5)
    assert at_inference["p"] == min(30, at_inference["hsi"].shape[1], (32 // 4) ** 2)
    with pytest.raises(InputError, match="inference_p_prob"):
        SCALMUTrainConfig.from_dict({**TINY, "inference_p_prob": -0.1})
    with pytest.raises(InputError, match="shading_prob"):
        SCALMUTrainConfig.from_dict({**TINY, "shading_prob": 1.5})


def test_prior_drop_runs_a_sample_without_the_prior_and_restores_it() -> None:
    """prior_drop_prob = 1 marks every sample; its forward equals the prior-off network's, the
    layers get their prior back afterwards, and the default stream carries no flag."""
    import dataclasses

    import torch

    from hyperfuse.errors import InputError
    from hyperfuse.methods.unrolled.scalmu import SCALMUArch, SCALMUNet
    from hyperfuse.methods.unrolled.scalmu_train import _run, make_sample

    base = SCALMUTrainConfig.from_dict(TINY)
    drop = SCALMUTrainConfig.from_dict({**TINY, "prior_drop_prob": 1.0})
    s0, s1 = make_sample(base, 0, 5), make_sample(drop, 0, 5)
    assert s0["prior_off"] is False and s1["prior_off"] is True
    assert torch.equal(s0["cube"], s1["cube"])  # the flag is drawn last: the scene is unchanged
    torch.manual_seed(0)
    net = SCALMUNet(SCALMUArch(n_layers=2, hidden=4))
    off = SCALMUNet(dataclasses.replace(net.arch, use_prior=False))
    off.load_state_dict(net.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(_run(net, s1, drop), _run(off, s1, drop))
        assert not torch.allclose(_run(net, s0, base), _run(off, s0, base))
    assert all(lay.arch.use_prior for lay in net.layers)
    with pytest.raises(InputError, match="prior_drop_prob"):
        SCALMUTrainConfig.from_dict({**TINY, "prior_drop_prob": 2.0})
