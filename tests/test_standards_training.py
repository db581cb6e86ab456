"""Measured standards in training: reading, mixing, adaptation, leave-one-compound-out.

The standards here are written by the tests from library spectra (measured
spectra cannot ship with the tests); "measured-looking" ones carry a systematic
feature the library lacks, so that the adaptation has something to learn.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hyperspy_fe_ml.library.reference import reference_spectrum
from hyperspy_fe_ml.model import OUTPUTS
from hyperspy_fe_ml.training import adapt as adapt_module
from hyperspy_fe_ml.training.adapt import (
    AdaptSettings,
    adapt_model,
    leave_one_compound_out,
)
from hyperspy_fe_ml.training.dataset import DatasetSettings, split_parameter_sets
from hyperspy_fe_ml.training.fit import FitSettings
from hyperspy_fe_ml.training.standards import (
    StandardMixSettings,
    compound_key,
    load_training_standards,
    standard_mixtures,
)
from hyperspy_fe_ml.training.train import TrainingSettings, train_model

AXIS = np.arange(695.0, 740.0, 0.1)


def _write(folder: Path, name: str, y: np.ndarray, **labels: object) -> None:
    head = "".join(f"# {k}: {v}\n" for k, v in labels.items())
    rows = "\n".join(f"{a:.2f},{b:.6f}" for a, b in zip(AXIS, y, strict=True))
    (folder / name).write_text(head + "energy_eV,intensity\n" + rows + "\n")


def _bump(y: np.ndarray, centre: float, height: float) -> np.ndarray:
    """A feature the library lacks: a Gaussian of ``height`` × the L3 maximum."""
    return y + height * y.max() * np.exp(-0.5 * ((AXIS - centre) / 0.6) ** 2)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("alpha-Fe2O3", "Fe2O3"),
        ("Fe2O3 (EELS Data Base)", "Fe2O3"),
        ("hercynite FeAl2O4", "FeAl2O4"),
        ("Fe3O4 (magnetite)", "Fe3O4"),
        ("Ca2Fe2O5 (brownmillerite)", "Ca2Fe2O5"),
        ("Fe2+ end member (mineral)", "fe2+ end member"),
        ("Fe2O3_Fe_L3_Qiang_Xu_141", "Fe2O3"),
    ],
)
def test_compound_key_groups_polymorphs_and_remarks(name, key):
    assert compound_key(name) == key


def test_standards_are_placed_like_library_spectra(tmp_path):
    # A "standard" that is the default library spectrum, on an axis 2 eV off and
    # at an arbitrary scale, comes back where and as large as the library has it.
    for valence in (2, 3):
        y = reference_spectrum(valence, "Oh", AXIS - 2.0)
        _write(tmp_path, f"fe{valence}.csv", 37.0 * y, valence=valence, td_fraction=0)
    _write(tmp_path, "unknown_site.csv", reference_spectrum(3, "Oh", AXIS), valence=3)
    std = load_training_standards(tmp_path)
    assert std.files == ("fe2.csv", "fe3.csv")
    assert "unknown_site.csv" in std.skipped
    np.testing.assert_allclose(std.targets, [[2, 0, 0, 6], [3, 1, 0, 6]])
    for row, valence in zip(std.spectra, (2, 3), strict=True):
        library = reference_spectrum(valence, "Oh", std.energy)
        inside = (std.energy > 703) & (std.energy < 727)
        misfit = np.abs(row - library)[inside].max() / library.max()
        assert misfit < 0.06, (valence, misfit)


def test_standard_mixtures_labels_are_fe_weighted(tmp_path):
    _write(
        tmp_path, "a.csv", reference_spectrum(2, "Oh", AXIS), valence=2, td_fraction=0
    )
    _write(
        tmp_path, "b.csv", reference_spectrum(3, "Td", AXIS), valence=3, td_fraction=1
    )
    std = load_training_standards(tmp_path)
    ids = split_parameter_sets(seed=0)["train"]
    rng = np.random.default_rng(0)
    pure = StandardMixSettings(pure_probability=1.0, standard_pair_probability=0.0)
    x, y, main = standard_mixtures(50, std, ids, rng, pure)
    np.testing.assert_allclose(y, std.targets[main])
    pairs = StandardMixSettings(pure_probability=0.0, standard_pair_probability=1.0)
    x, y, _ = standard_mixtures(400, std, ids, rng, pairs)
    # Two standards only: valence 2 + Fe3+ share, and Td share = Fe3+ share.
    np.testing.assert_allclose(y[:, 0], 2.0 + y[:, 1])
    np.testing.assert_allclose(y[:, 2], y[:, 1])
    np.testing.assert_allclose(y[:, 3], 6.0 - 2.0 * y[:, 2])
    assert 0.05 < y[:, 1].std()
    mixed = standard_mixtures(400, std, ids, rng, StandardMixSettings(0.0, 0.0))[1]
    assert np.all((mixed[:, 0] > 2 - 1e-9) & (mixed[:, 0] < 3 + 1e-9))
    assert np.all((mixed[:, 2] > -1e-9) & (mixed[:, 2] < 1 + 1e-9))
    np.testing.assert_allclose(mixed[:, 1], mixed[:, 0] - 2.0, atol=1e-9)


@pytest.fixture(scope="module")
def small_library_model():
    settings = TrainingSettings(
        n_train=4000,
        n_calibration=400,
        n_test=10,
        fit=FitSettings(n_components=24, hidden_layers=(32,), n_members=2),
    )
    return train_model(settings)


def _measured_looking(folder: Path) -> None:
    """Fe2+ and Fe3+ 'standards' with a satellite the library lacks, at a place
    where the other valence has its own weight: the library model misreads them."""
    for k, (valence, dq) in enumerate(((2, 1.0), (2, 0.8), (3, 1.4), (3, 1.2))):
        y = reference_spectrum(valence, "Oh", AXIS, ten_dq=dq, resolution=0.5)
        centre = 710.2 if valence == 2 else 707.6
        _write(
            folder,
            f"s{k}.csv",
            _bump(y, centre, 1.0),
            compound=f"Fe{k}O",
            valence=valence,
            td_fraction=0,
        )


def test_adaptation_learns_what_the_library_lacks(tmp_path, small_library_model):
    model, data = small_library_model
    # A term calibrated for the model before adaptation does not carry over.
    info = {**model.info, "measured_uncertainty": {"standards": "elsewhere"}}
    model = replace(model, measured_std=np.full(4, 0.2), info=info)
    _measured_looking(tmp_path)
    std = load_training_standards(tmp_path, model)
    before = model.predict(std.spectra)["valence"]
    adapted = adapt_model(
        model,
        std,
        data.train[0][:3000],
        data.train[1][:3000],
        data.set_ids["train"],
        AdaptSettings(n_standard=4000, epochs=10),
    )
    after = adapted.predict(std.spectra)["valence"]
    error_before = np.abs(before - std.targets[:, 0]).mean()
    error_after = np.abs(after - std.targets[:, 0]).mean()
    assert error_before > 0.25  # 0.36 here
    assert error_after < 0.5 * error_before  # 0.11 here
    assert adapted.info["adaptation"]["compounds"] == sorted(set(std.groups))
    assert adapted.measured_std.tolist() == [0.0] * 4
    assert "measured_uncertainty" not in adapted.info
    # The library is not forgotten: held-out library spectra stay close.
    x, y = data.calibration[0], data.calibration[1]
    base_rmse = np.sqrt(np.mean((model.predict(x)["valence"] - y[:, 0]) ** 2))
    new_rmse = np.sqrt(np.mean((adapted.predict(x)["valence"] - y[:, 0]) ** 2))
    assert new_rmse < base_rmse + 0.05


def test_leave_one_compound_out_never_trains_on_the_held_out_compound(
    tmp_path, small_library_model, monkeypatch
):
    model, data = small_library_model
    _measured_looking(tmp_path)
    # Two spectra of one compound: both must leave together.
    y = reference_spectrum(2, "Oh", AXIS, resolution=0.9)
    _write(tmp_path, "s5.csv", y, compound="Fe0O", valence=2, td_fraction=0)
    seen = []

    def recording(model, standards, *args, **kwargs):
        seen.append(set(standards.groups))
        return model

    monkeypatch.setattr(adapt_module, "adapt_model", recording)
    rows = leave_one_compound_out(
        model,
        tmp_path,
        data.train[0][:100],
        data.train[1][:100],
        data.set_ids["train"],
    )
    groups = sorted({row["compound_group"] for row in rows})
    assert groups == ["Fe0O", "Fe1O", "Fe2O", "Fe3O"]
    assert len(seen) == len(groups)
    for trained_on, held in zip(seen, groups, strict=True):
        assert held not in trained_on
        assert trained_on == set(groups) - {held}
    for row in rows:
        for name in OUTPUTS:
            assert np.isfinite(row[f"loco_{name}"])
        # The recording stub returns the library model: same numbers.
        assert row["loco_valence"] == pytest.approx(row["valence"], abs=1e-6)


def test_training_from_a_named_library_uses_it(tmp_path):
    from hyperspy_fe_ml.library.shipped import load_library, save_library

    lib = load_library()
    keep = [i for i in range(len(lib)) if lib.table["coordination"][i] == "Oh"]
    path = save_library(
        tmp_path / "oh_only.npz",
        [lib.parameter_set(i) for i in keep],
        [lib.sticks(i) for i in keep],
        lib.generator,
        lib.edrixs_version,
    )
    ids = split_parameter_sets(seed=0, library=str(path))
    assert max(max(v) for v in ids.values()) == len(keep) - 1
    from hyperspy_fe_ml.training.dataset import make_dataset

    _, y, _ = make_dataset(
        200, AXIS, ids["train"], 0, DatasetSettings(library=str(path), augment=False)
    )
    assert np.all(y[:, 2] == 0.0)  # no tetrahedral set to draw


def test_fe_ml_train_adapts_a_library_model_without_retraining(
    tmp_path, small_library_model
):
    from hyperspy_fe_ml.cli import main
    from hyperspy_fe_ml.model import FeStateModel

    model, _ = small_library_model
    base = model.save(tmp_path / "base.json")
    folder = tmp_path / "standards"
    folder.mkdir()
    _measured_looking(folder)
    out = tmp_path / "mine.json"
    code = main(
        [
            "train",
            "-q",
            "--standards",
            str(folder),
            "--start-from",
            str(base),
            "-o",
            str(out),
        ]
    )
    assert code == 0
    adapted = FeStateModel.load(out)
    assert adapted.info["adaptation"]["standards"] == [f"s{k}.csv" for k in range(4)]
    library = FeStateModel.load(tmp_path / "mine_library.json")
    np.testing.assert_array_equal(library.components, model.components)
    # Starting from an adapted model is refused in one line.
    assert (
        main(
            [
                "train",
                "-q",
                "--standards",
                str(folder),
                "--start-from",
                str(out),
                "-o",
                str(tmp_path / "again.json"),
            ]
        )
        == 2
    )
