"""The preprocessing kernels, compiled and as plain Python, against NumPy references."""

import numpy as np
import pytest

from hyperspy_fe_ml.kernels import preprocess as kp

E_UNIFORM = np.round(np.arange(690.0, 740.0, 0.1), 6)


def _variants(kernel):
    """The numba-compiled kernel and its pure-Python original."""
    return pytest.mark.parametrize(
        "fn", [kernel, kernel.py_func], ids=["compiled", "py_func"]
    )


def _edge(energy):
    lines = np.exp(-0.5 * ((energy - 709.5) / 0.5) ** 2)
    lines += 0.4 * np.exp(-0.5 * ((energy - 722.3) / 0.7) ** 2)
    return 100.0 * lines


def _nonuniform_axis(rng, low=690.0, high=740.0, n=400):
    inner = np.sort(rng.uniform(low, high, n - 2))
    return np.concatenate([[low], inner, [high]])


# -- power-law background -------------------------------------------------------------


@_variants(kp.fit_power_law_background)
def test_power_law_fit_matches_numpy_polyfit(fn):
    rng = np.random.default_rng(0)
    e = E_UNIFORM
    spectra = rng.poisson(5e14 * e**-3.3, size=(5, e.size)).astype(float)
    window = (e >= 690.0) & (e <= 704.0)
    amplitude, exponent, offset, status = fn(e, spectra, 690.0, 704.0)
    # The kernel fits the log of the mean of bins of FIT_BINS-th of the window,
    # weighted by their channel counts, corrected once for the power law's
    # curvature inside each bin.
    index = np.flatnonzero(window)
    width = max(1, index.size // kp.FIT_BINS)
    bins = [index[k : k + width] for k in range(0, index.size, width)]
    x = np.array([np.log(e[b]).mean() for b in bins])
    variance = np.array([np.log(e[b]).var() for b in bins])
    w = np.sqrt([b.size for b in bins])  # polyfit weights multiply residuals
    for p in range(spectra.shape[0]):
        y = np.array([np.log(spectra[p, b].mean()) for b in bins])
        first = np.polyfit(x, y, 1, w=w)[0]
        slope, intercept = np.polyfit(x, y - 0.5 * first**2 * variance, 1, w=w)
        assert exponent[p] == pytest.approx(-slope, rel=1e-9)
        assert amplitude[p] == pytest.approx(np.exp(intercept), rel=1e-7)
    assert np.all(status == kp.FIT_POWER_LAW)
    assert np.all(offset == 0.0)
    # ~2e5 counts per channel (0.2 % noise): the exponent is recovered closely.
    np.testing.assert_allclose(exponent, 3.3, atol=0.1)


@_variants(kp.fit_power_law_background)
def test_power_law_fit_skips_zeros_and_negatives(fn):
    e = E_UNIFORM
    clean = 1e10 * e**-3.0
    spectra = np.vstack([clean, clean])
    window = np.flatnonzero((e >= 690.0) & (e <= 704.0))
    spectra[1, window[::10]] = 0.0  # 10 % dead channels
    spectra[1, window[5]] = -4.0
    spectra[1, window[7]] = np.nan
    _, exponent, _, status = fn(e, spectra, 690.0, 704.0)
    np.testing.assert_allclose(exponent, 3.0, rtol=1e-9)
    assert list(status) == [kp.FIT_POWER_LAW, kp.FIT_POWER_LAW]


@_variants(kp.fit_power_law_background)
def test_background_removed_spectrum_falls_back_to_its_pre_edge_mean(fn):
    rng = np.random.default_rng(3)
    e = E_UNIFORM
    noise = rng.normal(0.2, 1.0, size=(3, e.size))  # zero-centred pre-edge
    spectra = _edge(e)[None, :] + noise
    window = (e >= 690.0) & (e <= 704.0)
    amplitude, exponent, offset, status = fn(e, spectra, 690.0, 704.0)
    assert np.all(status == kp.FIT_CONSTANT)
    np.testing.assert_allclose(offset, spectra[:, window].mean(axis=1), rtol=1e-12)
    assert np.all(exponent == 0.0)


@_variants(kp.fit_power_law_background)
def test_pixel_without_finite_pre_edge_fails_alone(fn):
    e = E_UNIFORM
    spectra = np.vstack([1e10 * e**-3.0, np.full(e.size, np.nan)])
    amplitude, exponent, offset, status = fn(e, spectra, 690.0, 704.0)
    assert list(status) == [kp.FIT_POWER_LAW, kp.FIT_FAILED]
    assert np.isnan(exponent[1]) and np.isfinite(exponent[0])


@_variants(kp.subtract_power_law_background)
def test_subtraction_leaves_the_edge(fn):
    e = E_UNIFORM
    background = np.vstack([3e10 * e**-3.2, 8e9 * e**-2.6])
    spectra = background + _edge(e)
    out = fn(e, spectra, 690.0, 704.0)
    np.testing.assert_allclose(out, np.broadcast_to(_edge(e), out.shape), atol=1e-6)


@_variants(kp.subtract_pre_edge_mean)
def test_subtract_pre_edge_mean_against_numpy(fn):
    rng = np.random.default_rng(2)
    e = E_UNIFORM
    spectra = rng.normal(3.0, 1.0, size=(4, e.size))
    window = (e >= 692.0) & (e <= 700.0)
    expected = spectra - spectra[:, window].mean(axis=1, keepdims=True)
    np.testing.assert_allclose(fn(e, spectra, 692.0, 700.0), expected, rtol=1e-12)


# -- resampling -----------------------------------------------------------------------


def _bin_mean_reference(energy, spectrum, grid):
    """Exact bin means of the linear interpolant, with NumPy only."""
    edges = np.concatenate(
        [
            [grid[0] - (grid[1] - grid[0]) / 2],
            (grid[1:] + grid[:-1]) / 2,
            [grid[-1] + (grid[-1] - grid[-2]) / 2],
        ]
    )
    edges = np.clip(edges, energy[0], energy[-1])
    out = np.empty(grid.size)
    for j in range(grid.size):
        a, b = edges[j], edges[j + 1]
        inside = energy[(energy > a) & (energy < b)]
        x = np.concatenate([[a], inside, [b]])
        out[j] = np.trapezoid(np.interp(x, energy, spectrum), x) / (b - a)
    out[(grid < energy[0]) | (grid > energy[-1])] = np.nan
    return out


@_variants(kp.resample_spectra)
@pytest.mark.parametrize("step", [0.03, 0.1, 0.37])
def test_resample_matches_exact_bin_means(fn, step):
    rng = np.random.default_rng(4)
    e = _nonuniform_axis(rng)
    spectra = rng.normal(size=(3, e.size)).cumsum(axis=1)
    grid = np.arange(695.0, 735.0, step)
    out = fn(e, spectra, grid)
    for p in range(spectra.shape[0]):
        np.testing.assert_allclose(
            out[p], _bin_mean_reference(e, spectra[p], grid), rtol=1e-9, atol=1e-9
        )


@_variants(kp.resample_spectra)
def test_resample_conserves_intensity_and_marks_outside(fn):
    e = E_UNIFORM
    spectra = _edge(e)[None, :]
    grid = np.arange(700.0, 745.0, 0.5)  # runs past the input axis
    out = fn(e, spectra, grid)
    inside = grid <= e[-1]
    assert np.all(np.isnan(out[0, ~inside]))
    window_in = (e >= 702.0) & (e <= 730.0)
    window_out = (grid >= 702.0) & (grid <= 730.0)
    area_in = np.trapezoid(spectra[0, window_in], e[window_in])
    area_out = np.trapezoid(out[0, window_out], grid[window_out])
    assert area_out == pytest.approx(area_in, rel=2e-3)


def test_resample_nan_channel_spoils_only_its_neighbours():
    e = E_UNIFORM
    spectra = _edge(e)[None, :].copy()
    spectra[0, 200] = np.nan  # 710.0 eV
    out = kp.resample_spectra(e, spectra, np.arange(700.0, 730.0, 0.1))
    bad = np.flatnonzero(np.isnan(out[0]))
    assert 1 <= bad.size <= 3
    assert np.all(np.abs(np.arange(700.0, 730.0, 0.1)[bad] - 710.0) < 0.2)


# -- normalisation --------------------------------------------------------------------


@_variants(kp.normalise_spectra)
def test_integral_normalisation_against_trapezoid(fn):
    e = E_UNIFORM
    spectra = np.vstack([_edge(e), 3.0 * _edge(e) + 1.0])
    window = (e >= 704.0) & (e <= 727.0)
    out = fn(e, spectra, 704.0, 727.0, kp.NORMALISE_INTEGRAL)
    for p in range(2):
        norm = np.trapezoid(spectra[p, window], e[window])
        np.testing.assert_allclose(out[p], spectra[p] / norm, rtol=1e-12)
        assert np.trapezoid(out[p, window], e[window]) == pytest.approx(1.0)


@_variants(kp.normalise_spectra)
def test_edge_step_normalisation_and_bad_pixels(fn):
    e = E_UNIFORM
    spectra = np.vstack([_edge(e) + 7.0, -np.ones(e.size), np.zeros(e.size)])
    window = (e >= 735.0) & (e <= 739.0)
    out = fn(e, spectra, 735.0, 739.0, kp.NORMALISE_MEAN)
    np.testing.assert_allclose(out[0], spectra[0] / spectra[0, window].mean())
    assert np.all(np.isnan(out[1])) and np.all(np.isnan(out[2]))


# -- L3 position ----------------------------------------------------------------------


@_variants(kp.gaussian_smooth)
def test_gaussian_smoothing_matches_numpy_convolution(fn):
    rng = np.random.default_rng(5)
    e = E_UNIFORM
    spectra = rng.normal(size=(2, e.size))
    sigma = 0.3
    taps = np.arange(-12, 13) * 0.1
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    out = fn(e, spectra, sigma)
    for p in range(2):
        expected = np.convolve(spectra[p], kernel, "same") / kernel.sum()
        np.testing.assert_allclose(out[p, 20:-20], expected[20:-20], rtol=1e-9)


@_variants(kp.l3_peak_position)
@pytest.mark.parametrize("centre", [706.3, 707.8, 709.52, 712.9])
def test_l3_position_on_raw_counts_with_noise(fn, centre):
    rng = np.random.default_rng(6)
    e = E_UNIFORM
    edge = 2000 * np.exp(-0.5 * ((e - centre) / 0.5) ** 2)
    edge += 800 * np.exp(-0.5 * ((e - centre - 13.0) / 0.7) ** 2)
    spectra = rng.poisson(edge + 6000 * (e / 707.0) ** -3.0, size=(8, e.size))
    found = fn(e, spectra.astype(float), 690.0, 722.0, 0.3, 4.0)
    np.testing.assert_allclose(found, centre, atol=0.08)


@_variants(kp.l3_peak_position)
def test_l3_position_nan_without_edge(fn):
    e = E_UNIFORM
    spectra = np.vstack([np.full(e.size, np.nan), 1e10 * e**-3.0])
    found = fn(e, spectra, 690.0, 722.0, 0.3, 4.0)
    assert np.all(np.isnan(found))


def test_l3_position_on_nonuniform_axis():
    rng = np.random.default_rng(7)
    e = _nonuniform_axis(rng, n=900)
    spectra = _edge(e)[None, :]
    found = kp.l3_peak_position(e, spectra, 690.0, 722.0, 0.3, 4.0)
    assert found[0] == pytest.approx(709.5, abs=0.05)
