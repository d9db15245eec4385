import pytest
import spacy

from ..util import SUPPORT, tiny_nlp

QUERIES = ["someone stole my card", "my refund never arrived", "is it raining"]
LEARNERS = {
    "protonet": {"@meta_learners": "spacy_metalearn.ProtoNet.v1"},
    "matching": {"@meta_learners": "spacy_metalearn.MatchingNetworks.v1"},
    "maml": {"@meta_learners": "spacy_metalearn.MAML.v1", "inner_steps": 3},
    "fomaml": {"@meta_learners": "spacy_metalearn.MAML.v1", "inner_steps": 3, "first_order": True},
    "proto_maml": {"@meta_learners": "spacy_metalearn.ProtoMAML.v1", "inner_steps": 3},
    "reptile": {"@meta_learners": "spacy_metalearn.Reptile.v1", "inner_steps": 3},
}


def cats(nlp):
    return [doc.cats for doc in nlp.pipe(QUERIES)]


@pytest.mark.parametrize("learner", LEARNERS)
def test_adapt_with_steps_learns_saves_and_reloads(learner, tmp_path):
    nlp = tiny_nlp(learner=LEARNERS[learner])
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT, steps=30)
    for label, texts in SUPPORT.items():
        for doc in nlp.pipe(texts):
            assert max(doc.cats, key=doc.cats.get) == label
    nlp.to_disk(tmp_path)
    reloaded = spacy.load(tmp_path)
    for a, b in zip(cats(nlp), cats(reloaded)):
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-6)


@pytest.mark.parametrize("learner,default_steps", [("protonet", 0), ("matching", 0), ("maml", 3)])
def test_default_steps_are_the_learners_own(learner, default_steps):
    nlp = tiny_nlp(learner=LEARNERS[learner])
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    explicit = tiny_nlp(learner=LEARNERS[learner])
    explicit.get_pipe("few_shot_textcat").adapt(SUPPORT, steps=default_steps)
    for a, b in zip(cats(nlp), cats(explicit)):
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-6)


def test_steps_change_predictions_and_steps_zero_goes_back_to_prototypes():
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    prototype_cats = cats(nlp)
    fs.adapt(SUPPORT, replace=True, steps=20)
    assert cats(nlp) != prototype_cats
    fs.adapt(SUPPORT, replace=True, steps=0)
    for a, b in zip(prototype_cats, cats(nlp)):
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-6)


def test_steps_need_every_label():
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    with pytest.raises(ValueError, match=r"\[E027\].*\['refund', 'weather'\]"):
        fs.adapt({"card_lost": ["card gone"]}, steps=5)
    assert fs.support_counts == {label: 3 for label in SUPPORT}
    fs.adapt({"card_lost": ["card gone"]}, steps=5, replace=True)
    assert fs.labels == ("card_lost",)


def test_remove_label_keeps_the_fitted_head_of_the_others():
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT, steps=10)
    before = nlp("I lost my card").cats
    fs.remove_label("weather")
    after = nlp("I lost my card").cats
    assert set(after) == {"card_lost", "refund"}
    ratio_before = before["card_lost"] / before["refund"]
    assert after["card_lost"] / after["refund"] == pytest.approx(ratio_before, rel=1e-4)


@pytest.mark.parametrize("steps", [-1, 1.5, "3"])
def test_bad_steps_raise(steps):
    fs = tiny_nlp().get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match=r"\[E019\] steps"):
        fs.adapt(SUPPORT, steps=steps)
