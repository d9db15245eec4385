"""The ONNX Runtime inference backends: the component's own transformer runs
through ONNX Runtime when docs are only encoded, exported from the torch
weights and again whenever they change; gradients still flow through torch.
The transformer is the tiny random BERT of the tiny_bert fixture."""

import sys

import pytest
import spacy
import torch
from thinc.api import Adam

from spacy_metalearn.encoding.top_layers import find_transformer
from spacy_metalearn.models.encoder import find_transformer_shim

from ..util import SUPPORT, tiny_bert_nlp, tiny_nlp

pytest.importorskip("onnxruntime")

TEXTS = ["someone took my card", "refund please", "is it windy today", "hello", "a"]
# float32 ONNX Runtime against torch: the same operations, fused and reordered
FP32_ATOL = 1e-5


def embeddings(component, backend):
    component.set_inference_backend(backend)
    return component.embedder(TEXTS)


def cats_of(nlp):
    return torch.tensor([list(doc.cats.values()) for doc in nlp.pipe(TEXTS)])


def transformer_of(component):
    return find_transformer(component.model.get_ref("encoder"))


def test_float32_onnx_runtime_gives_the_torch_embeddings(tiny_bert):
    component = tiny_bert_nlp(tiny_bert).get_pipe("few_shot_textcat")
    expected = embeddings(component, "torch")
    torch.testing.assert_close(
        embeddings(component, "onnxruntime"), expected, atol=FP32_ATOL, rtol=0
    )
    # one by one as batched (each batch padded to its longest text)
    one_by_one = torch.cat([component.embedder([text]) for text in TEXTS])
    torch.testing.assert_close(one_by_one, expected, atol=FP32_ATOL, rtol=0)


def test_int8_onnx_runtime_stays_close_to_torch(tiny_bert):
    component = tiny_bert_nlp(tiny_bert).get_pipe("few_shot_textcat")
    expected = embeddings(component, "torch")
    quantized = embeddings(component, "onnxruntime-int8")
    assert not torch.equal(quantized, expected)  # int8 weights: not the same numbers
    assert torch.nn.functional.cosine_similarity(quantized, expected).min() > 0.95


def test_int8_leaves_only_the_first_layers_feed_forward_output_in_float32(tiny_bert):
    import onnx

    from spacy_metalearn.encoding.onnx_inference import export_onnx, float32_nodes

    transformer = transformer_of(tiny_bert_nlp(tiny_bert).get_pipe("few_shot_textcat"))
    fused = onnx.load_from_string(export_onnx(transformer, quantize=False))
    (kept,) = float32_nodes(fused)
    assert kept == "/encoder/layer.0/output/dense/MatMul"
    quantized = onnx.load_from_string(export_onnx(transformer, quantize=True))
    op_types = {node.name: node.op_type for node in quantized.graph.node}
    # every other attention and matrix multiplication is quantized
    assert [name for name, op in op_types.items() if op in ("Attention", "MatMul")] == [kept]
    assert "QAttention" in op_types.values() and "MatMulInteger" in op_types.values()


def test_int8_leaves_the_nodes_it_is_told_in_float32(tiny_bert):
    import onnx

    from spacy_metalearn.encoding.onnx_inference import export_onnx

    transformer = transformer_of(tiny_bert_nlp(tiny_bert).get_pipe("few_shot_textcat"))
    every_layer = onnx.load_from_string(
        export_onnx(transformer, quantize=True, keep_float32=lambda model: [])
    )
    assert not any(node.op_type in ("Attention", "MatMul") for node in every_layer.graph.node)
    first_attention = onnx.load_from_string(
        export_onnx(transformer, quantize=True, keep_float32=lambda model: ["Attention_0"])
    )
    kept = [node.name for node in first_attention.graph.node if node.op_type == "Attention"]
    assert kept == ["Attention_0"]


@pytest.mark.parametrize("backend", ["onnxruntime", "onnxruntime-int8"])
def test_predict_runs_onnx_runtime_not_torch(tiny_bert, backend):
    nlp = tiny_bert_nlp(tiny_bert, inference_backend=backend)
    component = nlp.get_pipe("few_shot_textcat")
    component.adapt(SUPPORT)
    shim = find_transformer_shim(component.model.get_ref("encoder"))
    hf_model = shim._model
    calls = []
    hook = transformer_of(component).register_forward_hook(lambda *args: calls.append(1))
    docs = list(nlp.pipe(TEXTS))
    hook.remove()
    assert not calls
    assert all(doc.cats for doc in docs)
    assert shim._model is hf_model  # the torch model is back in the shim


def test_the_export_follows_the_weights(tiny_bert):
    component = tiny_bert_nlp(tiny_bert).get_pipe("few_shot_textcat")
    before = embeddings(component, "onnxruntime")
    transformer = transformer_of(component)
    with torch.no_grad():  # an in-place change torch counts (as optimizers make)
        transformer.encoder.layer[2].output.dense.weight.mul_(-1.0)
    after = embeddings(component, "onnxruntime")
    assert not torch.allclose(after, before, atol=1e-3)
    torch.testing.assert_close(after, embeddings(component, "torch"), atol=FP32_ATOL, rtol=0)


def test_finish_update_drops_the_export(tiny_bert):
    component = tiny_bert_nlp(tiny_bert, inference_backend="onnxruntime").get_pipe(
        "few_shot_textcat"
    )
    component.embedder(TEXTS)
    weight = transformer_of(component).encoder.layer[2].output.dense.weight
    weight.data.mul_(-1.0)  # as thinc's optimizer writes: a change torch does not count
    component.finish_update(Adam(0.001))
    torch.testing.assert_close(
        component.embedder(TEXTS), embeddings(component, "torch"), atol=FP32_ATOL, rtol=0
    )


def test_deep_adaptation_trains_through_torch_and_predicts_with_its_weights(tiny_bert):
    config = {"deep_adapt_layers": 1, "deep_adapt_learn_rate": 1e-3}
    results = {}
    for backend in ("torch", "onnxruntime"):
        nlp = tiny_bert_nlp(tiny_bert, inference_backend=backend, **config)
        component = nlp.get_pipe("few_shot_textcat")
        torch.manual_seed(0)  # the same dropout masks
        component.adapt(SUPPORT, deep_steps=2)
        results[backend] = (
            {name: p.detach().clone() for name, p in transformer_of(component).named_parameters()},
            cats_of(nlp),
        )
    (torch_weights, torch_cats), (onnx_weights, onnx_cats) = results.values()
    for name in torch_weights:
        torch.testing.assert_close(onnx_weights[name], torch_weights[name], atol=1e-5, rtol=0)
    torch.testing.assert_close(onnx_cats, torch_cats, atol=1e-4, rtol=0)


def test_the_session_uses_torchs_thread_count(tiny_bert):
    component = tiny_bert_nlp(tiny_bert, inference_backend="onnxruntime").get_pipe(
        "few_shot_textcat"
    )
    transformer = transformer_of(component)
    threads = torch.get_num_threads()
    try:
        for wanted in (1, 2):
            torch.set_num_threads(wanted)
            component.embedder(TEXTS)
            session = component.embedder.backend.session(transformer)
            assert session.get_session_options().intra_op_num_threads == wanted
            assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(threads)


def test_the_backend_saves_and_loads_with_the_pipeline(tiny_bert, tmp_path):
    nlp = tiny_bert_nlp(tiny_bert, inference_backend="onnxruntime-int8")
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    expected = cats_of(nlp)
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("few_shot_textcat").cfg["inference_backend"] == "onnxruntime-int8"
    torch.testing.assert_close(cats_of(loaded), expected, atol=1e-6, rtol=0)
    overrides = {"components": {"few_shot_textcat": {"inference_backend": "torch"}}}
    plain = spacy.load(tmp_path / "p", config=overrides).get_pipe("few_shot_textcat")
    assert plain.cfg["inference_backend"] == "torch" and plain.embedder.backend is None


def test_a_backend_set_after_the_config_was_written_is_saved(tiny_bert, tmp_path):
    nlp = tiny_bert_nlp(tiny_bert)
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    nlp.get_pipe("few_shot_textcat").set_inference_backend("onnxruntime")
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p").get_pipe("few_shot_textcat")
    assert loaded.cfg["inference_backend"] == "onnxruntime"
    assert loaded.embedder.backend is not None and loaded.embedder.backend.name == "onnxruntime"


@pytest.mark.parametrize("value", ["onnx", "", "ONNXRUNTIME", None, 1])
def test_an_unknown_backend_is_refused(value):
    if isinstance(value, str):  # spaCy's config validation refuses the others
        with pytest.raises(ValueError, match="E019.*inference_backend"):
            tiny_nlp(inference_backend=value)
    component = tiny_nlp().get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match="E019.*inference_backend"):
        component.set_inference_backend(value)
    assert component.cfg["inference_backend"] == "torch"


def test_a_missing_onnx_runtime_gives_a_clear_error(monkeypatch, tiny_bert, tmp_path):
    nlp = tiny_bert_nlp(tiny_bert, inference_backend="onnxruntime")
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    nlp.to_disk(tmp_path / "p")
    saved = nlp.get_pipe("few_shot_textcat").to_bytes()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    with pytest.raises(ImportError, match="E041.*onnxruntime.*spacy-metalearn\\[onnx\\]"):
        tiny_nlp(inference_backend="onnxruntime")
    with pytest.raises(ImportError, match="E041"):
        spacy.load(tmp_path / "p")
    component = tiny_bert_nlp(tiny_bert).get_pipe("few_shot_textcat")
    with pytest.raises(ImportError, match="E041"):
        component.set_inference_backend("onnxruntime-int8")
    with pytest.raises(ImportError, match="E041"):
        component.from_bytes(saved)
    assert component.cfg["inference_backend"] == "torch" and not component.labels


def test_an_encoder_without_a_transformer_of_its_own_is_refused():
    with pytest.raises(ValueError, match="E042.*onnxruntime"):
        tiny_nlp(inference_backend="onnxruntime")
    component = tiny_nlp().get_pipe("few_shot_textcat")
    with pytest.raises(ValueError, match="E042.*onnxruntime-int8"):
        component.set_inference_backend("onnxruntime-int8")
    assert component.cfg["inference_backend"] == "torch" and component.embedder.backend is None


def test_forked_processes_run_torch_and_give_the_same_cats(tiny_bert):
    """ONNX Runtime is not fork-safe (a session made in a forked child can
    hang): spaCy's forked workers run torch, which gives the cats float32 ONNX
    Runtime gives to float tolerance."""
    nlp = tiny_bert_nlp(tiny_bert, inference_backend="onnxruntime")
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)  # the parent's session exists now
    in_process = cats_of(nlp)
    docs = nlp.pipe(TEXTS * 2, batch_size=2, n_process=2)
    piped = torch.tensor([list(doc.cats.values()) for doc in docs])
    torch.testing.assert_close(piped, torch.cat([in_process, in_process]), atol=FP32_ATOL, rtol=0)


def test_a_forked_child_does_not_make_a_session(tiny_bert, monkeypatch):
    from spacy_metalearn.encoding import onnx_inference

    nlp = tiny_bert_nlp(tiny_bert, inference_backend="onnxruntime")
    component = nlp.get_pipe("few_shot_textcat")
    monkeypatch.setattr(onnx_inference, "_in_forked_child", True)
    made = []
    monkeypatch.setattr(onnx_inference.OnnxRuntimeBackend, "session", lambda *args: made.append(1))
    expected = embeddings(component, "torch")
    component.set_inference_backend("onnxruntime")
    torch.testing.assert_close(component.embedder(TEXTS), expected, atol=0, rtol=0)
    assert not made
