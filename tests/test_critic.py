"""Unit tests for sac_lit.critic: Q-networks, twin critics, target copies, Polyak update, loss."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sac_lit.critic import QNetwork, TwinQ, critic_loss, make_target, polyak_update
from sac_lit.targets import soft_q_target


def _set_tiny_weights(q: QNetwork) -> None:
    "Hand-chosen weights for QNetwork(1, 1, (2,)): h = relu(W1 [s, a] + b1), Q = W2 h + b2."
    lin1, lin2 = q.net[0], q.net[2]
    with torch.no_grad():
        lin1.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
        lin1.bias.copy_(torch.tensor([0.0, 0.5]))
        lin2.weight.copy_(torch.tensor([[2.0, 3.0]]))
        lin2.bias.copy_(torch.tensor([-1.0]))


def _linear(weight, bias) -> nn.Linear:
    "An nn.Linear(len(weight[0]) -> len(weight)) holding the given values."
    weight = torch.tensor(weight)
    lin = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        lin.weight.copy_(weight)
        lin.bias.copy_(torch.tensor(bias))
    return lin


# ---------------------------------------------------------------- QNetwork

def test_qnetwork_hand_computed_values():
    q = QNetwork(1, 1, hidden_sizes=(2,))
    _set_tiny_weights(q)
    obs = torch.tensor([[1.0], [-1.0], [0.0]])
    act = torch.tensor([[2.0], [-1.0], [0.5]])
    # (1, 2): h = relu([1, -1.5]) = [1, 0] -> 2 - 1 = 1
    # (-1, -1): h = relu([-1, 1.5]) = [0, 1.5] -> 4.5 - 1 = 3.5
    # (0, 0.5): h = relu([0, 0]) = [0, 0] -> -1
    assert torch.allclose(q(obs, act), torch.tensor([1.0, 3.5, -1.0]))


def test_qnetwork_architecture_and_shapes():
    q = QNetwork(3, 2, hidden_sizes=(16, 8, 4))
    linears = [m for m in q.net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 16), (16, 8), (8, 4), (4, 1)]
    assert sum(isinstance(m, nn.ReLU) for m in q.net) == 3
    for B in (1, 5):
        out = q(torch.randn(B, 3), torch.randn(B, 2))
        assert out.shape == (B,) and out.dtype == torch.float32


def test_batch_of_one_keeps_its_batch_dimension():
    # `.squeeze()` instead of `.squeeze(-1)` would return shape [] here
    q = QNetwork(2, 1, hidden_sizes=(4,))
    assert q(torch.randn(1, 2), torch.randn(1, 1)).shape == (1,)
    q1, q2 = TwinQ(2, 1, hidden_sizes=(4,))(torch.randn(1, 2), torch.randn(1, 1))
    assert q1.shape == (1,) and q2.shape == (1,)


def test_qnetwork_default_hidden_sizes_and_linear_case():
    q = QNetwork(4, 1)
    assert [m.out_features for m in q.net if isinstance(m, nn.Linear)] == [256, 256, 1]
    lin = QNetwork(2, 1, hidden_sizes=())            # no hidden layer: affine in [s, a]
    with torch.no_grad():
        lin.net[0].weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
        lin.net[0].bias.fill_(0.25)
    out = lin(torch.tensor([[1.0, 2.0]]), torch.tensor([[4.0]]))
    assert torch.allclose(out, torch.tensor([1 - 4 + 2 + 0.25]))


def test_qnetwork_float64():
    q = QNetwork(2, 1, hidden_sizes=(4,)).double()
    out = q(torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 1, dtype=torch.float64))
    assert out.dtype == torch.float64


@pytest.mark.parametrize("args", [(0, 1), (1, 0), (-2, 1), (2, 1, (0,)), (2, 1, (8, -1))])
def test_qnetwork_rejects_bad_sizes(args):
    with pytest.raises(ValueError):
        QNetwork(*args)


@pytest.mark.parametrize("args", [(2.0, 1), (2, 1, (4.5,)), (True, 1)])
def test_qnetwork_rejects_non_integer_sizes(args):
    with pytest.raises(TypeError):
        QNetwork(*args)


@pytest.mark.parametrize("obs, act", [
    (torch.randn(3, 2), torch.randn(4, 1)),         # batch sizes differ
    (torch.randn(3, 3), torch.randn(3, 1)),         # wrong obs dim
    (torch.randn(3, 2), torch.randn(3)),            # unbatched action
])
def test_qnetwork_and_twin_fail_on_bad_shapes(obs, act):
    # no checks in forward (it runs every update): torch itself refuses these
    with pytest.raises(RuntimeError):
        QNetwork(2, 1, hidden_sizes=(4,))(obs, act)
    with pytest.raises(RuntimeError):
        TwinQ(2, 1, hidden_sizes=(4,))(obs, act)


# ---------------------------------------------------------------- TwinQ

def test_twin_returns_both_critics_in_one_call():
    torch.manual_seed(0)
    twin = TwinQ(3, 2, hidden_sizes=(8, 8))
    obs, act = torch.randn(6, 3), torch.randn(6, 2)
    out = twin(obs, act)
    assert isinstance(out, tuple) and len(out) == 2
    q1, q2 = out
    assert q1.shape == (6,) and q2.shape == (6,)
    assert torch.equal(q1, twin.q1(obs, act)) and torch.equal(q2, twin.q2(obs, act))


def test_twin_hand_computed_values():
    twin = TwinQ(1, 1, hidden_sizes=(2,))
    _set_tiny_weights(twin.q1)
    _set_tiny_weights(twin.q2)
    with torch.no_grad():
        twin.q2.net[2].bias.fill_(1.0)               # critic 2 = critic 1 + 2
    q1, q2 = twin(torch.tensor([[1.0]]), torch.tensor([[2.0]]))
    assert q1.item() == pytest.approx(1.0) and q2.item() == pytest.approx(3.0)


def test_twin_critics_are_independent():
    torch.manual_seed(1)
    twin = TwinQ(2, 1, hidden_sizes=(16,))
    p1, p2 = list(twin.q1.parameters()), list(twin.q2.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(p1, p2))       # different initial weights
    assert not {id(p) for p in p1} & {id(p) for p in p2}             # no shared parameters
    assert len(list(twin.parameters())) == len(p1) + len(p2)
    obs, act = torch.randn(5, 2), torch.randn(5, 1)
    q1, _ = twin(obs, act)
    q1.sum().backward()                                              # only critic 1 gets gradient
    assert all(p.grad is not None for p in p1) and all(p.grad is None for p in p2)


def test_twin_parameter_count_matches_two_mlps():
    # 2 [(n_s + n_a) h1 + h1 + h1 h2 + h2 + h2 + 1] for two hidden layers
    obs_dim, act_dim, h1, h2 = 3, 2, 32, 16
    twin = TwinQ(obs_dim, act_dim, hidden_sizes=(h1, h2))
    n = sum(p.numel() for p in twin.parameters())
    assert n == 2 * ((obs_dim + act_dim) * h1 + h1 + h1 * h2 + h2 + h2 + 1)


def test_twin_is_reproducible_under_seed():
    torch.manual_seed(7)
    a = TwinQ(2, 2, hidden_sizes=(8,))
    torch.manual_seed(7)
    b = TwinQ(2, 2, hidden_sizes=(8,))
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


# ---------------------------------------------------------------- make_target

def test_make_target_is_an_equal_frozen_independent_copy():
    torch.manual_seed(2)
    twin = TwinQ(2, 1, hidden_sizes=(8,))
    obs, act = torch.randn(4, 2), torch.randn(4, 1)
    sum(twin(obs, act)).sum().backward()                 # the source has populated .grad
    targ = make_target(twin)
    assert type(targ) is TwinQ and targ is not twin
    pairs = list(zip(targ.parameters(), twin.parameters()))
    assert len(pairs) == len(list(twin.parameters()))
    for pt, p in pairs:
        assert torch.equal(pt, p)                                  # φ_targ = φ at the start
        assert pt.data_ptr() != p.data_ptr()                       # no shared storage
        assert not pt.requires_grad and p.requires_grad            # frozen copy, source untouched
        assert p.grad is not None
    # the copy is independent in both directions
    with torch.no_grad():
        next(twin.parameters()).add_(1.0)
    assert not torch.equal(next(targ.parameters()), next(twin.parameters()))
    source_before = next(twin.parameters()).clone()
    with torch.no_grad():
        next(targ.parameters()).add_(5.0)
    assert torch.equal(next(twin.parameters()), source_before)


def test_backward_through_both_networks_reaches_only_the_online_one():
    # a loss that (wrongly) uses the target's outputs with grad mode on: the frozen copy
    # must still receive no gradient, because its parameters do not require it
    torch.manual_seed(3)
    twin = TwinQ(2, 1, hidden_sizes=(8,))
    targ = make_target(twin)
    obs, act = torch.randn(4, 2), torch.randn(4, 1)
    (sum(twin(obs, act)).sum() + sum(targ(obs, act)).sum()).backward()
    assert all(p.grad is not None for p in twin.parameters())
    assert all(p.grad is None for p in targ.parameters())


# ---------------------------------------------------------------- polyak_update

def test_polyak_hand_computed():
    target = _linear([[1.0, 2.0]], [0.0])
    source = _linear([[3.0, -2.0]], [4.0])
    assert polyak_update(target, source, 0.75) is None
    # 0.75·1 + 0.25·3 = 1.5, 0.75·2 + 0.25·(−2) = 1.0, 0.25·4 = 1.0
    assert torch.allclose(target.weight, torch.tensor([[1.5, 1.0]]))
    assert torch.allclose(target.bias, torch.tensor([1.0]))
    assert torch.equal(source.weight, torch.tensor([[3.0, -2.0]]))   # source unchanged


def test_polyak_on_modules_exact_fraction_and_geometric_decay():
    torch.manual_seed(3)
    online = TwinQ(2, 1, hidden_sizes=(8,)).double()
    target = make_target(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    rho = 0.9
    before = [p.clone() for p in target.parameters()]
    polyak_update(target, online, rho)
    for p0, pt, p in zip(before, target.parameters(), online.parameters()):
        assert torch.allclose(pt - p0, (1 - rho) * (p - p0), atol=1e-14)
    gap = [pt - p for pt, p in zip(target.parameters(), online.parameters())]
    for _ in range(10):
        polyak_update(target, online, rho)
    for g, pt, p in zip(gap, target.parameters(), online.parameters()):
        assert torch.allclose(pt - p, rho**10 * g, atol=1e-13)


def test_polyak_default_rho_is_0_995():
    target, source = _linear([[0.0]], [0.0]), _linear([[1.0]], [2.0])
    polyak_update(target, source)
    assert target.weight.item() == pytest.approx(0.005)
    assert target.bias.item() == pytest.approx(0.010)


def test_polyak_extremes():
    target, source = _linear([[1.0, -1.0]], [0.0]), _linear([[5.0, 7.0]], [3.0])
    polyak_update(target, source, 1.0)
    assert torch.equal(target.weight, torch.tensor([[1.0, -1.0]]))
    polyak_update(target, source, 0)
    assert torch.equal(target.weight, torch.tensor([[5.0, 7.0]]))
    assert torch.equal(target.bias, torch.tensor([3.0]))


def test_polyak_builds_no_graph():
    # without torch.no_grad() the in-place update would be recorded by autograd: the frozen
    # target would get a grad_fn (and a growing chain of them) and require grad again
    online = TwinQ(2, 1, hidden_sizes=(8,))
    target = make_target(online)
    for _ in range(3):
        polyak_update(target, online, 0.5)
    for p in target.parameters():
        assert p.grad_fn is None and not p.requires_grad and p.is_leaf


def test_polyak_works_on_parameters_that_require_grad():
    a, b = nn.Linear(2, 1), nn.Linear(2, 1)
    expected = [0.5 * pa.detach() + 0.5 * pb.detach() for pa, pb in zip(a.parameters(), b.parameters())]
    polyak_update(a, b, 0.5)                              # in place on leaf params: no error
    assert all(torch.allclose(p, e) for p, e in zip(a.parameters(), expected))
    assert all(p.grad is None and p.grad_fn is None for p in a.parameters())


@pytest.mark.parametrize("rho", [-0.01, 1.01, float("nan"), float("inf"), -float("inf")])
def test_polyak_rejects_rho_outside_unit_interval(rho):
    target, source = _linear([[1.0]], [0.0]), _linear([[2.0]], [0.0])
    with pytest.raises(ValueError):
        polyak_update(target, source, rho)
    assert target.weight.item() == 1.0


@pytest.mark.parametrize("rho", ["0.5", None, True, [0.5], torch.tensor(0.5)])
def test_polyak_rejects_non_numbers(rho):
    # a tensor ρ is refused too: reading its value would force a host sync at every update
    target, source = _linear([[1.0]], [0.0]), _linear([[2.0]], [0.0])
    with pytest.raises(TypeError):
        polyak_update(target, source, rho)


def test_polyak_rejects_mismatched_networks():
    with pytest.raises(RuntimeError):
        polyak_update(TwinQ(2, 1, (8,)), TwinQ(2, 1, (4,)), 0.5)
    with pytest.raises(RuntimeError):
        polyak_update(nn.Linear(2, 1), nn.Linear(2, 1, bias=False), 0.5)


def test_polyak_reads_no_values():
    # on the meta device tensors have no values: a value read would raise
    target = make_target(TwinQ(2, 1, (8,)).to("meta"))
    polyak_update(target, TwinQ(2, 1, (8,)).to("meta"))


# ---------------------------------------------------------------- critic_loss

def test_critic_loss_hand_computed():
    q1, q2, y = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0])
    # mean((0, 1)²) + mean((−1, −1)²) = 0.5 + 1 = 1.5
    loss = critic_loss(q1, q2, y)
    assert loss.shape == () and loss.item() == pytest.approx(1.5)
    # K runs stacked [K, B]: one loss per run, over the last axis only
    runs = critic_loss(torch.stack([q1, y]), torch.stack([q2, y]), torch.stack([y, y]))
    assert runs.shape == (2,) and runs.tolist() == pytest.approx([1.5, 0.0])


def test_critic_loss_matches_torch_mse_and_weights_critics_equally():
    g = torch.Generator().manual_seed(5)
    q1, q2, y = (torch.randn(16, generator=g, dtype=torch.float64) for _ in range(3))
    expected = F.mse_loss(q1, y) + F.mse_loss(q2, y)
    assert torch.allclose(critic_loss(q1, q2, y), expected, atol=1e-14)
    assert torch.allclose(critic_loss(q2, q1, y), expected, atol=1e-14)


def test_critic_loss_gradient():
    q1 = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=torch.float64, requires_grad=True)
    q2 = torch.tensor([0.0, 3.0, 1.0, 0.5], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.5, 2.0, 0.0, 1.0], dtype=torch.float64)
    critic_loss(q1, q2, y).backward()
    assert torch.allclose(q1.grad, 2 * (q1.detach() - y) / 4)
    assert torch.allclose(q2.grad, 2 * (q2.detach() - y) / 4)


def test_critic_loss_keeps_dtype():
    assert critic_loss(torch.ones(3), torch.ones(3), torch.zeros(3)).dtype == torch.float32
    f64 = torch.ones(3).double()
    assert critic_loss(f64, f64, torch.zeros(3).double()).dtype == torch.float64


@pytest.mark.parametrize("shapes", [((4,), (4,), (4, 1)), ((4, 1), (4, 1), (4,)),
                                    ((4,), (3,), (4,)), ((4,), (4, 1), (4,))])
def test_critic_loss_refuses_to_broadcast(shapes):
    with pytest.raises(ValueError):
        critic_loss(*(torch.zeros(s) for s in shapes))


def test_critic_loss_refuses_target_with_gradient():
    y = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError):
        critic_loss(torch.zeros(3), torch.zeros(3), y)
    critic_loss(torch.zeros(3), torch.zeros(3), y.detach())     # detached is fine


def test_critic_loss_reads_no_values():
    meta = torch.zeros(8, device="meta")
    assert critic_loss(meta, meta, meta).shape == ()


# ---------------------------------------------------------------- the pieces together

def test_critic_update_no_gradient_through_target_and_loss_decreases():
    torch.manual_seed(4)
    B, obs_dim, act_dim = 32, 3, 2
    critic = TwinQ(obs_dim, act_dim, hidden_sizes=(32, 32))
    critic_targ = make_target(critic)
    obs, next_obs = torch.randn(B, obs_dim), torch.randn(B, obs_dim)
    act = torch.rand(B, act_dim) * 2 - 1
    reward, done = torch.randn(B), (torch.rand(B) < 0.2).float()
    next_act = torch.rand(B, act_dim) * 2 - 1
    next_log_prob = torch.full((B,), -math.log(4.0))              # uniform policy on [-1, 1]²
    y = soft_q_target(reward, done, *critic_targ(next_obs, next_act), next_log_prob, 0.99, 0.2)
    opt = torch.optim.Adam(critic.parameters(), lr=1e-2)
    first = None
    for _ in range(50):
        loss = critic_loss(*critic(obs, act), y)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert all(p.grad is None for p in critic_targ.parameters())
    assert critic_loss(*critic(obs, act), y).item() < 0.2 * first
    snapshot = [p.clone() for p in critic_targ.parameters()]
    polyak_update(critic_targ, critic, 0.995)
    for s, pt, p in zip(snapshot, critic_targ.parameters(), critic.parameters()):
        assert torch.allclose(pt, 0.995 * s + 0.005 * p.detach(), atol=1e-7)
