"""The benchmark's pieces: support sets, the spaCy textcat baseline, targets, plot."""

from pathlib import Path

import pytest

from benchmarks import benchmark
from benchmarks.baselines import run_spacy_textcat

from ..util import synthetic_texts


def write_folder(path: Path, pairs) -> None:
    path.mkdir(parents=True)
    (path / "seq.in").write_text("".join(f"{text}\n" for text, _ in pairs))
    (path / "label").write_text("".join(f"{label}\n" for _, label in pairs))


def test_support_sets_use_the_fixed_split_or_draw_k_per_label(tmp_path):
    pool = [
        (text, label) for label, texts in synthetic_texts(4, 10, seed=0).items() for text in texts
    ]
    write_folder(tmp_path / "train", pool)
    write_folder(tmp_path / "train_5", pool[:3])
    assert benchmark.support_set(tmp_path, 5, seed=0) == pool[:3]
    drawn = benchmark.support_set(tmp_path, 2, seed=0)
    assert sorted({label for _, label in drawn}) == sorted({label for _, label in pool})
    assert all(
        sum(1 for _, lab in drawn if lab == label) == 2 for label in {lab for _, lab in pool}
    )
    assert set(drawn) <= set(pool)
    assert drawn == benchmark.support_set(tmp_path, 2, seed=0)
    assert drawn != benchmark.support_set(tmp_path, 2, seed=1)


def test_spacy_textcat_baseline_learns_from_the_support_set():
    data = synthetic_texts(3, 14, seed=0)
    support = [(t, label) for label, texts in data.items() for t in texts[:8]]
    test = [(t, label) for label, texts in data.items() for t in texts[8:]]
    result = run_spacy_textcat(support, test, epochs=10)
    assert result["accuracy"] > 70.0  # chance is 33
    assert result["adapt_seconds"] > 0 and result["predict_docs_per_second"] > 0


def test_targets_are_checked_and_the_plot_is_written(tmp_path):
    methods = {
        "ours": {
            10: {"accuracy": 86.0, "adapt_seconds": 1.0, "adapt_over_encode": 1.1,
                 "inference_ratio": 0.95},
            5: {"accuracy": 80.0, "adapt_seconds": 0.5, "adapt_over_encode": 1.3,
                "inference_ratio": 0.8},
        },
        "SetFit": {10: {"accuracy": 88.0, "adapt_seconds": 100.0}},
    }  # fmt: skip
    lines = benchmark.target_lines(methods)
    assert "10-shot accuracy above 85.2 (USE+ConveRT 85.19, CPFT 87.20): ours 86.00 (met)" in lines
    assert (
        "5-shot accuracy above 80.9 (USE+ConveRT 77.75, CPFT 80.86): ours 80.00 (missed)" in lines
    )
    assert "ours 5-shot adapt / encode 1.30 (target <= 1.2: missed)" in lines
    assert "ours 10-shot pipeline docs/s over bare encoder 0.95 (target >= 0.9: met)" in lines
    assert "ours 10-shot SetFit training / adapt 100x (target >= 50x: met)" in lines
    gains = benchmark.gain_lines(
        {
            "frozen (+100 steps)": {10: {"accuracy": 85.0}, 5: {"accuracy": 80.0}},
            "meta (+100 steps)": {10: {"accuracy": 87.0}},
            "meta (prototypes)": {10: {"accuracy": 90.0}},
        },
        "frozen",
    )
    assert gains == [
        "meta-learning gain, meta (+100 steps) over frozen, 10-shot: +2.00 (target >= +1.5: met)"
    ]
    names = benchmark.label_name_lines(
        {
            "frozen (+100 steps)": {0: {"accuracy": 60.0}, 5: {"accuracy": 82.0}},
            "frozen (+100 steps, no names)": {5: {"accuracy": 80.5}},
            "frozen (prototypes)": {5: {"accuracy": 79.0}},
        }
    )
    assert names == ["label names, frozen (+100 steps), 5-shot: +1.50"]
    methods["ours"][0] = {"accuracy": 60.0}  # zero shots: left off the log axis
    benchmark.plot(methods, tmp_path / "plot.png", "test")
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "shots,problem", [(0, "at least 1"), (2, r"fewer than 2 texts for labels \['y'\]")]
)
def test_support_set_needs_enough_examples(tmp_path, shots, problem):
    write_folder(tmp_path / "train", [("a b", "x"), ("c d", "x"), ("e f", "y"), ("e f", "y")])
    with pytest.raises(ValueError, match=problem):
        benchmark.support_set(tmp_path, shots, seed=0)


def test_the_plot_spans_the_shots_with_a_zero_shot_row(tmp_path):
    methods = {"frozen": {0: {"accuracy": 60.0}, 1: {"accuracy": 65.0}, 5: {"accuracy": 80.0}}}
    figure = benchmark.plot(methods, tmp_path / "plot.png", "t")
    low, high = figure.axes[0].get_xlim()
    assert 0.5 < low < 1 and 5 < high < 10  # a log axis: zero shots cannot be on it
    assert (tmp_path / "plot.png").stat().st_size > 0
