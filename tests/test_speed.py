"""Chapter 12: the FLOP count of an update, the roofline, and the speed variants.

The FLOP count is checked against PyTorch's own counter on real updates; the
benchmark's variants of the update are checked to compute the same losses as
the baseline (the equivalence check of benchmarks/update_ablation.py, run on
a few updates so that it can run in CI).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from sac_lit import SAC, SACConfig, matmul_gflops, roofline, update_flops
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


def test_benchmark_variants_compute_the_same_update(tmp_path):
    "Every variant of benchmarks/update_ablation.py gives the baseline's losses."
    out = tmp_path / "ablation.json"
    variants = ("baseline,foreach,fused,frozen,stacked,merged,sac_lit,whole,"
                "whole_batched")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "update_ablation.py"),
         "--rounds", "1", "--updates", "2", "--threads", "1",
         "--variants", variants, "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "same losses on the first update" in proc.stdout
    assert out.is_file()


def test_benchmark_equivalence_check_can_fail(monkeypatch):
    "A variant that computes another update is caught (the check is not empty)."
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import update_ablation as ab
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    variants = {n: ab.Variant(n) for n in ("baseline", "stacked")}
    batch = _batch(ab.OBS, ab.ACT, ab.BATCH)
    ab.check_equivalence({n: ab.Variant(n) for n in variants}, batch)
    broken = ab.Variant("stacked")
    with torch.no_grad():
        broken.agent.critic.b[-1].add_(1.0)  # both critics one higher
    with pytest.raises(SystemExit, match="not the same update"):
        ab.check_equivalence({"baseline": ab.Variant("baseline"),
                              "stacked": broken}, batch)


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


def test_loop_fusion_fused_steps_equal_the_train_order(tmp_path):
    "benchmarks/loop_fusion.py: both fused steps pass its check, then time."
    out = tmp_path / "fusion.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "loop_fusion.py"),
         "--steps", "20", "--rounds", "2", "--threads", "1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads(out.read_text())
    assert set(record["largest_difference"]) == {"act inside", "act + sample"}
    assert all(d <= 1e-5 for d in record["largest_difference"].values())
    for rates in record["steps_per_second"].values():
        assert len(rates) == 2 and all(r > 0 for r in rates)


def test_loop_fusion_check_catches_an_action_from_the_old_policy():
    "ã' from θ before the update, not after, is caught by the check."
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import loop_fusion as lf
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    loop = lf.Loop("HalfCheetah-v5")
    update = lf.CompiledUpdate(loop.agent, compile=False)
    fused = lf.FusedStep(loop.agent, loop.buffer, gather=True, compile=False)
    update(loop.buffer.sample(256))           # Adam's state exists
    assert lf.largest_difference(loop, update, fused) <= 1e-5

    def stale(obs, batch_size=256):           # same ξ_act, θ before update
        rng = torch.get_rng_state()
        torch.randn(batch_size, 6), torch.randn(batch_size, 6)     # ξ', ξ
        xi_act = torch.randn(1, 6)
        torch.set_rng_state(rng)
        with torch.no_grad():
            mu, log_std = loop.agent.actor.head(
                torch.as_tensor(obs, dtype=torch.float32)[None])
            action = torch.tanh(mu + log_std.exp() * xi_act)[0].numpy()
        metrics, fused_action = fused(obs, batch_size)
        assert abs(fused_action - action).max() > 0     # θ did change
        return metrics, action
    assert lf.largest_difference(loop, update, stale) > 1e-4
