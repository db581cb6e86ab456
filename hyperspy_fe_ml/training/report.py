"""``fe-ml evaluate``: measure a model on its held-out data and write its card."""

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hyperspy_fe_ml.fileio import atomic_write
from hyperspy_fe_ml.model import FeStateModel, load_default_model
from hyperspy_fe_ml.training.dataset import (
    DatasetSettings,
    make_dataset,
    split_parameter_sets,
    with_augmentation,
)
from hyperspy_fe_ml.training.evaluate import (
    condition_metrics,
    evaluate_standards,
    inference_time_per_spectrum,
    model_card,
    plot_robustness,
    robustness_curves,
    score_test_set,
)
from hyperspy_fe_ml.training.fit import FitSettings
from hyperspy_fe_ml.training.train import (
    COMPARE_N_TRAIN,
    TrainingSettings,
    build_training_data,
    compare_energy_inputs,
    compare_families,
)


def training_settings_of(model: FeStateModel) -> TrainingSettings:
    """The :class:`TrainingSettings` a model was trained with (from its info)."""
    recorded = dict(model.info.get("training_settings", {}))
    if not recorded:
        raise ValueError(
            "The model records no training settings, so its held-out test split "
            "cannot be rebuilt. Evaluate a model written by `fe-ml train`."
        )
    dataset_recorded = dict(recorded.pop("dataset"))
    # Models trained before the energy-dependent L3 width drew none: rebuild their
    # data without it rather than with today's default range.
    dataset_recorded.setdefault("l3_width_slope", (0.0, 0.0))
    # ... nor shifted Fe3+ against Fe2+ components.
    dataset_recorded.setdefault("fe3_shift", (0.0, 0.0))
    # ... nor left out the weak-field octahedral sets.
    dataset_recorded.setdefault("octahedral_ten_dq_min", (0.0, 0.0))
    dataset = DatasetSettings(
        **{
            key: tuple(value) if isinstance(value, list) else value
            for key, value in dataset_recorded.items()
        }
    )
    fit = FitSettings(
        **{
            key: tuple(value) if isinstance(value, list) else value
            for key, value in recorded.pop("fit").items()
        }
    )
    recorded["split_fractions"] = tuple(recorded["split_fractions"])
    return TrainingSettings(dataset=dataset, fit=fit, **recorded)


def evaluate_model(
    *,
    model_path: str | Path | None = None,
    standards: str | Path | None = None,
    card: Path = Path("docs/model_card.md"),
    figure: Path = Path("docs/figures/robustness.png"),
    n_test: int | None = None,
    compare: bool = True,
    show_progressbar: bool = False,
) -> Path:
    """Measure a model and write its model card and robustness figure.

    Parameters
    ----------
    model_path
        Model ``.json``; ``None`` for the shipped default model.
    standards
        Folder of experimental standards; ``None`` for
        :func:`~hyperspy_fe_ml.library.standards.find_standards_dir` (from the working
        directory, then from the package), else none.
    card, figure
        Output files.
    n_test
        Test spectra (default: as many as the training run drew).
    compare
        Also refit the three model families on the training split and compare.
    show_progressbar
        Progress bars while drawing spectra.

    Returns
    -------
    pathlib.Path
        The card.
    """
    from hyperspy_fe_ml.library.shipped import library_for

    model = (
        load_default_model() if model_path is None else FeStateModel.load(model_path)
    )
    settings = training_settings_of(model)
    if n_test is not None:
        settings = TrainingSettings(**{**vars(settings), "n_test": n_test})
    library = settings.dataset.library
    coordination = library_for(library).table["coordination"]

    data = None
    families = []
    if compare:
        # The comparison fits the first COMPARE_N_TRAIN training spectra only, and
        # blocks are seeded by position, so drawing just those gives the same ones.
        data = build_training_data(
            replace(settings, n_train=min(settings.n_train, COMPARE_N_TRAIN)),
            model.energy,
            show_progressbar=show_progressbar,
        )
        test = data.test
        families = compare_families(data, seed=settings.seed)
    else:
        ids = split_parameter_sets(
            settings.split_fractions,
            seed=settings.seed,
            library=library,
            octahedral_ten_dq_min=settings.dataset.octahedral_ten_dq_min,
        )
        seed = np.random.SeedSequence(settings.seed).spawn(3)[2]
        test = make_dataset(
            settings.n_test,
            model.energy,
            ids["test"],
            int(seed.generate_state(1)[0]),
            settings.dataset,
            show_progressbar=show_progressbar,
        )
    test_ids = split_parameter_sets(
        settings.split_fractions,
        seed=settings.seed,
        library=library,
        octahedral_ten_dq_min=settings.dataset.octahedral_ten_dq_min,
    )["test"]
    # Signal-to-noise >= 10 at the L3 maximum: dose >= 100 (1 + background) with a
    # background up to 2 times the L3 maximum.
    high_snr = make_dataset(
        settings.n_test,
        model.energy,
        test_ids,
        settings.seed + 1,
        with_augmentation(settings.dataset, dose=(300.0, 40000.0)),
        show_progressbar=show_progressbar,
    )
    # The same without crops: the whole 700-729.9 eV window, as before crops
    # entered training (the figures earlier model cards reported).
    whole = make_dataset(
        settings.n_test,
        model.energy,
        test_ids,
        settings.seed + 1,
        with_augmentation(
            replace(settings.dataset, crop_probability=0.0), dose=(300.0, 40000.0)
        ),
        show_progressbar=show_progressbar,
    )
    metrics = {
        "SNR ≥ 10": score_test_set(model, *high_snr, coordination),
        "SNR ≥ 10, uncropped": score_test_set(model, *whole, coordination),
        "full range (SNR 3–200)": score_test_set(model, *test, coordination),
    }

    conditions = condition_metrics(
        model, test_ids, settings.dataset, n=settings.n_test // 2, seed=settings.seed
    )
    curves = robustness_curves(model, test_ids, settings=settings.dataset)
    figure_path = plot_robustness(curves, figure)

    if standards is None:
        from hyperspy_fe_ml.library.standards import find_standards_dir

        standards = find_standards_dir() or find_standards_dir(Path(__file__).parent)
    rows = evaluate_standards(model, standards) if standards else []
    measured = None
    if standards:
        from hyperspy_fe_ml.training.uncertainty import calibrate_on_standards

        try:
            _, measured = calibrate_on_standards(model, standards)
        except ValueError:  # no standard with a valence label: nothing to measure
            measured = None
    loco = None
    if standards:
        loco = _leave_one_compound_out(
            model, model_path, standards, settings, show_progressbar
        )
    energy_inputs = []
    if compare:
        calibrated = make_dataset(
            settings.n_test,
            model.energy,
            test_ids,
            settings.seed + 2,
            with_augmentation(
                settings.dataset, dose=(300.0, 40000.0), offset=(-0.3, 0.3)
            ),
            show_progressbar=show_progressbar,
        )
        energy_inputs = compare_energy_inputs(
            data,
            {"SNR >= 10": high_snr, "calibrated": calibrated},
            str(standards) if standards else None,
            library=library,
        )

    from hyperspy_fe_ml.training.ood_rates import measure_ood

    # False positives without the spike augmentation: spikes are what the spike
    # test is for.
    spike_free, _, _ = make_dataset(
        min(settings.n_test, 3000),
        model.energy,
        test_ids,
        settings.seed + 3,
        with_augmentation(settings.dataset, spike_probability=0.0),
        show_progressbar=show_progressbar,
    )
    ood = measure_ood(model, spike_free, rows)
    text = model_card(
        model,
        metrics,
        curves,
        families,
        rows,
        conditions=conditions,
        energy_inputs=energy_inputs,
        loco=loco,
        ood=ood,
        measured_uncertainty=measured,
        inference_us=inference_time_per_spectrum(model, test[0][:2000]),
        figure=os.path.relpath(figure_path, card.parent),
        command="fe-ml " + " ".join(sys.argv[1:]),
    )
    card.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(card, "w") as handle:  # never half a card
        handle.write(text)
    return card


def _leave_one_compound_out(
    model: FeStateModel,
    model_path: str | Path | None,
    standards: str | Path,
    settings: TrainingSettings,
    show_progressbar: bool,
) -> list[dict[str, Any]] | None:
    """Leave-one-compound-out of the adaptation to measured standards.

    The folds start from the library-only model: the model itself, or, for a
    model adapted by ``fe-ml train --standards``, the library model written
    beside it (None when it is missing). They use the adaptation's recorded
    settings (defaults for a library model) and the first library spectra of
    the training split, as ``fe-ml train --standards`` does.
    """
    from hyperspy_fe_ml.model import default_model_path, library_model_path
    from hyperspy_fe_ml.training.adapt import (
        AdaptSettings,
        leave_one_compound_out,
        library_in_view,
    )
    from hyperspy_fe_ml.training.refine import RefineSettings
    from hyperspy_fe_ml.training.standards import StandardMixSettings

    adaptation = (model.info or {}).get("adaptation")
    library_model = model
    adapt_settings = AdaptSettings()
    n = RefineSettings().n_adapt_library
    if adaptation:
        path = library_model_path(model_path or default_model_path())
        if not path.is_file():
            return None
        library_model = FeStateModel.load(path)
        recorded = dict(adaptation["settings"])
        recorded["mix"] = StandardMixSettings(
            **{
                k: tuple(v) if isinstance(v, list) else v
                for k, v in recorded["mix"].items()
            }
        )
        adapt_settings = AdaptSettings(**recorded)
        n = int(adaptation["n_library"])
    data = library_in_view(settings, n, library_model.energy)
    return leave_one_compound_out(
        library_model,
        standards,
        data.train[0][:n],
        data.train[1][:n],
        data.set_ids["train"],
        adapt_settings,
        dataset=settings.dataset,
        show_progressbar=show_progressbar,
    )
