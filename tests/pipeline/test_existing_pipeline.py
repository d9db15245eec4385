"""Added to a pipeline that already does other things (NER trained in the
test, an entity_ruler with patterns, spaCy's own textcat), initialized alone
and adapted: every other component stays bit-for-bit as it was, before and
after saving and loading, and both classifiers keep their labels in doc.cats."""

import pytest
import spacy
from spacy.training import Example

from ..util import SUPPORT, tok2vec_model

TEXTS = ["Alice lost her card in Berlin", "where is my refund, Bob?", "is it raining in Paris"]
TRAIN = [
    ("Alice lives in Berlin", {"entities": [(0, 5, "PERSON"), (15, 21, "GPE")],
                               "cats": {"POSITIVE": 1.0, "NEGATIVE": 0.0}}),
    ("Bob hates Paris", {"entities": [(0, 3, "PERSON"), (10, 15, "GPE")],
                         "cats": {"POSITIVE": 0.0, "NEGATIVE": 1.0}}),
]  # fmt: skip


def trained_pipeline():
    """NER and textcat trained for a few steps, an entity_ruler with a pattern."""
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    nlp.add_pipe("textcat")
    ruler = nlp.add_pipe("entity_ruler", config={"overwrite_ents": True})
    examples = [Example.from_dict(nlp.make_doc(text), gold) for text, gold in TRAIN]
    optimizer = nlp.initialize(lambda: examples)
    ruler.add_patterns([{"label": "CARD", "pattern": "card"}])
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    return nlp


def state(nlp):
    """Every other component's bytes (weights, patterns, labels; the shared
    vocab grows with every text seen), and what the pipeline predicts."""
    saved = {
        name: pipe.to_bytes(exclude=["vocab"])
        for name, pipe in nlp.pipeline
        if name != "few_shot_textcat"
    }
    docs = list(nlp.pipe(TEXTS))
    predicted = [
        ([(e.text, e.label_) for e in doc.ents],
         {k: v for k, v in doc.cats.items() if k in ("POSITIVE", "NEGATIVE")})
        for doc in docs
    ]  # fmt: skip
    return saved, predicted


@pytest.mark.parametrize("initialize", ["none", "empty", "adapt_first"])
def test_adding_the_component_leaves_every_other_one_as_it_was(initialize, tmp_path):
    nlp = trained_pipeline()
    before = state(nlp)
    assert any(ent.label_ == "CARD" for ent in nlp(TEXTS[0]).ents)
    fs = nlp.add_pipe("few_shot_textcat", config={"model": tok2vec_model()})
    if initialize == "none":
        fs.initialize()
    elif initialize == "empty":
        fs.initialize(lambda: [], nlp=nlp)
    assert fs.is_initialized == (initialize != "adapt_first")
    fs.adapt(SUPPORT)  # initializes the component first where it was not
    assert fs.is_initialized
    assert state(nlp) == before
    doc = nlp(TEXTS[1])
    assert set(doc.cats) == {"POSITIVE", "NEGATIVE", *SUPPORT}
    assert max(SUPPORT, key=doc.cats.get) == "refund"
    nlp.to_disk(tmp_path)
    loaded = spacy.load(tmp_path)
    assert state(loaded) == before
    assert loaded(TEXTS[1]).cats == pytest.approx(doc.cats, abs=1e-6)


def test_initialize_checks_the_examples_it_is_given():
    nlp = spacy.blank("en")
    fs = nlp.add_pipe("few_shot_textcat", config={"model": tok2vec_model()})
    with pytest.raises(TypeError, match="E978|Example"):
        fs.initialize(lambda: ["not an example"])
    with pytest.raises(TypeError, match="E930|callable"):
        fs.initialize(["not callable"])
