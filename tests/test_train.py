"""Tests of sac_lit.train (chapter 11) on chapter 10's loop: seeding, resuming, checkpoints,
Ctrl-C, divergence, the run directory's rules."""
import json
import math
import os
import signal

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.envs.classic_control.pendulum import PendulumEnv

import sac_lit.agent
from sac_lit.agent import SAC, CheckpointError, SACConfig
from sac_lit.buffer import ReplayBuffer
from sac_lit.policy import ActionMap
from sac_lit.loop import EVAL_SEED, RunConfig, TrainingDiverged, evaluate, make_env
from sac_lit.train import RunDir, RunDirError, env_state, set_env_state, train

torch.set_num_threads(1)
TINY = SACConfig(hidden_sizes=(16, 16), batch_size=16)
LOOP = RunConfig(learning_starts=50, eval_every=100, eval_episodes=1, checkpoint_every=10_000)


def loop(**changes):
    return RunConfig(**{**LOOP.to_dict(), **changes})


def run(out, steps, seed=0, **kwargs):
    if not kwargs.get("resume"):
        kwargs.setdefault("config", TINY)
        kwargs.setdefault("run_config", LOOP)
    return train(kwargs.pop("env_id", "Pendulum-v1"), steps, seed=seed, out=out,
                 progress=False, **kwargs)


def load(out):
    return torch.load(out / "checkpoint.pt", weights_only=True)


def assert_identical(x, y, path="ckpt"):
    if isinstance(x, dict):
        assert x.keys() == y.keys(), path
        for k in x:
            if k != "clock":
                assert_identical(x[k], y[k], f"{path}[{k!r}]")
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y), path
        for i, (a, b) in enumerate(zip(x, y)):
            assert_identical(a, b, f"{path}[{i}]")
    elif isinstance(x, torch.Tensor):
        assert x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y), path
    else:
        assert type(x) is type(y) and x == y, (path, x, y)


# ------------------------------------------------------------ test environments

class _InterruptAt(gym.Wrapper):
    "Pendulum that sends itself Ctrl-C after `after` steps (counted over all instances)."
    after = None

    def step(self, action):
        out = self.env.step(action)
        if _InterruptAt.after is not None:
            _InterruptAt.after -= 1
            if _InterruptAt.after == 0:
                signal.raise_signal(signal.SIGINT)
        return out


class _Corridor(gym.Env):
    """obs = [t]; the episode terminates at t = 3 in even episodes; odd ones run into the
    TimeLimit of 5 steps (truncation). Reward 1 per step."""
    observation_space = gym.spaces.Box(-1.0, 10.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self):
        self.episode, self.t = -1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        terminated = self.episode % 2 == 0 and self.t == 3
        return np.array([self.t], np.float32), 1.0, terminated, False, {}


gym.register("SacLitInterrupt-v0", entry_point=lambda **kw: _InterruptAt(PendulumEnv()),
             max_episode_steps=200)
gym.register("SacLitCorridor-v0", entry_point=_Corridor, max_episode_steps=5)


# ------------------------------------------------------------ determinism and resuming

def test_same_seed_same_run_other_seed_other_run(tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        run(tmp_path / name, 300, seed=seed)
    text = {n: (tmp_path / n / "metrics.jsonl").read_text() for n in "abc"}
    assert text["a"] == text["b"] != text["c"]
    assert_identical(load(tmp_path / "a"), load(tmp_path / "b"))
    assert '"critic_loss"' in text["a"] and '"kind": "eval"' in text["a"]


def test_resume_mid_episode_is_bit_identical(tmp_path):
    run(tmp_path / "whole", 500, seed=7)
    run(tmp_path / "parts", 130, seed=7)                    # mid-episode, before any eval
    assert load(tmp_path / "parts")["run"]["env"]["elapsed_steps"] == 130
    run(tmp_path / "parts", 333, seed=7, resume=True)       # mid-episode again
    run(tmp_path / "parts", 500, seed=7, resume=True)
    whole, parts = load(tmp_path / "whole"), load(tmp_path / "parts")
    assert_identical(whole, parts)
    assert ((tmp_path / "whole" / "metrics.jsonl").read_bytes()
            == (tmp_path / "parts" / "metrics.jsonl").read_bytes())
    # the parts that matter most, spelled out
    a, b = SAC.load(tmp_path / "whole"), SAC.load(tmp_path / "parts")
    for name in ("actor_opt", "critic_opt", "alpha_opt"):
        assert_identical(getattr(a, name).state_dict(), getattr(b, name).state_dict())
    assert whole["run"]["buffer"]["size"] == 500


def test_resume_of_a_finished_run_to_more_steps(tmp_path):
    run(tmp_path / "whole", 400, seed=3)
    run(tmp_path / "parts", 250, seed=3)
    summary = run(tmp_path / "parts", 400, seed=3, resume=True)
    assert_identical(load(tmp_path / "whole"), load(tmp_path / "parts"))
    assert ((tmp_path / "whole" / "metrics.jsonl").read_text()
            == (tmp_path / "parts" / "metrics.jsonl").read_text())
    assert summary["steps"] == 400


def test_rows_written_after_the_checkpoint_are_dropped_on_resume(tmp_path):
    run(tmp_path / "whole", 300, seed=4)
    run(tmp_path / "parts", 150, seed=4)
    with open(tmp_path / "parts" / "metrics.jsonl", "a") as f:   # a run that died later
        f.write('{"kind": "episode", "step": 999}\n')
    run(tmp_path / "parts", 300, seed=4, resume=True)
    assert ((tmp_path / "whole" / "metrics.jsonl").read_text()
            == (tmp_path / "parts" / "metrics.jsonl").read_text())


def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(tmp_path):
    config = loop(eval_every=0)
    run(tmp_path / "whole", 400, seed=6, env_id="SacLitInterrupt-v0", run_config=config)
    handler = signal.getsignal(signal.SIGINT)
    _InterruptAt.after = 260                   # 260 training steps from now (no evaluation)
    try:
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path / "parts", 400, seed=6, env_id="SacLitInterrupt-v0", run_config=config)
    finally:
        _InterruptAt.after = None
    saved = load(tmp_path / "parts")
    assert saved["step"] == 260 and saved["run"]["env"]["elapsed_steps"] == 60
    assert not (tmp_path / "parts" / "summary.json").exists()
    run(tmp_path / "parts", 400, seed=6, env_id="SacLitInterrupt-v0", resume=True)
    assert_identical(load(tmp_path / "whole"), load(tmp_path / "parts"))
    assert signal.getsignal(signal.SIGINT) is handler


def test_mujoco_run_resumes_mid_episode_exactly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                # MuJoCo may write MUJOCO_LOG.TXT here
    config = loop(learning_starts=40, eval_every=0)
    run(tmp_path / "whole", 120, seed=1, env_id="HalfCheetah-v5", run_config=config)
    run(tmp_path / "parts", 70, seed=1, env_id="HalfCheetah-v5", run_config=config)
    assert load(tmp_path / "parts")["run"]["env"]["sim"]["mujoco"].numel() > 0
    run(tmp_path / "parts", 120, seed=1, env_id="HalfCheetah-v5", resume=True)
    assert_identical(load(tmp_path / "whole"), load(tmp_path / "parts"))


def test_mujoco_state_round_trip_is_exact(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                # MuJoCo may write MUJOCO_LOG.TXT here
    a, _ = make_env("HalfCheetah-v5")
    a.reset(seed=1)
    a.action_space.seed(1)
    for _ in range(37):
        a.step(a.action_space.sample())
    saved = env_state(a)
    b, _ = make_env("HalfCheetah-v5")
    b.reset(seed=99)                           # another start, other generators
    set_env_state(b, saved)
    for _ in range(25):
        action = a.action_space.sample()
        assert np.array_equal(action, b.action_space.sample())
        (oa, ra, *_), (ob, rb, *_) = a.step(action), b.step(action)
        assert np.array_equal(oa, ob) and ra == rb
    assert np.array_equal(a.reset()[0], b.reset()[0])   # later episodes too


# ------------------------------------------------------------ checkpoints

def test_checkpoint_loads_weights_only_with_big_integers(tmp_path):
    run(tmp_path, 120, seed=0)
    state = load(tmp_path)                      # would raise on any pickled object
    pcg = state["run"]["env"]["np_random"]["state"]["state"]
    assert isinstance(pcg, int) and pcg.bit_length() > 64   # a 128-bit generator state
    env, _ = make_env("Pendulum-v1")
    env.reset(seed=123)
    set_env_state(env, state["run"]["env"])
    assert env.unwrapped.np_random.bit_generator.state == state["run"]["env"]["np_random"]
    assert state["agent"]["generator"].dtype == torch.uint8      # the noise generator
    assert state["run"]["buffer"]["rng"]["state"]["state"] > 0


def test_a_crash_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    config = loop(checkpoint_every=100, eval_every=0)
    real_save, calls = torch.save, []

    def save_then_crash(obj, f):
        calls.append(1)
        if len(calls) == 2:                     # the checkpoint at step 200
            f.write(b"half a checkpoint")
            raise OSError("simulated crash")
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", save_then_crash)
    with pytest.raises(OSError, match="simulated crash"):
        run(tmp_path, 300, seed=0, run_config=config)
    monkeypatch.setattr(torch, "save", real_save)
    assert load(tmp_path)["step"] == 100
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


@pytest.mark.parametrize("nan_from_step, checkpoint_every, last_good", [
    (170, 100, 100),      # caught by the next action (NaN policy), mid-episode
    (300, 150, 150)])     # caught by the checkpoint at the same step
def test_nan_loss_stops_names_the_loss_and_keeps_the_last_good_checkpoint(
        tmp_path, monkeypatch, nan_from_step, checkpoint_every, last_good):
    config = loop(checkpoint_every=checkpoint_every)
    real_loss, calls = sac_lit.agent.critic_loss, []
    first_bad_call = nan_from_step - LOOP.learning_starts   # update k runs at step 50 + k

    def critic_loss_going_nan(q1, q2, y):
        calls.append(1)
        loss = real_loss(q1, q2, y)
        return loss * float("nan") if len(calls) >= first_bad_call else loss

    monkeypatch.setattr(sac_lit.agent, "critic_loss", critic_loss_going_nan)
    with pytest.raises(TrainingDiverged) as err:
        run(tmp_path, 400, seed=0, run_config=config)
    assert err.value.what == "critic_loss" and "critic_loss" in str(err.value)
    assert err.value.step in (nan_from_step, nan_from_step + 1)
    state = load(tmp_path)
    assert state["step"] == last_good
    assert all(torch.isfinite(p).all() for p in state["agent"]["actor"].values())
    assert not (tmp_path / "summary.json").exists()


# ------------------------------------------------------------ what the loop stores and does

def test_terminated_is_stored_never_truncated(tmp_path):
    run(tmp_path, 30, seed=0, env_id="SacLitCorridor-v0", run_config=loop(learning_starts=30,
                                                                           eval_every=0))
    buf = ReplayBuffer(1, 1, TINY.buffer_size)
    buf.load_state_dict(load(tmp_path)["run"]["buffer"])
    t_next = buf.next_obs[:30, 0]
    d = buf.terminated[:30]
    # episodes: 3 steps ending in termination, 5 steps ending in truncation, alternately
    expected_t = np.array(([1, 2, 3] + [1, 2, 3, 4, 5]) * 4)[:30]
    assert np.array_equal(t_next, expected_t)
    expected_d = np.zeros(30)
    ends = np.cumsum(([3, 5] * 4))
    expected_d[[e - 1 for i, e in enumerate(ends) if i % 2 == 0 and e <= 30]] = 1
    assert np.array_equal(d, expected_d)
    assert np.array_equal(buf.next_obs[7], [5.0]) and np.array_equal(buf.obs[8], [0.0])


def test_pendulum_episodes_are_truncated_and_stored_with_d_zero(tmp_path):
    run(tmp_path, 210, seed=2)
    buf = ReplayBuffer(3, 1, TINY.buffer_size)
    buf.load_state_dict(load(tmp_path)["run"]["buffer"])
    assert not buf.terminated[:210].any()
    env, action_map = make_env("Pendulum-v1")
    obs, _ = env.reset(seed=2)
    for t in range(200):
        obs, *_ = env.step(action_map.to_env(buf.action[t]))
        assert np.array_equal(buf.next_obs[t], obs)
    assert not np.array_equal(buf.next_obs[199], buf.obs[200])


def test_warm_up_actions_come_from_the_seeded_action_space(tmp_path):
    run(tmp_path, 60, seed=9)
    buf = ReplayBuffer(3, 1, TINY.buffer_size)
    buf.load_state_dict(load(tmp_path)["run"]["buffer"])
    env, action_map = make_env("Pendulum-v1")
    env.action_space.seed(9)
    expected = np.array([action_map.from_env(env.action_space.sample()) for _ in range(50)])
    assert np.array_equal(buf.action[:50], expected)
    assert not np.array_equal(buf.action[50:60], expected[:10])


def test_evaluation_is_the_mean_action_and_leaves_training_rng_alone(tmp_path):
    run(tmp_path, 150, seed=0)
    agent = SAC.load(tmp_path)
    env, action_map = make_env("Pendulum-v1")
    state, noise = torch.get_rng_state(), agent.generator.get_state()
    first = evaluate(agent, env, action_map, episodes=2)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(agent.generator.get_state(), noise)      # no draw at all
    assert evaluate(agent, env, action_map, episodes=2)["returns"] == first["returns"]
    for i in range(2):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        total, done, t = 0.0, False, 0
        while not done:
            with torch.no_grad():
                mean, _ = agent.actor.head(torch.as_tensor(obs)[None])
            obs, r, term, trunc, _ = env.step(action_map.to_env(torch.tanh(mean)[0].numpy()))
            total, done, t = total + float(r), term or trunc, t + 1
        assert math.isclose(total, first["returns"][i], rel_tol=1e-12)
        g = first["discounted"][i]
        assert len(first["discounted"][i]) == len(first["q"][i]) == t == 200
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "eval"] == [100, 150]


def test_discounted_returns_follow_the_recursion(tmp_path):
    run(tmp_path, 60, seed=0)
    agent = SAC.load(tmp_path)
    env, action_map = make_env("Pendulum-v1")
    out = evaluate(agent, env, action_map, episodes=1)
    g = out["discounted"][0]
    rewards = np.empty(len(g))                  # recover r_t = G_t − γ G_{t+1}
    rewards[:-1] = g[:-1] - agent.config.gamma * g[1:]
    rewards[-1] = g[-1]
    assert math.isclose(rewards.sum(), out["returns"][0], rel_tol=1e-9)
    direct = sum(agent.config.gamma ** k * r for k, r in enumerate(rewards))
    assert math.isclose(direct, g[0], rel_tol=1e-9)
    assert out["q"][0].shape == g.shape and 0 <= out["actions_saturated"] <= 1


def test_no_updates_during_the_warm_up(tmp_path):
    summary = run(tmp_path, 420, seed=0, run_config=loop(learning_starts=250))
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    episodes = [r for r in rows if r["kind"] == "episode"]
    assert "critic_loss" not in episodes[0] and "critic_loss" in episodes[1]
    assert summary["train_steps"] == 420 - 250


def test_summary_and_run_directory(tmp_path):
    summary = run(tmp_path, 250, seed=0)
    files = sorted(os.listdir(tmp_path))
    assert files == ["best.pt", "checkpoint.pt", "config.json", "metrics.jsonl", "summary.json"]
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert summary["train_steps"] == 250 - LOOP.learning_starts and summary["train_sps"] > 0
    assert summary["final_eval_step"] == 250 and summary["episodes"] == 1
    config = json.loads((tmp_path / "config.json").read_text())
    assert config == {"env_id": "Pendulum-v1", "seed": 0, "algorithm": "sac",
                      "config": TINY.to_dict(),
                      "run_config": LOOP.to_dict(),
                      "env_spec": {"env": "Pendulum-v1", "kwargs": {}, "normalize_obs": False,
                                   "max_episode_steps": None}}


def test_a_run_touches_no_global_generator(tmp_path):
    states = (torch.get_rng_state(), np.random.get_state()[1].copy())
    run(tmp_path, 120, seed=0)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1])


# ------------------------------------------------------------ bad input

def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown environment"):
        run(None, 10, env_id="NoSuchEnv-v0")
    with pytest.raises(ValueError, match="Box"):
        run(None, 10, env_id="CartPole-v1")
    with pytest.raises(ValueError):
        run(None, 0)
    with pytest.raises(ValueError):
        run(None, 10, seed=-1)
    with pytest.raises(ValueError, match="distinct"):
        run(None, 10, seed=[1, 1])
    with pytest.raises(ValueError, match="learner"):
        run(None, 10, seed=[1, 2])                       # several seeds, no learner
    with pytest.raises(ValueError, match="needs the run directory"):
        run(None, 10, resume=True)
    with pytest.raises(TypeError, match=r"config must be a SACConfig.*dict"):
        train("Pendulum-v1", 10, config={"batch_size": 32}, progress=False)
    with pytest.raises(TypeError, match="run_config must be a RunConfig"):
        train("Pendulum-v1", 10, run_config={"eval_every": 5}, progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            train("Pendulum-v1", 10, device="cuda", progress=False)
    with pytest.raises(CheckpointError):
        run(tmp_path / "empty", 10, resume=True)
    run(tmp_path / "r", 60)
    before = {f: (tmp_path / "r" / f).read_bytes() for f in os.listdir(tmp_path / "r")}
    with pytest.raises(RunDirError, match="not empty"):
        run(tmp_path / "r", 60)                          # an existing run, no resume
    with pytest.raises(RunDirError, match="batch_size"):
        run(tmp_path / "r", 80, resume=True, config=SACConfig(**{**TINY.to_dict(), "batch_size": 8}))
    with pytest.raises(RunDirError, match="learning_starts"):
        run(tmp_path / "r", 80, resume=True, run_config=loop(learning_starts=10))
    with pytest.raises(RunDirError, match="seed"):
        run(tmp_path / "r", 80, seed=5, resume=True)
    with pytest.raises(RunDirError, match="at step 60"):
        run(tmp_path / "r", 30, resume=True)
    assert before == {f: (tmp_path / "r" / f).read_bytes() for f in os.listdir(tmp_path / "r")}
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not empty"):
        run(tmp_path / "notes", 60)
    assert os.listdir(tmp_path / "notes") == ["a.txt"]


def test_eval_settings_may_change_on_resume(tmp_path):
    run(tmp_path, 100)
    run(tmp_path, 160, resume=True, run_config=loop(eval_every=30, eval_episodes=2))
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "eval"] == [100, 120, 150, 160]
    assert len([r for r in rows if r["kind"] == "eval"][-1]["returns"]) == 2


def test_evaluation_on_float64_observations(tmp_path):
    "MuJoCo's observations are float64: evaluate() must still score them."
    env, action_map = make_env("Hopper-v5")
    assert env.observation_space.dtype == np.float64
    agent = SAC(11, 3, SACConfig(hidden_sizes=(16, 16)))
    result = evaluate(agent, env, action_map, episodes=1)
    assert len(result["returns"]) == 1 and result["q"][0].dtype == np.float32


# ------------------------------------------------------------ the rules of a run directory

def test_run_dir_status(tmp_path):
    d = RunDir(tmp_path / "run")
    assert d.status(100) == "new"
    (tmp_path / "run").mkdir()
    assert d.status(100) == "new"                        # empty
    run(tmp_path / "run", 60)
    assert d.status(60) == "finished" and d.status(100) == "resumable"
    (tmp_path / "dead").mkdir()
    for name in ("config.json", "metrics.jsonl"):        # died before its checkpoint
        (tmp_path / "dead" / name).write_text("{}")
    assert RunDir(tmp_path / "dead").status(100) == "unsaved"
    (tmp_path / "dead" / "notes.txt").write_text("mine")
    assert RunDir(tmp_path / "dead").status(100) == "occupied"
    with pytest.raises(RunDirError):
        RunDir(tmp_path / "dead").clear_unsaved()        # never deletes what it did not write
    assert sorted(os.listdir(tmp_path / "dead")) == ["config.json", "metrics.jsonl", "notes.txt"]
    (tmp_path / "dead" / "notes.txt").unlink()
    RunDir(tmp_path / "dead").clear_unsaved()
    assert os.listdir(tmp_path / "dead") == []
