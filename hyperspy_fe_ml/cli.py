"""The ``fe-ml`` command line.

``fe-ml demo`` runs the package's main job on built-in synthetic data and prints how
close it came to the known truth. Each sub-command lives in its own function; other
modules add theirs with an ``add_*_command(subparsers)`` function.
"""

import argparse
import sys

from hyperspy_fe_ml import __version__


def _demo(args: argparse.Namespace) -> int:
    from hyperspy_fe_ml.demo import run_demo

    print(
        f"fe-ml demo: synthetic {args.shape[0]}x{args.shape[1]} Fe L2,3 spectrum image "
        "(Fe2+/Fe3+ mixture, power-law background, Poisson noise)"
    )
    result = run_demo(
        args.output,
        shape=tuple(args.shape),
        seed=args.seed,
        show_progressbar=not args.quiet,
    )
    print(
        f"background removal: systematic error {100 * result.background_error:.2f} % "
        "of the L3 maximum (RMS of the pixel-averaged residual, 704-727 eV)"
    )
    print(
        f"Fe L3 maximum: Fe2+ pixels {result.l3_fe2:.2f} eV, Fe3+ pixels "
        f"{result.l3_fe3:.2f} eV (model lines at 707.8 and 709.5 eV)"
    )
    print(
        f"Fe3+/sum(Fe) by two-reference least squares: RMSE {result.fe3_rmse:.3f} "
        "against the truth"
    )
    for path in result.files:
        print(f"wrote {path}")
    return 0


def _train(args: argparse.Namespace) -> int:
    import time

    from hyperspy_fe_ml.training.train import TrainingSettings, train_model

    settings = TrainingSettings(
        n_train=args.n_train,
        n_calibration=args.n_calibration,
        n_test=args.n_test,
        seed=args.seed,
    )
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
            "Make a synthetic mixed-valence Fe L2,3 spectrum image with known "
            "truth, preprocess it lazily over Dask chunks, write maps as PNG and "
            "print the error against the truth."
        ),
    )
    demo.add_argument("-o", "--output", default="fe-ml-demo", help="output folder")
    demo.add_argument(
        "--shape", type=int, nargs=2, default=(48, 64), metavar=("ROWS", "COLUMNS")
    )
    demo.add_argument("--seed", type=int, default=0, help="noise seed")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)

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
    train.add_argument("--n-train", type=int, default=40_000)
    train.add_argument("--n-calibration", type=int, default=8_000)
    train.add_argument("--n-test", type=int, default=8_000)
    train.add_argument("--seed", type=int, default=2026)
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
