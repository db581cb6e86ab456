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

from dataclasses import asdict, dataclass
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
from hyperspy_fe_ml.energy_axis import check_energy_axis
from hyperspy_fe_ml.kernels.model_inputs import (
    FLAG_NAMES,
    FLAG_OUT_OF_DISTRIBUTION,
    FLAGS_UNREADABLE,
    prepare_model_inputs,
)
from hyperspy_fe_ml.maps import FeStateMaps, map_builder
from hyperspy_fe_ml.model import (
    L3_ALIGN_EV,
    L3_CENTROID_WINDOW_EV,
    OUTPUTS,
    FeStateModel,
    load_default_model,
)
from hyperspy_fe_ml.signal_tools import (
    WHITE_LINE_WINDOW_EV,
    check_data,
    compute_array,
    progressbar_wanted,
    signal_energy,
)

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
        Pre-edge window, eV.
    power_law
        Fit and subtract a power law (raw counts) or only the pre-edge mean
        (background already removed).
    normalisation_window
        White-line window of the normalisation, eV.
    saturation
        Intensity at or above which a channel counts as saturated (``inf``: none).
    l3_position
        L3 maximum of the mean spectrum, eV (from the check).
    """

    pre_edge: tuple[float, float]
    power_law: bool
    normalisation_window: tuple[float, float]
    saturation: float
    l3_position: float


def predict_fe_state(
    signal: BaseSignal,
    model: FeStateModel | str | Path | None = None,
    *,
    background_removed: bool | None = None,
    pre_edge: tuple[float, float] | None = None,
    saturation: float | None = None,
    show_progressbar: bool | None = None,
    lazy_output: bool | None = None,
) -> FeStateMaps:
    """Per-pixel Fe state of an Fe L2,3 signal; see ``FeL23Signal.predict_fe_state``."""
    check_data(signal)
    model = _resolve_model(model)
    energy = np.asarray(signal.axes_manager.signal_axes[0].axis, dtype=np.float64)
    plan = _plan(signal, model, background_removed, pre_edge, saturation)
    blocks = as_spectrum_blocks(signal.data)
    n_maps = len(_FLOAT_MAPS)
    func = partial(_predict_block, energy=energy, model=model, plan=plan)
    # numba compiles on a first call: on one pixel here, not under the progress bar.
    compile_once(
        ("predict", blocks.dtype.str),
        partial(func, np.zeros((1, blocks.shape[-1]), dtype=blocks.dtype)),
        notice=progressbar_wanted(show_progressbar),
    )
    # An explicit name: Dask would otherwise hash the model's arrays every call.
    name = "fe-state-" + tokenize(
        blocks.name, _model_key(model), plan, energy.tobytes()
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
            "normalisation": "white-line integral",
            "l3_alignment_eV": L3_ALIGN_EV,
        },
        "flags": {str(bit): name for bit, name in FLAG_NAMES.items()},
        "unreadable_flags": FLAGS_UNREADABLE,
        "white_line_window_eV": list(WHITE_LINE_WINDOW_EV),
    }
    if not lazy:  # one contiguous plane per map
        stacked = np.ascontiguousarray(np.moveaxis(stacked, -1, 0))
    build = map_builder(signal)
    signals = {}
    for k, name in enumerate(MAP_QUANTITIES):
        data = stacked[k] if not lazy else stacked[..., k]
        if name == "flags":
            data = data.astype(np.uint8)
        signals[name] = partial(build, data, name, MAP_QUANTITIES[name])
    return FeStateMaps(signals, provenance)


# -- per block ------------------------------------------------------------------------


def _predict_block(
    block: np.ndarray, *, energy: np.ndarray, model: FeStateModel, plan: PredictionPlan
) -> np.ndarray:
    """Maps of one block: shape ``navigation + (len(MAP_QUANTITIES),)``, float32."""
    nav_shape = block.shape[:-1]
    spectra = block.reshape(-1, block.shape[-1])
    if not spectra.flags.c_contiguous:
        spectra = np.ascontiguousarray(spectra)
    inputs, norm2, centroid, edge_snr, flags = prepare_model_inputs(
        energy,
        spectra,
        plan.pre_edge[0],
        plan.pre_edge[1],
        plan.power_law,
        model.energy,
        plan.normalisation_window[0],
        plan.normalisation_window[1],
        L3_CENTROID_WINDOW_EV,
        5.0,
        3,
        L3_ALIGN_EV,
        model.input_mean,
        model.input_scale,
        plan.saturation,
    )
    with single_threaded_blas():
        p = model.predict_standardised(inputs, norm2, centroid)
    flags = flags | np.where(
        p["ood_flag"] & np.isfinite(p["ood_score"]), FLAG_OUT_OF_DISTRIBUTION, 0
    ).astype(np.uint8)
    out = np.empty((spectra.shape[0], len(MAP_QUANTITIES)), dtype=np.float32)
    columns = {**p, "l3_centroid": centroid, "edge_snr": edge_snr}
    for k, name in enumerate(_FLOAT_MAPS):
        out[:, k] = columns[name]
    out[:, -1] = flags
    return out.reshape(*nav_shape, len(MAP_QUANTITIES))


# -- planning -------------------------------------------------------------------------


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
) -> PredictionPlan:
    """Check everything that can be checked before the heavy work."""
    energy = signal_energy(signal)
    lo, hi = WHITE_LINE_WINDOW_EV
    check_energy_axis(signal.axes_manager.signal_axes[0], (lo, hi))
    power_law, window, report = signal._background_plan(pre_edge, background_removed)
    check_model_grid(model, energy)
    if saturation is None:
        dtype = np.dtype(signal.data.dtype)
        saturation = (
            float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else np.inf
        )
    return PredictionPlan(
        pre_edge=(float(window[0]), float(window[1])),
        power_law=bool(power_law),
        normalisation_window=(float(lo), float(hi)),
        saturation=float(saturation),
        l3_position=float(report.l3_position),
    )


def check_model_grid(model: FeStateModel, energy: np.ndarray) -> None:
    """Raise when the spectra do not cover the model's energy grid.

    Raises
    ------
    ValueError
        Naming the grid, the axis and the fix.
    """
    grid = model.energy
    if energy[0] > grid[0] + 0.5 or energy[-1] < grid[-1] - 0.5:
        raise ValueError(
            f"The model reads {grid[0]:.1f}–{grid[-1]:.1f} eV but the spectra cover "
            f"{energy[0]:.1f}–{energy[-1]:.1f} eV. Record (or crop) a wider energy "
            "range, or calibrate the axis if it is offset (`s.calibrate_fe_l3()`)."
        )


def _model_key(model: FeStateModel) -> str:
    """Identity of a model for Dask keys: its arrays' hash, or the object."""
    return str((model.info or {}).get("arrays_sha256", id(model)))


def _model_provenance(model: FeStateModel) -> dict[str, Any]:
    info = model.info or {}
    keep = {}
    for key in ("arrays_sha256", "package_version", "n_train", "library_sets"):
        if key in info:
            keep[key] = info[key]
    keep["ood_threshold"] = float(model.ood_threshold)
    keep["members"] = len(model.members)
    keep["outputs"] = list(OUTPUTS)
    return keep
