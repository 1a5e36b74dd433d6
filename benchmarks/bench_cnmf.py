"""CNMF performance benchmark (classical.md §3.1).

Runs CNMF (float32 torch, default iteration counts, p = 30, 2 threads) on §1-style scenes in
a fresh subprocess per scene (its VmHWM is the run's peak memory; ru_maxrss would inherit the
parent's peak across exec), and in the same
subprocess times a straightforward float64 NumPy MS iteration (the 600 M form). Prints a table
and writes benchmarks/results/bench_cnmf.json.

    python benchmarks/bench_cnmf.py                 # both scenes
    python benchmarks/bench_cnmf.py --scenes cave   # 512x512x31, 3-band MSI, x8 only

Peer comparison (issue 4): ``--peer`` runs, in one process and side by side, our CNMF (SRF
estimated, and sensor known) against the only pip-installable CNMF (``hyperevalsr`` 1.0.1, MIT)
and bicubic on the issue's protocol: Jasper Ridge ``[:96, :96] / 1e4`` and Samson
``[:88, :88] / 1402`` at x4 and x8; MSI = Sentinel-2A B2, B3, B4, B8 (Jasper) / B2-B8 (Samson)
sampled at the HSI band centres, rows normalised; Gaussian PSF sigma = 0.4247 r on 2r+1 taps,
phase floor(r/2), reflect boundary; 35 dB SNR per band on both images. The peer is never a
dependency of hyperfuse: the benchmark pip-installs it into a throwaway directory
(``--peer-dir``, default /tmp/hyperevalsr_peer) and puts that on sys.path only here; its
kernel-size crash (a tuple passed to ``fspecial_gauss``) and its 8-bit output quantisation are
patched in memory. Without pip/network the peer column is skipped with a message. Data paths
are relative to this script (../../shared/data, or $HYPERFUSE_DATA); missing scenes are skipped.

    python benchmarks/bench_cnmf.py --peer          # writes benchmarks/results/bench_cnmf_peer.json
    python benchmarks/bench_cnmf.py --peer --noise-seeds 5   # ours, known sensor, 5 noise realisations
    python benchmarks/bench_cnmf.py --peer --parity          # reference mode vs the peer's code, synthetic

"Reference mode" (``REFERENCE_VCA``) runs our §3 loops with the reference code's VCA; with the
sensor known it reproduces the issue's "carefully run CNMF" figures (docs/cnmf.md §4).

The peer's VCA draws from NumPy's unseeded global RNG, so its score and time vary from call to
call: it is run ``--peer-runs`` times (seeds 0..K-1) and its median reported with the PSNR range;
ours (deterministic) is timed as the median of ``--repeat`` calls.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys

if "--peer" in sys.argv:  # single-threaded BLAS for both sides (set before NumPy loads)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SCENES = {
    "cave": dict(size=512, L=31, l=3, ratio=8, p=30),
    "large": dict(size=1024, L=128, l=8, ratio=4, p=30),
}


def ms_a_flops(N: int, p: int, l: int) -> float:
    """Data-first, hoisted numerator, P reused: 4p(l+1)N + 2pN + 3lN."""
    return 4 * p * (l + 1) * N + 2 * p * N + 3 * l * N


def ms_a_bytes(N: int, p: int, l: int) -> float:
    """Compulsory traffic of one A-only iteration (float32): read A and the numerator, write
    A, write and read P = ẼA ((l+1) rows), read Y_m: 4N(3p + 2(l+1) + l) bytes."""
    return 4 * N * (3 * p + 2 * (l + 1) + l)


def ms_alt_flops(N: int, p: int, l: int) -> float:
    """E_m then A, with Y_mAᵀ/AAᵀ shared and a direct residual from P = ẼA:
    2lpN + p(p+1)N + 2plN + 4p(l+1)N + 2pN + 2p(l+1)N."""
    return 2 * l * p * N + p * (p + 1) * N + 2 * p * l * N + 4 * p * (l + 1) * N + 2 * p * N + 2 * p * (l + 1) * N


def make_pair(size: int, L: int, l: int, ratio: int, p: int, seed: int = 0):
    """§1 scene with p endmembers (float32 X, circular default PSF/offset, Gaussian SRF)."""
    import torch

    sys.path.insert(0, str(HERE.parent / "tests" / "methods"))
    from scenes import abundances, endmembers, gaussian_srf  # type: ignore[import-not-found]

    from hyperfuse.physics.sensor import FusionPhysics, make_sensor

    g = np.random.default_rng(seed)
    E = endmembers(L, p, g).astype(np.float32)
    A = abundances(p, size, size, 6.0, g).astype(np.float32)
    X = torch.from_numpy(E) @ torch.from_numpy(A).reshape(p, -1)
    X = X.reshape(1, L, size, size)
    sensor = make_sensor(ratio, srf=gaussian_srf(l, L), boundary="circular")
    phys = FusionPhysics(sensor)
    return X, phys.spatial(X), phys.spectral(X), sensor


def numpy_iteration(Ym: np.ndarray, Em: np.ndarray, A: np.ndarray, delta: float, reps: int = 3) -> float:
    """Straightforward float64 MS A-update (numerator recomputed, Gram-first, direct cost)."""
    l, p = Em.shape
    Et = np.vstack([Em, np.full((1, p), delta)])
    Yt = np.vstack([Ym, np.full((1, Ym.shape[1]), delta)])
    times = []
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        num = Et.T @ Yt
        den = (Et.T @ Et) @ A
        A = A * num / np.maximum(den, 1e-12)
        _ = float(((Ym - Em @ A) ** 2).sum())
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def vm_hwm_mb() -> float:
    """Peak resident set of this process image (VmHWM; unlike ru_maxrss, reset by exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(name: str, data: str, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    from hyperfuse.methods.classical.cnmf import CNMF, CNMFConfig
    from hyperfuse.types import SensorSpec

    cfg = SCENES[name]
    d = np.load(data, allow_pickle=False)
    hsi, msi = torch.from_numpy(d["hsi"]), torch.from_numpy(d["msi"])
    sensor = SensorSpec.from_dict(json.loads(str(d["sensor"])))
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    rss0 = vm_hwm_mb()
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    out = CNMF(CNMFConfig(n_endmembers=cfg["p"], num_threads=threads)).fuse(hsi, msi, sensor)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = vm_hwm_mb()
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    X = torch.from_numpy(d["X"])
    mse = ((out.cube.double() - X.double()) ** 2).mean(dim=(0, 2, 3))
    psnr = float((10 * torch.log10(X.double().amax(dim=(0, 2, 3)) ** 2 / mse)).mean())
    loops = out.info["loops"]
    N = msi.shape[-1] * msi.shape[-2]
    l, p = msi.shape[1], cfg["p"]

    def per_it(prefix: str) -> float | None:
        ls = [lp for lp in loops if lp["name"] == prefix and lp["iterations"]]
        if not ls:
            return None
        return sum(lp["seconds"] for lp in ls) / sum(lp["iterations"] for lp in ls)

    t_a = per_it("ms_abundances")
    t_alt = per_it("ms_alternate")
    # Straightforward float64 NumPy iteration on the same data and E_m.
    A0 = out.abundances[0].reshape(p, -1).double().numpy()
    Em = np.asarray(out.info["srf"]) @ out.endmembers[0].double().numpy()
    t_np = numpy_iteration(msi[0].reshape(l, -1).double().numpy(), Em, A0, out.info["delta"][0])
    res = {
        "scene": name,
        **cfg,
        "N": N,
        "threads": threads,
        "psnr_db": psnr,
        "wall_s": wall,
        "cpu_s": cpu,
        "loops": {lp["name"]: {"iterations": lp["iterations"], "seconds": lp["seconds"]} for lp in loops},
        "ms_a_iter_ms": None if t_a is None else 1e3 * t_a,
        "ms_a_flop": ms_a_flops(N, p, l),
        "ms_a_bytes": ms_a_bytes(N, p, l),
        "ms_a_gflops": None if t_a is None else ms_a_flops(N, p, l) / t_a / 1e9,
        "ms_a_gbps": None if t_a is None else ms_a_bytes(N, p, l) / t_a / 1e9,
        "ms_alt_iter_ms": None if (t_alt is None or l <= 3) else 1e3 * t_alt,
        "ms_alt_flop": ms_alt_flops(N, p, l) if l > 3 else None,
        "ms_alt_gflops": None if (t_alt is None or l <= 3) else ms_alt_flops(N, p, l) / t_alt / 1e9,
        "numpy_f64_iter_ms": 1e3 * t_np,
        "numpy_f64_flop_600M_form": ms_a_flops(N, p, l) - 4 * p * (l + 1) * N + 2 * p * p * N
        + 2 * l * p * N + 2 * p * (l + 1) * N,
        "peak_rss_mb": peak_mb,
        "rss_before_run_mb": rss0,
        "loadavg_1min": [load0, os.getloadavg()[0]],
    }
    print(json.dumps(res))


# ----------------------------------------------------------------------------- peer (issue 4)
PEER_PKG = "hyperevalsr==1.0.1"
PEER_SCENES = {
    # name: (file, wavelengths, crop, scale, S2 bands)
    "jasper": ("jasper_ridge/jasper_100x100x198_uint16.npy", "jasper_ridge/wavelengths_nm_APPROX_aviris1995.npy",
               96, 1e4, ("B2", "B3", "B4", "B8")),
    "samson": ("samson/samson_95x95x156_counts_uint16.npy", None, 88, 1402.0,
               ("B2", "B3", "B4", "B5", "B6", "B7", "B8")),
}
# Issue 4 figures: peer float output and known-sensor CNMF (PSNR dB / SAM deg), bicubic PSNR.
ISSUE = {
    ("jasper", 4): dict(peer=(36.91, 5.57), known=42.2, bicubic=32.42),
    ("jasper", 8): dict(peer=(36.39, 6.36), known=40.2, bicubic=29.42),
    ("samson", 4): dict(peer=(44.24, 3.62), known=49.8, bicubic=35.36),
    ("samson", 8): dict(peer=(43.47, 4.57), known=49.2, bicubic=30.74),
}


# The "careful" setting, chosen by select_cnmf.py on validation data only (HYDICE Urban crop +
# held-out dead-leaves scenes; rules fixed there before each run, session 5): stop rule
# theta = 1e-3, step 3(a) capped at I_in (the MATLAB reference), up to 3 outer iterations, a
# final MS abundance loop (stage 1), sum-to-one weight x10 (stage 4). Each fixed before it was
# run on Jasper/Samson.
from select_cnmf import VALIDATED  # noqa: E402  (this script's folder is on sys.path)

# VCA as CNMF's reference code (Yokoya's, and the peer's port) runs it: uniform draws, its own
# branch test (the orthogonal branch at p = 30) and projected endmembers. With the §3 loops this
# is the reference code's algorithm ("reference" rows); select_cnmf.py stage 5 found no effect of
# these options on the validation cases, so VALIDATED does not include them (docs/cnmf.md §4).
from hyperfuse.methods.classical.cnmf import REFERENCE_VCA  # noqa: E402


def data_root() -> Path:
    env = os.environ.get("HYPERFUSE_DATA")
    return Path(env) if env else HERE.parent.parent / "shared" / "data"


def protocol_pair(name: str, ratio: int, seed: int = 0):
    """The issue-4 protocol scene: returns (X (1,L,H,W), pair, sensor) or None if data is absent."""
    import torch

    from hyperfuse.physics import make_sensor, simulate
    from hyperfuse.physics.srf import get_srf

    f, wl, crop, scale, bands = PEER_SCENES[name]
    root = data_root()
    if not (root / f).exists() or (wl is not None and not (root / wl).exists()):
        return None
    cube = np.load(root / f)[:crop, :crop].astype(np.float64) / scale  # HWC
    w = np.load(root / wl).astype(np.float64) if wl else np.linspace(401, 889, cube.shape[-1])
    s = get_srf("sentinel-2a", w, method="point", min_coverage=0.0)
    R = np.stack([s.matrix[s.band_names.index(b)] for b in bands])
    R = R / R.sum(1, keepdims=True)
    sensor = make_sensor(ratio, srf=R, psf_sigma=0.4247 * ratio, psf_size=2 * ratio + 1, phase=ratio // 2,
                         boundary="reflect", snr_hsi=35.0, snr_msi=35.0)
    X = torch.from_numpy(np.ascontiguousarray(cube.transpose(2, 0, 1))[None]).float()
    pair = simulate(X, sensor, rng=seed)
    return X, pair, sensor


def load_peer(target: str, install: bool):
    """Import the peer's CNMF from ``target`` (pip-installing it there if asked), patched in memory.
    Returns (callable(msi_hwc, hsi_hwc) -> float HWC, note) or (None, reason)."""
    import importlib
    import types

    if install and not (Path(target) / "HyperEvalSR").exists():
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                               target, PEER_PKG], capture_output=True, text=True)
        if proc.returncode != 0:
            return None, f"pip install {PEER_PKG} failed: {proc.stderr.strip().splitlines()[-1:]}"
    if not (Path(target) / "HyperEvalSR").exists():
        return None, f"{PEER_PKG} not found in {target} (run with --peer-install or pip install --target)"
    sys.path.insert(0, target)
    try:
        alg = importlib.import_module("HyperEvalSR.algorithms")
    except Exception as e:  # noqa: BLE001
        return None, f"cannot import the peer: {e!r}"
    finally:
        sys.path.remove(target)
    orig = alg.fspecial_gauss

    def fspecial_gauss(size, sigma):  # the crash: gaussian_down_sample passes (w, w) as the size
        return orig(int(size[0]) if isinstance(size, tuple) else size, sigma)

    alg.fspecial_gauss = fspecial_gauss
    # Float output: the module's final ``np.uint8(Out * 255)`` becomes ``Out * 255`` (float).
    shim = types.ModuleType("numpy_float_out")
    shim.__dict__.update({k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    shim.uint8 = lambda a: np.asarray(a, dtype=np.float64)
    alg.np = shim

    def run(msi_hwc: np.ndarray, hsi_hwc: np.ndarray, sensor=None) -> np.ndarray:
        """The peer's call; with ``sensor`` its SRF estimate and Gaussian degradation are replaced
        by the known SRF (offset 0) and PSF/phase operator (the issue's "carefully run CNMF")."""
        if sensor is None:
            with contextlib.redirect_stdout(io.StringIO()):  # it prints kernel shapes
                return alg.CNMF(msi_hwc.copy(), hsi_hwc.copy()) / 255.0
        import torch

        from hyperfuse.physics.sensor import FusionPhysics

        phys = FusionPhysics(sensor)
        R = np.asarray(sensor.srf, dtype=np.float64)

        def known_down(data, w, mask=0):
            x = torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1)))[None].float()
            return phys.spatial(x)[0].double().numpy().transpose(1, 2, 0)

        saved = alg.estR, alg.gaussian_down_sample
        alg.estR = lambda HS, MS, mask=0: np.hstack([R, np.zeros((R.shape[0], 1))])
        alg.gaussian_down_sample = known_down
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return alg.CNMF(msi_hwc.copy(), hsi_hwc.copy()) / 255.0
        finally:
            alg.estR, alg.gaussian_down_sample = saved

    return run, "patched in memory: fspecial_gauss tuple size, float output"


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def timed_median(fn, repeat: int):
    """(last output, median wall s, median CPU s) over ``repeat`` calls."""
    runs = [timed(fn) for _ in range(max(1, repeat))]
    return runs[-1][0], float(np.median([r[1] for r in runs])), float(np.median([r[2] for r in runs]))


def peer_main(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from hyperfuse.methods.classical.cnmf import CNMF, CNMFConfig
    from hyperfuse.metrics import psnr, sam
    from hyperfuse.physics.functional import upsample

    peer, note = (None, "skipped (--no-peer)") if args.no_peer else load_peer(args.peer_dir, args.peer_install)
    if peer is None:
        print(f"peer column skipped: {note}")
    rows = []
    for case in args.cases.split(","):
        name, r = case.split("x")
        r = int(r)
        made = protocol_pair(name, r, seed=args.seed)
        if made is None:
            print(f"{case}: data not found under {data_root()}, skipped")
            continue
        X, pair, sensor = made
        hsi, msi, ref = pair.hsi.float(), pair.msi.float(), pair.reference.float()

        def score(xh):
            xh = xh.float().clamp(0, None)
            return float(psnr(xh, ref, data_range=1.0)), float(sam(xh, ref))

        row = dict(scene=name, ratio=r, L=int(ref.shape[1]), l=int(msi.shape[1]), H=int(ref.shape[2]),
                   threads=args.threads, loadavg_1min=os.getloadavg()[0], issue=ISSUE.get((name, r)))
        fin = dict(final_ms_iters=None)  # last MS A-loop with E_m = R E (see CNMFConfig)
        for key, cfg, sens in (("ours_est", CNMFConfig(estimate_srf=True, **fin), sensor),
                               ("ours_known", CNMFConfig(**fin), sensor),
                               ("ours_est_validated", CNMFConfig(estimate_srf=True, **VALIDATED), sensor),
                               ("ours_known_validated", CNMFConfig(**VALIDATED), sensor),
                               ("ours_est_spec_default", CNMFConfig(estimate_srf=True), sensor),
                               ("ours_known_spec_default", CNMFConfig(), sensor),
                               ("ours_est_reference", CNMFConfig(estimate_srf=True, **REFERENCE_VCA), sensor),
                               ("ours_known_reference", CNMFConfig(**REFERENCE_VCA), sensor)):
            out, wall, cpu = timed_median(lambda: CNMF(cfg).fuse(hsi, msi, sens), args.repeat)
            ps, sa = score(out.cube)
            row[key] = dict(psnr=ps, sam=sa, wall_s=wall, cpu_s=cpu, p=out.info["p"],
                            fusion_s=out.info["timings"]["total"])
        up, wall, cpu = timed(lambda: upsample(hsi, r, "bicubic"))
        ps, sa = score(up)
        row["bicubic"] = dict(psnr=ps, sam=sa, wall_s=wall, cpu_s=cpu)
        if peer is not None:
            h_np = hsi[0].double().numpy().transpose(1, 2, 0).copy()
            m_np = msi[0].double().numpy().transpose(1, 2, 0).copy()

            def peer_runs(*sens) -> dict:
                """The peer's call ``--peer-runs`` times (its VCA draws from NumPy's legacy global
                RNG: seeds 0..K-1), median and PSNR range."""
                try:
                    runs = []
                    for k in range(args.peer_runs):
                        np.random.seed(k)  # noqa: NPY002
                        out, wall, cpu = timed(lambda: peer(m_np, h_np, *sens))
                        ps, sa = score(torch.from_numpy(out.transpose(2, 0, 1).copy())[None])
                        runs.append(dict(seed=k, psnr=ps, sam=sa, wall_s=wall, cpu_s=cpu))
                except Exception as e:  # noqa: BLE001
                    return dict(error=repr(e))
                med = {k: float(np.median([r[k] for r in runs])) for k in ("psnr", "sam", "wall_s", "cpu_s")}
                return dict(**med, psnr_min=min(r["psnr"] for r in runs),
                            psnr_max=max(r["psnr"] for r in runs), runs=runs)

            row["peer"] = peer_runs()
            row["peer_known"] = peer_runs(sensor)  # the issue's "carefully run CNMF"
        rows.append(row)
        print(fmt_row(row), flush=True)
    print_peer_table(rows)
    out = Path(args.out_peer)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"protocol": "issue 4", "peer": PEER_PKG, "peer_note": note,
                               "threads": args.threads, "cpu_count": os.cpu_count(),
                               "command": " ".join([Path(sys.executable).name, *sys.argv]),
                               "results": rows}, indent=2))
    print(f"wrote {out}")


def noise_main(args) -> None:
    """Known-sensor PSNR of the current, validated and reference-VCA settings over noise realisations 0..K-1
    (the simulation's rng), to put one realisation's figure in context."""
    import torch

    torch.set_num_threads(args.threads)
    from hyperfuse.methods.classical.cnmf import CNMF, CNMFConfig
    from hyperfuse.metrics import psnr

    rows = []
    print(f"{'scene':<10} {'setting':<10} {'PSNR per noise seed':<40} {'mean':>6}  target")
    for case in args.cases.split(","):
        name, r = case.split("x")
        for tag, setting in (("current", dict(final_ms_iters=None)), ("validated", VALIDATED),
                             ("reference", REFERENCE_VCA)):
            v = []
            for seed in range(args.noise_seeds):
                made = protocol_pair(name, int(r), seed=seed)
                if made is None:
                    break
                _, pair, sensor = made
                x = CNMF(CNMFConfig(**setting)).fuse(pair.hsi.float(), pair.msi.float(), sensor).cube
                v.append(float(psnr(x.float().clamp(0, None), pair.reference.float(), data_range=1.0)))
            if not v:
                print(f"{case}: data not found under {data_root()}, skipped")
                break
            rows.append(dict(scene=name, ratio=int(r), setting=tag, psnr=v, mean=float(np.mean(v))))
            print(f"{case:<10} {tag:<10} {' '.join(f'{a:.2f}' for a in v):<40} {np.mean(v):6.2f}  "
                  f"{ISSUE[(name, int(r))]['known']:.1f}", flush=True)
    out = Path(args.out_peer).with_name("bench_cnmf_noise.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"protocol": "issue 4", "validated": VALIDATED, "reference": REFERENCE_VCA,
                               "results": rows}, indent=2))
    print(f"wrote {out}")


def parity_main(args) -> None:
    """Our §3 loops with REFERENCE_VCA against the peer's code, sensor known on both sides, on two
    fresh dead-leaves scenes (seeds 800001-2, in no other table): once with each side's own VCA
    draws (seeds 0-3), once with the peer handed our VCA output (indices and projected spectra)."""
    import importlib
    import warnings

    import torch

    torch.set_num_threads(args.threads)
    import bench_scalmu as bs

    from hyperfuse.methods.classical.cnmf import CNMF, CNMFConfig
    from hyperfuse.metrics import psnr
    from hyperfuse.physics import make_sensor, simulate
    from hyperfuse.unmix import vca

    peer, note = load_peer(args.peer_dir, args.peer_install)
    if peer is None:
        print(f"parity skipped: {note}")
        return
    sys.path.insert(0, args.peer_dir)
    alg = importlib.import_module("HyperEvalSR.algorithms")
    own_vca = alg.vca
    rows = []
    for k, seed in enumerate((800001, 800002)):
        sc = bs._dead_leaves_case(f"parity{seed}", seed, k, 6 + k)
        X = torch.from_numpy(np.ascontiguousarray(np.moveaxis(sc["cube"], -1, 0)))[None].float()
        for r in (4, 8):
            sensor = make_sensor(r, srf=sc["srf"], psf_sigma=0.4247 * r, psf_size=2 * r + 1, phase=r // 2,
                                 boundary="reflect", snr_hsi=35.0, snr_msi=35.0)
            pair = simulate(X, sensor, rng=0)
            hsi, msi, ref = pair.hsi.float(), pair.msi.float(), pair.reference.float()
            h_np = hsi[0].double().numpy().transpose(1, 2, 0).copy()
            m_np = msi[0].double().numpy().transpose(1, 2, 0).copy()

            def score(x):
                return float(psnr(x.float().clamp(0, None), ref, data_range=1.0))

            row = dict(scene=sc["name"], ratio=r, ours=[], peer_own_vca=[], peer_our_vca=[])
            for v in range(4):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    row["ours"].append(score(CNMF(CNMFConfig(vca_seed=v, **REFERENCE_VCA)).fuse(hsi, msi, sensor).cube))
                    np.random.seed(v)  # noqa: NPY002
                    alg.vca = own_vca
                    row["peer_own_vca"].append(score(torch.from_numpy(peer(m_np, h_np, sensor).transpose(2, 0, 1).copy())[None]))
                    idx, spectra = vca(hsi[0].double().reshape(hsi.shape[1], -1).numpy(), 30, rng=v, draw="uniform",
                                       snr_rule="reference", return_spectra=True)
                    alg.vca = lambda R, p, spectra=spectra, idx=idx: (spectra, list(idx))
                    try:
                        row["peer_our_vca"].append(score(torch.from_numpy(peer(m_np, h_np, sensor).transpose(2, 0, 1).copy())[None]))
                    finally:
                        alg.vca = own_vca
            row["max_abs_diff_same_vca"] = float(np.max(np.abs(np.subtract(row["ours"], row["peer_our_vca"]))))
            rows.append(row)
            print(f"{sc['name']} x{r}: ours {np.round(row['ours'], 2)} | peer, our VCA {np.round(row['peer_our_vca'], 2)} "
                  f"(max |diff| {row['max_abs_diff_same_vca']:.3f} dB) | peer, own VCA {np.round(row['peer_own_vca'], 2)} "
                  f"mean {np.mean(row['peer_own_vca']):.2f} vs ours {np.mean(row['ours']):.2f}", flush=True)
    out = Path(args.out_peer).with_name("bench_cnmf_parity.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"reference_vca": REFERENCE_VCA, "peer": PEER_PKG, "results": rows}, indent=2))
    print(f"wrote {out}")


def fmt_row(row: dict) -> str:
    def cell(k):
        v = row.get(k)
        if not v or "psnr" not in v:
            return f"{'-':>14}"
        return f"{v['psnr']:>7.2f}/{v['sam']:<5.2f} "

    def t(k):
        v = row.get(k)
        return f"{'-':>11}" if not v or "wall_s" not in v else f"{v['wall_s']:>5.2f}/{v['cpu_s']:<5.2f}"

    pk = row.get("peer") or {}

    def ratio(k, c="wall_s"):
        return f"{pk[c] / row[k][c]:.1f}" if c in pk and k in row else "-"

    speed = "/".join(ratio(k) for k in ("ours_est", "ours_known", "ours_est_validated", "ours_known_validated"))
    cpu = "/".join(ratio(k, "cpu_s") for k in ("ours_est", "ours_known", "ours_est_validated",
                                               "ours_known_validated"))
    return (f"{row['scene'] + ' x' + str(row['ratio']):<10}{cell('ours_est')}{cell('ours_known')}"
            f"{cell('ours_est_validated')}{cell('ours_known_validated')}{cell('peer')}"
            f"{cell('bicubic')} {t('ours_est')} {t('ours_known')} {t('ours_est_validated')} "
            f"{t('ours_known_validated')} {t('peer')} {speed:>19} {cpu:>19}")


def _ours_cells(row: dict, columns: tuple[tuple[str, str], ...]) -> list[str]:
    """"tag PSNR / SAM, wall s, peer/ours wall ratio" for each of our columns the row has."""
    peer = row.get("peer") or {}
    cells = []
    for key, tag in columns:
        v = row.get(key) or {}
        if "psnr" in v:
            ratio = f", {peer['wall_s'] / v['wall_s']:.1f}x" if "wall_s" in peer else ""
            cells.append(f"{tag} {v['psnr']:.2f} / {v['sam']:.2f}, {v['wall_s']:.2f} s{ratio}")
    return cells


def print_peer_table(rows: list[dict]) -> None:
    print(f"{'scene':<10}{'ours est.':>14}{'ours known':>14}{'valid. est.':>14}{'valid. known':>14}"
          f"{'peer float':>14}{'bicubic':>14} "
          f"{'est. s w/c':>11} {'known s w/c':>11} {'v.est s w/c':>11} {'v.kn. s w/c':>11} {'peer s w/c':>11} "
          f"{'peer/ours':>19} {'cpu ratio':>19}")
    for row in rows:
        print(fmt_row(row))
    print("PSNR dB / SAM deg; times wall/CPU seconds of the fusion call (ours: median of --repeat calls; peer: "
          "median of --peer-runs calls with NumPy seeds 0..K-1, PSNR range "
          + ", ".join(f"{r['scene']} x{r['ratio']} {r['peer']['psnr_min']:.2f}-{r['peer']['psnr_max']:.2f}"
                      for r in rows if "psnr_min" in r.get("peer", {})) + "); peer/ours = wall-time ratio "
          "(est., known, validated est., validated known), cpu ratio = the same on process CPU time (robust to a "
          "shared machine). ours = CNMFConfig(final_ms_iters=None); validated = CNMFConfig(**VALIDATED) "
          f"{VALIDATED}; §3 default (no final MS loop), known "
          "sensor: " + ", ".join(f"{r['scene']} x{r['ratio']} {r['ours_known_spec_default']['psnr']:.2f}" for r in rows)
          + ".\nIssue targets: known within 0.3 dB of 42.2/40.2/49.8/49.2; est. >= peer; >= 5x faster.")
    print("Package defaults (CNMFConfig(), the §3 reference; what `fuse --method cnmf` runs), PSNR / SAM, "
          "wall s, peer/ours wall ratio:")
    for row in rows:
        cells = _ours_cells(row, (("ours_est_spec_default", "SRF estimated"), ("ours_known_spec_default", "known")))
        print(f"  {row['scene']} x{row['ratio']}: " + "; ".join(cells))
    print("Reference mode (CNMFConfig(**REFERENCE_VCA): the §3 loops with the reference code's VCA "
          f"{REFERENCE_VCA}; x = the peer's call time / ours) and the peer's own code with the sensor known "
          "(median of its runs, range):")
    for row in rows:
        cells = _ours_cells(row, (("ours_known_reference", "ours known"), ("ours_est_reference", "ours est.")))
        pk = row.get("peer_known") or {}
        if "psnr" in pk:
            cells.append(f"peer known {pk['psnr']:.2f} / {pk['sam']:.2f} ({pk['psnr_min']:.2f}-{pk['psnr_max']:.2f}), "
                         f"{pk['wall_s']:.2f} s")
        print(f"  {row['scene']} x{row['ratio']}: " + "; ".join(cells))
    print("Issue-4 known-sensor targets (within 0.3 dB or above), reference mode, sensor known:")
    for row in rows:
        iss, v = row.get("issue"), row.get("ours_known_reference") or {}
        if iss and "psnr" in v:
            d = v["psnr"] - iss["known"]
            print(f"  {row['scene']} x{row['ratio']}: {v['psnr']:.2f} vs {iss['known']:.1f} ({d:+.2f} dB) "
                  f"{'met' if d >= -0.3 else 'NOT met'}")
    for row in rows:
        iss = row.get("issue")
        if iss:
            print(f"  {row['scene']} x{row['ratio']}: issue peer {iss['peer'][0]:.2f}/{iss['peer'][1]:.2f}, "
                  f"known-sensor CNMF {iss['known']:.1f}, bicubic {iss['bicubic']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", default="cave,large")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "bench_cnmf.json"))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--peer", action="store_true", help="issue-4 comparison with hyperevalsr (see docstring)")
    ap.add_argument("--peer-dir", default="/tmp/hyperevalsr_peer")
    ap.add_argument("--peer-install", action=argparse.BooleanOptionalAction, default=True,
                    help="pip install the peer into --peer-dir if it is not there")
    ap.add_argument("--no-peer", action="store_true", help="with --peer: run our columns only")
    ap.add_argument("--cases", default="jasperx4,jasperx8,samsonx4,samsonx8")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="with --peer: timed calls of ours (median)")
    ap.add_argument("--peer-runs", type=int, default=5,
                    help="with --peer: peer calls, NumPy global seeds 0..K-1 (median; its VCA is random)")
    ap.add_argument("--out-peer", default=str(HERE / "results" / "bench_cnmf_peer.json"))
    ap.add_argument("--parity", action="store_true",
                    help="with --peer: reference-mode parity with the peer's code on fresh synthetic scenes")
    ap.add_argument("--noise-seeds", type=int, default=0,
                    help="with --peer: instead, known-sensor PSNR over this many noise realisations")
    args = ap.parse_args()
    if args.peer and args.parity:
        if "--threads" not in sys.argv:
            args.threads = 1
        parity_main(args)
        return
    if args.peer and args.noise_seeds:
        if "--threads" not in sys.argv:
            args.threads = 1
        noise_main(args)
        return
    if args.peer:
        if "--threads" not in sys.argv:
            args.threads = 1
        peer_main(args)
        return
    if args.worker:
        worker(args.worker, args.data, args.threads)
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenes.split(","):
            cfg = SCENES[name]
            X, hsi, msi, sensor = make_pair(**cfg)
            path = Path(tmp) / f"{name}.npz"
            np.savez(path, X=X.numpy(), hsi=hsi.numpy(), msi=msi.numpy(), sensor=sensor.to_json())
            del X, hsi, msi
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", name, "--data", str(path),
                 "--threads", str(args.threads)],
                capture_output=True, text=True, check=True,
            )
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    hdr = (f"{'scene':<7}{'HxW xL, l, r':<20}{'MS it ms':>9}{'GFLOP/s':>9}{'GB/s':>7}{'alt ms':>8}"
           f"{'np f64 ms':>10}{'run s':>8}{'cpu s':>7}{'peak MB':>9}{'PSNR':>7}{'load':>6}")
    print(hdr)
    for r in results:
        geo = f"{r['size']}^2x{r['L']}, {r['l']}, x{r['ratio']}"
        alt = "-" if r["ms_alt_iter_ms"] is None else f"{r['ms_alt_iter_ms']:.1f}"
        print(f"{r['scene']:<7}{geo:<20}{r['ms_a_iter_ms']:>9.1f}{r['ms_a_gflops']:>9.2f}"
              f"{r['ms_a_gbps']:>7.2f}{alt:>8}{r['numpy_f64_iter_ms']:>10.1f}{r['wall_s']:>8.2f}"
              f"{r['cpu_s']:>7.1f}{r['peak_rss_mb']:>9.0f}{r['psnr_db']:>7.2f}{r['loadavg_1min'][0]:>6.1f}")
    print("MS it: data-first A-only iteration; FLOP floor 4p(l+1)N+2pN+3lN "
          f"({results[0]['ms_a_flop'] / 1e6:.1f} M for {results[0]['scene']}); "
          "GB/s against 4N(3p+2(l+1)+l) bytes.")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "cpu_count": os.cpu_count()}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
