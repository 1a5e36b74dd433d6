"""SCALMU: identity with CNMF's rule, positivity, any L/l/r/p, gradients, weights files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperfuse.errors import WeightsError
from hyperfuse.methods.registry import get_method, method_info
from hyperfuse.methods.unrolled.nmf import (
    MultiplicativeUpdate,
    NMFState,
    couple,
    lr_abundances,
    ms_endmembers,
)
from hyperfuse.methods.unrolled.scalmu import (
    SCALMU,
    SCALMUArch,
    SCALMUConfig,
    SCALMULayer,
    SCALMUNet,
    scalmu_init,
)
from hyperfuse.physics.generators import SensorGenerator, random_gaussian_srf
from hyperfuse.physics.sensor import FusionPhysics, make_sensor
from hyperfuse.weights import load_weights, save_weights, weights_dir

SMALL = dict(n_endmembers=3, n_layers=2, init_hs_iters=3, init_ms_iters=3)


def _pair(L: int, l: int, r: int, h: int, seed: int = 0, dtype=torch.float32):
    g = np.random.default_rng(seed)
    srf = random_gaussian_srf(g, np.linspace(400, 1000, L), n_bands=(l, l))
    spec = make_sensor(r, srf=srf)
    phys = FusionPhysics(spec)
    x = torch.from_numpy(g.uniform(0.05, 0.9, (1, L, h * r, h * r))).to(dtype)
    return x, phys.spatial(x), phys.spectral(x), spec, phys


def _state(L: int, p: int, phys: FusionPhysics, H: int, seed: int = 1) -> NMFState:
    g = torch.Generator().manual_seed(seed)
    E = torch.rand(1, L, p, dtype=torch.float64, generator=g) + 0.05
    A = torch.rand(1, p, H, H, dtype=torch.float64, generator=g) + 0.05
    return couple(NMFState(E, A / A.sum(1, keepdim=True)), phys)


def test_identity_neutral_layer_is_plain_multiplicative_update() -> None:
    """Φ = 0, M = 1, μ = m = 1, c = 0: one layer equals the Lee–Seung coupled pass."""
    x, hsi, msi, spec, phys = _pair(12, 3, 4, 4, dtype=torch.float64)
    hsi, msi = hsi.double(), msi.double()
    state = _state(12, 4, phys, 16)
    lay = SCALMULayer(SCALMUArch()).double()
    lay.neutralise()
    got = lay(state, hsi, msi, phys)
    # Reference: the shared MultiplicativeUpdate stages with the CNMF rule.
    s = MultiplicativeUpdate(("A",))(state, hsi, msi, phys)
    s = s.replace(abundances_lr=lr_abundances(s.abundances, phys))
    s = MultiplicativeUpdate(("A_h", "E"))(s, hsi, msi, phys)
    s = s.replace(ms_endmembers=ms_endmembers(s.endmembers, phys))
    for a, b in ((got.abundances, s.abundances), (got.abundances_lr, s.abundances_lr), (got.endmembers, s.endmembers), (got.ms_endmembers, s.ms_endmembers)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


def test_neutral_method_equals_cnmf_passes() -> None:
    x, hsi, msi, spec, phys = _pair(10, 3, 4, 4)
    m = SCALMU(SCALMUConfig(weights="neutral", **SMALL))
    out = m.fuse(hsi, msi, spec)
    st0 = scalmu_init(hsi, msi, phys, 3, hs_iters=3, ms_iters=3)
    for _ in range(2):
        st0 = MultiplicativeUpdate(("A",))(st0, hsi, msi, phys)
        st0 = st0.replace(abundances_lr=lr_abundances(st0.abundances, phys))
        st0 = MultiplicativeUpdate(("A_h", "E"))(st0, hsi, msi, phys)
        st0 = st0.replace(ms_endmembers=ms_endmembers(st0.endmembers, phys))
    torch.testing.assert_close(out.cube, st0.reconstruct(), rtol=1e-4, atol=1e-6)


@settings(max_examples=4, deadline=None)
@given(
    L=st.integers(5, 40),
    l=st.integers(1, 6),
    r=st.sampled_from([2, 3, 4, 5]),
    h=st.integers(3, 5),
    p=st.integers(1, 5),
    seed=st.integers(0, 1000),
)
def test_any_shape_and_nonnegative(L: int, l: int, r: int, h: int, p: int, seed: int) -> None:
    x, hsi, msi, spec, phys = _pair(L, l, r, h, seed)
    p = min(p, L, h * h)
    m = SCALMU(SCALMUConfig(weights="untrained", n_endmembers=p, n_layers=2, init_hs_iters=2, init_ms_iters=2))
    out = m.fuse(hsi, msi, spec)
    assert out.cube.shape == x.shape
    assert out.endmembers.shape == (1, L, p) and out.abundances.shape == (1, p, h * r, h * r)
    assert torch.isfinite(out.cube).all() and (out.cube >= 0).all()
    assert (out.abundances >= 0).all() and (out.endmembers >= 0).all()


def test_nonnegative_for_adversarial_input() -> None:
    """Negative, zero and huge values in the inputs still give a finite, non-negative cube."""
    x, hsi, msi, spec, phys = _pair(8, 3, 4, 4)
    hsi = hsi.clone()
    msi = msi.clone()
    hsi[:, :, 0, 0] = -5.0
    msi[:, :, :4, :4] = 0.0
    msi[:, 0, 5, 5] = 1e4
    net = SCALMU(SCALMUConfig(weights="untrained", **SMALL))
    with torch.no_grad():
        for lay in net.net.layers:
            for prm in lay.parameters():
                prm.normal_(0, 3)
    out = net.fuse(hsi, msi, spec)
    assert torch.isfinite(out.cube).all() and (out.cube >= 0).all()


def test_gradients_reach_every_parameter() -> None:
    x, hsi, msi, spec, phys = _pair(9, 3, 4, 4)
    net = SCALMUNet(SCALMUArch(n_layers=2)).float()
    st0 = scalmu_init(hsi, msi, phys, 3, hs_iters=2, ms_iters=2)
    y = net(st0, hsi, msi, phys).reconstruct()
    (y - x).abs().mean().backward()
    for name, prm in net.named_parameters():
        assert prm.grad is not None and torch.isfinite(prm.grad).all(), name
        assert prm.grad.abs().sum() > 0, name


def test_shared_weights_and_parameter_count() -> None:
    a = SCALMU(SCALMUConfig(weights="untrained", n_layers=4))
    b = SCALMU(SCALMUConfig(weights="untrained", n_layers=4, share_weights=True))
    assert a.parameter_count() == 4 * b.parameter_count()
    assert a.parameter_count() < 5000


def test_progress_called_per_layer() -> None:
    x, hsi, msi, spec, phys = _pair(8, 3, 4, 4)
    calls: list[tuple[str, int, int]] = []
    m = SCALMU(SCALMUConfig(weights="neutral", **SMALL))
    m.progress = lambda s, i, n, c: calls.append((s, i, n))
    m.fuse(hsi, msi, spec)
    assert calls == [("layer", 1, 2), ("layer", 2, 2)]


def test_adapt_runs_and_keeps_positivity() -> None:
    x, hsi, msi, spec, phys = _pair(12, 3, 4, 4)
    calls: list[str] = []
    m = SCALMU(SCALMUConfig(weights="untrained", adapt=True, adapt_steps=2, **SMALL))
    m.progress = lambda s, i, n, c: calls.append(s)
    before = [p.clone() for p in m.net.parameters()]
    out = m.fuse(hsi, msi, spec)
    assert out.info["adapt"]["steps"] == 2 and calls.count("adapt") == 2
    assert (out.cube >= 0).all()
    assert all(torch.equal(a, b) for a, b in zip(before, m.net.parameters(), strict=True))  # original untouched


def test_weights_roundtrip_and_corruption(tmp_path: Path) -> None:
    net = SCALMUNet(SCALMUArch(n_layers=2))
    path = save_weights(tmp_path / "w.safetensors", net.state_dict(), {"method": "scalmu", "arch": {"n_layers": 2}})
    m = SCALMU(SCALMUConfig(weights=str(path)))
    assert m.net.arch.n_layers == 2
    # Flip one byte in the tensor data: the SHA-256 no longer matches.
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="corrupted"):
        SCALMU(SCALMUConfig(weights=str(path)))
    # Without its JSON, a truncated file is refused as unreadable.
    path.with_suffix(".json").unlink()
    path.write_bytes(bytes(raw[:40]))
    with pytest.raises(WeightsError, match="corrupted|readable"):
        load_weights(path, expected_method="scalmu")
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "missing.safetensors")


def test_weights_for_other_method_refused(tmp_path: Path) -> None:
    path = save_weights(tmp_path / "w.safetensors", {"a": torch.ones(1)}, {"method": "mossfuse"})
    with pytest.raises(WeightsError, match="mossfuse"):
        load_weights(path, expected_method="scalmu")


@pytest.mark.skipif(not (weights_dir() / "scalmu.safetensors").is_file(), reason="no shipped weights")
def test_shipped_weights_load_and_registry() -> None:
    state, meta = load_weights("scalmu", expected_method="scalmu")
    assert meta["method"] == "scalmu" and "validation" in meta and len(meta["sha256"]) == 64
    m = get_method("scalmu")
    assert isinstance(m, SCALMU)
    info = method_info("scalmu")
    assert info["trainable"] and 0 < info["parameters"] < 20000
    x, hsi, msi, spec, phys = _pair(31, 3, 4, 4)
    out = get_method("scalmu", n_endmembers=3).fuse(hsi, msi, spec)
    assert (out.cube >= 0).all() and out.info["weights"]["method"] == "scalmu"
    x, hsi, msi, spec, phys = _pair(10, 3, 2, 4)
    with pytest.warns(UserWarning, match="outside their training family"):
        get_method("scalmu", n_endmembers=3).fuse(hsi, msi, spec)


def test_sensor_generator_is_deterministic() -> None:
    wl = np.linspace(420, 1800, 57)
    a = SensorGenerator(real_srfs=())(3, wl)
    b = SensorGenerator(real_srfs=())(3, wl)
    assert a.ratio == b.ratio and np.array_equal(a.srf, b.srf) and a.srf.shape[1] == 57
    assert np.allclose(a.srf.sum(1), 1.0) and (a.srf >= 0).all()


def test_mapnet_fast_path_equals_module_composition() -> None:
    """The channels-last forward (and its gradients) equals 1x1 → ReLU → ``dw`` (replicate) → ReLU → 1x1."""
    from hyperfuse.methods.unrolled.scalmu import _MapNet

    torch.manual_seed(0)
    net = _MapNet(8)
    with torch.no_grad():
        net.out.weight.normal_()
    g = torch.Generator().manual_seed(1)
    maps, ctx = torch.randn(2, 5, 2, 13, 17, generator=g), torch.randn(2, 4, 13, 17, generator=g)
    h = torch.einsum("kc,bpchw->bpkhw", net.w_map, maps)
    h = torch.relu(h + torch.einsum("kc,bchw->bkhw", net.w_ctx, ctx)[:, None] + net.b1[None, None, :, None, None])
    ref = net.out(torch.relu(net.dw(h.reshape(10, 8, 13, 17)))).reshape(2, 5, 2, 13, 17)
    a, rho = maps[:, :, 0], maps[:, :, 1]
    torch.testing.assert_close(net(a, rho, net.context_features(ctx)), ref, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(net(a, rho, net.context_features(ctx)), ref, rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(net(a.requires_grad_(), rho, net.context_features(ctx)).square().sum(), [a, net.w_map, net.w_ctx, net.dw.weight])
    ref_grads = torch.autograd.grad(
        net.out(torch.relu(net.dw(torch.relu(
            torch.einsum("kc,bpchw->bpkhw", net.w_map, torch.stack([a, rho], 2))
            + torch.einsum("kc,bchw->bkhw", net.w_ctx, ctx)[:, None] + net.b1[None, None, :, None, None]
        ).reshape(10, 8, 13, 17)))).square().sum(),
        [a, net.w_map, net.w_ctx, net.dw.weight],
    )
    for g_, r_ in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g_, r_, rtol=1e-4, atol=1e-5)


def test_inference_in_place_update_equals_autograd_path() -> None:
    """The no-grad layer (chunked endmember-wise net) equals the differentiable one."""
    from hyperfuse.methods.unrolled.scalmu import _prepare_physics
    from hyperfuse.physics.sensor import FusionPhysics, make_sensor

    g = torch.Generator().manual_seed(3)
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 31, 220, 220, generator=g), 5, 1)  # 216²: p·H·W > 2¹⁸
    srf = np.zeros((3, 31))
    for k in range(3):
        srf[k, 10 * k : 10 * k + 11] = 1 / 11
    s = make_sensor(4, srf=srf)
    ph = FusionPhysics(s)
    hsi, msi = ph.spatial(x), ph.spectral(x)
    m = get_method("scalmu")
    phys, msi = _prepare_physics(ph, hsi, msi)
    st = m.initial_state(hsi, msi, phys, p=6)
    lay = m.net.layer(2)
    lay.chunk, lay.rows = 4, 16  # force the chunked inference net as well
    with torch.no_grad():
        fast = lay(st, hsi, msi, phys)
    with torch.enable_grad():
        ref = lay(st, hsi, msi, phys)
    torch.testing.assert_close(fast.abundances, ref.abundances.detach(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(fast.endmembers, ref.endmembers.detach(), rtol=1e-5, atol=1e-7)


def test_safeguard_keeps_a_layer_only_when_it_fits_no_worse_than_a_plain_pass() -> None:
    """Each safeguarded layer's result fits both images no worse than a plain CNMF pass from the
    same state; with neutral weights the safeguard changes nothing."""
    from hyperfuse.methods.unrolled.scalmu import _prepare_physics, coupled_misfit

    x, hsi, msi, spec, phys = _pair(31, 3, 4, 8, seed=2)
    m = get_method("scalmu", n_endmembers=4, prior_scale=1.0)
    phys, msi = _prepare_physics(phys, hsi, msi)
    st0 = m.initial_state(hsi, msi, phys)
    kept: list[bool] = []
    history: list[NMFState] = []
    with torch.no_grad():
        m.net(st0, hsi, msi, phys, safeguard=kept, history=history)
        plain = m.net._plain_layer(m.net.layer(0))
        prev = st0
        for k, st in enumerate(history):
            ref = plain(prev, hsi, msi, phys)
            assert coupled_misfit(st, hsi, msi, phys) <= coupled_misfit(ref, hsi, msi, phys) * (1 + 1e-6)
            if not kept[k]:
                torch.testing.assert_close(st.abundances, ref.abundances)
            prev = st
    assert len(kept) == m.net.arch.n_layers
    assert "_plain" not in dict(m.net.named_modules()) and not any("_plain" in k for k in m.net.state_dict())
    out = get_method("scalmu", n_endmembers=4, prior_scale=1.0, safeguard=True).fuse(hsi, msi, spec)
    assert out.info["safeguard_kept"] == kept
    neutral = SCALMUConfig(weights="neutral", safeguard=True, **SMALL)
    torch.testing.assert_close(SCALMU(neutral).fuse(hsi, msi, spec).cube,
                               SCALMU(SCALMUConfig(weights="neutral", **SMALL)).fuse(hsi, msi, spec).cube)


def test_prior_scale_multiplies_the_prior_bound_of_loaded_weights() -> None:
    """prior_scale = 0 is the prior switched off, 1 the weights as trained; anything else changes
    the output; a negative scale is refused."""
    from hyperfuse.errors import InputError

    x, hsi, msi, spec, phys = _pair(31, 3, 4, 16, seed=3)

    def fused(**kw):
        m = get_method("scalmu", n_endmembers=4, **kw)
        return m, m.fuse(hsi, msi, spec).cube

    m1, as_trained = fused(prior_scale=1.0)
    m0, scaled0 = fused(prior_scale=0.0)
    mh, half = fused(prior_scale=0.5)
    off = get_method("scalmu", n_endmembers=4, prior_scale=1.0)
    off.net.set_arch(dataclasses.replace(off.net.arch, use_prior=False))
    torch.testing.assert_close(scaled0, off.fuse(hsi, msi, spec).cube)
    assert m1.net.layer(0).arch.prior_bound == SCALMU(SCALMUConfig(prior_scale=1.0)).trained_arch.prior_bound
    assert mh.net.layer(0).arch.prior_bound == pytest.approx(0.5 * m1.net.layer(0).arch.prior_bound)
    assert (half - as_trained).abs().max() > 1e-6 and (half - scaled0).abs().max() > 1e-6
    with pytest.raises(InputError, match="prior_scale"):
        get_method("scalmu", prior_scale=-1.0)


def test_vca_options_reach_the_initialisation() -> None:
    """SCALMU's VCA options are CNMF's: with the reference branch test and projected spectra the
    initial endmembers come from that VCA; bad values are refused."""
    from hyperfuse.errors import InputError
    from hyperfuse.methods.unrolled.scalmu import _prepare_physics
    from hyperfuse.unmix import vca

    x, hsi, msi, spec, phys = _pair(31, 3, 4, 16, seed=5)
    phys, msi = _prepare_physics(phys, hsi, msi)
    opts = dict(vca_snr_rule="reference", vca_endmembers="projected", vca_draw="uniform")
    m = get_method("scalmu", init_hs_iters=0, init_ms_iters=0, n_endmembers=4, **opts)
    st = m.initial_state(hsi, msi, phys)
    _, spectra = vca(hsi[0].reshape(31, -1).double().numpy(), 4, rng=0, draw="uniform", snr_rule="reference",
                     return_spectra=True)
    torch.testing.assert_close(st.endmembers[0], torch.from_numpy(spectra).float().clamp_min(1e-6))
    plain = get_method("scalmu", init_hs_iters=0, init_ms_iters=0, n_endmembers=4).initial_state(hsi, msi, phys)
    assert not torch.allclose(plain.endmembers, st.endmembers)
    for bad in (dict(vca_snr_rule="x"), dict(vca_endmembers="x"), dict(vca_draw="x")):
        with pytest.raises(InputError, match=next(iter(bad))):
            get_method("scalmu", **bad)


def test_prior_scale_auto_scores_held_out_bands_and_fuses_with_the_winner() -> None:
    """"auto": each candidate α is scored by how well the fusion without MSI band k predicts
    band k (recomputed here through the public fuse path); the winner is the best score (ties
    to the larger α) and the output is the fusion at that α."""
    from hyperfuse.methods.unrolled.scalmu import AUTO_PRIOR_SCALES, pick_prior_scale

    x, hsi, msi, spec, phys = _pair(31, 2, 4, 8, seed=5)
    out = get_method("scalmu", n_endmembers=4, prior_scale="auto").fuse(hsi, msi, spec)
    rec = out.info["prior_scale"]
    scores = {float(a): v for a, v in rec["scores_db"].items()}
    assert sorted(scores) == sorted(AUTO_PRIOR_SCALES)
    best = max(scores.values())
    assert rec["chosen"] == max(a for a, v in scores.items() if v >= best - 0.01)
    folds = {float(a): v for a, v in rec["fold_scores_db"].items()}  # per held-out band, 2 here
    assert all(len(v) == 2 and np.mean(v) == pytest.approx(scores[a], abs=1e-9) for a, v in folds.items())
    assert pick_prior_scale(folds) == rec["chosen"]
    torch.testing.assert_close(out.cube, get_method("scalmu", n_endmembers=4, prior_scale=rec["chosen"])
                               .fuse(hsi, msi, spec).cube)
    R = np.asarray(spec.srf, dtype=np.float64)
    R = R / R.sum(axis=1, keepdims=True)
    for alpha in (0.0, 1.0):
        snr = []
        for k in (0, 1):
            held = make_sensor(4, srf=R[[1 - k]])
            cube = get_method("scalmu", n_endmembers=4, prior_scale=alpha).fuse(hsi, msi[:, [1 - k]], held).cube
            pred = torch.einsum("l,blhw->bhw", torch.as_tensor(R[k]).float(), cube).double()
            y = msi[:, k].double()
            snr.append(float(10 * torch.log10(y.pow(2).sum() / (y - pred).pow(2).sum())))
        assert scores[alpha] == pytest.approx(np.mean(snr), abs=1e-3)


def test_pick_prior_scale_best_mean_with_ties_to_the_larger_alpha() -> None:
    """The best mean over folds wins; within 0.01 dB of it, the larger α."""
    from hyperfuse.methods.unrolled.scalmu import pick_prior_scale

    assert pick_prior_scale({0.0: [20.0, 22.0], 0.5: [20.0, 21.0], 1.0: [19.0, 20.0]}) == 0.0
    assert pick_prior_scale({0.0: [20.0, 22.0], 0.5: [20.0, 21.99], 1.0: [19.0, 20.0]}) == 0.5
    assert pick_prior_scale({0.0: [20.0, 22.0], 0.5: [20.0, 21.97], 1.0: [19.0, 20.0]}) == 0.0


def test_prior_scale_auto_ties_and_single_band_keep_the_trained_prior() -> None:
    """Learned parts neutral ⇒ every α fuses alike ⇒ the tie goes to α = 1; one MSI band ⇒
    nothing to hold out ⇒ α = 1; anything but a number ≥ 0 or "auto" is refused."""
    from hyperfuse.errors import InputError
    from hyperfuse.methods.unrolled.scalmu import _prepare_physics, choose_prior_scale

    x, hsi, msi, spec, phys = _pair(31, 3, 4, 8, seed=6)
    neutral = SCALMU(SCALMUConfig(weights="neutral", prior_scale="auto", **SMALL))
    assert "prior_scale" not in neutral.fuse(hsi, msi, spec).info  # nothing to choose: skipped
    alpha, record = choose_prior_scale(neutral, hsi, *_prepare_physics(phys, hsi, msi)[::-1], 3)
    assert alpha == record["chosen"] == 1.0 and len(set(np.round(list(record["scores_db"].values()), 9))) == 1
    x1, hsi1, msi1, spec1, _ = _pair(31, 1, 4, 8, seed=6)
    rec1 = get_method("scalmu", n_endmembers=4, prior_scale="auto").fuse(hsi1, msi1, spec1).info["prior_scale"]
    assert rec1["chosen"] == 1.0 and rec1["scores_db"] == {}
    for bad in ("automatic", True, None):
        with pytest.raises(InputError, match="prior_scale"):
            get_method("scalmu", prior_scale=bad)


def test_auto_window_is_aligned_with_the_lr_grid() -> None:
    """The central HR window "auto" scores on is exactly the footprint of its LR window."""
    from hyperfuse.methods.unrolled.scalmu import AUTO_CROP, AUTO_MIN_LR, auto_window

    for r, h, w in [(4, 50, 37), (8, 9, 40), (32, 6, 5)]:
        ii, jj = torch.meshgrid(torch.arange(h * r), torch.arange(w * r), indexing="ij")
        msi = ((ii // r) * 1000 + jj // r).float()
        hsi = msi[::r, ::r]
        lr, hr = auto_window(h, w, r)
        side = max(AUTO_CROP, AUTO_MIN_LR * r) // r
        assert hsi[lr].shape == (min(h, side), min(w, side))
        torch.testing.assert_close(msi[hr][::r, ::r], hsi[lr])
        assert lr[0].start == (h - min(h, side)) // 2 and lr[1].start == (w - min(w, side)) // 2


def test_set_prior_scale_keeps_the_other_architecture_flags() -> None:
    """An ablation's flags (step matrices off, fewer layers) survive the prior-scale choice."""
    m = get_method("scalmu", prior_scale=1.0)
    m.net.set_arch(dataclasses.replace(m.net.arch, use_step=False, n_layers=4))
    m.set_prior_scale(0.25)
    assert (m.net.arch.use_step, m.net.arch.n_layers) == (False, 4)
    assert m.net.layer(0).arch.prior_bound == pytest.approx(0.25 * m.trained_arch.prior_bound)


def test_adapt_on_held_out_bands_never_ends_worse_on_them() -> None:
    """adapt_data/adapt_select = held_out_bands: the network trains on the scene's own held-out
    MSI bands (every learned parameter gets a gradient), and the kept step (0 included)
    predicts them at least as well as the unadapted network."""
    from hyperfuse.methods.unrolled.scalmu import (
        _prepare_physics,
        held_out_bands,
        held_out_loss,
        held_out_snr,
    )
    from hyperfuse.methods.unrolled.scalmu_adapt import adapt_to_scene

    x, hsi, msi, spec, phys = _pair(31, 3, 4, 8, seed=7)
    cfg = SCALMUConfig(weights="untrained", adapt=True, adapt_steps=6, adapt_lr=1e-2, prior_scale=1.0,
                       adapt_data="held_out_bands", adapt_select="held_out_bands", **SMALL)
    m = SCALMU(cfg)
    phys, msi = _prepare_physics(phys, hsi, msi)
    folds = held_out_bands(m, hsi, msi, phys, 3)
    assert len(folds) == 3 and all(f.msi.shape[1] == 2 for f in folds)
    net, rec = adapt_to_scene(m, hsi, msi, phys, m.initial_state(hsi, msi, phys))
    assert (rec["data"], rec["select"], rec["steps"]) == ("held_out_bands", "held_out_bands", 6)
    assert held_out_snr(net, folds) >= held_out_snr(m.net, folds) - 1e-9
    assert rec["val_loss_best"] == pytest.approx(-held_out_snr(net, folds), abs=1e-6)
    with torch.enable_grad():
        held_out_loss(m.net, folds[0]).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.net.parameters())


def test_adapt_options_are_checked_and_one_band_skips_held_out_adaptation() -> None:
    from hyperfuse.errors import InputError

    for bad in (dict(adapt_data="scene"), dict(adapt_select="real")):
        with pytest.raises(InputError, match="adapt_"):
            SCALMU(SCALMUConfig(weights="untrained", **bad))
    x, hsi, msi, spec, phys = _pair(31, 1, 4, 8, seed=8)
    m = SCALMU(SCALMUConfig(weights="untrained", adapt=True, adapt_steps=2, adapt_select="held_out_bands", **SMALL))
    with pytest.warns(UserWarning, match="2 MSI bands"):
        out = m.fuse(hsi, msi, spec)
    assert out.info["adapt"]["steps"] == 0 and out.info["adapt"]["skipped"]
