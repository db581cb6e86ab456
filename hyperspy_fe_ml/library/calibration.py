"""Absolute energy calibration and default broadening of the multiplet library.

The multiplet model gives relative energies only. A stick at model energy ``e`` lies
at the absolute energy

    E = ENERGY_OFFSET_EV[valence] + ENERGY_SCALE * e

The values below were fitted to experimental spectra by
``docs/scripts/calibrate_library.py`` (results and figure: ``docs/library.md``):
the STXM XAS of FeCl2 and FeCl3 (one instrument, so their difference is the
Fe2+ -> Fe3+ chemical shift) fix the two offsets; the EELS Data Base Fe2O3 spectrum
(its own absolute scale, see the docs) and all three spectra fix the broadening
defaults. Regenerate them with that script when the library or its grid changes.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "DEFAULT_BROADENING",
    "ENERGY_OFFSET_EV",
    "ENERGY_SCALE",
    "absolute_energy",
]

#: Absolute energy (eV) of the model zero, per Fe valence. Fitted to FeCl2 (Fe2+)
#: and FeCl3 (Fe3+) STXM by docs/scripts/calibrate_library.py.
ENERGY_OFFSET_EV: dict[int, float] = {2: 710.595, 3: 711.863}
#: Global stretch of the model energy scale (1 = none), fitted to the L3-L2 spacing
#: of the three experimental spectra by docs/scripts/calibrate_library.py.
ENERGY_SCALE: float = 0.9864

#: Default broadening (FWHM, eV) and continuum of :func:`reference_spectrum`.
#: ``fwhm_l3``/``fwhm_l2``: Lorentzian core-hole widths; ``resolution``: Gaussian
#: instrument resolution; ``step``: height of the L3 continuum step in the units of
#: the spectra (white-line area = number of 3d holes). Fitted to the three
#: experimental spectra by docs/scripts/calibrate_library.py.
DEFAULT_BROADENING: dict[str, float] = {
    "fwhm_l3": 0.94,
    "fwhm_l2": 2.53,
    "resolution": 0.12,
    "step": 0.078,
}


def absolute_energy(relative: ArrayLike, valence: int) -> np.ndarray | float:
    """Absolute energy (eV) of model energies ``relative`` for an Fe valence.

    Examples
    --------
    >>> bool(absolute_energy(0.0, 2) == ENERGY_OFFSET_EV[2])
    True
    """
    if valence not in ENERGY_OFFSET_EV:
        raise ValueError(
            f"no energy calibration for Fe valence {valence!r}: the calibrated "
            f"valences are {sorted(ENERGY_OFFSET_EV)}"
        )
    return ENERGY_OFFSET_EV[valence] + ENERGY_SCALE * np.asarray(relative)
