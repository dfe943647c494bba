"""What makes a SAC update fast on a CPU: each change measured on its own.

One SAC update (critic step, policy step, temperature step, Polyak step) on
HalfCheetah-sized networks (obs 17, actions 6, 2x256 ReLU, batch 256) in
several variants, built from sac_lit's own pieces:

  baseline   two QNetworks, Adam's for-loop implementation, the policy
             step's graph through the critics' weights (sac_lit before
             chapter 13)
  foreach    Adam(foreach=True): one multi-tensor kernel per operation
  fused      Adam(fused=True): the whole Adam step in one kernel
  frozen     the policy step evaluates the critics with requires_grad off
  stacked    the twin critics as one network of stacked weights: one
             batched matmul (torch.baddbmm) per layer for both critics
  merged     one actor pass on [s'; s] instead of one on s' and one on s
  compiled   torch.compile of the two losses (compile time reported)
  sac_lit    SAC.update as the package ships it
  whole      the whole update compiled as one graph: chapter 17's
             CompiledUpdate, what `train --compile` runs
  whole_batched
             `whole` with the same parameters evaluated in fewer, larger
             products: both critics' layers in one product each (the first
             layers side by side, the rest by torch.baddbmm) and the actor's
             mean and log-std heads in one product

The variants run in turns (a block of updates each, then the next), so that
a change in the machine's load hits all of them alike; the script prints the
median updates per second of each and the median of its per-round ratios to
the baseline. Each variant's first update is checked against the baseline's
on the same batch and seed: the same losses to 1e-5, or the script stops.

    .venv/bin/python benchmarks/update_ablation.py          # ~5 min

It also times the replay buffer's sampling (NumPy generator and fancy
indexing, against torch.randint and index_select on the same memory) and
writes benchmarks/experiments/results/update_ablation.json with provenance.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import provenance, write_result  # noqa: E402

import torch.nn.functional as F  # noqa: E402
from sac_lit import (SAC, CompiledUpdate, GaussianHead,  # noqa: E402
                     ReplayBuffer, SACConfig, TwinQ, actor_loss,
                     bound_log_std, critic_loss, polyak_update,
                     soft_q_target, temperature_loss)

OBS, ACT, BATCH = 17, 6, 256
VARIANTS = ("baseline", "foreach", "fused", "frozen", "stacked", "merged",
            "compiled", "sac_lit", "whole", "whole_batched")
COMPILED = ("compiled", "whole", "whole_batched")   # first calls compile


class StackedTwinQ(nn.Module):
    "Both critics' layers as stacked weights W [2, n_in, n_out], b [2, 1, n_out]."

    def __init__(self, twin):
        super().__init__()
        layers = [[m for m in q.net if isinstance(m, nn.Linear)]
                  for q in (twin.q1, twin.q2)]
        self.W = nn.ParameterList(
            nn.Parameter(torch.stack([l1.weight.T, l2.weight.T]).contiguous())
            for l1, l2 in zip(*layers))
        self.b = nn.ParameterList(
            nn.Parameter(torch.stack([l1.bias, l2.bias])[:, None].contiguous())
            for l1, l2 in zip(*layers))

    def forward(self, obs, action):
        x = torch.cat([obs, action], -1).expand(2, -1, -1)   # [2, B, in]
        last = len(self.W) - 1
        for k, (W, b) in enumerate(zip(self.W, self.b)):
            x = torch.baddbmm(b, x, W)
            x = x.relu() if k < last else x
        q = x.squeeze(-1)
        return q[0], q[1]


class BatchedTwinQ(TwinQ):
    "TwinQ's own parameters, both critics evaluated in one product per layer."

    def forward(self, obs, action):
        x = torch.cat([obs, action], -1)
        layers = [[m for m in q.net if isinstance(m, nn.Linear)]
                  for q in (self.q1, self.q2)]
        (first1, *rest1), (first2, *rest2) = layers
        h = F.linear(x, torch.cat([first1.weight, first2.weight]),
                     torch.cat([first1.bias, first2.bias]))   # [B, 2n]
        h = h.view(len(x), 2, -1).transpose(0, 1)             # [2, B, n]
        for l1, l2 in zip(rest1, rest2):
            W = torch.stack([l1.weight, l2.weight]).transpose(1, 2)
            b = torch.stack([l1.bias, l2.bias])[:, None]
            h = torch.baddbmm(b, h.relu(), W)
        return h[0, :, 0], h[1, :, 0]


class MergedHead(GaussianHead):
    "GaussianHead's own parameters, mean and log-std heads in one product."

    def forward(self, obs):
        W = torch.cat([self.mean.weight, self.log_std.weight])
        b = torch.cat([self.mean.bias, self.log_std.bias])
        mean, raw = F.linear(self.trunk(obs), W, b).chunk(2, -1)
        return mean, bound_log_std(raw)


class Variant:
    "A SAC agent whose update is built from sac_lit's pieces, with one change."

    def __init__(self, name: str, seed: int = 0):
        self.name = name
        torch.manual_seed(seed)
        ag = self.agent = SAC(OBS, ACT, SACConfig())
        self.compile_seconds = None
        if name == "whole_batched":     # same modules, other forward passes
            ag.actor.head.__class__ = MergedHead
            for critic in (ag.critic, ag.critic_targ):
                critic.__class__ = BatchedTwinQ
        if name in ("sac_lit", "whole", "whole_batched"):
            self.whole = None if name == "sac_lit" else CompiledUpdate(ag)
            return
        if name == "stacked":
            ag.critic = StackedTwinQ(ag.critic)
            ag.critic_targ = copy.deepcopy(ag.critic).requires_grad_(False)
        adam = {"foreach": {"foreach": True}, "fused": {"fused": True}}
        kw = adam.get(name, {"foreach": False})
        ag.actor_opt = torch.optim.Adam(ag.actor.parameters(), lr=3e-4, **kw)
        ag.critic_opt = torch.optim.Adam(ag.critic.parameters(), lr=3e-4, **kw)
        ag.alpha_opt = torch.optim.Adam(ag.temperature.parameters(), lr=3e-4,
                                        **kw)
        self.critic_loss_fn, self.policy_loss_fn = self._critic, self._policy
        if name == "compiled":
            import torch._inductor.config as inductor
            inductor.fallback_random = True     # eager's random numbers
            self.critic_loss_fn = torch.compile(self._critic)
            self.policy_loss_fn = torch.compile(self._policy)

    def _critic(self, obs, action, reward, next_obs, terminated, alpha,
                next_action, next_log_prob):
        ag, c = self.agent, self.agent.config
        with torch.no_grad():
            if next_action is None:
                next_action, next_log_prob = ag.actor(next_obs)
            next_q1, next_q2 = ag.critic_targ(next_obs, next_action)
        y = soft_q_target(reward, terminated, next_q1, next_q2,
                          next_log_prob, c.gamma, alpha)
        return critic_loss(*ag.critic(obs, action), y)

    def _policy(self, obs, alpha, new_action, log_prob):
        ag = self.agent
        if new_action is None:
            new_action, log_prob = ag.actor(obs)
        if self.name == "frozen":
            ag.critic.requires_grad_(False)
        q1, q2 = ag.critic(obs, new_action)
        if self.name == "frozen":
            ag.critic.requires_grad_(True)
        return actor_loss(torch.min(q1, q2), log_prob, alpha), log_prob

    def update(self, batch):
        ag = self.agent
        if self.name in ("sac_lit", "whole", "whole_batched"):
            m = self.whole(batch) if self.whole else ag.update(batch)
            return m["critic_loss"], m["actor_loss"], m["alpha_loss"]
        alpha = ag.temperature.alpha
        obs, action, reward, next_obs, terminated = batch
        next_action = next_log_prob = new_action = log_prob = None
        if self.name == "merged":              # θ does not change before line 11
            both, both_lp = ag.actor(torch.cat([next_obs, obs]))
            n = len(obs)
            next_action, next_log_prob = both[:n].detach(), both_lp[:n].detach()
            new_action, log_prob = both[n:], both_lp[n:]
        loss_q = self.critic_loss_fn(obs, action, reward, next_obs, terminated,
                                     alpha, next_action, next_log_prob)
        ag.critic_opt.zero_grad()
        loss_q.backward()
        ag.critic_opt.step()
        loss_pi, log_prob = self.policy_loss_fn(obs, alpha, new_action,
                                                log_prob)
        ag.actor_opt.zero_grad()
        loss_pi.backward(inputs=ag._theta)
        ag.actor_opt.step()
        loss_alpha = temperature_loss(ag.temperature.log_alpha, log_prob,
                                      ag.target_entropy)
        ag.alpha_opt.zero_grad()
        loss_alpha.backward()
        ag.alpha_opt.step()
        polyak_update(ag.critic_targ, ag.critic, ag.config.rho)
        return loss_q, loss_pi, loss_alpha


def filled_buffer(n: int = 20_000) -> ReplayBuffer:
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(OBS, ACT, n, seed=0)
    buf.add_batch(rng.standard_normal((n, OBS)), rng.uniform(-1, 1, (n, ACT)),
                  rng.standard_normal(n), rng.standard_normal((n, OBS)),
                  (rng.random(n) < 0.01).astype(np.float32))
    return buf


def sampling_micros(buf: ReplayBuffer, repeats: int = 2000) -> dict:
    "µs per minibatch: the buffer's NumPy sampling, and torch on the same rows."
    views = [torch.from_numpy(getattr(buf, k)) for k in
             ("obs", "action", "reward", "next_obs", "terminated")]
    gen = torch.Generator().manual_seed(0)

    def torch_sample():
        i = torch.randint(0, buf.size, (BATCH,), generator=gen)
        return [v.index_select(0, i) for v in views]

    out = {}
    for name, fn in (("numpy", lambda: buf.sample(BATCH)),
                     ("torch", torch_sample)):
        fn()
        times = []
        for _ in range(5):
            tic = time.perf_counter()
            for _ in range(repeats):
                fn()
            times.append((time.perf_counter() - tic) / repeats * 1e6)
        out[name] = statistics.median(times)
    return out


def check_equivalence(variants: dict, batch) -> dict:
    "Every variant's first update gives the baseline's losses (to 1e-5)."
    losses = {}
    for name, v in variants.items():
        torch.manual_seed(123)
        losses[name] = [x.item() for x in v.update(batch)]
    for name, value in losses.items():
        gap = max(abs(a - b) for a, b in zip(value, losses["baseline"]))
        if gap > 1e-5:
            raise SystemExit(f"{name} is not the same update: losses {value} "
                             f"against {losses['baseline']}")
    return losses


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--updates", type=int, default=100,
                   help="updates per variant per round")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                        "update_ablation.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.variants.split(",")
    started = provenance(torch_threads=args.threads)
    buf = filled_buffer()
    variants = {}
    for name in names:
        tic = time.perf_counter()
        variants[name] = Variant(name)
        if name in COMPILED:
            for _ in range(3):
                variants[name].update(buf.sample(BATCH))
            variants[name].compile_seconds = time.perf_counter() - tic
    if "baseline" in variants:
        fresh = {n: Variant(n) for n in names}
        for name in COMPILED:
            if name in fresh:                   # already compiled: reset
                fresh[name] = variants[name]
                fresh[name].agent.load_state_dict(
                    fresh["baseline"].agent.state_dict())
        losses = check_equivalence(fresh, buf.sample(BATCH))
        print("same losses on the first update:",
              ", ".join(f"{n}" for n in losses))
    rates = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names:
            v = variants[name]
            for _ in range(5):                  # warm the caches
                v.update(buf.sample(BATCH))
            tic = time.perf_counter()
            for _ in range(args.updates):
                v.update(buf.sample(BATCH))
            rates[name].append(args.updates / (time.perf_counter() - tic))
        print(f"round {r + 1}/{args.rounds}: " + "  ".join(
            f"{n} {rates[n][-1]:.0f}" for n in names), flush=True)
    rows = {}
    for name in names:
        row = {"median_updates_per_s": statistics.median(rates[name]),
               "rates": rates[name]}
        if "baseline" in rates:
            row["median_ratio_to_baseline"] = statistics.median(
                a / b for a, b in zip(rates[name], rates["baseline"]))
        if variants[name].__dict__.get("compile_seconds") is not None:
            row["compile_seconds"] = variants[name].compile_seconds
        rows[name] = row
    sampling = sampling_micros(buf)
    print(f"\n{'variant':>13} {'updates/s':>10} {'x baseline':>11}")
    for name, row in rows.items():
        ratio = row.get("median_ratio_to_baseline", float("nan"))
        extra = (f"  (compile {row['compile_seconds']:.0f} s)"
                 if "compile_seconds" in row else "")
        print(f"{name:>13} {row['median_updates_per_s']:10.1f} "
              f"{ratio:11.2f}{extra}")
    print(f"\nsampling a minibatch of {BATCH}: numpy {sampling['numpy']:.1f} µs,"
          f" torch {sampling['torch']:.1f} µs")
    record = {"obs_dim": OBS, "act_dim": ACT, "batch_size": BATCH,
              "hidden_sizes": [256, 256], "threads": args.threads,
              "rounds": args.rounds, "updates_per_round": args.updates,
              "variants": rows, "sampling_micros": sampling,
              "provenance": started}
    write_result(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
