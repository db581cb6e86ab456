"""The van Aken & Liebscher white-line ratio against its published numbers."""

import numpy as np
import pytest

from hyperspy_fe_ml.whiteline import (
    CURVE_A,
    CURVE_B,
    CURVE_C,
    continuum_step,
    fe3_fraction_from_ratio,
    white_line_fe3_fraction,
    white_line_ratio,
)

ENERGY = np.round(np.arange(700.0, 735.0, 0.05), 6)


def _curve(x):
    return 1.0 / (CURVE_A * x**2 + CURVE_B * x + CURVE_C) - 1.0


def test_universal_curve_end_points_as_published():
    # PHYSICS.md: ratio 1.73 at x = 0 and 9.64 at x = 1.
    assert _curve(0.0) == pytest.approx(1.73, abs=0.005)
    assert _curve(1.0) == pytest.approx(9.64, abs=0.005)


def test_inversion_round_trip():
    x = np.linspace(0.0, 1.0, 41)
    np.testing.assert_allclose(fe3_fraction_from_ratio(_curve(x)), x, atol=1e-12)
    clipped = fe3_fraction_from_ratio(np.array([0.5, 20.0, np.nan]))
    assert clipped[0] == 0.0 and clipped[1] == 1.0 and np.isnan(clipped[2])


def test_step_heights_are_two_to_one():
    step = continuum_step(np.array([715.0, 760.0]), 2.0)
    # Half-way between the edges the L3 step is nearly complete, L2 not begun.
    assert step[0] == pytest.approx(2.0, rel=0.02)
    assert step[1] == pytest.approx(3.0, rel=0.01)


@pytest.mark.parametrize("x", [0.0, 0.3, 0.8])
def test_ratio_of_a_constructed_spectrum(x):
    ratio = _curve(x)
    # Boxes wider than the windows: each window integrates height × 2 eV.
    boxes = np.where((ENERGY >= 708.3) & (ENERGY <= 710.7), ratio, 0.0)
    boxes += np.where((ENERGY >= 719.5) & (ENERGY <= 721.9), 1.0, 0.0)
    spectra = np.vstack([continuum_step(ENERGY, 0.7) + boxes, 3.0 * boxes])
    # The step is scaled at the post-edge mean energy: exact to ~1e-4.
    np.testing.assert_allclose(white_line_ratio(ENERGY, spectra), ratio, rtol=1e-3)
    np.testing.assert_allclose(white_line_fe3_fraction(ENERGY, spectra), x, atol=2e-3)


def test_axis_too_short_and_empty_l2():
    with pytest.raises(ValueError, match="needs 708.5"):
        white_line_ratio(np.arange(709.0, 735.0, 0.1), np.ones((1, 260)))
    flat = np.zeros((1, ENERGY.size))
    assert np.isnan(white_line_ratio(ENERGY, flat)[0])
