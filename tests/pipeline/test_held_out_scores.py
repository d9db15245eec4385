"""The in-scope decision with a fitted head (adapt steps > 0): each support
example's top logit from the head refitted without it (folds of one example
of each label) shows what in-scope logits look like; a doc whose top logit is
below all but in_scope_quantile of them is out of scope."""

import numpy
import pytest
import spacy
import srsly
import torch

from spacy_metalearn.adaptation.held_out import MAX_FOLDS, example_folds
from spacy_metalearn.adaptation.support_set import SupportSet
from spacy_metalearn.models.metric import prepare

from ..util import SUPPORT, tiny_nlp

TEXTS = ["I lost my card", "where is my refund", "will it rain today", "capital of France",
         "play some jazz", "card refund", "rain rain rain", "money"]  # fmt: skip


def head_nlp(**config):
    config.setdefault("unknown_label", "oos")
    config.setdefault("adapt_steps", 5)
    config.setdefault("adapt_learn_rate", 10.0)
    return tiny_nlp(**config)


def test_each_fold_holds_one_example_of_each_label():
    ids = numpy.array([0, 0, 0, 1, 1, 2, 3, 3, 0])
    marks = numpy.array([0, 0, 0, 0, 0, 0, 0, 1, 1], dtype=bool)
    # label 2 has one row, label 3 one example and its description
    assert example_folds(ids, marks).tolist() == [0, 1, 2, 0, 1, -1, 0, -1, -1]


def test_folds_are_at_most_max_folds():
    ids = numpy.repeat([0, 1], 25)
    folds = example_folds(ids, numpy.zeros(50, dtype=bool))
    assert folds.max() == MAX_FOLDS - 1
    assert numpy.bincount(folds[ids == 0]).tolist() == [3] * 5 + [2] * 5


def test_no_label_with_two_rows_holds_nothing_out():
    assert example_folds(numpy.array([0, 1]), numpy.zeros(2, dtype=bool)).tolist() == [-1, -1]


def test_held_out_scores_come_from_heads_fitted_without_them():
    nlp = head_nlp(in_scope_quantile=0.3)
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    support_set = fs.adaptation.support_set
    rows = torch.tensor(support_set.embeddings)
    ids = torch.tensor(support_set.label_ids)
    folds = example_folds(support_set.label_ids, support_set.is_description)
    expected = numpy.full(len(ids), numpy.nan, dtype="float32")
    for fold in range(folds.max() + 1):
        held = torch.tensor(folds == fold)
        head = fs.fit_classifier(rows[~held], ids[~held], len(fs.labels))
        expected[folds == fold] = head.logits(rows[held]).max(1).values.detach().numpy()
    assert folds.max() == 2  # three examples a label
    numpy.testing.assert_allclose(support_set.held_out_scores, expected, rtol=1e-5, atol=1e-6)
    # held out, an example scores lower than the head fitted on it scores it
    fitted = fs.adaptation.classifier.logits(rows).max(1).values.numpy()
    examples = folds >= 0
    assert (support_set.held_out_scores[examples] < fitted[examples]).mean() > 0.5


@pytest.mark.parametrize("quantile", [0.0, 0.3, 0.7])
def test_the_decision_is_the_held_out_quantile(quantile):
    nlp = head_nlp(in_scope_quantile=quantile)
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    held_out = fs.adaptation.support_set.held_out_scores
    threshold = numpy.quantile(held_out[~numpy.isnan(held_out)].astype("float64"), quantile)
    embeddings = fs.embedder(TEXTS)
    top = fs.adaptation.classifier.logits(prepare(embeddings, "cosine")).max(1).values.numpy()
    decided = [doc.cats["oos"] for doc in nlp.pipe(TEXTS)]
    assert decided == [0.0 if t >= threshold else 1.0 for t in top]
    if quantile == 0.7:
        assert 0.0 in decided and 1.0 in decided


def test_nothing_is_held_out_without_the_decision():
    for config in ({"unknown_label": None}, {"in_scope_quantile": None}):
        nlp = head_nlp(**config)
        fs = nlp.get_pipe("few_shot_textcat")
        fs.adapt(SUPPORT)
        assert fs.adaptation.support_set.has_head
        assert fs.adaptation.support_set.held_out_scores is None


def test_the_prototypes_keep_the_leave_one_out_similarities():
    nlp = head_nlp(in_scope_quantile=0.3)
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT, steps=0)
    assert fs.adaptation.support_set.held_out_scores is None
    scores, labels = fs.adaptation.held_out_in_scope_scores
    assert torch.equal(scores, fs.adaptation.left_out_similarities)
    assert torch.equal(labels, fs.adaptation.left_out_labels)


def test_adapting_again_holds_out_every_example():
    nlp = head_nlp(in_scope_quantile=0.3)
    fs = nlp.get_pipe("few_shot_textcat")
    first, rest = dict(list(SUPPORT.items())[:2]), dict(list(SUPPORT.items())[2:])
    fs.adapt(first)
    fs.adapt(rest)
    once = head_nlp(in_scope_quantile=0.3).get_pipe("few_shot_textcat")
    once.adapt(SUPPORT)
    got = fs.adaptation.support_set.held_out_scores
    assert got.shape == once.adaptation.support_set.held_out_scores.shape
    assert numpy.isfinite(got[~fs.adaptation.support_set.is_description]).all()


def test_removing_a_label_keeps_the_others_held_out_scores():
    nlp = head_nlp(in_scope_quantile=0.3)
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    before = fs.adaptation.support_set
    fs.remove_label("weather")
    after = fs.adaptation.support_set
    kept = before.label_ids != before.labels.index("weather")
    numpy.testing.assert_array_equal(after.held_out_scores, before.held_out_scores[kept])


def test_the_held_out_scores_survive_saving_and_loading(tmp_path):
    nlp = head_nlp(in_scope_quantile=0.5)
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    saved = nlp.get_pipe("few_shot_textcat").adaptation.support_set.held_out_scores
    got = loaded.get_pipe("few_shot_textcat").adaptation.support_set.held_out_scores
    numpy.testing.assert_array_equal(saved, got)
    assert [d.cats for d in loaded.pipe(TEXTS)] == [d.cats for d in nlp.pipe(TEXTS)]


@pytest.mark.parametrize(
    "change,problem",
    [
        (lambda s: s[:3], "3 held-out scores for 12 rows"),
        (lambda s: s.astype("float64"), "float32"),
        (lambda s: numpy.full_like(s, numpy.inf), "infinite"),
    ],
)
def test_bad_held_out_scores_are_refused(change, problem):
    nlp = head_nlp(in_scope_quantile=0.5)
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    msg = srsly.msgpack_loads(fs.adaptation.support_set.to_bytes())
    msg["held_out_scores"] = change(msg["held_out_scores"].copy())
    with pytest.raises(ValueError, match=rf"\[E014\].*{problem}"):
        SupportSet.from_bytes(srsly.msgpack_dumps(msg))


def test_held_out_scores_need_a_head():
    support_set = SupportSet.empty().add(["a", "a"], numpy.eye(2, 3, dtype="float32"))
    with pytest.raises(ValueError, match="need a fitted head"):
        support_set.with_held_out_scores(numpy.zeros(2, dtype="float32"))
