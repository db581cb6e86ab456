"""Fe valence and Fe–O coordination labels from a crystal structure (pymatgen).

Used by the FEFF / Materials Project loaders (:mod:`hyperspy_fe_ml.library.feff`)
to label computed spectra from the structure they were computed for:

- **valence**: oxidation states by the bond-valence method
  (:class:`pymatgen.analysis.bond_valence.BVAnalyzer`, O'Keeffe & Brese bond-valence
  parameters with a maximum a-posteriori assignment); the label is the mean over the
  Fe sites considered.
- **coordination_number**: number of O neighbours of each Fe site found by
  :class:`pymatgen.analysis.local_env.CrystalNN` (Pan et al., Inorg. Chem. 60 (2021)
  1590), on the oxidation-state-decorated structure with ``cation_anion=True`` when
  the bond-valence step succeeded; mean over the Fe sites considered.
- **td_fraction**: fraction of the Fe sites considered that are tetrahedral: four
  neighbours with no neighbour–Fe–neighbour angle above 150° (a square-planar FeO4
  has two angles of 180°, a tetrahedron none above ~125°). Five-, six- and other
  coordinated sites count as not tetrahedral.

pymatgen is an optional dependency (``pip install hyperspy-fe-ml[mp]``); importing
this module does not need it, calling :func:`labels_from_structure` does.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "PYMATGEN_MISSING_MESSAGE",
    "StructureLabels",
    "labels_from_structure",
    "pymatgen_available",
]

#: Largest neighbour–Fe–neighbour angle (degrees) of a four-coordinated site that
#: still counts as tetrahedral (ideal 109.47°, square planar 180°).
TETRAHEDRAL_MAX_ANGLE_DEG = 150.0

PYMATGEN_MISSING_MESSAGE = (
    "pymatgen is not installed, so no labels were derived from the structure "
    "(valence, coordination_number and td_fraction are None). Install it with "
    "`pip install hyperspy-fe-ml[mp]` (or `pip install pymatgen`)."
)


def pymatgen_available() -> bool:
    """Whether pymatgen can be imported (without importing it).

    Examples
    --------
    >>> from hyperspy_fe_ml.library.structure_labels import pymatgen_available
    >>> isinstance(pymatgen_available(), bool)
    True
    """
    try:
        return importlib.util.find_spec("pymatgen") is not None
    except (ImportError, ValueError):  # e.g. sys.modules["pymatgen"] = None
        return False


@dataclass(frozen=True)
class StructureLabels:
    """Labels of the Fe sites of a structure, with the per-site evidence.

    Attributes
    ----------
    valence
        Mean bond-valence oxidation state of the sites, None if it failed.
    coordination_number
        Mean number of O neighbours, None if a site has no O neighbour.
    td_fraction
        Fraction of the sites that are tetrahedral.
    site_indices
        Indices of the Fe sites the labels average over.
    site_valences, site_o_neighbours, site_geometries
        Per-site values, in the order of ``site_indices``.
    formula
        Reduced formula of the structure.
    notes
        Why a label is missing, if one is.
    """

    valence: float | None
    coordination_number: float | None
    td_fraction: float | None
    site_indices: tuple[int, ...]
    site_valences: tuple[float, ...] | None
    site_o_neighbours: tuple[int, ...]
    site_geometries: tuple[str, ...]
    formula: str
    notes: tuple[str, ...] = field(default=())

    def as_metadata(self) -> dict[str, Any]:
        """A JSON-friendly dict of the evidence, for a record's ``metadata``."""
        return {
            "formula": self.formula,
            "fe_site_indices": list(self.site_indices),
            "fe_site_valences": None
            if self.site_valences is None
            else list(self.site_valences),
            "fe_site_o_neighbours": list(self.site_o_neighbours),
            "fe_site_geometries": list(self.site_geometries),
            "label_method": "pymatgen BVAnalyzer (valence), CrystalNN (Fe-O CN)",
            "label_notes": list(self.notes),
        }


def _geometry(centre: np.ndarray, neighbours: Sequence[np.ndarray]) -> str:
    """Name the coordination polyhedron from neighbour positions (Cartesian, Å)."""
    n = len(neighbours)
    if n == 4:
        vectors = np.array([np.asarray(p) - centre for p in neighbours])
        vectors /= np.linalg.norm(vectors, axis=1)[:, None]
        cosines = np.clip(vectors @ vectors.T, -1.0, 1.0)
        angles = np.degrees(np.arccos(cosines[np.triu_indices(4, k=1)]))
        if angles.max() <= TETRAHEDRAL_MAX_ANGLE_DEG:
            return "tetrahedral"
        return "square planar"
    if n == 6:
        return "octahedral"
    return f"{n}-coordinated"


def _symmetry_groups(structure: Any, indices: Sequence[int]) -> list[list[int]]:
    """Group site indices into symmetry-equivalent sets (one set each on failure)."""
    try:
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # spglib's error-handling deprecation
            equivalent = SpacegroupAnalyzer(structure).get_symmetry_dataset()
        mapping = equivalent.equivalent_atoms
    except Exception:  # spglib can fail on odd cells: fall back to every site
        return [[i] for i in indices]
    groups: dict[int, list[int]] = {}
    for i in indices:
        groups.setdefault(int(mapping[i]), []).append(i)
    return list(groups.values())


class StructureAnalysis:
    """Bond valences and Fe neighbour shells of one structure, computed once.

    Use :func:`labels_from_structure` for a single call; this class lets a loader
    label several absorbing sites of the same structure without repeating the
    bond-valence analysis.

    Parameters
    ----------
    structure
        A pymatgen ``Structure`` or its ``as_dict()`` dict.
    element
        The absorbing element, ``"Fe"``.
    ligand
        The ligand counted in the coordination number, ``"O"``.
    """

    def __init__(self, structure: Any, element: str = "Fe", ligand: str = "O") -> None:
        if not pymatgen_available():
            raise ImportError(PYMATGEN_MISSING_MESSAGE)
        from pymatgen.core import Structure

        if isinstance(structure, Mapping):
            try:
                structure = Structure.from_dict(dict(structure))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"not a valid pymatgen Structure dict ({exc!r})."
                ) from None
        if not isinstance(structure, Structure):
            raise TypeError(
                "structure must be a pymatgen Structure or its as_dict() dict, got "
                f"{type(structure).__name__}."
            )
        self.structure = structure
        self.element = element
        self.ligand = ligand
        self.notes: list[str] = []
        self.formula = structure.composition.reduced_formula
        self._neighbours: dict[int, tuple[int, str]] = {}
        self.valences = self._bond_valences()
        self._nn = self._make_crystalnn()

    def _bond_valences(self) -> list[float] | None:
        from pymatgen.analysis.bond_valence import BVAnalyzer

        if not self.structure.is_ordered:
            self.notes.append("disordered structure: no bond-valence oxidation states")
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                valences = BVAnalyzer().get_valences(self.structure)
        except ValueError as exc:
            self.notes.append(f"bond-valence analysis failed: {exc}")
            return None
        return [float(v) for v in valences]

    def _make_crystalnn(self) -> Any:
        from pymatgen.analysis.local_env import CrystalNN

        if self.valences is None:
            self._decorated = self.structure
            return CrystalNN()
        decorated = self.structure.copy()
        decorated.add_oxidation_state_by_site(self.valences)
        self._decorated = decorated
        return CrystalNN(cation_anion=True)

    def element_sites(self) -> list[int]:
        """Indices of the sites occupied by the absorbing element."""
        return [
            i
            for i, site in enumerate(self.structure)
            if site.is_ordered and site.specie.symbol == self.element
        ]

    def neighbours(self, index: int) -> tuple[int, str]:
        """Number of ligand neighbours and geometry name of one site (cached)."""
        if index not in self._neighbours:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                info = self._nn.get_nn_info(self._decorated, index)
            centre = self._decorated[index].coords
            n_ligand = sum(1 for nn in info if nn["site"].specie.symbol == self.ligand)
            geometry = _geometry(centre, [nn["site"].coords for nn in info])
            self._neighbours[index] = (n_ligand, geometry)
        return self._neighbours[index]

    def labels(self, site_index: int | None = None) -> StructureLabels:
        """Labels of one absorbing site, or averaged over all the element's sites.

        Parameters
        ----------
        site_index
            Index of the absorbing site in the structure, or None to average over
            every site of ``element`` (each site counts once, so the average is
            weighted by multiplicity; symmetry-equivalent sites are analysed once).

        Returns
        -------
        StructureLabels
        """
        notes = list(self.notes)
        fe_sites = self.element_sites()
        if site_index is not None:
            n_sites = len(self.structure)
            if not -n_sites <= site_index < n_sites:
                raise ValueError(
                    f"absorbing site index {site_index} is outside the structure "
                    f"({self.formula}, {n_sites} sites)."
                )
            site_index %= n_sites
            if site_index not in fe_sites:
                raise ValueError(
                    f"absorbing site {site_index} of {self.formula} is "
                    f"{self.structure[site_index].species}, not {self.element}; check "
                    "the absorbing-atom index."
                )
            groups = [[site_index]]
        else:
            if not fe_sites:
                raise ValueError(
                    f"the structure {self.formula} has no ordered {self.element} site."
                )
            groups = _symmetry_groups(self.structure, fe_sites)
        weights = np.array([len(g) for g in groups], dtype=float)
        representatives = [g[0] for g in groups]
        shells = [self.neighbours(i) for i in representatives]
        n_ligand = np.array([s[0] for s in shells], dtype=float)
        geometries = [s[1] for s in shells]
        tetrahedral = np.array([g == "tetrahedral" for g in geometries], dtype=float)
        site_indices = [i for g in groups for i in g]
        expand = np.repeat(np.arange(len(groups)), weights.astype(int))

        valence = None
        site_valences = None
        if self.valences is not None:
            per_group = np.array([self.valences[i] for i in representatives])
            valence = float(np.average(per_group, weights=weights))
            site_valences = tuple(float(v) for v in per_group[expand])
        if np.all(n_ligand > 0):
            coordination = float(np.average(n_ligand, weights=weights))
        else:
            coordination = None
            notes.append(
                f"{self.element} site(s) without {self.ligand} neighbours: "
                f"{self.element}-{self.ligand} coordination number not defined"
            )
        return StructureLabels(
            valence=valence,
            coordination_number=coordination,
            td_fraction=float(np.average(tetrahedral, weights=weights)),
            site_indices=tuple(site_indices),
            site_valences=site_valences,
            site_o_neighbours=tuple(int(n) for n in n_ligand[expand]),
            site_geometries=tuple(geometries[j] for j in expand),
            formula=self.formula,
            notes=tuple(notes),
        )


def labels_from_structure(
    structure: Any,
    site_index: int | None = None,
    *,
    element: str = "Fe",
    ligand: str = "O",
) -> StructureLabels:
    """Fe valence, Fe–O coordination number and Td fraction of a structure.

    Parameters
    ----------
    structure
        A pymatgen ``Structure`` or its ``as_dict()`` dict.
    site_index
        The absorbing site (site-resolved spectrum), or None to average over every
        Fe site (site-averaged spectrum).
    element, ligand
        Absorbing element and the ligand counted in the coordination number.

    Returns
    -------
    StructureLabels
        The labels and the per-site evidence; a label that could not be derived is
        None and ``notes`` says why.

    Raises
    ------
    ImportError
        If pymatgen is not installed.
    ValueError
        If ``site_index`` is not an ``element`` site, or there is none.

    Examples
    --------
    >>> import pytest
    >>> _ = pytest.importorskip("pymatgen")  # the example needs the optional extra
    >>> from pymatgen.core import Lattice, Structure
    >>> feo = Structure.from_spacegroup(
    ...     "Fm-3m", Lattice.cubic(4.33), ["Fe", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    ... )
    >>> lab = labels_from_structure(feo)
    >>> lab.valence, lab.coordination_number, lab.td_fraction
    (2.0, 6.0, 0.0)
    """
    return StructureAnalysis(structure, element=element, ligand=ligand).labels(
        site_index
    )
