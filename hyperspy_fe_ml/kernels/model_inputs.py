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
    MIN_FIT_CHANNELS,
    MIN_POSITIVE_FRACTION,
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
    FLAG_BACKGROUND_FALLBACK: "power law failed; pre-edge mean subtracted",
    FLAG_OUT_OF_DISTRIBUTION: "unlike the training data",
}

#: More than this share of negative channels in raw counts marks a faulty pixel.
MAX_NEGATIVE_FRACTION = 0.01
#: This many equal channels at a spectrum's maximum are a clipped (saturated) peak ...
SATURATION_RUN = 4
#: ... when the maximum is at least this many counts (or not a whole number).
SATURATION_MIN_COUNTS = 50.0
#: A white-line integral below this many standard errors is no edge.
MIN_EDGE_SNR = 3.0


@njit(cache=True, nogil=True)
def _raw_quality(row, lo: int, hi: int, raw_counts: bool, saturation: float) -> int:
    """Flag bits of one raw spectrum over channels ``[lo, hi)``."""
    n = hi - lo
    if n <= 0:
        return FLAG_EMPTY
    n_negative = 0
    all_zero = True
    top = -np.inf
    for k in range(lo, hi):
        v = row[k]
        if not np.isfinite(v):
            return FLAG_NOT_FINITE
        if v != 0.0:
            all_zero = False
        if v < 0.0:
            n_negative += 1
        if v > top:
            top = v
    if all_zero:
        return FLAG_EMPTY
    flags = 0
    if raw_counts and n_negative > MAX_NEGATIVE_FRACTION * n:
        flags |= FLAG_NEGATIVE
    if top >= saturation:
        return flags | FLAG_SATURATED
    if top > 0.0 and (top >= SATURATION_MIN_COUNTS or top != np.floor(top)):
        run = 0
        for k in range(lo, hi):
            if row[k] == top:
                run += 1
                if run >= SATURATION_RUN:
                    return flags | FLAG_SATURATED
            else:
                run = 0
    return flags


@njit(cache=True, nogil=True)
def _fit_background_row(row, log_energy, x_ref: float, lo: int, hi: int, power_law):
    """``(log A, r, constant, sigma)`` of one spectrum's pre-edge window.

    The power law ``A E**-r`` by log-log least squares over the positive channels
    (as :func:`~hyperspy_fe_ml.kernels.preprocess.fit_power_law_background`), or
    the window mean as a constant when ``power_law`` is false or the fit cannot be
    made. ``sigma`` is the scatter of the window about the fit, counts per channel
    (NaN when unknown); a power law that fell back to a constant has ``r`` NaN.
    """
    n_win = 0
    total = 0.0
    total2 = 0.0
    n_pos = 0
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    sxy = 0.0
    syy = 0.0
    for k in range(lo, hi):
        v = float(row[k])
        n_win += 1
        total += v
        total2 += v * v
        if power_law and v > 0.0:
            x = log_energy[k] - x_ref
            y = np.log(v)
            n_pos += 1
            sx += x
            sy += y
            sxx += x * x
            sxy += x * y
            syy += y * y
    if n_win == 0:
        return -np.inf, 0.0, 0.0, np.nan
    mean = total / n_win
    spread = np.sqrt(max(total2 / n_win - mean * mean, 0.0)) if n_win > 1 else np.nan
    if power_law:
        denominator = n_pos * sxx - sx * sx
        if (
            n_pos >= MIN_FIT_CHANNELS
            and n_pos >= MIN_POSITIVE_FRACTION * n_win
            and denominator > 0.0
        ):
            slope = (n_pos * sxy - sx * sy) / denominator
            intercept = (sy - slope * sx) / n_pos
            if np.isfinite(slope) and np.isfinite(intercept):
                # Scatter in log space times the level is the scatter in counts.
                rss = syy - intercept * sy - slope * sxy
                log_sigma = np.sqrt(max(rss, 0.0) / max(n_pos - 2, 1))
                level = np.exp(sy / n_pos)
                return intercept - slope * x_ref, -slope, 0.0, log_sigma * level
        return -np.inf, np.nan, mean, spread
    return -np.inf, 0.0, mean, spread


@njit(cache=True, nogil=True)
def _resample_row(row, first, weights, out) -> None:
    """``out[j] = sum_i weights[j, i] * row[first[j] + i]`` (NaN off the axis)."""
    n_ch = row.size
    m, width = weights.shape
    for j in range(m):
        k0 = first[j]
        if k0 < 0:
            out[j] = np.nan
            continue
        total = 0.0
        for i in range(min(width, n_ch - k0)):
            w = weights[j, i]
            if w != 0.0:
                total += w * row[k0 + i]
        out[j] = total


@njit(cache=True, nogil=True)
def _centroid_row(grid, y, start: float, end: float, half_width: float, steps: int):
    """Iterated centroid of the positive intensity (see ``l3_centroid``)."""
    lo_e = start
    hi_e = end
    centre = np.nan
    for _ in range(steps + 1):
        lo = np.searchsorted(grid, lo_e, side="left")
        hi = np.searchsorted(grid, hi_e, side="right")
        total = 0.0
        moment = 0.0
        for k in range(lo, hi):
            v = y[k]
            if np.isfinite(v) and v > 0.0:
                total += v
                moment += v * grid[k]
        if total <= 0.0:
            return np.nan
        centre = moment / total
        lo_e = centre - half_width
        hi_e = centre + half_width
    return centre


@njit(cache=True, nogil=True)
def _shift_standardise_row(grid, y, shift, mean, scale, out) -> float:
    """``out = (y(grid + shift) - mean) / scale``; returns ``sum(out**2)``.

    Linear interpolation with the end values held beyond the grid, as
    :func:`~hyperspy_fe_ml.kernels.augment.distort_energy_scale` does.
    """
    n = grid.size
    step = (grid[n - 1] - grid[0]) / (n - 1)
    norm2 = 0.0
    for k in range(n):
        u = (grid[k] + shift - grid[0]) / step
        if u <= 0.0:
            v = y[0]
        elif u >= n - 1:
            v = y[n - 1]
        else:
            j = min(int(u), n - 2)
            t = u - j
            v = (1.0 - t) * y[j] + t * y[j + 1]
        x = (v - mean[k]) / scale[k]
        out[k] = x
        norm2 += x * x
    return norm2


@njit(cache=True, nogil=True)
def prepare_model_inputs(
    energy: np.ndarray,
    spectra: np.ndarray,
    pre_start: float,
    pre_end: float,
    power_law: bool,
    grid: np.ndarray,
    norm_start: float,
    norm_end: float,
    centroid_window: tuple[float, float],
    centroid_half_width: float,
    centroid_steps: int,
    align_to: float,
    mean: np.ndarray,
    scale: np.ndarray,
    saturation: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardised, L3-aligned spectra on ``grid`` and what was found on the way.

    Per pixel: quality checks of the raw spectrum over the channels used (pre-edge
    window and grid span); background fit (power law, or the pre-edge mean when
    ``power_law`` is false or the fit fails); resampling onto ``grid`` and
    background subtraction; division by the white-line integral over
    ``[norm_start, norm_end]``; the iterated L3 centroid; linear shift of the
    spectrum to put the centroid at ``align_to``; standardisation ``(y - mean) /
    scale``.

    Parameters
    ----------
    energy
        Input energy axis, eV, shape ``(channels,)``, increasing.
    spectra
        Raw or background-removed spectra, shape ``(pixels, channels)``, any real
        dtype (read as float64).
    pre_start, pre_end
        Pre-edge window, eV.
    power_law
        Fit a power law (raw counts) or subtract the window mean (background
        already removed).
    grid
        The model's uniform energy grid, eV, shape ``(m,)``.
    norm_start, norm_end
        White-line window of the normalisation, eV.
    centroid_window, centroid_half_width, centroid_steps
        First window of the L3 centroid, the half-width of its re-centred windows
        (eV) and the number of re-centring steps.
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
        L3 centroid per pixel, eV (NaN when unreadable).
    edge_snr
        White-line integral over its standard error from the pre-edge scatter (inf
        when the pre-edge is noise-free, NaN when unknown).
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
    ...     e, s, 690.0, 704.0, True, grid, 704.0, 727.0, (702.0, 716.0), 5.0, 3,
    ...     709.0, np.zeros(grid.size), np.ones(grid.size), np.inf)
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

    log_energy = np.log(energy)
    log_grid = np.log(grid)
    pre_lo = np.searchsorted(energy, pre_start, side="left")
    pre_hi = np.searchsorted(energy, pre_end, side="right")
    x_ref = np.log(0.5 * (energy[min(pre_lo, n_ch - 1)] + energy[max(pre_hi - 1, 0)]))
    first, weights = resampling_weights(energy, grid)
    use_lo = min(pre_lo, np.searchsorted(energy, grid[0], side="left"))
    use_hi = max(pre_hi, np.searchsorted(energy, grid[m - 1], side="right") + 1)
    use_lo = max(use_lo - 1, 0)
    use_hi = min(use_hi, n_ch)
    norm_lo = np.searchsorted(grid, norm_start, side="left")
    norm_hi = np.searchsorted(grid, norm_end, side="right")
    # Raw channels under the white-line window: the standard error of its integral.
    raw_step = (energy[n_ch - 1] - energy[0]) / max(n_ch - 1, 1)
    n_raw_window = max((norm_end - norm_start) / raw_step, 1.0)
    y = np.empty(m)
    x = np.empty(m)

    for p in range(n_pix):
        row = spectra[p]
        flag = _raw_quality(row, use_lo, use_hi, power_law, saturation)
        if flag & FLAGS_UNREADABLE:
            flags[p] = flag
            continue
        log_a, r, constant, sigma = _fit_background_row(
            row, log_energy, x_ref, pre_lo, pre_hi, power_law
        )
        if power_law and not np.isfinite(r):
            flag |= FLAG_BACKGROUND_FALLBACK
            r = 0.0
        _resample_row(row, first, weights, y)
        integral = 0.0
        for j in range(m):
            background = constant
            if log_a > -np.inf:
                background = np.exp(log_a - r * log_grid[j])
            y[j] -= background
        for j in range(norm_lo + 1, norm_hi):
            integral += 0.5 * (y[j] + y[j - 1]) * (grid[j] - grid[j - 1])
        if sigma > 0.0:
            snr = integral / raw_step / (sigma * np.sqrt(n_raw_window))
        elif sigma == 0.0:
            snr = np.inf if integral > 0.0 else 0.0
        else:
            snr = np.nan
        edge_snr[p] = snr
        if not (np.isfinite(integral) and integral > 0.0) or snr < MIN_EDGE_SNR:
            flags[p] = flag | FLAG_NO_EDGE
            continue
        for j in range(m):
            y[j] /= integral
        c = _centroid_row(
            grid,
            y,
            centroid_window[0],
            centroid_window[1],
            centroid_half_width,
            centroid_steps,
        )
        if not np.isfinite(c):
            flags[p] = flag | FLAG_NO_EDGE
            continue
        norm2[p] = _shift_standardise_row(grid, y, c - align_to, mean, scale, x)
        for k in range(m):
            inputs[p, k] = x[k]
        centroid[p] = c
        flags[p] = flag
    return inputs, norm2, centroid, edge_snr, flags
