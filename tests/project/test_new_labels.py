"""The new-labels benchmark's pieces: each text encoded once changes no
prediction, old and new labels never overlap (E067), the long tail's counts,
and every protocol end to end on tiny data with tiny pipelines."""

import json
import random

import pytest

from benchmarks import new_labels
from benchmarks.new_labels import (
    Encoders,
    check_disjoint,
    encoded_once,
    long_tail_counts,
    old_and_new,
)
from benchmarks.new_labels_report import summarize, target_lines

from ..util import SUPPORT, synthetic_texts, tiny_nlp


def test_each_text_encoded_once_changes_no_prediction():
    plain = tiny_nlp().get_pipe("few_shot_textcat")
    memoized = tiny_nlp().get_pipe("few_shot_textcat")
    queries = ["someone stole my card", "my refund never arrived", "I lost my card"]
    plain.adapt(SUPPORT)
    calls = []
    encode = memoized.embedder.embed_docs

    def counted(docs, **kwargs):
        calls.extend(doc.text for doc in docs)
        return encode(docs, **kwargs)

    memoized.embedder.embed_docs = counted
    memo = {}
    with encoded_once(memoized, memo):
        memoized.adapt(SUPPORT)
        memoized.adapt(SUPPORT, replace=True)
        scores = memoized.classify_embeddings(memoized.embedder(queries)).scores
    assert len(calls) == len(set(calls))  # every text once
    assert memoized.embedder.embed_docs is counted  # put back
    expected = plain.classify_embeddings(plain.embedder(queries)).scores
    assert scores.flatten().tolist() == pytest.approx(expected.flatten().tolist(), abs=1e-6)


def test_overlapping_old_and_new_labels_are_refused():
    with pytest.raises(ValueError, match=r"\[E067\].*split 03.*\['b'\]"):
        check_disjoint(["a", "b"], ["b", "c"], "split 03")
    check_disjoint(["a"], ["b"], "split 01")


def test_the_long_tail_goes_from_100_down_to_1_geometrically():
    counts = long_tail_counts(77)
    assert (counts[0], counts[38], counts[-1]) == (100, 10, 1)
    assert counts == sorted(counts, reverse=True)


def test_old_labels_keep_most_of_their_texts_and_new_ones_k():
    groups = {label: [f"{label}{i}" for i in range(10)] for label in "abcd"}
    support, old_test, new_test = old_and_new(groups, ["a", "b"], ["c", "d"], 3, random.Random(0))
    assert [len(support[label]) for label in "abcd"] == [8, 8, 3, 3]
    assert len(old_test) == 4 and len(new_test) == 14
    assert support["a"] == groups["a"][:8]
    tested = {text for text, _ in old_test + new_test}
    assert not tested & {text for texts in support.values() for text in texts}
    assert old_and_new(groups, [], ["c"], 0, random.Random(0))[0] == {"c": []}


@pytest.fixture
def tiny_assets(tmp_path):
    """Every file the protocols read, on synthetic texts of 12 labels."""
    texts = synthetic_texts(12, 14, seed=3)
    labels = sorted(texts)
    pairs = [(text, label) for label in labels for text in texts[label]]
    splits = tmp_path / "protaugment_splits" / "BANKING77"
    (splits / "few_shot" / "01").mkdir(parents=True)
    (splits / "full.jsonl").write_text(
        "".join(json.dumps({"sentence": t, "label": lab}) + "\n" for t, lab in pairs)
    )
    for part, names in (("train", labels[:4]), ("valid", labels[4:6]), ("test", labels[6:])):
        (splits / "few_shot" / "01" / f"labels.{part}.txt").write_text("\n".join(names) + "\n")
    banking = tmp_path / "few_shot_intent_detection" / "BANKING77"
    for part, chosen in (("train", pairs[::2]), ("train_10", pairs[::7]), ("test", pairs[1::2])):
        (banking / part).mkdir(parents=True)
        (banking / part / "seq.in").write_text("\n".join(t for t, _ in chosen) + "\n")
        (banking / part / "label").write_text("\n".join(lab for _, lab in chosen) + "\n")
    (tmp_path / "clinc150").mkdir()
    domains = {f"domain{i}": labels[i : i + 1] for i in range(10)}
    data = {
        "train": [[t, lab] for t, lab in pairs[::2]],
        "test": [[t, lab] for t, lab in pairs[1::2]],
    }
    (tmp_path / "clinc150" / "data_full.json").write_text(json.dumps(data))
    (tmp_path / "clinc150" / "domains.json").write_text(json.dumps(domains))
    return tmp_path


def test_every_protocol_runs_and_reports(tiny_assets, monkeypatch):
    monkeypatch.setattr(new_labels, "ROUNDS", 2)
    monkeypatch.setattr(new_labels, "LABELS_PER_ROUND", 2)
    monkeypatch.setattr(new_labels, "load_component", lambda model, settings, encoder: (
        tiny_nlp(**settings).get_pipe("few_shot_textcat")))  # fmt: skip
    methods = ["default", "prototypes", "no balance"]
    loaded = Encoders({name: new_labels.METHODS[name] for name in methods})
    rows = new_labels.balanced(tiny_assets, loaded)
    rows += new_labels.long_tail(tiny_assets, loaded, 2, 0)
    rows += new_labels.clinc150(tiny_assets, loaded, 2, [1, 3], 0)
    rows += new_labels.banking77(tiny_assets, loaded, ["01"], [0, 2], 0, None)
    rows += new_labels.incremental(tiny_assets, loaded, ["01"], 2, 0, None)
    protocols = [row["protocol"] for row in rows]
    assert protocols.count("balanced") == 3 and protocols.count("long_tail") == 6
    assert protocols.count("clinc150") == 2 * 2 * 3 and protocols.count("banking77") == 2 * 3
    # the old labels, then 2 rounds: each round scores every round so far
    last = [row for row in rows if row["protocol"] == "incremental" and row["round"] == 2]
    assert len(last) == 3 and all(len(row["accuracy"]) == 3 for row in last)
    for row in rows:
        for key in ("old", "new", "harmonic", "all", "accuracy", "macro", "micro"):
            values = row.get(key, [])
            for value in values if isinstance(values, list) else [values]:
                assert 0.0 <= value <= 100.0
    summary, lines = summarize(rows, methods)
    text = "\n".join(lines)
    assert "| frozen | 2 | default | 1 |" in text and "## Long tail" in text
    assert "| round 2 |" in text
    targets = target_lines(summary)
    assert any(line.startswith("Long tail, default") for line in targets)
    assert all(line.count("(>=") == line.count("met") + line.count("missed") for line in targets)
