"""Sphinx configuration: Markdown pages (MyST) and the API reference from the
numpydoc docstrings. Build with ``sphinx-build -W -b html docs <output>``."""
import leaky_kernel

project = "leaky_kernel"
author = "The leaky_kernel developers"
copyright = "The leaky_kernel developers"
version = release = leaky_kernel.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3

# numpydoc renders the sections; autodoc only finds the objects.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
autodoc_typehints = "none"

html_theme = "alabaster"
html_title = f"leaky_kernel {release}"
# Every parameter documented, none unknown, every return described: a build
# with warnings as errors fails otherwise. (See Also and Examples of each
# public function and class: tests/test_docs_snippets.py.)
numpydoc_validation_checks = {"PR01", "PR02", "RT01"}
