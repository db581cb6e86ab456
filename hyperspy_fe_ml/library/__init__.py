"""Reference spectra of the Fe L2,3 edge.

Multiplet library (simulated with edrixs, shipped with the package, calibrated to
experiment): :func:`reference_spectrum` gives one spectrum on any energy axis and
:func:`draw_library_spectra` random spectra with labels for training. Both need
numpy and numba only; regenerating the library (``fe-ml simulate``) needs the
optional edrixs dependency (``pip install hyperspy-fe-ml[simulate]``).

Submodules: ``multiplet`` (the physics), ``generate`` (grid, Dask, ``fe-ml
simulate``), ``shipped`` (file format), ``calibration`` (fitted energy scale and
default broadening), ``reference`` (broadened spectra); loaders of other sources:
``feff`` (Materials Project / FEFF), ``quanty``, ``standards`` (measured spectra),
all returning :class:`LabelledSpectrum` records.
"""

from hyperspy_fe_ml.library.feff import (
    iter_l_edge_database,
    read_pymatgen_xas,
    read_xasdoc,
)
from hyperspy_fe_ml.library.quanty import read_quanty_spectrum
from hyperspy_fe_ml.library.records import LabelledSpectrum
from hyperspy_fe_ml.library.reference import (
    draw_library_spectra,
    library_parameter_set,
    reference_spectrum,
)
from hyperspy_fe_ml.library.shipped import load_library
from hyperspy_fe_ml.library.standards import (
    find_standards_dir,
    read_standard,
    read_standards_dir,
)

__all__ = [
    "LabelledSpectrum",
    "draw_library_spectra",
    "find_standards_dir",
    "iter_l_edge_database",
    "library_parameter_set",
    "load_library",
    "read_pymatgen_xas",
    "read_quanty_spectrum",
    "read_standard",
    "read_standards_dir",
    "read_xasdoc",
    "reference_spectrum",
]
