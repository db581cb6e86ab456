"""Kernels over Dask chunks: blocks never split the energy axis; lazy == eager."""

import dask.array as da
import numpy as np
import pytest

from hyperspy_fe_ml.chunked import as_spectrum_blocks, map_spectra
from hyperspy_fe_ml.kernels.preprocess import (
    l3_peak_position,
    resample_spectra,
    subtract_power_law_background,
)

ENERGY = np.round(np.arange(690.0, 740.0, 0.1), 6)


def _data(shape=(9, 11)):
    rng = np.random.default_rng(0)
    edge = 500 * np.exp(-0.5 * ((ENERGY - 709.0) / 0.6) ** 2)
    return rng.poisson(edge + 3000 * (ENERGY / 700) ** -3, size=(*shape, ENERGY.size))


def test_energy_axis_is_rechunked_to_one_chunk():
    data = da.from_array(_data(), chunks=(4, 5, 100))
    blocks = as_spectrum_blocks(data)
    assert blocks.chunks[-1] == (ENERGY.size,)
    assert blocks.chunks[:2] == data.chunks[:2]


def test_numpy_input_is_split_along_navigation_only(monkeypatch):
    import hyperspy_fe_ml.chunked as chunked

    monkeypatch.setattr(chunked, "BLOCK_BYTES", 8 * ENERGY.size * 20)
    blocks = as_spectrum_blocks(_data())
    assert blocks.chunks[-1] == (ENERGY.size,)
    assert max(blocks.chunks[0]) * max(blocks.chunks[1]) <= 20
    assert blocks.npartitions > 1


@pytest.mark.parametrize("chunks", [(1, 11, 500), (4, 3, 500), (5, 5, 37)])
def test_lazy_blocks_give_the_eager_numbers_exactly(chunks):
    data = _data()
    eager = subtract_power_law_background(
        ENERGY, data.reshape(-1, ENERGY.size).astype(float), 690.0, 704.0
    ).reshape(data.shape)
    lazy = map_spectra(
        subtract_power_law_background,
        da.from_array(data, chunks=chunks),
        ENERGY,
        690.0,
        704.0,
    )
    np.testing.assert_array_equal(lazy.compute(), eager)


def test_new_channel_count_and_value_per_pixel():
    data = _data((3, 4))
    grid = np.arange(700.0, 730.0, 0.25)
    resampled = map_spectra(
        resample_spectra, data, ENERGY, grid, out_channels=grid.size
    ).compute()
    assert resampled.shape == (3, 4, grid.size)
    positions = map_spectra(
        l3_peak_position, data, ENERGY, 690.0, 722.0, 0.3, 4.0, out_channels=None
    ).compute()
    assert positions.shape == (3, 4)
    np.testing.assert_allclose(positions, 709.0, atol=0.1)


def test_single_spectrum_and_wrong_energy():
    spectrum = _data((1,))[0]
    out = map_spectra(subtract_power_law_background, spectrum, ENERGY, 690.0, 704.0)
    assert out.shape == ENERGY.shape
    with pytest.raises(ValueError, match="energy has shape"):
        map_spectra(subtract_power_law_background, spectrum, ENERGY[:-1], 690.0, 704.0)


def test_blocks_run_on_the_distributed_scheduler_too():
    distributed = pytest.importorskip("dask.distributed")
    data = da.from_array(_data(), chunks=(3, 11, -1))
    expected = map_spectra(
        subtract_power_law_background, data, ENERGY, 690.0, 704.0
    ).compute(scheduler="threads")
    with distributed.Client(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as client:
        result = client.compute(
            map_spectra(subtract_power_law_background, data, ENERGY, 690.0, 704.0)
        ).result()
    np.testing.assert_array_equal(result, expected)


def test_blas_limit_is_set_once_per_computation_not_per_block(monkeypatch):
    from hyperspy_fe_ml import chunked
    from hyperspy_fe_ml.maps import _compute_together
    from hyperspy_fe_ml.signal_tools import compute_array

    calls = []

    class Limit:
        def restore_original_limits(self):
            calls.append("restore")

    class Controller:
        def limit(self, limits, user_api):
            calls.append(("limit", limits, user_api))
            return Limit()

    monkeypatch.setattr(chunked, "_threadpool_controller", lambda: Controller())

    def block_with_blas(block):
        with chunked.single_threaded_blas():
            return block * 2.0

    data = da.ones((64, 10), chunks=(4, 10))  # 16 blocks
    result = data.map_blocks(block_with_blas, meta=np.empty((0, 0)))
    assert calls == []
    np.testing.assert_array_equal(compute_array(result, False), 2.0)
    assert calls == [("limit", 1, "blas"), "restore"]
    calls.clear()
    (computed,) = _compute_together([result], show_progressbar=False)
    np.testing.assert_array_equal(computed, 2.0)
    assert calls == [("limit", 1, "blas"), "restore"]


def test_graph_optimisation_only_where_it_can_help():
    from hyperspy_fe_ml.chunked import _worth_optimizing, compute_into_numpy

    def double(b):
        return b * 2.0

    data = _data((8, 8)).astype(np.float32)
    eager = as_spectrum_blocks(data).map_blocks(double)
    lazy = da.from_array(data, chunks=(4, 4, -1)).map_blocks(double)
    assert not _worth_optimizing(eager)  # one kernel over views: nothing to fuse
    assert _worth_optimizing(lazy)
    np.testing.assert_array_equal(compute_into_numpy(eager), 2.0 * data)
    np.testing.assert_array_equal(compute_into_numpy(lazy), 2.0 * data)
