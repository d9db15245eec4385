"""meta_train_layers: meta-pretraining (update()) trains only the top layers
of the component's own transformer; the embeddings and the layers below are
frozen, run without dropout or gradient, and their output for each text is
computed once and reused while their weights stay as they are. The
transformer is the tests' tiny BERT with random weights (3 layers)."""

import numpy
import pytest
import spacy
import torch
from spacy.training import Example

from spacy_metalearn.encoding.top_layers import (
    LowerLayerOutputs,
    find_transformer,
    training_layers,
)
from spacy_metalearn.pipeline.settings import check_settings
from spacy_metalearn.training.episodes import configure_episode_batcher

from ..util import synthetic_texts, tiny_bert_nlp, tiny_nlp


def transformer_of(nlp):
    return find_transformer(nlp.get_pipe("few_shot_textcat").model.get_ref("encoder"))


def without_dropout(nlp):
    """Dropout off everywhere, so that a frozen and a whole-encoder update
    compute the same thing."""
    for module in transformer_of(nlp).modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if hasattr(module, "dropout_prob"):
            module.dropout_prob = 0.0


def episode(nlp, seed=0, n_classes=3):
    texts = synthetic_texts(n_classes, 6, seed=seed)
    examples = [
        Example.from_dict(nlp.make_doc(text), {"cats": {label: 1.0}})
        for label, label_texts in texts.items()
        for text in label_texts
    ]
    batcher = configure_episode_batcher(n_way=n_classes, k_shot=2, n_query=2, seed=seed)
    return next(batcher(examples))


def weights(nlp):
    return {name: p.detach().clone() for name, p in transformer_of(nlp).named_parameters()}


def count_calls(module):
    calls = []
    module.register_forward_hook(lambda *args: calls.append(1))
    return calls


def test_meta_training_updates_the_top_layers_only(tiny_bert):
    nlp = tiny_bert_nlp(tiny_bert, meta_train_layers=1)
    component = nlp.get_pipe("few_shot_textcat")
    before = weights(nlp)
    component.update(episode(nlp), sgd=nlp.create_optimizer())
    after = weights(nlp)
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    top = {name for name in before if name.startswith("encoder.layer.2.")}
    assert moved and moved <= top
    assert all(p.requires_grad for p in transformer_of(nlp).parameters())


def test_the_top_layers_get_the_gradient_the_whole_encoder_gives_them(tiny_bert):
    """Freezing changes what is trained, not the gradient of what is."""
    grads, losses = {}, {}
    for n_layers in (None, 1):
        nlp = tiny_bert_nlp(tiny_bert, meta_train_layers=n_layers)
        without_dropout(nlp)
        losses[n_layers] = nlp.get_pipe("few_shot_textcat").update(episode(nlp))
        grads[n_layers] = {
            name: None if p.grad is None else p.grad.clone()
            for name, p in transformer_of(nlp).named_parameters()
        }
    assert losses[1] == pytest.approx(losses[None], abs=1e-6)
    for name, grad in grads[1].items():
        if name.startswith("encoder.layer.2."):
            torch.testing.assert_close(grad, grads[None][name], atol=1e-6, rtol=1e-5)
        elif not name.startswith("pooler."):  # the pooler is not used
            assert grad is None and grads[None][name] is not None, name


def test_the_lower_layers_run_once_per_text(tiny_bert):
    nlp = tiny_bert_nlp(tiny_bert, meta_train_layers=1)
    without_dropout(nlp)
    component = nlp.get_pipe("few_shot_textcat")
    calls = count_calls(transformer_of(nlp).encoder.layer[0])
    first = episode(nlp, seed=0)
    docs = [eg.predicted for eg in first]
    encoder, outputs = component.model.get_ref("encoder"), LowerLayerOutputs()
    with training_layers(encoder, 1, outputs):
        expected, _ = component.embedder.begin_update(docs)
    assert calls and len(outputs) == len(docs)
    del calls[:]
    # the same texts in another order and other batches: nothing recomputed
    component.cfg["batch_size"] = 5
    reordered = docs[::-1]
    with training_layers(encoder, 1, outputs):
        again, _ = component.embedder.begin_update(reordered)
    assert not calls
    numpy.testing.assert_allclose(again[::-1], expected, atol=1e-6, rtol=1e-5)
    # a text not seen before runs the lower layers again
    with training_layers(encoder, 1, outputs):
        component.embedder.begin_update([nlp.make_doc("a text never seen before")])
    assert calls


def test_the_kept_outputs_follow_the_lower_layers_weights(tiny_bert):
    nlp = tiny_bert_nlp(tiny_bert, meta_train_layers=1)
    component = nlp.get_pipe("few_shot_textcat")
    transformer = transformer_of(nlp)
    calls = count_calls(transformer.encoder.layer[0])
    eg = episode(nlp)
    component.update(eg, sgd=nlp.create_optimizer())
    del calls[:]
    component.update(eg)
    assert not calls
    with torch.no_grad():
        transformer.encoder.layer[1].output.dense.weight.add_(0.1)
    component.update(eg)
    assert calls


def test_without_meta_train_layers_the_whole_encoder_trains(tiny_bert):
    nlp = tiny_bert_nlp(tiny_bert)
    before = weights(nlp)
    nlp.get_pipe("few_shot_textcat").update(episode(nlp), sgd=nlp.create_optimizer())
    after = weights(nlp)
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    assert any(name.startswith("embeddings.") for name in moved)
    assert any(name.startswith("encoder.layer.0.") for name in moved)


def test_meta_train_layers_saves_and_loads(tiny_bert, tmp_path):
    nlp = tiny_bert_nlp(tiny_bert, meta_train_layers=2)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("few_shot_textcat").cfg["meta_train_layers"] == 2
    overridden = spacy.load(
        tmp_path / "pipeline",
        config={"components": {"few_shot_textcat": {"meta_train_layers": None}}},
    )
    assert overridden.get_pipe("few_shot_textcat").cfg["meta_train_layers"] is None


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "2"])
def test_bad_meta_train_layers_are_refused(value):
    # E019, or spaCy's config check for a value of the wrong type (True, 1.5)
    with pytest.raises(ValueError, match="meta_train_layers"):
        tiny_nlp(meta_train_layers=value)
    # a saved cfg is checked by the component itself
    cfg = {**tiny_nlp().get_pipe("few_shot_textcat").cfg, "meta_train_layers": value}
    with pytest.raises(ValueError, match=r"\[E019\] meta_train_layers"):
        check_settings(cfg)


def test_more_layers_than_the_transformer_has_are_refused_at_the_first_update(tiny_bert):
    nlp = tiny_bert_nlp(tiny_bert, meta_train_layers=4)
    before = weights(nlp)
    with pytest.raises(ValueError, match=r"\[E019\] meta_train_layers.*\[1, 3\]"):
        nlp.get_pipe("few_shot_textcat").update(episode(nlp), sgd=nlp.create_optimizer())
    after = weights(nlp)
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_meta_train_layers_needs_a_transformer_of_its_own():
    with pytest.raises(ValueError, match=r"\[E043\]"):
        tiny_nlp(meta_train_layers=1)
