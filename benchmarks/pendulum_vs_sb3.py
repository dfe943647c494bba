"""The learning bar: sac_lit against Stable-Baselines3's SAC on Pendulum-v1.

Both libraries run with their default settings, the same budget of environment
steps, the same seeds and the same number of CPU threads. Each trained policy
is then scored by ONE evaluation function written here (not by either
library): the deterministic (mean) action, `--eval-episodes` episodes whose
initial states come from the same reset seeds for both libraries. With
`--eval-every` the same evaluation also runs during training (sac_lit is
trained in chunks with `resume=True`, which continues a run bit-identically;
Stable-Baselines3 through a callback). Evaluation time is not training time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pendulum_vs_sb3.py

prints a table per seed and the median, and writes a JSON file with the
numbers and their provenance (command, git commit, CPU, versions, date) to
benchmarks/results/. Needs `pip install -r benchmarks/requirements.txt`.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import provenance as shared_provenance  # noqa: E402
from provenance import write_result  # noqa: E402

ENV_ID = "Pendulum-v1"
EVAL_SEED = 10_000          # evaluation episode i starts from reset(seed=EVAL_SEED + i)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=10_000,
                   help="environment steps per run (default 10000)")
    p.add_argument("--seeds", default="0,1,2,3,4",
                   help="comma-separated seeds")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=1_000,
                   help="also evaluate every N steps (0: at the end only)")
    p.add_argument("--libs", default="sac_lit,sb3",
                   help="which libraries to run: sac_lit, sb3 or both")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for both libraries (default 1)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                        "pendulum_vs_sb3.json"))
    return p.parse_args(argv)


def evaluate(policy, episodes: int) -> list[float]:
    """Undiscounted returns of `policy(obs) -> env action` on Pendulum-v1,
    one episode per reset seed EVAL_SEED + i (the same for every library)."""
    import gymnasium as gym
    env = gym.make(ENV_ID)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def checkpoints(steps: int, every: int) -> list[int]:
    "Step counts at which to evaluate: every `every` steps, and always at the end."
    marks = list(range(every, steps, every)) if every > 0 else []
    return marks + [steps]


def run_sac_lit(seed: int, args) -> dict:
    "Default SACConfig, trained up to each evaluation mark with resume=True."
    import torch
    from sac_lit import SAC, ActionMap, RunConfig, train
    import gymnasium as gym

    action_map = ActionMap.from_space(gym.make(ENV_ID).action_space)
    curve, train_seconds = [], 0.0
    with tempfile.TemporaryDirectory() as run_dir:
        for i, mark in enumerate(checkpoints(args.steps, args.eval_every)):
            start = time.perf_counter()
            train(ENV_ID, mark, seed=seed, out=run_dir, resume=i > 0,
                  run_config=RunConfig(eval_every=0), progress=False,
                  device="cpu")
            train_seconds += time.perf_counter() - start
            agent = SAC.load(run_dir)

            def policy(obs):
                a_tilde = agent.act(obs, deterministic=True)
                return action_map.to_env(a_tilde)

            with torch.no_grad():
                returns = evaluate(policy, args.eval_episodes)
            curve.append((mark, statistics.fmean(returns)))
    return {"final_return": curve[-1][1], "curve": curve,
            "final_returns": returns, "train_seconds": train_seconds}


def run_sb3(seed: int, args) -> dict:
    "Stable-Baselines3 SAC('MlpPolicy') with its defaults, evaluated at each mark."
    import gymnasium as gym
    from stable_baselines3 import SAC as SB3SAC
    from stable_baselines3.common.callbacks import BaseCallback

    def policy_of(model):
        return lambda obs: model.predict(obs, deterministic=True)[0]

    curve, marks = [], set(checkpoints(args.steps, args.eval_every)[:-1])
    clock = {"eval": 0.0}

    class EvalAt(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps in marks:
                start = time.perf_counter()
                returns = evaluate(policy_of(self.model), args.eval_episodes)
                curve.append((self.num_timesteps, statistics.fmean(returns)))
                clock["eval"] += time.perf_counter() - start
            return True

    model = SB3SAC("MlpPolicy", gym.make(ENV_ID), seed=seed, device="cpu",
                   verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps, callback=EvalAt())
    train_seconds = time.perf_counter() - start - clock["eval"]
    returns = evaluate(policy_of(model), args.eval_episodes)
    curve.append((args.steps, statistics.fmean(returns)))
    return {"final_return": curve[-1][1], "curve": curve,
            "final_returns": returns, "train_seconds": train_seconds}


def provenance(args) -> dict:
    return shared_provenance(torch_threads=args.threads)


def table(results: dict, seeds: list[int]) -> str:
    libs = list(results)
    lines = [f"{'seed':>6} " + " ".join(f"{lib:>18}" for lib in libs)]
    for seed in seeds:
        cells = [f"{results[lib][str(seed)]['final_return']:18.1f}"
                 for lib in libs]
        lines.append(f"{seed:>6} " + " ".join(cells))
    med = {lib: statistics.median(r["final_return"]
                                  for r in results[lib].values())
           for lib in libs}
    medians = [f"{med[lib]:18.1f}" for lib in libs]
    lines.append(f"{'median':>6} " + " ".join(medians))
    secs = [f"{statistics.median(r['train_seconds'] for r in res):17.0f}s"
            for res in (results[lib].values() for lib in libs)]
    lines.append(f"{'time':>6} " + " ".join(secs))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    started = provenance(args)      # the code and machine the runs start on
    runners = {"sac_lit": run_sac_lit, "sb3": run_sb3}
    libs = [lib.strip() for lib in args.libs.split(",")]
    results = {lib: {} for lib in libs}
    for seed in seeds:                      # interleaved: load drifts hit both
        for lib in libs:
            out = runners[lib](seed, args)
            results[lib][str(seed)] = out
            print(f"{lib:>8} seed {seed}: final deterministic return "
                  f"{out['final_return']:8.1f} ({out['train_seconds']:.0f} s)",
                  flush=True)
    print(f"\n{ENV_ID}, {args.steps} steps, deterministic evaluation over "
          f"{args.eval_episodes} episodes (mean return)")
    print(table(results, seeds))
    record = {"env": ENV_ID, "steps": args.steps, "seeds": seeds,
              "eval_episodes": args.eval_episodes,
              "eval_seeds": f"{EVAL_SEED} + episode index",
              "eval_every": args.eval_every,
              "median_final_return": {
                  lib: statistics.median(r["final_return"]
                                         for r in results[lib].values())
                  for lib in libs},
              "results": results, "provenance": started}
    write_result(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
