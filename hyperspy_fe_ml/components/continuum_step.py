"""The Fe L2,3 continuum: van Aken & Liebscher's 2:1 double arctan step."""

from __future__ import annotations

import numpy as np
from hyperspy.component import Component

from hyperspy_fe_ml.whiteline import (
    STEP_L2_EV,
    STEP_L3_EV,
    STEP_WIDTH_EV,
    double_arctan,
)

__all__ = ["FeL23ContinuumStep"]


class FeL23ContinuumStep(Component):
    r"""The Fe L2,3 continuum: a double arctan step with heights 2:1.

    .. math::

        f(E) = h \left[u(E - E_3) + \tfrac{1}{2} u(E - E_2)\right],\quad
        u(d) = \tfrac{1}{2} + \tfrac{1}{\pi}\arctan\frac{\pi d}{w}

    as in van Aken & Liebscher (2002), with inflections :math:`E_3 = 708.65` and
    :math:`E_2 = 721.65` eV and width :math:`w = 1` eV by default
    (:func:`hyperspy_fe_ml.whiteline.double_arctan`).

    ============ =============================================
    Parameter    Meaning
    ============ =============================================
    height       :math:`h`, height of the L3 step (linear)
    l3_onset     :math:`E_3`, inflection of the L3 step, eV
    l2_onset     :math:`E_2`, inflection of the L2 step, eV
    width        :math:`w`, width of both steps, eV
    ============ =============================================

    Parameters
    ----------
    height, l3_onset, l2_onset, width
        Starting values. The onsets and width start fixed (the published
        method fixes them); free them with ``step.l3_onset.free = True``.

    Examples
    --------
    >>> import numpy as np, hyperspy.api as hs
    >>> from hyperspy_fe_ml.whiteline import double_arctan
    >>> e = np.arange(700.0, 740.0, 0.1)
    >>> s = hs.signals.Signal1D(double_arctan(e, 3.0))
    >>> s.axes_manager[-1].offset, s.axes_manager[-1].scale = 700.0, 0.1
    >>> m = s.create_model()
    >>> step = FeL23ContinuumStep()
    >>> m.append(step)
    >>> m.fit(return_info=False)
    >>> round(step.height.value, 3)
    3.0
    """

    _parameter_names = ("height", "l3_onset", "l2_onset", "width")

    def __init__(
        self,
        height: float = 1.0,
        l3_onset: float = STEP_L3_EV,
        l2_onset: float = STEP_L2_EV,
        width: float = STEP_WIDTH_EV,
    ) -> None:
        super().__init__(list(self._parameter_names), ["height"])
        starts = (height, l3_onset, l2_onset, width)
        bounds = (
            (0.0, None),
            (l3_onset - 5.0, l3_onset + 5.0),
            (l2_onset - 5.0, l2_onset + 5.0),
            (0.01, 10.0),
        )
        for name, start, (bmin, bmax) in zip(
            self._parameter_names, starts, bounds, strict=True
        ):
            parameter = getattr(self, name)
            parameter.value = float(start)
            parameter.bmin, parameter.bmax = bmin, bmax
            if name != "height":
                parameter.units = "eV"
                parameter.free = False
        self._position = self.l3_onset
        self.isbackground = False
        self.convolved = True

    def _function(self, x, height, l3_onset, l2_onset, width) -> np.ndarray:
        return double_arctan(x, height, l3_onset, l2_onset, width)

    def function(self, x: np.ndarray) -> np.ndarray:
        """The step at energies ``x`` with the current parameter values."""
        return self._function(x, *(p.value for p in self.parameters))

    def function_nd(
        self, axis: np.ndarray, parameters_values: list | None = None
    ) -> np.ndarray:
        """The step over the navigation space (HyperSpy's vectorised call)."""
        if not self._is_navigation_multidimensional:
            return self.function(axis)
        if parameters_values is None:
            parameters_values = [p.map["values"] for p in self.parameters]
        return self._function(
            axis, *(np.asarray(v)[..., None] for v in parameters_values)
        )

    def _unit_slopes(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """d u / d E at each edge, for the gradients."""
        w = self.width.value
        out = []
        for centre in (self.l3_onset.value, self.l2_onset.value):
            z = np.pi * (np.asarray(x, dtype=np.float64) - centre) / w
            out.append(1.0 / (w * (1.0 + z**2)))
        return out[0], out[1]

    def grad_height(self, x: np.ndarray) -> np.ndarray:
        return self._function(
            x, 1.0, self.l3_onset.value, self.l2_onset.value, self.width.value
        )

    def grad_l3_onset(self, x: np.ndarray) -> np.ndarray:
        return -self.height.value * self._unit_slopes(x)[0]

    def grad_l2_onset(self, x: np.ndarray) -> np.ndarray:
        return -0.5 * self.height.value * self._unit_slopes(x)[1]

    def grad_width(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        w = self.width.value
        s3, s2 = self._unit_slopes(x)
        d3 = x - self.l3_onset.value
        d2 = x - self.l2_onset.value
        return -self.height.value * (s3 * d3 + 0.5 * s2 * d2) / w
