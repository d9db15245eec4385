"""The new-intents benchmark's pieces: K-shot splits keep support and test
apart, and the interval over splits is Student's."""

import random

import pytest

from benchmarks.new_intents import mean_ci, split_shots


def test_k_shots_per_label_and_the_rest_as_test():
    groups = {"a": [f"a{i}" for i in range(7)], "b": [f"b{i}" for i in range(4)]}
    support, test = split_shots(groups, ["a", "b"], 3, random.Random(0))
    assert sorted(label for _, label in support) == ["a"] * 3 + ["b"] * 3
    assert len(test) == 4 + 1
    assert not {text for text, _ in support} & {text for text, _ in test}
    assert {text for text, _ in support + test} == set(groups["a"] + groups["b"])


def test_the_interval_over_five_splits_uses_t_with_four_degrees_of_freedom():
    mean, half_width = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == 3.0
    # sd 1.5811, t(0.975, 4) = 2.776
    assert half_width == pytest.approx(2.776 * 1.5811388 / 5**0.5, rel=1e-6)
