"""The Sphinx documentation builds with warnings as errors.

The build runs on a copy of ``docs/`` and ``examples/`` (sphinx-gallery writes its
pages into the source tree), in a subprocess, as ``python -m sphinx -W --keep-going``.
The gallery pages are generated without running the examples
(``tests/test_examples.py`` runs them), which keeps the build to seconds.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

pytestmark = pytest.mark.skipif(
    not (ROOT / "docs" / "conf.py").is_file(), reason="not run from a source checkout"
)


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    ignore = shutil.ignore_patterns(
        "_build", "auto_examples", "__pycache__", ".ipynb_checkpoints"
    )
    for folder in ("docs", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=ignore)
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    html = tmp_path / "html"
    env = {**os.environ, "FE_ML_DOCS_RUN_EXAMPLES": "0", "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(tmp_path / "docs"),
            str(html),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    warnings = [
        line
        for line in result.stderr.splitlines()
        if "WARNING" in line or "ERROR" in line or "CRITICAL" in line
    ]
    assert result.returncode == 0, "\n".join(warnings) or result.stderr[-4000:]
    for page in (
        "index.html",
        "api/signals.html",
        "api/training.html",
        "auto_examples/index.html",
        "auto_examples/quick_start.html",
        "auto_examples/train_your_own_model.html",
        "model_card.html",
        "performance.html",
        "citing.html",
    ):
        assert (html / page).is_file(), page
    api = (html / "api" / "signals.html").read_text(encoding="utf-8")
    assert "predict_fe_state" in api
