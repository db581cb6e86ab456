"""The ``fe-ml`` command line.

``fe-ml demo`` runs the package's main job on built-in synthetic data and prints how
close it came to the known truth. Each sub-command lives in its own function; other
modules add theirs with an ``add_*_command(subparsers)`` function.

A user error — a file that cannot be read, an energy axis the model cannot use —
ends the command with one line on stderr that names the problem and the option
that fixes it, and exit status 2 (no traceback). Warnings of this package are
printed as one line each; deprecation warnings of the libraries below (HyperSpy,
exspy) are not shown on the command line.
"""

import argparse
import re
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from hyperspy_fe_ml import __version__

#: Exit status of a user error (as argparse uses for a bad option).
EXIT_USER_ERROR = 2
#: Exit status when the command ran but no pixel could be read.
EXIT_NO_RESULT = 1

_PACKAGE_DIR = str(Path(__file__).resolve().parent)
#: Warning classes of libraries' changes to come, not shown on the command line.
_DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)

#: What the command line offers where a message names a Python-level fix:
#: (pattern in the message, the options that do it).
_COMMAND_LINE_FIXES: tuple[tuple[str, str], ...] = (
    (
        r"calibrate_fe_l3|axis is only offset|axis is probably offset",
        "--calibrate-l3 auto (L3 maximum to 708.65 eV) or --calibrate-l3 ENERGY "
        "(a known L3 energy, eV)",
    ),
    (r"background_removed", "--background-removed yes|no"),
)


class CommandLineError(Exception):
    """A user error: printed as one line, exit status :data:`EXIT_USER_ERROR`."""


def one_line(message: str) -> str:
    r"""``message`` with the command-line options that fix it, on one line.

    Examples
    --------
    >>> text = one_line("A background:\n  pass `background_removed=True`.")
    >>> print(text.replace(" On the command line: ", "\n"))
    A background: pass `background_removed=True`.
    --background-removed yes|no.
    """
    text = " ".join(str(message).split())
    fixes = [fix for pattern, fix in _COMMAND_LINE_FIXES if re.search(pattern, text)]
    if fixes:
        text += " On the command line: " + "; ".join(fixes) + "."
    return text


@contextmanager
def _command_line_warnings():
    """Warnings as one line on stderr; library deprecations not at all."""

    def show(message, category, filename, lineno, file=None, line=None):
        ours = str(Path(filename).resolve()).startswith(_PACKAGE_DIR)
        deprecation = issubclass(category, _DEPRECATIONS) or (
            "Deprecation" in category.__name__  # HyperSpy's VisibleDeprecationWarning
        )
        if deprecation and not ours:
            return  # e.g. exspy importing HyperSpy classes from their old places
        print(f"fe-ml: warning: {one_line(str(message))}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _demo(args: argparse.Namespace) -> int:
    from hyperspy_fe_ml.demo import run_demo

    rows, columns = args.shape
    print(
        f"fe-ml demo: synthetic {rows}x{columns} Fe L2,3 spectrum image of an "
        "iron-oxide particle (Fe3O4 core, Fe2O3 shell, FeO inclusions, a Td Fe2+ "
        "grain, iron-free support; plural scattering, drifting energy offset, "
        "power-law background, Poisson noise), predicted lazily over Dask chunks"
    )
    r = run_demo(
        args.output,
        shape=(rows, columns),
        seed=args.seed,
        show_progressbar=not args.quiet,
    )
    compiled = (
        f"; {r.setup_seconds:.1f} s before that to check the data and compile the "
        "numba kernels, once after an install"
        if r.setup_seconds > 1.0
        else ""
    )
    print(
        f"predicted {r.n_spectra} spectra in {r.seconds:.2f} s "
        f"({r.n_spectra / r.seconds:,.0f} spectra/s{compiled})"
    )
    print("error against the truth over the iron pixels:")
    print(f"  valence RMSE {r.valence_rmse:.3f}")
    print(f"  Fe3+/sum(Fe) MAE {r.fe3_mae:.3f}")
    print(f"  Td fraction MAE {r.td_mae:.3f}")
    print(f"  coordination number MAE {r.coordination_mae:.3f}")
    print(f"  90 % valence intervals cover {100 * r.coverage:.1f} % of the truth")
    print("mean valence per phase (true -> predicted):")
    for name, (true, predicted) in r.phases.items():
        print(f"  {name}: {true:.2f} -> {predicted:.2f}")
    print(
        f"iron-free pixels flagged unreadable: {100 * r.support_flagged:.1f} %; "
        f"iron pixels flagged: {100 * r.iron_flagged:.1f} %"
    )
    for path in r.files:
        print(f"wrote {path}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import time

    from hyperspy_fe_ml.kernels.model_inputs import FLAGS_UNREADABLE

    source = Path(args.input)
    output = None if args.output is None else Path(args.output)
    if output is None and args.png is None:
        raise CommandLineError(
            "nothing to write: pass -o maps.hspy (or .zspy), --png maps.png, or both"
        )
    if output is not None and output.suffix not in (".hspy", ".zspy"):
        raise CommandLineError(
            f"cannot write the maps as {output.name!r}: -o takes a .hspy or .zspy "
            "file (use --png for a figure)"
        )
    if not source.exists():
        raise CommandLineError(f"no file {source}")
    background_removed = {"auto": None, "yes": True, "no": False}[
        args.background_removed
    ]
    try:
        signal = _load_spectrum_image(source, lazy=args.lazy)
    except (ValueError, TypeError, OSError) as error:
        raise CommandLineError(
            f"cannot read {source} as a spectrum image: {error}"
        ) from None
    try:
        if args.calibrate_l3 is not None:
            signal = _calibrate(signal, args.calibrate_l3)
        start = time.perf_counter()
        # Lazy maps: every check runs here, before any heavy work.
        maps = signal.predict_fe_state(
            args.model,
            background_removed=background_removed,
            show_progressbar=not args.quiet,
            lazy_output=True,
        )
    except (ValueError, TypeError, OSError) as error:
        raise CommandLineError(f"{source}: {error}") from None
    maps = maps.compute(show_progressbar=not args.quiet)
    seconds = time.perf_counter() - start
    flags = np.asarray(maps["flags"].data).ravel()
    valence = np.asarray(maps["valence"].data, dtype=float).ravel()
    n = flags.size
    unreadable = (flags & FLAGS_UNREADABLE) != 0
    n_readable = n - int(np.count_nonzero(unreadable))
    print(f"predicted {n} spectra from {source} in {seconds:.1f} s")
    if n_readable:
        print(
            f"valence over the {n_readable} readable pixels: mean "
            f"{np.nanmean(valence):.2f}, range "
            f"{np.nanmin(valence):.2f}-{np.nanmax(valence):.2f}"
        )
    for line in flag_summary(flags):
        print(line)
    written = []
    if output is not None:
        written.append(maps.save(output, overwrite=True))
    if args.png is not None:
        import matplotlib

        matplotlib.use("Agg")
        fig = maps.plot()
        fig.savefig(args.png, dpi=110)
        written.append(args.png)
    for path in written:
        print(f"wrote {path}")
    if n_readable == 0:
        print(
            f"fe-ml predict: no pixel of {source} could be read (reasons above); "
            "every map is NaN. Check that the spectra hold the Fe L2,3 edge in eV "
            "(--calibrate-l3 auto if the axis is offset).",
            file=sys.stderr,
        )
        return 1
    return 0


def flag_summary(flags: np.ndarray) -> list[str]:
    """Lines of text: how many pixels carry each quality flag, in words.

    Parameters
    ----------
    flags
        The ``flags`` map (any shape), bits of
        :data:`~hyperspy_fe_ml.kernels.model_inputs.FLAG_NAMES`.

    Returns
    -------
    list of str
        The unreadable pixels (NaN in every map) per reason, then the pixels
        flagged but kept, per reason.

    Examples
    --------
    >>> import numpy as np
    >>> for line in flag_summary(np.array([0, 16, 16, 64], dtype=np.uint8)):
    ...     print(line)
    unreadable pixels (NaN in every map): 2 of 4
      no Fe L2,3 edge above the noise: 2
    pixels flagged, values kept: 1 of 4
      unlike the training data (out of distribution): 1
    """
    from hyperspy_fe_ml.kernels.model_inputs import FLAG_NAMES, FLAGS_UNREADABLE

    flags = np.asarray(flags).astype(np.int64).ravel()
    n = flags.size
    unreadable = (flags & FLAGS_UNREADABLE) != 0
    lines = [f"unreadable pixels (NaN in every map): {int(unreadable.sum())} of {n}"]
    kept = []
    for bit, name in FLAG_NAMES.items():
        count = int(np.count_nonzero(flags & bit))
        if not count:
            continue
        if bit & FLAGS_UNREADABLE:
            lines.append(f"  {name}: {count}")
        else:
            kept.append(f"  {name}: {count}")
    n_kept = int(np.count_nonzero((flags != 0) & ~unreadable))
    if n_kept:
        lines.append(f"pixels flagged, values kept: {n_kept} of {n}")
        lines.extend(kept)
    return lines


def _load_spectrum_image(source: Path, *, lazy: bool):
    """The one spectrum image in ``source``, as an FeL23 signal with an eV axis."""
    import logging

    import hyperspy.api as hs

    # HyperSpy logs an error of its own (asking for a bug report) before raising
    # for a file it cannot read; the user gets our one line instead.
    logger = logging.getLogger("hyperspy")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        signal = hs.load(source, lazy=lazy)
    finally:
        logger.setLevel(level)
    if isinstance(signal, list):
        spectra = [s for s in signal if s.axes_manager.signal_dimension == 1]
        if len(spectra) != 1:
            raise CommandLineError(
                f"{source} holds {len(signal)} signals, {len(spectra)} of them "
                "spectra; save the spectrum image alone"
            )
        signal = spectra[0]
    if signal.axes_manager.signal_dimension != 1:
        raise CommandLineError(
            f"{source} holds a {signal.axes_manager.signal_dimension}-D signal, not "
            "spectra; pass an EELS spectrum image"
        )
    axis = signal.axes_manager.signal_axes[0]
    units = axis.units if isinstance(axis.units, str) else ""
    if units.strip() in ("keV", "meV") and axis.is_uniform:
        # A unit, not a guess: convert rather than refuse.
        axis.convert_to_units("eV")
        print(f"{source}: energy axis in {units.strip()}, converted to eV")
    signal.set_signal_type("FeL23")
    return signal


def _calibrate(signal, l3_energy: float | str):
    """``--calibrate-l3``: shift the axis to put the L3 maximum at ``l3_energy``."""
    if l3_energy == "auto":
        out = signal.calibrate_fe_l3()
    else:
        out = signal.calibrate_fe_l3(l3_energy=float(l3_energy))
    calibration = out.metadata.FeL23.calibration
    print(
        f"calibrated: L3 maximum measured at {calibration['l3_measured_eV']:.2f} eV, "
        f"axis shifted by {calibration['shift_eV']:+.2f} eV"
    )
    return out


def _train(args: argparse.Namespace) -> int:
    import time

    from hyperspy_fe_ml.training.train import TrainingSettings, train_model

    given = {
        name: getattr(args, name)
        for name in ("n_train", "n_calibration", "n_test", "seed")
        if getattr(args, name) is not None
    }
    settings = TrainingSettings(**given)
    if args.standards is not None:
        _standards_or_exit(args.standards)  # before the long training
    if args.start_from is not None:
        return _adapt_only(args)
    start = time.perf_counter()
    print(
        f"fe-ml train: {settings.n_train} training, {settings.n_calibration} "
        f"calibration spectra from the shipped library, seed {settings.seed}"
    )
    model, data = train_model(settings, show_progressbar=not args.quiet)
    if args.standards is not None:
        from hyperspy_fe_ml.model import library_model_path

        library_path = model.save(library_model_path(args.output))
        print(f"wrote the library-only model {library_path}")
        model = _adapt_to_standards(model, data, args.standards, settings)
    path = model.save(args.output)
    p = model.predict(data.test[0])
    rmse = float(((p["valence"] - data.test[1][:, 0]) ** 2).mean() ** 0.5)
    print(f"held-out test valence RMSE {rmse:.3f} ({len(data.test[0])} spectra)")
    print(f"wrote {path} in {time.perf_counter() - start:.0f} s")
    return 0


def _adapt_only(args: argparse.Namespace) -> int:
    """``fe-ml train --standards DIR --start-from MODEL``: adapt a library model
    without training a new one (its own training split keeps the library in
    view)."""
    from hyperspy_fe_ml.model import (
        FeStateModel,
        ModelFileError,
        library_model_path,
        load_default_model,
    )
    from hyperspy_fe_ml.training.adapt import library_in_view
    from hyperspy_fe_ml.training.refine import RefineSettings
    from hyperspy_fe_ml.training.report import training_settings_of

    if args.standards is None:
        raise CommandLineError(
            "--start-from adapts a model to measured standards: give them with "
            "--standards DIR"
        )
    try:
        base = (
            load_default_model()
            if args.start_from == "shipped"
            else FeStateModel.load(args.start_from)
        )
        settings = training_settings_of(base)
    except (ModelFileError, ValueError, OSError) as error:
        raise CommandLineError(f"--start-from {args.start_from}: {error}") from None
    if (base.info or {}).get("adaptation"):
        raise CommandLineError(
            f"--start-from {args.start_from}: this model is already adapted to "
            "standards; start from its library-only model (…_library.json)"
        )
    data = library_in_view(settings, RefineSettings().n_adapt_library, base.energy)
    model = _adapt_to_standards(base, data, args.standards, settings)
    print(f"wrote the library-only model {base.save(library_model_path(args.output))}")
    print(f"wrote {model.save(args.output)}")
    return 0


def _adapt_to_standards(model, data, folder: str, settings):
    """``fe-ml train --standards``: the library model adapted to the standards."""
    from hyperspy_fe_ml.training.adapt import AdaptSettings, adapt_model
    from hyperspy_fe_ml.training.refine import RefineSettings

    standards = _standards_or_exit(folder, model)
    for name, why in standards.skipped.items():
        print(f"standard {name} not used: {why}")
    n = min(RefineSettings().n_adapt_library, len(data.train[0]))
    print(
        f"adapting to {len(standards)} standards of "
        f"{len(set(standards.groups))} compounds ({n} library spectra kept in view)"
    )
    adapted = adapt_model(
        model,
        standards,
        data.train[0][:n],
        data.train[1][:n],
        data.set_ids["train"],
        AdaptSettings(),
        dataset=settings.dataset,
    )
    print(
        "the adapted model adds no uncertainty for measured spectra yet: the "
        "standards it learnt cannot calibrate it. Run `fe-ml calibrate-uncertainty "
        "--standards OTHER_DIR` with standards it did not learn, or `fe-ml refine`, "
        "which calibrates it leave-one-compound-out"
    )
    return adapted


def _standards_folder_or_exit(folder: str) -> None:
    if not Path(folder).is_dir():
        raise CommandLineError(
            f"--standards {folder}: not a folder; give the folder of labelled "
            "standards (.csv with '# valence:' and '# td_fraction:' headers, or .msa)"
        )


def _standards_or_exit(folder: str, model=None):
    """The standards that can train, or a one-line user error."""
    from hyperspy_fe_ml.training.standards import load_training_standards

    _standards_folder_or_exit(folder)
    try:
        return load_training_standards(folder, model)
    except ValueError as error:
        raise CommandLineError(str(error)) from None


def _refine(args: argparse.Namespace) -> int:
    from hyperspy_fe_ml.training.refine import RefineSettings, refine

    _standards_folder_or_exit(args.standards)
    settings = RefineSettings(
        budget=args.budget,
        n_train=args.n_train,
        recalibrate=not args.no_recalibrate,
        adapt=not args.no_adapt,
        loco=not args.no_loco,
        seed=args.seed,
    )
    report = refine(
        args.standards,
        args.output,
        settings,
        library=args.library,
        show_progressbar=not args.quiet,
        log=lambda line: print(f"fe-ml refine: {line}"),
    )
    print(f"wrote {report}")
    return 0


def _calibrate_uncertainty(args: argparse.Namespace) -> int:
    from hyperspy_fe_ml.model import FeStateModel, load_default_model
    from hyperspy_fe_ml.training.uncertainty import (
        calibrate_on_standards,
        uncertainty_table,
    )

    _standards_folder_or_exit(args.standards)
    if not 0.5 <= args.coverage < 1:
        raise CommandLineError(
            f"--coverage {args.coverage:g}: give the nominal coverage of the "
            "intervals as a fraction, from 0.5 to below 1 (default 0.9)"
        )
    try:
        if args.model is None:
            model = load_default_model()
        else:
            model = FeStateModel.load(args.model)
        calibrated, report = calibrate_on_standards(
            model, args.standards, coverage=args.coverage
        )
    except ValueError as error:
        raise CommandLineError(str(error)) from None
    print("\n".join(uncertainty_table(report)))
    print(f"wrote {calibrated.save(args.output)} (arrays unchanged)")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from hyperspy_fe_ml.training.report import evaluate_model

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    card = evaluate_model(
        model_path=args.model,
        standards=args.standards,
        card=output / args.card,
        figure=output / args.figure,
        n_test=args.n_test,
        compare=not args.no_compare,
        show_progressbar=not args.quiet,
    )
    print(f"wrote {card}")
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default; flags have none, ``None`` is said in words."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or isinstance(action.default, bool):
            return text
        if "(default" in text:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The ``fe-ml`` argument parser with all sub-commands."""
    from hyperspy_fe_ml.training.train import TrainingSettings

    parser = argparse.ArgumentParser(
        prog="fe-ml",
        description="Fe valence and coordination maps from Fe L2,3 EELS.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    def add_command(name: str, **kwargs) -> argparse.ArgumentParser:
        return commands.add_parser(name, formatter_class=_HelpFormatter, **kwargs)

    demo = add_command(
        "demo",
        help="run the main job on a built-in synthetic spectrum image",
        description=(
            "Build a synthetic Fe L2,3 spectrum image of an iron-oxide particle "
            "from the multiplet library with known truth, predict the Fe state "
            "lazily over Dask chunks, write the maps as PNG and print the error "
            "against the truth."
        ),
    )
    demo.add_argument(
        "-o", "--output", default="fe-ml-demo", help="output folder of the figures"
    )
    demo.add_argument(
        "--shape",
        type=int,
        nargs=2,
        default=(64, 80),
        metavar=("ROWS", "COLUMNS"),
        help="pixels of the synthetic spectrum image (default: 64 80)",
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the noise")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)

    predict = add_command(
        "predict",
        help="predict Fe-state maps of a spectrum image file",
        description=(
            "Load a spectrum image (any format hs.load reads), predict the Fe "
            "valence, Fe3+ fraction, Td fraction, coordination number and their "
            "uncertainties per pixel, and save all maps in one .hspy/.zspy file "
            "and/or draw them into a PNG. An energy axis in keV is converted to eV. "
            "Exit status: 0 done, 1 no pixel could be read, 2 a user error (file, "
            "axis, options)."
        ),
    )
    predict.add_argument("input", help="spectrum image file (.hspy, .dm4, .msa, …)")
    predict.add_argument(
        "-o",
        "--output",
        default=None,
        help="maps file, .hspy or .zspy (default: none; give -o, --png or both)",
    )
    predict.add_argument(
        "--png", default=None, help="draw the maps into this PNG (default: none)"
    )
    predict.add_argument(
        "--model", default=None, help="model .json (default: the shipped model)"
    )
    predict.add_argument(
        "--background-removed",
        choices=("auto", "yes", "no"),
        default="auto",
        help="whether the spectra are already background-subtracted; auto decides "
        "from the pre-edge level of the typical spectrum",
    )
    predict.add_argument(
        "--calibrate-l3",
        type=_l3_energy,
        default=None,
        metavar="auto|ENERGY",
        help="shift the energy axis first so that the Fe L3 maximum of the typical "
        "spectrum lies at ENERGY eV (auto: 708.65 eV, half-way between Fe2+ and "
        "Fe3+); for an offset axis (default: no shift)",
    )
    predict.add_argument(
        "--lazy", action="store_true", help="load lazily (data larger than memory)"
    )
    predict.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    predict.set_defaults(func=_predict)

    defaults = TrainingSettings()
    train = add_command(
        "train",
        help="train the Fe-state model from the shipped library (seeded)",
        description=(
            "Draw augmented mixtures of library spectra, split by parameter set, "
            "fit the PCA + MLP ensemble, calibrate its intervals and OOD threshold, "
            "and write the model (.json + .npz)."
        ),
    )
    train.add_argument(
        "-o", "--output", default="fe_state_model.json", help="model file (.json)"
    )
    for option, text in (
        ("--n-train", "training spectra"),
        ("--n-calibration", "calibration spectra (intervals, OOD threshold)"),
        ("--n-test", "held-out test spectra"),
        ("--seed", "seed of the whole run"),
    ):
        name = option[2:].replace("-", "_")
        train.add_argument(option, type=int, default=getattr(defaults, name), help=text)
    train.add_argument(
        "--standards",
        default=None,
        help="folder of labelled measured standards to adapt the model to after "
        "the library training (.csv with '# valence:' and '# td_fraction:' "
        "headers, or .msa; default: none, library only)",
    )
    train.add_argument(
        "--start-from",
        default=None,
        metavar="MODEL",
        help="with --standards: adapt this library-only model (.json, or 'shipped' "
        "for the shipped one) instead of training a new one — about a minute "
        "instead of half an hour (default: train anew)",
    )
    train.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=_train)

    from hyperspy_fe_ml.training.refine import RefineSettings

    refine_defaults = RefineSettings()
    refine = add_command(
        "refine",
        help="one verify-refine-retrain cycle against measured standards",
        description=(
            "Match each standard to the library, compute new multiplet sets "
            "(edrixs) around the best matches within a budget, extend the library, "
            "retrain, adapt to the standards, validate leave-one-compound-out and "
            "write a report. Every step is saved in the output folder; run the "
            "same command again to resume."
        ),
    )
    refine.add_argument(
        "--standards", required=True, help="folder of labelled measured standards"
    )
    refine.add_argument("-o", "--output", default="fe-ml-refine", help="run folder")
    refine.add_argument(
        "--budget",
        type=int,
        default=refine_defaults.budget,
        help="new parameter sets at most",
    )
    refine.add_argument(
        "--n-train",
        type=int,
        default=refine_defaults.n_train,
        help="library training spectra of the retrained model",
    )
    refine.add_argument(
        "--library",
        default=None,
        help="library .npz to refine (default: the shipped one; give a previous "
        "run's library.npz to go round again)",
    )
    refine.add_argument(
        "--seed", type=int, default=refine_defaults.seed, help="seed of the training"
    )
    refine.add_argument(
        "--no-recalibrate",
        action="store_true",
        help="retrain with the shipped broadening ranges instead of those fitted "
        "to the standards",
    )
    refine.add_argument(
        "--no-adapt", action="store_true", help="do not adapt to the standards"
    )
    refine.add_argument(
        "--no-loco",
        action="store_true",
        help="skip the leave-one-compound-out validation",
    )
    refine.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    refine.set_defaults(func=_refine)

    evaluate = add_command(
        "evaluate",
        help="measure a model and write its model card",
        description=(
            "Score the model on its held-out test sets, robustness sweeps, a "
            "comparison of model families and experimental standards, and write "
            "the model card (Markdown) and its figure into the output folder."
        ),
    )
    evaluate.add_argument(
        "--model", default=None, help="model .json (default: the shipped model)"
    )
    evaluate.add_argument(
        "--standards",
        default=None,
        help="folder of experimental standards, .csv with labels or .msa (default: "
        "../shared/expdata beside the working folder or a parent, if there is one)",
    )
    evaluate.add_argument(
        "-o", "--output", default="fe-ml-evaluate", help="output folder"
    )
    evaluate.add_argument(
        "--card", default="model_card.md", help="model card, inside the output folder"
    )
    evaluate.add_argument(
        "--figure",
        default="figures/robustness.png",
        help="robustness figure, inside the output folder",
    )
    evaluate.add_argument(
        "--n-test",
        type=int,
        default=None,
        help="held-out test spectra (default: as many as the model's training run)",
    )
    evaluate.add_argument(
        "--no-compare", action="store_true", help="skip the model-family comparison"
    )
    evaluate.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    evaluate.set_defaults(func=_evaluate)

    calibrate = add_command(
        "calibrate-uncertainty",
        help="calibrate a model's uncertainty on measured spectra against standards",
        description=(
            "Hand every labelled standard of a folder to predict_fe_state with the "
            "model's simulation-calibrated uncertainties, set the standard deviation "
            "per output that measured spectra add (split-conformal: the 90 %% "
            "intervals then hold the labels of 90 %% of them), measure it "
            "leave-one-compound-out and write the model with it. Use standards the "
            "model never trained on."
        ),
    )
    calibrate.add_argument(
        "--standards", required=True, help="folder of labelled measured standards"
    )
    calibrate.add_argument(
        "--model", default=None, help="model .json (default: the shipped model)"
    )
    calibrate.add_argument(
        "-o", "--output", required=True, help="the calibrated model's .json"
    )
    calibrate.add_argument(
        "--coverage",
        type=float,
        default=0.9,
        help="nominal coverage of the intervals",
    )
    calibrate.set_defaults(func=_calibrate_uncertainty)

    from hyperspy_fe_ml.library.generate import add_simulate_command

    add_simulate_command(commands)
    commands.choices["simulate"].formatter_class = _HelpFormatter

    from hyperspy_fe_ml.training.state_detector import add_train_detector_command

    add_train_detector_command(commands)
    commands.choices["train-detector"].formatter_class = _HelpFormatter
    return parser


def _l3_energy(text: str) -> float | str:
    """``--calibrate-l3``: ``"auto"`` (the default target) or an energy, eV."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or an energy in eV such as 709.5, got {text!r}"
        ) from None
    if not 690.0 <= value <= 730.0:
        raise argparse.ArgumentTypeError(
            f"{value:g} eV is not an Fe L3 energy; Fe L3 lies near 707-711 eV"
        )
    return value


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fe-ml`` console script.

    Returns
    -------
    int
        Exit status: 0 done, 1 nothing could be computed (e.g. no pixel could be
        read), 2 a user error (printed as one line on stderr).
    """
    args = build_parser().parse_args(argv)
    with _command_line_warnings():
        try:
            return args.func(args)
        except CommandLineError as error:
            print(f"fe-ml {args.command}: {one_line(str(error))}", file=sys.stderr)
            return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
