"""Slider cases for chapter 3's soft Q-target figure (div "soft-q-target").

Sliders: α (index 0, default 0.2) and σ (index 1, default 0.3). The label the chart must show is
y = r + γ(E_{ã'~N(0.45, σ²)}[min_j Q_targ,j(s', ã')] + α·H(N(0.45, σ²))), computed here by quadrature
with NumPy from the figure's definition, independently of the notebook's code and Vega expressions.
"""
from __future__ import annotations

import math

import numpy as np

PAGE, DIV = "03_soft_bellman_target", "soft-q-target"
# the two target critics of the figure: sums of Gaussian bumps (height, centre, width)
BUMPS = {"q1": [(2.5, 0.5, 0.3), (1.5, -0.8, 0.25)], "q2": [(2.375, 0.4, 0.32), (1.75, -0.8, 0.25)]}
R, GAMMA, MU = 0.1, 0.9, 0.45


def soft_target_label(alpha: float, sigma: float) -> str:
    a = np.linspace(MU - 8 * sigma, MU + 8 * sigma, 20001)
    critics = [sum(h * np.exp(-(a - c) ** 2 / (2 * w * w)) for h, c, w in BUMPS[k]) for k in ("q1", "q2")]
    density = np.exp(-(a - MU) ** 2 / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi))
    expected_min_q = float(np.sum(np.minimum(*critics) * density) * (a[1] - a[0]))
    entropy = 0.5 * math.log(2 * math.pi * math.e * sigma ** 2)
    return f"y = {R + GAMMA * (expected_min_q + alpha * entropy):.3f}"


CASES = [
    (PAGE, DIV, 0, 0.5, soft_target_label(0.5, 0.3)),    # α moved, σ at its default
    (PAGE, DIV, 0, 0.0, soft_target_label(0.0, 0.3)),    # no entropy bonus at all
    (PAGE, DIV, 1, 0.6, soft_target_label(0.2, 0.6)),    # σ moved, α at its default
    (PAGE, DIV, 1, 0.1, soft_target_label(0.2, 0.1)),    # narrow policy: negative entropy
]
