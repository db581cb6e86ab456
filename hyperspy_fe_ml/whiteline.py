"""The classical Fe3+/ΣFe estimate: van Aken & Liebscher's modified L3/L2 ratio.

van Aken & Liebscher, Phys. Chem. Minerals 29 (2002) 188 (PHYSICS.md): on a
background-subtracted spectrum, subtract a double arctan continuum step (heights
2:1, inflections at 708.65 and 721.65 eV, width 1 eV) scaled to the post-edge
intensity, integrate 2 eV windows at 708.5–710.5 eV (L3) and 719.7–721.7 eV (L2),
and read Fe3+/ΣFe = x off their universal curve

    I(L3)/I(L2) = 1 / (a x² + b x + c) − 1,   a = 0.193, b = −0.465, c = 0.366.

The method is what users know and a cross-check of the model; it needs an accurate
absolute energy scale (the windows are fixed in eV), which the model does not.
Pure NumPy on ``(pixels, channels)`` arrays (the background step uses the numba
kernels of :mod:`hyperspy_fe_ml.kernels.preprocess`);
:func:`hyperspy_fe_ml.classical.estimate_fe3_fraction_white_line` maps it over a
spectrum image.
"""

import numpy as np

from hyperspy_fe_ml.kernels.preprocess import (
    subtract_power_law_background,
    subtract_pre_edge_mean,
)

#: Universal-curve coefficients (van Aken & Liebscher 2002).
CURVE_A, CURVE_B, CURVE_C = 0.193, -0.465, 0.366
#: Inflection points of the L3 and L2 continuum steps, eV, and their width.
STEP_L3_EV, STEP_L2_EV, STEP_WIDTH_EV = 708.65, 721.65, 1.0
#: Integration windows, eV.
WINDOW_L3_EV = (708.5, 710.5)
WINDOW_L2_EV = (719.7, 721.7)
#: Post-edge window that scales the step, eV (the continuum after L2).
POST_EDGE_EV = (728.0, 734.0)


def double_arctan(
    energy: np.ndarray,
    height: np.ndarray | float = 1.0,
    l3: np.ndarray | float = STEP_L3_EV,
    l2: np.ndarray | float = STEP_L2_EV,
    width: np.ndarray | float = STEP_WIDTH_EV,
) -> np.ndarray:
    """The 2:1 double arctan continuum step with free inflections and width.

    ``height * (u(E - l3) + u(E - l2) / 2)`` with the unit step
    ``u(d) = 1/2 + arctan(pi d / width) / pi``. The arguments broadcast against each
    other (e.g. ``energy`` of shape ``(channels,)`` and parameters of shape
    ``(pixels, 1)``).

    Parameters
    ----------
    energy
        Energy, eV.
    height
        Height of the L3 step; the L2 step is half of it.
    l3, l2
        Inflection energies, eV.
    width
        Width of each step, eV (the rise from 1/4 to 3/4 of the step).

    Examples
    --------
    >>> import numpy as np
    >>> double_arctan(np.array([690.0, 708.65, 1e6]), 2.0).round(2)
    array([0.01, 1.01, 3.  ])
    """
    energy = np.asarray(energy, dtype=np.float64)
    scale = np.pi / np.asarray(width, dtype=np.float64)
    return np.asarray(height, dtype=np.float64) * (
        np.arctan(scale * (energy - l3)) / np.pi
        + 0.5
        + 0.5 * (np.arctan(scale * (energy - l2)) / np.pi + 0.5)
    )


def continuum_step(energy: np.ndarray, height: np.ndarray | float = 1.0) -> np.ndarray:
    """The van Aken & Liebscher step: :func:`double_arctan` at 708.65/721.65 eV.

    ``height`` for L3 and ``height / 2`` for L2, width 1 eV; far above both edges
    it tends to ``1.5 * height``. An array ``height`` of shape ``(pixels,)`` gives
    one step per pixel, shape ``(pixels, channels)``.

    Examples
    --------
    >>> import numpy as np
    >>> round(float(continuum_step(1e6)), 4)
    1.5
    """
    height = np.asarray(height, dtype=np.float64)
    return double_arctan(energy, height[..., None] if height.ndim else height)


def white_line_ratio(
    energy: np.ndarray,
    spectra: np.ndarray,
    post_edge: tuple[float, float] = POST_EDGE_EV,
) -> np.ndarray:
    """The modified L3/L2 ratio of background-subtracted spectra.

    Parameters
    ----------
    energy
        Energy axis, eV, increasing.
    spectra
        Background-subtracted spectra, shape ``(pixels, channels)``.
    post_edge
        Window whose mean intensity sets the step (``1.5 × height``); clipped to the
        axis. Spectra cropped before the post-edge (e.g. at 729.9 eV) use what lies
        past 727 eV.

    Returns
    -------
    numpy.ndarray
        Ratio per pixel; NaN where the L2 integral is not positive.

    Raises
    ------
    ValueError
        When the axis does not reach both integration windows.
    """
    energy = np.asarray(energy, dtype=np.float64)
    spectra = np.atleast_2d(np.asarray(spectra, dtype=np.float64))
    if energy[0] > WINDOW_L3_EV[0] or energy[-1] < WINDOW_L2_EV[1] + 1.0:
        raise ValueError(
            f"The white-line ratio needs {WINDOW_L3_EV[0]}–{WINDOW_L2_EV[1] + 1.0} eV; "
            f"the axis covers {energy[0]:.2f}–{energy[-1]:.2f} eV."
        )
    lo = max(post_edge[0], min(727.0, energy[-1] - 1.0))
    post = (energy >= lo) & (energy <= post_edge[1])
    step_at_post_edge = float(continuum_step(np.mean(energy[post])))
    post_values = spectra[:, post]
    count = np.sum(np.isfinite(post_values), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # nanmean without its warning for all-NaN pixels (they give NaN).
        post_mean = np.nansum(post_values, axis=1) / count
    height = np.where(count > 0, post_mean, np.nan) / step_at_post_edge
    lines = spectra - continuum_step(energy, height)
    l3 = _window_integral(energy, lines, WINDOW_L3_EV)
    l2 = _window_integral(energy, lines, WINDOW_L2_EV)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(l2 > 0, l3 / l2, np.nan)


def fe3_fraction_from_ratio(ratio: np.ndarray) -> np.ndarray:
    """Invert the universal curve: Fe3+/ΣFe from the modified L3/L2 ratio.

    Ratios outside the curve's range (1.73 at x = 0 to 9.64 at x = 1) are clipped
    to 0 and 1.

    Examples
    --------
    >>> import numpy as np
    >>> fe3_fraction_from_ratio(np.array([1.7322, 9.6429])).round(3)
    array([0., 1.])
    """
    ratio = np.asarray(ratio, dtype=np.float64)
    target = 1.0 / (ratio + 1.0)
    # a x² + b x + (c − target) = 0; the root in [0, 1] is the smaller one.
    disc = CURVE_B**2 - 4.0 * CURVE_A * (CURVE_C - target)
    with np.errstate(invalid="ignore"):
        x = (-CURVE_B - np.sqrt(disc)) / (2.0 * CURVE_A)
    x = np.where(disc < 0, 1.0, x)
    return np.where(np.isfinite(ratio), np.clip(x, 0.0, 1.0), np.nan)


def white_line_fe3_fraction(energy: np.ndarray, spectra: np.ndarray) -> np.ndarray:
    """Fe3+/ΣFe of background-subtracted spectra by the modified L3/L2 ratio.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(700.0, 735.0, 0.05)
    >>> def box(lo, hi):
    ...     return ((e >= lo) & (e <= hi)).astype(float)
    >>> ratio = 5.0
    >>> s = continuum_step(e, 2.0) + 10 * box(708.5, 710.5) + 2 * box(719.7, 721.7)
    >>> white_line_ratio(e, s).round(2), fe3_fraction_from_ratio(ratio).round(3)
    (array([5.]), np.float64(0.558))
    """
    return fe3_fraction_from_ratio(white_line_ratio(energy, spectra))


#: Columns of :func:`white_line_analysis`.
ANALYSIS_COLUMNS: tuple[str, ...] = ("white_line_ratio", "fe3_fraction")


def white_line_analysis(
    energy: np.ndarray,
    spectra: np.ndarray,
    pre_edge_start: float,
    pre_edge_end: float,
    power_law: bool,
) -> np.ndarray:
    """Background removal, modified L3/L2 ratio and Fe3+/ΣFe of raw spectra.

    The whole van Aken & Liebscher procedure on a ``(pixels, channels)`` block:
    a power-law background fitted over the pre-edge window (or, for spectra whose
    background is already removed, the pre-edge mean) is subtracted, then
    :func:`white_line_ratio` and :func:`fe3_fraction_from_ratio`.

    Parameters
    ----------
    energy
        Energy axis, eV, increasing (uniform or not).
    spectra
        Spectra, shape ``(pixels, channels)``.
    pre_edge_start, pre_edge_end
        Pre-edge window, eV.
    power_law
        Fit a power law (raw counts) or subtract the pre-edge mean only.

    Returns
    -------
    numpy.ndarray
        Shape ``(pixels, 2)``: the columns of :data:`ANALYSIS_COLUMNS`; NaN for
        pixels without a positive L2 integral (empty, NaN, no edge).

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(690.0, 735.0, 0.05)
    >>> def box(lo, hi):
    ...     return ((e >= lo) & (e <= hi)).astype(float)
    >>> edge = continuum_step(e, 2.0) + 9.64 * box(708.3, 710.7) + box(719.5, 721.9)
    >>> raw = 1e10 * e**-3.0 + edge
    >>> white_line_analysis(e, raw[None, :], 690.0, 700.0, True).round(1)
    array([[9.7, 1. ]])
    """
    energy = np.ascontiguousarray(energy, dtype=np.float64)
    spectra = np.ascontiguousarray(np.atleast_2d(spectra), dtype=np.float64)
    subtract = subtract_power_law_background if power_law else subtract_pre_edge_mean
    clean = subtract(energy, spectra, float(pre_edge_start), float(pre_edge_end))
    ratio = white_line_ratio(energy, clean)
    return np.stack([ratio, fe3_fraction_from_ratio(ratio)], axis=1)


def _window_integral(
    energy: np.ndarray, spectra: np.ndarray, window: tuple[float, float]
) -> np.ndarray:
    inside = (energy >= window[0]) & (energy <= window[1])
    return np.trapezoid(spectra[:, inside], energy[inside], axis=1)
