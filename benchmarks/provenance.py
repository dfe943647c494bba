"""Provenance of a benchmark result: the command, the code, the machine, the date.

Shared by the scripts in benchmarks/ so that every committed result file says
where its numbers came from.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    "The CPU model and the number of logical CPUs, from /proc/cpuinfo."
    try:
        cpu = [line.split(":", 1)[1].strip()
               for line in Path("/proc/cpuinfo").read_text().splitlines()
               if line.startswith("model name")]
        return f"{cpu[0]} (x{len(cpu)})" if cpu else platform.processor()
    except OSError:
        return platform.processor()


def provenance(**extra) -> dict:
    "Command, git commit, sources' hash, CPU, library versions, UTC date."
    import gymnasium
    import torch
    info = {
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(
            timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        **extra,
    }
    try:
        import stable_baselines3
        info["stable_baselines3"] = stable_baselines3.__version__
    except ImportError:
        info["stable_baselines3"] = None
    git = ["git", "-C", str(ROOT)]
    try:
        info["git_commit"] = subprocess.run(
            git + ["rev-parse", "HEAD"], capture_output=True, text=True,
            check=True).stdout.strip()
        dirty = subprocess.run(git + ["status", "--porcelain", "--", "sac_lit"],
                               capture_output=True, text=True).stdout.strip()
        info["sac_lit_uncommitted_changes"] = bool(dirty)
    except (OSError, subprocess.CalledProcessError):
        info["git_commit"] = None
    digest = hashlib.sha256()
    for path in sorted((ROOT / "sac_lit").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    info["sac_lit_sources_sha256"] = digest.hexdigest()
    info["cpu"] = cpu_name()
    return info


def write_result(record: dict, path) -> Path:
    "Write a result as indented JSON (creating its folder); say where."
    import json
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")
    return path
