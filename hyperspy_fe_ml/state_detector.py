"""Fe states the valence model cannot read: metallic iron, low-spin Fe, Fe4+.

The valence model knows high-spin Fe2+ and Fe3+ multiplets only. A metallic Fe
L2,3 edge (one broad, asymmetric line per edge, no multiplet structure:
:mod:`hyperspy_fe_ml.library.metal`) would be read as a broad Fe2+; low-spin
Fe2+/Fe3+ and Fe4+ (:mod:`hyperspy_fe_ml.library.unlisted`) as some mixture of
the states it knows. A :class:`StateDetector` is a head on the valence model: a
small ensemble of multilayer perceptrons reading the features the valence
ensemble reads, giving the fraction of the iron in such a state (per Fe atom,
0-1). Each was trained by
:func:`hyperspy_fe_ml.training.state_detector.train_state_detector` on mixtures of
simulated spectra of the state and multiplet-library spectra with every
augmentation of the valence model's training (noise, offsets,
background-subtraction artefacts, plural scattering, crops). Two are shipped,
one for metallic iron and one for the states outside the library
(:func:`load_default_detectors`); how a pixel is flagged is
:func:`~hyperspy_fe_ml.predict.foreign_state_test`.

Storage as for the valence model: ``.npz`` arrays and a ``.json`` document with
their SHA-256, no pickle; the shipped detectors are checked against pinned
hashes.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from hyperspy_fe_ml.fileio import atomic_write, read_npz
from hyperspy_fe_ml.model import (
    FeStateModel,
    MLPMember,
    ModelFileError,
    _FusedEnsemble,
    member_arrays,
    members_from_arrays,
)

__all__ = [
    "DETECTOR_FORMAT",
    "OUTPUT_NAMES",
    "SHIPPED_DETECTORS",
    "StateDetector",
    "load_default_detectors",
    "predict_state_fractions",
]

DETECTOR_FORMAT = "hyperspy_fe_ml.StateDetector"
#: What a detector's outputs are, in order: the fraction of the Fe atoms that is
#: metallic, and that is in a state outside the multiplet library (low-spin Fe2+
#: or Fe3+, Fe4+: :mod:`hyperspy_fe_ml.library.unlisted`).
OUTPUT_NAMES: tuple[str, ...] = ("metallic_fraction", "unlisted_fraction")
#: The shipped detectors (in ``hyperspy_fe_ml/data``) and the SHA-256 of their
#: arrays, checked on load.
SHIPPED_DETECTORS: dict[str, str] = {
    "fe_metal.json": (
        "a1dd17b07c17445a350a8f6eeb93e579c53cf2c9bb2b82ad0ec4b87ac76ffcff"
    ),
    "fe_unlisted.json": (
        "7660317b6dbe406b0b9b51e5ee4609e2937751a80dc68c84ce727dad418c7fba"
    ),
}


@dataclass(frozen=True, eq=False)
class StateDetector:
    """Fraction of metallic Fe from the valence model's features of a spectrum.

    A head on the valence model: it reads the principal-component scores the
    ensemble reads (:meth:`~hyperspy_fe_ml.model.FeStateModel.predict_standardised`
    with ``return_features=True``), so it costs one small perceptron per pixel.

    Attributes
    ----------
    members
        The ensemble; each gives one fraction per output (0-1 after clipping).
    model_sha256
        SHA-256 of the arrays of the valence model whose features it reads.
    flag_fraction
        Fraction above which a pixel is a metallic candidate
        (:func:`~hyperspy_fe_ml.predict.foreign_state_test`).
    info
        Provenance (training settings, measured rates).
    outputs
        Names of the outputs (the first ones of :data:`OUTPUT_NAMES`).
    """

    members: tuple[MLPMember, ...]
    model_sha256: str
    flag_fraction: float = 0.6
    info: dict[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = OUTPUT_NAMES[:1]
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n_features(self) -> int:
        """Number of features each spectrum needs."""
        return int(self.members[0].weights[0].shape[0])

    def reads(self, model: FeStateModel) -> bool:
        """Whether this detector reads ``model``'s features (same model arrays)."""
        return model.info.get("arrays_sha256") == self.model_sha256

    def predict_features(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The state fractions and their ensemble spread from model features.

        Parameters
        ----------
        features
            Shape ``(n, n_features)``; NaN rows give NaN.

        Returns
        -------
        fraction, spread
            Shape ``(n, len(outputs))`` each: mean over the ensemble clipped to
            0-1, and the ensemble standard deviation.
        """
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(
                f"features have shape {features.shape}; the detector reads "
                f"{self.n_features} per spectrum (the features of the valence model "
                "it was trained for)."
            )
        x = np.ascontiguousarray(features, dtype=np.float32)
        outputs = self._ensemble()(x)
        with np.errstate(invalid="ignore"):
            fraction = np.clip(outputs.mean(axis=0), 0.0, 1.0).astype(np.float64)
            spread = outputs.std(axis=0).astype(np.float64)
        return fraction, spread

    def predict(
        self, model: FeStateModel, spectra: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The state fractions of background-removed spectra on ``model.energy``.

        Examples
        --------
        >>> import numpy as np
        >>> from hyperspy_fe_ml.library import reference_spectrum
        >>> from hyperspy_fe_ml.library.metal import metal_spectrum
        >>> from hyperspy_fe_ml.model import load_default_model
        >>> model, detector = load_default_model(), load_default_detectors()[0]
        >>> e = model.energy
        >>> f, _ = detector.predict(model, np.stack([reference_spectrum(3, "Oh", e),
        ...                                          metal_spectrum(e)]))
        >>> bool(f[0, 0] < 0.2), bool(f[1, 0] > 0.8)
        (True, True)
        """
        if not self.reads(model):
            raise ValueError(
                "This state detector reads the features of another valence model; "
                "train one for this model with `fe-ml train-detector --model MODEL`."
            )
        p = model.predict_standardised(
            *model.standardise(spectra), return_features=True
        )
        return self.predict_features(p["features"])

    def _ensemble(self) -> _FusedEnsemble:
        """The members in float32, first layers fused (as the valence model's)."""
        if "ensemble" not in self._cache:
            self._cache["ensemble"] = _FusedEnsemble.from_members(self.members)
        return self._cache["ensemble"]

    # -- storage -------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.npz`` and ``<path>.json`` atomically; returns the JSON.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> d = load_default_detectors()[0]
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     p = d.save(pathlib.Path(tmp) / "det.json")
        ...     StateDetector.load(p).flag_fraction == d.flag_fraction
        True
        """
        path = Path(path)
        npz, meta = path.with_suffix(".npz"), path.with_suffix(".json")
        npz.parent.mkdir(parents=True, exist_ok=True)
        arrays = member_arrays(self.members)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        payload = buffer.getvalue()
        document = {
            "format": DETECTOR_FORMAT,
            "n_members": len(self.members),
            "n_layers": len(self.members[0].weights),
            "flag_fraction": float(self.flag_fraction),
            "model_sha256": self.model_sha256,
            "outputs": list(self.outputs),
            "arrays": npz.name,
            "arrays_sha256": hashlib.sha256(payload).hexdigest(),
            "info": self.info,
        }
        with atomic_write(meta, "w") as meta_handle, atomic_write(npz) as npz_handle:
            npz_handle.write(payload)
            meta_handle.write(json.dumps(document, indent=2, sort_keys=True))
        return meta

    @classmethod
    def load(cls, path: str | Path, *, sha256: str | None = None) -> StateDetector:
        """Read a detector written by :meth:`save`, checking its hash first.

        Raises
        ------
        ModelFileError
            When a file is missing, not a detector, or its arrays do not match
            their hash or each other.
        """
        meta = Path(path).with_suffix(".json")
        if not meta.is_file():
            raise ModelFileError(
                f"No state-detector file at {meta}. Pass the .json written by "
                "StateDetector.save (fe-ml train-detector)."
            )
        try:
            document = json.loads(meta.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as error:
            raise ModelFileError(f"{meta} is not a detector file ({error}).") from None
        if not isinstance(document, dict) or document.get("format") != DETECTOR_FORMAT:
            raise ModelFileError(
                f"{meta} is not a state-detector file (no '{DETECTOR_FORMAT}' tag)."
            )
        try:
            n_members = int(document["n_members"])
            n_layers = int(document["n_layers"])
            flag_fraction = float(document["flag_fraction"])
            model_sha256 = str(document["model_sha256"])
            outputs = tuple(
                str(name) for name in document.get("outputs", OUTPUT_NAMES[:1])
            )
            npz = meta.with_name(Path(str(document["arrays"])).name)
            expected = sha256 or str(document["arrays_sha256"])
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"{meta}: missing or bad field {error}.") from None
        if not npz.is_file():
            raise ModelFileError(f"The array file {npz} of {meta} is missing.")
        actual = hashlib.sha256(npz.read_bytes()).hexdigest()
        if actual != expected:
            raise ModelFileError(
                f"The arrays of {meta} do not match their hash (expected "
                f"{expected[:12]}…, found {actual[:12]}…): reinstall the package or "
                "retrain with `fe-ml train-detector`."
            )
        try:
            data = read_npz(npz, what=f"array file of {meta.name}")
            members = members_from_arrays(data, n_members, n_layers)
            detector = cls(
                members=members,
                model_sha256=model_sha256,
                flag_fraction=flag_fraction,
                info=dict(document.get("info") or {}),
                outputs=outputs,
            )
        except (KeyError, ValueError) as error:
            raise ModelFileError(f"{npz}: {error}") from None
        layers_fit = all(
            m.weights[k].shape[1] == m.weights[k + 1].shape[0]
            and m.biases[k].shape == (m.weights[k].shape[1],)
            for m in members
            for k in range(n_layers - 1)
        )
        if (
            n_members < 1
            or not layers_fit
            or any(m.weights[0].shape[0] != detector.n_features for m in members)
            or any(m.weights[-1].shape[1] != len(outputs) for m in members)
            or not set(outputs) <= set(OUTPUT_NAMES)
        ):
            raise ModelFileError(f"The arrays of {meta} do not fit together.")
        return detector


def predict_state_fractions(
    detectors: tuple[StateDetector, ...], features: np.ndarray
) -> dict[str, np.ndarray]:
    """Every detector's fractions from the same features, in one pass.

    The members of all ``detectors`` run as one fused ensemble (their first
    layers side by side in one matrix product), as the valence ensemble does:
    what each block of a map pays for the heads.

    Returns
    -------
    dict
        Output name → fraction (mean over its detector's members, clipped to
        0-1), shape ``(n,)``; NaN where a row of ``features`` is.

    Examples
    --------
    >>> import numpy as np
    >>> detectors = load_default_detectors()
    >>> f = predict_state_fractions(detectors, np.zeros((2, detectors[0].n_features)))
    >>> sorted(f), f["metallic_fraction"].shape
    (['metallic_fraction', 'unlisted_fraction'], (2,))
    """
    if not detectors:
        return {}
    for detector in detectors:
        if features.ndim != 2 or features.shape[1] != detector.n_features:
            detector.predict_features(features)  # raises, naming the shapes
    outputs = _fused(detectors)(np.ascontiguousarray(features, dtype=np.float32))
    fractions = {}
    start = 0
    for detector in detectors:
        members = outputs[start : start + len(detector.members)]
        start += len(detector.members)
        mean = members.mean(axis=0)
        with np.errstate(invalid="ignore"):
            for k, name in enumerate(detector.outputs):
                fractions[name] = np.clip(mean[:, k], 0.0, 1.0).astype(np.float64)
    return fractions


@lru_cache(maxsize=8)
def _fused(detectors: tuple[StateDetector, ...]) -> _FusedEnsemble:
    members = tuple(m for detector in detectors for m in detector.members)
    return _FusedEnsemble.from_members(members)


@lru_cache(maxsize=1)
def load_default_detectors() -> tuple[StateDetector, ...]:
    """The shipped detectors, each checked against its pinned hash.

    Examples
    --------
    >>> [d.outputs for d in load_default_detectors()]
    [('metallic_fraction',), ('unlisted_fraction',)]
    """
    folder = Path(str(resources.files("hyperspy_fe_ml") / "data"))
    return tuple(
        StateDetector.load(folder / name, sha256=sha256)
        for name, sha256 in SHIPPED_DETECTORS.items()
    )
