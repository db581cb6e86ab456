"""One reference spectrum with its Fe labels: the common currency of the loaders.

Every loader in :mod:`hyperspy_fe_ml.library` (FEFF / Materials Project, Quanty,
experimental standards) returns :class:`LabelledSpectrum` records, so that the
training code and the validation scripts see one shape whatever the source.

Labels follow the names of the model outputs (see ``docs/design.md``):

``valence``
    mean Fe oxidation state (e.g. 2.67 for Fe3O4);
``coordination_number``
    mean Fe–O coordination number;
``td_fraction``
    fraction of Fe on tetrahedral sites (0 = none).

A label that is not known is ``None``, never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["LABEL_METADATA_NODES", "LabelledSpectrum"]

#: Where :meth:`LabelledSpectrum.to_signal` stores each label in a signal's
#: ``metadata`` (labels that are ``None`` are not written).
LABEL_METADATA_NODES: dict[str, str] = {
    "valence": "Sample.fe_valence",
    "coordination_number": "Sample.fe_coordination_number",
    "td_fraction": "Sample.fe_td_fraction",
}

#: Relative tolerance on the channel width under which an energy grid counts as
#: uniform in :meth:`LabelledSpectrum.to_signal`.
_UNIFORM_RTOL = 1e-6


def _as_label(value: Any, name: str, low: float, high: float) -> float | None:
    """Return ``value`` as a float within ``[low, high]``, or None."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a number or None, got {value!r} of type "
            f"{type(value).__name__}."
        ) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(
            f"{name} must be a finite number in [{low}, {high}] or None, got {value!r}."
        )
    return number


@dataclass(frozen=True, eq=False)
class LabelledSpectrum:
    """A spectrum on an energy grid in eV with its Fe valence/coordination labels.

    The arrays are validated, converted to read-only ``float64`` and sorted by
    energy on construction, so a record, once made, is always well formed.

    Parameters
    ----------
    energy
        Energies in eV, one-dimensional; any order (sorted on construction) but no
        repeated values.
    intensity
        Intensities at ``energy`` (arbitrary units), same length, finite.
    valence
        Mean Fe oxidation state, or None when unknown.
    coordination_number
        Mean Fe–O coordination number, or None when unknown.
    td_fraction
        Fraction of Fe on tetrahedral sites in [0, 1], or None when unknown.
    source
        Kind of origin, e.g. ``"feff"``, ``"quanty"``, ``"experiment"``.
    identifier
        Name of this spectrum within its source (mp-id and site, file name, ...).
    metadata
        Anything else worth keeping (file path, formula, per-site labels, ...).
        Keep it JSON-like (str, numbers, lists, dicts) so it can be saved.

    Raises
    ------
    ValueError
        If the arrays are not 1-D, differ in length, have fewer than two points,
        contain NaN/inf or repeated energies, or a label is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_fe_ml.library.records import LabelledSpectrum
    >>> rec = LabelledSpectrum(
    ...     energy=np.array([710.0, 700.0, 720.0]),
    ...     intensity=np.array([5.0, 1.0, 2.0]),
    ...     valence=3,
    ...     source="example",
    ...     identifier="demo",
    ... )
    >>> rec.energy  # sorted, intensities follow
    array([700., 710., 720.])
    >>> rec.intensity
    array([1., 5., 2.])
    >>> rec.on_grid(np.array([705.0, 730.0]))
    array([ 3., nan])
    """

    energy: np.ndarray
    intensity: np.ndarray
    valence: float | None = None
    coordination_number: float | None = None
    td_fraction: float | None = None
    source: str = ""
    identifier: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f" (spectrum {self.identifier!r})" if self.identifier else ""
        energy = np.asarray(self.energy)
        intensity = np.asarray(self.intensity)
        if np.iscomplexobj(energy) or np.iscomplexobj(intensity):
            raise ValueError(
                f"energy and intensity must be real{where}; take the real part or "
                "the absorption (e.g. -Im(G)/pi) before building the record."
            )
        try:
            energy = energy.astype(np.float64)
            intensity = intensity.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"energy and intensity must be numeric{where}.") from None
        if energy.ndim != 1 or intensity.ndim != 1:
            raise ValueError(
                f"energy and intensity must be 1-D{where}, got shapes "
                f"{energy.shape} and {intensity.shape}."
            )
        if energy.size != intensity.size:
            raise ValueError(
                f"energy and intensity must have the same length{where}, got "
                f"{energy.size} and {intensity.size}."
            )
        if energy.size < 2:
            raise ValueError(
                f"a spectrum needs at least two points{where}, got {energy.size}."
            )
        for name, values in (("energy", energy), ("intensity", intensity)):
            bad = ~np.isfinite(values)
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"{name} contains {int(bad.sum())} non-finite value(s){where}, "
                    f"the first at index {first}; remove or repair those channels."
                )
        order = np.argsort(energy, kind="stable")
        energy = energy[order]
        intensity = intensity[order]
        repeated = np.flatnonzero(np.diff(energy) == 0)
        if repeated.size:
            raise ValueError(
                f"energy has {repeated.size} repeated value(s){where}, e.g. "
                f"{energy[repeated[0]]!r} eV; average or drop the duplicate channels."
            )
        energy.setflags(write=False)
        intensity.setflags(write=False)
        object.__setattr__(self, "energy", energy)
        object.__setattr__(self, "intensity", intensity)
        object.__setattr__(self, "valence", _as_label(self.valence, "valence", 0, 8))
        object.__setattr__(
            self,
            "coordination_number",
            _as_label(self.coordination_number, "coordination_number", 0, 12),
        )
        object.__setattr__(
            self, "td_fraction", _as_label(self.td_fraction, "td_fraction", 0, 1)
        )
        object.__setattr__(self, "source", str(self.source))
        object.__setattr__(self, "identifier", str(self.identifier))
        object.__setattr__(self, "metadata", dict(self.metadata))

    @property
    def labels(self) -> dict[str, float | None]:
        """The three labels as a dict (``None`` where unknown)."""
        return {
            "valence": self.valence,
            "coordination_number": self.coordination_number,
            "td_fraction": self.td_fraction,
        }

    @property
    def is_uniform(self) -> bool:
        """Whether the energy grid has a constant step (relative tolerance 1e-6)."""
        steps = np.diff(self.energy)
        return bool(np.allclose(steps, steps[0], rtol=_UNIFORM_RTOL, atol=0.0))

    def on_grid(self, energy: np.ndarray, fill_value: float = np.nan) -> np.ndarray:
        """Linearly interpolate the intensity onto another energy grid.

        Parameters
        ----------
        energy
            Target energies in eV (any shape, any order).
        fill_value
            Value returned outside ``[self.energy[0], self.energy[-1]]``. NaN by
            default, so that a grid the spectrum does not cover is visible; pass
            0.0 for spectra that are known to vanish outside their range.

        Returns
        -------
        numpy.ndarray
            Interpolated intensities, same shape as ``energy``.

        Examples
        --------
        >>> import numpy as np
        >>> from hyperspy_fe_ml.library.records import LabelledSpectrum
        >>> rec = LabelledSpectrum(np.array([0.0, 2.0]), np.array([0.0, 4.0]))
        >>> rec.on_grid(np.array([-1.0, 1.0, 3.0]), fill_value=0.0)
        array([0., 2., 0.])
        """
        target = np.asarray(energy, dtype=np.float64)
        return np.interp(
            target, self.energy, self.intensity, left=fill_value, right=fill_value
        )

    def to_signal(self):
        """Return the spectrum as a HyperSpy ``FeL23Signal``.

        The signal axis is a uniform axis when the grid has a constant step and a
        non-uniform ``DataAxis`` otherwise; units are eV. Known labels go to
        ``metadata`` under the nodes of :data:`LABEL_METADATA_NODES`
        (``Sample.fe_valence``, ``Sample.fe_coordination_number``,
        ``Sample.fe_td_fraction``); ``General.title`` is the identifier,
        ``Sample.elements`` is ``["Fe"]`` and the record's ``source``, ``identifier``
        and ``metadata`` are copied to ``original_metadata``.

        Returns
        -------
        hyperspy_fe_ml.signals.FeL23Signal
            A new signal; the record is not changed.

        Examples
        --------
        >>> import numpy as np
        >>> from hyperspy_fe_ml.library.records import LabelledSpectrum
        >>> rec = LabelledSpectrum(
        ...     np.linspace(700, 730, 31), np.ones(31), valence=2.0, identifier="x"
        ... )
        >>> s = rec.to_signal()
        >>> s.metadata.Sample.fe_valence
        2.0
        >>> s.axes_manager.signal_axes[0].scale
        1.0
        """
        import hyperspy.api as hs

        name = "Energy loss"
        if self.is_uniform:
            axis = {
                "name": name,
                "units": "eV",
                "size": self.energy.size,
                "offset": float(self.energy[0]),
                "scale": float(
                    (self.energy[-1] - self.energy[0]) / (self.energy.size - 1)
                ),
            }
        else:
            axis = {"name": name, "units": "eV", "axis": self.energy.copy()}
        signal = hs.signals.Signal1D(self.intensity.copy(), axes=[axis])
        signal.set_signal_type("FeL23")
        signal.metadata.General.title = self.identifier or "reference spectrum"
        signal.metadata.set_item("Sample.elements", ["Fe"])
        for label, value in self.labels.items():
            if value is not None:
                signal.metadata.set_item(LABEL_METADATA_NODES[label], value)
        signal.original_metadata.add_dictionary(
            {
                "source": self.source,
                "identifier": self.identifier,
                "metadata": dict(self.metadata),
            }
        )
        return signal
