"""Fit a :class:`~hyperspy_fe_ml.model.FeStateModel` to labelled spectra.

scikit-learn does the fitting — :class:`~sklearn.decomposition.PCA` for the
projection and :class:`~sklearn.neural_network.MLPRegressor` for each ensemble
member, trained on bootstrap resamples with its own seed — and the fitted weights are
copied into the model's plain arrays, so that the shipped model needs neither pickle
nor scikit-learn's objects to predict.

Calibration is split-conformal on a separate calibration set (spectra whose library
parameter sets the training never saw): for each output the 90 % interval
half-width is ``c * (spread + s0)``, with ``spread`` the ensemble standard
deviation, ``s0`` a quarter of its median (so a confident ensemble still gets a
finite interval) and ``c`` the finite-sample 90 % quantile of
``|error| / (spread + s0)``.
"""

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from hyperspy_fe_ml.model import OUTPUTS, FeStateModel, MLPMember, align_on_l3


@dataclass(frozen=True)
class FitSettings:
    """Settings of :func:`fit_fe_state_model`.

    Attributes
    ----------
    n_components
        Principal components kept (the spectra's information sits in a few tens).
    hidden_layers
        Sizes of the hidden layers of each perceptron.
    n_members
        Ensemble size (its spread is the raw uncertainty).
    alpha
        L2 penalty of the perceptrons.
    max_iter
        Epochs at most (early stopping on 10 % of each member's data).
    batch_size, learning_rate_init
        Adam mini-batch size and step.
    bootstrap
        Train each member on a bootstrap resample (diversity of the ensemble).
    coverage
        Nominal coverage of the calibrated intervals.
    ood_quantile
        Quantile of the calibration set's out-of-distribution scores that sets the
        flag threshold.
    seed
        Seed of everything random.
    output_weights
        Relative weight of each output (order :data:`~hyperspy_fe_ml.model.OUTPUTS`)
        in the training loss.
    input_scaling
        Standardisation of the input channels: ``"channel"`` (each by its own
        spread), ``"global"`` (one spread for all) or ``"sqrt"`` (between the two).
    absolute_energy
        Give the ensemble the measured L3 centroid (absolute energy) as an input
        besides the aligned shape. Such a model may only read calibrated axes
        (``predict_fe_state(energy_calibrated=True)``); the default model reads the
        shape only (the model card compares both).

    The default size (48 components, hidden layers 96 and 48) was chosen from a
    comparison on the default split: (256, 128) with 64 components gave valence
    RMSE 0.084 and Fe3+ MAE 0.035 at SNR >= 10 for 10.9 µs per spectrum, (96, 48)
    with 48 components 0.088 and 0.036 for 5.2 µs (inference with the whole
    preprocessing path, one thread); see ``docs/performance.md``.
    """

    n_components: int = 48
    hidden_layers: tuple[int, ...] = (96, 48)
    n_members: int = 5
    alpha: float = 1e-4
    max_iter: int = 300
    batch_size: int = 256
    learning_rate_init: float = 1e-3
    bootstrap: bool = True
    coverage: float = 0.90
    ood_quantile: float = 0.995
    seed: int = 0
    output_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    input_scaling: str = "channel"
    absolute_energy: bool = False


def fit_fe_state_model(
    energy: np.ndarray,
    train_spectra: np.ndarray,
    train_targets: np.ndarray,
    calibration_spectra: np.ndarray,
    calibration_targets: np.ndarray,
    settings: FitSettings = FitSettings(),
    info: dict[str, Any] | None = None,
) -> FeStateModel:
    """Fit the projection, the ensemble, the interval calibration and the OOD threshold.

    Parameters
    ----------
    energy
        Energy grid of the spectra, eV, shape ``(channels,)``.
    train_spectra, calibration_spectra
        Background-free spectra, shape ``(n, channels)``, any scale; NaN only at
        the ends, where a cropped spectrum does not reach.
    train_targets, calibration_targets
        Shape ``(n, len(OUTPUTS))``, columns in the order of
        :data:`~hyperspy_fe_ml.model.OUTPUTS`.
    settings
        See :class:`FitSettings`.
    info
        Provenance to store in the model (merged with the settings).

    Returns
    -------
    FeStateModel

    Raises
    ------
    ValueError
        On shape mismatches or non-finite training data.
    """
    from sklearn.decomposition import PCA
    from sklearn.neural_network import MLPRegressor

    energy = np.asarray(energy, dtype=np.float64)
    x_train = _checked(train_spectra, energy, "train_spectra")
    x_cal = _checked(calibration_spectra, energy, "calibration_spectra")
    y_train = _checked_targets(train_targets, x_train.shape[0], "train_targets")
    y_cal = _checked_targets(calibration_targets, x_cal.shape[0], "calibration_targets")

    centroid, aligned = align_on_l3(energy, x_train)
    usable = np.isfinite(centroid)
    if not np.all(usable):
        raise ValueError(
            f"{int((~usable).sum())} training spectra have no L3 line to align on; "
            "drop them before fitting."
        )
    centroid_mean = float(centroid.mean())
    centroid_scale = float(max(centroid.std(), 1e-3))
    x_train = aligned
    input_mean = x_train.mean(axis=0)
    input_scale = x_train.std(axis=0)
    input_scale = np.maximum(input_scale, 1e-6 * max(float(input_scale.max()), 1e-12))
    if settings.input_scaling not in ("channel", "global", "sqrt"):
        raise ValueError(
            f"input_scaling={settings.input_scaling!r}: use 'channel', 'global' "
            "or 'sqrt'."
        )
    if settings.input_scaling == "global":
        input_scale = np.full_like(input_scale, float(np.sqrt(np.mean(input_scale**2))))
    elif settings.input_scaling == "sqrt":
        input_scale = np.sqrt(input_scale * float(np.sqrt(np.mean(input_scale**2))))
    z_train = (x_train - input_mean) / input_scale
    n_components = min(settings.n_components, *z_train.shape)
    pca = PCA(n_components=n_components, random_state=settings.seed)
    scores = pca.fit_transform(z_train)
    inputs = scores
    if settings.absolute_energy:
        position = (centroid - centroid_mean) / centroid_scale
        inputs = np.concatenate([scores, position[:, None]], axis=1)
    # PCA centres on its own mean; fold it into input_mean so that prediction is a
    # plain projection of the standardised spectrum.
    input_mean = input_mean + pca.mean_ * input_scale
    components = pca.components_.astype(np.float64)
    component_scale = np.sqrt(np.maximum(pca.explained_variance_, 1e-12))

    target_mean = y_train.mean(axis=0)
    target_scale = np.maximum(y_train.std(axis=0), 1e-6)
    target_scale = target_scale / np.sqrt(np.asarray(settings.output_weights, float))
    t_train = (y_train - target_mean) / target_scale

    rng = np.random.default_rng(settings.seed)
    members = []
    epochs = []
    for m in range(settings.n_members):
        if settings.bootstrap:
            rows = rng.integers(0, inputs.shape[0], inputs.shape[0])
        else:
            rows = np.arange(inputs.shape[0])
        regressor = MLPRegressor(
            hidden_layer_sizes=settings.hidden_layers,
            alpha=settings.alpha,
            batch_size=min(settings.batch_size, rows.size),
            learning_rate_init=settings.learning_rate_init,
            max_iter=settings.max_iter,
            early_stopping=rows.size >= 50,
            n_iter_no_change=15,
            random_state=settings.seed * 1000 + m,
        )
        regressor.fit(inputs[rows], t_train[rows])
        epochs.append(int(regressor.n_iter_))
        members.append(
            MLPMember(
                weights=tuple(np.asarray(w, np.float64) for w in regressor.coefs_),
                biases=tuple(np.asarray(b, np.float64) for b in regressor.intercepts_),
            )
        )

    provisional = FeStateModel(
        energy=energy,
        input_mean=input_mean,
        input_scale=input_scale,
        centroid_mean=centroid_mean,
        centroid_scale=centroid_scale,
        components=components,
        component_scale=component_scale,
        members=tuple(members),
        target_mean=target_mean,
        target_scale=target_scale,
        interval_scale=np.ones(len(OUTPUTS)),
        interval_floor=np.zeros(len(OUTPUTS)),
        ood_threshold=math.inf,
        absolute_energy=settings.absolute_energy,
    )
    mean, spread, ood = ensemble_outputs(provisional, x_cal)
    usable = np.isfinite(ood) & np.all(np.isfinite(mean), axis=1)
    mean, spread, ood, y_cal = mean[usable], spread[usable], ood[usable], y_cal[usable]
    interval_scale, interval_floor = conformal_calibration(
        np.abs(mean - y_cal), spread, settings.coverage
    )
    return replace(
        provisional,
        interval_scale=interval_scale,
        interval_floor=interval_floor,
        ood_threshold=float(np.quantile(ood, settings.ood_quantile)),
        info={
            "fit_settings": asdict(settings),
            "explained_variance": float(pca.explained_variance_ratio_.sum()),
            "n_train": int(x_train.shape[0]),
            "n_calibration": int(x_cal.shape[0]),
            "epochs": epochs,
            **(info or {}),
        },
    )


def ensemble_outputs(
    model: FeStateModel, spectra: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unclipped ensemble mean, ensemble standard deviation and OOD score.

    Returns
    -------
    mean, spread
        Shape ``(n, len(OUTPUTS))``.
    ood
        Shape ``(n,)``.
    """
    inputs, ood = model.features(np.asarray(spectra, dtype=np.float64))
    outputs = np.stack([member(inputs.copy()) for member in model.members])
    outputs = outputs * model.target_scale + model.target_mean
    return outputs.mean(axis=0), outputs.std(axis=0), ood


def conformal_calibration(
    abs_error: np.ndarray, spread: np.ndarray, coverage: float = 0.90
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised split-conformal factors for intervals ``c * (spread + s0)``.

    Parameters
    ----------
    abs_error
        ``|prediction - truth|`` on the calibration set, shape ``(n, k)``.
    spread
        Ensemble standard deviation, same shape.
    coverage
        Target coverage.

    Returns
    -------
    scale, floor
        Per output: the interval half-width is ``scale * spread + floor``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> spread = rng.uniform(0.5, 2.0, (4000, 1))
    >>> error = np.abs(rng.normal(0.0, spread))
    >>> scale, floor = conformal_calibration(error, spread, 0.9)
    >>> bool(np.mean(error <= scale * spread + floor) >= 0.9)
    True
    """
    n = abs_error.shape[0]
    s0 = 0.25 * np.median(spread, axis=0) + 1e-9
    ratio = abs_error / (spread + s0)
    level = min(1.0, math.ceil((n + 1) * coverage) / n)
    scale = np.quantile(ratio, level, axis=0, method="higher")
    return scale, scale * s0


def _checked(spectra: np.ndarray, energy: np.ndarray, name: str) -> np.ndarray:
    spectra = np.asarray(spectra, dtype=np.float64)
    if spectra.ndim != 2 or spectra.shape[1] != energy.size:
        raise ValueError(
            f"{name} must have shape (n, {energy.size}) to match the energy grid; "
            f"got {spectra.shape}."
        )
    from hyperspy_fe_ml.kernels.model_inputs import contiguous_finite

    if not np.all(contiguous_finite(spectra)):
        raise ValueError(
            f"{name} contains a row with NaN or inf between finite values (or "
            "none finite): NaN may only pad the ends of a cropped spectrum. Drop "
            "those spectra before fitting."
        )
    return spectra


def _checked_targets(targets: np.ndarray, n: int, name: str) -> np.ndarray:
    targets = np.asarray(targets, dtype=np.float64)
    if targets.shape != (n, len(OUTPUTS)):
        raise ValueError(
            f"{name} must have shape ({n}, {len(OUTPUTS)}) with columns {OUTPUTS}; "
            f"got {targets.shape}."
        )
    if not np.all(np.isfinite(targets)):
        raise ValueError(f"{name} contains NaN or inf.")
    return targets
