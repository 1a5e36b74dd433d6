"""Probe (docs/scalmu.md §4.11): would a reduced-resolution score choose SCALMU's prior scale α?

Wald's protocol on the inputs, by a factor f: degrade the HSI and the MSI by f (Gaussian PSFs chosen
so that the reduced pair follows the sensor's own model), fuse the reduced pair at every α, bring the
result back to the HSI grid and score it against the HSI (SNR, dB) — beside each α's true gain over the
matched CNMF on the full pair. Selection data only (the synthetic validation scenes or the Urban crop).

    python benchmarks/scalmu_reduced_resolution_probe.py val|urban [F=2] [NOISE_SEEDS=1]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_scalmu import _metrics, urban_scenes, validation_scenes  # noqa: E402

from hyperfuse.methods.unrolled.scalmu import SCALMU, SCALMUConfig, _choose_p  # noqa: E402
from hyperfuse.physics.sensor import FusionPhysics, make_sensor, simulate  # noqa: E402

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
FWHM_SIGMA = 0.4247  # Gaussian sigma of a PSF whose FWHM is one pixel


def degrade(x: torch.Tensor, sigma: float, ratio: int) -> torch.Tensor:
    """Gaussian PSF of ``sigma`` then decimation by ``ratio`` (the package's sensor model)."""
    return FusionPhysics(make_sensor(ratio, psf_sigma=sigma)).spatial(x)


def snr(ref: torch.Tensor, est: torch.Tensor) -> float:
    ref, est = ref.double(), est.double()
    return float(10 * torch.log10(ref.pow(2).sum() / (ref - est).pow(2).sum()))


def psnr(ref: torch.Tensor, est: torch.Tensor, r: int) -> float:
    return _metrics(est, ref, r)["psnr"]


def probe(which: str, f: int, n_seeds: int) -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    for sc in validation_scenes() if which == "val" else urban_scenes():
        x = torch.from_numpy(np.moveaxis(sc["cube"], -1, 0).copy())[None].float()
        for r in (4, 8):
            for seed in range(n_seeds):
                sensor = make_sensor(r, srf=sc["srf"], psf_sigma=FWHM_SIGMA * r, wavelengths=sc["wl"],
                                     msi_band_names=tuple(sc["bands"]), snr_hsi=35.0, snr_msi=35.0)
                pair = simulate(x, sensor, rng=seed)
                h, w = (n // f * f for n in pair.hsi.shape[-2:])
                hsi, msi = pair.hsi[..., :h, :w], pair.msi[..., : h * r, : w * r]
                # PSFs that make (hsi_f, msi_f) a pair of the same sensor one scale coarser, and the
                # kernel from the fused grid back to the HSI's (Gaussian variances add)
                hsi_f = degrade(hsi, FWHM_SIGMA * np.sqrt(f * f / (r * r) + f * f - 1), f)
                msi_f = degrade(msi, FWHM_SIGMA * f, f)
                back = FWHM_SIGMA * np.sqrt(r * r / (f * f) - 1)
                p = _choose_p(pair.hsi, SCALMUConfig())
                p_f = min(p, hsi_f.shape[-1] * hsi_f.shape[-2])
                score, gain = {}, {}
                base = SCALMU(SCALMUConfig(weights="neutral", n_endmembers=p)).fuse(pair.hsi, pair.msi, sensor)
                for a in ALPHAS:
                    reduced = SCALMU(SCALMUConfig(n_endmembers=p_f, prior_scale=a)).fuse(hsi_f, msi_f, sensor)
                    score[a] = snr(hsi, degrade(reduced.cube, back, r // f))
                    full = SCALMU(SCALMUConfig(n_endmembers=p, prior_scale=a)).fuse(pair.hsi, pair.msi, sensor)
                    gain[a] = psnr(pair.reference, full.cube, r) - psnr(pair.reference, base.cube, r)
                pick, best = max(ALPHAS, key=score.get), max(ALPHAS, key=gain.get)
                print(sc["name"], f"x{r}", f"n{seed}", f"{len(sc['bands'])} bands", "score:",
                      " ".join(f"{score[a]:.2f}" for a in ALPHAS), "| gain:",
                      " ".join(f"{gain[a]:+.2f}" for a in ALPHAS),
                      f"| pick {pick:g} best {best:g} regret {gain[best] - gain[pick]:.3f}", flush=True)


if __name__ == "__main__":
    argv = sys.argv[1:]
    probe(argv[0], int(argv[1]) if len(argv) > 1 else 2, int(argv[2]) if len(argv) > 2 else 1)
