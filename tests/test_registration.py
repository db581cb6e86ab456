"""The extension registers its signals with HyperSpy and they survive I/O."""

import importlib
from pathlib import Path

import hyperspy.api as hs
import numpy as np
import pytest
import yaml

import hyperspy_fe_ml
from hyperspy_fe_ml.signals import FeL23Signal, LazyFeL23Signal

PACKAGE_YAML = Path(hyperspy_fe_ml.__file__).parent / "hyperspy_extension.yaml"
ROOT_YAML = Path(__file__).parents[1] / "hyperspy_extension.yaml"


def _spectrum_image(shape=(3, 4), channels=400) -> FeL23Signal:
    rng = np.random.default_rng(1)
    s = hs.signals.Signal1D(rng.random((*shape, channels)).astype("float32"))
    ax = s.axes_manager.signal_axes[0]
    ax.units, ax.offset, ax.scale = "eV", 690.0, 0.1
    s.set_signal_type("FeL23")
    return s


def _extension_entries() -> list[tuple[str, str, dict]]:
    spec = yaml.safe_load(PACKAGE_YAML.read_text())
    return [
        (group, name, entry)
        for group, entries in spec.items()
        for name, entry in entries.items()
    ]


def test_version_is_a_release_string():
    major, minor, patch = hyperspy_fe_ml.__version__.split(".")[:3]
    assert major.isdigit() and minor.isdigit() and patch[0].isdigit()


def test_top_level_yaml_is_a_symlink_to_the_package_file():
    if not ROOT_YAML.exists():
        pytest.skip("not run from a source checkout")
    assert ROOT_YAML.is_symlink()
    assert ROOT_YAML.resolve() == PACKAGE_YAML.resolve()


@pytest.mark.parametrize(
    ("group", "name", "entry"),
    _extension_entries(),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_every_yaml_class_is_importable_and_known_to_hyperspy(group, name, entry):
    module = importlib.import_module(entry["module"])
    cls = getattr(module, name)
    if group == "signals":
        assert cls._signal_type == entry["signal_type"]
        assert cls._lazy is entry["lazy"]
        assert cls._signal_dimension == entry["signal_dimension"]
        for alias in entry.get("signal_type_aliases", []):
            assert alias in cls._alias_signal_types
        from hyperspy.extensions import ALL_EXTENSIONS

        assert ALL_EXTENSIONS["signals"][name]["module"] == entry["module"]
    else:
        assert callable(cls)


@pytest.mark.parametrize("alias", ["FeL23", "FeL23_EELS", "Fe L23"])
def test_set_signal_type_gives_fel23signal(alias):
    s = hs.signals.Signal1D(np.zeros((2, 50)))
    s.set_signal_type(alias)
    assert type(s) is FeL23Signal
    assert s.metadata.Signal.signal_type == "FeL23_EELS"


def test_lazy_twin_round_trip():
    s = _spectrum_image()
    lazy = s.as_lazy()
    assert type(lazy) is LazyFeL23Signal
    lazy.compute()
    assert type(lazy) is FeL23Signal
    np.testing.assert_array_equal(lazy.data, s.data)


def test_hspy_round_trip_keeps_type_axes_and_data(tmp_path):
    s = _spectrum_image()
    path = tmp_path / "si.hspy"
    s.save(path)
    loaded = hs.load(path)
    assert type(loaded) is FeL23Signal
    np.testing.assert_array_equal(loaded.data, s.data)
    ax = loaded.axes_manager.signal_axes[0]
    assert (ax.units, ax.offset, ax.scale) == ("eV", 690.0, pytest.approx(0.1))
    lazy = hs.load(path, lazy=True)
    assert type(lazy) is LazyFeL23Signal


def test_hspy_load_with_signal_type(tmp_path):
    s = hs.signals.Signal1D(np.arange(300.0))
    s.axes_manager.signal_axes[0].units = "eV"
    path = tmp_path / "plain.hspy"
    s.save(path)
    assert type(hs.load(path)) is not FeL23Signal
    assert type(hs.load(path, signal_type="FeL23")) is FeL23Signal


def test_msa_load_with_signal_type(tmp_path):
    s = hs.signals.Signal1D(np.linspace(10.0, 400.0, 600))
    ax = s.axes_manager.signal_axes[0]
    ax.units, ax.offset, ax.scale = "eV", 695.0, 0.05
    path = tmp_path / "spectrum.msa"
    s.save(path)
    loaded = hs.load(path, signal_type="FeL23")
    assert type(loaded) is FeL23Signal
    np.testing.assert_allclose(loaded.data, s.data, rtol=1e-6)
    axis = loaded.axes_manager.signal_axes[0]
    assert axis.offset == pytest.approx(695.0)
    assert axis.scale == pytest.approx(0.05)


def test_lazy_methods_return_lazy_fel23():
    lazy = _spectrum_image().as_lazy()
    out = lazy.normalise_fe_l23()
    assert type(out) is LazyFeL23Signal
    assert type(lazy.resample_energy()) is LazyFeL23Signal
