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
#: L3 maxima of Fe2+ and Fe3+, eV (van Aken, Liebscher & Styrsa 1998).
FE2_L3_EV = 707.8
FE3_L3_EV = 709.5
#: L3 centroids (iterated, ±5 eV windows, as the model aligns on them) of the
#: library's octahedral Fe2+ and Fe3+ references, whose energies are calibrated
#: to those maxima (docs/library.md): where the centroid of a spectrum with a
#: given Fe3+ fraction lies on a calibrated axis, by linear interpolation (the
#: centroid, unlike the maximum, moves smoothly across mixtures).
FE2_L3_CENTROID_EV = 708.51
FE3_L3_CENTROID_EV = 710.41
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
#: The window moves with a measured L3 maximum more than this below the nominal
#: energy (which would leave less than 3 eV between window and maximum), eV.
PRE_EDGE_ANCHOR_SLACK_EV = 2.0
#: The white lines must be sampled by at least this many channels (a dispersion of
#: about 1.15 eV/channel or finer over 704-727 eV) to show the L3 multiplet.
MIN_WHITE_LINE_CHANNELS = 20
#: A raw-count spectrum needs at least this much pre-edge for a power-law fit, eV.
MIN_PRE_EDGE_WIDTH_EV = 3.0
#: A typical spectrum whose lowest (smoothed) level before the L3 line is below
#: this fraction of its L3 maximum is taken to have had its background removed
#: already. Raw Fe L2,3 counts sit on a background of at least a few per cent of
#: the L3 maximum (of the measured raw spectra in the development set, 1.8-68 %,
#: digitised ones included); background-removed ones with a pre-edge, noise
#: aside, on nothing (-0.9 to +0.4 %).
BACKGROUND_REMOVED_LEVEL = 0.01
#: Up to this level, a spectrum whose lowest point is its first one and that rises
#: from there is background-free: the rising tails of its white lines (Lorentzian
#: core-hole widths) or of its continuum step reach this far below the edge, where
#: a background would fall.
TAIL_LEVEL = 0.05
#: Above that level, a spectrum whose lowest point is its first one and that
#: rises from there so fast that it would reach zero within this many eV below
#: the axis start is the onset of an edge cropped close to its L3 line
#: (background removed: FeCl3 and haematite cut 3 eV below L3 extrapolate to zero
#: 0.45 eV below their start); a background under the edge is a pedestal that
#: extrapolates much further (raw haematite counts cut 3.4 eV below L3: 4.5 eV).
ONSET_ZERO_DISTANCE_EV = 1.5
#: Smoothing of that lowest level, eV (a running mean).
BACKGROUND_LEVEL_SMOOTHING_EV = 0.5
#: Smoothing and reach of the L3 search (see :func:`l3_peak_position`), eV.
L3_SMOOTHING_EV = 0.3
L3_PEAK_REACH_EV = 4.0
#: Search window for the L3 onset: wide, so that offsets of several eV are found.
L3_SEARCH_RANGE_EV: tuple[float, float] = (690.0, 722.0)
#: What :meth:`~hyperspy_fe_ml.signals.FeL23Signal.predict_fe_state` needs, relative
#: to the measured L3 maximum, eV: from 3 eV below it to 2 eV above the L2
#: maximum, which lies 12.7-13.1 eV above L3 in experiment (PHYSICS.md) and
#: 12.8-14.1 eV in the library. 0.5 eV of slack at the low end and 0.9 eV at the
#: high end allow for where a user (or a digitiser) put those maxima.
CONTRACT_SPAN_EV: tuple[float, float] = (-2.5, 14.0)
#: Raw counts whose pre-edge is too short for a power-law fit 5 eV below L3 get
#: a background from what there is: the axis start up to the usual window end,
#: or up to this far past the start where that leaves less, eV ...
SHORT_PRE_EDGE_WIDTH_EV = 1.0
#: ... but never closer to the L3 maximum than this (the foot of the Fe3+
#: pre-peak, 1.5 eV below the maximum, with its width), eV.
SHORT_PRE_EDGE_GAP_EV = 1.9
#: Fewest channels a pre-edge window may hold.
MIN_PRE_EDGE_CHANNELS = 3

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
    background
        How the background is to be treated: ``"pre-edge mean"`` (already
        removed), ``"power law"`` or, for raw counts with a pre-edge too short to
        fit an exponent, ``"fixed-exponent power law"``.
    background_guessed
        ``True`` when the spectrum starts in the onset of its edge and was taken
        to be background-removed from the way it rises alone (raw counts cut
        that close to the edge look alike): callers warn, naming
        ``background_removed=False``.
    """

    low: float
    high: float
    uniform: bool
    background_removed: bool
    pre_edge: tuple[float, float] | None
    l3_position: float
    l3_offset: float
    background: str = "power law"
    background_guessed: bool = False

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
    _check_white_line_channels(energy, lo, hi)
    return energy


def _check_white_line_channels(energy: np.ndarray, lo: float, hi: float) -> None:
    """Raise unless ``[lo, hi]`` holds :data:`MIN_WHITE_LINE_CHANNELS` channels."""
    n_window = int(np.count_nonzero((energy >= lo) & (energy <= hi)))
    if n_window < MIN_WHITE_LINE_CHANNELS:
        raise ValueError(
            f"The energy axis has {n_window} channels in the white-line window "
            f"{lo:.2f}–{hi:.2f} eV; Fe L2,3 analysis needs at least "
            f"{MIN_WHITE_LINE_CHANNELS} (a dispersion of "
            f"{(hi - lo) / MIN_WHITE_LINE_CHANNELS:.2f} eV/channel or finer) to "
            "read the L3 multiplet. Record with a finer dispersion."
        )


def inspect_fe_l23(
    energy: np.ndarray,
    mean_spectrum: np.ndarray,
    *,
    uniform: bool = True,
    background_removed: bool | None = None,
    pre_edge: tuple[float, float] | None = None,
    warn: bool = True,
    short_pre_edge: bool = False,
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
    short_pre_edge
        Accept raw counts whose pre-edge is shorter than
        :data:`MIN_PRE_EDGE_WIDTH_EV` below the automatic window: the window then
        runs from the start of the axis to :data:`SHORT_PRE_EDGE_GAP_EV` below
        the L3 maximum — a power law where it spans at least
        :data:`MIN_PRE_EDGE_WIDTH_EV`, otherwise ``"fixed-exponent power law"``
        (at least :data:`MIN_PRE_EDGE_CHANNELS` channels). ``False`` raises, as
        methods that subtract the background for good do.

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
        # Anchored on the nominal L3 energy unless the measured L3 lies well
        # below it or the axis is clearly offset, so that every pixel gets the
        # same window whatever its neighbours' valence (the typical spectrum's
        # L3 moves with the mix of Fe2+ and Fe3+); then on the measured L3, in
        # whole eV, so that typical spectra sampled differently (lazy or eager
        # data) give the same window.
        anchor = L3_CALIBRATION_TARGET_EV
        low_l3 = nominal < L3_CALIBRATION_TARGET_EV - PRE_EDGE_ANCHOR_SLACK_EV
        if low_l3 or nominal - L3_CALIBRATION_TARGET_EV > L3_OFFSET_TOLERANCE_EV:
            anchor = float(math.floor(nominal))
        # The window follows an axis offset upwards too (the input contract
        # reads axes up to 10 eV off): capping it at the nominal range left an
        # axis 9 eV high, starting 9 eV below its L3 line, no pre-edge at all.
        pre_end = anchor - PRE_EDGE_GAP_EV
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
    guessed = False
    if background_removed is None:
        background_removed, guessed = _looks_background_removed(
            energy, mean_spectrum, nominal
        )
    background = "pre-edge mean" if background_removed else "power law"
    if not background_removed and pre_edge is None and short_pre_edge:
        window, background = _short_pre_edge_window(energy, window, nominal)
    # A power law (not the fixed-exponent fallback) needs room for its fit.
    if background == "power law":
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
        background=background,
        background_guessed=guessed,
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


def _short_pre_edge_window(
    energy: np.ndarray, window: tuple[float, float] | None, l3: float
) -> tuple[tuple[float, float] | None, str]:
    """The pre-edge window and background of raw counts, however short the
    pre-edge: the usual window when it spans :data:`MIN_PRE_EDGE_WIDTH_EV`, else
    from the axis start to the usual end or :data:`SHORT_PRE_EDGE_WIDTH_EV` past
    the start, whichever is later, but at most to :data:`SHORT_PRE_EDGE_GAP_EV`
    below the L3 maximum."""
    low = float(energy[0])
    if window is not None and window[1] - max(window[0], low) >= MIN_PRE_EDGE_WIDTH_EV:
        return window, "power law"
    usual_end = window[1] if window is not None else -math.inf
    end = min(l3 - SHORT_PRE_EDGE_GAP_EV, max(usual_end, low + SHORT_PRE_EDGE_WIDTH_EV))
    start = low
    n_channels = int(np.count_nonzero((energy >= start) & (energy <= end)))
    if n_channels < MIN_PRE_EDGE_CHANNELS:
        raise ValueError(
            f"These spectra still carry their background (pre-edge level well above "
            f"zero), but the energy axis starts at {low:.2f} eV, {l3 - low:.1f} eV "
            f"below the L3 maximum at {l3:.2f} eV: there is no pre-edge to estimate "
            f"the background from (at least {MIN_PRE_EDGE_CHANNELS} channels below "
            f"{end:.2f} eV are needed). Record from a few eV before the edge (e.g. "
            f"{l3 - 10:.0f} eV), or remove the background yourself and pass "
            "`background_removed=True`."
        )
    if end - start >= MIN_PRE_EDGE_WIDTH_EV:
        return (start, end), "power law"
    return (start, end), "fixed-exponent power law"


def check_contract_range(energy: np.ndarray, l3: float) -> tuple[float, float]:
    """Check that an axis reaches from below the L3 line to past the L2 line.

    Parameters
    ----------
    energy
        Energy axis, eV, increasing.
    l3
        Measured L3 maximum, eV (NaN: :data:`L3_CALIBRATION_TARGET_EV`).

    Returns
    -------
    tuple of float
        The range needed, eV (:data:`CONTRACT_SPAN_EV` about ``l3``).

    Raises
    ------
    ValueError
        Naming the range found, the range needed and the fix, when the axis
        stops short of it or samples it with fewer than
        :data:`MIN_WHITE_LINE_CHANNELS` channels.

    Examples
    --------
    >>> import numpy as np
    >>> check_contract_range(np.arange(706.0, 726.0, 0.1), 709.5)
    (707.0, 723.5)
    >>> check_contract_range(np.arange(706.0, 720.0, 0.1), 709.5)
    Traceback (most recent call last):
    ...
    ValueError: The energy axis covers 706.00–719.90 eV, ...
    """
    l3 = L3_CALIBRATION_TARGET_EV if not math.isfinite(l3) else float(l3)
    need = (l3 + CONTRACT_SPAN_EV[0], l3 + CONTRACT_SPAN_EV[1])
    low, high = float(energy[0]), float(energy[-1])
    if low > need[0] or high < need[1]:
        raise ValueError(
            f"The energy axis covers {low:.2f}–{high:.2f} eV, but with the L3 "
            f"maximum at {l3:.2f} eV the Fe L2,3 model needs at least "
            f"{need[0]:.2f}–{need[1]:.2f} eV (from 3 eV below the L3 maximum to 2 eV "
            "above the L2 maximum). Record or keep a range that includes both white "
            "lines; if the axis is offset, that is fine — the range moves with the "
            "edge."
        )
    _check_white_line_channels(energy, *need)
    return need


def _looks_background_removed(
    energy: np.ndarray, spectrum: np.ndarray, l3: float
) -> tuple[bool, bool]:
    """Whether the spectrum before the L3 line holds no background.

    Looks at the smoothed spectrum from the start of the axis to 1.5 eV below
    the L3 maximum (below the Fe3+ pre-peak) and its lowest level relative to
    the L3 maximum: below :data:`BACKGROUND_REMOVED_LEVEL`, removed. Above it,
    raw counts — unless the lowest level is the start of the axis and the
    spectrum rises from there, as the tails of the white lines do (up to
    :data:`TAIL_LEVEL`) or as the onset of an edge does, extrapolating to zero
    within :data:`ONSET_ZERO_DISTANCE_EV` below the start (a spectrum cropped
    close to its L3 line, background removed; a guess, as raw counts cut there
    look alike).

    Returns
    -------
    removed, guessed
        The decision, and whether it rests on the onset rule alone.
    """
    near_l3 = np.abs(energy - l3) <= 0.5
    peak = float(np.nanmax(spectrum[near_l3])) if np.any(near_l3) else np.nan
    if not math.isfinite(peak) or peak <= 0:
        return False, False
    step = (energy[-1] - energy[0]) / max(energy.size - 1, 1)
    width = max(int(round(BACKGROUND_LEVEL_SMOOTHING_EV / step)), 1)
    values = np.nan_to_num(spectrum[energy <= l3 - 1.5], nan=0.0)
    if values.size < width + 1:
        values = np.nan_to_num(spectrum[: width + 1], nan=0.0)
    smoothed = np.convolve(values, np.ones(width) / width, mode="valid")
    lowest = int(np.argmin(smoothed))
    level = float(smoothed[lowest]) / peak
    if level < BACKGROUND_REMOVED_LEVEL:
        return True, False
    if lowest * step > 0.5:
        return False, False  # a minimum after the start: a falling background
    reach = min(max(int(round(1.0 / step)), 1), smoothed.size - 1 - lowest)
    if reach < 1:
        return False, False
    slope = (smoothed[lowest + reach] - smoothed[lowest]) / (reach * step)
    if slope <= 0:
        return False, False
    if level < TAIL_LEVEL:
        return True, False
    onset = bool(smoothed[lowest] / slope < ONSET_ZERO_DISTANCE_EV)
    return onset, onset
