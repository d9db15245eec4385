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
def test_null_steps_are_the_learners_own(learner, default_steps):
    nlp = tiny_nlp(learner=LEARNERS[learner], adapt_steps=None, adapt_learn_rate=None)
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    explicit = tiny_nlp(learner=LEARNERS[learner], adapt_steps=None, adapt_learn_rate=None)
    explicit.get_pipe("few_shot_textcat").adapt(SUPPORT, steps=default_steps)
    for a, b in zip(cats(nlp), cats(explicit)):
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-6)


def test_the_factory_default_is_100_head_steps_of_30():
    """add_pipe's default adaptation is the measured best for exclusive
    classes; a multi-label component takes the prototypes (no E032)."""
    nlp = tiny_nlp()
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    explicit = tiny_nlp(adapt_steps=None, adapt_learn_rate=None)
    explicit.get_pipe("few_shot_textcat").set_adaptation(None, 30.0)
    explicit.get_pipe("few_shot_textcat").adapt(SUPPORT, steps=100)
    instant = tiny_nlp()
    instant.get_pipe("few_shot_textcat").adapt(SUPPORT, steps=0)
    assert nlp.get_pipe("few_shot_textcat").adaptation.support_set.head_weight is not None
    for a, b, c in zip(cats(nlp), cats(explicit), cats(instant)):
        assert a == pytest.approx(b, abs=1e-6)
        assert a != pytest.approx(c, abs=1e-3)
    multi_label = tiny_nlp(exclusive_classes=False)
    multi_label.get_pipe("few_shot_textcat").adapt(SUPPORT)
    assert multi_label.get_pipe("few_shot_textcat").adaptation.support_set.head_weight is None
    with pytest.raises(ValueError, match=r"\[E032\]"):
        multi_label.get_pipe("few_shot_textcat").adapt(SUPPORT, steps=5)


def test_steps_change_predictions_and_steps_zero_goes_back_to_prototypes():
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT, steps=0)
    prototype_cats = cats(nlp)
    fs.adapt(SUPPORT, replace=True, steps=20)
    assert cats(nlp) != prototype_cats
    fs.adapt(SUPPORT, replace=True, steps=0)
    for a, b in zip(prototype_cats, cats(nlp)):
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-6)


@pytest.mark.parametrize("learner", ["protonet", "maml", "proto_maml"])
def test_adapting_in_halves_with_steps_equals_adapting_once(learner):
    """The fitted head is fitted on every example kept so far, from the start
    those examples give, not on the last call's alone."""
    first = {label: texts[:2] for label, texts in SUPPORT.items()}
    second = {label: texts[2:] for label, texts in SUPPORT.items()}
    halves = tiny_nlp(learner=LEARNERS[learner])
    fs = halves.get_pipe("few_shot_textcat")
    fs.adapt(first, steps=10)
    fs.adapt(second, steps=10)
    once = tiny_nlp(learner=LEARNERS[learner])
    once.get_pipe("few_shot_textcat").adapt(SUPPORT, steps=10)
    assert fs.support_counts == {label: 3 for label in SUPPORT}
    for a, b in zip(cats(halves), cats(once)):
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-5)


def test_a_new_label_with_steps_keeps_the_earlier_ones():
    nlp = tiny_nlp(adapt_learn_rate=None)  # the meta-learned step size
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt({"card_lost": SUPPORT["card_lost"], "refund": SUPPORT["refund"]}, steps=10)
    fs.adapt({"weather": SUPPORT["weather"]}, steps=10)
    assert fs.labels == tuple(SUPPORT)
    for label, texts in SUPPORT.items():
        for doc in nlp.pipe(texts):
            assert max(doc.cats, key=doc.cats.get) == label


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


def test_adapt_steps_setting_is_the_default_and_is_saved(tmp_path):
    nlp = tiny_nlp(adapt_steps=20, adapt_learn_rate=5.0)
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    explicit = tiny_nlp()
    explicit_fs = explicit.get_pipe("few_shot_textcat")
    explicit_fs.set_adaptation(None, 5.0)
    explicit_fs.adapt(SUPPORT, steps=20)
    prototypes_only = tiny_nlp()
    prototypes_only.get_pipe("few_shot_textcat").adapt(SUPPORT)
    for a, b, c in zip(cats(nlp), cats(explicit), cats(prototypes_only)):
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-6)
        assert max(abs(a[label] - c[label]) for label in a) > 1e-3
    nlp.to_disk(tmp_path)
    reloaded = spacy.load(tmp_path).get_pipe("few_shot_textcat")
    assert (reloaded.cfg["adapt_steps"], reloaded.cfg["adapt_learn_rate"]) == (20, 5.0)


def test_learn_rate_changes_the_fitted_head():
    small, large = tiny_nlp(), tiny_nlp()
    small.get_pipe("few_shot_textcat").set_adaptation(10, 0.1)
    large.get_pipe("few_shot_textcat").set_adaptation(10, 30.0)
    small.get_pipe("few_shot_textcat").adapt(SUPPORT)
    large.get_pipe("few_shot_textcat").adapt(SUPPORT)
    a, b = cats(small), cats(large)
    assert max(abs(a[i][label] - b[i][label]) for i in range(len(a)) for label in a[i]) > 1e-3


@pytest.mark.parametrize(
    "steps,learn_rate", [(-1, None), (1.5, None), (True, None), (5, 0.0), (5, -1.0), (5, "big")]
)
def test_bad_adaptation_settings_raise(steps, learn_rate):
    fs = tiny_nlp().get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match=r"\[E019\]"):
        fs.set_adaptation(steps, learn_rate)
    assert (fs.cfg["adapt_steps"], fs.cfg["adapt_learn_rate"]) == (100, 30.0)


def test_classify_embeddings_is_what_predict_gives():
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT, steps=5)
    docs = [nlp.make_doc(text) for text in QUERIES]
    embeddings = fs.model.get_ref("encoder").predict(docs)
    predicted = fs.predict(docs)
    assert predicted.labels == fs.labels
    assert fs.classify_embeddings(embeddings).scores == pytest.approx(predicted.scores, abs=1e-6)


@pytest.mark.parametrize("steps,learn_rate", [(-1, None), (5, 0.0), (5, -1.0)])
def test_bad_adaptation_settings_in_the_config_raise(steps, learn_rate):
    with pytest.raises(ValueError, match=r"\[E019\]"):
        tiny_nlp(adapt_steps=steps, adapt_learn_rate=learn_rate)
