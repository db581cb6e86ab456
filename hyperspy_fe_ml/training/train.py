"""Train the default model, and compare model families on the same split.

``fe-ml train`` runs :func:`train_model` with :class:`TrainingSettings` defaults and
writes the model that ships in ``hyperspy_fe_ml/data``; the same seed gives the same
data (Dask blocks seeded from one :class:`numpy.random.SeedSequence`) and, on the
same machine and library versions, the same model.
"""

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hyperspy_fe_ml import __version__
from hyperspy_fe_ml.model import OUTPUTS, FeStateModel
from hyperspy_fe_ml.training.dataset import (
    DatasetSettings,
    make_dataset,
    split_parameter_sets,
)
from hyperspy_fe_ml.training.fit import FitSettings, fit_fe_state_model


@dataclass(frozen=True)
class TrainingSettings:
    """Sizes, split and seed of a training run.

    Attributes
    ----------
    n_train, n_calibration, n_test
        Spectra drawn for each split. 300 000 training spectra: with 40 000,
        100 000, 200 000 and 300 000 on the default split the tetrahedral
        fraction MAE on mixtures (SNR >= 10) went 0.158, 0.151, 0.146, 0.142 and
        the Td-vs-Oh accuracy 94.5, 95.5, 95.6, 95.9 %, while wider or deeper
        perceptrons, more components, other input scalings, a smaller step or a
        stronger L2 penalty changed neither by more than 0.005 (100 000
        spectra). Drawing and fitting take about 8 minutes on 2 cores.
    split_fractions
        Share of the library's parameter sets in (train, calibration, test).
    seed
        Seed of the split and of every spectrum.
    dataset
        Mixture and augmentation settings.
    fit
        Model settings.
    """

    n_train: int = 300_000
    n_calibration: int = 8_000
    n_test: int = 8_000
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 2026
    dataset: DatasetSettings = field(default_factory=DatasetSettings)
    fit: FitSettings = field(default_factory=FitSettings)


@dataclass(frozen=True)
class TrainingData:
    """The three splits of a training run.

    Each split is ``(spectra, targets, meta)`` as returned by
    :func:`~hyperspy_fe_ml.training.dataset.make_dataset`.
    """

    energy: np.ndarray
    set_ids: dict[str, np.ndarray]
    train: tuple[np.ndarray, np.ndarray, np.ndarray]
    calibration: tuple[np.ndarray, np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray, np.ndarray]


def build_training_data(
    settings: TrainingSettings = TrainingSettings(),
    energy: np.ndarray | None = None,
    *,
    show_progressbar: bool = False,
) -> TrainingData:
    """Draw the train, calibration and test spectra (split by parameter set).

    Examples
    --------
    >>> from hyperspy_fe_ml.training.dataset import DatasetSettings
    >>> small = TrainingSettings(n_train=6, n_calibration=4, n_test=4,
    ...                          dataset=DatasetSettings(augment=False))
    >>> data = build_training_data(small)
    >>> data.train[0].shape[1], len(data.test[1])
    (300, 4)
    """
    from hyperspy_fe_ml.signal_tools import CANONICAL_ENERGY_EV

    energy = CANONICAL_ENERGY_EV if energy is None else np.asarray(energy, float)
    set_ids = split_parameter_sets(
        settings.split_fractions,
        seed=settings.seed,
        library=settings.dataset.library,
        octahedral_ten_dq_min=settings.dataset.octahedral_ten_dq_min,
    )
    seeds = np.random.SeedSequence(settings.seed).spawn(3)
    splits = {}
    for (name, n), seed in zip(
        (
            ("train", settings.n_train),
            ("calibration", settings.n_calibration),
            ("test", settings.n_test),
        ),
        seeds,
        strict=True,
    ):
        splits[name] = make_dataset(
            n,
            energy,
            set_ids[name],
            int(seed.generate_state(1)[0]),
            settings.dataset,
            show_progressbar=show_progressbar,
        )
    return TrainingData(energy=energy, set_ids=set_ids, **splits)


def train_model(
    settings: TrainingSettings = TrainingSettings(),
    *,
    data: TrainingData | None = None,
    show_progressbar: bool = False,
) -> tuple[FeStateModel, TrainingData]:
    """Train the model on freshly drawn (or given) data.

    Returns
    -------
    model : FeStateModel
    data : TrainingData
        The data it was trained, calibrated and can be tested on.
    """
    from hyperspy_fe_ml.library.shipped import library_for

    if data is None:
        data = build_training_data(settings, show_progressbar=show_progressbar)
    library = library_for(settings.dataset.library)
    start = time.perf_counter()
    model = fit_fe_state_model(
        data.energy,
        data.train[0],
        data.train[1],
        data.calibration[0],
        data.calibration[1],
        settings.fit,
        info={
            "package_version": __version__,
            "library_schema": int(library.schema_version),
            "library_edrixs_version": library.edrixs_version,
            "library_sets": len(library),
            "training_settings": _settings_dict(settings),
            "split_sets": {k: int(v.size) for k, v in data.set_ids.items()},
        },
    )
    model.info["fit_seconds"] = round(time.perf_counter() - start, 1)
    return model, data


#: Training spectra the model-family comparison uses (the first of the split).
COMPARE_N_TRAIN = 40_000


def compare_families(
    data: TrainingData,
    *,
    seed: int = 0,
    n_trees: int = 500,
    n_train: int | None = COMPARE_N_TRAIN,
) -> list[dict[str, Any]]:
    """Fit three model families on the same split and score them on its test set.

    - random forest of ``n_trees`` trees (the published anchor, Gleason, Lu &
      Ciston 2024, used 500), on the principal-component scores;
    - histogram gradient boosting, one model per output, on the same scores;
    - the MLP ensemble of :func:`~hyperspy_fe_ml.training.fit.fit_fe_state_model`.

    All three fit the same first ``n_train`` training spectra (all of them with
    ``None``): a 500-tree forest on the 300 000 spectra of the default run would
    take most of an hour on 2 cores.

    Returns
    -------
    list of dict
        Per family: ``family``, ``n_train``, ``valence_rmse``, ``fe3_mae``,
        ``td_mae``, ``cn_mae``, ``fit_s`` and ``predict_us`` (inference time per
        spectrum).
    """
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor

    x_train, y_train, _ = data.train
    if n_train is not None:
        x_train, y_train = x_train[:n_train], y_train[:n_train]
    x_test, y_test, _ = data.test
    start = time.perf_counter()
    model = fit_fe_state_model(
        data.energy, x_train, y_train, data.calibration[0], data.calibration[1]
    )
    mlp_seconds = time.perf_counter() - start
    scores_train, _ = model.features(x_train)
    rows = []

    def score(name: str, fit_s: float, predict) -> None:
        start = time.perf_counter()
        prediction = predict(x_test)
        per_spectrum = (time.perf_counter() - start) / len(x_test) * 1e6
        rows.append(
            {
                "family": name,
                "n_train": len(x_train),
                "fit_s": round(fit_s, 1),
                "predict_us": round(per_spectrum, 2),
                **_errors(prediction, y_test),
            }
        )

    start = time.perf_counter()
    forest = RandomForestRegressor(
        n_estimators=n_trees,
        min_samples_leaf=2,
        max_features=0.33,
        n_jobs=-1,
        random_state=seed,
    ).fit(scores_train, y_train)
    score(
        f"random forest ({n_trees} trees)",
        time.perf_counter() - start,
        lambda x: forest.predict(model.features(x)[0]),
    )

    start = time.perf_counter()
    boosters = [
        HistGradientBoostingRegressor(max_iter=400, random_state=seed).fit(
            scores_train, y_train[:, k]
        )
        for k in range(len(OUTPUTS))
    ]
    score(
        "gradient boosting",
        time.perf_counter() - start,
        lambda x: np.stack([b.predict(model.features(x)[0]) for b in boosters], axis=1),
    )

    score(
        f"MLP ensemble ({len(model.members)} members)",
        mlp_seconds,
        lambda x: _stacked(model.predict(x)),
    )
    return rows


def compare_energy_inputs(
    data: TrainingData,
    tests: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    standards: str | None = None,
    *,
    n_train: int | None = COMPARE_N_TRAIN,
    library: str | None = None,
) -> list[dict[str, Any]]:
    """Fit a shape-only and an absolute-energy model on the same spectra; score both.

    Parameters
    ----------
    data
        The training run's split (the first ``n_train`` training spectra are used).
    tests
        ``"SNR >= 10"`` and ``"calibrated"`` test sets (spectra, targets, meta):
        the held-out parameter sets with the training's energy-axis errors, and
        with the axis within ±0.3 eV.
    standards
        Folder of measured standards to score both on (``None``: not scored).
    n_train
        Training spectra of both fits.
    library
        Path of the multiplet library the data were drawn from (None: shipped).

    Returns
    -------
    list of dict
        Per model: ``model``, ``n_train``, ``valence_rmse``,
        ``valence_rmse_calibrated``, ``td_accuracy`` (single-site Oh/Td calls),
        ``standards_mae`` and ``standards_within`` (share within ±0.25; NaN
        without standards).
    """
    from hyperspy_fe_ml.library.shipped import library_for
    from hyperspy_fe_ml.training.evaluate import evaluate_standards, score_test_set

    x_train, y_train, _ = data.train
    if n_train is not None:
        x_train, y_train = x_train[:n_train], y_train[:n_train]
    coordination = library_for(library).table["coordination"]
    rows = []
    for label, absolute in (
        ("shape only (shipped)", False),
        ("shape + L3 centroid", True),
    ):
        model = fit_fe_state_model(
            data.energy,
            x_train,
            y_train,
            data.calibration[0],
            data.calibration[1],
            FitSettings(absolute_energy=absolute),
        )
        wide = score_test_set(model, *tests["SNR >= 10"], coordination)
        calibrated = score_test_set(model, *tests["calibrated"], coordination)
        mae = within = np.nan
        if standards is not None:
            scored = [
                r
                for r in evaluate_standards(
                    model, standards, energy_calibrated=absolute
                )
                if "refused" not in r
            ]
            errors = np.array(
                [abs(r["valence"] - r["nominal_valence"]) for r in scored]
            )
            if errors.size:
                mae, within = float(errors.mean()), float(np.mean(errors <= 0.25))
        rows.append(
            {
                "model": label,
                "n_train": len(x_train),
                "valence_rmse": wide.valence_rmse,
                "valence_rmse_calibrated": calibrated.valence_rmse,
                "td_accuracy": wide.td_accuracy_oh_td,
                "standards_mae": mae,
                "standards_within": within,
            }
        )
    return rows


def _stacked(prediction: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([prediction[name] for name in OUTPUTS], axis=1)


def _errors(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    error = prediction - truth
    return {
        "valence_rmse": float(np.sqrt(np.mean(error[:, 0] ** 2))),
        "fe3_mae": float(np.mean(np.abs(error[:, 1]))),
        "td_mae": float(np.mean(np.abs(error[:, 2]))),
        "cn_mae": float(np.mean(np.abs(error[:, 3]))),
    }


def _settings_dict(settings: TrainingSettings) -> dict[str, Any]:
    return asdict(settings)
