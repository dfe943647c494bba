"""Unit tests for sac_lit.values (chapter 2: entropy-regularised value functions)."""
import math

import numpy as np
import pytest
import torch

from sac_lit.values import (
    soft_greedy_policy,
    soft_max_value,
    soft_policy_evaluation,
    soft_state_value,
    soft_value_discrete,
    soft_value_iteration,
)

LOG2 = math.log(2.0)


# ----------------------------------------------------------------------------- soft_state_value

def test_soft_state_value_hand_computed_mean_over_samples():
    # q - alpha*log_prob = [1 + 0.5, 2 + 1, 3 + 1.5] = [1.5, 3, 4.5]; mean 3.0
    assert soft_state_value([1.0, 2.0, 3.0], [-1.0, -2.0, -3.0], 0.5) == pytest.approx(3.0, abs=1e-15)
    assert isinstance(soft_state_value([1.0, 2.0], [0.0, 0.0], 0.1), float)


def test_soft_state_value_shapes():
    q = torch.randn(7, 4)
    lp = torch.randn(7, 4)
    assert soft_state_value(q, lp, 0.2).shape == (4,)                 # samples first: [K, B] -> [B]
    assert soft_state_value(q, lp, 0.2, dim=-1).shape == (7,)
    assert soft_state_value(q, lp, 0.2, dim=None).shape == (7, 4)
    col_q, col_lp = torch.randn(5, 1), torch.randn(5, 1)
    assert soft_state_value(col_q, col_lp, 0.2, dim=None).shape == (5, 1)
    assert soft_state_value(col_q, col_lp, 0.2, dim=-1).shape == (5,)
    per = soft_state_value(q[:, 0], lp[:, 0], 0.2, dim=None)          # [B] one-sample estimates
    assert torch.allclose(per, q[:, 0] - 0.2 * lp[:, 0])


def test_soft_state_value_rejects_broadcasting_and_mixed_kinds():
    with pytest.raises(ValueError, match="same shape"):
        soft_state_value(torch.zeros(5), torch.zeros(5, 1), 0.1, dim=None)
    with pytest.raises(ValueError, match="tensors"):
        soft_state_value(torch.zeros(3), np.zeros(3), 0.1)
    with pytest.raises(ValueError, match="0-d"):
        soft_state_value(torch.tensor(1.0), torch.tensor(0.0), 0.1)
    assert float(soft_state_value(torch.tensor(1.0), torch.tensor(-2.0), 0.5, dim=None)) == 2.0


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), [0.1, 0.2], torch.tensor([0.1, 0.2])])
def test_soft_state_value_rejects_bad_alpha(bad):
    with pytest.raises(ValueError, match="alpha"):
        soft_state_value(torch.zeros(3), torch.zeros(3), bad)


def test_soft_state_value_dtype_and_tensor_alpha():
    q, lp = torch.randn(6, 3), torch.randn(6, 3)
    log_alpha = torch.tensor([math.log(0.3)], dtype=torch.float64)   # a [1] parameter, as in SAC
    out = soft_state_value(q, lp, log_alpha.exp())
    assert out.dtype == torch.float32 and out.shape == (3,)
    assert torch.allclose(out, (q - 0.3 * lp).mean(0), atol=1e-6)
    # numpy input with a tensor alpha gives a numpy result
    out_np = soft_state_value(q.numpy(), lp.numpy(), torch.tensor(0.3))
    assert isinstance(out_np, np.ndarray) and np.allclose(out_np, out.numpy(), atol=1e-6)


def test_soft_state_value_gradients():
    k = 4
    q = torch.randn(k, 2, dtype=torch.float64, requires_grad=True)
    lp = torch.randn(k, 2, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    soft_state_value(q, lp, alpha).sum().backward()
    assert torch.allclose(q.grad, torch.full_like(q, 1 / k))
    assert torch.allclose(lp.grad, torch.full_like(lp, -0.7 / k))
    assert torch.allclose(alpha.grad, -lp.detach().mean(0).sum())


def test_soft_state_value_is_unbiased_for_categorical():
    g = torch.Generator().manual_seed(0)
    q_table = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    probs = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    exact = float((probs * q_table).sum() - 0.4 * (probs * probs.log()).sum())
    a = torch.multinomial(probs, 200_000, replacement=True, generator=g)
    per = soft_state_value(q_table[a], probs.log()[a], 0.4, dim=None)
    se = float(per.std() / math.sqrt(len(per)))
    assert abs(float(per.mean()) - exact) < 4 * se


# ----------------------------------------------------------------------------- soft_value_discrete

def test_soft_value_discrete_hand_computed():
    assert soft_value_discrete([1.0, 3.0], [0.5, 0.5], 0.2) == pytest.approx(2.0 + 0.2 * LOG2, abs=1e-15)
    # a deterministic policy has no entropy: the value is the Q of the chosen action
    assert soft_value_discrete([1.0, 3.0, -2.0], [0.0, 0.0, 1.0], 5.0) == -2.0
    assert soft_value_discrete([4.0, 0.0], [0.25, 0.75], 0.0) == pytest.approx(1.0)


def test_soft_value_discrete_zero_probability_forbidden_action():
    v = soft_value_discrete(np.array([1.0, -np.inf, 2.0]), np.array([0.5, 0.0, 0.5]), 0.3)
    assert v == pytest.approx(1.5 + 0.3 * LOG2)
    q = torch.tensor([[1.0, -math.inf, 2.0]], dtype=torch.float64, requires_grad=True)
    p = torch.tensor([[0.5, 0.0, 0.5]], dtype=torch.float64)
    out = soft_value_discrete(q, p, 0.3)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(q.grad).all()
    assert torch.allclose(q.grad, p)                      # d/dQ of Σ π Q is π


def test_soft_value_discrete_shapes_dtypes_and_torch_agreement():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(8, 4, generator=g)
    p = torch.softmax(torch.randn(8, 4, generator=g), -1)
    out = soft_value_discrete(q, p, 0.5)
    assert out.shape == (8,) and out.dtype == torch.float32
    ref = (p * q).sum(-1) + 0.5 * torch.distributions.Categorical(probs=p).entropy()
    assert torch.allclose(out, ref, atol=1e-5)
    out_np = soft_value_discrete(q.double().numpy(), p.double().numpy(), 0.5)
    assert out_np.shape == (8,) and np.allclose(out_np, ref.numpy(), atol=1e-5)
    out_t = soft_value_discrete(q.T.contiguous(), p.T.contiguous(), 0.5, dim=0)
    assert torch.allclose(out_t, out, atol=1e-6)


def test_soft_value_discrete_errors():
    with pytest.raises(ValueError, match="sum to 1"):
        soft_value_discrete([1.0, 2.0], [0.5, 0.6], 0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        soft_value_discrete([1.0, 2.0], [1.5, -0.5], 0.1)
    with pytest.raises(ValueError, match="same shape"):
        soft_value_discrete([1.0, 2.0, 3.0], [0.5, 0.5], 0.1)
    with pytest.raises(ValueError, match="alpha"):
        soft_value_discrete([1.0, 2.0], [0.5, 0.5], -1.0)


# ----------------------------------------------------------------------------- soft_greedy_policy

def test_soft_greedy_policy_hand_computed():
    alpha = 0.7
    # exp(Q/α) ∝ [1, 3]  ->  [1/4, 3/4]
    out = soft_greedy_policy(np.array([0.0, alpha * math.log(3)]), alpha)
    assert np.allclose(out, [0.25, 0.75], atol=1e-15)
    assert np.allclose(soft_greedy_policy([2.0, 2.0, 2.0], 0.1), 1 / 3)


def test_soft_greedy_policy_shapes_and_invariance():
    g = torch.Generator().manual_seed(2)
    q = torch.randn(6, 5, generator=g)
    p = soft_greedy_policy(q, 0.3)
    assert p.shape == (6, 5) and p.dtype == torch.float32
    assert torch.allclose(p.sum(-1), torch.ones(6)) and (p > 0).all()
    assert torch.allclose(soft_greedy_policy(q + 100.0, 0.3), p, atol=1e-6)     # shift invariance
    assert torch.allclose(soft_greedy_policy(q.T, 0.3, dim=0), p.T)
    assert torch.allclose(p, torch.softmax(q / 0.3, -1), atol=1e-6)
    col = soft_greedy_policy(q[:, :1], 0.3)                                      # a single action
    assert col.shape == (6, 1) and torch.all(col == 1)


def test_soft_greedy_policy_limits_and_stability():
    q = torch.tensor([[1000.0, 999.0, -1000.0]], dtype=torch.float64)
    tiny = soft_greedy_policy(q, 1e-8)
    assert torch.isfinite(tiny).all() and tiny[0, 0] == 1.0
    assert torch.allclose(soft_greedy_policy(q, 1e9), torch.full_like(q, 1 / 3), atol=1e-5)
    assert soft_greedy_policy(np.array([1.0, 3.0, 3.0]), 0.0).tolist() == [0.0, 0.5, 0.5]
    zero = soft_greedy_policy(torch.tensor([[1.0, 3.0], [5.0, 2.0]]), torch.tensor(0.0))
    assert zero.tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_soft_greedy_policy_errors():
    with pytest.raises(ValueError, match="dimension"):
        soft_greedy_policy(1.0, 0.5)
    with pytest.raises(ValueError, match="alpha"):
        soft_greedy_policy([1.0, 2.0], -0.5)


# ----------------------------------------------------------------------------- soft_max_value

def test_soft_max_value_hand_computed():
    assert soft_max_value([0.0, 0.0], 1.0) == pytest.approx(LOG2, abs=1e-15)
    assert soft_max_value([0.0, 0.0, 0.0, 0.0], 0.5) == pytest.approx(0.5 * math.log(4), abs=1e-15)
    assert soft_max_value([1000.0, 1000.0], 1.0) == pytest.approx(1000.0 + LOG2, abs=1e-9)
    assert soft_max_value([1.0, 3.0, 2.0], 0.0) == 3.0


def test_soft_max_value_bounds_shapes_and_gradient():
    g = torch.Generator().manual_seed(3)
    q = 2 * torch.randn(10, 4, generator=g, dtype=torch.float64, requires_grad=True)
    q.retain_grad()
    v = soft_max_value(q, 0.4)
    assert v.shape == (10,)
    hard = q.detach().max(-1).values
    assert (v >= hard).all() and (v <= hard + 0.4 * math.log(4) + 1e-12).all()
    v.sum().backward()
    assert torch.allclose(q.grad, soft_greedy_policy(q.detach(), 0.4), atol=1e-12)
    assert torch.allclose(v.detach(), 0.4 * torch.logsumexp(q.detach() / 0.4, -1), atol=1e-12)
    # the value of the soft-greedy policy
    p = soft_greedy_policy(q.detach(), 0.4)
    assert torch.allclose(v.detach(), soft_value_discrete(q.detach(), p, 0.4), atol=1e-12)
    assert soft_max_value(q.detach()[:, :1], 0.4).shape == (10,)
    assert torch.equal(soft_max_value(q.detach(), 0.0), hard)


def test_soft_max_value_numpy_matches_torch_and_errors():
    q = np.random.default_rng(0).normal(size=(3, 5))
    assert np.allclose(soft_max_value(q, 0.2), soft_max_value(torch.tensor(q), 0.2).numpy(), atol=1e-12)
    assert np.allclose(soft_max_value(q, 0.2, dim=0), soft_max_value(q.T, 0.2), atol=1e-15)
    assert np.isfinite(soft_max_value(np.array([1e5, -1e5]), 1e-6))
    with pytest.raises(ValueError, match="dimension"):
        soft_max_value(np.float64(2.0), 0.3)
    with pytest.raises(ValueError, match="alpha"):
        soft_max_value([1.0], float("nan"))


# ----------------------------------------------------------------------------- finite MDPs

def one_state_bandit(rewards):
    "One state; every action pays its reward and returns to the same state."
    n = len(rewards)
    return np.ones((1, n, 1)), np.array([rewards], dtype=float)


def random_mdp(seed, S=4, A=3):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), size=(S, A))
    R = rng.normal(size=(S, A, S))
    pi = rng.dirichlet(np.ones(A), size=S)
    pi[0] = np.eye(A)[1]                     # one deterministic row: 0·log 0 = 0
    return P, R, pi


def test_soft_policy_evaluation_one_state_by_hand():
    gamma, alpha, r = 0.9, 0.3, 1.5
    P, R = one_state_bandit([r, r])
    V, Q = soft_policy_evaluation(P, R, np.full((1, 2), 0.5), gamma, alpha)
    expected_v = (r + alpha * LOG2) / (1 - gamma)
    assert V.shape == (1,) and Q.shape == (1, 2)
    assert V[0] == pytest.approx(expected_v, rel=1e-12)
    assert np.allclose(Q, r + gamma * expected_v, rtol=1e-12)


def test_soft_policy_evaluation_two_state_chain_by_hand():
    # state 0: the only action moves to absorbing state 1 paying 2; state 1 loops paying 0.
    # With one action there is no entropy: V(1) = 0, V(0) = 2.
    P = np.array([[[0.0, 1.0]], [[0.0, 1.0]]])
    R = np.array([[[0.0, 2.0]], [[0.0, 0.0]]])
    V, Q = soft_policy_evaluation(P, R, np.ones((2, 1)), 0.5, 1.0)
    assert np.allclose(V, [2.0, 0.0]) and np.allclose(Q, [[2.0], [0.0]])


def test_soft_policy_evaluation_matches_iterative_evaluation_and_identity():
    P, R, pi = random_mdp(0)
    gamma, alpha = 0.8, 0.6
    V, Q = soft_policy_evaluation(P, R, pi, gamma, alpha)
    # independent: iterate the Bellman equation with hand-written entropy
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.nansum(np.where(pi > 0, pi * np.log(pi), 0.0), axis=1)
    V_it = np.zeros(len(P))
    for _ in range(400):
        V_it = np.array([sum(pi[s, a] * sum(P[s, a, t] * (R[s, a, t] + gamma * V_it[t]) for t in range(len(P)))
                             for a in range(pi.shape[1])) + alpha * h[s] for s in range(len(P))])
    assert np.allclose(V, V_it, atol=1e-10)
    # V-Q identity, with 0·log 0 = 0 for the deterministic row
    assert np.allclose(soft_value_discrete(Q, pi, alpha), V, atol=1e-12)
    assert np.allclose((pi * Q).sum(1) + alpha * h, V, atol=1e-12)


def test_soft_policy_evaluation_reward_shapes_agree_and_alpha_zero():
    P, R, pi = random_mdp(1)
    r_sa = (P * R).sum(-1)
    V1, Q1 = soft_policy_evaluation(P, R, pi, 0.9, 0.2)
    V2, Q2 = soft_policy_evaluation(P, r_sa, pi, 0.9, 0.2)
    assert np.allclose(V1, V2, atol=1e-12) and np.allclose(Q1, Q2, atol=1e-12)
    # alpha = 0 is ordinary policy evaluation, and the entropy part is linear in alpha
    V0, _ = soft_policy_evaluation(P, R, pi, 0.9, 0.0)
    Vb, _ = soft_policy_evaluation(P, R, pi, 0.9, 0.4)
    assert np.allclose(Vb - V0, 2 * (V1 - V0), atol=1e-12)
    assert V1.dtype == np.float64
    Vt, _ = soft_policy_evaluation(torch.tensor(P), torch.tensor(R), torch.tensor(pi), 0.9, 0.2)
    assert np.allclose(Vt, V1)


def test_soft_policy_evaluation_errors():
    P, R, pi = random_mdp(2)
    with pytest.raises(ValueError, match="P must have shape"):
        soft_policy_evaluation(P[:, :, :3], R, pi, 0.9, 0.1)
    bad_P = P.copy(); bad_P[0, 0, 0] += 0.5
    with pytest.raises(ValueError, match="probability distribution"):
        soft_policy_evaluation(bad_P, R, pi, 0.9, 0.1)
    with pytest.raises(ValueError, match="R must have shape"):
        soft_policy_evaluation(P, R[:, :2], pi, 0.9, 0.1)
    with pytest.raises(ValueError, match="pi must have shape"):
        soft_policy_evaluation(P, R, pi[:, :2], 0.9, 0.1)
    bad_pi = pi.copy(); bad_pi[1] *= 0.5
    with pytest.raises(ValueError, match="sum to 1"):
        soft_policy_evaluation(P, R, bad_pi, 0.9, 0.1)
    for gamma in (1.0, -0.1):
        with pytest.raises(ValueError, match="gamma"):
            soft_policy_evaluation(P, R, pi, gamma, 0.1)
    with pytest.raises(ValueError, match="alpha"):
        soft_policy_evaluation(P, R, pi, 0.9, -0.1)
    bad_R = R.copy(); bad_R[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        soft_policy_evaluation(P, bad_R, pi, 0.9, 0.1)


def test_soft_value_iteration_bandit_closed_form():
    gamma, alpha = 0.9, 0.5
    rewards = [1.0, 0.0, -0.5]
    P, R = one_state_bandit(rewards)
    V, Q, pi = soft_value_iteration(P, R, gamma, alpha)
    # V = γV + α log Σ exp(r_a/α)  =>  V = α log Σ exp(r_a/α) / (1 − γ); π* = softmax(r/α)
    r = np.array(rewards)
    assert V[0] == pytest.approx(alpha * np.log(np.exp(r / alpha).sum()) / (1 - gamma), abs=1e-9)
    assert np.allclose(pi[0], np.exp(r / alpha) / np.exp(r / alpha).sum(), atol=1e-10)
    assert np.allclose(Q[0], r + gamma * V[0], atol=1e-9)
    V0, _, pi0 = soft_value_iteration(P, R, gamma, 0.0)
    assert V0[0] == pytest.approx(1.0 / (1 - gamma), abs=1e-9) and pi0[0].tolist() == [1.0, 0.0, 0.0]


def test_soft_value_iteration_consistency_improvement_and_limit():
    P, R, pi = random_mdp(3)
    gamma, alpha = 0.85, 0.3
    V, Q, pi_star = soft_value_iteration(P, R, gamma, alpha)
    assert V.shape == (4,) and Q.shape == (4, 3) and pi_star.shape == (4, 3)
    V_eval, Q_eval = soft_policy_evaluation(P, R, pi_star, gamma, alpha)
    assert np.allclose(V_eval, V, atol=1e-8) and np.allclose(Q_eval, Q, atol=1e-8)
    V_pi, _ = soft_policy_evaluation(P, R, pi, gamma, alpha)
    assert (V >= V_pi - 1e-9).all()
    # alpha -> 0: within alpha log|A| / (1 - gamma) of ordinary value iteration, from above
    V_hard, _, _ = soft_value_iteration(P, R, gamma, 0.0)
    for a in (1e-3, 1e-2, 0.1):
        V_a, _, _ = soft_value_iteration(P, R, gamma, a)
        assert (V_a >= V_hard - 1e-9).all() and (V_a <= V_hard + a * math.log(3) / (1 - gamma) + 1e-9).all()


def test_soft_value_iteration_errors():
    P, R, _ = random_mdp(4)
    with pytest.raises(RuntimeError, match="converge"):
        soft_value_iteration(P, R, 0.99, 0.1, max_iter=3)
    with pytest.raises(ValueError, match="tol"):
        soft_value_iteration(P, R, 0.9, 0.1, tol=0.0)
    with pytest.raises(ValueError, match="gamma"):
        soft_value_iteration(P, R, 1.0, 0.1)
    with pytest.raises(ValueError, match="alpha"):
        soft_value_iteration(P, R, 0.9, -1.0)
