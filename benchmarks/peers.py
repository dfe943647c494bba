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
