"""predict_fe_state: the contract of DESIGN.md, on spectra whose truth is known."""

import threading
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from helpers import fe_signal

from hyperspy_fe_ml.kernels.model_inputs import (
    FLAG_EMPTY,
    FLAG_NEGATIVE,
    FLAG_NO_EDGE,
    FLAG_NOT_FINITE,
    FLAG_SATURATED,
    FLAGS_UNREADABLE,
)
from hyperspy_fe_ml.maps import FeStateMaps
from hyperspy_fe_ml.model import default_model_path, load_default_model
from hyperspy_fe_ml.phantom import iron_oxide_particle
from hyperspy_fe_ml.predict import MAP_QUANTITIES

CONTRACT = (
    "valence",
    "valence_std",
    "fe3_fraction",
    "td_fraction",
    "coordination_number",
    "ood_score",
)


@pytest.fixture(scope="module")
def particle():
    return iron_oxide_particle((24, 30), seed=3)


@pytest.fixture(scope="module")
def particle_maps(particle):
    s, _ = particle
    return s.predict_fe_state(show_progressbar=False)


def _spectra(n: int, fe3: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Raw-count Fe2+/Fe3+ Oh mixtures from the library on 690-740 eV."""
    from hyperspy_fe_ml.library import reference_spectrum

    energy = np.round(np.arange(690.0, 740.0, 0.1), 6)
    fe2_ref = reference_spectrum(2, "Oh", energy)
    fe3_ref = reference_spectrum(3, "Oh", energy)
    rng = np.random.default_rng(seed)
    fe3 = rng.random(n) if fe3 is None else fe3
    edge = fe3[:, None] * fe3_ref + (1 - fe3[:, None]) * fe2_ref
    edge *= 2000.0 / fe3_ref.max()
    background = 5000.0 * (energy / 708.0) ** -3.0
    return rng.poisson(edge + background).astype(np.float32)


_signal = fe_signal  # 690 eV onwards, 0.1 eV channels


# -- the result -----------------------------------------------------------------------


def test_maps_hold_the_contract_quantities_on_calibrated_axes(particle, particle_maps):
    s, _ = particle
    assert isinstance(particle_maps, FeStateMaps)
    assert set(CONTRACT) <= set(particle_maps)
    assert list(particle_maps) == list(MAP_QUANTITIES)
    for name, m in particle_maps.items():
        assert m.data.shape == (24, 30), name
        for nav, ax in zip(
            s.axes_manager.navigation_axes, m.axes_manager.signal_axes, strict=True
        ):
            assert (ax.name, ax.units, ax.scale, ax.offset) == (
                nav.name,
                nav.units,
                nav.scale,
                nav.offset,
            )
        assert m.metadata.Signal.quantity == MAP_QUANTITIES[name]
    assert particle_maps["flags"].data.dtype == np.uint16


def test_provenance_names_model_preprocessing_and_version(particle_maps):
    import hyperspy_fe_ml

    md = particle_maps["valence"].metadata.FeL23.provenance
    assert md.package_version == hyperspy_fe_ml.__version__
    assert md.model.arrays_sha256 == load_default_model().info["arrays_sha256"]
    assert md.preprocessing.background == "power law"
    assert md.preprocessing.axis_offset == 0.0
    assert md.preprocessing.grid_channels == 300
    assert particle_maps.provenance["method"] == "hyperspy_fe_ml.predict_fe_state"


def test_phases_get_their_valence_and_iron_free_pixels_are_flagged(
    particle, particle_maps
):
    _, truth = particle
    valence = particle_maps["valence"].data
    flags = particle_maps["flags"].data
    for phase, tolerance in ((1, 0.12), (2, 0.15), (3, 0.2)):  # Fe2O3, Fe3O4, FeO
        pick = truth.phase == phase
        assert np.nanmean(valence[pick]) == pytest.approx(
            truth.valence[pick][0], abs=tolerance
        )
    iron = truth.has_iron
    # The edge test is a 3-sigma one: about 1 in 700 iron-free pixels passes it.
    no_edge = (flags[~iron] & FLAG_NO_EDGE) != 0
    assert no_edge.mean() > 0.98
    assert np.all(np.isnan(valence[~iron][no_edge]))
    assert not np.any(flags[iron] & FLAGS_UNREADABLE)
    # The calibrated 90 % intervals cover the truth about 90 % of the time.
    std = particle_maps["valence_std"].data[iron]
    inside = np.abs(valence[iron] - truth.valence[iron]) <= 1.645 * std
    assert 0.75 <= inside.mean() <= 0.99


def test_fe3_fraction_follows_a_mixture_series():
    fe3 = np.repeat(np.linspace(0.0, 1.0, 6), 8)
    maps = _signal(_spectra(fe3.size, fe3, seed=1)).predict_fe_state()
    predicted = maps["fe3_fraction"].data.reshape(6, 8).mean(axis=1)
    assert np.all(np.diff(predicted) > 0)
    assert np.abs(predicted - fe3.reshape(6, 8)[:, 0]).max() < 0.15


# -- lazy, eager, distributed -------------------------------------------------------


def test_lazy_in_gives_lazy_out_with_the_eager_numbers(particle, particle_maps):
    s, _ = particle
    lazy = s.as_lazy()
    lazy.data = lazy.data.rechunk((7, 11, -1))
    maps = lazy.predict_fe_state()
    assert maps.lazy and all(m._lazy for m in maps.values())
    computed = maps.compute()
    assert not computed.lazy
    for name in MAP_QUANTITIES:
        np.testing.assert_allclose(
            computed[name].data, particle_maps[name].data, rtol=0, atol=2e-6
        )


def test_lazy_output_overrides_the_input_kind(particle):
    s, _ = particle
    small = s.inav[:5, :4]
    assert small.predict_fe_state(lazy_output=True).lazy
    assert not small.as_lazy().predict_fe_state(lazy_output=False).lazy


def test_same_input_twice_gives_bit_identical_maps(particle, particle_maps):
    s, _ = particle
    again = s.predict_fe_state()
    for name in MAP_QUANTITIES:
        assert np.array_equal(
            again[name].data, particle_maps[name].data, equal_nan=True
        )


def test_distributed_processes_give_the_threaded_numbers():
    distributed = pytest.importorskip("dask.distributed")
    s = _signal(_spectra(64, seed=4).reshape(8, 8, -1)).as_lazy()
    s.data = s.data.rechunk((4, 4, -1))
    threaded = s.predict_fe_state()["valence"].data.compute()
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        on_cluster = s.predict_fe_state()["valence"].data.compute()
    assert np.isfinite(threaded).all()
    np.testing.assert_allclose(on_cluster, threaded, rtol=0, atol=1e-6)


def test_two_threads_sharing_one_model_agree(particle, particle_maps):
    s, _ = particle
    model = load_default_model()
    results = [None, None]

    def work(k):
        results[k] = s.predict_fe_state(model)["valence"].data

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert np.array_equal(r, particle_maps["valence"].data, equal_nan=True)


# -- navigation dimensions ----------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (7,), (3, 4), (2, 3, 2)])
def test_any_navigation_dimension(shape):
    n = int(np.prod(shape)) if shape else 1
    data = _spectra(n, np.full(n, 1.0), seed=2)
    s = _signal(data.reshape(*shape, -1) if shape else data[0])
    maps = s.predict_fe_state()
    expected = shape[::-1] if shape else (1,)
    for m in maps.values():
        assert m.axes_manager.signal_shape == expected
    assert np.nanmean(maps["valence"].data) == pytest.approx(3.0, abs=0.12)


# -- bad pixels and bad input -------------------------------------------------------


def test_bad_pixels_get_nan_and_their_flag_and_the_rest_is_unchanged():
    data = _spectra(40, seed=5)
    clean = _signal(data.copy()).predict_fe_state()
    data[0, 100] = np.nan
    data[1, 200] = np.inf
    data[2] = 0.0
    data[3, 250:] = -5.0
    top = data[4].argmax()
    data[4, top - 3 : top + 3] = data[4, top]  # a clipped, flat-topped peak
    data[5] = 5000.0 * (np.arange(690.0, 740.0, 0.1) / 708.0) ** -3.0  # no edge
    s = _signal(data)
    before = s.data.copy()
    maps = s.predict_fe_state()
    flags = maps["flags"].data
    expected = [FLAG_NOT_FINITE, FLAG_NOT_FINITE, FLAG_EMPTY, FLAG_NEGATIVE]
    expected += [FLAG_SATURATED, FLAG_NO_EDGE]
    for k, bit in enumerate(expected):
        assert flags[k] & bit, (k, flags[k])
        assert np.isnan(maps["valence"].data[k])
    for name in MAP_QUANTITIES:
        np.testing.assert_array_equal(maps[name].data[6:], clean[name].data[6:])
    np.testing.assert_array_equal(s.data, before)


def test_integer_counts_saturate_at_the_dtype_maximum():
    data = np.clip(_spectra(4, seed=6), 0, None).astype(np.uint16)
    data[0, 180:185] = np.iinfo(np.uint16).max
    maps = _signal(data).predict_fe_state()
    assert maps["flags"].data[0] & FLAG_SATURATED
    assert np.isfinite(maps["valence"].data[1:]).all()


def test_input_signal_is_never_modified(particle):
    s, _ = particle
    small = s.inav[:6, :5]
    before = small.data.copy()
    metadata = small.metadata.as_dictionary()
    small.predict_fe_state()
    small.as_lazy().predict_fe_state().compute()
    np.testing.assert_array_equal(small.data, before)
    assert small.metadata.as_dictionary() == metadata


def test_background_removed_input_is_detected_and_read_alike(particle):
    s, truth = particle
    small = s.inav[10:22, 6:18]
    clean = small.remove_fe_background()
    raw_maps = small.predict_fe_state()
    clean_maps = clean.predict_fe_state()
    assert clean_maps.provenance["preprocessing"]["background"] == "pre-edge mean"
    difference = clean_maps["valence"].data - raw_maps["valence"].data
    assert np.nanmean(np.abs(difference)) < 0.05


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: setattr(s.axes_manager[-1], "units", "nm"), "eV"),
        (lambda s: setattr(s.axes_manager[-1], "offset", 400.0), "needs at least"),
    ],
)
def test_bad_axes_raise_before_any_work(change, message):
    s = _signal(_spectra(2, seed=7))
    change(s)
    with pytest.raises(ValueError, match=message):
        s.predict_fe_state()


def test_too_coarse_a_dispersion_is_refused():
    s = _signal(np.ones((2, 3), dtype=np.float32))
    s.axes_manager[-1].scale = 20.0
    with pytest.raises(ValueError, match="channels in the white-line window"):
        s.predict_fe_state()


def test_spectra_short_of_the_white_lines_are_refused_naming_both_ranges():
    s = _signal(_spectra(2, seed=8)).isig[703.0:718.0]
    with pytest.raises(ValueError, match=r"covers 703.00–717.90 eV.*needs at least"):
        s.predict_fe_state(background_removed=True)


def test_model_argument_accepts_a_path_and_refuses_other_things():
    s = _signal(_spectra(3, np.ones(3), seed=9))
    by_path = s.predict_fe_state(str(default_model_path()))
    default = s.predict_fe_state()
    np.testing.assert_array_equal(by_path["valence"].data, default["valence"].data)
    with pytest.raises(TypeError, match="model"):
        s.predict_fe_state(model=42)


def test_dask_array_input_with_energy_split_in_chunks():
    data = _spectra(16, seed=10).reshape(4, 4, -1)
    s = _signal(data).as_lazy()
    s.data = da.from_array(data, chunks=(2, 2, 100))
    eager = _signal(data).predict_fe_state()
    lazy = s.predict_fe_state().compute()
    np.testing.assert_allclose(lazy["valence"].data, eager["valence"].data, atol=2e-6)


# -- saving and plotting ------------------------------------------------------------


def test_maps_save_and_load_in_one_file(tmp_path, particle_maps):
    path = particle_maps.save(tmp_path / "maps.hspy")
    loaded = FeStateMaps.load(path)
    assert list(loaded) == list(particle_maps)
    for name in MAP_QUANTITIES:
        np.testing.assert_array_equal(loaded[name].data, particle_maps[name].data)
        assert loaded[name].axes_manager.signal_axes[0].units == "nm"
    assert loaded.provenance["model"] == particle_maps.provenance["model"]
    with pytest.raises(ValueError, match="hspy"):
        particle_maps.save(tmp_path / "maps.png")


def test_interrupted_maps_save_leaves_the_old_file_and_no_partial_one(
    tmp_path, particle_maps, monkeypatch
):
    from hyperspy.signal import BaseSignal

    path = particle_maps.save(tmp_path / "maps.hspy")
    before = path.read_bytes()

    def disk_full(self, filename, **kwargs):
        Path(filename).write_bytes(b"half a file")
        raise OSError("No space left on device")

    monkeypatch.setattr(BaseSignal, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        particle_maps.save(path, overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["maps.hspy"]
    monkeypatch.undo()
    # overwrite=False keeps an existing file, as HyperSpy does.
    particle_maps.save(path, overwrite=False)
    assert path.read_bytes() == before


def test_plot_draws_every_panel_with_a_colour_bar(particle_maps):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = particle_maps.plot()
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 8  # 7 maps + the Fe2+/Fe3+ composite
    titles = [ax.get_title() for ax in images]
    assert "Fe valence" in titles and "Quality flags" in titles
    valence_image = images[titles.index("Fe valence")].images[0]
    assert valence_image.norm.vcenter == 2.5
    plt.close(fig)


def test_plot_of_a_line_scan_and_of_one_spectrum(particle):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s, _ = particle
    line = s.inav[:, 12].predict_fe_state().plot()
    assert len(line.axes) == 6
    assert line.axes[-1].get_xlabel() == "x (nm)"
    single = s.inav[15, 12].predict_fe_state().plot()
    assert (
        "Fe valence"
        in single.axes[0].tables[0].get_celld()[(1, 0)].get_text().get_text()
    )
    plt.close("all")


def test_progressbar_honours_the_argument(particle, capsys):
    s, _ = particle
    s.inav[:4, :4].predict_fe_state(show_progressbar=True)
    assert "Fe L2,3" in capsys.readouterr().err
    s.inav[:4, :4].predict_fe_state(show_progressbar=False)
    assert "Fe L2,3" not in capsys.readouterr().err
