"""Smoke tests of the Chapter 8 figures and tables (harl_mini.viz.hatrpo): they draw, return Axes,
dicts, tables or widgets, agree with the exact oracle where they compute something, and reject bad
input with HarlMiniError."""

import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from harl_mini import tabular  # noqa: E402
from harl_mini.errors import HarlMiniError  # noqa: E402
from harl_mini.tabular import hatrpo  # noqa: E402
from harl_mini.viz import hatrpo as vh  # noqa: E402

F64 = torch.float64
START = [torch.tensor([[0.7, 0.3]], dtype=F64)] * 2


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------- sequential sub-steps


def test_substeps_of_example_1_match_the_exact_update():
    res = vh.sequential_substeps("zhong-example1", START, (0, 1))
    assert res["C"] == 0.0  # γ = 0
    # greedy sequential step of Chapter 7: agent 0 switches to action 1, agent 1 answers 0
    assert res["J"].tolist() == pytest.approx([0.75, 1.1, 2.0], abs=1e-12)
    assert res["J_simultaneous"] == pytest.approx(-1.0, abs=1e-12)
    assert res["J_star"] == 2.0
    final = hatrpo.sequential_update(tabular.zhong_example1_game(), START, (0, 1))
    for a, b in zip(res["policies"][-1], final):
        assert torch.equal(a, b)
    assert torch.equal(res["policies"][1][1], START[1])  # agent 1 not yet updated


def test_substeps_bound_is_below_j_and_monotone_with_a_penalty():
    game = tabular.random_game(2, (2, 3, 2), gamma=0.8, seed=3)
    pis = hatrpo.soften(tabular.random_policies(game, seed=4), 1e-3)
    res = vh.sequential_substeps(game, pis, (2, 0, 1))
    assert res["C"] > 0 and len(res["terms"]) == 3
    assert np.all(res["terms"] >= -1e-12)
    assert np.all(res["bound"] <= res["J"] + 1e-10)
    assert np.all(np.diff(res["J"]) >= -1e-10)
    full = float(hatrpo.ma_lower_bound(game, pis, res["policies"][-1], (2, 0, 1)))
    assert res["bound"][-1] == pytest.approx(full, abs=1e-10)


def test_plot_sequential_update_draws_and_returns_the_substeps():
    fig, axes = plt.subplots(1, 2)
    res = vh.plot_sequential_update("xor", hatrpo.soften(START, 0.05), (1, 0), step=1, eta_soft=0.05, axes=axes)
    assert set(res) >= {"J", "bound", "policies", "J_simultaneous"}
    assert "after 1 of 2" in axes[1].get_title()
    assert len(axes[0].get_lines()) >= 3
    res2 = vh.plot_sequential_update("xor", START, (0, 1))  # own figure, whole update
    assert len(res2["J"]) == 3


def test_sequential_update_rejects_bad_input():
    with pytest.raises(HarlMiniError, match="step"):
        vh.plot_sequential_update("xor", START, (0, 1), step=3)
    with pytest.raises(HarlMiniError, match="state"):
        vh.plot_sequential_update("xor", START, (0, 1), state=1)
    with pytest.raises(HarlMiniError, match="axes"):
        _, ax = plt.subplots()
        vh.plot_sequential_update("xor", START, (0, 1), axes=[ax])
    with pytest.raises(HarlMiniError, match="order"):
        vh.sequential_substeps("xor", START, "01")
    with pytest.raises(HarlMiniError):
        vh.sequential_substeps("xor", START, (0, 0))
    with pytest.raises(HarlMiniError, match="unknown game"):
        vh.sequential_substeps("no-such-game", START, (0, 1))
    with pytest.raises(HarlMiniError, match="game"):
        vh.sequential_substeps(42, START, (0, 1))


def test_explorer_builds_a_widget():
    pytest.importorskip("ipywidgets")
    w = vh.sequential_update_explorer("zhong-example1", eta_soft=0.05)
    assert hasattr(w, "children")
    w2 = vh.sequential_update_explorer(tabular.random_game(2, (2, 2), gamma=0.5, seed=1), eta_soft=0.0)
    assert hasattr(w2, "children")
    with pytest.raises(HarlMiniError, match="eta_soft"):
        vh.sequential_update_explorer("xor", eta_soft=-0.1)
    with pytest.raises(HarlMiniError, match="gammas"):
        vh.sequential_update_explorer("xor", gammas=(1.5,))


# ------------------------------------------------------------------- trajectories and gaps


def test_plot_j_trajectories_and_nash_gaps():
    ax = vh.plot_j_trajectories({"a": [0.0, 0.5, 1.0], "b": np.ones((3, 4))}, J_star=1.0, title="t",
                                styles={"a": {"color": "red"}})
    assert ax.get_title() == "t"
    assert len(ax.get_lines()) == 1 + 3 + 1
    ax2 = vh.plot_nash_gaps({"x": [1.0, 0.1, 0.0], "y": ([0, 5, 10], [2.0, 1.0, 0.5])}, tolerances={"x": 1e-3})
    assert ax2.get_yscale() == "log"
    assert min(ax2.get_lines()[0].get_ydata()) == pytest.approx(1e-12)  # the exact zero, floored


def test_trajectory_plots_reject_bad_input():
    with pytest.raises(HarlMiniError, match="curves"):
        vh.plot_j_trajectories({})
    with pytest.raises(HarlMiniError, match="shape"):
        vh.plot_j_trajectories({"a": np.zeros((2, 2, 2))})
    with pytest.raises(HarlMiniError, match="J_star"):
        vh.plot_j_trajectories({"a": [1.0]}, J_star=float("nan"))
    with pytest.raises(HarlMiniError, match="never negative"):
        vh.plot_nash_gaps({"a": [0.1, -0.5]})
    with pytest.raises(HarlMiniError, match="shape"):
        vh.plot_nash_gaps({"a": ([0, 1], [0.1, 0.2, 0.3])})
    with pytest.raises(HarlMiniError, match="floor"):
        vh.plot_nash_gaps({"a": [0.1]}, floor=0.0)
    with pytest.raises(HarlMiniError, match="tolerances"):
        vh.plot_nash_gaps({"a": [0.1]}, tolerances=[1e-3])


def test_plot_bound_slack():
    ax = vh.plot_bound_slack([1e-3, 1e-2, 1.0], [1e-3, 2e-2, 0.5], label="draws")
    assert ax.get_xscale() == "log" and len(ax.get_lines()) == 3
    with pytest.raises(HarlMiniError, match="positive"):
        vh.plot_bound_slack([0.0, 1.0], [0.0, 1.0])
    with pytest.raises(HarlMiniError, match="one shape"):
        vh.plot_bound_slack([1.0, 2.0], [1.0])


# ------------------------------------------------------------------- the factor M


def test_m_factor_distribution_matches_the_closed_form():
    delta, n = 0.05, 6
    p = 0.5 * (1 + math.sqrt(1 - math.exp(-2 * delta)))
    old = [torch.tensor([[0.5, 0.5]], dtype=F64)] * n
    new = [torch.tensor([[p, 1 - p]], dtype=F64)] * n
    d = vh.m_factor_distribution(old, new)
    chi2 = 1 - math.exp(-2 * delta)
    assert d["factors"] == n - 1
    assert d["mean"] == pytest.approx(1.0, abs=1e-12)
    assert d["std"] ** 2 == pytest.approx((1 + chi2) ** (n - 1) - 1, abs=1e-12)
    assert d["log_mean"] == pytest.approx(-(n - 1) * delta, abs=1e-12)
    assert float(np.sum(d["weights"])) == pytest.approx(1.0, abs=1e-12)
    first = vh.m_factor_distribution(old, new, order=tuple(range(n)), m=1)  # M ≡ 1
    assert first["std"] == pytest.approx(0.0, abs=1e-12) and first["factors"] == 0


def test_m_distribution_plot_and_errors():
    old = [torch.tensor([[0.5, 0.5]], dtype=F64)] * 3
    new = [torch.tensor([[0.6, 0.4]], dtype=F64)] * 3
    d = vh.m_factor_distribution(old, new)
    ax = vh.plot_m_distribution({"3 agents": d}, bins=10, title="M")
    assert ax.get_title() == "M"
    with pytest.raises(HarlMiniError, match="log_m"):
        vh.plot_m_distribution({"x": {"weights": [1.0]}})
    with pytest.raises(HarlMiniError, match="bins"):
        vh.plot_m_distribution({"3 agents": d}, bins=1)
    with pytest.raises(HarlMiniError, match="drops an action"):
        vh.m_factor_distribution(old, [torch.tensor([[1.0, 0.0]], dtype=F64)] * 3)
    with pytest.raises(HarlMiniError, match="enumerate"):
        big = [torch.tensor([[0.5, 0.5]], dtype=F64)] * 21
        vh.m_factor_distribution(big, big)


# ------------------------------------------------------------------- recorded runs


def _fake_run(folder, algo, game, seed, final_j, solved, j_star=1.0, share=0.5):
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text("iteration,steps,j_exact\n0,10,0.5\n1,20,%g\n" % final_j)
    manifest = dict(algo=algo, env=f"game:{game}", seed=seed, steps=20, wall_time=1.5, final_j=final_j,
                    j_star=j_star, j_star_share=share, solved=solved, iterations_to_solve=2 if solved else None,
                    wall_time_to_solve=1.0 if solved else None, steps_per_s=1000.0)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_game_results_and_table(tmp_path):
    folders = [_fake_run(tmp_path / f"happo_xor_s{s}", "happo", "xor", s, 1.0, True) for s in range(2)]
    folders += [_fake_run(tmp_path / f"mappo_shared_xor_s{s}", "mappo_shared", "xor", s, 0.49, False)
                for s in range(2)]
    summaries = vh.game_results(folders)
    assert [(s["game"], s["algo"], s["solved"]) for s in summaries] == [("xor", "happo", 2),
                                                                       ("xor", "mappo_shared", 0)]
    table = vh.game_results_table(summaries, algos=["happo", "mappo_shared"])
    assert "| xor | 1 | 0.5 | 2/2 · 2 it · 1.0 s | 0/2 · J = 0.49 |" in table
    assert "1,000" in table.splitlines()[-1]
    with pytest.raises(HarlMiniError, match="no runs of"):
        vh.game_results_table(summaries, algos=["ippo"])
    with pytest.raises(HarlMiniError, match="no runs on"):
        vh.game_results_table(summaries, games=["climbing"])
    with pytest.raises(HarlMiniError, match="summaries"):
        vh.game_results_table([])
    with pytest.raises(HarlMiniError, match="does not exist"):
        vh.game_results([tmp_path / "missing"])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metrics.csv").write_text("iteration\n0\n")
    (bad / "manifest.json").write_text(json.dumps({"algo": "x"}))
    with pytest.raises(HarlMiniError, match="not a recorded game run"):
        vh.game_results([bad])


def test_load_bench(tmp_path):
    path = tmp_path / "bench.txt"
    path.write_text("# made by a test\n# created today\nmode game algorithm num_envs steps/s\n"
                    "---\nenv     xor        -                  1,024     5,706,663\n"
                    "train   xor        happo              4,096       276,982\n")
    rows, header = vh.load_bench(path)
    assert header == ["made by a test", "created today"]
    assert rows == [dict(mode="env", game="xor", algo=None, num_envs=1024, steps_per_s=5706663),
                    dict(mode="train", game="xor", algo="happo", num_envs=4096, steps_per_s=276982)]
    with pytest.raises(HarlMiniError, match="no benchmark file"):
        vh.load_bench(tmp_path / "nothing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(HarlMiniError, match="no benchmark rows"):
        vh.load_bench(empty)


def test_game_results_table_without_references_and_with_labels(tmp_path):
    folders = [_fake_run(tmp_path / f"happo_xor_s{s}", "happo", "xor", s, 1.0, True) for s in range(2)]
    table = vh.game_results_table(vh.game_results(folders), labels={"happo": "HAPPO"}, references=False)
    lines = table.splitlines()
    assert lines[0] == "| game | HAPPO |" and lines[1] == "|---|---|"
    assert lines[2] == "| xor | 2/2 · 2 it · 1.0 s |"
    assert lines[-1] == "| steps/s (mean) | 1,000 |"
    with pytest.raises(HarlMiniError, match="labels"):
        vh.game_results_table(vh.game_results(folders), labels=["HAPPO"])


# ------------------------------------------------------------------- the chapter's small helpers


def test_check_instances_are_seeded_and_positive():
    game = vh.check_game(3)
    assert (game.num_states, game.action_counts, game.gamma) == vh.CHECK_SHAPES[3]
    assert torch.equal(vh.check_game(3).P, game.P)  # seeded: the same game every time
    pis = vh.soft_policies(game, seed=1, floor=1e-3)
    assert all(float(p.min()) >= 1e-3 - 1e-15 for p in pis)
    assert all(torch.allclose(p.sum(-1), torch.ones(game.num_states, dtype=F64)) for p in pis)
    g = torch.Generator().manual_seed(0)
    near = vh.perturb_policies(pis, g, 1e-6)
    assert all(float((a - b).abs().max()) < 1e-5 for a, b in zip(near, pis))
    assert vh.perturb_policies(pis, torch.Generator().manual_seed(4), 1.0)[0].equal(
        vh.perturb_policies(pis, torch.Generator().manual_seed(4), 1.0)[0])
    order = vh.random_order(4, torch.Generator().manual_seed(2))
    assert sorted(order) == [0, 1, 2, 3]
    with pytest.raises(HarlMiniError, match="k"):
        vh.check_game(-1)
    with pytest.raises(HarlMiniError, match="generator"):
        vh.random_order(3, 7)
    with pytest.raises(HarlMiniError, match="strictly positive"):
        vh.perturb_policies([torch.tensor([[1.0, 0.0]], dtype=F64)], g, 1.0)


def test_m_spread_is_the_closed_form_of_the_exact_law():
    for delta in (0.01, 0.2):
        for n in (2, 5):
            old, new = vh.two_action_step(delta, n)
            kl = float(tabular.kl(old[0], new[0])[0])
            assert kl == pytest.approx(delta, rel=1e-12)
            d = vh.m_factor_distribution(old, new)
            assert d["std"] == pytest.approx(float(vh.m_std_growth(delta, [n])[0]), rel=1e-9)
    assert vh.m_std_growth(0.05, [1])[0] == 0.0  # the first agent: M = 1
    ax = vh.plot_m_spread((0.01, 0.2), np.arange(2, 10), title="t")
    assert len(ax.get_lines()) == 2 and ax.get_yscale() == "log"
    with pytest.raises(HarlMiniError, match="positions"):
        vh.m_std_growth(0.1, [0])
    with pytest.raises(HarlMiniError, match="deltas"):
        vh.plot_m_spread("0.1", [2, 3])


def test_surrogate_error_haml_progress_and_run_metrics():
    ax = vh.plot_surrogate_error(np.array([0.0, 1e-3, -1e-3]), title="t")
    assert ax.get_yscale() == "log" and ax.get_title() == "t"
    ax = vh.plot_haml_progress({"a": [(torch.tensor([0.0, 0.5, 1.0]), 2.0)]})
    assert list(ax.get_lines()[0].get_ydata()) == [0.0, 0.25, 0.5]
    with pytest.raises(HarlMiniError, match="J_star"):
        vh.plot_haml_progress({"a": [(torch.tensor([1.0, 2.0]), 0.5)]})
    rows = [{"iteration": k, "j": 0.1 * k} for k in range(3)]
    ax = vh.plot_run_metrics({"run": rows}, "j", ylabel="J")
    assert list(ax.get_lines()[0].get_ydata()) == pytest.approx([0.0, 0.1, 0.2])
    with pytest.raises(HarlMiniError, match="column"):
        vh.plot_run_metrics({"run": rows}, "m_std")


def test_game_grid_provenance_bench_and_sources(tmp_path):
    folders = [_fake_run(tmp_path / f"happo_xor_s{s}", "happo", "xor", s, 1.0, True) for s in range(2)]
    a1a2 = [_fake_run(tmp_path / f"happo_a1a2_s{s}", "happo", "a1a2", s, 0.9, False) for s in range(2)]
    fig = vh.plot_game_grid({("happo", "xor"): folders}, {"happo": a1a2}, {"happo": "HAPPO"}, ["xor", "climbing"])
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()][:3] == ["xor", "climbing",
                                                                          "$a^1a^2$ game, steps of KL 0.5"]
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "HAPPO" in names and not any("min–max" in n for n in names)
    manifest = dict(git_commit="abcdef123", git_dirty=True, cpu="cpu", cpu_count=2, versions={"torch": "2"},
                    torch_threads=1, seed=0, steps=10, env="game:xor", wall_time=1.0)
    text = vh.games_provenance([manifest, {**manifest, "env": "game:a1a2", "steps": 4, "seed": 1}])
    assert "2 runs, seeds 0, 1; 10 env steps per run (4 on the $a^1a^2$ game)" in text
    assert "abcdef1 (uncommitted changes)" in text
    with pytest.raises(HarlMiniError, match="lacks"):
        vh.games_provenance([{"seed": 0}])
    rows = [dict(mode="env", game="xor", algo=None, num_envs=1024, steps_per_s=5_000_000),
            dict(mode="train", game="xor", algo="happo", num_envs=1024, steps_per_s=90_000)]
    table, speed = vh.bench_table(rows)
    assert "| xor | environment only | 5,000 k |" in table and speed["xor", "happo", 1024] == 90_000
    src = vh.source_table([("check", vh.check_game)])
    assert "`harl_mini/viz/hatrpo.py:" in src and "`check_game`" in src
    with pytest.raises(HarlMiniError, match="pairs"):
        vh.source_table([vh.check_game])


def test_game_results_table_compact_cells(tmp_path):
    folders = [_fake_run(tmp_path / f"happo_xor_s{s}", "happo", "xor", s, 1.0, True) for s in range(2)]
    folders += [_fake_run(tmp_path / f"ippo_xor_s{s}", "ippo", "xor", s, 0.49, False) for s in range(2)]
    table = vh.game_results_table(vh.game_results(folders), references=False, compact=True)
    assert "| xor | 2/2\u202f·\u202f2\u202f·\u202f1.0 | 0/2\u202f·\u202f0.49 |" in table
