"""States the valence model cannot read: the metal edge, the detectors, their files
and maps."""

import json

import hyperspy.api as hs
import numpy as np
import pytest
from helpers import fe_signal

from hyperspy_fe_ml.kernels.model_inputs import (
    FLAG_METALLIC,
    FLAG_OUT_OF_DISTRIBUTION,
    FLAG_UNLISTED,
)
from hyperspy_fe_ml.library import reference_spectrum
from hyperspy_fe_ml.library.metal import (
    METAL_D_HOLES,
    doniach_sunjic,
    draw_metal_spectra,
    metal_spectrum,
)
from hyperspy_fe_ml.model import ModelFileError, load_default_model
from hyperspy_fe_ml.state_detector import (
    SHIPPED_DETECTORS,
    StateDetector,
    load_default_detectors,
)

E = np.arange(680.0, 760.0, 0.1)


def _signal(counts: np.ndarray) -> hs.signals.BaseSignal:
    return fe_signal(np.asarray(counts, dtype=np.float32), E[0], 0.1)


def _noisy(shapes: np.ndarray, seed: int) -> np.ndarray:
    """Raw counts: a 2 500-count L3 maximum on a 4 000-count power law."""
    rng = np.random.default_rng(seed)
    shapes = shapes / shapes.max(axis=1, keepdims=True)
    background = 4e3 * (E / 680.0) ** -3.2
    dose = rng.uniform(0.5, 3.0, (len(shapes), 1))
    return rng.poisson((background + 2.5e3 * shapes) * dose)


# -- the reference edge -------------------------------------------------------------


def test_doniach_sunjic_is_a_lorentzian_without_asymmetry_and_tails_upwards_with():
    x = np.linspace(-30, 30, 6001)
    assert np.allclose(doniach_sunjic(x, 0.0, 1.5, 0.0), 1 / (1 + (x / 1.5) ** 2))
    y = doniach_sunjic(x, 0.0, 1.0, 0.3)
    # Tail above the line, none below: the weight at +5..+15 eV far exceeds -15..-5.
    assert y[(x > 5) & (x < 15)].sum() > 3 * y[(x < -5) & (x > -15)].sum()
    with pytest.raises(ValueError, match="asymmetry"):
        doniach_sunjic(x, 0.0, 1.0, 1.0)


def test_metal_edge_has_the_literature_landmarks():
    e = np.arange(640.0, 800.0, 0.02)
    # Narrow symmetric lines, so the landmarks can be read off directly.
    y = metal_spectrum(
        e,
        asymmetry=0.0,
        half_width_l3=0.3,
        extra_half_width_l2=0.1,
        band_width=100.0,
        resolution=0.1,
        with_step=False,
    )
    # White-line area = 3d holes of bcc Fe (Lorentzian tails beyond +-80 eV cut).
    assert np.trapezoid(y, e) == pytest.approx(METAL_D_HOLES, rel=0.01)
    # Lines a half width above the 706.8 / 719.9 eV edges.
    l3 = e[np.argmax(np.where(e < 714, y, 0))]
    l2 = e[np.argmax(np.where(e > 714, y, 0))]
    assert l3 == pytest.approx(706.8 + 0.3, abs=0.03)
    assert l2 == pytest.approx(719.9 + 0.4, abs=0.03)
    # L3 : L2 area = the branching ratio (3 by default; 3 % of each Lorentzian
    # lies beyond the split).
    split = 713.5
    ratio = np.trapezoid(y[e < split], e[e < split]) / np.trapezoid(
        y[e >= split], e[e >= split]
    )
    assert ratio == pytest.approx(3.0, rel=0.04)


def test_metal_step_is_two_to_one_and_draws_are_reproducible():
    e = np.arange(690.0, 760.0, 0.05)
    step_only = metal_spectrum(e) - metal_spectrum(e, with_step=False)
    after_l3 = step_only[np.searchsorted(e, 714.0)]
    after_l2 = step_only[-1]
    assert after_l2 / after_l3 == pytest.approx(1.5, rel=0.05)
    a = draw_metal_spectra(e, 4, rng=3)
    assert np.array_equal(a, draw_metal_spectra(e, 4, rng=3))
    assert not np.allclose(a[0], a[1])
    with pytest.raises(TypeError, match="Unknown shape"):
        metal_spectrum(e, width=1.0)


# -- the detector ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def metal_maps():
    shapes = draw_metal_spectra(E, 60, rng=123)
    return _signal(_noisy(shapes, 1)).predict_fe_state(show_progressbar=False)


def test_metal_edges_are_flagged_metallic_and_out_of_distribution(metal_maps):
    flags = np.asarray(metal_maps["flags"].data).astype(int)
    metallic = (flags & FLAG_METALLIC) != 0
    assert metallic.mean() >= 0.9
    # The metallic bit always comes with the out-of-distribution summary bit.
    assert np.all((flags[metallic] & FLAG_OUT_OF_DISTRIBUTION) != 0)
    fraction = np.asarray(metal_maps["metallic_fraction"].data)
    assert np.nanmedian(fraction) > 0.7


def test_oxides_are_not_flagged_metallic():
    shapes = np.stack(
        [
            reference_spectrum(v, c, E, resolution=r)
            for v, c in ((2, "Oh"), (3, "Oh"), (2, "Td"), (3, "Td"))
            for r in (0.3, 0.8)
        ]
        * 5
    )
    maps = _signal(_noisy(shapes, 2)).predict_fe_state(show_progressbar=False)
    flags = np.asarray(maps["flags"].data).astype(int)
    assert np.mean((flags & FLAG_METALLIC) != 0) == 0.0
    assert np.nanmax(np.asarray(maps["metallic_fraction"].data)) < 0.5


def test_metallic_fraction_follows_a_metal_oxide_mixture():
    metal = metal_spectrum(E, with_step=False)
    oxide = reference_spectrum(3, "Oh", E, step=0.0)  # both per Fe atom
    shapes = np.stack([f * metal + (1 - f) * oxide for f in (0.0, 0.5, 1.0)] * 20)
    maps = _signal(_noisy(shapes, 4)).predict_fe_state(show_progressbar=False)
    fraction = np.asarray(maps["metallic_fraction"].data).reshape(20, 3)
    medians = np.nanmedian(fraction, axis=0)
    assert medians[0] < 0.15
    assert 0.25 < medians[1] < 0.75
    assert medians[2] > 0.8


def _metal_detector() -> StateDetector:
    return load_default_detectors()[0]


def test_detector_provenance_and_threshold_are_in_the_maps(metal_maps):
    provenance = metal_maps.provenance
    detector = _metal_detector()
    assert provenance["ood_thresholds"]["metallic_fraction"] == detector.flag_fraction
    held_out = provenance["state_detectors"][0]["held_out"]
    # The detector alone, at its threshold, on held-out simulated spectra.
    assert held_out["false_positive"] <= 0.015
    assert held_out["metallic_fraction_pure_detected"] >= 0.9


def test_detector_file_round_trips_and_a_changed_byte_is_refused(tmp_path):
    detector = _metal_detector()
    path = detector.save(tmp_path / "det.json")
    again = StateDetector.load(path)
    model = load_default_model()
    spectra = draw_metal_spectra(model.energy, 5, rng=0)
    assert np.array_equal(
        detector.predict(model, spectra)[0], again.predict(model, spectra)[0]
    )
    npz = path.with_suffix(".npz")
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="hash"):
        StateDetector.load(path)
    folder = default_detector_folder()
    for name in SHIPPED_DETECTORS:
        document = json.loads((folder / name).read_text())
        assert document["format"] == "hyperspy_fe_ml.StateDetector"
        assert document["model_sha256"] == model.info["arrays_sha256"]


def test_another_models_features_are_not_read(tmp_path):
    from dataclasses import replace

    from hyperspy_fe_ml.predict import _detectors_for

    model = load_default_model()
    other = replace(model, info={**model.info, "arrays_sha256": "0" * 64})
    detector = _metal_detector()
    assert detector.reads(model) and not detector.reads(other)
    assert _detectors_for(other) == ()
    assert len(_detectors_for(model)) == len(SHIPPED_DETECTORS)
    with pytest.raises(ValueError, match="another valence model"):
        detector.predict(other, draw_metal_spectra(model.energy, 2, rng=0))
    with pytest.raises(ValueError, match="features"):
        detector.predict_features(np.zeros((2, 3)))
    # Maps of a model without a detector: no metallic fraction, no metallic flag.
    maps = _signal(_noisy(draw_metal_spectra(E, 4, rng=1), 5)).predict_fe_state(
        other, show_progressbar=False
    )
    assert np.all(np.isnan(np.asarray(maps["metallic_fraction"].data)))
    assert not np.any(np.asarray(maps["flags"].data).astype(int) & FLAG_METALLIC)


def default_detector_folder():
    from importlib import resources
    from pathlib import Path

    return Path(str(resources.files("hyperspy_fe_ml") / "data"))


@pytest.mark.simulate
def test_low_spin_and_fe4_are_flagged_and_oxides_are_not():
    pytest.importorskip("edrixs")
    from hyperspy_fe_ml.library.unlisted import draw_unlisted_spectra

    rng = np.random.default_rng(8)
    # 10Dq values and a Slater scaling the detector was not trained on.
    sets = ((2, 2.6, 0.8), (3, 3.8, 0.8), (4, 2.0, 0.8))
    shapes = draw_unlisted_spectra(E, 60, rng, sets)
    maps = _signal(_noisy(shapes, 9)).predict_fe_state(show_progressbar=False)
    flags = np.asarray(maps["flags"].data).astype(int)
    assert np.mean((flags & FLAG_UNLISTED) != 0) >= 0.9
    assert np.nanmedian(np.asarray(maps["unlisted_fraction"].data)) > 0.7
    oxides = np.stack(
        [
            reference_spectrum(v, "Oh", E, resolution=r)
            for v in (2, 3)
            for r in (0.3, 1.0)
        ]
        * 10
    )
    maps = _signal(_noisy(oxides, 10)).predict_fe_state(show_progressbar=False)
    flags = np.asarray(maps["flags"].data).astype(int)
    assert not np.any(flags & FLAG_UNLISTED)


def test_a_small_detector_trains_and_separates_metal_from_oxides(tmp_path):
    from hyperspy_fe_ml.cli import main
    from hyperspy_fe_ml.training.state_detector import (
        DetectorTrainingSettings,
        train_state_detector,
    )

    small = DetectorTrainingSettings(
        n_train=3000, n_test=600, n_members=1, hidden=(32,), max_iter=60,
        kind="metal",
    )  # fmt: skip
    detector = train_state_detector(settings=small)
    rates = detector.info["held_out"]
    assert set(rates) == {
        "false_positive",
        "metallic_fraction_pure_detected",
        "metallic_fraction_mae",
        "n",
    }
    assert detector.outputs == ("metallic_fraction",)
    # Even a small detector tells them apart far better than chance.
    assert rates["metallic_fraction_pure_detected"] > 0.7
    assert rates["false_positive"] < 0.15
    assert rates["metallic_fraction_mae"] < 0.3
    path = detector.save(tmp_path / "small.json")
    assert StateDetector.load(path).info["held_out"] == rates
    assert (
        main(["train-detector", "-o", str(tmp_path / "x.json"), "--n-train", "-5"]) == 2
    )
