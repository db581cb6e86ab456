"""The shipped library and the calibrated reference spectra built from it."""

import subprocess
import sys

import numpy as np
import pytest

from hyperspy_fe_ml.library import (
    draw_library_spectra,
    library_parameter_set,
    load_library,
    reference_spectrum,
)
from hyperspy_fe_ml.library.generate import GENERATOR_SETTINGS, default_parameter_sets
from hyperspy_fe_ml.library.reference import broaden_library
from hyperspy_fe_ml.library.shipped import (
    SCHEMA_VERSION,
    read_library,
    shipped_library_path,
)

E = np.arange(700.0, 730.0, 0.05)


def l3_max(y, e=E):
    m = e < 715
    return e[m][np.argmax(y[m])]


def l2_max(y, e=E):
    m = (e > 716) & (e < 728)
    return e[m][np.argmax(y[m])]


def local_maxima(y, e, lo, hi):
    w = (e > lo) & (e < hi)
    yy = y[w]
    idx = [
        i for i in range(1, yy.size - 1) if yy[i] >= yy[i - 1] and yy[i] >= yy[i + 1]
    ]
    return yy[idx]


def test_landmarks_after_calibration():
    fe2 = reference_spectrum(2, "Oh", E)
    fe3 = reference_spectrum(3, "Oh", E)
    td3 = reference_spectrum(3, "Td", E)
    p2, p3 = l3_max(fe2), l3_max(fe3)
    assert abs(p2 - 707.8) <= 0.5
    assert abs(p3 - 709.5) <= 0.5
    assert 1.1 <= p3 - p2 <= 2.2
    # Fe3+ Oh pre-peak: a local maximum 1.0-2.2 eV below L3, >= 15 % of it.
    pre = local_maxima(fe3, E, p3 - 2.2, p3 - 1.0)
    assert pre.size and pre.max() >= 0.15 * fe3[E < 715].max()
    pt = l3_max(td3)
    pre_td = local_maxima(td3, E, pt - 2.2, pt - 1.0)
    assert not (pre_td.size and pre_td.max() >= 0.15 * td3[E < 715].max())
    assert 12.3 <= l2_max(fe2) - p2 <= 13.4


@pytest.mark.parametrize("valence, holes", [(2, 4), (3, 5)])
def test_white_line_area_is_the_number_of_holes(valence, holes):
    e = np.arange(640.0, 800.0, 0.05)
    y = reference_spectrum(valence, "Oh", e, step=0.0, fwhm_l3=0.4, fwhm_l2=0.4)
    # Lorentzian tails beyond the axis hold < 0.1 % of the area.
    assert y.sum() * 0.05 == pytest.approx(holes, rel=2e-3)
    # With the default (wide, fitted) L2 width about 0.6 % sits in the tails.
    y = reference_spectrum(valence, "Oh", e, step=0.0)
    assert y.sum() * 0.05 == pytest.approx(holes, rel=1e-2)


def test_continuum_step_is_two_to_one_and_below_the_white_lines():
    e = np.arange(690.0, 760.0, 0.05)
    y0 = reference_spectrum(3, "Oh", e, step=0.0)
    y1 = reference_spectrum(3, "Oh", e, step=0.3)
    d = y1 - y0
    assert d[e < 695].max() < 0.01
    assert d[(e > 714) & (e < 716)].mean() == pytest.approx(0.3, rel=0.05)
    assert d[e > 750].mean() == pytest.approx(0.45, rel=0.02)


def test_broadening_parameters_act():
    sharp = reference_spectrum(3, "Oh", E, resolution=0.1)
    broad = reference_spectrum(3, "Oh", E, resolution=1.5)
    assert sharp.max() > 1.3 * broad.max()
    a = reference_spectrum(2, "Oh", E, fwhm_l2=0.4)
    b = reference_spectrum(2, "Oh", E, fwhm_l2=1.6)
    assert np.allclose(a[E < 714], b[E < 714], rtol=0.02, atol=0.01)
    assert a[E > 717].max() > 1.2 * b[E > 717].max()
    shifted = reference_spectrum(2, "Oh", E, shift=1.0)
    assert l3_max(shifted) - l3_max(a) == pytest.approx(1.0, abs=0.06)


def test_non_uniform_axis_matches_uniform():
    e = np.sort(np.concatenate([np.arange(700, 712, 0.05), np.arange(712, 730, 0.2)]))
    y = reference_spectrum(3, "Oh", e)
    ref = np.interp(e, E, reference_spectrum(3, "Oh", E))
    assert np.max(np.abs(y - ref)) < 0.02 * ref.max()


def test_parameters_snap_to_the_library_grid():
    row, p = library_parameter_set(2, "Oh", ten_dq=0.83, slater_scale=0.71)
    assert (p.valence, p.coordination, p.ten_dq, p.slater_scale) == (2, "Oh", 0.8, 0.7)
    assert load_library().table["set_id"][row] == row
    _, td = library_parameter_set(3, "Td")
    assert td.ten_dq == -0.6
    _, sp = library_parameter_set(3, "C4v")
    assert sp.coordination_number == 5 and sp.dt > 0 and sp.ds > 0


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((5, "Oh"), {}, "unknown Fe valence 5.*valence=2 or 3"),
        ((3, "Ih"), {}, "unknown coordination 'Ih'.*Oh"),
        ((3, "Oh"), {"fwhm_l3": -0.1}, "fwhm_l3=-0.1.*>= 0"),
        ((3, "Oh"), {"resolution": -1}, "resolution=-1.0.*>= 0"),
        ((3, "Oh"), {"ten_dq": 4.0}, "ten_dq=4.0 is outside.*fe-ml simulate"),
        ((3, "Td"), {"ten_dq": 0.6}, "negative 10Dq for Td.*ten_dq=-0.6"),
        ((2, "D4h"), {"ds": 0.5}, "ds=0.5 is outside"),
    ],
)
def test_bad_parameters_raise_clear_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        reference_spectrum(*args, E, **kwargs)


def test_bad_energy_axis():
    with pytest.raises(ValueError, match="strictly increasing"):
        reference_spectrum(3, "Oh", E[::-1])
    with pytest.raises(ValueError, match="1-D"):
        reference_spectrum(3, "Oh", np.zeros((2, 3)))


def test_shipped_file_is_versioned_small_and_the_default_grid():
    path = shipped_library_path()
    assert path.stat().st_size < 5e6
    lib = read_library(path)
    assert lib.schema_version == SCHEMA_VERSION
    assert lib.edrixs_version.startswith("0.")
    for key, value in GENERATOR_SETTINGS.items():
        assert lib.generator[key] == value
    sets = default_parameter_sets()
    assert len(lib) == len(sets)
    assert [lib.parameter_set(i) for i in range(len(lib))] == sets
    assert lib.stick_intensity.dtype == np.float32
    np.testing.assert_array_equal(lib.table["set_id"], np.arange(len(lib)))
    # Every set holds L3 and L2 sticks; their intensity sums to holes / 3.
    holes = {2: 4, 3: 5}
    for i in range(0, len(lib), 37):
        s = lib.sticks(i)
        assert set(np.unique(s.edge)) == {2, 3}
        expected = holes[int(lib.table["valence"][i])] / 3
        assert s.intensity.sum() == pytest.approx(expected, rel=2e-3)


def test_draw_library_spectra_labels_and_reproducibility():
    e = np.arange(700.0, 730.0, 0.1)
    x, labels = draw_library_spectra(40, e, 3)
    x2, labels2 = draw_library_spectra(40, e, np.random.default_rng(3))
    np.testing.assert_array_equal(x, x2)
    assert x.shape == (40, e.size) and np.all(np.isfinite(x))
    lib = load_library()
    ids = labels["set_id"]
    np.testing.assert_array_equal(labels["valence"], lib.table["valence"][ids])
    np.testing.assert_array_equal(
        labels["coordination"], lib.table["coordination"][ids]
    )
    cn = {"Oh": 6, "Td": 4, "D4h": 6, "C4v": 5, "D2d": 4}
    assert [cn[c] for c in labels["coordination"]] == labels[
        "coordination_number"
    ].tolist()
    assert np.all((labels["fwhm_l2"] >= 0.35) & (labels["fwhm_l2"] <= 3.0))
    # Balanced draw: all eight (valence, coordination) groups appear.
    groups = {
        (v, c) for v, c in zip(labels["valence"], labels["coordination"], strict=True)
    }
    assert len(groups) == 8
    # One spectrum equals reference_spectrum with the drawn parameters.
    k = 5
    p = lib.parameter_set(int(ids[k]))
    y = reference_spectrum(
        p.valence,
        p.coordination,
        e,
        ten_dq=p.ten_dq,
        ds=p.ds,
        dt=p.dt,
        slater_scale=p.slater_scale,
        fwhm_l3=labels["fwhm_l3"][k],
        fwhm_l2=labels["fwhm_l2"][k],
        resolution=labels["resolution"][k],
        step=labels["step"][k],
        l3_width_slope=labels["l3_width_slope"][k],
    )
    assert labels["l3_width_slope"][k] > 0
    np.testing.assert_allclose(x[k], y, rtol=1e-10, atol=1e-12)


def test_draw_restricted_to_set_ids_and_fixed_widths():
    train = np.arange(0, 100)
    x, labels = draw_library_spectra(
        20, E, 1, set_ids=train, resolution=0.7, fwhm_l3=(0.4, 0.5), balance=False
    )
    assert np.all(labels["set_id"] < 100)
    assert np.all(labels["resolution"] == 0.7)
    with pytest.raises(ValueError, match="low <= high"):
        draw_library_spectra(2, E, 0, fwhm_l3=(0.5, 0.4))
    with pytest.raises(ValueError, match="negative"):
        draw_library_spectra(2, E, 0, resolution=(-0.5, 0.4))
    with pytest.raises(ValueError, match="unknown draw parameter"):
        draw_library_spectra(2, E, 0, gamma=1.0)


def test_reading_the_library_does_not_need_edrixs():
    code = (
        "import sys; sys.modules['edrixs'] = None\n"
        "import numpy as np\n"
        "from hyperspy_fe_ml.library import reference_spectrum\n"
        "y = reference_spectrum(2, 'Oh', np.arange(700.0, 730.0, 0.1))\n"
        "print(round(float(y.max()), 6))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    y = reference_spectrum(2, "Oh", np.arange(700.0, 730.0, 0.1))
    assert float(out.stdout.strip()) == pytest.approx(round(float(y.max()), 6))


@pytest.mark.simulate
def test_regenerated_parameter_set_equals_the_shipped_one():
    pytest.importorskip("edrixs")
    from hyperspy_fe_ml.library.generate import simulate_batch

    lib = load_library()
    row, p = library_parameter_set(3, "Oh")
    (sticks,) = simulate_batch([p])
    shipped = lib.sticks(row)
    assert abs(len(sticks) - len(shipped)) <= 2
    if len(sticks) == len(shipped):
        np.testing.assert_allclose(sticks.energy, shipped.energy, atol=1e-5)
        np.testing.assert_allclose(sticks.intensity, shipped.intensity, rtol=1e-5)
        np.testing.assert_array_equal(sticks.edge, shipped.edge)
    # Broadened on the same axis they agree to float32 precision.
    from hyperspy_fe_ml.kernels.broaden import broaden_sticks

    def broaden(s):
        return broaden_sticks(
            E - 709.0,
            s.energy,
            s.intensity,
            s.edge,
            np.array([0, len(s)]),
            np.array([0.4]),
            np.array([1.0]),
        )[0]

    np.testing.assert_allclose(broaden(sticks), broaden(shipped), rtol=1e-5, atol=1e-7)


def test_simulating_without_edrixs_says_how_to_install_it(tmp_path):
    code = (
        "import sys; sys.modules['edrixs'] = None\n"
        "from hyperspy_fe_ml.library.generate import generate_library\n"
        "try:\n"
        f"    generate_library({str(tmp_path / 'lib.npz')!r})\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "pip install hyperspy-fe-ml[simulate]" in out.stdout
    assert not (tmp_path / "lib.npz").exists()


def test_l3_width_slope_zero_is_the_old_spectrum():
    y = reference_spectrum(3, "Oh", E)
    np.testing.assert_array_equal(reference_spectrum(3, "Oh", E, l3_width_slope=0), y)
    kw = {"fwhm_l3": 0.5, "fwhm_l2": 2.0, "resolution": 0.2, "step": 0.08}
    rows = [5, 321, 400]
    plain = broaden_library(rows, E, **kw)
    np.testing.assert_array_equal(
        broaden_library(rows, E, **kw, l3_width_slope=np.zeros(3)), plain
    )
    np.testing.assert_array_equal(
        broaden_library(rows, E, **kw, l3_width_slope=np.zeros(3), method="direct"),
        broaden_library(rows, E, **kw, method="direct"),
    )
    with pytest.raises(ValueError, match="l3_width_slope"):
        reference_spectrum(3, "Oh", E, l3_width_slope=-0.1)


@pytest.mark.parametrize("valence, holes", [(2, 4), (3, 5)])
def test_l3_width_slope_keeps_the_number_of_holes(valence, holes):
    e = np.arange(600.0, 850.0, 0.05)
    for slope in (0.0, 0.2, 0.45):
        y = reference_spectrum(
            valence, "Oh", e, step=0.0, fwhm_l3=0.4, fwhm_l2=0.4, l3_width_slope=slope
        )
        # Lorentzian tails beyond the axis (upper L3 lines up to ~8 eV wide).
        assert y.sum() * 0.05 == pytest.approx(holes, rel=4e-3)


def test_l3_width_slope_sharpens_the_pre_peak_against_the_main_peak():
    # Fe3+ Oh: with the same width at the first L3 line, a slope broadens the L3
    # maximum (1.5 eV higher) and leaves the pre-peak nearly as it was, so the
    # pre-peak / maximum ratio grows; fft and direct paths agree.
    kw = {"fwhm_l3": 0.4, "fwhm_l2": 2.0, "resolution": 0.1, "step": 0.08}
    row = library_parameter_set(3, "Oh")[0]
    flat = broaden_library([row], E, **kw)[0]
    fft = broaden_library([row], E, **kw, l3_width_slope=np.array([0.3]))[0]
    direct = broaden_library(
        [row], E, **kw, l3_width_slope=np.array([0.3]), method="direct"
    )[0]
    l3 = E < 715
    assert np.abs(fft - direct).max() < 1.5e-3 * direct[l3].max()
    p = l3_max(flat)
    pre = (E > p - 2.2) & (E < p - 1.0)
    assert fft[l3].max() < 0.6 * flat[l3].max()
    assert fft[pre].max() > 0.9 * flat[pre].max()
    assert fft[pre].max() / fft[l3].max() > 1.5 * flat[pre].max() / flat[l3].max()
