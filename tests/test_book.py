"""The rendered book, checked in a real browser.

Builds the book in quick mode with the strict flags of the README (`-W -n --keep-going`), serves it on
127.0.0.1, and opens every page in headless Chromium (Debian's, through Playwright) with every request
to another host blocked and recorded. Each page must load with no console error, no uncaught exception,
no external request, no nbdev directive text, rendered math, and loaded figures. The interactive charts
must redraw when their sliders move, with no kernel running.

Set SAC_LIT_BOOK_HTML=path/to/_build/html to check an existing build instead of building one.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import math
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SAC_LIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _pages_in_toc() -> list[str]:
    "Every page of the table of contents, as paths relative to the HTML root."
    import yaml
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return [f + ".html" for f in files]


@pytest.fixture(scope="module")
def html_dir(tmp_path_factory) -> Path:
    given = os.environ.get("SAC_LIT_BOOK_HTML")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("book")
    # The thread setting as a reader's `make book-quick` has it: book/build.py's (one per kernel).
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["SAC_LIT_QUICK"] = "1"
    # `make book-quick`'s command: jupyter-book build, the notebooks read side by side
    cmd = [sys.executable, str(ROOT / "book" / "build.py"), "build", str(ROOT),
           "--path-output", str(out), "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, "strict book build failed:\n" + (proc.stdout + proc.stderr)[-6000:]
    return out / "_build" / "html"


@contextlib.contextmanager
def _serve(directory):
    "Serve `directory` on 127.0.0.1 (a free port) for the duration of the block; yields the base URL."
    handler = functools.partial(_QuietHandler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


@pytest.fixture(scope="module")
def server(html_dir):
    with _serve(html_dir) as base:
        yield base


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: apt-get install chromium (see README)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


RAW_TEX = re.compile(r"\$\$|\$\\[A-Za-z]|\\(frac|mathcal|theta|alpha|sum|log)\b")


def _prose(page) -> str:
    "Text of paragraphs, list items, table cells and headings, without code and typeset math."
    return page.evaluate("""() => [...document.querySelectorAll(
        'main p, main li, main td, main th, main h1, main h2, main h3')].map(el => {
            const c = el.cloneNode(true);
            c.querySelectorAll('pre, code, mjx-container, script, style').forEach(x => x.remove());
            return c.textContent; }).join('\\n')""")


class PageVisit:
    "Open one page with external requests blocked; collect console errors and blocked requests."

    def __init__(self, browser, base: str, viewport: dict | None = None):
        self.context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
        self.external, self.errors = [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.base = base

    def _route(self, route):
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def open(self, rel: str):
        response = self.page.goto(f"{self.base}/{rel}", wait_until="load")
        assert response is not None and response.ok, f"{rel}: HTTP {response and response.status}"
        self.page.wait_for_load_state("networkidle")
        return self.page

    def close(self):
        self.context.close()


def test_every_page_clean(browser, server, html_dir):
    pages = _pages_in_toc()
    assert len(pages) >= 4
    for rel in pages:
        assert (html_dir / rel).exists(), f"{rel} was not built"
        visit = PageVisit(browser, server)
        try:
            page = visit.open(rel)
            main = page.locator("main").inner_text()
            code = page.evaluate("[...document.querySelectorAll('main pre')].map(p => p.innerText).join('\\n')")
            assert not re.search(r"^\s*#\|", code, re.M), f"{rel}: nbdev directive lines are visible"
            # math: every math node typeset by the offline MathJax, and no MathJax error boxes
            n_math = page.locator(".math").count()
            if n_math:
                page.wait_for_function("document.querySelectorAll('mjx-container').length > 0", timeout=20_000)
                assert page.locator("mjx-merror").count() == 0, f"{rel}: MathJax error"
                assert not RAW_TEX.search(_prose(page)), f"{rel}: raw TeX left in the prose: {RAW_TEX.search(_prose(page))}"
            # figures: every image finished loading with a real size
            broken = page.evaluate("[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
            assert not broken, f"{rel}: images that did not load: {broken}"
            # no stderr output block (warnings, library chatter) left in a built page
            stderr = page.evaluate("[...document.querySelectorAll('main .output.stderr')]"
                                   ".map(e => e.innerText.slice(0, 120))")
            assert not stderr, f"{rel}: stderr output shown in the page: {stderr}"
            assert not visit.errors, f"{rel}: {visit.errors}"
            assert not visit.external, f"{rel}: requests to other hosts: {visit.external}"
        finally:
            visit.close()


# Every code block (cell inputs and outputs) whose content is wider than its box, and every display
# equation whose typeset math sticks out of its container or of the article column.
_OVERFLOW_JS = """() => {
  const article = (document.querySelector('main article') || document.querySelector('main'))
                  .getBoundingClientRect();
  const code = [...document.querySelectorAll('main pre')]
    .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
    .map(pre => `${pre.scrollWidth}px in ${pre.clientWidth}px: ` +
                pre.innerText.split('\\n').sort((a, b) => b.length - a.length)[0].slice(0, 90));
  const math = [...document.querySelectorAll('main mjx-container[display="true"]')]
    .filter(c => {
      const box = c.getBoundingClientRect(), m = c.querySelector('mjx-math').getBoundingClientRect();
      return m.right > box.right + 1 || m.left < box.left - 1 || m.right > article.right + 1 ||
             c.scrollWidth > c.clientWidth + 1; })
    .map(c => c.textContent.slice(0, 60));
  return {code, math};
}"""


def test_nothing_scrolls_sideways(browser, server):
    "At a 1280x800 window no code input or output is wider than its box and no display equation is clipped."
    problems = []
    for rel in _pages_in_toc():
        visit = PageVisit(browser, server, viewport={"width": 1280, "height": 800})
        try:
            page = visit.open(rel)
            if page.locator(".math").count():
                page.wait_for_function("document.querySelectorAll('mjx-container').length > 0", timeout=20_000)
                page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
            found = page.evaluate(_OVERFLOW_JS)
            problems += [f"{rel}: code {c}" for c in found["code"]]
            problems += [f"{rel}: equation clipped: {m}" for m in found["math"]]
        finally:
            visit.close()
    assert not problems, f"{len(problems)} blocks scroll sideways or are clipped:\n" + "\n".join(problems)


def test_math_is_rendered_offline(browser, server):
    visit = PageVisit(browser, server)
    try:
        page = visit.open("notebooks/01_entropy.html")
        page.wait_for_function("document.querySelectorAll('mjx-container').length > 10", timeout=20_000)
        assert page.locator("mjx-container[display='true']").count() >= 3  # the display equations
        assert not visit.external and not visit.errors, (visit.external, visit.errors)
    finally:
        visit.close()


def _chart_text(page, div_id: str) -> str:
    return page.locator(f"#{div_id} svg").first.evaluate("svg => svg.textContent").replace("\u2212", "-")


def _move_slider(page, div_id: str, value: float, index: int = 0) -> None:
    page.locator(f"#{div_id} input[type=range]").nth(index).evaluate(
        "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', {bubbles: true})); }", value)


def _entropy_label(h: float) -> str:
    return f"{h:.3f} nats"


# (page, chart div, which slider, value to set, text the chart must then show). Each chapter keeps its
# cases in tests/slider_cases/chNN.py; the expected texts are computed there from closed forms or
# quadrature, independently of the notebooks' code and Vega expressions.
def _chapter_slider_cases() -> list[tuple]:
    """Cases each chapter keeps in tests/slider_cases/chNN.py (a list CASES of tuples as above, its
    expected texts computed in that file, independently of the notebooks)."""
    import importlib.util
    cases = []
    for path in sorted((ROOT / "tests" / "slider_cases").glob("ch*.py")):
        spec = importlib.util.spec_from_file_location(f"slider_cases_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cases += list(module.CASES)
    return cases


SLIDER_CASES = _chapter_slider_cases()


@pytest.mark.parametrize("page_name, div_id, index, value, want", SLIDER_CASES,
                         ids=[f"{c[1]}[{c[2]}]={c[3]}" for c in SLIDER_CASES])
def test_sliders_redraw_without_kernel(browser, server, page_name, div_id, index, value, want):
    visit = PageVisit(browser, server)
    try:
        page = visit.open(f"notebooks/{page_name}.html")
        page.wait_for_selector(f"#{div_id} svg", timeout=20_000)
        before = _chart_text(page, div_id)
        assert want not in before
        _move_slider(page, div_id, value, index)
        page.wait_for_function(
            "([id, want]) => document.querySelector('#' + id + ' svg').textContent.replace(/\\u2212/g, '-').includes(want)",
            arg=[div_id, want], timeout=10_000)
        after = _chart_text(page, div_id)
        assert after != before and want in after
        assert not visit.errors and not visit.external, (visit.errors, visit.external)
    finally:
        visit.close()


def test_chart_output_works_in_jupyter_without_kernel(browser, tmp_path, monkeypatch):
    """The same chart as Jupyter shows it: execute chapter 1 the way Jupyter does (no book build, so the
    output carries its own Vega bundle), put that output twice into a bare page that already defines a
    global `_` (as Sphinx and other hosts do), and drive the slider in Chromium. This is what Jupyter's
    output area does with trusted HTML: insert it and run its scripts."""
    import nbclient
    import nbformat
    monkeypatch.delenv("SAC_LIT_BOOK", raising=False)
    monkeypatch.setenv("SAC_LIT_QUICK", "1")
    nb = nbformat.read(ROOT / "notebooks" / "01_entropy.ipynb", as_version=4)
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    html = next(out["data"]["text/html"] for cell in nb.cells if cell.cell_type == "code"
                for out in cell.get("outputs", []) if "entropy-two-outcomes" in out.get("data", {}).get("text/html", ""))
    second = html.replace("entropy-two-outcomes", "entropy-two-outcomes-copy")
    page_file = tmp_path / "jupyter_output.html"
    page_file.write_text(f"<!DOCTYPE html><html><head><script>const _ = 1;</script></head><body>"
                         f"<div class='output_area'>{html}</div><div class='output_area'>{second}</div></body></html>")
    with _serve(tmp_path) as base:
        visit = PageVisit(browser, base)
        try:
            page = visit.open("jupyter_output.html")
            for div_id in ("entropy-two-outcomes", "entropy-two-outcomes-copy"):
                page.wait_for_selector(f"#{div_id} svg", timeout=20_000)
            want = _entropy_label(-(0.3 * math.log(0.3) + 0.7 * math.log(0.7)))
            _move_slider(page, "entropy-two-outcomes-copy", 0.3)
            page.wait_for_function(
                "want => document.querySelector('#entropy-two-outcomes-copy svg').textContent.includes(want)",
                arg=want, timeout=10_000)
            assert want not in _chart_text(page, "entropy-two-outcomes")  # the two charts are independent
            assert not visit.errors and not visit.external, (visit.errors, visit.external)
        finally:
            visit.close()
