"""
Load a measured spectrum and calibrate its energy axis
======================================================

Real data come from a file, and their energy axis is rarely exact: the zero of an EELS
spectrometer drifts, and XAS and EELS scales can disagree by one or two eV. This example
loads a measured Fe L2,3 spectrum, checks where its L3 edge is, calibrates the axis on
a known L3 position, and compares what the methods make of it before and after.

The spectrum is haematite (α-Fe2O3, all Fe3+ on octahedral sites) from the EELS Data
Base (entry "iron-oxide-2", contributor Qiang Xu; Ewels et al., Microsc. Microanal. 22
(2016) 717, ODbL), read from ``../shared/expdata`` beside the clone (or
``$FE_ML_EXPDATA``) when it is there. It is not shipped with the package: without it,
the example writes a haematite spectrum built from the package's library, with its
axis 1.5 eV off, into an EMSA file and reads that instead.

Run: ``python examples/load_and_calibrate.py``.
"""

# %%
# Load the file
# -------------
# ``hs.load`` reads any format RosettaSciIO knows (``.dm3``/``.dm4``, ``.msa``,
# ``.hspy``, ``.zspy``, ``.emd``, ...); ``signal_type="FeL23"`` gives it this
# package's methods. Here the file is an EMSA spectrum with raw counts (the power-law
# background is still there).
import tempfile
from pathlib import Path

import hyperspy.api as hs
import matplotlib.pyplot as plt
import numpy as np

from hyperspy_fe_ml.library import find_standards_dir
from hyperspy_fe_ml.phantom import iron_oxide_particle


def builtin_haematite_file(folder: Path) -> Path:
    """A haematite spectrum from the library, axis 1.5 eV off, written as EMSA."""
    particle, truth = iron_oxide_particle((24, 30), seed=1)
    rows, columns = np.nonzero(truth.fe3_fraction == 1.0)  # the Fe2O3 shell
    spectrum = particle.inav[columns[0], rows[0]]
    spectrum.axes_manager.signal_axes[0].offset += 1.5
    spectrum.metadata.General.title = "Fe2O3 (library), axis 1.5 eV off"
    path = folder / "Fe2O3_library.msa"
    spectrum.save(path, overwrite=True)
    return path


# $FE_ML_EXPDATA, else the first shared/expdata beside this folder or its parents.
# (sphinx-gallery runs an example from its folder, without __file__.)
expdata = find_standards_dir(Path(__file__).parent if "__file__" in globals() else None)
measured = Path(expdata or ".") / "eelsdb_Fe2O3_iron-oxide-2.msa"
if expdata is not None and measured.is_file():
    path = measured
else:
    print(f"No {measured.name} in {expdata}; using the built-in spectrum.")
    path = builtin_haematite_file(Path(tempfile.mkdtemp()))

s = hs.load(path, signal_type="FeL23")
print(s)
print(s.axes_manager)

# %%
# Where is the L3 edge?
# ---------------------
# ``check_fe_l23`` reports the covered range, whether the background is removed, the
# pre-edge window it would fit, and the L3 maximum of the typical spectrum. Haematite's
# L3 maximum is at about 709.5 eV (van Aken, Liebscher & Styrsa 1998); the report's
# ``l3_offset`` is the distance from the nominal 708.65 eV, half-way between Fe2+ and
# Fe3+. An offset of a few eV means the axis, not the iron, is off.
report = s.check_fe_l23(warn=False)
print(report)
print(f"L3 maximum at {report.l3_position:.2f} eV")

# %%
# Calibrate on a known L3 position
# --------------------------------
# ``calibrate_fe_l3`` shifts the axis offset (the data are untouched) so that the L3
# maximum lands where a standard of known valence puts it. On a spectrum image,
# calibrate on a region whose valence you know, e.g.
# ``shift = 709.5 - s.inav[0:5, 0:5].check_fe_l23().l3_position``, and apply the shift
# to the whole image's ``axes_manager.signal_axes[0].offset``. With dual EELS, align
# the zero-loss peak instead (``s.align_zero_loss_peak(...)``, from exspy). The shift
# applied is recorded in ``metadata.FeL23.calibration``.
calibrated = s.calibrate_fe_l3(l3_energy=709.5)
print(calibrated.metadata.FeL23.calibration)
print(f"L3 maximum now at {calibrated.check_fe_l23(warn=False).l3_position:.2f} eV")

fig, ax = plt.subplots(figsize=(7, 3.5), constrained_layout=True)
for signal, label in ((s, "as loaded"), (calibrated, "calibrated")):
    ax.plot(signal.axes_manager.signal_axes[0].axis, signal.data, label=label, lw=1)
ax.axvline(709.5, color="grey", ls=":", label="Fe3+ L3, 709.5 eV")
ax.set_xlim(700, 730)
ax.set_xlabel("Energy loss (eV)")
ax.set_ylabel("Counts")
ax.legend()

# %%
# What the calibration changes
# ----------------------------
# The model aligns every spectrum on its own L3 centroid before predicting, so its
# answer barely moves with the axis. The white-line ratio (van Aken & Liebscher 2002)
# integrates fixed windows in eV (708.5–710.5 and 719.7–721.7 eV) and reads the
# ratio on a universal curve: its answer moves with the axis, and an axis off by
# more than an eV can push it to either end of the curve (clipped to 0 or 1, marked in
# its ``flags`` map, with a warning), right or wrong. Use it on calibrated axes only.
# The truth here is Fe3+/ΣFe = 1.
for signal, label in ((s, "as loaded"), (calibrated, "calibrated")):
    ml = signal.predict_fe_state(show_progressbar=False)
    wl = signal.estimate_fe3_fraction_white_line(show_progressbar=False)
    fe3, std = float(ml["fe3_fraction"].data[0]), float(ml["fe3_fraction_std"].data[0])
    print(
        f"{label:>10}: machine learning Fe3+ {fe3:.2f} ± {std:.2f}, "
        f"white-line ratio {float(wl['white_line_ratio'].data[0]):.2f} "
        f"→ Fe3+ {float(wl['fe3_fraction'].data[0]):.2f}"
    )

# %%
# Non-uniform axes and other cases
# --------------------------------
# Spectra on a non-uniform energy grid (e.g. STXM) are resampled onto a uniform one
# with ``s.resample_energy(grid)``; spectra whose background is already removed and
# cropped to the white lines (700–729.9 eV, as published standards often are) are read
# as such; ``predict_fe_state(background_removed=True)`` says so explicitly. An axis
# that is not in eV, or that does not cover the white lines, gets a clear error before
# any work is done:
broken = s.deepcopy()
broken.axes_manager.signal_axes[0].units = "keV"
try:
    broken.predict_fe_state()
except ValueError as error:
    print(f"ValueError: {error}")

plt.show()
