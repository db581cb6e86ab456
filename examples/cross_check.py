"""
Cross-check: machine learning, component fit, white-line ratio, reference fit
=============================================================================

Four per-pixel estimates of the Fe3+ fraction, side by side, on a spectrum image
whose truth is known and on measured standards:

* **machine learning**: ``s.predict_fe_state()``, the shipped model;
* **component fit**: a HyperSpy model with the
  :class:`~hyperspy_fe_ml.components.FeL23Edge` component (the calibrated multiplet
  references with free Fe3+ and tetrahedral fractions, shift and broadening),
  fitted pixel by pixel with ``multifit``;
* **white-line ratio**: ``s.estimate_fe3_fraction_white_line()``, van Aken &
  Liebscher's (2002) modified L3/L2 ratio and universal curve;
* **reference fit (MLLS)**: ``s.fit_fe_references(...)``, a linear least-squares fit
  of reference spectra (here the library's four site spectra at their default
  broadening, as a user would take measured standards).

The spectrum image is the library phantom of ``fe-ml demo`` (an iron-oxide
particle: haematite shell, magnetite core, wüstite inclusions, a tetrahedral Fe2+
grain; plural scattering, 0.4 eV of drift, 0.5 eV resolution, Poisson noise). It is
built from the same multiplet references that the component fits, so the component
fit is the best case there; the measured standards are the fair test.

Run: ``python examples/cross_check.py`` (the standards are read from
``../shared/expdata`` beside the clone, or from ``$FE_ML_EXPDATA``, when present).
"""

import logging
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from hyperspy_fe_ml.components import FeL23Edge
from hyperspy_fe_ml.library import (
    find_standards_dir,
    read_standards_dir,
    reference_spectrum,
)
from hyperspy_fe_ml.phantom import iron_oxide_particle

# Noise-free corners of a fit make HyperSpy log that a covariance is undefined.
logging.getLogger("hyperspy").setLevel(logging.ERROR)

SHAPE = (12, 16)  # small, so the example runs in seconds
SITES = [(2, "Oh"), (3, "Oh"), (2, "Td"), (3, "Td")]


def fit_component(signal, mask=None):
    """Background removal, then an FeL23Edge fitted pixel by pixel, from two starts.

    Energy shift and valence trade off (see the FeL23Edge notes): from an Fe2+
    start a pixel can end on Fe3+ shifted down by 2 eV, or the reverse. Each pixel
    is fitted from an all-Fe2+ and an all-Fe3+ start and keeps the better fit.
    Returns the maps (arrays) of the Fe3+ fraction, Td fraction and shift.
    """
    clean = signal.remove_fe_background(show_progressbar=False)
    model = clean.create_model(auto_background=False, auto_add_edges=False)
    edge = FeL23Edge()
    model.append(edge)
    best = None
    for start in (0.0, 1.0):
        edge.fe3_fraction.value = start
        edge.shift.value = 0.0
        edge.fe3_fraction.assign_current_value_to_all()
        edge.shift.assign_current_value_to_all()
        model.multifit(mask=mask, bounded=True, show_progressbar=False)
        run = {
            "chisq": np.array(model.chisq.data, dtype=float),
            "fe3": np.array(edge.fe3_fraction.map["values"], dtype=float),
            "td": np.array(edge.td_fraction.map["values"], dtype=float),
            "shift": np.array(edge.shift.map["values"], dtype=float),
        }
        if best is None:
            best = run
        else:
            better = run["chisq"] < best["chisq"]
            best = {k: np.where(better, run[k], best[k]) for k in best}
    return best, clean


def library_references(energy):
    """The library's four site spectra at default broadening, as MLLS references."""
    refs = {f"Fe{v}+ {c}": (energy, reference_spectrum(v, c, energy)) for v, c in SITES}
    return refs, {f"Fe{v}+ {c}": float(v) for v, c in SITES}


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


# %%
# The spectrum image and its truth
# --------------------------------
s, truth = iron_oxide_particle(SHAPE, seed=3)
iron = truth.has_iron
energy = s.axes_manager.signal_axes[0].axis
print(f"{s.data.shape[0] * s.data.shape[1]} pixels, {iron.sum()} with iron")

# %%
# Four estimates of the Fe3+ fraction
# -----------------------------------
# Every method starts from the raw counts and removes the background itself.
fe3 = {}
seconds = {}

maps, seconds["machine learning"] = timed(s.predict_fe_state, show_progressbar=False)
fe3["machine learning"] = maps["fe3_fraction"].data
td_ml = maps["td_fraction"].data

# The component fit skips pixels without a white-line signal (the support).
start = time.perf_counter()
clean = s.remove_fe_background(show_progressbar=False)
white_lines = clean.isig[704.0:727.0].data.sum(axis=-1)
no_edge = white_lines < 0.25 * np.percentile(white_lines, 99)
fitted, _ = fit_component(s, mask=no_edge)
seconds["component fit"] = time.perf_counter() - start
fe3["component fit"] = np.where(no_edge, np.nan, fitted["fe3"])
td_fit = np.where(no_edge, np.nan, fitted["td"])

wl, seconds["white-line ratio"] = timed(
    s.estimate_fe3_fraction_white_line, show_progressbar=False
)
fe3["white-line ratio"] = wl["fe3_fraction"].data

refs, valences = library_references(energy)
mlls, seconds["reference fit (MLLS)"] = timed(
    s.fit_fe_references, refs, valences=valences, show_progressbar=False
)
fe3["reference fit (MLLS)"] = mlls["fe3_fraction"].data

# %%
# Errors against the truth, over the iron pixels
# ----------------------------------------------
n_pixels = s.data.shape[0] * s.data.shape[1]
print("| method | Fe3+ MAE | Fe3+ RMSE | ms per pixel |")
print("|---|---|---|---|")
for name, estimate in fe3.items():
    err = estimate[iron] - truth.fe3_fraction[iron]
    mae, rmse = np.nanmean(np.abs(err)), np.sqrt(np.nanmean(err**2))
    per_pixel = 1e3 * seconds[name] / n_pixels
    print(f"| {name} | {mae:.3f} | {rmse:.3f} | {per_pixel:.2f} |")
td_true = truth.td_fraction[iron]
print(
    f"tetrahedral fraction MAE: machine learning "
    f"{np.nanmean(np.abs(td_ml[iron] - td_true)):.3f}, component fit "
    f"{np.nanmean(np.abs(td_fit[iron] - td_true)):.3f}"
)

print("\n| phase | true Fe3+ | " + " | ".join(fe3) + " |")
print("|---|---|" + "---|" * len(fe3))
for k, phase in enumerate(truth.phase_names):
    pick = truth.phase == k
    if k == 0 or not pick.any():
        continue
    means = " | ".join(f"{np.nanmean(v[pick]):.2f}" for v in fe3.values())
    print(f"| {phase} | {np.nanmean(truth.fe3_fraction[pick]):.2f} | {means} |")

# %%
# The maps
# --------
fig, axes = plt.subplots(1, 5, figsize=(16, 3.2), constrained_layout=True)
panels = {"truth": truth.fe3_fraction, **fe3}
for ax, (title, image) in zip(axes, panels.items(), strict=True):
    im = ax.imshow(np.where(iron, image, np.nan), vmin=0, vmax=1, cmap="viridis")
    ax.set_title(title)
    ax.set_axis_off()
fig.colorbar(im, ax=axes, label="Fe3+/ΣFe", shrink=0.8)

# %%
# Measured standards
# ------------------
# Real spectra whose valence is known (``../shared/expdata``; not shipped with the
# package). STXM spectra come on non-uniform grids: resample them first. No
# method is told the valence, and none recalibrates the energy axis.
# $FE_ML_EXPDATA, else the first shared/expdata beside this folder or its parents.
# (sphinx-gallery runs an example from its folder, without __file__.)
expdata = find_standards_dir(Path(__file__).parent if "__file__" in globals() else None)
if expdata is not None:
    columns = ["standard", "Fe3+ true", "machine learning", "component fit (shift)"]
    columns += ["white-line ratio", "MLLS"]
    print("\n| " + " | ".join(columns) + " |")
    print("|---" * len(columns) + "|")
    for standard in read_standards_dir(expdata):
        spectrum = standard.to_signal()
        if not spectrum.axes_manager.signal_axes[0].is_uniform:
            grid = np.arange(695.0, 745.0, 0.05)
            spectrum = spectrum.resample_energy(grid, show_progressbar=False)
        grid = spectrum.axes_manager.signal_axes[0].axis
        ml = spectrum.predict_fe_state(show_progressbar=False)["fe3_fraction"]
        one, _ = fit_component(spectrum)
        ratio = spectrum.estimate_fe3_fraction_white_line(show_progressbar=False)
        refs, valences = library_references(grid)
        ref_fit = spectrum.fit_fe_references(
            refs, valences=valences, show_progressbar=False
        )
        print(
            f"| {standard.identifier} | {standard.valence - 2:.0f} "
            f"| {float(ml.data[0]):.2f} "
            f"| {one['fe3'].item():.2f} ({one['shift'].item():+.2f} eV) "
            f"| {float(ratio['fe3_fraction'].data[0]):.2f} "
            f"| {float(ref_fit['fe3_fraction'].data[0]):.2f} |"
        )
else:
    print("\nNo standards found; set FE_ML_EXPDATA to their folder.")

plt.show()
