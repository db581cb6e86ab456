"""
Train your own model from the library and your own standards
============================================================

The shipped model was trained on mixtures of the package's crystal-field multiplet
library, augmented with what experiments add (noise, energy offsets, broadening,
plural scattering, background artefacts). You can train your own: with other
settings, on a different energy grid, or with your own measured standards — spectra
of compounds whose iron valence and site you know, recorded on your microscope —
added to the training data, so that the model has seen what your instrument does.

This example trains a deliberately tiny model (a few hundred spectra, a small
network, two ensemble members) so that it runs in seconds; the shipped model uses
``TrainingSettings()`` (300 000 spectra, five members; ``fe-ml train``, about 8
minutes on 2 cores).

The standards are read from ``../shared/expdata`` beside the clone (or
``$FE_ML_EXPDATA``) when present; otherwise the example writes three stand-in
"standards" in the same CSV layout into a temporary folder, as you would with yours.

Run: ``python examples/train_your_own_model.py``.
"""

# %%
# Training data from the library
# ------------------------------
# :func:`~hyperspy_fe_ml.training.train.build_training_data` draws the train,
# calibration and test spectra, split by library parameter set (a set feeds one split
# only, so the test spectra come from crystal fields the model never saw). Spectra
# are on the model's grid, 700–729.9 eV at 0.1 eV, background-removed and
# normalised as :meth:`~hyperspy_fe_ml.signals.FeL23Signal.preprocess_fe_l23`
# leaves them.
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from hyperspy_fe_ml.library import (
    find_standards_dir,
    read_standards_dir,
    reference_spectrum,
)
from hyperspy_fe_ml.model import OUTPUTS, FeStateModel
from hyperspy_fe_ml.phantom import iron_oxide_particle
from hyperspy_fe_ml.training.dataset import DatasetSettings
from hyperspy_fe_ml.training.fit import FitSettings, fit_fe_state_model
from hyperspy_fe_ml.training.train import TrainingSettings, build_training_data

settings = TrainingSettings(
    n_train=800,
    n_calibration=400,
    n_test=300,
    seed=7,
    dataset=DatasetSettings(),  # mixtures of 1-3 sites, full augmentation
    fit=FitSettings(n_components=24, hidden_layers=(48,), n_members=2, max_iter=150),
)
data = build_training_data(settings)
energy = data.energy
x_train, y_train, _ = data.train
print(f"{len(x_train)} training spectra of {energy.size} channels; targets {OUTPUTS}")

# %%
# Your standards
# --------------
# One file per standard: a CSV with ``# key: value`` label lines (``valence``,
# ``td_fraction`` and/or ``coordination_number``; any other keys are kept as
# metadata) and ``energy_eV,intensity`` rows, or an EMSA ``.msa`` file (labels from
# its title, or given when reading: ``read_standard(path, td_fraction=0.0)``). See
# :mod:`hyperspy_fe_ml.library.standards`.


def write_standin_standards(folder: Path) -> Path:
    """Three library spectra, broadened and noisy, in the standards' CSV layout."""
    grid = np.arange(695.0, 745.0, 0.05)
    rng = np.random.default_rng(0)
    sites = {"FeO": (2, "Oh", 0.0), "Fe2O3": (3, "Oh", 0.0), "FeAl2O4": (2, "Td", 1.0)}
    for compound, (valence, site, td) in sites.items():
        spectrum = reference_spectrum(valence, site, grid, resolution=0.6, shift=0.3)
        spectrum = spectrum + rng.normal(0.0, 0.01 * spectrum.max(), grid.size)
        rows = "\n".join(
            f"{e:.2f},{i:.6g}" for e, i in zip(grid, spectrum, strict=True)
        )
        (folder / f"{compound}.csv").write_text(
            f"# compound: {compound}\n# valence: {valence}\n# td_fraction: {td}\n"
            f"# technique: stand-in built from the library\n"
            f"energy_eV,intensity\n{rows}\n"
        )
    return folder


# $FE_ML_EXPDATA, else the first shared/expdata beside this folder or its parents.
# (sphinx-gallery runs an example from its folder, without __file__.)
folder = find_standards_dir(Path(__file__).parent if "__file__" in globals() else None)
if folder is None:
    print("No standards found; writing stand-ins.")
    folder = write_standin_standards(Path(tempfile.mkdtemp()))
standards = [rec for rec in read_standards_dir(folder) if rec.valence is not None]
for rec in standards:
    print(f"{rec.identifier}: valence {rec.valence}, Td fraction {rec.td_fraction}")

# %%
# Standards into training spectra
# -------------------------------
# Each standard goes through the preprocessing the model will see (background,
# resampling onto the model's grid, normalisation), then is copied with small
# random energy offsets and noise, so that one spectrum counts as many and the model
# does not learn its noise by heart. A site label the file does not give is taken
# as octahedral here (true of the three development standards); give yours.
N_COPIES = 40
rng = np.random.default_rng(1)
x_standards, y_standards = [], []
for rec in standards:
    processed = rec.to_signal().preprocess_fe_l23(energy, show_progressbar=False)
    spectrum = np.asarray(processed.data, dtype=np.float64)
    td = 0.0 if rec.td_fraction is None else rec.td_fraction
    target = [rec.valence, rec.valence - 2.0, td, 6.0 - 2.0 * td]  # order of OUTPUTS
    for _ in range(N_COPIES):
        shifted = np.interp(energy + rng.uniform(-0.3, 0.3), energy, spectrum)
        noise = rng.normal(0.0, 0.02 * spectrum.max(), energy.size)
        x_standards.append(shifted + noise)
        y_standards.append(target)
x_standards, y_standards = np.asarray(x_standards), np.asarray(y_standards)

fig, ax = plt.subplots(figsize=(7, 3.5), constrained_layout=True)
for k, rec in enumerate(standards):
    ax.plot(energy, x_standards[k * N_COPIES], label=rec.identifier, lw=1)
ax.set_xlabel("Energy loss (eV)")
ax.set_ylabel("Normalised intensity")
ax.legend(fontsize="small")

# %%
# Fit the model
# -------------
# :func:`~hyperspy_fe_ml.training.fit.fit_fe_state_model` fits the projection
# (PCA), the ensemble of perceptrons, the calibration of the uncertainties
# (split-conformal, on the calibration spectra) and the out-of-distribution
# threshold. ``info`` is stored with the model as provenance. (A run this short
# stops before the optimiser converges; scikit-learn's warning says so.)
warnings.filterwarnings("ignore", category=ConvergenceWarning)
model = fit_fe_state_model(
    energy,
    np.concatenate([x_train, x_standards]),
    np.concatenate([y_train, y_standards]),
    data.calibration[0],
    data.calibration[1],
    settings.fit,
    info={"standards": [rec.identifier for rec in standards], "copies": N_COPIES},
)
print(f"explained variance of the projection: {model.info['explained_variance']:.2f}")

# %%
# Save it, load it, use it
# ------------------------
# A model is a ``.json`` document and an ``.npz`` of plain arrays, checked by hash
# when loaded — no pickle. Pass it (or its path) to ``predict_fe_state``, or to
# ``fe-ml predict --model``.
path = model.save(Path(tempfile.mkdtemp()) / "my_model.json")
mine = FeStateModel.load(path)
print(f"saved {path.name} and {path.with_suffix('.npz').name}")

x_test, y_test, _ = data.test
predicted = mine.predict(x_test)
rmse = np.sqrt(np.mean((predicted["valence"] - y_test[:, 0]) ** 2))
print(f"valence RMSE on {len(x_test)} held-out library spectra: {rmse:.3f}")

# %%
# The standards were in the training data, so this only shows that the model learnt
# them; judge a model on standards it has not seen
# (``fe-ml evaluate --model my_model.json --standards DIR``).
for rec, first in zip(standards, x_standards[::N_COPIES], strict=True):
    p = mine.predict(first[None, :])
    print(
        f"{rec.identifier}: valence {p['valence'][0]:.2f} ± {p['valence_std'][0]:.2f} "
        f"(true {rec.valence:.2f})"
    )

# %%
# On a spectrum image, against the shipped model
# ----------------------------------------------
# The tiny model is less accurate than the shipped one: it saw 50 times fewer
# spectra. With ``TrainingSettings()`` and your standards it would not be.
s, truth = iron_oxide_particle((24, 30), seed=2)
iron = truth.has_iron
for name, which in (("your model", path), ("shipped model", None)):
    maps = s.predict_fe_state(which, show_progressbar=False)
    valence = np.asarray(maps["valence"].data)
    pick = iron & np.isfinite(valence)
    error = np.sqrt(np.mean((valence[pick] - truth.valence[pick]) ** 2))
    print(f"{name}: valence RMSE {error:.3f} over {pick.sum()} iron pixels")

fig = maps.plot(["valence", "td_fraction"], composite=False)
plt.show()
