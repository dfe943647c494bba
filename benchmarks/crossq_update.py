"""One CrossQ update of sac_lit against sb3-contrib's, from the same weights and batches.

Both agents are built for HalfCheetah-v5 with the same hyper-parameters
(2x256 actor and critics, step sizes 1e-3, Adam beta1 0.5, policy delay 3,
BatchRenorm momentum 0.01 and eps 1e-3); sac_lit's weights, running statistics
and log(alpha) are copied into sb3-contrib's networks. Then both make the same
updates on the same minibatches (transitions from uniformly random actions),
with the same Gaussian noise xi: sac_lit's `noise` and torch's `Normal.rsample`
(which sb3-contrib samples through) read one list of draws. After every update
the script compares the losses and every parameter and running statistic.

The two differ by design in four ways, which the script names and measures:
  * the variance in BatchRenorm: sb3-contrib's `x.var(dim=0)` divides by
    |B| - 1, sac_lit's (as BatchNorm1d's normalisation) by |B|;
  * log(1 - tanh(u)^2): sb3-contrib adds 1e-6 inside the log, sac_lit uses the
    exact form 2 (log 2 - u - softplus(-2u));
  * the critic loss: sb3-contrib's is half of sac_lit's;
  * after the warm-up, where eps enters the renormalised output (sb3-contrib
    places it as the CrossQ authors' code does; sac_lit as Ioffe's paper): sac_lit's
    training pass computes exactly its evaluation-mode function
    (z - mu_run) / sqrt(var_run + eps) when no clip binds, sb3-contrib's only
    as eps -> 0.
Each phase (batch normalisation, during the warm-up; renormalisation, after it)
is run as shipped (float32) and "aligned": float64, and sb3-contrib's update
made |B|-based in its variance, without the 1e-6, with its critic loss doubled
(patched for the duration of its update). The policy delay is aligned in both:
sac_lit steps the policy on updates 1, 4, 7, ..., sb3-contrib on 3, 6, 9, ...;
its update counter starts at 2 here. Aligned, the batch-normalisation phase
must agree within 1e-5 in losses and every tensor (exit status 1 otherwise);
the renormalisation phase keeps the eps difference.

A last measurement isolates the eps difference: one renormalising training pass
of each layer alone, on the same batch and running statistics, for eps from
1e-3 to 1e-9; the gap must shrink with eps.

The starting weights are sac_lit's, with its log-std head scaled by 0.25 and
the noise clipped to [-3, 3], so that no tanh(u) rounds to +-1, where
log(1 - tanh(u)^2) as sb3-contrib forms it has no digits left; and the running
statistics of one batch, so that evaluation mode sees standardised inputs.

    .venv/bin/python -m pip install --no-deps -r benchmarks/requirements.txt
    .venv/bin/python benchmarks/crossq_update.py     # ~1 min
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import provenance, write_result  # noqa: E402

ENV_ID, UPDATES, TOLERANCE = "HalfCheetah-v5", 7, 1e-5


def layers(modules, kinds):
    "The modules of the given kinds, in order."
    return [m for m in modules if isinstance(m, kinds)]


def copy_into_sb3(ours, sb3) -> None:
    "sac_lit's weights, statistics and log α into sb3-contrib's networks."
    import torch
    from sb3_contrib.common.torch_layers import BatchRenorm1d
    from sac_lit.batchrenorm import BatchRenorm
    kinds = (torch.nn.Linear, BatchRenorm, BatchRenorm1d)
    pairs = [(ours.actor.head.trunk, sb3.actor.latent_pi),
             ([ours.actor.head.mean], [sb3.actor.mu]),
             ([ours.actor.head.log_std], [sb3.actor.log_std]),
             (ours.critic.q1.net, sb3.critic.qf0),
             (ours.critic.q2.net, sb3.critic.qf1)]
    with torch.no_grad():
        for a, b in pairs:
            for m, n in zip(layers(a, kinds), layers(b, kinds), strict=True):
                assert type(m).__name__[:5] == type(n).__name__[:5], (m, n)
                for x, y in zip(tensors_of(m), tensors_of(n), strict=True):
                    y.copy_(x)
        sb3.log_ent_coef.copy_(ours.temperature.log_alpha.reshape(1))


def tensors_of(module):
    "Weights and statistics of a Linear or BatchRenorm, in a shared order."
    if hasattr(module, "ra_mean"):                         # sb3-contrib
        return [module.scale, module.bias, module.ra_mean, module.ra_var,
                module.steps]
    if hasattr(module, "running_mean"):                    # sac_lit
        return [module.weight, module.bias, module.running_mean,
                module.running_var, module.steps]
    return [module.weight, module.bias]


def all_tensors(ours, sb3):
    "(name, ours, sb3's) for every parameter and statistic."
    import torch
    from sb3_contrib.common.torch_layers import BatchRenorm1d
    from sac_lit.batchrenorm import BatchRenorm
    kinds = (torch.nn.Linear, BatchRenorm, BatchRenorm1d)
    pairs = {"actor": (list(ours.actor.head.trunk) + [ours.actor.head.mean,
                                                      ours.actor.head.log_std],
                       list(sb3.actor.latent_pi) + [sb3.actor.mu,
                                                    sb3.actor.log_std]),
             "critic 1": (ours.critic.q1.net, sb3.critic.qf0),
             "critic 2": (ours.critic.q2.net, sb3.critic.qf1)}
    out = []
    for name, (a, b) in pairs.items():
        for i, (m, n) in enumerate(zip(layers(a, kinds), layers(b, kinds))):
            for j, (x, y) in enumerate(zip(tensors_of(m), tensors_of(n))):
                out.append((f"{name}[{i}].{j}", x, y))
    out.append(("log α", ours.temperature.log_alpha.reshape(1),
                sb3.log_ent_coef))
    return out


@contextlib.contextmanager
def aligned(model, on: bool):
    """sb3-contrib, inside the block, with a |B|-based variance, no 1e-6 in
    its log-probability and its critic loss doubled (sac_lit's sum)."""
    import torch.nn.functional as F
    if not on:
        yield
        return
    mse, eps = F.mse_loss, model.actor.action_dist.epsilon
    model.actor.action_dist.epsilon = 0.0
    F.mse_loss = lambda *args, **kwargs: 2 * mse(*args, **kwargs)
    try:
        with aligned_variance():
            yield
    finally:
        model.actor.action_dist.epsilon, F.mse_loss = eps, mse


@contextlib.contextmanager
def drawing(queue: list):
    "torch's Normal.rsample reads its ξ from `queue` inside the block."
    import torch
    rsample = torch.distributions.Normal.rsample
    torch.distributions.Normal.rsample = (
        lambda self, sample_shape=(): self.loc + self.scale * queue.pop(0))
    try:
        yield
    finally:
        torch.distributions.Normal.rsample = rsample


def settle(ours, batch) -> None:
    """Running statistics of one batch in every BatchRenorm (momentum 1 for
    one training pass), so that evaluation mode sees standardised inputs, as
    in a trained agent; fresh statistics (0 and 1) saturate tanh."""
    import torch
    from sac_lit.batchrenorm import BatchRenorm
    from sac_lit.crossq import joint_q, training
    norms = [m for m in (*ours.actor.modules(), *ours.critic.modules())
             if isinstance(m, BatchRenorm)]
    s, a, _, s_next, _ = batch
    for m in norms:
        m.momentum = 1.0
    with torch.no_grad(), training(ours.actor), training(ours.critic):
        a_next, _ = ours.actor(s_next, torch.zeros_like(a))
        joint_q(ours.critic, s, a, s_next, a_next)
    for m in norms:
        m.momentum = ours.config.momentum


def compare(phase: str, aligned_on: bool, bn_eps: float, batches,
            xis) -> dict:
    "UPDATES updates of both agents; the largest gaps after each."
    import torch
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.type_aliases import ReplayBufferSamples
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from peers import sb3_crossq
    from sac_lit.crossq import CrossQ, CrossQConfig
    warm = {"batch norm": (10**9, 10**9), "renorm": (0, -1)}[phase]
    model = sb3_crossq(ENV_ID, 0)
    for m in model.policy.modules():              # its warm-up: > steps
        if hasattr(m, "warmup_steps"):
            m.warmup_steps, m.eps = warm[1], bn_eps
    obs_dim, act_dim = model.observation_space.shape[0], model.action_space.shape[0]
    ours = CrossQ(obs_dim, act_dim, CrossQConfig(renorm_warmup=warm[0],
                                                    bn_eps=bn_eps), seed=0)
    dtype = torch.float64 if aligned_on else torch.float32
    with torch.no_grad():                  # log σ within ±0.7: no tanh
        ours.actor.head.log_std.weight.mul_(0.25)      # rounds to ±1
    batches = [tuple(x.to(dtype) for x in b) for b in batches]
    if aligned_on:
        for module in (ours.actor, ours.critic, ours.temperature,
                       model.policy):
            module.double()
        model.log_ent_coef.data = model.log_ent_coef.data.double()
    settle(ours, batches[0])
    copy_into_sb3(ours, model)
    model.set_logger(configure(None, []))
    model._n_updates = 2                          # its policy steps: 3, 6, ...
    ours_xi = [xi.to(dtype) for xi in xis]
    sb3_xi = list(ours_xi)
    ours.noise = lambda s: ours_xi.pop(0)
    rows = []
    for k, (s, a, r, s_next, d) in enumerate(batches[1:], start=1):
        model.replay_buffer.sample = (lambda *args, _b=ReplayBufferSamples(
            s, a, s_next, d[:, None], r[:, None]), **kw: _b)
        policy_step = ours.updates % 3 == 0
        m = ours.update((s, a, r, s_next, d))
        with drawing(sb3_xi), aligned(model, aligned_on):
            model.train(gradient_steps=1, batch_size=len(s))
        log = model.logger.name_to_value
        half = 1 if aligned_on else 2             # sb3-contrib's is half
        gaps = {"critic loss": abs(float(m["critic_loss"]) / half
                                   - log["train/critic_loss"])}
        if policy_step:
            gaps["actor loss"] = abs(float(m["actor_loss"])
                                     - log["train/actor_loss"])
            gaps["α loss"] = abs(float(m["alpha_loss"])
                                 - log["train/ent_coef_loss"])
        worst, gap = max(((name, float((x.detach().float() - y.detach()
                                        .float()).abs().max()))
                          for name, x, y in all_tensors(ours, model)),
                         key=lambda pair: pair[1])
        gaps["parameters"] = gap
        rows.append({"update": k, "policy_step": policy_step,
                     "critic_loss": float(m["critic_loss"]) / half,
                     "largest_gap_at": worst,
                     "gaps": {key: float(v) for key, v in gaps.items()}})
        assert len(ours_xi) == len(sb3_xi)        # the same draws consumed
    return {"phase": phase, "aligned": aligned_on, "bn_eps": bn_eps,
            "updates": rows,
            "largest": max(max(row["gaps"].values()) for row in rows)}


def layer_gap(eps: float) -> float:
    """Largest |output| gap of one renormalising training pass (float64,
    |B|-based variance in both): sac_lit's BatchRenorm against sb3-contrib's
    BatchRenorm1d, same batch and running statistics, features whose
    variances span 1e-4 to 1e2 and whose running statistics lag."""
    import torch
    from sb3_contrib.common.torch_layers import BatchRenorm1d
    from sac_lit.batchrenorm import BatchRenorm
    gen = torch.Generator().manual_seed(2)
    scale = torch.logspace(-2, 1, 64, dtype=torch.float64)
    z = torch.randn(512, 64, generator=gen, dtype=torch.float64) * scale + 1
    ours = BatchRenorm(64, eps=eps, warmup=0).double()
    theirs = BatchRenorm1d(64, eps=eps, warmup_steps=-1).double()
    with torch.no_grad():
        for m, mean, var in ((ours, "running_mean", "running_var"),
                             (theirs, "ra_mean", "ra_var")):
            getattr(m, mean).copy_(1 + 0.5 * scale)   # δ within its clip
            getattr(m, var).copy_(scale**2 * 1.5)    # κ within its clip
        with aligned_variance():
            gap = (ours(z) - theirs(z)).abs().max()
    return float(gap)


@contextlib.contextmanager
def aligned_variance():
    "torch.Tensor.var divides by |B| unless told otherwise, in the block."
    import torch
    var = torch.Tensor.var

    def biased(self, *args, **kwargs):
        kwargs.setdefault("correction", 0)
        return var(self, *args, **kwargs)
    torch.Tensor.var = biased
    try:
        yield
    finally:
        torch.Tensor.var = var


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" /
                   "results" / "crossq_update.json")
    args = p.parse_args(argv)
    import torch
    from sac_lit.loop import Run
    torch.set_num_threads(1)
    warm = Run(ENV_ID, seed=0, buffer_size=10_000)
    for _ in range(2000):                         # uniformly random actions
        if warm.env_step(warm.warm_up_action()):
            warm.end_episode()
    batches = [warm.buffer.sample(256) for _ in range(UPDATES + 1)]
    gen = torch.Generator().manual_seed(1)
    xis = [torch.randn(256, warm.act_dim, generator=gen).clamp(-3, 3)
           for _ in range(2 * UPDATES)]
    plan = [("batch norm", False, 1e-3), ("batch norm", True, 1e-3),
            ("renorm", False, 1e-3), ("renorm", True, 1e-3)]
    settings = [compare(phase, on, eps, batches, xis)
                for phase, on, eps in plan]
    for s in settings:
        label = "aligned" if s["aligned"] else "as shipped"
        print(f"{s['phase']:>10}, {label:>10}, ε_BN {s['bn_eps']:.0e}: "
              f"largest gap over {UPDATES} updates {s['largest']:.2e}")
        for row in s["updates"]:
            gaps = ", ".join(f"{k} {v:.1e}" for k, v in row["gaps"].items())
            print(f"    update {row['update']}: {gaps} (critic loss "
                  f"{row['critic_loss']:.3g})")
    ok = all(s["largest"] < TOLERANCE for s in settings
             if s["aligned"] and s["phase"] == "batch norm")
    eps_gaps = {eps: layer_gap(eps) for eps in (1e-3, 1e-5, 1e-7, 1e-9)}
    for eps, gap in eps_gaps.items():
        print(f"one renormalising pass, ε_BN {eps:.0e}: largest output gap "
              f"{gap:.1e}")
    import sb3_contrib
    write_result({"env": ENV_ID, "updates": UPDATES, "tolerance": TOLERANCE,
                  "aligned_within_tolerance": ok, "settings": settings,
                  "renorm_layer_gap_by_eps": [[e, g] for e, g in
                                              eps_gaps.items()],
                  "provenance": provenance(
                      torch_threads=1, sb3_contrib=sb3_contrib.__version__)},
                 args.out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
