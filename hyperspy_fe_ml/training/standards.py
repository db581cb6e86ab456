"""Measured standards as training spectra, pure and as mixture components.

A measured standard carries what the simulation lacks — the broadening, the
charge-transfer satellites, the background left by a real subtraction — so the
model learns from it what the library cannot teach. Each standard is read as the
model reads any spectrum (:func:`~hyperspy_fe_ml.predict.model_input_spectra`:
background removed, resampled, normalised, aligned on its L3 centroid), then put
back on the library's calibrated energy scale, where its L3 centroid lies for its
Fe3+ fraction (between the library's Fe2+ and Fe3+ centroids), and scaled per Fe
atom like a library spectrum, so that it mixes with library spectra and with other
standards as iron on several sites of one pixel does.

:func:`standard_mixtures` draws training spectra from them: a standard alone, or
with one or two library parameter sets, or with another standard, Dirichlet
weights per Fe atom, the labels the weight-averages of the components'.
:func:`make_standard_block` augments them exactly like library mixtures
(:func:`~hyperspy_fe_ml.training.dataset.make_block`).

Only standards whose valence and tetrahedral fraction are both known train: the
model's four outputs are fitted together, and a guessed label would teach a guess.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hyperspy_fe_ml.library.multiplet import TETRAHEDRAL_SITES
from hyperspy_fe_ml.model import FeStateModel

__all__ = [
    "StandardMixSettings",
    "TrainingStandards",
    "compound_key",
    "load_training_standards",
    "make_standard_block",
    "standard_mixtures",
]

#: Coordination number of a site, for the label of a standard that states its
#: tetrahedral fraction but not its coordination number.
_CN_OH, _CN_TD = 6.0, 4.0
_FORMULA = re.compile(r"^(?:[A-Z][a-z]?\d*(?:\.\d+)?)+$")
_POLYMORPH = re.compile(r"^(?:alpha|beta|gamma|delta|epsilon|[αβγδε])-", re.I)


def compound_key(compound: str) -> str:
    """The compound a standard belongs to, for leave-one-compound-out splits.

    The first word (split at spaces, commas, semicolons, slashes and
    underscores, as file titles have them) that is an iron-bearing formula,
    without a polymorph prefix (``alpha-Fe2O3`` → ``Fe2O3``; ``hercynite
    FeAl2O4`` → ``FeAl2O4``; ``Fe2O3_Fe_L3_Qiang_Xu`` → ``Fe2O3``); else the name
    without parenthesised remarks, lower case.

    Examples
    --------
    >>> compound_key("alpha-Fe2O3"), compound_key("Fe2O3 (EELS Data Base)")
    ('Fe2O3', 'Fe2O3')
    >>> compound_key("hercynite FeAl2O4"), compound_key("Fe(II) framework (MOF)")
    ('FeAl2O4', 'fe(ii) framework')
    """
    for word in re.split(r"[\s,;/_]+", compound):
        word = _POLYMORPH.sub("", word)
        if "Fe" in word and _FORMULA.match(word):
            return word
    bare = re.sub(r"\([^)]*\)\s*$", "", compound).strip()
    return (bare or compound).lower()


@dataclass(frozen=True)
class TrainingStandards:
    """Measured standards on the model's grid, ready to mix.

    Attributes
    ----------
    energy
        The model's grid, eV.
    spectra
        Shape ``(n, channels)``: background removed, per Fe atom (white-line
        integral of a library spectrum of the same Fe3+ fraction), L3 centroid
        where the library puts it.
    targets
        Shape ``(n, len(OUTPUTS))``.
    groups
        Compound of each standard (:func:`compound_key`).
    files
        File name of each standard.
    skipped
        File name → why it does not train (labels unknown, refused by the
        input contract).
    """

    energy: np.ndarray
    spectra: np.ndarray
    targets: np.ndarray
    groups: tuple[str, ...]
    files: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.spectra.shape[0])

    def without(self, group: str) -> TrainingStandards:
        """The standards less every spectrum of one compound."""
        keep = np.array([g != group for g in self.groups], dtype=bool)
        return replace(
            self,
            spectra=self.spectra[keep],
            targets=self.targets[keep],
            groups=tuple(g for g, k in zip(self.groups, keep, strict=True) if k),
            files=tuple(f for f, k in zip(self.files, keep, strict=True) if k),
        )


def _labels(record: Any) -> np.ndarray | None:
    """Targets of a standard, or None when its valence or Td fraction is unknown."""
    if record.valence is None or record.td_fraction is None:
        return None
    valence = float(record.valence)
    td = float(record.td_fraction)
    fe3 = float(np.clip(valence - 2.0, 0.0, 1.0))
    cn = record.coordination_number
    cn = float(cn) if cn is not None else td * _CN_TD + (1.0 - td) * _CN_OH
    return np.array([valence, fe3, td, cn])


def library_atom_scale(energy: np.ndarray) -> tuple[float, float]:
    """White-line integral of a library spectrum per Fe atom, Fe2+ and Fe3+.

    The integral the model normalises by (over
    :data:`~hyperspy_fe_ml.model.NORMALISATION_SPAN_EV` about the L3 centroid) of
    the default Oh spectra; a standard normalised to 1 times this integral counts
    as one Fe atom in a mixture with library spectra.
    """
    from hyperspy_fe_ml.library.reference import reference_spectrum
    from hyperspy_fe_ml.model import NORMALISATION_SPAN_EV, align_on_l3

    out = []
    for valence in (2, 3):
        y = reference_spectrum(valence, "Oh", energy)
        centroid, _ = align_on_l3(energy, y[None, :])
        inside = (energy >= centroid[0] + NORMALISATION_SPAN_EV[0]) & (
            energy <= centroid[0] + NORMALISATION_SPAN_EV[1]
        )
        out.append(float(np.trapezoid(y[inside], energy[inside])))
    return out[0], out[1]


def load_training_standards(
    directory: str | os.PathLike,
    model: FeStateModel | None = None,
) -> TrainingStandards:
    """Read a folder of labelled standards as training spectra.

    Parameters
    ----------
    directory
        Standards as :func:`~hyperspy_fe_ml.library.standards.read_standards_dir`
        reads them (``.csv`` with ``# valence:`` and ``# td_fraction:`` headers,
        ``.msa``), raw counts or background-removed, any axis the input contract
        accepts.
    model
        Whose grid and reading to use (default: the shipped model).

    Returns
    -------
    TrainingStandards

    Raises
    ------
    ValueError
        When no standard in the folder has both labels and a readable edge.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from hyperspy_fe_ml.library import reference_spectrum
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> e = np.arange(695.0, 740.0, 0.1)
    >>> rows = "\\n".join(f"{a:.2f},{b:.5f}" for a, b in
    ...                   zip(e, reference_spectrum(3, "Oh", e)))
    >>> _ = (folder / "fe3.csv").write_text(
    ...     "# compound: Fe2O3\\n# valence: 3\\n# td_fraction: 0\\n"
    ...     "energy_eV,intensity\\n" + rows + "\\n")
    >>> std = load_training_standards(folder)
    >>> len(std), std.groups, std.targets[0].tolist()
    (1, ('Fe2O3',), [3.0, 1.0, 0.0, 6.0])
    """
    from hyperspy_fe_ml.energy_axis import FE2_L3_CENTROID_EV, FE3_L3_CENTROID_EV
    from hyperspy_fe_ml.library.standards import read_standards_dir
    from hyperspy_fe_ml.model import L3_ALIGN_EV, load_default_model
    from hyperspy_fe_ml.predict import model_input_spectra

    model = load_default_model() if model is None else model
    energy = np.asarray(model.energy, dtype=np.float64)
    per_atom = library_atom_scale(energy)
    spectra, targets, groups, files, skipped = [], [], [], [], {}
    for record in read_standards_dir(directory, on_error="warn"):
        name = Path(str(record.metadata.get("file", record.identifier))).name
        labels = _labels(record)
        if labels is None:
            skipped[name] = "valence or td_fraction not known"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                aligned, flags, _ = model_input_spectra(record.to_signal(), model)
        except ValueError as error:
            skipped[name] = f"refused: {error}"
            continue
        row = aligned[0]
        if not np.all(np.isfinite(row)):
            skipped[name] = "no L3 line found"
            continue
        fe3 = labels[1]
        centroid = FE2_L3_CENTROID_EV + fe3 * (FE3_L3_CENTROID_EV - FE2_L3_CENTROID_EV)
        placed = np.interp(energy - (centroid - L3_ALIGN_EV), energy, row)
        spectra.append(placed * (per_atom[0] + fe3 * (per_atom[1] - per_atom[0])))
        targets.append(labels)
        groups.append(compound_key(str(record.metadata.get("compound", name))))
        files.append(name)
    if not spectra:
        raise ValueError(
            f"{directory}: no standard can train — each needs '# valence:' and "
            "'# td_fraction:' headers and an Fe L2,3 edge the model can read "
            f"(skipped: {skipped})."
        )
    return TrainingStandards(
        energy=energy,
        spectra=np.asarray(spectra),
        targets=np.asarray(targets),
        groups=tuple(groups),
        files=tuple(files),
        skipped=skipped,
    )


@dataclass(frozen=True)
class StandardMixSettings:
    """How training spectra are drawn from measured standards.

    Attributes
    ----------
    pure_probability
        A standard alone (how standards are measured).
    standard_pair_probability
        Two standards mixed; the rest mixes one standard with one or two
        library parameter sets (a measured phase beside simulated ones).
    standard_weight
        Range of the standard's share of the Fe atoms in a mixture.
    """

    pure_probability: float = 0.4
    standard_pair_probability: float = 0.2
    standard_weight: tuple[float, float] = (0.2, 0.9)


def standard_mixtures(
    n: int,
    standards: TrainingStandards,
    set_ids: np.ndarray,
    rng: np.random.Generator,
    settings: StandardMixSettings = StandardMixSettings(),
    dataset: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clean spectra drawn from measured standards, alone or in mixtures.

    Parameters
    ----------
    n
        Number of spectra.
    standards
        From :func:`load_training_standards`.
    set_ids
        Library parameter sets that may join a standard (one split's).
    rng
        Random generator.
    settings
        See :class:`StandardMixSettings`.
    dataset
        :class:`~hyperspy_fe_ml.training.dataset.DatasetSettings` of the library
        components' broadening (default settings when None).

    Returns
    -------
    spectra
        Shape ``(n, channels)`` on ``standards.energy``, per Fe atom.
    targets
        Shape ``(n, len(OUTPUTS))``: Fe-weighted averages of the components'.
    main
        Index of the standard with the largest share in each spectrum.
    """
    from hyperspy_fe_ml.library.reference import broaden_library
    from hyperspy_fe_ml.library.shipped import library_for
    from hyperspy_fe_ml.training.dataset import (
        DatasetSettings,
        _balanced_choice,
        draw_range,
    )

    dataset = DatasetSettings() if dataset is None else dataset
    energy = standards.energy
    k = len(standards)
    first = rng.integers(0, k, n)
    kind = rng.random(n)
    pure = kind < settings.pure_probability
    pair = ~pure & (
        kind < settings.pure_probability + settings.standard_pair_probability
    )
    with_library = ~pure & ~pair
    share = np.where(pure, 1.0, rng.uniform(*settings.standard_weight, n))
    # Fe3+ against Fe2+ within a mixture, as for library mixtures
    # (DatasetSettings.fe3_shift): each component moves by its Fe3+ share.
    fe3_shift = draw_range(rng, dataset.fe3_shift, n)
    fe3 = standards.targets[:, 1]
    spectra = share[:, None] * _shifted(
        energy, standards.spectra[first], np.where(pure, 0.0, fe3_shift * fe3[first])
    )
    targets = share[:, None] * standards.targets[first]

    second = rng.integers(0, k, n)
    spectra[pair] += (1.0 - share[pair, None]) * _shifted(
        energy, standards.spectra[second[pair]], fe3_shift[pair] * fe3[second[pair]]
    )
    targets[pair] += (1.0 - share[pair, None]) * standards.targets[second[pair]]

    rows = np.flatnonzero(with_library)
    if rows.size:
        library = library_for(dataset.library)
        table = library.table
        sets = _balanced_choice(
            np.asarray(set_ids, np.int64), table, rng, (rows.size, 2), {}
        )
        two = rng.random(rows.size) < 0.5
        split = np.where(two, rng.uniform(0.0, 1.0, rows.size), 1.0)
        rest = 1.0 - share[rows]
        for j, part in enumerate((split, 1.0 - split)):
            use = part > 0
            if not np.any(use):
                continue
            ids = sets[use, j]
            m = int(use.sum())
            widths = {
                name: rng.uniform(*getattr(dataset, name), m)
                for name in ("fwhm_l3", "fwhm_l2", "resolution", "step")
            }
            widths["l3_width_slope"] = draw_range(rng, dataset.l3_width_slope, m)
            y = broaden_library(
                ids,
                energy,
                **widths,
                shift=np.where(table["valence"][ids] == 3, fe3_shift[rows[use]], 0.0),
                library=library,
                energy_scale=dataset.energy_scale,
            )
            weight = rest[use] * part[use]
            spectra[rows[use]] += weight[:, None] * y
            valence = table["valence"][ids].astype(float)
            td = np.isin(table["coordination"][ids], TETRAHEDRAL_SITES).astype(float)
            labels = np.stack(
                [
                    valence,
                    (valence == 3).astype(float),
                    td,
                    table["coordination_number"][ids],
                ],
                axis=1,
            )
            targets[rows[use]] += weight[:, None] * labels
    main = np.where(pure | (share >= 0.5), first, np.where(pair, second, first))
    return spectra, targets, main


def _shifted(energy: np.ndarray, spectra: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Each spectrum moved up by its ``shift`` (eV), ends held."""
    out = np.array(spectra, dtype=np.float64, copy=True)
    for k in np.flatnonzero(shift != 0.0):
        out[k] = np.interp(energy - shift[k], energy, spectra[k])
    return out


def make_standard_block(
    n: int,
    standards: TrainingStandards,
    set_ids: np.ndarray,
    seed: np.random.SeedSequence | int,
    dataset: Any = None,
    settings: StandardMixSettings = StandardMixSettings(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block of augmented, normalised, randomly cropped standard mixtures.

    The same treatment as library mixtures get in
    :func:`~hyperspy_fe_ml.training.dataset.make_block`: augmentation, white-line
    normalisation, random crops.

    Returns
    -------
    spectra, targets
        Shapes ``(n, channels)`` and ``(n, len(OUTPUTS))``.
    main
        The main standard of each spectrum.
    """
    from hyperspy_fe_ml.training.dataset import (
        DatasetSettings,
        augment_normalise_crop,
    )

    dataset = DatasetSettings() if dataset is None else dataset
    rng = np.random.default_rng(seed)
    spectra, targets, main = standard_mixtures(
        n, standards, set_ids, rng, settings, dataset
    )
    spectra = augment_normalise_crop(standards.energy, spectra, rng, dataset)
    return spectra, targets, main
