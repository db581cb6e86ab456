"""What the signal classes share with the modules they call: checks and constants.

:mod:`hyperspy_fe_ml.signals` calls :mod:`hyperspy_fe_ml.predict` and
:mod:`hyperspy_fe_ml.classical`; those need the same checks of a signal's data, its
energy axis and the same way of computing a Dask result. They live here, below all
three, so that imports run one way: signals → predict / classical → signal_tools →
chunked → kernels. Nothing here imports the signal classes.
"""

import warnings

import numpy as np
from hyperspy.signal import BaseSignal

from hyperspy_fe_ml.chunked import compute_into_numpy

__all__ = [
    "CANONICAL_ENERGY_EV",
    "WHITE_LINE_WINDOW_EV",
    "check_data",
    "compute_array",
    "progressbar_wanted",
    "signal_energy",
]

#: Canonical energy grid of the preprocessing, eV: the Fe L2,3 white lines with
#: margin for ±3 eV offsets, at 0.1 eV (finer than EELS resolution).
CANONICAL_ENERGY_EV = np.round(np.arange(700.0, 730.0, 0.1), 6)
#: Window of the white-line integral used for normalisation, eV.
WHITE_LINE_WINDOW_EV: tuple[float, float] = (704.0, 727.0)


def check_data(signal: BaseSignal) -> None:
    """Reject data no Fe L2,3 analysis can use, before any work.

    Parameters
    ----------
    signal
        The signal to check (its data are not read, only their shape and type).

    Raises
    ------
    ValueError
        For more than one signal dimension or empty data.
    TypeError
        For complex or non-numeric data.

    Examples
    --------
    >>> import hyperspy.api as hs, numpy as np
    >>> check_data(hs.signals.Signal1D(np.ones((2, 10))))
    >>> check_data(hs.signals.Signal1D(np.ones((2, 10), dtype=complex)))
    Traceback (most recent call last):
    ...
    TypeError: The signal holds complex data (complex128); ...
    """
    n_signal = signal.axes_manager.signal_dimension
    if n_signal != 1:
        raise ValueError(
            f"The signal has {n_signal} signal dimensions; an Fe L2,3 spectrum has "
            "one, the energy axis. Make the energy axis the only signal axis, e.g. "
            "`s = s.as_signal1D(spectral_axis)`, then `s.set_signal_type('FeL23')`."
        )
    dtype = np.dtype(signal.data.dtype)
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(
            f"The signal holds complex data ({dtype}); Fe L2,3 spectra are real "
            "intensities. Take the real part or the modulus first, e.g. `s.real`."
        )
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise TypeError(
            f"The signal holds {dtype} data; Fe L2,3 spectra must be numbers. "
            "Convert with `s.change_dtype('float32')`."
        )
    if 0 in signal.data.shape:
        raise ValueError(
            f"The signal is empty (data shape {signal.data.shape}); load or slice a "
            "signal that holds spectra."
        )


def signal_energy(signal: BaseSignal) -> np.ndarray:
    """The signal axis of ``signal`` as a float64 array (no unit check).

    Examples
    --------
    >>> import hyperspy.api as hs, numpy as np
    >>> s = hs.signals.Signal1D(np.ones(3))
    >>> s.axes_manager[0].offset = 700.0
    >>> signal_energy(s).tolist()
    [700.0, 701.0, 702.0]
    """
    return np.asarray(signal.axes_manager.signal_axes[0].axis, dtype=np.float64)


def progressbar_wanted(show_progressbar: bool | None) -> bool:
    """``show_progressbar``, with ``None`` read from HyperSpy's preferences.

    Examples
    --------
    >>> progressbar_wanted(False)
    False
    """
    if show_progressbar is None:
        from hyperspy.defaults_parser import preferences

        return bool(preferences.General.show_progressbar)
    return bool(show_progressbar)


def compute_array(data, show_progressbar: bool | None) -> np.ndarray:
    """Compute a Dask array, with HyperSpy's kind of progress bar when asked.

    Parameters
    ----------
    data
        Dask array.
    show_progressbar
        ``None`` uses HyperSpy's preference.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> import dask.array as da
    >>> compute_array(da.ones((2, 3), chunks=1), show_progressbar=False).sum()
    np.float64(6.0)
    """
    if progressbar_wanted(show_progressbar):
        from tqdm.dask import TqdmCallback

        with TqdmCallback(desc="Fe L2,3"):
            return compute_into_numpy(data)
    return compute_into_numpy(data)


#: Most spectra averaged for the checks of a lazy signal (a strided subset).
MAX_CHECK_SPECTRA = 256
#: Most Dask blocks a check of a lazy signal reads.
MAX_CHECK_BLOCKS = 16


def typical_spectrum(signal: BaseSignal) -> np.ndarray:
    """Median spectrum of (a sample of at most 256 of) the pixels.

    A check, not a result. The median lets a few bad pixels (empty, negative,
    saturated, NaN) change nothing. Eager data are sampled with a stride, which
    sees every region; lazy data in at most :data:`MAX_CHECK_BLOCKS` whole Dask
    blocks spread over the image, so a check of data larger than memory reads a
    few chunks, not all of them.
    """
    import dask
    import dask.array as da

    data = signal.data
    n_channels = data.shape[-1]
    if isinstance(data, da.Array) and data.ndim > 1:
        nav_blocks = data.numblocks[:-1]
        total = int(np.prod(nav_blocks))
        picks = np.unique(
            np.linspace(0, total - 1, min(MAX_CHECK_BLOCKS, total)).astype(int)
        )
        blocks = [
            data.blocks[np.unravel_index(k, nav_blocks)].reshape(-1, n_channels)
            for k in picks
        ]
        per_block = max(1, MAX_CHECK_SPECTRA // len(blocks))
        sample = np.concatenate(
            [b[:: max(1, b.shape[0] // per_block)] for b in dask.compute(*blocks)]
        )
    else:
        flat = np.asarray(data).reshape(-1, n_channels)
        sample = flat[:: max(1, flat.shape[0] // MAX_CHECK_SPECTRA)]
    sample = np.asarray(sample)
    if not (
        np.issubdtype(sample.dtype, np.floating)
        or np.issubdtype(sample.dtype, np.integer)
    ):
        sample = sample.astype(np.float64)
    finite = np.isfinite(sample).all(axis=1)
    if finite.sum() >= 0.5 * len(sample):
        # Most rows finite: the plain median of those, a sort per channel in the
        # data's own type, in place (NumPy's SIMD sort: several times faster than
        # a partition per channel, itself several times faster than nanmedian's
        # row-by-row path; no float64 copy), the two middle values averaged in
        # float64.
        rows = np.ascontiguousarray(sample[finite].T)
        half = rows.shape[1] // 2
        rows.sort(axis=1)
        if rows.shape[1] % 2:
            return rows[:, half].astype(np.float64)
        return 0.5 * (
            rows[:, half - 1].astype(np.float64) + rows[:, half].astype(np.float64)
        )
    sample = sample.astype(np.float64)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN channels
        return np.nanmedian(sample, axis=0)
