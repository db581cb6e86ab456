"""Reliability: bad input, interrupted writes and failing workers (docs/reliability.md).

Each test is one or more rows of the table in ``docs/reliability.md``; the rows that
earlier test files already check cite those tests instead.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from dataclasses import replace

import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest
from helpers import fe_signal

from hyperspy_fe_ml import fileio
from hyperspy_fe_ml.chunked import map_spectra
from hyperspy_fe_ml.kernels import preprocess as kp
from hyperspy_fe_ml.kernels.model_inputs import FLAG_NO_EDGE, FLAG_PARTIAL_WINDOW
from hyperspy_fe_ml.library import shipped
from hyperspy_fe_ml.library.multiplet import ParameterSet, StickSpectrum
from hyperspy_fe_ml.model import (
    FeStateModel,
    ModelFileError,
    load_default_model,
)
from hyperspy_fe_ml.predict import predict_fe_state

ENERGY = np.round(np.arange(690.0, 740.0, 0.1), 6)


def _spectra(n: int, fe3: float = 1.0, seed: int = 0, edge: bool = True):
    """Raw counts: a Fe2+/Fe3+ Oh mixture on a power-law background."""
    from hyperspy_fe_ml.library import reference_spectrum

    rng = np.random.default_rng(seed)
    lines = fe3 * reference_spectrum(3, "Oh", ENERGY)
    lines += (1 - fe3) * reference_spectrum(2, "Oh", ENERGY)
    lines *= 2000.0 / lines.max() if edge else 0.0
    background = 5000.0 * (ENERGY / 708.0) ** -3.0
    return rng.poisson(lines + background, size=(n, ENERGY.size)).astype(np.float32)


_signal = fe_signal


# -- bad signals ----------------------------------------------------------------------


def test_decreasing_axis_is_refused_before_any_work_with_the_fix():
    s = _signal(_spectra(2)[:, ::-1].copy(), offset=739.9, scale=-0.1)
    for method in (s.check_fe_l23, s.preprocess_fe_l23, s.predict_fe_state):
        with pytest.raises(ValueError, match=r"not strictly increasing.*isig\[::-1\]"):
            method()


def test_two_signal_dimensions_are_refused_with_the_fix():
    s = hs.signals.Signal2D(np.ones((3, 4, 500), dtype=np.float32))
    s.set_signal_type("FeL23")  # HyperSpy keeps a 2-D signal a Signal2D
    assert not hasattr(s, "predict_fe_state")
    with pytest.raises(ValueError, match="2 signal dimensions.*as_signal1D"):
        predict_fe_state(s)


def test_very_few_channels_are_refused_with_the_fix():
    s = _signal(np.ones((2, 4), dtype=np.float32), offset=700.0, scale=10.0)
    with pytest.raises(ValueError, match="channels in the white-line window"):
        s.predict_fe_state()


@pytest.fixture(scope="module")
def reference_maps():
    return _signal(_spectra(6, seed=1)).predict_fe_state(show_progressbar=False)


@pytest.mark.parametrize(
    ("dtype", "atol"),
    [(np.uint16, 1e-6), (np.int32, 1e-6), (np.float64, 1e-5), (np.float16, 0.05)],
)
def test_integer_and_float_counts_give_the_same_valence(reference_maps, dtype, atol):
    # float16 (which numba cannot read) is widened to float32 block by block; it
    # holds the counts to 3 digits, so the valence agrees to a few hundredths.
    data = _spectra(6, seed=1).astype(dtype)
    maps = _signal(data).predict_fe_state(show_progressbar=False)
    valence = maps["valence"].data
    assert np.isfinite(valence).all()
    np.testing.assert_allclose(valence, reference_maps["valence"].data, atol=atol)
    clean = _signal(data).preprocess_fe_l23(show_progressbar=False)
    assert np.isfinite(clean.data).all()


def test_complex_data_never_reaches_a_kernel_silently():
    data = _spectra(2).astype(np.complex64)
    s = _signal(data)  # HyperSpy makes it a ComplexSignal1D, not an FeL23Signal
    assert not hasattr(s, "predict_fe_state")
    with pytest.raises(TypeError, match=r"complex.*s\.real"):
        predict_fe_state(s)
    # One level down: map_spectra would cast to float64 and drop the imaginary part.
    with pytest.raises(TypeError, match=r"complex64.*data\.real"):
        map_spectra(kp.normalise_spectra, data, ENERGY, 704.0, 727.0, 0)
    # The numba kernels themselves refuse to compile for complex input.
    from numba.core.errors import TypingError

    with pytest.raises(TypingError):
        kp.normalise_spectra(ENERGY, data.astype(np.complex128), 704.0, 727.0, 0)


def test_a_signal_without_any_iron_edge_gives_flagged_nan_not_an_error():
    s = _signal(_spectra(5, edge=False))
    with pytest.warns(UserWarning, match="No Fe L3 edge found"):
        s.check_fe_l23()
    maps = s.predict_fe_state(show_progressbar=False)
    assert np.isnan(maps["valence"].data).all()
    assert np.all(maps["flags"].data & FLAG_NO_EDGE)


def test_dead_channels_in_the_pre_edge_never_give_infinite_spectra():
    # Dead channels (one count among ~7e5) at the start of the pre-edge: the
    # log-log fit gives a steep exponent. One dead channel is diluted by its bin
    # and the fit stays finite; a whole dead bin gives an exponent whose amplitude
    # (at 1 eV) underflows to a subnormal, which used to subtract nothing reliable
    # (and -inf when it overflowed): that pixel falls back to its pre-edge mean
    # like any spectrum that cannot be fitted.
    energy = 666.0 + 0.2109375 * np.arange(125)
    row = np.full(125, 6.96944e5)
    row[4] = 1.0
    out = kp.subtract_power_law_background(energy, row[None, :], energy[0], energy[41])
    assert np.isfinite(out).all()
    row[4:6] = 1.0  # the window's bins hold 42 // FIT_BINS = 2 channels
    _, exponent, _, status = kp.fit_power_law_background(
        energy, row[None, :], energy[0], energy[41]
    )
    assert status[0] == kp.FIT_CONSTANT and exponent[0] == 0.0
    out = kp.subtract_power_law_background(energy, row[None, :], energy[0], energy[41])
    assert np.isfinite(out).all()
    assert abs(out[0, 60]) < 0.1 * row[60]
    # ... and an exponent so large that the amplitude overflows: no -inf either.
    row = np.full(125, 6.96944e5)
    row[[4, 5, 16, 17, 30, 31]] = 1.0
    out = kp.subtract_power_law_background(energy, row[None, :], energy[0], energy[41])
    assert np.isfinite(out).all()


# -- model and library files ----------------------------------------------------------


@pytest.fixture
def saved_model(tmp_path):
    model = load_default_model()
    return model, model.save(tmp_path / "model.json")


def test_model_of_a_newer_format_says_to_update(saved_model):
    import json

    _, meta = saved_model
    document = json.loads(meta.read_text())
    for version in (1, 3):
        document["format_version"] = version
        meta.write_text(json.dumps(document))
        with pytest.raises(
            ModelFileError, match=f"format version {version}.*matching hyperspy_fe_ml"
        ):
            FeStateModel.load(meta)


def test_a_model_window_past_the_data_is_read_with_the_ends_held_and_flagged():
    model = load_default_model()
    shifted = replace(model, energy=model.energy + 5.0)  # reads 705-734.9 eV
    s = _signal(_spectra(2))  # 690-739.9 eV: covered
    full = s.predict_fe_state(shifted)
    assert np.isfinite(full["valence"].data).all()
    assert not (full["flags"].data & FLAG_PARTIAL_WINDOW).any()
    short = s.isig[:731.0].predict_fe_state(shifted)
    assert np.isfinite(short["valence"].data).all()
    assert (short["flags"].data & FLAG_PARTIAL_WINDOW).all()


def test_missing_library_says_how_to_get_it_back(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError):
        shipped.read_library(tmp_path / "gone.npz")
    monkeypatch.setattr(shipped, "shipped_library_path", lambda: tmp_path / "gone.npz")
    shipped.load_library.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="reinstall.*fe-ml simulate"):
            shipped.load_library()
    finally:
        shipped.load_library.cache_clear()


# -- interrupted writes ---------------------------------------------------------------


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_model_save_is_complete_and_leaves_no_temporary_files(saved_model, tmp_path):
    model, meta = saved_model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.npz"]
    plain = tmp_path / "plain"
    plain.write_text("x")  # what open() makes under the current umask
    assert meta.stat().st_mode == plain.stat().st_mode
    loaded = FeStateModel.load(meta)
    assert loaded.ood_threshold == model.ood_threshold


@pytest.mark.parametrize("where", ["fsync", "first replace"])
def test_interrupted_model_save_keeps_the_previous_model(
    saved_model, monkeypatch, where
):
    model, meta = saved_model
    other = replace(model, target_mean=model.target_mean + 0.1)
    calls = []

    def interrupt(*args):
        calls.append(args)
        raise KeyboardInterrupt

    monkeypatch.setattr(
        fileio.os, "fsync" if where == "fsync" else "replace", interrupt
    )
    with pytest.raises(KeyboardInterrupt):
        other.save(meta)
    monkeypatch.undo()
    assert calls
    loaded = FeStateModel.load(meta)
    np.testing.assert_array_equal(loaded.target_mean, model.target_mean)
    assert _leftovers(meta.parent) == []


def test_a_crash_between_the_two_replaces_is_detected_not_silent(
    saved_model, monkeypatch
):
    # The one window left: the new arrays are in place, the old JSON still points
    # at them with the old hash. Loading refuses; it never predicts with a mix.
    model, meta = saved_model
    other = replace(model, target_mean=model.target_mean + 0.1)
    real_replace = os.replace
    done = []

    def replace_once(src, dst):
        if done:
            raise KeyboardInterrupt
        done.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", replace_once)
    with pytest.raises(KeyboardInterrupt):
        other.save(meta)
    monkeypatch.undo()
    assert [p.suffix for p in map(type(meta), done)] == [".npz"]
    with pytest.raises(ModelFileError, match="do not match their hash"):
        FeStateModel.load(meta)
    assert _leftovers(meta.parent) == []


def _library(path, n_sets: int = 2):
    sets = [ParameterSet(2, "Oh", 1.0 + 0.1 * k) for k in range(n_sets)]
    sticks = [
        StickSpectrum(
            np.array([0.0, 12.0]), np.array([1.0, 0.5]), np.array([3, 2], np.int8)
        )
        for _ in sets
    ]
    return shipped.save_library(path, sets, sticks, {"sets": n_sets}, "0.0")


def test_interrupted_library_write_keeps_the_previous_library(tmp_path, monkeypatch):
    path = _library(tmp_path / "lib.npz", 2)

    def half_then_interrupt(handle, **arrays):
        handle.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt

    monkeypatch.setattr(shipped.np, "savez_compressed", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _library(path, 5)
    monkeypatch.undo()
    assert len(shipped.read_library(path)) == 2
    assert _leftovers(tmp_path) == []
    # A bare name gets .npz, as with NumPy, and the returned path is the file.
    assert _library(tmp_path / "bare").name == "bare.npz"


def test_interrupted_simulation_writes_nothing(tmp_path, monkeypatch):
    from hyperspy_fe_ml.library import generate

    path = _library(tmp_path / "lib.npz", 2)
    batches = []

    def simulate_batch(sets):
        batches.append(len(sets))
        if len(batches) > 1:
            raise KeyboardInterrupt  # Ctrl-C in the middle of `fe-ml simulate`
        return [
            StickSpectrum(np.zeros(1), np.ones(1), np.full(1, 3, np.int8)) for _ in sets
        ]

    monkeypatch.setattr(generate, "require_edrixs", lambda: None)
    monkeypatch.setattr(generate, "simulate_batch", simulate_batch)
    sets = [ParameterSet(3, "Oh", 1.0 + 0.1 * k) for k in range(6)]
    with pytest.raises(KeyboardInterrupt):
        generate.generate_library(
            path, sets, batch_size=2, show_progressbar=False, blas_threads=None
        )
    assert len(shipped.read_library(path)) == 2
    assert _leftovers(tmp_path) == []


def test_killed_writer_never_leaves_a_broken_library(tmp_path):
    # A process rewriting the library in a loop is killed with SIGKILL (no cleanup
    # possible): the file is always one complete version or the other.
    path = tmp_path / "lib.npz"
    script = textwrap.dedent(
        f"""
        import numpy as np
        from hyperspy_fe_ml.library.multiplet import ParameterSet, StickSpectrum
        from hyperspy_fe_ml.library.shipped import save_library
        sticks = StickSpectrum(np.linspace(0, 12, 2000), np.ones(2000),
                               np.full(2000, 3, np.int8))
        k = 0
        while True:
            n = 20 + k % 2
            sets = [ParameterSet(2, "Oh", 1.0 + 0.01 * i) for i in range(n)]
            save_library({str(path)!r}, sets, [sticks] * n, {{"k": k}}, "0.0")
            k += 1
            print(k, flush=True)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    try:
        for _ in range(3):  # let it finish a few complete writes first
            assert process.stdout.readline()
        time.sleep(0.137)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    library = shipped.read_library(path)
    assert len(library) in (20, 21)
    assert library.generator["k"] >= 2


# -- distributed ----------------------------------------------------------------------


def test_a_worker_killed_mid_map_does_not_change_the_maps():
    distributed = pytest.importorskip("dask.distributed")
    data = _spectra(64, fe3=0.5, seed=11).reshape(8, 8, -1)
    threaded = _signal(data).predict_fe_state(show_progressbar=False)
    expected = threaded["valence"].data

    def slow(block):
        time.sleep(0.4)  # long enough to kill a worker in the middle of the map
        return block

    s = _signal(data).as_lazy()
    s.data = da.from_array(data, chunks=(2, 2, -1)).map_blocks(slow, dtype=data.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's notes about the lost worker
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            future = client.compute(s.predict_fe_state()["valence"].data)
            # Wait (under load, workers can be slow to start) until a worker holds
            # tasks, then kill that one while the map is still running.
            deadline = time.monotonic() + 60
            busy = []
            while not busy:
                assert time.monotonic() < deadline, "no worker ever got a task"
                time.sleep(0.05)
                busy = [w for w, keys in client.processing().items() if keys]
            assert future.status == "pending"
            pid = client.run(os.getpid)[busy[0]]
            os.kill(pid, signal.SIGKILL)  # the nanny starts a new worker
            result = future.result(timeout=120)
            assert busy[0] not in client.scheduler_info()["workers"]
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-6)
