"""Notebook checkpoints under nbval: a cell marked `#| eval: false` is not run, as in the book.

The book's reader (book/_ext/sac_book.py) maps `#| eval: false` to myst-nb's `skip-execution`, so
such a cell (e.g. the slow loop that regenerated a table of seed runs) is shown but never executed.
nbval knows only its own markers; this hook gives it the same rule.
"""
import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        cell = getattr(item, "cell", None)
        source = cell.get("source", "") if isinstance(cell, dict) else ""
        if "".join(source).lstrip().startswith("#| eval: false"):
            item.add_marker(pytest.mark.skip(reason="#| eval: false: shown, not run"))
