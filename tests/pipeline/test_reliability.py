import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from thinc.api import Model

from ..util import SUPPORT, synthetic_texts, tiny_nlp

QUERIES = ["someone stole my card", "my refund never arrived", "is it raining", ""]


def cats(nlp, texts=QUERIES):
    return [doc.cats for doc in nlp.pipe(texts)]


def test_adapt_interrupted_half_way_leaves_the_component_as_it_was(monkeypatch):
    nlp = tiny_nlp(batch_size=2)
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    before, counts = cats(nlp), fs.support_counts
    encoder = fs.model.get_ref("encoder")
    calls = []
    original = Model.predict

    def failing_predict(model, docs):
        if model is encoder:
            calls.append(len(docs))
            if len(calls) == 2:
                raise RuntimeError("out of memory")
        return original(model, docs)

    monkeypatch.setattr(Model, "predict", failing_predict)
    with pytest.raises(RuntimeError, match="out of memory"):
        fs.adapt({"greeting": ["hi", "hello", "hey there", "good morning"]})
    monkeypatch.undo()
    assert len(calls) == 2
    assert fs.labels == tuple(SUPPORT) and fs.support_counts == counts
    assert cats(nlp) == before


def test_unknown_learner_names_the_registered_ones():
    with pytest.raises(Exception) as error:
        tiny_nlp(learner={"@meta_learners": "spacy_metalearn.NoSuchLearner.v1"})
    message = str(error.value)
    assert "NoSuchLearner" in message
    assert "spacy_metalearn.ProtoNet.v1" in message and "spacy_metalearn.MAML.v1" in message


def test_duplicate_texts_across_labels_count_for_each():
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt({"a": ["same text", "only a"], "b": ["same text"]})
    assert fs.support_counts == {"a": 2, "b": 1}


def test_one_example_per_label_is_enough():
    nlp = tiny_nlp()
    nlp.get_pipe("few_shot_textcat").adapt({label: texts[:1] for label, texts in SUPPORT.items()})
    assert set(nlp("my card").cats) == set(SUPPORT)


def test_long_documents_are_scored():
    nlp = tiny_nlp()
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    doc = nlp(" ".join(["my card was stolen"] * 3000))  # 12,000 tokens
    assert len(doc) == 12000
    assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)


def test_long_documents_with_the_transformer_use_strided_spans():
    nlp = spacy.blank("en")
    fs = nlp.add_pipe("few_shot_textcat")
    nlp.initialize()
    fs.adapt({"card": ["my card was stolen"], "refund": ["where is my refund"]})
    doc = nlp(" ".join(["someone stole my card ."] * 2000))  # 10,000 tokens, far past 512
    assert len(doc) == 10000
    assert max(doc.cats, key=doc.cats.get) == "card"


@pytest.mark.parametrize("batch_size,n_process", [(1, 1), (2, 1), (64, 1), (2, 2)])
def test_pipe_batches_and_processes_give_the_same_cats(batch_size, n_process):
    nlp = tiny_nlp()
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    texts = [t for ts in synthetic_texts(3, 4, seed=5).values() for t in ts] + QUERIES
    one_by_one = [nlp(text).cats for text in texts]
    piped = [doc.cats for doc in nlp.pipe(texts, batch_size=batch_size, n_process=n_process)]
    for a, b in zip(one_by_one, piped):
        assert a.keys() == b.keys()
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-6)


def test_same_seed_same_cats():
    first, second = tiny_nlp(seed=3), tiny_nlp(seed=3)
    for nlp in (first, second):
        nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    assert cats(first) == cats(second)


TEXTS = [f"text number {i} about {word}" for i, word in enumerate("abcdefghij")]


@pytest.fixture(scope="module")
def nlp_pair():
    """Two identical pipelines with the instant path (prototypes: class means,
    whatever order the examples came in), reused across hypothesis examples
    (each example replaces their labels)."""
    return tiny_nlp(seed=0, adapt_steps=0), tiny_nlp(seed=0, adapt_steps=0)


@settings(max_examples=15, deadline=None)
@given(
    assignment=st.lists(st.sampled_from(["x", "y", "z"]), min_size=4, max_size=10),
    split=st.integers(min_value=1, max_value=9),
    order=st.randoms(use_true_random=False),
)
def test_incremental_adapt_is_order_independent(nlp_pair, assignment, split, order):
    """Adapting in two parts, in any order, equals adapting once with everything."""
    items = list(zip(TEXTS, assignment))
    shuffled = items[:]
    order.shuffle(shuffled)
    split = min(split, len(items) - 1)

    def grouped(pairs):
        data = {}
        for text, label in pairs:
            data.setdefault(label, []).append(text)
        return data

    whole, parts = nlp_pair
    whole.get_pipe("few_shot_textcat").adapt(grouped(items), replace=True)
    fs = parts.get_pipe("few_shot_textcat")
    fs.adapt(grouped(shuffled[:split]), replace=True)
    fs.adapt(grouped(shuffled[split:]))
    assert fs.support_counts == whole.get_pipe("few_shot_textcat").support_counts
    expected = {label: i for i, label in enumerate(whole.get_pipe("few_shot_textcat").labels)}
    for a, b in zip(cats(whole), cats(parts)):
        assert set(a) == set(b) == set(expected)
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-6)


@pytest.mark.parametrize("name", ["no-such-org/no-such-model", "/no/such/folder"])
def test_unknown_encoder_name_says_what_works(name):
    from spacy_metalearn.evaluation import default_model_with

    nlp = spacy.blank("en")
    nlp.add_pipe("few_shot_textcat", config={"model": default_model_with(name)})
    with pytest.raises(ValueError, match=r"(?s)\[E029\].*all-MiniLM-L6-v2.*local folder"):
        nlp.initialize()


def test_adapt_between_predict_and_annotate_keeps_labels_with_their_scores():
    """Predict reads one snapshot: an adapt() that swaps in other labels after
    predict() (another thread, say) cannot pair its scores with the new labels."""
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    docs = [nlp.make_doc(text) for text in QUERIES[:3]]
    scores = fs.predict(docs)
    expected = [dict(zip(fs.labels, map(float, row))) for row in scores.scores]
    fs.adapt({"weather": SUPPORT["weather"], "card_lost": SUPPORT["card_lost"]}, replace=True)
    fs.set_annotations(docs, scores)
    for doc, cats_of_doc in zip(docs, expected):
        assert doc.cats == pytest.approx(cats_of_doc)


def test_adapt_while_other_threads_predict():
    """Threads predicting while another adapts to reordered labels get, for
    every doc, the scores of one adaptation with its own labels."""
    import threading

    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    orders = [dict(SUPPORT), dict(reversed(list(SUPPORT.items())))]
    fs.adapt(orders[0])
    texts = [text for texts in SUPPORT.values() for text in texts]
    expected = {text: max(nlp(text).cats, key=nlp(text).cats.get) for text in texts}
    wrong, errors, stop = [], [], threading.Event()

    def predict():
        try:
            while not stop.is_set():
                for text, doc in zip(texts, nlp.pipe(texts, batch_size=4)):
                    top = max(doc.cats, key=doc.cats.get)
                    if top != expected[text]:
                        wrong.append((text, top))
        except Exception as e:  # reported below
            errors.append(e)

    workers = [threading.Thread(target=predict) for _ in range(2)]
    for worker in workers:
        worker.start()
    for i in range(30):
        fs.adapt(orders[i % 2], replace=True)
    stop.set()
    for worker in workers:
        worker.join()
    assert not errors and not wrong


@pytest.mark.parametrize("label", ["\u200b", "\u200b\u200d", "\u202e", " \ufeff "])
def test_labels_without_a_visible_character_are_refused(label):
    fs = tiny_nlp().get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match=r"\[E005\]"):
        fs.adapt({label: ["I lost my card"], "refund": ["where is my refund"]})
    with pytest.raises(ValueError, match=r"\[E005\]"):
        tiny_nlp(unknown_label=label)
    assert fs.labels == ()


def test_labels_are_one_whatever_their_unicode_normalization():
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt({composed: ["a coffee please"], decomposed: ["one espresso"], "refund": ["my money"]})
    assert fs.labels == (composed, "refund")
    assert fs.support_counts == {composed: 2, "refund": 1}
    fs.adapt({decomposed: ["a latte"]})
    assert fs.support_counts[composed] == 3
    assert set(nlp("coffee").cats) == {composed, "refund"}
    fs.remove_label(decomposed)
    assert fs.labels == ("refund",)
    with pytest.raises(ValueError, match=r"\[E010\]"):
        tiny_nlp(unknown_label=composed).get_pipe("few_shot_textcat").adapt({decomposed: ["x"]})


def test_cats_already_on_a_doc_the_component_owns_are_overwritten_others_kept():
    """As spaCy's textcat: the component writes every label it has (a gold
    score for one of them is replaced by the prediction) and leaves other
    keys, which other components may own, as they are."""
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    predicted = nlp("will it rain today").cats
    doc = nlp.make_doc("will it rain today")
    doc.cats = {"weather": 0.0, "card_lost": 1.0, "gold_only": 1.0}
    doc = fs(doc)
    assert {label: doc.cats[label] for label in fs.labels} == predicted
    assert doc.cats["gold_only"] == 1.0
    assert max(fs.labels, key=doc.cats.get) == max(predicted, key=predicted.get)
