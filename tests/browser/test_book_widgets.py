"""The explorers of the built book work without a kernel (issue 13: "moving a slider changes the
figure in the rendered book exactly as in a live kernel").

For every static explorer (``div.harl-explorer``, made by :mod:`harl_mini.viz.explorer`) on every
page, the visit (``bookcheck.Book._explore``) moves each control through all its positions, as a
reader does (arrow keys on a slider, a choice in a menu), and after each move checks that

* the picture changed (decoded pixels, not just the file);
* the values the frame was drawn with, which the PNG records, are the values the page shows next
  to every control (a slider at γ = 0.99 showing a figure drawn at γ = 0.95 fails here).
"""

from __future__ import annotations

import pytest

from bookcheck import PAGES

# The explorers the chapters show, by page: a page that loses its explorer (or renders it as a
# dead widget) fails here, not silently.
EXPECTED = {
    "chapters/ch01_mdp_optimality.html": 1,
    "chapters/ch02_policy_gradient.html": 1,
    "chapters/ch03_natural_gradient.html": 1,
    "chapters/ch04_trpo.html": 1,
    "chapters/ch04_trpo_practice.html": 1,
    "chapters/ch05_ppo.html": 1,
    "chapters/ch06_cooperative_marl.html": 1,
    "chapters/ch07_decomposition.html": 1,
    "chapters/ch08_hatrpo_happo.html": 1,
}


@pytest.mark.parametrize("page", PAGES)
def test_every_control_of_every_explorer_changes_the_picture_it_names(page, book):
    explorers = book.visit(page)["explorers"]
    if page in EXPECTED:
        assert len(explorers) >= EXPECTED[page], f"{page}: expected {EXPECTED[page]} explorer(s), found {len(explorers)}"
    for k, e in enumerate(explorers):
        assert e["moves"] >= 2, f"{page}: explorer {k} ({e['controls']}) has nothing to move"
        assert not e["problems"], f"{page}: explorer {k} ({e['controls']}): " + "; ".join(e["problems"])


def test_expected_pages_exist():
    missing = [p for p in EXPECTED if p not in PAGES]
    assert not missing, f"pages with an explorer are missing (renamed? update EXPECTED): {missing}"
