"""Why CrossQ passes (s, a) and (s', a~') jointly: the shift between them, in trained agents.

For each finished CrossQ run of benchmarks/crossq.py (its checkpoint holds the
agent and the replay buffer), the script samples minibatches from the buffer,
draws a~' from the current policy, and measures

  * the shift: per column of the critics' input, the difference of the means
    of (s, a) and (s', a~') in units of their pooled standard deviation, and
    the ratio of their variances (the action columns shift, the states not);
  * what the shift does to the target's values: min_j Q(s', a~') from one
    joint training-mode pass (CrossQ), from a training-mode pass over the
    (s', a~') half alone (separate passes), and from evaluation mode (the
    running statistics, the function the actor trains against), each pass on
    a copy of the critics so that their statistics stay as saved.

    .venv/bin/python benchmarks/experiments/crossq_shift.py --work ../crossq_runs
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import provenance, write_result  # noqa: E402

BATCHES, BATCH_SIZE = 8, 256


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
            with training(critic):
                _, joint = joint_q(critic, s, a, s_next, a_next)
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
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" /
                   "experiments" / "results" / "crossq_shift.json")
    args = p.parse_args(argv)
    import torch
    from sac_lit.sweep import run_dir
    torch.set_num_threads(1)
    torch.manual_seed(0)
    runs = []
    for env_id in args.envs.split(","):
        for seed in map(int, args.seeds.split(",")):
            run = run_dir(args.work / "crossq", env_id, seed)
            if not (run / "summary.json").is_file():
                continue
            steps = json.loads((run / "summary.json").read_text())["steps"]
            row = {"env": env_id, "seed": seed, "steps": steps,
                   **measure(run)}
            print(f"{env_id} seed {seed} at {steps} steps: largest action "
                  f"shift {max(row['action_shift']):.2f} σ (states "
                  f"{row['state_shift']:.2f}); target off the evaluation "
                  f"function by {row['joint_vs_eval']:.1%} joint, "
                  f"{row['separate_vs_eval']:.1%} separate", flush=True)
            runs.append(row)
    write_result({"batches": BATCHES, "batch_size": BATCH_SIZE, "runs": runs,
                  "provenance": provenance(torch_threads=1)}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
