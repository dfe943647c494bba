"""The GitHub workflows (they cannot run here): linted with actionlint (pinned in
.github/actionlint/package-lock.json; `make actionlint` installs it), and read for what they must do."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LINT = ROOT / ".github" / "actionlint"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _actionlint(*files) -> list[dict]:
    assert (LINT / "node_modules" / "@tktco" / "node-actionlint").is_dir(), \
        "actionlint is not installed: run `make actionlint`"
    proc = subprocess.run(["node", str(LINT / "lint.cjs"), *map(str, files)], capture_output=True,
                          text=True, timeout=120)
    return json.loads(proc.stdout)


def test_the_workflows_lint_clean():
    assert len(WORKFLOWS) == 2
    assert _actionlint(*WORKFLOWS) == []


def test_the_linter_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
                   "      - run: echo ${{ github.no_such_thing }}\n"
                   "      - uses: actions/checkout@v4\n        with:\n          no-such-input: 1\n")
    kinds = sorted(p["kind"] for p in _actionlint(bad))
    assert kinds == ["action", "expression"], kinds


def _load(name):
    data = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    return data.get(True, data.get("on")), data["jobs"]      # YAML reads the key `on` as True


def _runs(job) -> list[str]:
    return [s.get("run", "") for s in job["steps"]] + [s.get("uses", "") for s in job["steps"]]


def test_pushing_to_main_publishes_the_full_book_to_pages():
    on, jobs = _load("book.yml")
    assert on["push"]["branches"] == ["main"]
    build = jobs["build"]
    steps = {s.get("name", s.get("uses")): s for s in build["steps"]}
    assert steps["Build the whole book"]["run"] == "make book"       # the reader's target, full length
    assert steps["Build the whole book"]["env"]["BOOK_REPOSITORY"] == "${{ github.repository }}"
    assert "SAC_LIT_QUICK" not in json.dumps(build)
    cache = steps["Restore the execution cache"]
    assert cache["uses"].startswith("actions/cache@") and cache["with"]["path"] == "_build/.jupyter_cache"
    assert any(u.startswith("actions/upload-pages-artifact@") for u in _runs(build))
    assert next(s for s in build["steps"] if "upload-pages" in s.get("uses", ""))["with"]["path"] == "_build/html"
    assert jobs["deploy"]["needs"] == "build"
    assert jobs["deploy"]["steps"][0]["uses"].startswith("actions/deploy-pages@")
    assert any("book/publish.py --push" in r for r in _runs(build))


def test_pull_requests_run_the_readmes_test_command():
    on, jobs = _load("tests.yml")
    assert "pull_request" in on
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in _runs(jobs["test"])
