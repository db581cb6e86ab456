"""Preprocessing kernels for Fe L2,3 spectra.

Pure functions on arrays: ``energy`` is the 1-D energy axis in eV (increasing, uniform
or not), ``spectra`` a 2-D ``(pixels, channels)`` float array. They know nothing of
HyperSpy or Dask; :mod:`hyperspy_fe_ml.chunked` feeds them Dask blocks.

A pixel that cannot be processed (no finite value, no edge) gives NaN in its row; it
never raises, so one bad pixel cannot abort a map.
"""

import numpy as np
from numba import njit

#: Status codes of :func:`fit_power_law_background`.
FIT_POWER_LAW = 0
FIT_CONSTANT = 1
FIT_FAILED = 2

#: A power-law fit needs at least this many channels in the window ...
MIN_FIT_CHANNELS = 4
#: ... and at least this fraction of them positive; otherwise the pixel is treated as
#: background-removed (its pre-edge mean is subtracted instead).
MIN_POSITIVE_FRACTION = 0.8

#: The power-law fit sums its window into at most about this many bins of equal
#: width and fits the logarithms of the bin means (see :func:`power_law_sums`).
FIT_BINS = 16

#: Smallest normal float64: a fitted amplitude below it has lost its precision.
_TINY = float(np.finfo(np.float64).tiny)

NORMALISE_INTEGRAL = 0
NORMALISE_MEAN = 1

#: Fast-math flags of the row kernels: reassociation lets sums vectorise. Not
#: ``nnan``/``ninf``: NaN and inf must still propagate (the checks use them).
_FAST = {"reassoc", "contract", "nsz", "arcp"}


@njit(cache=True, nogil=True, fastmath=_FAST)
def fit_log_log_row(
    row: np.ndarray, log_energy: np.ndarray, x_ref: float, lo: int, hi: int
) -> tuple[int, float, float, bool, float, float, float, float, float, float, float]:
    """Log-log least-squares line through channels ``[lo, hi)`` of one spectrum.

    The window is cut in bins of ``max(1, (hi - lo) // FIT_BINS)`` channels; the
    positive channels of each bin make one point ``(x, y) = (mean log E - x_ref,
    log mean count)`` of weight equal to their number (zero, negative and
    non-finite channels are left out, as in a per-channel log-log fit). Binning
    takes one logarithm per bin, not per channel (the fit's cost), and the log of a
    mean is less biased by counting noise than the mean of logs. The mean of a
    power law over a bin exceeds its value at the bin's mean log-energy by the
    factor ``exp(b**2 V / 2)`` (``V`` the bin's variance of log E, ``b`` the
    slope), so the fit is solved, its points corrected by ``b**2 V / 2``, and solved
    again: a noise-free power law is then fitted to about 1e-12.

    Returns
    -------
    n_win, total, total2
        Finite channels in the window, their sum and sum of squares.
    ok
        Whether the line was fitted: at least :data:`MIN_FIT_CHANNELS` positive
        channels making :data:`MIN_POSITIVE_FRACTION` of the window, in two bins
        or more, and a finite result.
    intercept, slope
        ``log B = intercept + slope * (log E - x_ref)``.
    level
        Weighted mean of the points' ``y`` (log of the typical count).
    log_var
        Variance of one channel's log count about the line.
    var_intercept, var_slope, covariance
        Covariance of ``intercept`` and ``slope``.
    """
    width = max(1, (hi - lo) // FIT_BINS)
    n_win = 0
    total = 0.0
    total2 = 0.0
    n_pos = 0.0
    n_bins = 0
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    sxy = 0.0
    syy = 0.0
    sv = 0.0
    sxv = 0.0
    syv = 0.0
    svv = 0.0
    for start in range(lo, hi, width):
        count = 0
        bin_sum = 0.0
        bin_x = 0.0
        bin_xx = 0.0
        # Branch-free over slices (indices from 0, no wraparound): it vectorises.
        # ``v - v`` is 0 for a finite value, NaN otherwise.
        part = row[start : min(start + width, hi)]
        part_x = log_energy[start : min(start + width, hi)]
        base = part_x[0]
        for k in range(part.size):
            v = float(part[k])
            finite = v - v == 0.0
            positive = finite & (v > 0.0)
            n_win += finite
            total += v if finite else 0.0
            total2 += v * v if finite else 0.0
            count += positive
            bin_sum += v if positive else 0.0
            d = part_x[k] - base
            bin_x += d if positive else 0.0
            bin_xx += d * d if positive else 0.0
        if count == 0:
            continue
        w = float(count)
        mean_d = bin_x / count
        x = log_energy[start] + mean_d - x_ref
        variance = max(bin_xx / count - mean_d * mean_d, 0.0)
        y = np.log(bin_sum / count)
        n_pos += w
        n_bins += 1
        sx += w * x
        sy += w * y
        sxx += w * x * x
        sxy += w * x * y
        syy += w * y * y
        sv += w * variance
        sxv += w * x * variance
        syv += w * y * variance
        svv += w * variance * variance
    nan = np.nan
    denominator = n_pos * sxx - sx * sx
    if not (
        n_pos >= MIN_FIT_CHANNELS
        and n_pos >= MIN_POSITIVE_FRACTION * n_win
        and n_bins >= 2
        and denominator > 0.0
    ):
        return n_win, total, total2, False, nan, nan, nan, nan, nan, nan, nan
    slope = (n_pos * sxy - sx * sy) / denominator
    # The bins' curvature correction (zero with one channel per bin).
    half = 0.5 * slope * slope
    syy += half * (half * svv - 2.0 * syv)
    sy -= half * sv
    sxy -= half * sxv
    slope = (n_pos * sxy - sx * sy) / denominator
    intercept = (sy - slope * sx) / n_pos
    if not (np.isfinite(slope) and np.isfinite(intercept)):
        return n_win, total, total2, False, nan, nan, nan, nan, nan, nan, nan
    rss = syy - intercept * sy - slope * sxy
    log_var = max(rss, 0.0) / max(n_bins - 2, 1)
    return (
        n_win,
        total,
        total2,
        True,
        intercept,
        slope,
        sy / n_pos,
        log_var,
        log_var * sxx / denominator,
        log_var * n_pos / denominator,
        -log_var * sx / denominator,
    )


@njit(cache=True, nogil=True)
def fit_power_law_background(
    energy: np.ndarray, spectra: np.ndarray, start: float, end: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``A * E**-r`` over a pre-edge window by log-log least squares.

    The window is summed in about :data:`FIT_BINS` bins first
    (:func:`fit_log_log_row`).

    Channels that are zero, negative or not finite are left out of the fit. A pixel
    with too few positive channels in the window (a spectrum whose background was
    already removed, or an empty pixel), or whose fitted amplitude is not a finite,
    positive, normal float (an exponent beyond about ±100, from spikes or dead
    channels), falls back to a constant equal to the window's mean.

    Parameters
    ----------
    energy
        Energy axis in eV, shape ``(channels,)``, increasing.
    spectra
        Spectra, shape ``(pixels, channels)``.
    start, end
        Pre-edge window in eV.

    Returns
    -------
    amplitude, exponent
        ``A`` and ``r`` per pixel; for the constant fall-back ``A`` is the constant
        and ``r`` is 0.
    offset
        The constant of the fall-back (0 for a power-law fit).
    status
        :data:`FIT_POWER_LAW`, :data:`FIT_CONSTANT` or :data:`FIT_FAILED` (no finite
        channel in the window: all outputs NaN).

    Examples
    --------
    >>> import numpy as np
    >>> e = np.linspace(680.0, 740.0, 601)
    >>> s = (3e9 * e**-3.0)[None, :]
    >>> a, r, c, status = fit_power_law_background(e, s, 680.0, 700.0)
    >>> round(float(r[0]), 6), int(status[0])
    (3.0, 0)
    """
    n_pix, n_ch = spectra.shape
    amplitude = np.full(n_pix, np.nan)
    exponent = np.full(n_pix, np.nan)
    offset = np.full(n_pix, np.nan)
    status = np.full(n_pix, FIT_FAILED, dtype=np.int8)
    lo = np.searchsorted(energy, start, side="left")
    hi = np.searchsorted(energy, end, side="right")
    # log(E) varies by ~2 % over a pre-edge window: centre it, or the normal
    # equations lose most of their digits to cancellation.
    x_ref = np.log(0.5 * (energy[min(lo, n_ch - 1)] + energy[max(hi - 1, 0)]))
    log_energy = np.log(energy)
    for p in range(n_pix):
        n_win, total, _, ok, intercept, slope, _, _, _, _, _ = fit_log_log_row(
            spectra[p], log_energy, x_ref, lo, hi
        )
        if n_win == 0:
            continue
        if ok:
            intercept -= slope * x_ref
            scale = np.exp(intercept)
            # An amplitude (referred to 1 eV) that over- or underflows (or is
            # subnormal, with few significant bits) means an unphysical exponent
            # (|r| > ~100, from spikes or dead channels in the window): it would
            # subtract inf, nothing or noise, so fall back instead.
            if np.isfinite(slope) and np.isfinite(scale) and scale >= _TINY:
                amplitude[p] = scale
                exponent[p] = -slope
                offset[p] = 0.0
                status[p] = FIT_POWER_LAW
                continue
        amplitude[p] = total / n_win
        exponent[p] = 0.0
        offset[p] = total / n_win
        status[p] = FIT_CONSTANT
    return amplitude, exponent, offset, status


@njit(cache=True, nogil=True)
def subtract_power_law_background(
    energy: np.ndarray, spectra: np.ndarray, start: float, end: float
) -> np.ndarray:
    """Subtract a power-law background fitted over ``[start, end]`` eV.

    See :func:`fit_power_law_background` for the fit and its fall-back for spectra
    whose background is already removed. Pixels with no finite channel in the window
    come back as NaN.

    Returns
    -------
    numpy.ndarray
        Background-subtracted spectra, shape ``(pixels, channels)``, float64.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.linspace(690.0, 740.0, 501)
    >>> edge = np.where(e > 708.0, 50.0, 0.0)
    >>> s = (1e10 * e**-3.2 + edge)[None, :]
    >>> out = subtract_power_law_background(e, s, 690.0, 705.0)
    >>> bool(np.allclose(out[0], edge, atol=1e-6))
    True
    """
    amplitude, exponent, offset, status = fit_power_law_background(
        energy, spectra, start, end
    )
    n_pix, n_ch = spectra.shape
    log_energy = np.log(energy)
    out = np.empty((n_pix, n_ch))
    for p in range(n_pix):
        if status[p] == FIT_FAILED:
            out[p, :] = np.nan
        elif status[p] == FIT_CONSTANT:
            for k in range(n_ch):
                out[p, k] = spectra[p, k] - offset[p]
        else:
            log_amplitude = np.log(amplitude[p])
            r = exponent[p]
            for k in range(n_ch):
                out[p, k] = spectra[p, k] - np.exp(log_amplitude - r * log_energy[k])
    return out


@njit(cache=True, nogil=True)
def subtract_pre_edge_mean(
    energy: np.ndarray, spectra: np.ndarray, start: float, end: float
) -> np.ndarray:
    """Subtract each spectrum's mean over ``[start, end]`` eV.

    The treatment of spectra whose background is already removed: only a residual
    constant offset is taken away. Pixels with no finite channel in the window, or
    a window off the axis, are left as they are.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.linspace(700.0, 730.0, 301)
    >>> s = np.where(e > 708.0, 5.0, 0.0)[None, :] + 0.5
    >>> out = subtract_pre_edge_mean(e, s, 700.0, 703.0)
    >>> float(out[0, 0]), float(out[0, -1])
    (0.0, 5.0)
    """
    n_pix, n_ch = spectra.shape
    lo = np.searchsorted(energy, start, side="left")
    hi = np.searchsorted(energy, end, side="right")
    out = np.empty((n_pix, n_ch))
    for p in range(n_pix):
        total = 0.0
        count = 0
        for k in range(lo, hi):
            if np.isfinite(spectra[p, k]):
                total += spectra[p, k]
                count += 1
        level = total / count if count > 0 else 0.0
        for k in range(n_ch):
            out[p, k] = spectra[p, k] - level
    return out


@njit(cache=True, nogil=True)
def resampling_weights(
    energy: np.ndarray, grid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The linear map from input channels to output bin means, in banded form.

    Output channel ``j`` is ``sum(weights[j, i] * spectrum[first[j] + i])``: the
    mean over its bin (edges half-way between grid points, clipped to the input
    axis) of the piecewise-linear spectrum. Output channels whose centre lies
    outside the input axis get ``first = -1``.

    Returns
    -------
    first
        First input channel of each output bin, shape ``(m,)``.
    weights
        Shape ``(m, width)``, zero-padded.
    """
    m = grid.size
    n_ch = energy.size
    edges = np.empty(m + 1)
    for j in range(1, m):
        edges[j] = 0.5 * (grid[j - 1] + grid[j])
    if m > 1:
        edges[0] = grid[0] - 0.5 * (grid[1] - grid[0])
        edges[m] = grid[m - 1] + 0.5 * (grid[m - 1] - grid[m - 2])
    else:
        edges[0] = grid[0]
        edges[1] = grid[0]
    for j in range(m + 1):
        edges[j] = min(max(edges[j], energy[0]), energy[n_ch - 1])
    first = np.full(m, -1, dtype=np.int64)
    last = np.full(m, -1, dtype=np.int64)
    for j in range(m):
        if grid[j] < energy[0] or grid[j] > energy[n_ch - 1]:
            continue
        k = np.searchsorted(energy, edges[j], side="right") - 1
        first[j] = min(max(k, 0), n_ch - 2)
        k_end = np.searchsorted(energy, edges[j + 1], side="left")
        last[j] = min(max(k_end, first[j] + 1), n_ch - 1)
    width = 2
    for j in range(m):
        if first[j] >= 0:
            width = max(width, last[j] - first[j] + 1)
    weights = np.zeros((m, width))
    for j in range(m):
        k0 = first[j]
        if k0 < 0:
            continue
        a = edges[j]
        b = edges[j + 1]
        if b - a <= 0.0:
            # A zero-width bin (single-point grid): the interpolated value.
            t = (a - energy[k0]) / (energy[k0 + 1] - energy[k0])
            weights[j, 0] = 1.0 - t
            weights[j, 1] = t
            continue
        for k in range(k0, last[j]):
            u = max(a, energy[k])
            v = min(b, energy[k + 1])
            if v <= u:
                continue
            step = energy[k + 1] - energy[k]
            tu = (u - energy[k]) / step
            tv = (v - energy[k]) / step
            half = 0.5 * (v - u) / (b - a)
            weights[j, k - k0] += half * ((1.0 - tu) + (1.0 - tv))
            weights[j, k + 1 - k0] += half * (tu + tv)
    return first, weights


@njit(cache=True, nogil=True)
def resample_spectra(
    energy: np.ndarray, spectra: np.ndarray, grid: np.ndarray
) -> np.ndarray:
    """Resample spectra onto a new energy grid, conserving intensity.

    Each output channel is the mean of the piecewise-linear input spectrum over the
    output channel's bin (edges half-way between grid points). Coarser output grids
    thus average input channels (as rebinning does) and finer ones interpolate
    linearly; the input axis may be non-uniform. Output channels whose centre lies
    outside the input axis are NaN; a NaN input channel spoils only the output
    channels whose bins touch it.

    Parameters
    ----------
    energy
        Input energy axis, shape ``(channels,)``, strictly increasing.
    spectra
        Input spectra, shape ``(pixels, channels)``.
    grid
        Output energy axis, shape ``(m,)``, strictly increasing.

    Returns
    -------
    numpy.ndarray
        Shape ``(pixels, m)``, float64.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.array([700.0, 700.5, 702.0, 703.0])
    >>> s = 2.0 * e[None, :] - 1400.0          # a straight line is kept exactly
    >>> resample_spectra(e, s, np.array([700.5, 701.5, 702.5]))
    array([[1., 3., 5.]])
    """
    first, weights = resampling_weights(energy, grid)
    n_pix = spectra.shape[0]
    m, width = weights.shape
    n_ch = energy.size
    out = np.empty((n_pix, m))
    for p in range(n_pix):
        for j in range(m):
            k0 = first[j]
            if k0 < 0:
                out[p, j] = np.nan
                continue
            total = 0.0
            for i in range(min(width, n_ch - k0)):
                w = weights[j, i]
                if w != 0.0:
                    total += w * spectra[p, k0 + i]
            out[p, j] = total
    return out


@njit(cache=True, nogil=True)
def normalise_spectra(
    energy: np.ndarray, spectra: np.ndarray, start: float, end: float, mode: int
) -> np.ndarray:
    """Normalise each spectrum by its intensity in ``[start, end]`` eV.

    Parameters
    ----------
    energy
        Energy axis, shape ``(channels,)``.
    spectra
        Spectra, shape ``(pixels, channels)``.
    start, end
        Window in eV: the white lines (L3 + L2 integral) or a post-edge window
        (edge step).
    mode
        :data:`NORMALISE_INTEGRAL`: divide by the trapezoid integral over the
        window (the L3 + L2 white-line integral, eV units). :data:`NORMALISE_MEAN`:
        divide by the mean over the window (the edge step when the window is past
        the L2 line).

    Returns
    -------
    numpy.ndarray
        Normalised spectra; a pixel whose norm is not positive and finite is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.linspace(700.0, 730.0, 301)
    >>> s = np.ones((1, e.size)) * 4.0
    >>> float(normalise_spectra(e, s, 705.0, 725.0, NORMALISE_INTEGRAL)[0, 0])
    0.05
    """
    n_pix, n_ch = spectra.shape
    lo = np.searchsorted(energy, start, side="left")
    hi = np.searchsorted(energy, end, side="right")
    out = np.empty((n_pix, n_ch))
    for p in range(n_pix):
        norm = 0.0
        if mode == NORMALISE_INTEGRAL:
            for k in range(lo + 1, hi):
                norm += (
                    0.5
                    * (spectra[p, k] + spectra[p, k - 1])
                    * (energy[k] - energy[k - 1])
                )
        else:
            count = 0
            for k in range(lo, hi):
                norm += spectra[p, k]
                count += 1
            norm = norm / count if count > 0 else np.nan
        if np.isfinite(norm) and norm > 0.0:
            for k in range(n_ch):
                out[p, k] = spectra[p, k] / norm
        else:
            out[p, :] = np.nan
    return out


@njit(cache=True, nogil=True)
def gaussian_smooth(
    energy: np.ndarray, spectra: np.ndarray, sigma: float
) -> np.ndarray:
    """Smooth spectra with a Gaussian of standard deviation ``sigma`` eV.

    Works on non-uniform axes (weights from the actual energies, truncated at
    4 sigma, computed once for all pixels). Non-finite channels are left out and
    the remaining weights renormalised.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.linspace(700.0, 710.0, 101)
    >>> s = np.full((1, e.size), 3.0)
    >>> bool(np.allclose(gaussian_smooth(e, s, 0.5), 3.0))
    True
    """
    n_pix, n_ch = spectra.shape
    out = np.empty((n_pix, n_ch))
    if sigma <= 0.0:
        for p in range(n_pix):
            for k in range(n_ch):
                out[p, k] = spectra[p, k]
        return out
    reach = 4.0 * sigma
    lo = np.empty(n_ch, dtype=np.int64)
    hi = np.empty(n_ch, dtype=np.int64)
    width = 1
    for k in range(n_ch):
        lo[k] = np.searchsorted(energy, energy[k] - reach, side="left")
        hi[k] = np.searchsorted(energy, energy[k] + reach, side="right")
        width = max(width, hi[k] - lo[k])
    weights = np.zeros((n_ch, width))
    for k in range(n_ch):
        for i in range(lo[k], hi[k]):
            d = (energy[i] - energy[k]) / sigma
            weights[k, i - lo[k]] = np.exp(-0.5 * d * d)
    for p in range(n_pix):
        for k in range(n_ch):
            total = 0.0
            norm = 0.0
            for i in range(lo[k], hi[k]):
                v = spectra[p, i]
                if np.isfinite(v):
                    w = weights[k, i - lo[k]]
                    total += w * v
                    norm += w
            out[p, k] = total / norm if norm > 0.0 else np.nan
    return out


@njit(cache=True, nogil=True)
def l3_peak_position(
    energy: np.ndarray,
    spectra: np.ndarray,
    start: float,
    end: float,
    sigma: float,
    peak_reach: float,
) -> np.ndarray:
    """Locate the Fe L3 white-line maximum of each spectrum.

    The spectrum is smoothed (Gaussian, ``sigma`` eV); the L3 onset is the steepest
    rise within ``[start, end]`` (which works on raw counts, whose pre-edge
    background falls, as well as on background-removed spectra); the L3 maximum is
    the highest smoothed point within ``peak_reach`` eV above the onset, refined to
    sub-channel precision by a parabola through it and its neighbours.

    Parameters
    ----------
    energy
        Energy axis, shape ``(channels,)``.
    spectra
        Spectra, shape ``(pixels, channels)``.
    start, end
        Where to search for the L3 onset, eV.
    sigma
        Smoothing, eV (0.3–0.5 eV suits 0.05–0.2 eV channels and noisy pixels).
    peak_reach
        How far above the onset the maximum may lie, eV (4 eV covers the Fe2+ and
        Fe3+ main L3 peaks but not L2).

    Returns
    -------
    numpy.ndarray
        L3 maximum in eV per pixel; NaN where no rising edge is found.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.linspace(700.0, 730.0, 601)
    >>> s = 1 / (1 + ((e - 709.5) / 0.5) ** 2) + 0.4 / (1 + ((e - 722.3) / 0.7) ** 2)
    >>> round(float(l3_peak_position(e, s[None, :], 700.0, 716.0, 0.2, 4.0)[0]), 2)
    709.5
    """
    n_pix = spectra.shape[0]
    out = np.full(n_pix, np.nan)
    # Smooth only the part of the axis the search reads (with a 4-sigma margin).
    margin = 4.0 * max(sigma, 0.0)
    i0 = max(np.searchsorted(energy, start - margin, side="left") - 1, 0)
    i1 = np.searchsorted(energy, end + peak_reach + margin, side="right") + 1
    i1 = min(i1, energy.size)
    axis = energy[i0:i1]
    n_ch = axis.size
    if n_ch < 3:
        return out
    smooth = gaussian_smooth(axis, spectra[:, i0:i1], sigma)
    lo = max(np.searchsorted(axis, start, side="left"), 1)
    hi = min(np.searchsorted(axis, end, side="right"), n_ch - 1)
    for p in range(n_pix):
        best = 0.0
        onset = -1
        for k in range(lo, hi):
            a = smooth[p, k - 1]
            b = smooth[p, k + 1]
            if not (np.isfinite(a) and np.isfinite(b)):
                continue
            slope = (b - a) / (axis[k + 1] - axis[k - 1])
            if slope > best:
                best = slope
                onset = k
        if onset < 0:
            continue
        stop = np.searchsorted(axis, axis[onset] + peak_reach, side="right")
        stop = min(stop, n_ch)
        peak = onset
        for k in range(onset, stop):
            if smooth[p, k] > smooth[p, peak]:
                peak = k
        position = axis[peak]
        if 0 < peak < n_ch - 1:
            x0 = axis[peak - 1]
            x1 = axis[peak]
            x2 = axis[peak + 1]
            y0 = smooth[p, peak - 1]
            y1 = smooth[p, peak]
            y2 = smooth[p, peak + 1]
            # Vertex of the parabola through three (possibly unevenly spaced) points.
            d0 = (y1 - y0) / (x1 - x0)
            d1 = (y2 - y1) / (x2 - x1)
            curvature = (d1 - d0) / (x2 - x0)
            if curvature < 0.0:
                vertex = 0.5 * (x0 + x1) - d0 / (2.0 * curvature)
                if x0 <= vertex <= x2:
                    position = vertex
        out[p] = position
    return out


@njit(cache=True, nogil=True)
def preprocess_spectra(
    energy: np.ndarray,
    spectra: np.ndarray,
    pre_start: float,
    pre_end: float,
    power_law: bool,
    grid: np.ndarray,
    norm_start: float,
    norm_end: float,
    norm_mode: int,
) -> np.ndarray:
    """Background removal, resampling and normalisation, fused for one block.

    :func:`subtract_power_law_background` (or :func:`subtract_pre_edge_mean` when
    ``power_law`` is false), then :func:`resample_spectra` onto ``grid``, then
    :func:`normalise_spectra` on the grid — one pass, no intermediate arrays
    outside the block.

    Returns
    -------
    numpy.ndarray
        Shape ``(pixels, grid.size)``.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(690.0, 740.0, 0.1)
    >>> s = (1e10 * e**-3.0 + np.where(e > 708.0, 5.0, 0.0))[None, :]
    >>> grid = np.arange(700.0, 730.0, 0.5)
    >>> out = preprocess_spectra(e, s, 690.0, 704.0, True, grid, 704.0, 727.0, 0)
    >>> out.shape, round(float(np.trapezoid(out[0, 8:55], grid[8:55])), 6)
    ((1, 60), 1.0)
    """
    if power_law:
        clean = subtract_power_law_background(energy, spectra, pre_start, pre_end)
    else:
        clean = subtract_pre_edge_mean(energy, spectra, pre_start, pre_end)
    resampled = resample_spectra(energy, clean, grid)
    return normalise_spectra(grid, resampled, norm_start, norm_end, norm_mode)


@njit(cache=True, nogil=True)
def l3_centroid(
    energy: np.ndarray,
    spectra: np.ndarray,
    start: float,
    end: float,
    half_width: float,
    iterations: int,
) -> np.ndarray:
    """Intensity centroid of the Fe L3 white line of each spectrum.

    The centroid of the positive intensity in ``[start, end]``, then
    ``iterations`` times re-centred on a window of ``± half_width`` eV around the
    previous centroid, which settles on L3 whatever the energy offset (within a few
    eV) and averages over noise far better than a maximum does.

    Parameters
    ----------
    energy
        Energy axis, eV, shape ``(channels,)``.
    spectra
        Background-free spectra, shape ``(pixels, channels)``.
    start, end
        First window, eV (the L3 line and not L2: e.g. 702–716 eV).
    half_width
        Half-width of the re-centred windows, eV.
    iterations
        Re-centring steps.

    Returns
    -------
    numpy.ndarray
        Centroid per spectrum, eV; NaN when a window holds no positive intensity.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(700.0, 730.0, 0.1)
    >>> s = np.exp(-0.5 * ((e - 709.3) / 0.7) ** 2)
    >>> s += 0.5 * np.exp(-0.5 * ((e - 722.0) / 0.8) ** 2)
    >>> round(float(l3_centroid(e, s[None, :], 702.0, 716.0, 5.0, 3)[0]), 3)
    709.3
    """
    n_pix = spectra.shape[0]
    out = np.full(n_pix, np.nan)
    for p in range(n_pix):
        out[p] = l3_centroid_row(energy, spectra[p], start, end, half_width, iterations)
    return out


@njit(cache=True, nogil=True, fastmath=_FAST)
def l3_centroid_row(
    energy: np.ndarray,
    row: np.ndarray,
    start: float,
    end: float,
    half_width: float,
    iterations: int,
) -> float:
    """:func:`l3_centroid` of one spectrum (NaN when no positive intensity)."""
    lo_e = start
    hi_e = end
    centre = np.nan
    for _ in range(iterations + 1):
        lo = np.searchsorted(energy, lo_e, side="left")
        hi = np.searchsorted(energy, hi_e, side="right")
        total = 0.0
        moment = 0.0
        # Branch-free over slices (it vectorises); ``0 < v < inf``: finite and
        # positive.
        part = row[lo:hi]
        part_e = energy[lo:hi]
        for k in range(part.size):
            v = part[k]
            w = v if (v > 0.0) & (v < np.inf) else 0.0
            total += w
            moment += w * part_e[k]
        if total <= 0.0:
            return np.nan
        centre = moment / total
        lo_e = centre - half_width
        hi_e = centre + half_width
    return centre
