"""sac_lit: Soft Actor-Critic built from first principles in a literate Jupyter book.

Every module except this file is generated from the notebooks in `notebooks/` by nbdev; edit the
notebook, then run `make export`. The public names are re-exported here as chapters add them.
"""

__version__ = "0.1.0"

from .entropy import bernoulli_entropy, entropy, gaussian_entropy
from .values import (soft_greedy_policy, soft_max_value, soft_policy_evaluation, soft_state_value,
                     soft_value_discrete, soft_value_iteration)
from .targets import soft_q_target
from .critic import QNetwork, TwinQ, critic_loss, make_target, polyak_update
from .gaussian import LOG_STD_MAX, LOG_STD_MIN, GaussianHead, bound_log_std, rsample
from .policy import ActionMap, SquashedGaussianActor, squashed_gaussian_log_prob
from .temperature import Temperature, actor_loss, temperature_loss
from .buffer import Batch, ReplayBuffer, nbytes_per_transition
from .agent import SAC, SACConfig
from .train import TrainingDiverged, evaluate, train
from .speed import matmul_gflops, roofline, update_flops
from .sweep import iqm, iqm_ci, sweep
from .seeds import BatchedSAC, train_seeds
from .compiled import CompiledUpdate

__all__ = [
    # chapter 1: entropy
    "entropy", "bernoulli_entropy", "gaussian_entropy",
    # chapter 2: soft value functions
    "soft_state_value", "soft_value_discrete", "soft_greedy_policy", "soft_max_value",
    "soft_policy_evaluation", "soft_value_iteration",
    # chapter 3: the soft Bellman target
    "soft_q_target",
    # chapter 4: twin critics
    "QNetwork", "TwinQ", "make_target", "polyak_update", "critic_loss",
    # chapter 5: the reparameterisation trick
    "LOG_STD_MIN", "LOG_STD_MAX", "bound_log_std", "GaussianHead", "rsample",
    # chapter 6: the squashed Gaussian policy
    "squashed_gaussian_log_prob", "SquashedGaussianActor", "ActionMap",
    # chapter 7: the policy and temperature losses
    "actor_loss", "temperature_loss", "Temperature",
    # chapter 8: the replay buffer
    "ReplayBuffer", "Batch", "nbytes_per_transition",
    # chapters 9-10: the agent and its training loop
    "SACConfig", "SAC", "train", "evaluate", "TrainingDiverged",
    # chapter 12: making SAC fast
    "update_flops", "matmul_gflops", "roofline",
    # chapter 13: sweeps and their statistics
    "sweep", "iqm", "iqm_ci",
    # chapter 15: many seeds in one process
    "BatchedSAC", "train_seeds",
    # chapter 16: the whole update compiled
    "CompiledUpdate",
]
