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


def test_scale_bench_reads_the_shipped_configs_and_prints_a_row_per_algorithm(capsys):
    from harl_mini.marl import bench as marl_bench

    pytest.importorskip("mpe2")
    assert marl_bench.main(["--scale", "--quick", "--envs", "mpe:simple_spread", "--algos", "happo,mappo"]) == 0
    rows = [l.split() for l in capsys.readouterr().out.splitlines() if l.startswith("mpe:simple_spread")]
    assert [r[1] for r in rows] == ["happo", "mappo"] and all(r[2] == "cpu" for r in rows)
    assert all(float(r[-1]) > 0 for r in rows)
    assert marl_bench.main(["--scale", "--envs", "nope"]) == 2
    assert "no benchmark config for 'nope'" in capsys.readouterr().out
