"""The package is what the notebooks export, and the notebooks are stored stripped.

`sac_lit/` is generated from `notebooks/*.ipynb` by nbdev (only `__init__.py` and `__main__.py` are
hand-written).
This re-exports the notebooks into a scratch copy of the project and compares the result with the
`sac_lit/` in this checkout, file by file, so a changed, a new *and* a deleted module are all caught.
Fix a failure with `make export` (then commit both the notebook and the package).
"""
from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
HAND_WRITTEN = {"__init__.py", "__main__.py"}


def _package_files(pkg: Path) -> dict[str, Path]:
    return {p.relative_to(pkg).as_posix(): p for p in pkg.rglob("*.py") if "__pycache__" not in p.parts}


def _export_into(scratch: Path) -> Path:
    "Copy notebooks + config + hand-written files into `scratch`, run nbdev-export there, return its package."
    shutil.copytree(ROOT / "notebooks", scratch / "notebooks")
    shutil.copy(ROOT / "pyproject.toml", scratch / "pyproject.toml")
    (scratch / "sac_lit").mkdir()
    for name in HAND_WRITTEN:
        shutil.copy(ROOT / "sac_lit" / name, scratch / "sac_lit" / name)
    env = {k: v for k, v in os.environ.items() if k != "IN_TEST"}  # nbdev-export is a no-op under IN_TEST
    exporter = Path(sys.executable).with_name("nbdev-export")
    proc = subprocess.run([str(exporter)], cwd=scratch, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return scratch / "sac_lit"


def diff_packages(committed: Path, exported: Path) -> list[str]:
    "Human-readable differences between two package trees ([] when identical)."
    a, b = _package_files(committed), _package_files(exported)
    problems = [f"{name}: in sac_lit/ but no notebook exports it (stale module: delete it)"
                for name in sorted(a.keys() - b.keys())]
    problems += [f"{name}: a notebook exports it but it is not in sac_lit/ (run `make export`)"
                 for name in sorted(b.keys() - a.keys())]
    problems += [f"{name}: differs from what the notebooks export (run `make export`)"
                 for name in sorted(a.keys() & b.keys()) if not filecmp.cmp(a[name], b[name], shallow=False)]
    return problems


def test_package_matches_notebooks(tmp_path):
    assert NOTEBOOKS, "no notebooks found"
    problems = diff_packages(ROOT / "sac_lit", _export_into(tmp_path))
    assert not problems, "sac_lit/ is out of sync with the notebooks:\n" + "\n".join(problems)


def test_sync_check_catches_changed_new_and_deleted_modules(tmp_path):
    "The comparison itself must notice each kind of drift (guards against a check that cannot fail)."
    exported = _export_into(tmp_path / "scratch")
    committed = tmp_path / "committed"
    shutil.copytree(exported, committed)
    assert diff_packages(committed, exported) == []
    some_module = next(p for p in sorted(committed.glob("*.py")) if p.name not in HAND_WRITTEN | {"_modidx.py"})
    some_module.write_text(some_module.read_text() + "\n# edited by hand\n")
    other = next(p for p in sorted(committed.glob("*.py")) if p.name not in HAND_WRITTEN | {"_modidx.py", some_module.name})
    other.unlink()
    (committed / "stale.py").write_text("x = 1\n")
    problems = "\n".join(diff_packages(committed, exported))
    assert f"{some_module.name}: differs" in problems
    assert "stale.py: in sac_lit/ but no notebook exports it" in problems
    assert f"{other.name}: a notebook exports it" in problems


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_stored_stripped(nb_path):
    nb = json.loads(nb_path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"])
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{nb_path.name}: cells {dirty} carry outputs or execution counts; run `make strip`"
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3"
