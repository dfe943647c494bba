"""Learning curves: sac_lit against Stable-Baselines3 on MuJoCo, many runs on Ray.

Every (library, environment, seed) run is one Ray task with one core and one
torch thread; the tasks are queued alternating between the libraries, so a
2-core machine runs two at a time and the machine's load hits both alike.
Both libraries use the same hyper-parameters (sac_lit's defaults: 2x256 ReLU,
Adam 3e-4, batch 256, buffer 10^6, gamma 0.99, tau 0.005, automatic alpha with
target -dim(A), one update per step, 1,000 uniform warm-up steps) and are
scored by the same protocol, every 5,000 steps:

  * evaluation return: the deterministic (mean) action, 10 episodes, episode
    i from reset(seed=10000 + i): sac_lit's own evaluation (chapter 10), and
    the same episodes for SB3 in a callback;
  * training return: the undiscounted returns of the stochastic training
    episodes, averaged per 5,000-step window.

Each finished run is written at once as a small JSON file in
benchmarks/results/curves/ (with provenance); runs whose file exists are
skipped, so an interrupted benchmark continues where it stopped.

    .venv/bin/python benchmarks/curves.py     # 20 runs, ~2.2 h on 2 cores

Needs `pip install --no-deps -r benchmarks/requirements.txt` for SB3.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import provenance  # noqa: E402

EVAL_EVERY, EVAL_EPISODES, EVAL_SEED, WINDOW = 5_000, 10, 10_000, 5_000


def windows(episodes: list[tuple[int, float]], steps: int) -> list[list]:
    "Mean training return of the episodes ending in each WINDOW of steps."
    out = []
    for end in range(WINDOW, steps + 1, WINDOW):
        inside = [r for s, r in episodes if end - WINDOW < s <= end]
        if inside:
            out.append([end, sum(inside) / len(inside), len(inside)])
    return out


def run_sac_lit(env_id: str, seed: int, steps: int, work: str) -> dict:
    import torch
    from sac_lit import RunConfig, SACConfig
    from sac_lit.sweep import run_dir, run_one
    torch.set_num_threads(1)
    run = run_dir(work, env_id, seed)
    import time
    loop = RunConfig(eval_every=EVAL_EVERY, eval_episodes=EVAL_EPISODES)
    tic = time.perf_counter()
    row = run_one(env_id, seed, steps, run, SACConfig(), loop, threads=1)
    seconds = time.perf_counter() - tic
    if row["status"] == "failed":
        raise RuntimeError(row["error"])
    rows = [json.loads(line) for line in
            (run / "metrics.jsonl").read_text().splitlines()]
    evals = [[r["step"], r["return"], r["returns"]] for r in rows
             if r["kind"] == "eval"]
    episodes = [(r["step"], r["return"]) for r in rows
                if r["kind"] == "episode"]
    # the same phase as SB3's figure: the whole run, warm-up included,
    # without the evaluations (a resumed run would time only its last part)
    return {"eval": evals, "train": windows(episodes, steps),
            "train_sps": row["summary"]["train_sps"],
            "seconds_without_eval": seconds - row["summary"]["eval_seconds"]}


def run_sb3(env_id: str, seed: int, steps: int, work: str) -> dict:
    import time

    import gymnasium as gym
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    sys.path.insert(0, str(ROOT / "benchmarks"))   # in the Ray worker too
    from peers import evaluate_model, sb3_sac
    torch.set_num_threads(1)
    eval_env = gym.make(env_id)
    evals, episodes, clock = [], [], {"eval": 0.0}

    def evaluate(model) -> list[float]:
        return evaluate_model(model, eval_env, EVAL_EPISODES, EVAL_SEED)

    class Record(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    episodes.append((self.num_timesteps, info["episode"]["r"]))
            if self.num_timesteps % EVAL_EVERY == 0:
                tic = time.perf_counter()
                returns = evaluate(self.model)
                evals.append([self.num_timesteps, sum(returns) / len(returns),
                              returns])
                clock["eval"] += time.perf_counter() - tic
            return True

    model = sb3_sac(env_id, seed)
    tic = time.perf_counter()
    model.learn(total_timesteps=steps, callback=Record())
    seconds = time.perf_counter() - tic - clock["eval"]
    return {"eval": evals, "train": windows(episodes, steps),
            "seconds_without_eval": seconds}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", default="HalfCheetah-v5,Hopper-v5")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--libs", default="sac_lit,sb3")
    p.add_argument("--num-cpus", type=int, default=None)
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(),
                                                  "sac_lit_curves"),
                   help="sac_lit's run directories (not committed)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                        "curves"))
    args = p.parse_args(argv)
    import ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runners = {"sac_lit": run_sac_lit, "sb3": run_sb3}
    jobs = [(lib, env_id, int(seed)) for env_id in args.envs.split(",")
            for seed in args.seeds.split(",") for lib in args.libs.split(",")]
    started = provenance(torch_threads=1)
    ray.init(num_cpus=args.num_cpus, include_dashboard=False,
             log_to_driver=False, logging_level=logging.ERROR)
    pending = {}
    for lib, env_id, seed in jobs:
        path = out / f"{lib}_{env_id}_seed{seed}.json"
        if path.is_file():
            print(f"have {path.name}", flush=True)
            continue
        task = ray.remote(num_cpus=1)(runners[lib])
        ref = task.remote(env_id, seed, args.steps, args.work)
        pending[ref] = (lib, env_id, seed, path)
    failed = 0
    while pending:
        ready, _ = ray.wait(list(pending))
        lib, env_id, seed, path = pending.pop(ready[0])
        try:
            result = ray.get(ready[0])
        except ray.exceptions.RayError as err:
            failed += 1
            print(f"FAILED {lib} {env_id} seed {seed}: {err}", flush=True)
            continue
        record = {"library": lib, "env": env_id, "seed": seed,
                  "steps": args.steps, "eval_every": EVAL_EVERY,
                  "eval_episodes": EVAL_EPISODES, "window": WINDOW,
                  **result, "provenance": started}
        path.write_text(json.dumps(record) + "\n")
        final = result["eval"][-1][1] if result["eval"] else float("nan")
        print(f"done {lib:>8} {env_id} seed {seed}: final evaluation "
              f"return {final:.1f}", flush=True)
    ray.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
