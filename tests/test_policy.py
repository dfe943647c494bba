"""Unit tests for sac_lit.policy (chapter 6): squashed_gaussian_log_prob, SquashedGaussianActor,
ActionMap. References: 50-digit arithmetic (mpmath), torch.distributions, autograd, quadrature."""
from __future__ import annotations

import math

import gymnasium as gym
import mpmath
import numpy as np
import pytest
import torch
from torch.distributions import AffineTransform, Normal, TanhTransform, TransformedDistribution

from sac_lit.gaussian import GaussianHead
from sac_lit.policy import ActionMap, SquashedGaussianActor, squashed_gaussian_log_prob

mpmath.mp.dps = 50


def _mp_log_prob(u, mean, log_std) -> float:
    "log N(u; mean, exp(log_std)^2) - log(1 - tanh(u)^2), summed, with 50 significant digits."
    total = mpmath.mpf(0)
    for ui, mi, li in zip(u, mean, log_std):
        ui, mi, li = mpmath.mpf(ui), mpmath.mpf(mi), mpmath.mpf(li)
        z = (ui - mi) / mpmath.exp(li)
        total += -z**2 / 2 - li - mpmath.log(2 * mpmath.pi) / 2
        total -= mpmath.log(1 - mpmath.tanh(ui) ** 2)
    return float(total)


# ---------------------------------------------------------------- squashed_gaussian_log_prob

@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-8), (torch.float32, 2e-6)])
def test_log_prob_against_high_precision_reference(dtype, tol):
    g = torch.Generator().manual_seed(0)
    u = torch.cat([torch.linspace(-20, 20, 41), 4 * torch.randn(59, generator=g)]).reshape(-1, 1)
    u = u.to(dtype).expand(-1, 2).clone()
    u[:, 1] = -0.5 * u[:, 0]
    mean = (torch.randn(100, 2, generator=g) * 2).to(dtype)
    log_std = (torch.rand(100, 2, generator=g) * 3 - 1).to(dtype)
    ours = squashed_gaussian_log_prob(u, mean, log_std)
    ref = [_mp_log_prob(*(t.double().tolist() for t in row)) for row in zip(u, mean, log_std)]
    ref = torch.tensor(ref, dtype=torch.float64)
    rel = (ours.double() - ref).abs() / ref.abs().clamp(min=1)
    assert rel.max().item() < tol


def test_log_prob_matches_torch_transformed_distribution_float64():
    g = torch.Generator().manual_seed(1)
    mean = torch.randn(2000, 4, generator=g, dtype=torch.float64)
    log_std = torch.rand(2000, 4, generator=g, dtype=torch.float64) * 2 - 1.5
    u = (mean + log_std.exp() * torch.randn(2000, 4, generator=g, dtype=torch.float64)).clamp(-8, 8)
    dist = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()])
    ref = dist.log_prob(torch.tanh(u)).sum(-1)
    assert torch.allclose(squashed_gaussian_log_prob(u, mean, log_std), ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize("shape", [(5,), (7, 3), (2, 4, 6)])
def test_log_prob_sums_over_the_last_dim_only(shape):
    g = torch.Generator().manual_seed(2)
    u, mean = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    log_std = 0.3 * torch.randn(shape, generator=g)
    out = squashed_gaussian_log_prob(u, mean, log_std)
    assert out.shape == shape[:-1]
    per_dim = torch.stack([squashed_gaussian_log_prob(u[..., i:i + 1], mean[..., i:i + 1],
                                                      log_std[..., i:i + 1])
                           for i in range(shape[-1])], -1)
    assert torch.allclose(out, per_dim.sum(-1), atol=1e-5)


def test_log_prob_refuses_broadcasting():
    with pytest.raises(ValueError):
        squashed_gaussian_log_prob(torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError):
        squashed_gaussian_log_prob(torch.zeros(4, 1), torch.zeros(4), torch.zeros(4))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_values_and_gradients_where_one_minus_tanh2_rounds_to_zero(dtype):
    "The docstring's promise: finite values and gradients where 1 − tanh²(u) is 0 in this dtype."
    u = torch.cat([torch.linspace(-20, 20, 1601), torch.tensor([-1e3, -50.0, 50.0, 1e3])])
    u = u.to(dtype).reshape(-1, 1).requires_grad_(True)
    assert (1 - torch.tanh(u.detach()) ** 2 == 0).any()      # the naive form would be -inf here
    mean = torch.full_like(u, 0.3).requires_grad_(True)
    log_std = torch.full_like(u, 1.0).requires_grad_(True)
    out = squashed_gaussian_log_prob(u, mean, log_std)
    out.sum().backward()
    assert torch.isfinite(out).all()
    for t in (u, mean, log_std):
        assert torch.isfinite(t.grad).all()
    # d/du = -(u - mean)/std^2 + 2 tanh(u); d/dmean = (u - mean)/std^2; d/dlog_std = z^2 - 1
    std2 = math.exp(2.0)
    x, m = u.detach().double(), 0.3
    assert torch.allclose(u.grad.double(), -(x - m) / std2 + 2 * torch.tanh(x), atol=1e-5)
    assert torch.allclose(mean.grad.double(), (x - m) / std2, atol=1e-5)
    assert torch.allclose(log_std.grad.double(), (x - m) ** 2 / std2 - 1, atol=1e-4)


def test_log_det_against_autograd_jacobian():
    g = torch.Generator().manual_seed(3)
    for _ in range(10):
        u = 4 * torch.randn(5, generator=g, dtype=torch.float64)
        mean, log_std = torch.randn(5, generator=g, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
        jac = torch.autograd.functional.jacobian(torch.tanh, u)
        log_abs_det = torch.linalg.slogdet(jac)[1]
        gauss = Normal(mean, 1.0).log_prob(u).sum()
        assert torch.allclose(gauss - squashed_gaussian_log_prob(u, mean, log_std), log_abs_det,
                              atol=1e-10)


@pytest.mark.parametrize("mu, sigma", [(0.0, 0.3), (0.8, 1.5), (-3.0, 0.2), (0.0, 5.0), (9.0, 0.5)])
def test_density_integrates_to_one(mu, sigma):
    "∫ exp(log π(ã)) dã = 1, integrated in t = atanh(ã): dã = dt / cosh²(t)."
    t = torch.linspace(mu - 12 * sigma, mu + 12 * sigma, 200_001, dtype=torch.float64).reshape(-1, 1)
    log_p = squashed_gaussian_log_prob(t, torch.full_like(t, mu), torch.full_like(t, math.log(sigma)))
    total = torch.trapezoid(log_p.exp() / torch.cosh(t[:, 0]) ** 2, t[:, 0])
    assert abs(total.item() - 1) < 1e-8


# ---------------------------------------------------------------- SquashedGaussianActor

def _actor(obs_dim=4, act_dim=3, hidden=(32, 32), seed=0):
    torch.manual_seed(seed)
    return SquashedGaussianActor(obs_dim, act_dim, hidden)


def test_actor_shapes_range_and_head():
    actor = _actor()
    assert isinstance(actor.head, GaussianHead)
    obs = torch.randn(9, 4)
    for det in (False, True):
        action, log_prob = actor(obs, deterministic=det)
        assert action.shape == (9, 3) and log_prob.shape == (9,)
        assert action.abs().max().item() <= 1


def test_actor_default_hidden_sizes():
    actor = SquashedGaussianActor(3, 2)
    widths = [m.out_features for m in actor.head.trunk if isinstance(m, torch.nn.Linear)]
    assert widths == [256, 256]


def test_actor_stochastic_output_is_tanh_of_rsample_with_its_log_prob():
    actor = _actor()
    obs = torch.randn(6, 4)
    torch.manual_seed(42)
    action, log_prob = actor(obs)
    mean, log_std = actor.head(obs)
    torch.manual_seed(42)
    xi = torch.randn_like(mean)
    u = mean + log_std.exp() * xi
    assert torch.allclose(action, torch.tanh(u), atol=1e-6)
    ref = [_mp_log_prob(*(t.tolist() for t in row)) for row in zip(u.double(), mean.double(),
                                                                   log_std.double())]
    assert torch.allclose(log_prob.double(), torch.tensor(ref, dtype=torch.float64), atol=2e-5)


def test_actor_given_xi_returns_that_sample():
    actor = _actor()
    obs, xi = torch.randn(6, 4), torch.randn(6, 3)
    a1, lp1 = actor(obs, xi)
    a2, lp2 = actor(obs, xi)
    assert torch.equal(a1, a2) and torch.equal(lp1, lp2)
    mean, log_std = actor.head(obs)
    assert torch.allclose(a1, torch.tanh(mean + log_std.exp() * xi))


def test_actor_deterministic_mode():
    actor = _actor()
    obs = torch.randn(5, 4)
    a1, lp1 = actor(obs, deterministic=True)
    a2, lp2 = actor(obs, deterministic=True)
    assert torch.equal(a1, a2) and torch.equal(lp1, lp2)
    mean, log_std = actor.head(obs)
    assert torch.equal(a1, torch.tanh(mean))
    # density at u = mean: Gaussian at its centre plus the tanh correction 2 log cosh(mean)
    by_hand = (-log_std.double() - 0.5 * math.log(2 * math.pi)
               + 2 * torch.log(torch.cosh(mean.double()))).sum(-1)
    assert torch.allclose(lp1.double(), by_hand, atol=1e-5)
    # stochastic calls differ from each other and from the deterministic action
    s1, s2 = actor(obs)[0], actor(obs)[0]
    assert not torch.equal(s1, s2) and not torch.equal(s1, a1)


def test_actor_gradients_reach_only_its_parameters():
    actor = _actor()
    other = torch.nn.Linear(4, 4)          # a module that merely produced the observations
    obs = other(torch.randn(8, 4)).detach()
    action, log_prob = actor(obs)
    (action.pow(2).sum() + log_prob.sum()).backward()
    for name, p in actor.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in other.parameters())


def _pinned_actor(mu: float, sigma: float) -> SquashedGaussianActor:
    "An actor whose head outputs mean mu and std sigma in every state (zero weights)."
    actor = SquashedGaussianActor(1, 1, (4,))
    with torch.no_grad():
        for layer, v in ((actor.head.mean, mu), (actor.head.log_std, math.log(sigma))):
            layer.weight.zero_()
            layer.bias.fill_(v)
    return actor


def _sampled_grads(actor, seed: int, objective, param) -> torch.Tensor:
    "100 pathwise gradient estimates of objective(action, log_prob) wrt param, 2000 states each."
    torch.manual_seed(seed)
    grads = []
    for _ in range(100):
        action, log_prob = actor(torch.zeros(2000, 1))
        (g,) = torch.autograd.grad(objective(action, log_prob), param)
        grads.append(g.item())
    return torch.tensor(grads, dtype=torch.float64)


def test_actor_pathwise_gradient_of_mean_action_matches_quadrature():
    "Pinned actor: u ~ N(mu, sigma^2) in every state; d E[tanh u]/d mu = E[1 - tanh(u)^2]."
    mu, sigma = 0.5, 0.7
    actor = _pinned_actor(mu, sigma)
    grads = _sampled_grads(actor, 5, lambda a, lp: a.mean(), actor.head.mean.bias)
    x = torch.linspace(-10, 10, 20001, dtype=torch.float64)
    w = torch.exp(-x**2 / 2)
    truth = ((1 - torch.tanh(mu + sigma * x) ** 2) * w).sum() / w.sum()
    assert abs(grads.mean() - truth) < 4 * grads.std() / 10


def test_actor_pathwise_gradient_of_mean_log_prob_matches_quadrature():
    """Pinned actor: E[log π(ã)] = −H(ã) = −log σ − E[log(1 − tanh² u)] + const, so
    d E[log π]/d log σ = −1 + 2σ E[ξ tanh(μ + σξ)] (gradients through u and through log σ)."""
    mu, sigma = 0.6, 1.2
    actor = _pinned_actor(mu, sigma)
    grads = _sampled_grads(actor, 8, lambda a, lp: lp.mean(), actor.head.log_std.bias)
    x = torch.linspace(-10, 10, 20001, dtype=torch.float64)
    w = torch.exp(-x**2 / 2) / torch.exp(-x**2 / 2).sum()
    truth = -1 + 2 * sigma * (w * x * torch.tanh(mu + sigma * x)).sum()
    assert abs(grads.mean() - truth) < 4 * grads.std() / 10


def test_actor_samples_follow_the_density():
    "Mean and second moment of ã under a pinned actor against quadrature, within 4 s.e."
    mu, sigma = -0.4, 1.3
    actor = SquashedGaussianActor(1, 1, (4,))
    with torch.no_grad():
        for layer, v in ((actor.head.mean, mu), (actor.head.log_std, math.log(sigma))):
            layer.weight.zero_()
            layer.bias.fill_(v)
    torch.manual_seed(6)
    with torch.no_grad():
        a = actor(torch.zeros(200_000, 1))[0][:, 0].double()
    x = torch.linspace(-10, 10, 20001, dtype=torch.float64)
    w = torch.exp(-x**2 / 2) / torch.exp(-x**2 / 2).sum()
    for k in (1, 2):
        truth = (torch.tanh(mu + sigma * x) ** k * w).sum()
        est, se = (a**k).mean(), (a**k).std() / math.sqrt(a.numel())
        assert abs(est - truth) < 4 * se


# ---------------------------------------------------------------- ActionMap

LOW = np.array([-2.0, 0.0, -0.1], dtype=np.float32)
HIGH = np.array([2.0, 1.0, 5.0], dtype=np.float32)


def _map():
    return ActionMap.from_space(gym.spaces.Box(LOW, HIGH))


def test_action_map_endpoints_and_midpoint():
    m = _map()
    a = np.array([[-1, -1, -1], [0, 0, 0], [1, 1, 1]], dtype=np.float64)
    lo, hi = LOW.astype(np.float64), HIGH.astype(np.float64)
    np.testing.assert_allclose(m.to_env(a), np.stack([lo, (lo + hi) / 2, hi]), atol=1e-12)
    np.testing.assert_allclose(m.from_env(np.stack([lo, hi])), [[-1] * 3, [1] * 3], atol=1e-12)


def test_action_map_round_trips_numpy_and_torch():
    m = _map()
    rng = np.random.default_rng(0)
    a32 = rng.uniform(-1, 1, (500, 3)).astype(np.float32)
    out = m.from_env(m.to_env(a32))
    assert out.dtype == np.float32 and np.abs(out - a32).max() < 1e-6
    a64 = torch.tensor(rng.uniform(-1, 1, (500, 3)))
    out_t = m.from_env(m.to_env(a64))
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float64
    assert torch.allclose(out_t, a64, atol=1e-12)
    env = torch.tensor(rng.uniform(LOW, HIGH, (500, 3)), dtype=torch.float32)
    assert torch.allclose(m.to_env(m.from_env(env)), env, atol=1e-6)


def test_action_map_is_the_affine_formula_per_dimension():
    m = _map()
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, (50, 3))
    for i in range(3):
        expected = LOW[i] + (a[:, i] + 1) * (float(HIGH[i]) - float(LOW[i])) / 2
        np.testing.assert_allclose(m.to_env(a)[:, i], expected, atol=1e-6)


def test_action_map_clips_only_rounding_overshoot():
    m = _map()
    out = m.to_env(torch.tensor([1.0 + 1e-7, -1.0 - 1e-7, 0.0]))
    assert out[0].item() <= HIGH[0] and out[1].item() >= LOW[1]


def test_action_map_log_det_matches_jacobian_and_formula():
    m = _map()
    expected = float(np.log((HIGH.astype(np.float64) - LOW.astype(np.float64)) / 2).sum())
    assert isinstance(m.log_det, float) and m.log_det == pytest.approx(expected, abs=1e-12)
    jac = torch.autograd.functional.jacobian(m.to_env, torch.zeros(3, dtype=torch.float64))
    assert torch.linalg.slogdet(jac)[1].item() == pytest.approx(m.log_det, abs=1e-12)


def test_env_space_density_matches_torch_tanh_affine():
    m = _map()
    g = torch.Generator().manual_seed(4)
    mean = torch.randn(300, 3, generator=g, dtype=torch.float64)
    log_std = 0.4 * torch.randn(300, 3, generator=g, dtype=torch.float64)
    u = mean + log_std.exp() * torch.randn(300, 3, generator=g, dtype=torch.float64)
    lo, hi = torch.tensor(LOW, dtype=torch.float64), torch.tensor(HIGH, dtype=torch.float64)
    dist = TransformedDistribution(Normal(mean, log_std.exp()),
                                   [TanhTransform(), AffineTransform((lo + hi) / 2, (hi - lo) / 2)])
    a_env = m.to_env(torch.tanh(u))
    assert torch.allclose(squashed_gaussian_log_prob(u, mean, log_std) - m.log_det,
                          dist.log_prob(a_env).sum(-1), atol=1e-8)


def test_action_map_pendulum():
    env = gym.make("Pendulum-v1")
    m = ActionMap.from_space(env.action_space)
    env.close()
    assert m.log_det == pytest.approx(math.log(2), abs=1e-12)
    assert m.to_env(np.array([0.5], dtype=np.float32)).tolist() == [1.0]


def test_action_map_constructor_accepts_sequences():
    m = ActionMap(low=[0.0, -3.0], high=[1.0, 3.0])
    np.testing.assert_allclose(m.to_env(np.zeros(2)), [0.5, 0.0])
    assert m.log_det == pytest.approx(math.log(0.5) + math.log(3.0))


@pytest.mark.parametrize("space, words", [
    (gym.spaces.Discrete(4), "Box"),
    (gym.spaces.MultiDiscrete([2, 3]), "Box"),
    (gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32), "unbounded"),
    (gym.spaces.Box(np.array([0.0, -1.0], dtype=np.float32),
                    np.array([np.inf, 1.0], dtype=np.float32)), "unbounded"),
    (gym.spaces.Box(np.array([-np.inf], dtype=np.float32), np.array([0.0], dtype=np.float32)),
     "unbounded"),
    (gym.spaces.Box(0, 10, shape=(2,), dtype=np.int64), "floats"),
    (gym.spaces.Box(-1.0, 1.0, shape=(2, 2), dtype=np.float32), "vectors"),
])
def test_action_map_refuses_spaces_sac_cannot_serve(space, words):
    with pytest.raises(ValueError, match=words):
        ActionMap.from_space(space)


def test_action_map_refuses_empty_or_inverted_ranges_and_mismatched_lengths():
    with pytest.raises(ValueError):
        ActionMap(low=[0.0, 1.0], high=[1.0, 1.0])
    with pytest.raises(ValueError):
        ActionMap(low=[2.0], high=[1.0])
    with pytest.raises(ValueError):
        ActionMap(low=[0.0, 0.0], high=[1.0])
