"""What observation normalisation changes on chapter 18's point mass.

Trains sac_lit's SAC on `sac_lit/PointMass-v0` (observations in millimetres
and metres per second) with and without `normalize_obs`, the same seeds and
budget, the seeds of each setting batched in one process (chapter 16), and
records every evaluation (10 deterministic episodes each).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/normalisation.py

writes benchmarks/results/normalisation.json with the curves and provenance.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import provenance, write_result  # noqa: E402


def curves(run_dir: Path) -> dict:
    "Each evaluation's step and mean return, from a run's metrics.jsonl."
    rows = [json.loads(line) for line in
            (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    return {"steps": [r["step"] for r in evals],
            "returns": [r["return"] for r in evals]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--eval-every", type=int, default=2_000)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                        "normalisation.json"))
    args = p.parse_args(argv)
    from sac_lit import BatchedSAC, RunConfig, train
    from sac_lit.custom import EnvSpec
    seeds = [int(s) for s in args.seeds.split(",")]
    started = provenance()
    result = {"env": "sac_lit/PointMass-v0", "steps": args.steps,
              "seeds": seeds, "eval_episodes": 10, "runs": {}}
    work = Path(tempfile.mkdtemp())
    for setting in ("raw", "normalised"):
        spec = EnvSpec("sac_lit/PointMass-v0",
                       normalize_obs=setting == "normalised")
        tic = time.perf_counter()
        train(spec, args.steps, seed=seeds, out=work / setting,
              learner=BatchedSAC, progress=True,
              run_config=RunConfig(eval_every=args.eval_every))
        result["runs"][setting] = {
            str(s): curves(work / setting / f"seed_{s}") for s in seeds}
        result[f"{setting}_seconds"] = time.perf_counter() - tic
        finals = [c["returns"][-1] for c in result["runs"][setting].values()]
        print(setting, "final evaluation returns:",
              [round(x, 1) for x in finals])
    write_result({**result, "provenance": started}, args.out)


if __name__ == "__main__":
    main()
