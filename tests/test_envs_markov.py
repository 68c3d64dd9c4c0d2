"""Your own games from the command line: payoff files (game:<file>), multi-state Markov games
(markov:<name or file>, harl_mini.envs.markov), the two-step game, and the exact J*, J*_share
and J the trainer reports for them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from harl_mini import tabular as T
from harl_mini.__main__ import main
from harl_mini.envs import make_env
from harl_mini.envs.markov import MarkovGameEnv, load_game_file, load_payoff_file
from harl_mini.errors import HarlMiniError


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------------------------------
# The two-step game (Rashid et al. 2018)
# ---------------------------------------------------------------------------------------


def test_two_step_game_values():
    g = T.make_game("two-step")
    assert g.num_states == 4 and g.action_counts == (2, 2) and g.gamma == 0.99
    assert float(T.game_optimal_value(g)) == pytest.approx(0.99 * 8, abs=1e-12)
    # the safe branch: agent 1 picks 2A (action 0) in the start state, anything after pays 7
    safe = [torch.tensor([[1.0, 0.0]] * 4, dtype=torch.float64), torch.full((4, 2), 0.5, dtype=torch.float64)]
    assert float(T.game.objective(g, safe)) == pytest.approx(0.99 * 7, abs=1e-12)
    best = [torch.tensor([[0.0, 1.0]] * 4, dtype=torch.float64)] * 2
    assert float(T.game.objective(g, best)) == pytest.approx(0.99 * 8, abs=1e-12)
    assert float(T.game_optimal_value(T.make_game("two-step", gamma=0.5))) == pytest.approx(4.0, abs=1e-12)
    with pytest.raises(HarlMiniError, match="markov:two-step"):
        make_env("game:two-step")


def test_markov_env_terminates_in_absorbing_states_and_resets():
    env = make_env("markov:two-step", num_envs=64, seed=3)
    assert isinstance(env, MarkovGameEnv) and env.absorbing.tolist() == [False, False, False, True]
    assert env.obs_dims == [4, 4] and env.state_dim == 4
    assert torch.equal(env.state.argmax(-1), torch.zeros(64, dtype=torch.long))  # every copy starts in s_1
    g = torch.Generator().manual_seed(0)
    a = env.sample_actions(g)
    obs, state, reward, term, trunc, fobs, fstate = env.step(a)
    assert not term.any() and not trunc.any() and torch.equal(reward, torch.zeros(64))
    assert torch.equal(state.argmax(-1), 1 + a[0])  # agent 1's action picks 2A or 2B
    a = env.sample_actions(g)
    went_b = state.argmax(-1) == 2
    obs, state, reward, term, trunc, fobs, fstate = env.step(a)
    assert term.all() and not trunc.any()
    payoff_b = torch.tensor([[0.0, 1.0], [1.0, 8.0]])
    assert torch.equal(reward[~went_b], torch.full((int((~went_b).sum()),), 7.0))
    assert torch.equal(reward[went_b], payoff_b[a[0][went_b], a[1][went_b]])
    assert torch.equal(fstate.argmax(-1), torch.full((64,), 3)) and torch.equal(state.argmax(-1), torch.zeros(64).long())
    returns, lengths = env.pop_episodes()
    assert len(returns) == 64 and set(lengths) == {2}


def test_markov_env_truncates_seeds_and_snapshots(tmp_path):
    game = T.random_game(3, (2, 3), gamma=0.9, seed=4)  # no absorbing state
    with pytest.raises(HarlMiniError, match="time_limit"):
        MarkovGameEnv(game, 2)
    env = MarkovGameEnv(game, 8, seed=1, time_limit=5, obs="state+id")
    assert env.obs_dims == [3 + 2, 3 + 2]
    g = torch.Generator().manual_seed(0)
    for t in range(5):
        out = env.step(env.sample_actions(g))
    assert out[4].all() and not out[3].any()  # truncated, never terminated
    snap = env.get_state()
    first = [env.step(env.sample_actions(torch.Generator().manual_seed(k)))[1] for k in range(7)]
    env.set_state(snap)
    again = [env.step(env.sample_actions(torch.Generator().manual_seed(k)))[1] for k in range(7)]
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    a, b = MarkovGameEnv(game, 8, seed=2, time_limit=5), MarkovGameEnv(game, 8, seed=2, time_limit=5)
    for k in range(10):
        acts = a.sample_actions(torch.Generator().manual_seed(k))
        assert torch.equal(a.step(acts)[1], b.step(acts)[1])


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------


def test_payoff_files_in_every_format(tmp_path):
    payoff = np.arange(12, dtype=float).reshape(2, 3, 2)  # three agents, 2/3/2 actions
    np.save(tmp_path / "g.npy", payoff)
    (tmp_path / "g.json").write_text(json.dumps({"payoff": payoff.tolist()}))
    (tmp_path / "l.json").write_text(json.dumps(payoff.tolist()))
    rows = "\n".join(f"{i},{j},{k},{payoff[i, j, k]}" for i in range(2) for j in range(3) for k in range(2))
    (tmp_path / "long.csv").write_text("a1,a2,a3,reward\n" + rows)
    (tmp_path / "grid.csv").write_text("# agent 1 in rows\n1,0\n0,1\n")
    for name in ("g.npy", "g.json", "l.json", "long.csv"):
        assert np.array_equal(load_payoff_file(tmp_path / name), payoff), name
        env = make_env(f"game:{tmp_path / name}", num_envs=4)
        assert env.action_spaces == [("discrete", 2), ("discrete", 3), ("discrete", 2)]
    assert np.array_equal(load_payoff_file(tmp_path / "grid.csv"), np.eye(2))


@pytest.mark.parametrize("name, content, match", [
    ("ragged.csv", "1,2\n3\n", "same number of columns"),
    ("nan.json", "[[1, NaN], [0, 1]]", "contains nan at index \\(0, 1\\)"),
    ("key.json", '{"pay": [1]}', "\"payoff\" key"),
    ("broken.json", "[[1, 2]", "not valid JSON"),
    ("missing.csv", "a1,a2,reward\n0,0,1\n1,1,2\n", "exactly once"),
    ("text.npy", "not numpy", "not a numpy"),
    ("g.txt", "1", "unknown game .*<payoff file>.npy"),
])
def test_bad_payoff_files_are_one_line(tmp_path, name, content, match):
    (tmp_path / name).write_text(content)
    with pytest.raises(HarlMiniError, match=match) as info:
        make_env(f"game:{tmp_path / name}")
    assert "\n" not in str(info.value) and name in str(info.value)


def test_a_missing_payoff_file(tmp_path):
    with pytest.raises(HarlMiniError, match="no such file"):
        make_env(f"game:{tmp_path / 'none.npy'}")


def test_markov_game_files(tmp_path):
    g = T.random_game(3, (2, 2), gamma=0.8, seed=1)
    np.savez(tmp_path / "g.npz", P=g.P.numpy(), R=g.R.numpy(), rho0=g.rho0.numpy(), gamma=0.8)
    (tmp_path / "g.json").write_text(json.dumps({"P": g.P.tolist(), "R": g.R.tolist(), "gamma": 0.8,
                                                 "rho0": g.rho0.tolist(), "name": "mine"}))
    for name in ("g.npz", "g.json"):
        loaded = load_game_file(tmp_path / name)
        assert torch.equal(loaded.P, g.P) and torch.equal(loaded.R, g.R) and loaded.gamma == 0.8
    assert load_game_file(tmp_path / "g.json").name == "mine"
    bad = g.P.clone()
    bad[0, 0, 0] += 0.5
    (tmp_path / "bad.json").write_text(json.dumps({"P": bad.tolist(), "R": g.R.tolist()}))
    with pytest.raises(HarlMiniError, match="bad.json: P: .*sum to 1"):
        make_env(f"markov:{tmp_path / 'bad.json'}", time_limit=5)
    (tmp_path / "keys.json").write_text(json.dumps({"P": g.P.tolist()}))
    with pytest.raises(HarlMiniError, match="missing R"):
        make_env(f"markov:{tmp_path / 'keys.json'}", time_limit=5)


# ---------------------------------------------------------------------------------------
# From the command line, with exact J*, J*_share and J
# ---------------------------------------------------------------------------------------


def _train(*args) -> int:
    return main(["train", "--no-progress", "--no-tensorboard", *map(str, args)])


def test_train_your_own_payoff_file_reports_exact_values(tmp_path, capsys):
    payoff = np.array([[11.0, -30.0, 0.0], [-30.0, 7.0, 6.0], [0.0, 0.0, 5.0]])  # climbing
    np.save(tmp_path / "climb.npy", payoff)
    assert _train("--algo", "happo", "--env", f"game:{tmp_path / 'climb.npy'}", "--steps", 3 * 4096,
                  "--out", tmp_path / "run") == 0
    out = capsys.readouterr().out
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    shared = T.best_shared_policy(T.matrix_game(torch.tensor(payoff)))
    assert m["j_star"] == 11.0 and m["j_star_share"] == pytest.approx(float(shared.value), abs=1e-12)
    assert m["hyperparameters"]["num_envs"] == 4096 and m["hyperparameters"]["gamma"] == 0.0  # game preset
    assert m["final_j_exact"] is not None and "exact J" in out and "J* 11" in out


def test_train_the_two_step_game_reaches_the_optimum(tmp_path):
    assert _train("--algo", "happo", "--env", "markov:two-step", "--steps", 300_000, "--out", tmp_path / "r") == 0
    m = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert m["j_star"] == pytest.approx(7.92) and m["final_j_exact"] >= 0.97 * m["j_star"]
    assert m["final_eval"]["mean"] == 8.0  # the deterministic policy plays 2B then (1, 1)


def test_a_bad_file_on_the_command_line_is_one_line(tmp_path, capsys):
    (tmp_path / "x.csv").write_text("1,2\n3\n")
    assert _train("--algo", "happo", "--env", f"game:{tmp_path / 'x.csv'}", "--steps", 100,
                  "--out", tmp_path / "r") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "x.csv" in err
