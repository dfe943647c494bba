"""Where a training step's time goes: act, simulator, buffer, update.

Runs chapter 10's loop (`Trainer.fit`) on HalfCheetah-v5 (batch 256, 2x256
networks, no evaluation) with a timer around each part of a step after the
warm-up: the learner's `act`, `env.step`, `buffer.add`, `buffer.sample`, the
update and `EpisodeMetrics.add`. "other" is the step's time that none of them covers
(the loop itself, episode ends, the progress counters). The first update
of a compiled run is left out of the update's time (it compiles).

Then the matrix products: the 256x256x256 product (16 of the update's 49)
timed alone with warm caches, alone after 16 MB of other memory traffic,
and inside the compiled update (PyTorch's profiler, 50 updates).

    .venv/bin/python benchmarks/step_breakdown.py        # ~3 min on 2 cores

Writes benchmarks/results/step_breakdown.json with provenance.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import provenance, write_result  # noqa: E402

PARTS = ("act", "env.step", "buffer.add", "buffer.sample", "update",
         "metrics.add")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--steps", type=int, default=6_000,
                   help="environment steps per run, warm-up included")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path,
                   default=ROOT / "benchmarks/results/step_breakdown.json")
    return p.parse_args(argv)


class Timers:
    "Seconds and calls per part, counted while `active()` (after warm-up)."

    def __init__(self):
        self.seconds, self.calls = defaultdict(float), defaultdict(int)
        self.active = lambda: True

    def add(self, part: str, seconds: float) -> None:
        if self.active():
            self.seconds[part] += seconds
            self.calls[part] += 1

    def wrap(self, obj, method: str, part: str) -> None:
        inner = getattr(obj, method)

        def timed(*args, **kwargs):
            tic = time.perf_counter()
            out = inner(*args, **kwargs)
            self.add(part, time.perf_counter() - tic)
            return out
        setattr(obj, method, timed)


def breakdown(env_id: str, steps: int, compile: bool) -> dict:
    "One run of chapter 10's loop with each part of a step timed, in µs."
    from sac_lit import SAC, Run, RunConfig, SACConfig, Trainer
    from sac_lit.compiled import CompiledUpdate
    config = SACConfig()
    loop = RunConfig(eval_every=0, checkpoint_every=10**9)
    run = Run(env_id, 0, config.buffer_size)
    agent = SAC(run.obs_dim, run.act_dim, config)
    learner = CompiledUpdate(agent) if compile else agent
    trainer = Trainer([run], learner, loop, getattr(learner, "callbacks", []))
    timers = Timers()
    timers.active = lambda: run.step >= loop.learning_starts   # after acting
    timers.wrap(learner, "act", "act")
    timers.wrap(run.env, "step", "env.step")
    timers.wrap(run.buffer, "add", "buffer.add")
    timers.wrap(run.buffer, "sample", "buffer.sample")
    timers.wrap(trainer.metrics, "add", "metrics.add")
    update = learner.update

    def timed_update(batch):                       # the first one compiles
        tic = time.perf_counter()
        out = update(batch)
        timers.calls["first update"] += 1
        if timers.calls["first update"] > 1 or not compile:
            timers.add("update", time.perf_counter() - tic)
        return out

    learner.update = timed_update
    trainer.fit(steps)
    summary = trainer.summary()
    # Each part runs once per timed step (the update once per step but the
    # first, when compiled): its µs per step is its mean per call. "other"
    # is the rest of train_seconds, less the first (compiling) update.
    timed = summary["train_steps"]
    seconds = summary["train_seconds"] - (summary.get("compile_seconds")
                                          or 0.0)
    parts = {k: timers.seconds[k] / timers.calls[k] * 1e6
             for k in PARTS if timers.calls[k]}
    other = (seconds - sum(timers.seconds[k] for k in PARTS)) / timed * 1e6
    per_step = sum(parts.values()) + other
    return {"train_sps": summary["train_sps"], "us_per_step": per_step,
            "timed_steps": timed,
            "calls": {k: timers.calls[k] for k in PARTS},
            "us_per_step_by_part": parts, "us_per_step_other": other,
            "compile_seconds": summary.get("compile_seconds")}


def median_us(f, repeats=7, n=300) -> float:
    "Median over `repeats` of the mean time of `n` calls, in µs."
    for _ in range(20):
        f()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        for _ in range(n):
            f()
        times.append((time.perf_counter() - tic) / n)
    return statistics.median(times) * 1e6


def matmul_times() -> dict:
    "The 256³ product alone (warm, after other traffic) and in the update."
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    other = torch.randn(4_000_000)                 # 16 MB of other memory
    warm = median_us(lambda: torch.mm(a, b))
    traffic = median_us(lambda: other.mul_(1.0), n=100)
    cold = median_us(lambda: (other.mul_(1.0), torch.mm(a, b)),
                     n=100) - traffic

    from torch.profiler import ProfilerActivity, profile
    from sac_lit import SAC, SACConfig
    from sac_lit.compiled import CompiledUpdate
    torch.manual_seed(0)
    from sac_lit.buffer import Batch
    agent, B = SAC(17, 6, SACConfig()), 256
    batch = Batch(torch.randn(B, 17), torch.rand(B, 6) * 2 - 1,
                  torch.randn(B), torch.randn(B, 17), torch.zeros(B))
    update = CompiledUpdate(agent).update
    for _ in range(20):
        update(batch)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as p:
        for _ in range(50):
            update(batch)
    big, all_mm, total = [], 0.0, 0.0
    for e in p.key_averages(group_by_input_shape=True):
        if e.key in ("aten::mm", "aten::addmm"):
            all_mm += e.self_cpu_time_total
            shapes = [s for s in e.input_shapes if len(s) == 2]
            if all(s == [256, 256] for s in shapes):
                big.append((e.self_cpu_time_total, e.count))
        if e.key.startswith("Torch-Compiled Region"):
            total += e.cpu_time_total
    big_us = sum(t for t, _ in big) / sum(c for _, c in big)
    return {"mm_256_warm_us": warm, "mm_256_after_16MB_traffic_us": cold,
            "mm_256_in_compiled_update_us": big_us,
            "mm_256_calls_per_update": sum(c for _, c in big) / 50,
            "all_products_us_per_update": all_mm / 50,
            "compiled_update_us_profiled": total / 50}


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    record = {"env": args.env, "steps": args.steps, "threads": args.threads,
              "runs": {}}
    for name, compile in (("sac_lit", False), ("sac_lit_compiled", True)):
        print(f"training {name} for {args.steps} steps ...", flush=True)
        result = record["runs"][name] = breakdown(args.env, args.steps,
                                                  compile)
        print(f"  {result['train_sps']:.1f} steps/s, "
              f"{result['us_per_step']:.0f} µs per step after the warm-up")
        for part, us in result["us_per_step_by_part"].items():
            print(f"  {part:14s} {us:7.0f} µs")
        print(f"  {'other':14s} {result['us_per_step_other']:7.0f} µs")
    print("the 256x256x256 matrix product ...", flush=True)
    mm = record["matmul"] = matmul_times()
    print(f"  alone, warm caches      {mm['mm_256_warm_us']:6.0f} µs\n"
          f"  after 16 MB of traffic  {mm['mm_256_after_16MB_traffic_us']:6.0f}"
          f" µs\n"
          f"  in the compiled update  {mm['mm_256_in_compiled_update_us']:6.0f}"
          f" µs ({mm['mm_256_calls_per_update']:.0f} per update)\n"
          f"  all products per update {mm['all_products_us_per_update']:6.0f}"
          f" µs of {mm['compiled_update_us_profiled']:.0f} (profiled)")
    record["provenance"] = provenance(torch_threads=args.threads)
    write_result(record, args.out)
    return record


if __name__ == "__main__":
    main()
