"""Slider cases for chapter 6's figure "Squashed Gaussian distribution" (div "squashed-gaussian").

Sliders: μ (index 0, default 0) and σ (index 1, default 0.5). The chart prints
"H(ã) = <value> nats = H(u) + E[log(1 − tanh² u)]" and "H(u) = <value> nats = ½ log(2πeσ²)".
The expected entropies are computed here with NumPy, independently of sac_lit and of the
page's Vega expressions and ξ grid: the entropy of ã = tanh(u), u ~ N(μ, σ²), is the integral
−∫ p(ã) log p(ã) dã of the density p(ã) = N(atanh ã; μ, σ²) / (1 − ã²), evaluated after the
substitution ã = tanh t (dã = dt / cosh² t) by the trapezoid rule on μ ± 12σ; log(1 − tanh² t)
is written as −2 log cosh t. H(u) is −∫ N log N by the same rule.
"""
from __future__ import annotations

import math

import numpy as np

PAGE, DIV = "06_squashed_gaussian", "squashed-gaussian"
MU_DEFAULT, SIGMA_DEFAULT = 0.0, 0.5


def _grid(mu: float, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.linspace(mu - 12 * sigma, mu + 12 * sigma, 400_001)
    log_gauss = -0.5 * ((t - mu) / sigma) ** 2 - math.log(sigma * math.sqrt(2 * math.pi))
    return t, log_gauss, np.exp(log_gauss)


def squashed_entropy(mu: float, sigma: float) -> float:
    "H(ã) = −∫ p(ã) log p(ã) dã = −∫ N(t) log p(tanh t) dt, log p(tanh t) = log N(t) + 2 log cosh t."
    t, log_gauss, gauss = _grid(mu, sigma)
    log_p = log_gauss + 2 * np.log(np.cosh(t))
    return float(np.trapezoid(-gauss * log_p, t))


def gaussian_entropy(mu: float, sigma: float) -> float:
    t, log_gauss, gauss = _grid(mu, sigma)
    return float(np.trapezoid(-gauss * log_gauss, t))


def squashed_label(mu: float, sigma: float) -> str:
    return f"H(ã) = {squashed_entropy(mu, sigma):.3f} nats"


def gaussian_label(sigma: float) -> str:
    return f"H(u) = {gaussian_entropy(0.0, sigma):.3f} nats"


CASES = [
    # μ moved, σ at its default 0.5: only H(ã) changes (symmetric in μ)
    (PAGE, DIV, 0, 1.5, squashed_label(1.5, SIGMA_DEFAULT)),
    (PAGE, DIV, 0, -2.5, squashed_label(-2.5, SIGMA_DEFAULT)),
    # σ moved, μ at its default 0: both entropies change
    (PAGE, DIV, 1, 2.0, squashed_label(MU_DEFAULT, 2.0)),
    (PAGE, DIV, 1, 0.1, squashed_label(MU_DEFAULT, 0.1)),
    (PAGE, DIV, 1, 3.0, gaussian_label(3.0)),
]
