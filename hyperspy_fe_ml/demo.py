"""The ``fe-ml demo``: Fe-state maps of a synthetic particle with known truth.

A raw-count spectrum image of an iron-oxide particle built from the calibrated
multiplet library (:mod:`hyperspy_fe_ml.phantom`: a magnetite core in a haematite
shell, wüstite inclusions, a grain of tetrahedral Fe2+, an iron-free support,
plural scattering, a drifting energy offset, power-law background and Poisson
noise) is predicted lazily over Dask chunks with the shipped model. The maps are
written as PNG and scored against the truth: errors per quantity over the iron
pixels, the mean valence of each phase, the coverage of the 90 % intervals, and
how many iron-free pixels were rightly flagged.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hyperspy_fe_ml.kernels.model_inputs import FLAGS_UNREADABLE
from hyperspy_fe_ml.model import Z90
from hyperspy_fe_ml.phantom import iron_oxide_particle


@dataclass(frozen=True)
class DemoResult:
    """Figures of merit of :func:`run_demo` (over the iron pixels unless noted).

    Attributes
    ----------
    valence_rmse
        RMS error of the valence.
    fe3_mae, td_mae, coordination_mae
        Mean absolute errors of the Fe3+ fraction, the tetrahedral fraction and the
        coordination number.
    coverage
        Share of iron pixels whose true valence lies in the 90 % interval.
    phases
        Phase name → (true valence, mean predicted valence).
    support_flagged
        Share of iron-free pixels flagged unreadable (should be 1).
    iron_flagged
        Share of iron pixels flagged unreadable (should be 0).
    seconds
        Wall time of the prediction (the computation of the lazy maps).
    setup_seconds
        Wall time of the checks and the graph before it, which includes compiling
        the numba kernels on the first run after an install.
    n_spectra
        Spectra predicted.
    files
        Files written.
    """

    valence_rmse: float
    fe3_mae: float
    td_mae: float
    coordination_mae: float
    coverage: float
    phases: dict[str, tuple[float, float]]
    support_flagged: float
    iron_flagged: float
    seconds: float
    n_spectra: int
    files: tuple[Path, ...] = field(default=())
    setup_seconds: float = 0.0


def run_demo(
    output: Path | str = "fe-ml-demo",
    *,
    shape: tuple[int, int] = (64, 80),
    seed: int = 0,
    show_progressbar: bool | None = None,
) -> DemoResult:
    """Run the demo and write its figures into ``output``.

    Parameters
    ----------
    output
        Folder for the figures (created if missing).
    shape
        Navigation shape of the synthetic spectrum image.
    seed
        Seed of the counting noise.
    show_progressbar
        Progress bars; ``None`` uses HyperSpy's preference.

    Returns
    -------
    DemoResult
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    s, truth = iron_oxide_particle(shape, seed=seed)
    lazy = s.as_lazy()
    lazy.data = lazy.data.rechunk((16, 16, -1))

    start = time.perf_counter()
    # Simulated from the model's own library: no simulation-to-experiment term.
    maps = lazy.predict_fe_state(measured=False, show_progressbar=show_progressbar)
    setup = time.perf_counter() - start  # checks, graph; numba compiles on a first run
    start = time.perf_counter()
    maps = maps.compute(show_progressbar=show_progressbar)
    seconds = time.perf_counter() - start

    iron = truth.has_iron
    flags = np.asarray(maps["flags"].data)
    unreadable = (flags & FLAGS_UNREADABLE) != 0
    scored = iron & ~unreadable

    def error(name: str) -> np.ndarray:
        return np.asarray(maps[name].data)[scored] - getattr(truth, name)[scored]

    valence = np.asarray(maps["valence"].data)
    std = np.asarray(maps["valence_std"].data)
    inside = np.abs(valence - truth.valence)[scored] <= Z90 * std[scored]
    phases = {}
    for index, name in enumerate(truth.phase_names):
        pick = scored & (truth.phase == index)
        if index and np.any(pick):
            phases[name] = (
                float(truth.valence[pick][0]),
                float(valence[pick].mean()),
            )

    files = [output / "maps.png", output / "truth.png"]
    fig = maps.plot()
    fig.savefig(files[0], dpi=110)
    plt.close(fig)
    fig = _truth_figure(maps, truth)
    fig.savefig(files[1], dpi=110)
    plt.close(fig)

    return DemoResult(
        valence_rmse=float(np.sqrt(np.mean(error("valence") ** 2))),
        fe3_mae=float(np.mean(np.abs(error("fe3_fraction")))),
        td_mae=float(np.mean(np.abs(error("td_fraction")))),
        coordination_mae=float(np.mean(np.abs(error("coordination_number")))),
        coverage=float(np.mean(inside)),
        phases=phases,
        support_flagged=float(np.mean(unreadable[~iron])) if np.any(~iron) else 1.0,
        iron_flagged=float(np.mean(unreadable[iron])),
        seconds=seconds,
        n_spectra=int(iron.size),
        files=tuple(files),
        setup_seconds=setup,
    )


def _truth_figure(maps, truth):
    """Truth, prediction and error of the valence and the Td fraction."""
    import matplotlib.pyplot as plt

    from hyperspy_fe_ml.plot import _extent

    extent = _extent(maps["valence"])
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    rows = (
        ("valence", "Fe valence", (2.0, 3.0), "RdBu_r", 0.5),
        ("td_fraction", "Td Fe fraction", (0.0, 1.0), "cividis", 1.0),
    )
    for (name, label, limits, cmap, span), row in zip(rows, axes, strict=True):
        true = getattr(truth, name)
        predicted = np.asarray(maps[name].data, dtype=np.float64)
        panels = (
            (true, f"true {label}", limits, cmap),
            (predicted, f"predicted {label}", limits, cmap),
            (predicted - true, f"error of {label}", (-span, span), "PuOr"),
        )
        for ax, (image, title, (lo, hi), colours) in zip(row, panels, strict=True):
            im = ax.imshow(
                np.ma.masked_invalid(image),
                extent=extent,
                vmin=lo,
                vmax=hi,
                cmap=colours,
                interpolation="nearest",
            )
            ax.set_title(title)
            ax.set_xlabel("x (nm)")
            ax.set_ylabel("y (nm)")
            fig.colorbar(im, ax=ax, shrink=0.85)
    return fig
