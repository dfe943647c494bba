"""sac_lit: Soft Actor-Critic built from first principles in a literate Jupyter book.

The names here are what you train and build with. Every module except this file and `__main__.py`
is generated from the notebooks in `notebooks/` by nbdev; the book's other exhibits (the entropy of
any distribution, soft value iteration, FLOP counts, the IQM, ...) stay importable from the module of
their chapter.
"""

__version__ = "0.1.0"

from .entropy import bernoulli_entropy, gaussian_entropy
from .targets import soft_q_target
from .critic import TwinQ, critic_loss, polyak_update
from .policy import ActionMap, SquashedGaussianActor, squashed_gaussian_log_prob
from .temperature import Temperature, actor_loss, temperature_loss
from .buffer import Batch, ReplayBuffer
from .agent import SAC, SACConfig
from .loop import (Callback, Divergence, Evaluation, ProgressBar, Run, RunConfig, Trainer,
                   TrainingDiverged, evaluate, make_env)
from .train import Checkpoints, MetricsFiles, RunDir, train
from .sweep import sweep
from .seeds import BatchedSAC, SeedList, seeds_learner
from .compiled import CompiledUpdate, compiled
from .custom import BestModel, EarlyStop, EnvSpec, TensorBoard, export_policy, record_video
from .batchrenorm import BatchRenorm
from .crossq import CrossQ, CrossQConfig

__all__ = [
    # the pieces of SAC (chapters 1-8)
    "gaussian_entropy", "bernoulli_entropy", "soft_q_target", "TwinQ", "critic_loss",
    "polyak_update", "squashed_gaussian_log_prob", "SquashedGaussianActor", "ActionMap",
    "actor_loss", "temperature_loss", "Temperature", "ReplayBuffer", "Batch",
    # the agent (chapter 9)
    "SACConfig", "SAC",
    # training (chapters 10-11)
    "RunConfig", "Run", "Trainer", "Callback", "Evaluation", "ProgressBar", "Divergence",
    "evaluate", "make_env", "TrainingDiverged", "RunDir", "MetricsFiles", "Checkpoints",
    "train",
    # many runs (chapters 14, 16) and a faster update (chapter 17)
    "sweep", "BatchedSAC", "SeedList", "seeds_learner", "CompiledUpdate", "compiled",
    # your own problem, deployment, logging (chapter 18); SAC.predict is a method
    "EnvSpec", "TensorBoard", "BestModel", "EarlyStop", "export_policy", "record_video",
    # beyond SAC: Batch Renormalization (chapter 19) and CrossQ (chapter 20), which train()
    # builds from a CrossQConfig
    "BatchRenorm", "CrossQConfig", "CrossQ",
]
