"""K seeds in one process with batched networks, against K separate processes.

Training: for each K, sac_lit.train with K seeds and learner=BatchedSAC
trains K seeds of SAC on HalfCheetah-v5 in one process (2 torch threads), and the same K seeds run as
ordinary sac_lit.train processes, two at a time with one thread each (the
best use of 2 cores for separate processes). Both report total training
steps per second after the warm-up: each step acts, steps the simulator,
stores the transition and does one gradient update per seed. For separate
processes the two concurrent runs' steps per second are summed, and the
median over the pairs is taken.

Update only: seed-updates per second of sac_lit.BatchedSAC.update (and of
chapter 9's SAC.update for K = 1) on random batches, each in a fresh process,
with the allocator as it is and after sac_lit.seeds.tune_allocator(); and
the roofline of chapter 13 (measured matmul peak / FLOPs of one update).

    .venv/bin/python benchmarks/many_seeds.py            # ~15 min on 2 cores

Writes benchmarks/results/many_seeds.json with provenance.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import provenance, write_result  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--ks", default="1,2,4,8", help="numbers of seeds")
    p.add_argument("--steps", type=int, default=3_000,
                   help="environment steps per run, warm-up included")
    p.add_argument("--learning-starts", type=int, default=1_000)
    p.add_argument("--updates", type=int, default=60,
                   help="timed updates per round (update-only part)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                        "many_seeds.json"))
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--k", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    p.add_argument("--tuned", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ------------------------------------------------------------ the workers

def loop(args):
    from sac_lit import RunConfig
    return RunConfig(learning_starts=args.learning_starts, eval_every=0,
                     checkpoint_every=10**9)


def work_batched(args) -> dict:
    from sac_lit import BatchedSAC, train
    summaries = train(args.env, args.steps, list(range(args.k)),
                      run_config=loop(args), progress=False,
                      learner=BatchedSAC)
    return {"sps": sum(s["train_sps"] for s in summaries)}


def work_single(args) -> dict:
    from sac_lit import train
    summary = train(args.env, args.steps, seed=args.seed,
                    run_config=loop(args), progress=False)
    return {"sps": summary["train_sps"]}


def work_update(args) -> dict:
    "Seed-updates/s of the update alone: median of 5 rounds."
    import time

    import torch
    from sac_lit import SAC
    from sac_lit.buffer import Batch
    from sac_lit.seeds import BatchedSAC, tune_allocator
    if args.tuned:
        tune_allocator()
    obs_dim, act_dim, b, k = 17, 6, 256, args.k
    shape = () if k == 0 else (k,)
    batch = Batch(torch.randn(*shape, b, obs_dim),
                  torch.rand(*shape, b, act_dim) * 2 - 1,
                  torch.randn(*shape, b), torch.randn(*shape, b, obs_dim),
                  torch.zeros(*shape, b))
    if k == 0:                                   # chapter 9's SAC
        agent, per_update = SAC(obs_dim, act_dim), 1
    else:
        agents = [SAC(obs_dim, act_dim, seed=i) for i in range(k)]
        agent, per_update = BatchedSAC(agents, tune=False), k
    n = max(args.updates // max(k, 1), 10)
    for _ in range(10):
        agent.update(batch)
    rates = []
    for _ in range(5):
        tic = time.perf_counter()
        for _ in range(n):
            agent.update(batch)
        rates.append(per_update * n / (time.perf_counter() - tic))
    return {"seed_updates_per_s": statistics.median(rates)}


def worker(args) -> None:
    import torch
    torch.set_num_threads(args.threads)
    work = {"batched": work_batched, "single": work_single,
            "update": work_update}[args.worker]
    print(json.dumps(work(args)))


def start(kind: str, args, k=1, seed=0, threads=2, tuned=False):
    cmd = [sys.executable, __file__, "--worker", kind, "--k", str(k),
           "--seed", str(seed), "--threads", str(threads), "--env", args.env,
           "--steps", str(args.steps), "--updates", str(args.updates),
           "--learning-starts", str(args.learning_starts)]
    cmd += ["--tuned"] if tuned else []
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT)


def result(proc) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed:\n{err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


# ------------------------------------------------------------------- main

def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    ks = [int(k) for k in args.ks.split(",")]
    started = provenance()
    from sac_lit.speed import matmul_gflops, update_flops
    import torch
    torch.set_num_threads(2)
    peak = matmul_gflops(2048, 2048, 2048, repeats=15)
    roofline = peak * 1e9 / update_flops(17, 6, 256, (256, 256))
    print(f"roofline: {peak:.0f} GFLOP/s / one update = {roofline:.0f} "
          "updates/s", flush=True)

    updates = []
    for k in [0] + ks:
        row = {"k": k}
        for tuned in (False, True):          # alternating, fresh processes
            r = result(start("update", args, k=k, tuned=tuned))
            row["tuned" if tuned else "default"] = r["seed_updates_per_s"]
        updates.append(row)
        name = "SAC.update" if k == 0 else f"BatchedSAC K={k}"
        print(f"update only, {name:>16}: {row['default']:6.1f} seed-updates"
              f"/s, tuned allocator {row['tuned']:6.1f}", flush=True)

    train = []
    for k in ks:
        batched = result(start("batched", args, k=k))["sps"]
        pair_sums = []
        for first in range(0, k, 2):         # two single-thread runs at once
            procs = [start("single", args, seed=s, threads=1)
                     for s in range(first, min(first + 2, k))]
            pair_sums.append(sum(result(p)["sps"] for p in procs))
        separate = statistics.median(pair_sums)
        train.append({"k": k, "batched_sps": batched,
                      "separate_sps": separate, "separate_pairs": pair_sums})
        print(f"train, K={k}: batched {batched:6.1f} steps/s in all, "
              f"separate {separate:6.1f} ({batched / separate:.2f}x); "
              f"{batched / roofline:.0%} of the roofline", flush=True)

    record = {"env": args.env, "steps": args.steps,
              "learning_starts": args.learning_starts,
              "timed_steps": args.steps - args.learning_starts,
              "matmul_peak_gflops": peak, "roofline_updates_per_s": roofline,
              "update": updates, "train": train, "provenance": started}
    write_result(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
