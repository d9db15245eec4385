"""Deep adaptation: adapt(deep_steps=N) trains the top transformer layers on
episodes drawn from the support set, from the weights they had before any
deep adaptation, and the result saves and loads exactly. The transformer
here is a tiny BERT with random weights, made by the tests (no download)."""

import random

import numpy
import pytest
import spacy
import srsly
import torch

from spacy_metalearn.adaptation import adapt
from spacy_metalearn.adaptation import deep as deep_adaptation
from spacy_metalearn.adaptation.deep import episode_loss, fit_top_layers, pseudo_episode
from spacy_metalearn.encoding.top_layers import TopLayers, find_transformer, frozen_lower_layers

from ..util import SUPPORT, tiny_bert_nlp, tiny_nlp


def weights(component):
    transformer = find_transformer(component.model.get_ref("encoder"))
    return {name: p.detach().clone() for name, p in transformer.named_parameters()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def changed(before, after):
    return {name for name in before if not torch.equal(before[name], after[name])}


def cats_of(nlp, texts):
    return [doc.cats for doc in nlp.pipe(texts)]


TEXTS = ["someone took my card", "refund please", "is it windy", "hello"]


def test_deep_adaptation_updates_the_top_layers_only(tiny_bert):
    nlp = tiny_bert_nlp(tiny_bert, deep_adapt_layers=1, deep_adapt_learn_rate=1e-3)
    component = nlp.get_pipe("few_shot_textcat")
    before = weights(component)
    component.adapt(SUPPORT, deep_steps=3)
    after = weights(component)
    moved = changed(before, after)
    assert moved and all(name.startswith("encoder.layer.2.") for name in moved)
    assert all(
        name in moved for name in after if name.startswith("encoder.layer.2.") and "weight" in name
    )
    transformer = find_transformer(component.model.get_ref("encoder"))
    assert all(p.requires_grad for p in transformer.parameters())  # as spacy train needs them


def test_the_lower_layers_run_once_and_give_what_they_compute(tiny_bert):
    component = tiny_bert_nlp(tiny_bert).get_pipe("few_shot_textcat")
    transformer = find_transformer(component.model.get_ref("encoder"))
    layers = list(transformer.encoder.layer)
    docs = component.embedder.make_docs(TEXTS)
    expected = component.embedder.embed_docs(docs)
    top = TopLayers(component.model.get_ref("encoder"), 1)
    calls = []
    hook = layers[0].register_forward_hook(lambda *args: calls.append(1))
    with frozen_lower_layers(top):
        first = component.embedder.embed_docs(docs)
        again = component.embedder.embed_docs(docs)
    hook.remove()
    torch.testing.assert_close(first, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(again, expected, atol=1e-6, rtol=0)
    assert len(calls) == 1  # one batch, computed once
    assert all(a is b for a, b in zip(transformer.encoder.layer, layers))
    torch.testing.assert_close(component.embedder.embed_docs(docs), expected, atol=0, rtol=0)


def test_deep_adaptation_runs_the_lower_layers_once_per_support_row(tiny_bert):
    """The steps and the final encoding with the adapted layers share the
    lower layers' outputs: each row (examples and label names) passes layer 0
    once in the whole adapt()."""
    nlp = tiny_bert_nlp(tiny_bert, deep_adapt_layers=1, deep_adapt_learn_rate=1e-3)
    component = nlp.get_pipe("few_shot_textcat")
    transformer = find_transformer(component.model.get_ref("encoder"))
    rows = []
    hook = transformer.encoder.layer[0].register_forward_hook(
        lambda module, args, output: rows.append(args[0].shape[0])
    )
    try:
        component.adapt(SUPPORT, deep_steps=3)
    finally:
        hook.remove()
    n_examples = sum(len(texts) for texts in SUPPORT.values())
    assert sum(rows) == n_examples + len(SUPPORT)  # and one label name each


def test_deep_steps_learn_the_support(tiny_bert):
    """The episode loss on fixed splits of the support, without dropout,
    falls after training on random ones."""
    nlp = tiny_bert_nlp(tiny_bert)
    component = nlp.get_pipe("few_shot_textcat")
    labels = [label for label, texts in SUPPORT.items() for _ in texts]
    index = {label: i for i, label in enumerate(SUPPORT)}
    label_ids = [index[label] for label in labels]
    docs = component.embedder.make_docs([text for texts in SUPPORT.values() for text in texts])
    splits = [pseudo_episode(label_ids, [False] * len(docs), random.Random(s)) for s in range(5)]

    def held_out_loss():
        embeddings = component.embedder.embed_docs(docs)
        total = 0.0
        for support, query in splits:
            rows = support + query
            labels = torch.tensor([label_ids[i] for i in rows])
            total += episode_loss(embeddings[rows], labels, len(support), len(index)).item()
        return total / len(splits)

    before = held_out_loss()
    top = TopLayers(component.model.get_ref("encoder"), 2)
    begin_update = component.embedder.begin_update
    losses = fit_top_layers(top, begin_update, docs, label_ids, [False] * len(docs), len(index),
                            steps=30, learn_rate=1e-3)  # fmt: skip
    assert len(losses) == 30
    assert held_out_loss() < 0.75 * before


def test_adapting_again_starts_from_the_weights_before_deep_adaptation(tiny_bert):
    nlp = tiny_bert_nlp(tiny_bert, deep_adapt_steps=2, deep_adapt_learn_rate=1e-3)
    component = nlp.get_pipe("few_shot_textcat")
    base = weights(component)
    torch.manual_seed(1)  # dropout
    component.adapt(SUPPORT)
    first = weights(component)
    assert changed(base, first)
    component.adapt(SUPPORT, replace=True, deep_steps=0)
    assert_same(weights(component), base)
    assert component.deep_start is None
    torch.manual_seed(1)
    component.adapt(SUPPORT, replace=True)
    assert_same(weights(component), first)
    # adding examples without deep steps keeps the adapted encoder
    component.adapt({"refund": ["give my money back"]}, deep_steps=0)
    assert_same(weights(component), first)


def test_deep_adaptation_then_instant_adaptation_predicts_from_the_adapted_encoder(tiny_bert):
    nlp = tiny_bert_nlp(tiny_bert, deep_adapt_learn_rate=1e-3)
    component = nlp.get_pipe("few_shot_textcat")
    component.adapt(SUPPORT, deep_steps=3)
    docs = component.embedder.make_docs([t for texts in SUPPORT.values() for t in texts])
    stored = component.adaptation.support_set.embeddings[: len(docs)]
    recomputed = component.embedder.embed_docs(docs)
    recomputed = torch.nn.functional.normalize(recomputed, dim=-1).numpy()
    numpy.testing.assert_allclose(stored, recomputed, atol=1e-6)


def test_a_deep_adapted_pipeline_saves_and_loads_exactly(tiny_bert, tmp_path):
    nlp = tiny_bert_nlp(tiny_bert, deep_adapt_learn_rate=1e-3)
    component = nlp.get_pipe("few_shot_textcat")
    base = weights(component)
    component.adapt(SUPPORT, deep_steps=3)
    nlp.to_disk(tmp_path / "p")
    assert (tmp_path / "p" / "few_shot_textcat" / "deep_start").is_file()
    loaded = spacy.load(tmp_path / "p")
    assert cats_of(loaded, TEXTS) == cats_of(nlp, TEXTS)
    via_bytes = tiny_bert_nlp(tiny_bert)
    via_bytes.get_pipe("few_shot_textcat").from_bytes(component.to_bytes())
    assert cats_of(via_bytes, TEXTS) == cats_of(nlp, TEXTS)
    # the loaded pipeline still knows the weights from before deep adaptation
    loaded_component = loaded.get_pipe("few_shot_textcat")
    loaded_component.adapt(SUPPORT, replace=True, deep_steps=0)
    assert_same(weights(loaded_component), base)
    # saved again to the same folder, nothing is left of the deep adaptation
    loaded.to_disk(tmp_path / "p")
    assert not (tmp_path / "p" / "few_shot_textcat" / "deep_start").exists()
    assert cats_of(spacy.load(tmp_path / "p"), TEXTS) == cats_of(loaded, TEXTS)


def test_a_tampered_deep_start_is_refused(tiny_bert, tmp_path):
    nlp = tiny_bert_nlp(tiny_bert, deep_adapt_learn_rate=1e-3)
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT, deep_steps=1)
    nlp.to_disk(tmp_path / "p")
    path = tmp_path / "p" / "few_shot_textcat" / "deep_start"
    msg = srsly.msgpack_loads(path.read_bytes())
    name = next(iter(msg["weights"]))
    msg["weights"][name] = numpy.zeros((2, 2), dtype="float32")
    path.write_bytes(srsly.msgpack_dumps(msg))
    with pytest.raises(ValueError, match=r"E013.*deep_start.*shape"):
        spacy.load(tmp_path / "p")


def test_a_failed_deep_adaptation_changes_nothing(tiny_bert, monkeypatch):
    nlp = tiny_bert_nlp(tiny_bert, deep_adapt_learn_rate=1e-3)
    component = nlp.get_pipe("few_shot_textcat")
    component.adapt(SUPPORT, deep_steps=2)
    before, adaptation, start = weights(component), component.adaptation, component.deep_start
    cats = cats_of(nlp, TEXTS)

    def fail(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(adapt, "fit_adaptation", fail)
    with pytest.raises(RuntimeError):
        component.adapt(SUPPORT, replace=True, deep_steps=2)
    assert_same(weights(component), before)
    assert component.adaptation is adaptation and component.deep_start is start
    assert cats_of(nlp, TEXTS) == cats
    transformer = find_transformer(component.model.get_ref("encoder"))
    assert all(p.requires_grad for p in transformer.parameters())


def test_deep_adaptation_without_a_transformer_of_its_own_is_refused():
    component = tiny_nlp().get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match="E038"):
        component.adapt(SUPPORT, deep_steps=1)
    assert not component.labels


def test_deep_adaptation_needs_exclusive_classes_and_the_whole_support(tiny_bert):
    multi = tiny_bert_nlp(tiny_bert, exclusive_classes=False).get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match="E039"):
        multi.adapt(SUPPORT, deep_steps=1)
    component = tiny_bert_nlp(tiny_bert).get_pipe("few_shot_textcat")
    component.adapt(SUPPORT)
    with pytest.raises(ValueError, match=r"E040.*'card_lost'.*replace=True"):
        component.adapt({"new": ["a new label"]}, deep_steps=1)
    assert component.labels == tuple(SUPPORT)


@pytest.mark.parametrize(
    "setting,value",
    [("deep_adapt_steps", -1), ("deep_adapt_steps", True), ("deep_adapt_learn_rate", 0.0),
     ("deep_adapt_learn_rate", "1e-5"), ("deep_adapt_layers", 0)],
)  # fmt: skip
def test_bad_deep_adaptation_settings_are_refused(setting, value):
    # E019, or spaCy's config check for a value of the wrong type (True)
    with pytest.raises(ValueError, match=setting):
        tiny_nlp(**{setting: value})


def test_more_layers_than_the_transformer_has_is_refused(tiny_bert):
    component = tiny_bert_nlp(tiny_bert, deep_adapt_layers=4).get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match=r"E019.*deep_adapt_layers.*\[1, 3\]"):
        component.adapt(SUPPORT, deep_steps=1)
    assert not component.labels


def test_pseudo_episodes_split_each_label_and_keep_descriptions_in_the_support():
    label_ids = [0, 0, 0, 0, 1, 2, 2, 1, 2]
    is_description = [False] * 7 + [True, True]
    support, query = pseudo_episode(label_ids, is_description, random.Random(0))
    assert sorted(support + query) == list(range(9))
    assert {7, 8} <= set(support)
    by_label = {label: [r for r in query if label_ids[r] == label] for label in (0, 1, 2)}
    # four examples: two each side; one example with a description: a query;
    # two examples with a description: one each side
    assert len(by_label[0]) == 2 and by_label[1] == [4] and len(by_label[2]) == 1
    # without descriptions a single example stays in the support
    support, query = pseudo_episode([0, 1, 1], [False] * 3, random.Random(0))
    assert 0 in support and len(query) == 1


def test_the_start_format_is_checked():
    with pytest.raises(ValueError, match="unknown format"):
        deep_adaptation.start_from_bytes(srsly.msgpack_dumps({"format": 99}))
    bad = {"format": 1, "weights": {"w": numpy.zeros(2, dtype="float64")}}
    with pytest.raises(ValueError, match="float32"):
        deep_adaptation.start_from_bytes(srsly.msgpack_dumps(bad))
