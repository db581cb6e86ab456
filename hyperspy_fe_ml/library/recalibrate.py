"""Recalibrate the library's broadening and energy stretch to measured standards.

The "recalibrate" step of the verify–refine–retrain cycle
(:func:`hyperspy_fe_ml.training.refine.refine`): every standard, read as the
model reads it, is fitted with its best library set
(:func:`~hyperspy_fe_ml.library.match.match_spectrum`) by non-linear least
squares over the L3 and L2 Lorentzian widths, the Gaussian resolution and the
stretch of the energy scale (the L3–L2 spacing), its amplitude solved in
closed form at every step. The spread of the fitted values over the standards
gives the ranges the retraining draws (:class:`Recalibration`): a user's
standards recorded on one microscope narrow the training to that microscope's
resolution; standards from many instruments keep the ranges wide.

The same fit, on the three spectra the shipped calibration comes from, is what
``docs/scripts/calibrate_library.py`` does with the absolute energy zero free;
here the energy zero is taken out by the model's L3 alignment, as it is for
every prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hyperspy_fe_ml.library.shipped import MultipletLibrary

__all__ = [
    "Recalibration",
    "WidthFit",
    "fit_widths",
    "recalibration_from_fits",
]

#: Bounds of the fitted parameters: L3 and L2 Lorentzian FWHM, Gaussian FWHM
#: (eV), energy stretch (the calibrated ``ENERGY_SCALE`` is 0.986; a dispersion
#: error of a few per cent is the most a measured axis carries).
FIT_BOUNDS: dict[str, tuple[float, float]] = {
    "fwhm_l3": (0.05, 3.0),
    "fwhm_l2": (0.1, 5.0),
    "resolution": (0.02, 3.0),
    "energy_scale": (0.94, 1.04),
}
#: Half-width added around the fitted range of each width, eV: the fit's own
#: uncertainty (the Lorentzian and Gaussian widths trade against each other).
WIDTH_MARGIN_EV = 0.25
#: Narrowest range a recalibrated width keeps, eV.
MIN_WIDTH_RANGE_EV = 0.3


@dataclass(frozen=True)
class WidthFit:
    """Broadening and energy stretch of one standard's best library set.

    Attributes
    ----------
    set_id
        Library row fitted.
    fwhm_l3, fwhm_l2, resolution
        Fitted Lorentzian and Gaussian FWHM, eV.
    energy_scale
        Fitted stretch of the library's energy scale.
    residual
        RMS misfit over the compared window, fraction of the spectrum's maximum.
    """

    set_id: int
    fwhm_l3: float
    fwhm_l2: float
    resolution: float
    energy_scale: float
    residual: float


def _shape(
    params: np.ndarray, energy: np.ndarray, set_id: int, library: MultipletLibrary
) -> np.ndarray:
    from hyperspy_fe_ml.library.calibration import DEFAULT_BROADENING
    from hyperspy_fe_ml.library.reference import broaden_library
    from hyperspy_fe_ml.model import align_on_l3

    w3, w2, res, scale = (float(p) for p in params)
    y = broaden_library(
        [set_id],
        energy,
        fwhm_l3=np.array([w3]),
        fwhm_l2=np.array([w2]),
        resolution=np.array([res]),
        step=np.array([DEFAULT_BROADENING["step"]]),
        energy_scale=scale,
        library=library,
    )
    return align_on_l3(energy, y)[1][0]


def fit_widths(
    aligned: np.ndarray,
    energy: np.ndarray,
    set_id: int,
    library: MultipletLibrary | None = None,
    *,
    start: Sequence[float] | None = None,
) -> WidthFit:
    """Fit the widths and energy stretch of one library set to a spectrum.

    Parameters
    ----------
    aligned
        The spectrum as the model reads it, on ``energy``
        (:func:`~hyperspy_fe_ml.predict.model_input_spectra`).
    energy
        The model's grid, eV.
    set_id
        Library row to fit (e.g. ``LibraryMatch.best_set``).
    library
        Defaults to the shipped library.
    start
        Starting ``(fwhm_l3, fwhm_l2, resolution, energy_scale)``; default the
        calibrated broadening and stretch.

    Returns
    -------
    WidthFit

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_fe_ml.library.recalibrate import _shape
    >>> from hyperspy_fe_ml.library.shipped import load_library
    >>> e = np.arange(700.0, 730.0, 0.1)
    >>> y = _shape(np.array([0.5, 1.8, 0.9, 0.98]), e, 30, load_library())
    >>> fit = fit_widths(y, e, 30)
    >>> round(fit.fwhm_l2, 1), round(fit.resolution, 1), fit.residual < 1e-3
    (1.8, 0.9, True)
    """
    from scipy.optimize import least_squares

    from hyperspy_fe_ml.library.calibration import DEFAULT_BROADENING, ENERGY_SCALE
    from hyperspy_fe_ml.library.match import MATCH_WINDOW_EV
    from hyperspy_fe_ml.library.shipped import load_library

    lib = load_library() if library is None else library
    energy = np.asarray(energy, dtype=np.float64)
    x_all = np.asarray(aligned, dtype=np.float64)
    if x_all.shape != energy.shape or not np.all(np.isfinite(x_all)):
        raise ValueError(
            "aligned must be one finite spectrum on the energy grid "
            f"({energy.size} channels); got shape {x_all.shape}"
        )
    inside = (energy >= MATCH_WINDOW_EV[0]) & (energy <= MATCH_WINDOW_EV[1])
    x = x_all[inside]
    peak = float(np.max(np.abs(x)))
    names = ("fwhm_l3", "fwhm_l2", "resolution", "energy_scale")
    lower = np.array([FIT_BOUNDS[n][0] for n in names])
    upper = np.array([FIT_BOUNDS[n][1] for n in names])
    if start is None:
        start = [DEFAULT_BROADENING[n] for n in names[:3]] + [ENERGY_SCALE]
    p0 = np.clip(np.asarray(start, dtype=np.float64), lower, upper)

    def residual(params: np.ndarray) -> np.ndarray:
        shape = _shape(params, energy, set_id, lib)[inside]
        amplitude = float(shape @ x) / max(float(shape @ shape), 1e-300)
        return (x - amplitude * shape) / peak

    result = least_squares(
        residual, p0, bounds=(lower, upper), diff_step=1e-3, x_scale=0.1
    )
    w3, w2, res, scale = (float(v) for v in result.x)
    rms = float(np.sqrt(np.mean(result.fun**2)))
    return WidthFit(int(set_id), w3, w2, res, scale, rms)


@dataclass(frozen=True)
class Recalibration:
    """Ranges of the broadening, and the energy stretch, fitted to standards.

    Attributes
    ----------
    fwhm_l3, fwhm_l2, resolution
        ``(low, high)`` FWHM ranges, eV: the fitted values' span widened by
        :data:`WIDTH_MARGIN_EV` on each side, at least
        :data:`MIN_WIDTH_RANGE_EV` wide, within :data:`FIT_BOUNDS`.
    energy_scale
        Median fitted stretch.
    n_standards
        Number of fits behind the ranges.
    """

    fwhm_l3: tuple[float, float]
    fwhm_l2: tuple[float, float]
    resolution: tuple[float, float]
    energy_scale: float
    n_standards: int


def _range(values: np.ndarray, bounds: tuple[float, float]) -> tuple[float, float]:
    low = float(values.min()) - WIDTH_MARGIN_EV
    high = float(values.max()) + WIDTH_MARGIN_EV
    if high - low < MIN_WIDTH_RANGE_EV:
        middle = 0.5 * (low + high)
        low, high = middle - MIN_WIDTH_RANGE_EV / 2, middle + MIN_WIDTH_RANGE_EV / 2
    low = max(low, bounds[0])
    high = min(max(high, low + MIN_WIDTH_RANGE_EV), bounds[1])
    return round(low, 3), round(high, 3)


def recalibration_from_fits(fits: Sequence[WidthFit]) -> Recalibration:
    """Training ranges from the width fits of a set of standards.

    Parameters
    ----------
    fits
        One :class:`WidthFit` per standard (those the library explains).

    Returns
    -------
    Recalibration

    Examples
    --------
    >>> fits = [WidthFit(0, 0.5, 1.5, 0.8, 0.99, 0.02),
    ...         WidthFit(1, 0.7, 2.1, 1.0, 0.98, 0.02)]
    >>> r = recalibration_from_fits(fits)
    >>> r.fwhm_l3, r.resolution, r.energy_scale
    ((0.25, 0.95), (0.55, 1.25), 0.985)
    """
    if len(fits) == 0:
        raise ValueError(
            "no width fit to recalibrate from: the standards were all refused or "
            "unexplained by the library; check them with `fe-ml refine` matches"
        )

    def column(name: str) -> np.ndarray:
        return np.array([getattr(f, name) for f in fits], dtype=np.float64)

    return Recalibration(
        fwhm_l3=_range(column("fwhm_l3"), FIT_BOUNDS["fwhm_l3"]),
        fwhm_l2=_range(column("fwhm_l2"), FIT_BOUNDS["fwhm_l2"]),
        resolution=_range(column("resolution"), FIT_BOUNDS["resolution"]),
        energy_scale=round(float(np.median(column("energy_scale"))), 4),
        n_standards=len(fits),
    )
