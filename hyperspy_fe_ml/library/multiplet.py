"""Crystal-field multiplet stick spectra of the Fe L2,3 edge, computed with edrixs.

The absorption 2p6 3d^n -> 2p5 3d^(n+1) is computed by exact diagonalisation of a
single ion in a crystal field: Fe2+ (3d6), Fe3+ (3d5) and Fe4+ (3d4). The
Hamiltonian is

    H = sum_k p_k H_k,

linear in its parameters p_k (Slater integrals, spin-orbit constants and the
crystal-field parameters Dq, Ds, Dt). :func:`build_terms` builds the many-body
matrix of every term H_k once per configuration with edrixs; :func:`simulate_sticks`
then only sums them and diagonalises, which is several times faster than calling
``edrixs.ed_1v1c_py`` per point (:func:`simulate_sticks_edrixs`, kept as the
reference path and for timing).

The result is a stick spectrum: transition energies (eV, relative: the model has no
absolute energy, see :mod:`hyperspy_fe_ml.library.calibration`), intensities
(Boltzmann-averaged over the initial states at the given temperature, isotropic
dipole average) and an edge label, 3 for L3 (2p3/2 core hole) and 2 for L2 (2p1/2),
taken from the core-hole character of each final state. Broadening is a later, cheap
step (:mod:`hyperspy_fe_ml.kernels.broaden`).

Physical inputs and where they come from:

* Hartree-Fock atomic Slater integrals and spin-orbit constants: edrixs
  ``atom_data/Fe.json`` through ``edrixs.get_atom_data("Fe", "3d", n, edge="L23")``
  (Cowan code; Crispy's Quanty tables agree to about 1 meV, see PHYSICS.md).
* Slater integrals F2, F4 (dd), F2, G1, G3 (pd) are scaled by one factor, 65-90 %
  (covalency reduction, PHYSICS.md); the monopole terms F0dd = 2/63 (F2 + F4) and
  F0pd = G1/15 + 3 G3/70 keep the centre of gravity of each configuration fixed, so
  that the absolute calibration does not drift with the scaling.
* Crystal field in the D4h parameterisation (Ballhausen; PHYSICS.md):
  a1g = 6Dq - 2Ds - 6Dt, b1g = 6Dq + 2Ds - Dt, b2g = -4Dq + 2Ds - Dt,
  eg = -4Dq - Ds + 4Dt. Oh: Ds = Dt = 0. Td: the cubic field with negative 10Dq.
  D2d, a tetrahedron compressed or elongated along one S4 axis: the same form with
  negative 10Dq and Ds, Dt != 0 (the d shell splits e -> a1 + b1, t2 -> b2 + e
  along the same real orbitals as in D4h).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = [
    "BOLTZMANN_EV_PER_K",
    "COORDINATION_NUMBERS",
    "ParameterSet",
    "StickSpectrum",
    "TETRAHEDRAL_SITES",
    "VALENCE_TO_D_ELECTRONS",
    "build_terms",
    "compress_sticks",
    "ed_1v1c_arguments",
    "edrixs_version",
    "require_edrixs",
    "simulate_sticks",
    "simulate_sticks_edrixs",
    "sticks_for_coefficients",
]

#: Fe oxidation state -> number of 3d electrons in the initial state.
VALENCE_TO_D_ELECTRONS: dict[int, int] = {2: 6, 3: 5, 4: 4}
#: Site symmetry -> Fe-O coordination number. "D4h" is a tetragonally distorted
#: octahedron, "C4v" a square pyramid (the D4h crystal-field form with the
#: angular-overlap relations of a five-fold site, see :func:`square_pyramid_cf`),
#: "D2d" a tetragonally distorted tetrahedron.
COORDINATION_NUMBERS: dict[str, int] = {
    "Oh": 6,
    "Td": 4,
    "D4h": 6,
    "C4v": 5,
    "D2d": 4,
}
#: Site symmetries of four-fold (tetrahedral) Fe: a negative 10Dq, and what the
#: ``td_fraction`` output counts.
TETRAHEDRAL_SITES: tuple[str, ...] = ("Td", "D2d")
#: Boltzmann constant, eV/K (CODATA 2018).
BOLTZMANN_EV_PER_K = 8.617333262e-5
#: Initial states up to this many kT above the ground state enter the average.
BOLTZMANN_CUTOFF_KT = 20.0

# Names of the Hamiltonian terms, in the order of the parameter vector.
_INITIAL_TERMS = ("F2dd", "F4dd", "zeta_d", "Dq", "Ds", "Dt")
_FINAL_TERMS = _INITIAL_TERMS + ("F2pd", "G1pd", "G3pd", "zeta_p")


def require_edrixs() -> Any:
    """Import edrixs or say how to install it.

    Returns
    -------
    module
        The ``edrixs`` module.

    Raises
    ------
    ImportError
        edrixs is not installed; the message gives the pip command.
    """
    try:
        import edrixs
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "simulating multiplet spectra needs the optional dependency edrixs: "
            "pip install hyperspy-fe-ml[simulate]. Reading the shipped library "
            "does not need it."
        ) from err
    return edrixs


def edrixs_version() -> str:
    """Version string of the installed edrixs ("" when it is missing)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edrixs")
    except PackageNotFoundError:
        return ""


@dataclass(frozen=True)
class ParameterSet:
    """One point of the multiplet model.

    Parameters
    ----------
    valence
        Fe oxidation state: 2, 3 or 4.
    coordination
        Site symmetry: "Oh", "Td", "D4h" (distorted octahedron), "C4v" (square
        pyramid) or "D2d" (distorted tetrahedron).
    ten_dq
        Cubic crystal field 10Dq in eV; negative for "Td" and "D2d" (e below t2).
    ds, dt
        Tetragonal parameters Ds and Dt in eV (0 for "Oh" and "Td").
    slater_scale
        Factor on the Hartree-Fock Slater integrals F2, F4, G1, G3 (0.5-1).

    Examples
    --------
    >>> ParameterSet(3, "Oh", 1.4).coordination_number
    6
    """

    valence: int
    coordination: str
    ten_dq: float
    ds: float = 0.0
    dt: float = 0.0
    slater_scale: float = 0.8

    def __post_init__(self) -> None:
        if self.valence not in VALENCE_TO_D_ELECTRONS:
            raise ValueError(
                f"unknown Fe valence {self.valence!r}: use one of "
                f"{sorted(VALENCE_TO_D_ELECTRONS)}"
            )
        if self.coordination not in COORDINATION_NUMBERS:
            raise ValueError(
                f"unknown coordination {self.coordination!r}: use one of "
                f"{list(COORDINATION_NUMBERS)}"
            )
        tetrahedral = self.coordination in TETRAHEDRAL_SITES
        if tetrahedral and self.ten_dq >= 0:
            raise ValueError(
                f"{self.coordination} needs a negative 10Dq (e below t2), got "
                f"ten_dq={self.ten_dq}: pass e.g. ten_dq=-0.6"
            )
        if not tetrahedral and self.ten_dq < 0:
            raise ValueError(
                f"{self.coordination} needs 10Dq >= 0, got ten_dq={self.ten_dq}; "
                "a negative 10Dq is the tetrahedral field: use coordination='Td' "
                "(or 'D2d' for a distorted tetrahedron)"
            )
        if self.coordination in ("Oh", "Td") and (self.ds != 0 or self.dt != 0):
            raise ValueError(
                f"{self.coordination} is cubic: Ds and Dt must be 0 (got ds="
                f"{self.ds}, dt={self.dt}); use coordination='D4h' (or 'D2d') for "
                "a distortion"
            )
        if not 0.5 <= self.slater_scale <= 1.0:
            raise ValueError(
                f"slater_scale={self.slater_scale} is outside 0.5-1.0: it is the "
                "fraction of the Hartree-Fock Slater integrals kept (typically 0.8)"
            )

    @property
    def coordination_number(self) -> int:
        """Fe-O coordination number of the site."""
        return COORDINATION_NUMBERS[self.coordination]

    @property
    def n_d(self) -> int:
        """Number of 3d electrons in the initial state."""
        return VALENCE_TO_D_ELECTRONS[self.valence]

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class StickSpectrum:
    """Transitions of one parameter set.

    Attributes
    ----------
    energy
        Transition energies, eV, relative to the model's own zero (uncalibrated).
    intensity
        Isotropic dipole intensities, Boltzmann-averaged; their sum is
        proportional to the number of 3d holes.
    edge
        3 for an L3 (2p3/2 core hole) final state, 2 for L2.
    """

    energy: np.ndarray
    intensity: np.ndarray
    edge: np.ndarray

    def __len__(self) -> int:
        return int(self.energy.size)


def d_orbital_cf_matrix(dq: float, ds: float, dt: float) -> np.ndarray:
    """Crystal-field matrix of the d shell (10 spin-orbitals, complex harmonics).

    Parameters
    ----------
    dq, ds, dt
        Dq (= 10Dq / 10), Ds and Dt in eV.

    Returns
    -------
    numpy.ndarray
        Complex (10, 10) matrix in edrixs' orbital order.

    Examples
    --------
    >>> import numpy as np, edrixs
    >>> np.allclose(d_orbital_cf_matrix(0.12, 0, 0), edrixs.cf_cubic_d(1.2))
    True
    """
    edrixs = require_edrixs()
    # Real-orbital order of edrixs: d3z2-r2, dzx, dzy, dx2-y2, dxy (PHYSICS.md).
    levels = np.array(
        [
            6 * dq - 2 * ds - 6 * dt,
            -4 * dq - ds + 4 * dt,
            -4 * dq - ds + 4 * dt,
            6 * dq + 2 * ds - dt,
            -4 * dq + 2 * ds - dt,
        ],
        dtype=complex,
    )
    cf = np.zeros((10, 10), dtype=complex)
    cf[0:10:2, 0:10:2] = np.diag(levels)
    cf[1:10:2, 1:10:2] = np.diag(levels)
    return edrixs.cb_op(cf, edrixs.tmat_r2c("d", True))


def square_pyramid_cf(ten_dq: float, pi_sigma_ratio: float) -> tuple[float, float]:
    """Ds and Dt of a square pyramid from the angular overlap model.

    Removing one apical ligand from an octahedron (ligand fields e_sigma, e_pi)
    gives, in the D4h parameterisation, 10Dq = 3 e_sigma - 4 e_pi unchanged,
    Ds = (e_sigma + e_pi) / 7 and Dt = 10Dq / 35 (derived from the AOM d-orbital
    energies: z2 2 e_sigma, x2-y2 3 e_sigma, xy 4 e_pi, xz/yz 3 e_pi).

    Parameters
    ----------
    ten_dq
        10Dq in eV.
    pi_sigma_ratio
        e_pi / e_sigma, typically 0.1-0.3 for oxide ligands.

    Returns
    -------
    ds, dt
        In eV.

    Examples
    --------
    >>> ds, dt = square_pyramid_cf(1.2, 0.25)
    >>> round(ds, 4), round(dt, 4)
    (0.1071, 0.0343)
    """
    e_sigma = ten_dq / (3.0 - 4.0 * pi_sigma_ratio)
    e_pi = pi_sigma_ratio * e_sigma
    return (e_sigma + e_pi) / 7.0, ten_dq / 35.0


@dataclass(frozen=True)
class HamiltonianTerms:
    """Many-body matrices of every Hamiltonian term for one 3d^n configuration.

    Built once by :func:`build_terms`; all matrices are ``scipy.sparse`` CSR.
    """

    n_d: int
    atomic: dict[str, float]
    initial: dict[str, Any]
    final: dict[str, Any]
    dipole: tuple[Any, Any, Any]
    l2_holes: Any

    @property
    def sizes(self) -> tuple[int, int]:
        """Dimensions of the initial and final Hilbert spaces."""
        return self.initial["Dq"].shape[0], self.final["Dq"].shape[0]


def atomic_parameters(n_d: int) -> dict[str, float]:
    """Unscaled Hartree-Fock parameters (eV) from edrixs' atom data.

    Keys: F2dd_i, F4dd_i, zeta_d_i, F2dd_n, F4dd_n, F2pd, G1pd, G3pd, zeta_d_n,
    zeta_p (i = initial 2p6 3d^n, n = final 2p5 3d^(n+1)).
    """
    edrixs = require_edrixs()
    data = edrixs.get_atom_data("Fe", "3d", n_d, edge="L23")
    si = dict(data["slater_i"])
    sn = dict(data["slater_n"])
    return {
        "F2dd_i": float(si["F2_11"]),
        "F4dd_i": float(si["F4_11"]),
        "zeta_d_i": float(data["v_soc_i"][0]),
        "F2dd_n": float(sn["F2_11"]),
        "F4dd_n": float(sn["F4_11"]),
        "F2pd": float(sn["F2_12"]),
        "G1pd": float(sn["G1_12"]),
        "G3pd": float(sn["G3_12"]),
        "zeta_d_n": float(data["v_soc_n"][0]),
        "zeta_p": float(data["c_soc"]),
    }


@lru_cache(maxsize=4)
def build_terms(n_d: int) -> HamiltonianTerms:
    """Build the many-body matrix of each Hamiltonian term once (cached).

    The monopole corrections are folded into the Slater terms: the "F2dd" matrix
    is the F2 operator plus 2/63 times the F0 operator, and likewise for F4dd, G1pd
    (1/15) and G3pd (3/70), so that the centre of gravity of each configuration is
    independent of the parameters.

    Parameters
    ----------
    n_d
        Number of 3d electrons in the initial state (4, 5 or 6).

    Returns
    -------
    HamiltonianTerms

    Examples
    --------
    >>> build_terms(6).sizes
    (210, 720)
    """
    import scipy.sparse as sp

    edrixs = require_edrixs()
    if n_d not in VALENCE_TO_D_ELECTRONS.values():
        raise ValueError(f"n_d={n_d} is not a supported 3d count (4, 5 or 6)")
    basis_i = edrixs.get_fock_bin_by_N(10, n_d, 6, 6)
    basis_n = edrixs.get_fock_bin_by_N(10, n_d + 1, 6, 5)

    def one_body(block: np.ndarray, shell: str, basis: list) -> Any:
        emat = np.zeros((16, 16), dtype=complex)
        if shell == "d":
            emat[:10, :10] = block
        else:
            emat[10:, 10:] = block
        return sp.csr_matrix(edrixs.two_fermion(emat, basis, basis))

    def coulomb(index: int, basis: list) -> Any:
        # get_umat_slater("dp", F0dd, F2dd, F4dd, F0dp, F2dp, G1dp, G3dp, F0pp, F2pp)
        args = np.zeros(9)
        args[index] = 1.0
        umat = edrixs.get_umat_slater("dp", *args)
        return sp.csr_matrix(edrixs.four_fermion(umat, basis))

    def terms_for(basis: list, final: bool) -> dict[str, Any]:
        f0dd = coulomb(0, basis)
        out = {
            "F2dd": coulomb(1, basis) + (2.0 / 63.0) * f0dd,
            "F4dd": coulomb(2, basis) + (2.0 / 63.0) * f0dd,
            "zeta_d": one_body(edrixs.atom_hsoc("d", 1.0), "d", basis),
            "Dq": one_body(d_orbital_cf_matrix(1.0, 0.0, 0.0), "d", basis),
            "Ds": one_body(d_orbital_cf_matrix(0.0, 1.0, 0.0), "d", basis),
            "Dt": one_body(d_orbital_cf_matrix(0.0, 0.0, 1.0), "d", basis),
        }
        if final:
            f0pd = coulomb(3, basis)
            out["F2pd"] = coulomb(4, basis)
            out["G1pd"] = coulomb(5, basis) + (1.0 / 15.0) * f0pd
            out["G3pd"] = coulomb(6, basis) + (3.0 / 70.0) * f0pd
            out["zeta_p"] = one_body(edrixs.atom_hsoc("p", 1.0), "p", basis)
        return out

    # Dipole operator d <- p between the two configurations, three components.
    trans = edrixs.get_trans_oper("dp")
    dipole = []
    for k in range(3):
        emat = np.zeros((16, 16), dtype=complex)
        emat[:10, 10:] = trans[k]
        dipole.append(sp.csr_matrix(edrixs.two_fermion(emat, basis_n, basis_i)))

    # Number of 2p1/2 holes, 2 - N(2p1/2): the projector on the j = 1/2 subspace is
    # the eigenspace of the p spin-orbit matrix with eigenvalue -zeta (j = 3/2 has
    # +zeta/2).
    w, v = np.linalg.eigh(edrixs.atom_hsoc("p", 1.0))
    j_half = v[:, w < 0]
    projector = j_half @ j_half.conj().T
    n_half = one_body(projector, "p", basis_n)
    l2_holes = sp.identity(len(basis_n), format="csr") * 2.0 - n_half

    return HamiltonianTerms(
        n_d=n_d,
        atomic=atomic_parameters(n_d),
        initial=terms_for(basis_i, final=False),
        final=terms_for(basis_n, final=True),
        dipole=tuple(dipole),
        l2_holes=l2_holes,
    )


def term_coefficients(
    params: ParameterSet, atomic: dict[str, float]
) -> tuple[dict[str, float], dict[str, float]]:
    """Coefficients p_k of the initial and final Hamiltonians for a parameter set."""
    s = params.slater_scale
    dq = params.ten_dq / 10.0
    cf = {"Dq": dq, "Ds": params.ds, "Dt": params.dt}
    initial = {
        "F2dd": s * atomic["F2dd_i"],
        "F4dd": s * atomic["F4dd_i"],
        "zeta_d": atomic["zeta_d_i"],
        **cf,
    }
    final = {
        "F2dd": s * atomic["F2dd_n"],
        "F4dd": s * atomic["F4dd_n"],
        "zeta_d": atomic["zeta_d_n"],
        **cf,
        "F2pd": s * atomic["F2pd"],
        "G1pd": s * atomic["G1pd"],
        "G3pd": s * atomic["G3pd"],
        "zeta_p": atomic["zeta_p"],
    }
    return initial, final


def _sum_terms(terms: dict[str, Any], coefficients: dict[str, float]) -> np.ndarray:
    total = None
    for name, value in coefficients.items():
        if value == 0.0:
            continue
        part = terms[name] * value
        total = part if total is None else total + part
    if total is None:
        return np.zeros(terms["Dq"].shape, dtype=complex)
    return total.toarray()


def boltzmann_weights(
    energies: np.ndarray, temperature: float
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and normalised Boltzmann weights of the thermally occupied states.

    Parameters
    ----------
    energies
        Eigenvalues, ascending, eV.
    temperature
        Kelvin; 0 keeps the ground state (and states degenerate with it).

    Returns
    -------
    index, weight

    Examples
    --------
    >>> idx, w = boltzmann_weights(np.array([0.0, 0.0, 1.0]), 300.0)
    >>> idx.tolist(), w.round(3).tolist()
    ([0, 1], [0.5, 0.5])
    """
    delta = energies - energies[0]
    if temperature <= 0:
        index = np.flatnonzero(delta < 1e-8)
        return index, np.full(index.size, 1.0 / index.size)
    kt = BOLTZMANN_EV_PER_K * temperature
    index = np.flatnonzero(delta < BOLTZMANN_CUTOFF_KT * kt)
    weight = np.exp(-delta[index] / kt)
    return index, weight / weight.sum()


def sticks_from_eigensystem(
    eval_i: np.ndarray,
    evec_i: np.ndarray,
    eval_n: np.ndarray,
    evec_n: np.ndarray,
    dipole: Sequence[Any],
    l2_holes: Any,
    temperature: float,
) -> StickSpectrum:
    """Stick spectrum from eigenvalues and eigenvectors of both configurations.

    Intensities are the isotropic average (1/3 of the sum over the three dipole
    components) of |<f|D|i>|^2, weighted by the Boltzmann population of |i>.
    """
    index, weight = boltzmann_weights(eval_i, temperature)
    vi = evec_i[:, index]
    intensity = np.zeros((eval_n.size, index.size))
    for op in dipole:
        amplitude = evec_n.conj().T @ (op @ vi)
        intensity += np.abs(amplitude) ** 2
    intensity *= weight[None, :] / len(dipole)
    energy = eval_n[:, None] - eval_i[None, index]
    # L2 character of each final state: expectation value of the 2p1/2 hole number.
    l2 = np.real(np.einsum("ij,ij->j", evec_n.conj(), l2_holes @ evec_n))
    edge = np.where(l2 > 0.5, 2, 3).astype(np.int8)
    edge = np.broadcast_to(edge[:, None], energy.shape)
    return StickSpectrum(energy.ravel(), intensity.ravel(), edge.ravel().copy())


def simulate_sticks(
    params: ParameterSet,
    *,
    temperature: float = 300.0,
    terms: HamiltonianTerms | None = None,
    compress: bool = True,
) -> StickSpectrum:
    """Stick spectrum of one parameter set (linear-in-parameters Hamiltonian).

    Parameters
    ----------
    params
        The model point.
    temperature
        Kelvin, for the Boltzmann average over initial states.
    terms
        Pre-built term matrices; built (and cached) from ``params`` if omitted.
    compress
        Merge and threshold the sticks with :func:`compress_sticks`.

    Returns
    -------
    StickSpectrum

    Examples
    --------
    >>> sticks = simulate_sticks(ParameterSet(2, "Oh", 1.0))
    >>> bool(sticks.intensity[sticks.edge == 3].sum() > sticks.intensity.sum() / 2)
    True
    """
    if temperature < 0:
        raise ValueError(f"temperature={temperature} K is negative: use >= 0")
    if terms is None:
        terms = build_terms(params.n_d)
    elif terms.n_d != params.n_d:
        raise ValueError(
            f"terms were built for 3d^{terms.n_d}, the parameters need "
            f"3d^{params.n_d}: call build_terms({params.n_d})"
        )
    coeff_i, coeff_n = term_coefficients(params, terms.atomic)
    sticks = sticks_for_coefficients(terms, coeff_i, coeff_n, temperature)
    return compress_sticks(sticks) if compress else sticks


def sticks_for_coefficients(
    terms: HamiltonianTerms,
    initial: dict[str, float],
    final: dict[str, float],
    temperature: float = 300.0,
) -> StickSpectrum:
    """Raw sticks of H = sum_k p_k H_k for explicit term coefficients.

    Parameters
    ----------
    terms
        From :func:`build_terms`.
    initial, final
        Coefficient of each term name (see ``HamiltonianTerms.initial`` and
        ``.final``); missing terms are 0. This reaches limits a
        :class:`ParameterSet` does not allow, e.g. core spin-orbit only.
    temperature
        Kelvin.

    Returns
    -------
    StickSpectrum
        Not compressed.

    Examples
    --------
    >>> t = build_terms(6)
    >>> s = sticks_for_coefficients(t, {}, {"zeta_p": 8.199})
    >>> round(float(s.intensity[s.edge == 3].sum() / s.intensity[s.edge == 2].sum()), 9)
    2.0
    """
    for name, table in (
        ("initial", (initial, terms.initial)),
        ("final", (final, terms.final)),
    ):
        unknown = set(table[0]) - set(table[1])
        if unknown:
            raise ValueError(
                f"unknown {name}-state term(s) {sorted(unknown)}: use {list(table[1])}"
            )
    eval_i, evec_i = np.linalg.eigh(_sum_terms(terms.initial, initial))
    eval_n, evec_n = np.linalg.eigh(_sum_terms(terms.final, final))
    return sticks_from_eigensystem(
        eval_i, evec_i, eval_n, evec_n, terms.dipole, terms.l2_holes, temperature
    )


def ed_1v1c_arguments(params: ParameterSet) -> dict[str, Any]:
    """Keyword arguments of ``edrixs.ed_1v1c_py`` for a parameter set.

    The same Hamiltonian as :func:`simulate_sticks`, monopole terms included.

    Examples
    --------
    >>> ed_1v1c_arguments(ParameterSet(2, "Oh", 1.0))["v_noccu"]
    6
    """
    coeff_i, coeff_n = term_coefficients(params, atomic_parameters(params.n_d))
    f0dd_i = 2.0 / 63.0 * (coeff_i["F2dd"] + coeff_i["F4dd"])
    f0dd_n = 2.0 / 63.0 * (coeff_n["F2dd"] + coeff_n["F4dd"])
    f0pd = coeff_n["G1pd"] / 15.0 + 3.0 * coeff_n["G3pd"] / 70.0
    slater_i = [f0dd_i, coeff_i["F2dd"], coeff_i["F4dd"]]
    slater_n = [
        f0dd_n,
        coeff_n["F2dd"],
        coeff_n["F4dd"],
        f0pd,
        coeff_n["F2pd"],
        coeff_n["G1pd"],
        coeff_n["G3pd"],
    ]
    return {
        "shell_name": ("d", "p"),
        "shell_level": (0.0, 0.0),
        "v_soc": (coeff_i["zeta_d"], coeff_n["zeta_d"]),
        "c_soc": coeff_n["zeta_p"],
        "v_noccu": params.n_d,
        "slater": (slater_i, slater_n),
        "v_cfmat": d_orbital_cf_matrix(params.ten_dq / 10.0, params.ds, params.dt),
    }


def simulate_sticks_edrixs(
    params: ParameterSet, *, temperature: float = 300.0, compress: bool = True
) -> StickSpectrum:
    """The same stick spectrum through ``edrixs.ed_1v1c_py`` (builds H each call).

    Slower than :func:`simulate_sticks`; kept as an independent reference and to
    time the two routes. The edge label uses the same 2p1/2 hole operator.
    """
    import contextlib
    import io

    edrixs = require_edrixs()
    terms = build_terms(params.n_d)
    coeff_i, coeff_n = term_coefficients(params, terms.atomic)
    # ed_1v1c_py is edrixs' legacy solver, used on purpose as the reference: silence
    # its deprecation warning and its progress prints.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        eval_i, eval_n, trans = edrixs.ed_1v1c_py(**ed_1v1c_arguments(params))
    # ed_1v1c_py returns the dipole operator in the eigenbases already; rebuild the
    # eigenvectors of the final state for the edge label only.
    _, evec_n = np.linalg.eigh(_sum_terms(terms.final, coeff_n))
    ops = [trans[k] for k in range(trans.shape[0])]
    l2 = np.real(np.einsum("ij,ij->j", evec_n.conj(), terms.l2_holes @ evec_n))
    index, weight = boltzmann_weights(eval_i, temperature)
    intensity = np.zeros((eval_n.size, index.size))
    for op in ops:
        intensity += np.abs(op[:, index]) ** 2
    intensity *= weight[None, :] / len(ops)
    energy = eval_n[:, None] - eval_i[None, index]
    edge = np.broadcast_to(
        np.where(l2 > 0.5, 2, 3).astype(np.int8)[:, None], energy.shape
    )
    sticks = StickSpectrum(energy.ravel(), intensity.ravel(), edge.ravel().copy())
    return compress_sticks(sticks) if compress else sticks


def compress_sticks(
    sticks: StickSpectrum, *, bin_width: float = 0.01, threshold: float = 1e-5
) -> StickSpectrum:
    """Merge sticks on a fine energy bin and drop the negligible ones.

    Sticks of the same edge whose energies fall in one ``bin_width`` bin become one
    stick at their intensity-weighted mean energy; sticks weaker than ``threshold``
    times the strongest merged stick are dropped. A ``bin_width`` of 10-20 meV is far
    below the narrowest broadening used (core-hole FWHM >= 0.1 eV), so broadened
    spectra do not change visibly.

    Parameters
    ----------
    sticks
        Raw sticks.
    bin_width
        eV.
    threshold
        Relative intensity below which a merged stick is dropped.

    Returns
    -------
    StickSpectrum
        Sorted by energy.

    Examples
    --------
    >>> s = StickSpectrum(np.array([0.0, 0.001, 5.0]), np.array([1.0, 1.0, 1e-9]),
    ...                   np.array([3, 3, 2], dtype=np.int8))
    >>> c = compress_sticks(s)
    >>> c.energy.round(4).tolist(), c.intensity.tolist()
    ([0.0005], [2.0])
    """
    if bin_width <= 0:
        raise ValueError(f"bin_width={bin_width} must be > 0 eV")
    keep = sticks.intensity > 0
    e = sticks.energy[keep]
    i = sticks.intensity[keep]
    g = sticks.edge[keep].astype(np.int64)
    if e.size == 0:
        return StickSpectrum(np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int8))
    key = np.floor(e / bin_width).astype(np.int64) * 4 + g
    uniq, inverse = np.unique(key, return_inverse=True)
    total = np.bincount(inverse, weights=i)
    mean_e = np.bincount(inverse, weights=i * e) / total
    edge = (uniq % 4).astype(np.int8)
    strong = total >= threshold * total.max()
    order = np.argsort(mean_e[strong], kind="stable")
    return StickSpectrum(
        mean_e[strong][order], total[strong][order], edge[strong][order]
    )
