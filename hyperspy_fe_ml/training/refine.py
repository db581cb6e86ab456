"""The verify–refine–retrain cycle: ``fe-ml refine --standards DIR``.

One pass of the cycle, each step written to the output folder before the next
starts, so that an interrupted run resumes where it stopped and a finished step
is never recomputed:

1. **Verify** (``matches_before.json``): every standard is matched to the library
   (:mod:`hyperspy_fe_ml.library.match`: best set per class, widths, mixture, and
   the cost of holding it at each nominal label).
2. **Propose** (``proposed.json``): new parameter sets between and beyond the
   grid points of the best matches, within the budget.
3. **Compute** (``sets/*.npz``, one file per set, each written atomically): the
   new sets with edrixs, as Dask tasks (on a ``dask.distributed`` cluster when a
   client is active), with a progress bar; sets already on disk are skipped.
4. **Extend** (``library.npz``): the shipped library and the new sets, the
   shipped rows first and unchanged; then the standards are matched again
   (``matches_after.json``).
5. **Retrain** (``library_model.json``): the model trained on the extended
   library; then, unless switched off, **adapt** (``model.json``): that model
   adapted to the standards (:mod:`hyperspy_fe_ml.training.adapt`).
6. **Validate** (``loco.json``): leave-one-compound-out, the adapted recipe
   scored on each compound it did not see; the held-out predictions then
   calibrate the final model's uncertainty on measured spectra
   (:mod:`hyperspy_fe_ml.measured_uncertainty`; for a model that was not
   adapted, its own predictions of the standards do).
7. **Report** (``report.md``): per standard, the library misfit before and
   after, and the predictions of the shipped model, the refined model and its
   leave-one-compound-out fold.

A cycle is one call; run it again on its own output (``--library``) to go round
once more.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hyperspy_fe_ml.fileio import atomic_write
from hyperspy_fe_ml.training.adapt import AdaptSettings
from hyperspy_fe_ml.training.fit import FitSettings

__all__ = ["RefineSettings", "refine"]


@dataclass(frozen=True)
class RefineSettings:
    """Sizes of one refinement cycle.

    Attributes
    ----------
    budget
        New parameter sets to compute at most (about 0.3 s each for Fe2+, 2 s
        for Fe3+ on one core).
    n_train
        Library training spectra of the retrained model.
    recalibrate
        Fit every standard's widths and energy stretch with its best library
        set (:mod:`~hyperspy_fe_ml.library.recalibrate`) and retrain with the
        broadening ranges and stretch they give; otherwise the shipped ranges.
    adapt
        Adapt the retrained model to the standards.
    loco
        Run the leave-one-compound-out validation (one adaptation per compound).
    n_adapt_library
        Library spectra kept in view during each adaptation.
    seed
        Seed of the training run.
    fit
        Model settings of the retraining.
    adaptation
        Settings of the adaptation and of every leave-one-compound-out fold.
    """

    budget: int = 40
    n_train: int = 300_000
    recalibrate: bool = True
    adapt: bool = True
    loco: bool = True
    n_adapt_library: int = 40_000
    seed: int = 2026
    fit: FitSettings = field(default_factory=FitSettings)
    adaptation: AdaptSettings = field(default_factory=AdaptSettings)


def _write_json(path: Path, value: Any) -> None:
    with atomic_write(path) as handle:
        handle.write(json.dumps(value, indent=1, default=_plain).encode())


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _match_all(directory: Path, library_path: str | None) -> list[dict[str, Any]]:
    """Match every standard in ``directory`` to a library; one row per standard."""
    from hyperspy_fe_ml.library.match import library_bank, match_spectrum
    from hyperspy_fe_ml.library.shipped import library_for
    from hyperspy_fe_ml.library.standards import read_standards_dir
    from hyperspy_fe_ml.model import load_default_model
    from hyperspy_fe_ml.predict import model_input_spectra

    model = load_default_model()
    bank = library_bank(model.energy, library_for(library_path))
    rows = []
    for record in read_standards_dir(directory, on_error="warn"):
        name = Path(str(record.metadata.get("file", record.identifier))).name
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                aligned, _, _ = model_input_spectra(record.to_signal(), model)
        except ValueError as error:
            rows.append({"file": name, "refused": str(error)})
            continue
        if not np.all(np.isfinite(aligned[0])):
            rows.append({"file": name, "refused": "no L3 line found"})
            continue
        match = match_spectrum(
            aligned[0], bank, valence=record.valence, td_fraction=record.td_fraction
        )
        rows.append(
            {
                "file": name,
                "compound": str(record.metadata.get("compound", record.identifier)),
                "nominal_valence": record.valence,
                "nominal_td_fraction": record.td_fraction,
                **asdict(match),
            }
        )
    return rows


def _matches(rows: list[dict[str, Any]]) -> list[Any]:
    from hyperspy_fe_ml.library.match import LibraryMatch

    names = LibraryMatch.__dataclass_fields__
    return [
        LibraryMatch(**{k: row[k] for k in names if k in row})
        for row in rows
        if "refused" not in row
    ]


def _set_file(folder: Path, params: Any) -> Path:
    key = (
        f"v{params.valence}_{params.coordination}_dq{params.ten_dq:+.3f}"
        f"_ds{params.ds:+.3f}_dt{params.dt:+.3f}_sl{params.slater_scale:.3f}"
    )
    return folder / f"{key}.npz"


def _compute_sets(sets: list[Any], folder: Path, show_progressbar: bool) -> list[Any]:
    """Sticks of every set, computing (and saving) only those not on disk yet."""
    import dask

    from hyperspy_fe_ml.library.generate import _compute, simulate_batch
    from hyperspy_fe_ml.library.multiplet import StickSpectrum, require_edrixs

    folder.mkdir(parents=True, exist_ok=True)
    missing = [p for p in sets if not _set_file(folder, p).is_file()]
    if missing:
        require_edrixs()

        def one(params: Any) -> str:
            sticks = simulate_batch([params])[0]
            path = _set_file(folder, params)
            with atomic_write(path) as handle:
                np.savez(
                    handle,
                    energy=sticks.energy,
                    intensity=sticks.intensity,
                    edge=sticks.edge,
                )
            return str(path)

        from threadpoolctl import threadpool_limits

        tasks = [dask.delayed(one, pure=False)(p) for p in missing]
        with threadpool_limits(limits=1, user_api="blas"):
            _compute(tasks, show_progressbar)
    out = []
    for params in sets:
        with np.load(_set_file(folder, params), allow_pickle=False) as data:
            out.append(
                StickSpectrum(
                    energy=data["energy"],
                    intensity=data["intensity"],
                    edge=data["edge"],
                )
            )
    return out


def refine(
    standards: str | os.PathLike,
    output: str | os.PathLike,
    settings: RefineSettings = RefineSettings(),
    *,
    library: str | os.PathLike | None = None,
    show_progressbar: bool = True,
    log: Any = print,
) -> Path:
    """Run one verify–refine–retrain cycle; returns the report's path.

    Parameters
    ----------
    standards
        Folder of labelled standards (``.csv`` with ``# valence:`` and
        ``# td_fraction:`` headers, ``.msa``).
    output
        Folder of the run; what is already there is reused (resume).
    settings
        See :class:`RefineSettings`.
    library
        Library to refine (default: the shipped one); give a previous run's
        ``library.npz`` to go round the cycle again.
    show_progressbar
        Progress bars for the simulation, the training and the validation.
    log
        Called with one line per step.

    Returns
    -------
    pathlib.Path
        ``output / "report.md"``.

    Examples
    --------
    >>> refine("../shared/expdata", "refine-run")  # doctest: +SKIP
    """
    from hyperspy_fe_ml.library.match import propose_parameter_sets
    from hyperspy_fe_ml.library.multiplet import ParameterSet
    from hyperspy_fe_ml.library.shipped import extend_library, library_for

    standards = Path(standards)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    base_path = None if library is None else str(library)
    base = library_for(base_path)

    step = out / "matches_before.json"
    if not step.is_file():
        _write_json(step, _match_all(standards, base_path))
    before = _read_json(step)
    log(f"verify: {len(before)} standards matched to {len(base)} library sets")

    step = out / "proposed.json"
    if not step.is_file():
        proposed = propose_parameter_sets(_matches(before), base, settings.budget)
        _write_json(step, [asdict(p) for p in proposed])
    sets = [ParameterSet(**p) for p in _read_json(step)]
    log(f"propose: {len(sets)} new parameter sets (budget {settings.budget})")

    library_path = out / "library.npz"
    if not library_path.is_file():
        sticks = _compute_sets(sets, out / "sets", show_progressbar)
        extend_library(base, sets, sticks, library_path)
    log(f"extend: {library_path} ({len(base) + len(sets)} sets)")

    step = out / "matches_after.json"
    if not step.is_file():
        _write_json(step, _match_all(standards, str(library_path)))
    after = _read_json(step)

    step = out / "recalibration.json"
    if settings.recalibrate and not step.is_file():
        _write_json(step, _recalibrate(standards, str(library_path), after))
    recalibration = _read_json(step) if settings.recalibrate else None
    dataset = _dataset(str(library_path), recalibration)
    if recalibration is not None:
        ranges = recalibration["ranges"]
        log(
            f"recalibrate: {ranges['n_standards']} standards; L3 FWHM "
            f"{ranges['fwhm_l3']}, L2 {ranges['fwhm_l2']}, resolution "
            f"{ranges['resolution']} eV; energy stretch {ranges['energy_scale']}"
        )

    from hyperspy_fe_ml.model import FeStateModel

    library_model_path = out / "library_model.json"
    if not library_model_path.is_file():
        retrained, _ = _retrain(settings, dataset, show_progressbar)
        retrained.save(library_model_path)
    library_model = FeStateModel.load(library_model_path)
    log(f"retrain: {library_model_path}")

    model, data = library_model, None
    if settings.adapt:
        model_path = out / "model.json"
        if not model_path.is_file():
            data = _library_data(settings, dataset)
            adapted = _adapt(library_model, standards, data, settings, dataset)
            adapted.save(model_path)
        model = FeStateModel.load(model_path)
        log(f"adapt: {model_path}")

    loco: list[dict[str, Any]] = []
    step = out / "loco.json"
    if settings.loco and not step.is_file():
        from hyperspy_fe_ml.training.adapt import leave_one_compound_out

        if data is None:
            data = _library_data(settings, dataset)
        n = settings.n_adapt_library
        # Every fold starts from the library model, before any adaptation.
        loco = leave_one_compound_out(
            library_model,
            standards,
            data.train[0][:n],
            data.train[1][:n],
            data.set_ids["train"],
            settings.adaptation,
            dataset=dataset,
            show_progressbar=show_progressbar,
        )
        _write_json(step, loco)
    if step.is_file():
        loco = _read_json(step)
        log(f"validate: leave-one-compound-out over {len(loco)} standards")
    if loco:
        model = _calibrate_uncertainty(model, loco, settings, standards, out)
        log(f"uncertainty: {model.measured_std_by_output()}")

    from hyperspy_fe_ml.model import load_default_model
    from hyperspy_fe_ml.training.evaluate import evaluate_standards

    shipped = evaluate_standards(load_default_model(), standards)
    refined = evaluate_standards(model, standards)
    report = out / "report.md"
    text = refine_report(
        before, after, sets, shipped, refined, loco, settings, recalibration
    )
    with atomic_write(report) as handle:
        handle.write(text.encode())
    log(f"report: {report}")
    return report


def _calibrate_uncertainty(
    model: Any,
    loco: list[dict[str, Any]],
    settings: RefineSettings,
    standards: Path,
    out: Path,
) -> Any:
    """The final model with its measured-spectrum term (saved): calibrated on the
    held-out predictions of the leave-one-compound-out folds for an adapted model
    (each standard read by a model not adapted to its compound), on the library
    model's own predictions otherwise (it never saw the standards)."""
    from hyperspy_fe_ml.training.uncertainty import (
        calibrate_from_rows,
        with_measured_std,
    )

    prefix = "loco_" if settings.adapt else ""
    calibration = calibrate_from_rows(loco, prefix=prefix)
    method = "leave-one-compound-out conformal" if prefix else "split-conformal"
    model = with_measured_std(model, calibration, Path(standards).name, method)
    model.save(out / ("model.json" if settings.adapt else "library_model.json"))
    return model


def _recalibrate(
    standards: Path, library_path: str, matches: list[dict[str, Any]]
) -> dict[str, Any]:
    """Width fits of the standards the library explains, and the ranges."""
    from hyperspy_fe_ml.library.calibration import ENERGY_SCALE
    from hyperspy_fe_ml.library.match import BANK_FWHM_L2, UNEXPLAINED_RESIDUAL
    from hyperspy_fe_ml.library.recalibrate import (
        fit_widths,
        recalibration_from_fits,
    )
    from hyperspy_fe_ml.library.shipped import library_for
    from hyperspy_fe_ml.library.standards import read_standards_dir
    from hyperspy_fe_ml.model import load_default_model
    from hyperspy_fe_ml.predict import model_input_spectra

    model = load_default_model()
    library = library_for(library_path)
    by_file = {row["file"]: row for row in matches if "refused" not in row}
    fits, rows = [], []
    for record in read_standards_dir(standards, on_error="warn"):
        name = Path(str(record.metadata.get("file", record.identifier))).name
        match = by_file.get(name)
        if match is None or match["residual"] > UNEXPLAINED_RESIDUAL:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            aligned, _, _ = model_input_spectra(record.to_signal(), model)
        # From the bank's best widths (its L2 width) and the calibrated stretch.
        start = (match["fwhm_l3"], BANK_FWHM_L2, match["resolution"], ENERGY_SCALE)
        fit = fit_widths(
            aligned[0], model.energy, match["best_set"], library, start=start
        )
        fits.append(fit)
        rows.append({"file": name, **asdict(fit)})
    return {"fits": rows, "ranges": asdict(recalibration_from_fits(fits))}


def _dataset(library_path: str, recalibration: dict[str, Any] | None) -> Any:
    """The retraining's dataset settings: the run's library, recalibrated."""
    from hyperspy_fe_ml.training.dataset import DatasetSettings

    if recalibration is None:
        return DatasetSettings(library=library_path)
    ranges = recalibration["ranges"]
    # The Gaussian the standards show is the instrument's: the augmentation
    # draws it (``AugmentationSettings.fwhm``) on top of the small intrinsic
    # width the library adds.
    return DatasetSettings(
        library=library_path,
        fwhm_l3=tuple(ranges["fwhm_l3"]),
        fwhm_l2=tuple(ranges["fwhm_l2"]),
        augmentation={"fwhm": tuple(ranges["resolution"])},
        energy_scale=float(ranges["energy_scale"]),
    )


def _library_data(settings: RefineSettings, dataset: Any) -> Any:
    from hyperspy_fe_ml.training.adapt import library_in_view
    from hyperspy_fe_ml.training.train import TrainingSettings

    run = TrainingSettings(
        n_train=settings.n_train, seed=settings.seed, dataset=dataset, fit=settings.fit
    )
    return library_in_view(run, settings.n_adapt_library)


def _retrain(settings: RefineSettings, dataset: Any, show_progressbar: bool):
    from hyperspy_fe_ml.training.train import TrainingSettings, train_model

    training = TrainingSettings(
        n_train=settings.n_train, seed=settings.seed, dataset=dataset, fit=settings.fit
    )
    return train_model(training, show_progressbar=show_progressbar)


def _adapt(
    model: Any, standards: Path, data: Any, settings: RefineSettings, dataset: Any
) -> Any:
    from hyperspy_fe_ml.training.adapt import adapt_model
    from hyperspy_fe_ml.training.standards import load_training_standards

    n = settings.n_adapt_library
    return adapt_model(
        model,
        load_training_standards(standards, model),
        data.train[0][:n],
        data.train[1][:n],
        data.set_ids["train"],
        settings.adaptation,
        dataset=dataset,
    )


def _f(value: Any, digits: int = 2) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return f"{number:.{digits}f}" if math.isfinite(number) else "–"


def _cost(row: dict[str, Any], label: str) -> str:
    """A label cost of a match row in % of the maximum, or a dash."""
    cost = row.get("label_cost", {}).get(label)
    return _f(None if cost is None else 100 * cost)


def refine_report(
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    sets: list[Any],
    shipped: list[dict[str, Any]],
    refined: list[dict[str, Any]],
    loco: list[dict[str, Any]],
    settings: RefineSettings,
    recalibration: dict[str, Any] | None = None,
) -> str:
    """The Markdown report of a refinement cycle."""
    by_file = {
        name: {r["file"]: r for r in rows}
        for name, rows in (
            ("after", after),
            ("shipped", shipped),
            ("refined", refined),
            ("loco", loco),
        )
    }
    lines = [
        "# Refinement cycle",
        "",
        f"{len(sets)} new parameter sets (budget {settings.budget}); "
        f"retrained on {settings.n_train} library spectra"
        + (", adapted to the standards" if settings.adapt else "")
        + ".",
        "",
        "## Library match (RMS misfit, % of the maximum, best set of any class)",
        "",
        "Label cost: how much the library mixture's misfit grows (% of the "
        "maximum, before the new sets) when its valence / Td fraction is held at "
        "the nominal value. Near 0: the shape does not decide that label in this "
        "physics; large: the physics contradicts it.",
        "",
        "| standard | valence | Td | best class before | misfit before | "
        "misfit after | library mixture: valence / Td | label cost: valence / Td |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in before:
        if "refused" in row:
            empty = " |" * 6
            lines.append(f"| {row['file']} | refused: {row['refused'][:60]} |{empty}")
            continue
        a = by_file["after"].get(row["file"], {})
        lines.append(
            f"| {row['file']} | {_f(row['nominal_valence'])} | "
            f"{_f(row['nominal_td_fraction'])} | "
            f"{row['best_group']} | {_f(100 * row['residual'])} | "
            f"{_f(100 * a.get('residual', math.nan))} | "
            f"{_f(a.get('valence'))} / {_f(a.get('td_fraction'))} | "
            f"{_cost(row, 'valence')} / {_cost(row, 'td_fraction')} |"
        )
    lines += _recalibration_lines(recalibration)
    lines += [
        "",
        "## Predictions (valence / Td fraction)",
        "",
        (
            "The refined model was adapted to these standards: its column is not "
            "a test. The leave-one-compound-out column is (each compound predicted "
            "by a model adapted without any of its spectra)."
            if settings.adapt
            else "The refined model is the retrained library model (not adapted); "
            "its broadening ranges were recalibrated on these standards."
            if recalibration is not None
            else "The refined model is the retrained library model (not adapted)."
        ),
        "",
        "| standard | nominal | shipped model | refined model | "
        "leave-one-compound-out | white-line ratio |",
        "|---|---|---|---|---|---|",
    ]
    errors: dict[str, list[float]] = {"shipped": [], "refined": [], "loco": []}
    for row in before:
        name = row["file"]
        s = by_file["shipped"].get(name, {})
        r = by_file["refined"].get(name, {})
        cv = by_file["loco"].get(name, {})
        want = s.get("nominal_valence")
        for key, source, column in (
            ("shipped", s, "valence"),
            ("refined", r, "valence"),
            ("loco", cv, "loco_valence"),
        ):
            got = source.get(column)
            if want is not None and got is not None and math.isfinite(float(got)):
                errors[key].append(abs(float(got) - float(want)))
        lines.append(
            f"| {name} | {_f(want)} / {_f(s.get('nominal_td_fraction'))} | "
            f"{_f(s.get('valence'))} / {_f(s.get('td_fraction'))} | "
            f"{_f(r.get('valence'))} / {_f(r.get('td_fraction'))} | "
            f"{_f(cv.get('loco_valence'))} / {_f(cv.get('loco_td_fraction'))} | "
            f"{_f(s.get('white_line_valence'))} |"
        )
    lines += ["", "| model | mean abs. valence error | within ±0.25 |", "|---|---|---|"]
    for key, values in errors.items():
        if values:
            v = np.asarray(values)
            lines.append(
                f"| {key} | {v.mean():.3f} | {100 * np.mean(v <= 0.25):.0f} % |"
            )
    return "\n".join(lines) + "\n"


def _recalibration_lines(recalibration: dict[str, Any] | None) -> list[str]:
    """The report's recalibration section (empty when it was not run)."""
    if recalibration is None:
        return []
    r = recalibration["ranges"]
    lines = [
        "",
        "## Recalibration (widths and energy stretch of each standard's best set)",
        "",
        f"Retrained with L3 FWHM {r['fwhm_l3']}, L2 FWHM {r['fwhm_l2']}, "
        f"instrument resolution {r['resolution']} eV and energy stretch "
        f"{r['energy_scale']}, from {r['n_standards']} standards.",
        "",
        "| standard | set | L3 FWHM | L2 FWHM | resolution | stretch | misfit (%) |",
        "|---|---|---|---|---|---|---|",
    ]
    for fit in recalibration["fits"]:
        lines.append(
            f"| {fit['file']} | {fit['set_id']} | {_f(fit['fwhm_l3'])} | "
            f"{_f(fit['fwhm_l2'])} | {_f(fit['resolution'])} | "
            f"{_f(fit['energy_scale'], 4)} | {_f(100 * fit['residual'])} |"
        )
    return lines
