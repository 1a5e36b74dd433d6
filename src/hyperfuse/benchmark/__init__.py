"""Benchmark: methods x scenes x sensors, resumable cells, tables and figures.

The runner imports torch lazily; importing this package is cheap.
"""

from .config import BenchConfig, MethodConfig, SceneConfig, SensorConfig, load_config
from .runner import BenchmarkResult, Cell, expand_cells, run_benchmark, run_cell

__all__ = [
    "BenchConfig",
    "MethodConfig",
    "SceneConfig",
    "SensorConfig",
    "load_config",
    "Cell",
    "expand_cells",
    "run_cell",
    "run_benchmark",
    "BenchmarkResult",
]
