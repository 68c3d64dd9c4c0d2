"""Smoke tests of the Chapter 6 and 7 figures (harl_mini.viz.marl): they draw, return Axes or
widgets, and reject bad input with HarlMiniError. The update paths are also checked against the
exact numbers of the a¹a² game (theory reference §7a)."""

import csv
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
from harl_mini.viz import marl as vm  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------- parameter sharing


def test_plot_shared_objective_draws_curve_and_reference_lines():
    ax = vm.plot_shared_objective("prop1-4", p=0.3, points=51)
    assert isinstance(ax, matplotlib.axes.Axes)
    curve = ax.get_lines()[0]
    x, y = curve.get_data()
    assert len(x) == 51
    # the curve is the closed form 2 (p (1 - p))^2 of Proposition 1 with n = 4
    assert np.allclose(y, 2 * (x * (1 - x)) ** 2, atol=1e-12)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("J^*_{share}" in t and "0.125" in t for t in labels)
    assert any("p = 0.30" in t for t in labels)


def test_plot_shared_objective_accepts_a_game_and_an_axes():
    _, ax = plt.subplots()
    out = vm.plot_shared_objective(tabular.xor_game(), ax=ax, title="xor")
    assert out is ax and ax.get_title() == "xor"


def test_plot_shared_objective_rejects_bad_input():
    with pytest.raises(HarlMiniError, match="two actions per agent"):
        vm.plot_shared_objective("permutation-3")
    with pytest.raises(HarlMiniError, match="p: expected a number in"):
        vm.plot_shared_objective("xor", p=1.5)
    with pytest.raises(HarlMiniError, match="points"):
        vm.plot_shared_objective("xor", points=1)
    with pytest.raises(HarlMiniError, match="game"):
        vm.plot_shared_objective(42)
    with pytest.raises(HarlMiniError, match="unknown game"):
        vm.plot_shared_objective("no-such-game")


def test_shared_policy_explorer_returns_a_widget():
    import ipywidgets

    w = vm.shared_policy_explorer(n=6, p=0.4)
    assert isinstance(w, ipywidgets.interactive)
    with pytest.raises(HarlMiniError, match="even number"):
        vm.shared_policy_explorer(n=3)
    with pytest.raises(HarlMiniError, match="p"):
        vm.shared_policy_explorer(p=-0.1)


# ------------------------------------------------------------------- the a1a2 game


def test_a1a2_update_paths_reproduce_the_exact_numbers():
    paths = vm.a1a2_update_paths((-0.25, 0.25), 0.5)
    assert np.allclose(paths["simultaneous"], [[-0.25, 0.25], [0.75, -0.75]])
    assert np.allclose(paths["sequential (1, 2)"], [[-0.25, 0.25], [0.75, 0.25], [0.75, 1.25]])
    assert np.allclose(paths["sequential (2, 1)"], [[-0.25, 0.25], [-0.25, -0.75], [-1.25, -0.75]])
    assert paths["J"] == {"start": -0.0625, "simultaneous": -0.5625, "sequential (1, 2)": 0.9375,
                          "sequential (2, 1)": 0.9375}


def test_plot_a1a2_updates_draws_three_paths():
    ax = vm.plot_a1a2_updates((-0.25, 0.25), 0.5, lim=2.0, title="t")
    assert isinstance(ax, matplotlib.axes.Axes)
    assert ax.get_title() == "t"
    assert ax.get_xlim() == (-2.0, 2.0)
    arrows = [c for c in ax.texts if hasattr(c, "arrow_patch") and c.arrow_patch is not None]
    assert len(arrows) == 5  # 1 simultaneous + 2 legs for each of the two sequential orders
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("simultaneous: J = -0.5625" in t for t in labels)
    assert sum("J = 0.9375" in t for t in labels) == 2


def test_plot_a1a2_updates_rejects_bad_input():
    with pytest.raises(HarlMiniError, match="mu0"):
        vm.plot_a1a2_updates((0.1, 0.2, 0.3))
    with pytest.raises(HarlMiniError, match="kl_radius"):
        vm.plot_a1a2_updates((0.1, 0.2), -1.0)
    with pytest.raises(HarlMiniError, match="mu0"):
        vm.a1a2_update_paths((float("nan"), 0.0))


def test_a1a2_update_explorer_returns_a_widget():
    import ipywidgets

    assert isinstance(vm.a1a2_update_explorer(0.3, (0.5, -0.5)), ipywidgets.interactive)
    with pytest.raises(HarlMiniError, match="kl_radius"):
        vm.a1a2_update_explorer(5.0)
    with pytest.raises(HarlMiniError, match=r"mu0\[0\]"):
        vm.a1a2_update_explorer(0.5, (3.0, 0.0))


# ------------------------------------------------------------------- entropies


def test_plot_entropy_curves_draws_runs_mean_and_references():
    H = np.abs(np.random.default_rng(0).normal(size=(3, 20)))
    ax = vm.plot_entropy_curves({"independent": H, "one run": H[0]}, {"log 3!": math.log(6)}, title="e")
    assert isinstance(ax, matplotlib.axes.Axes)
    # 3 thin + 1 mean for the first group, 1 line for the second, 1 reference
    assert len(ax.get_lines()) == 6
    assert ax.get_title() == "e"


def test_plot_entropy_curves_rejects_bad_input():
    with pytest.raises(HarlMiniError, match="curves"):
        vm.plot_entropy_curves({})
    with pytest.raises(HarlMiniError, match="curves"):
        vm.plot_entropy_curves({"a": np.zeros((2, 2, 2))})
    with pytest.raises(HarlMiniError, match="references"):
        vm.plot_entropy_curves({"a": [1.0, 0.5]}, {"bad": float("inf")})
    with pytest.raises(HarlMiniError, match="references"):
        vm.plot_entropy_curves({"a": [1.0, 0.5]}, [1.0])


# ------------------------------------------------------------------- recorded runs


def _fake_run(folder, algo, seed, values):
    folder.mkdir(parents=True)
    with open(folder / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["iteration", "steps", "episode_return"])
        for k, v in enumerate(values):
            w.writerow([k, 100 * (k + 1), v])
    (folder / "manifest.json").write_text(json.dumps({"algo": algo, "env": "game:xor", "seed": seed}))
    return folder


def test_plot_game_runs_draws_groups_and_exact_lines(tmp_path):
    a = [_fake_run(tmp_path / f"a_s{s}", "mappo", s, [0.2, 0.4, 0.5]) for s in range(2)]
    b = [_fake_run(tmp_path / f"b_s{s}", "happo", s, [0.3, 0.8, 1.0]) for s in range(2)]
    ax = vm.plot_game_runs({"MAPPO shared": a, "HAPPO": b}, J_star=1.0, J_share=0.5, title="xor",
                           y="episode_return", x="steps")
    assert isinstance(ax, matplotlib.axes.Axes)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "$J^*$ (exact)" in labels and "$J^*_{share}$ (exact)" in labels
    notes = [t.get_text() for t in ax.texts]
    assert "$J^*$ = 1" in notes and "$J^*_{share}$ = 0.5" in notes
    ys = [line.get_ydata()[0] for line in ax.get_lines() if len(line.get_ydata()) == 2]
    assert 1.0 in ys and 0.5 in ys
    # without a legend, for a figure-level one
    ax2 = vm.plot_game_runs({"HAPPO": b}, J_star=1.0, y="episode_return", legend=False)
    assert ax2.get_legend() is None and ax2.get_xlabel() == "iteration"


def test_plot_game_runs_rejects_bad_input(tmp_path):
    with pytest.raises(HarlMiniError, match="groups"):
        vm.plot_game_runs({}, J_star=1.0)
    with pytest.raises(HarlMiniError, match="J_star"):
        vm.plot_game_runs({"a": [tmp_path]}, J_star=float("nan"))
    with pytest.raises(HarlMiniError, match="does not exist|metrics.csv"):
        vm.plot_game_runs({"a": [tmp_path / "missing"]}, J_star=1.0)


def test_shared_objective_curve_matches_the_oracle():
    # the figure's curve must be the oracle's J_share, not a re-derivation
    game = tabular.prop1_game(6)
    ax = vm.plot_shared_objective(game, points=11)
    x, y = ax.get_lines()[0].get_data()
    for p, J in zip(x, y):
        expected = float(tabular.shared_objective(game, torch.tensor([p, 1 - p], dtype=torch.float64)))
        assert abs(J - expected) < 1e-15


def test_plot_a1a2_updates_without_colorbar_keeps_one_axes():
    fig, axes = plt.subplots(1, 2)
    for ax, d in zip(axes, (0.1, 0.5)):
        vm.plot_a1a2_updates((-0.25, 0.25), d, ax=ax, lim=1.8, colorbar=False)
    assert len(fig.axes) == 2  # no colour-bar axes added
    vm.plot_a1a2_updates((-0.25, 0.25), 0.5, ax=axes[0], colorbar=True)
    assert len(fig.axes) == 3


# ------------------------------------------------------------------- recorded runs: legends and statistics


def test_legend_line_is_a_labelled_handle():
    handle = vm.legend_line("tab:red", "MAPPO", ls="--")
    assert handle.get_label() == "MAPPO" and handle.get_linestyle() == "--" and handle.get_color() == "tab:red"
    with pytest.raises(HarlMiniError, match="label"):
        vm.legend_line("k", 3)


def _fisher_by_enumeration(k1, n1, k2, n2):
    """The p-value from its definition: every 2 x 2 table with the observed margins."""
    K, N = k1 + k2, n1 + n2

    def p(k):
        return math.comb(n1, k) * math.comb(n2, K - k) / math.comb(N, K)

    observed = p(k1)
    return sum(p(k) for k in range(max(0, K - n2), min(K, n1) + 1) if p(k) <= observed * (1 + 1e-9))


def test_fisher_exact_matches_the_chapter_and_the_definition():
    assert abs(vm.fisher_exact(5, 5, 3, 5) - 112 / 252) < 1e-12  # the numbers Chapter 6 quotes
    assert vm.fisher_exact(5, 5, 4, 5) == 1.0
    assert vm.fisher_exact(0, 5, 0, 5) == 1.0
    for k1, n1, k2, n2 in [(3, 7, 6, 8), (0, 4, 4, 4), (10, 12, 2, 9), (1, 1, 0, 1)]:
        p = vm.fisher_exact(k1, n1, k2, n2)
        assert abs(p - min(1.0, _fisher_by_enumeration(k1, n1, k2, n2))) < 1e-12 and 0 < p <= 1
    assert abs(vm.fisher_exact(0, 4, 4, 4) - 2 / 70) < 1e-12  # the two most extreme tables of 70
    assert vm.fisher_exact(3, 7, 6, 8) == vm.fisher_exact(6, 8, 3, 7)  # symmetric in the two methods


def test_fisher_exact_rejects_bad_counts():
    for args in [(6, 5, 3, 5), (1, 0, 1, 1), (-1, 5, 3, 5), (1.5, 5, 3, 5), (True, 5, 3, 5)]:
        with pytest.raises(HarlMiniError):
            vm.fisher_exact(*args)
