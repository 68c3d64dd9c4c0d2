"""The command line: subcommands dispatch, bad input gives a clear message and exit code."""

from pathlib import Path

import pytest

from harl_mini.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def test_exercises_check_passes_in_the_repository(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["exercises", "check"]) == 0
    assert "in sync" in capsys.readouterr().out


def test_train_rejects_an_unknown_algorithm(tmp_path, capsys):
    assert main(["train", "--algo", "nope", "--env", "gym:CartPole-v1", "--steps", "10", "--out",
                 str(tmp_path / "run"), "--no-progress"]) == 2
    assert "unknown algorithm 'nope'; available:" in capsys.readouterr().err


def test_bench_quick_prints_both_figures(capsys):
    assert main(["bench", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "value" in out and "all_multi_agent_q" in out


def test_grade_reports_a_missing_notebook(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "missing.ipynb")]) == 1
    assert "no such notebook" in capsys.readouterr().out


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit) as info:
        main(["fly"])
    assert info.value.code == 2
