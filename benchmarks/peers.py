"""The peer libraries, set up once for every benchmark: Stable-Baselines3's SAC
with sac_lit's default hyper-parameters (SACConfig()), and sb3-contrib's CrossQ
with CrossQConfig()'s."""
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


def evaluate_model(model, env, episodes: int = 10,
                   seed: int = 10_000) -> list[float]:
    """A Stable-Baselines3 model scored by sac_lit's protocol (chapter 10):
    the deterministic action, episode i from env.reset(seed=seed + i)."""
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def sb3_crossq(env_id: str, seed: int, learning_starts: int = 1_000):
    "sb3-contrib's CrossQ on `env_id` with the hyper-parameters of CrossQConfig()."
    import gymnasium as gym
    from sb3_contrib import CrossQ
    return CrossQ("MlpPolicy", gym.make(env_id), seed=seed, device="cpu",
                  learning_rate=1e-3, buffer_size=1_000_000,
                  learning_starts=learning_starts, batch_size=256,
                  gamma=0.99, train_freq=1, gradient_steps=1,
                  policy_delay=3, ent_coef="auto",
                  policy_kwargs={"net_arch": {"pi": [256, 256],
                                              "qf": [256, 256]},
                                 "batch_norm_momentum": 0.01,
                                 "batch_norm_eps": 1e-3,
                                 "renorm_warmup_steps": 100_000,
                                 "optimizer_kwargs": {"betas": (0.5, 0.999)}},
                  verbose=0)
