"""LabelledSpectrum: validation, interpolation, conversion to FeL23Signal."""

import numpy as np
import pytest

from hyperspy_fe_ml.library.records import LABEL_METADATA_NODES, LabelledSpectrum


def test_sorted_read_only_and_labels():
    rec = LabelledSpectrum(
        energy=[720.0, 700.0, 710.0],
        intensity=[2.0, 0.0, 1.0],
        valence=3,
        td_fraction=0.25,
        identifier="x",
    )
    np.testing.assert_array_equal(rec.energy, [700.0, 710.0, 720.0])
    np.testing.assert_array_equal(rec.intensity, [0.0, 1.0, 2.0])
    assert rec.labels == {
        "valence": 3.0,
        "coordination_number": None,
        "td_fraction": 0.25,
    }
    with pytest.raises(ValueError, match="read-only"):
        rec.intensity[0] = 5.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"energy": [[1.0, 2.0]], "intensity": [[1.0, 2.0]]}, "must be 1-D"),
        ({"energy": [1.0, 2.0], "intensity": [1.0]}, "same length"),
        ({"energy": [1.0], "intensity": [1.0]}, "at least two points"),
        ({"energy": [1.0, np.inf], "intensity": [1.0, 2.0]}, "non-finite"),
        ({"energy": [1.0, 1.0], "intensity": [1.0, 2.0]}, "repeated"),
        ({"energy": [1.0, 2.0], "intensity": [1j, 2.0]}, "must be real"),
        ({"energy": [1, 2], "intensity": [1, 2], "td_fraction": 1.5}, r"\[0, 1\]"),
        ({"energy": [1, 2], "intensity": [1, 2], "valence": float("nan")}, "finite"),
    ],
)
def test_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LabelledSpectrum(**kwargs)


def test_on_grid_fill():
    rec = LabelledSpectrum([700.0, 702.0, 706.0], [0.0, 2.0, 10.0])
    out = rec.on_grid(np.array([699.0, 701.0, 704.0, 707.0]))
    np.testing.assert_array_equal(out[1:3], [1.0, 6.0])
    assert np.isnan(out[0]) and np.isnan(out[3])
    zero = rec.on_grid(np.array([699.0, 707.0]), fill_value=0.0)
    np.testing.assert_array_equal(zero, [0.0, 0.0])


def test_to_signal_uniform_and_non_uniform():
    energy = np.linspace(700.0, 730.0, 61)
    rec = LabelledSpectrum(
        energy,
        np.sin(energy),
        valence=2.5,
        coordination_number=6,
        source="feff",
        identifier="mp-1",
        metadata={"formula": "Fe3O4"},
    )
    s = rec.to_signal()
    axis = s.axes_manager.signal_axes[0]
    assert s.metadata.Signal.signal_type == "FeL23_EELS"
    assert type(s).__name__ == "FeL23Signal"
    assert axis.is_uniform and axis.units == "eV"
    assert (axis.offset, axis.scale, axis.size) == (700.0, 0.5, 61)
    np.testing.assert_array_equal(s.data, np.sin(energy))
    assert s.metadata.get_item(LABEL_METADATA_NODES["valence"]) == 2.5
    assert s.metadata.Sample.fe_coordination_number == 6.0
    assert not s.metadata.has_item("Sample.fe_td_fraction")
    assert s.metadata.General.title == "mp-1"
    assert s.original_metadata.metadata.formula == "Fe3O4"

    grid = np.array([700.0, 701.0, 703.0, 710.0])
    t = LabelledSpectrum(grid, np.arange(4.0)).to_signal()
    axis = t.axes_manager.signal_axes[0]
    assert not axis.is_uniform
    np.testing.assert_array_equal(axis.axis, grid)
