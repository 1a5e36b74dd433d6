"""Figures: false-colour composites, error maps, spectra, method comparisons.

Matplotlib is imported lazily with the Agg backend; every figure is saved atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_path
from .errors import require

__all__ = ["rgb_bands", "false_colour", "comparison_figure", "endmember_figure", "save_figure"]


def rgb_bands(wavelengths: np.ndarray | None, n_bands: int) -> list[int]:
    """Band indices for a false-colour composite: nearest to 650/550/450 nm when those lie in
    the range, else three evenly spaced bands (longest wavelength as red).

    Examples
    --------
    >>> rgb_bands(np.linspace(400, 700, 31), 31)
    [25, 15, 5]
    >>> rgb_bands(None, 10)
    [9, 5, 0]
    """
    if n_bands < 3:
        return [0] * 3 if n_bands == 1 else [1, 0, 0]
    if wavelengths is not None:
        wl = np.asarray(wavelengths, dtype=float)
        if wl.min() <= 460 and wl.max() >= 640:
            return [int(np.argmin(np.abs(wl - t))) for t in (650, 550, 450)]
        order = np.argsort(wl)
        return [int(order[i]) for i in (n_bands - 1, n_bands // 2, 0)]
    return [n_bands - 1, n_bands // 2, 0]


def false_colour(
    cube_hwc: np.ndarray, bands: Sequence[int], *, limits: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """(H, W, 3) image in [0, 1] from three bands, stretched by 2-98 % percentiles (or ``limits``).

    Examples
    --------
    >>> false_colour(np.random.default_rng(0).random((4, 4, 5)), [4, 2, 0]).shape
    (4, 4, 3)
    """
    rgb = np.asarray(cube_hwc)[..., list(bands)].astype(np.float64)
    if limits is None:
        lo = np.percentile(rgb, 2, axis=(0, 1))
        hi = np.percentile(rgb, 98, axis=(0, 1))
    else:
        lo, hi = limits
    return np.clip((rgb - lo) / np.maximum(hi - lo, 1e-12), 0, 1)


def _pyplot() -> Any:
    mpl = require("matplotlib", "cli")
    mpl.use("Agg")  # type: ignore[attr-defined]
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, *, title: str = "", dpi: int = 90) -> Path:
    """Give ``fig`` its title, write it as PNG atomically, close it and return the path."""
    plt = _pyplot()
    if title:
        fig.suptitle(title)
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return out


def comparison_figure(
    path: str | Path,
    *,
    reference: np.ndarray,
    hsi: np.ndarray,
    msi: np.ndarray,
    outputs: dict[str, np.ndarray],
    wavelengths: np.ndarray | None = None,
    msi_bands: Sequence[int] | None = None,
    scores: dict[str, dict[str, float]] | None = None,
    pixels: Sequence[tuple[int, int]] | None = None,
    title: str = "",
) -> Path:
    """Save a figure comparing fusion outputs with the truth.

    Row 1: the inputs (LR-HSI, HR-MSI) and the reference in false colour. Row 2: each
    method's output. Row 3: each method's per-pixel error (RMSE over bands) on a shared
    colour scale. Last panel row: spectra of the reference and every method at a few pixels.

    Parameters
    ----------
    path : str or Path
        PNG file to write (atomically).
    reference : ndarray of shape (H, W, L)
    hsi : ndarray of shape (h, w, L)
    msi : ndarray of shape (H, W, l)
    outputs : dict of str to ndarray of shape (H, W, L)
    wavelengths : ndarray of shape (L,), optional
    msi_bands : three MSI band indices for its composite, optional
    scores : per-method metrics shown in the titles, optional
    pixels : (row, col) positions for the spectra plot, optional
    title : str

    Returns
    -------
    Path
    """
    plt = _pyplot()
    H, W, L = reference.shape
    bands = rgb_bands(wavelengths, L)
    lo = np.percentile(reference[..., bands], 2, axis=(0, 1))
    hi = np.percentile(reference[..., bands], 98, axis=(0, 1))
    lim = (lo, hi)
    names = list(outputs)
    ncol = max(3, len(names))
    fig = plt.figure(figsize=(3.2 * ncol, 3.2 * 3 + 3.4), constrained_layout=True)
    gs = fig.add_gridspec(4, ncol, height_ratios=[1, 1, 1, 1.1])

    def show(ax: Any, img: np.ndarray, label: str, **kw: Any) -> Any:
        im = ax.imshow(img, interpolation="nearest", **kw)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        return im

    show(fig.add_subplot(gs[0, 0]), false_colour(hsi, bands, limits=lim), f"LR-HSI {hsi.shape[0]}x{hsi.shape[1]}")
    mb = list(msi_bands) if msi_bands is not None else rgb_bands(None, msi.shape[2])
    show(fig.add_subplot(gs[0, 1]), false_colour(msi, mb), f"HR-MSI ({msi.shape[2]} bands)")
    ax_ref = fig.add_subplot(gs[0, 2])
    show(ax_ref, false_colour(reference, bands, limits=lim), "reference")
    pix = list(pixels) if pixels is not None else [(H // 4, W // 4), (H // 2, 3 * W // 4), (3 * H // 4, W // 3)]
    for k, (py, px) in enumerate(pix):
        ax_ref.plot(px, py, marker="o", mfc="none", mec="w", ms=8)
        ax_ref.annotate(str(k + 1), (px, py), color="w", fontsize=8, xytext=(4, 4), textcoords="offset points")
    errs = {n: np.sqrt(np.mean((o - reference) ** 2, axis=-1)) for n, o in outputs.items()}
    # One colour scale for all error maps, set by the fusion methods (the interpolation
    # baseline would wash them out; its map saturates instead).
    scaled = [e for n, e in errs.items() if n != "bicubic"] or list(errs.values())
    vmax = max(float(np.percentile(e, 99)) for e in scaled) if scaled else 1.0
    im = None
    for j, n in enumerate(names):
        s = (scores or {}).get(n, {})
        label = n + (f"\nPSNR {s['psnr']:.2f} dB, SAM {s['sam']:.2f}°" if "psnr" in s and "sam" in s else "")
        show(fig.add_subplot(gs[1, j]), false_colour(outputs[n], bands, limits=lim), label)
        im = show(fig.add_subplot(gs[2, j]), errs[n], f"{n}: per-pixel RMSE" + (" (saturated)" if n == "bicubic" and len(errs) > 1 else ""), cmap="magma", vmin=0, vmax=vmax)
    if im is not None:
        fig.colorbar(im, ax=fig.axes[-1], fraction=0.046)
    x = np.asarray(wavelengths) if wavelengths is not None else np.arange(L)
    order = np.argsort(x)
    for k, (py, px) in enumerate(pix[:ncol]):
        ax = fig.add_subplot(gs[3, k])
        ax.plot(x[order], reference[py, px, order], "k-", lw=2, label="reference")
        for n in names:
            ax.plot(x[order], outputs[n][py, px, order], lw=1, label=n)
        ax.set_title(f"spectrum at pixel {k + 1} ({py}, {px})", fontsize=9)
        ax.set_xlabel("wavelength (nm)" if wavelengths is not None else "band")
        if k == 0:
            ax.legend(fontsize=7)
    return save_figure(fig, path, title=title)


def endmember_figure(
    path: str | Path, endmembers: np.ndarray, abundances: np.ndarray, wavelengths: np.ndarray | None = None,
    *, max_maps: int = 8, title: str = "",
) -> Path:
    """Save endmember spectra (L, p) and up to ``max_maps`` abundance maps (p, H, W)."""
    plt = _pyplot()
    p = endmembers.shape[1]
    k = min(p, max_maps)
    fig, axes = plt.subplots(1, k + 1, figsize=(3.0 * (k + 1), 3.0), constrained_layout=True)
    x = np.asarray(wavelengths) if wavelengths is not None else np.arange(endmembers.shape[0])
    order = np.argsort(x)
    for j in range(p):
        axes[0].plot(x[order], endmembers[order, j], lw=1)
    axes[0].set_title(f"{p} endmembers", fontsize=9)
    for j in range(k):
        axes[j + 1].imshow(abundances[j], cmap="viridis", vmin=0, vmax=1)
        axes[j + 1].set_title(f"abundance {j + 1}", fontsize=9)
        axes[j + 1].set_xticks([])
        axes[j + 1].set_yticks([])
    return save_figure(fig, path, title=title)
