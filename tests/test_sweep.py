"""Sweeps on Ray (harl_mini.marl.sweep): the spec expands to the right runs, bad specs give one
clear message, and a tiny local sweep (two game runs) runs, is skipped when started again,
and resumes from its checkpoints when the budget grows."""

from __future__ import annotations

import csv
import json

import pytest

from harl_mini.errors import HarlMiniError
from harl_mini.marl import sweep


def _spec(tmp_path, text: str):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return sweep.load_spec(path)


def test_grid_and_runs_expand_to_named_runs(tmp_path):
    cfg = tmp_path / "happo.yaml"
    cfg.write_text("algo: happo\nenv: game:climbing\nsteps: 1e5\nhparams: {lr: 0.01}\n")
    spec = _spec(tmp_path, f"out: {tmp_path / 'out'}\nseeds: [0, 3]\nsteps: 2e4\n"
                           f"runs:\n  - {cfg}\n  - {{config: {cfg}, label: again, steps: 1e3}}\n"
                           "grid:\n  algo: [mappo, ippo]\n  env: game:xor\n  set: {lr: [0.01, 0.02]}\n")
    runs = sweep.expand(spec)
    names = [r.name for r in runs]
    assert len(runs) == 2 * (2 + 2 * 2)
    assert names[:4] == ["happo_climbing_s0", "happo_climbing_s3", "again_climbing_s0", "again_climbing_s3"]
    assert "mappo_xor_lr0.02_s3" in names and "ippo_xor_lr0.01_s0" in names
    by = {r.name: r for r in runs}
    assert by["happo_climbing_s0"].steps == 20_000 and by["again_climbing_s0"].steps == 1000
    cmd = by["mappo_xor_lr0.02_s3"].command(resume=False)
    assert cmd[cmd.index("--seed") + 1] == "3" and "lr=0.02" in cmd and cmd[cmd.index("--algo") + 1] == "mappo"
    resume = by["mappo_xor_lr0.02_s3"].command(resume=True)
    assert "--resume" in resume and "--seed" not in resume and "--set" not in resume


@pytest.mark.parametrize("text, match", [
    ("seeds: [0]\n", "give `runs:`"),
    ("runs: [x.yaml]\nfoo: 1\n", "unknown key"),
    ("seeds: [a]\nruns: [x.yaml]\n", "seeds"),
    ("steps: -3\ngrid: {algo: happo, env: game:xor}\n", "steps"),
    ("grid: {algo: happo}\nsteps: 10\n", "needs an algorithm and an environment"),
    ("grid: {algo: [happo, happo], env: game:xor}\nsteps: 10\n", "same run name"),
    ("runs: [{config: missing.yaml}]\n", "not found"),
])
def test_bad_specs_are_one_clear_error(tmp_path, text, match):
    with pytest.raises(HarlMiniError, match=match):
        sweep.expand(_spec(tmp_path, text))


def test_cli_bad_spec_exits_2(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text("[1, 2]\n")
    assert sweep.main([str(tmp_path / "s.yaml")]) == 2
    assert capsys.readouterr().err.startswith("error: sweep spec")
    assert sweep.main([str(tmp_path / "none.yaml")]) == 2


def _summary(out):
    with open(out / "summary.csv") as f:
        return {row["name"]: row for row in csv.DictReader(f)}


def test_a_tiny_local_sweep_runs_skips_and_resumes(tmp_path, monkeypatch, capsys):
    """Two game runs on a local Ray instance (two CPUs); started again, nothing runs; with a
    larger budget, both continue from their checkpoints (the manifests record the segment)."""
    pytest.importorskip("ray")
    monkeypatch.chdir(tmp_path)
    text = ("name: tiny\nout: out\nsteps: 2048\nseeds: [0, 1]\n"
            "grid:\n  algo: happo\n  env: game:xor\n  set: {num_envs: 256, num_steps: 1}\n")
    (tmp_path / "spec.yaml").write_text(text)
    assert sweep.main(["spec.yaml", "--max-parallel", "2", "--no-progress"]) == 0
    rows = _summary(tmp_path / "out")
    assert set(rows) == {"happo_xor_num_envs256_num_steps1_s0", "happo_xor_num_envs256_num_steps1_s1"}
    assert all(r["status"] == "completed" and r["steps"] == "2048" and r["segments"] == "1" for r in rows.values())
    # the two seeds really are different runs
    m0, m1 = (json.loads((tmp_path / "out" / name / "manifest.json").read_text()) for name in sorted(rows))
    assert (m0["seed"], m1["seed"]) == (0, 1)
    # started again: everything is done, Ray is not even started
    capsys.readouterr()
    assert sweep.main(["spec.yaml", "--no-progress"]) == 0
    assert "2 runs, 2 already done, 0 to resume, 0 to start" in capsys.readouterr().out
    # a larger budget: both resume from their checkpoints
    (tmp_path / "spec.yaml").write_text(text.replace("steps: 2048", "steps: 4096"))
    assert sweep.main(["spec.yaml", "--max-parallel", "2", "--no-progress"]) == 0
    rows = _summary(tmp_path / "out")
    assert all(r["steps"] == "4096" and r["segments"] == "2" for r in rows.values())
    m = json.loads((tmp_path / "out" / "happo_xor_num_envs256_num_steps1_s0" / "manifest.json").read_text())
    assert m["resumes"][0]["iteration"] == 8 and m["resume_identical"] is True
