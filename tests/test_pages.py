"""What a reader sees on the pages: no shown code cell imports a private module or name.

"Shown" is what the book renders: the book's own reader (`book/_ext/sac_book.py`) turns nbdev's `#|`
lines into cell tags, and a cell tagged `remove-cell` or `remove-input` shows no code. A folded cell
(`#| code-fold: true`) is still on the page, so it counts as shown.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
sys.path.insert(0, str(ROOT / "book" / "_ext"))
from sac_book import read_notebook  # noqa: E402

HIDDEN = {"remove-cell", "remove-input"}


def private_imports(source: str) -> list[str]:
    "Dotted names of private modules or names that `source` imports."
    code = "\n".join(line for line in source.splitlines()
                     if not line.startswith(("%", "!")))
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            names = []
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            modules = [node.module or ""]
            names = [alias.name for alias in node.names]
        else:
            continue
        for dotted in modules + names:
            if any(part.startswith("_") for part in dotted.split(".")):
                found.append(dotted)
    return found


def shown_code(nb_path: Path) -> list[str]:
    nb = read_notebook(nb_path.read_text())
    return [cell.source for cell in nb.cells if cell.cell_type == "code"
            and not HIDDEN & set(cell.metadata.get("tags", []))]


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_shown_cell_imports_a_private_name(nb_path):
    offenders = {name for source in shown_code(nb_path)
                 for name in private_imports(source)}
    assert not offenders, f"{nb_path.name} shows private imports: {sorted(offenders)}"


def test_the_check_catches_private_imports_and_skips_hidden_cells(tmp_path):
    assert private_imports("import altair.utils._importers as imp") == [
        "altair.utils._importers"]
    assert private_imports("from argparse import _SubParsersAction") == ["_SubParsersAction"]
    assert private_imports("from __future__ import annotations\nimport torch\n%time x = 1") == []
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("#| hide\nimport vl_convert._x"),
        nbformat.v4.new_code_cell("#| echo: false\nfrom a import _b"),
        nbformat.v4.new_code_cell("#| code-fold: true\nfrom c import _d"),
    ])
    path = tmp_path / "page.ipynb"
    nbformat.write(nb, path)
    assert [private_imports(s) for s in shown_code(path)] == [["_d"]]
