"""The peer library, set up once for every benchmark: Stable-Baselines3's SAC
with sac_lit's default hyper-parameters (SACConfig())."""
from __future__ import annotations


def sb3_sac(env_id: str, seed: int, learning_starts: int = 1_000):
    "SB3 SAC('MlpPolicy') on `env_id` with the hyper-parameters of SACConfig()."
    import gymnasium as gym
    from stable_baselines3 import SAC
    return SAC("MlpPolicy", gym.make(env_id), seed=seed, device="cpu",
               learning_rate=3e-4, buffer_size=1_000_000,
               learning_starts=learning_starts, batch_size=256, tau=0.005,
               gamma=0.99, train_freq=1, gradient_steps=1, ent_coef="auto",
               policy_kwargs={"net_arch": [256, 256]}, verbose=0)
