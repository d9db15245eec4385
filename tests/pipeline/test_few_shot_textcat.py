import numpy
import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

from spacy_metalearn import FewShotTextCategorizer
from spacy_metalearn.training.scoring import EPISODE_ACC

from ..util import SUPPORT, tiny_nlp, tok2vec_model

QUERIES = ["someone stole my card", "my refund never arrived", "is it raining"]


def top_label(doc):
    return max(doc.cats, key=doc.cats.get)


def test_readme_snippet_with_default_encoder(tmp_path):
    """The default (all-MiniLM-L6-v2, offline) adapts with no training at all."""
    nlp = spacy.blank("en")
    fs = nlp.add_pipe("few_shot_textcat")
    assert isinstance(fs, FewShotTextCategorizer)
    nlp.initialize()
    fs.adapt(
        {
            "card_lost": ["I lost my card", "my card was stolen"],
            "refund": ["where is my refund?", "refund still not here"],
        }
    )
    cats = nlp("someone stole my card").cats
    assert set(cats) == {"card_lost", "refund"}
    assert cats["card_lost"] > 0.9
    nlp.to_disk(tmp_path)
    reloaded = spacy.load(tmp_path)("someone stole my card").cats
    assert reloaded.keys() == cats.keys()
    for label in cats:
        assert reloaded[label] == pytest.approx(cats[label], abs=1e-6)


def test_entry_points_need_no_import():
    from spacy.util import registry

    assert "few_shot_textcat" in spacy.blank("en").factory_names
    for name in (
        "spacy_metalearn.DocEncoder.v1",
        "spacy_metalearn.TransformerEncoder.v1",
        "spacy_metalearn.SentenceEncoder.v1",
        "spacy_metalearn.PrototypeHead.v2",
        "spacy_metalearn.FewShotClassifier.v1",
    ):
        assert registry.architectures.get(name)
    assert registry.batchers.get("spacy_metalearn.episode_batcher.v1")
    assert registry.scorers.get("spacy_metalearn.few_shot_scorer.v1")
    assert registry.meta_learners.get("spacy_metalearn.ProtoNet.v1")


@pytest.mark.parametrize("metric", ["cosine", "squared_euclidean"])
def test_exclusive_scores_sum_to_one(metric):
    nlp = tiny_nlp(model=tok2vec_model(metric))
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    for doc in nlp.pipe(QUERIES):
        assert set(doc.cats) == set(SUPPORT)
        assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)


def test_a_single_support_text_is_classified_as_its_label():
    nlp = tiny_nlp()
    nlp.get_pipe("few_shot_textcat").adapt({label: texts[:1] for label, texts in SUPPORT.items()})
    for label, texts in SUPPORT.items():
        assert top_label(nlp(texts[0])) == label


def test_multi_label_scores_are_independent():
    nlp = tiny_nlp(exclusive_classes=False)
    fs = nlp.get_pipe("few_shot_textcat")
    assert fs.cfg["threshold"] == 0.5
    fs.adapt(SUPPORT)
    sums = [sum(doc.cats.values()) for doc in nlp.pipe(QUERIES)]
    assert not numpy.allclose(sums, 1.0)
    for doc in nlp.pipe(QUERIES):
        assert all(0.0 <= score <= 1.0 for score in doc.cats.values())


def test_multi_label_adapt_from_examples():
    nlp = tiny_nlp(exclusive_classes=False)
    fs = nlp.get_pipe("few_shot_textcat")
    doc = nlp.make_doc("lost card and no refund")
    eg = Example.from_dict(doc, {"cats": {"card_lost": 1.0, "refund": 1.0}})
    result = fs.adapt([eg])
    assert result["added"] == {"card_lost": 1, "refund": 1}


@pytest.mark.parametrize("exclusive", [True, False])
def test_unknown_label_when_no_label_reaches_threshold(exclusive):
    nlp = tiny_nlp(exclusive_classes=exclusive, threshold=1.0, unknown_label="oos")
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    cats = nlp("completely unrelated words").cats
    assert cats["oos"] == 1.0
    assert set(cats) == set(SUPPORT) | {"oos"}


def test_unknown_label_stays_zero_when_a_label_is_chosen():
    nlp = tiny_nlp(threshold=0.0, unknown_label="oos")
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    assert nlp("I lost my card").cats["oos"] == 0.0


def test_empty_doc_scores_zero():
    nlp = tiny_nlp(unknown_label="oos")
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    docs = list(nlp.pipe(["", "I lost my card"]))
    assert docs[0].cats == {"card_lost": 0.0, "refund": 0.0, "weather": 0.0, "oos": 1.0}
    assert top_label(docs[1]) == "card_lost"


def test_predict_before_adapt_warns_and_leaves_cats_empty():
    nlp = tiny_nlp()
    with pytest.warns(UserWarning, match=r"\[W001\].*adapt\(\)"):
        doc = nlp("hello there")
    assert doc.cats == {}


def test_adapt_in_parts_equals_adapt_at_once():
    whole, parts = tiny_nlp(), tiny_nlp()
    whole.get_pipe("few_shot_textcat").adapt(SUPPORT)
    fs = parts.get_pipe("few_shot_textcat")
    fs.adapt({label: texts[:1] for label, texts in SUPPORT.items()})
    result = fs.adapt({label: texts[1:] for label, texts in reversed(SUPPORT.items())})
    assert result["updated"] == {label: 2 for label in reversed(SUPPORT)}
    assert result["added"] == {}
    assert fs.support_counts == {label: 3 for label in SUPPORT}
    for a, b in zip(whole.pipe(QUERIES), parts.pipe(QUERIES)):
        assert a.cats.keys() == b.cats.keys()
        for label in a.cats:
            assert a.cats[label] == pytest.approx(b.cats[label], abs=1e-6)


def test_adapt_replace_starts_over_and_reports_changes():
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    result = fs.adapt({"greeting": ["hello", "hi there"]}, replace=True)
    assert result == {
        "added": {"greeting": 2},
        "updated": {},
        "removed": ["card_lost", "refund", "weather"],
    }
    assert fs.labels == ("greeting",)


def test_remove_label():
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    fs.remove_label("refund")
    assert fs.labels == ("card_lost", "weather")
    assert set(nlp("my refund").cats) == {"card_lost", "weather"}
    with pytest.raises(ValueError, match=r"\[E009\].*'refund'"):
        fs.remove_label("refund")


def test_add_label_points_to_adapt():
    fs = tiny_nlp().get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match=r"\[E021\].*adapt"):
        fs.add_label("refund")


def test_adapt_accepts_docs_and_examples():
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    from_docs = {label: [nlp.make_doc(t) for t in texts] for label, texts in SUPPORT.items()}
    examples = [
        Example.from_dict(nlp.make_doc(t), {"cats": {label: 1.0}})
        for label, texts in SUPPORT.items()
        for t in texts
    ]
    fs.adapt(from_docs)
    by_docs = [doc.cats for doc in nlp.pipe(QUERIES)]
    fs.adapt(examples, replace=True)
    by_examples = [doc.cats for doc in nlp.pipe(QUERIES)]
    for a, b in zip(by_docs, by_examples):
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-6)


def test_adapt_encodes_each_text_once_in_batches(monkeypatch):
    from thinc.api import Model

    nlp = tiny_nlp(batch_size=4)
    fs = nlp.get_pipe("few_shot_textcat")
    encoder = fs.model.get_ref("encoder")
    batches = []
    original = Model.predict

    def counting_predict(model, docs):
        if model is encoder:
            batches.append([doc.text for doc in docs])
        return original(model, docs)

    monkeypatch.setattr(Model, "predict", counting_predict)
    fs.adapt(SUPPORT)
    # nine examples and three label names ("card lost", ...), in one pass
    assert [len(batch) for batch in batches] == [4, 4, 4]
    encoded = [text for batch in batches for text in batch]
    names = ["card lost", "refund", "weather"]
    assert sorted(encoded) == sorted([t for texts in SUPPORT.values() for t in texts] + names)


@pytest.mark.parametrize(
    "data,code",
    [
        ({}, "E001"),
        ([], "E001"),
        ({"___": []}, "E002"),  # no examples, and no name to describe it
        ({"refund": "where is my refund"}, "E003"),
        ({"refund": ["ok", 42]}, "E004"),
        ({"refund": ["ok", None]}, "E004"),
        ({"": ["ok"]}, "E005"),
        ({7: ["ok"]}, "E005"),
        ({" refund": ["ok"]}, "E005"),
        ({"refund": ["ok", "   "]}, "E006"),
        ({"refund": ["ok", ""]}, "E006"),
        ("just a string", "E008"),
        (["not an example"], "E008"),
    ],
)
def test_adapt_bad_input_raises_and_changes_nothing(data, code):
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(SUPPORT)
    before = nlp("I lost my card").cats
    with pytest.raises(ValueError, match=rf"\(spacy-metalearn\) \[{code}\]"):
        fs.adapt(data)
    assert fs.labels == tuple(SUPPORT)
    assert nlp("I lost my card").cats == before


def test_adapt_reads_the_docs_of_a_docbin_as_it_reads_examples(tmp_path):
    """A DocBin spaCy's textcat trains on: its docs' cats give the labels,
    with the same checks as Examples (E007, E011)."""
    from spacy.tokens import DocBin

    from ..util import support_docs

    nlp = tiny_nlp()
    docs = support_docs(nlp)
    DocBin(docs=docs).to_disk(tmp_path / "train.spacy")
    fs = nlp.get_pipe("few_shot_textcat")
    fs.adapt(DocBin().from_disk(tmp_path / "train.spacy").get_docs(nlp.vocab))
    from_examples = tiny_nlp()
    from_examples.get_pipe("few_shot_textcat").adapt(
        [Example.from_dict(nlp.make_doc(doc.text), {"cats": doc.cats}) for doc in docs]
    )
    assert fs.support_counts == {label: 3 for label in SUPPORT}
    assert nlp("I lost my card").cats == pytest.approx(from_examples("I lost my card").cats)
    unlabelled = nlp.make_doc("hello")
    unlabelled.cats = {"refund": 0.0}
    with pytest.raises(ValueError, match=r"\[E007\]"):
        fs.adapt([unlabelled])
    multi = tiny_nlp(exclusive_classes=False).get_pipe("few_shot_textcat")
    two = nlp.make_doc("card and refund")
    two.cats = {"card_lost": 1.0, "refund": 1.0}
    with pytest.raises(ValueError, match=r"\[E011\]"):
        fs.adapt([two])
    multi.adapt(docs + [two])
    assert multi.support_counts == {"card_lost": 4, "refund": 4, "weather": 3}


def test_adapt_rejects_empty_doc_and_examples_without_label():
    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match=r"\[E006\].*'refund' \(position 0\)"):
        fs.adapt({"refund": [Doc(nlp.vocab, words=[])]})
    eg = Example.from_dict(nlp.make_doc("hello"), {"cats": {"refund": 0.0}})
    with pytest.raises(ValueError, match=r"\[E007\]"):
        fs.adapt([eg])
    two = Example.from_dict(nlp.make_doc("hello"), {"cats": {"a": 1.0, "b": 1.0}})
    with pytest.raises(ValueError, match=r"\[E011\].*exclusive_classes = false"):
        fs.adapt([two])
    assert fs.labels == ()


def test_adapt_rejects_the_unknown_label():
    nlp = tiny_nlp(unknown_label="oos")
    with pytest.raises(ValueError, match=r"\[E010\]"):
        nlp.get_pipe("few_shot_textcat").adapt({"oos": ["whatever"]})


@pytest.mark.parametrize(
    "config,code",
    [({"threshold": 1.5}, "E019"), ({"batch_size": 0}, "E019"), ({"unknown_label": ""}, "E005")],
)
def test_bad_settings_raise(config, code):
    with pytest.raises(ValueError, match=rf"\[{code}\]"):
        tiny_nlp(**config)


def test_unknown_metric_names_the_choices():
    model = tok2vec_model("manhattan")
    with pytest.raises(ValueError, match=r"\[E022\].*cosine, squared_euclidean"):
        tiny_nlp(model=model)


def test_scorer_gives_textcat_keys():
    nlp = tiny_nlp()
    one_shot = {label: texts[:1] for label, texts in SUPPORT.items()}
    nlp.get_pipe("few_shot_textcat").adapt(one_shot)
    examples = [
        Example.from_dict(nlp.make_doc(t), {"cats": {lab: float(lab == label) for lab in SUPPORT}})
        for label, texts in one_shot.items()
        for t in texts
    ]
    scores = nlp.evaluate(examples)
    for key in ("cats_score", "cats_macro_f", "cats_micro_f", "cats_macro_auc"):
        assert key in scores
    assert scores["cats_score"] == pytest.approx(1.0)


def test_scorer_rejects_unknown_gold_labels():
    nlp = tiny_nlp()
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    eg = Example.from_dict(nlp.make_doc("hello"), {"cats": {"greeting": 1.0}})
    with pytest.raises(ValueError, match=r"\[E015\].*'greeting'"):
        nlp.evaluate([eg])


def episode_examples(nlp, texts_by_label):
    return [
        Example.from_dict(nlp.make_doc(t), {"cats": {label: 1.0}})
        for label, texts in texts_by_label.items()
        for t in texts
    ]


def test_scorer_without_labels_scores_episodes():
    """Classes whose texts repeat one word each are told apart in every
    episode; classes that share their texts are not."""
    nlp = tiny_nlp()
    distinct = {f"class{c}": [f"word{c} " * (1 + i % 3) for i in range(12)] for c in range(6)}
    with pytest.warns(UserWarning, match="W001"):
        scores = nlp.evaluate(episode_examples(nlp, distinct))
    assert scores[EPISODE_ACC] == 1.0
    assert "cats_score" not in scores
    shared = {f"class{c}": [f"same text {i}" for i in range(12)] for c in range(6)}
    assert nlp.evaluate(episode_examples(nlp, shared))[EPISODE_ACC] < 0.5


def test_scorer_adapts_episodes_as_the_pipeline_adapts():
    """Checkpoints are chosen by the accuracy the shipped pipeline will have:
    each episode adapted with the component's adapt_steps and adapt_learn_rate."""
    from ..util import synthetic_texts

    nlp = tiny_nlp(adapt_steps=7, adapt_learn_rate=3.0)
    fs = nlp.get_pipe("few_shot_textcat")
    calls = []
    adapt = fs.learner.adapt

    def spy(*args, steps, learn_rate=None, balance):
        calls.append((steps, learn_rate, balance.method))
        return adapt(*args, steps=steps, learn_rate=learn_rate, balance=balance)

    fs.learner.adapt = spy
    with pytest.warns(UserWarning, match="W001"):
        nlp.evaluate(episode_examples(nlp, synthetic_texts(6, 12, seed=1)))
    assert len(calls) == 100 and set(calls) == {(7, 3.0, "logit_adjustment")}


def test_update_skips_empty_docs():
    """An empty doc in an episode carries nothing to learn from: the update
    runs on the rest (predict() likewise scores empty docs 0.0)."""
    from spacy_metalearn.training.episodes import configure_episode_batcher

    from ..util import synthetic_texts

    nlp = tiny_nlp()
    fs = nlp.get_pipe("few_shot_textcat")
    examples = episode_examples(nlp, synthetic_texts(3, 6, seed=0))
    episode = next(configure_episode_batcher(n_way=3, k_shot=2, n_query=2)(examples))
    mark = episode[-1].predicted.user_data
    empty = Doc(nlp.vocab, words=[])
    empty.user_data.update(mark)
    episode[-1] = Example(empty, episode[-1].reference)
    losses = fs.update(episode, sgd=nlp.create_optimizer())
    assert numpy.isfinite(losses["few_shot_textcat"]) and losses["few_shot_textcat"] > 0
    assert fs.update([Example(empty, episode[-1].reference)])["few_shot_textcat"] == 0.0


def test_listening_to_a_shared_tok2vec():
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "tok2vec",
        config={
            "model": {
                "@architectures": "spacy.HashEmbedCNN.v2",
                "pretrained_vectors": None,
                "width": 32,
                "depth": 1,
                "embed_size": 500,
                "window_size": 1,
                "maxout_pieces": 2,
                "subword_features": False,
            }
        },
    )
    model = tok2vec_model()
    model["encoder"]["tok2vec"] = {
        "@architectures": "spacy.Tok2VecListener.v1",
        "width": 32,
        "upstream": "*",
    }
    fs = nlp.add_pipe("few_shot_textcat", config={"model": model})
    nlp.initialize()
    assert "few_shot_textcat" in nlp.get_pipe("tok2vec").listener_map
    fs.adapt(SUPPORT)
    for label, texts in SUPPORT.items():
        assert top_label(nlp(texts[0])) == label
    assert len({round(v, 4) for v in nlp(QUERIES[0]).cats.values()}) > 1


def test_listening_to_a_shared_transformer():
    from spacy_metalearn.models.encoder import resolve_transformer_name

    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "spacy-transformers.TransformerModel.v3",
                # the local folder of the bundled all-MiniLM-L6-v2: no network
                "name": resolve_transformer_name("all-MiniLM-L6-v2"),
                "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1"},
            }
        },
    )
    model = tok2vec_model()
    model["encoder"]["tok2vec"] = {
        "@architectures": "spacy-transformers.TransformerListener.v1",
        "grad_factor": 1.0,
        "pooling": {"@layers": "reduce_mean.v1"},
        "upstream": "*",
    }
    fs = nlp.add_pipe("few_shot_textcat", config={"model": model})
    nlp.initialize()
    fs.adapt(
        {"card_lost": ["I lost my card", "my card was stolen"], "refund": ["where is my refund?"]}
    )
    assert top_label(nlp("someone stole my card")) == "card_lost"
    assert top_label(nlp("refund still not here")) == "refund"


def test_spacy_evaluate_cli_reports_textcat_scores(tmp_path):
    import subprocess
    import sys

    from spacy.tokens import DocBin

    nlp = tiny_nlp()
    one_shot = {label: texts[:1] for label, texts in SUPPORT.items()}
    nlp.get_pipe("few_shot_textcat").adapt(one_shot)
    nlp.to_disk(tmp_path / "pipeline")
    docs = []
    for label, texts in one_shot.items():
        doc = nlp.make_doc(texts[0])
        doc.cats = {lab: float(lab == label) for lab in SUPPORT}
        docs.append(doc)
    DocBin(docs=docs).to_disk(tmp_path / "dev.spacy")
    out = subprocess.run(
        [sys.executable, "-m", "spacy", "evaluate", str(tmp_path / "pipeline"),
         str(tmp_path / "dev.spacy"), "--output", str(tmp_path / "scores.json")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    import srsly

    scores = srsly.read_json(tmp_path / "scores.json")
    assert scores["cats_score"] == pytest.approx(1.0), out.stdout
    assert "cats_macro_auc" in scores


def test_adapted_component_can_be_sourced_into_another_pipeline(tmp_path):
    nlp = tiny_nlp()
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    nlp.to_disk(tmp_path)
    other = spacy.blank("en")
    other.add_pipe("sentencizer")
    fs = other.add_pipe("few_shot_textcat", source=spacy.load(tmp_path))
    expected = [doc.cats for doc in nlp.pipe(QUERIES)]
    for a, doc in zip(expected, other.pipe(QUERIES)):
        for label in a:
            assert doc.cats[label] == pytest.approx(a[label], abs=1e-6)
    fs.adapt({"greeting": ["hello there", "hi"]})
    assert "greeting" in other("hello").cats


@pytest.mark.parametrize(
    "text", ["\u200b\u200b", "\x00\x01 \x02", "\u202e\u202c", "\u2066 \u2069", "\ufeff"]
)
def test_invisible_texts_are_refused(text):
    fs = tiny_nlp().get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match=r"\[E006\]"):
        fs.adapt({"card_lost": ["I lost my card", text]})
    assert fs.labels == ()


@pytest.mark.parametrize(
    "data,code",
    [
        ({"card_lost": {"I lost my card": 1}}, "E003"),
        (
            [Example.from_dict(Doc(spacy.blank("en").vocab, words=["hi"]), {"cats": {"a": "yes"}})],
            "E034",
        ),
    ],
)
def test_malformed_support_is_refused(data, code):
    fs = tiny_nlp().get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match=rf"\[{code}\]"):
        fs.adapt(data)


@pytest.mark.parametrize(
    "steps,learn_rate,setting",
    [(True, None, "steps"), (10**9, None, "steps"), (5, 1e300, "adapt_learn_rate")],
)
def test_unbounded_adaptation_is_refused(steps, learn_rate, setting):
    fs = tiny_nlp().get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match=rf"\[E019\] {setting}"):
        if learn_rate is None:
            fs.adapt(SUPPORT, steps=steps)
        else:
            fs.set_adaptation(steps, learn_rate)


def test_threshold_as_a_string_is_refused():
    with pytest.raises(ValueError, match=r"\[E019\] threshold"):
        tiny_nlp(threshold="0.5")
