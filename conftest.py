"""Shared pytest set-up, for the tests and the docstring examples alike."""

import pytest


@pytest.fixture(autouse=True)
def _no_progressbar():
    """HyperSpy's progress bars off: they clutter test output and doctests."""
    from hyperspy.defaults_parser import preferences

    old = preferences.General.show_progressbar
    preferences.General.show_progressbar = False
    yield
    preferences.General.show_progressbar = old
