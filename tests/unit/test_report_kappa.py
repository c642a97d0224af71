"""Fleiss' kappa against worked examples, and its edge cases."""

from __future__ import annotations

import pytest

from warriorflow.report.stats import fleiss_kappa, histogram, rating_table

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories; kappa = 0.210
WIKIPEDIA = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


def test_the_wikipedia_example():
    assert fleiss_kappa(WIKIPEDIA) == pytest.approx(0.2099, abs=5e-4)
    # P_bar = 0.378 and P_e = 0.213 there: kappa = (0.378 - 0.213) / (1 - 0.213)
    assert round(fleiss_kappa(WIKIPEDIA), 3) == 0.210


def test_perfect_agreement_chance_and_undefined_cases():
    assert fleiss_kappa([[3, 0], [0, 3], [3, 0]]) == pytest.approx(1.0)
    # every item split as evenly as possible between two categories: worse than chance
    assert fleiss_kappa([[1, 1], [1, 1]]) == pytest.approx(-1.0)
    assert fleiss_kappa([[2, 0], [3, 0]]) is None  # every rating in one category: undefined
    assert fleiss_kappa([[1, 0], [0, 1]]) is None  # no item with two ratings
    assert fleiss_kappa([]) is None
    with pytest.raises(ValueError):
        fleiss_kappa([[1, 1], [2]])


def test_items_with_different_numbers_of_raters():
    # item 1: 3 raters agree; item 2: 2 raters disagree; the single-rating item is ignored
    table = [[3, 0, 0], [0, 1, 1], [0, 0, 1]]
    p_bar = (1.0 + 0.0) / 2
    p = [3 / 5, 1 / 5, 1 / 5]
    p_e = sum(x * x for x in p)
    assert fleiss_kappa(table) == pytest.approx((p_bar - p_e) / (1 - p_e))
    # with a constant number of raters it is Fleiss (1971) on the rows that count
    assert fleiss_kappa(table[:2] + [[0, 0, 0]]) == fleiss_kappa(table[:2])


def test_rating_table_and_histogram():
    items = [{"j1": "attacker", "j2": "attacker", "j3": "invalid"}, {"j1": "tie", "j2": "defender"}]
    assert rating_table(items, ("attacker", "defender", "tie")) == [[2, 0, 0], [0, 1, 1]]
    assert histogram([0.0, 0.05, 0.5, 1.0, 0.99], [0, 0.5, 1.0]) == [2, 3]
