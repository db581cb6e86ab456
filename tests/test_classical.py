"""The classical per-pixel methods: white-line ratio and reference fit (MLLS)."""

from functools import partial

import hyperspy.api as hs
import numpy as np
import pytest

from hyperspy_fe_ml.classical import (
    estimate_fe3_fraction_white_line,
    fit_fe_references,
)
from hyperspy_fe_ml.library import LabelledSpectrum, reference_spectrum
from hyperspy_fe_ml.maps import FeStateMaps
from hyperspy_fe_ml.whiteline import CURVE_A, CURVE_B, CURVE_C, continuum_step

ENERGY = np.round(np.arange(690.0, 740.0, 0.05), 6)
FRACTIONS = np.array([[0.0, 0.25, 0.5], [0.75, 1.0, 0.1]])


def _curve(x):
    return 1.0 / (CURVE_A * x**2 + CURVE_B * x + CURVE_C) - 1.0


def _signal(data: np.ndarray, energy: np.ndarray = ENERGY) -> hs.signals.Signal1D:
    s = hs.signals.Signal1D(data)
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = float(energy[0]), float(energy[1] - energy[0]), "eV"
    for nav in s.axes_manager.navigation_axes:
        nav.units, nav.scale = "nm", 2.0
    s.set_signal_type("FeL23")
    return s


def _white_line_image(fractions: np.ndarray) -> hs.signals.Signal1D:
    """Raw counts whose modified L3/L2 ratio follows the universal curve."""

    def box(lo, hi):
        return ((ENERGY >= lo) & (ENERGY <= hi)).astype(float)

    # Boxes wider than the windows: each window integrates height × 2 eV.
    ratio = _curve(fractions)[..., None]
    edge = 40.0 * (ratio * box(708.3, 710.7) + box(719.5, 721.9))
    edge = edge + continuum_step(ENERGY, 30.0)
    background = 3e10 * ENERGY**-3.0
    return _signal(edge + background)


def test_white_line_reproduces_the_universal_curve_end_points():
    maps = _white_line_image(FRACTIONS).estimate_fe3_fraction_white_line(
        show_progressbar=False
    )
    assert isinstance(maps, FeStateMaps)
    assert list(maps) == ["fe3_fraction", "valence", "white_line_ratio", "flags"]
    assert not np.any(maps["flags"].data)
    ratio = maps["white_line_ratio"].data
    # The end points of the curve: 1.73 (Fe2+) and 9.64 (Fe3+).
    assert ratio[0, 0] == pytest.approx(1.732, rel=0.01)
    assert ratio[1, 1] == pytest.approx(9.643, rel=0.01)
    np.testing.assert_allclose(maps["fe3_fraction"].data, FRACTIONS, atol=0.01)
    np.testing.assert_allclose(maps["valence"].data, 2.0 + maps["fe3_fraction"].data)
    prov = maps["fe3_fraction"].metadata.FeL23.provenance
    assert prov.background["power_law"] is True
    assert prov.windows_eV.L3 == [708.5, 710.5]


def test_white_line_maps_are_navigation_signals_and_input_untouched():
    s = _white_line_image(FRACTIONS)
    before = s.data.copy()
    maps = s.estimate_fe3_fraction_white_line(show_progressbar=False)
    np.testing.assert_array_equal(s.data, before)
    fe3 = maps["fe3_fraction"]
    assert fe3.data.shape == (2, 3)
    assert [a.units for a in fe3.axes_manager.signal_axes] == ["nm", "nm"]
    assert fe3.axes_manager.signal_axes[0].scale == 2.0
    assert fe3.metadata.Signal.quantity == "Fe3+/ΣFe"


def test_white_line_lazy_in_lazy_out_same_numbers():
    s = _white_line_image(FRACTIONS)
    eager = s.estimate_fe3_fraction_white_line(show_progressbar=False)
    lazy = s.as_lazy().estimate_fe3_fraction_white_line()
    assert lazy.lazy and lazy["fe3_fraction"]._lazy
    computed = lazy.compute(show_progressbar=False)
    for name in eager:
        np.testing.assert_array_equal(computed[name].data, eager[name].data)
    forced = s.estimate_fe3_fraction_white_line(lazy_output=True)
    assert forced.lazy


def test_white_line_bad_pixels_are_nan_and_the_map_goes_on():
    s = _white_line_image(FRACTIONS)
    s.data[0, 1] = np.nan
    s.data[1, 2] = 0.0
    maps = s.estimate_fe3_fraction_white_line(show_progressbar=False)
    fe3 = maps["fe3_fraction"].data
    assert np.isnan(fe3[0, 1]) and np.isnan(fe3[1, 2])
    assert fe3[1, 1] == pytest.approx(1.0, abs=0.01)


def test_white_line_single_spectrum():
    s = _white_line_image(np.array([0.5]))
    one = s.inav[0]
    maps = one.estimate_fe3_fraction_white_line(show_progressbar=False)
    assert maps["fe3_fraction"].data.shape == (1,)
    assert maps["fe3_fraction"].data[0] == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("method", ["white_line", "references"])
def test_bad_input_is_rejected_before_work(method):
    def run(s):
        if method == "white_line":
            return s.estimate_fe3_fraction_white_line()
        refs = {"a": (ENERGY, np.ones_like(ENERGY))}
        return s.fit_fe_references(refs)

    good = _white_line_image(FRACTIONS)
    no_units = good.deepcopy()
    no_units.axes_manager.signal_axes[0].units = ""
    with pytest.raises(ValueError, match="not eV"):
        run(no_units)
    short = _signal(np.ones((2, 400)), np.arange(712.0, 752.0, 0.1))
    with pytest.raises(ValueError, match="704"):
        run(short)
    complex_signal = hs.signals.ComplexSignal1D(np.ones((2, 50), dtype=complex))
    function = {
        "white_line": estimate_fe3_fraction_white_line,
        "references": partial(fit_fe_references, references={"a": (ENERGY, ENERGY)}),
    }[method]
    with pytest.raises(TypeError, match="complex"):
        function(complex_signal)
    with pytest.raises(ValueError, match="empty"):
        run(_signal(np.ones((0, ENERGY.size))))


# -- reference fit --------------------------------------------------------------------

REF_ENERGY = np.round(np.arange(695.0, 745.0, 0.1), 6)
FE2 = reference_spectrum(2, "Oh", REF_ENERGY)
FE3 = reference_spectrum(3, "Oh", REF_ENERGY)


def _mixture_image(fractions: np.ndarray, seed: int = 0) -> hs.signals.Signal1D:
    fe2 = np.interp(ENERGY, REF_ENERGY, FE2)
    fe3 = np.interp(ENERGY, REF_ENERGY, FE3)
    x = fractions[..., None]
    edge = 3000.0 * ((1 - x) * fe2 + x * fe3)
    rng = np.random.default_rng(seed)
    counts = rng.poisson(edge + 4e11 * ENERGY**-3.0).astype("float32")
    return _signal(counts)


def test_reference_fit_recovers_fractions_weights_and_valence():
    s = _mixture_image(FRACTIONS)
    refs = {"FeO": (REF_ENERGY, FE2), "Fe2O3": (REF_ENERGY, FE3)}
    maps = s.fit_fe_references(refs, valences={"FeO": 2, "Fe2O3": 3.0})
    expected_keys = [
        "fraction_FeO",
        "fraction_Fe2O3",
        "weight_FeO",
        "weight_Fe2O3",
        "valence",
        "fe3_fraction",
        "residual",
        "flags",
    ]
    assert list(maps) == expected_keys
    np.testing.assert_allclose(maps["fraction_Fe2O3"].data, FRACTIONS, atol=0.03)
    np.testing.assert_allclose(
        maps["fraction_FeO"].data + maps["fraction_Fe2O3"].data, 1.0, rtol=1e-12
    )
    # Raw weights: counts per library unit (3000 per Fe in total).
    total = maps["weight_FeO"].data + maps["weight_Fe2O3"].data
    np.testing.assert_allclose(total, 3000.0, rtol=0.03)
    np.testing.assert_allclose(maps["valence"].data, 2.0 + FRACTIONS, atol=0.03)
    assert np.all(maps["residual"].data < 0.1)
    prov = maps["valence"].metadata.FeL23.provenance
    assert prov.references == ["FeO", "Fe2O3"] and "lstsq" in prov.optimizer


def test_reference_inputs_signal_and_labelled_spectrum_lazy_equals_eager():
    s = _mixture_image(FRACTIONS, seed=1)
    fe2 = LabelledSpectrum(REF_ENERGY, FE2, valence=2, identifier="FeCl2")
    fe3 = _signal(FE3, REF_ENERGY)
    fe3.metadata.set_item("Sample.fe_valence", 3.0)
    refs = {"Fe2+": fe2, "Fe3+": fe3}
    eager = s.fit_fe_references(refs, show_progressbar=False)
    assert "fe3_fraction" in eager  # valences from the references' labels
    lazy = s.as_lazy().fit_fe_references(refs)
    assert lazy.lazy
    computed = lazy.compute(show_progressbar=False)
    for name in eager:
        np.testing.assert_allclose(computed[name].data, eager[name].data, rtol=1e-10)
    np.testing.assert_allclose(eager["fe3_fraction"].data, FRACTIONS, atol=0.03)


def test_reference_fit_without_valences_and_bad_pixel():
    s = _mixture_image(FRACTIONS)
    s.data[1, 0] = np.nan
    maps = s.fit_fe_references({"a": (REF_ENERGY, FE2), "b": (REF_ENERGY, FE3)})
    assert "valence" not in maps and "fe3_fraction" not in maps
    frac = maps["fraction_b"].data
    assert np.isnan(frac[1, 0])
    assert frac[1, 1] == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize(
    ("references", "kwargs", "error", "match"),
    [
        ({}, {}, TypeError, "non-empty dict"),
        ({"a": 5}, {}, TypeError, "pass a Signal1D"),
        ({"a": (np.arange(708.0, 740.0), np.ones(32))}, {}, ValueError, "covers"),
        (
            {"a": (REF_ENERGY, np.where(REF_ENERGY > 720, np.nan, FE2))},
            {},
            ValueError,
            "NaN",
        ),
        (
            {"a": (REF_ENERGY, FE2), "b": (REF_ENERGY, 2 * FE2)},
            {},
            ValueError,
            "linearly dependent",
        ),
        ({"a": (REF_ENERGY, FE2)}, {"fit_range": (680.0, 720.0)}, ValueError, "inside"),
        ({"a": (REF_ENERGY, FE2)}, {"fit_range": 5}, TypeError, "two energies"),
        ({"a": (REF_ENERGY, FE2)}, {"valences": {"b": 2}}, ValueError, "not refer"),
        ({"a": (REF_ENERGY, FE2)}, {"valences": {"a": 4}}, ValueError, "between 2"),
    ],
)
def test_bad_references_are_rejected(references, kwargs, error, match):
    s = _mixture_image(FRACTIONS[:1, :2])
    with pytest.raises(error, match=match):
        s.fit_fe_references(references, **kwargs)


def test_reference_signal_with_navigation_is_rejected():
    s = _mixture_image(FRACTIONS[:1, :2])
    refs = {"a": _signal(np.stack([FE2, FE3]), REF_ENERGY)}
    with pytest.raises(ValueError, match="one spectrum"):
        s.fit_fe_references(refs)


# -- bounded results ------------------------------------------------------------------

SITES = [(2, "Oh"), (2, "Td"), (3, "Oh"), (3, "Td")]


def _offset_fe3_spectrum(shift: float) -> hs.signals.Signal1D:
    """A noise-free Fe3+ Oh spectrum on raw counts, its axis off by ``shift`` eV."""
    edge = 3000.0 * reference_spectrum(3, "Oh", ENERGY - shift)
    return _signal((edge + 4e11 * ENERGY**-3.0)[None, :])


def _site_references():
    refs = {
        f"Fe{v}+ {c}": (REF_ENERGY, reference_spectrum(v, c, REF_ENERGY))
        for v, c in SITES
    }
    return refs, {name: float(name[2]) for name in refs}


def test_reference_fit_is_bounded_where_the_unbounded_fit_is_impossible():
    from scipy.optimize import lsq_linear

    from hyperspy_fe_ml.classical import (
        REFERENCE_AT_BOUND,
        REFERENCE_MISFIT,
        _linear_terms,
    )

    s = _offset_fe3_spectrum(1.5)  # an uncalibrated axis, as measured standards have
    refs, valences = _site_references()
    free = s.fit_fe_references(refs, valences=valences, nonnegative=False)
    # The case is real: HyperSpy's unbounded fit gives an impossible Fe3+ fraction.
    assert float(free["fe3_fraction"].data[0]) > 1.5
    assert free["flags"].data[0] == 0
    with pytest.warns(UserWarning, match="references do not describe this spectrum"):
        bounded = s.fit_fe_references(refs, valences=valences)
    # Pure Fe3+: the bounded fit gets it right.
    assert float(bounded["fe3_fraction"].data[0]) == pytest.approx(1.0)
    assert 2.0 <= float(bounded["valence"].data[0]) <= 3.0
    weights = np.array([float(bounded[f"weight_{n}"].data[0]) for n in refs])
    assert np.all(weights >= 0.0) and np.any(weights == 0.0)
    fractions = [float(bounded[f"fraction_{n}"].data[0]) for n in refs]
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert sum(fractions) == pytest.approx(1.0)
    assert bounded["flags"].data[0] == REFERENCE_AT_BOUND | REFERENCE_MISFIT
    assert "weights >= 0" in bounded.provenance["optimizer"]

    # The weights are the bounded least-squares optimum of the same problem.
    clean = s.remove_fe_background().isig[704.0:727.0]
    fit_energy = clean.axes_manager.signal_axes[0].axis
    patterns = np.array([np.interp(fit_energy, e, y) for e, y in refs.values()])
    design = np.concatenate([patterns, _linear_terms(fit_energy)]).T
    lower = np.array([0.0] * 4 + [-np.inf] * 2)
    best = lsq_linear(design, clean.data[0], bounds=(lower, np.inf), method="bvls")
    np.testing.assert_allclose(weights, best.x[:4], rtol=1e-3, atol=1e-3 * best.x.max())
    relative = np.sqrt(np.mean(best.fun**2) / np.mean(clean.data[0] ** 2))
    assert float(bounded["residual"].data[0]) == pytest.approx(relative, rel=1e-3)
    # Held at the bound, the fit is worse than the unbounded one, never better.
    assert float(bounded["residual"].data[0]) >= float(free["residual"].data[0])


def test_reference_fit_inside_the_bounds_is_hyperspys_fit():
    s = _mixture_image(FRACTIONS[:, 1:])  # mixtures, no pure end member
    refs = {"FeO": (REF_ENERGY, FE2), "Fe2O3": (REF_ENERGY, FE3)}
    valences = {"FeO": 2, "Fe2O3": 3}
    bounded = s.fit_fe_references(refs, valences=valences)
    free = s.fit_fe_references(refs, valences=valences, nonnegative=False)
    assert not np.any(bounded["flags"].data)
    for name in bounded:
        np.testing.assert_array_equal(bounded[name].data, free[name].data)


@pytest.mark.parametrize(
    ("ratio", "fe3", "flag", "match"),
    [(15.6, 1.0, 2, "above the universal curve"), (1.2, 0.0, 1, "below the universal")],
)
def test_white_line_ratio_off_the_curve_is_clipped_flagged_and_said(
    ratio, fe3, flag, match
):
    fractions = np.array([[0.5]])
    s = _white_line_image(fractions)
    # Rebuild with the given ratio instead of the curve's.
    box = ((ENERGY >= 708.3) & (ENERGY <= 710.7)).astype(float)
    s.data[0, 0] += 40.0 * (ratio - _curve(0.5)) * box
    with pytest.warns(UserWarning, match=match):
        maps = s.estimate_fe3_fraction_white_line()
    assert float(maps["white_line_ratio"].data[0, 0]) == pytest.approx(ratio, rel=0.01)
    assert float(maps["fe3_fraction"].data[0, 0]) == fe3
    assert int(maps["flags"].data[0, 0]) == flag
    assert "clipped" in maps.provenance["flags"][str(flag)]


def test_bounded_weights_by_active_sets_equal_bounded_least_squares():
    from hyperspy_fe_ml.classical import (
        _bounded_weights,
        _bounded_weights_per_pixel,
        _linear_terms,
    )

    energy = np.arange(704.0, 727.0, 0.1)
    refs, _ = _site_references()
    patterns = np.array([np.interp(energy, e, y) for e, y in refs.values()])
    patterns = np.concatenate([patterns, _linear_terms(energy)])
    rng = np.random.default_rng(5)
    # Random mixtures, some with negative amounts, plus noise and a tilt.
    true = rng.normal(0.3, 0.6, size=(200, patterns.shape[0]))
    spectra = true @ patterns + rng.normal(0.0, 0.02, size=(200, energy.size))
    fast = _bounded_weights(patterns, spectra, 4)
    slow = _bounded_weights_per_pixel(patterns, spectra, 4)
    assert np.all(fast[:, :4] >= 0.0)
    assert np.any(fast[:, :4] == 0.0) and np.any(true[:, :4] < 0.0)
    cost = np.sum((spectra - fast @ patterns) ** 2, axis=1)
    cost_slow = np.sum((spectra - slow @ patterns) ** 2, axis=1)
    np.testing.assert_allclose(cost, cost_slow, rtol=1e-6)
    np.testing.assert_allclose(fast, slow, atol=1e-5)
