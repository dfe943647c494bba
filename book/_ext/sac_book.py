"""Local Sphinx extension for the sac_lit book.

1. ``read_notebook``: a myst-nb reader for ``.ipynb`` (registered through ``nb_custom_formats``) that
   turns nbdev's ``#|`` directive lines into myst-nb cell tags and removes them from the shown code:
   ``hide`` -> ``remove-cell``, ``eval: false`` -> ``skip-execution``, ``echo: false`` -> ``remove-input``,
   ``output: false`` -> ``remove-output``, ``code-fold: true`` -> ``hide-input``. A cell left empty
   (``#| default_exp``) is removed.
2. Kernel-free charts: sets ``SAC_LIT_BOOK=1`` for the executing kernels and serves the offline Vega
   bundle once per page as ``_static/vega-bundle.js`` (see ``sac_lit.utils.kernel_free``), with a
   small stylesheet ``sac-lit.css`` that lets an 80-character code line fit its box.
3. Removes the inline scripts Sphinx adds twice, which made every page throw
   ``Identifier 'THEBE_JS_URL' has already been declared`` (see ``_dedupe_js_files``).
4. Declares three extensions safe for parallel reading (they do not say), so that ``book/build.py``
   executes the notebooks side by side.
5. Publishing (``sac_publish.py``): repository links and launch buttons from the build's environment,
   the execution cache's folder, and executed notebooks as the pages' downloads.
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat

_TAGS = {
    ("hide", ""): "remove-cell",
    ("eval", "false"): "skip-execution",
    ("echo", "false"): "remove-input",
    ("output", "false"): "remove-output",
    ("code-fold", "true"): "hide-input",
}


def _directive(line: str) -> tuple[str, str]:
    body = line.strip()[2:].strip()
    key, _, value = body.partition(":") if ":" in body.split(" ")[0] else body.partition(" ")
    return key.strip(), value.strip().lower()


def strip_directives(cell) -> None:
    "Move leading `#|` lines of a code cell into tags; mutate the cell in place."
    lines = cell.source.splitlines()
    n = 0
    while n < len(lines) and lines[n].lstrip().startswith("#|"):
        n += 1
    if not n:
        return
    tags = list(cell.metadata.get("tags", []))
    for line in lines[:n]:
        tag = _TAGS.get(_directive(line))
        if tag and tag not in tags:
            tags.append(tag)
    cell.source = "\n".join(lines[n:]).lstrip("\n")
    if not cell.source.strip() and "remove-cell" not in tags:
        tags.append("remove-cell")
    if tags:
        cell.metadata["tags"] = tags


def read_notebook(text: str) -> nbformat.NotebookNode:
    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            strip_directives(cell)
    return nb


def _add_vega_bundle(app, config) -> None:
    from sac_lit.utils import vega_bundle_script

    static = Path(app.outdir).parent / "sac_lit_static"  # _build/sac_lit_static, beside _build/html
    static.mkdir(parents=True, exist_ok=True)
    (static / "vega-bundle.js").write_text(vega_bundle_script(), encoding="utf-8")
    (static / "sac-lit.css").write_text(_CSS, encoding="utf-8")
    config.html_static_path = list(config.html_static_path) + [str(static)]
    app.add_js_file("vega-bundle.js")
    app.add_css_file("sac-lit.css")


# The book's code lines are at most 80 characters. At the theme's 14 px a code box in a 1280 px
# window holds 77 of them; at 13 px it holds 83, so no code input or output scrolls sideways.
# On a phone (390 px) nothing may make the page wider than the window: a long word (a chapter title's
# "reparameterisation") or a long code name in the prose (`torch.distributions.Categorical(...)`,
# which Sphinx keeps on one line with span.pre {white-space: nowrap}) wraps; an inline formula wider
# than the column scrolls in its own box, where the theme's span.math {overflow: hidden} cut it off.
_CSS = """main div.highlight pre, main div.cell_output pre { font-size: 13px; }
main article { overflow-wrap: break-word; }
main code.literal span.pre { white-space: normal; }
main span.math { overflow-x: auto; overflow-y: hidden; }
"""


def _dedupe_js_files(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated inline scripts (the cause of ``Identifier 'THEBE_JS_URL' has already been declared``).

    sphinx-thebe (at ``env-before-read-docs``) and sphinx-togglebutton (at ``builder-inited``) call
    ``app.add_js_file(None, body=...)`` after the HTML builder exists, so Sphinx 7.4 adds the script to
    the builder with filename ``None`` *and* to its registry. ``StandaloneHTMLBuilder.prepare_writing``
    then re-adds every registry asset as ``add_js_file(filename or '', ...)``; ``_JavaScript(None, ...)``
    and ``_JavaScript('', ...)`` compare unequal, so each inline script lands in the page twice. A
    repeated ``var`` is harmless, but sphinx-thebe's ``const THEBE_JS_URL`` throws on the second copy.
    Treat ``None`` and ``''`` as the same filename and keep the first copy."""
    seen, unique = set(), []
    for js in context.get("script_files", []):
        attrs = getattr(js, "attributes", {}) or {}
        key = (getattr(js, "filename", str(js)) or "", tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


# Extensions that leave Sphinx's parallel reading undeclared, so that Sphinx reads serially. Each only
# adds static files or works after reading (multitoc numbering renumbers the merged table of contents;
# the LaTeX one acts on LaTeX builds), so they are safe to read in parallel (book/build.py).
PARALLEL_SAFE = ("sphinx_multitoc_numbering", "sphinx-mathjax-offline", "sphinx_jupyterbook_latex")


def _declare_parallel_safe(app) -> None:
    for name in PARALLEL_SAFE:
        if name in app.extensions:
            app.extensions[name].parallel_read_safe = True


def setup(app):
    import sac_publish  # beside this file: repository links, launch buttons, cache, downloads
    sac_publish.setup(app)
    os.environ["SAC_LIT_BOOK"] = "1"
    app.connect("builder-inited", _declare_parallel_safe)
    app.connect("config-inited", _add_vega_bundle)
    app.connect("html-page-context", _dedupe_js_files, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
