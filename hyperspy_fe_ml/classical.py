"""Classical per-pixel Fe3+ estimates, the cross-checks of the model.

Two methods users know, run over Dask blocks of a spectrum image like the rest of
the package (:func:`hyperspy_fe_ml.chunked.map_spectra`; lazy in, lazy out) and
returned, like :meth:`~hyperspy_fe_ml.signals.FeL23Signal.predict_fe_state`, as
:class:`~hyperspy_fe_ml.maps.FeStateMaps`:

* :func:`estimate_fe3_fraction_white_line`: van Aken & Liebscher's (2002) modified
  L3/L2 white-line ratio and universal curve (:mod:`hyperspy_fe_ml.whiteline`);
* :func:`fit_fe_references`: a multiple linear least-squares (MLLS) fit of measured
  or simulated standard spectra, with HyperSpy's linear fitting
  (``ScalableFixedPattern`` components, ``multifit(optimizer="lstsq")``) per block.

For a fit of the calibrated multiplet library with free shift and broadening, use
the :class:`~hyperspy_fe_ml.components.FeL23Edge` component in a HyperSpy model.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import dask.array as da
import numpy as np
from hyperspy.signal import BaseSignal

from hyperspy_fe_ml import __version__
from hyperspy_fe_ml.chunked import map_spectra, single_threaded_blas
from hyperspy_fe_ml.energy_axis import REQUIRED_RANGE_EV, check_energy_axis
from hyperspy_fe_ml.kernels.preprocess import (
    subtract_power_law_background,
    subtract_pre_edge_mean,
)
from hyperspy_fe_ml.library.records import LabelledSpectrum
from hyperspy_fe_ml.maps import FeStateMaps, navigation_map
from hyperspy_fe_ml.signal_tools import check_data, compute_array, signal_energy
from hyperspy_fe_ml.whiteline import (
    ANALYSIS_COLUMNS,
    CURVE_A,
    CURVE_B,
    CURVE_C,
    POST_EDGE_EV,
    STEP_L2_EV,
    STEP_L3_EV,
    STEP_WIDTH_EV,
    WINDOW_L2_EV,
    WINDOW_L3_EV,
    white_line_analysis,
)

__all__ = [
    "ReferenceInput",
    "estimate_fe3_fraction_white_line",
    "fit_fe_references",
]

#: What :func:`fit_fe_references` accepts as one reference spectrum.
ReferenceInput = BaseSignal | LabelledSpectrum | tuple[np.ndarray, np.ndarray]

#: Flag bits of the white-line ``flags`` map, and what they mean.
WHITE_LINE_BELOW_CURVE = 1
WHITE_LINE_ABOVE_CURVE = 2
WHITE_LINE_NO_L2 = 4
WHITE_LINE_FLAG_NAMES: dict[int, str] = {
    WHITE_LINE_BELOW_CURVE: (
        "L3/L2 ratio below the universal curve (Fe3+/ΣFe would be < 0), clipped to 0"
    ),
    WHITE_LINE_ABOVE_CURVE: (
        "L3/L2 ratio above the universal curve (Fe3+/ΣFe would be > 1), clipped to 1"
    ),
    WHITE_LINE_NO_L2: "no positive L2 integral (no edge, NaN or empty): NaN",
}
#: How far past 0 or 1, in Fe3+/ΣFe, a white-line ratio must read to be flagged
#: (the end points themselves are ordinary results).
CURVE_TOLERANCE = 0.01
#: Flag bits of the reference-fit ``flags`` map, and what they mean.
REFERENCE_AT_BOUND = 1
REFERENCE_NO_FIT = 2
REFERENCE_MISFIT = 4
REFERENCE_FLAG_NAMES: dict[int, str] = {
    REFERENCE_AT_BOUND: (
        "a reference weight held at 0 (the unbounded fit made it negative)"
    ),
    REFERENCE_NO_FIT: "no finite spectrum or no positive reference weight: NaN",
    REFERENCE_MISFIT: (
        "the unbounded fit needs a reference at a large negative share (below "
        "−25 %, an Fe3+ fraction or valence out of range): the references do not "
        "describe this spectrum"
    ),
}
#: Negative share of a reference, in the unbounded fit, past which the references
#: do not describe a spectrum (smaller negative weights are noise around an absent
#: reference, or the trade-off between similar references).
MISFIT_NEGATIVE_SHARE = 0.25

#: Default energy range of the reference fit, eV: the white lines.
REFERENCE_FIT_RANGE_EV: tuple[float, float] = REQUIRED_RANGE_EV
#: Fewest channels the reference fit range must hold.
MIN_FIT_CHANNELS = 10


# -- white-line ratio ------------------------------------------------------------------


def estimate_fe3_fraction_white_line(
    signal: BaseSignal,
    *,
    background_removed: bool | None = None,
    pre_edge: tuple[float, float] | None = None,
    show_progressbar: bool | None = None,
    lazy_output: bool | None = None,
) -> FeStateMaps:
    """Per-pixel Fe3+/ΣFe by the modified L3/L2 ratio; see the signal method.

    :meth:`FeL23Signal.estimate_fe3_fraction_white_line
    <hyperspy_fe_ml.signals.FeL23Signal.estimate_fe3_fraction_white_line>` runs
    this; its docstring has the details.
    """
    check_data(signal)
    check_energy_axis(signal.axes_manager.signal_axes[0], REQUIRED_RANGE_EV)
    power_law, window, report = signal._background_plan(pre_edge, background_removed)
    stacked = map_spectra(
        white_line_analysis,
        signal.data,
        signal_energy(signal),
        float(window[0]),
        float(window[1]),
        bool(power_law),
        out_channels=len(ANALYSIS_COLUMNS),
    )
    stacked = _maybe_compute(signal, stacked, show_progressbar, lazy_output)
    ratio = stacked[..., ANALYSIS_COLUMNS.index("white_line_ratio")]
    fe3 = stacked[..., ANALYSIS_COLUMNS.index("fe3_fraction")]
    flags = white_line_flags(ratio)
    maps = {
        "fe3_fraction": navigation_map(signal, fe3, "fe3_fraction", "Fe3+/ΣFe"),
        "valence": navigation_map(signal, 2.0 + fe3, "valence", "Fe valence"),
        "white_line_ratio": navigation_map(
            signal, ratio, "white_line_ratio", "Modified L3/L2 white-line ratio"
        ),
        "flags": navigation_map(signal, flags, "flags", "Quality flags (bits)"),
    }
    _warn_flagged(
        "estimate_fe3_fraction_white_line",
        flags,
        WHITE_LINE_FLAG_NAMES,
        WHITE_LINE_BELOW_CURVE | WHITE_LINE_ABOVE_CURVE,
        "The windows are fixed in eV: calibrate the energy axis on a standard "
        "(`s.calibrate_fe_l3(l3_energy=...)`) and check the background removal.",
    )
    provenance = {
        "method": "hyperspy_fe_ml.estimate_fe3_fraction_white_line",
        "reference": "van Aken & Liebscher, Phys. Chem. Minerals 29 (2002) 188",
        "package_version": __version__,
        "background": {
            "pre_edge_eV": [float(window[0]), float(window[1])],
            "power_law": bool(power_law),
            "l3_position_eV": float(report.l3_position),
        },
        "step": {
            "inflections_eV": [STEP_L3_EV, STEP_L2_EV],
            "width_eV": STEP_WIDTH_EV,
            "heights": "2:1",
            "post_edge_eV": list(POST_EDGE_EV),
        },
        "windows_eV": {"L3": list(WINDOW_L3_EV), "L2": list(WINDOW_L2_EV)},
        "universal_curve": {"a": CURVE_A, "b": CURVE_B, "c": CURVE_C},
        "flags": {str(bit): name for bit, name in WHITE_LINE_FLAG_NAMES.items()},
    }
    return FeStateMaps(maps, provenance)


# -- reference fit (MLLS) ------------------------------------------------------------


def fit_fe_references(
    signal: BaseSignal,
    references: Mapping[str, ReferenceInput],
    *,
    valences: Mapping[str, float] | None = None,
    fit_range: tuple[float, float] | None = None,
    linear_background: bool = True,
    nonnegative: bool = True,
    background_removed: bool | None = None,
    pre_edge: tuple[float, float] | None = None,
    show_progressbar: bool | None = None,
    lazy_output: bool | None = None,
) -> FeStateMaps:
    """Per-pixel weights of reference spectra (MLLS); see the signal method.

    :meth:`FeL23Signal.fit_fe_references
    <hyperspy_fe_ml.signals.FeL23Signal.fit_fe_references>` runs this; its
    docstring has the details.
    """
    check_data(signal)
    energy = check_energy_axis(signal.axes_manager.signal_axes[0], REQUIRED_RANGE_EV)
    lo, hi = _fit_range(fit_range, energy)
    inside = np.flatnonzero((energy >= lo) & (energy <= hi))
    if inside.size < MIN_FIT_CHANNELS:
        raise ValueError(
            f"The fit range {lo:g}–{hi:g} eV holds {inside.size} channel(s); a "
            f"reference fit needs at least {MIN_FIT_CHANNELS}. Widen `fit_range`."
        )
    fit_energy = energy[inside]
    names, patterns, labels = _reference_patterns(references, fit_energy)
    valences = _reference_valences(names, labels, valences)
    n_refs = len(names)
    if linear_background:
        patterns = np.concatenate([patterns, _linear_terms(fit_energy)])
    power_law, window, report = signal._background_plan(pre_edge, background_removed)
    stacked = map_spectra(
        _mlls_block,
        signal.data,
        signal_energy(signal),
        float(window[0]),
        float(window[1]),
        bool(power_law),
        int(inside[0]),
        int(inside[-1]) + 1,
        patterns,
        n_refs,
        bool(nonnegative),
        out_channels=len(patterns) + 2,
    )
    stacked = _maybe_compute(signal, stacked, show_progressbar, lazy_output)
    weights = [stacked[..., k] for k in range(n_refs)]
    total = sum(weights[1:], weights[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        # Fractions of nothing (no positive total weight) are not defined.
        fractions = [w / np.where(total > 0, total, np.nan) for w in weights]
    flags = stacked[..., len(patterns) + 1].astype(np.uint8)
    maps: dict[str, BaseSignal] = {}
    for name, fraction in zip(names, fractions, strict=True):
        maps[f"fraction_{name}"] = navigation_map(
            signal, fraction, f"fraction_{name}", f"Fraction of reference {name}"
        )
    for name, weight in zip(names, weights, strict=True):
        maps[f"weight_{name}"] = navigation_map(
            signal, weight, f"weight_{name}", f"Weight of reference {name}"
        )
    if valences is not None:
        valence = sum(
            (f * valences[n] for n, f in zip(names, fractions, strict=True)),
            0.0 * fractions[0],
        )
        if nonnegative:  # fractions sum to 1: only rounding can leave 2–3
            valence = np.clip(valence, 2.0, 3.0)
        maps["valence"] = navigation_map(signal, valence, "valence", "Fe valence")
        maps["fe3_fraction"] = navigation_map(
            signal, valence - 2.0, "fe3_fraction", "Fe3+/ΣFe"
        )
    maps["residual"] = navigation_map(
        signal,
        stacked[..., len(patterns)],
        "residual",
        "Relative RMS residual of the reference fit",
    )
    maps["flags"] = navigation_map(signal, flags, "flags", "Quality flags (bits)")
    _warn_flagged(
        "fit_fe_references",
        flags,
        REFERENCE_FLAG_NAMES,
        REFERENCE_MISFIT,
        "These pixels were fitted with the weights held at or above 0. Check the "
        "energy calibration (`s.calibrate_fe_l3(l3_energy=...)`), the background "
        "removal and that the references match the data's resolution; see the "
        "residual map.",
    )
    provenance = {
        "method": "hyperspy_fe_ml.fit_fe_references",
        "optimizer": (
            "HyperSpy linear fitting: ScalableFixedPattern, lstsq; pixels with a "
            "negative reference weight refitted with the reference weights >= 0 "
            "(exact: the best feasible least-squares fit over every subset of "
            "references)"
            if nonnegative
            else "HyperSpy linear fitting: ScalableFixedPattern, lstsq"
        ),
        "package_version": __version__,
        "references": list(names),
        "valences": None if valences is None else dict(valences),
        "fit_range_eV": [float(fit_energy[0]), float(fit_energy[-1])],
        "linear_background": bool(linear_background),
        "nonnegative": bool(nonnegative),
        "flags": {str(bit): name for bit, name in REFERENCE_FLAG_NAMES.items()},
        "background": {
            "pre_edge_eV": [float(window[0]), float(window[1])],
            "power_law": bool(power_law),
            "l3_position_eV": float(report.l3_position),
        },
    }
    return FeStateMaps(maps, provenance)


def _fit_range(
    fit_range: tuple[float, float] | None, energy: np.ndarray
) -> tuple[float, float]:
    if fit_range is None:
        return REFERENCE_FIT_RANGE_EV
    try:
        lo, hi = (float(v) for v in fit_range)
    except (TypeError, ValueError):
        raise TypeError(
            f"`fit_range` must be two energies in eV, e.g. (704.0, 727.0); got "
            f"{fit_range!r}."
        ) from None
    if not (lo < hi and energy[0] <= lo and hi <= energy[-1]):
        raise ValueError(
            f"The fit range {lo:g}–{hi:g} eV must be increasing and inside the "
            f"energy axis ({energy[0]:.2f}–{energy[-1]:.2f} eV); pass e.g. "
            f"fit_range={REFERENCE_FIT_RANGE_EV}."
        )
    return lo, hi


def _reference_patterns(
    references: Mapping[str, ReferenceInput], energy: np.ndarray
) -> tuple[list[str], np.ndarray, dict[str, float | None]]:
    """Names, references on ``energy`` (shape ``(n, channels)``) and their valences."""
    if not isinstance(references, Mapping) or not references:
        raise TypeError(
            "`references` must be a non-empty dict of name -> reference spectrum "
            "(a Signal1D, a LabelledSpectrum or an (energy, intensity) pair), e.g. "
            "{'FeO': s_feo, 'Fe2O3': s_fe2o3}."
        )
    names, rows, labels = [], [], {}
    for name, ref in references.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"Reference names must be non-empty strings; got {name!r}.")
        ref_energy, intensity, valence = _reference_arrays(name, ref)
        if ref_energy[0] > energy[0] or ref_energy[-1] < energy[-1]:
            raise ValueError(
                f"Reference {name!r} covers {ref_energy[0]:.2f}–{ref_energy[-1]:.2f} "
                f"eV but the fit range is {energy[0]:.2f}–{energy[-1]:.2f} eV. Pass "
                "a `fit_range` inside every reference, or references that cover it."
            )
        names.append(name)
        rows.append(np.interp(energy, ref_energy, intensity))
        labels[name] = valence
    patterns = np.ascontiguousarray(rows, dtype=np.float64)
    if np.linalg.matrix_rank(patterns) < len(names):
        raise ValueError(
            f"The references {names} are linearly dependent over the fit range "
            f"{energy[0]:.2f}–{energy[-1]:.2f} eV (one is zero or a combination of "
            "the others), so their weights are not defined. Drop the redundant one."
        )
    return names, patterns, labels


def _linear_terms(energy: np.ndarray) -> np.ndarray:
    """An offset and a slope over ``energy`` (scaled to ±1), shape ``(2, channels)``.

    Fitted with the references, they absorb the smooth error the background
    subtraction leaves (a power law fitted below the edge also takes in the tails of
    the white lines and extrapolates them).
    """
    centre = 0.5 * (energy[0] + energy[-1])
    half = 0.5 * (energy[-1] - energy[0])
    return np.stack([np.ones_like(energy), (energy - centre) / half])


def _reference_arrays(
    name: str, ref: ReferenceInput
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Energy, intensity (finite, sorted) and valence label of one reference."""
    valence = None
    if isinstance(ref, LabelledSpectrum):
        energy, intensity, valence = ref.energy, ref.intensity, ref.valence
    elif isinstance(ref, BaseSignal):
        if (
            ref.axes_manager.signal_dimension != 1
            or ref.axes_manager.navigation_size > 1
        ):
            raise ValueError(
                f"Reference {name!r} must be one spectrum (a Signal1D without "
                f"navigation axes); it has shape {ref.data.shape}. Pick one with "
                "`ref.inav[...]` or average it with `ref.mean()`."
            )
        axis = ref.axes_manager.signal_axes[0]
        check_energy_axis(axis, None)
        energy = axis.axis
        intensity = ref.data.compute() if ref._lazy else ref.data
        label = ref.metadata.get_item("Sample.fe_valence", None)
        valence = None if label is None else float(label)
    elif isinstance(ref, tuple | list) and len(ref) == 2:
        energy, intensity = ref
    else:
        raise TypeError(
            f"Reference {name!r} is a {type(ref).__name__}; pass a Signal1D, a "
            "LabelledSpectrum or an (energy, intensity) pair of arrays."
        )
    energy = np.asarray(energy, dtype=np.float64).ravel()
    intensity = np.asarray(intensity, dtype=np.float64).ravel()
    if energy.shape != intensity.shape or energy.size < 2:
        raise ValueError(
            f"Reference {name!r}: energy and intensity must be 1-D arrays of one "
            f"length (at least 2); got {energy.shape} and {intensity.shape}."
        )
    if not (np.all(np.isfinite(energy)) and np.all(np.isfinite(intensity))):
        raise ValueError(
            f"Reference {name!r} holds NaN or infinite values; drop or interpolate "
            "them before fitting."
        )
    order = np.argsort(energy)
    return energy[order], intensity[order], valence


def _reference_valences(
    names: list[str],
    labels: Mapping[str, float | None],
    valences: Mapping[str, float] | None,
) -> dict[str, float] | None:
    """Valence of every reference (given, else from its labels), or None."""
    merged = {n: labels.get(n) for n in names}
    if valences is not None:
        unknown = set(valences) - set(names)
        if unknown:
            raise ValueError(
                f"`valences` names {sorted(unknown)}, which are not references "
                f"({names}); use the keys of `references`."
            )
        merged.update({n: float(v) for n, v in valences.items()})
    if any(v is None for v in merged.values()):
        return None
    for name, v in merged.items():
        if not 2.0 <= v <= 3.0:
            raise ValueError(
                f"The valence of reference {name!r} is {v}; the Fe3+ fraction is "
                "defined for valences between 2 and 3."
            )
    return merged


def _mlls_block(
    energy: np.ndarray,
    spectra: np.ndarray,
    pre_edge_start: float,
    pre_edge_end: float,
    power_law: bool,
    first: int,
    stop: int,
    patterns: np.ndarray,
    n_refs: int,
    nonnegative: bool,
) -> np.ndarray:
    """Background, then HyperSpy's linear fit of ``patterns`` to one block.

    With ``nonnegative``, the weights of the ``n_refs`` references (the first
    patterns; the others are the offset and slope) are bounded at zero: pixels whose
    unbounded fit (HyperSpy's, vectorised) gives one of them below zero are
    refitted with bounds (:func:`_bounded_weights`); where the unbounded
    solution is inside the bounds, it is the bounded one too.

    Returns shape ``(pixels, n_patterns + 2)``: the weights, the RMS residual
    relative to the RMS of the data over the fit range, and the flag bits
    (:data:`REFERENCE_FLAG_NAMES`).
    """
    import hyperspy.api as hs

    subtract = subtract_power_law_background if power_law else subtract_pre_edge_mean
    clean = subtract(energy, spectra, pre_edge_start, pre_edge_end)[:, first:stop]
    fit_energy = energy[first:stop]
    n_patterns = patterns.shape[0]
    out = np.full((clean.shape[0], n_patterns + 2), np.nan)
    good = np.all(np.isfinite(clean), axis=1)
    out[:, -1] = np.where(good, 0, REFERENCE_NO_FIT)
    if not np.any(good):
        return out
    axis = {"axis": fit_energy, "units": "eV", "name": "Energy"}
    data = hs.signals.Signal1D(clean[good], axes=[{"size": int(good.sum())}, axis])
    model = data.create_model()
    components = []
    for k, pattern in enumerate(patterns):
        fixed = hs.signals.Signal1D(pattern, axes=[axis])
        component = hs.model.components1D.ScalableFixedPattern(fixed, interpolate=False)
        component.name = f"pattern_{k}"
        components.append(component)
    model.extend(components)
    with single_threaded_blas():  # Dask runs one block per core already
        model.multifit(optimizer="lstsq", show_progressbar=False)
    weights = np.stack([c.yscale.map["values"] for c in components], axis=-1)
    flags = np.zeros(len(weights), dtype=np.int64)
    if nonnegative:
        refs = weights[:, :n_refs]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = refs / np.abs(refs).sum(axis=1, keepdims=True)
        # Weights a little below zero are noise around a reference that is not
        # there; a large negative share is a fit the references cannot make.
        flags[np.min(share, axis=1) < -MISFIT_NEGATIVE_SHARE] |= REFERENCE_MISFIT
        negative = np.any(refs < 0.0, axis=1)
        if np.any(negative):
            weights[negative] = _bounded_weights(
                patterns, clean[good][negative], n_refs
            )
            flags[negative] |= REFERENCE_AT_BOUND
    residual = clean[good] - weights @ patterns
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.sqrt(np.mean(residual**2, axis=1) / np.mean(clean[good] ** 2, 1))
    flags[~(weights[:, :n_refs].sum(axis=1) > 0)] |= REFERENCE_NO_FIT
    out[good, :n_patterns] = weights
    out[good, n_patterns] = relative
    out[good, -1] = flags
    return out


#: Most references whose bounded fit is solved by trying every active set (2**n
#: small least-squares problems, vectorised over pixels); more go pixel by pixel.
MAX_ENUMERATED_REFERENCES = 8


def _bounded_weights(
    patterns: np.ndarray, spectra: np.ndarray, n_nonnegative: int
) -> np.ndarray:
    """Least-squares weights with the first ``n_nonnegative`` held at or above 0.

    The other weights (offset and slope) are free. The bounded optimum is the
    unbounded least-squares fit over the references it keeps, and it is feasible;
    every other feasible subset fit is a feasible point, so no better. For up to
    :data:`MAX_ENUMERATED_REFERENCES` references every subset is fitted at once for
    all pixels (``numpy.linalg.lstsq`` with many right-hand sides) and the best
    feasible fit of each pixel kept; beyond, one ``scipy.optimize.lsq_linear``
    problem per pixel.

    Examples
    --------
    >>> import numpy as np
    >>> patterns = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    >>> _bounded_weights(patterns, np.array([[2.0, -1.0, 3.0]]), 2).round(6)
    array([[2.5, 0. ]])
    """
    spectra = np.atleast_2d(spectra)
    n_patterns = patterns.shape[0]
    if n_nonnegative > MAX_ENUMERATED_REFERENCES:
        return _bounded_weights_per_pixel(patterns, spectra, n_nonnegative)
    free = list(range(n_nonnegative, n_patterns))
    rhs = spectra.T
    best = np.zeros((len(spectra), n_patterns))
    best_cost = np.full(len(spectra), np.inf)
    for subset in range(2**n_nonnegative):
        kept = [k for k in range(n_nonnegative) if subset >> k & 1]
        columns = kept + free
        if not columns:
            cost = np.sum(spectra**2, axis=1)
            weights = np.zeros((0, len(spectra)))
        else:
            design = patterns[columns].T
            weights = np.linalg.lstsq(design, rhs, rcond=None)[0]
            cost = np.sum((rhs - design @ weights) ** 2, axis=0)
        feasible = np.all(weights[: len(kept)] >= 0.0, axis=0)
        better = feasible & (cost < best_cost)
        if np.any(better):
            best[better] = 0.0
            best[np.ix_(better, columns)] = weights[:, better].T
            best_cost[better] = cost[better]
    return best


def _bounded_weights_per_pixel(
    patterns: np.ndarray, spectra: np.ndarray, n_nonnegative: int
) -> np.ndarray:
    """:func:`_bounded_weights` by one ``scipy.optimize.lsq_linear`` per pixel."""
    from scipy.optimize import lsq_linear

    lower = np.full(patterns.shape[0], -np.inf)
    lower[:n_nonnegative] = 0.0
    bounds = (lower, np.full(patterns.shape[0], np.inf))
    design = patterns.T
    scale = np.abs(design).max(axis=0)
    scale[scale == 0] = 1.0
    return np.stack(
        [
            lsq_linear(design / scale, row, bounds=bounds, method="bvls").x / scale
            for row in spectra
        ]
    )


# -- shared -------------------------------------------------------------------------


def white_line_flags(ratio):
    """Flag bits of white-line ratios (NumPy or Dask): off the curve, or no L2.

    Parameters
    ----------
    ratio
        Modified L3/L2 ratios.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        ``uint8`` bits of :data:`WHITE_LINE_FLAG_NAMES`, the shape of ``ratio``.

    Examples
    --------
    >>> import numpy as np
    >>> white_line_flags(np.array([1.0, 1.73, 5.0, 9.64, 15.6, np.nan])).tolist()
    [1, 0, 0, 0, 2, 4]
    """
    low = _curve_ratio(-CURVE_TOLERANCE)  # the curve just below Fe3+/ΣFe = 0
    high = _curve_ratio(1.0 + CURVE_TOLERANCE)  # and just above 1
    with np.errstate(invalid="ignore"):
        flags = (
            (ratio < low) * WHITE_LINE_BELOW_CURVE
            + (ratio > high) * WHITE_LINE_ABOVE_CURVE
            + ~(ratio == ratio) * WHITE_LINE_NO_L2  # NaN
        )
    return flags.astype(np.uint8)


def _curve_ratio(fe3: float) -> float:
    """The universal curve: modified L3/L2 ratio at Fe3+/ΣFe = ``fe3``."""
    return 1.0 / (CURVE_A * fe3**2 + CURVE_B * fe3 + CURVE_C) - 1.0


def _warn_flagged(
    method: str, flags, names: Mapping[int, str], bits: int, advice: str
) -> None:
    """Warn, with counts per reason, when computed results carry one of ``bits``.

    Values clipped or held at a bound are numbers that look like results, so they
    are said out loud; NaN pixels speak for themselves (and are in the flags map).
    """
    if isinstance(flags, da.Array):
        return  # lazy: counted when computed, in the flags map
    flags = np.asarray(flags).ravel()
    reasons = [
        f"{int(np.count_nonzero(flags & bit))} of {flags.size} pixel(s): {name}"
        for bit, name in names.items()
        if bit & bits and np.any(flags & bit)
    ]
    if reasons:
        warnings.warn(
            f"{method}: " + "; ".join(reasons) + f". {advice} The pixels are "
            "marked in the 'flags' map.",
            UserWarning,
            stacklevel=4,
        )


def _maybe_compute(
    signal: BaseSignal,
    stacked: da.Array,
    show_progressbar: bool | None,
    lazy_output: bool | None,
) -> da.Array | np.ndarray:
    """Compute now unless the output should be lazy (lazy in, lazy out)."""
    lazy = signal._lazy if lazy_output is None else bool(lazy_output)
    return stacked if lazy else compute_array(stacked, show_progressbar)
