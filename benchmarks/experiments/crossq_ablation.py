"""What CrossQ's pieces do on their own: SAC without target networks, CrossQ with separate passes.

Four variants, trained like the runs of benchmarks/crossq.py (same environment,
seeds, evaluation every 5,000 steps, 1,000 warm-up steps), for a shorter budget:

  * sac and crossq: the book's SAC and CrossQ as they are (their runs equal the
    first 30,000 steps of benchmarks/crossq.py's, bit for bit);
  * sac_no_target: SAC with rho = 0, i.e. phi_targ <- phi after every update:
    the target comes from the critics themselves, as in CrossQ, but there is
    no normalisation;
  * crossq_separate: CrossQ with (s, a) and (s', a~') through the critics in
    two training-mode passes, each normalised by its own batch statistics,
    instead of one joint pass (sac_lit.crossq.joint_q replaced in the worker).

Every evaluation row records the mean return and chapter 10's probe of the
critics: min_j Q(s_0, a~_0) at the start of each evaluation episode against
the discounted return G_0 collected from it. Runs are resumable (the sweep's
run_one); --report collects the finished runs of every variant into the result,
with the provenance of every start that trained (`trained_by`).

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

VARIANTS = ("sac", "sac_no_target", "crossq", "crossq_separate")
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
    config = {"sac": SACConfig(), "sac_no_target": SACConfig(rho=0.0),
              "crossq": CrossQConfig(),
              "crossq_separate": CrossQConfig()}[variant]
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


def collect(work: Path, variants, envs, seeds, steps) -> list[dict]:
    "The evaluation rows of every finished run."
    from sac_lit.sweep import run_dir
    out = []
    for variant in variants:
        for env_id in envs:
            for seed in seeds:
                path = run_dir(work / variant, env_id, seed)
                try:
                    done = json.loads((path / "summary.json").read_text())
                except OSError:
                    continue
                if done["steps"] != steps:
                    continue
                rows = [json.loads(line) for line in
                        (path / "metrics.jsonl").read_text().splitlines()]
                out.append({"variant": variant, "env": env_id, "seed": seed,
                            "eval": [{k: r[k] for k in ("step", "return",
                                                        "q_start",
                                                        "discounted_start")}
                                     for r in rows if r["kind"] == "eval"]})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", default="HalfCheetah-v5")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--steps", type=int, default=30_000)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--work", required=True, type=Path)
    p.add_argument("--report", action="store_true",
                   help="only collect the finished runs into --out")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" /
                   "experiments" / "results" / "crossq_ablation.json")
    args = p.parse_args(argv)
    started = provenance(torch_threads=1, runs_at_a_time=args.processes)
    variants, envs = args.variants.split(","), args.envs.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    launches, failed = args.work / "launches.json", []
    if not args.report:
        args.work.mkdir(parents=True, exist_ok=True)
        before = json.loads(launches.read_text()) if launches.is_file() else []
        launches.write_text(json.dumps(before + [started], indent=1))
        jobs = [(v, e, s, args.steps, str(args.work))
                for s in seeds for e in envs for v in variants]
        with mp.get_context("spawn").Pool(args.processes) as pool:
            for r in pool.imap_unordered(run, jobs):
                last = r["eval"][-1] if "eval" in r else r
                print(f"{r['variant']} {r['env']} seed {r['seed']}: {last}",
                      flush=True)
                failed += ["error" in r]
    runs = collect(args.work, variants, envs, seeds, args.steps)
    trained = json.loads(launches.read_text()) if launches.is_file() else []
    write_result({"steps": args.steps, "eval_every": EVAL_EVERY,
                  "eval_episodes": EVAL_EPISODES, "runs": runs,
                  "trained_by": trained, "provenance": started}, args.out)
    return 1 if any(failed) else 0


if __name__ == "__main__":
    sys.exit(main())
