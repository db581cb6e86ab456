"""Train on the library with the octahedral 10Dq grid cut to the physical range.

Run from the project root (the standards are read from ../shared/expdata, never
copied)::

    python docs/scripts/octahedral_range_study.py [--n-train 60000] [-o study]

Writes a library without the octahedral-type (Oh, D4h) sets below the 10Dq that
PHYSICS.md ties to the oxide landmarks (Fe3+ pre-peak: 1.2–1.4 eV; Fe2+ +2.7 eV
feature: 0.8–1.0 eV; cut a little below, at 1.15 and 0.75 eV), trains one model
on it and one on the shipped library with the same settings and seed, and scores
both on the measured standards as a user hands them in (``fe-ml evaluate``'s
``evaluate_standards``). Results: docs/library.md, "Octahedral 10Dq restricted to
the physical range".
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hyperspy_fe_ml.library import find_standards_dir
from hyperspy_fe_ml.library.shipped import load_library, save_library
from hyperspy_fe_ml.training.dataset import DatasetSettings
from hyperspy_fe_ml.training.evaluate import evaluate_standards, loco_summary
from hyperspy_fe_ml.training.train import TrainingSettings, train_model

#: Lowest octahedral-type 10Dq kept, eV, per valence (PHYSICS.md landmarks).
PHYSICAL_OCTAHEDRAL_MIN = {3: 1.15, 2: 0.75}
#: Standards whose Td fraction is printed.
WATCH = ("Ca2Fe2O5", "YBaFe4O7", "FeO_", "hercynite", "Fe3O4")


def restricted_library(path: Path) -> Path:
    """The shipped library without the weak-field octahedral-type sets."""
    lib = load_library()
    table = lib.table
    keep = [
        i
        for i in range(len(lib))
        if table["coordination"][i] not in ("Oh", "D4h")
        or table["ten_dq"][i]
        >= PHYSICAL_OCTAHEDRAL_MIN[int(table["valence"][i])] - 1e-6
    ]
    generator = dict(lib.generator, restricted=str(PHYSICAL_OCTAHEDRAL_MIN))
    print(f"library: {len(lib)} -> {len(keep)} sets")
    return save_library(
        path,
        [lib.parameter_set(i) for i in keep],
        [lib.sticks(i) for i in keep],
        generator,
        lib.edrixs_version,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=60_000)
    parser.add_argument("-o", "--output", default="octahedral-range-study")
    args = parser.parse_args()
    standards = find_standards_dir()
    if standards is None:
        raise SystemExit("no ../shared/expdata found: set FE_ML_EXPDATA")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    libraries = {
        "shipped grid": None,
        "physical octahedral 10Dq": str(restricted_library(out / "restricted.npz")),
    }
    for name, library in libraries.items():
        settings = TrainingSettings(
            n_train=args.n_train, dataset=DatasetSettings(library=library)
        )
        model, _ = train_model(settings, show_progressbar=False)
        rows = evaluate_standards(model, standards)
        summary = loco_summary(rows)
        print(
            f"{name}: mean |valence error| {summary['mean_error']:.3f}, within "
            f"0.25 {summary['within']:.0%}, Td calls right "
            f"{summary['td_right']}/{summary['td_labelled']}"
        )
        for r in rows:
            if "refused" not in r and any(w in r["file"] for w in WATCH):
                print(
                    f"  {r['file']:32s} valence {r['valence']:.2f} "
                    f"td {r['td_fraction']:.2f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
