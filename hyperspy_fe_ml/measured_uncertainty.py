"""The uncertainty a simulation-trained model misses on measured spectra.

The model's standard deviations are calibrated on simulated spectra held out of
training (split-conformal on the ensemble spread): they hold there, 90 % intervals
cover 90 % of the truth. On measured spectra the model also errs by what the
simulation does not describe — charge-transfer satellites, the oxide chemical shift,
line widths, an instrument's response — and its simulation-calibrated intervals hold
the nominal valence of only 14 of the 19 development standards. That extra error is
a property of the model, not of a pixel's noise, so it is carried as one standard
deviation per output, added in quadrature to every measured pixel's own:
``std = hypot(std_model, measured_std)``.

``measured_std`` is calibrated the split-conformal way on labelled measured
standards the model never trained on: each standard's score is the smallest extra
standard deviation whose 90 % interval (±1.645 std) holds its label,
``score = sqrt(max((abs(error) / 1.645)**2 - std_model**2, 0))``,
and ``measured_std`` is the ``ceil(0.9 (n + 1))``-th smallest of the ``n`` scores
(Vovk et al., *Algorithmic Learning in a Random World*, 2005; Angelopoulos & Bates,
arXiv:2107.07511): for a new measured spectrum exchangeable with the standards, its
90 % interval then holds the truth with probability at least 90 %. Standards from
one compound are not independent; :func:`leave_one_compound_out_coverage` measures
what the calibration gives a compound it has not seen.

The functions here know nothing of HyperSpy; ``fe-ml calibrate-uncertainty`` runs
them on a folder of standards
(:func:`hyperspy_fe_ml.training.uncertainty.calibrate_on_standards`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from hyperspy_fe_ml.model import OUTPUTS, Z90

__all__ = [
    "add_measured_std",
    "conformal_std",
    "interval_holds",
    "leave_one_compound_out_coverage",
    "required_std",
]


def add_measured_std(
    columns: dict[str, np.ndarray], measured_std: Mapping[str, float] | np.ndarray
) -> None:
    """Add the measured-spectrum term in quadrature to each ``<name>_std`` column.

    Parameters
    ----------
    columns
        Per-pixel outputs; ``<name>_std`` is replaced by a new array for every
        output of ``measured_std`` (the arrays passed in are not written to).
    measured_std
        Standard deviation per output name, or an array in the order of
        :data:`hyperspy_fe_ml.model.OUTPUTS`.

    Examples
    --------
    >>> import numpy as np
    >>> columns = {"valence_std": np.array([0.03, 0.2, np.nan])}
    >>> add_measured_std(columns, {"valence": 0.04})
    >>> np.round(columns["valence_std"], 3).tolist()
    [0.05, 0.204, nan]
    """
    if not isinstance(measured_std, Mapping):
        values = np.asarray(measured_std, float)
        measured_std = dict(zip(OUTPUTS, values, strict=True))
    for name, extra in measured_std.items():
        if extra > 0:
            columns[f"{name}_std"] = np.hypot(columns[f"{name}_std"], extra)


def required_std(error: np.ndarray, std: np.ndarray, z: float = Z90) -> np.ndarray:
    """Smallest extra standard deviation whose ±``z`` interval holds each error.

    Parameters
    ----------
    error
        Prediction less label.
    std
        The prediction's own standard deviation.
    z
        Half-width of the interval in standard deviations (1.645 for 90 %).

    Returns
    -------
    numpy.ndarray
        ``sqrt(max((abs(error) / z)**2 - std**2, 0))``: 0 where the interval
        already holds the label.

    Examples
    --------
    >>> required_std(np.array([0.1, 0.5]), np.array([0.1, 0.1]), z=2.0).tolist()
    [0.0, 0.229128784747792]
    """
    error, std = np.asarray(error, float), np.asarray(std, float)
    return np.sqrt(np.maximum((np.abs(error) / z) ** 2 - std**2, 0.0))


def conformal_std(scores: Sequence[float], coverage: float = 0.9) -> float:
    """The split-conformal quantile of ``scores`` for ``coverage``.

    The ``ceil(coverage (n + 1))``-th smallest of the ``n`` scores; with fewer
    scores than that needs (n < coverage / (1 − coverage)), the largest.

    Raises
    ------
    ValueError
        Without any finite score, or a coverage outside (0, 1).

    Examples
    --------
    >>> conformal_std([0.0] * 17 + [0.1, 0.3])
    0.1
    """
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must lie between 0 and 1, got {coverage}.")
    values = np.sort(np.asarray(scores, float)[np.isfinite(scores)])
    if values.size == 0:
        raise ValueError(
            "No labelled standard to calibrate on: give standards with a "
            "'# valence:' (and '# td_fraction:') label."
        )
    k = math.ceil(coverage * (values.size + 1))
    return float(values[min(k, values.size) - 1])


def interval_holds(
    error: np.ndarray, std: np.ndarray, extra: float, z: float = Z90
) -> np.ndarray:
    """Whether ``±z · hypot(std, extra)`` holds each error."""
    return np.abs(np.asarray(error, float)) <= z * np.hypot(std, extra)


def leave_one_compound_out_coverage(
    error: np.ndarray,
    std: np.ndarray,
    compounds: Sequence[str],
    coverage: float = 0.9,
) -> tuple[np.ndarray, np.ndarray]:
    """Each standard's interval with the term calibrated on the other compounds.

    Parameters
    ----------
    error, std
        Prediction less label and the model's own standard deviation, per standard.
    compounds
        Compound of each standard: every spectrum of the held-out compound is left
        out of its calibration.
    coverage
        Nominal coverage of the intervals.

    Returns
    -------
    extra
        The term each standard got (from the other compounds), shape ``(n,)``.
    holds
        Whether its interval holds its label, shape ``(n,)``.

    Examples
    --------
    >>> error = np.array([0.0, 0.0, 0.3, 0.3])
    >>> extra, holds = leave_one_compound_out_coverage(
    ...     error, np.full(4, 0.1), ["a", "b", "c", "c"])
    >>> holds.tolist()
    [True, True, False, False]
    """
    error, std = np.asarray(error, float), np.asarray(std, float)
    names = np.asarray(compounds)
    scores = required_std(error, std)
    extra = np.full(error.shape, np.nan)
    for name in np.unique(names):
        held = names == name
        extra[held] = conformal_std(scores[~held], coverage)
    return extra, interval_holds(error, std, extra)
