"""The command line (sac_lit.cli, `python -m sac_lit`): flags, bad input,
safe checkpoints, resume, Ctrl-C, divergence, an end-to-end run.

Most commands run in-process through `main(argv)` (the function that
`python -m sac_lit` calls) to keep the file fast; a few run as real
processes, where the exit status and stderr are the operating system's.
Budgets are tiny: 32-unit networks and a few hundred steps of Pendulum.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import pickle
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from sac_lit.agent import SAC, SACConfig, load_checkpoint
from sac_lit.crossq import CrossQ, CrossQConfig
from sac_lit.cli import (UsageError, build_parser, config_flags, flag_name, main,
                         pick_device)
from sac_lit.loop import EVAL_SEED, RunConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = ("--hidden-sizes 32,32 --batch-size 32 --learning-starts 100 "
        "--eval-every 200 --eval-episodes 2 --no-progress")
STEPS = 400                     # two Pendulum episodes of 200 steps
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


class Unbounded(gym.Env):
    "Actions on the whole real line: SAC has nothing to squash into."
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)


if "SacLitTestUnbounded-v0" not in gym.registry:
    gym.register("SacLitTestUnbounded-v0", entry_point=Unbounded)


def sac(command: str, capsys) -> tuple[int, str, str]:
    "`python -m sac_lit <command>`, in this process: (status, out, err)."
    capsys.readouterr()
    status = main(shlex.split(command))
    out, err = capsys.readouterr()
    return status, out, err


def python_m_sac_lit(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sac_lit", *args],
                          capture_output=True, text=True, timeout=600,
                          env=CHILD_ENV, cwd=ROOT, **kwargs)


def fingerprint(folder: Path) -> dict:
    "Every file under `folder` with its SHA-256 and modification time."
    return {str(p.relative_to(folder)):
            (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leaves(tree, path=""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, f"{path}/{key}")
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            yield from leaves(value, f"{path}/{i}")
    else:
        yield path, tree


def checkpoint_differences(a: dict, b: dict) -> list[str]:
    "Paths where two checkpoints differ; wall-clock entries are ignored."
    la, lb = dict(leaves(a)), dict(leaves(b))
    if la.keys() != lb.keys():
        return sorted(la.keys() ^ lb.keys())
    return [p for p in la if "/clock/" not in p and not (
        torch.equal(la[p], lb[p]) if isinstance(la[p], torch.Tensor)
        else la[p] == lb[p])]


def metrics_rows(run: Path) -> list[dict]:
    "metrics.jsonl without the timing fields."
    rows = [json.loads(line)
            for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if "seconds" not in k}
            for row in rows]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    "A directory holding one finished tiny run, `done`, trained in-process."
    root = tmp_path_factory.mktemp("cli")
    argv = shlex.split(f"train --env Pendulum-v1 --steps {STEPS} --seed 0 "
                       f"--out {root / 'done'} --metrics csv {TINY}")
    assert main(argv) == 0
    return root


# ---------------------------------------------------------------- flags

def test_every_config_field_is_a_flag_with_its_help():
    text = " ".join(subprocess.run(
        [sys.executable, "-m", "sac_lit", "train", "--help"], capture_output=True,
        text=True, env=CHILD_ENV, cwd=ROOT, timeout=300).stdout.split())
    assert "--algo {sac,crossq}" in text
    for config in (SACConfig, RunConfig, CrossQConfig):
        for field in dataclasses.fields(config):
            flag = "--" + field.name.replace("_", "-")
            assert flag_name(field.name) == flag and flag in text, flag
            assert " ".join(field.metadata["help"].split()) in text, field.name


def test_flags_round_trip_to_the_same_config():
    values = dict(hidden_sizes=(64, 32, 16), actor_lr=1e-3, critic_lr=2e-3,
                  alpha_lr=5e-4, batch_size=100, buffer_size=5000,
                  gamma=0.95, rho=0.9, init_alpha=0.3, autotune=False,
                  target_entropy=-2.5)
    loop = dict(updates_per_step=2, learning_starts=123, eval_every=77,
                eval_episodes=3, checkpoint_every=999)
    assert set(values) == {f.name for f in dataclasses.fields(SACConfig)}
    assert set(loop) == {f.name for f in dataclasses.fields(RunConfig)}
    argv = ["train", "--steps", "1", "--out", "x"]
    for name, value in {**values, **loop}.items():
        if isinstance(value, bool):
            argv.append(("--" if value else "--no-") + name.replace("_", "-"))
        else:
            text = ",".join(map(str, value)) if isinstance(value, tuple) \
                else repr(value)
            argv += [flag_name(name), text]
    args = build_parser().parse_args(argv)
    assert SACConfig(**config_flags(args, SACConfig)) == SACConfig(**values)
    assert RunConfig(**config_flags(args, RunConfig)) == RunConfig(**loop)
    bare = build_parser().parse_args(["train", "--steps", "1", "--out", "x"])
    assert config_flags(bare, SACConfig) == config_flags(bare, RunConfig) == {}
    none = build_parser().parse_args(["train", "--steps", "1", "--out", "x",
                                      "--target-entropy", "none"])
    assert config_flags(none, SACConfig) == {"target_entropy": None}
    big = build_parser().parse_args(["train", "--steps", "1e5", "--out", "x",
                                     "--buffer-size", "1_000_000"])
    assert (big.steps, big.buffer_size) == (100_000, 1_000_000)


def test_device_choice():
    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") == ("cuda" if torch.cuda.is_available()
                                   else "cpu")
    if torch.cuda.is_available():
        assert pick_device("cuda") == "cuda"
    else:
        with pytest.raises(UsageError, match="no CUDA device"):
            pick_device("cuda")


# ------------------------------------------------------------ bad input

def bad_cases(root: Path) -> dict[str, str]:
    done, new = root / "done", f"--env Pendulum-v1 --out {root}/new"
    cases = {
        "no command": "",
        "unknown command": "fly --steps 3",
        "unknown env id": f"train --env NoSuchEnv-v0 --steps 9 --out {root}/x",
        "malformed env id": f"train --env 'not an id' --steps 9 "
                            f"--out {root}/x",
        "env id with a newline": f"train --env 'No\nSuch-v0' --steps 9 "
                                 f"--out {root}/x",
        "env module missing": f"train --env no_such_module:Env-v0 --steps 9 "
                              f"--out {root}/x",
        "discrete actions": f"train --env CartPole-v1 --steps 9 "
                            f"--out {root}/x",
        "unbounded actions": f"train --env SacLitTestUnbounded-v0 "
                             f"--steps 9 --out {root}/x",
        "new run without env": f"train --steps 9 --out {root}/x",
        "steps 0": f"train {new} --steps 0",
        "steps negative": f"train {new} --steps -5",
        "steps not int": f"train {new} --steps 1.5",
        "steps not a number": f"train {new} --steps 1e3x",
        "seed negative": f"train {new} --steps 9 --seed -1",
        "gamma above 1": f"train {new} --steps 9 --gamma 1.5",
        "gamma 0": f"train {new} --steps 9 --gamma 0",
        "gamma nan": f"train {new} --steps 9 --gamma nan",
        "rho 1": f"train {new} --steps 9 --rho 1",
        "negative lr": f"train {new} --steps 9 --critic-lr -0.0003",
        "negative lr, e-notation": f"train {new} --steps 9 --critic-lr -3e-4",
        "negative lr, e-notation, =": f"train {new} --steps 9 "
                                      "--critic-lr=-3e-4",
        "mistyped steps": f"train {new} --step 9",
        "mistyped flag": f"train {new} --steps 9 --gamme 0.9",
        "zero lr": f"train {new} --steps 9 --actor-lr 0",
        "alpha 0": f"train {new} --steps 9 --init-alpha 0",
        "batch size 0": f"train {new} --steps 9 --batch-size 0",
        "buffer size 0": f"train {new} --steps 9 --buffer-size 0",
        "hidden size 0": f"train {new} --steps 9 --hidden-sizes 0,32",
        "hidden sizes text": f"train {new} --steps 9 --hidden-sizes big",
        "not a number": f"train {new} --steps 9 --rho fast",
        "unknown flag": f"train {new} --steps 9 --learning-rate 1e-3",
        "abbreviated flag": f"train {new} --steps 9 --gam 0.5",
        "bad device": f"train {new} --steps 9 --device tpu",
        "existing run": f"train --env Pendulum-v1 --out {done} --steps 9",
        "existing run, same": f"train --env Pendulum-v1 --out {done} "
                              f"--steps {STEPS}",
        "non-empty dir": f"train --env Pendulum-v1 --out {root}/notes "
                         "--steps 9",
        "out is a file": f"train --env Pendulum-v1 --out {root}/notes/a.txt "
                         "--steps 9",
        "out under a file": f"train --env Pendulum-v1 --out "
                            f"{root}/notes/a.txt/run --steps 9",
        "resume missing": f"train --out {root}/x --steps 9 --resume",
        "resume non-run dir": f"train --out {root}/notes --steps 9 --resume",
        "resume corrupt": f"train --out {root}/corrupt --steps 900 --resume",
        "resume garbage": f"train --out {root}/garbage --steps 900 --resume",
        "resume fewer steps": f"train --out {done} --steps 10 --resume",
        "resume other env": f"train --out {done} --steps 900 --resume "
                            "--env MountainCarContinuous-v0",
        "resume other seed": f"train --out {done} --steps 900 --resume "
                             "--seed 1",
        "resume other config": f"train --out {done} --steps 900 --resume "
                               "--batch-size 64",
        "resume bad config": f"train --out {done} --steps 900 --resume "
                             "--gamma 2",
        "eval missing": f"eval {root}/x",
        "eval corrupt": f"eval {root}/corrupt",
        "eval garbage": f"eval {root}/garbage/checkpoint.pt --env Pendulum-v1",
        "eval 0 episodes": f"eval {done} --episodes 0",
        "eval seed negative": f"eval {done} --seed -1",
        "eval wrong env": f"eval {done} --env MountainCarContinuous-v0",
        "eval unknown env": f"eval {root}/bare.pt --env NoSuchEnv-v0",
        "eval no config": f"eval {root}/bare.pt",
        "eval import missing": f"eval {done} --import no_such_module_xyz",
        "unknown algo": f"train {new} --steps 9 --algo td3",
        "crossq flag, sac": f"train {new} --steps 9 --policy-delay 2",
        "sac flag, crossq": f"train {new} --steps 9 --algo crossq --rho 0.5",
        "crossq bad beta1": f"train {new} --steps 9 --algo crossq "
                            "--adam-beta1 1",
        "crossq compile": f"train {new} --steps 9 --algo crossq --compile",
        "crossq bad warm-up": f"train {new} --steps 9 --algo crossq "
                              "--renorm-warmup -1",
        "crossq bad bn eps": f"train {new} --steps 9 --algo crossq --bn-eps 0",
        "resume sac as crossq": f"train --out {done} --steps 900 --resume "
                                "--algo crossq",
        "resume sac, crossq flag": f"train --out {done} --steps 900 "
                                   "--resume --renorm-warmup 5",
    }
    if not torch.cuda.is_available():
        cases["cuda missing"] = f"train {new} --steps 9 --device cuda"
        cases["eval cuda missing"] = f"eval {done} --device cuda"
    return cases


@pytest.fixture(scope="module")
def bad_input_dir(workdir):
    "`done`, plus a truncated checkpoint, garbage, a bare checkpoint, notes."
    (workdir / "notes").mkdir(exist_ok=True)
    (workdir / "notes" / "a.txt").write_text("my notes\n")
    good = (workdir / "done" / "checkpoint.pt").read_bytes()
    for name, data in (("corrupt", good[: len(good) // 2]),
                       ("garbage", b"this is not a checkpoint")):
        (workdir / name).mkdir(exist_ok=True)
        (workdir / name / "checkpoint.pt").write_bytes(data)
        (workdir / name / "config.json").write_text(
            (workdir / "done" / "config.json").read_text())
    SAC.load(workdir / "done").save(workdir / "bare.pt")   # no config.json
    return workdir


@pytest.mark.parametrize("case", list(bad_cases(Path("x"))))
def test_bad_input_is_one_line_exit_2_and_touches_nothing(case, bad_input_dir,
                                                          capsys):
    command = bad_cases(bad_input_dir)[case]
    before = fingerprint(bad_input_dir)
    status, out, err = sac(command, capsys)
    assert status == 2, (status, out, err)
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert fingerprint(bad_input_dir) == before
    assert not (bad_input_dir / "x").exists()
    assert not (bad_input_dir / "new").exists()


def test_messages_name_the_problem(bad_input_dir, capsys):
    cases = bad_cases(bad_input_dir)
    expect = {"gamma above 1": "--gamma must lie in (0, 1], got 1.5",
              "batch size 0": "--batch-size must be >= 1, got 0",
              "negative lr": "--critic-lr must lie in (0, inf), got -0.0003",
              "negative lr, e-notation": "--critic-lr must lie in (0, inf)",
              "negative lr, e-notation, =": "--critic-lr must lie in (0, inf)",
              "mistyped steps": "unrecognized argument --step (did you mean "
                                "--steps?)",
              "out is a file": "a.txt is a file: choose another output",
              "eval wrong env": "was trained on Pendulum-v1, and eval uses it",
              "eval unknown env": "NoSuchEnv-v0",
              "eval no config": "names the environment: pass --env",
              "eval import missing": "--import no_such_module_xyz",
              "out under a file": "a.txt is not a writable directory",
              "mistyped flag": "unrecognized argument --gamme (did you mean "
                               "--gamma?)",
              "unknown flag": "unrecognized argument --learning-rate",
              "discrete actions": "Discrete(2)",
              "unbounded actions": "unbounded",
              "unknown env id": "NoSuchEnv-v0",
              "existing run": "it holds a run: resume it (--resume",
              "resume other config": "cannot change --batch-size on --resume",
              "resume fewer steps": f"is at step {STEPS}",
              "resume missing": "no checkpoint",
              "steps 0": "--steps must be >= 1",
              "unknown algo": "invalid choice: 'td3'",
              "crossq flag, sac": "--algo sac has no --policy-delay",
              "sac flag, crossq": "--algo crossq has no --rho",
              "crossq bad beta1": "--adam-beta1 must lie in [0, 1)",
              "crossq compile": "--compile compiles SAC's update only, not crossq's",
              "crossq bad warm-up": "--renorm-warmup must lie in [0, inf), got -1",
              "crossq bad bn eps": "--bn-eps must lie in (0, inf), got 0.0",
              "resume sac as crossq": "is a run of sac: --algo cannot change",
              "resume sac, crossq flag": "--algo sac has no --renorm-warmup"}
    for case, words in expect.items():
        assert words in sac(cases[case], capsys)[2], case


def test_bad_input_from_a_real_process(bad_input_dir):
    "The exit status and stderr as the shell sees them (no traceback)."
    shell = python_m_sac_lit("train", "--env", "Pendulum-v1", "--steps", "9",
                             "--out", str(bad_input_dir / "new"),
                             "--gamma", "1.5")
    assert shell.returncode == 2 and shell.stdout == ""
    assert shell.stderr == "error: --gamma must lie in (0, 1], got 1.5\n"
    assert not (bad_input_dir / "new").exists()


def test_a_bug_is_not_reported_as_bad_input(monkeypatch, tmp_path, capsys):
    "Errors raised while running (after the checks) keep their traceback."
    def broken_train(**kwargs):
        raise ValueError("a bug inside train")
    monkeypatch.setattr("sac_lit.cli.train", broken_train)
    with pytest.raises(ValueError, match="a bug inside train"):
        main(shlex.split(f"train --env Pendulum-v1 --steps 9 "
                         f"--out {tmp_path}/run {TINY}"))


# ------------------------------------------------- crafted checkpoints

class Payload:
    "Unpickling this runs a shell command that creates a marker file."

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.mark.parametrize("fmt", ["torch.save", "pickle protocol 2",
                                 "pickle protocol 4"])
def test_crafted_checkpoint_is_refused_without_running_it(fmt, tmp_path,
                                                          capsys):
    marker = tmp_path / "marker"
    run = tmp_path / "evil"
    run.mkdir()
    (run / "config.json").write_text('{"env_id": "Pendulum-v1", "seed": 0}')
    payload = {"agent": Payload(marker), "env_id": "Pendulum-v1", "seed": 0}
    if fmt == "torch.save":
        torch.save(payload, run / "checkpoint.pt")
    else:                        # torch warns about protocol 4: not shown
        protocol = int(fmt[-1])
        (run / "checkpoint.pt").write_bytes(pickle.dumps(payload, protocol))
    before = fingerprint(tmp_path)
    for command in (f"eval {run}", f"eval {run / 'checkpoint.pt'}",
                    f"train --out {run} --steps 10 --resume"):
        status, out, err = sac(command, capsys)
        assert status == 2 and err.count("\n") == 1, err
        assert "refused" in err, err
        assert "system" in err or fmt == "pickle protocol 4", err
        assert not marker.exists()
    shell = python_m_sac_lit("eval", str(run), "--json")
    assert shell.returncode == 2 and shell.stderr.count("\n") == 1
    assert shell.stderr.startswith("error: ") and "Traceback" not in shell.stderr
    assert not marker.exists()
    assert fingerprint(tmp_path) == before
    # The payload is real: the ordinary unpickler runs it.
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


# ------------------------------------------------------- end to end

def test_train_then_eval_json_as_real_processes(tmp_path):
    run = tmp_path / "run"
    trained = python_m_sac_lit("train", "--env", "Pendulum-v1", "--steps",
                               "300", "--seed", "3", "--out", str(run),
                               *shlex.split(TINY))
    assert trained.returncode == 0, trained.stderr
    assert trained.stderr == "" and "300 steps done" in trained.stdout
    files = {p.name for p in run.iterdir()}
    assert files == {"config.json", "metrics.jsonl", "checkpoint.pt",
                     "best.pt", "summary.json"}
    config = json.loads((run / "config.json").read_text())
    assert (config["env_id"], config["seed"]) == ("Pendulum-v1", 3)
    assert config["config"]["hidden_sizes"] == [32, 32]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 300 and summary["train_steps"] == 200
    assert summary["train_sps"] == pytest.approx(
        summary["train_steps"] / summary["train_seconds"])

    shown = python_m_sac_lit("eval", str(run), "--episodes", "2", "--json")
    assert shown.returncode == 0 and shown.stderr == ""
    assert shown.stdout.count("\n") == 1
    report = json.loads(shown.stdout)
    returns = np.array(report["returns"])
    assert report["episodes"] == 2 == len(returns)
    assert report["mean_return"] == pytest.approx(returns.mean(), abs=1e-9)
    assert report["std_return"] == pytest.approx(returns.std(), abs=1e-9)
    # training's last evaluation used the same start states (EVAL_SEED + i)
    assert report["mean_return"] == summary["final_eval_return"]
    assert -2000 < report["mean_return"] < 0        # Pendulum's range


def test_eval_matches_an_independent_rollout(workdir, capsys):
    status, out, _ = sac(f"eval {workdir / 'done'} --episodes 2 --json "
                         "--seed 7", capsys)
    assert status == 0
    report = json.loads(out)
    agent, env = SAC.load(workdir / "done"), gym.make("Pendulum-v1")
    low, high = env.action_space.low, env.action_space.high
    expected = []
    for i in range(2):
        obs, _ = env.reset(seed=7 + i)
        total, done = 0.0, False
        while not done:
            a_tilde = agent.act(obs, deterministic=True)
            obs, r, term, trunc, _ = env.step(low + (a_tilde + 1) *
                                              (high - low) / 2)
            total, done = total + float(r), term or trunc
        expected.append(total)
    assert report["returns"] == pytest.approx(expected, abs=1e-6)
    status, text, _ = sac(f"eval {workdir / 'done'} --episodes 2 --seed 7",
                          capsys)
    assert status == 0 and f"{np.mean(expected):.1f}" in text
    status, text, _ = sac(f"eval {workdir / 'done'} --episodes 1 --seed 7",
                          capsys)                    # no spread of one
    assert status == 0 and text.endswith(
        f"return {expected[0]:.1f} over 1 episode\n") and "±" not in text


def test_metrics_csv_has_the_jsonl_rows(workdir):
    rows = [json.loads(line) for line in
            (workdir / "done" / "metrics.jsonl").read_text().splitlines()]
    with open(workdir / "done" / "metrics.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["kind"] for r in table] == [r["kind"] for r in rows]
    assert [float(r["step"]) for r in table] == [r["step"] for r in rows]
    assert [float(r["return"]) for r in table] == [r["return"] for r in rows]
    assert [r["kind"] for r in rows] == ["episode", "eval"] * 2


# ---------------------------------------------------------------- resume

def test_resume_of_a_finished_run_equals_one_run(workdir, tmp_path, capsys):
    halves = tmp_path / "halves"
    first = sac(f"train --env Pendulum-v1 --steps {STEPS // 2} --seed 0 "
                f"--out {halves} {TINY}", capsys)
    second = sac(f"train --out {halves} --steps {STEPS} --resume "
                 "--no-progress", capsys)
    assert first[0] == 0 and second[0] == 0, (first, second)
    one_go = load_checkpoint(workdir / "done")
    resumed = load_checkpoint(halves)
    assert checkpoint_differences(one_go, resumed) == []
    assert metrics_rows(workdir / "done") == metrics_rows(halves)
    assert {p.name for p in halves.iterdir()} == \
        {p.name for p in (workdir / "done").iterdir()} - {"metrics.csv"}
    # the comparison itself can fail: one float32 step in one weight
    w = resumed["agent"]["critic"]["q1.net.0.weight"]
    w[0, 0] = torch.nextafter(w[0, 0], torch.tensor(np.inf))
    assert checkpoint_differences(one_go, resumed) == \
        ["/agent/critic/q1.net.0.weight"]


def test_resume_may_change_only_bookkeeping(workdir, tmp_path, capsys):
    run = tmp_path / "run"
    assert sac(f"train --env Pendulum-v1 --steps 200 --out {run} {TINY}",
               capsys)[0] == 0
    status, _, err = sac(f"train --out {run} --steps 250 --resume "
                         "--eval-every 50 --hidden-sizes 32,32 "
                         "--batch-size 32 --no-progress", capsys)
    assert status == 0, err            # same values repeated, loop changed
    resumed = load_checkpoint(run)
    assert resumed["step"] == 250
    assert json.loads((run / "config.json").read_text()
                      )["run_config"]["eval_every"] == 50
    # evaluations use their own env and RNG: learning is unchanged
    one_go = tmp_path / "one_go"
    assert sac(f"train --env Pendulum-v1 --steps 250 --out {one_go} {TINY}",
               capsys)[0] == 0
    learning = [p for p in checkpoint_differences(load_checkpoint(one_go),
                                                  resumed)
                if not p.startswith(("/last/", "/callbacks/"))
                and p != "/run_config/eval_every"]
    assert learning == []


# ---------------------------------------------------------------- Ctrl-C

def test_ctrl_c_saves_a_checkpoint_and_resume_continues(tmp_path, capsys):
    run = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-m", "sac_lit", "train", "--env", "Pendulum-v1",
         "--steps", "100000", "--out", str(run), *shlex.split(TINY)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=CHILD_ENV, cwd=ROOT)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.is_file() and metrics.stat().st_size > 0):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=300)
    assert child.returncode == 130, err
    assert err.count("\n") == 1 and "Traceback" not in err
    stopped_at = load_checkpoint(run)["step"]
    assert 200 <= stopped_at < 100_000
    assert f"interrupted at step {stopped_at}," in err
    assert f"train --out {run} --steps 100000 --resume" in err

    target = stopped_at + 30
    assert sac(f"train --out {run} --steps {target} --resume --no-progress",
               capsys)[0] == 0
    one_go = tmp_path / "one_go"
    assert sac(f"train --env Pendulum-v1 --steps {target} --out {one_go} "
               f"{TINY}", capsys)[0] == 0
    assert checkpoint_differences(load_checkpoint(one_go),
                                  load_checkpoint(run)) == []


# ------------------------------------------------------------ divergence

def test_nan_loss_stops_with_the_loss_named_and_keeps_the_checkpoint(
        tmp_path, capsys):
    run = tmp_path / "run"
    status, out, err = sac(
        f"train --env Pendulum-v1 --steps 1000 --out {run} {TINY} "
        "--checkpoint-every 100 --critic-lr 1e30", capsys)
    assert status == 1 and err.count("\n") == 1, err      # failed after starting
    assert err.startswith("error: training diverged: ")
    named = [loss for loss in ("critic_loss", "actor_loss", "alpha_loss")
             if f"{loss} is not finite" in err]
    assert len(named) == 1, err
    kept = load_checkpoint(run)
    diverged_at = int(err.split("by step ")[1].split(";")[0])
    assert 100 <= kept["step"] < diverged_at
    assert all(torch.isfinite(v).all() for p, v in leaves(kept["agent"])
               if isinstance(v, torch.Tensor))
    assert not (run / "summary.json").exists()


# ------------------------------------------------------------ CrossQ (chapter 20)

TINY_Q = ("--actor-hidden-sizes 16 --critic-hidden-sizes 16 --batch-size 32 "
          "--policy-delay 2 --renorm-warmup 50 --learning-starts 100 "
          "--eval-every 150 --eval-episodes 1 --no-progress")


@pytest.fixture(scope="module")
def crossq_dir(tmp_path_factory):
    "`whole`: a 300-step CrossQ run made by `train --algo crossq`."
    root = tmp_path_factory.mktemp("crossq")
    assert main(shlex.split(f"train --algo crossq --env Pendulum-v1 --steps 300 "
                            f"--out {root / 'whole'} {TINY_Q}")) == 0
    return root


def test_train_algo_crossq_then_eval(crossq_dir, capsys):
    run = crossq_dir / "whole"
    agent = SAC.load(run)
    assert type(agent) is CrossQ and agent.updates == 200
    assert agent.config == CrossQConfig(actor_hidden_sizes=(16,), critic_hidden_sizes=(16,),
                                        batch_size=32, policy_delay=2, renorm_warmup=50)
    assert json.loads((run / "config.json").read_text())["config"] == agent.config.to_dict()
    status, out, err = sac(f"eval {run} --episodes 1 --json", capsys)
    assert status == 0 and err == ""
    summary = json.loads((run / "summary.json").read_text())
    assert json.loads(out)["mean_return"] == summary["final_eval_return"]
    exported = crossq_dir / "policy.pt"                  # chapter 18's export
    status, out, err = sac(f"export {run} --out {exported}", capsys)
    assert status == 0 and err == ""
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    policy = torch.jit.load(exported)
    assert np.allclose(policy(torch.from_numpy(obs)).numpy(), agent.predict(obs), atol=1e-6)


def test_resume_without_algo_continues_crossq_exactly(crossq_dir, tmp_path, capsys):
    parts = tmp_path / "parts"
    first = sac(f"train --algo crossq --env Pendulum-v1 --steps 171 --out {parts} "
                f"{TINY_Q}", capsys)
    second = sac(f"train --out {parts} --steps 300 --resume --no-progress", capsys)
    assert first[0] == 0 and second[0] == 0, (first, second)
    assert type(SAC.load(parts)) is CrossQ
    assert checkpoint_differences(load_checkpoint(crossq_dir / "whole"),
                                  load_checkpoint(parts)) == []
    assert metrics_rows(crossq_dir / "whole") == metrics_rows(parts)


def test_crossq_seeds_are_their_one_seed_runs(crossq_dir, tmp_path, capsys):
    "--seeds with CrossQ: chapter 16's SeedList, each seed exactly as alone."
    two = tmp_path / "two"
    status, out, err = sac(f"train --algo crossq --env Pendulum-v1 --steps 300 "
                           f"--seeds 0,1 --out {two} {TINY_Q}", capsys)
    assert status == 0, err
    assert "2 seeds in one process" in out
    assert metrics_rows(two / "seed_0") == metrics_rows(crossq_dir / "whole")
    assert metrics_rows(two / "seed_1") != metrics_rows(two / "seed_0")
    for s in (0, 1):
        assert type(SAC.load(two / f"seed_{s}")) is CrossQ
        summary = json.loads((two / f"seed_{s}" / "summary.json").read_text())
        assert summary["seed"] == s and summary["seeds_in_process"] == 2
    status, out, err = sac(f"train --out {two} --steps 400 --seeds 0,1 --resume "
                           "--no-progress", capsys)
    assert status == 0, err
    assert [SAC.load(two / f"seed_{s}").updates for s in (0, 1)] == [300, 300]


def test_crossq_run_refuses_other_agents_and_learners(crossq_dir, capsys):
    run = crossq_dir / "whole"
    before = fingerprint(crossq_dir)
    expect = {"--algo sac": "is a run of crossq: --algo cannot change",
              "--rho 0.9": "--algo crossq has no --rho",
              "--hidden-sizes 16": "--algo crossq has no --hidden-sizes",
              "--compile": "--compile compiles SAC's update only, not crossq's",
              "--policy-delay 3": "cannot change --policy-delay on --resume"}
    for flags, words in expect.items():
        status, out, err = sac(f"train --out {run} --steps 400 --resume {flags}", capsys)
        assert status == 2 and out == "" and words in err, (flags, err)
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert fingerprint(crossq_dir) == before


def test_eval_keeps_the_environment_the_run_was_trained_on(tmp_path, capsys):
    "--env may repeat the run's env (options kept) or name a bare one's."
    out = tmp_path / "run"
    status, _, err = sac(f"train --env sac_lit.custom:PointMass "
                         f"--max-episode-steps 30 --normalize-obs --steps 100 "
                         f"--out {out} --learning-starts 50 --hidden-sizes "
                         "32,32 --batch-size 32 --no-progress", capsys)
    assert status == 0, err
    returns = [json.loads(sac(f"eval {out} --episodes 2 --json {extra}",
                              capsys)[1])["returns"]
               for extra in ("", "--env sac_lit.custom:PointMass",
                             "--env PointMass")]
    assert returns[0] == returns[1] == returns[2]
    SAC.load(out).save(tmp_path / "bare.pt")
    status, text, err = sac(f"eval {tmp_path / 'bare.pt'} --episodes 1 "
                            "--env sac_lit/PointMass-v0", capsys)
    assert status == 0 and "over 1 episode" in text, err


def test_import_is_recorded_and_env_flags_may_repeat_on_resume(
        tmp_path, capsys, monkeypatch):
    "--import M registering ID records M:ID; --resume takes equal env flags."
    (tmp_path / "my_reach.py").write_text(
        "import gymnasium as gym\n"
        "gym.register('MyReach-v0', entry_point='sac_lit.custom:PointMass',"
        " max_episode_steps=40)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out, small = tmp_path / "run", ("--learning-starts 50 --hidden-sizes "
                                     "32,32 --batch-size 32 --no-progress")
    status, _, err = sac(f"train --import my_reach --env MyReach-v0 "
                         f"--max-episode-steps 30 --steps 100 --out {out} "
                         f"{small}", capsys)
    assert status == 0, err
    spec = json.loads((out / "config.json").read_text())["env_spec"]
    assert spec["env"] == "my_reach:MyReach-v0"
    status, _, err = sac(f"train --out {out} --steps 150 --resume "
                         "--max-episode-steps 30 --no-progress", capsys)
    assert status == 0, err
    status, _, err = sac(f"train --out {out} --steps 200 --resume "
                         "--max-episode-steps 31 --no-progress", capsys)
    assert status == 2 and "cannot change --max-episode-steps" in err
