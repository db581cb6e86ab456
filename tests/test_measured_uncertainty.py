"""The uncertainty measured spectra add: split-conformal calibration on labelled
standards, stored in the model file, added in quadrature to measured maps."""

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
from helpers import fe_signal

from hyperspy_fe_ml.cli import main
from hyperspy_fe_ml.library import reference_spectrum
from hyperspy_fe_ml.measured_uncertainty import (
    add_measured_std,
    conformal_std,
    leave_one_compound_out_coverage,
    required_std,
)
from hyperspy_fe_ml.model import (
    OUTPUTS,
    Z90,
    FeStateModel,
    ModelFileError,
    load_default_model,
)
from hyperspy_fe_ml.training.uncertainty import calibrate_from_rows, standard_labels


def test_required_std_is_the_extra_std_whose_interval_just_holds_the_error():
    error = np.array([0.0, 0.1, -0.5, 0.5])
    std = np.array([0.1, 0.1, 0.1, 0.4])
    extra = required_std(error, std)
    # Inside the model's own interval: nothing needed.
    assert extra[:2].tolist() == [0.0, 0.0]
    assert extra[3] == 0.0
    # On the edge of the widened interval exactly.
    assert Z90 * np.hypot(std[2], extra[2]) == pytest.approx(0.5)


def test_conformal_std_is_the_finite_sample_quantile():
    scores = np.arange(1.0, 20.0)  # 19 scores: ceil(0.9 * 20) = 18th smallest
    assert conformal_std(scores, 0.9) == 18.0
    assert conformal_std(scores, 0.5) == 10.0  # ceil(0.5 * 20) = 10th
    assert conformal_std(scores[:5], 0.9) == 5.0  # too few: the largest
    with pytest.raises(ValueError, match="No labelled standard"):
        conformal_std([np.nan])
    with pytest.raises(ValueError, match="between 0 and 1"):
        conformal_std(scores, 1.0)


def test_calibrated_intervals_cover_new_draws_at_the_nominal_rate():
    # Errors with a model-form part of 0.12 the model's own std (0.02-0.1) misses.
    rng = np.random.default_rng(0)

    def draw(n):
        std = rng.uniform(0.02, 0.1, n)
        return rng.normal(0.0, np.hypot(std, 0.12)), std

    error, std = draw(4000)
    term = conformal_std(required_std(error, std))
    fresh, fresh_std = draw(20000)
    own = np.mean(np.abs(fresh) <= Z90 * fresh_std)
    covered = np.mean(np.abs(fresh) <= Z90 * np.hypot(fresh_std, term))
    assert own < 0.6
    assert 0.88 <= covered <= 0.92
    assert 0.09 < term < 0.15


def test_leave_one_compound_out_never_calibrates_on_the_held_out_compound():
    error = np.array([0.0, 0.0, 0.0, 1.0, 1.0])
    std = np.full(5, 0.1)
    extra, holds = leave_one_compound_out_coverage(
        error, std, ["a", "b", "c", "d", "d"], coverage=0.5
    )
    # Compound d's large errors never set its own term: held out, it is missed.
    assert extra[3] == extra[4] == 0.0
    assert holds.tolist() == [True, True, True, False, False]
    # The others see one of d's large errors among their four scores.
    assert extra[0] == pytest.approx(
        conformal_std(required_std(error[1:], std[1:]), 0.5)
    )


def test_labels_of_a_standard_follow_from_valence_and_td_fraction():
    labels = standard_labels({"nominal_valence": 3.0, "nominal_td_fraction": 0.5})
    assert labels == {
        "valence": 3.0,
        "fe3_fraction": 1.0,
        "td_fraction": 0.5,
        "coordination_number": 5.0,
    }
    unknown = standard_labels({"nominal_valence": 3.5, "nominal_td_fraction": None})
    assert unknown["fe3_fraction"] is None and unknown["coordination_number"] is None


def test_calibration_from_rows_measures_the_term_per_output():
    rows = []
    for k in range(19):
        error = 0.3 if k == 18 else 0.0  # one standard missed by 0.3
        rows.append(
            {
                "file": f"s{k}.csv",
                "compound": f"Fe{k}O",
                "nominal_valence": 2.0,
                "nominal_td_fraction": None,
                "valence": 2.0 + error,
                "valence_std": 0.05,
                "fe3_fraction": error,
                "fe3_fraction_std": 0.05,
                "td_fraction": 0.1,
                "td_fraction_std": 0.1,
                "coordination_number": 5.8,
                "coordination_number_std": 0.2,
            }
        )
    calibration = calibrate_from_rows(rows)
    # 19 scores, the 18th smallest is still 0: one miss in 19 is within 90 %.
    assert calibration.measured_std["valence"] == 0.0
    assert calibration.summary["valence"]["before"] == pytest.approx(18 / 19)
    rows[17] = {**rows[17], "valence": 2.3, "fe3_fraction": 0.3}
    calibration = calibrate_from_rows(rows)
    expected = float(np.sqrt((0.3 / Z90) ** 2 - 0.05**2))
    assert calibration.measured_std["valence"] == pytest.approx(expected)
    assert calibration.measured_std["fe3_fraction"] == pytest.approx(expected)
    # No Td labels: nothing measured, nothing added.
    assert calibration.measured_std["td_fraction"] == 0.0
    assert "td_fraction" not in calibration.summary


def test_add_measured_std_adds_in_quadrature_and_leaves_the_input_alone():
    own = np.array([0.03, 0.2, np.nan])
    columns = {"valence_std": own, "td_fraction_std": own.copy()}
    add_measured_std(columns, {"valence": 0.04, "td_fraction": 0.0})
    np.testing.assert_allclose(columns["valence_std"][:2], [0.05, np.hypot(0.2, 0.04)])
    assert np.isnan(columns["valence_std"][2])
    assert columns["td_fraction_std"] is not own and own[0] == 0.03


def test_the_shipped_model_adds_a_measured_term_to_maps_of_measured_spectra():
    model = load_default_model()
    extra = model.measured_std_by_output()
    # Calibrated on the development standards: every output has a term, recorded
    # with where it came from.
    assert all(extra[name] > 0 for name in OUTPUTS)
    assert model.info["measured_uncertainty"]["summary"]["valence"]["n"] >= 10
    energy = np.arange(690.0, 740.0, 0.1)
    s = fe_signal(reference_spectrum(3, "Oh", energy)[None].astype("float32"))
    measured = s.predict_fe_state(background_removed=True, show_progressbar=False)
    simulated = s.predict_fe_state(
        background_removed=True, measured=False, show_progressbar=False
    )
    for name in OUTPUTS:
        a = np.asarray(measured[name].data)
        np.testing.assert_array_equal(a, np.asarray(simulated[name].data))
        np.testing.assert_allclose(
            np.asarray(measured[f"{name}_std"].data),
            np.hypot(np.asarray(simulated[f"{name}_std"].data), extra[name]),
            rtol=1e-5,
        )
    assert measured.provenance["preprocessing"]["measured"] is True
    assert measured.provenance["model"]["measured_std"] == extra
    with pytest.raises(TypeError, match="`measured` must be True"):
        s.predict_fe_state(measured="yes")


def test_the_term_round_trips_and_the_arrays_keep_their_hash(tmp_path):
    model = load_default_model()
    term = np.array([0.1, 0.1, 0.2, 0.5])
    changed = replace(model, measured_std=term)
    path = changed.save(tmp_path / "m.json")
    again = FeStateModel.load(path)
    np.testing.assert_allclose(again.measured_std, term)
    # The same arrays give the same bytes: the shipped hash (and the state
    # detectors bound to it) still hold.
    digest = hashlib.sha256((tmp_path / "m.npz").read_bytes()).hexdigest()
    assert digest == model.info["arrays_sha256"]
    document = json.loads(path.read_text())
    for bad in ({"valence": -0.1}, {"valence": "0.1"}, [0.1, 0.1, 0.1, 0.1]):
        value = {**document["measured_std"], **bad} if isinstance(bad, dict) else bad
        path.write_text(json.dumps({**document, "measured_std": value}))
        with pytest.raises(ModelFileError, match="'measured_std' must map"):
            FeStateModel.load(path)
    # A model file from before the term: loads, adds nothing.
    path.write_text(
        json.dumps({k: v for k, v in document.items() if k != "measured_std"})
    )
    assert FeStateModel.load(path).measured_std.tolist() == [0.0] * 4


def _write_standard(folder, name, energy, y, valence, td):
    lines = [f"# compound: {name}", f"# valence: {valence}", f"# td_fraction: {td}"]
    lines += ["energy_eV,intensity"]
    lines += [f"{e:.3f},{v:.6f}" for e, v in zip(energy, y, strict=True)]
    (folder / f"{name}.csv").write_text("\n".join(lines) + "\n")


def test_calibrate_command_writes_a_model_whose_intervals_hold_the_labels(
    tmp_path, capsys
):
    folder = tmp_path / "standards"
    folder.mkdir()
    energy = np.round(np.arange(700.0, 735.0, 0.05), 6)
    # Library spectra with labels 0.4 off for two of five compounds: errors the
    # simulation-calibrated intervals do not hold.
    cases = [(2, 2.0), (3, 3.0), (2, 2.0), (3, 2.6), (2, 2.4)]
    for k, (valence, label) in enumerate(cases):
        y = reference_spectrum(valence, "Oh", energy)
        _write_standard(folder, f"Fe{k + 1}O{k + 2}", energy, y, label, 0)
    out = tmp_path / "calibrated.json"
    assert (
        main(["calibrate-uncertainty", "--standards", str(folder), "-o", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "| valence | 5 (5) |" in printed
    model = FeStateModel.load(out)
    term = model.measured_std_by_output()["valence"]
    assert 0.15 < term < 0.4  # about 0.4 / 1.645, less the model's own std
    info = model.info["measured_uncertainty"]
    assert info["summary"]["valence"]["before"] <= 0.6
    assert info["summary"]["valence"]["calibrated_on_all"] == 1.0
    assert info["files"] == sorted(f"Fe{k + 1}O{k + 2}.csv" for k in range(5))
    # The user errors: one line, exit 2.
    assert (
        main(
            [
                "calibrate-uncertainty",
                "--standards",
                str(tmp_path / "no"),
                "-o",
                str(out),
            ]
        )
        == 2
    )
    assert "not a folder" in capsys.readouterr().err
    assert (
        main(
            [
                "calibrate-uncertainty",
                "--standards",
                str(folder),
                "-o",
                str(out),
                "--coverage",
                "90",
            ]
        )
        == 2
    )
    assert "--coverage 90" in capsys.readouterr().err
