"""Tests of sac_lit.batchrenorm (chapter 19) and sac_lit.crossq (chapter 20): BatchRenorm, CrossQConfig, the CrossQ update, its state."""
import copy

import pytest
import torch

from sac_lit.agent import SAC
from sac_lit.buffer import Batch
from sac_lit.batchrenorm import BatchRenorm
from sac_lit.crossq import CrossQ, CrossQConfig, crossq_networks, joint_q, renorm_layers, training
from sac_lit.loop import Run, RunConfig, Trainer
from sac_lit.train import Checkpoints

torch.set_num_threads(1)
OBS_DIM, ACT_DIM = 3, 2
SMALL = CrossQConfig(actor_hidden_sizes=(16, 16), critic_hidden_sizes=(24, 24), renorm_warmup=0)
F64 = dict(dtype=torch.float64)


def make_batch(n=48, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    kw = dict(generator=g, dtype=dtype)
    return Batch(obs=torch.randn(n, OBS_DIM, **kw), action=torch.rand(n, ACT_DIM, **kw) * 2 - 1,
                 reward=torch.randn(n, **kw), next_obs=torch.randn(n, OBS_DIM, **kw),
                 terminated=(torch.rand(n, generator=g) < 0.25).to(dtype))


def state_tensors(x, prefix=""):
    "(name, tensor) pairs of a nested state dict, in order."
    if isinstance(x, dict):
        return [p for k, v in x.items() for p in state_tensors(v, f"{prefix}.{k}")]
    if isinstance(x, (list, tuple)):
        return [p for i, v in enumerate(x) for p in state_tensors(v, f"{prefix}[{i}]")]
    return [(prefix, x)] if isinstance(x, torch.Tensor) else []


def identical(a, b) -> bool:
    ta, tb = state_tensors(a.state_dict()), state_tensors(b.state_dict())
    return len(ta) == len(tb) and all(k == l and torch.equal(x, y) for (k, x), (l, y) in zip(ta, tb))


# ---------------------------------------------------------------- BatchRenorm

def test_batchrenorm_at_unit_limits_is_batchnorm1d_outputs_and_gradients():
    g = torch.Generator().manual_seed(0)
    n, B = 6, 40
    brn = BatchRenorm(n, momentum=0.1, eps=1e-3, kappa_max=1.0, delta_max=0.0).double()
    bn = torch.nn.BatchNorm1d(n, eps=1e-3, momentum=0.1).double()
    with torch.no_grad():
        brn.weight.copy_(torch.randn(n, generator=g, **F64))
        brn.bias.copy_(torch.randn(n, generator=g, **F64))
        bn.weight.copy_(brn.weight)
        bn.bias.copy_(brn.bias)
    weights = torch.randn(B, n, generator=g, **F64)
    for _ in range(4):
        z = 2 * torch.randn(B, n, generator=g, **F64) - 1
        results = []
        for layer in (brn, bn):
            x = z.clone().requires_grad_()
            out = layer(x)
            results.append((out, *torch.autograd.grad((weights * out).sum(),
                                                      [x, layer.weight, layer.bias])))
        for u, v in zip(*results):
            torch.testing.assert_close(u, v, rtol=0, atol=1e-12)
    torch.testing.assert_close(brn.running_mean, bn.running_mean, rtol=0, atol=1e-12)


def test_warmup_is_batch_norm_for_warmup_passes_then_the_final_clips():
    layer = BatchRenorm(2, kappa_max=3.0, delta_max=5.0, warmup=10)
    seen = []
    for _ in range(12):
        seen.append([float(x) for x in layer.limits()])
        layer(torch.randn(8, 2))
    assert seen == [[1.0, 0.0]] * 10 + [[3.0, 5.0]] * 2     # passes 0-9, then 10, 11
    layer.eval()                                             # eval passes do not count
    layer(torch.randn(8, 2))
    assert int(layer.steps) == 12
    assert [float(x) for x in BatchRenorm(2, warmup=0).limits()] == [3.0, 5.0]


def test_running_statistics_follow_the_momentum_update():
    g = torch.Generator().manual_seed(1)
    eta, layer = 0.2, BatchRenorm(3, momentum=0.2, warmup=0).double()
    mean, var = torch.zeros(3, **F64), torch.ones(3, **F64)
    for k in range(5):
        z = torch.randn(16, 3, generator=g, **F64) * (k + 1) + k
        layer(z)
        mean = (1 - eta) * mean + eta * z.mean(0)
        var = (1 - eta) * var + eta * z.var(0, unbiased=False)
    torch.testing.assert_close(layer.running_mean, mean)
    torch.testing.assert_close(layer.running_var, var)
    assert int(layer.steps) == 5


def test_gradcheck_with_clipped_corrections():
    layer = BatchRenorm(4, momentum=0.0, warmup=0).double()     # frozen running statistics
    with torch.no_grad():
        layer.running_mean.fill_(-40.0)
        layer.running_var.fill_(25.0)
    g = torch.Generator().manual_seed(2)
    z = torch.randn(10, 4, generator=g, **F64, requires_grad=True)
    w, b = (torch.randn(4, generator=g, **F64, requires_grad=True) for _ in range(2))

    def f(z, w, b):
        return torch.func.functional_call(layer, {"weight": w, "bias": b}, z)
    assert torch.autograd.gradcheck(f, (z, w, b))


def test_unclipped_forward_is_eval_function_and_gradient_is_kappa_times_batchnorm():
    g = torch.Generator().manual_seed(3)
    layer = BatchRenorm(4, momentum=0.0, warmup=0).double()
    z = torch.randn(32, 4, generator=g, **F64)
    with torch.no_grad():
        layer.running_mean.copy_(z.mean(0) - 0.3)
        layer.running_var.copy_(z.var(0) * 1.3)
    sigma_run = (layer.running_var + layer.eps).sqrt()
    kappa = (z.var(0, unbiased=False) + layer.eps).sqrt() / sigma_run
    x = z.clone().requires_grad_()
    out = layer(x)
    torch.testing.assert_close(out, (z - layer.running_mean) / sigma_run)
    weights = torch.randn(32, 4, generator=g, **F64)
    grad, = torch.autograd.grad((weights * out).sum(), x)
    x = z.clone().requires_grad_()
    bn = torch.nn.BatchNorm1d(4, eps=layer.eps, affine=False).double()
    grad_bn, = torch.autograd.grad((weights * bn(x)).sum(), x)
    torch.testing.assert_close(grad, kappa * grad_bn)


def test_eval_mode_uses_running_statistics_only():
    g = torch.Generator().manual_seed(4)
    layer = BatchRenorm(3, warmup=0)
    for _ in range(10):
        layer(torch.randn(16, 3, generator=g) + 2)
    layer.eval()
    state = copy.deepcopy(layer.state_dict())
    z = torch.randn(16, 3, generator=g)
    with torch.no_grad():
        alone = layer(z[:1])
        assert torch.equal(alone, layer(z)[:1])
        assert torch.equal(alone, layer(torch.cat([z[:1], 50 * z[1:]]))[:1])
        expected = (z[:1] - layer.running_mean) / (layer.running_var + layer.eps).sqrt()
    torch.testing.assert_close(alone, expected)
    assert all(torch.equal(v, layer.state_dict()[k]) for k, v in state.items())


@pytest.mark.parametrize("kwargs", [dict(momentum=1.5), dict(eps=0.0), dict(kappa_max=0.5),
                                    dict(delta_max=-1.0), dict(warmup=-1)])
def test_batchrenorm_refuses_bad_settings(kwargs):
    with pytest.raises((ValueError, TypeError)):
        BatchRenorm(3, **kwargs)


# ---------------------------------------------------------------- networks and config

def test_config_defaults_and_checks():
    c = CrossQConfig()
    assert (c.actor_hidden_sizes, c.critic_hidden_sizes) == ((256, 256), (256, 256))
    assert (c.actor_lr, c.critic_lr, c.alpha_lr, c.adam_beta1) == (1e-3, 1e-3, 1e-3, 0.5)
    assert (c.policy_delay, c.momentum, c.bn_eps, c.renorm_warmup) == (3, 0.01, 1e-3, 100_000)
    assert CrossQConfig(**c.to_dict()) == c
    for bad in (dict(policy_delay=0), dict(momentum=2.0), dict(adam_beta1=1.0),
                dict(critic_hidden_sizes=(0,)), dict(gamma=0.0)):
        with pytest.raises((ValueError, TypeError)):
            CrossQConfig(**bad)


def test_networks_have_batchrenorm_in_every_trunk():
    layers = renorm_layers(5, (7, 9))
    kinds = [type(m).__name__ for m in layers]
    assert kinds == ["BatchRenorm", "Linear", "ReLU", "BatchRenorm", "Linear", "ReLU",
                     "BatchRenorm"]
    actor, critic = crossq_networks(OBS_DIM, ACT_DIM, SMALL)
    norms = [m for m in critic.modules() if isinstance(m, BatchRenorm)]
    assert len(norms) == 6 and len(norms[0].weight) == OBS_DIM + ACT_DIM
    assert len([m for m in actor.modules() if isinstance(m, BatchRenorm)]) == 3


def test_agent_starts_in_eval_mode_without_targets_and_acts():
    agent = CrossQ(OBS_DIM, ACT_DIM, SMALL, seed=0)
    assert identical(agent, CrossQ(OBS_DIM, ACT_DIM, SMALL, seed=0))   # the seed fixes it
    assert not agent.actor.training and not agent.critic.training
    assert not hasattr(agent, "critic_targ") and "critic_targ" not in agent.state_dict()
    assert agent.act([0.1, 0.2, 0.3]).shape == (ACT_DIM,)       # one row: eval mode
    assert agent.actor_opt.param_groups[0]["betas"] == (0.5, 0.999)
    assert isinstance(agent, SAC) and agent.agents == [agent]


def test_training_context_restores_eval_mode_on_error():
    agent = CrossQ(OBS_DIM, ACT_DIM, SMALL)
    with pytest.raises(RuntimeError):
        with training(agent.critic):
            assert agent.critic.training
            raise RuntimeError
    assert not agent.critic.training


# ---------------------------------------------------------------- the update

def test_joint_pass_equals_separate_passes_in_eval_mode_only():
    agent = CrossQ(OBS_DIM, ACT_DIM, SMALL, seed=1)
    s, a, _, s2, _ = make_batch()
    a2 = torch.rand_like(a) * 0.5
    with torch.no_grad():
        joint, apart = joint_q(agent.critic, s, a, s2, a2), (agent.critic(s, a), agent.critic(s2, a2))
        for j, p in zip(joint, apart):
            for x, y in zip(j, p):
                assert x.shape == (len(s),)
                torch.testing.assert_close(x, y)
        with training(agent.critic):
            joint = joint_q(agent.critic, s, a, s2, a2)
            apart = agent.critic(s, a), agent.critic(s2, a2)
    assert (joint[0][0] - apart[0][0]).abs().max() > 1e-4


def test_update_metrics_shapes_and_modes():
    agent = CrossQ(OBS_DIM, ACT_DIM, SMALL, seed=0)
    metrics = agent.update(make_batch())
    assert set(metrics) == {"critic_loss", "actor_loss", "alpha_loss", "alpha", "entropy",
                            "q1", "q2", "saturated"}
    assert all(v.shape == () and not v.requires_grad for v in metrics.values())
    assert not agent.actor.training and not agent.critic.training


def test_critic_gradient_treats_the_target_as_a_constant():
    start = CrossQ(OBS_DIM, ACT_DIM, SMALL, seed=2)
    agent, by_hand = copy.deepcopy(start), copy.deepcopy(start)
    batch = make_batch()
    phi = list(agent.critic.parameters())
    seen = []
    agent.critic_opt.register_step_pre_hook(lambda o, a, k: seen.append([p.grad.clone() for p in phi]))
    agent.update(batch)
    s, a, r, s2, d = batch
    with torch.no_grad():
        a2, lp2 = by_hand.actor(s2, by_hand.noise(s2))
    by_hand.critic.train()
    q1, q2 = by_hand.critic(torch.cat([s, s2]), torch.cat([a, a2]))
    n = len(s)
    alpha = by_hand.temperature.alpha
    y = (r + 0.99 * (1 - d) * (torch.min(q1[n:], q2[n:]) - alpha * lp2)).detach()
    loss = ((q1[:n] - y) ** 2).mean() + ((q2[:n] - y) ** 2).mean()
    expected = torch.autograd.grad(loss, list(by_hand.critic.parameters()))
    for g, h in zip(seen[0], expected):
        torch.testing.assert_close(g, h, rtol=1e-4, atol=1e-6)


def test_policy_delay_and_training_passes():
    agent = CrossQ(OBS_DIM, ACT_DIM, SMALL, seed=3)
    norms = lambda m: [x for x in m.modules() if isinstance(x, BatchRenorm)]
    actor_updates, alpha_updates = [], []
    for k in range(1, 8):
        theta = [p.clone() for p in agent.actor.parameters()]
        log_alpha = agent.temperature.log_alpha.clone()
        agent.update(make_batch(seed=k))
        if any(not torch.equal(p, q) for p, q in zip(theta, agent.actor.parameters())):
            actor_updates.append(k)
        if not torch.equal(log_alpha, agent.temperature.log_alpha):
            alpha_updates.append(k)
    assert actor_updates == alpha_updates == [1, 4, 7]
    assert [int(m.steps) for m in norms(agent.critic)] == [7] * 6
    assert [int(m.steps) for m in norms(agent.actor)] == [3] * 3
    assert agent.updates == 7


def test_no_autotune_keeps_alpha():
    agent = CrossQ(OBS_DIM, ACT_DIM, CrossQConfig(actor_hidden_sizes=(8,), critic_hidden_sizes=(8,),
                                                  autotune=False, init_alpha=0.3))
    agent.update(make_batch())
    assert agent.alpha_opt is None
    assert agent.temperature.alpha.item() == pytest.approx(0.3)


# ---------------------------------------------------------------- state

def test_state_round_trip_reproduces_the_next_updates(tmp_path):
    agent = CrossQ(OBS_DIM, ACT_DIM, SMALL, seed=4)
    for k in range(4):                                   # updates = 4: between policy steps
        agent.update(make_batch(seed=10 + k))
    path = agent.save(tmp_path / "agent.pt")
    loaded = CrossQ.load(path)
    assert loaded.config == agent.config and loaded.updates == 4
    assert identical(agent, loaded)
    fresh = CrossQ(OBS_DIM, ACT_DIM, SMALL, seed=99)
    fresh.load_state_dict(agent.state_dict())
    for k in range(4):
        batch = make_batch(seed=20 + k)
        m1, m2, m3 = agent.update(batch), loaded.update(batch), fresh.update(batch)
        for key in m1:
            assert torch.equal(m1[key], m2[key]) and torch.equal(m1[key], m3[key])
        assert identical(agent, loaded) and identical(agent, fresh)


def test_state_dict_is_copied_not_shared():
    agent = CrossQ(OBS_DIM, ACT_DIM, SMALL, seed=5)
    agent.update(make_batch())
    other = CrossQ(OBS_DIM, ACT_DIM, SMALL, seed=6)
    other.load_state_dict(agent.state_dict())
    agent.update(make_batch(seed=2))
    assert not identical(agent, other)


def test_trainer_runs_it_and_resume_continues_the_run_exactly(tmp_path):
    "Chapter 10's loop and chapter 11's checkpoints: stop at 150 steps and go on to 220 == 220."
    config = CrossQConfig(actor_hidden_sizes=(16,), critic_hidden_sizes=(16,), batch_size=32,
                          buffer_size=1000, renorm_warmup=50)
    loop = RunConfig(learning_starts=100, eval_every=0, checkpoint_every=1000)

    def trainer(out, state=None):
        run = Run("Pendulum-v1", seed=0, buffer_size=config.buffer_size)
        agent = CrossQ(run.obs_dim, run.act_dim, config, seed=0)
        t = Trainer([run], agent, loop, [Checkpoints([out], loop.checkpoint_every)])
        if state is not None:
            run.load_state_dict(state["run"])
            agent.load_state_dict(state["agent"])
            t.load_state_dict(0, state)
        return t

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    straight = trainer(tmp_path / "a").fit(220)
    first = trainer(tmp_path / "b").fit(150)
    assert first.learner.updates == 50
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    resumed = trainer(tmp_path / "b", state).fit(220)
    assert resumed.learner.updates == straight.learner.updates == 120
    assert identical(resumed.learner, straight.learner)
    assert resumed.last[0]["episode"] == straight.last[0]["episode"]


# ------------------------------------------- train(), run directories, the registry

TINY_Q = CrossQConfig(actor_hidden_sizes=(16,), critic_hidden_sizes=(16,), batch_size=32,
                      buffer_size=1000, policy_delay=2, renorm_warmup=50)
TINY_LOOP = RunConfig(learning_starts=100, eval_every=120, eval_episodes=1,
                      checkpoint_every=10_000)


def train_q(out, steps, **kwargs):
    from sac_lit.train import train
    if not kwargs.get("resume"):
        kwargs.setdefault("config", TINY_Q)
        kwargs.setdefault("run_config", TINY_LOOP)
    return train("Pendulum-v1", steps, out=out, progress=False, **kwargs)


def same_checkpoints(a, b, path="ckpt"):
    "Equal in every tensor and value, wall-clock timings aside."
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            if k != "clock":
                same_checkpoints(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            same_checkpoints(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), path
    else:
        assert type(a) is type(b) and a == b, (path, a, b)


def test_train_builds_crossq_and_resume_equals_one_run(tmp_path):
    "train() with a CrossQConfig: its run directory loads as CrossQ; 170 + resume to 300 == 300."
    import json
    from sac_lit.agent import load_checkpoint
    train_q(tmp_path / "whole", 300)
    train_q(tmp_path / "parts", 171)                    # mid-episode, between policy steps
    summary = train_q(tmp_path / "parts", 300, resume=True)   # no config: the checkpoint's
    assert summary["steps"] == 300
    whole, parts = (load_checkpoint(tmp_path / n) for n in ("whole", "parts"))
    assert whole["agent"]["algorithm"] == "crossq"
    same_checkpoints(whole, parts)
    assert ((tmp_path / "whole" / "metrics.jsonl").read_bytes()
            == (tmp_path / "parts" / "metrics.jsonl").read_bytes())
    saved = json.loads((tmp_path / "parts" / "config.json").read_text())
    assert saved["config"] == TINY_Q.to_dict() and saved["algorithm"] == "crossq"
    for name in ("whole", "parts"):
        agent = SAC.load(tmp_path / name)
        assert type(agent) is CrossQ and agent.config == TINY_Q and agent.updates == 200
        assert type(CrossQ.load(tmp_path / name / "best.pt")) is CrossQ


def test_load_builds_the_class_the_checkpoint_names(tmp_path):
    from sac_lit.agent import CheckpointError, SACConfig
    sac = SAC(OBS_DIM, ACT_DIM, SACConfig(hidden_sizes=(8,)), seed=0)
    path = sac.save(tmp_path / "sac.pt")
    assert type(SAC.load(path)) is SAC
    with pytest.raises(CheckpointError, match="holds a SAC, not a CrossQ"):
        CrossQ.load(path)
    state = torch.load(path, weights_only=True)
    del state["agent"]["algorithm"]                        # a checkpoint that names none
    torch.save(state, tmp_path / "unnamed.pt")
    assert type(SAC.load(tmp_path / "unnamed.pt")) is SAC
    state["agent"]["algorithm"] = "nosuchagent"
    torch.save(state, tmp_path / "unknown.pt")
    with pytest.raises(CheckpointError, match="unknown algorithm 'nosuchagent'"):
        SAC.load(tmp_path / "unknown.pt")


def test_resume_with_another_agents_config_is_refused(tmp_path):
    from sac_lit.agent import SACConfig
    from sac_lit.train import RunDirError
    train_q(tmp_path / "run", 120)
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    with pytest.raises(RunDirError, match="is a run of crossq"):
        train_q(tmp_path / "run", 200, resume=True, config=SACConfig(hidden_sizes=(16,)))
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before


def test_the_registry_imports_an_agents_module_when_a_checkpoint_names_it():
    "With CrossQ unregistered and its module unloaded, algorithm('crossq') imports it again."
    import subprocess
    import sys
    code = ("import sys, sac_lit.agent as a\n"
            "del a.AGENTS['crossq'], sys.modules['sac_lit.crossq']\n"
            "agent, config = a.algorithm('crossq')\n"
            "print(agent.__module__, agent.__name__, config.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert out.split() == ["sac_lit.crossq", "CrossQ", "CrossQConfig"]
