"""Metallic iron: the fraction of Fe atoms in the metal, per pixel.

The valence model knows Fe2+ and Fe3+ multiplets only; a metallic Fe L2,3 edge
(one broad, asymmetric line per edge, no multiplet structure:
:mod:`hyperspy_fe_ml.library.metal`) would be read as a broad Fe2+. The
:class:`MetalDetector` is a small ensemble of multilayer perceptrons that reads
the same aligned, normalised spectrum the valence model reads and gives the
fraction of the iron that is metallic (per Fe atom, 0-1). It was trained by
:func:`hyperspy_fe_ml.training.metal_detector.train_metal_detector` on mixtures of
simulated metal edges and multiplet-library spectra with every augmentation of
the valence model's training (noise, offsets, background-subtraction artefacts,
plural scattering, crops); pixels above :attr:`MetalDetector.flag_fraction` are
flagged: the valence read there does not apply.

Storage as for the valence model: ``.npz`` arrays and a ``.json`` document with
their SHA-256, no pickle; the shipped detector is checked against a pinned hash.
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
from hyperspy_fe_ml.model import MLPMember, ModelFileError

__all__ = [
    "DETECTOR_FORMAT",
    "MetalDetector",
    "default_detector_path",
    "load_default_detector",
]

DETECTOR_FORMAT = "hyperspy_fe_ml.MetalDetector"
#: SHA-256 of the shipped detector's arrays (checked on load).
DEFAULT_DETECTOR_SHA256 = (
    "1e422a4d12943b79dfe3b4eb22c3e81bbe459b6638f89b97b78aea38099a5294"
)


@dataclass(frozen=True, eq=False)
class MetalDetector:
    """Fraction of metallic Fe from an aligned, normalised Fe L2,3 spectrum.

    Attributes
    ----------
    energy
        Model grid, eV (that of the valence model it was trained with).
    input_mean, input_scale
        Standardisation of the aligned spectra (those of that valence model).
    components
        Principal axes of the standardised training spectra, ``(k, channels)``.
    members
        The ensemble; each gives the metallic fraction (0-1 after clipping).
    flag_fraction
        Fraction above which a pixel is flagged as metallic.
    info
        Provenance (training settings, measured rates).
    """

    energy: np.ndarray
    input_mean: np.ndarray
    input_scale: np.ndarray
    components: np.ndarray
    members: tuple[MLPMember, ...]
    flag_fraction: float = 0.5
    info: dict[str, Any] = field(default_factory=dict)
    _cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False
    )

    def predict_standardised(
        self, inputs: np.ndarray, mean: np.ndarray, scale: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Metallic fraction and its ensemble spread from standardised inputs.

        Parameters
        ----------
        inputs
            Shape ``(n, channels)``: aligned, normalised spectra standardised as
            ``(aligned - mean) / scale`` (the valence model's inputs); rows with
            NaN give NaN.
        mean, scale
            That standardisation, shape ``(channels,)``.

        Returns
        -------
        fraction, spread
            Shape ``(n,)`` each: mean over the ensemble clipped to 0-1, and the
            ensemble standard deviation.

        Examples
        --------
        >>> import numpy as np
        >>> from hyperspy_fe_ml.library import reference_spectrum
        >>> from hyperspy_fe_ml.model import load_default_model
        >>> model, detector = load_default_model(), load_default_detector()
        >>> x, _, _ = model.standardise(reference_spectrum(3, "Oh", model.energy)[None])
        >>> f, _ = detector.predict_standardised(x, model.input_mean,
        ...                                      model.input_scale)
        >>> bool(f[0] < 0.2)
        True
        """
        if inputs.shape[-1] != self.energy.size:
            raise ValueError(
                f"inputs have {inputs.shape[-1]} channels; the detector reads "
                f"{self.energy.size} (the model grid it was trained on)."
            )
        weights, offset = self._folded(mean, scale)
        n = inputs.shape[0]
        fraction = np.full(n, np.nan)
        spread = np.full(n, np.nan)
        good = np.all(np.isfinite(inputs), axis=1)
        if not np.any(good):
            return fraction, spread
        features = inputs[good].astype(np.float32, copy=False) @ weights + offset
        outputs = np.stack([member(features)[:, 0] for member in self._members32()])
        fraction[good] = np.clip(outputs.mean(axis=0), 0.0, 1.0)
        spread[good] = outputs.std(axis=0)
        return fraction, spread

    def _folded(
        self, mean: np.ndarray, scale: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Principal-axis projection of inputs standardised by another
        ``mean``/``scale``, folded into one matrix and offset (cached)."""
        mean_in = np.ascontiguousarray(mean, dtype=np.float64)
        scale_in = np.ascontiguousarray(scale, dtype=np.float64)
        key = mean_in.tobytes() + scale_in.tobytes()
        if key not in self._cache:
            weights = (self.components * (scale_in / self.input_scale)).T
            offset = self.components @ ((mean_in - self.input_mean) / self.input_scale)
            self._cache[key] = (weights.astype(np.float32), offset.astype(np.float32))
        return self._cache[key]

    def _members32(self) -> tuple[MLPMember, ...]:
        key = b"members32"
        if key not in self._cache:
            self._cache[key] = tuple(
                MLPMember(
                    tuple(w.astype(np.float32) for w in m.weights),
                    tuple(b.astype(np.float32) for b in m.biases),
                )
                for m in self.members
            )
        return self._cache[key]

    # -- storage -------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.npz`` and ``<path>.json`` atomically; returns the JSON.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> d = load_default_detector()
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     p = d.save(pathlib.Path(tmp) / "det.json")
        ...     MetalDetector.load(p).flag_fraction == d.flag_fraction
        True
        """
        path = Path(path)
        npz, meta = path.with_suffix(".npz"), path.with_suffix(".json")
        npz.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "energy": self.energy,
            "input_mean": self.input_mean,
            "input_scale": self.input_scale,
            "components": self.components,
        }
        for m, member in enumerate(self.members):
            for k, (w, b) in enumerate(zip(member.weights, member.biases, strict=True)):
                arrays[f"member{m}_w{k}"] = w.astype(np.float32)
                arrays[f"member{m}_b{k}"] = b.astype(np.float32)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        payload = buffer.getvalue()
        document = {
            "format": DETECTOR_FORMAT,
            "n_members": len(self.members),
            "n_layers": len(self.members[0].weights),
            "flag_fraction": float(self.flag_fraction),
            "arrays": npz.name,
            "arrays_sha256": hashlib.sha256(payload).hexdigest(),
            "info": self.info,
        }
        with atomic_write(meta, "w") as meta_handle, atomic_write(npz) as npz_handle:
            npz_handle.write(payload)
            meta_handle.write(json.dumps(document, indent=2, sort_keys=True))
        return meta

    @classmethod
    def load(cls, path: str | Path, *, sha256: str | None = None) -> MetalDetector:
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
                f"No metal-detector file at {meta}. Pass the .json written by "
                "MetalDetector.save (fe-ml train-metal)."
            )
        try:
            document = json.loads(meta.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as error:
            raise ModelFileError(f"{meta} is not a detector file ({error}).") from None
        if not isinstance(document, dict) or document.get("format") != DETECTOR_FORMAT:
            raise ModelFileError(
                f"{meta} is not a metal-detector file (no '{DETECTOR_FORMAT}' tag)."
            )
        try:
            n_members = int(document["n_members"])
            n_layers = int(document["n_layers"])
            flag_fraction = float(document["flag_fraction"])
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
                "retrain with `fe-ml train-metal`."
            )
        try:
            data = read_npz(npz, what=f"array file of {meta.name}")
            members = tuple(
                MLPMember(
                    tuple(
                        data[f"member{m}_w{k}"].astype(np.float64)
                        for k in range(n_layers)
                    ),
                    tuple(
                        data[f"member{m}_b{k}"].astype(np.float64)
                        for k in range(n_layers)
                    ),
                )
                for m in range(n_members)
            )
            detector = cls(
                energy=data["energy"],
                input_mean=data["input_mean"],
                input_scale=data["input_scale"],
                components=data["components"],
                members=members,
                flag_fraction=flag_fraction,
                info=dict(document.get("info") or {}),
            )
        except (KeyError, ValueError) as error:
            raise ModelFileError(f"{npz}: {error}") from None
        width = detector.components.shape[0]
        channels = detector.energy.size
        if detector.components.shape[1] != channels or any(
            m.weights[0].shape[0] != width or m.weights[-1].shape[1] != 1
            for m in members
        ):
            raise ModelFileError(f"The arrays of {meta} do not fit together.")
        return detector


def default_detector_path() -> Path:
    """Path of the shipped detector's JSON file."""
    return Path(str(resources.files("hyperspy_fe_ml") / "data" / "fe_metal.json"))


@lru_cache(maxsize=1)
def load_default_detector() -> MetalDetector:
    """The shipped metal detector, checked against its pinned hash."""
    return MetalDetector.load(
        default_detector_path(), sha256=DEFAULT_DETECTOR_SHA256 or None
    )
