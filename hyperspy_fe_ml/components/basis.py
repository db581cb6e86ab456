"""The tabulated Fe L2,3 reference spectra behind :class:`FeL23Edge`.

The four calibrated multiplet spectra of the shipped library (Fe2+/Fe3+ on
octahedral/tetrahedral sites, default crystal fields), white lines and continuum
apart, are tabulated once per process on a 0.02 eV grid for Gaussian broadenings
every 0.05 eV FWHM, so that evaluating the component is an interpolation and its
gradients are analytic. Pure NumPy on arrays; HyperSpy is not involved.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.fft

from hyperspy_fe_ml.library.calibration import DEFAULT_BROADENING
from hyperspy_fe_ml.library.reference import broaden_library, library_parameter_set

__all__ = ["BASIS_SITES", "FeL23Basis", "fe_l23_basis"]


#: Sites of the basis spectra, in table order: (valence, coordination).
BASIS_SITES: tuple[tuple[int, str], ...] = ((2, "Oh"), (3, "Oh"), (2, "Td"), (3, "Td"))
#: Energy range (eV) and step of the tabulated spectra. Outside the range the
#: component takes the end values (zero below the edge, the continuum above).
BASIS_RANGE_EV: tuple[float, float] = (685.0, 765.0)
BASIS_STEP_EV = 0.02
#: Gaussian broadening (FWHM, eV) of the tabulated levels: 0 to MAX in steps.
BROADENING_STEP_EV = 0.05
MAX_BROADENING_EV = 3.0

_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass(frozen=True, eq=False)
class FeL23Basis:
    """Tabulated Fe L2,3 spectra of four sites, evaluated by interpolation.

    Pure arrays: what :class:`FeL23Edge` evaluates. Use :func:`fe_l23_basis` to
    get one (cached per process).

    Attributes
    ----------
    start, step
        First energy and step of the table, eV.
    level_variance
        Gaussian variance (eV²) of each broadening level, increasing from 0.
    table
        Shape ``(levels, channels, 8)``: per level and energy, the white lines of the
        four :data:`BASIS_SITES` (columns 0–3, white-line area = number of 3d
        holes) then their continuum steps at the library's default height
        (columns 4–7).
    """

    start: float
    step: float
    level_variance: np.ndarray
    table: np.ndarray

    def evaluate(
        self,
        x: np.ndarray,
        intensity: np.ndarray | float,
        fe3_fraction: np.ndarray | float,
        td_fraction: np.ndarray | float,
        shift: np.ndarray | float,
        broadening: np.ndarray | float,
        continuum: np.ndarray | float,
        *,
        gradients: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
        """The mixture spectrum at energies ``x``, and optionally its gradients.

        The spectrum is ``intensity * sum_j w_j (W_j + continuum * C_j)`` with the
        site weights ``w = ((1-f)(1-t), f(1-t), (1-f)t, ft)`` of the Fe3+ fraction
        ``f`` and tetrahedral fraction ``t`` (per Fe atom), white lines ``W_j`` and
        continua ``C_j`` shifted by ``shift`` and broadened by a Gaussian of FWHM
        ``broadening``. Fractions outside 0–1 extrapolate linearly, and so does the
        broadening past the table (in the Gaussian variance, see
        :func:`_variance`), so unbounded optimisers see a smooth function with no
        flat regions in the parameters.

        Parameters
        ----------
        x
            Energies, eV, shape ``(channels,)``.
        intensity, fe3_fraction, td_fraction, shift, broadening, continuum
            Scalars or arrays of one (navigation) shape.
        gradients
            Also return the partial derivatives with respect to each parameter.

        Returns
        -------
        numpy.ndarray or (numpy.ndarray, dict)
            Shape ``params.shape + (channels,)``; the dict maps parameter names to
            arrays of that shape.
        """
        x = np.asarray(x, dtype=np.float64)
        params = np.broadcast_arrays(
            *(
                np.asarray(v, dtype=np.float64)
                for v in (
                    intensity,
                    fe3_fraction,
                    td_fraction,
                    shift,
                    broadening,
                    continuum,
                )
            )
        )
        amp, f, t, shift, fwhm, cont = (p[..., None] for p in params)
        n_levels, n_channels, _ = self.table.shape
        # Position on the energy grid (linear interpolation, ends held).
        pos = (x - shift - self.start) / self.step
        inside = (pos > 0.0) & (pos < n_channels - 1)
        pos = np.clip(pos, 0.0, n_channels - 1 - 1e-9)
        i = pos.astype(np.intp)
        u = (pos - i)[..., None]
        # Broadening level: linear interpolation in the Gaussian variance, and
        # linear extrapolation past the first and last levels.
        var, dvar_dfwhm = _variance(fwhm)
        k = np.clip(
            np.searchsorted(self.level_variance, var, side="right") - 1,
            0,
            n_levels - 2,
        )
        var_lo = self.level_variance[k]
        dvar = self.level_variance[k + 1] - var_lo
        s = ((var - var_lo) / dvar)[..., None]
        t00, t01 = self.table[k, i], self.table[k, i + 1]
        t10, t11 = self.table[k + 1, i], self.table[k + 1, i + 1]
        lo = t00 + u * (t01 - t00)
        hi = t10 + u * (t11 - t10)
        values = lo + s * (hi - lo)  # (..., channels, 8)
        cont3 = cont[..., None]
        basis = values[..., :4] + cont3 * values[..., 4:]
        f3, t3 = f[..., None], t[..., None]
        weights = np.concatenate(
            [(1 - f3) * (1 - t3), f3 * (1 - t3), (1 - f3) * t3, f3 * t3], axis=-1
        )
        shape = np.sum(weights * basis, axis=-1)
        result = amp * shape
        if not gradients:
            return result
        d_f = np.concatenate([-(1 - t3), 1 - t3, -t3, t3], axis=-1)
        d_t = np.concatenate([-(1 - f3), -f3, 1 - f3, f3], axis=-1)
        slope = ((t01 - t00) + s * ((t11 - t10) - (t01 - t00))) / self.step
        d_energy = np.sum(weights * (slope[..., :4] + cont3 * slope[..., 4:]), axis=-1)
        d_var = (hi - lo) / dvar[..., None]
        d_variance = np.sum(
            weights * (d_var[..., :4] + cont3 * d_var[..., 4:]), axis=-1
        )
        grads = {
            "intensity": np.broadcast_to(shape, result.shape),
            "fe3_fraction": amp * np.sum(d_f * basis, axis=-1),
            "td_fraction": amp * np.sum(d_t * basis, axis=-1),
            "shift": np.where(inside, -amp * d_energy, 0.0),
            "broadening": amp * d_variance * dvar_dfwhm,
            "continuum": amp * np.sum(weights * values[..., 4:], axis=-1),
        }
        return result, grads


def _variance(fwhm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian variance (eV²) of a broadening FWHM, and its derivative.

    ``(fwhm * sigma/FWHM)**2`` from one table step up; below, its tangent line,
    which runs on to negative variances (a slight sharpening, extrapolated
    linearly from the table). A Gaussian of zero width is a stationary point of
    the square, where least-squares optimisers see no gradient and can run away;
    the tangent keeps the broadening a well-behaved parameter down to and below
    zero (the FWHM is off by less than one step, 0.05 eV, there).
    """
    floor = BROADENING_STEP_EV
    above = fwhm >= floor
    width2 = np.where(above, fwhm * fwhm, 2.0 * floor * fwhm - floor * floor)
    slope = np.where(above, 2.0 * fwhm, 2.0 * floor)
    return width2 * _FWHM_TO_SIGMA**2, slope * _FWHM_TO_SIGMA**2


@functools.lru_cache(maxsize=4)
def fe_l23_basis(
    fwhm_l3: float | None = None, fwhm_l2: float | None = None
) -> FeL23Basis:
    """The tabulated basis of :class:`FeL23Edge`, built once per widths.

    The four sites take the library's default crystal fields
    (:data:`~hyperspy_fe_ml.library.reference.DEFAULT_PARAMETERS`), calibrated
    energies and, unless given, the calibrated Lorentzian widths; Gaussian
    broadening is applied to the table levels with FFTs (edges held, so the
    continuum plateau is not wrapped).

    Parameters
    ----------
    fwhm_l3, fwhm_l2
        Lorentzian core-hole widths, FWHM eV; ``None`` for the calibrated defaults.

    Returns
    -------
    FeL23Basis

    Examples
    --------
    >>> import numpy as np
    >>> basis = fe_l23_basis()
    >>> e = np.arange(700.0, 730.0, 0.05)
    >>> y = basis.evaluate(e, 1.0, 1.0, 0.0, 0.0, 0.12, 0.0)  # Fe3+ Oh white lines
    >>> round(float(np.trapezoid(y, e)), 1)  # area 5 (holes), Lorentzian tails cut
    4.8
    """
    widths = {
        "fwhm_l3": DEFAULT_BROADENING["fwhm_l3"] if fwhm_l3 is None else fwhm_l3,
        "fwhm_l2": DEFAULT_BROADENING["fwhm_l2"] if fwhm_l2 is None else fwhm_l2,
    }
    for name, value in widths.items():
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(
                f"{name}={value!r} is invalid: the Lorentzian widths are FWHM in eV, "
                f"finite and >= 0 (default {DEFAULT_BROADENING[name]})"
            )
    rows = [library_parameter_set(v, c)[0] for v, c in BASIS_SITES]
    grid = np.arange(
        BASIS_RANGE_EV[0], BASIS_RANGE_EV[1] + BASIS_STEP_EV / 2, BASIS_STEP_EV
    )
    n = len(rows)
    common = {k: np.full(n, float(v)) for k, v in widths.items()}
    white = broaden_library(
        rows, grid, resolution=np.zeros(n), step=np.zeros(n), **common
    )
    with_step = broaden_library(
        rows,
        grid,
        resolution=np.zeros(n),
        step=np.full(n, DEFAULT_BROADENING["step"]),
        **common,
    )
    spectra = np.concatenate([white, with_step - white])  # (8, channels)
    level_fwhm = np.arange(
        0.0, MAX_BROADENING_EV + BROADENING_STEP_EV / 2, BROADENING_STEP_EV
    )
    variance = (level_fwhm * _FWHM_TO_SIGMA) ** 2
    table = _gaussian_levels(spectra, BASIS_STEP_EV, variance)
    return FeL23Basis(
        start=float(grid[0]),
        step=BASIS_STEP_EV,
        level_variance=variance,
        table=np.ascontiguousarray(table.transpose(0, 2, 1)),
    )


def _gaussian_levels(
    spectra: np.ndarray, step: float, variance: np.ndarray
) -> np.ndarray:
    """Gaussian-broadened copies of ``spectra``, shape ``(levels, n, channels)``.

    FFT convolution of the spectra padded with their end values (a wrap-free,
    "nearest" boundary), exact for the continuous Gaussian.
    """
    n_channels = spectra.shape[-1]
    pad = int(np.ceil(7.0 * np.sqrt(variance.max()) / step)) + 1
    padded = np.pad(spectra, ((0, 0), (pad, pad)), mode="edge")
    size = scipy.fft.next_fast_len(padded.shape[-1], real=True)
    spectrum_ft = scipy.fft.rfft(padded, size, axis=-1)
    freq = scipy.fft.rfftfreq(size, step)
    out = np.empty((variance.size, *spectra.shape))
    for level, var in enumerate(variance):
        kernel = np.exp(-2.0 * np.pi**2 * var * freq**2)
        smooth = scipy.fft.irfft(spectrum_ft * kernel, size, axis=-1)
        out[level] = smooth[:, pad : pad + n_channels]
    return out
