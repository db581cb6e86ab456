"""
Lazy, out-of-core processing and a dask.distributed cluster
===========================================================

Spectrum images can be larger than memory: a 512 × 512 pixel image with 2048 channels
of float32 is 2 GiB, a 4D series more. Loaded lazily, a signal is a Dask array read
from the file block by block; ``predict_fe_state`` then returns lazy maps, and
computing them reads, preprocesses and predicts one block of pixels at a time, in
parallel, without holding the spectrum image in memory. The same code runs on a
``dask.distributed`` cluster: start a client, and Dask sends the blocks to its
workers.

The spectrum image here is small (so that the example runs in seconds) and written to
a temporary ``.hspy`` file first; with your data, start at ``hs.load(..., lazy=True)``.

Run: ``python examples/lazy_and_distributed.py``.
"""

# %%
# A spectrum image on disk, in chunks
# -----------------------------------
# ``.hspy`` (HDF5) and ``.zspy`` (Zarr, with ``pip install rosettasciio[zspy]``)
# files store the data in chunks that a lazy signal reads one at a time. Keep the
# energy axis in one chunk and split the navigation axes; HyperSpy chooses chunks
# itself if you do not.
import tempfile
import time
from pathlib import Path

import dask
import hyperspy.api as hs
import matplotlib.pyplot as plt
import numpy as np

from hyperspy_fe_ml.phantom import iron_oxide_particle

SHAPE = (48, 64)  # rows, columns
CHUNKS = (16, 16)  # pixels per block along rows and columns

folder = Path(tempfile.mkdtemp())
s, truth = iron_oxide_particle(SHAPE, seed=5)
s.save(folder / "si.hspy", chunks=(*CHUNKS, s.data.shape[-1]), overwrite=True)
del s  # from here on, the data live on disk

# %%
# Load it lazily
# --------------
# The signal type is stored in the file, so the lazy signal has this package's
# methods (``LazyFeL23Signal``). Nothing is read yet.
lazy = hs.load(folder / "si.hspy", lazy=True)
print(lazy)
print(f"{lazy.data.nbytes / 2**20:.1f} MiB in {lazy.data.npartitions} blocks")
print(f"chunks: {lazy.data.chunksize}")

# %%
# Lazy in, lazy out
# -----------------
# Checks of the signal and the model run now, before any heavy work, so that a wrong
# axis or model file fails at once; the maps themselves are only a Dask graph.
maps = lazy.predict_fe_state()
print(maps)
print(f"lazy maps: {maps.lazy}; valence data: {maps['valence'].data!r}")

# %%
# Compute them: all maps in one pass over the file (they share one graph), with the
# threaded scheduler by default. ``maps.save("maps.hspy")`` on lazy maps computes
# them the same way; ``predict_fe_state(lazy_output=False)`` computes at once.
start = time.perf_counter()
maps = maps.compute()
print(f"threaded scheduler: {time.perf_counter() - start:.2f} s")
valence_threaded = np.asarray(maps["valence"].data)

# %%
# Limit the workers
# -----------------
# Dask's configuration controls the threads (or processes) used, e.g. one thread
# for a quiet machine, or the synchronous scheduler for debugging:
with dask.config.set(scheduler="synchronous"):
    start = time.perf_counter()
    one_thread = lazy.predict_fe_state().compute()
print(f"synchronous scheduler: {time.perf_counter() - start:.2f} s")

# %%
# On a dask.distributed cluster
# -----------------------------
# A ``Client`` becomes Dask's default scheduler while it is open: the same call now
# runs on the cluster's workers. ``LocalCluster`` starts one on this machine; on an
# HPC system or in the cloud, connect to a running scheduler instead
# (``Client("tcp://scheduler-address:8786")``, or ``dask-jobqueue``'s clusters).
# The workers here are threads of this process (``processes=False``) so that the
# example runs anywhere; with ``processes=True`` (LocalCluster's default) each worker
# is its own process, and a script that starts one must do so under
# ``if __name__ == "__main__":``. The file must be readable by every worker.
from dask.distributed import Client, LocalCluster  # noqa: E402 (optional extra)

with (
    LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster,
    Client(cluster) as client,
):
    print(client)
    start = time.perf_counter()
    on_cluster = lazy.predict_fe_state().compute()
    print(f"dask.distributed, 2 workers: {time.perf_counter() - start:.2f} s")

same = np.allclose(
    np.asarray(on_cluster["valence"].data), valence_threaded, equal_nan=True, atol=1e-6
)
print(f"the cluster's valence map equals the threaded one: {same}")

# %%
# The result
# ----------
# Saved maps keep the spectrum image's calibrated axes and the provenance.
path = maps.save(folder / "maps.hspy")
print(f"wrote {path} ({path.stat().st_size / 2**10:.0f} KiB)")
fig = maps.plot(["valence", "fe3_fraction", "td_fraction", "flags"])
plt.show()
