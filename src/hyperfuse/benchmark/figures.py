"""Benchmark figures, made from the saved cell outputs (``outputs/``, ``pairs/``).

Per (scene, sensor, seed): a comparison figure (inputs, reference and outputs in false
colour, per-pixel RMSE maps, spectra at chosen pixels; :func:`hyperfuse.viz.comparison_figure`)
and a SAM-map figure. Per run: PSNR-vs-time and SAM-vs-time scatter plots. Per blind method
and pair: estimated vs true SRF and PSF. Per unmixing-based method and pair: endmembers and
abundances.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["make_figures", "sam_map_figure", "scatter_figure", "sensor_figure"]


def _slug(*parts: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "_".join(str(p) for p in parts)).strip("-")


def _save(fig: Any, path: Path) -> Path:
    from .._atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _sam_deg(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per-pixel spectral angle in degrees for (H, W, L) arrays (0 where a vector is zero)."""
    num = np.sum(x * ref, axis=-1, dtype=np.float64)
    den = np.linalg.norm(x.astype(np.float64), axis=-1) * np.linalg.norm(ref.astype(np.float64), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(den > 0, num / np.where(den > 0, den, 1), 1.0)
    return np.degrees(np.arccos(np.clip(c, -1, 1)))


def sam_map_figure(path: str | Path, reference: np.ndarray, outputs: dict[str, np.ndarray],
                   *, title: str = "") -> Path:
    """Per-pixel SAM maps (degrees, shared colour scale) of every output, (H, W, L) arrays."""
    plt = _plt()
    maps = {n: _sam_deg(o, reference) for n, o in outputs.items()}
    # shared scale set by the typical method (the median of the 99th percentiles); worse maps saturate
    vmax = float(np.median([np.percentile(m, 99) for m in maps.values()])) or 1.0
    n = len(maps)
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n + 0.8, 3.2), constrained_layout=True, squeeze=False)
    im = None
    for ax, (name, m) in zip(axes[0], maps.items(), strict=False):
        im = ax.imshow(m, cmap="inferno", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{name}\nmean SAM {m.mean():.2f}°", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if im is not None:
        fig.colorbar(im, ax=list(axes[0]), fraction=0.046, label="SAM (deg)")
    if title:
        fig.suptitle(title)
    return _save(fig, Path(path))


def scatter_figure(path: str | Path, records: Sequence[dict[str, Any]], *, metric: str = "psnr",
                   title: str = "") -> Path:
    """Metric vs fusion wall time (log scale), one colour per method."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
    methods: list[str] = []
    for r in records:
        if r["method"] not in methods:
            methods.append(r["method"])
    cmap = plt.get_cmap("tab10")
    for k, m in enumerate(methods):
        pts = [(r["time"], r["metrics"][metric]) for r in records
               if r["method"] == m and r.get("time") and r["metrics"].get(metric) is not None
               and math.isfinite(r["metrics"][metric])]
        if pts:
            t, v = zip(*pts, strict=False)
            ax.scatter(t, v, label=m, color=cmap(k % 10), s=30, alpha=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("fusion wall time (s, log)")
    ax.set_ylabel({"psnr": "PSNR (dB)", "sam": "SAM (deg)"}.get(metric, metric))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{metric.upper()} vs time, every cell")
    return _save(fig, Path(path))


def sensor_figure(path: str | Path, *, srf_true: np.ndarray | None, srf_est: np.ndarray | None,
                  psf_true: np.ndarray | None, psf_est: np.ndarray | None,
                  wavelengths: np.ndarray | None = None, title: str = "") -> Path:
    """Estimated vs true SRF rows (lines: solid true, dashed estimate) and PSFs (images)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
    ax = axes[0]
    if srf_true is not None or srf_est is not None:
        L = (srf_true if srf_true is not None else srf_est).shape[1]  # type: ignore[union-attr]
        x = np.asarray(wavelengths) if wavelengths is not None and len(wavelengths) == L else np.arange(L)
        o = np.argsort(x)
        cmap = plt.get_cmap("tab10")
        for name, R, ls in (("true", srf_true, "-"), ("estimated", srf_est, "--")):
            if R is None:
                continue
            for i in range(R.shape[0]):
                ax.plot(x[o], R[i, o], ls, color=cmap(i % 10), lw=1.2,
                        label=name if i == 0 else None)
        ax.legend(fontsize=8)
    ax.set_title("SRF rows: true (solid) vs estimated (dashed)", fontsize=9)
    for a, (name, P) in zip(axes[1:], (("true PSF", psf_true), ("estimated PSF", psf_est)), strict=True):
        if P is not None:
            a.imshow(P, cmap="viridis", interpolation="nearest")
        a.set_title(name + ("" if P is None else f" {P.shape[0]}x{P.shape[1]}"), fontsize=9)
        a.set_xticks([])
        a.set_yticks([])
    if title:
        fig.suptitle(title)
    return _save(fig, Path(path))


def _load_npz(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError):
        return None


def _hwc(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(a, 0, -1))


def make_figures(cfg: Any, cells: Sequence[Any], records: Sequence[dict[str, Any] | None],
                 out: str | Path) -> dict[str, Path]:
    """Write every figure under ``out/figures``; return {label: path}."""
    from ..viz import comparison_figure, endmember_figure, rgb_bands

    out = Path(out)
    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    ok = [(c, r) for c, r in zip(cells, records, strict=True) if r is not None and r["status"] == "ok"]
    groups: dict[str, list[tuple[Any, dict[str, Any]]]] = {}
    for c, r in ok:
        groups.setdefault(c.pair_id, []).append((c, r))
    for pid, members in groups.items():
        pair = _load_npz(out / "pairs" / f"{pid}.npz")
        if pair is None:
            continue
        c0 = members[0][0]
        label = _slug(c0.scene_label, c0.sensor.name, f"s{c0.seed}")
        ref = _hwc(pair["reference"])
        wl = pair.get("wavelengths")
        outputs: dict[str, np.ndarray] = {}
        scores: dict[str, dict[str, float]] = {}
        extras: list[tuple[Any, dict[str, np.ndarray]]] = []
        for c, r in members:
            o = _load_npz(out / "outputs" / f"{c.id}.npz")
            if o is None:
                continue
            outputs[c.method.name] = _hwc(o["fused"])
            scores[c.method.name] = {k: float(v) for k, v in r["metrics"].items() if v is not None}
            extras.append((c, o))
        if not outputs:
            continue
        H, W = ref.shape[:2]
        pixels = [(min(H - 1, int(py * H)), min(W - 1, int(px * W))) for py, px in cfg.pixels]
        msi = _hwc(pair["msi"])
        title = f"{c0.scene_label} / {c0.sensor.name} (x{r['scale']})"
        files[f"compare_{label}"] = comparison_figure(
            figdir / f"compare_{label}.png", reference=ref, hsi=_hwc(pair["hsi"]), msi=msi,
            outputs=outputs, wavelengths=wl, msi_bands=rgb_bands(None, msi.shape[2]),
            scores=scores, pixels=pixels, title=title)
        files[f"sam_{label}"] = sam_map_figure(figdir / f"sam_{label}.png", ref, outputs,
                                               title=f"SAM maps: {title}")
        for c, o in extras:
            if "srf_est" in o or "psf_est" in o:
                name = f"sensor_{_slug(c.method.name)}_{label}"
                files[name] = sensor_figure(
                    figdir / f"{name}.png", srf_true=pair.get("srf"), srf_est=o.get("srf_est"),
                    psf_true=pair.get("psf"), psf_est=o.get("psf_est"), wavelengths=wl,
                    title=f"{c.method.name}: estimated vs true sensor, {title}")
            if "endmembers" in o and "abundances" in o:
                name = f"endmembers_{_slug(c.method.name)}_{label}"
                E, A = o["endmembers"], o["abundances"]
                if E.ndim == 2 and A.ndim == 3:
                    files[name] = Path(endmember_figure(
                        figdir / f"{name}.png", E, A, wl, title=f"{c.method.name}: {title}"))
    recs = [r for _, r in ok]
    if recs:
        files["psnr_vs_time"] = scatter_figure(figdir / "psnr_vs_time.png", recs, metric="psnr")
        files["sam_vs_time"] = scatter_figure(figdir / "sam_vs_time.png", recs, metric="sam")
    return files
