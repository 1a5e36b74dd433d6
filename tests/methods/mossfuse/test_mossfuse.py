"""MossFuse: parameter counts, shapes, operators, gradient flow, blind recovery, no-GT training."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import torch

from hyperfuse.errors import WeightsError
from hyperfuse.methods.mossfuse import (
    MossFuse,
    MossFuseConfig,
    MossFuseNet,
    degrade,
    geometry_of,
    load_weights,
    mossfuse_losses,
    parameter_formula,
    save_weights,
    train_mossfuse,
)
from hyperfuse.methods.mossfuse.network import BlindNet, dihedral, dihedral_offset, gaussian_kernel
from hyperfuse.methods.mossfuse.training import (
    candidate_geometries,
    classical_sensor_init,
    fit_blind,
    fit_single_scene,
)
from hyperfuse.methods.registry import method_info
from hyperfuse.physics.functional import blur, gaussian_psf

SPEC_COUNTS = {  # mossfuse.md §5: (L, l, C, N) -> (total, fusion path), reference layout
    (31, 3, 48, 1): (585_485, 449_153),
    (31, 3, 48, 3): (900_653, 606_737),
    (198, 10, 48, 1): (737_708, 562_280),
    (128, 8, 48, 1): (674_544, 515_100),
    (103, 4, 48, 1): (648_876, 496_560),
    (31, 3, 32, 1): (279_729, 215_105),
}


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine oversubscribed threads are 5-10x slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def n_params(mods) -> int:
    return sum(p.numel() for p in mods)


@pytest.mark.parametrize("key", list(SPEC_COUNTS))
def test_parameter_counts(key):
    L, l, C, N = key
    total, fusion = SPEC_COUNTS[key]
    net = MossFuseNet(L, l, 32, dim=C, n_blocks=N)
    assert n_params(net.parameters()) == total
    assert n_params(net.fusion_parameters()) == fusion
    assert parameter_formula(L, l, C, N) == {"total": total, "fusion": fusion}
    lean = MossFuseNet(L, l, 32, dim=C, n_blocks=N, reference_layout=False)
    assert n_params(lean.parameters()) == total - 4 * C * C


def test_module_counts_default():
    net = MossFuseNet(31, 3, 32)
    got = {name: n_params(m.parameters()) for name, m in net.named_children()}
    assert got == {"enc_msi": 185_800, "enc_hsi": 158_172, "dec_msi": 43_262, "dec_hsi": 51_182,
                   "blind": 97, "dec_lr": 41_888, "dec_hr": 105_084}


def test_methods_json_reports_count():
    info = method_info("mossfuse")
    assert info["parameters"] == 585_485 and info["blind"] and info["trainable"]
    json.dumps(info)


@pytest.mark.parametrize("L,l,r,geom", [(16, 3, 3, "block_centred"), (7, 5, 3, "mossfuse"),
                                        (9, 1, 5, "block_centred"), (5, 2, 2, "mossfuse")])
def test_shapes_odd(L, l, r, geom):
    net = MossFuseNet(L, l, r, dim=8, geometry=geom)
    B, h = 2, 4
    x, Y = torch.rand(B, L, h, h + 1), torch.rand(B, l, r * h, r * (h + 1))
    out = net(x, Y)
    H, W = r * h, r * (h + 1)
    K = net.geometry.size
    assert out.fused.shape == (B, L, H, W) and out.srf.shape == (l, L) and out.psf.shape == (K, K)
    assert out.msi_rec.shape == (B, l, H, W) and out.hsi_rec.shape == (B, L, H, W)
    assert out.lr_msi_rec.shape == (B, l, H, W)
    assert out.y_x.shape == out.y_Y.shape == (B, l, h, h + 1)
    assert out.f_ys.shape == (B, 8, H, W)


def test_fusion_path_skips_decoders():
    net = MossFuseNet(6, 2, 4, dim=8)
    calls = []
    for m in (net.dec_msi, net.dec_hsi, net.dec_lr):
        m.register_forward_hook(lambda *a: calls.append(1))
    out = net(torch.rand(1, 6, 3, 3), torch.rand(1, 2, 12, 12), return_aux=False)
    assert not calls and out.f_ys is None and out.fused.shape == (1, 6, 12, 12)


def test_kernel_generator_and_sigma():
    Q = torch.eye(2, dtype=torch.float64) / 2
    k = gaussian_kernel(Q, 31)
    assert torch.allclose(k, torch.from_numpy(gaussian_psf(2.0, 31)), atol=1e-8, rtol=0)
    b = BlindNet(3, 2, geometry_of(32, "mossfuse"))
    with torch.no_grad():
        b.Q.copy_(torch.eye(2) / 2)
    assert np.allclose(b.sigma(), (2.0, 2.0))


def test_mossfuse_geometry_operator():
    g = geometry_of(32, "mossfuse")
    assert (g.size, g.offset) == (31, 15)
    X = torch.rand(1, 2, 64, 64, dtype=torch.float64)
    k = torch.from_numpy(gaussian_psf(2.0, 31))
    ref = blur(X, k, "reflect")[..., 15::32, 15::32]
    assert torch.allclose(degrade(X, k, g), ref, atol=1e-12)


@pytest.mark.parametrize("geom", ["mossfuse", "block_centred"])
def test_offset_tracking(geom):
    g = geometry_of(8, geom) if geom == "mossfuse" else geometry_of(4, geom)
    X = torch.rand(1, 2, 32, 32, dtype=torch.float64)
    M = torch.tensor([[0.7, 0.0], [0.2, 0.5]], dtype=torch.float64)  # anisotropic kernel
    k = gaussian_kernel(M, g.size)
    base = degrade(X, k, g)
    for rot in range(4):
        for flip in (False, True):
            o = dihedral_offset(g, rot, flip)
            lhs = degrade(dihedral(X, rot, flip), dihedral(k, rot, flip)[None], g, [o])
            assert torch.allclose(lhs, dihedral(base, rot, flip), atol=1e-12), (rot, flip)


# --- gradient flow per loss term (mossfuse.md §7, §12.4) ---------------------------------

GROUPS = {
    "enc_msi.shared": lambda n: n.enc_msi.shared, "enc_msi.comp": lambda n: n.enc_msi.complement,
    "enc_msi.trunk": lambda n: n.enc_msi.embed, "enc_hsi.shared": lambda n: n.enc_hsi.shared,
    "enc_hsi.comp": lambda n: n.enc_hsi.complement, "enc_hsi.trunk": lambda n: n.enc_hsi.embed,
    "dec_msi": lambda n: n.dec_msi.agg, "dec_hsi": lambda n: n.dec_hsi.agg, "dec_lr": lambda n: n.dec_lr,
    "dec_hr": lambda n: n.dec_hr, "blind": lambda n: n.blind,
    "unused": lambda n: torch.nn.ModuleList([n.dec_msi.unused_fuse, n.dec_hsi.unused_fuse]),
}
ENC_ALL = {"enc_msi.shared", "enc_msi.comp", "enc_msi.trunk", "enc_hsi.shared", "enc_hsi.comp", "enc_hsi.trunk"}
EXPECTED = {
    "sc": ENC_ALL,
    "sct_msi": {"enc_msi.shared", "enc_msi.comp", "enc_msi.trunk", "dec_msi"},
    "sct_hsi": {"enc_hsi.shared", "enc_hsi.comp", "enc_hsi.trunk", "dec_hsi"},
    "sct_lr_x": {"enc_msi.shared", "enc_msi.trunk", "enc_hsi.shared", "enc_hsi.trunk", "dec_lr"},
    "sct_lr_y": {"enc_msi.shared", "enc_msi.trunk", "enc_hsi.shared", "enc_hsi.trunk", "dec_lr"},
    "ma_hsi": ENC_ALL | {"dec_hr"},
    "ma_msi": ENC_ALL | {"dec_hr"},
    "de": {"blind"},
}


def _grads(net, term_name, x, Y):
    net.zero_grad(set_to_none=True)
    terms = mossfuse_losses(net(x, Y), x, Y, net.geometry)
    getattr(terms, term_name).backward()
    out = {}
    for g, f in GROUPS.items():
        ps = list(f(net).parameters())
        out[g] = any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in ps)
    return out, terms


@pytest.fixture(scope="module")
def small_net_data():
    torch.manual_seed(0)
    net = MossFuseNet(6, 2, 2, dim=8, psf_size=3)
    with torch.no_grad():  # move LK layer scales and GRN off their tiny / zero starts
        for m in net.modules():
            if hasattr(m, "gamma") and isinstance(m.gamma, torch.nn.Parameter):
                m.gamma.fill_(0.5)
    x, Y = torch.rand(2, 6, 2, 2) * 0.5 + 0.2, torch.rand(2, 2, 4, 4) * 0.5 + 0.2
    return net, x, Y


@pytest.mark.parametrize("term", list(EXPECTED))
def test_gradient_flow(small_net_data, term):
    net, x, Y = small_net_data
    got, _ = _grads(net, term, x, Y)
    assert {g for g, v in got.items() if v} == EXPECTED[term]


def test_total_gradient_is_sum_of_terms(small_net_data):
    net, x, Y = small_net_data
    torch.manual_seed(1)
    acc = None
    for t in EXPECTED:
        net.zero_grad(set_to_none=True)
        terms = mossfuse_losses(net(x, Y), x, Y, net.geometry)
        w = {"sc": 0.1}.get(t, 1.0)
        (w * getattr(terms, t)).backward()
        g = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in net.parameters()]
        acc = g if acc is None else [a + b for a, b in zip(acc, g, strict=True)]
    net.zero_grad(set_to_none=True)
    mossfuse_losses(net(x, Y), x, Y, net.geometry).total.backward()
    for p, a in zip(net.parameters(), acc, strict=True):
        tot = p.grad if p.grad is not None else torch.zeros_like(p)
        assert torch.allclose(tot, a, atol=1e-6, rtol=1e-4)


# --- blind recovery (mossfuse.md §12.5) ---------------------------------------------------

def white_scene(seed: int, size: int = 96, L: int = 31, p: int = 62) -> torch.Tensor:
    g = np.random.default_rng(seed)
    E = g.uniform(0.05, 0.95, (L, p))
    noise = g.standard_normal((p, size, size))
    f = np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None] ** 2
    F = np.real(np.fft.ifft2(np.fft.fft2(noise) * np.exp(-2 * np.pi**2 * 16.0 * f)))
    F /= F.std()
    A = np.exp(4 * F) / np.exp(4 * F).sum(0, keepdims=True)
    return torch.from_numpy(np.einsum("lp,phw->lhw", E, A))[None].float()


def simulated_pair(seed: int):
    g = np.random.default_rng(100 + seed)
    R = g.uniform(0, 1, (3, 31)) ** 3
    R /= R.sum(1, keepdims=True)
    X = white_scene(seed)
    geom = geometry_of(8, "mossfuse")
    k = torch.from_numpy(gaussian_psf(1.5, geom.size)).float()
    x = degrade(X, k, geom)
    Y = torch.einsum("ml,blhw->bmhw", torch.from_numpy(R).float(), X)
    return x, Y, R, geom


def test_blind_recovery_classical_init():
    x, Y, R, geom = simulated_pair(0)
    g, R0, s0, _ = classical_sensor_init(x, Y, [geom])
    blind = BlindNet(31, 3, geom)
    blind.set_estimate(R0, s0)
    fit_blind(blind, x, Y, steps=150, lr=2e-2)
    sy, sx = blind.sigma()
    assert abs(sy - 1.5) / 1.5 < 0.05 and abs(sx - 1.5) / 1.5 < 0.05
    assert float(np.abs(blind.srf().detach().numpy() - R).mean()) <= 0.01


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blind_recovery_from_delta(seed):
    x, Y, R, geom = simulated_pair(seed)
    blind = BlindNet(31, 3, geom)
    fit_blind(blind, x, Y, steps=2500, lr=2e-2)
    sy, sx = blind.sigma()
    assert abs(sy - 1.5) / 1.5 < 0.05 and abs(sx - 1.5) / 1.5 < 0.05
    assert float(np.abs(blind.srf().detach().numpy() - R).max()) <= 0.005
    k_true = torch.from_numpy(gaussian_psf(1.5, geom.size)).float()
    assert float((blind.psf().detach() - k_true).abs().max()) <= 0.05 * float(k_true.max())


def test_candidate_geometries_centres():
    for r in (3, 4, 5, 8):
        cs = sorted(g.centre for g in candidate_geometries(r))
        assert np.allclose(np.diff(cs), 0.5) and np.isclose(cs[1], (r - 1) / 2)


# --- no ground truth in training ----------------------------------------------------------

def test_training_api_takes_no_reference():
    for fn in (fit_single_scene, train_mossfuse, MossFuse.fuse):
        names = set(inspect.signature(fn).parameters)
        assert not names & {"reference", "gt", "ground_truth", "hr_hsi", "target", "X"}


def _tiny_config(**kw):
    base = dict(dim=8, steps=3, time_budget_s=None, patch_size=8, psf_size=6, eval_every=2, init_output="none",
                init_sensor="delta", geometry="block_centred", seed=0, num_threads=1)
    base.update(kw)
    return MossFuseConfig(**base)


def test_no_ground_truth_reaches_training(tmp_path):
    torch.use_deterministic_algorithms(True)
    try:
        results = []
        for variant in ("nan", "real"):
            d = tmp_path / variant
            d.mkdir()
            hs, ms = [], []
            for n in range(2):
                X = torch.rand(1, 5, 16, 16, generator=torch.Generator().manual_seed(n))
                x = degrade(X, torch.full((4, 4), 1 / 16), geometry_of(4))
                Y = X[:, :2]
                gt = np.full((16, 16, 5), np.nan, np.float32) if variant == "nan" else X[0].permute(1, 2, 0).numpy()
                np.save(d / f"gt{n}.npy", gt)
                np.save(d / f"hsi{n}.npy", x[0].permute(1, 2, 0).numpy())
                np.save(d / f"msi{n}.npy", Y[0].permute(1, 2, 0).numpy())
                hs.append(d / f"hsi{n}.npy")
                ms.append(d / f"msi{n}.npy")
            best = train_mossfuse(hs, ms, config=_tiny_config(), out_dir=d / "run", ratio=4,
                                  checkpoint_every=3)
            t, _ = load_weights(best)
            assert all(torch.isfinite(v).all() for v in t.values() if v.is_floating_point())
            results.append(t)
        assert results[0].keys() == results[1].keys()
        assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])
    finally:
        torch.use_deterministic_algorithms(False)


def test_resume_after_kill_matches_uninterrupted(tmp_path):
    hs, ms = [], []
    for n in range(2):
        X = torch.rand(1, 5, 16, 16, generator=torch.Generator().manual_seed(n))
        np.save(tmp_path / f"h{n}.npy", degrade(X, torch.full((4, 4), 1 / 16), geometry_of(4))[0].permute(1, 2, 0).numpy())
        np.save(tmp_path / f"m{n}.npy", X[0, :2].permute(1, 2, 0).numpy())
        hs.append(tmp_path / f"h{n}.npy")
        ms.append(tmp_path / f"m{n}.npy")
    train_mossfuse(hs, ms, config=_tiny_config(steps=4), out_dir=tmp_path / "a", ratio=4,
                          checkpoint_every=2)
    # a run killed during step 3 (last checkpoint at step 2), then resumed
    part = tmp_path / "b"
    cfg = _tiny_config(steps=4)
    import hyperfuse.methods.mossfuse.train as T

    class Kill(Exception):
        pass

    def prog(stage, i, total, cost):
        if i == 3:
            raise Kill

    with pytest.raises(Kill):
        T.train_mossfuse(hs, ms, config=cfg, out_dir=part, ratio=4, checkpoint_every=2, progress=prog)
    T.train_mossfuse(hs, ms, config=cfg, out_dir=part, ratio=4, checkpoint_every=2, resume=True)
    a, _ = load_weights(tmp_path / "a" / "last.safetensors")
    b, meta = load_weights(part / "last.safetensors")
    assert meta["step"] == 4
    for k in a:
        if k.startswith("model/"):
            assert torch.allclose(a[k], b[k], atol=1e-6), k
    assert (part / "log.csv").read_text().count("\n") >= 5


def test_weights_roundtrip_and_corruption(tmp_path):
    p = save_weights(tmp_path / "w.safetensors", {"model/a": torch.arange(4.0)}, {"step": 1})
    t, meta = load_weights(p)
    assert torch.equal(t["model/a"], torch.arange(4.0)) and meta["step"] == 1
    raw = bytearray(p.read_bytes())
    raw[-3] ^= 0xFF
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="SHA-256"):
        load_weights(bad)
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(p.read_bytes()[:20])
    with pytest.raises(WeightsError):
        load_weights(trunc)
    with pytest.raises(WeightsError):
        load_weights(tmp_path / "missing.safetensors")


def test_single_scene_smoke_and_weights_inference(tmp_path):
    torch.manual_seed(0)
    X = white_scene(3, size=16, L=8, p=5)
    g = geometry_of(4)
    x = degrade(X, torch.from_numpy(gaussian_psf(1.7, g.size)).float(), g)
    Y = torch.einsum("ml,blhw->bmhw", torch.full((2, 8), 1 / 8), X)
    m = MossFuse(_tiny_config(steps=4, init_output="bicubic", init_sensor="classical", blind_steps=5,
                              geometry="auto"))
    seen = []
    m.progress = lambda stage, i, total, cost: seen.append((stage, i, total))
    res = m.fuse(x, Y, None)
    assert res.cube.shape == X.shape and torch.isfinite(res.cube).all()
    assert ("train", 4, 4) in seen and any(s == "blind" for s, *_ in seen)
    spec = res.sensor_estimate
    assert spec.srf.shape == (2, 8) and spec.psf.shape[0] == spec.psf.shape[1] and spec.ratio == 4
    assert np.allclose(spec.srf.sum(1), 1) and (spec.srf >= 0).all()
    assert json.loads(spec.to_json())["ratio"] == 4
    # a checkpoint from dataset mode runs the fusion path only
    np.save(tmp_path / "h.npy", x[0].permute(1, 2, 0).numpy())
    np.save(tmp_path / "m.npy", Y[0].permute(1, 2, 0).numpy())
    w = train_mossfuse([tmp_path / "h.npy"], [tmp_path / "m.npy"], config=_tiny_config(steps=2),
                       out_dir=tmp_path / "run", ratio=4, checkpoint_every=1)
    inf = MossFuse(MossFuseConfig(weights=str(w), num_threads=1)).fuse(x, Y, None)
    assert inf.cube.shape == X.shape and inf.info["mode"] == "weights"
    with pytest.raises(WeightsError, match="trained for"):
        MossFuse(MossFuseConfig(weights=str(w))).fuse(x[:, :5], Y, None)
