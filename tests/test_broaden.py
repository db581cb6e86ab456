"""Broadening kernels against analytic references, compiled and as pure Python."""

import math

import numpy as np
import pytest

from hyperspy_fe_ml.kernels.broaden import (
    bin_edges,
    bin_sticks,
    broaden_sticks,
    broaden_sticks_fft,
    continuum_step,
    gaussian_broaden,
    l3_reference_energy,
)

IMPLEMENTATIONS = ["compiled", "py_func"]


def _impl(func, which):
    return func if which == "compiled" else func.py_func


def _one(value):
    return np.array([float(value)])


@pytest.mark.parametrize("which", IMPLEMENTATIONS)
def test_lorentzian_area_is_the_analytic_integral(which):
    # Area inside [a, b] of a Lorentzian of HWHM g at x0:
    # (atan((b - x0) / g) - atan((a - x0) / g)) / pi, exact for any channel width.
    e = np.arange(700.0, 730.0, 0.3)
    a, b = bin_edges(e)[[0, -1]]
    x0, amp, fwhm = 709.37, 2.5, 0.8
    y = _impl(broaden_sticks, which)(
        e,
        _one(x0),
        _one(amp),
        np.array([3], np.int8),
        np.array([0, 1]),
        _one(fwhm),
        _one(5.0),
    )
    g = fwhm / 2
    expected = amp * (math.atan((b - x0) / g) - math.atan((a - x0) / g)) / math.pi
    assert y.shape == (1, e.size)
    # Exact near the line, bin-centre values far from it: the area is kept to 1e-6.
    assert np.sum(y[0] * np.diff(bin_edges(e))) == pytest.approx(expected, rel=1e-6)
    # The line shape at a channel is the bin average of the Lorentzian.
    j = 31
    lo, hi = bin_edges(e)[j : j + 2]
    mean = amp * (math.atan((hi - x0) / g) - math.atan((lo - x0) / g)) / math.pi
    assert y[0, j] == pytest.approx(mean / (hi - lo), rel=1e-12)
    # Far from the line (> 50 bins + 5 HWHM) the bin average to 1e-3.
    e = np.arange(690.0, 740.0, 0.02)
    y = _impl(broaden_sticks, which)(
        e,
        _one(x0),
        _one(amp),
        np.array([3], np.int8),
        np.array([0, 1]),
        _one(fwhm),
        _one(5.0),
    )[0]
    edges = bin_edges(e)
    exact = amp * np.diff(np.arctan((edges - x0) / g)) / math.pi / np.diff(edges)
    np.testing.assert_allclose(y, exact, rtol=1e-3)
    near = np.abs(e - x0) < 2.0
    np.testing.assert_allclose(y[near], exact[near], rtol=1e-12)


@pytest.mark.parametrize("which", IMPLEMENTATIONS)
def test_l3_and_l2_widths_are_separate(which):
    e = np.arange(700.0, 730.0, 0.01)
    pos = np.array([708.0, 721.0])
    amp = np.array([1.0, 1.0])
    edge = np.array([3, 2], np.int8)
    y = _impl(broaden_sticks, which)(
        e, pos, amp, edge, np.array([0, 2]), _one(0.4), _one(1.6)
    )[0]
    # Peak density of a Lorentzian of unit area: 2 / (pi * FWHM).
    assert y[np.abs(e - 708.0).argmin()] == pytest.approx(2 / (math.pi * 0.4), 1e-3)
    assert y[np.abs(e - 721.0).argmin()] == pytest.approx(2 / (math.pi * 1.6), 1e-3)


@pytest.mark.parametrize("which", IMPLEMENTATIONS)
def test_zero_width_puts_the_stick_in_its_bin(which):
    e = np.arange(0.0, 10.0, 0.5)
    y = _impl(broaden_sticks, which)(
        e,
        _one(3.1),
        _one(2.0),
        np.array([3], np.int8),
        np.array([0, 1]),
        _one(0.0),
        _one(0.0),
    )[0]
    assert np.flatnonzero(y).tolist() == [6]
    assert y[6] == pytest.approx(2.0 / 0.5)


@pytest.mark.parametrize("which", IMPLEMENTATIONS)
def test_gaussian_conserves_area_and_matches_the_analytic_width(which):
    e = np.arange(690.0, 740.0, 0.05)
    y = np.zeros((2, e.size))
    y[0, 400] = 1.0 / 0.05  # unit area at 710 eV
    y[1] = np.exp(-0.5 * ((e - 712.0) / 0.4) ** 2)
    fwhm = np.array([1.2, 0.9])
    out = _impl(gaussian_broaden, which)(e, y, fwhm)
    assert out.sum(axis=1) * 0.05 == pytest.approx(y.sum(axis=1) * 0.05, rel=1e-12)
    sigma = 1.2 / (2 * math.sqrt(2 * math.log(2)))
    assert out[0].max() == pytest.approx(1 / (sigma * math.sqrt(2 * math.pi)), 1e-3)
    # Gaussian * Gaussian: the variances add.
    s2 = math.sqrt(0.4**2 + (0.9 / (2 * math.sqrt(2 * math.log(2)))) ** 2)
    expected = 0.4 / s2 * np.exp(-0.5 * ((e - 712.0) / s2) ** 2)
    assert np.max(np.abs(out[1] - expected)) < 1e-4


@pytest.mark.parametrize("which", IMPLEMENTATIONS)
def test_gaussian_zero_width_is_identity(which):
    e = np.linspace(0, 1, 11)
    y = np.random.default_rng(0).random((3, 11))
    out = _impl(gaussian_broaden, which)(e, y, np.zeros(3))
    np.testing.assert_array_equal(out, y)


@pytest.mark.parametrize("which", IMPLEMENTATIONS)
def test_continuum_step_heights_are_two_to_one(which):
    e = np.array([600.0, 708.0, 715.0, 721.0, 1e5])
    y = _impl(continuum_step, which)(
        e, _one(708.0), _one(721.0), _one(0.3), _one(0.5), _one(1.5)
    )[0]
    assert y[0] == pytest.approx(0.0, abs=1e-3)
    assert y[1] == pytest.approx(0.15 + 0.15 * (0.5 + math.atan(-13 / 0.75) / math.pi))
    # Between the edges mostly the L3 step; far above both: L3 + L2 = 0.3 + 0.15.
    step3 = 0.3 * (0.5 + math.atan(7 / 0.25) / math.pi)
    step2 = 0.15 * (0.5 + math.atan(-6 / 0.75) / math.pi)
    assert y[2] == pytest.approx(step3 + step2, rel=1e-12)
    assert y[3] == pytest.approx(0.3 * (0.5 + math.atan(13 / 0.25) / math.pi) + 0.075)
    assert y[4] == pytest.approx(0.45, rel=1e-5)
    jump3 = y[2] - y[0]
    jump2 = y[4] - y[2]
    assert jump3 / jump2 == pytest.approx(2.0, rel=0.05)


def test_bin_edges_non_uniform():
    e = np.array([1.0, 2.0, 4.0, 8.0])
    np.testing.assert_allclose(bin_edges(e), [0.5, 1.5, 3.0, 6.0, 10.0])
    np.testing.assert_allclose(bin_edges.py_func(e), bin_edges(e))


@pytest.mark.parametrize("which", IMPLEMENTATIONS)
def test_gaussian_uniform_fast_path_equals_general_path(which):
    e = np.arange(700.0, 720.0, 0.05)
    bumped = e.copy()
    bumped[0] -= 1e-4  # no longer uniform: the general path
    y = np.random.default_rng(1).random((2, e.size))
    fwhm = np.array([0.3, 1.1])
    fast = _impl(gaussian_broaden, which)(e, y, fwhm)
    slow = _impl(gaussian_broaden, which)(bumped, y, fwhm)
    # Away from the bumped end (5 sigma = 47 channels) the two paths agree.
    np.testing.assert_allclose(fast[:, 60:], slow[:, 60:], rtol=1e-5)


@pytest.mark.parametrize("which", IMPLEMENTATIONS)
def test_bin_sticks_keeps_area_and_centroid_per_edge(which):
    rng = np.random.default_rng(4)
    positions = rng.uniform(701.0, 728.0, 40)
    intensities = rng.uniform(0.1, 2.0, 40)
    edges = np.where(positions < 715.0, 3, 2).astype(np.int8)
    h = _impl(bin_sticks, which)(
        700.0, 0.02, 1500, positions, intensities, edges, np.array([0, 25, 40])
    )
    grid = 700.0 + 0.02 * np.arange(1500)
    assert h.shape == (2, 2, 1500)
    for k, (a, b) in enumerate([(0, 25), (25, 40)]):
        for which_edge, label in enumerate((3, 2)):
            sel = edges[a:b] == label
            area = intensities[a:b][sel].sum()
            assert h[k, which_edge].sum() == pytest.approx(area, rel=1e-12)
            centroid = (intensities[a:b][sel] * positions[a:b][sel]).sum() / area
            assert (h[k, which_edge] * grid).sum() / area == pytest.approx(
                centroid, abs=1e-9
            )
    # Off the grid: the end points.
    h = _impl(bin_sticks, which)(
        0.0,
        1.0,
        3,
        np.array([-4.0, 9.0]),
        np.ones(2),
        np.array([3, 2], np.int8),
        np.array([0, 2]),
    )
    assert h[0, 0].tolist() == [1.0, 0.0, 0.0]
    assert h[0, 1].tolist() == [0.0, 0.0, 1.0]


def test_fft_broadening_equals_the_direct_kernels():
    # The same sticks through broaden_sticks + continuum_step + gaussian_broaden.
    rng = np.random.default_rng(9)
    start, step, n_points = 694.0, 0.02, 2100
    grid = start + step * np.arange(n_points)
    n, per = 6, 300
    positions = np.concatenate(
        [rng.uniform(704.0, 713.0, per // 2), rng.uniform(717.0, 727.0, per // 2)] * n
    )
    intensities = rng.exponential(0.02, n * per)
    edges = np.tile(np.repeat(np.array([3, 2], np.int8), per // 2), n)
    offsets = np.arange(0, n * per + 1, per)
    fwhm_l3 = np.array([0.3, 0.5, 0.8, 1.2, 0.0, 0.6])
    fwhm_l2 = np.array([0.4, 3.0, 1.0, 2.0, 0.0, 0.9])
    resolution = np.array([0.1, 1.5, 0.4, 0.8, 0.5, 0.0])
    onset_l3 = rng.uniform(707.0, 710.0, n)
    onset_l2 = onset_l3 + 12.8
    height = rng.uniform(0.0, 0.2, n)
    direct = gaussian_broaden(
        grid,
        broaden_sticks(grid, positions, intensities, edges, offsets, fwhm_l3, fwhm_l2)
        + continuum_step(grid, onset_l3, onset_l2, height, fwhm_l3, fwhm_l2),
        resolution,
    )
    fast = broaden_sticks_fft(
        start,
        step,
        n_points,
        positions,
        intensities,
        edges,
        offsets,
        fwhm_l3,
        fwhm_l2,
        resolution,
        onset_l3,
        onset_l2,
        height,
    )
    # Compare where the Gaussian does not reach the grid ends (5 sigma < 3.2 eV).
    inside = (grid > 698.0) & (grid < 732.0)
    peak = direct[:, inside].max(axis=1, keepdims=True)
    error = np.abs(fast - direct)[:, inside] / peak
    # Lines of finite width: the linear split of the sticks is the only difference
    # (second order in the 0.02 eV grid step).
    assert error[:4].max() < 1.5e-3
    assert np.median(error[:4]) < 5e-5
    # No Gaussian: the same; zero Lorentzian widths (the direct path puts each
    # stick whole in its bin, the FFT path splits it) are the roughest case.
    assert error[5].max() < 1e-3
    assert error[4].max() < 0.03
    # Area: that of the sticks inside the grid plus the step, as the direct path.
    width = step
    np.testing.assert_allclose(
        fast[:, inside].sum(axis=1) * width,
        direct[:, inside].sum(axis=1) * width,
        rtol=2e-6,
    )


# Energy-dependent L3 width -------------------------------------------------------


def _fwhm(x, y):
    """Full width at half maximum of a single peak, linear interpolation."""
    j = int(np.argmax(y))
    half = 0.5 * y[j]
    lo = j - np.argmax(y[j::-1] < half)
    hi = j + np.argmax(y[j:] < half)
    left = np.interp(half, [y[lo], y[lo + 1]], [x[lo], x[lo + 1]])
    right = np.interp(half, [y[hi], y[hi - 1]], [x[hi], x[hi - 1]])
    return right - left


def _library_sticks(rows):
    from hyperspy_fe_ml.library.calibration import ENERGY_OFFSET_EV, ENERGY_SCALE
    from hyperspy_fe_ml.library.shipped import load_library

    lib = load_library()
    parts = [np.arange(lib.offsets[r], lib.offsets[r + 1]) for r in rows]
    idx = np.concatenate(parts)
    zero = np.repeat(
        [ENERGY_OFFSET_EV[int(lib.table["valence"][r])] for r in rows],
        [p.size for p in parts],
    )
    positions = zero + ENERGY_SCALE * lib.stick_energy[idx].astype(np.float64)
    intensities = 3.0 * lib.stick_intensity[idx].astype(np.float64)
    offsets = np.concatenate([[0], np.cumsum([p.size for p in parts])])
    return positions, intensities, lib.stick_edge[idx], offsets


def test_l3_reference_energy_skips_weak_lines():
    positions = np.array([700.0, 705.0, 706.0, 720.0, 701.0, 702.0])
    intensities = np.array([0.01, 1.0, 2.0, 5.0, 1.0, 1.0])
    edges = np.array([3, 3, 3, 2, 2, 2], np.int8)
    offsets = np.array([0, 4, 6])
    for f in (l3_reference_energy, l3_reference_energy.py_func):
        ref = f(positions, intensities, edges, offsets)
        # 0.01 < 2 % of the strongest L3 line (2.0): the first line is at 705 eV;
        # a spectrum without L3 lines has none.
        assert ref[0] == 705.0 and np.isinf(ref[1])


@pytest.mark.parametrize("which", IMPLEMENTATIONS)
def test_l3_slope_widens_upper_lines_and_keeps_the_first(which):
    e = np.arange(690.0, 740.0, 0.005)
    pos = np.array([705.0, 709.0, 721.0])
    edge = np.array([3, 3, 2], np.int8)
    args = (e, pos, np.ones(3), edge, np.array([0, 3]), _one(0.4), _one(1.0))
    y = _impl(broaden_sticks, which)(*args, _one(0.25))[0]
    y0 = _impl(broaden_sticks, which)(*args)[0]
    near = lambda x0: np.abs(e - x0) < 1.5  # noqa: E731
    # The first L3 line keeps its width; 4 eV above it: 0.4 + 0.25 * 4 = 1.4 eV
    # (measured FWHM within 3 %: the neighbours' tails); L2 is unchanged.
    assert _fwhm(e[near(705)], y[near(705)]) == pytest.approx(0.4, rel=0.03)
    assert _fwhm(e[near(709)], y[near(709)]) == pytest.approx(1.4, rel=0.03)
    assert _fwhm(e[near(709)], y0[near(709)]) == pytest.approx(0.4, rel=0.03)
    assert _fwhm(e[e > 716], y[e > 716]) == pytest.approx(1.0, rel=0.03)
    # Peak of a unit Lorentzian 2 / (pi * FWHM): the first line is untouched.
    assert y[np.abs(e - 705).argmin()] == pytest.approx(
        y0[np.abs(e - 705).argmin()], rel=0.02
    )
    assert y[np.abs(e - 709).argmin()] == pytest.approx(2 / (math.pi * 1.4), rel=0.03)
    # Zero slope is the old result, bit for bit.
    np.testing.assert_array_equal(_impl(broaden_sticks, which)(*args, _one(0.0)), [y0])


def _fft_args(positions, intensities, edges, offsets, n):
    fwhm_l3 = np.array([0.3, 0.5, 0.8, 1.0, 0.4, 0.3])[:n]
    fwhm_l2 = np.array([2.0, 1.0, 3.0, 2.5, 0.5, 1.5])[:n]
    resolution = np.array([0.1, 0.3, 0.1, 0.2, 0.5, 0.1])[:n]
    w = np.where(edges == 3, intensities, 0.0)
    owner = np.repeat(np.arange(n), np.diff(offsets))
    onset_l3 = np.bincount(owner, w * positions, n) / np.bincount(owner, w, n)
    return fwhm_l3, fwhm_l2, resolution, onset_l3, onset_l3 + 12.8, np.full(n, 0.08)


def test_fft_with_l3_slope_equals_the_exact_widths():
    # Library spectra with a width slope through the FFT path (width bands) and the
    # direct per-stick widths: as close as without a slope.
    rows = [0, 100, 300, 500, 50, 450]
    positions, intensities, edges, offsets = _library_sticks(rows)
    n = len(rows)
    start, step, n_points = 690.0, 0.02, 2500
    grid = start + step * np.arange(n_points)
    fwhm_l3, fwhm_l2, resolution, on3, on2, height = _fft_args(
        positions, intensities, edges, offsets, n
    )
    sticks = (positions, intensities, edges, offsets)
    errors = {}
    for slope in (np.zeros(n), np.array([0.4, 0.1, 0.4, 0.2, 0.3, 0.02])):
        direct = gaussian_broaden(
            grid,
            broaden_sticks(grid, *sticks, fwhm_l3, fwhm_l2, slope)
            + continuum_step(grid, on3, on2, height, fwhm_l3, fwhm_l2),
            resolution,
        )
        fast = broaden_sticks_fft(
            start, step, n_points, *sticks, fwhm_l3, fwhm_l2, resolution,
            on3, on2, height, slope,
        )  # fmt: skip
        inside = (grid > 697.0) & (grid < 733.0)
        peak = direct[:, grid < 715].max(axis=1, keepdims=True)
        errors[slope[0]] = (np.abs(fast - direct)[:, inside] / peak).max(axis=1)
        # The area (number of 3d holes) is the same: the bands only share it.
        # With a slope the tails of the broad upper bands (FWHM up to ~7 eV) that
        # reach past the zero padding come back round into the grid: ~1e-3 of the
        # area, spread nearly flat (up to 2e-4 of the L3 maximum per channel).
        np.testing.assert_allclose(
            fast[:, inside].sum(axis=1),
            direct[:, inside].sum(axis=1),
            rtol=2.5e-3 if slope[0] else 1e-5,
        )
    assert errors[0.0].max() < 2e-3
    assert errors[0.4].max() < 1.5e-3
    # The slope changes the spectra by far more than that.
    plain = broaden_sticks_fft(
        start, step, n_points, *sticks, fwhm_l3, fwhm_l2, resolution,
        on3, on2, height,
    )  # fmt: skip
    assert (np.abs(fast - plain).max(axis=1) / peak[:, 0]).min() > 0.03


def test_fft_zero_slope_is_bit_identical_and_mixed_batches_are_per_spectrum():
    positions, intensities, edges, offsets = _library_sticks([10, 400, 600])
    start, step, n_points = 690.0, 0.02, 2500
    args = _fft_args(positions, intensities, edges, offsets, 3)
    fwhm_l3, fwhm_l2, resolution, on3, on2, height = args
    sticks = (positions, intensities, edges, offsets)
    common = (fwhm_l3, fwhm_l2, resolution, on3, on2, height)
    old = broaden_sticks_fft(start, step, n_points, *sticks, *common)
    zero = broaden_sticks_fft(start, step, n_points, *sticks, *common, np.zeros(3))
    mixed = broaden_sticks_fft(
        start, step, n_points, *sticks, *common, np.array([0.0, 0.3, 0.0])
    )
    np.testing.assert_array_equal(zero, old)
    # A slope on one spectrum leaves the others exactly as they were.
    np.testing.assert_array_equal(mixed[[0, 2]], old[[0, 2]])
    assert np.abs(mixed[1] - old[1]).max() > 0.03 * old[1].max()
    with pytest.raises(ValueError, match="l3_width_slope"):
        broaden_sticks_fft(
            start, step, n_points, *sticks, *common, np.array([0.0, -0.1, 0.0])
        )


@pytest.mark.parametrize("which", IMPLEMENTATIONS)
def test_l3_slope_conserves_the_area(which):
    # Unit-area lines: with any slope the area on a wide axis is the stick area
    # less the Lorentzian tails beyond it (computed analytically per line).
    e = np.arange(500.0, 950.0, 0.05)
    a, b = bin_edges(e)[[0, -1]]
    pos = np.array([705.0, 706.5, 708.0, 712.0, 720.0])
    amp = np.array([0.5, 1.0, 2.0, 0.3, 1.5])
    edge = np.array([3, 3, 3, 3, 2], np.int8)
    slope = 0.35
    fwhm = np.where(edge == 3, 0.4 + slope * (pos - 705.0), 1.2)
    g = fwhm / 2
    expected = np.sum(
        amp * (np.arctan((b - pos) / g) - np.arctan((a - pos) / g)) / math.pi
    )
    y = _impl(broaden_sticks, which)(
        e, pos, amp, edge, np.array([0, 5]), _one(0.4), _one(1.2), _one(slope)
    )[0]
    assert np.sum(y * np.diff(bin_edges(e))) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(amp.sum(), rel=3e-3)
