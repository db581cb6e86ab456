"""The verify–refine–retrain cycle: library matching, proposals, ``fe-ml refine``."""

import json
from pathlib import Path

import numpy as np
import pytest

from hyperspy_fe_ml.library.match import (
    UNEXPLAINED_RESIDUAL,
    LibraryMatch,
    library_bank,
    match_spectrum,
    propose_parameter_sets,
)
from hyperspy_fe_ml.library.reference import broaden_library
from hyperspy_fe_ml.library.shipped import load_library
from hyperspy_fe_ml.model import align_on_l3

GRID = np.arange(700.0, 730.0, 0.1)
AXIS = np.arange(695.0, 740.0, 0.1)


@pytest.fixture(scope="module")
def bank():
    return library_bank(GRID, fwhm_l3=(0.4, 0.8), resolution=(0.3, 0.9))


def _row(valence: int, coordination: str, ten_dq: float, slater: float) -> int:
    t = load_library().table
    hit = np.flatnonzero(
        (t["valence"] == valence)
        & (t["coordination"] == coordination)
        & np.isclose(t["ten_dq"], ten_dq)
        & np.isclose(t["slater_scale"], slater)
    )
    return int(hit[0])


@pytest.mark.parametrize(
    ("valence", "site", "dq"), [(2, "Oh", 1.0), (3, "Oh", 1.5), (3, "Td", -0.6)]
)
def test_match_finds_the_set_and_labels_of_a_library_spectrum(bank, valence, site, dq):
    row = _row(valence, site, dq, 0.8)
    y = broaden_library(
        [row], GRID, fwhm_l3=0.8, fwhm_l2=2.0, resolution=0.9, step=0.078, shift=[0.7]
    )
    match = match_spectrum(align_on_l3(GRID, y)[1][0], bank)
    assert match.best_set == row
    assert match.best_group == f"{valence}{site}"
    assert match.residual < 0.01  # resampling of the 0.7 eV shift
    assert match.valence == pytest.approx(valence, abs=0.05)
    assert match.td_fraction == pytest.approx(float(site == "Td"), abs=0.05)


@pytest.mark.parametrize(
    ("first", "second", "valence", "td"),
    [
        ((2, "Oh", 1.0), (3, "Oh", 1.5), 2.5, 0.0),
        ((3, "Oh", 1.5), (3, "Td", -0.6), 3.0, 0.5),
    ],
)
def test_match_of_a_mixture_gives_its_labels(bank, first, second, valence, td):
    kw = {"fwhm_l3": 0.8, "fwhm_l2": 2.0, "resolution": 0.9, "step": 0.078}
    y = sum(
        0.5 * broaden_library([_row(*site, 0.8)], GRID, **kw)
        for site in (first, second)
    )
    match = match_spectrum(align_on_l3(GRID, y)[1][0], bank)
    assert match.mixture_residual < 0.01
    assert match.valence == pytest.approx(valence, abs=0.12)
    assert match.td_fraction == pytest.approx(td, abs=0.2)


def test_label_cost_is_zero_for_true_labels_and_large_for_false_ones(bank):
    # Fe3+ Oh + Fe3+ Td, half each: valence 3, Td share 0.5.
    kw = {"fwhm_l3": 0.8, "fwhm_l2": 2.0, "resolution": 0.9, "step": 0.078}
    y = sum(
        0.5 * broaden_library([_row(*site, 0.8)], GRID, **kw)
        for site in ((3, "Oh", 1.5), (3, "Td", -0.6))
    )
    aligned = align_on_l3(GRID, y)[1][0]
    free = match_spectrum(aligned, bank)
    assert free.label_cost == {}
    true = match_spectrum(aligned, bank, valence=3.0, td_fraction=0.5)
    assert set(true.label_cost) == {"valence", "td_fraction", "both"}
    assert max(true.label_cost.values()) < 0.002  # of the maximum
    # Held at Fe2+, the mixture cannot give an Fe3+ spectrum: the physics
    # contradicts that label by more than 2 % of the maximum.
    false = match_spectrum(aligned, bank, valence=2.0, td_fraction=0.5)
    assert false.label_cost["valence"] > 0.02
    assert false.label_cost["both"] >= false.label_cost["valence"] - 1e-9
    assert false.label_cost["td_fraction"] < 0.002
    # Every other field is the free match's: the labels only add the costs.
    assert false.valence == free.valence
    assert false.mixture_residual == free.mixture_residual
    # A pure Fe3+ Td spectrum at fine widths, held octahedral: the library's own
    # Td signature, about 1 % of the maximum (the Fe3+ Oh/Td half-and-half
    # mixture above is mimicked by octahedral-type sets to 0.05 %).
    kw_fine = {"fwhm_l3": 0.4, "fwhm_l2": 2.0, "resolution": 0.3, "step": 0.078}
    td = broaden_library([_row(3, "Td", -0.6, 0.8)], GRID, **kw_fine)
    td_aligned = align_on_l3(GRID, td)[1][0]
    held_oh = match_spectrum(td_aligned, bank, td_fraction=0.0)
    assert set(held_oh.label_cost) == {"td_fraction"}
    assert held_oh.label_cost["td_fraction"] > 0.005
    assert (
        match_spectrum(td_aligned, bank, td_fraction=1.0).label_cost["td_fraction"]
        < 0.001
    )


def test_held_labels_are_met_by_the_mixture_shares(bank):
    from hyperspy_fe_ml.library.match import (
        MATCH_WINDOW_EV,
        _label_constraints,
        _mixture,
    )

    kw = {"fwhm_l3": 0.8, "fwhm_l2": 2.0, "resolution": 0.9, "step": 0.078}
    y = broaden_library([_row(2, "Oh", 1.0, 0.8)], GRID, **kw)
    aligned = align_on_l3(GRID, y)[1][0]
    inside = (GRID >= MATCH_WINDOW_EV[0]) & (GRID <= MATCH_WINDOW_EV[1])
    best = int(np.flatnonzero((bank.fwhm_l3 == 0.8) & (bank.resolution == 0.9))[0])
    rows = _label_constraints(bank, 2.6, 0.3)["both"]
    shares, _ = _mixture(aligned, bank, best, inside, rows)
    w = shares / shares.sum()
    assert w @ bank.valence == pytest.approx(2.6, abs=0.005)
    assert w @ bank.tetrahedral == pytest.approx(0.3, abs=0.005)
    assert _label_constraints(bank, None, float("nan")) == {}


def _match_at(row: int, residual: float = 0.03) -> LibraryMatch:
    lib = load_library()
    group = f"{int(lib.table['valence'][row])}{lib.table['coordination'][row]}"
    return LibraryMatch(
        best_set=row,
        best_group=group,
        residual=residual,
        group_residual={group: residual},
        group_set={group: row},
        fwhm_l3=0.8,
        resolution=0.7,
    )


def test_proposals_reach_past_the_grid_edge_and_respect_the_budget():
    lib = load_library()
    edge = _row(2, "Oh", 0.6, 0.8)  # the weakest Fe2+ Oh field in the grid
    sets = propose_parameter_sets([_match_at(edge)], lib, budget=50, classes=["2Oh"])
    dq = sorted({p.ten_dq for p in sets})
    assert 0.4 in dq and 0.5 in dq  # whole steps beyond the edge
    assert 0.55 in dq and 0.65 in dq  # half steps about the point
    assert all(p.valence == 2 and p.coordination == "Oh" for p in sets)
    held = {
        (round(float(a), 3), round(float(b), 3))
        for a, b in zip(lib.table["ten_dq"], lib.table["slater_scale"], strict=True)
    }
    assert not {(p.ten_dq, p.slater_scale) for p in sets} & held
    assert len(propose_parameter_sets([_match_at(edge)], lib, 2, classes=["2Oh"])) == 2
    assert propose_parameter_sets([_match_at(edge)], lib, 0) == []  # budget 0
    unexplained = _match_at(edge, UNEXPLAINED_RESIDUAL * 2)
    assert propose_parameter_sets([unexplained], lib, budget=50) == []


def test_proposals_take_turns_between_standards():
    lib = load_library()
    a, b = _row(2, "Oh", 1.0, 0.8), _row(3, "Oh", 1.5, 0.8)
    sets = propose_parameter_sets(
        [_match_at(a, 0.05), _match_at(b, 0.02)], lib, budget=4, classes=None
    )
    assert {p.valence for p in sets} == {2, 3}


def _write(folder: Path, name: str, y: np.ndarray, **labels: object) -> None:
    head = "".join(f"# {k}: {v}\n" for k, v in labels.items())
    rows = "\n".join(f"{e:.2f},{v:.6f}" for e, v in zip(AXIS, y, strict=True))
    (folder / name).write_text(head + "energy_eV,intensity\n" + rows + "\n")


@pytest.mark.slow
def test_refine_runs_the_cycle_and_resumes(tmp_path, monkeypatch):
    pytest.importorskip("edrixs")
    from hyperspy_fe_ml.library.reference import reference_spectrum
    from hyperspy_fe_ml.training import refine as refine_module
    from hyperspy_fe_ml.training.refine import RefineSettings, refine

    standards = tmp_path / "standards"
    standards.mkdir()
    # Weak-field Fe2+ (below the grid's 10Dq range) and a plain Fe3+.
    _write(
        standards,
        "a.csv",
        reference_spectrum(2, "Oh", AXIS, ten_dq=0.6),
        compound="FeCl2",
        valence=2,
        td_fraction=0,
    )
    _write(
        standards,
        "b.csv",
        reference_spectrum(3, "Oh", AXIS),
        compound="FeCl3",
        valence=3,
        td_fraction=0,
    )
    from hyperspy_fe_ml.training.adapt import AdaptSettings
    from hyperspy_fe_ml.training.fit import FitSettings

    settings = RefineSettings(
        budget=2,
        n_train=2000,
        n_adapt_library=500,
        fit=FitSettings(n_components=16, hidden_layers=(16,), n_members=2),
        adaptation=AdaptSettings(n_standard=500, epochs=2),
    )
    out = tmp_path / "run"
    report = refine(standards, out, settings, show_progressbar=False, log=lambda s: 0)
    proposed = json.loads((out / "proposed.json").read_text())
    assert len(proposed) == 2
    assert len(list((out / "sets").glob("*.npz"))) == 2
    lib = load_library()
    from hyperspy_fe_ml.library.shipped import read_library

    extended = read_library(out / "library.npz")
    assert len(extended) == len(lib) + 2
    np.testing.assert_array_equal(
        extended.table["ten_dq"][: len(lib)], lib.table["ten_dq"]
    )
    # Recalibrated: both standards carry the calibrated default broadening and
    # stretch (reference_spectrum), which the width fits find again, and the
    # retraining drew from the ranges they give.
    from hyperspy_fe_ml.library.calibration import DEFAULT_BROADENING, ENERGY_SCALE
    from hyperspy_fe_ml.model import FeStateModel

    recalibration = json.loads((out / "recalibration.json").read_text())
    default = np.hypot(DEFAULT_BROADENING["fwhm_l3"], DEFAULT_BROADENING["resolution"])
    for fit in recalibration["fits"]:
        assert np.hypot(fit["fwhm_l3"], fit["resolution"]) == pytest.approx(
            default, abs=0.2
        )
        assert fit["fwhm_l2"] == pytest.approx(DEFAULT_BROADENING["fwhm_l2"], abs=0.4)
        assert fit["energy_scale"] == pytest.approx(ENERGY_SCALE, abs=0.005)
    ranges = recalibration["ranges"]
    assert ranges["n_standards"] == 2
    assert ranges["fwhm_l3"][0] < DEFAULT_BROADENING["fwhm_l3"] < ranges["fwhm_l3"][1]
    assert ranges["fwhm_l3"][1] - ranges["fwhm_l3"][0] < 1.0  # one "microscope"
    recorded = FeStateModel.load(out / "library_model.json").info["training_settings"]
    assert tuple(recorded["dataset"]["fwhm_l3"]) == tuple(ranges["fwhm_l3"])
    assert recorded["dataset"]["energy_scale"] == ranges["energy_scale"]
    loco = json.loads((out / "loco.json").read_text())
    assert {r["file"] for r in loco} == {"a.csv", "b.csv"}
    assert all(np.isfinite(r["loco_valence"]) for r in loco)
    # The adapted model's uncertainty on measured spectra is calibrated on the
    # held-out predictions: its intervals hold what they would have missed.
    from hyperspy_fe_ml.measured_uncertainty import required_std
    from hyperspy_fe_ml.training.uncertainty import calibrate_from_rows

    final = FeStateModel.load(out / "model.json")
    term = final.measured_std_by_output()["valence"]
    scores = [
        float(
            required_std(
                r["loco_valence"] - 2.0 - (r["file"] == "b.csv"), r["loco_valence_std"]
            )
        )
        for r in loco
    ]
    assert term == pytest.approx(max(scores))  # two standards: the larger score
    assert term == calibrate_from_rows(loco, prefix="loco_").measured_std["valence"]
    assert final.info["measured_uncertainty"]["method"].startswith("leave-one")
    text = report.read_text()
    assert "leave-one-compound-out" in text and "a.csv" in text
    assert "## Recalibration" in text
    # Verify: library spectra with their true labels cost the mixture nothing.
    before = json.loads((out / "matches_before.json").read_text())
    for row in before:
        assert set(row["label_cost"]) == {"valence", "td_fraction", "both"}
        assert 0.0 <= max(row["label_cost"].values()) < 0.005
    assert "label cost: valence / Td" in text

    # A second run finds every step on disk: nothing is simulated or trained.
    def fail(*args, **kwargs):
        raise AssertionError("recomputed a finished step")

    monkeypatch.setattr(refine_module, "_compute_sets", fail)
    monkeypatch.setattr(refine_module, "_retrain", fail)
    monkeypatch.setattr(refine_module, "_adapt", fail)
    assert refine(standards, out, settings, show_progressbar=False, log=lambda s: 0)


def test_square_pyramid_proposals_keep_the_angular_overlap_ratio():
    from hyperspy_fe_ml.library.multiplet import square_pyramid_cf

    lib = load_library()
    t = lib.table
    row = int(np.flatnonzero(t["coordination"] == "C4v")[0])
    ratio_ds = t["ds"][row] / t["ten_dq"][row]
    sets = propose_parameter_sets([_match_at(row)], lib, budget=20)
    c4v = [p for p in sets if p.coordination == "C4v"]
    assert c4v
    for p in c4v:
        assert p.ds == pytest.approx(ratio_ds * p.ten_dq, abs=1e-3)
        assert p.dt == pytest.approx(square_pyramid_cf(p.ten_dq, 0.2)[1], abs=1e-3)


def test_width_fits_find_the_broadening_of_a_noisy_spectrum():
    from hyperspy_fe_ml.library.recalibrate import fit_widths, recalibration_from_fits

    rng = np.random.default_rng(5)
    row = _row(3, "Oh", 1.4, 0.8)
    truths = [(0.5, 1.6, 0.9, 0.975), (0.8, 2.6, 0.4, 0.99)]
    fits = []
    for w3, w2, res, scale in truths:
        y = broaden_library(
            [row],
            GRID,
            fwhm_l3=w3,
            fwhm_l2=w2,
            resolution=res,
            step=0.078,
            energy_scale=scale,
        )
        aligned = align_on_l3(GRID, y)[1][0]
        noisy = aligned + rng.normal(0.0, 0.01 * aligned.max(), aligned.size)
        fit = fit_widths(noisy, GRID, row)
        # The combined width is what a noisy spectrum fixes best; the stretch
        # (the L3-L2 spacing) is pinned by two sharp lines 13 eV apart.
        assert np.hypot(fit.fwhm_l3, fit.resolution) == pytest.approx(
            np.hypot(w3, res), abs=0.15
        )
        assert fit.energy_scale == pytest.approx(scale, abs=0.004)
        assert fit.residual < 0.015
        fits.append(fit)
    r = recalibration_from_fits(fits)
    assert r.resolution[0] < 0.4 and r.resolution[1] > 0.9
    assert r.energy_scale == pytest.approx(np.median([t[3] for t in truths]), abs=0.004)
    with pytest.raises(ValueError, match="no width fit"):
        recalibration_from_fits([])
