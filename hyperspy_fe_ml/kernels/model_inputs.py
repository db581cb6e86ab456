"""From raw spectra to model inputs in one pass per pixel, with a quality flag.

:func:`prepare_model_inputs` fuses what prediction needs before the model's matrix
products — the quality checks of the raw pixel, the power-law (or pre-edge mean)
background, the intensity-conserving resampling onto the model's grid, the
white-line normalisation, the L3 centroid, the shift that puts it at a fixed energy
and the per-channel standardisation — into one loop over pixels, with no
intermediate array the size of the block. Each step is one small row function; the
same steps exist as whole-array kernels in :mod:`hyperspy_fe_ml.kernels.preprocess`
(and give the same numbers).

The background is subtracted after resampling: the mean of ``A E**-r`` over an
output bin differs from its value at the bin centre by a relative
``r (r + 1) h**2 / (24 E**2)`` (about 1e-9 for 0.1 eV bins at 700 eV), so the order
does not matter and only the output channels pay for the power law.

Pure functions on arrays; they know nothing of HyperSpy, Dask or the model class.
"""

import numpy as np
from numba import njit

from hyperspy_fe_ml.kernels.preprocess import (
    fit_log_log_row,
    l3_centroid_row,
    resampling_weights,
)

#: Bits of the per-pixel quality flag. The first five mark a pixel the model cannot
#: read: its outputs are NaN. The others are information; the outputs are kept.
FLAG_NOT_FINITE = 1
FLAG_EMPTY = 2
FLAG_NEGATIVE = 4
FLAG_SATURATED = 8
FLAG_NO_EDGE = 16
FLAG_BACKGROUND_FALLBACK = 32
FLAG_OUT_OF_DISTRIBUTION = 64
FLAG_PARTIAL_WINDOW = 128
#: Which out-of-distribution test failed (each also sets
#: :data:`FLAG_OUT_OF_DISTRIBUTION`; see :mod:`hyperspy_fe_ml.ood`). The flags
#: are uint16 since these bits were added.
FLAG_OOD_FEATURES = 256
FLAG_OOD_RECONSTRUCTION = 512
FLAG_OOD_SPIKE = 1024
FLAG_METALLIC = 2048
FLAG_UNLISTED = 4096
#: Information: the iron is mostly Fe2+, whose site symmetry the L2,3 shape does not
#: resolve (:mod:`hyperspy_fe_ml.site_resolution`); the site outputs' standard
#: deviations are widened, the values kept.
FLAG_FE2_SITE_UNRESOLVED = 8192
#: Flags that make a pixel unreadable.
FLAGS_UNREADABLE = (
    FLAG_NOT_FINITE | FLAG_EMPTY | FLAG_NEGATIVE | FLAG_SATURATED | FLAG_NO_EDGE
)
#: Names of the flag bits, for messages and legends.
FLAG_NAMES: dict[int, str] = {
    FLAG_NOT_FINITE: "NaN or inf in the spectrum",
    FLAG_EMPTY: "all zero",
    FLAG_NEGATIVE: "negative counts",
    FLAG_SATURATED: "saturated",
    FLAG_NO_EDGE: "no Fe L2,3 edge above the noise",
    FLAG_BACKGROUND_FALLBACK: "no room or no fit for a power-law background; "
    "fixed-exponent background",
    FLAG_OUT_OF_DISTRIBUTION: "unlike the training data (out of distribution)",
    FLAG_PARTIAL_WINDOW: "spectrum shorter than the model's window; ends held",
    FLAG_OOD_FEATURES: "far from the training spectra in the model's features",
    FLAG_OOD_RECONSTRUCTION: "no library spectrum explains the shape within noise",
    FLAG_OOD_SPIKE: "spike or glitch",
    FLAG_METALLIC: "metallic iron (no multiplet structure); the valence model "
    "does not apply",
    FLAG_UNLISTED: "low-spin or Fe4+ iron (outside the multiplet library); the "
    "valence model does not apply",
    FLAG_FE2_SITE_UNRESOLVED: "mostly Fe2+: tetrahedral fraction not resolved by "
    "the L2,3 shape (wide uncertainty)",
}

#: Background of each pixel: the pre-edge mean (the background was removed
#: already), a fitted power law (raw counts), or — raw counts with too short a
#: pre-edge for a fit — a power law of fixed exponent
#: :data:`FALLBACK_EXPONENT` scaled to the pre-edge mean.
BACKGROUND_MEAN = 0
BACKGROUND_POWER_LAW = 1
BACKGROUND_FIXED_EXPONENT = 2
#: Exponent of the fallback power law: the middle of the 2-5 of EELS backgrounds
#: (Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*, 3rd
#: ed., section 4.4; the training backgrounds span the same range). An error of
#: one in the exponent leaves a residual of about 2 % of the background 15 eV
#: above the window, which the training's wrong-exponent artefacts cover.
FALLBACK_EXPONENT = 3.0
#: Variance assumed for the fallback exponent (one standard deviation of 1): the
#: prior that a short pre-edge's own fit is weighed against.
FALLBACK_EXPONENT_VARIANCE = 1.0
#: Largest exponent a short pre-edge may give its power law (steeper than any
#: EELS background, Egerton section 4.4).
MAX_FALLBACK_EXPONENT = 6.0
#: Systematic departure of a short pre-edge from a power law, as a fraction of
#: its level (the L3 line's Lorentzian tail, gain drifts): a 1 eV window then
#: barely moves the exponent from its prior, a 5 eV one of precise counts
#: outweighs it two to one.
SHORT_WINDOW_SYSTEMATIC = 0.005

#: More than this share of negative channels in raw counts marks a faulty pixel.
MAX_NEGATIVE_FRACTION = 0.01
#: This many equal channels at a spectrum's maximum are a clipped (saturated) peak ...
SATURATION_RUN = 4
#: ... when the maximum is at least this many counts (or not a whole number).
SATURATION_MIN_COUNTS = 50.0
#: A white-line integral below this many standard errors is no edge.
MIN_EDGE_SNR = 3.0
#: Relative precision of a subtracted background, at best: float32 data carry
#: about 6e-8 of rounding, so a noise-free power law (synthetic data) leaves a
#: residual of this order, which must not count as an edge.
BACKGROUND_PRECISION = 1e-7
#: Fast-math flags of the kernels: reassociation lets sums vectorise. Not
#: ``nnan``/``ninf``: NaN and inf must still propagate (the quality checks use them).
_FAST = {"reassoc", "contract", "nsz", "arcp"}


@njit(cache=True, nogil=True, fastmath=_FAST)
def _row_max(row, lo: int, hi: int) -> float:
    """Largest of ``row[lo:hi]`` as float (NaN ignored; -inf when none).

    Four independent running maxima: one alone is a chain of dependent
    comparisons (a maximum that must not lose NaN does not vectorise), four
    overlap — twice as fast over a 1000-channel spectrum.
    """
    a0 = a1 = a2 = a3 = -np.inf
    k = lo
    while k + 4 <= hi:
        v0 = float(row[k])
        v1 = float(row[k + 1])
        v2 = float(row[k + 2])
        v3 = float(row[k + 3])
        a0 = v0 if v0 > a0 else a0
        a1 = v1 if v1 > a1 else a1
        a2 = v2 if v2 > a2 else a2
        a3 = v3 if v3 > a3 else a3
        k += 4
    top = max(max(a0, a1), max(a2, a3))
    while k < hi:
        v = float(row[k])
        top = v if v > top else top
        k += 1
    return top


@njit(cache=True, nogil=True, fastmath=_FAST)
def _raw_quality(row, lo: int, hi: int, raw_counts: bool, saturation: float) -> int:
    """Flag bits of one raw spectrum over channels ``[lo, hi)``.

    One branch-free pass (it vectorises) counts what the flags need: a non-finite
    value turns ``poison`` into NaN (inf * 0 and NaN * 0 are NaN); negative, zero
    and saturated channels; and places where :data:`SATURATION_RUN` (4) equal
    channels start. Only a spectrum with such a run (rare in counts) pays for its
    maximum and the search for a run at it.
    """
    n = hi - lo
    if n <= 0:
        return FLAG_EMPTY
    poison = 0.0
    n_negative = 0
    n_zero = 0
    n_high = 0
    n_runs = 0
    # Loops over a slice from 0: numba then knows the index is not negative and
    # reads contiguous vectors (from ``lo`` it would gather, for wraparound).
    seg = row[lo:hi]
    # Channels k, k+1, k+2, k+3 equal: a run of SATURATION_RUN (= 4) starts at k.
    for k in range(n - 3):
        v = float(seg[k])
        v1 = float(seg[k + 1])
        v2 = float(seg[k + 2])
        v3 = float(seg[k + 3])
        poison += v * 0.0
        n_negative += v < 0.0
        n_zero += v == 0.0
        n_high += v >= saturation
        n_runs += (v == v1) & (v1 == v2) & (v2 == v3)
    for k in range(max(n - 3, 0), n):
        v = float(seg[k])
        poison += v * 0.0
        n_negative += v < 0.0
        n_zero += v == 0.0
        n_high += v >= saturation
    if poison != 0.0:
        return FLAG_NOT_FINITE
    if n_zero == n:
        return FLAG_EMPTY
    flags = 0
    if raw_counts and n_negative > MAX_NEGATIVE_FRACTION * n:
        flags |= FLAG_NEGATIVE
    # All channels are finite here, so a channel at or above ``saturation`` is
    # the maximum being there.
    if n_high > 0:
        return flags | FLAG_SATURATED
    if n_runs == 0:
        return flags
    top = _row_max(row, lo, hi)
    if top > 0.0 and (top >= SATURATION_MIN_COUNTS or top != np.floor(top)):
        run = 0
        for k in range(lo, hi):
            if float(row[k]) == top:
                run += 1
                if run >= SATURATION_RUN:
                    return flags | FLAG_SATURATED
            else:
                run = 0
    return flags


@njit(cache=True, nogil=True, fastmath=_FAST)
def _fit_background_row(row, log_energy, x_ref: float, lo: int, hi: int, mode: int):
    """Background of one spectrum from its pre-edge window, with its uncertainty.

    ``mode`` :data:`BACKGROUND_POWER_LAW`: the power law ``A E**-r`` by log-log
    least squares over the binned window
    (:func:`~hyperspy_fe_ml.kernels.preprocess.fit_log_log_row`, as
    :func:`~hyperspy_fe_ml.kernels.preprocess.fit_power_law_background`); when
    that fit cannot be made (non-positive counts), the fixed-exponent power law.
    :data:`BACKGROUND_FIXED_EXPONENT` (a pre-edge too short to fit an exponent
    on its own): ``A`` from the window mean, ``r`` from
    :func:`_short_window_exponent` — :data:`FALLBACK_EXPONENT` unless the
    window's counts are precise enough to say otherwise.
    :data:`BACKGROUND_MEAN`: the window mean as a constant.

    Returns
    -------
    intercept, slope
        ``log B = intercept + slope * (log E - x_ref)``; intercept ``-inf`` for a
        constant background.
    constant
        The constant background (0 for a power law).
    sigma
        Scatter of the window about the fit, counts per channel (NaN: unknown).
    var_intercept, var_slope, covariance
        Covariance of the fitted parameters (log space for the power law; for a
        constant, ``var_intercept`` is the variance of the constant).
    fallback
        Whether the fixed-exponent power law stood in for a fit.
    """
    if mode == BACKGROUND_POWER_LAW:
        (
            n_win,
            total,
            total2,
            ok,
            intercept,
            slope,
            level,
            log_var,
            var_a,
            var_b,
            cov_ab,
        ) = fit_log_log_row(row, log_energy, x_ref, lo, hi)
        if ok:
            # Scatter in log space times the level is the scatter in counts.
            sigma = np.sqrt(log_var) * np.exp(level)
            return intercept, slope, 0.0, sigma, var_a, var_b, cov_ab, False
    n_win = 0
    total = 0.0
    total2 = 0.0
    for k in range(lo, hi):
        v = float(row[k])
        n_win += 1
        total += v
        total2 += v * v
    if n_win == 0:
        return -np.inf, 0.0, 0.0, np.nan, np.nan, np.nan, np.nan, False
    mean = total / n_win
    spread = np.nan
    if n_win > 1:
        spread = np.sqrt(max(total2 - n_win * mean * mean, 0.0) / (n_win - 1))
    if mode == BACKGROUND_MEAN:
        return -np.inf, 0.0, mean, spread, spread * spread / n_win, 0.0, 0.0, False
    if mean <= 0.0:
        return -np.inf, 0.0, mean, spread, spread * spread / n_win, 0.0, 0.0, True
    var_log = spread * spread / (n_win * mean * mean)
    slope, var_slope = _short_window_exponent(row, log_energy, x_ref, lo, hi)
    return np.log(mean), slope, 0.0, spread, var_log, var_slope, 0.0, True


@njit(cache=True, nogil=True, fastmath=_FAST)
def _short_window_exponent(row, log_energy, x_ref: float, lo: int, hi: int):
    """Slope of a short pre-edge's power law: the window's own where it is precise.

    A window too short for a trustworthy fit still says something about the
    exponent when its counts are precise (high dose, or a spectrum digitised
    from a figure). The log-log fit of the window and the prior exponent
    :data:`FALLBACK_EXPONENT` (variance :data:`FALLBACK_EXPONENT_VARIANCE`) are
    combined by their inverse variances (the Gaussian posterior; the fit's
    variance includes a systematic :data:`SHORT_WINDOW_SYSTEMATIC` of the level
    across the window). The exponent is kept within
    0-:data:`MAX_FALLBACK_EXPONENT`: no background rises with energy, and a
    window rising by more than three standard deviations holds the L3 onset, so
    the prior stands. Noisy short windows keep the prior; a noise-free steep
    power law moves it most of the way to its own exponent.

    Returns
    -------
    slope, var_slope
        ``-r`` and its posterior variance.
    """
    prior = -FALLBACK_EXPONENT
    fit = fit_log_log_row(row, log_energy, x_ref, lo, hi)
    ok, slope_fit, var_fit = fit[3], fit[5], fit[9]
    if not ok or not var_fit >= 0.0 or not np.isfinite(slope_fit) or hi - lo < 2:
        return prior, FALLBACK_EXPONENT_VARIANCE
    # A systematic departure of the window from a power law (the edge's own
    # tail, a gain drift) bends the fitted slope by about that fraction over the
    # window's log-energy span, however precise the counts.
    span = log_energy[hi - 1] - log_energy[lo]
    systematic = SHORT_WINDOW_SYSTEMATIC / max(span, 1e-12)
    var_total = var_fit + systematic * systematic
    # Rising by more than three standard deviations: the window holds the
    # edge's onset, not background; the prior stands.
    if slope_fit > 3.0 * np.sqrt(var_total):
        return prior, FALLBACK_EXPONENT_VARIANCE
    weight_prior = 1.0 / FALLBACK_EXPONENT_VARIANCE
    weight_fit = 1.0 / var_total
    slope = (slope_fit * weight_fit + prior * weight_prior) / (
        weight_fit + weight_prior
    )
    slope = min(max(slope, -MAX_FALLBACK_EXPONENT), 0.0)
    return slope, 1.0 / (weight_fit + weight_prior)


@njit(cache=True, nogil=True, fastmath=_FAST)
def _power_law_row(level: float, slope: float, log_span, out) -> None:
    """``out[j] = level * exp(slope * log_span[j])``: a power law on a grid.

    ``log_span`` is ``log(grid) - log(grid[0])``. For the exponents of real
    backgrounds over an edge-sized grid, ``|slope * log_span| <= 0.5``, and the
    exponential is its degree-12 Taylor polynomial (error below 1e-13), evaluated
    independently per channel so the loop vectorises; otherwise ``np.exp``.
    """
    if abs(slope) * log_span[log_span.size - 1] > 0.5:
        for j in range(out.size):
            out[j] = level * np.exp(slope * log_span[j])
        return
    for j in range(out.size):
        u = slope * log_span[j]
        p = 1.0 / 479001600.0
        p = p * u + 1.0 / 39916800.0
        p = p * u + 1.0 / 3628800.0
        p = p * u + 1.0 / 362880.0
        p = p * u + 1.0 / 40320.0
        p = p * u + 1.0 / 5040.0
        p = p * u + 1.0 / 720.0
        p = p * u + 1.0 / 120.0
        p = p * u + 1.0 / 24.0
        p = p * u + 1.0 / 6.0
        p = p * u + 0.5
        p = p * u + 1.0
        p = p * u + 1.0
        out[j] = level * p


@njit(cache=True, nogil=True, fastmath=_FAST)
def _resample_row(row, first, weights, out) -> None:
    """``out[j] = sum_i weights[j, i] * row[first[j] + i]`` (NaN where first < 0).

    ``first`` and ``weights`` come from :func:`banded_resampling`, whose bands
    never run off the input axis.
    """
    m, width = weights.shape
    for j in range(m):
        k0 = first[j]
        if k0 < 0:
            out[j] = np.nan
            continue
        total = 0.0
        for i in range(width):
            total += weights[j, i] * row[k0 + i]
        out[j] = total


@njit(cache=True, nogil=True, fastmath=_FAST)
def banded_resampling(
    energy: np.ndarray, grid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~hyperspy_fe_ml.kernels.preprocess.resampling_weights` with every band
    moved, where needed, to end on the axis (zero weights pad the band), so a row
    product needs no bounds checks."""
    first, weights = resampling_weights(energy, grid)
    m, width = weights.shape
    n_ch = energy.size
    for j in range(m):
        k0 = first[j]
        if k0 < 0 or k0 + width <= n_ch:
            continue
        move = k0 + width - n_ch
        for i in range(width - 1, -1, -1):
            weights[j, i] = weights[j, i - move] if i >= move else 0.0
        first[j] = k0 - move
    return first, weights


@njit(cache=True, nogil=True, fastmath=_FAST)
def _shift_standardise_row(grid, y, shift, mean, inv_scale, out) -> float:
    """``out = (y(grid + shift) - mean) * inv_scale``; returns ``sum(out**2)``.

    Linear interpolation with the end values held beyond the grid, as
    :func:`~hyperspy_fe_ml.kernels.augment.distort_energy_scale` does. On a uniform
    grid a shift moves every channel by the same whole number of channels plus the
    same fraction ``t``.
    """
    n = grid.size
    step = (grid[n - 1] - grid[0]) / (n - 1)
    whole = np.floor(shift / step)
    t = shift / step - whole
    j0 = int(whole)
    # Channel k reads y[k + j0] (and the next): below k_lo the first value is held,
    # from k_hi on the last; in between the loop has no branches and vectorises.
    k_lo = min(max(-j0, 0), n)
    k_hi = max(min(n - 1 - j0, n), k_lo)
    norm2 = 0.0
    first = y[0]
    for k in range(k_lo):
        x = (first - mean[k]) * inv_scale[k]
        out[k] = x
        norm2 += x * x
    a = y[k_lo + j0 : k_hi + j0]
    b = y[k_lo + j0 + 1 : k_hi + j0 + 1]
    mean_mid = mean[k_lo:k_hi]
    scale_mid = inv_scale[k_lo:k_hi]
    out_mid = out[k_lo:k_hi]
    for k in range(k_hi - k_lo):
        v = (1.0 - t) * a[k] + t * b[k]
        x = (v - mean_mid[k]) * scale_mid[k]
        out_mid[k] = x
        norm2 += x * x
    last = y[n - 1]
    for k in range(k_hi, n):
        x = (last - mean[k]) * inv_scale[k]
        out[k] = x
        norm2 += x * x
    return norm2


@njit(cache=True, nogil=True, fastmath=_FAST)
def valid_span(row) -> tuple[int, int]:
    """First and one-past-last finite channel of ``row`` (``(0, 0)``: none).

    Channels outside the span are the parts of the model's window the spectrum
    does not reach (NaN); inside it every value must be finite.
    """
    n = row.size
    lo = 0
    while lo < n and not np.isfinite(row[lo]):
        lo += 1
    hi = n
    while hi > lo and not np.isfinite(row[hi - 1]):
        hi -= 1
    return lo, hi


@njit(cache=True, nogil=True, fastmath=_FAST)
def _window_integral(grid, y, start: float, end: float) -> float:
    """Trapezoid integral of ``y`` over the channels of ``grid`` in [start, end]."""
    lo = np.searchsorted(grid, start, side="left")
    hi = np.searchsorted(grid, end, side="right")
    return _trapezoid(grid, y, lo, hi)


@njit(cache=True, nogil=True, fastmath=_FAST)
def _trapezoid(grid, y, lo: int, hi: int) -> float:
    """Trapezoid integral of ``y`` over channels ``[lo, hi)`` of ``grid``."""
    if hi - lo < 2:
        return 0.0
    # Slices from 0: no wraparound of the indices, so the loop vectorises.
    g = grid[lo:hi]
    v = y[lo:hi]
    total = 0.0
    for j in range(1, hi - lo):
        total += 0.5 * (v[j] + v[j - 1]) * (g[j] - g[j - 1])
    return total


@njit(cache=True, nogil=True, fastmath=_FAST)
def align_row(
    grid,
    y,
    lo: int,
    hi: int,
    centroid_window: tuple[float, float],
    centroid_half_width: float,
    centroid_steps: int,
    norm_span: tuple[float, float],
    align_to: float,
    mean,
    inv_scale,
    out,
) -> tuple[float, float]:
    """A background-free spectrum on ``grid`` as the model reads it, in place.

    The one definition of the model's input, shared by prediction
    (:func:`prepare_model_inputs`) and training (:func:`align_rows`):

    1. channels outside ``[lo, hi)`` (the part of the window the spectrum does
       not reach) take the value of the nearest channel inside — the pre-edge
       level below, the continuum above;
    2. the iterated L3 centroid ``c``;
    3. division by the integral over ``[c + norm_span[0], c + norm_span[1]]``, the
       L3 and L2 lines wherever the axis puts them;
    4. a shift putting ``c`` at ``align_to`` (ends held) and the standardisation
       ``(y - mean) * inv_scale`` into ``out``.

    Returns
    -------
    centroid, norm2
        ``c`` (grid frame) and ``sum(out**2)``; both NaN when the spectrum has no
        positive L3 line or no positive white-line integral (``out`` is then left
        unchanged).
    """
    m = grid.size
    if hi <= lo:
        return np.nan, np.nan
    first = y[lo]
    for k in range(lo):
        y[k] = first
    last = y[hi - 1]
    for k in range(hi, m):
        y[k] = last
    c = l3_centroid_row(
        grid,
        y,
        centroid_window[0],
        centroid_window[1],
        centroid_half_width,
        centroid_steps,
    )
    if not np.isfinite(c):
        return np.nan, np.nan
    integral = _window_integral(grid, y, c + norm_span[0], c + norm_span[1])
    if not (np.isfinite(integral) and integral > 0.0):
        return np.nan, np.nan
    inv_integral = 1.0 / integral
    for k in range(m):
        y[k] *= inv_integral
    norm2 = _shift_standardise_row(grid, y, c - align_to, mean, inv_scale, out)
    return c, norm2


@njit(cache=True, nogil=True, fastmath=_FAST)
def align_rows(
    grid: np.ndarray,
    spectra: np.ndarray,
    centroid_window: tuple[float, float],
    centroid_half_width: float,
    centroid_steps: int,
    norm_span: tuple[float, float],
    align_to: float,
    mean: np.ndarray,
    scale: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`align_row` over a batch of background-free spectra on ``grid``.

    Parameters
    ----------
    grid
        The model's uniform energy grid, eV, shape ``(m,)``.
    spectra
        Shape ``(n, m)``; NaN outside each row's span (a cropped spectrum), finite
        inside it. Any intensity scale.
    centroid_window, centroid_half_width, centroid_steps
        The L3 centroid search (see :func:`align_row`).
    norm_span
        Normalisation window relative to the L3 centroid, eV.
    align_to
        Where the centroid is put, eV.
    mean, scale
        Standardisation per channel (zeros and ones give the aligned,
        normalised spectra themselves).

    Returns
    -------
    inputs
        Shape ``(n, m)``, float64; rows that cannot be read are NaN.
    norm2
        ``sum(inputs**2)`` per row (NaN when unreadable).
    centroid
        L3 centroid per row, eV (NaN when unreadable).

    Examples
    --------
    >>> import numpy as np
    >>> g = np.arange(700.0, 730.0, 0.1)
    >>> y = np.exp(-0.5 * ((g - 710.0) / 0.8) ** 2)
    >>> y += 0.4 * np.exp(-0.5 * ((g - 723.0) / 1.0) ** 2)
    >>> cropped = np.where((g > 706.0) & (g < 725.0), y, np.nan)
    >>> x, n2, c = align_rows(g, np.stack([y, cropped]), (702.0, 716.0), 5.0, 3,
    ...                       (-3.5, 13.5), 709.0, np.zeros(g.size), np.ones(g.size))
    >>> np.round(c, 2)
    array([710., 710.])
    >>> bool(np.allclose(x[0, 50:200], x[1, 50:200], atol=1e-4))
    True
    """
    n, m = spectra.shape
    inputs = np.full((n, m), np.nan)
    norm2 = np.full(n, np.nan)
    centroid = np.full(n, np.nan)
    inv_scale = 1.0 / scale
    y = np.empty(m)
    x = np.empty(m)
    for p in range(n):
        for k in range(m):
            y[k] = spectra[p, k]
        lo, hi = valid_span(y)
        bad = False
        for k in range(lo, hi):
            if not np.isfinite(y[k]):
                bad = True
        if bad:
            continue
        c, n2 = align_row(
            grid,
            y,
            lo,
            hi,
            centroid_window,
            centroid_half_width,
            centroid_steps,
            norm_span,
            align_to,
            mean,
            inv_scale,
            x,
        )
        if not np.isfinite(c):
            continue
        for k in range(m):
            inputs[p, k] = x[k]
        norm2[p] = n2
        centroid[p] = c
    return inputs, norm2, centroid


@njit(cache=True, nogil=True, fastmath=_FAST)
def prepare_model_inputs(
    energy: np.ndarray,
    spectra: np.ndarray,
    pre_start: float,
    pre_end: float,
    background_mode: int,
    grid: np.ndarray,
    grid_shift: float,
    edge_start: float,
    edge_end: float,
    centroid_window: tuple[float, float],
    centroid_half_width: float,
    centroid_steps: int,
    norm_span: tuple[float, float],
    align_to: float,
    mean: np.ndarray,
    scale: np.ndarray,
    saturation: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardised, L3-aligned spectra on ``grid`` and what was found on the way.

    The model's window is read at ``grid + grid_shift`` on the input axis: the
    shift is the signal's measured L3 offset, so an axis several eV off is read
    where its edge is. Per pixel: quality checks of the raw spectrum over the
    channels used (pre-edge window and window span); background (see
    :func:`_fit_background_row`); resampling onto the shifted window and
    background subtraction; the edge signal-to-noise ratio over
    ``[edge_start, edge_end]`` (grid frame); then :func:`align_row` — the part
    of the window the axis does not reach held at the nearest value (flagged
    :data:`FLAG_PARTIAL_WINDOW`), the L3 centroid, the normalisation to the
    white lines, the shift to ``align_to`` and the standardisation.

    Parameters
    ----------
    energy
        Input energy axis, eV, shape ``(channels,)``, increasing.
    spectra
        Raw or background-removed spectra, shape ``(pixels, channels)``, any real
        dtype (read as float64).
    pre_start, pre_end
        Pre-edge window on the input axis, eV.
    background_mode
        :data:`BACKGROUND_MEAN`, :data:`BACKGROUND_POWER_LAW` or
        :data:`BACKGROUND_FIXED_EXPONENT`.
    grid
        The model's uniform energy grid, eV, shape ``(m,)``.
    grid_shift
        Where the grid sits on the input axis: ``grid + grid_shift``, eV.
    edge_start, edge_end
        White-line window of the edge signal-to-noise ratio, grid frame, eV.
    centroid_window, centroid_half_width, centroid_steps
        First window of the L3 centroid (grid frame), the half-width of its
        re-centred windows (eV) and the number of re-centring steps.
    norm_span
        Normalisation window relative to the L3 centroid, eV.
    align_to
        Energy at which each spectrum's L3 centroid is put, eV.
    mean, scale
        Per-channel standardisation, shape ``(m,)``.
    saturation
        Intensity at or above which a channel is saturated (``np.inf`` for none).

    Returns
    -------
    inputs
        Shape ``(pixels, m)``, float32, standardised; rows of unreadable pixels are
        zero (their flag says so).
    norm2
        ``sum(inputs**2)`` per pixel, float64.
    centroid
        L3 centroid per pixel on the input axis, eV (NaN when unreadable).
    edge_snr
        White-line integral over its standard error: the counting scatter of the
        pre-edge channels plus the uncertainty of the background fitted to them
        and extrapolated under the edge, and at least
        :data:`BACKGROUND_PRECISION` of that background (NaN when unknown: no
        pre-edge channels, or no uncertainty from them, then flagged as a
        background fallback).
        Below :data:`MIN_EDGE_SNR` the pixel has no edge.
    flags
        Quality bits per pixel, uint8 (``FLAG_*``).

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(690.0, 740.0, 0.1)
    >>> edge = np.exp(-0.5 * ((e - 709.0) / 0.8) ** 2)
    >>> s = (1e10 * e**-3.0 + 50.0 * edge)[None, :]
    >>> grid = np.arange(700.0, 730.0, 0.1)
    >>> x, n2, c, snr, flags = prepare_model_inputs(
    ...     e, s, 690.0, 704.0, BACKGROUND_POWER_LAW, grid, 0.0, 704.0, 727.0,
    ...     (702.0, 716.0), 5.0, 3, (-3.5, 13.5), 709.0, np.zeros(grid.size),
    ...     np.ones(grid.size), np.inf)
    >>> round(float(c[0]), 2), int(flags[0]), x.dtype.name
    (709.0, 0, 'float32')
    """
    n_pix, n_ch = spectra.shape
    m = grid.size
    inputs = np.zeros((n_pix, m), dtype=np.float32)
    norm2 = np.full(n_pix, np.nan)
    centroid = np.full(n_pix, np.nan)
    edge_snr = np.full(n_pix, np.nan)
    flags = np.zeros(n_pix, dtype=np.uint8)

    read_grid = grid + grid_shift
    log_energy = np.log(energy)
    log_grid = np.log(read_grid)
    pre_lo = np.searchsorted(energy, pre_start, side="left")
    pre_hi = np.searchsorted(energy, pre_end, side="right")
    x_ref = np.log(0.5 * (energy[min(pre_lo, n_ch - 1)] + energy[max(pre_hi - 1, 0)]))
    first, weights = banded_resampling(energy, read_grid)
    # The part of the window the axis reaches (the bands inside it).
    lo_valid = 0
    while lo_valid < m and first[lo_valid] < 0:
        lo_valid += 1
    hi_valid = m
    while hi_valid > lo_valid and first[hi_valid - 1] < 0:
        hi_valid -= 1
    partial = lo_valid > 0 or hi_valid < m
    inv_scale = 1.0 / scale
    log_span = log_grid - log_grid[0]
    background = np.empty(m)
    use_lo = min(pre_lo, np.searchsorted(energy, read_grid[0], side="left"))
    use_hi = max(pre_hi, np.searchsorted(energy, read_grid[m - 1], side="right") + 1)
    use_lo = max(use_lo - 1, 0)
    use_hi = min(use_hi, n_ch)
    norm_lo = max(np.searchsorted(grid, edge_start, side="left"), lo_valid)
    norm_hi = min(np.searchsorted(grid, edge_end, side="right"), hi_valid)
    # Raw channels under the white-line window: the standard error of its integral.
    raw_step = (energy[n_ch - 1] - energy[0]) / max(n_ch - 1, 1)
    step = (grid[m - 1] - grid[0]) / (m - 1)
    window_width = grid[max(min(norm_hi, m) - 1, 0)] - grid[min(norm_lo, m - 1)]
    window_width = max(window_width, 0.0)
    n_raw_window = max(window_width / raw_step, 1.0)
    raw_counts = background_mode != BACKGROUND_MEAN
    y = np.empty(m)
    x = np.empty(m)

    for p in range(n_pix):
        row = spectra[p]
        flag = _raw_quality(row, use_lo, use_hi, raw_counts, saturation)
        if flag & FLAGS_UNREADABLE:
            flags[p] = flag
            continue
        if partial:
            flag |= FLAG_PARTIAL_WINDOW
        intercept, slope, constant, sigma, var_a, var_b, cov_ab, fell_back = (
            _fit_background_row(row, log_energy, x_ref, pre_lo, pre_hi, background_mode)
        )
        if fell_back:
            flag |= FLAG_BACKGROUND_FALLBACK
        _resample_row(row, first, weights, y)
        # Subtract the background; sum it (s0) and its log-energy moment (s1) over
        # the white-line window, which carry the fit's uncertainty into the
        # integral.
        s0 = 0.0
        s1 = 0.0
        if intercept > -np.inf:
            level = np.exp(intercept + slope * (log_grid[0] - x_ref))
            _power_law_row(level, slope, log_span, background)
            for j in range(m):
                y[j] -= background[j]
            window = background[norm_lo:norm_hi]
            window_x = log_grid[norm_lo:norm_hi]
            for j in range(window.size):
                s0 += window[j]
                s1 += window[j] * (window_x[j] - x_ref)
            s0 *= step
            s1 *= step
            var_fit = var_a * s0 * s0 + 2.0 * cov_ab * s0 * s1 + var_b * s1 * s1
        else:
            for j in range(m):
                y[j] -= constant
            s0 = abs(constant) * window_width
            var_fit = var_a * window_width * window_width
        integral = _trapezoid(grid, y, norm_lo, norm_hi)
        floor = BACKGROUND_PRECISION * s0
        variance = var_fit + sigma * sigma * n_raw_window * raw_step * raw_step
        variance += floor * floor
        if variance > 0.0:
            snr = integral / np.sqrt(variance)
        elif variance == 0.0:
            snr = np.inf if integral > 0.0 else 0.0
        else:
            snr = np.nan
            if pre_hi > pre_lo:
                # Pre-edge channels, yet no uncertainty from them (e.g. all zero
                # counts): the flag says the background is not a fitted one.
                flag |= FLAG_BACKGROUND_FALLBACK
        edge_snr[p] = snr
        if not (np.isfinite(integral) and integral > 0.0) or snr < MIN_EDGE_SNR:
            flags[p] = flag | FLAG_NO_EDGE
            continue
        c, n2 = align_row(
            grid,
            y,
            lo_valid,
            hi_valid,
            centroid_window,
            centroid_half_width,
            centroid_steps,
            norm_span,
            align_to,
            mean,
            inv_scale,
            x,
        )
        if not np.isfinite(c):
            flags[p] = flag | FLAG_NO_EDGE
            continue
        norm2[p] = n2
        for k in range(m):
            inputs[p, k] = x[k]
        centroid[p] = c + grid_shift
        flags[p] = flag
    return inputs, norm2, centroid, edge_snr, flags


def contiguous_finite(spectra: np.ndarray) -> np.ndarray:
    """Whether each row's finite values form one run of at least two channels.

    A cropped spectrum on the model's grid is NaN at either end and finite in
    between; NaN (or inf) between finite values is damage, not a crop.

    Examples
    --------
    >>> import numpy as np
    >>> nan = np.nan
    >>> contiguous_finite(np.array([[nan, 1, 2, nan], [1, nan, 2, 3], [1, 2, 3, 4]]))
    array([ True, False,  True])
    """
    finite = np.isfinite(spectra)
    n_finite = finite.sum(axis=1)
    first = np.argmax(finite, axis=1)
    last = spectra.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)
    return (n_finite >= 2) & (last - first + 1 == n_finite)
