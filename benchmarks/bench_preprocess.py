"""Speed of the preprocessing chain against HyperSpy's own methods, same process.

Run: ``python benchmarks/bench_preprocess.py [--shape ROWS COLUMNS] [--repeat N]``

Both sides process the same synthetic raw-count spectrum image (500 channels):

- background: ``s.remove_fe_background()`` (numba log-log fit over Dask chunks)
  against ``s.remove_background(background_type="PowerLaw", fast=True)``;
- full chain: ``s.preprocess_fe_l23()`` (background, resampling onto 700–729.9 eV,
  white-line normalisation) against HyperSpy's ``remove_background`` +
  ``interpolate_on_axis`` + division by ``integrate1D``.

Figures are ratios (HyperSpy time / ours), best of ``--repeat`` runs, after one
warm-up run that compiles the numba kernels.
"""

import argparse
import os

import numpy as np
from timing import best_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=2, default=(64, 64))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import hyperspy.api as hs

    from hyperspy_fe_ml.synthetic import synthetic_spectrum_image

    hs.preferences.General.show_progressbar = False
    s, _ = synthetic_spectrum_image(tuple(args.shape))
    s.change_dtype("float64")
    window = s.check_fe_l23().pre_edge
    from hyperspy.axes import UniformDataAxis

    grid_axis = UniformDataAxis(
        offset=700.0, scale=0.1, size=300, units="eV", navigate=False
    )

    def ours_background():
        s.remove_fe_background(pre_edge=window)

    def hyperspy_background():
        s.remove_background(signal_range=window, background_type="PowerLaw", fast=True)

    def ours_chain():
        s.preprocess_fe_l23(pre_edge=window)

    def hyperspy_chain():
        b = s.remove_background(
            signal_range=window, background_type="PowerLaw", fast=True
        )
        r = b.interpolate_on_axis(grid_axis, -1, inplace=False)
        area = r.isig[704.0:727.0].integrate1D(-1)
        (r / area).data  # noqa: B018

    n = int(np.prod(args.shape))
    rows, columns = args.shape
    print(f"{rows}x{columns} spectra x 500 channels, {os.cpu_count()} cores")
    for name, ours, theirs in (
        ("power-law background", ours_background, hyperspy_background),
        ("full preprocessing", ours_chain, hyperspy_chain),
    ):
        t_ours = best_of(ours, args.repeat)
        t_theirs = best_of(theirs, args.repeat)
        print(
            f"{name:22s} ours {t_ours * 1e3:8.1f} ms "
            f"({t_ours / n * 1e6:6.2f} us/spectrum)  HyperSpy "
            f"{t_theirs * 1e3:8.1f} ms  ratio {t_theirs / t_ours:6.1f}x"
        )


if __name__ == "__main__":
    main()
