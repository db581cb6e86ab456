"""The fused model-input kernel against the step-by-step preprocessing path."""

import numpy as np
import pytest

from hyperspy_fe_ml.kernels.model_inputs import (
    BACKGROUND_FIXED_EXPONENT,
    BACKGROUND_MEAN,
    BACKGROUND_POWER_LAW,
    FALLBACK_EXPONENT,
    FLAG_BACKGROUND_FALLBACK,
    FLAG_PARTIAL_WINDOW,
    SATURATION_RUN,
    _power_law_row,
    _raw_quality,
    _short_window_exponent,
    align_rows,
    prepare_model_inputs,
)
from hyperspy_fe_ml.kernels.preprocess import preprocess_spectra
from hyperspy_fe_ml.library import reference_spectrum
from hyperspy_fe_ml.model import (
    L3_ALIGN_EV,
    L3_CENTROID_HALF_WIDTH_EV,
    L3_CENTROID_STEPS,
    L3_CENTROID_WINDOW_EV,
    NORMALISATION_SPAN_EV,
    align_on_l3,
)


def _counts(energy, n, seed, exponent=(2.5, 4.5)):
    rng = np.random.default_rng(seed)
    fe3 = rng.uniform(0.0, 1.0, (n, 1))
    edge = fe3 * reference_spectrum(3, "Oh", energy) + (1 - fe3) * reference_spectrum(
        2, "Oh", energy
    )
    r = rng.uniform(*exponent, (n, 1))
    background = rng.uniform(1.0, 5.0, (n, 1)) * (energy / 705.0) ** -r
    return rng.poisson(2000.0 * (edge / edge.max() + background)).astype(np.float32)


def _prepare(
    energy,
    spectra,
    pre_edge,
    grid,
    mean=None,
    scale=None,
    mode=BACKGROUND_POWER_LAW,
    shift=0.0,
    edge=(704.0, 727.0),
):
    """prepare_model_inputs with the package's windows."""
    mean = np.zeros(grid.size) if mean is None else mean
    scale = np.ones(grid.size) if scale is None else scale
    return prepare_model_inputs(
        energy,
        spectra,
        pre_edge[0],
        pre_edge[1],
        mode,
        grid,
        shift,
        edge[0],
        edge[1],
        L3_CENTROID_WINDOW_EV,
        L3_CENTROID_HALF_WIDTH_EV,
        L3_CENTROID_STEPS,
        NORMALISATION_SPAN_EV,
        L3_ALIGN_EV,
        mean,
        scale,
        np.inf,
    )


@pytest.mark.parametrize("step", [0.05, 0.1, 0.25])
def test_fused_kernel_equals_background_resample_normalise_align(step):
    energy = np.arange(680.0, 740.0, step)
    spectra = _counts(energy, 64, seed=int(step * 100))
    grid = np.arange(700.0, 730.0, 0.1)
    rng = np.random.default_rng(1)
    mean, scale = rng.normal(0, 0.01, grid.size), rng.uniform(0.5, 2.0, grid.size)
    inputs, norm2, centroid, snr, flags = _prepare(
        energy, spectra, (685.0, 703.65), grid, mean, scale
    )
    assert not flags.any() and np.all(snr > 3)
    clean = preprocess_spectra(
        energy, spectra.astype(float), 685.0, 703.65, True, grid, 704.0, 727.0, 0
    )
    # The step path's L3 centroid and shift, as FeStateModel.standardise does.
    c, aligned = align_on_l3(grid, clean)
    np.testing.assert_allclose(centroid, c, atol=1e-6)
    expected = (aligned - mean) / scale
    np.testing.assert_allclose(inputs, expected, atol=2e-4 * np.abs(expected).max())
    np.testing.assert_allclose(norm2, (inputs.astype(float) ** 2).sum(1), rtol=1e-5)


def test_power_law_row_polynomial_and_exp_branches_agree_with_numpy():
    grid = np.arange(700.0, 730.0, 0.1)
    span = np.log(grid) - np.log(grid[0])
    out = np.empty(grid.size)
    for slope in (-4.0, -0.3, 0.0, 2.0, -40.0, 80.0):  # the last two: np.exp branch
        _power_law_row(3.0, slope, span, out)
        np.testing.assert_allclose(out, 3.0 * (grid / grid[0]) ** slope, rtol=1e-12)


def test_background_removed_spectra_use_the_pre_edge_mean():
    energy = np.arange(690.0, 740.0, 0.1)
    edge = reference_spectrum(3, "Oh", energy)
    spectra = (edge / edge.max() + 0.02)[None, :]
    grid = np.arange(700.0, 730.0, 0.1)
    inputs, _, _, _, flags = _prepare(
        energy, spectra, (690.0, 703.0), grid, mode=BACKGROUND_MEAN
    )
    assert flags[0] == 0
    # The mean of the pre-edge (0.02 + the edge's own tail) is gone: the aligned,
    # normalised spectrum starts near zero.
    assert abs(float(inputs[0, :20].mean())) < 2e-3
    # A power law asked of a spectrum with a zero pre-edge falls back, flagged.
    spectra = (edge / edge.max())[None, :] * (energy > 704.0)
    _, _, _, _, flags = _prepare(energy, spectra, (690.0, 703.0), grid)
    assert flags[0] & FLAG_BACKGROUND_FALLBACK


def test_fixed_exponent_background_on_a_short_pre_edge_is_flagged_and_close():
    energy = np.arange(690.0, 740.0, 0.05)
    edge = reference_spectrum(3, "Oh", energy)
    edge = edge / edge.max()
    grid = np.arange(700.0, 730.0, 0.1)
    for exponent in (2.5, 3.0, 3.5):
        raw = (edge + 0.8 * (energy / 705.0) ** -exponent)[None, :]
        full, _, c_full, _, f_full = _prepare(energy, raw, (690.0, 703.65), grid)
        short = energy >= 706.5
        x, _, c, snr, flags = _prepare(
            energy[short],
            raw[:, short],
            (706.5, 707.5),
            grid,
            mode=BACKGROUND_FIXED_EXPONENT,
        )
        assert f_full[0] == 0
        assert flags[0] & FLAG_BACKGROUND_FALLBACK and flags[0] & FLAG_PARTIAL_WINDOW
        # What is left: the crop, the edge's own Lorentzian tail in the 1 eV
        # window (taken for background) and, 0.5 off the exponent, a residual
        # sloping across the white lines.
        assert snr[0] > 3 and abs(c[0] - c_full[0]) < 0.25
        difference = x[0, 60:220] - full[0, 60:220]
        assert np.sqrt(np.mean(difference**2)) < 0.2 * np.abs(full[0, 60:220]).max()


def _window_exponent(spectrum, energy, window):
    lo, hi = np.searchsorted(energy, window)
    log_e = np.log(energy)
    x_ref = np.log(0.5 * (energy[lo] + energy[hi - 1]))
    slope, _ = _short_window_exponent(spectrum, log_e, x_ref, int(lo), int(hi))
    return -slope


def test_a_short_pre_edge_gives_its_own_exponent_only_where_its_counts_are_precise():
    energy = np.arange(701.0, 740.0, 0.05)
    window = (701.0, 703.65)  # 2.65 eV: too short for a fit of its own
    steep = (energy / 705.0) ** -5.5
    rng = np.random.default_rng(3)
    # Precise counts of a steep background pull the exponent well past the prior
    # (3) towards 5.5; the same background at 1000 counts barely moves it.
    precise = _window_exponent(1e7 * steep, energy, window)
    noisy = [
        _window_exponent(rng.poisson(1e3 * steep).astype(float), energy, window)
        for _ in range(20)
    ]
    assert 3.7 < precise < 5.5
    assert abs(np.median(noisy) - FALLBACK_EXPONENT) < 0.3
    # A flat, precise pre-edge (a baseline-shifted figure) lowers it; a window
    # climbing onto the L3 line is no background and keeps the prior.
    flat = _window_exponent(np.full(energy.size, 500.0), energy, window)
    assert flat < 2.0
    edge = reference_spectrum(3, "Oh", energy)
    onset = 0.8 * (energy / 705.0) ** -3.0 + edge / edge.max()
    assert _window_exponent(onset, energy, (706.5, 707.5)) == FALLBACK_EXPONENT


def test_a_steep_background_behind_a_short_pre_edge_is_read():
    energy = np.arange(701.0, 740.0, 0.05)
    grid = np.arange(700.0, 730.0, 0.1)
    edge = reference_spectrum(3, "Oh", energy)
    full_energy = np.arange(690.0, 740.0, 0.05)
    full_edge = reference_spectrum(3, "Oh", full_energy)
    clean, _, c_true, _, _ = _prepare(
        full_energy,
        (full_edge / full_edge.max())[None, :],
        (690.0, 703.0),
        grid,
        mode=BACKGROUND_MEAN,
    )
    raw = 1e5 * (edge / edge.max() + (energy / 705.0) ** -5.5)
    x, _, c, _, flags = _prepare(
        energy, raw[None, :], (701.0, 703.65), grid, mode=BACKGROUND_FIXED_EXPONENT
    )
    assert flags[0] & FLAG_BACKGROUND_FALLBACK
    # Exponent 3 would leave a continuum falling by 30 % of the background (three
    # times the edge's step) across the white lines; the window's own exponent
    # does not.
    assert abs(c[0] - c_true[0]) < 0.15
    difference = x[0, 60:220] - clean[0, 60:220]
    assert np.sqrt(np.mean(difference**2)) < 0.1 * np.abs(clean[0, 60:220]).max()


def test_cropped_spectra_read_like_full_ones_with_the_window_flagged():
    energy = np.arange(690.0, 740.0, 0.05)
    grid = np.arange(700.0, 730.0, 0.1)
    for valence in (2, 3):
        edge = reference_spectrum(valence, "Oh", energy)[None, :]
        full, _, c_full, _, f_full = _prepare(
            energy, edge, (690.0, 703.0), grid, mode=BACKGROUND_MEAN
        )
        l3 = energy[np.argmax(np.where(energy < 716, edge[0], 0))]
        keep = (energy >= l3 - 3.0) & (energy <= l3 + 15.0)
        x, _, c, _, flags = _prepare(
            energy[keep], edge[:, keep], (690.0, 703.0), grid, mode=BACKGROUND_MEAN
        )
        assert f_full[0] == 0 and flags[0] == FLAG_PARTIAL_WINDOW
        assert abs(c[0] - c_full[0]) < 0.1
        # Inside the part both read, the inputs agree.
        inside = slice(60, 200)  # 706-720 eV after alignment
        difference = x[0, inside] - full[0, inside]
        assert np.sqrt(np.mean(difference**2)) < 0.05 * np.abs(full[0, inside]).max()


def test_an_offset_axis_is_read_where_its_edge_is():
    energy = np.arange(690.0, 740.0, 0.05)
    grid = np.arange(700.0, 730.0, 0.1)
    edge = reference_spectrum(3, "Oh", energy)
    raw = (edge / edge.max() + 0.8 * (energy / 705.0) ** -3.0)[None, :]
    x0, _, c0, _, _ = _prepare(energy, raw, (690.0, 703.65), grid)
    for offset in (-8.0, 7.5):
        x, _, c, _, flags = _prepare(
            energy + offset,
            raw,
            (690.0 + offset, 703.65 + offset),
            grid,
            shift=offset,
        )
        assert not flags[0] & FLAG_BACKGROUND_FALLBACK
        assert abs(c[0] - (c0[0] + offset)) < 0.02  # on the axis as given
        np.testing.assert_allclose(x[0], x0[0], atol=0.01)


def test_align_rows_holds_the_ends_and_rejects_holes():
    grid = np.arange(700.0, 730.0, 0.1)
    y = reference_spectrum(2, "Oh", grid)
    cropped = np.where((grid > 704.5) & (grid < 723.0), y, np.nan)
    holed = y.copy()
    holed[150] = np.nan
    x, n2, c = align_rows(
        grid,
        np.stack([y, cropped, holed]),
        L3_CENTROID_WINDOW_EV,
        L3_CENTROID_HALF_WIDTH_EV,
        L3_CENTROID_STEPS,
        NORMALISATION_SPAN_EV,
        L3_ALIGN_EV,
        np.zeros(grid.size),
        np.ones(grid.size),
    )
    assert np.isfinite(x[:2]).all() and np.isnan(x[2]).all() and np.isnan(c[2])
    # The aligned (normalised) spectra integrate to one over the window.
    window = (grid >= L3_ALIGN_EV - 3.5) & (grid <= L3_ALIGN_EV + 13.5)
    assert abs(np.trapezoid(x[0, window], grid[window]) - 1.0) < 0.02
    np.testing.assert_allclose(x[1, 50:200], x[0, 50:200], atol=0.02)
    np.testing.assert_allclose(n2[:2], (x[:2] ** 2).sum(axis=1))


def test_a_noise_free_spectrum_has_an_unbounded_edge_snr():
    # A pure power law is fitted exactly (the bins' curvature corrected), so the
    # scatter about the fit is zero and so is the standard error of the edge.
    # Gaussian white lines: no tail reaches the pre-edge window (a library
    # spectrum's Lorentzian tails would, and would rightly add scatter).
    energy = 690 + 0.05 * np.arange(1000)
    edge = np.exp(-0.5 * ((energy - 708.5) / 0.8) ** 2)
    edge += 0.3 * np.exp(-0.5 * ((energy - 721.3) / 1.0) ** 2)
    for dtype in (np.float32, np.float64):
        spectra = (1e4 * (energy / 690) ** -3 + 800 * edge).astype(dtype)
        grid = np.arange(700.0, 730.0, 0.1)
        _, _, centroid, snr, flags = _prepare(
            energy, spectra[None, :], (690.0, 703.65), grid
        )
        assert flags[0] == 0 and np.isfinite(centroid[0])
        assert snr[0] > 1e4


def test_row_max_is_the_maximum_of_any_slice_and_skips_nan():
    from hyperspy_fe_ml.kernels.model_inputs import _row_max

    rng = np.random.default_rng(4)
    row = rng.normal(size=37).astype(np.float32)
    for lo, hi in ((0, 37), (3, 10), (5, 6), (0, 3), (36, 37)):
        for f in (_row_max, _row_max.py_func):
            assert f(row, lo, hi) == row[lo:hi].max()
    row[7] = np.nan
    assert _row_max(row, 0, 37) == np.nanmax(row)
    assert _row_max(row, 4, 4) == -np.inf


def _quality_reference(row, lo, hi, raw_counts, saturation):
    """Quality flags spelt out: the maximum first, then a run of channels at it."""
    from hyperspy_fe_ml.kernels import model_inputs as k

    part = np.asarray(row[lo:hi], dtype=np.float64)
    if part.size == 0:
        return k.FLAG_EMPTY
    if not np.all(np.isfinite(part)):
        return k.FLAG_NOT_FINITE
    if np.all(part == 0.0):
        return k.FLAG_EMPTY
    flags = 0
    if raw_counts and np.sum(part < 0.0) > k.MAX_NEGATIVE_FRACTION * part.size:
        flags |= k.FLAG_NEGATIVE
    top = part.max()
    if top >= saturation:
        return flags | k.FLAG_SATURATED
    if top > 0.0 and (top >= k.SATURATION_MIN_COUNTS or top != np.floor(top)):
        run = 0
        for v in part:
            run = run + 1 if v == top else 0
            if run >= SATURATION_RUN:
                return flags | k.FLAG_SATURATED
    return flags


@pytest.mark.parametrize("compiled", [True, False])
def test_raw_quality_matches_its_definition(compiled):
    quality = _raw_quality if compiled else _raw_quality.py_func
    rng = np.random.default_rng(5)
    rows = []
    for _ in range(300):
        row = rng.poisson(rng.choice([0.3, 5.0, 60.0, 3000.0]), 40).astype(np.float32)
        kind = rng.integers(8)
        at = rng.integers(0, 36)
        if kind == 0:  # a clipped peak: a run at the maximum
            row[at : at + rng.integers(2, 6)] = row.max() + rng.choice([0.0, 0.5, 5.0])
        elif kind == 1:  # a run below the maximum
            row[at : at + 4] = max(row.max() - 1.0, 0.0)
        elif kind == 2:
            row[at] = rng.choice([np.nan, np.inf, -np.inf])
        elif kind == 3:
            row[: rng.integers(0, 40)] = 0.0
        elif kind == 4:
            row[at : at + 3] = -1.0
        elif kind == 5:
            row *= 0.37
        rows.append(row)
    for row in rows:
        for lo, hi in [(0, 40), (3, 37), (0, 3), (5, 5)]:
            for raw, saturation in [(True, np.inf), (False, np.inf), (True, 60.0)]:
                got = quality(row, lo, hi, raw, saturation)
                assert got == _quality_reference(row, lo, hi, raw, saturation), (
                    row,
                    lo,
                    hi,
                    raw,
                    saturation,
                )
