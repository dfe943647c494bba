"""Browser slider cases for chapter 7 (notebooks/07_policy_and_temperature.ipynb).

Each case is (page_name, div_id, slider_index, value, expected_text): set the
slider to `value` and wait for `expected_text` in the chart's SVG. The chart
"temperature-dial" has one slider, log10 α, and labels the entropy of the
Boltzmann policy p*(ã) ∝ exp(r(ã)/α) on (-1, 1) for r(ã) = -(ã - 0.3)²/(2·0.2),
with the direction a temperature step would move α (target entropy -1).

Computed here independently of sac_lit and of the notebook's trapezoid rule:
p* is a normal N(0.3, 0.2·α) truncated to (-1, 1), whose entropy has the closed
form log(√(2πe)·σ·Z) + (a·φ(a) - b·φ(b)) / (2Z), with a, b the standardised
bounds, φ the standard normal density and Z = Φ(b) - Φ(a).
"""
import math

PAGE = "07_policy_and_temperature"
A0, C, TARGET = 0.3, 0.2, -1.0


def truncated_normal_entropy(alpha: float) -> float:
    sigma = math.sqrt(C * alpha)
    a, b = (-1 - A0) / sigma, (1 - A0) / sigma
    phi = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))          # noqa: E731
    z = cdf(b) - cdf(a)
    return (math.log(math.sqrt(2 * math.pi * math.e) * sigma * z)
            + (a * phi(a) - b * phi(b)) / (2 * z))


def _label(log10_alpha: float) -> str:
    h = truncated_normal_entropy(10.0 ** log10_alpha)
    side, move = ("above", "down") if h > TARGET else ("below", "up")
    return (f"α = {10.0 ** log10_alpha:.3g}: entropy {h:.2f} nats, {side} the "
            f"target -1, so α goes {move}")


CASES = [
    # slider 0 = log10 α (default -1.0)
    (PAGE, "temperature-dial", 0, -2.0, _label(-2.0)),
    (PAGE, "temperature-dial", 0, -1.2, _label(-1.2)),
    (PAGE, "temperature-dial", 0, 0.4, _label(0.4)),
]
