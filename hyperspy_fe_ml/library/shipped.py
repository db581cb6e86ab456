"""The multiplet stick library shipped with the package: file format and loading.

One compressed ``.npz`` file (read with ``allow_pickle=False``), written by
:func:`hyperspy_fe_ml.library.generate.generate_library` and regenerated
deterministically with ``fe-ml simulate``. Reading it needs numpy only (no edrixs).

Schema (version :data:`SCHEMA_VERSION`):

- ``schema_version``, ``edrixs_version``, ``generator`` (JSON text: temperature,
  stick merging, atomic parameters, package version): provenance;
- ``valence``, ``coordination``, ``coordination_number``, ``ten_dq``, ``ds``, ``dt``,
  ``slater_scale``, ``set_id``: one row per parameter set;
- ``offsets``: start of each set's sticks in the stick arrays (length sets + 1);
- ``stick_energy``, ``stick_intensity``, ``stick_edge``: concatenated sticks:
  uncalibrated relative energy (eV), intensity, 3 = L3 / 2 = L2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from hyperspy_fe_ml.fileio import atomic_write, read_npz
from hyperspy_fe_ml.library.multiplet import ParameterSet, StickSpectrum

__all__ = [
    "LIBRARY_FILENAME",
    "SCHEMA_VERSION",
    "MultipletLibrary",
    "extend_library",
    "library_for",
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
    """Write parameter sets and their sticks in the library format.

    The file is written atomically (a temporary file in the same folder replaces
    ``path`` once complete), so an interruption never leaves half a library. A
    ``path`` without the ``.npz`` suffix gets it, as with NumPy.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    if len(parameter_sets) != len(sticks):
        raise ValueError("one stick spectrum per parameter set is needed")
    path = Path(path)
    if path.suffix != ".npz":  # what np.savez_compressed does to a bare name
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = np.array([len(s) for s in sticks], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def cat(name: str, dtype: Any) -> np.ndarray:
        if not sticks:
            return np.zeros(0, dtype=dtype)
        return np.concatenate([getattr(s, name) for s in sticks]).astype(dtype)

    arrays = dict(
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
    # Complete or not at all: an interrupted run leaves any old library intact.
    with atomic_write(path) as handle:
        np.savez_compressed(handle, **arrays)
    return path


def extend_library(
    base: MultipletLibrary,
    sets: list[ParameterSet],
    sticks: list[StickSpectrum],
    path: str | Path,
) -> Path:
    """Write ``base`` with ``sets`` (and their ``sticks``) appended.

    The ids of the base sets keep their meaning; the generator record notes how
    many sets were added and with which edrixs (``"refined"``).

    Examples
    --------
    >>> import tempfile
    >>> lib = load_library()
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = extend_library(
    ...         lib, [lib.parameter_set(0)], [lib.sticks(0)], f"{folder}/x.npz"
    ...     )
    ...     extended = read_library(path)
    >>> len(extended) == len(lib) + 1, extended.generator["refined"]["new_sets"]
    (True, 1)
    """
    from hyperspy_fe_ml.library.multiplet import edrixs_version

    params = [base.parameter_set(i) for i in range(len(base))] + list(sets)
    all_sticks = [base.sticks(i) for i in range(len(base))] + list(sticks)
    generator = dict(base.generator)
    generator["refined"] = {
        "base_sets": len(base),
        "new_sets": len(sets),
        "new_sets_edrixs_version": edrixs_version(),
    }
    return save_library(path, params, all_sticks, generator, base.edrixs_version)


def read_library(path: str | Path) -> MultipletLibrary:
    """Read a library file (no pickle), checking its schema version and layout.

    Raises
    ------
    OSError
        The file cannot be opened (e.g. ``FileNotFoundError``).
    ValueError
        The file is damaged or truncated, has another schema version, misses a
        field, or its arrays do not fit together; the message names the file and
        the fix.
    """
    path = Path(path)
    data = read_npz(path, what="multiplet library")
    regenerate = f"Regenerate it with `fe-ml simulate -o {path}`."
    version = _scalar(data, "schema_version", path, int)
    if version != SCHEMA_VERSION:
        newer = " (made by a newer hyperspy_fe_ml: update the package)"
        raise ValueError(
            f"{path} has library schema version {version}, this package reads "
            f"version {SCHEMA_VERSION}{newer if version > SCHEMA_VERSION else ''}. "
            + regenerate
        )
    fields = (*_TABLE, "offsets", "stick_energy", "stick_intensity", "stick_edge")
    missing = [k for k in fields if k not in data]
    if missing:
        raise ValueError(
            f"{path} is not a multiplet library: missing {missing}. " + regenerate
        )
    table = {k: data[k] for k in _TABLE}
    table["coordination"] = table["coordination"].astype(str)
    _check_layout(path, table, data, regenerate)
    try:
        generator = json.loads(_scalar(data, "generator", path, str))
    except ValueError:
        generator = None
    if not isinstance(generator, dict):
        raise ValueError(
            f"{path}: its 'generator' field is not a JSON object. " + regenerate
        )
    return MultipletLibrary(
        table=table,
        offsets=data["offsets"],
        stick_energy=data["stick_energy"],
        stick_intensity=data["stick_intensity"],
        stick_edge=data["stick_edge"],
        schema_version=version,
        edrixs_version=_scalar(data, "edrixs_version", path, str),
        generator=generator,
    )


def _scalar(data: dict[str, np.ndarray], key: str, path: Path, kind: type) -> Any:
    """A 0-d field of a library file as ``int`` or ``str``."""
    value = data.get(key)
    if value is None or value.shape != ():
        raise ValueError(f"{path}: field {key!r} is missing or not a single value.")
    if kind is int and not np.issubdtype(value.dtype, np.integer):
        raise ValueError(f"{path}: field {key!r} is not an integer.")
    if kind is str and value.dtype.kind != "U":
        raise ValueError(f"{path}: field {key!r} is not text.")
    return kind(value)


def _check_layout(
    path: Path, table: dict[str, np.ndarray], data: dict[str, np.ndarray], fix: str
) -> None:
    """One row per parameter set, offsets that index the sticks, finite sticks."""
    n = table["valence"].shape[0] if table["valence"].ndim == 1 else -1
    problems = [
        f"column {k!r} has shape {v.shape}, not ({n},)"
        for k, v in table.items()
        if v.shape != (n,)
    ]
    for key in ("valence", "coordination_number", "set_id", "offsets", "stick_edge"):
        if not np.issubdtype(data[key].dtype, np.integer):
            problems.append(f"{key!r} is not an integer array")
    for key in (
        "ten_dq",
        "ds",
        "dt",
        "slater_scale",
        "stick_energy",
        "stick_intensity",
    ):
        if data[key].dtype.kind not in "fiu":
            problems.append(f"{key!r} is not a numeric array")
    n_sticks = data["stick_energy"].shape
    if data["stick_energy"].ndim != 1 or any(
        data[k].shape != n_sticks for k in ("stick_intensity", "stick_edge")
    ):
        problems.append("the stick arrays are not 1-D of one length")
    offsets = data["offsets"]
    if not problems and (
        offsets.shape != (n + 1,)
        or offsets[0] != 0
        or offsets[-1] != n_sticks[0]
        or np.any(np.diff(offsets) < 0)
    ):
        problems.append("'offsets' do not index the sticks")
    if not problems and not np.all(np.isin(data["stick_edge"], (2, 3))):
        problems.append("'stick_edge' has labels other than 2 (L2) and 3 (L3)")
    if not problems and not (
        np.all(np.isfinite(data["stick_energy"]))
        and np.all(np.isfinite(data["stick_intensity"]))
    ):
        problems.append("sticks with NaN or inf")
    if problems:
        raise ValueError(
            f"{path} is not a consistent multiplet library: {'; '.join(problems)}. "
            + fix
        )


def library_for(path: str | None = None) -> MultipletLibrary:
    """The library in ``path`` (read once, then cached), or the shipped one.

    Training code names its library by path (``DatasetSettings.library``) so that
    the settings stay plain data that Dask tasks and JSON carry; ``None`` is the
    shipped library.

    Examples
    --------
    >>> library_for(None) is load_library()
    True
    """
    return load_library() if path is None else _read_cached(str(path))


@lru_cache(maxsize=4)
def _read_cached(path: str) -> MultipletLibrary:
    return read_library(path)


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
