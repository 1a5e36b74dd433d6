"""Run records: what produced a result, with versions, timings and memory."""

from __future__ import annotations

import json
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._atomic import atomic_write_text
from .types import SensorSpec

__all__ = ["jsonable", "write_json", "versions", "peak_memory_mb", "run_record"]


def peak_memory_mb() -> float:
    """Peak resident set size of this process in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def versions() -> dict[str, str]:
    """Versions of the software that produced a result."""
    import numpy
    import torch

    return {
        "hyperfuse": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, np.integer)):
        return jsonable(obj.item())
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # torch tensors
        return jsonable(obj.tolist())
    if isinstance(obj, float) and obj != obj:
        return None  # NaN is not JSON; inf is kept (Python's json reads it back)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float | int | str | bool) or obj is None:
        return obj
    return repr(obj)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write canonical JSON atomically."""
    atomic_write_text(path, json.dumps(jsonable(payload), indent=2, sort_keys=True) + "\n")


def run_record(
    *, command: str, method: str | None, config: dict[str, Any], sensor: SensorSpec | None,
    wall_time: float, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of one run: method, config, versions, sensor, timings, peak memory."""
    rec: dict[str, Any] = {
        "command": command,
        "method": method,
        "config": config,
        "versions": versions(),
        "wall_time_s": round(wall_time, 4),
        "peak_memory_mb": round(peak_memory_mb(), 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sensor": None if sensor is None else sensor.to_dict(),
    }
    rec.update(extra or {})
    return rec


