"""Tests of sac_lit.agent (chapter 9): SACConfig, SAC.act, SAC.update, saving and loading."""
import copy
import dataclasses
import inspect
import json
import math
import os
import pickle
import re

import numpy as np
import pytest
import torch

from sac_lit.agent import SAC, CheckpointError, SACConfig, load_checkpoint, save_atomic
from sac_lit.buffer import Batch
from sac_lit.critic import critic_loss
from sac_lit.targets import soft_q_target
from sac_lit.temperature import actor_loss, temperature_loss

torch.set_num_threads(1)
OBS_DIM, ACT_DIM = 3, 2
SMALL = SACConfig(hidden_sizes=(16, 16))


def make_batch(n=48, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    kw = dict(generator=g, dtype=dtype)
    return Batch(obs=torch.randn(n, OBS_DIM, **kw), action=torch.rand(n, ACT_DIM, **kw) * 2 - 1,
                 reward=torch.randn(n, **kw), next_obs=torch.randn(n, OBS_DIM, **kw),
                 terminated=(torch.rand(n, generator=g) < 0.25).to(dtype))


def double_agent(seed=2, config=SMALL, perturb_targets=True):
    agent = SAC(OBS_DIM, ACT_DIM, config, seed=seed)
    torch.manual_seed(seed)                           # for the targets' perturbation
    for net in (agent.actor, agent.critic, agent.critic_targ, agent.temperature):
        net.double()
    if perturb_targets:
        with torch.no_grad():
            for p in agent.critic_targ.parameters():
                p.add_(0.05 * torch.randn_like(p))
    return agent


def groups(agent):
    return {"phi": [p.detach().clone() for p in agent.critic.parameters()],
            "theta": [p.detach().clone() for p in agent.actor.parameters()],
            "log_alpha": [agent.temperature.log_alpha.detach().clone()],
            "phi_targ": [p.detach().clone() for p in agent.critic_targ.parameters()]}


def max_diff(xs, ys):
    return max((x - y).abs().max().item() for x, y in zip(xs, ys))


# ---------------------------------------------------------------- SACConfig

def test_defaults_are_the_sac_v2_table():
    c = SACConfig()
    assert c.hidden_sizes == (256, 256)
    assert c.actor_lr == c.critic_lr == c.alpha_lr == 3e-4
    assert (c.batch_size, c.buffer_size, c.gamma) == (256, 1_000_000, 0.99)
    assert math.isclose(1 - c.rho, 0.005)
    assert c.autotune is True and c.init_alpha == 1.0 and c.target_entropy is None
    assert SAC(OBS_DIM, ACT_DIM, SMALL).target_entropy == -ACT_DIM


@pytest.mark.parametrize("bad", [
    dict(gamma=0.0), dict(gamma=1.5), dict(gamma=float("nan")), dict(rho=1.0), dict(rho=-0.01),
    dict(actor_lr=-1e-3), dict(critic_lr=0.0), dict(alpha_lr=float("inf") * 0),
    dict(init_alpha=0.0), dict(batch_size=0), dict(batch_size=1.5), dict(buffer_size=0),
    dict(hidden_sizes=(32, -1)), dict(target_entropy=float("nan")), dict(autotune=1)])
def test_config_rejects_out_of_range(bad):
    with pytest.raises((ValueError, TypeError)) as err:
        SACConfig(**bad)
    assert list(bad)[0] in str(err.value)


def test_config_edges_and_plain_dict_roundtrip():
    c = SACConfig(gamma=1.0, rho=0.0, hidden_sizes=[8])
    assert c.hidden_sizes == (8,)
    d = c.to_dict()
    assert json.loads(json.dumps(d)) == d             # plain JSON types only
    assert SACConfig(**d) == c
    assert all(f.metadata["help"] for f in dataclasses.fields(SACConfig))


def test_the_seed_fixes_weights_and_noise_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a, b, c = SAC(OBS_DIM, ACT_DIM, SMALL, seed=1), SAC(OBS_DIM, ACT_DIM, SMALL, seed=1), \
        SAC(OBS_DIM, ACT_DIM, SMALL, seed=2)
    assert torch.equal(torch.get_rng_state(), state)
    obs = np.zeros((5, OBS_DIM))
    assert np.array_equal(a.act(obs), b.act(obs)) and not np.array_equal(a.act(obs), c.act(obs))
    assert torch.equal(torch.get_rng_state(), state)  # acting draws from the agent's generator
    for p, q in zip(a.critic.parameters(), a.critic_targ.parameters()):   # line 1: φ_targ ← φ
        assert torch.equal(p, q) and p.data_ptr() != q.data_ptr()


# ---------------------------------------------------------------- act

def test_act_numpy_in_out_and_deterministic_mean():
    agent = SAC(OBS_DIM, ACT_DIM, SMALL)
    obs = np.array([0.1, -0.4, 0.7], dtype=np.float32)
    a = agent.act(obs, deterministic=True)
    assert isinstance(a, np.ndarray) and a.shape == (ACT_DIM,) and a.dtype == np.float32
    with torch.no_grad():
        mean, _ = agent.actor.head(torch.as_tensor(obs)[None])
    np.testing.assert_allclose(a, torch.tanh(mean)[0].numpy(), atol=1e-6)
    assert agent.act(np.zeros((7, OBS_DIM)), deterministic=False).shape == (7, ACT_DIM)
    noise = agent.generator.get_state()
    x1 = agent.act(obs)
    agent.generator.set_state(noise)
    assert np.array_equal(x1, agent.act(obs)) and not np.array_equal(x1, agent.act(obs))


def test_act_samples_the_squashed_gaussian():
    agent = SAC(OBS_DIM, ACT_DIM, SMALL)
    obs = np.array([0.5, 0.2, -1.0], dtype=np.float32)
    n = 20_000
    u = np.arctanh(agent.act(np.repeat(obs[None], n, 0)).astype(np.float64))
    with torch.no_grad():
        mean, log_std = agent.actor.head(torch.as_tensor(obs)[None])
    mu, sigma = mean[0].double().numpy(), log_std[0].exp().double().numpy()
    assert np.all(np.abs(u.mean(0) - mu) < 4 * sigma / math.sqrt(n))
    assert np.all(np.abs(u.std(0, ddof=1) - sigma) < 4 * sigma / math.sqrt(2 * n))


def test_act_builds_no_graph():
    agent = SAC(OBS_DIM, ACT_DIM, SMALL)
    with torch.enable_grad():
        a = agent.act(np.zeros(OBS_DIM))
    assert isinstance(a, np.ndarray)
    assert all(p.grad is None for p in agent.actor.parameters())


# ---------------------------------------------------------------- update

def reference_update(agent, batch):
    """The algorithm box, lines 9-13, written independently of SAC.update."""
    obs, action, reward, next_obs, terminated = batch
    alpha = float(agent.temperature.log_alpha.detach().exp())
    with torch.no_grad():
        next_action, next_log_prob = agent.actor(next_obs, agent.noise(next_obs))
        tq1, tq2 = agent.critic_targ(next_obs, next_action)
        y = reward + agent.config.gamma * (1 - terminated) * (
            torch.minimum(tq1, tq2) - alpha * next_log_prob)
    phi = list(agent.critic.parameters())
    q1, q2 = agent.critic(obs, action)
    loss_q = ((q1 - y) ** 2).mean() + ((q2 - y) ** 2).mean()
    for p, g in zip(phi, torch.autograd.grad(loss_q, phi)):
        p.grad = g
    agent.critic_opt.step()
    theta = list(agent.actor.parameters())
    new_action, log_prob = agent.actor(obs, agent.noise(obs))
    p1, p2 = agent.critic(obs, new_action)
    loss_pi = (alpha * log_prob - torch.minimum(p1, p2)).mean()
    for p, g in zip(theta, torch.autograd.grad(loss_pi, theta)):
        p.grad = g
    agent.actor_opt.step()
    la = agent.temperature.log_alpha
    loss_a = -(la * (log_prob.detach() + agent.target_entropy)).mean()
    la.grad = torch.autograd.grad(loss_a, [la])[0]
    agent.alpha_opt.step()
    rho = agent.config.rho
    with torch.no_grad():
        for pt, p in zip(agent.critic_targ.parameters(), phi):
            pt.copy_(rho * pt + (1 - rho) * p)
    return {"critic_loss": loss_q.item(), "actor_loss": loss_pi.item(),
            "alpha_loss": loss_a.item(), "alpha": alpha, "entropy": -log_prob.mean().item(),
            "q1": q1.mean().item(), "q2": q2.mean().item()}


def test_update_equals_the_algorithm_box_for_several_updates():
    # from α = 0.5: log α ≠ 0, so the temperature loss and the α in every target are not trivial
    half = SACConfig(hidden_sizes=(16, 16), init_alpha=0.5)
    a, b = double_agent(config=half), double_agent(config=half)
    assert a.temperature.log_alpha.item() == pytest.approx(math.log(0.5))
    for k in range(3):
        batch = make_batch(seed=10 + k)
        metrics = a.update(batch)                     # both draw ξ', ξ from their
        expected = reference_update(b, batch)         # generators, in one state
        for name, value in expected.items():
            assert math.isclose(metrics[name].item(), value, rel_tol=1e-10, abs_tol=1e-12), name
        ga, gb = groups(a), groups(b)
        for name in ga:
            assert max_diff(ga[name], gb[name]) < 1e-12, (k, name)
    assert set(metrics) >= {"critic_loss", "actor_loss", "alpha_loss", "alpha", "entropy",
                            "q1", "q2", "saturated"}
    assert all(isinstance(v, torch.Tensor) and v.shape == () and not v.requires_grad
               for v in metrics.values())


def test_each_step_moves_only_its_own_parameters_in_order():
    agent, batch = double_agent(), make_batch()
    snaps = [("start", groups(agent))]
    for name in ("critic_opt", "actor_opt", "alpha_opt"):
        getattr(agent, name).register_step_post_hook(
            lambda opt, args, kwargs, name=name: snaps.append((name, groups(agent))))
    agent.update(batch)
    snaps.append(("end", groups(agent)))
    assert [s for s, _ in snaps] == ["start", "critic_opt", "actor_opt", "alpha_opt", "end"]
    owners = ["phi", "theta", "log_alpha", "phi_targ"]
    for i, owner in enumerate(owners):
        before, after = snaps[i][1], snaps[i + 1][1]
        for g in owners:
            changed = max_diff(after[g], before[g]) > 0
            assert changed == (g == owner), (snaps[i + 1][0], g)


def test_policy_step_leaves_no_gradient_in_the_critics():
    agent, batch = double_agent(), make_batch()
    ref = copy.deepcopy(agent)
    agent.update(batch)
    with torch.no_grad():
        next_action, next_log_prob = ref.actor(batch.next_obs, ref.noise(batch.next_obs))
        y = soft_q_target(batch.reward, batch.terminated, *ref.critic_targ(batch.next_obs, next_action),
                          next_log_prob, ref.config.gamma, ref.temperature.alpha)
    phi = list(ref.critic.parameters())
    grads = torch.autograd.grad(critic_loss(*ref.critic(batch.obs, batch.action), y), phi)
    for p, g in zip(agent.critic.parameters(), grads):
        assert torch.allclose(p.grad, g, rtol=0, atol=1e-13)
    assert all(p.grad is None for p in agent.critic_targ.parameters())


def test_polyak_uses_the_updated_critics():
    agent, batch = double_agent(), make_batch()
    before = groups(agent)
    agent.update(batch)
    after, rho = groups(agent), agent.config.rho
    post = [rho * t + (1 - rho) * p for t, p in zip(before["phi_targ"], after["phi"])]
    pre = [rho * t + (1 - rho) * p for t, p in zip(before["phi_targ"], before["phi"])]
    assert max_diff(after["phi_targ"], post) < 1e-13
    assert max_diff(post, pre) > 1e-7


def test_policy_step_uses_the_updated_critics():
    """The actor's gradient comes from the critics after the critic step, not before."""
    agent, batch = double_agent(), make_batch()
    late, early = copy.deepcopy(agent), copy.deepcopy(agent)
    agent.update(batch)
    for twin, critic_first in ((late, True), (early, False)):
        with torch.no_grad():
            next_action, next_log_prob = twin.actor(batch.next_obs,
                                                    twin.noise(batch.next_obs))
            y = soft_q_target(batch.reward, batch.terminated,
                              *twin.critic_targ(batch.next_obs, next_action), next_log_prob,
                              twin.config.gamma, twin.temperature.alpha)
        new_action, log_prob = twin.actor(batch.obs, twin.noise(batch.obs))
        critic = copy.deepcopy(twin.critic)
        if critic_first:
            twin.critic_opt.zero_grad()
            critic_loss(*twin.critic(batch.obs, batch.action), y).backward()
            twin.critic_opt.step()
            critic = twin.critic
        loss = actor_loss(torch.min(*critic(batch.obs, new_action)), log_prob, twin.temperature.alpha)
        theta = list(twin.actor.parameters())
        for p, g in zip(theta, torch.autograd.grad(loss, theta)):
            p.grad = g
        twin.actor_opt.step()
    assert max_diff(groups(agent)["theta"], groups(late)["theta"]) < 1e-12
    assert max_diff(groups(agent)["theta"], groups(early)["theta"]) > 1e-9


@pytest.mark.parametrize("offset, sign", [(+4.0, +1), (-4.0, -1)])
def test_temperature_moves_toward_the_target_entropy(offset, sign):
    agent, batch = double_agent(), make_batch()
    probe = copy.deepcopy(agent)
    with torch.no_grad():
        probe.noise(batch.next_obs)                   # update's first draw, ξ'
        entropy = -probe.actor(batch.obs, probe.noise(batch.obs))[1].mean().item()
    agent.target_entropy = entropy + offset
    start = agent.temperature.log_alpha.item()
    metrics = agent.update(batch)
    assert math.isclose(metrics["entropy"].item(), entropy, rel_tol=1e-9)
    step = agent.temperature.log_alpha.item() - start
    assert math.isclose(step, sign * agent.config.alpha_lr, rel_tol=1e-4)


def test_fixed_temperature_never_moves():
    agent = double_agent(config=SACConfig(hidden_sizes=(16, 16), autotune=False, init_alpha=0.2))
    assert agent.alpha_opt is None
    alpha = agent.temperature.alpha.item()
    assert math.isclose(alpha, 0.2, rel_tol=1e-6)
    for k in range(3):
        metrics = agent.update(make_batch(seed=k))
    assert agent.temperature.alpha.item() == alpha == metrics["alpha"].item()


def test_update_has_no_value_reads():
    """No .item()/float()/bool() host syncs in the per-update code path of SAC.update."""
    source = inspect.getsource(SAC.update)
    for pattern in (r"\.item\(", r"(?<![.\w])float\(", r"(?<![.\w])bool\(", r"\.tolist\(",
                    r"\.all\(", r"\.any\(", r"\.cpu\(", r"\.numpy\(", r"check_finite"):
        assert not re.search(pattern, source), pattern


# ---------------------------------------------------------------- save / load

def trained_agent(updates=4):
    agent = SAC(OBS_DIM, ACT_DIM, SMALL, seed=4)
    batch = make_batch(dtype=torch.float32)
    for _ in range(updates):
        agent.update(batch)
    return agent


def test_save_load_round_trip_is_exact(tmp_path):
    agent = trained_agent()
    path = agent.save(tmp_path)
    assert path == tmp_path / "checkpoint.pt"
    for where in (tmp_path, path):
        loaded, twin = SAC.load(where), copy.deepcopy(agent)
        assert loaded.config == agent.config
        obs = np.random.default_rng(0).normal(size=(50, OBS_DIM))
        assert np.array_equal(twin.act(obs, deterministic=True), loaded.act(obs, deterministic=True))
        assert np.array_equal(twin.act(obs), loaded.act(obs))     # the noise generator came back
    # optimiser states came back: one more update is identical in every parameter
    agent2, loaded2 = copy.deepcopy(agent), SAC.load(path)
    batch = make_batch(dtype=torch.float32, seed=3)
    for x in (agent2, loaded2):
        x.update(batch)
    for name, xs in groups(agent2).items():
        assert max_diff(xs, groups(loaded2)[name]) == 0, name


def test_load_state_dict_from_a_live_agent_shares_no_tensor():
    "torch's Optimizer.load_state_dict alone would alias Adam's moments."
    source = trained_agent()
    clone = SAC(OBS_DIM, ACT_DIM, source.config)
    clone.load_state_dict(source.state_dict())
    before = copy.deepcopy(clone.state_dict())
    source.update(make_batch(dtype=torch.float32, seed=4))
    after = clone.state_dict()
    for part in ("actor_opt", "critic_opt", "alpha_opt"):
        for i, st in before[part]["state"].items():
            for key, value in st.items():
                assert torch.equal(value, after[part]["state"][i][key])
    for part in ("actor", "critic", "critic_targ", "temperature"):
        for key, value in before[part].items():
            assert torch.equal(value, after[part][key])


def test_checkpoint_is_plain_data(tmp_path):
    path = trained_agent().save(tmp_path / "agent.pt")
    state = torch.load(path, weights_only=True)
    assert set(state["agent"]) >= {"actor", "critic", "critic_targ", "temperature",
                                   "actor_opt", "critic_opt", "alpha_opt", "config"}
    assert isinstance(state["agent"]["config"], dict)
    assert state["agent"]["actor_opt"]["state"]          # Adam moments are saved


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):                  # unpickling calls os.mkdir(marker)
        return (os.mkdir, (self.marker,))


def test_crafted_checkpoint_never_runs_code(tmp_path):
    evil = tmp_path / "evil.pt"
    marker = tmp_path / "code_ran"
    torch.save({"agent": _Payload(str(marker))}, evil)
    with pytest.raises(CheckpointError, match=r"would call \S*mkdir when unpickled"):
        SAC.load(evil)
    with pytest.raises(CheckpointError):
        load_checkpoint(evil)
    assert not marker.exists()
    torch.load(evil, weights_only=False)   # positive control: the payload is real
    assert marker.exists()


def test_missing_corrupt_and_foreign_checkpoints_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        SAC.load(tmp_path)
    good = trained_agent().save(tmp_path)
    (tmp_path / "half.pt").write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a complete PyTorch file"):
        SAC.load(tmp_path / "half.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a complete PyTorch file"):
        SAC.load(tmp_path / "text.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a sac_lit checkpoint"):
        SAC.load(tmp_path / "other.pt")


def test_a_crash_while_saving_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    agent = trained_agent()
    path = agent.save(tmp_path)
    old = path.read_bytes()
    real_save = torch.save

    def crash(obj, f):
        real_save({"partial": torch.zeros(10)}, f)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    agent.update(make_batch(dtype=torch.float32))
    with pytest.raises(OSError):
        agent.save(tmp_path)
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == old and sorted(os.listdir(tmp_path)) == ["checkpoint.pt"]
    SAC.load(tmp_path)


def test_save_atomic_replaces_in_one_step(tmp_path):
    target = tmp_path / "x.pt"
    save_atomic({"agent": 1}, target)
    save_atomic({"agent": 2}, target)
    assert torch.load(target, weights_only=True) == {"agent": 2}
    assert os.listdir(tmp_path) == ["x.pt"]
