"""HyperSpy model components for the Fe L2,3 edge.

Registered under ``components1D`` in ``hyperspy_extension.yaml`` (module
``hyperspy_fe_ml.components``), so models that hold them save and load like models
of HyperSpy's own components:

* :class:`FeL23Edge`: the Fe L2,3 white lines and their continuum as a mixture of the
  four calibrated multiplet reference spectra of the shipped library (Fe2+/Fe3+ on
  octahedral/tetrahedral sites), with the Fe3+ fraction, the tetrahedral fraction,
  an energy shift and a Gaussian broadening as parameters;
* :class:`FeL23ContinuumStep`: the 2:1 double arctan continuum step of van Aken &
  Liebscher (2002), for models that describe the white lines with other components.

Modules: ``basis`` (the tabulated reference spectra, pure NumPy, no HyperSpy),
``fe_l23_edge`` and ``continuum_step`` (the components).
"""

from hyperspy_fe_ml.components.basis import (
    BASIS_SITES,
    FeL23Basis,
    fe_l23_basis,
)
from hyperspy_fe_ml.components.continuum_step import FeL23ContinuumStep
from hyperspy_fe_ml.components.fe_l23_edge import FeL23Edge

__all__ = [
    "BASIS_SITES",
    "FeL23Basis",
    "FeL23ContinuumStep",
    "FeL23Edge",
    "fe_l23_basis",
]
