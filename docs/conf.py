"""Sphinx configuration of the sktail documentation.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
(``pip install -e ".[docs]"``). Everything builds offline: no intersphinx, no
remote assets at build time.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sktail  # noqa: E402

project = "sktail"
author = "sktail developers"
copyright = "sktail developers"
release = version = sktail.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# results.md is written by the benchmark scripts and shown inside benchmarks.md.
exclude_patterns = ["_build", "results.md", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

html_theme = "furo"
html_title = f"sktail {release}"
html_static_path = []

RESULTS = HERE / "results.md"
RESULTS_MARKER = "<!-- results -->"
# benchmarks.md keeps a short pointer to results.md between the two markers, so that the
# page read raw (on GitHub, in an editor) is not empty; the build replaces the pointer.
RESULTS_END = "<!-- /results -->"


def _insert_results(app, docname, source):
    """Put ``results.md`` into the results page, or say that results are pending."""
    if docname != "benchmarks" or RESULTS_MARKER not in source[0]:
        return
    if RESULTS.exists():
        app.env.note_dependency(str(RESULTS))
        body = "```{include} results.md\n:heading-offset: 1\n```\n"
    else:
        body = (
            "Results are pending: they appear here once `docs/results.md` is written by the "
            "benchmark scripts. "
            "Until then, {doc}`quickstart` shows how to run the comparison yourself "
            "(`sktail demo`), and the paper's reference numbers are listed above.\n"
        )
    start = source[0].index(RESULTS_MARKER)
    end = source[0].find(RESULTS_END, start)
    end = start + len(RESULTS_MARKER) if end < 0 else end + len(RESULTS_END)
    source[0] = source[0][:start] + body + source[0][end:]


def setup(app):
    app.connect("source-read", _insert_results)
