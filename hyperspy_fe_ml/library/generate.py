"""Generate the multiplet stick library over a parameter grid, in parallel with Dask.

``fe-ml simulate`` calls :func:`generate_library`; the default grid
(:func:`default_parameter_sets`) is what the shipped file holds, so regenerating it
gives the same sticks. Each Dask task computes a batch of parameter sets of one
configuration; the Hamiltonian terms are built once per worker process and cached,
so the work runs under the threaded scheduler as well as on a ``dask.distributed``
cluster (whatever scheduler is active).

Grid ranges (PHYSICS.md): Slater scaling 0.65-0.90; high-spin 10Dq below the
spin crossover (about 1.85 eV for Fe2+ and 3.15 eV for Fe3+ at 80 % scaling);
tetrahedral 10Dq about 4/9 of the octahedral one and negative.
"""

from __future__ import annotations

import argparse
import platform
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hyperspy_fe_ml.library.multiplet import (
    ParameterSet,
    StickSpectrum,
    build_terms,
    compress_sticks,
    edrixs_version,
    require_edrixs,
    simulate_sticks,
    square_pyramid_cf,
)
from hyperspy_fe_ml.library.shipped import save_library

__all__ = [
    "GENERATOR_SETTINGS",
    "add_simulate_command",
    "default_parameter_sets",
    "generate_library",
    "simulate_batch",
]

#: Settings of the shipped library: temperature (K) of the Boltzmann average,
#: stick merging bin (eV) and relative intensity threshold.
GENERATOR_SETTINGS: dict[str, float] = {
    "temperature": 300.0,
    "bin_width": 0.02,
    "threshold": 1e-4,
}

_SCALES = (0.65, 0.70, 0.75, 0.80, 0.85, 0.90)
_SCALES_COARSE = (0.70, 0.80, 0.90)
# Octahedral 10Dq, eV: Fe2+ oxides/halides 0.6-1.6 (FeCl2 ~0.8, FeO ~1.0-1.2),
# Fe3+ 0.8-2.0 (Fe2O3 ~1.4-1.5); both high spin (PHYSICS.md).
_OH_TEN_DQ = {2: np.arange(0.6, 1.61, 0.1), 3: np.arange(0.8, 2.01, 0.1)}
# Tetrahedral 10Dq (negative, ~4/9 of Oh): Fe2+ -0.3..-0.8, Fe3+ -0.4..-1.0 eV.
_TD_TEN_DQ = {2: np.arange(-0.8, -0.29, 0.1), 3: np.arange(-1.0, -0.39, 0.1)}
# Distorted octahedra and square pyramids: a coarser 10Dq grid.
_TETRA_TEN_DQ = {2: (0.8, 1.0, 1.2, 1.4), 3: (1.0, 1.2, 1.4, 1.6, 1.8)}
_D4H_DS = (-0.2, -0.1, 0.1, 0.2)
_D4H_DT = (-0.05, 0.0, 0.05)
# e_pi / e_sigma of oxide ligands for the square-pyramid angular-overlap model.
_PI_SIGMA = (0.1, 0.2, 0.3)


def default_parameter_sets(valences: Sequence[int] = (2, 3)) -> list[ParameterSet]:
    """The parameter grid of the shipped library, in a fixed order.

    Parameters
    ----------
    valences
        Fe oxidation states to include (2 and/or 3; the grid has no Fe4+ sets).

    Returns
    -------
    list of ParameterSet
        Its index is the parameter-set id stored in the library.

    Examples
    --------
    >>> sets = default_parameter_sets()
    >>> len(sets), sets[0]
    (627, ParameterSet(valence=2, coordination='Oh', ten_dq=0.6, ds=0.0, dt=0.0, slater_scale=0.65))
    """  # noqa: E501
    out: list[ParameterSet] = []
    for v in valences:
        if v not in _OH_TEN_DQ:
            raise ValueError(
                f"the default grid has no Fe{v}+ sets: use valences among (2, 3) or "
                "pass your own parameter sets to generate_library"
            )
        for dq in _OH_TEN_DQ[v]:
            for s in _SCALES:
                out.append(ParameterSet(v, "Oh", round(float(dq), 3), slater_scale=s))
        for dq in _TD_TEN_DQ[v]:
            for s in _SCALES:
                out.append(ParameterSet(v, "Td", round(float(dq), 3), slater_scale=s))
        for dq in _TETRA_TEN_DQ[v]:
            for s in _SCALES_COARSE:
                for ds in _D4H_DS:
                    for dt in _D4H_DT:
                        out.append(ParameterSet(v, "D4h", dq, ds, dt, s))
        for dq in _TETRA_TEN_DQ[v]:
            for s in _SCALES_COARSE:
                for ratio in _PI_SIGMA:
                    ds, dt = square_pyramid_cf(dq, ratio)
                    out.append(
                        ParameterSet(v, "C4v", dq, round(ds, 4), round(dt, 4), s)
                    )
    return out


_TERMS_LOCK = threading.Lock()


def simulate_batch(
    parameter_sets: Sequence[ParameterSet],
    temperature: float = GENERATOR_SETTINGS["temperature"],
    bin_width: float = GENERATOR_SETTINGS["bin_width"],
    threshold: float = GENERATOR_SETTINGS["threshold"],
) -> list[StickSpectrum]:
    """Compressed sticks of a batch of parameter sets (one Dask task).

    Parameters
    ----------
    parameter_sets
        The model points.
    temperature, bin_width, threshold
        See :func:`~hyperspy_fe_ml.library.multiplet.simulate_sticks` and
        :func:`~hyperspy_fe_ml.library.multiplet.compress_sticks`.

    Returns
    -------
    list of StickSpectrum
    """
    out = []
    for params in parameter_sets:
        with _TERMS_LOCK:  # build each configuration once per process
            terms = build_terms(params.n_d)
        sticks = simulate_sticks(
            params, temperature=temperature, terms=terms, compress=False
        )
        out.append(compress_sticks(sticks, bin_width=bin_width, threshold=threshold))
    return out


def _compute(tasks: list[Any], show_progressbar: bool) -> list[Any]:
    import dask

    try:  # a dask.distributed client, if one is active
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        client = None
    if client is not None:
        futures = client.compute(tasks)
        if show_progressbar:
            from distributed import progress

            progress(futures)
        return client.gather(futures)
    if show_progressbar:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return list(dask.compute(*tasks))
    return list(dask.compute(*tasks))


def generate_library(
    path: str | Path,
    parameter_sets: Sequence[ParameterSet] | None = None,
    *,
    batch_size: int = 4,
    show_progressbar: bool = True,
    blas_threads: int | None = 1,
) -> Path:
    """Simulate every parameter set and write the library file.

    Parameters
    ----------
    path
        Output ``.npz`` file.
    parameter_sets
        Model points; the default grid (:func:`default_parameter_sets`) if omitted.
    batch_size
        Parameter sets per Dask task.
    show_progressbar
        Show a progress bar (Dask's local one, or ``distributed.progress``).
    blas_threads
        Limit of BLAS threads per process while computing (1 suits the threaded
        scheduler, which already runs one diagonalisation per core); None leaves
        BLAS alone.

    Returns
    -------
    pathlib.Path
        The written file.

    Examples
    --------
    >>> sets = default_parameter_sets()[:2]
    >>> generate_library("lib.npz", sets, show_progressbar=False)  # doctest: +SKIP
    """
    import dask

    require_edrixs()
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    sets = list(default_parameter_sets() if parameter_sets is None else parameter_sets)
    if not sets:
        raise ValueError("no parameter sets to simulate")
    # One configuration per batch, so a task needs one set of Hamiltonian terms.
    batches: list[list[int]] = []
    for n_d in sorted({p.n_d for p in sets}):
        idx = [i for i, p in enumerate(sets) if p.n_d == n_d]
        batches += [idx[k : k + batch_size] for k in range(0, len(idx), batch_size)]
    tasks = [
        dask.delayed(simulate_batch, pure=True)([sets[i] for i in b]) for b in batches
    ]
    start = time.perf_counter()
    if blas_threads is None:
        results = _compute(tasks, show_progressbar)
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=blas_threads, user_api="blas"):
            results = _compute(tasks, show_progressbar)
    elapsed = time.perf_counter() - start
    sticks: list[StickSpectrum | None] = [None] * len(sets)
    for b, res in zip(batches, results, strict=True):
        for i, s in zip(b, res, strict=True):
            sticks[i] = s
    from hyperspy_fe_ml import __version__

    generator = {
        **GENERATOR_SETTINGS,
        "package_version": __version__,
        "numpy_version": np.__version__,
        "python": platform.python_version(),
        "wall_time_s": round(elapsed, 1),
        "atomic_parameters": {
            str(n): build_terms(n).atomic for n in sorted({p.n_d for p in sets})
        },
        "slater_scaled": ["F2dd", "F4dd", "F2pd", "G1pd", "G3pd"],
        "monopole": "F0dd = 2/63 (F2+F4), F0pd = G1/15 + 3 G3/70",
    }
    return save_library(path, sets, sticks, generator, edrixs_version())  # type: ignore[arg-type]


def _simulate_command(args: argparse.Namespace) -> int:
    sets = default_parameter_sets(tuple(args.valences))
    if args.limit is not None:
        sets = sets[: args.limit]
    try:
        require_edrixs()
    except ImportError as err:
        print(f"fe-ml simulate: {err}", file=sys.stderr)
        return 2
    print(f"fe-ml simulate: {len(sets)} parameter sets with edrixs {edrixs_version()}")
    start = time.perf_counter()
    path = generate_library(
        args.output,
        sets,
        batch_size=args.batch_size,
        show_progressbar=not args.quiet,
    )
    elapsed = time.perf_counter() - start
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in {elapsed:.0f} s "
        f"({elapsed / len(sets):.2f} s per parameter set, wall clock)"
    )
    return 0


def add_simulate_command(subparsers: Any) -> None:
    """Add the ``simulate`` sub-command to an ``argparse`` sub-parser collection.

    Parameters
    ----------
    subparsers
        What ``ArgumentParser.add_subparsers()`` returned.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="fe-ml")
    >>> add_simulate_command(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["simulate", "-o", "lib.npz"]).output
    'lib.npz'
    """
    p = subparsers.add_parser(
        "simulate",
        help="regenerate the multiplet reference library (needs edrixs)",
        description=(
            "Compute crystal-field multiplet stick spectra of Fe2+ and Fe3+ over the "
            "default parameter grid with edrixs, in parallel with the active Dask "
            "scheduler, and write the library file. With the default grid the "
            "result equals the library shipped in hyperspy_fe_ml/data."
        ),
    )
    p.add_argument(
        "-o",
        "--output",
        default="fe_l23_multiplet_v1.npz",
        help="output .npz file (default: %(default)s)",
    )
    p.add_argument(
        "--valences",
        type=int,
        nargs="+",
        default=[2, 3],
        choices=[2, 3],
        help="Fe valences to simulate (default: 2 3)",
    )
    p.add_argument("--batch-size", type=int, default=4, help="sets per Dask task")
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="only the first N sets, a quick test (default: all)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_simulate_command)
