"""Out-of-distribution tests grounded in the physics and the noise.

Besides the model's own feature-space score (PCA residual and Mahalanobis length
of the principal-component scores,
:attr:`~hyperspy_fe_ml.model.FeStateModel.ood_threshold`), every readable pixel,
aligned and normalised as the model reads it, is fitted with the library:

1. **Library projection** (every pixel) — the least-squares fit on orthonormal
   rows spanning the shipped multiplet library (its leading
   :data:`PROJECTION_COMPONENTS` principal axes over the training broadenings)
   plus continuum steps and a slowly varying background residual
   (:func:`projection_basis`). The smoothed residual, in units of what the
   pixel's own noise and the library's systematic error leave, is the misfit;
   the largest single-channel excursion from the smoothed residual over the noise
   is the spike score; the norm of the library part over the noise is
   ``reconstruction_snr``. Most pixels are cleared here.
2. **Non-negative reconstruction** (the pixels the projection does not clear:
   misfit above :data:`MISFIT_SCREEN`, spike score above :data:`SPIKE_SCREEN` or
   amplitude below :data:`WEAK_PROJECTION_SNR`) — the best non-negative
   combination of 40 library spectra spanning valence × site symmetry × 10Dq at
   two broadenings, steps and background (:func:`library_basis`): stricter (a
   combination of library spectra, not of their axes) and iterative. Its misfit
   and spike score replace the projection's in ``reconstruction_misfit`` and
   ``spike_score``: above :data:`MISFIT_THRESHOLD` no library spectrum explains
   the shape, above :data:`SPIKE_THRESHOLD` there is a spike or a glitch; a weak
   pixel whose amplitude is below :data:`MIN_RECONSTRUCTION_SNR` has no edge
   (``FLAG_NO_EDGE``): noise whose white-line integral happened to be positive.
   The metallic test uses its misfit too (:func:`library_misfit`).

The bases are computed by the package's own code from the shipped library (no
file, no download) and cached per model grid. The kernels are in
:mod:`hyperspy_fe_ml.kernels.reconstruction`. The thresholds were calibrated
with ``docs/scripts/calibrate_ood.py``: see ``docs/reliability.md`` and the
model card.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hyperspy_fe_ml.kernels.reconstruction import (
    projection_scores,
    reconstruction_scores,
)

#: Principal axes of the library in the projection test (their span holds all
#: but ~0.1 % of the library's variance once aligned and normalised).
PROJECTION_COMPONENTS = 8
#: Residual per channel, in normalised units (the spectrum has unit white-line
#: integral over 17 eV, so its mean level is ~0.06 per eV), that the library's
#: own error leaves on noise-free spectra: about the misfit of the measured
#: standards (docs/scripts/calibrate_ood.py).
SYSTEMATIC_FLOOR = 0.004
#: Projection misfit above which the non-negative reconstruction is run (0.3 % of
#: the held-out simulated test set without spikes is above it; the measured
#: standards reach 1.5; sharp library spectra at a high signal-to-noise ratio up
#: to 5.5: docs/scripts/calibrate_ood.py).
MISFIT_SCREEN = 2.5
#: Misfit (of the non-negative reconstruction) above which a spectrum is flagged.
MISFIT_THRESHOLD = 4.5
#: Projection amplitude over noise below which the non-negative reconstruction
#: decides whether there is an edge (pure noise reaches ~45 in the projection;
#: the iron of the demo particle is above 64).
WEAK_PROJECTION_SNR = 60.0
#: Non-negative library-fit amplitude over noise below which there is no edge
#: (pure noise that passed the white-line integral test scores up to ~10.5; the
#: thinnest iron of the demo particle scores above 15).
MIN_RECONSTRUCTION_SNR = 12.0
#: Library misfit (as ``reconstruction_misfit``) above which a spectrum the metal
#: detector reads as metallic is flagged
#: (:func:`~hyperspy_fe_ml.predict.foreign_state_test`): below it the multiplet
#: library explains the shape, as it does for broad Fe2+.
METAL_MIN_MISFIT = 2.0
#: Fraction above which a state detector alone flags a pixel (0.2 % of the
#: held-out simulated test set reads metallic above it;
#: docs/scripts/calibrate_ood.py).
METAL_SURE_FRACTION = 0.8
#: Largest single-channel excursion of the projection residual, noise units,
#: above which the non-negative reconstruction is run (0.3 % of the held-out
#: simulated test set without spikes is above it; the standards reach 2.7).
SPIKE_SCREEN = 6.0
#: Largest single-channel excursion (of the non-negative reconstruction's
#: residual) above which a spectrum carries a spike or a glitch.
SPIKE_THRESHOLD = 12.0
#: Broadenings of the basis spectra: (L3 Lorentzian FWHM, L2 Lorentzian FWHM,
#: Gaussian resolution FWHM), eV — sharp (monochromated) and broad.
BASIS_BROADENINGS: tuple[tuple[float, float, float], ...] = (
    (0.4, 0.8, 0.3),
    (0.9, 2.0, 1.0),
)


@dataclass(frozen=True)
class ReconstructionBasis:
    """Basis of the library reconstruction on a model grid.

    Attributes
    ----------
    basis
        Shape ``(k, m)``: ``n_library`` aligned, normalised library spectra, then
        two continuum steps and background terms of either sign.
    gram
        ``basis @ basis.T`` with a tiny ridge.
    n_library
        Library rows at the top of ``basis``.
    rows
        The library parameter sets used.
    """

    basis: np.ndarray
    gram: np.ndarray
    n_library: int
    rows: np.ndarray


def representative_rows() -> np.ndarray:
    """Library rows spanning valence × site symmetry × 10Dq at 80 % Slater scaling.

    For each valence (2, 3) and symmetry: the smallest, middle and largest 10Dq of
    Oh and Td, the smallest and largest of D4h and C4v — 20 sets.

    Examples
    --------
    >>> len(representative_rows())
    20
    """
    from hyperspy_fe_ml.library.shipped import load_library

    library = load_library()
    table = library.table
    rows = []
    for valence in (2, 3):
        for symmetry in ("Oh", "Td", "D4h", "C4v"):
            group = library.select(
                valence=valence, coordination=symmetry, slater_scale=0.8
            )
            if group.size == 0:
                continue
            ten_dq = table["ten_dq"][group]
            values = np.unique(ten_dq)
            picks = (
                (values[0], values[values.size // 2], values[-1])
                if symmetry in ("Oh", "Td")
                else (values[0], values[-1])
            )
            for value in dict.fromkeys(picks):
                rows.append(int(group[np.flatnonzero(ten_dq == value)[0]]))
    return np.asarray(rows, dtype=np.int64)


def library_basis(energy: np.ndarray) -> ReconstructionBasis:
    """The reconstruction basis on a model grid (cached per grid).

    Parameters
    ----------
    energy
        The model's uniform energy grid, eV.

    Examples
    --------
    >>> import numpy as np
    >>> b = library_basis(np.arange(700.0, 730.0, 0.1))
    >>> b.basis.shape, b.n_library
    ((46, 300), 40)
    """
    energy = np.ascontiguousarray(energy, dtype=np.float64)
    return _library_basis(energy.tobytes())


@lru_cache(maxsize=4)
def _library_basis(key: bytes) -> ReconstructionBasis:
    from hyperspy_fe_ml.library.reference import broaden_library
    from hyperspy_fe_ml.model import L3_ALIGN_EV, align_on_l3

    energy = np.frombuffer(key, dtype=np.float64)
    rows = representative_rows()
    n = rows.size
    spectra = [
        broaden_library(
            rows,
            energy,
            fwhm_l3=np.full(n, l3),
            fwhm_l2=np.full(n, l2),
            resolution=np.full(n, resolution),
            step=np.zeros(n),
        )
        for l3, l2, resolution in BASIS_BROADENINGS
    ]
    _, aligned = align_on_l3(energy, np.concatenate(spectra))
    aligned = aligned[np.all(np.isfinite(aligned), axis=1)]

    def step(at: float, width: float) -> np.ndarray:
        return 0.5 + np.arctan((energy - at) / width) / np.pi

    # Continuum steps 2:1 at the L3 and L2 lines (aligned frame: L3 centroid at
    # L3_ALIGN_EV, L2 ~12.5 eV above), sharp and broad, and a background residual
    # (constant and slope, either sign) at the level of the normalised spectrum.
    level = 0.05
    slope = (energy - energy.mean()) / (energy[-1] - energy[0])
    extra = [
        step(L3_ALIGN_EV - 1.0, 0.5) + 0.5 * step(L3_ALIGN_EV + 12.0, 0.5),
        step(L3_ALIGN_EV - 1.0, 1.5) + 0.5 * step(L3_ALIGN_EV + 12.0, 1.5),
        np.full(energy.size, level),
        np.full(energy.size, -level),
        level * slope,
        -level * slope,
    ]
    basis = np.ascontiguousarray(np.concatenate([aligned, np.array(extra)]))
    gram = basis @ basis.T
    gram += 1e-9 * np.trace(gram) / gram.shape[0] * np.eye(gram.shape[0])
    return ReconstructionBasis(basis, gram, int(aligned.shape[0]), rows)


def reconstruction_test(
    energy: np.ndarray,
    inputs: np.ndarray,
    readable: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
) -> dict[str, np.ndarray]:
    """Scores of the library reconstruction for standardised model inputs.

    Parameters
    ----------
    energy
        The model's grid, eV.
    inputs
        Standardised, aligned spectra, shape ``(n, m)``.
    readable
        Rows to score, shape ``(n,)``.
    mean, scale
        The model's standardisation.

    Returns
    -------
    dict of numpy.ndarray
        ``reconstruction_misfit``, ``reconstruction_snr``, ``spike_score``
        (NaN where not readable), and booleans ``misfit_flag``, ``spike_flag``
        and ``no_edge`` (the amplitude test failed).

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_fe_ml.model import load_default_model
    >>> from hyperspy_fe_ml.library import reference_spectrum
    >>> model = load_default_model()
    >>> x, n2, c = model.standardise(reference_spectrum(3, "Oh", model.energy)[None])
    >>> t = reconstruction_test(model.energy, x, np.isfinite(c), model.input_mean,
    ...                         model.input_scale)
    >>> bool(t["misfit_flag"][0]), bool(t["no_edge"][0])
    (False, False)
    """
    basis = projection_basis(energy)
    misfit, snr, spike = projection_scores(
        np.ascontiguousarray(inputs),
        np.ascontiguousarray(readable, dtype=np.bool_),
        np.ascontiguousarray(mean, dtype=np.float64),
        np.ascontiguousarray(scale, dtype=np.float64),
        basis,
        PROJECTION_COMPONENTS,
        SYSTEMATIC_FLOOR,
    )
    # The projection is permissive for shapes its few axes happen to reach and
    # strict for sharp library spectra at high signal-to-noise ratios; pixels it
    # does not clear, and weak ones (pure noise normalised by a positive
    # white-line integral reaches ~45 in it), get the non-negative library
    # reconstruction, which decides.
    readable = np.asarray(readable, dtype=bool)
    with np.errstate(invalid="ignore"):
        weak = readable & ~(snr >= WEAK_PROJECTION_SNR)
        doubtful = readable & ((misfit > MISFIT_SCREEN) | (spike > SPIKE_SCREEN))
    no_edge = np.zeros(readable.shape, dtype=bool)
    refit = weak | doubtful
    if np.any(refit):
        nn_misfit, amplitude, nn_spike = reconstruction_scores(
            np.ascontiguousarray(inputs),
            refit,
            np.ascontiguousarray(mean, dtype=np.float64),
            np.ascontiguousarray(scale, dtype=np.float64),
            *_nnls_arguments(energy),
        )
        misfit = np.where(refit, nn_misfit, misfit)
        spike = np.where(refit, nn_spike, spike)
        with np.errstate(invalid="ignore"):
            no_edge = weak & ~(amplitude >= MIN_RECONSTRUCTION_SNR)
    with np.errstate(invalid="ignore"):
        return {
            "reconstruction_misfit": misfit,
            "reconstruction_snr": snr,
            "spike_score": spike,
            "misfit_flag": misfit > MISFIT_THRESHOLD,
            "spike_flag": spike > SPIKE_THRESHOLD,
            "no_edge": no_edge,
        }


def _nnls_arguments(energy: np.ndarray) -> tuple:
    basis = library_basis(energy)
    return (
        basis.basis,
        basis.gram,
        basis.n_library,
        SYSTEMATIC_FLOOR,
    )


def library_misfit(
    energy: np.ndarray,
    inputs: np.ndarray,
    rows: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
) -> np.ndarray:
    """Misfit of the non-negative library reconstruction, for some rows only.

    The best non-negative combination of 40 library spectra
    (:func:`library_basis`), steps and background: stricter than the projection
    (a combination of library spectra, not of their principal axes), and
    iterative, so it runs only where a test needs it (the metallic test's
    candidates, :func:`~hyperspy_fe_ml.predict.foreign_state_test`).

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``: the misfit in noise units where ``rows``, NaN elsewhere.
    """
    misfit, _, _ = reconstruction_scores(
        np.ascontiguousarray(inputs),
        np.ascontiguousarray(rows, dtype=np.bool_),
        np.ascontiguousarray(mean, dtype=np.float64),
        np.ascontiguousarray(scale, dtype=np.float64),
        *_nnls_arguments(energy),
    )
    return misfit


def projection_basis(energy: np.ndarray) -> np.ndarray:
    """Orthonormal rows spanning the library on a model grid (cached per grid).

    The first :data:`PROJECTION_COMPONENTS` rows are the leading right singular
    vectors of every shipped library spectrum, broadened at random over the
    training ranges (seeded), aligned and normalised as the model reads spectra;
    the others complete them with the continuum steps and background terms of
    :func:`library_basis`.

    Examples
    --------
    >>> import numpy as np
    >>> q = projection_basis(np.arange(700.0, 730.0, 0.1))
    >>> q.shape, bool(np.allclose(q @ q.T, np.eye(len(q))))
    ((12, 300), True)
    """
    energy = np.ascontiguousarray(energy, dtype=np.float64)
    return _projection_basis(energy.tobytes())


@lru_cache(maxsize=4)
def _projection_basis(key: bytes) -> np.ndarray:
    from hyperspy_fe_ml.library.reference import DRAW_RANGES, broaden_library
    from hyperspy_fe_ml.library.shipped import load_library
    from hyperspy_fe_ml.model import align_on_l3

    energy = np.frombuffer(key, dtype=np.float64)
    rows = np.arange(len(load_library()))
    rng = np.random.default_rng(16)
    widths = {
        name: rng.uniform(*DRAW_RANGES[name], rows.size)
        for name in ("fwhm_l3", "fwhm_l2", "resolution")
    }
    spectra = broaden_library(rows, energy, **widths, step=np.zeros(rows.size))
    _, aligned = align_on_l3(energy, spectra)
    aligned = aligned[np.all(np.isfinite(aligned), axis=1)]
    _, _, axes = np.linalg.svd(aligned, full_matrices=False)
    # The steps, the constant and the slope of the non-negative basis; their
    # negatives (there for the sign constraint) add nothing to a projection.
    basis = library_basis(energy)
    extra = basis.basis[basis.n_library :][[0, 1, 2, 4]]
    stacked = np.concatenate([axes[:PROJECTION_COMPONENTS], extra])
    q, _ = np.linalg.qr(stacked.T)
    return np.ascontiguousarray(q.T)


def thresholds() -> dict[str, float]:
    """The thresholds of the tests, for provenance and colour bars."""
    return {
        "reconstruction_misfit": MISFIT_THRESHOLD,
        "reconstruction_snr": MIN_RECONSTRUCTION_SNR,
        "spike_score": SPIKE_THRESHOLD,
    }
