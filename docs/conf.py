"""Sphinx configuration: the API reference from the docstrings, guides and notebooks in MyST.

Build offline with ``sphinx-build -W --keep-going -b html docs docs/_build/html``. The
notebooks are rendered from their committed outputs; the docs build never executes them.
"""

from __future__ import annotations

import re

import lrjax

project = "lrjax"
author = "the lrjax authors"
copyright = "the lrjax authors"
release = lrjax.__version__
version = lrjax.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",
]

source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "notebooks/images", "**/.ipynb_checkpoints"]

# Docstrings are Google style (STYLE.md).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
# The source text of defaults (``sgd``, not ``<function sgd at 0x...>``).
autodoc_preserve_defaults = True
autodoc_type_aliases = {"ScalarOrSchedule": "optax.ScalarOrSchedule"}
add_module_names = False
# A reference to an lrjax name that does not resolve is an error; other libraries'
# names (jax, optax, numpy) are left as text, since the build is offline.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!lrjax\b).*")]

# The notebooks are executed by the test suite and committed with their outputs.
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"lrjax {release}"


_DEFAULT = re.compile(r"\bdefault\(((?:[^()]|\([^()]*\))*)\)")


def _plain_defaults(app, what, name, obj, options, signature, return_annotation):
    """Shows ``default(0.9)``, the marker a float default is wrapped in, as ``0.9``."""
    if signature:
        signature = _DEFAULT.sub(r"\1", signature)
    return signature, return_annotation


def setup(app):
    app.connect("autodoc-process-signature", _plain_defaults)
