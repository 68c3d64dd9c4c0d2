"""The CUDA path (run by ``make gpu-check`` on a machine with an NVIDIA GPU; skipped elsewhere).

Every test builds something on ``cuda`` and checks that it stays there, stays finite, and
agrees with the CPU where it must: the batched games against the exact payoff, a Markov game's
transitions against its kernel, a few training iterations of every multi-agent algorithm on a
game and on VMAS, and the trainer's checkpoint and resume on the GPU (resume on CUDA is not
promised bit-identical — cuBLAS may pick other kernels — so it is checked to continue, with
the manifest naming the GPU).
"""

from __future__ import annotations

import json

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _on_cuda(*tensors) -> bool:
    return all(t.device.type == "cuda" for t in tensors)


def test_games_on_cuda_match_the_payoff():
    from harl_mini.envs import make_env
    from harl_mini.tabular import make_game

    for name in ("xor", "permutation-3", "climbing"):
        env = make_env(f"game:{name}", num_envs=2048, device="cuda")
        acts = env.sample_actions(torch.Generator(device="cuda").manual_seed(0))
        obs, state, reward, term, trunc, *_ = env.step(acts)
        assert _on_cuda(*obs, state, reward, term, trunc)
        R = make_game(name).R[0]
        assert torch.equal(reward.cpu(), R[tuple(a.cpu() for a in acts)].float())


def test_markov_game_on_cuda_follows_its_kernel():
    from harl_mini.envs import make_env

    env = make_env("markov:two-step", num_envs=4096, device="cuda", seed=0)
    acts = env.sample_actions(torch.Generator(device="cuda").manual_seed(1))
    obs, state, *_ = env.step(acts)
    assert _on_cuda(*obs, state)
    assert torch.equal(state.argmax(-1).cpu(), 1 + acts[0].cpu())  # agent 1 picks the branch


@pytest.mark.parametrize("algo", ["ippo", "mappo", "happo", "hatrpo"])
def test_every_algorithm_trains_on_cuda(algo):
    from harl_mini import marl

    history = marl.train(algo, "game:xor", steps=4 * 4096, seed=0, device="cuda", progress=False)
    rows = history.rows
    assert len(rows) == 4 and all(torch.isfinite(torch.tensor(r["j_exact"])) for r in rows)
    params = [p for p in history.runner.actors.parameters()]
    assert params and _on_cuda(*params)


def test_vmas_happo_on_cuda():
    pytest.importorskip("vmas")
    from harl_mini.marl.runner import MARunner

    runner = MARunner("happo", "vmas:balance", seed=0, device="cuda", num_envs=256, num_steps=20)
    for _ in range(2):
        _, metrics = runner.step()
    assert all(torch.isfinite(torch.tensor(float(v))) for v in metrics.values() if isinstance(v, (int, float)))
    assert _on_cuda(*runner.actors.parameters())


def test_trainer_checkpoint_and_resume_on_cuda(tmp_path):
    from harl_mini.__main__ import main

    out = tmp_path / "run"
    args = ["train", "--no-progress", "--no-tensorboard", "--algo", "happo", "--env", "game:climbing",
            "--device", "cuda", "--out", str(out)]
    assert main([*args, "--steps", str(3 * 4096), "--checkpoint-every", "3"]) == 0
    assert main(["train", "--no-progress", "--no-tensorboard", "--resume", str(out), "--steps", str(6 * 4096)]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "completed" and m["steps"] == 6 * 4096 and m["device"].startswith("cuda")
    assert m["gpu"] == torch.cuda.get_device_name(0)
