"""The ``fe-ml`` command line: the demo runs, writes figures and meets its numbers."""

import re
from importlib.metadata import entry_points

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
    assert main(["demo", "-o", str(tmp_path), "--shape", "16", "20", "-q"]) == 0
    out = capsys.readouterr().out
    for name in ("maps.png", "spectra.png"):
        path = tmp_path / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 20_000
    background = float(re.search(r"systematic error ([\d.]+) %", out).group(1))
    rmse = float(re.search(r"RMSE ([\d.]+)", out).group(1))
    fe2, fe3 = (float(v) for v in re.findall(r"pixels (7\d\d\.\d\d) eV", out))
    assert background < 1.0
    assert rmse < 0.05
    assert fe2 == pytest.approx(707.85, abs=0.15)
    assert fe3 == pytest.approx(709.5, abs=0.15)


def test_unknown_command_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["frobnicate"])
    assert stop.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
