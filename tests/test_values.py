"""Unit tests for sac_lit.values (chapter 2: entropy-regularised value functions).

References are independent of the code under test: hand computations, closed forms,
torch.distributions, plain-Python iterations and Monte Carlo with standard-error tolerances.
"""
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
F64 = dict(dtype=torch.float64)


def t(x):
    return torch.tensor(x, **F64)


# ----------------------------------------------------------------------------- soft_state_value

def test_soft_state_value_hand_computed():
    # q - alpha*log_prob = [1 + 0.5, 2 + 1, 3 + 1.5] = [1.5, 3, 4.5]; mean 3.0
    out = soft_state_value(t([1.0, 2.0, 3.0]), t([-1.0, -2.0, -3.0]), 0.5)
    assert out.shape == () and abs(out.item() - 3.0) < 1e-15


def test_soft_state_value_averages_samples_along_dim():
    g = torch.Generator().manual_seed(0)
    q, lp = torch.randn(7, 4, generator=g), torch.randn(7, 4, generator=g)
    assert torch.allclose(soft_state_value(q, lp, 0.2), (q - 0.2 * lp).mean(0))   # [K, B] -> [B]
    assert soft_state_value(q, lp, 0.2).shape == (4,)
    assert torch.allclose(soft_state_value(q, lp, 0.2, dim=-1), (q - 0.2 * lp).mean(1))
    assert soft_state_value(q, lp, 0.2, dim=-1).shape == (7,)


def test_soft_state_value_rejects_broadcasting():
    with pytest.raises(ValueError, match="shapes must match"):
        soft_state_value(torch.zeros(5), torch.zeros(5, 1), 0.1)


def test_soft_state_value_tensor_alpha_and_gradients():
    k = 4
    q = torch.randn(k, 2, **F64, requires_grad=True)
    lp = torch.randn(k, 2, **F64, requires_grad=True)
    log_alpha = torch.tensor([math.log(0.7)], **F64, requires_grad=True)   # a [1] parameter
    soft_state_value(q, lp, log_alpha.exp()).sum().backward()
    assert torch.allclose(q.grad, torch.full_like(q, 1 / k))
    assert torch.allclose(lp.grad, torch.full_like(lp, -0.7 / k))
    # d/d log α of Σ_b mean_k(q − e^{log α} lp) = −α Σ_b mean_k lp
    assert torch.allclose(log_alpha.grad, -0.7 * lp.detach().mean(0).sum())


def test_soft_state_value_gaussian_closed_form_monte_carlo():
    # π = N(μ, σ²), Q(a) = −(a − 1)²: V = −((μ−1)² + σ²) + α·½log(2πeσ²)
    g = torch.Generator().manual_seed(1)
    mu, sigma, alpha, n = t([-0.5, 0.8]), t([0.2, 2.0]), 0.3, 200_000
    a = mu + sigma * torch.randn(n, 2, generator=g, **F64)
    log_prob = -0.5 * ((a - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    q = -(a - 1.0) ** 2
    v = soft_state_value(q, log_prob, alpha)
    se = (q - alpha * log_prob).std(0) / math.sqrt(n)
    closed = -((mu - 1) ** 2 + sigma**2) + alpha * 0.5 * torch.log(2 * math.pi * math.e * sigma**2)
    assert ((v - closed).abs() < 4 * se).all(), ((v - closed) / se)
    # the sign of the bonus matters by far more than the noise: q + α log π is wrong
    wrong = (q + alpha * log_prob).mean(0)
    assert ((wrong - closed).abs() > 20 * se).all()


def test_soft_state_value_is_unbiased_for_categorical():
    g = torch.Generator().manual_seed(0)
    q_table, probs = t([1.0, -1.0, 0.5]), t([0.2, 0.5, 0.3])
    exact = float((probs * q_table).sum() - 0.4 * (probs * probs.log()).sum())
    a = torch.multinomial(probs, 200_000, replacement=True, generator=g)
    per = q_table[a] - 0.4 * probs.log()[a]
    est = soft_state_value(q_table[a], probs.log()[a], 0.4)
    assert abs(est.item() - exact) < 4 * per.std().item() / math.sqrt(len(a))


# ----------------------------------------------------------------------------- soft_value_discrete

def test_soft_value_discrete_hand_computed():
    assert abs(soft_value_discrete(t([1.0, 3.0]), t([0.5, 0.5]), 0.2).item() - (2 + 0.2 * LOG2)) < 1e-15
    # a deterministic policy has no entropy: the value is the Q of the chosen action
    assert soft_value_discrete(t([1.0, 3.0, -2.0]), t([0.0, 0.0, 1.0]), 5.0).item() == -2.0


def test_soft_value_discrete_zero_probability_actions():
    v = soft_value_discrete(t([1.0, -7.0, 2.0]), t([0.5, 0.0, 0.5]), 0.3)
    assert torch.isfinite(v) and abs(v.item() - (1.5 + 0.3 * LOG2)) < 1e-15
    q = t([[1.0, -7.0, 2.0]]).requires_grad_()
    soft_value_discrete(q, t([[0.5, 0.0, 0.5]]), 0.3).sum().backward()
    assert torch.equal(q.grad, t([[0.5, 0.0, 0.5]]))                # d/dQ of Σ π Q is π


def test_soft_value_discrete_against_categorical_entropy_and_axes():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(8, 4, generator=g, **F64)                         # 8 states, 4 actions
    p = torch.softmax(torch.randn(8, 4, generator=g, **F64), -1)
    out = soft_value_discrete(q, p, 0.5)
    ref = (p * q).sum(-1) + 0.5 * torch.distributions.Categorical(probs=p).entropy()
    assert out.shape == (8,) and torch.allclose(out, ref, atol=1e-12)
    assert torch.allclose(soft_value_discrete(q.T, p.T, 0.5, dim=0), ref, atol=1e-12)
    assert soft_value_discrete(q.float(), p.float(), 0.5).dtype == torch.float32


def test_soft_value_discrete_rejects_broadcasting():
    with pytest.raises(ValueError, match="shapes must match"):
        soft_value_discrete(t([1.0, 2.0, 3.0]), t([[0.5, 0.5, 0.0]]), 0.1)


# ----------------------------------------------------------------------------- softmax and soft max

def test_soft_greedy_policy_hand_computed():
    alpha = 0.7
    out = soft_greedy_policy(t([0.0, alpha * math.log(3)]), alpha)   # exp(Q/α) ∝ [1, 3]
    assert torch.allclose(out, t([0.25, 0.75]), atol=1e-15)
    assert torch.allclose(soft_greedy_policy(t([[2.0, 2.0, 2.0]]), 0.1), torch.full((1, 3), 1 / 3, **F64))


def test_soft_greedy_policy_rows_axes_and_shift_invariance():
    g = torch.Generator().manual_seed(2)
    q = torch.randn(6, 5, generator=g, **F64)
    p = soft_greedy_policy(q, 0.3)
    e = torch.exp(q / 0.3)
    assert p.shape == (6, 5) and torch.allclose(p, e / e.sum(-1, keepdim=True), atol=1e-12)
    assert torch.allclose(soft_greedy_policy(q + 100.0, 0.3), p, atol=1e-12)
    assert torch.allclose(soft_greedy_policy(q.T, 0.3, dim=0), p.T)


def test_soft_greedy_policy_limits_and_stability():
    q = t([[1000.0, 999.0, -1000.0]])
    tiny = soft_greedy_policy(q, 1e-8)
    assert torch.isfinite(tiny).all() and tiny[0, 0] == 1.0
    assert torch.allclose(soft_greedy_policy(q, 1e9), torch.full_like(q, 1 / 3), atol=1e-5)


@pytest.mark.parametrize("fn", [soft_greedy_policy, soft_max_value])
def test_alpha_must_be_a_positive_number(fn):
    for bad in (0.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            fn(t([1.0, 2.0]), bad)
    with pytest.raises(TypeError, match="alpha"):
        fn(t([1.0, 2.0]), torch.tensor(0.5))


def test_soft_max_value_hand_computed():
    assert abs(soft_max_value(t([0.0, 0.0]), 1.0).item() - LOG2) < 1e-15
    assert abs(soft_max_value(t([0.0, 0.0, 0.0, 0.0]), 0.5).item() - 0.5 * math.log(4)) < 1e-15
    assert abs(soft_max_value(t([1000.0, 1000.0]), 1.0).item() - (1000.0 + LOG2)) < 1e-9
    # α log(e^{1/α} + e^{3/α}) at α = 2: 2·log(e^0.5 + e^1.5)
    assert abs(soft_max_value(t([1.0, 3.0]), 2.0).item() - 2 * math.log(math.exp(0.5) + math.exp(1.5))) < 1e-12


def test_soft_max_value_is_value_of_softmax_and_its_gradient():
    g = torch.Generator().manual_seed(3)
    q = (2 * torch.randn(10, 4, generator=g, **F64)).requires_grad_()
    v = soft_max_value(q, 0.4)
    assert v.shape == (10,)
    hard = q.detach().max(-1).values
    assert (v >= hard).all() and (v <= hard + 0.4 * math.log(4) + 1e-12).all()
    p = soft_greedy_policy(q.detach(), 0.4)
    assert torch.allclose(v.detach(), soft_value_discrete(q.detach(), p, 0.4), atol=1e-12)
    v.sum().backward()
    assert torch.allclose(q.grad, p, atol=1e-12)
    assert torch.allclose(soft_max_value(q.detach().T, 0.4, dim=0), v.detach())
    assert torch.isfinite(soft_max_value(t([1e5, -1e5]), 1e-6))


# ----------------------------------------------------------------------------- finite MDPs

def one_state_bandit(rewards):
    "One state; every action pays its reward and returns to the same state."
    n = len(rewards)
    return torch.ones(1, n, 1, **F64), t(rewards).reshape(1, n, 1)


def random_mdp(seed, S=4, A=3):
    "S ≠ A, so that a mixed-up axis cannot hide behind a square shape."
    rng = np.random.default_rng(seed)
    P = torch.from_numpy(rng.dirichlet(np.ones(S), size=(S, A)))
    R = torch.from_numpy(rng.normal(size=(S, A, S)))
    pi = torch.from_numpy(rng.dirichlet(np.ones(A), size=S))
    pi[0] = torch.eye(A, **F64)[1]                     # one deterministic row: 0·log 0 = 0
    return P, R, pi


def loop_policy_evaluation(P, R, pi, gamma, alpha, sweeps=600):
    "Iterate the soft Bellman expectation equation for V with plain Python loops."
    P, R, pi = P.tolist(), R.tolist(), pi.tolist()
    S, A = len(P), len(P[0])
    h = [-sum(p * math.log(p) for p in pi[s] if p > 0) for s in range(S)]
    V = [0.0] * S
    for _ in range(sweeps):
        V = [sum(pi[s][a] * sum(P[s][a][u] * (R[s][a][u] + gamma * V[u]) for u in range(S))
                 for a in range(A)) + alpha * h[s] for s in range(S)]
    Q = [[sum(P[s][a][u] * (R[s][a][u] + gamma * V[u]) for u in range(S)) for a in range(A)]
         for s in range(S)]
    return t(V), t(Q)


def loop_hard_value_iteration(P, R, gamma, sweeps=2000):
    P, R = P.tolist(), R.tolist()
    S, A = len(P), len(P[0])
    V = [0.0] * S
    for _ in range(sweeps):
        V = [max(sum(P[s][a][u] * (R[s][a][u] + gamma * V[u]) for u in range(S)) for a in range(A))
             for s in range(S)]
    return t(V)


def test_soft_policy_evaluation_one_state_by_hand():
    gamma, alpha, r = 0.9, 0.3, 1.5
    P, R = one_state_bandit([r, r])
    V, Q = soft_policy_evaluation(P, R, t([[0.5, 0.5]]), gamma, alpha)
    expected_v = (r + alpha * LOG2) / (1 - gamma)
    assert V.shape == (1,) and Q.shape == (1, 2)
    assert abs(V.item() - expected_v) < 1e-12
    # Q's entropy bonus starts at t = 1: Q = r + γ V, not r + α log 2 + γ V
    assert torch.allclose(Q, torch.full((1, 2), r + gamma * expected_v, **F64), atol=1e-12)


def test_soft_policy_evaluation_two_state_chain_by_hand():
    # state 0: the only action moves to absorbing state 1 paying 2; state 1 loops paying 0.
    P = t([[[0.0, 1.0]], [[0.0, 1.0]]])
    R = t([[[0.0, 2.0]], [[0.0, 0.0]]])
    V, Q = soft_policy_evaluation(P, R, t([[1.0], [1.0]]), 0.5, 1.0)
    assert torch.allclose(V, t([2.0, 0.0])) and torch.allclose(Q, t([[2.0], [0.0]]))
    # an asymmetric chain catches a transposed P: from state 0 the agent moves on, not back
    P = t([[[0.0, 1.0]], [[0.0, 1.0]]])
    R = t([[[0.0, 0.0]], [[0.0, 1.0]]])                 # only state 1's loop pays
    V, _ = soft_policy_evaluation(P, R, t([[1.0], [1.0]]), 0.5, 0.0)
    assert torch.allclose(V, t([1.0, 2.0]))             # V(1) = 1/(1−γ) = 2, V(0) = γ·2


@pytest.mark.parametrize("seed", [0, 1])
def test_soft_policy_evaluation_matches_plain_loops(seed):
    P, R, pi = random_mdp(seed)
    gamma, alpha = 0.8, 0.6
    V, Q = soft_policy_evaluation(P, R, pi, gamma, alpha)
    V_loop, Q_loop = loop_policy_evaluation(P, R, pi, gamma, alpha)
    assert V.shape == (4,) and Q.shape == (4, 3)
    assert torch.allclose(V, V_loop, atol=1e-10) and torch.allclose(Q, Q_loop, atol=1e-10)
    # the V–Q identity, with 0·log 0 = 0 for the deterministic row
    assert torch.allclose(soft_value_discrete(Q, pi, alpha), V, atol=1e-12)


def test_soft_policy_evaluation_monte_carlo():
    "The definitions themselves: discounted reward + entropy bonus (from t = 1 for Q), sampled."
    P, R, pi = random_mdp(5)
    gamma, alpha, n, horizon = 0.7, 0.5, 20_000, 60      # γ^60 ≈ 5e-10
    V, Q = soft_policy_evaluation(P, R, pi, gamma, alpha)
    rng = np.random.default_rng(0)
    P_np, R_np, pi_np = P.numpy(), R.numpy(), pi.numpy()
    h = -(pi_np * np.log(np.where(pi_np > 0, pi_np, 1.0))).sum(-1)
    S, A = pi_np.shape
    s = np.repeat(np.arange(S), A * n)
    a = np.tile(np.repeat(np.arange(A), n), S)
    g = np.zeros(s.size)
    for step in range(horizon):
        if step > 0:
            a = (rng.random((s.size, 1)) > pi_np[s].cumsum(-1)).sum(-1).clip(max=A - 1)
            g += gamma**step * alpha * h[s]
        s_next = (rng.random((s.size, 1)) > P_np[s, a].cumsum(-1)).sum(-1).clip(max=S - 1)
        g += gamma**step * R_np[s, a, s_next]
        s = s_next
    g = g.reshape(S, A, n)
    z = np.abs(g.mean(-1) - Q.numpy()) / (g.std(-1, ddof=1) / math.sqrt(n))
    assert (z < 4.5).all(), z


def test_soft_policy_evaluation_alpha_and_gamma_enter_correctly():
    P, R, pi = random_mdp(1)
    V0, _ = soft_policy_evaluation(P, R, pi, 0.9, 0.0)
    V1, _ = soft_policy_evaluation(P, R, pi, 0.9, 0.2)
    V2, _ = soft_policy_evaluation(P, R, pi, 0.9, 0.4)
    assert torch.allclose(V2 - V0, 2 * (V1 - V0), atol=1e-12)    # linear in α
    assert (V1 - V0).abs().max() > 0.1                               # and α matters
    # γ = 0: V = r_π + α H_π and Q = R̄, one step only
    V, Q = soft_policy_evaluation(P, R, pi, 0.0, 0.2)
    R_bar = (P * R).sum(-1)
    h = -(pi * torch.log(torch.where(pi > 0, pi, torch.ones_like(pi)))).sum(-1)
    assert torch.allclose(Q, R_bar, atol=1e-12)
    assert torch.allclose(V, (pi * R_bar).sum(-1) + 0.2 * h, atol=1e-12)


def test_soft_policy_evaluation_errors():
    P, R, pi = random_mdp(2)
    with pytest.raises(ValueError, match="shapes must match"):
        soft_policy_evaluation(P, R[:, :, 0], pi, 0.9, 0.1)        # [S, A] reward would broadcast
    bad_P = P.clone()
    bad_P[0, 0, 0] += 0.5
    with pytest.raises(ValueError, match="sum to 1"):
        soft_policy_evaluation(bad_P, R, pi, 0.9, 0.1)
    bad_pi = pi.clone()
    bad_pi[1] *= 0.5
    with pytest.raises(ValueError, match="sum to 1"):
        soft_policy_evaluation(P, R, bad_pi, 0.9, 0.1)
    for gamma in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="gamma"):
            soft_policy_evaluation(P, R, pi, gamma, 0.1)


def test_soft_policy_evaluation_reward_spread_over_next_states():
    # an [S, A] reward table is refused; spread over s' it gives the same values
    P, R, pi = random_mdp(3)
    R_sa = (P * R).sum(-1)
    V, Q = soft_policy_evaluation(P, R, pi, 0.9, 0.3)
    V_spread, Q_spread = soft_policy_evaluation(P, R_sa[:, :, None].expand_as(P), pi, 0.9, 0.3)
    assert torch.allclose(V_spread, V, atol=1e-12) and torch.allclose(Q_spread, Q, atol=1e-12)


def test_soft_greedy_and_soft_max_by_hand_and_at_ties():
    # Q = (0, α log 3): weights (1, 3), policy (1/4, 3/4), soft maximum α log 4
    alpha = 0.5
    q_two = t([0.0, alpha * math.log(3)])
    assert torch.allclose(soft_greedy_policy(q_two, alpha), t([0.25, 0.75]))
    assert abs(soft_max_value(q_two, alpha).item() - alpha * math.log(4)) < 1e-12
    q_tie = t([[1000.0, 1000.0]])
    assert torch.allclose(soft_greedy_policy(q_tie, alpha), t([[0.5, 0.5]]))
    assert torch.allclose(soft_max_value(q_tie, alpha), t([1000 + alpha * LOG2]))
    huge = t([[1000.0, 999.0, -1000.0]])
    assert torch.isfinite(soft_greedy_policy(huge, 1e-6)).all()
    assert torch.isfinite(soft_max_value(huge, 1e-6)).all()


def test_soft_value_iteration_bandit_closed_form():
    gamma, alpha = 0.9, 0.5
    rewards = [1.0, 0.0, -0.5]
    P, R = one_state_bandit(rewards)
    V, Q, pi = soft_value_iteration(P, R, gamma, alpha)
    # V = γV + α log Σ exp(r_a/α)  =>  V = α log Σ exp(r_a/α) / (1 − γ); π* = softmax(r/α)
    r = np.array(rewards)
    v_exact = alpha * np.log(np.exp(r / alpha).sum()) / (1 - gamma)
    assert abs(V.item() - v_exact) <= 1e-10
    assert np.allclose(pi[0].numpy(), np.exp(r / alpha) / np.exp(r / alpha).sum(), atol=1e-12)
    assert np.allclose(Q[0].numpy(), r + gamma * v_exact, atol=1e-10)


@pytest.mark.parametrize("gamma, tol", [(0.999, 1e-6), (0.99, 1e-8), (0.5, 1e-12)])
def test_soft_value_iteration_keeps_its_accuracy_promise(gamma, tol):
    """max |V − V*| <= tol, with V* in closed form. The one-state bandit makes the bound
    γ/(1−γ)·(last change) tight, so a rule that stops 1000× too early (at γ = 0.999) fails."""
    rewards = np.array([1.0, 0.3, -0.5])
    alpha = 0.5
    P, R = one_state_bandit(rewards.tolist())
    V, _, _ = soft_value_iteration(P, R, gamma, alpha, tol=tol)
    v_exact = alpha * math.log(np.exp(rewards / alpha).sum()) / (1 - gamma)
    err = abs(V.item() - v_exact)
    assert err <= tol, (err, tol)
    assert err >= tol / 10        # and not needlessly many sweeps: the bound is nearly tight here


def test_soft_value_iteration_promise_on_a_random_mdp_at_gamma_0999():
    P, R, _ = random_mdp(6)
    gamma, alpha, tol = 0.999, 0.3, 1e-6
    pi_k = torch.full((4, 3), 1 / 3, **F64)
    for _ in range(40):                                   # soft policy iteration: exact reference
        V_ref, Q_ref = soft_policy_evaluation(P, R, pi_k, gamma, alpha)
        e = torch.exp((Q_ref - Q_ref.max(-1, keepdim=True).values) / alpha)
        pi_k = e / e.sum(-1, keepdim=True)
    V, _, _ = soft_value_iteration(P, R, gamma, alpha, tol=tol)
    assert (V - V_ref).abs().max().item() <= tol


def test_soft_policy_improvement_lemma_and_soft_policy_iteration():
    P, R, _ = random_mdp(3)
    gamma, alpha = 0.85, 0.3
    rng = np.random.default_rng(7)
    for _ in range(10):
        pi_old = torch.from_numpy(rng.dirichlet(np.ones(3), size=4))
        V_old, Q_old = soft_policy_evaluation(P, R, pi_old, gamma, alpha)
        pi_new = soft_greedy_policy(Q_old, alpha)
        e = torch.exp(Q_old / alpha)
        assert torch.allclose(pi_new, e / e.sum(-1, keepdim=True), atol=1e-12)
        _, Q_new = soft_policy_evaluation(P, R, pi_new, gamma, alpha)
        assert (Q_new >= Q_old - 1e-12).all()
        # one-step identity: V_old(s) = α log Z(s) − α KL(π_old ‖ π_new)
        kl = (pi_old * (pi_old.log() - pi_new.log())).sum(-1)
        assert torch.allclose(alpha * torch.log(e.sum(-1)) - alpha * kl, V_old, atol=1e-10)
    # soft policy iteration comes to rest at value iteration's Q*
    _, Q_star, pi_star = soft_value_iteration(P, R, gamma, alpha)
    pi_k = pi_old
    for _ in range(30):
        _, Q_k = soft_policy_evaluation(P, R, pi_k, gamma, alpha)
        pi_k = soft_greedy_policy(Q_k, alpha)
    assert torch.allclose(Q_k, Q_star, atol=1e-9) and torch.allclose(pi_k, pi_star, atol=1e-9)


def test_soft_value_iteration_is_optimal_and_a_fixed_point():
    P, R, pi = random_mdp(3)
    gamma, alpha = 0.85, 0.3
    V, Q, pi_star = soft_value_iteration(P, R, gamma, alpha)
    assert V.shape == (4,) and Q.shape == (4, 3) and pi_star.shape == (4, 3)
    V_eval, Q_eval = soft_policy_evaluation(P, R, pi_star, gamma, alpha)
    assert torch.allclose(V_eval, V, atol=1e-9) and torch.allclose(Q_eval, Q, atol=1e-9)
    # the optimality equations, written out
    Q_sweep = (P * (R + gamma * V)).sum(-1)
    assert torch.allclose(Q_sweep, Q, atol=1e-9)
    assert torch.allclose(alpha * torch.logsumexp(Q_sweep / alpha, -1), V, atol=1e-9)
    rng = np.random.default_rng(8)
    for p in [pi] + [torch.from_numpy(rng.dirichlet(np.ones(3), size=4)) for _ in range(50)]:
        V_p, _ = soft_policy_evaluation(P, R, p, gamma, alpha)
        assert (V_p <= V + 1e-9).all()


def test_soft_value_iteration_small_alpha_limit():
    P, R, _ = random_mdp(4)
    gamma = 0.85
    V_hard = loop_hard_value_iteration(P, R, gamma)
    for alpha in (1e-4, 1e-2, 0.1, 1.0):
        V_a, _, _ = soft_value_iteration(P, R, gamma, alpha)
        assert (V_a >= V_hard - 1e-9).all()
        assert (V_a <= V_hard + alpha * math.log(3) / (1 - gamma) + 1e-9).all()


def test_soft_value_iteration_errors():
    P, R, _ = random_mdp(4)
    with pytest.raises(RuntimeError, match="convergence"):
        soft_value_iteration(P, R, 0.99, 0.1, max_iter=3)
    with pytest.raises(ValueError, match="gamma"):
        soft_value_iteration(P, R, 1.0, 0.1)
    with pytest.raises(ValueError, match="alpha"):
        soft_value_iteration(P, R, 0.9, 0.0)
    with pytest.raises(ValueError, match="shapes must match"):
        soft_value_iteration(P, R[..., :1], 0.9, 0.1)
