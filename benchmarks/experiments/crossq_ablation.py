"""What CrossQ's pieces do on their own: SAC without target networks, CrossQ with separate passes.

Two variants, trained like the runs of benchmarks/crossq.py (same environment,
seeds, evaluation every 5,000 steps, 1,000 warm-up steps), for a shorter budget:

  * sac_no_target: SAC with rho = 0, i.e. phi_targ <- phi after every update:
    the target comes from the critics themselves, as in CrossQ, but there is
    no normalisation;
  * crossq_separate: CrossQ with (s, a) and (s', a~') through the critics in
    two training-mode passes, each normalised by its own batch statistics,
    instead of one joint pass (sac_lit.crossq.joint_q replaced in the worker).

Every evaluation row records the mean return and chapter 10's probe of the
critics: min_j Q(s_0, a~_0) at the start of each evaluation episode against
the discounted return G_0 collected from it. The full SAC and CrossQ of
benchmarks/crossq.py (same seeds) are the reference; the result file holds
both variants' rows per run.

    .venv/bin/python benchmarks/experiments/crossq_ablation.py --work ../crossq_runs/ablation
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import provenance, write_result  # noqa: E402

VARIANTS = ("sac_no_target", "crossq_separate")
EVAL_EVERY, EVAL_EPISODES, LEARNING_STARTS = 5_000, 10, 1_000


def separate_passes(critic, s, a, s_next, a_next):
    "Two training-mode passes: each half normalised by its own statistics."
    return critic(s, a), critic(s_next, a_next)


def run(job: tuple) -> dict:
    "One (variant, env, seed) run through the sweep's run_one; its rows."
    variant, env_id, seed, steps, work = job
    import torch
    import sac_lit.crossq
    from sac_lit import RunConfig, SACConfig
    from sac_lit.crossq import CrossQConfig
    from sac_lit.sweep import run_dir, run_one
    torch.set_num_threads(1)
    if variant == "crossq_separate":
        sac_lit.crossq.joint_q = separate_passes       # this process only
        config = CrossQConfig()
    else:
        config = SACConfig(rho=0.0)
    loop = RunConfig(learning_starts=LEARNING_STARTS, eval_every=EVAL_EVERY,
                     eval_episodes=EVAL_EPISODES)
    path = run_dir(Path(work) / variant, env_id, seed)
    row = run_one(env_id, seed, steps, path, config, loop, threads=1)
    if row["status"] == "failed":
        return {"variant": variant, "env": env_id, "seed": seed,
                "error": row["error"]}
    rows = [json.loads(line) for line in
            (path / "metrics.jsonl").read_text().splitlines()]
    evals = [{k: r[k] for k in ("step", "return", "q_start",
                                "discounted_start")}
             for r in rows if r["kind"] == "eval"]
    return {"variant": variant, "env": env_id, "seed": seed, "eval": evals}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", default="HalfCheetah-v5")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--steps", type=int, default=30_000)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--work", required=True, type=Path)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" /
                   "experiments" / "results" / "crossq_ablation.json")
    args = p.parse_args(argv)
    started = provenance(torch_threads=1, runs_at_a_time=args.processes)
    jobs = [(v, e, int(s), args.steps, str(args.work))
            for s in args.seeds.split(",") for e in args.envs.split(",")
            for v in args.variants.split(",")]
    with mp.get_context("spawn").Pool(args.processes) as pool:
        results = []
        for r in pool.imap_unordered(run, jobs):
            last = r["eval"][-1] if "eval" in r else r
            print(f"{r['variant']} {r['env']} seed {r['seed']}: {last}",
                  flush=True)
            results.append(r)
    results.sort(key=lambda r: (r["variant"], r["env"], r["seed"]))
    write_result({"steps": args.steps, "eval_every": EVAL_EVERY,
                  "eval_episodes": EVAL_EPISODES, "runs": results,
                  "provenance": started}, args.out)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
