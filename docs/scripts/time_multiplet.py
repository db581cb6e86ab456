"""Time one multiplet stick spectrum both ways: edrixs ed_1v1c_py vs prebuilt terms.

Run from the project root: ``python docs/scripts/time_multiplet.py``. BLAS is limited
to one thread so the numbers are per core (the library generator runs one
diagonalisation per Dask worker thread).
"""

import contextlib
import io
import time
import warnings

import edrixs
import numpy as np
from threadpoolctl import threadpool_limits

from hyperspy_fe_ml.library.multiplet import (
    ParameterSet,
    build_terms,
    ed_1v1c_arguments,
    simulate_sticks,
    simulate_sticks_edrixs,
)

warnings.filterwarnings("ignore", category=DeprecationWarning)
REPEAT = 3


def best_of(func) -> float:
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def edrixs_only(p: ParameterSet) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        edrixs.ed_1v1c_py(**ed_1v1c_arguments(p))


def main() -> None:
    print(
        "| ion | basis (initial / final) | build terms once | per spectrum, "
        "prebuilt terms | per spectrum, edrixs ed_1v1c_py (with edge labels) |"
    )
    print("|---|---|---|---|---|")
    with threadpool_limits(limits=1, user_api="blas"):
        for valence in (2, 3, 4):
            p = ParameterSet(valence, "Oh", 1.2)
            build_terms.cache_clear()
            start = time.perf_counter()
            terms = build_terms(p.n_d)
            t_build = time.perf_counter() - start
            t_fast = best_of(lambda p=p, t=terms: simulate_sticks(p, terms=t))
            t_edrixs = best_of(lambda p=p: simulate_sticks_edrixs(p))
            t_solver = best_of(lambda p=p: edrixs_only(p))
            n_i, n_f = terms.sizes
            print(
                f"| Fe{valence}+ 3d{p.n_d} | {n_i} / {n_f} | {t_build:.1f} s | "
                f"{t_fast:.2f} s | {t_solver:.2f} s ({t_edrixs:.2f} s) |"
            )
    print(f"(best of {REPEAT}, numpy {np.__version__})")


if __name__ == "__main__":
    main()
