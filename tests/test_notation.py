"""The notation page is the single source: each symbol in its tables appears in the chapter the page
names, and in no chapter before it (so "introduced in" is the chapter of first use).

Symbols are compared as LaTeX tokens inside the math of the chapters' markdown cells, whitespace
removed; a letter must stand alone (the `a` of `\\alpha` is not an `a`).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTATION = ROOT / "book" / "notation.md"
ROW = re.compile(r"^\|(?P<symbols>[^|]*)\|[^|]*\|\s*\{doc\}`chapter (?P<chapter>\d+) <[^>]*>`\s*\|")
MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.S)


FUNCTIONS = {r"\dim", r"\tanh", r"\log", r"\exp", r"\min", r"\max"}
KEEP_ARGUMENT = FUNCTIONS | {"J"}   # J(\pi), J(\alpha): one letter, several objectives
# Commands whose next letter is part of one symbol (`\mathcal N`, `\hat g`); after any other command
# (`\sim P`, `\log p`, `\bmod N`) the letter is a symbol of its own.
ACCENTS = {r"\mathcal", r"\mathbb", r"\mathrm", r"\mathbf", r"\mathsf", r"\mathit", r"\text",
           r"\operatorname", r"\boldsymbol", r"\hat", r"\widehat", r"\bar", r"\overline",
           r"\tilde", r"\widetilde", r"\vec", r"\dot", r"\ddot", r"\check", r"\breve"}


def normal(tex: str) -> str:
    "One spelling per symbol: `\\mid` as |, `\\tilde{a}` as `\\tilde a`, no other spaces."
    for a, b in ((r"\mid", "|"), (r"\lvert", "|"), (r"\rvert", "|"), (r"\,", " "),
                 (r"\left", ""), (r"\right", ""), (r"\big", "")):
        tex = tex.replace(a, b)
    tex = re.sub(r"(\\[A-Za-z]+)\{([A-Za-z])\}", r"\1 \2", tex)   # \cmd{x} -> \cmd x
    tex = re.sub(r"(\\[A-Za-z]+)\s+(?=[A-Za-z])", "\\1\x00", tex)  # keep \cmd x apart
    return re.sub(r"\s+", "", tex).replace("\x00", " ")


def split_top(text: str, sep: str = ",") -> list[str]:
    "text split at `sep` outside brackets."
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "([{" and 1 or 0
        depth -= ch in ")]}" and 1 or 0
        if ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return parts + [text[start:]]


def symbols(span: str) -> list[str]:
    """The symbols one $...$ of the page names: a list `a, b` gives each; a function written with its
    arguments, `P(s'|s,a)`, is its name `P` (but `\\dim(\\mathcal A)` and `J(\\alpha)` stay whole)."""
    out = []
    for part in split_top(normal(span)):
        if part in ("", r"\dots"):
            continue
        if part.endswith(")"):
            depth = 0
            for i in range(len(part) - 1, -1, -1):
                depth += {")": 1, "(": -1}.get(part[i], 0)
                if depth == 0:
                    break
            if i > 0 and part[:i] not in KEEP_ARGUMENT:
                part = part[:i]
        out.append(part)
    return out


def table_rows() -> list[tuple[str, int]]:
    "(symbol, chapter) for every symbol in the first column of the page's tables."
    rows = []
    for line in NOTATION.read_text().splitlines():
        m = ROW.match(line)
        if m:
            for span in re.findall(r"\$([^$]+)\$", m["symbols"]):
                rows += [(symbol, int(m["chapter"])) for symbol in symbols(span)]
    return rows


def chapter_math() -> dict[int, str]:
    "Chapter number -> all math of its markdown cells, whitespace removed."
    out = {}
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        number = int(nb.name[:2])
        if number >= 90:
            continue
        cells = json.loads(nb.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        spans = [a or b for a, b in MATH.findall(text)]
        out[number] = " ".join(normal(s) for s in spans)
    return out


def uses(math: str, symbol: str) -> bool:
    """Whether `symbol` occurs in `math` as a whole token: not inside a longer name (the `a` of
    `\\alpha`), and not as the argument of an accent or font (the `N` of `\\mathcal N`, the `g` of
    `\\hat g`) unless the symbol is that command itself."""
    symbol = normal(symbol)
    lead = r"(?<![\\A-Za-z])" if symbol[0].isalpha() else ""   # `\\pm\\lambda`, `\\log|\\mathcal A|`
    trail = r"(?![A-Za-z])" if symbol[-1].isalpha() else ""
    for m in re.finditer(lead + re.escape(symbol) + trail, math):
        before = re.search(r"(\\[A-Za-z]+) $", math[:m.start()])
        if not (before and before[1] in ACCENTS):
            return True
    return False


ROWS = table_rows()
MATH_BY_CHAPTER = chapter_math()


def test_the_page_has_tables():
    assert len(ROWS) > 40


@pytest.mark.parametrize("symbol,chapter", ROWS, ids=[f"{s}@{c}" for s, c in ROWS])
def test_symbol_first_used_in_the_chapter_the_page_names(symbol, chapter):
    assert uses(MATH_BY_CHAPTER[chapter], symbol), f"${symbol}$ does not appear in chapter {chapter}"
    earlier = [c for c, math in MATH_BY_CHAPTER.items() if c < chapter and uses(math, symbol)]
    assert not earlier, f"${symbol}$ is used in chapter {earlier[0]}, before chapter {chapter}"


def test_symbols_of_a_table_cell():
    assert symbols(r"P(s' \mid s, a)") == ["P"] and symbols(r"h_1, h_2, \dots") == ["h_1", "h_2"]
    assert symbols(r"\pi_\theta(\cdot \mid s)") == [r"\pi_\theta"]
    assert symbols(r"\dim(\mathcal A)") == [r"\dim(\mathcal A)"]
    assert symbols(r"[\log\sigma_{\min}, \log\sigma_{\max}]") == [r"[\log\sigma_{\min},\log\sigma_{\max}]"]
    assert normal(r"\tilde{a}") == normal(r"\tilde a") == r"\tilde a"
    assert symbols(r"Q_{\phi_1}, Q_{\phi_2}") == [r"Q_{\phi_1}", r"Q_{\phi_2}"]
    assert symbols(r"J(\pi)") == [r"J(\pi)"] and symbols(r"J(\alpha)") == [r"J(\alpha)"]
    assert symbols(r"J_\pi(\theta)") == [r"J_\pi"]


def test_matching_needs_a_whole_token():
    assert uses(r"\pi_\theta(a|s)", "a") and not uses(r"\alpha", "a")
    assert uses(r"Q_{\phi_1}(s,a)", r"Q_{\phi_1}") and not uses(r"\sigma", "s")
    assert not uses(normal(r"\mathcal N(0, 1)"), "N") and uses(normal(r"N = 10^6"), "N")
    assert not uses(normal(r"\hat g_c"), "g") and uses(normal(r"\hat g_c"), r"\hat g")
    assert uses(normal(r"\mathcal T(V)"), r"\mathcal T")
    assert uses(normal(r"J(\alpha) = \log\alpha"), r"J(\alpha)") and not uses(normal(r"J(\pi)"), r"J(\alpha)")


def test_a_letter_after_an_operator_is_a_symbol():
    assert uses(normal(r"s' \sim P(\cdot \mid s, a)"), "P") and uses(normal(r"\log p(x)"), "p")
    assert uses(normal(r"m \bmod N"), "N") and uses(normal(r"\sqrt n"), "n")
    assert uses(normal(r"\pm\lambda"), r"\lambda") and not uses(normal(r"\pm\lambda"), "a")
    assert uses(normal(r"\log|\mathcal A|"), r"|\mathcal A|") and not uses(normal(r"\log|\mathcal A|"), "A")
    assert not uses(normal(r"\mathcal N(0, 1)"), "N") and not uses(normal(r"\text{d}"), "d")


def chapter_titles() -> dict[str, str]:
    "Notebook file name -> the first line of its first markdown cell."
    out = {}
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        first = next(c for c in cells if c["cell_type"] == "markdown")
        out[nb.name] = "".join(first["source"]).splitlines()[0]
    return out


def test_chapter_titles_carry_their_file_number():
    "`# 13. Making SAC fast` lives in 13_*.ipynb (the appendices 90+ are unnumbered)."
    wrong = {name: title for name, title in chapter_titles().items()
             if int(name[:2]) < 90 and not title.startswith(f"# {int(name[:2])}. ")}
    assert not wrong, wrong
