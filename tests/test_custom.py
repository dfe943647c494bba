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
from sac_lit.train import EpisodeCut, RunDirError, train

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


def test_evaluation_uses_the_training_statistics_frozen():
    from sac_lit.custom import normalizer
    from sac_lit.loop import copy_normalizer
    spec = EnvSpec("sac_lit/PointMass-v0", normalize_obs=True)
    train_env, eval_env = spec(), spec()
    train_env.reset(seed=0)
    train_env.action_space.seed(0)
    for _ in range(150):
        train_env.step(train_env.action_space.sample())
    copy_normalizer(train_env, eval_env)
    stats = normalizer(train_env).obs_rms
    mean, var, count = stats.mean.copy(), stats.var.copy(), stats.count
    obs, _ = eval_env.reset(seed=1)
    raw = eval_env.unwrapped.observation()
    np.testing.assert_allclose(obs, (raw - mean) / np.sqrt(var + 1e-8), rtol=1e-5)
    for _ in range(100):
        eval_env.step(eval_env.action_space.sample())
    frozen = normalizer(eval_env).obs_rms
    assert np.array_equal(frozen.mean, mean) and frozen.count == count
    assert normalizer(eval_env).obs_rms is not stats       # a copy, not the same object


def test_resume_with_the_normaliser_is_bit_identical(tmp_path):
    spec = EnvSpec("sac_lit/PointMass-v0", normalize_obs=True)
    run(spec, tmp_path / "whole", 330)
    run(spec, tmp_path / "parts", 130)                     # mid-episode
    run(spec, tmp_path / "parts", 330, resume=True)
    assert deterministic_rows(tmp_path / "whole") == deterministic_rows(tmp_path / "parts")
    a, b = (load_checkpoint(tmp_path / d)["policy"]["obs_norm"] for d in ("whole", "parts"))
    assert torch.equal(a["var"], b["var"])


# -------------------------------------------------------------- resume on any env

def test_a_mid_episode_resume_ends_the_episode_when_the_env_state_cannot_be_saved(tmp_path):
    run(stateless, tmp_path / "r", 120)                    # 120 = 2 × 50 + 20
    with pytest.warns(EpisodeCut, match="mid-episode.*get_state"):
        run(stateless, tmp_path / "r", 200, resume=True)
    rows = deterministic_rows(tmp_path / "r")
    episodes = [(r["step"], r["length"]) for r in rows if r["kind"] == "episode"]
    assert episodes == [(50, 50), (100, 50), (120, 20), (170, 50)]
    state = load_checkpoint(tmp_path / "r")
    assert state["step"] == 200 and state["run"]["episode_length"] == 30
    assert state["run"]["episode"] == 4
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


# -------------------------------------------------------------- the command line

def cli(argv, capsys):
    from sac_lit.cli import main
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


QUICK = ["--learning-starts", 100, "--eval-every", 200, "--eval-episodes", 2,
         "--hidden-sizes", "16,16", "--batch-size", 16, "--no-progress"]


@pytest.fixture
def tasks(tmp_path, monkeypatch):
    "A module of the user's: a discrete factory, an unbounded one, one that cannot render."
    (tmp_path / "user_tasks.py").write_text(textwrap.dedent("""
        import gymnasium as gym
        import numpy as np
        from sac_lit.custom import PointMass

        def discrete():
            return gym.make("CartPole-v1")

        def unbounded():
            env = gym.wrappers.TimeLimit(PointMass(), 20)
            env.action_space = gym.spaces.Box(-np.inf, np.inf, (2,))
            return env

        class Blind(PointMass):
            metadata = {"render_modes": []}

        def point(**kwargs):
            return gym.wrappers.TimeLimit(PointMass(**kwargs), 50)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_the_command_line_trains_resumes_exports_and_films_your_env(tmp_path, tasks, capsys):
    run = tmp_path / "run"
    args = ["train", "--env", "user_tasks:point", "--normalize-obs", "--steps", 300,
            "--out", run, "--tensorboard", tmp_path / "tb", *QUICK]
    code, out, err = cli(args, capsys)
    assert code == 0, err
    config = json.loads((run / "config.json").read_text())
    assert config["env_spec"] == {"env": "user_tasks:point", "kwargs": {}, "normalize_obs": True,
                                  "max_episode_steps": None}
    assert any((tmp_path / "tb").iterdir())
    code, out, err = cli(["train", "--out", run, "--steps", 420, "--resume", "--no-progress"],
                         capsys)
    assert code == 0, err
    whole = tmp_path / "whole"
    code, *_ = cli(["train", "--env", "user_tasks:point", "--normalize-obs", "--steps", 420,
                    "--out", whole, *QUICK], capsys)
    assert code == 0
    assert deterministic_rows(run) == deterministic_rows(whole)
    for fmt, name in (("torchscript", "p.pt"), ("onnx", "p.onnx")):
        code, out, err = cli(["export", run / "best.pt", "--format", fmt, "--out",
                              tmp_path / name], capsys)
        assert code == 0 and "in the environment's units" in out, err
    code, out, err = cli(["eval", run, "--episodes", 1, "--json", "--video",
                          tmp_path / "v.gif"], capsys)
    assert code == 0, err
    assert json.loads(out.splitlines()[0])["env_id"] == "user_tasks:point"
    assert "51 frames of 128x128" in out


def test_env_kwargs_reach_the_env_and_the_time_limit_flag_works(tmp_path, capsys):
    run = tmp_path / "run"
    code, _, err = cli(["train", "--env", "sac_lit.custom:PointMass", "--max-episode-steps", 40,
                        "--steps", 120, "--out", run, *QUICK], capsys)
    assert code == 0, err
    episodes = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
                if r["kind"] == "episode"]
    assert [r["length"] for r in episodes] == [40, 40, 40]
    code, _, err = cli(["train", "--env", "Pendulum-v1", "--env-kwargs", '{"g": 3.7}',
                        "--steps", 120, "--out", tmp_path / "mars", *QUICK], capsys)
    assert code == 0, err
    spec = json.loads((tmp_path / "mars" / "config.json").read_text())["env_spec"]
    assert EnvSpec(**spec)().unwrapped.g == 3.7


BAD = {
    "invalid JSON": (["train", "--env", "Pendulum-v1", "--env-kwargs", "{g: 1}"], "not valid JSON"),
    "JSON not an object": (["train", "--env", "Pendulum-v1", "--env-kwargs", "[1]"],
                           "JSON object"),
    "module does not import": (["train", "--env", "no_such_module_x:Env"], "cannot import"),
    "--import fails": (["train", "--env", "Pendulum-v1", "--import", "no_such_module_x"],
                       "--import no_such_module_x"),
    "discrete factory": (["train", "--env", "user_tasks:discrete"], "Box action space"),
    "unbounded factory": (["train", "--env", "user_tasks:unbounded"], "unbounded"),
    "no time limit": (["train", "--env", "sac_lit.custom:PointMass"], "--max-episode-steps"),
    "kwargs the env rejects": (["train", "--env", "Pendulum-v1", "--env-kwargs", '{"gg": 1}'],
                               "gg"),
}


@pytest.mark.parametrize("what", sorted(BAD))
def test_bad_environment_input_is_one_line_and_writes_nothing(tmp_path, tasks, capsys, what):
    argv, message = BAD[what]
    code, out, err = cli(argv + ["--steps", 10, "--out", tmp_path / "x"], capsys)
    assert code == 2, (what, err)
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    train(EnvSpec("sac_lit/PointMass-v0", normalize_obs=True), 200, out=run, progress=False,
          config=TINY, run_config=LOOP)
    return run


def test_bad_export_and_video_input_is_one_line_and_writes_nothing(tmp_path, tasks, cli_run,
                                                                   capsys):
    cases = {
        "unknown format": ["export", cli_run, "--format", "pickle", "--out", tmp_path / "p"],
        "unwritable output": ["export", cli_run, "--out", tmp_path / "no" / "such" / "p.pt"],
        "output is a directory": ["export", cli_run, "--out", tmp_path],
        "video suffix": ["eval", cli_run, "--video", tmp_path / "v.avi"],
        "video folder missing": ["eval", cli_run, "--video", tmp_path / "no" / "v.mp4"],
    }
    for what, argv in cases.items():
        code, out, err = cli(argv, capsys)
        assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), (what, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user_tasks.py"]
    blind = tmp_path / "blind"
    train(EnvSpec("user_tasks:Blind", max_episode_steps=20), 60, out=blind, progress=False,
          config=TINY, run_config=RunConfig(learning_starts=20, eval_every=60, eval_episodes=1))
    code, out, err = cli(["eval", blind, "--video", tmp_path / "v.mp4"], capsys)
    assert code == 2 and "cannot render rgb_array" in err and err.count("\n") == 1, err
    assert not (tmp_path / "v.mp4").exists()
