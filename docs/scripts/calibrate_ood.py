"""Measure the out-of-distribution tests: false positives and detection per class.

Run: ``python docs/scripts/calibrate_ood.py`` (measured standards from
``FE_ML_EXPDATA`` or ``../shared/expdata`` when present; the edrixs classes need
the ``simulate`` extra). Prints the percentiles of the scores on 3000 held-out
simulated spectra that the thresholds in ``hyperspy_fe_ml/ood.py`` and the metal
detector's ``flag_fraction`` were set from, the false-positive rate of the
metallic test for neighbouring thresholds, and the model card's OOD table.
"""

import warnings

import numpy as np

from hyperspy_fe_ml.library.standards import find_standards_dir
from hyperspy_fe_ml.model import load_default_model
from hyperspy_fe_ml.ood import library_misfit
from hyperspy_fe_ml.predict import _detectors_for, read_inputs
from hyperspy_fe_ml.training.dataset import (
    DatasetSettings,
    make_dataset,
    split_parameter_sets,
    with_augmentation,
)
from hyperspy_fe_ml.training.evaluate import evaluate_standards
from hyperspy_fe_ml.training.ood_rates import measure_ood, ood_table

warnings.simplefilter("ignore")
model = load_default_model()
ids = split_parameter_sets(seed=0)["test"]
# Spikes are what the spike test is for: the false positives are counted without.
no_spikes = with_augmentation(DatasetSettings(), spike_probability=0.0)
test, _, _ = make_dataset(3000, model.energy, ids, seed=5, settings=no_spikes)
x, n2, c = model.standardise(test)
columns, _ = read_inputs(
    model,
    np.nan_to_num(x).astype(np.float32),
    n2,
    c,
    np.zeros(len(x), dtype=np.uint16),
    _detectors_for(model),
)
for key in (
    "reconstruction_misfit",
    "reconstruction_snr",
    "spike_score",
    "metallic_fraction",
):
    print(
        key,
        "percentiles 0.5/1/50/99/99.5:",
        np.nanpercentile(columns[key], [0.5, 1, 50, 99, 99.5]).round(3),
    )
fraction = columns["metallic_fraction"]
inputs = np.nan_to_num(x).astype(np.float32)
candidates = fraction > 0.5
misfit = library_misfit(
    model.energy, inputs, candidates, model.input_mean, model.input_scale
)
for threshold in (0.5, 0.6, 0.7, 0.8):
    for least in (0.0, 2.0):
        with np.errstate(invalid="ignore"):
            rate = np.mean((fraction > threshold) & ~(misfit <= least))
        print(
            f"metallic > {threshold}, library misfit > {least}: "
            f"false positive {rate:.4f}"
        )
folder = find_standards_dir()
rows = evaluate_standards(model, folder) if folder else None
print("\n".join(ood_table(measure_ood(model, test, rows))))
