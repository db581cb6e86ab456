"""Fe states the multiplet library does not hold: low-spin Fe2+ and Fe3+, and Fe4+.

The shipped library holds high-spin Fe2+ (3d6) and Fe3+ (3d5). Past the spin
crossover (10Dq ≈ 1.85 eV for Fe2+ and ≈ 3.15 eV for Fe3+ at 80 % Slater scaling,
PHYSICS.md) the ground state is low-spin and the multiplets change; Fe4+ (3d4) is
another configuration. Their spectra are computed here with the same edrixs
Hamiltonian (:mod:`hyperspy_fe_ml.library.multiplet`, needs the ``simulate``
extra) so that what the valence model cannot read can be recognised
(:mod:`hyperspy_fe_ml.state_detector`). Fe4+ has no energy calibration; its zero
is placed one Fe2+→Fe3+ chemical shift above Fe3+'s (the valence model reads the
shape of a spectrum aligned on its own L3 line, so the position only keeps the
edge in view).
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "UNLISTED_TRAINING_SETS",
    "draw_unlisted_spectra",
    "unlisted_library",
    "unlisted_zero",
]

#: (valence, 10Dq eV, Slater scaling) of the octahedral sets a detector learns;
#: the 10Dq grid and scalings differ from those the model card measures with
#: (:data:`~hyperspy_fe_ml.training.ood_rates.UNSEEN_PARAMETER_SETS`: 80 %).
UNLISTED_TRAINING_SETS: tuple[tuple[int, float, float], ...] = tuple(
    (valence, ten_dq, scale)
    for valence, grid in (
        (2, (2.0, 2.4, 2.8, 3.2, 3.6)),
        (3, (3.3, 3.6, 4.0, 4.4, 4.8)),
        (4, (1.0, 1.6, 2.4, 3.2, 3.6)),
    )
    for ten_dq in grid
    for scale in (0.7, 0.9)
)


def unlisted_zero(valence: int) -> float:
    """Absolute energy (eV) of the multiplet model's zero for a valence.

    Examples
    --------
    >>> unlisted_zero(4) - unlisted_zero(3) == unlisted_zero(3) - unlisted_zero(2)
    True
    """
    from hyperspy_fe_ml.library.calibration import ENERGY_OFFSET_EV

    if valence in ENERGY_OFFSET_EV:
        return float(ENERGY_OFFSET_EV[valence])
    if valence == 4:
        return float(2 * ENERGY_OFFSET_EV[3] - ENERGY_OFFSET_EV[2])
    raise ValueError(f"no energy for Fe valence {valence!r}; use 2, 3 or 4")


@lru_cache(maxsize=4)
def unlisted_library(sets: tuple[tuple[int, float, float], ...]) -> Any:
    """A :class:`~hyperspy_fe_ml.library.shipped.MultipletLibrary` of octahedral
    ``(valence, 10Dq, Slater scaling)`` sets, computed with edrixs (cached)."""
    from hyperspy_fe_ml.library.multiplet import (
        ParameterSet,
        edrixs_version,
        require_edrixs,
        simulate_sticks,
    )
    from hyperspy_fe_ml.library.shipped import read_library, save_library

    require_edrixs()
    params = [ParameterSet(v, "Oh", t, slater_scale=s) for v, t, s in sets]
    sticks = [simulate_sticks(p) for p in params]
    with tempfile.TemporaryDirectory() as tmp:
        path = save_library(
            Path(tmp) / "unlisted.npz",
            params,
            sticks,
            {"purpose": "states outside the shipped library"},
            edrixs_version(),
        )
        return read_library(path)


def draw_unlisted_spectra(
    energy: Any,
    n: int,
    rng: np.random.Generator,
    sets: tuple[tuple[int, float, float], ...] = UNLISTED_TRAINING_SETS,
) -> np.ndarray:
    """``n`` calibrated spectra of random ``sets``, widths drawn as for training.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, channels)``, per Fe atom (white-line area = 3d holes).
    """
    from hyperspy_fe_ml.library.reference import DRAW_RANGES, broaden_library

    library = unlisted_library(tuple(sets))
    rows = rng.integers(0, len(library), n)
    widths = {
        name: rng.uniform(*DRAW_RANGES[name], n)
        for name in ("fwhm_l3", "fwhm_l2", "resolution", "step")
    }
    valence = library.table["valence"][rows]
    return broaden_library(
        rows,
        np.asarray(energy, dtype=np.float64),
        **widths,
        library=library,
        zero=np.array([unlisted_zero(int(v)) for v in valence]),
    )
