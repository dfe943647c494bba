"""Unit tests for sac_lit.gaussian (chapter 5): bound_log_std, GaussianHead, rsample."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sac_lit.gaussian import LOG_STD_MAX, LOG_STD_MIN, GaussianHead, bound_log_std, rsample


def test_bounds_are_the_agreed_constants():
    assert (LOG_STD_MIN, LOG_STD_MAX) == (-20.0, 2.0)


def test_bound_log_std_is_identity_inside_and_constant_outside():
    raw = torch.tensor([-1e9, -20.5, -19.99, -3.0, 0.0, 1.5, 1.999, 2.01, 55.0],
                       dtype=torch.float64, requires_grad=True)
    out = bound_log_std(raw)
    expected = [max(-20.0, min(2.0, r)) for r in raw.tolist()]
    assert out.tolist() == expected
    out.sum().backward()
    # derivative: 1 strictly inside, 0 outside (the clamp's dead zone)
    assert raw.grad.tolist() == [1.0 if -20 < r < 2 else 0.0 for r in raw.tolist()]


def test_bound_log_std_custom_bounds_and_shape():
    raw = torch.linspace(-10, 10, 21).reshape(3, 7)
    out = bound_log_std(raw, low=-5.0, high=1.0)
    assert out.shape == raw.shape
    assert out.min().item() == -5.0 and out.max().item() == 1.0
    mask = (raw > -5) & (raw < 1)
    assert torch.equal(out[mask], raw[mask])


def _reference_head(head: GaussianHead, obs: torch.Tensor):
    "The head's computation re-done from its weights: ReLU layers, then two affine maps."
    linears = [m for m in head.trunk if isinstance(m, nn.Linear)]
    h = obs
    for lin in linears:
        h = torch.relu(h @ lin.weight.T + lin.bias)
    mean = h @ head.mean.weight.T + head.mean.bias
    raw = h @ head.log_std.weight.T + head.log_std.bias
    return mean, torch.clamp(raw, -20.0, 2.0)


@pytest.mark.parametrize("hidden", [(256, 256), (16,), ()])
def test_head_shapes_and_values(hidden):
    torch.manual_seed(0)
    head = GaussianHead(obs_dim=5, act_dim=3, hidden_sizes=hidden)
    obs = torch.randn(11, 5)
    mean, log_std = head(obs)
    assert mean.shape == log_std.shape == (11, 3)
    ref_mean, ref_log_std = _reference_head(head, obs)
    assert torch.allclose(mean, ref_mean, atol=1e-5)
    assert torch.allclose(log_std, ref_log_std, atol=1e-5)


def test_head_default_sizes_parameter_count():
    head = GaussianHead(obs_dim=3, act_dim=1)
    n = sum(p.numel() for p in head.parameters())
    assert n == (3 * 256 + 256) + (256 * 256 + 256) + 2 * (256 * 1 + 1)


def test_head_small_sizes_parameter_count():
    head = GaussianHead(obs_dim=3, act_dim=2, hidden_sizes=(32, 32))
    n = sum(p.numel() for p in head.parameters())
    assert n == (3 * 32 + 32) + (32 * 32 + 32) + 2 * (32 * 2 + 2)


def test_head_log_std_bounded_for_extreme_inputs():
    torch.manual_seed(1)
    head = GaussianHead(4, 2, (8, 8))
    for scale in (1e4, -1e4, 1e8):
        _, log_std = head(scale * torch.randn(64, 4))
        assert log_std.min().item() >= LOG_STD_MIN and log_std.max().item() <= LOG_STD_MAX


def test_head_rejects_bad_sizes():
    with pytest.raises(ValueError):
        GaussianHead(0, 2)
    with pytest.raises(ValueError):
        GaussianHead(3, 2, (64, 0))
    with pytest.raises(TypeError):
        GaussianHead(3, 2.0)


def test_rsample_matches_torch_normal_rsample_samples_and_gradients():
    mean = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    log_std = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 4, dtype=torch.float64)
    torch.manual_seed(7)
    u, xi = rsample(mean, log_std)
    g_ours = torch.autograd.grad((w * u).sum(), (mean, log_std))
    torch.manual_seed(7)
    u_ref = torch.distributions.Normal(mean, log_std.exp()).rsample()
    g_ref = torch.autograd.grad((w * u_ref).sum(), (mean, log_std))
    assert torch.equal(u.detach(), u_ref.detach())
    for a, b in zip(g_ours, g_ref):
        assert torch.allclose(a, b, atol=1e-12)
    # and by hand: du/dmean = 1, du/dlog_std = std * xi
    assert torch.allclose(g_ours[0], w)
    assert torch.allclose(g_ours[1], w * log_std.detach().exp() * xi)


def test_rsample_returns_noise_without_gradient_and_keeps_dtype():
    mean = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    u, xi = rsample(mean, torch.zeros(3, 2, dtype=torch.float64))
    assert u.dtype == xi.dtype == torch.float64
    assert u.requires_grad and not xi.requires_grad
    assert torch.equal(u.detach(), xi)     # mean 0, std 1: u is the noise itself


def test_rsample_distribution_moments():
    torch.manual_seed(3)
    n = 400_000
    mean = torch.tensor([2.0, -1.0, 0.0], dtype=torch.float64).expand(n, 3)
    log_std = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64).expand(n, 3)
    u, xi = rsample(mean, log_std)
    std = log_std[0].exp()
    assert ((u.mean(0) - mean[0]).abs() < 4 * std / math.sqrt(n)).all()
    assert ((u.var(0) / std**2 - 1).abs() < 4 * math.sqrt(2 / n)).all()
    # the noise is standard normal and independent across dimensions
    corr = torch.corrcoef(xi.T)
    assert (corr - torch.eye(3, dtype=torch.float64)).abs().max() < 4 / math.sqrt(n)


def test_rsample_refuses_mismatched_shapes():
    with pytest.raises(ValueError):
        rsample(torch.zeros(4, 2), torch.zeros(4, 1))


def test_gradients_reach_every_head_parameter_through_a_sample():
    torch.manual_seed(0)
    head = GaussianHead(3, 2, (16, 16))
    u, _ = rsample(*head(torch.randn(32, 3)))
    (u**2).mean().backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
