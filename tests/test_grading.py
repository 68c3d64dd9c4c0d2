"""Every exercise check passes on the reference, rejects every mutant, and reports bad
student output as one clear message."""

import time

import numpy as np
import pytest
import torch

from harl_mini.grading import CHECKS, CheckFailed
from harl_mini.grading.core import register
from mutants import MUTANTS, REFERENCES

ALL_CHECKS = {name: check for checks in CHECKS.values() for name, check in checks.items()}


def test_every_check_has_a_reference_and_three_mutants():
    assert ALL_CHECKS, "no checks registered"
    assert set(REFERENCES) == set(ALL_CHECKS), "each check needs a reference in tests/mutants.py"
    for name in ALL_CHECKS:
        assert len(MUTANTS.get(name, [])) >= 3, f"{name}: fewer than 3 mutants in tests/mutants.py"


@pytest.mark.parametrize("name", sorted(ALL_CHECKS))
def test_check_passes_on_reference_quickly(name, capsys):
    start = time.perf_counter()
    ALL_CHECKS[name].run(REFERENCES[name])
    elapsed = time.perf_counter() - start
    assert f"PASS {name}" in capsys.readouterr().out
    assert elapsed < 2.0, f"{name} took {elapsed:.2f} s (limit 2 s)"


@pytest.mark.parametrize(
    "name,mutant",
    [(name, m) for name in sorted(MUTANTS) for m in MUTANTS[name]],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_check_rejects_mutant(name, mutant):
    check = ALL_CHECKS[name]
    with pytest.raises(CheckFailed) as info:
        check.run(mutant)
    message = str(info.value)
    assert message.startswith(f"{name} (eq. {check.equation})"), message


def test_a_toothless_check_is_caught_by_the_mutant_test():
    """The harness above would flag a check that accepts anything."""

    @register("meta", equation="eq-none")
    def check_accepts_anything(student_fn):
        student_fn(torch.zeros(3, dtype=torch.float64), 0.9)

    try:
        rejected = []
        for mutant in MUTANTS["check_discounted_returns"]:
            try:
                check_accepts_anything(mutant)
            except CheckFailed:
                rejected.append(mutant)
        assert rejected == [], "a toothless check must accept every mutant"
    finally:
        CHECKS.pop("meta")


#: What each check expects back from the student's function (default: one tensor).
OUTPUT_KIND = {"check_line_search": "tuple", "check_best_shared_value": "number",
               "check_advantage_terms": "tensor-list", "check_agent_order": "sequence"}


def _bad_variants(reference, kind):
    """Wrong student functions derived from the reference: each breaks one output contract."""

    def returns_none(*args):
        return None

    def raises(*args):
        raise ValueError("student bug")

    def not_implemented(*args):
        raise NotImplementedError("Exercise 0: implement `f`")

    def returns_string(*args):
        return "42"

    variants = {returns_none: "None", raises: "raised ValueError: student bug",
                not_implemented: "is not implemented yet", returns_string: "str"}

    def broken(tensor_fn):
        """Apply ``tensor_fn`` to the output, or to the first tensor of a list output."""
        def student(*args):
            out = reference(*args)
            if kind == "tensor-list":
                return [tensor_fn(out[0].detach())] + [t.detach() for t in out[1:]]
            return tensor_fn(out.detach())
        return student

    def with_nan(t):
        t = t.clone()
        t.view(-1)[0] = float("nan")
        return t

    if kind in ("tensor", "tensor-list"):
        for name, fn, expected in [("as_float32", lambda t: t.to(torch.float32), "dtype torch.float32"),
                                   ("with_extra_axis", lambda t: t.unsqueeze(0), "has shape"),
                                   ("with_nan", with_nan, "contains nan"),
                                   ("as_list", lambda t: t.tolist(), "has type")]:
            student = broken(fn)
            student.__name__ = name
            variants[student] = expected
    if kind == "number":
        def returns_nan(*args):
            return float("nan")

        variants[returns_nan] = "you returned nan"
    return variants


CASES = [(name, bad, expected) for name in sorted(ALL_CHECKS)
         for bad, expected in _bad_variants(REFERENCES[name], OUTPUT_KIND.get(name, "tensor")).items()]


@pytest.mark.parametrize("name,bad,expected", CASES, ids=[f"{n}-{b.__name__}" for n, b, _ in CASES])
def test_bad_student_output_gives_one_clear_message(name, bad, expected):
    with pytest.raises(CheckFailed) as info:
        ALL_CHECKS[name].run(bad)
    message = str(info.value)
    assert expected in message, message
    assert message.startswith(name) and "\n" not in message and "Traceback" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_numpy_float64_output_is_accepted(capsys):
    ALL_CHECKS["check_discounted_returns"].run(lambda r, g: REFERENCES["check_discounted_returns"](r, g).numpy())
    assert "PASS" in capsys.readouterr().out


def test_check_rejects_a_non_function():
    with pytest.raises(CheckFailed, match="expected your function"):
        ALL_CHECKS["check_bellman_backup"].run(np.zeros(3))
