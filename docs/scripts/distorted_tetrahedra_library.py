"""Write the shipped library extended with distorted tetrahedra (D2d).

Run from the project root (edrixs, the ``[simulate]`` extra)::

    python docs/scripts/distorted_tetrahedra_library.py -o lib_d2d.npz

Appends to the 627 shipped sets (ids unchanged) 252 D2d sets: the D4h crystal-field
form with a negative 10Dq, 10Dq -0.3/-0.5/-0.7 eV (Fe2+) and -0.4/-0.6/-0.8/-1.0 eV
(Fe3+), the D4h grid's Ds (+-0.1, +-0.2 eV) and Dt (-0.05, 0, 0.05 eV), Slater
scaling 0.7/0.8/0.9. About 13 minutes on 2 cores. The result trains like any
library written by ``fe-ml refine``: ``DatasetSettings(library="lib_d2d.npz")``,
and ``docs/scripts/site_class_fit.py --library lib_d2d.npz`` fits the standards
with it (docs/library.md, "Distorted tetrahedra").
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor

from hyperspy_fe_ml.library.generate import simulate_batch
from hyperspy_fe_ml.library.multiplet import ParameterSet
from hyperspy_fe_ml.library.shipped import extend_library, load_library

TEN_DQ = {2: (-0.3, -0.5, -0.7), 3: (-0.4, -0.6, -0.8, -1.0)}
DS = (-0.2, -0.1, 0.1, 0.2)
DT = (-0.05, 0.0, 0.05)
SLATER = (0.7, 0.8, 0.9)


def d2d_parameter_sets() -> list[ParameterSet]:
    """The 252 distorted-tetrahedron sets, in a fixed order."""
    return [
        ParameterSet(valence, "D2d", dq, ds, dt, scale)
        for valence in (2, 3)
        for dq in TEN_DQ[valence]
        for scale in SLATER
        for ds in DS
        for dt in DT
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="lib_d2d.npz")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sets = d2d_parameter_sets()
    chunks = [sets[k :: args.workers] for k in range(args.workers)]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(simulate_batch, chunks))
    sticks = [results[i % args.workers][i // args.workers] for i in range(len(sets))]
    base = load_library()
    extend_library(base, sets, sticks, args.output)
    print(f"wrote {args.output}: {len(base)} + {len(sets)} sets")


if __name__ == "__main__":
    main()
