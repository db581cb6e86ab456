"""Out-of-distribution tests: library reconstruction, edge amplitude, spikes (issue 16).

Every spectrum here is made from the shipped library by the package's own code.
"""

import hyperspy.api as hs
import numpy as np
import pytest
from helpers import fe_signal
from scipy.optimize import nnls

from hyperspy_fe_ml.kernels.model_inputs import (
    FLAG_NO_EDGE,
    FLAG_OOD_RECONSTRUCTION,
    FLAG_OOD_SPIKE,
    FLAG_OUT_OF_DISTRIBUTION,
    FLAGS_UNREADABLE,
)
from hyperspy_fe_ml.kernels.reconstruction import nnls_gram, reconstruction_scores
from hyperspy_fe_ml.library import reference_spectrum
from hyperspy_fe_ml.model import load_default_model
from hyperspy_fe_ml.ood import (
    MIN_RECONSTRUCTION_SNR,
    MISFIT_THRESHOLD,
    SPIKE_THRESHOLD,
    library_basis,
    reconstruction_test,
)

ENERGY = np.arange(690.0, 745.0, 0.1)


@pytest.fixture(scope="module")
def model():
    return load_default_model()


def _signal(data: np.ndarray) -> hs.signals.BaseSignal:
    return fe_signal(np.asarray(data, dtype=np.float32), ENERGY[0], 0.1)


@pytest.mark.parametrize("compiled", [True, False])
def test_nnls_gram_matches_scipy(compiled):
    rng = np.random.default_rng(4)
    solve = nnls_gram if compiled else nnls_gram.py_func
    for _ in range(20):
        b = rng.normal(size=(8, 40))
        z = rng.normal(size=40)
        out = np.empty(8)
        solve(b @ b.T, b @ z, out)
        expected, _ = nnls(b.T, z)
        np.testing.assert_allclose(out, expected, atol=1e-9)
        assert np.all(out >= 0)


def _scores(model, spectra, compiled=True):
    x, n2, c = model.standardise(spectra)
    basis = library_basis(model.energy)
    kernel = reconstruction_scores if compiled else reconstruction_scores.py_func
    return kernel(
        np.nan_to_num(x),
        np.isfinite(c),
        model.input_mean,
        model.input_scale,
        basis.basis,
        basis.gram,
        basis.n_library,
        0.004,
    )


def test_projection_scores_foreign_shapes_and_spikes_and_agree_with_python(model):
    from hyperspy_fe_ml.kernels.reconstruction import projection_scores
    from hyperspy_fe_ml.ood import (
        MISFIT_SCREEN,
        PROJECTION_COMPONENTS,
        SPIKE_SCREEN,
        projection_basis,
    )

    g = model.energy
    rng = np.random.default_rng(3)
    fe3 = reference_spectrum(3, "Oh", g, resolution=0.8)
    foreign = fe3 + 3.0 * fe3.max() * np.exp(-0.5 * ((g - 714.0) / 0.7) ** 2)
    spiked = fe3.copy()
    spiked[170] += 0.8 * fe3.max()
    clean = np.stack([fe3, foreign, spiked])
    noisy = clean + rng.normal(0.0, 0.01 * clean.max(), clean.shape)
    x, _, c = model.standardise(noisy)
    args = (
        np.ascontiguousarray(np.nan_to_num(x), dtype=np.float32),
        np.isfinite(c),
        model.input_mean,
        model.input_scale,
        projection_basis(g),
        PROJECTION_COMPONENTS,
        0.004,
    )
    misfit, snr, spike = projection_scores(*args)
    assert misfit[0] < MISFIT_SCREEN and spike[0] < SPIKE_SCREEN
    assert misfit[1] > 2 * MISFIT_SCREEN
    assert spike[2] > SPIKE_SCREEN
    assert snr[0] > 100
    for fast, slow in zip(
        (misfit, snr, spike), projection_scores.py_func(*args), strict=True
    ):
        assert np.allclose(fast, slow, rtol=1e-3)


@pytest.mark.parametrize("compiled", [True, False])
def test_library_spectra_pass_foreign_shapes_and_spikes_fail(model, compiled):
    g = model.energy
    rng = np.random.default_rng(0)
    fe2 = reference_spectrum(2, "Oh", g, ten_dq=1.05, slater_scale=0.75)
    fe3 = reference_spectrum(3, "Td", g, slater_scale=0.85)
    mixture = 0.4 * fe2 + 0.6 * reference_spectrum(3, "Oh", g, ten_dq=1.35)
    # An edge under a strong unrelated peak (another element's line at 714 eV).
    foreign = fe3 + 3.0 * fe3.max() * np.exp(-0.5 * ((g - 714.0) / 0.7) ** 2)
    spiked = mixture.copy()
    spiked[170] += 0.8 * mixture.max()
    clean = np.stack([fe2, fe3, mixture, foreign, spiked])
    noisy = clean + rng.normal(0.0, 0.003 * clean.max(), clean.shape)
    misfit, snr, spike = _scores(model, noisy, compiled)
    assert np.all(misfit[:3] < MISFIT_THRESHOLD)
    assert np.all(snr[:3] > 10 * MIN_RECONSTRUCTION_SNR)
    assert np.all(spike[:3] < SPIKE_THRESHOLD)
    assert misfit[3] > 2 * MISFIT_THRESHOLD
    assert spike[4] > SPIKE_THRESHOLD


def test_noise_normalised_as_an_edge_has_no_amplitude(model):
    rng = np.random.default_rng(1)
    noise = rng.normal(0.0, 1.0, (400, model.n_channels))
    # Keep the rows whose white-line integral came out positive (they pass the
    # integral test by chance); the library amplitude finds no edge in them.
    x, n2, c = model.standardise(noise)
    t = reconstruction_test(
        model.energy,
        np.nan_to_num(x),
        np.isfinite(c),
        model.input_mean,
        model.input_scale,
    )
    scored = np.isfinite(t["reconstruction_snr"])
    assert scored.sum() > 100
    assert np.all(t["no_edge"][scored])


def test_predict_flags_noise_spikes_and_says_which_test_failed(model):
    rng = np.random.default_rng(2)
    background = 4e3 * (ENERGY / 690.0) ** -3.2
    edge = (
        2e3
        * reference_spectrum(3, "Oh", ENERGY)
        / reference_spectrum(3, "Oh", ENERGY).max()
    )
    clean = np.tile(background + edge, (6, 1))
    clean[1] += 3.0 * edge.max() * np.exp(-0.5 * ((ENERGY - 714.0) / 0.7) ** 2)
    data = rng.poisson(clean).astype(np.float32)
    data[2, np.searchsorted(ENERGY, 716.0)] += 5 * edge.max()
    noise = rng.poisson(np.tile(background, (300, 1))).astype(np.float32)
    maps = _signal(np.concatenate([data, noise])).predict_fe_state(
        show_progressbar=False
    )
    flags = np.asarray(maps["flags"].data).astype(int)
    assert maps["flags"].data.dtype == np.uint16
    assert (
        np.all(flags[[0, 3, 4, 5]] & (FLAG_OUT_OF_DISTRIBUTION | FLAGS_UNREADABLE)) == 0
    )
    assert flags[1] & FLAG_OOD_RECONSTRUCTION and flags[1] & FLAG_OUT_OF_DISTRIBUTION
    assert flags[2] & FLAG_OOD_SPIKE and flags[2] & FLAG_OUT_OF_DISTRIBUTION
    # Pure background: every pixel unreadable, most by the integral test, the
    # rest by the library amplitude.
    assert np.all(flags[6:] & FLAG_NO_EDGE)
    assert np.all(np.isnan(np.asarray(maps["valence"].data)[6:]))
    misfit = np.asarray(maps["reconstruction_misfit"].data)
    assert misfit[1] > MISFIT_THRESHOLD > misfit[0]
    thresholds = maps.provenance["ood_thresholds"]
    assert thresholds["reconstruction_misfit"] == MISFIT_THRESHOLD
    assert thresholds["ood_score"] == pytest.approx(model.ood_threshold)
