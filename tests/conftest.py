"""Shared test configuration: the Hypothesis profiles of the property-based tests.

``ci``
    Derandomized (the same examples on every run, no example database), so a CI
    run is reproducible; used when the ``CI`` environment variable is set (GitHub
    Actions sets it, so does ``.ci/run``).
``dev``
    Random examples, failures remembered in ``.hypothesis/`` and replayed first;
    the default elsewhere.

``HYPOTHESIS_PROFILE=ci python -m pytest tests/test_properties.py`` picks one
explicitly. Either way every test sets its own ``max_examples`` (the time budget)
and no deadline: the first call of a numba kernel loads its compiled code.
"""

import os

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the property tests skip themselves without hypothesis
    pass
else:
    _common = {
        "deadline": None,
        "print_blob": True,
        "suppress_health_check": [HealthCheck.too_slow],
    }
    settings.register_profile("ci", derandomize=True, database=None, **_common)
    settings.register_profile("dev", **_common)
    settings.load_profile(
        os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
    )
