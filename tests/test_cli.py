"""The ``fe-ml`` command line: the demo runs, writes figures and meets its numbers."""

import re
from importlib.metadata import entry_points

import numpy as np
import pytest

from hyperspy_fe_ml import __version__
from hyperspy_fe_ml.cli import main


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
    assert "unreadable pixels" in capsys.readouterr().out
    maps = FeStateMaps.load(out)
    expected = s.predict_fe_state()
    np.testing.assert_array_equal(maps["valence"].data, expected["valence"].data)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_predict_command_reports_a_missing_file(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nothing.hspy"), "-o", "x.hspy"]) == 2
    assert "no file" in capsys.readouterr().err


def test_unknown_command_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["frobnicate"])
    assert stop.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
