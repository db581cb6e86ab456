"""Speed of predict_fe_state against HyperSpy's own pipeline and the memory-read floor.

Run: ``python benchmarks/bench_predict.py [--shape ROWS COLUMNS] [--repeat N]``

One raw-count spectrum image in memory (default 256×256 pixels × 1024 channels,
float32: 256 MiB; Fe2+/Fe3+ mixtures on a power-law background with Poisson
noise), three ways, in one process:

- ``s.predict_fe_state()``: background, resampling, normalisation, L3 alignment and
  the model's ensemble, every map (valence, fractions, coordination, their
  uncertainties, OOD score, flags);
- HyperSpy's pipeline for the same question: ``remove_background(
  background_type="PowerLaw", fast=True)`` then a linear MLLS fit of two
  ``ScalableFixedPattern`` references with ``multifit(optimizer="lstsq")``;
- the floor: ``data.sum()`` over the same array (reading every byte once).

Figures: spectra per second, and the ratios HyperSpy time / ours (the speed-up)
and ours / floor, best of ``--repeat`` runs after a warm-up (numba compilation).
"""

import argparse
import os
import time

import numpy as np
from timing import best_of


def spectrum_image(rows: int, columns: int, channels: int, seed: int = 0):
    """Raw counts of Fe2+/Fe3+ mixtures with two pure references on the same axis."""
    import hyperspy.api as hs

    from hyperspy_fe_ml.library import reference_spectrum

    energy = np.linspace(690.0, 741.15, channels)
    fe2 = reference_spectrum(2, "Oh", energy)
    fe3 = reference_spectrum(3, "Oh", energy)
    rng = np.random.default_rng(seed)
    fraction = rng.random((rows, columns, 1)).astype(np.float32)
    background = (2e4 * (energy / 690.0) ** -3.5).astype(np.float32)
    scale = np.float32(3000.0 / fe3.max())
    data = np.empty((rows, columns, channels), dtype=np.float32)
    for r in range(rows):  # row by row: no float64 copy of the whole image
        edge = scale * (fraction[r] * fe3 + (1 - fraction[r]) * fe2)
        data[r] = rng.poisson(edge + background)
    s = hs.signals.Signal1D(data)
    axis = s.axes_manager.signal_axes[0]
    axis.offset, axis.scale, axis.units = (
        float(energy[0]),
        float(energy[1] - energy[0]),
        "eV",
    )
    s.set_signal_type("FeL23")
    return s, energy, (fe2, fe3)


def hyperspy_pipeline(s, energy, references) -> None:
    """Power-law background (fast) + two-reference linear MLLS, all HyperSpy."""
    import hyperspy.api as hs

    b = s.remove_background(
        signal_range=(690.0, 703.65),
        background_type="PowerLaw",
        fast=True,
        show_progressbar=False,
    )
    b.crop_signal(700.0, 735.0)
    keep = (energy >= 700.0) & (energy <= 735.0 + 1e-9)
    m = b.create_model(auto_background=False, auto_add_edges=False)
    for r in references:
        pattern = hs.signals.Signal1D(r[keep][: b.axes_manager[-1].size])
        pattern.axes_manager[-1].offset = b.axes_manager[-1].offset
        pattern.axes_manager[-1].scale = b.axes_manager[-1].scale
        component = hs.model.components1D.ScalableFixedPattern(pattern)
        component.xscale.free = component.shift.free = False
        m.append(component)
    m.multifit(optimizer="lstsq", show_progressbar=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=2, default=(256, 256))
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import hyperspy.api as hs

    hs.preferences.General.show_progressbar = False
    rows, columns = args.shape
    s, energy, references = spectrum_image(rows, columns, args.channels)
    n = rows * columns
    print(
        f"{rows}x{columns}x{args.channels} float32 spectrum image "
        f"({s.data.nbytes / 2**20:.0f} MiB), {os.cpu_count()} cores"
    )

    t_ours = best_of(lambda: s.predict_fe_state(), args.repeat)
    t_floor = best_of(lambda: s.data.sum(), args.repeat)
    start = time.perf_counter()
    hyperspy_pipeline(s, energy, references)  # minutes at full size: run once
    t_hs = time.perf_counter() - start

    print(f"predict_fe_state          {t_ours:8.3f} s  {n / t_ours:>12,.0f} spectra/s")
    print(f"HyperSpy background+MLLS  {t_hs:8.3f} s  {n / t_hs:>12,.0f} spectra/s")
    print(
        f"floor data.sum()          {t_floor:8.3f} s  {n / t_floor:>12,.0f} spectra/s"
    )
    print(f"speed-up over HyperSpy    x{t_hs / t_ours:.1f} (target >= 10, goal 20)")
    print(f"time over the read floor  x{t_ours / t_floor:.1f} (target <= 10)")


if __name__ == "__main__":
    main()
