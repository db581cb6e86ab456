"""The classical Fe3+/ΣFe estimate: van Aken & Liebscher's modified L3/L2 ratio.

van Aken & Liebscher, Phys. Chem. Minerals 29 (2002) 188 (PHYSICS.md): on a
background-subtracted spectrum, subtract a double arctan continuum step (heights
2:1, inflections at 708.65 and 721.65 eV, width 1 eV) scaled to the post-edge
intensity, integrate 2 eV windows at 708.5–710.5 eV (L3) and 719.7–721.7 eV (L2),
and read Fe3+/ΣFe = x off their universal curve

    I(L3)/I(L2) = 1 / (a x² + b x + c) − 1,   a = 0.193, b = −0.465, c = 0.366.

The method is what users know and a cross-check of the model; it needs an accurate
absolute energy scale (the windows are fixed in eV), which the model does not.
Pure NumPy on ``(pixels, channels)`` arrays.
"""

import numpy as np

#: Universal-curve coefficients (van Aken & Liebscher 2002).
CURVE_A, CURVE_B, CURVE_C = 0.193, -0.465, 0.366
#: Inflection points of the L3 and L2 continuum steps, eV, and their width.
STEP_L3_EV, STEP_L2_EV, STEP_WIDTH_EV = 708.65, 721.65, 1.0
#: Integration windows, eV.
WINDOW_L3_EV = (708.5, 710.5)
WINDOW_L2_EV = (719.7, 721.7)
#: Post-edge window that scales the step, eV (the continuum after L2).
POST_EDGE_EV = (728.0, 734.0)


def continuum_step(energy: np.ndarray, height: np.ndarray | float = 1.0) -> np.ndarray:
    """The double arctan step, ``height`` for L3 and ``height / 2`` for L2.

    Far above both edges it tends to ``1.5 * height``.

    Examples
    --------
    >>> import numpy as np
    >>> round(float(continuum_step(1e6)), 4)
    1.5
    """
    energy = np.asarray(energy, dtype=np.float64)
    height = np.asarray(height, dtype=np.float64)

    def unit(centre: float) -> np.ndarray:
        return np.arctan(np.pi / STEP_WIDTH_EV * (energy - centre)) / np.pi + 0.5

    step = unit(STEP_L3_EV) + 0.5 * unit(STEP_L2_EV)
    return height[..., None] * step if height.ndim else height * step


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
    height = np.nanmean(spectra[:, post], axis=1) / step_at_post_edge
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


def _window_integral(
    energy: np.ndarray, spectra: np.ndarray, window: tuple[float, float]
) -> np.ndarray:
    inside = (energy >= window[0]) & (energy <= window[1])
    return np.trapezoid(spectra[:, inside], energy[inside], axis=1)
