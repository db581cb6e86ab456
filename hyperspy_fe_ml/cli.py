"""The ``fe-ml`` command line.

``fe-ml demo`` runs the package's main job on built-in synthetic data and prints how
close it came to the known truth. Each sub-command lives in its own function; other
modules add theirs with an ``add_*_command(subparsers)`` function.
"""

import argparse
import sys

import numpy as np

from hyperspy_fe_ml import __version__


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
    print(
        f"predicted {r.n_spectra} spectra in {r.seconds:.2f} s "
        f"({r.n_spectra / r.seconds:,.0f} spectra/s; the first run after an "
        "install also compiles the numba kernels, which are cached for the next)"
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
    from pathlib import Path

    import hyperspy.api as hs

    from hyperspy_fe_ml.kernels.model_inputs import FLAGS_UNREADABLE

    source = Path(args.input)
    if not source.exists():
        print(f"fe-ml predict: no file {source}", file=sys.stderr)
        return 2
    signal = hs.load(source, lazy=args.lazy)
    if isinstance(signal, list):
        spectra = [s for s in signal if s.axes_manager.signal_dimension == 1]
        if len(spectra) != 1:
            print(
                f"fe-ml predict: {source} holds {len(signal)} signals, "
                f"{len(spectra)} of them spectra; save the spectrum image alone.",
                file=sys.stderr,
            )
            return 2
        signal = spectra[0]
    if signal.axes_manager.signal_dimension != 1:
        print(
            f"fe-ml predict: {source} holds a {signal.axes_manager.signal_dimension}-D "
            "signal, not spectra; pass an EELS spectrum image.",
            file=sys.stderr,
        )
        return 2
    signal.set_signal_type("FeL23")
    background_removed = {"auto": None, "yes": True, "no": False}[
        args.background_removed
    ]
    start = time.perf_counter()
    maps = signal.predict_fe_state(
        args.model,
        background_removed=background_removed,
        show_progressbar=not args.quiet,
    )
    maps = maps.compute(show_progressbar=not args.quiet)
    seconds = time.perf_counter() - start
    output = maps.save(args.output, overwrite=True)
    flags = np.asarray(maps["flags"].data)
    valence = np.asarray(maps["valence"].data, dtype=float)
    n = flags.size
    unreadable = int(np.count_nonzero(flags & FLAGS_UNREADABLE))
    print(f"predicted {n} spectra from {source} in {seconds:.1f} s")
    if unreadable < n:
        print(
            f"valence: mean {np.nanmean(valence):.2f}, "
            f"range {np.nanmin(valence):.2f}-{np.nanmax(valence):.2f}"
        )
    print(f"unreadable pixels (NaN, see the flags map): {unreadable} of {n}")
    print(f"wrote {output}")
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        fig = maps.plot()
        fig.savefig(args.png, dpi=110)
        print(f"wrote {args.png}")
    return 0


def _train(args: argparse.Namespace) -> int:
    import time

    from hyperspy_fe_ml.training.train import TrainingSettings, train_model

    given = {
        name: getattr(args, name)
        for name in ("n_train", "n_calibration", "n_test", "seed")
        if getattr(args, name) is not None
    }
    settings = TrainingSettings(**given)
    start = time.perf_counter()
    print(
        f"fe-ml train: {settings.n_train} training, {settings.n_calibration} "
        f"calibration spectra from the shipped library, seed {settings.seed}"
    )
    model, data = train_model(settings, show_progressbar=not args.quiet)
    path = model.save(args.output)
    p = model.predict(data.test[0])
    rmse = float(((p["valence"] - data.test[1][:, 0]) ** 2).mean() ** 0.5)
    print(f"held-out test valence RMSE {rmse:.3f} ({len(data.test[0])} spectra)")
    print(f"wrote {path} in {time.perf_counter() - start:.0f} s")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hyperspy_fe_ml.training.report import evaluate_model

    card = evaluate_model(
        model_path=args.model,
        standards=args.standards,
        card=Path(args.card),
        figure=Path(args.figure),
        n_test=args.n_test,
        compare=not args.no_compare,
        show_progressbar=not args.quiet,
    )
    print(f"wrote {card}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``fe-ml`` argument parser with all sub-commands."""
    parser = argparse.ArgumentParser(
        prog="fe-ml",
        description="Fe valence and coordination maps from Fe L2,3 EELS.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="run the main job on a built-in synthetic spectrum image",
        description=(
            "Build a synthetic Fe L2,3 spectrum image of an iron-oxide particle "
            "from the multiplet library with known truth, predict the Fe state "
            "lazily over Dask chunks, write the maps as PNG and print the error "
            "against the truth."
        ),
    )
    demo.add_argument("-o", "--output", default="fe-ml-demo", help="output folder")
    demo.add_argument(
        "--shape", type=int, nargs=2, default=(64, 80), metavar=("ROWS", "COLUMNS")
    )
    demo.add_argument("--seed", type=int, default=0, help="noise seed")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)

    predict = commands.add_parser(
        "predict",
        help="predict Fe-state maps of a spectrum image file",
        description=(
            "Load a spectrum image (any format hs.load reads), predict the Fe "
            "valence, Fe3+ fraction, Td fraction, coordination number and their "
            "uncertainties per pixel, and save all maps in one .hspy/.zspy file."
        ),
    )
    predict.add_argument("input", help="spectrum image file (.hspy, .dm4, .msa, …)")
    predict.add_argument("-o", "--output", required=True, help="maps .hspy or .zspy")
    predict.add_argument("--png", default=None, help="also draw the maps into a PNG")
    predict.add_argument(
        "--model", default=None, help="model .json (default: the shipped model)"
    )
    predict.add_argument(
        "--background-removed",
        choices=("auto", "yes", "no"),
        default="auto",
        help="whether the spectra are already background-subtracted",
    )
    predict.add_argument(
        "--lazy", action="store_true", help="load lazily (data larger than memory)"
    )
    predict.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    predict.set_defaults(func=_predict)

    train = commands.add_parser(
        "train",
        help="train the Fe-state model from the shipped library (seeded)",
        description=(
            "Draw augmented mixtures of library spectra, split by parameter set, "
            "fit the PCA + MLP ensemble, calibrate its intervals and OOD threshold, "
            "and write the model (.json + .npz)."
        ),
    )
    train.add_argument("-o", "--output", default="fe_state_model.json")
    for option in ("--n-train", "--n-calibration", "--n-test", "--seed"):
        train.add_argument(
            option, type=int, default=None, help="default: TrainingSettings"
        )
    train.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="measure a model and write its model card",
        description=(
            "Score the model on its held-out test sets, robustness sweeps, a "
            "comparison of model families and experimental standards, and write "
            "the model card (Markdown) and its figure."
        ),
    )
    evaluate.add_argument(
        "--model", default=None, help="model .json (default: the shipped model)"
    )
    evaluate.add_argument(
        "--standards",
        default=None,
        help="folder of experimental standards (.csv with labels, .msa)",
    )
    evaluate.add_argument("--card", default="docs/model_card.md")
    evaluate.add_argument("--figure", default="docs/figures/robustness.png")
    evaluate.add_argument("--n-test", type=int, default=None)
    evaluate.add_argument(
        "--no-compare", action="store_true", help="skip the model-family comparison"
    )
    evaluate.add_argument("-q", "--quiet", action="store_true")
    evaluate.set_defaults(func=_evaluate)

    from hyperspy_fe_ml.library.generate import add_simulate_command

    add_simulate_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fe-ml`` console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
