"""Imports run one way: signals → predict / classical → signal_tools → kernels.

The signal classes call :mod:`hyperspy_fe_ml.predict` and
:mod:`hyperspy_fe_ml.classical`; nothing below them may import the signal module
back (at module level or inside a function), or the layers knot together.
"""

import ast
from pathlib import Path

import pytest

import hyperspy_fe_ml

PACKAGE = Path(hyperspy_fe_ml.__file__).parent

#: Modules the signal classes call, and the modules below them.
BELOW_SIGNALS = [
    "predict.py",
    "classical.py",
    "signal_tools.py",
    "maps.py",
    "plot.py",
    "chunked.py",
    "energy_axis.py",
    "whiteline.py",
    "model.py",
    "training/train.py",
    "kernels/preprocess.py",
    "kernels/model_inputs.py",
]


def imported_modules(source: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` statement names."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            # ``from hyperspy_fe_ml import signals`` names the module as an alias.
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_parser_sees_imports_inside_functions():
    source = "def f():\n    from hyperspy_fe_ml.signals import _energy\n"
    assert "hyperspy_fe_ml.signals" in imported_modules(source)
    source = "from hyperspy_fe_ml import signals\n"
    assert "hyperspy_fe_ml.signals" in imported_modules(source)


@pytest.mark.parametrize("module", BELOW_SIGNALS)
def test_no_module_below_the_signals_imports_them(module):
    names = imported_modules((PACKAGE / module).read_text(encoding="utf-8"))
    assert "hyperspy_fe_ml.signals" not in names, (
        f"{module} imports hyperspy_fe_ml.signals; take what it needs from "
        "hyperspy_fe_ml.signal_tools instead"
    )


def test_signals_still_offer_the_shared_names():
    from hyperspy_fe_ml import signal_tools, signals

    assert signals.CANONICAL_ENERGY_EV is signal_tools.CANONICAL_ENERGY_EV
    assert signals.WHITE_LINE_WINDOW_EV == (704.0, 727.0)
