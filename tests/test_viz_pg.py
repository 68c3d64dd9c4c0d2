"""Smoke tests of the Chapter 2 and 3 figures: they draw, return Axes or widgets, and
reject bad input with HarlMiniError. Also checks the one formula that lives in the viz
layer, the exact mean of GAE (eq-gae-mean), at its two closed-form special cases."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from harl_mini import tabular  # noqa: E402
from harl_mini.errors import HarlMiniError  # noqa: E402
from harl_mini.viz import natural_gradient as vng  # noqa: E402
from harl_mini.viz import policy_gradient as vpg  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def small():
    mdp = tabular.random_mdp(3, 2, gamma=0.8, seed=0)
    pi = tabular.random_policy(mdp, seed=1)
    return mdp, pi, tabular.value(mdp, pi)


# ------------------------------------------------------------------- Chapter 2


def test_plot_gradient_error_draws_curves_and_guide():
    n = [10, 100, 1000]
    ax = vpg.plot_gradient_error(n, {"a": [1.0, 0.3, 0.1], "b": np.full((3, 3), 0.5)}, title="t")
    assert isinstance(ax, matplotlib.axes.Axes)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_title() == "t"
    assert len(ax.get_legend().get_texts()) == 3  # two curves and the 1/sqrt(N) guide


def test_plot_gradient_error_rejects_bad_input():
    with pytest.raises(HarlMiniError, match="num_samples"):
        vpg.plot_gradient_error([10, 5], {"a": [1.0, 0.5]})
    with pytest.raises(HarlMiniError, match="errors"):
        vpg.plot_gradient_error([10, 20], {})
    with pytest.raises(HarlMiniError, match=r"errors\['a'\]: expected shape"):
        vpg.plot_gradient_error([10, 20], {"a": [1.0, 0.5, 0.2]})
    with pytest.raises(HarlMiniError, match="positive"):
        vpg.plot_gradient_error([10, 20], {"a": [1.0, 0.0]})


def test_plot_learning_curve():
    rows = [{"steps": 100 * i, "episode_return": float(i)} for i in range(1, 5)]
    ax = vpg.plot_learning_curve(rows, label="run")
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [100, 200, 300, 400]
    with pytest.raises(HarlMiniError, match="no column 'kl'"):
        vpg.plot_learning_curve(rows, key="kl")
    with pytest.raises(HarlMiniError, match="history"):
        vpg.plot_learning_curve([])


def test_gae_expectation_special_cases(small):
    mdp, pi, V_pi = small
    V = V_pi + torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    adv = tabular.advantage(mdp, pi)
    for lam in (0.0, 0.4, 1.0):  # exact critic: every λ is unbiased
        assert torch.allclose(vpg.gae_expectation(mdp, pi, V_pi, lam), adv, atol=1e-12)
    # λ = 0: the TD error; λ = 1: Q^π − V
    assert torch.allclose(vpg.gae_expectation(mdp, pi, V, 0.0), tabular.q_from_v(mdp, V) - V[:, None], atol=1e-12)
    assert torch.allclose(vpg.gae_expectation(mdp, pi, V, 1.0), tabular.q_value(mdp, pi) - V[:, None], atol=1e-12)
    with pytest.raises(HarlMiniError, match="lam"):
        vpg.gae_expectation(mdp, pi, V, 1.5)
    with pytest.raises(HarlMiniError, match="V: expected shape"):
        vpg.gae_expectation(mdp, pi, V[:2], 0.5)


def test_gae_statistics_and_figure(small):
    mdp, pi, V_pi = small
    stats = vpg.gae_statistics(mdp, pi, V_pi + 0.1, lams=[0.0, 0.5, 1.0], num_envs=300, num_steps=40, seed=1)
    assert stats.mean.shape == (3, 3, 2) and stats.count.sum() == 300
    summary = stats.summary()
    assert set(summary) == {"bias2", "var", "mse"}
    assert summary["bias2"][-1] < 1e-20  # a constant critic error is a baseline: no bias that matters
    axes = vpg.plot_gae_bias_variance(stats, 0.5)
    assert len(axes) == 2 and "0.50" in axes[0].get_title()
    with pytest.raises(HarlMiniError, match="stats"):
        vpg.plot_gae_bias_variance({"lams": [0.0]}, 0.5)
    with pytest.raises(HarlMiniError, match="lams"):
        vpg.gae_statistics(mdp, pi, V_pi, lams=[0.5, 2.0], num_envs=10, num_steps=5)
    with pytest.raises(HarlMiniError, match="pi"):
        vpg.gae_statistics(mdp, pi[:2], V_pi, num_envs=10, num_steps=5)
    with pytest.raises(HarlMiniError, match="num_envs"):
        vpg.gae_statistics(mdp, pi, V_pi, num_envs=0, num_steps=5)


def test_gae_lambda_explorer_returns_a_widget(small):
    import ipywidgets

    mdp, pi, V_pi = small
    w = vpg.gae_lambda_explorer(mdp, pi, V_pi, lam=0.5, num_envs=100)
    assert isinstance(w, ipywidgets.Widget)
    assert {c.description for c in w.children if hasattr(c, "description")} >= {"λ"}
    with pytest.raises(HarlMiniError, match="lam"):
        vpg.gae_lambda_explorer(mdp, pi, V_pi, lam=-0.1)


# ------------------------------------------------------------------- Chapter 3


def test_bandit_paths_pg_and_npg():
    r = [1.0, 0.7, 0.0]
    paths = vng.bandit_paths(r, 0.5, steps=5)
    for name in ("pg", "npg"):
        p = paths[name]
        assert p.shape == (6, 3)
        assert np.allclose(p.sum(1), 1.0) and np.allclose(p[0], vng.DEFAULT_START)
        assert np.all(np.diff(p @ r) > 0)  # both improve the expected reward
    # NPG on a bandit (γ = 0, d = 1) is π ∝ π exp(η r): checked in closed form
    expected = np.array(vng.DEFAULT_START) * np.exp(0.5 * 5 * np.array(r))
    assert np.allclose(paths["npg"][-1], expected / expected.sum(), atol=1e-12)


def test_bandit_paths_reject_bad_input():
    with pytest.raises(HarlMiniError, match="rewards"):
        vng.bandit_paths([1.0, 0.0], 0.5)
    with pytest.raises(HarlMiniError, match="start"):
        vng.bandit_paths([1.0, 0.5, 0.0], 0.5, start=[0.5, 0.5, 0.0])
    with pytest.raises(HarlMiniError, match="eta"):
        vng.bandit_paths([1.0, 0.5, 0.0], -1.0)
    with pytest.raises(HarlMiniError, match="steps"):
        vng.bandit_paths([1.0, 0.5, 0.0], 0.5, steps=0)


def test_simplex_plots_and_widget():
    import ipywidgets

    ax = vng.plot_simplex_paths((1.0, 0.7, 0.0), 0.5, steps=4)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert any("natural" in t.get_text() for t in ax.get_legend().get_texts())
    ax2 = vng.plot_bandit_objective((1.0, 0.7, 0.0), 0.5, steps=4)
    assert len(ax2.get_lines()) == 3
    w = vng.simplex_explorer(eta=0.3, steps=5)
    assert isinstance(w, ipywidgets.Widget)
    assert {c.description for c in w.children if hasattr(c, "description")} >= {"η", "steps"}
    with pytest.raises(HarlMiniError, match="eta"):
        vng.simplex_explorer(eta=0.0)


def test_plot_optimality_gap_and_npg_bound():
    mdp = tabular.random_mdp(3, 2, gamma=0.8, seed=0)
    J_star = float(mdp.rho0 @ tabular.optimal_value(mdp))
    runs = {"npg": tabular.run_npg(mdp, 1.0, 5), "pg": tabular.run_pg(mdp, 1.0, 5)}
    ax = vng.plot_optimality_gap(runs, J_star, title="gap")
    assert len(ax.get_lines()) == 2 and ax.get_yscale() == "log"
    gap = J_star - runs["npg"].J
    ax2 = vng.plot_npg_bound(gap, 1.0, mdp.gamma, mdp.num_actions)
    bound = ax2.get_lines()[1].get_ydata()
    assert np.isclose(bound[0], np.log(2) + 1 / 0.2**2)  # T = 1
    with pytest.raises(HarlMiniError, match="runs"):
        vng.plot_optimality_gap({}, J_star)
    with pytest.raises(HarlMiniError, match="J_star"):
        vng.plot_optimality_gap(runs, float("nan"))
    with pytest.raises(HarlMiniError, match="gamma"):
        vng.plot_npg_bound(gap, 1.0, 1.0, 2)
    with pytest.raises(HarlMiniError, match="gap"):
        vng.plot_npg_bound(gap[:1], 1.0, 0.5, 2)


def test_tabular_policy_net_is_the_softmax_policy():
    theta = tabular.random_logits(tabular.random_mdp(4, 3, seed=0), seed=1)
    net = vpg.tabular_policy_net(theta)
    probs = net.distribution(torch.eye(4, dtype=torch.float64)).probs
    assert torch.allclose(probs, tabular.softmax_policy(theta), atol=1e-14)
    with pytest.raises(HarlMiniError, match="theta"):
        vpg.tabular_policy_net(torch.zeros(3))


def test_sampled_policy_gradients_are_seeded_and_the_baseline_helps(small):
    mdp, _, _ = small
    theta = tabular.random_logits(mdp, seed=2)
    V = tabular.value(mdp, tabular.softmax_policy(theta))
    g0, g1 = vpg.sampled_policy_gradients(mdp, theta, V, 2000, 60, seed=3)
    again = vpg.sampled_policy_gradients(mdp, theta, V, 2000, 60, seed=3)
    assert torch.equal(g0, again[0]) and torch.equal(g1, again[1])
    exact = tabular.policy_gradient(mdp, theta)
    err0, err1 = float((g0 - exact).norm() / exact.norm()), float((g1 - exact).norm() / exact.norm())
    assert err1 < 0.2 and err1 < err0, (err0, err1)
    with pytest.raises(HarlMiniError, match="V"):
        vpg.sampled_policy_gradients(mdp, theta, torch.zeros(5), 10, 5)
