"""sac_lit.checks: the one-line argument checks the exported functions call."""
import math

import pytest
import torch

import sac_lit.checks
from sac_lit.checks import (check_finite, check_one_per_run, check_positive_int, check_probs,
                            check_range, check_same_shape)


def test_same_shape_accepts_equal_and_names_the_mismatch():
    check_same_shape(a=torch.zeros(3), b=torch.ones(3), c=torch.zeros(3))
    with pytest.raises(ValueError, match=r"b.*\(3, 1\)"):
        check_same_shape(a=torch.zeros(3), b=torch.zeros(3, 1))


@pytest.mark.parametrize("x, ok", [(0.0, True), (1.0, True), (0.5, True), (-1e-9, False),
                                   (1 + 1e-9, False), (math.nan, False)])
def test_range_closed(x, ok):
    if ok:
        check_range("gamma", x, 0, 1)
    else:
        with pytest.raises(ValueError, match=r"^gamma must lie in \[0, 1\]"):
            check_range("gamma", x, 0, 1)


@pytest.mark.parametrize("x", [math.inf, -math.inf])
def test_range_refuses_infinities(x):
    with pytest.raises(ValueError, match="^lr must be finite"):
        check_range("lr", x, 0, None, low_open=True)
    with pytest.raises(ValueError, match="^target_entropy must be finite"):
        check_range("target_entropy", x)


def test_range_open_ends_and_one_sided():
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        check_range("gamma", 0.0, 0, 1, low_open=True)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        check_range("rho", 1.0, 0, 1, high_open=True)
    check_range("lr", 1e9, 0, None, low_open=True)
    with pytest.raises(ValueError, match=r"\(0, inf\)"):
        check_range("lr", -1e-3, 0, None, low_open=True)


@pytest.mark.parametrize("bad", [torch.tensor(0.5), "0.5", True, None])
def test_range_refuses_non_numbers(bad):
    with pytest.raises(TypeError, match="gamma must be a real number"):
        check_range("gamma", bad, 0, 1)


def test_positive_int():
    check_positive_int(batch_size=1, steps=10**9)
    for bad, err in ((0, ValueError), (-5, ValueError), (True, TypeError), (2.0, TypeError)):
        with pytest.raises(err, match="batch_size"):
            check_positive_int(batch_size=bad)


def test_finite_names_the_culprit():
    check_finite(obs=torch.randn(5, 3), reward=[1.0, 2.0])
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="^reward holds NaN"):
            check_finite(obs=torch.zeros(2), reward=torch.tensor([0.0, bad]))


def test_probs():
    check_probs(torch.softmax(torch.randn(4, 7), -1))
    check_probs(torch.tensor([[0.3, 1.0], [0.7, 0.0]]), dim=0)
    with pytest.raises(ValueError, match="sum to 1 along dim=-1"):
        check_probs(torch.tensor([[0.3, 1.0], [0.7, 0.0]]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_probs(torch.tensor([1.2, -0.2]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_probs(torch.tensor([math.nan, 1.0]))
    with pytest.raises(ValueError, match="at least one dimension"):
        check_probs(torch.tensor(1.0))
    # float64 is held to a tighter tolerance than float32
    p = torch.tensor([0.5, 0.5 + 1e-6])
    check_probs(p)
    with pytest.raises(ValueError):
        check_probs(p.double())


def test_one_per_run():
    check_one_per_run(log_alpha=torch.zeros(()), log_prob=torch.zeros(8))
    check_one_per_run(log_alpha=torch.zeros(1), log_prob=torch.zeros(8))
    check_one_per_run(log_alpha=torch.zeros(3, 1), log_prob=torch.zeros(3, 8))
    for bad in (torch.zeros(3), torch.zeros(2, 1), torch.zeros(3, 8)):
        with pytest.raises(ValueError, match="log_alpha"):
            check_one_per_run(log_alpha=bad, log_prob=torch.zeros(3, 8))


def test_the_unused_debug_switch_is_gone():
    assert not hasattr(sac_lit.checks, "debug")
