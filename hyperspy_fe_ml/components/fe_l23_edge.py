"""The Fe L2,3 edge component: a mixture of the calibrated multiplet references."""

from __future__ import annotations

import numpy as np
from hyperspy.component import Component

from hyperspy_fe_ml.components.basis import MAX_BROADENING_EV, fe_l23_basis
from hyperspy_fe_ml.library.calibration import DEFAULT_BROADENING

__all__ = ["FeL23Edge"]


class FeL23Edge(Component):
    r"""Fe L2,3 edge as a mixture of calibrated multiplet reference spectra.

    .. math::

        f(E) = I \sum_j w_j \left[W_j(E - \Delta) + c\,C_j(E - \Delta)\right]
        \otimes G_\sigma

    over the four sites Fe2+/Fe3+ × octahedral/tetrahedral of the shipped library
    (default crystal fields, calibrated energies; white lines :math:`W_j` with area
    equal to the number of 3d holes, continuum steps :math:`C_j`), with weights
    :math:`w = ((1-x)(1-t), x(1-t), (1-x)t, xt)` per Fe atom.

    ============== ==================================================================
    Parameter      Meaning
    ============== ==================================================================
    intensity      :math:`I`, amount of Fe (library units; linear)
    fe3_fraction   :math:`x`, Fe3+/ΣFe, 0–1
    td_fraction    :math:`t`, fraction of Fe on tetrahedral sites, 0–1
    shift          :math:`\Delta`, energy shift of the calibrated spectra, eV
    broadening     Gaussian FWHM (instrument resolution), eV, 0–3
    continuum      :math:`c`, continuum step height relative to the library's
    ============== ==================================================================

    Construct it with no arguments and append it to a model of a
    background-subtracted Fe L2,3 spectrum (or add a power law for raw counts);
    the starting intensity of every pixel is then estimated from the data
    (:meth:`estimate_parameters`), the fractions start at 0.5. Fractions and
    broadening carry bounds; fit with ``bounded=True`` to keep them there (the
    default unbounded fit extrapolates the mixture linearly, which is smooth and
    unbiased, so values slightly outside 0–1 mean "at the edge, within noise").
    For a separate continuum component (:class:`FeL23ContinuumStep`), fix
    ``continuum`` at 0.

    Notes
    -----
    * The site weights assume that the tetrahedral share is the same for both
      valences. A mixture in which it is not — magnetite, whose Td sites hold only
      Fe3+ — is fitted with the nearest such mixture: the Fe3+ fraction stays
      close, the tetrahedral fraction less so (``docs/cross_check.md``).
    * Energy shift and Fe3+ fraction both move the L3 maximum. With the shift
      free, keep the energy axis within about ±0.5 eV of the library's calibration
      (``s.calibrate_fe_l3``, or fit the sum spectrum first and fix ``shift``);
      a start 1 eV off can end in the wrong minimum.
    * The tabulated spectra (:func:`fe_l23_basis`) make one evaluation an
      interpolation; analytic gradients are given (``fit(grad="analytical")``).

    Parameters
    ----------
    intensity
        Starting intensity; ``None`` estimates it from the data when the
        component is appended to a model.
    fe3_fraction, td_fraction, shift, broadening, continuum
        Starting values of the parameters.
    fwhm_l3, fwhm_l2
        Lorentzian core-hole widths of the reference spectra, FWHM eV; ``None``
        for the library's calibrated defaults. Saved with the model.

    Examples
    --------
    >>> import numpy as np, hyperspy.api as hs
    >>> from hyperspy_fe_ml.library import reference_spectrum
    >>> e = np.arange(700.0, 735.0, 0.1)
    >>> y = 0.3 * reference_spectrum(3, "Oh", e) + 0.7 * reference_spectrum(2, "Oh", e)
    >>> counts = np.random.default_rng(0).poisson(1e4 * y)
    >>> s = hs.signals.Signal1D(counts.astype(float))
    >>> ax = s.axes_manager[-1]
    >>> ax.offset, ax.scale, ax.units = 700.0, 0.1, "eV"
    >>> m = s.create_model()
    >>> edge = FeL23Edge()  # starting intensity estimated when appended
    >>> m.append(edge)
    >>> m.fit(return_info=False)
    >>> round(edge.fe3_fraction.value, 2), abs(round(edge.td_fraction.value, 2))
    (0.3, 0.0)
    """

    _parameter_names = (
        "intensity",
        "fe3_fraction",
        "td_fraction",
        "shift",
        "broadening",
        "continuum",
    )

    def __init__(
        self,
        intensity: float | None = None,
        fe3_fraction: float = 0.5,
        td_fraction: float = 0.5,
        shift: float = 0.0,
        broadening: float = DEFAULT_BROADENING["resolution"],
        continuum: float = 1.0,
        fwhm_l3: float | None = None,
        fwhm_l2: float | None = None,
    ) -> None:
        super().__init__(list(self._parameter_names), ["intensity"])
        self._basis = fe_l23_basis(fwhm_l3, fwhm_l2)
        self._whitelist["fwhm_l3"] = ("init", fwhm_l3)
        self._whitelist["fwhm_l2"] = ("init", fwhm_l2)
        self.fwhm_l3, self.fwhm_l2 = fwhm_l3, fwhm_l2
        # None: estimated from the data when the component joins a model.
        self._estimate_on_append = intensity is None
        intensity = 1.0 if intensity is None else intensity
        starts = (intensity, fe3_fraction, td_fraction, shift, broadening, continuum)
        bounds = (
            (0.0, None),
            (0.0, 1.0),
            (0.0, 1.0),
            (-5.0, 5.0),
            (0.0, MAX_BROADENING_EV),
            (0.0, None),
        )
        units = (None, None, None, "eV", "eV", None)
        for name, start, (bmin, bmax), unit in zip(
            self._parameter_names, starts, bounds, units, strict=True
        ):
            parameter = getattr(self, name)
            parameter.value = float(start)
            parameter.bmin, parameter.bmax = bmin, bmax
            if unit:
                parameter.units = unit
        self.isbackground = False
        self.convolved = True
        self._cache: tuple | None = None

    # -- starting values ------------------------------------------------------------

    @property
    def model(self):
        """The model holding the component (``None`` until appended).

        Appending a component built without an ``intensity`` estimates the
        starting intensity of every pixel from the data
        (:meth:`estimate_parameters`): the fractions, shift and broadening enter
        the spectrum through the intensity, so a least-squares fit started
        orders of magnitude off the data's scale can run away.
        """
        return self._model

    @model.setter
    def model(self, value) -> None:
        self._model = value
        if value is not None and getattr(self, "_estimate_on_append", False):
            self._estimate_on_append = False
            self.estimate_parameters(value.signal)

    def estimate_parameters(
        self,
        signal,
        x1: float | None = None,
        x2: float | None = None,
        only_current: bool = False,
    ) -> bool:
        """Estimate the intensity: least-squares scale of the current shape.

        The component at its current fractions, shift, broadening and continuum is
        scaled to the data between ``x1`` and ``x2`` (default: the whole axis),
        pixel by pixel; pixels without a finite estimate keep the current value.

        Parameters
        ----------
        signal
            The :class:`~hyperspy.signal.BaseSignal` to estimate from
            (background-subtracted, for a fair scale).
        x1, x2
            Energy range, eV; ``None`` for the ends of the axis.
        only_current
            Estimate for the current pixel only, not the whole map.

        Returns
        -------
        bool
            True.

        Examples
        --------
        >>> import numpy as np, hyperspy.api as hs
        >>> from hyperspy_fe_ml.library import reference_spectrum
        >>> e = np.arange(700.0, 735.0, 0.1)
        >>> fe2, fe3 = reference_spectrum(2, "Oh", e), reference_spectrum(3, "Oh", e)
        >>> shape = 0.5 * (fe2 + fe3)
        >>> s = hs.signals.Signal1D(np.stack([30.0 * shape, 70.0 * shape]))
        >>> s.axes_manager[-1].offset, s.axes_manager[-1].scale = 700.0, 0.1
        >>> edge = FeL23Edge(td_fraction=0.0)
        >>> _ = edge.estimate_parameters(s)
        >>> edge.intensity.map["values"].round(1)
        array([30., 70.])
        """
        super()._estimate_parameters(signal)
        axis = signal.axes_manager.signal_axes[0]
        i1, i2 = axis.value_range_to_indices(
            axis.low_value if x1 is None else x1, axis.high_value if x2 is None else x2
        )
        energy = axis.axis[i1 : i2 + 1]
        values = self._values()
        shape = self._basis.evaluate(energy, 1.0, *values[1:])
        if axis.is_binned:
            shape = shape * (axis.scale if axis.is_uniform else np.gradient(axis.axis))
        norm = float(shape @ shape)
        if only_current:
            data = np.asarray(signal._get_current_data()[i1 : i2 + 1], dtype=float)
            estimate = float(data @ shape) / norm if norm > 0 else np.nan
            if np.isfinite(estimate):
                self.intensity.value = estimate
            return True
        data = signal.data[..., i1 : i2 + 1]
        estimate = data @ shape / norm if norm > 0 else np.full(data.shape[:-1], np.nan)
        if hasattr(estimate, "compute"):
            estimate = estimate.compute()
        estimate = np.asarray(estimate, dtype=float).reshape(self.intensity.map.shape)
        good = np.isfinite(estimate)
        self.intensity.map["values"][good] = estimate[good]
        self.intensity.map["is_set"][good] = True
        self.intensity.fetch()
        return True

    # -- evaluation ---------------------------------------------------------------

    def _values(self) -> tuple[float, ...]:
        return tuple(getattr(self, n).value for n in self._parameter_names)

    def _evaluated(self, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Value and gradients at the current parameters (last call cached)."""
        x = np.asarray(x, dtype=np.float64)
        key = (self._values(), x.shape, x[:1].tobytes(), x[-1:].tobytes())
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._basis.evaluate(x, *key[0], gradients=True))
        return self._cache[1]

    def function(self, x: np.ndarray) -> np.ndarray:
        """The component at energies ``x`` with the current parameter values."""
        return self._basis.evaluate(x, *self._values())

    def function_nd(
        self, axis: np.ndarray, parameters_values: list | None = None
    ) -> np.ndarray:
        """The component over the navigation space (HyperSpy's vectorised call).

        Parameters
        ----------
        axis
            Energies, eV.
        parameters_values
            One array per parameter (in :attr:`parameters` order), navigation
            shape; ``None`` takes the parameter maps.

        Returns
        -------
        numpy.ndarray
            Shape ``navigation + (channels,)``.
        """
        if not self._is_navigation_multidimensional:
            return self.function(axis)
        if parameters_values is None:
            parameters_values = [p.map["values"] for p in self.parameters]
        values = np.broadcast_arrays(*(np.asarray(v) for v in parameters_values))
        nav_shape = values[0].shape
        flat = [v.reshape(-1) for v in values]
        out = np.empty((flat[0].size, np.size(axis)))
        rows = max(1, 2**22 // (64 * max(1, np.size(axis))))  # bound temporaries
        for start in range(0, out.shape[0], rows):
            part = slice(start, start + rows)
            out[part] = self._basis.evaluate(axis, *(v[part] for v in flat))
        return out.reshape(*nav_shape, np.size(axis))

    def grad_intensity(self, x: np.ndarray) -> np.ndarray:
        return self._evaluated(x)[1]["intensity"]

    def grad_fe3_fraction(self, x: np.ndarray) -> np.ndarray:
        return self._evaluated(x)[1]["fe3_fraction"]

    def grad_td_fraction(self, x: np.ndarray) -> np.ndarray:
        return self._evaluated(x)[1]["td_fraction"]

    def grad_shift(self, x: np.ndarray) -> np.ndarray:
        return self._evaluated(x)[1]["shift"]

    def grad_broadening(self, x: np.ndarray) -> np.ndarray:
        return self._evaluated(x)[1]["broadening"]

    def grad_continuum(self, x: np.ndarray) -> np.ndarray:
        return self._evaluated(x)[1]["continuum"]
