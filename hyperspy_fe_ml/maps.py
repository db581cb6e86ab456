"""The result of a per-pixel Fe-state analysis: named maps over the navigation space.

:class:`FeStateMaps` is what
:meth:`~hyperspy_fe_ml.signals.FeL23Signal.predict_fe_state` and the classical
methods return: a read-only mapping from quantity name
(``"valence"``, ``"fe3_fraction"``, …) to a HyperSpy signal whose axes are the
navigation axes of the analysed spectrum image, with their calibration. It computes
all lazy maps in one pass (they share one Dask graph), plots them, and saves them
all into one HyperSpy file that :meth:`FeStateMaps.load` reads back.
"""

import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
from hyperspy.signal import BaseSignal

#: Where the maps other than the first are kept inside a saved file.
_SAVED_MAPS_NODE = "FeL23.maps"


class FeStateMaps(Mapping[str, BaseSignal]):
    """Named per-pixel maps with shared provenance.

    Parameters
    ----------
    signals
        Quantity name → signal over the navigation space (all the same shape),
        or a function of no arguments that builds it when first asked for.
    provenance
        What produced the maps (method, model, settings, package version); also
        written into each map's ``metadata.FeL23.provenance``.

    Examples
    --------
    >>> import numpy as np
    >>> import hyperspy.api as hs
    >>> maps = FeStateMaps(
    ...     {"valence": hs.signals.Signal2D(np.full((3, 4), 2.5))},
    ...     provenance={"method": "example"},
    ... )
    >>> list(maps), maps["valence"].data.shape
    (['valence'], (3, 4))
    >>> maps["valence"].metadata.FeL23.provenance.method
    'example'
    """

    def __init__(
        self,
        signals: Mapping[str, BaseSignal | Callable[[], BaseSignal]],
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        if not signals:
            raise ValueError("FeStateMaps needs at least one map.")
        shapes = {
            name: s.data.shape
            for name, s in signals.items()
            if isinstance(s, BaseSignal)
        }
        if len(set(shapes.values())) > 1:
            raise ValueError(f"All maps must have one shape; got {shapes}.")
        self._signals = dict(signals)
        self._provenance = dict(provenance or {})
        for name, signal in self._signals.items():
            if isinstance(signal, BaseSignal):
                self._stamp(signal)
            elif not callable(signal):
                raise TypeError(
                    f"Map {name!r} must be a HyperSpy signal (or a function "
                    f"returning one), not {type(signal).__name__}."
                )

    def _stamp(self, signal: BaseSignal) -> None:
        if self._provenance:
            signal.metadata.set_item("FeL23.provenance", self._provenance)

    # -- the mapping ------------------------------------------------------------------

    def __getitem__(self, name: str) -> BaseSignal:
        try:
            signal = self._signals[name]
        except KeyError:
            raise KeyError(
                f"No map called {name!r}; the maps are {', '.join(self._signals)}."
            ) from None
        if not isinstance(signal, BaseSignal):
            # Built on first use: a HyperSpy signal costs about a millisecond to
            # set up, as much as the prediction of a thousand spectra.
            signal = signal()
            self._stamp(signal)
            self._signals[name] = signal
        return signal

    def __iter__(self) -> Iterator[str]:
        return iter(self._signals)

    def __len__(self) -> int:
        return len(self._signals)

    def __repr__(self) -> str:
        first = self[next(iter(self._signals))]
        kind = "lazy " if first._lazy else ""
        shape = first.axes_manager.signal_shape or (1,)
        return f"<FeStateMaps, {kind}{len(self)} maps of shape {shape}: {list(self)}>"

    @property
    def provenance(self) -> dict[str, Any]:
        """What produced the maps (method, model, settings, versions)."""
        return dict(self._provenance)

    @property
    def lazy(self) -> bool:
        """True when any map is still a Dask graph."""
        return any(s._lazy for s in self.values())

    # -- computing, plotting, saving --------------------------------------------------

    def compute(self, *, show_progressbar: bool | None = None) -> "FeStateMaps":
        """All maps as NumPy-backed signals, computed in one pass.

        The maps of one analysis share their Dask graph, so computing them
        together reads and processes the spectrum image once (computing each map
        on its own would repeat the work for every map).

        Parameters
        ----------
        show_progressbar
            Progress bar; ``None`` uses HyperSpy's preference.

        Returns
        -------
        FeStateMaps
            A new mapping; this one is unchanged.
        """
        lazy = {name: s for name, s in self.items() if s._lazy}
        if not lazy:
            return self
        arrays = _compute_together([s.data for s in lazy.values()], show_progressbar)
        signals = {}
        for name, signal in self.items():
            if name in lazy:
                signal = _eager_copy(signal, arrays[list(lazy).index(name)])
            signals[name] = signal
        return FeStateMaps(signals, self._provenance)

    def plot(self, names: list[str] | None = None, **kwargs: Any):
        """Show the maps in one figure with colour bars; see :func:`plot_fe_state_maps`.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from hyperspy_fe_ml.plot import plot_fe_state_maps

        return plot_fe_state_maps(self, names=names, **kwargs)

    def save(self, filename: str | Path, *, overwrite: bool | None = None) -> Path:
        """Write all maps into one HyperSpy file (``.hspy`` or ``.zspy``).

        The first map is the file's signal; the others ride in its
        ``metadata.FeL23.maps`` (HyperSpy saves signals held in metadata), so
        ``hs.load`` opens the file as the first map and :meth:`load` gives back
        all of them. Lazy maps are computed first, in one pass.

        Parameters
        ----------
        filename
            Output path; the extension chooses the format.
        overwrite
            As for :meth:`hyperspy.signal.BaseSignal.save` (``None`` asks).

        Returns
        -------
        pathlib.Path
        """
        path = Path(filename)
        if path.suffix not in (".hspy", ".zspy"):
            raise ValueError(
                f"FeStateMaps are saved as .hspy or .zspy files; got {path.name!r}. "
                "Use e.g. 'maps.hspy', or save single maps with maps['valence'].save()."
            )
        exists = path.is_file() or (path.suffix == ".zspy" and path.is_dir())
        if exists:
            if overwrite is None:
                from rsciio.utils import path as rsciio_path

                overwrite = rsciio_path.overwrite(path)  # asks, as HyperSpy does
            if not overwrite:
                return path
        computed = self.compute()
        names = list(computed)
        container = computed[names[0]].deepcopy()
        container.metadata.set_item("FeL23.map_names", names)
        for name in names[1:]:
            container.metadata.set_item(f"{_SAVED_MAPS_NODE}.{name}", computed[name])
        # Written beside the target under a temporary name and moved into place
        # when complete: an interrupted save never leaves half a file (an old
        # .hspy file stays as it was; an old .zspy folder is removed just before).
        partial = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}{path.suffix}")
        try:
            container.save(partial, overwrite=True)
            if path.suffix == ".zspy" and path.is_dir():
                shutil.rmtree(path)
            os.replace(partial, path)
        except BaseException:
            if partial.is_dir():
                shutil.rmtree(partial, ignore_errors=True)
            else:
                partial.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, filename: str | Path) -> "FeStateMaps":
        """Read maps written by :meth:`save`.

        Raises
        ------
        ValueError
            When the file was not written by :meth:`save`.
        """
        import hyperspy.api as hs

        container = hs.load(filename)
        md = container.metadata
        if not md.has_item("FeL23.map_names"):
            raise ValueError(
                f"{filename} holds a single signal, not FeStateMaps; open it with "
                "hs.load(), or write maps with FeStateMaps.save()."
            )
        names = list(md.get_item("FeL23.map_names"))
        signals = {names[0]: container}
        for name in names[1:]:
            signal = md.get_item(f"{_SAVED_MAPS_NODE}.{name}")
            signal._assign_subclass()  # signals in metadata load as BaseSignal
            signals[name] = signal
        for node in (_SAVED_MAPS_NODE, "FeL23.map_names"):
            if md.has_item(node):
                md.get_item("FeL23").__delattr__(node.split(".")[-1])
        provenance = (
            md.get_item("FeL23.provenance").as_dictionary()
            if md.has_item("FeL23.provenance")
            else {}
        )
        return cls(signals, provenance)


def _compute_together(arrays: list, show_progressbar: bool | None) -> list[np.ndarray]:
    if show_progressbar is None:
        from hyperspy.defaults_parser import preferences

        show_progressbar = preferences.General.show_progressbar
    from hyperspy_fe_ml.chunked import single_threaded_blas

    # One BLAS limit for the whole computation, not one per block (see
    # hyperspy_fe_ml.chunked.compute_into_numpy).
    with single_threaded_blas():
        if show_progressbar:
            from tqdm.dask import TqdmCallback

            with TqdmCallback(desc="Fe L2,3 maps"):
                return list(dask.compute(*arrays))
        return list(dask.compute(*arrays))


def _eager_copy(signal: BaseSignal, data: np.ndarray) -> BaseSignal:
    """A non-lazy twin of ``signal`` holding ``data``."""
    eager = signal._deepcopy_with_new_data(data)
    eager._lazy = False
    eager._assign_subclass()
    return eager


def navigation_map(
    signal: BaseSignal, data: Any, name: str, quantity: str
) -> BaseSignal:
    """A map over ``signal``'s navigation space, its calibrated axes kept.

    Lazy data (Dask) give a lazy signal. A signal without navigation axes gives a
    one-value map.

    Parameters
    ----------
    signal
        The signal the map belongs to.
    data
        Array of the navigation shape (in array order), NumPy or Dask.
    name
        Name of the map: its title, with the signal's title.
    quantity
        ``metadata.Signal.quantity``, e.g. ``"Fe valence"``.

    Returns
    -------
    hyperspy.signal.BaseSignal
        Signal1D for a line scan, Signal2D for an image, BaseSignal otherwise.

    Examples
    --------
    >>> import numpy as np, hyperspy.api as hs
    >>> s = hs.signals.Signal1D(np.ones((3, 4, 10)))
    >>> s.axes_manager[0].scale = 2.5
    >>> m = navigation_map(s, np.zeros((3, 4)), "valence", "Fe valence")
    >>> m.axes_manager[0].scale, m.metadata.Signal.quantity
    (2.5, 'Fe valence')
    """
    return map_builder(signal)(data, name, quantity)


def map_builder(signal: BaseSignal) -> Callable[[Any, str, str], BaseSignal]:
    """:func:`navigation_map` for one signal, which it does not keep.

    Reads the navigation axes and title once; the builder holds those, not the
    signal (nor its data), so maps built later do not keep a spectrum image alive.
    """
    from hyperspy import signals

    n_nav = signal.axes_manager.navigation_dimension
    axes = signal.axes_manager._get_navigation_axes_dicts() if n_nav else []
    title = signal.metadata.get_item("General.title", "")

    def build(data: Any, name: str, quantity: str) -> BaseSignal:
        lazy = isinstance(data, da.Array)
        if n_nav == 0:
            out = (signals.LazySignal if lazy else signals.BaseSignal)(
                data.reshape((1,))
            )
        else:
            if n_nav == 1:
                cls = signals.LazySignal1D if lazy else signals.Signal1D
            elif n_nav == 2:
                cls = signals.LazySignal2D if lazy else signals.Signal2D
            else:
                cls = signals.LazySignal if lazy else signals.BaseSignal
            out = cls(data, axes=axes)
            if n_nav > 2:
                out = out.T
        out.metadata.General.title = f"{name} of {title}" if title else name
        out.metadata.set_item("Signal.quantity", quantity)
        return out

    return build
