"""Unit tests for sac_lit.buffer (chapter 8): the ring of arrays, uniform
sampling, input checks, exact resume, and the data path of time limits."""
from __future__ import annotations

import inspect
import io
import math
from collections import deque

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers import TimeLimit

from sac_lit.buffer import Batch, ReplayBuffer, nbytes_per_transition
from sac_lit.targets import soft_q_target

FIELDS = ("obs", "action", "reward", "next_obs", "terminated")


def _transition(k, obs_dim=2, act_dim=1):
    "Transition number k, every piece derived from k so rows can be checked."
    return (np.full(obs_dim, k, dtype=np.float64),
            np.full(act_dim, k / 1000.0), float(-k),
            np.full(obs_dim, k + 0.5), k % 3 == 0)


def _stored(buf):
    "The stored transitions as a set of tuples (order-free)."
    n = len(buf)
    return {(float(buf.obs[i, 0]), float(buf.action[i, 0]),
             float(buf.reward[i]), float(buf.next_obs[i, 0]),
             float(buf.terminated[i])) for i in range(n)}


def _as_tuple(k):
    s, a, r, s2, d = _transition(k)
    return (float(np.float32(s[0])), float(np.float32(a[0])),
            float(np.float32(r)), float(np.float32(s2[0])), float(d))


# ---------------------------------------------------------------- the ring

@pytest.mark.parametrize("capacity, n_added", [(7, 3), (7, 7), (7, 20), (1, 5)])
def test_keeps_the_newest_like_a_bounded_deque(capacity, n_added):
    buf = ReplayBuffer(2, 1, capacity)
    reference = deque(maxlen=capacity)       # independent model of "newest N"
    for k in range(n_added):
        buf.add(*_transition(k))
        reference.append(_as_tuple(k))
    assert len(buf) == len(reference) == min(n_added, capacity)
    assert buf.position == n_added % capacity
    assert _stored(buf) == set(reference)
    for k in range(max(n_added - capacity, 0), n_added):   # row k mod N holds k
        assert buf.obs[k % capacity, 0] == k


def test_add_batch_equals_adding_one_by_one_for_any_chunking():
    rng = np.random.default_rng(0)
    rows = [_transition(k) for k in range(53)]
    columns = [np.stack(piece) for piece in zip(*rows)]
    one_by_one = ReplayBuffer(2, 1, 10)
    for row in rows:
        one_by_one.add(*row)
    for _ in range(20):
        cuts = np.sort(rng.choice(np.arange(1, 53), size=rng.integers(0, 6),
                                  replace=False))
        chunked = ReplayBuffer(2, 1, 10)
        for lo, hi in zip([0, *cuts], [*cuts, 53]):      # chunks may exceed N
            chunked.add_batch(*(c[lo:hi] for c in columns))
        assert (chunked.size, chunked.position) == (one_by_one.size,
                                                    one_by_one.position)
        for name in FIELDS:
            assert np.array_equal(getattr(chunked, name),
                                  getattr(one_by_one, name)), (name, cuts)


def test_empty_add_batch_changes_nothing():
    buf = ReplayBuffer(2, 1, 5)
    buf.add(*_transition(1))
    buf.add_batch(np.zeros((0, 2)), np.zeros((0, 1)), np.zeros(0),
                  np.zeros((0, 2)), np.zeros(0))
    assert (len(buf), buf.position) == (1, 1)


# ------------------------------------------------------------- sampling

def test_partly_filled_buffer_never_returns_empty_rows():
    buf = ReplayBuffer(2, 1, capacity=100, seed=3)
    for k in range(1, 11):                          # obs = 1..10, never 0
        buf.add(*_transition(k))
    obs = torch.cat([buf.sample(64).obs[:, 0] for _ in range(200)])
    assert obs.min() >= 1 and set(obs.long().tolist()) == set(range(1, 11))


@pytest.mark.parametrize("n_added", [30, 95])
def test_sampling_is_uniform_chi_square(n_added):
    # A correct sampler fails this at p < 1e-3 for one seed in a thousand;
    # seeds are fixed, so the outcome is reproducible.
    buf = ReplayBuffer(2, 1, capacity=50, seed=11)
    for k in range(n_added):
        buf.add(*_transition(k))
    draws = 100_000
    obs = torch.cat([buf.sample(500).obs[:, 0] for _ in range(draws // 500)])
    oldest = max(n_added - 50, 0)
    counts = torch.bincount(obs.long() - oldest, minlength=len(buf)).double()
    assert counts.numel() == len(buf)
    expected = draws / len(buf)
    chi2 = ((counts - expected) ** 2 / expected).sum()
    dof = torch.tensor(len(buf) - 1.0, dtype=torch.float64)
    p_value = float(torch.special.gammaincc(dof / 2, chi2 / 2))
    assert p_value > 1e-3, (chi2, p_value)


def test_sampled_rows_are_whole_stored_transitions():
    buf = ReplayBuffer(2, 1, capacity=40, seed=0)
    for k in range(90):
        buf.add(*_transition(k))
    batch = buf.sample(300)
    stored = _stored(buf)
    for i in range(300):
        row = (float(batch.obs[i, 0]), float(batch.action[i, 0]),
               float(batch.reward[i]), float(batch.next_obs[i, 0]),
               float(batch.terminated[i]))
        assert row in stored


def test_batch_shapes_and_dtypes():
    buf = ReplayBuffer(5, 3, capacity=16, seed=0)
    for k in range(20):
        buf.add(*_transition(k, obs_dim=5, act_dim=3))
    batch = buf.sample(9, device="cpu")
    assert isinstance(batch, Batch) and batch._fields == FIELDS
    assert [tuple(t.shape) for t in batch] == [(9, 5), (9, 3), (9,), (9, 5),
                                               (9,)]
    assert all(t.dtype == torch.float32 and t.device.type == "cpu"
               for t in batch)
    assert all(getattr(buf, name).dtype == np.float32 for name in FIELDS)


def test_same_seed_same_minibatches_different_seed_different():
    def draws(seed):
        buf = ReplayBuffer(2, 1, capacity=64, seed=seed)
        for k in range(64):
            buf.add(*_transition(k))
        return torch.cat([buf.sample(32).obs[:, 0] for _ in range(5)])
    assert torch.equal(draws(5), draws(5))
    assert not torch.equal(draws(5), draws(6))


def test_sample_errors():
    buf = ReplayBuffer(2, 1, capacity=4)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(3)
    buf.add(*_transition(0))
    with pytest.raises(ValueError):
        buf.sample(0)
    with pytest.raises(TypeError):
        buf.sample(2.5)


# ------------------------------------------------------------ input checks

def _good():
    return dict(obs=np.zeros(3), action=np.zeros(2), reward=0.5,
                next_obs=np.ones(3), terminated=False)


@pytest.mark.parametrize("change, word", [
    (dict(obs=np.zeros(4)), "obs"),
    (dict(obs=np.zeros((1, 3))), "obs"),
    (dict(action=np.zeros(1)), "action"),
    (dict(next_obs=np.zeros(2)), "next_obs"),
    (dict(reward=np.array([1.0])), "reward"),
    (dict(terminated=np.array([True])), "terminated"),
    (dict(obs=np.array([0.0, np.nan, 0.0])), "obs"),
    (dict(action=np.array([np.inf, 0.0])), "action"),
    (dict(reward=float("nan")), "reward"),
    (dict(next_obs=np.array([0.0, 0.0, -np.inf])), "next_obs"),
    (dict(terminated=0.5), "terminated"),
    (dict(terminated=2), "terminated"),
    (dict(terminated=float("nan")), "terminated"),
])
def test_bad_transitions_are_refused_and_leave_the_buffer_unchanged(change,
                                                                     word):
    buf = ReplayBuffer(3, 2, capacity=5)
    buf.add(**_good())
    before = {name: getattr(buf, name).copy() for name in FIELDS}
    with pytest.raises(ValueError, match=word):
        buf.add(**{**_good(), **change})
    assert (len(buf), buf.position) == (1, 1)
    assert all(np.array_equal(before[n], getattr(buf, n)) for n in FIELDS)


def test_bad_batch_is_refused():
    buf = ReplayBuffer(3, 2, capacity=5)
    with pytest.raises(ValueError, match="reward"):    # 4 rows vs 3 rewards
        buf.add_batch(np.zeros((4, 3)), np.zeros((4, 2)), np.zeros(3),
                      np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="obs"):       # transposed obs
        buf.add_batch(np.zeros((3, 4)), np.zeros((4, 2)), np.zeros(4),
                      np.zeros((4, 3)), np.zeros(4))
    assert len(buf) == 0


@pytest.mark.parametrize("kwargs, error", [
    (dict(obs_dim=0, act_dim=1, capacity=5), ValueError),
    (dict(obs_dim=3, act_dim=0, capacity=5), ValueError),
    (dict(obs_dim=3, act_dim=1, capacity=0), ValueError),
    (dict(obs_dim=3, act_dim=1, capacity=5.0), TypeError),
])
def test_constructor_checks(kwargs, error):
    with pytest.raises(error):
        ReplayBuffer(**kwargs)


def test_terminated_is_stored_exactly_as_given():
    # add() has no truncated argument: nothing can be OR-ed into d.
    params = list(inspect.signature(ReplayBuffer.add).parameters)
    assert params == ["self", *FIELDS]
    flags = [False, True, 0, 1, np.bool_(True), np.bool_(False), True, 0.0]
    buf = ReplayBuffer(1, 1, capacity=len(flags))
    for k, d in enumerate(flags):
        buf.add([k], [0.0], 0.0, [k + 1], d)
    assert buf.terminated.tolist() == [float(d) for d in flags]


def test_float64_inputs_are_stored_as_float32():
    buf = ReplayBuffer(2, 1, capacity=3)
    x = np.array([0.1, 1 / 3])                        # not exact in float32
    buf.add(x, [0.7], 0.1, x, False)
    assert buf.obs.dtype == np.float32
    assert np.array_equal(buf.obs[0], x.astype(np.float32))
    assert buf.reward[0] == np.float32(0.1)


# ----------------------------------------------------------------- resume

@pytest.mark.parametrize("n_before", [13, 70])     # partly filled, wrapped
def test_state_dict_round_trip_gives_identical_future(n_before):
    original = ReplayBuffer(2, 1, capacity=30, seed=21)
    for k in range(n_before):
        original.add(*_transition(k))
    original.sample(8)                                # move the generator
    file = io.BytesIO()
    torch.save(original.state_dict(), file)
    file.seek(0)
    resumed = ReplayBuffer(2, 1, capacity=30, seed=999)
    for k in range(25):                               # stale content to erase
        resumed.add(*_transition(1000 + k))
    resumed.load_state_dict(torch.load(file, weights_only=True))
    for name in FIELDS:                               # identical right away
        assert np.array_equal(getattr(resumed, name), getattr(original, name))
    for k in range(n_before, n_before + 45):
        original.add(*_transition(k))
        resumed.add(*_transition(k))
        for x, y in zip(original.sample(8), resumed.sample(8)):
            assert torch.equal(x, y)
    assert (resumed.size, resumed.position) == (original.size,
                                                original.position)
    for name in FIELDS:
        assert np.array_equal(getattr(resumed, name), getattr(original, name))


def test_state_dict_holds_only_tensors_and_plain_python():
    buf = ReplayBuffer(2, 1, capacity=8, seed=0)
    for k in range(5):
        buf.add(*_transition(k))
    state = buf.state_dict()
    assert all(isinstance(state[n], torch.Tensor) and len(state[n]) == 5
               for n in FIELDS)
    assert (state["size"], state["position"], state["capacity"]) == (5, 5, 8)
    buf.obs[0, 0] = 123.0                             # a copy, not a view
    assert state["obs"][0, 0] == 0.0


def test_load_state_dict_rejects_another_shape():
    source = ReplayBuffer(2, 1, capacity=8)
    source.add(*_transition(1))
    with pytest.raises(ValueError):
        ReplayBuffer(2, 1, capacity=9).load_state_dict(source.state_dict())
    with pytest.raises(ValueError):
        ReplayBuffer(3, 1, capacity=8).load_state_dict(source.state_dict())


# ----------------------------------------------------------------- memory

@pytest.mark.parametrize("obs_dim, act_dim", [(17, 6), (3, 1), (1, 1),
                                              (376, 17)])
def test_nbytes_per_transition_matches_the_arrays(obs_dim, act_dim):
    buf = ReplayBuffer(obs_dim, act_dim, capacity=100)
    total = sum(getattr(buf, name).nbytes for name in FIELDS)
    assert total == 100 * nbytes_per_transition(obs_dim, act_dim)
    assert nbytes_per_transition(17, 6) == 168


# ----------------------------------------- time limits: the data path

class _Ring(gym.Env):
    "C cells; each step moves one cell on; leaving cell x pays x."

    def __init__(self, n_cells=5):
        self.n_cells = n_cells
        self.observation_space = gym.spaces.Box(0, n_cells - 1, (1,))
        self.action_space = gym.spaces.Box(-1, 1, (1,))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = 0
        return np.array([self.x], dtype=np.float32), {}

    def step(self, action):
        reward = float(self.x)
        self.x = (self.x + 1) % self.n_cells
        return np.array([self.x], dtype=np.float32), reward, False, False, {}


def _collect(rule, episodes=20, limit=12):
    env = TimeLimit(_Ring(), limit)
    buf = ReplayBuffer(1, 1, capacity=episodes * limit, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(episodes * limit):
        action = np.zeros(1)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        d = (terminated or truncated) if rule == "done" else terminated
        if rule != "reset":
            buf.add(obs, action, reward, next_obs, d)
        if terminated or truncated:
            next_obs, _ = env.reset()
        if rule == "reset":
            buf.add(obs, action, reward, next_obs, d)
        obs = next_obs
    return buf


def _fitted_values(buf, gamma=0.9, rounds=400):
    "Expected TD on the stored data: V(x) <- mean of y over rows from x."
    n = len(buf)
    batch = Batch(*(torch.as_tensor(getattr(buf, f)[:n]) for f in FIELDS))
    x, x_next = batch.obs[:, 0].long(), batch.next_obs[:, 0].long()
    count = torch.bincount(x, minlength=5).double()
    V = torch.zeros(5, dtype=torch.float64)
    zeros = torch.zeros(n, dtype=torch.float64)
    for _ in range(rounds):
        y = soft_q_target(batch.reward.double(), batch.terminated, V[x_next],
                          V[x_next], zeros, gamma, 0.0)
        V = torch.zeros(5, dtype=torch.float64).index_add_(0, x, y) / count
    return V.numpy()


def test_truncated_episodes_bootstrap_to_the_true_values():
    gamma, C = 0.9, 5
    truth = np.array([sum(gamma**t * ((x + t) % C) for t in range(400))
                      for x in range(C)])                 # the definition
    assert np.allclose(_fitted_values(_collect("right")), truth, atol=1e-6)
    assert not np.allclose(_fitted_values(_collect("done")), truth, atol=1.0)
    assert not np.allclose(_fitted_values(_collect("reset")), truth, atol=1.0)
