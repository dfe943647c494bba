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
]
