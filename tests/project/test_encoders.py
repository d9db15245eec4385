"""benchmarks/encoders.py: one encoder's rows, read both ways."""

import pytest

from benchmarks import encoders

from ..util import synthetic_texts
from .test_benchmark import write_folder


@pytest.mark.parametrize("reading", encoders.READINGS)
def test_one_encoder_gives_accuracy_and_cost_rows(tiny_bert, tmp_path, reading):
    data = synthetic_texts(3, 8, seed=0)
    pairs = [(text, label) for label, texts in data.items() for text in texts]
    write_folder(tmp_path / "tiny" / "train_2", [p for i, p in enumerate(pairs) if i % 8 < 2])
    write_folder(tmp_path / "tiny" / "test", [p for i, p in enumerate(pairs) if i % 8 >= 2])
    rows = encoders.run_encoder(tiny_bert, reading, tmp_path, ["tiny"], [2], 2, 6, 2, 0, -1)
    accuracy, cost = rows[:-1], rows[-1]
    assert [(r["dataset"], r["shots"], r["adaptation"]) for r in accuracy] == [
        ("tiny", 2, "default"),
        ("tiny", 2, "deep 2"),
    ]
    assert all(0.0 <= r["accuracy"] <= 100.0 and r["adapt_seconds"] > 0 for r in accuracy)
    assert cost["docs_per_second"] > 0 and cost["inference_ratio"] > 0
    assert cost["saved_mib"] > 0 and cost["peak_mib"] > 0


def test_the_two_readings_build_their_encoders(tiny_bert):
    names = {
        reading: encoders.build_pipeline(tiny_bert, reading)
        .get_pipe("few_shot_textcat")
        .model.get_ref("encoder")
        .name
        for reading in encoders.READINGS
    }
    assert names["sentence"] == "sentence_encoder"
    assert names["token-mean"] != "sentence_encoder"
