"""Spectral response functions (SRFs): resampling, named sensors and user files.

An SRF matrix R ∈ ℝ^{l×L} maps an HSI spectrum (L bands) to the l MSI bands:
MSI band m = ``R[m] @ spectrum``. This module builds R from

* a sensor's relative spectral responses tabulated against wavelength
  (:func:`resample_srf`, ``protocols.md`` §5),
* a named sensor (:func:`get_srf`, :func:`list_srfs`): Sentinel-2A/2B and
  Landsat-8/9 OLI (from ``pyrsr``), the CIE 1931 observer and the cameras of
  ``colour-science``, Gaussian band-pass families and the approximate
  WorldView-2-like boxcars,
* a user file (:func:`load_srf`): an l×L matrix or a wavelength table,

and :func:`srf_from_spec` is the single entry point the CLI calls with the
user's ``--srf`` string. Everything returns an :class:`SRFResult`.

All wavelengths are in nanometres. The optional packages ``pyrsr`` and
``colour-science`` (extra ``hyperfuse[srf]``) are imported lazily, only when a
sensor that needs them is requested.
"""

from __future__ import annotations

import csv
import functools
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hyperfuse.errors import SRFError, require

__all__ = [
    "SRFResult",
    "box_srf",
    "resample_srf",
    "get_srf",
    "list_srfs",
    "load_srf",
    "srf_from_spec",
]

Method = Literal["hat", "point", "gaussian"]

#: Neighbouring HS centres further apart than this many median spacings form a gap.
GAP_FACTOR = 1.5
#: FWHM = this × σ for a Gaussian.
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

# WorldView-2-like boxcars on the nominal band edges (protocols.md §5). Approximate.
_WV2_LIKE: tuple[tuple[str, float, float], ...] = (
    ("Coastal", 400.0, 450.0),
    ("Blue", 450.0, 510.0),
    ("Green", 510.0, 580.0),
    ("Yellow", 585.0, 625.0),
    ("Red", 630.0, 690.0),
    ("RedEdge", 705.0, 745.0),
    ("NIR1", 770.0, 895.0),
    ("NIR2", 860.0, 1040.0),
)

_S2_10BAND = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class SRFResult:
    """A spectral response matrix with its provenance.

    Parameters
    ----------
    matrix : ndarray of shape (l, L), float64
        Row m is MSI band m's response on the HSI bands (in the HSI's own band
        order). Rows are non-negative; they sum to 1 unless the result was built
        with ``normalise_rows=False``.
    band_names : tuple of str
        One name per row (kept bands only).
    coverage : ndarray of shape (l,)
        Fraction of each kept band's response that falls inside the observed HSI
        range (``protocols.md`` §5, step 5). NaN when unknown (a matrix given
        directly).
    dropped : tuple of (str, float)
        Bands removed because their coverage was below ``min_coverage``, with
        their coverage.
    source : str
        Where the response came from (sensor name, package version or file path,
        and any conversion applied).
    approximate : bool
        True for responses that only approximate a real sensor (e.g. ``"wv2-like"``).
    centres : ndarray of shape (l,)
        Weighted centre of each kept band in nm: ``matrix_normalised @ wavelengths``.
        NaN when the HSI wavelengths are unknown.

    Examples
    --------
    >>> res = get_srf("gaussian:2", np.linspace(400, 700, 31))
    >>> res.matrix.shape, res.band_names
    ((2, 31), ('G1', 'G2'))
    """

    matrix: np.ndarray
    band_names: tuple[str, ...]
    coverage: np.ndarray
    dropped: tuple[tuple[str, float], ...]
    source: str
    approximate: bool
    centres: np.ndarray

    def __post_init__(self) -> None:
        for name in ("matrix", "coverage", "centres"):
            arr = np.array(getattr(self, name), dtype=np.float64, copy=True)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "band_names", tuple(str(b) for b in self.band_names))
        object.__setattr__(self, "dropped", tuple((str(n), float(c)) for n, c in self.dropped))

    @property
    def n_bands(self) -> int:
        """Number of MSI bands l (rows of :attr:`matrix`)."""
        return int(self.matrix.shape[0])

    def to_info(self) -> dict[str, Any]:
        """Provenance as a JSON-serialisable dict (for ``SensorSpec.info``).

        Returns
        -------
        dict
            Keys ``srf_source``, ``srf_band_names``, ``srf_coverage``,
            ``srf_dropped``, ``srf_approximate`` and ``srf_centres_nm``.

        Examples
        --------
        >>> get_srf("gaussian:2", np.linspace(400, 700, 31)).to_info()["srf_band_names"]
        ['G1', 'G2']
        """
        return {
            "srf_source": self.source,
            "srf_band_names": list(self.band_names),
            "srf_coverage": [float(c) for c in self.coverage],
            "srf_dropped": {n: c for n, c in self.dropped},
            "srf_approximate": bool(self.approximate),
            "srf_centres_nm": [float(c) for c in self.centres],
        }


# --------------------------------------------------------------------------- helpers


def box_srf(n_hsi_bands: int, n_msi_bands: int) -> np.ndarray:
    """Flat SRF: MSI band k averages the k-th of ``n_msi_bands`` contiguous, near-equal runs of HSI bands.

    A synthetic sensor for tests and benchmarks (rows sum to 1).

    Examples
    --------
    >>> box_srf(5, 2)
    array([[0.5       , 0.5       , 0.        , 0.        , 0.        ],
           [0.        , 0.        , 0.33333333, 0.33333333, 0.33333333]])
    """
    if not 1 <= n_msi_bands <= n_hsi_bands:
        raise SRFError(f"box_srf needs 1 <= MSI bands ({n_msi_bands}) <= HSI bands ({n_hsi_bands})")
    srf = np.zeros((n_msi_bands, n_hsi_bands))
    edges = np.linspace(0, n_hsi_bands, n_msi_bands + 1).astype(int)
    for k in range(n_msi_bands):
        srf[k, edges[k] : edges[k + 1]] = 1.0 / (edges[k + 1] - edges[k])
    return srf


def _fmt_nm(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 0.05 else f"{x:.1f}"


def _check_hsi_wavelengths(hsi_wavelengths: Any, what: str = "SRF") -> np.ndarray:
    if hsi_wavelengths is None:
        raise SRFError(
            f"{what} needs the HSI band wavelengths; pass --wavelengths FILE "
            "(or hsi_wavelengths=) in nm"
        )
    wl = np.asarray(hsi_wavelengths, dtype=np.float64)
    if wl.ndim != 1 or wl.size == 0:
        raise SRFError(
            f"HSI wavelengths must be a non-empty 1-D array, got shape {wl.shape}; "
            "pass one centre (nm) per HSI band"
        )
    if not np.all(np.isfinite(wl)):
        raise SRFError("HSI wavelengths contain NaN or Inf; give one finite centre (nm) per band")
    if np.any(wl <= 0):
        raise SRFError("HSI wavelengths must be positive (nm); check the wavelength file")
    if wl.max() < 30:
        raise SRFError(
            f"HSI wavelengths look like micrometres (max {wl.max():g}); "
            "convert them to nm (multiply by 1000)"
        )
    return wl


def _check_fwhm(hsi_fwhm: Any, n: int) -> np.ndarray | None:
    if hsi_fwhm is None:
        return None
    f = np.asarray(hsi_fwhm, dtype=np.float64)
    if f.ndim == 0:
        f = np.full(n, float(f))
    if f.shape != (n,):
        raise SRFError(
            f"hsi_fwhm has shape {f.shape} but the HSI has {n} bands; "
            "give one FWHM (nm) per band or a single number"
        )
    if not np.all(np.isfinite(f)) or np.any(f <= 0):
        raise SRFError("hsi_fwhm must be positive and finite (nm); check the FWHM values")
    return f


def _local_spacing(u: np.ndarray, fallback: float | None) -> np.ndarray:
    """Per-centre spacing on sorted unique centres, ignoring gaps."""
    n = u.size
    if n == 1:
        if fallback is None:
            raise SRFError("cannot infer the width of a single HSI band; pass hsi_fwhm (nm)")
        return np.array([fallback])
    d = np.diff(u)
    med = float(np.median(d))
    ok = d <= GAP_FACTOR * med
    s = np.empty(n)
    for i in range(n):
        vals = []
        if i > 0 and ok[i - 1]:
            vals.append(d[i - 1])
        if i < n - 1 and ok[i]:
            vals.append(d[i])
        s[i] = float(np.mean(vals)) if vals else med
    return s


def _hat_basis(grid: np.ndarray, u: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Hat basis on sorted unique centres ``u`` with widths ``f`` (protocols.md §5.3).

    Returns an array of shape (len(grid), len(u)).
    """
    n = u.size
    phi = np.zeros((grid.size, n))
    # ends: flat out to c ± f/2
    phi[(grid >= u[0] - f[0] / 2) & (grid < u[0]), 0] = 1.0
    phi[(grid >= u[-1]) & (grid <= u[-1] + f[-1] / 2), -1] = 1.0
    if n == 1:
        return phi
    d = np.diff(u)
    gap = d > GAP_FACTOR * float(np.median(d))
    seg = np.searchsorted(u, grid, side="right") - 1  # u[seg] <= λ < u[seg + 1]
    k = np.flatnonzero((seg >= 0) & (seg < n - 1))
    i = seg[k]
    lam = grid[k]
    lin = ~gap[i]
    t = (lam[lin] - u[i[lin]]) / d[i[lin]]
    phi[k[lin], i[lin]] = 1.0 - t
    phi[k[lin], i[lin] + 1] = t
    # gaps: nothing interpolated; each side extends flat by f/2, never past the middle
    kg, ig, lg = k[~lin], i[~lin], lam[~lin]
    mid = 0.5 * (u[ig] + u[ig + 1])
    left = lg <= np.minimum(u[ig] + f[ig] / 2, mid)
    right = (lg > mid) & (lg >= u[ig + 1] - f[ig + 1] / 2)
    phi[kg[left], ig[left]] = 1.0
    phi[kg[right], ig[right] + 1] = 1.0
    return phi


def _basis(
    grid: np.ndarray,
    wl: np.ndarray,
    fwhm: np.ndarray | None,
    method: str,
    table_wl: np.ndarray,
    table: np.ndarray,
) -> np.ndarray:
    """R_raw (l, L) for the given method, columns in the original HSI band order."""
    order = np.argsort(wl, kind="stable")
    ws = wl[order]
    u, inv, counts = np.unique(ws, return_inverse=True, return_counts=True)
    if fwhm is not None:
        fs = fwhm[order]
        fu = np.bincount(inv, weights=fs) / counts
        spacing = _local_spacing(u, float(np.median(fu)))
    else:
        spacing = _local_spacing(u, None)
        fu = spacing
    share = 1.0 / counts  # duplicated centres share their basis function equally
    if method == "hat":
        phi_u = _hat_basis(grid, u, fu) * share
        r_grid = _interp_rows(grid, table_wl, table)
        raw_u = r_grid @ phi_u  # Δλ = 1 nm
    elif method == "point":
        r_c = _interp_rows(u, table_wl, table)
        raw_u = r_c * (spacing * share)[None, :]
    elif method == "gaussian":
        sig = fu / _FWHM_PER_SIGMA
        g = np.exp(-0.5 * ((grid[:, None] - u[None, :]) / sig[None, :]) ** 2)
        g *= (spacing * share / (sig * math.sqrt(2.0 * math.pi)))[None, :]
        r_grid = _interp_rows(grid, table_wl, table)
        raw_u = r_grid @ g
    else:
        raise SRFError(f"unknown method {method!r}; use 'hat', 'point' or 'gaussian'")
    raw_sorted = raw_u[:, inv]
    raw = np.empty_like(raw_sorted)
    raw[:, order] = raw_sorted
    return raw


def _band_samples(xp: np.ndarray, fp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One band's samples, with band edges on a shared (union) grid made sharp.

    Where a step goes from a non-zero to a zero sample (or back) and is longer
    than 1.5× the band's own neighbouring step, the band has no samples there: the
    response falls to 0 within that neighbouring step instead of being
    interpolated across the whole step.
    """
    n = xp.size
    if n < 3:
        return xp, fp
    d = np.diff(xp)
    nz = fp > 0
    extra_x: list[float] = []
    for i in np.flatnonzero(nz[:-1] != nz[1:]):
        if nz[i] and i > 0 and d[i] > GAP_FACTOR * d[i - 1]:
            extra_x.append(xp[i] + d[i - 1])
        elif nz[i + 1] and i + 1 < n - 1 and d[i] > GAP_FACTOR * d[i + 1]:
            extra_x.append(xp[i + 1] - d[i + 1])
    if not extra_x:
        return xp, fp
    x = np.concatenate([xp, extra_x])
    y = np.concatenate([fp, np.zeros(len(extra_x))])
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def _interp_rows(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    rows = []
    for row in fp:
        bx, by = _band_samples(xp, row)
        rows.append(np.interp(x, bx, by, left=0.0, right=0.0))
    return np.stack(rows)


def _validate_table(response_wavelengths: Any, responses: Any) -> tuple[np.ndarray, np.ndarray]:
    twl = np.asarray(response_wavelengths, dtype=np.float64)
    r = np.asarray(responses, dtype=np.float64)
    if r.ndim == 1:
        r = r[None, :]
    if twl.ndim != 1 or r.ndim != 2 or r.shape[1] != twl.size:
        raise SRFError(
            f"responses must be (l, n) with n = len(response_wavelengths) = {twl.size}, "
            f"got {r.shape}; put one band per row"
        )
    if twl.size < 2:
        raise SRFError("an SRF table needs at least 2 wavelength samples; check the table")
    if not (np.all(np.isfinite(twl)) and np.all(np.isfinite(r))):
        raise SRFError("SRF table contains NaN or Inf; remove or fill those entries")
    if np.any(r < 0):
        raise SRFError(
            f"SRF table has negative values (min {r.min():g}); responses must be >= 0 "
            "(clip small negatives to 0)"
        )
    order = np.argsort(twl, kind="stable")
    twl, r = twl[order], r[:, order]
    if np.any(np.diff(twl) == 0):
        raise SRFError("SRF table has repeated wavelengths; keep one row per wavelength")
    return twl, r


# --------------------------------------------------------------------------- resampling


def resample_srf(
    response_wavelengths: Sequence[float] | np.ndarray,
    responses: Sequence[Sequence[float]] | np.ndarray,
    hsi_wavelengths: Sequence[float] | np.ndarray,
    *,
    hsi_fwhm: float | Sequence[float] | np.ndarray | None = None,
    method: Method = "hat",
    min_coverage: float = 0.95,
    band_names: Sequence[str] | None = None,
    normalise_rows: bool = True,
    source: str = "array",
    approximate: bool = False,
) -> SRFResult:
    """Resample tabulated sensor responses onto HSI band centres (``protocols.md`` §5).

    Parameters
    ----------
    response_wavelengths : array_like of shape (n,)
        Wavelengths (nm) of the response table. Any order; sorted internally.
    responses : array_like of shape (l, n) or (n,)
        Relative response of each MSI band (one band per row), non-negative.
    hsi_wavelengths : array_like of shape (L,)
        HSI band centres c_b in nm, in the data's band order. They need not be
        monotonic (AVIRIS/Jasper is not); duplicates share their weight.
    hsi_fwhm : float or array_like of shape (L,), optional
        HSI band widths f_b in nm. ``None`` uses the local band spacing (mean of the
        neighbouring spacings that are not gaps).
    method : {"hat", "point", "gaussian"}
        ``"hat"`` (default): piecewise-linear interpolation basis with flat f/2
        extensions at the ends and across gaps. ``"point"``: R[m, b] ∝ r_m(c_b)·s_b
        with s_b the local spacing. ``"gaussian"``: R[m, b] ∝ ∫ r_m(λ)·g_b(λ)dλ with
        g_b a unit-area Gaussian of FWHM f_b, scaled by s_b.
    min_coverage : float
        Bands whose coverage is below this are dropped with a ``UserWarning``
        naming them. Bands with zero coverage are always dropped.
    band_names : sequence of str, optional
        Names of the l bands; default ``band_1`` … ``band_l``.
    normalise_rows : bool
        Normalise each kept row to sum 1 (default), so an MSI band is a weighted
        mean of HSI bands. ``False`` keeps the relative gains Σ_λ r_m(λ)φ_b(λ)Δλ.
    source : str
        Provenance recorded in the result.
    approximate : bool
        Recorded in the result; True for approximate sensors.

    Returns
    -------
    SRFResult
        ``matrix`` (l_kept, L), names, coverage and centres of the kept bands, and
        the dropped bands with their coverage.

    Raises
    ------
    SRFError
        Malformed or negative/NaN responses, bad wavelengths or FWHM, an unknown
        method, or every band dropped (none overlaps the HSI range).

    Warns
    -----
    UserWarning
        When some bands are dropped for low coverage.

    Notes
    -----
    The steps follow ``protocols.md`` §5: (1) interpolate each response linearly
    onto a 1-nm grid, zero outside its table; (2) sort the HS bands by centre and
    map the result back at the end; (3) build the basis φ_b; (4) R[m, b] =
    Σ_λ r_m(λ)φ_b(λ)Δλ; (5) coverage_m = Σ_b R[m, b] / Σ_λ r_m(λ)Δλ and drop bands
    below ``min_coverage``; (6) normalise the rows. Neighbouring centres more than
    1.5× the median spacing apart form a gap: nothing is interpolated across it,
    each side extends flat by f/2 (never past the gap's middle). For ``"point"``
    the denominator of the coverage is the same 1-nm integral, so coverage is an
    approximation of the hat coverage.

    Tables on a shared (union) grid, where a band's own samples stop before the
    next row of the table, are handled: where the step from a band's last
    non-zero sample to the next (zero) sample is more than 1.5× the band's own
    step, the band falls to 0 within its own step instead of being interpolated
    across the whole step.

    Coverage near a gap is sensitive to the widths f_b and to the 1-nm
    discretisation: Sentinel-2A B10 on Jasper gives 0.014 with the AVIRIS FWHMs
    and 0.006 with the default (band spacing) widths.

    Examples
    --------
    A 440–460 nm boxcar on a 10-nm HSI grid: on the 1-nm grid the 440, 450 and
    460 nm hats collect 5.5, 10 and 5.5 of the 21 samples:

    >>> wl = np.arange(400.0, 501.0, 10.0)
    >>> res = resample_srf([440, 460], [1.0, 1.0], wl, band_names=["box"])
    >>> np.round(res.matrix[0, 4:7], 3).tolist(), float(res.coverage[0])
    ([0.262, 0.476, 0.262], 1.0)
    """
    wl = _check_hsi_wavelengths(hsi_wavelengths)
    fwhm = _check_fwhm(hsi_fwhm, wl.size)
    twl, table = _validate_table(response_wavelengths, responses)
    n_bands = table.shape[0]
    if band_names is None:
        names = [f"band_{i + 1}" for i in range(n_bands)]
    else:
        names = [str(b) for b in band_names]
        if len(names) != n_bands:
            raise SRFError(
                f"{len(names)} band names for {n_bands} SRF bands; give one name per band"
            )
    if method not in ("hat", "point", "gaussian"):
        raise SRFError(f"unknown method {method!r}; use 'hat', 'point' or 'gaussian'")
    if not 0.0 <= min_coverage <= 1.0:
        raise SRFError(f"min_coverage must be in [0, 1], got {min_coverage}; e.g. 0.95")

    grid = np.arange(math.floor(twl[0]), math.ceil(twl[-1]) + 1.0, 1.0)
    total = _interp_rows(grid, twl, table).sum(axis=1)
    zero = [names[i] for i in np.flatnonzero(total <= 0)]
    if zero:
        raise SRFError(
            f"SRF band(s) {', '.join(zero)} are zero everywhere; remove them from the table"
        )
    raw = _basis(grid, wl, fwhm, method, twl, table)
    coverage = raw.sum(axis=1) / total
    keep = (coverage >= min_coverage) & (coverage > 0)
    lo, hi = _fmt_nm(float(wl.min())), _fmt_nm(float(wl.max()))
    if not keep.any():
        if np.all(coverage <= 0):
            raise SRFError(
                f"none of the SRF bands overlaps the HSI range {lo}–{hi} nm; "
                "check the wavelength units (nm) or choose another SRF"
            )
        best = ", ".join(f"{n} ({c:.3f})" for n, c in zip(names, coverage, strict=True))
        raise SRFError(
            f"every SRF band covers less than min_coverage={min_coverage:g} of its response "
            f"inside the HSI range {lo}–{hi} nm: {best}; lower min_coverage or choose "
            "another SRF"
        )
    dropped = tuple((names[i], float(coverage[i])) for i in np.flatnonzero(~keep))
    if dropped:
        listed = ", ".join(f"{n} (coverage {c:.3f})" for n, c in dropped)
        warnings.warn(
            f"dropped SRF band(s) {listed}: below min_coverage={min_coverage:g} inside the "
            f"HSI range {lo}–{hi} nm",
            UserWarning,
            stacklevel=2,
        )
    mat = raw[keep]
    norm = mat / mat.sum(axis=1, keepdims=True)
    centres = norm @ wl
    return SRFResult(
        matrix=norm if normalise_rows else mat,
        band_names=tuple(n for n, k in zip(names, keep, strict=True) if k),
        coverage=coverage[keep],
        dropped=dropped,
        source=source,
        approximate=approximate,
        centres=centres,
    )


# --------------------------------------------------------------------------- named sensors


@dataclass(frozen=True)
class _Table:
    wavelengths: np.ndarray
    responses: np.ndarray
    band_names: tuple[str, ...]
    source: str
    approximate: bool = False


_PYRSR = {
    "sentinel-2a": ("Sentinel-2A", "MSI", None),
    "sentinel-2b": ("Sentinel-2B", "MSI", None),
    "sentinel-2a-10band": ("Sentinel-2A", "MSI", _S2_10BAND),
    "sentinel-2b-10band": ("Sentinel-2B", "MSI", _S2_10BAND),
    "landsat-8": ("Landsat-8", "OLI_TIRS", None),
    "landsat-9": ("Landsat-9", "OLI_TIRS", None),
}
_OLI_BANDS = tuple(str(i) for i in range(1, 10))  # B1–B9 are OLI; B10, B11 are TIRS


@functools.cache
def _pyrsr_table(name: str) -> _Table:
    satellite, sensor, subset = _PYRSR[name]
    require("pyrsr", "srf")
    import pyrsr
    from pyrsr import RSR

    rsr = RSR(satellite, sensor=sensor)
    keys = list(rsr.rsrs)
    if satellite.startswith("Landsat"):
        keys = [k for k in keys if k in _OLI_BANDS]
    names = [f"B{k}" for k in keys]
    if subset is not None:
        keys = [k for k, n in zip(keys, names, strict=True) if n in subset]
        names = [f"B{k}" for k in keys]
    resp = np.stack([np.asarray(rsr.rsrs[k], dtype=np.float64) for k in keys])
    resp = np.clip(resp, 0.0, None)  # Landsat-8 tables carry ~1e-5 negative noise
    version = getattr(pyrsr, "__version__", "?")
    inst = "OLI" if satellite.startswith("Landsat") else sensor
    return _Table(
        np.asarray(rsr.rsrs_wvl, dtype=np.float64),
        resp,
        tuple(names),
        f"{name}: {satellite} {inst} relative spectral responses (pyrsr {version})",
    )


def _colour() -> Any:
    return require("colour", "srf")


def _slug(label: str) -> str:
    label = re.sub(r"\(.*?\)", "", label)
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


@functools.cache
def _camera_labels() -> dict[str, str]:
    try:
        colour = _colour()
    except ImportError:
        return {}
    return {_slug(k): k for k in colour.MSDS_CAMERA_SENSITIVITIES}


@functools.cache
def _colour_table(name: str) -> _Table:
    colour = _colour()
    if name == "cie1931":
        label = "CIE 1931 2 Degree Standard Observer"
        msds = colour.MSDS_CMFS[label]
        names: tuple[str, ...] = ("X", "Y", "Z")
    else:
        label = _camera_labels()[name]
        msds = colour.MSDS_CAMERA_SENSITIVITIES[label]
        short = {"red": "R", "green": "G", "blue": "B"}
        names = tuple(short.get(str(lab).lower(), str(lab)) for lab in msds.labels)
    return _Table(
        np.asarray(msds.wavelengths, dtype=np.float64),
        np.asarray(msds.values, dtype=np.float64).T.copy(),
        names,
        f"{name}: {label} (colour-science {colour.__version__})",
    )


def _wv2_table() -> _Table:
    grid = np.arange(395.0, 1046.0)
    resp = np.stack([((grid >= a) & (grid <= b)).astype(float) for _, a, b in _WV2_LIKE])
    return _Table(
        grid,
        resp,
        tuple(n for n, _, _ in _WV2_LIKE),
        "wv2-like: WorldView-2-like boxcars on nominal band edges (APPROXIMATE)",
        approximate=True,
    )


def _gaussian_table(
    centres: np.ndarray, fwhm: float, lo: float | None = None, hi: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    sig = fwhm / _FWHM_PER_SIGMA
    step = min(1.0, fwhm / 10.0)
    a = float(centres.min()) - 3.0 * fwhm
    b = float(centres.max()) + 3.0 * fwhm
    if lo is not None and hi is not None:
        a, b = max(a, lo), min(b, hi)
    grid = np.arange(a, b + step / 2, step)
    resp = np.exp(-0.5 * ((grid[None, :] - centres[:, None]) / sig) ** 2)
    return grid, resp


_GAUSS_N = re.compile(r"^gaussian:(\d+)$")
_GAUSS_EXPLICIT = re.compile(r"^gaussian:([0-9.eE+\-,\s]+)@\s*([0-9.eE+\-]+)$")

_FIXED: dict[str, str] = {
    "sentinel-2a": "Sentinel-2A MSI, 13 bands B1–B12 incl. B8A (pyrsr)",
    "sentinel-2b": "Sentinel-2B MSI, 13 bands (pyrsr)",
    "sentinel-2a-10band": "Sentinel-2A 10-m and 20-m bands B2–B8, B8A, B11, B12 (pyrsr)",
    "sentinel-2b-10band": "Sentinel-2B 10-m and 20-m bands (pyrsr)",
    "landsat-8": "Landsat-8 OLI reflective bands B1–B9 (pyrsr)",
    "landsat-9": "Landsat-9 OLI-2 reflective bands B1–B9 (pyrsr)",
    "cie1931": "CIE 1931 2° observer x̄ȳz̄, rows X, Y, Z (colour-science)",
    "wv2-like": "WorldView-2-like boxcars, 8 bands (approximate)",
    "rgb": "alias of nikon-5100 (colour-science)",
}
_RGB_DEFAULT = "nikon-5100"


def list_srfs() -> list[str]:
    """Names accepted by :func:`get_srf`, sorted.

    Besides these, two Gaussian band-pass patterns are accepted:
    ``"gaussian:N"`` (N bands evenly spread over the HSI range, FWHM = range/N)
    and ``"gaussian:c1,c2,...@fwhm"`` (explicit centres and FWHM in nm).

    Returns
    -------
    list of str
        Fixed names plus one slug per camera of ``colour.MSDS_CAMERA_SENSITIVITIES``
        (e.g. ``"nikon-5100"``) when colour-science is installed.

    Examples
    --------
    >>> "sentinel-2a" in list_srfs() and "wv2-like" in list_srfs()
    True
    """
    return sorted(set(_FIXED) | set(_camera_labels()))


def _available_text() -> str:
    return ", ".join(list_srfs()) + ", gaussian:N, gaussian:c1,c2,...@fwhm"


def get_srf(
    name: str,
    hsi_wavelengths: Sequence[float] | np.ndarray | None,
    *,
    hsi_fwhm: float | Sequence[float] | np.ndarray | None = None,
    min_coverage: float = 0.95,
    method: Method = "hat",
) -> SRFResult:
    """A named sensor's SRF resampled onto the HSI bands.

    Parameters
    ----------
    name : str
        A name from :func:`list_srfs` (case-insensitive) or a Gaussian pattern:
        ``"gaussian:N"`` or ``"gaussian:c1,c2,...@fwhm"``.
    hsi_wavelengths : array_like of shape (L,)
        HSI band centres in nm (any order).
    hsi_fwhm : float or array_like of shape (L,), optional
        HSI band widths in nm; default the local band spacing.
    min_coverage : float
        Drop bands whose coverage is below this (with a warning).
    method : {"hat", "point", "gaussian"}
        Resampling method, see :func:`resample_srf`.

    Returns
    -------
    SRFResult

    Raises
    ------
    SRFError
        Unknown name, malformed Gaussian pattern, missing wavelengths, or no band
        overlapping the HSI range.
    MissingDependencyError
        pyrsr or colour-science is needed and not installed.

    Notes
    -----
    * Sentinel-2 bands are named ``B1`` … ``B12`` with ``B8A`` after ``B8``;
      Landsat keeps only the OLI bands ``B1`` … ``B9`` (TIRS dropped). Tiny
      negative values in the source tables are clipped to 0.
    * ``"gaussian:N"`` places centres at the middles of N equal bins spanning the
      HSI range, FWHM = range/N, and truncates the curves to the HSI range, so
      every band is fully covered by construction. Bands are named G1 … GN.
    * ``"wv2-like"`` is approximate (``approximate=True``): boxcars on the nominal
      WorldView-2 band edges (``protocols.md`` §5).
    * ``"rgb"`` is an alias of ``"nikon-5100"`` (380–780 nm: the HSI should span
      the visible range).

    Examples
    --------
    >>> res = get_srf("gaussian:500,600@40", np.arange(400.0, 701.0, 10.0))
    >>> res.band_names, np.round(res.centres).tolist()
    (('G1', 'G2'), [500.0, 600.0])
    """
    key = name.strip().lower()
    wl = _check_hsi_wavelengths(hsi_wavelengths, what=f"SRF {name!r}")
    if key == "rgb":
        key = _RGB_DEFAULT
    if key in _PYRSR:
        table = _pyrsr_table(key)
    elif key == "wv2-like":
        table = _wv2_table()
    elif key.startswith("gaussian:"):
        table = _parse_gaussian(key, wl)
    elif key == "cie1931" or key in _camera_labels():  # imports colour (slow): last
        table = _colour_table(key)
    else:
        raise SRFError(f"unknown SRF {name!r}; use one of: {_available_text()}")
    return resample_srf(
        table.wavelengths,
        table.responses,
        wl,
        hsi_fwhm=hsi_fwhm,
        method=method,
        min_coverage=min_coverage,
        band_names=table.band_names,
        source=table.source,
        approximate=table.approximate,
    )


def _parse_gaussian(key: str, wl: np.ndarray) -> _Table:
    m = _GAUSS_N.match(key)
    if m:
        n = int(m.group(1))
        if n < 1:
            raise SRFError(f"{key!r} asks for {n} bands; use gaussian:N with N >= 1")
        lo, hi = float(wl.min()), float(wl.max())
        if hi <= lo:
            raise SRFError(
                f"{key!r} needs an HSI range wider than one wavelength; use gaussian:c@fwhm"
            )
        width = (hi - lo) / n
        centres = lo + width * (np.arange(n) + 0.5)
        grid, resp = _gaussian_table(centres, width, lo, hi)
        src = f"{key}: {n} Gaussian bands over {_fmt_nm(lo)}–{_fmt_nm(hi)} nm, FWHM {width:.3g} nm"
    else:
        m = _GAUSS_EXPLICIT.match(key)
        if not m:
            raise SRFError(
                f"cannot parse {key!r}; use gaussian:N or gaussian:c1,c2,...@fwhm (nm), "
                "e.g. gaussian:450,550,650@40"
            )
        try:
            centres = np.array([float(c) for c in m.group(1).split(",") if c.strip()])
            fwhm = float(m.group(2))
        except ValueError:
            raise SRFError(
                f"cannot parse {key!r}; use gaussian:c1,c2,...@fwhm with numbers in nm"
            ) from None
        if centres.size == 0 or not np.all(np.isfinite(centres)) or not fwhm > 0:
            raise SRFError(
                f"{key!r} needs at least one centre and a positive FWHM; "
                "e.g. gaussian:450,550,650@40"
            )
        grid, resp = _gaussian_table(centres, fwhm)
        src = f"{key}: Gaussian bands, FWHM {fwhm:g} nm"
    names = tuple(f"G{i + 1}" for i in range(resp.shape[0]))
    return _Table(grid, resp, names, src)


# --------------------------------------------------------------------------- user files

_WL_COLUMN = re.compile(
    r"^(?:(?:wavelengths?|wvl|wl|lambda)(nm|um|µm|μm|microns?|micromet(?:er|re)s?)?"
    r"|(nm|um|µm|μm))$"
)


def _wl_column_unit(name: str) -> str | None:
    """``"nm"``/``"um"``/``""`` (no unit) if ``name`` names a wavelength column, else None."""
    key = re.sub(r"[\s_\-()\[\]]", "", name.strip().lower())
    m = _WL_COLUMN.match(key)
    if not m:
        return None
    unit = m.group(1) or m.group(2) or ""
    return "nm" if unit == "nm" else ("um" if unit else "")


def _split(line: str) -> list[str]:
    for delim in (",", "\t", ";"):
        if delim in line:
            return [t.strip() for t in next(csv.reader([line], delimiter=delim))]
    return line.split()


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _read_csv(path: Path) -> tuple[list[str] | None, np.ndarray]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SRFError(f"cannot read SRF file {path}: {exc}; check the path and encoding") from None
    rows = [
        _split(ln) for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not rows:
        raise SRFError(f"SRF file {path} has no data rows; check the file")
    header = None
    if not all(_is_number(t) for t in rows[0]):
        header, rows = rows[0], rows[1:]
    if not rows:
        raise SRFError(f"SRF file {path} has a header but no data rows; check the file")
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise SRFError(
                f"SRF file {path}: data row {i + 1} has {len(r)} values, expected {width}; "
                "every row needs the same number of columns"
            )
    try:
        data = np.array([[float(t) if t else np.nan for t in r] for r in rows], dtype=np.float64)
    except ValueError:
        raise SRFError(
            f"SRF file {path} has non-numeric values below the header; "
            "keep only numbers in data rows"
        ) from None
    if header is not None and len(header) != width:
        raise SRFError(
            f"SRF file {path}: header has {len(header)} names but rows have {width} values; "
            "give one name per column"
        )
    return header, data


def _check_values(arr: np.ndarray, path: Path) -> None:
    if not np.all(np.isfinite(arr)):
        raise SRFError(f"SRF file {path} contains NaN, Inf or empty cells; fill or remove them")
    if np.any(arr < 0):
        raise SRFError(
            f"SRF file {path} has negative values (min {arr.min():g}); responses must be >= 0"
        )


def _matrix_result(mat: np.ndarray, path: Path, wl: np.ndarray | None, kind: str) -> SRFResult:
    if mat.ndim == 1:
        mat = mat[None, :]
    if mat.ndim != 2:
        raise SRFError(
            f"SRF matrix in {path} has shape {mat.shape}; it must be 2-D (l, L), "
            "one row per MSI band"
        )
    _check_values(mat, path)
    l_, n_cols = mat.shape
    if wl is not None and n_cols != wl.size:
        if l_ == wl.size:
            raise SRFError(
                f"SRF has {n_cols} columns but the HSI has {wl.size} bands; the matrix in "
                f"{path} looks transposed ({l_}×{n_cols} = L×l): save its transpose "
                "(l×L, one row per MSI band)"
            )
        hint = (
            "if its first column holds wavelengths, add a header line such as "
            "'wavelength_nm,band_1,...'"
            if kind == "csv"
            else "give an l×L matrix matching the HSI bands"
        )
        raise SRFError(f"SRF has {n_cols} columns but the HSI has {wl.size} bands; {hint}")
    sums = mat.sum(axis=1)
    zero = np.flatnonzero(sums <= 0)
    if zero.size:
        raise SRFError(
            f"SRF matrix in {path} has all-zero row(s) {', '.join(str(i + 1) for i in zero)}; "
            "remove them"
        )
    norm = mat / sums[:, None]
    centres = norm @ wl if wl is not None else np.full(l_, np.nan)
    return SRFResult(
        matrix=norm,
        band_names=tuple(f"band_{i + 1}" for i in range(l_)),
        coverage=np.full(l_, np.nan),
        dropped=(),
        source=f"file:{path} ({l_}×{n_cols} matrix, rows normalised to sum 1)",
        approximate=False,
        centres=centres,
    )


def load_srf(
    path: str | Path,
    hsi_wavelengths: Sequence[float] | np.ndarray | None = None,
    *,
    hsi_fwhm: float | Sequence[float] | np.ndarray | None = None,
    min_coverage: float = 0.95,
    method: Method = "hat",
) -> SRFResult:
    """Read a user SRF: an l×L matrix or a wavelength table.

    Parameters
    ----------
    path : str or Path
        * ``.npy``: a 2-D (l, L) matrix (a 1-D array is one band);
        * ``.csv`` **without** a header: an l×L matrix, one row per MSI band;
        * ``.csv`` **with** a header: a table with a wavelength column (named like
          ``wavelength``, ``wavelength_nm``, ``wl`` or ``lambda``) and one column
          per band, e.g. the ``rsr_*.csv`` files. Lines starting with ``#`` are
          skipped; ``,``, tab, ``;`` or whitespace separate values.
    hsi_wavelengths : array_like of shape (L,), optional
        HSI band centres in nm. Required for tables; for a matrix it is used to
        check the band count and compute the band centres.
    hsi_fwhm : float or array_like of shape (L,), optional
        HSI band widths in nm (tables only); default the local spacing.
    min_coverage : float
        Tables only: drop bands with less coverage (with a warning).
    method : {"hat", "point", "gaussian"}
        Tables only: resampling method, see :func:`resample_srf`.

    Returns
    -------
    SRFResult
        Rows always normalised to sum 1. For a matrix the coverage is unknown
        (NaN) and the bands are named ``band_1`` …; for a table the header names
        are kept.

    Raises
    ------
    SRFError
        Unreadable/unsupported file, NaN or negative values, an all-zero row, a
        matrix whose column count differs from the HSI band count (a transposed
        L×l matrix is *not* accepted: the message says to transpose it), a table
        without ``hsi_wavelengths``, or a table none of whose bands overlaps the
        HSI range.

    Warns
    -----
    UserWarning
        Table bands dropped for low coverage.

    Notes
    -----
    Table wavelengths are nm; if the column name says µm (``wavelength_um``), or
    it names no unit and the largest value is below 30, they are taken as µm, multiplied by 1000, and
    ``source`` says so. Only l×L matrices are accepted: guessing the orientation
    would silently go wrong when l = L.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> p = os.path.join(d, "srf.csv")
    >>> with open(p, "w") as fh:
    ...     _ = fh.write("wavelength_um,blue,green\\n0.40,1,0\\n0.45,1,0\\n0.50,0,1\\n0.55,0,1\\n")
    >>> res = load_srf(p, np.arange(400.0, 551.0, 5.0))
    >>> res.band_names, "converted from µm" in res.source
    (('blue', 'green'), True)
    """
    p = Path(path)
    if not p.is_file():
        raise SRFError(f"SRF file {p} not found; check the path")
    suffix = p.suffix.lower()
    wl = None if hsi_wavelengths is None else _check_hsi_wavelengths(hsi_wavelengths)
    if suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise SRFError(f"cannot read SRF file {p}: {exc}; save it with np.save") from None
        if not np.issubdtype(arr.dtype, np.number):
            raise SRFError(f"SRF file {p} holds {arr.dtype} values; save a numeric array")
        return _matrix_result(np.asarray(arr, dtype=np.float64), p, wl, "npy")
    if suffix not in (".csv", ".txt", ".tsv"):
        raise SRFError(f"unsupported SRF file type {p.suffix!r} ({p}); use .npy or .csv")
    header, data = _read_csv(p)
    if header is None:
        return _matrix_result(data, p, wl, "csv")
    wl_cols = [i for i, h in enumerate(header) if _wl_column_unit(h) is not None]
    if len(wl_cols) != 1:
        raise SRFError(
            f"SRF file {p} needs exactly one wavelength column (e.g. 'wavelength_nm'), "
            f"found {len(wl_cols)} in header {','.join(header)}; rename the columns"
        )
    c = wl_cols[0]
    names = [h for i, h in enumerate(header) if i != c]
    if not names:
        raise SRFError(f"SRF file {p} has a wavelength column but no band columns; add bands")
    twl = data[:, c]
    resp = np.delete(data, c, axis=1).T
    _check_values(resp, p)
    if not np.all(np.isfinite(twl)):
        raise SRFError(f"SRF file {p} has NaN or empty wavelengths; fill or remove those rows")
    if wl is None:
        raise SRFError(
            f"SRF table {p} needs the HSI band wavelengths; pass --wavelengths FILE "
            "(or hsi_wavelengths=) in nm"
        )
    note = ""
    unit = _wl_column_unit(header[c])
    if unit == "um" or (unit != "nm" and twl.max() < 30):
        twl = twl * 1000.0
        note = ", wavelengths converted from µm to nm"
    return resample_srf(
        twl,
        resp,
        wl,
        hsi_fwhm=hsi_fwhm,
        method=method,
        min_coverage=min_coverage,
        band_names=names,
        source=f"file:{p} (table, {len(names)} bands{note})",
    )


# --------------------------------------------------------------------------- entry point


def srf_from_spec(
    spec: str,
    hsi_wavelengths: Sequence[float] | np.ndarray | None,
    *,
    hsi_fwhm: float | Sequence[float] | np.ndarray | None = None,
    min_coverage: float = 0.95,
    method: Method = "hat",
) -> SRFResult:
    """Build an SRF from the user's ``--srf`` string: a registry name or a file path.

    Parameters
    ----------
    spec : str
        A name of :func:`list_srfs`, a Gaussian pattern (``gaussian:N``,
        ``gaussian:c1,c2,...@fwhm``) or the path of a ``.npy``/``.csv`` file
        (see :func:`load_srf`). Fixed registry names and Gaussian patterns win over
        files of the same name; an existing file wins over a camera slug.
    hsi_wavelengths : array_like of shape (L,) or None
        HSI band centres in nm; required except for a matrix file.
    hsi_fwhm, min_coverage, method
        Passed to :func:`get_srf` / :func:`load_srf`.

    Returns
    -------
    SRFResult

    Raises
    ------
    SRFError
        Neither a known name nor an existing file (the message lists the names),
        or any error of :func:`get_srf` / :func:`load_srf`.

    Examples
    --------
    >>> srf_from_spec("gaussian:3", np.linspace(400, 1000, 61)).matrix.shape
    (3, 61)
    """
    if not isinstance(spec, str) or not spec.strip():
        raise SRFError(f"empty SRF spec; use one of: {_available_text()}, or a file path")
    key = spec.strip().lower()
    kw: dict[str, Any] = dict(hsi_fwhm=hsi_fwhm, min_coverage=min_coverage, method=method)
    if key in _FIXED or key.startswith("gaussian:"):
        return get_srf(key, hsi_wavelengths, **kw)
    p = Path(spec.strip()).expanduser()
    if p.is_file():
        return load_srf(p, hsi_wavelengths, **kw)
    if key in _camera_labels():
        return get_srf(key, hsi_wavelengths, **kw)
    if p.suffix.lower() in (".npy", ".csv", ".txt", ".tsv") or any(s in spec for s in "/\\"):
        raise SRFError(f"SRF file {spec} not found; check the path")
    raise SRFError(f"unknown SRF {spec!r}; use one of: {_available_text()}, or a file path")
