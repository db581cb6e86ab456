"""Train a state detector (:class:`~hyperspy_fe_ml.state_detector.StateDetector`).

Training spectra: half are the valence model's own training mixtures (none of the
state); the other half mix a simulated spectrum of the state — a metal edge
(:func:`~hyperspy_fe_ml.library.metal.draw_metal_spectra`, shapes drawn over the
literature ranges), or an edrixs spectrum of low-spin Fe2+/Fe3+ or Fe4+
(:func:`~hyperspy_fe_ml.library.unlisted.draw_unlisted_spectra`) — with a
library mixture, per Fe atom, at the calibrated energies, the state's fraction 1
for half of them and uniform in 0-1 otherwise.
Every spectrum then gets the valence model's augmentation, white-line
normalisation and random crops (:func:`~hyperspy_fe_ml.training.dataset.make_block`
does the same for the library alone), and is read by the valence model up to its
features (the principal-component scores its ensemble reads). An ensemble of
scikit-learn ``MLPRegressor`` fits on those features follows; their arrays go into
the detector file, tied to the valence model by its hash.

``fe-ml train-detector --kind metal -o fe_metal.json`` (or ``--kind unlisted -o
fe_unlisted.json``) runs it: about 4 minutes for the default 120 000 spectra on
two cores, plus one for the edrixs spectra.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from hyperspy_fe_ml.model import FeStateModel, MLPMember, load_default_model
from hyperspy_fe_ml.state_detector import StateDetector
from hyperspy_fe_ml.training.dataset import (
    DatasetSettings,
    augment_normalise_crop,
    draw_mixtures,
    make_dataset,
    split_parameter_sets,
)

__all__ = [
    "DetectorTrainingSettings",
    "add_train_detector_command",
    "detector_rates",
    "make_foreign_block",
    "train_state_detector",
]


@dataclass(frozen=True)
class DetectorTrainingSettings:
    """Settings of :func:`train_state_detector`.

    Attributes
    ----------
    n_train
        Training spectra, half of them with metal.
    n_test
        Held-out spectra of each kind for the measured rates.
    kind
        The state to detect: ``"metal"`` (:mod:`hyperspy_fe_ml.library.metal`) or
        ``"unlisted"`` (low-spin Fe2+/Fe3+ and Fe4+,
        :mod:`hyperspy_fe_ml.library.unlisted`, computed with edrixs: needs the
        ``simulate`` extra).
    pure_probability
        Share of the spectra with the state that are all of it.
    hidden
        Hidden layer widths of each member.
    n_members
        Ensemble size.
    max_iter
        Epochs (with early stopping on 10 % of the data).
    flag_fraction
        Fraction above which a pixel is a candidate
        (:func:`~hyperspy_fe_ml.predict.foreign_state_test`): 0.6, where the
        whole metallic test flags 0.3 % of the held-out simulated test set
        (docs/scripts/calibrate_ood.py); no measured standard with a fitted
        background reads above 0.22.
    seed
        Seeds data, splits and fits.
    dataset
        Augmentation and mixtures of the library part (the valence model's).
    """

    n_train: int = 120_000
    n_test: int = 4_000
    kind: str = "metal"
    pure_probability: float = 0.5
    hidden: tuple[int, ...] = (32, 16)
    n_members: int = 1
    max_iter: int = 100
    flag_fraction: float = 0.6
    seed: int = 2026
    dataset: DatasetSettings = field(default_factory=DatasetSettings)


def make_foreign_block(
    n: int,
    energy: np.ndarray,
    set_ids: np.ndarray,
    seed: np.random.SeedSequence | int,
    settings: DatasetSettings | None = None,
    pure_probability: float = 0.5,
    kind: str = "metal",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block of augmented spectra of a foreign state mixed with library ones.

    The foreign part is metal (``kind="metal"``) or a state outside the library
    (``"unlisted"``: low-spin Fe2+/Fe3+, Fe4+; needs edrixs), per Fe atom; all of
    the iron with probability ``pure_probability``, a uniform share otherwise.

    Returns
    -------
    spectra
        Shape ``(n, channels)``, normalised and cropped like
        :func:`~hyperspy_fe_ml.training.dataset.make_block`'s.
    fraction
        Shape ``(n, 1)``: the fraction of the Fe atoms in the foreign state.
    meta
        Shape ``(n, 2)``: zeros (for :func:`make_dataset`).

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_fe_ml.signals import CANONICAL_ENERGY_EV
    >>> ids = split_parameter_sets(seed=0)["train"]
    >>> x, f, _ = make_foreign_block(16, CANONICAL_ENERGY_EV, ids, 0)
    >>> x.shape, bool(np.all((f > 0) & (f <= 1)))
    ((16, 300), True)
    """
    settings = DatasetSettings() if settings is None else settings
    rng = np.random.default_rng(seed)
    library, _, _ = draw_mixtures(n, energy, set_ids, rng, settings)
    foreign = _draw_foreign(kind, energy, n, rng)
    pure = rng.random(n) < pure_probability
    fraction = np.where(pure, 1.0, rng.uniform(0.02, 1.0, n))
    # Both parts are per Fe atom (white-line area = number of 3d holes).
    spectra = fraction[:, None] * foreign + (1.0 - fraction[:, None]) * library
    spectra = augment_normalise_crop(energy, spectra, rng, settings)
    return spectra, fraction[:, None], np.zeros((n, 2))


#: The map each kind of detector gives.
KIND_OUTPUT = {"metal": "metallic_fraction", "unlisted": "unlisted_fraction"}


def _draw_foreign(
    kind: str, energy: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    if kind == "metal":
        from hyperspy_fe_ml.library.metal import draw_metal_spectra

        return draw_metal_spectra(energy, n, rng)
    if kind == "unlisted":
        from hyperspy_fe_ml.library.unlisted import draw_unlisted_spectra

        return draw_unlisted_spectra(energy, n, rng)
    raise ValueError(f"unknown kind {kind!r}: use one of {sorted(KIND_OUTPUT)}")


def _foreign_block_function(pure_probability: float, kind: str):
    def block(n, energy, set_ids, seed, settings):
        return make_foreign_block(
            n, energy, set_ids, seed, settings, pure_probability, kind
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
    settings: DetectorTrainingSettings,
    show_progressbar: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Model features and foreign fractions (one column per output): ``n // 2``
    without, ``n - n // 2`` with a foreign state."""
    if settings.kind == "unlisted":
        from hyperspy_fe_ml.library.unlisted import (
            UNLISTED_TRAINING_SETS,
            unlisted_library,
        )

        unlisted_library(UNLISTED_TRAINING_SETS)  # once, before the blocks
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
        block=_foreign_block_function(settings.pure_probability, settings.kind),
    )
    x0, _ = _features(model, clean)
    x1, keep = _features(model, metal)
    inputs = np.concatenate([x0, x1])
    target = np.concatenate([np.zeros((len(x0), fraction.shape[1])), fraction[keep]])
    return inputs, target


def detector_rates(
    detector: StateDetector, features: np.ndarray, target: np.ndarray
) -> dict[str, float]:
    """Measured rates of a detector on held-out model features.

    Returns
    -------
    dict
        ``false_positive`` (spectra without a foreign state with any output above
        ``flag_fraction``), then per output ``<name>_pure_detected`` (all-foreign
        spectra above it) and ``<name>_mae`` (spectra with some of it), and ``n``.
    """
    fraction, _ = detector.predict_features(features)
    flagged = fraction > detector.flag_fraction
    target = target.reshape(len(target), -1)
    free = np.all(target == 0, axis=1)
    rates: dict[str, float] = {"false_positive": float(flagged[free].any(1).mean())}
    for k, name in enumerate(detector.outputs):
        pure, some = target[:, k] == 1, target[:, k] > 0
        rates[f"{name}_pure_detected"] = float(flagged[pure, k].mean())
        rates[f"{name}_mae"] = float(np.abs(fraction[some, k] - target[some, k]).mean())
    rates["n"] = int(len(target))
    return rates


def train_state_detector(
    model: FeStateModel | None = None,
    settings: DetectorTrainingSettings = DetectorTrainingSettings(),
    *,
    show_progressbar: bool = False,
) -> StateDetector:
    """Train a metal detector for the inputs of ``model`` (default: shipped).

    Examples
    --------
    >>> small = DetectorTrainingSettings(n_train=600, n_test=200, n_members=1,
    ...                               hidden=(8,), max_iter=5)
    >>> detector = train_state_detector(settings=small)  # doctest: +SKIP
    """
    from sklearn.neural_network import MLPRegressor

    model = load_default_model() if model is None else model
    ids = split_parameter_sets(
        seed=settings.seed,
        library=settings.dataset.library,
        octahedral_ten_dq_min=settings.dataset.octahedral_ten_dq_min,
    )
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
        ).fit(features / spread, target if target.shape[1] > 1 else target[:, 0])
        weights = [np.asarray(w, dtype=np.float64) for w in fit.coefs_]
        biases = [np.asarray(b, dtype=np.float64) for b in fit.intercepts_]
        weights[0] = weights[0] / spread[:, None]
        members.append(MLPMember(tuple(weights), tuple(biases)))
    detector = StateDetector(
        members=tuple(members),
        model_sha256=str(model.info.get("arrays_sha256")),
        flag_fraction=settings.flag_fraction,
        outputs=(KIND_OUTPUT[settings.kind],),
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


def _train_detector_command(args: argparse.Namespace) -> int:
    from hyperspy_fe_ml.cli import CommandLineError

    if args.n_train < 1000:
        raise CommandLineError(
            f"--n-train {args.n_train} is too few to train a detector; use at "
            f"least 1000 (default {DetectorTrainingSettings.n_train})."
        )
    settings = DetectorTrainingSettings(
        n_train=args.n_train, seed=args.seed, kind=args.kind
    )
    model = None if args.model is None else FeStateModel.load(args.model)
    detector = train_state_detector(model, settings, show_progressbar=True)
    path = detector.save(args.output)
    rates = detector.info["held_out"]
    print(
        f"wrote {path}: held out, foreign-free flagged "
        f"{100 * rates['false_positive']:.2f} %; "
        + "; ".join(
            f"{name}: pure detected {100 * rates[f'{name}_pure_detected']:.1f} %, "
            f"MAE {rates[f'{name}_mae']:.3f}"
            for name in detector.outputs
        )
    )
    return 0


def add_train_detector_command(subparsers: Any) -> None:
    """``fe-ml train-detector``: train a state detector for a valence model."""
    parser = subparsers.add_parser(
        "train-detector",
        help="train a detector of metallic iron or of low-spin/Fe4+ iron",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("-o", "--output", required=True, help="detector .json")
    parser.add_argument(
        "--kind",
        choices=sorted(KIND_OUTPUT),
        default="metal",
        help="metal, or unlisted (low-spin Fe2+/Fe3+ and Fe4+; needs edrixs)",
    )
    parser.add_argument(
        "--model", default=None, help="valence model (default: shipped)"
    )
    parser.add_argument("--n-train", type=int, default=DetectorTrainingSettings.n_train)
    parser.add_argument("--seed", type=int, default=DetectorTrainingSettings.seed)
    parser.set_defaults(func=_train_detector_command)
