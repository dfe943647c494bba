"""What one CrossQ update costs against one SAC update, and where it goes.

One update on HalfCheetah-sized networks (obs 17, actions 6, 2x256 ReLU,
batch 256 sampled from a replay buffer, one torch thread), in five variants:

  sac             SAC.update (chapter 9), SACConfig()'s defaults
  crossq          CrossQ.update (chapter 20), CrossQConfig()'s defaults
  crossq_var      crossq with BatchRenorm's batch variance by torch.var,
                  z.var(0, correction=0), instead of the mean of squares
  crossq_no_norm  crossq with every BatchRenorm replaced by the identity:
                  the same joint pass and policy delay, no normalisation
  sb3_crossq      sb3-contrib's CrossQ.train(gradient_steps=1) with the same
                  hyper-parameters (benchmarks/peers.py)

The variants run in turns (a block of updates each, then the next), so that
a change in the machine's load hits all of them alike; a block is a multiple
of the policy delay (3), so every variant's time covers whole cycles of two
critic-only updates and one with the policy and temperature steps. The
script prints the median milliseconds per update of each, the median of its
per-round ratios to sac, and the floating-point operations of one update
(averaged over a cycle) counted by torch's FlopCounterMode, which counts the
matrix products (forward and backward) and nothing else.

    .venv/bin/python benchmarks/experiments/crossq_cost.py     # ~2 min

Writes benchmarks/experiments/results/crossq_cost.json with provenance.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from peers import sb3_crossq  # noqa: E402
from provenance import provenance, write_result  # noqa: E402

from sac_lit import (SAC, BatchRenorm, CrossQ, CrossQConfig,  # noqa: E402
                     ReplayBuffer, SACConfig)

ENV, OBS, ACT, BATCH, CYCLE = "HalfCheetah-v5", 17, 6, 256, 3
VARIANTS = ("sac", "crossq", "crossq_var", "crossq_no_norm", "sb3_crossq")


def forward_var(self, z):
    """BatchRenorm's forward pass with the batch variance by torch.var, as
    the package computed it before commit e842b61 (a copy on purpose)."""
    sigma_run = (self.running_var + self.eps).sqrt()
    if not self.training:
        return self.weight * (z - self.running_mean) / sigma_run + self.bias
    mu_b, var_b = z.mean(0), z.var(0, correction=0)
    sigma_b = (var_b + self.eps).sqrt()
    with torch.no_grad():
        kappa_max, delta_max = self.limits()
        kappa = (sigma_b / sigma_run).clamp(1 / kappa_max, kappa_max)
        delta = ((mu_b - self.running_mean) / sigma_run).clamp(
            -delta_max, delta_max)
        self.running_mean.lerp_(mu_b, self.momentum)
        self.running_var.lerp_(var_b, self.momentum)
        self.steps += 1
    return self.weight * ((z - mu_b) / sigma_b * kappa + delta) + self.bias


def without_norm(module: nn.Module) -> None:
    "Every BatchRenorm inside `module` replaced by the identity."
    for name, child in module.named_children():
        if isinstance(child, BatchRenorm):
            setattr(module, name, nn.Identity())
        else:
            without_norm(child)


def filled_buffer(seed: int) -> ReplayBuffer:
    "A replay buffer of 10,000 random transitions of HalfCheetah's sizes."
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(OBS, ACT, 10_000, seed=seed)
    n = 10_000
    buffer.add_batch(rng.normal(size=(n, OBS)), rng.uniform(-1, 1, (n, ACT)),
                     rng.normal(size=n), rng.normal(size=(n, OBS)),
                     np.zeros(n))
    return buffer


class Variant:
    "One variant's update: `step(n)` does n updates; `flops()` counts one."

    def __init__(self, name: str, seed: int = 0):
        self.name, self.patch = name, None
        if name == "sb3_crossq":
            self.model = sb3_crossq(ENV, seed, learning_starts=20_000)
            self.model.learn(total_timesteps=2_000)   # fills, no update
            return
        self.buffer = filled_buffer(seed)
        if name == "sac":
            self.agent = SAC(OBS, ACT, SACConfig(), seed=seed)
            return
        self.agent = CrossQ(OBS, ACT, CrossQConfig(), seed=seed)
        if name == "crossq_no_norm":
            without_norm(self.agent.actor)
            without_norm(self.agent.critic)
        if name == "crossq_var":
            self.patch = mock.patch.object(BatchRenorm, "forward",
                                           forward_var)

    def step(self, n: int) -> None:
        if self.name == "sb3_crossq":
            self.model.train(gradient_steps=n, batch_size=BATCH)
            return
        with self.patch or contextlib.nullcontext():
            for _ in range(n):
                self.agent.update(self.buffer.sample(BATCH))

    def flops(self) -> float:
        "FLOPs of one update, averaged over one policy-delay cycle."
        with FlopCounterMode(display=False) as counter:
            self.step(CYCLE)
        return counter.get_total_flops() / CYCLE


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--block", type=int, default=30,
                   help="updates per variant and round (a multiple of 3)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" /
                   "experiments" / "results" / "crossq_cost.json")
    args = p.parse_args(argv)
    if args.block % CYCLE:
        p.error(f"--block must be a multiple of {CYCLE}")
    torch.set_num_threads(1)
    variants = [Variant(name) for name in VARIANTS]
    flops = {}
    for v in variants:
        v.step(2 * args.block)                     # warm caches, allocator
        flops[v.name] = v.flops()
    ms = {v.name: [] for v in variants}
    for r in range(args.rounds):
        for v in variants[r % len(variants):] + variants[:r % len(variants)]:
            tic = time.perf_counter()
            v.step(args.block)
            ms[v.name].append(1000 * (time.perf_counter() - tic) / args.block)
    ratio = {name: statistics.median(a / b for a, b in zip(t, ms["sac"]))
             for name, t in ms.items()}
    print(f"{'variant':>15} {'ms/update':>10} {'/ sac':>7} {'MFLOP':>8} "
          f"{'/ sac':>7}")
    for name in VARIANTS:
        print(f"{name:>15} {statistics.median(ms[name]):10.2f} "
              f"{ratio[name]:7.2f} {flops[name] / 1e6:8.1f} "
              f"{flops[name] / flops['sac']:7.2f}")
    import sb3_contrib
    write_result({"env_sizes": {"obs": OBS, "act": ACT}, "batch": BATCH,
                  "rounds": args.rounds, "block": args.block,
                  "ms_per_update": ms,
                  "median_ms": {n: statistics.median(t) for n, t in ms.items()},
                  "median_ratio_to_sac": ratio, "flops_per_update": flops,
                  "provenance": provenance(
                      torch_threads=1, sb3_contrib=sb3_contrib.__version__)},
                 args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
