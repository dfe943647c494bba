"""Training speed of this tree against an earlier commit, in alternating processes.

For a change that must not slow training down. `git worktree` checks out the
earlier commit in a temporary folder; then `python -m sac_lit train` runs the
same short training (HalfCheetah-v5 by default, no evaluation) alternately from
that tree and from this one, each in a fresh process with the same threads
(PYTHONPATH puts the tree's own `sac_lit` first; each process prints which
one it imported, and has its own torch.compile cache). Each run reports
`train_sps` in its summary.json: steps per second after the warm-up, every
step acting, simulating, storing and doing one update. With --compile the
script also reports the speed without the first, compiling update
(`compile_seconds` taken out of `train_seconds`). The ratio after /
before is taken within each pair, so a change in
the machine's load hits both, and the median over the pairs is printed.

    .venv/bin/python benchmarks/before_after.py --before d4e0e8d  # ~6 min
    .venv/bin/python benchmarks/before_after.py --before d4e0e8d \\
        --flags=--compile                      # the compiled update
    .venv/bin/python benchmarks/before_after.py --before d4e0e8d \\
        --flags=--seeds=0-3                    # 4 seeds, batched

Writes benchmarks/results/before_after/<name>.json with provenance.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import provenance, write_result  # noqa: E402

SHOW_IMPORT = ("import runpy, sys, sac_lit; "
               "print('sac_lit from', sac_lit.__file__, file=sys.stderr); "
               "sys.argv = ['sac_lit', *sys.argv[1:]]; "
               "runpy.run_module('sac_lit', run_name='__main__')")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", required=True, metavar="REV",
                   help="the earlier commit (any git revision)")
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--steps", type=int, default=3_000,
                   help="steps per run (the first 1,000 are the warm-up)")
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--flags", default="",
                   help="extra `train` flags for both trees, e.g. --compile")
    p.add_argument("--name", default=None,
                   help="result file name (default: from --flags)")
    return p.parse_args(argv)


def one_run(tree: Path, args, run_dir: Path) -> float:
    "train_sps of one fresh `python -m sac_lit train` from `tree`."
    cmd = [sys.executable, "-c", SHOW_IMPORT, "train", "--env", args.env,
           "--steps", str(args.steps), "--out", str(run_dir),
           "--eval-every", "0", "--no-progress", *shlex.split(args.flags)]
    # its own compile cache: with --compile, a run must not find the
    # kernels the other tree's run just compiled (the second would win)
    env = {**os.environ, "PYTHONPATH": str(tree),
           "TORCHINDUCTOR_CACHE_DIR": str(run_dir.parent / "inductor"
                                          / run_dir.name)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          cwd=run_dir.parent)
    imported = [line for line in proc.stderr.splitlines()
                if line.startswith("sac_lit from")]
    if proc.returncode != 0 or not imported:
        sys.exit(f"run from {tree} failed:\n{proc.stderr[-2000:]}")
    if not imported[0].endswith(str(tree / "sac_lit" / "__init__.py")):
        sys.exit(f"expected sac_lit from {tree}, got: {imported[0]}")
    summaries = [json.loads(p.read_text())
                 for p in sorted(run_dir.rglob("summary.json"))]
    sps = sum(s["train_sps"] for s in summaries)  # --seeds: every seed's
    # without the first, compiling update (--compile): steps per second once
    # compiled; the same as sps when nothing was compiled
    steady = sum(s["train_steps"] / (s["train_seconds"]
                                     - (s.get("compile_seconds") or 0.0))
                 for s in summaries)
    return sps, steady


def main(argv=None) -> int:
    args = parse_args(argv)
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", args.before],
                         capture_output=True, text=True, check=True)
    before_commit = rev.stdout.strip()
    name = args.name or ("default" if not args.flags else
                         args.flags.strip("-").replace("=", "_")
                         .replace(" ", "_").replace("-", "_"))
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach",
                        str(old), before_commit], check=True,
                       capture_output=True)
        try:
            trees = {"before": old, "after": ROOT}
            sps = {"before": [], "after": []}
            steady = {"before": [], "after": []}
            for i in range(args.pairs):
                order = ("before", "after") if i % 2 == 0 else ("after",
                                                                "before")
                for which in order:
                    run_dir = Path(tmp) / f"{which}_{i}"
                    run_sps, run_steady = one_run(trees[which], args, run_dir)
                    sps[which].append(run_sps)
                    steady[which].append(run_steady)
                ratio = sps["after"][-1] / sps["before"][-1]
                print(f"pair {i + 1}: before {sps['before'][-1]:7.1f} steps/s,"
                      f" after {sps['after'][-1]:7.1f} ({ratio:.3f})",
                      flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove",
                            "--force", str(old)], capture_output=True)
    ratios = [a / b for a, b in zip(sps["after"], sps["before"])]
    median = statistics.median(ratios)
    print(f"after / before, median of {len(ratios)} pairs: {median:.3f}")
    steady_ratios = [a / b for a, b in zip(steady["after"], steady["before"])]
    if steady_ratios != ratios:                   # something was compiled
        print("without the compiling update: "
              + ", ".join(f"{r:.3f}" for r in steady_ratios)
              + f"; median {statistics.median(steady_ratios):.3f}")
    write_result({"env": args.env, "steps": args.steps, "flags": args.flags,
                  "before_commit": before_commit,
                  "train_sps": sps, "ratio_per_pair": ratios,
                  "median_ratio": median,
                  "steady_sps": steady, "steady_ratio_per_pair": steady_ratios,
                  "steady_median_ratio": statistics.median(steady_ratios),
                  "provenance": provenance()},
                 ROOT / "benchmarks" / "results" / "before_after"
                 / f"{name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
