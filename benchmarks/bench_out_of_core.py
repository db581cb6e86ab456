"""Out-of-core prediction: a spectrum image larger than comfortable, from disk, lazily.

Run: ``python benchmarks/bench_out_of_core.py [--gib 8] [--folder DIR] [--keep]
[--write-only]``

1. Writes a raw-count Fe L2,3 spectrum image of about ``--gib`` GiB (float32, 1024
   channels) to an uncompressed HDF5 ``.hspy`` file chunked 64×64×1024 (16 MiB),
   lazily, block by block (never whole in memory). Made once; ``--keep`` leaves it
   for reruns.
2. In a fresh process (so its peak memory is its own): ``hs.load(..., lazy=True)``,
   ``predict_fe_state()``, ``maps.compute()`` and ``maps.save()``; reports wall
   time, spectra per second and the peak resident memory of that process.

Target: peak resident memory ≤ 3 GiB for the 8 GiB file.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHANNELS = 1024
CHUNK = 64


def _block(block_id, size, energy, fe2, fe3, background):
    """Counts of one 64×64 block: Fe3+ fraction varies smoothly, seeded per block."""
    i, j = block_id[:2]
    rng = np.random.default_rng([i, j])
    y, x = np.mgrid[0 : size[0], 0 : size[1]]
    fraction = 0.5 + 0.5 * np.sin((x + j * CHUNK) / 97.0) * np.cos(
        (y + i * CHUNK) / 61.0
    )
    edge = fraction[..., None] * fe3 + (1 - fraction[..., None]) * fe2
    return rng.poisson(edge + background).astype(np.float32)


def write(path: Path, gib: float) -> int:
    import dask.array as da
    import hyperspy.api as hs

    from hyperspy_fe_ml.library import reference_spectrum

    side = max(1, round(np.sqrt(gib * 2**30 / (4 * CHANNELS)) / CHUNK)) * CHUNK
    energy = np.linspace(690.0, 741.15, CHANNELS)
    fe2 = reference_spectrum(2, "Oh", energy)
    fe3 = reference_spectrum(3, "Oh", energy)
    scale = 2000.0 / fe3.max()
    background = 1.5e4 * (energy / 690.0) ** -3.5

    def make(block_info=None):
        loc = block_info[None]["chunk-location"]
        shape = block_info[None]["chunk-shape"]
        return _block(loc, shape, energy, scale * fe2, scale * fe3, background)

    data = da.map_blocks(
        make,
        chunks=((CHUNK,) * (side // CHUNK), (CHUNK,) * (side // CHUNK), (CHANNELS,)),
        dtype=np.float32,
    )
    s = hs.signals.Signal1D(data).as_lazy()
    axis = s.axes_manager.signal_axes[0]
    axis.offset, axis.scale, axis.units = 690.0, float(energy[1] - energy[0]), "eV"
    s.set_signal_type("FeL23")
    start = time.perf_counter()
    # Uncompressed: the figure is the pipeline's, not gzip's (which decompresses at
    # roughly 100-200 MB/s per core and would dominate).
    s.save(
        path,
        chunks=(CHUNK, CHUNK, CHANNELS),
        compression=None,
        overwrite=True,
        show_progressbar=False,
    )
    print(
        f"wrote {side}x{side}x{CHANNELS} float32 ({data.nbytes / 2**30:.2f} GiB) to "
        f"{path} in {time.perf_counter() - start:.0f} s"
    )
    return side


def predict(path: Path, out: Path) -> None:
    """Run in a child process: lazy load, predict, compute, save; print JSON."""
    import hyperspy.api as hs

    hs.preferences.General.show_progressbar = False
    start = time.perf_counter()
    s = hs.load(path, lazy=True)
    maps = s.predict_fe_state().compute()
    maps.save(out, overwrite=True)
    seconds = time.perf_counter() - start
    valence = np.asarray(maps["valence"].data)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(
        json.dumps(
            {
                "spectra": int(valence.size),
                "seconds": seconds,
                "peak_rss_gib": peak,
                "finite": float(np.isfinite(valence).mean()),
                "valence_mean": float(np.nanmean(valence)),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=8.0)
    parser.add_argument("--folder", default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--write-only", action="store_true", help="make the file (kept) and stop"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        predict(Path(args.child[0]), Path(args.child[1]))
        return
    folder = Path(args.folder or tempfile.mkdtemp(prefix="fe-ml-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"si_{args.gib:g}gib.hspy"
    if not path.exists():
        write(path, args.gib)
    if args.write_only:
        return
    out = folder / "maps.hspy"
    child = subprocess.run(
        [sys.executable, __file__, "--child", str(path), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    rate = result["spectra"] / result["seconds"]
    size = path.stat().st_size / 2**30
    print(
        f"predicted {result['spectra']:,} spectra from a {size:.2f} GiB file in "
        f"{result['seconds']:.0f} s ({rate:,.0f} spectra/s, "
        f"{size / result['seconds'] * 1024:.0f} MiB/s)"
    )
    print(
        f"peak resident memory {result['peak_rss_gib']:.2f} GiB (target <= 3); "
        f"finite valence {100 * result['finite']:.1f} %, "
        f"mean {result['valence_mean']:.2f}"
    )
    if not args.keep:
        path.unlink()
        out.unlink()


if __name__ == "__main__":
    main()
