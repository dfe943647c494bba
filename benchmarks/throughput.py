"""Training throughput: sac_lit against Stable-Baselines3's SAC, side by side.

Both libraries train SAC on the same environment (HalfCheetah-v5 by default)
with the same hyper-parameters: 2x256 ReLU networks, batch 256, Adam 3e-4,
a 10^6 replay buffer, automatic alpha, one gradient update per environment
step, and the same uniform-random warm-up. Each run is a fresh subprocess
with the same number of torch threads; the runs alternate (sac_lit, SB3,
sac_lit, SB3, ...) so that a change in the machine's load hits both.

`train_sps` is measured the same way for both: environment steps per second
over the steps after the warm-up (each one acting, stepping the simulator,
storing the transition and doing one gradient update), no evaluation.

The script also measures the machine's fp32 matmul peak and turns it into a
roofline: the peak divided by the FLOPs one update needs (the forward and
backward passes of the actor and the critics at this batch size, counted
by sac_lit.update_flops; chapter 13 derives the count). It prints
each run, the median ratio of the pairs, the roofline fraction, and writes a
JSON file with provenance to benchmarks/results/throughput.json.

    .venv/bin/python benchmarks/throughput.py            # ~12 min on 2 cores

Three runs alternate: sac_lit as `train` runs it by default, sac_lit with
`learner=compiled` (`train --compile`, chapter 17: the whole update compiled by
torch.compile; its compile time is inside its timed steps, and reported on
its own as compile_seconds) and SB3.

With `--libs sac_lit,sac_lit_crossq,sb3_crossq` it compares the book's CrossQ
(`train --algo crossq`, CrossQConfig()'s defaults, chapter 20) with
sb3-contrib's CrossQ with the same hyper-parameters, beside the book's SAC; the
roofline is SAC's (chapter 13 counts SAC's update only).

Needs `pip install --no-deps -r benchmarks/requirements.txt` for SB3.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from peers import sb3_crossq, sb3_sac  # noqa: E402
from provenance import provenance, write_result  # noqa: E402

HIDDEN = (256, 256)
PEER = {"sac_lit": "sb3", "sac_lit_compiled": "sb3",     # ratios: lib / peer
        "sac_lit_crossq": "sb3_crossq"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--steps", type=int, default=11_000,
                   help="environment steps per run, warm-up included")
    p.add_argument("--learning-starts", type=int, default=1_000,
                   help="uniform-random warm-up steps (not timed)")
    p.add_argument("--pairs", type=int, default=3,
                   help="(sac_lit, SB3) pairs of runs, alternating")
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads of every run (default 2)")
    p.add_argument("--libs", default="sac_lit,sac_lit_compiled,sb3")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                        "throughput.json"))
    p.add_argument("--worker", help=argparse.SUPPRESS)   # one run, as JSON
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---------------------------------------------------------------- the runs

def run_sac_lit(args) -> dict:
    from sac_lit import CrossQConfig, RunConfig, SACConfig, compiled, train
    config = (CrossQConfig() if args.worker == "sac_lit_crossq"
              else SACConfig(hidden_sizes=HIDDEN))
    loop = RunConfig(learning_starts=args.learning_starts, eval_every=0,
                     checkpoint_every=10**9)
    fast = args.worker == "sac_lit_compiled"
    summary = train(args.env, args.steps, seed=args.seed, config=config,
                    run_config=loop, progress=False,
                    learner=compiled if fast else None)
    result = {"train_sps": summary["train_sps"],
              "timed_steps": summary["train_steps"]}
    if fast:                    # and the rate with the compile time taken out
        seconds = summary["train_seconds"] - summary["compile_seconds"]
        result.update(compile_seconds=summary["compile_seconds"],
                      sps_after_compile=summary["train_steps"] / seconds)
    return result


def run_sb3(args) -> dict:
    from stable_baselines3.common.callbacks import BaseCallback

    clock = {}

    class Clock(BaseCallback):
        "Start the clock when the warm-up ends; stop it at the end."
        def _on_step(self) -> bool:
            if self.num_timesteps == args.learning_starts:
                clock["start"] = time.perf_counter()
            return True

        def _on_training_end(self) -> None:
            clock["end"] = time.perf_counter()

    build = sb3_crossq if args.worker == "sb3_crossq" else sb3_sac
    model = build(args.env, args.seed, args.learning_starts)
    model.learn(total_timesteps=args.steps, callback=Clock())
    timed = args.steps - args.learning_starts
    return {"train_sps": timed / (clock["end"] - clock["start"]),
            "timed_steps": timed}


def worker(args) -> None:
    import torch
    torch.set_num_threads(args.threads)
    result = {"sac_lit": run_sac_lit, "sac_lit_compiled": run_sac_lit,
              "sac_lit_crossq": run_sac_lit, "sb3": run_sb3,
              "sb3_crossq": run_sb3}[args.worker](args)
    print(json.dumps(result))


def spawn(lib: str, seed: int, args) -> dict:
    "One run in a fresh process (its own threads, allocator and caches)."
    cmd = [sys.executable, __file__, "--worker", lib, "--seed", str(seed),
           "--env", args.env, "--steps", str(args.steps),
           "--learning-starts", str(args.learning_starts),
           "--threads", str(args.threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{lib} run failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------ the roofline

def matmul_peak_gflops(threads: int, n: int = 2048) -> float:
    "Median fp32 GFLOP/s of an n x n matmul with `threads` torch threads."
    import torch
    from sac_lit.speed import matmul_gflops
    torch.set_num_threads(threads)
    return matmul_gflops(n, n, n, repeats=15)


def update_gflop(obs_dim: int, act_dim: int) -> float:
    "GFLOP of one update at batch 256 (sac_lit.update_flops, chapter 13)."
    from sac_lit.speed import update_flops
    return update_flops(obs_dim, act_dim, 256, HIDDEN) / 1e9


def env_dims(env_id: str) -> tuple[int, int]:
    import gymnasium as gym
    env = gym.make(env_id)
    dims = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    return dims


# ------------------------------------------------------------------- main

def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    libs = [lib.strip() for lib in args.libs.split(",")]
    unknown = set(libs) - {*PEER, *PEER.values()}
    if unknown:
        sys.exit(f"error: unknown --libs {', '.join(sorted(unknown))}")
    for lib, module in (("sb3", "stable_baselines3"),
                        ("sb3_crossq", "sb3_contrib")):
        if lib in libs and importlib.util.find_spec(module) is None:
            sys.exit(f"error: {module} is not installed: python -m pip "
                     "install --no-deps -r benchmarks/requirements.txt")
    started = provenance(torch_threads=args.threads)
    runs = {lib: [] for lib in libs}
    for pair in range(args.pairs):
        for lib in libs:                          # alternating, same seed
            r = spawn(lib, pair, args)
            runs[lib].append(r)
            extra = (f"  (compile {r['compile_seconds']:.1f} s; "
                     f"{r['sps_after_compile']:.1f} steps/s without it)"
                     if "compile_seconds" in r else "")
            print(f"pair {pair}  {lib:>16}: {r['train_sps']:6.1f} steps/s"
                  + extra, flush=True)
    peak = matmul_peak_gflops(args.threads)
    gflop = update_gflop(*env_dims(args.env))
    roofline = peak / gflop
    med = {lib: statistics.median(r["train_sps"] for r in runs[lib])
           for lib in libs}
    record = {"env": args.env, "steps": args.steps,
              "learning_starts": args.learning_starts, "threads": args.threads,
              "hidden_sizes": list(HIDDEN), "batch_size": 256,
              "runs": runs, "median_train_sps": med,
              "matmul_peak_gflops": peak, "update_gflop": gflop,
              "roofline_updates_per_s": roofline,
              "roofline_fraction": {lib: med[lib] / roofline for lib in libs
                                    if "crossq" not in lib},
              "provenance": started}
    print(f"\n{args.env}, {args.steps - args.learning_starts} timed steps per "
          f"run, {args.threads} threads, {args.pairs} pairs")
    for lib in libs:
        share = (f", {100 * med[lib] / roofline:4.1f}% of the roofline"
                 if "crossq" not in lib else "")
        print(f"{lib:>16}: median {med[lib]:6.1f} steps/s{share}")
    for lib in (x for x in libs if PEER.get(x) in libs):
        ratios = [a["train_sps"] / b["train_sps"]
                  for a, b in zip(runs[lib], runs[PEER[lib]])]
        key = "" if lib == "sac_lit" else "_" + lib.removeprefix("sac_lit_")
        record["ratio_per_pair" + key] = ratios
        record["median_ratio" + key] = statistics.median(ratios)
        print(f"   ratio: {lib} / {PEER[lib]} = "
              f"{statistics.median(ratios):.2f} (median of pairs; pairs "
              f"{', '.join(f'{r:.2f}' for r in ratios)})")
    print(f"roofline: matmul peak {peak:.0f} GFLOP/s / {gflop:.3f} GFLOP per "
          f"update = {roofline:.0f} updates/s")
    write_result(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
