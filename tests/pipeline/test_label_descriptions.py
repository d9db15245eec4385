"""Label names and descriptions as priors: adapt() encodes a description of
each label (its readable name by default) and counts it as one more example,
so a label needs no examples at all (zero-shot)."""

import numpy
import pytest
import spacy

from spacy_metalearn.adaptation.support import readable_label

from ..util import SUPPORT, default_pipeline, tiny_nlp


def unit(x):
    return x / numpy.linalg.norm(x, axis=-1, keepdims=True)


@pytest.mark.parametrize(
    "label,name",
    [
        ("card_arrival", "card arrival"),
        ("AddToPlaylist", "add to playlist"),
        ("CALL_CENTER", "call center"),
        ("top-up by card", "top up by card"),
        ("getExchangeRate", "get exchange rate"),
        ("___", ""),
    ],
)
def test_readable_label(label, name):
    assert readable_label(label) == name


def test_the_name_counts_as_one_more_example():
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    for i, (label, texts) in enumerate(SUPPORT.items()):
        rows = unit(fs.embedder(texts + [readable_label(label)]).numpy().astype("float64"))
        numpy.testing.assert_allclose(fs.adaptation.prototypes[i], rows.mean(0), atol=1e-6)
    assert fs.support_counts == {label: 3 for label in SUPPORT}  # names are not examples


def test_without_label_names_only_examples_count():
    nlp = tiny_nlp(use_label_names=False)
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    assert not fs.adaptation.support_set.is_description.any()
    for i, texts in enumerate(SUPPORT.values()):
        rows = unit(fs.embedder(texts).numpy().astype("float64"))
        numpy.testing.assert_allclose(fs.adaptation.prototypes[i], rows.mean(0), atol=1e-6)


def test_a_given_description_replaces_the_name_and_the_last_one_wins():
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT, descriptions={"refund": "money back"})
    fs.adapt({"refund": ["refund please"]}, descriptions={"refund": "returned payment"})
    support_set = fs.adaptation.support_set
    refund = support_set.labels.index("refund")
    rows = support_set.is_description & (support_set.label_ids == refund)
    assert rows.sum() == 1
    expected = unit(fs.embedder(["returned payment"]).numpy())[0]
    numpy.testing.assert_allclose(support_set.embeddings[rows][0], expected, atol=1e-6)
    assert fs.support_counts["refund"] == 4
    # the other labels kept the names they got the first time
    assert len(support_set.described) == 3


def test_adapting_in_halves_equals_adapting_once_with_descriptions():
    first = {label: texts[:1] for label, texts in SUPPORT.items()}
    second = {label: texts[1:] for label, texts in SUPPORT.items()}
    descriptions = {"weather": "forecast"}
    once = tiny_nlp()
    once.get_pipe("few_shot_textcat").adapt(SUPPORT, steps=5, descriptions=descriptions)
    halves = tiny_nlp()
    fs = halves.get_pipe("few_shot_textcat")
    fs.adapt(first, steps=5, descriptions=descriptions)
    fs.adapt(second, steps=5)
    for a, b in zip(once.pipe(["card gone", "sunny"]), halves.pipe(["card gone", "sunny"])):
        assert a.cats == pytest.approx(b.cats, abs=1e-5)


def test_remove_label_forgets_its_description():
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    fs.remove_label("refund")
    assert fs.adaptation.support_set.described == ("card_lost", "weather")
    assert int(fs.adaptation.support_set.is_description.sum()) == 2


@pytest.fixture(scope="module")
def default_encoder_nlp():
    return default_pipeline()


def test_zero_shot_from_names_and_descriptions(default_encoder_nlp):
    """No examples at all: the frozen default encoder classifies by the
    labels' names (empty lists) and by descriptions given for new labels."""
    fs = default_encoder_nlp.get_pipe("few_shot_textcat")
    result = fs.adapt(
        {"card_lost": [], "refund": []},
        descriptions={"weather_forecast": "will it rain or be sunny"},
        replace=True,
    )
    assert result["added"] == {"card_lost": 0, "refund": 0, "weather_forecast": 0}
    assert fs.support_counts == {"card_lost": 0, "refund": 0, "weather_forecast": 0}
    queries = {
        "I can't find my credit card anywhere": "card_lost",
        "I want my money returned for this purchase": "refund",
        "is it going to snow tomorrow": "weather_forecast",
    }
    for doc, label in zip(default_encoder_nlp.pipe(list(queries)), queries.values()):
        assert max(doc.cats, key=doc.cats.get) == label


def test_names_help_one_shot_with_the_default_encoder(default_encoder_nlp):
    """One example that is ambiguous alone; the names decide."""
    fs = default_encoder_nlp.get_pipe("few_shot_textcat")
    support = {"card_lost": ["it is gone"], "refund": ["it is not here yet"]}
    fs.adapt(support, replace=True)
    with_names = default_encoder_nlp("I lost my card").cats
    fs.cfg["use_label_names"] = False
    try:
        fs.adapt(support, replace=True)
        without = default_encoder_nlp("I lost my card").cats
    finally:
        fs.cfg["use_label_names"] = True
    assert with_names["card_lost"] > without["card_lost"]
    assert with_names["card_lost"] > 0.5


@pytest.mark.parametrize(
    "data,descriptions,code",
    [
        ({"card_lost": ["x"]}, {"card_lost": ""}, "E036"),
        ({"card_lost": ["x"]}, {"card_lost": " \u200b"}, "E036"),
        ({"card_lost": ["x"]}, {"card_lost": 42}, "E036"),
        ({"card_lost": ["x"]}, ["card lost"], "E037"),
        ({"card_lost": ["x"]}, {" bad": "text"}, "E005"),
        ({"card_lost": ["x"]}, {"oos": "anything else"}, "E010"),
        ({}, None, "E001"),
        ({"___": []}, None, "E002"),
    ],
)
def test_bad_descriptions_raise_and_change_nothing(data, descriptions, code):
    nlp = tiny_nlp(unknown_label="oos")
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    before = fs.adaptation
    with pytest.raises(ValueError, match=rf"\[{code}\]"):
        fs.adapt(data, descriptions=descriptions)
    assert fs.adaptation is before


def test_without_label_names_an_empty_label_needs_a_description():
    fs = tiny_nlp(use_label_names=False).get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match=r"\[E002\].*'refund'"):
        fs.adapt({"card_lost": ["x"], "refund": []})
    fs.adapt({"card_lost": ["x"], "refund": []}, descriptions={"refund": "money back"})
    assert fs.adaptation.support_set.described == ("refund",)


def test_descriptions_survive_saving_and_loading(tmp_path):
    nlp = tiny_nlp()
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT, descriptions={"weather": "forecast"})
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    saved = nlp.get_pipe("few_shot_textcat").adaptation.support_set
    got = loaded.get_pipe("few_shot_textcat").adaptation.support_set
    numpy.testing.assert_array_equal(saved.embeddings, got.embeddings)
    numpy.testing.assert_array_equal(saved.is_description, got.is_description)
    texts = ["card gone", "sunny"]
    assert [d.cats for d in loaded.pipe(texts)] == [d.cats for d in nlp.pipe(texts)]


@pytest.mark.parametrize("value", [1, "true", None])
def test_bad_use_label_names_is_refused(value):
    with pytest.raises(ValueError, match="use_label_names"):
        tiny_nlp(use_label_names=value)
