"""The benchmark runs and prints both figures (wall times are not asserted: CI is noisy)."""

from __future__ import annotations

import re

import pytest

from harl_mini.bench import main


@pytest.mark.parametrize("argv", [["--quick"], []])
def test_bench_prints_both_figures(argv, capsys):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "torch " in out and "thread" in out
    for figure in ("value", "all_multi_agent_q"):
        line = next(l for l in out.splitlines() if l.startswith(figure + " "))
        assert re.search(r"\d+(\.\d+)? (ms|s)\s+< ", line), line
