"""Reference Fe L2,3 edge of metallic iron.

In the metal the 2p electron goes into the partly filled 3d band, not into a
localised 3d^n shell: there are no multiplets, and each white line is one broad
line, asymmetric towards higher energy loss (the unoccupied d band above the Fermi
level and the core-hole edge singularity). The line shape used is that of
Doniach & Šunjić (J. Phys. C 3 (1970) 285) with the energy loss on the
high-energy side,

.. math::

    D(\\varepsilon) = \\frac{\\cos\\left(\\pi\\alpha/2 -
    (1-\\alpha)\\arctan(\\varepsilon/\\gamma)\\right)}
    {(\\varepsilon^2 + \\gamma^2)^{(1-\\alpha)/2}},
    \\quad \\varepsilon = E - E_0,

(a Lorentzian of half width :math:`\\gamma` for :math:`\\alpha = 0`; the half
width above the line may be larger, by a factor ``skew``, as in the split
Lorentzians used to fit metallic white lines), cut off
above the line by :math:`\\exp(-\\varepsilon / W)` where the unoccupied 3d band
ends (width :math:`W` of a few eV: the minority-spin band of bcc iron), and
convolved with the Gaussian instrument resolution. Physical inputs and their sources:

* Edge energies L3 706.8 eV and L2 719.9 eV (PHYSICS.md, "Edge energies (metal)").
  The white-line maximum lies a few tenths of an eV above the edge.
* White-line area = number of 3d holes, as for the multiplet library
  (:mod:`~hyperspy_fe_ml.library.reference`): 3.39 for bcc iron
  (Chen et al., Phys. Rev. Lett. 75 (1995) 152, XMCD sum rules), against 4 for
  Fe2+ and 5 for Fe3+.
* L3 : L2 white-line area 2.6-3.6 (statistical 2, raised by the exchange and
  spin-orbit of the 3d band; Pearson et al., Phys. Rev. B 47 (1993) 8471 list
  about 3 for Fe).
* L2 broader than L3 by the L2 L3 M45 Coster-Kronig decay (PHYSICS.md: core-hole
  widths disagree, the L2 one is larger).
* A continuum step 2 : 1 at the two edges (transitions into 4s and above), per Fe
  atom in the range of the multiplet library's
  (:data:`~hyperspy_fe_ml.library.calibration.DEFAULT_BROADENING`), up to twice its
  largest value.

The family of shapes (:data:`METAL_DRAW_RANGES`) spans these values; it is what
the out-of-distribution tests (:mod:`hyperspy_fe_ml.ood`) compare a spectrum with.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "METAL_DEFAULTS",
    "METAL_DRAW_RANGES",
    "METAL_D_HOLES",
    "doniach_sunjic",
    "draw_metal_spectra",
    "metal_spectrum",
]

#: Number of 3d holes of bcc iron (white-line area of the metal reference).
METAL_D_HOLES = 3.39

#: Default shape of the metal reference.
METAL_DEFAULTS: dict[str, float] = {
    "l3_edge": 706.8,  # eV, PHYSICS.md
    "spin_orbit": 13.1,  # eV, L2 edge 719.9 eV
    "asymmetry": 0.2,  # Doniach-Sunjic alpha
    "skew": 1.0,  # half width above the line centre / half width below
    "half_width_l3": 0.9,  # eV, band and core hole
    "extra_half_width_l2": 0.4,  # eV, Coster-Kronig
    "band_width": 3.0,  # eV, unoccupied 3d band above the Fermi level
    "branching": 3.0,  # L3 : L2 white-line area
    "resolution": 0.5,  # eV, Gaussian FWHM
    "step": 0.078,  # continuum step at L3, per eV and Fe atom (library units)
}

#: Ranges drawn by :func:`draw_metal_spectra` (uniform), from the sources above.
METAL_DRAW_RANGES: dict[str, tuple[float, float]] = {
    "spin_orbit": (12.9, 13.3),
    "asymmetry": (0.0, 0.4),
    "skew": (1.0, 2.6),
    "half_width_l3": (0.5, 2.0),
    "extra_half_width_l2": (0.2, 0.8),
    "band_width": (2.0, 10.0),
    "branching": (2.6, 3.6),
    "resolution": (0.1, 1.5),
    "step": (0.04, 0.16),
}


def doniach_sunjic(
    energy: np.ndarray,
    centre: float,
    half_width: float,
    asymmetry: float,
    skew: float = 1.0,
) -> np.ndarray:
    """Doniach-Šunjić line with its tail towards higher energy, maximum 1.

    Parameters
    ----------
    energy
        Energy axis, eV.
    centre
        Energy of the line (the maximum for zero asymmetry), eV.
    half_width
        Lorentzian half width :math:`\\gamma`, eV.
    asymmetry
        :math:`\\alpha`, 0 (a Lorentzian) to below 1.
    skew
        Half width above ``centre`` over the half width below (1: the
        Doniach-Šunjić line; with ``asymmetry`` 0, a split Lorentzian).

    Examples
    --------
    >>> import numpy as np
    >>> e = np.linspace(-10, 10, 2001)
    >>> y = doniach_sunjic(e, 0.0, 1.0, 0.0)
    >>> bool(np.allclose(y, 1 / (1 + e**2)))
    True
    >>> y = doniach_sunjic(e, 0.0, 1.0, 0.3)
    >>> bool(y[e > 5].sum() > y[e < -5].sum())  # tail to higher energy
    True
    """
    if not 0.0 <= asymmetry < 1.0:
        raise ValueError(f"`asymmetry` must be in [0, 1); got {asymmetry}.")
    if half_width <= 0 or skew <= 0:
        raise ValueError(
            f"`half_width` and `skew` must be positive; got {half_width}, {skew}."
        )
    offset = np.asarray(energy, dtype=np.float64) - centre
    eps = offset / np.where(offset > 0, half_width * skew, half_width)
    y = np.cos(np.pi * asymmetry / 2 - (1 - asymmetry) * np.arctan(eps)) / (
        (1 + eps**2) ** ((1 - asymmetry) / 2)
    )
    return y / y.max() if y.max() > 0 else y


def metal_spectrum(
    energy: Any,
    *,
    shift: float = 0.0,
    with_step: bool = True,
    **shape: float,
) -> np.ndarray:
    """Fe L2,3 edge of metallic iron on an energy axis.

    Parameters
    ----------
    energy
        Energy axis, eV, increasing and uniform.
    shift
        Energy shift of the whole edge, eV.
    with_step
        Add the 2 : 1 continuum step.
    **shape
        Any of :data:`METAL_DEFAULTS` (``l3_edge``, ``spin_orbit``, ``asymmetry``,
        ``skew``, ``half_width_l3``, ``extra_half_width_l2``, ``band_width``,
        ``branching``, ``resolution``, ``step``).

    Returns
    -------
    numpy.ndarray
        Intensity per eV; white-line area :data:`METAL_D_HOLES` (the lines are
        computed on a padded axis so their tails are counted).

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(690.0, 740.0, 0.05)
    >>> y = metal_spectrum(e, with_step=False)
    >>> bool(706.8 < e[np.argmax(y)] < 708.0)
    True
    >>> round(float(np.trapezoid(y, e)), 1)  # white lines, tails beyond cut
    3.3
    """
    unknown = set(shape) - set(METAL_DEFAULTS)
    if unknown:
        raise TypeError(
            f"Unknown shape parameter(s) {sorted(unknown)}; use {list(METAL_DEFAULTS)}."
        )
    p = {**METAL_DEFAULTS, **shape}
    energy = np.asarray(energy, dtype=np.float64)
    step_ev = 0.02
    fine = np.arange(energy[0] - 60.0, energy[-1] + 60.0, step_ev)
    l3 = p["l3_edge"] + shift
    l2 = l3 + p["spin_orbit"]
    # Lines centred a half width above the edge, so the edge is on the rising flank.
    w3 = p["half_width_l3"]
    w2 = w3 + p["extra_half_width_l2"]
    line3 = doniach_sunjic(fine, l3 + w3, w3, p["asymmetry"], p["skew"])
    line2 = doniach_sunjic(fine, l2 + w2, w2, p["asymmetry"], p["skew"])
    # The unoccupied band ends: the tails are cut off a band width above the edge.
    line3 *= np.exp(-np.clip(fine - l3 - w3, 0.0, None) / p["band_width"])
    line2 *= np.exp(-np.clip(fine - l2 - w2, 0.0, None) / p["band_width"])
    branching = p["branching"]
    line3 *= METAL_D_HOLES * branching / (1 + branching) / (line3.sum() * step_ev)
    line2 *= METAL_D_HOLES / (1 + branching) / (line2.sum() * step_ev)
    y = line3 + line2
    sigma = p["resolution"] / (2 * np.sqrt(2 * np.log(2)))
    if sigma > step_ev / 4:
        half = int(np.ceil(5 * sigma / step_ev))
        x = np.arange(-half, half + 1) * step_ev
        kernel = np.exp(-0.5 * (x / sigma) ** 2)
        y = np.convolve(y, kernel / kernel.sum(), mode="same")
    if with_step:
        step_width = max(p["resolution"], 0.3)

        def edge(at: float) -> np.ndarray:
            return 0.5 + np.arctan((fine - at) / step_width) / np.pi

        y = y + p["step"] * (edge(l3) + 0.5 * edge(l2))
    return np.interp(energy, fine, y)


def draw_metal_spectra(
    energy: Any, n: int, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """``n`` metal spectra with shapes drawn from :data:`METAL_DRAW_RANGES`.

    Examples
    --------
    >>> import numpy as np
    >>> y = draw_metal_spectra(np.arange(695.0, 735.0, 0.1), 3, rng=0)
    >>> y.shape, bool(np.all(y >= 0))
    ((3, 400), True)
    """
    rng = np.random.default_rng(rng)
    out = np.empty((n, np.asarray(energy).size))
    for k in range(n):
        shape = {name: rng.uniform(*r) for name, r in METAL_DRAW_RANGES.items()}
        out[k] = metal_spectrum(energy, **shape)
    return out
