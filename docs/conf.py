"""Sphinx configuration: the API reference built from the numpydoc docstrings (tests/test_docs.py
builds it with warnings as errors)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

project = "deepgami"
author = "deepgami contributors"
extensions = ["sphinx.ext.autodoc", "numpydoc", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# The API pages and the user docs; the notebook runs in the tests (tests/test_docs.py), not here.
include_patterns = ["index.rst", "api/*.rst", "usage.md", "output.md", "pipeline.md"]
exclude_patterns = ["_build"]
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_typehints = "none"  # numpydoc shows the parameters; signatures keep their annotations short
autodoc_member_order = "bysource"
myst_heading_anchors = 3
html_theme = "alabaster"
# The user docs show CSV samplesheets in ```csv blocks, a lexer Pygments lacks: shown as plain text.
suppress_warnings = ["myst.header", "myst.xref_missing", "misc.highlighting_failure"]
