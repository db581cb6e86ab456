"""Cost of broadening library spectra, with and without the L3 width slope.

Run: ``python benchmarks/bench_broaden.py [--n N] [--repeat R]``

Times :func:`hyperspy_fe_ml.library.reference.broaden_library` (FFT path, the one
training uses) on ``N`` random library sets, the model grid, widths drawn from
``DRAW_RANGES``, with the L3 width slope 0 (one L3 width), drawn from its training
range, and at the top of that range. Run it with one thread
(``NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1``) for per-core figures. Best of
``--repeat`` runs after a warm-up (numba compilation).
"""

import argparse

import numpy as np
from timing import best_of


def main() -> None:
    from hyperspy_fe_ml.library.reference import DRAW_RANGES, broaden_library
    from hyperspy_fe_ml.library.shipped import load_library
    from hyperspy_fe_ml.model import load_default_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.n
    energy = load_default_model().energy
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(load_library()), n)
    widths = {
        name: rng.uniform(*DRAW_RANGES[name], n)
        for name in ("fwhm_l3", "fwhm_l2", "resolution", "step")
    }
    low, high = DRAW_RANGES["l3_width_slope"]
    cases = {
        "slope 0": None,
        f"slope U({low:g}, {high:g})": rng.uniform(low, high, n),
        f"slope {high:g}": np.full(n, high),
    }
    print(f"{n} library spectra on the model grid ({energy.size} channels)")
    for name, slope in cases.items():
        t = best_of(
            lambda slope=slope: broaden_library(
                rows, energy, **widths, l3_width_slope=slope
            ),
            args.repeat,
        )
        print(f"  {name:18s} {t:6.2f} s ({t / n * 1e3:5.2f} ms/spectrum)")


if __name__ == "__main__":
    main()
