"""Signal classes registered with HyperSpy."""

from exspy.signals import EELSSpectrum, LazyEELSSpectrum


class FeL23Signal(EELSSpectrum):
    """Fe L2,3-edge EELS spectrum or spectrum image."""

    _signal_type = "FeL23_EELS"
    _alias_signal_types = ["FeL23", "Fe L23", "Fe_L23"]


class LazyFeL23Signal(FeL23Signal, LazyEELSSpectrum):
    """Lazy (Dask-backed) :class:`FeL23Signal`."""
