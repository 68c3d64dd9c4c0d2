"""The multi-agent command-line trainer (harl_mini.marl.trainer): outputs, bit-identical resume,
the NaN guard's exit, bad input.

Every run is a one-state game with 16–64 copies and a handful of iterations (well under a
second each, one torch thread).
"""

from __future__ import annotations

import csv
import json
import sys
import types

import pytest
import torch

from harl_mini.__main__ import main
from harl_mini.envs import ENVS
from harl_mini.envs.matrix import MatrixGameEnv
from harl_mini.marl.actors import MultiAgentActors
from harl_mini.marl.trainer import Trainer, load_checkpoint, wants_multi_agent
from harl_mini.tabular import make_game

#: columns that measure time, not the computation
TIMING = ("wall_time", "steps_per_s")


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _rows(run) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def _state(run) -> dict:
    return load_checkpoint(run)["runner"]


def _assert_same_state(a: dict, b: dict) -> None:
    for part in ("actors", "critic"):
        assert a[part].keys() == b[part].keys()
        for name in a[part]:
            assert torch.equal(a[part][name], b[part][name]), f"{part}.{name}"
    for opt_a, opt_b in zip(a["actor_optims"] + [a["critic_optim"]], b["actor_optims"] + [b["critic_optim"]]):
        for k, s in opt_a["state"].items():
            assert all(torch.equal(s[key], opt_b["state"][k][key]) for key in s)
    assert torch.equal(a["generator"], b["generator"]) and torch.equal(a["torch_rng"], b["torch_rng"])


def _train(*args) -> int:
    return main(["train", "--no-progress", "--no-tensorboard", *map(str, args)])


# ---------------------------------------------------------------------------------------
# Resume is bit-identical
# ---------------------------------------------------------------------------------------

# (algo, config text): climbing with 3-step episodes and 2-step rollouts, so episodes straddle
# iterations and the env's own state (step within the episode, running return) matters.
CASES = {
    "xor-happo": ("happo", "env: game:xor\nnum_envs: 64\nhparams: {num_steps: 1, eval_interval: 3}\n"),
    "climbing-hatrpo": ("hatrpo", "env: game:climbing\nenv_kwargs: {episode_length: 3}\nnum_envs: 16\n"
                                  "hparams: {num_steps: 2, gamma: 0.9, hidden: [8], eval_interval: 3}\n"),
    "a1a2-mappo": ("mappo", "env: game:a1a2\nnum_envs: 64\nhparams: {num_steps: 1, eval_interval: 1, "
                            "share_params: false, num_minibatches: 2}\n"),
    "climbing-ippo-shared-critic": ("ippo", "env: game:climbing\nenv_kwargs: {episode_length: 3}\nnum_envs: 16\n"
                                            "hparams: {num_steps: 2, hidden: [8], share_critic: true, "
                                            "critic_minibatches: 2, eval_interval: 3}\n"),
}


@pytest.mark.parametrize("case", CASES)
def test_resume_is_bit_identical(case, tmp_path):
    algo, text = CASES[case]
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"algo: {algo}\n{text}")
    batch = 64 if "num_envs: 64" in text else 32
    a, b = tmp_path / "A", tmp_path / "B"
    assert _train("--config", cfg, "--steps", 6 * batch, "--checkpoint-every", 3, "--out", a) == 0
    assert _train("--config", cfg, "--steps", 3 * batch, "--checkpoint-every", 3, "--out", b) == 0
    assert len(_rows(b)) == 3
    assert _train("--resume", b, "--steps", 6 * batch) == 0
    assert _rows(a) == _rows(b) and len(_rows(a)) == 6
    _assert_same_state(_state(a), _state(b))
    manifest = json.loads((b / "manifest.json").read_text())
    assert manifest["resume_identical"] is True and manifest["resumed_from"]["iteration"] == 3
    assert manifest["status"] == "completed" and manifest["steps"] == 6 * batch


def test_resume_from_an_earlier_checkpoint_truncates_the_rows(tmp_path, capsys):
    """An interrupted run (same budget, anneal_lr on) continued from ckpt_2.pt, in its own folder
    and in a fresh one: rows after the checkpoint are dropped and recomputed identically."""
    a, c = tmp_path / "A", tmp_path / "C"
    args = ["--algo", "ippo", "--env", "game:penalty", "--num-envs", 32, "--steps", 5 * 32, "--set", "anneal_lr=True",
            "--checkpoint-every", 2, "--keep-checkpoints", 0]
    assert _train(*args, "--out", a) == 0
    reference = _rows(a)
    assert sorted(p.name for p in (a / "checkpoints").iterdir()) == ["ckpt_2.pt", "ckpt_4.pt", "ckpt_5.pt", "last.pt"]
    reference_state = _state(a)
    assert _train("--resume", a / "checkpoints" / "ckpt_2.pt", "--out", c) == 0
    assert _train("--resume", a / "checkpoints" / "ckpt_2.pt") == 0
    assert "identical continuation: yes" in capsys.readouterr().out
    for run in (a, c):
        assert _rows(run) == reference
        _assert_same_state(_state(run), reference_state)


# ---------------------------------------------------------------------------------------
# Test environments behind the registry: no savable state; rewards that blow up
# ---------------------------------------------------------------------------------------


class NoStateEnv(MatrixGameEnv):
    """climbing with 3-step episodes whose state cannot be captured (get_state() is None)."""

    def __init__(self, num_envs, seed, device):
        super().__init__(make_game("climbing"), num_envs, device, episode_length=3, seed=seed,
                         name="testenv:nostate")

    def _get_state(self):
        return None


class BlowUpEnv(MatrixGameEnv):
    """xor whose reward becomes 3e38 (finite, but its batch mean overflows) after 3 steps."""

    def __init__(self, num_envs, seed, device):
        self.calls = 0
        super().__init__(make_game("xor"), num_envs, device, seed=seed, name="testenv:blowup")

    def _step(self, actions):
        out = list(super()._step(actions))
        self.calls += 1
        if self.calls > 3:
            out[2] = torch.full_like(out[2], 3e38)
        return tuple(out)


def _make_test_env(rest, num_envs=1, seed=0, device="cpu"):
    return {"nostate": NoStateEnv, "blowup": BlowUpEnv}[rest](num_envs, seed, device)


@pytest.fixture
def test_envs(monkeypatch):
    module = types.ModuleType("harl_mini_test_envs")
    module.make = _make_test_env
    monkeypatch.setitem(sys.modules, "harl_mini_test_envs", module)
    monkeypatch.setitem(ENVS, "testenv", ("harl_mini_test_envs:make", "testenv:<nostate|blowup> (tests)"))


def test_resume_without_env_state_works_but_says_not_identical(test_envs, tmp_path, capsys):
    run = tmp_path / "run"
    common = ["--algo", "happo", "--env", "testenv:nostate", "--num-envs", 16, "--num-steps", 2, "--no-preset",
              "--set", "hidden=(8,)"]
    assert _train(*common, "--steps", 3 * 32, "--out", run) == 0
    assert json.loads((run / "manifest.json").read_text())["env_state_saved"] is False
    assert _train("--resume", run, "--steps", 5 * 32) == 0
    out = capsys.readouterr().out
    assert "identical continuation: no" in out and "get_state() is None" in out
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["resume_identical"] is False and manifest["status"] == "completed"
    assert "episodes restart" in manifest["resumed_from"]["reason"]
    assert [int(r["iteration"]) for r in _rows(run)] == [0, 1, 2, 3, 4]


def test_resume_api_with_an_env_object(tmp_path):
    """Trainer.resume with the same env object type (a run made from an object, not a name)."""
    out = tmp_path / "run"
    Trainer("mappo", NoStateEnv(16, 0, "cpu"), 2 * 16, out=out, progress=False, hparams={"num_steps": 1}).run()
    with pytest.raises(Exception, match="environment object"):
        Trainer.resume(out, steps=4 * 16, progress=False)
    trainer = Trainer.resume(out, steps=4 * 16, env=NoStateEnv(16, 0, "cpu"), progress=False)
    history = trainer.run()
    assert len(history) == 4 and trainer.resume_identical is False


def test_nan_guard_exits_3_and_keeps_the_last_good_checkpoint(test_envs, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train("--algo", "happo", "--env", "testenv:blowup", "--num-envs", 64, "--num-steps", 1, "--steps", 640,
                  "--checkpoint-every", 2, "--out", run) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: NaN guard:") and "at iteration 3" in err[0]
    assert err[0].endswith(f"last good checkpoint: {run / 'checkpoints' / 'ckpt_2.pt'}")
    assert len(_rows(run)) == 3  # the rows before the failure stay
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["ckpt_2.pt", "last.pt"]
    assert load_checkpoint(run)["runner"]["iteration"] == 2
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["error"].startswith("NaN guard")


# ---------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------


def test_outputs_tensorboard_manifest_and_checkpoint_pruning(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--algo", "hatrpo", "--env", "game:xor", "--num-envs", "32", "--steps", "2.56e2",
                 "--eval-every", "3", "--checkpoint-every", "2", "--keep-checkpoints", "2", "--device", "cpu",
                 "--out", str(run)]) == 0
    assert "wrote" in capsys.readouterr().out
    rows = _rows(run)
    assert len(rows) == 8 and [r["eval_return"] != "" for r in rows] == [False, False, True] * 2 + [False, True]
    assert {"episode_return", "j_exact", "kl", "order", "accepted", "value_loss"} <= rows[0].keys()
    assert list(run.glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["ckpt_6.pt", "ckpt_8.pt", "last.pt"]
    m = json.loads((run / "manifest.json").read_text())
    for key in ("git_commit", "versions", "cpu", "torch_threads", "command", "hyperparameters", "env_kwargs",
                "steps_per_s", "wall_time", "final_eval", "batch_size"):
        assert m[key] is not None, key
    assert m["algo"] == "hatrpo" and m["env"] == "game:xor" and m["steps"] == 256 and m["device"] == "cpu"
    assert m["torch_threads"] == 1 and m["resume_identical"] is None and m["env_state_saved"] is True
    assert m["hyperparameters"]["num_envs"] == 32 and m["hyperparameters"]["eval_interval"] == 3
    assert m["final_eval"]["mean"] == float(rows[-1]["eval_return"])
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["runner"]["iteration"] == 8 and len(ckpt["rows"]) == 8
    # a second fresh run into the same folder is refused; --overwrite starts afresh
    assert _train("--algo", "hatrpo", "--env", "game:xor", "--steps", 256, "--out", run) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_config_file_flags_and_set_override_in_order(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("algo: mappo\nenv: game:xor\nnum_envs: 16\nsteps: 1e9\n"
                   "hparams: {lr: 5e-4, num_steps: 3, hidden: [4, 4], eval_episodes: 3}\n")
    run = tmp_path / "run"
    assert _train("--config", cfg, "--steps", 2 * 16 * 2, "--num-steps", 2, "--set", "lr=0.01", "--out", run) == 0
    m = json.loads((run / "manifest.json").read_text())
    hp = m["hyperparameters"]
    assert (hp["lr"], hp["num_steps"], hp["hidden"], hp["num_envs"], hp["eval_episodes"]) == (0.01, 2, [4, 4], 16, 3)
    assert hp["gamma"] == 0.0  # the game preset, under the file
    assert m["config_file"] == str(cfg) and m["overrides"] == {"lr": 0.01} and m["iterations"] == 2


# ---------------------------------------------------------------------------------------
# Bad input: one clear line, exit code 2
# ---------------------------------------------------------------------------------------


def _bad_config(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return str(path)


BAD = {
    "unknown algo": (["--algo", "mappo2", "--env", "game:xor", "--steps", "64"],
                     "unknown algorithm 'mappo2'; available: ippo, mappo, happo, hatrpo, ar_mappo, ar_happo, mat, mat_dec (multi-agent)"),
    "unknown env family": (["--algo", "happo", "--env", "nosuch:xor", "--steps", "64"],
                           "unknown environment 'nosuch:xor'; available:"),
    "unknown game": (["--algo", "happo", "--env", "game:nosuch", "--steps", "64"], "unknown game 'nosuch'"),
    "bad --set": (["--algo", "happo", "--env", "game:xor", "--steps", "64", "--set", "lr"],
                  "--set: expected name=value"),
    "unknown hyperparameter": (["--algo", "happo", "--env", "game:xor", "--steps", "64", "--set", "learning_rate=1"],
                               "unknown hyperparameter(s) 'learning_rate'"),
    "steps zero": (["--algo", "happo", "--env", "game:xor", "--steps", "0"], "steps: expected a positive"),
    "steps negative": (["--algo", "happo", "--env", "game:xor", "--steps=-2e6"], "steps: expected a positive"),
    "steps fractional": (["--algo", "happo", "--env", "game:xor", "--steps", "10.5"], "positive whole number"),
    "steps text": (["--algo", "happo", "--env", "game:xor", "--steps", "lots"], "such as 2e6"),
    "unknown device": (["--algo", "happo", "--env", "game:xor", "--steps", "64", "--device", "tpu"],
                       "unknown device 'tpu'"),
    "missing env": (["--algo", "happo", "--steps", "64"], "missing --env"),
    "missing config file": (["--config", "{tmp}/nope.yaml"], "nope.yaml' not found"),
    "unknown config key": (["--config", "BAD:algo: happo\nenv: game:xor\nsteps: 64\nlearning_rate: 1\n"],
                           "bad.yaml: unknown key(s) 'learning_rate'; allowed: algo, env, env_kwargs"),
    "unknown config hparam": (["--config", "BAD:algo: happo\nenv: game:xor\nsteps: 64\nhparams: {hiden: [8]}\n"],
                              "bad.yaml: unknown hyperparameter(s) 'hiden' under hparams"),
    "resume with --set": (["--resume", "{tmp}", "--set", "lr=1"], "--set cannot be changed"),
    "resume nothing": (["--resume", "{tmp}/none"], "--resume: no checkpoint at"),
    "threads": (["--algo", "happo", "--env", "game:xor", "--steps", "64", "--threads", "0"], "--threads"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_exits_2_with_one_clear_line(case, tmp_path, capsys):
    argv, message = BAD[case]
    argv = [_bad_config(tmp_path, a[4:]) if a.startswith("BAD:") else a.format(tmp=tmp_path) for a in argv]
    assert main(["train", "--no-progress", "--no-tensorboard", "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_clear_error(tmp_path, capsys):
    assert _train("--algo", "happo", "--env", "game:xor", "--steps", 64, "--device", "cuda", "--out", tmp_path) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_train_dispatch():
    assert wants_multi_agent(["--algo", "happo"]) and wants_multi_agent(["--config", "x.yaml"])
    assert wants_multi_agent(["--resume", "runs/x"]) and wants_multi_agent(["--algo", "nope"])
    assert not wants_multi_agent(["--algo", "ppo", "--env", "gym:CartPole-v1"])


# ---------------------------------------------------------------------------------------
# HARL's LayerNorm options (feature_norm, layer_norm)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("space", [("discrete", 3), ("box", 2)])
def test_layer_norm_actors_sample_with_their_own_log_probs(space):
    """The batched sampler (stacked per-agent LayerNorm affine maps) agrees with each agent's own forward."""
    torch.manual_seed(0)
    actors = MultiAgentActors([5, 5], [space, space], hidden=(8, 8), activation="relu", feature_norm=True,
                              layer_norm=True)
    net = actors._net(0)
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in net) == 3 and isinstance(net[0], torch.nn.LayerNorm)
    with torch.no_grad():  # make the two agents' LayerNorm parameters differ
        for p in actors.policies[1].parameters():
            p.add_(0.3 * torch.randn_like(p))
    obs = [torch.randn(64, 5), torch.randn(64, 5) * 3 + 1]
    actions, logp = actors.sampler()(obs, torch.Generator().manual_seed(1))
    for i in range(2):
        torch.testing.assert_close(logp[i], actors.log_prob(i, obs[i], actions[i]), atol=1e-5, rtol=1e-5)


def test_layer_norm_off_by_default_and_trains(tmp_path):
    from harl_mini import marl

    plain = marl.train("happo", "game:xor", 2 * 64, progress=False, num_envs=64, num_steps=1, hidden=(8,))
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in plain.policy.modules())
    h = marl.train("happo", "game:xor", 2 * 64, progress=False, num_envs=64, num_steps=1, hidden=(8,),
                   feature_norm=True, layer_norm=True)
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in h.value_fn.modules()) == 2
    assert len(h) == 2 and h.last["eval_return"] == h.last["eval_return"]


# ---------------------------------------------------------------------------------------
# A real environment with a shipped config (when MPE2 is installed)
# ---------------------------------------------------------------------------------------


def test_mpe_config_trains_two_iterations(tmp_path):
    pytest.importorskip("mpe2")
    from pathlib import Path

    cfg = Path(__file__).resolve().parents[1] / "configs" / "mpe" / "simple_spread" / "happo.yaml"
    run = tmp_path / "run"
    assert _train("--config", cfg, "--num-envs", 4, "--num-steps", 25, "--steps", 200, "--eval-episodes", 2,
                  "--out", run) == 0
    rows = _rows(run)
    assert len(rows) == 2 and rows[-1]["eval_return"] != ""
    assert json.loads((run / "manifest.json").read_text())["hyperparameters"]["feature_norm"] is True


def test_a_run_without_config_names_the_shipped_one(tmp_path, capsys):
    from harl_mini.marl.trainer import named_config

    pytest.importorskip("mpe2")
    assert named_config("happo", "mamujoco:HalfCheetah-2x3").parts[-3:] == ("mamujoco", "halfcheetah_2x3", "happo.yaml")
    assert named_config("ippo", "game:xor") is None
    common = ["train", "--env", "mpe:simple_spread", "--num-envs", "2", "--num-steps", "5", "--steps", "10",
              "--no-progress", "--no-tensorboard"]
    assert main([*common, "--algo", "happo", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "note: no --config given" in out and "configs/mpe/simple_spread/happo.yaml" in out
    config = named_config("happo", "mpe:simple_spread")
    assert main([*common, "--config", str(config), "--out", str(tmp_path / "b")]) == 0
    assert "note: no --config given" not in capsys.readouterr().out


# ---------------------------------------------------------------------------------------
# The last bad inputs and signals (issue: single-agent algorithm on a multi-agent env, a
# file that is not a checkpoint, a budget below one iteration, SIGTERM, custom MDP)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("algo,env", [("ppo", "mpe:simple_spread"), ("trpo", "game:xor"),
                                      ("reinforce", "game:climbing")])
def test_single_agent_algorithm_on_a_multi_agent_env_is_one_line(algo, env, tmp_path, capsys):
    assert main(["train", "--no-progress", "--algo", algo, "--env", env, "--steps", "100",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error:")
    assert "single-agent" in err and all(name in err for name in ("ippo", "mappo", "happo", "hatrpo"))


def test_resume_from_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    path = tmp_path / "README.md"
    path.write_text("# not a checkpoint\n")
    assert _train("--resume", path) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not a harl_mini checkpoint" in err
    assert "weights_only=False" not in err and "weights_only` set to `False" not in err


def test_a_budget_below_one_iteration_says_it_is_rounded_and_prints_no_nan(tmp_path, capsys):
    # climbing with 5-step episodes and 1-step rollouts: no episode ends in the one iteration
    cfg = tmp_path / "run.yaml"
    cfg.write_text("algo: happo\nenv: game:climbing\nenv_kwargs: {episode_length: 5}\nnum_envs: 16\n"
                   "hparams: {num_steps: 1}\n")
    assert _train("--config", cfg, "--steps", 3, "--out", tmp_path / "r") == 0
    out = capsys.readouterr().out
    assert "1 iteration (16 steps)" in out and "rounded up to whole iterations of 16 steps" in out
    assert "recent return –" in out and "nan" not in out


def _wait_for_rows(path, n: int, proc, timeout: float = 60.0) -> None:
    import time

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.stderr.read()}")
        if path.exists() and len(path.read_text().splitlines()) > n:
            return
        time.sleep(0.05)
    raise AssertionError("the run wrote no rows in time")


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_signal_checkpoints_at_the_interrupt_and_resume_is_identical(sig, tmp_path):
    """SIGTERM and SIGINT stop after the iteration in progress, write a checkpoint *there* and an
    'interrupted' manifest; resuming from it gives the rows of an uninterrupted run."""
    import signal
    import subprocess

    cfg = tmp_path / "run.yaml"
    cfg.write_text("algo: happo\nenv: game:xor\nnum_envs: 64\nhparams: {num_steps: 1, eval_interval: 5}\n")
    budget = 64 * 100_000  # far more than the run gets before the signal
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "harl_mini", "train", "--no-progress", "--no-tensorboard",
                             "--config", str(cfg), "--steps", str(budget), "--checkpoint-every", "1000",
                             "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    try:
        _wait_for_rows(run / "metrics.csv", 3, proc)
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert f"{sig}: stopping after this iteration" in err
    manifest = json.loads((run / "manifest.json").read_text())
    rows = _rows(run)
    k = len(rows)
    assert manifest["status"] == "interrupted" and manifest["steps"] == 64 * k >= 3 * 64
    assert manifest["checkpoint"].endswith(f"ckpt_{k}.pt") and (run / "checkpoints" / f"ckpt_{k}.pt").is_file()
    # continue to k + 2 iterations, and compare with a run that was never interrupted
    assert _train("--resume", run, "--steps", 64 * (k + 2)) == 0
    ref = tmp_path / "ref"
    assert _train("--config", cfg, "--steps", 64 * (k + 2), "--checkpoint-every", 1000, "--out", ref) == 0
    assert _rows(run) == _rows(ref) and len(_rows(ref)) == k + 2
    _assert_same_state(_state(run), _state(ref))


def test_a_custom_mdp_without_time_limit_warns_once():
    import warnings

    import harl_mini.tabular as T
    from harl_mini.algos import ppo
    from harl_mini.envs import make_env

    env = make_env("tabular", 4, mdp=T.chain_mdp())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ppo.train(env, 64, progress=False, num_steps=16)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1 and "no time_limit" in messages[0] and "time_limit=H" in messages[0]
    # with a time limit there is nothing to warn about
    env = make_env("tabular", 4, mdp=T.chain_mdp(), time_limit=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ppo.train(env, 64, progress=False, num_steps=16)
    assert not [w for w in caught if "time_limit" in str(w.message)]
