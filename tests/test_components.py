"""The Fe L2,3 model components: registration, fits, gradients, save and load."""

import logging

import hyperspy.api as hs
import numpy as np
import pytest
import yaml
from hyperspy.extensions import ALL_EXTENSIONS

import hyperspy_fe_ml
from hyperspy_fe_ml.components import (
    BASIS_SITES,
    FeL23ContinuumStep,
    FeL23Edge,
    fe_l23_basis,
)
from hyperspy_fe_ml.library import reference_spectrum
from hyperspy_fe_ml.whiteline import double_arctan

ENERGY = np.round(np.arange(700.0, 735.0, 0.05), 6)
TRUTH = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


@pytest.fixture(autouse=True)
def _quiet_hyperspy():
    # Noise-free fits make HyperSpy log that the covariance is not estimable.
    logger = logging.getLogger("hyperspy")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def _mixture_signal(
    fe3: np.ndarray,
    *,
    td: float = 0.0,
    shift: float = 0.0,
    counts: float = 2000.0,
    seed: int = 0,
) -> hs.signals.Signal1D:
    """Library mixtures per Fe atom with Poisson noise on a 50-count offset."""
    ref = {
        (v, c): reference_spectrum(v, c, ENERGY, shift=shift)
        for v in (2, 3)
        for c in ("Oh", "Td")
    }
    spectra = np.stack(
        [
            (1 - td) * (x * ref[3, "Oh"] + (1 - x) * ref[2, "Oh"])
            + td * (x * ref[3, "Td"] + (1 - x) * ref[2, "Td"])
            for x in fe3
        ]
    )
    rng = np.random.default_rng(seed)
    data = rng.poisson(np.clip(counts * spectra, 0, None) + 50).astype("float32") - 50
    s = hs.signals.Signal1D(data)
    ax = s.axes_manager[-1]
    ax.offset, ax.scale, ax.units = float(ENERGY[0]), 0.05, "eV"
    s.set_signal_type("FeL23")
    return s


def _fit(s: hs.signals.Signal1D, **kwargs) -> tuple[FeL23Edge, object]:
    m = s.create_model(auto_background=False, auto_add_edges=False)
    edge = FeL23Edge()
    m.append(edge)
    m.multifit(show_progressbar=False, **kwargs)
    return edge, m


# -- registration ------------------------------------------------------------------


def test_components_registered_under_their_id_name():
    path = hyperspy_fe_ml.__file__.replace("__init__.py", "hyperspy_extension.yaml")
    with open(path) as stream:
        entries = yaml.safe_load(stream)["components1D"]
    assert set(entries) == {"FeL23Edge", "FeL23ContinuumStep"}
    for name, entry in entries.items():
        assert ALL_EXTENSIONS["components1D"][name] == entry
        cls = {"FeL23Edge": FeL23Edge, "FeL23ContinuumStep": FeL23ContinuumStep}[name]
        assert entry == {"module": "hyperspy_fe_ml.components", "class": name}
        assert cls()._id_name == name


def test_edge_defaults_and_bounds():
    edge = FeL23Edge()
    names = [p.name for p in edge.parameters]
    assert names == [
        "intensity",
        "fe3_fraction",
        "td_fraction",
        "shift",
        "broadening",
        "continuum",
    ]
    assert edge.fe3_fraction.value == 0.5 and edge.td_fraction.value == 0.5
    for p in (edge.fe3_fraction, edge.td_fraction):
        assert (p.bmin, p.bmax) == (0.0, 1.0)
    assert edge.intensity._linear and not edge.fe3_fraction._linear
    assert edge.broadening.value == pytest.approx(0.12)
    assert edge.shift.units == "eV"


def test_default_edge_matches_the_reference_spectra():
    # Intensity 1, pure sites: the component is the library's reference spectrum.
    basis = fe_l23_basis()
    for j, (valence, coordination) in enumerate(BASIS_SITES):
        f, t = j % 2, j // 2
        y = basis.evaluate(ENERGY, 1.0, f, t, 0.0, 0.12, 1.0)
        ref = reference_spectrum(valence, coordination, ENERGY)
        assert np.max(np.abs(y - ref)) < 2e-3 * ref.max()


# -- fits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("td", "shift", "seed"),
    [(0.0, 0.0, 1), (0.0, 0.3, 2), (0.0, -0.4, 3), (0.3, 0.0, 4), (0.3, 0.25, 5)],
    ids=["Oh", "shift+0.3", "shift-0.4", "Td0.3", "Td0.3-shift"],
)
def test_fe3_fraction_recovered_within_0_05(td, shift, seed):
    edge, _ = _fit(_mixture_signal(TRUTH, td=td, shift=shift, seed=seed))
    fe3 = edge.fe3_fraction.map["values"]
    assert np.max(np.abs(fe3 - TRUTH)) <= 0.05, fe3
    assert np.max(np.abs(edge.td_fraction.map["values"] - td)) <= 0.1
    np.testing.assert_allclose(edge.shift.map["values"], shift, atol=0.05)


def test_bounded_and_analytical_fits_agree():
    s = _mixture_signal(TRUTH, td=0.2, seed=7)
    plain, _ = _fit(s)
    analytic, _ = _fit(s, grad="analytical")
    bounded, _ = _fit(s, bounded=True)
    for edge in (analytic, bounded):
        np.testing.assert_allclose(
            edge.fe3_fraction.map["values"], plain.fe3_fraction.map["values"], atol=0.02
        )
    fe3 = bounded.fe3_fraction.map["values"]
    assert np.all((fe3 >= 0) & (fe3 <= 1))


def test_broadening_recovered():
    ref = 0.4 * reference_spectrum(3, "Oh", ENERGY, resolution=0.8)
    ref += 0.6 * reference_spectrum(2, "Oh", ENERGY, resolution=0.8)
    s = hs.signals.Signal1D(np.stack([1e4 * ref, 2e4 * ref]))
    ax = s.axes_manager[-1]
    ax.offset, ax.scale, ax.units = 700.0, 0.05, "eV"
    s.set_signal_type("FeL23")
    ax.is_binned = False
    edge, _ = _fit(s)
    np.testing.assert_allclose(edge.broadening.map["values"], 0.8, atol=0.02)
    np.testing.assert_allclose(edge.fe3_fraction.map["values"], 0.4, atol=0.01)
    # Intensities in Fe per the library's units (unbinned axis: counts per eV).
    np.testing.assert_allclose(edge.intensity.map["values"], [1e4, 2e4], rtol=0.01)


def test_intensity_estimated_on_append_unless_given():
    s = _mixture_signal(np.array([0.5, 0.5]), counts=500.0)
    s.axes_manager[-1].is_binned = False
    m = s.create_model(auto_background=False, auto_add_edges=False)
    auto, fixed = FeL23Edge(td_fraction=0.0), FeL23Edge(intensity=3.0)
    m.extend([auto, fixed])
    np.testing.assert_allclose(auto.intensity.map["values"], 500.0, rtol=0.05)
    assert fixed.intensity.value == 3.0
    assert not fixed.intensity.map["is_set"].any()


# -- evaluation ---------------------------------------------------------------------


@pytest.mark.parametrize("fwhm", [-0.2, 0.02, 0.37, 1.23, 3.4])
def test_analytic_gradients_match_finite_differences(fwhm):
    basis = fe_l23_basis()
    x = np.linspace(703.0, 728.0, 400)
    p = {
        "intensity": 2.0,
        "fe3_fraction": 0.3,
        "td_fraction": 0.6,
        "shift": 0.17,
        "broadening": fwhm,
        "continuum": 1.3,
    }
    _, grads = basis.evaluate(x, **p, gradients=True)
    for name, analytic in grads.items():
        h = 1e-5
        up = basis.evaluate(x, **{**p, name: p[name] + h})
        down = basis.evaluate(x, **{**p, name: p[name] - h})
        numeric = (up - down) / (2 * h)
        # The linear interpolation has kinks at grid points: compare in norm.
        err = np.linalg.norm(analytic - numeric) / np.linalg.norm(numeric)
        assert err < 0.02, (name, err)


def test_function_nd_matches_pixelwise_function():
    s = _mixture_signal(np.array([0.1, 0.9, 0.4]))
    edge, m = _fit(s)
    whole = edge.function_nd(ENERGY)
    for i in range(3):
        m.axes_manager.indices = (i,)
        np.testing.assert_allclose(whole[i], edge.function(ENERGY), rtol=1e-12)


def test_widths_validated():
    with pytest.raises(ValueError, match="fwhm_l3=-1.0 is invalid"):
        FeL23Edge(fwhm_l3=-1.0)


# -- save and load ------------------------------------------------------------------


def test_model_save_load_round_trip(tmp_path):
    s = _mixture_signal(np.array([0.2, 0.7]))
    m = s.create_model(auto_background=False, auto_add_edges=False)
    m.extend([FeL23Edge(fwhm_l2=2.4), FeL23ContinuumStep(height=0.0)])
    m[1].height.free = False
    m.multifit(show_progressbar=False)
    path = tmp_path / "model.hspy"
    m.save(path, name="fit")
    restored = hs.load(path).models.restore("fit")
    assert [type(c) for c in restored] == [FeL23Edge, FeL23ContinuumStep]
    assert restored[0].fwhm_l2 == 2.4 and restored[0].fwhm_l3 is None
    for p, q in zip(m[0].parameters, restored[0].parameters, strict=True):
        np.testing.assert_array_equal(p.map["values"], q.map["values"])
        assert (p.free, p.bmin, p.bmax) == (q.free, q.bmin, q.bmax)
    np.testing.assert_allclose(restored.as_signal().data, m.as_signal().data)


def test_store_restore_through_a_signal_file(tmp_path):
    s = _mixture_signal(np.array([0.6]))
    edge, m = _fit(s)
    m.store("first")
    path = tmp_path / "with_model.hspy"
    s.save(path)
    loaded = hs.load(path)
    again = loaded.models.first.restore()
    assert again[0].fe3_fraction.map["values"][0] == pytest.approx(
        edge.fe3_fraction.map["values"][0]
    )


# -- continuum step -----------------------------------------------------------------


def test_step_defaults_heights_and_fit():
    step = FeL23ContinuumStep()
    assert (step.l3_onset.value, step.l2_onset.value) == (708.65, 721.65)
    assert step.width.value == 1.0 and not step.l3_onset.free
    y = step.function(np.array([715.0, 1e5]))
    assert y[0] == pytest.approx(1.0, rel=0.05) and y[1] == pytest.approx(1.5, 1e-4)

    truth = double_arctan(ENERGY, 4.0, 709.1, 722.3, 1.4)
    s = hs.signals.Signal1D(truth)
    s.axes_manager[-1].offset, s.axes_manager[-1].scale = 700.0, 0.05
    m = s.create_model()
    fit = FeL23ContinuumStep()
    for p in fit.parameters:
        p.free = True
    m.append(fit)
    m.fit(grad="analytical")
    got = [p.value for p in fit.parameters]
    np.testing.assert_allclose(got, [4.0, 709.1, 722.3, 1.4], rtol=1e-4)


def test_step_gradients_and_nd():
    step = FeL23ContinuumStep(height=2.0, l3_onset=709.0, width=0.8)
    x = np.linspace(700.0, 730.0, 301)
    h = 1e-6
    for p in step.parameters:
        v = p.value
        p.value = v + h
        up = step.function(x)
        p.value = v - h
        down = step.function(x)
        p.value = v
        np.testing.assert_allclose(p.grad(x), (up - down) / (2 * h), atol=1e-5)
    values = [np.array([2.0, 3.0]), np.full(2, 709.0), np.full(2, 721.65), np.ones(2)]
    s = hs.signals.Signal1D(np.zeros((2, 10)))
    m = s.create_model()
    m.append(step)
    nd = step.function_nd(x, parameters_values=values)
    np.testing.assert_allclose(nd[1], double_arctan(x, 3.0, 709.0, 721.65, 1.0))
