"""Tile grid aligned to the ratio, smooth blending and the tiled fusion driver.

``conventions.md`` §3 item 12 and ``classical.md`` §1 failure mode 5: tile origins, sizes and
overlaps are multiples of the ratio r, so every HR tile has an exact LR counterpart; the
overlap should cover the PSF / receptive-field support (FFT methods: ≥ 2K + 2r).

Blending is separable: along each axis a tile gets a weight that is 0 for the first quarter
of the overlap at an interior edge (so pixels near a tile edge, where the method sees an
artificial boundary, never count), then a raised-cosine ramp, then 1. The per-axis weights
are normalised by their sum over tiles, so the 2-D weights of all tiles sum to exactly 1 at
every pixel and a tile's weight can be computed on its own (no accumulator needed).

With ``out=None`` the result is assembled in memory. With an output path, each tile's
result is first stored atomically as ``<out>.hyperfuse-tiles/t_<i>_<j>.npy`` (its presence
is the tile's completion marker, so a killed job resumes where it stopped), then the output
is assembled chunk by chunk and a ``complete`` marker is written (see :mod:`.store`).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError, ShapeError

__all__ = [
    "Tile",
    "TileJob",
    "assemble",
    "fuse_tiled",
    "prepare",
    "TileGrid",
    "axis_weights",
    "blend_weights",
    "tile_grid",
]


@dataclass(frozen=True)
class Tile:
    """One tile: HR window ``[y0, y1) × [x0, x1)``, grid index ``(i, j)``.

    The LR window is the HR window divided by the ratio (exact, since everything is
    aligned to it).
    """

    i: int
    j: int
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def key(self) -> str:
        """File-name stem of the tile, ``t_<i>_<j>``."""
        return f"t_{self.i}_{self.j}"

    def hr(self) -> tuple[slice, slice]:
        """HR slices (rows, cols)."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def lr(self, ratio: int) -> tuple[slice, slice]:
        """LR slices (rows, cols)."""
        return (
            slice(self.y0 // ratio, self.y1 // ratio),
            slice(self.x0 // ratio, self.x1 // ratio),
        )


def _starts(n: int, tile: int, stride: int) -> list[int]:
    if tile >= n:
        return [0]
    starts = list(range(0, n - tile, stride))
    starts.append(n - tile)
    # A clamped last tile may duplicate the previous start.
    return sorted(set(starts))


def _ceil_to(v: int, r: int) -> int:
    return int(math.ceil(v / r) * r)


@dataclass(frozen=True)
class TileGrid:
    """A ratio-aligned tile grid over an HR image of ``shape`` = (H, W).

    Attributes
    ----------
    shape : (int, int)
        HR size.
    ratio : int
    tile : int
        HR tile size (multiple of ``ratio``).
    overlap : int
        HR overlap (multiple of ``ratio``).
    rows, cols : tuple of int
        Tile origins along each axis.
    """

    shape: tuple[int, int]
    ratio: int
    tile: int
    overlap: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]

    @property
    def tiles(self) -> list[Tile]:
        """Tiles in raster order."""
        H, W = self.shape
        return [
            Tile(i, j, y0, min(y0 + self.tile, H), x0, min(x0 + self.tile, W))
            for i, y0 in enumerate(self.rows)
            for j, x0 in enumerate(self.cols)
        ]

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (stored in the resume manifest)."""
        return {
            "shape": list(self.shape),
            "ratio": self.ratio,
            "tile": self.tile,
            "overlap": self.overlap,
            "rows": list(self.rows),
            "cols": list(self.cols),
        }

    def weights_1d(self, axis: int) -> list[np.ndarray]:
        """Normalised 1-D blending weights of every tile position along ``axis`` (0 rows, 1 cols)."""
        starts = self.rows if axis == 0 else self.cols
        n = self.shape[axis]
        return axis_weights(n, starts, self.tile, self.overlap)


def tile_grid(shape: Sequence[int], ratio: int, *, tile: int, overlap: int) -> TileGrid:
    """Ratio-aligned tile grid for an HR image.

    ``tile`` and ``overlap`` are rounded up to multiples of ``ratio``. The last tile of a
    row or column is moved back to end at the image edge, so it may overlap its
    neighbour by more than ``overlap``.

    Parameters
    ----------
    shape : (H, W)
        HR size; both multiples of ``ratio``.
    ratio : int
    tile : int
        HR tile size, > ``overlap``.
    overlap : int
        HR overlap, ≥ 0.

    Returns
    -------
    TileGrid

    Raises
    ------
    ShapeError
        H or W is not a multiple of ``ratio``.
    InputError
        ``tile`` ≤ ``overlap`` (after rounding) or non-positive sizes.

    Examples
    --------
    >>> g = tile_grid((100, 64), 4, tile=30, overlap=6)
    >>> g.tile, g.overlap, g.rows, g.cols
    (32, 8, (0, 24, 48, 68), (0, 24, 32))
    """
    H, W = int(shape[0]), int(shape[1])
    r = int(ratio)
    if r < 1:
        raise InputError(f"ratio must be >= 1, got {ratio}")
    if H % r or W % r:
        raise ShapeError(f"HR size {H}x{W} is not a multiple of the ratio {r}")
    if tile < 1 or overlap < 0:
        raise InputError(f"tile must be >= 1 and overlap >= 0, got tile={tile}, overlap={overlap}")
    t = _ceil_to(int(tile), r)
    ov = _ceil_to(int(overlap), r)
    if t <= ov:
        raise InputError(
            f"tile ({t}) must be larger than overlap ({ov}) after rounding to the ratio {r}; "
            "pass a larger --tile"
        )
    stride = t - ov
    return TileGrid((H, W), r, t, ov, tuple(_starts(H, t, stride)), tuple(_starts(W, t, stride)))


def _ramp(length: int, overlap: int, left: bool, right: bool) -> np.ndarray:
    """Un-normalised 1-D weight of one tile of ``length`` px (interior sides get a ramp)."""
    w = np.ones(length, dtype=np.float64)
    if overlap <= 0:
        return w
    q = overlap // 4
    m = max(overlap - 2 * q, 1)
    t = (np.arange(m) + 0.5) / m
    ramp = 0.5 - 0.5 * np.cos(np.pi * t)
    prof = np.concatenate([np.zeros(q), ramp])[: length]
    if left:
        w[: prof.size] = np.minimum(w[: prof.size], prof)
    if right:
        w[length - prof.size :] = np.minimum(w[length - prof.size :], prof[::-1])
    return w


def axis_weights(n: int, starts: Sequence[int], tile: int, overlap: int) -> list[np.ndarray]:
    """Per-tile 1-D weights along an axis of ``n`` px, normalised to sum to 1 at every px.

    Parameters
    ----------
    n : int
        Axis length.
    starts : sequence of int
        Tile origins (sorted).
    tile, overlap : int

    Returns
    -------
    list of ndarray
        ``w[k]`` has the length of tile k's window.

    Examples
    --------
    >>> ws = axis_weights(20, [0, 8], 12, 4)
    >>> total = np.zeros(20); total[0:12] += ws[0]; total[8:20] += ws[1]
    >>> bool(np.allclose(total, 1.0))
    True
    """
    raw = []
    for k, s in enumerate(starts):
        e = min(s + tile, n)
        raw.append(_ramp(e - s, overlap, left=k > 0, right=k < len(starts) - 1))
    total = np.zeros(n)
    for s, w in zip(starts, raw, strict=True):
        total[s : s + w.size] += w
    if np.any(total <= 0):
        raise InputError("tile grid leaves pixels without weight; increase the tile size")
    return [w / total[s : s + w.size] for s, w in zip(starts, raw, strict=True)]


def blend_weights(grid: TileGrid) -> dict[tuple[int, int], torch.Tensor]:
    """2-D weights (rows × cols, float32) of every tile, keyed by ``(i, j)``.

    Examples
    --------
    >>> g = tile_grid((16, 16), 2, tile=10, overlap=4)
    >>> acc = torch.zeros(16, 16)
    >>> for t in g.tiles:
    ...     acc[t.hr()] += blend_weights(g)[(t.i, t.j)]
    >>> bool(torch.allclose(acc, torch.ones(16, 16)))
    True
    """
    wy, wx = grid.weights_1d(0), grid.weights_1d(1)
    return {
        (i, j): torch.from_numpy(np.outer(wy[i], wx[j]).astype(np.float32))
        for i in range(len(wy))
        for j in range(len(wx))
    }


ProgressFn = Callable[[int, int], None]
"""``progress(done, total)`` after every finished tile."""


def default_overlap(physics: Any, ratio: int) -> int:
    """2K + 2r (``classical.md`` §1 failure mode 5), K the PSF width (default FWHM = r PSF)."""
    if physics is not None:
        K = int(max(physics.spatial.psf.shape))
    else:
        from ..physics.sensor import make_sensor

        K = int(max(np.asarray(make_sensor(ratio).psf).shape))
    return 2 * K + 2 * ratio


@dataclass
class TileJob:
    """Everything a worker needs to fuse one tile (picklable).

    Attributes
    ----------
    adapter : GlobalAdapter
    hsi, msi : Source
    physics : FusionPhysics or None
    state : Any
        Result of ``adapter.fit_global``.
    grid : TileGrid
    scratch : Path or None
        Folder of the per-tile results (``None``: in memory).
    """

    adapter: Any
    hsi: Any
    msi: Any
    physics: Any
    state: Any
    grid: TileGrid
    scratch: Path | None = None

    def fuse(self, tile: Tile) -> torch.Tensor:
        """Fuse one tile; returns (B, L, th, tw) float32."""
        r = self.grid.ratio
        lr = tile.lr(r)
        hsi_t = self.hsi.window(*lr)
        msi_t = self.msi.window(*tile.hr())
        state = self.state
        if hasattr(self.adapter, "tile_state"):
            state = self.adapter.tile_state(state, lr)
        with torch.no_grad():
            cube = self.adapter.fuse_with_global(hsi_t, msi_t, self.physics, state)
        return cube.detach().to(torch.float32)

    @property
    def two_pass(self) -> bool:
        """True when the adapter refines its global state from the tiles' LR partials."""
        return all(hasattr(self.adapter, a) for a in ("lr_partial", "refine_global", "finalize"))

    @property
    def n_rounds(self) -> int:
        """Synchronised rounds of a round-based adapter (``n_rounds``/``round_tile``/``sync``), else 0."""
        f = getattr(self.adapter, "n_rounds", None)
        return int(f(self.state)) if f is not None else 0

    def tile_path(self, tile: Tile) -> Path:
        assert self.scratch is not None
        if self.n_rounds:
            return self.round_path(tile, self.n_rounds - 1)
        return self.scratch / f"{tile.key}.npy"

    def lr_path(self, tile: Tile) -> Path:
        assert self.scratch is not None
        return self.scratch / f"{tile.key}.lr.npy"

    def round_path(self, tile: Tile, k: int, *, lr: bool = False) -> Path:
        """A tile's carry (or, with ``lr``, its LR partial) after round k."""
        assert self.scratch is not None
        return self.scratch / f"{tile.key}.r{k}{'.lr' if lr else ''}.npy"

    def lr_weights(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Blending weights on the LR grid (the HR grid divided by the ratio)."""
        g, r = self.grid, self.grid.ratio
        return (
            axis_weights(g.shape[0] // r, [s // r for s in g.rows], g.tile // r, g.overlap // r),
            axis_weights(g.shape[1] // r, [s // r for s in g.cols], g.tile // r, g.overlap // r),
        )

    def blend(self, part_of: Callable[[Tile], torch.Tensor], *, lr: bool = False) -> torch.Tensor:
        """Weighted sum of the tiles' parts (B, P, h_t, w_t), in tile order, on the HR grid
        (or, with ``lr``, on the LR grid); ``part_of`` may compute a part when asked for it."""
        g, r = self.grid, self.grid.ratio
        wy, wx = self.lr_weights() if lr else (g.weights_1d(0), g.weights_1d(1))
        scale = r if lr else 1
        acc: torch.Tensor | None = None
        for t in g.tiles:
            part = part_of(t)
            if acc is None:
                B, P = part.shape[:2]
                acc = torch.zeros((B, P, g.shape[0] // scale, g.shape[1] // scale))
            ys, xs = t.lr(r) if lr else t.hr()
            acc[:, :, ys, xs] += part * torch.from_numpy(np.outer(wy[t.i], wx[t.j]).astype(np.float32))
        assert acc is not None
        return acc

    def refine(self, hsi: torch.Tensor, lr_parts: dict[str, torch.Tensor] | None = None) -> None:
        """Two-pass adapters: blend the tiles' LR partials and refine the global state."""
        if not self.two_pass:
            return
        acc = self.blend(
            lambda t: lr_parts[t.key] if lr_parts is not None else torch.from_numpy(np.load(self.lr_path(t)))[None],
            lr=True,
        )
        self.state = self.adapter.refine_global(self.state, hsi, acc)

    def round_done(self, tile: Tile, k: int) -> bool:
        """True when the tile's round k is stored (its LR partial is written last)."""
        return self.round_path(tile, k, lr=True).is_file()

    def run_round(self, tile: Tile, k: int) -> str:
        """Round k of one tile from its round k-1 carry; stored atomically, skipped when done."""
        from .store import atomic_save_npy

        if not self.round_done(tile, k):
            lr = tile.lr(self.grid.ratio)
            carry = None if k == 0 else torch.from_numpy(np.load(self.round_path(tile, k - 1)))[None]
            state = self.adapter.tile_state(self.state, lr) if hasattr(self.adapter, "tile_state") else self.state
            with torch.no_grad():
                carry, part = self.adapter.round_tile(
                    k, self.hsi.window(*lr), self.msi.window(*tile.hr()), carry, state
                )
            atomic_save_npy(self.round_path(tile, k), carry[0].to(torch.float32).numpy())
            atomic_save_npy(self.round_path(tile, k, lr=True), part[0].to(torch.float32).numpy())
        return tile.key

    def sync_round(self, k: int, hsi: torch.Tensor) -> None:
        """After every tile's round k: blend the LR partials, update the global state, drop old carries."""
        acc = self.blend(lambda t: torch.from_numpy(np.load(self.round_path(t, k, lr=True)))[None], lr=True)
        with torch.no_grad():
            self.state = self.adapter.sync(k, self.state, hsi, acc)
        if k > 0:
            for t in self.grid.tiles:
                self.round_path(t, k - 1).unlink(missing_ok=True)

    def finalize(self, block: torch.Tensor) -> torch.Tensor:
        """Turn a blended block of partials into output (identity for one-pass adapters)."""
        if not (self.two_pass or self.n_rounds):
            return block
        with torch.no_grad():
            return self.adapter.finalize(block, self.state)

    def done(self, tile: Tile) -> bool:
        """True when the tile's result is already stored."""
        return self.scratch is not None and self.tile_path(tile).is_file()

    def run(self, tile: Tile) -> str:
        """Fuse one tile and store it atomically (skipped when already stored); returns the key."""
        from .store import atomic_save_npy

        if not self.done(tile):
            cube = self.fuse(tile)
            if self.two_pass:  # the LR partial first: the tile file is the completion marker
                lr = self.adapter.lr_partial(cube, self.state)
                atomic_save_npy(self.lr_path(tile), lr[0].numpy())
            atomic_save_npy(self.tile_path(tile), cube[0].numpy())
        return tile.key


def _resolve(method: Any) -> Any:
    if isinstance(method, str):
        from ..methods import get_method

        return get_method(method)
    return method


def prepare(
    method: Any,
    hsi: Any,
    msi: Any,
    sensor: Any,
    *,
    tile: int,
    overlap: int | None = None,
    out: str | Path | None = None,
    resume: bool = True,
) -> TileJob:
    """Resolve inputs, build the grid, run the global stage and set up the resume folder."""
    from ..physics.sensor import FusionPhysics
    from .globals import adapter_for
    from .store import as_source, atomic_write_json, complete_marker, scratch_dir

    m = _resolve(method)
    physics = None if sensor is None else FusionPhysics.from_spec(sensor)
    hs, ms = as_source(hsi), as_source(msi)
    B, L, h, w = hs.shape
    Bm, l, H, W = ms.shape
    if B != Bm:
        raise ShapeError(f"HSI batch {B} != MSI batch {Bm}")
    r = physics.ratio if physics is not None else H // h
    if H != r * h or W != r * w:
        raise ShapeError(
            f"MSI {H}x{W} is not {r} x HSI {h}x{w}; crop or pad the pair to a multiple of the ratio"
        )
    ov = default_overlap(physics, r) if overlap is None else int(overlap)
    grid = tile_grid((H, W), r, tile=tile, overlap=ov)
    adapter = adapter_for(m)
    state = adapter.fit_global(hs.full(), ms, physics)
    scratch = None
    if out is not None:
        if B != 1:
            raise InputError("tiled output to a file fuses one scene at a time (batch size 1)")
        outp = Path(out).expanduser()
        scratch = scratch_dir(outp)
        manifest = {
            "grid": grid.to_dict(),
            "hsi_shape": list(hs.shape),
            "msi_shape": list(ms.shape),
            "method": getattr(m, "name", type(m).__name__),
            "config": repr(getattr(m, "config", None)),
        }
        mpath = scratch / "manifest.json"
        if scratch.is_dir() and (not resume or not mpath.is_file() or json.loads(mpath.read_text()) != manifest):
            shutil.rmtree(scratch)
        complete_marker(outp).unlink(missing_ok=True)
        scratch.mkdir(parents=True, exist_ok=True)
        if not mpath.is_file():
            atomic_write_json(mpath, manifest)
    return TileJob(adapter, hs, ms, physics, state, grid, scratch)


def assemble(job: TileJob, out: str | Path, *, meta: Any = None, keep_scratch: bool = False) -> Path:
    """Blend the stored tile results into ``out`` chunk by chunk, then mark it complete."""
    from .store import OutputStore, atomic_write_json, complete_marker

    grid = job.grid
    H, W = grid.shape
    tiles = grid.tiles
    L = job.hsi.shape[1]
    missing = [t.key for t in tiles if not job.done(t)]
    if missing:
        raise InputError(f"cannot assemble: {len(missing)} tile(s) not computed ({missing[:3]}...)")
    P = int(np.load(job.tile_path(tiles[0]), mmap_mode="r").shape[0])
    outp = Path(out).expanduser()
    store = OutputStore(outp, (H, W, L), grid.tile, meta)
    store.open()
    wy, wx = grid.weights_1d(0), grid.weights_1d(1)
    c = grid.tile
    ok = False
    try:
        for y in range(0, H, c):
            for x in range(0, W, c):
                y1, x1 = min(y + c, H), min(x + c, W)
                block = np.zeros((P, y1 - y, x1 - x), dtype=np.float32)
                for t in tiles:
                    a, b = max(y, t.y0), min(y1, t.y1)
                    e, f = max(x, t.x0), min(x1, t.x1)
                    if a >= b or e >= f:
                        continue
                    wgt = np.outer(wy[t.i][a - t.y0 : b - t.y0], wx[t.j][e - t.x0 : f - t.x0]).astype(np.float32)
                    res = np.load(job.tile_path(t), mmap_mode="r")
                    block[:, a - y : b - y, e - x : f - x] += res[:, a - t.y0 : b - t.y0, e - t.x0 : f - t.x0] * wgt
                res_block = job.finalize(torch.from_numpy(block)[None])[0].numpy()
                store.write(slice(y, y1), slice(x, x1), res_block)
        ok = True
    finally:
        store.close(complete=ok)
    atomic_write_json(complete_marker(outp), {"status": "complete", "tiles": len(tiles), "grid": grid.to_dict()})
    if not keep_scratch and job.scratch is not None:
        shutil.rmtree(job.scratch, ignore_errors=True)
    return outp


def run_rounds(job: TileJob, run_tiles: Callable[[int, list[Tile]], None]) -> None:
    """Round-based adapters: every round runs the unfinished tiles, then the global sync.

    ``run_tiles(k, todo)`` computes round k of the tiles in ``todo`` (serially, or as Dask
    tasks). Finished rounds are skipped, so a killed job resumes where it stopped.
    """
    hsi = job.hsi.full()
    for k in range(job.n_rounds):
        todo = [t for t in job.grid.tiles if not job.round_done(t, k)]
        if todo:
            run_tiles(k, todo)
        job.sync_round(k, hsi)


def blend_stored(job: TileJob) -> torch.Tensor:
    """Blend the stored tile results in memory and finalize them: (B, L, H, W)."""
    return job.finalize(job.blend(lambda t: torch.from_numpy(np.load(job.tile_path(t)))[None]))


@contextlib.contextmanager
def round_scratch(job: TileJob) -> Any:
    """Round-based jobs keep carries on disk: a temporary folder when no output file is given."""
    if job.scratch is not None or not job.n_rounds:
        yield job
        return
    with tempfile.TemporaryDirectory(prefix="hyperfuse-rounds-") as tmp:
        job.scratch = Path(tmp)
        try:
            yield job
        finally:
            job.scratch = None


def fuse_tiled(
    method: Any,
    hsi: Any,
    msi: Any,
    sensor: Any,
    *,
    tile: int,
    overlap: int | None = None,
    out: str | Path | None = None,
    progress: ProgressFn | None = None,
    resume: bool = True,
    meta: Any = None,
) -> torch.Tensor | Path:
    """Fuse a scene tile by tile; memory depends on the tile, not the scene.

    Parameters
    ----------
    method : FusionMethod or str
        A method instance or a registry name. Methods with a global stage (their own
        ``fit_global`` / ``fuse_with_global``, or the built-in CNMF and GSA adapters of
        :mod:`hyperfuse.tiling.globals`) estimate spectral quantities once on the whole
        LR-HSI; others run ``fuse`` on every tile.
    hsi : Tensor (B, L, h, w), array-like (h, w, L) or path
        LR-HSI (read whole: it is r² smaller than the output).
    msi : Tensor (B, l, H, W), array-like (H, W, l) or path
        HR-MSI, read one tile window at a time.
    sensor : SensorSpec, FusionPhysics or None
    tile : int
        HR tile size (rounded up to a multiple of the ratio).
    overlap : int, optional
        HR overlap (rounded up to a multiple of the ratio); default 2K + 2r. Use at least the
        PSF / receptive-field support.
    out : path, optional
        ``.zarr``, ``.tif``/``.tiff`` or ``.npy``: tiles are stored as they finish (resumable)
        and the output is assembled chunk by chunk. ``None``: return a tensor.
    progress : callable, optional
        ``progress(done, total)`` after every tile.
    resume : bool, default True
        Reuse finished tiles of an interrupted run with the same grid and method (and return
        at once when ``out`` is already complete).
    meta : RasterMeta, optional
        Metadata (CRS, transform) of the output file.

    Returns
    -------
    Tensor of shape (B, L, H, W), or the output Path when ``out`` is given.

    Examples
    --------
    >>> from hyperfuse.physics.sensor import make_sensor, FusionPhysics
    >>> x = torch.rand(1, 5, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> s = make_sensor(4, srf=np.full((2, 5), 0.2))
    >>> ph = FusionPhysics(s)
    >>> y = fuse_tiled("bicubic", ph.spatial(x), ph.spectral(x), s, tile=16, overlap=8)
    >>> tuple(y.shape)
    (1, 5, 32, 32)
    """
    from .store import complete_marker

    if out is not None and resume and complete_marker(Path(out).expanduser()).is_file() and Path(out).expanduser().exists():
        return Path(out).expanduser()
    job = prepare(method, hsi, msi, sensor, tile=tile, overlap=overlap, out=out, resume=resume)
    tiles = job.grid.tiles
    total = len(tiles)
    if job.n_rounds:
        total *= job.n_rounds
        count = [0]

        def serial(k: int, todo: list[Tile]) -> None:
            count[0] = k * len(tiles) + len(tiles) - len(todo)
            for t in todo:
                job.run_round(t, k)
                count[0] += 1
                if progress is not None:
                    progress(count[0], total)

        with round_scratch(job):
            run_rounds(job, serial)
            return assemble(job, out, meta=meta) if out is not None else blend_stored(job)
    if out is None:
        lr_parts: dict[str, torch.Tensor] = {}
        count = [0]

        def fuse_one(t: Tile) -> torch.Tensor:  # fused as the blend asks for it: one tile in memory
            part = job.fuse(t)
            if job.two_pass:
                lr_parts[t.key] = job.adapter.lr_partial(part, job.state)
            count[0] += 1
            if progress is not None:
                progress(count[0], total)
            return part

        acc = job.blend(fuse_one)
        if job.two_pass:
            job.refine(job.hsi.full(), lr_parts)
        return job.finalize(acc)
    for k, t in enumerate(tiles):
        job.run(t)
        if progress is not None:
            progress(k + 1, total)
    job.refine(job.hsi.full())
    return assemble(job, out, meta=meta)
