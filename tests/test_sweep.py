"""Sweeps (sac_lit.sweep, `python -m sac_lit sweep`) and their statistics.

The end-to-end tests start a real local Ray instance with one CPU and Ray's
dashboard off, as `python -m sac_lit sweep` does, and train tiny Pendulum runs
(32-unit networks, a few hundred steps) in quick mode.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sac_lit.agent import SACConfig
from sac_lit.cli import (UsageError, build_parser, check_sweep,
                         main as cli_main, parse_seeds, saved_states)
from sac_lit.crossq import CrossQConfig
from sac_lit.loop import RunConfig
from sac_lit.sweep import iqm, iqm_ci, run_dir, run_one, steps_done
from sac_lit.train import RunDir, train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--hidden-sizes", "32,32", "--batch-size", "32",
        "--learning-starts", "100", "--eval-every", "100",
        "--eval-episodes", "1", "--checkpoint-every", "100"]
TINY_CONFIG = SACConfig(hidden_sizes=(32, 32), batch_size=32)
TINY_LOOP = RunConfig(learning_starts=100, eval_every=100, eval_episodes=1,
                      checkpoint_every=100)


def main(argv):
    return cli_main(["sweep", *argv])
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1",
             "RAY_USAGE_STATS_ENABLED": "0"}


def sweep_cli(*args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sac_lit", "sweep", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env=CHILD_ENV, cwd=ROOT)


# ------------------------------------------------------------ statistics

@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 12, 101])
def test_iqm_is_the_mean_of_the_middle_half(n):
    x = np.random.default_rng(n).normal(size=n)
    k = n // 4
    assert iqm(x) == pytest.approx(np.sort(x)[k:n - k].mean(), abs=1e-12)


def test_iqm_ignores_a_diverged_run():
    runs = [1000.0, 1010.0, 990.0, 1005.0, 995.0, 1002.0, 998.0, -1e9]
    assert 990 < iqm(runs) < 1010


def test_iqm_ci_brackets_the_iqm_and_shrinks_with_more_runs():
    rng = np.random.default_rng(0)
    small = rng.normal(size=5)
    large = rng.normal(size=500)
    m, low, high = iqm_ci(small, n_resamples=2000)
    assert low <= m <= high
    _, low_l, high_l = iqm_ci(large, n_resamples=2000)
    assert high_l - low_l < (high - low) / 3
    assert low_l < 0 < high_l                    # the true IQM of N(0, 1)


def test_iqm_ci_of_one_run_has_no_interval():
    m, low, high = iqm_ci([3.0])
    assert m == 3.0 and np.isnan(low) and np.isnan(high)


def test_iqm_ci_is_reproducible():
    x = [1.0, 5.0, 2.0, 8.0]
    assert iqm_ci(x, seed=3) == iqm_ci(x, seed=3)


# ------------------------------------------------------------- the parts

def test_sweep_defaults_to_five_seeds():
    "Five runs by default: fewer give intervals far below their coverage."
    from sac_lit.cli import build_parser
    args = build_parser().parse_args(
        ["sweep", "--envs", "Pendulum-v1", "--steps", "10", "--out", "x"])
    assert parse_seeds(args.seeds) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("text, seeds", [
    ("0-4", [0, 1, 2, 3, 4]), ("3", [3]), ("0,2,5", [0, 2, 5]),
    ("0-2,7", [0, 1, 2, 7]), (" 1 - 2 ", [1, 2])])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "3-1", "-1", "0,0", "1-2,2",
                                  "0..4", "1.5"])
def test_parse_seeds_refuses(text):
    with pytest.raises(UsageError):
        parse_seeds(text)


def test_run_status_and_steps_done(tmp_path):
    run = run_dir(tmp_path, "Pendulum-v1", 0)
    assert run == tmp_path / "Pendulum-v1" / "seed_0"
    assert RunDir(run).status(300) == "new" and steps_done(run) == 0
    train("Pendulum-v1", 200, 0, out=run, config=TINY_CONFIG, run_config=TINY_LOOP,
          progress=False)
    assert RunDir(run).status(200) == "finished"
    assert RunDir(run).status(300) == "resumable"
    assert steps_done(run) == 200


def test_run_one_restarts_a_run_that_never_checkpointed(tmp_path):
    run = run_dir(tmp_path, "Pendulum-v1", 0)
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "metrics.jsonl").write_text('{"kind": "episode", "step": 7}\n')
    row = run_one("Pendulum-v1", 0, 200, run, TINY_CONFIG, TINY_LOOP)
    assert row["status"] == "done", row
    assert json.loads((run / "summary.json").read_text())["steps"] == 200


def test_run_one_never_deletes_a_file_it_did_not_write(tmp_path):
    run = run_dir(tmp_path, "Pendulum-v1", 0)
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "notes.txt").write_text("mine")
    row = run_one("Pendulum-v1", 0, 200, run, TINY_CONFIG, TINY_LOOP)
    assert row["status"] == "failed" and "other files" in row["error"]
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "notes.txt"]
    assert (run / "config.json").read_text() == "{}"


@pytest.mark.parametrize("steps", [200, 300])   # finished, or to resume
def test_run_one_reports_a_changed_hyper_parameter(tmp_path, steps):
    run = run_dir(tmp_path, "Pendulum-v1", 0)
    train("Pendulum-v1", 200, 0, out=run, config=TINY_CONFIG, run_config=TINY_LOOP,
          progress=False)
    other = SACConfig(**{**TINY_CONFIG.to_dict(), "gamma": 0.9})
    row = run_one("Pendulum-v1", 0, steps, run, other, TINY_LOOP)
    assert row["status"] == "failed" and "gamma" in row["error"]
    loop_change = RunConfig(**{**TINY_LOOP.to_dict(), "eval_episodes": 3})
    same = run_one("Pendulum-v1", 0, 200, run, TINY_CONFIG, loop_change)
    assert same["status"] in ("skipped", "done")    # a cadence change


# ------------------------------------------------------------ end to end

def pendulum_sweep(out, steps, statuses):
    "Seeds 0-1 of Pendulum on one CPU; the runs must end with `statuses`."
    proc = sweep_cli("--envs", "Pendulum-v1", "--seeds", "0-1", "--steps",
                     str(steps), "--out", str(out), "--num-cpus", "1",
                     "--no-progress", *TINY)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "sweep.json").read_text())
    assert [r["status"] for r in record["runs"]] == statuses
    return proc


def test_a_tiny_sweep_end_to_end_then_resumed_then_skipped(tmp_path):
    out = tmp_path / "sweep"
    first = pendulum_sweep(out, 200, ["done", "done"])
    assert "Pendulum-v1: IQM final evaluation return" in first.stdout
    assert "nominal 95% interval" in first.stdout     # two runs: not a 95% CI
    assert "less often than 95%" in first.stdout
    for seed in (0, 1):
        summary = json.loads((run_dir(out, "Pendulum-v1", seed)
                              / "summary.json").read_text())
        assert summary["steps"] == 200 and summary["seed"] == seed

    pendulum_sweep(out, 300, ["resumed", "resumed"])

    # the resumed run is the run trained in one go, bit for bit
    alone = tmp_path / "alone"
    train("Pendulum-v1", 300, 1, out=alone, config=TINY_CONFIG, run_config=TINY_LOOP,
          progress=False)
    swept = torch.load(run_dir(out, "Pendulum-v1", 1) / "checkpoint.pt",
                       weights_only=True)["agent"]
    single = torch.load(alone / "checkpoint.pt", weights_only=True)["agent"]
    for part in ("actor", "critic", "critic_targ", "temperature"):
        for k, v in single[part].items():
            assert torch.equal(swept[part][k], v), (part, k)

    pendulum_sweep(out, 300, ["skipped", "skipped"])


def test_a_failing_run_is_reported_and_the_others_finish(tmp_path):
    out = tmp_path / "sweep"
    for seed in (0, 1):
        train("Pendulum-v1", 100, seed, out=run_dir(out, "Pendulum-v1", seed),
              config=TINY_CONFIG, run_config=TINY_LOOP, progress=False)
    broken = run_dir(out, "Pendulum-v1", 0) / "checkpoint.pt"
    broken.write_bytes(b"garbage")
    proc = sweep_cli("--envs", "Pendulum-v1", "--seeds", "0,1", "--steps",
                     "200", "--out", str(out), "--num-cpus", "1",
                     "--no-progress", *TINY)
    assert proc.returncode == 1, proc.stderr
    failed = [ln for ln in proc.stderr.splitlines() if ln.startswith("failed")]
    assert len(failed) == 1 and "seed_0" in failed[0]
    assert "CheckpointError" in failed[0]
    assert broken.read_bytes() == b"garbage"            # left as it was
    rows = json.loads((out / "sweep.json").read_text())["runs"]
    assert [r["status"] for r in rows] == ["failed", "resumed"]
    assert json.loads((run_dir(out, "Pendulum-v1", 1) / "summary.json")
                      .read_text())["steps"] == 200


@pytest.mark.parametrize("args, message", [
    (["--envs", "NoSuchEnv-v0"], "unknown environment"),
    (["--envs", "CartPole-v1"], "Box action space"),
    (["--envs", "Pendulum-v1,Pendulum-v1"], "distinct"),
    (["--envs", "Pendulum-v1", "--seeds", "2-1"], "--seeds"),
    (["--envs", "Pendulum-v1", "--steps", "0"], "--steps"),
    (["--envs", "Pendulum-v1", "--threads", "0"], "--threads"),
    (["--envs", "Pendulum-v1", "--num-cpus", "0"], "--num-cpus"),
    (["--envs", "Pendulum-v1", "--rho", "1"], "--rho"),
    (["--envs", "Pendulum-v1", "--no-such-flag"], "unrecognized"),
    (["--envs", "Pendulum-v1", "--policy-delay", "2"], "--algo sac has no --policy-delay"),
    (["--envs", "Pendulum-v1", "--algo", "crossq", "--rho", "0.9"],
     "--algo crossq has no --rho"),
    (["--envs", "Pendulum-v1", "--algo", "crossq", "--momentum", "2"], "momentum"),
    (["--envs", "Pendulum-v1", "--algo", "td3"], "invalid choice"),
    (["--envs", "Pendulum-v1", "--address", "127.0.0.1:1"], "nothing answers"),
    (["--envs", "Pendulum-v1", "--address", "nowhere"], "HOST:PORT"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
        tmp_path, capsys, args, message):
    out = tmp_path / "sweep"
    argv = ["--steps", "10", "--out", str(out), *args]
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert not out.exists()


def test_an_out_that_is_or_lies_under_a_file_is_bad_input(tmp_path, capsys):
    (tmp_path / "f.txt").write_text("notes")
    for out, message in ((tmp_path / "f.txt", "is a file"),
                         (tmp_path / "f.txt" / "sw", "not a writable directory")):
        status = main(["--steps", "1e1", "--out", str(out), "--envs", "Pendulum-v1"])
        err = capsys.readouterr().err
        assert status == 2 and message in err and err.count("\n") == 1, err
    assert (tmp_path / "f.txt").read_text() == "notes"


def test_python_m_sac_lit_sweep_help():
    proc = sweep_cli("--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: python -m sac_lit sweep")
    for flag in ("--envs", "--seeds", "--address", "--num-cpus", "--gamma",
                 "--hidden-sizes"):
        assert flag in proc.stdout


def test_without_ray_the_sweep_says_how_to_install_it(tmp_path):
    "Ray is an optional extra: a process where it cannot be imported."
    proc = subprocess.run(
        [sys.executable, "-c",
         "import importlib.util as u, sys; _f = u.find_spec; "
         "u.find_spec = lambda n, *a: None if n == 'ray' else _f(n, *a); "
         "sys.modules['ray'] = None; from sac_lit.cli import main; "
         f"sys.exit(main(['sweep', '--envs', 'Pendulum-v1', '--steps', '10', "
         f"'--out', {str(tmp_path / 'sweep')!r}]))"],
        capture_output=True, text=True, env=CHILD_ENV, cwd=ROOT, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == 'error: the sweep runs on Ray, which is not installed: ' \
                          'pip install "sac_lit[sweep]"\n'
    assert not (tmp_path / "sweep").exists()


def test_sweep_algo_crossq_trains_crossq_runs_and_resumes_them(tmp_path):
    "`sweep --algo crossq`: CrossQ runs with its flags, resumed to a longer budget."
    out = tmp_path / "sweep"
    crossq = ["--algo", "crossq", "--actor-hidden-sizes", "16,16",
              "--critic-hidden-sizes", "24,24", "--policy-delay", "2",
              "--renorm-warmup", "50", "--batch-size", "32",
              "--learning-starts", "100", "--eval-every", "100",
              "--eval-episodes", "1", "--checkpoint-every", "100"]
    for steps, status in ((200, "done"), (300, "resumed")):
        proc = sweep_cli("--envs", "Pendulum-v1", "--seeds", "0,1", "--steps",
                         str(steps), "--out", str(out), "--num-cpus", "1",
                         "--no-progress", *crossq)
        assert proc.returncode == 0, proc.stderr
        record = json.loads((out / "sweep.json").read_text())
        assert record["algorithm"] == "crossq"
        assert [r["status"] for r in record["runs"]] == [status, status]
    from sac_lit.agent import SAC
    from sac_lit.crossq import CrossQ, CrossQConfig
    expected = CrossQConfig(actor_hidden_sizes=(16, 16), critic_hidden_sizes=(24, 24),
                            policy_delay=2, renorm_warmup=50, batch_size=32)
    for seed in (0, 1):
        agent = SAC.load(run_dir(out, "Pendulum-v1", seed))
        assert type(agent) is CrossQ and agent.config == expected
        assert agent.updates == 300 - 100             # one per step after the warm-up
    # run again without --algo or its flags: the runs keep their own
    proc = sweep_cli("--envs", "Pendulum-v1", "--seeds", "0,1", "--steps",
                     "400", "--out", str(out), "--num-cpus", "1",
                     "--no-progress")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "sweep.json").read_text())
    assert [r["status"] for r in record["runs"]] == ["resumed", "resumed"]
    assert record["algorithm"] == "crossq"
    assert record["config"] == expected.to_dict()
    assert record["run_config"] == TINY_LOOP.to_dict()
    # a SAC sweep into the same directory is another run: refused, not mixed
    before = files(out)
    proc = sweep_cli("--envs", "Pendulum-v1", "--seeds", "0", "--steps", "400",
                     "--out", str(out), "--num-cpus", "1", "--no-progress",
                     "--algo", "sac", *TINY)
    assert proc.returncode == 2 and proc.stderr.startswith("error: "), \
        proc.stderr
    assert "crossq" in proc.stderr and proc.stderr.count("\n") == 1
    assert files(out) == before


# ------------------------------------------------------ a sweep run again

def files(out) -> dict:
    "Every file under `out`, with its bytes."
    return {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def earlier_runs(out, algo, seeds=(0, 1)) -> SACConfig | CrossQConfig:
    "Tiny runs of `algo` in `out`, as an earlier sweep leaves them."
    config = TINY_CONFIG if algo == "sac" else CrossQConfig(
        actor_hidden_sizes=(16, 16), critic_hidden_sizes=(16, 16),
        batch_size=32, renorm_warmup=50)
    for seed in seeds:
        train("Pendulum-v1", 200, seed, out=run_dir(out, "Pendulum-v1", seed),
              config=config, run_config=TINY_LOOP, progress=False)
    (out / "sweep.json").write_text('{"runs": "the earlier sweep"}')
    return config


def sweep_plan(out, *flags) -> dict:
    "check_sweep's plan for a sweep of seeds 0-2 (seed 2 new) into `out`."
    args = build_parser().parse_args(
        ["sweep", "--envs", "Pendulum-v1", "--seeds", "0-2", "--steps", "300",
         "--out", str(out), "--num-cpus", "1", *flags])
    return check_sweep(args)


@pytest.mark.parametrize("algo", ["sac", "crossq"])
def test_a_sweep_run_again_keeps_the_runs_algorithm_and_settings(
        tmp_path, algo):
    "As `train --resume`: flags not typed keep the runs' own settings."
    out = tmp_path / "sweep"
    config = earlier_runs(out, algo)
    plan = sweep_plan(out)
    assert plan["config"] == config and plan["run_config"] == TINY_LOOP
    plan = sweep_plan(out, "--algo", algo, "--batch-size", "32",
                      "--eval-every", "50")        # the same, and a cadence
    assert plan["config"] == config
    assert plan["run_config"] == RunConfig(**{**TINY_LOOP.to_dict(),
                                              "eval_every": 50})


def test_the_checks_of_a_sweep_run_again_keep_no_buffer(tmp_path):
    "Each run's settings are read, and its replay buffer let go at once."
    out = tmp_path / "sweep"
    config = earlier_runs(out, "crossq")
    states = saved_states(out, ["Pendulum-v1"], [0, 1, 2])  # 2: no run
    assert [set(s) for s in states] == [{"agent", "run_config"}] * 2
    assert [set(s["agent"]) for s in states] == [{"algorithm", "config"}] * 2
    assert states[0]["agent"]["config"] == config.to_dict()
    assert not any(torch.is_tensor(v) for s in states
                   for part in s.values() for v in part.values())


@pytest.mark.parametrize("flags, message", [
    (["--algo", "sac"], "crossq"),
    (["--learning-starts", "300"], "--learning-starts"),
    (["--algo", "crossq", "--batch-size", "64"], "--batch-size"),
    (["--hidden-sizes", "32,32"], "--algo crossq has no --hidden-sizes"),
])
def test_a_sweep_that_would_change_its_runs_is_refused_and_writes_nothing(
        tmp_path, capsys, flags, message):
    out = tmp_path / "sweep"
    earlier_runs(out, "crossq")
    before = files(out)
    status = main(["--envs", "Pendulum-v1", "--seeds", "0-2", "--steps", "300",
                   "--out", str(out), "--num-cpus", "1", "--no-progress",
                   *flags])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert files(out) == before                 # sweep.json and the runs
