"""Chapter 16: many seeds in one process (sac_lit.seeds, train(seed=[...]), train --seeds)."""
import contextlib
import copy
import io
import json
from unittest import mock

import numpy as np
import pytest
import torch
from torch import nn

import sac_lit.agent
from sac_lit import SAC, SACConfig, train
from sac_lit.buffer import Batch
from sac_lit.cli import main
from sac_lit.loop import RunConfig
from sac_lit.seeds import BatchedSAC, StackedActor, StackedLinear, StackedTwinQ, correspondence
from sac_lit.train import seed_dir

from cli_capture import cli

OBS, ACT = 5, 2


def agents(seeds, config=None):
    return [SAC(OBS, ACT, config, seed=s) for s in seeds]


def batches(n, b=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [Batch(torch.randn(b, OBS, generator=g),
                  torch.rand(b, ACT, generator=g) * 2 - 1,
                  torch.randn(b, generator=g),
                  torch.randn(b, OBS, generator=g),
                  (torch.rand(b, generator=g) < 0.2).float())
            for _ in range(n)]


def stack(bs):
    return Batch(*map(torch.stack, zip(*bs)))


def run_both(seeds, config=None, updates=3, swap_noise=False):
    "Single-seed updates and one batched update; the worst differences."
    originals = agents(seeds, config)
    for i in range(5):                  # Adam gets a history (chapter 16)
        for agent, b in zip(originals, batches(len(seeds), seed=50 + i)):
            agent.update(b)
    singles = copy.deepcopy(originals)               # their generators too
    if swap_noise:                                    # seeds 0, 1 swap streams
        g0, g1 = (a.generator.get_state() for a in originals[:2])
        originals[0].generator.set_state(g1)
        originals[1].generator.set_state(g0)
    batched = BatchedSAC(originals)
    data = batches(len(seeds))
    worst_metric = 0.0
    for _ in range(updates):
        # the same state before each update: free-running agents that
        # round differently drift apart (chapter 17); one update must agree
        batched.load_agents(singles)
        ms = [agent.update(b) for agent, b in zip(singles, data)]
        mb = batched.update(stack(data))
        assert set(mb) == set(ms[0])
        for name, v in mb.items():
            assert v.shape == (len(seeds),)
            for k in range(len(seeds)):
                worst_metric = max(worst_metric, abs(v[k].item() - ms[k][name].item()))
    worst = 0.0
    for a, b in zip(singles, batched.agents):          # written back
        for p, q in zip(_tensors(a), _tensors(b)):
            worst = max(worst, (p - q).abs().max().item())
    for stacked, i, agent, p, opt, t in correspondence(batched, singles):
        if p.grad is not None:
            g = stacked.grad[i].T if t else stacked.grad[i]
            worst = max(worst, (g - p.grad).abs().max().item())
    return worst_metric, worst


def _tensors(agent):
    "Every parameter and Adam moment of an agent, in a fixed order."
    out = []
    for part in ("actor", "critic", "critic_targ", "temperature"):
        out += list(getattr(agent, part).parameters())
    for opt in ("actor_opt", "critic_opt", "alpha_opt"):
        if getattr(agent, opt) is None:
            continue
        state = getattr(agent, opt).state_dict()["state"]
        out += [x for i in sorted(state) for _, x in sorted(state[i].items())]
    return out


@pytest.mark.parametrize("config", [
    None,
    SACConfig(autotune=False, init_alpha=0.2),
    SACConfig(hidden_sizes=(32, 16, 8), gamma=0.9, rho=0.9),
    SACConfig(hidden_sizes=()),
])
def test_one_batched_update_equals_single_seed_updates(config):
    metric, state = run_both([0, 1, 2], config)
    assert metric < 1e-5 and state < 1e-5


def test_equivalence_fails_when_seeds_get_each_others_noise():
    metric, state = run_both([0, 1, 2], swap_noise=True)
    assert metric > 1e-3 or state > 1e-3


def test_equivalence_fails_with_a_mean_over_seeds():
    def minimise_mean(opt, loss, inputs=None):
        opt.zero_grad()
        loss.mean().backward(inputs=inputs)
        opt.step()

    with mock.patch.object(sac_lit.agent, "minimise", minimise_mean):
        _, state = run_both([0, 1, 2])
    assert state > 1e-3


def test_one_seed_batched_equals_sac():
    metric, state = run_both([7])
    assert metric < 1e-5 and state < 1e-5


def test_load_then_write_is_exact():
    some = agents([3, 4])
    for agent, b in zip(some, batches(2)):            # non-empty Adam moments
        agent.update(b)
    batched = BatchedSAC(some)
    fresh = agents([8, 9])
    batched.write_agents(fresh)
    for a, b in zip(some, fresh):
        for p, q in zip(_tensors(a), _tensors(b)):
            assert torch.equal(p, q)


def test_agents_are_written_back_only_after_an_update():
    some = agents([3, 4])
    batched = BatchedSAC(some)
    before = some[0].actor.head.mean.weight.clone()
    assert torch.equal(batched.agents[0].actor.head.mean.weight, before)
    batched.update(stack(batches(2)))
    assert not torch.equal(batched.agents[0].actor.head.mean.weight, before)


def test_stacked_modules_match_chapter_modules():
    some = agents([0, 1])
    batched = BatchedSAC(some)
    s, a = torch.randn(2, 10, OBS), torch.rand(2, 10, ACT) * 2 - 1
    xi = torch.randn(2, 10, ACT)
    action, log_prob = batched.actor(s, xi)
    q1s, q2s = batched.critic(s, a)
    assert q1s.shape == q2s.shape == (2, 10)
    for k, agent in enumerate(some):
        a_k, lp_k = agent.actor(s[k], xi[k])
        assert torch.allclose(action[k], a_k, atol=1e-6)
        assert torch.allclose(log_prob[k], lp_k, atol=1e-5)
        q1, q2 = agent.critic(s[k], a[k])
        assert torch.allclose(q1s[k], q1, atol=1e-5) and torch.allclose(q2s[k], q2, atol=1e-5)
    mean_action, _ = batched.actor(s, deterministic=True)
    assert torch.allclose(mean_action[1], torch.tanh(some[1].actor.head(s[1])[0]), atol=1e-6)


def test_stacked_linear_is_k_linears():
    layer = StackedLinear(3, 4, 6)
    x = torch.randn(3, 8, 4)
    for k in range(3):
        lin = nn.Linear(4, 6)
        with torch.no_grad():
            lin.weight.copy_(layer.weight[k].T)
            lin.bias.copy_(layer.bias[k, 0])
        assert torch.allclose(layer(x)[k], lin(x[k]), atol=1e-6)
    assert isinstance(StackedActor(2, 3, 1), nn.Module)
    q1, q2 = StackedTwinQ(2, 3, 1)(torch.zeros(2, 4, 3), torch.zeros(2, 4, 1))
    assert q1.shape == q2.shape == (2, 4)


def test_act_draws_each_seeds_noise():
    some = agents([0, 1])
    singles = copy.deepcopy(some)
    batched = BatchedSAC(some)
    obs = np.random.default_rng(0).normal(size=(2, OBS))
    got = batched.act(obs)
    for k, agent in enumerate(singles):
        assert np.allclose(got[k], agent.act(obs[k]), atol=1e-6)
    det = batched.act(obs, deterministic=True)
    assert np.allclose(det[0], singles[0].act(obs[0], deterministic=True), atol=1e-6)


def test_bad_agents_are_refused():
    a, b = SAC(OBS, ACT), SAC(OBS, ACT, SACConfig(gamma=0.9))
    with pytest.raises(ValueError, match="share"):
        BatchedSAC([a, b])
    with pytest.raises(ValueError, match="at least one"):
        BatchedSAC([])


TINY = SACConfig(hidden_sizes=(32, 32), batch_size=32)
LOOP = RunConfig(learning_starts=200, eval_every=150, eval_episodes=1, checkpoint_every=100)


def returns(path):
    rows = [json.loads(x) for x in open(path / "metrics.jsonl")]
    return [r["return"] for r in rows if r["kind"] == "episode"]


def test_train_several_seeds_tracks_single_seed_runs_and_resumes(tmp_path):
    steps, kwargs = 600, dict(config=TINY, run_config=LOOP, progress=False)
    train("Pendulum-v1", steps, [0, 1], out=tmp_path / "many", learner=BatchedSAC, **kwargs)
    train("Pendulum-v1", steps, seed=1, out=tmp_path / "one", **kwargs)
    many, one = returns(seed_dir(tmp_path / "many", 1)), returns(tmp_path / "one")
    assert len(many) == len(one) == 3
    assert many[0] == one[0]                          # warm-up: identical
    # later episodes differ by float rounding grown over the updates
    # (chaos, chapter 17): equal updates, not equal runs
    # interrupted halfway and resumed: the same run, bit for bit
    train("Pendulum-v1", 300, [0, 1], out=tmp_path / "r", learner=BatchedSAC, **kwargs)
    summaries = train("Pendulum-v1", steps, [0, 1], out=tmp_path / "r", learner=BatchedSAC,
                      resume=True, progress=False)
    assert [s["steps"] for s in summaries] == [steps, steps]
    assert all(s["seeds_in_process"] == 2 for s in summaries)
    for s in (0, 1):
        a = seed_dir(tmp_path / "many", s) / "metrics.jsonl"
        b = seed_dir(tmp_path / "r", s) / "metrics.jsonl"
        assert a.read_text() == b.read_text()
    # one seed of a several-seed run goes on alone, as an ordinary run
    summary = train("Pendulum-v1", 700, seed=0, out=seed_dir(tmp_path / "r", 0),
                    resume=True, progress=False)
    assert summary["steps"] == 700
    assert isinstance(SAC.load(seed_dir(tmp_path / "r", 1)), SAC)


def test_the_order_of_the_seeds_does_not_matter(tmp_path):
    kwargs = dict(config=TINY, run_config=LOOP, progress=False, learner=BatchedSAC)
    train("Pendulum-v1", 250, [0, 1], out=tmp_path / "a", **kwargs)
    train("Pendulum-v1", 250, [1, 0], out=tmp_path / "b", **kwargs)
    for s in (0, 1):
        assert returns(seed_dir(tmp_path / "a", s)) == returns(seed_dir(tmp_path / "b", s))


def test_train_several_seeds_bad_input(tmp_path):
    kwargs = dict(config=TINY, run_config=LOOP, progress=False, learner=BatchedSAC)
    with pytest.raises(ValueError, match="distinct"):
        train("Pendulum-v1", 10, [0, 0], **kwargs)
    with pytest.raises(ValueError, match="distinct"):
        train("Pendulum-v1", 10, [], **kwargs)
    train("Pendulum-v1", 150, [0, 1], out=tmp_path, **kwargs)
    with pytest.raises(ValueError, match="not empty"):
        train("Pendulum-v1", 150, [2, 1], out=tmp_path, **kwargs)
    assert not seed_dir(tmp_path, 2).exists()         # nothing touched
    train("Pendulum-v1", 250, seed=0, out=seed_dir(tmp_path, 0), resume=True, progress=False)
    with pytest.raises(ValueError, match="same step"):
        train("Pendulum-v1", 300, [0, 1], out=tmp_path, resume=True, **kwargs)


def test_command_line_seeds(tmp_path):
    base = ["train", "--env", "Pendulum-v1", "--steps", "200", "--out",
            str(tmp_path / "run"), "--learning-starts", "100",
            "--eval-every", "0", "--hidden-sizes", "16", "--no-progress"]
    code, out, err = cli(base + ["--seeds", "0-2", "--metrics", "csv"])
    assert code == 0, err
    assert "3 seeds in one process" in out
    for s in (0, 1, 2):
        d = seed_dir(tmp_path / "run", s)
        assert json.loads((d / "summary.json").read_text())["steps"] == 200
        assert (d / "metrics.csv").is_file()
    code, out, err = cli(["eval", str(seed_dir(tmp_path / "run", 2)),
                          "--episodes", "1", "--json"])
    assert code == 0 and "returns" in out
    resume = [a if a != "200" else "300" for a in base]
    code, out, err = cli(resume + ["--seeds", "0-2", "--resume"])
    assert code == 0, err


@pytest.mark.parametrize("extra, message", [
    (["--seeds", "0,1", "--seed", "3"], "give one"),
    (["--seeds", "3-1"], "expected e.g."),
    (["--seeds", "0,0"], "twice"),
    (["--seeds", "0,1", "--gamma", "2"], "--gamma"),
])
def test_command_line_seeds_bad_input(tmp_path, extra, message):
    base = ["train", "--env", "Pendulum-v1", "--steps", "200", "--out",
            str(tmp_path / "run"), "--no-progress"]
    code, out, err = cli(base + extra)
    assert code == 2 and err.startswith("error: ") and message in err, err
    assert not (tmp_path / "run").exists()


def test_command_line_seeds_refuses_existing_runs(tmp_path):
    base = ["train", "--env", "Pendulum-v1", "--steps", "150", "--out",
            str(tmp_path), "--learning-starts", "100", "--eval-every", "0",
            "--hidden-sizes", "16", "--no-progress"]
    assert cli(base + ["--seeds", "0"])[0] == 0
    before = (seed_dir(tmp_path, 0) / "metrics.jsonl").read_bytes()
    code, _, err = cli(base + ["--seeds", "1,0"])
    assert code == 2 and "seed_0" in err
    assert not seed_dir(tmp_path, 1).exists()
    assert (seed_dir(tmp_path, 0) / "metrics.jsonl").read_bytes() == before


def test_help_mentions_seeds():
    parser_help = io.StringIO()
    with contextlib.redirect_stdout(parser_help), pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--seeds" in parser_help.getvalue()
