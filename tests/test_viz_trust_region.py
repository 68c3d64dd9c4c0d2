"""Tests of the figures of Chapters 4–5 in harl_mini.viz.trust_region: they draw what they say,
reject bad input, and the tagged-lines listing covers every item of the algorithm files."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from harl_mini import tabular, viz  # noqa: E402
from harl_mini.algos import ppo as ppo_algo  # noqa: E402
from harl_mini.algos import trpo as trpo_algo  # noqa: E402
from harl_mini.errors import HarlMiniError  # noqa: E402
from harl_mini.tabular import trpo  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_trpo_bound_curves_include_the_mean_kl_bound_below_j():
    m = tabular.random_mdp(5, 3, gamma=0.7, seed=3)
    c = viz.trpo_bound_curves(m, torch.zeros(5, 3, dtype=torch.float64))
    assert np.all(c["J"] >= c["mean_kl_bound"] - 1e-12)
    assert abs(c["mean_kl_bound"][0] - c["J"][0]) < 1e-12  # equal at t = 0
    ax = viz.plot_trpo_bound(m, torch.zeros(5, 3, dtype=torch.float64), curves=c, mean_kl=True)
    assert any("mean-KL" in t.get_text() for t in ax.get_legend().get_texts())


def test_plot_surrogate_error_draws_one_series_per_discount():
    pairs = np.array([[0.5, 0.1, 1e-4, 1e-3, 2e-3], [0.9, 0.2, 1e-3, 1e-2, 5e-2], [0.9, 0.3, 2e-3, 2e-2, 6e-2]])
    axes = viz.plot_surrogate_error(pairs)
    assert len(axes[0].get_lines()) == 3  # two discounts and the diagonal
    assert len(axes[1].get_lines()) == 2
    with pytest.raises(HarlMiniError, match="pairs"):
        viz.plot_surrogate_error(np.zeros((3, 4)))


def test_plot_return_curves_and_bad_input():
    ax = viz.plot_return_curves({"a": [0.0, 1.0, 2.0], "b": [0.0, 0.5]}, J_star=2.5, title="t")
    assert len(ax.get_lines()) == 3 and ax.get_title() == "t"
    with pytest.raises(HarlMiniError, match="curves"):
        viz.plot_return_curves({})
    with pytest.raises(HarlMiniError, match="curves"):
        viz.plot_return_curves({"a": [0.0, float("nan")]})


def test_plot_kl_penalty_run():
    m = tabular.random_mdp(4, 3, gamma=0.9, seed=1)
    pi = tabular.uniform_policy(m)
    runs = {"c": trpo.run_kl_penalty(m, pi, c_kl=10.0, iterations=5)}
    axes = viz.plot_kl_penalty_run(runs, 0.01)
    assert axes[0].get_yscale() == "log" and len(axes[1].get_lines()) == 1
    with pytest.raises(HarlMiniError, match="d_targ"):
        viz.plot_kl_penalty_run(runs, 0.0)


@pytest.mark.parametrize("module,items", [(trpo_algo, 8), (ppo_algo, 11)])
def test_tagged_lines_cover_every_item(module, items):
    tagged = viz.tagged_lines(module)
    assert sorted(tagged) == list(range(1, items + 1))
    listing = viz.tagged_lines_listing(module)
    assert listing.startswith("[1] harl_mini/algos/") and f"[{items}] " in listing
