"""Helpers shared by the test modules (pytest puts ``tests/`` on the path)."""

import hyperspy.api as hs
import numpy as np


def fe_signal(
    data: np.ndarray, offset: float = 690.0, scale: float = 0.1
) -> hs.signals.BaseSignal:
    """An Fe L2,3 signal on a uniform eV axis; ``data`` is used as it is.

    Examples
    --------
    >>> s = fe_signal(np.zeros((2, 300)))
    >>> s.axes_manager[-1].offset, type(s).__name__
    (690.0, 'FeL23Signal')
    """
    s = hs.signals.Signal1D(data)
    axis = s.axes_manager.signal_axes[0]
    axis.offset, axis.scale, axis.units = float(offset), float(scale), "eV"
    s.set_signal_type("FeL23")
    return s
