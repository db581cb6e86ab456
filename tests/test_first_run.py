"""The first run: numba compiles on one pixel before any progress bar, and says so."""

import time

import numpy as np

from hyperspy_fe_ml import chunked, predict
from hyperspy_fe_ml.synthetic import synthetic_spectrum_image


def test_compile_once_says_so_when_slow_and_runs_once(monkeypatch, capsys):
    monkeypatch.setattr(chunked, "_compiled", set())
    monkeypatch.setattr(chunked, "COMPILE_NOTICE_AFTER_S", 0.01)
    calls = []

    def slow():
        calls.append(1)
        time.sleep(1.0)

    assert chunked.compile_once("slow", slow) is True
    assert chunked.compile_once("slow", slow) is False
    assert calls == [1]
    err = capsys.readouterr().err
    assert err.count("Compiling the numba kernels") == 1


def test_compile_once_is_silent_when_asked_or_fast(monkeypatch, capsys):
    monkeypatch.setattr(chunked, "_compiled", set())
    monkeypatch.setattr(chunked, "COMPILE_NOTICE_AFTER_S", 0.01)
    assert chunked.compile_once("quiet", lambda: time.sleep(0.3), notice=False)
    assert chunked.compile_once("fast", lambda: None)
    assert capsys.readouterr().err == ""


def test_predict_compiles_before_the_progress_bar(monkeypatch):
    monkeypatch.setattr(chunked, "_compiled", set())
    s, _ = synthetic_spectrum_image((3, 4))
    s.change_dtype("float32")
    seen = {}
    compute = predict.compute_array

    def spy(data, show_progressbar):
        seen["compiled"] = set(chunked._compiled)
        return compute(data, show_progressbar)

    monkeypatch.setattr(predict, "compute_array", spy)
    maps = s.predict_fe_state(show_progressbar=False)
    assert ("predict", np.dtype("float32").str) in seen["compiled"]
    # The warm-up pixel leaves no trace in the maps.
    assert maps["valence"].data.shape == (3, 4)
    assert np.all(np.isfinite(maps["valence"].data))
