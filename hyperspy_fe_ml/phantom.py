"""A library-based synthetic spectrum image of an iron-oxide particle, with its truth.

The scene of ``fe-ml demo``: a magnetite (Fe3O4) core in a haematite (Fe2O3) shell
with wüstite (FeO) inclusions, a hercynite-like grain with tetrahedral Fe2+
(FeAl2O4) beside it, and an iron-free support around both. Every Fe pixel is a
mixture of the calibrated multiplet references
(:func:`~hyperspy_fe_ml.library.reference_spectrum`) weighted per Fe atom, with
plural scattering growing with the particle's thickness, an energy offset drifting
across the image, a power-law background and Poisson noise. The truth is known per
pixel, so the maps can be scored.
"""

from dataclasses import dataclass

import numpy as np

#: The phases: name → Fe sites as (valence, coordination, share of the Fe atoms).
PHASES: dict[str, tuple[tuple[int, str, float], ...]] = {
    "support (no Fe)": (),
    "Fe2O3 (haematite)": ((3, "Oh", 1.0),),
    "Fe3O4 (magnetite)": ((3, "Td", 1 / 3), (3, "Oh", 1 / 3), (2, "Oh", 1 / 3)),
    "FeO (wüstite)": ((2, "Oh", 1.0),),
    "FeAl2O4 (hercynite, Td Fe2+)": ((2, "Td", 1.0),),
}
_SITES = ((2, "Oh"), (3, "Oh"), (2, "Td"), (3, "Td"))
_COORDINATION_NUMBER = {"Oh": 6.0, "Td": 4.0}


@dataclass(frozen=True)
class PhantomTruth:
    """Per-pixel truth of :func:`iron_oxide_particle` (navigation shape each).

    Attributes
    ----------
    phase
        Index into :data:`PHASES` (0: no iron).
    valence, fe3_fraction, td_fraction, coordination_number
        The Fe state; NaN where there is no iron.
    offset
        Energy offset of the pixel's spectrum, eV.
    thickness
        t/λ of the plural scattering.
    """

    phase: np.ndarray
    valence: np.ndarray
    fe3_fraction: np.ndarray
    td_fraction: np.ndarray
    coordination_number: np.ndarray
    offset: np.ndarray
    thickness: np.ndarray

    @property
    def phase_names(self) -> list[str]:
        """Names of the phases, in the order of the ``phase`` indices."""
        return list(PHASES)

    @property
    def has_iron(self) -> np.ndarray:
        """Pixels holding iron."""
        return self.phase > 0


def phase_map(shape: tuple[int, int]) -> np.ndarray:
    """The phase index of every pixel (see :data:`PHASES`).

    Examples
    --------
    >>> phases = phase_map((32, 40))
    >>> sorted(set(phases.ravel().tolist()))
    [0, 1, 2, 3, 4]
    """
    rows, columns = shape
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float64)
    y /= rows
    x /= columns
    phases = np.zeros(shape, dtype=np.int64)
    # The particle: a haematite shell around a magnetite core.
    r = np.hypot((x - 0.58) / 0.36, (y - 0.52) / 0.42)
    phases[r <= 1.0] = 1
    phases[r <= 0.62] = 2
    # Wüstite inclusions in the core.
    for cx, cy in ((0.50, 0.40), (0.66, 0.62), (0.52, 0.66)):
        phases[np.hypot((x - cx) / 0.06, (y - cy) / 0.07) <= 1.0] = 3
    # A hercynite grain at the top left.
    phases[np.hypot((x - 0.15) / 0.11, (y - 0.22) / 0.15) <= 1.0] = 4
    return phases


def iron_oxide_particle(
    shape: tuple[int, int] = (64, 80),
    *,
    energy: np.ndarray | None = None,
    edge_counts: float = 1500.0,
    background_counts: float = 4000.0,
    exponent: float = 3.0,
    drift: float = 0.4,
    max_thickness: float = 0.6,
    resolution: float = 0.5,
    pixel_size: float = 1.5,
    seed: int = 0,
):
    """A raw-count Fe L2,3 spectrum image of an iron-oxide particle, with its truth.

    Parameters
    ----------
    shape
        Navigation shape ``(rows, columns)``.
    energy
        Energy axis, eV; default 690–740 eV at 0.1 eV.
    edge_counts
        Expected counts at the L3 maximum of a pure Fe3+ pixel above background.
    background_counts
        Expected background counts at 708 eV.
    exponent
        Power-law exponent of the background.
    drift
        Peak-to-peak energy offset drifting across the columns, eV.
    max_thickness
        t/λ at the thickest point of the particle (plural scattering).
    resolution
        Instrument resolution, FWHM eV.
    pixel_size
        Pixel size, nm.
    seed
        Seed of the Poisson noise.

    Returns
    -------
    signal : FeL23Signal
        Counts (float32) with calibrated axes (nm, nm, eV).
    truth : PhantomTruth

    Examples
    --------
    >>> s, truth = iron_oxide_particle((16, 20))
    >>> s.data.shape, round(float(np.nanmax(truth.valence)), 2)
    ((16, 20, 500), 3.0)
    """
    import hyperspy.api as hs

    from hyperspy_fe_ml.kernels.augment import plural_scattering
    from hyperspy_fe_ml.library import reference_spectrum

    if energy is None:
        energy = np.round(np.arange(690.0, 740.0, 0.1), 6)
    energy = np.asarray(energy, dtype=np.float64)
    steps = np.diff(energy)
    if energy.ndim != 1 or energy.size < 2 or not np.allclose(steps, steps[0]):
        raise ValueError(
            "iron_oxide_particle needs a uniform, increasing energy axis; pass e.g. "
            "np.arange(690.0, 740.0, 0.1)."
        )
    phases = phase_map(shape)
    n_pixels = phases.size
    # Atom fractions of the four site types, per pixel.
    shares = np.zeros((len(PHASES), len(_SITES)))
    for p, sites in enumerate(PHASES.values()):
        for valence, coordination, share in sites:
            shares[p, _SITES.index((valence, coordination))] += share
    weights = shares[phases.ravel()]
    references = np.stack(
        [reference_spectrum(v, c, energy, resolution=resolution) for v, c in _SITES]
    )
    # The drift moves the whole spectrum: build the references per offset column.
    rows, columns = shape
    offset = np.broadcast_to(np.linspace(-drift / 2, drift / 2, columns), shape)
    edges = np.empty((n_pixels, energy.size))
    column_of = np.tile(np.arange(columns), rows)
    for column in range(columns):
        shifted = np.stack(
            [np.interp(energy - offset[0, column], energy, r) for r in references]
        )
        pick = column_of == column
        edges[pick] = weights[pick] @ shifted
    scale = edge_counts / references[1].max()
    edges *= scale

    y, x = np.mgrid[0:rows, 0:columns].astype(np.float64)
    r = np.hypot((x / columns - 0.58) / 0.36, (y / rows - 0.52) / 0.42)
    thickness = np.where(r <= 1.0, max_thickness * np.sqrt(np.clip(1 - r**2, 0, 1)), 0)
    thickness = np.maximum(thickness, 0.15 * (phases > 0))
    n = n_pixels
    edges = plural_scattering(
        energy,
        edges,
        thickness.ravel(),
        np.full(n, 22.0),
        np.full(n, 8.0),
        float(energy[0]),
    )
    background = background_counts * (energy / 708.0) ** -exponent
    rng = np.random.default_rng(seed)
    counts = rng.poisson(np.clip(edges, 0.0, None) + background).astype(np.float32)

    s = hs.signals.Signal1D(counts.reshape(*shape, energy.size))
    s.set_signal_type("FeL23")
    s.metadata.General.title = "Synthetic iron-oxide particle"
    for ax, name in zip(s.axes_manager.navigation_axes, ("x", "y"), strict=True):
        ax.name, ax.units, ax.scale = name, "nm", float(pixel_size)
    ax = s.axes_manager.signal_axes[0]
    ax.name, ax.units = "Energy loss", "eV"
    ax.offset, ax.scale = float(energy[0]), float(steps[0])

    fe3 = weights[:, 1] + weights[:, 3]
    td = weights[:, 2] + weights[:, 3]
    iron = phases.ravel() > 0
    nan = np.where(iron, 1.0, np.nan)
    truth = PhantomTruth(
        phase=phases,
        valence=((2.0 + fe3) * nan).reshape(shape),
        fe3_fraction=(fe3 * nan).reshape(shape),
        td_fraction=(td * nan).reshape(shape),
        coordination_number=((6.0 - 2.0 * td) * nan).reshape(shape),
        offset=np.array(offset),
        thickness=thickness,
    )
    return s, truth
