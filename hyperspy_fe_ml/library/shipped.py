"""The multiplet stick library shipped with the package: file format and loading.

One compressed ``.npz`` file (read with ``allow_pickle=False``), written by
:func:`hyperspy_fe_ml.library.generate.generate_library` and regenerated
deterministically with ``fe-ml simulate``. Reading it needs numpy only (no edrixs).

Schema (version :data:`SCHEMA_VERSION`):

``schema_version``, ``edrixs_version``, ``generator`` (JSON text: temperature,
stick merging, atomic parameters, package version)
    provenance;
``valence``, ``coordination``, ``coordination_number``, ``ten_dq``, ``ds``, ``dt``,
``slater_scale``, ``set_id``
    one row per parameter set;
``offsets``
    start of each set's sticks in the stick arrays (length sets + 1);
``stick_energy``, ``stick_intensity``, ``stick_edge``
    concatenated sticks: uncalibrated relative energy (eV), intensity, 3 = L3 / 2 = L2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from hyperspy_fe_ml.library.multiplet import ParameterSet, StickSpectrum

__all__ = [
    "LIBRARY_FILENAME",
    "SCHEMA_VERSION",
    "MultipletLibrary",
    "load_library",
    "shipped_library_path",
]

#: Version of the file layout; bump it when a field changes meaning.
SCHEMA_VERSION = 1
#: Name of the shipped file inside ``hyperspy_fe_ml/data``.
LIBRARY_FILENAME = "fe_l23_multiplet_v1.npz"

_TABLE = (
    "valence",
    "coordination",
    "coordination_number",
    "ten_dq",
    "ds",
    "dt",
    "slater_scale",
    "set_id",
)


def shipped_library_path() -> Path:
    """Path of the library file inside the installed package."""
    return Path(str(resources.files("hyperspy_fe_ml") / "data" / LIBRARY_FILENAME))


@dataclass(frozen=True)
class MultipletLibrary:
    """Stick spectra of many parameter sets, as read from a library file.

    Attributes
    ----------
    table
        Column arrays, one row per parameter set (see the module docstring).
    offsets, stick_energy, stick_intensity, stick_edge
        The concatenated sticks.
    generator
        Generation settings and provenance.
    """

    table: dict[str, np.ndarray]
    offsets: np.ndarray
    stick_energy: np.ndarray
    stick_intensity: np.ndarray
    stick_edge: np.ndarray
    schema_version: int
    edrixs_version: str
    generator: dict[str, Any]

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    def sticks(self, index: int) -> StickSpectrum:
        """Sticks of the parameter set in row ``index``."""
        a, b = int(self.offsets[index]), int(self.offsets[index + 1])
        return StickSpectrum(
            self.stick_energy[a:b].astype(np.float64),
            self.stick_intensity[a:b].astype(np.float64),
            self.stick_edge[a:b],
        )

    def parameter_set(self, index: int) -> ParameterSet:
        """The :class:`ParameterSet` of row ``index``."""
        t = self.table
        return ParameterSet(
            valence=int(t["valence"][index]),
            coordination=str(t["coordination"][index]),
            ten_dq=float(t["ten_dq"][index]),
            ds=float(t["ds"][index]),
            dt=float(t["dt"][index]),
            slater_scale=float(t["slater_scale"][index]),
        )

    def select(self, **criteria: Any) -> np.ndarray:
        """Row indices whose table columns equal the given values.

        Examples
        --------
        >>> lib = load_library()
        >>> rows = lib.select(valence=3, coordination="Td")
        >>> bool(len(rows) > 0)
        True
        """
        mask = np.ones(len(self), dtype=bool)
        for key, value in criteria.items():
            if key not in self.table:
                raise ValueError(
                    f"unknown library column {key!r}: use one of {list(self.table)}"
                )
            mask &= self.table[key] == value
        return np.flatnonzero(mask)


def save_library(
    path: str | Path,
    parameter_sets: list[ParameterSet],
    sticks: list[StickSpectrum],
    generator: dict[str, Any],
    edrixs_version: str,
) -> Path:
    """Write parameter sets and their sticks in the library format."""
    if len(parameter_sets) != len(sticks):
        raise ValueError("one stick spectrum per parameter set is needed")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = np.array([len(s) for s in sticks], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def cat(name: str, dtype: Any) -> np.ndarray:
        if not sticks:
            return np.zeros(0, dtype=dtype)
        return np.concatenate([getattr(s, name) for s in sticks]).astype(dtype)

    np.savez_compressed(
        path,
        schema_version=np.int64(SCHEMA_VERSION),
        edrixs_version=np.array(edrixs_version),
        generator=np.array(json.dumps(generator, sort_keys=True)),
        valence=np.array([p.valence for p in parameter_sets], dtype=np.int8),
        coordination=np.array([p.coordination for p in parameter_sets], dtype="<U8"),
        coordination_number=np.array(
            [p.coordination_number for p in parameter_sets], dtype=np.int8
        ),
        ten_dq=np.array([p.ten_dq for p in parameter_sets]),
        ds=np.array([p.ds for p in parameter_sets]),
        dt=np.array([p.dt for p in parameter_sets]),
        slater_scale=np.array([p.slater_scale for p in parameter_sets]),
        set_id=np.arange(len(parameter_sets), dtype=np.int32),
        offsets=offsets,
        stick_energy=cat("energy", np.float32),
        stick_intensity=cat("intensity", np.float32),
        stick_edge=cat("edge", np.int8),
    )
    return path


def read_library(path: str | Path) -> MultipletLibrary:
    """Read a library file (no pickle) and check its schema version.

    Raises
    ------
    ValueError
        The file has another schema version or misses a field.
    """
    with np.load(Path(path), allow_pickle=False) as data:
        version = int(data["schema_version"]) if "schema_version" in data else -1
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"{path} has library schema version {version}, this package reads "
                f"version {SCHEMA_VERSION}: regenerate it with `fe-ml simulate`"
            )
        missing = [
            k
            for k in (*_TABLE, "offsets", "stick_energy", "stick_intensity")
            if k not in data
        ]
        if missing:
            raise ValueError(f"{path} is not a multiplet library: missing {missing}")
        table = {k: data[k] for k in _TABLE}
        table["coordination"] = table["coordination"].astype(str)
        return MultipletLibrary(
            table=table,
            offsets=data["offsets"],
            stick_energy=data["stick_energy"],
            stick_intensity=data["stick_intensity"],
            stick_edge=data["stick_edge"],
            schema_version=version,
            edrixs_version=str(data["edrixs_version"]),
            generator=json.loads(str(data["generator"])),
        )


@lru_cache(maxsize=1)
def load_library() -> MultipletLibrary:
    """The library shipped with the package (read once, then cached).

    Examples
    --------
    >>> lib = load_library()
    >>> lib.schema_version == SCHEMA_VERSION
    True
    """
    path = shipped_library_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"the shipped multiplet library {path} is missing: reinstall the "
            "package or regenerate it with `fe-ml simulate -o "
            f"{path}`"
        )
    return read_library(path)
