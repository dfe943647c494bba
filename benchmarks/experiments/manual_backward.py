"""Is autograd the overhead? BatchedSAC.update, backward passes by hand.

Chapter 16's BatchedSAC.update lets autograd build and walk a graph for the
critic step and the policy step. ManualSAC below does the same update with
the backward passes written out by hand (the ReLU MLPs' chain rule, the
squashed Gaussian's d log pi / du = 2 tanh(u), the log-std clamp's mask, the
min over the twin critics), so no autograd graph is built at all. Before
timing, three updates of both on the same batch and noise must agree: the
metrics, gradients and parameters to 1e-5, or the script stops.

Then both run in turns (a round of updates each, 7 rounds) for K = 1 and
K = 4 seeds, 2 threads, with sac_lit.seeds.tune_allocator(); the script
prints the median milliseconds per update and writes
benchmarks/experiments/results/manual_backward.json with provenance.

    .venv/bin/python benchmarks/manual_backward.py        # ~1 min
"""
from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from sac_lit import SAC
from sac_lit.buffer import Batch
from sac_lit.critic import polyak_update
from sac_lit.seeds import BatchedSAC, StackedLinear, tune_allocator

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import provenance, write_result  # noqa: E402


def layers_of(module) -> list[tuple]:
    "(W, b) of each StackedLinear in a stacked network, input to output."
    return [(m.weight, m.bias) for m in module.modules()
            if isinstance(m, StackedLinear)]


@torch.no_grad()
def forward(layers, h) -> list[torch.Tensor]:
    "The input and every layer's output (after its ReLU), for backward."
    hs = [h]
    for i, (W, b) in enumerate(layers):
        z = torch.baddbmm(b, hs[-1], W)
        if i < len(layers) - 1:
            z.relu_()
        hs.append(z)
    return hs


@torch.no_grad()
def backward(layers, hs, g, weights=True, input_grad=False):
    """g = dL/d(output). The chain rule through the ReLU MLP: sets W.grad,
    b.grad (if `weights`); returns dL/d(input) if `input_grad`."""
    for i in reversed(range(len(layers))):
        W, b = layers[i]
        if weights:
            W.grad = torch.bmm(hs[i].transpose(1, 2), g)     # h_iᵀ g
            b.grad = g.sum(1, keepdim=True)
        if i > 0 or input_grad:
            g = torch.bmm(g, W.transpose(1, 2))              # g W_iᵀ
            if i > 0:
                g.masked_fill_(hs[i] <= 0, 0.0)              # ReLU'
    return g


class ManualSAC(BatchedSAC):
    "BatchedSAC.update with hand-written backward passes (no autograd)."

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.la = layers_of(self.actor)
        self.lc = layers_of(self.critic)
        self.lt = layers_of(self.critic_targ)

    def _pair_input(self, s, a):
        "[s, a] once for each of a seed's two critics: [2K, B, n]."
        x = torch.cat([s, a], -1)
        k, b, n = x.shape
        return x.unsqueeze(1).expand(k, 2, b, n).reshape(2 * k, b, n)

    def _policy(self, s, xi):
        "Chapter 6's squashed Gaussian, keeping what backward needs."
        out = forward(self.la, s)
        mean, raw = out[-1].chunk(2, dim=-1)
        log_std = raw.clamp(-20.0, 2.0)
        std = log_std.exp()
        u = mean + std * xi
        log_det = 2 * (math.log(2) - u - F.softplus(-2 * u))
        log_prob = (-0.5 * xi ** 2 - log_std - 0.5 * math.log(2 * math.pi)
                    - log_det).sum(-1)
        return out, raw, std, u, torch.tanh(u), log_prob

    @torch.no_grad()
    def update(self, batch):
        c, alpha = self.config, self.log_alpha.detach().exp()
        s, a, r, s_next, d = batch
        k, b = r.shape
        # 1. critic step: dL/dq = 2 (q − y) / B
        *_, a_next, logp_next = self._policy(s_next, self.noise(b))
        q_t = forward(self.lt, self._pair_input(s_next, a_next))[-1]
        q_t = q_t.view(k, 2, b)
        min_t = torch.minimum(q_t[:, 0], q_t[:, 1])
        y = r + c.gamma * (1 - d) * (min_t - alpha[:, None] * logp_next)
        hs = forward(self.lc, self._pair_input(s, a))
        q = hs[-1].view(k, 2, b)
        diff = q - y[:, None]
        loss_q = (diff ** 2).mean(-1).sum(-1)
        backward(self.lc, hs, ((2.0 / b) * diff).view(2 * k, b, 1))
        self.critic_opt.step()
        # 2. policy step: through the smaller critic to ã, then to θ
        xi = self.noise(b)
        out, raw, std, u, a_pi, log_prob = self._policy(s, xi)
        hc = forward(self.lc, self._pair_input(s, a_pi))
        q_pi = hc[-1].view(k, 2, b)
        first = q_pi[:, 0] <= q_pi[:, 1]
        min_q = torch.where(first, q_pi[:, 0], q_pi[:, 1])
        loss_pi = (alpha[:, None] * log_prob - min_q).mean(-1)
        g_q = torch.stack([first, ~first], 1).to(q.dtype) * (-1.0 / b)
        g_x = backward(self.lc, hc, g_q.view(2 * k, b, 1), weights=False,
                       input_grad=True)
        g_a = g_x.view(k, 2, b, -1).sum(1)[..., self.obs_dim:]   # dJ/dã
        g_logp = (alpha / b)[:, None, None]                     # dJ/dlog π
        g_u = g_a * (1 - a_pi ** 2) + g_logp * 2 * torch.tanh(u)
        inside = (raw >= -20.0) & (raw <= 2.0)                  # the clamp
        g_log_std = (g_u * std * xi - g_logp) * inside
        backward(self.la, out, torch.cat([g_u, g_log_std], -1))
        self.actor_opt.step()
        # 3. temperature step, 4. Polyak step
        centred = log_prob + self.target_entropy
        loss_alpha = -(self.log_alpha[:, None] * centred).mean(-1)
        if self.alpha_opt is not None:
            self.log_alpha.grad = -centred.mean(-1)
            self.alpha_opt.step()
        polyak_update(self.critic_targ, self.critic, c.rho)
        return {"critic_loss": loss_q, "actor_loss": loss_pi,
                "alpha_loss": loss_alpha, "alpha": alpha,
                "entropy": -log_prob.mean(-1), "q1": q[:, 0].mean(-1),
                "q2": q[:, 1].mean(-1),
                "saturated": (a_pi.abs() > 0.99).float().mean((1, 2))}


def agents(k: int) -> list[SAC]:
    out = []
    for i in range(k):
        torch.manual_seed(i)
        out.append(SAC(17, 6))
    return out


def random_batch(k: int, b: int = 256) -> Batch:
    g = torch.Generator().manual_seed(1)
    return Batch(torch.randn(k, b, 17, generator=g),
                 torch.rand(k, b, 6, generator=g) * 2 - 1,
                 torch.randn(k, b, generator=g),
                 torch.randn(k, b, 17, generator=g),
                 (torch.rand(k, b, generator=g) < 0.1).float())


def pair(k: int):
    "The autograd and the hand-written agent, from the same K agents."
    gens = lambda: [torch.Generator().manual_seed(10 + i) for i in range(k)]
    return BatchedSAC(agents(k), gens()), ManualSAC(agents(k), gens())


def check_equal(k: int) -> float:
    ref, man = pair(k)
    batch, worst = random_batch(k), 0.0
    for _ in range(3):
        m1, m2 = ref.update(batch), man.update(batch)
        worst = max(worst, *((m1[n] - m2[n]).abs().max().item() for n in m1))
    params = lambda a: [*a.actor.parameters(), *a.critic.parameters()]
    for p, q in zip(params(ref), params(man)):
        worst = max(worst, (p - q).abs().max().item(),
                    (p.grad - q.grad).abs().max().item())
    if worst > 1e-5:
        raise SystemExit(f"hand-written backward differs by {worst:.1e}")
    return worst


def main() -> int:
    torch.set_num_threads(2)
    tune_allocator()
    started = provenance(torch_threads=2)
    record = {"threads": 2, "batch_size": 256, "rows": []}
    for k in (1, 4):
        worst = check_equal(k)
        ref, man = pair(k)
        batch = random_batch(k)
        times = {"autograd": [], "manual": []}
        n = 60 // k
        for _ in range(7):                       # in turns
            for name, agent in (("autograd", ref), ("manual", man)):
                for _ in range(3):
                    agent.update(batch)
                tic = time.perf_counter()
                for _ in range(n):
                    agent.update(batch)
                times[name].append(1e3 * (time.perf_counter() - tic) / n)
        med = {name: statistics.median(t) for name, t in times.items()}
        record["rows"].append({"k": k, "max_difference": worst,
                               "ms_per_update": med, "rounds": times})
        print(f"K={k}: autograd {med['autograd']:.2f} ms, hand-written "
              f"{med['manual']:.2f} ms per update (ratio "
              f"{med['autograd'] / med['manual']:.2f}); equal to "
              f"{worst:.1e}", flush=True)
    record["provenance"] = started
    write_result(record, ROOT / "benchmarks/experiments/results/manual_backward.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
