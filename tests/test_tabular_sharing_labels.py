"""Exact sharing tests of harl_mini.tabular.sharing added for Chapter 6 and its exercises: J*_share of
two-action games without iteration, sharing with labels (a coarse agent identity), the fewest labels
that reach J*, and the largest entropy of an optimal product policy. Each is compared with a brute
force over deterministic policies or product sets, and with the numerical optimiser."""

import itertools
import math

import pytest
import torch

from harl_mini import tabular
from harl_mini.errors import HarlMiniError
from harl_mini.tabular import sharing

f64 = torch.float64
NAMES = ["xor", "prop1-4", "prop1-6", "permutation-3", "permutation-4", "climbing", "penalty", "zhong-example1"]


def _random_payoffs(seed, shapes, high=3):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, high, shape, generator=g).to(f64) for shape in shapes]


# ------------------------------------------------------------------- J*_share of two-action games


def test_shared_optimum_two_actions_closed_forms():
    for n in (2, 4, 6, 8, 10):
        opt = sharing.shared_optimum_two_actions(tabular.prop1_game(n))
        assert abs(opt.value - 2 / 2**n) < 1e-15 and torch.allclose(opt.policy, torch.full((1, 2), 0.5, dtype=f64))
    for n in range(1, 9):
        for k in range(n + 1):  # pays 1 when exactly k agents play action 1: C(n, k) (k/n)^k (1 - k/n)^(n-k)
            r = torch.zeros((2,) * n, dtype=f64)
            for a in itertools.product((0, 1), repeat=n):
                r[a] = float(sum(a) == k)
            q = k / n
            want = math.comb(n, k) * q**k * (1 - q) ** (n - k)
            assert abs(sharing.shared_optimum_two_actions(r).value - want) < 1e-13
    # XOR: θ = 1/2; HARL's Example 1: θ = 0.6, J*_share = 0.8
    assert abs(sharing.shared_optimum_two_actions(tabular.xor_game()).value - 0.5) < 1e-15
    ex1 = sharing.shared_optimum_two_actions(tabular.zhong_example1_game())
    assert abs(ex1.value - 0.8) < 1e-14 and abs(float(ex1.policy[0, 0]) - 0.6) < 1e-12


def test_shared_optimum_two_actions_is_never_below_the_optimiser_and_is_attained():
    g = torch.Generator().manual_seed(0)
    for k in range(30):
        N = 2 + k % 3
        r = torch.randn((2,) * N, generator=g, dtype=f64)
        exact = sharing.shared_optimum_two_actions(r)
        numeric = sharing.best_shared_policy(tabular.matrix_game(r), restarts=2).value
        assert exact.value >= numeric - 1e-12  # the optimiser returns a value of an actual policy
        attained = float(sharing.shared_objective(tabular.matrix_game(r), exact.policy[0]))
        assert abs(attained - exact.value) < 1e-13


def test_shared_optimum_two_actions_rejects_other_games():
    with pytest.raises(HarlMiniError, match="two actions"):
        sharing.shared_optimum_two_actions(tabular.climbing_game())
    one = sharing.shared_optimum_two_actions(torch.tensor([0.3, 0.7], dtype=f64))  # one agent: pick the best action
    assert one.value == 0.7


# ------------------------------------------------------------------- labels


def _labelled_deterministic_optimum(r, labels):
    """Brute force: some assignment of one action per label whose joint action is optimal."""
    names = sorted(set(labels))
    n = r.shape[0]
    best = float(r.max())
    for actions in itertools.product(range(n), repeat=len(names)):
        a = tuple(actions[names.index(g)] for g in labels)
        if float(r[a]) == best:
            return True
    return False


def test_label_sharing_optimal_agrees_with_brute_force():
    games = [tabular.make_game(name).R[0] for name in NAMES]
    games += _random_payoffs(1, [(3, 3, 3)] * 6 + [(2, 2, 2, 2)] * 6)
    g = torch.Generator().manual_seed(2)
    checked = 0
    for r in games:
        N = r.dim()
        for _ in range(6):
            labels = tuple(int(x) for x in torch.randint(0, N, (N,), generator=g))
            assert sharing.label_sharing_optimal(r, labels) == _labelled_deterministic_optimum(r, labels), (r, labels)
            checked += 1
        assert sharing.label_sharing_optimal(r, tuple(range(N)))  # a full identity always reaches J*
        assert sharing.label_sharing_optimal(r, (0,) * N) == (abs(sharing.shared_optimum_two_actions(r).value
                                                                  - float(r.max())) < 1e-12
                                                              if r.shape[0] == 2 else
                                                              _labelled_deterministic_optimum(r, (0,) * N))
    assert checked == 6 * len(games)


def test_labels_on_the_proposition_one_game_numerically():
    p4 = tabular.prop1_game(4)
    assert sharing.label_sharing_optimal(p4, (0, 0, 1, 1)) and sharing.label_sharing_optimal(p4, [7, 7, 3, 3])
    assert not sharing.label_sharing_optimal(p4, (0, 1, 0, 1)) and not sharing.label_sharing_optimal(p4, (0, 1, 1, 0))
    roles = sharing.best_shared_policy(p4, labels=(0, 0, 1, 1), restarts=2)
    mixed = sharing.best_shared_policy(p4, labels=(0, 1, 0, 1), restarts=2)
    assert abs(roles.value - 1) < 1e-9 and roles.policy.shape == (2, 1, 2)
    assert abs(mixed.value - 1 / 8) < 1e-12  # 2 p(0) p(1) q(0) q(1) <= 2/16, as without labels
    # one label is plain sharing
    one = sharing.best_shared_policy(p4, labels=(5, 5, 5, 5), restarts=1)
    assert abs(one.value - 2 / 16) < 1e-12


def test_labels_reject_bad_input():
    p4 = tabular.prop1_game(4)
    for bad in [(0, 0, 1), "0011", (0, 0, 1, 1.5), (0, 0, True, 1), None]:
        with pytest.raises(HarlMiniError, match="labels"):
            sharing.label_sharing_optimal(p4, bad)
    with pytest.raises(HarlMiniError, match="actions"):
        sharing.label_sharing_optimal(torch.zeros(2, 3, dtype=f64), (0, 0))
    with pytest.raises(HarlMiniError, match="labels"):
        sharing.best_shared_policy(p4, labels=(0, 1))


def _fewest_by_brute_force(r):
    N = r.dim()
    for k in range(1, N + 1):
        for labels in itertools.product(range(k), repeat=N):
            if len(set(labels)) == k and _labelled_deterministic_optimum(r, labels):
                return k
    raise AssertionError("a full identity always works")


def test_fewest_shared_policies_agrees_with_brute_force():
    expected = {"xor": 2, "prop1-4": 2, "prop1-6": 2, "permutation-3": 3, "permutation-4": 4, "climbing": 1,
                "penalty": 1, "zhong-example1": 2}
    for name, k in expected.items():
        assert sharing.fewest_shared_policies(tabular.make_game(name)) == k, name
    for r in _random_payoffs(3, [(3, 3, 3)] * 8 + [(2, 2, 2, 2)] * 5 + [(3, 3, 3, 3)] * 3, high=2):
        assert sharing.fewest_shared_policies(r) == _fewest_by_brute_force(r)
    with pytest.raises(HarlMiniError, match="same number of actions"):
        sharing.fewest_shared_policies(torch.zeros(2, 3, dtype=f64))


# ------------------------------------------------------------------- optimal product policies


def _entropy_by_brute_force(r):
    best = {tuple(int(x) for x in a) for a in torch.nonzero(r == r.max())}
    subsets = [[c for k in range(1, n + 1) for c in itertools.combinations(range(n), k)] for n in r.shape]
    top = 0.0
    for sets in itertools.product(*subsets):
        if all(a in best for a in itertools.product(*sets)):
            top = max(top, sum(math.log(len(B)) for B in sets))
    return top


def test_optimal_product_entropy_agrees_with_brute_force():
    for name in NAMES:
        assert sharing.optimal_product_entropy(tabular.make_game(name)) == 0.0, name
    assert abs(sharing.optimal_product_entropy(torch.ones(3, 3, dtype=f64)) - 2 * math.log(3)) < 1e-15
    rows = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=f64)
    assert abs(sharing.optimal_product_entropy(rows) - 2 * math.log(2)) < 1e-15
    for r in _random_payoffs(4, [(3, 3)] * 10 + [(2, 3, 2)] * 8 + [(3, 3, 2)] * 5, high=2):
        assert abs(sharing.optimal_product_entropy(r) - _entropy_by_brute_force(r)) < 1e-12
        if sharing.igm_representable(r):  # argmax r is itself a product set
            assert abs(sharing.optimal_product_entropy(r) - math.log(int((r == r.max()).sum()))) < 1e-12


def test_optimal_product_entropy_is_attained_by_an_optimal_product_policy():
    r = torch.zeros(3, 3, 2, dtype=f64)
    r[:2, 1:, :] = 4.0  # optima {0,1} x {1,2} x {0,1}, plus one more
    r[2, 0, 1] = 4.0
    H = sharing.optimal_product_entropy(r)
    assert abs(H - 3 * math.log(2)) < 1e-15
    pis = [torch.tensor([[0.5, 0.5, 0.0]], dtype=f64), torch.tensor([[0.0, 0.5, 0.5]], dtype=f64),
           torch.tensor([[0.5, 0.5]], dtype=f64)]
    assert float(tabular.game_objective(tabular.matrix_game(r), pis)) == 4.0
    assert abs(sum(float(-(p[p > 0] * p[p > 0].log()).sum()) for p in pis) - H) < 1e-15
