"""Sphinx configuration: numpydoc API reference, MyST Markdown pages, example gallery.

Build (as the test suite does, warnings are errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The gallery pages are generated from ``examples/*.py`` without running them (the test
suite runs every example); set ``FE_ML_DOCS_RUN_EXAMPLES=1`` to execute them and
embed their figures. Nothing is downloaded at build time.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import hyperspy_fe_ml  # noqa: E402

project = "hyperspy_fe_ml"
author = "hyperspy_fe_ml developers"
copyright = "the hyperspy_fe_ml developers, GPL-3.0-or-later"  # noqa: A001
version = release = hyperspy_fe_ml.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "scripts",
    "auto_examples/*.ipynb",
    "**.ipynb_checkpoints",
]
suppress_warnings = ["config.cache"]

# -- MyST ------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# -- autodoc / numpydoc ----------------------------------------------------------------
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc: types live in the signatures, not repeated
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = False

# -- sphinx-gallery --------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/.*\.py$",
    "plot_gallery": os.environ.get("FE_ML_DOCS_RUN_EXAMPLES", "0") == "1",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
}

# -- HTML ------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"hyperspy_fe_ml {release}"
html_static_path = []
