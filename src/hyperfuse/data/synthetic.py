"""Dead-leaves synthetic hyperspectral scenes (``specs/synthetic.md``).

A dead-leaves image drops random shapes ("leaves") on a canvas, front to back: each new
leaf fills only the pixels that are still empty, so generation stops as soon as the
canvas is covered. Leaf radii follow a power law, which makes the image scale invariant
with the occlusion edges and flat regions of natural scenes. Here every leaf carries an
*abundance vector* over ``p`` endmembers, so the cube is the exact linear mixture
``X = E A`` with known endmembers ``E`` and abundances ``A``.

Public API
----------
- :func:`dead_leaves_abundances` -- the abundance maps ``A`` (p, H, W);
- :func:`dead_leaves_scene` -- ``A`` plus spectra ``E`` -> :class:`SyntheticScene`;
- :func:`save_scene_npz`, :func:`load_scene_npz`, :func:`preview_figure`;
- :class:`DeadLeavesPairs` -- a seeded ``IterableDataset`` of (cube, hsi, msi, sensor).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from .._random import RNGLike, as_numpy_rng
from ..errors import InputError, ShapeError
from ..types import SensorSpec
from .spectra import _library_pick, builtin_spectra, check_wavelengths, scene_spectra

__all__ = [
    "LeafShape",
    "SyntheticScene",
    "dead_leaves_abundances",
    "dead_leaves_scene",
    "save_scene_npz",
    "load_scene_npz",
    "preview_figure",
    "DeadLeavesPairs",
    "collate_pairs",
]

LeafShape = Literal["disk", "rectangle", "polygon"]
_SHAPE_CODES: dict[str, int] = {"disk": 0, "rectangle": 1, "polygon": 2}
_EMPTY = np.iinfo(np.int32).max
_KMAX = 8  # most vertices of a polygon leaf (rectangles use 4)
_SMALL = 24  # leaves whose template half-size (supersampled px) is <= this are batched
_CHUNK = 1024  # first chunk of leaves painted between two coverage checks
_SIZE_BINS = np.array([3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24])  # small-leaf templates
_TILE = 8  # tile size (supersampled px) of the empty-pixel bookkeeping


# --------------------------------------------------------------------------------------
# Leaf geometry
# --------------------------------------------------------------------------------------


def _power_law_radii(u: np.ndarray, r_min: float, r_max: float, alpha: float) -> np.ndarray:
    """Inverse CDF of the density ``r**-alpha`` truncated to ``[r_min, r_max]``."""
    if abs(alpha - 1.0) < 1e-12:
        return r_min * (r_max / r_min) ** u
    e = 1.0 - alpha
    a, b = r_min**e, r_max**e
    return (a + u * (b - a)) ** (1.0 / e)


@dataclass
class _Leaves:
    """Geometry of the drawn leaves, in output-pixel units (row y, column x)."""

    cy: np.ndarray
    cx: np.ndarray
    r: np.ndarray
    kind: np.ndarray  # 0 disk, 1 rectangle, 2 polygon
    angles: np.ndarray  # (n, _KMAX) vertex angles (CCW), unused ones repeat the last
    nvert: np.ndarray  # (n,) number of vertices (0 for disks)


def _draw_leaves(
    gen: np.random.Generator,
    n: int,
    shape: tuple[int, int],
    radius_range: tuple[float, float],
    alpha: float,
    kinds: np.ndarray,
) -> _Leaves:
    """Draw the next n leaves.

    Each leaf consumes one row of ``7 + _KMAX`` uniforms, so the leaf sequence does not
    depend on how the drawing is split into chunks.
    """
    H, W = shape
    u = gen.random((n, 7 + _KMAX))
    r = _power_law_radii(u[:, 0], radius_range[0], radius_range[1], alpha)
    cy = u[:, 1] * H
    cx = u[:, 2] * W
    kind = kinds[np.minimum((u[:, 3] * len(kinds)).astype(np.int64), len(kinds) - 1)]
    theta0 = u[:, 4] * (2 * np.pi)
    # rectangles: half-diagonal r, aspect ratio in [0.25, 1]
    phi = np.arctan(0.25 + 0.75 * u[:, 5])
    # polygons: 3..8 vertices, evenly spaced angles with jitter (always convex, never thin)
    k = 3 + np.minimum((u[:, 6] * (_KMAX - 2)).astype(np.int64), _KMAX - 3)
    jitter = u[:, 7:] - 0.5
    j = np.arange(_KMAX)
    steps = np.minimum(j[None, :], (k - 1)[:, None]) + 0.7 * jitter
    poly = theta0[:, None] + 2 * np.pi * steps / k[:, None]
    rect = np.stack(
        [theta0 - phi, theta0 + phi, theta0 + np.pi - phi, theta0 + np.pi + phi], axis=1
    )
    rect = np.concatenate([rect, np.repeat(rect[:, 3:], _KMAX - 4, axis=1)], axis=1)
    angles = np.where((kind == 1)[:, None], rect, poly)
    nvert = np.where(kind == 0, 0, np.where(kind == 1, 4, k))
    return _Leaves(cy=cy, cx=cx, r=r, kind=kind, angles=angles, nvert=nvert)


def _expected_leaves(
    shape: tuple[int, int], radius_range: tuple[float, float], alpha: float, coverage: float
) -> float:
    """Rough number of leaves needed to reach ``coverage`` (sets the first chunk size)."""
    a, b = radius_range

    def integral(e: float) -> float:  # int_a^b r**e dr
        return math.log(b / a) if abs(e + 1) < 1e-9 else (b ** (e + 1) - a ** (e + 1)) / (e + 1)

    mean_area = 0.75 * math.pi * integral(2 - alpha) / integral(-alpha)
    return shape[0] * shape[1] / mean_area * -math.log(max(1e-6, 1 - min(coverage, 0.999999)))


def _half_planes(
    angles: np.ndarray, nvert: np.ndarray, r: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row-span coefficients of convex polygons inscribed in circles of radius ``r``.

    For an edge with outward normal (nx, ny) and offset h, a point (dx, dy) relative to
    the centre is inside when ``nx dx + ny dy <= h``. On a row at offset dy this bounds
    dx by ``A + B dy`` with ``A = h / nx``, ``B = -ny / nx`` (an upper bound when nx > 0,
    a lower bound when nx < 0). Edges parallel to the rows are top or bottom edges of
    the convex polygon; they are replaced by the polygon's vertical extent.

    Returns
    -------
    a_hi, b_hi, a_lo, b_lo : ndarray (n, _KMAX)
        Coefficients of the upper and lower bounds (neutral +-inf, 0 for unused edges).
    y_lo, y_hi : ndarray (n,)
        Vertical extent (min and max vertex dy).
    """
    vx = r[:, None] * np.cos(angles)
    vy = r[:, None] * np.sin(angles)
    kk = np.arange(_KMAX)[None, :]
    used = kk < nvert[:, None]
    nxt = np.where(kk + 1 < nvert[:, None], kk + 1, 0)
    wx = np.take_along_axis(vx, nxt, axis=1)
    wy = np.take_along_axis(vy, nxt, axis=1)
    ex, ey = wx - vx, wy - vy
    norm = np.hypot(ex, ey)
    valid = used & (norm > 1e-12)
    inv = np.where(valid, 1.0 / np.where(valid, norm, 1.0), 0.0)
    nx, ny = ey * inv, -ex * inv
    h = nx * vx + ny * vy
    pos = valid & (nx > 1e-7)
    neg = valid & (nx < -1e-7)
    safe = np.where(pos | neg, nx, 1.0)
    a = h / safe
    b = -ny / safe
    a_hi = np.where(pos, a, np.inf)
    b_hi = np.where(pos, b, 0.0)
    a_lo = np.where(neg, a, -np.inf)
    b_lo = np.where(neg, b, 0.0)
    y_lo = np.where(used, vy, np.inf).min(axis=1)
    y_hi = np.where(used, vy, -np.inf).max(axis=1)
    return a_hi, b_hi, a_lo, b_lo, y_lo, y_hi


def _row_spans(
    dy: np.ndarray,
    r: np.ndarray,
    nvert: np.ndarray,
    coef: Sequence[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal extent ``[lo, hi]`` (in dx) of n leaves on rows at offsets ``dy``.

    ``dy`` is (n, R) (R rows per leaf); ``r`` and ``nvert`` (0 for disks, sorted in
    ascending order) are (n,) and ``coef`` the output of :func:`_half_planes` for the
    same n leaves. Returns two (n, R) float arrays; ``lo > hi`` when a row misses its
    leaf.
    """
    lo = np.empty_like(dy)
    hi = np.empty_like(dy)
    n_disk, n4, n6 = np.searchsorted(nvert, [1, 5, 7]).tolist()
    if n_disk:
        dd = dy[:n_disk]
        d2 = (r[:n_disk] * r[:n_disk])[:, None] - dd * dd
        inside = d2 >= 0
        w = np.sqrt(np.maximum(d2, 0.0))
        lo[:n_disk] = np.where(inside, -w, np.inf)
        hi[:n_disk] = np.where(inside, w, -np.inf)
    for a, b, K in ((n_disk, n4, 4), (n4, n6, 6), (n6, nvert.size, _KMAX)):
        if b <= a:
            continue
        a_hi, b_hi, a_lo, b_lo = (c[a:b, :K].T[:, :, None] for c in coef[:4])
        dq = dy[a:b]
        hq = (a_hi + b_hi * dq).min(axis=0)
        lq = (a_lo + b_lo * dq).max(axis=0)
        out = (dq < coef[4][a:b, None]) | (dq > coef[5][a:b, None])
        hq[out] = -np.inf
        lq[out] = np.inf
        lo[a:b] = lq
        hi[a:b] = hq
    return lo, hi


def _int_span(
    center: np.ndarray, lo: np.ndarray, hi: np.ndarray, lower: float, upper: float
) -> tuple[np.ndarray, np.ndarray]:
    """Integer columns j with ``lo <= j + 0.5 - center <= hi``, clipped to [lower, upper]."""
    a = np.ceil(np.clip(center - 0.5 + lo, lower, upper + 1))
    b = np.floor(np.clip(center - 0.5 + hi, lower - 1, upper))
    return a.astype(np.int64), b.astype(np.int64)


def _chunks(n: int, first: int) -> Iterator[tuple[int, int]]:
    """Leaf index ranges painted between two coverage checks.

    Sizes ``first, first, 2 first, 2 first, 4 first, ...`` up to 8 * _CHUNK.
    """
    start, size, k = 0, first, 0
    while start < n:
        end = min(n, start + size)
        yield start, end
        start = end
        k += 1
        if k % 2 == 0:
            size = min(2 * size, 8 * _CHUNK)


def _concat(parts: list[_Leaves], n: int) -> _Leaves:
    """The first n leaves of the chunks ``parts``."""
    return _Leaves(
        *(np.concatenate([getattr(q, f) for q in parts])[:n] for f in _Leaves.__dataclass_fields__)
    )


def _template_size(half: np.ndarray) -> np.ndarray:
    """Round template half-sizes up to a few bins (fewer vectorised groups)."""
    return _SIZE_BINS[np.searchsorted(_SIZE_BINS, half)]


def _paint(
    draw: Callable[[int], _Leaves],
    max_leaves: int,
    shape_ss: tuple[int, int],
    ss: int,
    coverage: float,
    first_chunk: int = _CHUNK,
) -> tuple[np.ndarray, _Leaves, int, bool]:
    """Front-to-back label map at supersampled resolution.

    Every pixel gets the index of the first leaf (in drawing order) that covers it, or
    ``_EMPTY``. Leaves are drawn (``draw(k)`` returns the next k leaves) and painted
    chunk by chunk in drawing order. Inside a chunk the label is the per-pixel minimum
    leaf index, so the processing order within the chunk (large leaves one by one,
    small ones in vectorised batches of equal template size) does not matter: the
    result equals sequential front-to-back painting exactly. Pixels covered by an
    earlier chunk are final, so a chunk skips every leaf whose bounding box lies in
    fully covered tiles (a summed-area table of the empty tiles answers that for all
    leaves at once) and crops large leaves to the tiles that still hold empty pixels.
    After each chunk the coverage is checked and the exact stopping leaf is found from
    the per-leaf counts of newly covered pixels.

    Returns
    -------
    labels : ndarray of int32, shape (Hs, Ws)
    leaves : _Leaves
        The leaves used, in drawing order (leaves past the stopping leaf are erased).
    covered : int
        Number of covered supersampled pixels.
    reached : bool
        Whether the coverage target was reached.
    """
    Hs, Ws = shape_ss
    M = _SMALL + 1  # margin so that small-leaf templates never need clipping
    Wp = Ws + 2 * M
    pad = np.full((Hs + 2 * M, Wp), _EMPTY, dtype=np.int32)
    flat = pad.reshape(-1)
    inner = pad[M : M + Hs, M : M + Ws]
    T = _TILE
    Ht, Wt = -(-Hs // T), -(-Ws // T)
    tiles = np.full((Ht * T, Wt * T), False)
    need = min(Hs * Ws, int(math.ceil(coverage * Hs * Ws - 1e-9)))
    covered = 0
    n_used = max_leaves
    reached = False
    parts: list[_Leaves] = []
    empty = np.ones((Ht, Wt), dtype=bool)  # tiles holding an empty pixel
    sat = np.zeros((Ht + 1, Wt + 1), dtype=np.int64)  # summed-area table of ``empty``
    for start, end in _chunks(max_leaves, max(1, int(first_chunk))):
        lv = draw(end - start)
        parts.append(lv)
        r = lv.r * ss
        cy = lv.cy * ss
        cx = lv.cx * ss
        half = np.ceil(r).astype(np.int64) + 1
        ci = np.floor(cy).astype(np.int64)
        cj = np.floor(cx).astype(np.int64)
        small = half <= _SMALL
        # tile bounding boxes (inclusive) of every leaf, clipped to the canvas
        ty0 = np.clip(np.floor(cy - r).astype(np.int64), 0, Hs - 1) // T
        ty1 = np.clip(np.ceil(cy + r).astype(np.int64), 0, Hs - 1) // T
        tx0 = np.clip(np.floor(cx - r).astype(np.int64), 0, Ws - 1) // T
        tx1 = np.clip(np.ceil(cx + r).astype(np.int64), 0, Ws - 1) // T
        if start == 0:
            live = np.ones(small.shape, dtype=bool)
        else:  # leaves whose box still holds an empty tile
            live = (
                sat[ty1 + 1, tx1 + 1] - sat[ty0, tx1 + 1] - sat[ty1 + 1, tx0] + sat[ty0, tx0]
            ) > 0
        sel = np.flatnonzero(small & live)
        if sel.size:
            # small leaves grouped by template size; rows of a leaf = ci - s .. ci + s
            tsize = _template_size(half[sel])
            order = np.lexsort((lv.nvert[sel], tsize))  # by size, then vertex count
            sel = sel[order]
            tsize = tsize[order]
            coef = _half_planes(lv.angles[sel], lv.nvert[sel], r[sel])
            nv = lv.nvert[sel]
            sizes, counts = np.unique(tsize, return_counts=True)
            pos = 0
            for s, cnt in zip(sizes.tolist(), counts.tolist(), strict=True):
                g = slice(pos, pos + cnt)
                pos += cnt
                gi = sel[g]
                t = np.arange(-s, s + 1)
                cig, cjg = ci[gi], cj[gi]
                dy = (cig[:, None] + t[None, :]) + 0.5 - cy[gi][:, None]
                lo, hi = _row_spans(dy, r[gi], nv[g], [c[g] for c in coef])
                ulo, uhi = _int_span((cx[gi] - cjg)[:, None], lo, hi, -s, s)
                t16 = t.astype(np.int16)
                mask = (t16 >= ulo.astype(np.int16)[:, :, None]) & (
                    t16 <= uhi.astype(np.int16)[:, :, None]
                )
                m2 = mask.reshape(cnt, -1)
                per_leaf = np.count_nonzero(m2, axis=1)
                base = (cig + M) * Wp + (cjg + M)
                toff = (t[:, None] * Wp + t[None, :]).reshape(-1)
                idx = np.broadcast_to(toff, m2.shape)[m2]
                idx += np.repeat(base, per_leaf)
                vals = np.repeat((start + gi).astype(np.int32), per_leaf)
                np.minimum.at(flat, idx, vals)
        # large leaves: box cropped to the tiles that still hold empty pixels
        rows_y0: list[int] = []
        rows_y1: list[int] = []
        cols_x0: list[int] = []
        cols_x1: list[int] = []
        big_ids: list[int] = []
        for i in np.flatnonzero(~small & live).tolist():
            y0 = max(0, math.floor(cy[i] - r[i]))
            y1 = min(Hs, math.ceil(cy[i] + r[i]) + 1)
            x0 = max(0, math.floor(cx[i] - r[i]))
            x1 = min(Ws, math.ceil(cx[i] + r[i]) + 1)
            if y1 <= y0 or x1 <= x0:
                continue
            if start > 0:
                a0, a1, b0, b1 = int(ty0[i]), int(ty1[i]), int(tx0[i]), int(tx1[i])
                sub = empty[a0 : a1 + 1, b0 : b1 + 1]
                ty = np.flatnonzero(sub.any(axis=1))
                tx = np.flatnonzero(sub.any(axis=0))
                y0 = max(y0, (a0 + int(ty[0])) * T)
                y1 = min(y1, (a0 + int(ty[-1]) + 1) * T)
                x0 = max(x0, (b0 + int(tx[0])) * T)
                x1 = min(x1, (b0 + int(tx[-1]) + 1) * T)
            rows_y0.append(y0)
            rows_y1.append(y1)
            cols_x0.append(x0)
            cols_x1.append(x1)
            big_ids.append(i)
        if big_ids:
            by_k = np.argsort(lv.nvert[big_ids], kind="stable")  # _row_spans wants it sorted
            big_ids = [big_ids[k] for k in by_k]
            rows_y0 = [rows_y0[k] for k in by_k]
            rows_y1 = [rows_y1[k] for k in by_k]
            cols_x0 = [cols_x0[k] for k in by_k]
            cols_x1 = [cols_x1[k] for k in by_k]
            bi = np.asarray(big_ids, dtype=np.int64)
            by0 = np.asarray(rows_y0, dtype=np.int64)
            nrows = np.asarray(rows_y1, dtype=np.int64) - by0
            first = np.cumsum(nrows) - nrows
            owner = np.repeat(np.arange(bi.size), nrows)
            rowv = np.repeat(by0 - first, nrows) + np.arange(int(nrows.sum()))
            lid = bi[owner]
            coef = _half_planes(lv.angles[bi], lv.nvert[bi], r[bi])
            lo, hi = _row_spans(
                (rowv + 0.5 - cy[lid])[:, None],
                r[lid],
                lv.nvert[lid],
                [c[owner] for c in coef],
            )
            jlo, jhi = _int_span(cx[lid], lo[:, 0], hi[:, 0], 0, Ws - 1)
            np.maximum(jlo, np.asarray(cols_x0, dtype=np.int64)[owner], out=jlo)
            np.minimum(jhi, np.asarray(cols_x1, dtype=np.int64)[owner] - 1, out=jhi)
            for k, i in enumerate(big_ids):
                rs = slice(int(first[k]), int(first[k] + nrows[k]))
                a, b = jlo[rs], jhi[rs]
                x0, x1 = int(a.min()), int(b.max()) + 1
                if x1 <= x0:
                    continue
                cols = np.arange(x0, x1)
                mask = (cols >= a[:, None]) & (cols <= b[:, None])
                sub = inner[rows_y0[k] : rows_y1[k], x0:x1]
                np.minimum(sub, np.int32(start + i), out=sub, where=mask)
        is_empty = inner == _EMPTY
        now = Hs * Ws - int(np.count_nonzero(is_empty))
        if now >= need:
            in_chunk = inner[(inner >= start) & (inner < end)]
            counts_k = np.bincount(in_chunk - start, minlength=end - start)
            cum = covered + np.cumsum(counts_k)
            k = int(np.searchsorted(cum, need))  # first leaf reaching the target
            n_used = start + k + 1
            if n_used < end:
                inner[(inner >= n_used) & (inner < end)] = _EMPTY
            covered = int(cum[k])
            reached = True
            break
        covered = now
        tiles[:Hs, :Ws] = is_empty
        empty = tiles.reshape(Ht, T, Wt, T).any(axis=(1, 3))
        sat[1:, 1:] = empty.cumsum(axis=0).cumsum(axis=1)
    return np.ascontiguousarray(inner), _concat(parts, n_used), covered, reached


# --------------------------------------------------------------------------------------
# Smooth random fields and abundance tables
# --------------------------------------------------------------------------------------


def _interp_matrix(n: int, spacing: float, offset: float) -> np.ndarray:
    """(n, k) Gaussian-RBF weights from k knots ``spacing`` apart to n pixel centres."""
    k = int(math.ceil(n / spacing)) + 3
    knots = (np.arange(k) - 1.0 - offset) * spacing
    x = np.arange(n) + 0.5
    w = np.exp(-0.5 * ((x[:, None] - knots[None, :]) / (0.6 * spacing)) ** 2)
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def _smooth_field(gen: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A smooth multi-scale random field on ``shape`` scaled to ``[-1, 1]`` (float32).

    Three octaves with knot spacings of 1/4, 1/16 and 1/64 of the image size (at least
    8 px) and amplitudes 1, 1/2, 1/4.
    """
    H, W = shape
    size = max(H, W)
    out = np.zeros((H, W), dtype=np.float32)
    for octave in range(3):
        spacing = max(8.0, size / 4.0 ** (octave + 1))
        off_y, off_x = gen.random(2)
        uy = _interp_matrix(H, spacing, off_y)
        ux = _interp_matrix(W, spacing, off_x)
        knots = gen.standard_normal((uy.shape[1], ux.shape[1])).astype(np.float32)
        out += (0.5**octave) * (uy @ knots @ ux.T)
    m = float(np.abs(out).max())
    return out / m if m > 0 else out


@dataclass
class _Tables:
    """Per-leaf abundance tables: ``A(x) = a + w(x) (b - a)``, ``w`` a smooth weight."""

    a: np.ndarray  # (p, n) float32
    d: np.ndarray  # (p, n) float32, b - a
    w_off: np.ndarray  # (n,) weight = w_off + gx*x + gy*y + b1*F1 + b2*F2 (output px)
    gx: np.ndarray
    gy: np.ndarray
    b1: np.ndarray
    b2: np.ndarray


def _tables(
    gen: np.random.Generator,
    leaves: _Leaves,
    n: int,
    p: int,
    concentration: np.ndarray,
    texture: bool,
    shape: tuple[int, int],
) -> _Tables:
    """Abundance vectors for leaves ``0..n-1`` plus a background leaf ``n``."""
    m = n + 1
    a = gen.dirichlet(concentration, size=m)
    cy = np.append(leaves.cy[:n], shape[0] / 2.0)
    cx = np.append(leaves.cx[:n], shape[1] / 2.0)
    r = np.append(leaves.r[:n], max(shape) / 2.0)
    zeros = np.zeros(m, dtype=np.float32)
    if not texture:
        a32 = a.T.astype(np.float32)
        return _Tables(a32, np.zeros_like(a32), zeros, zeros, zeros, zeros, zeros)
    b = a[gen.permutation(m)]  # a second, (almost) independent Dirichlet vector
    w0 = 0.4 * gen.random(m)
    grad = 0.4 * gen.random(m)  # total change of w across the leaf radius
    phi = gen.random(m) * (2 * np.pi)
    beta = 0.3 * gen.random(m)
    psi = gen.random(m) * (2 * np.pi)
    gx = grad * np.cos(phi) / r
    gy = grad * np.sin(phi) / r
    w_off = w0 - gx * cx - gy * cy
    f32 = np.float32
    return _Tables(
        a=a.T.astype(f32),
        d=(b - a).T.astype(f32),
        w_off=w_off.astype(f32),
        gx=gx.astype(f32),
        gy=gy.astype(f32),
        b1=(beta * np.cos(psi)).astype(f32),
        b2=(beta * np.sin(psi)).astype(f32),
    )


def _evaluate(
    tab: _Tables,
    lab: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    f1: np.ndarray | None,
    f2: np.ndarray | None,
) -> np.ndarray:
    """Abundances (p, M) of the leaves ``lab`` (M,) at points (ys, xs) (output px)."""
    a = np.take(tab.a, lab, axis=1)
    if f1 is None or f2 is None:
        return a
    w = np.take(tab.w_off, lab)
    w += np.take(tab.gx, lab) * xs
    w += np.take(tab.gy, lab) * ys
    w += np.take(tab.b1, lab) * f1
    w += np.take(tab.b2, lab) * f2
    np.clip(w, 0.0, 1.0, out=w)
    d = np.take(tab.d, lab, axis=1)
    d *= w
    a += d
    return a


# --------------------------------------------------------------------------------------
# Public: abundances
# --------------------------------------------------------------------------------------


def _check_shape(shape: Sequence[int] | int) -> tuple[int, int]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape), int(shape))
    shp = tuple(int(v) for v in shape)
    if len(shp) != 2 or min(shp) < 1:
        raise ShapeError(f"shape must be (H, W) with positive sizes, got {tuple(shape)}")
    return shp  # type: ignore[return-value]


def dead_leaves_abundances(
    shape: tuple[int, int] | int,
    n_endmembers: int = 8,
    *,
    radius_range: tuple[float, float] | None = None,
    alpha: float = 3.0,
    shapes: Sequence[LeafShape] = ("disk", "rectangle", "polygon"),
    max_leaves: int = 20000,
    coverage: float = 0.999,
    concentration: float | Sequence[float] = 0.3,
    texture: bool = True,
    antialias: int = 2,
    sum_to_one: bool = True,
    rng: RNGLike = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Dead-leaves abundance maps.

    Leaves are drawn i.i.d.: centre uniform on the canvas, circumradius with density
    proportional to ``r**-alpha`` on ``radius_range`` (inverse-CDF sampling), a shape
    (disk, rotated rectangle with aspect ratio in [0.25, 1], or convex polygon with 3-8
    vertices inscribed in the circle) and an abundance vector drawn from a symmetric
    Dirichlet distribution. They are painted front to back -- each leaf fills only the
    pixels no earlier leaf covered -- until ``coverage`` of the canvas is covered or
    ``max_leaves`` leaves are drawn; pixels still empty then belong to a background
    leaf (the infinitely large last leaf of the model).

    Parameters
    ----------
    shape : (H, W) or int
        Output size in pixels.
    n_endmembers : int
        Number of abundance maps p.
    radius_range : (float, float), optional
        ``(r_min, r_max)`` in output pixels. Default ``(2, max(min(H, W) / 2, 4))``.
    alpha : float
        Power-law exponent of the radius density.
    shapes : sequence of {"disk", "rectangle", "polygon"}
        Leaf shapes, drawn with equal probability.
    max_leaves : int
        Largest number of leaves drawn.
    coverage : float in (0, 1]
        Stop once this fraction of the (supersampled) canvas is covered.
    concentration : float or sequence of p floats
        Dirichlet concentration of the leaf abundance vectors; small values give
        mostly pure leaves.
    texture : bool
        If true, each leaf's abundance vector varies smoothly inside the leaf:
        ``a(x) = a + w(x) (b - a)`` with ``b`` a second Dirichlet draw and ``w`` in
        [0, 1] the sum of a random offset, a linear gradient in leaf-local coordinates
        and a leaf-specific mix of two smooth low-frequency random fields. Being a
        convex combination, the result stays non-negative and sums to one.
    antialias : int
        Supersampling factor s: the leaf label map is painted on an (s H, s W) grid and
        abundances are block-averaged over each s x s block (edge pixels become
        mixtures; no blur kernel is involved). 1 disables anti-aliasing.
    sum_to_one : bool
        If false, the abundances are multiplied by a smooth positive shading field in
        [0.5, 1] (illumination variation).
    rng : int, numpy.random.Generator, torch.Generator or None
        Randomness. The output is a pure function of it (a ``torch.Generator`` is
        advanced once to seed a NumPy generator); no global seed is touched.

    Returns
    -------
    A : ndarray of float32, shape (p, H, W)
        Abundance maps, non-negative, summing to one per pixel (unless
        ``sum_to_one=False``).
    info : dict
        ``radii`` (n_leaves,) circumradii of the leaves used (output px, drawing
        order), ``n_leaves``, ``coverage`` (fraction of supersampled pixels covered by
        leaves before the background fill), ``stopped`` ("coverage" or "max_leaves"),
        ``radius_range``, ``alpha``, ``antialias``, ``shape_counts``.

    Raises
    ------
    InputError
        For invalid parameters.

    Notes
    -----
    Painting works on the label map (index of the first covering leaf per
    supersampled pixel): leaves are taken in drawing order in chunks; inside a chunk
    the label is the per-pixel minimum leaf index, which equals sequential front-to-back
    painting exactly. Abundances are then built by indexing per-leaf tables; the texture
    of a leaf is evaluated at output-pixel centres, and edge pixels average the leaves
    of their s x s sub-pixels.

    References
    ----------
    R. Achddou, Y. Gousseau, S. Ladjal, "Synthetic images as a regularity prior for
    image restoration neural networks", SSVM 2021.

    Examples
    --------
    >>> A, info = dead_leaves_abundances((32, 48), 4, rng=0)
    >>> A.shape, A.dtype
    ((4, 32, 48), dtype('float32'))
    >>> bool(abs(A.sum(axis=0) - 1).max() < 1e-5) and bool(A.min() >= 0)
    True
    >>> info["coverage"] >= 0.999
    True
    """
    H, W = _check_shape(shape)
    p = int(n_endmembers)
    if p < 1:
        raise InputError(f"n_endmembers must be >= 1, got {n_endmembers}")
    if radius_range is None:
        radius_range = (2.0, max(min(H, W) / 2.0, 4.0))
    r_min, r_max = (float(v) for v in radius_range)
    if not (0 < r_min < r_max) or not math.isfinite(r_max):
        raise InputError(f"radius_range must satisfy 0 < r_min < r_max, got {radius_range}")
    alpha = float(alpha)
    if not math.isfinite(alpha):
        raise InputError(f"alpha must be finite, got {alpha}")
    unknown = [s for s in shapes if s not in _SHAPE_CODES]
    if unknown or len(shapes) == 0:
        raise InputError(
            f"shapes must be a non-empty subset of {sorted(_SHAPE_CODES)}, got {list(shapes)}"
        )
    if int(max_leaves) < 1:
        raise InputError(f"max_leaves must be >= 1, got {max_leaves}")
    if not (0 < float(coverage) <= 1):
        raise InputError(f"coverage must be in (0, 1], got {coverage}")
    ss = int(antialias)
    if ss < 1 or ss != antialias:
        raise InputError(f"antialias must be an integer >= 1, got {antialias}")
    conc = np.broadcast_to(np.asarray(concentration, dtype=np.float64), (p,)).copy()
    if not (conc > 0).all() or not np.isfinite(conc).all():
        raise InputError(f"concentration must be positive, got {concentration}")

    gen = as_numpy_rng(rng)
    geo_gen, tab_gen = _split(gen, 2)
    kinds = np.array(sorted({_SHAPE_CODES[s] for s in shapes}), dtype=np.int64)

    def draw(k: int) -> _Leaves:
        return _draw_leaves(geo_gen, k, (H, W), (r_min, r_max), alpha, kinds)

    first = _expected_leaves((H, W), (r_min, r_max), alpha, float(coverage)) / 6
    lab, leaves, covered, reached = _paint(
        draw,
        int(max_leaves),
        (H * ss, W * ss),
        ss,
        float(coverage),
        int(np.clip(first, 16, _CHUNK)),
    )
    n = leaves.r.size
    lab[lab == _EMPTY] = n  # background leaf
    gen = tab_gen
    tab = _tables(gen, leaves, n, p, conc, bool(texture), (H, W))
    f1 = f2 = None
    if texture:
        f1 = _smooth_field(gen, (H, W)).reshape(-1)
        f2 = _smooth_field(gen, (H, W)).reshape(-1)

    ys = np.repeat(np.arange(H, dtype=np.float32) + 0.5, W)
    xs = np.tile(np.arange(W, dtype=np.float32) + 0.5, H)
    subs = [lab[a::ss, b::ss].reshape(-1) for a in range(ss) for b in range(ss)]
    A = _evaluate(tab, subs[0], ys, xs, f1, f2)
    if ss > 1:
        mixed = np.zeros(H * W, dtype=bool)
        for sub in subs[1:]:
            mixed |= sub != subs[0]
        m = np.flatnonzero(mixed)
        if m.size:
            ym, xm = ys[m], xs[m]
            g1 = None if f1 is None else f1[m]
            g2 = None if f2 is None else f2[m]
            acc = np.zeros((p, m.size), dtype=np.float64)
            for sub in subs:
                acc += _evaluate(tab, sub[m], ym, xm, g1, g2)
            A[:, m] = (acc / len(subs)).astype(np.float32)
    if not sum_to_one:
        shade = 0.75 + 0.25 * _smooth_field(gen, (H, W)).reshape(-1)
        A *= shade[None, :]
    used = leaves.kind[:n]
    info: dict[str, Any] = {
        "radii": leaves.r[:n].copy(),
        "n_leaves": int(n),
        "coverage": covered / float(H * W * ss * ss),
        "stopped": "coverage" if reached else "max_leaves",
        "radius_range": (r_min, r_max),
        "alpha": alpha,
        "antialias": ss,
        "shape_counts": {s: int(np.count_nonzero(used == c)) for s, c in _SHAPE_CODES.items()},
    }
    return A.reshape(p, H, W), info


# --------------------------------------------------------------------------------------
# Public: scenes
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticScene:
    """A synthetic scene with its ground truth: ``cube = endmembers @ abundances``.

    Parameters
    ----------
    cube : ndarray of float32, shape (L, H, W)
        The hyperspectral cube.
    endmembers : ndarray of float32, shape (L, p)
        Endmember spectra E.
    abundances : ndarray of float32, shape (p, H, W)
        Abundance maps A.
    wavelengths : ndarray of float64, shape (L,)
        Band centres in nm.
    info : dict
        Generator record: leaf statistics (``radii``, ``n_leaves``, ``coverage``, ...)
        and the spectra source (``spectra``).
    """

    cube: np.ndarray
    endmembers: np.ndarray
    abundances: np.ndarray
    wavelengths: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(L, H, W)."""
        L, H, W = self.cube.shape
        return (int(L), int(H), int(W))


def _split(gen: np.random.Generator, n: int) -> list[np.random.Generator]:
    """n independent child generators (deterministic given ``gen``'s state)."""
    try:
        return list(gen.spawn(n))
    except TypeError:  # bit generator without a SeedSequence
        seeds = gen.integers(0, 2**63 - 1, size=(n, 4), dtype=np.int64)
        return [np.random.default_rng([int(v) for v in s]) for s in seeds]


SpectraSource = Literal["builtin"] | str | os.PathLike[str] | np.ndarray


def dead_leaves_scene(
    shape: tuple[int, int] | int,
    wavelengths: np.ndarray | Sequence[float],
    *,
    n_endmembers: int = 8,
    spectra: SpectraSource = "builtin",
    spectra_kwargs: dict[str, Any] | None = None,
    rng: RNGLike = None,
    **abundance_kwargs: Any,
) -> SyntheticScene:
    """A dead-leaves hyperspectral scene ``X = E A``.

    The abundances and the spectra use two independent child streams of ``rng``, so
    the same seed gives the same abundance maps whatever the spectra source.

    Parameters
    ----------
    shape : (H, W) or int
        Spatial size.
    wavelengths : array_like of shape (L,)
        Band centres in nm.
    n_endmembers : int
        Number of endmembers p.
    spectra : "builtin", path or ndarray of shape (L, k)
        Where E comes from: :func:`~hyperfuse.data.builtin_spectra`, a spectral library
        file (:func:`~hyperfuse.data.library_spectra`), or endmembers extracted from a
        scene, of which p perturbed copies are made
        (:func:`~hyperfuse.data.scene_spectra`).
    spectra_kwargs : dict, optional
        Extra keyword arguments for the spectra source (e.g. ``families`` or
        ``perturb``).
    rng : int, numpy.random.Generator, torch.Generator or None
        Randomness; the scene is a pure function of it.
    **abundance_kwargs
        Passed to :func:`dead_leaves_abundances` (``alpha``, ``radius_range``,
        ``texture``, ``antialias``, ...).

    Returns
    -------
    SyntheticScene

    Examples
    --------
    >>> s = dead_leaves_scene((16, 16), np.linspace(400, 1000, 12), n_endmembers=3, rng=1)
    >>> s.cube.shape, s.endmembers.shape, s.abundances.shape
    ((12, 16, 16), (12, 3), (3, 16, 16))
    >>> bool(np.allclose(s.cube, np.einsum("lp,phw->lhw", s.endmembers, s.abundances), atol=1e-6))
    True
    """
    wl = check_wavelengths(wavelengths)
    p = int(n_endmembers)
    gen = as_numpy_rng(rng)
    a_gen, e_gen = _split(gen, 2)
    A, info = dead_leaves_abundances(shape, p, rng=a_gen, **abundance_kwargs)
    skw = dict(spectra_kwargs or {})
    source: dict[str, Any]
    if isinstance(spectra, np.ndarray):
        if spectra.ndim != 2 or spectra.shape[0] != wl.size:
            raise ShapeError(
                f"spectra array must be (L, k) with L = {wl.size} bands, got {spectra.shape}"
            )
        E = scene_spectra(spectra, p, rng=e_gen, **skw)
        source = {"source": "scene", "k": int(spectra.shape[1])}
    elif isinstance(spectra, str) and spectra == "builtin":
        E = builtin_spectra(wl, p, rng=e_gen, **skw)
        source = {"source": "builtin"}
    elif isinstance(spectra, (str, os.PathLike)):
        E, idx, names = _library_pick(spectra, wl, p, e_gen)
        source = {"source": "library", "path": str(spectra), "indices": idx, "names": names}
    else:
        raise InputError(
            f"spectra must be 'builtin', a library path or an (L, k) array, got {type(spectra)}"
        )
    E32 = E.astype(np.float32)
    H, W = A.shape[1:]
    cube = (E32 @ A.reshape(p, -1)).reshape(wl.size, H, W)
    info = {**info, "spectra": source}
    return SyntheticScene(cube=cube, endmembers=E32, abundances=A, wavelengths=wl, info=info)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _atomic_target(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")


def save_scene_npz(path: str | os.PathLike[str], scene: SyntheticScene) -> Path:
    """Write a scene to ``.npz`` atomically (temporary file, then ``os.replace``).

    Keys: ``cube`` (H, W, L) float32, ``E`` (L, p), ``A`` (H, W, p) (so that
    ``cube = A @ E.T``), ``wavelengths`` (L,), ``radii`` (leaf radii) and ``info`` (a
    JSON string).

    Parameters
    ----------
    path : path-like
        Destination; the parent folder is created.
    scene : SyntheticScene

    Returns
    -------
    Path
        The written file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> s = dead_leaves_scene(8, np.linspace(400, 700, 5), n_endmembers=2, rng=0)
    >>> f = save_scene_npz(pathlib.Path(tempfile.mkdtemp()) / "s.npz", s)
    >>> sorted(np.load(f).files)
    ['A', 'E', 'cube', 'info', 'radii', 'wavelengths']
    """
    path = Path(path)
    info = dict(scene.info)
    radii = np.asarray(info.pop("radii", np.zeros(0)), dtype=np.float64)
    arrays = {
        "cube": np.ascontiguousarray(np.moveaxis(scene.cube, 0, -1)),
        "E": np.asarray(scene.endmembers),
        "A": np.ascontiguousarray(np.moveaxis(scene.abundances, 0, -1)),
        "wavelengths": np.asarray(scene.wavelengths, dtype=np.float64),
        "radii": radii,
        "info": np.array(json.dumps(_jsonable(info), sort_keys=True)),
    }
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_scene_npz(path: str | os.PathLike[str]) -> SyntheticScene:
    """Read a scene written by :func:`save_scene_npz`.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    SyntheticScene

    Raises
    ------
    FormatError
        If a key is missing.
    """
    from ..errors import FormatError

    with np.load(Path(path), allow_pickle=False) as z:
        missing = {"cube", "E", "A", "wavelengths"} - set(z.files)
        if missing:
            raise FormatError(f"{path}: not a synthetic scene file (missing {sorted(missing)})")
        info = json.loads(str(z["info"])) if "info" in z.files else {}
        if "radii" in z.files:
            info["radii"] = z["radii"]
        return SyntheticScene(
            cube=np.ascontiguousarray(np.moveaxis(z["cube"], -1, 0)),
            endmembers=z["E"],
            abundances=np.ascontiguousarray(np.moveaxis(z["A"], -1, 0)),
            wavelengths=z["wavelengths"],
            info=info,
        )


def _rgb_bands(wl: np.ndarray) -> tuple[list[int], str]:
    if wl.min() <= 475.0 and wl.max() >= 625.0:
        return [int(np.argmin(np.abs(wl - t))) for t in (650.0, 550.0, 450.0)], "true colour"
    L = wl.size
    return [int(round(f * (L - 1))) for f in (0.8, 0.5, 0.2)], "false colour"


def preview_figure(scene: SyntheticScene, path: str | os.PathLike[str], *, dpi: int = 100) -> Path:
    """Save a colour composite of the scene and a plot of its endmember spectra.

    The composite uses the bands nearest 650/550/450 nm when the grid covers the
    visible range, else three evenly spaced bands, each stretched between its 1st and
    99th percentiles. Rendered with Matplotlib's Agg canvas (no pyplot state) and
    written atomically; the format follows the file suffix (PNG by default).

    Parameters
    ----------
    scene : SyntheticScene
    path : path-like
        Output image.
    dpi : int
        Resolution; the figure is 10 x 4 inches.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    MissingDependencyError
        If Matplotlib is not installed (``pip install 'hyperfuse[cli]'``).
    """
    from ..errors import require

    require("matplotlib", "cli")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    wl = np.asarray(scene.wavelengths, dtype=np.float64)
    bands, label = _rgb_bands(wl)
    rgb = np.moveaxis(scene.cube[bands].astype(np.float64), 0, -1)
    lo = np.percentile(rgb, 1, axis=(0, 1))
    hi = np.percentile(rgb, 99, axis=(0, 1))
    rgb = np.clip((rgb - lo) / np.maximum(hi - lo, 1e-12), 0.0, 1.0)

    fig = Figure(figsize=(10, 4), dpi=dpi)
    FigureCanvasAgg(fig)
    ax0, ax1 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    ax0.imshow(rgb, interpolation="nearest")
    ax0.set_title(f"{label}: " + "/".join(f"{wl[b]:.0f}" for b in bands) + " nm")
    ax0.set_axis_off()
    E = np.asarray(scene.endmembers)
    for j in range(E.shape[1]):
        ax1.plot(wl, E[:, j], lw=1.2, label=f"e{j + 1}")
    ax1.set_xlabel("wavelength (nm)")
    ax1.set_ylabel("reflectance")
    ax1.set_ylim(0, 1)
    ax1.set_title(f"{E.shape[1]} endmembers")
    if E.shape[1] <= 12:
        ax1.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fmt = path.suffix.lstrip(".").lower() or "png"
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format=fmt)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------------------
# Streaming training pairs
# --------------------------------------------------------------------------------------

SensorLike = SensorSpec | Callable[[np.random.Generator], SensorSpec]


class DeadLeavesPairs(IterableDataset):  # type: ignore[type-arg]
    """Seeded stream of synthetic (cube, LR-HSI, HR-MSI, sensor) training samples.

    Sample i is generated from ``numpy.random.default_rng([seed, epoch, i])``: a
    dead-leaves scene with a random number of endmembers, a sensor (fixed, or drawn by
    ``sensor(rng)``), and the pair simulated by :func:`hyperfuse.physics.simulate`.
    The stream is therefore identical on every machine and independent of the number
    of DataLoader workers; worker w of n yields samples i = w, w + n, w + 2n, ...

    Parameters
    ----------
    size : int or (H, W)
        Spatial size of the cubes (cropped to a multiple of the ratio by ``simulate``).
    wavelengths : array_like of shape (L,) or tuple (start_nm, stop_nm, n_bands)
        Band centres in nm, or a tuple giving an evenly spaced grid.
    seed : int
        Stream seed.
    sensor : SensorSpec or callable
        The sensor, or ``callable(rng) -> SensorSpec`` for a random sensor per sample
        (its SRF must have one column per band).
    n_endmembers : int or (int, int)
        Number of endmembers, or an inclusive range drawn per sample.
    n_samples : int, optional
        Samples per epoch; ``None`` streams forever.
    spectra : "builtin", path or ndarray
        Spectra source (see :func:`dead_leaves_scene`).
    spectra_kwargs, abundance_kwargs : dict, optional
        Passed to the spectra source and :func:`dead_leaves_abundances`.

    Yields
    ------
    dict
        ``cube`` (L, H, W), ``hsi`` (L, h, w), ``msi`` (l, H, W), ``wavelengths`` (L,)
        float32 tensors, ``sensor`` (SensorSpec) and ``index`` (int). Batch with
        :func:`collate_pairs` (the default collate cannot stack a SensorSpec).

    Examples
    --------
    >>> from hyperfuse.physics import make_sensor
    >>> sensor = make_sensor(4, srf=np.full((3, 10), 0.1))
    >>> ds = DeadLeavesPairs(16, (400, 900, 10), seed=0, sensor=sensor, n_samples=2)
    >>> [tuple(s["hsi"].shape) for s in ds]
    [(10, 4, 4), (10, 4, 4)]
    """

    def __init__(
        self,
        size: int | tuple[int, int],
        wavelengths: np.ndarray | Sequence[float] | tuple[float, float, int],
        *,
        seed: int,
        sensor: SensorLike,
        n_endmembers: int | tuple[int, int] = (4, 10),
        n_samples: int | None = None,
        spectra: SpectraSource = "builtin",
        spectra_kwargs: dict[str, Any] | None = None,
        abundance_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.size = _check_shape(size)
        if (
            isinstance(wavelengths, tuple)
            and len(wavelengths) == 3
            and isinstance(wavelengths[2], (int, np.integer))
        ):
            start, stop, n = wavelengths
            self.wavelengths = check_wavelengths(np.linspace(float(start), float(stop), int(n)))
        else:
            self.wavelengths = check_wavelengths(wavelengths)  # type: ignore[arg-type]
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise InputError(f"seed must be an int, got {seed!r}")
        self.seed = int(seed)
        if not (isinstance(sensor, SensorSpec) or callable(sensor)):
            raise InputError("sensor must be a SensorSpec or a callable(rng) -> SensorSpec")
        self.sensor = sensor
        lo, hi = (n_endmembers, n_endmembers) if isinstance(n_endmembers, int) else n_endmembers
        if not (1 <= int(lo) <= int(hi)):
            raise InputError(f"n_endmembers must be >= 1 (or a range lo <= hi), got {n_endmembers}")
        self.n_endmembers = (int(lo), int(hi))
        if n_samples is not None and int(n_samples) < 0:
            raise InputError(f"n_samples must be >= 0, got {n_samples}")
        self.n_samples = None if n_samples is None else int(n_samples)
        self.spectra = spectra
        self.spectra_kwargs = dict(spectra_kwargs or {})
        self.abundance_kwargs = dict(abundance_kwargs or {})
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select a different (still reproducible) stream for each epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if self.n_samples is None:
            raise TypeError("DeadLeavesPairs with n_samples=None is infinite")
        return self.n_samples

    def sample(self, index: int) -> dict[str, Any]:
        """Generate sample ``index`` of the current epoch."""
        from ..physics import simulate

        gen = np.random.default_rng([self.seed, self.epoch, int(index)])
        p = int(gen.integers(self.n_endmembers[0], self.n_endmembers[1] + 1))
        scene = dead_leaves_scene(
            self.size,
            self.wavelengths,
            n_endmembers=p,
            spectra=self.spectra,
            spectra_kwargs=self.spectra_kwargs,
            rng=gen,
            **self.abundance_kwargs,
        )
        spec = self.sensor if isinstance(self.sensor, SensorSpec) else self.sensor(gen)
        if not isinstance(spec, SensorSpec):
            raise InputError(f"the sensor callable returned {type(spec)}, not a SensorSpec")
        pair = simulate(torch.from_numpy(scene.cube)[None], spec, rng=gen)
        return {
            "cube": pair.reference[0],
            "hsi": pair.hsi[0],
            "msi": pair.msi[0],
            "wavelengths": torch.from_numpy(self.wavelengths.astype(np.float32)),
            "sensor": spec,
            "index": int(index),
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = get_worker_info()
        wid, nw = (0, 1) if worker is None else (worker.id, worker.num_workers)
        i = wid
        while self.n_samples is None or i < self.n_samples:
            yield self.sample(i)
            i += nw


def collate_pairs(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack a list of :class:`DeadLeavesPairs` samples into a batch.

    Tensors are stacked to (B, C, H, W) / (B, L); ``sensor`` and ``index`` become lists.

    Raises
    ------
    ShapeError
        If the samples' shapes differ (e.g. random sensors with different ratios);
        use ``batch_size=None`` then.
    """
    out: dict[str, Any] = {}
    for key in batch[0]:
        vals = [b[key] for b in batch]
        if isinstance(vals[0], torch.Tensor):
            shapes = {tuple(v.shape) for v in vals}
            if len(shapes) > 1:
                raise ShapeError(
                    f"cannot stack '{key}' of shapes {sorted(shapes)}; use batch_size=None"
                )
            out[key] = torch.stack(vals)
        else:
            out[key] = vals
    return out
