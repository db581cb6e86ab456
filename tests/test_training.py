"""Training pipeline on small data: split, mixtures, determinism, a tiny model, card."""

import dask
import numpy as np
import pytest

from hyperspy_fe_ml.library.shipped import load_library
from hyperspy_fe_ml.model import OUTPUTS, FeStateModel
from hyperspy_fe_ml.signals import CANONICAL_ENERGY_EV as ENERGY
from hyperspy_fe_ml.training.dataset import (
    DatasetSettings,
    draw_mixtures,
    make_dataset,
    mixture_labels,
    split_parameter_sets,
)
from hyperspy_fe_ml.training.evaluate import (
    condition_metrics,
    evaluate_standards,
    model_card,
    robustness_curves,
    score_test_set,
)
from hyperspy_fe_ml.training.fit import FitSettings
from hyperspy_fe_ml.training.train import (
    TrainingSettings,
    compare_families,
    train_model,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TABLE = load_library().table


def test_split_is_disjoint_complete_stratified_and_seeded():
    splits = split_parameter_sets(seed=5)
    ids = [set(v) for v in splits.values()]
    assert all(a.isdisjoint(b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    assert set().union(*ids) == set(range(len(TABLE["valence"])))
    groups = {
        (v, c) for v, c in zip(TABLE["valence"], TABLE["coordination"], strict=True)
    }
    for rows in splits.values():
        present = {(TABLE["valence"][r], TABLE["coordination"][r]) for r in rows}
        assert present == groups
    fraction = len(splits["train"]) / len(TABLE["valence"])
    assert 0.65 <= fraction <= 0.75
    again = split_parameter_sets(seed=5)
    other = split_parameter_sets(seed=6)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)
    assert not np.array_equal(splits["test"], other["test"])


def test_training_leaves_out_the_weak_field_octahedral_sets():
    from hyperspy_fe_ml.training.dataset import DatasetSettings

    weakest = DatasetSettings().octahedral_ten_dq_min
    assert weakest == (0.75, 1.15)  # PHYSICS.md: Fe2+ 0.8-1.0, Fe3+ 1.2-1.4 eV
    splits = split_parameter_sets(seed=5, octahedral_ten_dq_min=weakest)
    used = np.concatenate(list(splits.values()))
    octahedral = np.isin(TABLE["coordination"], ["Oh", "D4h"])
    floor = np.where(TABLE["valence"] == 2, weakest[0], weakest[1])
    weak = octahedral & (TABLE["ten_dq"] < floor - 1e-9)
    # Fe2+ Oh 0.6-0.7 and Fe3+ Oh 0.8-1.1, D4h 1.0 eV: all left out, nothing else.
    assert weak.sum() > 50
    assert set(used.tolist()) == set(np.flatnonzero(~weak).tolist())
    assert TABLE["ten_dq"][used][TABLE["coordination"][used] == "Td"].min() < -0.7
    strong = np.flatnonzero(octahedral & (TABLE["valence"] == 3) & ~weak)
    assert TABLE["ten_dq"][strong].min() == pytest.approx(1.2)


def test_group_weights_by_valence_and_site_and_by_site():
    from hyperspy_fe_ml.training.dataset import _balanced_choice

    ids = np.arange(len(TABLE["valence"]))
    rng = np.random.default_rng(3)
    group = np.char.add(
        TABLE["valence"].astype(int).astype(str), TABLE["coordination"].astype(str)
    )

    def drawn(weights):
        rows = _balanced_choice(ids, TABLE, rng, (16000, 1), weights).ravel()
        return {g: float(np.mean(group[rows] == g)) for g in np.unique(group)}

    equal = drawn({})
    assert all(abs(p - 1 / 8) < 0.015 for p in equal.values())
    # "3C4v" leaves out Fe3+ square pyramids only; Fe2+ ones stay.
    no_fe3_c4v = drawn({"3C4v": 0.0})
    assert no_fe3_c4v["3C4v"] == 0.0
    assert abs(no_fe3_c4v["2C4v"] - 1 / 7) < 0.015
    # A site key applies to both valences; the valence key wins over it.
    weighted = drawn({"Td": 3.0, "2Td": 1.0})
    assert abs(weighted["3Td"] - 3 / 10) < 0.02
    assert abs(weighted["2Td"] - 1 / 10) < 0.015


def test_mixture_labels_of_magnetite_and_single_sites():
    w = np.array([[1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]])
    labels = mixture_labels(
        w,
        np.array([[3, 3, 2], [2, 0, 0]]),
        np.array([[4, 6, 6], [6, 0, 0]]),
        np.array([[1, 0, 0], [0, 0, 0]]),
    )
    np.testing.assert_allclose(labels[0], [8 / 3, 2 / 3, 1 / 3, 16 / 3])
    np.testing.assert_allclose(labels[1], [2.0, 0.0, 0.0, 6.0])


def test_mixtures_follow_their_components():
    rng = np.random.default_rng(0)
    ids = split_parameter_sets(seed=0)["train"]
    spectra, targets, info = draw_mixtures(60, ENERGY, ids, rng)
    used = info["components"] >= 0
    assert np.all(np.isin(info["components"][used], ids))
    assert np.array_equal(used.sum(axis=1), info["n_components"])
    assert np.all((targets[:, 0] >= 2) & (targets[:, 0] <= 3))
    np.testing.assert_allclose(targets[:, 1], targets[:, 0] - 2.0, atol=1e-12)
    single = info["n_components"] == 1
    main = info["main_set"][single]
    np.testing.assert_array_equal(targets[single, 0], TABLE["valence"][main])
    np.testing.assert_array_equal(
        targets[single, 2], (TABLE["coordination"][main] == "Td").astype(float)
    )


def test_distorted_tetrahedra_are_labelled_tetrahedral(tmp_path):
    # A library with a D2d set (as docs/scripts/distorted_tetrahedra_library.py
    # writes): its spectra are training targets with Td fraction 1 and CN 4.
    from hyperspy_fe_ml.library.multiplet import ParameterSet
    from hyperspy_fe_ml.library.shipped import save_library

    lib = load_library()
    oh = int(lib.select(valence=3, coordination="Oh")[0])
    td = int(lib.select(valence=3, coordination="Td")[0])
    distorted = ParameterSet(3, "D2d", lib.parameter_set(td).ten_dq, ds=0.1, dt=0.05)
    sets = [lib.parameter_set(oh), distorted]
    path = save_library(
        tmp_path / "d2d.npz",
        sets,
        [lib.sticks(oh), lib.sticks(td)],
        dict(lib.generator),
        lib.edrixs_version,
    )
    settings = DatasetSettings(
        library=str(path), component_probabilities=(1.0, 0.0, 0.0), augment=False
    )
    rng = np.random.default_rng(1)
    _, targets, info = draw_mixtures(40, ENERGY, np.array([0, 1]), rng, settings)
    d2d = info["main_set"] == 1
    assert 0 < d2d.sum() < 40
    np.testing.assert_array_equal(targets[:, 2], d2d.astype(float))
    np.testing.assert_array_equal(targets[:, 3], np.where(d2d, 4.0, 6.0))


def test_white_line_intensity_follows_the_number_of_holes():
    rng = np.random.default_rng(1)
    settings = DatasetSettings(component_probabilities=(1.0, 0.0, 0.0), step=(0, 0))
    areas = {}
    for valence in (2, 3):
        ids = np.flatnonzero(TABLE["valence"] == valence)
        spectra, _, _ = draw_mixtures(40, ENERGY, ids, rng, settings)
        window = (ENERGY >= 700.0) & (ENERGY <= 729.9)
        areas[valence] = np.trapezoid(spectra[:, window], ENERGY[window]).mean()
    # Fe3+ (d5, 5 holes) over Fe2+ (d6, 4 holes): 5/4, less what falls off the grid.
    assert areas[3] / areas[2] == pytest.approx(1.25, rel=0.08)


def test_dataset_is_deterministic_and_scheduler_independent():
    ids = split_parameter_sets(seed=0)["test"]
    a = make_dataset(24, ENERGY, ids, seed=11, block_size=8)
    with dask.config.set(scheduler="synchronous"):
        b = make_dataset(24, ENERGY, ids, seed=11, block_size=8)
    c = make_dataset(24, ENERGY, ids, seed=12, block_size=8)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert np.all(np.isin(a[2][:, 1], ids))
    window = (ENERGY >= 704.0) & (ENERGY <= 727.0)
    # Cropped spectra are NaN beyond their crop; the others are normalised.
    whole = np.isfinite(a[0]).all(axis=1)
    assert 0 < whole.sum() < len(whole)
    np.testing.assert_allclose(
        np.trapezoid(a[0][whole][:, window], ENERGY[window]), 1.0, rtol=1e-6
    )


@pytest.fixture(scope="module")
def tiny():
    settings = TrainingSettings(
        n_train=900,
        n_calibration=300,
        n_test=300,
        seed=3,
        dataset=DatasetSettings(augmentation={"dose": (2000.0, 40000.0)}),
        fit=FitSettings(n_members=2, hidden_layers=(32,), max_iter=60, seed=3),
    )
    model, data = train_model(settings)
    return model, data


def test_tiny_model_learns_valence_on_unseen_parameter_sets(tiny):
    model, data = tiny
    assert set(data.set_ids["test"]).isdisjoint(data.set_ids["train"])
    metrics = score_test_set(model, *data.test, TABLE["coordination"])
    # Guessing the mean scores the spread of the labels (~0.35); the tiny model
    # (900 spectra, offsets of ±3 eV, SNR down to 5) must explain most of it.
    spread = float(np.std(data.test[1][:, 0]))
    assert spread > 0.3
    assert metrics.valence_rmse < 0.7 * spread
    assert 0.0 <= metrics.td_accuracy <= 1.0
    assert set(metrics.coverage) == set(OUTPUTS)
    assert model.info["training_settings"]["n_train"] == 900


def test_tiny_model_round_trips_and_reports(tiny, tmp_path):
    model, data = tiny
    loaded = FeStateModel.load(model.save(tmp_path / "tiny.json"))
    np.testing.assert_allclose(
        loaded.predict(data.test[0][:20])["valence"],
        model.predict(data.test[0][:20])["valence"],
        atol=1e-5,
    )
    curves = robustness_curves(
        model,
        data.set_ids["test"],
        n=60,
        sweeps={"energy offset (eV)": ("offset", (0.0, 3.0))},
    )
    (curve,) = curves.values()
    assert [v for v, _ in curve] == [0.0, 3.0]
    assert all(0 < r < 1.5 for _, r in curve)
    metrics = score_test_set(model, *data.test, TABLE["coordination"])
    text = model_card(model, {"test": metrics}, curves, [], [], inference_us=1.0)
    assert f"{metrics.valence_rmse:.3f}" in text
    assert "| valence RMSE |" in text


def test_condition_table_narrows_the_ranges_it_names(tiny):
    model, data = tiny
    conditions = condition_metrics(
        model,
        data.set_ids["test"],
        n=300,
        conditions={
            "25 electrons": {"dose": (25.0, 25.0)},
            "40 000 electrons": {"dose": (40000.0, 40000.0)},
        },
    )
    assert list(conditions) == ["25 electrons", "40 000 electrons"]
    low, high = conditions.values()
    # Noise of 20 % of the L3 maximum against 0.5 %: the pinned dose must show.
    assert high.valence_rmse < 0.8 * low.valence_rmse
    assert low.n == high.n == 300
    metrics = score_test_set(model, *data.test, TABLE["coordination"])
    text = model_card(
        model, {"test": metrics}, {}, [], [], conditions=conditions, inference_us=1.0
    )
    assert f"| 40 000 electrons | {high.valence_rmse:.3f} |" in text
    assert "Not run" in text  # no family comparison given


def test_family_comparison_fits_every_family_on_the_same_subset(tiny):
    _, data = tiny
    rows = compare_families(data, n_trees=5, n_train=300)
    assert [r["n_train"] for r in rows] == [300, 300, 300]
    assert [r["family"].split()[0] for r in rows] == ["random", "gradient", "MLP"]
    spread = float(np.std(data.test[1][:, 0]))
    assert all(0.0 < r["valence_rmse"] < 1.2 * spread for r in rows)


def test_standards_are_predicted_beside_the_white_line_ratio(tiny, tmp_path):
    from hyperspy_fe_ml.library.reference import reference_spectrum

    model, _ = tiny
    energy = np.round(np.arange(700.0, 735.0, 0.05), 6)
    for valence in (2, 3):
        y = reference_spectrum(valence, "Oh", energy)
        lines = [f"# compound: test Fe{valence}", f"# valence: {valence}"]
        lines += ["# td_fraction: 0", "energy_eV,intensity"]
        lines += [f"{e:.3f},{v:.6f}" for e, v in zip(energy, y, strict=True)]
        (tmp_path / f"fe{valence}.csv").write_text("\n".join(lines) + "\n")
    rows = evaluate_standards(model, tmp_path)
    assert [r["nominal_valence"] for r in rows] == [2.0, 3.0]
    assert rows[0]["valence"] < rows[1]["valence"]
    assert rows[0]["white_line_ratio"] < rows[1]["white_line_ratio"]
    assert all(np.isfinite(r["valence_std"]) for r in rows)
