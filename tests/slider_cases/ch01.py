"""Browser slider cases for chapter 1 (notebooks/01_entropy.ipynb).

Each case is (page_name, div_id, slider_index, value, expected_text): set the
slider to `value` and wait for `expected_text` in the chart's SVG. The expected
numbers are computed here with numpy, independently of sac_lit: the binary
entropy by its closed form, the Gaussian entropy by numerical quadrature of
-∫ p(x) log p(x) dx.
"""
import math

import numpy as np

PAGE = "01_entropy"


def _label(h: float) -> str:
    "How both charts print an entropy (the page writes a Unicode minus)."
    return f"{h:.3f} nats"


def binary_entropy(p_a: float) -> float:
    "h(p_A) = -p_A log p_A - (1 - p_A) log(1 - p_A), with 0 log 0 = 0."
    h = -sum(q * math.log(q) for q in (p_a, 1.0 - p_a) if q > 0)
    return h + 0.0                      # -0.0 -> 0.0


def gaussian_entropy_quadrature(sigma: float) -> float:
    "-∫ p log p dx for N(0, σ²), trapezoid rule on ±12σ (error << 1e-6)."
    x = np.linspace(-12 * sigma, 12 * sigma, 200_001)
    density = np.exp(-x**2 / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    integrand = np.where(density > 0, -density * np.log(density), 0.0)
    return float(np.trapezoid(integrand, x))


CASES = [
    # two outcomes (slider 0 = p_A, default 0.5 shows 0.693 nats)
    (PAGE, "entropy-two-outcomes", 0, 0.1, _label(binary_entropy(0.1))),
    (PAGE, "entropy-two-outcomes", 0, 0.37, _label(binary_entropy(0.37))),
    (PAGE, "entropy-two-outcomes", 0, 1.0, _label(binary_entropy(1.0))),
    # Gaussian (slider 0 = σ, default 1.0 shows 1.419 nats); negative below 0.242
    (PAGE, "entropy-gaussian", 0, 0.2, _label(gaussian_entropy_quadrature(0.2))),
    (PAGE, "entropy-gaussian", 0, 0.1, _label(gaussian_entropy_quadrature(0.1))),
    (PAGE, "entropy-gaussian", 0, 2.0, _label(gaussian_entropy_quadrature(2.0))),
]
