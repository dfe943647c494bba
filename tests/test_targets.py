"""Unit tests for sac_lit.targets.soft_q_target (chapter 3)."""
from __future__ import annotations

import math

import pytest
import torch

from sac_lit.targets import soft_q_target


def _t(*values, dtype=torch.float32):
    return torch.tensor(values, dtype=dtype)


def _reference(r, d, q1, q2, logp, gamma, alpha):
    "Plain-Python loop over one transition at a time, independent of the vectorised code."
    out = []
    for ri, di, a, b, lp in zip(r, d, q1, q2, logp):
        future = 0.0 if di else gamma * ((a if a < b else b) - alpha * lp)
        out.append(ri + future)
    return out


def test_hand_computed_values():
    # row 1: 1 + 0.9 * (2.5 + 0.1 * 1.2) = 3.358; row 2 is terminal; row 3: -2 + 0.9 * (-1 - 0.03)
    y = soft_q_target(_t(1.0, 0.5, -2.0), _t(0.0, 1.0, 0.0), _t(3.0, 10.0, -1.0),
                      _t(2.5, -4.0, 0.0), _t(-1.2, 0.7, 0.3), gamma=0.9, alpha=0.1)
    assert y.shape == (3,)
    assert torch.allclose(y, _t(3.358, 0.5, -2.927), atol=1e-6)


def test_exercise_value():
    y = soft_q_target(_t(1.0), _t(0.0), _t(2.0), _t(3.0), _t(-0.5), 0.99, 0.2)
    assert y.item() == pytest.approx(1 + 0.99 * (2 + 0.1), abs=1e-6)


def test_matches_reference_on_random_batch():
    g = torch.Generator().manual_seed(0)
    n = 257
    r, q1, q2, lp = (torch.randn(n, generator=g, dtype=torch.float64) * 3 for _ in range(4))
    d = torch.rand(n, generator=g) < 0.3
    y = soft_q_target(r, d, q1, q2, lp, 0.97, 0.35)
    ref = _reference(r.tolist(), d.tolist(), q1.tolist(), q2.tolist(), lp.tolist(), 0.97, 0.35)
    assert torch.allclose(y, torch.tensor(ref, dtype=torch.float64), atol=1e-12)


def test_terminal_ignores_the_future_including_the_entropy_bonus():
    big = _t(1e6, -1e6)
    y = soft_q_target(_t(0.25, -3.0), torch.tensor([True, True]), big, big, _t(-50.0, 50.0),
                      0.99, 1.0)
    assert torch.equal(y, _t(0.25, -3.0))


def test_terminal_vs_nonterminal_differ_by_the_bootstrap():
    # the same transition twice, once non-terminal and once terminal
    y = soft_q_target(_t(1.0, 1.0), _t(0.0, 1.0), _t(4.0, 4.0), _t(5.0, 5.0), _t(-2.0, -2.0),
                      0.5, 0.25)
    assert y[0].item() == pytest.approx(1.0 + 0.5 * (4.0 + 0.5))
    assert y[1].item() == pytest.approx(1.0)


def test_reward_is_not_discounted():
    y = soft_q_target(_t(2.0), _t(0.0), _t(0.0), _t(0.0), _t(0.0), 0.5, 0.3)
    assert y.item() == pytest.approx(2.0)


def test_uses_the_minimum_of_the_two_critics():
    q_a, q_b = _t(1.0, 7.0, -2.0), _t(3.0, 2.0, -2.5)
    zeros = torch.zeros(3)
    y = soft_q_target(zeros, zeros, q_a, q_b, zeros, 1.0, 0.0)
    assert torch.equal(y, _t(1.0, 2.0, -2.5))
    # symmetric in the two critics
    assert torch.equal(soft_q_target(zeros, zeros, q_b, q_a, zeros, 1.0, 0.0), y)


def test_entropy_term_sign_and_size():
    # a less likely action (more negative log-prob) must raise the target, by gamma * alpha * delta
    zeros = torch.zeros(2)
    y = soft_q_target(zeros, zeros, zeros, zeros, _t(-1.0, -3.0), 0.8, 0.5)
    assert y[1] > y[0]
    assert (y[1] - y[0]).item() == pytest.approx(0.8 * 0.5 * 2.0)
    # alpha scales the log-prob only, not the critics' value
    y = soft_q_target(_t(0.0), _t(0.0), _t(3.0), _t(3.0), _t(-1.0), 1.0, 0.5)
    assert y.item() == pytest.approx(3.0 + 0.5)


def test_column_and_vector_shapes_agree():
    g = torch.Generator().manual_seed(1)
    r, q1, q2, lp = (torch.randn(6, generator=g) for _ in range(4))
    d = torch.tensor([0, 1, 0, 0, 1, 0], dtype=torch.float32)
    y_vec = soft_q_target(r, d, q1, q2, lp, 0.99, 0.2)
    col = lambda x: x.unsqueeze(-1)
    y_col = soft_q_target(col(r), col(d), col(q1), col(q2), col(lp), 0.99, 0.2)
    assert y_vec.shape == (6,) and y_col.shape == (6, 1)
    assert torch.allclose(y_col.squeeze(-1), y_vec)


@pytest.mark.parametrize("bad", ["reward", "terminated", "next_q1", "next_q2", "next_log_prob"])
def test_mismatched_shapes_raise_instead_of_broadcasting(bad):
    names = ("reward", "terminated", "next_q1", "next_q2", "next_log_prob")
    args = {name: torch.zeros(5) for name in names}
    args[bad] = torch.zeros(5, 1)
    with pytest.raises(ValueError, match="shape"):
        soft_q_target(**args, gamma=0.99, alpha=0.2)


def test_no_b_by_b_broadcast():
    z4, z41, z1 = torch.zeros(4), torch.zeros(4, 1), torch.zeros(1)
    with pytest.raises(ValueError):
        soft_q_target(z4, z41, z41, z41, z41, 0.9, 0.1)
    with pytest.raises(ValueError):
        soft_q_target(z4, z4, z1, z1, z1, 0.9, 0.1)


def test_result_has_no_gradient():
    log_alpha = torch.tensor(math.log(0.3), requires_grad=True)
    q1, q2, lp, r = (torch.randn(4, requires_grad=True) for _ in range(4))
    y = soft_q_target(r, torch.zeros(4), q1, q2, lp, 0.99, log_alpha.exp())
    assert not y.requires_grad and y.grad_fn is None
    pred = torch.randn(4, requires_grad=True)
    ((pred - y) ** 2).sum().backward()
    assert torch.allclose(pred.grad, 2 * (pred.detach() - y))
    assert all(t.grad is None for t in (log_alpha, q1, q2, lp, r))


def test_no_gradient_even_with_grad_mode_on_and_column_alpha():
    alpha = torch.full((1,), 0.2, requires_grad=True)   # e.g. exp of a log_alpha of shape [1]
    with torch.enable_grad():
        y = soft_q_target(torch.zeros(3, 1), torch.zeros(3, 1), torch.ones(3, 1, requires_grad=True),
                          torch.ones(3, 1), -torch.ones(3, 1), 0.5, alpha)
    assert y.shape == (3, 1) and not y.requires_grad
    assert torch.allclose(y, torch.full((3, 1), 0.5 * (1 + 0.2)))


def test_reads_no_tensor_values():
    """Tensors on the `meta` device have shapes but no values: any value read (`.all()`, `.item()`,
    `bool(t)`) raises. The function must run on them, because it runs at every update."""
    meta = lambda *shape: torch.zeros(*shape, device="meta")
    y = soft_q_target(meta(8), meta(8), meta(8), meta(8), meta(8), 0.99, 0.2)
    assert y.shape == (8,) and y.device.type == "meta"
    y = soft_q_target(meta(8, 1), torch.zeros(8, 1, dtype=torch.bool, device="meta"),
                      meta(8, 1), meta(8, 1), meta(8, 1), 0.99, meta(()))
    assert y.shape == (8, 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_is_preserved(dtype):
    x = torch.ones(3, dtype=dtype)
    y = soft_q_target(x, torch.zeros(3, dtype=torch.bool), x, x, x, 0.9, 0.1)
    assert y.dtype == dtype


def test_bool_and_float_terminated_agree():
    g = torch.Generator().manual_seed(2)
    r, q1, q2, lp = (torch.randn(8, generator=g) for _ in range(4))
    d_bool = torch.tensor([True, False] * 4)
    assert torch.equal(soft_q_target(r, d_bool, q1, q2, lp, 0.9, 0.2),
                       soft_q_target(r, d_bool.float(), q1, q2, lp, 0.9, 0.2))


def test_tensor_gamma_and_alpha():
    x = _t(1.0, 2.0)
    y_float = soft_q_target(x, torch.zeros(2), x, x, -x, 0.9, 0.3)
    y_tensor = soft_q_target(x, torch.zeros(2), x, x, -x, torch.tensor(0.9), torch.tensor(0.3))
    assert torch.allclose(y_float, y_tensor)


def test_gamma_zero_and_alpha_zero():
    x = _t(1.0, -2.0)
    assert torch.equal(soft_q_target(x, torch.zeros(2), x * 10, x * 10, x, 0.0, 0.7), x)
    y = soft_q_target(torch.zeros(2), torch.zeros(2), x, x + 1, _t(-100.0, 100.0), 1.0, 0.0)
    assert torch.equal(y, x)   # alpha = 0: no entropy term at all


def test_non_tensor_inputs_fail_loudly():
    x = torch.zeros(2)
    with pytest.raises((TypeError, AttributeError)):
        soft_q_target([0.0, 0.0], x, x, x, x, 0.9, 0.1)
