"""Charge-transfer multiplet stick spectra of the Fe L2,3 edge (edrixs primitives).

The single-ion model of :mod:`hyperspy_fe_ml.library.multiplet` is extended by a
shell of ligand orbitals: configuration interaction of 3d^n with 3d^(n+1)L (and,
optionally, 3d^(n+2)L^2), L a ligand hole, in the initial state and of
2p^5 3d^(n+1) with 2p^5 3d^(n+2)L (...) in the final state (de Groot and Kotani,
"Core Level Spectroscopy of Solids", CRC 2008, ch. 6-7). The orbital space has 26
spin-orbitals: 10 Fe 3d (0-9), 10 ligand orbitals of the same cubic symmetry
combinations (10-19) and 6 Fe 2p (20-25). The Hamiltonian is again linear in its
parameters,

    H = sum_k p_k H_k,

with the single-ion terms of :func:`~hyperspy_fe_ml.library.multiplet.build_terms`
(same Slater, spin-orbit and crystal-field operators, same monopole folding, so the
multiplet part of every configuration has its centre of gravity at 0) plus

* ``F0dd`` and ``F0pd``: the monopole operators, with coefficients U_dd and U_pd;
* ``Nd``, ``NL``, ``Np``: number operators, with the on-site energies that
  ``edrixs.CT_imp_bath`` (initial state) and ``edrixs.CT_imp_bath_core_hole``
  (final state) give for Delta, U_dd, U_pd: E(d^(n+1)L) - E(d^n) = Delta,
  E(2p^5 d^(n+2)L) - E(2p^5 d^(n+1)) = Delta + U_dd - U_pd;
* ``Ve``, ``Vt2``: hybridisation d <-> ligand of the e_g (Oh) / e (Td) pair
  (d3z2-r2, dx2-y2) and of the t2g / t2 triplet.

The single-particle tensors come from edrixs (``get_umat_slater``, ``atom_hsoc``,
``tmat_r2c``, ``get_trans_oper``, ``CT_imp_bath``); the many-body matrices are
built by :func:`fermion_operator`, a vectorised sparse equivalent of
``edrixs.two_fermion`` / ``edrixs.four_fermion`` (which return dense matrices and
loop in Python: ~1 GB and hours at the 8460 final states of Fe3+; the tests check
that both give the same matrices). The cubic Hamiltonian conserves J_z modulo 4,
so it falls into independent blocks (found as the connected components of its
sparsity pattern); each is diagonalised densely, which makes Fe3+ (8460 final
states) cost seconds rather than minutes.

With V = 0 the spectrum is exactly that of
:func:`~hyperspy_fe_ml.library.multiplet.simulate_sticks` for the same
:class:`~hyperspy_fe_ml.library.multiplet.ParameterSet`, same energy zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from hyperspy_fe_ml.library.multiplet import (
    VALENCE_TO_D_ELECTRONS,
    ParameterSet,
    StickSpectrum,
    atomic_parameters,
    boltzmann_weights,
    compress_sticks,
    d_orbital_cf_matrix,
    require_edrixs,
)

__all__ = [
    "CTParameterSet",
    "CTTerms",
    "build_ct_terms",
    "ct_term_coefficients",
    "fermion_operator",
    "ground_state_d_occupation",
    "site_hybridisation",
    "simulate_ct_sticks",
]

#: Orbital slices of the 26 spin-orbitals: 3d, ligand, 2p.
D_ORBITALS = slice(0, 10)
L_ORBITALS = slice(10, 20)
P_ORBITALS = slice(20, 26)
N_ORBITALS = 26


@dataclass(frozen=True)
class CTParameterSet:
    """One point of the charge-transfer multiplet model.

    Parameters
    ----------
    valence
        Fe oxidation state, 2 or 3.
    coordination
        "Oh" or "Td".
    ten_dq
        Ionic crystal field 10Dq on the 3d orbitals, eV (negative for Td). The
        hybridisation adds its own e/t2 splitting, so it is smaller than a
        single-ion 10Dq.
    slater_scale
        Factor on the Hartree-Fock Slater integrals, as in
        :class:`~hyperspy_fe_ml.library.multiplet.ParameterSet`.
    delta
        Charge-transfer energy Delta = E(d^(n+1)L) - E(d^n), eV.
    u_dd, u_pd
        Average 3d-3d and 2p-3d Coulomb energies, eV.
    v_eg, v_t2g
        Hybridisation of the (d3z2-r2, dx2-y2) pair (e_g in Oh, e in Td) and of
        the (dxy, dyz, dzx) triplet (t2g / t2), eV.
        :func:`site_hybridisation` gives the usual ratios.
    ligand_holes
        Most ligand holes: 1 (d^n + d^(n+1)L) or 2 (+ d^(n+2)L^2).

    Examples
    --------
    >>> p = CTParameterSet(3, "Oh", 0.9, delta=3.0, v_eg=2.2, v_t2g=1.1)
    >>> p.single_ion
    ParameterSet(valence=3, coordination='Oh', ten_dq=0.9, ds=0.0, dt=0.0, slater_scale=0.8)
    """  # noqa: E501

    valence: int
    coordination: str
    ten_dq: float
    slater_scale: float = 0.8
    delta: float = 3.0
    u_dd: float = 6.0
    u_pd: float = 7.5
    v_eg: float = 2.0
    v_t2g: float = 1.0
    ligand_holes: int = 1

    def __post_init__(self) -> None:
        if self.coordination not in ("Oh", "Td"):
            raise ValueError(
                f"charge-transfer sets are cubic: coordination must be 'Oh' or "
                f"'Td', got {self.coordination!r}"
            )
        if self.valence not in (2, 3):
            raise ValueError(f"valence must be 2 or 3, got {self.valence!r}")
        if self.ligand_holes not in (1, 2):
            raise ValueError(f"ligand_holes must be 1 or 2, got {self.ligand_holes}")
        _ = self.single_ion  # validates the 10Dq sign and the Slater scaling

    @property
    def single_ion(self) -> ParameterSet:
        """The single-ion set with the same 10Dq and Slater scaling."""
        return ParameterSet(
            self.valence,
            self.coordination,
            self.ten_dq,
            slater_scale=self.slater_scale,
        )

    @property
    def n_d(self) -> int:
        """Number of 3d electrons of the ionic configuration."""
        return VALENCE_TO_D_ELECTRONS[self.valence]

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dictionary."""
        return asdict(self)


def site_hybridisation(
    coordination: str, v_sigma: float, pi_sigma: float = 0.433
) -> tuple[float, float]:
    """(V_e, V_t2) of a cubic site from one bond strength, angular overlap model.

    With V_eg(Oh) = ``v_sigma`` the pd-sigma and pd-pi overlaps are fixed by
    V_eg = sqrt(3) pd_sigma and V_t2g = 2 pd_pi; the default pd_pi/pd_sigma =
    0.433 gives V_t2g = V_eg / 2 (de Groot and Kotani's ratio). A tetrahedron
    of the same bonds has V_t2^2 = 4/3 pd_sigma^2 + 8/9 pd_pi^2 and
    V_e^2 = 8/3 pd_pi^2 (the e and t2 roles swap and both are weaker): with
    the default ratio V_t2 = v_sigma / sqrt(2) and V_e = v_sigma / sqrt(6).
    Shorter tetrahedral bonds make pd_sigma larger; scale ``v_sigma`` for that.

    Parameters
    ----------
    coordination
        "Oh" or "Td".
    v_sigma
        V_eg of an octahedron of the same bonds, eV.
    pi_sigma
        pd_pi / pd_sigma (magnitudes).

    Returns
    -------
    v_e, v_t2
        eV; pass them as ``v_eg`` and ``v_t2g`` of :class:`CTParameterSet`.

    Examples
    --------
    >>> [round(v, 3) for v in site_hybridisation("Oh", 2.0)]
    [2.0, 1.0]
    >>> [round(v, 3) for v in site_hybridisation("Td", 2.0)]
    [0.816, 1.414]
    """
    pd_sigma = v_sigma / np.sqrt(3.0)
    pd_pi = pi_sigma * pd_sigma
    if coordination == "Oh":
        return float(v_sigma), float(2.0 * pd_pi)
    if coordination == "Td":
        v_t2 = np.sqrt(4.0 / 3.0 * pd_sigma**2 + 8.0 / 9.0 * pd_pi**2)
        v_e = np.sqrt(8.0 / 3.0) * pd_pi
        return float(v_e), float(v_t2)
    raise ValueError(f"coordination must be 'Oh' or 'Td', got {coordination!r}")


# ---------------------------------------------------------------------------
# Many-body operators in a Fock basis
# ---------------------------------------------------------------------------


def _masks(basis: Sequence[Sequence[int]]) -> np.ndarray:
    bits = np.asarray(basis, dtype=np.int64)
    return (bits << np.arange(bits.shape[1], dtype=np.int64)).sum(axis=1)


def _parity_below(masks: np.ndarray, orbital: int) -> np.ndarray:
    below = np.int64((1 << orbital) - 1)
    return np.bitwise_count(masks & below).astype(np.int64) & 1


def fermion_operator(
    tensors: Sequence[np.ndarray],
    left: Sequence[Sequence[int]],
    right: Sequence[Sequence[int]] | None = None,
    tol: float = 1e-10,
) -> list[Any]:
    """Sparse matrices of one- or two-body operators in a Fock basis.

    A 2-index tensor ``e`` is sum_ij e[i, j] f_i^+ f_j (``edrixs.two_fermion``);
    a 4-index tensor ``u`` is sum_lkji u[l, k, j, i] f_l^+ f_k^+ f_j f_i
    (``edrixs.four_fermion``), same fermion-sign convention (occupied orbitals
    of lower index). All tensors of one call must have the same rank; they share
    the work of finding the connected basis states.

    Parameters
    ----------
    tensors
        Tensors of one rank over the orbitals of the basis.
    left, right
        Fock bases (0/1 rows, e.g. ``edrixs.get_fock_bin_by_N``); ``right``
        defaults to ``left``.
    tol
        Tensor elements below this are ignored.

    Returns
    -------
    list of scipy.sparse.csr_matrix
        One ``(len(left), len(right))`` matrix per tensor.

    Examples
    --------
    >>> import numpy as np, edrixs
    >>> basis = edrixs.get_fock_bin_by_N(4, 2)
    >>> e = np.arange(16.0).reshape(4, 4)
    >>> (m,) = fermion_operator([e], basis)
    >>> bool(np.allclose(m.toarray(), edrixs.two_fermion(e, basis, basis)))
    True
    """
    import scipy.sparse as sp

    right = left if right is None else right
    lm, rm = _masks(left), _masks(right)
    order = np.argsort(lm)
    sorted_left = lm[order]
    rank = np.ndim(tensors[0])
    if any(np.ndim(t) != rank for t in tensors) or rank not in (2, 4):
        raise ValueError("tensors must all be 2-index or all be 4-index")
    stack = np.stack([np.asarray(t) for t in tensors])
    support = np.argwhere(np.any(np.abs(stack) > tol, axis=0))
    rows, cols, vals = [], [], []
    all_cols = np.arange(rm.size)
    for index in support:
        if rank == 2:
            # f_i^+ f_j: annihilate j, then create i.
            steps = ((int(index[1]), False), (int(index[0]), True))
        else:
            l_, k_, j_, i_ = (int(x) for x in index)
            steps = ((i_, False), (j_, False), (k_, True), (l_, True))
        state = rm
        sign = np.ones(rm.size, dtype=np.int64)
        ok = np.ones(rm.size, dtype=bool)
        for orbital, create in steps:
            bit = np.int64(1 << orbital)
            occupied = (state & bit) != 0
            ok &= ~occupied if create else occupied
            sign *= 1 - 2 * _parity_below(state, orbital)
            state = state ^ bit
        if not ok.any():
            continue
        state, sign, col = state[ok], sign[ok], all_cols[ok]
        pos = np.minimum(np.searchsorted(sorted_left, state), sorted_left.size - 1)
        found = sorted_left[pos] == state
        if not found.any():
            continue
        rows.append(order[pos[found]])
        cols.append(col[found])
        vals.append(sign[found][None, :] * stack[(slice(None), *index)][:, None])
    shape = (lm.size, rm.size)
    if not rows:
        return [sp.csr_matrix(shape, dtype=complex) for _ in tensors]
    r, c = np.concatenate(rows), np.concatenate(cols)
    v = np.concatenate(vals, axis=1)
    out = []
    for k in range(len(tensors)):
        m = sp.coo_matrix((v[k], (r, c)), shape=shape).tocsr()
        m.sum_duplicates()
        m.eliminate_zeros()
        out.append(m)
    return out


# ---------------------------------------------------------------------------
# Hamiltonian terms
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CTTerms:
    """Many-body matrices of every term, for one 3d count and CI depth.

    Built once by :func:`build_ct_terms`. ``initial_blocks`` and
    ``final_blocks`` are index arrays of the independent blocks of the
    Hamiltonians (any parameter values).
    """

    n_d: int
    ligand_holes: int
    atomic: dict[str, float]
    initial: dict[str, Any]
    final: dict[str, Any]
    dipole: tuple[Any, Any, Any]
    l2_holes: Any
    n_d_initial: Any
    initial_blocks: tuple[np.ndarray, ...]
    final_blocks: tuple[np.ndarray, ...]

    @property
    def sizes(self) -> tuple[int, int]:
        """Dimensions of the initial and final Hilbert spaces."""
        return self.initial["Nd"].shape[0], self.final["Nd"].shape[0]


def _embed_one_body(block: np.ndarray, where: slice, to: slice | None = None) -> Any:
    emat = np.zeros((N_ORBITALS, N_ORBITALS), dtype=complex)
    emat[where, where if to is None else to] = block
    return emat


def _blocks(matrices: Sequence[Any]) -> tuple[np.ndarray, ...]:
    from scipy.sparse.csgraph import connected_components

    pattern = None
    for m in matrices:
        a = abs(m) > 1e-12
        pattern = a if pattern is None else pattern + a
    n, label = connected_components(pattern, directed=False)
    return tuple(np.flatnonzero(label == k) for k in range(n))


@lru_cache(maxsize=4)
def build_ct_terms(n_d: int, ligand_holes: int = 1) -> CTTerms:
    """Build the many-body matrix of each term once (cached).

    Parameters
    ----------
    n_d
        3d electrons of the ionic configuration (5 or 6).
    ligand_holes
        1: d^n + d^(n+1)L; 2: also d^(n+2)L^2.

    Returns
    -------
    CTTerms

    Examples
    --------
    >>> build_ct_terms(6).sizes
    (1410, 3420)
    """
    edrixs = require_edrixs()
    if n_d not in (5, 6):
        raise ValueError(f"n_d={n_d}: charge-transfer terms exist for 3d5 and 3d6")
    basis_i: list = []
    basis_n: list = []
    for h in range(ligand_holes + 1):
        if n_d + h <= 10:
            basis_i += edrixs.get_fock_bin_by_N(10, n_d + h, 10, 10 - h, 6, 6)
        if n_d + 1 + h <= 10:
            basis_n += edrixs.get_fock_bin_by_N(10, n_d + 1 + h, 10, 10 - h, 6, 5)

    # Coulomb on d and p only: edrixs' 16-orbital (d, p) tensor placed into the
    # 26-orbital space. Order of get_umat_slater("dp", ...): F0dd, F2dd, F4dd,
    # F0dp, F2dp, G1dp, G3dp, F0pp, F2pp.
    index = np.r_[0:10, 20:26]
    umats = []
    for k in range(7):
        args = np.zeros(9)
        args[k] = 1.0
        u = np.zeros((N_ORBITALS,) * 4, dtype=complex)
        u[np.ix_(index, index, index, index)] = edrixs.get_umat_slater("dp", *args)
        umats.append(u)

    tmat = edrixs.tmat_r2c("d", True)

    def cubic_pair(levels: Sequence[float]) -> np.ndarray:
        real = np.zeros((10, 10), dtype=complex)
        real[0:10:2, 0:10:2] = np.diag(levels)
        real[1:10:2, 1:10:2] = np.diag(levels)
        return edrixs.cb_op(real, tmat)

    # Real-orbital order of edrixs: d3z2-r2, dzx, dzy, dx2-y2, dxy.
    hyb = {
        "Ve": cubic_pair([1.0, 0.0, 0.0, 1.0, 0.0]),
        "Vt2": cubic_pair([0.0, 1.0, 1.0, 0.0, 1.0]),
    }

    def one_body_terms(final: bool) -> dict[str, np.ndarray]:
        out = {
            "zeta_d": _embed_one_body(edrixs.atom_hsoc("d", 1.0), D_ORBITALS),
            "Dq": _embed_one_body(d_orbital_cf_matrix(1.0, 0.0, 0.0), D_ORBITALS),
            "Nd": _embed_one_body(np.eye(10), D_ORBITALS),
            "NL": _embed_one_body(np.eye(10), L_ORBITALS),
        }
        for name, v in hyb.items():
            out[name] = _embed_one_body(v, D_ORBITALS, L_ORBITALS) + _embed_one_body(
                v.conj().T, L_ORBITALS, D_ORBITALS
            )
        if final:
            out["zeta_p"] = _embed_one_body(edrixs.atom_hsoc("p", 1.0), P_ORBITALS)
            out["Np"] = _embed_one_body(np.eye(6), P_ORBITALS)
        return out

    def terms_for(basis: list, final: bool) -> dict[str, Any]:
        ones = one_body_terms(final)
        names = list(ones)
        out = dict(
            zip(names, fermion_operator([ones[k] for k in names], basis), strict=True)
        )
        coulomb = umats[:3] + (umats[3:7] if final else [])
        f = fermion_operator(coulomb, basis)
        out["F0dd"] = f[0]
        out["F2dd"] = f[1] + (2.0 / 63.0) * f[0]
        out["F4dd"] = f[2] + (2.0 / 63.0) * f[0]
        if final:
            out["F0pd"] = f[3]
            out["F2pd"] = f[4]
            out["G1pd"] = f[5] + (1.0 / 15.0) * f[3]
            out["G3pd"] = f[6] + (3.0 / 70.0) * f[3]
        return out

    trans = edrixs.get_trans_oper("dp")
    dipole = tuple(
        fermion_operator(
            [_embed_one_body(trans[k], D_ORBITALS, P_ORBITALS) for k in range(3)],
            basis_n,
            basis_i,
        )
    )
    w, v = np.linalg.eigh(edrixs.atom_hsoc("p", 1.0))
    j_half = v[:, w < 0]
    (n_half,) = fermion_operator(
        [_embed_one_body(j_half @ j_half.conj().T, P_ORBITALS)], basis_n
    )
    import scipy.sparse as sp

    l2_holes = sp.identity(len(basis_n), format="csr") * 2.0 - n_half
    initial = terms_for(basis_i, final=False)
    final = terms_for(basis_n, final=True)
    return CTTerms(
        n_d=n_d,
        ligand_holes=ligand_holes,
        atomic=atomic_parameters(n_d),
        initial=initial,
        final=final,
        dipole=dipole,
        l2_holes=l2_holes,
        n_d_initial=initial["Nd"],
        initial_blocks=_blocks(list(initial.values())),
        final_blocks=_blocks([*final.values(), l2_holes]),
    )


def ct_term_coefficients(
    params: CTParameterSet, atomic: dict[str, float]
) -> tuple[dict[str, float], dict[str, float]]:
    """Coefficients of the initial and final terms for a parameter set.

    Examples
    --------
    >>> p = CTParameterSet(2, "Oh", 0.6, delta=6.0, u_dd=6.0, u_pd=7.0)
    >>> ci, cn = ct_term_coefficients(p, atomic_parameters(6))
    >>> # E(d7 L) - E(d6) = Delta; E(2p5 d8 L) - E(2p5 d7) = Delta + U_dd - U_pd
    >>> round(ci["Nd"] - ci["NL"] + 6 * p.u_dd, 6)
    6.0
    >>> round(cn["Nd"] - cn["NL"] + 7 * p.u_dd + 5 * p.u_pd, 6)
    5.0
    """
    edrixs = require_edrixs()
    from hyperspy_fe_ml.library.multiplet import term_coefficients

    coeff_i, coeff_n = term_coefficients(params.single_ion, atomic)
    for c in (coeff_i, coeff_n):
        for k in ("Ds", "Dt"):
            c.pop(k, None)
    n = params.n_d
    e_d, e_l = edrixs.CT_imp_bath(params.u_dd, params.delta, n)
    e_dc, e_lc, e_p = edrixs.CT_imp_bath_core_hole(
        params.u_dd, params.u_pd, params.delta, n
    )
    hyb = {"Ve": params.v_eg, "Vt2": params.v_t2g}
    coeff_i.update({"F0dd": params.u_dd, "Nd": e_d, "NL": e_l, **hyb})
    coeff_n.update(
        {
            "F0dd": params.u_dd,
            "F0pd": params.u_pd,
            "Nd": e_dc,
            "NL": e_lc,
            "Np": e_p,
            **hyb,
        }
    )
    return coeff_i, coeff_n


def _sum_terms(terms: dict[str, Any], coefficients: dict[str, float]) -> Any:
    total = None
    for name, value in coefficients.items():
        if value == 0.0:
            continue
        part = terms[name] * value
        total = part if total is None else total + part
    return total.tocsr()


def _eig_blocks(
    h: Any, blocks: Sequence[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(indices, eigenvalues, eigenvectors) of each block, real where H is."""
    out = []
    for idx in blocks:
        sub = h[idx][:, idx].toarray()
        if np.abs(sub.imag).max(initial=0.0) < 1e-12:
            sub = sub.real
        w, v = np.linalg.eigh(sub)
        out.append((idx, w, v))
    return out


def _initial_states(
    terms: CTTerms, coeff_i: dict[str, float], temperature: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energies, full-space vectors (columns) and Boltzmann weights of the
    thermally occupied initial states."""
    h = _sum_terms(terms.initial, coeff_i)
    parts = _eig_blocks(h, terms.initial_blocks)
    energies = np.concatenate([w for _, w, _ in parts])
    owner = np.concatenate([np.full(w.size, b) for b, (_, w, _) in enumerate(parts)])
    column = np.concatenate([np.arange(w.size) for _, w, _ in parts])
    order = np.argsort(energies, kind="stable")
    index, weight = boltzmann_weights(energies[order], temperature)
    picked = order[index]
    vectors = np.zeros((h.shape[0], picked.size), dtype=complex)
    for k, p in enumerate(picked):
        idx, _, v = parts[owner[p]]
        vectors[idx, k] = v[:, column[p]]
    return energies[picked], vectors, weight


def ground_state_d_occupation(
    params: CTParameterSet,
    *,
    temperature: float = 300.0,
    terms: CTTerms | None = None,
) -> float:
    """Boltzmann-averaged number of 3d electrons of the initial state.

    Parameters
    ----------
    params
        The model point.
    temperature
        Kelvin.
    terms
        From :func:`build_ct_terms` (built and cached if omitted).

    Returns
    -------
    float
        n_d + (weight of d^(n+1)L) + 2 (weight of d^(n+2)L^2).

    Examples
    --------
    >>> p = CTParameterSet(3, "Oh", 0.9, delta=2.5, v_eg=3.0, v_t2g=1.5)
    >>> round(ground_state_d_occupation(p), 2)
    5.27
    """
    terms = _terms_for(params, terms)
    coeff_i, _ = ct_term_coefficients(params, terms.atomic)
    _, vectors, weight = _initial_states(terms, coeff_i, temperature)
    occ = np.real(np.einsum("ij,ij->j", vectors.conj(), terms.n_d_initial @ vectors))
    return float(occ @ weight)


def _terms_for(params: CTParameterSet, terms: CTTerms | None) -> CTTerms:
    if terms is None:
        return build_ct_terms(params.n_d, params.ligand_holes)
    if terms.n_d != params.n_d or terms.ligand_holes != params.ligand_holes:
        raise ValueError(
            f"terms were built for 3d^{terms.n_d} with {terms.ligand_holes} "
            f"ligand hole(s); the parameters need build_ct_terms({params.n_d}, "
            f"{params.ligand_holes})"
        )
    return terms


def simulate_ct_sticks(
    params: CTParameterSet,
    *,
    temperature: float = 300.0,
    terms: CTTerms | None = None,
    compress: bool = True,
) -> StickSpectrum:
    """Stick spectrum of one charge-transfer parameter set.

    Energies are relative (final minus initial eigenvalues; the zero of each
    Hamiltonian is the ionic configuration's multiplet centre, as in
    :func:`~hyperspy_fe_ml.library.multiplet.simulate_sticks`), intensities the
    isotropic dipole average Boltzmann-weighted over the initial states (their
    sum is (10 - <n_d>) / 3), edges 3 / 2 from the 2p1/2 hole number.

    Parameters
    ----------
    params
        The model point.
    temperature
        Kelvin.
    terms
        From :func:`build_ct_terms` (built and cached if omitted).
    compress
        Merge and threshold with
        :func:`~hyperspy_fe_ml.library.multiplet.compress_sticks`.

    Returns
    -------
    StickSpectrum

    Examples
    --------
    >>> p = CTParameterSet(2, "Oh", 0.6, delta=6.0, v_eg=2.0, v_t2g=1.0)
    >>> s = simulate_ct_sticks(p, compress=False)
    >>> bool(abs(s.intensity.sum() - (10 - ground_state_d_occupation(p)) / 3) < 1e-9)
    True
    """
    if temperature < 0:
        raise ValueError(f"temperature={temperature} K is negative: use >= 0")
    terms = _terms_for(params, terms)
    coeff_i, coeff_n = ct_term_coefficients(params, terms.atomic)
    e_i, v_i, weight = _initial_states(terms, coeff_i, temperature)
    h_n = _sum_terms(terms.final, coeff_n)
    kets = [op @ v_i for op in terms.dipole]
    energy, intensity, edge = [], [], []
    for idx, w, v in _eig_blocks(h_n, terms.final_blocks):
        part = np.zeros((w.size, e_i.size))
        for ket in kets:
            part += np.abs(v.T.conj() @ ket[idx]) ** 2
        part *= weight[None, :] / len(kets)
        l2 = np.real(np.einsum("ij,ij->j", v.conj(), terms.l2_holes[idx][:, idx] @ v))
        label = np.where(l2 > 0.5, 2, 3).astype(np.int8)
        energy.append((w[:, None] - e_i[None, :]).ravel())
        intensity.append(part.ravel())
        edge.append(np.broadcast_to(label[:, None], part.shape).ravel())
    sticks = StickSpectrum(
        np.concatenate(energy), np.concatenate(intensity), np.concatenate(edge)
    )
    return compress_sticks(sticks) if compress else sticks
