"""Acting and sampling inside the compiled update: what they would win.

The compiled update (chapter 17) leaves about 0.6 ms of a 4.5 ms step to
eager Python: acting, the simulator, storing and sampling. This measures
what moving the tensor work of acting and sampling into the compiled graph
wins, with the same math and the same random draws:

    train order   ã = π_θ(s) eagerly, env.step, store, sample eagerly,
                  CompiledUpdate (what `train --compile` does)
    act inside    the next action ã' = tanh(μ_θ(s') + σ_θ(s') ⊙ ξ) is
                  computed at the end of the compiled update, with the
                  updated θ (the env's s' is known by then)
    act + sample  also the minibatch: the indices are drawn as
                  ReplayBuffer.sample draws them, the rows gathered inside
                  the graph from the buffer's own arrays

Before timing, one step of each fused variant is checked against the train
order on a copy of the agent from the same state and random streams: the
action, the losses and every updated tensor agree to 1e-5, or it stops.
Then the variants run in turns (`--rounds`), each `--steps` env steps, and
the speed-ups are medians of the rounds' ratios.

    .venv/bin/python benchmarks/loop_fusion.py          # ~3 min on 2 cores

Writes benchmarks/experiments/results/loop_fusion.json with provenance.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch.func import functional_call

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import provenance, write_result  # noqa: E402

from sac_lit import SAC  # noqa: E402
from sac_lit.buffer import ReplayBuffer  # noqa: E402
from sac_lit.compiled import CompiledUpdate, functional_update  # noqa: E402

VARIANTS = ("train order", "act inside", "act + sample")
ROWS = ("obs", "action", "reward", "next_obs", "terminated")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--steps", type=int, default=1500,
                   help="env steps per variant per round")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path,
                   default=ROOT / "benchmarks/experiments/results/loop_fusion.json")
    return p.parse_args(argv)


class FusedStep:
    """The update, then ã' ~ π_θ(·|s') with the updated θ, in one graph.
    gather=True: the minibatch's rows are gathered inside it as well.
    compile=False: the same function, eager."""

    def __init__(self, agent: SAC, buffer: ReplayBuffer, gather: bool,
                 compile: bool = True):
        self.agent, self.buffer, self.gather = agent, buffer, gather
        step, head = functional_update(agent), agent.actor.head
        self.rows = [torch.from_numpy(getattr(buffer, k)) for k in ROWS]

        def fused(theta, *state, batch, xi_next, xi, s_act, xi_act):
            if gather:                       # batch: the sampled indices
                batch = tuple(x[batch] for x in self.rows)
            metrics = step(theta, *state, batch, xi_next, xi)
            mu, log_std = functional_call(head, theta, (s_act,))
            return metrics, torch.tanh(mu + log_std.exp() * xi_act)
        self.fused = (torch.compile(fused, fullgraph=True, dynamic=False)
                      if compile else fused)

    def __call__(self, obs, batch_size: int = 256):
        agent, buffer = self.agent, self.buffer
        if self.gather:                      # ReplayBuffer.sample's draw
            batch = torch.from_numpy(
                buffer.rng.integers(0, buffer.size, size=batch_size))
        else:
            batch = tuple(buffer.sample(batch_size))
        shape = (batch_size, agent.act_dim)  # the order SAC.update and
        xi_next, xi = torch.randn(shape), torch.randn(shape)  # act draw
        xi_act = torch.randn(1, agent.act_dim)
        s_act = torch.as_tensor(obs, dtype=torch.float32)[None]
        with torch.no_grad():
            metrics, action = self.fused(
                *CompiledUpdate.state(agent), batch=batch, xi_next=xi_next,
                xi=xi, s_act=s_act, xi_act=xi_act)
        return metrics, action[0].numpy()


class Loop:
    "One env, one agent, one buffer, filled by 1000 uniform-random steps."

    def __init__(self, env_id: str, seed: int = 0):
        self.env = gym.make(env_id)
        obs_dim = self.env.observation_space.shape[0]
        act_dim = self.env.action_space.shape[0]
        torch.manual_seed(seed)
        self.agent = SAC(obs_dim, act_dim)
        self.buffer = ReplayBuffer(obs_dim, act_dim, 100_000, seed=seed)
        self.obs, _ = self.env.reset(seed=seed)
        self.rng = np.random.default_rng(seed)
        for _ in range(1000):
            self.env_step(self.rng.uniform(-1, 1, act_dim).astype(np.float32))

    def env_step(self, a_tilde) -> None:   # HalfCheetah's Box is [-1, 1]
        next_obs, r, terminated, truncated, _ = self.env.step(a_tilde)
        self.buffer.add(self.obs, a_tilde, r, next_obs, terminated)
        self.obs = next_obs
        if terminated or truncated:
            self.obs, _ = self.env.reset()


def snapshot(loop: Loop) -> dict:
    "Everything one step reads: agent, buffer RNG, torch RNG, observation."
    return {"agent": copy.deepcopy(loop.agent.state_dict()),  # not views
            "buffer_rng": loop.buffer.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(), "obs": loop.obs.copy()}


def restore(loop: Loop, state: dict) -> None:
    loop.agent.load_state_dict(state["agent"])
    loop.buffer.rng.bit_generator.state = state["buffer_rng"]
    torch.set_rng_state(state["torch_rng"])
    loop.obs = state["obs"].copy()


def flat(agent: SAC) -> dict:
    "Every tensor an update changes: parameters, targets, log α, Adam state."
    out = {f"param {i}": p for i, p in enumerate(
        [*agent.actor.parameters(), *agent.critic.parameters(),
         *agent.critic_targ.parameters(), agent.temperature.log_alpha])}
    for name in ("actor_opt", "critic_opt", "alpha_opt"):
        opt = getattr(agent, name)
        for i, state in enumerate(opt.state.values() if opt else ()):
            out.update({f"{name} {i} {k}": v for k, v in state.items()})
    return {k: v.detach().clone() for k, v in out.items()}


def largest_difference(loop: Loop, update, fused: FusedStep) -> float:
    """Train order (update, then act) against `fused` from one state: the
    largest absolute difference in action, losses and updated tensors."""
    start = snapshot(loop)
    metrics = update(loop.buffer.sample(256))
    action = loop.agent.act(loop.obs)
    after = flat(loop.agent)
    restore(loop, start)
    metrics_f, action_f = fused(loop.obs)
    after_f = flat(loop.agent)
    diffs = [float(np.abs(action - action_f).max())]
    diffs += [float((metrics[k] - metrics_f[k]).abs().max()) for k in metrics]
    diffs += [float((after[k] - after_f[k]).abs().max()) for k in after]
    return max(diffs)


def steps_per_second(loop: Loop, variant: str, step, n: int) -> float:
    if variant == "train order":
        tic = time.perf_counter()
        for _ in range(n):
            loop.env_step(loop.agent.act(loop.obs))
            step(loop.buffer.sample(256))
        return n / (time.perf_counter() - tic)
    action = loop.agent.act(loop.obs)      # the first comes from act
    tic = time.perf_counter()
    for _ in range(n):
        loop.env_step(action)
        _, action = step(loop.obs)         # ã' for the next step
    return n / (time.perf_counter() - tic)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    loop = Loop(args.env)
    steps = {"train order": CompiledUpdate(loop.agent),
             "act inside": FusedStep(loop.agent, loop.buffer, gather=False),
             "act + sample": FusedStep(loop.agent, loop.buffer, gather=True)}
    print("compiling, and checking each fused step against the train order")
    steps["train order"](loop.buffer.sample(256))           # compile it
    differences = {}
    for variant in VARIANTS[1:]:
        d = differences[variant] = largest_difference(
            loop, steps["train order"], steps[variant])
        print(f"  {variant:13s} largest difference {d:.1e}")
        if not d <= 1e-5:
            sys.exit(f"{variant} does not compute the train order's step")
    rates = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        for variant in VARIANTS:
            rates[variant].append(steps_per_second(
                loop, variant, steps[variant], args.steps))
        print(f"round {r}: " + ", ".join(
            f"{v} {rates[v][-1]:.1f}" for v in VARIANTS) + " steps/s",
            flush=True)
    base = rates["train order"]
    speedup = {v: statistics.median(x / b for x, b in zip(rates[v], base))
               for v in VARIANTS[1:]}
    for variant in VARIANTS:
        extra = (f"  {speedup[variant]:.3f}x the train order"
                 if variant in speedup else "")
        print(f"{variant:13s} median {statistics.median(rates[variant]):6.1f}"
              f" steps/s{extra}")
    record = {"env": args.env, "steps_per_round": args.steps,
              "rounds": args.rounds, "threads": args.threads,
              "largest_difference": differences, "steps_per_second": rates,
              "speedup_median": speedup,
              "provenance": provenance(torch_threads=args.threads)}
    write_result(record, args.out)
    return record


if __name__ == "__main__":
    main()
