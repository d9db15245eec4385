"""The new-intents benchmark's pieces: K-shot splits keep support and test
apart, the interval over splits is Student's, and a resumed run keeps only
splits that ran with its settings."""

import json
import random

import pytest
import typer

from benchmarks.new_intents import mean_ci, resumed_rows, split_shots, write_results


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


def row(split, shots, gain):
    return {"split": split, "shots": shots, "meta": 80.0 + gain, "frozen": 80.0, "gain": gain}


def test_a_resumed_run_keeps_the_splits_done_with_the_same_settings(tmp_path):
    settings = {"shots": [1, 5], "steps": 100}
    write_results([row("02", 1, 2.0), row("02", 5, 1.0), row("01", 1, 0.0), row("01", 5, 3.0)],
                  settings, tmp_path)  # fmt: skip
    rows = resumed_rows(tmp_path, settings)
    assert [(r["split"], r["shots"]) for r in rows] == [("01", 1), ("01", 5), ("02", 1), ("02", 5)]
    summary = json.loads((tmp_path / "results.json").read_text())["summary"]
    assert [(s["shots"], s["splits"], s["gain"]) for s in summary] == [(1, 2, 1.0), (5, 2, 2.0)]
    assert resumed_rows(tmp_path / "nothing_yet", settings) == []
    with pytest.raises(typer.BadParameter, match="other settings"):
        resumed_rows(tmp_path, {**settings, "steps": 300})
