"""The cross-check example runs and its methods land where the docs say."""

import re
import runpy
from pathlib import Path

import matplotlib
import pytest

EXAMPLE = Path(__file__).parents[1] / "examples" / "cross_check.py"


@pytest.mark.skipif(not EXAMPLE.exists(), reason="not run from a source checkout")
def test_cross_check_example(monkeypatch, tmp_path, capsys):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("FE_ML_EXPDATA", str(tmp_path / "expdata"))  # no standards
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    plt.close("all")
    out = capsys.readouterr().out
    mae = {
        name: float(value)
        for name, value in re.findall(r"^\| ([a-z ()A-Z-]+) \| ([0-9.]+) \|", out, re.M)
    }
    assert set(mae) == {
        "machine learning",
        "component fit",
        "white-line ratio",
        "reference fit (MLLS)",
    }
    # The phantom is built from the component's own references: its best case.
    assert mae["component fit"] < 0.05
    assert mae["machine learning"] < 0.12
    assert mae["reference fit (MLLS)"] < 0.1
    assert "No standards" in out
