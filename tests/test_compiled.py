"""Chapter 17: the whole update compiled (sac_lit.compiled, train --compile).

The equivalence tests run chapter 9's SAC.update and the functional update
(eager and compiled) on the same batches, from the same state (noise
generator included), and compare metrics, parameters, targets, log α and
every Adam moment to 1e-5.
"""
import contextlib
import copy
import io
import json
import math

import pytest
import torch

from sac_lit import SAC, SACConfig, train
from sac_lit.agent import load_checkpoint
from sac_lit.buffer import Batch
from sac_lit.cli import main
from sac_lit.compiled import (CompileNotice, CompiledUpdate, adam_step_, adam_tensors,
                              compiled, functional_update, step_arguments)
from sac_lit.loop import RunConfig
from sac_lit.seeds import BatchedSAC

from cli_capture import cli

OBS, ACT = 5, 2


def batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, OBS, generator=g),
                 torch.rand(n, ACT, generator=g) * 2 - 1,
                 torch.randn(n, generator=g),
                 torch.randn(n, OBS, generator=g),
                 (torch.rand(n, generator=g) < 0.2).float())


def twins(config=None):
    "Two agents with the same seed: the same initial weights and noise."
    return SAC(OBS, ACT, config, seed=3), SAC(OBS, ACT, config, seed=3)


def state_tensors(agent):
    "Every tensor an update changes, in a fixed order."
    moments = [t for opt in (agent.actor_opt, agent.critic_opt,
                             agent.alpha_opt) if opt is not None
               for p in (q for g in opt.param_groups for q in g["params"])
               for t in opt.state[p].values()]
    return [*agent.actor.parameters(), *agent.critic.parameters(),
            *agent.critic_targ.parameters(), agent.temperature.log_alpha,
            *moments]


def largest_difference(reference, update, other, n=3):
    """Five updates of reference alone, then n updates on both, other given
    reference's state before each; the largest difference of metrics and
    state. On Adam's first step every parameter moves by ±lr, the sign of its
    gradient, so rounding can flip a near-zero gradient's step by 2 lr; with
    a history in v the same rounding moves it by a tiny fraction of that."""
    for i in range(5):                 # Adam gets a history (see above)
        reference.update(batch(seed=100 + i))
    worst = 0.0
    for i in range(n):
        other.load_state_dict(reference.state_dict())
        b = batch(seed=i)
        want, got = reference.update(b), update(b)
        assert list(got) == list(want)
        mine, theirs = state_tensors(reference), state_tensors(other)
        assert len(mine) == len(theirs) > 0
        worst = max([worst]
                    + [float((want[k] - got[k]).abs())
                       / (1 + float(want[k].abs())) for k in want]
                    + [float((x.detach() - y.detach()).abs().max())
                       for x, y in zip(mine, theirs)])
    return worst


def eager_update(agent, swap_noise=False):
    "functional_update's step with CompiledUpdate's calling convention."
    update = CompiledUpdate(agent, compile=False)
    if swap_noise:
        step = update.step
        update.step = lambda *a: step(*a[:-2], a[-1], a[-2])
    return update.update


CONFIGS = [SACConfig(hidden_sizes=(32, 32)),
           SACConfig(hidden_sizes=(32, 32), autotune=False, init_alpha=0.3),
           SACConfig(hidden_sizes=()),
           SACConfig(hidden_sizes=(16, 8, 4), gamma=0.9, rho=0.9)]


@pytest.mark.parametrize("config", CONFIGS)
def test_functional_update_equals_sac_update(config):
    ref, other = twins(config)
    assert largest_difference(ref, eager_update(other), other) < 1e-5


def test_equivalence_fails_with_swapped_noise():
    ref, other = twins(CONFIGS[0])
    err = largest_difference(ref, eager_update(other, swap_noise=True), other)
    assert err > 1e-3


@pytest.mark.parametrize("config", CONFIGS[:2])
def test_compiled_update_equals_sac_update(config):
    ref, other = twins(config)
    update = CompiledUpdate(other)
    assert largest_difference(ref, update.update, other, n=4) < 1e-5
    assert update.compile_seconds > 0


def test_compiled_batched_update_equals_batched_update():
    "--compile with --seeds: the compiled update of a BatchedSAC."
    def batched():
        return BatchedSAC([SAC(OBS, ACT, CONFIGS[0], seed=s) for s in (1, 2)])
    ref, other = batched(), batched()
    fast = CompiledUpdate(other)
    data = Batch(*(torch.stack(x) for x in zip(batch(seed=1), batch(seed=2))))
    for _ in range(2):
        other.load_agents(ref.agents)
        want, got = ref.update(data), fast.update(data)
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-5)
    for p, q in zip(ref.actor.parameters(), other.actor.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-5)
    for mine, theirs in zip(ref.agents, fast.agents):   # what checkpoints read
        for p, q in zip(mine.actor.parameters(), theirs.actor.parameters()):
            torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_adam_step_is_torch_adam(fused):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(),
                              torch.nn.Linear(6, 2))
    twin = copy.deepcopy(net)
    reference = torch.optim.Adam(net.parameters(), lr=3e-3,
                                 betas=(0.8, 0.99), eps=1e-6, fused=fused)
    mine = torch.optim.Adam(twin.parameters(), lr=3e-3, betas=(0.8, 0.99),
                            eps=1e-6)
    for step in range(6):
        grads = [torch.randn_like(p) * 10.0 ** (step - 3)
                 for p in net.parameters()]
        for p, g in zip(net.parameters(), grads):
            p.grad = g.clone()
        reference.step()
        with torch.no_grad():
            adam_step_(grads, **adam_tensors(mine))
    for p, q in zip(net.parameters(), twin.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-6, atol=1e-7)
        for key in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(mine.state[q][key],
                                       reference.state[p][key],
                                       rtol=1e-6, atol=1e-9)


def test_adam_tensors_are_the_optimizers_own_state():
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([p], lr=0.1)
    state = adam_tensors(opt)
    (theta, m, v, t), = state["rows"]
    assert theta is p and m is opt.state[p]["exp_avg"]
    assert v is opt.state[p]["exp_avg_sq"] and t is opt.state[p]["step"]
    assert float(t) == 0 and state["lr"] == 0.1
    with torch.no_grad():
        adam_step_([torch.ones(3)], **state)
    assert float(opt.state[p]["step"]) == 1
    torch.testing.assert_close(p.detach(), torch.full((3,), 0.9))  # −lr·sign
    p.grad = torch.ones(3)
    opt.step()                              # torch's Adam carries on from it
    assert float(opt.state[p]["step"]) == 2


@pytest.mark.parametrize("kwargs", [{"weight_decay": 0.1}, {"amsgrad": True},
                                    {"maximize": True}])
def test_adam_tensors_refuses_other_adams(kwargs):
    p = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match="plain Adam"):
        adam_tensors(torch.optim.Adam([p], **kwargs))


def test_functional_update_keeps_the_order_of_noise():
    "ξ' is the first draw (for s'), ξ the second, as in SAC.update."
    ref, other = twins(CONFIGS[0])
    step = functional_update(other)
    b = batch()
    want = ref.update(b)
    xi_next, xi = other.noise(b.next_obs), other.noise(b.obs)
    with torch.no_grad():
        got = step(*step_arguments(other), tuple(b), xi_next, xi)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6)


PENDULUM = SACConfig(hidden_sizes=(16, 16), batch_size=32)
LOOP = RunConfig(learning_starts=100, eval_every=0, checkpoint_every=150)


def agent_tensors(path):
    return load_checkpoint(path)["agent"]


def test_train_compile_resumes_bit_identically(tmp_path):
    whole = train("Pendulum-v1", 260, out=tmp_path / "a", config=PENDULUM, run_config=LOOP,
                  progress=False, learner=compiled)
    train("Pendulum-v1", 170, out=tmp_path / "b", config=PENDULUM, run_config=LOOP,
          progress=False, learner=compiled)
    train("Pendulum-v1", 260, out=tmp_path / "b", resume=True,
          progress=False, learner=compiled)
    assert whole["compile_seconds"] > 0 and whole["steps"] == 260
    a, b = agent_tensors(tmp_path / "a"), agent_tensors(tmp_path / "b")
    for part in ("actor", "critic", "critic_targ", "temperature"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), (part, key)
    for part in ("actor_opt", "critic_opt", "alpha_opt"):
        for i, st in a[part]["state"].items():
            for key, value in st.items():
                assert torch.equal(value, b[part]["state"][i][key])


def test_compiled_run_tracks_eager_run_and_goes_on_eagerly(tmp_path):
    eager = train("Pendulum-v1", 200, out=tmp_path / "e", config=PENDULUM,
                  run_config=LOOP, progress=False)
    fast = train("Pendulum-v1", 200, out=tmp_path / "c", config=PENDULUM,
                 run_config=LOOP, progress=False, learner=compiled)
    assert "compile_seconds" not in eager
    rows = {k: [json.loads(line) for line in
                (tmp_path / k / "metrics.jsonl").read_text().splitlines()]
            for k in ("e", "c")}
    assert len(rows["e"]) == len(rows["c"]) > 0
    # after the warm-up the runs may drift apart (rounding grows over the
    # updates: chapter 17), so only the rows' kinds and steps must agree,
    # and the losses must be finite
    assert [(r["kind"], r["step"]) for r in rows["e"]] == [
        (r["kind"], r["step"]) for r in rows["c"]]
    assert all(math.isfinite(r["critic_loss"]) for r in rows["c"]
               if "critic_loss" in r)
    # a compiled run's checkpoint is an ordinary one: resume it uncompiled
    more = train("Pendulum-v1", 260, out=tmp_path / "c", resume=True,
                 progress=False)
    assert more["steps"] == 260 and fast["steps"] == 200


def test_command_line_compile(tmp_path):
    base = ["train", "--env", "Pendulum-v1", "--steps", "150", "--out",
            str(tmp_path / "run"), "--learning-starts", "100",
            "--eval-every", "0", "--hidden-sizes", "16", "--batch-size", "32",
            "--no-progress"]
    code, out, err = cli(base + ["--compile"])
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 150 and summary["compile_seconds"] > 0
    code, out, err = cli(["eval", str(tmp_path / "run"), "--episodes", "1",
                          "--json"])
    assert code == 0 and "returns" in out


def test_command_line_compile_with_seeds(tmp_path):
    runs = {}
    for name, extra in (("run", ["--compile"]), ("eager", [])):
        code, out, err = cli(["train", "--env", "Pendulum-v1", "--steps", "150",
                              "--out", str(tmp_path / name), "--seeds", "0-1",
                              "--learning-starts", "100", "--eval-every", "0",
                              "--hidden-sizes", "16", "--batch-size", "32",
                              *extra, "--no-progress"])
        assert code == 0, err
        runs[name] = [SAC.load(tmp_path / name / f"seed_{s}") for s in (0, 1)]
    for s in (0, 1):
        summary = json.loads((tmp_path / "run" / f"seed_{s}" / "summary.json").read_text())
        assert summary["steps"] == 150 and summary["compile_seconds"] > 0
        assert summary["seeds_in_process"] == 2
        # the checkpoint holds the trained weights: those of the same run without --compile
        for p, q in zip(runs["run"][s].actor.parameters(), runs["eager"][s].actor.parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=1e-4)


def test_compile_notice_adds_its_compile_to_a_resumed_clock():
    from types import SimpleNamespace
    learner = SimpleNamespace(compile_seconds=None)
    trainer = SimpleNamespace(learner=learner, step=100, callbacks=[],
                              config=RunConfig(learning_starts=100),
                              clock={"train_seconds": 9.0, "compile_seconds": 3.0})
    notice = CompileNotice()
    notice.on_start(trainer)
    notice.on_step(trainer)
    assert trainer.clock["compile_seconds"] == 3.0     # not compiled yet
    learner.compile_seconds = 2.0                       # the first update ran
    for _ in range(3):
        notice.on_step(trainer)
    assert trainer.clock["compile_seconds"] == 5.0     # added once
    trainer.clock = {"train_seconds": 0.0}              # a checkpoint without it
    notice.on_start(trainer)                            # already compiled
    assert trainer.clock["compile_seconds"] == 0.0


def test_help_mentions_compile():
    text = io.StringIO()
    with contextlib.redirect_stdout(text), pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--compile" in text.getvalue()


def test_progress_bar_says_when_the_update_compiles(tmp_path):
    from tqdm import tqdm
    said = []

    class Recording(tqdm):
        def set_postfix_str(self, s="", refresh=True):
            said.append(s)
            super().set_postfix_str(s, refresh)

    train("Pendulum-v1", 120, out=tmp_path / "c", config=PENDULUM,
          run_config=LOOP, progress=Recording, learner=compiled)
    assert said.count("compiling the update") == 1
    said.clear()
    train("Pendulum-v1", 120, out=tmp_path / "e", config=PENDULUM,
          run_config=LOOP, progress=Recording)
    assert "compiling the update" not in said
