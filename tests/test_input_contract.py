"""The input contract of ``predict_fe_state``: a right answer or a flagged one.

Spectra are built from the package's own library (never from measured files): a
mixture of the Fe2+ and Fe3+ octahedral references on a power-law background,
with Poisson noise. Each test crops, shifts or trims it as real acquisitions and
published spectra are, and compares the valence with the prediction on the whole,
unshifted spectrum.
"""

import re
import warnings

import hyperspy.api as hs
import numpy as np
import pytest
from helpers import fe_signal

from hyperspy_fe_ml.kernels.model_inputs import (
    FLAG_BACKGROUND_FALLBACK,
    FLAG_PARTIAL_WINDOW,
    FLAGS_UNREADABLE,
)
from hyperspy_fe_ml.library import reference_spectrum

ENERGY = np.round(np.arange(685.0, 750.0, 0.05), 6)


def _counts(fe3: float, background: float = 1.5, seed: int = 0) -> np.ndarray:
    """Raw counts: an Fe2+/Fe3+ mixture (L3 maximum 4000 counts) on a background."""
    edge = (1 - fe3) * reference_spectrum(2, "Oh", ENERGY) + fe3 * reference_spectrum(
        3, "Oh", ENERGY
    )
    edge = edge / edge.max()
    expected = 4000.0 * (edge + background * (ENERGY / 705.0) ** -3.5)
    return np.random.default_rng(seed).poisson(expected).astype(np.float32)


def _signal(energy: np.ndarray, data: np.ndarray) -> hs.signals.BaseSignal:
    return fe_signal(np.ascontiguousarray(data), energy[0], 0.05)


def _predict(s, **kwargs):
    """valence, flags, l3_centroid and the warnings of a one-spectrum prediction."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        maps = s.predict_fe_state(**kwargs)
    values = [float(np.ravel(maps[k].data)[0]) for k in ("valence", "l3_centroid")]
    flags = int(np.ravel(maps["flags"].data)[0])
    messages = [str(w.message) for w in caught]
    return values[0], flags, values[1], messages


def _l3_l2(energy: np.ndarray, spectrum: np.ndarray) -> tuple[float, float]:
    """L3 and L2 maxima of a background-free spectrum, as a user would read them."""
    l3 = energy[(energy > 700) & (energy < 716)][
        np.argmax(spectrum[(energy > 700) & (energy < 716)])
    ]
    window = (energy > l3 + 10) & (energy < l3 + 16)
    return float(l3), float(energy[window][np.argmax(spectrum[window])])


@pytest.fixture(scope="module", params=[0.0, 0.5, 1.0], ids=["Fe2+", "mixed", "Fe3+"])
def standard(request):
    fe3 = request.param
    raw = _counts(fe3, seed=int(10 * fe3))
    s = _signal(ENERGY, raw)
    valence, flags, centroid, messages = _predict(s)
    assert np.isfinite(valence) and flags & FLAGS_UNREADABLE == 0
    assert not any("offset" in m for m in messages)
    assert valence == pytest.approx(2 + fe3, abs=0.25)
    return raw, valence, centroid


@pytest.mark.parametrize("offset", [-9.5, -5.0, -3.0, 4.0, 8.0])
def test_offset_axes_predict_like_the_calibrated_one_and_warn_in_ev(standard, offset):
    (
        raw,
        valence,
        centroid,
    ) = standard
    v, flags, c, messages = _predict(_signal(ENERGY + offset, raw))
    assert v == pytest.approx(valence, abs=0.1)
    assert c == pytest.approx(centroid + offset, abs=0.15)  # the L3 map keeps the axis
    named = [
        float(x)
        for m in messages
        if "offset" in m
        for x in re.findall(r"offset by ([-+]\d+(?:\.\d+)?) eV", m)
    ]
    if abs(offset) > 3.5:
        assert named and abs(named[0] - offset) < 1.0
    elif abs(offset) < 2.5:
        assert not named


@pytest.mark.parametrize(("below", "above"), [(3.0, 2.0), (5.0, 4.0), (8.0, 6.0)])
def test_cropped_background_removed_spectra_predict_like_the_full_one(
    standard, below, above
):
    raw, _, _ = standard
    clean = _signal(ENERGY, raw).remove_fe_background()
    full, _, _, _ = _predict(clean)
    y = np.asarray(clean.data, dtype=float)
    l3, l2 = _l3_l2(ENERGY, y)
    keep = (ENERGY >= l3 - below) & (ENERGY <= l2 + above)
    v, flags, _, _ = _predict(_signal(ENERGY[keep], y[keep]))
    assert np.isfinite(v) and v == pytest.approx(full, abs=0.15)
    assert flags & FLAGS_UNREADABLE == 0
    if below <= 5.0:  # the model's window reaches past the data
        assert flags & FLAG_PARTIAL_WINDOW


@pytest.mark.parametrize("pre_edge", [2.0, 6.0])
def test_raw_counts_with_a_short_pre_edge_are_read_and_flagged(standard, pre_edge):
    raw, valence, _ = standard
    # The onset: where the edge (the counts less their known background) first
    # reaches 5 % of its maximum — 1.7 eV further down for a mixture, whose Fe2+
    # line lies below the Fe3+ one.
    edge = raw - 4000.0 * 1.5 * (ENERGY / 705.0) ** -3.5
    smooth = np.convolve(edge, np.ones(9) / 9, "same")
    onset = ENERGY[np.argmax((smooth > 0.05 * smooth.max()) & (ENERGY > 700))]
    keep = ENERGY >= onset - pre_edge
    v, flags, _, _ = _predict(_signal(ENERGY[keep], raw[keep]))
    assert np.isfinite(v) and v == pytest.approx(valence, abs=0.25)
    if pre_edge < 3.0:
        assert flags & FLAG_BACKGROUND_FALLBACK


def test_raw_counts_without_any_pre_edge_are_refused_naming_the_fix(standard):
    raw, _, _ = standard
    l3, _ = _l3_l2(ENERGY, raw - 4000.0 * 1.5 * (ENERGY / 705.0) ** -3.5)
    keep = ENERGY >= l3 - 1.0
    with pytest.raises(ValueError, match="no pre-edge.*background_removed=True"):
        _signal(ENERGY[keep], raw[keep]).predict_fe_state(background_removed=False)


def test_an_axis_short_of_the_white_lines_names_the_range_found_and_needed(standard):
    raw, _, _ = standard
    keep = (ENERGY >= 690.0) & (ENERGY <= 718.0)
    with pytest.raises(ValueError, match=r"covers 690.00–718.00 eV.*needs at least"):
        _signal(ENERGY[keep], raw[keep]).predict_fe_state()


def test_a_spectrum_image_with_an_offset_axis_keeps_its_l3_map(standard):
    raw, valence, centroid = standard
    image = np.stack([raw, np.full_like(raw, raw.mean())])  # an edge and no edge
    maps = _signal(ENERGY - 6.0, image).predict_fe_state()
    assert maps["valence"].data[0] == pytest.approx(valence, abs=0.1)
    assert maps["l3_centroid"].data[0] == pytest.approx(centroid - 6.0, abs=0.15)
    assert np.isnan(maps["valence"].data[1]) and maps["flags"].data[1] != 0


# -- never silent -----------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=30, deadline=None)
@given(
    fe3=st.floats(0.0, 1.0),
    background=st.floats(0.0, 3.0),
    peak=st.floats(3.0, 2e4),
    offset=st.floats(-10.0, 10.0),
    below=st.floats(0.5, 14.0),
    above=st.floats(-4.0, 15.0),
    removed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_wherever_a_map_is_nan_the_flags_say_why(
    fe3, background, peak, offset, below, above, removed, seed
):
    rng = np.random.default_rng(seed)
    edge = (1 - fe3) * reference_spectrum(2, "Oh", ENERGY) + fe3 * reference_spectrum(
        3, "Oh", ENERGY
    )
    edge = edge / edge.max()
    level = 0.0 if removed else background
    expected = peak * (edge + level * (ENERGY / 705.0) ** -3.5)
    noisy = rng.poisson(np.stack([expected, 0.2 * expected])).astype(np.float32)
    image = np.concatenate([noisy, np.zeros((1, ENERGY.size), np.float32)])
    if removed:  # background-removed data: zero-mean noise on the edge alone
        image[:2] -= rng.poisson(peak * 0.1, image[:2].shape) - peak * 0.1
    l3, l2 = _l3_l2(ENERGY, edge)
    keep = (ENERGY >= l3 - below) & (ENERGY <= l2 + above)
    s = _signal(ENERGY[keep] + offset, image[:, keep])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            maps = s.predict_fe_state()
    except ValueError as error:
        assert re.search(r"eV|pre-edge|channels", str(error))
        return
    flags = maps["flags"].data
    assert flags[2] != 0  # the empty pixel
    for name, m in maps.items():
        if name != "flags":
            assert np.all(flags[np.isnan(m.data)] != 0), name


def test_the_calibrated_centroids_are_those_of_the_library_references():
    from hyperspy_fe_ml.energy_axis import FE2_L3_CENTROID_EV, FE3_L3_CENTROID_EV
    from hyperspy_fe_ml.kernels.preprocess import l3_centroid

    grid = np.arange(700.0, 730.0, 0.05)
    for valence, expected in ((2, FE2_L3_CENTROID_EV), (3, FE3_L3_CENTROID_EV)):
        spectrum = reference_spectrum(valence, "Oh", grid)[None, :]
        centroid = l3_centroid(grid, spectrum, 702.0, 716.0, 5.0, 3)[0]
        assert centroid == pytest.approx(expected, abs=0.01)
