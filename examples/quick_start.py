"""
Quick start: Fe-state maps of the demo spectrum image
=====================================================

From a raw-count Fe L2,3 EELS spectrum image to per-pixel maps of the iron valence,
the Fe3+ fraction, the fraction of Fe on tetrahedral sites and the Fe–O coordination
number, each with its uncertainty — what ``fe-ml demo`` does, step by step in Python.

The spectrum image is the synthetic iron-oxide particle of ``fe-ml demo``
(:func:`~hyperspy_fe_ml.phantom.iron_oxide_particle`): a magnetite (Fe3O4) core in a
haematite (Fe2O3) shell with wüstite (FeO) inclusions, a grain of tetrahedral Fe2+
(FeAl2O4) and an iron-free support, with plural scattering, a drifting energy offset, a
power-law background and Poisson noise. Its truth is known pixel by pixel, so the maps
can be checked.

Run: ``python examples/quick_start.py``.
"""

# %%
# The spectrum image
# ------------------
# With your own data, load the file and tell HyperSpy it is an Fe L2,3 spectrum image:
# ``s = hs.load("si.dm4", signal_type="FeL23")`` (or ``s.set_signal_type("FeL23")`` on a
# loaded signal). Here we make one, smaller than the demo's 64 × 80 pixels so that the
# example runs in seconds.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from hyperspy_fe_ml.kernels.model_inputs import FLAG_NAMES
from hyperspy_fe_ml.maps import FeStateMaps
from hyperspy_fe_ml.phantom import iron_oxide_particle

SHAPE = (32, 40)  # rows, columns; fe-ml demo uses (64, 80)

s, truth = iron_oxide_particle(SHAPE, seed=0)
print(s)
print(s.axes_manager)

# %%
# A few spectra, raw counts: the power-law background dominates, the Fe L3 and L2
# white lines sit on top of it near 709 and 722 eV.
energy = s.axes_manager.signal_axes[0].axis
fig, ax = plt.subplots(figsize=(7, 3.5), constrained_layout=True)
for k, name in enumerate(truth.phase_names):
    rows, columns = np.nonzero(truth.phase == k)
    if rows.size:
        ax.plot(energy, s.data[rows[0], columns[0]], label=name, lw=1)
ax.set_xlabel("Energy loss (eV)")
ax.set_ylabel("Counts")
ax.legend(fontsize="small")

# %%
# What the package makes of the energy axis
# -----------------------------------------
# ``check_fe_l23`` checks the units (eV) and the coverage of the white lines, finds
# the L3 edge in the typical spectrum and decides whether the background is still
# there. It warns when something looks wrong (e.g. L3 far from where it should be).
print(s.check_fe_l23())

# %%
# Predict the maps
# ----------------
# One call. The spectra can be raw counts or background-removed (decided from the
# pre-edge, or say so with ``background_removed=True``); each one is preprocessed the
# way the model was trained (background, resampling, normalisation, L3 alignment) and
# predicted by the shipped model, block by block over Dask chunks. These spectra are
# simulated from the model's own library, so ``measured=False``: the uncertainty the
# model adds for measured spectra (what the simulation misses; model card) is left
# out. Leave the default (``measured=True``) for your own data.
maps = s.predict_fe_state(measured=False)
print(maps)

# %%
# Draw them: valence on a diverging scale around 2.5, fractions from 0 to 1, the
# quality flags, and a colour composite of Fe2+ (blue) and Fe3+ (red) dimmed where
# uncertain. Pixels that cannot be read are grey.
fig = maps.plot()

# %%
# Each map is a HyperSpy signal
# -----------------------------
# ... over the navigation space, with the spectrum image's calibrated axes: plot it,
# slice it, save it, use it as a mask, as any other signal.
valence = maps["valence"]
print(valence)
print(valence.axes_manager)
valence.plot(cmap="RdBu_r", vmin=2.0, vmax=3.0, centre_colormap=False)

# %%
# The quality flags
# -----------------
# A pixel that cannot be read (NaN, all zero, negative or saturated counts, no edge
# above the noise) gets NaN in every map and the reason in ``flags``; the rest of the
# map goes on. Out-of-distribution spectra (unlike anything the model was trained on)
# keep their values but are flagged too.
flags = np.asarray(maps["flags"].data)
for bit, meaning in FLAG_NAMES.items():
    n = int(np.count_nonzero(flags & bit))
    if n:
        print(f"{n:5d} pixels: {meaning}")

# %%
# How close to the truth?
# -----------------------
# The particle is synthetic, so the error of every pixel is known.
iron = truth.has_iron & np.isfinite(valence.data)
error = valence.data[iron] - truth.valence[iron]
inside = np.abs(error) <= 1.645 * maps["valence_std"].data[iron]
print(f"valence RMSE over {iron.sum()} iron pixels: {np.sqrt(np.mean(error**2)):.3f}")
print(f"90 % intervals hold the truth in {100 * inside.mean():.0f} % of them")
for k, name in enumerate(truth.phase_names):
    pick = iron & (truth.phase == k)
    if pick.any():
        print(
            f"{name}: true {truth.valence[pick][0]:.2f}, "
            f"predicted {valence.data[pick].mean():.2f}"
        )

# %%
# Provenance, saving and loading
# ------------------------------
# What produced the maps (model, preprocessing, package version) is in each map's
# metadata, and travels with it into files.
print(valence.metadata.FeL23.provenance)

folder = Path(tempfile.mkdtemp())
path = maps.save(folder / "maps.hspy")
again = FeStateMaps.load(path)
print(sorted(again))

plt.show()
