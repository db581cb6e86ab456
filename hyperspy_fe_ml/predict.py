"""Map an Fe-state model over a spectrum image: Dask blocks in, named maps out.

:func:`predict_fe_state` is what :meth:`FeL23Signal.predict_fe_state
<hyperspy_fe_ml.signals.FeL23Signal.predict_fe_state>` runs. It checks the signal
and plans the preprocessing (before any heavy work), then maps one function over
the navigation blocks of the data with a single ``dask.array.map_blocks``: per
block, the fused numba kernel
:func:`~hyperspy_fe_ml.kernels.model_inputs.prepare_model_inputs` turns raw (or
background-removed) spectra into standardised model inputs and quality flags, and
:meth:`~hyperspy_fe_ml.model.FeStateModel.predict_standardised` runs the ensemble
on the whole block at once. No Python runs per pixel. The block function closes
over plain arrays and the model only, so a ``dask.distributed`` cluster runs it
unchanged.
"""

import math
import warnings
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from dask.base import tokenize
from hyperspy.signal import BaseSignal

from hyperspy_fe_ml import __version__
from hyperspy_fe_ml.chunked import (
    as_spectrum_blocks,
    compile_once,
    single_threaded_blas,
)
from hyperspy_fe_ml.energy_axis import (
    CONTRACT_SPAN_EV,
    FE2_L3_CENTROID_EV,
    FE2_L3_EV,
    FE3_L3_CENTROID_EV,
    FE3_L3_EV,
    L3_CALIBRATION_TARGET_EV,
    L3_OFFSET_TOLERANCE_EV,
    check_contract_range,
    check_energy_axis,
    inspect_fe_l23,
)
from hyperspy_fe_ml.kernels.model_inputs import (
    BACKGROUND_FIXED_EXPONENT,
    BACKGROUND_MEAN,
    BACKGROUND_POWER_LAW,
    FLAG_BACKGROUND_FALLBACK,
    FLAG_FE2_SITE_UNRESOLVED,
    FLAG_METALLIC,
    FLAG_NAMES,
    FLAG_NO_EDGE,
    FLAG_OOD_FEATURES,
    FLAG_OOD_RECONSTRUCTION,
    FLAG_OOD_SPIKE,
    FLAG_OUT_OF_DISTRIBUTION,
    FLAG_UNLISTED,
    FLAGS_UNREADABLE,
    prepare_model_inputs,
)
from hyperspy_fe_ml.maps import FeStateMaps, map_builder
from hyperspy_fe_ml.measured_uncertainty import add_measured_std
from hyperspy_fe_ml.model import (
    L3_ALIGN_EV,
    L3_CENTROID_HALF_WIDTH_EV,
    L3_CENTROID_STEPS,
    L3_CENTROID_WINDOW_EV,
    NORMALISATION_SPAN_EV,
    OUTPUTS,
    FeStateModel,
    load_default_model,
)
from hyperspy_fe_ml.ood import (
    METAL_MIN_MISFIT,
    METAL_SURE_FRACTION,
    library_misfit,
    reconstruction_test,
    thresholds,
)
from hyperspy_fe_ml.signal_tools import (
    check_data,
    compute_array,
    progressbar_wanted,
    typical_spectrum,
)
from hyperspy_fe_ml.site_resolution import widen_for_unresolved_fe2_sites
from hyperspy_fe_ml.state_detector import (
    OUTPUT_NAMES,
    StateDetector,
    load_default_detectors,
    predict_state_fractions,
)

#: The model's window (700-729.9 eV, L3 aligned at 709 eV) has room for an L3
#: maximum this far from its nominal place without moving, eV.
WINDOW_SLACK_EV = 2.5
#: Background treatments of :class:`PredictionPlan`, by kernel mode.
BACKGROUNDS: dict[str, int] = {
    "pre-edge mean": BACKGROUND_MEAN,
    "power law": BACKGROUND_POWER_LAW,
    "fixed-exponent power law": BACKGROUND_FIXED_EXPONENT,
}

#: The maps :func:`predict_fe_state` returns, in order, with the quantity and
#: units each one holds.
MAP_QUANTITIES: dict[str, str] = {
    "valence": "Fe valence",
    "valence_std": "Fe valence, standard deviation",
    "fe3_fraction": "Fe3+/ΣFe",
    "fe3_fraction_std": "Fe3+/ΣFe, standard deviation",
    "td_fraction": "Tetrahedral Fe fraction",
    "td_fraction_std": "Tetrahedral Fe fraction, standard deviation",
    "coordination_number": "Fe coordination number",
    "coordination_number_std": "Fe coordination number, standard deviation",
    "ood_score": "Out-of-distribution score",
    "reconstruction_misfit": "Library reconstruction misfit (noise units)",
    "reconstruction_snr": "Library reconstruction amplitude / noise",
    "spike_score": "Largest single-channel excursion (noise units)",
    "metallic_fraction": "Metallic Fe fraction (Fe0/ΣFe)",
    "unlisted_fraction": "Fraction of Fe low-spin or Fe4+ (outside the library)",
    "l3_centroid": "Fe L3 centroid (eV)",
    "edge_snr": "White-line signal-to-noise ratio",
    "flags": "Quality flags (bits)",
}
_FLOAT_MAPS = [name for name in MAP_QUANTITIES if name != "flags"]


@dataclass(frozen=True)
class PredictionPlan:
    """What :func:`predict_fe_state` does to every spectrum, decided up front.

    Attributes
    ----------
    pre_edge
        Pre-edge window, eV, on the signal's axis.
    background
        ``"power law"`` (raw counts), ``"fixed-exponent power law"`` (raw counts
        with a pre-edge too short to fit an exponent; flagged) or ``"pre-edge
        mean"`` (background already removed).
    edge_window
        White-line window of the edge signal-to-noise ratio, eV, in the model's
        frame (the axis less ``axis_offset``).
    saturation
        Intensity at or above which a channel counts as saturated (``inf``: none).
    l3_position
        L3 maximum of the typical spectrum, eV, on the signal's axis (NaN: no
        edge found).
    axis_offset
        ``l3_position`` less its nominal place (708.65 eV): the model's window is
        read this much higher on the axis, so an offset axis is read where its
        edge is (0 when no edge was found).
    energy_calibrated
        Whether the user declared the axis calibrated.
    energy_offset
        How far the typical spectrum's L3 maximum is from where it lies for the
        Fe3+ fraction its shape shows, eV (NaN: no edge found); warned about
        beyond 3 eV.
    measured
        Whether the spectra are measured: their standard deviations then include
        the model's simulation-to-experiment term (``model.measured_std``).
    """

    pre_edge: tuple[float, float]
    background: str
    edge_window: tuple[float, float]
    saturation: float
    l3_position: float
    axis_offset: float
    energy_calibrated: bool
    energy_offset: float
    measured: bool = True


def predict_fe_state(
    signal: BaseSignal,
    model: FeStateModel | str | Path | None = None,
    *,
    background_removed: bool | None = None,
    pre_edge: tuple[float, float] | None = None,
    saturation: float | None = None,
    energy_calibrated: bool = False,
    measured: bool = True,
    show_progressbar: bool | None = None,
    lazy_output: bool | None = None,
) -> FeStateMaps:
    """Per-pixel Fe state of an Fe L2,3 signal; see ``FeL23Signal.predict_fe_state``."""
    check_data(signal)
    model = _resolve_model(model)
    if not isinstance(measured, bool | np.bool_):
        raise TypeError(
            f"`measured` must be True (measured spectra, the default) or False "
            f"(spectra simulated from the model's library); got {measured!r}."
        )
    energy = np.asarray(signal.axes_manager.signal_axes[0].axis, dtype=np.float64)
    plan, typical = _plan(
        signal, model, background_removed, pre_edge, saturation, energy_calibrated
    )
    plan = replace(plan, measured=bool(measured))
    blocks = as_spectrum_blocks(signal.data)
    n_maps = len(_FLOAT_MAPS)
    detectors = _detectors_for(model)
    func = partial(
        _predict_block, energy=energy, model=model, plan=plan, detectors=detectors
    )
    # numba compiles on a first call: on one pixel here, not under the progress bar.
    compile_once(
        ("predict", blocks.dtype.str),
        partial(func, np.zeros((1, blocks.shape[-1]), dtype=blocks.dtype)),
        notice=progressbar_wanted(show_progressbar),
    )
    plan = _measure_offset(plan, typical.astype(blocks.dtype), func)
    # An explicit name: Dask would otherwise hash the model's arrays every call.
    name = "fe-state-" + tokenize(
        blocks.name,
        _model_key(model),
        plan,
        energy.tobytes(),
        [d.info.get("arrays_sha256") for d in detectors],
    )
    stacked = blocks.map_blocks(
        func,
        chunks=(*blocks.chunks[:-1], (n_maps + 1,)),
        dtype=np.float32,
        meta=np.empty((0,) * blocks.ndim, dtype=np.float32),
        name=name,
    )
    lazy = signal._lazy if lazy_output is None else bool(lazy_output)
    if not lazy:
        stacked = compute_array(stacked, show_progressbar)
    provenance = {
        "method": "hyperspy_fe_ml.predict_fe_state",
        "package_version": __version__,
        "model": _model_provenance(model),
        "preprocessing": {
            **asdict(plan),
            "grid_eV": [float(model.energy[0]), float(model.energy[-1])],
            "grid_channels": int(model.n_channels),
            "normalisation": "white-line integral about the L3 centroid",
            "normalisation_span_eV": list(NORMALISATION_SPAN_EV),
            "l3_alignment_eV": L3_ALIGN_EV,
            "absolute_energy_input": bool(model.absolute_energy),
        },
        "flags": {str(bit): name for bit, name in FLAG_NAMES.items()},
        "unreadable_flags": FLAGS_UNREADABLE,
        "ood_thresholds": {
            "ood_score": float(model.ood_threshold),
            **thresholds(),
            **{name: float(d.flag_fraction) for d in detectors for name in d.outputs},
        },
        "state_detectors": [d.info for d in detectors],
    }
    if not lazy:  # one contiguous plane per map
        stacked = np.ascontiguousarray(np.moveaxis(stacked, -1, 0))
    build = map_builder(signal)
    signals = {}
    for k, name in enumerate(MAP_QUANTITIES):
        data = stacked[k] if not lazy else stacked[..., k]
        if name == "flags":
            data = data.astype(np.uint16)
        signals[name] = partial(build, data, name, MAP_QUANTITIES[name])
    return FeStateMaps(signals, provenance)


def model_input_spectra(
    signal: BaseSignal,
    model: FeStateModel | str | Path | None = None,
    *,
    background_removed: bool | None = None,
    pre_edge: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, PredictionPlan]:
    """The spectra as the model reads them, before its standardisation.

    The same planning and kernel as :func:`predict_fe_state`: background removed
    (or not), resampled onto ``model.energy`` (the window moved with an offset
    axis), missing ends held, normalised by the white-line integral about the L3
    centroid and shifted to put that centroid at
    :data:`~hyperspy_fe_ml.model.L3_ALIGN_EV`.
    Experimental standards enter training, and the library is compared with
    them, in this form.

    Parameters
    ----------
    signal
        An Fe L2,3 signal (eager or lazy; a lazy one is computed).
    model
        The model whose grid and windows are used (default: the shipped one).
    background_removed, pre_edge
        As for :func:`predict_fe_state`.

    Returns
    -------
    aligned
        Shape ``(n_pixels, model.n_channels)``, float64; NaN rows where no L3
        line is found.
    flags
        Quality flags per pixel
        (:data:`~hyperspy_fe_ml.kernels.model_inputs.FLAG_NAMES`).
    plan
        The preprocessing that was applied.

    Examples
    --------
    >>> import numpy as np, hyperspy.api as hs
    >>> from hyperspy_fe_ml.library import reference_spectrum
    >>> e = np.arange(695.0, 740.0, 0.1)
    >>> s = hs.signals.Signal1D(reference_spectrum(3, "Oh", e) + 0.01)
    >>> s.axes_manager[-1].offset, s.axes_manager[-1].scale = 695.0, 0.1
    >>> s.axes_manager[-1].units = "eV"
    >>> aligned, flags, plan = model_input_spectra(s, background_removed=True)
    >>> aligned.shape[1] == load_default_model().n_channels, int(flags[0])
    (True, 0)
    """
    check_data(signal)
    model = _resolve_model(model)
    energy = np.asarray(signal.axes_manager.signal_axes[0].axis, dtype=np.float64)
    plan, _ = _plan(signal, model, background_removed, pre_edge, None, False)
    data = np.asarray(compute_array(as_spectrum_blocks(signal.data), False))
    spectra = np.ascontiguousarray(data.reshape(-1, data.shape[-1]))
    zeros, ones = np.zeros(model.n_channels), np.ones(model.n_channels)
    aligned, _, _, _, flags = _read(energy, spectra, model, plan, zeros, ones)
    return np.asarray(aligned, dtype=np.float64), np.asarray(flags), plan


# -- per block ------------------------------------------------------------------------


def _read(
    energy: np.ndarray,
    spectra: np.ndarray,
    model: FeStateModel,
    plan: PredictionPlan,
    mean: np.ndarray,
    scale: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fused kernel with the plan's windows and the model's grid, standardised
    by ``mean`` and ``scale``."""
    return prepare_model_inputs(
        energy,
        spectra,
        plan.pre_edge[0],
        plan.pre_edge[1],
        BACKGROUNDS[plan.background],
        model.energy,
        plan.axis_offset,
        plan.edge_window[0],
        plan.edge_window[1],
        L3_CENTROID_WINDOW_EV,
        L3_CENTROID_HALF_WIDTH_EV,
        L3_CENTROID_STEPS,
        NORMALISATION_SPAN_EV,
        L3_ALIGN_EV,
        mean,
        scale,
        plan.saturation,
    )


def _predict_block(
    block: np.ndarray,
    *,
    energy: np.ndarray,
    model: FeStateModel,
    plan: PredictionPlan,
    detectors: tuple[StateDetector, ...] = (),
) -> np.ndarray:
    """Maps of one block: shape ``navigation + (len(MAP_QUANTITIES),)``, float32."""
    nav_shape = block.shape[:-1]
    spectra = block.reshape(-1, block.shape[-1])
    if not spectra.flags.c_contiguous:
        spectra = np.ascontiguousarray(spectra)
    inputs, norm2, centroid, edge_snr, flags = _read(
        energy, spectra, model, plan, model.input_mean, model.input_scale
    )
    columns, flags = read_inputs(
        model, inputs, norm2, centroid, flags, detectors, measured=plan.measured
    )
    out = np.empty((spectra.shape[0], len(MAP_QUANTITIES)), dtype=np.float32)
    columns["edge_snr"] = edge_snr
    for k, name in enumerate(_FLOAT_MAPS):
        out[:, k] = columns[name]
    out[:, -1] = flags
    return out.reshape(*nav_shape, len(MAP_QUANTITIES))


def foreign_state_test(
    model: FeStateModel,
    inputs: np.ndarray,
    fraction: np.ndarray,
    flags: np.ndarray,
    flag_fraction: float,
    *,
    fitted_background: bool = False,
) -> np.ndarray:
    """Pixels read as metallic iron, or as an Fe state outside the library.

    Either the detector is sure (fraction above
    :data:`~hyperspy_fe_ml.ood.METAL_SURE_FRACTION`), or it reads more than
    ``flag_fraction`` (its own) and the non-negative library reconstruction
    (:func:`~hyperspy_fe_ml.ood.library_misfit`, run on those pixels only) does
    not explain the shape (misfit above
    :data:`~hyperspy_fe_ml.ood.METAL_MIN_MISFIT`): a broad Fe2+ edge resembles
    metal, but the library reproduces it. With ``fitted_background`` (the
    metallic test) a pixel with the fixed-exponent fallback is never flagged: the
    continuum left under its edge is not measured, and the detector reads a
    white-line to continuum ratio (the fallback has its own flag).
    """
    allowed = np.ones(fraction.shape, dtype=bool)
    if fitted_background:
        allowed = (flags & FLAG_BACKGROUND_FALLBACK) == 0
    with np.errstate(invalid="ignore"):
        sure = allowed & (fraction > METAL_SURE_FRACTION)
        candidates = allowed & (fraction > flag_fraction) & ~sure
    if not np.any(candidates):
        return sure
    misfit = library_misfit(
        model.energy, inputs, candidates, model.input_mean, model.input_scale
    )
    with np.errstate(invalid="ignore"):
        return sure | (candidates & (misfit > METAL_MIN_MISFIT))


def read_inputs(
    model: FeStateModel,
    inputs: np.ndarray,
    norm2: np.ndarray,
    centroid: np.ndarray,
    flags: np.ndarray,
    detectors: tuple[StateDetector, ...] = (),
    *,
    measured: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Predictions and every out-of-distribution test for standardised inputs.

    What each block of :func:`predict_fe_state` does after its kernel (also used
    to measure the tests' rates on simulated spectra): the library reconstruction
    (no edge when its amplitude is not above the noise; misfit and spike tests),
    the ensemble with its feature-space score, the state heads' fractions
    (metallic, low-spin or Fe4+; :func:`foreign_state_test`); each failed test
    sets its bit and :data:`FLAG_OUT_OF_DISTRIBUTION`. Mostly-Fe2+ pixels get
    wider site uncertainties and the information bit
    :data:`~hyperspy_fe_ml.kernels.model_inputs.FLAG_FE2_SITE_UNRESOLVED`
    (:mod:`hyperspy_fe_ml.site_resolution`). For measured spectra every standard
    deviation then gets the model's simulation-to-experiment term
    (:attr:`~hyperspy_fe_ml.model.FeStateModel.measured_std`) in quadrature.

    Parameters
    ----------
    model
        The valence model.
    inputs, norm2, centroid
        As :meth:`~hyperspy_fe_ml.model.FeStateModel.standardise` returns them.
    flags
        Quality flags of the kernel (any integer type), shape ``(n,)``.
    detectors
        Heads for the states the valence model cannot read
        (:func:`~hyperspy_fe_ml.state_detector.load_default_detectors`); their
        fractions not given are NaN and never flagged.
    measured
        Whether the spectra are measured (add ``model.measured_std``) or
        simulated from the model's library (leave it out; the Fe2+ site widening
        applies either way).

    Returns
    -------
    columns
        The float maps by name (:data:`MAP_QUANTITIES`, but ``edge_snr``).
    flags
        uint16, with the bits of the tests.
    """
    flags = flags.astype(np.uint16)
    readable = (flags & FLAGS_UNREADABLE) == 0
    tests = reconstruction_test(
        model.energy, inputs, readable, model.input_mean, model.input_scale
    )
    no_edge = readable & tests["no_edge"]
    flags[no_edge] |= FLAG_NO_EDGE
    centroid = np.where(no_edge, np.nan, centroid)
    norm2 = np.where(no_edge, np.nan, norm2)
    with single_threaded_blas():
        p = model.predict_standardised(
            inputs, norm2, centroid, return_features=bool(detectors)
        )
        scored = np.isfinite(p["ood_score"])
        foreign = {name: np.full(len(inputs), np.nan) for name in OUTPUT_NAMES}
        flag_fraction = dict.fromkeys(OUTPUT_NAMES, np.inf)
        features = p.pop("features", None)
        for name, fraction in predict_state_fractions(detectors, features).items():
            foreign[name] = np.where(scored, fraction, np.nan)
        for detector in detectors:
            for name in detector.outputs:
                flag_fraction[name] = detector.flag_fraction
    failed_tests = [
        (FLAG_OOD_FEATURES, p["ood_flag"] & scored),
        (FLAG_OOD_RECONSTRUCTION, tests["misfit_flag"] & scored),
        (FLAG_OOD_SPIKE, tests["spike_flag"] & scored),
    ]
    for bit, name in (
        (FLAG_METALLIC, OUTPUT_NAMES[0]),
        (FLAG_UNLISTED, OUTPUT_NAMES[1]),
    ):
        failed = foreign_state_test(
            model,
            inputs,
            foreign[name],
            flags,
            flag_fraction[name],
            fitted_background=bit == FLAG_METALLIC,
        )
        failed_tests.append((bit, scored & failed))
    for bit, failed in failed_tests:
        flags[failed] |= bit | FLAG_OUT_OF_DISTRIBUTION
    flags[widen_for_unresolved_fe2_sites(p) & scored] |= FLAG_FE2_SITE_UNRESOLVED
    if measured:
        add_measured_std(p, model.measured_std)
    columns = {**p, **tests, **foreign, "l3_centroid": centroid}
    return columns, flags


# -- planning -------------------------------------------------------------------------


def _detectors_for(model: FeStateModel) -> tuple[StateDetector, ...]:
    """The shipped state detectors that read ``model``'s features (a model trained
    by the user needs its own: ``fe-ml train-detector --model``)."""
    return tuple(d for d in load_default_detectors() if d.reads(model))


def _resolve_model(model: FeStateModel | str | Path | None) -> FeStateModel:
    if model is None:
        return load_default_model()
    if isinstance(model, FeStateModel):
        return model
    if isinstance(model, str | Path):
        return FeStateModel.load(model)
    raise TypeError(
        f"`model` must be None (the shipped model), an FeStateModel or the path of "
        f"a model .json file; got {type(model).__name__}."
    )


def _plan(
    signal: BaseSignal,
    model: FeStateModel,
    background_removed: bool | None,
    pre_edge: tuple[float, float] | None,
    saturation: float | None,
    energy_calibrated: bool,
) -> tuple[PredictionPlan, np.ndarray]:
    """Check everything that can be checked before the heavy work.

    The typical spectrum gives the L3 maximum, over a window wide enough for
    axes ±10 eV off; the axis must reach :data:`CONTRACT_SPAN_EV` about it
    (wherever it is); raw counts get a power law, or a fixed-exponent one when
    the pre-edge is too short to fit, and an error when there is no pre-edge.
    """
    axis = signal.axes_manager.signal_axes[0]
    energy = check_energy_axis(axis, None)
    if model.absolute_energy and not energy_calibrated:
        raise ValueError(
            "This model reads the absolute L3 energy, which is only meaningful on "
            "a calibrated axis. Calibrate it (e.g. `s = s.calibrate_fe_l3("
            "l3_energy=...)` from a known standard) and pass "
            "`energy_calibrated=True`, or use the shipped model (`model=None`), "
            "which reads the shape of the spectrum only."
        )
    typical = typical_spectrum(signal)
    report = inspect_fe_l23(
        energy,
        typical,
        uniform=bool(axis.is_uniform),
        background_removed=background_removed,
        pre_edge=pre_edge,
        warn=False,
        short_pre_edge=True,
    )
    l3 = report.l3_position
    check_contract_range(energy, l3)
    if report.background_guessed:
        warnings.warn(
            f"The spectra start at {report.low:.2f} eV, in the onset of the L3 edge "
            f"(maximum at {l3:.2f} eV), and were taken to be background-removed "
            "from the way they rise; raw counts cut that close to the edge look "
            "alike. If these are raw counts, pass `background_removed=False`.",
            UserWarning,
            stacklevel=4,
        )
    found = math.isfinite(l3)
    # The model's window moves with an offset axis, in whole eV (typical spectra
    # sampled differently, lazy or eager, then read the same window); within
    # WINDOW_SLACK_EV of nominal it stays, as the window has room for it.
    offset = l3 - L3_CALIBRATION_TARGET_EV if found else 0.0
    offset = float(round(offset)) if abs(offset) > WINDOW_SLACK_EV else 0.0
    pre_window = report.pre_edge
    if pre_window is None:
        # Background removed and no pre-edge at all: nothing to subtract.
        pre_window = (report.low - 1.0, report.low - 0.5)
    # The edge window in the model's frame, inside what the axis reaches.
    nominal = L3_CALIBRATION_TARGET_EV
    edge_lo = max(nominal + CONTRACT_SPAN_EV[0] - 1.0, energy[0] - offset)
    edge_hi = min(nominal + CONTRACT_SPAN_EV[1] + 1.0, energy[-1] - offset)
    if saturation is None:
        dtype = np.dtype(signal.data.dtype)
        saturation = (
            float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else np.inf
        )
    plan = PredictionPlan(
        pre_edge=(float(pre_window[0]), float(pre_window[1])),
        background=report.background,
        edge_window=(float(edge_lo), float(edge_hi)),
        saturation=float(saturation),
        l3_position=float(l3),
        axis_offset=float(offset),
        energy_calibrated=bool(energy_calibrated),
        energy_offset=math.nan,
    )
    return plan, typical


def _measure_offset(plan: PredictionPlan, typical: np.ndarray, func) -> PredictionPlan:
    """The plan with its measured energy offset, warned about beyond 3 eV.

    ``func`` is the block function (one pixel of the typical spectrum through
    the kernel and the model: the Fe3+ fraction its shape shows, its centroid).
    """
    if not math.isfinite(plan.l3_position):
        return plan
    plan = replace(plan, energy_offset=_energy_offset(plan, typical, func))
    l3 = plan.l3_position
    if abs(plan.energy_offset) > L3_OFFSET_TOLERANCE_EV:
        advice = (
            "The axis was declared calibrated: check it."
            if plan.energy_calibrated
            else "Predicted as if the axis were calibrated (the model reads the "
            "shape of each spectrum, aligned on its own L3 line); "
            "`maps['l3_centroid']` keeps the measured L3 positions."
        )
        warnings.warn(
            f"The Fe L3 maximum is at {l3:.2f} eV: the energy axis is offset by "
            f"{plan.energy_offset:+.1f} eV from where the L3 maximum of this Fe "
            f"state lies (Fe2+ {FE2_L3_EV} eV, Fe3+ {FE3_L3_EV} eV). {advice} To "
            "correct the axis itself, use `s = s.calibrate_fe_l3()`.",
            UserWarning,
            stacklevel=4,
        )
    return plan


def _energy_offset(plan: PredictionPlan, typical: np.ndarray, func) -> float:
    """Offset of the axis, eV: the typical spectrum's L3 centroid less where it
    lies on a calibrated axis for the Fe3+ fraction the model reads from its
    shape (between the library's calibrated Fe2+ and Fe3+ references). The L3
    position alone cannot tell an offset from a change of valence; the shape
    can."""
    out = func(np.ascontiguousarray(typical)[None, :])[0]
    columns = dict(zip(_FLOAT_MAPS, out, strict=False))
    fe3, centroid = float(columns["fe3_fraction"]), float(columns["l3_centroid"])
    if not (math.isfinite(fe3) and math.isfinite(centroid)):
        return plan.l3_position - L3_CALIBRATION_TARGET_EV
    expected = FE2_L3_CENTROID_EV + fe3 * (FE3_L3_CENTROID_EV - FE2_L3_CENTROID_EV)
    return centroid - expected


def _model_key(model: FeStateModel) -> str:
    """Identity of a model for Dask keys: its arrays' hash (or the object) and
    the uncertainty it adds on measured spectra."""
    arrays = (model.info or {}).get("arrays_sha256", id(model))
    return f"{arrays}-{sorted(model.measured_std_by_output().items())}"


def _model_provenance(model: FeStateModel) -> dict[str, Any]:
    info = model.info or {}
    keep = {}
    for key in ("arrays_sha256", "package_version", "n_train", "library_sets"):
        if key in info:
            keep[key] = info[key]
    keep["ood_threshold"] = float(model.ood_threshold)
    keep["measured_std"] = model.measured_std_by_output()
    keep["members"] = len(model.members)
    keep["outputs"] = list(OUTPUTS)
    return keep
