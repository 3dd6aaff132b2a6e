"""The documentation site covers every public name, every notebook, and its code runs.

The site itself is built by ``.ci/run`` with warnings as errors (``sphinx-build -W``);
these tests check what a build that succeeds would still leave out.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import re

import pytest
from helpers import run_example

import lrjax
import lrjax.plotting
from lrjax import schedules

ROOT = pathlib.Path(__file__).parent.parent
DOCS = ROOT / "docs"
DIRECTIVE = re.compile(r"^\.\. (?:auto(?:function|class)|(?:current)?module):: (\S+)", re.M)


def _public_names() -> set[str]:
    names = set()
    for module in (lrjax, schedules, lrjax.plotting):
        for name, obj in vars(module).items():
            if name.startswith("_") or inspect.ismodule(obj):
                continue
            if module is lrjax.plotting and getattr(obj, "__module__", None) != module.__name__:
                continue  # what plotting imports, not what it defines
            names.add(f"{module.__name__}.{name}")
    return names


def _documented_names() -> list[str]:
    """Every name an API page documents, qualified by the module the page sets."""
    documented = []
    for page in sorted((DOCS / "api").glob("*.md")):
        module = None
        for target in DIRECTIVE.findall(page.read_text()):
            if target.startswith("lrjax"):
                module = target
            else:
                assert module is not None, f"{page.name}: {target} before any module"
                documented.append(f"{module}.{target}")
    return documented


def test_the_reference_documents_every_public_name_once():
    documented = _documented_names()
    assert len(documented) == len(set(documented)), "a name documented twice"
    public = _public_names()
    assert len(public) > 80
    assert sorted(public - set(documented)) == [], "public but not in the reference"
    assert sorted(set(documented) - public) == [], "in the reference but not public"


def test_every_public_name_has_a_docstring_with_a_summary():
    for qualified in _public_names():
        module, _, name = qualified.rpartition(".")
        doc = inspect.getdoc(getattr(importlib.import_module(module), name))
        assert doc and doc.split("\n")[0].strip(), qualified


def test_every_notebook_is_in_the_site_with_its_outputs():
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 6
    index = (DOCS / "index.md").read_text()
    for name in notebooks:
        assert f"notebooks/{name}\n" in index, name
    assert (DOCS / "notebooks").resolve() == (ROOT / "notebooks").resolve()
    # Rendered from the committed outputs: the docs build never runs a notebook.
    assert re.search(r'^nb_execution_mode = "off"$', (DOCS / "conf.py").read_text(), re.M)


def test_every_guide_is_in_the_site():
    index = (DOCS / "index.md").read_text()
    guides = sorted(p.stem for p in (DOCS / "guides").glob("*.md"))
    topics = {"schedules", "methods", "lr_free", "adapting", "finding", "sweeps", "porting"}
    assert topics <= set(guides)
    for name in guides:
        assert f"guides/{name}\n" in index, name


def test_what_the_guides_include_from_the_readme_exists():
    """Every include's markers are in the file it names (the README, RESULTS.md), once."""
    includes = 0
    for page in DOCS.rglob("*.md"):
        text = page.read_text()
        pattern = r"```\{include\} (.+)\n:start-after: (.+)\n:end-before: (.+)\n"
        for source, start, end in re.findall(pattern, text):
            included = (page.parent / source).resolve().read_text()
            assert included.count(start) == 1 and included.count(end) == 1, (page.name, start)
            assert included.index(start) < included.index(end)
            includes += 1
    assert includes >= 6


def _blocks() -> list[tuple[str, int, str]]:
    blocks = []
    for page in [DOCS / "index.md", *sorted((DOCS / "guides").glob("*.md"))]:
        found = re.findall(r"^```python\n(.*?)^```", page.read_text(), re.S | re.M)
        blocks += [(page.relative_to(DOCS).as_posix(), i, code) for i, code in enumerate(found)]
    return blocks


BLOCKS = _blocks()


def test_the_guides_have_code():
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize(("page", "index", "code"), BLOCKS, ids=[f"{p}-{i}" for p, i, _ in BLOCKS])
def test_every_python_block_of_the_site_runs(page, index, code, capsys):
    run_example(code, f"docs/{page}[{index}]", {"__name__": "__docs__"})
