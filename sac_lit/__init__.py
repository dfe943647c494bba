"""sac_lit: Soft Actor-Critic built from first principles in a literate Jupyter book.

Every module except this file is generated from the notebooks in `notebooks/` by nbdev; edit the
notebook, then run `make export`. The public names are re-exported here as chapters add them.
"""

__version__ = "0.1.0"

from .entropy import bernoulli_entropy, entropy, gaussian_entropy

__all__ = ["entropy", "bernoulli_entropy", "gaussian_entropy"]
