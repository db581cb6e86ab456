"""Timing helper shared by the benchmark scripts (run them from the repository root)."""

import time
from collections.abc import Callable


def best_of(func: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls, seconds, after one warm-up call.

    The warm-up compiles numba kernels and fills caches, so the figure is the
    steady-state cost.
    """
    func()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)
