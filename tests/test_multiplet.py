"""Multiplet physics: analytic limits, agreement with edrixs, parameter checks."""

import numpy as np
import pytest

from hyperspy_fe_ml.library.multiplet import ParameterSet, square_pyramid_cf

edrixs = pytest.importorskip("edrixs")

from hyperspy_fe_ml.library.multiplet import (  # noqa: E402
    boltzmann_weights,
    build_terms,
    compress_sticks,
    d_orbital_cf_matrix,
    edrixs_version,
    simulate_sticks,
    simulate_sticks_edrixs,
    sticks_for_coefficients,
    term_coefficients,
)

pytestmark = pytest.mark.simulate

ZETA_2P = 8.199  # Fe 2p spin-orbit, edrixs atom data (PHYSICS.md)


@pytest.mark.parametrize("n_d", [4, 5, 6])
def test_core_spin_orbit_only_gives_two_to_one_and_scales_with_holes(n_d):
    terms = build_terms(n_d)
    sticks = sticks_for_coefficients(terms, {}, {"zeta_p": ZETA_2P}, temperature=300)
    l3 = sticks.intensity[sticks.edge == 3].sum()
    l2 = sticks.intensity[sticks.edge == 2].sum()
    assert l3 / l2 == pytest.approx(2.0, rel=1e-12)
    # Isotropic dipole sum rule: total intensity = (number of 3d holes) / 3.
    assert l3 + l2 == pytest.approx((10 - n_d) / 3.0, rel=1e-12)
    # The two lines sit 1.5 zeta apart (12.30 eV, PHYSICS.md).
    strong = sticks.intensity > 1e-8
    e3 = np.unique(sticks.energy[strong & (sticks.edge == 3)].round(9))
    e2 = np.unique(sticks.energy[strong & (sticks.edge == 2)].round(9))
    assert e3.size == 1 and e2.size == 1
    assert e2[0] - e3[0] == pytest.approx(1.5 * ZETA_2P, abs=1e-9)


@pytest.mark.parametrize("valence, holes", [(2, 4), (3, 5)])
def test_full_multiplet_intensity_scales_with_holes_and_l3_dominates(valence, holes):
    sticks = simulate_sticks(ParameterSet(valence, "Oh", 1.2), compress=False)
    assert sticks.intensity.sum() == pytest.approx(holes / 3.0, rel=1e-10)
    # Multiplet L3 share, well above the statistical 2/3 (PHYSICS.md: ~0.76).
    share = sticks.intensity[sticks.edge == 3].sum() / sticks.intensity.sum()
    assert 0.72 < share < 0.80


def test_crystal_field_terms_match_edrixs():
    np.testing.assert_allclose(
        d_orbital_cf_matrix(0.14, 0.0, 0.0), edrixs.cf_cubic_d(1.4), atol=1e-12
    )
    # edrixs' tetragonal field in its (d1, d3) form: Ds = (d3 + d1)/7,
    # Dt = (3 d3 - 4 d1)/35.
    d1, d3 = 0.2, 0.5
    ds, dt = (d3 + d1) / 7, (3 * d3 - 4 * d1) / 35
    np.testing.assert_allclose(
        d_orbital_cf_matrix(0.12, ds, dt),
        edrixs.cf_tetragonal_d(1.2, d1, d3),
        atol=1e-12,
    )


def test_linear_route_equals_edrixs_ed_1v1c():
    p = ParameterSet(3, "D4h", 1.4, 0.1, 0.05, 0.75)
    fast = simulate_sticks(p)
    ref = simulate_sticks_edrixs(p)
    assert len(fast) == len(ref)
    np.testing.assert_allclose(fast.energy, ref.energy, atol=1e-8)
    np.testing.assert_allclose(fast.intensity, ref.intensity, rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(fast.edge, ref.edge)


def test_fe2_ground_state_is_thermally_averaged():
    p = ParameterSet(2, "Oh", 1.0)
    terms = build_terms(6)
    initial, final = term_coefficients(p, terms.atomic)
    energies = np.linalg.eigvalsh(
        sum(terms.initial[k] * v for k, v in initial.items()).toarray()
    )
    index, weight = boltzmann_weights(energies, 300.0)
    # PHYSICS.md: ~15 Fe2+ states lie within 65 meV of the ground state.
    assert np.count_nonzero(weight > 0.01) >= 10
    assert weight.sum() == pytest.approx(1.0)
    cold = sticks_for_coefficients(terms, initial, final, 0.0)
    warm = sticks_for_coefficients(terms, initial, final, 300.0)
    assert cold.intensity.sum() == pytest.approx(warm.intensity.sum(), rel=1e-10)
    assert warm.energy.size > cold.energy.size


def test_compression_keeps_area_and_centroid():
    raw = simulate_sticks(ParameterSet(2, "Oh", 1.0), compress=False)
    c = compress_sticks(raw, bin_width=0.02, threshold=1e-4)
    assert len(c) < raw.energy.size / 5
    assert c.intensity.sum() == pytest.approx(raw.intensity.sum(), rel=1e-3)
    for edge in (3, 2):
        m, mr = c.edge == edge, raw.edge == edge
        centroid = np.average(c.energy[m], weights=c.intensity[m])
        raw_centroid = np.average(raw.energy[mr], weights=raw.intensity[mr])
        assert centroid == pytest.approx(raw_centroid, abs=5e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"valence": 5, "coordination": "Oh", "ten_dq": 1.0}, "valence"),
        ({"valence": 3, "coordination": "Ih", "ten_dq": 1.0}, "coordination"),
        ({"valence": 3, "coordination": "Td", "ten_dq": 0.6}, "negative 10Dq"),
        ({"valence": 3, "coordination": "Oh", "ten_dq": -0.6}, "Td"),
        ({"valence": 3, "coordination": "Oh", "ten_dq": 1, "ds": 0.1}, "D4h"),
        ({"valence": 3, "coordination": "Oh", "ten_dq": 1, "slater_scale": 2}, "0.8"),
        ({"valence": 2, "coordination": "D2d", "ten_dq": 0.5, "ds": 0.1}, "D2d needs"),
        ({"valence": 2, "coordination": "D4h", "ten_dq": -0.5, "ds": 0.1}, "D2d"),
    ],
)
def test_bad_parameters_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ParameterSet(**kwargs)


def test_distorted_tetrahedron_splits_the_tetrahedral_levels():
    # D2d: a tetrahedron (e below t2) with a tetragonal distortion along z. The
    # one-electron levels are the D4h form with negative 10Dq: e splits into
    # a1 (z2) and b1 (x2-y2), t2 into b2 (xy) and e (xz, yz); the distortion
    # keeps the d-shell barycentre.
    params = ParameterSet(3, "D2d", -0.6, ds=0.1, dt=0.02, slater_scale=0.8)
    assert params.coordination_number == 4
    dq, ds, dt = -0.06, 0.1, 0.02
    levels = np.linalg.eigvalsh(d_orbital_cf_matrix(dq, ds, dt))
    a1, b1 = 6 * dq - 2 * ds - 6 * dt, 6 * dq + 2 * ds - dt
    b2, e = -4 * dq + 2 * ds - dt, -4 * dq - ds + 4 * dt
    np.testing.assert_allclose(
        levels, np.repeat(np.sort([a1, b1, b2, e, e]), 2), atol=1e-12
    )
    assert levels.sum() == pytest.approx(0.0, abs=1e-12)
    # Undistorted, the e pair lies 10Dq = -0.6 eV below t2 (cubic Td).
    cubic = np.linalg.eigvalsh(d_orbital_cf_matrix(dq, 0.0, 0.0))
    assert cubic[-1] - cubic[0] == pytest.approx(0.6)
    assert np.sum(np.isclose(cubic, 6 * dq)) == 4  # e: 2 orbitals x 2 spins


def test_square_pyramid_relations():
    ds, dt = square_pyramid_cf(1.4, 0.25)
    # AOM: b1g - a1g = e_sigma and b2g - eg = e_pi (e_sigma = 10Dq / (3 - 4 rho)).
    e_sigma = 1.4 / 2.0
    assert 4 * ds + 5 * dt == pytest.approx(e_sigma)
    assert 3 * ds - 5 * dt == pytest.approx(0.25 * e_sigma)


def test_simulate_command_writes_a_readable_library(tmp_path, capsys):
    import argparse

    from hyperspy_fe_ml.library.generate import add_simulate_command
    from hyperspy_fe_ml.library.shipped import SCHEMA_VERSION, read_library

    parser = argparse.ArgumentParser(prog="fe-ml")
    add_simulate_command(parser.add_subparsers(dest="command"))
    out = tmp_path / "lib.npz"
    args = parser.parse_args(["simulate", "-o", str(out), "--limit", "3", "-q"])
    assert args.func(args) == 0
    assert "s per parameter set" in capsys.readouterr().out
    lib = read_library(out)
    assert len(lib) == 3 and lib.schema_version == SCHEMA_VERSION
    assert lib.edrixs_version == edrixs_version()
    first = simulate_sticks(lib.parameter_set(0), compress=False)
    shipped = lib.sticks(0)
    assert shipped.intensity.sum() == pytest.approx(first.intensity.sum(), rel=1e-3)
