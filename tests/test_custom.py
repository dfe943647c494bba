"""Your own problem (chapter 18, sac_lit.custom): environments given as an id with gym.make's
arguments, 'module:Id' or a factory; the observation normaliser; time limits; resume on any env;
predict and the exported policy (TorchScript, ONNX) loaded without sac_lit; TensorBoard, the best
model and early stopping; videos."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch

from sac_lit.agent import SAC, SACConfig, load_checkpoint
from sac_lit.custom import (BestModel, EarlyStop, EnvSpec, PointMass, TensorBoard, export_policy,
                            record_video)
from sac_lit.loop import RunConfig, make_env
from sac_lit.train import RunDirError, train

torch.set_num_threads(1)
TINY = SACConfig(hidden_sizes=(16, 16), batch_size=16)
LOOP = RunConfig(learning_starts=50, eval_every=100, eval_episodes=1, checkpoint_every=10_000)


def run(env, out, steps, seed=0, **kwargs):
    if not kwargs.get("resume"):
        kwargs.setdefault("config", TINY)
        kwargs.setdefault("run_config", LOOP)
    return train(env, steps, seed=seed, out=out, progress=False, **kwargs)


def rows(out, kind):
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def deterministic_rows(out):
    "The metrics rows without wall-clock numbers."
    return [{k: v for k, v in r.items() if "second" not in k}
            for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())]


# -------------------------------------------------------------- environments

class Stateless(PointMass):
    "A point mass whose state sac_lit cannot read: plain attributes only."
    get_state = set_state = None


def stateless(**kwargs):
    return gym.wrappers.TimeLimit(Stateless(**kwargs), 50)


def test_an_id_with_gym_make_arguments():
    env = EnvSpec("Pendulum-v1", kwargs={"g": 3.5})()
    assert env.unwrapped.g == 3.5
    assert EnvSpec("Pendulum-v1").name == "Pendulum-v1"


def test_module_colon_id_and_module_colon_factory(tmp_path, monkeypatch):
    (tmp_path / "my_tasks.py").write_text(textwrap.dedent("""
        import gymnasium as gym
        from sac_lit.custom import PointMass
        gym.register("MyPoint-v0", entry_point=PointMass, max_episode_steps=30)
        def make_point(**kwargs):
            return gym.wrappers.TimeLimit(PointMass(**kwargs), 40)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    env = EnvSpec("my_tasks:MyPoint-v0")()
    assert isinstance(env.unwrapped, PointMass) and env.spec.max_episode_steps == 30
    env = EnvSpec("my_tasks:make_point")()
    assert isinstance(env.unwrapped, PointMass) and env._max_episode_steps == 40
    with pytest.raises(ValueError, match="cannot import"):
        EnvSpec("no_such_module_here:X")()
    with pytest.raises(ValueError, match="neither registers"):
        EnvSpec("my_tasks:Nothing")()


def test_factories_of_the_wrong_kind_are_refused():
    with pytest.raises(ValueError, match="Box action space"):
        make_env(EnvSpec(lambda: gym.make("CartPole-v1")))
    unbounded = gym.wrappers.TimeLimit(PointMass(), 10)
    unbounded.action_space = gym.spaces.Box(-np.inf, np.inf, (2,))
    with pytest.raises(ValueError, match="unbounded"):
        make_env(lambda: unbounded)
    with pytest.raises(ValueError, match="not a gymnasium Env"):
        EnvSpec(lambda: 42)()


def test_an_env_without_a_time_limit_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="no time limit.*--max-episode-steps"):
        run(EnvSpec(PointMass), tmp_path / "r", 100)
    assert not (tmp_path / "r").exists()
    summary = run(EnvSpec(PointMass, max_episode_steps=50), tmp_path / "r", 120)
    assert summary["episodes"] == 2 and summary["final_eval_return"] is not None


# -------------------------------------------------------------- the normaliser

def test_the_normaliser_learns_is_saved_and_is_frozen_in_evaluation(tmp_path):
    spec = EnvSpec("sac_lit/PointMass-v0", normalize_obs=True)
    run(spec, tmp_path / "r", 300)
    norm = load_checkpoint(tmp_path / "r")["policy"]["obs_norm"]
    assert norm is not None and norm["count"] > 300       # every step and reset
    assert norm["var"][0] > 1e4 and norm["var"][2] < 10   # millimetres vs m/s
    # evaluation leaves the statistics alone: a run without evaluations agrees
    run(spec, tmp_path / "quiet", 300, run_config=RunConfig(
        learning_starts=50, eval_every=0, eval_episodes=1, checkpoint_every=10_000))
    other = load_checkpoint(tmp_path / "quiet")["policy"]["obs_norm"]
    assert torch.equal(norm["mean"], other["mean"]) and norm["count"] == other["count"]


def test_resume_with_the_normaliser_is_bit_identical(tmp_path):
    spec = EnvSpec("sac_lit/PointMass-v0", normalize_obs=True)
    run(spec, tmp_path / "whole", 330)
    run(spec, tmp_path / "parts", 130)                     # mid-episode
    run(spec, tmp_path / "parts", 330, resume=True)
    assert deterministic_rows(tmp_path / "whole") == deterministic_rows(tmp_path / "parts")
    a, b = (load_checkpoint(tmp_path / d)["policy"]["obs_norm"] for d in ("whole", "parts"))
    assert torch.equal(a["var"], b["var"])


# -------------------------------------------------------------- resume on any env

def test_a_mid_episode_resume_is_refused_when_the_env_state_cannot_be_saved(tmp_path):
    run(stateless, tmp_path / "r", 120)                    # 120 = 2 × 50 + 20
    with pytest.raises(RunDirError, match="mid-episode.*get_state"):
        run(stateless, tmp_path / "r", 200, resume=True)
    run(stateless, tmp_path / "b", 100)                    # at an episode's end
    run(stateless, tmp_path / "b", 150, resume=True)
    run(stateless, tmp_path / "one_go", 150)
    assert deterministic_rows(tmp_path / "b") == deterministic_rows(tmp_path / "one_go")


def test_get_state_and_set_state_make_a_mid_episode_resume_exact(tmp_path):
    spec = EnvSpec(PointMass, max_episode_steps=50)
    run(spec, tmp_path / "whole", 220)
    run(spec, tmp_path / "parts", 120)
    run(spec, tmp_path / "parts", 220, resume=True)
    assert deterministic_rows(tmp_path / "whole") == deterministic_rows(tmp_path / "parts")


# -------------------------------------------------------------- deployment

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "point"
    run(EnvSpec("sac_lit/PointMass-v0", normalize_obs=True), out, 300)
    return out


def test_predict_returns_actions_in_the_env_units(trained):
    agent = SAC.load(trained)
    env = EnvSpec("sac_lit/PointMass-v0")()
    obs = np.stack([env.reset(seed=i)[0] for i in range(200)])
    a_env = agent.predict(obs)
    low, high = env.action_space.low, env.action_space.high
    assert a_env.shape == (200, 2) and (a_env >= low).all() and (a_env <= high).all()
    # by hand: normalise with the saved statistics, tanh of the mean, the affine map
    norm = load_checkpoint(trained)["policy"]["obs_norm"]
    s = (obs - norm["mean"].numpy()) / np.sqrt(norm["var"].numpy() + norm["epsilon"])
    mu, _ = agent.actor.head(torch.as_tensor(s, dtype=torch.float32))
    expected = low + (np.tanh(mu.detach().numpy()) + 1) * (high - low) / 2
    np.testing.assert_allclose(a_env, expected, atol=1e-5)
    with pytest.raises(ValueError, match="SAC.load"):
        SAC(6, 2, TINY).predict(obs[0])


LOADERS = {
    "torchscript": """
        import torch
        policy = torch.jit.load(path)
        out = policy(torch.from_numpy(obs)).numpy()""",
    "onnx": """
        import onnxruntime
        session = onnxruntime.InferenceSession(path)
        out = session.run(["action"], {"obs": obs})[0]""",
}


@pytest.mark.parametrize("fmt", sorted(LOADERS))
def test_the_exported_policy_equals_predict_without_sac_lit(trained, tmp_path, fmt):
    agent = SAC.load(trained)
    path = export_policy(agent, tmp_path / f"policy.{fmt}", fmt)
    obs = np.random.default_rng(0).normal(0, 800, (1000, 6)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        path, obs = {str(path)!r}, np.load({str(tmp_path / 'obs.npy')!r})
    """) + textwrap.dedent(LOADERS[fmt]) + textwrap.dedent(f"""
        np.save({str(tmp_path / 'out.npy')!r}, out)
        assert not any(m.startswith("sac_lit") for m in sys.modules), "sac_lit was imported"
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    out = np.load(tmp_path / "out.npy")
    assert out.shape == (1000, 2)
    np.testing.assert_allclose(out, agent.predict(obs), atol=1e-5, rtol=0)


def test_an_unknown_export_format_is_refused(trained, tmp_path):
    with pytest.raises(ValueError, match="unknown format"):
        export_policy(SAC.load(trained), tmp_path / "p", "pickle")
    assert not (tmp_path / "p").exists()


# -------------------------------------------------------------- logging and callbacks

def test_tensorboard_gets_every_number(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run("Pendulum-v1", tmp_path / "r", 400, callbacks=[TensorBoard([tmp_path / "tb"])])
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    tags = set(events.Tags()["scalars"])
    for tag in ("episode/return", "eval/return", "episode/critic_loss", "episode/actor_loss",
                "episode/alpha_loss", "episode/alpha", "episode/entropy",
                "episode/entropy_target", "episode/q1", "episode/steps_per_second"):
        assert tag in tags, tag
    evals = [r["return"] for r in rows(tmp_path / "r", "eval")]
    logged = [e.value for e in events.Scalars("eval/return")]
    np.testing.assert_allclose(logged, evals, rtol=1e-6)


def test_best_model_keeps_the_best_evaluation_and_loads(tmp_path):
    best = BestModel([tmp_path / "r"])
    run("Pendulum-v1", tmp_path / "r", 500, callbacks=[best])
    evals = rows(tmp_path / "r", "eval")
    top = max(evals, key=lambda r: r["return"])
    saved = load_checkpoint(tmp_path / "r" / "best.pt")
    assert saved["step"] == top["step"] and saved["return"] == top["return"]
    agent = SAC.load(tmp_path / "r" / "best.pt")
    assert agent.predict(np.zeros(3)).shape == (1,)


def test_early_stop_ends_the_run_at_the_threshold(tmp_path):
    summary = run("Pendulum-v1", tmp_path / "r", 1000, callbacks=[EarlyStop(-math.inf)])
    assert summary["steps"] == 100                        # the first evaluation
    summary = run("Pendulum-v1", tmp_path / "s", 300, callbacks=[EarlyStop(math.inf)])
    assert summary["steps"] == 300


# -------------------------------------------------------------- video

@pytest.mark.parametrize("env_id, size", [("Pendulum-v1", (500, 500)),
                                          ("HalfCheetah-v5", (480, 480)),
                                          ("sac_lit/PointMass-v0", (128, 128))])
@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_a_video_has_one_frame_per_step_plus_the_first(tmp_path, env_id, size, suffix):
    import imageio.v3 as iio
    env, _ = make_env(env_id)
    agent = SAC(env.observation_space.shape[0], env.action_space.shape[0], TINY)
    agent.policy_io = {"low": torch.from_numpy(env.action_space.low.astype(np.float64)),
                       "high": torch.from_numpy(env.action_space.high.astype(np.float64)),
                       "obs_norm": None}
    spec = EnvSpec(env_id, max_episode_steps=20)
    info = record_video(agent, spec, tmp_path / f"v{suffix}")
    frames = iio.imread(tmp_path / f"v{suffix}")
    assert info["frames"] == 21 and frames.shape[1:3] == size == info["size"]
    if suffix == ".mp4":
        assert frames.shape[0] == 21
    else:                       # a GIF merges repeated frames, adding their times
        from PIL import Image
        fps = env.metadata["render_fps"]
        with Image.open(tmp_path / "v.gif") as gif:
            times = []
            for i in range(gif.n_frames):
                gif.seek(i)
                times.append(gif.info["duration"])
        assert frames.shape[0] == len(times) <= 21
        assert abs(sum(times) - 21 * 1000 / fps) <= 10 * 21


def test_a_video_needs_rgb_array_frames(tmp_path):
    class Blind(PointMass):
        metadata = {"render_modes": []}
    agent = SAC(6, 2, TINY)
    with pytest.raises(ValueError, match="rgb_array"):
        record_video(agent, EnvSpec(Blind, max_episode_steps=5), tmp_path / "v.mp4")
    assert not (tmp_path / "v.mp4").exists()
