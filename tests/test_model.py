"""FeStateModel: fitting, calibrated intervals, OOD flag, safe storage with a hash."""

import json

import numpy as np
import pytest

from hyperspy_fe_ml.kernels.preprocess import normalise_spectra
from hyperspy_fe_ml.model import OUTPUTS, FeStateModel, ModelFileError
from hyperspy_fe_ml.signals import CANONICAL_ENERGY_EV as ENERGY
from hyperspy_fe_ml.synthetic import fe_l23_edge
from hyperspy_fe_ml.training.fit import FitSettings, fit_fe_state_model

# Tiny test models stop before scikit-learn calls them converged; that is the point.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _labelled(n, rng, counts=1000.0):
    """Noisy Fe2+/Fe3+ mixtures of the phenomenological edge, with labels."""
    x = rng.uniform(0.0, 1.0, n)
    expected = counts * fe_l23_edge(ENERGY, x)
    spectra = rng.poisson(expected + 50.0).astype(float) - 50.0
    spectra = normalise_spectra(ENERGY, spectra, 704.0, 727.0, 0)
    targets = np.stack([2.0 + x, x, np.zeros(n), np.full(n, 6.0)], axis=1)
    return spectra, targets


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    train = _labelled(2000, rng)
    calibration = _labelled(800, rng)
    test = _labelled(800, rng)
    settings = FitSettings(n_members=3, hidden_layers=(48,), max_iter=150, seed=1)
    model = fit_fe_state_model(ENERGY, *train, *calibration, settings)
    return model, test


def test_fitted_model_recovers_valence(fitted):
    model, (spectra, targets) = fitted
    p = model.predict(spectra)
    assert set(OUTPUTS) <= set(p)
    rmse = np.sqrt(np.mean((p["valence"] - targets[:, 0]) ** 2))
    assert rmse < 0.06
    fe3_rmse = np.sqrt(np.mean((p["fe3_fraction"] - targets[:, 1]) ** 2))
    assert fe3_rmse < 0.08
    assert np.all((p["valence"] >= 2.0) & (p["valence"] <= 4.0))


def test_intervals_cover_about_ninety_percent(fitted):
    model, (spectra, targets) = fitted
    p = model.predict(spectra)
    inside = np.abs(p["valence"] - targets[:, 0]) <= 1.6449 * p["valence_std"]
    assert 0.85 <= inside.mean() <= 0.96


def test_ood_flags_a_spectrum_unlike_any_training_spectrum(fitted):
    model, (spectra, _) = fitted
    alien = np.exp(-0.5 * ((ENERGY - 716.0) / 2.0) ** 2)[None, :]
    alien = normalise_spectra(ENERGY, alien, 704.0, 727.0, 0)
    p = model.predict(np.vstack([spectra[:200], alien]))
    assert p["ood_flag"][-1]
    assert p["ood_score"][-1] > 3 * model.ood_threshold
    assert p["ood_flag"][:200].mean() < 0.03


def test_bad_rows_give_nan_and_bad_shapes_raise(fitted):
    model, (spectra, _) = fitted
    batch = spectra[:3].copy()
    batch[1, 10] = np.nan
    p = model.predict(batch)
    assert np.isnan(p["valence"][1]) and p["ood_flag"][1]
    assert np.isfinite(p["valence"][[0, 2]]).all()
    with pytest.raises(ValueError, match=r"\(n, 300\)"):
        model.predict(spectra[:, :200])


def test_save_load_round_trip_is_exact_to_float32(fitted, tmp_path):
    model, (spectra, _) = fitted
    meta = model.save(tmp_path / "model.json")
    loaded = FeStateModel.load(meta)
    a, b = model.predict(spectra[:50]), loaded.predict(spectra[:50])
    np.testing.assert_allclose(a["valence"], b["valence"], atol=1e-5)
    assert loaded.ood_threshold == model.ood_threshold
    assert loaded.info["n_train"] == 2000
    with np.load(tmp_path / "model.npz", allow_pickle=False) as arrays:
        assert all(arrays[k].dtype != object for k in arrays.files)


def test_tampered_or_foreign_files_are_refused(fitted, tmp_path):
    model, _ = fitted
    meta = model.save(tmp_path / "model.json")
    with pytest.raises(ModelFileError, match="do not match their hash"):
        FeStateModel.load(meta, sha256="0" * 64)
    npz = tmp_path / "model.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="corrupt or was changed"):
        FeStateModel.load(meta)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ModelFileError, match="not a hyperspy_fe_ml model"):
        FeStateModel.load(other)
    with pytest.raises(ModelFileError, match="No model file"):
        FeStateModel.load(tmp_path / "missing.json")


def test_fit_refuses_bad_training_data():
    rng = np.random.default_rng(2)
    spectra, targets = _labelled(60, rng)
    spectra[3, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        fit_fe_state_model(ENERGY, spectra, targets, spectra, targets)
    with pytest.raises(ValueError, match="shape"):
        fit_fe_state_model(ENERGY, spectra[:, :10], targets, spectra, targets)


def test_shipped_model_loads_with_its_pinned_hash_and_reads_references():
    from hyperspy_fe_ml.library import reference_spectrum
    from hyperspy_fe_ml.model import DEFAULT_MODEL_SHA256, load_default_model

    model = load_default_model()
    assert len(DEFAULT_MODEL_SHA256) == 64
    fe2 = reference_spectrum(2, "Oh", ENERGY)
    fe3 = reference_spectrum(3, "Oh", ENERGY)
    td3 = reference_spectrum(3, "Td", ENERGY)
    spectra = np.vstack([fe2, fe3, 0.5 * fe2 + 0.5 * fe3, td3])
    spectra = normalise_spectra(ENERGY, spectra, 704.0, 727.0, 0)
    p = model.predict(spectra)
    np.testing.assert_allclose(p["valence"], [2.0, 3.0, 2.5, 3.0], atol=0.25)
    assert p["td_fraction"][3] > 0.5 and np.all(p["td_fraction"][:3] < 0.5)
    assert not p["ood_flag"].any()
    # The same spectra 2 eV off: the model reads shape, not only position.
    shifted = np.vstack([np.interp(ENERGY + 2.0, ENERGY, s) for s in spectra])
    q = model.predict(normalise_spectra(ENERGY, shifted, 704.0, 727.0, 0))
    np.testing.assert_allclose(q["valence"], [2.0, 3.0, 2.5, 3.0], atol=0.3)
