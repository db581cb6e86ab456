"""Every example script and the notebook run, on small data, without the standards.

The gallery scripts are run as ``python examples/<name>.py`` would run them (with
``runpy``, ``__name__ == "__main__"``), with the Agg backend and with
``FE_ML_EXPDATA`` pointing at an empty place, so that they take their built-in
fall-back data. ``examples/cross_check.py`` has its own test
(``test_cross_check_example.py``). The notebook is executed with nbclient in a
Jupyter kernel of this interpreter.
"""

import json
import runpy
import sys
from pathlib import Path

import matplotlib
import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"
SCRIPTS = sorted(
    p.name
    for p in EXAMPLES.glob("*.py")
    if p.name != "cross_check.py"  # tests/test_cross_check_example.py
)

pytestmark = pytest.mark.skipif(
    not EXAMPLES.is_dir(), reason="not run from a source checkout"
)


@pytest.fixture
def no_standards(monkeypatch, tmp_path):
    """Agg backend, standards folder absent, figures closed afterwards."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("FE_ML_EXPDATA", str(tmp_path / "no-expdata"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    yield
    plt.close("all")


@pytest.mark.parametrize("name", [*SCRIPTS, "cross_check.py"])
def test_example_is_a_gallery_script(name):
    """Sphinx-gallery layout: docstring with an underlined title, then # %% cells."""
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    assert text.startswith('"""\n'), "the module docstring comes first"
    title, underline = text.splitlines()[1:3]
    assert title and set(underline) == {"="} and len(underline) >= len(title)
    assert "\n# %%\n" in text


#: What each example prints when it works (on its built-in data).
EXPECTED = {
    "quick_start.py": ["valence RMSE over", "90 % intervals hold the truth"],
    "load_and_calibrate.py": [
        "using the built-in spectrum",
        "L3 maximum now at 709.50 eV",
        "ValueError: The signal axis is in keV",
    ],
    "lazy_and_distributed.py": [
        "the cluster's valence map equals the threaded one: True"
    ],
    "train_your_own_model.py": ["writing stand-ins", "saved my_model.json"],
    "preprocess_spectrum_image.py": ["after alignment"],
}


def test_every_example_has_its_expectations():
    assert set(SCRIPTS) == set(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs(name, no_standards, capsys):
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    out = capsys.readouterr().out
    for expected in EXPECTED.get(name, []):
        assert expected in out
    if name == "quick_start.py":
        rmse = float(out.split("valence RMSE over")[1].split(":")[1].split()[0])
        assert rmse < 0.2


@pytest.mark.slow
def test_notebook_executes_and_draws_the_maps_inline(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")  # in the "test" extra
    nbclient = pytest.importorskip("nbclient")
    # A kernel of this very interpreter, whatever kernels the machine has.
    kernels = tmp_path / "jupyter" / "kernels" / "fe-ml-test"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    sys.executable,
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                ],
                "display_name": "hyperspy_fe_ml tests",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("FE_ML_EXPDATA", str(tmp_path / "no-expdata"))
    monkeypatch.delenv("MPLBACKEND", raising=False)

    notebook = nbformat.read(EXAMPLES / "fe_state_maps.ipynb", as_version=4)
    assert not any(c.get("outputs") for c in notebook.cells if c.cell_type == "code")
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="fe-ml-test",
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()

    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the maps, the valence signal, truth vs prediction
    text = "".join(o.get("text", "") for o in outputs)
    assert "90 % intervals cover" in text
