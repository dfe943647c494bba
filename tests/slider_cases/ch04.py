"""Slider cases for chapter 4's overestimation figure (div "critic-overestimation").

Sliders: K, the number of actions (index 0, default 10), and σ, the noise level (index 1, default 1).
The chart's label shows each estimator's mean error; the case checks the single critic's,
σ·E[max of K independent standard normals], computed here by quadrature of z·K·φ(z)·Φ(z)^(K−1)
with NumPy and math.erf, independently of the notebook's code and Vega expressions.
"""
from __future__ import annotations

import math

import numpy as np

PAGE, DIV = "04_clipped_double_q", "critic-overestimation"


def one_critic_label(k: int, sigma: float) -> str:
    z = np.linspace(-10, 10, 200001)
    pdf = np.exp(-z ** 2 / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    e_max = float(np.sum(z * k * pdf * cdf ** (k - 1)) * (z[1] - z[0]))
    return f"one critic {sigma * e_max:+.3f}"


CASES = [
    (PAGE, DIV, 0, 2, one_critic_label(2, 1.0)),       # K moved: E max of two = 1/√π
    (PAGE, DIV, 0, 1, one_critic_label(1, 1.0)),       # one action: nothing to select, bias 0
    (PAGE, DIV, 0, 50, one_critic_label(50, 1.0)),
    (PAGE, DIV, 1, 0.5, one_critic_label(10, 0.5)),    # σ moved, K at its default
    (PAGE, DIV, 1, 2.0, one_critic_label(10, 2.0)),
]
