"""Unit tests of sac_lit.entropy against independent references.

References: closed forms, hand computations, Monte Carlo and torch.distributions
(Categorical, Bernoulli, Normal, MultivariateNormal, kl_divergence).
"""
import math

import pytest
import torch

from sac_lit.entropy import bernoulli_entropy, entropy, gaussian_entropy

HALF_LOG_2PI_E = 0.5 * math.log(2 * math.pi * math.e)
D = torch.distributions


def random_probs(*shape, seed=0):
    "Random distributions along the last dim, float64, every third one with a 0."
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=g, dtype=torch.float64)
    p = torch.softmax(logits, -1)
    p[..., ::3, 0] = 0.0
    return p / p.sum(-1, keepdim=True)


# ---- entropy (discrete) ---------------------------------------------------------
def test_entropy_uniform_is_log_n_nats():
    for n in (1, 2, 3, 10, 1000):
        u = torch.full((n,), 1 / n, dtype=torch.float64)
        assert entropy(u).item() == pytest.approx(math.log(n), rel=1e-12, abs=1e-15)


def test_entropy_hand_computed():
    # -(1/2 log 1/2 + 2 * 1/4 log 1/4) = 1.5 log 2
    p = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    assert entropy(p).item() == pytest.approx(1.5 * math.log(2), rel=1e-14)


def test_entropy_zero_probabilities_contribute_zero():
    assert entropy(torch.tensor([1.0, 0.0])).item() == 0.0
    h = entropy(torch.tensor([0.0, 0.5, 0.5, 0.0], dtype=torch.float64))
    assert h.item() == pytest.approx(math.log(2), rel=1e-15)


def test_entropy_matches_categorical_batch():
    p = random_probs(50, 9, seed=1)
    assert (p == 0).any()
    h = entropy(p)
    assert h.shape == (50,) and h.dtype == torch.float64
    ref = D.Categorical(probs=p).entropy()
    assert torch.allclose(h, ref, atol=1e-12)


@pytest.mark.parametrize("dim", [0, 1, 2, -2, -3])
def test_entropy_respects_dim(dim):
    # outcomes along `dim`; reference: move them last and use Categorical
    base = random_probs(3, 4, 5, 6, seed=3)           # outcomes last, 6 of them
    p = base.movedim(-1, dim)                         # now along `dim`
    h = entropy(p, dim=dim)
    ref = D.Categorical(probs=p.movedim(dim, -1)).entropy()
    assert h.shape == ref.shape
    assert torch.allclose(h, ref, atol=1e-12)


def test_entropy_dim0_of_a_column_batch():
    p = random_probs(30, 4, seed=4)
    assert entropy(p.T, dim=0).shape == (30,)
    assert torch.allclose(entropy(p.T, dim=0), entropy(p), atol=1e-14)


def test_entropy_float32_keeps_dtype():
    p = random_probs(8, 5, seed=5).float()
    h = entropy(p)
    assert h.dtype == torch.float32
    ref = D.Categorical(probs=p.double()).entropy()
    assert torch.allclose(h.double(), ref, atol=1e-5)


def test_entropy_gradient_matches_closed_form():
    # ∂/∂p_i of -Σ p log p is -(log p_i + 1)
    p = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64, requires_grad=True)
    entropy(p).backward()
    assert torch.allclose(p.grad, -(torch.log(p.detach()) + 1))


def test_entropy_is_at_most_log_n_and_at_least_zero():
    p = random_probs(200, 7, seed=6)
    h = entropy(p)
    assert (h >= 0).all() and (h <= math.log(7) + 1e-12).all()


@pytest.mark.parametrize("bad", [[0.5, 0.6], [-0.1, 1.1], [float("nan"), 1.0],
                                 [0.2, 0.2], [1.5, -0.5]])
def test_entropy_rejects_non_distributions(bad):
    with pytest.raises(ValueError):
        entropy(torch.tensor(bad))


def test_entropy_checks_along_dim():
    p = random_probs(3, 5, seed=7)          # rows sum to 1, columns do not
    with pytest.raises(ValueError):
        entropy(p, dim=0)
    with pytest.raises(ValueError):
        entropy(p.T, dim=-1)


def test_entropy_rejects_scalars():
    with pytest.raises(ValueError):
        entropy(torch.tensor(1.0))


# ---- bernoulli_entropy ------------------------------------------------------------
def test_bernoulli_entropy_matches_torch_bernoulli():
    p = torch.linspace(0.001, 0.999, 999, dtype=torch.float64)
    ref = D.Bernoulli(probs=p).entropy()
    assert torch.allclose(bernoulli_entropy(p), ref, atol=1e-10)


def test_bernoulli_entropy_hand_computed_and_maximum():
    p = torch.tensor([0.25, 0.5], dtype=torch.float64)
    want = [-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), math.log(2)]
    assert bernoulli_entropy(p).tolist() == pytest.approx(want, rel=1e-14)


def test_bernoulli_entropy_is_symmetric():
    p = torch.rand(100, dtype=torch.float64)
    assert torch.allclose(bernoulli_entropy(p), bernoulli_entropy(1 - p),
                          atol=1e-14)


def test_bernoulli_entropy_endpoints_are_exactly_zero():
    h = bernoulli_entropy(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    assert h.shape == (2, 2) and h.dtype == torch.float32
    assert h.tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_bernoulli_entropy_tiny_p():
    # h(p) ≈ p (1 - log p) for tiny p
    p = torch.tensor([1e-300], dtype=torch.float64)
    want = 1e-300 * (1 + 300 * math.log(10))
    assert bernoulli_entropy(p).item() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan")])
def test_bernoulli_entropy_rejects_non_probabilities(bad):
    with pytest.raises(ValueError):
        bernoulli_entropy(torch.tensor([0.5, bad]))


# ---- gaussian_entropy ---------------------------------------------------------------
def test_gaussian_entropy_matches_torch_normal_over_many_scales():
    std = torch.exp(torch.linspace(-30, 10, 81, dtype=torch.float64))
    ref = D.Normal(torch.zeros_like(std), std).entropy()
    assert torch.allclose(gaussian_entropy(std), ref, atol=1e-12, rtol=0)


def test_gaussian_entropy_at_e_minus_20_is_exact():
    # no clamp: ½ log(2πe) - 20 ≈ -18.58, not the -12.4 a clamp at 1e-6 gives
    h = gaussian_entropy(torch.tensor(math.exp(-20), dtype=torch.float64))
    assert h.item() == pytest.approx(HALF_LOG_2PI_E - 20, abs=1e-12)


def test_gaussian_entropy_float32_tiny_sigma():
    # σ² underflows in float32; ½ log(2πe) + log σ must not
    std = torch.tensor([1e-30, 1e-20, 1e-3, 1.0, 1e3], dtype=torch.float32)
    h = gaussian_entropy(std)
    assert h.dtype == torch.float32 and torch.isfinite(h).all()
    want = torch.tensor([HALF_LOG_2PI_E + math.log(s)
                         for s in (1e-30, 1e-20, 1e-3, 1.0, 1e3)])
    assert torch.allclose(h, want, rtol=1e-6)


def test_gaussian_entropy_closed_form_values():
    std = torch.tensor([1.0, 2.0, 1 / math.sqrt(2 * math.pi * math.e)],
                       dtype=torch.float64)
    h = gaussian_entropy(std).tolist()
    assert h[0] == pytest.approx(HALF_LOG_2PI_E, rel=1e-15)
    assert h[1] - h[0] == pytest.approx(math.log(2), rel=1e-14)
    assert h[2] == pytest.approx(0.0, abs=1e-15)


def test_gaussian_entropy_scaling_shifts_by_log_c():
    s = torch.rand(10, dtype=torch.float64) + 0.01
    diff = gaussian_entropy(3 * s) - gaussian_entropy(s)
    assert torch.allclose(diff, torch.full_like(s, math.log(3)), atol=1e-14)


def test_gaussian_entropy_gradient_is_one_over_sigma():
    s = torch.tensor([0.01, 0.3, 1.0, 7.0], dtype=torch.float64,
                     requires_grad=True)
    gaussian_entropy(s).sum().backward()
    assert torch.allclose(s.grad, 1 / s.detach())


def test_gaussian_entropy_diagonal_sums_to_multivariate_normal():
    s = torch.rand(4, 3, dtype=torch.float64) + 0.01
    h = gaussian_entropy(s)
    assert h.shape == (4, 3) and h.dtype == torch.float64
    mvn = D.MultivariateNormal(torch.zeros(4, 3, dtype=torch.float64),
                               torch.diag_embed(s**2))
    assert torch.allclose(h.sum(-1), mvn.entropy(), atol=1e-12)


def test_gaussian_entropy_monte_carlo():
    # mean surprise -log p(x) over x ~ N(0, σ²), within 4 standard errors
    g = torch.Generator().manual_seed(8)
    for s in (0.05, 1.0, 5.0):
        x = s * torch.randn(100_000, generator=g, dtype=torch.float64)
        surprise = 0.5 * math.log(2 * math.pi * s**2) + x**2 / (2 * s**2)
        se = surprise.std() / math.sqrt(x.numel())
        h = gaussian_entropy(torch.tensor(s, dtype=torch.float64))
        assert abs(surprise.mean() - h) < 4 * se


# ---- the soft optimum of chapter 1 ---------------------------------------------------
def test_boltzmann_policy_maximises_expected_q_plus_alpha_entropy():
    # J(π) = E_π[Q] + α H(π) = α log Z - α KL(π || softmax(Q/α))
    g = torch.Generator().manual_seed(9)
    q = 2 * torch.randn(5, generator=g, dtype=torch.float64)
    others = random_probs(100, 5, seed=10)
    for alpha in (0.1, 1.0, 3.0):
        pi_star = torch.softmax(q / alpha, -1)
        alpha_log_z = alpha * torch.logsumexp(q / alpha, -1)
        j_star = (pi_star * q).sum() + alpha * entropy(pi_star)
        assert j_star.item() == pytest.approx(alpha_log_z.item(), abs=1e-12)
        kl = D.kl_divergence(D.Categorical(probs=others),
                             D.Categorical(logits=q / alpha))
        j = (others * q).sum(-1) + alpha * entropy(others)
        assert torch.allclose(j, alpha_log_z - alpha * kl, atol=1e-10)
