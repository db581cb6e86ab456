"""Materials Project / FEFF Fe L2,3 XANES: pymatgen XAS, emmet XASDoc, bulk file.

Three layouts of the same computed spectra (Chen et al., Sci. Data 8 (2021) 153):

- a pymatgen :class:`~pymatgen.analysis.xas.spectrum.XAS` object, its ``as_dict()``
  dict, or that dict saved as JSON (``monty``'s ``{"@module": "numpy", ...}``
  array encoding is understood): :func:`read_pymatgen_xas`;
- emmet ``XASDoc`` documents as returned by the Materials Project API
  (``MPRester().materials.xas.search(...)``) and saved as JSON:
  :func:`read_xasdoc`;
- the bulk release of the L-edge database (figshare 10.6084/m9.figshare.12824513):
  newline-delimited JSON, optionally gzip-compressed or in a ``.tgz`` archive, one
  site-resolved L2 or L3 calculation per line with keys ``mp-id``,
  ``absorbing_atom`` (zero-based site index), ``edge``, ``structure`` (pymatgen
  dict) and ``spectrum``: :func:`iter_l_edge_database`.

Edges named ``"L2,3"``, ``"L23"`` or ``"L2_3"`` are read as they are; a separate L2
and L3 spectrum of the same material and site are stitched into one L2,3 spectrum by
:func:`stitch_l23` (pymatgen's ``XAS.stitch(other, mode="L23")`` when pymatgen is
installed, otherwise the numpy version documented there).

Labels (valence, Fe–O coordination number, Td fraction) come from the structure, by
bond valence and CrystalNN neighbour analysis (:mod:`.structure_labels`), when
**pymatgen is installed**. Without pymatgen the spectra still load, every label is
None and the record's ``metadata["label_notes"]`` says why; importing this module
never needs pymatgen. Nothing here loads pickles: JSON only.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tarfile
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hyperspy_fe_ml.library.records import LabelledSpectrum
from hyperspy_fe_ml.library.structure_labels import (
    PYMATGEN_MISSING_MESSAGE,
    StructureAnalysis,
    pymatgen_available,
)

__all__ = [
    "iter_l_edge_database",
    "normalise_edge",
    "read_pymatgen_xas",
    "read_xasdoc",
    "stitch_l23",
]

StitchMethod = Literal["auto", "pymatgen", "numpy"]

#: Number of points of a stitched spectrum (pymatgen's ``XAS.stitch`` default).
STITCH_SAMPLES = 500

_EDGE_NAMES = {
    "L2": "L2",
    "LII": "L2",
    "L3": "L3",
    "LIII": "L3",
    "L23": "L23",
    "L2,3": "L23",
    "L2_3": "L23",
    "L2-3": "L23",
    "L2+3": "L23",
    "L2/3": "L23",
}


def normalise_edge(edge: str) -> str:
    """Return ``"L2"``, ``"L3"`` or ``"L23"`` for the spellings used by MP and FEFF.

    Parameters
    ----------
    edge
        Edge name such as ``"L2,3"`` (emmet), ``"L23"`` (pymatgen), ``"L2_3"``
        (emmet enum member name), ``"L3"``.

    Raises
    ------
    ValueError
        For any other edge (K, M, ...).

    Examples
    --------
    >>> from hyperspy_fe_ml.library.feff import normalise_edge
    >>> normalise_edge("L2,3"), normalise_edge("l2_3"), normalise_edge("L3")
    ('L23', 'L23', 'L3')
    """
    key = str(edge).strip().upper().replace(" ", "")
    if key.startswith("EDGE."):  # str() of an enum member, e.g. "Edge.L2_3"
        key = key[len("EDGE.") :]
    if key not in _EDGE_NAMES:
        raise ValueError(
            f"unsupported absorption edge {edge!r}: only Fe L2,3 spectra can be read "
            "(edge 'L2,3', 'L23', 'L2_3', or an 'L2' and 'L3' pair to stitch)."
        )
    return _EDGE_NAMES[key]


@dataclass
class _EdgeSpectrum:
    """One computed edge spectrum before labelling (internal)."""

    energy: np.ndarray
    mu: np.ndarray
    edge: str
    element: str
    absorbing_index: int | None
    structure: Any
    identifier: str
    material_id: str | None = None
    spectrum_type: str = "XANES"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checked here, before stitching, so that bad arrays fail with a message.
        if (
            self.energy.ndim != 1
            or self.energy.shape != self.mu.shape
            or self.energy.size < 2
        ):
            raise ValueError(
                f"{self.identifier}: energies and intensities must be 1-D of one "
                f"length of at least 2, got shapes {self.energy.shape} and "
                f"{self.mu.shape}."
            )
        if not (np.all(np.isfinite(self.energy)) and np.all(np.isfinite(self.mu))):
            raise ValueError(
                f"{self.identifier}: the spectrum holds NaN or inf; repair or drop it."
            )


# ----------------------------------------------------------------------------- JSON


def _array(value: Any, what: str) -> np.ndarray:
    """A float array from a list, an ndarray or monty's numpy-array dict."""
    if isinstance(value, Mapping) and value.get("@module") == "numpy":
        data = value.get("data")
        if str(value.get("dtype", "")).startswith("complex"):
            raise ValueError(f"{what} is complex; an absorption spectrum is real.")
        value = data
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what} is not a numeric array.") from None
    return array


def _element_symbol(value: Any) -> str:
    """The symbol of a pymatgen Element, its dict (``{"element": "Fe"}``) or a str."""
    if isinstance(value, Mapping):
        value = value.get("element", value.get("symbol"))
    symbol = getattr(value, "symbol", value)
    if not isinstance(symbol, str) or not symbol:
        raise ValueError(f"cannot read an element symbol from {value!r}.")
    return symbol


def _structure_dict(structure: Any) -> Any:
    """A structure as a dict (or as is, when it is already a pymatgen Structure)."""
    if structure is None or isinstance(structure, Mapping):
        return structure
    if hasattr(structure, "as_dict"):
        return structure
    raise ValueError(f"cannot read a structure from {type(structure).__name__}.")


def _site_element(structure: Any, index: int) -> str | None:
    """Element at a site of a structure dict or Structure, without pymatgen."""
    try:
        if isinstance(structure, Mapping):
            species = structure["sites"][index]["species"]
            return _element_symbol(species[0])
        return structure[index].specie.symbol
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        return None


def _formula(structure: Any) -> str | None:
    """Reduced formula when pymatgen is there, else the element list."""
    if structure is None:
        return None
    if hasattr(structure, "composition"):
        return structure.composition.reduced_formula
    if pymatgen_available():
        from pymatgen.core import Structure

        try:
            return Structure.from_dict(dict(structure)).composition.reduced_formula
        except Exception:
            return None
    return None


def _load_json(source: str | os.PathLike) -> Any:
    path = Path(source)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            return json.load(handle)
    except (
        ValueError,  # JSONDecodeError, UnicodeDecodeError, integers too long
        RecursionError,  # absurdly nested arrays
        EOFError,  # truncated gzip
        zlib.error,
        gzip.BadGzipFile,
    ) as exc:
        kind = "gzip-compressed UTF-8 JSON" if opener is gzip.open else "UTF-8 JSON"
        raise ValueError(
            f"{path} is not valid {kind} ({type(exc).__name__}: {exc}); save the "
            "spectra with json.dump(..., cls=monty.json.MontyEncoder) or the MP "
            "API's JSON export."
        ) from None


@contextlib.contextmanager
def _naming(path: str | os.PathLike) -> Iterator[None]:
    """Prefix the file name to a ValueError raised while reading its content."""
    try:
        yield
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"{path}: {exc}") from None


def _edge_from_xas_dict(
    d: Mapping[str, Any], where: str, *, edge: str | None = None
) -> _EdgeSpectrum:
    """Read a pymatgen ``XAS.as_dict()`` dict."""
    if hasattr(d, "as_dict") and not isinstance(d, Mapping):
        d = d.as_dict()
    if not isinstance(d, Mapping):
        raise ValueError(
            f"{where}: not a pymatgen XAS dict but {type(d).__name__}; expected the "
            "output of XAS.as_dict() with 'x', 'y', 'edge', 'absorbing_element'."
        )
    missing = [k for k in ("x", "y") if k not in d]
    if missing:
        raise ValueError(
            f"{where}: not a pymatgen XAS dict, missing key(s) {missing}; expected "
            "the output of XAS.as_dict() with 'x', 'y', 'edge', 'absorbing_element'."
        )
    energy = _array(d["x"], f"{where}: 'x'")
    mu = _array(d["y"], f"{where}: 'y'")
    if energy.ndim != 1 or energy.shape != mu.shape:
        raise ValueError(
            f"{where}: 'x' and 'y' must be 1-D of the same length, got shapes "
            f"{energy.shape} and {mu.shape}."
        )
    index = d.get("absorbing_index")
    try:
        return _EdgeSpectrum(
            energy=energy,
            mu=mu,
            edge=normalise_edge(edge if edge is not None else d.get("edge", "")),
            element=_element_symbol(d.get("absorbing_element", "Fe")),
            absorbing_index=None if index is None else _site_index(index),
            structure=_structure_dict(d.get("structure")),
            identifier=where,
            spectrum_type=str(d.get("spectrum_type", "XANES")),
        )
    except ValueError as exc:
        message = str(exc)
        raise ValueError(
            message if message.startswith(where) else f"{where}: {message}"
        ) from None


def _site_index(value: Any) -> int:
    """A site index: a whole number (or its text), not a bool, list or 1.5."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"absorbing site index {value!r} is not a whole number.")
    try:
        index = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            f"absorbing site index {value!r} is not a whole number."
        ) from None
    if (isinstance(value, float) and index != value) or index < 0:
        raise ValueError(f"absorbing site index {value!r} is not a whole number >= 0.")
    return index


# --------------------------------------------------------------------------- stitch


def stitch_l23(
    l3_energy: np.ndarray,
    l3_mu: np.ndarray,
    l2_energy: np.ndarray,
    l2_mu: np.ndarray,
    num_samples: int = STITCH_SAMPLES,
) -> tuple[np.ndarray, np.ndarray]:
    """Join an L3 and an L2 spectrum into one L2,3 spectrum (without pymatgen).

    This follows pymatgen's ``XAS.stitch(other, mode="L23")`` (pymatgen 2024–2026):
    the result is sampled on ``num_samples`` equally spaced energies spanning the
    **L3** spectrum (an L2 tail beyond the last L3 energy is dropped), and is the
    L3 spectrum plus the L2 spectrum with negative L2 values clipped to zero. Both
    are interpolated with not-a-knot cubic splines, as pymatgen does. The one
    difference is outside the L2 energy range: pymatgen extrapolates the L2 spline,
    here the L2 contribution is zero below its first energy and held at its last
    value above its last one (the edge-step continuum). Away from the L2 onset the
    two versions therefore give the same numbers.

    Parameters
    ----------
    l3_energy, l3_mu
        The L3 spectrum (energies in eV, increasing or not).
    l2_energy, l2_mu
        The L2 spectrum.
    num_samples
        Number of points of the result.

    Returns
    -------
    energy, mu
        The stitched spectrum; the energies are increasing, L3 comes first.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_fe_ml.library.feff import stitch_l23
    >>> e3 = np.linspace(700.0, 740.0, 81)
    >>> e2 = e3 + 13.0
    >>> energy, mu = stitch_l23(e3, np.ones(81), e2, np.full(81, 0.5), num_samples=5)
    >>> energy
    array([700., 710., 720., 730., 740.])
    >>> mu
    array([1. , 1. , 1.5, 1.5, 1.5])
    """
    from scipy.interpolate import CubicSpline

    e3, m3 = _sorted(l3_energy, l3_mu)
    e2, m2 = _sorted(l2_energy, l2_mu)
    energy = np.linspace(e3[0], e3[-1], num_samples)
    l2 = np.zeros_like(energy)
    inside = (energy >= e2[0]) & (energy <= e2[-1])
    l2[inside] = CubicSpline(e2, m2)(energy[inside])
    l2[energy > e2[-1]] = m2[-1]
    return energy, CubicSpline(e3, m3)(energy) + np.maximum(l2, 0.0)


def _sorted(energy: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    energy = np.asarray(energy, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    order = np.argsort(energy, kind="stable")
    return energy[order], mu[order]


def _pymatgen_structure(structure: Any) -> Any:
    from pymatgen.core import Structure

    if isinstance(structure, Mapping):
        try:
            return Structure.from_dict(dict(structure))
        except Exception as exc:  # whatever pymatgen raises on a malformed dict
            raise ValueError(
                f"the structure is not a valid pymatgen Structure dict ({exc!r})."
            ) from None
    return structure


def _stitch(
    l2: _EdgeSpectrum, l3: _EdgeSpectrum, method: StitchMethod
) -> tuple[np.ndarray, np.ndarray, str]:
    """Stitch an L2 and an L3 spectrum; return energy, mu and the method used."""
    if method not in ("auto", "pymatgen", "numpy"):
        raise ValueError(
            f"stitch_method must be 'auto', 'pymatgen' or 'numpy', got {method!r}."
        )
    if l2.element != l3.element or l2.absorbing_index != l3.absorbing_index:
        raise ValueError(
            f"cannot stitch {l2.identifier} and {l3.identifier}: the absorbing "
            f"element/site differ ({l2.element} {l2.absorbing_index} vs {l3.element} "
            f"{l3.absorbing_index})."
        )
    use_pymatgen = method == "pymatgen" or (
        method == "auto"
        and pymatgen_available()
        and l2.structure is not None
        and l3.structure is not None
    )
    if not use_pymatgen:
        energy, mu = stitch_l23(l3.energy, l3.mu, l2.energy, l2.mu)
        return energy, mu, "numpy/scipy (see stitch_l23)"
    if not pymatgen_available():
        raise ImportError(
            "stitch_method='pymatgen' needs pymatgen: pip install hyperspy-fe-ml[mp]"
        )
    if l2.structure is None or l3.structure is None:
        raise ValueError(
            f"stitch_method='pymatgen' needs the structures of {l2.identifier} and "
            f"{l3.identifier}; use stitch_method='numpy'."
        )
    from pymatgen.analysis.xas.spectrum import XAS

    xas = []
    for spec in (l2, l3):
        e, m = _sorted(spec.energy, spec.mu)
        xas.append(
            XAS(
                e,
                m,
                _pymatgen_structure(spec.structure),
                spec.element,
                edge=spec.edge,
                spectrum_type=spec.spectrum_type,
                absorbing_index=spec.absorbing_index,
            )
        )
    try:
        with warnings.catch_warnings():
            # The "jump at the L2 and L3-edge junction" heuristic divides by the
            # pre-edge value, which FEFF often has at 0: silence its noise.
            warnings.simplefilter("ignore", RuntimeWarning)
            stitched = xas[0].stitch(xas[1], num_samples=STITCH_SAMPLES, mode="L23")
    except Exception as exc:  # whatever pymatgen raises on unusual spectra
        raise ValueError(
            f"pymatgen could not stitch {l2.identifier} and {l3.identifier}: "
            f"{type(exc).__name__}: {exc}; try stitch_method='numpy'."
        ) from None
    return np.asarray(stitched.x), np.asarray(stitched.y), "pymatgen XAS.stitch L23"


# --------------------------------------------------------------------------- labels


class _Labeller:
    """Labels from structures, with a small cache of analysed structures."""

    def __init__(self, label: bool, cache_size: int = 8) -> None:
        self.label = label
        self.cache_size = cache_size
        self._cache: dict[str, StructureAnalysis] = {}
        self.warned = False

    def __call__(
        self, spec: _EdgeSpectrum
    ) -> tuple[float | None, float | None, float | None, dict[str, Any]]:
        if not self.label:
            return None, None, None, {"label_notes": ["labels not requested"]}
        if spec.structure is None:
            return None, None, None, {"label_notes": ["no structure: no labels"]}
        if not pymatgen_available():
            if not self.warned:
                warnings.warn(PYMATGEN_MISSING_MESSAGE, stacklevel=3)
                self.warned = True
            return None, None, None, {"label_notes": [PYMATGEN_MISSING_MESSAGE]}
        key = spec.material_id or spec.identifier
        try:
            analysis = self._cache.pop(key, None)
            if analysis is None:
                analysis = StructureAnalysis(spec.structure, element=spec.element)
            self._cache[key] = analysis
            while len(self._cache) > self.cache_size:
                self._cache.pop(next(iter(self._cache)))
            labels = analysis.labels(spec.absorbing_index)
        except Exception as exc:  # a label failure must not lose the spectrum
            message = f"{spec.identifier}: no labels, structure analysis failed: {exc}"
            warnings.warn(message, stacklevel=3)
            return None, None, None, {"label_notes": [message]}
        return (
            labels.valence,
            labels.coordination_number,
            labels.td_fraction,
            labels.as_metadata(),
        )


def _record(
    spec: _EdgeSpectrum,
    labeller: _Labeller,
    *,
    partner: _EdgeSpectrum | None = None,
    stitch_method: StitchMethod = "auto",
) -> LabelledSpectrum:
    """Label (and stitch) edge spectra into a LabelledSpectrum."""
    metadata: dict[str, Any] = {
        "material_id": spec.material_id,
        "absorbing_element": spec.element,
        "absorbing_index": spec.absorbing_index,
        "spectrum_type": spec.spectrum_type,
        **spec.metadata,
    }
    if partner is None:
        if spec.edge != "L23":
            raise ValueError(
                f"{spec.identifier} is an {spec.edge} spectrum alone; an Fe L2,3 "
                f"spectrum needs its {'L2' if spec.edge == 'L3' else 'L3'} partner "
                "(same material and absorbing site) to stitch with."
            )
        energy, mu = spec.energy, spec.mu
        metadata["edge"] = "L2,3 (as read)"
        identifier = spec.identifier
    else:
        edges = {spec.edge: spec, partner.edge: partner}
        if set(edges) != {"L2", "L3"}:
            raise ValueError(
                f"need one L2 and one L3 spectrum to stitch, got {spec.edge} "
                f"({spec.identifier}) and {partner.edge} ({partner.identifier})."
            )
        energy, mu, how = _stitch(edges["L2"], edges["L3"], stitch_method)
        metadata["edge"] = "L2,3 stitched from L2 and L3"
        metadata["stitch"] = how
        metadata["stitched_from"] = [edges["L3"].identifier, edges["L2"].identifier]
        base = spec.material_id or spec.identifier
        site = "" if spec.absorbing_index is None else f"-site{spec.absorbing_index}"
        identifier = f"{base}-XANES-{spec.element}-L23{site}"
    valence, cn, td, label_meta = labeller(spec)
    metadata.update(label_meta)
    if metadata.get("formula") is None:
        metadata["formula"] = _formula(spec.structure)
    return LabelledSpectrum(
        energy=energy,
        intensity=mu,
        valence=valence,
        coordination_number=cn,
        td_fraction=td,
        source="feff",
        identifier=identifier,
        metadata={k: v for k, v in metadata.items() if v is not None},
    )


# ------------------------------------------------------------------------- readers


def read_pymatgen_xas(
    source: Mapping[str, Any] | str | os.PathLike | Any,
    *,
    partner: Mapping[str, Any] | str | os.PathLike | Any | None = None,
    label: bool = True,
    stitch_method: StitchMethod = "auto",
) -> LabelledSpectrum:
    """Read a pymatgen ``XAS`` spectrum (object, ``as_dict()`` dict or JSON file).

    Parameters
    ----------
    source
        An L2,3 spectrum, or an L2 or L3 spectrum together with ``partner``.
    partner
        The other edge of the same material and absorbing site; the two are
        stitched with :func:`stitch_l23` semantics.
    label
        Derive valence, Fe–O coordination and Td fraction from the structure
        (needs pymatgen; without it the labels are None and a warning says so).
    stitch_method
        ``"auto"`` (pymatgen's ``XAS.stitch`` when installed, else numpy),
        ``"pymatgen"`` or ``"numpy"``.

    Returns
    -------
    LabelledSpectrum
        ``source="feff"``; ``metadata`` holds the material, site, formula, how the
        edges were joined and the per-site label evidence.

    Raises
    ------
    ValueError
        If the dict is not an XAS dict, the edge is not an L edge, or an L2/L3
        spectrum comes without its partner.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_fe_ml.library.feff import read_pymatgen_xas
    >>> xas = {"x": np.linspace(700, 740, 81), "y": np.ones(81), "edge": "L23",
    ...        "absorbing_element": "Fe", "structure": None}
    >>> rec = read_pymatgen_xas(xas)
    >>> rec.energy[[0, -1]], rec.valence
    (array([700., 740.]), None)
    """

    def edge_spectrum(item: Any) -> _EdgeSpectrum:
        if isinstance(item, (str, os.PathLike)):
            with _naming(item):
                spec = _edge_from_xas_dict(_load_json(item), str(item))
            spec.metadata["file"] = str(item)
            spec.identifier = Path(item).stem
            return spec
        spec = _edge_from_xas_dict(item, "pymatgen XAS")
        spec.identifier = _formula(spec.structure) or "pymatgen-xas"
        return spec

    labeller = _Labeller(label)
    first = edge_spectrum(source)
    other = None if partner is None else edge_spectrum(partner)
    named = source if isinstance(source, (str, os.PathLike)) else ""
    with _naming(named) if named else contextlib.nullcontext():
        return _record(first, labeller, partner=other, stitch_method=stitch_method)


def _xasdoc_entries(source: Any) -> list[Mapping[str, Any]]:
    """Flatten a path / doc / list of docs / API envelope into a list of docs."""
    if isinstance(source, (str, os.PathLike)):
        source = _load_json(source)
    if isinstance(source, Mapping) and "data" in source and "spectrum" not in source:
        source = source["data"]  # MP API response envelope
    if isinstance(source, Mapping) or hasattr(source, "model_dump"):
        source = [source]
    if isinstance(source, (str, bytes)) or not isinstance(source, Sequence):
        raise ValueError(
            "expected an XASDoc (JSON object), a list of them or the API's "
            f"{{'data': [...]}} envelope, got {type(source).__name__}."
        )
    docs = []
    for doc in source:
        if hasattr(doc, "model_dump"):  # an emmet XASDoc object
            doc = doc.model_dump()
        if not isinstance(doc, Mapping):
            raise ValueError(
                f"an XASDoc must be a JSON object, got {type(doc).__name__}."
            )
        docs.append(doc)
    return docs


def read_xasdoc(
    source: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str | os.PathLike,
    *,
    label: bool = True,
    stitch_method: StitchMethod = "auto",
) -> list[LabelledSpectrum]:
    """Read emmet ``XASDoc`` documents (Materials Project XAS API) as L2,3 spectra.

    Documents whose edge is ``"L2,3"`` (also ``"L23"``, ``"L2_3"``) are read as
    they are; an ``"L2"`` and an ``"L3"`` document of the same ``material_id`` and
    absorbing site are stitched (:func:`stitch_l23`), unless an L2,3 document of
    that material and site is also given (the Materials Project serves all three),
    in which case the L2,3 document is used and the pair is not duplicated.
    Site-averaged documents (``absorbing_index`` None) get labels averaged over all
    Fe sites.

    Parameters
    ----------
    source
        One document (dict), a list of them, the API's ``{"data": [...]}``
        envelope, or a JSON file (optionally ``.gz``) holding any of these. The
        spectrum is the document's ``spectrum`` (a pymatgen ``XAS`` dict).
    label
        Derive labels from the structure (needs pymatgen, see module docstring).
    stitch_method
        See :func:`read_pymatgen_xas`.

    Returns
    -------
    list of LabelledSpectrum
        One per L2,3 spectrum, in the order of the documents.

    Raises
    ------
    ValueError
        For a non-L edge, an absorbing element other than Fe, or an L2/L3
        document without its partner.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_fe_ml.library.feff import read_xasdoc
    >>> doc = {"material_id": "mp-0", "spectrum_id": "mp-0-XANES-Fe-L2,3",
    ...        "edge": "L2,3", "absorbing_element": "Fe",
    ...        "spectrum": {"x": [700.0, 710.0], "y": [0.0, 1.0], "structure": None}}
    >>> [r.identifier for r in read_xasdoc(doc, label=False)]
    ['mp-0-XANES-Fe-L2,3']
    """
    if isinstance(source, (str, os.PathLike)):
        with _naming(source):
            content = _load_json(source)
            if isinstance(content, str):  # never a path to follow from a file
                raise ValueError(
                    "the file holds a JSON string, not XASDoc objects; save the "
                    "documents (a JSON list of objects) instead."
                )
            return read_xasdoc(content, label=label, stitch_method=stitch_method)
    labeller = _Labeller(label)
    singles: list[_EdgeSpectrum] = []
    pending: dict[tuple[str | None, int | None], dict[str, _EdgeSpectrum]] = {}
    order: list[tuple[str, Any]] = []
    for i, doc in enumerate(_xasdoc_entries(source)):
        name = str(doc.get("spectrum_id") or doc.get("material_id") or f"document {i}")
        if "spectrum" not in doc:
            raise ValueError(
                f"XASDoc {name!r} has no 'spectrum'; export the documents with "
                "their spectra (fields=['spectrum', ...] in the MP API query)."
            )
        spectrum = doc["spectrum"]
        if hasattr(spectrum, "as_dict") and not isinstance(spectrum, Mapping):
            spectrum = spectrum.as_dict()  # a pymatgen XAS inside an XASDoc object
        spec = _edge_from_xas_dict(spectrum, name, edge=doc.get("edge"))
        try:
            spec.element = _element_symbol(
                doc.get("absorbing_element", spectrum.get("absorbing_element", "Fe"))
            )
        except ValueError as exc:
            raise ValueError(f"XASDoc {name!r}: {exc}") from None
        if spec.element != "Fe":
            raise ValueError(
                f"XASDoc {name!r} is for {spec.element}, not Fe; query the API with "
                "absorbing_element='Fe'."
            )
        spec.material_id = (
            None if doc.get("material_id") is None else str(doc["material_id"])
        )
        spec.spectrum_type = str(doc.get("spectrum_type", spec.spectrum_type))
        spec.metadata["spectrum_id"] = name
        if spec.edge == "L23":
            singles.append(spec)
            order.append(("single", spec))
        else:
            key = (spec.material_id, spec.absorbing_index)
            if key not in pending:
                pending[key] = {}
                order.append(("pair", key))
            pending[key][spec.edge] = spec
    have_l23 = {(s.material_id, s.absorbing_index) for s in singles}
    records = []
    for kind, item in order:
        if kind == "single":
            records.append(_record(item, labeller))
            continue
        if item in have_l23:
            continue  # MP also serves the stitched L2,3 document: no duplicate
        pair = pending[item]
        if set(pair) != {"L2", "L3"}:
            (only,) = pair.values()
            raise ValueError(
                f"XASDoc {only.identifier!r} ({only.edge}) has no "
                f"{'L2' if only.edge == 'L3' else 'L3'} partner for material "
                f"{item[0]} site {item[1]}; include both edges or the 'L2,3' document."
            )
        records.append(
            _record(
                pair["L3"], labeller, partner=pair["L2"], stitch_method=stitch_method
            )
        )
    return records


def _bulk_spectrum(value: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Energies and mu from a bulk record's ``spectrum``.

    Accepted: ``[energies, mu]`` (2 x N, the release's layout); N rows of
    ``[energy, mu]``; or N rows of FEFF ``xmu.dat`` columns ``[omega, e, k, mu, mu0,
    chi]`` (energy = column 0, mu = column 3, as emmet's FEFF task documents).
    """
    if isinstance(value, Mapping):
        for e_key, m_key in (("x", "y"), ("energy", "mu"), ("energies", "mu")):
            if e_key in value and m_key in value:
                return _array(value[e_key], where), _array(value[m_key], where)
        raise ValueError(f"{where}: unknown 'spectrum' layout {sorted(value)}.")
    array = _array(value, f"{where}: 'spectrum'")
    if array.ndim != 2:
        raise ValueError(
            f"{where}: 'spectrum' must be [energies, mu] (2 x N), got shape "
            f"{array.shape}."
        )
    if array.shape[0] == 2:
        return array[0], array[1]
    if array.shape[1] == 2:
        return array[:, 0], array[:, 1]
    if array.shape[1] >= 4:
        return array[:, 0], array[:, 3]
    raise ValueError(
        f"{where}: cannot tell energies from intensities in a 'spectrum' of shape "
        f"{array.shape}; expected [energies, mu]."
    )


def _open_lines(path: Path) -> Iterator[tuple[str, int, bytes]]:
    """Yield (member name, line number, raw line) of an ndjson, .gz or .tgz file.

    Lines are bytes, decoded one by one by the caller, so that one line that is
    not UTF-8 is one bad record. Corrupt or truncated compressed data raise a
    ValueError naming the file (the lines before it have been yielded).
    """
    name = path.name.lower()
    try:
        if name.endswith((".tgz", ".tar.gz", ".tar")):
            with tarfile.open(path, "r:*") as archive:
                for member in archive:
                    if not member.isfile():
                        continue
                    handle = archive.extractfile(member)
                    if handle is None:
                        continue
                    member_name = f"{path}:{member.name}"
                    raw: Any = handle
                    if member.name.lower().endswith(".gz"):
                        raw = gzip.GzipFile(fileobj=handle)
                    for number, line in enumerate(raw, start=1):
                        yield member_name, number, line
            return
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                yield str(path), number, line
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(
            f"{path}: the compressed data are corrupt or truncated "
            f"({type(exc).__name__}: {exc}); download the file again."
        ) from None


def _bulk_edge_spectrum(record: Mapping[str, Any], where: str) -> _EdgeSpectrum:
    missing = [
        k for k in ("mp-id", "absorbing_atom", "edge", "spectrum") if k not in record
    ]
    if missing:
        raise ValueError(
            f"{where}: missing key(s) {missing}; expected an L-edge database record "
            "with 'mp-id', 'absorbing_atom', 'edge', 'structure', 'spectrum'."
        )
    energy, mu = _bulk_spectrum(record["spectrum"], where)
    structure = record.get("structure")
    atom = record["absorbing_atom"]
    if isinstance(atom, str) and not atom.lstrip("-").isdigit():
        index, element = None, _element_symbol(atom)  # site-averaged: element symbol
    else:
        index = _site_index(atom)
        element = _site_element(structure, index) if structure is not None else None
        if element is None:
            raise ValueError(
                f"{where}: absorbing_atom {index} is not a site of the record's "
                "structure."
            )
    mp_id = str(record["mp-id"])
    site = "" if index is None else f"-site{index}"
    spec = _EdgeSpectrum(
        energy=energy,
        mu=mu,
        edge=normalise_edge(record["edge"]),
        element=element,
        absorbing_index=index,
        structure=structure,
        identifier=f"{mp_id}-XANES-{element}-{record['edge']}{site}",
        material_id=mp_id,
    )
    if "name" in record:
        spec.metadata["calculation"] = str(record["name"])
    spec.metadata["file"] = where
    return spec


def iter_l_edge_database(
    path: str | os.PathLike,
    *,
    element: str = "Fe",
    label: bool = True,
    stitch_method: StitchMethod = "auto",
    on_error: Literal["warn", "raise"] = "warn",
) -> Iterator[LabelledSpectrum]:
    """Stream Fe L2,3 spectra from the bulk newline-delimited JSON L-edge database.

    Each line is one site-resolved FEFF calculation: ``mp-id``, ``absorbing_atom``
    (zero-based index into ``structure["sites"]``; an element symbol is read as a
    site-averaged spectrum), ``edge`` (``"L2"``/``"L3"``, or an L2,3 spelling),
    ``structure`` (pymatgen dict) and ``spectrum`` (``[energies, mu]``, see
    :func:`_bulk_spectrum` for the other layouts read). Records of other
    absorbing elements are skipped. An L2 and an L3 record of the same ``mp-id``
    and site are stitched as soon as both have been read, so memory holds only
    the records still waiting for their partner.

    Parameters
    ----------
    path
        ``.json``/``.jsonl`` file, the same gzip-compressed (``.gz``), or a
        ``.tgz``/``.tar.gz`` archive of such files (read member by member, nothing
        is extracted to disk).
    element
        Absorbing element to keep.
    label
        Labels from the structure at the absorbing site (needs pymatgen).
    stitch_method
        See :func:`read_pymatgen_xas`.
    on_error
        ``"warn"`` (default): a bad line or an unpaired edge gives a warning and is
        skipped, so one broken record does not lose a 1000-spectrum file;
        ``"raise"``: a ValueError naming the file and line.

    Yields
    ------
    LabelledSpectrum
        ``source="feff"``, identifier ``"{mp-id}-XANES-Fe-L23-site{i}"``.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> from hyperspy_fe_ml.library.feff import iter_l_edge_database
    >>> site = {"species": [{"element": "Fe", "occu": 1}], "abc": [0, 0, 0]}
    >>> rows = [{"mp-id": "mp-1", "absorbing_atom": 0, "edge": edge,
    ...          "structure": {"sites": [site]}, "spectrum": [[700 + d, 760 + d],
    ...          [1.0, 1.0]]} for edge, d in (("L3", 0), ("L2", 13))]
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "L-XAS.json"
    >>> _ = path.write_text("\\n".join(json.dumps(r) for r in rows))
    >>> records = iter_l_edge_database(path, label=False, stitch_method="numpy")
    >>> [r.identifier for r in records]
    ['mp-1-XANES-Fe-L23-site0']
    """
    if on_error not in ("warn", "raise"):
        raise ValueError(f"on_error must be 'warn' or 'raise', got {on_error!r}.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no L-edge database file at {path}.")
    labeller = _Labeller(label)
    pending: dict[tuple[str, int | None], dict[str, _EdgeSpectrum]] = {}

    def fail(message: str) -> None:
        if on_error == "raise":
            raise ValueError(message)
        warnings.warn(message + " Skipped.", stacklevel=3)

    def lines() -> Iterator[tuple[str, int, bytes]]:
        try:
            yield from _open_lines(path)
        except ValueError as exc:  # corrupt compression: keep what was read
            fail(f"{exc} Reading stopped there.")

    for source, number, raw in lines():
        if not raw.strip():
            continue
        where = f"{source} line {number}"
        try:
            line = raw.decode("utf-8")
            record = json.loads(line)
            if not isinstance(record, Mapping):
                raise ValueError(f"{where}: a record must be a JSON object.")
            atom = record.get("absorbing_atom")
            structure = record.get("structure")
            if isinstance(atom, int) and structure is not None:
                site_element = _site_element(structure, atom)
                if site_element is not None and site_element != element:
                    continue  # another element's spectrum: not an error
            spec = _bulk_edge_spectrum(record, where)
        except UnicodeDecodeError:
            fail(f"{where}: not UTF-8 text.")
            continue
        except (json.JSONDecodeError, RecursionError) as exc:
            fail(f"{where}: not valid JSON ({exc}).")
            continue
        except ValueError as exc:
            fail(str(exc) if str(exc).startswith(where) else f"{where}: {exc}")
            continue
        except (TypeError, KeyError, IndexError, AttributeError) as exc:
            fail(f"{where}: malformed record ({type(exc).__name__}: {exc}).")
            continue
        if spec.element != element:
            continue
        try:
            if spec.edge == "L23":
                yield _record(spec, labeller)
                continue
            key = (spec.material_id or "", spec.absorbing_index)
            pair = pending.setdefault(key, {})
            if spec.edge in pair:
                warnings.warn(
                    f"{where}: a second {spec.edge} record for {key[0]} site "
                    f"{key[1]}; the later one is used.",
                    stacklevel=2,
                )
            pair[spec.edge] = spec
            if len(pair) == 2:
                del pending[key]
                yield _record(
                    pair["L3"],
                    labeller,
                    partner=pair["L2"],
                    stitch_method=stitch_method,
                )
        except (ValueError, TypeError, IndexError) as exc:
            fail(f"{where}: {exc}")
    if pending:
        examples = ", ".join(
            f"{k[0]} site {k[1]} ({'/'.join(v)})" for k, v in list(pending.items())[:3]
        )
        fail(
            f"{path}: {len(pending)} L2/L3 record(s) without their partner edge, "
            f"e.g. {examples}."
        )
