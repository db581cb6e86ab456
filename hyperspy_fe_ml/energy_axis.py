"""Checks of the energy axis and of where the Fe L3 edge sits.

Every entry point that reads spectra calls :func:`check_energy_axis` (cheap: axis
metadata only) and then :func:`inspect_fe_l23` on the mean spectrum (one pass over
the data) before any heavy work, so bad input fails early with a message that names
what was found and how to fix it.

Physical reference values (PHYSICS.md, van Aken, Liebscher & Styrsa, Phys. Chem.
Minerals 25 (1998) 323): the Fe2+ L3 maximum lies near 707.8 eV and the Fe3+ one near
709.5 eV, so a correctly calibrated Fe L3 maximum is found within about 706–711 eV.
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np

from hyperspy_fe_ml.kernels.preprocess import l3_peak_position

#: Energy range the Fe L2,3 white lines need, eV: L3 onset to the end of L2.
REQUIRED_RANGE_EV: tuple[float, float] = (704.0, 727.0)
#: Where a calibrated Fe L3 maximum lies, eV (Fe2+ 707.8, Fe3+ 709.5 with margin).
EXPECTED_L3_RANGE_EV: tuple[float, float] = (706.0, 711.0)
#: Default target of the global calibration: half-way between the Fe2+ and Fe3+ L3
#: maxima, which is also the L3 inflection of van Aken & Liebscher's (2002) step.
L3_CALIBRATION_TARGET_EV = 708.65
#: Warn when the L3 maximum is further than this from the calibration target, eV.
L3_OFFSET_TOLERANCE_EV = 3.0
#: The automatic pre-edge window ends this far below the measured L3 maximum (the
#: Fe3+ pre-peak starts about 2.5 eV below it) and spans at most
#: ``PRE_EDGE_MAX_WIDTH_EV``.
PRE_EDGE_GAP_EV = 5.0
PRE_EDGE_MAX_WIDTH_EV = 20.0
#: The white lines must be sampled by at least this many channels (a dispersion of
#: about 1.15 eV/channel or finer over 704-727 eV) to show the L3 multiplet.
MIN_WHITE_LINE_CHANNELS = 20
#: A raw-count spectrum needs at least this much pre-edge for a power-law fit, eV.
MIN_PRE_EDGE_WIDTH_EV = 3.0
#: A mean spectrum whose pre-edge level is below this fraction of its L3 maximum is
#: taken to have had its background removed already.
BACKGROUND_REMOVED_LEVEL = 0.05
#: Smoothing and reach of the L3 search (see :func:`l3_peak_position`), eV.
L3_SMOOTHING_EV = 0.3
L3_PEAK_REACH_EV = 4.0
#: Search window for the L3 onset: wide, so that offsets of several eV are found.
L3_SEARCH_RANGE_EV: tuple[float, float] = (690.0, 722.0)

_UNITS_FIX = (
    "Set the units and calibration of the signal axis, e.g. "
    "`ax = s.axes_manager.signal_axes[0]; ax.units = 'eV'; ax.offset = ...; "
    "ax.scale = ...`"
)


@dataclass(frozen=True)
class FeL23AxisReport:
    """What :func:`inspect_fe_l23` found on a spectrum's energy axis.

    Attributes
    ----------
    low, high
        Ends of the energy axis, eV.
    uniform
        Whether the axis is uniform (non-uniform axes are resampled).
    background_removed
        Whether the spectrum looks background-subtracted already.
    pre_edge
        Pre-edge window for a power-law background fit, eV, or ``None`` when the
        background is already removed and the axis has no usable pre-edge.
    l3_position
        Measured Fe L3 maximum of the mean spectrum, eV (NaN if no edge found).
    l3_offset
        ``l3_position - L3_CALIBRATION_TARGET_EV``, eV.
    """

    low: float
    high: float
    uniform: bool
    background_removed: bool
    pre_edge: tuple[float, float] | None
    l3_position: float
    l3_offset: float

    @property
    def offset_suspect(self) -> bool:
        """``True`` when the L3 maximum is further from its expected place than
        :data:`L3_OFFSET_TOLERANCE_EV`."""
        return (
            math.isfinite(self.l3_offset)
            and abs(self.l3_offset) > L3_OFFSET_TOLERANCE_EV
        )


def check_energy_axis(
    axis, required_range: tuple[float, float] | None = REQUIRED_RANGE_EV
) -> np.ndarray:
    """Check that a HyperSpy signal axis can hold Fe L2,3 spectra.

    Parameters
    ----------
    axis
        The signal axis (uniform or non-uniform HyperSpy data axis).
    required_range
        Energies, eV, the axis must cover: by default the Fe L2,3 white lines
        (704–727 eV). Cropped spectra such as 700–729.9 eV pass. ``None`` checks
        units and order only.

    Returns
    -------
    numpy.ndarray
        The axis values in eV, float64.

    Raises
    ------
    ValueError
        When the units are not eV, the axis is not increasing, it does not cover
        ``required_range``, or it has fewer than :data:`MIN_WHITE_LINE_CHANNELS`
        channels there; the message names what was found and the fix.

    Examples
    --------
    >>> import hyperspy.api as hs, numpy as np
    >>> s = hs.signals.Signal1D(np.zeros(300))
    >>> ax = s.axes_manager.signal_axes[0]
    >>> ax.units, ax.offset, ax.scale = "eV", 700.0, 0.1
    >>> check_energy_axis(ax)[[0, -1]]
    array([700. , 729.9])
    """
    units = axis.units
    units_text = str(units).strip() if isinstance(units, str) else ""
    if units_text.lower() == "kev":
        raise ValueError(
            "The signal axis is in keV, but Fe L2,3 analysis needs eV. Convert it "
            "with `s.axes_manager.signal_axes[0].convert_to_units('eV')`."
        )
    if units_text != "eV" and units_text.lower() != "ev":
        found = repr(units_text) if units_text else "undefined"
        raise ValueError(
            f"The signal axis units are {found}, not eV: the energy axis of an Fe "
            f"L2,3 spectrum must be calibrated in eV. {_UNITS_FIX}."
        )
    energy = np.asarray(axis.axis, dtype=np.float64)
    if energy.size < 2 or not np.all(np.isfinite(energy)):
        raise ValueError(
            f"The energy axis has {energy.size} channel(s) or non-finite values; it "
            "needs at least two finite, increasing energies. " + _UNITS_FIX + "."
        )
    if not np.all(np.diff(energy) > 0):
        raise ValueError(
            "The energy axis is not strictly increasing (found "
            f"{energy[0]:.2f} ... {energy[-1]:.2f} eV). Reverse the data and the "
            "axis (e.g. `s = s.isig[::-1]`) or fix the axis scale, which must be "
            "positive."
        )
    if required_range is None:
        return energy
    lo, hi = required_range
    if energy[0] > lo or energy[-1] < hi:
        raise ValueError(
            f"The energy axis covers {energy[0]:.2f}–{energy[-1]:.2f} eV, but the Fe "
            f"L2,3 white lines need at least {lo:g}–{hi:g} eV. Record or crop a "
            "range that includes the L3 and L2 edges; if the axis is only "
            "offset, fix its calibration (`axes_manager.signal_axes[0].offset`); "
            "or pass a narrower `required_range` if you know what you do."
        )
    n_window = int(np.count_nonzero((energy >= lo) & (energy <= hi)))
    if n_window < MIN_WHITE_LINE_CHANNELS:
        raise ValueError(
            f"The energy axis has {n_window} channels in the white-line window "
            f"{lo:g}–{hi:g} eV; Fe L2,3 analysis needs at least "
            f"{MIN_WHITE_LINE_CHANNELS} (a dispersion of "
            f"{(hi - lo) / MIN_WHITE_LINE_CHANNELS:.2f} eV/channel or finer) to "
            "read the L3 multiplet. Record with a finer dispersion."
        )
    return energy


def inspect_fe_l23(
    energy: np.ndarray,
    mean_spectrum: np.ndarray,
    *,
    uniform: bool = True,
    background_removed: bool | None = None,
    pre_edge: tuple[float, float] | None = None,
    warn: bool = True,
) -> FeL23AxisReport:
    """Find the Fe L3 edge in a mean spectrum and decide how to treat the background.

    Parameters
    ----------
    energy
        Energy axis, eV, increasing (as returned by :func:`check_energy_axis`).
    mean_spectrum
        The mean (or summed) spectrum of the signal, same length as ``energy``.
    uniform
        Whether the axis is uniform (reported only).
    background_removed
        ``True``/``False`` to say whether the background was removed; ``None`` to
        decide from the pre-edge level of the mean spectrum.
    pre_edge
        Pre-edge window in eV for the power-law fit; ``None`` to place it
        :data:`PRE_EDGE_GAP_EV` below the nominal L3 energy
        (:data:`L3_CALIBRATION_TARGET_EV`), or below the measured L3 maximum when
        that is more than :data:`L3_OFFSET_TOLERANCE_EV` away (an offset axis).
    warn
        Warn when the L3 maximum is more than :data:`L3_OFFSET_TOLERANCE_EV` from
        where Fe L3 should be.

    Returns
    -------
    FeL23AxisReport

    Raises
    ------
    ValueError
        When the mean spectrum has no finite value or no rising edge, or when raw
        counts (background not removed) come without a usable pre-edge region.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(690.0, 740.0, 0.1)
    >>> y = 1e11 * e**-3.5 + 50 / (1 + ((e - 709.5) / 0.6) ** 2)
    >>> report = inspect_fe_l23(e, y)
    >>> report.background_removed, round(report.l3_position, 1)
    (False, 709.5)
    >>> [round(e, 2) for e in report.pre_edge]
    [690.0, 703.65]
    """
    mean_spectrum = np.asarray(mean_spectrum, dtype=np.float64)
    if not np.any(np.isfinite(mean_spectrum)):
        raise ValueError(
            "The spectra contain no finite value (all NaN or inf): nothing to "
            "analyse. Check the file and the data type."
        )
    low, high = float(energy[0]), float(energy[-1])
    search_lo = max(low, L3_SEARCH_RANGE_EV[0])
    search_hi = min(high - 2.0, L3_SEARCH_RANGE_EV[1])
    l3 = float(
        l3_peak_position(
            energy,
            np.nan_to_num(mean_spectrum)[None, :],
            search_lo,
            search_hi,
            L3_SMOOTHING_EV,
            L3_PEAK_REACH_EV,
        )[0]
    )
    # An "edge" right at the start of an axis that has room for a pre-edge is the
    # start of the axis, not Fe L3: the typical spectrum has no Fe edge (a region
    # of support or vacuum). Carry on with the nominal L3 energy, so pixels that do
    # hold iron are still analysed (those without are flagged per pixel).
    room = PRE_EDGE_GAP_EV + MIN_PRE_EDGE_WIDTH_EV
    spurious = (
        math.isfinite(l3) and l3 - low < room and low <= EXPECTED_L3_RANGE_EV[0] - room
    )
    if not math.isfinite(l3) or spurious:
        if warn:
            warnings.warn(
                "No Fe L3 edge found in the typical (median) spectrum between "
                f"{search_lo:.1f} and {search_hi:.1f} eV: most pixels hold no iron, "
                "or the axis is not Fe L2,3 in eV. The pre-edge window is placed "
                f"for L3 at {L3_CALIBRATION_TARGET_EV} eV; pixels without an edge "
                "give NaN (flagged) in predictions.",
                UserWarning,
                stacklevel=3,
            )
        l3 = math.nan
    nominal = L3_CALIBRATION_TARGET_EV if math.isnan(l3) else l3
    offset = l3 - L3_CALIBRATION_TARGET_EV
    if pre_edge is None:
        # Anchored on the nominal L3 energy unless the axis is clearly offset, so
        # that every pixel gets the same window whatever its neighbours' valence
        # (the typical spectrum's L3 moves with the mix of Fe2+ and Fe3+).
        anchor = L3_CALIBRATION_TARGET_EV
        if abs(nominal - anchor) > L3_OFFSET_TOLERANCE_EV:
            anchor = nominal
        pre_end = min(anchor, EXPECTED_L3_RANGE_EV[1] + L3_OFFSET_TOLERANCE_EV)
        pre_end -= PRE_EDGE_GAP_EV
        pre_start = max(low, pre_end - PRE_EDGE_MAX_WIDTH_EV)
        window = (pre_start, pre_end) if pre_end > low else None
    else:
        window = (float(pre_edge[0]), float(pre_edge[1]))
        if window[0] >= window[1] or window[1] < low or window[0] > high:
            raise ValueError(
                f"The pre-edge window {window[0]:g}–{window[1]:g} eV does not lie "
                f"on the energy axis ({low:.2f}–{high:.2f} eV) or is empty. Pass "
                "`pre_edge=(start, end)` with start < end below the L3 edge."
            )
    if background_removed is None:
        background_removed = _looks_background_removed(energy, mean_spectrum, nominal)
    if not background_removed:
        width = 0.0 if window is None else window[1] - max(window[0], low)
        if width < MIN_PRE_EDGE_WIDTH_EV:
            raise ValueError(
                f"These spectra still carry their background (pre-edge level "
                f"well above zero), but the energy axis starts at {low:.2f} eV, "
                f"leaving {max(width, 0.0):.1f} eV of pre-edge below the L3 edge at "
                f"{nominal:.2f} eV; a power-law background fit needs at least "
                f"{MIN_PRE_EDGE_WIDTH_EV:g} eV. Record or keep a pre-edge region "
                "(e.g. from 690 eV), or remove the background yourself and pass "
                "`background_removed=True`."
            )
    report = FeL23AxisReport(
        low=low,
        high=high,
        uniform=uniform,
        background_removed=bool(background_removed),
        pre_edge=window,
        l3_position=l3,
        l3_offset=offset,
    )
    if warn and report.offset_suspect and math.isfinite(l3):
        warnings.warn(
            f"The Fe L3 maximum of the mean spectrum is at {l3:.2f} eV, "
            f"{offset:+.2f} eV from where it should be (Fe2+ ≈ 707.8, Fe3+ ≈ "
            f"709.5 eV): the energy axis is probably offset. Calibrate it with "
            f"`s = s.calibrate_fe_l3()` (global shift placing L3 at "
            f"{L3_CALIBRATION_TARGET_EV} eV, or `l3_energy=` a known value), or "
            "correct drift pixel by pixel with `s = s.align_fe_l3()`.",
            UserWarning,
            stacklevel=3,
        )
    return report


def _looks_background_removed(
    energy: np.ndarray, spectrum: np.ndarray, l3: float
) -> bool:
    """Whether the level just below the edge is near zero relative to the L3 peak."""
    before = (energy >= l3 - PRE_EDGE_GAP_EV - 3.0) & (energy <= l3 - PRE_EDGE_GAP_EV)
    if not np.any(before):
        before = energy <= energy[0] + 1.0
    level = float(np.nanmedian(spectrum[before]))
    near_l3 = np.abs(energy - l3) <= 0.5
    peak = float(np.nanmax(spectrum[near_l3])) if np.any(near_l3) else np.nan
    if not math.isfinite(peak) or peak <= 0:
        return False
    return abs(level) < BACKGROUND_REMOVED_LEVEL * peak
