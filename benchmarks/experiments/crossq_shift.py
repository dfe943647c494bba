"""Why CrossQ passes (s, a) and (s', a~') jointly: the shift between them, in trained agents.

For each finished CrossQ run of benchmarks/crossq.py (its checkpoint holds the
agent and the replay buffer), the script samples minibatches from the buffer,
draws a~' from the current policy, and measures

  * the shift: per column of the critics' input, the difference of the means
    of (s, a) and (s', a~') in units of their pooled standard deviation, and
    the ratio of their variances; and the same shift at the input of every
    BatchRenorm of the critics during the joint pass, beside its value for
    two halves from one distribution (two minibatches of (s, a)): the
    sampling noise a shift has to exceed to be seen;
  * what the shift does to the target's values: min_j Q(s', a~') from one
    joint training-mode pass (CrossQ), from a training-mode pass over the
    (s', a~') half alone (separate passes), and from evaluation mode (the
    running statistics, the function the actor trains against), each pass on
    a copy of the critics so that their statistics stay as saved.

With --along STEPS it also trains CrossQ afresh, with the settings of
crossq_ablation.py (whose CrossQ runs it then repeats bit for bit), into
WORK/along, stopping at each of STEPS to measure: the shift early in a run,
when the stored actions are still the warm-up's uniform ones.

    .venv/bin/python benchmarks/experiments/crossq_shift.py --work ../crossq_runs
    .venv/bin/python benchmarks/experiments/crossq_shift.py \
        --work ../crossq_runs/ablation --envs HalfCheetah-v5 \
        --along 1500,2000,3000,5000,10000
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "benchmarks" / "experiments"))
from provenance import provenance, write_result  # noqa: E402

BATCHES, BATCH_SIZE = 8, 256


def halves_shift(x) -> tuple[float, float]:
    """A normalisation layer's input over a joint batch [(s, a); (s', ã')]:
    per feature, |mean of the second half - mean of the first| in units of
    their pooled standard deviation; the median and the largest over the
    features (features constant in both halves are left out)."""
    import torch
    first, second = x[:len(x) // 2], x[len(x) // 2:]
    pooled = ((first.var(0) + second.var(0)) / 2).sqrt()
    keep = pooled > 0
    shift = ((second.mean(0) - first.mean(0)).abs()[keep] / pooled[keep])
    return float(shift.median()), float(shift.max())


@contextlib.contextmanager
def shifts(critic):
    "Collect halves_shift at the input of every BatchRenorm of the critic."
    from sac_lit.batchrenorm import BatchRenorm
    layers = []
    hooks = [m.register_forward_pre_hook(
        lambda m, inp: layers.append(halves_shift(inp[0])))
        for m in critic.modules() if isinstance(m, BatchRenorm)]
    try:
        yield layers
    finally:
        for h in hooks:
            h.remove()


def measure(run: Path) -> dict:
    "The shift and the three target values, over BATCHES minibatches."
    import torch
    from sac_lit.agent import SAC
    from sac_lit.buffer import ReplayBuffer
    from sac_lit.crossq import joint_q, training
    agent = SAC.load(run)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    buffer = ReplayBuffer(agent.obs_dim, agent.act_dim,
                          agent.config.buffer_size)
    buffer.load_state_dict(state["run"]["buffer"])
    rows = []
    for _ in range(BATCHES):
        s, a, r, s_next, d = buffer.sample(BATCH_SIZE)
        with torch.no_grad():
            a_next, _ = agent.actor(s_next, agent.noise(s_next))
            x = torch.cat([s, a], -1)
            x_next = torch.cat([s_next, a_next], -1)
            pooled = ((x.var(0) + x_next.var(0)) / 2).sqrt()
            shift = ((x_next.mean(0) - x.mean(0)) / pooled).abs()
            ratio = x_next.var(0) / x.var(0)
            critic = copy.deepcopy(agent.critic)
            with training(critic), shifts(critic) as layers:
                _, joint = joint_q(critic, s, a, s_next, a_next)
            s2, a2, *_ = buffer.sample(BATCH_SIZE)    # the same distribution:
            with training(copy.deepcopy(agent.critic)) as twin, \
                    shifts(twin) as null:             # sampling noise alone
                joint_q(twin, s, a, s2, a2)
            critic = copy.deepcopy(agent.critic)
            with training(critic):
                alone = critic(s_next, a_next)
            evaluation = agent.critic(s_next, a_next)
        q = {name: torch.min(*pair) for name, pair in
             (("joint", joint), ("separate", alone),
              ("eval", evaluation))}
        scale = q["eval"].abs().mean()
        rows.append({
            "state_shift": float(shift[:agent.obs_dim].max()),
            "action_shift": shift[agent.obs_dim:].tolist(),
            "action_var_ratio": ratio[agent.obs_dim:].tolist(),
            "joint_vs_eval": float((q["joint"] - q["eval"]).abs().mean()
                                   / scale),
            "separate_vs_eval": float((q["separate"] - q["eval"]).abs()
                                      .mean() / scale),
            "joint_vs_separate": float((q["joint"] - q["separate"]).abs()
                                       .mean() / scale),
            "layer_shift_median": [m for m, _ in layers],
            "layer_shift_max": [x for _, x in layers],
            "null_shift_median": [m for m, _ in null],
            "mean_q_eval": float(q["eval"].mean())})
    return {key: (sum(row[key] for row in rows) / len(rows)
                  if not isinstance(rows[0][key], list) else
                  [sum(col) / len(rows) for col in
                   zip(*(row[key] for row in rows))])
            for key in rows[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True, type=Path,
                   help="benchmarks/crossq.py's --work")
    p.add_argument("--envs", default="HalfCheetah-v5,Walker2d-v5")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--along", default="",
                   help="also train CrossQ afresh into WORK/along and "
                        "measure at these steps, e.g. 1500,2000,5000")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" /
                   "experiments" / "results" / "crossq_shift.json")
    args = p.parse_args(argv)
    import torch
    from sac_lit.sweep import run_dir
    torch.set_num_threads(1)
    torch.manual_seed(0)
    runs, along = [], [int(k) for k in args.along.split(",") if k]
    for env_id in args.envs.split(","):
        for seed in map(int, args.seeds.split(",")):
            for steps in along:
                runs.append(report(snapshot(args.work / "along", env_id,
                                            seed, steps), env_id, seed,
                                   "along"))
            run = run_dir(args.work / "crossq", env_id, seed)
            if (run / "summary.json").is_file():
                runs.append(report(run, env_id, seed, "finished"))
    write_result({"batches": BATCHES, "batch_size": BATCH_SIZE, "runs": runs,
                  "along": along,
                  "provenance": provenance(torch_threads=1)}, args.out)
    return 0


def train_to(work: Path, env_id: str, seed: int, steps: int) -> None:
    "Train (or resume) CrossQ in WORK/crossq to `steps`: the ablation's run."
    from crossq_ablation import run
    done = run(("crossq", env_id, seed, steps, work))
    if "error" in done:
        raise SystemExit(done["error"])


def snapshot(work: Path, env_id: str, seed: int, steps: int) -> Path:
    """The run's files at `steps`, kept in a folder of their own (trained
    there once; steps in increasing order)."""
    from sac_lit.sweep import run_dir
    run = run_dir(work / "crossq", env_id, seed)
    snap = run.with_name(f"{run.name}_at_{steps}")
    if not (snap / "summary.json").is_file():
        train_to(work, env_id, seed, steps)
        snap.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "checkpoint.pt", "summary.json"):
            shutil.copy2(run / name, snap / name)
    return snap


def report(run: Path, env_id: str, seed: int, kind: str) -> dict:
    "Measure the run at its last checkpoint, and print one line."
    steps = json.loads((run / "summary.json").read_text())["steps"]
    row = {"env": env_id, "seed": seed, "steps": steps, "kind": kind,
           **measure(run)}
    print(f"{env_id} seed {seed} at {steps} steps: largest action "
          f"shift {max(row['action_shift']):.2f} σ (states "
          f"{row['state_shift']:.2f}); target off the evaluation "
          f"function by {row['joint_vs_eval']:.1%} joint, "
          f"{row['separate_vs_eval']:.1%} separate; joint vs separate "
          f"{row['joint_vs_separate']:.2%}; layers' median shift "
          + ", ".join(f"{x:.2f}" for x in row["layer_shift_median"])
          + " (same distribution: "
          + ", ".join(f"{x:.2f}" for x in row["null_shift_median"]) + ")",
          flush=True)
    return row


if __name__ == "__main__":
    sys.exit(main())
