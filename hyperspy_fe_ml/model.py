"""The Fe-state model: predict valence, fractions and coordination from spectra.

:class:`FeStateModel` holds everything prediction needs as plain arrays — input
standardisation, a principal-component projection, an ensemble of small multilayer
perceptrons, the conformal calibration of the ensemble spread and the
out-of-distribution threshold — and stores them without pickle: an ``.npz`` file of
arrays (read with ``allow_pickle=False``) beside a JSON file with the metadata and
the SHA-256 of the arrays, checked on every load.

Input spectra are background-removed, resampled onto the model's energy grid and
normalised to unit white-line integral, i.e. the output of
:meth:`~hyperspy_fe_ml.signals.FeL23Signal.preprocess_fe_l23`.
"""

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from hyperspy_fe_ml.fileio import atomic_write, npz_bytes, read_npz

#: What the model predicts, in the order of its output columns.
OUTPUTS: tuple[str, ...] = (
    "valence",
    "fe3_fraction",
    "td_fraction",
    "coordination_number",
)
#: Physical range of each output: predictions are clipped into it.
OUTPUT_RANGES: dict[str, tuple[float, float]] = {
    "valence": (2.0, 4.0),
    "fe3_fraction": (0.0, 1.0),
    "td_fraction": (0.0, 1.0),
    "coordination_number": (4.0, 6.0),
}
#: Normal quantile of a central 90 % interval: a calibrated standard deviation is
#: the 90 % half-width divided by this.
Z90 = 1.6448536269514722
FORMAT_NAME = "hyperspy_fe_ml.FeStateModel"
#: Version 2: the white-line normalisation follows the L3 centroid
#: (:data:`NORMALISATION_SPAN_EV`), cropped spectra are read with their ends held,
#: and the absolute L3 position is an input only of models trained with it
#: (:attr:`FeStateModel.absolute_energy`). Version-1 models read spectra
#: differently and are refused.
FORMAT_VERSION = 2
#: First window of the L3 centroid search, eV, in the frame where the signal's L3
#: sits at its nominal energy (the measured offset of the axis is taken out
#: first): L3, not L2, for pixels up to ±3 eV from the signal's L3.
L3_CENTROID_WINDOW_EV = (702.0, 716.0)
#: Half-width of the re-centred centroid windows and the number of re-centrings.
L3_CENTROID_HALF_WIDTH_EV = 5.0
L3_CENTROID_STEPS = 3
#: Where the model moves each spectrum's L3 centroid before reading its shape, eV.
L3_ALIGN_EV = 709.0
#: White-line normalisation window relative to the L3 centroid, eV: the L3 line
#: starts about 3.9 eV below the centroid (its maximum 0.7-0.95 eV below it, the
#: Fe3+ pre-peak 1.5 eV below that) and the L2 maximum lies 11.9-13.2 eV above it
#: in the library (Fe2+ Oh 11.9, Fe3+ Oh 13.0, Fe3+ Td 13.2): a window every
#: spectrum covering 3 eV below its L3 maximum to 2 eV above its L2 maximum
#: reaches (:data:`~hyperspy_fe_ml.energy_axis.CONTRACT_SPAN_EV`).
NORMALISATION_SPAN_EV = (-3.5, 13.5)
#: The shipped default model, in ``hyperspy_fe_ml/data`` (written by
#: ``fe-ml train -o hyperspy_fe_ml/data/fe_state_model.json``).
DEFAULT_MODEL_FILE = "fe_state_model.json"
#: SHA-256 of the shipped model's arrays, pinned here: a changed file is refused.
DEFAULT_MODEL_SHA256 = (
    "0d91743cb004cfc96fe9ea129e4080351a3958e85d9d3e57ad29c5b3c03dc05b"
)


class ModelFileError(ValueError):
    """A model file is missing, malformed, or does not match its recorded hash."""


@dataclass(frozen=True)
class MLPMember:
    """One multilayer perceptron of the ensemble (ReLU hidden layers, linear out)."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = x @ w + b
            if k < len(self.weights) - 1:
                np.maximum(x, 0.0, out=x)
        return x


def member_arrays(members: tuple[MLPMember, ...]) -> dict[str, np.ndarray]:
    """The members' weights as named float32 arrays for an ``.npz`` file."""
    arrays = {}
    for m, member in enumerate(members):
        for k, (w, b) in enumerate(zip(member.weights, member.biases, strict=True)):
            arrays[f"member{m}_w{k}"] = w.astype(np.float32)
            arrays[f"member{m}_b{k}"] = b.astype(np.float32)
    return arrays


def members_from_arrays(
    data: dict[str, np.ndarray], n_members: int, n_layers: int
) -> tuple[MLPMember, ...]:
    """The members written by :func:`member_arrays` (``KeyError`` if one is
    missing)."""
    return tuple(
        MLPMember(
            weights=tuple(
                data[f"member{m}_w{k}"].astype(np.float64) for k in range(n_layers)
            ),
            biases=tuple(
                data[f"member{m}_b{k}"].astype(np.float64) for k in range(n_layers)
            ),
        )
        for m in range(n_members)
    )


class _FusedEnsemble:
    """The ensemble in float32, its members' first layers fused into one product.

    Every member reads the same inputs, so their first weight matrices side by
    side make one wide matrix product instead of one per member; the later layers
    run per member on their slice of the hidden units.
    """

    def __init__(self, first_w, first_b, widths, rest) -> None:
        self.first_w = first_w
        self.first_b = first_b
        self.widths = widths
        self.rest = rest

    @classmethod
    def from_members(cls, members: tuple[MLPMember, ...]) -> "_FusedEnsemble":
        f32 = np.float32
        first_w = np.ascontiguousarray(
            np.concatenate([m.weights[0] for m in members], axis=1), dtype=f32
        )
        first_b = np.concatenate([m.biases[0] for m in members]).astype(f32)
        widths = [m.weights[0].shape[1] for m in members]
        rest = [
            [
                (w.astype(f32), b.astype(f32))
                for w, b in zip(m.weights[1:], m.biases[1:], strict=True)
            ]
            for m in members
        ]
        return cls(first_w, first_b, widths, rest)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Outputs of every member, shape ``(members, n, outputs)``, float32."""
        hidden = features @ self.first_w
        hidden += self.first_b
        single_layer = not self.rest or not self.rest[0]
        if not single_layer:
            np.maximum(hidden, 0.0, out=hidden)
        outputs = []
        start = 0
        for width, layers in zip(self.widths, self.rest, strict=True):
            x = hidden[:, start : start + width]
            start += width
            for k, (w, b) in enumerate(layers):
                x = x @ w
                x += b
                if k < len(layers) - 1:
                    np.maximum(x, 0.0, out=x)
            outputs.append(x)
        return np.stack(outputs)


@dataclass(frozen=True)
class FeStateModel:
    """Ensemble model from preprocessed Fe L2,3 spectra to the Fe state.

    Attributes
    ----------
    energy
        Energy grid (eV) the input spectra must be on.
    input_mean, input_scale
        Per-channel standardisation of the aligned spectra.
    centroid_mean, centroid_scale
        Standardisation of the measured L3 centroid, the one input that carries
        the absolute energy.
    components
        Principal axes, shape ``(n_components, channels)``, applied to the
        standardised spectra.
    component_scale
        Standard deviation of each principal component in the training set.
    members
        The ensemble.
    target_mean, target_scale
        De-standardisation of the outputs (order :data:`OUTPUTS`).
    interval_scale
        Conformal factor per output: the 90 % interval half-width is this times the
        ensemble standard deviation (plus ``interval_floor``).
    interval_floor
        Smallest 90 % half-width per output (the ensemble may agree on a wrong
        answer).
    ood_threshold
        Out-of-distribution score above which a spectrum is flagged.
    measured_std
        Standard deviation per output (order :data:`OUTPUTS`) that the model's
        simulation-calibrated one misses on measured spectra — the gap between
        simulation and experiment, calibrated on labelled measured standards
        (:mod:`hyperspy_fe_ml.measured_uncertainty`). Maps of measured
        spectra add it in quadrature; zeros (no such calibration) add nothing.
    info
        Provenance: training data, settings, versions, metrics (JSON-serialisable).
    absolute_energy
        Whether the measured L3 centroid (absolute energy) is an input. A model
        trained with it can only be used on calibrated axes
        (``predict_fe_state(energy_calibrated=True)``); the shipped model reads
        the shape of the spectrum only (see ``docs/model_card.md``).
    """

    energy: np.ndarray
    input_mean: np.ndarray
    input_scale: np.ndarray
    centroid_mean: float
    centroid_scale: float
    components: np.ndarray
    component_scale: np.ndarray
    members: tuple[MLPMember, ...]
    target_mean: np.ndarray
    target_scale: np.ndarray
    interval_scale: np.ndarray
    interval_floor: np.ndarray
    ood_threshold: float
    info: dict[str, Any] = field(default_factory=dict)
    absolute_energy: bool = False
    measured_std: np.ndarray = field(default_factory=lambda: np.zeros(len(OUTPUTS)))

    def measured_std_by_output(self) -> dict[str, float]:
        """:attr:`measured_std` by output name (zeros: not calibrated)."""
        values = np.broadcast_to(np.asarray(self.measured_std, float), len(OUTPUTS))
        return {name: float(v) for name, v in zip(OUTPUTS, values, strict=True)}

    @property
    def n_channels(self) -> int:
        """Number of energy channels the model reads."""
        return int(self.energy.size)

    # -- prediction ------------------------------------------------------------------

    def standardise(
        self, spectra: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Spectra with their L3 centroid moved to :data:`L3_ALIGN_EV`, standardised.

        Parameters
        ----------
        spectra
            Shape ``(n, channels)`` on :attr:`energy`, background removed (any
            scale: they are normalised here); NaN at either end where a spectrum
            does not reach (those channels are held at the nearest value).

        Returns
        -------
        inputs
            ``(aligned - input_mean) / input_scale``, shape ``(n, channels)``.
        norm2
            ``sum(inputs**2)`` per spectrum.
        centroid
            The measured L3 centroid per spectrum, eV (NaN when none).
        """
        return _align(self.energy, spectra, self.input_mean, self.input_scale)

    def features(self, spectra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model inputs and the out-of-distribution score of each spectrum.

        Each spectrum is shifted so that its L3 centroid sits at
        :data:`L3_ALIGN_EV` (its shape then no longer depends on the energy
        offset), standardised and projected on the principal components; the
        inputs are those scores, plus the standardised centroid itself for a
        model trained on absolute energies (:attr:`absolute_energy`).

        The OOD score combines the root-mean-square, in units of the training
        spread, of the standardised spectrum's part the components do not explain
        and the Mahalanobis length of its scores: spectra unlike any training
        spectrum score high on one or the other. Rows without an L3 centroid are
        NaN.
        """
        return self._features(*self.standardise(spectra))

    def _features(
        self, inputs: np.ndarray, norm2: np.ndarray, centroid: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        # The principal axes are orthonormal, so the unexplained part's norm is
        # sqrt(|x|^2 - |scores|^2): no reconstruction needed.
        components = self.components.astype(inputs.dtype, copy=False)
        scores = inputs @ components.T
        explained = np.einsum("ij,ij->i", scores, scores, dtype=np.float64)
        residual2 = np.maximum(norm2 - explained, 0.0) / self.n_channels
        scale = self.component_scale.astype(inputs.dtype, copy=False)
        mahalanobis = np.sqrt(
            np.einsum("ij,ij->i", scores / scale, scores / scale, dtype=np.float64)
            / scores.shape[1]
        )
        ood = np.hypot(np.sqrt(residual2), mahalanobis)
        if not self.absolute_energy:
            return scores, ood
        position = (centroid - self.centroid_mean) / self.centroid_scale
        features = np.concatenate(
            [scores, position[:, None].astype(scores.dtype)], axis=1
        )
        return features, ood

    def predict(self, spectra: np.ndarray) -> dict[str, np.ndarray]:
        """Predict the Fe state of each spectrum.

        Parameters
        ----------
        spectra
            Shape ``(n, channels)`` on :attr:`energy`, background removed (any
            scale). NaN at the ends marks channels a cropped spectrum does not
            reach (read with the ends held); rows with a non-finite value between
            finite ones give NaN outputs.

        Returns
        -------
        dict of numpy.ndarray
            Each of shape ``(n,)``: the :data:`OUTPUTS`, each with a calibrated
            standard deviation ``<name>_std`` (90 % interval = ±1.645 std),
            ``ood_score`` and the boolean ``ood_flag``.

        Raises
        ------
        ValueError
            When ``spectra`` is not 2-D with :attr:`n_channels` columns.

        Examples
        --------
        >>> import numpy as np
        >>> from hyperspy_fe_ml.library import reference_spectrum
        >>> model = load_default_model()
        >>> fe3 = reference_spectrum(3, "Oh", model.energy)
        >>> p = model.predict(fe3[None, :])
        >>> bool(abs(p["valence"][0] - 3.0) < 0.25)
        True
        """
        spectra = np.asarray(spectra, dtype=np.float64)
        if spectra.ndim != 2 or spectra.shape[1] != self.n_channels:
            raise ValueError(
                f"The model reads (n, {self.n_channels}) spectra on its energy grid "
                f"({self.energy[0]:.1f}–{self.energy[-1]:.1f} eV); got shape "
                f"{spectra.shape}. Preprocess with `s.preprocess_fe_l23()` or "
                "resample onto `model.energy`."
            )
        inputs, norm2, centroid = self.standardise(spectra)
        inputs = np.nan_to_num(inputs, nan=0.0).astype(np.float32)
        return self.predict_standardised(inputs, norm2, centroid)

    def predict_standardised(
        self,
        inputs: np.ndarray,
        norm2: np.ndarray,
        centroid: np.ndarray,
        *,
        return_features: bool = False,
    ) -> dict[str, np.ndarray]:
        """Predict from standardised, L3-aligned spectra (the fast path of maps).

        What :meth:`predict` does after :meth:`standardise`; prediction over
        spectrum images gets its inputs from the fused kernel
        :func:`~hyperspy_fe_ml.kernels.model_inputs.prepare_model_inputs` and
        calls this directly. The ensemble runs in float32 with its first layers
        fused into one matrix product.

        Parameters
        ----------
        inputs
            Shape ``(n, channels)``, float32 or float64, as from :meth:`standardise`.
        norm2
            ``sum(inputs**2)`` per row.
        centroid
            L3 centroid per row, eV; rows where it (or ``norm2``) is NaN give NaN.
        return_features
            Also return the ensemble's inputs (``"features"``, shape ``(n, k)``,
            float32, NaN rows where nothing is predicted): heads such as the
            metal detector read them.

        Returns
        -------
        dict of numpy.ndarray
            As :meth:`predict`.
        """
        n = len(inputs)
        result = {name: np.full(n, np.nan) for name in OUTPUTS}
        result.update({f"{name}_std": np.full(n, np.nan) for name in OUTPUTS})
        result["ood_score"] = np.full(n, np.nan)
        result["ood_flag"] = np.ones(n, dtype=bool)
        good = np.isfinite(centroid) & np.isfinite(norm2)
        if return_features:
            width = self.components.shape[0] + int(self.absolute_energy)
            result["features"] = np.full((n, width), np.nan, dtype=np.float32)
        if not np.any(good):
            return result
        rows = inputs[good] if not np.all(good) else inputs
        features, ood = self._features(
            np.ascontiguousarray(rows, dtype=np.float32), norm2[good], centroid[good]
        )
        if return_features:
            result["features"][good] = features
        outputs = self._ensemble(features).astype(np.float64)
        outputs = outputs * self.target_scale + self.target_mean
        mean = outputs.mean(axis=0)
        spread = outputs.std(axis=0)
        half_width = self.interval_scale * spread + self.interval_floor
        for k, name in enumerate(OUTPUTS):
            lo, hi = OUTPUT_RANGES[name]
            result[name][good] = np.clip(mean[:, k], lo, hi)
            result[f"{name}_std"][good] = half_width[:, k] / Z90
        result["ood_score"][good] = ood
        result["ood_flag"][good] = ood > self.ood_threshold
        return result

    @cached_property
    def _ensemble(self) -> "_FusedEnsemble":
        return _FusedEnsemble.from_members(self.members)

    # -- storage -------------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "energy": self.energy,
            "input_mean": self.input_mean,
            "input_scale": self.input_scale,
            "centroid": np.array([self.centroid_mean, self.centroid_scale]),
            "components": self.components,
            "component_scale": self.component_scale,
            "target_mean": self.target_mean,
            "target_scale": self.target_scale,
            "interval_scale": self.interval_scale,
            "interval_floor": self.interval_floor,
        }
        arrays.update(member_arrays(self.members))
        return arrays

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.npz`` (arrays) and ``<path>.json`` (metadata + hash).

        Both files are written to temporary files beside their targets and moved
        into place only once complete (:func:`~hyperspy_fe_ml.fileio.atomic_write`),
        so an interrupted save leaves the previous model (if any) as it was and
        never half a file.

        Parameters
        ----------
        path
            File name; the suffix is replaced by ``.npz`` and ``.json``.

        Returns
        -------
        pathlib.Path
            The JSON file, which :meth:`load` reads.
        """
        path = Path(path)
        npz, meta = path.with_suffix(".npz"), path.with_suffix(".json")
        npz.parent.mkdir(parents=True, exist_ok=True)
        payload = npz_bytes(self._arrays())
        document = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "absolute_energy": bool(self.absolute_energy),
            "outputs": list(OUTPUTS),
            "n_members": len(self.members),
            "n_layers": len(self.members[0].weights) if self.members else 0,
            "ood_threshold": float(self.ood_threshold),
            "measured_std": self.measured_std_by_output(),
            "arrays": npz.name,
            "arrays_sha256": hashlib.sha256(payload).hexdigest(),
            "info": {k: v for k, v in self.info.items() if k != "arrays_sha256"},
        }
        text = json.dumps(document, indent=2, sort_keys=True, default=_jsonable)
        # Both temporary files are complete before either replaces its target.
        with atomic_write(meta, "w") as meta_handle, atomic_write(npz) as npz_handle:
            npz_handle.write(payload)
            meta_handle.write(text)
        return meta

    @classmethod
    def load(cls, path: str | Path, *, sha256: str | None = None) -> "FeStateModel":
        """Read a model written by :meth:`save`, checking its hash first.

        Nothing is unpickled and nothing is trusted: the JSON fields, the array
        file's hash, its archive structure and every array's shape are checked
        before a model is built, so a damaged or hand-edited file fails here with
        a message, not later inside a prediction.

        Parameters
        ----------
        path
            The ``.json`` file (or the common stem).
        sha256
            Expected SHA-256 of the array file; ``None`` trusts the hash recorded in
            the JSON file (which still catches corruption and edits of the arrays).

        Raises
        ------
        ModelFileError
            When a file is missing, not a model, of an unknown format version, its
            arrays do not match the hash, or they do not fit together.
        """
        meta = Path(path).with_suffix(".json")
        if not meta.is_file():
            raise ModelFileError(
                f"No model file at {meta}. Pass the .json file written by "
                "FeStateModel.save, or use the default model (model=None)."
            )
        try:
            document = json.loads(meta.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as error:  # also UnicodeDecodeError
            raise ModelFileError(
                f"{meta} is not a model file ({type(error).__name__}: {error}). "
                "Pass the .json file written by FeStateModel.save."
            ) from None
        if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
            raise ModelFileError(
                f"{meta} is not a hyperspy_fe_ml model file (no '{FORMAT_NAME}' "
                "format tag). Pass a file written by FeStateModel.save."
            )
        if document.get("format_version") != FORMAT_VERSION:
            raise ModelFileError(
                f"{meta} has model format version {document.get('format_version')!r},"
                f" this package reads version {FORMAT_VERSION} (version 2 changed "
                "how spectra are normalised and aligned before the model reads "
                "them). Retrain with `fe-ml train` or use the matching "
                "hyperspy_fe_ml."
            )
        fields = _model_document_fields(meta, document, sha256)
        npz = meta.with_name(fields["arrays"])
        if not npz.is_file():
            raise ModelFileError(f"The array file {npz} of model {meta} is missing.")
        expected = fields["sha256"]
        actual = _sha256(npz)
        if actual != expected:
            raise ModelFileError(
                f"The arrays of model {meta} do not match their hash (expected "
                f"{expected[:12]}…, found {actual[:12]}…): the file is corrupt or was "
                "changed. Reinstall the package or retrain with `fe-ml train`."
            )
        try:
            data = read_npz(npz, what=f"array file of model {meta.name}")
        except ValueError as error:
            raise ModelFileError(str(error)) from None
        n_members, n_layers = fields["n_members"], fields["n_layers"]
        _check_model_arrays(meta, data, n_members, n_layers, fields["absolute_energy"])
        members = members_from_arrays(data, n_members, n_layers)
        return cls(
            energy=data["energy"],
            input_mean=data["input_mean"],
            input_scale=data["input_scale"],
            centroid_mean=float(data["centroid"][0]),
            centroid_scale=float(data["centroid"][1]),
            components=data["components"],
            component_scale=data["component_scale"],
            members=tuple(members),
            target_mean=data["target_mean"],
            target_scale=data["target_scale"],
            interval_scale=data["interval_scale"],
            interval_floor=data["interval_floor"],
            ood_threshold=fields["ood_threshold"],
            info={**fields["info"], "arrays_sha256": actual},
            absolute_energy=fields["absolute_energy"],
            measured_std=fields["measured_std"],
        )


def align_on_l3(
    energy: np.ndarray, spectra: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """L3 centroid of each spectrum and the spectra normalised and aligned.

    What the model reads before its standardisation: ends a cropped spectrum
    does not reach (NaN) held at the nearest value, division by the white-line
    integral over :data:`NORMALISATION_SPAN_EV` about the L3 centroid, and a
    shift putting the centroid at :data:`L3_ALIGN_EV`
    (:func:`~hyperspy_fe_ml.kernels.model_inputs.align_rows`).

    Returns
    -------
    centroid
        Shape ``(n,)``, eV (NaN where no L3 line is found).
    aligned
        Shape ``(n, channels)``; NaN rows where no L3 line is found.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_fe_ml.library import reference_spectrum
    >>> g = np.arange(700.0, 730.0, 0.1)
    >>> y = reference_spectrum(3, "Oh", g)
    >>> c, aligned = align_on_l3(g, y[None, :])
    >>> bool(abs(c[0] - 710.4) < 0.1), bool(np.argmax(aligned[0]) < np.argmax(y))
    (True, True)
    """
    n_channels = np.asarray(energy).size
    aligned, _, centroid = _align(
        energy, spectra, np.zeros(n_channels), np.ones(n_channels)
    )
    return centroid, aligned


def _align(
    energy: np.ndarray, spectra: np.ndarray, mean: np.ndarray, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`~hyperspy_fe_ml.kernels.model_inputs.align_rows` with the model's
    windows."""
    from hyperspy_fe_ml.kernels.model_inputs import align_rows

    return align_rows(
        np.ascontiguousarray(energy, dtype=np.float64),
        np.ascontiguousarray(spectra, dtype=np.float64),
        L3_CENTROID_WINDOW_EV,
        L3_CENTROID_HALF_WIDTH_EV,
        L3_CENTROID_STEPS,
        NORMALISATION_SPAN_EV,
        L3_ALIGN_EV,
        np.ascontiguousarray(mean, dtype=np.float64),
        np.ascontiguousarray(scale, dtype=np.float64),
    )


def default_model_path() -> Path:
    """Path of the shipped default model's JSON file."""
    return Path(str(resources.files("hyperspy_fe_ml") / "data" / DEFAULT_MODEL_FILE))


def library_model_path(model_path: str | Path) -> Path:
    """Where ``fe-ml train --standards`` writes the library-only model beside
    ``model_path`` (``x.json`` → ``x_library.json``)."""
    path = Path(model_path)
    return path.with_name(path.stem + "_library.json")


@lru_cache(maxsize=1)
def load_default_model() -> FeStateModel:
    """The shipped default model, checked against its pinned hash.

    Raises
    ------
    ModelFileError
        When the shipped files are missing or changed.

    Examples
    --------
    >>> model = load_default_model()
    >>> model.n_channels
    300
    """
    return FeStateModel.load(default_model_path(), sha256=DEFAULT_MODEL_SHA256 or None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


#: Largest ensemble / depth a model file may declare (the shipped one has 5 / 3).
_MAX_MEMBERS = 1000
#: The arrays a model file holds besides the ensemble's, and their dimensions.
_MODEL_ARRAYS = {
    "energy": 1,
    "input_mean": 1,
    "input_scale": 1,
    "centroid": 1,
    "components": 2,
    "component_scale": 1,
    "target_mean": 1,
    "target_scale": 1,
    "interval_scale": 1,
    "interval_floor": 1,
}


def _model_document_fields(
    meta: Path, document: dict[str, Any], sha256: str | None
) -> dict[str, Any]:
    """The JSON fields :meth:`FeStateModel.load` uses, type-checked."""
    fix = "Pass a file written by FeStateModel.save, or retrain with `fe-ml train`."
    name = document.get("arrays")
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
        raise ModelFileError(
            f"{meta}: 'arrays' must name the array file beside it, got {name!r}. " + fix
        )
    expected = sha256 or document.get("arrays_sha256")
    if isinstance(expected, str):
        expected = expected.strip().lower()
    if not isinstance(expected, str) or not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise ModelFileError(
            f"{meta}: the SHA-256 of the arrays ('arrays_sha256' or the sha256 "
            f"argument) must be 64 lower-case hex digits, got {expected!r}. " + fix
        )
    counts = {}
    for key in ("n_members", "n_layers"):
        value = document.get(key)
        if type(value) is not int or not 1 <= value <= _MAX_MEMBERS:
            raise ModelFileError(
                f"{meta}: {key!r} must be a whole number from 1 to {_MAX_MEMBERS}, "
                f"got {value!r}. " + fix
            )
        counts[key] = value
    threshold = document.get("ood_threshold")
    if isinstance(threshold, int) and not isinstance(threshold, bool):
        threshold = float(threshold) if abs(threshold) < 1e300 else math.inf
    if not isinstance(threshold, float) or not math.isfinite(threshold):
        raise ModelFileError(
            f"{meta}: 'ood_threshold' must be a finite number, got {threshold!r}. "
            + fix
        )
    measured = document.get("measured_std", dict.fromkeys(OUTPUTS, 0.0))
    values = measured.values() if isinstance(measured, dict) else ()
    if (
        not isinstance(measured, dict)
        or set(measured) != set(OUTPUTS)
        or not all(type(v) in (int, float) and 0 <= v < math.inf for v in values)
    ):
        raise ModelFileError(
            f"{meta}: 'measured_std' must map each of {list(OUTPUTS)} to a finite "
            f"standard deviation >= 0, got {measured!r}. " + fix
        )
    info = document.get("info", {})
    if not isinstance(info, dict):
        raise ModelFileError(f"{meta}: 'info' must be a JSON object. " + fix)
    absolute_energy = document.get("absolute_energy")
    if not isinstance(absolute_energy, bool):
        raise ModelFileError(
            f"{meta}: 'absolute_energy' must be true or false, got "
            f"{absolute_energy!r}. " + fix
        )
    return {
        "arrays": name,
        "absolute_energy": absolute_energy,
        "sha256": expected,
        "ood_threshold": float(threshold),
        "info": info,
        "measured_std": np.array([float(measured[name]) for name in OUTPUTS]),
        **counts,
    }


def _check_model_arrays(
    meta: Path,
    data: dict[str, np.ndarray],
    n_members: int,
    n_layers: int,
    absolute_energy: bool,
) -> None:
    """Every array a model needs, floating point, finite, of shapes that fit."""
    names = list(_MODEL_ARRAYS) + [
        f"member{m}_{kind}{k}"
        for m in range(n_members)
        for k in range(n_layers)
        for kind in ("w", "b")
    ]
    missing = [key for key in names if key not in data]
    problems = [f"missing arrays {missing[:5]}"] if missing else []
    for key in names:
        if key in missing:
            continue
        array = data[key]
        ndim = _MODEL_ARRAYS.get(key, 2 if "_w" in key else 1)
        if array.dtype.kind != "f" or array.ndim != ndim:
            problems.append(f"{key!r} is not a {ndim}-D floating-point array")
        elif not np.all(np.isfinite(array)):
            problems.append(f"{key!r} holds NaN or inf")
    if not problems:
        n = data["energy"].shape[0]
        k = data["components"].shape[0]
        expected = {
            "input_mean": (n,),
            "input_scale": (n,),
            "centroid": (2,),
            "components": (k, n),
            "component_scale": (k,),
            **{key: (len(OUTPUTS),) for key in list(_MODEL_ARRAYS)[6:]},
        }
        problems += [
            f"{key!r} has shape {data[key].shape}, not {shape}"
            for key, shape in expected.items()
            if data[key].shape != shape
        ]
        if n < 2 or not np.all(np.diff(data["energy"]) > 0):
            problems.append("'energy' is not an increasing grid")
        for key in ("input_scale", "component_scale"):
            if not problems and np.any(data[key] == 0):
                problems.append(f"{key!r} has zeros (it divides)")
        if not problems and data["centroid"][1] == 0:
            problems.append("the centroid scale is zero (it divides)")
        for m in range(n_members):
            # The component scores (and the L3 centroid).
            width = k + int(absolute_energy)
            for layer in range(n_layers):
                w = data[f"member{m}_w{layer}"]
                b = data[f"member{m}_b{layer}"]
                out = len(OUTPUTS) if layer == n_layers - 1 else w.shape[1]
                if w.shape != (width, out) or b.shape != (out,):
                    problems.append(
                        f"member {m} layer {layer} has weights {w.shape} and biases "
                        f"{b.shape}, not ({width}, {out}) and ({out},)"
                    )
                    break
                width = out
    if problems:
        raise ModelFileError(
            f"The arrays of model {meta} do not fit together: "
            f"{'; '.join(problems[:5])}. Retrain with `fe-ml train` or reinstall "
            "the package."
        )
