"""Slider cases for chapter 2 (02_soft_values): the soft-optimal values over log10 α.

Each expected label is computed here with plain NumPy, independently of sac_lit and of the
notebook: soft value iteration on the chapter's three-state world, run until the sup-norm
error is far below the label's three decimals.
"""
import math

import numpy as np

PAGE, DIV_ID = "02_soft_values", "soft-values-alpha"


def _world():
    "The crossroads (0), ledge (1) and meadow (2): P[s, a, s'] and R[s, a, s']."
    P, R = np.zeros((3, 3, 3)), np.zeros((3, 3, 3))
    P[0, 0], P[0, 1], P[0, 2] = [0.1, 0.9, 0.0], [0.1, 0.0, 0.9], [1.0, 0.0, 0.0]
    P[1, 0], R[1, 0, 1] = [0.05, 0.95, 0.0], 1.0
    P[1, 1:], R[1, 1:, 0] = [1.0, 0.0, 0.0], -1.0
    P[2, :], R[2, :, 2] = [0.1, 0.0, 0.9], 0.6
    return P, R


def soft_values_label(log10_alpha: float) -> str:
    "The chart's text line at the slider value log10_alpha (a grid point, step 0.05)."
    P, R = _world()
    gamma, alpha = 0.9, 10.0 ** log10_alpha
    V = np.zeros(3)
    for _ in range(600):                    # error <= 0.9**600 * 120 < 1e-25
        Q = (P * (R + gamma * V)).sum(-1)
        m = Q.max(-1)
        V = m + alpha * np.log(np.exp((Q - m[:, None]) / alpha).sum(-1))
    return (f"α = {alpha:.3f}: V*(crossroads) = {V[0]:.3f}, "
            f"V*(ledge) = {V[1]:.3f}, V*(meadow) = {V[2]:.3f}")


# (page, chart div, slider index, value to set, text the chart must then show)
CASES = [(PAGE, DIV_ID, 0, x, soft_values_label(x)) for x in (0.5, -1.0, -0.4)]
