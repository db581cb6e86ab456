"""Run ``(pixels, channels)`` kernels over Dask chunks of a spectrum image.

The bridge between the numba kernels (2-D arrays, no Dask) and the signals (no
numba): an array of shape ``navigation + (channels,)`` — NumPy or Dask — is split
into blocks along the navigation axes only (the energy axis is never chunked; it is
rechunked to a single chunk if it was), each block is flattened to
``(pixels, channels)``, handed to the kernel and reshaped back. Eager and lazy input
go through the same blocks, so they give identical numbers.
"""

import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, partial

import dask.array as da
import numpy as np
from dask.array.core import normalize_chunks, slices_from_chunks

#: Target size of one block, bytes of float64 input (2048 spectra of 1024
#: channels). Small enough that a block's kernel outputs stay in cache-friendly
#: memory, large enough that the per-block costs (Dask's task, the model's NumPy
#: calls, which hold the GIL) are small next to the numba work: 16 MiB blocks
#: predict 128x128x1024 about 10 % faster than 8 MiB blocks on 2 cores.
BLOCK_BYTES = 16 * 2**20


def as_spectrum_blocks(data: np.ndarray | da.Array) -> da.Array:
    """Return ``data`` as a Dask array whose last (energy) axis is a single chunk.

    Parameters
    ----------
    data
        Array of shape ``navigation + (channels,)``. ``float16`` and ``bool``
        data, which the numba kernels cannot read, come back as ``float32``
        (block by block, without a copy of the whole array).

    Examples
    --------
    >>> import numpy as np
    >>> blocks = as_spectrum_blocks(np.zeros((64, 64, 300)))
    >>> blocks.chunks[-1]
    (300,)
    >>> as_spectrum_blocks(np.zeros((2, 300), dtype=np.float16)).dtype
    dtype('float32')
    """
    if isinstance(data, da.Array):
        if data.numblocks[-1] != 1:
            data = data.rechunk({data.ndim - 1: -1})
        return _readable(data)
    n_channels = data.shape[-1]
    if data.ndim == 1:
        return _readable(_views_as_blocks(data, ((n_channels,),)))
    # Split the navigation axes (slowest first) until a block fits BLOCK_BYTES.
    rows = max(1, BLOCK_BYTES // (8 * n_channels))
    chunks: list[int] = []
    remaining = rows
    for size in reversed(data.shape[:-1]):
        take = max(1, min(size, remaining))
        chunks.insert(0, take)
        remaining = max(1, remaining // size)
    return _readable(_views_as_blocks(data, (*chunks, n_channels)))


#: Name prefix of the Dask layer :func:`_views_as_blocks` makes.
_VIEWS_PREFIX = "fe-spectra-"


def _views_as_blocks(data: np.ndarray, chunks: tuple) -> da.Array:
    """A Dask array whose blocks are views of ``data``: no copy, no hash.

    ``da.from_array`` copies a NumPy array whole before slicing it (doubling the
    memory of a spectrum image and costing a pass over it) and, unless told not
    to, hashes it for a name. The kernels only read their blocks, so views are
    safe; the graph gets a unique name and lives only as long as the call.
    """
    chunks = normalize_chunks(chunks, data.shape, dtype=data.dtype)
    name = _VIEWS_PREFIX + uuid.uuid4().hex
    numblocks = tuple(len(c) for c in chunks)
    graph = {
        (name, *index): data[view]
        for index, view in zip(
            np.ndindex(*numblocks), slices_from_chunks(chunks), strict=True
        )
    }
    meta = np.empty((0,) * data.ndim, dtype=data.dtype)
    return da.Array(graph, name, chunks=chunks, dtype=data.dtype, meta=meta)


def _readable(blocks: da.Array) -> da.Array:
    """``blocks`` in a dtype numba compiles for (no float16, no bool)."""
    if blocks.dtype in (np.float16, np.bool_):
        return blocks.astype(np.float32)
    return blocks


def _apply_to_block(
    block: np.ndarray,
    *,
    kernel: Callable[..., np.ndarray],
    energy: np.ndarray,
    args: tuple,
    out_channels: int | None,
) -> np.ndarray:
    nav_shape = block.shape[:-1]
    flat = np.ascontiguousarray(block.reshape(-1, block.shape[-1]), dtype=np.float64)
    result = kernel(energy, flat, *args)
    if out_channels is None:
        return result.reshape(nav_shape)
    return result.reshape(*nav_shape, out_channels)


def map_spectra(
    kernel: Callable[..., np.ndarray],
    data: np.ndarray | da.Array,
    energy: np.ndarray,
    *args,
    out_channels: int | None | str = "same",
) -> da.Array:
    """Apply ``kernel(energy, spectra_2d, *args)`` to every block of ``data``.

    Parameters
    ----------
    kernel
        A function of ``(energy, spectra, *args)`` with ``spectra`` of shape
        ``(pixels, channels)`` returning ``(pixels, out_channels)`` or, for a value
        per pixel, ``(pixels,)``.
    data
        NumPy or Dask array of shape ``navigation + (channels,)``.
    energy
        The energy axis, shape ``(channels,)``.
    *args
        Further arguments passed to the kernel (scalars or small arrays).
    out_channels
        ``"same"`` for as many output channels as input channels, an ``int`` for a
        new count (e.g. after resampling), ``None`` for one value per pixel (the
        energy axis is dropped).

    Returns
    -------
    dask.array.Array
        Lazy result; call ``.compute()`` for NumPy.

    Raises
    ------
    TypeError
        For complex or non-numeric data (never silently cast).
    ValueError
        When ``energy`` does not match the data's channels.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_fe_ml.kernels.preprocess import normalise_spectra
    >>> e = np.linspace(700.0, 730.0, 31)
    >>> out = map_spectra(normalise_spectra, np.ones((4, 5, 31)), e, 700.0, 730.0, 1)
    >>> out.shape, float(out.compute().max())
    ((4, 5, 31), 1.0)
    """
    blocks = as_spectrum_blocks(data)
    real = np.issubdtype(blocks.dtype, np.number) or blocks.dtype == np.bool_
    if not real or np.issubdtype(blocks.dtype, np.complexfloating):
        # The blocks are cast to float64 for the kernels: complex data would lose
        # their imaginary part silently, and text or objects fail late.
        raise TypeError(
            f"map_spectra needs real numbers, got {blocks.dtype} data; pass "
            "`data.real` or `abs(data)` for complex data, or convert with "
            "`data.astype(float)`."
        )
    energy = np.ascontiguousarray(energy, dtype=np.float64)
    if energy.shape != (blocks.shape[-1],):
        raise ValueError(
            f"energy has shape {energy.shape} but the data have "
            f"{blocks.shape[-1]} channels; pass the signal's energy axis."
        )
    if out_channels == "same":
        out_channels = blocks.shape[-1]
    func = partial(
        _apply_to_block,
        kernel=kernel,
        energy=energy,
        args=args,
        out_channels=out_channels,
    )
    if out_channels is None:
        return blocks.map_blocks(func, drop_axis=blocks.ndim - 1, dtype=np.float64)
    chunks = (*blocks.chunks[:-1], (out_channels,))
    return blocks.map_blocks(func, chunks=chunks, dtype=np.float64)


def compute_into_numpy(result: da.Array) -> np.ndarray:
    """Compute ``result`` block by block straight into a new NumPy array.

    Unlike ``result.compute()``, the blocks are written into their place in the
    output (``dask.array.store``) instead of being concatenated at the end, which
    saves a copy of the whole result. Honours the active Dask scheduler, including
    a ``dask.distributed`` client.

    Examples
    --------
    >>> import dask.array as da
    >>> compute_into_numpy(da.ones((4, 3), chunks=2) * 2).sum()
    np.float64(24.0)
    """
    out = np.empty(result.shape, dtype=result.dtype)
    try:
        from distributed import default_client

        default_client()
    except (ImportError, ValueError):
        # One BLAS limit for the whole computation: the blocks' own
        # single_threaded_blas() then only count users. Set and lifted per block,
        # the limit makes OpenBLAS stop and restart its threads between blocks,
        # which costs more than the blocks on a busy machine (10x measured).
        with single_threaded_blas():
            da.store(result, out, lock=False, optimize_graph=_worth_optimizing(result))
        return out
    # A distributed cluster cannot write into this process's memory.
    return result.compute()


#: Seconds a first call may take before :func:`compile_once` says it is compiling
#: (loading compiled kernels from numba's cache takes less).
COMPILE_NOTICE_AFTER_S = 0.5

_compiled: set = set()
_compile_lock = threading.Lock()


def compile_once(key, warm_up: Callable[[], object], *, notice: bool = True) -> bool:
    """Run ``warm_up`` once per process and ``key``, saying so if it compiles.

    A tiny call of the kernels (one pixel) before the heavy work makes numba
    compile them — or load them from its cache — there, not inside the first
    Dask task, where a progress bar would wait on it and extrapolate minutes.
    When the call is still running after :data:`COMPILE_NOTICE_AFTER_S` (numba
    is compiling, not loading from its cache: the first run after an install or
    an upgrade), one line on stderr says why the wait.

    Parameters
    ----------
    key
        What was compiled (hashable), e.g. the input dtype: a new key compiles
        new specialisations.
    warm_up
        A call of the kernels on a tiny input.
    notice
        Print the line (e.g. when progress bars are on); ``False`` stays silent.

    Returns
    -------
    bool
        Whether ``warm_up`` ran (``False``: already done in this process).

    Examples
    --------
    >>> calls = []
    >>> compile_once("example", lambda: calls.append(1), notice=False)
    True
    >>> compile_once("example", lambda: calls.append(1), notice=False)
    False
    >>> calls
    [1]
    """
    if key in _compiled:
        return False
    with _compile_lock:
        if key in _compiled:
            return False
        timer = None
        if notice:
            timer = threading.Timer(
                COMPILE_NOTICE_AFTER_S,
                lambda: print(
                    "Compiling the numba kernels (first run after an install; once, "
                    "then cached on disk) ...",
                    file=sys.stderr,
                    flush=True,
                ),
            )
            timer.daemon = True
            timer.start()
        try:
            warm_up()
        finally:
            if timer is not None:
                timer.cancel()
        _compiled.add(key)
    return True


def _worth_optimizing(result: da.Array) -> bool:
    """Whether Dask's graph optimisation can help computing ``result``.

    Not for one kernel mapped over views of a NumPy array (the eager path): its
    tasks are already one per block, and the optimisation (culling, fusing,
    ordering twice) costs a few milliseconds per call, as much as a block. Graphs
    that read files or chain operations are optimised as usual.
    """
    layers = list(result.__dask_graph__().layers)
    return not (len(layers) <= 2 and any(n.startswith(_VIEWS_PREFIX) for n in layers))


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit = None


@cache
def _threadpool_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the enclosed matrix products on one BLAS thread.

    Dask already runs one block per core; a multithreaded BLAS inside each block
    would put several BLAS threads on every core, which slows OpenBLAS down
    severalfold. The limit is process-wide, so it is reference-counted: set by the
    first block that enters, lifted when the last one leaves.

    Examples
    --------
    >>> import numpy as np
    >>> with single_threaded_blas():
    ...     float((np.ones((64, 64)) @ np.ones(64)).sum())
    4096.0
    """
    global _blas_users, _blas_limit
    with _blas_lock:
        if _blas_users == 0:
            _blas_limit = _threadpool_controller().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limit is not None:
                _blas_limit.restore_original_limits()
                _blas_limit = None
