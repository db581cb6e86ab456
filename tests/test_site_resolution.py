"""The Fe2+ site symmetry the L2,3 shape does not resolve: wider site uncertainty
and an information flag, values kept."""

import numpy as np
import pytest
from helpers import fe_signal

from hyperspy_fe_ml.kernels.model_inputs import (
    FLAG_FE2_SITE_UNRESOLVED,
    FLAGS_UNREADABLE,
)
from hyperspy_fe_ml.library import reference_spectrum
from hyperspy_fe_ml.model import load_default_model
from hyperspy_fe_ml.predict import model_input_spectra
from hyperspy_fe_ml.site_resolution import (
    UNIFORM_FRACTION_STD,
    widen_for_unresolved_fe2_sites,
)


def test_uncertainty_grows_with_the_fe2_share_in_quadrature():
    fe3 = np.array([1.0, 0.5, 0.0, 0.0])
    td_std = np.array([0.05, 0.05, 0.05, 0.0])
    cn_std = np.array([0.1, 0.1, 0.1, 0.0])
    columns = {
        "fe3_fraction": fe3,
        "td_fraction_std": td_std,
        "coordination_number_std": cn_std,
    }
    flagged = widen_for_unresolved_fe2_sites(columns)
    assert flagged.tolist() == [False, False, True, True]
    share = 1.0 - fe3
    np.testing.assert_allclose(
        columns["td_fraction_std"],
        np.sqrt(td_std**2 + (share * UNIFORM_FRACTION_STD) ** 2),
    )
    # Fe2+ coordination numbers span 4 (Td) to 6 (Oh).
    np.testing.assert_allclose(
        columns["coordination_number_std"],
        np.sqrt(cn_std**2 + (2 * share * UNIFORM_FRACTION_STD) ** 2),
    )
    # A pure Fe3+ pixel keeps its uncertainty; a pure Fe2+ one has at least that of
    # a uniform fraction, 1/sqrt(12).
    assert columns["td_fraction_std"][0] == pytest.approx(0.05)
    assert columns["td_fraction_std"][3] == pytest.approx(0.2887, abs=1e-4)
    # The arrays passed in are not written to.
    assert td_std.tolist() == [0.05, 0.05, 0.05, 0.0]


def test_fe2_pixels_are_flagged_and_keep_their_values():
    energy = np.arange(690.0, 740.0, 0.1)
    data = np.stack(
        [reference_spectrum(2, "Oh", energy), reference_spectrum(3, "Oh", energy)]
    ).astype("float32")
    s = fe_signal(data)
    # Simulated spectra: the measured-spectrum term is left out, so the widening
    # is seen alone.
    maps = s.predict_fe_state(
        background_removed=True, measured=False, show_progressbar=False
    )
    flags = np.asarray(maps["flags"].data).astype(int)
    assert not np.any(flags & FLAGS_UNREADABLE)
    assert (flags & FLAG_FE2_SITE_UNRESOLVED).astype(bool).tolist() == [True, False]
    # The model's own reading of the same inputs (float64 here, float32 in the
    # maps: equal to 2e-3): values unchanged, the site
    # uncertainty of the Fe2+ pixel widened by its Fe2+ share, the Fe3+ one not.
    aligned, _, _ = model_input_spectra(s, background_removed=True)
    own = load_default_model().predict(aligned)
    for name in ("valence", "fe3_fraction", "td_fraction", "valence_std"):
        np.testing.assert_allclose(np.asarray(maps[name].data), own[name], atol=2e-3)
    share = 1.0 - own["fe3_fraction"]
    np.testing.assert_allclose(
        np.asarray(maps["td_fraction_std"].data),
        np.hypot(own["td_fraction_std"], share * UNIFORM_FRACTION_STD),
        atol=2e-3,
    )
    assert np.asarray(maps["td_fraction_std"].data)[0] >= UNIFORM_FRACTION_STD * 0.9
    assert np.asarray(maps["td_fraction_std"].data)[1] < UNIFORM_FRACTION_STD
