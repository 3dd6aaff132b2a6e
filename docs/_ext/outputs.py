"""Shows what the guides' examples print and draw, run while the site is built.

A guide marks an example by a line ``<!-- docs:output -->`` after its closing fence
(``<!-- docs:output the figure's description -->`` when it draws). The build runs the
example in a namespace of its own, as a fresh session would (as the test suite runs
every example), and puts what it printed below it, then each figure it left open. On
GitHub the marker is an invisible comment. An example that raises is a build warning,
so an error under ``-W``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import re
import traceback

from sphinx.util import logging

logger = logging.getLogger(__name__)

# A fenced Python example, a blank line or none, then the marker.
_MARKED = re.compile(
    r"^```python\n(?P<code>.*?)^```\n\n?<!-- docs:output(?: (?P<alt>[^\n]*?))? -->$",
    re.S | re.M,
)


def _figures() -> list[str]:
    """Every open figure as a PNG (base64), then closed."""
    import matplotlib.pyplot as plt

    images = []
    for number in plt.get_fignums():
        figure = plt.figure(number)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(figure)
        images.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    return images


def _run(code: str, where: str) -> tuple[str, list[str], str | None]:
    """Runs ``code``; returns what it printed, its figures and any error."""
    import jax
    import matplotlib

    matplotlib.use("Agg")
    printed = io.StringIO()
    error = None
    try:
        with contextlib.redirect_stdout(printed), jax.numpy_dtype_promotion("standard"):
            exec(compile(code, where, "exec"), {"__name__": "__docs__"})
    except Exception:
        error = traceback.format_exc(limit=-3)
    return printed.getvalue(), _figures(), error


def _outputs(app, docname, source):
    text = source[0]
    if "<!-- docs:output" not in text:
        return
    pieces, start = [], 0
    for match in _MARKED.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        where = f"{docname}.md, the example at line {line}"
        printed, figures, error = _run(match.group("code"), where)
        if error is not None:
            logger.warning(f"the example raised:\n{error}", location=(docname, line))
        if figures and not match.group("alt"):
            logger.warning(
                "the example draws: describe its figure in the marker", location=(docname, line)
            )
        shown = []
        if printed.strip():
            fence = "````" if "```" in printed else "```"
            shown.append(
                f"{fence}{{code-block}} text\n:class: output\n\n{printed.rstrip()}\n{fence}"
            )
        for data in figures:
            image = f"data:image/png;base64,{data}"
            shown.append(
                f"```{{image}} {image}\n:alt: {match.group('alt')}\n:class: output-figure\n```"
            )
        end = match.end() - len(match.group(0).rsplit("\n", 1)[-1])
        pieces += [text[start:end], "\n\n".join(shown)]
        start = match.end()
    if text.count("<!-- docs:output") != len(pieces) // 2:
        logger.warning(
            "a docs:output marker that follows no ```python example", location=(docname, 1)
        )
    source[0] = "".join(pieces) + text[start:]


def setup(app):
    app.connect("source-read", _outputs)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
