"""Signal classes registered with HyperSpy: :class:`FeL23Signal` and its lazy twin.

The classes are thin: they check the input, hand NumPy/Dask arrays and the energy
axis to :mod:`hyperspy_fe_ml.chunked` (which feeds the numba kernels block by block)
and wrap the results in new signals with calibrated axes. The input signal is never
modified; lazy input gives lazy output.
"""

import numpy as np
from exspy.signals import EELSSpectrum, LazyEELSSpectrum
from hyperspy.signal import BaseSignal

from hyperspy_fe_ml.chunked import map_spectra
from hyperspy_fe_ml.energy_axis import (
    L3_CALIBRATION_TARGET_EV,
    L3_PEAK_REACH_EV,
    L3_SEARCH_RANGE_EV,
    L3_SMOOTHING_EV,
    REQUIRED_RANGE_EV,
    FeL23AxisReport,
    check_energy_axis,
    inspect_fe_l23,
)
from hyperspy_fe_ml.kernels.preprocess import (
    NORMALISE_INTEGRAL,
    NORMALISE_MEAN,
    l3_peak_position,
    normalise_spectra,
    preprocess_spectra,
    resample_spectra,
    subtract_power_law_background,
    subtract_pre_edge_mean,
)
from hyperspy_fe_ml.signal_tools import (
    CANONICAL_ENERGY_EV,
    WHITE_LINE_WINDOW_EV,
    typical_spectrum,
)
from hyperspy_fe_ml.signal_tools import check_data as _check_data
from hyperspy_fe_ml.signal_tools import compute_array as _compute_array
from hyperspy_fe_ml.signal_tools import signal_energy as _energy


class FeL23Signal(EELSSpectrum):
    """Fe L2,3-edge EELS spectrum or spectrum image.

    Everything :class:`exspy.signals.EELSSpectrum` does, plus Fe L2,3 preprocessing
    that runs numba kernels over Dask chunks: :meth:`check_fe_l23`,
    :meth:`remove_fe_background`, :meth:`resample_energy`, :meth:`normalise_fe_l23`,
    :meth:`estimate_fe_l3_position`, :meth:`calibrate_fe_l3`, :meth:`align_fe_l3` and
    :meth:`preprocess_fe_l23`. Each returns a new signal.

    Examples
    --------
    >>> import hyperspy.api as hs, numpy as np
    >>> s = hs.signals.Signal1D(np.ones((2, 300)))
    >>> s.set_signal_type("FeL23")
    >>> type(s).__name__
    'FeL23Signal'
    """

    _signal_type = "FeL23_EELS"
    _alias_signal_types = ["FeL23", "Fe L23", "Fe_L23"]

    # -- checks --------------------------------------------------------------

    def check_fe_l23(
        self,
        *,
        required_range: tuple[float, float] | None = REQUIRED_RANGE_EV,
        background_removed: bool | None = None,
        pre_edge: tuple[float, float] | None = None,
        warn: bool = True,
    ) -> FeL23AxisReport:
        """Check the data and energy axis, and find the Fe L3 edge.

        Raises a clear error for data that cannot be Fe L2,3 spectra (complex,
        empty, axis not in eV, not covering ``required_range``, raw counts without
        a pre-edge region) and warns when the L3 maximum of the mean spectrum is
        more than 3 eV from where Fe L3 should be.

        Parameters
        ----------
        required_range
            Energies, eV, the axis must cover (default 704–727 eV); ``None`` to
            check units and order only.
        background_removed
            Whether the background has been removed; ``None`` decides from the
            pre-edge level of the mean spectrum.
        pre_edge
            Pre-edge window for the background fit, eV; ``None`` places it 5 eV
            below the measured L3 maximum.
        warn
            Warn about a suspect energy offset.

        Returns
        -------
        FeL23AxisReport

        Examples
        --------
        >>> from hyperspy_fe_ml.synthetic import synthetic_spectrum_image
        >>> s, _ = synthetic_spectrum_image((4, 4))
        >>> report = s.check_fe_l23()
        >>> report.background_removed, report.offset_suspect
        (False, False)
        """
        _check_data(self)
        axis = self.axes_manager.signal_axes[0]
        energy = check_energy_axis(axis, required_range)
        return inspect_fe_l23(
            energy,
            typical_spectrum(self),
            uniform=bool(axis.is_uniform),
            background_removed=background_removed,
            pre_edge=pre_edge,
            warn=warn,
        )

    # -- preprocessing ---------------------------------------------------------

    def remove_fe_background(
        self,
        pre_edge: tuple[float, float] | None = None,
        *,
        background_removed: bool | None = None,
        show_progressbar: bool | None = None,
    ) -> "FeL23Signal":
        """Subtract a power-law background fitted pixel by pixel.

        A log-log least-squares fit of ``A * E**-r`` over the pre-edge window
        (numba, over Dask chunks). Pixels whose pre-edge is not mostly positive —
        background already removed, or empty — fall back to subtracting their
        pre-edge mean; pixels with no finite pre-edge value become NaN.

        Parameters
        ----------
        pre_edge
            Fit window, eV; ``None`` ends it 5 eV below the nominal L3 energy
            (708.65 eV, or the measured L3 maximum of the typical spectrum when
            the axis is offset by more than 3 eV), up to 20 eV wide.
        background_removed
            ``True`` to treat the spectra as background-removed (only the pre-edge
            mean is subtracted); ``None`` decides from the data.
        show_progressbar
            Progress bar for eager signals; ``None`` uses HyperSpy's preference.

        Returns
        -------
        FeL23Signal
            A new signal, lazy if this one is.

        Examples
        --------
        >>> from hyperspy_fe_ml.synthetic import synthetic_spectrum_image
        >>> s, truth = synthetic_spectrum_image((4, 4), background_counts=0.0)
        >>> edge = s.remove_fe_background(background_removed=True)
        >>> float(abs(edge.data[..., :100].mean())) < 1.0
        True
        """
        power_law, window, report = self._background_plan(pre_edge, background_removed)
        kernel = subtract_power_law_background if power_law else subtract_pre_edge_mean
        data = map_spectra(kernel, self.data, _energy(self), window[0], window[1])
        out = self._result_spectra(data, show_progressbar)
        _record(out, "background", {"pre_edge_eV": list(window), **_report(report)})
        return out

    def resample_energy(
        self,
        energy: np.ndarray | None = None,
        *,
        show_progressbar: bool | None = None,
    ) -> "FeL23Signal":
        """Resample onto an energy grid, conserving intensity (numba, Dask chunks).

        Works from uniform and non-uniform axes; each new channel is the mean of
        the piecewise-linear spectrum over its bin. Channels outside the input
        axis are NaN.

        Parameters
        ----------
        energy
            Uniform output grid, eV; default
            :data:`~hyperspy_fe_ml.signal_tools.CANONICAL_ENERGY_EV` (700–729.9 eV,
            0.1 eV).
        show_progressbar
            Progress bar for eager signals; ``None`` uses HyperSpy's preference.

        Returns
        -------
        FeL23Signal
            A new signal with a uniform energy axis, lazy if this one is.

        Examples
        --------
        >>> from hyperspy_fe_ml.synthetic import synthetic_spectrum_image
        >>> s, _ = synthetic_spectrum_image((2, 3))
        >>> r = s.resample_energy()
        >>> r.axes_manager.signal_axes[0].size
        300
        """
        _check_data(self)
        grid = _uniform_grid(CANONICAL_ENERGY_EV if energy is None else energy)
        source = self.axes_manager.signal_axes[0]
        check_energy_axis(source, (float(grid[0]), float(grid[-1])))
        data = map_spectra(
            resample_spectra, self.data, _energy(self), grid, out_channels=grid.size
        )
        out = self._result_spectra(data, show_progressbar, energy=grid)
        _record(out, "resample", {"grid_eV": [grid[0], grid[-1], grid.size]})
        return out

    def normalise_fe_l23(
        self,
        method: str = "integral",
        window: tuple[float, float] | None = None,
        *,
        show_progressbar: bool | None = None,
    ) -> "FeL23Signal":
        """Normalise each spectrum (numba, Dask chunks).

        Parameters
        ----------
        method
            ``"integral"``: divide by the L3 + L2 white-line integral (default
            window 704–727 eV), robust on cropped spectra. ``"edge_step"``: divide
            by the mean over a post-edge window (default 735–745 eV), the
            classical edge-step normalisation; needs the axis to reach past L2.
        window
            Window in eV; ``None`` for the method's default.
        show_progressbar
            Progress bar for eager signals; ``None`` uses HyperSpy's preference.

        Returns
        -------
        FeL23Signal
            A new signal, lazy if this one is; pixels whose norm is not positive
            are NaN.

        Examples
        --------
        >>> import hyperspy.api as hs, numpy as np
        >>> s = hs.signals.Signal1D(np.full((2, 300), 5.0))
        >>> s.set_signal_type("FeL23")
        >>> ax = s.axes_manager.signal_axes[0]
        >>> ax.units, ax.offset, ax.scale = "eV", 700.0, 0.1
        >>> round(float(s.normalise_fe_l23().data[0, 0]), 4)
        0.0435
        """
        _check_data(self)
        energy = check_energy_axis(self.axes_manager.signal_axes[0], None)
        mode, window = _normalisation_plan(method, window, energy)
        data = map_spectra(
            normalise_spectra, self.data, energy, window[0], window[1], mode
        )
        out = self._result_spectra(data, show_progressbar)
        _record(out, "normalisation", {"method": method, "window_eV": window})
        return out

    def preprocess_fe_l23(
        self,
        energy: np.ndarray | None = None,
        *,
        background_removed: bool | None = None,
        pre_edge: tuple[float, float] | None = None,
        normalise: str = "integral",
        show_progressbar: bool | None = None,
    ) -> "FeL23Signal":
        """Background removal, resampling and normalisation in one pass.

        The chain the model is trained for — :meth:`remove_fe_background`, then
        :meth:`resample_energy` onto ``energy``, then :meth:`normalise_fe_l23` on
        the new grid — fused into one kernel per Dask block. Lazy signals stay lazy
        (nothing is computed until you ask).

        Parameters
        ----------
        energy
            Uniform output grid, eV; default
            :data:`~hyperspy_fe_ml.signal_tools.CANONICAL_ENERGY_EV`.
        background_removed, pre_edge
            As for :meth:`remove_fe_background`.
        normalise
            ``"integral"`` or ``"edge_step"``, as for :meth:`normalise_fe_l23`
            (the edge step needs a grid reaching 745 eV).
        show_progressbar
            Progress bar for eager signals; ``None`` uses HyperSpy's preference.

        Returns
        -------
        FeL23Signal

        Examples
        --------
        >>> from hyperspy_fe_ml.synthetic import synthetic_spectrum_image
        >>> s, _ = synthetic_spectrum_image((3, 3))
        >>> p = s.preprocess_fe_l23()
        >>> p.axes_manager.signal_axes[0].size
        300
        >>> p.metadata.FeL23.normalisation["method"]
        'integral'
        """
        power_law, window, report = self._background_plan(pre_edge, background_removed)
        grid = _uniform_grid(CANONICAL_ENERGY_EV if energy is None else energy)
        check_energy_axis(
            self.axes_manager.signal_axes[0], (float(grid[0]), float(grid[-1]))
        )
        mode, norm_window = _normalisation_plan(normalise, None, grid)
        data = map_spectra(
            preprocess_spectra,
            self.data,
            _energy(self),
            window[0],
            window[1],
            power_law,
            grid,
            norm_window[0],
            norm_window[1],
            mode,
            out_channels=grid.size,
        )
        out = self._result_spectra(data, show_progressbar, energy=grid)
        _record(out, "background", {"pre_edge_eV": list(window), **_report(report)})
        _record(out, "resample", {"grid_eV": [grid[0], grid[-1], grid.size]})
        _record(out, "normalisation", {"method": normalise, "window_eV": norm_window})
        return out

    # -- prediction ------------------------------------------------------------

    def predict_fe_state(
        self,
        model=None,
        *,
        background_removed: bool | None = None,
        pre_edge: tuple[float, float] | None = None,
        saturation: float | None = None,
        energy_calibrated: bool = False,
        measured: bool = True,
        show_progressbar: bool | None = None,
        lazy_output: bool | None = None,
    ):
        """Per-pixel Fe valence, Fe3+ fraction, coordination and their uncertainty.

        Every spectrum goes through the preprocessing the model was trained for —
        power-law background (or, for spectra whose background is already
        removed, the pre-edge mean), resampling onto the model's window, division
        by the white-line integral, alignment of the L3 centroid — and the
        model's ensemble, block by block over Dask chunks of the navigation
        space, with one fused numba kernel and batched matrix products per block.

        What it reads: any spectrum whose axis runs from 3 eV below its L3
        maximum to 2 eV above its L2 maximum, wherever the edge sits within ±10
        eV of its nominal place — raw counts or background-removed, full range or
        cropped to the white lines:

        - a window the axis does not fill is held at its end values, as the
          model was trained to read cropped spectra (flag ``partial window``);
        - raw counts with a pre-edge shorter than 3 eV below the automatic
          window get a power law on what there is, or one of fixed exponent
          (flag ``background fallback``); with no pre-edge at all, an error;
        - an axis offset by more than 3 eV is read where its edge is, with a
          warning naming the offset; ``maps["l3_centroid"]`` keeps the measured
          L3 positions.

        A shorter axis gets a ``ValueError`` naming the range found and the
        range needed.

        Parameters
        ----------
        model
            ``None`` for the shipped default model, an
            :class:`~hyperspy_fe_ml.model.FeStateModel`, or the path of a model's
            ``.json`` file.
        background_removed
            Whether the spectra are already background-subtracted; ``None`` decides
            from the pre-edge level of the typical (median) spectrum.
        pre_edge
            Pre-edge window for the background, eV; ``None`` ends it 5 eV below
            the nominal L3 energy (as for :meth:`remove_fe_background`).
        saturation
            Counts at or above which a channel is saturated; ``None`` takes the
            largest value of an integer dtype (no limit for floats). Flat-topped
            peaks are flagged as saturated either way.
        energy_calibrated
            Declare the energy axis calibrated. The shipped model reads the shape
            of the spectrum only (aligned on its own L3 line), so its maps do not
            depend on the absolute energy either way; a model trained with the
            absolute L3 energy as an input (``FitSettings(absolute_energy=True)``)
            is refused unless the axis is declared calibrated.
        measured
            Whether the spectra are measured (the default). The model's standard
            deviations are calibrated on simulated spectra; for measured ones each
            gets, in quadrature, the model's simulation-to-experiment term
            (``model.measured_std``, calibrated on labelled measured standards by
            ``fe-ml calibrate-uncertainty``; the shipped model's is in
            ``docs/model_card.md``). ``False`` leaves it out, for spectra
            simulated from the model's own library such as the demo's.
        show_progressbar
            Progress bar while computing; ``None`` uses HyperSpy's preference.
        lazy_output
            Return lazy maps (compute later, e.g. with ``maps.compute()``);
            ``None`` follows the signal (lazy in, lazy out).

        Returns
        -------
        FeStateMaps
            Maps over the navigation space, axes calibrated as the signal's:
            ``valence``, ``fe3_fraction``, ``td_fraction``,
            ``coordination_number``, each with ``<name>_std`` (one calibrated
            standard deviation), ``ood_score`` (flagged above the model's
            threshold), the scores of the library reconstruction
            (``reconstruction_misfit``, ``reconstruction_snr``, ``spike_score``;
            :mod:`hyperspy_fe_ml.ood`), ``metallic_fraction`` (Fe0/ΣFe) and
            ``unlisted_fraction`` (low-spin or Fe4+;
            :mod:`hyperspy_fe_ml.state_detector`), ``l3_centroid`` (eV),
            ``edge_snr`` and ``flags`` (bits, see
            :data:`~hyperspy_fe_ml.kernels.model_inputs.FLAG_NAMES`; every
            out-of-distribution test that failed has its own bit). Pixels
            that cannot be read (NaN, empty, negative, saturated, no edge) are NaN
            with their reason in ``flags``; the map goes on. Provenance is in each
            map's ``metadata.FeL23.provenance``.

        Raises
        ------
        ValueError, TypeError
            Before any heavy work, for data or axes the model cannot read, naming
            the problem and the fix.

        Examples
        --------
        >>> from hyperspy_fe_ml.synthetic import synthetic_spectrum_image
        >>> s, truth = synthetic_spectrum_image((4, 5))
        >>> maps = s.predict_fe_state()
        >>> maps["valence"].data.shape
        (4, 5)
        >>> maps["valence"].axes_manager.signal_axes[0].units
        'nm'
        """
        from hyperspy_fe_ml.predict import predict_fe_state

        return predict_fe_state(
            self,
            model,
            background_removed=background_removed,
            pre_edge=pre_edge,
            saturation=saturation,
            energy_calibrated=energy_calibrated,
            measured=measured,
            show_progressbar=show_progressbar,
            lazy_output=lazy_output,
        )

    # -- classical cross-checks -----------------------------------------------------

    def estimate_fe3_fraction_white_line(
        self,
        *,
        background_removed: bool | None = None,
        pre_edge: tuple[float, float] | None = None,
        show_progressbar: bool | None = None,
        lazy_output: bool | None = None,
    ):
        """Per-pixel Fe3+/ΣFe by van Aken & Liebscher's modified L3/L2 ratio.

        The classical method (Phys. Chem. Minerals 29 (2002) 188), pixel by pixel
        over Dask chunks: power-law background (or, for spectra whose background
        is already removed, the pre-edge mean), a 2:1 double arctan step with
        inflections at 708.65 and 721.65 eV scaled to the post-edge, integrals
        over 708.5–710.5 eV (L3) and 719.7–721.7 eV (L2), and their ratio read off
        the universal curve (:mod:`hyperspy_fe_ml.whiteline`). The windows are
        fixed in eV: calibrate the energy axis first (:meth:`calibrate_fe_l3`).

        Parameters
        ----------
        background_removed, pre_edge
            As for :meth:`remove_fe_background`.
        show_progressbar
            Progress bar while computing; ``None`` uses HyperSpy's preference.
        lazy_output
            Lazy maps; ``None`` follows the signal (lazy in, lazy out).

        Returns
        -------
        FeStateMaps
            ``fe3_fraction`` (clipped to the curve's range, 0–1), ``valence``
            (2 + Fe3+ fraction), ``white_line_ratio`` and ``flags``: bits of
            :data:`~hyperspy_fe_ml.classical.WHITE_LINE_FLAG_NAMES` marking ratios
            below or above the universal curve (whose Fe3+ fraction was clipped to
            0 or 1: a warning says how many) and pixels without a positive L2
            integral (NaN). Settings in ``metadata.FeL23.provenance``.

        Examples
        --------
        >>> from hyperspy_fe_ml.synthetic import synthetic_spectrum_image
        >>> s, truth = synthetic_spectrum_image((2, 5), edge_counts=1e5)
        >>> maps = s.estimate_fe3_fraction_white_line()
        >>> sorted(maps)
        ['fe3_fraction', 'flags', 'valence', 'white_line_ratio']
        >>> maps["fe3_fraction"].data.shape
        (2, 5)
        """
        from hyperspy_fe_ml.classical import estimate_fe3_fraction_white_line

        return estimate_fe3_fraction_white_line(
            self,
            background_removed=background_removed,
            pre_edge=pre_edge,
            show_progressbar=show_progressbar,
            lazy_output=lazy_output,
        )

    def fit_fe_references(
        self,
        references: dict,
        *,
        valences: dict[str, float] | None = None,
        fit_range: tuple[float, float] | None = None,
        linear_background: bool = True,
        nonnegative: bool = True,
        background_removed: bool | None = None,
        pre_edge: tuple[float, float] | None = None,
        show_progressbar: bool | None = None,
        lazy_output: bool | None = None,
    ):
        """Per-pixel weights of standard spectra: a linear least-squares (MLLS) fit.

        After the background is removed as in :meth:`remove_fe_background`, each
        spectrum is fitted over ``fit_range`` with a linear combination of the
        references, with HyperSpy's linear fitting (one ``ScalableFixedPattern``
        per reference, ``multifit(optimizer="lstsq")``) block by block over Dask
        chunks. The references should be background-removed like the data; with
        references normalised to the same amount of Fe (e.g. to the edge step),
        the fractions are per Fe atom.

        Parameters
        ----------
        references
            Name → reference spectrum: a ``Signal1D`` (axis in eV), a
            :class:`~hyperspy_fe_ml.library.LabelledSpectrum` or an
            ``(energy, intensity)`` pair; each must cover ``fit_range``.
        valences
            Name → Fe valence (2–3) of each reference; ``None`` takes the labels of
            LabelledSpectrum references (or ``metadata.Sample.fe_valence``). With a
            valence for every reference, ``valence`` and ``fe3_fraction`` maps are
            added.
        fit_range
            Energy range of the fit, eV; default 704–727 eV (the white lines).
        linear_background
            Fit an offset and a slope with the references, to absorb what the
            background subtraction left (a power law fitted below the edge also
            takes in the white lines' tails); without them the fractions can be
            biased by a few per cent.
        nonnegative
            Hold the reference weights at or above zero (a negative amount of a
            standard is not physical, and would give fractions outside 0–1 and an
            Fe3+ fraction outside 0–1). Pixels whose unbounded fit had a negative
            weight are refitted with bounds and flagged; ``False`` gives
            HyperSpy's unbounded fit.
        background_removed, pre_edge
            As for :meth:`remove_fe_background`.
        show_progressbar
            Progress bar while computing; ``None`` uses HyperSpy's preference.
        lazy_output
            Lazy maps; ``None`` follows the signal (lazy in, lazy out).

        Returns
        -------
        FeStateMaps
            ``fraction_<name>`` (weights normalised to sum 1), ``weight_<name>``
            (raw weights), ``valence`` and ``fe3_fraction`` when the valences are
            known, ``residual`` (RMS residual / RMS data) and ``flags``: bits of
            :data:`~hyperspy_fe_ml.classical.REFERENCE_FLAG_NAMES` marking pixels
            fitted with a weight held at zero (a warning says how many) and
            pixels without a fit (NaN).

        Raises
        ------
        ValueError, TypeError
            Before any heavy work: references of the wrong type, not covering the
            fit range, with NaN, or linearly dependent; a bad fit range.

        Examples
        --------
        >>> import numpy as np
        >>> from hyperspy_fe_ml.library import reference_spectrum
        >>> from hyperspy_fe_ml.synthetic import synthetic_spectrum_image
        >>> e = np.arange(700.0, 735.0, 0.1)
        >>> refs = {"Fe2": (e, reference_spectrum(2, "Oh", e)),
        ...         "Fe3": (e, reference_spectrum(3, "Oh", e))}
        >>> s, _ = synthetic_spectrum_image((2, 3))
        >>> maps = s.fit_fe_references(refs, valences={"Fe2": 2, "Fe3": 3})
        >>> sorted(maps)[:4]
        ['fe3_fraction', 'flags', 'fraction_Fe2', 'fraction_Fe3']
        """
        from hyperspy_fe_ml.classical import fit_fe_references

        return fit_fe_references(
            self,
            references,
            valences=valences,
            fit_range=fit_range,
            linear_background=linear_background,
            nonnegative=nonnegative,
            background_removed=background_removed,
            pre_edge=pre_edge,
            show_progressbar=show_progressbar,
            lazy_output=lazy_output,
        )

    # -- the Fe L3 edge -----------------------------------------------------------

    def estimate_fe_l3_position(
        self,
        *,
        search_range: tuple[float, float] | None = None,
        smoothing: float = L3_SMOOTHING_EV,
        show_progressbar: bool | None = None,
    ) -> BaseSignal:
        """Map of the Fe L3 white-line maximum, eV, pixel by pixel.

        The steepest rise within ``search_range`` marks the L3 onset; the maximum
        of the smoothed spectrum within 4 eV above it, refined by a parabola, is
        the L3 position. Works on raw counts and on background-removed spectra.

        Parameters
        ----------
        search_range
            Where to look for the L3 onset, eV; default 690–722 eV clipped to the
            axis.
        smoothing
            Gaussian smoothing, eV, before the search (noise robustness).
        show_progressbar
            Progress bar for eager signals; ``None`` uses HyperSpy's preference.

        Returns
        -------
        BaseSignal
            Navigation-shaped map in eV (NaN where no edge was found), lazy if this
            signal is.

        Examples
        --------
        >>> from hyperspy_fe_ml.synthetic import synthetic_spectrum_image
        >>> s, _ = synthetic_spectrum_image((2, 5), edge_counts=1e5)
        >>> l3 = s.estimate_fe_l3_position()
        >>> [round(float(v), 1) for v in l3.data[0, [0, -1]]]  # Fe2+ and Fe3+ ends
        [707.9, 709.5]
        """
        _check_data(self)
        energy = check_energy_axis(self.axes_manager.signal_axes[0])
        if search_range is None:
            lo = max(float(energy[0]), L3_SEARCH_RANGE_EV[0])
            hi = min(float(energy[-1]) - 2.0, L3_SEARCH_RANGE_EV[1])
        else:
            lo, hi = (float(v) for v in search_range)
        data = map_spectra(
            l3_peak_position,
            self.data,
            energy,
            lo,
            hi,
            float(smoothing),
            L3_PEAK_REACH_EV,
            out_channels=None,
        )
        if not self._lazy:
            data = _compute_array(data, show_progressbar)
        if self.axes_manager.navigation_dimension == 0:
            data = data.reshape(1)
        out = self._get_navigation_signal(data=data)
        out.metadata.General.title = f"Fe L3 position of {self.metadata.General.title}"
        out.metadata.set_item("Signal.quantity", "Fe L3 maximum (eV)")
        return out

    def calibrate_fe_l3(
        self, l3_energy: float = L3_CALIBRATION_TARGET_EV
    ) -> "FeL23Signal":
        """Shift the energy axis to put the Fe L3 maximum at ``l3_energy``.

        A global offset correction (data untouched, axis shifted). The L3 maximum
        depends on valence (Fe2+ ≈ 707.8 eV, Fe3+ ≈ 709.5 eV), so the default
        target is half-way (708.65 eV); pass the known value when a region of known
        valence sets the scale.

        Parameters
        ----------
        l3_energy
            Where the L3 maximum should be, eV.

        Returns
        -------
        FeL23Signal
            A copy with a shifted axis; the applied shift is in
            ``metadata.FeL23.calibration``.

        Examples
        --------
        >>> import warnings
        >>> from hyperspy_fe_ml.synthetic import synthetic_spectrum_image
        >>> s, _ = synthetic_spectrum_image((2, 2), edge_counts=1e5)
        >>> s.axes_manager.signal_axes[0].offset += 6.0
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     c = s.calibrate_fe_l3(l3_energy=707.8)
        >>> round(c.check_fe_l23().l3_position, 2)
        707.8
        """
        # An offset axis may miss the nominal range: only units and order matter.
        report = self.check_fe_l23(warn=False, required_range=None)
        if not np.isfinite(report.l3_position):
            raise ValueError(
                "No Fe L3 edge found in the typical spectrum, so there is nothing to "
                "calibrate on. Calibrate on a region that holds iron, e.g. "
                "`s.inav[x0:x1, y0:y1].check_fe_l23().l3_position`, then shift the "
                "axis offset by hand."
            )
        shift = float(l3_energy) - report.l3_position
        out = self._independent_copy()
        axis = out.axes_manager.signal_axes[0]
        if axis.is_uniform:
            axis.offset = axis.offset + shift
        else:
            axis.axis = axis.axis + shift
        _record(
            out,
            "calibration",
            {"shift_eV": shift, "l3_measured_eV": report.l3_position},
        )
        return out

    def align_fe_l3(
        self,
        *,
        reference: float | None = None,
        smoothing: float = L3_SMOOTHING_EV,
        show_progressbar: bool | None = None,
    ) -> "FeL23Signal":
        """Correct energy drift by aligning each pixel's Fe L3 maximum.

        Each spectrum is shifted (HyperSpy's ``shift1D``, linear interpolation,
        axis cropped to the range valid in every pixel) so that its L3 maximum
        lands on ``reference``.

        .. warning:: The L3 maximum moves with valence (Fe3+ sits ~1.7 eV above
           Fe2+), so this also removes genuine chemical shifts. Use it on areas of
           uniform valence or when drift dominates; with dual EELS, prefer
           aligning on the zero-loss peak (``align_zero_loss_peak``).

        Parameters
        ----------
        reference
            Target energy, eV; ``None`` uses the median L3 position of all pixels
            (a pure drift correction that keeps the mean calibration).
        smoothing
            Gaussian smoothing, eV, of the L3 search.
        show_progressbar
            Progress bar; ``None`` uses HyperSpy's preference.

        Returns
        -------
        FeL23Signal
            A new, drift-corrected signal; the applied shifts are in
            ``metadata.FeL23.alignment``.

        Examples
        --------
        >>> from hyperspy_fe_ml.synthetic import synthetic_spectrum_image
        >>> s, truth = synthetic_spectrum_image((6, 1), drift=2.0, edge_counts=1e5)
        >>> a = s.align_fe_l3(show_progressbar=False)
        >>> l3 = a.estimate_fe_l3_position().data
        >>> float(l3.max() - l3.min()) < 0.1
        True
        """
        positions = self.estimate_fe_l3_position(
            smoothing=smoothing, show_progressbar=show_progressbar
        )
        values = np.asarray(positions.data)
        if self._lazy:
            values = _compute_array(positions.data, show_progressbar)
        if not np.any(np.isfinite(values)):
            raise ValueError(
                "No Fe L3 edge was found in any pixel, so there is nothing to align "
                "on. Check the energy range and the signal."
            )
        target = float(np.nanmedian(values)) if reference is None else reference
        shifts = np.where(np.isfinite(values), target - values, 0.0)
        out = self._independent_copy()
        if self.axes_manager.navigation_dimension == 0:
            out.shift1D(float(shifts.reshape(-1)[0]), crop=True)
        else:
            shift_signal = self._get_navigation_signal(data=shifts).T
            out.shift1D(shift_signal, crop=True, show_progressbar=show_progressbar)
        _record(
            out,
            "alignment",
            {
                "reference_eV": target,
                "max_abs_shift_eV": float(np.max(np.abs(shifts))),
                "pixels_without_edge": int(np.sum(~np.isfinite(values))),
            },
        )
        return out

    # -- helpers -----------------------------------------------------------------

    def _background_plan(
        self,
        pre_edge: tuple[float, float] | None,
        background_removed: bool | None,
    ) -> tuple[bool, tuple[float, float], FeL23AxisReport]:
        """Check the signal; choose power law or pre-edge mean, and the window."""
        report = self.check_fe_l23(
            background_removed=background_removed, pre_edge=pre_edge, warn=False
        )
        window = report.pre_edge
        if window is None:
            # Background removed and no pre-edge at all: nothing to subtract.
            low = report.low
            window = (low - 1.0, low - 0.5)
        return not report.background_removed, window, report

    def _independent_copy(self) -> "FeL23Signal":
        """A copy safe to change in place (a lazy graph is immutable, no copy)."""
        if self._lazy:
            return self._deepcopy_with_new_data(self.data, copy_variance=True)
        return self.deepcopy()

    def _result_spectra(
        self, data, show_progressbar: bool | None, energy: np.ndarray | None = None
    ) -> "FeL23Signal":
        """Wrap a Dask result in a new signal of this class (eager if self is)."""
        if not self._lazy:
            data = _compute_array(data, show_progressbar)
        if energy is None:
            return self._deepcopy_with_new_data(data)
        axes = self.axes_manager._get_axes_dicts()
        old = self.axes_manager.signal_axes[0]
        axes[-1] = {
            "name": old.name,
            "units": "eV",
            "navigate": False,
            "size": int(energy.size),
            "offset": float(energy[0]),
            "scale": float(energy[1] - energy[0]),
        }
        return type(self)(
            data,
            axes=axes,
            metadata=self.metadata.as_dictionary(),
            original_metadata=self.original_metadata.as_dictionary(),
        )


class LazyFeL23Signal(FeL23Signal, LazyEELSSpectrum):
    """Lazy (Dask-backed) :class:`FeL23Signal`: every method returns lazy results."""


# -- module helpers -----------------------------------------------------------------


def _normalisation_plan(
    method: str, window: tuple[float, float] | None, energy: np.ndarray
) -> tuple[int, list[float]]:
    """Kernel mode and window of a normalisation method, checked against ``energy``."""
    modes = {"integral": NORMALISE_INTEGRAL, "edge_step": NORMALISE_MEAN}
    if method not in modes:
        raise ValueError(
            f"Unknown normalisation method {method!r}; use 'integral' "
            "(white-line integral) or 'edge_step' (post-edge mean)."
        )
    if window is None:
        window = WHITE_LINE_WINDOW_EV if method == "integral" else (735.0, 745.0)
    lo, hi = float(window[0]), float(window[1])
    if not (lo < hi and energy[0] <= lo and hi <= energy[-1]):
        raise ValueError(
            f"The {method} normalisation window {lo:g}–{hi:g} eV is not inside the "
            f"energy axis ({energy[0]:.2f}–{energy[-1]:.2f} eV). Pass a `window` "
            "inside it, or use method='integral' for spectra cropped after L2."
        )
    return modes[method], [lo, hi]


def _uniform_grid(energy: np.ndarray) -> np.ndarray:
    grid = np.asarray(energy, dtype=np.float64)
    steps = np.diff(grid)
    if grid.ndim != 1 or grid.size < 2 or not np.all(steps > 0):
        raise ValueError(
            "The output energy grid must be a 1-D, increasing array of at least two "
            "energies in eV, e.g. np.arange(700.0, 730.0, 0.1)."
        )
    if not np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9):
        raise ValueError(
            "The output energy grid must be uniform (equal steps); use e.g. "
            "np.arange(700.0, 730.0, 0.1)."
        )
    return grid


def _report(report: FeL23AxisReport) -> dict:
    return {
        "background_removed": report.background_removed,
        "l3_position_eV": report.l3_position,
    }


def _record(signal: BaseSignal, step: str, settings: dict) -> None:
    """Keep what was done in ``metadata.FeL23`` (survives copies, slicing, saving)."""
    signal.metadata.set_item(f"FeL23.{step}", settings)
