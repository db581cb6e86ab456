"""Train the metallic-iron detector
(:class:`~hyperspy_fe_ml.metal_detector.MetalDetector`).

Training spectra: half are the valence model's own training mixtures (no metal);
the other half mix a simulated metal edge
(:func:`~hyperspy_fe_ml.library.metal.draw_metal_spectra`, shapes drawn over the
literature ranges) with a library mixture, per Fe atom, at the calibrated
energies (metal L3 edge 706.8 eV, Fe2+ and Fe3+ where the library calibration
puts them), the metal fraction 1 for half of them and uniform in 0-1 otherwise.
Every spectrum then gets the valence model's augmentation, white-line
normalisation and random crops (:func:`~hyperspy_fe_ml.training.dataset.make_block`
does the same for the library alone), and is read by the valence model up to its
features (the principal-component scores its ensemble reads). An ensemble of
scikit-learn ``MLPRegressor`` fits on those features follows; their arrays go into
the detector file, tied to the valence model by its hash.

``fe-ml train-metal -o fe_metal.json`` runs it (about 10 minutes for the default
120 000 spectra on two cores).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from hyperspy_fe_ml.metal_detector import MetalDetector
from hyperspy_fe_ml.model import FeStateModel, MLPMember, load_default_model
from hyperspy_fe_ml.training.dataset import (
    DatasetSettings,
    draw_mixtures,
    make_dataset,
    random_crops,
    split_parameter_sets,
)

__all__ = [
    "MetalTrainingSettings",
    "add_train_metal_command",
    "detector_rates",
    "make_metal_block",
    "train_metal_detector",
]


@dataclass(frozen=True)
class MetalTrainingSettings:
    """Settings of :func:`train_metal_detector`.

    Attributes
    ----------
    n_train
        Training spectra, half of them with metal.
    n_test
        Held-out spectra of each kind for the measured rates.
    pure_metal_probability
        Share of the metal-bearing spectra that are all metal.
    hidden
        Hidden layer widths of each member.
    n_members
        Ensemble size.
    max_iter
        Epochs (with early stopping on 10 % of the data).
    flag_fraction
        Metallic fraction above which a pixel is flagged: 0.6, the lowest tenth
        above every measured standard's reading (FeO XAS 0.57) with a held-out
        simulated false-positive rate of 0.1 % together with
        :data:`~hyperspy_fe_ml.ood.METAL_MIN_MISFIT`.
    seed
        Seeds data, splits and fits.
    dataset
        Augmentation and mixtures of the library part (the valence model's).
    """

    n_train: int = 120_000
    n_test: int = 4_000
    pure_metal_probability: float = 0.5
    hidden: tuple[int, ...] = (64, 32)
    n_members: int = 2
    max_iter: int = 100
    flag_fraction: float = 0.6
    seed: int = 2026
    dataset: DatasetSettings = field(default_factory=DatasetSettings)


def make_metal_block(
    n: int,
    energy: np.ndarray,
    set_ids: np.ndarray,
    seed: np.random.SeedSequence | int,
    settings: DatasetSettings | None = None,
    pure_metal_probability: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block of augmented spectra of metal mixed with library spectra.

    Returns
    -------
    spectra
        Shape ``(n, channels)``, normalised and cropped like
        :func:`~hyperspy_fe_ml.training.dataset.make_block`'s.
    fraction
        Shape ``(n, 1)``: metallic fraction of the Fe atoms.
    meta
        Shape ``(n, 2)``: zeros (for :func:`make_dataset`).

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_fe_ml.signals import CANONICAL_ENERGY_EV
    >>> ids = split_parameter_sets(seed=0)["train"]
    >>> x, f, _ = make_metal_block(16, CANONICAL_ENERGY_EV, ids, 0)
    >>> x.shape, bool(np.all((f > 0) & (f <= 1)))
    ((16, 300), True)
    """
    from hyperspy_fe_ml.kernels.augment import AugmentationSettings, augment_batch
    from hyperspy_fe_ml.kernels.preprocess import NORMALISE_INTEGRAL, normalise_spectra
    from hyperspy_fe_ml.library.metal import draw_metal_spectra

    settings = DatasetSettings() if settings is None else settings
    rng = np.random.default_rng(seed)
    library, _, _ = draw_mixtures(n, energy, set_ids, rng, settings)
    metal = draw_metal_spectra(energy, n, rng)
    pure = rng.random(n) < pure_metal_probability
    fraction = np.where(pure, 1.0, rng.uniform(0.02, 1.0, n))
    # Both are per Fe atom (white-line area = number of 3d holes).
    spectra = fraction[:, None] * metal + (1.0 - fraction[:, None]) * library
    if settings.augment:
        spectra, _ = augment_batch(
            energy, spectra, rng, AugmentationSettings(**settings.augmentation)
        )
    spectra = normalise_spectra(energy, spectra, 704.0, 727.0, NORMALISE_INTEGRAL)
    if settings.augment and settings.crop_probability > 0:
        spectra = random_crops(energy, spectra, rng, settings)
    return spectra, fraction[:, None], np.zeros((n, 2))


def _metal_block_function(pure_metal_probability: float):
    def block(n, energy, set_ids, seed, settings):
        return make_metal_block(
            n, energy, set_ids, seed, settings, pure_metal_probability
        )

    return block


def _features(
    model: FeStateModel, spectra: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The valence model's features of readable spectra, and which were kept."""
    p = model.predict_standardised(*model.standardise(spectra), return_features=True)
    features = p["features"]
    keep = np.all(np.isfinite(features), axis=1)
    return features[keep].astype(np.float64), keep


def _data(
    model: FeStateModel,
    n: int,
    set_ids: np.ndarray,
    seed: int,
    settings: MetalTrainingSettings,
    show_progressbar: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Model features and metallic fractions: ``n // 2`` of each kind."""
    clean, _, _ = make_dataset(
        n // 2, model.energy, set_ids, seed, settings.dataset,
        show_progressbar=show_progressbar,
    )  # fmt: skip
    metal, fraction, _ = make_dataset(
        n - n // 2,
        model.energy,
        set_ids,
        seed + 1,
        settings.dataset,
        show_progressbar=show_progressbar,
        block=_metal_block_function(settings.pure_metal_probability),
    )
    x0, _ = _features(model, clean)
    x1, keep = _features(model, metal)
    inputs = np.concatenate([x0, x1])
    target = np.concatenate([np.zeros(len(x0)), fraction[keep, 0]])
    return inputs, target


def detector_rates(
    detector: MetalDetector, features: np.ndarray, target: np.ndarray
) -> dict[str, float]:
    """Measured rates of a detector on held-out model features.

    Returns
    -------
    dict
        ``false_positive`` (metal-free spectra flagged), ``pure_metal_detected``,
        ``fraction_mae`` (metal-bearing spectra) and ``n``.
    """
    fraction, _ = detector.predict_features(features)
    flagged = fraction > detector.flag_fraction
    free, pure, some = target == 0, target == 1, target > 0
    return {
        "false_positive": float(flagged[free].mean()),
        "pure_metal_detected": float(flagged[pure].mean()),
        "fraction_mae": float(np.abs(fraction[some] - target[some]).mean()),
        "n": int(target.size),
    }


def train_metal_detector(
    model: FeStateModel | None = None,
    settings: MetalTrainingSettings = MetalTrainingSettings(),
    *,
    show_progressbar: bool = False,
) -> MetalDetector:
    """Train a metal detector for the inputs of ``model`` (default: shipped).

    Examples
    --------
    >>> small = MetalTrainingSettings(n_train=600, n_test=200, n_members=1,
    ...                               hidden=(8,), max_iter=5)
    >>> detector = train_metal_detector(settings=small)  # doctest: +SKIP
    """
    from sklearn.neural_network import MLPRegressor

    model = load_default_model() if model is None else model
    ids = split_parameter_sets(seed=settings.seed, library=settings.dataset.library)
    features, target = _data(
        model, settings.n_train, ids["train"], settings.seed, settings,
        show_progressbar,
    )  # fmt: skip
    # The principal-component scores are fitted in units of their training
    # spread; the scaling is folded into the first layer.
    spread = features.std(axis=0) + 1e-12
    members = []
    for k in range(settings.n_members):
        fit = MLPRegressor(
            hidden_layer_sizes=settings.hidden,
            max_iter=settings.max_iter,
            early_stopping=True,
            random_state=settings.seed + k,
        ).fit(features / spread, target)
        weights = [np.asarray(w, dtype=np.float64) for w in fit.coefs_]
        biases = [np.asarray(b, dtype=np.float64) for b in fit.intercepts_]
        weights[0] = weights[0] / spread[:, None]
        members.append(MLPMember(tuple(weights), tuple(biases)))
    detector = MetalDetector(
        members=tuple(members),
        model_sha256=str(model.info.get("arrays_sha256")),
        flag_fraction=settings.flag_fraction,
    )
    test_inputs, test_target = _data(
        model, settings.n_test, ids["test"], settings.seed + 7, settings,
        show_progressbar,
    )  # fmt: skip
    info = {
        "settings": {k: v for k, v in asdict(settings).items() if k != "dataset"},
        "dataset": asdict(settings.dataset),
        "held_out": detector_rates(detector, test_inputs, test_target),
    }
    return replace(detector, info=info)


def _train_metal_command(args: argparse.Namespace) -> int:
    from hyperspy_fe_ml.cli import CommandLineError

    if args.n_train < 1000:
        raise CommandLineError(
            f"--n-train {args.n_train} is too few to train a detector; use at "
            f"least 1000 (default {MetalTrainingSettings.n_train})."
        )
    settings = MetalTrainingSettings(n_train=args.n_train, seed=args.seed)
    model = None if args.model is None else FeStateModel.load(args.model)
    detector = train_metal_detector(model, settings, show_progressbar=True)
    path = detector.save(args.output)
    rates = detector.info["held_out"]
    print(
        f"wrote {path}: held out, metal-free flagged "
        f"{100 * rates['false_positive']:.2f} %, pure metal detected "
        f"{100 * rates['pure_metal_detected']:.1f} %, metallic-fraction MAE "
        f"{rates['fraction_mae']:.3f}"
    )
    return 0


def add_train_metal_command(subparsers: Any) -> None:
    """``fe-ml train-metal``: train the metallic-iron detector."""
    parser = subparsers.add_parser(
        "train-metal",
        help="train the metallic-iron detector for a valence model",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("-o", "--output", required=True, help="detector .json")
    parser.add_argument(
        "--model", default=None, help="valence model (default: shipped)"
    )
    parser.add_argument("--n-train", type=int, default=MetalTrainingSettings.n_train)
    parser.add_argument("--seed", type=int, default=MetalTrainingSettings.seed)
    parser.set_defaults(func=_train_metal_command)
