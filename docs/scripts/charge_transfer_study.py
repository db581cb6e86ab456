"""Do charge-transfer multiplets separate Fe Oh/Td on the measured standards?

Run from the project root (the measured spectra stay outside the project; they are
found by :func:`~hyperspy_fe_ml.library.find_standards_dir`, ``../shared/expdata``,
and never copied)::

    OMP_NUM_THREADS=1 python docs/scripts/charge_transfer_study.py \
        [--cache /tmp/ct_sticks] [--out /tmp/ct_study.json]

What it does:

1. Computes a small grid of charge-transfer sets per class (Fe2+ / Fe3+ x Oh / Td,
   :data:`GRID`, literature ranges of de Groot and Kotani, "Core Level
   Spectroscopy of Solids", 2008) with
   :func:`~hyperspy_fe_ml.library.charge_transfer.simulate_ct_sticks` (sticks
   cached as ``.npz`` in ``--cache``; about 1 s per Fe2+ and 8 s per Fe3+ set on
   one core).
2. Puts each CT set on the library's calibrated energy scale by shifting its L3
   stick centroid onto that of the single-ion set with the same 10Dq and Slater
   scaling (the CT model's zero is arbitrary; the single-ion zero is calibrated
   per valence, :mod:`hyperspy_fe_ml.library.calibration`).
3. Matches every standard, exactly as ``fe-ml refine`` does
   (``training.refine._match_all``: ``predict.model_input_spectra`` then
   ``library.match.match_spectrum`` on ``library.match.library_bank`` with its
   width bank), against three libraries: the shipped single-ion one, the CT sets
   alone, and both together (for the NNLS mixture).
4. Prints a Markdown table: per standard the best Oh-type and best Td misfit of
   its valence(s) for single-ion and CT sets, and the mixture's valence / Td
   fraction for single-ion and single-ion + CT sets.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from hyperspy_fe_ml.library.charge_transfer import (
    CTParameterSet,
    simulate_ct_sticks,
    site_hybridisation,
)
from hyperspy_fe_ml.library.multiplet import StickSpectrum, simulate_sticks

#: (valence, site): (Delta values, V values, ionic 10Dq values, Slater scalings).
#: V is V_eg for Oh (V_t2g = V_eg / 2) and the V_eg of an octahedron of the same
#: bonds for Td (:func:`site_hybridisation`; 3.0 stands for the shorter Td bonds).
GRID: dict[tuple[int, str], tuple[tuple[float, ...], ...]] = {
    (2, "Oh"): ((5.0, 6.5), (2.0, 2.6), (0.3, 0.6, 0.9), (0.75, 0.9)),
    (2, "Td"): ((5.0, 6.5), (2.0, 3.0), (-0.2, -0.4, -0.6), (0.75, 0.9)),
    (3, "Oh"): ((2.5, 3.5), (2.0, 2.8), (0.5, 0.9, 1.3), (0.75, 0.9)),
    (3, "Td"): ((2.5, 3.5), (2.0, 3.0), (-0.2, -0.5, -0.8), (0.75, 0.9)),
}
U_DD = 6.0
U_PD = 7.5


def ct_grid() -> list[CTParameterSet]:
    """The CT parameter sets of the study, class by class."""
    out = []
    for (valence, site), (deltas, vs, dqs, scales) in GRID.items():
        for delta, v, dq, s in itertools.product(deltas, vs, dqs, scales):
            v_e, v_t2 = site_hybridisation(site, v)
            out.append(
                CTParameterSet(
                    valence,
                    site,
                    dq,
                    slater_scale=s,
                    delta=delta,
                    u_dd=U_DD,
                    u_pd=U_PD,
                    v_eg=round(v_e, 4),
                    v_t2g=round(v_t2, 4),
                )
            )
    return out


def _l3_centroid(sticks: StickSpectrum) -> float:
    l3 = sticks.edge == 3
    return float(np.average(sticks.energy[l3], weights=sticks.intensity[l3]))


def aligned_ct_sticks(params: CTParameterSet, cache: Path) -> StickSpectrum:
    """CT sticks shifted so their L3 centroid is the single-ion set's (cached)."""
    key = hashlib.sha1(json.dumps(params.to_dict()).encode()).hexdigest()[:16]
    path = cache / f"ct_{key}.npz"
    if not path.is_file():
        ct = simulate_ct_sticks(params)
        shift = _l3_centroid(simulate_sticks(params.single_ion)) - _l3_centroid(ct)
        np.savez(path, energy=ct.energy + shift, intensity=ct.intensity, edge=ct.edge)
    with np.load(path) as data:
        return StickSpectrum(data["energy"], data["intensity"], data["edge"])


def _best(row: dict, groups: list[str]) -> float:
    values = [row["group_residual"][g] for g in groups if g in row["group_residual"]]
    return 100 * min(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "ct"))
    parser.add_argument("--out", default=None, help="JSON file of all matches")
    args = parser.parse_args()

    from threadpoolctl import threadpool_limits

    from hyperspy_fe_ml.library import find_standards_dir
    from hyperspy_fe_ml.library.multiplet import edrixs_version
    from hyperspy_fe_ml.library.shipped import load_library, save_library
    from hyperspy_fe_ml.training.refine import _match_all

    standards = find_standards_dir()
    if standards is None:
        raise SystemExit("no standards folder (../shared/expdata) found")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    sets = ct_grid()
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        sticks = [aligned_ct_sticks(p, cache) for p in sets]
    print(f"{len(sets)} CT sets in {time.perf_counter() - start:.0f} s")

    base = load_library()
    generator = {"charge_transfer": [p.to_dict() for p in sets]}
    ct_path = save_library(
        cache / "ct_library.npz",
        [p.single_ion for p in sets],
        sticks,
        generator,
        edrixs_version(),
    )
    both_path = save_library(
        cache / "single_ion_plus_ct.npz",
        [base.parameter_set(i) for i in range(len(base))]
        + [p.single_ion for p in sets],
        [base.sticks(i) for i in range(len(base))] + sticks,
        generator,
        edrixs_version(),
    )
    rows = {
        name: {r["file"]: r for r in _match_all(standards, path)}
        for name, path in (
            ("single", None),
            ("ct", str(ct_path)),
            ("both", str(both_path)),
        )
    }
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1, default=float))

    print(
        "| standard | nominal valence / Td | single-ion best Oh-type / Td (%) "
        "| CT best Oh / Td (%) | CT best set (Δ, V, 10Dq, Slater) "
        "| mixture single-ion: valence / Td | mixture single-ion + CT: valence / Td |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in sorted(rows["single"]):
        single, ct, both = (rows[k].get(name, {}) for k in ("single", "ct", "both"))
        if "refused" in single or not single:
            continue
        v = single["nominal_valence"]
        td = single["nominal_td_fraction"]
        valences = sorted({int(np.floor(v)), int(np.ceil(v))}) if v else [2, 3]
        oh_groups = [f"{k}{s}" for k in valences for s in ("Oh", "D4h", "C4v")]
        td_groups = [f"{k}Td" for k in valences]
        best_ct = sets[ct["best_set"]]
        td_text = "—" if td is None or td != td else f"{td:.2f}"
        print(
            f"| {name} | {v:.2f} / {td_text} "
            f"| {_best(single, oh_groups):.2f} / {_best(single, td_groups):.2f} "
            f"| {_best(ct, oh_groups):.2f} / {_best(ct, td_groups):.2f} "
            f"| {best_ct.valence}{best_ct.coordination} ({best_ct.delta:g}, "
            f"{best_ct.v_eg:.2g}/{best_ct.v_t2g:.2g}, {best_ct.ten_dq:g}, "
            f"{best_ct.slater_scale:g}) "
            f"| {single['valence']:.2f} / {single['td_fraction']:.2f} "
            f"| {both['valence']:.2f} / {both['td_fraction']:.2f} |"
        )


if __name__ == "__main__":
    main()
