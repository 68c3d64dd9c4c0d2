"""Every registered check passes on the reference (for the notebook's draws and for graded
seeds), rejects every hand-written mutant, accepts every correct form of an answer, and
reports a wrong one as one actionable message."""

import math
import re
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from harl_mini.grading import CHECKS, EXERCISES, CheckFailed
from harl_mini.grading.book import all_refs, lookup
from harl_mini.grading.core import PartResult, register
from mutants import MUTANTS, REFERENCES

ROOT = Path(__file__).resolve().parents[1]
ALL_CHECKS = {f"{ex}.{name}": check for ex, checks in CHECKS.items() for name, check in checks.items()}
#: graded runs draw a fresh seed; these stand in for them
GRADE_SEEDS = (None, 11, 2024)


def test_every_check_has_a_reference_and_three_mutants():
    assert ALL_CHECKS, "no checks registered"
    assert set(REFERENCES) == set(ALL_CHECKS), "each check needs a reference in tests/mutants.py"
    for key in ALL_CHECKS:
        assert len(MUTANTS.get(key, [])) >= 3, f"{key}: fewer than 3 mutants in tests/mutants.py"


def test_every_exercise_has_a_source_and_a_student_notebook():
    for exercise in EXERCISES:
        assert list((ROOT / "exercises" / "src").glob(f"{exercise}_*.md")), exercise
        assert list((ROOT / "exercises").glob(f"{exercise}_*.ipynb")), exercise


@pytest.mark.parametrize("key", sorted(ALL_CHECKS))
def test_check_passes_on_reference_quickly(key):
    check = ALL_CHECKS[key]
    for seed in GRADE_SEEDS:
        start = time.perf_counter()
        result = check.evaluate(REFERENCES[key], seed=seed)
        elapsed = time.perf_counter() - start
        assert result.ok, [p.line() for p in result.parts if not p.ok]
        assert [p.part for p in result.parts] == list(check.parts)
        assert elapsed < 2.0, f"{key} took {elapsed:.2f} s with seed {seed} (limit 2 s)"


@pytest.mark.parametrize("key,mutant", [(key, m) for key in sorted(MUTANTS) for m in MUTANTS[key]],
                         ids=lambda x: getattr(x, "__name__", x))
def test_check_rejects_mutant(key, mutant):
    check = ALL_CHECKS[key]
    for seed in (None, 7):
        result = check.evaluate(mutant, seed=seed)
        failed = [p for p in result.parts if not p.ok]
        assert failed, f"{key} accepts the mutant {mutant.__name__} (seed {seed})"
        for part in failed:
            line = part.line()
            assert line.startswith(f"FAIL {check.name} [{part.part}]") and "\n" not in line, line
            assert "Traceback" not in line and "index ()" not in line, line


def test_a_toothless_check_is_caught_by_the_mutant_test():
    """The harness above would flag a check that accepts anything."""

    @register(exercise="meta", function="f", equation="eq-return", parts={"anything": 1})
    def check_accepts_anything(student_fn, ctx):
        with ctx.part("anything"):
            ctx.call(torch.zeros(3, dtype=torch.float64), 0.9)

    try:
        for mutant in MUTANTS["ex01_1.check_discounted_returns"]:
            assert check_accepts_anything.evaluate(mutant).ok
    finally:
        CHECKS.pop("meta")


def test_every_check_states_its_tolerance_and_cites_a_label_of_the_book():
    refs = all_refs()
    assert refs, "the book sources are next to the package in this repository"
    for key, check in ALL_CHECKS.items():
        assert "Tolerance:" in check.doc, f"{key}: the docstring must state its tolerance"
        assert check.equation in refs, f"{key} cites {check.equation!r}, which no chapter defines"
        assert refs[check.equation].doc.startswith("chapters/ch"), (key, refs[check.equation].doc)


def test_equation_numbers_match_a_built_book():
    """The numbers messages show are those of the built HTML (when a built book exists)."""
    html = ROOT / "_build" / "html"
    if not (html / "chapters").is_dir():
        pytest.skip("no built book in _build/html")
    refs = all_refs()
    checked = 0
    for page in html.glob("chapters/*.html"):
        text = page.read_text(encoding="utf-8")
        for number, label in re.findall(r'<span class="eqno">\((\d+)\)<a class="headerlink" href="#equation-([\w.:-]+)"',
                                        text):
            assert refs[label].number == int(number), (label, refs[label].number, number)
            checked += 1
    assert checked


def test_a_message_names_the_equation_as_the_book_renders_it():
    ref = lookup("eq-gae")
    assert ref.kind == "equation" and isinstance(ref.number, int)
    assert ref.url == "chapters/ch02_policy_gradient.html#equation-eq-gae"
    result = ALL_CHECKS["ex02_1.check_gae"].evaluate(MUTANTS["ex02_1.check_gae"][0])
    line = next(p for p in result.parts if not p.ok).line()
    assert f"eq. ({ref.number})" in line and "Chapter 2" in line and ref.url in line, line
    assert "Algorithm" in lookup("alg-trpo").name


# --------------------------------------------------------------------------- messages


def _gae_inputs(T=12, B=3):
    gen = torch.Generator().manual_seed(0)
    rewards, values, next_values = (torch.randn(T, B, generator=gen, dtype=torch.float64) for _ in range(3))
    terminated = torch.zeros(T, B, dtype=torch.bool)
    truncated = torch.zeros(T, B, dtype=torch.bool)
    truncated[5, 2] = True
    return rewards, values, next_values, terminated, truncated


def test_failing_input_is_described_in_words_with_a_hint_for_the_known_mistake():
    from mutants import gae_truncation_as_termination

    result = ALL_CHECKS["ex02_1.check_gae"].evaluate(gae_truncation_as_termination, seed=3)
    part = next(p for p in result.parts if not p.ok)
    assert part.part == "truncation only"
    assert re.search(r"step t=\d+ of copy \d+ is a truncation: terminated=False, truncated=True", part.input), part.input
    assert "a truncation is not a terminal state" in part.hint
    assert "expected" in part.message and "got" in part.message


def test_scalars_are_not_reported_at_index_brackets():
    from mutants import ppo_objective_not_loss

    result = ALL_CHECKS["ex05_1.check_ppo_clip_loss"].evaluate(ppo_objective_not_loss)
    lines = [p.line() for p in result.parts if not p.ok]
    assert lines and all("index ()" not in line for line in lines)
    assert any("Hint: that is the objective" in line for line in lines), lines


def test_a_detached_loss_gets_the_graph_hint_and_a_float_the_tensor_hint():
    from mutants import ref_ppo_clip_loss

    check = ALL_CHECKS["ex05_1.check_ppo_clip_loss"]
    detached = check.evaluate(lambda *a: ref_ppo_clip_loss(a[0].detach(), *a[1:]))
    part = next(p for p in detached.parts if p.part == "gradient with respect to logp")
    assert not part.ok and "without a gradient" in part.message and ".detach()" in part.hint
    as_float = check.evaluate(lambda *a: ref_ppo_clip_loss(*a).item())
    part = next(p for p in as_float.parts if p.part == "gradient with respect to logp")
    assert not part.ok and "float, not a torch tensor" in part.message
    assert next(p for p in as_float.parts if p.part.startswith("value, ratios inside")).ok


def test_an_in_place_error_keeps_the_checks_prefix_and_gets_a_hint():
    from mutants import ref_ppo_clip_loss

    def in_place(logp, logp_old, adv, eps):
        ratio = torch.exp(logp - logp_old)
        ratio.clamp_(1 - eps, 1 + eps)  # modifies a tensor exp's backward needs
        return -(ratio * adv).mean()

    result = ALL_CHECKS["ex05_1.check_ppo_clip_loss"].evaluate(in_place)
    part = next(p for p in result.parts if p.part == "gradient with respect to logp")
    line = part.line()
    assert line.startswith("FAIL check_ppo_clip_loss [gradient with respect to logp]")
    assert "in-place" in part.hint and "See eq." in line, line
    assert ref_ppo_clip_loss  # the reference itself passes (test above)


#: What each check expects back (default: one tensor); used to break the output contract
OUTPUT_KIND = {"ex04_1.check_line_search": "pair", "ex06_1.check_best_shared_value": "number",
               # chapters 4 and 5
               "ex04_2.check_mean_kl_bound": "number", "ex04_2.check_certified_mixture_weight": "number",
               "ex04_2.check_best_mixture_weight": "number", "ex05_2.check_next_kl_coef": "number",
               "ex07_1.check_advantage_terms": "tensor-list", "ex08_1.check_agent_order": "order",
               "ex08_2.check_happo_iteration": "tensor-list",
               # chapters 6 and 7
               "ex06_1.check_best_shared_theta": "number", "ex06_1.check_k_of_n_value": "number",
               "ex06_2.check_labels_reach_optimum": "bool", "ex06_2.check_fewest_labels": "number",
               "ex06_2.check_optimal_product_entropy": "number", "ex06_3.check_vdn_greedy": "joint action",
               "ex06_3.check_vdn_rest_points": "joint actions", "ex07_2.check_simultaneous_greedy": "tensor-list",
               "ex07_2.check_sequential_greedy": "tensor-list", "ex07_3.check_order_averaged_credit": "tensor-list",
               # chapter 9
               "ex09_1.check_ring_env": "env", "ex09_2.check_rollout_targets": "tensor-list",
               "ex09_3.check_prob_greater": "number"}


def _bad_outputs(reference, kind):
    """Wrong student functions: each breaks one output contract, with the message expected."""

    def returns_none(*args):
        return None

    def raises(*args):
        raise ValueError("student bug")

    def not_implemented(*args):
        raise NotImplementedError("Exercise 1.1: implement `f`")

    def exits(*args):
        raise SystemExit(3)

    def returns_string(*args):
        return "42"

    out = {returns_none: "None", raises: "raised ValueError: student bug",
           not_implemented: "is not implemented yet", exits: "sys.exit(3)", returns_string: "str"}
    if kind in ("tensor", "tensor-list"):
        def with_nan(*args):
            value = reference(*args)
            first = (value[0] if kind == "tensor-list" else value).detach().clone()
            first.view(-1)[0] = float("nan")
            return [first, *value[1:]] if kind == "tensor-list" else first

        def extra_axis(*args):
            value = reference(*args)
            return [value[0].unsqueeze(0), *value[1:]] if kind == "tensor-list" else value.detach()[None, None]

        out[with_nan] = "nan"
        out[extra_axis] = "has shape"
    if kind == "number":
        def returns_nan(*args):
            return float("nan")

        out[returns_nan] = "is nan"
    return out


CASES = [(key, bad, expected) for key in sorted(ALL_CHECKS)
         for bad, expected in _bad_outputs(REFERENCES[key], OUTPUT_KIND.get(key, "tensor")).items()]


@pytest.mark.parametrize("key,bad,expected", CASES, ids=[f"{k}-{b.__name__}" for k, b, _ in CASES])
def test_bad_student_output_gives_one_clear_message(key, bad, expected):
    result = ALL_CHECKS[key].evaluate(bad)
    failed = [p for p in result.parts if not p.ok]
    assert failed, f"{key} accepted {bad.__name__}"
    line = failed[0].line()
    assert expected in line, line
    assert "\n" not in line and "Traceback" not in line


def test_check_rejects_a_non_function():
    result = ALL_CHECKS["ex01_1.check_bellman_backup"].evaluate(np.zeros(3))
    assert not result.ok and "expected your function `bellman_backup`" in result.parts[0].message


def test_interactive_check_prints_one_line_per_part_and_raises_a_summary(capsys):
    from mutants import gae_truncation_as_termination, ref_gae

    check = ALL_CHECKS["ex02_1.check_gae"]
    check(ref_gae)
    out = capsys.readouterr().out
    assert out.count("PASS check_gae [") == 6 and "PASS check_gae: 6/6 points" in out
    with pytest.raises(CheckFailed, match=r"check_gae: \d/6 points; failed: .*truncation only"):
        check(gae_truncation_as_termination)
    assert "FAIL check_gae [truncation only] 0/1" in capsys.readouterr().out


# --------------------------------------------------------------------------- every correct answer


def _as(kind):
    def convert(value):
        if kind == "float32":
            return value.detach().to(torch.float32)
        if kind == "numpy":
            return value.detach().numpy()
        if kind == "list":
            return value.detach().tolist()
        return value
    return convert


TENSOR_CHECKS = [k for k in sorted(ALL_CHECKS) if OUTPUT_KIND.get(k, "tensor") == "tensor"
                 and k not in ("ex05_1.check_ppo_clip_loss", "ex08_1.check_happo_loss")]


@pytest.mark.parametrize("kind", ["float32", "numpy", "list"])
@pytest.mark.parametrize("key", TENSOR_CHECKS)
def test_any_array_like_of_the_right_values_is_accepted(key, kind):
    reference = REFERENCES[key]
    result = ALL_CHECKS[key].evaluate(lambda *args: _as(kind)(reference(*args)), seed=5)
    assert result.ok, [p.line() for p in result.parts if not p.ok]


def test_losses_computed_in_float32_are_accepted():
    from mutants import ref_happo_loss, ref_ppo_clip_loss

    ppo = ALL_CHECKS["ex05_1.check_ppo_clip_loss"].evaluate(
        lambda logp, old, adv, eps: ref_ppo_clip_loss(logp.float(), old.float(), adv.float(), eps))
    assert ppo.ok, [p.line() for p in ppo.parts if not p.ok]
    happo = ALL_CHECKS["ex08_1.check_happo_loss"].evaluate(
        lambda logp, old, adv, M, eps: ref_happo_loss(logp.float(), old.float(), adv.float(), M.float(), eps))
    assert happo.ok, [p.line() for p in happo.parts if not p.ok]


@pytest.mark.parametrize("convert", [float, lambda x: Fraction(x).limit_denominator(10**9), np.float64, np.float32,
                                     lambda x: torch.tensor(x), lambda x: np.array(x), lambda x: torch.tensor([x])],
                         ids=["float", "Fraction", "np.float64", "np.float32", "0-d tensor", "0-d array", "1-element"])
def test_any_real_scalar_is_accepted(convert):
    def k_of_n(n, k):  # J*_share when exactly k of n agents must play 1 (Exercise 6.1)
        return convert(math.comb(n, k) * (k / n) ** k * (1 - k / n) ** (n - k))

    result = ALL_CHECKS["ex06_1.check_k_of_n_value"].evaluate(k_of_n)
    assert result.ok, [p.line() for p in result.parts if not p.ok]


def test_exact_fraction_is_accepted():
    result = ALL_CHECKS["ex06_1.check_k_of_n_value"].evaluate(
        lambda n, k: Fraction(math.comb(n, k) * k**k * (n - k) ** (n - k), n**n))
    assert result.ok


def test_broadcastable_terms_are_accepted():
    from mutants import _marginal

    def terms_unexpanded(Q, pis, order):
        out = []
        for j in range(len(order)):
            term = _marginal(Q, pis, tuple(order[: j + 1])) - _marginal(Q, pis, tuple(order[:j])).unsqueeze(-1)
            out.append(term.reshape(*term.shape, *[1] * (len(order) - j - 1)))  # [S, n_1, .., n_j, 1, .., 1]
        return out

    result = ALL_CHECKS["ex07_1.check_advantage_terms"].evaluate(terms_unexpanded, seed=3)
    assert result.ok, [p.line() for p in result.parts if not p.ok]


def test_line_search_accepts_numpy_and_tensor_booleans():
    from mutants import ref_line_search

    def numpy_types(*args):
        accepted, fraction = ref_line_search(*args)
        return np.bool_(accepted), np.float64(fraction)

    def tensors(*args):
        accepted, fraction = ref_line_search(*args)
        return torch.tensor(accepted), torch.tensor(fraction, dtype=torch.float64)

    for fn in (numpy_types, tensors):
        result = ALL_CHECKS["ex04_1.check_line_search"].evaluate(fn, seed=4)
        assert result.ok, [p.line() for p in result.parts if not p.ok]


def test_hatrpo_step_accepts_an_exact_solve_and_ten_cg_iterations_at_any_size():
    from mutants import ref_hatrpo_step, ref_hatrpo_step_exact

    for fn in (ref_hatrpo_step, ref_hatrpo_step_exact):
        for seed in (None, 1, 2, 3):
            result = ALL_CHECKS["ex08_1.check_hatrpo_step"].evaluate(fn, seed=seed)
            assert result.ok, [p.line() for p in result.parts if not p.ok]


def test_agent_order_rejects_a_round_robin_that_ignores_the_generator():
    from mutants import order_round_robin

    for seed in (None, 1, 2):
        result = ALL_CHECKS["ex08_1.check_agent_order"].evaluate(order_round_robin, seed=seed)
        failed = {p.part for p in result.parts if not p.ok}
        assert {"reproducible from the generator", "depends on the generator only"} <= failed, failed


def test_agent_order_accepts_any_correct_use_of_the_generator():
    def via_argsort(n, generator):
        return torch.argsort(torch.rand(n, generator=generator))

    def via_python_random(n, generator):
        import random

        seed = int(torch.randint(2**31 - 1, (), generator=generator))
        order = list(range(n))
        random.Random(seed).shuffle(order)
        return tuple(order)

    for fn in (via_argsort, via_python_random):
        result = ALL_CHECKS["ex08_1.check_agent_order"].evaluate(fn, seed=9)
        assert result.ok, [p.line() for p in result.parts if not p.ok]


# --------------------------------------------------------------------------- drawn at grade time


def _memoriser(key):
    """Records the reference's answers on the notebook's draws, then answers only those."""
    check, reference = ALL_CHECKS[key], REFERENCES[key]
    table = {}

    def fingerprint(args):
        return repr([a.tolist() if isinstance(a, torch.Tensor) else a for a in args])

    def recording(*args):
        out = reference(*args)
        table[fingerprint(args)] = out
        return out

    assert check.evaluate(recording).ok

    def memorised(*args):
        key_ = fingerprint(args)
        if key_ in table:
            return table[key_]
        return torch.zeros_like(args[0])

    return memorised


@pytest.mark.parametrize("key", ["ex01_1.check_discounted_returns", "ex02_1.check_gae", "ex03_1.check_fisher_vector_product"])
def test_memorising_the_visible_cases_fails_with_a_graded_seed(key):
    memorised = _memoriser(key)
    assert ALL_CHECKS[key].evaluate(memorised).ok, "the memoriser passes the notebook's own draws"
    graded = ALL_CHECKS[key].evaluate(memorised, seed=123456)
    assert not graded.ok


def test_the_seed_changes_the_draws_and_replays_them():
    check = ALL_CHECKS["ex01_1.check_discounted_returns"]

    def draws(seed):
        seen = []

        def spy(rewards, gamma):
            seen.append((rewards.tolist(), gamma))
            return REFERENCES["ex01_1.check_discounted_returns"](rewards, gamma)

        assert check.evaluate(spy, seed=seed).ok
        return seen

    assert draws(None) == draws(None) and draws(1) == draws(1)
    assert draws(None) != draws(1) and draws(1) != draws(2)
    assert draws(1)[0] == draws(2)[0], "the worked example is the same for every seed"


def test_slow_correct_solution_gets_a_warning_with_its_time(monkeypatch):
    check = ALL_CHECKS["ex01_1.check_discounted_returns"]
    monkeypatch.setattr(check, "slow_s", 0.05)

    def slow(rewards, gamma):
        time.sleep(0.01)
        return REFERENCES["ex01_1.check_discounted_returns"](rewards, gamma)

    result = check.evaluate(slow)
    assert result.ok and result.warning and re.search(r"took \d+\.\d s", result.warning)


def test_part_result_line_is_one_sentence_per_field():
    part = PartResult("check_x", "a part", 1, False, "wrong", "an input", "a hint", reference="eq. (1) in §1")
    assert part.line() == "FAIL check_x [a part] 0/1: wrong. Input: an input. Hint: a hint. See eq. (1) in §1."


def test_a_tensor_subclass_cannot_fake_the_comparison():
    class Liar(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return torch.zeros(())  # every operation on it "matches"

    def lying(rewards, gamma):
        return torch.zeros_like(rewards).as_subclass(Liar)

    result = ALL_CHECKS["ex01_1.check_discounted_returns"].evaluate(lying)
    assert not result.ok and "is wrong at t=" in result.parts[0].message, result.parts[0].line()
