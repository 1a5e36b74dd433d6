"""Benchmark configuration: frozen dataclasses that round-trip to YAML/JSON.

A configuration lists methods (with per-method options), scenes (registered real scenes,
user folders, dead-leaves by seed) and sensors (named presets of ``protocols.md`` §7
with optional overrides, or explicit sensors). Each scene says which sensors it is
simulated with (default: all); the cells are methods x (scene, sensor) x seeds.

Examples
--------
>>> cfg = BenchConfig.from_dict({
...     "name": "tiny",
...     "methods": ["bicubic", {"name": "gsa-noclip", "method": "gsa", "options": {"clip": False}}],
...     "scenes": [{"name": "dl", "kind": "dead_leaves", "seed": 1, "shape": [16, 16], "bands": 8}],
...     "sensors": [{"name": "x4", "ratio": 4, "srf": "gaussian:3"}],
... })
>>> [m.name for m in cfg.methods], cfg.scenes[0].kind, cfg.sensors[0].ratio
(['bicubic', 'gsa-noclip'], 'dead_leaves', 4)
>>> BenchConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError

__all__ = ["MethodConfig", "SceneConfig", "SensorConfig", "BenchConfig", "load_config", "dump_config"]

SceneKind = Literal["real", "folder", "dead_leaves"]
MetricSetName = Literal["hyperfuse", "yokoya2017", "mossfuse_reference"]


def _freeze(value: Any) -> Any:
    """Make nested dicts/lists hashable-free but comparable: dicts stay dicts, lists -> tuples."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return {str(k): _freeze(v) for k, v in value.items()}
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    if isinstance(value, dict):
        return {k: _thaw(v) for k, v in value.items()}
    return value


def _build(cls: type, d: dict[str, Any], what: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise InputError(f"unknown {what} field(s) {unknown}; allowed: {sorted(names)}")
    return cls(**{k: _freeze(v) for k, v in d.items()})


@dataclass(frozen=True)
class MethodConfig:
    """One benchmarked method: a label, the registry name and config overrides.

    ``options`` go to :func:`hyperfuse.methods.get_method` (e.g. MossFuse's
    ``time_budget_s``).
    """

    name: str
    method: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.method:
            object.__setattr__(self, "method", self.name)


@dataclass(frozen=True)
class SceneConfig:
    """A ground-truth scene.

    Parameters
    ----------
    name : str
        Label used in tables (``dataset`` column).
    kind : {"real", "folder", "dead_leaves"}
        Registered real scene, user folder of cubes, or a dead-leaves scene.
    dataset : str, optional
        Registry name for ``kind="real"`` (default: ``name``).
    path : str, optional
        Folder (``kind="folder"``); every cube in it becomes one scene.
    pattern, key, layout, scale
        Folder options (glob, .mat key, axis order, divisor or "max").
    seed : int
        Dead-leaves seed.
    shape : (H, W)
        Dead-leaves size.
    bands : int
        Dead-leaves band count, spread over ``wavelength_range``.
    wavelength_range : (lo, hi)
        Dead-leaves wavelength span in nm.
    n_endmembers : int
        Dead-leaves endmember count.
    sensors : tuple of str
        Sensor names this scene is simulated with (empty: all).
    """

    name: str
    kind: SceneKind = "real"
    dataset: str | None = None
    path: str | None = None
    pattern: str = "*"
    key: str | None = None
    layout: str | None = None
    scale: float | str | None = None
    seed: int = 0
    shape: tuple[int, int] = (64, 64)
    bands: int = 31
    wavelength_range: tuple[float, float] = (400.0, 1000.0)
    n_endmembers: int = 6
    sensors: tuple[str, ...] = ()


@dataclass(frozen=True)
class SensorConfig:
    """A simulated sensor: a preset name and/or explicit values (explicit values win).

    Parameters
    ----------
    name : str
        Label (the ``scale`` column shows the ratio).
    preset : str, optional
        A name of :data:`hyperfuse.physics.PRESETS`.
    ratio : int, optional
    srf : str, optional
        SRF name or file (:func:`hyperfuse.physics.srf.srf_from_spec`); required when the
        preset has none.
    psf_sigma, psf_size, phase
        PSF and sampling offset.
    snr : float, optional
        SNR in dB on both inputs (``None``: noiseless).
    crop : (H, W), optional
        Top-left crop of the reference before simulation.
    min_coverage : float, optional
        SRF band coverage threshold.
    """

    name: str
    preset: str | None = None
    ratio: int | None = None
    srf: str | None = None
    psf_sigma: float | None = None
    psf_size: int | None = None
    phase: str | None = None
    snr: float | None = None
    crop: tuple[int, int] | None = None
    min_coverage: float | None = None

    def resolved(self) -> dict[str, Any]:
        """Preset values merged with the explicit ones (what the simulation uses)."""
        from ..physics import PRESETS

        out: dict[str, Any] = {}
        if self.preset is not None:
            if self.preset not in PRESETS:
                raise InputError(
                    f"unknown preset {self.preset!r}; choose one of: {', '.join(sorted(PRESETS))}"
                )
            p = PRESETS[self.preset]
            out = dict(ratio=p.ratio, srf=p.srf, psf_sigma=p.psf_sigma, psf_size=p.psf_size,
                       phase=p.phase, snr=p.snr, crop=p.crop, min_coverage=p.min_coverage)
        for f in dataclasses.fields(self):
            if f.name in ("name", "preset"):
                continue
            v = getattr(self, f.name)
            if v is not None:
                out[f.name] = _thaw(v)
        out.setdefault("phase", "block_centred")
        out.setdefault("min_coverage", 0.95)
        for k in ("srf", "psf_sigma", "psf_size", "snr", "crop"):
            out.setdefault(k, None)
        if out.get("ratio") is None:
            raise InputError(f"sensor {self.name!r} needs a ratio or a preset")
        if out.get("srf") is None:
            note = PRESETS[self.preset].srf_note if self.preset else ""
            raise InputError(
                f"sensor {self.name!r} needs an SRF (srf: NAME or FILE)"
                + (f"; the preset expects {note}" if note else "")
            )
        return out


@dataclass(frozen=True)
class BenchConfig:
    """A whole benchmark: methods x (scene, sensor) x seeds.

    Parameters
    ----------
    name : str
    methods, scenes, sensors : tuples of the configs above
    seeds : tuple of int
        Noise seeds (one cell per seed).
    metric_set : {"hyperfuse", "yokoya2017", "mossfuse_reference"}
    data_root : str, optional
        Root of the real data (default ``$HYPERFUSE_DATA``); relative paths are relative
        to the YAML file.
    workers : int, optional
        Parallel cells (default ``min(2, cpus)``, lowered by the memory estimate).
    figures : bool
        Make the figures.
    pixels : tuple of (row, col)
        Pixels (relative coordinates in [0, 1)) whose spectra are plotted.
    """

    name: str = "benchmark"
    methods: tuple[MethodConfig, ...] = ()
    scenes: tuple[SceneConfig, ...] = ()
    sensors: tuple[SensorConfig, ...] = ()
    seeds: tuple[int, ...] = (0,)
    metric_set: MetricSetName = "hyperfuse"
    data_root: str | None = None
    workers: int | None = None
    figures: bool = True
    pixels: tuple[tuple[float, float], ...] = ((0.25, 0.25), (0.5, 0.7), (0.8, 0.4))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BenchConfig:
        """Build from a plain dict (the YAML content).

        Methods may be given as bare registry names.
        """
        if not isinstance(d, dict):
            raise InputError("benchmark config must be a mapping (YAML dict)")
        d = dict(d)
        methods = tuple(
            MethodConfig(name=m) if isinstance(m, str) else _build(MethodConfig, m, "method")
            for m in d.pop("methods", [])
        )
        scenes = tuple(_build(SceneConfig, s, "scene") for s in d.pop("scenes", []))
        sensors = tuple(_build(SensorConfig, s, "sensor") for s in d.pop("sensors", []))
        cfg = _build(cls, d, "benchmark")
        cfg = dataclasses.replace(cfg, methods=methods, scenes=scenes, sensors=sensors)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Check names are unique and scene->sensor references exist."""
        for what, items in (("method", self.methods), ("scene", self.scenes), ("sensor", self.sensors)):
            names = [i.name for i in items]
            if len(set(names)) != len(names):
                raise InputError(f"duplicate {what} names in {names}")
            if not names:
                raise InputError(f"the benchmark config lists no {what}s")
        known = {s.name for s in self.sensors}
        for sc in self.scenes:
            bad = sorted(set(sc.sensors) - known)
            if bad:
                raise InputError(f"scene {sc.name!r} refers to unknown sensors {bad}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML/JSON-ready), inverse of :meth:`from_dict`."""
        return _thaw(dataclasses.asdict(self))  # type: ignore[no-any-return]

    def pairs(self) -> list[tuple[SceneConfig, SensorConfig]]:
        """(scene, sensor) combinations in config order."""
        out = []
        for sc in self.scenes:
            for se in self.sensors:
                if not sc.sensors or se.name in sc.sensors:
                    out.append((sc, se))
        return out


def load_config(path: str | Path) -> BenchConfig:
    """Read a benchmark YAML (or JSON) file.

    A relative ``data_root`` or folder ``path`` is resolved against the file's folder.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(f"benchmark config {str(p)!r} not found")
    text = p.read_text()
    d = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    cfg = BenchConfig.from_dict(d or {})
    base = p.resolve().parent
    if cfg.data_root is not None and not Path(cfg.data_root).expanduser().is_absolute():
        cfg = dataclasses.replace(cfg, data_root=str((base / cfg.data_root).resolve()))
    scenes = tuple(
        dataclasses.replace(s, path=str((base / s.path).resolve()))
        if s.path is not None and not Path(s.path).expanduser().is_absolute() else s
        for s in cfg.scenes
    )
    return dataclasses.replace(cfg, scenes=scenes)


def dump_config(cfg: BenchConfig) -> str:
    """YAML text of a configuration."""
    import yaml

    return str(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
