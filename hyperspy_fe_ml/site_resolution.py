"""What the Fe L2,3 shape cannot tell about Fe2+ sites, stated in the maps.

Fitted class by class, measured Fe2+ standards are matched as well or better by the
multiplet sets of the other site symmetry: FeO (octahedral) best by cubic Td sets,
hercynite (tetrahedral) equally by distorted octahedra and distorted tetrahedra
(``docs/library.md``, "Distorted tetrahedra"; ``docs/scripts/site_class_fit.py``).
The model separates them on simulated spectra, but that separation does not carry
over to measured ones (FeO read 0.31-1.00 tetrahedral). Fe3+ sites are separated
in both.

So the tetrahedral share of the Fe2+ in a pixel is treated as unknown: its
uncertainty is that of a fraction uniform on [0, 1] (standard deviation
``1 / sqrt(12)``), weighted by the Fe2+ share of the iron, and added in quadrature
to the model's own standard deviation of ``td_fraction`` and (over the 4-6 span of
Fe2+ coordination numbers) of ``coordination_number``. A pixel whose iron is mostly
Fe2+ also gets the information flag
:data:`~hyperspy_fe_ml.kernels.model_inputs.FLAG_FE2_SITE_UNRESOLVED`; its values are
kept.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FE2_FLAG_SHARE",
    "UNIFORM_FRACTION_STD",
    "widen_for_unresolved_fe2_sites",
]

#: Share of Fe2+ in the iron above which the tetrahedral fraction is flagged.
FE2_FLAG_SHARE: float = 0.5
#: Standard deviation of a fraction that is uniform on [0, 1].
UNIFORM_FRACTION_STD: float = 1.0 / np.sqrt(12.0)
#: Span of Fe2+ coordination numbers (tetrahedral 4 to octahedral 6).
_FE2_CN_SPAN: float = 2.0


def widen_for_unresolved_fe2_sites(
    columns: dict[str, np.ndarray],
) -> np.ndarray:
    """Widen the site uncertainties by the Fe2+ share of each pixel.

    Parameters
    ----------
    columns
        Per-pixel outputs with ``fe3_fraction``, ``td_fraction_std`` and
        ``coordination_number_std``; the two standard deviations are replaced (new
        arrays; the arrays passed in are not written to).

    Returns
    -------
    numpy.ndarray
        Boolean, True where the Fe2+ share is above :data:`FE2_FLAG_SHARE` (NaN
        pixels are False).

    Examples
    --------
    >>> import numpy as np
    >>> columns = {
    ...     "fe3_fraction": np.array([1.0, 0.0, np.nan]),
    ...     "td_fraction_std": np.array([0.05, 0.05, np.nan]),
    ...     "coordination_number_std": np.array([0.1, 0.1, np.nan]),
    ... }
    >>> widen_for_unresolved_fe2_sites(columns).tolist()
    [False, True, False]
    >>> np.round(columns["td_fraction_std"], 3).tolist()
    [0.05, 0.293, nan]
    """
    fe2_share = np.clip(1.0 - columns["fe3_fraction"], 0.0, 1.0)
    for name, span in (
        ("td_fraction_std", 1.0),
        ("coordination_number_std", _FE2_CN_SPAN),
    ):
        unresolved = fe2_share * span * UNIFORM_FRACTION_STD
        columns[name] = np.hypot(columns[name], unresolved)
    with np.errstate(invalid="ignore"):
        return fe2_share > FE2_FLAG_SHARE
