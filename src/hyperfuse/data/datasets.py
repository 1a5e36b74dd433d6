"""Datasets of clean ground-truth cubes: real scenes, user folders, dead-leaves scenes.

Every dataset yields ``{"cube": (C, H, W) float32, "wavelengths": (C,) or None, "name": str,
...}``; measurements are simulated from the cube by :mod:`hyperfuse.physics`
(``conventions.md`` §3.7). Nothing is ever downloaded (``download=False`` is the only
accepted value): real files are looked up under a root folder given as an argument or by
the ``HYPERFUSE_DATA`` environment variable, verified against pinned SHA-256 values, and a
missing file raises :class:`~hyperfuse.errors.DatasetNotFoundError` naming where to put it.

Where to get the standard benchmark data (not redistributable, hence user-supplied):

* **CAVE** (32 scenes, 512x512x31): https://www.cs.columbia.edu/CAVE/databases/multispectral/
  -- one folder of 16-bit PNGs per scene, or the ``.mat`` conversion (key ``rad``); point a
  ``folder`` scene at it with ``scale: 65535``.
* **Harvard** (50 scenes, 1392x1040x31): http://vision.seas.harvard.edu/hyperspec/ --
  ``.mat`` files with key ``ref``; a ``folder`` scene with ``key: ref`` and ``scale: max``.
* **Chikusei** (2517x2335x128): https://naotoyokoya.com/Download.html -- ENVI/BSQ int16,
  reflectance x 10000; a ``folder`` scene with ``scale: 10000``.
* **Pavia University** (610x340x103):
  https://www.ehu.eus/ccwintco/index.php/Hyperspectral_Remote_Sensing_Scenes -- ``PaviaU.mat``
  key ``paviaU``; a ``folder`` scene with ``key: paviaU`` and ``scale: max``.

The two small real scenes the project evaluates on (``jasper_ridge``, ``samson``) are
registered here with their checksums (``shared/data/MANIFEST.md``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetNotFoundError, InputError

__all__ = [
    "REAL_SCENES",
    "RealSceneInfo",
    "data_root",
    "sha256_file",
    "list_datasets",
    "RealScene",
    "FolderDataset",
    "DeadLeavesDataset",
    "load_real_scene",
]

ENV_VAR = "HYPERFUSE_DATA"
CUBE_SUFFIXES = (".npy", ".mat", ".tif", ".tiff", ".hdr", ".h5", ".hdf5")


@dataclass(frozen=True)
class RealSceneInfo:
    """A registered real scene: files (relative to the root) and how to scale them.

    Parameters
    ----------
    name : str
        Registry name.
    cube : str
        Cube file (H, W, C) relative to the data root.
    wavelengths : str or None
        Wavelength file (nm) relative to the root.
    scale : float
        Divisor mapping the stored values to [0, 1] (``protocols.md`` §8).
    sha256 : tuple of (str, str)
        (relative path, SHA-256) of every file that is read.
    source : str
        Where the data come from (shown in the not-found message).
    """

    name: str
    cube: str
    wavelengths: str | None
    scale: float
    sha256: tuple[tuple[str, str], ...]
    source: str


REAL_SCENES: dict[str, RealSceneInfo] = {
    "jasper_ridge": RealSceneInfo(
        name="jasper_ridge",
        cube="jasper_ridge/jasper_100x100x198_uint16.npy",
        wavelengths="jasper_ridge/wavelengths_nm_APPROX_aviris1995.npy",
        scale=5437.0,
        sha256=(
            ("jasper_ridge/jasper_100x100x198_uint16.npy",
             "5e5fca691162bc82a6a8d4cb99bcfa4f06c5d4309afe3b5e4aa5a1f0262edb46"),
            ("jasper_ridge/wavelengths_nm_APPROX_aviris1995.npy",
             "af788c0d09b5194c44d4d64c283cde36040e0c6f103df0ec0bedd1e77756e328"),
        ),
        source="jasperRidge2_R198.mat (F. Zhu, arXiv:1708.05125), e.g. "
        "github.com/ricardoborsoi/MUA_SparseUnmixing real_data/, converted to (100,100,198) uint16 .npy",
    ),
    "samson": RealSceneInfo(
        name="samson",
        cube="samson/samson_95x95x156_counts_uint16.npy",
        wavelengths="samson/wavelengths_nm_APPROX.npy",
        scale=1402.0,
        sha256=(
            ("samson/samson_95x95x156_counts_uint16.npy",
             "cb194c840834dbeca73513e4ae37ee6a2fc8a6113b5f2e0057de81dcba7b14de"),
            ("samson/wavelengths_nm_APPROX.npy",
             "2a3129f1f4447ed1d6c8efa3f4200bd3d706ded128343d502cf656c59de2591c"),
        ),
        source="samson_1.mat (F. Zhu, arXiv:1708.05125), e.g. "
        "github.com/ricardoborsoi/MUA_SparseUnmixing real_data/, as (95,95,156) uint16 counts/1402",
    ),
}


def list_datasets() -> list[str]:
    """Names of the registered real scenes.

    Examples
    --------
    >>> list_datasets()
    ['jasper_ridge', 'samson']
    """
    return sorted(REAL_SCENES)


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``root`` if given, else ``$HYPERFUSE_DATA``.

    Raises
    ------
    DatasetNotFoundError
        Neither is set, or the folder does not exist.
    """
    if root is None:
        env = os.environ.get(ENV_VAR)
        if not env:
            raise DatasetNotFoundError(
                f"no data root: pass root=... (data_root: in the benchmark YAML) or set {ENV_VAR} "
                "to the folder holding jasper_ridge/, samson/, ... (the layout of shared/data)"
            )
        root = env
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"data root {str(path)!r} does not exist; create it and put the dataset folders "
            f"(jasper_ridge/, samson/, ...) inside, or point {ENV_VAR} elsewhere"
        )
    return path


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file (cached by path, size and mtime)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


def _check_download(download: bool) -> None:
    if download:
        raise InputError(
            "hyperfuse never downloads data (download=False); fetch the files yourself and "
            f"point root= or {ENV_VAR} at them"
        )


def load_real_scene(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    verify: bool = True,
) -> dict[str, Any]:
    """Load a registered real scene as a clean cube in [0, 1].

    Parameters
    ----------
    name : str
        A name of :func:`list_datasets`.
    root : path, optional
        Data root (default ``$HYPERFUSE_DATA``).
    download : bool
        Must be False.
    verify : bool
        Check the SHA-256 of every file.

    Returns
    -------
    dict
        ``cube`` (C, H, W) float32, ``wavelengths`` (C,) float64 or None, ``name``,
        ``files`` {relative path: sha256}, ``scale``.

    Raises
    ------
    DatasetNotFoundError
        A file is missing (the message names the expected path and the source).
    InputError
        Unknown name, ``download=True`` or a checksum mismatch.
    """
    _check_download(download)
    if name not in REAL_SCENES:
        raise InputError(f"unknown dataset {name!r}; choose one of: {', '.join(list_datasets())}")
    info = REAL_SCENES[name]
    base = data_root(root)
    files: dict[str, str] = {}
    for rel, expected in info.sha256:
        p = base / rel
        if not p.is_file():
            raise DatasetNotFoundError(
                f"dataset {name!r}: missing {str(p)!r}; put the file there (source: {info.source}), "
                f"or pass another root / set {ENV_VAR}"
            )
        if verify:
            got = sha256_file(p)
            if got != expected:
                raise InputError(
                    f"dataset {name!r}: checksum mismatch for {str(p)!r} (sha256 {got[:12]}..., "
                    f"expected {expected[:12]}...); replace the file with the original"
                )
            files[rel] = got
        else:
            files[rel] = expected
    raw = np.load(base / info.cube)
    cube = (raw.astype(np.float64) / info.scale).astype(np.float32)
    wl = None if info.wavelengths is None else np.load(base / info.wavelengths).astype(np.float64)
    return {
        "cube": np.ascontiguousarray(cube.transpose(2, 0, 1)),
        "wavelengths": wl,
        "name": name,
        "files": files,
        "scale": info.scale,
    }


class RealScene:
    """A registered real scene as a one-item dataset (``len == 1``).

    Parameters
    ----------
    name : str
        ``"jasper_ridge"`` or ``"samson"``.
    root : path, optional
        Data root (default ``$HYPERFUSE_DATA``).
    download : bool
        Must be False.
    """

    def __init__(
        self, name: str, root: str | os.PathLike[str] | None = None, *, download: bool = False
    ) -> None:
        _check_download(download)
        self.name = name
        self.root = root
        self._item: dict[str, Any] | None = None

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index not in (0, -1):
            raise IndexError(index)
        if self._item is None:
            self._item = load_real_scene(self.name, self.root)
        return self._item


class FolderDataset:
    """Every cube file of a user folder (.npy, .mat, GeoTIFF, ENVI .hdr, HDF5), sorted by name.

    Parameters
    ----------
    root : path
        The folder.
    scale : float or "max", optional
        Divisor to reflectance (required for integer data without a ``scale.json``).
    key : str, optional
        Variable name inside ``.mat``/HDF5 files.
    layout : {"hwc", "chw"}, optional
        Axis order on disk.
    pattern : str
        Glob pattern (default: every supported suffix).

    Raises
    ------
    DatasetNotFoundError
        The folder does not exist or holds no cube.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        scale: float | str | None = None,
        key: str | None = None,
        layout: str | None = None,
        pattern: str = "*",
        download: bool = False,
    ) -> None:
        _check_download(download)
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"folder {str(self.root)!r} does not exist; put your cubes (.mat/.npy/.tif/.hdr) there "
                "or fix the path"
            )
        self.files = sorted(
            p for p in self.root.glob(pattern)
            if p.is_file() and p.suffix.lower() in CUBE_SUFFIXES and p.name != "scale.json"
            and not p.name.startswith("wavelengths")
        )
        if not self.files:
            raise DatasetNotFoundError(
                f"no cube files matching {pattern!r} in {str(self.root)!r}; supported: "
                f"{', '.join(CUBE_SUFFIXES)}"
            )
        self.scale, self.key, self.layout = scale, key, layout

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index: int) -> dict[str, Any]:
        from ..io import load_cube

        path = self.files[index]
        cube, meta = load_cube(
            path, key=self.key, layout=self.layout,  # type: ignore[arg-type]
            scale=self.scale, name=path.name,
        )
        return {
            "cube": np.ascontiguousarray(cube.transpose(2, 0, 1)),
            "wavelengths": meta.wavelengths,
            "name": path.stem,
            "files": {path.name: sha256_file(path)},
            "scale": meta.extra.get("applied_scale", self.scale),
        }


class DeadLeavesDataset:
    """Dead-leaves scenes by seed (``hyperfuse.data.synthetic.dead_leaves_scene``).

    Parameters
    ----------
    seeds : sequence of int
        One scene per seed.
    shape : (H, W)
        Spatial size.
    wavelengths : array_like of shape (L,)
        Band centres in nm.
    n_endmembers : int
        Number of endmembers.

    Examples
    --------
    >>> ds = DeadLeavesDataset([3], (16, 16), np.linspace(400, 1000, 8), n_endmembers=3)
    >>> item = ds[0]
    >>> item["cube"].shape, item["name"]
    ((8, 16, 16), 'dead_leaves-seed3')
    """

    def __init__(
        self,
        seeds: Sequence[int],
        shape: tuple[int, int],
        wavelengths: Sequence[float] | np.ndarray,
        *,
        n_endmembers: int = 6,
        download: bool = False,
    ) -> None:
        _check_download(download)
        self.seeds = [int(s) for s in seeds]
        self.shape = (int(shape[0]), int(shape[1]))
        self.wavelengths = np.asarray(wavelengths, dtype=np.float64)
        self.n_endmembers = int(n_endmembers)

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from .synthetic import dead_leaves_scene

        seed = self.seeds[index]
        s = dead_leaves_scene(self.shape, self.wavelengths, n_endmembers=self.n_endmembers, rng=seed)
        return {
            "cube": np.ascontiguousarray(s.cube, dtype=np.float32),
            "wavelengths": s.wavelengths,
            "name": f"dead_leaves-seed{seed}",
            "files": {},
            "scale": 1.0,
            "endmembers": s.endmembers,
            "abundances": s.abundances,
            "info": json.loads(json.dumps(s.info, default=str)),
        }
