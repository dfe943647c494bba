"""Every committed benchmark result says where it came from, and came from committed code.

The book quotes the files in benchmarks/results/ and benchmarks/experiments/results/; a number is only
reproducible if the code that produced it is in the history. Each file's provenance (written by
benchmarks/provenance.py) must name the command, a commit of this repository, and report that the
package had no uncommitted changes when it ran."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULT_FILES = sorted([*(ROOT / "benchmarks" / "results").rglob("*.json"),
                       *(ROOT / "benchmarks" / "experiments" / "results").rglob("*.json")])


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


def in_history(commit: str) -> bool:
    "The commit is HEAD or one of its ancestors."
    return git("merge-base", "--is-ancestor", commit, "HEAD").returncode == 0


def test_there_are_result_files():
    assert len(RESULT_FILES) >= 10, RESULT_FILES


@pytest.mark.parametrize("path", RESULT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_result_comes_from_committed_code(path):
    provenance = json.loads(path.read_text())["provenance"]
    assert provenance["command"].strip(), path
    assert provenance["sac_lit_uncommitted_changes"] is False, (path, "uncommitted code")
    commit = provenance["git_commit"]
    assert re.fullmatch(r"[0-9a-f]{40}", commit or ""), (path, commit)
    if git("rev-parse", "--is-shallow-repository").stdout.strip() != "true":
        assert in_history(commit), (path, commit, "not in this repository's history")
    trained_by_runs(json.loads(path.read_text()), path)


def trained_by_runs(record: dict, path) -> None:
    "A result gathered over several sittings names, per run, the committed code that trained it."
    runs = record.get("runs")
    if not isinstance(runs, list):
        return
    shallow = git("rev-parse", "--is-shallow-repository").stdout.strip() == "true"
    for run in runs:
        if not isinstance(run, dict) or "trained_at" not in run:
            continue
        at = run["trained_at"]
        assert at and at["sac_lit_uncommitted_changes"] is False, (path, run["seed"], "uncommitted code")
        assert re.fullmatch(r"[0-9a-f]{40}", at["git_commit"] or ""), (path, at)
        if not shallow:
            assert in_history(at["git_commit"]), (path, at, "not in this repository's history")


def test_the_check_catches_uncommitted_code(tmp_path):
    "The rule above, applied to a provenance that admits uncommitted code, fails."
    bad = tmp_path / "bad.json"
    good = json.loads(RESULT_FILES[0].read_text())
    good["provenance"]["sac_lit_uncommitted_changes"] = True
    bad.write_text(json.dumps(good))
    with pytest.raises(AssertionError, match="uncommitted code"):
        test_result_comes_from_committed_code(bad)
    assert not in_history("0" * 40)


def test_the_check_catches_a_run_trained_by_uncommitted_code():
    "A run of a multi-sitting result trained with uncommitted code, or at an unknown commit, fails."
    head = git("rev-parse", "HEAD").stdout.strip()
    at = {"git_commit": head, "sac_lit_uncommitted_changes": False}
    trained_by_runs({"runs": [{"seed": 0, "trained_at": at}]}, "ok")
    with pytest.raises(AssertionError, match="uncommitted code"):
        dirty = {**at, "sac_lit_uncommitted_changes": True}
        trained_by_runs({"runs": [{"seed": 0, "trained_at": dirty}]}, "bad")
    with pytest.raises(AssertionError):
        trained_by_runs({"runs": [{"seed": 0, "trained_at": None}]}, "bad")
