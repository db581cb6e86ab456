"""The augmentation kernels, compiled and as plain Python, against NumPy references
and the statistics they must reproduce."""

import math

import numpy as np
import pytest
from scipy.integrate import quad

from hyperspy_fe_ml.kernels import augment as ka
from hyperspy_fe_ml.signals import CANONICAL_ENERGY_EV

E = CANONICAL_ENERGY_EV  # 700-729.9 eV, 0.1 eV


def _variants(kernel):
    """The numba-compiled kernel and its pure-Python original."""
    return pytest.mark.parametrize(
        "fn", [kernel, kernel.py_func], ids=["compiled", "py_func"]
    )


def _gauss(energy, centre, sigma):
    return np.exp(-0.5 * ((energy - centre) / sigma) ** 2)


def _edge(energy):
    return _gauss(energy, 709.5, 0.6) + 0.4 * _gauss(energy, 722.3, 0.8)


def _centroid(energy, row):
    return float((energy * row).sum() / row.sum())


def _nonuniform_axis(rng, low=700.0, high=730.0, n=400):
    inner = np.sort(rng.uniform(low, high, n - 2))
    return np.concatenate([[low], inner, [high]])


def _quiet(**changes):
    """Settings with every step off, then ``changes``."""
    off = {
        "thickness": (0.0, 0.0),
        "fwhm": (0.0, 0.0),
        "offset": (0.0, 0.0),
        "dispersion": (0.0, 0.0),
        "quadratic": (0.0, 0.0),
        "noise": False,
        "spike_probability": 0.0,
        "background_removed_probability": 0.0,
        "power_residual_probability": 0.0,
        "slope": (0.0, 0.0),
        "constant": (0.0, 0.0),
        "pre_edge_probability": 0.0,
        "normalise": False,
    }
    return ka.AugmentationSettings(**{**off, **changes})


# -- energy scale ---------------------------------------------------------------------


@_variants(ka.distort_energy_scale)
@pytest.mark.parametrize("offset", [1.3, -2.7])
def test_offset_moves_the_centroid_down_by_the_offset(fn, offset):
    s = _gauss(E, 712.0, 0.5)[None, :]
    out = fn(E, s, np.array([offset]), np.zeros(1), np.zeros(1), 715.0)
    shift = _centroid(E, out[0]) - _centroid(E, s[0])
    assert shift == pytest.approx(-offset, abs=0.01)


@_variants(ka.distort_energy_scale)
def test_dispersion_error_squeezes_towards_the_reference(fn):
    s = _gauss(E, 722.0, 0.4)[None, :]
    out = fn(E, s, np.zeros(1), np.array([0.01]), np.zeros(1), 712.0)
    # E' = 712 + 1.01 (E - 712) = 722  =>  E = 712 + 10 / 1.01
    assert _centroid(E, out[0]) == pytest.approx(712.0 + 10.0 / 1.01, abs=0.01)


@_variants(ka.distort_energy_scale)
def test_energy_scale_matches_numpy_interp(fn):
    rng = np.random.default_rng(1)
    for e in (E, _nonuniform_axis(rng)):
        s = rng.normal(size=(4, e.size)).cumsum(axis=1)
        offset = rng.uniform(-3, 3, 4)
        d = rng.uniform(-0.01, 0.01, 4)
        q = rng.uniform(-5e-4, 5e-4, 4)
        before = s.copy()
        out = fn(e, s, offset, d, q, 715.0)
        np.testing.assert_array_equal(s, before)  # input untouched
        for p in range(4):
            x = e - 715.0
            at = 715.0 + (1 + d[p]) * x + q[p] * x**2 + offset[p]
            # np.interp holds the end values beyond the axis, as documented.
            np.testing.assert_allclose(out[p], np.interp(at, e, s[p]), rtol=1e-12)


# -- resolution -----------------------------------------------------------------------


@_variants(ka.gaussian_broadening)
@pytest.mark.parametrize("fwhm", [0.2, 0.7, 1.5])
def test_broadening_adds_variance_in_quadrature_and_keeps_area(fn, fwhm):
    sigma0 = 0.4
    s = _gauss(E, 714.0, sigma0)[None, :]
    out = fn(E, s, np.array([fwhm]))
    sigma = math.sqrt(((E - 714.0) ** 2 * out[0]).sum() / out[0].sum())
    expected = math.hypot(sigma0, fwhm / 2.3548)
    assert sigma == pytest.approx(expected, rel=0.01)
    assert out.sum() == pytest.approx(s.sum(), rel=1e-10)


@_variants(ka.gaussian_broadening)
def test_broadening_matches_numpy_convolution_with_held_ends(fn):
    rng = np.random.default_rng(2)
    s = rng.normal(size=(3, E.size)).cumsum(axis=1)
    fwhm = np.array([0.25, 0.9, 1.5])
    out = fn(E, s, fwhm)
    for p in range(3):
        sigma = fwhm[p] / ka.FWHM_PER_SIGMA
        m = int(4.0 * sigma / 0.1)
        taps = np.exp(-0.5 * (np.arange(-m, m + 1) * 0.1 / sigma) ** 2)
        padded = np.pad(s[p], m, mode="edge")
        expected = np.convolve(padded, taps / taps.sum(), mode="valid")
        np.testing.assert_allclose(out[p], expected, rtol=1e-10, atol=1e-10)


@_variants(ka.gaussian_broadening)
def test_broadening_identity_and_flat_on_any_axis(fn):
    rng = np.random.default_rng(3)
    s = _edge(E)[None, :]
    np.testing.assert_array_equal(fn(E, s, np.zeros(1)), s)
    e = _nonuniform_axis(rng, n=600)
    flat = np.full((2, e.size), 3.0)
    np.testing.assert_allclose(fn(e, flat, np.array([0.3, 1.5])), 3.0, rtol=1e-12)
    # The quadrature rule holds on a non-uniform axis too, a little less precisely.
    g = _gauss(e, 714.0, 0.4)[None, :]
    out = fn(e, g, np.array([1.0]))
    width = np.gradient(e)
    sigma = math.sqrt(
        ((e - 714.0) ** 2 * out[0] * width).sum() / (out[0] * width).sum()
    )
    assert sigma == pytest.approx(math.hypot(0.4, 1.0 / 2.3548), rel=0.02)


# -- plural scattering ----------------------------------------------------------------


def _drude(energy, ep=25.0, gamma=8.0):
    return energy * gamma * ep**2 / ((energy**2 - ep**2) ** 2 + (energy * gamma) ** 2)


@_variants(ka.drude_loss_weights)
def test_drude_weights_against_quadrature(fn):
    step, onset = 0.1, 2.0
    w = fn(step, 600, 25.0, 8.0, onset)
    total = quad(_drude, onset, np.inf, limit=400)[0]
    assert np.all(w[:20] == 0.0)  # no loss below the band gap
    for i in (21, 150, 247, 599):
        a, b = (i - 0.5) * step, (i + 0.5) * step
        assert w[i] == pytest.approx(quad(_drude, a, b)[0] / total, rel=1e-8)


def _plural_reference(row, loss, t, orders=40):
    """The Poisson series with NumPy: e^-t sum t^n / n! row * loss^(*n).

    Below the axis the row is its first value; the full response has unit mass,
    so that level takes the response mass beyond each channel's reach.
    """
    n_ch = row.size
    response = np.zeros(n_ch)
    power = np.zeros(n_ch)
    power[0] = 1.0
    for n in range(orders):
        response += math.exp(-t) * t**n / math.factorial(n) * power
        power = np.convolve(power, loss)[:n_ch]
    held = row[0] * (1.0 - np.cumsum(response))
    return np.convolve(row, response)[:n_ch] + held


@_variants(ka.plural_scattering)
def test_plural_scattering_matches_the_poisson_series(fn):
    rng = np.random.default_rng(4)
    s = np.vstack([_edge(E), 0.05 + _edge(E) + 0.01 * rng.random(E.size)])
    t = np.array([0.35, 1.0])
    ep = np.array([22.0, 28.0])
    gamma = np.array([6.0, 9.5])
    out = fn(E, s, t, ep, gamma, 2.0)
    for p in range(2):
        loss = ka.drude_loss_weights(0.1, E.size, ep[p], gamma[p], 2.0)
        expected = _plural_reference(s[p], loss, t[p])
        np.testing.assert_allclose(out[p], expected, rtol=1e-9, atol=1e-12)


@_variants(ka.plural_scattering)
def test_zero_thickness_is_the_identity(fn):
    s = np.vstack([_edge(E), _edge(E) + 1.0])
    before = s.copy()
    out = fn(E, s, np.zeros(2), np.full(2, 25.0), np.full(2, 8.0), 2.0)
    np.testing.assert_array_equal(out, s)
    np.testing.assert_array_equal(s, before)


@_variants(ka.plural_scattering)
@pytest.mark.parametrize("t", [0.2, 0.6, 1.0])
def test_plural_scattering_poisson_weights_and_mean_loss(fn, t):
    # A line at the bottom of a 2 keV axis: the unscattered line keeps e^-t, the
    # rest (1 - e^-t) moves up; the intensity is conserved and the mean energy
    # loss is t times the mean loss of one plasmon (compound Poisson).
    e = np.arange(-0.5, 2000.0, 0.5)
    s = np.zeros((1, e.size))
    s[0, 1] = 1.0  # at 0 eV, on a zero pre-edge level
    out = fn(e, s, np.array([t]), np.array([25.0]), np.array([8.0]), 2.0)[0]
    assert out[0] == 0.0
    assert out[1] == pytest.approx(math.exp(-t), rel=1e-12)
    assert out[2:].sum() == pytest.approx(1.0 - math.exp(-t), rel=2e-3)
    assert out.sum() == pytest.approx(1.0, abs=2e-4)
    total = quad(_drude, 2.0, np.inf, limit=400)[0]
    mean_loss = quad(lambda x: x * _drude(x), 2.0, np.inf, limit=400)[0] / total
    assert (e * out).sum() == pytest.approx(t * mean_loss, rel=0.01)


def test_plural_scattering_on_a_nonuniform_axis_follows_the_uniform_one():
    rng = np.random.default_rng(5)
    e = _nonuniform_axis(rng, n=500)
    args = (np.array([0.8]), np.array([25.0]), np.array([8.0]), 2.0)
    out = ka.plural_scattering(e, _edge(e)[None, :], *args)
    uniform = ka.plural_scattering(E, _edge(E)[None, :], *args)
    np.testing.assert_allclose(out[0], np.interp(e, E, uniform[0]), atol=0.01)


def test_plural_scattering_raises_the_post_edge_in_the_window():
    # In a 30 eV window the L3 line, scattered 20-30 eV up, lifts the top end.
    s = _edge(E)[None, :]
    out = ka.plural_scattering(
        E, s, np.array([1.0]), np.array([20.0]), np.array([6.0]), 2.0
    )
    assert out[0, -1] > s[0, -1] + 0.005
    assert out[0].max() == pytest.approx(math.exp(-1.0) * s[0].max(), rel=0.02)


# -- noise ----------------------------------------------------------------------------


@_variants(ka.expected_counts)
def test_expected_counts_against_numpy(fn):
    s = np.vstack([_edge(E), 3.0 * _edge(E) - 0.01])
    dose = np.array([100.0, 2500.0])
    background = np.array([0.5, 1.8])
    r = np.array([2.5, 4.0])
    out = fn(E, s, dose, background, r, 708.0)
    for p in range(2):
        expected = dose[p] * np.clip(s[p], 0, None) / s[p].max()
        expected += background[p] * dose[p] * (E / 708.0) ** -r[p]
        np.testing.assert_allclose(out[p], expected, rtol=1e-12)
    bad = fn(E, np.zeros((1, E.size)), dose[:1], background[:1], r[:1], 708.0)
    assert np.all(np.isnan(bad))


@_variants(ka.read_out)
def test_read_out_against_numpy(fn):
    rng = np.random.default_rng(7)
    counts = rng.poisson(300.0, size=(3, E.size)).astype(float)
    z = rng.standard_normal((3, E.size))
    gain = np.array([1.0, 1.5, 2.0])
    read = np.array([0.0, 2.0, 5.0])
    dose = np.full(3, 200.0)
    background = np.array([0.0, 0.5, 1.0])
    r = np.full(3, 3.0)
    out = fn(E, counts, gain, read, z, dose, background, r, 708.0)
    bkg = background[:, None] * dose[:, None] * (E / 708.0) ** -3.0
    expected = gain[:, None] * (counts - bkg) + read[:, None] * z
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("background", [0.0, 1.5])
def test_noise_mean_and_variance_of_a_flat_spectrum(background):
    # 1.2 M draws: standard errors are ~0.1 % of the mean and variance.
    n = 4000
    one = np.ones(n)
    dose, gain, read = 200.0, 1.7, 4.0
    flat = np.ones((n, E.size))
    y = ka.add_noise(
        E,
        flat,
        np.random.default_rng(8),
        dose * one,
        background * one,
        0.0 * one,  # a flat background, so every channel has the same variance
        gain * one,
        read * one,
    )
    np.testing.assert_array_equal(flat, 1.0)
    samples = y.size
    variance = gain**2 * dose * (1.0 + background) + read**2
    mean_error = math.sqrt(variance / samples)
    assert abs(y.mean() - gain * dose) < 4 * mean_error
    variance_error = variance * math.sqrt(2.0 / samples)
    assert abs(y.var() - variance) < 4 * variance_error
    # A wrong model (no gain squared, no background noise) is far outside.
    assert (
        abs(gain * dose * (1 + background) + read**2 - variance) > 40 * variance_error
    )


def test_noise_leaves_bad_rows_nan_without_raising():
    s = np.vstack([_edge(E), np.zeros(E.size)])
    one = np.ones(2)
    y = ka.add_noise(E, s, np.random.default_rng(9), 100 * one, one, 3 * one, one, one)
    assert np.all(np.isfinite(y[0])) and np.all(np.isnan(y[1]))


# -- spikes ---------------------------------------------------------------------------


@_variants(ka.add_spikes)
def test_add_spikes_against_numpy(fn):
    rng = np.random.default_rng(10)
    s = rng.random((3, E.size))
    channels = np.array([[5, -1], [299, 299], [-1, 400]])
    heights = np.array([[10.0, 99.0], [1.0, 2.0], [7.0, 8.0]])
    out = fn(E, s, channels, heights)
    expected = s.copy()
    expected[0, 5] += 10.0
    expected[1, 299] += 3.0
    np.testing.assert_array_equal(out, expected)


def test_spike_rate_and_placement():
    n, rate = 5000, 0.1
    s = np.repeat(_edge(E)[None, :], n, axis=0)
    spiky, params = ka.augment_batch(
        E, s, np.random.default_rng(11), _quiet(spike_probability=rate)
    )
    clean, _ = ka.augment_batch(E, s, np.random.default_rng(11), _quiet())
    hit = params["n_spikes"] > 0
    assert abs(hit.sum() - rate * n) < 4 * math.sqrt(n * rate * (1 - rate))
    assert set(np.unique(params["n_spikes"][hit])) <= {1, 2, 3}
    assert params["n_spikes"][hit].mean() == pytest.approx(2.0, abs=0.15)
    # Spiked rows differ from the clean ones in at most n_spikes channels, each by
    # at least half the L3 maximum; the other rows are untouched.
    changed = (spiky - clean) > 0.5 * s.max()
    np.testing.assert_array_equal(changed.any(axis=1), hit)
    assert np.all(changed.sum(axis=1) <= params["n_spikes"])
    np.testing.assert_array_equal(spiky[~hit], clean[~hit])


# -- background subtraction -----------------------------------------------------------


def _artefact_reference(e, row, peak, power, r, dr, slope, constant, pre, decay, edge):
    g = (e / e[0]) ** -r - (e / e[0]) ** -(r + dr)
    out = row + power * peak * g / np.abs(g).max() if dr != 0 else row.copy()
    out = out + slope * peak * (e - (e[0] + e[-1]) / 2) / (e[-1] - e[0])
    out = out + constant * peak
    out = out + pre * peak * np.where(e < edge, np.exp((e - edge) / decay), 1.0)
    return out


@_variants(ka.background_artefacts)
def test_background_artefacts_against_numpy(fn):
    rng = np.random.default_rng(12)
    n = 4
    s = np.repeat(_edge(E)[None, :], n, axis=0) * 50.0
    draws = {
        "peak": np.full(n, 50.0),
        "power": rng.uniform(-0.1, 0.1, n),
        "r": rng.uniform(2, 5, n),
        "dr": np.array([0.3, -0.4, 0.0, 0.2]),
        "slope": rng.uniform(-0.05, 0.05, n),
        "constant": rng.uniform(-0.03, 0.03, n),
        "pre": np.array([0.08, 0.0, -0.05, 0.02]),
        "decay": rng.uniform(1, 4, n),
        "edge": rng.uniform(705, 709, n),
    }
    out = fn(E, s, *draws.values(), float(E[0]))
    for p in range(n):
        expected = _artefact_reference(E, s[p], *(v[p] for v in draws.values()))
        np.testing.assert_allclose(out[p], expected, rtol=1e-12, atol=1e-12)
    # The wrong-exponent residual: zero where the window was, largest excursion
    # exactly the requested fraction of the L3 maximum.
    zero = np.zeros(1)
    residual = fn(
        E,
        np.zeros((1, E.size)),
        np.array([50.0]),
        np.array([0.1]),
        np.array([3.0]),
        np.array([0.4]),
        zero,
        zero,
        zero,
        zero + 1,
        zero,
        700.0,
    )[0]
    assert residual[0] == 0.0 and np.abs(residual).max() == pytest.approx(5.0)
    # The pre-edge window residual grows towards the edge and stays under it.
    rise = fn(
        E,
        np.zeros((1, E.size)),
        np.array([50.0]),
        zero,
        zero + 3,
        zero,
        zero,
        zero,
        np.array([0.1]),
        np.array([2.0]),
        np.array([707.0]),
        700.0,
    )[0]
    below = E < 707.0
    assert np.all(np.diff(rise[below]) > 0) and np.allclose(rise[~below], 5.0)


# -- the whole chain ------------------------------------------------------------------


def test_augment_batch_is_reproducible_and_leaves_its_input():
    s = np.repeat(_edge(E)[None, :], 64, axis=0) * np.linspace(1, 3, 64)[:, None]
    before = s.copy()
    a, pa = ka.augment_batch(E, s, np.random.default_rng(42))
    b, pb = ka.augment_batch(E, s, np.random.default_rng(42))
    c, _ = ka.augment_batch(E, s, np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert pa.keys() == pb.keys()
    for key in pa:
        assert pa[key].shape == (64,)
        np.testing.assert_array_equal(pa[key], pb[key])
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(s, before)
    # Normalised like the preprocessing: unit white-line integral.
    window = (E >= 704.0) & (E <= 727.0)
    np.testing.assert_allclose(np.trapezoid(a[:, window], E[window]), 1.0, rtol=1e-9)


def test_augment_batch_with_every_step_off_is_the_identity():
    s = np.repeat(_edge(E)[None, :], 8, axis=0)
    out, _ = ka.augment_batch(E, s, np.random.default_rng(0), _quiet())
    np.testing.assert_allclose(out, s, rtol=1e-12, atol=1e-12)


def test_augment_batch_offers_background_removed_and_artefact_cases():
    n, p_removed = 4000, 0.3
    s = np.repeat(_edge(E)[None, :], n, axis=0)
    settings = _quiet(
        background_removed_probability=p_removed,
        power_residual_probability=1.0,
        slope=(-0.05, 0.05),
        constant=(-0.03, 0.03),
        pre_edge_probability=1.0,
        noise=True,
    )
    out, params = ka.augment_batch(E, s, np.random.default_rng(13), settings)
    removed = params["background_removed"]
    assert abs(removed.sum() - p_removed * n) < 4 * math.sqrt(n * 0.3 * 0.7)
    for key in ("power_residual", "slope", "constant", "pre_edge_residual"):
        assert np.all(params[key][removed] == 0.0)
        assert np.all(params[key][~removed] != 0.0)
    # Removed spectra carry an arbitrary L3 maximum, log-uniform in 0.01-100; the
    # others are in detector counts, gain * dose at the L3 maximum.
    l3 = out[:, np.argmax(s[0])] / params["scale"]
    assert np.median(l3[removed]) == pytest.approx(1.0, abs=0.05)
    assert np.median(l3[~removed]) == pytest.approx(1.0, abs=0.05)
    np.testing.assert_allclose(
        params["scale"][~removed], (params["gain"] * params["dose"])[~removed]
    )
    decades = np.log10(params["scale"][removed])
    assert decades.min() >= -2.0 and decades.max() <= 2.0 and decades.std() > 0.8


def test_augment_batch_parameters_follow_the_settings():
    s = np.repeat(_edge(E)[None, :], 2000, axis=0)
    settings = ka.AugmentationSettings()
    out, params = ka.augment_batch(E, s, np.random.default_rng(14), settings)
    assert np.all(np.abs(params["offset"]) <= 3.0)
    assert np.all((params["fwhm"] >= 0.2) & (params["fwhm"] <= 1.5))
    assert np.all((params["thickness"] >= 0.0) & (params["thickness"] <= 1.0))
    snr = np.sqrt(params["dose"] / (1.0 + params["background"]))
    assert snr.min() > 2.5 and snr.max() < 200.0
    assert np.quantile(snr, 0.1) < 10 and np.quantile(snr, 0.9) > 50
    assert np.mean(np.isfinite(out).all(axis=1)) > 0.99


def test_augment_batch_rejects_bad_input():
    s = np.ones((2, E.size))
    with pytest.raises(ValueError, match="shape"):
        ka.augment_batch(E, s[:, :10], np.random.default_rng(0))
    with pytest.raises(ValueError, match="increasing"):
        ka.augment_batch(E[::-1].copy(), s, np.random.default_rng(0))
    with pytest.raises(ValueError, match="low <= high"):
        ka.AugmentationSettings(fwhm=(1.5, 0.2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ka.AugmentationSettings(spike_probability=1.5)
    # Lists (settings read back from JSON) are accepted as ranges.
    assert ka.AugmentationSettings(fwhm=[0.3, 0.9]).fwhm == (0.3, 0.9)


@_variants(ka.exponential_tail)
def test_exponential_tail_is_a_causal_exponential_of_the_given_length(fn):
    rng = np.random.default_rng(3)
    fine = np.arange(700.0, 740.0, 0.01)
    edge = _gauss(fine, 709.5, 0.4)[None, :]
    out = fn(fine, edge, np.array([0.4]))
    # Area and a constant are kept; the first channel is held.
    assert out.sum() == pytest.approx(edge.sum(), rel=1e-6)
    flat = fn(E, np.full((1, E.size), 2.5), np.array([0.3]))
    np.testing.assert_allclose(flat, 2.5)
    # An exponentially modified Gaussian: mean moved by the decay length (less
    # half a channel), variance grown by its square, tail towards higher loss only.
    moved = _centroid(fine, out[0]) - _centroid(fine, edge[0])
    assert moved == pytest.approx(0.4 - 0.005, abs=2e-3)

    def variance(row):
        return float(((fine - _centroid(fine, row)) ** 2 * row).sum() / row.sum())

    assert variance(out[0]) - variance(edge[0]) == pytest.approx(0.4**2, rel=0.02)
    below = fine < 708.0
    assert np.all(out[0][below] <= edge[0][below] + 1e-12)
    # No tail: a copy; on a non-uniform axis the same shape.
    np.testing.assert_array_equal(
        fn(E, edge[:, ::10][:, :300], np.array([0.0])), edge[:, ::10][:, :300]
    )
    axis = _nonuniform_axis(rng, 700.0, 740.0, 3000)
    uneven = fn(axis, _gauss(axis, 709.5, 0.4)[None, :], np.array([0.4]))
    np.testing.assert_allclose(uneven[0], np.interp(axis, fine, out[0]), atol=0.02)
