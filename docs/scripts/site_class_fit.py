"""Which site class of the library explains each measured standard best?

Run from the project root (the measured spectra stay outside the project; they are
read from ../shared/expdata and never copied)::

    python docs/scripts/site_class_fit.py [--expdata ../shared/expdata] [--library LIB]

``--library`` takes a library file (default: the shipped one), e.g. the one with
distorted tetrahedra written by ``docs/scripts/distorted_tetrahedra_library.py``.

For every standard of one valence (Fe2+ or Fe3+) it fits, separately for each site
class of that valence (Oh, Td, D4h, C4v, D2d), a non-negative combination of every
library set of the class (:func:`~hyperspy_fe_ml.library.reference.broaden_library`
at four broadenings, each fitted separately) plus a constant, over a scan of the
standard's energy offset (the absolute scales of the files differ by up to 4 eV).
It prints the best relative residual ``|standard - fit| / |standard|`` per class,
as in the table "Distorted tetrahedra" of docs/library.md. About 2 minutes on one
core.
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import numpy as np
from scipy.optimize import nnls

from hyperspy_fe_ml.library.multiplet import COORDINATION_NUMBERS
from hyperspy_fe_ml.library.reference import broaden_library
from hyperspy_fe_ml.library.shipped import library_for
from hyperspy_fe_ml.library.standards import read_standards_dir

#: Library axis and fitted window, eV.
ENERGY = np.arange(700.0, 730.0, 0.1)
WINDOW = (703.0, 727.0)
#: (L3 Lorentzian, L2 Lorentzian, Gaussian) FWHM, eV.
BROADENINGS = ((0.3, 1.5, 0.3), (0.4, 1.8, 0.4), (0.6, 2.5, 0.6), (0.9, 3.0, 0.8))
#: Offsets of the standard's axis scanned, eV.
OFFSETS = np.arange(-4.5, 2.51, 0.1)


def class_residual(
    energy: np.ndarray, intensity: np.ndarray, rows: np.ndarray, library: Any
) -> float:
    """Best relative residual of one standard over broadenings and offsets."""
    best = np.inf
    n = rows.size
    for l3, l2, gauss in BROADENINGS:
        spectra = broaden_library(
            rows,
            ENERGY,
            fwhm_l3=np.full(n, l3),
            fwhm_l2=np.full(n, l2),
            resolution=np.full(n, gauss),
            step=np.full(n, 0.078),
            library=library,
        )
        for offset in OFFSETS:
            target = np.interp(ENERGY + offset, energy, intensity, np.nan, np.nan)
            use = np.isfinite(target) & (ENERGY > WINDOW[0]) & (ENERGY < WINDOW[1])
            b = target[use] / np.max(target[use])
            constant = np.ones((use.sum(), 1))
            design = np.hstack([spectra[:, use].T, constant, -constant])
            _, residual = nnls(design, b, maxiter=4000)
            best = min(best, residual / np.linalg.norm(b))
    return float(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expdata", default="../shared/expdata")
    parser.add_argument("--library", default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    library = library_for(args.library)
    table = library.table
    classes = [c for c in COORDINATION_NUMBERS if np.any(table["coordination"] == c)]
    print("| standard | valence | Td fraction | " + " | ".join(classes) + " |")
    print("|---" * (3 + len(classes)) + "|")
    for record in read_standards_dir(args.expdata):
        if record.valence not in (2.0, 3.0) or record.td_fraction is None:
            continue
        residuals = []
        for site in classes:
            rows = np.flatnonzero(
                (table["valence"] == record.valence) & (table["coordination"] == site)
            )
            residuals.append(
                class_residual(record.energy, record.intensity, rows, library)
            )
        best = int(np.argmin(residuals))
        cells = [
            f"**{r:.3f}**" if k == best else f"{r:.3f}" for k, r in enumerate(residuals)
        ]
        print(
            f"| {record.identifier} | {record.valence:.0f} | {record.td_fraction:g} | "
            + " | ".join(cells)
            + " |",
            flush=True,
        )


if __name__ == "__main__":
    main()
