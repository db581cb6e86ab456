"""Experimental Fe L2,3 reference spectra ("standards") with known labels.

Two file kinds are read:

- **CSV with label headers** (the layout of the project's development standards)::

      # compound: FeCl2
      # valence: 2.0
      # td_fraction: 0.0
      # technique: STXM XAS baseline-free
      # source: RyanMoffet/RyansSTXMScripts
      energy_eV,intensity
      675.0000,2.62378e-05
      ...

  ``# key: value`` lines (any keys; ``valence``, ``td_fraction`` and
  ``coordination_number`` are read as labels, ``none``/``unknown``/empty meaning
  unknown), then a header row whose first column names the energy and its unit
  (``energy_eV`` or ``energy_keV``) and whose ``intensity`` column (else the second
  one) is the spectrum, then one row per energy. The grid may be non-uniform.
- **EMSA/MSA** (``.msa``, ``.ems``) through RosettaSciIO's reader. MSA files have no
  label fields: labels come from the keyword arguments, else from ``key: value`` or
  ``key=value`` text in the ``#TITLE``/``#COMMENT`` fields, else, for the valence
  only, from an Fe–O(–H) formula in the title (``Fe2O3`` → 3, ``Fe3O4`` → 2.67,
  ``FeOOH`` → 3; charge balance with O²⁻ and H⁺); whatever is not found is None.

Keyword arguments always win over what the file says; ``metadata["label_sources"]``
records where each label came from.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hyperspy_fe_ml.library.records import LabelledSpectrum

__all__ = ["STANDARD_SUFFIXES", "read_standard", "read_standards_dir"]

#: File suffixes :func:`read_standards_dir` reads.
STANDARD_SUFFIXES: tuple[str, ...] = (".csv", ".msa", ".ems")

_LABEL_KEYS = {
    "valence": "valence",
    "fe_valence": "valence",
    "oxidation_state": "valence",
    "td_fraction": "td_fraction",
    "coordination_number": "coordination_number",
    "coordination": "coordination_number",
    "cn": "coordination_number",
}
_UNKNOWN = {"", "none", "null", "nan", "unknown", "na", "n/a", "?"}
_CSV_FIX = (
    "Expected '# key: value' header lines, then a column header such as "
    "'energy_eV,intensity', then one 'energy,intensity' row per channel."
)


def _label_value(raw: str, key: str, where: str) -> float | None:
    text = raw.strip()
    if text.lower() in _UNKNOWN:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"{where}: the '{key}' header value {raw!r} is not a number; write e.g. "
            f"'# {key}: 3.0', or 'none' when it is not known."
        ) from None
    return value


def _merge_labels(
    found: Mapping[str, tuple[float | None, str]],
    given: Mapping[str, float | None],
) -> tuple[dict[str, float | None], dict[str, str]]:
    """Keyword labels win over labels found in the file; note the origin."""
    labels: dict[str, float | None] = {}
    sources: dict[str, str] = {}
    for name in ("valence", "coordination_number", "td_fraction"):
        if given.get(name) is not None:
            labels[name], sources[name] = given[name], "keyword argument"
        elif name in found and found[name][0] is not None:
            labels[name], sources[name] = found[name]
        else:
            labels[name] = None
    return labels, sources


def _build(
    path: Path,
    energy: np.ndarray,
    intensity: np.ndarray,
    labels: Mapping[str, float | None],
    identifier: str,
    metadata: dict[str, Any],
) -> LabelledSpectrum:
    try:
        return LabelledSpectrum(
            energy=energy,
            intensity=intensity,
            source="experiment",
            identifier=identifier,
            metadata=metadata,
            **labels,
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


# ------------------------------------------------------------------------------ CSV


def _energy_scale(column: str, path: Path) -> float:
    """eV per unit of the energy column, from its header name."""
    name = column.strip().lower().replace(" ", "")
    if not name.startswith("energy"):
        raise ValueError(
            f"{path}: the first column is {column!r}, not an energy. {_CSV_FIX}"
        )
    unit = re.sub(r"^energy[_(\[]*", "", name).rstrip(")]")
    if unit in ("ev", "", "loss_ev", "energy_loss_ev"):
        if not unit:
            warnings.warn(
                f"{path}: energy column {column!r} has no unit; assuming eV "
                "(name it 'energy_eV').",
                stacklevel=4,
            )
        return 1.0
    if unit == "kev":
        return 1000.0
    raise ValueError(
        f"{path}: energy unit of column {column!r} not understood; name the column "
        "'energy_eV' (or 'energy_keV')."
    )


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, str], str]:
    """Energies (eV), intensities, header dict and intensity column name."""
    try:
        rows, columns, header = _parse_csv(path)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded); save the "
            "standard as a UTF-8 CSV text file. " + _CSV_FIX
        ) from None
    if columns is None or not rows:
        raise ValueError(f"{path}: no spectrum data found. {_CSV_FIX}")
    table = np.array(rows)
    lowered = [c.lower() for c in columns]
    column = lowered.index("intensity") if "intensity" in lowered else 1
    energy = table[:, 0] * _energy_scale(columns[0], path)
    return energy, table[:, column], header, columns[column]


def _parse_csv(
    path: Path,
) -> tuple[list[list[float]], list[str] | None, dict[str, str]]:
    """Rows, column names and ``# key: value`` header of a standard's CSV file."""
    header: dict[str, str] = {}
    columns: list[str] | None = None
    rows: list[list[float]] = []
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            if text.startswith("#"):
                body = text.lstrip("#").strip()
                if ":" in body and columns is None:
                    key, _, value = body.partition(":")
                    header[key.strip().lower()] = value.strip()
                continue
            cells = [c.strip() for c in text.split(",")]
            if columns is None:
                try:
                    [float(c) for c in cells]
                except ValueError:
                    columns = cells
                    if len(columns) < 2:
                        raise ValueError(
                            f"{path} line {number}: the column header {text!r} has "
                            f"fewer than two columns. {_CSV_FIX}"
                        ) from None
                    continue
                raise ValueError(
                    f"{path} line {number}: data before the column header row. "
                    f"{_CSV_FIX}"
                )
            if len(cells) != len(columns):
                raise ValueError(
                    f"{path} line {number}: {len(cells)} values where the header has "
                    f"{len(columns)} columns ({text!r})."
                )
            try:
                rows.append([float(c) for c in cells])
            except ValueError:
                raise ValueError(
                    f"{path} line {number}: non-numeric value in {text!r}; fix or "
                    "delete the row."
                ) from None
    return rows, columns, header


def _csv_standard(path: Path, given: Mapping[str, float | None]) -> LabelledSpectrum:
    energy, intensity, header, column = _read_csv(path)
    found: dict[str, tuple[float | None, str]] = {}
    for key, raw in header.items():
        if key in _LABEL_KEYS:
            found[_LABEL_KEYS[key]] = (
                _label_value(raw, key, str(path)),
                f"file header '{key}'",
            )
    labels, sources = _merge_labels(found, given)
    metadata = {
        "file": str(path),
        "format": "csv",
        "header": dict(header),
        "intensity_column": column,
        "label_sources": sources,
    }
    if "compound" in header:
        metadata["compound"] = header["compound"]
    if "technique" in header:
        metadata["technique"] = header["technique"]
    identifier = header.get("compound") or path.stem
    return _build(path, energy, intensity, labels, identifier, metadata)


# ------------------------------------------------------------------------------ MSA

_KEY_VALUE = re.compile(
    r"(?P<key>valence|fe_valence|oxidation_state|td_fraction|coordination_number"
    r"|coordination|cn)\s*[:=]\s*(?P<value>[-+]?\d+(?:\.\d*)?|none|unknown)",
    re.IGNORECASE,
)
_ELEMENT_COUNT = re.compile(r"([A-Z][a-z]?)(\d*\.?\d*)")
_FORMULA_TOKEN = re.compile(r"^(?:(?:Fe|O|H)\d*\.?\d*)+$")


def _fe_o_valence(text: str) -> tuple[float, str] | None:
    """Mean Fe valence of the first Fe–O(–H) formula in ``text`` (O2-, H+)."""
    for token in re.split(r"[^A-Za-z0-9.]+", text):
        if not token or not _FORMULA_TOKEN.match(token):
            continue
        counts: dict[str, float] = {}
        for element, number in _ELEMENT_COUNT.findall(token):
            counts[element] = counts.get(element, 0.0) + (float(number or 1))
        if counts.get("Fe", 0) > 0 and counts.get("O", 0) > 0:
            valence = (2 * counts["O"] - counts.get("H", 0.0)) / counts["Fe"]
            if 0 < valence <= 8:
                return valence, token
    return None


def _text_labels(text: str) -> dict[str, tuple[float | None, str]]:
    found: dict[str, tuple[float | None, str]] = {}
    for match in _KEY_VALUE.finditer(text):
        key = match["key"].lower()
        name = _LABEL_KEYS[key]
        if name not in found:
            value = _label_value(match["value"], key, "MSA title/comment")
            found[name] = (value, f"title/comment '{match.group(0)}'")
    if "valence" not in found:
        guess = _fe_o_valence(text)
        if guess is not None:
            valence, token = guess
            found["valence"] = (
                valence,
                f"formula {token!r} in the title (charge balance, O2- and H+)",
            )
    return found


def _msa_title_comment(path: Path) -> tuple[str, str]:
    """``#TITLE`` and ``#COMMENT`` text of an MSA file, read from its header.

    Read here rather than from RosettaSciIO's ``original_metadata``, which loses a
    title that itself contains a colon (e.g. ``valence: 3``).
    """
    title, comments = "", []
    with open(path, encoding="latin-1") as handle:
        for line in handle:
            if not line.startswith("#"):
                continue
            key, _, value = line[1:].partition(":")
            key = key.strip().upper()
            if key == "SPECTRUM":
                break
            if key == "TITLE":
                title = value.strip()
            elif key == "COMMENT":
                comments.append(value.strip())
    return title, " ".join(comments)


def _msa_standard(path: Path, given: Mapping[str, float | None]) -> LabelledSpectrum:
    from rsciio.msa import file_reader

    try:
        (content,) = file_reader(str(path))
    except Exception as exc:
        raise ValueError(
            f"{path}: not a readable EMSA/MSA spectrum ({exc}); check the "
            "'#KEYWORD : value' header and the data lines."
        ) from None
    data = np.asarray(content["data"])
    if data.ndim != 1:
        raise ValueError(
            f"{path}: expected a single spectrum, got data of shape {data.shape}."
        )
    try:
        axis = content["axes"][0]
        if axis.get("axis") is not None:
            energy = np.asarray(axis["axis"], dtype=np.float64)
        elif int(axis["size"]) != data.shape[0]:
            raise ValueError(f"{axis['size']} points declared, {data.shape[0]} read")
        else:
            energy = float(axis["offset"]) + float(axis["scale"]) * np.arange(
                data.shape[0]
            )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{path}: the energy axis is not readable ({exc}); check the '#OFFSET', "
            "'#XPERCHAN' and '#NPOINTS' header values and the data lines."
        ) from None
    units = str(axis.get("units") or "").strip()
    if units.lower() == "kev":
        energy = energy * 1000.0
    elif units.lower() != "ev":
        if units:
            raise ValueError(
                f"{path}: energy axis in {units!r}; set '#XUNITS : eV' (or keV)."
            )
        warnings.warn(f"{path}: no energy unit (#XUNITS); assuming eV.", stacklevel=3)
    original = content.get("original_metadata", {})
    title, comment = _msa_title_comment(path)
    text = f"{title} {comment}"
    labels, sources = _merge_labels(_text_labels(text), given)
    metadata = {
        "file": str(path),
        "format": "msa",
        "title": title,
        "label_sources": sources,
    }
    if original.get("SIGNALTYPE"):
        metadata["signal_type"] = str(original["SIGNALTYPE"])
    return _build(path, energy, data, labels, title or path.stem, metadata)


# --------------------------------------------------------------------------- public


def read_standard(
    path: str | os.PathLike,
    *,
    valence: float | None = None,
    coordination_number: float | None = None,
    td_fraction: float | None = None,
) -> LabelledSpectrum:
    """Read one experimental standard (CSV with label headers, or EMSA/MSA).

    Parameters
    ----------
    path
        A ``.csv``, ``.msa`` or ``.ems`` file (see the module docstring).
    valence, coordination_number, td_fraction
        Labels; when given they override what the file says.

    Returns
    -------
    LabelledSpectrum
        ``source="experiment"``; ``identifier`` is the CSV ``compound`` (else the
        MSA title, else the file name); ``metadata`` has the file, header and
        ``label_sources``.

    Raises
    ------
    ValueError
        Naming the file, what is wrong and how to fix it: unknown suffix, missing
        column header, non-numeric row, bad label value, NaN, repeated energies...

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from hyperspy_fe_ml.library.standards import read_standard
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "FeO.csv"
    >>> _ = path.write_text(
    ...     "# compound: FeO\\n# valence: 2\\n# td_fraction: 0\\n"
    ...     "energy_eV,intensity\\n700,0.1\\n708,1.0\\n721,0.4\\n"
    ... )
    >>> rec = read_standard(path)
    >>> rec.identifier, rec.valence, rec.td_fraction, rec.coordination_number
    ('FeO', 2.0, 0.0, None)
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file.")
    given = {
        "valence": valence,
        "coordination_number": coordination_number,
        "td_fraction": td_fraction,
    }
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_standard(path, given)
    if suffix in (".msa", ".ems"):
        return _msa_standard(path, given)
    raise ValueError(
        f"{path}: unknown standard format {suffix!r}; use a .csv with label headers "
        "or an EMSA .msa/.ems file."
    )


#: Environment variable naming the folder of measured standards.
STANDARDS_ENV = "FE_ML_EXPDATA"


def find_standards_dir(start: str | os.PathLike | None = None) -> Path | None:
    """The folder of measured standards, if there is one.

    ``$FE_ML_EXPDATA`` when set (``None`` when it is not a folder: setting it to
    an empty place turns the standards off); else the first ``shared/expdata``
    beside ``start`` or one of its parents — the layout of a clone with
    ``../shared`` beside it. Standards are never shipped with the package.

    Parameters
    ----------
    start
        Folder to search from; the current working directory by default.

    Returns
    -------
    pathlib.Path or None
        The folder, or ``None`` when none is found.

    Examples
    --------
    >>> import os, tempfile
    >>> from pathlib import Path
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "shared" / "expdata").mkdir(parents=True)
    >>> (root / "main" / "examples").mkdir(parents=True)
    >>> _ = os.environ.pop("FE_ML_EXPDATA", None)
    >>> find_standards_dir(root / "main" / "examples") == root / "shared" / "expdata"
    True
    """
    if STANDARDS_ENV in os.environ:
        folder = Path(os.environ[STANDARDS_ENV])
        return folder if folder.is_dir() else None
    start = Path.cwd() if start is None else Path(start)
    for folder in (start.resolve(), *start.resolve().parents):
        candidate = folder / "shared" / "expdata"
        if candidate.is_dir():
            return candidate
    return None


def read_standards_dir(
    path: str | os.PathLike,
    *,
    suffixes: Iterable[str] = STANDARD_SUFFIXES,
    on_error: Literal["raise", "warn"] = "raise",
) -> list[LabelledSpectrum]:
    """Read every standard in a folder, sorted by file name.

    Parameters
    ----------
    path
        The folder; other files (README, images...) are ignored.
    suffixes
        File suffixes to read (case-insensitive).
    on_error
        ``"raise"`` (default): the first bad file raises its ValueError;
        ``"warn"``: a bad file gives a warning and is left out.

    Returns
    -------
    list of LabelledSpectrum
        In file-name order.

    Raises
    ------
    ValueError
        If ``path`` is not a folder or holds no standard.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from hyperspy_fe_ml.library.standards import read_standards_dir
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name, v in (("b.csv", 3), ("a.csv", 2)):
    ...     _ = (folder / name).write_text(
    ...         f"# valence: {v}\\nenergy_eV,intensity\\n700,0\\n710,1\\n"
    ...     )
    >>> [r.valence for r in read_standards_dir(folder)]
    [2.0, 3.0]
    """
    if on_error not in ("raise", "warn"):
        raise ValueError(f"on_error must be 'raise' or 'warn', got {on_error!r}.")
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder of standards.")
    wanted = {s.lower() for s in suffixes}
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in wanted),
        key=lambda p: p.name,
    )
    if not files:
        raise ValueError(
            f"{folder}: no standards found (looked for {', '.join(sorted(wanted))})."
        )
    records = []
    for file in files:
        try:
            records.append(read_standard(file))
        except ValueError as exc:
            if on_error == "raise":
                raise
            warnings.warn(f"{exc} Skipped.", stacklevel=2)
    return records
