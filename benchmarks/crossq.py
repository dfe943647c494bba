"""CrossQ side by side: the book's SAC, the book's CrossQ and sb3-contrib's CrossQ.

On each environment and seed, three agents train for the same number of
environment steps on the same machine:

  * sac:        `python -m sac_lit sweep --algo sac` (SACConfig's defaults);
  * crossq:     `python -m sac_lit sweep --algo crossq` (CrossQConfig's defaults:
                critics and actor 2x256, step sizes 1e-3, Adam beta1 0.5, policy
                delay 3, BatchRenorm momentum 0.01, eps 1e-3, warm-up 100,000);
  * sb3_crossq: sb3-contrib's `CrossQ` with the same widths and hyper-parameters
                (and sac_lit's 1,000 uniform warm-up steps; its own default is 100).

All three are scored by one protocol, sac_lit's evaluation (chapter 10): every
5,000 steps, the deterministic action, 10 episodes, episode i from
reset(seed=10000 + i); sb3-contrib's through a callback. Speed is environment
steps per second after the warm-up, evaluations excluded, two runs at a time
(one per core, one torch thread each), so the machine's load hits all alike.

The runs go seed by seed (the two environments of an agent side by side), so
an interrupted benchmark has whole seeds to compare. Run directories live in
--work; a sweep resumes its runs from their checkpoints, an sb3-contrib run
whose result file exists is skipped and an unfinished one starts again.
After every finished batch the script writes the result file (--out, default
results/crossq.json), and a later start keeps the runs already in it and
trains only the missing ones: committing the file after each sitting keeps
the finished runs even when the work directory is lost (the runs are hours
long; their checkpoints hold replay buffers of tens of MB and stay out of the
repository). The result file holds per-run curves,
final returns and speeds, chapter 10's probe of the book's critics (Q at the
start of the evaluation episodes against the discounted return G_0), per
(agent, environment) the IQM of the final evaluation returns with a 95%
percentile-bootstrap interval, and the provenance of every start that trained
(`trained_by`; a sweep resumes its runs bit for bit from their checkpoints).

    .venv/bin/python -m pip install --no-deps -r benchmarks/requirements.txt
    .venv/bin/python benchmarks/crossq.py --work ../crossq_runs   # many hours
    .venv/bin/python benchmarks/crossq.py --work ../crossq_runs --report
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import provenance, write_result  # noqa: E402

AGENTS = ("crossq", "sb3_crossq", "sac")
EVAL_EVERY, EVAL_EPISODES, EVAL_SEED, LEARNING_STARTS = 5_000, 10, 10_000, 1_000
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
             "RAY_USAGE_STATS_ENABLED": "0"}


def sweep(agent: str, envs: list[str], seed: int, steps: int, work: Path):
    "The book's agent: one `sac_lit sweep` over the environments, this seed."
    cmd = [sys.executable, "-m", "sac_lit", "sweep", "--algo", agent,
           "--envs", ",".join(envs), "--seeds", str(seed), "--steps",
           str(steps), "--out", str(work / agent), "--num-cpus",
           str(len(envs)), "--no-progress", "--eval-every", str(EVAL_EVERY),
           "--eval-episodes", str(EVAL_EPISODES), "--learning-starts",
           str(LEARNING_STARTS)]
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, env=CHILD_ENV, cwd=ROOT, check=True)


def run_sb3(job: tuple) -> str:
    "One sb3-contrib run, in its own process; its result file when done."
    env_id, seed, steps, path = job
    import gymnasium as gym
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from peers import evaluate_model, sb3_crossq
    torch.set_num_threads(1)
    eval_env, evals, clock = gym.make(env_id), [], {"eval": 0.0}

    class Record(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps == LEARNING_STARTS:
                clock["start"], clock["eval"] = time.perf_counter(), 0.0
            if self.num_timesteps % EVAL_EVERY == 0:
                tic = time.perf_counter()
                returns = evaluate_model(self.model, eval_env,
                                         EVAL_EPISODES, EVAL_SEED)
                evals.append([self.num_timesteps, statistics.fmean(returns),
                              returns])
                clock["eval"] += time.perf_counter() - tic
            return True

    model = sb3_crossq(env_id, seed, LEARNING_STARTS)
    model.learn(total_timesteps=steps, callback=Record())
    seconds = time.perf_counter() - clock["start"] - clock["eval"]
    record = {"eval": evals, "train_sps": (steps - LEARNING_STARTS) / seconds}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(record) + "\n")
    return path


def sb3_path(work: Path, env_id: str, seed: int) -> Path:
    return work / "sb3_crossq" / env_id / f"seed_{seed}.json"


def sb3_runs(envs: list[str], seed: int, steps: int, work: Path) -> None:
    "sb3-contrib's runs of this seed, one process per environment."
    jobs = [(e, seed, steps, str(sb3_path(work, e, seed))) for e in envs
            if not sb3_path(work, e, seed).is_file()]
    if jobs:
        print(f"$ sb3-contrib CrossQ, seed {seed}: {len(jobs)} runs",
              flush=True)
        with mp.get_context("spawn").Pool(len(jobs)) as pool:
            for path in pool.imap_unordered(run_sb3, jobs):
                print("wrote", path, flush=True)


def book_run(work: Path, agent: str, env_id: str, seed: int, steps: int):
    "A sweep run's evaluations and speed, if it finished `steps`."
    from sac_lit.sweep import run_dir
    run = run_dir(work / agent, env_id, seed)
    try:
        summary = json.loads((run / "summary.json").read_text())
    except OSError:
        return None
    if summary["steps"] != steps:
        return None
    rows = [json.loads(line) for line in
            (run / "metrics.jsonl").read_text().splitlines()]
    evals = [[r["step"], r["return"], r["returns"]] for r in rows
             if r["kind"] == "eval"]
    probe = [[r["step"], r["q_start"], r["discounted_start"]] for r in rows
             if r["kind"] == "eval"]                # chapter 10's probe
    return {"eval": evals, "probe": probe, "train_sps": summary["train_sps"]}


def finished(work: Path, agent: str, env_id: str, seed: int, steps: int):
    "The run of (agent, env_id, seed) in `work`, if it finished `steps`."
    if agent != "sb3_crossq":
        return book_run(work, agent, env_id, seed, steps)
    path = sb3_path(work, env_id, seed)
    return json.loads(path.read_text()) if path.is_file() else None


def collect(work: Path, envs, seeds, steps, kept: dict,
            launch: dict | None) -> dict:
    "Every finished run (kept or in `work`): curves, speeds; IQM per cell."
    from sac_lit.sweep import iqm_ci
    runs, cells = [], []
    for agent in AGENTS:
        for env_id in envs:
            finals, speeds = [], []
            for seed in seeds:
                record = kept.get((agent, env_id, seed))
                run = None if record else finished(work, agent, env_id,
                                                   seed, steps)
                if run is not None:
                    final = run["eval"][-1]
                    assert final[0] == steps, (agent, env_id, seed, final[0])
                    record = {"agent": agent, "env": env_id, "seed": seed,
                              "final_return": final[1],
                              "final_returns": final[2],
                              "curve": [[s, m] for s, m, _ in run["eval"]],
                              "probe": run.get("probe"),
                              "train_sps": run["train_sps"],
                              "trained_at": launch}
                if record is None:
                    continue
                finals.append(record["final_return"])
                speeds.append(record["train_sps"])
                runs.append(record)
            if finals:
                m, low, high = iqm_ci(finals)
                cells.append({"agent": agent, "env": env_id,
                              "runs": len(finals), "iqm": m,
                              "ci95": [low, high],
                              "median_train_sps": statistics.median(speeds)})
    return {"cells": cells, "runs": runs}


PROTOCOL = ("steps", "eval_every", "eval_episodes", "learning_starts")


def kept_runs(out: Path, protocol: dict) -> tuple[dict, list]:
    "The runs already in the result file, and its launches; same protocol."
    if not out.is_file():
        return {}, []
    old = json.loads(out.read_text())
    differs = {k: (old.get(k), v) for k, v in protocol.items()
               if old.get(k) != v}
    if differs:
        raise SystemExit(f"{out} was measured with another protocol "
                         f"(file, now): {differs}; choose another --out")
    return ({(r["agent"], r["env"], r["seed"]): r for r in old["runs"]},
            old.get("trained_by", []))


def last_launch(launches: list) -> dict | None:
    """Who trained the runs found in a work directory: its latest start.

    A run is labelled when it is first collected (after its batch), so the
    label names the start that finished it."""
    if not launches:
        return None
    return {k: launches[-1].get(k) for k in
            ("git_commit", "sac_lit_uncommitted_changes", "date_utc", "cpu")}


def table(cells: list[dict]) -> str:
    lines = ["| agent | environment | runs | IQM final return | 95% interval "
             "| median steps/s |", "|---|---|---|---|---|---|"]
    for c in cells:
        lines.append(f"| {c['agent']} | {c['env']} | {c['runs']} | "
                     f"{c['iqm']:.0f} | [{c['ci95'][0]:.0f}, "
                     f"{c['ci95'][1]:.0f}] | {c['median_train_sps']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", default="HalfCheetah-v5,Walker2d-v5")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--agents", default=",".join(AGENTS))
    p.add_argument("--work", required=True, type=Path,
                   help="run directories (kept, not committed)")
    p.add_argument("--report", action="store_true",
                   help="only collect the finished runs and write the result")
    p.add_argument("--out", type=Path,
                   default=ROOT / "benchmarks" / "results" / "crossq.json")
    args = p.parse_args(argv)
    envs, agents = args.envs.split(","), args.agents.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    started = provenance(torch_threads=1, runs_at_a_time=len(envs))
    import sb3_contrib
    started["sb3_contrib"] = sb3_contrib.__version__
    protocol = {"steps": args.steps, "eval_every": EVAL_EVERY,
                "eval_episodes": EVAL_EPISODES,
                "learning_starts": LEARNING_STARTS}
    kept, trained_before = kept_runs(args.out, protocol)
    keys = list(kept) + [(None, e, s) for e in envs for s in seeds]
    every_env = list(dict.fromkeys(k[1] for k in keys))   # this start's
    every_seed = sorted({k[2] for k in keys})             # and the file's
    launches = args.work / "launches.json"       # every start that trained

    def save() -> dict:
        "Collect the kept and the finished runs; write the result file."
        here = json.loads(launches.read_text()) if launches.is_file() else []
        result = collect(args.work, every_env, every_seed, args.steps,
                         kept, last_launch(here))
        kept.update({(r["agent"], r["env"], r["seed"]): r
                     for r in result["runs"]})      # labels stay as first seen
        trained = trained_before + [s for s in here
                                    if s not in trained_before]
        write_result({"envs": every_env, "seeds": every_seed, **protocol,
                      **result,
                      "trained_by": trained, "provenance": started}, args.out)
        return result

    if not args.report:
        args.work.mkdir(parents=True, exist_ok=True)
        before = json.loads(launches.read_text()) if launches.is_file() else []
        launches.write_text(json.dumps(before + [started], indent=1))
        for seed in seeds:
            for agent in agents:
                todo = [e for e in envs if (agent, e, seed) not in kept]
                if not todo:
                    continue
                if agent == "sb3_crossq":
                    sb3_runs(todo, seed, args.steps, args.work)
                else:
                    sweep(agent, todo, seed, args.steps, args.work)
                save()                   # a finished batch is never lost
    print(table(save()["cells"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
