"""Tests of sac_lit.loop (chapter 10): the one loop, its learner and callback interfaces."""
import math

import numpy as np
import pytest
import torch

from sac_lit.agent import SAC, SACConfig
from sac_lit.loop import (EVAL_SEED, Callback, Divergence, EpisodeMetrics, Evaluation,
                          ProgressBar, Run, RunConfig, Trainer, TrainingDiverged, evaluate,
                          first_non_finite, make_env)

torch.set_num_threads(1)
TINY = SACConfig(hidden_sizes=(16, 16), batch_size=16)


def trainer(seed=0, config=RunConfig(learning_starts=50), callbacks=(), env_id="Pendulum-v1"):
    run = Run(env_id, seed, TINY.buffer_size)
    agent = SAC(run.obs_dim, run.act_dim, TINY, seed=seed)
    return Trainer([run], agent, config, callbacks)


class Events(Callback):
    "Records every call, in order."

    def __init__(self):
        self.calls = []

    def on_start(self, t): self.calls.append(("start", t.step))
    def on_step(self, t): self.calls.append(("step", t.step))
    def on_row(self, t, k, row): self.calls.append((row["kind"], t.step, k))
    def on_end(self, t): self.calls.append(("end", t.step))
    def on_close(self, t): self.calls.append(("close", t.step))


def test_callbacks_are_called_at_their_points_in_order():
    events = Events()
    trainer(callbacks=[Evaluation(150, 1), events]).fit(230)
    calls = events.calls
    assert calls[0] == ("start", 0) and calls[-2:] == [("end", 230), ("close", 230)]
    assert [c for c in calls if c[0] == "step"] == [("step", s) for s in range(1, 231)]
    assert ("episode", 200, 0) in calls and ("eval", 150, 0) in calls
    assert calls.index(("episode", 200, 0)) < calls.index(("step", 200))  # rows before on_step
    assert ("eval", 230, 0) in calls                       # once more at the end
    assert calls.index(("step", 230)) < calls.index(("eval", 230, 0))  # in on_end


def test_on_close_runs_after_an_error():
    events = Events()

    class Boom(Callback):
        def on_step(self, t):
            if t.step == 7:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        trainer(callbacks=[Boom(), events]).fit(20)
    assert events.calls[-1] == ("close", 7) and ("end", 7) not in events.calls


def test_stop_ends_training_at_that_step_and_on_end_still_runs():
    events = Events()

    class StopAt(Callback):
        def on_step(self, t):
            t.stop = t.step == 33

    t = trainer(callbacks=[StopAt(), events]).fit(100)
    assert t.step == 33 and events.calls[-2] == ("end", 33)


def test_no_update_in_the_warm_up_then_updates_per_step():
    class CountingSAC(SAC):
        updates = 0

        def update(self, batch):
            CountingSAC.updates += 1
            return super().update(batch)

    run = Run("Pendulum-v1", 0, TINY.buffer_size)
    agent = CountingSAC(run.obs_dim, run.act_dim, TINY)
    t = Trainer([run], agent, RunConfig(learning_starts=40, updates_per_step=3)).fit(60)
    assert CountingSAC.updates == 3 * 20 and t.summary()["train_steps"] == 20


def test_k_runs_with_a_learner_for_all_of_them():
    "A learner of K SAC agents, acting and updating one after the other."
    runs = [Run("Pendulum-v1", s, TINY.buffer_size) for s in (0, 1)]
    agents = [SAC(3, 1, TINY, seed=s) for s in (0, 1)]

    class Separately:
        config, device = TINY, torch.device("cpu")

        def __init__(self, agents):
            self.agents_ = agents

        @property
        def agents(self):
            return self.agents_

        def act(self, obs):
            return np.stack([a.act(o) for a, o in zip(self.agents_, obs)])

        def update(self, batch):
            assert batch.obs.shape == (2, 16, 3)          # stacked per run
            out = [a.update(type(batch)(*(x[k] for x in batch)))
                   for k, a in enumerate(self.agents_)]
            return {n: torch.stack([m[n] for m in out]) for n in out[0]}

    events = Events()
    t = Trainer(runs, Separately(agents), RunConfig(learning_starts=30),
                [Evaluation(100, 1), events]).fit(210)
    assert [r.step for r in runs] == [210, 210]
    assert {(c[0], c[2]) for c in events.calls if c[0] in ("episode", "eval")} == {
        ("episode", 0), ("episode", 1), ("eval", 0), ("eval", 1)}
    assert t.summary(1)["seed"] == 1 and t.summary(0)["seeds_in_process"] == 2
    # the same seeds, each alone, give the same warm-up episode
    alone = trainer(seed=1, config=RunConfig(learning_starts=30), callbacks=[Events()])
    assert np.array_equal(alone.runs[0].obs, Run("Pendulum-v1", 1, 10).obs)


def test_runs_at_different_steps_are_refused():
    runs = [Run("Pendulum-v1", s, 100) for s in (0, 1)]
    runs[1].env_step(runs[1].warm_up_action())
    with pytest.raises(ValueError, match="same step"):
        Trainer(runs, None, RunConfig())


def test_episode_metrics_of_k_runs_and_divergence_naming():
    sums = EpisodeMetrics(3)
    for i in range(4):
        sums.add({"critic_loss": torch.tensor([1.0, 2.0, i]), "alpha": torch.ones(3)})
    assert sums.means(2) == {"critic_loss": 1.5, "alpha": 1.0}
    sums.reset(1)
    assert sums.means(1) == {} and sums.means(0)["critic_loss"] == 1.0
    one = EpisodeMetrics(1)
    one.add({"critic_loss": torch.tensor(2.0)})               # K = 1: scalars
    assert one.means(0) == {"critic_loss": 2.0}
    assert first_non_finite({"kind": "episode", "alpha": math.nan, "actor_loss": math.inf}) \
        == "actor_loss"
    assert first_non_finite({"return": 1.0}) is None


def test_a_nan_action_names_the_loss_that_went_first():
    class Poison(Callback):
        def on_step(self, t):
            if t.step == 60:
                with torch.no_grad():
                    t.learner.critic.q2.net[0].bias[0] = math.nan

    with pytest.raises(TrainingDiverged) as err:
        trainer(callbacks=[Poison(), Divergence()]).fit(300)
    assert err.value.what == "critic_loss" and 60 < err.value.step < 200


def test_divergence_callback_stops_at_an_episode_with_a_nan_loss():
    class NanLossAgent(SAC):
        def update(self, batch):
            metrics = super().update(batch)
            return {**metrics, "alpha_loss": metrics["alpha_loss"] * math.nan}

    run = Run("Pendulum-v1", 0, TINY.buffer_size)
    agent = NanLossAgent(run.obs_dim, run.act_dim, TINY)
    with pytest.raises(TrainingDiverged) as err:
        Trainer([run], agent, RunConfig(learning_starts=50), [Divergence()]).fit(300)
    assert err.value.what == "alpha_loss" and err.value.step == 200


def test_progress_bar_counts_steps_and_shows_returns():
    class Bar:
        instances = []

        def __init__(self, total, initial, desc, unit, mininterval):
            self.n, self.total, self.desc, self.postfix, self.closed = initial, total, desc, {}, False
            Bar.instances.append(self)

        def update(self, n): self.n += n
        def set_postfix(self, post, refresh): self.postfix = post
        def set_postfix_str(self, text, refresh): self.postfix = text
        def close(self): self.closed = True

    trainer(callbacks=[Evaluation(100, 1), ProgressBar(Bar)]).fit(210)
    bar = Bar.instances[-1]
    assert bar.n == 210 and bar.total == 210 and bar.closed and bar.desc == "Pendulum-v1"
    assert set(bar.postfix) == {"return", "eval"}


def test_evaluate_discounted_returns_are_their_definition():
    "G_t = Σ_j γ^j r_{t+j} to the episode's end, from a rollout by hand (γ ≠ the default too)."
    agent = SAC(3, 1, SACConfig(hidden_sizes=(16, 16), gamma=0.9), seed=3)
    env, action_map = make_env("Pendulum-v1")
    out = evaluate(agent, env, action_map, episodes=2)
    for i in range(2):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        rewards, done = [], False
        while not done:
            obs, r, terminated, truncated, _ = env.step(
                action_map.to_env(agent.act(obs, deterministic=True)))
            rewards.append(float(r))
            done = terminated or truncated
        expected = [sum(0.9 ** j * r for j, r in enumerate(rewards[t:]))
                    for t in range(len(rewards))]
        assert len(out["discounted"][i]) == len(rewards) == 200
        assert np.allclose(out["discounted"][i], expected, rtol=1e-12, atol=1e-9)
        assert math.isclose(out["returns"][i], sum(rewards), rel_tol=1e-12)
