"""Publishing the book: links to its repository, launch buttons, cached execution and downloads.

Nothing here is hard-coded to one repository. The repository comes from the build's environment:

* ``BOOK_REPOSITORY`` (``owner/name`` or ``https://github.com/owner/name``; ``make book
  REPOSITORY=owner/name`` sets it), else ``GITHUB_REPOSITORY``, which GitHub sets in its workflows.
  Neither set: no repository, issues, edit or launch buttons, and no link to a repository.
* ``BOOK_BRANCH``: the branch the edit button opens (default ``GITHUB_REF_NAME``, else ``main``).
* ``BOOK_LAUNCH_REF``: the branch Colab and Binder open (default ``book-notebooks``). The publishing
  workflow pushes the executed notebooks there, each with ``BOOK_SOURCE`` filled in (see ``LAUNCH_CELL``),
  because a notebook stored on the default branch cannot name the commit it belongs to.
* ``BOOK_COMMIT``: the commit the book is built from (default ``GITHUB_SHA``, else ``git rev-parse HEAD``).

The notebooks' outputs depend on more than their code cells, which is all jupyter-cache compares: on
the package they import, the results they read, the pinned libraries and ``SAC_LIT_QUICK``. So the
cache lives in a folder named after all of these (``execution_cache_dir``), and a change to any of them
re-executes every chapter, while an edit of one chapter's prose re-executes none.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import nbformat

DEFAULT_LAUNCH_REF = "book-notebooks"
COLAB_URL = "https://colab.research.google.com"
BINDER_URL = "https://mybinder.org"

# The first code cell of every notebook of the book (tests/test_publish.py checks that they match).
LAUNCH_CELL = '''#| hide
# Opened in Google Colab, this cell fetches the book's files from the commit
# this page was built from, installs sac_lit from them and moves to their
# notebooks/ folder. Elsewhere it does nothing.
# For the short runs, run `%env SAC_LIT_QUICK=1` first.
BOOK_SOURCE = ""  # "https://github.com/OWNER/REPO@COMMIT", set when published
import sys
if BOOK_SOURCE and "google.colab" in sys.modules:
    import os, subprocess
    url, commit = BOOK_SOURCE.rsplit("@", 1)
    if not os.path.isdir("/content/book"):
        for cmd in (f"git clone -q {url} /content/book",
                    f"git -C /content/book checkout -q {commit}",
                    "pip install -q -e '/content/book[book]'"):
            subprocess.run(cmd, shell=True, check=True)
    os.chdir("/content/book/notebooks")'''

_SOURCE_LINE = 'BOOK_SOURCE = ""'


def book_repository(environ=os.environ) -> str | None:
    "`owner/name` of the book's GitHub repository, or None when the build names none."
    given = (environ.get("BOOK_REPOSITORY") or environ.get("GITHUB_REPOSITORY") or "").strip()
    given = given.removeprefix("https://github.com/").removesuffix(".git").strip("/")
    if not given:
        return None
    if given.count("/") != 1 or not all(given.split("/")):
        raise ValueError(f"BOOK_REPOSITORY must be owner/name or https://github.com/owner/name, "
                         f"not {given!r}")
    return given


def book_commit(root: Path, environ=os.environ) -> str | None:
    "The commit the book is built from: BOOK_COMMIT, GITHUB_SHA, or the checkout's HEAD."
    given = environ.get("BOOK_COMMIT") or environ.get("GITHUB_SHA")
    if given:
        return given
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                             capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def theme_options(repo: str | None, environ=os.environ) -> dict:
    "The sphinx-book-theme options for `repo`: every button, or (None) none of them."
    buttons = ("use_repository_button", "use_issues_button", "use_edit_page_button")
    if repo is None:
        return {**{b: False for b in buttons}, "repository_url": "", "launch_buttons": {}}
    branch = environ.get("BOOK_BRANCH") or environ.get("GITHUB_REF_NAME") or "main"
    return {**{b: True for b in buttons},
            "repository_url": f"https://github.com/{repo}", "repository_branch": branch,
            "path_to_docs": "",
            "launch_buttons": {"colab_url": COLAB_URL, "binderhub_url": BINDER_URL,
                               "notebook_interface": "jupyterlab"}}


def stamp_launch_cell(nb, source: str) -> bool:
    "Fill BOOK_SOURCE in the notebook's launch cell; False if it has none."
    for cell in nb.cells:
        lines = cell.source.split("\n")
        for i, line in enumerate(lines):
            if cell.cell_type == "code" and line.startswith(_SOURCE_LINE):
                lines[i] = f"BOOK_SOURCE = {source!r}"
                cell.source = "\n".join(lines)
                return True
    return False


def execution_cache_dir(root: Path, build_dir: Path, environ=os.environ) -> Path:
    "jupyter-cache's folder for this build: named after what the outputs depend on besides code cells."
    mode = "quick" if environ.get("SAC_LIT_QUICK") else "full"
    h = hashlib.sha256(mode.encode())
    files = [*(root / "sac_lit").rglob("*.py"), *(root / "benchmarks").rglob("*"),
             *(p for p in (root / "notebooks").iterdir() if p.suffix != ".ipynb"),
             root / "requirements.txt", root / "pyproject.toml"]
    for path in sorted(p for p in files if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return build_dir / ".jupyter_cache" / f"{mode}-{h.hexdigest()[:16]}"


def _prune(cache: Path) -> None:
    "Remove this mode's caches for other package versions (they can never match again)."
    mode = cache.name.split("-")[0]
    for old in cache.parent.glob(f"{mode}-*"):
        if old != cache and old.is_dir():
            shutil.rmtree(old)


def _configure(app, config) -> None:
    root = Path(app.srcdir)
    repo = book_repository()
    options = dict(config.html_theme_options)
    options.update(theme_options(repo))
    config.html_theme_options = options
    app.sac_lit_launch = None
    if repo:
        app.sac_lit_launch = (repo, os.environ.get("BOOK_LAUNCH_REF") or DEFAULT_LAUNCH_REF,
                              options["repository_branch"], book_commit(root))
    if config.nb_execution_mode == "cache":
        cache = execution_cache_dir(root, Path(app.outdir).parent)
        cache.mkdir(parents=True, exist_ok=True)
        _prune(cache)
        config.nb_execution_cache_path = str(cache)
        _create_cache_db(cache)


def _create_cache_db(cache: Path) -> None:
    """Create jupyter-cache's database before the notebooks are read side by side (book/build.py):
    two processes creating it at once fail with "table settings already exists"."""
    from jupyter_cache import get_cache
    get_cache(str(cache)).db.dispose()


def _launch_from_published_branch(app, pagename, templatename, context, doctree) -> None:
    "Point Colab and Binder at the branch of stamped notebooks instead of the edit branch."
    if not app.sac_lit_launch:
        return
    repo, launch_ref, branch, _ = app.sac_lit_launch
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group["buttons"]:
            url = button.get("url", "")
            url = url.replace(f"/github/{repo}/blob/{branch}/", f"/github/{repo}/blob/{launch_ref}/")
            url = url.replace(f"/v2/gh/{repo}/{branch}?", f"/v2/gh/{repo}/{launch_ref}?")
            button["url"] = url


def _executed_downloads(app, exception) -> None:
    """The page's .ipynb download: the executed notebook (outputs, no nbdev directives), with its
    launch cell stamped when the repository and commit are known."""
    if exception is not None or app.builder.format != "html":
        return
    executed = Path(app.outdir).parent / "jupyter_execute"
    source = None
    if app.sac_lit_launch and app.sac_lit_launch[3]:
        repo, _, _, commit = app.sac_lit_launch
        source = f"https://github.com/{repo}@{commit}"
    for docname in app.env.found_docs:
        if not str(app.env.doc2path(docname)).endswith(".ipynb"):
            continue
        src = executed / f"{docname}.ipynb"
        dst = Path(app.outdir) / "_sources" / f"{docname}.ipynb"
        if not src.exists() or not dst.parent.is_dir():
            continue
        nb = nbformat.read(src, as_version=4)
        if source:
            stamp_launch_cell(nb, source)
        nbformat.write(nb, dst)


def setup(app) -> None:
    app.connect("config-inited", _configure)
    app.connect("html-page-context", _launch_from_published_branch, priority=600)
    app.connect("build-finished", _executed_downloads)
