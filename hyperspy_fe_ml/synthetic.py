"""Synthetic Fe L2,3 spectrum images with known ground truth.

For demos, tests and benchmarks that need realistic raw data without a file: a
mixed-valence spectrum image with a power-law background, Poisson counting noise
and, optionally, energy drift, whose true Fe3+ fraction, edge signal and drift are
returned alongside.

The edge shapes are phenomenological: Gaussian lines placed at the experimental
Fe2+ and Fe3+ landmarks of van Aken, Liebscher & Styrsa (Phys. Chem. Minerals 25
(1998) 323) — Fe2+ L3 maximum 707.8 eV with a weaker peak at 710.5 eV, Fe3+ L3
maximum 709.5 eV with a pre-peak at 708.0 eV, L2 about 13 eV higher — on a double
arctan continuum step (heights 2:1, inflections 708.65 and 721.65 eV, van Aken &
Liebscher 2002). They are good enough to exercise preprocessing; the multiplet
reference library is the physical source for training.
"""

from dataclasses import dataclass

import numpy as np

#: (centre eV, height, Gaussian sigma eV) of the lines of each valence.
_FE2_LINES = (
    (707.8, 1.00, 0.45),
    (708.95, 0.45, 0.45),
    (710.5, 0.38, 0.55),
    (720.6, 0.28, 0.75),
    (722.5, 0.22, 0.75),
)
_FE3_LINES = (
    (708.0, 0.32, 0.40),
    (709.5, 1.00, 0.50),
    (711.1, 0.25, 0.55),
    (721.4, 0.22, 0.75),
    (722.9, 0.34, 0.75),
)
_STEP_CENTRES = (708.65, 721.65)
_STEP_HEIGHT = 0.12


def fe_l23_edge(energy: np.ndarray, fe3_fraction: np.ndarray | float) -> np.ndarray:
    """Background-free Fe L2,3 edge of a Fe2+/Fe3+ mixture.

    Parameters
    ----------
    energy
        Energy axis, eV, shape ``(channels,)``.
    fe3_fraction
        Fe3+/ΣFe, scalar or array of any shape.

    Returns
    -------
    numpy.ndarray
        Shape ``np.shape(fe3_fraction) + (channels,)``; the L3 maximum of pure Fe2+
        and pure Fe3+ is 1 (before the continuum step is added).

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(700.0, 730.0, 0.05)
    >>> round(float(e[np.argmax(fe_l23_edge(e, 0.0))]), 1)
    707.8
    >>> round(float(e[np.argmax(fe_l23_edge(e, 1.0))]), 1)
    709.5
    """
    energy = np.asarray(energy, dtype=np.float64)
    x = np.asarray(fe3_fraction, dtype=np.float64)[..., None]

    def lines(table: tuple) -> np.ndarray:
        out = np.zeros_like(energy)
        for centre, height, sigma in table:
            out += height * np.exp(-0.5 * ((energy - centre) / sigma) ** 2)
        return out

    step = np.zeros_like(energy)
    for centre, weight in zip(_STEP_CENTRES, (2.0 / 3.0, 1.0 / 3.0), strict=True):
        step += weight * (0.5 + np.arctan((energy - centre) / 0.5) / np.pi)
    return (1.0 - x) * lines(_FE2_LINES) + x * lines(_FE3_LINES) + _STEP_HEIGHT * step


@dataclass(frozen=True)
class SyntheticTruth:
    """Ground truth of :func:`synthetic_spectrum_image`.

    Attributes
    ----------
    fe3_fraction
        Fe3+/ΣFe per pixel, navigation shape.
    shift
        Energy shift applied to each pixel (drift), eV, navigation shape.
    edge
        Expected edge counts per pixel without background or noise, shape
        ``navigation + (channels,)``.
    background
        Expected background counts, same shape as ``edge``.
    """

    fe3_fraction: np.ndarray
    shift: np.ndarray
    edge: np.ndarray
    background: np.ndarray


def synthetic_spectrum_image(
    shape: tuple[int, int] = (24, 32),
    *,
    energy: np.ndarray | None = None,
    edge_counts: float = 2000.0,
    background_counts: float = 6000.0,
    exponent: float = 3.0,
    drift: float = 0.0,
    seed: int = 0,
):
    """A raw-count Fe L2,3 spectrum image of a Fe2+/Fe3+ mixture.

    The Fe3+ fraction rises from 0 on the left to 1 on the right, in steps of a
    quarter, with a Fe3+-rich disc in the middle, like a partly oxidised grain.

    Parameters
    ----------
    shape
        Navigation shape ``(rows, columns)``.
    energy
        Energy axis, eV; default 690–740 eV at 0.1 eV.
    edge_counts
        Expected counts at the L3 maximum above background.
    background_counts
        Expected background counts at the L3 maximum of Fe2+ (707.8 eV).
    exponent
        Power-law exponent of the background.
    drift
        Peak-to-peak energy drift across the rows, eV (0 for none).
    seed
        Seed of the Poisson noise.

    Returns
    -------
    signal : FeL23Signal
        Counts, with calibrated axes (nm, nm, eV).
    truth : SyntheticTruth

    Examples
    --------
    >>> s, truth = synthetic_spectrum_image((4, 5), seed=1)
    >>> s.data.shape, truth.fe3_fraction.shape
    ((4, 5, 500), (4, 5))
    """
    import hyperspy.api as hs

    if energy is None:
        energy = np.round(np.arange(690.0, 740.0, 0.1), 6)
    energy = np.asarray(energy, dtype=np.float64)
    rows, columns = shape
    levels = np.floor(np.linspace(0, 4.999, columns)) / 4.0
    fe3 = np.broadcast_to(levels, shape).copy()
    yy, xx = np.mgrid[0:rows, 0:columns]
    disc = (yy - rows / 2) ** 2 + (xx - columns / 2) ** 2 <= (min(shape) / 4) ** 2
    fe3[disc] = 0.9
    shift = np.broadcast_to(
        np.linspace(-drift / 2, drift / 2, rows)[:, None], shape
    ).copy()
    edge = edge_counts * fe_l23_edge(energy[None, None, :] - shift[..., None], fe3)
    background = np.broadcast_to(
        background_counts * (energy / 707.8) ** -exponent, edge.shape
    )
    rng = np.random.default_rng(seed)
    counts = rng.poisson(edge + background).astype(np.float32)
    s = hs.signals.Signal1D(counts)
    s.set_signal_type("FeL23")
    s.metadata.General.title = "Synthetic Fe L2,3 spectrum image"
    for ax, name in zip(s.axes_manager.navigation_axes, ("x", "y"), strict=True):
        ax.name, ax.units, ax.scale = name, "nm", 2.0
    ax = s.axes_manager.signal_axes[0]
    if np.allclose(np.diff(energy), energy[1] - energy[0]):
        ax.name, ax.units = "Energy loss", "eV"
        ax.offset, ax.scale = float(energy[0]), float(energy[1] - energy[0])
    else:
        raise ValueError(
            "synthetic_spectrum_image needs a uniform energy axis; pass e.g. "
            "np.arange(690.0, 740.0, 0.1)."
        )
    truth = SyntheticTruth(
        fe3_fraction=fe3, shift=shift, edge=edge, background=np.array(background)
    )
    return s, truth
