"""Charge-transfer multiplets: operators, the ionic limit, the sum rule, a landmark."""

import numpy as np
import pytest

edrixs = pytest.importorskip("edrixs")

from hyperspy_fe_ml.kernels.broaden import broaden_sticks  # noqa: E402
from hyperspy_fe_ml.library.charge_transfer import (  # noqa: E402
    CTParameterSet,
    build_ct_terms,
    fermion_operator,
    ground_state_d_occupation,
    simulate_ct_sticks,
    site_hybridisation,
)
from hyperspy_fe_ml.library.multiplet import simulate_sticks  # noqa: E402

pytestmark = pytest.mark.simulate


def _broadened(sticks, energy):
    return broaden_sticks(
        energy,
        sticks.energy,
        sticks.intensity,
        sticks.edge,
        np.array([0, len(sticks)]),
        np.array([0.5]),
        np.array([1.0]),
    )[0]


def test_sparse_operators_equal_edrixs_two_and_four_fermion():
    rng = np.random.default_rng(0)
    left = edrixs.get_fock_bin_by_N(10, 3, 6, 5)
    right = edrixs.get_fock_bin_by_N(10, 2, 6, 6)
    umat = edrixs.get_umat_slater("dp", *rng.uniform(0.5, 2.0, 9))
    (four,) = fermion_operator([umat], right)
    np.testing.assert_allclose(
        four.toarray(), edrixs.four_fermion(umat, right), atol=1e-12
    )
    emat = rng.normal(size=(16, 16)) + 1j * rng.normal(size=(16, 16))
    (two,) = fermion_operator([emat], left, right)
    np.testing.assert_allclose(
        two.toarray(), edrixs.two_fermion(emat, left, right), atol=1e-12
    )


def test_sizes_and_blocks_of_the_two_configuration_model():
    terms = build_ct_terms(6)
    assert terms.sizes == (1410, 3420)
    # Cubic symmetry with spin-orbit coupling conserves J_z modulo 4: 4 blocks.
    assert len(terms.final_blocks) == 4
    assert sum(b.size for b in terms.final_blocks) == 3420


@pytest.mark.parametrize(
    "valence, site, ten_dq", [(2, "Oh", 1.0), (2, "Td", -0.5), (3, "Oh", 1.4)]
)
def test_no_hybridisation_reproduces_the_single_ion_spectrum(valence, site, ten_dq):
    params = CTParameterSet(valence, site, ten_dq, v_eg=0.0, v_t2g=0.0)
    ct = simulate_ct_sticks(params)
    ion = simulate_sticks(params.single_ion)
    energy = np.arange(-15.0, 25.0, 0.05)
    # Same zero by construction; align the first-moment anyway (brief: "after
    # aligning the zero") and check it did not need to move.
    shift = np.average(ct.energy, weights=ct.intensity) - np.average(
        ion.energy, weights=ion.intensity
    )
    assert abs(shift) < 1e-6
    a, b = _broadened(ct, energy), _broadened(ion, energy)
    assert np.max(np.abs(a - b)) < 1e-6 * np.max(b)
    assert ground_state_d_occupation(params) == pytest.approx(params.n_d, abs=1e-9)


@pytest.mark.parametrize("temperature", [0.0, 300.0])
def test_total_intensity_counts_the_d_holes_of_the_hybridised_ground_state(
    temperature,
):
    v_e, v_t2 = site_hybridisation("Oh", 2.2)
    params = CTParameterSet(2, "Oh", 0.6, delta=6.0, v_eg=v_e, v_t2g=v_t2)
    sticks = simulate_ct_sticks(params, temperature=temperature, compress=False)
    n_d = ground_state_d_occupation(params, temperature=temperature)
    assert 6.05 < n_d < 6.3  # covalent, mostly d6
    # Isotropic dipole sum rule: total = (10 - <n_d>) / 3.
    assert sticks.intensity.sum() == pytest.approx((10 - n_d) / 3, rel=1e-9)
    l3 = sticks.intensity[sticks.edge == 3].sum() / sticks.intensity.sum()
    assert 0.7 < l3 < 0.82


def test_fe3_octahedral_d_count_landmark():
    """Fe2O3-like Fe3+ Oh: Delta = 2.5 eV, U_dd = 6, U_pd = 7.5, V_eg = 3.0 eV
    (= sqrt(3) |pd_sigma| with pd_sigma = -1.7 to -1.8 eV, Fujimori et al.,
    Phys. Rev. B 34, 7318 (1986); de Groot and Kotani, "Core Level Spectroscopy
    of Solids", 2008, ch. 7: Fe3+ oxides Delta 2.5-3 eV). The literature d count
    of Fe2O3 is 5.3-5.6 with the full (three and more configuration) CI; the two-
    configuration model gives 5.27 and three configurations 5.40 (this code)."""
    params = CTParameterSet(
        3, "Oh", 0.9, delta=2.5, u_dd=6.0, u_pd=7.5, v_eg=3.0, v_t2g=1.5
    )
    n_d = ground_state_d_occupation(params)
    assert n_d == pytest.approx(5.27, abs=0.02)
    # Smaller hybridisation or larger Delta: fewer d electrons.
    weaker = CTParameterSet(
        3, "Oh", 0.9, delta=3.5, u_dd=6.0, u_pd=7.5, v_eg=2.0, v_t2g=1.0
    )
    assert 5.0 < ground_state_d_occupation(weaker) < n_d


def test_site_hybridisation_and_validation():
    v_e, v_t2 = site_hybridisation("Td", 3.0)
    assert v_t2 > v_e and v_t2 < 3.0  # roles swapped, weaker
    with pytest.raises(ValueError, match="cubic"):
        CTParameterSet(2, "D4h", 1.0)
    with pytest.raises(ValueError, match="negative"):
        CTParameterSet(2, "Td", 0.5)
