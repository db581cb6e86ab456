"""Energy-axis checks: clear errors, cropped spectra accepted, offsets found, fixed."""

import hyperspy.api as hs
import numpy as np
import pytest

from hyperspy_fe_ml.energy_axis import FeL23AxisReport
from hyperspy_fe_ml.synthetic import fe_l23_edge, synthetic_spectrum_image


def _signal(energy, data, units="eV"):
    """A FeL23Signal on a uniform or non-uniform axis."""
    energy = np.asarray(energy, dtype=float)
    steps = np.diff(energy)
    if np.allclose(steps, steps[0]):
        axis = {"offset": energy[0], "scale": steps[0], "size": energy.size}
    else:
        axis = {"axis": energy}
    s = hs.signals.Signal1D(np.asarray(data), axes=[{**axis, "units": units}])
    s.set_signal_type("FeL23")
    return s


def _cropped_background_removed(fe3=1.0, step=0.1):
    """Like a digitised standard: 700–729.9 eV, background removed."""
    energy = np.round(np.arange(700.0, 730.0, step), 6)
    return _signal(energy, 100 * fe_l23_edge(energy, fe3))


def test_cropped_background_removed_standard_is_accepted():
    report = _cropped_background_removed().check_fe_l23()
    assert isinstance(report, FeL23AxisReport)
    assert report.background_removed
    assert report.l3_position == pytest.approx(709.5, abs=0.1)
    assert not report.offset_suspect


def test_nonuniform_axis_is_accepted_and_resampled():
    rng = np.random.default_rng(0)
    # A jittered grid as a digitised or XAS spectrum has: 0.06 eV ± 40 %.
    energy = np.cumsum(rng.uniform(0.036, 0.084, 600)) + 699.9
    energy = energy[energy <= 729.95]
    s = _signal(energy, 100 * fe_l23_edge(energy, 0.0))
    report = s.check_fe_l23()
    assert not report.uniform
    assert report.l3_position == pytest.approx(707.8, abs=0.15)
    resampled = s.resample_energy()
    assert resampled.axes_manager.signal_axes[0].is_uniform
    grid = resampled.axes_manager.signal_axes[0].axis
    np.testing.assert_allclose(
        resampled.data, 100 * fe_l23_edge(grid, 0.0), rtol=0.02, atol=0.3
    )


@pytest.mark.parametrize(
    ("units", "match"),
    [("keV", "convert_to_units"), ("nm", "not eV"), (None, "undefined")],
)
def test_axis_not_in_ev_is_refused_with_the_fix(units, match):
    s = _cropped_background_removed()
    if units is None:
        import traits.api as t

        s.axes_manager.signal_axes[0].units = t.Undefined
    else:
        s.axes_manager.signal_axes[0].units = units
    with pytest.raises(ValueError, match=match):
        s.check_fe_l23()


@pytest.mark.parametrize(
    ("low", "high"), [(708.0, 740.0), (690.0, 720.0), (500.0, 650.0)]
)
def test_axis_missing_the_white_lines_is_refused(low, high):
    energy = np.arange(low, high, 0.1)
    s = _signal(energy, np.ones(energy.size))
    with pytest.raises(ValueError, match=r"704–727 eV") as error:
        s.check_fe_l23()
    assert f"{low:.2f}" in str(error.value)


def test_required_range_is_configurable():
    energy = np.arange(700.0, 725.0, 0.1)
    s = _signal(energy, 100 * fe_l23_edge(energy, 1.0))
    with pytest.raises(ValueError, match="covers 700.00–724.90 eV"):
        s.check_fe_l23()
    assert s.check_fe_l23(required_range=(704.0, 724.0)).background_removed


def test_raw_counts_without_pre_edge_are_refused():
    energy = np.round(np.arange(704.0, 740.0, 0.1), 6)
    counts = 5000 * (energy / 704) ** -3 + 2000 * fe_l23_edge(energy, 1.0)
    with pytest.raises(ValueError, match="pre-edge") as error:
        _signal(energy, counts).check_fe_l23()
    assert "background_removed=True" in str(error.value)


def test_complex_and_empty_data_are_refused():
    s = _cropped_background_removed()
    c = s.deepcopy()
    c.data = c.data.astype(complex)
    with pytest.raises(TypeError, match="complex"):
        c.check_fe_l23()
    e = s.deepcopy()
    e.data = np.zeros((0, s.data.size))
    with pytest.raises(ValueError, match="empty"):
        e.check_fe_l23()


def test_offset_axis_warns_with_the_measured_offset_and_the_fix():
    s, _ = synthetic_spectrum_image((4, 4), edge_counts=1e5)
    s.axes_manager.signal_axes[0].offset -= 5.0
    with pytest.warns(UserWarning, match=r"calibrate_fe_l3\(\)") as record:
        report = s.check_fe_l23()
    assert report.offset_suspect
    message = str(record[0].message)
    assert f"{report.l3_offset:+.2f} eV" in message
    assert "align_fe_l3" in message


def test_calibration_moves_the_edge_and_not_the_data():
    s, _ = synthetic_spectrum_image((4, 4), edge_counts=1e5)
    before = s.data.copy()
    true_l3 = s.check_fe_l23().l3_position
    s.axes_manager.signal_axes[0].offset += 4.0
    with pytest.warns(UserWarning):
        shifted = s.check_fe_l23()
    assert shifted.l3_position == pytest.approx(true_l3 + 4.0, abs=0.02)
    fixed = s.calibrate_fe_l3(l3_energy=true_l3)
    assert fixed.check_fe_l23().l3_position == pytest.approx(true_l3, abs=0.02)
    assert fixed.metadata.FeL23.calibration["shift_eV"] == pytest.approx(-4.0, abs=0.02)
    np.testing.assert_array_equal(s.data, before)
    assert s.axes_manager.signal_axes[0].offset == pytest.approx(694.0)
    fixed.data[0, 0, 0] = -1.0
    assert s.data[0, 0, 0] == before[0, 0, 0]


def test_alignment_removes_a_known_drift():
    s, truth = synthetic_spectrum_image((8, 3), drift=2.4, edge_counts=2e4)
    before = s.data.copy()
    raw = s.estimate_fe_l3_position().data
    # Each row moved by the drift: the measured positions follow it.
    np.testing.assert_allclose(
        raw - raw.mean(axis=0), truth.shift - truth.shift.mean(axis=0), atol=0.1
    )
    aligned = s.align_fe_l3()
    after = aligned.estimate_fe_l3_position().data
    spread_before = np.ptp(raw, axis=0)
    spread_after = np.ptp(after, axis=0)
    assert np.all(spread_before > 2.0)
    assert np.all(spread_after < 0.15)
    assert aligned.metadata.FeL23.alignment["max_abs_shift_eV"] > 1.0
    np.testing.assert_array_equal(s.data, before)


def test_alignment_of_a_lazy_signal_stays_lazy():
    s, _ = synthetic_spectrum_image((6, 2), drift=1.5, edge_counts=2e4)
    lazy = s.as_lazy()
    aligned = lazy.align_fe_l3()
    assert aligned._lazy
    eager = s.align_fe_l3()
    aligned.compute()
    np.testing.assert_allclose(aligned.data, eager.data)


def test_too_coarse_a_dispersion_is_refused_by_every_method():
    # Three channels over 690-730 eV: a clear error, before any work, from the
    # preprocessing as from the prediction (it used to give all-NaN spectra).
    s = hs.signals.Signal1D(np.ones((2, 3), dtype=np.float32))
    ax = s.axes_manager.signal_axes[0]
    ax.units, ax.offset, ax.scale = "eV", 690.0, 20.0
    s.set_signal_type("FeL23")
    for method in (s.preprocess_fe_l23, s.predict_fe_state, s.remove_fe_background):
        with pytest.raises(ValueError, match="channels in the white-line window"):
            method()
