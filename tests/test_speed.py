"""Chapter 13: the FLOP count of an update, the roofline, fused Adam, and the
step breakdown benchmark (benchmarks/step_breakdown.py, run on a few steps).

The FLOP count is checked against PyTorch's own counter on real updates.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from sac_lit import SAC, SACConfig
from sac_lit.speed import matmul_gflops, roofline, update_flops
from sac_lit.buffer import Batch

ROOT = Path(__file__).resolve().parents[1]


def _batch(obs_dim, act_dim, n):
    g = torch.Generator().manual_seed(0)
    return Batch(torch.randn(n, obs_dim, generator=g),
                 torch.rand(n, act_dim, generator=g) * 2 - 1,
                 torch.randn(n, generator=g),
                 torch.randn(n, obs_dim, generator=g),
                 (torch.rand(n, generator=g) < 0.2).float())


def _counted(agent, batch):
    with FlopCounterMode(display=False) as counter:
        agent.update(batch)
    return counter.get_total_flops()


@pytest.mark.parametrize("obs_dim, act_dim, n, sizes", [
    (17, 6, 256, (256, 256)), (11, 3, 32, (64, 64)), (3, 1, 8, (16, 8, 4)),
    (5, 2, 16, (7,))])
def test_update_flops_equals_pytorchs_count(obs_dim, act_dim, n, sizes):
    torch.manual_seed(0)
    config = SACConfig(hidden_sizes=sizes, batch_size=n)
    agent = SAC(obs_dim, act_dim, config)
    assert _counted(agent, _batch(obs_dim, act_dim, n)) == update_flops(
        obs_dim, act_dim, n, sizes)


def test_update_flops_of_halfcheetah():
    # 2·256·(4·72,960 + 12·71,680 − 4,352 − 2·5,888), by hand
    assert update_flops(17, 6) == 2 * 256 * (4 * 72_960 + 12 * 71_680
                                             - 4_352 - 2 * 5_888)


def test_policy_step_skips_the_critics_weight_gradients():
    "backward(inputs=θ) saves exactly the critics' weight gradients, 2·2|B|C."
    torch.manual_seed(0)
    agent = SAC(17, 6)
    agent._theta = None                      # backward into every parameter
    extra = _counted(agent, _batch(17, 6, 256)) - update_flops(17, 6)
    critic = 23 * 256 + 256 * 256 + 256
    assert extra == 2 * 256 * 2 * critic


def test_roofline_and_matmul_gflops():
    assert roofline(2e9, 100.0) == pytest.approx(50.0)
    rate = matmul_gflops(64, 64, 64, repeats=3)
    assert 0.01 < rate < 1e5                 # GFLOP/s of a real product
    assert matmul_gflops(8, 8, 8, repeats=2, batch=3) > 0


def test_sac_uses_fused_adam():
    agent = SAC(3, 1)
    for opt in (agent.actor_opt, agent.critic_opt, agent.alpha_opt):
        assert opt.defaults["fused"] is True


def test_step_breakdown_times_each_part_once_per_timed_step(tmp_path):
    "benchmarks/step_breakdown.py: every part timed once per step after warm-up."
    out = tmp_path / "breakdown.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "step_breakdown.py"),
         "--steps", "1060", "--threads", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads(out.read_text())
    for name, run in record["runs"].items():
        # 60 timed steps; the compiled run's first update compiles, untimed
        first = 1 if name == "sac_lit_compiled" else 0
        assert run["timed_steps"] == 60
        for part, calls in run["calls"].items():
            expected = 60 - first if part == "update" else 60
            assert calls == expected, (name, part, calls)
        assert run["us_per_step_other"] > 0
        assert sum(run["us_per_step_by_part"].values()) < run["us_per_step"]
    assert record["matmul"]["mm_256_calls_per_update"] == 16
