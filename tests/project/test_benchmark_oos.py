"""The out-of-scope benchmark scores what the pipeline decides."""

import pytest

from benchmarks import benchmark_oos

from ..util import SUPPORT, tiny_nlp


@pytest.mark.parametrize("quantile,steps", [(0.3, None), (0.7, None), (0.5, 5)])
def test_the_benchmark_counts_the_pipelines_own_decisions(quantile, steps):
    nlp = tiny_nlp(unknown_label="oos", in_scope_quantile=quantile, adapt_steps=steps)
    component = nlp.get_pipe("few_shot_textcat")
    support = [(text, label) for label, texts in SUPPORT.items() for text in texts]
    test = [("I lost my card", "card_lost"), ("refund please", "refund"), ("rain", "weather")]
    oos = ["capital of France", "play some jazz", "card weather refund"]
    row = benchmark_oos.evaluate_set(
        component, {"set": "tiny", "support": support, "test": test, "oos": oos}
    )
    docs = list(nlp.pipe([text for text, _ in test] + oos))
    abstained = [doc.cats["oos"] == 1.0 for doc in docs]
    right = [
        not abstained[i] and max(SUPPORT, key=lambda label: docs[i].cats[label]) == label
        for i, (_, label) in enumerate(test)
    ]
    assert row["accuracy"] == pytest.approx(100.0 * sum(right) / len(test))
    assert row["oos_recall"] == pytest.approx(100.0 * sum(abstained[3:]) / len(oos))
    assert row["drop"] == pytest.approx(row["accuracy_never_abstaining"] - row["accuracy"])
    assert 0.0 <= row["auroc_in_scope_score"] <= 1.0
    assert component.adaptation.support_set.has_head == (steps is not None)


def test_reading_skips_empty_lines(tmp_path):
    (tmp_path / "seq.in").write_text("a\n\nb\nc\nd\n")
    (tmp_path / "label").write_text("x\nx\nx\ny\ny\n")
    pairs = benchmark_oos.read_lines(tmp_path)
    assert pairs == [("a", "x"), ("b", "x"), ("c", "y"), ("d", "y")]
