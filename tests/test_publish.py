"""Publishing: repository links and launch buttons from the build, the launch cell, downloads, the
execution cache, Binder's environment and the GitHub workflows (book/_ext/sac_publish.py)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import sac_publish  # noqa: E402

REPO = "octo-reader/sac-book"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _toc_notebooks() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


# --- the launch cell ---------------------------------------------------------------------------

def test_every_notebook_starts_with_the_launch_cell():
    notebooks = _toc_notebooks()
    assert len(notebooks) >= 19
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert first.source == sac_publish.LAUNCH_CELL, f"{path.name}: first code cell is not the launch cell"


def _run_launch_cell(source: str | None, on_colab: bool, content_exists: bool = False):
    "Execute the launch cell (stamped with `source`) with subprocess.run and os.chdir recorded."
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(sac_publish.LAUNCH_CELL)])
    if source is not None:
        assert sac_publish.stamp_launch_cell(nb, source)
    code = "\n".join(line for line in nb.cells[0].source.splitlines() if not line.startswith("#|"))
    calls, moved = [], []
    real = (subprocess.run, os.chdir, os.path.isdir, sys.modules.get("google.colab"))
    subprocess.run = lambda cmd, **kw: calls.append((cmd, kw))
    os.chdir = moved.append
    os.path.isdir = lambda p: content_exists if p == "/content/book" else real[2](p)
    if on_colab:
        sys.modules["google.colab"] = types.ModuleType("google.colab")
    try:
        exec(compile(code, "launch_cell", "exec"), {})
    finally:
        subprocess.run, os.chdir, os.path.isdir = real[:3]
        if on_colab:
            sys.modules.pop("google.colab")
    return calls, moved


def test_launch_cell_does_nothing_off_colab():
    assert _run_launch_cell(None, on_colab=False) == ([], [])
    assert _run_launch_cell(f"https://github.com/{REPO}@{COMMIT}", on_colab=False) == ([], [])
    assert _run_launch_cell(None, on_colab=True) == ([], [])  # not published: nothing to fetch


def test_launch_cell_on_colab_installs_the_built_commit():
    calls, moved = _run_launch_cell(f"https://github.com/{REPO}@{COMMIT}", on_colab=True)
    assert [c for c, _ in calls] == [
        f"git clone -q https://github.com/{REPO} /content/book",
        f"git -C /content/book checkout -q {COMMIT}",
        "pip install -q -e '/content/book[book]'"]
    assert all(kw == {"shell": True, "check": True} for _, kw in calls)
    assert moved == ["/content/book/notebooks"]
    # run again (or from another chapter in the same runtime): no second clone
    calls, moved = _run_launch_cell(f"https://github.com/{REPO}@{COMMIT}", on_colab=True,
                                    content_exists=True)
    assert calls == [] and moved == ["/content/book/notebooks"]


def test_the_book_extra_covers_the_notebooks_imports():
    "Colab's launch cell installs `.[book]`: every third-party import of the notebooks is in it."
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[\[<>=]", d)[0].lower() for d in
             project["dependencies"] + project["optional-dependencies"]["book"]}
    module_to_dist = {"PIL": "pillow", "vl_convert": "vl-convert-python", "IPython": None,
                      "sac_lit": None, "point_mass_sim": None, "onnxruntime": "onnxruntime"}
    seen = set()
    for path in _toc_notebooks():
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                seen |= set(re.findall(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", cell.source, re.M))
    missing = []
    for module in sorted(seen - set(sys.stdlib_module_names)):
        dist = module_to_dist.get(module, module.lower())
        if dist is not None and dist not in names and dist != "mujoco":
            missing.append(module)
    assert "gymnasium" in names and not missing, f"imported but not in [book]: {missing}"


# --- repository from the environment -----------------------------------------------------------

@pytest.mark.parametrize("env, want", [
    ({}, None),
    ({"GITHUB_REPOSITORY": REPO}, REPO),
    ({"BOOK_REPOSITORY": f"https://github.com/{REPO}.git"}, REPO),
    ({"BOOK_REPOSITORY": "someone/fork", "GITHUB_REPOSITORY": REPO}, "someone/fork"),
])
def test_repository_comes_from_the_environment(env, want):
    assert sac_publish.book_repository(env) == want
    options = sac_publish.theme_options(want, env)
    assert options["use_repository_button"] is (want is not None)
    assert bool(options["launch_buttons"]) is (want is not None)


@pytest.mark.parametrize("bad", ["sac-book", "a/b/c", "https://gitlab.com/a/b"])
def test_a_malformed_repository_is_refused(bad):
    with pytest.raises(ValueError, match="owner/name"):
        sac_publish.book_repository({"BOOK_REPOSITORY": bad})


# --- built HTML, with and without a repository --------------------------------------------------

def _mini_book(dest: Path) -> Path:
    "A copy of the book's sources with a two-page table of contents (the introduction, chapter 1)."
    for name in ("_config.yml", "requirements.txt", "pyproject.toml"):
        shutil.copy(ROOT / name, dest / name)
    for name in ("book", "sac_lit", "benchmarks"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "01_entropy.ipynb", dest / "notebooks")
    (dest / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                   "  - file: notebooks/01_entropy\n  - file: book/bibliography\n")
    return dest


def _build(src: Path, **env) -> str:
    "book/build.py (as `make book-quick`), not strict: the mini book's introduction links to absent chapters."
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("BOOK_REPOSITORY", "GITHUB_REPOSITORY", "OMP_NUM_THREADS", "GITHUB_SHA")}
    full_env.update(SAC_LIT_QUICK="1", BOOK_JOBS="1", **env)
    proc = subprocess.run([sys.executable, str(ROOT / "book" / "build.py"), "build", str(src), "-n",
                           "--keep-going"], cwd=src, env=full_env, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout + proc.stderr


def _links(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    src = _mini_book(tmp_path_factory.mktemp("mini"))
    log = _build(src, BOOK_REPOSITORY=REPO, BOOK_COMMIT=COMMIT)
    return src, log


def test_with_a_repository_every_button_points_into_it(mini):
    src, _ = mini
    html = (src / "_build/html/notebooks/01_entropy.html").read_text()
    links = _links(html)
    page = "notebooks/01_entropy.ipynb"
    want = {
        "repository": f"https://github.com/{REPO}",
        "edit": f"https://github.com/{REPO}/edit/main/{page}",
        "colab": f"https://colab.research.google.com/github/{REPO}/blob/book-notebooks/{page}",
        "binder": f"https://mybinder.org/v2/gh/{REPO}/book-notebooks?urlpath=lab/tree/{page}",
    }
    for name, url in want.items():
        assert url in links, f"no {name} link {url}; links: {[l for l in links if '://' in l]}"
    assert any(l.startswith(f"https://github.com/{REPO}/issues/new?") for l in links)
    assert (ROOT / page).exists()  # the linked path is the notebook's path in the repository
    # no link to any other repository
    other = [l for l in links if "github.com/" in l and f"github.com/{REPO}" not in l
             and "vega.github.io" not in l]
    assert not other, other


def test_the_download_is_the_executed_notebook_stamped_with_its_commit(mini):
    src, _ = mini
    html = (src / "_build/html/notebooks/01_entropy.html").read_text()
    assert "../_sources/notebooks/01_entropy.ipynb" in _links(html)
    nb = nbformat.read(src / "_build/html/_sources/notebooks/01_entropy.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert sum(len(c.outputs) for c in code) >= 5, "the download has no outputs"
    assert not any(line.lstrip().startswith("#|") for c in code for line in c.source.splitlines())
    assert f'BOOK_SOURCE = "https://github.com/{REPO}@{COMMIT}"' in code[0].source.replace("'", '"')


def test_without_a_repository_there_are_no_buttons_and_no_repository_links(tmp_path):
    src = _mini_book(tmp_path)
    _build(src)
    html = (src / "_build/html/notebooks/01_entropy.html").read_text()
    links = _links(html)
    bad = [l for l in links if re.search(r"github\.com/(?!.*vega)|colab\.research|mybinder\.org", l)]
    assert not bad, bad
    assert "launch-buttons" not in html and "source-edit-button" not in html
    nb = nbformat.read(src / "_build/html/_sources/notebooks/01_entropy.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert 'BOOK_SOURCE = ""' in first.source and any(c.get("outputs") for c in nb.cells
                                                        if c.cell_type == "code")


def test_the_cache_re_executes_only_what_changed(mini):
    "Nothing changed: nothing executed. Prose edited: nothing executed, new prose shown. Code: re-run."
    src, first_log = mini
    assert "Executing notebook" in first_log
    log = _build(src, BOOK_REPOSITORY=REPO, BOOK_COMMIT=COMMIT)
    assert "Executing notebook" not in log
    path = src / "notebooks/01_entropy.ipynb"
    nb = nbformat.read(path, as_version=4)
    prose = next(c for c in nb.cells if c.cell_type == "markdown")
    prose.source += "\n\nA sentence added by the cache test."
    nbformat.write(nb, path)
    log = _build(src, BOOK_REPOSITORY=REPO, BOOK_COMMIT=COMMIT)
    assert "Executing notebook" not in log
    html = (src / "_build/html/notebooks/01_entropy.html").read_text()
    assert "A sentence added by the cache test." in html and "cell_output" in html
    code = [c for c in nb.cells if c.cell_type == "code"][2]
    code.source += "\n# a code comment"
    nbformat.write(nb, path)
    assert "Executing notebook" in _build(src, BOOK_REPOSITORY=REPO, BOOK_COMMIT=COMMIT)


def test_the_cache_folder_follows_the_package_results_and_mode(tmp_path):
    src = _mini_book(tmp_path)
    build = tmp_path / "_build"
    quick = sac_publish.execution_cache_dir(src, build, {"SAC_LIT_QUICK": "1"})
    full = sac_publish.execution_cache_dir(src, build, {})
    assert quick != full and quick.name.startswith("quick-") and full.name.startswith("full-")
    nb = src / "notebooks/01_entropy.ipynb"
    nb.write_text(nb.read_text().replace("Entropy", "Entropy!"))  # a notebook's own text: no change
    assert sac_publish.execution_cache_dir(src, build, {"SAC_LIT_QUICK": "1"}) == quick
    for changed in ("sac_lit/entropy.py", "requirements.txt",
                    sorted((src / "benchmarks/results").glob("*.json"))[0].relative_to(src)):
        with open(src / changed, "a") as f:
            f.write("\n")
        now = sac_publish.execution_cache_dir(src, build, {"SAC_LIT_QUICK": "1"})
        assert now != quick, f"{changed} changed, the cache folder did not"
        quick = now


# --- Binder -----------------------------------------------------------------------------------

def test_binder_builds_from_the_pinned_requirements():
    lines = (ROOT / "binder/requirements.txt").read_text().splitlines()
    assert "-r ../requirements.txt" in lines
    post = ROOT / "binder/postBuild"
    assert os.access(post, os.X_OK) and "pip install --no-deps -e ." in post.read_text()
    runtime = (ROOT / "binder/runtime.txt").read_text().strip()
    assert runtime == f"python-{sys.version_info.major}.{sys.version_info.minor}"


# --- the branch Colab and Binder open ------------------------------------------------------------

def test_the_launch_branch_holds_the_repository_and_the_executed_notebooks(mini, tmp_path):
    sys.path.insert(0, str(ROOT / "book"))
    import publish
    src, _ = mini
    out = tmp_path / "launch"
    names = publish.launch_tree(ROOT, src / "_build/html", out, "HEAD")
    assert names == ["01_entropy.ipynb"]
    for kept in ("sac_lit/agent.py", "binder/postBuild", "requirements.txt", "pyproject.toml",
                 "notebooks/10_training_loop.ipynb", "benchmarks/results"):
        assert (out / kept).exists(), kept
    nb = nbformat.read(out / "notebooks/01_entropy.ipynb", as_version=4)
    assert f"{REPO}@{COMMIT}" in next(c for c in nb.cells if c.cell_type == "code").source
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    # pushed as a branch of its own (here to a local bare repository standing in for GitHub)
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    publish.push(out, str(bare), COMMIT, "book-notebooks")
    shown = subprocess.run(["git", "-C", str(bare), "show", "book-notebooks:notebooks/01_entropy.ipynb"],
                           capture_output=True, text=True, check=True).stdout
    assert json.loads(shown)["cells"] and COMMIT in shown


def test_the_cache_database_exists_before_the_notebooks_are_read(tmp_path, monkeypatch):
    """book/build.py reads notebooks side by side: two processes creating jupyter-cache's database at
    once fail ("table settings already exists"), so configuring the build creates it."""
    import types
    monkeypatch.delenv("BOOK_REPOSITORY", raising=False)
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    src = _mini_book(tmp_path)
    config = types.SimpleNamespace(html_theme_options={}, nb_execution_mode="cache",
                                   nb_execution_cache_path="")
    app = types.SimpleNamespace(srcdir=str(src), outdir=str(src / "_build" / "html"))
    sac_publish._configure(app, config)
    cache = Path(config.nb_execution_cache_path)
    assert cache.parent == src / "_build" / ".jupyter_cache" and (cache / "global.db").exists()
