"""Signal methods: lazy == eager, HyperSpy agreement, input untouched, bad pixels."""

import dask.array as da
import numpy as np
import pytest

from hyperspy_fe_ml.signals import CANONICAL_ENERGY_EV, FeL23Signal, LazyFeL23Signal
from hyperspy_fe_ml.synthetic import synthetic_spectrum_image

PRE_EDGE = (690.0, 704.5)


@pytest.fixture
def si():
    return synthetic_spectrum_image((6, 8), seed=0)


def _white_lines(signal):
    energy = signal.axes_manager.signal_axes[0].axis
    return (energy >= 704.0) & (energy <= 727.0)


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("remove_fe_background", {}),
        ("resample_energy", {}),
        ("normalise_fe_l23", {}),
        ("normalise_fe_l23", {"method": "edge_step", "window": (732.0, 738.0)}),
        ("preprocess_fe_l23", {}),
        ("estimate_fe_l3_position", {}),
    ],
)
def test_lazy_and_eager_give_identical_numbers(si, method, kwargs):
    s, _ = si
    eager = getattr(s, method)(**kwargs)
    lazy_in = s.as_lazy()
    lazy_in.data = lazy_in.data.rechunk((2, 3, 100))  # energy axis chunked on purpose
    lazy = getattr(lazy_in, method)(**kwargs)
    assert lazy._lazy and not eager._lazy
    assert isinstance(lazy.data, da.Array)
    lazy.compute()
    np.testing.assert_array_equal(lazy.data, eager.data)
    assert lazy.axes_manager.signal_shape == eager.axes_manager.signal_shape


def test_background_agrees_with_hyperspy_power_law_without_noise(si):
    s, truth = si
    s.data = (truth.edge + truth.background).astype("float64")
    ours = s.remove_fe_background(pre_edge=PRE_EDGE)
    theirs = s.remove_background(
        signal_range=PRE_EDGE, background_type="PowerLaw", fast=True
    )
    window = _white_lines(s)
    height = truth.edge[..., window].max()
    difference = (ours.data - theirs.data)[..., window]
    # Both recover the exact power law: within 0.1 % of the L3 height.
    assert np.abs(difference).max() < 1e-3 * height
    # Against the truth: within 1 % of the L3 height (the arctan continuum's tail
    # reaches into the pre-edge window and is absorbed into the background).
    error = ours.data[..., window] - truth.edge[..., window]
    assert np.abs(error).max() < 0.01 * height


def test_background_agrees_with_hyperspy_power_law_with_noise(si):
    s, truth = si
    ours = s.remove_fe_background(pre_edge=PRE_EDGE)
    fitted = s.remove_background(
        signal_range=PRE_EDGE, background_type="PowerLaw", fast=False
    )
    fast = s.remove_background(
        signal_range=PRE_EDGE, background_type="PowerLaw", fast=True
    )
    window = _white_lines(s)
    height = truth.edge[..., window].max()
    # Pixel by pixel against HyperSpy's least-squares fit: within 1 % of L3 height
    # (log-log and linear least squares weigh the noisy channels differently).
    assert np.abs(ours.data - fitted.data)[..., window].max() < 0.01 * height
    # Averaged over pixels, against HyperSpy's fast estimate: within 0.2 %.
    mean_difference = (ours.data - fast.data)[..., window].mean(axis=(0, 1))
    assert np.abs(mean_difference).max() < 2e-3 * height


def test_methods_never_modify_the_input(si):
    s, _ = si
    before = s.data.copy()
    axis_before = s.axes_manager.signal_axes[0].get_axis_dictionary()
    s.remove_fe_background()
    s.preprocess_fe_l23()
    s.estimate_fe_l3_position()
    s.align_fe_l3()
    s.calibrate_fe_l3()
    np.testing.assert_array_equal(s.data, before)
    assert s.axes_manager.signal_axes[0].get_axis_dictionary() == axis_before
    assert not s.metadata.has_item("FeL23")


def test_preprocess_output_axes_and_provenance(si):
    s, truth = si
    p = s.preprocess_fe_l23()
    assert type(p) is FeL23Signal
    axis = p.axes_manager.signal_axes[0]
    assert (axis.units, axis.size) == ("eV", CANONICAL_ENERGY_EV.size)
    assert axis.offset == pytest.approx(700.0) and axis.scale == pytest.approx(0.1)
    nav = p.axes_manager.navigation_axes
    assert [(a.units, a.scale) for a in nav] == [("nm", 2.0), ("nm", 2.0)]
    # 5 eV below the nominal L3 energy: the same window whatever the valence mix.
    assert p.metadata.FeL23.background["pre_edge_eV"][1] == pytest.approx(703.65)
    assert p.metadata.FeL23.normalisation["method"] == "integral"
    grid = CANONICAL_ENERGY_EV  # the exact grid (the axis values carry float noise)
    window = (grid >= 704.0) & (grid <= 727.0)
    areas = np.trapezoid(p.data[..., window], grid[window], axis=-1)
    np.testing.assert_allclose(areas, 1.0, rtol=1e-9)
    lazy = s.as_lazy().preprocess_fe_l23()
    assert type(lazy) is LazyFeL23Signal


def test_a_bad_pixel_is_nan_and_the_rest_is_computed(si):
    s, _ = si
    s.data = s.data.astype("float64")
    s.data[1, 2] = np.nan
    s.data[3, 4] = 0.0
    good = s.deepcopy()
    good.data[1, 2] = good.data[0, 0]
    good.data[3, 4] = good.data[0, 0]
    p = s.preprocess_fe_l23()
    assert np.all(np.isnan(p.data[1, 2]))
    assert np.all(np.isnan(p.data[3, 4]))
    window = p.metadata.FeL23.background["pre_edge_eV"]
    reference = good.preprocess_fe_l23(pre_edge=window)
    mask = np.ones(s.data.shape[:2], bool)
    mask[1, 2] = mask[3, 4] = False
    np.testing.assert_allclose(p.data[mask], reference.data[mask], rtol=1e-12)
    l3 = s.estimate_fe_l3_position()
    assert np.isnan(l3.data[1, 2]) and np.isnan(l3.data[3, 4])
    assert np.isfinite(l3.data[mask]).all()


def test_l3_map_has_calibrated_navigation_axes(si):
    s, truth = si
    l3 = s.estimate_fe_l3_position()
    assert l3.data.shape == truth.fe3_fraction.shape
    assert [ax.units for ax in l3.axes_manager.signal_axes] == ["nm", "nm"]
    fe2 = l3.data[truth.fe3_fraction == 0.0]
    fe3 = l3.data[truth.fe3_fraction == 1.0]
    np.testing.assert_allclose(fe2, 707.85, atol=0.15)
    np.testing.assert_allclose(fe3, 709.5, atol=0.15)


def test_single_spectrum_works(si):
    s, _ = si
    one = s.inav[0, 0]
    assert one.axes_manager.navigation_dimension == 0
    p = one.preprocess_fe_l23()
    assert p.data.shape == CANONICAL_ENERGY_EV.shape
    l3 = one.estimate_fe_l3_position()
    assert l3.data.shape == (1,) and l3.data[0] == pytest.approx(707.85, abs=0.15)
    assert one.align_fe_l3().data.ndim == 1


def test_bad_arguments_are_refused(si):
    s, _ = si
    with pytest.raises(ValueError, match="'integral'"):
        s.normalise_fe_l23(method="area")
    with pytest.raises(ValueError, match="uniform"):
        s.resample_energy(np.array([700.0, 700.1, 700.3]))
    with pytest.raises(ValueError, match="covers"):
        s.resample_energy(np.arange(650.0, 700.0, 0.1))
    with pytest.raises(ValueError, match="pre-edge window"):
        s.remove_fe_background(pre_edge=(704.0, 700.0))
