"""The ``fe-ml`` command line: the demo runs, writes figures and meets its numbers;
user errors end in one line on stderr and exit status 2."""

import argparse
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

from hyperspy_fe_ml import __version__
from hyperspy_fe_ml.cli import build_parser, main
from hyperspy_fe_ml.phantom import iron_oxide_particle
from hyperspy_fe_ml.synthetic import synthetic_spectrum_image


@pytest.fixture(scope="module")
def particle():
    """A small raw-count spectrum image: 10 of its 20 pixels hold iron."""
    s, truth = iron_oxide_particle((4, 5), seed=1)
    return s, truth


def _saved(signal, folder: Path, name: str) -> str:
    path = folder / name
    signal.save(path, overwrite=True)
    return str(path)


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_console_script_is_installed():
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("fe-ml") == "hyperspy_fe_ml.cli:main"


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_demo_writes_maps_and_reports_small_errors(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path), "--shape", "24", "30", "-q"]) == 0
    out = capsys.readouterr().out
    for name in ("maps.png", "truth.png"):
        path = tmp_path / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 20_000
    rmse = float(re.search(r"valence RMSE ([\d.]+)", out).group(1))
    fe3 = float(re.search(r"Fe3\+/sum\(Fe\) MAE ([\d.]+)", out).group(1))
    coverage = float(re.search(r"cover ([\d.]+) %", out).group(1))
    support = float(
        re.search(r"iron-free pixels flagged unreadable: ([\d.]+) %", out)[1]
    )
    phases = dict(re.findall(r"  (Fe2O3|FeO) .*: [\d.]+ -> ([\d.]+)", out))
    assert rmse < 0.2
    assert fe3 < 0.12
    assert 75.0 <= coverage <= 99.0
    assert support > 98.0
    assert float(phases["Fe2O3"]) == pytest.approx(3.0, abs=0.12)
    assert float(phases["FeO"]) == pytest.approx(2.0, abs=0.2)


def test_predict_command_writes_maps_equal_to_the_method(tmp_path, capsys):
    from hyperspy_fe_ml.maps import FeStateMaps
    from hyperspy_fe_ml.phantom import iron_oxide_particle

    s, _ = iron_oxide_particle((10, 12), seed=2)
    s.save(tmp_path / "si.hspy")
    out = tmp_path / "maps.hspy"
    png = tmp_path / "maps.png"
    code = main(
        ["predict", str(tmp_path / "si.hspy"), "-o", str(out), "--png", str(png), "-q"]
    )
    assert code == 0
    text = capsys.readouterr().out
    expected_flags = s.predict_fe_state()["flags"].data
    n_no_edge = int(np.count_nonzero(expected_flags & 16))
    assert n_no_edge > 0
    assert f"unreadable pixels (NaN in every map): {n_no_edge} of 120" in text
    assert f"  no Fe L2,3 edge above the noise: {n_no_edge}" in text
    maps = FeStateMaps.load(out)
    expected = s.predict_fe_state()
    np.testing.assert_array_equal(maps["valence"].data, expected["valence"].data)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_predict_command_reports_a_missing_file(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nothing.hspy"), "-o", "x.hspy"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == f"fe-ml predict: no file {tmp_path / 'nothing.hspy'}"


def test_predict_command_reports_an_unreadable_file(tmp_path, capsys):
    junk = tmp_path / "junk.hspy"
    junk.write_text("not a HyperSpy file")
    assert main(["predict", str(junk), "-o", str(tmp_path / "m.hspy")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"fe-ml predict: cannot read {junk} as a spectrum image: ")


def test_predict_command_reports_an_axis_without_units(tmp_path, capsys, particle):
    s = particle[0].deepcopy()
    s.axes_manager.signal_axes[0].units = ""
    source = _saved(s, tmp_path, "si.hspy")
    assert main(["predict", source, "-o", str(tmp_path / "m.hspy"), "-q"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"fe-ml predict: {source}: The signal axis units are ")
    assert "undefined, not eV" in line
    assert not (tmp_path / "m.hspy").exists()


def test_predict_command_converts_an_axis_in_kev(tmp_path, capsys, particle):
    s = particle[0].deepcopy()
    axis = s.axes_manager.signal_axes[0]
    axis.units, axis.offset, axis.scale = "keV", axis.offset / 1e3, axis.scale / 1e3
    source = _saved(s, tmp_path, "si_kev.hspy")
    out = tmp_path / "m.hspy"
    assert main(["predict", source, "-o", str(out), "-q"]) == 0
    assert "energy axis in keV, converted to eV" in capsys.readouterr().out
    from hyperspy_fe_ml.maps import FeStateMaps

    expected = particle[0].predict_fe_state(show_progressbar=False)["valence"].data
    np.testing.assert_allclose(
        FeStateMaps.load(out)["valence"].data, expected, atol=1e-4
    )


def test_offset_axis_is_read_with_a_warning_line_or_calibrated(
    tmp_path, capsys, particle
):
    s = particle[0].deepcopy()
    l3 = s.check_fe_l23().l3_position
    s.axes_manager.signal_axes[0].offset -= 8.0
    source = _saved(s, tmp_path, "si_offset.hspy")
    out = tmp_path / "m.hspy"
    from hyperspy_fe_ml.maps import FeStateMaps

    expected = particle[0].predict_fe_state(show_progressbar=False)["valence"].data
    assert main(["predict", source, "-o", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "offset by" in line]
    assert len(warning) == 1 and warning[0].startswith("fe-ml: warning: ")
    named = float(re.search(r"offset by ([+-][\d.]+) eV", warning[0])[1])
    assert named == pytest.approx(-8.0, abs=1.0)
    np.testing.assert_allclose(
        FeStateMaps.load(out)["valence"].data, expected, atol=0.02, equal_nan=True
    )

    code = main(["predict", source, "-o", str(out), "-q", "--calibrate-l3", str(l3)])
    assert code == 0
    shift = float(
        re.search(r"axis shifted by ([+-][\d.]+) eV", capsys.readouterr().out)[1]
    )
    assert shift == pytest.approx(8.0, abs=0.01)
    np.testing.assert_allclose(
        FeStateMaps.load(out)["valence"].data, expected, atol=0.02, equal_nan=True
    )


def test_an_axis_without_the_white_lines_fails_in_one_line(tmp_path, capsys, particle):
    s = particle[0].deepcopy()
    s.axes_manager.signal_axes[0].offset -= 60.0  # white lines off the axis
    source = _saved(s, tmp_path, "si_off.hspy")
    out = tmp_path / "m.hspy"
    assert main(["predict", source, "-o", str(out), "-q"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "The energy axis covers 630.00–679.90 eV" in line
    assert "needs at least" in line
    assert not out.exists()


def test_background_option_is_the_method_argument(tmp_path, capsys, particle):
    from hyperspy_fe_ml.maps import FeStateMaps

    s = particle[0]
    source = _saved(s, tmp_path, "si.hspy")
    out = tmp_path / "m.hspy"
    # Raw counts told "background removed": the edge drowns in the background.
    options = ["-o", str(out), "-q", "--background-removed", "yes"]
    assert main(["predict", source, *options]) == 1
    maps = FeStateMaps.load(out)
    assert maps.provenance["preprocessing"]["background"] == "pre-edge mean"
    as_method = s.predict_fe_state(background_removed=True, show_progressbar=False)
    np.testing.assert_array_equal(maps["flags"].data, as_method["flags"].data)
    assert "no Fe L2,3 edge above the noise: 20" in capsys.readouterr().out

    options[-1] = "no"
    assert main(["predict", source, *options]) == 0
    maps = FeStateMaps.load(out)
    assert maps.provenance["preprocessing"]["background"] == "power law"
    default = s.predict_fe_state(show_progressbar=False)["valence"].data
    np.testing.assert_array_equal(maps["valence"].data, default)


def test_background_error_names_the_option():
    from hyperspy_fe_ml.cli import one_line

    # Raw counts cropped to 2 eV below the edge: no room to fit the background.
    s, _ = synthetic_spectrum_image((2, 2))
    with pytest.raises(ValueError) as error:
        s.isig[702.0:].check_fe_l23(background_removed=False)
    text = one_line(str(error.value))
    assert "still carry their background" in text
    assert text.endswith("On the command line: --background-removed yes|no.")
    assert "\n" not in text


def test_no_readable_pixel_exits_1_with_the_reason_in_words(tmp_path, capsys):
    import hyperspy.api as hs

    rng = np.random.default_rng(0)
    energy = np.arange(690.0, 740.0, 0.1)
    background = 1e4 * (energy / 690.0) ** -3.0
    s = hs.signals.Signal1D(rng.poisson(background, size=(3, energy.size)).astype("f4"))
    axis = s.axes_manager.signal_axes[0]
    axis.units, axis.offset, axis.scale = "eV", 690.0, 0.1
    source = _saved(s, tmp_path, "no_iron.hspy")
    assert main(["predict", source, "-o", str(tmp_path / "m.hspy"), "-q"]) == 1
    captured = capsys.readouterr()
    assert "unreadable pixels (NaN in every map): 3 of 3" in captured.out
    assert "  no Fe L2,3 edge above the noise: 3" in captured.out
    assert "valence over" not in captured.out
    line = _one_error_line(captured.err)
    assert line.startswith(f"fe-ml predict: no pixel of {source} could be read")


def test_predict_png_without_maps_file(tmp_path, capsys, particle):
    source = _saved(particle[0], tmp_path, "si.hspy")
    png = tmp_path / "maps.png"
    assert main(["predict", source, "--png", str(png), "-q"]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps.png", "si.hspy"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "nothing to write: pass -o maps.hspy (or .zspy), --png maps.png, or both"),
        (["-o", "maps.tif"], "cannot write the maps as 'maps.tif'"),
    ],
)
def test_predict_needs_something_to_write(tmp_path, capsys, particle, options, message):
    source = _saved(particle[0], tmp_path, "si.hspy")
    assert main(["predict", source, *options]) == 2
    assert message in _one_error_line(capsys.readouterr().err)


def test_zspy_round_trip(tmp_path, capsys, particle):
    from hyperspy_fe_ml.maps import FeStateMaps

    source = _saved(particle[0], tmp_path, "si.hspy")
    out = tmp_path / "maps.zspy"
    assert main(["predict", source, "-o", str(out), "-q"]) == 0
    assert out.is_dir()
    maps = FeStateMaps.load(out)
    expected = particle[0].predict_fe_state(show_progressbar=False)
    assert list(maps) == list(expected)
    for name in expected:
        np.testing.assert_array_equal(maps[name].data, expected[name].data)
    assert maps["valence"].metadata.FeL23.provenance.model.members > 0


def test_calibrate_option_rejects_what_is_not_an_l3_energy(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["predict", "si.hspy", "--png", "x.png", "--calibrate-l3", "7.1"])
    assert stop.value.code == 2
    assert "7.1 eV is not an Fe L3 energy" in capsys.readouterr().err


def test_command_line_shows_no_library_deprecations(tmp_path, particle):
    source = _saved(particle[0], tmp_path, "si.hspy")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hyperspy_fe_ml.cli",
            "predict",
            source,
            "-o",
            str(tmp_path / "m.zspy"),
            "-q",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Deprecat" not in result.stderr
    assert "warnings.warn" not in result.stderr
    assert "wrote" in result.stdout


def _sub_commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (commands,) = [
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ]
    return commands.choices


@pytest.mark.parametrize(
    "command",
    ["demo", "predict", "train", "evaluate", "simulate", "calibrate-uncertainty"],
)
def test_help_shows_every_default(command):
    sub = _sub_commands()[command]
    text = " ".join(sub.format_help().split())
    for action in sub._actions:
        if not action.option_strings or isinstance(action.default, bool):
            continue  # positional, -h and flags
        if action.required:
            continue  # nothing to default to
        if action.default == argparse.SUPPRESS:
            continue
        assert action.help, f"{command} {action.option_strings} has no help"
        help_text = " ".join(sub._get_formatter()._expand_help(action).split())
        assert "default" in help_text or "(default:" in help_text, (
            f"{command} {action.option_strings}: {help_text!r}"
        )
        assert help_text in text
    assert "TrainingSettings" not in text


def test_train_defaults_are_the_training_settings():
    from hyperspy_fe_ml.training.train import TrainingSettings

    args = build_parser().parse_args(["train"])
    settings = TrainingSettings()
    assert (args.n_train, args.n_calibration, args.n_test, args.seed) == (
        settings.n_train,
        settings.n_calibration,
        settings.n_test,
        settings.seed,
    )


def test_evaluate_writes_into_an_output_folder(tmp_path, monkeypatch, capsys):
    import hyperspy_fe_ml.training.report as report

    calls = {}

    def fake_evaluate_model(**kwargs):
        calls.update(kwargs)
        return kwargs["card"]

    monkeypatch.setattr(report, "evaluate_model", fake_evaluate_model)
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "-q", "--no-compare"]) == 0
    assert calls["card"] == Path("fe-ml-evaluate") / "model_card.md"
    assert calls["figure"] == Path("fe-ml-evaluate") / "figures" / "robustness.png"
    assert (tmp_path / "fe-ml-evaluate").is_dir()
    assert not (tmp_path / "docs").exists()
    assert main(["evaluate", "-q", "-o", "card", "--card", "c.md"]) == 0
    assert calls["card"] == Path("card") / "c.md"


def test_unknown_command_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["frobnicate"])
    assert stop.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_refine_without_a_standards_folder_fails_in_one_line(tmp_path, capsys):
    code = main(["refine", "--standards", str(tmp_path / "none"), "-o", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fe-ml refine: --standards") and "\n" not in err


def test_train_with_unusable_standards_fails_in_one_line(tmp_path, capsys, monkeypatch):
    from hyperspy_fe_ml.training import train as train_module

    folder = tmp_path / "standards"
    folder.mkdir()
    (folder / "a.csv").write_text("# valence: 2\nenergy_eV,intensity\n700,0\n710,1\n")

    def tiny(settings, **kwargs):
        raise AssertionError("trained before the standards were checked")

    monkeypatch.setattr(train_module, "train_model", tiny)
    out = tmp_path / "m.json"
    code = main(["train", "-q", "--standards", str(folder), "-o", str(out)])
    assert code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("fe-ml train: ") and "no standard can train" in last
    assert "td_fraction" in last
    assert not out.exists() and not (tmp_path / "m_library.json").exists()
