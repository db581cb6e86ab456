"""Augmentation kernels: what a real measurement adds to a simulated Fe L2,3 edge.

Pure functions on arrays, batched over spectra: ``energy`` is the 1-D energy axis in
eV (strictly increasing, uniform or not), ``spectra`` a 2-D ``(n, channels)`` float64
array of background-free Fe L2,3 edges, and every per-spectrum parameter an array of
shape ``(n,)``. Each kernel returns a new array and never modifies its input.

The kernels draw no random numbers: numba's random state is global per thread and not
reproducible across Dask workers. Random parameters and noise are drawn by a seeded
:class:`numpy.random.Generator` in the thin NumPy functions :func:`add_noise` and
:func:`augment_batch`, and handed to the kernels, so a seed gives the same batch
whatever the scheduler.

:func:`augment_batch` applies, in the order a measurement does:

1. :func:`plural_scattering` — in the sample (t/λ 0–1);
2. :func:`gaussian_broadening` — spectrometer resolution (FWHM 0.2–1.5 eV), and
   optionally :func:`exponential_tail`, the source's tail towards higher loss;
3. :func:`distort_energy_scale` — offset, dispersion error, non-linearity;
4. :func:`add_noise` — Poisson counts on the edge plus the background under it,
   detector gain and read noise (kernels :func:`expected_counts`, :func:`read_out`);
5. :func:`add_spikes` — X-ray hits on the detector;
6. :func:`background_artefacts` — what an imperfect background subtraction leaves, or
   (the reverse case) a spectrum handed in already background-removed with an
   arbitrary scale;
7. optionally :func:`~hyperspy_fe_ml.kernels.preprocess.normalise_spectra` over the
   white-line window, as the preprocessing does.
"""

import math
from dataclasses import dataclass, fields

import numpy as np
from numba import njit

from hyperspy_fe_ml.kernels.preprocess import NORMALISE_INTEGRAL, normalise_spectra

__all__ = [
    "AugmentationSettings",
    "add_noise",
    "add_spikes",
    "augment_batch",
    "background_artefacts",
    "distort_energy_scale",
    "drude_loss_weights",
    "expected_counts",
    "exponential_tail",
    "gaussian_broadening",
    "plural_scattering",
    "read_out",
]

#: FWHM = this factor times the standard deviation of a Gaussian, 2 sqrt(2 ln 2).
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: Gaussian broadening kernels are cut at this many standard deviations.
GAUSS_CUTOFF_SIGMA = 4.0
#: Relative spread of the channel widths below which an axis counts as uniform.
UNIFORM_TOLERANCE = 1e-6
#: Non-uniform axes are resampled for the plural-scattering convolution onto a
#: uniform grid of at most this many times their channel count.
MAX_UNIFORM_OVERSAMPLING = 4


@njit(cache=True, nogil=True)
def _is_uniform(energy: np.ndarray) -> bool:
    n = energy.size
    if n < 3:
        return True
    step = (energy[n - 1] - energy[0]) / (n - 1)
    for k in range(1, n):
        if abs(energy[k] - energy[k - 1] - step) > UNIFORM_TOLERANCE * step:
            return False
    return True


@njit(cache=True, nogil=True)
def _interpolate_row(
    x: np.ndarray, y: np.ndarray, at: np.ndarray, out: np.ndarray
) -> None:
    # Linear interpolation of (x, y) at the points ``at``, holding the end values
    # beyond x. A pointer walk: O(n) for increasing ``at``, correct for any order.
    n = x.size
    j = 0
    for k in range(at.size):
        v = at[k]
        if v <= x[0]:
            out[k] = y[0]
            continue
        if v >= x[n - 1]:
            out[k] = y[n - 1]
            continue
        while j > 0 and x[j] > v:
            j -= 1
        while j < n - 2 and x[j + 1] < v:
            j += 1
        t = (v - x[j]) / (x[j + 1] - x[j])
        out[k] = (1.0 - t) * y[j] + t * y[j + 1]


# -- energy scale ---------------------------------------------------------------------


@njit(cache=True, nogil=True)
def distort_energy_scale(
    energy: np.ndarray,
    spectra: np.ndarray,
    offset: np.ndarray,
    dispersion: np.ndarray,
    quadratic: np.ndarray,
    reference: float,
) -> np.ndarray:
    """Resample spectra as a mis-calibrated energy axis records them.

    Channel ``E`` of the result holds the intensity the spectrum has at the true
    energy ``E' = E0 + (1 + d)(E - E0) + q (E - E0)**2 + offset`` (linear
    interpolation). A feature at true energy ``Et`` therefore appears where
    ``E'(E) = Et``: a positive offset moves features *down* by ``offset``, a positive
    dispersion error ``d`` squeezes them towards ``E0`` by ``1 / (1 + d)``, and ``q``
    bends the scale. Beyond the axis the end values are held: the pre-edge level
    below, the continuum (which goes on past the edge) above.

    Parameters
    ----------
    energy
        Energy axis in eV, shape ``(channels,)``, increasing.
    spectra
        Spectra, shape ``(n, channels)``.
    offset
        Energy offset per spectrum, eV, shape ``(n,)``.
    dispersion
        Relative dispersion error ``d`` per spectrum (0.01 = 1 %), shape ``(n,)``.
    quadratic
        Non-linearity ``q`` per spectrum, 1/eV, shape ``(n,)``.
    reference
        ``E0``, eV: the energy the dispersion error and non-linearity pivot on.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, channels)``.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(700.0, 730.0, 0.1)
    >>> s = np.exp(-0.5 * ((e - 710.0) / 0.5) ** 2)[None, :]
    >>> out = distort_energy_scale(e, s, np.array([1.3]), np.zeros(1), np.zeros(1),
    ...                            710.0)
    >>> round(float((out[0] * e).sum() / out[0].sum()), 3)
    708.7
    """
    n, n_ch = spectra.shape
    out = np.empty((n, n_ch))
    at = np.empty(n_ch)
    for p in range(n):
        d = dispersion[p]
        q = quadratic[p]
        off = offset[p]
        for k in range(n_ch):
            x = energy[k] - reference
            at[k] = reference + (1.0 + d) * x + q * x * x + off
        _interpolate_row(energy, spectra[p], at, out[p])
    return out


# -- resolution -----------------------------------------------------------------------


@njit(cache=True, nogil=True)
def gaussian_broadening(
    energy: np.ndarray, spectra: np.ndarray, fwhm: np.ndarray
) -> np.ndarray:
    """Convolve each spectrum with a Gaussian of its own FWHM.

    The Gaussian is sampled at the channel energies, cut at
    :data:`GAUSS_CUTOFF_SIGMA` standard deviations and normalised to unit sum, so
    area is conserved (exactly on a uniform axis, where the kernel is the same for
    every channel) and a constant stays constant. Beyond the axis the end values
    are held (pre-edge level below, continuum above), so the ends are not pulled
    down. On a non-uniform axis each channel weighs by its width and the parts of
    the Gaussian beyond the axis are added analytically at the end values.

    Parameters
    ----------
    energy
        Energy axis in eV, shape ``(channels,)``, increasing.
    spectra
        Spectra, shape ``(n, channels)``.
    fwhm
        Gaussian FWHM per spectrum, eV, shape ``(n,)``; 0 (or less) copies the
        spectrum.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, channels)``.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(700.0, 730.0, 0.1)
    >>> s = np.exp(-0.5 * ((e - 710.0) / 0.3) ** 2)[None, :]
    >>> out = gaussian_broadening(e, s, np.array([1.0]))
    >>> x = e - 710.0
    >>> round(float(np.sqrt((out[0] * x**2).sum() / out[0].sum())), 3)  # 0.3 (+) 0.425
    0.52
    """
    n, n_ch = spectra.shape
    out = np.empty((n, n_ch))
    if n_ch < 2:
        out[:, :] = spectra
        return out
    uniform = _is_uniform(energy)
    step = (energy[n_ch - 1] - energy[0]) / (n_ch - 1)
    width = np.empty(n_ch)
    for k in range(n_ch):
        left = energy[k] - energy[k - 1] if k > 0 else energy[1] - energy[0]
        right = energy[k + 1] - energy[k] if k < n_ch - 1 else energy[k] - energy[k - 1]
        width[k] = 0.5 * (left + right)
    lower = energy[0] - 0.5 * width[0]
    upper = energy[n_ch - 1] + 0.5 * width[n_ch - 1]
    taps = np.empty(0)
    for p in range(n):
        sigma = fwhm[p] / FWHM_PER_SIGMA
        row = spectra[p]
        if not sigma > 0.0:
            out[p, :] = row
            continue
        reach = GAUSS_CUTOFF_SIGMA * sigma
        if uniform:
            m = int(reach / step)
            if taps.size < 2 * m + 1:
                taps = np.empty(2 * m + 1)
            norm = 0.0
            for j in range(-m, m + 1):
                d = j * step / sigma
                taps[j + m] = math.exp(-0.5 * d * d)
                norm += taps[j + m]
            for j in range(2 * m + 1):
                taps[j] /= norm
            first = row[0]
            last = row[n_ch - 1]
            for k in range(n_ch):
                total = 0.0
                if m <= k < n_ch - m:
                    for j in range(2 * m + 1):
                        total += taps[j] * row[k + j - m]
                else:
                    for j in range(2 * m + 1):
                        i = k + j - m
                        if i < 0:
                            v = first
                        elif i >= n_ch:
                            v = last
                        else:
                            v = row[i]
                        total += taps[j] * v
                out[p, k] = total
            continue
        root2 = math.sqrt(2.0) * sigma
        for k in range(n_ch):
            ek = energy[k]
            lo = np.searchsorted(energy, ek - reach, side="left")
            hi = np.searchsorted(energy, ek + reach, side="right")
            total = 0.0
            norm = 0.0
            for i in range(lo, hi):
                d = (energy[i] - ek) / sigma
                w = math.exp(-0.5 * d * d) * width[i]
                total += w * row[i]
                norm += w
            # The parts of the (truncated) Gaussian beyond the axis, at the end
            # values; the factor makes them commensurate with the width-weighted sum.
            scale = sigma * math.sqrt(0.5 * math.pi)
            a = ek - reach
            if a < lower:
                w = scale * (
                    math.erf((lower - ek) / root2) - math.erf((a - ek) / root2)
                )
                total += w * row[0]
                norm += w
            b = ek + reach
            if b > upper:
                w = scale * (
                    math.erf((b - ek) / root2) - math.erf((upper - ek) / root2)
                )
                total += w * row[n_ch - 1]
                norm += w
            out[p, k] = total / norm if norm > 0.0 else row[k]
    return out


@njit(cache=True, nogil=True)
def exponential_tail(
    energy: np.ndarray, spectra: np.ndarray, tail: np.ndarray
) -> np.ndarray:
    """Convolve each spectrum with a one-sided exponential towards higher loss.

    The energy distribution of a Schottky or cold field-emission source is not a
    Gaussian: it has a tail towards higher energy loss (Egerton, *Electron
    Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed., 2011, §2.1.1),
    and every edge is convolved with it. After :func:`gaussian_broadening`, this
    makes the resolution function an exponentially modified Gaussian of decay
    length ``tail``. A causal recursive filter, exact for a spectrum constant
    within each channel (any axis): area and a constant are conserved, the
    first channel is held.

    Parameters
    ----------
    energy
        Energy axis in eV, shape ``(channels,)``, increasing.
    spectra
        Spectra, shape ``(n, channels)``.
    tail
        Decay length per spectrum, eV, shape ``(n,)``; 0 (or less) copies.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, channels)``.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(700.0, 730.0, 0.1)
    >>> s = np.exp(-0.5 * ((e - 710.0) / 0.3) ** 2)[None, :]
    >>> out = exponential_tail(e, s, np.array([0.5]))
    >>> centre = lambda y: float((y * e).sum() / y.sum())
    >>> round(centre(out[0]) - centre(s[0]), 2)  # by the tail, less half a channel
    0.45
    """
    n, n_ch = spectra.shape
    out = np.empty((n, n_ch))
    for p in range(n):
        row = spectra[p]
        tau = tail[p]
        if not tau > 0.0 or n_ch < 2:
            out[p, :] = row
            continue
        value = row[0]
        out[p, 0] = value
        for k in range(1, n_ch):
            keep = math.exp(-(energy[k] - energy[k - 1]) / tau)
            value = keep * value + (1.0 - keep) * row[k]
            out[p, k] = value
    return out


# -- plural scattering ----------------------------------------------------------------


@njit(cache=True, nogil=True)
def _drude_antiderivative(e: float, a: float, b: float, c: float) -> float:
    # Antiderivative of E G Ep^2 / ((E^2 - Ep^2)^2 + (E G)^2) in E; with u = E^2 the
    # denominator is (u - a)^2 + b^2, a = Ep^2 - G^2 / 2, b^2 = Ep^2 G^2 - G^4 / 4.
    return c * math.atan((e * e - a) / b)


@njit(cache=True, nogil=True)
def drude_loss_weights(
    step: float, size: int, plasmon_energy: float, plasmon_width: float, onset: float
) -> np.ndarray:
    """Single-scattering distribution of a Drude plasmon, binned at ``step`` eV.

    ``P(E) ∝ E Γ Ep² / ((E² − Ep²)² + (E Γ)²)`` for ``E > onset`` (the Drude
    energy-loss function Im[−1/ε(E)], Egerton, *Electron Energy-Loss Spectroscopy
    in the Electron Microscope*, 3rd ed., Springer 2011, ch. 3), zero below the
    onset (the band gap of an oxide). Bin ``i`` holds the exact integral of the
    normalised ``P`` over ``[(i − ½) step, (i + ½) step]`` (analytic
    antiderivative), so the weights of all bins up to infinity sum to one; the
    ``size`` returned ones sum to one minus the tail beyond ``(size − ½) step``.
    The angular (collection) factor of the single-scattering distribution is left
    out. Needs ``plasmon_width < 2 plasmon_energy`` (an underdamped plasmon).

    Returns
    -------
    numpy.ndarray
        Shape ``(size,)``.

    Examples
    --------
    >>> w = drude_loss_weights(0.1, 3000, 25.0, 8.0, 2.0)
    >>> round(float(w.sum()), 4), round(float(w.argmax() * 0.1), 1)
    (0.9992, 24.7)
    """
    weights = np.zeros(size)
    ep2 = plasmon_energy * plasmon_energy
    g2 = plasmon_width * plasmon_width
    a = ep2 - 0.5 * g2
    b = math.sqrt(max(ep2 * g2 - 0.25 * g2 * g2, 1e-300))
    c = 0.5 * plasmon_width * ep2 / b
    start = max(onset, 0.0)
    total = 0.5 * math.pi * c - _drude_antiderivative(start, a, b, c)
    if not total > 0.0:
        return weights
    previous = _drude_antiderivative(start, a, b, c)
    for i in range(size):
        hi = (i + 0.5) * step
        if hi <= start:
            continue
        current = _drude_antiderivative(hi, a, b, c)
        weights[i] = (current - previous) / total
        previous = current
    return weights


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _poisson_response(
    weighted: np.ndarray, loss_zero: float, t: float, response: np.ndarray
) -> None:
    # R = exp(t (P - 1)) as a power series in the shift operator: the Poisson sum
    # over scattering orders, exact to all orders in O(channels^2 / 2) by
    # j R_j = t sum_i i P_i R_(j-i) (``weighted`` holds i P_i). Reassociating the
    # sum (a few ulp) lets it vectorise.
    response[0] = math.exp(t * (loss_zero - 1.0))
    for j in range(1, response.size):
        acc = 0.0
        for i in range(1, j + 1):
            acc += weighted[i] * response[j - i]
        response[j] = t * acc / j


@njit(cache=True, nogil=True)
def _plural_uniform(
    step: float,
    spectra: np.ndarray,
    thickness: np.ndarray,
    plasmon_energy: np.ndarray,
    plasmon_width: np.ndarray,
    onset: float,
) -> np.ndarray:
    n, n_ch = spectra.shape
    out = np.empty((n, n_ch))
    response = np.empty(n_ch)
    weighted = np.empty(n_ch)
    loss = np.empty(0)
    last_ep = np.nan
    last_gamma = np.nan
    for p in range(n):
        t = thickness[p]
        row = spectra[p]
        if not t > 0.0:
            out[p, :] = row
            continue
        if plasmon_energy[p] != last_ep or plasmon_width[p] != last_gamma:
            loss = drude_loss_weights(
                step, n_ch, plasmon_energy[p], plasmon_width[p], onset
            )
            for i in range(n_ch):
                weighted[i] = i * loss[i]
            last_ep = plasmon_energy[p]
            last_gamma = plasmon_width[p]
        _poisson_response(weighted, loss[0], t, response)
        # Causal convolution; below the axis the spectrum is its first value, which
        # takes the whole response mass beyond the axis (R sums to one).
        first = row[0]
        cumulative = 0.0
        for k in range(n_ch):
            cumulative += response[k]
            out[p, k] = first * max(1.0 - cumulative, 0.0)
        for j in range(n_ch):
            r = response[j]
            if r == 0.0:
                continue
            for k in range(j, n_ch):
                out[p, k] += r * row[k - j]
    return out


@njit(cache=True, nogil=True)
def plural_scattering(
    energy: np.ndarray,
    spectra: np.ndarray,
    thickness: np.ndarray,
    plasmon_energy: np.ndarray,
    plasmon_width: np.ndarray,
    onset: float,
) -> np.ndarray:
    """Plural scattering: convolve with the Poisson series of a plasmon loss.

    ``S_plural = e^(−t) [S + t S⊗P + t²/2! S⊗P⊗P + …]`` with ``t`` = t/λ and ``P``
    the unit-area single-scattering distribution of :func:`drude_loss_weights`.
    What is normalised: ``P`` to unit area, so the response sums to one — the total
    intensity is conserved, the unscattered (zero-loss) part keeps the weight
    ``e^(−t)`` and ``n``-fold scattering the Poisson weight ``e^(−t) tⁿ / n!``. The
    series is summed to all orders at once (the recurrence of a power-series
    exponential).

    Energy loss only raises energies, so what reaches the window comes from below
    it: below the axis the spectrum is taken as its first value (the pre-edge
    level, zero for a background-free edge), which is the axis extended and
    cropped back. The intensity the L3 and L2 lines send 20–30 eV up mostly leaves
    a 30 eV window; what it puts into the window is the rising post-L2 level.
    Non-uniform axes are interpolated onto a uniform grid (at most
    :data:`MAX_UNIFORM_OVERSAMPLING` times as many channels) and back.

    Parameters
    ----------
    energy
        Energy axis in eV, shape ``(channels,)``, increasing.
    spectra
        Spectra, shape ``(n, channels)``.
    thickness
        t/λ per spectrum, shape ``(n,)``; 0 returns the spectrum unchanged.
    plasmon_energy, plasmon_width
        Drude plasmon energy and FWHM per spectrum, eV, shape ``(n,)``. The
        free-electron estimate ``Ep = 28.8 sqrt(z ρ / A)`` eV (Egerton 2011, ch. 3;
        z valence electrons per formula unit of mass A, density ρ in g/cm³) gives
        23.0 eV for FeO, 24.4 eV for Fe3O4 and 25.6 eV for Fe2O3; oxide plasmons
        are broad (FWHM several eV). Spectra with the same values in a row share
        the computation of ``P``.
    onset
        Energy below which ``P`` is zero, eV (the band gap, about 2 eV in
        hematite).

    Returns
    -------
    numpy.ndarray
        Shape ``(n, channels)``.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(700.0, 730.0, 0.1)
    >>> s = np.zeros((1, e.size)); s[0, 50] = 1.0
    >>> out = plural_scattering(e, s, np.array([0.5]), np.array([25.0]),
    ...                         np.array([8.0]), 2.0)
    >>> round(float(out[0, 50]), 4), round(float(np.exp(-0.5)), 4)
    (0.6065, 0.6065)
    """
    n, n_ch = spectra.shape
    if n_ch < 2:
        out = np.empty((n, n_ch))
        out[:, :] = spectra
        return out
    if _is_uniform(energy):
        step = (energy[n_ch - 1] - energy[0]) / (n_ch - 1)
        return _plural_uniform(
            step, spectra, thickness, plasmon_energy, plasmon_width, onset
        )
    span = energy[n_ch - 1] - energy[0]
    finest = np.inf
    for k in range(1, n_ch):
        finest = min(finest, energy[k] - energy[k - 1])
    m = min(int(math.ceil(span / finest)) + 1, MAX_UNIFORM_OVERSAMPLING * n_ch)
    grid = np.empty(m)
    for k in range(m):
        grid[k] = energy[0] + span * k / (m - 1)
    fine = np.empty((n, m))
    for p in range(n):
        _interpolate_row(energy, spectra[p], grid, fine[p])
    fine = _plural_uniform(
        span / (m - 1), fine, thickness, plasmon_energy, plasmon_width, onset
    )
    out = np.empty((n, n_ch))
    for p in range(n):
        if thickness[p] > 0.0:
            _interpolate_row(grid, fine[p], energy, out[p])
        else:
            out[p, :] = spectra[p]
    return out


# -- noise ----------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _background_shape(energy: float, exponent: float, reference: float) -> float:
    return math.exp(-exponent * math.log(energy / reference))


@njit(cache=True, nogil=True)
def expected_counts(
    energy: np.ndarray,
    spectra: np.ndarray,
    dose: np.ndarray,
    background: np.ndarray,
    background_exponent: np.ndarray,
    reference: float,
) -> np.ndarray:
    """Expected electron counts: the edge scaled to a dose, on a power-law background.

    ``λ(E) = dose · S(E) / max(S) + background · dose · (E / reference)^(−r)``.
    The edge (negative values clipped to 0) is scaled so its maximum — the L3 white
    line of a background-free edge — receives ``dose`` electrons. Raw counts sit on
    the background under the edge, and its shot noise stays in the spectrum after
    the background is subtracted; ``background`` is that background at
    ``reference`` as a fraction of the L3 maximum. A spectrum whose maximum is not
    positive and finite (or so small that ``dose / max`` overflows) gives NaN.

    Parameters
    ----------
    energy
        Energy axis in eV, shape ``(channels,)``, increasing.
    spectra
        Background-free edges, shape ``(n, channels)``.
    dose
        Electrons at the L3 maximum per spectrum, shape ``(n,)``.
    background
        Background at ``reference`` as a fraction of the L3 maximum, shape ``(n,)``.
    background_exponent
        Power-law exponent ``r`` of the background, shape ``(n,)``.
    reference
        Energy of ``background``, eV (about the L3 maximum).

    Returns
    -------
    numpy.ndarray
        Shape ``(n, channels)``: the Poisson means.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.array([700.0, 710.0, 720.0])
    >>> s = np.array([[0.0, 2.0, 1.0]])
    >>> expected_counts(e, s, np.array([100.0]), np.array([0.5]), np.array([0.0]),
    ...                 710.0)
    array([[ 50., 150., 100.]])
    """
    n, n_ch = spectra.shape
    out = np.empty((n, n_ch))
    for p in range(n):
        peak = -np.inf
        for k in range(n_ch):
            v = spectra[p, k]
            if np.isfinite(v) and v > peak:
                peak = v
        if not (np.isfinite(peak) and peak > 0.0):
            out[p, :] = np.nan
            continue
        scale = dose[p] / peak
        if not np.isfinite(scale):
            out[p, :] = np.nan
            continue
        level = background[p] * dose[p]
        r = background_exponent[p]
        for k in range(n_ch):
            edge = max(spectra[p, k], 0.0) * scale
            out[p, k] = edge + level * _background_shape(energy[k], r, reference)
    return out


@njit(cache=True, nogil=True)
def read_out(
    energy: np.ndarray,
    counts: np.ndarray,
    gain: np.ndarray,
    read_noise: np.ndarray,
    normals: np.ndarray,
    dose: np.ndarray,
    background: np.ndarray,
    background_exponent: np.ndarray,
    reference: float,
) -> np.ndarray:
    """Detector read-out of electron counts, with the (exact) background removed.

    ``gain · (N − background counts) + read_noise · z``: ``counts`` are the
    Poisson-drawn electrons ``N``, ``normals`` standard normal draws ``z`` of the
    same shape. The background counts are those of :func:`expected_counts`
    (same ``dose``, ``background``, ``background_exponent``, ``reference``), so
    the result has the mean ``gain · dose · S / max(S)`` and the variance
    ``gain² · λ + read_noise²``; what a wrong background model leaves is added
    by :func:`background_artefacts`.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, channels)``, detector counts.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.array([700.0, 710.0])
    >>> n_e = np.array([[60.0, 140.0]])
    >>> read_out(e, n_e, np.array([2.0]), np.array([3.0]), np.array([[1.0, 0.0]]),
    ...          np.array([100.0]), np.array([0.5]), np.array([0.0]), 710.0)
    array([[ 23., 180.]])
    """
    n, n_ch = counts.shape
    out = np.empty((n, n_ch))
    for p in range(n):
        g = gain[p]
        sigma = read_noise[p]
        level = background[p] * dose[p]
        r = background_exponent[p]
        for k in range(n_ch):
            bkg = level * _background_shape(energy[k], r, reference)
            out[p, k] = g * (counts[p, k] - bkg) + sigma * normals[p, k]
    return out


def add_noise(
    energy: np.ndarray,
    spectra: np.ndarray,
    rng: np.random.Generator,
    dose: np.ndarray,
    background: np.ndarray,
    background_exponent: np.ndarray,
    gain: np.ndarray,
    read_noise: np.ndarray,
    reference: float = 708.0,
) -> np.ndarray:
    """Shot noise at a dose, detector gain and read noise (NumPy; draws with ``rng``).

    :func:`expected_counts`, then ``rng.poisson``, then :func:`read_out`. The
    result is in detector counts with the background removed: mean
    ``gain · dose · S / max(S)``, variance ``gain² · λ + read_noise²`` where
    ``λ`` includes the background. The signal-to-noise ratio at the L3 maximum is
    about ``sqrt(dose / (1 + background))`` when the read noise is small. Rows
    whose maximum is not positive come back NaN.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.linspace(700.0, 730.0, 300)
    >>> flat = np.ones((2000, e.size))
    >>> one = np.ones(2000)
    >>> y = add_noise(e, flat, np.random.default_rng(0), 400.0 * one, 0 * one,
    ...               3.0 * one, 2.0 * one, 5.0 * one)
    >>> round(float(y.mean()) / 800.0, 2), round(float(y.var()) / (4 * 400 + 25), 2)
    (1.0, 1.0)
    """
    lam = expected_counts(
        energy, spectra, dose, background, background_exponent, reference
    )
    bad = ~np.isfinite(lam)
    if bad.any():
        lam = np.where(bad, 0.0, lam)
    counts = rng.poisson(lam).astype(np.float64)
    normals = rng.standard_normal(lam.shape)
    out = read_out(
        energy,
        counts,
        gain,
        read_noise,
        normals,
        dose,
        background,
        background_exponent,
        reference,
    )
    if bad.any():
        out[bad] = np.nan
    return out


# -- spikes ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def add_spikes(
    energy: np.ndarray, spectra: np.ndarray, channels: np.ndarray, heights: np.ndarray
) -> np.ndarray:
    """Add single-channel spikes (X-ray hits on the detector).

    Parameters
    ----------
    energy
        Energy axis in eV, shape ``(channels,)`` (only its length is used).
    spectra
        Spectra, shape ``(n, channels)``.
    channels
        Channel index of each spike, shape ``(n, k)`` integers; ``-1`` (or any index
        off the axis) is no spike.
    heights
        Height of each spike, shape ``(n, k)``, in the units of ``spectra``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, channels)``.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(5.0)
    >>> add_spikes(e, np.zeros((1, 5)), np.array([[3, -1]]), np.array([[9.0, 1.0]]))
    array([[0., 0., 0., 9., 0.]])
    """
    n, n_ch = spectra.shape
    out = spectra.copy()
    for p in range(n):
        for j in range(channels.shape[1]):
            c = channels[p, j]
            if 0 <= c < n_ch:
                out[p, c] += heights[p, j]
    return out


# -- background subtraction -----------------------------------------------------------


@njit(cache=True, nogil=True)
def background_artefacts(
    energy: np.ndarray,
    spectra: np.ndarray,
    peak: np.ndarray,
    power_residual: np.ndarray,
    exponent: np.ndarray,
    exponent_error: np.ndarray,
    slope: np.ndarray,
    constant: np.ndarray,
    pre_edge_residual: np.ndarray,
    pre_edge_decay: np.ndarray,
    edge_energy: np.ndarray,
    window_energy: float,
) -> np.ndarray:
    """Add what an imperfect background subtraction leaves behind.

    All magnitudes are signed fractions of ``peak`` (the L3 maximum, in the units
    of ``spectra``):

    * wrong exponent: ``g(E) = (E/Ew)^(−r) − (E/Ew)^(−(r + δr))``, the difference of
      two power laws that agree in the fit window at ``Ew``, scaled so that its
      largest excursion on the axis is ``power_residual``;
    * a leftover linear slope, ``slope`` being the change from the first to the
      last channel (zero at the middle of the axis);
    * a constant offset ``constant``;
    * a badly placed pre-edge window: ``pre_edge_residual · exp((E − Eedge) / λ)``
      below ``edge_energy`` and ``pre_edge_residual`` above it — an error that
      grows towards the edge (``λ`` = ``pre_edge_decay``, eV) and stays under it.

    Parameters
    ----------
    energy
        Energy axis in eV, shape ``(channels,)``, increasing and positive.
    spectra
        Background-subtracted spectra, shape ``(n, channels)``.
    peak
        L3 maximum per spectrum, shape ``(n,)``.
    power_residual, exponent, exponent_error
        Largest excursion of the power-law residual, the background exponent ``r``
        and its error ``δr``; shape ``(n,)``.
    slope, constant
        Linear-slope and constant residuals, shape ``(n,)``.
    pre_edge_residual, pre_edge_decay, edge_energy
        Level, rise length (eV) and position (eV, the L3 onset) of the pre-edge
        window residual, shape ``(n,)``.
    window_energy
        ``Ew``, eV: where the fitted and true power laws agree.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, channels)``.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.array([700.0, 710.0, 720.0])
    >>> z = np.zeros(1)
    >>> out = background_artefacts(e, np.zeros((1, 3)), np.array([10.0]), z,
    ...                            z + 3.0, z, np.array([0.2]), np.array([0.1]), z,
    ...                            z + 1.0, z + 710.0, 700.0)
    >>> out.round(6)
    array([[0., 1., 2.]])
    """
    n, n_ch = spectra.shape
    out = np.empty((n, n_ch))
    span = energy[n_ch - 1] - energy[0]
    middle = 0.5 * (energy[0] + energy[n_ch - 1])
    log_ratio = np.empty(n_ch)
    for k in range(n_ch):
        log_ratio[k] = math.log(energy[k] / window_energy)
    shape = np.empty(n_ch)
    for p in range(n):
        height = peak[p]
        r = exponent[p]
        dr = exponent_error[p]
        largest = 0.0
        if power_residual[p] != 0.0 and dr != 0.0:
            for k in range(n_ch):
                shape[k] = math.exp(-r * log_ratio[k]) - math.exp(
                    -(r + dr) * log_ratio[k]
                )
                largest = max(largest, abs(shape[k]))
        power = power_residual[p] * height / largest if largest > 0.0 else 0.0
        tilt = slope[p] * height / span if span > 0.0 else 0.0
        level = constant[p] * height
        step = pre_edge_residual[p] * height
        decay = pre_edge_decay[p]
        onset = edge_energy[p]
        for k in range(n_ch):
            v = spectra[p, k] + level + tilt * (energy[k] - middle)
            if power != 0.0:
                v += power * shape[k]
            if step != 0.0:
                if energy[k] < onset:
                    if decay > 0.0:
                        v += step * math.exp((energy[k] - onset) / decay)
                else:
                    v += step
            out[p, k] = v
    return out


# -- the whole chain ------------------------------------------------------------------


@dataclass(frozen=True)
class AugmentationSettings:
    """Ranges of the random augmentation parameters (drawn uniformly unless noted).

    Ranges are ``(low, high)``; ``(0, 0)`` switches a step off.

    Attributes
    ----------
    thickness
        t/λ, the sample thickness in inelastic mean free paths: 0–1 covers the
        thin areas used for ELNES (above ~1 plural scattering spoils the edge).
    plasmon_energy, plasmon_width
        Drude plasmon of the low-loss model, eV: 20–30 eV and 5–10 eV FWHM span the
        broad bulk plasmons of iron oxides (free-electron estimates 23.0 eV FeO,
        24.4 eV Fe3O4, 25.6 eV Fe2O3; see :func:`plural_scattering`).
    plasmon_onset
        Band gap below which no energy is lost, eV (about 2 eV in hematite).
    fwhm
        Gaussian instrument resolution, FWHM in eV: 0.2 eV (monochromated) to
        1.5 eV (cold/Schottky FEG at high dispersion and long acquisitions); on top
        of the intrinsic widths the library adds.
    resolution_tail
        Decay length of the source's tail towards higher loss, eV
        (:func:`exponential_tail`; off by default: drawn 0–0.6 eV it did not
        improve the measured standards, ``docs/library.md``).
    offset
        Energy offset, eV: ±3 eV covers an uncalibrated or drifting zero-loss
        reference (the L3 maximum of Fe2+/Fe3+ itself spans ~708–710 eV).
    dispersion
        Relative dispersion error: ±1 % of the eV/channel calibration.
    quadratic
        Non-linearity of the energy scale, 1/eV: ±5e-4 bends the scale by up to
        ±0.11 eV at 15 eV from ``scale_reference``.
    scale_reference
        Pivot of the dispersion error and non-linearity, eV (mid-window).
    noise
        Add shot and read noise.
    dose
        Electrons at the L3 maximum, drawn log-uniformly: 25–40 000 gives a
        signal-to-noise ratio sqrt(dose / (1 + background)) of about 3–200.
    background
        Pre-edge background under the L3 maximum as a fraction of it: raw counts sit
        on a background whose shot noise stays after subtraction; 0–2 spans thin
        iron-rich oxides to thicker or diluted samples.
    background_exponent
        Power-law exponent r of that background, 2–5 (typical EELS values).
    gain
        Detector counts per electron, 1–2.
    read_noise
        Gaussian read noise, detector counts rms, 0–5.
    spike_probability
        Probability that a spectrum has spikes (X-ray hits): ~1 %.
    spikes
        Number of spikes in an affected spectrum (inclusive range of integers).
    spike_height
        Spike height as a multiple of the L3 maximum, drawn log-uniformly:
        0.5–20 (a hit deposits far more than one channel's counts at low dose).
    background_removed_probability
        Probability of the reverse case: the spectrum was handed in with its
        background already removed and normalised — no artefact, and an arbitrary
        scale drawn log-uniformly from ``removed_scale`` (relative to the
        spectrum's L3 maximum).
    power_residual, exponent_error, power_residual_probability
        Wrong-exponent residual: largest excursion as a fraction of the L3 maximum
        (sign random), error of the exponent, probability.
    slope
        Leftover linear slope across the axis, fraction of the L3 maximum.
    constant
        Leftover constant offset, fraction of the L3 maximum.
    pre_edge_residual, pre_edge_decay, pre_edge_probability
        Badly placed pre-edge window: level under the edge (fraction of the L3
        maximum, sign random), rise length in eV, probability.
    normalise
        Divide the result by its white-line integral over ``normalise_window``
        (:func:`~hyperspy_fe_ml.kernels.preprocess.normalise_spectra`), as the
        preprocessing does.
    normalise_window
        Window of that integral, eV (L3 + L2 white lines, 704–727 eV).
    """

    thickness: tuple[float, float] = (0.0, 1.0)
    plasmon_energy: tuple[float, float] = (20.0, 30.0)
    plasmon_width: tuple[float, float] = (5.0, 10.0)
    plasmon_onset: float = 2.0
    fwhm: tuple[float, float] = (0.2, 1.5)
    resolution_tail: tuple[float, float] = (0.0, 0.0)
    offset: tuple[float, float] = (-3.0, 3.0)
    dispersion: tuple[float, float] = (-0.01, 0.01)
    quadratic: tuple[float, float] = (-5e-4, 5e-4)
    scale_reference: float = 715.0
    noise: bool = True
    dose: tuple[float, float] = (25.0, 40000.0)
    background: tuple[float, float] = (0.0, 2.0)
    background_exponent: tuple[float, float] = (2.0, 5.0)
    gain: tuple[float, float] = (1.0, 2.0)
    read_noise: tuple[float, float] = (0.0, 5.0)
    spike_probability: float = 0.01
    spikes: tuple[int, int] = (1, 3)
    spike_height: tuple[float, float] = (0.5, 20.0)
    background_removed_probability: float = 0.3
    removed_scale: tuple[float, float] = (0.01, 100.0)
    power_residual: tuple[float, float] = (0.0, 0.15)
    exponent_error: tuple[float, float] = (-0.5, 0.5)
    power_residual_probability: float = 0.5
    slope: tuple[float, float] = (-0.05, 0.05)
    constant: tuple[float, float] = (-0.03, 0.03)
    pre_edge_residual: tuple[float, float] = (0.0, 0.1)
    pre_edge_decay: tuple[float, float] = (1.0, 4.0)
    pre_edge_probability: float = 0.3
    normalise: bool = True
    normalise_window: tuple[float, float] = (704.0, 727.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):  # e.g. settings read back from JSON
                value = tuple(value)
                object.__setattr__(self, f.name, value)
            if isinstance(value, tuple):
                if len(value) != 2 or not value[0] <= value[1]:
                    raise ValueError(
                        f"AugmentationSettings.{f.name} must be a (low, high) pair "
                        f"with low <= high, got {value!r}."
                    )
            elif f.name.endswith("_probability") and not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"AugmentationSettings.{f.name} must be in [0, 1], got {value!r}."
                )
        for name in ("dose", "spike_height", "removed_scale"):
            if getattr(self, name)[0] <= 0.0:
                raise ValueError(
                    f"AugmentationSettings.{name} is drawn log-uniformly: its range "
                    "must be positive."
                )
        if self.plasmon_width[1] >= 2.0 * self.plasmon_energy[0]:
            raise ValueError(
                "AugmentationSettings: plasmon_width must stay below twice "
                "plasmon_energy (an underdamped Drude plasmon)."
            )


def _uniform(rng: np.random.Generator, bounds: tuple[float, float], n: int):
    return rng.uniform(bounds[0], bounds[1], n)


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float], n: int):
    return np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]), n))


def _check_input(energy: np.ndarray, spectra: np.ndarray) -> None:
    if energy.ndim != 1 or energy.size < 2:
        raise ValueError("energy must be a 1-D axis with at least two channels.")
    if not np.all(np.diff(energy) > 0):
        raise ValueError("energy must be strictly increasing.")
    if spectra.ndim != 2 or spectra.shape[1] != energy.size:
        raise ValueError(
            f"spectra must have shape (n, {energy.size}) to match the energy axis, "
            f"got {spectra.shape}."
        )


def augment_batch(
    energy: np.ndarray,
    spectra: np.ndarray,
    rng: np.random.Generator,
    settings: AugmentationSettings | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Augment a batch of background-free Fe L2,3 edges like a measurement would.

    Draws every random parameter and all noise from ``rng`` (same generator state,
    same result) and applies, in order: :func:`plural_scattering`,
    :func:`gaussian_broadening`, :func:`distort_energy_scale`, :func:`add_noise`,
    :func:`add_spikes`, then either :func:`background_artefacts` or, for the
    reverse case, an arbitrary scale, and finally (``settings.normalise``) the
    white-line normalisation of the preprocessing.

    Parameters
    ----------
    energy
        Energy axis in eV, shape ``(channels,)``, strictly increasing (uniform or
        not; the canonical grid is 700–729.9 eV at 0.1 eV).
    spectra
        Background-free edges, shape ``(n, channels)``; not modified.
    rng
        The random generator.
    settings
        Ranges and probabilities; defaults to :class:`AugmentationSettings`.

    Returns
    -------
    augmented
        Shape ``(n, channels)``, float64.
    params
        The applied parameters, each an array of shape ``(n,)``: ``thickness``,
        ``plasmon_energy``, ``plasmon_width``, ``fwhm``, ``resolution_tail``,
        ``offset``, ``dispersion``,
        ``quadratic``, ``dose``, ``background``, ``background_exponent``, ``gain``,
        ``read_noise``, ``n_spikes``, ``background_removed``, ``scale`` (the L3
        maximum before normalisation: ``gain * dose``, or the arbitrary scale of a
        spectrum handed in background-removed),
        ``power_residual``, ``exponent_error``, ``slope``, ``constant``,
        ``pre_edge_residual``, ``pre_edge_decay``, ``edge_energy``.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_fe_ml.signals import CANONICAL_ENERGY_EV as e
    >>> s = np.exp(-0.5 * ((e - 709.5) / 0.6) ** 2)[None, :].repeat(4, axis=0)
    >>> out, params = augment_batch(e, s, np.random.default_rng(0))
    >>> out.shape, params["offset"].shape
    ((4, 300), (4,))
    >>> again, _ = augment_batch(e, s, np.random.default_rng(0))
    >>> bool(np.array_equal(out, again, equal_nan=True))
    True
    """
    if settings is None:
        settings = AugmentationSettings()
    energy = np.ascontiguousarray(energy, dtype=np.float64)
    spectra = np.ascontiguousarray(spectra, dtype=np.float64)
    _check_input(energy, spectra)
    n, n_ch = spectra.shape
    s = settings
    params: dict[str, np.ndarray] = {}

    # 1. Plural scattering in the sample.
    params["thickness"] = _uniform(rng, s.thickness, n)
    params["plasmon_energy"] = _uniform(rng, s.plasmon_energy, n)
    params["plasmon_width"] = _uniform(rng, s.plasmon_width, n)
    out = plural_scattering(
        energy,
        spectra,
        params["thickness"],
        params["plasmon_energy"],
        params["plasmon_width"],
        s.plasmon_onset,
    )
    # 2. Spectrometer resolution.
    params["fwhm"] = _uniform(rng, s.fwhm, n)
    out = gaussian_broadening(energy, out, params["fwhm"])
    # Drawn only when switched on, so the default draws the same numbers as before.
    params["resolution_tail"] = np.zeros(n)
    if s.resolution_tail[1] > 0:
        params["resolution_tail"] = _uniform(rng, s.resolution_tail, n)
        out = exponential_tail(energy, out, params["resolution_tail"])
    # 3. Energy scale.
    params["offset"] = _uniform(rng, s.offset, n)
    params["dispersion"] = _uniform(rng, s.dispersion, n)
    params["quadratic"] = _uniform(rng, s.quadratic, n)
    out = distort_energy_scale(
        energy,
        out,
        params["offset"],
        params["dispersion"],
        params["quadratic"],
        s.scale_reference,
    )
    # The L3 maximum (of the clean spectrum) and its onset, 2 eV below it.
    row_max = out.max(axis=1)
    params["edge_energy"] = energy[np.argmax(out, axis=1)] - 2.0
    # 4. Counting noise, in detector counts (the L3 maximum gets gain * dose).
    params["dose"] = _log_uniform(rng, s.dose, n)
    params["background"] = _uniform(rng, s.background, n)
    params["background_exponent"] = _uniform(rng, s.background_exponent, n)
    params["gain"] = _uniform(rng, s.gain, n)
    params["read_noise"] = _uniform(rng, s.read_noise, n)
    if s.noise:
        out = add_noise(
            energy,
            out,
            rng,
            params["dose"],
            params["background"],
            params["background_exponent"],
            params["gain"],
            params["read_noise"],
            reference=float(np.clip(708.0, energy[0], energy[-1])),
        )
        peak = params["gain"] * params["dose"]
    else:
        peak = row_max
    # 5. Spikes.
    has_spikes = rng.random(n) < s.spike_probability
    n_spikes = np.where(has_spikes, rng.integers(s.spikes[0], s.spikes[1] + 1, n), 0)
    # Always (n, most spikes) draws, so the later draws do not depend on the rate.
    k_max = max(s.spikes[1], 1)
    channels = rng.integers(0, n_ch, (n, k_max))
    channels[np.arange(k_max)[None, :] >= n_spikes[:, None]] = -1
    heights = _log_uniform(rng, s.spike_height, n * k_max).reshape(n, k_max)
    out = add_spikes(energy, out, channels, heights * peak[:, None])
    params["n_spikes"] = n_spikes
    # 6. Background subtraction: artefacts, or handed in already removed.
    removed = rng.random(n) < s.background_removed_probability
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    power = sign * _uniform(rng, s.power_residual, n)
    power[rng.random(n) >= s.power_residual_probability] = 0.0
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    pre_edge = sign * _uniform(rng, s.pre_edge_residual, n)
    pre_edge[rng.random(n) >= s.pre_edge_probability] = 0.0
    exponent_error = _uniform(rng, s.exponent_error, n)
    slope = _uniform(rng, s.slope, n)
    constant = _uniform(rng, s.constant, n)
    decay = _uniform(rng, s.pre_edge_decay, n)
    scale = _log_uniform(rng, s.removed_scale, n)
    for values in (power, pre_edge, slope, constant):
        values[removed] = 0.0
    out = background_artefacts(
        energy,
        out,
        peak,
        power,
        params["background_exponent"],
        exponent_error,
        slope,
        constant,
        pre_edge,
        decay,
        params["edge_energy"],
        float(energy[0]),
    )
    factor = np.where(removed, scale / np.where(peak > 0, peak, 1.0), 1.0)
    out *= factor[:, None]
    params["scale"] = np.where(removed, scale, peak)
    params["background_removed"] = removed
    params["power_residual"] = power
    params["exponent_error"] = exponent_error
    params["slope"] = slope
    params["constant"] = constant
    params["pre_edge_residual"] = pre_edge
    params["pre_edge_decay"] = decay
    # 7. Normalisation as in the preprocessing.
    if s.normalise:
        out = normalise_spectra(
            energy,
            out,
            s.normalise_window[0],
            s.normalise_window[1],
            NORMALISE_INTEGRAL,
        )
    return out, params
