"""Teach a library-trained model the look of measured spectra.

The model is first trained on simulated spectra only
(:func:`~hyperspy_fe_ml.training.train.train_model`); :func:`adapt_model` then
continues training every ensemble member on library spectra mixed with spectra
drawn from measured standards (:mod:`hyperspy_fe_ml.training.standards`), so the
standards count without the library being forgotten. The projection, the input
scaling and the out-of-distribution score stay those of the library model: the
adaptation changes what the model concludes from a spectrum, not how it reads it.

Because the adaptation is cheap next to the library training, every fold of a
leave-one-compound-out validation (:func:`leave_one_compound_out`) starts from
the same library model and repeats it without one compound — the validation
measures exactly the recipe the shipped model follows.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hyperspy_fe_ml.model import OUTPUTS, FeStateModel, MLPMember
from hyperspy_fe_ml.training.standards import (
    StandardMixSettings,
    TrainingStandards,
    compound_key,
    make_standard_block,
)

__all__ = [
    "AdaptSettings",
    "adapt_model",
    "leave_one_compound_out",
    "library_in_view",
]


@dataclass(frozen=True)
class AdaptSettings:
    """How a library model is adapted to measured standards.

    Attributes
    ----------
    n_standard
        Training spectra drawn from the standards (alone and in mixtures,
        augmented like library spectra).
    epochs
        Passes over the library and standard spectra together.
    learning_rate_init
        Adam step (a fraction of the library training's, so the adaptation
        refines rather than restarts).
    standard_weight
        Weight of each standard spectrum in the loss relative to a library one.
    batch_size
        Adam mini-batch.
    seed
        Seed of the draws and of the shuffles.
    mix
        See :class:`~hyperspy_fe_ml.training.standards.StandardMixSettings`.
    """

    n_standard: int = 20_000
    epochs: int = 10
    learning_rate_init: float = 3e-4
    standard_weight: float = 1.0
    batch_size: int = 256
    seed: int = 0
    mix: StandardMixSettings = field(default_factory=StandardMixSettings)


def draw_standard_spectra(
    standards: TrainingStandards,
    n: int,
    set_ids: np.ndarray,
    seed: int,
    dataset: Any = None,
    mix: StandardMixSettings | None = None,
    *,
    block_size: int = 1000,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` augmented spectra from the standards, in seeded Dask blocks."""
    import dask

    from hyperspy_fe_ml.kernels.model_inputs import contiguous_finite

    mix = StandardMixSettings() if mix is None else mix
    sizes = [block_size] * (n // block_size) + (
        [n % block_size] if n % block_size else []
    )
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    tasks = [
        dask.delayed(make_standard_block)(size, standards, set_ids, s, dataset, mix)
        for size, s in zip(sizes, seeds, strict=True)
    ]
    blocks = dask.compute(*tasks)
    x = np.concatenate([b[0] for b in blocks])
    y = np.concatenate([b[1] for b in blocks])
    keep = contiguous_finite(x)
    return x[keep], y[keep]


def library_in_view(settings: Any, n: int, energy: np.ndarray | None = None) -> Any:
    """The first ``n`` library training spectra of a training run's split, which
    an adaptation keeps in view (blocks are seeded by position, so these are the
    spectra the run itself drew first).

    Parameters
    ----------
    settings
        The run's :class:`~hyperspy_fe_ml.training.train.TrainingSettings`.
    n
        Spectra (at most the run's ``n_train``).
    energy
        Grid (default: the canonical model grid).

    Returns
    -------
    TrainingData
        With ``train`` holding the spectra and ``set_ids`` the split.
    """
    from dataclasses import replace as replaced

    from hyperspy_fe_ml.training.train import build_training_data

    n = min(int(n), int(settings.n_train))
    return build_training_data(
        replaced(settings, n_train=n, n_calibration=10, n_test=10), energy
    )


def adapt_model(
    model: FeStateModel,
    standards: TrainingStandards,
    library_spectra: np.ndarray,
    library_targets: np.ndarray,
    set_ids: np.ndarray,
    settings: AdaptSettings = AdaptSettings(),
    *,
    dataset: Any = None,
) -> FeStateModel:
    """Continue training a model's ensemble on library and standard spectra.

    Parameters
    ----------
    model
        A model trained on the library (its projection and scaling are kept).
    standards
        Measured standards with both labels
        (:func:`~hyperspy_fe_ml.training.standards.load_training_standards`).
    library_spectra, library_targets
        Library training spectra (from the model's training split) that keep
        the library in view, shape ``(n, channels)`` and ``(n, len(OUTPUTS))``.
    set_ids
        Library parameter sets that may join a standard in a mixture.
    settings
        See :class:`AdaptSettings`.
    dataset
        :class:`~hyperspy_fe_ml.training.dataset.DatasetSettings` for the
        augmentation (default settings when None).

    Returns
    -------
    FeStateModel
        The adapted model; ``info["adaptation"]`` records the standards, their
        compounds and the settings.
    """
    from sklearn.neural_network import MLPRegressor

    if len(standards) == 0:
        raise ValueError(
            "no standards to adapt to: give at least one labelled standard"
        )
    x_std, y_std = draw_standard_spectra(
        standards, settings.n_standard, set_ids, settings.seed, dataset, settings.mix
    )
    x = np.concatenate([np.asarray(library_spectra, float), x_std])
    y = np.concatenate([np.asarray(library_targets, float), y_std])
    weight = np.concatenate(
        [np.ones(len(library_spectra)), np.full(len(x_std), settings.standard_weight)]
    )
    features, _ = model.features(x)
    usable = np.all(np.isfinite(features), axis=1)
    features, y, weight = features[usable], y[usable], weight[usable]
    t = (y - model.target_mean) / model.target_scale
    hidden = tuple(int(w.shape[1]) for w in model.members[0].weights[:-1])
    rng = np.random.default_rng(settings.seed)
    members = []
    for m, member in enumerate(model.members):
        regressor = MLPRegressor(
            hidden_layer_sizes=hidden,
            alpha=float((model.info.get("fit_settings") or {}).get("alpha", 1e-4)),
            batch_size=settings.batch_size,
            learning_rate_init=settings.learning_rate_init,
            random_state=settings.seed * 1000 + m,
        )
        with warnings.catch_warnings():  # a two-row batch only sets the shapes
            warnings.simplefilter("ignore")
            regressor.partial_fit(features[:2], t[:2])
        for target, source in zip(
            regressor.coefs_ + regressor.intercepts_,
            member.weights + member.biases,
            strict=True,
        ):
            np.copyto(target, source)
        rows = rng.integers(0, features.shape[0], features.shape[0])
        for _ in range(settings.epochs):
            order = rng.permutation(rows)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                regressor.partial_fit(
                    features[order], t[order], sample_weight=weight[order]
                )
        members.append(
            MLPMember(
                weights=tuple(np.asarray(w, np.float64) for w in regressor.coefs_),
                biases=tuple(np.asarray(b, np.float64) for b in regressor.intercepts_),
            )
        )
    info = dict(model.info or {})
    info.pop("arrays_sha256", None)
    # The measured-spectrum term was calibrated for the model before adaptation,
    # and the standards it was adapted to can no longer calibrate it.
    info.pop("measured_uncertainty", None)
    info["adaptation"] = {
        "standards": list(standards.files),
        "compounds": sorted(set(standards.groups)),
        "settings": asdict(settings),
        "n_library": int(len(library_spectra)),
        "n_standard_spectra": int(len(x_std)),
    }
    return replace(
        model,
        members=tuple(members),
        info=info,
        measured_std=np.zeros_like(model.measured_std),
    )


def leave_one_compound_out(
    model: FeStateModel,
    directory: str | Path,
    library_spectra: np.ndarray,
    library_targets: np.ndarray,
    set_ids: np.ndarray,
    settings: AdaptSettings = AdaptSettings(),
    *,
    dataset: Any = None,
    show_progressbar: bool = False,
) -> list[dict[str, Any]]:
    """Score the adaptation on each compound it was not adapted to.

    For every compound in ``directory`` (:func:`~hyperspy_fe_ml.training.
    standards.compound_key`: all spectra of one compound together), the library
    model is adapted to the other compounds' standards
    (:func:`adapt_model`) and the held-out spectra are predicted as a user hands
    them in (:func:`~hyperspy_fe_ml.training.evaluate.evaluate_standards`).
    Standards without a Td-fraction label are held out and scored on their
    valence, never trained on.

    Returns
    -------
    list of dict
        The rows of :func:`~hyperspy_fe_ml.training.evaluate.evaluate_standards`
        for ``model`` (the library model: ``valence``, ``td_fraction``, white-line
        ratio...), each with ``compound_group`` and the held-out predictions of
        the adapted model as ``loco_<output>`` and ``loco_<output>_std``.
    """
    from hyperspy_fe_ml.training.evaluate import evaluate_standards
    from hyperspy_fe_ml.training.standards import load_training_standards

    standards = load_training_standards(directory, model)
    rows = evaluate_standards(model, directory)
    for row in rows:
        row["compound_group"] = compound_key(str(row["compound"]))
    groups = sorted({row["compound_group"] for row in rows})
    progress = _progress(groups, show_progressbar)
    for group in progress:
        held = {row["file"] for row in rows if row["compound_group"] == group}
        adapted = adapt_model(
            model,
            standards.without(group),
            library_spectra,
            library_targets,
            set_ids,
            settings,
            dataset=dataset,
        )
        predicted = {
            r["file"]: r for r in evaluate_standards(adapted, directory, files=held)
        }
        for row in rows:
            if row["file"] not in held:
                continue
            out = predicted.get(row["file"], {})
            for name in OUTPUTS:
                row[f"loco_{name}"] = float(out.get(name, math.nan))
                row[f"loco_{name}_std"] = float(out.get(f"{name}_std", math.nan))
    return rows


def _progress(items: list[str], show: bool):
    if not show:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="leave-one-compound-out", unit="compound")
