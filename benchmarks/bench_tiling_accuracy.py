"""Tiled vs untiled accuracy (issue 9): PSNR of CNMF, SCALMU and GSA both ways on scenes that fit.

Dead-leaves scenes (31 bands, 400–1000 nm, ×4, box SRFs of 3, 4 and 8 MSI bands), fused whole
and with :func:`hyperfuse.tiling.fuse_tiled`; prints a table and writes JSON. The acceptance
is |PSNR(tiled) − PSNR(untiled)| ≤ 0.1 dB. ``--sample-pixels`` shrinks CNMF's E_m pixel sample
so that the tiles replay a trajectory estimated on a subset of the scene (the regime of scenes
larger than 2¹⁷ pixels)::

    python benchmarks/bench_tiling_accuracy.py [--size 384] [--tile 128] [--overlap 32]
        [--sample-pixels 4096] [--threads 1] [--out tiling_accuracy.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import numpy as np
import torch

SCENES = [(3, 6, 1), (4, 8, 2), (8, 8, 3)]  # (MSI bands, endmembers, seed)


def scene(size: int, l: int, p: int, seed: int):  # type: ignore[no-untyped-def]
    from hyperfuse.data.synthetic import dead_leaves_scene
    from hyperfuse.physics.sensor import FusionPhysics, make_sensor
    from hyperfuse.physics.srf import box_srf

    sc = dead_leaves_scene((size, size), np.linspace(400, 1000, 31), n_endmembers=p, rng=seed)
    x = torch.from_numpy(sc.cube)[None]
    s = make_sensor(4, srf=box_srf(31, l))
    ph = FusionPhysics(s)
    return x, ph.spatial(x), ph.spectral(x), s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--tile", type=int, default=128)
    ap.add_argument("--overlap", type=int, default=32)
    ap.add_argument("--sample-pixels", type=int, default=2**16, help="CNMF's E_m pixel sample (tiled)")
    ap.add_argument("--methods", nargs="+", default=["cnmf", "scalmu", "gsa"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from hyperfuse.methods import get_method
    from hyperfuse.metrics import psnr
    from hyperfuse.tiling import fuse_tiled
    from hyperfuse.tiling import globals as tiling_globals

    tiling_globals.CNMFGlobal.__init__ = functools.partialmethod(  # type: ignore[method-assign]
        tiling_globals.CNMFGlobal.__init__, sample_pixels=args.sample_pixels
    )
    rows = []
    print(f"| method | MSI bands | p | untiled dB | tiled dB | Δ dB | untiled s | tiled s |  (size {args.size}, "
          f"tile {args.tile}/{args.overlap}, E_m sample {args.sample_pixels} px)")
    print("|---|---|---|---|---|---|---|---|")
    for l, p, seed in SCENES:
        x, hsi, msi, s = scene(args.size, l, p, seed)
        for name in args.methods:
            m = get_method(name)
            t = time.perf_counter()
            full = float(psnr(m.fuse(hsi, msi, s).cube, x, data_range=1.0)[0])
            t_full = time.perf_counter() - t
            t = time.perf_counter()
            tiled = float(psnr(fuse_tiled(m, hsi, msi, s, tile=args.tile, overlap=args.overlap), x, data_range=1.0)[0])
            t_tiled = time.perf_counter() - t
            row = {"method": name, "msi_bands": l, "p": p, "seed": seed, "untiled_db": full, "tiled_db": tiled,
                   "delta_db": tiled - full, "untiled_s": t_full, "tiled_s": t_tiled}
            rows.append(row)
            print(f"| {name} | {l} | {p} | {full:.4f} | {tiled:.4f} | {tiled - full:+.4f} | {t_full:.1f} | {t_tiled:.1f} |",
                  flush=True)
    worst = max(abs(r["delta_db"]) for r in rows)
    print(f"worst |Δ| = {worst:.4f} dB ({'≤' if worst <= 0.1 else '>'} 0.1 dB)")
    if args.out is not None:
        args.out.write_text(json.dumps({"config": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
