"""Large-scene tiled fusion benchmark (issue 9): peak memory, throughput, 1 → 2 workers, kill + resume.

A synthetic dead-leaves scene (default 2048 × 2048 × 128, ×4, 8-band MSI) is generated on the
fly into a work folder as memory-mapped ``.npy`` files (never committed); each fusion run is a
separate process reading the inputs lazily and writing a zarr output, so its peak RSS is its
own. Example (full size; long on 2 shared cores)::

    python benchmarks/bench_large.py --size 2048 --bands 128 --methods cnmf scalmu \
        --workers 1 2 --tile 512 --out benchmarks/results/bench_large.json

Quick run::

    python benchmarks/bench_large.py --size 512 --bands 64 --methods cnmf --inner-iters 50
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def generate(work: Path, size: int, bands: int, ratio: int, msi_bands: int, p: int, seed: int) -> dict:
    """Write hsi.npy (h, w, L), msi.npy (H, W, l) and sensor.json into ``work``; returns info."""
    import torch

    from hyperfuse.data.spectra import builtin_spectra
    from hyperfuse.data.synthetic import dead_leaves_abundances
    from hyperfuse.physics.sensor import FusionPhysics, make_sensor
    from hyperfuse.physics.srf import box_srf

    t0 = time.perf_counter()
    wl = np.linspace(400, 2400, bands)
    A, _ = dead_leaves_abundances((size, size), p, rng=seed)
    E = builtin_spectra(wl, p, rng=seed + 1).astype(np.float32)
    spec = make_sensor(ratio, srf=box_srf(bands, msi_bands))
    ph = FusionPhysics(spec)
    h = size // ratio
    hsi = np.lib.format.open_memmap(work / "hsi.npy", "w+", np.float32, (h, h, bands))
    msi = np.lib.format.open_memmap(work / "msi.npy", "w+", np.float32, (size, size, msi_bands))
    K = int(max(spec.psf.shape))
    halo = ((K + ratio) // ratio + 1) * ratio
    strip = 256
    Et = torch.from_numpy(E)
    for y in range(0, size, strip):
        y1 = min(y + strip, size)
        a, b = max(0, y - halo), min(size, y1 + halo)
        X = torch.einsum("lp,phw->lhw", Et, torch.from_numpy(A[:, a:b]))[None]
        msi[y:y1] = ph.spectral(X[:, :, y - a : y1 - a])[0].permute(1, 2, 0).numpy()
        lr = ph.spatial(X)[0]
        hsi[y // ratio : y1 // ratio] = lr[:, (y - a) // ratio : (y - a) // ratio + (y1 - y) // ratio].permute(1, 2, 0).numpy()
    hsi.flush()
    msi.flush()
    (work / "sensor.json").write_text(json.dumps(spec.to_dict(), default=lambda o: np.asarray(o).tolist()))
    np.save(work / "endmembers.npy", E)
    return {"generate_s": time.perf_counter() - t0, "size": size, "bands": bands, "ratio": ratio,
            "msi_bands": msi_bands, "p": p}


def score(work: Path, out: Path, size: int, p: int, seed: int, strip: int = 256) -> dict:
    """PSNR (data range 1) and max |error| of a zarr output against the generating E·A, strip by strip."""
    import zarr

    from hyperfuse.data.synthetic import dead_leaves_abundances

    E = np.load(work / "endmembers.npy").astype(np.float64)
    A, _ = dead_leaves_abundances((size, size), p, rng=seed)
    cube = zarr.open_group(str(out), mode="r")["cube"]
    se, n, worst = 0.0, 0, 0.0
    for y in range(0, size, strip):
        X = np.einsum("lp,phw->hwl", E, A[:, y : y + strip])
        err = np.asarray(cube[y : y + strip], dtype=np.float64) - X
        se += float((err**2).sum())
        n += err.size
        worst = max(worst, float(np.abs(err).max()))
    return {"psnr_db": 10 * np.log10(1.0 / (se / n)), "max_abs_err": worst}


def max_abs_diff(a: Path, b: Path, strip: int = 256) -> float:
    """max |a − b| of two zarr outputs, strip by strip."""
    import zarr

    za, zb = zarr.open_group(str(a), mode="r")["cube"], zarr.open_group(str(b), mode="r")["cube"]
    return max(float(np.abs(np.asarray(za[y : y + strip]) - np.asarray(zb[y : y + strip])).max())
               for y in range(0, za.shape[0], strip))


def run_one(args: argparse.Namespace) -> None:
    """Child process: one tiled fusion; prints a JSON line."""
    import torch

    from hyperfuse.methods import get_method
    from hyperfuse.records import peak_memory_mb
    from hyperfuse.tiling import fuse_tiled
    from hyperfuse.tiling.dask import fuse_tiled_dask
    from hyperfuse.types import SensorSpec

    work = Path(args.work)
    spec = SensorSpec.from_dict(json.loads((work / "sensor.json").read_text()))
    kw = {"inner_iters": args.inner_iters} if args.method == "cnmf" else {}
    if args.method in ("cnmf", "scalmu") and args.p:
        kw["n_endmembers"] = args.p
    m = get_method(args.method, **kw)
    hsi = np.load(work / "hsi.npy", mmap_mode="r")
    msi = np.load(work / "msi.npy", mmap_mode="r")
    out = Path(args.run_out)
    done: list[int] = []

    def progress(d: int, total: int) -> None:
        done.append(d)
        print(json.dumps({"progress": d, "total": total}), flush=True)

    t0, c0 = time.perf_counter(), time.process_time()
    if args.run_workers <= 1:
        torch.set_num_threads(args.threads)
        fuse_tiled(m, hsi, msi, spec, tile=args.tile, overlap=args.overlap, out=out, progress=progress)
    else:
        fuse_tiled_dask(m, hsi, msi, spec, tile=args.tile, overlap=args.overlap, out=out,
                        scheduler="threads", n_workers=args.run_workers, threads_per_task=1,
                        progress=progress)
    wall = time.perf_counter() - t0
    H = hsi.shape[0] * spec.ratio
    print(json.dumps({"result": {"wall_s": wall, "cpu_s": time.process_time() - c0,
                                 "mpix_per_s": H * H / 1e6 / wall, "peak_rss_mb": peak_memory_mb(),
                                 "load_avg_1min_end": os.getloadavg()[0]}}), flush=True)


def _child(args: argparse.Namespace, method: str, workers: int, out: Path, kill_after: int | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", "--work", str(args.work), "--method", method,
           "--run-workers", str(workers), "--run-out", str(out), "--tile", str(args.tile),
           "--overlap", str(args.overlap), "--inner-iters", str(args.inner_iters),
           "--threads", str(args.threads), "--p", str(args.p or 0)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    res: dict = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        msg = json.loads(line)
        if "progress" in msg and kill_after is not None and msg["progress"] >= kill_after:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return {"killed_after_tiles": msg["progress"], "total": msg["total"]}
        if "result" in msg:
            res = msg["result"]
    if proc.wait() != 0:
        raise RuntimeError(f"child failed: {' '.join(cmd)}")
    return res


def _remove_output(out: Path) -> None:
    """Delete an output, its completion marker and its tile scratch folder."""
    from hyperfuse.tiling import complete_marker, scratch_dir

    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(scratch_dir(out), ignore_errors=True)
    complete_marker(out).unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--bands", type=int, default=128)
    ap.add_argument("--ratio", type=int, default=4)
    ap.add_argument("--msi-bands", type=int, default=8)
    ap.add_argument("--p", type=int, default=8, help="endmembers of the scene (and CNMF's / SCALMU's p; 0: their default)")
    ap.add_argument("--methods", nargs="+", default=["cnmf", "scalmu"])
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--overlap", type=int, default=32)
    ap.add_argument("--inner-iters", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the 1-worker run")
    ap.add_argument("--no-resume-test", action="store_true")
    ap.add_argument("--resume-workers", type=int, default=1, help="workers of the kill-and-resume run")
    ap.add_argument("--kill-after", type=int, default=2, help="kill the resume run after this many tiles")
    ap.add_argument("--skip-generate", action="store_true", help="reuse the scene already in --work")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    ap.add_argument("--run-workers", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--run-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_one(args)
        return
    tmp = args.work is None
    args.work = Path(tempfile.mkdtemp(prefix="hf-bench-large-")) if tmp else args.work
    args.work.mkdir(parents=True, exist_ok=True)
    report: dict = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                               if not k.startswith("run") and k not in ("child", "method")}}
    try:
        if args.skip_generate and (args.work / "sensor.json").is_file():
            report["scene"] = {"reused": str(args.work)}
        else:
            report["scene"] = generate(args.work, args.size, args.bands, args.ratio, args.msi_bands, args.p, args.seed)
        print(json.dumps(report["scene"]), flush=True)
        runs = []
        for method in args.methods:
            from hyperfuse.methods import list_methods

            if method not in list_methods():
                runs.append({"method": method, "status": "unavailable"})
                continue
            failed = False
            for w in args.workers:
                out = args.work / f"{method}-w{w}.zarr"
                _remove_output(out)  # a timed run starts from nothing (no resume of an earlier run)
                try:
                    res = {"method": method, "workers": w, **_child(args, method, w, out)}
                    res.update(score(args.work, out, args.size, args.p, args.seed))
                except RuntimeError as exc:
                    res = {"method": method, "workers": w, "status": "failed", "error": str(exc)}
                    failed = True
                print(json.dumps(res), flush=True)
                runs.append(res)
            if not args.no_resume_test and not failed:
                rw = args.resume_workers
                ref = next((args.work / f"{method}-w{w}.zarr" for w in args.workers
                            if (args.work / f"{method}-w{w}.zarr").exists()), None)
                out = args.work / f"{method}-resume.zarr"
                _remove_output(out)
                k = _child(args, method, rw, out, kill_after=args.kill_after)
                t0 = time.perf_counter()
                res = _child(args, method, rw, out)
                diff = max_abs_diff(ref, out) if ref is not None else None
                entry = {"method": method, "resume": True, "workers": rw, **k,
                         "resumed_wall_s": time.perf_counter() - t0,
                         "max_abs_diff_vs_uninterrupted": diff, **res,
                         **score(args.work, out, args.size, args.p, args.seed)}
                print(json.dumps(entry), flush=True)
                runs.append(entry)
        report["runs"] = runs
    finally:
        if tmp:
            shutil.rmtree(args.work, ignore_errors=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
