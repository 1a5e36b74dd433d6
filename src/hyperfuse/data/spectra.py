"""Endmember spectra for synthetic scenes (``specs/synthetic.md`` §3).

Three sources, all returning a matrix ``E`` of shape (L, p) with reflectance values in
[0.01, 0.95] and no NaN, on any wavelength grid (nanometres):

- :func:`builtin_spectra` -- parametric material families, no data files needed;
- :func:`library_spectra` -- spectra picked from a spectral-library file and resampled;
- :func:`scene_spectra` -- randomly perturbed copies of endmembers extracted from a scene.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from .._random import RNGLike, as_numpy_rng
from ..errors import FormatError, InputError, ShapeError, ValueRangeError

__all__ = [
    "Family",
    "FAMILIES",
    "REFLECTANCE_RANGE",
    "check_wavelengths",
    "builtin_spectra",
    "library_spectra",
    "read_library",
    "scene_spectra",
]

Family = Literal["vegetation", "soil", "water", "manmade", "random"]
FAMILIES: tuple[Family, ...] = ("vegetation", "soil", "water", "manmade", "random")
REFLECTANCE_RANGE = (0.01, 0.95)
_FLAG = -1e30  # USGS deleted-channel flag is -1.23e34; anything below this is missing


def check_wavelengths(wavelengths: np.ndarray | Sequence[float]) -> np.ndarray:
    """Validate a wavelength grid in nanometres and return it as float64 (L,).

    Parameters
    ----------
    wavelengths : array_like of shape (L,)
        Band centres in nm, finite and positive.

    Returns
    -------
    ndarray of float64, shape (L,)

    Raises
    ------
    InputError
        If the grid is empty, not 1-D, not finite, or looks like micrometres.

    Examples
    --------
    >>> check_wavelengths([400, 500, 600]).dtype
    dtype('float64')
    """
    wl = np.asarray(wavelengths, dtype=np.float64)
    if wl.ndim != 1 or wl.size == 0:
        raise InputError(f"wavelengths must be a non-empty 1-D array, got shape {wl.shape}")
    if not np.isfinite(wl).all() or (wl <= 0).any():
        raise InputError("wavelengths must be finite and positive (nanometres)")
    if wl.max() < 100:
        raise InputError(f"wavelengths look like micrometres (max {wl.max():g}); pass nanometres")
    return wl


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _gauss(lam: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((lam - centre) / width) ** 2)


def _vegetation(lam: np.ndarray, g: np.random.Generator) -> np.ndarray:
    vis = g.uniform(0.02, 0.06) * (1.0 - 0.5 * _gauss(lam, 675.0, 25.0))
    green = g.uniform(0.03, 0.10) * _gauss(lam, g.uniform(545.0, 560.0), g.uniform(25.0, 40.0))
    edge = _sigmoid((lam - g.uniform(700.0, 740.0)) / g.uniform(9.0, 16.0))
    nir = g.uniform(0.30, 0.60)
    decay = 1.0 - g.uniform(0.3, 0.6) * _sigmoid((lam - g.uniform(1400.0, 1700.0)) / 250.0)
    water = np.ones_like(lam)
    for centre, width, depth in (
        (970.0, 30.0, g.uniform(0.02, 0.10)),
        (1200.0, 40.0, g.uniform(0.05, 0.20)),
        (1450.0, 60.0, g.uniform(0.40, 0.70)),
        (1940.0, 80.0, g.uniform(0.60, 0.85)),
    ):
        water *= 1.0 - depth * _gauss(lam, centre, width)
    return vis + green * (1.0 - edge) + edge * nir * decay * water


def _soil(lam: np.ndarray, g: np.random.Generator) -> np.ndarray:
    base = g.uniform(0.04, 0.20)
    rise = g.uniform(0.10, 0.45)
    curve = base + rise * _sigmoid((lam - g.uniform(450.0, 900.0)) / g.uniform(120.0, 400.0))
    for centre, width, depth in (
        (g.uniform(870.0, 950.0), 90.0, g.uniform(0.0, 0.15)),  # ferric iron
        (1410.0, 45.0, g.uniform(0.0, 0.20)),  # OH / water
        (1910.0, 55.0, g.uniform(0.0, 0.30)),  # water
        (g.uniform(2160.0, 2340.0), 35.0, g.uniform(0.0, 0.25)),  # clay / carbonate
    ):
        curve *= 1.0 - depth * _gauss(lam, centre, width)
    return curve


def _water(lam: np.ndarray, g: np.random.Generator) -> np.ndarray:
    amp = g.uniform(0.03, 0.10)
    tau = g.uniform(80.0, 220.0)
    turbid = g.uniform(0.0, 0.04) * _gauss(lam, g.uniform(550.0, 590.0), 40.0)
    return 0.012 + amp * np.exp(-np.maximum(lam - 450.0, 0.0) / tau) + turbid


def _manmade(lam: np.ndarray, g: np.random.Generator) -> np.ndarray:
    lo, hi = float(lam.min()), float(lam.max())
    level = g.uniform(0.05, 0.8)
    if g.random() < 0.5:  # flat, with a slight tilt
        slope = g.uniform(-0.05, 0.05) * (lam - 0.5 * (lo + hi)) / 1000.0
        return level + slope
    other = g.uniform(0.05, 0.8)
    step = _sigmoid((lam - g.uniform(lo, hi + 1.0)) / g.uniform(8.0, 50.0))
    return level + (other - level) * step


def _random_smooth(lam: np.ndarray, g: np.random.Generator) -> np.ndarray:
    lo, hi = float(lam.min()), float(lam.max())
    span = max(hi - lo, 50.0)
    curve = np.zeros_like(lam)
    for _ in range(int(g.integers(3, 7))):
        width = g.uniform(0.05, 0.5) * span
        curve += g.standard_normal() * _gauss(
            lam, g.uniform(lo - 0.1 * span, hi + 0.1 * span), width
        )
    for _ in range(int(g.integers(1, 3))):
        curve += g.standard_normal() * _sigmoid(
            (lam - g.uniform(lo, hi + 1.0)) / (g.uniform(0.02, 0.2) * span)
        )
    cmin, cmax = float(curve.min()), float(curve.max())
    unit = (curve - cmin) / (cmax - cmin) if cmax - cmin > 1e-9 else np.full_like(lam, 0.5)
    floor = g.uniform(0.02, 0.4)
    return floor + g.uniform(0.1, 0.5) * unit


_MAKERS = {
    "vegetation": _vegetation,
    "soil": _soil,
    "water": _water,
    "manmade": _manmade,
    "random": _random_smooth,
}


def builtin_spectra(
    wavelengths: np.ndarray | Sequence[float],
    p: int,
    *,
    rng: RNGLike = None,
    families: Sequence[Family] = FAMILIES,
) -> np.ndarray:
    """Parametric reflectance spectra that look like real materials.

    Families: ``"vegetation"`` (low visible, green bump near 550 nm, red edge at
    700-740 nm, NIR plateau, water absorptions near 970/1200/1450/1940 nm), ``"soil"``
    (soils and rocks: monotone rise with broad iron, water and clay absorptions),
    ``"water"`` (low, decreasing), ``"manmade"`` (flat or step-like) and ``"random"``
    (sums of Gaussians and sigmoids). Spectrum j takes its family from a random
    permutation of ``families`` repeated, so p >= len(families) uses every family.

    Parameters
    ----------
    wavelengths : array_like of shape (L,)
        Band centres in nanometres (any range, any number of bands).
    p : int
        Number of spectra.
    rng : int, numpy.random.Generator, torch.Generator or None
        Randomness.
    families : sequence of str
        Families to draw from.

    Returns
    -------
    E : ndarray of float64, shape (L, p)
        Spectra in [0.01, 0.95].

    Examples
    --------
    >>> E = builtin_spectra(np.linspace(400, 2500, 50), 5, rng=0)
    >>> E.shape, bool(E.min() >= 0.01 and E.max() <= 0.95)
    ((50, 5), True)
    """
    lam = check_wavelengths(wavelengths)
    p = int(p)
    if p < 1:
        raise InputError(f"p must be >= 1, got {p}")
    fams = list(families)
    bad = [f for f in fams if f not in _MAKERS]
    if bad or not fams:
        raise InputError(f"families must be a non-empty subset of {list(FAMILIES)}, got {fams}")
    g = as_numpy_rng(rng)
    order = np.concatenate([g.permutation(len(fams)) for _ in range(-(-p // len(fams)))])[:p]
    E = np.stack([_MAKERS[fams[int(k)]](lam, g) for k in order], axis=1)
    return np.clip(E, *REFLECTANCE_RANGE)


# --------------------------------------------------------------------------------------
# Spectral library files
# --------------------------------------------------------------------------------------

_WL_KEYS = ("wavelengths", "wavelength", "wavelengths_nm", "wavelength_nm", "wl", "lambda")
_WL_UM_KEYS = ("wavelengths_um", "wavelength_um")
_SPEC_KEYS = ("spectra", "library", "endmembers", "E", "data", "reflectance")


def _as_nm(wl: np.ndarray) -> np.ndarray:
    """Micrometres -> nanometres when the grid is obviously in micrometres."""
    finite = wl[np.isfinite(wl)]
    return wl * 1000.0 if finite.size and finite.max() < 100 else wl


@functools.lru_cache(maxsize=8)
def _read_library_cached(
    path: str, mtime_ns: int, size: int
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    suffix = Path(path).suffix.lower()
    names: tuple[str, ...] = ()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if "datalib_full" in keys:  # USGS splib / SUnSAL layout
                full = np.asarray(z["datalib_full"], dtype=np.float64)
                if full.ndim != 2 or full.shape[1] < 4:
                    raise FormatError(f"{path}: datalib_full must be (channels, 3 + n)")
                meta = full[:, :3]
                bad_channel = ~np.isfinite(meta).all(axis=1) | (meta < _FLAG).any(axis=1)
                wl = full[:, 0] * 1000.0
                spectra = full[:, 3:].copy()
                spectra[bad_channel, :] = np.nan
                if "names" in keys:
                    names = tuple(str(s).strip() for s in z["names"])[3:]
            else:
                wkey = next((k for k in _WL_KEYS + _WL_UM_KEYS if k in keys), None)
                skey = next((k for k in _SPEC_KEYS if k in keys), None)
                if wkey is None or skey is None:
                    raise FormatError(
                        f"{path}: expected keys 'wavelengths' and 'spectra' "
                        f"(or the USGS 'datalib_full'), found {sorted(keys)}"
                    )
                wl = np.asarray(z[wkey], dtype=np.float64).reshape(-1)
                wl = wl * 1000.0 if wkey in _WL_UM_KEYS else _as_nm(wl)
                spectra = np.asarray(z[skey], dtype=np.float64)
                if "names" in keys:
                    names = tuple(str(s).strip() for s in np.atleast_1d(z["names"]))
    elif suffix in (".csv", ".txt"):
        try:
            table = np.genfromtxt(path, delimiter="," if suffix == ".csv" else None)
        except ValueError as exc:
            raise FormatError(f"{path}: not a numeric table ({exc})") from exc
        table = np.atleast_2d(table)
        table = table[np.isfinite(table[:, 0])]  # drops a header row
        if table.ndim != 2 or table.shape[1] < 2 or table.shape[0] < 2:
            raise FormatError(f"{path}: expected columns wavelength, spectrum1, spectrum2, ...")
        wl = _as_nm(table[:, 0])
        spectra = table[:, 1:]
    else:
        raise FormatError(f"{path}: unsupported spectral library format; use .npz or .csv")
    if spectra.ndim == 1:
        spectra = spectra[:, None]
    if spectra.ndim != 2:
        raise FormatError(f"{path}: spectra must be a 2-D table, got shape {spectra.shape}")
    if spectra.shape[0] != wl.size:
        if spectra.shape[1] == wl.size:
            spectra = spectra.T
        else:
            raise FormatError(f"{path}: {wl.size} wavelengths but spectra of shape {spectra.shape}")
    spectra = np.where((spectra < _FLAG) | ~np.isfinite(spectra), np.nan, spectra)
    spectra[~np.isfinite(wl)] = np.nan
    wl = np.where(np.isfinite(wl), wl, 0.0)
    wl.setflags(write=False)
    spectra.setflags(write=False)
    return wl, spectra, names


def read_library(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Read a spectral-library table.

    Supported layouts: the USGS/SUnSAL ``.npz`` (``datalib_full`` with columns
    wavelength (um), FWHM (um), channel number, then spectra; channels whose metadata
    carry the deleted-channel flag -1.23e34 are dropped), a generic ``.npz`` with
    ``wavelengths`` (nm, or ``wavelength_um``) and ``spectra`` (L, n) or (n, L), and a
    ``.csv`` whose first column is the wavelength and the others spectra (an optional
    header row is skipped). Wavelengths below 100 are taken as micrometres.

    Parameters
    ----------
    path : path-like
        The library file.

    Returns
    -------
    wavelengths : ndarray of float64, shape (C,)
        Channel centres in nm (read-only).
    spectra : ndarray of float64, shape (C, n)
        Reflectance; flagged or missing values are NaN (read-only).
    names : tuple of str
        Spectrum names when the file has them, else empty.

    Raises
    ------
    FormatError
        If the file cannot be parsed.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError as exc:
        raise FormatError(f"spectral library not found: {p}") from exc
    return _read_library_cached(str(p.resolve()), st.st_mtime_ns, st.st_size)


def _library_pick(
    path: str | os.PathLike[str],
    wavelengths: np.ndarray | Sequence[float],
    p: int,
    rng: RNGLike,
) -> tuple[np.ndarray, list[int], list[str]]:
    lam = check_wavelengths(wavelengths)
    p = int(p)
    if p < 1:
        raise InputError(f"p must be >= 1, got {p}")
    wl, spectra, names = read_library(path)
    valid = np.isfinite(spectra) & (wl[:, None] > 0)
    usable = np.flatnonzero(
        (valid.sum(axis=0) >= 2) & (np.nanmax(np.where(valid, spectra, np.nan), axis=0) > 0.01)
        if valid.any()
        else np.zeros(spectra.shape[1], dtype=bool)
    )
    if usable.size == 0:
        raise ValueRangeError(f"{path}: no usable spectrum (all missing or dark)")
    g = as_numpy_rng(rng)
    pick = g.choice(usable, size=p, replace=p > usable.size)
    E = np.empty((lam.size, p))
    for j, k in enumerate(pick):
        ok = valid[:, k]
        x, y = wl[ok], spectra[ok, k]
        order = np.argsort(x, kind="stable")
        E[:, j] = np.interp(lam, x[order], y[order])
    label = [names[k] if k < len(names) else f"spectrum {k}" for k in pick]
    return np.clip(E, *REFLECTANCE_RANGE), [int(k) for k in pick], label


def library_spectra(
    path: str | os.PathLike[str],
    wavelengths: np.ndarray | Sequence[float],
    p: int,
    *,
    rng: RNGLike = None,
) -> np.ndarray:
    """Pick p spectra from a spectral library and resample them to ``wavelengths``.

    Flagged or missing channels of each spectrum are dropped, then the spectrum is
    linearly interpolated to the target bands (held constant beyond the library's
    range) and clipped to [0.01, 0.95]. Spectra are drawn without replacement when the
    library has enough of them.

    Parameters
    ----------
    path : path-like
        Library file, see :func:`read_library` for the layouts.
    wavelengths : array_like of shape (L,)
        Target band centres in nm.
    p : int
        Number of spectra.
    rng : int, numpy.random.Generator, torch.Generator or None
        Randomness (which spectra are picked).

    Returns
    -------
    E : ndarray of float64, shape (L, p)

    Raises
    ------
    FormatError
        If the file cannot be read.
    ValueRangeError
        If the library holds no usable spectrum.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "lib.csv"
    >>> _ = f.write_text("nm,a,b\\n400,0.1,0.5\\n700,0.3,0.5\\n1000,0.5,0.5\\n")
    >>> library_spectra(f, [400, 550, 1000], 2, rng=0).round(2).T.tolist()
    [[0.1, 0.2, 0.5], [0.5, 0.5, 0.5]]
    """
    return _library_pick(path, wavelengths, p, rng)[0]


# --------------------------------------------------------------------------------------
# Scene endmembers
# --------------------------------------------------------------------------------------


def scene_spectra(
    endmembers: np.ndarray,
    p: int,
    *,
    rng: RNGLike = None,
    perturb: float = 0.05,
    max_shift: float = 1.0,
) -> np.ndarray:
    """Randomly perturbed copies of endmembers extracted from a real scene.

    Copy j starts from endmember ``order[j]`` (a random permutation of the k
    endmembers, repeated), is shifted along the spectral axis by a random fraction of
    a band in ``[-max_shift, max_shift]`` (linear interpolation, edges held) and
    multiplied by ``exp(perturb * f)``, where ``f`` is a smooth random curve (a sum of
    four low-frequency cosines, unit variance on average). The result is clipped to
    [0.01, 0.95].

    Parameters
    ----------
    endmembers : ndarray of shape (L, k)
        Extracted endmembers (e.g. by VCA), reflectance-scaled.
    p : int
        Number of spectra to return.
    rng : int, numpy.random.Generator, torch.Generator or None
        Randomness.
    perturb : float
        Standard deviation of the smooth log-multiplicative noise (0 disables it).
    max_shift : float
        Largest spectral shift in bands (0 disables it).

    Returns
    -------
    E : ndarray of float64, shape (L, p)

    Raises
    ------
    ShapeError
        If ``endmembers`` is not (L, k).
    ValueRangeError
        If it holds NaN/Inf or is not reflectance-scaled (max > 1.5).

    Examples
    --------
    >>> base = np.linspace(0.1, 0.6, 30)[:, None]
    >>> E = scene_spectra(base, 3, rng=0)
    >>> E.shape, bool(np.abs(E - base).max() < 0.2)
    ((30, 3), True)
    """
    E0 = np.asarray(endmembers, dtype=np.float64)
    if E0.ndim == 1:
        E0 = E0[:, None]
    if E0.ndim != 2 or E0.shape[0] < 1 or E0.shape[1] < 1:
        raise ShapeError(f"endmembers must be an (L, k) matrix, got shape {E0.shape}")
    if not np.isfinite(E0).all():
        raise ValueRangeError("endmembers contain NaN or Inf; drop those bands first")
    if E0.max() > 1.5:
        raise ValueRangeError(
            f"endmembers look unscaled (max {E0.max():g}); scale them to reflectance [0, 1]"
        )
    p = int(p)
    if p < 1:
        raise InputError(f"p must be >= 1, got {p}")
    L, k = E0.shape
    g = as_numpy_rng(rng)
    order = np.concatenate([g.permutation(k) for _ in range(-(-p // k))])[:p]
    idx = np.arange(L, dtype=np.float64)
    t = idx / max(L - 1, 1)
    out = np.empty((L, p))
    for j, src in enumerate(order):
        shift = g.uniform(-1.0, 1.0) * float(max_shift)
        e = np.interp(idx - shift, idx, E0[:, src])
        freq = g.uniform(0.2, 3.0, 4)
        phase = g.uniform(0.0, 2 * np.pi, 4)
        amp = g.standard_normal(4) * np.sqrt(2.0 / 4.0)
        f = (amp[:, None] * np.cos(2 * np.pi * freq[:, None] * t[None, :] + phase[:, None])).sum(0)
        out[:, j] = e * np.exp(float(perturb) * f)
    return np.clip(out, *REFLECTANCE_RANGE)
