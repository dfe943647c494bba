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
    """Open one page with external requests blocked; collect console errors and blocked requests.
    With `dark=True` the page opens in the theme's dark mode, as a reader who chose it before sees it
    (pydata-sphinx-theme keeps the choice in localStorage "mode"/"theme"; `open` checks it took)."""

    def __init__(self, browser, base: str, viewport: dict | None = None, dark: bool = False):
        self.context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
        self.dark = dark
        if dark:
            self.context.add_init_script(
                "localStorage.setItem('mode', 'dark'); localStorage.setItem('theme', 'dark');")
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
        if self.dark:
            theme = self.page.evaluate("document.documentElement.dataset.theme")
            assert theme == "dark", f"{rel}: dark mode did not take (data-theme={theme!r})"
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


# ---- A phone's screen and the theme's dark mode ------------------------------------------------------
# Every page once more, at a phone's width (390x844, an iPhone 12-15) in the theme's dark mode: the page
# must not scroll sideways (code blocks and formulas may scroll inside their own boxes; nothing may be cut
# off), the charts' and figures' ink must stand out from what is really behind it, and nothing may throw.

PHONE = {"width": 390, "height": 844}

# Why the page is wider than the window: the outermost elements whose hiding narrows it.
_WIDENERS_JS = """() => {
  const de = document.documentElement, found = [];
  const walk = (el, depth) => { for (const ch of el.children) {
      const old = ch.style.display; ch.style.display = 'none'; const sw = de.scrollWidth; ch.style.display = old;
      if (sw < de.scrollWidth) {
        const kids = found.length; if (depth < 40) walk(ch, depth + 1);
        if (found.length === kids) found.push(`<${ch.tagName.toLowerCase()} class="${ch.className}">: ` +
                                               (ch.textContent || '').trim().slice(0, 70)); } } };
  walk(document.body, 0); return found;
}"""

# Formulas cut off: the typeset math sticks out of the nearest box that clips it and that box hides the
# rest instead of scrolling (the theme gives span.math `overflow: hidden`), so the reader cannot see it.
_CUT_MATH_JS = """() => [...document.querySelectorAll('main mjx-container')].map(c => {
  const m = c.querySelector('mjx-math');
  if (!m || !c.getClientRects().length) return null;
  const r = m.getBoundingClientRect();
  for (let a = c; a && a.tagName !== 'MAIN'; a = a.parentElement) {
    const o = getComputedStyle(a).overflowX;
    if (o === 'visible') continue;
    if (o === 'auto' || o === 'scroll') return null;
    const b = a.getBoundingClientRect();
    return r.right > b.right + 2 || r.left < b.left - 2
      ? `${Math.round(r.width)}px shown in ${Math.round(b.width)}px: ${c.textContent.slice(0, 60)}` : null; }
  return null; }).filter(Boolean)"""

# Colour arithmetic for the legibility checks: the colour an element's ink (or, with a transparent ink,
# its background) really has on screen, found by painting it over every ancestor's background and through
# every ancestor's CSS filter (the theme dims images in dark mode with brightness() contrast()), then over
# the white canvas; and the WCAG 2 contrast ratio of two colours.
_COLOUR_JS = """
const parse = s => { const m = /rgba?\\(([^)]*)\\)/.exec(s || ''); if (!m) return null;
  const v = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(parseFloat); return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1]; };
const over = (t, b) => { const a = t[3] + b[3] * (1 - t[3]); if (a === 0) return [0, 0, 0, 0];
  return [0, 1, 2].map(i => (t[i] * t[3] + b[i] * b[3] * (1 - t[3])) / a).concat([a]); };
const FILTERS = {
  brightness: (c, x) => c * x, contrast: (c, x) => (c / 255 - 0.5) * x * 255 + 127.5,
  invert: (c, x) => c * (1 - x) + (255 - c) * x };
const filtered = (c, filter) => {
  if (!filter || filter === 'none') return c;
  for (const [, name, arg] of filter.matchAll(/([a-z-]+)\\(([^)]*)\\)/g)) {
    const x = arg.trim().endsWith('%') ? parseFloat(arg) / 100 : parseFloat(arg);
    if (name === 'opacity') { c = [c[0], c[1], c[2], c[3] * x]; continue; }
    if (!FILTERS[name]) throw new Error('cannot measure through CSS filter ' + filter);
    c = [0, 1, 2].map(i => Math.min(255, Math.max(0, FILTERS[name](c[i], x)))).concat([c[3]]); }
  return c; };
const onScreen = (el, ink) => {
  let c = ink;
  for (let a = el; a; a = a.parentElement) {
    const s = getComputedStyle(a);
    const bg = parse(s.backgroundColor);
    if (bg && (!(a instanceof SVGElement) || a.tagName === 'svg')) c = over(c, bg);
    c = filtered(c, s.filter); }
  return over(c, [255, 255, 255, 1]); };
const luminance = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
const ratio = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
const hex = c => '#' + c.slice(0, 3).map(v => Math.round(v).toString(16).padStart(2, '0')).join('');
"""

# Every Vega chart's text (axis labels and titles, legends, the sliders' labels and values) against what
# is behind it: at least 4.5:1 (WCAG AA for text). Axis lines and ticks: at least 3:1 (WCAG's rule for
# graphics; Vega's default grey #888 on white is 3.5:1). Returns one line per failing colour pair.
_CHART_CONTRAST_JS = "() => {" + _COLOUR_JS + """
  const problems = [], seen = new Set();
  const check = (chart, el, inkCss, alpha, need, what) => {
    const ink = parse(inkCss); if (!ink || ink[3] * alpha === 0) return;
    const back = onScreen(el, [0, 0, 0, 0]), front = onScreen(el, [ink[0], ink[1], ink[2], ink[3] * alpha]);
    const r = ratio(front, back), key = [chart.id, what, hex(front), hex(back)].join();
    if (r < need && !seen.has(key)) { seen.add(key);
      problems.push(`#${chart.id}: ${what} ${hex(front)} on ${hex(back)} is ${r.toFixed(2)}:1 (< ${need}:1)`); } };
  const charts = [...document.querySelectorAll('main .vega-embed')];
  for (const chart of charts) {
    for (const t of chart.querySelectorAll('svg text')) {
      if (!t.textContent.trim()) continue;
      const s = getComputedStyle(t);
      check(chart, t, s.fill, parseFloat(s.fillOpacity) * parseFloat(s.opacity), 4.5, `text "${t.textContent.trim().slice(0, 20)}"`); }
    for (const l of chart.querySelectorAll('svg .role-axis-domain line, svg .role-axis-tick line, svg .role-axis-domain path, svg .role-axis-tick path')) {
      const s = getComputedStyle(l);
      check(chart, l, s.stroke, parseFloat(s.strokeOpacity) * parseFloat(s.opacity), 3, 'axis line'); }
    for (const b of chart.querySelectorAll('.vega-bindings *')) {
      if (![...b.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
      const s = getComputedStyle(b);
      check(chart, b, s.color, parseFloat(s.opacity), 4.5, `slider text "${b.textContent.trim().slice(0, 20)}"`); } }
  return {charts: charts.length, problems};
}"""

# Every figure image (matplotlib PNGs, GIFs) read back pixel by pixel. Its ink is its darkest opaque pixel
# (matplotlib draws text and axes in black). Where the image is transparent the page shows through, so
# its backdrop is what lies behind the <img>; where it is opaque, its own most common colour. The ink, as
# shown through the theme's filters, must stand out 4.5:1 from that backdrop: a transparent figure on a
# dark page fails, an opaque or light-carded one passes.
_FIGURE_CONTRAST_JS = "async () => {" + _COLOUR_JS + """
  const problems = [], imgs = [...document.querySelectorAll('main img')].filter(i => i.getClientRects().length);
  for (const img of imgs) {
    await img.decode().catch(() => null);
    const w = Math.min(img.naturalWidth, 600), h = Math.max(1, Math.round(img.naturalHeight * w / img.naturalWidth));
    const canvas = document.createElement('canvas'); canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext('2d', {willReadFrequently: true}); ctx.drawImage(img, 0, 0, w, h);
    const px = ctx.getImageData(0, 0, w, h).data;
    let clear = 0, ink = null, inkL = 2; const counts = new Map();
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] < 250) { clear++; continue; }
      const c = [px[i], px[i + 1], px[i + 2], 1], L = luminance(c);
      if (L < inkL) { inkL = L; ink = c; }
      const k = (px[i] << 16) | (px[i + 1] << 8) | px[i + 2]; counts.set(k, (counts.get(k) || 0) + 1); }
    if (!ink) { problems.push(`${img.src.split('/').pop()}: no opaque pixel`); continue; }
    let own = 0, n = 0; for (const [k, v] of counts) if (v > n) { n = v; own = k; }
    const transparent = clear > 0.01 * (px.length / 4);
    const back = transparent ? onScreen(img, [0, 0, 0, 0]) : onScreen(img, [own >> 16, (own >> 8) & 255, own & 255, 1]);
    const front = onScreen(img, ink), r = ratio(front, back);
    if (r < 4.5) problems.push(`${img.src.split('/').pop().slice(0, 16)}… (${transparent ? 'transparent' : 'opaque'}): ` +
                               `ink ${hex(front)} on ${hex(back)} is ${r.toFixed(2)}:1 (< 4.5:1)`); }
  return {images: imgs.length, problems};
}"""


@pytest.fixture(scope="module")
def phone_dark(browser, server):
    """Every page opened once at a phone's width in dark mode; what each check found, by page."""
    found = {}
    for rel in _pages_in_toc():
        visit = PageVisit(browser, server, viewport=PHONE, dark=True)
        try:
            page = visit.open(rel)
            if page.locator(".math").count():
                page.wait_for_function("document.querySelectorAll('mjx-container').length > 0", timeout=20_000)
                page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
            if page.locator(".sac-lit-chart").count():
                page.wait_for_function("[...document.querySelectorAll('.sac-lit-chart')].every(c => c.querySelector('svg'))",
                                       timeout=20_000)
            width = page.evaluate("""() => { const de = document.documentElement; window.scrollTo(10000, window.scrollY);
                const moved = window.scrollX; window.scrollTo(0, window.scrollY);
                return {scroll: de.scrollWidth, client: de.clientWidth, moved}; }""")
            found[rel] = {
                "theme": page.evaluate("document.documentElement.dataset.theme"),
                "width": width,
                "wideners": page.evaluate(_WIDENERS_JS) if width["scroll"] > width["client"] or width["moved"] else [],
                "cut_math": page.evaluate(_CUT_MATH_JS),
                "charts": page.evaluate(_CHART_CONTRAST_JS),
                "figures": page.evaluate(_FIGURE_CONTRAST_JS),
                "errors": list(visit.errors), "external": list(visit.external)}
        finally:
            visit.close()
    return found


def test_phone_dark_pages_clean(phone_dark):
    "At a phone's width in dark mode every page really is dark and loads with no console error, page error or external request."
    bad = {rel: (f["theme"], f["errors"], f["external"]) for rel, f in phone_dark.items()
           if f["theme"] != "dark" or f["errors"] or f["external"]}
    assert len(phone_dark) == len(_pages_in_toc())
    assert not bad, "\n".join(f"{rel}: data-theme={t!r}, errors {e}, external requests {x}" for rel, (t, e, x) in bad.items())


def test_phone_page_does_not_scroll_sideways(phone_dark):
    """At 390 px no page is wider than the window (the window cannot be scrolled sideways; code blocks and
    formulas may scroll inside their own boxes), and no formula is cut off by a box that hides its end."""
    problems = []
    for rel, f in phone_dark.items():
        w = f["width"]
        if w["scroll"] > w["client"] or w["moved"]:
            problems.append(f"{rel}: page is {w['scroll']}px wide in a {w['client']}px window, made wide by "
                            + "; ".join(f["wideners"]))
        problems += [f"{rel}: formula cut off, {m}" for m in f["cut_math"]]
    assert not problems, "\n".join(problems)


def test_dark_mode_charts_legible(phone_dark):
    "In dark mode every Vega chart's text stands out 4.5:1 (axis lines 3:1) from the colour really behind it."
    assert sum(f["charts"]["charts"] for f in phone_dark.values()) >= 5  # the checks saw the charts
    problems = [f"{rel}: {p}" for rel, f in phone_dark.items() for p in f["charts"]["problems"]]
    assert not problems, "\n".join(problems)


def test_dark_mode_figures_legible(phone_dark):
    "In dark mode every figure image's ink stands out 4.5:1 from its backdrop: no transparent figure on a dark page."
    assert sum(f["figures"]["images"] for f in phone_dark.values()) >= 5  # the checks saw the figures
    problems = [f"{rel}: {p}" for rel, f in phone_dark.items() for p in f["figures"]["problems"]]
    assert not problems, "\n".join(problems)


# The first case of each slider (page, chart, slider index): every slider is driven on a phone in dark mode.
PHONE_SLIDER_CASES = [c for i, c in enumerate(SLIDER_CASES) if all(d[:3] != c[:3] for d in SLIDER_CASES[:i])]


@pytest.mark.parametrize("page_name, div_id, index, value, want", PHONE_SLIDER_CASES,
                         ids=[f"{c[1]}[{c[2]}]" for c in PHONE_SLIDER_CASES])
def test_sliders_work_on_phone_in_dark_mode(browser, server, page_name, div_id, index, value, want):
    """At a phone's width in dark mode the slider is on screen without sideways scrolling and not covered
    (scrolled to vertically only, the point under its track is the slider itself); a real click on its
    track moves it and redraws the chart; and it still drives the chart to the exact expected text."""
    visit = PageVisit(browser, server, viewport=PHONE, dark=True)
    try:
        page = visit.open(f"notebooks/{page_name}.html")
        page.wait_for_selector(f"#{div_id} svg", timeout=20_000)
        slider = page.locator(f"#{div_id} input[type=range]").nth(index)
        box = slider.evaluate("""el => { const r0 = el.getBoundingClientRect();
            window.scrollTo(0, window.scrollY + r0.top - innerHeight / 2);
            const r = el.getBoundingClientRect(), x = r.left + 0.2 * r.width, y = r.top + r.height / 2;
            return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, x, y,
                    vw: document.documentElement.clientWidth, vh: innerHeight, scrollX: window.scrollX,
                    hit: document.elementFromPoint(x, y) === el, value: el.value}; }""")
        where = f"#{div_id} slider {index} at x {box['left']:.0f}..{box['right']:.0f} in a {box['vw']}px window"
        assert box["scrollX"] == 0 and box["width"] >= 60, where
        assert 0 <= box["left"] and box["right"] <= box["vw"] and 0 <= box["top"] and box["bottom"] <= box["vh"], \
            f"{where}: off screen"
        assert box["hit"], f"{where}: covered by another element"
        before = _chart_text(page, div_id)
        page.mouse.click(box["x"], box["y"])  # a fifth of the way along; if that is where it was, four fifths
        if slider.evaluate("el => el.value") == box["value"]:
            page.mouse.click(box["left"] + 0.8 * box["width"], box["y"])
        assert slider.evaluate("el => el.value") != box["value"], f"{where}: a click on the track did not move it"
        page.wait_for_function("([id, old]) => document.querySelector('#' + id + ' svg').textContent !== old",
                               arg=[div_id, before], timeout=10_000)
        _move_slider(page, div_id, value, index)
        page.wait_for_function(
            "([id, want]) => document.querySelector('#' + id + ' svg').textContent.replace(/\\u2212/g, '-').includes(want)",
            arg=[div_id, want], timeout=10_000)
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
