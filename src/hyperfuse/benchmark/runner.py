"""Benchmark runner: methods x scenes x sensors x seeds, one resumable record per cell.

Each cell is (method, scene, sensor, seed, metric set). Its ID is the first 16 hex digits
of the SHA-256 of its canonical JSON (sorted keys), so the same configuration always gives
the same ID. A finished cell (``"ok"`` or ``"failed"``) is written atomically to
``DIR/cells/<id>.json`` as soon as it ends; ``resume=True`` skips cells whose file exists
and describes the same cell. A failing cell records the error type, message and traceback
and the run goes on.

Timing: ``time`` is the wall time of ``method.fuse`` alone; ``cpu_time`` the CPU time
(``time.process_time``) of the process running the cell over the same span (user + system,
all threads); ``total_wall`` includes loading and simulation.

Peak memory: the ``VmHWM`` (peak resident set) of the process running the cell, read from
``/proc/self/status`` after resetting it with ``/proc/self/clear_refs`` (value ``5``) when the
cell starts (``memory_method="vmhwm_reset"``). When the reset is not permitted it is the
``VmHWM`` of a fresh worker process (parallel runs use one process per cell), or
``ru_maxrss`` elsewhere (``"vmhwm_process"`` / ``"ru_maxrss"``). The figure includes the
interpreter, torch and the simulated inputs, not only the method's own allocations.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
import traceback
import warnings
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .config import BenchConfig, MethodConfig, SceneConfig, SensorConfig, _thaw, dump_config

__all__ = [
    "Cell",
    "expand_cells",
    "run_cell",
    "run_benchmark",
    "BenchmarkResult",
    "load_records",
    "default_workers",
]

ProgressFn = Callable[[int, int, str], None]


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _sha(obj: Any, n: int = 16) -> str:
    return hashlib.sha256(_canonical(obj).encode()).hexdigest()[:n]


@dataclass(frozen=True)
class Cell:
    """One unit of work. ``item`` is the file name for folder scenes (else ``None``)."""

    method: MethodConfig
    scene: SceneConfig
    sensor: SensorConfig
    seed: int
    metric_set: str
    item: str | None = None

    @property
    def scene_label(self) -> str:
        """Name shown in the ``dataset`` column."""
        return self.scene.name if self.item is None else f"{self.scene.name}/{Path(self.item).stem}"

    def key(self) -> dict[str, Any]:
        """Canonical description (what the ID hashes)."""
        scene = _thaw(dataclasses.asdict(self.scene))
        scene.pop("sensors", None)  # which sensors a scene uses does not change one cell
        return {
            "method": _thaw(dataclasses.asdict(self.method)),
            "scene": scene,
            "item": self.item,
            "sensor": _thaw(dataclasses.asdict(self.sensor)),
            "seed": int(self.seed),
            "metric_set": self.metric_set,
        }

    @property
    def id(self) -> str:
        """Stable cell ID."""
        return _sha(self.key())

    @property
    def pair_id(self) -> str:
        """ID of the simulated (scene, sensor, seed) pair shared by all methods."""
        k = self.key()
        return _sha({"scene": k["scene"], "item": k["item"], "sensor": k["sensor"], "seed": k["seed"]})


def _scene_items(scene: SceneConfig) -> list[str | None]:
    if scene.kind != "folder":
        return [None]
    from ..data.datasets import FolderDataset

    if scene.path is None:
        raise InputError(f"folder scene {scene.name!r} needs path:")
    ds = FolderDataset(scene.path, scale=scene.scale, key=scene.key, layout=scene.layout,
                       pattern=scene.pattern)
    return [p.name for p in ds.files]


def expand_cells(cfg: BenchConfig) -> list[Cell]:
    """All cells in a stable order: (scene, sensor) pairs, items, seeds, then methods."""
    cells = []
    for scene, sensor in cfg.pairs():
        for item in _scene_items(scene):
            for seed in cfg.seeds:
                for m in cfg.methods:
                    cells.append(Cell(m, scene, sensor, int(seed), cfg.metric_set, item))
    return cells


# ---------------------------------------------------------------------------------------------
# scene and sensor


def load_scene(scene: SceneConfig, item: str | None, data_root: str | None,
               default_scale: float | str | None = None) -> dict[str, Any]:
    """The clean cube of a scene: ``{"cube": (C, H, W), "wavelengths", "files", ...}``.

    ``default_scale`` (the preset's divisor) applies to folder scenes without ``scale``.
    """
    from ..data import datasets as D

    if scene.kind == "real":
        return D.load_real_scene(scene.dataset or scene.name, data_root)
    if scene.kind == "folder":
        scale = scene.scale if scene.scale is not None else default_scale
        ds = D.FolderDataset(scene.path or "", scale=scale, key=scene.key,
                             layout=scene.layout, pattern=scene.pattern)
        names = [p.name for p in ds.files]
        if item not in names:
            raise InputError(f"scene {scene.name!r}: file {item!r} is no longer in {scene.path!r}")
        return ds[names.index(item)]
    if scene.kind == "dead_leaves":
        lo, hi = scene.wavelength_range
        wl = np.linspace(float(lo), float(hi), int(scene.bands))
        return D.DeadLeavesDataset([scene.seed], tuple(scene.shape), wl,  # type: ignore[arg-type]
                                   n_endmembers=scene.n_endmembers)[0]
    raise InputError(f"unknown scene kind {scene.kind!r}")


def build_sensor(sensor: SensorConfig, wavelengths: np.ndarray | None, n_bands: int) -> tuple[Any, dict[str, Any]]:
    """SensorSpec of a sensor config for a cube with these wavelengths; also the resolved values."""
    from ..physics import make_sensor
    from ..physics.srf import srf_from_spec

    v = sensor.resolved()
    res = srf_from_spec(str(v["srf"]), wavelengths, min_coverage=float(v["min_coverage"]))
    R = np.asarray(res.matrix, dtype=np.float64)
    if R.shape[1] != n_bands:
        raise InputError(f"SRF {v['srf']!r} has {R.shape[1]} columns but the scene has {n_bands} bands")
    phase = v["phase"]
    if isinstance(phase, str) and phase.lstrip("-").isdigit():
        phase = int(phase)
    spec = make_sensor(
        int(v["ratio"]), srf=R, psf_sigma=v["psf_sigma"], psf_size=v["psf_size"], phase=phase,
        wavelengths=wavelengths, msi_band_names=tuple(str(b) for b in res.band_names),
        snr_hsi=v["snr"], snr_msi=v["snr"],
        info={"sensor": sensor.name, "preset": sensor.preset, "srf_source": str(res.source),
              "srf_approximate": bool(res.approximate)},
    )
    return spec, v


# ---------------------------------------------------------------------------------------------
# memory


def _vmhwm_mb() -> float | None:
    try:
        m = re.search(r"VmHWM:\s+(\d+)\s*kB", Path("/proc/self/status").read_text())
    except OSError:
        return None
    return None if m is None else int(m.group(1)) / 1024


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# one cell


def run_cell(
    cell: Cell,
    out_dir: str | Path,
    *,
    data_root: str | None = None,
    threads: int | None = None,
    save_outputs: bool = True,
    fresh_process: bool = False,
) -> dict[str, Any]:
    """Run one cell and write ``cells/<id>.json`` atomically; return the record.

    Never raises for a failure of the cell itself: the record has ``status="failed"`` and
    an ``error`` entry (type, message, traceback).
    """
    import torch

    from ..records import run_record, write_json

    out = Path(out_dir)
    if threads is not None:
        torch.set_num_threads(int(threads))
    reset = _reset_peak()
    mem_method = "vmhwm_reset" if reset else ("vmhwm_process" if fresh_process else "ru_maxrss")
    t_all = time.perf_counter()
    rec: dict[str, Any] = {
        "cell_id": cell.id,
        "cell": cell.key(),
        "method": cell.method.name,
        "dataset": cell.scene_label,
        "sensor": cell.sensor.name,
        "seed": cell.seed,
        "status": "failed",
    }
    try:
        rec["scale"] = int(cell.sensor.resolved()["ratio"])
    except Exception:  # reported by the cell itself below
        pass
    spec = None
    caught_cm = warnings.catch_warnings(record=True)
    caught = caught_cm.__enter__()
    warnings.simplefilter("always")
    try:
        from ..methods import get_method
        from ..metrics import evaluate
        from ..physics import PRESETS, simulate

        preset = PRESETS.get(cell.sensor.preset or "")
        scene = load_scene(cell.scene, cell.item, data_root, None if preset is None else preset.scale)
        cube = np.asarray(scene["cube"], dtype=np.float32)
        spec, resolved = build_sensor(cell.sensor, scene["wavelengths"], cube.shape[0])
        if resolved.get("crop"):
            ch, cw = resolved["crop"]
            cube = cube[:, :ch, :cw]
        pair = simulate(torch.from_numpy(np.ascontiguousarray(cube))[None], spec, rng=cell.seed)
        rec["scale"] = int(spec.ratio)
        rec["scene_files"] = scene.get("files", {})
        rec["sizes"] = {"reference": list(pair.reference.shape), "hsi": list(pair.hsi.shape),
                        "msi": list(pair.msi.shape)}
        options = _thaw(dict(cell.method.options))
        method = get_method(cell.method.method, **options)
        counter = getattr(method, "parameter_count", None)
        rec["params"] = int(counter() if callable(counter) else sum(
            p.numel() for p in method.parameters() if p.requires_grad))
        rec["blind"] = bool(getattr(method, "blind", False))
        c0, t0 = time.process_time(), time.perf_counter()
        result = method.fuse(pair.hsi, pair.msi, spec)
        rec["time"] = time.perf_counter() - t0
        rec["cpu_time"] = time.process_time() - c0
        fused = result.cube.detach().to(torch.float32)
        if tuple(fused.shape) != tuple(pair.reference.shape):
            raise InputError(f"method returned shape {tuple(fused.shape)}, expected {tuple(pair.reference.shape)}")
        if not torch.isfinite(fused).all():
            raise FloatingPointError("method returned non-finite values")
        scores = evaluate(fused, pair.reference, ratio=spec.ratio, metric_set=cell.metric_set)  # type: ignore[arg-type]
        rec["metrics"] = {k: scores[k] for k in ("psnr", "rmse", "sam", "ergas", "ssim", "uiqi", "cc", "q2n")}
        rec["metric_conventions"] = scores["conventions"]
        rec["fusion_info"] = {k: v for k, v in (result.info or {}).items()
                              if isinstance(v, (int, float, str, bool)) or v is None}
        if save_outputs:
            _save_outputs(out, cell, pair, fused, result, scene)
        rec["status"] = "ok"
    except Exception as exc:  # a failing cell is a result, not a crash
        rec["error"] = {"type": type(exc).__name__, "message": str(exc),
                        "traceback": traceback.format_exc()}
    finally:
        caught_cm.__exit__(None, None, None)
    rec["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    total = time.perf_counter() - t_all
    peak = _vmhwm_mb()
    if peak is None:
        from ..records import peak_memory_mb

        peak, mem_method = peak_memory_mb(), "ru_maxrss"
    rec["total_wall"] = total
    rec["peak_memory_mb"] = round(float(peak), 1)
    rec["memory_method"] = mem_method
    rec["threads"] = torch.get_num_threads()
    rec["record"] = run_record(command="bench", method=cell.method.method,
                               config=cell.key(), sensor=spec, wall_time=total)
    rec["record"]["peak_memory_mb"] = rec["peak_memory_mb"]
    write_json(out / "cells" / f"{cell.id}.json", rec)
    return rec


def _save_npz(path: Path, **arrays: Any) -> None:
    from .._atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **{k: np.asarray(v) for k, v in arrays.items() if v is not None})


def _np(t: Any) -> np.ndarray | None:
    if t is None:
        return None
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def _save_outputs(out: Path, cell: Cell, pair: Any, fused: Any, result: Any, scene: dict[str, Any]) -> None:
    pair_path = out / "pairs" / f"{cell.pair_id}.npz"
    if not pair_path.exists():
        spec = pair.sensor
        wl = scene.get("wavelengths")
        _save_npz(pair_path, reference=_np(pair.reference)[0], hsi=_np(pair.hsi)[0],  # type: ignore[index]
                  msi=_np(pair.msi)[0], srf=spec.srf, psf=spec.psf,  # type: ignore[index]
                  wavelengths=None if wl is None else np.asarray(wl, dtype=np.float64))
    est = result.sensor_estimate
    em, ab = _np(result.endmembers), _np(result.abundances)
    _save_npz(
        out / "outputs" / f"{cell.id}.npz", fused=_np(fused)[0],  # type: ignore[index]
        srf_est=None if est is None else est.srf, psf_est=None if est is None else est.psf,
        endmembers=None if em is None else (em[0] if em.ndim == 3 else em),
        abundances=None if ab is None else (ab[0] if ab.ndim == 4 else ab),
    )


def _cell_in_worker(cell: Cell, out_dir: str, data_root: str | None, threads: int,
                    save_outputs: bool) -> dict[str, Any]:
    return run_cell(cell, out_dir, data_root=data_root, threads=threads,
                    save_outputs=save_outputs, fresh_process=True)


# ---------------------------------------------------------------------------------------------
# the whole run


def _mem_available_mb() -> float | None:
    try:
        m = re.search(r"MemAvailable:\s+(\d+)\s*kB", Path("/proc/meminfo").read_text())
    except OSError:
        return None
    return None if m is None else int(m.group(1)) / 1024


def estimate_cell_memory_mb(cell: Cell) -> float:
    """Rough peak memory of a cell: 500 MiB of interpreter/torch plus 60 copies of the cube."""
    sc = cell.scene
    if sc.kind == "dead_leaves":
        n = sc.shape[0] * sc.shape[1] * sc.bands
    elif sc.kind == "real":
        n = 100 * 100 * 198
    else:
        n = 512 * 512 * 31
    return 500.0 + 60 * 4 * n / 2**20


def default_workers(cells: list[Cell], requested: int | None = None) -> int:
    """Worker count: ``requested`` or ``min(2, cpus)``, lowered to fit in available memory."""
    cpus = os.cpu_count() or 1
    n = int(requested) if requested else min(2, cpus)
    avail = _mem_available_mb()
    if avail is not None and cells:
        est = max(estimate_cell_memory_mb(c) for c in cells)
        n = min(n, max(1, int(0.8 * avail // est)))
    return max(1, min(n, max(1, len(cells))))


def _load(path: Path) -> dict[str, Any] | None:
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def load_records(out: str | Path, cells: list[Cell]) -> list[dict[str, Any] | None]:
    """Records of ``cells`` (``None`` where a cell has no valid file), in cell order."""
    res = []
    for c in cells:
        rec = _load(Path(out) / "cells" / f"{c.id}.json")
        ok = rec is not None and rec.get("cell") == json.loads(_canonical(c.key())) and \
            rec.get("status") in ("ok", "failed")
        res.append(rec if ok else None)
    return res


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` did."""

    out: Path
    cells: list[Cell]
    records: list[dict[str, Any] | None]
    ran: int
    skipped: int
    complete: bool
    workers: int
    files: dict[str, Path]

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Records of failed cells."""
        return [r for r in self.records if r is not None and r["status"] == "failed"]


def run_benchmark(
    cfg: BenchConfig,
    out: str | Path,
    *,
    resume: bool = False,
    workers: int | None = None,
    max_cells: int | None = None,
    progress: ProgressFn | None = None,
    report: bool = True,
) -> BenchmarkResult:
    """Run (or resume) a benchmark and write ``results.csv``, the report and the figures.

    Parameters
    ----------
    cfg : BenchConfig
    out : path
        Output folder (``cells/``, ``outputs/``, ``pairs/``, ``results.csv``, ``report.md``,
        ``report.html``, ``figures/``, ``config.yaml``).
    resume : bool
        Skip cells whose record exists and matches.
    workers : int, optional
        Parallel cells; default :func:`default_workers`. With one worker the cells run in
        this process (so methods registered at run time are available); otherwise each
        cell runs in a fresh spawned process with one torch thread.
    max_cells : int, optional
        Stop after running this many cells (a simulated interruption, for tests).
    progress : callable(done, total, label), optional
    report : bool
        Write the tables and figures at the end.

    Returns
    -------
    BenchmarkResult
    """
    from .._atomic import atomic_write_text

    out = Path(out)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", dump_config(cfg))
    cells = expand_cells(cfg)
    records: list[dict[str, Any] | None] = load_records(out, cells) if resume else [None] * len(cells)
    todo = [i for i, r in enumerate(records) if r is None]
    skipped = len(cells) - len(todo)
    if max_cells is not None:
        todo = todo[: max(0, int(max_cells))]
    n_workers = default_workers([cells[i] for i in todo], workers or cfg.workers)
    done = skipped
    save = bool(cfg.figures)
    if progress:
        progress(done, len(cells), "")
    if n_workers <= 1:
        for i in todo:
            c = cells[i]
            if progress:
                progress(done, len(cells), f"{c.method.name} | {c.scene_label} | {c.sensor.name}")
            records[i] = run_cell(c, out, data_root=cfg.data_root, save_outputs=save)
            done += 1
            if progress:
                progress(done, len(cells), "")
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(n_workers, mp_context=ctx, max_tasks_per_child=1) as ex:
            futs: dict[Future[dict[str, Any]], int] = {
                ex.submit(_cell_in_worker, cells[i], str(out), cfg.data_root, 1, save): i for i in todo
            }
            pending = set(futs)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    i = futs[f]
                    try:
                        records[i] = f.result()
                    except Exception as exc:  # the worker died (e.g. out of memory)
                        records[i] = _worker_failure(cells[i], out, exc)
                    done += 1
                    if progress:
                        progress(done, len(cells), cells[i].method.name)
    # the tables are built from the files on disk, so a resumed run reads what a full run does
    records = [r if r is None else (load_records(out, [c])[0] or r)
               for c, r in zip(cells, records, strict=True)]
    files: dict[str, Path] = {}
    complete = all(r is not None for r in records)
    if report:
        from .report import write_report

        if cfg.figures:
            from .figures import make_figures

            files.update(make_figures(cfg, cells, records, out))
        files.update(write_report(cfg, cells, records, out))
    return BenchmarkResult(out=out, cells=cells, records=records, ran=len(todo), skipped=skipped,
                           complete=complete, workers=n_workers, files=files)


def _worker_failure(cell: Cell, out: Path, exc: BaseException) -> dict[str, Any]:
    from ..records import write_json

    rec = {
        "cell_id": cell.id, "cell": cell.key(), "method": cell.method.name,
        "dataset": cell.scene_label, "sensor": cell.sensor.name, "seed": cell.seed,
        "status": "failed",
        "error": {"type": type(exc).__name__, "message": str(exc) or "worker process died",
                  "traceback": "".join(traceback.format_exception(exc))},
    }
    write_json(out / "cells" / f"{cell.id}.json", rec)
    return json.loads(json.dumps(rec, default=str))
