"""Calibrated, broadened spectra from the shipped multiplet library.

Two public entry points, both needing numpy and numba only (no edrixs):

* :func:`reference_spectrum`: one Fe L2,3 spectrum for a valence, a site symmetry and
  (optionally) crystal-field parameters, on any energy axis;
* :func:`draw_library_spectra`: random library spectra with their labels, for
  training. Labels include the parameter-set id, so train and test sets can be
  split by parameter set.

Units: the white-line area (without continuum) equals the number of 3d holes of the
ion (4 for Fe2+, 5 for Fe3+), so mixtures made by adding spectra are weighted per
Fe atom. The continuum step is in the same units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hyperspy_fe_ml.kernels.broaden import (
    bin_edges,
    broaden_sticks,
    broaden_sticks_fft,
    continuum_step,
    gaussian_broaden,
)
from hyperspy_fe_ml.library.calibration import (
    DEFAULT_BROADENING,
    ENERGY_OFFSET_EV,
    ENERGY_SCALE,
)
from hyperspy_fe_ml.library.multiplet import (
    COORDINATION_NUMBERS,
    TETRAHEDRAL_SITES,
    VALENCE_TO_D_ELECTRONS,
    ParameterSet,
    square_pyramid_cf,
)
from hyperspy_fe_ml.library.shipped import MultipletLibrary, load_library

__all__ = [
    "DEFAULT_PARAMETERS",
    "broaden_library",
    "draw_library_spectra",
    "library_parameter_set",
    "reference_spectrum",
]


def _square_pyramid_defaults(ten_dq: float) -> dict[str, float]:
    ds, dt = square_pyramid_cf(ten_dq, 0.2)
    return {"ten_dq": ten_dq, "ds": round(ds, 4), "dt": round(dt, 4)}


#: Crystal-field defaults of :func:`reference_spectrum` per (valence, coordination).
#: Oh: 10Dq 1.0 (Fe2+) and 1.4 eV (Fe3+) put the Fe2+ feature at +2.7 eV and the
#: Fe3+ pre-peak at -1.5 eV from the L3 maximum (PHYSICS.md, van Aken et al. 1998);
#: Td: about 4/9 of Oh, negative; D4h: a moderate elongation; C4v: square pyramid
#: with e_pi / e_sigma = 0.2 (see ``multiplet.square_pyramid_cf``); D2d: the Td
#: field with the D4h defaults' distortion.
DEFAULT_PARAMETERS: dict[tuple[int, str], dict[str, float]] = {
    (2, "Oh"): {"ten_dq": 1.0, "ds": 0.0, "dt": 0.0},
    (3, "Oh"): {"ten_dq": 1.4, "ds": 0.0, "dt": 0.0},
    (2, "Td"): {"ten_dq": -0.5, "ds": 0.0, "dt": 0.0},
    (3, "Td"): {"ten_dq": -0.6, "ds": 0.0, "dt": 0.0},
    (2, "D4h"): {"ten_dq": 1.0, "ds": 0.1, "dt": 0.05},
    (3, "D4h"): {"ten_dq": 1.4, "ds": 0.1, "dt": 0.05},
    (2, "C4v"): _square_pyramid_defaults(1.0),
    (3, "C4v"): _square_pyramid_defaults(1.4),
    (2, "D2d"): {"ten_dq": -0.5, "ds": 0.1, "dt": 0.05},
    (3, "D2d"): {"ten_dq": -0.6, "ds": 0.1, "dt": 0.05},
}
#: Parameter spacing used to find the nearest library set (about one grid step).
_DISTANCE_SCALE = {"ten_dq": 0.1, "ds": 0.1, "dt": 0.05, "slater_scale": 0.05}
#: Fine internal grid (eV) on which spectra are broadened before they are averaged
#: onto the requested axis, and the margin around that axis.
_FINE_STEP_EV = 0.02
_MARGIN_EV = 6.0
#: Draw ranges of :func:`draw_library_spectra` (FWHM, eV). Lorentzian widths span
#: the intrinsic core-hole widths quoted in PHYSICS.md (L3 0.36-0.46, L2 0.37-1.54
#: eV) up to the effective widths fitted to experiment (docs/library.md: L3 up to
#: 1.1, L2 up to 3 eV); EELS resolution 0.1-1.5 eV; the step 0.5-1.5 times its
#: calibrated default (fitted 0.046-0.105). ``l3_width_slope`` (eV of L3 FWHM per
#: eV above the first L3 line): 0 to a little above the largest slope fitted to the
#: measured standards (0.00-0.43 eV/eV, Fe3+ 0.14-0.43, Fe2+ 0.00-0.20;
#: docs/scripts/fit_standards.py, docs/library.md).
DRAW_RANGES: dict[str, tuple[float, float]] = {
    "fwhm_l3": (0.3, 1.2),
    "fwhm_l2": (0.35, 3.0),
    "resolution": (0.1, 1.5),
    "step": (0.5 * DEFAULT_BROADENING["step"], 1.5 * DEFAULT_BROADENING["step"]),
    "shift": (0.0, 0.0),
    "l3_width_slope": (0.0, 0.45),
}


def _check_energy(energy: Any) -> np.ndarray:
    e = np.asarray(energy, dtype=np.float64)
    if e.ndim != 1 or e.size < 2:
        raise ValueError(
            f"energy must be a 1-D axis with at least 2 channels (eV), got shape "
            f"{e.shape}: pass e.g. numpy.arange(700, 730, 0.05)"
        )
    if not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise ValueError(
            "energy must be finite and strictly increasing (eV): sort the axis "
            "and drop NaN channels"
        )
    return e


def _check_width(name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(
            f"{name}={value} eV is invalid: widths are FWHM in eV and must be >= 0 "
            "(0 means no broadening)"
        )
    return value


def _check_group(valence: int, coordination: str, lib: MultipletLibrary) -> None:
    if valence not in VALENCE_TO_D_ELECTRONS or valence not in ENERGY_OFFSET_EV:
        raise ValueError(
            f"unknown Fe valence {valence!r}: the library holds valences "
            f"{sorted(set(lib.table['valence'].tolist()))}; pass valence=2 or 3"
        )
    if coordination not in COORDINATION_NUMBERS:
        raise ValueError(
            f"unknown coordination {coordination!r}: use one of "
            f"{list(COORDINATION_NUMBERS)} (Oh octahedral, Td tetrahedral, D4h "
            "distorted octahedron, C4v square pyramid)"
        )


def library_parameter_set(
    valence: int,
    coordination: str,
    *,
    ten_dq: float | None = None,
    ds: float | None = None,
    dt: float | None = None,
    slater_scale: float = 0.8,
    library: MultipletLibrary | None = None,
) -> tuple[int, ParameterSet]:
    """The library row nearest to the requested parameters.

    Parameters left as None take :data:`DEFAULT_PARAMETERS`. Values are matched to
    the nearest point of the library grid; a value outside the grid's range raises.

    Returns
    -------
    row, ParameterSet
        The row index in the library (its parameter-set id) and its parameters.

    Examples
    --------
    >>> row, p = library_parameter_set(3, "Oh", ten_dq=1.43)
    >>> p.ten_dq, p.slater_scale
    (1.4, 0.8)
    """
    lib = load_library() if library is None else library
    _check_group(valence, coordination, lib)
    rows = lib.select(valence=valence, coordination=coordination)
    if rows.size == 0:
        raise ValueError(f"the library has no Fe{valence}+ {coordination} spectra")
    if coordination in TETRAHEDRAL_SITES and ten_dq is not None and ten_dq > 0:
        raise ValueError(
            f"ten_dq={ten_dq} is positive, but the tetrahedral field has e below t2: "
            f"pass a negative 10Dq for {coordination} (e.g. ten_dq=-{ten_dq})"
        )
    defaults = DEFAULT_PARAMETERS[(valence, coordination)]
    wanted = {
        "ten_dq": defaults["ten_dq"] if ten_dq is None else float(ten_dq),
        "ds": defaults["ds"] if ds is None else float(ds),
        "dt": defaults["dt"] if dt is None else float(dt),
        "slater_scale": float(slater_scale),
    }
    distance = np.zeros(rows.size)
    for key, value in wanted.items():
        column = lib.table[key][rows]
        lo, hi = column.min(), column.max()
        tol = 0.5 * _DISTANCE_SCALE[key]
        if value < lo - tol or value > hi + tol:
            raise ValueError(
                f"{key}={value} is outside the library range {lo:g}..{hi:g} for "
                f"Fe{valence}+ {coordination}: choose a value in that range or "
                "regenerate the library with a wider grid (fe-ml simulate)"
            )
        distance += ((column - value) / _DISTANCE_SCALE[key]) ** 2
    row = int(rows[np.argmin(distance)])
    return row, lib.parameter_set(row)


def broaden_library(
    rows: Sequence[int] | np.ndarray,
    energy: Any,
    *,
    fwhm_l3: np.ndarray,
    fwhm_l2: np.ndarray,
    resolution: np.ndarray,
    step: np.ndarray,
    shift: np.ndarray | None = None,
    library: MultipletLibrary | None = None,
    zero: np.ndarray | None = None,
    energy_scale: float | None = None,
    method: str = "fft",
    l3_width_slope: np.ndarray | None = None,
) -> np.ndarray:
    """Calibrated, broadened spectra of library rows on an energy axis.

    The sticks are placed on the absolute energy scale
    (:mod:`~hyperspy_fe_ml.library.calibration`), shifted by ``shift``, broadened
    with Lorentzians (``fwhm_l3``/``fwhm_l2``) and a Gaussian (``resolution``) on a
    0.02 eV grid, given a 2:1 continuum step of height ``step`` at the intensity
    centroids of the L3 and L2 sticks, and averaged over the channels of
    ``energy``. With ``l3_width_slope`` the L3 Lorentzian FWHM grows linearly with
    the energy above the first significant L3 line (the continuum step keeps
    ``fwhm_l3``).

    Parameters
    ----------
    rows
        Library rows (parameter-set ids), shape ``(n,)``.
    energy
        Output axis, eV, increasing.
    fwhm_l3, fwhm_l2, resolution, step, shift
        Per-spectrum values, shape ``(n,)`` (eV, except ``step``).
    library
        Defaults to the shipped library.
    zero, energy_scale
        Override the calibration: absolute energy (eV) of the model zero per
        spectrum, and the energy stretch (used by the calibration script).
    method
        ``"fft"``: bin the sticks on the fine grid and broaden by FFT
        (:func:`~hyperspy_fe_ml.kernels.broaden.broaden_sticks_fft`, ~0.2 ms per
        spectrum); ``"direct"``: every Lorentzian integrated over every channel
        (:func:`~hyperspy_fe_ml.kernels.broaden.broaden_sticks`, ~3 ms). They agree
        to about 1e-3 of the L3 maximum.
    l3_width_slope
        Per-spectrum growth of the L3 FWHM, eV per eV above the first significant
        L3 line (:func:`~hyperspy_fe_ml.kernels.broaden.l3_reference_energy`),
        shape ``(n,)``, >= 0; None: one L3 width (0). On the FFT path a slope
        costs about twice the time (0.31 -> 0.69 ms per spectrum, one core, slopes
        drawn from ``DRAW_RANGES``; ``benchmarks/bench_broaden.py``).

    Returns
    -------
    numpy.ndarray
        Shape ``(n, channels)``.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(700.0, 730.0, 0.05)
    >>> y = broaden_library([0, 0], e, fwhm_l3=0.4, fwhm_l2=2.5, resolution=0.2,
    ...                     step=0.08, l3_width_slope=np.array([0.0, 0.3]))
    >>> bool(y[1].max() < y[0].max())  # the upper L3 lines are broader
    True
    """
    lib = load_library() if library is None else library
    e = _check_energy(energy)
    rows = np.asarray(rows, dtype=np.int64)
    n = rows.size
    shift = np.zeros(n) if shift is None else np.asarray(shift, dtype=np.float64)
    fwhm_l3, fwhm_l2, resolution, step = (
        np.broadcast_to(np.asarray(a, dtype=np.float64), (n,)).copy()
        for a in (fwhm_l3, fwhm_l2, resolution, step)
    )
    if min(
        fwhm_l3.min(), fwhm_l2.min(), resolution.min(), step.min()
    ) < 0 or not np.all(np.isfinite([fwhm_l3, fwhm_l2, resolution, step])):
        raise ValueError(
            "fwhm_l3, fwhm_l2, resolution and step must be finite and >= 0 "
            "(FWHM in eV; 0 means no broadening)"
        )
    if l3_width_slope is not None:
        l3_width_slope = np.broadcast_to(
            np.asarray(l3_width_slope, dtype=np.float64), (n,)
        ).copy()
        if l3_width_slope.min(initial=0.0) < 0 or not np.all(
            np.isfinite(l3_width_slope)
        ):
            raise ValueError(
                "l3_width_slope must be finite and >= 0 (eV of L3 FWHM per eV above "
                "the first L3 line; 0 means one L3 width)"
            )
    counts = lib.offsets[rows + 1] - lib.offsets[rows]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    idx = np.concatenate(
        [np.arange(lib.offsets[r], lib.offsets[r + 1]) for r in rows]
    ).astype(np.int64)
    valence = lib.table["valence"][rows].astype(np.int64)
    if zero is None:
        zero = np.array([ENERGY_OFFSET_EV[int(v)] for v in valence])
    zero = np.broadcast_to(np.asarray(zero, dtype=np.float64), (n,)) + shift
    scale = ENERGY_SCALE if energy_scale is None else float(energy_scale)
    set_of_stick = np.repeat(np.arange(n), counts)
    positions = zero[set_of_stick] + scale * lib.stick_energy[idx].astype(np.float64)
    # White-line area = number of 3d holes: the isotropic dipole intensities of
    # the model sum to holes / 3 (checked in tests/test_multiplet.py).
    intensities = 3.0 * lib.stick_intensity[idx].astype(np.float64)
    edges = lib.stick_edge[idx]

    fine = np.arange(
        e[0] - _MARGIN_EV, e[-1] + _MARGIN_EV + _FINE_STEP_EV / 2, _FINE_STEP_EV
    )
    onset = np.zeros((2, n))
    for k, label in enumerate((3, 2)):
        w = np.where(edges == label, intensities, 0.0)
        onset[k] = np.bincount(set_of_stick, w * positions, n) / np.maximum(
            np.bincount(set_of_stick, w, n), 1e-300
        )
    if method == "direct":
        y = broaden_sticks(
            fine,
            positions,
            intensities,
            edges,
            offsets,
            fwhm_l3,
            fwhm_l2,
            l3_width_slope,
        )
        y += continuum_step(fine, onset[0], onset[1], step, fwhm_l3, fwhm_l2)
        y = gaussian_broaden(fine, y, resolution)
    elif method == "fft":
        # Widen the grid (same points) to hold every stick: lines just off the
        # axis still send their Lorentzian tails into it.
        below = above = 0
        if positions.size:
            below = max(0, math.ceil((fine[0] - positions.min()) / _FINE_STEP_EV) + 1)
            above = max(0, math.ceil((positions.max() - fine[-1]) / _FINE_STEP_EV) + 1)
        y = broaden_sticks_fft(
            float(fine[0]) - below * _FINE_STEP_EV,
            _FINE_STEP_EV,
            fine.size + below + above,
            positions,
            intensities,
            edges,
            offsets,
            fwhm_l3,
            fwhm_l2,
            resolution,
            onset[0],
            onset[1],
            step,
            l3_width_slope,
        )[:, below : below + fine.size]
    else:
        raise ValueError(f"method={method!r}: use 'fft' (default) or 'direct'")
    # Average over the output channels through the running integral.
    fe = bin_edges(fine)
    cumulative = np.concatenate(
        [np.zeros((n, 1)), np.cumsum(y * np.diff(fe)[None, :], axis=1)], axis=1
    )
    oe = bin_edges(e)
    width = np.diff(oe)
    out = np.empty((n, e.size))
    for k in range(n):
        c = np.interp(oe, fe, cumulative[k])
        out[k] = np.diff(c) / width
    return out


def reference_spectrum(
    valence: int,
    coordination: str,
    energy: Any,
    *,
    ten_dq: float | None = None,
    ds: float | None = None,
    dt: float | None = None,
    slater_scale: float = 0.8,
    fwhm_l3: float | None = None,
    fwhm_l2: float | None = None,
    resolution: float | None = None,
    step: float | None = None,
    shift: float = 0.0,
    l3_width_slope: float = 0.0,
) -> np.ndarray:
    """Calibrated multiplet spectrum of one Fe site on an energy axis.

    Parameters
    ----------
    valence
        Fe oxidation state, 2 or 3.
    coordination
        "Oh", "Td", "D4h" (distorted octahedron), "C4v" (square pyramid) or
        "D2d" (distorted tetrahedron).
    energy
        Energy axis, eV, increasing (uniform or not).
    ten_dq, ds, dt, slater_scale
        Crystal-field parameters (eV) and Slater scaling, matched to the nearest
        library set (:func:`library_parameter_set`); None takes
        :data:`DEFAULT_PARAMETERS`. Td and D2d have a negative 10Dq.
    fwhm_l3, fwhm_l2
        Lorentzian core-hole widths, FWHM eV.
    resolution
        Gaussian instrument resolution, FWHM eV.
    step
        Height of the L3 continuum step (the L2 step is half of it).
    shift
        Extra energy shift, eV.
    l3_width_slope
        Growth of the L3 Lorentzian FWHM, eV per eV above the first significant
        L3 line (``fwhm_l3`` is the width there); 0 (default): one L3 width, as
        calibrated. Fits to measured standards give 0.15-0.45 for Fe3+ (with
        ``fwhm_l3`` 0.3-0.55 eV) and 0-0.2 for Fe2+ (docs/library.md).

    Returns
    -------
    numpy.ndarray
        Intensity per eV, white-line area = number of 3d holes.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(700.0, 730.0, 0.05)
    >>> y = reference_spectrum(3, "Oh", e)
    >>> bool(709.0 < e[np.argmax(y)] < 710.0)
    True

    A sharp pre-peak and a broader main peak, as in measured Fe3+ spectra:

    >>> z = reference_spectrum(3, "Oh", e, fwhm_l3=0.4, l3_width_slope=0.3)
    >>> bool(709.0 < e[np.argmax(z)] < 710.0)
    True
    """
    row, _ = library_parameter_set(
        valence, coordination, ten_dq=ten_dq, ds=ds, dt=dt, slater_scale=slater_scale
    )
    widths = {
        "fwhm_l3": fwhm_l3,
        "fwhm_l2": fwhm_l2,
        "resolution": resolution,
        "step": step,
    }
    values = {
        k: _check_width(k, DEFAULT_BROADENING[k] if v is None else v)
        for k, v in widths.items()
    }
    if not np.isfinite(shift):
        raise ValueError(f"shift={shift} must be a finite energy in eV")
    slope = float(l3_width_slope)
    if not np.isfinite(slope) or slope < 0:
        raise ValueError(
            f"l3_width_slope={slope} is invalid: it is eV of L3 FWHM per eV above "
            "the first L3 line and must be >= 0 (0 means one L3 width)"
        )
    return broaden_library(
        [row],
        energy,
        **{k: np.array([v]) for k, v in values.items()},
        shift=np.array([float(shift)]),
        l3_width_slope=np.array([slope]) if slope > 0 else None,
    )[0]


def _draw_range(name: str, value: Any, rng: np.random.Generator, n: int) -> np.ndarray:
    if np.isscalar(value):
        lo = hi = float(value)
    else:
        lo, hi = (float(v) for v in value)
    if not lo <= hi:
        raise ValueError(f"{name}={value!r}: give (low, high) with low <= high")
    if name != "shift" and lo < 0:
        raise ValueError(
            f"{name}={value!r} has a negative value: widths and the step height "
            "must be >= 0"
        )
    return rng.uniform(lo, hi, n) if hi > lo else np.full(n, lo)


def draw_library_spectra(
    n: int,
    energy: Any,
    rng: np.random.Generator | int | None = None,
    *,
    valences: Sequence[int] | None = None,
    coordinations: Sequence[str] | None = None,
    set_ids: Sequence[int] | np.ndarray | None = None,
    balance: bool = True,
    **ranges: Any,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Random library spectra with their labels, for training.

    Parameters
    ----------
    n
        Number of spectra.
    energy
        Energy axis, eV.
    rng
        A numpy Generator or a seed.
    valences, coordinations
        Restrict the draw to these groups (default: all in the library).
    set_ids
        Restrict the draw to these parameter sets (e.g. the training split).
    balance
        Draw the (valence, coordination) group uniformly first, then a set within
        it; otherwise sets are drawn uniformly.
    **ranges
        ``fwhm_l3``, ``fwhm_l2``, ``resolution``, ``step``, ``shift``,
        ``l3_width_slope``: a value or a ``(low, high)`` range drawn uniformly;
        defaults :data:`DRAW_RANGES`.

    Returns
    -------
    spectra
        Shape ``(n, channels)``.
    labels
        Arrays of length ``n``: ``valence``, ``coordination`` (name),
        ``coordination_number``, ``set_id``, ``ten_dq``, ``ds``, ``dt``,
        ``slater_scale`` and the drawn broadening values.

    Examples
    --------
    >>> import numpy as np
    >>> x, labels = draw_library_spectra(4, np.arange(700.0, 730.0, 0.1), 0)
    >>> x.shape, sorted(labels)[:3]
    ((4, 300), ['coordination', 'coordination_number', 'ds'])
    """
    unknown = set(ranges) - set(DRAW_RANGES)
    if unknown:
        raise ValueError(
            f"unknown draw parameter(s) {sorted(unknown)}: use {list(DRAW_RANGES)}"
        )
    if int(n) < 1:
        raise ValueError(f"n={n} must be >= 1")
    rng = np.random.default_rng(rng)
    lib = load_library()
    table = lib.table
    mask = np.ones(len(lib), dtype=bool)
    if valences is not None:
        for v in valences:
            _check_group(v, "Oh", lib)
        mask &= np.isin(table["valence"], list(valences))
    if coordinations is not None:
        for c in coordinations:
            _check_group(2, c, lib)
        mask &= np.isin(table["coordination"], list(coordinations))
    if set_ids is not None:
        ids = np.asarray(set_ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= len(lib)):
            raise ValueError(f"set_ids must lie in 0..{len(lib) - 1}")
        sel = np.zeros(len(lib), dtype=bool)
        sel[ids] = True
        mask &= sel
    candidates = np.flatnonzero(mask)
    if candidates.size == 0:
        raise ValueError("no library set matches the requested valences/sets")
    if balance:
        group = [f"{table['valence'][r]}{table['coordination'][r]}" for r in candidates]
        names, inverse = np.unique(group, return_inverse=True)
        g = rng.integers(0, names.size, int(n))
        rows = np.empty(int(n), dtype=np.int64)
        for k in range(names.size):
            members = candidates[inverse == k]
            hit = g == k
            rows[hit] = rng.choice(members, hit.sum())
    else:
        rows = rng.choice(candidates, int(n))
    drawn = {
        name: _draw_range(name, ranges.get(name, default), rng, int(n))
        for name, default in DRAW_RANGES.items()
    }
    spectra = broaden_library(rows, energy, **drawn, library=lib)
    labels = {
        "valence": table["valence"][rows].astype(np.int64),
        "coordination": table["coordination"][rows],
        "coordination_number": table["coordination_number"][rows].astype(np.int64),
        "set_id": table["set_id"][rows].astype(np.int64),
        "ten_dq": table["ten_dq"][rows],
        "ds": table["ds"][rows],
        "dt": table["dt"][rows],
        "slater_scale": table["slater_scale"][rows],
        **drawn,
    }
    return spectra, labels
