"""The in-scope decision from the support set alone: with unknown_label set, a
doc is out of scope when it is less similar to its nearest label's prototype
than all but in_scope_quantile of the support examples are to their own label's
(leave-one-out)."""

import numpy
import pytest
import spacy

from spacy_metalearn.adaptation.support import readable_label

from ..util import SUPPORT, default_pipeline, tiny_nlp

FAR = ["what is the capital of France", "play some jazz music"]
NEAR = ["I lost my card", "where is my refund", "will it rain today"]


def out_of_scope(nlp, texts):
    return [doc.cats["oos"] for doc in nlp.pipe(texts)]


def hand_decision(nlp, texts, quantile):
    """The rule computed here from the embedder's outputs, in numpy: each
    label's prototype is the mean of its examples and its name; only examples
    are left out to calibrate the threshold."""
    fs = nlp.get_pipe("few_shot_textcat")

    def unit(x):
        return x / numpy.linalg.norm(x, axis=1, keepdims=True)

    own, prototypes = [], []
    for label, texts_of_label in SUPPORT.items():
        support = unit(fs.embedder(texts_of_label).numpy().astype("float64"))
        name = unit(fs.embedder([readable_label(label)]).numpy().astype("float64"))
        prototypes.append(numpy.concatenate([support, name]).mean(0))
        for i in range(len(support)):
            others = numpy.concatenate([numpy.delete(support, i, axis=0), name]).mean(0)
            own.append(support[i] @ others / numpy.linalg.norm(others))
    threshold = numpy.quantile(own, quantile)
    queries = unit(fs.embedder(texts).numpy().astype("float64"))
    nearest = (queries @ unit(numpy.array(prototypes)).T).max(1)
    return [0.0 if s >= threshold else 1.0 for s in nearest]


@pytest.mark.parametrize("quantile", [0.0, 0.3, 0.7])
def test_the_decision_is_the_leave_one_out_quantile(quantile):
    nlp = tiny_nlp(unknown_label="oos", in_scope_quantile=quantile, adapt_steps=0)
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    texts = NEAR + FAR + ["card refund", "rain rain rain", "money"]
    decided = out_of_scope(nlp, texts)
    assert decided == hand_decision(nlp, texts, quantile)
    if quantile == 0.7:
        assert 0.0 in decided and 1.0 in decided  # the check does decide both ways


@pytest.fixture(scope="module")
def default_encoder_nlp():
    nlp = default_pipeline(unknown_label="oos")
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    return nlp


def test_default_catches_unrelated_queries_and_keeps_related_ones(default_encoder_nlp):
    """Out of the box (frozen all-MiniLM-L6-v2, the default quantile): texts
    about the support's topics stay in scope, unrelated ones do not."""
    nlp = default_encoder_nlp
    assert out_of_scope(nlp, ["someone took my credit card", "is it going to snow"]) == [0.0, 0.0]
    assert out_of_scope(nlp, FAR) == [1.0, 1.0]
    doc = nlp("what is the capital of France")
    assert set(doc.cats) == {*SUPPORT, "oos"}  # the label scores are still there


def test_without_the_quantile_only_the_threshold_decides():
    nlp = tiny_nlp(unknown_label="oos", in_scope_quantile=None)
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    assert out_of_scope(nlp, NEAR + FAR + ["zzz qqq"]) == [0.0] * 6


def test_without_an_unknown_label_nothing_is_decided():
    nlp = tiny_nlp(in_scope_quantile=0.5)
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    assert fs.predict([nlp.make_doc(t) for t in FAR]).in_scope is None


def test_one_example_per_label_leaves_it_to_the_threshold():
    """No label has a second example or a name, so there is nothing to
    calibrate on."""
    nlp = tiny_nlp(unknown_label="oos", in_scope_quantile=0.5, use_label_names=False)
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt({label: texts[:1] for label, texts in SUPPORT.items()})
    assert fs.predict([nlp.make_doc(t) for t in FAR]).in_scope is None
    assert out_of_scope(nlp, FAR) == [0.0, 0.0]


def test_one_example_and_its_name_calibrate_the_decision():
    """With label names, a single example is left out against its name."""
    nlp = tiny_nlp(unknown_label="oos", in_scope_quantile=0.5)
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt({label: texts[:1] for label, texts in SUPPORT.items()})
    assert len(fs.adaptation.left_out_similarities) == len(SUPPORT)
    assert fs.predict([nlp.make_doc(t) for t in FAR]).in_scope is not None


def test_the_decision_survives_saving_and_loading(tmp_path):
    nlp = tiny_nlp(unknown_label="oos", in_scope_quantile=0.7)
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    texts = NEAR + FAR + ["card refund", "money"]
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("few_shot_textcat").cfg["in_scope_quantile"] == 0.7
    assert [d.cats for d in loaded.pipe(texts)] == [d.cats for d in nlp.pipe(texts)]


@pytest.mark.parametrize("value", [1.0, -0.1, "0.1", True])
def test_bad_quantile_is_refused(value):
    with pytest.raises(ValueError, match="in_scope_quantile"):
        tiny_nlp(unknown_label="oos", in_scope_quantile=value)
