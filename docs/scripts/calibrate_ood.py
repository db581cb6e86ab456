"""Measure the out-of-distribution tests: false positives and detection per class.

Run: ``python docs/scripts/calibrate_ood.py`` (measured standards from
``FE_ML_EXPDATA`` or ``../shared/expdata`` when present). Prints the model card's
OOD table and the percentiles of the scores on the held-out simulated test set
that the thresholds in ``hyperspy_fe_ml/ood.py`` were set from.
"""

import warnings

import numpy as np

from hyperspy_fe_ml.library.standards import find_standards_dir
from hyperspy_fe_ml.model import load_default_model
from hyperspy_fe_ml.ood import reconstruction_test
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
test, _, _ = make_dataset(3000, model.energy, ids, seed=5)
x, n2, c = model.standardise(test)
t = reconstruction_test(
    model.energy, np.nan_to_num(x), np.isfinite(c), model.input_mean, model.input_scale
)
for key in ("reconstruction_misfit", "reconstruction_snr", "spike_score"):
    print(
        key,
        "percentiles 0.5/1/50/99/99.5:",
        np.nanpercentile(t[key], [0.5, 1, 50, 99, 99.5]).round(2),
    )
no_spikes = with_augmentation(DatasetSettings(), spike_probability=0.0)
test_clean, _, _ = make_dataset(3000, model.energy, ids, seed=5, settings=no_spikes)
folder = find_standards_dir()
rows = evaluate_standards(model, folder) if folder else None
print("\n".join(ood_table(measure_ood(model, test, rows))))
print("without the 1 % spike augmentation:")
print("\n".join(ood_table(measure_ood(model, test_clean, None, n=1))[2:3]))
