"""Calibrate a model's uncertainty on measured spectra against labelled standards.

:func:`calibrate_on_standards` hands every standard of a folder to
``predict_fe_state`` as a user would (:func:`~hyperspy_fe_ml.training.evaluate.
evaluate_standards`), with the model's simulation-calibrated uncertainties only,
and sets :attr:`~hyperspy_fe_ml.model.FeStateModel.measured_std` to the
split-conformal term of :mod:`hyperspy_fe_ml.measured_uncertainty`, per output.
It also measures what that calibration gives a compound it has not seen
(leave-one-compound-out). ``fe-ml calibrate-uncertainty`` runs it and writes the
model; the model's arrays are unchanged (same hash), so state detectors trained on
it still read it.

Labels per standard: ``valence``; ``fe3_fraction`` = valence − 2 for valences in
[2, 3]; ``td_fraction``; ``coordination_number`` as labelled, else from the Td
fraction of a four- and six-fold mixture (6 − 2·td).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hyperspy_fe_ml.measured_uncertainty import (
    conformal_std,
    interval_holds,
    leave_one_compound_out_coverage,
    required_std,
)
from hyperspy_fe_ml.model import OUTPUTS, FeStateModel

__all__ = [
    "UncertaintyCalibration",
    "calibrate_from_rows",
    "calibrate_on_standards",
    "standard_labels",
    "uncertainty_table",
    "with_measured_std",
]


@dataclass(frozen=True)
class UncertaintyCalibration:
    """What :func:`calibrate_from_rows` measured.

    Attributes
    ----------
    measured_std
        The term per output (0 for an output without labelled standards).
    coverage
        Nominal coverage the term is calibrated for.
    summary
        Per output: ``n`` labelled standards, ``compounds``, share of intervals
        holding the label with the model's uncertainties only (``before``), with
        the term calibrated on the other compounds (``leave_one_compound_out``)
        and on all (``calibrated_on_all``, not a test), and the median standard
        deviation before and after.
    rows
        Per standard and output: file, compound, label, prediction, the model's
        standard deviation and the leave-one-compound-out term.
    """

    measured_std: dict[str, float]
    coverage: float
    summary: dict[str, dict[str, float]]
    rows: list[dict[str, Any]]

    def as_info(self, source: str, method: str = "split-conformal") -> dict[str, Any]:
        """JSON-ready provenance for ``model.info["measured_uncertainty"]``."""
        return {
            "standards": source,
            "method": method,
            "files": sorted({str(r["file"]) for r in self.rows}),
            "coverage": self.coverage,
            "measured_std": self.measured_std,
            "summary": self.summary,
        }


def standard_labels(row: dict[str, Any]) -> dict[str, float | None]:
    """The label of each output for one row of ``evaluate_standards``.

    Examples
    --------
    >>> standard_labels({"nominal_valence": 2.6667, "nominal_td_fraction": 0.3333})
    {'valence': 2.6667, 'fe3_fraction': 0.6667, 'td_fraction': 0.3333, \
'coordination_number': 5.3334}
    """
    valence = row.get("nominal_valence")
    td = row.get("nominal_td_fraction")
    cn = row.get("nominal_coordination_number")
    fe3 = None
    if valence is not None and 2.0 <= valence <= 3.0:
        fe3 = round(valence - 2.0, 10)
    if cn is None and td is not None:
        cn = round(6.0 - 2.0 * td, 10)
    return {
        "valence": valence,
        "fe3_fraction": fe3,
        "td_fraction": td,
        "coordination_number": cn,
    }


def calibrate_from_rows(
    rows: list[dict[str, Any]], coverage: float = 0.9, *, prefix: str = ""
) -> UncertaintyCalibration:
    """The measured-spectrum term per output from predictions of labelled standards.

    Parameters
    ----------
    rows
        From :func:`~hyperspy_fe_ml.training.evaluate.evaluate_standards` with a
        model whose ``measured_std`` is zero; refused standards are skipped.
    coverage
        Nominal coverage of the intervals (0.9: the ±1.645 std the maps state).
    prefix
        Read the predictions ``<prefix><output>`` and ``<prefix><output>_std``:
        ``"loco_"`` for the held-out predictions of
        :func:`~hyperspy_fe_ml.training.adapt.leave_one_compound_out`, which
        calibrate a model adapted to the same standards (each standard predicted
        by a model that was not adapted to its compound).

    Returns
    -------
    UncertaintyCalibration
    """
    from hyperspy_fe_ml.training.standards import compound_key

    read = [(r, standard_labels(r)) for r in rows if "refused" not in r]
    measured, summary, table = {}, {}, []
    for name in OUTPUTS:
        kept = [
            (r, labels[name])
            for r, labels in read
            if labels[name] is not None
            and np.isfinite(r.get(prefix + name, np.nan))
            and np.isfinite(r.get(f"{prefix}{name}_std", np.nan))
        ]
        if not kept:
            measured[name] = 0.0
            continue
        error = np.array([r[prefix + name] - label for r, label in kept])
        std = np.array([r[f"{prefix}{name}_std"] for r, _ in kept])
        compounds = [compound_key(str(r["compound"])) for r, _ in kept]
        term = conformal_std(required_std(error, std), coverage)
        extra, held_loco = leave_one_compound_out_coverage(
            error, std, compounds, coverage
        )
        measured[name] = term
        summary[name] = {
            "n": len(kept),
            "compounds": len(set(compounds)),
            "before": float(np.mean(interval_holds(error, std, 0.0))),
            "leave_one_compound_out": float(np.mean(held_loco)),
            "calibrated_on_all": float(np.mean(interval_holds(error, std, term))),
            "median_std_before": float(np.median(std)),
            "median_std_after": float(np.median(np.hypot(std, term))),
        }
        for (r, label), e, s, x in zip(kept, error, std, extra, strict=True):
            table.append(
                {
                    "file": r.get("file"),
                    "compound": r.get("compound"),
                    "output": name,
                    "label": float(label),
                    "predicted": float(r[prefix + name]),
                    "std": float(s),
                    "loco_term": float(x),
                    "error": float(e),
                }
            )
    return UncertaintyCalibration(measured, coverage, summary, table)


def calibrate_on_standards(
    model: FeStateModel,
    directory: str | Path,
    *,
    coverage: float = 0.9,
) -> tuple[FeStateModel, UncertaintyCalibration]:
    """``model`` with its measured-spectrum term calibrated on a folder of standards.

    Parameters
    ----------
    model
        Any model; its own ``measured_std`` is ignored (the standards are read
        with the simulation-calibrated uncertainties only).
    directory
        Folder of labelled standards (``.csv`` with ``# valence:`` and
        ``# td_fraction:`` headers, ``.msa``;
        :func:`~hyperspy_fe_ml.library.standards.read_standards_dir`). They must
        not be spectra the model was trained or adapted on: their errors would
        then understate those of new spectra.
    coverage
        Nominal coverage of the 90 % intervals the maps state.

    Returns
    -------
    model
        A copy with ``measured_std`` set and ``info["measured_uncertainty"]``.
    calibration
        What was measured (:class:`UncertaintyCalibration`).

    Raises
    ------
    ValueError
        When no standard has a valence label.

    Examples
    --------
    >>> from hyperspy_fe_ml.model import load_default_model
    >>> model, report = calibrate_on_standards(
    ...     load_default_model(), "my_standards")  # doctest: +SKIP
    >>> model.save("model_for_my_microscope.json")  # doctest: +SKIP
    """
    from hyperspy_fe_ml.training.evaluate import evaluate_standards

    bare = replace(model, measured_std=np.zeros(len(OUTPUTS)))
    rows = evaluate_standards(bare, directory)
    if not any("refused" not in r and r.get("nominal_valence") for r in rows):
        raise ValueError(
            f"No standard in {directory} has a valence label the model could read: "
            "give standards with a '# valence:' header (and '# td_fraction:' for "
            "the coordination)."
        )
    calibration = calibrate_from_rows(rows, coverage)
    return with_measured_std(model, calibration, Path(directory).name), calibration


def with_measured_std(
    model: FeStateModel,
    calibration: UncertaintyCalibration,
    source: str,
    method: str = "split-conformal",
) -> FeStateModel:
    """``model`` with the term of ``calibration`` and its provenance."""
    values = np.array([calibration.measured_std[name] for name in OUTPUTS])
    info = {
        **{k: v for k, v in model.info.items() if k != "measured_uncertainty"},
        "measured_uncertainty": calibration.as_info(source, method),
    }
    return replace(model, measured_std=values, info=info)


def uncertainty_table(calibration: UncertaintyCalibration) -> list[str]:
    """Markdown table of a calibration: the term and the coverage it gives."""
    lines = [
        "| output | labelled standards (compounds) | added std | 90 % intervals "
        "holding the label: model only | leave-one-compound-out | median std: "
        "model only → measured |",
        "|---|---|---|---|---|---|",
    ]
    for name in OUTPUTS:
        s = calibration.summary.get(name)
        if s is None:
            continue
        lines.append(
            f"| {name} | {s['n']} ({s['compounds']}) | "
            f"{calibration.measured_std[name]:.3f} | {s['before']:.0%} | "
            f"{s['leave_one_compound_out']:.0%} | {s['median_std_before']:.3f} → "
            f"{s['median_std_after']:.3f} |"
        )
    return lines
