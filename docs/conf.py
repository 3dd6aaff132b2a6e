"""Sphinx configuration: the API reference from the docstrings, guides and notebooks in MyST.

Build offline with ``sphinx-build -W --keep-going -b html docs docs/_build/html``. The
notebooks are rendered from their committed outputs; the docs build never executes them.
The guides' examples marked ``<!-- docs:output -->`` run during the build
(``_ext/outputs.py``), which shows what they print and draw. MathJax is served from the
site itself (``sphinx-mathjax-offline``), so the math renders without a network.
"""

from __future__ import annotations

import html.parser
import inspect
import pathlib
import re
import sys

from sphinx.util import logging

import lrjax
import lrjax.plotting
from lrjax import schedules

sys.path.insert(0, str(pathlib.Path(__file__).parent / "_ext"))

project = "lrjax"
author = "the lrjax authors"
copyright = "the lrjax authors"
release = lrjax.__version__
version = lrjax.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
    "myst_nb",
    "outputs",
]

source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "_ext", "notebooks/images", "**/.ipynb_checkpoints"]

# Docstrings are Google style (STYLE.md).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
# The source text of defaults (``sgd``, not ``<function sgd at 0x...>``).
autodoc_preserve_defaults = True
autodoc_type_aliases = {"ScalarOrSchedule": "optax.ScalarOrSchedule"}
# The summary tables at the top of the API pages are built from the entries below them
# (``_summaries``): no generated stub pages.
autosummary_generate = False
add_module_names = False
# A reference to an lrjax name that does not resolve is an error; other libraries'
# names (jax, optax, numpy) are left as text, since the build is offline.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!lrjax\b).*")]

# The notebooks are executed by the test suite and committed with their outputs.
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# The copy button copies code without the prompts of doctest examples and without
# the printed output shown below an example.
copybutton_prompt_text = r">>> |\.\.\. "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True
copybutton_selector = "div:not(.output) > div.highlight pre"

html_theme = "furo"
html_title = f"lrjax {release}"
html_static_path = ["_static"]
html_css_files = ["lrjax.css"]

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------ public names


def _public_names() -> dict[str, str]:
    """``name -> qualified name`` of every public name, lrjax's own before the others."""
    names: dict[str, str] = {}
    for module in (lrjax.plotting, schedules, lrjax):
        for name, obj in vars(module).items():
            if name.startswith("_") or inspect.ismodule(obj):
                continue
            if module is lrjax.plotting and obj.__module__ != module.__name__:
                continue  # what plotting imports, not what it defines
            names[name] = f"{module.__name__}.{name}"
    return names


PUBLIC = _public_names()

# What a signature spells with an internal name, in public words.
_SPELLED = {
    "Array": "jax.Array",
    "OptimizerFactory": "Callable[[optax.ScalarOrSchedule], GradientTransformation]",
}
# A dotted path with a private part: ``_hyperparams.HyperparamsState``,
# ``jax.jaxlib._jax.Array``, ``_finding._results.SweepResult``.
_PRIVATE_PATH = re.compile(r"~?\b(?:\w+\.)*_[a-z]\w*\.(?:\w+\.)*([A-Za-z]\w*)\b")
_ANY = r"(?:~typing\.)?Any"
_DEFAULT = re.compile(r"\b(?:\w+\.)?default\(((?:[^()]|\([^()]*\))*)\)")
_MASK = "optax.Params | Callable[[optax.Params], optax.Params] | None"
_AXES = "matplotlib.axes.Axes"


def _public_path(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _SPELLED:
        return _SPELLED[name]
    # ``~`` shows the name alone, linked to its entry.
    return f"~{PUBLIC[name]}" if name in PUBLIC else match.group(0)


def _public(text: str) -> str:
    """``text`` (a signature or a type) with every internal path in public words."""
    text = _DEFAULT.sub(r"\1", text)
    return _PRIVATE_PATH.sub(_public_path, text)


def _public_signature(app, what, name, obj, options, signature, return_annotation):
    """Signatures in public names: ``default(0.9)`` (the marker a float default is
    wrapped in) as ``0.9``, private module paths as the public name, and the ``Any`` of
    masks and of the plots' axes as what they take."""
    if signature:
        signature = _public(signature)
        signature = re.sub(rf"\bmask: {_ANY} = None", f"mask: {_MASK} = None", signature)
    if return_annotation:
        return_annotation = _public(return_annotation)
    plots = name.startswith("lrjax.plotting.") or name.endswith("Result.plot")
    if plots and signature:
        signature = re.sub(rf"\bax: {_ANY} = None", f"ax: {_AXES} | None = None", signature)
    if plots and re.fullmatch(_ANY, return_annotation or ""):
        return_annotation = _AXES
    return signature, return_annotation


def _public_docstring(app, what, name, obj, options, lines):
    """The types napoleon writes for attributes (``:type: jax.jaxlib._jax.Array``)."""
    lines[:] = [_public(line) if line.lstrip().startswith(":type") else line for line in lines]


# ------------------------------------------------------ the tables of the README

# A code span in a table row that starts with a public name: ``adam(lr, *, b1, ...)``,
# ``lrjax.sgd(...)``, ``warmup(cosine_decay(lr, T), W)``.
_SPAN = re.compile(r"(?<!`)`((?:lrjax\.)?(?:schedules\.)?([a-z_]\w*)\b[^`]*)`(?!`)")


# A cell that names another library's function: ``optax `add_decayed_weights(...)` ``.
_OTHER = re.compile(r"^ *(?:torch|timm|Keras|optax|mup|prodigyopt|dadaptation|dog|schedulefree) ")


def _link_cell(cell: str) -> str:
    return cell if _OTHER.match(cell) else _SPAN.sub(_link_span, cell)


def _link_span(match: re.Match[str]) -> str:
    text, name = match.group(1), match.group(2)
    if name not in PUBLIC or text.startswith(("optax", "torch")) or "<" in text:
        return match.group(0)
    return f"{{py:obj}}`{text} <{PUBLIC[name]}>`"


# A link to a file of the repository: ``[`RESULTS.md`](benchmarks/RESULTS.md)``.
_FILE_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?!https?:|#)([^)\s]+)\)")


def _readme_for_the_site(app, relative_path, parent_docname, content):
    """The README as the site shows it: its tables link their lrjax names to the API
    entries, and its links to files of the repository name the file.

    The README is read on GitHub too, where MyST roles do not render, so it names
    functions in plain code spans; the site turns a span of a table row that starts
    with a public name into a reference to that name's entry. A link to a repository
    file is relative to the README, which the site does not hold: it shows the path.
    """
    if pathlib.Path(relative_path).name != "README.md":
        return
    lines = content[0].split("\n")
    code = False
    for i, line in enumerate(lines):
        code ^= line.startswith("```")
        if code or line.startswith("```"):
            continue
        if line.startswith("|"):
            line = "|".join(_link_cell(cell) for cell in line.split("|"))
        lines[i] = _FILE_LINK.sub(r"`\1`", line)
    content[0] = "\n".join(lines)


# ------------------------------------------------------------- API page summaries

_ENTRY = re.compile(r"^\.\. auto(?:function|class):: (\S+)$", re.M)
_MODULE = re.compile(r"^\.\. (?:current)?module:: (\S+)$", re.M)


def _summaries(app, docname, source):
    """Puts a table of every entry of an API page, with its summary line, above the first
    section: one list of names, the page's own."""
    if not docname.startswith("api/") or docname == "api/index":
        return
    text = source[0]
    names = _ENTRY.findall(text)
    modules = _MODULE.findall(text)
    if not names or not modules:
        return
    table = (
        "```{eval-rst}\n.. autosummary::\n   :nosignatures:\n\n"
        + "".join(f"   {name}\n" for name in names)
        + "```\n\n"
    )
    section = re.search(r"^## ", text, re.M)
    if section is not None:
        position = section.start()
    else:  # a page without sections: after the block that sets its module
        module = _MODULE.search(text)
        assert module is not None
        position = text.index("\n```\n", module.end()) + len("\n```\n")
        table = "\n" + table
    source[0] = text[:position] + table + text[position:]


# ----------------------------------------------------- no internal names in the site


class _Text(html.parser.HTMLParser):
    """The visible text of a page: no scripts, no styles, no tags."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        self._hidden += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


# What a reader must never see: the float-default marker, a private
# module path (``_chain.``, ``_loop.``, ``_state.``, ``jaxlib._jax.``).
_INTERNAL = re.compile(r"\bv\.default\(|\bdefault\(|(?<![\w/.-])_[a-z]\w*\.\w|\bjaxlib\b")


def _check_public_names(app, exception):
    """Warns (an error under ``-W``) for every internal name a page shows."""
    if exception is not None or app.builder.format != "html":
        return
    root = pathlib.Path(app.outdir)
    for page in sorted(root.rglob("*.html")):
        if page.relative_to(root).parts[0] in ("_modules", "_sources", "_static"):
            continue  # the highlighted source code, which may name anything
        parser = _Text()
        parser.feed(page.read_text(encoding="utf-8"))
        text = "".join(parser.parts)
        for match in _INTERNAL.finditer(text):
            context = text[max(0, match.start() - 60) : match.end() + 30].replace("\n", " ")
            name = page.relative_to(root).as_posix()
            logger.warning(f"{name} shows an internal name: ...{context}...")


def setup(app):
    app.connect("autodoc-process-signature", _public_signature)
    app.connect("autodoc-process-docstring", _public_docstring)
    app.connect("include-read", _readme_for_the_site)
    app.connect("source-read", _summaries)
    app.connect("build-finished", _check_public_names)
