"""Memory of a HalfCheetah run with a full replay buffer of 10^6 transitions.

Builds what `sac_lit.train` builds for HalfCheetah-v5 (the environment, the
agent with its optimisers and target critics, a ReplayBuffer of capacity
10^6), fills the buffer with 10^6 transitions, runs gradient updates and
writes a checkpoint, and reports the process's peak resident set size (RSS)
after each phase, with the buffer's bytes per transition (computed, and
measured as the RSS the filling added). Filling with random transitions
instead of 10^6 simulated steps gives the same memory in minutes instead of
hours: the buffer is preallocated, so only its size matters.

    .venv/bin/python benchmarks/memory.py

writes benchmarks/results/memory.json with provenance.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import provenance, write_result  # noqa: E402


def rss_mb() -> float:
    "The current resident set size, from /proc/self/status, in MB (10^6 B)."
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_rss_mb() -> float:
    "The peak resident set size so far (ru_maxrss is in KiB on Linux), MB."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--capacity", type=int, default=1_000_000)
    p.add_argument("--updates", type=int, default=200)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                        "memory.json"))
    args = p.parse_args(argv)
    phases = {}

    def mark(name):
        phases[name] = {"rss_mb": rss_mb(), "peak_rss_mb": peak_rss_mb()}
        print(f"{name:>24}: RSS {phases[name]['rss_mb']:7.1f} MB, "
              f"peak {phases[name]['peak_rss_mb']:7.1f} MB", flush=True)

    import torch
    from sac_lit import SAC, ReplayBuffer, SACConfig
    from sac_lit.buffer import nbytes_per_transition
    from sac_lit.loop import make_env
    mark("imports")
    env, _ = make_env(args.env)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    agent = SAC(obs_dim, act_dim, SACConfig(buffer_size=args.capacity))
    buf = ReplayBuffer(obs_dim, act_dim, args.capacity, seed=0)
    mark("agent and empty buffer")
    rng = np.random.default_rng(0)
    chunk = 100_000
    before_fill = rss_mb()
    for start in range(0, args.capacity, chunk):
        n = min(chunk, args.capacity - start)
        buf.add_batch(rng.standard_normal((n, obs_dim), dtype=np.float32),
                      rng.uniform(-1, 1, (n, act_dim)).astype(np.float32),
                      rng.standard_normal(n, dtype=np.float32),
                      rng.standard_normal((n, obs_dim), dtype=np.float32),
                      np.zeros(n, dtype=np.float32))
    filled = rss_mb() - before_fill
    mark("buffer full")
    for _ in range(args.updates):
        agent.update(buf.sample(agent.config.batch_size))
    mark(f"{args.updates} updates")
    with tempfile.TemporaryDirectory() as run_dir:
        path = Path(run_dir) / "checkpoint.pt"
        torch.save({"agent": agent.state_dict(), "buffer": buf.state_dict()},
                   path)
        checkpoint_mb = path.stat().st_size / 1e6
    mark("checkpoint written")
    per_transition = nbytes_per_transition(obs_dim, act_dim)
    record = {"env": args.env, "capacity": args.capacity,
              "bytes_per_transition": per_transition,
              "buffer_arrays_mb": sum(getattr(buf, k).nbytes for k in
                                      ("obs", "action", "reward", "next_obs",
                                       "terminated")) / 1e6,
              "rss_added_by_filling_mb": filled,
              "measured_bytes_per_transition": filled * 1e6 / args.capacity,
              "checkpoint_mb": checkpoint_mb,
              "phases": phases, "peak_rss_mb": peak_rss_mb(),
              "provenance": provenance()}
    print(f"\n{per_transition} bytes per transition computed, "
          f"{record['measured_bytes_per_transition']:.1f} measured; "
          f"checkpoint {checkpoint_mb:.0f} MB; "
          f"peak RSS {record['peak_rss_mb']:.0f} MB")
    write_result(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
