import math

import numpy as np
import pytest
import torch

from sac_lit import bernoulli_entropy, entropy, gaussian_entropy


# ---- entropy (discrete) ----------------------------------------------------------------------
def test_entropy_known_values():
    assert entropy([0.5, 0.5]) == pytest.approx(math.log(2))
    assert entropy([0.25] * 4) == pytest.approx(math.log(4))
    # hand-computed: -(0.5 log 0.5 + 0.25 log 0.25 + 0.25 log 0.25) = 1.5 log 2
    assert entropy([0.5, 0.25, 0.25]) == pytest.approx(1.5 * math.log(2))


def test_entropy_zero_probabilities_are_safe():
    assert entropy([1.0, 0.0]) == 0.0
    t = entropy(torch.tensor([0.0, 0.5, 0.5, 0.0], dtype=torch.float64))
    assert torch.isfinite(t) and t.item() == pytest.approx(math.log(2))


def test_entropy_types_and_shapes():
    assert isinstance(entropy([0.3, 0.7]), float)
    batch = np.array([[0.5, 0.5], [1.0, 0.0], [0.9, 0.1]])
    h = entropy(batch)
    assert isinstance(h, np.ndarray) and h.shape == (3,)
    assert entropy(batch.T, dim=0).shape == (3,)
    tb = torch.tensor(batch, dtype=torch.float32)
    ht = entropy(tb)
    assert ht.shape == (3,) and ht.dtype == torch.float32
    assert torch.allclose(ht.double(), torch.tensor(h), atol=1e-6)


def test_entropy_gradient_matches_closed_form():
    # d/dp of -Σ p log p is -(log p + 1)
    p = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64, requires_grad=True)
    entropy(p).backward()
    assert torch.allclose(p.grad, -(torch.log(p.detach()) + 1))


@pytest.mark.parametrize("bad", [[0.5, 0.6], [-0.1, 1.1], [float("nan"), 1.0], [0.2, 0.2]])
def test_entropy_rejects_non_distributions(bad):
    with pytest.raises(ValueError):
        entropy(bad)


def test_entropy_rejects_scalars():
    with pytest.raises(ValueError):
        entropy(0.5)


# ---- bernoulli_entropy ------------------------------------------------------------------------
def test_bernoulli_entropy_values_and_edges():
    assert bernoulli_entropy(0.5) == pytest.approx(math.log(2))
    assert bernoulli_entropy(0.0) == 0.0 and bernoulli_entropy(1.0) == 0.0
    # hand-computed for p = 0.25: -(0.25 log 0.25 + 0.75 log 0.75)
    assert bernoulli_entropy(0.25) == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))
    assert bernoulli_entropy(1e-300) > 0 and math.isfinite(bernoulli_entropy(1e-300))


def test_bernoulli_entropy_types():
    assert isinstance(bernoulli_entropy(0.3), float)
    arr = bernoulli_entropy(np.array([0.0, 0.5, 1.0]))
    assert isinstance(arr, np.ndarray) and arr.shape == (3,)
    t = bernoulli_entropy(torch.tensor([[0.0, 0.5], [1.0, 0.1]]))
    assert t.shape == (2, 2) and t.dtype == torch.float32 and torch.isfinite(t).all()
    assert t[0, 0] == 0 and t[1, 0] == 0


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan")])
def test_bernoulli_entropy_rejects_non_probabilities(bad):
    with pytest.raises(ValueError):
        bernoulli_entropy(bad)


# ---- gaussian_entropy -------------------------------------------------------------------------
def test_gaussian_entropy_closed_form():
    assert gaussian_entropy(1.0) == pytest.approx(0.5 * math.log(2 * math.pi * math.e))
    assert gaussian_entropy(2.0) - gaussian_entropy(1.0) == pytest.approx(math.log(2))
    assert gaussian_entropy(1 / math.sqrt(2 * math.pi * math.e)) == pytest.approx(0.0, abs=1e-15)


def test_gaussian_entropy_tiny_and_huge_sigma():
    assert gaussian_entropy(1e-200) == pytest.approx(0.5 * math.log(2 * math.pi * math.e) + math.log(1e-200))
    assert math.isfinite(gaussian_entropy(1e-300)) and math.isfinite(gaussian_entropy(1e300))
    t = gaussian_entropy(torch.tensor([1e-30], dtype=torch.float32))
    assert torch.isfinite(t).all()  # σ² would underflow in float32


def test_gaussian_entropy_types_and_reference():
    assert isinstance(gaussian_entropy(0.5), float)
    s = torch.rand(4, 3, dtype=torch.float64) + 0.01
    h = gaussian_entropy(s)
    assert h.shape == (4, 3) and h.dtype == torch.float64
    assert torch.allclose(h, torch.distributions.Normal(torch.zeros_like(s), s).entropy())
    # diagonal Gaussian: sum over the last dimension
    mvn = torch.distributions.MultivariateNormal(torch.zeros(3, dtype=torch.float64), torch.diag(s[0] ** 2))
    assert torch.allclose(h[0].sum(), mvn.entropy())
    arr = gaussian_entropy(np.array([0.5, 1.0]))
    assert isinstance(arr, np.ndarray) and arr.shape == (2,)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_gaussian_entropy_rejects_non_positive(bad):
    with pytest.raises(ValueError):
        gaussian_entropy(bad)
    with pytest.raises(ValueError):
        gaussian_entropy(torch.tensor([1.0, bad]))
