"""The result of a per-pixel Fe-state analysis: named maps over the navigation space.

:class:`FeStateMaps` is what
:meth:`~hyperspy_fe_ml.signals.FeL23Signal.predict_fe_state` and the classical
methods return: a read-only mapping from quantity name
(``"valence"``, ``"fe3_fraction"``, …) to a HyperSpy signal whose axes are the
navigation axes of the analysed spectrum image, with their calibration. It computes
all lazy maps in one pass (they share one Dask graph), plots them, and saves them
all into one HyperSpy file that :meth:`FeStateMaps.load` reads back.
"""

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dask
import numpy as np
from hyperspy.signal import BaseSignal

#: Where the maps other than the first are kept inside a saved file.
_SAVED_MAPS_NODE = "FeL23.maps"


class FeStateMaps(Mapping[str, BaseSignal]):
    """Named per-pixel maps with shared provenance.

    Parameters
    ----------
    signals
        Quantity name → signal over the navigation space (all the same shape).
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
        signals: Mapping[str, BaseSignal],
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        if not signals:
            raise ValueError("FeStateMaps needs at least one map.")
        shapes = {name: s.data.shape for name, s in signals.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"All maps must have one shape; got {shapes}.")
        self._signals = dict(signals)
        self._provenance = dict(provenance or {})
        for signal in self._signals.values():
            if self._provenance:
                signal.metadata.set_item("FeL23.provenance", self._provenance)

    # -- the mapping ------------------------------------------------------------------

    def __getitem__(self, name: str) -> BaseSignal:
        try:
            return self._signals[name]
        except KeyError:
            raise KeyError(
                f"No map called {name!r}; the maps are {', '.join(self._signals)}."
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._signals)

    def __len__(self) -> int:
        return len(self._signals)

    def __repr__(self) -> str:
        first = next(iter(self._signals.values()))
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
        return any(s._lazy for s in self._signals.values())

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
        lazy = {name: s for name, s in self._signals.items() if s._lazy}
        if not lazy:
            return self
        arrays = _compute_together([s.data for s in lazy.values()], show_progressbar)
        signals = {}
        for name, signal in self._signals.items():
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
        computed = self.compute()
        names = list(computed)
        container = computed[names[0]].deepcopy()
        container.metadata.set_item("FeL23.map_names", names)
        for name in names[1:]:
            container.metadata.set_item(f"{_SAVED_MAPS_NODE}.{name}", computed[name])
        container.save(path, overwrite=overwrite)
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
