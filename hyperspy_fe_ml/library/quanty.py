"""Quanty / Crispy multiplet spectra written as text tables.

Quanty stores a spectrum as a complex Green's function G(ω) on an energy mesh;
``G.Print({{"file", name}})`` writes a text table: a few header lines, then one row
per energy with the energy followed by a (Re, Im) pair of columns for each spectrum
held in ``G`` (``CreateSpectra`` with several transition operators gives several).
The absorption is ``-Im(G)/π``.

Crispy (Retegan, doi:10.5281/zenodo.1008184) runs Quanty with templates that
multiply G by ``-1/π`` *before* printing, so its ``*_iso.spec``/``*_k.spec`` files
carry the absorption itself, positive, in the imaginary column (Crispy reads them
with ``numpy.loadtxt(name, skiprows=5)`` and plots column 2).

What :func:`read_quanty_spectrum` assumes, so that both work:

- the data block is the **last run of consecutive numeric rows that all have the
  same number of columns** (at least two rows of at least two columns); every line
  before it is header, whatever it contains (Crispy's files have five), lines after
  it (a footer) are ignored, and so are blank lines. A numeric header line with the
  same column count as the data directly above it would be taken as data: pass
  ``skiprows`` to override the detection;
- an odd number of columns ``2k + 1`` is ``energy, Re G1, Im G1, ..., Re Gk, Im Gk``;
  two columns are a plain ``energy, intensity`` export (as saved from Crispy's plot
  or any script) and are read as they are; any other even count is an error;
- sign and scale of the imaginary part (``convention``): ``"green"`` takes
  ``-Im/π`` (raw Quanty G), ``"absorption"`` takes ``Im`` as it is (Crispy, already
  scaled by ``-1/π``); ``"auto"`` (default) picks ``"green"`` when the imaginary
  column integrates to a negative number and ``"absorption"`` otherwise;
- energies are in eV and, in Quanty, usually *relative* (to the edge or the
  ground-state energy difference): add ``energy_shift`` to place them on the
  absolute scale.

Quanty files carry no chemistry, so valence, coordination number and Td fraction
are passed by the caller.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

import numpy as np

from hyperspy_fe_ml.library.records import LabelledSpectrum

__all__ = ["read_quanty_spectrum", "read_quanty_table"]

Convention = Literal["auto", "green", "absorption"]


def _numeric_row(line: str) -> list[float] | None:
    """The numbers of a whitespace/comma separated line, or None if not numeric."""
    tokens = line.replace(",", " ").split()
    if not tokens:
        return None
    try:
        return [float(t.replace("D", "E").replace("d", "e")) for t in tokens]
    except ValueError:
        return None


def read_quanty_table(
    path: str | os.PathLike, *, skiprows: int | None = None
) -> np.ndarray:
    """Read the numeric table of a Quanty/Crispy spectrum file.

    Parameters
    ----------
    path
        The text file.
    skiprows
        Number of header lines to skip; None (default) detects the data block as
        the last run of consecutive numeric rows (two or more) with equal column
        counts of at least two; lines after it (a footer) are ignored.

    Returns
    -------
    numpy.ndarray
        Shape (n_energies, n_columns).

    Raises
    ------
    ValueError
        If there is no numeric block of at least two rows and two columns, or a
        row (after ``skiprows``) is not numeric or has another column count.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from hyperspy_fe_ml.library.quanty import read_quanty_table
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "g.spec"
    >>> _ = path.write_text("Energy Re Im\\n1 0.1 -0.5\\n2 0.2 -1.0\\n")
    >>> read_quanty_table(path)
    array([[ 1. ,  0.1, -0.5],
           [ 2. ,  0.2, -1. ]])
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read Quanty spectrum file {path}: {exc}") from None
    if skiprows is not None:
        rows = []
        for number, line in enumerate(lines[skiprows:], start=skiprows + 1):
            if not line.strip():
                continue
            row = _numeric_row(line)
            if row is None or len(row) < 2 or (rows and len(row) != len(rows[0])):
                raise ValueError(
                    f"{path} line {number} is not a row of the table ({line!r}); "
                    "check skiprows (the number of header lines)."
                )
            rows.append(row)
    else:
        runs: list[list[list[float]]] = [[]]
        for line in lines:
            if not line.strip():
                continue
            row = _numeric_row(line)
            if row is None:
                runs.append([])
            elif runs[-1] and len(row) != len(runs[-1][0]):
                runs.append([row])
            else:
                runs[-1].append(row)
        tables = [run for run in runs if len(run) >= 2 and len(run[0]) >= 2]
        rows = tables[-1] if tables else []
    if len(rows) < 2 or len(rows[0]) < 2:
        raise ValueError(
            f"{path} has no table of spectrum values (expected rows of 'energy "
            "intensity' or 'energy Re Im ...' after the header lines)."
        )
    return np.array(rows, dtype=np.float64)


def read_quanty_spectrum(
    path: str | os.PathLike,
    *,
    spectrum: int | Literal["mean", "sum"] | None = None,
    convention: Convention = "auto",
    energy_shift: float = 0.0,
    valence: float | None = None,
    coordination_number: float | None = None,
    td_fraction: float | None = None,
    skiprows: int | None = None,
    identifier: str | None = None,
) -> LabelledSpectrum:
    """Read one absorption spectrum from a Quanty ``Print`` or Crispy ``.spec`` file.

    See the module docstring for the file layouts and conventions assumed.

    Parameters
    ----------
    path
        The text file.
    spectrum
        Which spectrum of a file with several (Re, Im) pairs: an index from 0,
        ``"mean"`` (e.g. the isotropic average of x, y, z polarisations) or
        ``"sum"``. None (default) requires a file with exactly one spectrum.
    convention
        ``"auto"``, ``"green"`` (intensity = -Im/π) or ``"absorption"``
        (intensity = Im); ignored for two-column files.
    energy_shift
        Added to the energies (eV), to go from Quanty's relative scale to absolute.
    valence, coordination_number, td_fraction
        Labels of the calculation (Quanty files carry none).
    skiprows
        Header lines to skip; None detects them (see :func:`read_quanty_table`).
    identifier
        Name of the record; the file name by default.

    Returns
    -------
    LabelledSpectrum
        ``source="quanty"``; ``metadata`` records the file, columns used, the
        convention applied and the energy shift.

    Raises
    ------
    ValueError
        For a file without a table, an even number (> 2) of columns, several
        spectra and ``spectrum=None``, or an index out of range.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from hyperspy_fe_ml.library.quanty import read_quanty_spectrum
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "Fe3_Oh_iso.spec"
    >>> _ = path.write_text("Energy Re Im\\n-1 0.0 -3.14159265\\n1 0.0 -6.2831853\\n")
    >>> rec = read_quanty_spectrum(path, energy_shift=709.0, valence=3)
    >>> rec.energy, rec.intensity.round(6), rec.metadata["convention"]
    (array([708., 710.]), array([1., 2.]), 'green')
    """
    path = Path(path)
    table = read_quanty_table(path, skiprows=skiprows)
    n_columns = table.shape[1]
    energy = table[:, 0] + float(energy_shift)
    metadata: dict[str, object] = {
        "file": str(path),
        "energy_shift_eV": float(energy_shift),
        "n_columns": n_columns,
    }
    if n_columns == 2:
        intensity = table[:, 1]
        metadata["layout"] = "energy, intensity"
        metadata["convention"] = "as written"
    elif n_columns % 2 == 1:
        imaginary = table[:, 2::2]
        n_spectra = imaginary.shape[1]
        metadata["layout"] = f"energy + {n_spectra} (Re, Im) pair(s)"
        if spectrum is None:
            if n_spectra != 1:
                raise ValueError(
                    f"{path} holds {n_spectra} spectra (columns energy + {n_spectra} "
                    "Re/Im pairs); choose one with spectrum=<index from 0>, or "
                    "spectrum='mean' for their average (e.g. the isotropic spectrum "
                    "from x, y, z polarisations) or 'sum'."
                )
            chosen = imaginary[:, 0]
            metadata["spectrum"] = 0
        elif spectrum in ("mean", "sum"):
            chosen = imaginary.mean(axis=1) if spectrum == "mean" else imaginary.sum(1)
            metadata["spectrum"] = f"{spectrum} of {n_spectra}"
        else:
            index = int(spectrum)
            if not 0 <= index < n_spectra:
                raise ValueError(
                    f"spectrum={spectrum} is out of range: {path} holds {n_spectra} "
                    f"spectra (0 to {n_spectra - 1})."
                )
            chosen = imaginary[:, index]
            metadata["spectrum"] = index
        if convention == "auto":
            area = float(np.sum(chosen * np.gradient(energy)))
            convention = "green" if area < 0 else "absorption"
        if convention == "green":
            intensity = -chosen / math.pi
        elif convention == "absorption":
            intensity = chosen
        else:
            raise ValueError(
                f"convention must be 'auto', 'green' or 'absorption', got "
                f"{convention!r}."
            )
        metadata["convention"] = convention
    else:
        raise ValueError(
            f"{path} has {n_columns} columns; a Quanty spectrum file has an odd "
            "number (energy, then Re and Im of each spectrum) and a plain export two "
            "(energy, intensity). Check the file or pass skiprows."
        )
    try:
        return LabelledSpectrum(
            energy=energy,
            intensity=intensity,
            valence=valence,
            coordination_number=coordination_number,
            td_fraction=td_fraction,
            source="quanty",
            identifier=identifier if identifier is not None else path.stem,
            metadata=metadata,
        )
    except ValueError as exc:  # NaN, repeated energies...: name the file
        raise ValueError(f"{path}: {exc}") from None
