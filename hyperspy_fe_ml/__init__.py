"""Fe L2,3-edge EELS: per-pixel iron valence and coordination maps for HyperSpy.

The package registers the :class:`~hyperspy_fe_ml.signals.FeL23Signal` signal type
(alias ``"FeL23"``) and its lazy twin with HyperSpy through the
``hyperspy.extensions`` entry point, so that::

    import hyperspy.api as hs
    s = hs.load("si.hspy", signal_type="FeL23")

gives a signal with the Fe L2,3 preprocessing methods.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "FeL23Signal", "LazyFeL23Signal"]


def __getattr__(name: str):
    # Import the signal classes on first use: HyperSpy imports this package while it
    # builds its own registry, and the signals import HyperSpy and exspy.
    if name in ("FeL23Signal", "LazyFeL23Signal"):
        from hyperspy_fe_ml import signals

        return getattr(signals, name)
    raise AttributeError(f"module 'hyperspy_fe_ml' has no attribute {name!r}")
