"""Unit tests of sac_lit.temperature (chapter 7): actor_loss, temperature_loss, Temperature.

References are independent of the module: the formulas written out by hand, autograd on those
formulas, closed forms of the quadratic bandit, and a NumPy quadrature of the squashed Gaussian.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sac_lit.critic import TwinQ
from sac_lit.policy import SquashedGaussianActor
from sac_lit.temperature import Temperature, actor_loss, temperature_loss

F64 = dict(dtype=torch.float64)


# ---------------------------------------------------------------- actor_loss
def test_actor_loss_values_by_hand():
    log_prob = torch.tensor([-1.0, 0.2, 0.6], **F64)
    min_q = torch.tensor([1.5, 0.0, -2.0], **F64)
    # α log π − min Q = (-0.5 - 1.5, 0.1 - 0, 0.3 + 2) = (-2, 0.1, 2.3)
    for alpha in (0.5, torch.tensor(0.5, **F64), torch.tensor([0.5], **F64)):
        loss = actor_loss(min_q, log_prob, alpha)
        assert loss.shape == ()
        assert math.isclose(loss.item(), 0.4 / 3, rel_tol=1e-12)
    assert math.isclose(actor_loss(min_q, log_prob, 0.0).item(), -min_q.mean().item())


def test_actor_loss_gradients_match_the_formula():
    g = torch.Generator().manual_seed(0)
    B, alpha = 7, 0.3
    for shape in [(B,), (3, B)]:                     # one run, three runs
        log_prob = torch.randn(shape, generator=g, **F64).requires_grad_()
        min_q = torch.randn(shape, generator=g, **F64).requires_grad_()
        loss = actor_loss(min_q, log_prob, alpha)
        assert loss.shape == shape[:-1]                # one loss per run
        loss.sum().backward()
        assert torch.allclose(log_prob.grad, torch.full(shape, alpha / B, **F64))
        assert torch.allclose(min_q.grad, torch.full(shape, -1.0 / B, **F64))


def test_actor_loss_refuses_broadcasting_and_alpha_with_gradient():
    x = torch.zeros(4)
    with pytest.raises(ValueError):
        actor_loss(x[:, None], x, 0.2)
    with pytest.raises(ValueError):
        actor_loss(x, x, torch.tensor(0.2, requires_grad=True))


def test_actor_loss_with_temperature_alpha_leaves_log_alpha_alone():
    temperature = Temperature(0.3)
    log_prob = torch.randn(5, requires_grad=True)
    actor_loss(torch.randn(5), log_prob, temperature.alpha).backward()
    assert temperature.log_alpha.grad is None
    assert torch.allclose(log_prob.grad, torch.full((5,), 0.3 / 5))


def _policy_step_setup(seed=0):
    torch.manual_seed(seed)
    actor = SquashedGaussianActor(3, 2, hidden_sizes=(16, 16)).double()
    critic = TwinQ(3, 2, hidden_sizes=(16, 16)).double()
    obs = torch.randn(32, 3, **F64)
    return actor, critic, obs


def test_actor_loss_gradient_reaches_only_theta_when_critics_are_frozen():
    actor, critic, obs = _policy_step_setup()
    critic_before = [p.detach().clone() for p in critic.parameters()]
    opt = torch.optim.Adam(actor.parameters(), lr=1e-2)
    critic.requires_grad_(False)
    action, log_prob = actor(obs)
    q1, q2 = critic(obs, action)
    loss = actor_loss(torch.minimum(q1, q2), log_prob, 0.2)
    opt.zero_grad()
    loss.backward()
    opt.step()
    critic.requires_grad_(True)
    assert all(p.grad is None for p in critic.parameters())
    assert all(torch.equal(p, p0) for p, p0 in zip(critic.parameters(), critic_before))
    grads = [p.grad for p in actor.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert torch.cat([g.flatten() for g in grads]).norm() > 1e-4


def test_freezing_the_critics_does_not_change_the_actor_gradient():
    actor, critic, obs = _policy_step_setup(1)
    grads = []
    for frozen in (False, True):
        actor.zero_grad(set_to_none=True)
        critic.zero_grad(set_to_none=True)
        critic.requires_grad_(not frozen)
        torch.manual_seed(5)                        # same ξ both times
        action, log_prob = actor(obs)
        q1, q2 = critic.q1(obs, action), critic.q2(obs, action)
        actor_loss(torch.minimum(q1, q2), log_prob, 0.2).backward()
        grads.append([p.grad.clone() for p in actor.parameters()])
        # unfrozen, the critics get a gradient (the one the policy step must not apply)
        assert all((p.grad is None) == frozen for p in critic.parameters())
    for g_free, g_frozen in zip(*grads):
        assert torch.allclose(g_free, g_frozen, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------- temperature_loss
def test_temperature_loss_value_by_hand():
    log_alpha = torch.tensor(math.log(0.5))
    log_prob = torch.tensor([-1.0, 0.5, 2.0])
    # mean(log π + H̄) = mean(-2, -0.5, 1) = -0.5  ->  loss = -log 0.5 · (-0.5)
    loss = temperature_loss(log_alpha, log_prob, -1.0)
    assert loss.shape == ()
    assert math.isclose(loss.item(), 0.5 * math.log(0.5), rel_tol=1e-6)


@pytest.mark.parametrize("shape", [(), (1,)])
def test_temperature_loss_gradient_is_entropy_excess(shape):
    g = torch.Generator().manual_seed(2)
    log_prob = torch.randn(64, generator=g, **F64) - 0.7
    target_entropy = -2.0
    log_alpha = torch.full(shape, -1.3, **F64, requires_grad=True)
    temperature_loss(log_alpha, log_prob, target_entropy).backward()
    expected = -(log_prob + target_entropy).mean()             # = Ĥ − H̄
    assert torch.allclose(log_alpha.grad, expected.expand(shape), rtol=1e-12)


def test_temperature_loss_sends_no_gradient_to_the_policy():
    actor, _, obs = _policy_step_setup(3)
    _, log_prob = actor(obs)
    log_alpha = torch.tensor(0.0, **F64, requires_grad=True)
    temperature_loss(log_alpha, log_prob, -2.0).backward()
    assert log_alpha.grad is not None
    assert all(p.grad is None for p in actor.parameters())
    leaf = torch.randn(8, requires_grad=True)
    temperature_loss(torch.tensor(0.1, requires_grad=True), leaf, -1.0).backward()
    assert leaf.grad is None


def test_temperature_loss_refuses_bad_arguments():
    with pytest.raises(ValueError):
        temperature_loss(torch.zeros(2, requires_grad=True), torch.zeros(4), -1.0)
    with pytest.raises(ValueError):
        temperature_loss(torch.zeros((), requires_grad=True), torch.zeros(4), math.nan)
    with pytest.raises(TypeError):
        temperature_loss(torch.zeros((), requires_grad=True), torch.zeros(4),
                         torch.tensor(-1.0))


@pytest.mark.parametrize("std, direction", [(0.02, +1), (0.5, -1)])
def test_a_descent_step_moves_alpha_toward_the_target(std, direction):
    # H̄ = -1 is the entropy of N(·, 0.089²): narrower -> α up, wider -> α down
    g = torch.Generator().manual_seed(4)
    u = std * torch.randn(4096, generator=g, **F64)
    log_prob = torch.distributions.Normal(0.0, std).log_prob(u)
    temperature = Temperature(0.2).double()
    opt = torch.optim.SGD(temperature.parameters(), lr=0.1)
    temperature_loss(temperature.log_alpha, log_prob, -1.0).backward()
    opt.step()
    assert (temperature.alpha.item() - 0.2) * direction > 0


# ---------------------------------------------------------------- Temperature
def test_temperature_module():
    t = Temperature()
    assert t.log_alpha.item() == 0.0 and t.alpha.item() == 1.0 and t.learnable
    t = Temperature(init_alpha=0.05)
    assert math.isclose(t.alpha.item(), 0.05, rel_tol=1e-6)
    assert torch.allclose(t.alpha, t.log_alpha.detach().exp())
    assert not t.alpha.requires_grad and t.log_alpha.requires_grad
    assert [name for name, _ in t.named_parameters()] == ["log_alpha"]
    with torch.no_grad():
        t.log_alpha.fill_(math.log(3.0))
    u = Temperature(init_alpha=1.0)
    u.load_state_dict(t.state_dict())
    assert math.isclose(u.alpha.item(), 3.0, rel_tol=1e-6)


def test_temperature_for_k_runs_has_one_alpha_each():
    t = Temperature(init_alpha=0.5, shape=(3, 1))
    assert t.alpha.shape == (3, 1) and torch.allclose(t.alpha, torch.full((3, 1), 0.5))
    log_prob = torch.tensor([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]])
    loss = temperature_loss(t.log_alpha, log_prob, -1.0)
    assert loss.shape == (3,)
    loss.sum().backward()                          # each run: its own Ĥ − H̄
    assert torch.allclose(t.log_alpha.grad[:, 0], torch.tensor([2.0, 1.0, 0.0]))
    assert "3 runs" in repr(t)


def test_fixed_temperature_has_nothing_to_train():
    t = Temperature(init_alpha=0.2, learnable=False)
    assert not t.learnable
    assert all(not p.requires_grad for p in t.parameters())
    assert math.isclose(t.alpha.item(), 0.2, rel_tol=1e-6)
    assert not temperature_loss(t.log_alpha, torch.randn(8), -1.0).requires_grad
    torch.optim.Adam(t.parameters(), lr=1.0).step()               # a no-op
    assert math.isclose(t.alpha.item(), 0.2, rel_tol=1e-6)


@pytest.mark.parametrize("bad", [0.0, -0.1, math.inf, math.nan])
def test_temperature_refuses_bad_init_alpha(bad):
    with pytest.raises(ValueError):
        Temperature(init_alpha=bad)


# -------------------------------------------------- the bandit, in small form
A0, C = 0.3, 0.2                         # r(ã) = -(ã - a0)² / (2c)


def _reward(action):
    return -(action.squeeze(-1) - A0) ** 2 / (2 * C)


def test_unsquashed_gaussian_learns_the_closed_form_optimum():
    # π* ∝ exp(r/α) = N(a0, αc); a Gaussian policy trained with actor_loss must find it
    torch.manual_seed(0)
    alpha = 0.2
    mean = torch.zeros(1, requires_grad=True)
    log_std = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([mean, log_std], lr=0.05)
    steps = 400
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 - t / steps)
    for _ in range(steps):
        action = mean + log_std.exp() * torch.randn(512, 1)
        log_prob = torch.distributions.Normal(mean, log_std.exp()).log_prob(action).sum(-1)
        loss = actor_loss(_reward(action), log_prob, alpha)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    assert abs(mean.item() - A0) < 0.01
    assert abs(log_std.exp().item() / math.sqrt(alpha * C) - 1) < 0.03


_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(80)


def _expect(f, m, s):
    u = np.asarray(m)[..., None] + math.sqrt(2) * np.asarray(s)[..., None] * _NODES
    return (f(u) * _WEIGHTS).sum(-1) / math.sqrt(math.pi)


def _squashed_entropy(m, s):
    log_det = lambda u: 2 * (math.log(2) - u - np.logaddexp(0, -2 * u))  # noqa: E731
    return 0.5 * np.log(2 * math.pi * math.e * np.asarray(s) ** 2) + _expect(log_det, m, s)


def _best_squashed(alpha):
    "argmin over (m, s) of E[α log π(tanh u) − r(tanh u)], u ~ N(m, s²), by refined grids."
    m0, l0, w = 0.0, math.log(0.3), 3.0
    for _ in range(8):
        M, L = np.meshgrid(np.linspace(m0 - w, m0 + w, 61), np.linspace(l0 - w, l0 + w, 61),
                           indexing="ij")
        S = np.exp(L)
        f = -alpha * _squashed_entropy(M, S) - _expect(
            lambda u: -(np.tanh(u) - A0) ** 2 / (2 * C), M, S)
        i = np.unravel_index(np.argmin(f), f.shape)
        m0, l0, w = M[i], L[i], w / 5
    return m0, math.exp(l0)


def _train_bandit(init_alpha, steps, target_entropy=None, seed=0):
    torch.manual_seed(seed)
    actor = SquashedGaussianActor(1, 1, hidden_sizes=(32,))
    temperature = Temperature(init_alpha, learnable=target_entropy is not None)
    obs = torch.ones(256, 1)
    opts = [torch.optim.Adam(actor.parameters(), lr=1e-2)]
    if temperature.learnable:
        opts.append(torch.optim.Adam(temperature.parameters(), lr=3e-2))
    scheds = [torch.optim.lr_scheduler.LambdaLR(o, lambda t: 1 - t / steps) for o in opts]
    for _ in range(steps):
        action, log_prob = actor(obs)
        loss = actor_loss(_reward(action), log_prob, temperature.alpha)
        opts[0].zero_grad()
        loss.backward()
        opts[0].step()
        if temperature.learnable:
            opts[1].zero_grad()
            temperature_loss(temperature.log_alpha, log_prob, target_entropy).backward()
            opts[1].step()
        for s in scheds:
            s.step()
    return actor, temperature


def test_squashed_actor_learns_the_quadrature_optimum_with_fixed_alpha():
    alpha = 0.2
    m_star, s_star = _best_squashed(alpha)
    actor, _ = _train_bandit(alpha, 500)
    with torch.no_grad():
        mean, log_std = actor.head(torch.ones(1, 1))
    assert abs(mean.item() - m_star) < 0.02
    assert abs(log_std.exp().item() / s_star - 1) < 0.05


def test_temperature_tuning_drives_entropy_to_its_target():
    target = -1.0
    actor, temperature = _train_bandit(1.0, 1000, target_entropy=target)
    with torch.no_grad():
        _, log_prob = actor(torch.ones(50_000, 1))
        mean, log_std = actor.head(torch.ones(1, 1))
    assert abs(-log_prob.mean().item() - target) < 0.05
    assert abs(_squashed_entropy(mean.item(), log_std.exp().item()) - target) < 0.05
    # the α whose best squashed Gaussian has entropy -1 is about 0.040 (chapter 7)
    lo, hi = math.log(0.02), math.log(0.08)
    for _ in range(8):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _squashed_entropy(*_best_squashed(math.exp(mid))) < target \
            else (lo, mid)
    assert abs(math.log(temperature.alpha.item()) - 0.5 * (lo + hi)) < math.log(1.15)


def test_sampled_gradient_is_the_slope_of_the_dual():
    "At π*_α = N(a0, αc) of the quadratic reward, E[∂J/∂log α] = H(π*_α) − H̄ = g'(α) (chapter 7)."
    gen = torch.Generator().manual_seed(3)
    n, target = 100_000, -1.0
    alpha_star = math.exp(2 * target) / (2 * math.pi * math.e * C)
    for alpha in (0.01, alpha_star, 0.2):
        std = math.sqrt(alpha * C)
        action = A0 + std * torch.randn(n, generator=gen, **F64)
        log_prob = torch.distributions.Normal(A0, std).log_prob(action)
        log_alpha = torch.tensor(math.log(alpha), **F64, requires_grad=True)
        temperature_loss(log_alpha, log_prob, target).backward()
        slope = 0.5 * math.log(2 * math.pi * math.e * alpha * C) - target
        se = log_prob.std().item() / math.sqrt(n)
        assert abs(log_alpha.grad.item() - slope) < 4 * se
        assert (slope > 0) == (alpha > alpha_star * 1.0001) or abs(slope) < 1e-9
