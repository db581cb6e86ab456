"""Figures of the maps: every colour has its label, thresholds and keys are shown."""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hyperspy_fe_ml.kernels.model_inputs import (  # noqa: E402
    FLAG_FE2_SITE_UNRESOLVED,
    FLAG_NAMES,
    FLAG_NO_EDGE,
    FLAG_OUT_OF_DISTRIBUTION,
)
from hyperspy_fe_ml.phantom import iron_oxide_particle  # noqa: E402


@pytest.fixture(scope="module")
def maps():
    s, _ = iron_oxide_particle((16, 20), seed=4)
    return s.predict_fe_state(show_progressbar=False)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _panel(fig, title):
    (ax,) = [ax for ax in fig.axes if ax.get_title() == title]
    return ax


def _colour_bar_of(fig, ax):
    image = ax.images[0]
    return image.colorbar


def test_flags_colour_bar_names_every_colour_it_shows(maps):
    flags = maps["flags"].data.copy()
    flags &= ~np.uint16(FLAG_FE2_SITE_UNRESOLVED)  # keep to the two categories below
    flags[0, 0] = FLAG_OUT_OF_DISTRIBUTION  # a third category
    maps = type(maps)(
        {**dict(maps.items()), "flags": maps["flags"]._deepcopy_with_new_data(flags)},
        maps.provenance,
    )
    fig = maps.plot()
    bar = _colour_bar_of(fig, _panel(fig, "Quality flags"))
    colours = bar.cmap.N
    labels = [t.get_text() for t in bar.ax.get_yticklabels()]
    assert len(labels) == colours == 3
    n_no_edge = int(np.count_nonzero(flags & FLAG_NO_EDGE))
    n_readable = int(np.count_nonzero(flags == 0))
    assert labels[0] == f"readable ({n_readable})"
    assert " ".join(labels[1].split()) == f"{FLAG_NAMES[FLAG_NO_EDGE]} ({n_no_edge})"
    assert " ".join(labels[2].split()) == f"{FLAG_NAMES[FLAG_OUT_OF_DISTRIBUTION]} (1)"


def test_ood_colour_bar_shows_the_threshold(maps):
    threshold = maps.provenance["model"]["ood_threshold"]
    fig = maps.plot()
    bar = _colour_bar_of(fig, _panel(fig, "OOD score"))
    assert f"threshold {threshold:.3g}" in bar.ax.get_ylabel()
    lo, hi = bar.ax.get_ylim()
    assert lo <= threshold <= hi
    lines = [line.get_ydata()[0] for line in bar.ax.get_lines()]
    assert threshold in lines


def test_composite_has_a_key_from_fe2_blue_to_fe3_red(maps):
    fig = maps.plot()
    _panel(fig, "Fe²⁺ (blue) / Fe³⁺ (red) composite")
    (key,) = [a for a in fig.axes if a.get_ylabel().startswith("Fe³⁺/ΣFe (darker")]
    cmap = key._colorbar.cmap
    np.testing.assert_allclose(cmap(0.0)[:3], (0.0, 0.0, 1.0), atol=0.01)
    np.testing.assert_allclose(cmap(0.5)[:3], (0.5, 0.0, 0.5), atol=0.01)
    np.testing.assert_allclose(cmap(1.0)[:3], (1.0, 0.0, 0.0), atol=0.01)


def test_single_spectrum_figure_has_a_title_and_flags_in_words():
    s, _ = iron_oxide_particle((16, 20), seed=4)
    s.metadata.General.title = "haematite standard"
    fig = s.inav[0, 0].predict_fe_state(show_progressbar=False).plot()
    assert fig._suptitle.get_text() == "Fe state of haematite standard"
    cells = fig.axes[0].tables[0].get_celld()
    rows = {
        cells[(r, 0)].get_text().get_text(): cells[(r, 1)].get_text().get_text()
        for r in range(1, 1 + max(k[0] for k in cells))
    }
    assert rows["quality"] == FLAG_NAMES[FLAG_NO_EDGE]
    assert rows["Fe valence"] == "NaN (see quality)"
    assert "16.000" not in " ".join(rows.values())
