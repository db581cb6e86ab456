"""Match measured spectra to the multiplet library: the "verify" step.

Every library parameter set is broadened over a grid of Lorentzian and Gaussian
widths and read the way the model reads a spectrum (normalised, L3 centroid
aligned: the energy shift is taken out), giving a bank of candidate shapes. A
measured spectrum, read the same way, is compared with every candidate over the
white lines: the best candidate of each class (valence × site symmetry), their
RMS residuals, and a non-negative least-squares mixture of the class winners,
whose Fe-weighted labels are the library's own estimate of the valence and the
tetrahedral fraction. Given a standard's nominal labels, the same mixture with
those labels imposed says which label the physics contradicts and by how much
(:attr:`LibraryMatch.label_cost`). Where the best candidates sit at an edge of
the library's parameter grid, :func:`propose_parameter_sets` asks for sets beyond
it; where they sit inside, for sets between the grid points around them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hyperspy_fe_ml.library.multiplet import TETRAHEDRAL_SITES
from hyperspy_fe_ml.library.shipped import MultipletLibrary

__all__ = [
    "LibraryBank",
    "LibraryMatch",
    "library_bank",
    "match_spectrum",
    "propose_parameter_sets",
]

#: Lorentzian L3 FWHM and Gaussian FWHM (eV) of the candidate bank.
BANK_FWHM_L3: tuple[float, ...] = (0.4, 0.8, 1.2)
BANK_RESOLUTION: tuple[float, ...] = (0.2, 0.7, 1.2)
#: Lorentzian L2 FWHM of the bank (the calibrated mean is 2.5 eV).
BANK_FWHM_L2 = 2.0
#: Energy window compared, eV on the aligned axis (L3 centroid at 709 eV).
MATCH_WINDOW_EV: tuple[float, float] = (703.0, 727.0)


@dataclass(frozen=True)
class LibraryBank:
    """Candidate shapes of every library set at every bank width.

    ``shapes`` are normalised and aligned like model inputs (for the best set
    of each class); ``absolute`` are the same spectra per Fe atom on the
    library's calibrated energy scale (for mixtures, whose components keep
    their relative energies).
    """

    energy: np.ndarray
    shapes: np.ndarray
    absolute: np.ndarray
    set_id: np.ndarray
    fwhm_l3: np.ndarray
    resolution: np.ndarray
    group: np.ndarray
    valence: np.ndarray
    tetrahedral: np.ndarray

    @property
    def groups(self) -> tuple[str, ...]:
        """The classes, e.g. ``'2Oh'``, in sorted order."""
        return tuple(sorted(set(self.group.tolist())))


def library_bank(
    energy: np.ndarray,
    library: MultipletLibrary | None = None,
    fwhm_l3: Sequence[float] = BANK_FWHM_L3,
    resolution: Sequence[float] = BANK_RESOLUTION,
) -> LibraryBank:
    """Broaden and align every library set at every width of the grid.

    Parameters
    ----------
    energy
        The grid (the model's: 700–729.9 eV at 0.1 eV).
    library
        Defaults to the shipped library.
    fwhm_l3, resolution
        Lorentzian L3 and Gaussian widths, eV (the L2 width is
        :data:`BANK_FWHM_L2`).

    Returns
    -------
    LibraryBank

    Examples
    --------
    >>> import numpy as np
    >>> bank = library_bank(np.arange(700.0, 730.0, 0.1), fwhm_l3=(0.8,),
    ...                     resolution=(0.5,))
    >>> bank.shapes.shape[0] == len(bank.set_id), "2Oh" in bank.groups
    (True, True)
    """
    from hyperspy_fe_ml.library.calibration import DEFAULT_BROADENING
    from hyperspy_fe_ml.library.reference import broaden_library
    from hyperspy_fe_ml.library.shipped import load_library
    from hyperspy_fe_ml.model import align_on_l3

    lib = load_library() if library is None else library
    energy = np.asarray(energy, dtype=np.float64)
    rows = np.arange(len(lib))
    shapes, absolute, meta = [], [], []
    for w3, res in itertools.product(fwhm_l3, resolution):
        n = rows.size
        y = broaden_library(
            rows,
            energy,
            fwhm_l3=np.full(n, w3),
            fwhm_l2=np.full(n, BANK_FWHM_L2),
            resolution=np.full(n, res),
            step=np.full(n, DEFAULT_BROADENING["step"]),
            library=lib,
        )
        _, aligned = align_on_l3(energy, y)
        shapes.append(aligned)
        absolute.append(y)
        meta.append(np.stack([rows, np.full(n, w3), np.full(n, res)], axis=1))
    m = np.concatenate(meta)
    set_id = m[:, 0].astype(np.int64)
    table = lib.table
    valence = table["valence"][set_id].astype(np.float64)
    coordination = table["coordination"][set_id].astype(str)
    return LibraryBank(
        energy=energy,
        shapes=np.concatenate(shapes),
        absolute=np.concatenate(absolute),
        set_id=set_id,
        fwhm_l3=m[:, 1],
        resolution=m[:, 2],
        group=np.char.add(valence.astype(int).astype(str), coordination),
        valence=valence,
        tetrahedral=np.isin(coordination, TETRAHEDRAL_SITES).astype(np.float64),
    )


@dataclass(frozen=True)
class LibraryMatch:
    """How well the library explains one spectrum.

    Attributes
    ----------
    best_set, best_group, residual
        The single best candidate, its class and its RMS residual (fraction of
        the spectrum's maximum).
    group_residual
        Best RMS residual of each class.
    group_set
        Best set of each class.
    fwhm_l3, resolution
        Widths of the best candidate, eV.
    mixture
        Share of the Fe atoms of each class in the best non-negative mixture of
        all library sets (at the best candidate's widths, on the library's
        calibrated scale with one common shift).
    mixture_residual
        RMS residual of that mixture.
    valence, td_fraction
        Fe-weighted labels of the mixture.
    label_cost
        For each nominal label passed to :func:`match_spectrum` (``"valence"``,
        ``"td_fraction"``, and ``"both"`` when both are), how much larger the RMS
        residual of the best mixture gets (fraction of the maximum) when its
        Fe-weighted label is held at the nominal value. Near zero: the library
        explains the spectrum as well with the nominal label as with its own
        reading, so the shape does not decide that label in this physics. Large:
        the physics contradicts the label.
    """

    best_set: int
    best_group: str
    residual: float
    group_residual: dict[str, float]
    group_set: dict[str, int]
    fwhm_l3: float
    resolution: float
    mixture: dict[str, float] = field(default_factory=dict)
    mixture_residual: float = float("nan")
    valence: float = float("nan")
    td_fraction: float = float("nan")
    label_cost: dict[str, float] = field(default_factory=dict)


def match_spectrum(
    aligned: np.ndarray,
    bank: LibraryBank,
    *,
    valence: float | None = None,
    td_fraction: float | None = None,
) -> LibraryMatch:
    """Best library candidates, per class and as a mixture, for one spectrum.

    Parameters
    ----------
    aligned
        The spectrum as the model reads it (on ``bank.energy``;
        :func:`~hyperspy_fe_ml.predict.model_input_spectra`).
    bank
        From :func:`library_bank`.
    valence, td_fraction
        Nominal labels of a standard, or None. Each one given is imposed on the
        mixture in turn (and together) to measure
        :attr:`LibraryMatch.label_cost`.

    Returns
    -------
    LibraryMatch

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_fe_ml.library.reference import broaden_library
    >>> from hyperspy_fe_ml.model import align_on_l3
    >>> e = np.arange(700.0, 730.0, 0.1)
    >>> bank = library_bank(e, fwhm_l3=(0.8,), resolution=(0.7,))
    >>> y = broaden_library([30], e, fwhm_l3=0.8, fwhm_l2=2.0, resolution=0.7,
    ...                     step=0.078)
    >>> m = match_spectrum(align_on_l3(e, y)[1][0], bank)
    >>> m.best_set, m.best_group, m.residual < 1e-6
    (30, '2Oh', True)
    """
    energy = bank.energy
    inside = (energy >= MATCH_WINDOW_EV[0]) & (energy <= MATCH_WINDOW_EV[1])
    x = np.asarray(aligned, dtype=np.float64)[inside]
    peak = float(np.max(x))
    shapes = bank.shapes[:, inside]
    scale = (shapes @ x) / np.maximum(np.einsum("ij,ij->i", shapes, shapes), 1e-300)
    rms = np.sqrt(np.mean((x[None, :] - scale[:, None] * shapes) ** 2, axis=1)) / peak
    best = int(np.nanargmin(rms))
    group_residual, group_set = {}, {}
    for g in bank.groups:
        k = np.flatnonzero(bank.group == g)
        b = int(k[np.nanargmin(rms[k])])
        group_residual[g] = float(rms[b])
        group_set[g] = int(bank.set_id[b])
    aligned = np.asarray(aligned, np.float64)
    shares, mix_rms = _mixture(aligned, bank, best, inside)
    mix_rms /= peak
    label_cost = {}
    for name, rows in _label_constraints(bank, valence, td_fraction).items():
        _, rms_held = _mixture(aligned, bank, best, inside, rows)
        label_cost[name] = max(rms_held / peak - mix_rms, 0.0)
    total = shares.sum()
    w = shares / total if total > 0 else shares
    by_group = {g: float(w[bank.group == g].sum()) for g in bank.groups}
    return LibraryMatch(
        best_set=int(bank.set_id[best]),
        best_group=str(bank.group[best]),
        residual=float(rms[best]),
        group_residual=group_residual,
        group_set=group_set,
        fwhm_l3=float(bank.fwhm_l3[best]),
        resolution=float(bank.resolution[best]),
        mixture=by_group,
        mixture_residual=mix_rms,
        valence=float(w @ bank.valence) if total > 0 else float("nan"),
        td_fraction=float(w @ bank.tetrahedral) if total > 0 else float("nan"),
        label_cost=label_cost,
    )


#: A standard the best set misses by more than this (RMS, fraction of the
#: maximum) is not a crystal-field question — a background, a cut or a
#: digitisation fault — and gets no new sets.
UNEXPLAINED_RESIDUAL = 0.08
#: Common shifts of the library scale tried for a mixture, eV: the aligned
#: spectrum's L3 centroid (709 eV) may lie anywhere between the library's Fe2+
#: and Fe3+ centroids, and beyond by the scale's uncertainty.
MIXTURE_SHIFTS_EV = np.arange(-3.0, 3.01, 0.1)


#: Weight of a label held by :func:`_mixture`, against spectra of unit-order
#: per-Fe intensity: the Fe-weighted label misses its value by ~1e-3 at most.
_LABEL_WEIGHT = 100.0


def _label_constraints(
    bank: LibraryBank, valence: float | None, td_fraction: float | None
) -> dict[str, np.ndarray]:
    """Rows ``c`` with ``c @ shares == 0`` exactly when the Fe-weighted label of
    the shares equals the nominal one, per label and for both together."""
    rows = {}
    if valence is not None and np.isfinite(valence):
        rows["valence"] = (bank.valence - valence)[None, :]
    if td_fraction is not None and np.isfinite(td_fraction):
        rows["td_fraction"] = (bank.tetrahedral - td_fraction)[None, :]
    if len(rows) == 2:
        rows["both"] = np.vstack(list(rows.values()))
    return rows


def _mixture(
    aligned: np.ndarray,
    bank: LibraryBank,
    best: int,
    inside: np.ndarray,
    held: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Non-negative shares (per Fe atom) of every library set, at the widths of
    the best single candidate, on the calibrated scale with one common shift,
    that best give the aligned spectrum; and the RMS residual. ``held`` (rows of
    coefficients, a column per bank candidate) fixes labels: the shares are
    fitted with ``held @ shares`` kept at zero."""
    from scipy.optimize import nnls

    energy = bank.energy
    x = aligned[inside]
    same = np.flatnonzero(
        (bank.fwhm_l3 == bank.fwhm_l3[best])
        & (bank.resolution == bank.resolution[best])
    )
    if held is not None:
        extra = _LABEL_WEIGHT * held[:, same]
        target = np.concatenate([x, np.zeros(len(extra))])
    shares = np.zeros(bank.set_id.size)
    found = (np.inf, 0.0, None)
    coarse = MIXTURE_SHIFTS_EV[::2]
    for shifts in (coarse, None):
        if shifts is None:  # refine about the best coarse shift
            shifts = found[1] + np.array([-0.1, 0.1])
        for shift in shifts:
            columns = np.stack(
                [np.interp(energy - shift, energy, bank.absolute[k]) for k in same]
            )[:, inside]
            if held is None:
                w, norm = nnls(columns.T, x, maxiter=50 * len(same))
            else:
                w, _ = nnls(
                    np.vstack([columns.T, extra]), target, maxiter=50 * len(same)
                )
                norm = float(np.linalg.norm(columns.T @ w - x))
            if norm < found[0]:
                found = (norm, float(shift), w)
    shares[same] = found[2]
    return shares, float(found[0] / np.sqrt(x.size))


#: Grid steps used to place new sets between and beyond library sets.
_STEPS: dict[str, float] = {"ten_dq": 0.1, "slater_scale": 0.05}
#: Physical limits of new sets: |10Dq| below the high-spin crossovers of
#: PHYSICS.md for Oh, Slater scaling within the usual covalent reduction.
_LIMITS: dict[str, tuple[float, float]] = {
    "ten_dq_oh": (0.1, 2.2),
    "ten_dq_td": (-1.2, -0.05),
    "slater_scale": (0.55, 0.95),
}


def propose_parameter_sets(
    matches: Sequence[LibraryMatch],
    library: MultipletLibrary,
    budget: int,
    *,
    classes: Sequence[str] | None = None,
) -> list[Any]:
    """New parameter sets around the best matches, within a budget.

    For each match and each class asked for (default: the match's best class
    and the best classes of both cubic sites of the same valence), the best
    set's cubic 10Dq and Slater scaling are stepped by half a grid step, and by
    one and two whole steps where the set is at the edge of what the library
    holds for that class — sets between and beyond the grid; those beyond come
    first. Distortions (Ds, Dt) are kept. The standards take turns, worst
    explained first; standards the library misses by more than
    :data:`UNEXPLAINED_RESIDUAL` get none. Sets the library already holds, or
    outside the physical limits, are skipped.

    Parameters
    ----------
    matches
        From :func:`match_spectrum`, one per standard.
    library
        The library the matches were made against.
    budget
        Most sets to propose.
    classes
        Restrict to these classes (e.g. ``["2Oh", "2Td"]``).

    Returns
    -------
    list of :class:`~hyperspy_fe_ml.library.multiplet.ParameterSet`
    """
    from hyperspy_fe_ml.library.multiplet import ParameterSet

    table = library.table
    have = {
        (
            int(table["valence"][i]),
            str(table["coordination"][i]),
            round(float(table["ten_dq"][i]), 3),
            round(float(table["ds"][i]), 3),
            round(float(table["dt"][i]), 3),
            round(float(table["slater_scale"][i]), 3),
        )
        for i in range(len(library))
    }
    candidates = []
    usable = [m for m in matches if m.residual <= UNEXPLAINED_RESIDUAL]
    for match in sorted(usable, key=lambda m: -m.residual):
        per_match = []
        for group in list(classes) if classes else _classes_to_refine(match):
            if group in match.group_set:
                per_match += _around(table, match.group_set[group])
        candidates.append(per_match)
    # Round robin over the standards, worst explained first, so that a budget
    # smaller than the candidates spreads over all of them.
    proposed: list[Any] = []
    seen: set[tuple] = set()
    for rank in range(max((len(c) for c in candidates), default=0)):
        for per_match in candidates:
            if len(proposed) >= budget:
                return proposed
            if rank >= len(per_match):
                continue
            key = per_match[rank]
            if key in have or key in seen:
                continue
            seen.add(key)
            proposed.append(ParameterSet(*key))
    return proposed


def _around(table: dict[str, np.ndarray], row: int) -> list[tuple]:
    """(valence, site, 10Dq, Ds, Dt, Slater) keys about one library set, beyond
    the class's grid edges first, within the physical limits."""
    valence = int(table["valence"][row])
    coordination = str(table["coordination"][row])
    same = (table["valence"] == valence) & (table["coordination"] == coordination)
    dq0, sl0 = float(table["ten_dq"][row]), float(table["slater_scale"][row])
    ds, dt = round(float(table["ds"][row]), 3), round(float(table["dt"][row]), 3)
    dq_range = (float(table["ten_dq"][same].min()), float(table["ten_dq"][same].max()))
    sl_range = (
        float(table["slater_scale"][same].min()),
        float(table["slater_scale"][same].max()),
    )
    limits = _LIMITS["ten_dq_td" if dq0 < 0 else "ten_dq_oh"]
    out = []
    for ddq, dsl in _neighbour_steps(dq0, sl0, dq_range, sl_range):
        dq, sl = round(dq0 + ddq, 3), round(sl0 + dsl, 3)
        if limits[0] <= dq <= limits[1] and (
            _LIMITS["slater_scale"][0] <= sl <= _LIMITS["slater_scale"][1]
        ):
            new_ds, new_dt = ds, dt
            if coordination == "C4v":
                # Square pyramid: Ds and Dt scale with 10Dq at a fixed e_pi/e_sigma
                # (multiplet.square_pyramid_cf).
                new_ds, new_dt = round(ds * dq / dq0, 4), round(dt * dq / dq0, 4)
            out.append((valence, coordination, dq, new_ds, new_dt, sl))
    return out


def _classes_to_refine(match: LibraryMatch) -> list[str]:
    """The best class and the best class of the other cubic site, same valence."""
    valence = match.best_group[0]
    out = [match.best_group]
    for site in ("Oh", "Td"):
        group = valence + site
        if group not in out and group in match.group_set:
            out.append(group)
    return out


def _neighbour_steps(
    dq: float,
    sl: float,
    dq_range: tuple[float, float],
    sl_range: tuple[float, float],
) -> list[tuple[float, float]]:
    """Steps in (10Dq, Slater): half steps about the point, whole steps beyond an
    edge of the class's grid."""
    h_dq, h_sl = _STEPS["ten_dq"] / 2, _STEPS["slater_scale"] / 2
    steps = [(-h_dq, 0.0), (h_dq, 0.0), (0.0, -h_sl), (0.0, h_sl)]
    edge = 1e-6
    if dq <= dq_range[0] + edge:
        steps += [(-2 * h_dq, 0.0), (-4 * h_dq, 0.0)]
    if dq >= dq_range[1] - edge:
        steps += [(2 * h_dq, 0.0), (4 * h_dq, 0.0)]
    if sl <= sl_range[0] + edge:
        steps.append((0.0, -2 * h_sl))
    if sl >= sl_range[1] - edge:
        steps.append((0.0, 2 * h_sl))
    # Beyond an edge first: that is where the grid does not reach.
    return sorted(steps, key=lambda s: -abs(s[0]) - abs(s[1]) * 2)
